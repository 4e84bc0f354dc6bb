/*
 * agd_moblua.h: the Lua half of agent.migrate and agent.clone, kept out of
 * agd_lua.c (whose owner is the runtime's) and called from it: the request
 * a yielding agent leaves in its root table, the status the slice ends
 * with, and the values the call returns when the agent resumes
 * (docs/agent-api.md, "Moving itself"; docs/protocol.md, "Moves an agent
 * asks for").
 *
 * The request lives in the agent's root table (field "migres") from the
 * yield until the next resume, so it travels inside the persisted state:
 * the target resumes with it and tells from its `from` host that it has
 * arrived; the source, resuming with the same request, knows the move did
 * not happen (or, for a clone, that the copy left) and asks agd_mobility
 * for the outcome.
 *
 * Thread-safety: called by the worker that has the agent on CPU, on its
 * lua_State, like the rest of the bindings.
 */
#ifndef AGD_MOBLUA_H
#define AGD_MOBLUA_H

#include "agd_rt.h"
#include "agd_vm.h"

#include <lua.h>

/* agent.migrate(host [, opts]) / agent.clone(host [, opts]) before the
 * yield: checks the arguments (misuse raises), and either records the
 * request in the root table (registry ref root_ref) and returns 0 (the
 * caller then yields), or pushes nil, message, code for an expected
 * failure (no peer channel, unknown host, this host) and returns 3. */
int agd_moblua_request(lua_State *L, struct agd_rt *rt, int root_ref, int clone);

/* After a yield for a move: fills res (status AGD_VM_MIGRATE, reason the
 * target host, move_flags) from the request in the root table. */
void agd_moblua_yielded(lua_State *L, int root_ref, struct agd_vm_result *res);

/* Before resuming co without a message: when a move request is pending in
 * the root table, clears it and pushes on co what the call returns here
 * (see agd_moblua.c); returns how many values (0 when none was pending).
 * L is the agent's main state; a is the agent. */
int agd_moblua_resume(lua_State *L, lua_State *co, int root_ref, struct agd_rt *rt,
		      struct agd_agent *a);

#endif
