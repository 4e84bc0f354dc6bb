/*
 * res_action.c: export, import and move commit (the MV and CP mechanics),
 * binding resolution, and the source's half of a policy context
 * (docs/resources.md, "Actions", "Transfer encoding").
 *
 * Transfer blob:
 *   'R' 'X' | version 1 | kind u8 | attachment u8 | flags u8 (bit 0: remote,
 *   bit 1: no copy)
 *   | id length u8 | id | max_size u64 | transfer_limit u64 | content
 * content, for file, printer, sensor: u64 length, bytes (<= RES_CONTENT_MAX);
 * for kv: u32 count (<= RES_KV_MAX_KEYS), then per pair u32 key length
 * (<= RES_KEY_MAX), key, u32 value length, value; keys and values together
 * at most RES_CONTENT_MAX. All integers big-endian; nothing follows.
 *
 * Invariants: an import either adds one complete entry or leaves the
 * registry and the data directory as they were.
 */
#include "res_action.h"

#include "res_entry.h"
#include "res_internal.h"
#include "res_op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOB_VERSION 1

/* A growable output buffer. */
struct out {
	uint8_t *data;
	size_t len, cap;
	int err;
};

static void out_add(struct out *o, const void *p, size_t n)
{
	if (o->err)
		return;
	if (n > RES_CONTENT_MAX + 8192u - o->len) {
		o->err = RES_ERR_LIMIT;
		return;
	}
	if (o->len + n > o->cap) {
		size_t cap = o->cap ? o->cap : 1024;
		uint8_t *nd;

		while (cap < o->len + n)
			cap *= 2;
		nd = realloc(o->data, cap);
		if (nd == NULL) {
			o->err = RES_ERR_NOMEM;
			return;
		}
		o->data = nd;
		o->cap = cap;
	}
	if (n > 0)
		memcpy(o->data + o->len, p, n);
	o->len += n;
}

static void out_u8(struct out *o, unsigned v)
{
	uint8_t b = (uint8_t)v;

	out_add(o, &b, 1);
}

static void out_u32(struct out *o, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	out_add(o, b, 4);
}

static void out_u64(struct out *o, uint64_t v)
{
	uint8_t b[8];

	res_u64_put(b, v);
	out_add(o, b, 8);
}

/* A bounded read cursor. */
struct cur {
	const uint8_t *p, *end;
};

static int cur_take(struct cur *c, size_t n, const uint8_t **out)
{
	if ((size_t)(c->end - c->p) < n)
		return RES_ERR_TRUNCATED;
	*out = c->p;
	c->p += n;
	return 0;
}

static int cur_u8(struct cur *c, unsigned *v)
{
	const uint8_t *p;
	int rc = cur_take(c, 1, &p);

	if (rc == 0)
		*v = p[0];
	return rc;
}

static int cur_u32(struct cur *c, uint32_t *v)
{
	const uint8_t *p;
	int rc = cur_take(c, 4, &p);

	if (rc == 0)
		*v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	return rc;
}

static int cur_u64(struct cur *c, uint64_t *v)
{
	const uint8_t *p;
	int rc = cur_take(c, 8, &p);

	if (rc == 0) {
		struct res_field f = {p, 8};

		res_u64_get(&f, v);
	}
	return rc;
}

static int export_pair(void *ud, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct out *o = ud;

	out_u32(o, (uint32_t)klen);
	out_add(o, k, klen);
	out_u32(o, (uint32_t)vlen);
	out_add(o, v, vlen);
	return o->err;
}

int res_export(struct res_registry *reg, const char *id, void **blob, size_t *blob_len)
{
	struct resi_entry *e = resi_find(reg, id);
	struct out o = {0};
	int rc;

	*blob = NULL;
	*blob_len = 0;
	if (e == NULL)
		return RES_ERR_NOTFOUND;
	if (e->forward)
		return RES_ERR_MOVED;
	if (e->attach == RES_ATT_FIXED)
		return RES_ERR_DENIED;
	out_add(&o, "RX", 2);
	out_u8(&o, BLOB_VERSION);
	out_u8(&o, e->kind);
	out_u8(&o, e->attach);
	out_u8(&o, (e->remote ? 1u : 0u) | (e->nocopy ? 2u : 0u));
	out_u8(&o, (unsigned)strlen(e->id));
	out_add(&o, e->id, strlen(e->id));
	out_u64(&o, e->max_size);
	out_u64(&o, e->transfer_limit);
	if (e->kind == RES_KIND_KV) {
		uint64_t size, count;

		rc = resi_kv_size(e->db, &size, &count);
		if (rc == 0 && (count > RES_KV_MAX_KEYS || size > RES_CONTENT_MAX))
			rc = RES_ERR_LIMIT;
		if (rc == 0) {
			out_u32(&o, (uint32_t)count);
			/* The count is read outside the walk: one thread owns the
			 * store, so nothing changes it in between. */
			rc = resi_kv_each(e->db, export_pair, &o);
		}
	} else {
		struct resi_bytes b;

		rc = resi_file_read(e->path, 0, UINT64_MAX, &b);
		if (rc == 0) {
			out_u64(&o, b.len);
			out_add(&o, b.data, b.len);
			free(b.data);
		}
	}
	if (rc == 0)
		rc = o.err;
	if (rc != 0) {
		free(o.data);
		return rc;
	}
	*blob = o.data;
	*blob_len = o.len;
	return 0;
}

/* The parsed header of a blob; content points into the blob. */
struct blob {
	enum res_kind kind;
	enum res_attach attach;
	unsigned remote, nocopy;
	char id[RES_ID_MAX];
	uint64_t max_size, transfer_limit;
	struct cur content;
};

static int blob_parse(const void *buf, size_t len, struct blob *b)
{
	struct cur c = {buf, (const uint8_t *)buf + len};
	const uint8_t *p;
	unsigned kind, attach, flags, idlen;
	int rc;

	if (len >= 1 && ((const uint8_t *)buf)[0] != 'R')
		return RES_ERR_MALFORMED;
	if (len >= 2 && ((const uint8_t *)buf)[1] != 'X')
		return RES_ERR_MALFORMED;
	if (len >= 3 && ((const uint8_t *)buf)[2] != BLOB_VERSION)
		return RES_ERR_VERSION;
	if ((rc = cur_take(&c, 3, &p)) != 0 || (rc = cur_u8(&c, &kind)) != 0 ||
	    (rc = cur_u8(&c, &attach)) != 0 || (rc = cur_u8(&c, &flags)) != 0 ||
	    (rc = cur_u8(&c, &idlen)) != 0)
		return rc;
	if (kind >= RES_NKINDS || attach >= RES_NATTACH || flags > 3 || idlen == 0 ||
	    idlen >= RES_ID_MAX)
		return RES_ERR_MALFORMED;
	if ((rc = cur_take(&c, idlen, &p)) != 0)
		return rc;
	memcpy(b->id, p, idlen);
	b->id[idlen] = '\0';
	if (!res_id_valid(b->id))
		return RES_ERR_MALFORMED;
	if ((rc = cur_u64(&c, &b->max_size)) != 0 || (rc = cur_u64(&c, &b->transfer_limit)) != 0)
		return rc;
	if (b->max_size > RES_CONTENT_MAX)
		return RES_ERR_MALFORMED;
	b->kind = (enum res_kind)kind;
	b->attach = (enum res_attach)attach;
	b->remote = flags & 1;
	b->nocopy = (flags >> 1) & 1;
	b->content = c;
	return 0;
}

/* Checks the whole kv content before anything is written, so that a bad
 * blob never leaves a half-filled store. */
static int kv_check(struct cur c)
{
	uint32_t count, klen, vlen;
	uint64_t total = 0;
	const uint8_t *p;
	int rc;

	if ((rc = cur_u32(&c, &count)) != 0)
		return rc;
	if (count > RES_KV_MAX_KEYS)
		return RES_ERR_LIMIT;
	for (uint32_t i = 0; i < count; i++) {
		if ((rc = cur_u32(&c, &klen)) != 0)
			return rc;
		if (klen > RES_KEY_MAX)
			return RES_ERR_LIMIT;
		if ((rc = cur_take(&c, klen, &p)) != 0 || (rc = cur_u32(&c, &vlen)) != 0)
			return rc;
		if (vlen > RES_CONTENT_MAX)
			return RES_ERR_LIMIT;
		if ((rc = cur_take(&c, vlen, &p)) != 0)
			return rc;
		total += (uint64_t)klen + vlen;
		if (total > RES_CONTENT_MAX)
			return RES_ERR_LIMIT;
	}
	return c.p == c.end ? 0 : RES_ERR_MALFORMED;
}

static int kv_fill(void *ud, sqlite3 *db)
{
	struct cur c = *(struct cur *)ud;
	uint32_t count = 0, klen = 0, vlen = 0;
	const uint8_t *k = NULL, *v = NULL;

	/* kv_check has vouched for the content; the checks stay anyway. */
	if (cur_u32(&c, &count) != 0)
		return RES_ERR_MALFORMED;
	for (uint32_t i = 0; i < count; i++) {
		if (cur_u32(&c, &klen) != 0 || cur_take(&c, klen, &k) != 0 ||
		    cur_u32(&c, &vlen) != 0 || cur_take(&c, vlen, &v) != 0)
			return RES_ERR_MALFORMED;
		if (resi_kv_put(db, k, klen, v, vlen) != 0)
			return RES_ERR_DB;
	}
	return 0;
}

static const char *const kind_ext[RES_NKINDS] = {"file", "db", "printer", "sensor"};

/* Writes the content to a fresh file or store at path. */
static int materialise(const struct blob *b, const char *path, sqlite3 **db)
{
	struct cur c = b->content;
	int rc;

	*db = NULL;
	if (b->kind == RES_KIND_KV) {
		rc = kv_check(c);
		if (rc != 0)
			return rc;
		rc = resi_kv_open(path, 1, db);
		if (rc == 0)
			rc = resi_kv_txn(*db, kv_fill, &c);
		return rc;
	} else {
		uint64_t n;
		const uint8_t *p;

		if ((rc = cur_u64(&c, &n)) != 0)
			return rc;
		if (n > RES_CONTENT_MAX)
			return RES_ERR_LIMIT;
		if ((rc = cur_take(&c, (size_t)n, &p)) != 0)
			return rc;
		if (c.p != c.end)
			return RES_ERR_MALFORMED;
		return resi_file_replace(path, p, (size_t)n);
	}
}

static void unlink_store(const char *path)
{
	char side[PATH_MAX + 8];

	unlink(path);
	snprintf(side, sizeof side, "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof side, "%s-shm", path);
	unlink(side);
}

int res_import(struct res_registry *reg, const void *blob, size_t blob_len, enum res_action how,
	       char id_out[RES_ID_MAX])
{
	struct blob b;
	struct resi_entry *e, *old = NULL;
	char id[RES_ID_MAX], path[PATH_MAX];
	sqlite3 *db = NULL;
	char *pathdup = NULL;
	int rc;

	if (reg == NULL || blob == NULL || (how != RES_ACT_MV && how != RES_ACT_CP))
		return RES_ERR_ARG;
	rc = blob_parse(blob, blob_len, &b);
	if (rc != 0)
		return rc;
	if (how == RES_ACT_MV) {
		old = resi_find(reg, b.id);
		if (old != NULL && !old->forward)
			return RES_ERR_EXISTS;
		resi_copy(id, sizeof id, b.id);
	} else {
		int found = 0;

		for (int i = 1; i < 100 && !found; i++) {
			char suffix[16];
			size_t blen = strlen(b.id);

			snprintf(suffix, sizeof suffix, i == 1 ? ".copy" : ".copy%d", i);
			if (blen + strlen(suffix) >= RES_ID_MAX)
				return RES_ERR_LIMIT;
			memcpy(id, b.id, blen);
			memcpy(id + blen, suffix, strlen(suffix) + 1);
			found = resi_find(reg, id) == NULL;
		}
		if (!found)
			return RES_ERR_EXISTS;
	}
	if ((size_t)snprintf(path, sizeof path, "%s/%s.%s", reg->dir, id, kind_ext[b.kind]) >=
	    sizeof path - 16)
		return RES_ERR_LIMIT;
	/* Leftovers from an earlier stay of the same identifier would mix
	 * into a store: start from nothing. */
	if (b.kind == RES_KIND_KV)
		unlink_store(path);
	rc = materialise(&b, path, &db);
	if (rc != 0)
		goto fail;
	pathdup = strdup(path);
	if (pathdup == NULL) {
		rc = RES_ERR_NOMEM;
		goto fail;
	}
	if (old != NULL) {
		/* The resource comes back to a host that forwards it: the
		 * forward entry becomes the real one again, keeping its place
		 * and its binders. */
		e = old;
	} else {
		e = resi_append(reg, id);
		if (e == NULL) {
			rc = RES_ERR_NOMEM;
			goto fail;
		}
	}
	e->kind = b.kind;
	e->attach = b.attach;
	e->path = pathdup;
	e->max_size = b.max_size;
	e->transfer_limit = b.transfer_limit;
	e->remote = b.remote;
	e->nocopy = b.nocopy;
	e->forward = 0;
	e->imported = 1;
	e->db = db;
	resi_copy(e->home, sizeof e->home, reg->host);
	resi_copy(id_out, RES_ID_MAX, id);
	return 0;
fail:
	free(pathdup);
	resi_kv_close(&db);
	if (b.kind == RES_KIND_KV)
		unlink_store(path);
	else
		unlink(path);
	return rc;
}

int res_move_commit(struct res_registry *reg, const char *id, const char *new_home)
{
	struct resi_entry *e = resi_find(reg, id);

	if (e == NULL)
		return RES_ERR_NOTFOUND;
	if (e->forward)
		return RES_ERR_MOVED;
	if (!res_id_valid(new_home) || strcmp(new_home, reg->host) == 0)
		return RES_ERR_ARG;
	resi_kv_close(&e->db);
	if (e->kind == RES_KIND_KV)
		unlink_store(e->path);
	else
		unlink(e->path);
	free(e->path);
	e->path = NULL;
	e->forward = 1;
	resi_copy(e->home, sizeof e->home, new_home);
	return 0;
}

int res_bind_resolve(struct res_registry *reg, const char *name, enum res_binding binding,
		     const char *ref, struct res_bind *out)
{
	struct resi_entry *e = NULL;

	memset(out, 0, sizeof *out);
	if (reg == NULL || name == NULL || strlen(name) >= RES_NAME_MAX ||
	    (unsigned)binding >= RES_NBINDINGS || ref == NULL)
		return RES_ERR_ARG;
	if (binding == RES_BIND_TYPE) {
		enum res_kind kind;
		char id[RES_ID_MAX];

		if (res_kind_parse(ref, &kind) != 0)
			return RES_ERR_ARG;
		if (res_registry_find_kind(reg, kind, NULL, id) != 0)
			return RES_ERR_NOTFOUND;
		e = resi_find(reg, id);
	} else {
		e = resi_find(reg, ref);
		if (e == NULL)
			return RES_ERR_NOTFOUND;
	}
	resi_copy(out->name, sizeof out->name, name);
	out->binding = (uint8_t)binding;
	out->kind = (uint8_t)e->kind;
	out->attach = (uint8_t)e->attach;
	out->action = RES_ACT_NONE;
	out->bound = 1;
	resi_copy(out->id, sizeof out->id, e->id);
	resi_copy(out->home, sizeof out->home, e->forward ? e->home : reg->host);
	return 0;
}

int res_policy_ctx_fill(struct res_registry *src, const struct res_bind *b,
			struct res_policy_ctx *ctx)
{
	struct resi_entry *e;

	memset(ctx, 0, sizeof *ctx);
	ctx->binding = (enum res_binding)b->binding;
	ctx->attach = (enum res_attach)b->attach;
	e = strcmp(b->home, src->host) == 0 ? resi_find(src, b->id) : NULL;
	if (e == NULL || e->forward) {
		ctx->not_local = 1;
		return 0;
	}
	ctx->attach = e->attach;
	ctx->transfer_limit = e->transfer_limit;
	ctx->other_binders = e->binders > 0 ? e->binders - 1 : 0;
	ctx->remote_denied = !e->remote;
	ctx->copy_denied = e->nocopy;
	return resi_entry_size(e, &ctx->size);
}
