/*
 * fuzz_state_restore: libFuzzer target for the execution-state decoder.
 * Each input goes to mig_state_peek and then mig_state_restore on a fresh
 * state prepared exactly as mobility-check prepares one (same libraries,
 * permanents and environment, mobility_env.h), with the corpus script
 * tests/migrate/corpus/state_mix.lua registered as the external source, so
 * that function records of the seed states (dumped by
 * `mobility-check --dump-states` from that script) resolve.
 *
 * When a restore succeeds, the root is checked as mobility-check would and,
 * if it is one, the script's coroutine is resumed for a bounded number of
 * instructions: a state the engine accepted must also be safe to run. The
 * run is disarmed: os and io lose everything that touches files, processes
 * or the exit, and output goes nowhere. Memory is capped per input.
 *
 * Any crash, sanitizer report or leak is a finding; refusals are not.
 */
#include "mobility_env.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Memory one input may use, and instructions a resumed script may run. */
#define FUZZ_MEM_LIMIT ((size_t)256 << 20)
#define FUZZ_HOOK_EVERY 1000
#define FUZZ_HOOK_BUDGET 200

/* The registered source, read once. */
static char *fuzz_src;
static size_t fuzz_srclen;

/* Per-input limits, reached from the allocator and the hook. */
struct budget {
	size_t used;  /* bytes allocated now */
	int hooks;    /* count-hook calls so far */
};

static void *limited_alloc(void *ud, void *p, size_t osize, size_t nsize)
{
	struct budget *b = ud;
	void *np;

	if (p == NULL)
		osize = 0;
	if (nsize == 0) {
		free(p);
		b->used -= osize;
		return NULL;
	}
	if (nsize > osize && b->used + (nsize - osize) > FUZZ_MEM_LIMIT)
		return NULL;
	np = realloc(p, nsize);
	if (np != NULL)
		b->used = b->used - osize + nsize;
	return np;
}

static int refuse(lua_State *L)
{
	return luaL_error(L, "disabled in the fuzzer");
}

static int nothing(lua_State *L)
{
	(void)L;
	return 0;
}

/* Disarms the libraries before the engine names them (the names stay, so
 * states referring to them still restore). */
static int disarm(lua_State *L)
{
	static const char *const os_off[] = { "execute", "exit", "remove", "rename", "tmpname",
					      "getenv", "setlocale" };
	static const char *const io_off[] = { "open", "popen", "lines", "input", "output",
					      "tmpfile", "read", "close" };
	size_t i;

	lua_getglobal(L, "os");
	for (i = 0; i < sizeof os_off / sizeof os_off[0]; i++) {
		lua_pushcfunction(L, refuse);
		lua_setfield(L, -2, os_off[i]);
	}
	lua_getglobal(L, "io");
	for (i = 0; i < sizeof io_off / sizeof io_off[0]; i++) {
		lua_pushcfunction(L, refuse);
		lua_setfield(L, -2, io_off[i]);
	}
	lua_pushcfunction(L, nothing);
	lua_setfield(L, -2, "write");
	lua_pop(L, 2);
	lua_pushcfunction(L, nothing);
	lua_setglobal(L, "print");
	lua_pushcfunction(L, refuse);
	lua_setglobal(L, "dofile");
	lua_pushcfunction(L, refuse);
	lua_setglobal(L, "loadfile");
	lua_pushcfunction(L, refuse);
	lua_setglobal(L, "require");
	/* File handles' methods write nowhere, read nothing. */
	luaL_getmetatable(L, LUA_FILEHANDLE);
	if (lua_istable(L, -1) && lua_getfield(L, -1, "__index") == LUA_TTABLE) {
		lua_pushcfunction(L, nothing);
		lua_setfield(L, -2, "write");
		lua_pushcfunction(L, refuse);
		lua_setfield(L, -2, "read");
		lua_pushcfunction(L, refuse);
		lua_setfield(L, -2, "lines");
		lua_pushcfunction(L, refuse);
		lua_setfield(L, -2, "close");
		lua_pushcfunction(L, refuse);
		lua_setfield(L, -2, "seek");
		lua_pushcfunction(L, refuse);
		lua_setfield(L, -2, "setvbuf");
	}
	lua_settop(L, 0);
	return 0;
}

static void hook(lua_State *L, lua_Debug *ar)
{
	struct budget *b = *(struct budget **)lua_getextraspace(L);

	(void)ar;
	if (++b->hooks > FUZZ_HOOK_BUDGET)
		luaL_error(L, "instruction budget spent");
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (mob_script_read(FUZZ_STATE_SOURCE, &fuzz_src, &fuzz_srclen) != 0) {
		fprintf(stderr, "fuzz_state_restore: cannot read %s\n", FUZZ_STATE_SOURCE);
		abort();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct budget b = { 0, 0 };
	struct mig_state_info info;
	struct mig_error err = { 0 }; /* the engine keeps the first failure: start clear */
	struct mob_err e;
	uint8_t hash[MIG_HASH_LEN];
	unsigned int seed = 0;
	lua_State *L, *co;
	lua_Integer moves;
	int nres;

	/* peek must agree with itself; restore checks everything again. */
	if (mig_state_peek(data, size, &info) == 0)
		seed = info.seed;
	L = mig_lua_newstate(limited_alloc, &b, seed);
	if (L == NULL)
		return 0;
	*(struct budget **)lua_getextraspace(L) = &b;
	if (mob_prepare(L, disarm, &e) != 0 ||
	    mig_source_add(L, fuzz_src, fuzz_srclen, "@state_mix.lua", 1, hash) != 0) {
		/* Preparing never fails but for memory, which is not a finding. */
		lua_close(L);
		return 0;
	}
	/* Restored threads inherit the hook from the main thread. */
	lua_sethook(L, hook, LUA_MASKCOUNT, FUZZ_HOOK_EVERY);
	if (mig_state_restore(L, data, size, &err) == 0) {
		if (mob_root_install(L, &co, &moves, &e) == 0) {
			lua_sethook(co, hook, LUA_MASKCOUNT, FUZZ_HOOK_EVERY);
			(void)lua_resume(co, L, 0, &nres);
		}
		lua_settop(L, 0);
	}
	/* Finalizers of the restored objects run here, within the budget. */
	b.hooks = 0;
	lua_close(L);
	return 0;
}
