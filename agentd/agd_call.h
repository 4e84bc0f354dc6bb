/*
 * agd_call.h: access transparency: method calls answered by an agent
 * wherever it is (docs/agent-api.md, "Methods and proxies";
 * docs/protocol.md, "Calls"; docs/control-protocol.md, "call").
 *
 * An agent exports methods (agent.export); a caller (an agent through
 * agent.proxy, or agentctl through the control command `call`) sends a
 * CALL, which agd_dir routes, holds and deduplicates exactly like a
 * DELIVER, so that it reaches the agent wherever it is, also while it
 * moves, and runs once. The callee's runtime runs the method between the
 * agent's slices (agd_rt_call_in, agd_vm_call) and this module sends the
 * REPLY straight to the caller's host, where it answers the waiting control
 * request or unparks the calling agent (agd_park.h). A REPLY nobody waits
 * for (answered already, timed out) is dropped.
 *
 * Threads: agd_call_start and the runtime's reply function run on workers;
 * they copy their request into a queue under the module's lock and ring an
 * eventfd. Everything else runs on the dispatcher.
 *
 * Never: run agent code, take the runtime's lock while holding this
 * module's, answer a call twice.
 */
#ifndef AGD_CALL_H
#define AGD_CALL_H

#include "agd_wire.h"

#include <stddef.h>
#include <stdint.h>

struct agd_call;
struct agd_ctl;
struct agd_dir;
struct agd_loop;
struct agd_rt;

/* Sends a peer message to host (agd_mobility's send). */
typedef int (*agd_call_send_fn)(void *ud, const char *host, const struct agd_wire_msg *m);

/* Creates the call layer of a daemon with a peer channel: registers the
 * control command `call`, the runtime's reply function and an eventfd on
 * the loop. rt, loop, ctl and dir are borrowed and must outlive it.
 * Returns 0 or a negative agd_err. */
int agd_call_new(struct agd_rt *rt, struct agd_loop *loop, struct agd_ctl *ctl, const char *host,
		 struct agd_dir *dir, agd_call_send_fn send, void *send_ud, struct agd_call **out);
/* Answers waiting control requests "stopping", frees everything. NULL-safe. */
void agd_call_destroy(struct agd_call **c_p);

/* Dispatcher: REPLY from a peer. Returns 1 if m was one (handled). */
int agd_call_input(struct agd_call *c, const char *from, const struct agd_wire_msg *m);

/* Dispatcher, agd_dir's `call` op: a CALL for agent living here. Returns
 * 0 (queued), AGD_DIR_INFLIGHT (being moved away: hold it) or a negative
 * agd_dir_code. */
int agd_call_deliver(struct agd_call *c, const char *agent, const char *caller_host, uint64_t corr,
		     const char *method, const uint8_t *data, size_t len);

/* Dispatcher, agd_dir's `called` op: how a CALL's delivery ended. */
void agd_call_sent(struct agd_call *c, uint64_t corr, const char *agent, int code, const char *host);

/* Dispatcher, periodically: ends calls past their deadline. */
void agd_call_tick(struct agd_call *c, uint64_t now_ms);

/* Worker (agent.proxy's method call): starts a call of callee.method with
 * args (encoded {n=, ...}, copied) on behalf of agent `caller`, whose
 * answer unparks caller's park `token` (agd_park.h), at most timeout_s
 * seconds later. hint: a host to try first, or NULL. Returns 0, or
 * AGD_ERR_UNAVAILABLE (no call layer on this daemon), AGD_ERR_TOOBIG,
 * AGD_ERR_ARG, AGD_ERR_NOMEM. Any thread; never takes the runtime's lock. */
int agd_call_start(struct agd_rt *rt, const char *caller, uint64_t token, const char *callee,
		   const char *method, const void *args, size_t len, double timeout_s,
		   const char *hint);

/* Calls waiting for an answer at this host (callers' side). */
size_t agd_call_pending(const struct agd_call *c);

#endif
