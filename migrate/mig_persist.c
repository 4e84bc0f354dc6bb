/*
 * mig_persist.c: writes a value and everything reachable from it in the
 * execution-state format (docs/state-format.md).
 *
 * Shape of the work: a value is written inline; an object with contents
 * (table, closure, coroutine) is only declared where it is first met and
 * queued; its body is written when it leaves the queue. So nothing recurses:
 * the queue is the work stack, and chains of any depth cost no C stack.
 *
 * Invariants:
 * - L is not modified (the collector is stopped for the duration and its
 *   settings put back; nothing is allocated in L except by userdata hooks).
 * - Dead or removed table keys are never dereferenced: they are looked up
 *   by address at the end, and bound only if the object was written.
 * - Every Lua error (memory, hooks) is caught and turned into a code.
 */
#include "mig_state_int.h"

#include <ldebug.h>
#include <ldo.h>
#include <lopcodes.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define NOPARENT UINT32_MAX

/* Edge kinds, for the path of an unpersistable value. */
enum edge {
	EK_ROOT,
	EK_ARRAY,
	EK_NODEKEY,
	EK_NODEVAL,
	EK_META,
	EK_UPVAL,
	EK_STACK,
	EK_ENTRYKEY,
	EK_ENTRYVAL,
	EK_CUPVAL,
	EK_UDATA,
	EK_OVKEY,
};
#define EDGE(k, i) (((uint32_t)(k) << 28) | ((uint32_t)(i) & 0x0fffffffu))

struct pctx {
	lua_State *L;
	struct mig_buf *b;
	struct mig_error *err;
	struct mig_envc *c;
	int env;        /* stack index of the environment table */
	int protoidx;   /* stack index: Proto* -> index */
	int protohash;  /* stack index: Proto* -> hash */
	int sources;    /* stack index: hash -> source record */
	int overlays;   /* stack index: table -> overlay */
	int udhooks;    /* stack index: array of {persist, restore, tname} */

	struct mig_pmap ids;    /* object (or C function) -> id */
	struct mig_pmap perms;  /* permanent object (or C function) -> index */
	TString **permname;     /* canonical name of each permanent */
	uint32_t *permref;      /* 0 = not written yet, else its perm ref */
	uint32_t nperm, npermw;
	struct mig_pmap protos; /* Proto* -> proto ref */
	uint32_t nprotow;
	struct mig_pmap srcs;   /* hash TString* -> source ref */
	uint32_t nsrcw;
	struct mig_pmap udmt;   /* metatable -> index in udhooks (1-based) */
	struct mig_pmap ovset;  /* tables with an overlay */
	struct mig_pmap ovkeys; /* keys of the overlay being written */
	struct mig_pmap uvowner;/* open UpVal* -> thread (index in uvthr) */
	lua_State **uvthr;
	uint32_t nuvthr;
	int uvowner_built;

	GCObject **byid;        /* object of each id (NULL for upvalues) */
	uint32_t *parent;       /* id whose body first referenced it */
	uint32_t *edge;         /* how */
	uint32_t nid, capid;
	uint32_t *queue;        /* ids whose bodies are still to write */
	size_t qhead, qlen, qcap;
	const void **pend;      /* address of each pending (removed) key */
	size_t npend, cappend;

	uint32_t owner;         /* id whose body is being written */
	uint32_t cur;           /* edge being written */
};

/* ------------------------------------------------------------------ */
/* Paths for error messages                                            */
/* ------------------------------------------------------------------ */

static void describe_edge(struct pctx *x, uint32_t owner, uint32_t e, char *out, size_t n)
{
	uint32_t k = e >> 28, i = e & 0x0fffffffu;

	switch (k) {
	case EK_ROOT: snprintf(out, n, "root"); break;
	case EK_ARRAY: snprintf(out, n, "[%u]", i + 1); break;
	case EK_NODEKEY:
	case EK_NODEVAL: {
		Table *t = owner != NOPARENT ? gco2t(x->byid[owner]) : NULL;
		Node *nd = t && !isdummy(t) && i < (uint32_t)sizenode(t) ? gnode(t, i) : NULL;
		const char *pre = k == EK_NODEKEY ? "key of " : "";

		if (nd && keyisshrstr(nd))
			snprintf(out, n, ".%sfield '%.40s'", pre, getstr(keystrval(nd)));
		else if (nd && keyisinteger(nd))
			snprintf(out, n, ".%s[%lld]", pre, (long long)keyival(nd));
		else
			snprintf(out, n, ".%snode[%u]", pre, i);
		break;
	}
	case EK_META: snprintf(out, n, ".metatable"); break;
	case EK_UPVAL: snprintf(out, n, ".upvalue[%u]", i + 1); break;
	case EK_CUPVAL: snprintf(out, n, ".cupvalue[%u]", i + 1); break;
	case EK_STACK: snprintf(out, n, ".stack[%u]", i); break;
	case EK_ENTRYKEY: snprintf(out, n, ".key[%u]", i + 1); break;
	case EK_ENTRYVAL: snprintf(out, n, ".entry[%u]", i + 1); break;
	case EK_UDATA: snprintf(out, n, ".payload"); break;
	case EK_OVKEY: snprintf(out, n, ".orderkey[%u]", i + 1); break;
	default: snprintf(out, n, ".?"); break;
	}
}

/* Fails with code and "<what> at <path>", the path from the root to the
 * value being written. */
static int fail_path(struct pctx *x, int code, const char *what)
{
	char segs[12][64];
	int nseg = 0, more = 0;
	uint32_t owner = x->owner, e = x->cur;
	char path[200];
	size_t len = 0;

	for (;;) {
		if (nseg == 12) {
			more = 1;
			break;
		}
		describe_edge(x, owner, e, segs[nseg++], sizeof segs[0]);
		if (owner == NOPARENT)
			break;
		e = x->edge[owner];
		owner = x->parent[owner];
	}
	path[0] = '\0';
	if (more)
		len = (size_t)snprintf(path, sizeof path, "...");
	for (int i = nseg - 1; i >= 0 && len < sizeof path; i--)
		len += (size_t)snprintf(path + len, sizeof path - len, "%s", segs[i]);
	return mig_err_set(x->err, code, "%s at %s", what, path);
}

/* ------------------------------------------------------------------ */
/* Ids and the queue                                                   */
/* ------------------------------------------------------------------ */

static int new_id(struct pctx *x, GCObject *o, const void *key, int queue)
{
	uint32_t id = x->nid;

	if (id == x->capid) {
		uint32_t nc = x->capid ? x->capid * 2 : 1024;
		GCObject **nb = realloc(x->byid, nc * sizeof *nb);
		uint32_t *np, *ne;

		if (nb == NULL)
			return MIG_ERR_NOMEM;
		x->byid = nb;
		np = realloc(x->parent, nc * sizeof *np);
		if (np == NULL)
			return MIG_ERR_NOMEM;
		x->parent = np;
		ne = realloc(x->edge, nc * sizeof *ne);
		if (ne == NULL)
			return MIG_ERR_NOMEM;
		x->edge = ne;
		x->capid = nc;
	}
	if (mig_pmap_add(&x->ids, key, id) != 0)
		return MIG_ERR_NOMEM;
	x->byid[id] = o;
	x->parent[id] = x->owner;
	x->edge[id] = x->cur;
	x->nid++;
	if (queue) {
		if (x->qlen == x->qcap) {
			size_t nc = x->qcap ? x->qcap * 2 : 1024;
			uint32_t *nq = realloc(x->queue, nc * sizeof *nq);

			if (nq == NULL)
				return MIG_ERR_NOMEM;
			x->queue = nq;
			x->qcap = nc;
		}
		x->queue[x->qlen++] = id;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Values                                                              */
/* ------------------------------------------------------------------ */

static int put_str_bytes(struct mig_buf *b, const char *s, size_t len)
{
	int rc = mig_buf_varint(b, len);

	return rc ? rc : mig_buf_put(b, s, len);
}

static int put_float(struct mig_buf *b, lua_Number d)
{
	uint64_t bits;
	int rc;

	/* Most floats agents hold are small multiples of a power of two
	 * (0.5, 2.25, 1e6): write those as an integer and a shift. */
	if (isfinite(d) && !(d == 0 && signbit(d))) {
		for (int s = 0; s <= 16; s++) {
			double m = ldexp(d, s);

			if (fabs(m) < 9007199254740992.0 && m == floor(m)) {
				if ((rc = mig_buf_u8(b, MIG_T_FLTQ)) || (rc = mig_buf_u8(b, (unsigned)s)))
					return rc;
				return mig_buf_svarint(b, (int64_t)m);
			}
		}
	}
	memcpy(&bits, &d, sizeof bits);
	if ((rc = mig_buf_u8(b, MIG_T_FLT)))
		return rc;
	return mig_buf_u64le(b, bits);
}

static int put_perm(struct pctx *x, uint32_t pi)
{
	int rc;

	if ((rc = mig_buf_u8(x->b, MIG_T_PERM)))
		return rc;
	if (x->permref[pi] != 0)
		return mig_buf_varint(x->b, x->permref[pi]);
	x->permref[pi] = ++x->npermw;
	if ((rc = mig_buf_varint(x->b, 0)))
		return rc;
	return put_str_bytes(x->b, getstr(x->permname[pi]), tsslen(x->permname[pi]));
}

/* Pushes the TValue on L's stack (room was checked by the caller). */
static void push_tv(lua_State *L, const TValue *v)
{
	setobj2s(L, L->top.p, v);
	L->top.p++;
}

static int put_source(struct pctx *x, TString *hash)
{
	uint32_t *r = mig_pmap_get(&x->srcs, hash);
	lua_State *L = x->L;
	int rc, ext;
	size_t tl, nl;
	const char *text, *name;

	if (r != NULL)
		return mig_buf_varint(x->b, *r);
	if ((rc = mig_pmap_put(&x->srcs, hash, ++x->nsrcw)))
		return rc;
	if ((rc = mig_buf_varint(x->b, 0)) || (rc = mig_buf_put(x->b, getstr(hash), MIG_HASH_LEN)))
		return rc;
	lua_pushlstring(L, getstr(hash), tsslen(hash));
	lua_rawget(L, x->sources);
	lua_rawgeti(L, -1, MIG_SRC_EXT);
	ext = lua_toboolean(L, -1);
	lua_rawgeti(L, -2, MIG_SRC_TEXT);
	lua_rawgeti(L, -3, MIG_SRC_NAME);
	text = lua_tolstring(L, -2, &tl);
	name = lua_tolstring(L, -1, &nl);
	if (text == NULL || name == NULL)
		rc = MIG_ERR_NOSOURCE;
	else if (!(rc = mig_buf_u8(x->b, ext ? 1 : 0)) && !ext) {
		if (!(rc = put_str_bytes(x->b, name, nl)))
			rc = put_str_bytes(x->b, text, tl);
	}
	lua_pop(L, 4);
	return rc;
}

static int put_proto(struct pctx *x, Proto *p)
{
	uint32_t *r = mig_pmap_get(&x->protos, p);
	lua_State *L = x->L;
	struct mig_buf *b = x->b;
	lua_Integer idx;
	TString *hash;
	int rc;

	if (r != NULL)
		return mig_buf_varint(b, *r);
	lua_rawgetp(L, x->protoidx, p);
	lua_rawgetp(L, x->protohash, p);
	if (!lua_isinteger(L, -2) || lua_type(L, -1) != LUA_TSTRING) {
		lua_pop(L, 2);
		return fail_path(x, MIG_ERR_NOSOURCE,
				 "function whose source is not registered (not made by load or mig_source_load)");
	}
	idx = lua_tointeger(L, -2);
	hash = tsvalue(s2v(L->top.p - 1));
	lua_pop(L, 2); /* the hash stays alive in the registry */
	if ((rc = mig_pmap_put(&x->protos, p, ++x->nprotow)))
		return rc;
	if ((rc = mig_buf_varint(b, 0)) || (rc = put_source(x, hash)) ||
	    (rc = mig_buf_varint(b, (uint64_t)idx)))
		return rc;
	if ((rc = mig_buf_u8(b, p->numparams)) || (rc = mig_buf_u8(b, p->is_vararg)) ||
	    (rc = mig_buf_u8(b, p->maxstacksize)) || (rc = mig_buf_varint(b, (uint64_t)p->sizecode)) ||
	    (rc = mig_buf_varint(b, (uint64_t)p->sizeupvalues)))
		return rc;
	for (int i = 0; i < p->sizeupvalues; i++) {
		if ((rc = mig_buf_u8(b, p->upvalues[i].instack)) ||
		    (rc = mig_buf_u8(b, p->upvalues[i].idx)) ||
		    (rc = mig_buf_u8(b, p->upvalues[i].kind)))
			return rc;
	}
	if ((rc = mig_buf_varint(b, (uint64_t)p->sizep)))
		return rc;
	return mig_buf_u64le(b, mig_proto_fingerprint(p));
}

static int put_udata(struct pctx *x, const TValue *v)
{
	lua_State *L = x->L;
	Udata *u = uvalue(v);
	uint32_t *hi = u->metatable ? mig_pmap_get(&x->udmt, u->metatable) : NULL;
	size_t tl;
	const char *tname;
	int rc;

	if (hi == NULL)
		return fail_path(x, MIG_ERR_UNPERSISTABLE, "userdata of an unregistered type");
	if ((rc = new_id(x, obj2gco(u), u, 0)))
		return rc;
	lua_rawgeti(L, x->udhooks, (lua_Integer)*hi);
	lua_rawgeti(L, -1, 3);
	tname = lua_tolstring(L, -1, &tl);
	if ((rc = mig_buf_u8(x->b, MIG_T_UDATA)) || (rc = put_str_bytes(x->b, tname, tl))) {
		lua_pop(L, 2);
		return rc;
	}
	lua_pop(L, 1);
	lua_rawgeti(L, -1, 1);
	push_tv(L, v);
	lua_call(L, 1, 1);
	rc = mig_data_put(L, -1, x->b, NULL);
	lua_pop(L, 2);
	if (rc != 0)
		return fail_path(x, rc == MIG_ERR_NOMEM ? rc : MIG_ERR_UNPERSISTABLE,
				 "userdata whose persist hook gave a value that is not plain data");
	return 0;
}

static int check_thread(struct pctx *x, lua_State *th)
{
	if (th == x->L)
		return fail_path(x, MIG_ERR_BUSY, "the running coroutine");
	if (th == G(x->L)->mainthread)
		return fail_path(x, MIG_ERR_UNPERSISTABLE, "the main thread");
	if (th->status == LUA_OK && th->ci != &th->base_ci)
		return fail_path(x, MIG_ERR_BUSY, "a running or normal coroutine");
	return 0;
}

static int put_value(struct pctx *x, const TValue *v)
{
	struct mig_buf *b = x->b;
	uint32_t *r;
	int rc;

	switch (ttypetag(v)) {
	case LUA_VNIL: return mig_buf_u8(b, MIG_T_NIL);
	case LUA_VEMPTY:
	case LUA_VABSTKEY: return mig_buf_u8(b, MIG_T_EMPTY);
	case LUA_VFALSE: return mig_buf_u8(b, MIG_T_FALSE);
	case LUA_VTRUE: return mig_buf_u8(b, MIG_T_TRUE);
	case LUA_VNUMINT:
		if ((rc = mig_buf_u8(b, MIG_T_INT)))
			return rc;
		return mig_buf_svarint(b, (int64_t)ivalue(v));
	case LUA_VNUMFLT: return put_float(b, fltvalue(v));
	case LUA_VSHRSTR:
	case LUA_VLNGSTR: {
		TString *s = tsvalue(v);

		if ((r = mig_pmap_get(&x->ids, s)) != NULL) {
			if ((rc = mig_buf_u8(b, MIG_T_REF)))
				return rc;
			return mig_buf_varint(b, *r);
		}
		if ((rc = new_id(x, obj2gco(s), s, 0)) || (rc = mig_buf_u8(b, MIG_T_STR)))
			return rc;
		return put_str_bytes(b, getstr(s), tsslen(s));
	}
	case LUA_VLIGHTUSERDATA:
		return fail_path(x, MIG_ERR_UNPERSISTABLE, "light userdata");
	case LUA_VLCF: {
		lua_CFunction f = fvalue(v);
		int ci;

		if ((r = mig_pmap_get(&x->perms, (const void *)f)) != NULL)
			return put_perm(x, *r);
		ci = mig_cfn_find_f(x->c, f);
		if (ci < 0)
			return fail_path(x, MIG_ERR_UNPERSISTABLE, "C function that is not a permanent");
		if ((rc = mig_buf_u8(b, MIG_T_LCF)))
			return rc;
		return put_str_bytes(b, x->c->cfn[ci].name, strlen(x->c->cfn[ci].name));
	}
	default:
		break;
	}

	/* A collectable object with identity. */
	{
		GCObject *o = gcvalue(v);

		if ((r = mig_pmap_get(&x->perms, o)) != NULL)
			return put_perm(x, *r);
		if ((r = mig_pmap_get(&x->ids, o)) != NULL) {
			if ((rc = mig_buf_u8(b, MIG_T_REF)))
				return rc;
			return mig_buf_varint(b, *r);
		}
		switch (ttypetag(v)) {
		case LUA_VTABLE:
			if ((rc = new_id(x, o, o, 1)))
				return rc;
			return mig_buf_u8(b, MIG_T_TABLE);
		case LUA_VLCL:
			if ((rc = new_id(x, o, o, 1)) || (rc = mig_buf_u8(b, MIG_T_LCL)))
				return rc;
			return put_proto(x, gco2lcl(o)->p);
		case LUA_VCCL: {
			CClosure *cl = gco2ccl(o);
			int ci = mig_cfn_find_f(x->c, cl->f);

			if (ci < 0)
				return fail_path(x, MIG_ERR_UNPERSISTABLE,
						 "C closure that is neither a permanent nor of a known C function");
			if ((rc = new_id(x, o, o, 1)) || (rc = mig_buf_u8(b, MIG_T_CCL)) ||
			    (rc = put_str_bytes(b, x->c->cfn[ci].name, strlen(x->c->cfn[ci].name))))
				return rc;
			return mig_buf_u8(b, cl->nupvalues);
		}
		case LUA_VUSERDATA:
			return put_udata(x, v);
		case LUA_VTHREAD:
			if ((rc = check_thread(x, gco2th(o))))
				return rc;
			if ((rc = new_id(x, o, o, 1)))
				return rc;
			return mig_buf_u8(b, MIG_T_THREAD);
		default:
			return fail_path(x, MIG_ERR_UNPERSISTABLE, "value of unknown type");
		}
	}
}

/* ------------------------------------------------------------------ */
/* Table bodies                                                        */
/* ------------------------------------------------------------------ */

/* Keys whose place in a table depends on their address. */
static int key_by_address(int tt)
{
	switch (tt) {
	case LUA_VNIL:
	case LUA_VNUMINT:
	case LUA_VNUMFLT:
	case ctb(LUA_VSHRSTR):
	case ctb(LUA_VLNGSTR):
	case LUA_VFALSE:
	case LUA_VTRUE:
	case LUA_TDEADKEY:
		return 0;
	default:
		return 1;
	}
}

static int add_pending(struct pctx *x, const void *ptr)
{
	if (x->npend == x->cappend) {
		size_t nc = x->cappend ? x->cappend * 2 : 64;
		const void **np = realloc(x->pend, nc * sizeof *np);

		if (np == NULL)
			return MIG_ERR_NOMEM;
		x->pend = np;
		x->cappend = nc;
	}
	x->pend[x->npend++] = ptr;
	return 0;
}

/* A removed key: written as pending and bound at the end if its object
 * was written by then. */
static int put_pending(struct pctx *x, const Node *n)
{
	int rc;

	if ((rc = mig_buf_u8(x->b, MIG_T_NODE_PENDING)))
		return rc;
	return add_pending(x, gcvalueraw(keyval(n)));
}

static int put_node_key(struct pctx *x, const Node *n)
{
	TValue k;

	k.value_ = n->u.key_val;
	k.tt_ = n->u.key_tt;
	return put_value(x, &k);
}

static int put_ordered_entries(struct pctx *x, Table *t, int ovidx)
{
	lua_State *L = x->L;
	unsigned nsize = isdummy(t) ? 0 : (unsigned)sizenode(t);
	size_t count = 0, countpos;
	uint32_t j = 0;
	int rc, list = 0, idx = 0;
	lua_Integer n = 0;
	uint8_t pad[5] = { 0x80, 0x80, 0x80, 0x80, 0x00 };

	/* The count is patched in place: a fixed 5-byte varint. */
	countpos = x->b->len;
	if ((rc = mig_buf_put(x->b, pad, 5)))
		return rc;
	mig_pmap_free(&x->ovkeys);
	if (ovidx) {
		lua_rawgeti(L, ovidx, MIG_OV_LIST);
		lua_rawgeti(L, ovidx, MIG_OV_IDX);
		lua_rawgeti(L, ovidx, MIG_OV_N);
		list = lua_gettop(L) - 2;
		idx = list + 1;
		n = lua_tointeger(L, -1);
		lua_pop(L, 1);
		for (lua_Integer i = 1; i <= n; i++) {
			const TValue *val;

			lua_rawgeti(L, list, i);
			if (iscollectable(s2v(L->top.p - 1)) &&
			    mig_pmap_put(&x->ovkeys, gcvalue(s2v(L->top.p - 1)), 1) != 0)
				return MIG_ERR_NOMEM;
			x->cur = EDGE(EK_OVKEY, j);
			if ((rc = put_value(x, s2v(L->top.p - 1))))
				return rc;
			val = luaH_get(t, s2v(L->top.p - 1));
			lua_pop(L, 1);
			x->cur = EDGE(EK_ENTRYVAL, j);
			if ((rc = put_value(x, val)))
				return rc;
			count++;
			j++;
		}
	}
	for (unsigned i = 0; i < nsize; i++) {
		Node *nd = gnode(t, i);

		if (keyisnil(nd))
			continue;
		if (ovidx) {
			int in;

			/* Keys the overlay already lists were written above. A
			 * dead key is compared by address only (it must not be
			 * dereferenced); the overlay holds its keys, so a
			 * listed key is never freed and its address is exact. */
			if (keyisdead(nd) || (isempty(gval(nd)) && keyiscollectable(nd)))
				in = mig_pmap_get(&x->ovkeys, gcvalueraw(keyval(nd))) != NULL;
			else {
				luaL_checkstack(L, 2, NULL);
				getnodekey(L, s2v(L->top.p), nd);
				L->top.p++;
				in = lua_rawget(L, idx) != LUA_TNIL;
				lua_pop(L, 1);
			}
			if (in)
				continue;
		}
		if (isempty(gval(nd)) && (keyiscollectable(nd) || keyisdead(nd))) {
			if ((rc = put_pending(x, nd)))
				return rc;
			if ((rc = mig_buf_u8(x->b, ttisnil(gval(nd)) && ttypetag(gval(nd)) == LUA_VNIL ?
						       MIG_T_NIL : MIG_T_EMPTY)))
				return rc;
		} else {
			x->cur = EDGE(EK_ENTRYKEY, j);
			if ((rc = put_node_key(x, nd)))
				return rc;
			x->cur = EDGE(EK_ENTRYVAL, j);
			if ((rc = put_value(x, gval(nd))))
				return rc;
		}
		count++;
		j++;
	}
	if (ovidx)
		lua_pop(L, 2);
	if (count >= (1u << 28))
		return mig_err_set(x->err, MIG_ERR_LIMIT, "table too large");
	for (int i = 0; i < 5; i++)
		x->b->data[countpos + i] = (uint8_t)(((count >> (7 * i)) & 0x7f) | (i < 4 ? 0x80 : 0));
	return 0;
}

static int put_table_body(struct pctx *x, Table *t)
{
	lua_State *L = x->L;
	struct mig_buf *b = x->b;
	unsigned asize = luaH_realasize(t);
	unsigned nsize = isdummy(t) ? 0 : (unsigned)sizenode(t);
	unsigned flags = 0;
	int ordered = mig_pmap_get(&x->ovset, t) != NULL;
	int rc, ovidx = 0;

	if (!ordered) {
		for (unsigned i = 0; i < nsize; i++) {
			Node *nd = gnode(t, i);

			if (!isempty(gval(nd)) && key_by_address(keytt(nd))) {
				ordered = 1;
				break;
			}
		}
	}
	if (t->metatable)
		flags |= MIG_TB_MT;
	if (tofinalize(obj2gco(t)))
		flags |= MIG_TB_FIN;
	if (!isrealasize(t))
		flags |= MIG_TB_BITRAS;
	if (ordered)
		flags |= MIG_TB_ORDERED;
	if (isdummy(t))
		flags |= MIG_TB_DUMMY;
	if ((rc = mig_buf_u8(b, flags)))
		return rc;
	if (t->metatable) {
		TValue mt;

		sethvalue(L, &mt, t->metatable);
		x->cur = EDGE(EK_META, 0);
		if ((rc = put_value(x, &mt)))
			return rc;
	}
	if ((rc = mig_buf_varint(b, t->alimit)))
		return rc;
	if (!isdummy(t) && (rc = mig_buf_u8(b, t->lsizenode)))
		return rc;
	for (unsigned i = 0; i < asize; i++) {
		x->cur = EDGE(EK_ARRAY, i);
		if ((rc = put_value(x, &t->array[i])))
			return rc;
	}
	if (ordered) {
		if (mig_pmap_get(&x->ovset, t) != NULL) {
			luaL_checkstack(L, 8, NULL);
			sethvalue2s(L, L->top.p, t);
			L->top.p++;
			lua_rawget(L, x->overlays);
			ovidx = lua_gettop(L);
		}
		rc = put_ordered_entries(x, t, ovidx);
		if (ovidx)
			lua_settop(L, ovidx - 1);
		return rc;
	}
	if (nsize == 0)
		return 0;
	if ((rc = mig_buf_varint(b, (uint64_t)(t->lastfree - t->node))))
		return rc;
	for (unsigned i = 0; i < nsize; i++) {
		Node *nd = gnode(t, i);

		if (keyisnil(nd)) {
			if ((rc = mig_buf_u8(b, MIG_T_NODE_FREE)))
				return rc;
			continue;
		}
		if (isempty(gval(nd)) && (keyiscollectable(nd) || keyisdead(nd))) {
			if ((rc = put_pending(x, nd)))
				return rc;
		} else {
			x->cur = EDGE(EK_NODEKEY, i);
			if ((rc = put_node_key(x, nd)))
				return rc;
			x->cur = EDGE(EK_NODEVAL, i);
			if ((rc = put_value(x, gval(nd))))
				return rc;
		}
		if ((rc = mig_buf_svarint(b, gnext(nd))))
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Closure bodies                                                      */
/* ------------------------------------------------------------------ */

static int build_uvowner(struct pctx *x)
{
	uint32_t n = 0, cap = 0;

	for (lua_State *th = G(x->L)->twups; th != NULL; th = th->twups) {
		if (th->openupval == NULL)
			continue;
		if (n == cap) {
			uint32_t nc = cap ? cap * 2 : 16;
			lua_State **nt = realloc(x->uvthr, nc * sizeof *nt);

			if (nt == NULL)
				return MIG_ERR_NOMEM;
			x->uvthr = nt;
			cap = nc;
		}
		x->uvthr[n] = th;
		for (UpVal *uv = th->openupval; uv != NULL; uv = uv->u.open.next)
			if (mig_pmap_put(&x->uvowner, uv, n) != 0)
				return MIG_ERR_NOMEM;
		n++;
		/* A thread not in the list points to itself. */
		if (th->twups == th)
			break;
	}
	x->nuvthr = n;
	x->uvowner_built = 1;
	return 0;
}

static int put_upval(struct pctx *x, UpVal *uv)
{
	struct mig_buf *b = x->b;
	uint32_t *r;
	int rc;

	if (uv == NULL) {
		/* Not yet initialised (cannot be seen from Lua): a fresh nil. */
		if ((rc = mig_buf_u8(b, MIG_UV_CLOSED)) || (rc = new_id(x, NULL, NULL, 0)))
			return rc;
		return mig_buf_u8(b, MIG_T_NIL);
	}
	if ((r = mig_pmap_get(&x->ids, uv)) != NULL) {
		if ((rc = mig_buf_u8(b, MIG_UV_REF)))
			return rc;
		return mig_buf_varint(b, *r);
	}
	if ((rc = new_id(x, NULL, uv, 0)))
		return rc;
	if (!upisopen(uv)) {
		if ((rc = mig_buf_u8(b, MIG_UV_CLOSED)))
			return rc;
		return put_value(x, uv->v.p);
	} else {
		lua_State *th;
		TValue tv;

		if (!x->uvowner_built && (rc = build_uvowner(x)))
			return rc;
		r = mig_pmap_get(&x->uvowner, uv);
		if (r == NULL)
			return fail_path(x, MIG_ERR_UNPERSISTABLE, "open upvalue of an unknown thread");
		th = x->uvthr[*r];
		if ((rc = mig_buf_u8(b, MIG_UV_OPEN)))
			return rc;
		setthvalue(x->L, &tv, th);
		if ((rc = put_value(x, &tv)))
			return rc;
		return mig_buf_varint(b, (uint64_t)(uplevel(uv) - th->stack.p));
	}
}

/* ------------------------------------------------------------------ */
/* Thread bodies                                                       */
/* ------------------------------------------------------------------ */

static size_t slot_of(lua_State *th, StkId p)
{
	return (size_t)(p - th->stack.p);
}

/* The call status to carry. Lua marks a Lua frame stopped by a hook yield
 * (CIST_HOOKYIELD) and clears the mark at its next counted instruction; a
 * host that re-arms its count hook after the yield restarts the count, so
 * the mark can outlive the hook stop while the frame runs on and calls out.
 * Only the top frame of a thread can be stopped by a hook; elsewhere the
 * mark is stale, and dropping it at most lets the hook run once more. */
static unsigned frame_status(lua_State *th, const CallInfo *ci)
{
	unsigned st = ci->callstatus;

	if (ci != th->ci)
		st &= ~(unsigned)CIST_HOOKYIELD;
	return st;
}

static int put_frames(struct pctx *x, lua_State *th)
{
	struct mig_buf *b = x->b;
	uint32_t nframes = 0;
	int rc;

	if (th->status == LUA_YIELD)
		for (CallInfo *ci = th->ci; ci != &th->base_ci; ci = ci->previous)
			nframes++;
	if ((rc = mig_buf_varint(b, nframes)))
		return rc;
	if (nframes == 0)
		return 0;
	{
		CallInfo *ci = th->base_ci.next;

		for (uint32_t f = 0; f < nframes; f++, ci = ci->next) {
			int lua = isLua(ci);

			if ((rc = mig_buf_u8(b, lua ? 0 : 1)) ||
			    (rc = mig_buf_varint(b, slot_of(th, ci->func.p))) ||
			    (rc = mig_buf_varint(b, slot_of(th, ci->top.p))) ||
			    (rc = mig_buf_svarint(b, ci->nresults)) ||
			    (rc = mig_buf_varint(b, frame_status(th, ci))))
				return rc;
			/* u2 means something only for these two cases; a stale
			 * value elsewhere is not carried. */
			if (lua)
				rc = mig_buf_svarint(b, ci->u2.nres);
			else if (ci->callstatus & CIST_YPCALL)
				rc = mig_buf_svarint(b, ci->u2.funcidx / (int)sizeof(StackValue));
			else
				rc = mig_buf_svarint(b, 0);
			if (rc)
				return rc;
			if (lua) {
				Proto *p = ci_func(ci)->p;

				if ((rc = mig_buf_varint(b, (uint64_t)(ci->u.l.savedpc - p->code))) ||
				    (rc = mig_buf_varint(b, p->is_vararg ? (uint64_t)ci->u.l.nextraargs : 0)))
					return rc;
			} else {
				int ki = -1;

				if (ci->callstatus & CIST_CLSRET)
					return fail_path(x, MIG_ERR_UNPERSISTABLE,
							 "C function suspended while closing variables");
				if (ci->u.c.k != NULL && (ki = mig_cfn_find_k(x->c, ci->u.c.k)) < 0)
					return fail_path(x, MIG_ERR_UNPERSISTABLE,
							 "C frame with an unknown continuation");
				if (ci->u.c.k == NULL && ci != th->ci)
					return fail_path(x, MIG_ERR_UNPERSISTABLE,
							 "C frame without continuation");
				if (ki < 0) {
					if ((rc = mig_buf_varint(b, 0)))
						return rc;
				} else if ((rc = put_str_bytes(b, x->c->cfn[ki].name, strlen(x->c->cfn[ki].name))))
					return rc;
				if ((rc = mig_buf_svarint(b, (int64_t)ci->u.c.ctx)) ||
				    (rc = mig_buf_varint(b, (ci->callstatus & CIST_YPCALL) ?
							     (uint64_t)ci->u.c.old_errfunc / sizeof(StackValue) : 0)))
					return rc;
			}
		}
	}
	return 0;
}

/* False for values that could never move: light userdata, C functions
 * and userdata the engine cannot name. */
static int movable(struct pctx *x, const TValue *v)
{
	switch (ttypetag(v)) {
	case LUA_VLIGHTUSERDATA:
		return 0;
	case LUA_VLCF:
		return mig_pmap_get(&x->perms, (const void *)fvalue(v)) != NULL ||
		       mig_cfn_find_f(x->c, fvalue(v)) >= 0;
	case LUA_VCCL:
		return mig_pmap_get(&x->perms, gcvalue(v)) != NULL ||
		       mig_cfn_find_f(x->c, clCvalue(v)->f) >= 0;
	case LUA_VUSERDATA:
		return mig_pmap_get(&x->perms, gcvalue(v)) != NULL ||
		       (uvalue(v)->metatable != NULL && mig_pmap_get(&x->udmt, uvalue(v)->metatable) != NULL);
	default:
		return 1;
	}
}

/* Marks the stack slots a suspended thread can still read: every frame's
 * function; for a Lua frame below another, all its registers under the
 * callee (locals and pending temporaries); for the top Lua frame (stopped
 * by a hook), its active local variables; for a C frame, its slots. The
 * other slots below the top are registers Lua will write before reading:
 * stale values from earlier calls (a luaL_Buffer's light userdata, an
 * iterator's C closure) that must not stop the move. */
/* One past the highest register instruction i can read or write (as a
 * register index), over-approximated; SIZE_MAX when it works up to the
 * stack top. */
static size_t insn_reg_end(Instruction i, int nres)
{
	size_t a = (size_t)GETARG_A(i), b = (size_t)GETARG_B(i), c = (size_t)GETARG_C(i);
	size_t ab = (a > b ? a : b) + 1;

	switch (GET_OPCODE(i)) {
	case OP_GETTABUP: case OP_LTI: case OP_LEI: case OP_GTI: case OP_GEI:
	case OP_EQI: case OP_EQK: case OP_MMBINI: case OP_MMBINK: case OP_CLOSE:
		return a + 1;
	case OP_GETI: case OP_GETFIELD: case OP_UNM: case OP_BNOT: case OP_LEN:
	case OP_MMBIN: case OP_EQ: case OP_LT: case OP_LE:
		return ab;
	case OP_SETTABUP:
		return GETARG_k(i) ? 0 : c + 1;
	case OP_SETI: case OP_SETFIELD:
		return GETARG_k(i) ? a + 1 : (a > c ? a : c) + 1;
	case OP_GETTABLE:
		return (ab > c + 1) ? ab : c + 1;
	case OP_SETTABLE:
		return GETARG_k(i) ? ab : ((ab > c + 1) ? ab : c + 1);
	case OP_SELF:
		return (a + 2 > b + 1 ? a + 2 : b + 1) > c + 1 ? (a + 2 > b + 1 ? a + 2 : b + 1) : c + 1;
	case OP_CONCAT:
		return a + b;
	case OP_CALL: case OP_TAILCALL:
		return b == 0 ? SIZE_MAX : a + b;
	case OP_RETURN:
		return nres >= 0 ? a + (size_t)nres : (b == 0 ? SIZE_MAX : a + b);
	case OP_SETLIST:
		return b == 0 ? SIZE_MAX : a + b + 1;
	case OP_VARARG:
		return c == 0 ? SIZE_MAX : a + c;
	case OP_LOADNIL:
		return a + b + 1;
	case OP_FORPREP: case OP_FORLOOP: case OP_TFORPREP: case OP_TFORLOOP:
		return a + 4;
	case OP_TFORCALL:
		return a + 4 + c;
	default:
		/* Other operands are locals, constants or A itself in the
		 * code Lua generates for expressions in flight. */
		return a + 1;
	}
}

static int callee_is_plain_call(CallInfo *ci)
{
	const Proto *p = ci_func(ci)->p;
	OpCode op = GET_OPCODE(p->code[ci->u.l.savedpc - p->code - 1]);

	return op == OP_CALL || op == OP_TAILCALL || op == OP_TFORCALL;
}

static void live_slots(lua_State *th, uint8_t *live, size_t top)
{
	memset(live, 0, top);
	if (th->status != LUA_YIELD) {
		memset(live, 1, top);
		return;
	}
	live[0] = 1;
	/* The list goes on past th->ci with CallInfos kept for reuse. */
	for (CallInfo *ci = th->base_ci.next; ci != NULL; ci = ci == th->ci ? NULL : ci->next) {
		int topmost = ci == th->ci;
		size_t f = slot_of(th, ci->func.p);
		size_t end = topmost ? top : slot_of(th, ci->next->func.p);

		if (f < top)
			live[f] = 1;
		/* A frame stopped by a hook, or inside a metamethod: only its
		 * active locals and the registers its instruction uses are
		 * known to matter. Below a plain call, everything under the
		 * callee does (locals and pending temporaries). */
		if (isLua(ci) && (topmost || !callee_is_plain_call(ci))) {
			const Proto *p = ci_func(ci)->p;
			int pc = (int)(ci->u.l.savedpc - p->code) - 1;
			size_t nact = 0, reg;

			for (int i = 0; i < p->sizelocvars && p->locvars[i].startpc <= pc; i++)
				if (pc < p->locvars[i].endpc)
					nact++;
			/* A hook can stop a frame between any two instructions,
			 * where registers above the active locals are most often
			 * stale; below a metamethod, the interrupted instruction
			 * still needs its operands. */
			reg = topmost ? 0 : insn_reg_end(p->code[pc], ci->u2.nres);
			if (reg == SIZE_MAX)
				end = slot_of(th, ci->next->func.p);
			else
				end = f + 1 + (nact > reg ? nact : reg);
		}
		/* A vararg function's own arguments sit under it. */
		if (isLua(ci) && ci_func(ci)->p->is_vararg) {
			size_t extra = (size_t)ci->u.l.nextraargs + ci_func(ci)->p->numparams + 1;

			for (size_t i = f >= extra ? f - extra : 0; i < f; i++)
				live[i] = 1;
		}
		for (size_t i = f; i < end && i < top; i++)
			live[i] = 1;
	}
}

static int put_thread_body(struct pctx *x, lua_State *th)
{
	struct mig_buf *b = x->b;
	size_t top = slot_of(th, th->top.p);
	uint32_t ntbc = 0;
	uint8_t *live;
	int rc;

	if ((rc = check_thread(x, th)))
		return rc;
	if ((rc = mig_buf_u8(b, th->status)) || (rc = mig_buf_varint(b, (uint64_t)stacksize(th))) ||
	    (rc = mig_buf_varint(b, top)))
		return rc;
	live = malloc(top ? top : 1);
	if (live == NULL)
		return MIG_ERR_NOMEM;
	live_slots(th, live, top);
	for (size_t i = 0; i < top; i++) {
		const TValue *v = s2v(th->stack.p + i);

		x->cur = EDGE(EK_STACK, i);
		if (!live[i] && !movable(x, v))
			rc = mig_buf_u8(b, MIG_T_NIL);
		else
			rc = put_value(x, v);
		if (rc) {
			free(live);
			return rc;
		}
	}
	free(live);
	/* The to-be-closed list, from its head down to the stack base, with
	 * dummy nodes as Lua made them. */
	for (StkId p = th->tbclist.p; p > th->stack.p;
	     p = p->tbclist.delta ? p - p->tbclist.delta : p - USHRT_MAX)
		ntbc++;
	if ((rc = mig_buf_varint(b, ntbc)))
		return rc;
	for (StkId p = th->tbclist.p; p > th->stack.p;
	     p = p->tbclist.delta ? p - p->tbclist.delta : p - USHRT_MAX) {
		if ((rc = mig_buf_varint(b, slot_of(th, p))) || (rc = mig_buf_varint(b, p->tbclist.delta)))
			return rc;
	}
	if ((rc = put_frames(x, th)))
		return rc;
	if ((rc = mig_buf_varint(b, (uint64_t)th->errfunc / sizeof(StackValue))) ||
	    (rc = mig_buf_varint(b, th->oldpc > 0 ? (uint64_t)th->oldpc : 0)) ||
	    (rc = mig_buf_u8(b, th->allowhook)))
		return rc;
	return 0;
}

/* A string.gmatch iterator: its subject and pattern, then its position
 * and last match as offsets into the subject (docs/state-format.md). */
static int put_gmatch_body(struct pctx *x, CClosure *cl)
{
	const struct mig_gmatch *gm;
	const char *s;
	size_t len;
	int rc;

	if (cl->nupvalues != 3 || !ttisstring(&cl->upvalue[0]) || !ttisstring(&cl->upvalue[1]) ||
	    !ttisfulluserdata(&cl->upvalue[2]) || uvalue(&cl->upvalue[2])->len != sizeof *gm)
		return fail_path(x, MIG_ERR_UNPERSISTABLE, "string.gmatch iterator of unknown shape");
	gm = (const struct mig_gmatch *)getudatamem(uvalue(&cl->upvalue[2]));
	s = getstr(tsvalue(&cl->upvalue[0]));
	len = tsslen(tsvalue(&cl->upvalue[0]));
	if (gm->src < s || gm->src > s + len + 1 || (gm->lastmatch && (gm->lastmatch < s || gm->lastmatch > s + len)))
		return fail_path(x, MIG_ERR_UNPERSISTABLE, "string.gmatch iterator out of its subject");
	x->cur = EDGE(EK_CUPVAL, 0);
	if ((rc = put_value(x, &cl->upvalue[0])))
		return rc;
	x->cur = EDGE(EK_CUPVAL, 1);
	if ((rc = put_value(x, &cl->upvalue[1])) || (rc = mig_buf_varint(x->b, (uint64_t)(gm->src - s))))
		return rc;
	return mig_buf_varint(x->b, gm->lastmatch ? (uint64_t)(gm->lastmatch - s) + 1 : 0);
}

/* ------------------------------------------------------------------ */
/* Driver                                                              */
/* ------------------------------------------------------------------ */

static int put_body(struct pctx *x, uint32_t id)
{
	GCObject *o = x->byid[id];
	int rc;

	x->owner = id;
	switch (o->tt) {
	case LUA_VTABLE:
		return put_table_body(x, gco2t(o));
	case LUA_VLCL: {
		LClosure *cl = gco2lcl(o);

		for (int i = 0; i < cl->nupvalues; i++) {
			x->cur = EDGE(EK_UPVAL, i);
			if ((rc = put_upval(x, cl->upvals[i])))
				return rc;
		}
		return 0;
	}
	case LUA_VCCL: {
		CClosure *cl = gco2ccl(o);

		if (cl->f == x->c->gmatch && x->c->gmatch != NULL)
			return put_gmatch_body(x, cl);
		for (int i = 0; i < cl->nupvalues; i++) {
			x->cur = EDGE(EK_CUPVAL, i);
			if ((rc = put_value(x, &cl->upvalue[i])))
				return rc;
		}
		return 0;
	}
	case LUA_VTHREAD:
		return put_thread_body(x, gco2th(o));
	default:
		return mig_err_set(x->err, MIG_ERR_ARG, "internal: no body for type %d", o->tt);
	}
}

/* Loads permanents, overlaid tables and userdata metatables into C maps. */
static int prepare(struct pctx *x)
{
	lua_State *L = x->L;
	uint32_t n = 0;

	lua_rawgeti(L, x->env, MIG_ENV_PERMVAL);
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		n++;
		lua_pop(L, 1);
	}
	x->permname = calloc(n ? n : 1, sizeof *x->permname);
	x->permref = calloc(n ? n : 1, sizeof *x->permref);
	if (x->permname == NULL || x->permref == NULL)
		return MIG_ERR_NOMEM;
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		const TValue *k = s2v(L->top.p - 2);
		const void *key = ttislcf(k) ? (const void *)fvalue(k)
					     : iscollectable(k) ? (const void *)gcvalue(k) : NULL;

		if (key != NULL && x->nperm < n && ttisstring(s2v(L->top.p - 1))) {
			x->permname[x->nperm] = tsvalue(s2v(L->top.p - 1));
			if (mig_pmap_put(&x->perms, key, x->nperm) != 0)
				return MIG_ERR_NOMEM;
			x->nperm++;
		}
		lua_pop(L, 1);
	}
	lua_pop(L, 1);

	if (x->c->overlays) {
		lua_pushnil(L);
		while (lua_next(L, x->overlays)) {
			if (mig_pmap_put(&x->ovset, gcvalue(s2v(L->top.p - 2)), 1) != 0)
				return MIG_ERR_NOMEM;
			lua_pop(L, 1);
		}
	}

	lua_newtable(L);
	x->udhooks = lua_gettop(L);
	lua_rawgeti(L, x->env, MIG_ENV_UDHOOKS);
	lua_pushnil(L);
	n = 0;
	while (lua_next(L, -2)) {
		if (lua_type(L, -2) == LUA_TSTRING && luaL_getmetatable(L, lua_tostring(L, -2)) == LUA_TTABLE) {
			if (mig_pmap_put(&x->udmt, lua_topointer(L, -1), ++n) != 0)
				return MIG_ERR_NOMEM;
			lua_pop(L, 1);
			lua_rawgeti(L, -1, 1);
			lua_rawgeti(L, -2, 2);
			lua_pushvalue(L, -4);
			lua_createtable(L, 3, 0);
			lua_insert(L, -4);
			lua_rawseti(L, -4, 3);
			lua_rawseti(L, -3, 2);
			lua_rawseti(L, -2, 1);
			lua_rawseti(L, x->udhooks, n);
		} else
			lua_pop(L, 1);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return 0;
}

struct pcall_args {
	struct pctx *x;
	int idx;
	int rc;
};

static int persist_main(lua_State *L)
{
	struct pcall_args *a = lua_touserdata(L, 1);
	struct pctx *x = a->x;
	struct mig_buf *b = x->b;
	size_t hdr = b->len;
	uint8_t head[MIG_HEADER_LEN];
	int rc;

	luaL_checkstack(L, 32, NULL);
	x->env = lua_gettop(L) + 1;
	if (mig_env_push(L) != 0) {
		a->rc = mig_err_set(x->err, MIG_ERR_ARG, "mig_env_open was not called on this state");
		return 0;
	}
	x->c = mig_env_cdata(L, x->env);
	lua_rawgeti(L, x->env, MIG_ENV_PROTOIDX);
	x->protoidx = lua_gettop(L);
	lua_rawgeti(L, x->env, MIG_ENV_PROTOHASH);
	x->protohash = lua_gettop(L);
	lua_rawgeti(L, x->env, MIG_ENV_SOURCES);
	x->sources = lua_gettop(L);
	lua_rawgeti(L, x->env, MIG_ENV_OVERLAYS);
	x->overlays = lua_gettop(L);
	if ((rc = prepare(x)))
		goto out;
	/* A guess from the heap size saves rehashing the map while it
	 * grows; its pages are touched only as keys land in them. */
	{
		size_t guess = (size_t)gettotalbytes(G(L)) / 128;

		if ((rc = mig_pmap_reserve(&x->ids, guess < ((size_t)1 << 19) ? guess : ((size_t)1 << 19))))
			goto out;
	}

	memcpy(head, MIG_STATE_MAGIC, 4);
	for (int i = 0; i < 4; i++) {
		head[4 + i] = (uint8_t)(MIG_STATE_VERSION >> (8 * i));
		head[8 + i] = (uint8_t)(G(L)->seed >> (8 * i));
	}
	memset(head + 12, 0, 8);
	if ((rc = mig_buf_put(b, head, sizeof head)))
		goto out;

	x->owner = NOPARENT;
	x->cur = EDGE(EK_ROOT, 0);
	if ((rc = put_value(x, s2v(L->ci->func.p + a->idx))))
		goto out;
	while (x->qhead < x->qlen) {
		if ((rc = put_body(x, x->queue[x->qhead++])))
			goto out;
	}
	/* Fixups: removed keys whose objects were written after all. */
	for (size_t i = 0; i < x->npend; i++) {
		uint32_t *r = mig_pmap_get(&x->ids, x->pend[i]);

		if (r != NULL && x->byid[*r] != NULL) {
			if ((rc = mig_buf_varint(b, i + 1)) || (rc = mig_buf_u8(b, MIG_T_REF)) ||
			    (rc = mig_buf_varint(b, *r)))
				goto out;
		} else if ((r = mig_pmap_get(&x->perms, x->pend[i])) != NULL) {
			if ((rc = mig_buf_varint(b, i + 1)) || (rc = put_perm(x, *r)))
				goto out;
		}
	}
	if ((rc = mig_buf_varint(b, 0)))
		goto out;
	/* Finalizer order: the written objects marked for finalization, in
	 * the order Lua keeps them (it finalizes the list from its head). */
	{
		GCObject *lists[2] = { G(L)->finobj, G(L)->tobefnz };
		uint64_t n = 0;

		for (int l = 0; l < 2; l++)
			for (GCObject *o = lists[l]; o != NULL; o = o->next)
				if (mig_pmap_get(&x->ids, o) != NULL)
					n++;
		if ((rc = mig_buf_varint(b, n)))
			goto out;
		for (int l = 0; l < 2; l++)
			for (GCObject *o = lists[l]; o != NULL; o = o->next) {
				uint32_t *r = mig_pmap_get(&x->ids, o);

				if (r != NULL && (rc = mig_buf_varint(b, *r)))
					goto out;
			}
	}
	for (int i = 0; i < 8; i++)
		b->data[hdr + 12 + i] = (uint8_t)((uint64_t)x->nid >> (8 * i));
out:
	if (rc != 0)
		mig_err_set(x->err, rc, NULL);
	a->rc = rc;
	return 0;
}

int mig_state_persist(lua_State *L, int idx, struct mig_buf *out, struct mig_error *err)
{
	struct pctx x;
	struct pcall_args a;
	struct mig_error dummy = { 0 };
	size_t start;
	int running, status, stopem;

	if (err == NULL)
		err = &dummy;
	err->code = 0;
	err->msg[0] = '\0';
	if (out == NULL || lua_type(L, idx) == LUA_TNONE)
		return mig_err_set(err, MIG_ERR_ARG, "bad arguments");
	if (!lua_checkstack(L, 8))
		return mig_err_set(err, MIG_ERR_NOMEM, NULL);
	idx = lua_absindex(L, idx);
	start = out->len;
	memset(&x, 0, sizeof x);
	x.L = L;
	x.b = out;
	x.err = err;
	a.x = &x;
	a.rc = 0;
	/* persist_main sees the root at its own stack index 2. */
	a.idx = 2;

	running = lua_gc(L, LUA_GCISRUNNING);
	lua_gc(L, LUA_GCSTOP);
	stopem = G(L)->gcstopem;
	G(L)->gcstopem = 1;
	lua_pushcfunction(L, persist_main);
	lua_pushlightuserdata(L, &a);
	lua_pushvalue(L, idx);
	status = lua_pcall(L, 2, 0, 0);
	if (status != LUA_OK) {
		if (status == LUA_ERRMEM)
			a.rc = mig_err_set(err, MIG_ERR_NOMEM, NULL);
		else
			a.rc = mig_err_set(err, MIG_ERR_LUA, "%s",
					   lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
		lua_pop(L, 1);
	}
	G(L)->gcstopem = (lu_byte)stopem;
	if (running)
		lua_gc(L, LUA_GCRESTART);

	mig_pmap_free(&x.ids);
	mig_pmap_free(&x.perms);
	mig_pmap_free(&x.protos);
	mig_pmap_free(&x.srcs);
	mig_pmap_free(&x.udmt);
	mig_pmap_free(&x.ovset);
	mig_pmap_free(&x.ovkeys);
	mig_pmap_free(&x.uvowner);
	free(x.uvthr);
	free(x.permname);
	free(x.permref);
	free(x.byid);
	free(x.parent);
	free(x.edge);
	free(x.queue);
	free(x.pend);
	if (a.rc != 0) {
		out->len = start;
		return a.rc;
	}
	return 0;
}

int mig_state_peek(const void *buf, size_t len, struct mig_state_info *info)
{
	const uint8_t *p = buf;
	uint32_t version = 0, seed = 0;
	uint64_t n = 0;

	if (info == NULL || (buf == NULL && len > 0))
		return MIG_ERR_ARG;
	memset(info, 0, sizeof *info);
	if (len < 4)
		return len == 0 || memcmp(p, MIG_STATE_MAGIC, len) == 0 ? MIG_ERR_TRUNCATED
									 : MIG_ERR_MALFORMED;
	if (memcmp(p, MIG_STATE_MAGIC, 4) != 0)
		return MIG_ERR_MALFORMED;
	if (len < 8)
		return MIG_ERR_TRUNCATED;
	for (int i = 0; i < 4; i++)
		version |= (uint32_t)p[4 + i] << (8 * i);
	if (version != MIG_STATE_VERSION)
		return MIG_ERR_VERSION;
	if (len < MIG_HEADER_LEN)
		return MIG_ERR_TRUNCATED;
	for (int i = 0; i < 4; i++)
		seed |= (uint32_t)p[8 + i] << (8 * i);
	for (int i = 0; i < 8; i++)
		n |= (uint64_t)p[12 + i] << (8 * i);
	info->version = version;
	info->seed = seed;
	info->nobjects = n;
	return 0;
}
