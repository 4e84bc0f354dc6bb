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

#include <stddef.h>

struct agd_server;
struct agd_mobility;

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

#endif
