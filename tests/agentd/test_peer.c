/*
 * test_peer.c: the peer channel over real CURVE sockets on loopback. A
 * trusted host gets through and is named by its key; an unknown key, a
 * wrong server key, a NULL-mechanism client, and anyone at all when no ZAP
 * handler is bound, get no application frame through (each with a bounded
 * wait, and a monitor event proving the attempt was made); malformed and
 * oversized input is refused with an error reply, and the server goes on.
 */
#include "agd_peer.h"
#include "agd_zap.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

/* Host A (server under test) and host B (a trusted client), each with its
 * own context as two daemons would have. */
struct host {
	void *ctx;
	struct agd_zap *zap;
	struct agd_peer *peer;
	uint8_t pub[32], sec[32];
	int got;                      /* messages handed to the handler */
	char from[AGD_WIRE_NAME_MAX + 1];
	struct agd_wire_msg last;     /* copy (blobs not kept) */
	uint64_t ids[16];             /* msgid of each message, in arrival order */
};

static struct host A, B, C; /* C: a stranger */

static void on_msg(void *ud, const char *from, const struct agd_wire_msg *m)
{
	struct host *h = ud;

	if (h->got < 16)
		h->ids[h->got] = m->msgid;
	h->got++;
	snprintf(h->from, sizeof h->from, "%s", from);
	h->last = *m;
	h->last.blob[0].data = NULL;
	h->last.blob[1].data = NULL;
}

static void host_init(struct host *h, const char *name, int with_zap, int64_t maxmsg)
{
	struct agd_peer_cfg cfg = { 0 };

	memset(h, 0, sizeof *h);
	crypto_box_keypair(h->pub, h->sec);
	h->ctx = zmq_ctx_new();
	if (with_zap) {
		cr_assert_eq(agd_zap_new(h->ctx, &h->zap), 0);
		cr_assert_eq(agd_zap_start(h->zap), 0);
	}
	cfg.host = name;
	cfg.bind = "tcp://127.0.0.1:*";
	cfg.public_key = h->pub;
	cfg.secret_key = h->sec;
	cfg.maxmsgsize = maxmsg;
	cfg.handshake_ms = 1000;
	cr_assert_eq(agd_peer_new(h->ctx, &cfg, on_msg, h, &h->peer), 0);
}

static void host_fini(struct host *h)
{
	agd_peer_destroy(&h->peer);
	agd_zap_destroy(&h->zap);
	if (h->ctx)
		zmq_ctx_term(h->ctx);
	h->ctx = NULL;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls h (and optionally other) until h->got reaches want or ms pass. */
static void pump(struct host *h, struct host *other, int want, int ms)
{
	long end = now_ms() + ms;

	while (h->got < want && now_ms() < end) {
		agd_peer_poll(h->peer, 20);
		if (other && other->peer)
			agd_peer_poll(other->peer, 0);
	}
}

static void setup(void)
{
	cr_assert_geq(sodium_init(), 0);
	host_init(&A, "host-a", 1, 0);
	host_init(&B, "host-b", 1, 0);
	host_init(&C, "host-c", 1, 0);
	cr_assert_eq(agd_zap_trust(A.zap, AGD_ZAP_DOMAIN_PEER, B.pub, "host-b"), 0);
	cr_assert_eq(agd_zap_trust(B.zap, AGD_ZAP_DOMAIN_PEER, A.pub, "host-a"), 0);
}

static void teardown(void)
{
	host_fini(&A);
	host_fini(&B);
	host_fini(&C);
}

TestSuite(agd_peer, .init = setup, .fini = teardown, .timeout = 60);

static void deliver(struct agd_wire_msg *m, const char *agent, uint64_t msgid)
{
	memset(m, 0, sizeof *m);
	m->type = AGD_MSG_DELIVER;
	m->corr = msgid;
	snprintf(m->agent, sizeof m->agent, "%s", agent);
	snprintf(m->host, sizeof m->host, "whoever");
	m->msgid = msgid;
	m->blob[0].data = (const uint8_t *)"payload";
	m->blob[0].len = 7;
}

/* A monitor on A's ROUTER, to see handshakes fail (or succeed). */
static void *monitor_router(struct host *h, const char *name)
{
	void *socks[4];
	void *mon;
	char ep[64];

	cr_assert_geq(agd_peer_sockets(h->peer, socks, 4), 1);
	snprintf(ep, sizeof ep, "inproc://mon-%s", name);
	cr_assert_eq(zmq_socket_monitor(socks[0], ep, ZMQ_EVENT_ALL), 0);
	mon = zmq_socket(h->ctx, ZMQ_PAIR);
	cr_assert_eq(zmq_connect(mon, ep), 0);
	return mon;
}

/* Waits up to ms for an event in mask; returns it, or 0. Keeps A pumping
 * so that anything that did get through would be counted. */
static int wait_event(void *mon, int mask, struct host *h, int ms)
{
	long end = now_ms() + ms;

	while (now_ms() < end) {
		uint8_t ev[6];
		char addr[256];
		zmq_pollitem_t it = { mon, 0, ZMQ_POLLIN, 0 };

		agd_peer_poll(h->peer, 0);
		if (zmq_poll(&it, 1, 20) <= 0)
			continue;
		if (zmq_recv(mon, ev, sizeof ev, 0) != 6)
			continue;
		zmq_recv(mon, addr, sizeof addr, 0);
		{
			int e = ev[0] | ev[1] << 8;

			if (e & mask)
				return e;
		}
	}
	return 0;
}

static void close_monitor(struct host *h, void *mon)
{
	void *socks[4];

	agd_peer_sockets(h->peer, socks, 4);
	zmq_socket_monitor(socks[0], NULL, 0);
	zmq_close(mon);
}

#define HANDSHAKE_FAILED (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | \
			  ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

/* B dials A and sends it a DELIVER with msgid id; waits for it there. */
static void send_first(struct agd_wire_msg *m, uint64_t id)
{
	cr_assert_eq(agd_peer_add(B.peer, "host-a", agd_peer_endpoint(A.peer), A.pub), 0);
	deliver(m, "agent-1", id);
	cr_assert_eq(agd_peer_send(B.peer, "host-a", m), 0);
	pump(&A, &B, 1, 5000);
}

Test(agd_peer, trusted_host_gets_through_and_is_named_by_its_key)
{
	struct agd_wire_msg m;

	send_first(&m, 11);
	cr_assert_eq(A.got, 1, "nothing arrived from a trusted host");
	cr_assert_str_eq(A.from, "host-b");
	cr_assert_eq(A.last.type, AGD_MSG_DELIVER);
	cr_assert_eq(A.last.msgid, 11);
	cr_assert_str_eq(A.last.agent, "agent-1");
}

static char hello_host[64], hello_ep[256];

static void on_hello(void *ud, const char *host, const char *endpoint)
{
	snprintf(hello_host, sizeof hello_host, "%s", host);
	snprintf(hello_ep, sizeof hello_ep, "%s", endpoint);
}

Test(agd_peer, hello_tells_the_peer_where_to_dial_back)
{
	struct agd_wire_msg m;

	agd_peer_on_hello(A.peer, on_hello, NULL);
	cr_assert_eq(agd_peer_add(B.peer, "host-a", agd_peer_endpoint(A.peer), A.pub), 0);
	deliver(&m, "agent-1", 3);
	cr_assert_eq(agd_peer_send(B.peer, "host-a", &m), 0);
	pump(&A, &B, 1, 5000);
	cr_assert_eq(A.got, 1);
	cr_assert_str_eq(hello_host, "host-b");
	cr_assert_str_eq(hello_ep, agd_peer_endpoint(B.peer));
}

Test(agd_peer, answer_goes_back_over_the_router_to_an_undialled_host)
{
	struct agd_wire_msg m;

	cr_assert_eq(agd_peer_add(B.peer, "host-a", agd_peer_endpoint(A.peer), A.pub), 0);
	deliver(&m, "agent-1", 1);
	cr_assert_eq(agd_peer_send(B.peer, "host-a", &m), 0);
	pump(&A, &B, 1, 5000);
	cr_assert_eq(A.got, 1);
	cr_assert(agd_peer_known(A.peer, "host-b"));
	memset(&m, 0, sizeof m);
	m.type = AGD_MSG_DELIVERED;
	m.corr = 1;
	m.msgid = 1;
	snprintf(m.agent, sizeof m.agent, "agent-1");
	cr_assert_eq(agd_peer_send(A.peer, "host-b", &m), 0);
	pump(&B, &A, 1, 5000);
	cr_assert_eq(B.got, 1);
	cr_assert_str_eq(B.from, "host-a");
	cr_assert_eq(B.last.type, AGD_MSG_DELIVERED);
}

static int befores, afters, after_fail;

static void count_before(void *ud, int type)
{
	(void)ud;
	befores += type == AGD_MSG_DELIVER;
}

static void count_after(void *ud, const char *host, int type, int rc)
{
	(void)ud;
	afters += type == AGD_MSG_DELIVER && strcmp(host, "host-a") == 0;
	after_fail += rc != 0;
}

/* Held messages leave only on release, in order and whole; dropped ones
 * never leave. */
Test(agd_peer, held_messages_leave_on_release_in_order_and_dropped_ones_never)
{
	struct agd_wire_msg m;

	send_first(&m, 20);
	cr_assert_eq(A.got, 1, "the connection did not come up");

	agd_peer_hold(B.peer);
	for (uint64_t id = 21; id <= 23; id++) {
		deliver(&m, "agent-1", id);
		cr_assert_eq(agd_peer_send(B.peer, "host-a", &m), 0);
	}
	cr_assert_eq(agd_peer_send(B.peer, "nobody", &m), AGD_PEER_ERR_UNKNOWN, "routes are checked at once");
	cr_assert_gt(agd_peer_held_bytes(B.peer), 3 * 7, "three payloads and their headers are held");
	pump(&A, &B, 2, 300);
	cr_assert_eq(A.got, 1, "a held message went out");
	cr_assert_eq(agd_peer_release(B.peer, count_before, count_after, NULL), 0);
	cr_assert_eq(agd_peer_held_bytes(B.peer), 0);
	cr_assert_eq(befores, 3);
	cr_assert_eq(afters, 3);
	cr_assert_eq(after_fail, 0);
	pump(&A, &B, 4, 5000);
	cr_assert_eq(A.got, 4);
	cr_assert_eq(A.ids[1], 21);
	cr_assert_eq(A.ids[2], 22);
	cr_assert_eq(A.ids[3], 23);
	cr_assert_eq(A.last.blob[0].len, 7, "the payload came whole");

	agd_peer_hold(B.peer);
	deliver(&m, "agent-1", 31);
	cr_assert_eq(agd_peer_send(B.peer, "host-a", &m), 0);
	agd_peer_drop(B.peer);
	cr_assert_eq(agd_peer_release(B.peer, NULL, NULL, NULL), 0, "nothing left to release");
	deliver(&m, "agent-1", 32);
	cr_assert_eq(agd_peer_send(B.peer, "host-a", &m), 0, "no longer held");
	pump(&A, &B, 5, 5000);
	cr_assert_eq(A.got, 5);
	cr_assert_eq(A.ids[4], 32, "the dropped message arrived");
}

Test(agd_peer, sending_to_an_unknown_host_is_an_error)
{
	struct agd_wire_msg m;

	deliver(&m, "agent-1", 1);
	cr_assert_eq(agd_peer_send(A.peer, "nobody", &m), AGD_PEER_ERR_UNKNOWN);
}

Test(agd_peer, unknown_key_gets_nothing_through)
{
	struct agd_wire_msg m;
	struct agd_zap_stats st;
	void *mon = monitor_router(&A, "unknown");

	cr_assert_eq(agd_peer_add(C.peer, "host-a", agd_peer_endpoint(A.peer), A.pub), 0);
	deliver(&m, "agent-1", 1);
	cr_assert_eq(agd_peer_send(C.peer, "host-a", &m), 0);
	cr_assert_neq(wait_event(mon, HANDSHAKE_FAILED, &A, 5000), 0, "no handshake failure seen");
	pump(&A, &C, 1, 500);
	cr_assert_eq(A.got, 0, "a stranger's frame got through");
	agd_zap_stats(A.zap, &st);
	cr_assert_geq(st.denied, 1);
	cr_assert_eq(st.allowed, 0);
	close_monitor(&A, mon);
}

Test(agd_peer, wrong_server_key_gets_nothing_through)
{
	struct agd_wire_msg m;
	struct agd_zap_stats st;
	void *mon = monitor_router(&A, "wrongkey");

	/* B is trusted, but dials A with C's key as A's server key. */
	cr_assert_eq(agd_peer_add(B.peer, "host-a", agd_peer_endpoint(A.peer), C.pub), 0);
	deliver(&m, "agent-1", 1);
	cr_assert_eq(agd_peer_send(B.peer, "host-a", &m), 0);
	cr_assert_neq(wait_event(mon, HANDSHAKE_FAILED, &A, 5000), 0, "no handshake failure seen");
	pump(&A, &B, 1, 500);
	cr_assert_eq(A.got, 0);
	agd_zap_stats(A.zap, &st);
	cr_assert_eq(st.allowed, 0, "the handshake should fail before ZAP is asked");
	close_monitor(&A, mon);
}

Test(agd_peer, null_mechanism_client_gets_nothing_through)
{
	void *mon = monitor_router(&A, "null");
	void *d = zmq_socket(B.ctx, ZMQ_DEALER);
	int linger = 0;

	zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof linger);
	cr_assert_eq(zmq_connect(d, agd_peer_endpoint(A.peer)), 0);
	zmq_send(d, "AGDP\x01\x11", 6, ZMQ_SNDMORE | ZMQ_DONTWAIT);
	zmq_send(d, "x", 1, ZMQ_DONTWAIT);
	cr_assert_neq(wait_event(mon, HANDSHAKE_FAILED, &A, 5000), 0, "no handshake failure seen");
	pump(&A, NULL, 1, 500);
	cr_assert_eq(A.got, 0);
	zmq_close(d);
	close_monitor(&A, mon);
}

Test(agd_peer, without_a_zap_handler_nobody_gets_in)
{
	struct host N;
	struct agd_wire_msg m;
	void *mon;

	host_init(&N, "host-n", 0, 0);
	mon = monitor_router(&N, "nozap");
	cr_assert_eq(agd_peer_add(B.peer, "host-n", agd_peer_endpoint(N.peer), N.pub), 0);
	deliver(&m, "agent-1", 1);
	cr_assert_eq(agd_peer_send(B.peer, "host-n", &m), 0);
	cr_assert_neq(wait_event(mon, HANDSHAKE_FAILED, &N, 5000), 0, "no handshake failure seen");
	pump(&N, &B, 1, 500);
	cr_assert_eq(N.got, 0, "a missing ZAP handler let a frame through");
	close_monitor(&N, mon);
	host_fini(&N);
}

/* A raw CURVE DEALER with B's (trusted) keys, to send arbitrary frames. */
static void *raw_trusted(void)
{
	void *d = zmq_socket(B.ctx, ZMQ_DEALER);
	int linger = 0, tmo = 5000;

	zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof linger);
	zmq_setsockopt(d, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
	zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, A.pub, 32);
	zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, B.pub, 32);
	zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, B.sec, 32);
	cr_assert_eq(zmq_connect(d, agd_peer_endpoint(A.peer)), 0);
	return d;
}

/* Reads one reply on a raw DEALER while A keeps serving. */
static int raw_reply(void *d, struct agd_wire_msg *m, uint8_t store[4][512])
{
	struct agd_wire_bytes f[4];
	size_t n = 0;
	int more = 1;
	long end = now_ms() + 5000;
	zmq_pollitem_t it = { d, 0, ZMQ_POLLIN, 0 };

	while (now_ms() < end) {
		agd_peer_poll(A.peer, 10);
		if (zmq_poll(&it, 1, 10) > 0)
			break;
	}
	while (more && n < 4) {
		size_t ml = sizeof more;
		int got = zmq_recv(d, store[n], 512, ZMQ_DONTWAIT);

		if (got < 0)
			return -100;
		f[n].data = store[n];
		f[n].len = (size_t)got;
		n++;
		zmq_getsockopt(d, ZMQ_RCVMORE, &more, &ml);
	}
	return agd_wire_decode(f, n, m);
}

Test(agd_peer, malformed_input_gets_an_error_reply_and_the_server_goes_on)
{
	void *d = raw_trusted();
	struct agd_wire_msg m;
	static uint8_t store[4][512];
	struct agd_peer_stats st;

	/* Unknown type. */
	zmq_send(d, "AGDP\x01\x7f", 6, ZMQ_SNDMORE);
	zmq_send(d, "", 0, 0);
	cr_assert_eq(raw_reply(d, &m, store), 0);
	cr_assert_eq(m.type, AGD_MSG_ERROR);
	cr_assert_eq(m.code, AGD_WIRE_ERR_TYPE);

	/* Wrong version. */
	zmq_send(d, "AGDP\x09\x01", 6, 0);
	cr_assert_eq(raw_reply(d, &m, store), 0);
	cr_assert_eq(m.code, AGD_WIRE_ERR_VERSION);

	/* Too many frames. */
	for (int i = 0; i < 9; i++)
		zmq_send(d, "zz", 2, i < 8 ? ZMQ_SNDMORE : 0);
	cr_assert_eq(raw_reply(d, &m, store), 0);
	cr_assert_eq(m.code, AGD_WIRE_ERR_TOOBIG);

	/* A truncated body. */
	zmq_send(d, "AGDP\x01\x09", 6, ZMQ_SNDMORE);
	zmq_send(d, "\0\0\0", 3, 0);
	cr_assert_eq(raw_reply(d, &m, store), 0);
	cr_assert_eq(m.code, AGD_WIRE_ERR_TRUNCATED);

	cr_assert_eq(A.got, 0, "nothing malformed reaches the handler");
	agd_peer_stats(A.peer, &st);
	cr_assert_eq(st.refused, 4);

	/* And a well-formed message from the same connection still works. */
	{
		struct agd_wire_msg ok;
		struct agd_wire_frames fr;

		deliver(&ok, "agent-9", 9);
		cr_assert_eq(agd_wire_encode(&ok, &fr), 0);
		for (size_t i = 0; i < fr.n; i++)
			zmq_send(d, fr.f[i].data, fr.f[i].len, i + 1 < fr.n ? ZMQ_SNDMORE : 0);
		pump(&A, NULL, 1, 5000);
		cr_assert_eq(A.got, 1);
		cr_assert_str_eq(A.last.agent, "agent-9");
	}
	zmq_close(d);
}

Test(agd_peer, oversized_frame_drops_the_connection_not_the_server)
{
	struct host S;
	static uint8_t big[8192];
	void *d, *mon;
	int linger = 0;
	struct agd_wire_msg m;

	host_init(&S, "host-s", 1, 4096);
	cr_assert_eq(agd_zap_trust(S.zap, AGD_ZAP_DOMAIN_PEER, B.pub, "host-b"), 0);
	mon = monitor_router(&S, "big");
	d = zmq_socket(B.ctx, ZMQ_DEALER);
	zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof linger);
	zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, S.pub, 32);
	zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, B.pub, 32);
	zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, B.sec, 32);
	cr_assert_eq(zmq_connect(d, agd_peer_endpoint(S.peer)), 0);
	zmq_send(d, "AGDP\x01\x11", 6, ZMQ_SNDMORE);
	zmq_send(d, big, sizeof big, 0);
	cr_assert_neq(wait_event(mon, ZMQ_EVENT_DISCONNECTED, &S, 5000), 0, "connection not dropped");
	cr_assert_eq(S.got, 0);
	zmq_close(d);

	/* The server still serves a well-behaved peer. */
	cr_assert_eq(agd_peer_add(B.peer, "host-s", agd_peer_endpoint(S.peer), S.pub), 0);
	deliver(&m, "agent-2", 2);
	cr_assert_eq(agd_peer_send(B.peer, "host-s", &m), 0);
	pump(&S, &B, 1, 5000);
	cr_assert_eq(S.got, 1);
	close_monitor(&S, mon);
	host_fini(&S);
}

Test(agd_peer, a_full_queue_refuses_instead_of_blocking)
{
	struct host Q;
	struct agd_peer_cfg cfg = { 0 };
	struct agd_wire_msg m;
	int rc = 0, sent = 0;

	memset(&Q, 0, sizeof Q);
	crypto_box_keypair(Q.pub, Q.sec);
	Q.ctx = zmq_ctx_new();
	cfg.host = "host-q";
	cfg.bind = "tcp://127.0.0.1:*";
	cfg.public_key = Q.pub;
	cfg.secret_key = Q.sec;
	cfg.sndhwm = 10;
	cr_assert_eq(agd_peer_new(Q.ctx, &cfg, on_msg, &Q, &Q.peer), 0);
	/* A peer that never answers: nothing listens on this port. */
	cr_assert_eq(agd_peer_add(Q.peer, "nowhere", "tcp://127.0.0.1:1", A.pub), 0);
	deliver(&m, "agent-1", 1);
	for (int i = 0; i < 1000 && rc == 0; i++) {
		rc = agd_peer_send(Q.peer, "nowhere", &m);
		if (rc == 0)
			sent++;
	}
	cr_assert_eq(rc, AGD_PEER_ERR_AGAIN);
	cr_assert_lt(sent, 1000);
	host_fini(&Q);
}
