/*
 * agd_moblua.c: agent.migrate and agent.clone on the Lua side (see
 * agd_moblua.h). The root table's "migres" field holds the request:
 *   { to = host, from = host it left, clone = bool, weak = bool,
 *     n = k, [1..k] = values migrate returns on the target }
 * Nothing here touches sockets or the runtime's lock: the move itself is
 * agd_mobility's, started by the worker loop when the slice ends with
 * AGD_VM_MIGRATE.
 */
#include "agd_moblua.h"

#include "agd_mobility.h"
#include "agd_wire.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#define MAX_RETURNS 16 /* values opts.returns may carry */

static int fail(lua_State *L, const char *msg, const char *code)
{
	lua_pushnil(L);
	lua_pushstring(L, msg);
	lua_pushstring(L, code);
	return 3;
}

static int known_host(struct agd_rt *rt, const char *host)
{
	size_t n = 0;
	const char *const *h = agd_rt_hosts(rt, &n);

	for (size_t i = 0; i < n; i++)
		if (strcmp(h[i], host) == 0)
			return 1;
	return 0;
}

int agd_moblua_request(lua_State *L, struct agd_rt *rt, int root_ref, int clone)
{
	const char *host = luaL_checkstring(L, 1);
	const char *self = agd_rt_config(rt)->host;
	int weak = 0, nret = 0;

	luaL_argcheck(L, host[0] != '\0' && strlen(host) <= AGD_WIRE_NAME_MAX, 1, "bad host name");
	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		lua_getfield(L, 2, "weak");
		weak = lua_toboolean(L, -1);
		lua_pop(L, 1);
		lua_getfield(L, 2, "returns");
		if (!lua_isnil(L, -1)) {
			luaL_argcheck(L, !clone, 2, "agent.clone takes no returns");
			luaL_argcheck(L, lua_istable(L, -1), 2, "opts.returns must be a table");
			lua_getfield(L, -1, "n");
			nret = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : (int)luaL_len(L, -2);
			lua_pop(L, 1);
			luaL_argcheck(L, nret >= 0 && nret <= MAX_RETURNS, 2, "too many returns");
		}
		lua_pop(L, 1);
	}
	if (!agd_mobility_available(rt))
		return fail(L, "migration not available", "unavailable");
	if (strcmp(host, self) == 0)
		return fail(L, "the agent is already on this host", "arg");
	if (!known_host(rt, host))
		return fail(L, "unknown host (not in the trusted-hosts list)", "notfound");

	lua_rawgeti(L, LUA_REGISTRYINDEX, root_ref);
	lua_createtable(L, nret, 5);
	lua_pushstring(L, host);
	lua_setfield(L, -2, "to");
	lua_pushstring(L, self);
	lua_setfield(L, -2, "from");
	lua_pushboolean(L, clone);
	lua_setfield(L, -2, "clone");
	lua_pushboolean(L, weak);
	lua_setfield(L, -2, "weak");
	lua_pushinteger(L, nret);
	lua_setfield(L, -2, "n");
	if (nret > 0) {
		lua_getfield(L, 2, "returns");
		for (int i = 1; i <= nret; i++) {
			lua_geti(L, -1, i);
			lua_rawseti(L, -3, i);
		}
		lua_pop(L, 1);
	}
	lua_setfield(L, -2, "migres");
	lua_pop(L, 1);
	return 0;
}

void agd_moblua_yielded(lua_State *L, int root_ref, struct agd_vm_result *res)
{
	const char *to;

	res->status = AGD_VM_MIGRATE;
	res->move_flags = 0;
	lua_rawgeti(L, LUA_REGISTRYINDEX, root_ref);
	lua_getfield(L, -1, "migres");
	if (!lua_istable(L, -1)) {
		/* Cannot happen (the request is made before the yield); an
		 * empty target makes the move fail cleanly. */
		res->reason[0] = '\0';
		lua_pop(L, 2);
		return;
	}
	lua_getfield(L, -1, "to");
	to = lua_tostring(L, -1);
	snprintf(res->reason, sizeof res->reason, "%s", to ? to : "");
	lua_getfield(L, -2, "clone");
	if (lua_toboolean(L, -1))
		res->move_flags |= AGD_MOVE_CLONE;
	lua_getfield(L, -3, "weak");
	if (lua_toboolean(L, -1))
		res->move_flags |= AGD_MOVE_WEAK;
	lua_pop(L, 5);
}

/*
 * What agent.migrate / agent.clone return:
 * - on the target (the request's `from` is another host): migrate gives
 *   opts.returns' values, or true; clone (in the copy) gives the copy's own
 *   id, equal to agent.id();
 * - back at the source: clone gives the copy's id; a migrate that did not
 *   happen (refused, timed out, the target unknown or down) gives nil,
 *   message, "io"; when the outcome is unknown (the daemon restarted in
 *   between) nil, message, "interrupted".
 */
struct resume_args {
	int root_ref;
	struct agd_rt *rt;
	struct agd_agent *a;
	int n; /* values pushed */
};

/* Under lua_pcall: the agent's memory quota may refuse an allocation, and
 * nothing may raise outside a protected call. */
static int resume_values(lua_State *L)
{
	struct resume_args *x = lua_touserdata(L, 1);
	struct agd_rt *rt = x->rt;
	struct agd_agent *a = x->a;
	const char *from;
	int clone, n;

	lua_settop(L, 0);
	luaL_checkstack(L, MAX_RETURNS + 8, "agent.migrate");
	lua_rawgeti(L, LUA_REGISTRYINDEX, x->root_ref);
	lua_getfield(L, -1, "migres");
	if (!lua_istable(L, -1))
		return 0;
	lua_pushnil(L);
	lua_setfield(L, -3, "migres");
	lua_getfield(L, -1, "from");
	from = lua_tostring(L, -1);
	lua_getfield(L, -2, "clone");
	clone = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (from != NULL && strcmp(from, agd_rt_config(rt)->host) != 0) {
		lua_pop(L, 1);
		if (clone) {
			lua_pushstring(L, agd_agent_id(a));
			n = 1;
		} else {
			lua_getfield(L, -1, "n");
			n = (int)lua_tointeger(L, -1);
			lua_pop(L, 1);
			if (n <= 0 || n > MAX_RETURNS) {
				lua_pushboolean(L, 1);
				n = 1;
			} else {
				int t = lua_gettop(L);

				for (int i = 1; i <= n; i++)
					lua_rawgeti(L, t, i);
			}
		}
	} else {
		int ok = 0;
		char cid[AGD_ID_LEN + 1], err[200];

		lua_pop(L, 1);
		if (!agd_mobility_self_outcome(rt, agd_agent_id(a), &ok, cid, err, sizeof err)) {
			lua_pushnil(L);
			lua_pushstring(L, "the move was interrupted (the daemon restarted or has no peer channel)");
			lua_pushstring(L, "interrupted");
			n = 3;
		} else if (ok && clone) {
			lua_pushstring(L, cid);
			n = 1;
		} else if (ok) {
			lua_pushboolean(L, 1);
			n = 1;
		} else {
			lua_pushnil(L);
			lua_pushfstring(L, "migration failed: %s", err[0] ? err : "transfer failed");
			lua_pushstring(L, "io");
			n = 3;
		}
	}
	x->n = n;
	return n;
}

int agd_moblua_resume(lua_State *L, lua_State *co, int root_ref, struct agd_rt *rt,
		      struct agd_agent *a)
{
	struct resume_args x = { root_ref, rt, a, 0 };
	int top = lua_gettop(L);

	if (!lua_checkstack(co, MAX_RETURNS + 3) || !lua_checkstack(L, 4))
		return 0;
	lua_pushcfunction(L, resume_values);
	lua_pushlightuserdata(L, &x);
	if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK || lua_gettop(L) - top != x.n) {
		lua_settop(L, top);
		return 0;
	}
	lua_xmove(L, co, x.n);
	return x.n;
}
