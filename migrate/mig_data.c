/*
 * mig_data.c: plain data for agent messages and userdata payloads
 * (docs/state-format.md, "Plain data"): nil, booleans, numbers, strings and
 * tables of them, with shared references and cycles kept. No functions,
 * userdata, threads or metatables.
 *
 * Tables are declared where first met and their entries written when they
 * leave a queue, so neither side recurses. The decoder anchors everything
 * it makes in a Lua table, so the collector may run at any point.
 */
#include "mig_state_int.h"

#include <math.h>
#include <stdlib.h>

#define DATA_VERSION 1

struct dput {
	struct mig_buf *b;
	struct mig_pmap ids;  /* object -> id */
	uint32_t nid;
	Table **queue;
	size_t qlen, qcap;
};

static int dput_str(struct mig_buf *b, const char *s, size_t len)
{
	int rc = mig_buf_varint(b, len);

	return rc ? rc : mig_buf_put(b, s, len);
}

static int dput_value(struct dput *d, const TValue *v)
{
	struct mig_buf *b = d->b;
	uint32_t *r;
	int rc;

	switch (ttypetag(v)) {
	case LUA_VNIL:
	case LUA_VEMPTY:
	case LUA_VABSTKEY: return mig_buf_u8(b, MIG_T_NIL);
	case LUA_VFALSE: return mig_buf_u8(b, MIG_T_FALSE);
	case LUA_VTRUE: return mig_buf_u8(b, MIG_T_TRUE);
	case LUA_VNUMINT:
		if ((rc = mig_buf_u8(b, MIG_T_INT)))
			return rc;
		return mig_buf_svarint(b, (int64_t)ivalue(v));
	case LUA_VNUMFLT: {
		uint64_t bits;
		lua_Number f = fltvalue(v);

		memcpy(&bits, &f, sizeof bits);
		if ((rc = mig_buf_u8(b, MIG_T_FLT)))
			return rc;
		return mig_buf_u64le(b, bits);
	}
	case LUA_VSHRSTR:
	case LUA_VLNGSTR:
	case LUA_VTABLE:
		break;
	default:
		return MIG_ERR_UNPERSISTABLE;
	}
	if ((r = mig_pmap_get(&d->ids, gcvalue(v))) != NULL) {
		if ((rc = mig_buf_u8(b, MIG_T_REF)))
			return rc;
		return mig_buf_varint(b, *r);
	}
	if (mig_pmap_put(&d->ids, gcvalue(v), d->nid++) != 0)
		return MIG_ERR_NOMEM;
	if (ttisstring(v)) {
		if ((rc = mig_buf_u8(b, MIG_T_STR)))
			return rc;
		return dput_str(b, getstr(tsvalue(v)), tsslen(tsvalue(v)));
	}
	if (d->qlen == d->qcap) {
		size_t nc = d->qcap ? d->qcap * 2 : 16;
		Table **nq = realloc(d->queue, nc * sizeof *nq);

		if (nq == NULL)
			return MIG_ERR_NOMEM;
		d->queue = nq;
		d->qcap = nc;
	}
	d->queue[d->qlen++] = hvalue(v);
	return mig_buf_u8(b, MIG_T_TABLE);
}

static int dput_table(struct dput *d, Table *t)
{
	unsigned asize = luaH_realasize(t);
	unsigned nsize = isdummy(t) ? 0 : (unsigned)sizenode(t);
	uint64_t count = 0;
	int rc;

	for (unsigned i = 0; i < asize; i++)
		if (!isempty(&t->array[i]))
			count++;
	for (unsigned i = 0; i < nsize; i++)
		if (!isempty(gval(gnode(t, i))))
			count++;
	if ((rc = mig_buf_varint(d->b, count)))
		return rc;
	for (unsigned i = 0; i < asize; i++) {
		TValue k;

		if (isempty(&t->array[i]))
			continue;
		setivalue(&k, (lua_Integer)i + 1);
		if ((rc = dput_value(d, &k)) || (rc = dput_value(d, &t->array[i])))
			return rc;
	}
	for (unsigned i = 0; i < nsize; i++) {
		Node *nd = gnode(t, i);
		TValue k;

		if (isempty(gval(nd)))
			continue;
		k.value_ = nd->u.key_val;
		k.tt_ = nd->u.key_tt;
		if ((rc = dput_value(d, &k)) || (rc = dput_value(d, gval(nd))))
			return rc;
	}
	return 0;
}

int mig_data_put(lua_State *L, int idx, struct mig_buf *out, struct mig_error *err)
{
	struct dput d;
	size_t start = out->len;
	int rc;

	memset(&d, 0, sizeof d);
	d.b = out;
	idx = lua_absindex(L, idx);
	rc = dput_value(&d, s2v(L->ci->func.p + idx));
	for (size_t q = 0; rc == 0 && q < d.qlen; q++)
		rc = dput_table(&d, d.queue[q]);
	mig_pmap_free(&d.ids);
	free(d.queue);
	if (rc != 0) {
		out->len = start;
		if (rc == MIG_ERR_UNPERSISTABLE)
			return mig_err_set(err, rc, "plain data holds a function, userdata or thread");
		return mig_err_set(err, rc, NULL);
	}
	return 0;
}

int mig_data_encode(lua_State *L, int idx, struct mig_buf *out, struct mig_error *err)
{
	size_t start;
	int rc;

	if (err != NULL) {
		err->code = 0;
		err->msg[0] = '\0';
	}
	if (out == NULL || lua_type(L, idx) == LUA_TNONE)
		return mig_err_set(err, MIG_ERR_ARG, "bad arguments");
	start = out->len;
	if ((rc = mig_buf_put(out, MIG_DATA_MAGIC, 4)) || (rc = mig_buf_u8(out, DATA_VERSION))) {
		out->len = start;
		return mig_err_set(err, rc, NULL);
	}
	rc = mig_data_put(L, idx, out, err);
	if (rc != 0)
		out->len = start;
	return rc;
}

/* ------------------------------------------------------------------ */
/* Decoding                                                            */
/* ------------------------------------------------------------------ */

struct dget {
	lua_State *L;
	struct mig_rd *r;
	struct mig_error *err;
	int objs;          /* stack index: id -> object */
	lua_Integer nid;
	int queue;         /* stack index: tables whose entries are pending */
	lua_Integer qhead, qlen;
};

static int dfail(struct dget *d, int rc, const char *what)
{
	if (rc == MIG_ERR_TRUNCATED)
		return mig_err_set(d->err, rc, "data ends early");
	return mig_err_set(d->err, rc, "malformed data: %s", what);
}

/* Pushes one value. */
static int dget_value(struct dget *d)
{
	lua_State *L = d->L;
	unsigned tag;
	int rc;

	if ((rc = mig_rd_u8(d->r, &tag)))
		return dfail(d, rc, "tag");
	switch (tag) {
	case MIG_T_NIL: lua_pushnil(L); return 0;
	case MIG_T_FALSE: lua_pushboolean(L, 0); return 0;
	case MIG_T_TRUE: lua_pushboolean(L, 1); return 0;
	case MIG_T_INT: {
		int64_t v;

		if ((rc = mig_rd_svarint(d->r, &v)))
			return dfail(d, rc, "integer");
		lua_pushinteger(L, (lua_Integer)v);
		return 0;
	}
	case MIG_T_FLT: {
		uint64_t bits;
		double f;

		if ((rc = mig_rd_u64le(d->r, &bits)))
			return dfail(d, rc, "float");
		memcpy(&f, &bits, sizeof f);
		lua_pushnumber(L, f);
		return 0;
	}
	case MIG_T_REF: {
		uint64_t id;

		if ((rc = mig_rd_varint(d->r, &id)))
			return dfail(d, rc, "reference");
		if (id >= (uint64_t)d->nid)
			return dfail(d, MIG_ERR_MALFORMED, "reference to an undefined object");
		lua_rawgeti(L, d->objs, (lua_Integer)id + 1);
		return 0;
	}
	case MIG_T_STR: {
		uint64_t n;
		const uint8_t *p;

		if ((rc = mig_rd_varint(d->r, &n)))
			return dfail(d, rc, "string length");
		if (n > MIG_MAX_STRING)
			return mig_err_set(d->err, MIG_ERR_LIMIT, "string too long");
		if ((rc = mig_rd_bytes(d->r, (size_t)n, &p)))
			return dfail(d, rc, "string");
		lua_pushlstring(L, (const char *)p, (size_t)n);
		break;
	}
	case MIG_T_TABLE:
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_rawseti(L, d->queue, ++d->qlen);
		break;
	default:
		return dfail(d, MIG_ERR_MALFORMED, "unknown tag");
	}
	lua_pushvalue(L, -1);
	lua_rawseti(L, d->objs, ++d->nid);
	return 0;
}

static int dget_main(lua_State *L)
{
	struct dget *d = lua_touserdata(L, 1);
	int rc;

	luaL_checkstack(L, 8, NULL);
	lua_newtable(L);
	d->objs = lua_gettop(L);
	lua_newtable(L);
	d->queue = lua_gettop(L);
	if ((rc = dget_value(d)))
		goto fail;
	while (d->qhead < d->qlen) {
		uint64_t n;

		lua_rawgeti(L, d->queue, ++d->qhead);
		if ((rc = mig_rd_varint(d->r, &n))) {
			rc = dfail(d, rc, "entry count");
			goto fail;
		}
		if (n > mig_rd_left(d->r) / 2) {
			rc = dfail(d, MIG_ERR_TRUNCATED, "entries");
			goto fail;
		}
		for (uint64_t i = 0; i < n; i++) {
			if ((rc = dget_value(d)) || (rc = dget_value(d)))
				goto fail;
			if (lua_isnil(L, -2) || (lua_type(L, -2) == LUA_TNUMBER && !lua_isinteger(L, -2) &&
						 isnan(lua_tonumber(L, -2)))) {
				rc = dfail(d, MIG_ERR_MALFORMED, "nil or NaN key");
				goto fail;
			}
			lua_rawset(L, -3);
		}
		lua_pop(L, 1);
	}
	lua_pushinteger(L, 0);
	lua_pushvalue(L, 4);
	return 2;
fail:
	lua_pushinteger(L, rc);
	return 1;
}

int mig_data_get(lua_State *L, struct mig_rd *r, struct mig_error *err)
{
	struct dget d;
	int status, rc;

	memset(&d, 0, sizeof d);
	d.L = L;
	d.r = r;
	d.err = err;
	if (!lua_checkstack(L, 4))
		return mig_err_set(err, MIG_ERR_NOMEM, NULL);
	lua_pushcfunction(L, dget_main);
	lua_pushlightuserdata(L, &d);
	status = lua_pcall(L, 1, 2, 0);
	if (status != LUA_OK) {
		rc = status == LUA_ERRMEM ? mig_err_set(err, MIG_ERR_NOMEM, NULL)
					  : mig_err_set(err, MIG_ERR_LUA, "%s", lua_tostring(L, -1));
		lua_pop(L, 1);
		return rc;
	}
	rc = (int)lua_tointeger(L, -2);
	if (rc != 0) {
		lua_pop(L, 2);
		return rc;
	}
	lua_remove(L, -2);
	return 0;
}

int mig_data_decode(lua_State *L, const void *buf, size_t len, struct mig_error *err)
{
	struct mig_rd r;
	const uint8_t *p;
	unsigned v;
	int rc;

	if (err != NULL) {
		err->code = 0;
		err->msg[0] = '\0';
	}
	if (buf == NULL && len > 0)
		return mig_err_set(err, MIG_ERR_ARG, "bad arguments");
	r.p = buf;
	r.end = r.p + len;
	if (len == 0)
		return mig_err_set(err, MIG_ERR_TRUNCATED, "data ends early");
	if (len < 4)
		return mig_err_set(err, memcmp(buf, MIG_DATA_MAGIC, len) == 0 ? MIG_ERR_TRUNCATED
									     : MIG_ERR_MALFORMED,
				   "not plain data");
	if (mig_rd_bytes(&r, 4, &p) != 0 || memcmp(p, MIG_DATA_MAGIC, 4) != 0)
		return mig_err_set(err, MIG_ERR_MALFORMED, "not plain data");
	if ((rc = mig_rd_u8(&r, &v)))
		return mig_err_set(err, rc, "data ends early");
	if (v != DATA_VERSION)
		return mig_err_set(err, MIG_ERR_VERSION, "plain data version %u", v);
	if ((rc = mig_data_get(L, &r, err)))
		return rc;
	if (r.p != r.end) {
		lua_pop(L, 1);
		return mig_err_set(err, MIG_ERR_MALFORMED, "bytes after the value");
	}
	return 0;
}
