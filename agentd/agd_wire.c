/*
 * agd_wire.c: the peer wire codec (docs/protocol.md, "Peer messages").
 *
 * Table-driven: each type names the fields its body carries, as a bit mask
 * over one canonical field order, and how many blobs follow. The body also
 * declares each blob's length, so a blob frame cut short is told apart from
 * a complete one. Version 2 adds optional trailing blobs to some types; the
 * header's version says how many blobs the body declares. Decoding reads through a cursor that checks every read
 * against the end of its frame; it never allocates and never recurses.
 */
#include "agd_wire.h"

#include <stdlib.h>
#include <string.h>

/* Fields, in the order they appear in a body. */
enum field {
	F_CORR,   /* u64 */
	F_PROTO,  /* u32 */
	F_HOST,   /* str */
	F_AGENT,  /* str, non-empty */
	F_NAME,   /* str */
	F_EPOCH,  /* u64 */
	F_HASH,   /* 32 bytes */
	F_MOB,    /* u8, a valid mobility */
	F_KIND,   /* u8, a valid kind */
	F_SIZE,   /* u64 */
	F_MSGID,  /* u64 */
	F_OP,     /* u32 */
	F_HOPS,   /* u32 */
	F_CODE,   /* i32 */
	F_TEXT,   /* str (longer cap) */
	F_COUNT
};

#define B(f) (1u << (f))

struct type_info {
	const char *name; /* for logs */
	uint32_t fields;  /* mask of enum field */
	int blobs;        /* blob frames after the body */
	int opt;          /* optional trailing blobs, from version 2 on */
};

/* Indexed by type; entries with a NULL name are unknown types. */
static const struct type_info types[AGD_MSG_TYPE_MAX + 1] = {
	[AGD_MSG_HELLO] = { "HELLO", B(F_CORR) | B(F_PROTO) | B(F_HOST) | B(F_TEXT), 0 },
	[AGD_MSG_ERROR] = { "ERROR", B(F_CORR) | B(F_CODE) | B(F_TEXT), 0 },
	[AGD_MSG_HAVE_SEGMENT] = { "HAVE_SEGMENT", B(F_CORR) | B(F_HASH), 0 },
	[AGD_MSG_SEGMENT_YES] = { "SEGMENT_YES", B(F_CORR) | B(F_HASH), 0 },
	[AGD_MSG_SEGMENT_NO] = { "SEGMENT_NO", B(F_CORR) | B(F_HASH), 0 },
	[AGD_MSG_GET_SEGMENT] = { "GET_SEGMENT", B(F_CORR) | B(F_HASH), 0 },
	[AGD_MSG_SEGMENT] = { "SEGMENT", B(F_CORR) | B(F_HASH), 1 },
	[AGD_MSG_OFFER] = { "OFFER", B(F_CORR) | B(F_AGENT) | B(F_NAME) | B(F_EPOCH) | B(F_HASH) |
					     B(F_MOB) | B(F_KIND) | B(F_SIZE), 1 },
	[AGD_MSG_ACCEPT] = { "ACCEPT", B(F_CORR) | B(F_AGENT) | B(F_EPOCH), 0 },
	[AGD_MSG_REFUSE] = { "REFUSE", B(F_CORR) | B(F_AGENT) | B(F_EPOCH) | B(F_CODE) | B(F_TEXT), 0 },
	[AGD_MSG_TRANSFER] = { "TRANSFER", B(F_CORR) | B(F_HOST) | B(F_AGENT) | B(F_NAME) | B(F_EPOCH) |
						   B(F_HASH) | B(F_MOB) | B(F_KIND), 3, 1 },
	[AGD_MSG_COMMITTED] = { "COMMITTED", B(F_CORR) | B(F_AGENT) | B(F_EPOCH), 0 },
	[AGD_MSG_ABORT] = { "ABORT", B(F_CORR) | B(F_AGENT) | B(F_EPOCH) | B(F_CODE) | B(F_TEXT), 0 },
	[AGD_MSG_PULL_REQUEST] = { "PULL_REQUEST", B(F_CORR) | B(F_HOST) | B(F_AGENT) | B(F_MOB), 0 },
	[AGD_MSG_LOCATE] = { "LOCATE", B(F_CORR) | B(F_AGENT) | B(F_HOPS), 0 },
	[AGD_MSG_LOCATED] = { "LOCATED", B(F_CORR) | B(F_HOST) | B(F_AGENT) | B(F_EPOCH) |
						 B(F_HOPS) | B(F_CODE), 0 },
	[AGD_MSG_DELIVER] = { "DELIVER", B(F_CORR) | B(F_HOST) | B(F_AGENT) | B(F_MSGID), 1 },
	[AGD_MSG_DELIVERED] = { "DELIVERED", B(F_CORR) | B(F_HOST) | B(F_AGENT) | B(F_MSGID) | B(F_CODE), 0 },
	[AGD_MSG_CALL] = { "CALL", B(F_CORR) | B(F_HOST) | B(F_AGENT) | B(F_NAME) | B(F_MSGID), 1 },
	[AGD_MSG_REPLY] = { "REPLY", B(F_CORR) | B(F_AGENT) | B(F_MSGID) | B(F_CODE) | B(F_TEXT), 1 },
	[AGD_MSG_RES_OP] = { "RES_OP", B(F_CORR) | B(F_NAME) | B(F_MSGID) | B(F_OP), 1 },
	[AGD_MSG_RES_REPLY] = { "RES_REPLY", B(F_CORR) | B(F_MSGID) | B(F_CODE) | B(F_TEXT), 1 },
	[AGD_MSG_MOVED] = { "MOVED", B(F_CORR) | B(F_HOST) | B(F_AGENT) | B(F_EPOCH), 0 },
	[AGD_MSG_ACTIVATE] = { "ACTIVATE", B(F_CORR) | B(F_AGENT) | B(F_EPOCH), 0 },
	[AGD_MSG_LOAD] = { "LOAD", B(F_CORR) | B(F_HOST) | B(F_SIZE), 0 },
	[AGD_MSG_LOAD_REPLY] = { "LOAD_REPLY", B(F_CORR) | B(F_HOST) | B(F_SIZE) | B(F_OP), 1 },
	[AGD_MSG_REGISTER] = { "REGISTER", B(F_CORR) | B(F_HOST) | B(F_TEXT), 0 },
	[AGD_MSG_HOST_LIST] = { "HOST_LIST", B(F_CORR), 1 },
};

static const struct type_info *type_get(int type)
{
	if (type < AGD_MSG_TYPE_MIN || type > AGD_MSG_TYPE_MAX || types[type].name == NULL)
		return NULL;
	return &types[type];
}

const char *agd_wire_strerror(int code)
{
	switch (code) {
	case AGD_WIRE_OK: return "ok";
	case AGD_WIRE_ERR_TRUNCATED: return "message truncated";
	case AGD_WIRE_ERR_MALFORMED: return "malformed message";
	case AGD_WIRE_ERR_VERSION: return "unsupported protocol version";
	case AGD_WIRE_ERR_TYPE: return "unknown message type";
	case AGD_WIRE_ERR_TOOBIG: return "message or field too large";
	case AGD_WIRE_ERR_ARG: return "invalid argument";
	case AGD_WIRE_ERR_NOMEM: return "out of memory";
	default: return "unknown wire error";
	}
}

const char *agd_wire_type_name(int type)
{
	const struct type_info *t = type_get(type);

	return t ? t->name : "?";
}

/* A mobility value a message of this type may carry. */
static int mobility_ok(int type, int mob)
{
	return mob == AGD_MOB_WEAK || mob == AGD_MOB_STRONG ||
	       (type == AGD_MSG_PULL_REQUEST && mob == AGD_MOB_STRONG_ONLY);
}

int agd_wire_type_blobs(int type)
{
	const struct type_info *t = type_get(type);

	return t ? t->blobs + t->opt : -1;
}

/* Blobs a message of type t has at version v. */
static int blobs_at(const struct type_info *t, int v)
{
	return t->blobs + (v >= 2 ? t->opt : 0);
}

/* ---- writing: into a fixed buffer of AGD_WIRE_BODY_MAX ---- */

struct wcur {
	uint8_t *p;   /* next byte to write */
	uint8_t *end; /* one past the buffer */
	int err;      /* sticky: first failure */
};

static void put(struct wcur *w, const void *src, size_t n)
{
	if (w->err)
		return;
	if ((size_t)(w->end - w->p) < n) {
		w->err = AGD_WIRE_ERR_TOOBIG;
		return;
	}
	if (n)
		memcpy(w->p, src, n);
	w->p += n;
}

static void put_u8(struct wcur *w, uint8_t v)
{
	put(w, &v, 1);
}

static void put_u32(struct wcur *w, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	put(w, b, 4);
}

static void put_u64(struct wcur *w, uint64_t v)
{
	put_u32(w, (uint32_t)(v >> 32));
	put_u32(w, (uint32_t)v);
}

static void put_str(struct wcur *w, const char *s, size_t cap)
{
	size_t n = strnlen(s, cap + 1);
	uint8_t b[2];

	if (n > cap) {
		if (!w->err)
			w->err = AGD_WIRE_ERR_TOOBIG;
		return;
	}
	b[0] = (uint8_t)(n >> 8);
	b[1] = (uint8_t)n;
	put(w, b, 2);
	put(w, s, n);
}

int agd_wire_encode(const struct agd_wire_msg *m, struct agd_wire_frames *out)
{
	const struct type_info *t;
	struct wcur w;
	uint8_t *body;
	int version = 1, nb;

	out->n = 0;
	t = type_get(m->type);
	if (t == NULL)
		return AGD_WIRE_ERR_TYPE;
	if ((t->fields & B(F_AGENT)) && m->agent[0] == '\0')
		return AGD_WIRE_ERR_ARG;
	if ((t->fields & B(F_MOB)) && !mobility_ok(m->type, m->mobility))
		return AGD_WIRE_ERR_ARG;
	if ((t->fields & B(F_KIND)) && (m->kind < AGD_KIND_PUSH || m->kind > AGD_KIND_CLONE))
		return AGD_WIRE_ERR_ARG;
	/* The lowest version that carries it: a version-1 peer reads all
	 * but a message with an optional blob. */
	for (int i = t->blobs; i < t->blobs + t->opt; i++)
		if (m->blob[i].len > 0)
			version = 2;
	nb = blobs_at(t, version);
	for (int i = 0; i < nb; i++) {
		if (m->blob[i].len > AGD_WIRE_BLOB_MAX)
			return AGD_WIRE_ERR_TOOBIG;
		if (m->blob[i].len && m->blob[i].data == NULL)
			return AGD_WIRE_ERR_ARG;
	}

	memcpy(out->head, AGD_WIRE_MAGIC, 4);
	out->head[4] = (uint8_t)version;
	out->head[5] = m->type;
	body = out->head + AGD_WIRE_HEADER_LEN;
	w.p = body;
	w.end = body + AGD_WIRE_BODY_MAX;
	w.err = 0;
	for (int f = 0; f < F_COUNT; f++) {
		if (!(t->fields & B(f)))
			continue;
		switch (f) {
		case F_CORR: put_u64(&w, m->corr); break;
		case F_PROTO: put_u32(&w, m->proto); break;
		case F_HOST: put_str(&w, m->host, AGD_WIRE_NAME_MAX); break;
		case F_AGENT: put_str(&w, m->agent, AGD_WIRE_NAME_MAX); break;
		case F_NAME: put_str(&w, m->name, AGD_WIRE_NAME_MAX); break;
		case F_EPOCH: put_u64(&w, m->epoch); break;
		case F_HASH: put(&w, m->hash, AGD_WIRE_HASH_LEN); break;
		case F_MOB: put_u8(&w, m->mobility); break;
		case F_KIND: put_u8(&w, m->kind); break;
		case F_SIZE: put_u64(&w, m->size); break;
		case F_MSGID: put_u64(&w, m->msgid); break;
		case F_OP: put_u32(&w, m->op); break;
		case F_HOPS: put_u32(&w, m->hops); break;
		case F_CODE: put_u32(&w, (uint32_t)m->code); break;
		case F_TEXT: put_str(&w, m->text, AGD_WIRE_TEXT_MAX); break;
		}
	}
	for (int i = 0; i < nb; i++)
		put_u32(&w, (uint32_t)m->blob[i].len);
	if (w.err)
		return w.err;

	out->f[0].data = out->head;
	out->f[0].len = AGD_WIRE_HEADER_LEN;
	out->f[1].data = body;
	out->f[1].len = (size_t)(w.p - body);
	for (int i = 0; i < nb; i++)
		out->f[2 + i] = m->blob[i];
	out->n = 2 + (size_t)nb;
	return 0;
}

/* ---- reading: a bounded cursor ---- */

struct rcur {
	const uint8_t *p;   /* next byte to read */
	const uint8_t *end; /* one past the frame */
	int err;            /* sticky: first failure */
};

/* An empty range may come as NULL; point it at a static byte instead, so no
 * arithmetic is ever done on a null pointer. */
static void cur_init(struct rcur *r, const uint8_t *data, size_t len)
{
	static const uint8_t none[1];

	r->p = data ? data : none;
	r->end = r->p + (data ? len : 0);
	r->err = 0;
}

static const uint8_t *take(struct rcur *r, size_t n)
{
	const uint8_t *s;

	if (r->err)
		return NULL;
	if ((size_t)(r->end - r->p) < n) {
		r->err = AGD_WIRE_ERR_TRUNCATED;
		return NULL;
	}
	s = r->p;
	r->p += n;
	return s;
}

static uint8_t get_u8(struct rcur *r)
{
	const uint8_t *b = take(r, 1);

	return b ? b[0] : 0;
}

static uint32_t get_u32(struct rcur *r)
{
	const uint8_t *b = take(r, 4);

	if (b == NULL)
		return 0;
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint64_t get_u64(struct rcur *r)
{
	uint64_t hi = get_u32(r);

	return hi << 32 | get_u32(r);
}

/* Reads a u16-counted string into dst (cap+1 bytes). */
static void get_str(struct rcur *r, char *dst, size_t cap)
{
	const uint8_t *b = take(r, 2);
	const uint8_t *s;
	size_t n;

	if (b == NULL)
		return;
	n = (size_t)b[0] << 8 | b[1];
	if (n > cap) {
		r->err = AGD_WIRE_ERR_TOOBIG;
		return;
	}
	s = take(r, n);
	if (s == NULL)
		return;
	if (memchr(s, '\0', n) != NULL) {
		r->err = AGD_WIRE_ERR_MALFORMED;
		return;
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
}

/* Checks frame 0. A short frame that matches the magic so far is
 * incomplete; anything else that differs is malformed. */
static int check_header(const struct agd_wire_bytes *h, uint8_t *type, int *version)
{
	static const uint8_t want[4] = { 'A', 'G', 'D', 'P' };
	size_t n = h->len < 4 ? h->len : 4;

	if (n && memcmp(h->data, want, n) != 0)
		return AGD_WIRE_ERR_MALFORMED;
	if (h->len > 4 && (h->data[4] < AGD_WIRE_VERSION_MIN || h->data[4] > AGD_WIRE_VERSION))
		return AGD_WIRE_ERR_VERSION;
	if (h->len < AGD_WIRE_HEADER_LEN)
		return AGD_WIRE_ERR_TRUNCATED;
	if (h->len > AGD_WIRE_HEADER_LEN)
		return AGD_WIRE_ERR_MALFORMED;
	*version = h->data[4];
	*type = h->data[5];
	return 0;
}

int agd_wire_decode(const struct agd_wire_bytes *frames, size_t n, struct agd_wire_msg *m)
{
	const struct type_info *t;
	struct rcur r;
	uint8_t type = 0;
	int rc, version = 0, nb;

	memset(m, 0, sizeof *m);
	if (n == 0)
		return AGD_WIRE_ERR_TRUNCATED;
	if (n > AGD_WIRE_FRAMES_MAX)
		return AGD_WIRE_ERR_TOOBIG;
	rc = check_header(&frames[0], &type, &version);
	if (rc != 0)
		return rc;
	t = type_get(type);
	if (t == NULL)
		return AGD_WIRE_ERR_TYPE;
	nb = blobs_at(t, version);
	if (n < 2)
		return AGD_WIRE_ERR_TRUNCATED;
	if (frames[1].len > AGD_WIRE_BODY_MAX)
		return AGD_WIRE_ERR_TOOBIG;

	cur_init(&r, frames[1].data, frames[1].len);
	m->type = type;
	for (int f = 0; f < F_COUNT && !r.err; f++) {
		if (!(t->fields & B(f)))
			continue;
		switch (f) {
		case F_CORR: m->corr = get_u64(&r); break;
		case F_PROTO: m->proto = get_u32(&r); break;
		case F_HOST: get_str(&r, m->host, AGD_WIRE_NAME_MAX); break;
		case F_AGENT:
			get_str(&r, m->agent, AGD_WIRE_NAME_MAX);
			if (!r.err && m->agent[0] == '\0')
				r.err = AGD_WIRE_ERR_MALFORMED;
			break;
		case F_NAME: get_str(&r, m->name, AGD_WIRE_NAME_MAX); break;
		case F_EPOCH: m->epoch = get_u64(&r); break;
		case F_HASH: {
			const uint8_t *h = take(&r, AGD_WIRE_HASH_LEN);

			if (h)
				memcpy(m->hash, h, AGD_WIRE_HASH_LEN);
			break;
		}
		case F_MOB:
			m->mobility = get_u8(&r);
			if (!r.err && !mobility_ok(m->type, m->mobility))
				r.err = AGD_WIRE_ERR_MALFORMED;
			break;
		case F_KIND:
			m->kind = get_u8(&r);
			if (!r.err && (m->kind < AGD_KIND_PUSH || m->kind > AGD_KIND_CLONE))
				r.err = AGD_WIRE_ERR_MALFORMED;
			break;
		case F_SIZE: m->size = get_u64(&r); break;
		case F_MSGID: m->msgid = get_u64(&r); break;
		case F_OP: m->op = get_u32(&r); break;
		case F_HOPS: m->hops = get_u32(&r); break;
		case F_CODE: m->code = (int32_t)get_u32(&r); break;
		case F_TEXT: get_str(&r, m->text, AGD_WIRE_TEXT_MAX); break;
		}
	}
	for (int i = 0; i < nb && !r.err; i++) {
		uint32_t len = get_u32(&r);

		if (!r.err && len > AGD_WIRE_BLOB_MAX)
			r.err = AGD_WIRE_ERR_TOOBIG;
		m->blob[i].len = len;
	}
	if (!r.err && r.p != r.end)
		r.err = AGD_WIRE_ERR_MALFORMED;
	if (!r.err && n < 2 + (size_t)nb)
		r.err = AGD_WIRE_ERR_TRUNCATED;
	if (!r.err && n > 2 + (size_t)nb)
		r.err = AGD_WIRE_ERR_MALFORMED;
	for (int i = 0; i < nb && !r.err; i++) {
		const struct agd_wire_bytes *fb = &frames[2 + i];

		if (fb->len < m->blob[i].len)
			r.err = AGD_WIRE_ERR_TRUNCATED;
		else if (fb->len > m->blob[i].len)
			r.err = AGD_WIRE_ERR_MALFORMED;
		else
			m->blob[i].data = fb->len ? fb->data : NULL;
	}
	if (r.err) {
		rc = r.err;
		memset(m, 0, sizeof *m);
		return rc;
	}
	return 0;
}

int agd_wire_pack(const struct agd_wire_frames *fr, uint8_t **buf, size_t *len)
{
	size_t total = 1, old = *len;
	uint8_t *nb, *p;

	if (fr->n == 0 || fr->n > AGD_WIRE_FRAMES_MAX)
		return AGD_WIRE_ERR_ARG;
	for (size_t i = 0; i < fr->n; i++) {
		if (fr->f[i].len > AGD_WIRE_FRAME_MAX)
			return AGD_WIRE_ERR_TOOBIG;
		total += 4 + fr->f[i].len;
	}
	nb = realloc(*buf, old + total);
	if (nb == NULL)
		return AGD_WIRE_ERR_NOMEM;
	p = nb + old;
	*p++ = (uint8_t)fr->n;
	for (size_t i = 0; i < fr->n; i++) {
		size_t l = fr->f[i].len;

		p[0] = (uint8_t)(l >> 24);
		p[1] = (uint8_t)(l >> 16);
		p[2] = (uint8_t)(l >> 8);
		p[3] = (uint8_t)l;
		p += 4;
		if (l)
			memcpy(p, fr->f[i].data, l);
		p += l;
	}
	*buf = nb;
	*len = old + total;
	return 0;
}

int agd_wire_unpack(const uint8_t *buf, size_t len, struct agd_wire_bytes *frames, size_t max,
		    size_t *n)
{
	struct rcur r;
	size_t count;

	*n = 0;
	cur_init(&r, buf, len);
	count = get_u8(&r);
	if (r.err)
		return r.err;
	if (count == 0)
		return AGD_WIRE_ERR_MALFORMED;
	if (count > max || count > AGD_WIRE_FRAMES_MAX)
		return AGD_WIRE_ERR_TOOBIG;
	for (size_t i = 0; i < count; i++) {
		uint32_t l = get_u32(&r);
		const uint8_t *d;

		if (r.err)
			return r.err;
		if (l > AGD_WIRE_FRAME_MAX)
			return AGD_WIRE_ERR_TOOBIG;
		d = take(&r, l);
		if (r.err)
			return r.err;
		frames[i].data = l ? d : NULL;
		frames[i].len = l;
	}
	if (r.p != r.end)
		return AGD_WIRE_ERR_MALFORMED;
	*n = count;
	return 0;
}
