/*
 * cli_net.h: agentctl's side of the control channel (docs/protocol.md,
 * "Control channel"): one request, one reply, bounded in time.
 */
#ifndef CLI_NET_H
#define CLI_NET_H

#include "cli.h"

#include <stddef.h>

/* Resolves ctx->host (a cluster-file name or an endpoint; default
 * $AGENTCTL_HOST, then tcp://127.0.0.1:7400) into endpoint. Returns 0, or
 * CLI_EXIT_NOTFOUND for an unknown host name. */
int cli_host_endpoint(const struct cli_ctx *ctx, char *endpoint, size_t len);

/* Sends command `cmd` with JSON `body` to `endpoint` and waits up to
 * ctx->timeout_ms. On a reply sets *ok (1 for "ok", 0 for "error") and
 * *reply to a NUL-terminated malloc'd body the caller frees. Returns 0, or
 * CLI_EXIT_UNREACHABLE when no well-formed reply came in time. */
int cli_request(const struct cli_ctx *ctx, const char *endpoint, const char *cmd,
		const char *body, int *ok, char **reply);

#endif
