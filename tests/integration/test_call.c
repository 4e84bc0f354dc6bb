/*
 * test_call.c: access transparency between real daemons on loopback
 * (issue 8): methods an agent exports (agent.export) answer `agentctl call`
 * and proxies in other agents (agent.proxy) on the agent's own host, from
 * another host, and while the agent moves back and forth (every call
 * answered once and run once); a passivated agent is activated by a call;
 * a call whose callee's host is dead times out; an unknown method, a
 * method that raises, one that tries to block and one that never ends are
 * errors for the caller while the callee lives on.
 */
#include "agd_json.h"
#include "agd_vm.h"
#include "mig_state.h"
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

#ifndef CALL_JSON_ONLY
#include "migcluster.h"
#endif

/* Two binaries from this file (call.cmake): test_call runs the daemons,
 * test_call_json (CALL_JSON_ONLY) the conversions alone. */
#ifndef CALL_JSON_ONLY
static pid_t pusher; /* a test's helper process, or 0 */

/* A failed test leaves its helper running: stop it before the cluster. */
static void call_teardown(void)
{
	if (pusher > 0) {
		kill(pusher, SIGKILL);
		waitpid(pusher, NULL, 0);
		pusher = 0;
	}
	teardown();
}

TestSuite(call, .init = setup, .fini = call_teardown, .timeout = 150);

/* Daemons learn each other's peer endpoints from agentctl's push and from
 * HELLO: a ticker pushed round the first n hosts introduces them. */
static void introduce(int n)
{
	char id[32], out[512];

	cr_assert_eq(ctl(&hosts[0], out, sizeof out, 10000, "run", seg, NULL, NULL, NULL), 0, "run: %s", out);
	memcpy(id, out, 16);
	id[16] = '\0';
	for (int i = 0; i < n; i++)
		cr_assert_eq(ctl(&hosts[i], out, sizeof out, 20000, "push", id, "--to",
				 hosts[(i + 1) % n].name, "--weak"),
			     0, "introduce %s: %s", hosts[i].name, out);
	cr_assert_eq(ctl(&hosts[0], out, sizeof out, 10000, "kill", id, NULL, NULL, NULL), 0, "%s", out);
}

/* Signs agent `name` (main.lua = lua, entry function main). */
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

/* agentctl --host h run SEG [--args JSON] [--activation MODE]; the id. */
static void run_agent(struct host *h, const char *segpath, const char *args, const char *mode,
		      char id[32])
{
	char out[256];
	char *argv[12];
	int n = 0;

	argv[n++] = (char *)ctlbin();
	argv[n++] = "--host";
	argv[n++] = h->ctl;
	argv[n++] = "run";
	argv[n++] = (char *)segpath;
	if (args) {
		argv[n++] = "--args";
		argv[n++] = (char *)args;
	}
	if (mode) {
		argv[n++] = "--activation";
		argv[n++] = (char *)mode;
	}
	argv[n] = NULL;
	cr_assert_eq(tst_run(argv, out, sizeof out, 10000), 0, "run: %s", out);
	cr_assert_geq(strlen(out), 16);
	memcpy(id, out, 16);
	id[16] = '\0';
}

/* agentctl --host h [--json] call ID METHOD [ARGS...] [--wait MS]: the exit
 * code, stdout in out. */
static int call(struct host *h, int json, char *out, size_t len, const char *id, const char *method,
		const char *a1, const char *a2, const char *wait_ms)
{
	char *argv[16];
	int n = 0;

	argv[n++] = (char *)ctlbin();
	argv[n++] = "--host";
	argv[n++] = h->ctl;
	argv[n++] = "--timeout";
	argv[n++] = "20000";
	if (json)
		argv[n++] = "--json";
	argv[n++] = "call";
	argv[n++] = (char *)id;
	argv[n++] = (char *)method;
	if (a1)
		argv[n++] = (char *)a1;
	if (a2)
		argv[n++] = (char *)a2;
	if (wait_ms) {
		argv[n++] = "--wait";
		argv[n++] = (char *)wait_ms;
	}
	argv[n] = NULL;
	out[0] = '\0';
	return tst_run(argv, out, len, 30000);
}

/* Polls h's log of agent id for `needle`, at most ms; 1 when found. */
static int wait_log(struct host *h, const char *id, const char *needle, int ms, char *out, size_t len)
{
	long end = now_ms() + ms;

	do {
		if (ctl(h, out, len, 10000, "logs", id, "--lines", "32", NULL) == 0 && strstr(out, needle))
			return 1;
		usleep(50000);
	} while (now_ms() < end);
	return 0;
}

/* A service: plain methods, and ones that fail in each way a method can. */
static const char server_lua[] =
	"local calls = 0\n"
	"function main()\n"
	"  agent.export({\n"
	"    add = function(a, b) calls = calls + 1; return a + b end,\n"
	"    echo = function(...) calls = calls + 1; return ... end,\n"
	"    whoami = function() return agent.host() end,\n"
	"    count = function() return calls end,\n"
	"    boom = function() error('boom from the method') end,\n"
	"    blocker = function() agent.sleep(1); return 'slept' end,\n"
	"    spin = function() local x = 0 while true do x = x + 1 end end,\n"
	"  })\n"
	"  agent.log('serving on ' .. agent.host())\n"
	"  while true do local m = agent.recv() if m == 'stop' then break end end\n"
	"end\n";

Test(call, call_on_the_agents_host_returns_the_methods_results)
{
	char segp[300], id[32], out[8192];

	start_host(&hosts[0], NULL, NULL);
	make_seg("server", server_lua, segp, sizeof segp);
	run_agent(&hosts[0], segp, NULL, NULL, id);
	cr_assert(wait_log(&hosts[0], id, "serving on h1", 10000, out, sizeof out), "%s", out);
	cr_assert_eq(call(&hosts[0], 0, out, sizeof out, id, "add", "2", "3", NULL), 0, "%s", out);
	cr_assert_eq(atoi(out), 5, "%s", out);
	/* Several results, tables, strings: all come back as JSON. */
	cr_assert_eq(call(&hosts[0], 1, out, sizeof out, id, "echo", "{\"k\":[1,2,3],\"s\":\"x\"}", "word",
			  NULL),
		     0, "%s", out);
	cr_assert(strstr(out, "\"result\":{\"k\":[1,2,3],\"s\":\"x\"}") != NULL, "%s", out);
	cr_assert_eq(call(&hosts[0], 0, out, sizeof out, id, "count", NULL, NULL, NULL), 0, "%s", out);
	cr_assert_eq(atoi(out), 2, "each call ran once: %s", out);
}

Test(call, call_through_another_host_follows_the_agent_there)
{
	char segp[300], id[32], out[8192];

	start_host(&hosts[0], NULL, NULL);
	start_host(&hosts[1], NULL, NULL);
	introduce(2);
	make_seg("server", server_lua, segp, sizeof segp);
	run_agent(&hosts[0], segp, NULL, NULL, id);
	cr_assert(wait_log(&hosts[0], id, "serving on h1", 10000, out, sizeof out), "%s", out);
	cr_assert_eq(ctl(&hosts[0], out, sizeof out, 20000, "push", id, "--to", "h2", NULL), 0, "push: %s", out);
	/* Asked at its home, which forwards to where it is now. */
	cr_assert_eq(call(&hosts[0], 0, out, sizeof out, id, "whoami", NULL, NULL, NULL), 0, "%s", out);
	cr_assert(strncmp(out, "h2", 2) == 0, "answered from %s", out);
	cr_assert_eq(call(&hosts[0], 1, out, sizeof out, id, "add", "40", "2", NULL), 0, "%s", out);
	cr_assert(strstr(out, "\"result\":42") != NULL, "%s", out);
}

/* Hops between h1 and h2 by itself as fast as it can, counting the calls
 * it serves. */
static const char hopper_lua[] =
	"function main()\n"
	"  local n = 0\n"
	"  agent.export({ inc = function() n = n + 1; return n end,\n"
	"                 get = function() return n end })\n"
	"  agent.log('hopping')\n"
	"  while true do\n"
	"    local to = agent.host() == 'h1' and 'h2' or 'h1'\n"
	"    agent.migrate(to)\n"
	"    agent.sleep(0.02)\n"
	"  end\n"
	"end\n";

Test(call, calls_while_the_agent_moves_back_and_forth_are_answered_once_each)
{
	char segp[300], id[32], out[8192];
	int n = 30, moved = 0;

	start_host(&hosts[0], NULL, NULL);
	start_host(&hosts[1], NULL, NULL);
	introduce(2);
	make_seg("hopper", hopper_lua, segp, sizeof segp);
	run_agent(&hosts[0], segp, NULL, NULL, id);
	/* No wait for its first line: it leaves h1 at once, its log with it.
	 * Its home answers once it has run (a call is queued until its first
	 * slice); after a few hops both hosts know where it went. */
	cr_assert_eq(call(&hosts[0], 0, out, sizeof out, id, "get", NULL, NULL, "10000"), 0, "%s", out);
	cr_assert_eq(atoi(out), 0, "%s", out);
	usleep(300000);
	for (int i = 1; i <= n; i++) {
		/* Alternately through either host: each follows the agent. */
		struct host *h = &hosts[i % 2];

		cr_assert_eq(call(h, 0, out, sizeof out, id, "inc", NULL, NULL, "10000"), 0,
			     "call %d through %s: %s", i, h->name, out);
		cr_assert_eq(atoi(out), i, "call %d was run %s", i, atoi(out) < i ? "not at all" : "twice");
	}
	cr_assert_eq(call(&hosts[0], 0, out, sizeof out, id, "get", NULL, NULL, "10000"), 0, "%s", out);
	cr_assert_eq(atoi(out), n, "%s", out);
	/* It did move meanwhile: its epoch counts the moves. */
	/* (h3 is down; while in flight the agent is listed nowhere: ask again) */
	for (int k = 0; k < 50 && moved == 0; k++) {
		const char *a, *e;

		ctl(&hosts[0], out, sizeof out, 10000, "--json", "ps", "--all", NULL, NULL);
		a = strstr(out, id);
		e = a ? strstr(a, "\"epoch\":") : NULL;
		moved = e ? atoi(e + 8) : 0;
	}
	cr_assert_gt(moved, 2, "the agent hardly moved: %s", out);
}

/* A client that calls the service through a proxy, in every way a proxy
 * call can end, and logs what it got. */
static const char client_lua[] =
	"local start = ...\n"
	"function main(args)\n"
	"  args = args or start\n"
	"  local p = agent.proxy(args.server, { host = args.host, timeout = args.timeout or 10 })\n"
	"  local s = p:add(2, 3)\n"
	"  local t = p.add(10, 20)\n"
	"  agent.log(string.format('sum=%s sum2=%s where=%s', tostring(s), tostring(t), tostring(p:whoami())))\n"
	"  local r, msg, code = p:nosuch(1)\n"
	"  agent.log(string.format('nosuch r=%s code=%s msg=%s', tostring(r), tostring(code), tostring(msg)))\n"
	"  r, msg, code = p:boom()\n"
	"  agent.log(string.format('boom r=%s code=%s msg=%s', tostring(r), tostring(code), tostring(msg)))\n"
	"  r, msg, code = p:blocker()\n"
	"  agent.log(string.format('blocker r=%s code=%s msg=%s', tostring(r), tostring(code), tostring(msg)))\n"
	"  local ok, err = pcall(coroutine.wrap(function() return p:add(1, 1) end))\n"
	"  agent.log(string.format('nested ok=%s err=%s', tostring(ok), tostring(err)))\n"
	"  r, msg, code = p:add(function() end, 1)\n"
	"  agent.log(string.format('badarg r=%s code=%s', tostring(r), tostring(code)))\n"
	"  agent.log('client done, count=' .. tostring(p:count()))\n"
	"  agent.recv()\n"
	"end\n";

Test(call, proxy_in_one_agent_calls_an_agent_on_another_host)
{
	char segp[300], cseg[300], id[32], cid[32], out[16384], args[256];

	start_host(&hosts[0], NULL, NULL);
	start_host(&hosts[1], NULL, NULL);
	introduce(2);
	make_seg("server", server_lua, segp, sizeof segp);
	make_seg("client", client_lua, cseg, sizeof cseg);
	run_agent(&hosts[1], segp, NULL, NULL, id);
	cr_assert(wait_log(&hosts[1], id, "serving on h2", 10000, out, sizeof out), "%s", out);
	snprintf(args, sizeof args, "{\"server\":\"%s\",\"host\":\"h2\"}", id);
	run_agent(&hosts[0], cseg, args, NULL, cid);
	cr_assert(wait_log(&hosts[0], cid, "client done", 30000, out, sizeof out), "%s", out);
	cr_assert(strstr(out, "sum=5 sum2=30 where=h2") != NULL, "%s", out);
	cr_assert(strstr(out, "nosuch r=nil code=notfound msg=no method 'nosuch'") != NULL, "%s", out);
	cr_assert(strstr(out, "boom r=nil code=remote msg=") != NULL &&
		  strstr(out, "boom from the method") != NULL, "%s", out);
	cr_assert(strstr(out, "blocker r=nil code=remote") != NULL &&
		  strstr(out, "cannot block") != NULL, "%s", out);
	cr_assert(strstr(out, "nested ok=false") != NULL && strstr(out, "nested coroutine") != NULL, "%s", out);
	cr_assert(strstr(out, "badarg r=nil code=arg") != NULL, "%s", out);
	/* add, add (p.add form): the failed ones ran nothing that counts. */
	cr_assert(strstr(out, "client done, count=2") != NULL, "%s", out);
	/* The callee lives on after the errors. */
	cr_assert_eq(call(&hosts[1], 0, out, sizeof out, id, "add", "1", "1", NULL), 0, "%s", out);
	cr_assert_eq(atoi(out), 2, "%s", out);
}

Test(call, errors_of_a_method_go_to_the_caller_and_the_agent_lives_on)
{
	char segp[300], id[32], out[8192];

	start_host(&hosts[0], NULL, NULL);
	make_seg("server", server_lua, segp, sizeof segp);
	run_agent(&hosts[0], segp, NULL, NULL, id);
	cr_assert(wait_log(&hosts[0], id, "serving on h1", 10000, out, sizeof out), "%s", out);
	cr_assert_neq(call(&hosts[0], 1, out, sizeof out, id, "nosuch", NULL, NULL, NULL), 0, "%s", out);
	cr_assert(strstr(out, "\"code\":\"notfound\"") != NULL && strstr(out, "no method") != NULL, "%s", out);
	cr_assert_neq(call(&hosts[0], 1, out, sizeof out, id, "boom", NULL, NULL, NULL), 0, "%s", out);
	cr_assert(strstr(out, "\"code\":\"remote\"") != NULL && strstr(out, "boom from the method") != NULL,
		  "%s", out);
	cr_assert_neq(call(&hosts[0], 1, out, sizeof out, id, "blocker", NULL, NULL, NULL), 0, "%s", out);
	cr_assert(strstr(out, "cannot block") != NULL, "%s", out);
	/* A method that never ends is stopped at its budget. */
	cr_assert_neq(call(&hosts[0], 1, out, sizeof out, id, "spin", NULL, NULL, NULL), 0, "%s", out);
	cr_assert(strstr(out, "budget") != NULL, "%s", out);
	cr_assert_eq(call(&hosts[0], 0, out, sizeof out, id, "add", "20", "22", NULL), 0, "%s", out);
	cr_assert_eq(atoi(out), 42, "%s", out);
	cr_assert_eq(ctl(&hosts[0], out, sizeof out, 10000, "--json", "ps", NULL, NULL, NULL), 0, "%s", out);
	cr_assert(strstr(out, "\"state\":\"waiting\"") != NULL, "the agent still waits in recv: %s", out);
}

Test(call, a_call_to_an_agent_whose_host_died_times_out)
{
	char segp[300], cseg[300], id[32], cid[32], out[16384], args[256];
	long t0;

	start_host(&hosts[0], NULL, NULL);
	start_host(&hosts[1], NULL, NULL);
	introduce(2);
	make_seg("server", server_lua, segp, sizeof segp);
	make_seg("client", client_lua, cseg, sizeof cseg);
	run_agent(&hosts[0], segp, NULL, NULL, id);
	cr_assert(wait_log(&hosts[0], id, "serving on h1", 10000, out, sizeof out), "%s", out);
	cr_assert_eq(ctl(&hosts[0], out, sizeof out, 20000, "push", id, "--to", "h2", NULL), 0, "push: %s", out);
	kill(hosts[1].pid, SIGKILL);
	waitpid(hosts[1].pid, NULL, 0);
	hosts[1].pid = 0;
	/* From outside: h1 forwards to h2, which never answers. */
	t0 = now_ms();
	cr_assert_neq(call(&hosts[0], 1, out, sizeof out, id, "add", "1", "2", "1500"), 0, "%s", out);
	cr_assert(strstr(out, "\"code\":\"timeout\"") != NULL, "%s", out);
	cr_assert_lt(now_ms() - t0, 15000, "the timeout was not kept");
	/* From an agent: its proxy call returns nil, msg, "timeout"; it goes on. */
	snprintf(args, sizeof args, "{\"server\":\"%s\",\"host\":\"h2\",\"timeout\":1}", id);
	run_agent(&hosts[0], cseg, args, NULL, cid);
	cr_assert(wait_log(&hosts[0], cid, "client done", 60000, out, sizeof out), "%s", out);
	cr_assert(strstr(out, "sum=nil") != NULL, "%s", out);
	cr_assert(strstr(out, "nosuch r=nil code=timeout") != NULL, "%s", out);
}

static const char sleeper_lua[] =
	"function main()\n"
	"  local n = 100\n"
	"  agent.export({ inc = function() n = n + 1; return n end })\n"
	"  agent.log('ready')\n"
	"  agent.recv()\n"
	"end\n";

Test(call, a_passivated_agent_is_activated_by_a_call_with_its_state)
{
	char segp[300], id[32], out[16384];
	long end;
	int passive = 0;

	/* Idle on-demand agents go to the store after 0.3 s. */
	{
		FILE *f = fopen(hosts[0].conf, "a");

		cr_assert_not_null(f);
		fputs("\n[agents]\npassivate_after = 0.3\n", f);
		fclose(f);
	}
	start_host(&hosts[0], NULL, NULL);
	make_seg("sleeper", sleeper_lua, segp, sizeof segp);
	run_agent(&hosts[0], segp, NULL, "on-demand", id);
	cr_assert(wait_log(&hosts[0], id, "ready", 10000, out, sizeof out), "%s", out);
	for (int round = 1; round <= 2; round++) {
		end = now_ms() + 10000;
		passive = 0;
		while (!passive && now_ms() < end) {
			cr_assert_eq(ctl(&hosts[0], out, sizeof out, 10000, "--json", "ps", NULL, NULL, NULL), 0);
			passive = strstr(out, "\"resident\":false") != NULL;
			usleep(100000);
		}
		cr_assert(passive, "never passivated: %s", out);
		cr_assert_eq(call(&hosts[0], 0, out, sizeof out, id, "inc", NULL, NULL, NULL), 0, "%s", out);
		cr_assert_eq(atoi(out), 100 + round, "state kept across passivation: %s", out);
	}
}

/* Calls an agent on a host that is down, and says how it ended and where. */
static const char waiter_lua[] =
	"local start = ...\n"
	"function main(args)\n"
	"  args = args or start\n"
	"  local p = agent.proxy(args.server, { host = args.host, timeout = args.timeout })\n"
	"  agent.log('calling')\n"
	"  local r, msg, code = p:add(1, 2)\n"
	"  agent.log(string.format('answered r=%s code=%s msg=%s on %s', tostring(r), tostring(code),\n"
	"    tostring(msg), agent.host()))\n"
	"  agent.recv()\n"
	"end\n";

/* A server on h2, then h2 killed: calls to it can only time out. */
static void dead_server(char id[32])
{
	char segp[300], out[8192];

	make_seg("server", server_lua, segp, sizeof segp);
	run_agent(&hosts[1], segp, NULL, NULL, id);
	cr_assert(wait_log(&hosts[1], id, "serving on h2", 10000, out, sizeof out), "%s", out);
	kill(hosts[1].pid, SIGKILL);
	waitpid(hosts[1].pid, NULL, 0);
	hosts[1].pid = 0;
}

Test(call, a_parked_caller_is_moved_only_after_its_answer)
{
	char wseg[300], id[32], wid[32], out[16384], args[256];

	for (int i = 0; i < HOSTS; i++)
		start_host(&hosts[i], NULL, NULL);
	introduce(HOSTS);
	dead_server(id);
	make_seg("waiter", waiter_lua, wseg, sizeof wseg);
	snprintf(args, sizeof args, "{\"server\":\"%s\",\"host\":\"h2\",\"timeout\":3}", id);
	run_agent(&hosts[0], wseg, args, NULL, wid);
	cr_assert(wait_log(&hosts[0], wid, "calling", 10000, out, sizeof out), "%s", out);
	/* Pushed while it waits: the move waits for the timeout to resume it,
	 * so the answer finds it where it asked. */
	cr_assert_eq(ctl(&hosts[0], out, sizeof out, 30000, "push", wid, "--to", "h3", NULL), 0, "push: %s",
		     out);
	cr_assert_eq(ctl(&hosts[2], out, sizeof out, 10000, "--json", "ps", NULL, NULL, NULL), 0, "%s", out);
	cr_assert(strstr(out, wid) != NULL, "not on h3 after the push: %s", out);
	/* Its lines on h1 left with it; h1's daemon log keeps them. */
	{
		FILE *f = fopen(hosts[0].log, "r");
		size_t n;

		cr_assert_not_null(f);
		n = fread(out, 1, sizeof out - 1, f);
		out[n] = '\0';
		fclose(f);
	}
	cr_assert(strstr(out, "answered r=nil code=timeout") != NULL &&
		  strstr(out, " in time on h1") != NULL,
		  "the call did not end on h1 before the move: %s", out);
}

Test(call, a_caller_parked_when_its_daemon_stops_resumes_with_a_timeout)
{
	char wseg[300], id[32], wid[32], out[16384], args[256];

	start_host(&hosts[0], NULL, NULL);
	start_host(&hosts[1], NULL, NULL);
	introduce(2);
	dead_server(id);
	make_seg("waiter", waiter_lua, wseg, sizeof wseg);
	snprintf(args, sizeof args, "{\"server\":\"%s\",\"host\":\"h2\",\"timeout\":60}", id);
	run_agent(&hosts[0], wseg, args, NULL, wid);
	cr_assert(wait_log(&hosts[0], wid, "calling", 10000, out, sizeof out), "%s", out);
	usleep(200000);
	/* SIGTERM: the parked agent is persisted in its proxy call. */
	cr_assert_eq(tst_proc_stop(hosts[0].pid, 10000), 0);
	hosts[0].pid = 0;
	start_host(&hosts[0], NULL, NULL);
	cr_assert(wait_log(&hosts[0], wid, "answered r=nil code=timeout", 10000, out, sizeof out),
		  "the call did not end after the restart: %s", out);
	cr_assert(strstr(out, "restarted") != NULL, "%s", out);
}

Test(call, calls_and_proxies_work_in_process_isolation)
{
	char segp[300], cseg[300], id[32], cid[32], out[16384], args[256];

	/* Every agent in a worker process of its own. */
	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(hosts[i].conf, "a");

		cr_assert_not_null(f);
		fputs("\n[daemon]\nisolation = process\n", f);
		fclose(f);
		start_host(&hosts[i], NULL, NULL);
	}
	cr_assert_eq(ctl(&hosts[0], out, sizeof out, 10000, "--json", "status", NULL, NULL, NULL), 0, "%s", out);
	cr_assert(strstr(out, "\"isolation\":\"process\"") != NULL, "%s", out);
	introduce(2);
	make_seg("server", server_lua, segp, sizeof segp);
	make_seg("client", client_lua, cseg, sizeof cseg);
	run_agent(&hosts[1], segp, NULL, NULL, id);
	cr_assert(wait_log(&hosts[1], id, "serving on h2", 10000, out, sizeof out), "%s", out);
	cr_assert_eq(call(&hosts[1], 0, out, sizeof out, id, "add", "2", "40", NULL), 0, "%s", out);
	cr_assert_eq(atoi(out), 42, "%s", out);
	snprintf(args, sizeof args, "{\"server\":\"%s\",\"host\":\"h2\"}", id);
	run_agent(&hosts[0], cseg, args, NULL, cid);
	cr_assert(wait_log(&hosts[0], cid, "client done", 30000, out, sizeof out), "%s", out);
	cr_assert(strstr(out, "sum=5 sum2=30 where=h2") != NULL, "%s", out);
	cr_assert(strstr(out, "boom r=nil code=remote") != NULL, "%s", out);
	cr_assert(strstr(out, "client done, count=3") != NULL, "%s", out);
}

Test(call, calls_while_agentctl_pushes_the_agent_back_and_forth_run_once_each)
{
	char segp[300], id[32], out[8192];
	int n = 30, status = 0;

	start_host(&hosts[0], NULL, NULL);
	start_host(&hosts[1], NULL, NULL);
	introduce(2);
	make_seg("server", server_lua, segp, sizeof segp);
	run_agent(&hosts[0], segp, NULL, NULL, id);
	cr_assert(wait_log(&hosts[0], id, "serving on h1", 10000, out, sizeof out), "%s", out);
	/* A second process pushes it h1 -> h2 -> h1 ... while we call; it
	 * exits with the number of pushes that went through. */
	pusher = fork();
	cr_assert_geq(pusher, 0);
	if (pusher == 0) {
		int ok = 0;

		for (int k = 0; k < 20; k++) {
			struct host *from = &hosts[k % 2];
			char *argv[] = { (char *)ctlbin(), "--host", from->ctl, "--timeout", "10000", "push",
					 id, "--to", hosts[(k + 1) % 2].name, NULL };

			ok += tst_run(argv, NULL, 0, 15000) == 0;
		}
		_exit(ok);
	}
	/* Through its home, which always knows where it went (h2 knows
	 * nothing of it until its first push lands). */
	for (int i = 1; i <= n; i++) {
		cr_assert_eq(call(&hosts[0], 0, out, sizeof out, id, "add", "1", "1", "10000"), 0,
			     "call %d: %s", i, out);
		cr_assert_eq(atoi(out), 2, "%s", out);
	}
	cr_assert_eq(waitpid(pusher, &status, 0), pusher);
	pusher = 0;
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) >= 10, "only %d of 20 pushes went through",
		  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	cr_assert_eq(call(&hosts[0], 0, out, sizeof out, id, "count", NULL, NULL, "10000"), 0, "%s", out);
	cr_assert_eq(atoi(out), n, "every call ran exactly once: %s", out);
}

/* Holds a proxy (and one of its methods) across a move, and calls itself. */
static const char traveller_lua[] =
	"local start = ...\n"
	"function main(args)\n"
	"  args = args or start\n"
	"  local p = agent.proxy(args.server, { host = args.host })\n"
	"  local add = p.add\n"
	"  agent.export({ twice = function(x) return 2 * x end })\n"
	"  local me = agent.proxy(agent.id())\n"
	"  local before = me:twice(21)\n"
	"  local ok = agent.migrate('h3')\n"
	"  agent.log(string.format('moved=%s on %s before=%s sum=%s sum2=%s self=%s', tostring(ok),\n"
	"    agent.host(), tostring(before), tostring(p:add(1, 2)), tostring(add(3, 4)),\n"
	"    tostring(me:twice(5))))\n"
	"  agent.recv()\n"
	"end\n";

Test(call, a_proxy_moves_with_its_agent_and_an_agent_may_call_itself)
{
	char segp[300], tseg[300], id[32], tid[32], out[16384], args[256];

	for (int i = 0; i < HOSTS; i++)
		start_host(&hosts[i], NULL, NULL);
	introduce(HOSTS);
	make_seg("server", server_lua, segp, sizeof segp);
	make_seg("traveller", traveller_lua, tseg, sizeof tseg);
	run_agent(&hosts[1], segp, NULL, NULL, id);
	cr_assert(wait_log(&hosts[1], id, "serving on h2", 10000, out, sizeof out), "%s", out);
	snprintf(args, sizeof args, "{\"server\":\"%s\",\"host\":\"h2\"}", id);
	run_agent(&hosts[0], tseg, args, NULL, tid);
	cr_assert(wait_log(&hosts[2], tid, "moved=", 30000, out, sizeof out), "%s", out);
	cr_assert(strstr(out, "moved=true on h3 before=42 sum=3 sum2=7 self=10") != NULL, "%s", out);
}

#else /* CALL_JSON_ONLY */
/* ---- the conversions of agentctl call (no daemon) ---- */

/* Encodes JSON array `args` as call arguments, then writes them back as a
 * call's results would be ("result", "results"); returns the JSON text
 * (static), or NULL when the arguments are refused. */
static const char *through(const char *args)
{
	static char text[4096];
	struct agd_json *doc = NULL;
	struct mig_buf buf = { 0 };
	struct agd_jw w;
	char err[256], *body;
	int rc;

	cr_assert_eq(agd_json_parse(args, strlen(args), &doc, NULL), 0, "%s", args);
	rc = agd_call_args_from_json(doc, agd_json_root(doc), &buf, err, sizeof err);
	agd_json_destroy(&doc);
	if (rc != 0) {
		agd_buf_free(&buf);
		return NULL;
	}
	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	cr_assert_eq(agd_call_results_json(buf.data, buf.len, &w), 0);
	agd_jw_obj_end(&w);
	agd_buf_free(&buf);
	body = agd_jw_take(&w, NULL);
	cr_assert_not_null(body);
	snprintf(text, sizeof text, "%s", body);
	free(body);
	return text;
}

TestSuite(call_json, .timeout = 30);

Test(call_json, arguments_come_back_as_results_with_their_count_and_types)
{
	const char *t = through("[1, \"two\", 2.5, true, [10, 20], {\"k\": \"v\"}]");

	cr_assert_str_eq(t, "{\"result\":1,\"results\":[1,\"two\",2.5,true,[10,20],{\"k\":\"v\"}]}");
}

Test(call_json, a_null_argument_keeps_its_place)
{
	cr_assert_str_eq(through("[null, 2, null]"), "{\"result\":null,\"results\":[null,2,null]}");
	cr_assert_str_eq(through("[]"), "{\"result\":null,\"results\":[]}");
}

Test(call_json, object_keys_come_out_sorted_so_equal_answers_compare_equal)
{
	cr_assert_str_eq(through("[{\"b\": 2, \"c\": {\"z\": 1, \"y\": 2}, \"a\": 1}]"),
			 "{\"result\":{\"a\":1,\"b\":2,\"c\":{\"y\":2,\"z\":1}},"
			 "\"results\":[{\"a\":1,\"b\":2,\"c\":{\"y\":2,\"z\":1}}]}");
}

Test(call_json, arguments_that_are_not_an_array_are_refused)
{
	cr_assert_null(through("{\"a\": 1}"));
	cr_assert_null(through("3"));
}
#endif /* CALL_JSON_ONLY */
