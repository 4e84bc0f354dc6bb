/*
 * mobility_env.h: the Lua environment mobility-check runs a script in, shared
 * (header-only, every function static inline) with the state-restore fuzzer and the
 * persist benchmark, so that a state dumped by the tool restores in them.
 *
 * A prepared state has the standard libraries, the engine's environment
 * (mig_env_open) and these extra permanents, registered identically on every
 * side, in sorted order so that the first name of a value shared by two
 * names is the same everywhere:
 *   "io.stdin" "io.stdout" "io.stderr"   the standard file handles;
 *   "FILE*" and "FILE*.<key>", "FILE*.__index.<key>"
 *                                        the file-handle metatable and methods.
 * A name mig_env_open has already bound to the same value is skipped (the
 * engine refuses duplicates; the same refusal happens on both sides).
 *
 * The script does not run in the registry's globals table, which
 * mig_env_open has made a permanent, but in a copy of it (`env`, with
 * env._G == env) installed as the registry's globals while the script runs,
 * so that its global variables move with it and `load` sees them. The
 * original table stays in the registry under MOB_REG_G and is put back while
 * the engine persists or restores.
 *
 * The root that moves is a table (docs/mobility-check.md):
 *   co     the script's main coroutine (suspended, or not started);
 *   env    the script's globals;
 *   io_in, io_out  the io library's default input and output (the standard
 *          handles unless the script changed them: then persisting fails and
 *          the point is reported, instead of silently writing elsewhere);
 *   moves  the number of this move (1, 2, ...), for --dump-states numbering;
 *   rng    the bytes of math.random's generator state, which lives in a C
 *          upvalue of the permanent math.random and so would not move.
 *
 * Must never: run agent code (everything here is library set-up and raw
 * table access), or trust a restored root before checking every field.
 */
#ifndef MOBILITY_ENV_H
#define MOBILITY_ENV_H

#include "mig_lua.h"
#include "mig_state.h"

#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Registry keys owned by this environment. */
#define MOB_REG_G "mobility.G"       /* the original globals table */
#define MOB_REG_ROOT "mobility.root" /* the live root table */

/* Largest script or state file read (a guard against reading a device). */
#define MOB_FILE_MAX ((size_t)1 << 30)

/* Text of a failure, for messages. */
struct mob_err {
	int code;      /* a mig_err, or MOB_ERR_ROOT for a bad root */
	char msg[320]; /* human text */
};

/* The restored value is not a root this environment made. */
#define MOB_ERR_ROOT (-100)

static inline void mob_err_set(struct mob_err *e, int code, const char *fmt, const char *arg)
{
	if (e == NULL)
		return;
	e->code = code;
	snprintf(e->msg, sizeof e->msg, fmt, arg != NULL ? arg : "");
}

/* The allocator of every state made here: plain malloc, as lua.c uses. */
static inline void *mob_alloc(void *ud, void *p, size_t osize, size_t nsize)
{
	(void)ud;
	(void)osize;
	if (nsize == 0) {
		free(p);
		return NULL;
	}
	return realloc(p, nsize);
}

/*
 * Reads a whole file into a malloc'd buffer (NUL-terminated, which the
 * length does not count). Returns 0, or -errno (-EFBIG past MOB_FILE_MAX).
 * The caller owns *data.
 */
static inline int mob_file_read(const char *path, char **data, size_t *len)
{
	FILE *f;
	char *buf = NULL, *nb;
	size_t used = 0, cap = 0, n;
	int rc = 0;

	*data = NULL;
	*len = 0;
	f = fopen(path, "rb");
	if (f == NULL)
		return -errno;
	for (;;) {
		if (cap - used < 4096) {
			if (cap >= MOB_FILE_MAX) {
				rc = -EFBIG;
				goto out;
			}
			cap = cap == 0 ? 65536 : cap * 2;
			nb = realloc(buf, cap + 1);
			if (nb == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		n = fread(buf + used, 1, cap - used, f);
		used += n;
		if (n == 0) {
			if (ferror(f))
				rc = -EIO;
			break;
		}
	}
	buf[used] = '\0';
	*data = buf;
	*len = used;
	buf = NULL;
out:
	free(buf);
	fclose(f);
	return rc;
}

/*
 * The text of a script as luaL_loadfile compiles it: a UTF-8 byte-order mark
 * dropped, and a first line starting with '#' emptied (its newline kept, so
 * line numbers match). Binary chunks are refused with -ENOEXEC: no bytecode
 * is ever loaded. Returns 0 or -errno; the caller owns *text.
 */
static inline int mob_script_read(const char *path, char **text, size_t *len)
{
	char *raw, *p;
	size_t n, skip = 0;
	int rc;

	*text = NULL;
	*len = 0;
	rc = mob_file_read(path, &raw, &n);
	if (rc != 0)
		return rc;
	if (n >= 3 && memcmp(raw, "\xEF\xBB\xBF", 3) == 0)
		skip = 3;
	if (skip < n && raw[skip] == LUA_SIGNATURE[0]) {
		free(raw);
		return -ENOEXEC;
	}
	if (skip < n && raw[skip] == '#') {
		p = memchr(raw + skip, '\n', n - skip);
		/* Keep the newline itself, as luaL_loadfile does. */
		skip = p != NULL ? (size_t)(p - raw) : n;
	}
	memmove(raw, raw + skip, n - skip);
	n -= skip;
	raw[n] = '\0';
	*text = raw;
	*len = n;
	return 0;
}

/* Registers the value at the top as permanent `name`; pops it. A refusal
 * (the engine already knows the value) is the same on every side. */
static inline void mob_perm_try(lua_State *L, const char *name)
{
	(void)mig_perm_add(L, name, -1);
	lua_pop(L, 1);
}

static inline int mob_cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Registers "<prefix><key>" for every string key of the table at the top
 * whose value is a function or table, in sorted key order. Raises on
 * memory errors (runs under mob_prepare's pcall).
 */
static inline void mob_perm_fields(lua_State *L, const char *prefix)
{
	const char *keys[64];
	size_t n = 0, i;
	int t = lua_gettop(L);
	char name[128];

	lua_pushnil(L);
	while (lua_next(L, t) != 0) {
		int vt = lua_type(L, -1);
		if (lua_type(L, -2) == LUA_TSTRING && n < sizeof keys / sizeof keys[0] &&
		    (vt == LUA_TFUNCTION || vt == LUA_TTABLE))
			keys[n++] = lua_tostring(L, -2); /* anchored by the table */
		lua_pop(L, 1);
	}
	qsort(keys, n, sizeof keys[0], mob_cmp_str);
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof name, "%s%s", prefix, keys[i]);
		lua_getfield(L, t, keys[i]);
		mob_perm_try(L, name);
	}
}

/* What mob_prepare does, under lua_pcall. Upvalue: the adjust function
 * (or nil). */
static inline int mob_prepare_body(lua_State *L)
{
	static const char *const std[] = { "stdin", "stdout", "stderr" };
	char name[32];
	size_t i;
	int rc;

	luaL_openlibs(L);
	/* lua.c runs scripts with the generational collector. */
	lua_gc(L, LUA_GCGEN, 0, 0);
	if (!lua_isnil(L, lua_upvalueindex(1))) {
		lua_pushvalue(L, lua_upvalueindex(1));
		lua_call(L, 0, 0);
	}
	rc = mig_env_open(L);
	if (rc != 0)
		return luaL_error(L, "mig_env_open: %s", mig_strerror(rc));
	lua_getglobal(L, "io");
	for (i = 0; i < sizeof std / sizeof std[0]; i++) {
		lua_getfield(L, -1, std[i]);
		snprintf(name, sizeof name, "io.%s", std[i]);
		mob_perm_try(L, name);
	}
	lua_pop(L, 1);
	luaL_getmetatable(L, LUA_FILEHANDLE);
	if (lua_istable(L, -1)) {
		lua_pushvalue(L, -1);
		mob_perm_try(L, LUA_FILEHANDLE);
		mob_perm_fields(L, LUA_FILEHANDLE ".");
		if (lua_getfield(L, -1, "__index") == LUA_TTABLE)
			mob_perm_fields(L, LUA_FILEHANDLE ".__index.");
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	lua_pushglobaltable(L);
	lua_setfield(L, LUA_REGISTRYINDEX, MOB_REG_G);
	return 0;
}

/*
 * Prepares a fresh state for a script or a restore: the standard libraries;
 * then `adjust` (when not NULL), called with no arguments before the engine
 * names the libraries' contents, to replace or remove library functions
 * (mobility-check replaces os.exit, the fuzzer disarms os and io); then
 * mig_env_open and the permanents above. Both sides of a move must use the
 * same names, not necessarily the same functions. Returns 0 or a negative
 * code with e filled.
 */
static inline int mob_prepare(lua_State *L, lua_CFunction adjust, struct mob_err *e)
{
	if (adjust != NULL)
		lua_pushcfunction(L, adjust);
	else
		lua_pushnil(L);
	lua_pushcclosure(L, mob_prepare_body, 1);
	if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
		mob_err_set(e, MIG_ERR_LUA, "preparing a state: %s", lua_tostring(L, -1));
		lua_pop(L, 1);
		return MIG_ERR_LUA;
	}
	return 0;
}

/* Makes the value at idx the registry's globals (what `load` and new main
 * chunks get as _ENV). */
static inline void mob_globals_set(lua_State *L, int idx)
{
	lua_pushvalue(L, idx);
	lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
}

/* Puts the original globals back (around persist and restore). */
static inline void mob_globals_original(lua_State *L)
{
	lua_getfield(L, LUA_REGISTRYINDEX, MOB_REG_G);
	mob_globals_set(L, -1);
	lua_pop(L, 1);
}

/* Pushes a new script environment: a shallow copy of the original globals,
 * with _G pointing to itself. Raises on memory errors. */
static inline void mob_env_push(lua_State *L)
{
	int env;

	lua_newtable(L);
	env = lua_gettop(L);
	lua_getfield(L, LUA_REGISTRYINDEX, MOB_REG_G);
	lua_pushnil(L);
	while (lua_next(L, -2) != 0) {
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_rawset(L, env);
	}
	lua_pop(L, 1);
	lua_pushvalue(L, env);
	lua_setfield(L, env, "_G");
}

/* Pushes math.random's generator-state userdata (a C upvalue of the
 * permanent), or nil when the math library is not there. */
static inline void mob_rng_push(lua_State *L)
{
	int top = lua_gettop(L);

	if (lua_getfield(L, LUA_REGISTRYINDEX, MOB_REG_G) == LUA_TTABLE &&
	    lua_getfield(L, -1, "math") == LUA_TTABLE &&
	    lua_getfield(L, -1, "random") == LUA_TFUNCTION &&
	    lua_getupvalue(L, -1, 1) != NULL && lua_type(L, -1) == LUA_TUSERDATA) {
		lua_replace(L, top + 1);
		lua_settop(L, top + 1);
		return;
	}
	lua_settop(L, top);
	lua_pushnil(L);
}

/* Pushes t[k] without metamethods; returns its type. */
static inline int mob_rawfield(lua_State *L, int t, const char *k)
{
	lua_pushstring(L, k);
	return lua_rawget(L, t);
}

/* mob_root_refresh under lua_pcall: 1 = the move number. */
static inline int mob_root_refresh_body(lua_State *L)
{
	lua_Integer moves = lua_tointeger(L, 1);
	int root;

	lua_getfield(L, LUA_REGISTRYINDEX, MOB_REG_ROOT);
	root = lua_gettop(L);
	lua_pushinteger(L, moves);
	lua_setfield(L, root, "moves");
	lua_getfield(L, LUA_REGISTRYINDEX, "_IO_input");
	lua_setfield(L, root, "io_in");
	lua_getfield(L, LUA_REGISTRYINDEX, "_IO_output");
	lua_setfield(L, root, "io_out");
	mob_rng_push(L);
	if (lua_type(L, -1) == LUA_TUSERDATA) {
		lua_pushlstring(L, lua_touserdata(L, -1), lua_rawlen(L, -1));
		lua_remove(L, -2);
	}
	lua_setfield(L, root, "rng");
	return 0;
}

/*
 * Brings the live root (registry MOB_REG_ROOT) up to date before it is
 * persisted as move number `moves`. Returns 0 or MIG_ERR_LUA with e filled.
 */
static inline int mob_root_refresh(lua_State *L, lua_Integer moves, struct mob_err *e)
{
	lua_pushcfunction(L, mob_root_refresh_body);
	lua_pushinteger(L, moves);
	if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
		mob_err_set(e, MIG_ERR_LUA, "updating the root: %s", lua_tostring(L, -1));
		lua_pop(L, 1);
		return MIG_ERR_LUA;
	}
	return 0;
}

/* What mob_root_install found. */
struct mob_install {
	lua_State *co;     /* the script's main coroutine */
	lua_Integer moves; /* the root's move number */
	const char *bad;   /* why the root was refused, or NULL */
};

/* Whether the value at idx is one of the standard handles of this state. */
static inline int mob_is_std_handle(lua_State *L, int idx)
{
	static const char *const std[] = { "stdin", "stdout", "stderr" };
	size_t i;
	int found = 0;

	idx = lua_absindex(L, idx);
	lua_getfield(L, LUA_REGISTRYINDEX, MOB_REG_G);
	if (lua_getfield(L, -1, "io") == LUA_TTABLE) {
		for (i = 0; i < sizeof std / sizeof std[0] && !found; i++) {
			lua_getfield(L, -1, std[i]);
			found = lua_type(L, -1) == LUA_TUSERDATA && lua_rawequal(L, -1, idx);
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 2);
	return found;
}

/* mob_root_install under lua_pcall: 1 = struct mob_install *, 2 = root.
 * Checks every field first, then changes the state. */
static inline int mob_root_install_body(lua_State *L)
{
	struct mob_install *in = lua_touserdata(L, 1);
	lua_State *co;
	lua_Debug ar;
	int root = 2, co_i, env_i, in_i, out_i, moves_i, rng_i, rng_u;

	if (lua_type(L, root) != LUA_TTABLE) {
		in->bad = "the root is not a table";
		return 0;
	}
	mob_rawfield(L, root, "co");
	co_i = lua_gettop(L);
	mob_rawfield(L, root, "env");
	env_i = lua_gettop(L);
	mob_rawfield(L, root, "io_in");
	in_i = lua_gettop(L);
	mob_rawfield(L, root, "io_out");
	out_i = lua_gettop(L);
	mob_rawfield(L, root, "moves");
	moves_i = lua_gettop(L);
	mob_rawfield(L, root, "rng");
	rng_i = lua_gettop(L);
	mob_rng_push(L);
	rng_u = lua_gettop(L);

	co = lua_tothread(L, co_i);
	if (co == NULL || co == L) {
		in->bad = "the root's co is not a coroutine";
		return 0;
	}
	/* Suspended in a yield, or created and not started yet. */
	if (!(lua_status(co) == LUA_YIELD ||
	      (lua_status(co) == LUA_OK && lua_getstack(co, 0, &ar) == 0 &&
	       lua_gettop(co) >= 1 && lua_type(co, 1) == LUA_TFUNCTION))) {
		in->bad = "the root's co is not a suspended coroutine";
		return 0;
	}
	if (lua_type(L, env_i) != LUA_TTABLE) {
		in->bad = "the root's env is not a table";
		return 0;
	}
	if ((!lua_isnil(L, in_i) && !mob_is_std_handle(L, in_i)) ||
	    (!lua_isnil(L, out_i) && !mob_is_std_handle(L, out_i))) {
		in->bad = "the root's io_in or io_out is not a standard handle";
		return 0;
	}
	if (!lua_isinteger(L, moves_i) || lua_tointeger(L, moves_i) < 0) {
		in->bad = "the root's moves is not a count";
		return 0;
	}
	if (!lua_isnil(L, rng_i) &&
	    (lua_type(L, rng_i) != LUA_TSTRING || lua_type(L, rng_u) != LUA_TUSERDATA ||
	     lua_rawlen(L, rng_i) != lua_rawlen(L, rng_u))) {
		in->bad = "the root's rng does not fit math.random here";
		return 0;
	}

	if (!lua_isnil(L, rng_i))
		memcpy(lua_touserdata(L, rng_u), lua_tostring(L, rng_i), lua_rawlen(L, rng_i));
	if (!lua_isnil(L, in_i)) {
		lua_pushvalue(L, in_i);
		lua_setfield(L, LUA_REGISTRYINDEX, "_IO_input");
	}
	if (!lua_isnil(L, out_i)) {
		lua_pushvalue(L, out_i);
		lua_setfield(L, LUA_REGISTRYINDEX, "_IO_output");
	}
	lua_pushvalue(L, root);
	lua_setfield(L, LUA_REGISTRYINDEX, MOB_REG_ROOT);
	mob_globals_set(L, env_i);
	in->co = co;
	in->moves = lua_tointeger(L, moves_i);
	return 0;
}

/*
 * Takes the restored root from the top of L (popping it), checks it and
 * makes it live: registry root, the script's globals, io defaults, the
 * random generator. Sets *co to the main coroutine and *moves to the root's
 * move number. Returns 0, or MOB_ERR_ROOT / MIG_ERR_LUA with e filled (the
 * state is then unchanged apart from the popped root).
 */
static inline int mob_root_install(lua_State *L, lua_State **co, lua_Integer *moves, struct mob_err *e)
{
	struct mob_install in = { NULL, 0, NULL };

	*co = NULL;
	*moves = 0;
	lua_pushcfunction(L, mob_root_install_body);
	lua_pushlightuserdata(L, &in);
	lua_rotate(L, -3, -1);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		mob_err_set(e, MIG_ERR_LUA, "installing the root: %s", lua_tostring(L, -1));
		lua_pop(L, 1);
		return MIG_ERR_LUA;
	}
	if (in.bad != NULL) {
		mob_err_set(e, MOB_ERR_ROOT, "%s", in.bad);
		return MOB_ERR_ROOT;
	}
	*co = in.co;
	*moves = in.moves;
	return 0;
}

#endif
