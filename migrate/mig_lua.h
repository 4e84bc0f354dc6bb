/*
 * mig_lua.h: creating Lua states whose hidden parameters the engine controls.
 *
 * A state's string-hash seed decides the order of `next` over string keys; an
 * agent carries its seed from host to host so that a traversal in flight goes
 * on in the same order after a move.
 *
 * Thread-safety: all functions are safe on distinct states from distinct
 * threads.
 */
#ifndef MIG_LUA_H
#define MIG_LUA_H

#include <lua.h>

/* Creates a state with allocator f/ud and string-hash seed `seed`. Returns
 * NULL when out of memory. The caller owns the state (lua_close). */
lua_State *mig_lua_newstate(lua_Alloc f, void *ud, unsigned int seed);

/* Creates a state with allocator f/ud and a fresh random seed. */
lua_State *mig_lua_newstate_random(lua_Alloc f, void *ud);

/* The string-hash seed of L's global state. */
unsigned int mig_lua_seed(lua_State *L);

#endif
