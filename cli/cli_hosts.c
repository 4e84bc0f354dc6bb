/*
 * cli_hosts.c: `agentctl hosts`, the cluster's hosts as one daemon knows
 * them: with a directory configured, the directory's registry (name, peer
 * endpoint, public key, time since it last registered, alive or not);
 * without one, the daemon itself only (docs/protocol.md, "Host registry").
 */
#include "cli.h"
#include "cli_args.h"
#include "cli_net.h"
#include "cli_out.h"

#include <stdlib.h>
#include <string.h>

static int cmd_hosts(struct cli_ctx *ctx, int argc, char **argv)
{
	const struct cli_opt opts[] = { { NULL, NULL, NULL, NULL } };
	const struct agd_json_val *root, *list, *e;
	struct agd_json *doc = NULL;
	struct cli_host h;
	char *reply = NULL;
	int npos = 0, rc;

	rc = cli_parse_opts(ctx, argc, argv, opts, NULL, 0, &npos);
	if (rc != CLI_EXIT_OK)
		return rc;
	rc = cli_target(ctx, &h);
	if (rc == CLI_EXIT_OK)
		rc = cli_call(ctx, &h, "hosts", "{}", &reply);
	if (rc != CLI_EXIT_OK) {
		if (ctx->json && reply != NULL)
			cli_json_emit(ctx, reply);
		free(reply);
		return rc;
	}
	if (ctx->json) {
		cli_json_emit(ctx, reply);
		free(reply);
		return CLI_EXIT_OK;
	}
	rc = cli_reply_parse(ctx, h.name, reply, &doc);
	free(reply);
	if (rc != CLI_EXIT_OK)
		return rc;
	root = agd_json_root(doc);
	list = agd_json_get(doc, root, "hosts");
	if (list == NULL || list->type != AGD_JSON_ARR) {
		cli_errorf(ctx, "%s sent a host list agentctl cannot read", h.name);
		agd_json_destroy(&doc);
		return CLI_EXIT_FAIL;
	}
	{
		char dir[80];

		cli_cell(doc, root, "directory", dir, sizeof dir);
		fprintf(ctx->out, "directory: %s\n", dir);
	}
	fprintf(ctx->out, "%-16s %-32s %-6s %9s %s\n", "HOST", "ENDPOINT", "STATE", "SEEN(s)", "KEY");
	for (e = agd_json_first(doc, list); e != NULL; e = agd_json_next(doc, e)) {
		char name[80], ep[300], key[80], age[32];
		int alive = 0;
		long long ms = 0;

		cli_cell(doc, e, "name", name, sizeof name);
		cli_cell(doc, e, "endpoint", ep, sizeof ep);
		cli_cell(doc, e, "key", key, sizeof key);
		agd_json_get_bool(doc, e, "alive", &alive);
		agd_json_get_int(doc, e, "age_ms", &ms);
		snprintf(age, sizeof age, "%.1f", (double)ms / 1000.0);
		/* The key's first 16 digits tell hosts apart; --json has it all. */
		fprintf(ctx->out, "%-16s %-32s %-6s %9s %.16s\n", name, ep, alive ? "up" : "gone", age, key);
	}
	agd_json_destroy(&doc);
	return CLI_EXIT_OK;
}

const struct cli_cmd cli_hosts_cmds[] = {
	{ "hosts", cmd_hosts, "", "the cluster's hosts (the directory's registry, as this host has it)" },
	{ NULL, NULL, NULL, NULL },
};
