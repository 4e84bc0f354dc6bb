/*
 * agentctl: the command-line client. A thin main(): common options, then the
 * command found in the tables of cli_*.c; only this file exits the process.
 */
#include "cli.h"
#include "cli_args.h"
#include "cli_cluster.h"
#include "agd_json.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* [bal] cli_hosts.c's table (declared here: cli.h is another's file). */
extern const struct cli_cmd cli_hosts_cmds[];

/* Every command group; each table ends with a NULL name. */
static const struct cli_cmd *const tables[] = {
	cli_status_cmds,
	cli_run_cmds,
	cli_ps_cmds,
	cli_agent_cmds,
	cli_move_cmds,
	cli_policy_cmds,
	cli_keys_cmds,
	cli_hosts_cmds, /* [bal] */
	NULL,
};

static void usage(FILE *f)
{
	fprintf(f, "usage: agentctl [--host H] [--cluster FILE] [--json] [--timeout MS] [--quiet] COMMAND [ARGS]\n\n"
		   "H is a host name from the cluster file ($AGENTCTL_CLUSTER) or an endpoint\n"
		   "such as tcp://127.0.0.1:7400. Common options may also follow the command.\n\ncommands:\n");
	for (size_t t = 0; tables[t] != NULL; t++)
		for (const struct cli_cmd *c = tables[t]; c->name != NULL; c++)
			fprintf(f, "  %-8s %s\n  %-8s   %s\n", c->name, c->args, "", c->summary);
	fprintf(f, "\nexit codes: 0 ok, 1 failed, 2 usage, 3 unreachable, 4 refused, 5 not found, 6 untrusted\n"
		   "see agentctl(1) and docs/cli.md\n");
}

static const struct cli_cmd *find(const char *name)
{
	for (size_t t = 0; tables[t] != NULL; t++)
		for (const struct cli_cmd *c = tables[t]; c->name != NULL; c++)
			if (strcmp(c->name, name) == 0)
				return c;
	return NULL;
}

/* With --json, a failed command that printed no document still leaves one
 * on stdout, so that scripts always have something to parse. */
static void json_error(struct cli_ctx *ctx, int rc)
{
	struct agd_jw w;
	char *text;

	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	agd_jw_key(&w, "error");
	agd_jw_str(&w, ctx->errmsg[0] ? ctx->errmsg : "failed");
	agd_jw_key(&w, "exit");
	agd_jw_int(&w, rc);
	agd_jw_obj_end(&w);
	text = agd_jw_take(&w, NULL);
	if (text != NULL)
		fprintf(ctx->out, "%s\n", text);
	free(text);
}

int main(int argc, char **argv)
{
	struct cli_ctx ctx;
	const struct cli_cmd *cmd;
	int i = 0, help = 0, rc;

	memset(&ctx, 0, sizeof ctx);
	ctx.cluster = getenv("AGENTCTL_CLUSTER");
	ctx.timeout_ms = 5000;
	ctx.out = stdout;
	ctx.err = stderr;
	/* A closed pipe (agentctl ps | head) ends output, not the process
	 * with a signal; writes then fail quietly. */
	signal(SIGPIPE, SIG_IGN);

	rc = cli_parse_global(&ctx, argc, argv, &i, &help);
	if (rc != CLI_EXIT_OK) {
		usage(stderr);
		return rc;
	}
	if (help || (i < argc && strcmp(argv[i], "help") == 0)) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (i >= argc) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if ((cmd = find(argv[i])) == NULL) {
		fprintf(stderr, "agentctl: unknown command '%s'\n", argv[i]);
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	rc = cmd->run(&ctx, argc - i, argv + i);
	if (rc == CLI_EXIT_USAGE)
		fprintf(stderr, "usage: agentctl %s %s\n", cmd->name, cmd->args);
	if (rc != CLI_EXIT_OK && ctx.json && !ctx.emitted)
		json_error(&ctx, rc);
	cli_cluster_destroy(&ctx.clu);
	if (fflush(stdout) != 0 && rc == CLI_EXIT_OK)
		rc = CLI_EXIT_FAIL;
	return rc;
}
