/*
 * agd_park.h: an agent parked until an answer comes from elsewhere.
 *
 * Some host calls wait for another host: a method call through a proxy
 * (agent.proxy), a resource operation through a global reference (GR). The
 * agent must not hold its worker while it waits (docs/runtime.md: no agent
 * blocks a worker), so the host function takes a token, sends its request
 * tagged with it, and parks: it yields the agent's main coroutine. The
 * dispatcher, when the answer arrives, hands it to agd_rt_unpark; the
 * runtime makes the agent runnable and the continuation turns the answer
 * into the host function's results.
 *
 * Shared by the call layer (agd_call) and the resource glue (agd_res,
 * res_lua); implemented by the runtime (agd_rt, agd_lua).
 *
 * Rules:
 * - A token is unique among one agent's parks on this host (a counter
 *   carried in the agent's vm); requests carry (agent id, token), and an
 *   answer for a token the agent no longer waits on is dropped.
 * - An answer that arrives before the agent has finished yielding (the
 *   request can be answered faster than the slice ends) is kept and taken
 *   at the park.
 * - A parked agent is not moved or passivated: a push or passivation waits
 *   until the answer or the timeout resumes it (its safe point), so an
 *   answer always finds the agent where it asked.
 * - The timeout resumes the agent with code AGD_ERR_TIMEOUT; a kill ends
 *   a parked agent like any other.
 */
#ifndef AGD_PARK_H
#define AGD_PARK_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

struct agd_rt;

/* From a host function running in an agent: a fresh token for its next
 * park. */
uint64_t agd_park_token(lua_State *L);

/* From a host function running in the agent's main coroutine: yields the
 * agent until the answer for `token` or `timeout_s` seconds (> 0). Raises a
 * Lua error where the agent cannot block (a nested coroutine, a C
 * boundary). When the agent runs again, k (registered with the engine by
 * mig_cont_add, so that a parked agent's frame is nameable) is called with
 * ctx and three values on top of the stack: data (a string, or nil when
 * the answer carried none), code (integer: 0, or an agd_err such as
 * AGD_ERR_TIMEOUT or AGD_ERR_REMOTE) and text (a string, maybe empty). */
int agd_park_yield(lua_State *L, uint64_t token, double timeout_s, lua_KContext ctx,
		   lua_KFunction k);

/* Any thread (normally the dispatcher): the answer for agent's park
 * `token`. text and data are copied (either may be NULL). Returns 0, or
 * AGD_ERR_NOTFOUND when the agent is not on this host. */
int agd_rt_unpark(struct agd_rt *rt, const char *agent, uint64_t token, int code, const char *text,
		  const void *data, size_t len);

#endif
