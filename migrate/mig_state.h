/*
 * mig_state.h: the strong-mobility engine. Persists a Lua 5.4 agent's whole
 * execution state (values, tables, closures, upvalues, coroutines with their
 * call stacks) to bytes and rebuilds it in a fresh lua_State in another
 * process, so that resuming it continues exactly where it stopped.
 * Format: docs/state-format.md.
 *
 * Invariants:
 * - No bytecode ever crosses the wire. A function prototype is named by
 *   (BLAKE2b-256 of the source text it was compiled from, index of the
 *   prototype in that chunk, pre-order); the restorer recompiles the source
 *   and checks the prototype's shape. Binary chunks are never accepted.
 * - Permanents (standard library, string metatable, host API) are written as
 *   stable names and bound on restore to the target's own objects.
 * - A restored state has the string-hash seed the agent had, so `next`
 *   visits keys in the order it did before the move.
 * - Restoring hostile bytes returns an error; it never crashes, reads out of
 *   bounds, leaks or recurses without bound.
 *
 * Thread-safety: a lua_State belongs to one thread at a time; functions here
 * touch only the state they are given.
 */
#ifndef MIG_STATE_H
#define MIG_STATE_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

/* Version of the execution-state format (docs/state-format.md). */
#define MIG_STATE_VERSION 1

/* Size of a source hash (BLAKE2b-256). */
#define MIG_HASH_LEN 32

/* Error codes of the migrate library (all negative; 0 is success). */
enum mig_err {
	MIG_OK = 0,
	MIG_ERR_NOMEM = -1,         /* out of memory */
	MIG_ERR_TRUNCATED = -2,     /* the bytes end before the format does */
	MIG_ERR_MALFORMED = -3,     /* the bytes break the format */
	MIG_ERR_VERSION = -4,       /* another format version */
	MIG_ERR_UNPERSISTABLE = -5, /* an object that cannot move (path in msg) */
	MIG_ERR_NOSOURCE = -6,      /* a function's source is not known here */
	MIG_ERR_SHAPE = -7,         /* a recompiled prototype differs */
	MIG_ERR_LIMIT = -8,         /* a size, count or depth cap exceeded */
	MIG_ERR_BUSY = -9,          /* a coroutine is running, not suspended */
	MIG_ERR_LUA = -10,          /* Lua raised an error (message in msg) */
	MIG_ERR_ARG = -11,          /* misuse by the caller */
	MIG_ERR_SIGNATURE = -12,    /* a signature does not verify */
	MIG_ERR_IO = -13,           /* a file could not be read or written */
};

/* A static string for a code; never NULL. */
const char *mig_strerror(int code);

/* Details of a failure: the code and a human message (for
 * MIG_ERR_UNPERSISTABLE, the path from the root to the offending object,
 * e.g. "root.upvalue[2].field 'f'"). Callers need not initialise it: the
 * functions of this library reset it on entry or overwrite it on failure;
 * it is meaningful only after a negative return. */
struct mig_error {
	int code;
	char msg[256];
};

/* A growable byte buffer. Zero-initialise, then the engine appends; the
 * caller owns data and frees it with mig_buf_free. */
struct mig_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};
void mig_buf_free(struct mig_buf *b);

/*
 * The engine's environment inside a state. Call once on a fresh state, after
 * opening the libraries the agent will see and before any agent code runs.
 * It installs:
 *  - the permanents registry, filled with every function and table reachable
 *    from the standard library globals present now (names like "string.format",
 *    "_G.print"), and the string metatable;
 *  - the source registry (hash -> source text) and the prototype index;
 *  - the engine's own `load` (text only, recorded in the source registry so
 *    that functions it makes can move), and its own pcall/xpcall whose
 *    continuations it can name.
 * Returns 0 or a negative mig_err.
 */
int mig_env_open(lua_State *L);

/* Registers the value at idx as permanent `name` (host API functions,
 * resource metatables...). Both sides must register the same names.
 * Returns 0 or MIG_ERR_ARG (duplicate name or value). */
int mig_perm_add(lua_State *L, const char *name, int idx);

/* Adds source text to the source registry and sets hash_out to its
 * BLAKE2b-256. `chunkname` is used in error messages ("=name" or "@file").
 * A source added with external != 0 belongs to a code segment: persisted
 * states name it by hash only, and the restoring side must add it (from the
 * segment) before mig_state_restore. Sources with external == 0 (recorded
 * by `load` at run time) travel inside the persisted state as text. */
int mig_source_add(lua_State *L, const char *text, size_t len, const char *chunkname,
		   int external, uint8_t hash_out[MIG_HASH_LEN]);

/* Compiles the registered source `hash` (text only) and pushes its main
 * function. Returns 0, or MIG_ERR_NOSOURCE / MIG_ERR_LUA with err filled. */
int mig_source_load(lua_State *L, const uint8_t hash[MIG_HASH_LEN], struct mig_error *err);

/*
 * Full userdata with a metatable registered as `tname` (luaL_newmetatable)
 * persist through hooks. `persist` is called with the userdata at the top of
 * the stack and must push one value standing for it (any persistable value,
 * typically a table of primitives); `restore` is called with that value at
 * the top and must push the new userdata. Either may raise an error, which
 * fails the whole persist or restore with MIG_ERR_LUA.
 */
int mig_udata_register(lua_State *L, const char *tname, lua_CFunction persist,
		       lua_CFunction restore);

/*
 * Additions (engine, v1):
 *
 * C closures whose function is not a permanent value (coroutine.wrap's
 * function, host closures...) persist when their C function is known by a
 * name, the same on both sides; their upvalues travel as values.
 * mig_env_open registers "coroutine.wrap:f" itself.
 * A C frame suspended in a coroutine (below a yield) can be rebuilt only if
 * its continuation is known by name; mig_env_open registers the engine's
 * pcall/xpcall continuation. Both return 0 or MIG_ERR_ARG (environment not
 * open, duplicate name or pointer, name longer than 63 bytes, table full).
 */
int mig_cfunc_add(lua_State *L, const char *name, lua_CFunction f);
int mig_cont_add(lua_State *L, const char *name, lua_KFunction k);

/*
 * Notes on the functions below (engine, v1):
 * - mig_state_restore refuses a state made with another seed than L's
 *   (MIG_ERR_ARG) and runs a full collection first.
 * - mig_state_forget_finalizers also stops the collector of L for good:
 *   call it only right before lua_close.
 * - Hooks are not carried: set them again on restored coroutines.
 */

/*
 * Persists the value at idx (typically the agent's coroutine, or a table
 * holding it and its companions) and everything reachable from it to out
 * (appended). Coroutines must be suspended, not started, or dead (not
 * running, not normal unless reachable only as a resumer of a suspended
 * one). L itself is not modified. Returns 0 or a negative mig_err with err
 * filled (err may be NULL).
 */
int mig_state_persist(lua_State *L, int idx, struct mig_buf *out, struct mig_error *err);

/* What the header of a persisted state says, read without restoring. */
struct mig_state_info {
	uint32_t version;  /* format version */
	uint32_t seed;     /* string-hash seed to create the target state with */
	uint64_t nobjects; /* number of object records */
};
int mig_state_peek(const void *buf, size_t len, struct mig_state_info *info);

/*
 * Rebuilds a persisted value into L, which must have been made with
 * mig_lua_newstate(..., info.seed), given the same libraries, mig_env_open,
 * the same permanents and the code segment's sources. Pushes the root value
 * on success. On failure pushes nothing and leaves L usable. Returns 0 or a
 * negative mig_err with err filled (err may be NULL).
 */
int mig_state_restore(lua_State *L, const void *buf, size_t len, struct mig_error *err);

/*
 * Before closing a state whose agent has moved away: drops every pending
 * finalizer, so that lua_close runs none of the agent's __gc metamethods
 * (those objects live on at the target). The state must not run agent code
 * afterwards.
 */
void mig_state_forget_finalizers(lua_State *L);

/*
 * Plain data (nil, booleans, numbers, strings, and tables of them, with
 * shared references and cycles kept) for agent messages: no functions,
 * userdata or coroutines. Encoding appends to out; decoding pushes the value.
 * Same error conventions as above; decoding checks every length and depth.
 */
int mig_data_encode(lua_State *L, int idx, struct mig_buf *out, struct mig_error *err);
int mig_data_decode(lua_State *L, const void *buf, size_t len, struct mig_error *err);

#endif
