/*
 * agd_ctl.h: the control channel between agentctl and agentd
 * (docs/control-protocol.md).
 *
 * A request is a multipart ZeroMQ message [version][command][body] (a REQ
 * client's empty delimiter before it is kept and mirrored); a reply is
 * [version]["ok" | "error"][body]. Bodies are JSON objects; an error body is
 * {"error": "<human text>", "code": "<stable name>"}. The version frame comes
 * first so that a peer of another version is refused before anything else
 * is read.
 *
 * The daemon side (agd_ctl.c) is the one file that talks ZeroMQ for the
 * control channel: it binds a ROUTER socket on each configured endpoint
 * (tcp and ipc), reads bounded requests on the dispatcher's loop, parses the
 * body, and calls the handler registered for the command. Other modules add
 * commands with agd_ctl_register (push, pull, clone, call, policy...).
 *
 * Thread-safety: everything runs on the dispatcher thread.
 */
#ifndef AGD_CTL_H
#define AGD_CTL_H

#include "agd_json.h"

#include <stddef.h>

#define AGD_CTL_VERSION "AGD-CTL/1"
#define AGD_CTL_OK "ok"
#define AGD_CTL_ERROR "error"

/* Largest request body the daemon accepts on the control channel. */
#define AGD_CTL_BODY_MAX (64u << 20)
/* Longest command name. */
#define AGD_CTL_CMD_MAX 32
/* Most frames in a request (envelope included) before it is refused. */
#define AGD_CTL_FRAMES_MAX 8

struct agd_ctl;
struct agd_loop;

/* One request, valid during the handler call. */
struct agd_ctl_req {
	const char *cmd;                  /* command name (NUL-terminated) */
	const char *body;                 /* raw body (NUL-terminated) */
	size_t body_len;                  /* its length */
	const struct agd_json *doc;       /* parsed body */
	const struct agd_json_val *args;  /* its root object */
	char err[256];                    /* handler's error text (else agd_strerror) */
	struct agd_ctl *ctl;              /* the channel */
	void *pending;                    /* internal: the reply envelope */
};

/* A handler writes the members of its reply object into w (the channel
 * opens and closes the braces) and returns 0; or returns a negative agd_err
 * (with req->err filled, or agd_strerror used) for an error reply; or
 * returns AGD_CTL_DEFERRED after agd_ctl_defer, and answers later. */
typedef int (*agd_ctl_fn)(void *ud, struct agd_ctl_req *req, struct agd_jw *w);
#define AGD_CTL_DEFERRED 1

/* Makes the channel (no endpoints yet) on ZeroMQ context zctx, polled by
 * loop. Returns 0 or a negative agd_err. */
int agd_ctl_new(void *zctx, struct agd_loop *loop, struct agd_ctl **out);
/* Binds one more endpoint (tcp://, ipc://). 0, or AGD_ERR_IO with err
 * filled (zmq's reason). */
int agd_ctl_bind(struct agd_ctl *ctl, const char *endpoint, char *err, size_t err_len);

/* As agd_ctl_bind, but adopts `fd`, a listening socket systemd passed
 * (socket activation), which listens on `endpoint`; the control socket owns
 * the fd afterwards. */
int agd_ctl_bind_fd(struct agd_ctl *ctl, int fd, const char *endpoint, char *err, size_t err_len);
/* Adds or replaces command `name`. 0, AGD_ERR_ARG or AGD_ERR_NOMEM. */
int agd_ctl_register(struct agd_ctl *ctl, const char *name, agd_ctl_fn fn, void *ud);
/* Closes the sockets and frees. NULL-safe. */
void agd_ctl_destroy(struct agd_ctl **ctl_p);

/* Deferred replies: inside a handler, takes the reply envelope so that the
 * handler can return AGD_CTL_DEFERRED and answer later (dispatcher thread)
 * with agd_ctl_answer, which frees the token. body is a JSON object text.
 * NULL when out of memory. */
struct agd_ctl_token;
struct agd_ctl_token *agd_ctl_defer(struct agd_ctl_req *req);
void agd_ctl_answer(struct agd_ctl *ctl, struct agd_ctl_token **tok_p, int ok, const char *body);

/* Holding answers back, as agd_peer_hold holds messages: while held,
 * agd_ctl_answer keeps a copy (or, out of memory, answers an error at
 * once); release sends the kept ones in order, drop discards them (their
 * clients time out). For a group commit: an answer must not report writes
 * before they are durable. */
void agd_ctl_hold(struct agd_ctl *ctl);
void agd_ctl_release(struct agd_ctl *ctl);
void agd_ctl_drop(struct agd_ctl *ctl);

#endif
