/*
 * cli_policy.c: `agentctl policy [--host H] [--default]`, the binding policy
 * table in effect on a host (docs/resources.md, "Policy table").
 *
 * The daemon answers `policy` with the JSON that res_policy_render gives
 * ({"host":..., "cells":[{"binding","attachment","actions","origin"}...]});
 * for people, agentctl rebuilds the host's overrides from that and lets the
 * resources library render the table, so the text agrees with the library
 * by construction. --default shows the seeds' table without asking anyone.
 */
#include "cli.h"
#include "cli_args.h"
#include "cli_net.h"
#include "cli_out.h"

#include "res_policy.h"

#include <stdlib.h>
#include <string.h>

/* Rebuilds the overrides of a rendered table into p. Cells whose origin is
 * not "host" are the default and need nothing. Returns 0 or -1. */
static int policy_from_json(const struct agd_json *doc, struct res_policy *p, const char **host)
{
	const struct agd_json_val *root = agd_json_root(doc), *cells, *c, *a;

	res_policy_init(p);
	*host = NULL;
	agd_json_get_str(doc, root, "host", host);
	cells = agd_json_get(doc, root, "cells");
	if (cells == NULL || cells->type != AGD_JSON_ARR)
		return -1;
	for (c = agd_json_first(doc, cells); c != NULL; c = agd_json_next(doc, c)) {
		const char *b = NULL, *att = NULL, *origin = NULL;
		const struct agd_json_val *acts;
		char cell[64], list[64] = "";
		size_t used = 0;

		if (agd_json_get_str(doc, c, "binding", &b) != 0 ||
		    agd_json_get_str(doc, c, "attachment", &att) != 0)
			return -1;
		if (agd_json_get_str(doc, c, "origin", &origin) != 0 || strcmp(origin, "host") != 0)
			continue;
		acts = agd_json_get(doc, c, "actions");
		if (acts == NULL || acts->type != AGD_JSON_ARR)
			return -1;
		for (a = agd_json_first(doc, acts); a != NULL; a = agd_json_next(doc, a)) {
			int n;
			if (a->type != AGD_JSON_STR)
				return -1;
			n = snprintf(list + used, sizeof list - used, "%s%s", used ? "," : "", a->str);
			if (n < 0 || (size_t)n >= sizeof list - used)
				return -1;
			used += (size_t)n;
		}
		snprintf(cell, sizeof cell, "%s.%s", b, att);
		if (res_policy_set(p, cell, list, NULL) != 0)
			return -1;
	}
	return 0;
}

static int cmd_policy(struct cli_ctx *ctx, int argc, char **argv)
{
	int deflt = 0, npos, rc;
	const struct cli_opt opts[] = { { "--default", NULL, NULL, &deflt },
					{ NULL, NULL, NULL, NULL } };
	struct res_policy p;
	struct cli_host h;
	struct agd_json *doc = NULL;
	const char *host_name = NULL;
	char *reply = NULL, buf[8192];

	rc = cli_parse_opts(ctx, argc, argv, opts, NULL, 0, &npos);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (deflt) {
		res_policy_init(&p);
	} else {
		rc = cli_target(ctx, &h);
		if (rc == CLI_EXIT_OK)
			rc = cli_call(ctx, &h, "policy", "{}", &reply);
		if (rc != CLI_EXIT_OK) {
			if (ctx->json && reply != NULL)
				cli_json_emit(ctx, reply);
			free(reply);
			return rc;
		}
		rc = cli_reply_parse(ctx, h.name, reply, &doc);
		free(reply);
		if (rc != CLI_EXIT_OK)
			return rc;
		if (policy_from_json(doc, &p, &host_name) != 0) {
			cli_errorf(ctx, "%s sent a policy table agentctl cannot read", h.name);
			agd_json_destroy(&doc);
			return CLI_EXIT_FAIL;
		}
		if (host_name == NULL)
			host_name = h.name;
	}
	if (res_policy_render(&p, host_name, ctx->json, buf, sizeof buf) != 0) {
		cli_errorf(ctx, "cannot render the policy table");
		rc = CLI_EXIT_FAIL;
	} else if (ctx->json) {
		cli_json_emit(ctx, buf);
	} else {
		fputs(buf, ctx->out);
		if (buf[0] != '\0' && buf[strlen(buf) - 1] != '\n')
			fputc('\n', ctx->out);
	}
	agd_json_destroy(&doc);
	return rc;
}

const struct cli_cmd cli_policy_cmds[] = {
	{ "policy", cmd_policy, "[--default]", "the binding policy table in effect on a host" },
	{ NULL, NULL, NULL, NULL },
};
