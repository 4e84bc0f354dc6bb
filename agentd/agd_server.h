/*
 * agd_server.h: one agentd: the dispatcher's loop, the control channel with
 * its commands, and the agent runtime, wired together from a config.
 *
 * Seams for other modules (the peer transport, the transfer protocol):
 * agd_server_loop, _zctx, _ctl and _rt give them what they register with
 * (extra sockets and timers on the loop, commands on the control channel,
 * agents into and out of the runtime).
 *
 * Thread-safety: agd_server_request_stop may be called from any thread or a
 * signal handler; the rest from main's thread.
 */
#ifndef AGD_SERVER_H
#define AGD_SERVER_H

#include "agd_config.h"

struct agd_server;
struct agd_jw;
struct agd_loop;
struct agd_ctl;
struct agd_rt;

/* Builds the server: store, trust store, control endpoints bound. The
 * config is borrowed and must outlive the server. Returns 0 or a negative
 * agd_err with err filled. */
int agd_server_new(const struct agd_config *cfg, struct agd_server **out, char *err,
		   size_t err_len);
/* Starts the workers, resumes stored agents, and runs the dispatcher until
 * a stop is requested; then persists every agent and stops. 0 or agd_err. */
int agd_server_run(struct agd_server *srv);
/* Asks agd_server_run to return (async-signal-safe). */
void agd_server_request_stop(struct agd_server *srv);
/* Frees. NULL-safe. */
void agd_server_destroy(struct agd_server **srv_p);

struct agd_loop *agd_server_loop(struct agd_server *srv);
void *agd_server_zctx(struct agd_server *srv);
struct agd_ctl *agd_server_ctl(struct agd_server *srv);
struct agd_rt *agd_server_rt(struct agd_server *srv);

/* Adds keys of another module (the peer channel's transfer counts) to the
 * `status` reply: fn writes them into the open object. One at a time;
 * NULL removes it. */
typedef void (*agd_server_status_fn)(void *ud, struct agd_jw *w);
void agd_server_on_status(struct agd_server *srv, agd_server_status_fn fn, void *ud);

#endif
