/*
 * agd_mobility.h: attaches daemon-to-daemon mobility to a running agentd:
 * the ZAP handler and peer sockets (agd_zap, agd_peer), the transfer
 * protocol (agd_xfer) and location and delivery (agd_dir), wired to the
 * dispatcher's loop, the runtime (suspend, admit, release, forget, send) and
 * the control channel (push, pull, clone, locate: docs/protocol.md,
 * "Control additions").
 *
 * Nothing here decides protocol: this file only carries events between the
 * modules and the runtime, and moves work from worker threads (the
 * runtime's suspend callback) to the dispatcher through an eventfd.
 *
 * Test-only: AGENTD_TEST_CRASH_AT=<MESSAGE TYPE> (OFFER, ACCEPT, TRANSFER,
 * COMMITTED, ACTIVATE...) kills the daemon with SIGKILL just before it
 * sends the first message of that type; AGENTD_TEST_CRASH_AT=activated just
 * after it activates an arriving agent; AGENTD_TEST_PAUSE_AFTER=<TYPE>
 * stops it (SIGSTOP) right after it sends the first message of that type
 * (docs/protocol.md, "Test-only crash points").
 *
 * Thread-safety: attach and detach from main's thread, around
 * agd_server_run; everything else runs on the dispatcher.
 */
#ifndef AGD_MOBILITY_H
#define AGD_MOBILITY_H

#include "agd_config.h"
#include "agd_rt.h"
#include "agd_wire.h"

#include <stddef.h>

struct agd_server;
struct agd_mobility;

/* Flags of a move an agent asks for itself (agent.migrate, agent.clone). */
#define AGD_MOVE_CLONE 1u /* a copy moves under a new id; the original goes on */
#define AGD_MOVE_WEAK 2u  /* the target starts the agent at its entry */

/* Sets up the peer channel when cfg has a [peer] endpoint (else *out is NULL
 * and 0 is returned). Must run after agd_server_new and before
 * agd_server_run: it finishes transfers a crash interrupted before the
 * runtime resumes stored agents. Returns 0 or a negative agd_err with err
 * filled. */
int agd_mobility_attach(struct agd_server *srv, const struct agd_config *cfg,
			struct agd_mobility **out, char *err, size_t err_len);

/* Closes the sockets and frees; call after agd_server_run returns and before
 * agd_server_destroy (which terminates the ZeroMQ context). NULL-safe. */
void agd_mobility_detach(struct agd_mobility **m);

/* Whether rt has a peer channel attached (agent.migrate can work). Any
 * thread. */
int agd_mobility_available(struct agd_rt *rt);

/* Worker thread, with the runtime's lock held (agd_rt.c agd_rt_work()): agent `id`
 * asked to move itself to host `to` (flags AGD_MOVE_*). When *fn is NULL
 * (no other suspend pending), records the request and sets *fn and *ud to
 * the suspend callback the runtime must run at the agent's next safe point;
 * otherwise, or without a peer channel, leaves them and records a failed
 * outcome. Takes only this module's own locks; calls nothing in the
 * runtime. */
void agd_mobility_self_move(struct agd_rt *rt, const char *id, const char *to, unsigned flags,
			    agd_rt_suspend_fn *fn, void **ud);

/* Worker thread: takes (clears) the outcome of agent id's last self move
 * from this host. Returns 1 with *ok, clone_id (a clone's new id) and err
 * set when known; 0 when unknown (no peer channel, or the daemon restarted
 * during the move). */
int agd_mobility_self_outcome(struct agd_rt *rt, const char *id, int *ok,
			      char clone_id[AGD_ID_LEN + 1], char *err, size_t err_len);

/* agent.send: agd_rt_send, and for an agent not here (or in flight from
 * here) a hand-over to agd_dir on the dispatcher, which finds it (this
 * host's forwarding pointers, then `hint`, a host name or NULL, then the
 * directory), holds it while it moves, and delivers once. Returns 0 when
 * delivered here or handed over (delivery elsewhere is not confirmed to
 * the sender), else agd_rt_send's error. Any thread; takes the runtime's
 * lock, so never call it with that held. */
int agd_mobility_send(struct agd_rt *rt, const char *from, const char *to, const void *data,
		      size_t len, const char *hint);

/* [bal] agent.hosts(): the live hosts of the directory's registry, this
 * host first (at most max names); 0 when there is no registry view (no
 * peer channel, no directory configured, or no list received yet), and the
 * caller falls back to the trusted-hosts list. Any thread. */
size_t agd_mobility_hosts(struct agd_rt *rt, char (*names)[AGD_WIRE_NAME_MAX + 1], size_t max);

#endif
