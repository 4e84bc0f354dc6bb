/*
 * mig_seed.h: the string-hash seed of new Lua states.
 *
 * Lua 5.4 mixes a per-state seed into every string hash, so the order in which
 * `next` visits a table's string keys depends on it. A restored agent must see
 * the order it saw before it moved, so the restorer creates the new state with
 * the seed the agent had. The pinned Lua is built with luai_makeseed defined
 * to mig_seed_make (see cmake/Lua.cmake); this header is force-included into
 * lstate.c and must stay free of Lua's own headers.
 *
 * Thread-safety: the pending seed is per thread; lua_newstate on one thread
 * never sees a seed set on another.
 */
#ifndef MIG_SEED_H
#define MIG_SEED_H

struct lua_State;

/* Called by lua_newstate: the pending seed if one was set on this thread
 * (and clears it), else a fresh random one. */
unsigned int mig_seed_make(struct lua_State *L);

/* Makes the next lua_newstate on this thread use `seed`. */
void mig_seed_set_next(unsigned int seed);

/* Forgets a pending seed that was not used (on an error path). */
void mig_seed_clear_next(void);

#endif
