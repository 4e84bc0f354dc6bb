/*
 * mig_lua.c: Lua states with a chosen seed (see mig_lua.h).
 */
#include "mig_lua.h"

#include "mig_seed.h"

#include <lstate.h>

lua_State *mig_lua_newstate(lua_Alloc f, void *ud, unsigned int seed)
{
	lua_State *L;

	mig_seed_set_next(seed);
	L = lua_newstate(f, ud);
	/* On failure lua_newstate may not have reached luai_makeseed. */
	mig_seed_clear_next();
	return L;
}

lua_State *mig_lua_newstate_random(lua_Alloc f, void *ud)
{
	mig_seed_clear_next();
	return lua_newstate(f, ud);
}

unsigned int mig_lua_seed(lua_State *L)
{
	return G(L)->seed;
}
