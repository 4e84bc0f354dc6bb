/*
 * agd_peer.c: CURVE-authenticated ROUTER/DEALER sockets between daemons.
 *
 * Reading a message: every frame is received into a zmq_msg_t, at most
 * AGD_WIRE_FRAMES_MAX (+1 routing id on the ROUTER) are kept and the rest
 * drained and counted, so a peer cannot make us hold more than the wire caps
 * allow. Decoding borrows from those messages; they are closed after the
 * handler returns.
 */
#include "agd_peer.h"

#include "agd_log.h"
#include "agd_zap.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* A draft option in libzmq 4.3 (present in the installed library, hidden in
 * its header unless ZMQ_BUILD_DRAFT_API): with it a CURVE server refuses
 * every handshake when no ZAP handler is bound, instead of admitting all. */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

#define ROUTING_ID_MAX 255
#define ENDPOINT_MAX 256

struct route {
	char host[AGD_WIRE_NAME_MAX + 1]; /* peer host name */
	void *dealer;                     /* our DEALER to it, or NULL */
	uint8_t rid[ROUTING_ID_MAX];      /* its connection on our ROUTER */
	size_t rid_len;                   /* 0: never heard from on the ROUTER */
};

/* A message agd_peer_send kept while held, as the ZeroMQ messages it will
 * be sent as: copied in once, as zmq_send would have copied them, and sent
 * with zmq_msg_send, which copies nothing more. */
struct held {
	struct held *next;
	char host[AGD_WIRE_NAME_MAX + 1];
	int type;
	size_t n;                           /* frames, initialised in msg */
	zmq_msg_t msg[AGD_WIRE_FRAMES_MAX]; /* owned until sent or closed */
};

struct agd_peer {
	void *zctx;                       /* borrowed context */
	void *router;                     /* our CURVE server */
	char host[AGD_WIRE_NAME_MAX + 1]; /* our name */
	char endpoint[ENDPOINT_MAX];      /* what the ROUTER bound */
	uint8_t pub[AGD_PEER_KEY_LEN];    /* our public key */
	uint8_t *sec;                     /* our secret key, sodium_malloc'd */
	int sndhwm;                       /* per-peer queue */
	int64_t maxmsgsize;               /* largest frame */
	int handshake_ms;                 /* handshake deadline */
	agd_peer_handler handler;         /* where messages go */
	void *ud;                         /* handler's argument */
	struct route routes[AGD_PEER_MAX];/* known peers, nroutes of them */
	size_t nroutes;                   /* entries in use */
	uint64_t corr;                    /* correlation ids for our HELLOs */
	struct agd_peer_stats stats;      /* counters */
	struct agd_wire_frames fr;        /* encoding scratch (4 KiB head) */
	char advertise[ENDPOINT_MAX];     /* sent in HELLO */
	agd_peer_hello_fn hello_fn;       /* told of peers' endpoints */
	void *hello_ud;
	int holding;                      /* agd_peer_hold: sends are kept */
	struct held *held, **held_tail;   /* kept messages, oldest first */
	size_t held_bytes;                /* their frames' bytes */
};

const char *agd_peer_strerror(int code)
{
	switch (code) {
	case AGD_PEER_OK: return "ok";
	case AGD_PEER_ERR_NOMEM: return "out of memory";
	case AGD_PEER_ERR_ZMQ: return "zeromq call failed";
	case AGD_PEER_ERR_ARG: return "invalid argument";
	case AGD_PEER_ERR_UNKNOWN: return "no route to host";
	case AGD_PEER_ERR_AGAIN: return "peer send queue full";
	case AGD_PEER_ERR_WIRE: return "message does not encode";
	case AGD_PEER_ERR_FULL: return "too many peers";
	default: return "unknown peer error";
	}
}

/* Options shared by the ROUTER and the DEALERs. */
static int common_opts(struct agd_peer *p, void *s)
{
	int linger = 0;

	if (zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
	    zmq_setsockopt(s, ZMQ_SNDHWM, &p->sndhwm, sizeof p->sndhwm) != 0 ||
	    zmq_setsockopt(s, ZMQ_RCVHWM, &p->sndhwm, sizeof p->sndhwm) != 0 ||
	    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &p->maxmsgsize, sizeof p->maxmsgsize) != 0 ||
	    zmq_setsockopt(s, ZMQ_HANDSHAKE_IVL, &p->handshake_ms, sizeof p->handshake_ms) != 0)
		return AGD_PEER_ERR_ZMQ;
	return 0;
}

int agd_peer_new(void *zctx, const struct agd_peer_cfg *cfg, agd_peer_handler handler, void *ud,
		 struct agd_peer **out)
{
	struct agd_peer *p;
	int one = 1, rc;
	size_t len;

	*out = NULL;
	if (cfg == NULL || cfg->host == NULL || cfg->bind == NULL || cfg->public_key == NULL ||
	    cfg->secret_key == NULL || handler == NULL || cfg->host[0] == '\0' ||
	    strlen(cfg->host) > AGD_WIRE_NAME_MAX)
		return AGD_PEER_ERR_ARG;
	p = calloc(1, sizeof *p);
	if (p == NULL)
		return AGD_PEER_ERR_NOMEM;
	p->sec = sodium_malloc(AGD_PEER_KEY_LEN);
	if (p->sec == NULL) {
		free(p);
		return AGD_PEER_ERR_NOMEM;
	}
	memcpy(p->sec, cfg->secret_key, AGD_PEER_KEY_LEN);
	memcpy(p->pub, cfg->public_key, AGD_PEER_KEY_LEN);
	snprintf(p->host, sizeof p->host, "%s", cfg->host);
	p->zctx = zctx;
	p->handler = handler;
	p->ud = ud;
	p->sndhwm = cfg->sndhwm > 0 ? cfg->sndhwm : 1000;
	p->maxmsgsize = cfg->maxmsgsize > 0 ? cfg->maxmsgsize : (int64_t)AGD_WIRE_FRAME_MAX + 64;
	p->handshake_ms = cfg->handshake_ms > 0 ? cfg->handshake_ms : 3000;

	rc = AGD_PEER_ERR_ZMQ;
	p->router = zmq_socket(zctx, ZMQ_ROUTER);
	if (p->router == NULL)
		goto fail;
	if (common_opts(p, p->router) != 0 ||
	    zmq_setsockopt(p->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one) != 0 ||
	    zmq_setsockopt(p->router, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
	    zmq_setsockopt(p->router, ZMQ_CURVE_SECRETKEY, p->sec, AGD_PEER_KEY_LEN) != 0 ||
	    zmq_setsockopt(p->router, ZMQ_ZAP_DOMAIN, AGD_ZAP_DOMAIN_PEER, strlen(AGD_ZAP_DOMAIN_PEER)) != 0)
		goto fail;
	if (zmq_setsockopt(p->router, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof one) != 0)
		/* Without it a missing handler would admit anyone at the
		 * transport; the User-Id check below still drops their frames. */
		agd_log(AGD_LOG_WARN, "peer.zap_enforce_unavailable", "error=\"%s\"",
			zmq_strerror(zmq_errno()));
	if (cfg->fd > 0 && zmq_setsockopt(p->router, ZMQ_USE_FD, &cfg->fd, sizeof cfg->fd) != 0)
		goto fail;
	if (zmq_bind(p->router, cfg->bind) != 0)
		goto fail;
	len = sizeof p->endpoint;
	if (zmq_getsockopt(p->router, ZMQ_LAST_ENDPOINT, p->endpoint, &len) != 0)
		goto fail;
	snprintf(p->advertise, sizeof p->advertise, "%s", cfg->advertise ? cfg->advertise : p->endpoint);
	*out = p;
	return 0;
fail:
	agd_log(AGD_LOG_ERROR, "peer.open_failed", "endpoint=%.128s error=\"%s\"", cfg->bind,
		zmq_strerror(zmq_errno()));
	agd_peer_destroy(&p);
	return rc;
}

void agd_peer_destroy(struct agd_peer **pp)
{
	struct agd_peer *p;

	if (pp == NULL || *pp == NULL)
		return;
	p = *pp;
	*pp = NULL;
	agd_peer_drop(p);
	for (size_t i = 0; i < p->nroutes; i++)
		if (p->routes[i].dealer)
			zmq_close(p->routes[i].dealer);
	if (p->router)
		zmq_close(p->router);
	sodium_free(p->sec); /* wipes */
	free(p);
}

const char *agd_peer_endpoint(const struct agd_peer *p)
{
	return p->endpoint;
}

static struct route *route_find(const struct agd_peer *p, const char *host)
{
	for (size_t i = 0; i < p->nroutes; i++)
		if (strcmp(p->routes[i].host, host) == 0)
			return (struct route *)&p->routes[i];
	return NULL;
}

static struct route *route_get(struct agd_peer *p, const char *host)
{
	struct route *r = route_find(p, host);

	if (r != NULL || p->nroutes == AGD_PEER_MAX)
		return r;
	r = &p->routes[p->nroutes++];
	memset(r, 0, sizeof *r);
	snprintf(r->host, sizeof r->host, "%s", host);
	return r;
}

int agd_peer_known(const struct agd_peer *p, const char *host)
{
	const struct route *r = route_find(p, host);

	return r != NULL && (r->dealer != NULL || r->rid_len > 0);
}

int agd_peer_dialled(const struct agd_peer *p, const char *host)
{
	const struct route *r = route_find(p, host);

	return r != NULL && r->dealer != NULL;
}

/* Sends the encoded frames on s, after an optional routing id. */
/* The routing id frame a message through the ROUTER starts with (none
 * through a DEALER: rid_len 0). */
static int send_rid(void *s, const uint8_t *rid, size_t rid_len)
{
	if (rid_len && zmq_send(s, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return errno == EAGAIN ? AGD_PEER_ERR_AGAIN :
		       errno == EHOSTUNREACH ? AGD_PEER_ERR_UNKNOWN : AGD_PEER_ERR_ZMQ;
	return 0;
}

static int send_frames(void *s, const uint8_t *rid, size_t rid_len, const struct agd_wire_frames *fr)
{
	int rc = send_rid(s, rid, rid_len);

	if (rc != 0)
		return rc;
	for (size_t i = 0; i < fr->n; i++) {
		int flags = ZMQ_DONTWAIT | (i + 1 < fr->n ? ZMQ_SNDMORE : 0);

		/* A multipart message is queued whole or not at all, so only
		 * the first frame can meet a full queue. */
		if (zmq_send(s, fr->f[i].data, fr->f[i].len, flags) < 0)
			return errno == EAGAIN ? AGD_PEER_ERR_AGAIN : AGD_PEER_ERR_ZMQ;
	}
	return 0;
}

int agd_peer_add(struct agd_peer *p, const char *host, const char *endpoint,
		 const uint8_t server_key[AGD_PEER_KEY_LEN])
{
	struct route *r;
	struct agd_wire_msg hello;
	void *s;

	if (host == NULL || endpoint == NULL || server_key == NULL || host[0] == '\0' ||
	    strlen(host) > AGD_WIRE_NAME_MAX)
		return AGD_PEER_ERR_ARG;
	r = route_get(p, host);
	if (r == NULL)
		return AGD_PEER_ERR_FULL;
	s = zmq_socket(p->zctx, ZMQ_DEALER);
	if (s == NULL)
		return AGD_PEER_ERR_ZMQ;
	if (common_opts(p, s) != 0 ||
	    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_key, AGD_PEER_KEY_LEN) != 0 ||
	    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, p->pub, AGD_PEER_KEY_LEN) != 0 ||
	    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, p->sec, AGD_PEER_KEY_LEN) != 0 ||
	    zmq_connect(s, endpoint) != 0) {
		int e = errno;

		zmq_close(s);
		errno = e;
		return AGD_PEER_ERR_ZMQ;
	}
	if (r->dealer)
		zmq_close(r->dealer);
	r->dealer = s;

	memset(&hello, 0, sizeof hello);
	hello.type = AGD_MSG_HELLO;
	hello.corr = ++p->corr;
	hello.proto = AGD_WIRE_VERSION;
	snprintf(hello.host, sizeof hello.host, "%s", p->host);
	if (strlen(p->advertise) <= AGD_WIRE_TEXT_MAX)
		snprintf(hello.text, sizeof hello.text, "%s", p->advertise);
	if (agd_wire_encode(&hello, &p->fr) == 0 && send_frames(s, NULL, 0, &p->fr) == 0)
		p->stats.sent++;
	agd_log(AGD_LOG_INFO, "peer.add", "host=%s endpoint=%.128s", host, endpoint);
	return 0;
}

/* The socket a message to host goes out on: its DEALER, or else the
 * ROUTER with the routing id of the connection it was last heard from
 * (*rid, *rid_len). NULL when there is no route. */
static void *route_out(struct agd_peer *p, const char *host, const uint8_t **rid, size_t *rid_len)
{
	const struct route *r = route_find(p, host);

	*rid = NULL;
	*rid_len = 0;
	if (r == NULL || (r->dealer == NULL && r->rid_len == 0))
		return NULL;
	if (r->dealer)
		return r->dealer;
	*rid = r->rid;
	*rid_len = r->rid_len;
	return p->router;
}

static void held_free(struct held *h)
{
	for (size_t i = 0; i < h->n; i++)
		zmq_msg_close(&h->msg[i]);
	free(h);
}

/* Keeps a copy of the frames in p->fr for agd_peer_release. */
static int keep(struct agd_peer *p, const char *host, int type)
{
	struct held *h = calloc(1, sizeof *h);
	size_t total = 0;

	if (h == NULL)
		return AGD_PEER_ERR_NOMEM;
	snprintf(h->host, sizeof h->host, "%s", host);
	h->type = type;
	for (size_t i = 0; i < p->fr.n; i++) {
		size_t len = p->fr.f[i].len;

		if (zmq_msg_init_size(&h->msg[i], len) != 0) {
			held_free(h);
			return AGD_PEER_ERR_NOMEM;
		}
		h->n++;
		if (len)
			memcpy(zmq_msg_data(&h->msg[i]), p->fr.f[i].data, len);
		total += len;
	}
	*p->held_tail = h;
	p->held_tail = &h->next;
	p->held_bytes += total;
	return 0;
}

/* As send_frames, for a held message; its frames are consumed when sent. */
static int send_held(struct agd_peer *p, struct held *h)
{
	const uint8_t *rid;
	size_t rid_len;
	void *s = route_out(p, h->host, &rid, &rid_len);
	int rc;

	if (s == NULL)
		return AGD_PEER_ERR_UNKNOWN;
	if ((rc = send_rid(s, rid, rid_len)) != 0)
		return rc;
	for (size_t i = 0; i < h->n; i++) {
		int flags = ZMQ_DONTWAIT | (i + 1 < h->n ? ZMQ_SNDMORE : 0);

		/* Queued whole or not at all (send_frames): only the first
		 * frame can meet a full queue. A sent frame is emptied, and
		 * closing it later is harmless. */
		if (zmq_msg_send(&h->msg[i], s, flags) < 0)
			return errno == EAGAIN ? AGD_PEER_ERR_AGAIN : AGD_PEER_ERR_ZMQ;
	}
	p->stats.sent++;
	return 0;
}

int agd_peer_send(struct agd_peer *p, const char *host, const struct agd_wire_msg *m)
{
	const uint8_t *rid;
	size_t rid_len;
	void *s = route_out(p, host, &rid, &rid_len);
	int rc;

	if (s == NULL)
		return AGD_PEER_ERR_UNKNOWN;
	if (agd_wire_encode(m, &p->fr) != 0)
		return AGD_PEER_ERR_WIRE;
	if (p->holding)
		return keep(p, host, m->type);
	rc = send_frames(s, rid, rid_len, &p->fr);
	if (rc == 0)
		p->stats.sent++;
	return rc;
}

void agd_peer_hold(struct agd_peer *p)
{
	if (!p->holding) {
		p->holding = 1;
		p->held = NULL;
		p->held_tail = &p->held;
		p->held_bytes = 0;
	}
}

size_t agd_peer_held_bytes(const struct agd_peer *p)
{
	return p->holding ? p->held_bytes : 0;
}

static struct held *next_held(struct agd_peer *p)
{
	struct held *h = p->held;

	if (h != NULL)
		p->held = h->next;
	return h;
}

size_t agd_peer_release(struct agd_peer *p, agd_peer_before_fn before, agd_peer_after_fn after,
			void *ud)
{
	struct held *h;
	size_t failed = 0;

	p->holding = 0;
	while ((h = next_held(p)) != NULL) {
		int rc;

		if (before)
			before(ud, h->type);
		rc = send_held(p, h);
		failed += rc != 0;
		if (after)
			after(ud, h->host, h->type, rc);
		held_free(h);
	}
	return failed;
}

void agd_peer_drop(struct agd_peer *p)
{
	struct held *h;

	p->holding = 0;
	while ((h = next_held(p)) != NULL)
		held_free(h);
}

size_t agd_peer_sockets(const struct agd_peer *p, void **socks, size_t max)
{
	size_t n = 0;

	if (n < max)
		socks[n] = p->router;
	n++;
	for (size_t i = 0; i < p->nroutes; i++) {
		if (p->routes[i].dealer == NULL)
			continue;
		if (n < max)
			socks[n] = p->routes[i].dealer;
		n++;
	}
	return n;
}

/* Answers a refused message on the ROUTER with ERROR; never answers an
 * ERROR, so two daemons cannot bounce errors forever. */
static void refuse(struct agd_peer *p, const char *from, const zmq_msg_t *rid, int code, int type)
{
	struct agd_wire_msg e;

	p->stats.refused++;
	agd_log(AGD_LOG_WARN, "peer.refused", "from=%s type=%s reason=\"%s\"", from ? from : "-",
		agd_wire_type_name(type), agd_wire_strerror(code));
	if (rid == NULL || type == AGD_MSG_ERROR)
		return;
	memset(&e, 0, sizeof e);
	e.type = AGD_MSG_ERROR;
	e.code = code;
	snprintf(e.text, sizeof e.text, "%s", agd_wire_strerror(code));
	if (agd_wire_encode(&e, &p->fr) == 0)
		send_frames(p->router, zmq_msg_data((zmq_msg_t *)rid), zmq_msg_size((zmq_msg_t *)rid),
			    &p->fr);
}

/* Reads one whole message from s (the caller knows one is waiting or
 * passes ZMQ_DONTWAIT). Returns 1 if one was read, 0 if none, or < 0. */
static int read_one(struct agd_peer *p, void *s, int is_router)
{
	zmq_msg_t parts[AGD_WIRE_FRAMES_MAX + 1];
	struct agd_wire_bytes f[AGD_WIRE_FRAMES_MAX];
	struct agd_wire_msg m;
	size_t kept = 0, total = 0, first = is_router ? 1 : 0;
	const char *from = NULL;
	char user[AGD_WIRE_NAME_MAX + 1] = "";
	int more = 1, rc, ret = 1;

	while (more) {
		zmq_msg_t *part = &parts[kept < AGD_WIRE_FRAMES_MAX + 1 ? kept : AGD_WIRE_FRAMES_MAX];

		if (kept == AGD_WIRE_FRAMES_MAX + 1) {
			/* Over the cap: drain into the last slot's place. */
			zmq_msg_t junk;

			zmq_msg_init(&junk);
			if (zmq_msg_recv(&junk, s, 0) < 0) {
				zmq_msg_close(&junk);
				break;
			}
			more = zmq_msg_more(&junk);
			zmq_msg_close(&junk);
			total++;
			continue;
		}
		zmq_msg_init(part);
		if (zmq_msg_recv(part, s, total == 0 ? ZMQ_DONTWAIT : 0) < 0) {
			zmq_msg_close(part);
			if (total == 0)
				return errno == EAGAIN ? 0 : AGD_PEER_ERR_ZMQ;
			break;
		}
		more = zmq_msg_more(part);
		kept++;
		total++;
	}

	if (is_router) {
		const char *uid = kept > 1 ? zmq_msg_gets(&parts[1], "User-Id") : NULL;

		/* No User-Id: the ZAP handler never approved this connection. */
		if (uid == NULL || uid[0] == '\0' || strlen(uid) > AGD_WIRE_NAME_MAX) {
			p->stats.refused++;
			agd_log(AGD_LOG_WARN, "peer.unauthenticated", "frames=%zu", total);
			goto out;
		}
		snprintf(user, sizeof user, "%s", uid);
		from = user;
	} else {
		for (size_t i = 0; i < p->nroutes; i++)
			if (p->routes[i].dealer == s)
				from = p->routes[i].host;
		if (from == NULL)
			goto out;
	}
	if (total - first > AGD_WIRE_FRAMES_MAX || kept < first) {
		refuse(p, from, is_router ? &parts[0] : NULL, AGD_WIRE_ERR_TOOBIG, 0);
		goto out;
	}
	for (size_t i = first; i < kept; i++) {
		f[i - first].data = zmq_msg_data(&parts[i]);
		f[i - first].len = zmq_msg_size(&parts[i]);
	}
	rc = agd_wire_decode(f, kept - first, &m);
	if (rc != 0) {
		int type = kept > first && f[0].len == AGD_WIRE_HEADER_LEN ? f[0].data[5] : 0;

		refuse(p, from, is_router ? &parts[0] : NULL, rc, type);
		goto out;
	}
	if (is_router) {
		/* Remember how to answer a host we have no DEALER to. */
		struct route *r = route_get(p, from);
		size_t l = zmq_msg_size(&parts[0]);

		if (r != NULL && l <= ROUTING_ID_MAX) {
			memcpy(r->rid, zmq_msg_data(&parts[0]), l);
			r->rid_len = l;
		}
	}
	if (m.type == AGD_MSG_HELLO) {
		if (strcmp(m.host, from) != 0 || m.proto < AGD_WIRE_VERSION_MIN || m.proto > AGD_WIRE_VERSION)
			agd_log(AGD_LOG_WARN, "peer.hello_mismatch", "from=%s claims=%s proto=%u", from,
				m.host, m.proto);
		else {
			agd_log(AGD_LOG_INFO, "peer.hello", "from=%s endpoint=%.128s", from, m.text);
			if (p->hello_fn && m.text[0])
				p->hello_fn(p->hello_ud, from, m.text);
		}
		goto out;
	}
	p->stats.received++;
	p->handler(p->ud, from, &m);
out:
	for (size_t i = 0; i < kept; i++)
		zmq_msg_close(&parts[i]);
	return ret;
}

int agd_peer_read(struct agd_peer *p, void *sock, int max)
{
	int is_router = sock == p->router, n = 0, rc = 0;

	while (n < max && (rc = read_one(p, sock, is_router)) == 1)
		n++;
	return rc < 0 && n == 0 ? rc : n;
}

int agd_peer_readable(struct agd_peer *p, void *sock)
{
	/* Bounded, so one busy peer cannot starve the rest of the loop. */
	return agd_peer_read(p, sock, AGD_PEER_READ_MAX);
}

int agd_peer_poll(struct agd_peer *p, int timeout_ms)
{
	zmq_pollitem_t items[AGD_PEER_MAX + 1];
	void *socks[AGD_PEER_MAX + 1];
	size_t n = agd_peer_sockets(p, socks, AGD_PEER_MAX + 1);
	int rc, total = 0;

	for (size_t i = 0; i < n; i++) {
		items[i].socket = socks[i];
		items[i].fd = 0;
		items[i].events = ZMQ_POLLIN;
		items[i].revents = 0;
	}
	rc = zmq_poll(items, (int)n, timeout_ms);
	if (rc < 0)
		return errno == EINTR ? 0 : AGD_PEER_ERR_ZMQ;
	for (size_t i = 0; i < n; i++) {
		if (!(items[i].revents & ZMQ_POLLIN))
			continue;
		rc = agd_peer_readable(p, items[i].socket);
		if (rc > 0)
			total += rc;
	}
	return total;
}

void agd_peer_stats(const struct agd_peer *p, struct agd_peer_stats *out)
{
	*out = p->stats;
}

void agd_peer_on_hello(struct agd_peer *p, agd_peer_hello_fn fn, void *ud)
{
	p->hello_fn = fn;
	p->hello_ud = ud;
}
