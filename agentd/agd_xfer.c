/*
 * agd_xfer.c: the exactly-once transfer protocol (see agd_xfer.h for the
 * exchange and its invariants; docs/protocol.md, "Transfer").
 *
 * What lives where:
 * - source attempts: in memory only (struct attempt). The durable facts are
 *   the agent's row (epoch bumped, "migrating") before the OFFER, and the
 *   forwarding pointer written with the row's deletion at the commit. A
 *   crash loses the attempt and so aborts it, which is always safe before
 *   the commit point and never happens after it (the pointer is the commit).
 * - target arrivals: in the store (row "migrating" plus a kv record naming
 *   the source, the origin, the kind and the resource segment), mirrored in
 *   memory (struct arriving) only to pace the questions to the source.
 * - offers waiting for a segment (code on demand): memory only; a lost one
 *   is a timeout at the source.
 */
#include "agd_xfer.h"

#include "agd_err.h"
#include "agd_log.h"
#include "agd_logring.h"
#include "agd_loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_PREFIX "xfer.in."

enum phase {
	PH_OFFERED,      /* OFFER sent, waiting for ACCEPT (or GET_SEGMENT) */
	PH_TRANSFERRING, /* TRANSFER sent, waiting for COMMITTED */
};

struct attempt {
	char agent[AGD_WIRE_NAME_MAX + 1];  /* the agent's id here */
	char id[AGD_WIRE_NAME_MAX + 1];     /* its id at the target (clone: new id) */
	char to[AGD_WIRE_NAME_MAX + 1];     /* target host */
	char home[AGD_WIRE_NAME_MAX + 1];   /* its home host */
	int kind;                           /* push, pull, clone */
	int mobility;                       /* weak, strong */
	uint64_t epoch;                     /* this attempt's epoch */
	uint64_t corr;                      /* correlation id of our messages */
	uint8_t hash[AGD_WIRE_HASH_LEN];    /* code segment */
	enum phase phase;                   /* where it stands */
	uint64_t started;                   /* ms: when the attempt began (progress) */
	int direct;                         /* TRANSFER sent without an OFFER: the
					       target was known to have the code */
	uint64_t deadline;                  /* ms: give up after */
	uint8_t *state;                     /* owned copy */
	size_t state_len;
	uint8_t *res;                       /* owned copy, or NULL */
	size_t res_len;
	uint8_t *seen;                      /* owned copy, or NULL */
	size_t seen_len;
	uint8_t *log;                       /* owned copy of its log part, or NULL */
	size_t log_len;
	struct attempt *next;
};

struct arriving {
	char id[AGD_WIRE_NAME_MAX + 1];   /* the agent's id here */
	char from[AGD_WIRE_NAME_MAX + 1]; /* its source: who decides */
	uint64_t epoch;                   /* the attempt's epoch */
	uint64_t next_ask;                /* ms: when to ask the source again */
	struct arriving *next;
};

struct waiting {
	char from[AGD_WIRE_NAME_MAX + 1]; /* the source that offered */
	char id[AGD_WIRE_NAME_MAX + 1];   /* agent offered */
	uint64_t epoch;                   /* its epoch */
	uint64_t corr;                    /* the OFFER's corr */
	uint8_t hash[AGD_WIRE_HASH_LEN];  /* segment asked for */
	uint64_t deadline;                /* ms: forget it after */
	struct waiting *next;
};

/* A (host, segment) pair known to be cached there: a target that accepted
 * or committed that code. Lets a later transfer skip the OFFER. */
struct known {
	char host[AGD_WIRE_NAME_MAX + 1];
	uint8_t hash[AGD_WIRE_HASH_LEN];
	struct known *next;
};

#define KNOWN_MAX 256

/* Pulls this host asked for, remembered so that `agentctl pull` can tell
 * arrival from refusal: a bounded ring, oldest overwritten. */
#define PULLS_MAX 32

struct pull {
	char agent[AGD_WIRE_NAME_MAX + 1];
	char from[AGD_WIRE_NAME_MAX + 1];
	int state;                        /* AGD_XFER_PULL_* */
	uint64_t started;                 /* ms */
	char why[AGD_WIRE_TEXT_MAX + 1];  /* the source's refusal */
};

struct agd_xfer {
	char host[AGD_WIRE_NAME_MAX + 1]; /* this host */
	struct agd_store *st;             /* borrowed */
	struct agd_xfer_ops ops;          /* callbacks */
	void *ud;                         /* their argument */
	uint64_t timeout_ms;              /* attempt deadline */
	uint64_t retry_ms;                /* arrival question interval */
	int durable;                      /* agd_store_begin's flag for the commits the
					     exactly-once rules rest on (epoch, stored
					     arrival, commit point): 1 survives power loss,
					     0 only a crash of the process */
	uint64_t corr;                    /* last correlation id used */
	struct attempt *attempts;         /* source side */
	struct arriving *arrivals;        /* target side */
	struct waiting *waits;            /* target side, code on demand */
	struct known *known;              /* source side: code cached at targets */
	size_t nknown;
	struct pull pulls[PULLS_MAX];     /* target side: pulls asked for */
	size_t npulls;                    /* pulls ever asked (ring index) */
	struct agd_xfer_counts counts;    /* outcomes since start */
};

const char *agd_xfer_strerror(int code)
{
	switch (code) {
	case AGD_XFER_OK: return "ok";
	case AGD_XFER_ERR_NOMEM: return "out of memory";
	case AGD_XFER_ERR_ARG: return "invalid argument";
	case AGD_XFER_ERR_BUSY: return "a transfer of this agent is under way";
	case AGD_XFER_ERR_TIMEOUT: return "the target did not answer in time";
	case AGD_XFER_ERR_REFUSED: return "the target refused the agent";
	case AGD_XFER_ERR_STORE: return "the durable store failed";
	case AGD_XFER_ERR_SEND: return "the message could not be sent";
	case AGD_XFER_ERR_STALE: return "stale epoch";
	case AGD_XFER_ERR_NOTFOUND: return "no such agent";
	case AGD_XFER_ERR_SEGMENT: return "code segment missing or not trusted";
	default: return "unknown transfer error";
	}
}

int agd_xfer_new(const struct agd_xfer_cfg *cfg, const struct agd_xfer_ops *ops, void *ud,
		 struct agd_xfer **out)
{
	struct agd_xfer *x;

	*out = NULL;
	if (cfg == NULL || cfg->host == NULL || cfg->store == NULL || ops == NULL ||
	    ops->send == NULL || ops->done == NULL || ops->activate == NULL ||
	    cfg->host[0] == '\0' || strlen(cfg->host) > AGD_WIRE_NAME_MAX)
		return AGD_XFER_ERR_ARG;
	x = calloc(1, sizeof *x);
	if (x == NULL)
		return AGD_XFER_ERR_NOMEM;
	snprintf(x->host, sizeof x->host, "%s", cfg->host);
	x->st = cfg->store;
	x->ops = *ops;
	x->ud = ud;
	x->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 5000;
	x->retry_ms = cfg->retry_ms ? cfg->retry_ms : 1000;
	x->durable = 1;
	*out = x;
	return 0;
}

static void attempt_free(struct attempt *a)
{
	if (a == NULL)
		return;
	free(a->state);
	free(a->res);
	free(a->seen);
	free(a->log);
	free(a);
}

void agd_xfer_destroy(struct agd_xfer **xp)
{
	struct agd_xfer *x;

	if (xp == NULL || *xp == NULL)
		return;
	x = *xp;
	*xp = NULL;
	while (x->attempts) {
		struct attempt *a = x->attempts;

		x->attempts = a->next;
		attempt_free(a);
	}
	while (x->arrivals) {
		struct arriving *r = x->arrivals;

		x->arrivals = r->next;
		free(r);
	}
	while (x->waits) {
		struct waiting *w = x->waits;

		x->waits = w->next;
		free(w);
	}
	while (x->known) {
		struct known *k = x->known;

		x->known = k->next;
		free(k);
	}
	free(x);
}

void agd_xfer_set_options(struct agd_xfer *x, unsigned options)
{
	x->durable = !(options & AGD_XFER_OPT_CRASH_DURABLE);
}

void agd_xfer_counts(const struct agd_xfer *x, struct agd_xfer_counts *out)
{
	*out = x->counts;
}

size_t agd_xfer_pending(const struct agd_xfer *x)
{
	size_t n = 0;

	for (const struct attempt *a = x->attempts; a; a = a->next)
		n++;
	return n;
}

/* ---- small helpers ---- */

static void msg_init(struct agd_wire_msg *m, int type, uint64_t corr, const char *id, uint64_t epoch)
{
	memset(m, 0, sizeof *m);
	m->type = (uint8_t)type;
	m->corr = corr;
	if (id)
		snprintf(m->agent, sizeof m->agent, "%s", id);
	m->epoch = epoch;
}

static int send_simple(struct agd_xfer *x, const char *to, int type, uint64_t corr, const char *id,
		       uint64_t epoch)
{
	struct agd_wire_msg m;

	msg_init(&m, type, corr, id, epoch);
	return x->ops.send(x->ud, to, &m);
}

static void send_refuse(struct agd_xfer *x, const char *to, const struct agd_wire_msg *in, int code,
			const char *why)
{
	struct agd_wire_msg m;

	msg_init(&m, AGD_MSG_REFUSE, in->corr, in->agent, in->epoch);
	m.code = code;
	snprintf(m.text, sizeof m.text, "%s", why);
	agd_log(AGD_LOG_INFO, "xfer.refuse", "agent=%s epoch=%llu to=%s reason=\"%s\"", in->agent,
		(unsigned long long)in->epoch, to, why);
	x->ops.send(x->ud, to, &m);
}

static struct attempt *attempt_by_id(struct agd_xfer *x, const char *id)
{
	for (struct attempt *a = x->attempts; a; a = a->next)
		if (strcmp(a->id, id) == 0)
			return a;
	return NULL;
}

static struct attempt *attempt_by_agent(struct agd_xfer *x, const char *agent)
{
	for (struct attempt *a = x->attempts; a; a = a->next)
		if (strcmp(a->agent, agent) == 0 || strcmp(a->id, agent) == 0)
			return a;
	return NULL;
}

static void attempt_unlink(struct agd_xfer *x, struct attempt *a)
{
	for (struct attempt **pp = &x->attempts; *pp; pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			return;
		}
}

static struct arriving *arrival_find(struct agd_xfer *x, const char *id)
{
	for (struct arriving *r = x->arrivals; r; r = r->next)
		if (strcmp(r->id, id) == 0)
			return r;
	return NULL;
}

static void arrival_drop(struct agd_xfer *x, const char *id)
{
	for (struct arriving **pp = &x->arrivals; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->id, id) == 0) {
			struct arriving *r = *pp;

			*pp = r->next;
			free(r);
			return;
		}
}

static int arrival_note(struct agd_xfer *x, const char *id, const char *from, uint64_t epoch,
			uint64_t next_ask)
{
	struct arriving *r = arrival_find(x, id);

	if (r == NULL) {
		r = calloc(1, sizeof *r);
		if (r == NULL)
			return AGD_XFER_ERR_NOMEM;
		r->next = x->arrivals;
		x->arrivals = r;
	}
	snprintf(r->id, sizeof r->id, "%s", id);
	snprintf(r->from, sizeof r->from, "%s", from);
	r->epoch = epoch;
	r->next_ask = next_ask;
	return 0;
}

/* ---- the target's durable arrival record (kv "xfer.in.<id>") ----
 * u8 len | source host | u8 len | origin id | u8 kind | u8 mobility
 * | u32 len | resource segment | u32 len | delivered ids [| u32 len | log
 * part]. Big-endian; read with bounds checks, since a damaged store must
 * not crash the daemon either. The log part is left out when empty, so a
 * record written before it existed reads the same. */

struct inrec {
	char from[AGD_WIRE_NAME_MAX + 1];
	char origin[AGD_WIRE_NAME_MAX + 1];
	int kind;
	int mobility;
	uint8_t *res; /* malloc'd on get, or NULL */
	size_t res_len;
	uint8_t *seen; /* as res */
	size_t seen_len;
	uint8_t *log; /* as res */
	size_t log_len;
};

static void inrec_free(struct inrec *r)
{
	free(r->res);
	free(r->seen);
	free(r->log);
	r->res = NULL;
	r->seen = NULL;
	r->log = NULL;
}

static void put32(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static size_t get32(const uint8_t *p)
{
	return (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
}

/* Copies n bytes at *p (bounded by end) into a malloc'd *dst. */
static int take_blob(const uint8_t **p, const uint8_t *end, uint8_t **dst, size_t *dlen)
{
	size_t n;

	if (end - *p < 4)
		return AGD_XFER_ERR_STORE;
	n = get32(*p);
	*p += 4;
	if ((size_t)(end - *p) < n)
		return AGD_XFER_ERR_STORE;
	if (n) {
		*dst = malloc(n);
		if (*dst == NULL)
			return AGD_XFER_ERR_NOMEM;
		memcpy(*dst, *p, n);
		*dlen = n;
		*p += n;
	}
	return 0;
}

static void kv_key(char *key, size_t len, const char *id)
{
	snprintf(key, len, KV_PREFIX "%s", id);
}

/* The log part of an arriving agent goes straight under its log key,
 * where the runtime keeps an agent's log, so that its activation need not
 * write it again; none (or a dropped one) clears what an older attempt
 * left there. An earlier build kept it in the arrival record (inrec),
 * which inrec_get still reads. */
static int log_put(struct agd_xfer *x, const char *id, const uint8_t *log, size_t len)
{
	char key[AGD_STORE_KEY_MAX + 1];
	int rc;

	agd_logring_key(key, sizeof key, id);
	if (len > 0)
		return agd_store_kv_put(x->st, key, log, len);
	rc = agd_store_kv_delete(x->st, key);
	return rc == AGD_STORE_ERR_NOTFOUND ? 0 : rc;
}

static int inrec_put(struct agd_xfer *x, const char *id, const struct inrec *r)
{
	size_t fl = strlen(r->from), ol = strlen(r->origin);
	size_t len = 1 + fl + 1 + ol + 2 + 4 + r->res_len + 4 + r->seen_len;
	uint8_t *b = malloc(len), *p;
	char key[AGD_STORE_KEY_MAX + 1];
	int rc;

	if (b == NULL)
		return AGD_XFER_ERR_NOMEM;
	p = b;
	*p++ = (uint8_t)fl;
	memcpy(p, r->from, fl);
	p += fl;
	*p++ = (uint8_t)ol;
	memcpy(p, r->origin, ol);
	p += ol;
	*p++ = (uint8_t)r->kind;
	*p++ = (uint8_t)r->mobility;
	put32(p, r->res_len);
	p += 4;
	if (r->res_len)
		memcpy(p, r->res, r->res_len);
	p += r->res_len;
	put32(p, r->seen_len);
	p += 4;
	if (r->seen_len)
		memcpy(p, r->seen, r->seen_len);
	kv_key(key, sizeof key, id);
	rc = agd_store_kv_put(x->st, key, b, len);
	free(b);
	return rc;
}

static int inrec_get(struct agd_xfer *x, const char *id, struct inrec *r)
{
	char key[AGD_STORE_KEY_MAX + 1];
	void *v = NULL;
	size_t len = 0, fl, ol;
	const uint8_t *p, *end;
	int rc;

	memset(r, 0, sizeof *r);
	kv_key(key, sizeof key, id);
	rc = agd_store_kv_get(x->st, key, &v, &len);
	if (rc != 0)
		return rc;
	p = v;
	end = p + len;
	rc = AGD_XFER_ERR_STORE;
	if (end - p < 1 || (fl = *p++) > AGD_WIRE_NAME_MAX || (size_t)(end - p) < fl)
		goto out;
	memcpy(r->from, p, fl);
	p += fl;
	if (end - p < 1 || (ol = *p++) > AGD_WIRE_NAME_MAX || (size_t)(end - p) < ol)
		goto out;
	memcpy(r->origin, p, ol);
	p += ol;
	if (end - p < 2)
		goto out;
	r->kind = p[0];
	r->mobility = p[1];
	p += 2;
	rc = take_blob(&p, end, &r->res, &r->res_len);
	if (rc == 0)
		rc = take_blob(&p, end, &r->seen, &r->seen_len);
	if (rc == 0 && p != end)
		rc = take_blob(&p, end, &r->log, &r->log_len);
	if (rc == 0 && p != end)
		rc = AGD_XFER_ERR_STORE;
out:
	if (rc != 0)
		inrec_free(r);
	free(v);
	return rc;
}

/* ---- source ---- */

static struct known **known_find(struct agd_xfer *x, const char *host, const uint8_t *hash)
{
	for (struct known **pp = &x->known; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->host, host) == 0 && memcmp((*pp)->hash, hash, AGD_WIRE_HASH_LEN) == 0)
			return pp;
	return NULL;
}

static void known_add(struct agd_xfer *x, const char *host, const uint8_t *hash)
{
	struct known *k;

	if (known_find(x, host, hash) != NULL)
		return;
	if (x->nknown >= KNOWN_MAX) {
		/* Forget the oldest (the list's tail): costs one OFFER later. */
		struct known **pp = &x->known;

		while ((*pp)->next)
			pp = &(*pp)->next;
		free(*pp);
		*pp = NULL;
		x->nknown--;
	}
	k = calloc(1, sizeof *k);
	if (k == NULL)
		return;
	snprintf(k->host, sizeof k->host, "%s", host);
	memcpy(k->hash, hash, AGD_WIRE_HASH_LEN);
	k->next = x->known;
	x->known = k;
	x->nknown++;
}

static void known_drop(struct agd_xfer *x, const char *host, const uint8_t *hash)
{
	struct known **pp = known_find(x, host, hash);

	if (pp != NULL) {
		struct known *k = *pp;

		*pp = k->next;
		free(k);
		x->nknown--;
	}
}

static int send_offer(struct agd_xfer *x, struct attempt *a, const uint8_t *bindings, size_t blen)
{
	struct agd_wire_msg m;

	msg_init(&m, AGD_MSG_OFFER, a->corr, a->id, a->epoch);
	if (a->kind == AGD_KIND_CLONE)
		snprintf(m.name, sizeof m.name, "%s", a->agent);
	memcpy(m.hash, a->hash, AGD_WIRE_HASH_LEN);
	m.mobility = (uint8_t)a->mobility;
	m.kind = (uint8_t)a->kind;
	m.size = a->state_len + a->res_len;
	m.blob[0].data = bindings;
	m.blob[0].len = bindings ? blen : 0;
	return x->ops.send(x->ud, a->to, &m);
}

static int transfer_msg_send(struct agd_xfer *x, struct attempt *a);

/* Before the agent's row kept the highest epoch itself (the store never
 * lowers it), a kv record "xfer.ep.<id>" (u64 big-endian) did: read while
 * a store may still hold one, and dropped by the next attempt. */
static void epoch_key(char *key, size_t len, const char *agent)
{
	snprintf(key, len, "xfer.ep.%s", agent);
}

static uint64_t epoch_legacy(struct agd_xfer *x, const char *agent)
{
	char key[AGD_STORE_KEY_MAX + 1];
	void *v = NULL;
	size_t len = 0;
	uint64_t e = 0;

	epoch_key(key, sizeof key, agent);
	if (agd_store_kv_get(x->st, key, &v, &len) == 0 && len == 8)
		for (size_t i = 0; i < 8; i++)
			e = e << 8 | ((const uint8_t *)v)[i];
	free(v);
	return e;
}

int agd_xfer_push(struct agd_xfer *x, const struct agd_xfer_req *req, uint64_t now_ms)
{
	struct agd_agent_rec rec;
	struct attempt *a = NULL;
	int rc;

	if (req == NULL || req->agent == NULL || req->to == NULL || req->agent[0] == '\0' ||
	    strlen(req->agent) > AGD_WIRE_NAME_MAX || req->to[0] == '\0' ||
	    strlen(req->to) > AGD_WIRE_NAME_MAX || strcmp(req->to, x->host) == 0 ||
	    (req->mobility != AGD_MOB_WEAK && req->mobility != AGD_MOB_STRONG) ||
	    req->kind < AGD_KIND_PUSH || req->kind > AGD_KIND_CLONE ||
	    (req->kind == AGD_KIND_CLONE &&
	     (req->clone_id == NULL || req->clone_id[0] == '\0' ||
	      strlen(req->clone_id) > AGD_WIRE_NAME_MAX)) ||
	    req->state_len > AGD_WIRE_BLOB_MAX || req->res_len > AGD_WIRE_BLOB_MAX ||
	    req->bindings_len > AGD_WIRE_BLOB_MAX || req->seen_len > AGD_WIRE_BLOB_MAX ||
	    req->log_len > AGD_LOGRING_BYTES)
		return AGD_XFER_ERR_ARG;
	if (attempt_by_agent(x, req->agent) != NULL ||
	    (req->kind == AGD_KIND_CLONE && attempt_by_agent(x, req->clone_id) != NULL))
		return AGD_XFER_ERR_BUSY;

	memset(&rec, 0, sizeof rec);
	rc = agd_store_agent_get(x->st, req->agent, &rec);
	if (rc == AGD_STORE_ERR_NOTFOUND)
		return AGD_XFER_ERR_NOTFOUND;
	if (rc != 0)
		return AGD_XFER_ERR_STORE;

	a = calloc(1, sizeof *a);
	if (a == NULL) {
		rc = AGD_XFER_ERR_NOMEM;
		goto out;
	}
	snprintf(a->agent, sizeof a->agent, "%s", req->agent);
	snprintf(a->id, sizeof a->id, "%s", req->kind == AGD_KIND_CLONE ? req->clone_id : req->agent);
	snprintf(a->to, sizeof a->to, "%s", req->to);
	snprintf(a->home, sizeof a->home, "%.*s", AGD_WIRE_NAME_MAX, rec.home[0] ? rec.home : x->host);
	a->kind = req->kind;
	a->mobility = req->mobility;
	memcpy(a->hash, rec.segment, AGD_WIRE_HASH_LEN);
	a->corr = ++x->corr;
	a->phase = PH_OFFERED;
	a->deadline = now_ms + x->timeout_ms;
	a->started = now_ms;
	if (req->state_len) {
		a->state = malloc(req->state_len);
		if (a->state == NULL) {
			rc = AGD_XFER_ERR_NOMEM;
			goto out;
		}
		memcpy(a->state, req->state, req->state_len);
		a->state_len = req->state_len;
	}
	if (req->res_len) {
		a->res = malloc(req->res_len);
		if (a->res == NULL) {
			rc = AGD_XFER_ERR_NOMEM;
			goto out;
		}
		memcpy(a->res, req->res, req->res_len);
		a->res_len = req->res_len;
	}
	if (req->seen_len) {
		a->seen = malloc(req->seen_len);
		if (a->seen == NULL) {
			rc = AGD_XFER_ERR_NOMEM;
			goto out;
		}
		memcpy(a->seen, req->seen, req->seen_len);
		a->seen_len = req->seen_len;
	}
	if (req->log_len) {
		a->log = malloc(req->log_len);
		if (a->log == NULL) {
			rc = AGD_XFER_ERR_NOMEM;
			goto out;
		}
		memcpy(a->log, req->log, req->log_len);
		a->log_len = req->log_len;
	}

	if (req->kind == AGD_KIND_CLONE) {
		/* The clone starts its own history; the original's row is not
		 * touched, it goes on here whatever happens. */
		a->epoch = 1;
	} else {
		/* The attempt's epoch is durable before anyone hears of it, so
		 * that whatever this attempt sends is stale once it is over. */
		uint64_t hw = epoch_legacy(x, req->agent);

		/* Never an epoch used before: an aborted attempt's epoch may
		 * still sit in some target's store. The row keeps the highest
		 * (the runtime writing it back with the epoch it knew does not
		 * lower it). */
		a->epoch = (rec.epoch > hw ? rec.epoch : hw) + 1;
		rc = agd_store_begin(x->st, x->durable);
		if (rc == 0) {
			if (req->mobility == AGD_MOB_STRONG && req->state_len &&
			    (rec.state_len != a->state_len || memcmp(rec.state, a->state, a->state_len) != 0)) {
				/* The suspended state is what a restart after a
				 * crash resumes: the row gets it (borrowed for the
				 * put). */
				free(rec.state);
				rec.state = a->state;
				rec.state_len = a->state_len;
				rec.epoch = a->epoch;
				snprintf(rec.status, sizeof rec.status, "%s", AGD_XFER_STATUS_MIGRATING);
				snprintf(rec.reason, sizeof rec.reason, "to %s", req->to);
				rc = agd_store_agent_put(x->st, &rec);
			} else {
				/* The runtime stored this very state already:
				 * status and epoch only (rewriting a large row
				 * costs more than the rest of the hop). */
				char why[AGD_STORE_REASON_MAX + 1];

				snprintf(why, sizeof why, "to %s", req->to);
				rc = agd_store_agent_mark(x->st, req->agent, AGD_XFER_STATUS_MIGRATING, why,
							  a->epoch);
			}
			if (rc == 0 && hw != 0) {
				char key[AGD_STORE_KEY_MAX + 1];

				epoch_key(key, sizeof key, req->agent);
				rc = agd_store_kv_delete(x->st, key);
				rc = rc == AGD_STORE_ERR_NOTFOUND ? 0 : rc;
			}
			if (rc == 0)
				rc = agd_store_commit(x->st);
			else
				agd_store_rollback(x->st);
		}
		if (rec.state == a->state)
			rec.state = NULL;
		if (rc != 0) {
			agd_log(AGD_LOG_ERROR, "xfer.store_failed", "agent=%s step=offer error=\"%s\"",
				a->agent, agd_store_strerror(rc));
			rc = AGD_XFER_ERR_STORE;
			goto out;
		}
	}

	/* A target known to cache this code gets the TRANSFER at once (one
	 * round trip less); if it lost the code it refuses, and the OFFER
	 * follows (on_refuse). */
	a->direct = known_find(x, a->to, a->hash) != NULL;
	if (a->direct) {
		a->phase = PH_TRANSFERRING;
		rc = transfer_msg_send(x, a);
	} else {
		rc = send_offer(x, a, req->bindings, req->bindings_len);
	}
	if (rc != 0) {
		if (req->kind != AGD_KIND_CLONE)
			agd_store_agent_set_status(x->st, a->agent, AGD_XFER_STATUS_RUNNING, "transfer not sent");
		rc = AGD_XFER_ERR_SEND;
		goto out;
	}
	agd_log(AGD_LOG_INFO, a->direct ? "xfer.transfer" : "xfer.offer",
		"agent=%s id=%s to=%s epoch=%llu kind=%d mobility=%d size=%zu", a->agent, a->id, a->to,
		(unsigned long long)a->epoch, a->kind, a->mobility, a->state_len + a->res_len);
	a->next = x->attempts;
	x->attempts = a;
	a = NULL;
	rc = 0;
out:
	attempt_free(a);
	agd_store_agent_clear(&rec);
	return rc;
}

/* Ends an attempt that did not commit: the agent stays here. */
static void attempt_fail(struct agd_xfer *x, struct attempt *a, int code, const char *why)
{
	struct agd_wire_msg m;

	attempt_unlink(x, a);
	/* Best effort: lets a target that stored it drop it now rather than
	 * when it next asks, and one that asked for it (a pull) tell its user
	 * why it is not coming. */
	msg_init(&m, AGD_MSG_ABORT, a->corr, a->id, a->epoch);
	m.code = code;
	snprintf(m.text, sizeof m.text, "%s", why);
	x->ops.send(x->ud, a->to, &m);
	if (a->kind != AGD_KIND_CLONE)
		agd_store_agent_set_status(x->st, a->agent, AGD_XFER_STATUS_RUNNING, why);
	x->counts.failed++;
	agd_log(AGD_LOG_WARN, "xfer.failed", "agent=%s to=%s epoch=%llu reason=\"%s\"", a->agent, a->to,
		(unsigned long long)a->epoch, why);
	x->ops.done(x->ud, a->agent, code, a->to, a->epoch, why);
	attempt_free(a);
}

static int transfer_msg_send(struct agd_xfer *x, struct attempt *a)
{
	struct agd_wire_msg m;

	msg_init(&m, AGD_MSG_TRANSFER, a->corr, a->id, a->epoch);
	snprintf(m.host, sizeof m.host, "%s", a->home);
	if (a->kind == AGD_KIND_CLONE)
		snprintf(m.name, sizeof m.name, "%s", a->agent);
	memcpy(m.hash, a->hash, AGD_WIRE_HASH_LEN);
	m.mobility = (uint8_t)a->mobility;
	m.kind = (uint8_t)a->kind;
	m.blob[0].data = a->state;
	m.blob[0].len = a->state_len;
	m.blob[1].data = a->res;
	m.blob[1].len = a->res_len;
	m.blob[2].data = a->seen;
	m.blob[2].len = a->seen_len;
	/* Blob 3, the log part, is optional (docs/protocol.md): without one
	 * the message is the version-1 TRANSFER every peer reads. */
	m.blob[3].data = a->log;
	m.blob[3].len = a->log_len;
	return x->ops.send(x->ud, a->to, &m);
}

static void send_transfer(struct agd_xfer *x, struct attempt *a, uint64_t now_ms)
{
	a->phase = PH_TRANSFERRING;
	a->deadline = now_ms + x->timeout_ms;
	if (transfer_msg_send(x, a) != 0)
		attempt_fail(x, a, AGD_XFER_ERR_SEND, "transfer could not be sent");
}

/* The commit point: the agent's row goes and the forwarding pointer comes,
 * in one durable transaction. */
static int commit(struct agd_xfer *x, struct attempt *a)
{
	int rc = agd_store_begin(x->st, x->durable);

	if (rc != 0)
		return rc;
	if (a->kind != AGD_KIND_CLONE) {
		char key[AGD_STORE_KEY_MAX + 1];

		rc = agd_store_agent_delete(x->st, a->agent);
		if (rc != 0 && rc != AGD_STORE_ERR_NOTFOUND)
			goto fail;
		/* Its log went with it (TRANSFER blob 3). */
		agd_logring_key(key, sizeof key, a->agent);
		rc = agd_store_kv_delete(x->st, key);
		if (rc != 0 && rc != AGD_STORE_ERR_NOTFOUND)
			goto fail;
	}
	rc = agd_store_forward_put(x->st, a->id, a->to, a->epoch);
	if (rc != 0)
		goto fail;
	return agd_store_commit(x->st);
fail:
	agd_store_rollback(x->st);
	return rc;
}

static void on_committed(struct agd_xfer *x, const char *from, const struct agd_wire_msg *m)
{
	struct attempt *a = attempt_by_id(x, m->agent);
	char fhost[AGD_STORE_HOST_MAX + 1];
	uint64_t fepoch = 0;
	int rc;

	if (a != NULL && a->epoch == m->epoch && strcmp(a->to, from) == 0 &&
	    a->phase == PH_TRANSFERRING) {
		rc = commit(x, a);
		if (rc != 0) {
			/* Not committed: nothing durable says the target owns
			 * it, so it stays here and the target hears ABORT. */
			agd_log(AGD_LOG_ERROR, "xfer.store_failed", "agent=%s step=commit error=\"%s\"",
				a->agent, agd_store_strerror(rc));
			attempt_fail(x, a, AGD_XFER_ERR_STORE, "source store failed at commit");
			return;
		}
		attempt_unlink(x, a);
		known_add(x, from, a->hash);
		send_simple(x, from, AGD_MSG_ACTIVATE, a->corr, a->id, a->epoch);
		if (a->kind == AGD_KIND_CLONE)
			x->counts.cloned_out++;
		else
			x->counts.moved_out++;
		agd_log(AGD_LOG_INFO, "xfer.committed", "agent=%s id=%s to=%s epoch=%llu", a->agent, a->id,
			a->to, (unsigned long long)a->epoch);
		x->ops.done(x->ud, a->agent, 0, a->to, a->epoch, "");
		attempt_free(a);
		return;
	}
	/* No attempt: a question from a target holding the agent. The store
	 * answers: a pointer to that host at that epoch means committed. */
	if (a == NULL && agd_store_forward_get(x->st, m->agent, fhost, &fepoch) == 0 &&
	    fepoch == m->epoch && strcmp(fhost, from) == 0) {
		send_simple(x, from, AGD_MSG_ACTIVATE, m->corr, m->agent, m->epoch);
		return;
	}
	if (a != NULL && a->epoch == m->epoch && strcmp(a->to, from) == 0)
		return; /* an early ACK for a TRANSFER not yet sent cannot be; ignore */
	send_simple(x, from, AGD_MSG_ABORT, m->corr, m->agent, m->epoch);
}

static void on_accept(struct agd_xfer *x, const char *from, const struct agd_wire_msg *m,
		      uint64_t now_ms)
{
	struct attempt *a = attempt_by_id(x, m->agent);

	if (a == NULL || a->epoch != m->epoch || strcmp(a->to, from) != 0 || a->phase != PH_OFFERED)
		return; /* stale or duplicate: ignored */
	known_add(x, from, a->hash);
	send_transfer(x, a, now_ms);
}

/* The pull this host asked of `from` for m->agent, still unanswered. */
static struct pull *pull_open(struct agd_xfer *x, const char *from, const char *agent)
{
	size_t n = x->npulls < PULLS_MAX ? x->npulls : PULLS_MAX;

	for (size_t i = 0; i < n; i++) {
		struct pull *p = &x->pulls[i];

		if (p->state == AGD_XFER_PULL_REQUESTED && strcmp(p->agent, agent) == 0 &&
		    (from == NULL || strcmp(p->from, from) == 0))
			return p;
	}
	return NULL;
}

/* The pull of agent this host asked of `from`, if still open, is over:
 * refused, or its transfer failed (why). */
static void pull_failed_here(struct agd_xfer *x, const char *from, const char *agent, const char *why)
{
	struct pull *p = pull_open(x, from, agent);

	if (p == NULL)
		return;
	p->state = AGD_XFER_PULL_REFUSED;
	snprintf(p->why, sizeof p->why, "%s", why);
}

static void on_refuse(struct agd_xfer *x, const char *from, const struct agd_wire_msg *m,
		      uint64_t now_ms)
{
	struct attempt *a = attempt_by_id(x, m->agent);
	char why[AGD_WIRE_TEXT_MAX + 32];

	if (a == NULL) {
		/* It may answer a PULL_REQUEST of ours. */
		pull_failed_here(x, from, m->agent, m->text);
		return;
	}
	if (a->epoch != m->epoch || strcmp(a->to, from) != 0)
		return;
	if (a->direct && m->code == AGD_XFER_ERR_SEGMENT) {
		/* It lost the code: offer it, as for a stranger. The target
		 * stored nothing, so the epoch can stay. */
		known_drop(x, from, a->hash);
		a->direct = 0;
		a->phase = PH_OFFERED;
		a->deadline = now_ms + x->timeout_ms;
		if (send_offer(x, a, NULL, 0) != 0)
			attempt_fail(x, a, AGD_XFER_ERR_SEND, "offer could not be sent");
		return;
	}
	snprintf(why, sizeof why, "refused by %s: %s", from, m->text);
	attempt_fail(x, a, AGD_XFER_ERR_REFUSED, why);
}

static void on_get_segment(struct agd_xfer *x, const char *from, const struct agd_wire_msg *m)
{
	struct agd_wire_msg r;
	uint8_t *bytes = NULL;
	size_t len = 0;

	if (agd_store_segment_get(x->st, m->hash, &bytes, &len) != 0 || len > AGD_WIRE_BLOB_MAX) {
		msg_init(&r, AGD_MSG_SEGMENT_NO, m->corr, NULL, 0);
		memcpy(r.hash, m->hash, AGD_WIRE_HASH_LEN);
		x->ops.send(x->ud, from, &r);
		free(bytes);
		return;
	}
	msg_init(&r, AGD_MSG_SEGMENT, m->corr, NULL, 0);
	memcpy(r.hash, m->hash, AGD_WIRE_HASH_LEN);
	r.blob[0].data = bytes;
	r.blob[0].len = len;
	x->ops.send(x->ud, from, &r);
	free(bytes);
}

static void on_have_segment(struct agd_xfer *x, const char *from, const struct agd_wire_msg *m)
{
	struct agd_wire_msg r;

	msg_init(&r, agd_store_segment_has(x->st, m->hash) == 1 ? AGD_MSG_SEGMENT_YES : AGD_MSG_SEGMENT_NO,
		 m->corr, NULL, 0);
	memcpy(r.hash, m->hash, AGD_WIRE_HASH_LEN);
	x->ops.send(x->ud, from, &r);
}

static void on_pull(struct agd_xfer *x, const char *from, const struct agd_wire_msg *m)
{
	const char *to = m->host[0] ? m->host : from;
	char said[AGD_WIRE_TEXT_MAX - 32] = "";
	int rc = x->ops.pull ? x->ops.pull(x->ud, m->agent, to, m->mobility, said, sizeof said)
			     : AGD_XFER_ERR_REFUSED;

	if (rc != 0) {
		/* ops->pull answers with the daemon's error codes; ours are
		 * -300 and below. The asker shows this text to its user. */
		char why[AGD_WIRE_TEXT_MAX];

		snprintf(why, sizeof why, "pull refused: %s",
			 said[0] ? said
			 : rc <= AGD_XFER_ERR_NOMEM ? agd_xfer_strerror(rc) : agd_strerror(rc));
		send_refuse(x, from, m, rc, why);
	}
}

/* ---- target ---- */

enum verdict { V_NEW, V_DUP_ARRIVING, V_DUP_LIVE, V_STALE, V_CONFLICT, V_ERROR };

/* What this host knows of (id, epoch), from the store alone. */
static enum verdict judge(struct agd_xfer *x, const char *id, uint64_t epoch, const char *from)
{
	struct agd_agent_rec rec;
	char fhost[AGD_STORE_HOST_MAX + 1];
	uint64_t fepoch = 0;
	int rc;
	enum verdict v;

	memset(&rec, 0, sizeof rec);
	rc = agd_store_agent_peek(x->st, id, &rec); /* status and epoch: not the state */
	if (rc == 0) {
		struct inrec in;

		if (strcmp(rec.status, AGD_XFER_STATUS_ARRIVING) == 0 && inrec_get(x, id, &in) == 0) {
			if (rec.epoch > epoch)
				v = V_STALE;
			else if (rec.epoch < epoch)
				v = V_NEW; /* an older attempt that never completed */
			else
				v = strcmp(in.from, from) == 0 ? V_DUP_ARRIVING : V_CONFLICT;
			inrec_free(&in);
		} else if (rec.epoch >= epoch) {
			v = rec.epoch == epoch ? V_DUP_LIVE : V_STALE;
		} else {
			v = V_CONFLICT; /* it lives here: nobody else can move it */
		}
		agd_store_agent_clear(&rec);
		return v;
	}
	if (rc != AGD_STORE_ERR_NOTFOUND)
		return V_ERROR;
	rc = agd_store_forward_get(x->st, id, fhost, &fepoch);
	if (rc == 0 && fepoch >= epoch)
		return V_STALE;
	if (rc != 0 && rc != AGD_STORE_ERR_NOTFOUND)
		return V_ERROR;
	return V_NEW;
}

static void on_offer(struct agd_xfer *x, const char *from, const struct agd_wire_msg *m,
		     uint64_t now_ms)
{
	enum verdict v = judge(x, m->agent, m->epoch, from);
	struct agd_wire_msg r;
	int has;

	switch (v) {
	case V_STALE:
		send_refuse(x, from, m, AGD_XFER_ERR_STALE, "stale epoch");
		return;
	case V_CONFLICT:
	case V_DUP_LIVE:
		send_refuse(x, from, m, AGD_XFER_ERR_STALE, "agent already lives here");
		return;
	case V_ERROR:
		send_refuse(x, from, m, AGD_XFER_ERR_STORE, "target store failed");
		return;
	case V_DUP_ARRIVING:
	case V_NEW:
		break;
	}
	has = agd_store_segment_has(x->st, m->hash);
	if (has < 0) {
		send_refuse(x, from, m, AGD_XFER_ERR_STORE, "target store failed");
		return;
	}
	if (has == 0) {
		struct waiting *w;

		if (x->ops.segment_in == NULL) {
			send_refuse(x, from, m, AGD_XFER_ERR_SEGMENT, "segment not cached here");
			return;
		}
		w = calloc(1, sizeof *w);
		if (w == NULL) {
			send_refuse(x, from, m, AGD_XFER_ERR_NOMEM, "out of memory");
			return;
		}
		snprintf(w->from, sizeof w->from, "%s", from);
		snprintf(w->id, sizeof w->id, "%s", m->agent);
		w->epoch = m->epoch;
		w->corr = m->corr;
		memcpy(w->hash, m->hash, AGD_WIRE_HASH_LEN);
		w->deadline = now_ms + x->timeout_ms;
		w->next = x->waits;
		x->waits = w;
		msg_init(&r, AGD_MSG_GET_SEGMENT, m->corr, NULL, 0);
		memcpy(r.hash, m->hash, AGD_WIRE_HASH_LEN);
		x->ops.send(x->ud, from, &r);
		return;
	}
	send_simple(x, from, AGD_MSG_ACCEPT, m->corr, m->agent, m->epoch);
}

static void on_segment(struct agd_xfer *x, const char *from, const struct agd_wire_msg *m, int ok_msg)
{
	uint8_t got[AGD_WIRE_HASH_LEN];
	char why[256] = "segment not available at the source";
	int rc = AGD_XFER_ERR_SEGMENT, any = 0;

	for (struct waiting *w = x->waits; w; w = w->next)
		if (strcmp(w->from, from) == 0 && memcmp(w->hash, m->hash, AGD_WIRE_HASH_LEN) == 0)
			any = 1;
	if (!any)
		return; /* unsolicited code is never cached */
	if (ok_msg) {
		rc = x->ops.segment_in(x->ud, m->blob[0].data, m->blob[0].len, got, why, sizeof why);
		if (rc == 0 && memcmp(got, m->hash, AGD_WIRE_HASH_LEN) != 0) {
			rc = AGD_XFER_ERR_SEGMENT;
			snprintf(why, sizeof why, "segment bytes do not match the hash offered");
		}
		if (rc == 0)
			agd_log(AGD_LOG_INFO, "xfer.segment_cached", "from=%s", from);
	}
	for (struct waiting **pp = &x->waits; *pp;) {
		struct waiting *w = *pp;

		if (strcmp(w->from, from) != 0 || memcmp(w->hash, m->hash, AGD_WIRE_HASH_LEN) != 0) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		if (rc == 0) {
			send_simple(x, from, AGD_MSG_ACCEPT, w->corr, w->id, w->epoch);
		} else {
			struct agd_wire_msg in;

			msg_init(&in, AGD_MSG_OFFER, w->corr, w->id, w->epoch);
			send_refuse(x, from, &in, AGD_XFER_ERR_SEGMENT, why);
		}
		free(w);
	}
}

static void on_transfer(struct agd_xfer *x, const char *from, const struct agd_wire_msg *m,
			uint64_t now_ms)
{
	enum verdict v = judge(x, m->agent, m->epoch, from);
	struct agd_agent_rec rec;
	struct inrec in;
	int rc;

	switch (v) {
	case V_DUP_ARRIVING:
		/* Stored already: acknowledge again, store nothing. */
		send_simple(x, from, AGD_MSG_COMMITTED, m->corr, m->agent, m->epoch);
		return;
	case V_STALE:
	case V_DUP_LIVE:
	case V_CONFLICT:
		agd_log(AGD_LOG_WARN, "xfer.stale", "agent=%s epoch=%llu from=%s step=transfer", m->agent,
			(unsigned long long)m->epoch, from);
		send_refuse(x, from, m, AGD_XFER_ERR_STALE, "stale epoch");
		return;
	case V_ERROR:
		send_refuse(x, from, m, AGD_XFER_ERR_STORE, "target store failed");
		return;
	case V_NEW:
		break;
	}
	if (agd_store_segment_has(x->st, m->hash) != 1) {
		send_refuse(x, from, m, AGD_XFER_ERR_SEGMENT, "segment not cached here");
		return;
	}
	memset(&rec, 0, sizeof rec);
	snprintf(rec.id, sizeof rec.id, "%s", m->agent);
	memcpy(rec.segment, m->hash, AGD_WIRE_HASH_LEN);
	rec.state = (uint8_t *)m->blob[0].data;
	rec.state_len = m->blob[0].len;
	snprintf(rec.status, sizeof rec.status, "%s", AGD_XFER_STATUS_ARRIVING);
	rec.epoch = m->epoch;
	snprintf(rec.home, sizeof rec.home, "%s", m->host[0] ? m->host : from);
	rec.mobility = m->mobility;
	rec.activation = 0;
	snprintf(rec.reason, sizeof rec.reason, "from %s", from);
	memset(&in, 0, sizeof in);
	snprintf(in.from, sizeof in.from, "%s", from);
	snprintf(in.origin, sizeof in.origin, "%s", m->name[0] ? m->name : m->agent);
	in.kind = m->kind;
	in.mobility = m->mobility;
	in.res = (uint8_t *)m->blob[1].data;
	in.res_len = m->blob[1].len;
	in.seen = (uint8_t *)m->blob[2].data;
	in.seen_len = m->blob[2].len;
	if (m->blob[3].len > 0) {
		/* The agent's log lines from the hosts it came through: kept
		 * with the arrival when well-formed; a bad one is dropped and
		 * the agent comes all the same (its lines are only lines). */
		struct agd_logring *lr = NULL;
		int lrc = agd_logring_decode(m->blob[3].data, m->blob[3].len, &lr);

		agd_logring_destroy(&lr);
		if (lrc == 0) {
			in.log = (uint8_t *)m->blob[3].data;
			in.log_len = m->blob[3].len;
		} else
			agd_log(AGD_LOG_WARN, "xfer.log_dropped", "agent=%s from=%s bytes=%zu error=\"%s\"",
				m->agent, from, m->blob[3].len,
				lrc == AGD_ERR_TOOBIG ? "log part over its caps"
				: lrc == AGD_ERR_ARG ? "malformed log part" : agd_strerror(lrc));
	}

	/* Durable before the acknowledgement: after COMMITTED goes out, this
	 * host must still hold the agent whatever happens to it. */
	rc = agd_store_begin(x->st, x->durable);
	if (rc == 0) {
		rc = agd_store_agent_put(x->st, &rec);
		if (rc == 0)
			rc = inrec_put(x, m->agent, &in);
		if (rc == 0)
			rc = log_put(x, m->agent, in.log, in.log_len);
		if (rc == 0)
			rc = agd_store_commit(x->st);
		else
			agd_store_rollback(x->st);
	}
	if (rc != 0) {
		agd_log(AGD_LOG_ERROR, "xfer.store_failed", "agent=%s step=transfer error=\"%s\"", m->agent,
			rc < 0 && rc >= AGD_STORE_ERR_SQL ? agd_store_strerror(rc) : agd_xfer_strerror(rc));
		send_refuse(x, from, m, AGD_XFER_ERR_STORE, "target store failed");
		return;
	}
	if (arrival_note(x, m->agent, from, m->epoch, now_ms + x->retry_ms) != 0)
		agd_log(AGD_LOG_WARN, "xfer.nomem", "agent=%s (asked again after restart)", m->agent);
	agd_log(AGD_LOG_INFO, "xfer.stored", "agent=%s from=%s epoch=%llu bytes=%zu", m->agent, from,
		(unsigned long long)m->epoch, m->blob[0].len);
	send_simple(x, from, AGD_MSG_COMMITTED, m->corr, m->agent, m->epoch);
}

/* Row "arriving" at `epoch` from `from`, or not. Fills rec when it is. */
static int arriving_row(struct agd_xfer *x, const char *id, uint64_t epoch, const char *from,
			struct agd_agent_rec *rec, struct inrec *in)
{
	memset(rec, 0, sizeof *rec);
	memset(in, 0, sizeof *in);
	if (agd_store_agent_get(x->st, id, rec) != 0)
		return 0;
	if (strcmp(rec->status, AGD_XFER_STATUS_ARRIVING) == 0 && rec->epoch == epoch &&
	    inrec_get(x, id, in) == 0 && strcmp(in->from, from) == 0)
		return 1;
	agd_store_agent_clear(rec);
	inrec_free(in);
	return 0;
}

static void on_activate(struct agd_xfer *x, const char *from, const struct agd_wire_msg *m)
{
	struct agd_agent_rec rec;
	struct inrec in;
	struct agd_xfer_arrival a;
	int rc;

	if (!arriving_row(x, m->agent, m->epoch, from, &rec, &in))
		return; /* activated already, aborted, or stale: nothing to do */
	/* Not durable: lost in a power cut, the arrival is asked about again
	 * and the source, which has committed, answers ACTIVATE again. One
	 * transaction leaves the agent as the runtime keeps an agent it runs
	 * (its row running, its log part under its log key), so that the
	 * admission writes nothing more (ops->activate). */
	rc = agd_store_begin(x->st, 0);
	if (rc == 0) {
		rc = agd_store_agent_set_status(x->st, m->agent, AGD_XFER_STATUS_RUNNING, "arrived");
		/* Stored by an earlier build with the arrival record: moved
		 * under the log key now (this build stored it there at once). */
		if (rc == 0 && in.log_len > 0)
			rc = log_put(x, m->agent, in.log, in.log_len);
		if (rc == 0) {
			char key[AGD_STORE_KEY_MAX + 1];
			int frc;

			kv_key(key, sizeof key, m->agent);
			rc = agd_store_kv_delete(x->st, key);
			/* It may be coming back: the pointer it left is void. */
			frc = agd_store_forward_delete(x->st, m->agent);
			if (frc != 0 && frc != AGD_STORE_ERR_NOTFOUND)
				rc = frc;
		}
		if (rc == 0)
			rc = agd_store_commit(x->st);
		else
			agd_store_rollback(x->st);
	}
	if (rc != 0) {
		/* Still "arriving": the next question to the source brings
		 * ACTIVATE again. */
		agd_log(AGD_LOG_ERROR, "xfer.store_failed", "agent=%s step=activate error=\"%s\"", m->agent,
			agd_store_strerror(rc));
		goto out;
	}
	arrival_drop(x, m->agent);
	x->counts.arrived++;
	if (in.log_len == 0) {
		/* The runtime's ring starts from it; none is fine too. */
		char key[AGD_STORE_KEY_MAX + 1];
		void *log = NULL;

		agd_logring_key(key, sizeof key, m->agent);
		if (agd_store_kv_get(x->st, key, &log, &in.log_len) == 0)
			in.log = log;
		else
			in.log_len = 0;
	}
	memset(&a, 0, sizeof a);
	a.id = rec.id;
	a.origin = in.origin;
	a.from = from;
	a.home = rec.home;
	a.epoch = rec.epoch;
	a.mobility = in.mobility;
	a.kind = in.kind;
	a.segment = rec.segment;
	a.state = rec.state;
	a.state_len = rec.state_len;
	a.res = in.res;
	a.res_len = in.res_len;
	a.seen = in.seen;
	a.seen_len = in.seen_len;
	a.log = in.log;
	a.log_len = in.log_len;
	agd_log(AGD_LOG_INFO, "xfer.activated", "agent=%s from=%s epoch=%llu", rec.id, from,
		(unsigned long long)rec.epoch);
	{
		struct pull *p = pull_open(x, NULL, rec.id);

		if (p != NULL)
			p->state = AGD_XFER_PULL_ARRIVED;
	}
	x->ops.activate(x->ud, &a);
out:
	agd_store_agent_clear(&rec);
	inrec_free(&in);
}

static void on_abort(struct agd_xfer *x, const char *from, const struct agd_wire_msg *m)
{
	struct agd_agent_rec rec;
	struct inrec in;
	char key[AGD_STORE_KEY_MAX + 1];
	int rc;

	/* An attempt that failed says why (text); an ABORT answering a
	 * question about an old arrival says nothing and settles no pull. */
	if (m->text[0] != '\0')
		pull_failed_here(x, from, m->agent, m->text);
	if (!arriving_row(x, m->agent, m->epoch, from, &rec, &in))
		return;
	agd_store_agent_clear(&rec);
	inrec_free(&in);
	kv_key(key, sizeof key, m->agent);
	/* Not durable: lost in a power cut, the arrival is asked about again
	 * and answered ABORT again. */
	rc = agd_store_begin(x->st, 0);
	if (rc == 0) {
		rc = agd_store_agent_delete(x->st, m->agent);
		if (rc == 0)
			rc = agd_store_kv_delete(x->st, key);
		if (rc == 0)
			rc = log_put(x, m->agent, NULL, 0); /* its log part went back with it */
		if (rc == 0)
			rc = agd_store_commit(x->st);
		else
			agd_store_rollback(x->st);
	}
	if (rc != 0) {
		agd_log(AGD_LOG_ERROR, "xfer.store_failed", "agent=%s step=abort error=\"%s\"", m->agent,
			agd_store_strerror(rc));
		return;
	}
	arrival_drop(x, m->agent);
	agd_log(AGD_LOG_INFO, "xfer.aborted", "agent=%s from=%s epoch=%llu", m->agent, from,
		(unsigned long long)m->epoch);
}

int agd_xfer_input(struct agd_xfer *x, const char *from, const struct agd_wire_msg *m,
		   uint64_t now_ms)
{
	switch (m->type) {
	case AGD_MSG_OFFER: on_offer(x, from, m, now_ms); return 1;
	case AGD_MSG_ACCEPT: on_accept(x, from, m, now_ms); return 1;
	case AGD_MSG_REFUSE: on_refuse(x, from, m, now_ms); return 1;
	case AGD_MSG_TRANSFER: on_transfer(x, from, m, now_ms); return 1;
	case AGD_MSG_COMMITTED: on_committed(x, from, m); return 1;
	case AGD_MSG_ACTIVATE: on_activate(x, from, m); return 1;
	case AGD_MSG_ABORT: on_abort(x, from, m); return 1;
	case AGD_MSG_GET_SEGMENT: on_get_segment(x, from, m); return 1;
	case AGD_MSG_HAVE_SEGMENT: on_have_segment(x, from, m); return 1;
	case AGD_MSG_SEGMENT: on_segment(x, from, m, 1); return 1;
	case AGD_MSG_SEGMENT_NO: on_segment(x, from, m, 0); return 1;
	case AGD_MSG_SEGMENT_YES: return 1;
	case AGD_MSG_PULL_REQUEST: on_pull(x, from, m); return 1;
	default: return 0;
	}
}

/* Remembers a pull asked for; an older open one for the agent is
 * superseded (it answers, if at all, as the new one does). */
static void pull_note(struct agd_xfer *x, const char *from, const char *agent)
{
	struct pull *p = pull_open(x, NULL, agent);

	if (p == NULL)
		p = &x->pulls[x->npulls++ % PULLS_MAX];
	memset(p, 0, sizeof *p);
	snprintf(p->agent, sizeof p->agent, "%s", agent);
	snprintf(p->from, sizeof p->from, "%s", from);
	p->state = AGD_XFER_PULL_REQUESTED;
	p->started = agd_now_ms();
}

int agd_xfer_pull(struct agd_xfer *x, const char *from, const char *agent, int mobility)
{
	struct agd_wire_msg m;

	if (from == NULL || agent == NULL || agent[0] == '\0' || strlen(agent) > AGD_WIRE_NAME_MAX ||
	    (mobility != AGD_MOB_WEAK && mobility != AGD_MOB_STRONG && mobility != AGD_MOB_STRONG_ONLY))
		return AGD_XFER_ERR_ARG;
	msg_init(&m, AGD_MSG_PULL_REQUEST, ++x->corr, agent, 0);
	snprintf(m.host, sizeof m.host, "%s", x->host);
	m.mobility = (uint8_t)mobility;
	if (x->ops.send(x->ud, from, &m) != 0)
		return AGD_XFER_ERR_SEND;
	pull_note(x, from, agent);
	return 0;
}

int agd_xfer_pull_failed(struct agd_xfer *x, const char *to, const char *agent, int code,
			 const char *why)
{
	struct agd_wire_msg m;

	if (to == NULL || agent == NULL || why == NULL)
		return AGD_XFER_ERR_ARG;
	msg_init(&m, AGD_MSG_REFUSE, 0, agent, 0);
	m.code = code;
	snprintf(m.text, sizeof m.text, "pull failed: %s", why);
	return x->ops.send(x->ud, to, &m) == 0 ? 0 : AGD_XFER_ERR_SEND;
}

int64_t agd_xfer_tick(struct agd_xfer *x, uint64_t now_ms)
{
	int64_t next = -1;

#define NOTE(t) do { int64_t d_ = (int64_t)((t) > now_ms ? (t) - now_ms : 0); \
		     if (next < 0 || d_ < next) next = d_; } while (0)

	for (struct attempt *a = x->attempts, *n; a; a = n) {
		n = a->next;
		if (a->deadline <= now_ms)
			attempt_fail(x, a, AGD_XFER_ERR_TIMEOUT, "timed out");
		else
			NOTE(a->deadline);
	}
	for (struct arriving *r = x->arrivals; r; r = r->next) {
		if (r->next_ask <= now_ms) {
			send_simple(x, r->from, AGD_MSG_COMMITTED, ++x->corr, r->id, r->epoch);
			r->next_ask = now_ms + x->retry_ms;
		}
		NOTE(r->next_ask);
	}
	for (struct waiting **pp = &x->waits; *pp;) {
		struct waiting *w = *pp;

		if (w->deadline <= now_ms) {
			*pp = w->next;
			free(w);
			continue;
		}
		NOTE(w->deadline);
		pp = &w->next;
	}
#undef NOTE
	return next;
}

struct recover_ctx {
	struct agd_xfer *x;
	uint64_t now;
	int n;
	int err;
	char (*migrating)[AGD_STORE_ID_MAX + 1]; /* ids to reset, after the listing */
	size_t nmig, capmig;
};

static int recover_one(const struct agd_agent_rec *rec, void *ud)
{
	struct recover_ctx *c = ud;

	struct inrec in;

	if (strcmp(rec->status, AGD_XFER_STATUS_ARRIVING) == 0 && inrec_get(c->x, rec->id, &in) == 0) {
		if (arrival_note(c->x, rec->id, in.from, rec->epoch, c->now) == 0)
			c->n++;
		inrec_free(&in);
	} else if (strcmp(rec->status, AGD_XFER_STATUS_MIGRATING) == 0) {
		if (c->nmig == c->capmig) {
			size_t cap = c->capmig ? 2 * c->capmig : 16;
			void *p = realloc(c->migrating, cap * sizeof *c->migrating);

			if (p == NULL) {
				c->err = AGD_XFER_ERR_NOMEM;
				return 1;
			}
			c->migrating = p;
			c->capmig = cap;
		}
		snprintf(c->migrating[c->nmig++], AGD_STORE_ID_MAX + 1, "%s", rec->id);
	}
	return 0;
}

int agd_xfer_arriving(struct agd_store *st, const char *agent)
{
	char key[AGD_STORE_KEY_MAX + 1];
	void *v = NULL;
	size_t len = 0;
	int rc;

	kv_key(key, sizeof key, agent);
	rc = agd_store_kv_get(st, key, &v, &len);
	free(v);
	return rc == 0;
}

int agd_xfer_recover(struct agd_xfer *x, uint64_t now_ms)
{
	struct recover_ctx c = { x, now_ms, 0, 0, NULL, 0, 0 };
	int rc = agd_store_agent_list(x->st, NULL, 0, recover_one, &c);

	if (rc != 0 && c.err == 0)
		c.err = AGD_XFER_ERR_STORE;
	/* An attempt the crash interrupted before its commit point: the
	 * agent is still ours (its row is here) and resumes here. */
	for (size_t i = 0; i < c.nmig; i++) {
		agd_store_agent_set_status(x->st, c.migrating[i], AGD_XFER_STATUS_RUNNING,
					   "transfer interrupted by restart");
		agd_log(AGD_LOG_INFO, "xfer.recovered", "agent=%s outcome=stays", c.migrating[i]);
	}
	free(c.migrating);
	return c.err ? c.err : c.n;
}

/* ---- progress (control `transfers`) ---- */

static const char *phase_name(const struct attempt *a)
{
	return a->phase == PH_OFFERED ? "offered" : "transferring";
}

int agd_xfer_info(const struct agd_xfer *x, const char *agent, uint64_t now_ms,
		  struct agd_xfer_info *out)
{
	const struct attempt *a;

	for (a = x->attempts; a; a = a->next)
		if (strcmp(a->agent, agent) == 0)
			break;
	if (a == NULL)
		return AGD_XFER_ERR_NOTFOUND;
	memset(out, 0, sizeof *out);
	out->to = a->to;
	out->phase = phase_name(a);
	out->kind = a->kind;
	out->mobility = a->mobility;
	out->epoch = a->epoch;
	out->bytes = a->state_len + a->res_len;
	out->elapsed_ms = now_ms > a->started ? now_ms - a->started : 0;
	return 0;
}

int agd_xfer_pull_info(const struct agd_xfer *x, const char *agent, uint64_t now_ms,
		       struct agd_xfer_pull_info *out)
{
	size_t n = x->npulls < PULLS_MAX ? x->npulls : PULLS_MAX;
	const struct pull *best = NULL;

	for (size_t i = 0; i < n; i++)
		if (strcmp(x->pulls[i].agent, agent) == 0 &&
		    (best == NULL || x->pulls[i].started >= best->started))
			best = &x->pulls[i];
	if (best == NULL)
		return AGD_XFER_ERR_NOTFOUND;
	out->from = best->from;
	out->state = best->state;
	out->why = best->why;
	out->elapsed_ms = now_ms > best->started ? now_ms - best->started : 0;
	return 0;
}

const char *agd_xfer_pull_state_name(int state)
{
	switch (state) {
	case AGD_XFER_PULL_REQUESTED: return "requested";
	case AGD_XFER_PULL_REFUSED: return "refused";
	case AGD_XFER_PULL_ARRIVED: return "arrived";
	default: return "unknown";
	}
}
