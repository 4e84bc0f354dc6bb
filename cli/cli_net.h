/*
 * cli_net.h: agentctl's side of the control channel (docs/control-protocol.md):
 * one request, one reply, bounded in time; host names resolved through the
 * cluster file; and the fan-out that asks every host of a cluster at once,
 * one thread per host.
 */
#ifndef CLI_NET_H
#define CLI_NET_H

#include "cli.h"
#include "cli_cluster.h"

#include <stddef.h>

/* Loads the cluster file named by ctx->cluster into ctx->clu (once). When
 * `required` and no file is named, says so on ctx->err. Returns an exit code:
 * CLI_EXIT_OK (also when none is named and !required), CLI_EXIT_NOTFOUND
 * (cannot read it) or CLI_EXIT_USAGE (it does not parse; the line is told). */
int cli_ctx_cluster(struct cli_ctx *ctx, int required);

/* Resolves a host given by the user: an endpoint ("tcp://...", "ipc://...")
 * stands for itself (its name is the endpoint); anything else is a name in
 * the cluster file. Fills *out. Returns an exit code, having told the user
 * on ctx->err what is wrong (CLI_EXIT_NOTFOUND for an unknown name). */
int cli_resolve(struct cli_ctx *ctx, const char *name_or_endpoint, struct cli_host *out);

/* The host a one-host command talks to: --host, else $AGENTCTL_HOST, else
 * the first host of the cluster file, else tcp://127.0.0.1:7400. */
int cli_target(struct cli_ctx *ctx, struct cli_host *out);

/* Sends command `cmd` with JSON `body` to `endpoint` and waits up to
 * timeout_ms. On a reply sets *ok (1 for "ok", 0 for "error") and *reply to
 * a NUL-terminated malloc'd body the caller frees. Returns 0, or
 * CLI_EXIT_UNREACHABLE when no well-formed reply came in time.
 * Thread-safe: each call has its own ZeroMQ context and socket. */
int cli_request_ep(const char *endpoint, int timeout_ms, const char *cmd, const char *body,
		   size_t body_len, int *ok, char **reply);

/* cli_request_ep with ctx->timeout_ms and a NUL-terminated body. */
int cli_request(const struct cli_ctx *ctx, const char *endpoint, const char *cmd,
		const char *body, int *ok, char **reply);

/* One request to one host, with the errors worded for the user on ctx->err:
 * unreachable, refused (the daemon's message), unknown agent, untrusted.
 * On CLI_EXIT_OK *reply is the malloc'd reply body (caller frees); on a
 * daemon error, *reply is the error body too (so --json can show it), else
 * NULL. Returns an exit code. */
int cli_call(struct cli_ctx *ctx, const struct cli_host *h, const char *cmd, const char *body,
	     char **reply);

/* Maps a daemon error body {"error": msg, "code": name} to an exit code:
 * not_found/unknown_agent/unknown_host -> NOTFOUND, untrusted/signature ->
 * UNTRUSTED, anything else REFUSED. */
int cli_error_exit(const char *body);

/* What one host answered, in a fan-out. */
struct cli_reply {
	int rc;       /* 0, or CLI_EXIT_UNREACHABLE */
	int ok;       /* the daemon said "ok" */
	char *body;   /* malloc'd reply body or NULL; freed by cli_replies_free */
	long ms;      /* round-trip time in milliseconds */
};

/* Asks every host in hosts[0..n) at once, one thread per host (each with its
 * own ZeroMQ context and socket), and waits for all of them, at most about
 * ctx->timeout_ms plus a grace period. A host whose thread has not finished
 * by then counts as unreachable; its thread finishes on its own (its socket
 * has the same timeout) and frees what it holds. Fills out[0..n). Returns 0,
 * or CLI_EXIT_FAIL if threads cannot be made. */
int cli_request_all(const struct cli_ctx *ctx, const struct cli_host *hosts, size_t n,
		    const char *cmd, const char *body, struct cli_reply *out);

/* Like cli_request_all, but with request i going to hosts[i] with bodies[i]
 * (several requests may go to one host). */
int cli_request_each(const struct cli_ctx *ctx, const struct cli_host *hosts,
		     const char *const *bodies, size_t n, const char *cmd, struct cli_reply *out);

void cli_replies_free(struct cli_reply *r, size_t n);

/* The host to ask about agent `id`: --host (or $AGENTCTL_HOST) when given,
 * since a daemon follows its forwarding pointers; otherwise, with a cluster
 * file, the host whose `ps` lists the agent (every host asked at once);
 * otherwise the default host. Returns an exit code: CLI_EXIT_NOTFOUND, with
 * a message, when no host of the cluster has it. Implemented in cli_ps.c. */
int cli_locate(struct cli_ctx *ctx, const char *id, struct cli_host *out);

/* After `asked` said it does not have agent `id`: asks it where the agent
 * went (control `locate`, which follows its forwarding pointers) and sets
 * *out to that host from the cluster file. Returns CLI_EXIT_OK, or another
 * exit code (quietly) when the agent cannot be placed elsewhere.
 * Implemented in cli_ps.c. */
int cli_relocate(struct cli_ctx *ctx, const char *id, const struct cli_host *asked,
		 struct cli_host *out);

/* cli_call for a request about agent `id` to *h: when h answers "not
 * found" (the agent left it), follows the daemons' location service once
 * and asks the host the agent is on now, updating *h. Errors are told as
 * by cli_call, for the last host asked. */
int cli_call_agent(struct cli_ctx *ctx, const char *id, struct cli_host *h, const char *cmd,
		   const char *body, char **reply);

#endif
