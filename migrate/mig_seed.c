/*
 * mig_seed.c: per-thread pending seed for lua_newstate (see mig_seed.h).
 *
 * Compiled into the lua_pinned library itself, because lstate.c calls it.
 * Must not include Lua's headers: lstate.c sees only mig_seed.h.
 */
#include "mig_seed.h"

#include <stddef.h>
#include <sys/random.h>
#include <time.h>

static _Thread_local int pending_set;
static _Thread_local unsigned int pending_seed;

void mig_seed_set_next(unsigned int seed)
{
	pending_seed = seed;
	pending_set = 1;
}

void mig_seed_clear_next(void)
{
	pending_set = 0;
}

unsigned int mig_seed_make(struct lua_State *L)
{
	unsigned int seed;

	if (pending_set) {
		pending_set = 0;
		return pending_seed;
	}
	/* A random seed keeps hash flooding hard for agents' string keys;
	 * the fallback mixes the clock and an address as Lua itself does. */
	if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) == (ssize_t)sizeof seed)
		return seed;
	return (unsigned int)time(NULL) ^ (unsigned int)(size_t)L;
}
