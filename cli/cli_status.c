/*
 * cli_status.c: `agentctl status`, what a host says of itself.
 */
#include "cli.h"
#include "cli_net.h"

#include <stdlib.h>

static int cmd_status(struct cli_ctx *ctx, int argc, char **argv)
{
	char endpoint[256];
	char *reply = NULL;
	int ok = 0, rc;

	(void)argv;
	if (argc != 1)
		return CLI_EXIT_USAGE;
	rc = cli_host_endpoint(ctx, endpoint, sizeof endpoint);
	if (rc != 0) {
		fprintf(ctx->err, "agentctl: unknown host %s\n", ctx->host);
		return rc;
	}
	rc = cli_request(ctx, endpoint, "status", "{}", &ok, &reply);
	if (rc != 0) {
		fprintf(ctx->err, "agentctl: host %s did not answer within %d ms\n", endpoint,
			ctx->timeout_ms);
		return rc;
	}
	if (!ok) {
		fprintf(ctx->err, "agentctl: %s refused: %s\n", endpoint, reply);
		free(reply);
		return CLI_EXIT_REFUSED;
	}
	if (ctx->json)
		fprintf(ctx->out, "%s\n", reply);
	else
		fprintf(ctx->out, "%s: %s\n", endpoint, reply);
	free(reply);
	return CLI_EXIT_OK;
}

const struct cli_cmd cli_status_cmds[] = {
	{ "status", cmd_status, "", "what a host says of itself" },
	{ NULL, NULL, NULL, NULL },
};
