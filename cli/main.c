/*
 * agentctl: the command-line client. A thin main(): common options, then the
 * command found in the tables of cli_*.c; only this file exits the process.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* Every command group; each table ends with a NULL name. */
static const struct cli_cmd *const tables[] = {
	cli_status_cmds,
	NULL,
};

static void usage(FILE *f)
{
	fprintf(f, "usage: agentctl [--host H] [--cluster FILE] [--json] [--timeout MS] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t t = 0; tables[t] != NULL; t++)
		for (const struct cli_cmd *c = tables[t]; c->name != NULL; c++)
			fprintf(f, "  %-8s %-30s %s\n", c->name, c->args, c->summary);
}

static const struct cli_cmd *find(const char *name)
{
	for (size_t t = 0; tables[t] != NULL; t++)
		for (const struct cli_cmd *c = tables[t]; c->name != NULL; c++)
			if (strcmp(c->name, name) == 0)
				return c;
	return NULL;
}

int main(int argc, char **argv)
{
	struct cli_ctx ctx = { NULL, getenv("AGENTCTL_CLUSTER"), 0, 5000, stdout, stderr };
	const struct cli_cmd *cmd;
	int i, rc;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
			ctx.host = argv[++i];
		else if (strcmp(argv[i], "--cluster") == 0 && i + 1 < argc)
			ctx.cluster = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			ctx.json = 1;
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			ctx.timeout_ms = atoi(argv[++i]);
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return CLI_EXIT_OK;
		} else {
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (i >= argc || (cmd = find(argv[i])) == NULL) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	rc = cmd->run(&ctx, argc - i, argv + i);
	if (rc == CLI_EXIT_USAGE)
		fprintf(stderr, "usage: agentctl %s %s\n", cmd->name, cmd->args);
	return rc;
}
