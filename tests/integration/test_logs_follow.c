/*
 * test_logs_follow.c: an agent's log follows it (issue "agentctl logs" for
 * a touring agent). Real daemons on loopback (migcluster.h): an agent logs
 * on h1, agent.migrate()s to h2, logs, goes on to h3, logs; `agentctl logs`
 * (human and --json, which is the control reply) shows every line in
 * order, each with the host it was logged on and a time that never goes
 * back. After kill -9 of h3's daemon and a restart, the lines stored with
 * its last state are still there. A clone's log starts with its parent's
 * lines, then its own. A weak push carries the log too. And at a real
 * daemon, TRANSFERs sent by this test as a trusted peer (h3's key over
 * CURVE): one without a log (a version-1 peer) and one with a log are
 * admitted, the second with its lines; malformed, oversized and NUL-laden
 * log parts are dropped, the agents admitted all the same, and the daemon
 * goes on answering.
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

#include "agd_logring.h"
#include "agd_wire.h"
#include "mig_key.h"
#include "mig_segment.h"
#include "migcluster.h"

#include <zmq.h>

TestSuite(logs_follow, .init = setup, .fini = teardown, .timeout = 150);

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

/* Signs an agent `name` whose main.lua is `lua`; writes the segment's path
 * to out. */
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

/* Polls `agentctl [--json] logs id` through h until the output holds
 * needle, at most ms; 1 when found (the output is left in out). */
static int wait_logs(struct host *h, int json, const char *id, const char *needle, int ms, char *out,
		     size_t len)
{
	long end = now_ms() + ms;

	do {
		int rc = json ? ctl(h, out, len, 10000, "--json", "logs", id, NULL, NULL)
			      : ctl(h, out, len, 10000, "logs", id, NULL, NULL, NULL);

		if (rc == 0 && strstr(out, needle))
			return 1;
		usleep(50000);
	} while (now_ms() < end);
	return 0;
}

/* The line of the human output holding needle: its HOST column into host
 * and its TIME column's milliseconds into *t; the line's offset, or -1. */
static long line_of(const char *out, const char *needle, char *host, size_t hlen, long long *t)
{
	const char *p = strstr(out, needle), *start, *sp, *sp2;
	struct tm tm;
	int ms = 0;

	if (p == NULL)
		return -1;
	start = p;
	while (start > out && start[-1] != '\n')
		start--;
	sp = strchr(start, ' ');
	cr_assert(sp != NULL && sp < p, "no TIME HOST columns: %s", start);
	sp2 = strchr(sp + 1, ' ');
	cr_assert(sp2 != NULL && sp2 <= p, "no HOST column: %s", start);
	snprintf(host, hlen, "%.*s", (int)(sp2 - sp - 1), sp + 1);
	memset(&tm, 0, sizeof tm);
	cr_assert_not_null(strptime(start, "%Y-%m-%dT%H:%M:%S", &tm), "bad TIME column: %s", start);
	cr_assert_eq(sscanf(start + 20, "%3d", &ms), 1, "no milliseconds: %s", start);
	*t = (long long)timegm(&tm) * 1000 + ms;
	return (long)(start - out);
}

/* Checks that the lines holding needles[0..n) come in that order, logged on
 * hosts[0..n), at times that never go back. */
static void check_order(const char *out, const char *const *needles, const char *const *where, int n)
{
	long prev = -1;
	long long prev_t = 0;

	for (int i = 0; i < n; i++) {
		char host[64];
		long long t = 0;
		long at = line_of(out, needles[i], host, sizeof host, &t);

		cr_assert_geq(at, 0, "line '%s' missing: %s", needles[i], out);
		cr_assert_gt(at, prev, "line '%s' out of order: %s", needles[i], out);
		cr_assert_str_eq(host, where[i], "line '%s' logged on %s, shown as %s: %s", needles[i],
				 where[i], host, out);
		cr_assert_geq(t, prev_t, "time went back at '%s': %s", needles[i], out);
		prev = at;
		prev_t = t;
	}
}

static const char tour_lua[] =
	"function main()\n"
	"  agent.log('one on ' .. agent.host())\n"
	"  agent.migrate('h2')\n"
	"  agent.log('two on ' .. agent.host())\n"
	"  agent.migrate('h3')\n"
	"  agent.log('three on ' .. agent.host())\n"
	"  while true do agent.sleep(1) end\n"
	"end\n";

Test(logs_follow, a_touring_agent_shows_every_line_with_its_host_in_order)
{
	static const char *const needles[] = { "one on h1", "two on h2", "three on h3" };
	static const char *const where[] = { "h1", "h2", "h3" };
	char segp[300], id[32], out[16384];

	for (int i = 0; i < HOSTS; i++)
		start_host(&hosts[i], NULL, NULL);
	introduce(HOSTS);
	make_seg("tour", tour_lua, segp, sizeof segp);
	run_seg(&hosts[0], segp, id);
	/* Asked at h1, agentctl follows the agent to h3. */
	cr_assert(wait_logs(&hosts[0], 0, id, "three on h3", 30000, out, sizeof out),
		  "the agent did not reach h3: %s", out);
	check_order(out, needles, where, 3);
	cr_assert_eq(lists(&hosts[2], id), 1, "not on h3");
	/* The state changes on the way are there too, each where it happened. */
	cr_assert_not_null(strstr(out, " h1 [state] running -> migrating: transfer"), "%s", out);
	cr_assert_not_null(strstr(out, " h2 [state] created -> running: started"), "%s", out);
	/* --json: the control reply, lines as before and entries with hosts. */
	cr_assert(wait_logs(&hosts[2], 1, id, "three on h3", 10000, out, sizeof out), "%s", out);
	{
		const char *lines = strstr(out, "\"lines\""), *entries = strstr(out, "\"entries\"");
		const char *e1 = strstr(out, "{\"t\":"), *h1 = strstr(out, "\"host\":\"h1\",\"text\":\"one on h1\""),
			   *h2 = strstr(out, "\"host\":\"h2\",\"text\":\"two on h2\""),
			   *h3 = strstr(out, "\"host\":\"h3\",\"text\":\"three on h3\"");

		cr_assert(lines && entries && e1, "no lines or entries: %s", out);
		cr_assert(strstr(lines, "\"one on h1\"") != NULL && strstr(lines, "\"one on h1\"") < entries,
			  "\"lines\" lost the plain texts: %s", out);
		cr_assert(h1 && h2 && h3 && h1 < h2 && h2 < h3, "entries without hosts or out of order: %s",
			  out);
	}
}

Test(logs_follow, lines_stored_with_the_last_state_survive_kill_9_and_restart)
{
	static const char *const needles[] = { "one on h1", "two on h2", "[state] resumed after restart",
					       "three on h3" };
	static const char *const where[] = { "h1", "h2", "h3", "h3" };
	char segp[300], id[32], out[16384];
	int status = 0;

	for (int i = 0; i < HOSTS; i++)
		start_host(&hosts[i], NULL, NULL);
	introduce(HOSTS);
	make_seg("tour", tour_lua, segp, sizeof segp);
	run_seg(&hosts[0], segp, id);
	cr_assert(wait_logs(&hosts[2], 0, id, "three on h3", 30000, out, sizeof out),
		  "the agent did not reach h3: %s", out);
	/* Its state was stored as it arrived (with its log); what it logged
	 * after that is redone from that state. */
	kill(hosts[2].pid, SIGKILL);
	waitpid(hosts[2].pid, &status, 0);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	hosts[2].pid = 0;
	start_host(&hosts[2], NULL, NULL);
	cr_assert(wait_logs(&hosts[2], 0, id, "restart", 20000, out, sizeof out),
		  "the agent was not resumed on h3: %s", out);
	cr_assert(wait_logs(&hosts[2], 0, id, "\n", 0, out, sizeof out));
	{
		long end = now_ms() + 10000;

		/* The run resumed after the restart logs its line again. */
		while (now_ms() < end) {
			const char *r = strstr(out, "resumed after restart");

			if (r && strstr(r, "three on h3"))
				break;
			usleep(100000);
			wait_logs(&hosts[2], 0, id, "\n", 0, out, sizeof out);
		}
	}
	check_order(out, needles, where, 4);
}

static const char parent_lua[] =
	"function main()\n"
	"  agent.log('parent before clone on ' .. agent.host())\n"
	"  local r, err = agent.clone('h2')\n"
	"  if r == agent.id() then\n"
	"    agent.log('clone own line on ' .. agent.host())\n"
	"  else\n"
	"    agent.log('parent made ' .. tostring(r) .. ' ' .. tostring(err))\n"
	"  end\n"
	"  while true do agent.sleep(1) end\n"
	"end\n";

Test(logs_follow, a_clone_shows_its_parents_lines_then_its_own)
{
	static const char *const needles[] = { "parent before clone on h1", "clone own line on h2" };
	static const char *const where[] = { "h1", "h2" };
	char segp[300], id[32], clone[32], out[16384];
	const char *p;

	for (int i = 0; i < 2; i++)
		start_host(&hosts[i], NULL, NULL);
	introduce(2);
	make_seg("parent", parent_lua, segp, sizeof segp);
	run_seg(&hosts[0], segp, id);
	cr_assert(wait_logs(&hosts[0], 0, id, "parent made ", 30000, out, sizeof out), "no clone: %s", out);
	p = strstr(out, "parent made ") + strlen("parent made ");
	cr_assert_eq(strspn(p, "0123456789abcdef"), 16, "the clone failed: %s", out);
	memcpy(clone, p, 16);
	clone[16] = '\0';
	cr_assert(wait_logs(&hosts[1], 0, clone, "clone own line on h2", 20000, out, sizeof out),
		  "the clone did not log on h2: %s", out);
	check_order(out, needles, where, 2);
	cr_assert_null(strstr(out, "parent made"), "the clone has a line its parent logged after it: %s",
		       out);
	/* The parent's own log is its own: no line of the clone's. */
	cr_assert(wait_logs(&hosts[0], 0, id, "parent made", 10000, out, sizeof out), "%s", out);
	cr_assert_null(strstr(out, "clone own line"), "the parent shows the clone's line: %s", out);
}

Test(logs_follow, a_weak_push_carries_the_log_too)
{
	static const char *const needles[] = { "tick 1 on h1", "-> migrating: transfer", "tick 1 on h2" };
	static const char *const where[] = { "h1", "h1", "h2" };
	char id[32], out[16384];

	start_host(&hosts[0], NULL, NULL);
	start_host(&hosts[1], NULL, NULL);
	cr_assert_eq(ctl(&hosts[0], out, sizeof out, 10000, "run", seg, NULL, NULL, NULL), 0, "run: %s", out);
	memcpy(id, out, 16);
	id[16] = '\0';
	wait_ticks(&hosts[0], id, 3);
	cr_assert_eq(ctl(&hosts[0], out, sizeof out, 20000, "push", id, "--to", "h2", "--weak"), 0,
		     "push: %s", out);
	/* Weak: it starts over at its entry on h2, after its lines from h1. */
	cr_assert(wait_logs(&hosts[1], 0, id, "tick 1 on h2", 10000, out, sizeof out),
		  "not running on h2: %s", out);
	check_order(out, needles, where, 3);
}

/* ---- a trusted peer played by the test ---- */

/* A DEALER to h's peer endpoint, authenticated with `as`'s host key. */
static void *peer_dealer(void *zctx, struct host *h, struct host *as)
{
	char path[400];
	struct mig_key *key = NULL;
	struct mig_error merr;
	uint8_t pk[MIG_KEY_PUBLIC_LEN], server[MIG_KEY_CURVE_LEN], pub[MIG_KEY_CURVE_LEN],
		sec[MIG_KEY_CURVE_LEN];
	char name[80];
	void *s;

	snprintf(path, sizeof path, "%.250s/%s.pub", h->dir, h->name);
	cr_assert_eq(mig_key_load_public(path, pk, name, &merr), 0, "%s", merr.msg);
	cr_assert_eq(mig_key_curve_public(pk, server), 0);
	snprintf(path, sizeof path, "%.250s/%s.key", as->dir, as->name);
	cr_assert_eq(mig_key_load(path, &key, &merr), 0, "%s", merr.msg);
	cr_assert_eq(mig_key_curve_secret(key, sec), 0);
	cr_assert_eq(mig_key_curve_public(mig_key_public(key), pub), 0);
	mig_key_destroy(&key);
	s = zmq_socket(zctx, ZMQ_DEALER);
	cr_assert_not_null(s);
	cr_assert_eq(zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server, sizeof server), 0);
	cr_assert_eq(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, sizeof pub), 0);
	cr_assert_eq(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, sizeof sec), 0);
	cr_assert_eq(zmq_connect(s, h->peer), 0, "connect %s", h->peer);
	return s;
}

static void peer_send(void *s, const struct agd_wire_msg *m)
{
	static struct agd_wire_frames fr;

	cr_assert_eq(agd_wire_encode(m, &fr), 0);
	for (size_t i = 0; i < fr.n; i++)
		cr_assert_geq(zmq_send(s, fr.f[i].data, fr.f[i].len, i + 1 < fr.n ? ZMQ_SNDMORE : 0), 0);
}

/* One message into m (its strings copied, its blobs dropped); 0 when
 * nothing came within ms or it does not decode. */
static int peer_recv(void *s, struct agd_wire_msg *m, int ms)
{
	zmq_pollitem_t it = { s, 0, ZMQ_POLLIN, 0 };
	zmq_msg_t parts[AGD_WIRE_FRAMES_MAX + 1];
	struct agd_wire_bytes f[AGD_WIRE_FRAMES_MAX + 1];
	size_t n = 0;
	int more = 1, rc;

	if (zmq_poll(&it, 1, ms) <= 0)
		return 0;
	while (more) {
		size_t sz = sizeof more;

		cr_assert_lt(n, (size_t)AGD_WIRE_FRAMES_MAX + 1);
		zmq_msg_init(&parts[n]);
		cr_assert_geq(zmq_msg_recv(&parts[n], s, 0), 0);
		f[n].data = zmq_msg_data(&parts[n]);
		f[n].len = zmq_msg_size(&parts[n]);
		n++;
		zmq_getsockopt(s, ZMQ_RCVMORE, &more, &sz);
	}
	rc = agd_wire_decode(f, n, m);
	for (size_t i = 0; i < n; i++)
		zmq_msg_close(&parts[i]);
	memset(m->blob, 0, sizeof m->blob);
	return rc == 0;
}

/* Hand-made log parts: one good line from h3, and broken ones. */
static size_t log_line(uint8_t *p, const char *host, const char *text, size_t tlen)
{
	size_t hl = strlen(host), n = 0;

	memset(p, 0, 8);
	p[6] = 0x01; /* some time in 1970: a peer's clock is its own */
	n = 8;
	p[n++] = (uint8_t)hl;
	memcpy(p + n, host, hl);
	n += hl;
	p[n++] = (uint8_t)(tlen >> 8);
	p[n++] = (uint8_t)tlen;
	memcpy(p + n, text, tlen);
	return n + tlen;
}

Test(logs_follow, a_peers_log_part_is_taken_when_good_and_dropped_when_hostile_never_a_crash)
{
	static uint8_t big[AGD_LOGRING_BYTES + 4000];
	uint8_t good[256], bad_count[256], nul[256];
	size_t good_len, bad_len, nul_len;
	struct {
		const char *id;
		const uint8_t *log; /* NULL: a version-1 TRANSFER */
		size_t len;
		int keeps;          /* its line from h3 is expected in the log */
	} cases[5];
	uint8_t hash[AGD_WIRE_HASH_LEN];
	char id[32], out[16384];
	int activated[5] = { 0 };
	void *zctx, *dealer;
	long end;

	/* The log parts. */
	memcpy(good, "AGL\x01\x01", 5);
	good_len = 5 + log_line(good + 5, "h3", "from h3 before", 14);
	memcpy(bad_count, "AGL\x01\x05", 5); /* says 5 lines, holds 1 */
	bad_len = 5 + log_line(bad_count + 5, "h3", "from h3 bad count", 17);
	memcpy(nul, "AGL\x01\x01", 5);
	nul_len = 5 + log_line(nul + 5, "h3", "from h3\0nul", 11);
	memset(big, 'x', sizeof big);
	memcpy(big, "AGL\x01\x01", 5);
	cases[0].id = "00000000000000a0";
	cases[0].log = NULL;
	cases[0].len = 0;
	cases[0].keeps = 0;
	cases[1].id = "00000000000000a1";
	cases[1].log = good;
	cases[1].len = good_len;
	cases[1].keeps = 1;
	cases[2].id = "00000000000000a2";
	cases[2].log = bad_count;
	cases[2].len = bad_len;
	cases[2].keeps = 0;
	cases[3].id = "00000000000000a3";
	cases[3].log = big;
	cases[3].len = sizeof big;
	cases[3].keeps = 0;
	cases[4].id = "00000000000000a4";
	cases[4].log = nul;
	cases[4].len = nul_len;
	cases[4].keeps = 0;

	/* h1 caches the ticker's code (a run of it), so a TRANSFER of it
	 * needs no OFFER. */
	start_host(&hosts[0], NULL, NULL);
	cr_assert_eq(ctl(&hosts[0], out, sizeof out, 10000, "run", seg, NULL, NULL, NULL), 0, "run: %s", out);
	memcpy(id, out, 16);
	id[16] = '\0';
	wait_ticks(&hosts[0], id, 1);
	{
		FILE *f = fopen(seg, "rb");
		static uint8_t bytes[1 << 16];
		size_t n;
		struct mig_segment *sg = NULL;

		cr_assert_not_null(f);
		n = fread(bytes, 1, sizeof bytes, f);
		fclose(f);
		cr_assert_eq(mig_segment_decode(bytes, n, &sg, NULL), 0);
		memcpy(hash, mig_segment_hash(sg), sizeof hash);
		mig_segment_destroy(&sg);
	}

	zctx = zmq_ctx_new();
	dealer = peer_dealer(zctx, &hosts[0], &hosts[2]);
	for (int k = 0; k < 5; k++) {
		struct agd_wire_msg m;

		memset(&m, 0, sizeof m);
		m.type = AGD_MSG_TRANSFER;
		m.corr = 100 + (uint64_t)k;
		snprintf(m.host, sizeof m.host, "h3");
		snprintf(m.agent, sizeof m.agent, "%s", cases[k].id);
		m.epoch = 1;
		memcpy(m.hash, hash, sizeof hash);
		m.mobility = AGD_MOB_WEAK; /* starts at its entry: no state to forge */
		m.kind = AGD_KIND_PUSH;
		m.blob[3].data = cases[k].log;
		m.blob[3].len = cases[k].len;
		peer_send(dealer, &m);
	}
	/* h1 stores each and acknowledges (COMMITTED, asked again until it
	 * hears back); this source has committed: ACTIVATE. */
	end = now_ms() + 20000;
	while (now_ms() < end) {
		struct agd_wire_msg m;
		int all = 1;

		for (int k = 0; k < 5; k++)
			all &= activated[k];
		if (all)
			break;
		if (!peer_recv(dealer, &m, 200) || m.type != AGD_MSG_COMMITTED)
			continue;
		for (int k = 0; k < 5; k++)
			if (strcmp(m.agent, cases[k].id) == 0 && m.epoch == 1) {
				struct agd_wire_msg a;

				memset(&a, 0, sizeof a);
				a.type = AGD_MSG_ACTIVATE;
				a.corr = m.corr;
				snprintf(a.agent, sizeof a.agent, "%s", cases[k].id);
				a.epoch = 1;
				peer_send(dealer, &a);
				activated[k] = 1;
			}
	}
	zmq_close(dealer);
	zmq_ctx_term(zctx);
	for (int k = 0; k < 5; k++)
		cr_assert(activated[k], "case %d: h1 never acknowledged the TRANSFER", k);
	/* Each runs at h1, the daemon alive; only the good part's line came. */
	for (int k = 0; k < 5; k++) {
		cr_assert(wait_logs(&hosts[0], 0, cases[k].id, "tick 2 on h1", 15000, out, sizeof out),
			  "case %d: not running on h1: %s", k, out);
		if (cases[k].keeps) {
			static const char *const needles[] = { "from h3 before", "tick 1 on h1" };
			static const char *const where[] = { "h3", "h1" };

			check_order(out, needles, where, 2);
		} else {
			cr_assert_null(strstr(out, " h3 "), "case %d: a line from h3 got in: %s", k, out);
		}
	}
	cr_assert_eq(ctl(&hosts[0], out, sizeof out, 5000, "status", NULL, NULL, NULL, NULL), 0,
		     "h1 stopped answering: %s", out);
	cr_assert_eq(kill(hosts[0].pid, 0), 0, "h1 died");
}
