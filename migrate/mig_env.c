/*
 * mig_env.c: the engine's environment inside a lua_State (mig_state.h,
 * docs/state-format.md "Environment"): permanents, the source registry and
 * prototype index, userdata hooks, known C functions and continuations, and
 * the engine's own load, pcall, xpcall, next and pairs.
 *
 * Invariants:
 * - Every prototype the engine can name is anchored (the main closure of its
 *   chunk is kept in the source record), so a Proto* used as a light
 *   userdata key always denotes a live prototype.
 * - `load` never compiles a binary chunk.
 * - The engine's `next` visits the keys of a table that has an order overlay
 *   (a table restored with keys hashed by address) in the overlay's order,
 *   then the keys added since, each exactly once.
 */
#include "mig_state_int.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ */
/* Environment table                                                   */
/* ------------------------------------------------------------------ */

/* Pushes the environment table as it is (no maps built); MIG_ERR_ARG and
 * nothing pushed when there is none. */
static int env_get(lua_State *L)
{
	if (lua_getfield(L, LUA_REGISTRYINDEX, MIG_ENV_KEY) != LUA_TTABLE) {
		lua_pop(L, 1);
		return MIG_ERR_ARG;
	}
	return 0;
}

static void perm_maps_build(lua_State *L, int env);
static uint64_t fnv(uint64_t h, const void *p, size_t n);

int mig_env_push(lua_State *L)
{
	int env;

	if (env_get(L) != 0)
		return MIG_ERR_ARG;
	env = lua_gettop(L);
	if (lua_rawgeti(L, env, MIG_ENV_PERMNAME) != LUA_TTABLE ||
	    lua_rawgeti(L, env, MIG_ENV_PERMVAL) != LUA_TTABLE) {
		lua_settop(L, env);
		perm_maps_build(L, env);
	}
	lua_settop(L, env);
	return 0;
}

struct mig_envc *mig_env_cdata(lua_State *L, int env)
{
	struct mig_envc *c;

	lua_rawgeti(L, env, MIG_ENV_CDATA);
	c = lua_touserdata(L, -1);
	lua_pop(L, 1);
	return c;
}

/* Replaces the userdata buffer in env slot `slot` by one of nsize bytes
 * holding the first `used` bytes of the old one (*buf); raises on memory
 * errors, leaving the old buffer in place. Both the env table and its
 * metatable (the strong anchor) get the new one. */
static void *buf_resize(lua_State *L, int env, int slot, void *buf, size_t used, size_t nsize)
{
	void *nb = lua_newuserdatauv(L, nsize ? nsize : 1, 0);

	if (used)
		memcpy(nb, buf, used);
	lua_pushvalue(L, -1);
	lua_rawseti(L, env, slot);
	lua_getmetatable(L, env);
	lua_insert(L, -2);
	lua_rawseti(L, -2, slot);
	lua_pop(L, 1);
	return nb;
}

int mig_cfn_find_f(const struct mig_envc *c, lua_CFunction f)
{
	for (int i = 0; i < c->ncfn; i++)
		if (c->cfn[i].f != NULL && c->cfn[i].f == f)
			return i;
	return -1;
}

int mig_cfn_find_k(const struct mig_envc *c, lua_KFunction k)
{
	for (int i = 0; i < c->ncfn; i++)
		if (c->cfn[i].k != NULL && c->cfn[i].k == k)
			return i;
	return -1;
}

int mig_cfn_find_name(const struct mig_envc *c, const char *name, size_t len)
{
	for (int i = 0; i < c->ncfn; i++)
		if (strlen(c->cfn[i].name) == len && memcmp(c->cfn[i].name, name, len) == 0)
			return i;
	return -1;
}

/* Adds a named C function or continuation; the array grows two entries at
 * a time (the engine knows six, agentd's sandbox adds three: 80 bytes an
 * entry in every idle agent). May raise on memory errors. */
static int cfn_add(lua_State *L, int env, struct mig_envc *c, const char *name, lua_CFunction f,
		   lua_KFunction k)
{
	size_t len = strlen(name);

	if (len == 0 || len >= MIG_NAME_MAX || c->ncfn >= MIG_CFN_MAX)
		return MIG_ERR_ARG;
	if (mig_cfn_find_name(c, name, len) >= 0)
		return MIG_ERR_ARG;
	if ((f != NULL && mig_cfn_find_f(c, f) >= 0) || (k != NULL && mig_cfn_find_k(c, k) >= 0))
		return MIG_ERR_ARG;
	if (c->ncfn == c->cfncap) {
		int ncap = c->cfncap ? c->cfncap + 2 : 10;

		c->cfn = buf_resize(L, env, MIG_ENV_CFNBUF, c->cfn, (size_t)c->ncfn * sizeof *c->cfn,
				    (size_t)ncap * sizeof *c->cfn);
		c->cfncap = ncap;
	}
	memcpy(c->cfn[c->ncfn].name, name, len + 1);
	c->cfn[c->ncfn].f = f;
	c->cfn[c->ncfn].k = k;
	c->ncfn++;
	return 0;
}

/* The protected part of mig_cfunc_add and mig_cont_add: growing the array
 * allocates in L, and those functions are called outside any pcall. */
struct cfn_args {
	const char *name;  /* borrowed */
	lua_CFunction f;   /* or NULL */
	lua_KFunction k;   /* or NULL */
	int rc;            /* result */
};

static int cfn_add_p(lua_State *L)
{
	struct cfn_args *a = lua_touserdata(L, 1);

	if (env_get(L) != 0) {
		a->rc = MIG_ERR_ARG;
		return 0;
	}
	a->rc = cfn_add(L, lua_gettop(L), mig_env_cdata(L, lua_gettop(L)), a->name, a->f, a->k);
	return 0;
}

static int cfn_add_protected(lua_State *L, const char *name, lua_CFunction f, lua_KFunction k)
{
	struct cfn_args a = { name, f, k, MIG_ERR_ARG };
	int rc;

	if (!lua_checkstack(L, 4))
		return MIG_ERR_NOMEM;
	lua_pushcfunction(L, cfn_add_p);
	lua_pushlightuserdata(L, &a);
	rc = lua_pcall(L, 1, 0, 0);
	if (rc != LUA_OK) {
		lua_pop(L, 1);
		return rc == LUA_ERRMEM ? MIG_ERR_NOMEM : MIG_ERR_LUA;
	}
	return a.rc;
}

int mig_cfunc_add(lua_State *L, const char *name, lua_CFunction f)
{
	if (name == NULL || f == NULL)
		return MIG_ERR_ARG;
	return cfn_add_protected(L, name, f, NULL);
}

int mig_cont_add(lua_State *L, const char *name, lua_KFunction k)
{
	if (name == NULL || k == NULL)
		return MIG_ERR_ARG;
	return cfn_add_protected(L, name, NULL, k);
}

/* ------------------------------------------------------------------ */
/* Permanents                                                          */
/* ------------------------------------------------------------------ */

/* A state registers about a hundred permanents (the libraries' functions
 * and tables, the host API) but uses them only while it is persisted or
 * restored. So they are kept as a compact list in C buffers (16 bytes and
 * the name's bytes each, no Lua string or table node), and the two maps
 * the engine reads (name -> value, value -> canonical name) are built from
 * it on demand by mig_env_push and dropped by the collector after use. */

#define PERM_NAME_MAX 255 /* longer names found by the walk are not registered */

/* Orders names so that every host picks the same canonical one: shorter
 * first, then bytewise. */
static int name_better(const char *a, size_t la, const char *b, size_t lb)
{
	if (la != lb)
		return la < lb;
	return memcmp(a, b, la) < 0;
}

/* Whether the value at idx is a light C function (for it, lua_topointer
 * gives the function; for a C closure, the closure object). */
static int is_lcf(lua_State *L, int idx)
{
	return lua_iscfunction(L, idx) && lua_topointer(L, idx) == (const void *)lua_tocfunction(L, idx);
}

/* What identifies the value at idx among permanents: the function of a
 * light C function, the address of an object (kept alive by its anchor,
 * so no other object can have it while it is registered). */
static uintptr_t perm_id(lua_State *L, int idx)
{
	if (is_lcf(L, idx))
		return (uintptr_t)lua_tocfunction(L, idx);
	return (uintptr_t)lua_topointer(L, idx);
}

/* Appends the value at vidx under name to the list. With strict, a name or
 * a value known already is refused (MIG_ERR_ARG); otherwise the entry is
 * recorded anyway and the maps settle it when built (first name wins, the
 * canonical name of a value is the best). May raise on memory errors. */
static int perm_record(lua_State *L, int env, struct mig_envc *c, int vidx, const char *name,
		       size_t len, int strict)
{
	struct mig_perm *p;

	vidx = lua_absindex(L, vidx);
	if (len == 0 || len > PERM_NAME_MAX)
		return strict ? MIG_ERR_ARG : 0;
	if (strict) {
		uintptr_t id = perm_id(L, vidx);
		int lcf = is_lcf(L, vidx);

		for (uint32_t i = 0; i < c->nperm; i++) {
			const struct mig_perm *q = &c->perm[i];

			if ((q->id == id && (q->anchor == 0) == lcf) ||
			    (q->len == len && memcmp(c->names + q->off, name, len) == 0))
				return MIG_ERR_ARG;
		}
	}
	if (c->nperm == c->permcap) {
		/* The sandboxes agentd makes register about 120. */
		uint32_t ncap = c->permcap ? c->permcap + 16 + c->permcap / 8 : 128;

		c->perm = buf_resize(L, env, MIG_ENV_PERMBUF, c->perm, c->nperm * sizeof *c->perm,
				     ncap * sizeof *c->perm);
		c->permcap = ncap;
	}
	if (c->namescap - c->nameslen < len) {
		uint32_t ncap = c->namescap ? c->namescap + (uint32_t)len + 256 + c->namescap / 8
				: (uint32_t)len + 1536;

		c->names = buf_resize(L, env, MIG_ENV_PERMNAMES, c->names, c->nameslen, ncap);
		c->namescap = ncap;
	}
	p = &c->perm[c->nperm];
	p->anchor = 0;
	if (is_lcf(L, vidx))
		p->id = (uintptr_t)lua_tocfunction(L, vidx);
	else {
		p->id = (uintptr_t)lua_topointer(L, vidx);
		if (c->nanch == UINT16_MAX)
			return strict ? MIG_ERR_ARG : 0;
		lua_rawgeti(L, env, MIG_ENV_PERMANCH);
		lua_pushvalue(L, vidx);
		lua_rawseti(L, -2, c->nanch + 1);
		lua_pop(L, 1);
		p->anchor = ++c->nanch;
	}
	memcpy(c->names + c->nameslen, name, len);
	p->off = c->nameslen;
	p->len = (uint16_t)len;
	c->nameslen += (uint32_t)len;
	c->nperm++;
	return 0;
}

/* Maps built earlier no longer tell the whole list: drops them. */
static void perm_maps_drop(lua_State *L, int env)
{
	lua_pushnil(L);
	lua_rawseti(L, env, MIG_ENV_PERMNAME);
	lua_pushnil(L);
	lua_rawseti(L, env, MIG_ENV_PERMVAL);
	if (lua_getmetatable(L, env)) {
		lua_pushnil(L);
		lua_rawseti(L, -2, MIG_ENV_PERMNAME);
		lua_pushnil(L);
		lua_rawseti(L, -2, MIG_ENV_PERMVAL);
		lua_pop(L, 1);
	}
}

/* __gc of the marker perm_maps_build leaves: the first collection cycle
 * after a build has ended, so the maps are no longer held strongly and go
 * with the next one (unless a persist or restore holds them). Allocates
 * nothing but the registry key; an error here would only be a warning. */
static int perm_maps_release(lua_State *L)
{
	if (env_get(L) != 0)
		return 0;
	if (lua_getmetatable(L, -1)) {
		lua_pushnil(L);
		lua_rawseti(L, -2, MIG_ENV_PERMNAME);
		lua_pushnil(L);
		lua_rawseti(L, -2, MIG_ENV_PERMVAL);
	}
	return 0;
}

/* Puts the value at vidx, named by the string at nameidx, in the maps
 * names (name -> value) and vals (value -> canonical name): a known name
 * is left as it is; a value gets the best of its names. */
static void map_put(lua_State *L, int names, int vals, int vidx, int nameidx)
{
	vidx = lua_absindex(L, vidx);
	nameidx = lua_absindex(L, nameidx);
	lua_pushvalue(L, nameidx);
	if (lua_rawget(L, names) != LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	lua_pop(L, 1);
	lua_pushvalue(L, vidx);
	if (lua_rawget(L, vals) == LUA_TSTRING) {
		size_t la, lb;
		const char *a = lua_tolstring(L, nameidx, &la);
		const char *b = lua_tolstring(L, -1, &lb);

		if (name_better(a, la, b, lb)) {
			lua_pushvalue(L, vidx);
			lua_pushvalue(L, nameidx);
			lua_rawset(L, vals);
		}
	} else {
		lua_pushvalue(L, vidx);
		lua_pushvalue(L, nameidx);
		lua_rawset(L, vals);
	}
	lua_pop(L, 1);
	lua_pushvalue(L, nameidx);
	lua_pushvalue(L, vidx);
	lua_rawset(L, names);
}

/* Builds MIG_ENV_PERMNAME and MIG_ENV_PERMVAL from the list, in its order,
 * then names the environment's own tables ("@mig.env", "@mig.env.<slot>",
 * "@mig.env.mt"): a stale copy of one left in a dead register by the
 * engine's load must not drag it along. May raise on memory errors. */
static void perm_maps_build(lua_State *L, int env)
{
	struct mig_envc *c = mig_env_cdata(L, env);
	int names, vals, anch;
	int size = (int)c->nperm + MIG_ENV_NSLOTS + 2;

	luaL_checkstack(L, 8, NULL);
	lua_createtable(L, 0, size);
	names = lua_gettop(L);
	lua_createtable(L, 0, size);
	vals = lua_gettop(L);
	lua_rawgeti(L, env, MIG_ENV_PERMANCH);
	anch = lua_gettop(L);
	/* What map_put would decide entry by entry, decided in C first (it
	 * runs at every activation): an entry whose name an earlier one has
	 * is dropped; a value's canonical name is the best of the rest. Then
	 * each entry costs one string and one or two stores. */
	if (c->nperm > 0) {
		uint32_t cap = 16, mask, *byname, *byid, *root, *best;
		uint8_t *skip;

		while (cap < 2 * c->nperm)
			cap *= 2;
		mask = cap - 1;
		byname = lua_newuserdatauv(L, (2 * (size_t)cap + 2 * (size_t)c->nperm) * sizeof *byname +
						  c->nperm, 0);
		byid = byname + cap;
		root = byid + cap;
		best = root + c->nperm;
		skip = (uint8_t *)(best + c->nperm);
		memset(byname, 0xff, 2 * (size_t)cap * sizeof *byname);
		for (uint32_t i = 0; i < c->nperm; i++) {
			const struct mig_perm *p = &c->perm[i];
			const char *nm = c->names + p->off;
			uint32_t h = (uint32_t)fnv(0xcbf29ce484222325ULL, nm, p->len) & mask;
			uint32_t *slot;

			skip[i] = 0;
			root[i] = best[i] = i;
			for (; byname[h] != UINT32_MAX; h = (h + 1) & mask) {
				const struct mig_perm *q = &c->perm[byname[h]];

				if (q->len == p->len && memcmp(c->names + q->off, nm, p->len) == 0)
					break;
			}
			if (byname[h] != UINT32_MAX) {
				skip[i] = 1;
				continue;
			}
			byname[h] = i;
			h = (uint32_t)mig_pmap_hash(p->id) & mask;
			for (; byid[h] != UINT32_MAX; h = (h + 1) & mask) {
				const struct mig_perm *q = &c->perm[byid[h]];

				if (q->id == p->id && (q->anchor == 0) == (p->anchor == 0))
					break;
			}
			slot = &byid[h];
			if (*slot == UINT32_MAX)
				*slot = i;
			else {
				const struct mig_perm *b = &c->perm[best[*slot]];

				root[i] = *slot;
				if (name_better(nm, p->len, c->names + b->off, b->len))
					best[*slot] = i;
			}
		}
		/* root[i]: the first entry of i's value; best[root]: the entry
		 * with its canonical name. */
		for (uint32_t i = 0; i < c->nperm; i++) {
			const struct mig_perm *p = &c->perm[i];

			if (skip[i])
				continue;
			if (p->anchor == 0)
				lua_pushcfunction(L, (lua_CFunction)p->id);
			else
				lua_rawgeti(L, anch, p->anchor);
			lua_pushlstring(L, c->names + p->off, p->len);
			lua_pushvalue(L, -1);
			lua_pushvalue(L, -3);
			lua_rawset(L, names);
			if (best[root[i]] == i) {
				lua_pushvalue(L, -2);
				lua_insert(L, -2);
				lua_rawset(L, vals);
				lua_pop(L, 1);
			} else
				lua_pop(L, 2);
		}
		lua_pop(L, 1);
	}
	lua_pushvalue(L, names);
	lua_rawseti(L, env, MIG_ENV_PERMNAME);
	lua_pushvalue(L, vals);
	lua_rawseti(L, env, MIG_ENV_PERMVAL);
	/* Held strongly (by the env's metatable) until a collection cycle
	 * has passed, through a marker's finalizer: a restore is followed
	 * soon by a persist (an activated agent passivated again, a move
	 * after a move), which then finds them; an idle state loses them. */
	if (lua_getmetatable(L, env)) {
		lua_pushvalue(L, names);
		lua_rawseti(L, -2, MIG_ENV_PERMNAME);
		lua_pushvalue(L, vals);
		lua_rawseti(L, -2, MIG_ENV_PERMVAL);
		lua_pop(L, 1);
		lua_newuserdatauv(L, 0, 0);
		lua_createtable(L, 0, 1);
		lua_pushcfunction(L, perm_maps_release);
		lua_setfield(L, -2, "__gc");
		lua_setmetatable(L, -2);
		lua_pop(L, 1);
	}
	lua_pushvalue(L, env);
	lua_pushliteral(L, "@mig.env");
	map_put(L, names, vals, -2, -1);
	lua_pop(L, 2);
	for (int i = 1; i <= MIG_ENV_NSLOTS; i++) {
		if (lua_rawgeti(L, env, i) != LUA_TNIL) {
			char nm[24];
			int n = snprintf(nm, sizeof nm, "@mig.env.%d", i);

			lua_pushlstring(L, nm, (size_t)n);
			map_put(L, names, vals, -2, -1);
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
	}
	if (lua_getmetatable(L, env)) {
		lua_pushliteral(L, "@mig.env.mt");
		map_put(L, names, vals, -2, -1);
		lua_pop(L, 2);
	}
	lua_settop(L, names - 1);
}

struct perm_args {
	const char *name; /* borrowed */
	int rc;           /* result */
};

/* (value, args): the protected part of mig_perm_add. */
static int perm_add_p(lua_State *L)
{
	struct perm_args *a = lua_touserdata(L, 2);
	int env;

	if (env_get(L) != 0) {
		a->rc = MIG_ERR_ARG;
		return 0;
	}
	env = lua_gettop(L);
	a->rc = perm_record(L, env, mig_env_cdata(L, env), 1, a->name, strlen(a->name), 1);
	if (a->rc == 0)
		perm_maps_drop(L, env);
	return 0;
}

int mig_perm_add(lua_State *L, const char *name, int idx)
{
	struct perm_args a;
	int t = lua_type(L, idx), rc, top;

	/* Only values with identity can be permanents (a light userdata has
	 * none the engine could rely on across hosts). */
	if (name == NULL || name[0] == '\0' || t == LUA_TNONE || t == LUA_TNIL ||
	    t == LUA_TBOOLEAN || t == LUA_TNUMBER || t == LUA_TSTRING || t == LUA_TLIGHTUSERDATA)
		return MIG_ERR_ARG;
	if (!lua_checkstack(L, 8))
		return MIG_ERR_NOMEM;
	a.name = name;
	a.rc = MIG_ERR_ARG;
	idx = lua_absindex(L, idx);
	top = lua_gettop(L);
	/* Called in protection: growing the list allocates. */
	lua_pushcfunction(L, perm_add_p);
	lua_pushvalue(L, idx);
	lua_pushlightuserdata(L, &a);
	rc = lua_pcall(L, 2, 0, 0);
	if (rc != LUA_OK) {
		lua_settop(L, top);
		return rc == LUA_ERRMEM ? MIG_ERR_NOMEM : MIG_ERR_LUA;
	}
	lua_settop(L, top);
	return a.rc;
}
static int permable(int t)
{
	return t == LUA_TTABLE || t == LUA_TFUNCTION || t == LUA_TUSERDATA;
}

/* Names everything reachable from _G through string keys, three levels
 * deep: "_G", "_G.print", "string", "string.format",
 * "package.loaded.string"... A value reachable by several names gets all
 * of them; the canonical one (written when persisting) is the shortest.
 * The names go to the compact list; the maps are built from it later. */
static void perm_walk(lua_State *L, int env, struct mig_envc *c)
{
	int q, seen, n = 0, head = 1;
	char buf[PERM_NAME_MAX];

	lua_newtable(L); /* queue: {table, name, depth} triples */
	q = lua_gettop(L);
	lua_newtable(L); /* tables already queued */
	seen = lua_gettop(L);

	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
	perm_record(L, env, c, -1, "_G", 2, 0);
	lua_pushvalue(L, -1);
	lua_pushboolean(L, 1);
	lua_rawset(L, seen);
	lua_rawseti(L, q, ++n);
	lua_pushliteral(L, "_G");
	lua_rawseti(L, q, ++n);
	lua_pushinteger(L, 0);
	lua_rawseti(L, q, ++n);

	while (head < n) {
		int tbl, depth, isg;
		size_t plen;
		const char *prefix;

		lua_rawgeti(L, q, head++);
		tbl = lua_gettop(L);
		lua_rawgeti(L, q, head++);
		prefix = lua_tolstring(L, -1, &plen);
		lua_rawgeti(L, q, head++);
		depth = (int)lua_tointeger(L, -1);
		lua_pop(L, 1);
		isg = depth == 0;
		lua_pushnil(L);
		while (lua_next(L, tbl) != 0) {
			int vt = lua_type(L, -1);

			if (lua_type(L, -2) == LUA_TSTRING && permable(vt)) {
				size_t klen, len = 0;
				const char *key = lua_tolstring(L, -2, &klen);
				const char *name = NULL;

				/* A name too long to keep is no permanent (and
				 * names nothing under it). */
				if (isg && vt == LUA_TTABLE) {
					name = key;
					len = klen;
				} else if (plen + 1 + klen <= sizeof buf) {
					memcpy(buf, prefix, plen);
					buf[plen] = '.';
					memcpy(buf + plen + 1, key, klen);
					name = buf;
					len = plen + 1 + klen;
				}
				if (name != NULL && len <= PERM_NAME_MAX) {
					perm_record(L, env, c, -1, name, len, 0);
					if (vt == LUA_TTABLE && depth < 2) {
						lua_pushvalue(L, -1);
						if (lua_rawget(L, seen) == LUA_TNIL) {
							lua_pushvalue(L, -2);
							lua_pushboolean(L, 1);
							lua_rawset(L, seen);
							lua_pushvalue(L, -2);
							lua_rawseti(L, q, ++n);
							lua_pushlstring(L, name, len);
							lua_rawseti(L, q, ++n);
							lua_pushinteger(L, depth + 1);
							lua_rawseti(L, q, ++n);
						}
						lua_pop(L, 1);
					}
				}
			}
			lua_pop(L, 1);
		}
		lua_pop(L, 2);
	}
	lua_pop(L, 2);

	/* The string metatable is shared by all strings, so it is a
	 * permanent as well. */
	lua_pushliteral(L, "");
	if (lua_getmetatable(L, -1)) {
		perm_record(L, env, c, -1, "@strmt", 6, 0);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

/* ------------------------------------------------------------------ */
/* Sources and prototypes                                              */
/* ------------------------------------------------------------------ */

int mig_is_binary(const char *text, size_t len)
{
	return len > 0 && text[0] == LUA_SIGNATURE[0];
}

int mig_proto_list(Proto *main, Proto ***out, int *n)
{
	Proto **list = NULL, **stack = NULL;
	size_t cap = 16, scap = 16, cnt = 0, sp = 0;

	*out = NULL;
	*n = 0;
	list = malloc(cap * sizeof *list);
	stack = malloc(scap * sizeof *stack);
	if (list == NULL || stack == NULL)
		goto nomem;
	stack[sp++] = main;
	/* Pre-order with an explicit stack: children are pushed in reverse
	 * so that they come out in order. */
	while (sp > 0) {
		Proto *p = stack[--sp];

		if (cnt == cap) {
			Proto **nl = realloc(list, 2 * cap * sizeof *nl);

			if (nl == NULL)
				goto nomem;
			list = nl;
			cap *= 2;
		}
		if (cnt >= (1u << 24))
			goto nomem;
		list[cnt++] = p;
		if (sp + (size_t)p->sizep > scap) {
			size_t ns = scap;
			Proto **nst;

			while (sp + (size_t)p->sizep > ns)
				ns *= 2;
			nst = realloc(stack, ns * sizeof *nst);
			if (nst == NULL)
				goto nomem;
			stack = nst;
			scap = ns;
		}
		for (int i = p->sizep - 1; i >= 0; i--)
			stack[sp++] = p->p[i];
	}
	free(stack);
	*out = list;
	*n = (int)cnt;
	return 0;
nomem:
	free(list);
	free(stack);
	return MIG_ERR_NOMEM;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

uint64_t mig_proto_fingerprint(const Proto *p)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	int32_t sizes[6] = { p->numparams, p->is_vararg, p->maxstacksize, p->sizecode,
			     p->sizek, p->sizep };

	h = fnv(h, sizes, sizeof sizes);
	h = fnv(h, p->code, (size_t)p->sizecode * sizeof(Instruction));
	for (int i = 0; i < p->sizek; i++) {
		const TValue *k = &p->k[i];
		uint8_t tag = ttypetag(k);

		h = fnv(h, &tag, 1);
		switch (tag) {
		case LUA_VNUMINT: {
			lua_Integer v = ivalue(k);

			h = fnv(h, &v, sizeof v);
			break;
		}
		case LUA_VNUMFLT: {
			lua_Number v = fltvalue(k);

			h = fnv(h, &v, sizeof v);
			break;
		}
		case LUA_VSHRSTR:
		case LUA_VLNGSTR:
			h = fnv(h, getstr(tsvalue(k)), tsslen(tsvalue(k)));
			break;
		default:
			break;
		}
	}
	return h;
}

void mig_src_register(lua_State *L, int env, const uint8_t hash[MIG_HASH_LEN],
		      const char *text, size_t len, const char *chunkname, int external)
{
	lua_rawgeti(L, env, MIG_ENV_SOURCES);
	lua_pushlstring(L, (const char *)hash, MIG_HASH_LEN);
	if (lua_rawget(L, -2) == LUA_TTABLE) {
		/* Known already; a segment's claim makes it external. */
		if (external) {
			lua_pushboolean(L, 1);
			lua_rawseti(L, -2, MIG_SRC_EXT);
		}
		lua_pop(L, 2);
		return;
	}
	lua_pop(L, 1);
	lua_createtable(L, 4, 0);
	lua_pushlstring(L, text, len);
	lua_rawseti(L, -2, MIG_SRC_TEXT);
	lua_pushstring(L, chunkname ? chunkname : "=?");
	lua_rawseti(L, -2, MIG_SRC_NAME);
	lua_pushboolean(L, external != 0);
	lua_rawseti(L, -2, MIG_SRC_EXT);
	lua_pushlstring(L, (const char *)hash, MIG_HASH_LEN);
	lua_insert(L, -2);
	lua_rawset(L, -3);
	lua_pop(L, 1);
}

int mig_src_compile(lua_State *L, int env, int hashidx, struct mig_error *err)
{
	int rec, rc;
	size_t len;
	const char *text, *name;
	Proto **list;
	int n;

	hashidx = lua_absindex(L, hashidx);
	lua_rawgeti(L, env, MIG_ENV_SOURCES);
	lua_pushvalue(L, hashidx);
	if (lua_rawget(L, -2) != LUA_TTABLE) {
		lua_pop(L, 2);
		return mig_err_set(err, MIG_ERR_NOSOURCE, "source not registered");
	}
	rec = lua_gettop(L);
	if (lua_rawgeti(L, rec, MIG_SRC_FN) == LUA_TFUNCTION) {
		lua_replace(L, rec - 1);
		lua_settop(L, rec - 1);
		return 0;
	}
	lua_pop(L, 1);
	lua_rawgeti(L, rec, MIG_SRC_TEXT);
	lua_rawgeti(L, rec, MIG_SRC_NAME);
	text = lua_tolstring(L, -2, &len);
	name = lua_tostring(L, -1);
	if (text == NULL || mig_is_binary(text, len)) {
		lua_settop(L, rec - 2);
		return mig_err_set(err, MIG_ERR_NOSOURCE, "registered source is not text");
	}
	if (luaL_loadbufferx(L, text, len, name, "t") != LUA_OK) {
		rc = mig_err_set(err, MIG_ERR_LUA, "%s", lua_tostring(L, -1));
		lua_settop(L, rec - 2);
		return rc;
	}
	if (mig_proto_list(clLvalue(s2v(L->top.p - 1))->p, &list, &n) != 0) {
		lua_settop(L, rec - 2);
		return mig_err_set(err, MIG_ERR_NOMEM, NULL);
	}
	/* The index is written before the anchor: if a memory error
	 * interrupts, the source is simply compiled again next time. */
	lua_rawgeti(L, env, MIG_ENV_PROTOIDX);
	lua_rawgeti(L, env, MIG_ENV_PROTOHASH);
	for (int i = 0; i < n; i++) {
		lua_pushinteger(L, i);
		lua_rawsetp(L, -3, list[i]);
		lua_pushvalue(L, hashidx);
		lua_rawsetp(L, -2, list[i]);
	}
	free(list);
	lua_pop(L, 2);
	lua_pushvalue(L, -1);
	lua_rawseti(L, rec, MIG_SRC_FN);
	lua_replace(L, rec - 1);
	lua_settop(L, rec - 1);
	return 0;
}

/* Pushes a fresh closure of main proto p whose first upvalue is the
 * globals table (the value at envidx when envidx != 0). */
static void push_fresh_closure(lua_State *L, Proto *p, int envidx)
{
	LClosure *cl;

	luaL_checkstack(L, 2, NULL);
	cl = luaF_newLclosure(L, p->sizeupvalues);
	cl->p = p;
	/* Anchor before the upvalues are allocated. */
	setclLvalue2s(L, L->top.p, cl);
	L->top.p++;
	luaF_initupvals(L, cl);
	if (p->sizeupvalues >= 1) {
		if (envidx != 0)
			lua_pushvalue(L, envidx);
		else
			lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
		lua_setupvalue(L, -2, 1);
	}
}

int mig_source_add(lua_State *L, const char *text, size_t len, const char *chunkname,
		   int external, uint8_t hash_out[MIG_HASH_LEN])
{
	uint8_t h[MIG_HASH_LEN];
	int env;

	if (text == NULL || hash_out == NULL)
		return MIG_ERR_ARG;
	if (mig_is_binary(text, len))
		return MIG_ERR_ARG;
	if (env_get(L) != 0)
		return MIG_ERR_ARG;
	env = lua_gettop(L);
	crypto_generichash(h, sizeof h, (const unsigned char *)text, len, NULL, 0);
	mig_src_register(L, env, h, text, len, chunkname, external);
	lua_pop(L, 1);
	memcpy(hash_out, h, MIG_HASH_LEN);
	return 0;
}

int mig_source_load(lua_State *L, const uint8_t hash[MIG_HASH_LEN], struct mig_error *err)
{
	int env, rc;

	if (err != NULL) {
		err->code = 0;
		err->msg[0] = '\0';
	}
	if (hash == NULL || env_get(L) != 0)
		return mig_err_set(err, MIG_ERR_ARG, "environment not open");
	env = lua_gettop(L);
	lua_pushlstring(L, (const char *)hash, MIG_HASH_LEN);
	rc = mig_src_compile(L, env, -1, err);
	if (rc != 0) {
		lua_settop(L, env - 1);
		return rc;
	}
	push_fresh_closure(L, clLvalue(s2v(L->top.p - 1))->p, 0);
	lua_replace(L, env);
	lua_settop(L, env);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The engine's load                                                   */
/* ------------------------------------------------------------------ */

/* load(chunk [, chunkname [, mode [, env]]]): text only; the source is
 * recorded so that functions made from it can move. Returns the function,
 * or nil and a message. */
static int eng_load(lua_State *L)
{
	size_t len;
	const char *text, *mode = luaL_optstring(L, 3, "bt");
	const char *name;
	int envidx = lua_isnone(L, 4) ? 0 : 4;
	uint8_t h[MIG_HASH_LEN];
	int env, rc;
	struct mig_error err = { 0 };

	if (lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER) {
		/* A number is text too, as for Lua's own load. */
		lua_pushstring(L, lua_tostring(L, 1));
		name = luaL_optstring(L, 2, lua_tostring(L, -1));
	} else {
		luaL_Buffer b;

		luaL_checktype(L, 1, LUA_TFUNCTION);
		name = luaL_optstring(L, 2, "=(load)");
		luaL_buffinit(L, &b);
		for (;;) {
			size_t pl;

			lua_pushvalue(L, 1);
			lua_call(L, 0, 1);
			if (lua_isnil(L, -1)) {
				lua_pop(L, 1);
				break;
			}
			if (lua_type(L, -1) != LUA_TSTRING)
				return luaL_error(L, "reader function must return a string");
			lua_tolstring(L, -1, &pl);
			if (pl == 0) {
				lua_pop(L, 1);
				break;
			}
			luaL_addvalue(&b);
		}
		luaL_pushresult(&b);
	}
	text = lua_tolstring(L, -1, &len);
	if (strchr(mode, 't') == NULL) {
		lua_pushnil(L);
		lua_pushliteral(L, "binary chunks are not accepted (mode must allow text)");
		return 2;
	}
	if (mig_is_binary(text, len)) {
		lua_pushnil(L);
		lua_pushliteral(L, "attempt to load a binary chunk (refused)");
		return 2;
	}
	if (env_get(L) != 0)
		return luaL_error(L, "migration environment missing");
	env = lua_gettop(L);
	crypto_generichash(h, sizeof h, (const unsigned char *)text, len, NULL, 0);
	mig_src_register(L, env, h, text, len, name, 0);
	lua_pushlstring(L, (const char *)h, MIG_HASH_LEN);
	rc = mig_src_compile(L, env, -1, &err);
	if (rc != 0) {
		lua_pushnil(L);
		lua_pushstring(L, err.msg);
		return 2;
	}
	push_fresh_closure(L, clLvalue(s2v(L->top.p - 1))->p, envidx);
	return 1;
}

/* ------------------------------------------------------------------ */
/* The engine's pcall and xpcall                                       */
/* ------------------------------------------------------------------ */

/* Continuation of both: ctx is the number of stack slots below the `true`
 * that starts the results (0 for pcall, 2 for xpcall). The restorer checks
 * ctx, so it must stay one of those two values. */
static int eng_pcall_k(lua_State *L, int status, lua_KContext ctx)
{
	if (status != LUA_OK && status != LUA_YIELD) {
		lua_pushboolean(L, 0);
		lua_pushvalue(L, -2);
		return 2;
	}
	return lua_gettop(L) - (int)ctx;
}

static int eng_pcall(lua_State *L)
{
	int status;

	luaL_checkany(L, 1);
	lua_pushboolean(L, 1);
	lua_insert(L, 1);
	status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, eng_pcall_k);
	return eng_pcall_k(L, status, 0);
}

static int eng_xpcall(lua_State *L)
{
	int status, n = lua_gettop(L);

	luaL_checktype(L, 2, LUA_TFUNCTION);
	/* f, msgh, args... -> f, msgh, true, f, args... */
	lua_pushboolean(L, 1);
	lua_pushvalue(L, 1);
	lua_rotate(L, 3, 2);
	status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, eng_pcall_k);
	return eng_pcall_k(L, status, 2);
}

lua_CFunction mig_env_pcall_f(int which)
{
	return which ? eng_xpcall : eng_pcall;
}

/* ------------------------------------------------------------------ */
/* The engine's next and pairs                                         */
/* ------------------------------------------------------------------ */

/* Raw step of `next` from the key at the top (replaced by the result). */
static int raw_next(lua_State *L)
{
	if (lua_next(L, 1))
		return 2;
	lua_pushnil(L);
	return 1;
}

/* next(t [, k]) with upvalues (env table, light userdata of its C data). */
static int eng_next(lua_State *L)
{
	const struct mig_envc *c = lua_touserdata(L, lua_upvalueindex(2));
	const Table *t;
	unsigned int asize;
	lua_Integer start = 0;
	int ov, list, idx, n;

	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 2);
	if (c == NULL || !c->overlays)
		return raw_next(L);
	lua_rawgeti(L, lua_upvalueindex(1), MIG_ENV_OVERLAYS);
	lua_pushvalue(L, 1);
	if (lua_rawget(L, -2) != LUA_TTABLE) {
		lua_settop(L, 2);
		return raw_next(L);
	}
	ov = lua_gettop(L);                 /* 4 */
	lua_rawgeti(L, ov, MIG_OV_LIST);    /* 5 */
	lua_rawgeti(L, ov, MIG_OV_IDX);     /* 6 */
	lua_rawgeti(L, ov, MIG_OV_N);       /* 7 */
	list = ov + 1;
	idx = ov + 2;
	n = (int)lua_tointeger(L, ov + 3);
	t = lua_topointer(L, 1);
	asize = luaH_realasize(t);

	/* Where does the key say we are? Array part, overlay, or the keys
	 * added after the restore (raw order, overlay keys skipped). */
	if (lua_isnil(L, 2)) {
		start = 0;
		goto array;
	}
	if (lua_isinteger(L, 2)) {
		lua_Integer k = lua_tointeger(L, 2);

		if (k >= 1 && (lua_Unsigned)k <= asize) {
			start = k;
			goto array;
		}
	}
	lua_pushvalue(L, 2);
	if (lua_rawget(L, idx) == LUA_TNUMBER) {
		start = lua_tointeger(L, -1);
		lua_pop(L, 1);
		goto overlay;
	}
	lua_pop(L, 1);
	lua_pushvalue(L, 2);
	goto raw;

array:
	for (lua_Integer i = start; i < (lua_Integer)asize; i++) {
		if (!isempty(&t->array[i])) {
			lua_pushinteger(L, i + 1);
			lua_rawgeti(L, 1, i + 1);
			return 2;
		}
	}
	start = 0;
overlay:
	for (lua_Integer j = start + 1; j <= n; j++) {
		lua_rawgeti(L, list, j);
		if (lua_isinteger(L, -1)) {
			lua_Integer k = lua_tointeger(L, -1);

			/* Now in the array part (the table grew): visited there. */
			if (k >= 1 && (lua_Unsigned)k <= asize) {
				lua_pop(L, 1);
				continue;
			}
		}
		lua_pushvalue(L, -1);
		if (lua_rawget(L, 1) != LUA_TNIL)
			return 2;
		lua_pop(L, 2);
	}
	if (asize > 0)
		lua_pushinteger(L, (lua_Integer)asize);
	else
		lua_pushnil(L);
raw:
	for (;;) {
		if (!lua_next(L, 1)) {
			lua_pushnil(L);
			return 1;
		}
		lua_pushvalue(L, -2);
		if (lua_rawget(L, idx) == LUA_TNIL) {
			lua_pop(L, 1);
			return 2;
		}
		lua_pop(L, 2);
	}
}

static int eng_pairs(lua_State *L)
{
	luaL_checkany(L, 1);
	if (luaL_getmetafield(L, 1, "__pairs") != LUA_TNIL) {
		lua_pushvalue(L, 1);
		lua_call(L, 1, 3);
		return 3;
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushvalue(L, 1);
	lua_pushnil(L);
	return 3;
}

/* ------------------------------------------------------------------ */
/* Userdata hooks                                                      */
/* ------------------------------------------------------------------ */

int mig_udata_register(lua_State *L, const char *tname, lua_CFunction persist,
		       lua_CFunction restore)
{
	if (tname == NULL || persist == NULL || restore == NULL || env_get(L) != 0)
		return MIG_ERR_ARG;
	lua_rawgeti(L, -1, MIG_ENV_UDHOOKS);
	lua_createtable(L, 2, 0);
	lua_pushcfunction(L, persist);
	lua_rawseti(L, -2, 1);
	lua_pushcfunction(L, restore);
	lua_rawseti(L, -2, 2);
	lua_setfield(L, -2, tname);
	lua_pop(L, 2);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Opening                                                             */
/* ------------------------------------------------------------------ */

static int dummy_fn(lua_State *L)
{
	(void)L;
	return 0;
}

/* Puts the value at the top in slot i of env and of its metatable (the
 * strong anchor); pops it. */
static void slot_set(lua_State *L, int env, int mt, int i)
{
	lua_pushvalue(L, -1);
	lua_rawseti(L, mt, i);
	lua_rawseti(L, env, i);
}

static int env_open(lua_State *L)
{
	struct mig_envc *c;
	int env, mt;

	lua_createtable(L, MIG_ENV_NSLOTS, 0);
	env = lua_gettop(L);
	lua_createtable(L, MIG_ENV_NSLOTS, 1);
	mt = lua_gettop(L);
	lua_pushliteral(L, "v");
	lua_setfield(L, mt, "__mode");
	lua_pushvalue(L, mt);
	lua_setmetatable(L, env);
	for (int i = MIG_ENV_SOURCES; i <= MIG_ENV_SENTINEL; i++) {
		lua_newtable(L);
		slot_set(L, env, mt, i);
	}
	/* Overlays die with their tables. */
	lua_rawgeti(L, env, MIG_ENV_OVERLAYS);
	lua_createtable(L, 0, 1);
	lua_pushliteral(L, "k");
	lua_setfield(L, -2, "__mode");
	lua_setmetatable(L, -2);
	lua_pop(L, 1);
	c = lua_newuserdatauv(L, sizeof *c, 0);
	memset(c, 0, sizeof *c);
	slot_set(L, env, mt, MIG_ENV_CDATA);
	lua_createtable(L, 0, 1);
	lua_pushliteral(L, "k");
	lua_setfield(L, -2, "__mode");
	slot_set(L, env, mt, MIG_ENV_WEAKK);
	lua_createtable(L, 0, 1);
	lua_pushliteral(L, "v");
	lua_setfield(L, -2, "__mode");
	slot_set(L, env, mt, MIG_ENV_WEAKV);
	lua_createtable(L, 8, 0);
	slot_set(L, env, mt, MIG_ENV_PERMANCH);
	lua_pushvalue(L, env);
	lua_setfield(L, LUA_REGISTRYINDEX, MIG_ENV_KEY);
	lua_settop(L, env);

	cfn_add(L, env, c, MIG_CFN_PCALLK, NULL, eng_pcall_k);

	/* coroutine.wrap's function is static in Lua; learn it from a
	 * sample so that wrapped coroutines can move. */
	if (lua_getglobal(L, "coroutine") == LUA_TTABLE &&
	    lua_getfield(L, -1, "wrap") == LUA_TFUNCTION) {
		lua_pushcfunction(L, dummy_fn);
		lua_call(L, 1, 1);
		if (lua_tocfunction(L, -1) != NULL)
			cfn_add(L, env, c, "coroutine.wrap:f", lua_tocfunction(L, -1), NULL);
	}
	lua_settop(L, env);
	/* Iterators the libraries return are static functions too. */
	if (lua_getglobal(L, "ipairs") == LUA_TFUNCTION) {
		lua_newtable(L);
		lua_call(L, 1, 1);
		if (lua_tocfunction(L, -1) != NULL)
			cfn_add(L, env, c, "ipairs:f", lua_tocfunction(L, -1), NULL);
	}
	lua_settop(L, env);
	if (lua_getglobal(L, "utf8") == LUA_TTABLE && lua_getfield(L, -1, "codes") == LUA_TFUNCTION) {
		lua_pushvalue(L, -1);
		lua_pushliteral(L, "");
		lua_call(L, 1, 1);
		if (lua_tocfunction(L, -1) != NULL)
			cfn_add(L, env, c, "utf8.codes:f", lua_tocfunction(L, -1), NULL);
		lua_pop(L, 1);
		lua_pushliteral(L, "");
		lua_pushboolean(L, 1);
		lua_call(L, 2, 1);
		if (lua_tocfunction(L, -1) != NULL)
			cfn_add(L, env, c, "utf8.codes:lax", lua_tocfunction(L, -1), NULL);
	}
	lua_settop(L, env);
	/* string.gmatch's iterator keeps its position in a private struct:
	 * supported only when a real one has the size the engine expects. */
	if (lua_getglobal(L, "string") == LUA_TTABLE && lua_getfield(L, -1, "gmatch") == LUA_TFUNCTION) {
		lua_pushliteral(L, "");
		lua_pushliteral(L, "");
		lua_call(L, 2, 1);
		if (lua_tocfunction(L, -1) != NULL && lua_getupvalue(L, -1, 3) != NULL &&
		    lua_type(L, -1) == LUA_TUSERDATA && lua_rawlen(L, -1) == sizeof(struct mig_gmatch) &&
		    cfn_add(L, env, c, "string.gmatch:f", lua_tocfunction(L, -2), NULL) == 0)
			c->gmatch = lua_tocfunction(L, -2);
	}
	lua_settop(L, env);

	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
	lua_pushcfunction(L, eng_load);
	lua_setfield(L, -2, "load");
	lua_pushcfunction(L, eng_pcall);
	lua_setfield(L, -2, "pcall");
	lua_pushcfunction(L, eng_xpcall);
	lua_setfield(L, -2, "xpcall");
	lua_pushvalue(L, env);
	lua_pushlightuserdata(L, c);
	lua_pushcclosure(L, eng_next, 2);
	lua_pushvalue(L, -1);
	lua_setfield(L, -3, "next");
	lua_pushcclosure(L, eng_pairs, 1);
	lua_setfield(L, -2, "pairs");
	lua_pop(L, 1);

	perm_walk(L, env, c);
	return 0;
}

int mig_env_open(lua_State *L)
{
	int rc;

	if (sodium_init() < 0)
		return MIG_ERR_NOMEM;
	if (env_get(L) == 0) {
		lua_pop(L, 1);
		return 0;
	}
	if (!lua_checkstack(L, 16))
		return MIG_ERR_NOMEM;
	lua_pushcfunction(L, env_open);
	rc = lua_pcall(L, 0, 0, 0);
	if (rc != LUA_OK) {
		lua_pop(L, 1);
		lua_pushnil(L);
		lua_setfield(L, LUA_REGISTRYINDEX, MIG_ENV_KEY);
		return rc == LUA_ERRMEM ? MIG_ERR_NOMEM : MIG_ERR_LUA;
	}
	return 0;
}
