/*
 * res_lua_mig.c: hands resource handles to the strong-mobility engine
 * (migrate/mig_state.h). Apart from res_lua.c so that a program that does
 * not link the engine's state code (or a test of handles alone) never pulls
 * in mig_udata_register.
 */
#include "res_lua.h"

#include "mig_state.h"

#include <stdio.h>

static int map(int mig_code)
{
	return mig_code == MIG_ERR_NOMEM ? RES_ERR_NOMEM : RES_ERR_ARG;
}

int res_lua_mobility(lua_State *L)
{
	const luaL_Reg *f;
	char name[64];
	int rc;

	rc = mig_udata_register(L, RES_LUA_TNAME, res_lua_persist, res_lua_restore);
	if (rc != 0)
		return map(rc);
	/* Methods are pushed as light C functions by __index; an agent may keep
	 * one in a variable, so each must have a stable name on every host. */
	for (f = res_lua_functions(); f->name != NULL; f++) {
		snprintf(name, sizeof name, "%s.%s", RES_LUA_TNAME, f->name);
		lua_pushcfunction(L, f->func);
		rc = mig_perm_add(L, name, -1);
		lua_pop(L, 1);
		if (rc != 0)
			return map(rc);
	}
	/* A parked op's frame names its continuation. */
	rc = mig_cont_add(L, RES_LUA_TNAME ".resumed", res_lua_resumed);
	return rc != 0 ? map(rc) : 0;
}
