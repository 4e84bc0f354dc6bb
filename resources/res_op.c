/*
 * res_op.c: the op codec and the executor of ops on a registry
 * (docs/resources.md, "Op encoding").
 *
 * Invariants: the decoder reads only through a cursor checked against the
 * end, caps counts and sizes before allocating, and tells a truncated
 * message from a malformed one. The executor checks an op's kind, argument
 * count and sizes before any I/O, and always answers with a reply that
 * decodes.
 */
#include "res_op.h"

#include "res_entry.h"
#include "res_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void res_u64_put(uint8_t out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		out[i] = (uint8_t)v;
		v >>= 8;
	}
}

int res_u64_get(const struct res_field *f, uint64_t *out)
{
	const uint8_t *p = f->p;
	uint64_t v = 0;

	if (f->len != 8)
		return RES_ERR_MALFORMED;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	*out = v;
	return 0;
}

size_t res_msg_size(const struct res_msg *m)
{
	size_t total = RES_OP_HEADER;

	if (m->n > RES_OP_MAX_FIELDS)
		return 0;
	for (unsigned i = 0; i < m->n; i++) {
		if (m->f[i].len > RES_OP_MAX_BYTES - total - 4)
			return 0;
		total += 4 + m->f[i].len;
	}
	return total;
}

int res_msg_write(const struct res_msg *m, void *buf, size_t len)
{
	size_t need = res_msg_size(m);
	uint8_t *p = buf;

	if (need == 0 || len < need)
		return RES_ERR_LIMIT;
	p[0] = 'R';
	p[1] = RES_OP_VERSION;
	p[2] = m->type;
	p[3] = m->n;
	p += RES_OP_HEADER;
	for (unsigned i = 0; i < m->n; i++) {
		put_u32(p, (uint32_t)m->f[i].len);
		if (m->f[i].len > 0)
			memcpy(p + 4, m->f[i].p, m->f[i].len);
		p += 4 + m->f[i].len;
	}
	return 0;
}

int res_msg_encode(const struct res_msg *m, void **out, size_t *out_len)
{
	size_t need = res_msg_size(m);
	void *buf;

	*out = NULL;
	*out_len = 0;
	if (need == 0)
		return RES_ERR_LIMIT;
	buf = malloc(need);
	if (buf == NULL)
		return RES_ERR_NOMEM;
	res_msg_write(m, buf, need);
	*out = buf;
	*out_len = need;
	return 0;
}

int res_msg_code(const struct res_msg *m)
{
	const uint8_t *p;

	if (m->type != RES_MSG_ERR || m->n < 1 || m->f[0].len != 4)
		return 0;
	p = m->f[0].p;
	return (int)(int32_t)get_u32(p);
}

int res_msg_decode(const void *buf, size_t len, struct res_msg *out)
{
	const uint8_t *p = buf, *end = p + len;

	memset(out, 0, sizeof *out);
	if (len > RES_OP_MAX_BYTES)
		return RES_ERR_LIMIT;
	/* Signature and version first: a peer speaking something else is
	 * refused before anything else is read. */
	if (len >= 1 && p[0] != 'R')
		return RES_ERR_MALFORMED;
	if (len >= 2 && p[1] != RES_OP_VERSION)
		return RES_ERR_VERSION;
	if (len < RES_OP_HEADER)
		return RES_ERR_TRUNCATED;
	if (p[2] != RES_MSG_ARGS && p[2] != RES_MSG_OK && p[2] != RES_MSG_ERR)
		return RES_ERR_MALFORMED;
	if (p[3] > RES_OP_MAX_FIELDS)
		return RES_ERR_LIMIT;
	out->type = p[2];
	out->n = p[3];
	p += RES_OP_HEADER;
	for (unsigned i = 0; i < out->n; i++) {
		uint32_t flen;

		if ((size_t)(end - p) < 4)
			return RES_ERR_TRUNCATED;
		flen = get_u32(p);
		p += 4;
		if (flen > RES_OP_MAX_BYTES)
			return RES_ERR_LIMIT;
		if ((size_t)(end - p) < flen)
			return RES_ERR_TRUNCATED;
		out->f[i].p = p;
		out->f[i].len = flen;
		p += flen;
	}
	if (p != end)
		return RES_ERR_MALFORMED;
	if (out->type == RES_MSG_ERR) {
		int code;

		if (out->n < 2 || out->f[0].len != 4 || out->f[1].len > RES_OP_MSG_MAX)
			return RES_ERR_MALFORMED;
		code = res_msg_code(out);
		if (code >= 0 || code < RES_ERR_MIN)
			return RES_ERR_MALFORMED;
	}
	return 0;
}

int res_reply_error(int code, const char *msg, const char *extra, void **out, size_t *out_len)
{
	struct res_msg m = {.type = RES_MSG_ERR, .n = 2};
	uint8_t c[4];
	size_t mlen = strlen(msg);

	if (code >= 0 || code < RES_ERR_MIN)
		code = RES_ERR_TRANSPORT;
	put_u32(c, (uint32_t)(int32_t)code);
	if (mlen > RES_OP_MSG_MAX)
		mlen = RES_OP_MSG_MAX;
	m.f[0] = (struct res_field){c, 4};
	m.f[1] = (struct res_field){msg, mlen};
	if (extra != NULL)
		m.f[m.n++] = (struct res_field){extra, strlen(extra)};
	return res_msg_encode(&m, out, out_len);
}

int res_keys_each(const struct res_field *f, int (*fn)(void *ud, const void *k, size_t len),
		  void *ud)
{
	const uint8_t *p = f->p, *end = p + f->len;
	uint32_t count;

	if (f->len < 4)
		return RES_ERR_TRUNCATED;
	count = get_u32(p);
	p += 4;
	if (count > RES_KV_MAX_KEYS)
		return RES_ERR_LIMIT;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t klen;
		int rc;

		if ((size_t)(end - p) < 4)
			return RES_ERR_TRUNCATED;
		klen = get_u32(p);
		p += 4;
		if (klen > RES_KEY_MAX)
			return RES_ERR_LIMIT;
		if ((size_t)(end - p) < klen)
			return RES_ERR_TRUNCATED;
		rc = fn(ud, p, klen);
		if (rc != 0)
			return rc;
		p += klen;
	}
	return p == end ? 0 : RES_ERR_MALFORMED;
}

/* What an op hands back: up to one field, possibly owning its bytes. */
struct result {
	int has;              /* one field present */
	const void *p;        /* its bytes */
	size_t len;
	void *owned;          /* freed after encoding (free()) */
	uint8_t num[8];       /* storage for u64 results */
	char msg[RES_OP_MSG_MAX]; /* error detail */
	char extra[RES_HOST_MAX]; /* RES_ERR_MOVED: new home */
};

static void set_u64(struct result *r, uint64_t v)
{
	res_u64_put(r->num, v);
	r->has = 1;
	r->p = r->num;
	r->len = 8;
}

static void set_bytes(struct result *r, struct resi_bytes *b)
{
	r->has = 1;
	r->owned = b->data;
	r->p = b->data;
	r->len = b->len;
	b->data = NULL;
}

static int fail(struct result *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct result *r, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof r->msg, fmt, ap);
	va_end(ap);
	return code;
}

/* Optional [n [off]] arguments of read. */
static int read_args(const struct res_msg *a, uint64_t *n, uint64_t *off)
{
	*n = UINT64_MAX;
	*off = 0;
	if (a->n >= 1 && res_u64_get(&a->f[0], n) != 0)
		return RES_ERR_MALFORMED;
	if (a->n >= 2 && res_u64_get(&a->f[1], off) != 0)
		return RES_ERR_MALFORMED;
	return 0;
}

static int op_read(struct resi_entry *e, const struct res_msg *a, struct result *r)
{
	struct resi_bytes b;
	uint64_t n, off;
	int rc;

	if (read_args(a, &n, &off) != 0)
		return fail(r, RES_ERR_MALFORMED, "read takes [n [offset]] as numbers");
	if (e->kind == RES_KIND_SENSOR) {
		/* A sensor value is short text; a huge file is a misconfiguration. */
		rc = resi_file_read(e->path, 0, 4096, &b);
		if (rc == 0)
			while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r' ||
					     b.data[b.len - 1] == ' ' || b.data[b.len - 1] == '\t'))
				b.len--;
	} else {
		rc = resi_file_read(e->path, off, n, &b);
	}
	if (rc != 0)
		return fail(r, rc, "cannot read %s: %s", e->id, res_strerror(rc));
	set_bytes(r, &b);
	return 0;
}

static int check_growth(struct resi_entry *e, uint64_t add, struct result *r)
{
	uint64_t size;
	int rc = resi_entry_size(e, &size);

	if (rc != 0)
		return fail(r, rc, "cannot size %s: %s", e->id, res_strerror(rc));
	if (add > e->max_size || size > e->max_size - add)
		return fail(r, RES_ERR_LIMIT, "%s would exceed its max_size of %llu bytes", e->id,
			    (unsigned long long)e->max_size);
	return 0;
}

static int op_write(struct resi_entry *e, const struct res_msg *a, struct result *r)
{
	int rc;

	if (a->f[0].len > e->max_size)
		return fail(r, RES_ERR_LIMIT, "%s would exceed its max_size of %llu bytes", e->id,
			    (unsigned long long)e->max_size);
	rc = resi_file_replace(e->path, a->f[0].p, a->f[0].len);
	return rc ? fail(r, rc, "cannot write %s: %s", e->id, res_strerror(rc)) : 0;
}

static int op_append(struct resi_entry *e, const struct res_msg *a, struct result *r)
{
	int rc = check_growth(e, a->f[0].len, r);

	if (rc != 0)
		return rc;
	rc = resi_file_append(e->path, a->f[0].p, a->f[0].len);
	return rc ? fail(r, rc, "cannot append to %s: %s", e->id, res_strerror(rc)) : 0;
}

static int op_print(struct resi_entry *e, const struct res_msg *a, struct result *r)
{
	const struct res_field *t = &a->f[0];
	int nl = t->len == 0 || ((const char *)t->p)[t->len - 1] != '\n';
	int rc = check_growth(e, t->len + (size_t)nl, r);

	if (rc != 0)
		return rc;
	/* A printed job is a line: add the newline the agent left out. */
	rc = resi_file_append(e->path, t->p, t->len);
	if (rc == 0 && nl)
		rc = resi_file_append(e->path, "\n", 1);
	return rc ? fail(r, rc, "cannot print on %s: %s", e->id, res_strerror(rc)) : 0;
}

static int op_size(struct resi_entry *e, const struct res_msg *a, struct result *r)
{
	uint64_t size;
	int rc = resi_entry_size(e, &size);

	if (rc != 0)
		return fail(r, rc, "cannot size %s: %s", e->id, res_strerror(rc));
	set_u64(r, size);
	return 0;
}

static int op_get(struct resi_entry *e, const struct res_msg *a, struct result *r)
{
	struct resi_bytes b;
	int found, rc;

	if (a->f[0].len > RES_KEY_MAX)
		return fail(r, RES_ERR_LIMIT, "key longer than %d bytes", RES_KEY_MAX);
	rc = resi_kv_get(e->db, a->f[0].p, a->f[0].len, &b, &found);
	if (rc != 0)
		return fail(r, rc, "cannot read %s: %s", e->id, res_strerror(rc));
	if (found)
		set_bytes(r, &b);
	return 0;
}

static int op_put(struct resi_entry *e, const struct res_msg *a, struct result *r)
{
	int rc;

	if (a->f[0].len > RES_KEY_MAX)
		return fail(r, RES_ERR_LIMIT, "key longer than %d bytes", RES_KEY_MAX);
	/* Counted as growth even when replacing: an upper bound, never wrong
	 * in the direction that matters. */
	rc = check_growth(e, a->f[0].len + a->f[1].len, r);
	if (rc != 0)
		return rc;
	rc = resi_kv_put(e->db, a->f[0].p, a->f[0].len, a->f[1].p, a->f[1].len);
	return rc ? fail(r, rc, "cannot write %s: %s", e->id, res_strerror(rc)) : 0;
}

static int op_delete(struct resi_entry *e, const struct res_msg *a, struct result *r)
{
	int found, rc;

	if (a->f[0].len > RES_KEY_MAX)
		return fail(r, RES_ERR_LIMIT, "key longer than %d bytes", RES_KEY_MAX);
	rc = resi_kv_delete(e->db, a->f[0].p, a->f[0].len, &found);
	if (rc != 0)
		return fail(r, rc, "cannot write %s: %s", e->id, res_strerror(rc));
	set_u64(r, (uint64_t)found);
	return 0;
}

/* Accumulates the keys list; bounded by RES_OP_MAX_BYTES. */
struct keybuf {
	uint8_t *data;
	size_t len, cap;
	uint32_t count;
};

static int add_key(void *ud, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct keybuf *kb = ud;

	(void)v;
	(void)vlen;
	if (klen > RES_KEY_MAX)
		return RES_ERR_LIMIT;
	if (kb->len + 4 + klen > RES_OP_MAX_BYTES - 64)
		return RES_ERR_LIMIT;
	if (kb->len + 4 + klen > kb->cap) {
		size_t cap = kb->cap ? kb->cap : 256;
		uint8_t *nd;

		while (cap < kb->len + 4 + klen)
			cap *= 2;
		nd = realloc(kb->data, cap);
		if (nd == NULL)
			return RES_ERR_NOMEM;
		kb->data = nd;
		kb->cap = cap;
	}
	put_u32(kb->data + kb->len, (uint32_t)klen);
	if (klen > 0)
		memcpy(kb->data + kb->len + 4, k, klen);
	kb->len += 4 + klen;
	kb->count++;
	return 0;
}

static int op_keys(struct resi_entry *e, const struct res_msg *a, struct result *r)
{
	struct keybuf kb = {0};
	int rc;

	/* Room for the count, written once the keys are known. */
	kb.data = malloc(256);
	if (kb.data == NULL)
		return fail(r, RES_ERR_NOMEM, "out of memory");
	kb.cap = 256;
	kb.len = 4;
	rc = resi_kv_each(e->db, add_key, &kb);
	if (rc != 0) {
		free(kb.data);
		return fail(r, rc, "cannot list %s: %s", e->id, res_strerror(rc));
	}
	put_u32(kb.data, kb.count);
	r->has = 1;
	r->owned = kb.data;
	r->p = kb.data;
	r->len = kb.len;
	return 0;
}

#define K(k) (1u << (k))
static const struct opdef {
	const char *name;
	unsigned kinds;       /* bit set of kinds it applies to */
	uint8_t min, max;     /* argument count */
	int (*fn)(struct resi_entry *e, const struct res_msg *a, struct result *r);
} ops[] = {
	{"read", K(RES_KIND_FILE) | K(RES_KIND_PRINTER) | K(RES_KIND_SENSOR), 0, 2, op_read},
	{"write", K(RES_KIND_FILE), 1, 1, op_write},
	{"append", K(RES_KIND_FILE), 1, 1, op_append},
	{"size", K(RES_KIND_FILE) | K(RES_KIND_KV) | K(RES_KIND_PRINTER), 0, 0, op_size},
	{"get", K(RES_KIND_KV), 1, 1, op_get},
	{"put", K(RES_KIND_KV), 2, 2, op_put},
	{"delete", K(RES_KIND_KV), 1, 1, op_delete},
	{"keys", K(RES_KIND_KV), 0, 0, op_keys},
	{"print", K(RES_KIND_PRINTER), 1, 1, op_print},
};

/* Runs the op; fills r. Returns the op's code. */
static int run(struct res_registry *reg, const char *id, const char *op, const void *args,
	       size_t args_len, unsigned flags, struct result *r)
{
	const struct opdef *d = NULL;
	struct resi_entry *e;
	struct res_msg a;
	int rc;

	if (op == NULL || id == NULL)
		return fail(r, RES_ERR_ARG, "missing op or resource");
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		if (strcmp(ops[i].name, op) == 0)
			d = &ops[i];
	if (d == NULL)
		return fail(r, RES_ERR_ARG, "unknown op '%.16s'", op);
	e = resi_find(reg, id);
	if (e == NULL)
		return fail(r, RES_ERR_NOTFOUND, "no resource '%.64s' on %s", id, reg->host);
	if (e->forward) {
		resi_copy(r->extra, sizeof r->extra, e->home);
		return fail(r, RES_ERR_MOVED, "%s moved to %s", e->id, e->home);
	}
	if ((flags & RES_EXEC_REMOTE) && !e->remote)
		return fail(r, RES_ERR_DENIED, "%s on %s is not for remote use", e->id, reg->host);
	if (!(d->kinds & K(e->kind)))
		return fail(r, RES_ERR_KIND, "%s is a %s: no %s", e->id, res_kind_name(e->kind), op);
	rc = res_msg_decode(args, args_len, &a);
	if (rc != 0)
		return fail(r, rc, "bad arguments: %s", res_strerror(rc));
	if (a.type != RES_MSG_ARGS || a.n < d->min || a.n > d->max)
		return fail(r, RES_ERR_MALFORMED, "%s takes %u to %u arguments", op, d->min, d->max);
	return d->fn(e, &a, r);
}

int res_exec_op(struct res_registry *reg, const char *id, const char *op, const void *args,
		size_t args_len, unsigned flags, void **reply, size_t *reply_len)
{
	struct result r;
	int rc, erc;

	*reply = NULL;
	*reply_len = 0;
	memset(&r, 0, sizeof r);
	rc = run(reg, id, op, args, args_len, flags, &r);
	if (rc == 0) {
		struct res_msg m = {.type = RES_MSG_OK, .n = (uint8_t)(r.has ? 1 : 0)};

		m.f[0] = (struct res_field){r.p, r.len};
		erc = res_msg_encode(&m, reply, reply_len);
		if (erc != 0) {
			rc = erc;
			snprintf(r.msg, sizeof r.msg, "reply too large");
		}
	}
	if (rc != 0)
		erc = res_reply_error(rc, r.msg[0] ? r.msg : res_strerror(rc),
				      r.extra[0] ? r.extra : NULL, reply, reply_len);
	free(r.owned);
	return rc;
}
