/*
 * cli_ps.c: `agentctl ps [--all]`, the agents of one host or of the whole
 * cluster, and cli_locate, which finds the host an agent runs on.
 *
 * With --all every host is asked at once (one thread per host, see
 * cli_request_all) and the lists are merged; each agent is shown with the
 * host that answered for it (its location), its state, mobility, epoch and
 * memory. Hosts that do not answer are named on stderr and make the exit
 * code CLI_EXIT_UNREACHABLE, but the others are still listed.
 */
#include "cli.h"
#include "cli_args.h"
#include "cli_net.h"
#include "cli_out.h"

#include <stdlib.h>
#include <string.h>

/* A daemon lists forwarding pointers too (agents that left); they are not
 * where the agent is. */
static int is_here(const struct agd_json *doc, const struct agd_json_val *a)
{
	const char *state = NULL;

	if (agd_json_get_str(doc, a, "state", &state) != 0)
		return 1;
	return strcmp(state, "moved") != 0 && strcmp(state, "gone") != 0 &&
	       strcmp(state, "forwarded") != 0;
}

/* The array of agents in a ps reply: {"agents": [...]}. */
static const struct agd_json_val *agents_of(const struct agd_json *doc)
{
	const struct agd_json_val *a = agd_json_get(doc, agd_json_root(doc), "agents");

	return a != NULL && a->type == AGD_JSON_ARR ? a : NULL;
}

static void print_header(struct cli_ctx *ctx)
{
	fprintf(ctx->out, "%-18s %-12s %-10s %-10s %-8s %5s %10s %s\n", "ID", "NAME", "HOST", "STATE",
		"MOBILITY", "EPOCH", "MEMORY", "HOME");
}

static void print_agent(struct cli_ctx *ctx, const char *host, const struct agd_json *doc,
			const struct agd_json_val *a)
{
	char id[80], name[80], state[32], mob[32], epoch[32], home[80], mem[32];
	double bytes = 0;

	cli_cell(doc, a, "id", id, sizeof id);
	cli_cell(doc, a, "name", name, sizeof name);
	cli_cell(doc, a, "state", state, sizeof state);
	cli_cell(doc, a, "mobility", mob, sizeof mob);
	cli_cell(doc, a, "epoch", epoch, sizeof epoch);
	cli_cell(doc, a, "home", home, sizeof home);
	if (agd_json_get_num(doc, a, "memory", &bytes) == 0)
		cli_fmt_bytes(bytes, mem, sizeof mem);
	else
		snprintf(mem, sizeof mem, "-");
	fprintf(ctx->out, "%-18s %-12s %-10s %-10s %-8s %5s %10s %s\n", id, name, host, state, mob,
		epoch, mem, home);
}

/* The hosts to ask: the whole cluster, or the one target. */
static int pick_hosts(struct cli_ctx *ctx, int all, struct cli_host *one,
		      const struct cli_host **hosts, size_t *n)
{
	int rc;

	if (all) {
		rc = cli_ctx_cluster(ctx, 1);
		if (rc != CLI_EXIT_OK)
			return rc;
		*hosts = ctx->clu->hosts;
		*n = ctx->clu->n;
		return CLI_EXIT_OK;
	}
	rc = cli_target(ctx, one);
	if (rc != CLI_EXIT_OK)
		return rc;
	*hosts = one;
	*n = 1;
	return CLI_EXIT_OK;
}

static int cmd_ps(struct cli_ctx *ctx, int argc, char **argv)
{
	int all = 0, ended = 0, npos = 0, rc, worst = CLI_EXIT_OK;
	const struct cli_opt opts[] = { { "--all", "-a", NULL, &all },
					{ "--ended", "-e", NULL, &ended },
					{ NULL, NULL, NULL, NULL } };
	struct cli_host one;
	const struct cli_host *hosts = NULL;
	struct cli_reply *replies;
	struct agd_jw w;
	size_t n = 0, count = 0;

	rc = cli_parse_opts(ctx, argc, argv, opts, NULL, 0, &npos);
	if (rc == CLI_EXIT_OK)
		rc = pick_hosts(ctx, all, &one, &hosts, &n);
	if (rc != CLI_EXIT_OK)
		return rc;
	replies = calloc(n ? n : 1, sizeof *replies);
	/* {} lists ended agents too; {"all": false} the live ones. */
	if (replies == NULL ||
	    cli_request_all(ctx, hosts, n, "ps", ended ? "{}" : "{\"all\":false}", replies) != 0) {
		free(replies);
		cli_errorf(ctx, "out of memory or threads");
		return CLI_EXIT_FAIL;
	}
	agd_jw_init(&w);
	if (ctx->json) {
		agd_jw_obj_begin(&w);
		agd_jw_key(&w, "agents");
		agd_jw_arr_begin(&w);
	} else {
		print_header(ctx);
	}
	for (size_t i = 0; i < n; i++) {
		struct agd_json *doc = NULL;
		const struct agd_json_val *list, *a;
		const char *msg = NULL;

		if (replies[i].rc != 0) {
			cli_errorf(ctx, "host %s (%s) did not answer within %d ms", hosts[i].name,
				   hosts[i].endpoint, ctx->timeout_ms);
			if (worst == CLI_EXIT_OK)
				worst = CLI_EXIT_UNREACHABLE;
			continue;
		}
		if (agd_json_parse(replies[i].body, strlen(replies[i].body), &doc, NULL) != 0 ||
		    (replies[i].ok && (list = agents_of(doc)) == NULL)) {
			cli_errorf(ctx, "host %s sent a malformed ps reply", hosts[i].name);
			agd_json_destroy(&doc);
			if (worst == CLI_EXIT_OK)
				worst = CLI_EXIT_FAIL;
			continue;
		}
		if (!replies[i].ok) {
			agd_json_get_str(doc, agd_json_root(doc), "error", &msg);
			cli_errorf(ctx, "host %s refused ps: %s", hosts[i].name, msg ? msg : replies[i].body);
			agd_json_destroy(&doc);
			if (worst == CLI_EXIT_OK)
				worst = cli_error_exit(replies[i].body);
			continue;
		}
		for (a = agd_json_first(doc, list); a != NULL; a = agd_json_next(doc, a)) {
			if (a->type != AGD_JSON_OBJ || (all && !is_here(doc, a)))
				continue;
			count++;
			if (!ctx->json) {
				print_agent(ctx, hosts[i].name, doc, a);
				continue;
			}
			/* The daemon's fields, plus where it was found. */
			agd_jw_obj_begin(&w);
			agd_jw_key(&w, "host");
			agd_jw_str(&w, hosts[i].name);
			for (const struct agd_json_val *f = agd_json_first(doc, a); f != NULL;
			     f = agd_json_next(doc, f)) {
				if (strcmp(f->key, "host") == 0)
					continue;
				agd_jw_key(&w, f->key);
				cli_json_copy(&w, doc, f);
			}
			agd_jw_obj_end(&w);
		}
		agd_json_destroy(&doc);
	}
	if (ctx->json) {
		agd_jw_arr_end(&w);
		agd_jw_key(&w, "hosts_asked");
		agd_jw_int(&w, (long long)n);
		agd_jw_obj_end(&w);
		rc = cli_emit_jw(ctx, &w);
		if (rc != CLI_EXIT_OK)
			worst = rc;
	} else if (count == 0) {
		fprintf(ctx->out, "(no agents)\n");
	}
	agd_jw_free(&w);
	cli_replies_free(replies, n);
	free(replies);
	return worst;
}

/* Asks every host of the cluster (or the one given) `locate {"agent"}` at
 * once: each daemon follows its forwarding pointers, the agent's home and
 * the directory. The answer with the highest epoch wins (the newest
 * location). Fills *out with that host's cluster entry (or just its name
 * when the cluster file does not list it) and *epoch. Returns an exit code;
 * prints nothing itself except through cli_errorf when !quiet. */
static int locate_by_daemons(struct cli_ctx *ctx, const char *id, const struct cli_host *hosts,
			     size_t n, struct cli_host *out, long long *epoch, int quiet)
{
	struct cli_reply *replies = calloc(n ? n : 1, sizeof *replies);
	struct agd_jw w;
	char *body;
	int reached = 0, found = 0, refused = 0;

	*epoch = -1;
	if (replies == NULL)
		return CLI_EXIT_FAIL;
	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	agd_jw_key(&w, "agent");
	agd_jw_str(&w, id);
	agd_jw_obj_end(&w);
	body = agd_jw_take(&w, NULL);
	if (body == NULL || cli_request_all(ctx, hosts, n, "locate", body, replies) != 0) {
		free(body);
		free(replies);
		return CLI_EXIT_FAIL;
	}
	free(body);
	for (size_t i = 0; i < n; i++) {
		struct agd_json *doc = NULL;
		const char *where = NULL;
		long long e = 0;

		if (replies[i].rc != 0)
			continue;
		reached++;
		if (!replies[i].ok) {
			refused++;
			continue;
		}
		if (agd_json_parse(replies[i].body, strlen(replies[i].body), &doc, NULL) != 0)
			continue;
		if (agd_json_get_str(doc, agd_json_root(doc), "host", &where) == 0 &&
		    cli_name_valid(where)) {
			agd_json_get_int(doc, agd_json_root(doc), "epoch", &e);
			if (!found || e > *epoch) {
				const struct cli_host *h = cli_cluster_find(ctx->clu, where);

				memset(out, 0, sizeof *out);
				if (h != NULL)
					*out = *h;
				else
					snprintf(out->name, sizeof out->name, "%s", where);
				*epoch = e;
				found = 1;
			}
		}
		agd_json_destroy(&doc);
	}
	cli_replies_free(replies, n);
	free(replies);
	if (found)
		return CLI_EXIT_OK;
	if (reached == 0) {
		if (!quiet)
			cli_errorf(ctx, "no host answered: cannot locate agent %s", id);
		return CLI_EXIT_UNREACHABLE;
	}
	if (!quiet)
		cli_errorf(ctx, "unknown agent %s (no host could locate it%s)", id,
			   refused == reached ? "" : "; some hosts have no locate");
	return CLI_EXIT_NOTFOUND;
}

static int cmd_locate(struct cli_ctx *ctx, int argc, char **argv)
{
	char *pos[1];
	int npos, rc;
	struct cli_host one, where;
	const struct cli_host *hosts;
	size_t n;
	long long epoch = -1;
	struct agd_jw w;

	rc = cli_parse_opts(ctx, argc, argv, NULL, pos, 1, &npos);
	if (rc != CLI_EXIT_OK || npos != 1)
		return CLI_EXIT_USAGE;
	rc = cli_ctx_cluster(ctx, 0);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (ctx->host == NULL && ctx->clu != NULL && ctx->clu->n > 0) {
		hosts = ctx->clu->hosts;
		n = ctx->clu->n;
	} else {
		rc = cli_target(ctx, &one);
		if (rc != CLI_EXIT_OK)
			return rc;
		hosts = &one;
		n = 1;
	}
	rc = locate_by_daemons(ctx, pos[0], hosts, n, &where, &epoch, 0);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (!ctx->json) {
		fprintf(ctx->out, "%s is on %s (epoch %lld)\n", pos[0], where.name, epoch);
		return CLI_EXIT_OK;
	}
	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	agd_jw_key(&w, "agent");
	agd_jw_str(&w, pos[0]);
	agd_jw_key(&w, "host");
	agd_jw_str(&w, where.name);
	agd_jw_key(&w, "epoch");
	agd_jw_int(&w, epoch);
	agd_jw_obj_end(&w);
	return cli_emit_jw(ctx, &w);
}

int cli_relocate(struct cli_ctx *ctx, const char *id, const struct cli_host *asked,
		 struct cli_host *out)
{
	long long epoch;
	int rc;

	if (cli_ctx_cluster(ctx, 0) != CLI_EXIT_OK)
		return CLI_EXIT_FAIL;
	rc = locate_by_daemons(ctx, id, asked, 1, out, &epoch, 1);
	if (rc != CLI_EXIT_OK)
		return rc;
	/* A name the cluster file does not list has no endpoint to call. */
	if (out->endpoint[0] == '\0' || strcmp(out->endpoint, asked->endpoint) == 0)
		return CLI_EXIT_NOTFOUND;
	return CLI_EXIT_OK;
}

/* Whether a ps entry is an agent that has ended (its logs are still there). */
static int has_ended(const struct agd_json *doc, const struct agd_json_val *a)
{
	const char *state = NULL;

	if (agd_json_get_str(doc, a, "state", &state) != 0)
		return 0;
	return strcmp(state, "finished") == 0 || strcmp(state, "failed") == 0 ||
	       strcmp(state, "killed") == 0;
}

int cli_locate(struct cli_ctx *ctx, const char *id, struct cli_host *out)
{
	const char *given = ctx->host ? ctx->host : getenv("AGENTCTL_HOST");
	struct cli_reply *replies;
	int rc, found = 0, reached = 0;
	size_t n;
	char body[128];

	if ((given != NULL && given[0] != '\0'))
		return cli_target(ctx, out);
	rc = cli_ctx_cluster(ctx, 0);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (ctx->clu == NULL || ctx->clu->n == 0)
		return cli_target(ctx, out);
	n = ctx->clu->n;
	replies = calloc(n, sizeof *replies);
	if (replies == NULL || strlen(id) > 64) {
		free(replies);
		cli_errorf(ctx, "bad agent id %.64s", id);
		return CLI_EXIT_USAGE;
	}
	/* Ask every host at once about this one agent; ids are hex, so the
	 * body needs no escaping beyond what agd_jw does. */
	{
		struct agd_jw w;
		char *b;

		agd_jw_init(&w);
		agd_jw_obj_begin(&w);
		agd_jw_key(&w, "agent");
		agd_jw_str(&w, id);
		agd_jw_obj_end(&w);
		b = agd_jw_take(&w, NULL);
		snprintf(body, sizeof body, "%s", b ? b : "{}");
		free(b);
	}
	if (cli_request_all(ctx, ctx->clu->hosts, n, "ps", body, replies) != 0) {
		free(replies);
		cli_errorf(ctx, "out of memory or threads");
		return CLI_EXIT_FAIL;
	}
	/* The host where it is alive wins over one where it has ended (an
	 * agent that left keeps no entry, or a "moved" one, at its source). */
	for (size_t i = 0; i < n && found < 2; i++) {
		struct agd_json *doc = NULL;
		const struct agd_json_val *a, *list;

		if (replies[i].rc != 0)
			continue;
		reached++;
		if (!replies[i].ok ||
		    agd_json_parse(replies[i].body, strlen(replies[i].body), &doc, NULL) != 0)
			continue;
		/* {"agent": {...}} for a one-agent ps; {"agents": [...]} also
		 * accepted, from daemons that list everything. */
		a = agd_json_get(doc, agd_json_root(doc), "agent");
		list = agents_of(doc);
		if (a == NULL && list != NULL) {
			for (a = agd_json_first(doc, list); a != NULL; a = agd_json_next(doc, a)) {
				const char *aid = NULL;
				if (agd_json_get_str(doc, a, "id", &aid) == 0 && strcmp(aid, id) == 0)
					break;
			}
		}
		if (a != NULL && a->type == AGD_JSON_OBJ && is_here(doc, a)) {
			int live = !has_ended(doc, a);
			if (found == 0 || live) {
				*out = ctx->clu->hosts[i];
				found = live ? 2 : 1;
			}
		}
		agd_json_destroy(&doc);
	}
	cli_replies_free(replies, n);
	free(replies);
	if (found)
		return CLI_EXIT_OK;
	if (reached == 0) {
		cli_errorf(ctx, "no host of %s answered: cannot find agent %s", ctx->cluster, id);
		return CLI_EXIT_UNREACHABLE;
	}
	/* Not resident anywhere: in flight, or known only by pointers. The
	 * daemons' own location service may still place it. */
	{
		long long epoch;
		struct cli_host where;

		if (locate_by_daemons(ctx, id, ctx->clu->hosts, ctx->clu->n, &where, &epoch, 1) ==
			    CLI_EXIT_OK &&
		    where.endpoint[0] != '\0') {
			*out = where;
			return CLI_EXIT_OK;
		}
	}
	cli_errorf(ctx, "unknown agent %s (on none of the %d hosts that answered)", id, reached);
	return CLI_EXIT_NOTFOUND;
}

const struct cli_cmd cli_ps_cmds[] = {
	{ "ps", cmd_ps, "[--all] [--ended]", "live agents of a host (or of every host, with their location)" },
	{ "locate", cmd_locate, "AGENT", "where an agent is now, as the daemons' location service says" },
	{ NULL, NULL, NULL, NULL },
};
