/*
 * agd_lua.c: the one file of Lua bindings (see agd_vm.h, docs/agent-api.md).
 *
 * Each agent owns a lua_State made through a counting allocator (its memory
 * quota) and runs in one coroutine of it (vm->co), resumed by a worker for
 * one slice at a time. A count hook every `slice` instructions yields that
 * coroutine back to the scheduler (preemption) and enforces the instruction
 * quota and kills.
 *
 * Invariants:
 * - The only way agent code leaves a slice is a yield of vm->co (from a host
 *   call or the hook), its return, or an error escaping it; pcall inside the
 *   agent cannot stop a kill: the hook yields the main coroutine (a yield is
 *   not an error, pcall does not see it), and where it cannot yield (inside
 *   a nested coroutine or a C boundary) it raises again on every instruction
 *   until the error reaches a point where it can.
 * - Blocking host calls (sleep, recv) work only in the agent's main
 *   coroutine; from a nested coroutine they raise a clear error.
 * - Preemption reaches nested coroutines too: the sandbox's resume and wrap
 *   pass a hook's stop up to the main coroutine (co_go).
 * - Host functions never hold malloc'd memory or a lock across a call that
 *   can raise.
 * - The sandbox: base library without dofile, loadfile and print (print is
 *   agent.log); `load` takes text only; string without dump; table, math,
 *   utf8, coroutine; no io, os, debug, package or require.
 */
#include "agd_vm.h"

#include "agd_log.h"
#include "agd_proc.h"
#include "agd_rt.h"
#include "agd_res.h" /* [resint] resource glue hooks */
#include "agd_mobility.h" /* [mig2] agd_mobility_send */
#include "agd_moblua.h" /* [mig2] agent.migrate/clone */
#include "agd_park.h"
#include "agd_call.h"
#include "mig_lua.h"
#include "mig_segment.h"
#include "mig_state.h"
#include "res_lua.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The strong-mobility engine (mig_env_open, mig_state_*, mig_data_*); with
 * 0, agents run without persistence and messages are limited to strings. */
#ifndef AGD_HAVE_ENGINE
#define AGD_HAVE_ENGINE 1
#endif
/* The resources library's engine hooks (res_lua_mobility): with 0,
 * resource handles cannot be persisted, so an agent holding one cannot be
 * passivated or moved. */
#ifndef AGD_HAVE_RES_MOBILITY
#define AGD_HAVE_RES_MOBILITY 1 /* [resint] res_lua_mobility is in libres */
#endif

enum yield_why { Y_NONE, Y_PREEMPT, Y_SLEEP, Y_RECV, Y_KILL, Y_MIGRATE /* [mig2] */, Y_PARK };

struct agd_vm {
	lua_State *L;            /* the agent's state; owned */
	lua_State *co;           /* the coroutine it runs in (anchored by root_ref) */
	int root_ref;            /* registry ref of the root table {co=, phase=} */
	int phase;               /* 0: entry chunk, 1: entry function */
	int started;             /* resumed at least once (by this vm) */
	int entry_nargs;         /* arguments waiting on a fresh entry coroutine */
	struct agd_rt *rt;       /* borrowed */
	struct agd_agent *a;     /* borrowed */
	size_t mem;              /* bytes allocated */
	size_t mem_limit;        /* quota */
	uint32_t slice;          /* instructions per slice (hook period) */
	uint64_t instr;          /* instructions run, counted per hook call */
	uint64_t instr_limit;    /* quota, 0 = none */
	enum yield_why why;      /* why co yielded last */
	double timeout;          /* for sleep and recv */
	struct res_lua_env renv; /* what resource handles in L use */
	int res_locked;          /* holds the registry lock for this slice */
	int uses_res;            /* has made a resource handle: slices take the lock */
	struct agd_proc *proc;   /* process isolation: the vm is there, L is NULL */
	atomic_int kill;         /* set by agd_vm_kill or a quota */
	char kill_reason[128];   /* written before kill is set */
	uint64_t park_seq;       /* last park token given (random start: see agd_park_token) */
	uint64_t park_token;     /* the token of the park co yielded for */
	int park_nargs;          /* values staged on co by agd_vm_unpark, for the next resume */
	int in_call;             /* an exported method runs (agd_vm_call): nothing may block */
	int nested_preempt;      /* a nested coroutine's yield is the hook's, passed upwards */
};

void agd_buf_free(struct mig_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

int agd_vm_can_persist(void)
{
	return AGD_HAVE_ENGINE;
}

/* ------------------------------------------------------------ allocation */

static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct agd_vm *vm = ud;
	size_t old = ptr != NULL ? osize : 0;
	void *p;

	if (nsize == 0) {
		free(ptr);
		vm->mem -= old;
		return NULL;
	}
	if (nsize > old && vm->mem + (nsize - old) > vm->mem_limit) {
		/* Refuse, and end the agent at its next hook: the memory error
		 * Lua raises now could be caught by the agent's pcall. */
		if (!atomic_load(&vm->kill)) {
			snprintf(vm->kill_reason, sizeof vm->kill_reason,
				 "memory quota exceeded (%zu bytes)", vm->mem_limit);
			atomic_store(&vm->kill, 1);
		}
		return NULL;
	}
	p = realloc(ptr, nsize);
	if (p == NULL)
		return NULL;
	vm->mem = vm->mem - old + nsize;
	return p;
}

static struct agd_vm *vm_of(lua_State *L)
{
	void *ud = NULL;

	lua_getallocf(L, &ud);
	return ud;
}

/* ------------------------------------------------------------------ hook */

/* Counts one slice's instructions against the quota, asking for the kill
 * when it is spent (both hooks, the agent's and a method's). */
static void count_slice(struct agd_vm *vm)
{
	vm->instr += vm->slice;
	if (vm->instr_limit != 0 && vm->instr > vm->instr_limit && !atomic_load(&vm->kill)) {
		snprintf(vm->kill_reason, sizeof vm->kill_reason,
			 "instruction quota exceeded (%llu instructions)",
			 (unsigned long long)vm->instr_limit);
		atomic_store(&vm->kill, 1);
	}
}

static void vm_hook(lua_State *L, lua_Debug *ar)
{
	struct agd_vm *vm = vm_of(L);

	(void)ar;
	count_slice(vm);
	if (atomic_load(&vm->kill)) {
		if (L == vm->co && lua_isyieldable(L)) {
			vm->why = Y_KILL;
			lua_yield(L, 0);
			return;
		}
		/* Cannot yield here: raise, and again at every instruction until
		 * the error reaches the main coroutine's body. */
		lua_sethook(L, vm_hook, LUA_MASKCOUNT, 1);
		luaL_error(L, "agent killed: %s", vm->kill_reason);
		return;
	}
	if (L == vm->co && lua_isyieldable(L)) {
		vm->why = Y_PREEMPT;
		lua_yield(L, 0);
	} else if (L != vm->co && !vm->in_call && lua_isyieldable(L)) {
		/* A nested coroutine: its resumer (co_go) passes the stop up
		 * to the main coroutine instead of returning it to the agent. */
		vm->nested_preempt = 1;
		lua_yield(L, 0);
	}
}

/* ------------------------------------------------- the coroutine library */

/* coroutine.resume and coroutine.wrap as the sandbox has them: Lua's
 * behaviour, plus preemption inside nested coroutines. The count hook
 * stops a nested coroutine with a yield of its own (nested_preempt); its
 * resumer, instead of handing that yield to the agent's code, yields its
 * own coroutine with a continuation, and so on up to the agent's main
 * coroutine, whose yield ends the slice. When the main coroutine is resumed
 * each continuation resumes the coroutine below it again, which goes on
 * from the hook as if nothing had happened. Those frames are C frames with
 * a continuation the engine knows by name ("coroutine.resume:k"), so an
 * agent stopped deep inside coroutines persists and moves like any other. */

static int co_go(lua_State *L, lua_State *co, int narg, lua_KContext wrap);

static int co_again(lua_State *L, int status, lua_KContext wrap)
{
	lua_State *co = lua_tothread(L, wrap ? lua_upvalueindex(1) : 1);

	(void)status;
	if (co == NULL)
		return luaL_error(L, "coroutine.resume: lost its coroutine");
	/* Nothing is passed to a coroutine resumed after a preemption. */
	lua_settop(L, wrap ? 0 : 1);
	return co_go(L, co, 0, wrap);
}

/* What a resume that ended (st, nres values on co) returns: for resume,
 * true and the values or false and the error; for wrap, the values, or
 * the error raised again (with the caller's position in front of a string
 * one, as Lua's wrap does). */
static int co_done(lua_State *L, lua_State *co, int st, int nres, lua_KContext wrap)
{
	if (st == LUA_OK || st == LUA_YIELD) {
		if (lua_checkstack(L, nres + 1)) {
			if (!wrap)
				lua_pushboolean(L, 1);
			lua_xmove(co, L, nres);
			return nres + (wrap ? 0 : 1);
		}
		lua_pop(co, nres);
		lua_pushliteral(L, "too many results to resume");
	} else
		lua_xmove(co, L, 1);
	if (!wrap) {
		lua_pushboolean(L, 0);
		lua_insert(L, -2);
		return 2;
	}
	st = lua_status(co);
	if (st != LUA_OK && st != LUA_YIELD) {
		/* Dead by an error: close its pending variables (whose own
		 * errors replace the first). */
		st = lua_closethread(co, L);
		lua_xmove(co, L, 1);
	}
	if (st != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
		luaL_where(L, 1);
		lua_insert(L, -2);
		lua_concat(L, 2);
	}
	return lua_error(L);
}

static int co_go(lua_State *L, lua_State *co, int narg, lua_KContext wrap)
{
	struct agd_vm *vm = vm_of(L);
	int st, nres;

	for (;;) {
		/* Coroutines inherit the hook from their creator, but one
		 * restored from a persisted state has none. */
		if (!vm->in_call && co != L && lua_gethook(co) == NULL)
			lua_sethook(co, vm_hook, LUA_MASKCOUNT, (int)vm->slice);
		vm->nested_preempt = 0;
		st = lua_resume(co, L, narg, &nres);
		if (st != LUA_YIELD || !vm->nested_preempt)
			break;
		vm->nested_preempt = 0;
		lua_pop(co, nres);
		narg = 0;
		if (!vm->in_call && lua_isyieldable(L)) {
			if (L == vm->co)
				vm->why = Y_PREEMPT;
			else
				vm->nested_preempt = 1;
			return lua_yieldk(L, 0, wrap, co_again);
		}
		/* A C call without continuation is in between: the stop
		 * cannot be passed up, so the coroutine runs on. */
	}
	return co_done(L, co, st, nres, wrap);
}

static int l_co_resume(lua_State *L)
{
	lua_State *co = lua_tothread(L, 1);
	int narg = lua_gettop(L) - 1;

	luaL_argexpected(L, co != NULL, 1, "coroutine");
	if (!lua_checkstack(co, narg)) {
		lua_pushboolean(L, 0);
		lua_pushliteral(L, "too many arguments to resume");
		return 2;
	}
	lua_xmove(L, co, narg);
	return co_go(L, co, narg, 0);
}

/* The function coroutine.wrap returns; upvalue 1 is the coroutine. */
static int l_co_wrapped(lua_State *L)
{
	lua_State *co = lua_tothread(L, lua_upvalueindex(1));
	int narg = lua_gettop(L);

	if (!lua_checkstack(co, narg))
		return luaL_error(L, "too many arguments to resume");
	lua_xmove(L, co, narg);
	return co_go(L, co, narg, 1);
}

static int l_co_wrap(lua_State *L)
{
	lua_State *co;

	luaL_checktype(L, 1, LUA_TFUNCTION);
	co = lua_newthread(L);
	lua_pushvalue(L, 1);
	lua_xmove(L, co, 1);
	lua_pushcclosure(L, l_co_wrapped, 1);
	return 1;
}

/* ----------------------------------------------------------- the agent API */

static struct agd_vm *checkvm(lua_State *L)
{
	struct agd_vm *vm = vm_of(L);

	if (vm == NULL || vm->a == NULL)
		luaL_error(L, "agent API used outside an agent");
	return vm;
}

static int l_id(lua_State *L)
{
	lua_pushstring(L, agd_agent_id(checkvm(L)->a));
	return 1;
}

static int l_host(lua_State *L)
{
	lua_pushstring(L, agd_rt_config(checkvm(L)->rt)->host);
	return 1;
}

static int l_home(lua_State *L)
{
	lua_pushstring(L, agd_agent_home(checkvm(L)->a));
	return 1;
}

static int l_hosts(lua_State *L)
{
	struct agd_vm *vm = checkvm(L);
	size_t n = 0;
	const char *const *h;
	/* [bal] With a directory, the live hosts of its registry: copied
	 * here first, as nothing may be held across a call that can raise. */
	char (*live)[AGD_WIRE_NAME_MAX + 1] = lua_newuserdatauv(L, 64 * sizeof *live, 0);
	size_t nlive = agd_mobility_hosts(vm->rt, live, 64);

	if (nlive > 0) {
		lua_createtable(L, (int)nlive, 0);
		for (size_t i = 0; i < nlive; i++) {
			lua_pushstring(L, live[i]);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		return 1;
	}
	h = agd_rt_hosts(vm->rt, &n);
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		lua_pushstring(L, h[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

/* agent.log(...): the arguments as tostring() would show them, separated by
 * spaces, cut at AGD_LOG_TEXT_MAX bytes. */
static int l_log(lua_State *L)
{
	struct agd_vm *vm = checkvm(L);
	int n = lua_gettop(L);
	luaL_Buffer b;
	size_t len;
	const char *s;

	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, ' ');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	s = lua_tolstring(L, -1, &len);
	agd_agent_log(vm->rt, vm->a, s, len > AGD_LOG_TEXT_MAX ? AGD_LOG_TEXT_MAX : len);
	return 0;
}

/* print is agent.log under another name; a distinct C function, since
 * the engine names each permanent value once. */
static int l_print(lua_State *L)
{
	return l_log(L);
}

static void check_blockable(lua_State *L, struct agd_vm *vm, const char *what)
{
	if (vm->in_call)
		luaL_error(L, "agent.%s: an exported method cannot block (it runs to completion "
			   "between the agent's own slices)", what);
	if (L != vm->co || !lua_isyieldable(L))
		luaL_error(L, "agent.%s: cannot block inside a nested coroutine or a C call", what);
}

static int l_sleep(lua_State *L)
{
	struct agd_vm *vm = checkvm(L);
	double s = luaL_checknumber(L, 1);

	luaL_argcheck(L, s >= 0 && isfinite(s), 1, "expected a non-negative number of seconds");
	check_blockable(L, vm, "sleep");
	vm->why = Y_SLEEP;
	vm->timeout = s;
	return lua_yield(L, 0);
}

#if AGD_HAVE_ENGINE
static int push_msg(lua_State *L, const struct agd_msg *m)
{
	return mig_data_decode(L, m->data, m->len, NULL);
}
#else
/* Without the engine, a message is the bytes of a string. */
static int push_msg(lua_State *L, const struct agd_msg *m)
{
	lua_pushlstring(L, (const char *)m->data, m->len);
	return 0;
}
#endif

static int l_recv(lua_State *L)
{
	struct agd_vm *vm = checkvm(L);
	double t = luaL_optnumber(L, 1, -1);
	struct agd_msg *m;
	int rc;

	luaL_argcheck(L, !isnan(t), 1, "expected seconds or nil");
	m = agd_agent_mbox_take(vm->rt, vm->a);
	if (m != NULL) {
		rc = push_msg(L, m);
		free(m);
		if (rc != 0)
			return luaL_error(L, "agent.recv: undecodable message (engine code %d)", rc);
		return 1;
	}
	if (t == 0) {
		lua_pushnil(L);
		return 1;
	}
	check_blockable(L, vm, "recv");
	vm->why = Y_RECV;
	vm->timeout = t;
	/* The worker resumes co with the message (or nil), which becomes
	 * recv's result. */
	return lua_yield(L, 0);
}

static int l_send(lua_State *L)
{
	struct agd_vm *vm = checkvm(L);
	const char *to = luaL_checkstring(L, 1);
	int rc;

	luaL_checkany(L, 2);
#if AGD_HAVE_ENGINE
	{
		struct mig_buf buf = { 0 };
		struct mig_error e;

		rc = mig_data_encode(L, 2, &buf, &e);
		if (rc != 0) {
			agd_buf_free(&buf);
			lua_pushnil(L);
			lua_pushfstring(L, "message is not plain data: %s", e.msg);
			lua_pushstring(L, "arg");
			return 3;
		}
		rc = agd_mobility_send(vm->rt, agd_agent_id(vm->a), to, buf.data, buf.len, /* [mig2] elsewhere: agd_dir */
				       lua_type(L, 3) == LUA_TSTRING ? lua_tostring(L, 3) : NULL);
		agd_buf_free(&buf);
	}
#else
	{
		size_t len;
		const char *s;

		if (lua_type(L, 2) != LUA_TSTRING) {
			lua_pushnil(L);
			lua_pushstring(L, "this build carries string messages only");
			lua_pushstring(L, "arg");
			return 3;
		}
		s = lua_tolstring(L, 2, &len);
		rc = agd_rt_send(vm->rt, agd_agent_id(vm->a), to, s, len);
	}
#endif
	if (rc != 0) {
		lua_pushnil(L);
		lua_pushstring(L, agd_strerror(rc));
		lua_pushstring(L, agd_errname(rc));
		return 3;
	}
	lua_pushboolean(L, 1);
	return 1;
}


/* [mig2] agent.migrate/clone: the request goes in the root table, the
 * slice ends with AGD_VM_MIGRATE (agd_moblua.c). */
static int move_self(lua_State *L, int clone)
{
	struct agd_vm *vm = checkvm(L);
	int n;

	check_blockable(L, vm, clone ? "clone" : "migrate");
	n = agd_moblua_request(L, vm->rt, vm->root_ref, clone);
	if (n > 0)
		return n;
	vm->why = Y_MIGRATE;
	return lua_yield(L, 0);
}

/* ---------------------------------------------------------- parking
 * (agd_park.h). The runtime side is agd_rt.c (W_PARK); this side yields
 * the main coroutine with the host function's continuation and, before
 * the resume that answers, stages the continuation's three values. */

uint64_t agd_park_token(lua_State *L)
{
	struct agd_vm *vm = checkvm(L);

	/* A random start: the vm is new after every move or restart, and a
	 * late answer to a park of an earlier stay must not match a new one. */
	if (vm->park_seq == 0)
		randombytes_buf(&vm->park_seq, sizeof vm->park_seq);
	if (++vm->park_seq == 0)
		vm->park_seq = 1;
	agd_rt_park_expect(vm->rt, vm->a, vm->park_seq);
	return vm->park_seq;
}

int agd_park_yield(lua_State *L, uint64_t token, double timeout_s, lua_KContext ctx,
		   lua_KFunction k)
{
	struct agd_vm *vm = checkvm(L);

	if (vm->in_call)
		return luaL_error(L, "an exported method cannot wait for a remote answer (it "
				  "runs to completion between the agent's own slices)");
	if (L != vm->co || !lua_isyieldable(L))
		return luaL_error(L, "cannot wait for a remote answer inside a nested coroutine "
				  "or a C call");
	if (!(timeout_s > 0) || !isfinite(timeout_s))
		return luaL_error(L, "a park needs a positive, finite timeout");
	vm->why = Y_PARK;
	vm->park_token = token;
	vm->timeout = timeout_s;
	return lua_yieldk(L, 0, ctx, k);
}

struct unpark_args {
	lua_State *co;                        /* where the values go */
	const struct agd_park_answer *ans;    /* NULL: timeout */
	const char *why;                      /* the timeout's text, or NULL */
};

static int unpark_push(lua_State *L)
{
	struct unpark_args *u = lua_touserdata(L, 1);

	if (u->ans != NULL) {
		if (u->ans->data != NULL)
			lua_pushlstring(L, u->ans->data, u->ans->len);
		else
			lua_pushnil(L);
		lua_pushinteger(L, u->ans->code);
		lua_pushstring(L, u->ans->text ? u->ans->text : "");
	} else {
		lua_pushnil(L);
		lua_pushinteger(L, AGD_ERR_TIMEOUT);
		lua_pushstring(L, u->why ? u->why : "no answer in time");
	}
	lua_xmove(L, u->co, 3);
	return 0;
}

void agd_vm_unpark(struct agd_vm *vm, const struct agd_park_answer *ans, const char *why)
{
	struct unpark_args u = { vm->co, ans, why };
	size_t limit = vm->mem_limit;

	if (vm->proc != NULL) {
		agd_proc_unpark(vm->proc, ans, why); /* the worker process stages it */
		return;
	}
	if (vm->co == NULL)
		return;
	/* The answer is the host's delivery, already capped by the call
	 * layer; the agent pays for it with its next allocation. Made in the
	 * main thread under pcall (a suspended coroutine takes no calls). */
	vm->mem_limit = (size_t)-1;
	if (lua_checkstack(vm->co, 4)) {
		lua_pushcfunction(vm->L, unpark_push);
		lua_pushlightuserdata(vm->L, &u);
		if (lua_pcall(vm->L, 1, 0, 0) != LUA_OK) {
			lua_pop(vm->L, 1);
			lua_pushnil(vm->co);
			lua_pushinteger(vm->co, AGD_ERR_NOMEM);
			lua_pushnil(vm->co);
		}
		vm->park_nargs = 3;
	} else if (!atomic_load(&vm->kill)) {
		snprintf(vm->kill_reason, sizeof vm->kill_reason, "out of stack for a park's answer");
		atomic_store(&vm->kill, 1);
	}
	vm->mem_limit = limit;
}

static int l_migrate(lua_State *L)
{
	return move_self(L, 0); /* [mig2] */
}

static int l_clone(lua_State *L)
{
	return move_self(L, 1); /* [mig2] */
}

/* agent.resource(name): a handle for the manifest's binding `name`,
 * resolved on this host (docs/resources.md, "Lua handles"). */
static int l_resource(lua_State *L)
{
	struct agd_vm *vm = checkvm(L);
	const char *name = luaL_checkstring(L, 1);
	struct agd_code *code = agd_agent_code(vm->a);
	const struct mig_manifest *m = code->seg ? mig_segment_manifest(code->seg) : NULL;
	const struct mig_binding *b = NULL;
	struct res_registry *reg = agd_rt_registry(vm->rt);
	struct res_bind bind;
	enum res_binding kind;
	int rc;

	for (uint32_t i = 0; m != NULL && i < m->nbindings; i++)
		if (strcmp(m->bindings[i].name, name) == 0)
			b = &m->bindings[i];
	if (b == NULL) {
		lua_pushnil(L);
		lua_pushfstring(L, "no binding '%s' in the manifest", name);
		lua_pushstring(L, "notfound");
		return 3;
	}
	if (agd_rt_is_child(vm->rt)) {
		/* [resint] The registry and the peer channel live in the
		 * daemon; an agent process gets no handles (docs/resources.md). */
		lua_pushnil(L);
		lua_pushstring(L, "agent.resource is not available under isolation = process "
				  "(the resources live in the daemon)");
		lua_pushstring(L, "unavailable");
		return 3;
	}
	if (reg == NULL) {
		lua_pushnil(L);
		lua_pushstring(L, "this host has no resources");
		lua_pushstring(L, "notfound");
		return 3;
	}
	kind = b->kind == MIG_BIND_IDENTIFIER ? RES_BIND_ID
	       : b->kind == MIG_BIND_VALUE ? RES_BIND_VALUE : RES_BIND_TYPE;
	/* From now on this agent's slices hold the registry lock: its handle's
	 * methods touch the registry without asking. */
	if (!vm->res_locked) {
		agd_rt_res_lock(vm->rt);
		vm->res_locked = 1;
	}
	vm->uses_res = 1;
	rc = agd_res_bound(vm->rt, agd_agent_id(vm->a), name, &bind) == 0 ? 0 /* [resint] after a hop */
	     : res_bind_resolve(reg, name, kind, agd_res_target_ref(reg, b->target), &bind); /* [resint] "device" */
	if (rc != 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "binding '%s' (%s): %s", name, b->target, res_strerror(rc));
		lua_pushstring(L, res_errname(rc));
		return 3;
	}
	agd_res_note_bind(vm->rt, agd_agent_id(vm->a), &bind, b->actions, b->nactions); /* [resint] */
	res_lua_set_main(L, vm->co); /* [resint] remote ops park only there */
	res_lua_push_handle(L, &bind);
	return 1;
}

/* ------------------------------------------- exported methods and proxies
 * (docs/agent-api.md, "Methods and proxies"; the call layer is agd_call.c).
 * Exports live in the root table (field "exports": name -> function), so
 * they persist and move with the agent. A proxy is a table {id, timeout,
 * hint} whose metatable (a permanent) makes every string key a method: a
 * C closure over (proxy, name) that sends the call and parks. */

#define CALL_TIMEOUT_DEFAULT 10.0  /* seconds a proxy call waits by default */
#define CALL_TIMEOUT_MAX 3600.0    /* and at most */
#define CALL_NAME_MAX 64           /* bytes of a method name (AGD_WIRE_NAME_MAX) */
#define CALL_VALUES_MAX 200        /* arguments or results of one call */

static int l_export(lua_State *L)
{
	struct agd_vm *vm = checkvm(L);

	luaL_checktype(L, 1, LUA_TTABLE);
	/* All checked before any is added: misuse changes nothing. */
	lua_pushnil(L);
	while (lua_next(L, 1) != 0) {
		size_t len = 0;

		if (lua_type(L, -2) != LUA_TSTRING || (lua_tolstring(L, -2, &len), len == 0) ||
		    len > CALL_NAME_MAX)
			return luaL_error(L, "agent.export: method names must be strings of 1 to %d "
					  "bytes", CALL_NAME_MAX);
		if (!lua_isfunction(L, -1))
			return luaL_error(L, "agent.export: method '%s' is not a function",
					  lua_tostring(L, -2));
		lua_pop(L, 1);
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, vm->root_ref);
	if (lua_getfield(L, -1, "exports") != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_setfield(L, -3, "exports");
	}
	lua_pushnil(L);
	while (lua_next(L, 1) != 0) {
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_rawset(L, -4);
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int proxy_k(lua_State *L, int status, lua_KContext ctx)
{
	int top = lua_gettop(L), code, n;
	size_t len = 0;
	const char *data;

	(void)status;
	(void)ctx;
	code = (int)lua_tointeger(L, top - 1);
	if (code != 0) {
		const char *text = lua_tostring(L, top);

		lua_pushnil(L);
		lua_pushstring(L, text != NULL && text[0] ? text : agd_strerror(code));
		lua_pushstring(L, agd_errname(code));
		return 3;
	}
	data = lua_tolstring(L, top - 2, &len);
	if (data == NULL) {
		lua_pushnil(L);
		lua_pushliteral(L, "the answer carried no results");
		lua_pushliteral(L, "remote");
		return 3;
	}
#if AGD_HAVE_ENGINE
	{
		struct mig_error e;

		if (mig_data_decode(L, data, len, &e) != 0 || !lua_istable(L, -1)) {
			lua_pushnil(L);
			lua_pushliteral(L, "the answer's results are undecodable");
			lua_pushliteral(L, "remote");
			return 3;
		}
	}
#else
	lua_pushnil(L);
	lua_pushliteral(L, "calls need the state engine");
	lua_pushliteral(L, "unavailable");
	return 3;
#endif
	lua_getfield(L, -1, "n");
	n = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : (int)lua_rawlen(L, -2);
	lua_pop(L, 1);
	if (n < 0 || n > CALL_VALUES_MAX)
		n = 0;
	luaL_checkstack(L, n + 1, "call results");
	for (int i = 1; i <= n; i++)
		lua_rawgeti(L, top + 1, i);
	return n;
}

/* p:method(...) or p.method(...): the call, answered by the agent wherever
 * it is; parks the caller until the answer or the proxy's timeout. */
static int proxy_call(lua_State *L)
{
	struct agd_vm *vm = checkvm(L);
	int first = lua_gettop(L) >= 1 && lua_rawequal(L, 1, lua_upvalueindex(1)) ? 2 : 1;
	int n = lua_gettop(L) - first + 1, rc;
	const char *method = lua_tostring(L, lua_upvalueindex(2));
	const char *id, *hint;
	double timeout;
	uint64_t token;

	if (n > CALL_VALUES_MAX)
		return luaL_error(L, "%s: at most %d arguments", method, CALL_VALUES_MAX);
	/* The same conditions agd_park_yield raises on, checked before the
	 * call is sent, so that no call leaves for a caller that cannot wait. */
	if (vm->in_call)
		return luaL_error(L, "%s: an exported method cannot call through a proxy (it "
				  "runs to completion between the agent's own slices)", method);
	if (L != vm->co || !lua_isyieldable(L))
		return luaL_error(L, "%s: a proxy call blocks: not inside a nested coroutine or a "
				  "C call", method);
	lua_rawgeti(L, lua_upvalueindex(1), 1);
	lua_rawgeti(L, lua_upvalueindex(1), 2);
	lua_rawgeti(L, lua_upvalueindex(1), 3);
	id = lua_tostring(L, -3);
	timeout = lua_tonumber(L, -2);
	hint = lua_tostring(L, -1);
	if (id == NULL)
		return luaL_error(L, "%s: not a proxy", method);
	if (!(timeout > 0) || timeout > CALL_TIMEOUT_MAX)
		timeout = CALL_TIMEOUT_DEFAULT;
	lua_createtable(L, n, 1);
	for (int i = 0; i < n; i++) {
		lua_pushvalue(L, first + i);
		lua_rawseti(L, -2, i + 1);
	}
	lua_pushinteger(L, n);
	lua_setfield(L, -2, "n");
#if AGD_HAVE_ENGINE
	{
		struct mig_buf buf = { 0 };
		struct mig_error e;

		rc = mig_data_encode(L, -1, &buf, &e);
		if (rc != 0) {
			char msg[200];

			snprintf(msg, sizeof msg, "%.199s", e.msg);
			agd_buf_free(&buf);
			lua_pushnil(L);
			lua_pushfstring(L, "arguments are not plain data: %s", msg);
			lua_pushliteral(L, "arg");
			return 3;
		}
		token = agd_park_token(L);
		/* agd_call_start copies the bytes: nothing malloc'd is held
		 * across a call that can raise. */
		if (agd_rt_is_child(vm->rt)) /* process isolation: through the daemon */
			rc = agd_rt_remote_call(vm->rt, token, id, method, buf.data, buf.len, timeout,
						hint);
		else
			rc = agd_call_start(vm->rt, agd_agent_id(vm->a), token, id, method, buf.data,
					    buf.len, timeout, hint);
		agd_buf_free(&buf);
	}
#else
	(void)hint;
	token = 0;
	rc = AGD_ERR_UNAVAILABLE;
#endif
	if (rc != 0) {
		lua_pushnil(L);
		lua_pushstring(L, rc == AGD_ERR_UNAVAILABLE ? "calls not available (no peer channel)"
							    : agd_strerror(rc));
		lua_pushstring(L, agd_errname(rc));
		return 3;
	}
	lua_settop(L, 0);
	return agd_park_yield(L, token, timeout + 0.5, 0, proxy_k);
}

static int proxy_index(lua_State *L)
{
	if (lua_type(L, 2) != LUA_TSTRING)
		return 0;
	lua_settop(L, 2);
	lua_pushcclosure(L, proxy_call, 2);
	return 1;
}

/* agent.proxy(id [, {timeout = s, host = hint}]) */
static int l_proxy(lua_State *L)
{
	struct agd_vm *vm = checkvm(L);
	size_t len;
	double timeout = CALL_TIMEOUT_DEFAULT;

	luaL_checklstring(L, 1, &len);
	luaL_argcheck(L, len > 0 && len <= CALL_NAME_MAX, 1, "expected an agent id");
	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		if (lua_getfield(L, 2, "timeout") != LUA_TNIL) {
			timeout = luaL_checknumber(L, -1);
			luaL_argcheck(L, timeout > 0 && timeout <= CALL_TIMEOUT_MAX, 2,
				      "timeout must be in (0, 3600] seconds");
		}
		lua_pop(L, 1);
		if (lua_getfield(L, 2, "host") != LUA_TNIL)
			luaL_checkstring(L, -1);
		lua_pop(L, 1);
	}
	(void)vm;
	lua_createtable(L, 3, 0);
	lua_pushvalue(L, 1);
	lua_rawseti(L, -2, 1);
	lua_pushnumber(L, timeout);
	lua_rawseti(L, -2, 2);
	if (lua_istable(L, 2) && lua_getfield(L, 2, "host") == LUA_TSTRING)
		lua_rawseti(L, -2, 3);
	else if (lua_istable(L, 2))
		lua_pop(L, 1);
	luaL_setmetatable(L, "agentd.proxy");
	return 1;
}

/* The proxy's metatable and the names the engine needs to move proxies,
 * their method closures and a parked call (same on every host). */
static int proxy_open(lua_State *L)
{
	int rc = 0;

	luaL_newmetatable(L, "agentd.proxy");
	lua_pushcfunction(L, proxy_index);
#if AGD_HAVE_ENGINE
	rc = mig_perm_add(L, "agent.proxy.__index", -1);
#endif
	lua_setfield(L, -2, "__index");
	lua_pushliteral(L, "agentd.proxy");
	lua_setfield(L, -2, "__metatable");
#if AGD_HAVE_ENGINE
	if (rc == 0)
		rc = mig_perm_add(L, "agent.proxy.mt", -1);
	if (rc == 0)
		rc = mig_cfunc_add(L, "agent.proxy.call", proxy_call);
	if (rc == 0)
		rc = mig_cont_add(L, "agent.proxy.k", proxy_k);
#endif
	lua_pop(L, 1);
	return rc;
}

static const luaL_Reg agent_api[] = {
	{ "id", l_id },
	{ "host", l_host },
	{ "home", l_home },
	{ "hosts", l_hosts },
	{ "log", l_log },
	{ "sleep", l_sleep },
	{ "recv", l_recv },
	{ "send", l_send },
	{ "migrate", l_migrate },
	{ "clone", l_clone },
	{ "resource", l_resource },
	{ "export", l_export },
	{ "proxy", l_proxy },
	{ NULL, NULL },
};

#if !AGD_HAVE_ENGINE
/* Text-only load, for builds without the engine's recording one. */
static int l_load_text(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	const char *name = luaL_optstring(L, 2, "=(load)");
	const char *mode = luaL_optstring(L, 3, "t");
	int env = !lua_isnone(L, 4) ? 4 : 0;

	if (strchr(mode, 'b') != NULL && strchr(mode, 't') == NULL) {
		lua_pushnil(L);
		lua_pushliteral(L, "binary chunks are not accepted");
		return 2;
	}
	if (luaL_loadbufferx(L, s, len, name, "t") != LUA_OK) {
		lua_pushnil(L);
		lua_insert(L, -2);
		return 2;
	}
	if (env) {
		lua_pushvalue(L, env);
		if (lua_setupvalue(L, -2, 1) == NULL)
			lua_pop(L, 1);
	}
	return 1;
}
#endif

/* --------------------------------------------------------------- sandbox */

static int has_bindings(struct agd_vm *vm)
{
	struct agd_code *code = vm->a ? agd_agent_code(vm->a) : NULL;

	return code != NULL && code->seg != NULL && mig_segment_manifest(code->seg)->nbindings > 0;
}

static int open_sandbox(lua_State *L)
{
	static const luaL_Reg libs[] = {
		{ LUA_GNAME, luaopen_base },
		{ LUA_COLIBNAME, luaopen_coroutine },
		{ LUA_TABLIBNAME, luaopen_table },
		{ LUA_STRLIBNAME, luaopen_string },
		{ LUA_MATHLIBNAME, luaopen_math },
		{ LUA_UTF8LIBNAME, luaopen_utf8 },
		{ NULL, NULL },
	};
	static const char *const drop[] = { "dofile", "loadfile", "load", "print", NULL };
	int rc = 0;

	/* This runs at every activation: the libraries are opened straight
	 * into a globals table made big enough for them (no rehash as it
	 * fills), and without luaL_requiref's package.loaded, which the
	 * sandbox would only have to drop again. */
	lua_createtable(L, 0, 32);
	lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
	for (const luaL_Reg *l = libs; l->name != NULL; l++) {
		lua_pushcfunction(L, l->func);
		lua_call(L, 0, 1);
		if (l->func == luaopen_base)
			lua_pop(L, 1);
		else
			lua_setglobal(L, l->name);
	}
	/* The globals are copied into a fresh table without the dropped
	 * names, rather than deleted in place: a deleted entry stays in the
	 * table's hash part as a dead key, which is nothing an agent could
	 * see, but everything a persister walking nodes would trip on. */
	lua_createtable(L, 0, 24);
	lua_pushglobaltable(L);
	lua_pushnil(L);
	while (lua_next(L, -2) != 0) {
		int skip = lua_type(L, -2) != LUA_TSTRING;

		for (int i = 0; !skip && drop[i] != NULL; i++)
			skip = strcmp(lua_tostring(L, -2), drop[i]) == 0;
		if (skip) {
			lua_pop(L, 1);
			continue;
		}
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_rawset(L, -5);
	}
	lua_pop(L, 1);
	lua_pushvalue(L, -1);
	lua_setfield(L, -2, LUA_GNAME);
	lua_pushvalue(L, -1);
	lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
	/* string without dump, copied for the same reason; strings' own
	 * metatable must index the copy. */
	lua_createtable(L, 0, 18);
	lua_getfield(L, -2, "string");
	lua_pushnil(L);
	while (lua_next(L, -2) != 0) {
		if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "dump") == 0) {
			lua_pop(L, 1);
			continue;
		}
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_rawset(L, -5);
	}
	lua_pop(L, 1);
	lua_pushvalue(L, -1);
	lua_setfield(L, -3, "string");
	lua_pushliteral(L, "");
	if (lua_getmetatable(L, -1)) {
		lua_pushvalue(L, -3);
		lua_setfield(L, -2, "__index");
		lua_pop(L, 1);
	}
	lua_pop(L, 2);
	/* print is agent.log. */
	lua_pushcfunction(L, l_print);
	lua_setfield(L, -2, "print");
	/* resume and wrap that carry preemption up from nested coroutines;
	 * replaced, not removed, so no dead key is left. */
	if (lua_getfield(L, -1, "coroutine") == LUA_TTABLE) {
		lua_pushcfunction(L, l_co_resume);
		lua_setfield(L, -2, "resume");
		lua_pushcfunction(L, l_co_wrap);
		lua_setfield(L, -2, "wrap");
	}
	lua_pop(L, 1);
#if AGD_HAVE_ENGINE
	lua_pop(L, 1);
	rc = mig_env_open(L);
	if (rc != 0)
		return rc;
	/* The continuation of a resumer stopped to pass preemption up. */
	rc = mig_cont_add(L, "coroutine.resume:k", co_again);
	if (rc != 0)
		return rc;
	lua_pushglobaltable(L);
#else
	lua_pushcfunction(L, l_load_text);
	lua_setfield(L, -2, "load");
#endif
	luaL_newlib(L, agent_api);
#if AGD_HAVE_ENGINE
	for (const luaL_Reg *f = agent_api; f->name != NULL; f++) {
		char name[48];

		snprintf(name, sizeof name, "agent.%s", f->name);
		lua_getfield(L, -1, f->name);
		rc = mig_perm_add(L, name, -1);
		lua_pop(L, 1);
		if (rc != 0)
			return rc;
	}
	rc = mig_perm_add(L, "agent", -1);
	if (rc != 0)
		return rc;
#endif
	lua_setfield(L, -2, "agent");
	lua_pop(L, 1);
	rc = proxy_open(L); /* [call] agent.proxy's metatable and names */
	if (rc != 0)
		return rc;
	/* Resource handles only for agents whose manifest binds resources
	 * (no other can make one): the same decision on every host, since it
	 * depends on the code alone, and idle agents without bindings carry
	 * neither the handle metatable nor its permanents. */
	if (has_bindings(vm_of(L))) {
		if (res_lua_open(L, &vm_of(L)->renv) != 0)
			return MIG_ERR_NOMEM;
#if AGD_HAVE_ENGINE && AGD_HAVE_RES_MOBILITY
		if (res_lua_mobility(L) != 0)
			return MIG_ERR_NOMEM;
#endif
	}
	return rc;
}

/* Protected part of making a state: sandbox, sources. Runs under lua_pcall
 * so that a memory error in setup is an error, not a panic. */
struct setup_args {
	struct agd_vm *vm;        /* the vm being made */
	const void *state;        /* persisted bytes, or NULL for a fresh start */
	size_t state_len;         /* their length */
	int rc;                   /* agd_err of the setup */
	char *err;                /* message buffer */
	size_t err_len;           /* its size */
};

static int add_sources(lua_State *L, struct agd_vm *vm, struct setup_args *s, int load_entry)
{
	struct agd_code *code = agd_agent_code(vm->a);
	int found = 0;

#if AGD_HAVE_ENGINE
	struct mig_error e;
	uint8_t h[MIG_HASH_LEN], entry[MIG_HASH_LEN];

	if (code->seg != NULL) {
		for (size_t i = 0; i < mig_segment_nfiles(code->seg); i++) {
			const char *name, *text;
			char chunk[160];
			size_t len;

			mig_segment_file(code->seg, i, &name, &text, &len);
			snprintf(chunk, sizeof chunk, "@%.150s", name);
			if (mig_source_add(L, text, len, chunk, 1, h) != 0) {
				s->rc = AGD_ERR_NOMEM;
				return -1;
			}
			if (strcmp(name, code->entry_file) == 0) {
				memcpy(entry, h, sizeof h);
				found = 1;
			}
		}
	} else {
		char chunk[160];

		snprintf(chunk, sizeof chunk, "@%s", code->entry_file);
		if (mig_source_add(L, code->text, code->text_len, chunk, 1, entry) != 0) {
			s->rc = AGD_ERR_NOMEM;
			return -1;
		}
		found = 1;
	}
	if (!load_entry)
		return 0;
	if (!found) {
		s->rc = AGD_ERR_SEGMENT;
		snprintf(s->err, s->err_len, "entry file %s not in segment", code->entry_file);
		return -1;
	}
	if (mig_source_load(L, entry, &e) != 0) {
		s->rc = AGD_ERR_LUA;
		snprintf(s->err, s->err_len, "%s", e.msg);
		return -1;
	}
	return 0;
#else
	const char *text = code->text;
	size_t len = code->text_len;
	char chunk[160];

	(void)found;
	if (!load_entry)
		return 0;
	if (code->seg != NULL && mig_segment_find(code->seg, code->entry_file, &text, &len) != 0) {
		s->rc = AGD_ERR_SEGMENT;
		snprintf(s->err, s->err_len, "entry file %s not in segment", code->entry_file);
		return -1;
	}
	snprintf(chunk, sizeof chunk, "@%s", code->entry_file);
	if (luaL_loadbufferx(L, text, len, chunk, "t") != LUA_OK) {
		s->rc = AGD_ERR_LUA;
		snprintf(s->err, s->err_len, "%s", lua_tostring(L, -1));
		lua_pop(L, 1);
		return -1;
	}
	return 0;
#endif
}

static int setup(lua_State *L)
{
	struct setup_args *s = lua_touserdata(L, 1);
	struct agd_vm *vm = s->vm;
	int rc;

	lua_settop(L, 0);
	rc = open_sandbox(L);
	if (rc != 0) {
		s->rc = AGD_ERR_LUA;
		snprintf(s->err, s->err_len, "sandbox: engine code %d", rc);
		return 0;
	}
	if (add_sources(L, vm, s, s->state == NULL) != 0)
		return 0;
	if (s->state == NULL) {
		/* root = { co = coroutine(entry chunk), phase = 0 } */
		lua_State *co;

		lua_createtable(L, 0, 2);
		co = lua_newthread(L);
		lua_setfield(L, -2, "co");
		lua_pushinteger(L, 0);
		lua_setfield(L, -2, "phase");
		lua_getfield(L, -1, "co");
		lua_pushvalue(L, 1);  /* the entry chunk */
		lua_xmove(L, co, 1);
		lua_pop(L, 1);
		lua_remove(L, 1);
	} else {
#if AGD_HAVE_ENGINE
		struct mig_error e;

		rc = mig_state_restore(L, s->state, s->state_len, &e);
		if (rc != 0) {
			s->rc = AGD_ERR_LUA;
			snprintf(s->err, s->err_len, "restore: %s", e.msg);
			return 0;
		}
		if (!lua_istable(L, -1)) {
			s->rc = AGD_ERR_LUA;
			snprintf(s->err, s->err_len, "restore: root is not an agent");
			return 0;
		}
#else
		s->rc = AGD_ERR_UNAVAILABLE;
		snprintf(s->err, s->err_len, "persistence not available in this build");
		return 0;
#endif
	}
	lua_getfield(L, -1, "co");
	if (!lua_isthread(L, -1)) {
		s->rc = AGD_ERR_LUA;
		snprintf(s->err, s->err_len, "agent root has no coroutine");
		return 0;
	}
	vm->co = lua_tothread(L, -1);
	lua_pop(L, 1);
	lua_getfield(L, -1, "phase");
	vm->phase = (int)lua_tointeger(L, -1);
	lua_pop(L, 1);
	vm->root_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	s->rc = 0;
	return 0;
}

static int make(struct agd_rt *rt, struct agd_agent *a, const struct agd_vm_limits *lim,
		const void *state, size_t len, struct agd_vm **out, char *err, size_t err_len)
{
	struct agd_vm *vm = calloc(1, sizeof *vm);
	struct setup_args s = { vm, state, len, AGD_ERR_LUA, err, err_len };
	int rc;

	*out = NULL;
	if (err_len > 0)
		err[0] = '\0';
	if (vm == NULL)
		return AGD_ERR_NOMEM;
	vm->rt = rt;
	vm->a = a;
	vm->mem_limit = lim->memory;
	vm->slice = lim->slice ? lim->slice : 10000;
	vm->instr_limit = lim->instructions;
	vm->root_ref = LUA_NOREF;
	vm->renv.host = agd_rt_config(rt)->host;
	vm->renv.reg = agd_rt_registry(rt);
	agd_res_vm_env(rt, a, &vm->renv, &vm->uses_res, state != NULL); /* [resint] */
#if AGD_HAVE_ENGINE
	if (state != NULL) {
		struct mig_state_info info;

		rc = mig_state_peek(state, len, &info);
		if (rc != 0) {
			snprintf(err, err_len, "state: engine code %d", rc);
			free(vm);
			return AGD_ERR_LUA;
		}
		vm->L = mig_lua_newstate(vm_alloc, vm, info.seed);
	} else
#endif
		vm->L = mig_lua_newstate_random(vm_alloc, vm);
	if (vm->L == NULL) {
		free(vm);
		snprintf(err, err_len, "cannot create a Lua state within the memory quota");
		return AGD_ERR_NOMEM;
	}
	/* Everything setup makes is live (the library tables it copies
	 * aside are few): collector steps during it are wasted work on the
	 * activation path. */
	lua_gc(vm->L, LUA_GCSTOP);
	lua_pushcfunction(vm->L, setup);
	lua_pushlightuserdata(vm->L, &s);
	rc = lua_pcall(vm->L, 1, 0, 0);
	lua_gc(vm->L, LUA_GCRESTART);
	if (rc != LUA_OK) {
		snprintf(err, err_len, "setup: %s", lua_tostring(vm->L, -1));
		s.rc = rc == LUA_ERRMEM ? AGD_ERR_NOMEM : AGD_ERR_LUA;
	}
	if (s.rc != 0 || atomic_load(&vm->kill)) {
		if (s.rc == 0) {
			s.rc = AGD_ERR_NOMEM;
			snprintf(err, err_len, "%s", vm->kill_reason);
		}
		lua_close(vm->L);
		free(vm);
		return s.rc;
	}
	/* Setup leaves garbage (the library tables the sandbox copied, load
	 * buffers): collect it now rather than carry it in every idle agent.
	 * Not on activation, which is on the latency path: the collector gets
	 * to it in its own time. */
	if (state == NULL)
		lua_gc(vm->L, LUA_GCCOLLECT);
	lua_sethook(vm->co, vm_hook, LUA_MASKCOUNT, (int)vm->slice);
	*out = vm;
	return 0;
}

/* Process isolation: the vm is a proxy for one in a worker process. */
static int make_proc(struct agd_rt *rt, struct agd_agent *a, const struct agd_vm_limits *lim,
		     const void *state, size_t len, struct agd_vm **out, struct agd_vm_wait *wait,
		     char *err, size_t err_len)
{
	struct agd_vm *vm = calloc(1, sizeof *vm);
	int rc;

	*out = NULL;
	if (vm == NULL)
		return AGD_ERR_NOMEM;
	rc = agd_proc_start(rt, a, lim, state, len, &vm->proc, wait, err, err_len);
	if (rc != 0) {
		free(vm);
		return rc;
	}
	vm->rt = rt;
	vm->a = a;
	*out = vm;
	return 0;
}

static int in_process(struct agd_rt *rt)
{
	return agd_rt_config(rt)->isolation == AGD_ISOLATION_PROCESS;
}

int agd_vm_new(struct agd_rt *rt, struct agd_agent *a, const struct agd_vm_limits *lim,
	       struct agd_vm **out, char *err, size_t err_len)
{
	if (in_process(rt))
		return make_proc(rt, a, lim, NULL, 0, out, NULL, err, err_len);
	return make(rt, a, lim, NULL, 0, out, err, err_len);
}

int agd_vm_restore(struct agd_rt *rt, struct agd_agent *a, const struct agd_vm_limits *lim,
		   const void *state, size_t len, struct agd_vm **out, struct agd_vm_wait *wait,
		   char *err, size_t err_len)
{
	int rc;

	if (state == NULL)
		return AGD_ERR_ARG;
	if (in_process(rt)) {
		struct agd_vm_wait ignored;

		return make_proc(rt, a, lim, state, len, out, wait ? wait : &ignored, err, err_len);
	}
	rc = make(rt, a, lim, state, len, out, err, err_len);
	if (rc == 0 && wait != NULL) {
		lua_State *L = (*out)->L;

		lua_rawgeti(L, LUA_REGISTRYINDEX, (*out)->root_ref);
		lua_getfield(L, -1, "wait");
		wait->kind = (int)lua_tointeger(L, -1);
		lua_getfield(L, -2, "until");
		wait->until_ms = (int64_t)lua_tointeger(L, -1);
		lua_pop(L, 3);
		if (wait->kind < AGD_VM_WAIT_NONE || wait->kind > AGD_VM_WAIT_PARK)
			wait->kind = AGD_VM_WAIT_NONE;
	}
	return rc;
}

int agd_vm_persist(struct agd_vm *vm, const struct agd_vm_wait *wait, struct mig_buf *out,
		   char *err, size_t err_len)
{
#if AGD_HAVE_ENGINE
	struct mig_error e;
	size_t limit = vm->mem_limit;
	int rc;

	if (vm->proc != NULL)
		return agd_proc_persist(vm->proc, wait, out, err, err_len);
	/* The engine may allocate in L while it walks; that is the host's
	 * work, not the agent's, so the quota is lifted for it. */
	vm->mem_limit = (size_t)-1;
	lua_rawgeti(vm->L, LUA_REGISTRYINDEX, vm->root_ref);
	lua_pushinteger(vm->L, vm->phase);
	lua_setfield(vm->L, -2, "phase");
	lua_pushinteger(vm->L, wait ? wait->kind : 0);
	lua_setfield(vm->L, -2, "wait");
	lua_pushinteger(vm->L, wait ? (lua_Integer)wait->until_ms : 0);
	lua_setfield(vm->L, -2, "until");
	rc = mig_state_persist(vm->L, -1, out, &e);
	lua_pop(vm->L, 1);
	vm->mem_limit = limit;
	if (rc != 0) {
		snprintf(err, err_len, "%s", e.msg);
		return AGD_ERR_LUA;
	}
	return 0;
#else
	(void)vm;
	(void)out;
	(void)wait;
	snprintf(err, err_len, "persistence not available in this build");
	return AGD_ERR_UNAVAILABLE;
#endif
}

/* After the entry chunk returns: runs the manifest's entry function, if it
 * names one, in a fresh coroutine. Returns 1 when there is one to run. */
static int next_phase(struct agd_vm *vm)
{
	struct agd_code *code = agd_agent_code(vm->a);
	lua_State *L = vm->L, *co;

	if (vm->phase != 0 || code->entry_func[0] == '\0')
		return 0;
	lua_rawgeti(L, LUA_REGISTRYINDEX, vm->root_ref);
	lua_pushglobaltable(L);
	lua_getfield(L, -1, code->entry_func);
	if (!lua_isfunction(L, -1)) {
		lua_pop(L, 3);
		return 0;
	}
	co = lua_newthread(L);
	lua_insert(L, -2);
	lua_xmove(L, co, 1);
	lua_getfield(L, -3, "args");
	lua_xmove(L, co, 1);
	vm->entry_nargs = 1;
	lua_setfield(L, -3, "co");
	lua_pop(L, 1);
	vm->phase = 1;
	lua_pushinteger(L, 1);
	lua_setfield(L, -2, "phase");
	lua_pop(L, 1);
	vm->co = co;
	lua_sethook(co, vm_hook, LUA_MASKCOUNT, (int)vm->slice);
	return 1;
}

static void error_text(struct agd_vm *vm, int nres, char *out, size_t len)
{
	const char *msg;

	(void)nres;
	msg = lua_tostring(vm->co, -1);
	luaL_traceback(vm->L, vm->co, msg ? msg : "(error object is not a string)", 0);
	snprintf(out, len, "%s", lua_tostring(vm->L, -1));
	lua_pop(vm->L, 1);
}

/* Whether the root holds the results of a move (agd_moblua). Checked on
 * the main thread first, because agd_moblua_resume grows the coroutine's
 * stack, and lua_checkstack on a coroutine preempted by the hook raises its
 * interrupted Lua frame's top past the function's registers: harmless to
 * run, but a state persisted after that no longer restores. */
static int move_pending(struct agd_vm *vm)
{
	int pending;

	lua_rawgeti(vm->L, LUA_REGISTRYINDEX, vm->root_ref);
	lua_getfield(vm->L, -1, "migres");
	pending = lua_istable(vm->L, -1);
	lua_pop(vm->L, 2);
	return pending;
}

void agd_vm_resume(struct agd_vm *vm, int deliver, const struct agd_msg *msg,
		   struct agd_vm_result *res)
{
	int nargs = 0, nres = 0, st;

	if (vm->proc != NULL) {
		agd_proc_resume(vm->proc, deliver, msg, res);
		return;
	}
	memset(res, 0, sizeof *res);
	res->timeout = -1;
	if (atomic_load(&vm->kill)) {
		res->status = AGD_VM_KILLED;
		snprintf(res->reason, sizeof res->reason, "%s", vm->kill_reason);
		return;
	}
	if (deliver) {
		int top = lua_gettop(vm->co);

		/* Decoded in the main thread (a suspended coroutine takes no
		 * calls), then moved. An undecodable message (it was checked
		 * when sent) or no room reads as nil rather than failing the
		 * agent. */
		if (msg != NULL && lua_checkstack(vm->co, 8) && push_msg(vm->L, msg) == 0)
			lua_xmove(vm->L, vm->co, 1);
		else {
			lua_settop(vm->co, top);
			lua_pushnil(vm->co);
		}
		nargs = 1;
		if (!vm->started && vm->phase == 0) {
			/* The run arguments: kept in the root so that the entry
			 * function gets them too. */
			lua_rawgeti(vm->L, LUA_REGISTRYINDEX, vm->root_ref);
			lua_pushvalue(vm->co, -1);
			lua_xmove(vm->co, vm->L, 1);
			lua_setfield(vm->L, -2, "args");
			lua_pop(vm->L, 1);
		}
	}
	else if (vm->park_nargs > 0) { /* the answer of a park (agd_vm_unpark) */
		nargs = vm->park_nargs;
		vm->park_nargs = 0;
	}
	else if (vm->root_ref != LUA_NOREF && move_pending(vm)) /* [mig2] what agent.migrate returns here */
		nargs = agd_moblua_resume(vm->L, vm->co, vm->root_ref, vm->rt, vm->a);
	vm->started = 1;
again:
	if (vm->uses_res && !vm->res_locked) {
		agd_rt_res_lock(vm->rt);
		vm->res_locked = 1;
	}
	vm->why = Y_NONE;
	st = lua_resume(vm->co, vm->L, nargs, &nres);
	if (vm->res_locked) {
		vm->res_locked = 0;
		agd_rt_res_unlock(vm->rt);
	}
	if (atomic_load(&vm->kill)) {
		res->status = AGD_VM_KILLED;
		snprintf(res->reason, sizeof res->reason, "%s", vm->kill_reason);
		return;
	}
	if (st == LUA_YIELD) {
		lua_pop(vm->co, nres);
		switch (vm->why) {
		case Y_SLEEP:
			res->status = AGD_VM_SLEEP;
			res->timeout = vm->timeout;
			break;
		case Y_RECV:
			res->status = AGD_VM_RECV;
			res->timeout = vm->timeout;
			break;
		case Y_MIGRATE: /* [mig2] */
			agd_moblua_yielded(vm->L, vm->root_ref, res);
			break;
		case Y_PARK:
			res->status = AGD_VM_PARK;
			res->timeout = vm->timeout;
			res->token = vm->park_token;
			break;
		default:
			/* The hook, or a bare coroutine.yield in the agent's
			 * body: either way, back to the run queue. */
			res->status = AGD_VM_PREEMPTED;
			break;
		}
		return;
	}
	if (st == LUA_OK) {
		lua_settop(vm->co, 0);
		if (next_phase(vm)) {
			nargs = vm->entry_nargs;
			vm->entry_nargs = 0;
			goto again;
		}
		res->status = AGD_VM_DONE;
		return;
	}
	res->status = AGD_VM_ERROR;
	error_text(vm, nres, res->reason, sizeof res->reason);
}

/* ------------------------------------------------ serving exported methods */

/* The hook of a method's coroutine (and of coroutines it makes, which
 * inherit it): counts instructions, enforces the quotas and kills, and the
 * call's own budget. It never yields (nothing a method runs may yield to
 * the scheduler); it raises, and keeps raising at every instruction, so
 * that a pcall in the method cannot hold on. */
#define CALL_BUDGET_SLICES 100 /* a method may run this many slices' worth */

static void call_hook(lua_State *L, lua_Debug *ar)
{
	struct agd_vm *vm = vm_of(L);

	(void)ar;
	count_slice(vm);
	if (atomic_load(&vm->kill)) {
		lua_sethook(L, call_hook, LUA_MASKCOUNT, 1);
		luaL_error(L, "agent killed: %s", vm->kill_reason);
		return;
	}
	if (vm->in_call > CALL_BUDGET_SLICES) {
		lua_sethook(L, call_hook, LUA_MASKCOUNT, 1);
		luaL_error(L, "the method ran past its budget of %d slices", CALL_BUDGET_SLICES);
		return;
	}
	vm->in_call++;
}

struct call_args {
	struct agd_vm *vm;                  /* the agent */
	const char *method;                 /* borrowed */
	const void *args;                   /* encoded {n=, ...} */
	size_t len;
	struct agd_vm_call_result *res;     /* filled */
};

static void call_fail(struct agd_vm_call_result *res, int code, const char *fmt, const char *s)
{
	res->code = code;
	snprintf(res->text, sizeof res->text, fmt, s);
}

/* Under lua_pcall on the main thread: finds the method, runs it in a fresh
 * coroutine, encodes its results. */
static int call_run(lua_State *L)
{
	struct call_args *c = lua_touserdata(L, 1);
	struct agd_vm *vm = c->vm;
	lua_State *cc;
	int n = 0, nres = 0, st, base;

	lua_settop(L, 0);
	lua_rawgeti(L, LUA_REGISTRYINDEX, vm->root_ref);
	if (lua_getfield(L, -1, "exports") != LUA_TTABLE ||
	    lua_getfield(L, -1, c->method) != LUA_TFUNCTION) {
		call_fail(c->res, AGD_ERR_NOTFOUND, "no method '%s' exported by this agent", c->method);
		return 0;
	}
	cc = lua_newthread(L);   /* anchored on L's stack for the call */
	lua_insert(L, -2);
	lua_xmove(L, cc, 1);     /* the method */
#if AGD_HAVE_ENGINE
	{
		struct mig_error e;

		if (c->len > 0 && (mig_data_decode(L, c->args, c->len, &e) != 0 || !lua_istable(L, -1))) {
			call_fail(c->res, AGD_ERR_ARG, "%s", "undecodable arguments");
			return 0;
		}
	}
#endif
	if (c->len > 0) {
		lua_getfield(L, -1, "n");
		n = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : (int)lua_rawlen(L, -2);
		lua_pop(L, 1);
		if (n < 0 || n > CALL_VALUES_MAX) {
			call_fail(c->res, AGD_ERR_ARG, "%s", "bad argument count");
			return 0;
		}
		luaL_checkstack(L, n + 4, "call arguments");
		if (!lua_checkstack(cc, n + 4)) {
			call_fail(c->res, AGD_ERR_NOMEM, "%s", "no stack for the arguments");
			return 0;
		}
		for (int i = 1; i <= n; i++) {
			lua_rawgeti(L, -1, i);
			lua_xmove(L, cc, 1);
		}
	}
	lua_sethook(cc, call_hook, LUA_MASKCOUNT, (int)vm->slice);
	vm->in_call = 1;
	st = lua_resume(cc, L, n, &nres);
	vm->in_call = 0;
	if (st == LUA_YIELD) {
		call_fail(c->res, AGD_ERR_REMOTE, "method '%s' yielded: an exported method runs to "
			  "completion and cannot block or yield", c->method);
		return 0;
	}
	if (st != LUA_OK) {
		const char *msg = lua_tostring(cc, -1);

		c->res->code = AGD_ERR_REMOTE;
		snprintf(c->res->text, sizeof c->res->text, "%s",
			 msg ? msg : "(error object is not a string)");
		return 0;
	}
	if (nres > CALL_VALUES_MAX) {
		call_fail(c->res, AGD_ERR_TOOBIG, "method '%s' returned too many values", c->method);
		return 0;
	}
	luaL_checkstack(L, nres + 4, "call results");
	base = lua_gettop(L);
	lua_xmove(cc, L, nres);
	lua_createtable(L, nres, 1);
	for (int i = 1; i <= nres; i++) {
		lua_pushvalue(L, base + i);
		lua_rawseti(L, -2, i);
	}
	lua_pushinteger(L, nres);
	lua_setfield(L, -2, "n");
#if AGD_HAVE_ENGINE
	{
		struct mig_error e;

		if (mig_data_encode(L, -1, c->res->out, &e) != 0) {
			c->res->code = AGD_ERR_ARG;
			snprintf(c->res->text, sizeof c->res->text,
				 "method '%.64s' returned what is not plain data: %.300s", c->method,
				 e.msg);
			return 0;
		}
	}
#endif
	c->res->code = 0;
	return 0;
}

void agd_vm_call(struct agd_vm *vm, const char *method, const void *args, size_t len,
		 struct agd_vm_call_result *res)
{
	struct call_args c = { vm, method, args, len, res };
	int st;

	res->code = AGD_ERR_LUA;
	res->text[0] = '\0';
	if (vm->proc != NULL) {
		agd_proc_call(vm->proc, method, args, len, res); /* runs in the worker process */
		return;
	}
	if (atomic_load(&vm->kill)) {
		call_fail(res, AGD_ERR_STATE, "%s", "the agent is being ended");
		return;
	}
	if (vm->uses_res && !vm->res_locked) {
		agd_rt_res_lock(vm->rt);
		vm->res_locked = 1;
	}
	lua_pushcfunction(vm->L, call_run);
	lua_pushlightuserdata(vm->L, &c);
	st = lua_pcall(vm->L, 1, 0, 0);
	vm->in_call = 0;
	if (vm->res_locked) {
		vm->res_locked = 0;
		agd_rt_res_unlock(vm->rt);
	}
	if (st != LUA_OK) {
		const char *msg = lua_tostring(vm->L, -1);

		res->code = st == LUA_ERRMEM ? AGD_ERR_NOMEM : AGD_ERR_LUA;
		snprintf(res->text, sizeof res->text, "%s", msg ? msg : "error serving the call");
		lua_pop(vm->L, 1);
	}
	if (atomic_load(&vm->kill) && res->code == 0) {
		res->code = AGD_ERR_STATE;
		snprintf(res->text, sizeof res->text, "the agent was ended: %s", vm->kill_reason);
	}
}

int agd_vm_killed(const struct agd_vm *vm, char *reason, size_t len)
{
	if (vm->proc != NULL || !atomic_load(&vm->kill))
		return 0;
	snprintf(reason, len, "%s", vm->kill_reason);
	return 1;
}

void agd_vm_kill_async(struct agd_vm *vm)
{
	/* Signal-safe: an atomic store and lua_sethook only; the reason is
	 * the daemon's to record. */
	if (vm->co == NULL || atomic_load(&vm->kill))
		return;
	atomic_store(&vm->kill, 1);
	lua_sethook(vm->co, vm_hook, LUA_MASKCOUNT, 1);
}

void agd_vm_kill(struct agd_vm *vm, const char *reason)
{
	if (vm->proc != NULL) {
		agd_proc_kill(vm->proc);
		return;
	}
	if (atomic_load(&vm->kill))
		return;
	snprintf(vm->kill_reason, sizeof vm->kill_reason, "%s", reason);
	atomic_store(&vm->kill, 1);
	/* lua_sethook may be called asynchronously (it is what the standalone
	 * interpreter does from a signal handler). */
	lua_sethook(vm->co, vm_hook, LUA_MASKCOUNT, 1);
}

long agd_vm_pid(const struct agd_vm *vm)
{
	return vm->proc ? agd_proc_pid(vm->proc) : 0;
}

size_t agd_vm_memory(const struct agd_vm *vm)
{
	return vm->proc ? agd_proc_memory(vm->proc) : vm->mem;
}

uint64_t agd_vm_instructions(const struct agd_vm *vm)
{
	return vm->proc ? agd_proc_instructions(vm->proc) : vm->instr;
}

void agd_vm_destroy(struct agd_vm **vm_p, int moved)
{
	struct agd_vm *vm;

	if (vm_p == NULL || *vm_p == NULL)
		return;
	vm = *vm_p;
	if (vm->proc != NULL) {
		agd_proc_destroy(&vm->proc);
		free(vm);
		*vm_p = NULL;
		return;
	}
#if AGD_HAVE_ENGINE
	if (moved)
		mig_state_forget_finalizers(vm->L);
#else
	(void)moved;
#endif
	/* Finalizers the agent left run now, with the quota lifted but the
	 * hook armed: one that loops is stopped by an error (lua_close turns
	 * it into a warning), so no agent can hold a worker here. */
	vm->mem_limit = (size_t)-1;
	if (!atomic_load(&vm->kill)) {
		snprintf(vm->kill_reason, sizeof vm->kill_reason, "closing");
		atomic_store(&vm->kill, 1);
	}
	lua_sethook(vm->L, vm_hook, LUA_MASKCOUNT, 1000);
	lua_close(vm->L);
	free(vm);
	*vm_p = NULL;
}

/* ------------------------------------------------ JSON to agent messages */

#if AGD_HAVE_ENGINE
struct json_args {
	const struct agd_json *doc;    /* borrowed */
	const struct agd_json_val *v;  /* borrowed */
	struct mig_buf *out;           /* where the encoding goes */
	int rc;                        /* result */
	char *err;                     /* message */
	size_t err_len;
	int with_n;                    /* [call] an array gets `n`, its length (call arguments) */
};

/* Builds the Lua value of a JSON value without recursion: the parser caps
 * depth at AGD_JSON_DEPTH_MAX, and this walks with an explicit stack. */
static int json_build(lua_State *L)
{
	struct json_args *j = lua_touserdata(L, 1);
	const struct agd_json_val *stack[AGD_JSON_DEPTH_MAX + 1];
	const struct agd_json_val *cur[AGD_JSON_DEPTH_MAX + 1];
	lua_Integer idx[AGD_JSON_DEPTH_MAX + 1];
	int sp = 0;
	const struct agd_json_val *v = j->v;

	luaL_checkstack(L, AGD_JSON_DEPTH_MAX + 8, "json");
	for (;;) {
		int container = v->type == AGD_JSON_ARR || v->type == AGD_JSON_OBJ;

		switch (v->type) {
		case AGD_JSON_NULL: lua_pushnil(L); break;
		case AGD_JSON_BOOL: lua_pushboolean(L, v->boolean); break;
		case AGD_JSON_NUM:
			if (v->num == floor(v->num) && fabs(v->num) < 9007199254740992.0)
				lua_pushinteger(L, (lua_Integer)v->num);
			else
				lua_pushnumber(L, v->num);
			break;
		case AGD_JSON_STR: lua_pushlstring(L, v->str, v->str_len); break;
		default: lua_createtable(L, v->type == AGD_JSON_ARR ? (int)v->count : 0,
					 v->type == AGD_JSON_OBJ ? (int)v->count : 0);
		}
		if (container && v->count > 0) {
			stack[sp] = v;
			cur[sp] = agd_json_first(j->doc, v);
			idx[sp] = 1;
			sp++;
			v = cur[sp - 1];
			continue;
		}
		/* Store the finished value into its parent, climbing as long as
		 * parents are finished too. */
		while (sp > 0) {
			const struct agd_json_val *p = stack[sp - 1];
			const struct agd_json_val *item = cur[sp - 1];

			if (p->type == AGD_JSON_ARR) {
				lua_rawseti(L, -2, idx[sp - 1]);
			} else {
				lua_pushlstring(L, item->key, item->key_len);
				lua_insert(L, -2);
				lua_rawset(L, -3);
			}
			idx[sp - 1]++;
			cur[sp - 1] = agd_json_next(j->doc, item);
			if (cur[sp - 1] != NULL)
				break;
			sp--;
		}
		if (sp == 0)
			break;
		v = cur[sp - 1];
	}
	if (j->with_n && j->v->type == AGD_JSON_ARR) {
		lua_pushinteger(L, (lua_Integer)j->v->count);
		lua_setfield(L, -2, "n");
	}
	{
		struct mig_error e;

		j->rc = mig_data_encode(L, -1, j->out, &e);
		if (j->rc != 0)
			snprintf(j->err, j->err_len, "%s", e.msg);
	}
	return 0;
}
#endif

#if AGD_HAVE_ENGINE
/* Runs fn(ud) in a throw-away Lua state of its own (the JSON conversions
 * build Lua values to encode them, or decode values to write them). On a
 * Lua error, its message goes to err when err_len > 0. Returns 0, or
 * AGD_ERR_NOMEM when the state cannot be made or fn raised. */
static int scratch_run(lua_CFunction fn, void *ud, char *err, size_t err_len)
{
	struct agd_vm scratch;
	lua_State *L;
	int rc;

	memset(&scratch, 0, sizeof scratch);
	scratch.mem_limit = 256u << 20;
	L = mig_lua_newstate_random(vm_alloc, &scratch);
	if (L == NULL)
		return AGD_ERR_NOMEM;
	lua_pushcfunction(L, fn);
	lua_pushlightuserdata(L, ud);
	rc = lua_pcall(L, 1, 0, 0);
	if (rc != LUA_OK && err_len > 0)
		snprintf(err, err_len, "%s", lua_tostring(L, -1));
	lua_close(L);
	return rc == LUA_OK ? 0 : AGD_ERR_NOMEM;
}
#endif

int agd_msg_from_json(const struct agd_json *doc, const struct agd_json_val *v,
		      struct mig_buf *out, char *err, size_t err_len)
{
#if AGD_HAVE_ENGINE
	struct json_args j = { doc, v, out, 0, err, err_len, 0 };
	int rc = scratch_run(json_build, &j, err, err_len);

	if (rc != 0)
		return rc;
	return j.rc != 0 ? AGD_ERR_ARG : 0;
#else
	uint8_t *p;

	if (v->type != AGD_JSON_STR) {
		snprintf(err, err_len, "this build carries string messages only");
		return AGD_ERR_UNAVAILABLE;
	}
	p = malloc(v->str_len ? v->str_len : 1);
	if (p == NULL)
		return AGD_ERR_NOMEM;
	memcpy(p, v->str, v->str_len);
	agd_buf_free(out);
	out->data = p;
	out->len = out->cap = v->str_len;
	(void)doc;
	return 0;
#endif
}

/* ----------------------------------------- call arguments and results as JSON */

int agd_call_args_from_json(const struct agd_json *doc, const struct agd_json_val *v,
			    struct mig_buf *out, char *err, size_t err_len)
{
#if AGD_HAVE_ENGINE
	struct json_args j = { doc, v, out, 0, err, err_len, 1 };
	int rc;

	if (v->type != AGD_JSON_ARR) {
		snprintf(err, err_len, "\"args\" must be an array");
		return AGD_ERR_ARG;
	}
	if (v->count > CALL_VALUES_MAX) {
		snprintf(err, err_len, "at most %d arguments", CALL_VALUES_MAX);
		return AGD_ERR_ARG;
	}
	if ((rc = scratch_run(json_build, &j, err, err_len)) != 0)
		return rc;
	return j.rc != 0 ? AGD_ERR_ARG : 0;
#else
	(void)doc;
	(void)v;
	(void)out;
	snprintf(err, err_len, "calls need the state engine");
	return AGD_ERR_UNAVAILABLE;
#endif
}

#if AGD_HAVE_ENGINE
#define JSON_OUT_DEPTH 32     /* deeper tables are written as null */
#define JSON_OUT_KEYS 4096    /* keys of one object written, at most */

struct results_args {
	const void *data;     /* encoded {n=, ...} */
	size_t len;
	struct agd_jw *w;     /* where the JSON goes */
	int rc;               /* 0 or agd_err */
};

static int key_cmp(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Writes the value at idx. Tables whose keys are exactly 1..n become
 * arrays; others objects with their string and number keys, sorted (so
 * equal tables give equal text: agentctl's majority compares it); cycles
 * and depth past JSON_OUT_DEPTH become null. */
static void value_json(lua_State *L, int idx, struct agd_jw *w, int depth)
{
	idx = lua_absindex(L, idx);
	switch (lua_type(L, idx)) {
	case LUA_TBOOLEAN: agd_jw_bool(w, lua_toboolean(L, idx)); return;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			agd_jw_int(w, (long long)lua_tointeger(L, idx));
		else
			agd_jw_num(w, lua_tonumber(L, idx));
		return;
	case LUA_TSTRING: {
		size_t len;
		const char *s = lua_tolstring(L, idx, &len);

		agd_jw_strn(w, s, len);
		return;
	}
	case LUA_TTABLE: break;
	default: agd_jw_null(w); return;
	}
	if (depth >= JSON_OUT_DEPTH) {
		agd_jw_null(w);
		return;
	}
	luaL_checkstack(L, 8, "json");
	{
		lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
		int seq = 1;

		lua_pushnil(L);
		while (lua_next(L, idx) != 0) {
			count++;
			if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 ||
			    lua_tointeger(L, -2) > n)
				seq = 0;
			lua_pop(L, 1);
		}
		if (seq && count == n && n > 0) {
			agd_jw_arr_begin(w);
			for (lua_Integer i = 1; i <= n; i++) {
				lua_rawgeti(L, idx, i);
				value_json(L, -1, w, depth + 1);
				lua_pop(L, 1);
			}
			agd_jw_arr_end(w);
			return;
		}
	}
	{
		/* Keys as strings in a table on the stack (anchors them), then
		 * sorted through an array of pointers into it. */
		size_t nk = 0;
		const char **keys;
		int kt;

		lua_newtable(L);
		kt = lua_gettop(L);
		lua_pushnil(L);
		while (lua_next(L, idx) != 0 && nk < JSON_OUT_KEYS) {
			lua_pop(L, 1);
			if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
				lua_pushvalue(L, -1);
				lua_pushvalue(L, -1);
				lua_tolstring(L, -1, NULL); /* a copy: converting the key itself would break next */
				lua_rawseti(L, kt, (lua_Integer)++nk);
				lua_pop(L, 1);
			}
		}
		lua_settop(L, kt);
		keys = lua_newuserdatauv(L, (nk ? nk : 1) * sizeof *keys, 0);
		for (size_t i = 0; i < nk; i++) {
			lua_rawgeti(L, kt, (lua_Integer)i + 1);
			keys[i] = lua_tostring(L, -1);
			lua_pop(L, 1);
		}
		qsort(keys, nk, sizeof *keys, key_cmp);
		agd_jw_obj_begin(w);
		for (size_t i = 0; i < nk; i++) {
			agd_jw_key(w, keys[i]);
			/* The value: by the string key, or by the number it
			 * came from. */
			lua_pushstring(L, keys[i]);
			if (lua_rawget(L, idx) == LUA_TNIL) {
				lua_pop(L, 1);
				lua_pushstring(L, keys[i]);
				if (lua_stringtonumber(L, keys[i]) != 0) {
					lua_remove(L, -2);
					lua_rawget(L, idx);
				}
			}
			value_json(L, -1, w, depth + 1);
			lua_pop(L, 1);
		}
		agd_jw_obj_end(w);
		lua_settop(L, kt - 1);
	}
}

static int results_build(lua_State *L)
{
	struct results_args *r = lua_touserdata(L, 1);
	struct mig_error e;
	lua_Integer n;

	if (mig_data_decode(L, r->data, r->len, &e) != 0 || !lua_istable(L, -1)) {
		r->rc = AGD_ERR_ARG;
		return 0;
	}
	lua_getfield(L, -1, "n");
	n = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : (lua_Integer)lua_rawlen(L, -2);
	lua_pop(L, 1);
	if (n < 0 || n > CALL_VALUES_MAX)
		n = 0;
	agd_jw_key(r->w, "result");
	lua_rawgeti(L, -1, 1);
	value_json(L, -1, r->w, 0);
	lua_pop(L, 1);
	agd_jw_key(r->w, "results");
	agd_jw_arr_begin(r->w);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, i);
		value_json(L, -1, r->w, 0);
		lua_pop(L, 1);
	}
	agd_jw_arr_end(r->w);
	r->rc = 0;
	return 0;
}
#endif

int agd_call_results_json(const void *data, size_t len, struct agd_jw *w)
{
#if AGD_HAVE_ENGINE
	struct results_args r = { data, len, w, AGD_ERR_LUA };
	int rc = scratch_run(results_build, &r, NULL, 0);

	return rc != 0 ? rc : r.rc;
#else
	(void)data;
	(void)len;
	(void)w;
	return AGD_ERR_UNAVAILABLE;
#endif
}
