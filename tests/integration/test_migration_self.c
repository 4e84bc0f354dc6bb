/*
 * test_migration_self.c: moves an agent asks for itself (agent.migrate,
 * agent.clone) between real daemons on loopback, and a push of an agent
 * that computes without ever waiting. Locals, upvalues and a coroutine
 * must come across every hop; a migrate to a dead host returns nil and an
 * error at the source, where the agent goes on; a clone goes on under a
 * new id on the target while the original goes on. agent.send reaches an
 * agent on another host and one in flight, every message once.
 */
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "migcluster.h"

TestSuite(migself, .init = setup, .fini = teardown, .timeout = 100);

/* Daemons learn each other's peer endpoints from agentctl's push (which
 * names the target's endpoint) and from HELLO: a ticker pushed round the
 * first n hosts introduces each to the next and back. */
static void introduce(int n)
{
	char id[32], out[512];

	cr_assert_eq(ctl(&hosts[0], out, sizeof out, 10000, "run", seg, NULL, NULL, NULL), 0, "run: %s", out);
	memcpy(id, out, 16);
	id[16] = '\0';
	for (int i = 0; i < n; i++) {
		struct host *from = &hosts[i];
		const char *to = hosts[(i + 1) % n].name;

		cr_assert_eq(ctl(from, out, sizeof out, 20000, "push", id, "--to", to, "--weak"), 0,
			     "introduce %s -> %s: %s", from->name, to, out);
	}
	cr_assert_eq(ctl(&hosts[0], out, sizeof out, 10000, "kill", id, NULL, NULL, NULL), 0, "%s", out);
}

/* Signs an agent `name` whose main.lua is `lua` (entry function main);
 * writes the segment's path to out. */
static void make_seg(const char *name, const char *lua, char *out, size_t len)
{
	char dir[300], path[400], key[300], text[512];

	snprintf(dir, sizeof dir, "%.200s/%s", tmp, name);
	mkdir(dir, 0700);
	snprintf(path, sizeof path, "%s/manifest", dir);
	snprintf(text, sizeof text,
		 "agentd-manifest 1\nname = %s\nversion = 1.0\nentry = main.lua main\n"
		 "mobility = both\nactivation = resident\nfile = main.lua\n", name);
	write_file(path, text);
	snprintf(path, sizeof path, "%s/main.lua", dir);
	write_file(path, lua);
	snprintf(out, len, "%.200s/%s.seg", tmp, name);
	snprintf(key, sizeof key, "%.200s/author.key", tmp);
	{
		char *argv[] = { (char *)ctlbin(), "sign", dir, "-k", key, "-o", out, NULL };

		cr_assert_eq(tst_run(argv, NULL, 0, 10000), 0, "sign %s", name);
	}
}

static void run_seg(struct host *h, const char *segpath, char id[32])
{
	char out[256];

	cr_assert_eq(ctl(h, out, sizeof out, 10000, "run", segpath, NULL, NULL, NULL), 0, "run: %s", out);
	cr_assert_geq(strlen(out), 16);
	memcpy(id, out, 16);
	id[16] = '\0';
}

/* Polls h's log of agent id for `needle`, at most ms; 1 when found. */
static int wait_log(struct host *h, const char *id, const char *needle, int ms, char *out, size_t len)
{
	long end = now_ms() + ms;

	do {
		if (ctl(h, out, len, 10000, "logs", id, "--lines", "30", NULL) == 0 && strstr(out, needle))
			return 1;
		usleep(50000);
	} while (now_ms() < end);
	return 0;
}

static const char hopper_lua[] =
	"function main()\n"
	"  local n = 0\n"
	"  local up = { hops = 0 }\n"
	"  local function bump() up.hops = up.hops + 1; return up.hops end\n"
	"  local gen = coroutine.create(function()\n"
	"    local k = 0\n"
	"    while true do k = k + 1; coroutine.yield(k) end\n"
	"  end)\n"
	"  coroutine.resume(gen)\n"
	"  for i, h in ipairs({ 'h2', 'h3', 'h1' }) do\n"
	"    n = n + 10\n"
	"    local a, b = agent.migrate(h, i == 3 and { returns = { 'home', 42 } } or nil)\n"
	"    local _, k = coroutine.resume(gen)\n"
	"    agent.log(string.format('hop %d a=%s b=%s host=%s n=%d hops=%d gen=%d', i,\n"
	"      tostring(a), tostring(b), agent.host(), n, bump(), k))\n"
	"  end\n"
	"  while true do agent.sleep(1) end\n"
	"end\n";

Test(migself, migrate_returns_on_the_target_with_locals_upvalues_and_coroutines)
{
	char segp[300], id[32], out[16384];

	for (int i = 0; i < HOSTS; i++)
		start_host(&hosts[i], NULL, NULL);
	introduce(HOSTS);
	make_seg("hopper", hopper_lua, segp, sizeof segp);
	run_seg(&hosts[0], segp, id);
	cr_assert(wait_log(&hosts[0], id, "hop 3 ", 30000, out, sizeof out),
		  "the agent did not come back to h1: %s", out);
	cr_assert_not_null(strstr(out, "hop 3 a=home b=42 host=h1 n=30 hops=3 gen=4"),
			   "state or results lost on the way: %s", out);
	/* Its log came along: each hop's line, logged on the host it was
	 * on, in order. */
	{
		char *h1 = strstr(out, " h2 hop 1 "), *h2 = strstr(out, " h3 hop 2 "),
		     *h3 = strstr(out, " h1 hop 3 ");

		cr_assert(h1 && h2 && h3 && h1 < h2 && h2 < h3,
			  "the log did not follow the agent (hosts and order): %s", out);
	}
	cr_assert_eq(lists(&hosts[1], id), 0, "still on h2");
	cr_assert_eq(lists(&hosts[2], id), 0, "still on h3");
	cr_assert_eq(lists(&hosts[0], id), 1, "not on h1");
}

static const char dead_lua[] =
	"function main()\n"
	"  local n = 5\n"
	"  local a, b, c = agent.migrate('h2')\n"
	"  agent.log(string.format('after a=%s c=%s host=%s n=%d', tostring(a), tostring(c),\n"
	"    agent.host(), n))\n"
	"  agent.log('err ' .. tostring(b))\n"
	"  while true do n = n + 1; agent.log('tick ' .. n); agent.sleep(0.05) end\n"
	"end\n";

Test(migself, migrate_to_a_dead_host_returns_nil_and_the_agent_goes_on_at_the_source)
{
	char segp[300], id[32], out[16384];
	int t;

	start_host(&hosts[0], NULL, NULL); /* h2 is trusted but down */
	make_seg("deadhop", dead_lua, segp, sizeof segp);
	run_seg(&hosts[0], segp, id);
	cr_assert(wait_log(&hosts[0], id, "after ", 30000, out, sizeof out), "migrate never returned: %s",
		  out);
	cr_assert_not_null(strstr(out, "after a=nil c=io host=h1 n=5"), "wrong results: %s", out);
	cr_assert_not_null(strstr(out, "err migration failed"), "no error message: %s", out);
	t = last_tick(&hosts[0], id);
	wait_ticks(&hosts[0], id, t + 3);
	check_ticks(&hosts[0], id, "after a failed migrate");
}

/* The same with a target that was known (endpoint learnt) and then died:
 * the transfer times out rather than finding no route. */
Test(migself, migrate_to_a_host_that_died_times_out_and_the_agent_goes_on)
{
	char segp[300], id[32], out[16384];
	int t;

	start_host(&hosts[0], NULL, NULL);
	start_host(&hosts[1], NULL, NULL);
	introduce(2);
	cr_assert_eq(tst_proc_stop(hosts[1].pid, 5000) >= 0, 1);
	hosts[1].pid = 0;
	make_seg("deadhop", dead_lua, segp, sizeof segp);
	run_seg(&hosts[0], segp, id);
	cr_assert(wait_log(&hosts[0], id, "after ", 30000, out, sizeof out), "migrate never returned: %s",
		  out);
	cr_assert_not_null(strstr(out, "after a=nil c=io host=h1 n=5"), "wrong results: %s", out);
	t = last_tick(&hosts[0], id);
	wait_ticks(&hosts[0], id, t + 3);
	check_ticks(&hosts[0], id, "after a timed-out migrate");
	cr_assert_eq(lists(&hosts[0], id), 1);
}

static const char clone_lua[] =
	"function main()\n"
	"  local n = 7\n"
	"  local r, e = agent.clone('h2')\n"
	"  agent.log(string.format('cloned r=%s self=%s host=%s n=%d', tostring(r),\n"
	"    tostring(r == agent.id()), agent.host(), n))\n"
	"  while true do n = n + 1; agent.log('tick ' .. n); agent.sleep(0.05) end\n"
	"end\n";

Test(migself, clone_goes_on_under_a_new_id_and_the_original_goes_on)
{
	char segp[300], id[32], out[16384], cid[32], want[128];
	const char *p;

	start_host(&hosts[0], NULL, NULL);
	start_host(&hosts[1], NULL, NULL);
	introduce(2);
	make_seg("cloner", clone_lua, segp, sizeof segp);
	run_seg(&hosts[0], segp, id);
	cr_assert(wait_log(&hosts[0], id, "cloned ", 30000, out, sizeof out), "clone never returned: %s",
		  out);
	p = strstr(out, "cloned r=");
	cr_assert_not_null(p);
	memcpy(cid, p + 9, 16);
	cid[16] = '\0';
	cr_assert_str_neq(cid, id, "the clone has the original's id");
	snprintf(want, sizeof want, "cloned r=%s self=false host=h1 n=7", cid);
	cr_assert_not_null(strstr(out, want), "at the source: %s", out);
	cr_assert(wait_log(&hosts[1], cid, "cloned ", 15000, out, sizeof out), "no clone on h2: %s", out);
	snprintf(want, sizeof want, "cloned r=%s self=true host=h2 n=7", cid);
	cr_assert_not_null(strstr(out, want), "in the clone: %s", out);
	wait_ticks(&hosts[1], cid, 10);
	wait_ticks(&hosts[0], id, 10);
	cr_assert_eq(lists(&hosts[0], id), 1);
	cr_assert_eq(lists(&hosts[1], id), 0, "the original moved");
	cr_assert_eq(lists(&hosts[1], cid), 1);
}

static const char busy_lua[] =
	"function main()\n"
	"  local n, t = 0, 0\n"
	"  while true do\n"
	"    n = n + 1\n"
	"    if n % 20000 == 0 then t = t + 1; agent.log('tick ' .. t) end\n"
	"  end\n"
	"end\n";

/* Runtime bug 1: a suspend asked while the agent is on a worker was lost
 * unless the agent happened to wait. */
Test(migself, push_moves_an_agent_that_computes_without_ever_waiting)
{
	char segp[300], id[32], out[512];
	int before, first;

	start_host(&hosts[0], NULL, NULL);
	start_host(&hosts[1], NULL, NULL);
	make_seg("busy", busy_lua, segp, sizeof segp);
	run_seg(&hosts[0], segp, id);
	wait_ticks(&hosts[0], id, 5);
	cr_assert_eq(ctl(&hosts[0], out, sizeof out, 20000, "push", id, "--to", "h2", NULL), 0, "push: %s",
		     out);
	before = last_tick(&hosts[0], id);
	cr_assert_eq(lists(&hosts[0], id), 0, "still listed at the source");
	{
		char lg[16384];

		cr_assert(wait_log(&hosts[1], id, "tick ", 10000, lg, sizeof lg), "not running on h2: %s", lg);
	}
	wait_ticks(&hosts[1], id, before + 3);
	first = first_tick(&hosts[1], id);
	cr_assert_geq(first, before, "the count restarted (%d after %d): state lost", first, before);
	check_ticks(&hosts[1], id, "push of a busy agent");
	/* and back, twice more: each suspend lands */
	cr_assert_eq(ctl(&hosts[1], out, sizeof out, 20000, "push", id, "--to", "h1", NULL), 0, "push back: %s",
		     out);
	cr_assert_eq(lists(&hosts[0], id), 1);
}

static const char sender_lua[] =
	"function main()\n"
	"  local to = agent.recv()\n"
	"  for i = 1, 30 do\n"
	"    local ok, err = agent.send(to, 's' .. i, 'h2')\n"
	"    if not ok then agent.log('send failed ' .. tostring(err)) end\n"
	"    agent.sleep(0.03)\n"
	"  end\n"
	"  agent.log('sent all')\n"
	"  while true do agent.sleep(1) end\n"
	"end\n";

/* The last "total N dups D" the inbox agent logged on h. */
static int inbox_counts(struct host *h, const char *id, int *total, int *dups)
{
	char out[16384];
	char *p, *last = NULL;

	if (ctl(h, out, sizeof out, 10000, "logs", id, "--lines", "5", NULL) != 0)
		return -1;
	for (p = strstr(out, "total "); p; p = strstr(p + 6, "total "))
		last = p;
	if (last == NULL || sscanf(last, "total %d dups %d", total, dups) != 2)
		return -1;
	return 0;
}

/* An agent on h1 sends to one on h2 (named by a host hint) while that one
 * hops h2 -> h1 -> h2: every message arrives, once. */
Test(migself, agent_send_reaches_an_agent_elsewhere_and_in_flight_exactly_once)
{
	char segp[300], iseg[300], sid[32], iid[32], out[16384], quoted[40];
	int total = -1, dups = -1;
	struct host *where = NULL;
	long end;

	start_host(&hosts[0], NULL, NULL);
	start_host(&hosts[1], NULL, NULL);
	introduce(2);
	make_seg("sender", sender_lua, segp, sizeof segp);
	snprintf(iseg, sizeof iseg, "%.200s/inbox.seg", tmp);
	run_seg(&hosts[1], iseg, iid);
	run_seg(&hosts[0], segp, sid);
	snprintf(quoted, sizeof quoted, "\"%s\"", iid);
	cr_assert_eq(ctl(&hosts[0], out, sizeof out, 10000, "send", sid, quoted, NULL, NULL), 0, "%s", out);
	usleep(200000);
	cr_assert_eq(ctl(&hosts[1], out, sizeof out, 20000, "push", iid, "--to", "h1", NULL), 0, "push: %s", out);
	usleep(200000);
	cr_assert_eq(ctl(&hosts[0], out, sizeof out, 20000, "push", iid, "--to", "h2", NULL), 0, "push back: %s",
		     out);
	cr_assert(wait_log(&hosts[0], sid, "sent all", 20000, out, sizeof out), "sender: %s", out);
	cr_assert_null(strstr(out, "send failed"), "%s", out);
	end = now_ms() + 15000;
	while (now_ms() < end) {
		for (int i = 0; i < 2; i++)
			if (lists(&hosts[i], iid) == 1 && inbox_counts(&hosts[i], iid, &total, &dups) == 0)
				where = &hosts[i];
		if (where && total == 30)
			break;
		usleep(100000);
	}
	cr_assert_not_null(where, "the inbox agent is nowhere");
	cr_assert_eq(total, 30, "%d of 30 messages arrived", total);
	cr_assert_eq(dups, 0, "%d messages arrived twice", dups);
}

static const char hoarder_lua[] =
	"function main()\n"
	"  local n = 0\n"
	"  while agent.host() == 'h1' do n = n + 1 end\n"
	"  local got = 0\n"
	"  while true do\n"
	"    local m = agent.recv(0.1)\n"
	"    if m ~= nil then got = got + 1 end\n"
	"    agent.log('got ' .. got .. ' on ' .. agent.host())\n"
	"  end\n"
	"end\n";

/* Messages already queued for an agent suspended while it computes (its
 * mailbox not empty) follow it instead of being dropped at the source. */
Test(migself, messages_queued_for_a_busy_agent_follow_it)
{
	char segp[300], id[32], out[16384], msg[16];

	start_host(&hosts[0], NULL, NULL);
	start_host(&hosts[1], NULL, NULL);
	make_seg("hoarder", hoarder_lua, segp, sizeof segp);
	run_seg(&hosts[0], segp, id);
	for (int i = 0; i < 5; i++) {
		snprintf(msg, sizeof msg, "q%d", i);
		cr_assert_eq(ctl(&hosts[0], out, sizeof out, 10000, "send", id, msg, NULL, NULL), 0, "send: %s", out);
	}
	cr_assert_eq(ctl(&hosts[0], out, sizeof out, 20000, "push", id, "--to", "h2", NULL), 0, "push: %s", out);
	cr_assert(wait_log(&hosts[1], id, "got 5 on h2", 15000, out, sizeof out), "messages lost: %s", out);
	usleep(500000);
	cr_assert(wait_log(&hosts[1], id, "got 5 on h2", 1000, out, sizeof out));
	cr_assert_null(strstr(out, "got 6"), "a message arrived twice: %s", out);
}
