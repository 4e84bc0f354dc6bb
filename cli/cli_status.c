/*
 * cli_status.c: `agentctl status [--all]`, what hosts say of themselves.
 * With --all every host of the cluster is asked at once (cli_request_all);
 * a host that does not answer is shown as down, and the exit code is
 * CLI_EXIT_UNREACHABLE if any was.
 */
#include "cli.h"
#include "cli_args.h"
#include "cli_net.h"
#include "cli_out.h"

#include <stdlib.h>
#include <string.h>

/* The fields shown per host, in order; anything else is in --json. */
static const char *const shown[] = { "agents", "workers", "uptime_s", "version" };

/* Column widths: the longest name and endpoint, so that long ipc paths
 * keep the table straight. */
struct widths {
	int name;
	int endpoint;
};

static void print_row(struct cli_ctx *ctx, const struct widths *wd, const struct cli_host *h,
		      const struct cli_reply *r, const struct agd_json *doc)
{
	char cells[4][64];

	if (r->rc != 0) {
		fprintf(ctx->out, "%-*s %-*s %s\n", wd->name, h->name, wd->endpoint, h->endpoint, "down");
		return;
	}
	if (!r->ok || doc == NULL) {
		fprintf(ctx->out, "%-*s %-*s %s\n", wd->name, h->name, wd->endpoint, h->endpoint, "error");
		return;
	}
	for (size_t i = 0; i < 4; i++)
		cli_cell(doc, agd_json_root(doc), shown[i], cells[i], sizeof cells[i]);
	fprintf(ctx->out, "%-*s %-*s %-6s %6s %7s %9s %s\n", wd->name, h->name, wd->endpoint,
		h->endpoint, "up", cells[0], cells[1], cells[2], cells[3]);
}

static int cmd_status(struct cli_ctx *ctx, int argc, char **argv)
{
	int all = 0, npos = 0, rc, worst = CLI_EXIT_OK;
	const struct cli_opt opts[] = { { "--all", "-a", NULL, &all }, { NULL, NULL, NULL, NULL } };
	struct cli_host one;
	const struct cli_host *hosts;
	struct cli_reply *replies = NULL;
	struct agd_jw w;
	struct widths wd = { 4, 8 };
	size_t n;

	rc = cli_parse_opts(ctx, argc, argv, opts, NULL, 0, &npos);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (all) {
		rc = cli_ctx_cluster(ctx, 1);
		if (rc != CLI_EXIT_OK)
			return rc;
		hosts = ctx->clu->hosts;
		n = ctx->clu->n;
	} else {
		rc = cli_target(ctx, &one);
		if (rc != CLI_EXIT_OK)
			return rc;
		hosts = &one;
		n = 1;
	}
	replies = calloc(n ? n : 1, sizeof *replies);
	if (replies == NULL) {
		cli_errorf(ctx, "out of memory");
		return CLI_EXIT_FAIL;
	}
	rc = cli_request_all(ctx, hosts, n, "status", "{}", replies);
	if (rc != CLI_EXIT_OK) {
		cli_errorf(ctx, "cannot start request threads");
		free(replies);
		return rc;
	}
	agd_jw_init(&w);
	if (ctx->json) {
		agd_jw_obj_begin(&w);
		agd_jw_key(&w, "hosts");
		agd_jw_arr_begin(&w);
	} else {
		for (size_t i = 0; i < n; i++) {
			int ln = (int)strlen(hosts[i].name), le = (int)strlen(hosts[i].endpoint);
			wd.name = ln > wd.name ? ln : wd.name;
			wd.endpoint = le > wd.endpoint ? le : wd.endpoint;
		}
		fprintf(ctx->out, "%-*s %-*s %-6s %6s %7s %9s %s\n", wd.name, "HOST", wd.endpoint,
			"ENDPOINT", "STATE", "AGENTS", "WORKERS", "UPTIME_S", "VERSION");
	}
	for (size_t i = 0; i < n; i++) {
		struct cli_reply *r = &replies[i];
		struct agd_json *doc = NULL;
		int row_rc = CLI_EXIT_OK;

		if (r->rc != 0) {
			row_rc = CLI_EXIT_UNREACHABLE;
			cli_errorf(ctx, "host %s (%s) did not answer within %d ms", hosts[i].name,
				   hosts[i].endpoint, ctx->timeout_ms);
		} else if (agd_json_parse(r->body, strlen(r->body), &doc, NULL) != 0) {
			row_rc = CLI_EXIT_FAIL;
			cli_errorf(ctx, "host %s sent a malformed reply", hosts[i].name);
		} else if (!r->ok) {
			const char *msg = r->body;
			agd_json_get_str(doc, agd_json_root(doc), "error", &msg);
			row_rc = cli_error_exit(r->body);
			cli_errorf(ctx, "host %s refused status: %s", hosts[i].name, msg);
		}
		if (row_rc != CLI_EXIT_OK && worst == CLI_EXIT_OK)
			worst = row_rc;
		if (ctx->json) {
			agd_jw_obj_begin(&w);
			agd_jw_key(&w, "name");
			agd_jw_str(&w, hosts[i].name);
			agd_jw_key(&w, "endpoint");
			agd_jw_str(&w, hosts[i].endpoint);
			agd_jw_key(&w, "up");
			agd_jw_bool(&w, r->rc == 0);
			agd_jw_key(&w, "rtt_ms");
			agd_jw_int(&w, r->ms);
			if (doc != NULL) {
				agd_jw_key(&w, r->ok ? "status" : "error");
				cli_json_copy(&w, doc, agd_json_root(doc));
			}
			agd_jw_obj_end(&w);
		} else {
			print_row(ctx, &wd, &hosts[i], r, doc);
		}
		agd_json_destroy(&doc);
	}
	if (ctx->json) {
		agd_jw_arr_end(&w);
		agd_jw_obj_end(&w);
		rc = cli_emit_jw(ctx, &w);
		if (rc != CLI_EXIT_OK)
			worst = rc;
	}
	agd_jw_free(&w);
	cli_replies_free(replies, n);
	free(replies);
	return worst;
}

const struct cli_cmd cli_status_cmds[] = {
	{ "status", cmd_status, "[--all]", "what a host (or every host) says of itself" },
	{ NULL, NULL, NULL, NULL },
};
