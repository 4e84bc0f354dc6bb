/*
 * res_lua.c: the "agentd.resource" userdata: one binding (struct res_bind)
 * whose methods encode an op (res_op.h), run it on the local registry or
 * through the transport to the home host, and push the reply.
 *
 * A remote op either waits in the transport (synchronous, bounded) or,
 * when the daemon supplied a park (res_lua_env.park) and the state can
 * yield, parks the agent: the method returns through lua_yieldk and its
 * continuation, res_lua_resumed, finishes it with the answer. Everything a
 * call needs across that yield lives on the Lua stack (the encoded
 * arguments, the reply box, the token), never in C locals.
 *
 * Invariants: malloc'd reply bytes are only ever held by a reply box, a
 * userdata whose __gc frees them, so that an error raised while the reply
 * is being pushed (out of memory) leaks nothing; a handle holds no other
 * resource, so it needs no finalizer and moving it leaves nothing behind.
 * A handle follows at most RES_LUA_MAX_REDIRECTS forwards per call.
 * Never: raise for an expected failure (those return nil, msg, code).
 */
#include "res_lua.h"

#include "res_internal.h"
#include "res_op.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define REPLY_TNAME "agentd.resource.reply"

/* The address of this object is the registry key of the env pointer. */
static const char env_key = 'e';
/* ... and this one of the agent's main coroutine (res_lua_set_main). */
static const char main_key = 'm';

struct box {
	void *p;      /* malloc'd reply, or NULL */
	size_t len;
};

static int box_gc(lua_State *L)
{
	struct box *b = luaL_checkudata(L, 1, REPLY_TNAME);

	free(b->p);
	b->p = NULL;
	return 0;
}

static struct res_lua_env *get_env(lua_State *L)
{
	struct res_lua_env *env;

	lua_rawgetp(L, LUA_REGISTRYINDEX, &env_key);
	env = lua_touserdata(L, -1);
	lua_pop(L, 1);
	if (env == NULL)
		luaL_error(L, "resource handles are not set up in this state");
	return env;
}

struct res_bind *res_lua_tobind(lua_State *L, int idx)
{
	return luaL_testudata(L, idx, RES_LUA_TNAME);
}

static struct res_bind *check(lua_State *L)
{
	return luaL_checkudata(L, 1, RES_LUA_TNAME);
}

/* Returns nil, message, code for an expected failure. */
static int push_fail(lua_State *L, const struct res_bind *h, int code, const char *detail,
		     size_t detail_len)
{
	luaL_pushfail(L);
	if (code == RES_ERR_UNREACHABLE)
		lua_pushfstring(L, "resource '%s' (%s@%s): home host %s unreachable", h->name, h->id,
				h->home, h->home);
	else if (detail != NULL)
		lua_pushfstring(L, "resource '%s' (%s@%s): %s", h->name, h->id, h->home,
				/* detail is bounded (RES_OP_MSG_MAX) and may lack a NUL */
				lua_pushlstring(L, detail, detail_len));
	else
		lua_pushfstring(L, "resource '%s' (%s@%s): %s", h->name, h->id, h->home,
				res_strerror(code));
	if (detail != NULL && code != RES_ERR_UNREACHABLE)
		lua_remove(L, -2); /* the detail string pushed for formatting */
	lua_pushstring(L, res_errname(code));
	return 3;
}

struct keys_ud {
	lua_State *L;
	lua_Integer i;
};

static int push_key(void *ud, const void *k, size_t len)
{
	struct keys_ud *u = ud;

	/* The table is at the top. */
	lua_pushlstring(u->L, k, len);
	lua_rawseti(u->L, -2, ++u->i);
	return 0;
}

/* The ops of handles, in the order of op_names: the index travels in a
 * park's continuation context. */
enum { O_READ, O_WRITE, O_APPEND, O_SIZE, O_GET, O_PUT, O_DELETE, O_KEYS, O_PRINT, O_N };
static const char *const op_names[O_N] = {
	"read", "write", "append", "size", "get", "put", "delete", "keys", "print",
};

/*
 * A call's stack, from `base` (above the method's own arguments):
 *   base      the encoded arguments (string)
 *   base + 1  the reply box (bytes of a local or synchronous reply); nil
 *             while parked
 *   base + 2  the token of the park under way (integer), or nil
 * A park's continuation finds them there, under the three values the park
 * leaves (data, code, text), and the handle at index 1. Context: op,
 * redirects followed so far, base.
 */
#define CTX(op, hop, base) ((lua_KContext)(((lua_KContext)(base) << 8) | ((hop) << 4) | (op)))
#define CTX_OP(c) ((int)((c) & 0xf))
#define CTX_HOP(c) ((int)(((c) >> 4) & 0xf))
#define CTX_BASE(c) ((int)((c) >> 8))

/* Pushes the results of a successful op from its ok reply; returns their
 * count. Copies what it needs: rep may point into the box. */
static int finish_ok(lua_State *L, struct res_bind *h, int op, const struct res_msg *rep)
{
	uint64_t v;

	switch (op) {
	case O_READ:
	case O_GET:
		if (rep->n >= 1)
			lua_pushlstring(L, rep->f[0].p, rep->f[0].len);
		else if (op == O_READ)
			lua_pushliteral(L, "");
		else
			lua_pushnil(L); /* an absent key is not a failure: no message */
		return 1;
	case O_SIZE:
		if (rep->n < 1 || res_u64_get(&rep->f[0], &v) != 0 || v > (uint64_t)LUA_MAXINTEGER)
			return push_fail(L, h, RES_ERR_MALFORMED, NULL, 0);
		lua_pushinteger(L, (lua_Integer)v);
		return 1;
	case O_KEYS: {
		struct keys_ud u = { L, 0 };
		int rc;

		if (rep->n < 1)
			return push_fail(L, h, RES_ERR_MALFORMED, NULL, 0);
		lua_newtable(L);
		rc = res_keys_each(&rep->f[0], push_key, &u);
		if (rc != 0) {
			lua_pop(L, 1);
			return push_fail(L, h, rc, NULL, 0);
		}
		return 1;
	}
	default:
		lua_pushboolean(L, 1);
		return 1;
	}
}

/* Frees the reply now rather than at the next collection. */
static void release(lua_State *L, int base)
{
	struct box *bx = luaL_testudata(L, base + 1, REPLY_TNAME);

	if (bx != NULL) {
		free(bx->p);
		bx->p = NULL;
		bx->len = 0;
	}
}

/* The reply box at base + 1, made anew if a park left nil there. */
static struct box *box_at(lua_State *L, int base)
{
	struct box *bx = luaL_testudata(L, base + 1, REPLY_TNAME);

	if (bx == NULL) {
		bx = lua_newuserdatauv(L, sizeof *bx, 0);
		bx->p = NULL;
		bx->len = 0;
		luaL_setmetatable(L, REPLY_TNAME);
		lua_replace(L, base + 1);
	}
	return bx;
}

static int step(lua_State *L, int op, int hop, int base);

/*
 * Handles the reply bytes p[len] of one attempt (NULL: none came, rc
 * says why): pushes the op's results, or follows a forward (which may
 * park again). Returns the number of results.
 */
static int handle_reply(lua_State *L, int op, int hop, int base, const void *p, size_t len, int rc)
{
	struct res_bind *h = lua_touserdata(L, 1);
	struct res_msg rep;
	int n;

	memset(&rep, 0, sizeof rep);
	if (p == NULL) {
		n = push_fail(L, h, rc < 0 ? rc : RES_ERR_TRANSPORT, NULL, 0);
		release(L, base);
		return n;
	}
	if (res_msg_decode(p, len, &rep) != 0 ||
	    (rep.type != RES_MSG_OK && rep.type != RES_MSG_ERR)) {
		n = push_fail(L, h, RES_ERR_TRANSPORT, NULL, 0);
		release(L, base);
		return n;
	}
	if (rep.type == RES_MSG_OK) {
		n = finish_ok(L, h, op, &rep);
		release(L, base);
		return n;
	}
	rc = res_msg_code(&rep);
	if (rc == RES_ERR_MOVED && rep.n >= 3 && hop < RES_LUA_MAX_REDIRECTS &&
	    rep.f[2].len < RES_HOST_MAX) {
		char home[RES_HOST_MAX];

		memcpy(home, rep.f[2].p, rep.f[2].len);
		home[rep.f[2].len] = '\0';
		if (res_id_valid(home) && strcmp(home, h->home) != 0) {
			/* The handle learns the new home, so later calls go there
			 * directly. */
			memcpy(h->home, home, sizeof home);
			return step(L, op, hop + 1, base);
		}
	}
	n = rep.n >= 2 ? push_fail(L, h, rc, rep.f[1].p, rep.f[1].len) : push_fail(L, h, rc, NULL, 0);
	release(L, base);
	return n;
}

int res_lua_resumed(lua_State *L, int status, lua_KContext ctx)
{
	struct res_lua_env *env = get_env(L);
	int op = CTX_OP(ctx), hop = CTX_HOP(ctx), base = CTX_BASE(ctx);
	uint64_t token = (uint64_t)lua_tointeger(L, base + 2);
	int code = (int)lua_tointeger(L, -2);
	size_t len = 0;
	const char *data = lua_tolstring(L, -3, &len);

	(void)status;
	luaL_checkstack(L, 8, "resource call");
	/* Only the agent's main coroutine gets here: a park returned. */
	res_lua_set_main(L, L);
	if (env->park.done != NULL)
		env->park.done(env->park.ud, env->agent, token, code);
	lua_pushnil(L);
	lua_replace(L, base + 2);
	if (code != 0 || data == NULL)
		return handle_reply(L, op, hop, base, NULL, 0,
				    code == env->park.timeout_code || code == 0 ? RES_ERR_UNREACHABLE
										: RES_ERR_TRANSPORT);
	/* data stays on the stack while the reply is handled. */
	return handle_reply(L, op, hop, base, data, len, 0);
}

void res_lua_set_main(lua_State *L, lua_State *co)
{
	if (co != L && !lua_checkstack(co, 1))
		return; /* unnamed: the next park that returns names it */
	lua_pushthread(co);
	if (co != L)
		lua_xmove(co, L, 1);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &main_key);
}

/* Whether L may park: it is the agent's main coroutine, or that is not
 * known (never named, or finished). */
static int may_park(lua_State *L)
{
	lua_State *m;
	lua_Debug ar;
	int yes;

	lua_rawgetp(L, LUA_REGISTRYINDEX, &main_key);
	m = lua_tothread(L, -1);
	yes = m == NULL || m == L || (lua_status(m) == LUA_OK && !lua_getstack(m, 0, &ar));
	lua_pop(L, 1);
	return yes;
}

/* One attempt of op at the handle's current home. */
static int step(lua_State *L, int op, int hop, int base)
{
	struct res_lua_env *env = get_env(L);
	struct res_bind *h = lua_touserdata(L, 1);
	struct box *bx = box_at(L, base);
	size_t need;
	const char *a = lua_tolstring(L, base, &need);
	int rc;

	if (!h->bound)
		return handle_reply(L, op, hop, base, NULL, 0, RES_ERR_UNBOUND);
	free(bx->p);
	bx->p = NULL;
	bx->len = 0;
	if (env->reg != NULL && env->host != NULL && strcmp(h->home, env->host) == 0) {
		rc = res_exec_op(env->reg, h->id, op_names[op], a, need, 0, &bx->p, &bx->len);
	} else if (env->park.yield != NULL && env->park.start != NULL && env->agent != NULL &&
		   lua_isyieldable(L) && may_park(L)) {
		/* The agent waits parked, its worker free for others. */
		uint64_t token = env->park.token(L);
		double timeout = 0;

		rc = env->park.start(env->park.ud, env->agent, h->home, h->id, op_names[op], a, need,
				     token, &timeout);
		if (rc != 0)
			return handle_reply(L, op, hop, base, NULL, 0, rc);
		lua_pushinteger(L, (lua_Integer)token);
		lua_replace(L, base + 2);
		/* Nothing but plain values stays on the stack of a parked
		 * agent, should the runtime ever persist one. */
		lua_pushnil(L);
		lua_replace(L, base + 1);
		return env->park.yield(L, token, timeout, CTX(op, hop, base), res_lua_resumed);
	} else if (env->transport.call != NULL) {
		/* Where the agent cannot park (a C call boundary, a nested
		 * coroutine), or with no park: the bounded synchronous wait. */
		rc = env->transport.call(env->transport.ud, h->home, h->id, op_names[op], a, need,
					 &bx->p, &bx->len);
	} else {
		rc = RES_ERR_UNREACHABLE;
	}
	return handle_reply(L, op, hop, base, bx->p, bx->len, rc);
}

/* Runs op with args for the handle at index 1 and returns its results
 * (nil, message, code on an expected failure). May park the agent. */
static int run(lua_State *L, int op, const struct res_msg *args)
{
	size_t need = res_msg_size(args);
	luaL_Buffer lb;
	struct box *bx;
	int base;

	if (need == 0)
		return push_fail(L, lua_touserdata(L, 1), RES_ERR_LIMIT, NULL, 0);
	/* Room for the call's slots, the park's three values and the results. */
	luaL_checkstack(L, 12, "resource call");
	res_msg_write(args, luaL_buffinitsize(L, &lb, need), need);
	luaL_pushresultsize(&lb, need);
	base = lua_gettop(L);
	bx = lua_newuserdatauv(L, sizeof *bx, 0);
	bx->p = NULL;
	bx->len = 0;
	luaL_setmetatable(L, REPLY_TNAME);
	lua_pushnil(L);
	return step(L, op, 0, base);
}

static void need_kind(lua_State *L, struct res_bind *h, unsigned kinds, const char *m)
{
	if (!((kinds >> h->kind) & 1u))
		luaL_error(L, "resource '%s' is a %s: it has no method %s", h->name,
			   res_kind_name((enum res_kind)h->kind), m);
}

#define KB(k) (1u << (k))

static int m_read(lua_State *L)
{
	struct res_bind *h = check(L);
	struct res_msg args = {.type = RES_MSG_ARGS};
	uint8_t n[8], off[8];

	need_kind(L, h, KB(RES_KIND_FILE) | KB(RES_KIND_PRINTER) | KB(RES_KIND_SENSOR), "read");
	if (!lua_isnoneornil(L, 2) && h->kind != RES_KIND_SENSOR) {
		lua_Integer v = luaL_checkinteger(L, 2);

		luaL_argcheck(L, v >= 0, 2, "negative length");
		res_u64_put(n, (uint64_t)v);
		args.f[args.n++] = (struct res_field){n, 8};
		if (!lua_isnoneornil(L, 3)) {
			lua_Integer o = luaL_checkinteger(L, 3);

			luaL_argcheck(L, o >= 0, 3, "negative offset");
			res_u64_put(off, (uint64_t)o);
			args.f[args.n++] = (struct res_field){off, 8};
		}
	}
	return run(L, O_READ, &args);
}

/* An op taking one string argument. */
static int one_string(lua_State *L, unsigned kinds, int op)
{
	struct res_bind *h = check(L);
	struct res_msg args = {.type = RES_MSG_ARGS, .n = 1};
	size_t len;
	const char *s;

	need_kind(L, h, kinds, op_names[op]);
	s = luaL_checklstring(L, 2, &len);
	args.f[0] = (struct res_field){s, len};
	return run(L, op, &args);
}

static int m_write(lua_State *L)
{
	return one_string(L, KB(RES_KIND_FILE), O_WRITE);
}

static int m_append(lua_State *L)
{
	return one_string(L, KB(RES_KIND_FILE), O_APPEND);
}

static int m_print(lua_State *L)
{
	return one_string(L, KB(RES_KIND_PRINTER), O_PRINT);
}

static int m_size(lua_State *L)
{
	struct res_bind *h = check(L);
	struct res_msg args = {.type = RES_MSG_ARGS};

	need_kind(L, h, KB(RES_KIND_FILE) | KB(RES_KIND_KV) | KB(RES_KIND_PRINTER), "size");
	return run(L, O_SIZE, &args);
}

static int m_get(lua_State *L)
{
	struct res_bind *h = check(L);
	struct res_msg args = {.type = RES_MSG_ARGS, .n = 1};
	size_t klen;
	const char *k;

	need_kind(L, h, KB(RES_KIND_KV), "get");
	k = luaL_checklstring(L, 2, &klen);
	args.f[0] = (struct res_field){k, klen};
	return run(L, O_GET, &args);
}

static int m_put(lua_State *L)
{
	struct res_bind *h = check(L);
	struct res_msg args = {.type = RES_MSG_ARGS, .n = 2};
	size_t klen, vlen;
	const char *k, *v;

	need_kind(L, h, KB(RES_KIND_KV), "put");
	k = luaL_checklstring(L, 2, &klen);
	v = luaL_checklstring(L, 3, &vlen);
	args.f[0] = (struct res_field){k, klen};
	args.f[1] = (struct res_field){v, vlen};
	return run(L, O_PUT, &args);
}

static int m_delete(lua_State *L)
{
	return one_string(L, KB(RES_KIND_KV), O_DELETE);
}

static int m_keys(lua_State *L)
{
	struct res_bind *h = check(L);
	struct res_msg args = {.type = RES_MSG_ARGS};

	need_kind(L, h, KB(RES_KIND_KV), "keys");
	return run(L, O_KEYS, &args);
}

static const char *mode_of(lua_State *L, const struct res_bind *h)
{
	struct res_lua_env *env = get_env(L);

	if (!h->bound)
		return "unbound";
	return env->host != NULL && strcmp(env->host, h->home) == 0 ? "local" : "remote";
}

static int m_info(lua_State *L)
{
	struct res_bind *h = check(L);

	lua_createtable(L, 0, 8);
	lua_pushstring(L, h->name);
	lua_setfield(L, -2, "name");
	lua_pushstring(L, res_binding_name((enum res_binding)h->binding));
	lua_setfield(L, -2, "binding");
	lua_pushstring(L, res_kind_name((enum res_kind)h->kind));
	lua_setfield(L, -2, "kind");
	lua_pushstring(L, res_attach_name((enum res_attach)h->attach));
	lua_setfield(L, -2, "attachment");
	lua_pushstring(L, h->id);
	lua_setfield(L, -2, "id");
	lua_pushstring(L, h->home);
	lua_setfield(L, -2, "home");
	lua_pushstring(L, mode_of(L, h));
	lua_setfield(L, -2, "mode");
	lua_pushstring(L, res_action_name((enum res_action)h->action));
	lua_setfield(L, -2, "action");
	return 1;
}

/* Methods by name, with the kinds that have them. */
static const struct {
	const char *name;
	lua_CFunction fn;
	unsigned kinds;
} methods[] = {
	{"read", m_read, KB(RES_KIND_FILE) | KB(RES_KIND_PRINTER) | KB(RES_KIND_SENSOR)},
	{"write", m_write, KB(RES_KIND_FILE)},
	{"append", m_append, KB(RES_KIND_FILE)},
	{"size", m_size, KB(RES_KIND_FILE) | KB(RES_KIND_KV) | KB(RES_KIND_PRINTER)},
	{"get", m_get, KB(RES_KIND_KV)},
	{"put", m_put, KB(RES_KIND_KV)},
	{"delete", m_delete, KB(RES_KIND_KV)},
	{"keys", m_keys, KB(RES_KIND_KV)},
	{"print", m_print, KB(RES_KIND_PRINTER)},
	{"info", m_info, 0xfu},
};

/* h.name: the method if the handle's kind has it, else nil (so that a
 * call of a missing method raises "attempt to call a nil value"). */
static int mm_index(lua_State *L)
{
	struct res_bind *h = check(L);
	const char *k = lua_tostring(L, 2);

	if (k != NULL)
		for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
			if (strcmp(methods[i].name, k) == 0 && ((methods[i].kinds >> h->kind) & 1u)) {
				lua_pushcfunction(L, methods[i].fn);
				return 1;
			}
	lua_pushnil(L);
	return 1;
}

static int mm_tostring(lua_State *L)
{
	struct res_bind *h = check(L);

	lua_pushfstring(L, "resource %s '%s' (%s@%s)", res_kind_name((enum res_kind)h->kind), h->name,
			h->id, h->home);
	return 1;
}

static const luaL_Reg all_functions[] = {
	{"read", m_read},     {"write", m_write},   {"append", m_append},
	{"size", m_size},     {"get", m_get},       {"put", m_put},
	{"delete", m_delete}, {"keys", m_keys},     {"print", m_print},
	{"info", m_info},     {"__index", mm_index}, {"__tostring", mm_tostring},
	{NULL, NULL},
};

const luaL_Reg *res_lua_functions(void)
{
	return all_functions;
}

static int open_protected(lua_State *L)
{
	void *env = lua_touserdata(L, 1);

	luaL_newmetatable(L, RES_LUA_TNAME);
	lua_pushcfunction(L, mm_index);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, mm_tostring);
	lua_setfield(L, -2, "__tostring");
	/* Hidden from getmetatable, so agents cannot swap methods. */
	lua_pushliteral(L, RES_LUA_TNAME);
	lua_setfield(L, -2, "__metatable");
	luaL_newmetatable(L, REPLY_TNAME);
	lua_pushcfunction(L, box_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushlightuserdata(L, env);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &env_key);
	return 0;
}

int res_lua_open(lua_State *L, struct res_lua_env *env)
{
	int rc;

	if (L == NULL || env == NULL)
		return RES_ERR_ARG;
	lua_pushcfunction(L, open_protected);
	lua_pushlightuserdata(L, env);
	rc = lua_pcall(L, 1, 0, 0);
	if (rc != LUA_OK) {
		lua_pop(L, 1);
		return RES_ERR_NOMEM;
	}
	return 0;
}

/* Checks a binding from outside (daemon or persisted state). */
static int bind_ok(const struct res_bind *b)
{
	return memchr(b->name, '\0', sizeof b->name) != NULL && b->binding < RES_NBINDINGS &&
	       b->kind < RES_NKINDS && b->attach < RES_NATTACH && b->action < RES_NACTIONS &&
	       (!b->bound || (res_id_valid(b->id) && res_id_valid(b->home)));
}

void res_lua_push_handle(lua_State *L, const struct res_bind *b)
{
	struct res_bind *h;

	if (b == NULL || !bind_ok(b))
		luaL_error(L, "invalid resource binding");
	h = lua_newuserdatauv(L, sizeof *h, 0);
	memcpy(h, b, sizeof *h);
	if (!h->bound) {
		h->id[0] = '\0';
		h->home[0] = '\0';
	}
	luaL_setmetatable(L, RES_LUA_TNAME);
}

int res_lua_persist(lua_State *L)
{
	struct res_bind *h = luaL_checkudata(L, -1, RES_LUA_TNAME);

	lua_createtable(L, 0, 9);
	lua_pushinteger(L, 1);
	lua_setfield(L, -2, "v");
	lua_pushstring(L, h->name);
	lua_setfield(L, -2, "name");
	lua_pushstring(L, res_binding_name((enum res_binding)h->binding));
	lua_setfield(L, -2, "binding");
	lua_pushstring(L, res_kind_name((enum res_kind)h->kind));
	lua_setfield(L, -2, "kind");
	lua_pushstring(L, res_attach_name((enum res_attach)h->attach));
	lua_setfield(L, -2, "attachment");
	lua_pushstring(L, res_action_name((enum res_action)h->action));
	lua_setfield(L, -2, "action");
	lua_pushboolean(L, h->bound);
	lua_setfield(L, -2, "bound");
	lua_pushstring(L, h->id);
	lua_setfield(L, -2, "id");
	lua_pushstring(L, h->home);
	lua_setfield(L, -2, "home");
	return 1;
}

/* Copies string field k of the table at t into dst[len]; raises when it
 * is missing, not a string, or too long. */
static void get_str(lua_State *L, int t, const char *k, char *dst, size_t len)
{
	size_t n;
	const char *s;

	if (lua_getfield(L, t, k) != LUA_TSTRING)
		luaL_error(L, "persisted resource handle: field '%s' is not a string", k);
	s = lua_tolstring(L, -1, &n);
	if (n >= len || memchr(s, '\0', n) != NULL)
		luaL_error(L, "persisted resource handle: field '%s' too long", k);
	memcpy(dst, s, n + 1);
	lua_pop(L, 1);
}

int res_lua_restore(lua_State *L)
{
	struct res_lua_env *env = get_env(L);
	struct res_bind b;
	char word[16];
	int t = lua_gettop(L);
	enum res_binding binding;
	enum res_kind kind;
	enum res_attach attach;
	enum res_action action = RES_ACT_NONE;

	luaL_checktype(L, t, LUA_TTABLE);
	memset(&b, 0, sizeof b);
	if (lua_getfield(L, t, "v") != LUA_TNUMBER || lua_tointeger(L, -1) != 1)
		luaL_error(L, "persisted resource handle: unknown version");
	lua_pop(L, 1);
	get_str(L, t, "name", b.name, sizeof b.name);
	get_str(L, t, "binding", word, sizeof word);
	if (res_binding_parse(word, &binding) != 0)
		luaL_error(L, "persisted resource handle: bad binding");
	get_str(L, t, "kind", word, sizeof word);
	if (res_kind_parse(word, &kind) != 0)
		luaL_error(L, "persisted resource handle: bad kind");
	get_str(L, t, "attachment", word, sizeof word);
	if (res_attach_parse(word, &attach) != 0)
		luaL_error(L, "persisted resource handle: bad attachment");
	get_str(L, t, "action", word, sizeof word);
	if (strcmp(word, "none") != 0 && res_action_parse(word, &action) != 0)
		luaL_error(L, "persisted resource handle: bad action");
	if (lua_getfield(L, t, "bound") != LUA_TBOOLEAN)
		luaL_error(L, "persisted resource handle: field 'bound' is not a boolean");
	b.bound = (uint8_t)lua_toboolean(L, -1);
	lua_pop(L, 1);
	get_str(L, t, "id", b.id, sizeof b.id);
	get_str(L, t, "home", b.home, sizeof b.home);
	b.binding = (uint8_t)binding;
	b.kind = (uint8_t)kind;
	b.attach = (uint8_t)attach;
	b.action = (uint8_t)action;
	if (b.bound && (!res_id_valid(b.id) || !res_id_valid(b.home)))
		luaL_error(L, "persisted resource handle: bad id or home");
	/* The daemon's decision for this binding, if it made one. */
	for (size_t i = 0; env->rebinds != NULL && i < env->nrebinds; i++) {
		const struct res_bind *r = &env->rebinds[i];

		if (strncmp(r->name, b.name, sizeof b.name) != 0)
			continue;
		b.action = r->action < RES_NACTIONS ? r->action : RES_ACT_NONE;
		if (!r->bound) {
			b.bound = 0;
		} else if (r->id[0] != '\0') {
			b.bound = 1;
			/* No action changes the kind (RB picks the same kind), so
			 * the persisted one stands; the attachment is the new
			 * resource's. */
			if (r->attach < RES_NATTACH)
				b.attach = r->attach;
			resi_copy(b.id, sizeof b.id, r->id);
			resi_copy(b.home, sizeof b.home, r->home);
		}
		break;
	}
	res_lua_push_handle(L, &b);
	return 1;
}
