/*
 * mig_restore.c: rebuilds a persisted value in a fresh lua_State
 * (docs/state-format.md). The mirror of mig_persist.c: values are read
 * inline, objects with contents are created empty where they are declared
 * and filled when their body comes, in declaration order; the queue is the
 * work stack, so nothing recurses.
 *
 * Invariants:
 * - Every read is checked against the end of the input; every id, count,
 *   size, slot, pc and offset is checked before use. Bad input yields
 *   MIG_ERR_TRUNCATED when the bytes stop early, another code otherwise.
 * - The collector is stopped (emergency collections too) while objects are
 *   half built; every object is collectible at every allocation point, so
 *   a failed restore leaves L usable and its garbage freeable.
 * - A table whose keys are hashed by content is rebuilt node by node at the
 *   same places, after checking that every chain is a finite path from the
 *   key's main position; other tables are rebuilt by insertion and get an
 *   order overlay for the engine's `next`.
 */
#include "mig_state_int.h"

#include <ldo.h>
#include <lopcodes.h>
#include <ltm.h>
#include <lvm.h>

#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

/* A removed key waiting for a fixup. */
struct pend {
	Table *t;      /* table of the node (exact layout), or NULL */
	uint32_t slot; /* node index, or position in the ordered list */
	uint32_t ord;  /* index in rctx.ord when t == NULL */
};

/* A table rebuilt by insertion, and the key order its overlay gets. */
struct ord {
	Table *t;
	TValue *keys;  /* malloc'd; nil where a removed key stays unbound */
	uint32_t n;
};

struct openuv {
	UpVal *uv;
	lua_State *th;
	uint32_t level;
};

struct src {
	Proto **list; /* pre-order prototypes of the chunk */
	int n;
};

struct frame {
	unsigned lua;
	uint64_t func, top, status, pc, extra, errslot;
	int64_t nres, u2, ctx;
	int k; /* continuation index, -1 for none */
};

struct rctx {
	lua_State *L;
	const uint8_t *start;  /* first byte of the state, for messages */
	struct mig_rd r;
	struct mig_error *err;
	struct mig_envc *c;
	int env, permname, udhooks;
	Table *sentinel;

	TValue *obj;           /* value of each id (upvalues tagged LUA_VUPVAL) */
	uint64_t nobj, nid;
	uint32_t *queue;       /* ids with bodies still to read */
	size_t qhead, qlen;

	TValue *perm; uint32_t nperm, capperm;
	Proto **proto; uint32_t nproto, capproto;
	struct src *src; uint32_t nsrc, capsrc;
	struct pend *pend; size_t npend, cappend;
	struct ord *ord; size_t nord, capord;
	Table **lay; size_t nlay, caplay;     /* exact tables needing an overlay */
	struct openuv *ouv; size_t nouv, capouv;
	int32_t *tmp; size_t captmp;           /* scratch for chain checks */
	struct frame *fr; uint64_t capfr;      /* scratch for a thread's frames */
};

#define GROW(arr, n, cap)                                                         \
	do {                                                                      \
		if ((n) == (cap)) {                                               \
			size_t nc_ = (cap) ? (size_t)(cap) * 2 : 16;              \
			void *np_ = realloc((arr), nc_ * sizeof *(arr));          \
			if (np_ == NULL)                                          \
				return MIG_ERR_NOMEM;                             \
			(arr) = np_;                                              \
			(cap) = nc_;                                              \
		}                                                                 \
	} while (0)

static int bad(struct rctx *x, const char *what)
{
	return mig_err_set(x->err, MIG_ERR_MALFORMED, "malformed state: %s (offset %zu)", what,
			   (size_t)(x->r.p - x->start));
}

static int trunc_err(struct rctx *x)
{
	return mig_err_set(x->err, MIG_ERR_TRUNCATED, "state ends early");
}

/* Propagates a reader code with a message. */
static int rderr(struct rctx *x, int rc)
{
	if (rc == MIG_ERR_TRUNCATED)
		return trunc_err(x);
	if (rc == MIG_ERR_MALFORMED)
		return bad(x, "bad varint");
	return mig_err_set(x->err, rc, NULL);
}

#define RD(call)                                   \
	do {                                       \
		int rc_ = (call);                  \
		if (rc_ != 0)                      \
			return rderr(x, rc_);      \
	} while (0)

/* Copies a value that may be Lua's "empty" nil (table slots only). */
static void rawcopy(TValue *dst, const TValue *src)
{
	dst->value_ = src->value_;
	settt_(dst, src->tt_);
}

/* Outside tables an empty slot reads as plain nil. */
static void strictnil(TValue *v)
{
	if (isempty(v))
		setnilvalue(v);
}

static int new_id(struct rctx *x, const TValue *v, int queue)
{
	if (x->nid >= x->nobj)
		return bad(x, "more objects than the header says");
	setobj(x->L, &x->obj[x->nid], v);
	if (queue)
		x->queue[x->qlen++] = (uint32_t)x->nid;
	x->nid++;
	return 0;
}

static int read_str(struct rctx *x, const uint8_t **p, size_t *len, size_t max)
{
	uint64_t n;

	RD(mig_rd_varint(&x->r, &n));
	if (n > max)
		return mig_err_set(x->err, MIG_ERR_LIMIT, "string too long");
	RD(mig_rd_bytes(&x->r, (size_t)n, p));
	*len = (size_t)n;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Prototypes                                                          */
/* ------------------------------------------------------------------ */

static int read_source(struct rctx *x, struct src **out)
{
	lua_State *L = x->L;
	uint64_t ref;
	const uint8_t *hash, *name = NULL, *text = NULL;
	size_t nl, tl;
	unsigned ext;
	int rc;
	struct src s;

	RD(mig_rd_varint(&x->r, &ref));
	if (ref != 0) {
		if (ref > x->nsrc)
			return bad(x, "bad source reference");
		*out = &x->src[ref - 1];
		return 0;
	}
	RD(mig_rd_bytes(&x->r, MIG_HASH_LEN, &hash));
	RD(mig_rd_u8(&x->r, &ext));
	if (ext > 1)
		return bad(x, "bad source flag");
	if (!ext) {
		uint8_t h[MIG_HASH_LEN];
		char cname[256];

		if ((rc = read_str(x, &name, &nl, 255)) || (rc = read_str(x, &text, &tl, MIG_MAX_STRING)))
			return rc;
		crypto_generichash(h, sizeof h, text, tl, NULL, 0);
		if (sodium_memcmp(h, hash, MIG_HASH_LEN) != 0)
			return bad(x, "source text does not match its hash");
		if (mig_is_binary((const char *)text, tl))
			return bad(x, "binary chunk");
		memcpy(cname, name, nl);
		cname[nl] = '\0';
		mig_src_register(L, x->env, hash, (const char *)text, tl, cname, 0);
	}
	lua_pushlstring(L, (const char *)hash, MIG_HASH_LEN);
	rc = mig_src_compile(L, x->env, -1, x->err);
	if (rc != 0) {
		lua_pop(L, 1);
		return rc;
	}
	rc = mig_proto_list(clLvalue(s2v(L->top.p - 1))->p, &s.list, &s.n);
	lua_pop(L, 2);
	if (rc != 0)
		return mig_err_set(x->err, rc, NULL);
	if (x->nsrc == x->capsrc) {
		size_t nc = x->capsrc ? x->capsrc * 2 : 8;
		struct src *ns = realloc(x->src, nc * sizeof *ns);

		if (ns == NULL) {
			free(s.list);
			return MIG_ERR_NOMEM;
		}
		x->src = ns;
		x->capsrc = (uint32_t)nc;
	}
	x->src[x->nsrc++] = s;
	*out = &x->src[x->nsrc - 1];
	return 0;
}

static int read_proto(struct rctx *x, Proto **out)
{
	uint64_t ref, idx, sizecode, nup, sizep, fp;
	unsigned np, va, ms;
	struct src *s = NULL;
	Proto *p;
	int rc;

	RD(mig_rd_varint(&x->r, &ref));
	if (ref != 0) {
		if (ref > x->nproto)
			return bad(x, "bad prototype reference");
		*out = x->proto[ref - 1];
		return 0;
	}
	if ((rc = read_source(x, &s)))
		return rc;
	RD(mig_rd_varint(&x->r, &idx));
	if (idx >= (uint64_t)s->n)
		return mig_err_set(x->err, MIG_ERR_SHAPE, "prototype index %llu beyond its chunk",
				   (unsigned long long)idx);
	p = s->list[idx];
	RD(mig_rd_u8(&x->r, &np));
	RD(mig_rd_u8(&x->r, &va));
	RD(mig_rd_u8(&x->r, &ms));
	RD(mig_rd_varint(&x->r, &sizecode));
	RD(mig_rd_varint(&x->r, &nup));
	if (np != p->numparams || va != p->is_vararg || ms != p->maxstacksize ||
	    sizecode != (uint64_t)p->sizecode || nup != (uint64_t)p->sizeupvalues)
		return mig_err_set(x->err, MIG_ERR_SHAPE, "prototype %llu differs from the source",
				   (unsigned long long)idx);
	for (int i = 0; i < p->sizeupvalues; i++) {
		unsigned a, b, c;

		RD(mig_rd_u8(&x->r, &a));
		RD(mig_rd_u8(&x->r, &b));
		RD(mig_rd_u8(&x->r, &c));
		if (a != p->upvalues[i].instack || b != p->upvalues[i].idx || c != p->upvalues[i].kind)
			return mig_err_set(x->err, MIG_ERR_SHAPE, "upvalue %d of prototype differs", i);
	}
	RD(mig_rd_varint(&x->r, &sizep));
	RD(mig_rd_u64le(&x->r, &fp));
	if (sizep != (uint64_t)p->sizep || fp != mig_proto_fingerprint(p))
		return mig_err_set(x->err, MIG_ERR_SHAPE, "prototype fingerprint differs");
	GROW(x->proto, x->nproto, x->capproto);
	x->proto[x->nproto++] = p;
	*out = p;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Values                                                              */
/* ------------------------------------------------------------------ */

static int read_perm(struct rctx *x, TValue *out)
{
	lua_State *L = x->L;
	uint64_t ref;
	const uint8_t *name;
	size_t nl;
	int rc;

	RD(mig_rd_varint(&x->r, &ref));
	if (ref != 0) {
		if (ref > x->nperm)
			return bad(x, "bad permanent reference");
		setobj(L, out, &x->perm[ref - 1]);
		return 0;
	}
	if ((rc = read_str(x, &name, &nl, 4096)))
		return rc;
	lua_pushlstring(L, (const char *)name, nl);
	if (lua_rawget(L, x->permname) == LUA_TNIL) {
		lua_pop(L, 1);
		return mig_err_set(x->err, MIG_ERR_MALFORMED, "unknown permanent '%.*s'",
				   (int)(nl > 100 ? 100 : nl), (const char *)name);
	}
	GROW(x->perm, x->nperm, x->capperm);
	setobj(L, &x->perm[x->nperm], s2v(L->top.p - 1));
	setobj(L, out, s2v(L->top.p - 1));
	x->nperm++;
	lua_pop(L, 1);
	return 0;
}

static int find_cfn(struct rctx *x, int want_f, int *out)
{
	const uint8_t *name;
	size_t nl;
	int rc, i;

	if ((rc = read_str(x, &name, &nl, MIG_NAME_MAX)))
		return rc;
	i = mig_cfn_find_name(x->c, (const char *)name, nl);
	if (i < 0 || (want_f && x->c->cfn[i].f == NULL) || (!want_f && x->c->cfn[i].k == NULL))
		return mig_err_set(x->err, MIG_ERR_MALFORMED, "unknown C function '%.*s'", (int)nl,
				   (const char *)name);
	*out = i;
	return 0;
}

static int read_udata(struct rctx *x, TValue *out)
{
	lua_State *L = x->L;
	const uint8_t *tname;
	size_t tl;
	int rc;

	if ((rc = read_str(x, &tname, &tl, 256)))
		return rc;
	lua_pushlstring(L, (const char *)tname, tl);
	if (lua_rawget(L, x->udhooks) != LUA_TTABLE) {
		lua_pop(L, 1);
		return mig_err_set(x->err, MIG_ERR_MALFORMED, "no restore hook for userdata type '%.*s'",
				   (int)(tl > 100 ? 100 : tl), (const char *)tname);
	}
	lua_rawgeti(L, -1, 2);
	rc = mig_data_get(L, &x->r, x->err);
	if (rc != 0) {
		lua_pop(L, 2);
		return rc;
	}
	lua_call(L, 1, 1);
	if (lua_type(L, -1) != LUA_TUSERDATA || lua_islightuserdata(L, -1)) {
		lua_pop(L, 2);
		return mig_err_set(x->err, MIG_ERR_LUA, "restore hook did not return a userdata");
	}
	setobj(L, out, s2v(L->top.p - 1));
	lua_pop(L, 2);
	return new_id(x, out, 0);
}

static int read_value(struct rctx *x, TValue *out)
{
	lua_State *L = x->L;
	unsigned tag;
	int rc;

	RD(mig_rd_u8(&x->r, &tag));
	switch (tag) {
	case MIG_T_NIL: setnilvalue(out); return 0;
	case MIG_T_EMPTY: setempty(out); return 0;
	case MIG_T_FALSE: setbfvalue(out); return 0;
	case MIG_T_TRUE: setbtvalue(out); return 0;
	case MIG_T_INT: {
		int64_t v;

		RD(mig_rd_svarint(&x->r, &v));
		setivalue(out, (lua_Integer)v);
		return 0;
	}
	case MIG_T_FLT: {
		uint64_t bits;
		double d;

		RD(mig_rd_u64le(&x->r, &bits));
		memcpy(&d, &bits, sizeof d);
		setfltvalue(out, d);
		return 0;
	}
	case MIG_T_FLTQ: {
		unsigned s;
		int64_t m;

		RD(mig_rd_u8(&x->r, &s));
		RD(mig_rd_svarint(&x->r, &m));
		if (s > 63)
			return bad(x, "bad float scale");
		setfltvalue(out, ldexp((double)m, -(int)s));
		return 0;
	}
	case MIG_T_REF: {
		uint64_t id;

		RD(mig_rd_varint(&x->r, &id));
		if (id >= x->nid || ttypetag(&x->obj[id]) == LUA_VUPVAL)
			return bad(x, "bad object reference");
		setobj(L, out, &x->obj[id]);
		return 0;
	}
	case MIG_T_STR: {
		const uint8_t *p;
		size_t len;
		TString *ts;

		if ((rc = read_str(x, &p, &len, MIG_MAX_STRING)))
			return rc;
		ts = luaS_newlstr(L, (const char *)p, len);
		setsvalue(L, out, ts);
		return new_id(x, out, 0);
	}
	case MIG_T_PERM:
		return read_perm(x, out);
	case MIG_T_TABLE: {
		Table *t = luaH_new(L);

		sethvalue(L, out, t);
		return new_id(x, out, 1);
	}
	case MIG_T_LCL: {
		Proto *p = NULL;
		LClosure *cl;

		if ((rc = read_proto(x, &p)))
			return rc;
		cl = luaF_newLclosure(L, p->sizeupvalues);
		cl->p = p;
		setclLvalue(L, out, cl);
		return new_id(x, out, 1);
	}
	case MIG_T_CCL: {
		int ci;
		unsigned nup;
		CClosure *cl;

		if ((rc = find_cfn(x, 1, &ci)))
			return rc;
		RD(mig_rd_u8(&x->r, &nup));
		cl = luaF_newCclosure(L, (int)nup);
		cl->f = x->c->cfn[ci].f;
		for (unsigned i = 0; i < nup; i++)
			setnilvalue(&cl->upvalue[i]);
		setclCvalue(L, out, cl);
		return new_id(x, out, 1);
	}
	case MIG_T_LCF: {
		int ci;

		if ((rc = find_cfn(x, 1, &ci)))
			return rc;
		setfvalue(out, x->c->cfn[ci].f);
		return 0;
	}
	case MIG_T_UDATA:
		return read_udata(x, out);
	case MIG_T_THREAD: {
		lua_State *th = lua_newthread(L);

		setthvalue(L, out, th);
		lua_pop(L, 1);
		return new_id(x, out, 1);
	}
	default:
		return bad(x, "unknown value tag");
	}
}

/* ------------------------------------------------------------------ */
/* Tables                                                              */
/* ------------------------------------------------------------------ */

static int hashfloat(lua_Number n)
{
	int e;
	lua_Integer ni;
	unsigned int u;

	n = frexp(n, &e) * -(lua_Number)INT_MIN;
	if (!(n >= (lua_Number)LUA_MININTEGER && n < -(lua_Number)LUA_MININTEGER))
		return 0;
	ni = (lua_Integer)n;
	u = (unsigned int)e + (unsigned int)ni;
	return (int)(u <= (unsigned int)INT_MAX ? u : ~u);
}

/* Main position of a key hashed by content (same arithmetic as Lua's
 * tables), or -1 for a key that has none. */
static long mainpos(const Table *t, const TValue *k)
{
	unsigned long size = (unsigned long)sizenode(t);
	unsigned long mod = (size - 1) | 1;

	switch (ttypetag(k)) {
	case LUA_VNUMINT: {
		lua_Unsigned u = (lua_Unsigned)ivalue(k);

		if (u <= (lua_Unsigned)INT_MAX)
			return (long)((unsigned long)((int)u % (int)mod));
		return (long)(u % mod);
	}
	case LUA_VNUMFLT:
		return (long)((unsigned long)hashfloat(fltvalue(k)) % mod);
	case LUA_VSHRSTR:
		return (long)(tsvalue(k)->hash & (size - 1));
	case LUA_VLNGSTR:
		return (long)(luaS_hashlongstr(tsvalue(k)) & (size - 1));
	case LUA_VFALSE:
		return 0;
	case LUA_VTRUE:
		return (long)(1 & (size - 1));
	default:
		return -1;
	}
}

/* Every used node is on one finite chain, free nodes on none, and every
 * key with a value is reachable from its main position: what Lua's lookups
 * and insertions rely on to terminate. */
static int check_chains(struct rctx *x, Table *t)
{
	size_t n = (size_t)sizenode(t), used = 0, seen = 0;
	int32_t *pred, *chain, *pos;

	if (x->captmp < 3 * n) {
		int32_t *nt = realloc(x->tmp, 3 * n * sizeof *nt);

		if (nt == NULL)
			return MIG_ERR_NOMEM;
		x->tmp = nt;
		x->captmp = 3 * n;
	}
	pred = x->tmp;
	chain = pred + n;
	pos = chain + n;
	for (size_t i = 0; i < n; i++)
		pred[i] = -1;
	for (size_t i = 0; i < n; i++) {
		Node *nd = gnode(t, i);
		int nx = gnext(nd);

		if (keyisnil(nd)) {
			if (nx != 0)
				return bad(x, "free node in a chain");
			continue;
		}
		used++;
		if (nx != 0) {
			long j = (long)i + nx;

			if (keyisnil(gnode(t, j)) || pred[j] != -1)
				return bad(x, "bad node chain");
			pred[j] = (int32_t)i;
		}
	}
	for (size_t i = 0; i < n; i++) {
		long j;
		int32_t k = 0;

		if (keyisnil(gnode(t, i)) || pred[i] != -1)
			continue;
		for (j = (long)i;; j += gnext(gnode(t, j))) {
			chain[j] = (int32_t)i;
			pos[j] = k++;
			seen++;
			if (gnext(gnode(t, j)) == 0)
				break;
		}
	}
	if (seen != used)
		return bad(x, "cyclic node chain");
	for (size_t i = 0; i < n; i++) {
		Node *nd = gnode(t, i);
		TValue key;
		long mp;

		if (keyisnil(nd) || keyisdead(nd))
			continue;
		getnodekey(x->L, &key, nd);
		mp = mainpos(t, &key);
		if (mp < 0 || keyisnil(gnode(t, mp)) || chain[mp] != chain[i] || pos[mp] > pos[i])
			return bad(x, "key not reachable from its main position");
	}
	return 0;
}

/* Keys that may stand in a node at a place Lua computes from content. */
static int content_key(const TValue *k)
{
	switch (ttypetag(k)) {
	case LUA_VNUMINT:
	case LUA_VSHRSTR:
	case LUA_VLNGSTR:
	case LUA_VFALSE:
	case LUA_VTRUE:
		return 1;
	case LUA_VNUMFLT:
		return !isnan(fltvalue(k));
	default:
		return 0;
	}
}

static int add_pending(struct rctx *x, Table *t, uint32_t slot, uint32_t ord)
{
	GROW(x->pend, x->npend, x->cappend);
	x->pend[x->npend].t = t;
	x->pend[x->npend].slot = slot;
	x->pend[x->npend].ord = ord;
	x->npend++;
	return 0;
}

static int read_ordered(struct rctx *x, Table *t)
{
	lua_State *L = x->L;
	uint64_t count;
	struct ord *o;
	int rc;

	RD(mig_rd_varint(&x->r, &count));
	if (count > mig_rd_left(&x->r))
		return trunc_err(x);
	GROW(x->ord, x->nord, x->capord);
	o = &x->ord[x->nord];
	o->t = t;
	o->n = 0;
	o->keys = malloc((count ? count : 1) * sizeof *o->keys);
	if (o->keys == NULL)
		return MIG_ERR_NOMEM;
	x->nord++;
	for (uint64_t j = 0; j < count; j++) {
		TValue k, v;

		if (x->r.p < x->r.end && *x->r.p == MIG_T_NODE_PENDING) {
			x->r.p++;
			if ((rc = add_pending(x, NULL, (uint32_t)j, (uint32_t)(x->nord - 1))))
				return rc;
			setnilvalue(&k);
		} else if ((rc = read_value(x, &k)))
			return rc;
		if ((rc = read_value(x, &v)))
			return rc;
		strictnil(&k);
		setobj(L, &o->keys[j], &k);
		o->n++;
		if (ttisnil(&k))
			continue;
		if (ttisfloat(&k) && isnan(fltvalue(&k)))
			return bad(x, "NaN key");
		if (!isempty(&v)) {
			/* Lua would have normalised a float with an integer
			 * value; such a key cannot come from a real table. */
			lua_Integer ik;

			if (ttisfloat(&k) && luaV_flttointeger(fltvalue(&k), &ik, F2Ieq))
				return bad(x, "float key with an integer value");
			luaH_set(L, t, &k, &v);
		}
	}
	return 0;
}

static int read_table_body(struct rctx *x, Table *t)
{
	lua_State *L = x->L;
	unsigned flags, lsize = 0;
	uint64_t alimit, asize, nsize, lastfree;
	int rc;

	RD(mig_rd_u8(&x->r, &flags));
	if (flags & ~MIG_TB_ALL)
		return bad(x, "bad table flags");
	if (flags & MIG_TB_MT) {
		TValue mt;

		if ((rc = read_value(x, &mt)))
			return rc;
		if (!ttistable(&mt))
			return bad(x, "metatable is not a table");
		t->metatable = hvalue(&mt);
	}
	RD(mig_rd_varint(&x->r, &alimit));
	if (alimit > MIG_MAX_ASIZE)
		return mig_err_set(x->err, MIG_ERR_LIMIT, "array part too large");
	asize = alimit;
	if ((flags & MIG_TB_BITRAS) && (alimit & (alimit - 1)) != 0) {
		asize = 1;
		while (asize < alimit)
			asize <<= 1;
	}
	if (asize > mig_rd_left(&x->r))
		return trunc_err(x);
	if (flags & MIG_TB_DUMMY)
		nsize = 0;
	else {
		RD(mig_rd_u8(&x->r, &lsize));
		if (lsize > MIG_MAX_LSIZENODE)
			return mig_err_set(x->err, MIG_ERR_LIMIT, "hash part too large");
		nsize = (uint64_t)1 << lsize;
		/* Every node costs a byte in the exact layout. An ordered table
		 * writes its used nodes (two bytes or more each), and Lua sizes
		 * a hash part to at most about twice what it holds. */
		if (!(flags & MIG_TB_ORDERED) && nsize > mig_rd_left(&x->r))
			return trunc_err(x);
		if ((flags & MIG_TB_ORDERED) && nsize > 4 * (uint64_t)mig_rd_left(&x->r) + 64)
			return trunc_err(x);
	}
	luaH_resize(L, t, (unsigned)asize, (unsigned)nsize);
	if ((unsigned)sizenode(t) != nsize && nsize != 0)
		return bad(x, "hash size");
	for (uint64_t i = 0; i < asize; i++) {
		TValue v;

		if ((rc = read_value(x, &v)))
			return rc;
		rawcopy(&t->array[i], &v);
	}
	t->alimit = (unsigned)alimit;
	/* No metamethod is cached as absent: Lua looks each one up again. */
	t->flags = 0;
	if (flags & MIG_TB_BITRAS)
		setnorealasize(t);
	if (luaH_realasize(t) != asize)
		return bad(x, "array size");
	if (flags & MIG_TB_ORDERED)
		return read_ordered(x, t);
	if (nsize == 0)
		return 0;
	RD(mig_rd_varint(&x->r, &lastfree));
	if (lastfree > nsize)
		return bad(x, "lastfree beyond the hash part");
	for (uint64_t i = 0; i < nsize; i++) {
		Node *nd = gnode(t, i);
		unsigned tag;
		int64_t nx;

		if (x->r.p >= x->r.end)
			return trunc_err(x);
		tag = *x->r.p;
		if (tag == MIG_T_NODE_FREE) {
			x->r.p++;
			continue;
		}
		if (tag == MIG_T_NODE_PENDING) {
			x->r.p++;
			/* Until a fixup binds it, a removed key stands for
			 * nothing any program holds. */
			nd->u.key_tt = LUA_TDEADKEY;
			nd->u.key_val.gc = obj2gco(x->sentinel);
			setempty(gval(nd));
			if ((rc = add_pending(x, t, (uint32_t)i, 0)))
				return rc;
		} else {
			TValue k, v;

			if ((rc = read_value(x, &k)) || (rc = read_value(x, &v)))
				return rc;
			if (!content_key(&k))
				return bad(x, "node key of a kind hashed by address");
			setnodekey(L, nd, &k);
			rawcopy(gval(nd), &v);
		}
		RD(mig_rd_svarint(&x->r, &nx));
		if (nx <= -(int64_t)nsize || nx >= (int64_t)nsize || (int64_t)i + nx < 0 ||
		    (int64_t)i + nx >= (int64_t)nsize)
			return bad(x, "node link out of the hash part");
		gnext(nd) = (int)nx;
	}
	t->lastfree = gnode(t, lastfree);
	return check_chains(x, t);
}

/* ------------------------------------------------------------------ */
/* Closures                                                            */
/* ------------------------------------------------------------------ */

static int read_upval(struct rctx *x, UpVal **out)
{
	lua_State *L = x->L;
	unsigned tag;
	UpVal *uv;
	TValue tv;
	int rc;

	RD(mig_rd_u8(&x->r, &tag));
	if (tag == MIG_UV_REF) {
		uint64_t id;

		RD(mig_rd_varint(&x->r, &id));
		if (id >= x->nid || ttypetag(&x->obj[id]) != LUA_VUPVAL)
			return bad(x, "bad upvalue reference");
		*out = gco2upv(gcvalue(&x->obj[id]));
		return 0;
	}
	if (tag != MIG_UV_CLOSED && tag != MIG_UV_OPEN)
		return bad(x, "bad upvalue tag");
	{
		/* Lua's cast macros may evaluate their argument twice. */
		GCObject *o = luaC_newobj(L, LUA_VUPVAL, sizeof(UpVal));

		uv = gco2upv(o);
	}
	uv->v.p = &uv->u.value;
	setnilvalue(uv->v.p);
	tv.value_.gc = obj2gco(uv);
	tv.tt_ = ctb(LUA_VUPVAL);
	if ((rc = new_id(x, &tv, 0)))
		return rc;
	*out = uv;
	if (tag == MIG_UV_CLOSED) {
		rc = read_value(x, uv->v.p);
		strictnil(uv->v.p);
		return rc;
	}
	{
		TValue th;
		uint64_t level;

		if ((rc = read_value(x, &th)))
			return rc;
		if (!ttisthread(&th))
			return bad(x, "open upvalue of a non-thread");
		RD(mig_rd_varint(&x->r, &level));
		if (level == 0 || level > LUAI_MAXSTACK)
			return bad(x, "open upvalue level");
		GROW(x->ouv, x->nouv, x->capouv);
		x->ouv[x->nouv].uv = uv;
		x->ouv[x->nouv].th = thvalue(&th);
		x->ouv[x->nouv].level = (uint32_t)level;
		x->nouv++;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Threads                                                             */
/* ------------------------------------------------------------------ */



static int is_mm_op(OpCode op)
{
	switch (op) {
	case OP_MMBIN: case OP_MMBINI: case OP_MMBINK:
	case OP_UNM: case OP_BNOT: case OP_LEN:
	case OP_GETTABUP: case OP_GETTABLE: case OP_GETI: case OP_GETFIELD: case OP_SELF:
	case OP_LT: case OP_LE: case OP_LTI: case OP_LEI: case OP_GTI: case OP_GEI: case OP_EQ:
	case OP_CONCAT:
		return 1; /* one result */
	case OP_CLOSE: case OP_RETURN:
	case OP_SETTABUP: case OP_SETTABLE: case OP_SETI: case OP_SETFIELD:
		return 2; /* no result */
	default:
		return 0;
	}
}

/* Where the frame's function was called: a vararg Lua function moved
 * itself up over its arguments, and returns its results down there. */
static uint64_t frame_origin(lua_State *th, const struct frame *g)
{
	const TValue *gfn = s2v(th->stack.p + g->func);

	if (g->lua && ttisLclosure(gfn) && clLvalue(gfn)->p->is_vararg) {
		uint64_t shift = g->extra + clLvalue(gfn)->p->numparams + 1;

		return shift <= g->func ? g->func - shift : 0;
	}
	return g->func;
}

/* Checks that Lua frame f (proto p) is suspended where a call leaves it,
 * with frame g (the next one up) being that call. */
static int check_call_site(struct rctx *x, lua_State *th, const struct frame *f, const Proto *p,
			   const struct frame *g)
{
	Instruction i = p->code[f->pc - 1];
	OpCode op = GET_OPCODE(i);
	uint64_t base = f->func + 1, a = (uint64_t)GETARG_A(i);
	int fresh = g->lua && (g->status & CIST_FRESH);
	int mm = is_mm_op(op);
	uint64_t gfunc;

	/* g is checked on its own only after f: bound it before use. */
	if (g->func < 1 || g->func >= (uint64_t)(th->top.p - th->stack.p))
		return bad(x, "frame bounds");

	gfunc = frame_origin(th, g);

	if ((op == OP_CALL || op == OP_TAILCALL) && (!g->lua || !fresh)) {
		if (gfunc != base + a)
			return mig_err_set(x->err, MIG_ERR_MALFORMED,
					   "malformed state: callee at %llu, call puts it at %llu (op %d)",
					   (unsigned long long)gfunc, (unsigned long long)(base + a), (int)op);
		if ((op == OP_CALL && g->nres != GETARG_C(i) - 1) || (op == OP_TAILCALL && g->nres != LUA_MULTRET))
			return bad(x, "callee result count");
		return 0;
	}
	if (op == OP_TFORCALL && (fresh || !g->lua)) {
		if (gfunc != base + a + 4 || g->nres != GETARG_C(i))
			return bad(x, "iterator frame");
		return 0;
	}
	if (mm && (fresh || !g->lua)) {
		if (gfunc < base || g->func > f->top)
			return bad(x, "metamethod frame outside its caller");
		if (g->nres != (mm == 1 ? 1 : 0))
			return bad(x, "metamethod result count");
		if ((op == OP_MMBIN || op == OP_MMBINI || op == OP_MMBINK) && f->pc < 2)
			return bad(x, "metamethod pc");
		if (op == OP_CONCAT && (gfunc < base + a + 2 || gfunc > base + a + (uint64_t)GETARG_B(i)))
			return bad(x, "concat frame");
		if (op == OP_RETURN && (f->u2 < 0 || base + a + (uint64_t)f->u2 > f->top))
			return bad(x, "return count");
		return 0;
	}
	return bad(x, "frame suspended at an instruction that cannot call");
}

/* The VM trusts some registers' types where the compiler guarantees them:
 * the table of a constructor between OP_NEWTABLE and its OP_SETLIST, and
 * the three control registers of a numeric for loop. A frame stopped in
 * such a range must hold values of those types. exec is the index of the
 * next instruction the frame executes. */
static int check_registers(struct rctx *x, lua_State *th, const Proto *p, uint64_t base, uint64_t exec)
{
	int lastnt[MAXARG_A + 1];

	for (int a = 0; a <= MAXARG_A; a++)
		lastnt[a] = -1;
	for (int j = 0; j < p->sizecode; j++) {
		Instruction i = p->code[j];
		int a = GETARG_A(i);

		switch (GET_OPCODE(i)) {
		case OP_NEWTABLE:
			lastnt[a] = j;
			break;
		case OP_SETLIST:
			if (lastnt[a] >= 0 && (uint64_t)lastnt[a] < exec && exec <= (uint64_t)j &&
			    !ttistable(s2v(th->stack.p + base + a)))
				return bad(x, "table constructor register is not a table");
			break;
		case OP_FORLOOP: {
			uint64_t first = (uint64_t)j + 1 - (uint64_t)GETARG_Bx(i);

			if ((uint64_t)j + 1 >= (uint64_t)GETARG_Bx(i) && first <= exec && exec <= (uint64_t)j) {
				const TValue *r = s2v(th->stack.p + base + a);

				if (ttisinteger(&r[2]) ? !(ttisinteger(&r[0]) && ttisinteger(&r[1]))
						       : !(ttisfloat(&r[0]) && ttisfloat(&r[1]) && ttisfloat(&r[2])))
					return bad(x, "numeric for loop registers");
			}
			break;
		}
		default:
			break;
		}
	}
	return 0;
}

static int read_frame(struct rctx *x, struct frame *f)
{
	RD(mig_rd_u8(&x->r, &f->lua));
	if (f->lua > 1)
		return bad(x, "frame kind");
	f->lua = !f->lua;
	RD(mig_rd_varint(&x->r, &f->func));
	RD(mig_rd_varint(&x->r, &f->top));
	RD(mig_rd_svarint(&x->r, &f->nres));
	RD(mig_rd_varint(&x->r, &f->status));
	RD(mig_rd_svarint(&x->r, &f->u2));
	f->k = -1;
	f->ctx = 0;
	f->errslot = 0;
	if (f->lua) {
		RD(mig_rd_varint(&x->r, &f->pc));
		RD(mig_rd_varint(&x->r, &f->extra));
	} else {
		const uint8_t *name;
		size_t nl;
		int rc;

		if ((rc = read_str(x, &name, &nl, MIG_NAME_MAX)))
			return rc;
		if (nl > 0) {
			f->k = mig_cfn_find_name(x->c, (const char *)name, nl);
			if (f->k < 0 || x->c->cfn[f->k].k == NULL)
				return bad(x, "unknown continuation");
		}
		RD(mig_rd_svarint(&x->r, &f->ctx));
		RD(mig_rd_varint(&x->r, &f->errslot));
	}
	return 0;
}

static int read_thread_body(struct rctx *x, lua_State *th)
{
	lua_State *L = x->L;
	unsigned status, allowhook;
	uint64_t ssize, top, ntbc, nframes, errslot, oldpc;
	struct frame *fr = NULL;
	int rc = 0;

	(void)L;
	RD(mig_rd_u8(&x->r, &status));
	if (status > LUA_ERRERR)
		return bad(x, "thread status");
	RD(mig_rd_varint(&x->r, &ssize));
	RD(mig_rd_varint(&x->r, &top));
	if (ssize > LUAI_MAXSTACK || ssize < LUA_MINSTACK + 1)
		return mig_err_set(x->err, MIG_ERR_LIMIT, "stack size");
	if (top < 1 || top > ssize)
		return bad(x, "stack top");
	if (top > mig_rd_left(&x->r))
		return trunc_err(x);
	if (!luaD_reallocstack(th, (int)ssize, 0))
		return MIG_ERR_NOMEM;
	for (uint64_t i = 0; i < top; i++) {
		TValue v;

		if ((rc = read_value(x, &v)))
			return rc;
		strictnil(&v);
		setobj2s(th, th->stack.p + i, &v);
	}
	th->top.p = th->stack.p + top;

	RD(mig_rd_varint(&x->r, &ntbc));
	if (ntbc > top)
		return bad(x, "to-be-closed list");
	{
		uint64_t expect = 0;

		for (uint64_t i = 0; i < ntbc; i++) {
			uint64_t slot, delta;

			RD(mig_rd_varint(&x->r, &slot));
			RD(mig_rd_varint(&x->r, &delta));
			if (slot == 0 || slot >= top || delta > USHRT_MAX || (i > 0 && slot != expect) ||
			    (i == 0 && delta == 0))
				return bad(x, "to-be-closed list");
			if (delta == 0 && slot < USHRT_MAX)
				return bad(x, "to-be-closed dummy node");
			expect = delta ? slot - delta : slot - USHRT_MAX;
			if (delta > slot)
				return bad(x, "to-be-closed delta");
			if (i == 0)
				th->tbclist.p = th->stack.p + slot;
			th->stack.p[slot].tbclist.delta = (unsigned short)delta;
		}
		if (ntbc > 0 && expect != 0)
			return bad(x, "to-be-closed list does not end at the base");
	}

	RD(mig_rd_varint(&x->r, &nframes));
	if (nframes > MIG_MAX_FRAMES)
		return mig_err_set(x->err, MIG_ERR_LIMIT, "too many frames");
	if (nframes > mig_rd_left(&x->r))
		return trunc_err(x);
	if ((status == LUA_YIELD) != (nframes > 0))
		return bad(x, "frames do not match the status");
	if (nframes > 0) {
		/* Owned by the context (early returns and Lua errors leave it
		 * to the final cleanup). */
		if (x->capfr < nframes) {
			fr = realloc(x->fr, nframes * sizeof *fr);
			if (fr == NULL)
				return MIG_ERR_NOMEM;
			x->fr = fr;
			x->capfr = nframes;
		}
		fr = x->fr;
	}
	for (uint64_t i = 0; i < nframes && rc == 0; i++)
		rc = read_frame(x, &fr[i]);
	if (rc != 0)
		goto out;

	/* Check each frame alone, then against the one above it. */
	for (uint64_t i = 0; i < nframes; i++) {
		struct frame *f = &fr[i];
		int last = i + 1 == nframes;
		const TValue *fn;

		/* Results land from the function's slot up: they must fit. The
		 * first frame was started by resume, which wants them all. */
		if (f->func < 1 || f->func >= top || (i > 0 && f->func <= fr[i - 1].func) ||
		    f->top > ssize || f->top <= f->func || f->nres < LUA_MULTRET || f->nres > 255 ||
		    f->func + (uint64_t)(f->nres > 0 ? f->nres : 0) > ssize ||
		    (i == 0 && f->nres != LUA_MULTRET)) {
			rc = bad(x, "frame bounds");
			goto out;
		}
		fn = s2v(th->stack.p + f->func);
		if (f->lua) {
			const Proto *p;
			unsigned allowed = CIST_OAH | CIST_FRESH | CIST_TAIL | (last ? CIST_HOOKYIELD : 0);

			if (!ttisLclosure(fn)) {
				rc = bad(x, "Lua frame without a Lua function");
				goto out;
			}
			p = clLvalue(fn)->p;
			/* Above the base (a C boundary) Lua starts a fresh
			 * luaV_execute; without the mark, a return would run on
			 * into the base frame. */
			if ((f->status & ~allowed) || (last && !(f->status & CIST_HOOKYIELD)) ||
			    (i == 0 && !(f->status & CIST_FRESH))) {
				rc = bad(x, "Lua frame status");
				goto out;
			}
			/* A hook-stopped frame resumes with the top it had:
			 * inside its registers. */
			if (f->top != f->func + 1 + p->maxstacksize || f->pc < 1 ||
			    f->pc > (uint64_t)p->sizecode || (last && top <= f->func)) {
				rc = bad(x, "Lua frame registers or pc");
				goto out;
			}
			/* A vararg frame moved its function up over the
			 * arguments; where it was must still be above the
			 * caller's function. */
			if ((!p->is_vararg && f->extra != 0) ||
			    (p->is_vararg && (f->extra + p->numparams + 1 > f->func ||
					      (i > 0 && f->func - f->extra - p->numparams - 1 <= fr[i - 1].func)))) {
				rc = bad(x, "vararg frame");
				goto out;
			}
			if (!last && (rc = check_call_site(x, th, f, p, &fr[i + 1])))
				goto out;
			if ((rc = check_registers(x, th, p, f->func + 1,
						  f->pc - ((f->status & CIST_HOOKYIELD) ? 1 : 0))))
				goto out;
			if (last || GET_OPCODE(p->code[f->pc - 1]) != OP_RETURN)
				f->u2 = 0;
		} else {
			unsigned allowed = CIST_C | CIST_OAH | CIST_YPCALL | CIST_TAIL | (7u << CIST_RECST);
			unsigned recst = (unsigned)(f->status >> CIST_RECST) & 7;

			if (!ttislcf(fn) && !ttisCclosure(fn)) {
				rc = bad(x, "C frame without a C function");
				goto out;
			}
			if ((f->status & ~allowed) || !(f->status & CIST_C) || recst > LUA_ERRERR ||
			    (recst != 0 && !(f->status & CIST_YPCALL))) {
				rc = bad(x, "C frame status");
				goto out;
			}
			/* The topmost C function's frame covers the values it
			 * yielded (the host pushes resume values above). */
			if ((!last && f->k < 0) || f->errslot >= top || (last && f->top < top) ||
			    (f->errslot != 0 && !ttisfunction(s2v(th->stack.p + f->errslot)))) {
				rc = bad(x, "C frame continuation");
				goto out;
			}
			if (f->status & CIST_YPCALL) {
				if (f->u2 <= (int64_t)f->func || (uint64_t)f->u2 >= ssize) {
					rc = bad(x, "protected call slot");
					goto out;
				}
			} else
				f->u2 = 0;
			if (f->k >= 0 && strcmp(x->c->cfn[f->k].name, MIG_CFN_PCALLK) == 0) {
				/* The engine's own pcall/xpcall: its layout is known. */
				lua_CFunction want = f->ctx == 0 ? mig_env_pcall_f(0) : mig_env_pcall_f(1);

				if ((f->ctx != 0 && f->ctx != 2) || !ttislcf(fn) || fvalue(fn) != want ||
				    ((f->status & CIST_YPCALL) && (uint64_t)f->u2 != f->func + 2 + (uint64_t)f->ctx)) {
					rc = bad(x, "pcall frame");
					goto out;
				}
			}
			if (!last) {
				const struct frame *g = &fr[i + 1];

				/* While a pcall recovers from an error (RECST set),
				 * __close methods run wherever the top was. */
				unsigned recst2 = (unsigned)(f->status >> CIST_RECST) & 7;

				uint64_t gorig;

				if (g->func < 1 || g->func >= top) {
					rc = bad(x, "frame bounds");
					goto out;
				}
				gorig = frame_origin(th, g);
				if (gorig <= f->func || (recst2 == 0 && gorig >= f->top) ||
				    ((f->status & CIST_YPCALL) && recst2 == 0 && gorig != (uint64_t)f->u2)) {
					rc = bad(x, "frame above a C frame");
					goto out;
				}
				if (g->lua && !(g->status & CIST_FRESH)) {
					rc = bad(x, "Lua frame called from C without a fresh start");
					goto out;
				}
			}
		}
	}

	RD(mig_rd_varint(&x->r, &errslot));
	RD(mig_rd_varint(&x->r, &oldpc));
	RD(mig_rd_u8(&x->r, &allowhook));

	/* Message handlers nest with the protected calls: each saves the
	 * handler in force below it, and the innermost one's is current.
	 * The engine's pcall/xpcall layout is known exactly; a host frame
	 * keeps its handler inside its own slots. */
	{
		int known = 1;
		uint64_t expect = 0;

		for (uint64_t i = 0; i < nframes; i++) {
			struct frame *f = &fr[i];

			if (f->lua || !(f->status & CIST_YPCALL))
				continue;
			if (f->k < 0) {
				rc = bad(x, "protected call without continuation");
				goto out;
			}
			if (known && f->errslot != expect) {
				rc = bad(x, "saved message handler");
				goto out;
			}
			if (f->k >= 0 && strcmp(x->c->cfn[f->k].name, MIG_CFN_PCALLK) == 0)
				expect = f->ctx == 2 ? f->func + 2 : 0;
			else
				known = 0;
			if (i + 1 < nframes && fr[i + 1].lua && ((f->status >> CIST_RECST) & 7) == 0 &&
			    strcmp(x->c->cfn[f->k].name, MIG_CFN_PCALLK) == 0 && fr[i + 1].nres != LUA_MULTRET) {
				rc = bad(x, "protected call result count");
				goto out;
			}
		}
		if (known && errslot != expect) {
			rc = bad(x, "current message handler");
			goto out;
		}
	}
	/* Lua calls the message handler without checking its type. */
	if (errslot >= top || allowhook > 1 || oldpc > INT_MAX ||
	    (errslot != 0 && !ttisfunction(s2v(th->stack.p + errslot)))) {
		rc = bad(x, "thread fields");
		goto out;
	}

	for (uint64_t i = 0; i < nframes; i++) {
		struct frame *f = &fr[i];
		CallInfo *ci = luaE_extendCI(th);

		th->ci = ci;
		ci->func.p = th->stack.p + f->func;
		ci->top.p = th->stack.p + f->top;
		ci->nresults = (short)f->nres;
		ci->callstatus = (unsigned short)f->status;
		if (f->lua) {
			ci->u.l.savedpc = clLvalue(s2v(ci->func.p))->p->code + f->pc;
			ci->u.l.trap = 0;
			ci->u.l.nextraargs = (int)f->extra;
			ci->u2.nres = (int)f->u2;
		} else {
			ci->u.c.k = f->k >= 0 ? x->c->cfn[f->k].k : NULL;
			ci->u.c.ctx = (lua_KContext)f->ctx;
			ci->u.c.old_errfunc = (ptrdiff_t)(f->errslot * sizeof(StackValue));
			ci->u2.funcidx = (int)(f->u2 * (int64_t)sizeof(StackValue));
		}
	}
	th->errfunc = (ptrdiff_t)(errslot * sizeof(StackValue));
	th->oldpc = (int)oldpc;
	th->allowhook = (lu_byte)allowhook;
	th->nCcalls = 0;
	th->status = (lu_byte)status;
out:
	return rc;
}

/* ------------------------------------------------------------------ */
/* Finishing                                                           */
/* ------------------------------------------------------------------ */

static int read_fixups(struct rctx *x)
{
	uint64_t last = 0;

	for (;;) {
		uint64_t k;
		unsigned tag;
		TValue v;
		struct pend *pd;
		int rc;

		RD(mig_rd_varint(&x->r, &k));
		if (k == 0)
			return 0;
		if (k <= last || k > x->npend)
			return bad(x, "bad fixup index");
		last = k;
		if (x->r.p >= x->r.end)
			return trunc_err(x);
		tag = *x->r.p;
		if (tag != MIG_T_REF && tag != MIG_T_PERM)
			return bad(x, "fixup is not a reference");
		if ((rc = read_value(x, &v)))
			return rc;
		if (!iscollectable(&v))
			return bad(x, "fixup to a value without identity");
		pd = &x->pend[k - 1];
		if (pd->t != NULL) {
			Node *nd = gnode(pd->t, pd->slot);

			nd->u.key_val.gc = gcvalue(&v);
			/* A dead key hashed by address sits where its old
			 * address put it: only an overlay can find it now. */
			if (!ttisstring(&v)) {
				GROW(x->lay, x->nlay, x->caplay);
				if (x->nlay == 0 || x->lay[x->nlay - 1] != pd->t)
					x->lay[x->nlay++] = pd->t;
			}
		} else
			setobj(x->L, &x->ord[pd->ord].keys[pd->slot], &v);
	}
}

static int cmp_ouv(const void *a, const void *b)
{
	const struct openuv *p = a, *q = b;

	if (p->th != q->th)
		return (uintptr_t)p->th < (uintptr_t)q->th ? -1 : 1;
	return p->level > q->level ? -1 : p->level < q->level ? 1 : 0;
}

/* Opens the upvalues that were open, in each thread's list sorted by
 * decreasing level as Lua keeps it. */
static int link_open_upvalues(struct rctx *x)
{
	global_State *g = G(x->L);

	if (x->nouv == 0)
		return 0;
	qsort(x->ouv, x->nouv, sizeof *x->ouv, cmp_ouv);
	for (size_t i = 0; i < x->nouv; i++) {
		struct openuv *o = &x->ouv[i];
		lua_State *th = o->th;

		if (th->status == LUA_OK && th->ci == &th->base_ci && th->top.p == th->stack.p + 1)
			return bad(x, "open upvalue of a finished thread");
		if (th == x->L || th == g->mainthread || th->openupval != NULL ||
		    o->level >= (uint64_t)(th->top.p - th->stack.p))
			return bad(x, "open upvalue outside its thread's stack");
		if (i > 0 && x->ouv[i - 1].th == th && x->ouv[i - 1].level == o->level)
			return bad(x, "two open upvalues for one slot");
	}
	/* An open upvalue is a local of some frame, never the slot holding a
	 * frame's function: writing through it would replace the function
	 * the VM is running. */
	for (size_t i = 0; i < x->nouv;) {
		lua_State *th = x->ouv[i].th;
		size_t n = (size_t)(th->top.p - th->stack.p), j;
		uint8_t *funcs = calloc(n / 8 + 1, 1);

		if (funcs == NULL)
			return MIG_ERR_NOMEM;
		for (CallInfo *ci = th->ci; ci != &th->base_ci; ci = ci->previous) {
			size_t f = (size_t)(ci->func.p - th->stack.p);

			funcs[f / 8] |= (uint8_t)(1u << (f % 8));
		}
		for (j = i; j < x->nouv && x->ouv[j].th == th; j++) {
			uint32_t lv = x->ouv[j].level;

			if (funcs[lv / 8] & (1u << (lv % 8))) {
				free(funcs);
				return bad(x, "open upvalue on a function slot");
			}
		}
		free(funcs);
		i = j;
	}
	for (size_t i = 0; i < x->nouv;) {
		lua_State *th = x->ouv[i].th;
		UpVal **prev = &th->openupval;

		for (; i < x->nouv && x->ouv[i].th == th; i++) {
			UpVal *uv = x->ouv[i].uv;

			uv->v.p = s2v(th->stack.p + x->ouv[i].level);
			uv->u.open.previous = prev;
			uv->u.open.next = NULL;
			*prev = uv;
			prev = &uv->u.open.next;
		}
		if (!isintwups(th)) {
			th->twups = g->twups;
			g->twups = th;
		}
	}
	return 0;
}

/* Marks the restored objects that were marked for finalization, in the
 * order they had in Lua's list, so that finalizers run in the order they
 * would have run at the source. */
static int read_finalizers(struct rctx *x, GCObject *oldhead)
{
	global_State *g = G(x->L);
	struct mig_pmap set = { 0 };
	GCObject **objs, **p;
	uint64_t n;
	int rc = 0;

	RD(mig_rd_varint(&x->r, &n));
	if (n > x->nid)
		return bad(x, "finalizer list longer than the objects");
	if (n > mig_rd_left(&x->r))
		return trunc_err(x);
	if (n == 0)
		return 0;
	objs = malloc(n * sizeof *objs);
	if (objs == NULL)
		return MIG_ERR_NOMEM;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t id;
		const TValue *v;

		if ((rc = mig_rd_varint(&x->r, &id)) != 0) {
			rc = rderr(x, rc);
			goto out;
		}
		if (id >= x->nid) {
			rc = bad(x, "finalizer of an unknown object");
			goto out;
		}
		v = &x->obj[id];
		if (!ttistable(v) && !ttisfulluserdata(v)) {
			rc = bad(x, "finalizer of an object that cannot have one");
			goto out;
		}
		if (mig_pmap_get(&set, gcvalue(v)) != NULL) {
			rc = bad(x, "object listed twice for finalization");
			goto out;
		}
		if (mig_pmap_add(&set, gcvalue(v), 1) != 0) {
			rc = MIG_ERR_NOMEM;
			goto out;
		}
		objs[i] = gcvalue(v);
	}
	if (g->gcstp & GCSTPCLS)
		goto out;
	/* Take them out of wherever they are: the new objects at the head of
	 * allgc, or finobj for userdata a restore hook gave a __gc. */
	for (p = &g->allgc; *p != NULL && *p != oldhead;) {
		if (mig_pmap_get(&set, *p) != NULL)
			*p = (*p)->next;
		else
			p = &(*p)->next;
	}
	for (p = &g->finobj; *p != NULL;) {
		if (mig_pmap_get(&set, *p) != NULL)
			*p = (*p)->next;
		else
			p = &(*p)->next;
	}
	for (uint64_t i = n; i-- > 0;) {
		objs[i]->next = g->finobj;
		g->finobj = objs[i];
		l_setbit(objs[i]->marked, FINALIZEDBIT);
	}
out:
	mig_pmap_free(&set);
	free(objs);
	return rc;
}

static void push_tv(lua_State *L, const TValue *v)
{
	setobj2s(L, L->top.p, v);
	L->top.p++;
}

/* Gives table t the overlay `keys` (n entries, nils skipped). */
static void set_overlay(struct rctx *x, int overlays, Table *t, const TValue *keys, uint32_t n)
{
	lua_State *L = x->L;
	lua_Integer m = 0;

	/* The overlay holds its keys weakly: a key nobody else holds cannot
	 * be handed to `next`, and weak tables must stay weak. */
	lua_createtable(L, 3, 0);
	lua_createtable(L, (int)n, 0);
	lua_rawgeti(L, x->env, MIG_ENV_WEAKV);
	lua_setmetatable(L, -2);
	lua_createtable(L, 0, (int)n);
	lua_rawgeti(L, x->env, MIG_ENV_WEAKK);
	lua_setmetatable(L, -2);
	for (uint32_t j = 0; j < n; j++) {
		if (ttisnil(&keys[j]))
			continue;
		m++;
		push_tv(L, &keys[j]);
		lua_pushvalue(L, -1);
		lua_rawseti(L, -4, m);
		lua_pushinteger(L, m);
		lua_rawset(L, -3);
	}
	lua_rawseti(L, -3, MIG_OV_IDX);
	lua_rawseti(L, -2, MIG_OV_LIST);
	lua_pushinteger(L, m);
	lua_rawseti(L, -2, MIG_OV_N);
	sethvalue2s(L, L->top.p, t);
	L->top.p++;
	lua_insert(L, -2);
	lua_rawset(L, overlays);
}

static int make_overlays(struct rctx *x)
{
	lua_State *L = x->L;
	int overlays;

	if (x->nord == 0 && x->nlay == 0)
		return 0;
	luaL_checkstack(L, 8, NULL);
	lua_rawgeti(L, x->env, MIG_ENV_OVERLAYS);
	overlays = lua_gettop(L);
	for (size_t i = 0, n = x->nord; i < n; i++)
		set_overlay(x, overlays, x->ord[i].t, x->ord[i].keys, x->ord[i].n);
	for (size_t i = 0; i < x->nlay; i++) {
		Table *t = x->lay[i];
		uint32_t n = (uint32_t)sizenode(t), m = 0;
		TValue *keys;

		GROW(x->ord, x->nord, x->capord);
		keys = malloc(n * sizeof *keys);
		if (keys == NULL)
			return MIG_ERR_NOMEM;
		/* Owned by x->ord from here, so freed whatever happens. */
		x->ord[x->nord].t = NULL;
		x->ord[x->nord].keys = keys;
		x->ord[x->nord].n = 0;
		x->nord++;
		for (uint32_t j = 0; j < n; j++) {
			Node *nd = gnode(t, j);

			if (keyisnil(nd) || (keyisdead(nd) && nd->u.key_val.gc == obj2gco(x->sentinel)))
				continue;
			if (keyisdead(nd)) {
				keys[m].value_.gc = nd->u.key_val.gc;
				keys[m].tt_ = ctb(nd->u.key_val.gc->tt);
			} else
				getnodekey(L, &keys[m], nd);
			m++;
		}
		set_overlay(x, overlays, t, keys, m);
	}
	lua_pop(L, 1);
	x->c->overlays = 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Driver                                                              */
/* ------------------------------------------------------------------ */

/* Rebuilds a string.gmatch iterator's private state from offsets. */
static int read_gmatch_body(struct rctx *x, CClosure *cl)
{
	lua_State *L = x->L;
	struct mig_gmatch *gm;
	uint64_t srcoff, lastoff;
	size_t len, plen;
	int rc;

	if (cl->nupvalues != 3)
		return bad(x, "gmatch iterator upvalues");
	if ((rc = read_value(x, &cl->upvalue[0])) || (rc = read_value(x, &cl->upvalue[1])))
		return rc;
	strictnil(&cl->upvalue[0]);
	strictnil(&cl->upvalue[1]);
	if (!ttisstring(&cl->upvalue[0]) || !ttisstring(&cl->upvalue[1]))
		return bad(x, "gmatch iterator strings");
	RD(mig_rd_varint(&x->r, &srcoff));
	RD(mig_rd_varint(&x->r, &lastoff));
	len = tsslen(tsvalue(&cl->upvalue[0]));
	plen = tsslen(tsvalue(&cl->upvalue[1]));
	if (srcoff > (uint64_t)len + 1 || lastoff > (uint64_t)len + 1)
		return bad(x, "gmatch iterator position");
	gm = lua_newuserdatauv(L, sizeof *gm, 0);
	memset(gm, 0, sizeof *gm);
	gm->ms.src_init = getstr(tsvalue(&cl->upvalue[0]));
	gm->ms.src_end = gm->ms.src_init + len;
	gm->ms.p_end = getstr(tsvalue(&cl->upvalue[1])) + plen;
	gm->ms.L = L;
	gm->ms.matchdepth = MIG_GMATCH_DEPTH;
	gm->src = gm->ms.src_init + srcoff;
	gm->p = getstr(tsvalue(&cl->upvalue[1]));
	gm->lastmatch = lastoff ? gm->ms.src_init + (lastoff - 1) : NULL;
	setobj(L, &cl->upvalue[2], s2v(L->top.p - 1));
	lua_pop(L, 1);
	return 0;
}

static int read_body(struct rctx *x, uint32_t id)
{
	const TValue *o = &x->obj[id];
	int rc;

	switch (ttypetag(o)) {
	case LUA_VTABLE:
		return read_table_body(x, hvalue(o));
	case LUA_VLCL: {
		LClosure *cl = clLvalue(o);

		for (int i = 0; i < cl->nupvalues; i++) {
			UpVal *uv = NULL;

			if ((rc = read_upval(x, &uv)))
				return rc;
			cl->upvals[i] = uv;
		}
		return 0;
	}
	case LUA_VCCL: {
		CClosure *cl = clCvalue(o);

		if (cl->f == x->c->gmatch && x->c->gmatch != NULL)
			return read_gmatch_body(x, cl);
		for (int i = 0; i < cl->nupvalues; i++) {
			if ((rc = read_value(x, &cl->upvalue[i])))
				return rc;
			strictnil(&cl->upvalue[i]);
		}
		return 0;
	}
	case LUA_VTHREAD:
		return read_thread_body(x, thvalue(o));
	default:
		return bad(x, "internal: body of a leaf");
	}
}

/* Lua adds a value to a thread's to-be-closed list only when it is not
 * false and has a __close metamethod, and closing relies on that (its own
 * assertion fires otherwise). Bytes may say anything, and a live program may
 * even have removed the metamethod since: such a slot cannot be closed
 * safely, so the state is refused. Runs once every metatable is set. */
static int check_tbc_lists(struct rctx *x)
{
	for (uint64_t i = 0; i < x->nid; i++) {
		lua_State *th;
		StkId p;

		if (!ttisthread(&x->obj[i]))
			continue;
		th = thvalue(&x->obj[i]);
		for (p = th->tbclist.p; p > th->stack.p;) {
			unsigned short d = p->tbclist.delta;

			if (d == 0) { /* a dummy node: the list jumps the maximum delta */
				p -= USHRT_MAX;
				continue;
			}
			if (l_isfalse(s2v(p)) || notm(luaT_gettmbyobj(x->L, s2v(p), TM_CLOSE)))
				return bad(x, "to-be-closed value without __close");
			p -= d;
		}
	}
	return 0;
}

struct rargs {
	struct rctx *x;
	int rc;
};

static int restore_main(lua_State *L)
{
	struct rargs *a = lua_touserdata(L, 1);
	struct rctx *x = a->x;
	GCObject *oldhead = G(L)->allgc;
	TValue root;
	int rc;

	luaL_checkstack(L, 40, NULL);
	if (mig_env_push(L) != 0) {
		a->rc = mig_err_set(x->err, MIG_ERR_ARG, "mig_env_open was not called on this state");
		return 0;
	}
	x->env = lua_gettop(L);
	x->c = mig_env_cdata(L, x->env);
	lua_rawgeti(L, x->env, MIG_ENV_PERMNAME);
	x->permname = lua_gettop(L);
	lua_rawgeti(L, x->env, MIG_ENV_UDHOOKS);
	x->udhooks = lua_gettop(L);
	lua_rawgeti(L, x->env, MIG_ENV_SENTINEL);
	x->sentinel = hvalue(s2v(L->top.p - 1));

	/* Most objects of a big state are strings: grow Lua's string table
	 * once instead of doubling it step by step while they arrive. */
	{
		uint64_t want = (uint64_t)G(L)->strt.nuse + x->nobj / 2;
		int size = G(L)->strt.size;

		while ((uint64_t)size < want && size < (1 << 20))
			size *= 2;
		if (size > G(L)->strt.size)
			luaS_resize(L, size);
	}
	if ((rc = read_value(x, &root)))
		goto out;
	strictnil(&root);
	while (x->qhead < x->qlen) {
		if ((rc = read_body(x, x->queue[x->qhead++])))
			goto out;
	}
	if ((rc = read_fixups(x)) || (rc = read_finalizers(x, oldhead)))
		goto out;
	if (x->r.p != x->r.end) {
		rc = bad(x, "bytes after the end");
		goto out;
	}
	if (x->nid != x->nobj) {
		rc = bad(x, "fewer objects than the header says");
		goto out;
	}
	if ((rc = link_open_upvalues(x)) || (rc = make_overlays(x)) || (rc = check_tbc_lists(x)))
		goto out;
	lua_settop(L, 1);
	push_tv(L, &root);
	a->rc = 0;
	return 1;
out:
	if (rc != 0)
		mig_err_set(x->err, rc, NULL);
	a->rc = rc;
	return 0;
}

int mig_state_restore(lua_State *L, const void *buf, size_t len, struct mig_error *err)
{
	struct mig_state_info info;
	struct mig_error dummy = { 0 };
	struct rctx x;
	struct rargs a;
	int rc, status, running, stopem, top;

	if (err == NULL)
		err = &dummy;
	err->code = 0;
	err->msg[0] = '\0';
	rc = mig_state_peek(buf, len, &info);
	if (rc != 0)
		return mig_err_set(err, rc, NULL);
	if (info.seed != G(L)->seed)
		return mig_err_set(err, MIG_ERR_ARG,
				   "state made with seed %u, this lua_State has %u (use mig_lua_newstate)",
				   info.seed, G(L)->seed);
	if (info.nobjects > len - MIG_HEADER_LEN)
		return mig_err_set(err, info.nobjects > ((uint64_t)1 << 32) ? MIG_ERR_LIMIT : MIG_ERR_TRUNCATED,
				   "more objects than bytes");
	if (!lua_checkstack(L, 8))
		return mig_err_set(err, MIG_ERR_NOMEM, NULL);

	memset(&x, 0, sizeof x);
	x.L = L;
	x.err = err;
	x.start = buf;
	x.r.p = (const uint8_t *)buf + MIG_HEADER_LEN;
	x.r.end = (const uint8_t *)buf + len;
	x.nobj = info.nobjects;
	x.obj = malloc((x.nobj ? x.nobj : 1) * sizeof *x.obj);
	x.queue = malloc((x.nobj ? x.nobj : 1) * sizeof *x.queue);
	if (x.obj == NULL || x.queue == NULL) {
		free(x.obj);
		free(x.queue);
		return mig_err_set(err, MIG_ERR_NOMEM, NULL);
	}

	/* Half-built objects must not meet the collector: collect now, then
	 * stop it, emergency collections included, until the end. */
	running = lua_gc(L, LUA_GCISRUNNING);
	lua_gc(L, LUA_GCCOLLECT);
	lua_gc(L, LUA_GCSTOP);
	stopem = G(L)->gcstopem;
	G(L)->gcstopem = 1;

	top = lua_gettop(L);
	a.x = &x;
	a.rc = MIG_ERR_LUA;
	lua_pushcfunction(L, restore_main);
	lua_pushlightuserdata(L, &a);
	status = lua_pcall(L, 1, 1, 0);
	if (status != LUA_OK) {
		if (status == LUA_ERRMEM)
			a.rc = mig_err_set(err, MIG_ERR_NOMEM, NULL);
		else
			a.rc = mig_err_set(err, MIG_ERR_LUA, "%s",
					   lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
	}
	if (a.rc != 0)
		lua_settop(L, top);

	G(L)->gcstopem = (lu_byte)stopem;
	if (running)
		lua_gc(L, LUA_GCRESTART);

	for (uint32_t i = 0; i < x.nsrc; i++)
		free(x.src[i].list);
	for (size_t i = 0; i < x.nord; i++)
		free(x.ord[i].keys);
	free(x.src);
	free(x.obj);
	free(x.queue);
	free(x.perm);
	free(x.proto);
	free(x.pend);
	free(x.ord);
	free(x.lay);
	free(x.ouv);
	free(x.tmp);
	free(x.fr);
	return a.rc;
}

void mig_state_forget_finalizers(lua_State *L)
{
	global_State *g = G(L);
	GCObject **lists[2] = { &g->finobj, &g->tobefnz };

	/* No collection may run from here on: the sweep could be inside the
	 * lists being moved. */
	lua_gc(L, LUA_GCSTOP);
	for (int i = 0; i < 2; i++) {
		GCObject *o = *lists[i];

		while (o != NULL) {
			GCObject *next = o->next;

			resetbit(o->marked, FINALIZEDBIT);
			o->next = g->allgc;
			g->allgc = o;
			o = next;
		}
		*lists[i] = NULL;
	}
	g->finobjsur = g->finobjold1 = g->finobjrold = NULL;
}
