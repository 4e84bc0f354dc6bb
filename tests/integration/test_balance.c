/*
 * test_balance.c: the daemon-side load policy (agd_balance, `[balance]`)
 * with real daemons on loopback. A busy host h1 runs agents that compute
 * without ever waiting; an idle host h2 that knows h1 only from its config
 * (`[peers]`, nobody pushed anything first) pulls some of them when its
 * policy says `mode = pull`, and nothing when it is off. Pulled agents run
 * exactly once: on one host only, carried with their state (they never
 * start over at their entry on h2).
 *
 * The application-level counterpart (a pool agent that idle workers ask
 * for jobs) is agents/balancer, tested in test_agents_cluster.c.
 */
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migcluster.h"

#define NAGENTS 6

static char spin_seg[300], weak_seg[300];

/* A spinner counts for ever without waiting (state "running" all along)
 * and says where it started, once, at its entry. */
static const char spin_lua[] =
	"function main()\n"
	"  agent.log('start on ' .. agent.host())\n"
	"  local n = 0\n"
	"  while true do\n"
	"    n = n + 1\n"
	"    if n % 200000 == 0 then agent.log('spin ' .. n .. ' on ' .. agent.host()) end\n"
	"  end\n"
	"end\n";

static void sign_agent(const char *name, const char *mobility, char *out, size_t out_len)
{
	char dir[300], path[400], text[512], key[300];

	snprintf(dir, sizeof dir, "%.200s/%s", tmp, name);
	mkdir(dir, 0700);
	snprintf(path, sizeof path, "%s/manifest", dir);
	snprintf(text, sizeof text,
		 "agentd-manifest 1\nname = %s\nversion = 1.0\nentry = main.lua main\n"
		 "mobility = %s\nactivation = resident\nfile = main.lua\n", name, mobility);
	write_file(path, text);
	snprintf(path, sizeof path, "%s/main.lua", dir);
	write_file(path, spin_lua);
	snprintf(out, out_len, "%.200s/%s.seg", tmp, name);
	snprintf(key, sizeof key, "%.200s/author.key", tmp);
	{
		char *argv[] = { (char *)ctlbin(), "sign", dir, "-k", key, "-o", out, NULL };

		cr_assert_eq(tst_run(argv, NULL, 0, 10000), 0, "sign %s", name);
	}
}

static void bal_setup(void)
{
	setup();
	sign_agent("spinner", "both", spin_seg, sizeof spin_seg);
	sign_agent("stayer", "weak", weak_seg, sizeof weak_seg);
}

TestSuite(balance, .init = bal_setup, .fini = teardown, .timeout = 300);

static void append_conf(struct host *h, const char *text)
{
	FILE *f = fopen(h->conf, "a");

	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

/* h2 knows h1 from its config only; `policy` is the [balance] section. */
static void config_idle_host(const char *policy)
{
	char text[1024];

	snprintf(text, sizeof text, "\n[peers]\nh1 = %s\n\n%s", hosts[0].peer, policy);
	append_conf(&hosts[1], text);
}

static void run_seg(struct host *h, const char *segment, char id[17])
{
	char out[256];

	cr_assert_eq(ctl(h, out, sizeof out, 10000, "run", segment, NULL, NULL, NULL), 0, "run: %s", out);
	cr_assert_geq(strlen(out), 16);
	memcpy(id, out, 16);
	id[16] = '\0';
}

/* Lines of file `path` that contain both a and b. */
static int count_lines(const char *path, const char *a, const char *b)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int n = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof line, f))
		if (strstr(line, a) && (b == NULL || strstr(line, b)))
			n++;
	fclose(f);
	return n;
}

/* How many of ids each host lists; fails the test if a host does not
 * answer. */
static void where(char ids[][17], int n, int *on1, int *on2, int *both)
{
	*on1 = *on2 = *both = 0;
	for (int i = 0; i < n; i++) {
		int a = lists(&hosts[0], ids[i]), b = lists(&hosts[1], ids[i]);

		cr_assert(a >= 0 && b >= 0, "a host does not answer ps");
		*on1 += a;
		*on2 += b;
		*both += a && b;
	}
}

Test(balance, an_idle_host_pulls_busy_agents_which_then_run_there_exactly_once)
{
	char ids[NAGENTS][17];
	int on1 = 0, on2 = 0, both = 0;
	long end;

	/* h1 lets spinners go; h2 pulls until it has 3 runnable agents, from
	 * a peer with more than 2, at most 2 a round. */
	append_conf(&hosts[0], "\n[balance]\nagents = spinner\n");
	config_idle_host("[balance]\nmode = pull\nidle_below = 3\nbusy_above = 2\ninterval = 300ms\n"
			 "max_pulls = 2\n");
	start_host(&hosts[0], NULL, NULL);
	for (int i = 0; i < NAGENTS; i++)
		run_seg(&hosts[0], spin_seg, ids[i]);
	/* Every agent has run on h1 before the idle host comes up: a pull
	 * must then carry its execution state (an agent pulled before its
	 * first slice would rightly start at its entry on h2). */
	end = now_ms() + 30000;
	for (int i = 0; i < NAGENTS; i++)
		while (now_ms() < end && count_lines(hosts[0].log, ids[i], "start on h1") == 0)
			usleep(50000);
	start_host(&hosts[1], NULL, NULL);

	/* Load evens out: 3 and 3 (h2 stops pulling once it has 3). */
	end = now_ms() + 90000;
	while (now_ms() < end) {
		where(ids, NAGENTS, &on1, &on2, &both);
		if (on2 >= 3 && on1 + on2 == NAGENTS && both == 0)
			break;
		usleep(200000);
	}
	cr_assert_eq(both, 0, "an agent is listed on both hosts");
	cr_assert_eq(on1 + on2, NAGENTS, "agents lost: %d on h1, %d on h2", on1, on2);
	cr_assert_eq(on2, 3, "h2 pulled %d agents, wanted 3 (idle_below)", on2);

	for (int i = 0; i < NAGENTS; i++) {
		int here2 = lists(&hosts[1], ids[i]);

		/* Each started once, on h1, and never again anywhere. */
		cr_assert_eq(count_lines(hosts[0].log, ids[i], "start on h1"), 1, "%s started %d times on h1",
			     ids[i], count_lines(hosts[0].log, ids[i], "start on h1"));
		cr_assert_eq(count_lines(hosts[1].log, ids[i], "start on h2"), 0,
			     "%s started over at its entry on h2 (moved without its state)", ids[i]);
		if (here2 != 1)
			continue;
		/* Pulled by the policy, and computing on h2. */
		cr_assert_eq(count_lines(hosts[1].log, "balance.pull", ids[i]), 1,
			     "%s: no single balance.pull line on h2", ids[i]);
		end = now_ms() + 30000;
		while (now_ms() < end && count_lines(hosts[1].log, ids[i], " on h2\"") == 0)
			usleep(100000);
		cr_assert_gt(count_lines(hosts[1].log, ids[i], " on h2\""), 0, "%s does not run on h2", ids[i]);
	}
	/* The source was the busiest peer; nothing else was asked for. */
	cr_assert_eq(count_lines(hosts[1].log, "balance.pull", "from=h1"), 3);
}

Test(balance, with_balance_off_nothing_moves_though_the_agents_could)
{
	char ids[4][17], out[512];
	int on1 = 0, on2 = 0, both = 0;
	long end;

	config_idle_host("[balance]\nmode = off\nidle_below = 3\nbusy_above = 1\ninterval = 200ms\n");
	start_host(&hosts[0], NULL, NULL);
	start_host(&hosts[1], NULL, NULL);
	for (int i = 0; i < 4; i++)
		run_seg(&hosts[0], spin_seg, ids[i]);
	/* Fifteen of h2's would-be rounds. */
	usleep(3000000);
	where(ids, 4, &on1, &on2, &both);
	cr_assert_eq(on1, 4, "with balance off, %d agents left h1", 4 - on1);
	cr_assert_eq(on2, 0);
	cr_assert_eq(count_lines(hosts[1].log, "balance.pull", NULL), 0);
	/* They could move: asked by hand, h2 gets one. */
	{
		char *argv[] = { (char *)ctlbin(), "--timeout", "8000", "pull", ids[0], "--to", "h2", "--from",
				 "h1", NULL };

		cr_assert_eq(tst_run(argv, out, sizeof out, 15000), 0, "pull: %s", out);
	}
	end = now_ms() + 30000;
	while (now_ms() < end && lists(&hosts[1], ids[0]) != 1)
		usleep(100000);
	cr_assert_eq(lists(&hosts[1], ids[0]), 1, "a pull by hand did not bring the agent to h2");
	cr_assert_eq(lists(&hosts[0], ids[0]), 0);
}

Test(balance, agents_that_may_not_move_with_their_state_are_never_pulled)
{
	char ids[4][17];
	int on1 = 0, on2 = 0, both = 0;
	long end;

	config_idle_host("[balance]\nmode = pull\nidle_below = 3\nbusy_above = 1\ninterval = 200ms\n\n"
			 "[log]\nlevel = debug\n");
	/* h1 is busy before h2 starts asking. */
	start_host(&hosts[0], NULL, NULL);
	for (int i = 0; i < 4; i++)
		run_seg(&hosts[0], weak_seg, ids[i]);
	start_host(&hosts[1], NULL, NULL);
	/* Rounds in which h1 answered with its load and nothing to take. */
	end = now_ms() + 60000;
	while (now_ms() < end && count_lines(hosts[1].log, "balance.none_busy", "answers=1") < 5)
		usleep(100000);
	cr_assert_geq(count_lines(hosts[1].log, "balance.none_busy", "answers=1"), 5,
		      "h2 ran no rounds that h1 answered");
	where(ids, 4, &on1, &on2, &both);
	cr_assert_eq(on1, 4, "a weak-only agent was pulled");
	cr_assert_eq(on2, 0);
	cr_assert_eq(count_lines(hosts[1].log, "balance.pull", NULL), 0);
}

/* ---- the config lines the policy and the route table read ---- */

#include "agd_config.h"

static int parse(struct agd_config *cfg, const char *text, char *err, size_t err_len)
{
	agd_config_defaults(cfg);
	return agd_config_parse(cfg, text, strlen(text), "t.conf", err, err_len);
}

Test(balance, config_reads_balance_peers_and_the_directory_and_names_bad_lines)
{
	struct agd_config cfg;
	char err[256];

	cr_assert_eq(parse(&cfg, "[peer]\ndirectory = h1@tcp://127.0.0.1:7401\nmax_peers = 40\n"
				 "[peers]\nh3 = ipc:///tmp/h3.peer\nh4 = tcp://10.0.0.4:7401\n"
				 "[balance]\nmode = pull\nidle_below = 2\nbusy_above = 5\ninterval = 500ms\n"
				 "max_pulls = 3\nagents = a, b\n",
		     err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(cfg.directory, "h1");
	cr_assert_str_eq(cfg.directory_endpoint, "tcp://127.0.0.1:7401");
	cr_assert_eq(cfg.max_peers, 40);
	cr_assert_eq(cfg.peers.n, 2);
	cr_assert_str_eq(agd_section_get(&cfg.peers, "h4"), "tcp://10.0.0.4:7401");
	cr_assert_eq(cfg.balance, AGD_BALANCE_PULL);
	cr_assert_eq(cfg.balance_idle_below, 2);
	cr_assert_eq(cfg.balance_busy_above, 5);
	cr_assert_float_eq(cfg.balance_interval, 0.5, 1e-9);
	cr_assert_eq(cfg.balance_max_pulls, 3);
	cr_assert_str_eq(cfg.balance_agents, "a, b");
	agd_config_free(&cfg);

	/* Defaults: off, and a directory by name only. */
	cr_assert_eq(parse(&cfg, "[peer]\ndirectory = h1\n", err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.balance, AGD_BALANCE_OFF);
	cr_assert_str_eq(cfg.directory_endpoint, "");
	cr_assert_eq(cfg.max_peers, 256);
	agd_config_free(&cfg);

	{
		static const struct {
			const char *text, *why;
		} bad[] = {
			{ "[peers]\nh1 = 127.0.0.1:7401\n", "t.conf:2:" },
			{ "[peers]\nh1 = tcp://a:1\nh1 = tcp://b:1\n", "t.conf:3: peer h1 listed twice" },
			{ "[peers]\nh 1 = tcp://a:1\n", "t.conf:2:" },
			{ "[balance]\nmode = push\n", "t.conf:2: balance mode must be off or pull" },
			{ "[balance]\ninterval = 0\n", "t.conf:2:" },
			{ "[balance]\nmax_pulls = 65\n", "t.conf:2:" },
			{ "[balance]\nsomething = 1\n", "t.conf:2: unknown key" },
			{ "[peer]\nmax_peers = 0\n", "t.conf:2:" },
			{ "[peer]\nmax_peers = 257\n", "t.conf:2:" },
			{ "[peer]\ndirectory = h1@udp://x\n", "t.conf:2: directory must be" },
			{ "[peer]\ndirectory = @tcp://a:1\n", "t.conf:2: directory must be" },
		};

		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			err[0] = '\0';
			cr_assert_neq(parse(&cfg, bad[i].text, err, sizeof err), 0, "accepted: %s", bad[i].text);
			cr_assert(strstr(err, bad[i].why) != NULL, "%s: said '%s'", bad[i].text, err);
			agd_config_free(&cfg);
		}
	}
}

/* ---- the policy's decisions, on an empty runtime without daemons ---- */

#include "agd_balance.h"
#include "agd_loop.h"
#include "agd_rt.h"

struct seen_by_ops {
	uint64_t corr;                    /* last LOAD's */
	uint64_t load_size;               /* and the load it told */
	int nload;                        /* LOADs sent */
	int nreply;                       /* LOAD_REPLYs sent */
	uint64_t reply_size;              /* the last one's load */
	size_t reply_blob;                /* and its list's bytes */
	int npull;
	char pulled[8][17];
	char from[8][AGD_WIRE_NAME_MAX + 1];
};

static int ops_send(void *ud, const char *host, const struct agd_wire_msg *m)
{
	struct seen_by_ops *s = ud;

	if (m->type == AGD_MSG_LOAD) {
		s->corr = m->corr;
		s->load_size = m->size;
		s->nload++;
	} else if (m->type == AGD_MSG_LOAD_REPLY) {
		s->nreply++;
		s->reply_size = m->size;
		s->reply_blob = m->blob[0].len;
	}
	return 0;
}

static int ops_pull(void *ud, const char *host, const char *agent)
{
	struct seen_by_ops *s = ud;

	if (s->npull < 8) {
		snprintf(s->pulled[s->npull], sizeof s->pulled[s->npull], "%s", agent);
		snprintf(s->from[s->npull], sizeof s->from[s->npull], "%s", host);
		s->npull++;
	}
	return 0;
}

static size_t ops_peers(void *ud, char (*names)[AGD_WIRE_NAME_MAX + 1], size_t max)
{
	snprintf(names[0], AGD_WIRE_NAME_MAX + 1, "h1");
	snprintf(names[1], AGD_WIRE_NAME_MAX + 1, "h3");
	return 2;
}

static const struct agd_balance_ops bal_ops = { ops_send, ops_pull, ops_peers };

static void reply(struct agd_balance *b, const char *from, uint64_t corr, uint64_t load, const char *ids,
		  size_t len, uint64_t now)
{
	struct agd_wire_msg m;

	memset(&m, 0, sizeof m);
	m.type = AGD_MSG_LOAD_REPLY;
	m.corr = corr;
	snprintf(m.host, sizeof m.host, "%s", from);
	m.size = load;
	m.blob[0].data = (const uint8_t *)ids;
	m.blob[0].len = len;
	cr_assert_eq(agd_balance_input(b, from, &m, now), 1);
}

Test(balance, an_idle_host_pulls_from_the_busiest_peer_within_its_limits_and_ignores_bad_answers)
{
	static const char five[] = "00000000000000a1\n00000000000000a2\n00000000000000a3\n"
				   "00000000000000a4\n00000000000000a5\n";
	static const char three[] = "00000000000000c1\n00000000000000c2\n00000000000000c3\n";
	struct agd_config cfg;
	struct agd_loop *loop = agd_loop_new();
	struct agd_rt *rt = NULL;
	struct agd_balance *b = NULL;
	struct seen_by_ops s;
	char many[40 * 17 + 1] = "";

	memset(&s, 0, sizeof s);
	agd_config_defaults(&cfg);
	snprintf(cfg.host, sizeof cfg.host, "h2");
	cfg.data_dir[0] = '\0';
	cfg.balance = AGD_BALANCE_PULL;
	cfg.balance_idle_below = 3;
	cfg.balance_busy_above = 2;
	cfg.balance_max_pulls = 2;
	cfg.balance_interval = 1;
	cr_assert_not_null(loop);
	cr_assert_eq(agd_rt_new(&cfg, loop, &rt), 0);
	cr_assert_eq(agd_balance_new(&cfg, rt, &bal_ops, &s, &b), 0);

	/* Idle (no agent at all): a round asks both peers. */
	agd_balance_tick(b, 10000);
	cr_assert_eq(s.nload, 2);
	cr_assert_eq(s.load_size, 0);
	/* Malformed lists, a wrong round: nothing counts, nothing pulled. */
	reply(b, "h1", s.corr, 9, "zz\n", 3, 10001);
	reply(b, "h1", s.corr, 9, "00000000000000a1", 16, 10001);
	reply(b, "h1", s.corr, 9, "00000000000000A1\n", 17, 10001);
	for (int i = 0; i < 40; i++)
		strcat(many, "00000000000000b1\n");
	reply(b, "h1", s.corr, 9, many, strlen(many), 10001);
	reply(b, "h1", s.corr + 1, 9, five, strlen(five), 10001);
	cr_assert_eq(s.npull, 0);
	/* Both answer: h1 is the busiest. min(max_pulls 2, idle_below 3 - 0,
	 * (9 - 0) / 2) = 2 agents, the first it offered. */
	reply(b, "h3", s.corr, 4, three, strlen(three), 10002);
	cr_assert_eq(s.npull, 0, "decided before every peer answered");
	reply(b, "h1", s.corr, 9, five, strlen(five), 10002);
	cr_assert_eq(s.npull, 2);
	cr_assert_str_eq(s.from[0], "h1");
	cr_assert_str_eq(s.from[1], "h1");
	cr_assert_str_eq(s.pulled[0], "00000000000000a1");
	cr_assert_str_eq(s.pulled[1], "00000000000000a2");
	/* A late answer to a round that is over changes nothing. */
	reply(b, "h1", s.corr, 9, five, strlen(five), 10003);
	cr_assert_eq(s.npull, 2);

	/* Not before the interval; then the pulls under way count as load:
	 * room for 1 more (3 - 2), and (7 - 2) / 2 = 2 would be allowed. */
	agd_balance_tick(b, 10500);
	cr_assert_eq(s.nload, 2);
	agd_balance_tick(b, 11000);
	cr_assert_eq(s.nload, 4);
	cr_assert_eq(s.load_size, 2);
	reply(b, "h1", s.corr, 7, five, strlen(five), 11001);
	/* h3 does not answer: the window (half an interval) closes. */
	agd_balance_tick(b, 11400);
	cr_assert_eq(s.npull, 2);
	agd_balance_tick(b, 11600);
	cr_assert_eq(s.npull, 3);
	cr_assert_str_eq(s.pulled[2], "00000000000000a3", "an agent already asked for was asked again");

	/* Pulls expire after 5 s; a peer at busy_above is left alone. */
	agd_balance_tick(b, 20000);
	cr_assert_eq(s.load_size, 0, "expired pulls still count");
	reply(b, "h1", s.corr, 2, five, strlen(five), 20001);
	reply(b, "h3", s.corr, 1, three, strlen(three), 20001);
	cr_assert_eq(s.npull, 3);

	/* The busy side of it: a LOAD is answered with this host's load
	 * (none here) and nothing offered. */
	{
		struct agd_wire_msg m;

		memset(&m, 0, sizeof m);
		m.type = AGD_MSG_LOAD;
		m.corr = 77;
		snprintf(m.host, sizeof m.host, "h9");
		cr_assert_eq(agd_balance_input(b, "h9", &m, 20002), 1);
		cr_assert_eq(s.nreply, 1);
		cr_assert_eq(s.reply_size, 0);
		cr_assert_eq(s.reply_blob, 0);
	}
	agd_balance_destroy(&b);
	cr_assert_null(b);
	agd_rt_destroy(&rt);
	agd_loop_destroy(&loop);
	agd_config_free(&cfg);
}

/* ---- more peers than the dispatcher's loop watches ---- */

#include "agd_wire.h"
#include "mig_key.h"

#include <zmq.h>

#define FAKE_PEERS 34 /* dialled before the last one: past the loop's 32 inputs */

/* Sends m back to the DEALER it came from (`rid`). */
static void router_reply(void *sock, const zmq_msg_t *rid, const struct agd_wire_msg *m)
{
	struct agd_wire_frames fr;

	cr_assert_eq(agd_wire_encode(m, &fr), 0);
	cr_assert_geq(zmq_send(sock, zmq_msg_data((zmq_msg_t *)rid), zmq_msg_size((zmq_msg_t *)rid), ZMQ_SNDMORE), 0);
	for (size_t i = 0; i < fr.n; i++)
		cr_assert_geq(zmq_send(sock, fr.f[i].data, fr.f[i].len, i + 1 < fr.n ? ZMQ_SNDMORE : 0), 0);
}

/* Reads one multipart message: routing id into rid, the rest decoded
 * into m. Returns 1, or 0 when nothing came within ms. */
static int router_recv(void *sock, zmq_msg_t *rid, struct agd_wire_msg *m, int ms)
{
	zmq_pollitem_t it = { sock, 0, ZMQ_POLLIN, 0 };
	zmq_msg_t parts[AGD_WIRE_FRAMES_MAX];
	struct agd_wire_bytes f[AGD_WIRE_FRAMES_MAX];
	size_t n = 0;
	int more = 1, rc;

	if (zmq_poll(&it, 1, ms) <= 0)
		return 0;
	zmq_msg_init(rid);
	cr_assert_geq(zmq_msg_recv(rid, sock, 0), 0);
	while (more) {
		size_t sz = sizeof more;

		cr_assert_lt(n, (size_t)AGD_WIRE_FRAMES_MAX);
		zmq_msg_init(&parts[n]);
		cr_assert_geq(zmq_msg_recv(&parts[n], sock, 0), 0);
		f[n].data = zmq_msg_data(&parts[n]);
		f[n].len = zmq_msg_size(&parts[n]);
		n++;
		zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz);
	}
	rc = agd_wire_decode(f, n, m);
	/* Strings are copies; the one blob we look at is not needed after. */
	for (size_t i = 0; i < n; i++)
		zmq_msg_close(&parts[i]);
	cr_assert_eq(rc, 0, "h1 sent something that does not decode");
	return 1;
}

Test(balance, a_peer_dialled_past_the_loops_inputs_is_still_heard)
{
	char path[400], conf[8192], ep[64], th[300];
	struct mig_key *key = NULL;
	struct mig_error merr;
	uint8_t sec[MIG_KEY_CURVE_LEN];
	void *zctx = zmq_ctx_new(), *router;
	int one = 1, port = tst_free_port(), got_pull = 0, answered = 0;
	long end;
	size_t used;

	/* 34 trusted hosts nobody runs, then "fz": this test, as a CURVE
	 * server with fz's key. h1 dials them all (the balancer asks every
	 * reachable peer), fz last. */
	snprintf(th, sizeof th, "%.250s/trusted-hosts", tmp);
	used = (size_t)snprintf(conf, sizeof conf, "\n[peers]\n");
	for (int i = 0; i <= FAKE_PEERS; i++) {
		char name[8], prefix[340], pub[350];

		if (i < FAKE_PEERS)
			snprintf(name, sizeof name, "f%02d", i);
		else
			snprintf(name, sizeof name, "fz");
		snprintf(prefix, sizeof prefix, "%.250s/%s", tmp, name);
		keygen(prefix, name);
		snprintf(pub, sizeof pub, "%s.pub", prefix);
		append_file(th, pub);
		used += (size_t)snprintf(conf + used, sizeof conf - used, "%s = tcp://127.0.0.1:%d\n", name,
					 i < FAKE_PEERS ? 1 : port);
	}
	snprintf(conf + used, sizeof conf - used,
		 "\n[balance]\nmode = pull\nidle_below = 1\nbusy_above = 0\ninterval = 200ms\n");
	append_conf(&hosts[0], conf);

	snprintf(path, sizeof path, "%.250s/fz.key", tmp);
	cr_assert_eq(mig_key_load(path, &key, &merr), 0, "%s", merr.msg);
	cr_assert_eq(mig_key_curve_secret(key, sec), 0);
	mig_key_destroy(&key);
	router = zmq_socket(zctx, ZMQ_ROUTER);
	cr_assert_not_null(router);
	zmq_setsockopt(router, ZMQ_CURVE_SERVER, &one, sizeof one);
	zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY, sec, sizeof sec);
	snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
	cr_assert_eq(zmq_bind(router, ep), 0, "bind %s", ep);

	start_host(&hosts[0], NULL, NULL);
	/* Answer LOAD with a busy load and one agent; the pull that follows
	 * shows that h1 read the answer on its DEALER to fz. */
	end = now_ms() + 30000;
	while (now_ms() < end && !got_pull) {
		struct agd_wire_msg m, r;
		zmq_msg_t rid;

		if (!router_recv(router, &rid, &m, 200))
			continue;
		if (m.type == AGD_MSG_LOAD) {
			memset(&r, 0, sizeof r);
			r.type = AGD_MSG_LOAD_REPLY;
			r.corr = m.corr;
			snprintf(r.host, sizeof r.host, "fz");
			r.size = 9;
			r.blob[0].data = (const uint8_t *)"00000000000000f1\n";
			r.blob[0].len = 17;
			router_reply(router, &rid, &r);
			answered++;
		} else if (m.type == AGD_MSG_PULL_REQUEST) {
			cr_assert_str_eq(m.agent, "00000000000000f1");
			cr_assert_str_eq(m.host, "h1");
			got_pull = 1;
		}
		zmq_msg_close(&rid);
	}
	zmq_close(router);
	zmq_ctx_term(zctx);
	cr_assert_gt(answered, 0, "h1 never asked fz for its load");
	cr_assert(got_pull, "h1 did not act on fz's answer: its DEALER was not read");
	/* It was one the loop does not watch. The decision's log line is
	 * written just after the pull was sent. */
	cr_assert_gt(count_lines(hosts[0].log, "peer.polled", NULL), 0);
	end = now_ms() + 5000;
	while (now_ms() < end && count_lines(hosts[0].log, "balance.pull", "from=fz") == 0)
		usleep(20000);
	cr_assert_eq(count_lines(hosts[0].log, "balance.pull", "from=fz"), 1);
}
