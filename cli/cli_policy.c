/*
 * cli_policy.c: `agentctl policy [--host H] [--default]`, the binding policy
 * table in effect on a host (docs/resources.md, "Policy table").
 *
 * The daemon answers `policy` with the JSON that res_policy_render gives
 * ({"host":..., "cells":[{"binding","attachment","actions","origin"}...]});
 * for people, agentctl rebuilds the host's overrides from that and lets the
 * resources library render the table, so the text agrees with the library
 * by construction. --default shows the seeds' table without asking anyone.
 *
 * `agentctl bindings [AGENT]`: an agent's resource bindings on the host it
 * is on, and the decision taken for each at every hop so far (the history
 * the resource segment carries: "h1->h2 notes: action=MV origin=default
 * tried=MV:ok"); without AGENT, every agent of the host that has bindings.
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

static void print_bindings(struct cli_ctx *ctx, const struct agd_json *doc,
			   const struct agd_json_val *agent)
{
	const struct agd_json_val *list, *b, *hist, *l;
	const char *id = NULL;

	agd_json_get_str(doc, agent, "agent", &id);
	fprintf(ctx->out, "agent %s\n", id ? id : "?");
	fprintf(ctx->out, "  %-12s %-10s %-8s %-10s %-6s %s\n", "BINDING", "BY", "KIND", "ATTACHMENT",
		"ACTION", "RESOURCE");
	list = agd_json_get(doc, agent, "bindings");
	for (b = list && list->type == AGD_JSON_ARR ? agd_json_first(doc, list) : NULL; b != NULL;
	     b = agd_json_next(doc, b)) {
		char name[80], by[32], kind[32], att[32], action[16], rid[80], home[80];
		int bound = 1;

		cli_cell(doc, b, "name", name, sizeof name);
		cli_cell(doc, b, "binding", by, sizeof by);
		cli_cell(doc, b, "kind", kind, sizeof kind);
		cli_cell(doc, b, "attachment", att, sizeof att);
		cli_cell(doc, b, "action", action, sizeof action);
		cli_cell(doc, b, "id", rid, sizeof rid);
		cli_cell(doc, b, "home", home, sizeof home);
		agd_json_get_bool(doc, b, "bound", &bound);
		if (bound)
			fprintf(ctx->out, "  %-12s %-10s %-8s %-10s %-6s %s@%s\n", name, by, kind, att,
				action, rid, home);
		else
			fprintf(ctx->out, "  %-12s %-10s %-8s %-10s %-6s (unbound)\n", name, by, kind, att,
				action);
	}
	hist = agd_json_get(doc, agent, "history");
	if (hist != NULL && hist->type == AGD_JSON_ARR && hist->count > 0) {
		fprintf(ctx->out, "  decisions, hop by hop:\n");
		for (l = agd_json_first(doc, hist); l != NULL; l = agd_json_next(doc, l))
			if (l->type == AGD_JSON_STR)
				fprintf(ctx->out, "    %s\n", l->str);
	}
}

static int cmd_bindings(struct cli_ctx *ctx, int argc, char **argv)
{
	char *pos[1], *body = NULL, *reply = NULL;
	int npos, rc;
	struct cli_host h;
	struct agd_jw w;
	struct agd_json *doc = NULL;
	const struct agd_json_val *agents, *a;

	rc = cli_parse_opts(ctx, argc, argv, NULL, pos, 1, &npos);
	if (rc != CLI_EXIT_OK)
		return rc;
	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	if (npos == 1) {
		agd_jw_key(&w, "agent");
		agd_jw_str(&w, pos[0]);
	}
	agd_jw_obj_end(&w);
	if ((body = agd_jw_take(&w, NULL)) == NULL)
		return CLI_EXIT_FAIL;
	rc = npos == 1 ? cli_locate(ctx, pos[0], &h) : cli_target(ctx, &h);
	if (rc == CLI_EXIT_OK)
		rc = npos == 1 ? cli_call_agent(ctx, pos[0], &h, "bindings", body, &reply)
			       : cli_call(ctx, &h, "bindings", body, &reply);
	free(body);
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
	agents = agd_json_get(doc, agd_json_root(doc), "agents");
	if (agents == NULL || agents->type != AGD_JSON_ARR) {
		cli_errorf(ctx, "%s sent a bindings reply without \"agents\"", h.name);
		rc = CLI_EXIT_FAIL;
	} else if (agents->count == 0) {
		fprintf(ctx->out, "(no agent with bindings on %s)\n", h.name);
	}
	for (a = agents ? agd_json_first(doc, agents) : NULL; a != NULL; a = agd_json_next(doc, a))
		print_bindings(ctx, doc, a);
	agd_json_destroy(&doc);
	return rc;
}

const struct cli_cmd cli_policy_cmds[] = {
	{ "policy", cmd_policy, "[--default]", "the binding policy table in effect on a host" },
	{ "bindings", cmd_bindings, "[AGENT]",
	  "an agent's resource bindings and the action chosen for each at every hop" },
	{ NULL, NULL, NULL, NULL },
};
