/*
 * cli_move.c: moving agents between hosts from outside: push
 * (sender-initiated: the host the agent is on sends it), pull
 * (receiver-initiated: the target host fetches it) and clone (a copy
 * continues on the target under a new id; the original goes on).
 *
 * agentctl only asks; the daemons move the agent between themselves over
 * the peer channel (docs/protocol.md). Hosts are named to daemons by their
 * cluster-file names, which are the names in the daemons' trusted-hosts
 * lists when scripts/cluster wrote both.
 */
#include "cli.h"
#include "cli_args.h"
#include "cli_net.h"
#include "cli_out.h"

#include <stdlib.h>
#include <string.h>

enum move_kind { MOVE_PUSH, MOVE_PULL, MOVE_CLONE };

static const char *const verbs[] = { "push", "pull", "clone" };

static int cmd_move(struct cli_ctx *ctx, int argc, char **argv, enum move_kind kind)
{
	const char *to_s = NULL, *from_s = NULL;
	int weak = 0, strong = 0, npos, rc;
	const struct cli_opt opts[] = {
		{ "--to", "-t", &to_s, NULL },
		{ "--from", "-f", &from_s, NULL },
		{ "--weak", NULL, NULL, &weak },
		{ "--strong", NULL, NULL, &strong },
		{ NULL, NULL, NULL, NULL },
	};
	char *pos[1], *body = NULL, *reply = NULL;
	struct cli_host src, dst;
	const struct cli_host *ask;
	struct agd_jw w;
	struct agd_json *doc = NULL;
	const struct agd_json_val *root;
	const char *clone_id = NULL;
	long long epoch = -1;

	rc = cli_parse_opts(ctx, argc, argv, opts, pos, 1, &npos);
	if (rc != CLI_EXIT_OK || npos != 1 || to_s == NULL)
		return CLI_EXIT_USAGE;
	if (weak && strong) {
		cli_errorf(ctx, "--weak and --strong exclude each other");
		return CLI_EXIT_USAGE;
	}
	rc = cli_resolve(ctx, to_s, &dst);
	if (rc != CLI_EXIT_OK)
		return rc;
	/* The source: --from, else where the agent is found. */
	if (from_s != NULL)
		rc = cli_resolve(ctx, from_s, &src);
	else
		rc = cli_locate(ctx, pos[0], &src);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (strcmp(src.endpoint, dst.endpoint) == 0) {
		cli_errorf(ctx, "agent %s is on %s already", pos[0], dst.name);
		return CLI_EXIT_USAGE;
	}
	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	agd_jw_key(&w, "agent");
	agd_jw_str(&w, pos[0]);
	if (kind == MOVE_PULL) {
		agd_jw_key(&w, "from");
		agd_jw_str(&w, src.name);
		if (src.peer[0] != '\0') {
			agd_jw_key(&w, "from_endpoint");
			agd_jw_str(&w, src.peer);
		}
	} else {
		agd_jw_key(&w, "to");
		agd_jw_str(&w, dst.name);
		if (dst.peer[0] != '\0') {
			agd_jw_key(&w, "to_endpoint");
			agd_jw_str(&w, dst.peer);
		}
	}
	if (weak || strong) {
		agd_jw_key(&w, "mode");
		agd_jw_str(&w, weak ? "weak" : "strong");
	}
	agd_jw_obj_end(&w);
	if ((body = agd_jw_take(&w, NULL)) == NULL)
		return CLI_EXIT_FAIL;
	/* A pull is asked of the receiver; push and clone of the sender. */
	ask = kind == MOVE_PULL ? &dst : &src;
	if (kind == MOVE_PULL)
		rc = cli_call(ctx, ask, verbs[kind], body, &reply);
	else
		rc = cli_call_agent(ctx, pos[0], &src, verbs[kind], body, &reply);
	free(body);
	if (rc != CLI_EXIT_OK) {
		if (ctx->json && reply != NULL)
			cli_json_emit(ctx, reply);
		free(reply);
		return rc;
	}
	rc = cli_reply_parse(ctx, ask->name, reply, &doc);
	free(reply);
	if (rc != CLI_EXIT_OK)
		return rc;
	root = agd_json_root(doc);
	agd_json_get_int(doc, root, "epoch", &epoch);
	if (agd_json_get_str(doc, root, "clone", &clone_id) != 0)
		agd_json_get_str(doc, root, "id", &clone_id);
	if (ctx->json) {
		agd_jw_init(&w);
		agd_jw_obj_begin(&w);
		agd_jw_key(&w, "agent");
		agd_jw_str(&w, pos[0]);
		agd_jw_key(&w, "op");
		agd_jw_str(&w, verbs[kind]);
		agd_jw_key(&w, "from");
		agd_jw_str(&w, src.name);
		agd_jw_key(&w, "to");
		agd_jw_str(&w, dst.name);
		agd_jw_key(&w, "reply");
		cli_json_copy(&w, doc, root);
		agd_jw_obj_end(&w);
		rc = cli_emit_jw(ctx, &w);
	} else if (kind == MOVE_CLONE) {
		fprintf(ctx->out, "cloned %s from %s to %s as %s\n", pos[0], src.name, dst.name,
			clone_id ? clone_id : "(id not given)");
	} else {
		fprintf(ctx->out, "%s %s: %s -> %s", kind == MOVE_PUSH ? "pushed" : "pulled", pos[0],
			src.name, dst.name);
		if (epoch >= 0)
			fprintf(ctx->out, " (epoch %lld)", epoch);
		fputc('\n', ctx->out);
	}
	agd_json_destroy(&doc);
	return rc;
}

static int cmd_push(struct cli_ctx *ctx, int argc, char **argv)
{
	return cmd_move(ctx, argc, argv, MOVE_PUSH);
}

static int cmd_pull(struct cli_ctx *ctx, int argc, char **argv)
{
	return cmd_move(ctx, argc, argv, MOVE_PULL);
}

static int cmd_clone(struct cli_ctx *ctx, int argc, char **argv)
{
	return cmd_move(ctx, argc, argv, MOVE_CLONE);
}

const struct cli_cmd cli_move_cmds[] = {
	{ "push", cmd_push, "AGENT --to HOST [--from HOST] [--weak|--strong]",
	  "move an agent: its host sends it to HOST" },
	{ "pull", cmd_pull, "AGENT --to HOST [--from HOST] [--weak|--strong]",
	  "move an agent: HOST fetches it from where it is" },
	{ "clone", cmd_clone, "AGENT --to HOST [--from HOST] [--weak|--strong]",
	  "copy an agent to HOST under a new id" },
	{ NULL, NULL, NULL, NULL },
};
