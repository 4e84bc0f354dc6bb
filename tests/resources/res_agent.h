/*
 * res_agent.h: a small in-process cluster for the resources tests: hosts
 * (a registry, a policy, a handle environment each) joined by the loopback
 * transport, agents as plain Lua states holding handles, and a migration
 * step that does what the daemon does for one binding: gather the
 * situation, decide, run the action's mechanics, and restore the handle in
 * a fresh state on the target through the persist/restore hooks.
 */
#ifndef RES_AGENT_H
#define RES_AGENT_H

#include "res_fixture.h"
#include "res_lua.h"

#include <lauxlib.h>
#include <lualib.h>

struct fx_host {
	struct res_registry *reg;
	struct res_policy policy;
	struct res_lua_env env;
	struct res_bind rebind; /* restore context of the last hop here */
};

struct fx_cluster {
	char dir[256];
	struct fx_net net;
	struct fx_host host[FX_MAX_HOSTS];
	int n;
};

static inline void fx_cluster_init(struct fx_cluster *c, int n)
{
	memset(c, 0, sizeof *c);
	cr_assert_eq(tst_tmpdir(c->dir, sizeof c->dir), 0);
	c->n = n;
	for (int i = 0; i < n; i++) {
		char name[16], data[64];

		snprintf(name, sizeof name, "h%d", i + 1);
		snprintf(data, sizeof data, "data-%s", name);
		cr_assert_eq(res_registry_new(name, fx_path(c->dir, data), &c->host[i].reg), 0);
		res_policy_init(&c->host[i].policy);
		c->net.reg[i] = c->host[i].reg;
		c->host[i].env.host = res_registry_host(c->host[i].reg);
		c->host[i].env.reg = c->host[i].reg;
		c->host[i].env.transport = fx_net_transport(&c->net);
	}
}

static inline void fx_cluster_fini(struct fx_cluster *c)
{
	for (int i = 0; i < c->n; i++)
		res_registry_destroy(&c->host[i].reg);
	tst_rmtree(c->dir);
}

/* A fresh agent state on host h. */
static inline lua_State *fx_agent_new(struct fx_host *h)
{
	lua_State *L = luaL_newstate();

	cr_assert_not_null(L);
	luaL_openlibs(L);
	cr_assert_eq(res_lua_open(L, &h->env), 0);
	return L;
}

/* Binds global `h` of L to resource `ref` of host h (as agent.resource
 * would after resolving the manifest), counting the binder. */
static inline void fx_agent_bind(lua_State *L, struct fx_host *h, const char *name,
				 enum res_binding binding, const char *ref)
{
	struct res_bind b;

	cr_assert_eq(res_bind_resolve(h->reg, name, binding, ref, &b), 0, "resolve %s", ref);
	if (strcmp(b.home, h->env.host) == 0)
		cr_assert_eq(res_registry_bind(h->reg, b.id), 0);
	res_lua_push_handle(L, &b);
	lua_setglobal(L, "h");
}

/* Runs chunk in L; returns its first result as a malloc'd string (tostring),
 * "nil" for nil. Fails the test if the chunk raises. */
static inline char *fx_lua(lua_State *L, const char *chunk)
{
	char *out;

	if (luaL_dostring(L, chunk) != LUA_OK)
		cr_assert_fail("lua: %s\n in: %s", lua_tostring(L, -1), chunk);
	if (lua_gettop(L) == 0)
		return strdup("");
	out = strdup(luaL_tolstring(L, 1, NULL));
	lua_settop(L, 0);
	return out;
}

/* Runs chunk for its effects; fails the test if it raises. */
static inline void fx_lua_do(lua_State *L, const char *chunk)
{
	free(fx_lua(L, chunk));
}

static inline void fx_lua_eq(lua_State *L, const char *chunk, const char *want)
{
	char *got = fx_lua(L, chunk);

	cr_assert_str_eq(got, want, "chunk: %s", chunk);
	free(got);
}

/* The global handle h of L persisted (hook), copied value by value into a
 * fresh state on `to` (as the engine would carry it), and restored (hook)
 * with to's rebind context; the old state is closed. Returns the new one. */
static inline lua_State *fx_carry(lua_State *from, struct fx_host *to)
{
	lua_State *L2 = fx_agent_new(to);

	lua_pushcfunction(from, res_lua_persist);
	lua_getglobal(from, "h");
	cr_assert_eq(lua_pcall(from, 1, 1, 0), LUA_OK, "persist: %s", lua_tostring(from, -1));
	cr_assert_eq(lua_type(from, -1), LUA_TTABLE);
	lua_pushcfunction(L2, res_lua_restore);
	lua_newtable(L2);
	lua_pushnil(from);
	while (lua_next(from, -2) != 0) {
		cr_assert_eq(lua_type(from, -2), LUA_TSTRING, "persisted keys are names");
		lua_pushstring(L2, lua_tostring(from, -2));
		switch (lua_type(from, -1)) {
		case LUA_TSTRING: lua_pushstring(L2, lua_tostring(from, -1)); break;
		case LUA_TBOOLEAN: lua_pushboolean(L2, lua_toboolean(from, -1)); break;
		case LUA_TNUMBER: lua_pushinteger(L2, lua_tointeger(from, -1)); break;
		default: cr_assert_fail("persisted value of type %s", luaL_typename(from, -1));
		}
		lua_rawset(L2, -3);
		lua_pop(from, 1);
	}
	lua_close(from);
	to->env.rebinds = &to->rebind;
	to->env.nrebinds = 1;
	cr_assert_eq(lua_pcall(L2, 1, 1, 0), LUA_OK, "restore: %s", lua_tostring(L2, -1));
	to->env.rebinds = NULL;
	to->env.nrebinds = 0;
	lua_setglobal(L2, "h");
	return L2;
}

static inline int fx_index(const struct fx_cluster *c, const char *host)
{
	for (int i = 0; i < c->n; i++)
		if (strcmp(res_registry_host(c->host[i].reg), host) == 0)
			return i;
	return -1;
}

/*
 * Moves the agent L (global handle h) from host index s to host index t,
 * doing for its one binding what the daemon does. Fills *d with the
 * decision and returns the new state (or NULL when no action applied).
 */
static inline lua_State *fx_migrate(struct fx_cluster *c, lua_State *L, int s, int t,
				    struct res_decision *d)
{
	struct fx_host *src = &c->host[s], *dst = &c->host[t];
	struct res_bind *b, bind;
	struct res_policy_ctx ctx;
	struct res_info info;
	char id[RES_ID_MAX];
	int home, rc;

	lua_getglobal(L, "h");
	b = res_lua_tobind(L, -1);
	cr_assert_not_null(b);
	bind = *b;
	lua_pop(L, 1);
	/* The source's facts, then the target's, then the peers'. */
	cr_assert_eq(res_policy_ctx_fill(src->reg, &bind, &ctx), 0);
	ctx.target_lacks_kind = !((res_registry_kinds(dst->reg) >> bind.kind) & 1u);
	ctx.target_has_id = res_registry_info(dst->reg, bind.id, &info) == 0 && !info.forward;
	home = fx_index(c, bind.home);
	ctx.home_down = home < 0 || c->net.down[home];
	rc = res_policy_decide(&src->policy, NULL, &ctx, d);
	if (rc != 0)
		return NULL;
	memset(&dst->rebind, 0, sizeof dst->rebind);
	snprintf(dst->rebind.name, sizeof dst->rebind.name, "%s", bind.name);
	dst->rebind.action = d->action;
	dst->rebind.bound = 1;
	dst->rebind.kind = bind.kind;
	dst->rebind.attach = bind.attach;
	switch (d->action) {
	case RES_ACT_MV:
	case RES_ACT_CP: {
		void *blob;
		size_t len;

		cr_assert_eq(res_export(src->reg, bind.id, &blob, &len), 0);
		/* ... the blob crosses the peer channel here ... */
		cr_assert_eq(res_import(dst->reg, blob, len, (enum res_action)d->action, id), 0);
		free(blob);
		if (d->action == RES_ACT_MV) {
			cr_assert_eq(res_move_commit(src->reg, bind.id, dst->env.host), 0);
			res_registry_unbind(src->reg, bind.id);
		}
		res_registry_bind(dst->reg, id);
		snprintf(dst->rebind.id, sizeof dst->rebind.id, "%s", id);
		snprintf(dst->rebind.home, sizeof dst->rebind.home, "%s", dst->env.host);
		break;
	}
	case RES_ACT_RB:
		cr_assert_eq(res_registry_find_kind(dst->reg, bind.kind, bind.id, id), 0);
		if (strcmp(bind.home, src->env.host) == 0)
			res_registry_unbind(src->reg, bind.id);
		res_registry_bind(dst->reg, id);
		cr_assert_eq(res_registry_info(dst->reg, id, &info), 0);
		dst->rebind.attach = info.attach;
		snprintf(dst->rebind.id, sizeof dst->rebind.id, "%s", id);
		snprintf(dst->rebind.home, sizeof dst->rebind.home, "%s", dst->env.host);
		break;
	default:
		/* GR: keep the persisted (id, home). */
		break;
	}
	return fx_carry(L, dst);
}

#endif
