/*
 * test_xfer.c: the transfer protocol as two (or three) state machines over
 * real stores, with an in-process network the tests control: messages
 * dropped, duplicated, reordered and replayed, and hosts crashed between any
 * two steps (the state machine destroyed and the store closed and reopened).
 * After each scenario the agent must live on exactly one host, activated
 * there at most once, with its state intact.
 */
#include "agd_err.h"
#include "agd_logring.h"
#include "agd_store.h"
#include "agd_xfer.h"
#include "mig_key.h"
#include "mig_segment.h"
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODES 3
#define QMAX 4096

struct node {
	char name[16];
	char path[256];
	struct agd_store *st;
	struct agd_xfer *x;
	int up;
	int activations;           /* survives crashes: counted by the test */
	char last_state[64];       /* state bytes of the last activation */
	char last_origin[64];
	int done_calls;
	int done_rc;
	int refuse_segments;       /* segment_in says "untrusted" */
	uint8_t last_log[AGD_LOGRING_BYTES]; /* log part of the last activation */
	size_t last_log_len;
};

struct packet {
	int from, to;
	uint8_t *bytes; /* packed wire message */
	size_t len;
	int type;
};

static struct node nodes[NODES];
static struct packet q[QMAX];
static size_t qn;
static uint64_t now;
static char tmp[256];
static uint8_t *seg_bytes;
static size_t seg_len;
static uint8_t seg_hash[32];
static int sent_by_type[AGD_MSG_TYPE_MAX + 1];
static const char state_v1[] = "persisted-state-of-agent-1";

static int node_by_name(const char *n)
{
	for (int i = 0; i < NODES; i++)
		if (strcmp(nodes[i].name, n) == 0)
			return i;
	return -1;
}

static int op_send(void *ud, const char *host, const struct agd_wire_msg *m)
{
	struct node *from = ud;
	static struct agd_wire_frames fr;
	int to = node_by_name(host);

	if (to < 0)
		return -1;
	cr_assert_lt(qn, QMAX);
	cr_assert_eq(agd_wire_encode(m, &fr), 0);
	q[qn].from = (int)(from - nodes);
	q[qn].to = to;
	q[qn].bytes = NULL;
	q[qn].len = 0;
	q[qn].type = m->type;
	cr_assert_eq(agd_wire_pack(&fr, &q[qn].bytes, &q[qn].len), 0);
	sent_by_type[m->type]++;
	qn++;
	return 0;
}

static int op_segment_in(void *ud, const uint8_t *bytes, size_t len, uint8_t hash[32], char *why,
			 size_t why_len)
{
	struct node *n = ud;
	struct mig_segment *seg = NULL;
	int rc;

	if (n->refuse_segments) {
		snprintf(why, why_len, "author not trusted");
		return -1;
	}
	if (mig_segment_decode(bytes, len, &seg, NULL) != 0)
		return -1;
	if (mig_segment_verify(seg) != 0) {
		mig_segment_destroy(&seg);
		return -1;
	}
	rc = agd_store_segment_put(n->st, seg);
	memcpy(hash, mig_segment_hash(seg), 32);
	mig_segment_destroy(&seg);
	return rc;
}

static int op_activate(void *ud, const struct agd_xfer_arrival *a)
{
	struct node *n = ud;

	n->activations++;
	snprintf(n->last_state, sizeof n->last_state, "%.*s", (int)a->state_len, (const char *)a->state);
	snprintf(n->last_origin, sizeof n->last_origin, "%.60s", a->origin);
	cr_assert_leq(a->log_len, sizeof n->last_log, "an arrival's log part over its cap");
	n->last_log_len = a->log_len;
	if (a->log_len)
		memcpy(n->last_log, a->log, a->log_len);
	return 0;
}

static void op_done(void *ud, const char *agent, int rc, const char *host, uint64_t epoch,
		    const char *why)
{
	struct node *n = ud;

	n->done_calls++;
	n->done_rc = rc;
}

static int op_pull(void *ud, const char *agent, const char *to, int mobility, char *why,
		   size_t why_len);

static const struct agd_xfer_ops ops = { op_send, op_segment_in, op_activate, op_done, op_pull };

static void node_start(struct node *n)
{
	struct agd_xfer_cfg cfg = { n->name, NULL, 1000, 200 };

	cr_assert_eq(agd_store_open(n->path, &n->st), 0);
	cfg.store = n->st;
	cr_assert_eq(agd_xfer_new(&cfg, &ops, n, &n->x), 0);
	cr_assert_geq(agd_xfer_recover(n->x, now), 0);
	n->up = 1;
}

/* kill -9: everything in memory is gone, the store is what is left. */
static void node_crash(struct node *n)
{
	agd_xfer_destroy(&n->x);
	agd_store_close(&n->st);
	n->up = 0;
}

static int op_pull(void *ud, const char *agent, const char *to, int mobility, char *why,
		   size_t why_len)
{
	struct node *n = ud;
	struct agd_xfer_req r = { 0 };

	(void)why;
	(void)why_len;

	r.agent = agent;
	r.to = to;
	r.kind = AGD_KIND_PULL;
	r.mobility = mobility;
	r.state = (const uint8_t *)state_v1;
	r.state_len = sizeof state_v1 - 1;
	return agd_xfer_push(n->x, &r, now);
}

static void setup(void)
{
	struct mig_key *k = NULL;
	struct mig_segment *seg = NULL, *signed_seg = NULL;
	static const char manifest[] = "agentd-manifest 1\nname = hopper\nversion = 1\n"
				       "entry = main.lua main\nmobility = strong\nfile = main.lua\n";
	static const char main_lua[] = "function main() return 1 end\n";
	struct mig_seg_file f = { "main.lua", main_lua, sizeof main_lua - 1 };
	struct mig_error err;
	struct agd_agent_rec rec;

	memset(nodes, 0, sizeof nodes);
	memset(sent_by_type, 0, sizeof sent_by_type);
	qn = 0;
	now = 1000;
	cr_assert_eq(tst_tmpdir(tmp, sizeof tmp), 0);
	for (int i = 0; i < NODES; i++) {
		snprintf(nodes[i].name, sizeof nodes[i].name, "host-%c", 'a' + i);
		snprintf(nodes[i].path, sizeof nodes[i].path, "%.200s/host-%c.db", tmp, (char)('a' + i));
		node_start(&nodes[i]);
	}
	cr_assert_eq(mig_key_generate("author", &k), 0);
	cr_assert_eq(mig_segment_build(manifest, sizeof manifest - 1, &f, 1, &seg, &err), 0, "%s", err.msg);
	cr_assert_eq(mig_segment_sign(seg, k, &seg_bytes, &seg_len), 0);
	cr_assert_eq(mig_segment_decode(seg_bytes, seg_len, &signed_seg, &err), 0);
	memcpy(seg_hash, mig_segment_hash(signed_seg), 32);
	/* Only host-a has the code and the agent. */
	cr_assert_eq(agd_store_segment_put(nodes[0].st, signed_seg), 0);
	memset(&rec, 0, sizeof rec);
	snprintf(rec.id, sizeof rec.id, "agent-1");
	memcpy(rec.segment, seg_hash, 32);
	rec.state = (uint8_t *)state_v1;
	rec.state_len = sizeof state_v1 - 1;
	snprintf(rec.status, sizeof rec.status, "running");
	snprintf(rec.home, sizeof rec.home, "host-a");
	rec.mobility = 2;
	cr_assert_eq(agd_store_agent_put(nodes[0].st, &rec), 0);
	mig_segment_destroy(&seg);
	mig_segment_destroy(&signed_seg);
	mig_key_destroy(&k);
}

static void teardown(void)
{
	for (int i = 0; i < NODES; i++)
		if (nodes[i].up)
			node_crash(&nodes[i]);
	for (size_t i = 0; i < qn; i++)
		free(q[i].bytes);
	qn = 0;
	free(seg_bytes);
	seg_bytes = NULL;
	tst_rmtree(tmp);
}

TestSuite(agd_xfer, .init = setup, .fini = teardown, .timeout = 120);

/* Removes packet i from the queue, returning it. */
static struct packet take(size_t i)
{
	struct packet p = q[i];

	memmove(&q[i], &q[i + 1], (qn - i - 1) * sizeof q[0]);
	qn--;
	return p;
}

static void deliver(const struct packet *p)
{
	struct agd_wire_bytes f[AGD_WIRE_FRAMES_MAX];
	struct agd_wire_msg m;
	size_t n;
	struct node *to = &nodes[p->to];

	if (!to->up)
		return; /* a dead host receives nothing */
	cr_assert_eq(agd_wire_unpack(p->bytes, p->len, f, AGD_WIRE_FRAMES_MAX, &n), 0);
	cr_assert_eq(agd_wire_decode(f, n, &m), 0);
	cr_assert_eq(agd_xfer_input(to->x, nodes[p->from].name, &m, now), 1);
}

/* Delivers in order until the queue is empty or `limit` packets went. */
static int run(int limit)
{
	int n = 0;

	while (qn > 0 && (limit < 0 || n < limit)) {
		struct packet p = take(0);

		deliver(&p);
		free(p.bytes);
		n++;
	}
	return n;
}

static void tick_all(void)
{
	for (int i = 0; i < NODES; i++)
		if (nodes[i].up)
			agd_xfer_tick(nodes[i].x, now);
}

/* Lets time pass (ticks and deliveries) until nothing is pending. */
static void settle(void)
{
	for (int round = 0; round < 200; round++) {
		run(-1);
		now += 100;
		tick_all();
		if (qn == 0) {
			int busy = 0;

			for (int i = 0; i < NODES; i++)
				if (nodes[i].up && agd_xfer_pending(nodes[i].x))
					busy = 1;
			if (!busy && round > 40)
				return;
		}
	}
}

static struct agd_xfer_req push_req(const char *agent, const char *to)
{
	struct agd_xfer_req r = { 0 };

	r.agent = agent;
	r.to = to;
	r.kind = AGD_KIND_PUSH;
	r.mobility = AGD_MOB_STRONG;
	r.state = (const uint8_t *)state_v1;
	r.state_len = sizeof state_v1 - 1;
	return r;
}

/* Where the agent lives: hosts whose row for it says running. */
static int live_on(const char *id, int *where)
{
	int count = 0;

	for (int i = 0; i < NODES; i++) {
		struct agd_agent_rec rec;
		int up = nodes[i].up;

		if (!up)
			node_start(&nodes[i]);
		memset(&rec, 0, sizeof rec);
		if (agd_store_agent_get(nodes[i].st, id, &rec) == 0) {
			if (strcmp(rec.status, AGD_XFER_STATUS_RUNNING) == 0) {
				count++;
				*where = i;
				cr_assert_eq(rec.state_len, sizeof state_v1 - 1, "state length on %s", nodes[i].name);
				cr_assert_eq(memcmp(rec.state, state_v1, rec.state_len), 0, "state on %s",
					     nodes[i].name);
			}
			agd_store_agent_clear(&rec);
		}
	}
	return count;
}

static void assert_exactly_once(const char *id, const char *what)
{
	int where = -1;
	int live = live_on(id, &where);

	cr_assert_eq(live, 1, "%s: agent live on %d hosts", what, live);
	for (int i = 0; i < NODES; i++) {
		cr_assert_leq(nodes[i].activations, 1, "%s: activated %d times on %s", what,
			      nodes[i].activations, nodes[i].name);
		if (i != 0 && i != where)
			cr_assert_eq(nodes[i].activations, 0, "%s: activated on %s where it does not live",
				     what, nodes[i].name);
	}
	if (where != 0)
		cr_assert_eq(nodes[where].activations, 1, "%s: lives on %s but never activated", what,
			     nodes[where].name);
}

Test(agd_xfer, push_moves_the_agent_once_and_fetches_code_on_demand)
{
	struct agd_xfer_req r = push_req("agent-1", "host-b");
	char host[256];
	uint64_t epoch = 0;
	struct agd_agent_rec rec;

	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	cr_assert_eq(agd_xfer_pending(nodes[0].x), 1);
	settle();
	cr_assert_eq(nodes[0].done_calls, 1);
	cr_assert_eq(nodes[0].done_rc, 0);
	cr_assert_eq(nodes[1].activations, 1);
	cr_assert_str_eq(nodes[1].last_state, state_v1);
	cr_assert_eq(sent_by_type[AGD_MSG_GET_SEGMENT], 1, "the target asks for the code it lacks");
	cr_assert_eq(agd_store_segment_has(nodes[1].st, seg_hash), 1, "and caches it");
	cr_assert_eq(agd_store_forward_get(nodes[0].st, "agent-1", host, &epoch), 0);
	cr_assert_str_eq(host, "host-b");
	cr_assert_eq(epoch, 1);
	memset(&rec, 0, sizeof rec);
	cr_assert_eq(agd_store_agent_get(nodes[1].st, "agent-1", &rec), 0);
	cr_assert_eq(rec.epoch, 1);
	cr_assert_str_eq(rec.home, "host-a");
	agd_store_agent_clear(&rec);
	assert_exactly_once("agent-1", "clean push");
}

Test(agd_xfer, a_second_hop_back_uses_the_cached_segment)
{
	struct agd_xfer_req r = push_req("agent-1", "host-b");
	char host[256];
	uint64_t epoch;

	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	settle();
	r.to = "host-a";
	cr_assert_eq(agd_xfer_push(nodes[1].x, &r, now), 0);
	settle();
	cr_assert_eq(nodes[1].done_rc, 0);
	cr_assert_eq(nodes[0].activations, 1);
	cr_assert_eq(sent_by_type[AGD_MSG_GET_SEGMENT], 1, "no second fetch: host-a had the code");
	cr_assert_eq(agd_store_forward_get(nodes[0].st, "agent-1", host, &epoch), AGD_STORE_ERR_NOTFOUND,
		     "the pointer it left is void now that it is back");
	cr_assert_eq(agd_store_forward_get(nodes[1].st, "agent-1", host, &epoch), 0);
	cr_assert_eq(epoch, 2);
}

/* Delivers everything but messages of type `skip`, which are dropped. */
static void deliver_all_but(int skip)
{
	while (qn > 0) {
		struct packet p = take(0);

		if (p.type != skip)
			deliver(&p);
		free(p.bytes);
	}
}

/* Delivers every packet in flight, and those they cause, twice each. */
static void deliver_all_twice(void)
{
	for (int i = 0; i < 200 && qn > 0; i++) {
		struct packet p = take(0);

		deliver(&p);
		deliver(&p);
		free(p.bytes);
	}
}

Test(agd_xfer, every_message_duplicated_still_activates_once)
{
	struct agd_xfer_req r = push_req("agent-1", "host-b");

	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	deliver_all_twice();
	settle();
	cr_assert_eq(nodes[0].done_calls, 1);
	cr_assert_eq(nodes[0].done_rc, 0);
	assert_exactly_once("agent-1", "duplicates");
	cr_assert_eq(nodes[1].activations, 1);
}

/* Records every packet of a clean transfer, then replays all of them,
 * to the live target and to a restarted one. */
static void replay_everything(int restart_target)
{
	struct agd_xfer_req r = push_req("agent-1", "host-b");
	struct packet saved[64];
	size_t nsaved = 0;

	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	while (qn > 0) {
		struct packet p = take(0);

		deliver(&p);
		cr_assert_lt(nsaved, 64);
		saved[nsaved++] = p;
	}
	settle();
	cr_assert_eq(nodes[1].activations, 1);
	if (restart_target) {
		node_crash(&nodes[1]);
		node_start(&nodes[1]);
	}
	for (size_t i = 0; i < nsaved; i++) {
		deliver(&saved[i]);
		free(saved[i].bytes);
	}
	settle();
	cr_assert_eq(nodes[1].activations, 1, "a replay activated the agent again");
	assert_exactly_once("agent-1", "replay");
}

Test(agd_xfer, a_replayed_transfer_activates_nothing)
{
	replay_everything(0);
}

Test(agd_xfer, a_transfer_replayed_after_a_restart_activates_nothing)
{
	replay_everything(1);
}

Test(agd_xfer, refusal_leaves_the_agent_running_at_the_source)
{
	struct agd_xfer_req r = push_req("agent-1", "host-b");
	struct agd_agent_rec rec;

	nodes[1].refuse_segments = 1;
	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	settle();
	cr_assert_eq(nodes[0].done_calls, 1);
	cr_assert_eq(nodes[0].done_rc, AGD_XFER_ERR_REFUSED);
	cr_assert_eq(agd_store_segment_has(nodes[1].st, seg_hash), 0, "refused code is not cached");
	memset(&rec, 0, sizeof rec);
	cr_assert_eq(agd_store_agent_get(nodes[1].st, "agent-1", &rec), AGD_STORE_ERR_NOTFOUND);
	assert_exactly_once("agent-1", "refusal");
	cr_assert_eq(nodes[1].activations, 0);
}

Test(agd_xfer, timeout_leaves_the_agent_running_at_the_source)
{
	struct agd_xfer_req r = push_req("agent-1", "host-b");

	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	/* The target never hears anything. */
	while (qn > 0) {
		struct packet p = take(0);

		free(p.bytes);
	}
	now += 2000;
	tick_all();
	cr_assert_eq(nodes[0].done_calls, 1);
	cr_assert_eq(nodes[0].done_rc, AGD_XFER_ERR_TIMEOUT);
	settle();
	assert_exactly_once("agent-1", "timeout");
}

/* The target stored it, but its acknowledgement and the source's ABORT are
 * lost: the target must ask, learn it was aborted and drop its copy. */
Test(agd_xfer, lost_ack_and_lost_abort_end_with_the_agent_at_the_source)
{
	struct agd_xfer_req r = push_req("agent-1", "host-b");
	struct agd_agent_rec rec;

	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	deliver_all_but(AGD_MSG_COMMITTED);
	memset(&rec, 0, sizeof rec);
	cr_assert_eq(agd_store_agent_get(nodes[1].st, "agent-1", &rec), 0, "stored before the ack");
	cr_assert_str_eq(rec.status, AGD_XFER_STATUS_ARRIVING);
	agd_store_agent_clear(&rec);
	now += 2000;
	tick_all(); /* source times out, sends ABORT */
	cr_assert_eq(nodes[0].done_rc, AGD_XFER_ERR_TIMEOUT);
	deliver_all_but(AGD_MSG_ABORT);
	settle();
	cr_assert_eq(agd_store_agent_get(nodes[1].st, "agent-1", &rec), AGD_STORE_ERR_NOTFOUND,
		     "the target dropped the aborted copy");
	assert_exactly_once("agent-1", "lost ack");
	cr_assert_eq(nodes[1].activations, 0);
}

Test(agd_xfer, a_lost_activate_is_recovered_by_asking_the_source)
{
	struct agd_xfer_req r = push_req("agent-1", "host-b");

	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	while (qn > 0) {
		struct packet p = take(0);

		if (p.type != AGD_MSG_ACTIVATE)
			deliver(&p);
		free(p.bytes);
	}
	cr_assert_eq(nodes[1].activations, 0);
	cr_assert_eq(nodes[0].done_rc, 0, "the source committed");
	settle();
	cr_assert_eq(nodes[1].activations, 1);
	assert_exactly_once("agent-1", "lost activate");
}

/* kill -9 of either host after each delivered message, with or without the
 * messages it had sent still reaching their destination. */
static void crash_at(int step, int victim, int keep_outgoing)
{
	struct agd_xfer_req r = push_req("agent-1", "host-b");
	char what[64];

	snprintf(what, sizeof what, "crash %.8s after step %d (%s)", nodes[victim].name, step,
		 keep_outgoing ? "its messages arrive" : "its messages lost");
	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	run(step);
	node_crash(&nodes[victim]);
	if (!keep_outgoing)
		for (size_t i = qn; i-- > 0;)
			if (q[i].from == victim) {
				struct packet p = take(i);

				free(p.bytes);
			}
	run(-1); /* whatever was in flight; the victim is down */
	now += 3000;
	tick_all();
	run(-1);
	node_start(&nodes[victim]);
	settle();
	assert_exactly_once("agent-1", what);
}

Test(agd_xfer, kill_9_of_either_host_at_every_step_leaves_the_agent_exactly_once)
{
	struct agd_xfer_req r = push_req("agent-1", "host-b");
	int steps;

	/* Count the steps of a clean run first. */
	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	steps = run(-1);
	cr_assert_geq(steps, 7, "OFFER GET_SEGMENT SEGMENT ACCEPT TRANSFER COMMITTED ACTIVATE");
	teardown();
	for (int victim = 0; victim < 2; victim++)
		for (int keep = 0; keep < 2; keep++)
			for (int step = 0; step <= steps; step++) {
				setup();
				crash_at(step, victim, keep);
				teardown();
			}
	setup(); /* for the suite's fini */
}

/* SIGSTOP on the source after it sent TRANSFER; the target stored the agent
 * and acknowledged; when the source runs again its clock has jumped. */
Test(agd_xfer, a_source_paused_mid_transfer_does_not_act_twice)
{
	struct agd_xfer_req r = push_req("agent-1", "host-b");
	struct packet ack = { 0 };
	int have_ack = 0;

	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	while (qn > 0) {
		struct packet p = take(0);

		if (p.type == AGD_MSG_COMMITTED && !have_ack) {
			ack = p; /* held while the source is stopped */
			have_ack = 1;
			continue;
		}
		deliver(&p);
		free(p.bytes);
	}
	cr_assert(have_ack);
	/* SIGCONT: the timer fires before the socket is read. */
	now += 5000;
	agd_xfer_tick(nodes[0].x, now);
	cr_assert_eq(nodes[0].done_rc, AGD_XFER_ERR_TIMEOUT);
	deliver(&ack);
	free(ack.bytes);
	settle();
	assert_exactly_once("agent-1", "paused source");
	cr_assert_eq(nodes[1].activations, 0);
}

/* An old TRANSFER from a host the agent left long ago reaches a host the
 * agent has also left: its epoch is stale, and it is refused. */
Test(agd_xfer, a_stale_epoch_from_an_old_source_is_refused)
{
	struct agd_xfer_req r = push_req("agent-1", "host-b");
	struct packet old = { 0 };
	int have = 0, refused_before;

	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	while (qn > 0) {
		struct packet p = take(0);

		deliver(&p);
		if (p.type == AGD_MSG_TRANSFER && !have) {
			old = p;
			have = 1;
		} else {
			free(p.bytes);
		}
	}
	settle();
	r.to = "host-c";
	cr_assert_eq(agd_xfer_push(nodes[1].x, &r, now), 0);
	settle();
	cr_assert_eq(nodes[2].activations, 1);
	refused_before = sent_by_type[AGD_MSG_REFUSE];
	deliver(&old);
	free(old.bytes);
	cr_assert_eq(sent_by_type[AGD_MSG_REFUSE], refused_before + 1, "stale TRANSFER not refused");
	settle();
	cr_assert_eq(nodes[1].activations, 1);
	{
		int where = -1;

		cr_assert_eq(live_on("agent-1", &where), 1);
		cr_assert_eq(where, 2);
	}
}

Test(agd_xfer, clone_runs_under_a_new_id_and_the_original_goes_on)
{
	struct agd_xfer_req r = push_req("agent-1", "host-b");
	struct agd_agent_rec rec;

	r.kind = AGD_KIND_CLONE;
	r.clone_id = "agent-1-clone";
	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	settle();
	cr_assert_eq(nodes[0].done_rc, 0);
	cr_assert_eq(nodes[1].activations, 1);
	cr_assert_str_eq(nodes[1].last_origin, "agent-1");
	memset(&rec, 0, sizeof rec);
	cr_assert_eq(agd_store_agent_get(nodes[0].st, "agent-1", &rec), 0, "the original stays");
	cr_assert_eq(rec.epoch, 0);
	cr_assert_str_eq(rec.status, "running");
	agd_store_agent_clear(&rec);
	cr_assert_eq(agd_store_agent_get(nodes[1].st, "agent-1-clone", &rec), 0);
	agd_store_agent_clear(&rec);
}

/* The counts `transfers` reports: each outcome once, on the host it
 * happened on, however often its messages came. */
Test(agd_xfer, each_outcome_is_counted_once_where_it_happened)
{
	struct agd_xfer_req r = push_req("agent-1", "host-b");
	struct agd_xfer_counts a, b;

	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	deliver_all_twice();
	settle();
	r.to = "host-a";
	cr_assert_eq(agd_xfer_push(nodes[1].x, &r, now), 0);
	settle();
	r.to = "host-b";
	r.kind = AGD_KIND_CLONE;
	r.clone_id = "agent-1-clone";
	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	settle();
	nodes[2].refuse_segments = 1;
	r.to = "host-c";
	r.kind = AGD_KIND_PUSH;
	r.clone_id = NULL;
	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	settle();
	cr_assert_eq(nodes[0].done_rc, AGD_XFER_ERR_REFUSED);
	agd_xfer_counts(nodes[0].x, &a);
	agd_xfer_counts(nodes[1].x, &b);
	cr_assert_eq(a.moved_out, 1);
	cr_assert_eq(a.cloned_out, 1);
	cr_assert_eq(a.failed, 1);
	cr_assert_eq(a.arrived, 1, "it came back once");
	cr_assert_eq(b.moved_out, 1);
	cr_assert_eq(b.cloned_out, 0);
	cr_assert_eq(b.failed, 0);
	cr_assert_eq(b.arrived, 2, "the agent, then its clone, each once despite duplicates");
}

Test(agd_xfer, pull_brings_the_agent_to_the_asking_host)
{
	cr_assert_eq(agd_xfer_pull(nodes[1].x, "host-a", "agent-1", AGD_MOB_STRONG), 0);
	settle();
	cr_assert_eq(nodes[1].activations, 1);
	assert_exactly_once("agent-1", "pull");
}

Test(agd_xfer, a_second_push_while_one_is_under_way_is_busy)
{
	struct agd_xfer_req r = push_req("agent-1", "host-b");

	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	r.to = "host-c";
	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), AGD_XFER_ERR_BUSY);
	r.agent = "nobody";
	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), AGD_XFER_ERR_NOTFOUND);
}

/* Chaos: random drops, duplicates, reordering and crashes of random hosts,
 * over many seeds; when the network heals, the agent is exactly once. */
Test(agd_xfer, random_faults_never_lose_or_duplicate_the_agent)
{
	uint32_t seed = 7;

	teardown();
	for (int round = 0; round < 60; round++) {
		struct agd_xfer_req r = push_req("agent-1", "host-b");
		char what[32];

		setup();
		snprintf(what, sizeof what, "chaos round %d", round);
		cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
		for (int step = 0; step < 60; step++) {
			uint32_t dice;

			seed = seed * 1103515245u + 12345u;
			dice = (seed >> 8) % 100;
			if (qn > 0) {
				size_t i = (seed >> 16) % qn; /* reordering */
				struct packet p = take(i);

				if (dice >= 15) /* 15% lost */
					deliver(&p);
				if (dice < 25) /* some duplicated */
					deliver(&p);
				free(p.bytes);
			}
			if (dice == 99 || dice == 98) {
				int v = (int)((seed >> 20) % 2);

				if (nodes[v].up)
					node_crash(&nodes[v]);
			}
			now += 50 + (seed >> 24) % 400;
			for (int i = 0; i < NODES; i++)
				if (!nodes[i].up && (seed & 0x40))
					node_start(&nodes[i]);
			tick_all();
		}
		for (int i = 0; i < NODES; i++)
			if (!nodes[i].up)
				node_start(&nodes[i]);
		settle();
		assert_exactly_once("agent-1", what);
		teardown();
	}
	setup();
}

/* An aborted attempt's copy sits at the target (its ACK and the ABORT were
 * lost); the runtime writes the agent's row back with the epoch it knew and
 * newer state; the next attempt must carry the new state, not revive the
 * old copy. */
Test(agd_xfer, an_epoch_is_never_reused_after_an_abort)
{
	struct agd_xfer_req r = push_req("agent-1", "host-b");
	static const char v2[] = "newer-state";
	struct agd_agent_rec rec;

	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	deliver_all_but(AGD_MSG_COMMITTED);
	now += 2000;
	agd_xfer_tick(nodes[0].x, now);
	cr_assert_eq(nodes[0].done_rc, AGD_XFER_ERR_TIMEOUT);
	while (qn > 0) { /* the ABORT is lost */
		struct packet p = take(0);

		free(p.bytes);
	}
	memset(&rec, 0, sizeof rec);
	cr_assert_eq(agd_store_agent_get(nodes[0].st, "agent-1", &rec), 0);
	free(rec.state);
	rec.state = (uint8_t *)v2;
	rec.state_len = sizeof v2 - 1;
	rec.epoch = 0; /* what the runtime knew */
	snprintf(rec.status, sizeof rec.status, "running");
	cr_assert_eq(agd_store_agent_put(nodes[0].st, &rec), 0);
	r.state = (const uint8_t *)v2;
	r.state_len = sizeof v2 - 1;
	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	settle();
	cr_assert_eq(nodes[0].done_rc, 0);
	cr_assert_eq(nodes[1].activations, 1);
	cr_assert_str_eq(nodes[1].last_state, v2, "the old copy was revived");
}

/* A store of an earlier build kept the highest epoch in kv xfer.ep.<id>:
 * the next attempt starts above it, and drops the record (the row keeps
 * the epoch from then on). */
Test(agd_xfer, an_epoch_recorded_apart_by_an_earlier_build_is_honoured_then_dropped)
{
	struct agd_xfer_req r = push_req("agent-1", "host-b");
	static const uint8_t nine[8] = { 0, 0, 0, 0, 0, 0, 0, 9 };
	struct agd_agent_rec rec;
	void *v = NULL;
	size_t len = 0;

	cr_assert_eq(agd_store_kv_put(nodes[0].st, "xfer.ep.agent-1", nine, sizeof nine), 0);
	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	settle();
	cr_assert_eq(nodes[0].done_rc, 0);
	cr_assert_eq(nodes[1].activations, 1);
	memset(&rec, 0, sizeof rec);
	cr_assert_eq(agd_store_agent_get(nodes[1].st, "agent-1", &rec), 0);
	cr_assert_eq(rec.epoch, 10, "epoch %llu, not above the recorded 9", (unsigned long long)rec.epoch);
	agd_store_agent_clear(&rec);
	cr_assert_eq(agd_store_kv_get(nodes[0].st, "xfer.ep.agent-1", &v, &len), AGD_STORE_ERR_NOTFOUND);
	free(v);
}

/* A target known to have the code gets the TRANSFER without an OFFER. */
Test(agd_xfer, a_host_known_to_have_the_code_gets_no_offer)
{
	struct agd_xfer_req r = push_req("agent-1", "host-b");

	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	settle();
	r.to = "host-a";
	cr_assert_eq(agd_xfer_push(nodes[1].x, &r, now), 0);
	settle();
	r.to = "host-b";
	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	settle();
	cr_assert_eq(nodes[0].done_rc, 0);
	cr_assert_eq(sent_by_type[AGD_MSG_OFFER], 2, "the third hop should skip the offer");
	cr_assert_eq(sent_by_type[AGD_MSG_TRANSFER], 3);
	cr_assert_eq(nodes[1].activations, 2);
	{
		int where = -1;

		cr_assert_eq(live_on("agent-1", &where), 1);
		cr_assert_eq(where, 1);
	}
}

/* The target lost the code it was known to have: it refuses the direct
 * TRANSFER, the source offers, the code is fetched again, the agent lands. */
Test(agd_xfer, a_host_that_lost_the_code_is_offered_it_again)
{
	struct agd_xfer_req r = push_req("agent-1", "host-b");

	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	settle();
	r.to = "host-a";
	cr_assert_eq(agd_xfer_push(nodes[1].x, &r, now), 0);
	settle();
	cr_assert_eq(agd_store_segment_delete(nodes[1].st, seg_hash), 0);
	r.to = "host-b";
	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
	settle();
	cr_assert_eq(nodes[0].done_rc, 0);
	cr_assert_eq(sent_by_type[AGD_MSG_GET_SEGMENT], 2, "the code was not fetched again");
	cr_assert_eq(nodes[1].activations, 2);
	{
		int where = -1;

		cr_assert_eq(live_on("agent-1", &where), 1);
		cr_assert_eq(where, 1);
	}
}

/* [logs] The agent's log part (TRANSFER blob 3) comes with it, kept with
 * the stored arrival, so a target killed before the ACTIVATE still has it;
 * a malformed or oversized one is dropped and the agent arrives all the
 * same. */
static void log_part(uint8_t **b, size_t *len)
{
	struct agd_logring *r = NULL;

	cr_assert_eq(agd_logring_add(&r, 1700000000000, "host-a", "hello from a", 12), 0);
	cr_assert_eq(agd_logring_add(&r, 1700000000001, "host-a", "[state] running -> migrating", 28), 0);
	cr_assert_eq(agd_logring_encode(r, b, len), 0);
	agd_logring_destroy(&r);
}

/* Pushes agent-1 from host-a to host-b with a log part (*log, *len: the
 * caller frees it). */
static void push_with_log(uint8_t **log, size_t *len)
{
	struct agd_xfer_req r = push_req("agent-1", "host-b");

	log_part(log, len);
	r.log = *log;
	r.log_len = *len;
	cr_assert_eq(agd_xfer_push(nodes[0].x, &r, now), 0);
}

/* Delivers everything up to the stored arrival and its COMMITTED; the
 * ACTIVATE is lost with the target, which crashes. */
static void deliver_until_activate_crashes_target(void)
{
	while (qn > 0) {
		struct packet p = take(0);

		if (p.type == AGD_MSG_ACTIVATE)
			node_crash(&nodes[1]);
		else
			deliver(&p);
		free(p.bytes);
	}
}

Test(agd_xfer, the_log_part_arrives_with_the_agent_even_over_a_target_crash)
{
	uint8_t *log = NULL;
	size_t len = 0;

	push_with_log(&log, &len);
	deliver_until_activate_crashes_target();
	cr_assert_eq(nodes[1].activations, 0);
	node_start(&nodes[1]);
	settle();
	assert_exactly_once("agent-1", "log part over a target crash");
	cr_assert_eq(nodes[1].last_log_len, len);
	cr_assert_eq(memcmp(nodes[1].last_log, log, len), 0, "the log part changed on the way");
	free(log);
}

static int has_log_key(struct node *n, const char *agent)
{
	char key[AGD_STORE_KEY_MAX + 1];
	void *v = NULL;
	size_t len = 0;
	int rc;

	agd_logring_key(key, sizeof key, agent);
	rc = agd_store_kv_get(n->st, key, &v, &len);
	free(v);
	return rc == 0;
}

/* The log part is stored under the agent's log key with the arrival; an
 * aborted arrival takes it away again. */
Test(agd_xfer, an_aborted_arrival_leaves_no_log_part_behind)
{
	uint8_t *log = NULL;
	size_t len = 0;

	push_with_log(&log, &len);
	deliver_all_but(AGD_MSG_COMMITTED);
	cr_assert(has_log_key(&nodes[1], "agent-1"), "the log part is not stored with the arrival");
	now += 2000;
	tick_all(); /* the source times out and sends ABORT */
	settle();
	cr_assert_eq(nodes[0].done_rc, AGD_XFER_ERR_TIMEOUT);
	cr_assert(!has_log_key(&nodes[1], "agent-1"), "the aborted arrival left its log part");
	assert_exactly_once("agent-1", "aborted arrival with a log part");
	free(log);
}

/* An arrival stored by an earlier build kept its log part in the arrival
 * record (after the seen ids); activated by this one, the log part still
 * reaches the runtime and ends up under the log key. */
Test(agd_xfer, an_arrival_stored_by_an_earlier_build_keeps_its_log_part)
{
	char key[AGD_STORE_KEY_MAX + 1];
	uint8_t *log = NULL, *old;
	void *v = NULL;
	size_t len = 0, vlen = 0;

	push_with_log(&log, &len);
	deliver_until_activate_crashes_target();
	/* Rewrite the stored arrival as the earlier build wrote it. */
	cr_assert_eq(agd_store_open(nodes[1].path, &nodes[1].st), 0);
	snprintf(key, sizeof key, "xfer.in.%s", "agent-1");
	cr_assert_eq(agd_store_kv_get(nodes[1].st, key, &v, &vlen), 0);
	old = malloc(vlen + 4 + len);
	cr_assert_not_null(old);
	memcpy(old, v, vlen);
	old[vlen] = (uint8_t)(len >> 24);
	old[vlen + 1] = (uint8_t)(len >> 16);
	old[vlen + 2] = (uint8_t)(len >> 8);
	old[vlen + 3] = (uint8_t)len;
	memcpy(old + vlen + 4, log, len);
	cr_assert_eq(agd_store_kv_put(nodes[1].st, key, old, vlen + 4 + len), 0);
	agd_logring_key(key, sizeof key, "agent-1");
	cr_assert_eq(agd_store_kv_delete(nodes[1].st, key), 0);
	agd_store_close(&nodes[1].st);
	free(old);
	free(v);

	node_start(&nodes[1]);
	settle();
	assert_exactly_once("agent-1", "earlier build's arrival");
	cr_assert_eq(nodes[1].last_log_len, len);
	cr_assert_eq(memcmp(nodes[1].last_log, log, len), 0, "the log part changed on the way");
	cr_assert(has_log_key(&nodes[1], "agent-1"), "the log part is not under its log key");
	free(log);
}

/* Replaces the log part of the first queued TRANSFER with bad bytes. */
static void spoil_transfer_log(const uint8_t *bad, size_t len)
{
	for (size_t i = 0; i < qn; i++) {
		struct agd_wire_bytes f[AGD_WIRE_FRAMES_MAX];
		struct agd_wire_msg m;
		struct agd_wire_frames fr;
		uint8_t *packed = NULL;
		size_t n, plen = 0;

		if (q[i].type != AGD_MSG_TRANSFER)
			continue;
		cr_assert_eq(agd_wire_unpack(q[i].bytes, q[i].len, f, AGD_WIRE_FRAMES_MAX, &n), 0);
		cr_assert_eq(agd_wire_decode(f, n, &m), 0);
		m.blob[3].data = bad;
		m.blob[3].len = len;
		cr_assert_eq(agd_wire_encode(&m, &fr), 0);
		cr_assert_eq(agd_wire_pack(&fr, &packed, &plen), 0);
		free(q[i].bytes);
		q[i].bytes = packed;
		q[i].len = plen;
		return;
	}
	cr_assert_fail("no TRANSFER queued");
}

Test(agd_xfer, a_malformed_or_oversized_log_part_is_dropped_and_the_agent_still_arrives)
{
	static uint8_t big[AGD_LOGRING_BYTES + 100];
	static const uint8_t junk[] = "AGL\x01\x05 not five lines at all";
	struct {
		const uint8_t *bytes;
		size_t len;
	} bad[] = { { junk, sizeof junk - 1 }, { big, sizeof big } };

	memset(big, 'x', sizeof big);
	memcpy(big, "AGL\x01\x01", 5);
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		struct agd_xfer_req r = push_req("agent-1", k == 0 ? "host-b" : "host-a");
		int from = k == 0 ? 0 : 1, to = k == 0 ? 1 : 0;
		uint8_t *log = NULL;
		size_t len = 0;

		log_part(&log, &len);
		r.log = log;
		r.log_len = len;
		cr_assert_eq(agd_xfer_push(nodes[from].x, &r, now), 0);
		/* The OFFER first (and the code): then the TRANSFER is queued. */
		while (qn > 0 && q[0].type != AGD_MSG_TRANSFER) {
			struct packet p = take(0);

			deliver(&p);
			free(p.bytes);
		}
		spoil_transfer_log(bad[k].bytes, bad[k].len);
		settle();
		cr_assert_eq(nodes[from].done_rc, 0, "case %zu: the move failed", k);
		cr_assert_eq(nodes[to].last_log_len, 0, "case %zu: a bad log part reached the runtime", k);
		cr_assert_str_eq(nodes[to].last_state, state_v1, "case %zu", k);
		free(log);
	}
	cr_assert_eq(nodes[1].activations, 1);
	cr_assert_eq(nodes[0].activations, 1, "and back: the agent came home");
}
