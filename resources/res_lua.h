/*
 * res_lua.h: resource handles for agents. `agent.resource(name)` (the host
 * API) pushes one with res_lua_push_handle; its methods run the ops of
 * res_op.h on the local registry, or through the transport when the
 * resource lives on another host (GR), following forwards left by MV.
 * Agent API: docs/resources.md, "Lua handles".
 *
 *   file:    h:read([n [, offset]]) h:write(s) h:append(s) h:size()
 *   kv:      h:get(k) h:put(k, v) h:delete(k) h:keys() h:size()
 *   printer: h:print(s) h:read([n [, offset]]) h:size()
 *   sensor:  h:read()
 *   all:     h:info() -> {name=, binding=, kind=, id=, home=, attachment=,
 *                         mode="local"|"remote"|"unbound", action=}
 * Misuse (wrong argument types, a method the kind lacks) raises; expected
 * failures (home down, limits, I/O) return nil, message, code, where code
 * is res_errname's short name ("unreachable", "limit"...).
 *
 * Persisted by the strong-mobility engine through hooks (res_lua_mobility):
 * a handle is written as a table of its binding (res_action.h struct
 * res_bind) and rebuilt from it on restore, rebound according to the
 * outcome the daemon put in env->rebinds for that binding name.
 *
 * Thread-safety: as the lua_State (one thread at a time).
 */
#ifndef RES_LUA_H
#define RES_LUA_H

#include "res_action.h"
#include "res_registry.h"

#include <lua.h>
#include <lauxlib.h>
#include <stdint.h>

#define RES_LUA_TNAME "agentd.resource"

/* Redirects (RES_ERR_MOVED) one call follows before giving up. */
#define RES_LUA_MAX_REDIRECTS 4

/*
 * What handles in one state need, supplied by the daemon (or a test). The
 * state borrows it: it must outlive the state. Its fields may be changed
 * between calls into the state; in particular `rebinds` is set after the
 * policy has decided, before mig_state_restore, to the outcome of each
 * binding by name:
 *   bound == 0           the handle becomes unbound (every op: nil, msg, "unbound");
 *   id[0] == '\0'        keep the persisted (id, home): a GR, which carries its
 *                        home across any number of hops;
 *   otherwise            bind to (id, home) with attach and action as given (the
 *                        kind stays the persisted one: no action changes it).
 * A persisted handle whose name has no rebind entry keeps its (id, home).
 */
/*
 * Waiting for a remote op without holding a thread (optional; the daemon
 * fills it from agentd/agd_park.h). A handle's op on a resource of another
 * host, made where the state can yield, takes a token, has start send the
 * op tagged with it, and yields through yield; when the agent runs again,
 * res_lua_resumed (the continuation, which the engine must know by name:
 * res_lua_mobility registers it) finds data (the reply bytes, or nil),
 * code (0, or the daemon's error code) and text on the stack, and turns
 * them into the method's results. Where the state cannot yield (a C call
 * boundary), or when yield is NULL, transport.call waits instead.
 */
struct res_lua_park {
	/* A fresh token for the next park of the running agent. */
	uint64_t (*token)(lua_State *L);
	/* Sends op (id, args) to home for agent, tagged with token, and sets
	 * *timeout_s (> 0), how long to wait for the answer. Returns 0, or a
	 * res_err (nothing was sent; the op fails with it). Must not touch
	 * the Lua state. */
	int (*start)(void *ud, const char *agent, const char *home, const char *id,
		     const char *op, const void *args, size_t args_len, uint64_t token,
		     double *timeout_s);
	/* Yields L until token's answer or timeout_s (lua_yieldk with ctx, k);
	 * raises where the agent cannot wait (a nested coroutine). */
	int (*yield)(lua_State *L, uint64_t token, double timeout_s, lua_KContext ctx,
		     lua_KFunction k);
	/* The park of token ended with code (0: an answer came); lets the
	 * daemon forget it. May be NULL. */
	void (*done)(void *ud, const char *agent, uint64_t token, int code);
	int timeout_code;                 /* the code a park gets when no answer came */
	void *ud;                         /* passed back to start and done */
};

struct res_lua_env {
	const char *host;                 /* this host's name */
	struct res_registry *reg;         /* this host's resources; may be NULL */
	struct res_transport transport;   /* for GR; call may be NULL (then: unreachable) */
	const struct res_bind *rebinds;   /* restore context, or NULL */
	size_t nrebinds;                  /* entries in rebinds */
	const char *agent;                /* the agent's id (for park), or NULL */
	struct res_lua_park park;         /* GR ops without a blocked thread; yield may be NULL */
};

/* Installs the handle metatable (RES_LUA_TNAME) and env into L. Returns 0,
 * or RES_ERR_NOMEM (L stays usable). */
int res_lua_open(lua_State *L, struct res_lua_env *env);

/* Pushes a new handle for binding b (copied). Raises on a bad binding or
 * out of memory: call it from a C function running under lua_pcall, such
 * as the host API's agent.resource. */
void res_lua_push_handle(lua_State *L, const struct res_bind *b);

/* The binding of the handle at idx, or NULL if it is not a handle. The
 * pointer lives as long as the handle. */
struct res_bind *res_lua_tobind(lua_State *L, int idx);

/* The engine's hooks (lua_CFunction contract of mig_udata_register):
 * persist pushes a table for the handle at the top; restore pushes a handle
 * for the table at the top, raising on anything malformed. */
int res_lua_persist(lua_State *L);
int res_lua_restore(lua_State *L);

/* Names co as the agent's main coroutine, the only thread whose remote ops
 * park (in another, a nested coroutine, they wait in transport.call).
 * Until it is named, and once it has finished (weak mobility's entry
 * chunk gives way to the entry function), any thread that can yield tries
 * to park, and the first park that returns names its thread. Raises on
 * out of memory: call it from a C function running under lua_pcall. */
void res_lua_set_main(lua_State *L, lua_State *co);

/* The continuation of a parked op (struct res_lua_park): lua_KFunction. */
int res_lua_resumed(lua_State *L, int status, lua_KContext ctx);

/* Every C function a handle exposes (methods and metamethods), NULL-name
 * terminated, so that they can be registered as permanents. */
const luaL_Reg *res_lua_functions(void);

/*
 * Registers the hooks with the strong-mobility engine
 * (mig_udata_register), each function of res_lua_functions as a
 * permanent "agentd.resource.<name>" (mig_perm_add), so that a method an
 * agent stored in a variable moves too, and res_lua_resumed as the
 * continuation "agentd.resource.resumed" (mig_cont_add). Call after mig_env_open and
 * res_lua_open, the same way on every host. Returns 0, RES_ERR_NOMEM or
 * RES_ERR_ARG (the engine refused: e.g. registered twice). Lives in its
 * own file, so that programs not linking the engine can use the rest.
 */
int res_lua_mobility(lua_State *L);

#endif
