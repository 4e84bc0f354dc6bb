/*
 * agd_balance.h: the daemon-side, receiver-initiated load policy: an idle
 * host pulls agents from the busiest of its peers (docs/protocol.md,
 * "Load balancing"; docs/config.md, [balance]).
 *
 * Every host answers LOAD with LOAD_REPLY: how many agents it has runnable
 * (state running: on a worker or queued for one) and the ids of those it
 * lets go (their manifest allows strong mobility, and their name is in
 * `[balance] agents` when that is set). A host with `[balance] mode = pull`
 * runs a round every `interval`: when it has fewer than `idle_below`
 * runnable agents (counting pulls still under way), it asks its peers for
 * their load, waits for the answers (at most half an interval, 1 s at
 * most), and sends PULL_REQUEST for up to `max_pulls` agents of the busiest
 * peer that has more than `busy_above`, never so many that the peer would
 * end up with fewer than this host. The pull itself is the ordinary
 * transfer (agd_xfer): the source suspends the agent and pushes it, exactly
 * once, or the agent stays where it was.
 *
 * The module decides and sends; it never touches an agent: the runtime is
 * only read (agd_rt_ps_json), the pull goes through ops->pull.
 *
 * Thread-safety: none; the dispatcher thread owns an agd_balance.
 */
#ifndef AGD_BALANCE_H
#define AGD_BALANCE_H

#include "agd_config.h"
#include "agd_rt.h"
#include "agd_wire.h"

#include <stddef.h>
#include <stdint.h>

#define AGD_BALANCE_PEERS_MAX 64      /* peers asked in one round */
#define AGD_BALANCE_OFFER_MAX 32      /* agent ids one LOAD_REPLY carries */
#define AGD_BALANCE_PENDING_MS 5000   /* a pull not arrived by then no longer counts */

struct agd_balance_ops {
	/* Sends m to host; 0 or a negative code. */
	int (*send)(void *ud, const char *host, const struct agd_wire_msg *m);
	/* Asks host to push agent here (PULL_REQUEST); 0 or a negative code. */
	int (*pull)(void *ud, const char *host, const char *agent);
	/* The peers worth asking (reachable, not this host): writes at most
	 * max names, returns how many. */
	size_t (*peers)(void *ud, char (*names)[AGD_WIRE_NAME_MAX + 1], size_t max);
};

struct agd_balance;

/* Creates the policy for this host. cfg and rt are borrowed and must
 * outlive it; ops is copied. Returns 0 or AGD_ERR_NOMEM / AGD_ERR_ARG. */
int agd_balance_new(const struct agd_config *cfg, struct agd_rt *rt, const struct agd_balance_ops *ops,
		    void *ud, struct agd_balance **out);

/* Frees; NULL-safe, nulls *b. */
void agd_balance_destroy(struct agd_balance **b);

/* Handles LOAD and LOAD_REPLY: returns 1 if m was one of those, else 0. */
int agd_balance_input(struct agd_balance *b, const char *from, const struct agd_wire_msg *m,
		      uint64_t now_ms);

/* Runs the policy: starts a round when one is due, decides when its
 * answers are in. Call often (every few tens of ms). */
void agd_balance_tick(struct agd_balance *b, uint64_t now_ms);

/* Counters for tests and status: rounds run and pulls asked for. */
void agd_balance_stats(const struct agd_balance *b, uint64_t *rounds, uint64_t *pulls);

#endif
