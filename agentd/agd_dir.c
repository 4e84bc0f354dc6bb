/*
 * agd_dir.c: location of moving agents and exactly-once delivery (see
 * agd_dir.h; docs/protocol.md, "Location and delivery").
 *
 * Three lists, all in memory and all bounded by what senders keep asking:
 *   out    messages and LOCATEs this host originated, until answered;
 *   held   DELIVERs for agents in flight here, until the transfer settles;
 *   seen   per agent, a ring of the last AGD_DIR_SEEN_MAX message ids
 *          delivered here (travels with the agent in its TRANSFER).
 * [bal] The seen rings are also in the store (kv dir.seen.<agent>, 8 bytes
 * an id, oldest first), written before DELIVERED is sent, so that a resend
 * reaching a restarted host (kill -9 after the delivery, before its
 * answer) is recognised; the memory keeps at most SEEN_CACHED rings and
 * reloads the others from the store. The record goes when the agent
 * leaves (agd_dir_forget); the store keeps at most about SEEN_STORED of
 * them (the records first written longest ago go first: agents that ended
 * here keep theirs until then).
 * A message to this host itself goes through the same handlers without
 * the network (route()), so local and remote delivery cannot differ.
 */
#include "agd_dir.h"

#include "agd_log.h"
#include "agd_xfer.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HELD_MAX 65536 /* messages held for agents in flight */
#define OUT_MAX 65536  /* messages under way from this host */
#define SEEN_CACHED 1024 /* [bal] seen rings kept in memory (the rest in the store) */
#define SEEN_STORED 4096 /* [bal] seen records kept in the store, newest first */
#define SEEN_PRUNE 64    /* [bal] new records between two prunes of the store */

struct out {
	uint64_t id;                        /* msgid (DELIVER) or corr (LOCATE) */
	int locate;                         /* a LOCATE, not a DELIVER */
	int call;                           /* [call] a CALL, not a DELIVER */
	uint64_t corr;                      /* [call] the caller's call id */
	char method[AGD_WIRE_NAME_MAX + 1]; /* [call] the method */
	char agent[AGD_WIRE_NAME_MAX + 1];  /* destination agent */
	char host[AGD_WIRE_NAME_MAX + 1];   /* host asked now */
	int tried_dir;                      /* the directory was asked already */
	int hops;                           /* pointers followed */
	uint8_t *data;                      /* payload (owned) */
	size_t len;
	uint64_t deadline;                  /* give up after */
	uint64_t next_try;                  /* resend after */
	struct out *next;
};

struct held {
	char from[AGD_WIRE_NAME_MAX + 1];   /* the sender host */
	struct agd_wire_msg m;              /* the DELIVER (blob re-pointed at data) */
	uint8_t *data;                      /* payload (owned) */
	uint64_t deadline;                  /* dropped after (the sender has given up) */
	struct held *next;
};

struct seen {
	char agent[AGD_WIRE_NAME_MAX + 1];
	uint64_t ids[AGD_DIR_SEEN_MAX];     /* ring */
	size_t n;                           /* ids in use */
	size_t pos;                         /* next slot */
	struct seen *next;
};

struct agd_dir {
	char host[AGD_WIRE_NAME_MAX + 1];
	char directory[AGD_WIRE_NAME_MAX + 1]; /* "" when none */
	struct agd_store *st;
	struct agd_dir_ops ops;
	struct agd_dir_call_ops cops;        /* [call] */
	void *ud;
	uint64_t timeout_ms;
	uint64_t retry_ms;
	struct out *out;
	size_t nout;
	struct held *held;
	size_t nheld;
	struct seen *seen;                  /* newest first */
	size_t nseen;                       /* [bal] rings in memory */
	unsigned fresh;                     /* [bal] records created since the last prune */
	int depth;                          /* route() recursion guard */
	int pending_call;                   /* [call] agd_dir_call is starting an out: */
	uint64_t pending_corr;              /* its call id, */
	uint64_t pending_timeout;           /* deadline (ms from now, 0: timeout_ms) */
	char pending_method[AGD_WIRE_NAME_MAX + 1]; /* and method */
};

const char *agd_dir_strerror(int code)
{
	switch (code) {
	case AGD_DIR_HERE: return "delivered";
	case AGD_DIR_MOVED: return "moved";
	case AGD_DIR_INFLIGHT: return "in flight";
	case AGD_DIR_NOTFOUND: return "agent not found";
	case AGD_DIR_ENDED: return "agent has ended";
	case AGD_DIR_REFUSED: return "refused by the agent's host";
	case AGD_DIR_TIMEOUT: return "no answer in time";
	case AGD_DIR_TOOFAR: return "too many forwarding hops";
	default: return "unknown directory error";
	}
}

int agd_dir_new(const struct agd_dir_cfg *cfg, const struct agd_dir_ops *ops, void *ud,
		struct agd_dir **out)
{
	struct agd_dir *d;

	*out = NULL;
	if (cfg == NULL || cfg->host == NULL || cfg->store == NULL || ops == NULL || ops->send == NULL ||
	    ops->deliver == NULL || cfg->host[0] == '\0' || strlen(cfg->host) > AGD_WIRE_NAME_MAX ||
	    (cfg->directory && strlen(cfg->directory) > AGD_WIRE_NAME_MAX))
		return AGD_DIR_REFUSED;
	d = calloc(1, sizeof *d);
	if (d == NULL)
		return AGD_DIR_REFUSED;
	snprintf(d->host, sizeof d->host, "%s", cfg->host);
	if (cfg->directory)
		snprintf(d->directory, sizeof d->directory, "%s", cfg->directory);
	d->st = cfg->store;
	d->ops = *ops;
	d->ud = ud;
	d->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 10000;
	d->retry_ms = cfg->retry_ms ? cfg->retry_ms : 500;
	*out = d;
	return 0;
}

void agd_dir_destroy(struct agd_dir **dp)
{
	struct agd_dir *d;

	if (dp == NULL || *dp == NULL)
		return;
	d = *dp;
	*dp = NULL;
	while (d->out) {
		struct out *o = d->out;

		d->out = o->next;
		free(o->data);
		free(o);
	}
	while (d->held) {
		struct held *h = d->held;

		d->held = h->next;
		free(h->data);
		free(h);
	}
	while (d->seen) {
		struct seen *s = d->seen;

		d->seen = s->next;
		free(s);
	}
	d->nseen = 0;
	free(d);
}

void agd_dir_set_call_ops(struct agd_dir *d, const struct agd_dir_call_ops *ops)
{
	d->cops = *ops;
}

size_t agd_dir_pending(const struct agd_dir *d)
{
	return d->nout;
}

size_t agd_dir_held(const struct agd_dir *d)
{
	return d->nheld;
}

enum agd_dir_where agd_dir_where(struct agd_dir *d, const char *agent, char *host, size_t host_len,
				 uint64_t *epoch)
{
	struct agd_agent_rec rec;
	char fhost[AGD_STORE_HOST_MAX + 1];
	uint64_t fepoch = 0;
	enum agd_dir_where w;

	if (host && host_len)
		host[0] = '\0';
	if (epoch)
		*epoch = 0;
	memset(&rec, 0, sizeof rec);
	/* [bal] The row without its state: LOCATE and DELIVER need only the
	 * status and epoch. */
	if (agd_store_agent_peek(d->st, agent, &rec) == 0) {
		if (strcmp(rec.status, AGD_XFER_STATUS_MIGRATING) == 0)
			w = agd_xfer_arriving(d->st, agent) ? AGD_WHERE_ARRIVING : AGD_WHERE_LEAVING;
		else if (strcmp(rec.status, "finished") == 0 || strcmp(rec.status, "failed") == 0 ||
			 strcmp(rec.status, "killed") == 0)
			w = AGD_WHERE_ENDED;
		else
			w = AGD_WHERE_LIVE;
		if (epoch)
			*epoch = rec.epoch;
		agd_store_agent_clear(&rec);
		return w;
	}
	if (agd_store_forward_get(d->st, agent, fhost, &fepoch) == 0) {
		if (host && host_len)
			snprintf(host, host_len, "%s", fhost);
		if (epoch)
			*epoch = fepoch;
		return AGD_WHERE_FORWARD;
	}
	return AGD_WHERE_UNKNOWN;
}

/* ---- seen ids ---- */

static void seen_key(char *key, size_t len, const char *agent)
{
	snprintf(key, len, "dir.seen.%s", agent);
}

/* The ring's ids, oldest first, big-endian (the TRANSFER's blob 2 and the
 * store's record). b holds AGD_DIR_SEEN_MAX * 8 bytes; returns the length. */
static size_t seen_bytes(const struct seen *s, uint8_t *b)
{
	for (size_t k = 0; k < s->n; k++) {
		size_t i = (s->pos + AGD_DIR_SEEN_MAX - s->n + k) % AGD_DIR_SEEN_MAX;

		for (int j = 0; j < 8; j++)
			b[k * 8 + (size_t)j] = (uint8_t)(s->ids[i] >> (56 - 8 * j));
	}
	return s->n * 8;
}

static void seen_push(struct seen *s, uint64_t id)
{
	s->ids[s->pos] = id;
	s->pos = (s->pos + 1) % AGD_DIR_SEEN_MAX;
	if (s->n < AGD_DIR_SEEN_MAX)
		s->n++;
}

/* Writes the ring to the store. A crash (kill -9) must not lose it, a
 * power cut may (a transaction without a full sync: one WAL append). */
static void seen_save(struct agd_dir *d, const struct seen *s)
{
	char key[AGD_STORE_KEY_MAX + 1];
	uint8_t b[AGD_DIR_SEEN_MAX * 8];
	size_t len = seen_bytes(s, b);
	int tx = agd_store_begin(d->st, 0) == 0, rc;

	seen_key(key, sizeof key, s->agent);
	rc = agd_store_kv_put(d->st, key, b, len);
	if (tx)
		rc = rc == 0 ? agd_store_commit(d->st) : (agd_store_rollback(d->st), rc);
	if (rc != 0)
		agd_log(AGD_LOG_WARN, "dir.seen_unsaved", "agent=%s error=\"%s\"", s->agent,
			agd_store_strerror(rc));
}

/* Drops the oldest ring from memory past SEEN_CACHED (its record stays in
 * the store). */
static void seen_trim(struct agd_dir *d)
{
	struct seen **pp = &d->seen;

	if (d->nseen <= SEEN_CACHED)
		return;
	while (*pp && (*pp)->next)
		pp = &(*pp)->next;
	free(*pp);
	*pp = NULL;
	d->nseen--;
}

static struct seen *seen_find(struct agd_dir *d, const char *agent, int create)
{
	struct seen *s;
	char key[AGD_STORE_KEY_MAX + 1];
	void *v = NULL;
	size_t len = 0;
	int stored;

	for (s = d->seen; s; s = s->next)
		if (strcmp(s->agent, agent) == 0)
			return s;
	/* Not in memory: the store may have it (a restart, or trimmed). */
	seen_key(key, sizeof key, agent);
	stored = agd_store_kv_get(d->st, key, &v, &len) == 0 && len % 8 == 0 &&
		 len / 8 <= AGD_DIR_SEEN_MAX;
	if (!stored && !create) {
		free(v);
		return NULL;
	}
	if (!stored && ++d->fresh >= SEEN_PRUNE) {
		uint64_t gone = 0;

		d->fresh = 0;
		if (agd_store_kv_prune(d->st, "dir.seen.", SEEN_STORED, &gone) == 0 && gone > 0)
			agd_log(AGD_LOG_DEBUG, "dir.seen_pruned", "records=%llu", (unsigned long long)gone);
	}
	s = calloc(1, sizeof *s);
	if (s == NULL) {
		free(v);
		return NULL;
	}
	snprintf(s->agent, sizeof s->agent, "%s", agent);
	for (size_t k = 0; stored && k < len / 8; k++) {
		uint64_t id = 0;

		for (int j = 0; j < 8; j++)
			id = id << 8 | ((const uint8_t *)v)[k * 8 + (size_t)j];
		seen_push(s, id);
	}
	free(v);
	s->next = d->seen;
	d->seen = s;
	d->nseen++;
	seen_trim(d);
	return s;
}

static int seen_has(struct agd_dir *d, const char *agent, uint64_t id)
{
	struct seen *s = seen_find(d, agent, 0);

	if (s == NULL)
		return 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->ids[i] == id)
			return 1;
	return 0;
}

static void seen_add(struct agd_dir *d, const char *agent, uint64_t id)
{
	struct seen *s = seen_find(d, agent, 1);

	if (s == NULL)
		return;
	seen_push(s, id);
	seen_save(d, s);
}

void agd_dir_forget(struct agd_dir *d, const char *agent)
{
	char key[AGD_STORE_KEY_MAX + 1];

	/* Only an agent that got messages has a record; the others cost
	 * nothing here (no write on the path of every transfer). */
	if (seen_find(d, agent, 0) != NULL) {
		int tx = agd_store_begin(d->st, 0) == 0;

		seen_key(key, sizeof key, agent);
		agd_store_kv_delete(d->st, key);
		if (tx && agd_store_commit(d->st) != 0)
			agd_log(AGD_LOG_WARN, "dir.seen_undeleted", "agent=%s", agent);
	}
	for (struct seen **pp = &d->seen; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->agent, agent) == 0) {
			struct seen *s = *pp;

			*pp = s->next;
			free(s);
			d->nseen--;
			return;
		}
}

int agd_dir_export_seen(struct agd_dir *d, const char *agent, uint8_t **out, size_t *len)
{
	struct seen *s = seen_find(d, agent, 0);
	uint8_t *b;

	*out = NULL;
	*len = 0;
	if (s == NULL || s->n == 0)
		return 0;
	b = malloc(s->n * 8);
	if (b == NULL)
		return AGD_DIR_REFUSED;
	/* Oldest first, so an import replays them in order. */
	*len = seen_bytes(s, b);
	*out = b;
	return 0;
}

int agd_dir_import_seen(struct agd_dir *d, const char *agent, const uint8_t *in, size_t len)
{
	struct seen *s;

	if (len % 8 != 0 || len / 8 > AGD_DIR_SEEN_MAX)
		return AGD_DIR_REFUSED;
	if (len == 0)
		return 0;
	for (size_t k = 0; k < len / 8; k++) {
		uint64_t id = 0;

		for (int j = 0; j < 8; j++)
			id = id << 8 | in[k * 8 + (size_t)j];
		if (!seen_has(d, agent, id) && (s = seen_find(d, agent, 1)) != NULL)
			seen_push(s, id);
	}
	/* One write for the lot. */
	if ((s = seen_find(d, agent, 0)) != NULL)
		seen_save(d, s);
	return 0;
}

/* ---- routing: to a peer, or to ourselves without the network ---- */

static void route(struct agd_dir *d, const char *host, const struct agd_wire_msg *m, uint64_t now)
{
	if (strcmp(host, d->host) != 0) {
		d->ops.send(d->ud, host, m);
		return;
	}
	/* Bounded: a reply to ourselves never leads to a third self-send. */
	if (d->depth >= 4)
		return;
	d->depth++;
	agd_dir_input(d, d->host, m, now);
	d->depth--;
}

static void reply_delivered(struct agd_dir *d, const char *to, const struct agd_wire_msg *in, int code,
			    const char *host, uint64_t now)
{
	struct agd_wire_msg r;

	memset(&r, 0, sizeof r);
	r.type = AGD_MSG_DELIVERED;
	r.corr = in->corr;
	snprintf(r.agent, sizeof r.agent, "%s", in->agent);
	r.msgid = in->msgid;
	r.code = code;
	if (host)
		snprintf(r.host, sizeof r.host, "%s", host);
	route(d, to, &r, now);
}

/* ---- receiving side ---- */

static void hold(struct agd_dir *d, const char *from, const struct agd_wire_msg *m, uint64_t now)
{
	struct held *h;

	for (h = d->held; h; h = h->next)
		if (h->m.msgid == m->msgid && strcmp(h->m.agent, m->agent) == 0)
			return; /* a resend of one we hold already */
	if (d->nheld >= HELD_MAX)
		return; /* the sender will retry, then time out */
	h = calloc(1, sizeof *h);
	if (h == NULL)
		return;
	if (m->blob[0].len) {
		h->data = malloc(m->blob[0].len);
		if (h->data == NULL) {
			free(h);
			return;
		}
		memcpy(h->data, m->blob[0].data, m->blob[0].len);
	}
	snprintf(h->from, sizeof h->from, "%s", from);
	h->m = *m;
	h->m.blob[0].data = h->data;
	h->deadline = now + d->timeout_ms;
	h->next = d->held;
	d->held = h;
	d->nheld++;
}

/* The heart of delivery; `from` is the sending host. Returns 1 if the
 * message was held (not answered yet). */
static int on_deliver(struct agd_dir *d, const char *from, const struct agd_wire_msg *m, uint64_t now)
{
	char host[AGD_STORE_HOST_MAX + 1];
	uint64_t epoch;
	int rc;

	if (seen_has(d, m->agent, m->msgid)) {
		reply_delivered(d, from, m, AGD_DIR_HERE, d->host, now);
		return 0;
	}
	switch (agd_dir_where(d, m->agent, host, sizeof host, &epoch)) {
	case AGD_WHERE_LIVE:
		if (m->type == AGD_MSG_CALL) /* [call] the REPLY goes to m->host, the caller */
			rc = d->cops.call ? d->cops.call(d->ud, m->agent, m->host, m->corr, m->name,
							 m->blob[0].data, m->blob[0].len)
					  : AGD_DIR_REFUSED;
		else
			rc = d->ops.deliver(d->ud, m->agent, from, m->blob[0].data, m->blob[0].len);
		if (rc == AGD_DIR_INFLIGHT) {
			/* The runtime is suspending it for a transfer. */
			hold(d, from, m, now);
			return 1;
		}
		if (rc == 0)
			seen_add(d, m->agent, m->msgid);
		reply_delivered(d, from, m, rc == 0 ? AGD_DIR_HERE : AGD_DIR_REFUSED, d->host, now);
		return 0;
	case AGD_WHERE_LEAVING:
	case AGD_WHERE_ARRIVING:
		hold(d, from, m, now);
		return 1;
	case AGD_WHERE_FORWARD:
		reply_delivered(d, from, m, AGD_DIR_MOVED, host, now);
		return 0;
	case AGD_WHERE_ENDED:
		reply_delivered(d, from, m, AGD_DIR_ENDED, NULL, now);
		return 0;
	case AGD_WHERE_UNKNOWN:
	default:
		reply_delivered(d, from, m, AGD_DIR_NOTFOUND, NULL, now);
		return 0;
	}
}

void agd_dir_settled(struct agd_dir *d, const char *agent, uint64_t now_ms)
{
	struct held *mine = NULL;

	/* Take this agent's messages off the list first: on_deliver may hold
	 * them again (still in flight) and must not see them twice. */
	for (struct held **pp = &d->held; *pp;) {
		struct held *h = *pp;

		if (strcmp(h->m.agent, agent) != 0) {
			pp = &h->next;
			continue;
		}
		*pp = h->next;
		d->nheld--;
		h->next = mine;
		mine = h;
	}
	while (mine) {
		struct held *h = mine;

		mine = h->next;
		on_deliver(d, h->from, &h->m, now_ms);
		free(h->data);
		free(h);
	}
}

static void on_locate(struct agd_dir *d, const char *from, const struct agd_wire_msg *m, uint64_t now)
{
	struct agd_wire_msg r;
	char host[AGD_STORE_HOST_MAX + 1];
	uint64_t epoch;

	memset(&r, 0, sizeof r);
	r.type = AGD_MSG_LOCATED;
	r.corr = m->corr;
	snprintf(r.agent, sizeof r.agent, "%s", m->agent);
	r.hops = m->hops;
	switch (agd_dir_where(d, m->agent, host, sizeof host, &epoch)) {
	case AGD_WHERE_LIVE:
		r.code = AGD_DIR_HERE;
		snprintf(r.host, sizeof r.host, "%s", d->host);
		break;
	case AGD_WHERE_LEAVING:
	case AGD_WHERE_ARRIVING:
		r.code = AGD_DIR_INFLIGHT;
		snprintf(r.host, sizeof r.host, "%s", d->host);
		break;
	case AGD_WHERE_FORWARD:
		r.code = AGD_DIR_MOVED;
		snprintf(r.host, sizeof r.host, "%.*s", AGD_WIRE_NAME_MAX, host);
		break;
	case AGD_WHERE_ENDED:
		r.code = AGD_DIR_ENDED;
		break;
	default:
		r.code = AGD_DIR_NOTFOUND;
		break;
	}
	r.epoch = epoch;
	route(d, from, &r, now);
}

/* A home or the directory learns where an agent landed. */
static void on_moved(struct agd_dir *d, const char *from, const struct agd_wire_msg *m)
{
	char host[AGD_STORE_HOST_MAX + 1];
	uint64_t epoch = 0;
	enum agd_dir_where w = agd_dir_where(d, m->agent, host, sizeof host, &epoch);

	/* Only news newer than what is known here counts; an agent that
	 * lives here (or is coming) is where it is. */
	if (w == AGD_WHERE_LIVE || w == AGD_WHERE_LEAVING || w == AGD_WHERE_ARRIVING ||
	    (w == AGD_WHERE_FORWARD && epoch >= m->epoch) || m->host[0] == '\0')
		return;
	if (agd_store_forward_put(d->st, m->agent, m->host, m->epoch) == 0)
		agd_log(AGD_LOG_DEBUG, "dir.moved", "agent=%s host=%s epoch=%llu via=%s", m->agent, m->host,
			(unsigned long long)m->epoch, from);
}

/* ---- sending side ---- */

static struct out *out_find(struct agd_dir *d, uint64_t id, int locate)
{
	for (struct out *o = d->out; o; o = o->next)
		if (o->id == id && o->locate == locate)
			return o;
	return NULL;
}

static void out_drop(struct agd_dir *d, struct out *o)
{
	for (struct out **pp = &d->out; *pp; pp = &(*pp)->next)
		if (*pp == o) {
			*pp = o->next;
			d->nout--;
			free(o->data);
			free(o);
			return;
		}
}

static void out_send(struct agd_dir *d, struct out *o, uint64_t now)
{
	struct agd_wire_msg m;

	memset(&m, 0, sizeof m);
	snprintf(m.agent, sizeof m.agent, "%s", o->agent);
	if (o->locate) {
		m.type = AGD_MSG_LOCATE;
		m.corr = o->id;
		m.hops = (uint32_t)o->hops;
	} else if (o->call) { /* [call] */
		m.type = AGD_MSG_CALL;
		m.corr = o->corr;
		m.msgid = o->id;
		snprintf(m.host, sizeof m.host, "%s", d->host);
		snprintf(m.name, sizeof m.name, "%s", o->method);
		m.blob[0].data = o->data;
		m.blob[0].len = o->len;
	} else {
		m.type = AGD_MSG_DELIVER;
		m.corr = o->id;
		m.msgid = o->id;
		snprintf(m.host, sizeof m.host, "%s", d->host);
		m.blob[0].data = o->data;
		m.blob[0].len = o->len;
	}
	o->next_try = now + d->retry_ms;
	route(d, o->host, &m, now);
}

static void out_finish(struct agd_dir *d, struct out *o, int code, const char *host, uint64_t epoch)
{
	if (o->locate) {
		if (d->ops.located)
			d->ops.located(d->ud, o->id, o->agent, code, host, epoch);
	} else if (o->call) { /* [call] */
		if (d->cops.called)
			d->cops.called(d->ud, o->corr, o->agent, code, host);
	} else {
		if (code < 0)
			agd_log(AGD_LOG_WARN, "dir.undelivered", "agent=%s msgid=%016llx reason=\"%s\"", o->agent,
				(unsigned long long)o->id, agd_dir_strerror(code));
		if (d->ops.sent)
			d->ops.sent(d->ud, o->id, o->agent, code, host);
	}
	out_drop(d, o);
}

/* An answer that is not final: follow a pointer or fall back to the
 * directory. */
static void out_redirect(struct agd_dir *d, struct out *o, int code, const char *host, uint64_t now)
{
	if (code == AGD_DIR_MOVED && host && host[0]) {
		if (++o->hops > AGD_DIR_HOPS_MAX) {
			out_finish(d, o, AGD_DIR_TOOFAR, NULL, 0);
			return;
		}
		snprintf(o->host, sizeof o->host, "%s", host);
		out_send(d, o, now);
		return;
	}
	if (code == AGD_DIR_NOTFOUND && !o->tried_dir && d->directory[0] &&
	    strcmp(o->host, d->directory) != 0) {
		o->tried_dir = 1;
		snprintf(o->host, sizeof o->host, "%s", d->directory);
		out_send(d, o, now);
		return;
	}
	out_finish(d, o, code == AGD_DIR_MOVED ? AGD_DIR_NOTFOUND : code, NULL, 0);
}

static void on_delivered(struct agd_dir *d, const char *from, const struct agd_wire_msg *m, uint64_t now)
{
	struct out *o = out_find(d, m->msgid, 0);

	if (o == NULL || strcmp(o->host, from) != 0)
		return; /* answered already, or an answer from a host asked before */
	if (m->code == AGD_DIR_HERE)
		out_finish(d, o, AGD_DIR_HERE, from, 0);
	else
		out_redirect(d, o, m->code, m->host, now);
}

static void on_located(struct agd_dir *d, const char *from, const struct agd_wire_msg *m, uint64_t now)
{
	struct out *o = out_find(d, m->corr, 1);

	if (o == NULL || strcmp(o->host, from) != 0)
		return;
	if (m->code == AGD_DIR_HERE)
		out_finish(d, o, AGD_DIR_HERE, m->host, m->epoch);
	else if (m->code == AGD_DIR_INFLIGHT)
		o->next_try = now + d->retry_ms; /* ask the same host again */
	else
		out_redirect(d, o, m->code, m->host, now);
}

/* Where to start: this host's own knowledge, then the hint, then the
 * directory. */
static int first_host(struct agd_dir *d, const char *agent, const char *hint, char *host, size_t len,
		      int *tried_dir)
{
	char fwd[AGD_STORE_HOST_MAX + 1];

	*tried_dir = 0;
	switch (agd_dir_where(d, agent, fwd, sizeof fwd, NULL)) {
	case AGD_WHERE_LIVE:
	case AGD_WHERE_LEAVING:
	case AGD_WHERE_ARRIVING:
	case AGD_WHERE_ENDED:
		snprintf(host, len, "%s", d->host);
		return 0;
	case AGD_WHERE_FORWARD:
		snprintf(host, len, "%.*s", AGD_WIRE_NAME_MAX, fwd);
		return 0;
	default:
		break;
	}
	if (hint && hint[0] && strcmp(hint, d->host) != 0) {
		snprintf(host, len, "%s", hint);
		return 0;
	}
	if (d->directory[0] && strcmp(d->directory, d->host) != 0) {
		*tried_dir = 1;
		snprintf(host, len, "%s", d->directory);
		return 0;
	}
	return AGD_DIR_NOTFOUND;
}

static int start(struct agd_dir *d, int locate, const char *agent, const uint8_t *data, size_t len,
		 const char *hint, uint64_t now, uint64_t *id)
{
	struct out *o;
	int rc;

	*id = 0;
	if (agent == NULL || agent[0] == '\0' || strlen(agent) > AGD_WIRE_NAME_MAX ||
	    len > AGD_WIRE_BLOB_MAX)
		return AGD_DIR_REFUSED;
	if (d->nout >= OUT_MAX)
		return AGD_DIR_REFUSED;
	o = calloc(1, sizeof *o);
	if (o == NULL)
		return AGD_DIR_REFUSED;
	rc = first_host(d, agent, hint, o->host, sizeof o->host, &o->tried_dir);
	if (rc != 0) {
		free(o);
		return rc;
	}
	if (len) {
		o->data = malloc(len);
		if (o->data == NULL) {
			free(o);
			return AGD_DIR_REFUSED;
		}
		memcpy(o->data, data, len);
		o->len = len;
	}
	/* Random ids: unique across senders and restarts without state. */
	do
		randombytes_buf(&o->id, sizeof o->id);
	while (o->id == 0 || out_find(d, o->id, locate) != NULL);
	o->locate = locate;
	snprintf(o->agent, sizeof o->agent, "%s", agent);
	o->deadline = now + d->timeout_ms;
	if (d->pending_call && !locate) { /* [call] agd_dir_call */
		o->call = 1;
		o->corr = d->pending_corr;
		snprintf(o->method, sizeof o->method, "%s", d->pending_method);
		if (d->pending_timeout > 0)
			o->deadline = now + d->pending_timeout;
	}
	o->next = d->out;
	d->out = o;
	d->nout++;
	*id = o->id;
	out_send(d, o, now); /* may finish (and free) o at once when local */
	return 0;
}

int agd_dir_send(struct agd_dir *d, const char *agent, const uint8_t *data, size_t len,
		 const char *hint, uint64_t now_ms, uint64_t *msgid)
{
	return start(d, 0, agent, data, len, hint, now_ms, msgid);
}

int agd_dir_call(struct agd_dir *d, const char *agent, const char *method, uint64_t corr,
		 const uint8_t *data, size_t len, const char *hint, uint64_t now_ms,
		 uint64_t timeout_ms, uint64_t *msgid)
{
	uint64_t id = 0;
	int rc;

	*msgid = 0;
	if (method == NULL || method[0] == '\0' || strlen(method) > AGD_WIRE_NAME_MAX)
		return AGD_DIR_REFUSED;
	/* start() sends at once, and a local callee may answer inside it: the
	 * out is marked a call by the id it will have. Until then it is a
	 * DELIVER in the making that nobody else can see. */
	d->pending_call = 1;
	d->pending_corr = corr;
	d->pending_timeout = timeout_ms;
	snprintf(d->pending_method, sizeof d->pending_method, "%s", method);
	rc = start(d, 0, agent, data, len, hint, now_ms, &id);
	d->pending_call = 0;
	if (rc != 0)
		return rc;
	*msgid = id;
	return 0;
}

int agd_dir_locate(struct agd_dir *d, const char *agent, const char *hint, uint64_t now_ms,
		   uint64_t *corr)
{
	return start(d, 1, agent, NULL, 0, hint, now_ms, corr);
}

void agd_dir_arrived(struct agd_dir *d, const char *agent, const char *home, uint64_t epoch)
{
	struct agd_wire_msg m;

	memset(&m, 0, sizeof m);
	m.type = AGD_MSG_MOVED;
	snprintf(m.agent, sizeof m.agent, "%s", agent);
	snprintf(m.host, sizeof m.host, "%s", d->host);
	m.epoch = epoch;
	if (home && home[0] && strcmp(home, d->host) != 0)
		d->ops.send(d->ud, home, &m);
	if (d->directory[0] && strcmp(d->directory, d->host) != 0 &&
	    (home == NULL || strcmp(home, d->directory) != 0))
		d->ops.send(d->ud, d->directory, &m);
}

int agd_dir_input(struct agd_dir *d, const char *from, const struct agd_wire_msg *m, uint64_t now_ms)
{
	switch (m->type) {
	case AGD_MSG_DELIVER: on_deliver(d, from, m, now_ms); return 1;
	case AGD_MSG_CALL: on_deliver(d, from, m, now_ms); return 1; /* [call] routed as DELIVER */
	case AGD_MSG_DELIVERED: on_delivered(d, from, m, now_ms); return 1;
	case AGD_MSG_LOCATE: on_locate(d, from, m, now_ms); return 1;
	case AGD_MSG_LOCATED: on_located(d, from, m, now_ms); return 1;
	case AGD_MSG_MOVED: on_moved(d, from, m); return 1;
	default: return 0;
	}
}

int64_t agd_dir_tick(struct agd_dir *d, uint64_t now_ms)
{
	int64_t next = -1;

	for (struct out *o = d->out, *n; o; o = n) {
		n = o->next;
		if (o->deadline <= now_ms) {
			out_finish(d, o, AGD_DIR_TIMEOUT, NULL, 0);
			continue;
		}
		if (o->next_try <= now_ms) {
			uint64_t id = o->id;
			int locate = o->locate;

			out_send(d, o, now_ms);
			/* A send to ourselves may have answered and freed it. */
			if (out_find(d, id, locate) != o)
				continue;
		}
		{
			uint64_t t = o->next_try < o->deadline ? o->next_try : o->deadline;
			int64_t w = (int64_t)(t > now_ms ? t - now_ms : 0);

			if (next < 0 || w < next)
				next = w;
		}
	}
	for (struct held **pp = &d->held; *pp;) {
		struct held *h = *pp;

		if (h->deadline <= now_ms) {
			*pp = h->next;
			d->nheld--;
			free(h->data);
			free(h);
			continue;
		}
		pp = &h->next;
	}
	return next;
}
