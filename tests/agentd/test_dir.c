/*
 * test_dir.c: location and exactly-once delivery to moving agents, with
 * four hosts (a: home, b and c: where it goes, d: a sender that knows
 * nothing) running agd_xfer and agd_dir over real stores and an in-process
 * network. Messages sent while the agent is in flight arrive after it
 * lands; none is lost, none delivered twice; pointers and the home and
 * directory records lead to wherever it is.
 */
#include "agd_dir.h"
#include "agd_store.h"
#include "agd_xfer.h"
#include "mig_key.h"
#include "mig_segment.h"
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODES 4
#define QMAX 4096
#define INBOX 64

struct node {
	char name[16];
	char path[256];
	struct agd_store *st;
	struct agd_xfer *x;
	struct agd_dir *d;
	char inbox[INBOX][32];     /* payloads delivered here, in order */
	int ninbox;
	int sent_code;             /* last ops->sent code */
	int sent_calls;
	char sent_host[64];
	int located_code;
	char located_host[64];
	int located_calls;
	int suspending;            /* ops->deliver says "being suspended" */
};

struct packet {
	int from, to, type;
	uint8_t *bytes;
	size_t len;
};

static struct node nodes[NODES];
static struct packet q[QMAX];
static size_t qn;
static uint64_t now;
static char tmp[256];
static const char state_v1[] = "state";
static int drop_type;   /* drop every packet of this type (0: none) */
static int drop_budget; /* how many to drop */

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
	q[qn].type = m->type;
	q[qn].bytes = NULL;
	q[qn].len = 0;
	cr_assert_eq(agd_wire_pack(&fr, &q[qn].bytes, &q[qn].len), 0);
	qn++;
	return 0;
}

static int op_xsend(void *ud, const char *host, const struct agd_wire_msg *m)
{
	return op_send(ud, host, m);
}

static int op_activate(void *ud, const struct agd_xfer_arrival *a)
{
	struct node *n = ud;

	cr_assert_eq(agd_dir_import_seen(n->d, a->id, a->seen, a->seen_len), 0);
	agd_dir_arrived(n->d, a->id, a->home, a->epoch);
	agd_dir_settled(n->d, a->id, now);
	return 0;
}

static void op_done(void *ud, const char *agent, int rc, const char *host, uint64_t epoch,
		    const char *why)
{
	struct node *n = ud;

	if (rc == 0)
		agd_dir_forget(n->d, agent);
	agd_dir_settled(n->d, agent, now);
}

static const struct agd_xfer_ops xops = { op_xsend, NULL, op_activate, op_done, NULL };

static int op_deliver(void *ud, const char *agent, const char *from_host, const uint8_t *data,
		      size_t len)
{
	struct node *n = ud;

	if (n->suspending)
		return AGD_DIR_INFLIGHT;
	cr_assert_lt(n->ninbox, INBOX);
	snprintf(n->inbox[n->ninbox++], 32, "%.*s", (int)len, (const char *)data);
	return 0;
}

static void op_sent(void *ud, uint64_t msgid, const char *agent, int code, const char *host)
{
	struct node *n = ud;

	n->sent_calls++;
	n->sent_code = code;
	snprintf(n->sent_host, sizeof n->sent_host, "%s", host ? host : "");
}

static void op_located(void *ud, uint64_t corr, const char *agent, int code, const char *host,
		       uint64_t epoch)
{
	struct node *n = ud;

	n->located_calls++;
	n->located_code = code;
	snprintf(n->located_host, sizeof n->located_host, "%s", host ? host : "");
}

static const struct agd_dir_ops dops = { op_send, op_deliver, op_sent, op_located };

static void setup(void)
{
	struct mig_key *k = NULL;
	struct mig_segment *seg = NULL, *sseg = NULL;
	static const char manifest[] = "agentd-manifest 1\nname = hopper\nversion = 1\n"
				       "entry = main.lua main\nmobility = strong\nfile = main.lua\n";
	static const char main_lua[] = "function main() return 1 end\n";
	struct mig_seg_file f = { "main.lua", main_lua, sizeof main_lua - 1 };
	uint8_t *bytes = NULL;
	size_t blen = 0;
	struct agd_agent_rec rec;

	memset(nodes, 0, sizeof nodes);
	qn = 0;
	now = 1000;
	drop_type = 0;
	drop_budget = 0;
	cr_assert_eq(tst_tmpdir(tmp, sizeof tmp), 0);
	cr_assert_eq(mig_key_generate("author", &k), 0);
	cr_assert_eq(mig_segment_build(manifest, sizeof manifest - 1, &f, 1, &seg, NULL), 0);
	cr_assert_eq(mig_segment_sign(seg, k, &bytes, &blen), 0);
	cr_assert_eq(mig_segment_decode(bytes, blen, &sseg, NULL), 0);
	for (int i = 0; i < NODES; i++) {
		struct node *n = &nodes[i];
		struct agd_xfer_cfg xc = { 0 };
		struct agd_dir_cfg dc = { 0 };

		snprintf(n->name, sizeof n->name, "host-%c", 'a' + i);
		snprintf(n->path, sizeof n->path, "%.200s/host-%c.db", tmp, (char)('a' + i));
		cr_assert_eq(agd_store_open(n->path, &n->st), 0);
		/* Every host has the code here: delivery is what is tested. */
		cr_assert_eq(agd_store_segment_put(n->st, sseg), 0);
		xc.host = n->name;
		xc.store = n->st;
		xc.timeout_ms = 1000;
		xc.retry_ms = 200;
		cr_assert_eq(agd_xfer_new(&xc, &xops, n, &n->x), 0);
		dc.host = n->name;
		dc.directory = "host-c";
		dc.store = n->st;
		dc.timeout_ms = 5000;
		dc.retry_ms = 300;
		cr_assert_eq(agd_dir_new(&dc, &dops, n, &n->d), 0);
	}
	memset(&rec, 0, sizeof rec);
	snprintf(rec.id, sizeof rec.id, "agent-1");
	memcpy(rec.segment, mig_segment_hash(sseg), 32);
	rec.state = (uint8_t *)state_v1;
	rec.state_len = sizeof state_v1 - 1;
	snprintf(rec.status, sizeof rec.status, "running");
	snprintf(rec.home, sizeof rec.home, "host-a");
	cr_assert_eq(agd_store_agent_put(nodes[0].st, &rec), 0);
	free(bytes);
	mig_segment_destroy(&seg);
	mig_segment_destroy(&sseg);
	mig_key_destroy(&k);
}

static void teardown(void)
{
	for (int i = 0; i < NODES; i++) {
		agd_dir_destroy(&nodes[i].d);
		agd_xfer_destroy(&nodes[i].x);
		agd_store_close(&nodes[i].st);
	}
	for (size_t i = 0; i < qn; i++)
		free(q[i].bytes);
	qn = 0;
	tst_rmtree(tmp);
}

TestSuite(agd_dir, .init = setup, .fini = teardown, .timeout = 60);

static void deliver_packet(const struct packet *p)
{
	struct agd_wire_bytes f[AGD_WIRE_FRAMES_MAX];
	struct agd_wire_msg m;
	size_t n;
	struct node *to = &nodes[p->to];

	cr_assert_eq(agd_wire_unpack(p->bytes, p->len, f, AGD_WIRE_FRAMES_MAX, &n), 0);
	cr_assert_eq(agd_wire_decode(f, n, &m), 0);
	if (agd_xfer_input(to->x, nodes[p->from].name, &m, now) == 0)
		cr_assert_eq(agd_dir_input(to->d, nodes[p->from].name, &m, now), 1, "%s unhandled",
			     agd_wire_type_name(m.type));
}

static void run(int dup)
{
	while (qn > 0) {
		struct packet p = q[0];

		memmove(&q[0], &q[1], (qn - 1) * sizeof q[0]);
		qn--;
		if (p.type == drop_type && drop_budget > 0) {
			drop_budget--;
		} else {
			deliver_packet(&p);
			if (dup)
				deliver_packet(&p);
		}
		free(p.bytes);
	}
}

static void settle(int dup)
{
	for (int i = 0; i < 100; i++) {
		run(dup);
		now += 100;
		for (int k = 0; k < NODES; k++) {
			agd_xfer_tick(nodes[k].x, now);
			agd_dir_tick(nodes[k].d, now);
		}
	}
	run(dup);
}

static void move(int from, const char *to)
{
	struct agd_xfer_req r = { 0 };
	uint8_t *seen = NULL;
	size_t seen_len = 0;

	cr_assert_eq(agd_dir_export_seen(nodes[from].d, "agent-1", &seen, &seen_len), 0);
	r.agent = "agent-1";
	r.to = to;
	r.kind = AGD_KIND_PUSH;
	r.mobility = AGD_MOB_STRONG;
	r.state = (const uint8_t *)state_v1;
	r.state_len = sizeof state_v1 - 1;
	r.seen = seen;
	r.seen_len = seen_len;
	cr_assert_eq(agd_xfer_push(nodes[from].x, &r, now), 0);
	free(seen);
}

static int total_delivered(const char *payload)
{
	int c = 0;

	for (int i = 0; i < NODES; i++)
		for (int k = 0; k < nodes[i].ninbox; k++)
			if (strcmp(nodes[i].inbox[k], payload) == 0)
				c++;
	return c;
}

Test(agd_dir, a_message_to_a_local_agent_is_delivered_here_once)
{
	uint64_t id;

	cr_assert_eq(agd_dir_send(nodes[0].d, "agent-1", (const uint8_t *)"hi", 2, NULL, now, &id), 0);
	settle(0);
	cr_assert_eq(nodes[0].ninbox, 1);
	cr_assert_str_eq(nodes[0].inbox[0], "hi");
	cr_assert_eq(nodes[0].sent_calls, 1);
	cr_assert_eq(nodes[0].sent_code, AGD_DIR_HERE);
	cr_assert_eq(agd_dir_pending(nodes[0].d), 0);
}

Test(agd_dir, pointers_lead_a_message_to_where_the_agent_went)
{
	uint64_t id;

	move(0, "host-b");
	settle(0);
	move(1, "host-c");
	settle(0);
	/* host-b's sender: b points to c. host-a's: a points to c (the
	 * home was told by MOVED). */
	cr_assert_eq(agd_dir_send(nodes[1].d, "agent-1", (const uint8_t *)"m1", 2, NULL, now, &id), 0);
	cr_assert_eq(agd_dir_send(nodes[0].d, "agent-1", (const uint8_t *)"m2", 2, NULL, now, &id), 0);
	settle(0);
	cr_assert_eq(nodes[2].ninbox, 2);
	cr_assert_eq(total_delivered("m1"), 1);
	cr_assert_eq(total_delivered("m2"), 1);
	cr_assert_str_eq(nodes[0].sent_host, "host-c");
}

Test(agd_dir, the_home_learns_every_landing)
{
	char host[256];
	uint64_t epoch;

	move(0, "host-b");
	settle(0);
	move(1, "host-c");
	settle(0);
	cr_assert_eq(agd_dir_where(nodes[0].d, "agent-1", host, sizeof host, &epoch), AGD_WHERE_FORWARD);
	cr_assert_str_eq(host, "host-c");
	cr_assert_eq(epoch, 2);
}

Test(agd_dir, a_sender_that_knows_nothing_asks_the_directory)
{
	uint64_t id, corr;

	move(0, "host-b");
	settle(0);
	/* host-d knows nothing and has no hint: the directory (host-c) was
	 * told where the agent landed. */
	cr_assert_eq(agd_dir_send(nodes[3].d, "agent-1", (const uint8_t *)"dd", 2, NULL, now, &id), 0);
	cr_assert_eq(agd_dir_locate(nodes[3].d, "agent-1", NULL, now, &corr), 0);
	settle(0);
	cr_assert_eq(nodes[1].ninbox, 1);
	cr_assert_str_eq(nodes[1].inbox[0], "dd");
	cr_assert_eq(nodes[3].sent_code, AGD_DIR_HERE);
	cr_assert_eq(nodes[3].located_code, AGD_DIR_HERE);
	cr_assert_str_eq(nodes[3].located_host, "host-b");
}

Test(agd_dir, messages_sent_while_in_flight_arrive_after_landing)
{
	uint64_t id;
	char name[8];

	move(0, "host-b");
	/* Messages from everywhere while the transfer is under way, and
	 * between each of its steps. */
	for (int i = 0; i < 12; i++) {
		snprintf(name, sizeof name, "f%d", i);
		cr_assert_eq(agd_dir_send(nodes[i % NODES].d, "agent-1", (const uint8_t *)name, strlen(name),
					  "host-a", now, &id), 0);
		if (qn > 0) {
			struct packet p = q[0];

			memmove(&q[0], &q[1], (qn - 1) * sizeof q[0]);
			qn--;
			deliver_packet(&p);
			free(p.bytes);
		}
	}
	settle(0);
	for (int i = 0; i < 12; i++) {
		snprintf(name, sizeof name, "f%d", i);
		cr_assert_eq(total_delivered(name), 1, "%s delivered %d times", name, total_delivered(name));
	}
	for (int i = 0; i < NODES; i++)
		cr_assert_eq(agd_dir_pending(nodes[i].d), 0, "%s still sending", nodes[i].name);
}

Test(agd_dir, a_message_held_while_the_runtime_suspends_is_delivered_after)
{
	uint64_t id;

	nodes[0].suspending = 1;
	cr_assert_eq(agd_dir_send(nodes[3].d, "agent-1", (const uint8_t *)"s1", 2, "host-a", now, &id), 0);
	run(0);
	cr_assert_eq(agd_dir_held(nodes[0].d), 1);
	nodes[0].suspending = 0;
	move(0, "host-b");
	settle(0);
	cr_assert_eq(total_delivered("s1"), 1);
	cr_assert_eq(nodes[1].ninbox, 1);
}

Test(agd_dir, duplicated_packets_and_resends_deliver_once)
{
	uint64_t id;

	cr_assert_eq(agd_dir_send(nodes[3].d, "agent-1", (const uint8_t *)"x1", 2, "host-a", now, &id), 0);
	move(0, "host-b");
	cr_assert_eq(agd_dir_send(nodes[2].d, "agent-1", (const uint8_t *)"x2", 2, "host-a", now, &id), 0);
	settle(1);
	cr_assert_eq(total_delivered("x1"), 1);
	cr_assert_eq(total_delivered("x2"), 1);
}

/* Delivered at a, the acknowledgement lost, the agent moves on and a
 * forgets it: the resend is answered by b from the ids that travelled. */
Test(agd_dir, a_resend_after_the_agent_moved_is_not_delivered_again)
{
	uint64_t id;

	drop_type = AGD_MSG_DELIVERED;
	drop_budget = 1;
	cr_assert_eq(agd_dir_send(nodes[3].d, "agent-1", (const uint8_t *)"once", 4, "host-a", now, &id), 0);
	run(0);
	cr_assert_eq(nodes[0].ninbox, 1);
	cr_assert_eq(nodes[3].sent_calls, 0, "the ack was lost");
	move(0, "host-b");
	settle(0);
	cr_assert_eq(nodes[3].sent_calls, 1);
	cr_assert_eq(nodes[3].sent_code, AGD_DIR_HERE);
	cr_assert_eq(total_delivered("once"), 1);
}

Test(agd_dir, unknown_agents_and_pointer_loops_end_with_an_error)
{
	uint64_t id;

	cr_assert_eq(agd_dir_send(nodes[3].d, "nobody", (const uint8_t *)"n", 1, "host-a", now, &id), 0);
	settle(0);
	cr_assert_eq(nodes[3].sent_code, AGD_DIR_NOTFOUND);

	cr_assert_eq(agd_store_forward_put(nodes[0].st, "loopy", "host-b", 1), 0);
	cr_assert_eq(agd_store_forward_put(nodes[1].st, "loopy", "host-a", 1), 0);
	cr_assert_eq(agd_dir_send(nodes[0].d, "loopy", (const uint8_t *)"l", 1, NULL, now, &id), 0);
	settle(0);
	cr_assert_eq(nodes[0].sent_code, AGD_DIR_TOOFAR);
}

Test(agd_dir, a_host_that_never_answers_times_out)
{
	uint64_t id;

	drop_type = AGD_MSG_DELIVER;
	drop_budget = 1000;
	cr_assert_eq(agd_dir_send(nodes[3].d, "agent-1", (const uint8_t *)"t", 1, "host-a", now, &id), 0);
	settle(0);
	cr_assert_eq(nodes[3].sent_code, AGD_DIR_TIMEOUT);
	cr_assert_eq(total_delivered("t"), 0);
}

Test(agd_dir, seen_ids_round_trip_and_bad_bytes_are_refused)
{
	uint64_t id;
	uint8_t *b = NULL;
	size_t len = 0;

	cr_assert_eq(agd_dir_send(nodes[0].d, "agent-1", (const uint8_t *)"z", 1, NULL, now, &id), 0);
	cr_assert_eq(agd_dir_export_seen(nodes[0].d, "agent-1", &b, &len), 0);
	cr_assert_eq(len, 8);
	cr_assert_eq(agd_dir_import_seen(nodes[1].d, "agent-1", b, len), 0);
	cr_assert_eq(agd_dir_import_seen(nodes[1].d, "agent-1", b, 7), AGD_DIR_REFUSED);
	free(b);
}
