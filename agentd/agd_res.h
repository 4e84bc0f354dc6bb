/*
 * agd_res.h: the daemon's resource glue: what happens to an agent's
 * resource bindings when it leaves a host and when it lands on another
 * (docs/resources.md, "The migration sequence"), and global references (GR)
 * carried over the encrypted peer channel (docs/protocol.md, RES_OP and
 * RES_REPLY).
 *
 * The library (resources/) decides and does the I/O of each action; this
 * file gathers the situation (the source registry's facts, the target's
 * kinds and identifiers, whether a binding's home answers), logs every
 * decision (event res.decide), carries exported content in the transfer's
 * resource segment, imports and rebinds on the target, commits a move only
 * after the transfer committed, keeps bind counts, and answers other hosts'
 * resource operations with res_exec_op.
 *
 * Threads: an agd_res is made and fed peer messages on the dispatcher;
 * agd_res_prepare and the blocking GR transport run on worker threads and
 * wait (bounded) for the dispatcher to send and receive for them. A GR op
 * of an agent that can yield does not wait: it parks the agent
 * (agd_park.h), the dispatcher sends the op and hands the RES_REPLY to
 * agd_rt_unpark. The host's
 * registry is used only under the runtime's resource lock
 * (agd_rt_res_lock); that lock is never held while waiting for a peer,
 * so the dispatcher may always take it. Internal state is guarded by one
 * mutex, always taken after the resource lock, never before.
 *
 * Never: run agent code, touch a Lua state, or hold a lock across a peer
 * round trip.
 */
#ifndef AGD_RES_H
#define AGD_RES_H

#include "agd_rt.h"
#include "agd_wire.h"
#include "res_action.h"
#include "res_lua.h"

#include <stddef.h>
#include <stdint.h>

struct agd_res;
struct agd_ctl;
struct agd_loop;

/* How long a GR op waits (parked, or on its worker where it cannot park)
 * for a peer's RES_REPLY before it reports the home unreachable, and how
 * long a worker waits for a target's or home's facts while an agent is
 * being prepared to leave. */
#define AGD_RES_CALL_TIMEOUT_MS 2000
#define AGD_RES_PROBE_TIMEOUT_MS 1000
/* A host that did not answer is waited for at most AGD_RES_DOWN_TIMEOUT_MS
 * during the AGD_RES_DOWN_MS that follow (until it answers again). */
#define AGD_RES_DOWN_TIMEOUT_MS 250
#define AGD_RES_DOWN_MS 5000

/* Longest history (decision lines) an agent carries across hops. */
#define AGD_RES_HISTORY_MAX 32
/* Most bindings of one agent the glue tracks (the manifest's cap). */
#define AGD_RES_BINDINGS_MAX 16

/* Sends one peer message (the dispatcher's send, agd_mobility's send_to). */
typedef int (*agd_res_send_fn)(void *ud, const char *host, const struct agd_wire_msg *m);

/*
 * Creates the glue for runtime rt (its registry may be NULL), on the
 * dispatcher's loop, sending through send(send_ud, ...), and registers the
 * control commands `policy` and `bindings` on ctl (may be NULL). The host
 * policy is built from cfg's [policy] section (a bad entry is logged and
 * ignored: the config reader accepted it as free-form). The glue is found
 * from rt by the Lua bindings' hooks (agd_res_vm_env, agd_res_note_bind).
 * Returns 0 or a negative agd_err; *out is the caller's (agd_res_destroy).
 * Dispatcher thread.
 */
int agd_res_new(struct agd_rt *rt, struct agd_loop *loop, struct agd_ctl *ctl,
		const struct agd_config *cfg, agd_res_send_fn send, void *send_ud,
		struct agd_res **out);
/* Fails every waiting call, frees everything. NULL-safe; nulls *r. */
void agd_res_destroy(struct agd_res **r);

/* Dispatcher: handles RES_OP (runs the op on this host's registry and
 * answers RES_REPLY) and RES_REPLY (wakes the waiting worker). Returns 1 if
 * the message was one of these, 0 if not. */
int agd_res_input(struct agd_res *r, const char *from, const struct agd_wire_msg *m);

/* Dispatcher, when a transfer of agent to host `to` is asked for (push,
 * pull, clone: kind is AGD_KIND_*), before the agent is suspended. */
void agd_res_leaving(struct agd_res *r, const char *agent, const char *to, int kind);

/* Worker, once the agent is suspended (the runtime's suspend callback):
 * decides the action for each binding (asking the target for its facts and
 * the homes of remote bindings whether they answer), logs the decisions,
 * exports MV/CP content, and keeps the resource segment for
 * agd_res_segment. Returns 0 or a negative agd_err (nothing kept). */
int agd_res_prepare(struct agd_res *r, const char *agent);

/* Dispatcher: the segment agd_res_prepare kept for agent (borrowed, valid
 * until agd_res_left), or NULL with *len 0. */
const uint8_t *agd_res_segment(struct agd_res *r, const char *agent, size_t *len);

/* Dispatcher, when the attempt ended (rc 0: committed at `host`): commits
 * moves (res_move_commit leaves a forward), updates bind counts, forgets
 * the agent's bindings here (except for a clone's original); on failure
 * drops the prepared segment, nothing else changes. */
void agd_res_left(struct agd_res *r, const char *agent, int rc, const char *host);

/* Dispatcher, when a TRANSFER of agent at epoch comes from `from`, before
 * the transfer protocol stores it and acknowledges (the acknowledgement is
 * what lets the source commit a move and drop its content): imports the
 * MV/CP content of its resource segment seg[len] into this host's
 * registry, durably, and keeps which binding got which resource for
 * agd_res_arrive. Returns 0 (imported; or nothing to import; or a
 * duplicate, stale or malformed transfer, which the protocol answers), or
 * a negative agd_err with why[why_len] filled: the transfer must be
 * refused, and nothing was kept here. */
int agd_res_stage(struct agd_res *r, const char *agent, const char *from, uint64_t epoch,
		  const uint8_t *seg, size_t len, char *why, size_t why_len);

/* Dispatcher, after the transfer protocol handled a TRANSFER or ABORT of
 * agent at epoch: if the store does not hold agent as an arrival at that
 * epoch (the transfer was refused, or aborted), removes what
 * agd_res_stage imported for it. */
void agd_res_stage_settle(struct agd_res *r, const char *agent, uint64_t epoch);

/* Dispatcher, when an agent lands (before the runtime restores it):
 * takes the MV/CP content agd_res_stage imported (imports it now if there
 * is none: an arrival stored before a restart of an older daemon), rebinds RB to this host's resource of the kind,
 * counts binders, and keeps the rebind context agd_res_vm_env gives its
 * restore. seg may be NULL (no bindings). Returns 0 or a negative agd_err
 * (a malformed segment; the agent still lands, with no binding context). */
int agd_res_arrive(struct agd_res *r, const char *agent, const char *from, const uint8_t *seg,
		   size_t len);

/* ---- hooks for the Lua bindings (agd_lua.c) ---- */

/* Worker, while making agent a's vm: sets env's transport (GR over the
 * peer channel), its park (GR ops park the agent: agd_park.h) and, when
 * restoring, its rebind context; writes the
 * decisions of the last hop to the agent's log; sets *uses_res when the
 * restored agent may hold handles (its slices must take the resource
 * lock). Does nothing when rt has no glue. */
void agd_res_vm_env(struct agd_rt *rt, struct agd_agent *a, struct res_lua_env *env,
		    int *uses_res, int restoring);

/* Worker: the binding `name` of agent as its last arrival here left it
 * (the action the source chose, applied), so that agent.resource after a
 * hop (weak mobility starts over) gives that rather than resolving the
 * manifest again. 0 with *out, or AGD_ERR_NOTFOUND (resolve as usual). */
int agd_res_bound(struct agd_rt *rt, const char *agent, const char *name, struct res_bind *out);

/* Worker, with the resource lock held: agent resolved binding b through
 * agent.resource; its manifest's action list for it is acts[nacts]
 * (enum res_action values). Counts it as a binder of a local resource. */
void agd_res_note_bind(struct agd_rt *rt, const char *agent, const struct res_bind *b,
		       const uint8_t *acts, size_t nacts);

/* The reference to resolve for a manifest binding's target: manifests name
 * the device kinds "device" (docs/segments.md), the resources library
 * names printer or sensor; "device" becomes the kind of this host's first
 * device (printer first), anything else is returned as is. Resource lock
 * held (reads the registry, which may be NULL). */
const char *agd_res_target_ref(struct res_registry *reg, const char *target);

/* ---- the resource segment (docs/protocol.md, "Resource segment") ---- */

/* One binding as it travels. */
struct agd_res_item {
	struct res_bind bind;                   /* current binding (source's view) */
	struct res_action_list manifest;        /* the manifest's list, n == 0: none */
	const uint8_t *blob;                    /* MV/CP export (borrowed), or NULL */
	size_t blob_len;                        /* its bytes */
	char endpoint[256];                     /* the home's peer endpoint, or "" */
};

/* Encodes n items and nl history lines (lines over 511 bytes are cut) as
 * a segment into *out (malloc'd; the caller frees it). Returns 0,
 * AGD_ERR_ARG (a count, string or blob over its cap), AGD_ERR_NOMEM or
 * AGD_ERR_TOOBIG. Pure; what agd_res_prepare sends. */
int agd_res_segment_build(const struct agd_res_item *items, size_t n, const char *const *lines,
			  size_t nl, uint8_t **out, size_t *out_len);

/* Decodes a segment: calls item(ud, &it) for each binding and line(ud, s)
 * for each history line, in order. Returns 0, AGD_ERR_SEGMENT (malformed,
 * truncated or over a cap) or the first nonzero value a callback returned.
 * Pure; exposed for tests. */
int agd_res_segment_parse(const uint8_t *p, size_t len,
			  int (*item)(void *ud, const struct agd_res_item *it),
			  int (*line)(void *ud, const char *s), void *ud);

#endif
