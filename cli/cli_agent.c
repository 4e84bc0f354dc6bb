/*
 * cli_agent.c: commands addressed to one agent: send, call, kill, logs.
 *
 * The agent is found with cli_locate (--host, or the host of the cluster
 * whose ps lists it). Messages and call arguments are JSON values given on
 * the command line; a word that is not JSON is sent as a string, so
 * `send a1 hello` and `send a1 '"hello"'` mean the same thing.
 *
 * `call` also takes several agents separated by commas (the replicas of one
 * service): the call goes to every replica at once, one thread each, and
 * the answers are combined (--combine first|all|majority): the client-side
 * replication transparency of the seeds.
 */
#include "cli.h"
#include "cli_args.h"
#include "cli_net.h"
#include "cli_out.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_REPLICAS 32
#define MAX_ARGS 32

/* Writes word as a JSON value: itself when it parses as JSON, else as a
 * string. */
static void write_value(struct agd_jw *w, const char *word)
{
	struct agd_json *doc = NULL;

	if (agd_json_parse(word, strlen(word), &doc, NULL) == 0) {
		cli_json_copy(w, doc, agd_json_root(doc));
		agd_json_destroy(&doc);
	} else {
		agd_jw_str(w, word);
	}
}

/* Prints a JSON value for people: strings bare, the rest as JSON. */
static void print_value(struct cli_ctx *ctx, const struct agd_json *doc, const struct agd_json_val *v)
{
	struct agd_jw w;
	char *text;

	if (v->type == AGD_JSON_STR) {
		fprintf(ctx->out, "%s\n", v->str);
		return;
	}
	agd_jw_init(&w);
	cli_json_copy(&w, doc, v);
	text = agd_jw_take(&w, NULL);
	fprintf(ctx->out, "%s\n", text ? text : "(out of memory)");
	free(text);
}

/* Sends one request about an agent and, on success, either emits the reply
 * (--json) or hands it back parsed. */
static int agent_request(struct cli_ctx *ctx, const char *id, const char *cmd, const char *body,
			 struct agd_json **doc_out, struct cli_host *where)
{
	struct cli_host h;
	char *reply = NULL;
	int rc;

	*doc_out = NULL;
	rc = cli_locate(ctx, id, &h);
	if (rc != CLI_EXIT_OK)
		return rc;
	rc = cli_call_agent(ctx, id, &h, cmd, body, &reply);
	if (rc == CLI_EXIT_OK)
		rc = cli_reply_parse(ctx, h.name, reply, doc_out);
	else if (ctx->json && reply != NULL)
		cli_json_emit(ctx, reply);
	free(reply);
	if (where != NULL)
		*where = h;
	return rc;
}

static int cmd_send(struct cli_ctx *ctx, int argc, char **argv)
{
	char *pos[2];
	int npos, rc;
	struct agd_jw w;
	struct agd_json *doc = NULL;
	char *body;
	struct cli_host h;

	rc = cli_parse_opts(ctx, argc, argv, NULL, pos, 2, &npos);
	if (rc != CLI_EXIT_OK || npos != 2)
		return CLI_EXIT_USAGE;
	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	agd_jw_key(&w, "agent");
	agd_jw_str(&w, pos[0]);
	agd_jw_key(&w, "msg");
	write_value(&w, pos[1]);
	agd_jw_obj_end(&w);
	body = agd_jw_take(&w, NULL);
	if (body == NULL)
		return CLI_EXIT_FAIL;
	rc = agent_request(ctx, pos[0], "send", body, &doc, &h);
	free(body);
	if (rc == CLI_EXIT_OK) {
		if (ctx->json) {
			agd_jw_init(&w);
			agd_jw_obj_begin(&w);
			agd_jw_key(&w, "agent");
			agd_jw_str(&w, pos[0]);
			agd_jw_key(&w, "host");
			agd_jw_str(&w, h.name);
			agd_jw_key(&w, "reply");
			cli_json_copy(&w, doc, agd_json_root(doc));
			agd_jw_obj_end(&w);
			rc = cli_emit_jw(ctx, &w);
		} else {
			fprintf(ctx->out, "sent to %s via %s\n", pos[0], h.name);
		}
	}
	agd_json_destroy(&doc);
	return rc;
}

static int cmd_kill(struct cli_ctx *ctx, int argc, char **argv)
{
	char *pos[1];
	int npos, rc;
	struct agd_jw w;
	struct agd_json *doc = NULL;
	char *body;
	struct cli_host h;

	rc = cli_parse_opts(ctx, argc, argv, NULL, pos, 1, &npos);
	if (rc != CLI_EXIT_OK || npos != 1)
		return CLI_EXIT_USAGE;
	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	agd_jw_key(&w, "agent");
	agd_jw_str(&w, pos[0]);
	agd_jw_obj_end(&w);
	if ((body = agd_jw_take(&w, NULL)) == NULL)
		return CLI_EXIT_FAIL;
	rc = agent_request(ctx, pos[0], "kill", body, &doc, &h);
	free(body);
	if (rc == CLI_EXIT_OK) {
		if (ctx->json) {
			agd_jw_init(&w);
			agd_jw_obj_begin(&w);
			agd_jw_key(&w, "agent");
			agd_jw_str(&w, pos[0]);
			agd_jw_key(&w, "host");
			agd_jw_str(&w, h.name);
			agd_jw_key(&w, "killed");
			agd_jw_bool(&w, 1);
			agd_jw_obj_end(&w);
			rc = cli_emit_jw(ctx, &w);
		} else {
			fprintf(ctx->out, "killed %s on %s\n", pos[0], h.name);
		}
	}
	agd_json_destroy(&doc);
	return rc;
}

/* Prints one log entry for people: "TIME HOST TEXT", the time in UTC to
 * the millisecond (the hosts' clocks are what order lines across hosts). */
static void print_entry(struct cli_ctx *ctx, const struct agd_json *doc, const struct agd_json_val *e)
{
	long long t = 0;
	const char *host = "?", *text = "";
	char when[40] = "-";
	struct tm tm;
	time_t secs;

	agd_json_get_int(doc, e, "t", &t);
	agd_json_get_str(doc, e, "host", &host);
	agd_json_get_str(doc, e, "text", &text);
	secs = (time_t)(t / 1000);
	if (t > 0 && gmtime_r(&secs, &tm) != NULL) {
		char day[32];

		strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(when, sizeof when, "%s.%03lldZ", day, t % 1000);
	}
	fprintf(ctx->out, "%s %s %s\n", when, host[0] ? host : "?", text);
}

static int cmd_logs(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *lines_s = NULL;
	const struct cli_opt opts[] = { { "--lines", "-n", &lines_s, NULL }, { NULL, NULL, NULL, NULL } };
	char *pos[1];
	int npos, rc;
	long lines = 100;
	struct agd_jw w;
	struct agd_json *doc = NULL;
	const struct agd_json_val *list, *l;
	char *body;

	rc = cli_parse_opts(ctx, argc, argv, opts, pos, 1, &npos);
	if (rc != CLI_EXIT_OK || npos != 1)
		return CLI_EXIT_USAGE;
	if (lines_s != NULL && cli_parse_uint(lines_s, 1000000, &lines) != 0) {
		cli_errorf(ctx, "--lines wants a number, not '%s'", lines_s);
		return CLI_EXIT_USAGE;
	}
	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	agd_jw_key(&w, "agent");
	agd_jw_str(&w, pos[0]);
	agd_jw_key(&w, "lines");
	agd_jw_int(&w, lines);
	agd_jw_obj_end(&w);
	if ((body = agd_jw_take(&w, NULL)) == NULL)
		return CLI_EXIT_FAIL;
	rc = agent_request(ctx, pos[0], "logs", body, &doc, NULL);
	free(body);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (ctx->json) {
		agd_jw_init(&w);
		cli_json_copy(&w, doc, agd_json_root(doc));
		rc = cli_emit_jw(ctx, &w);
	} else if ((list = agd_json_get(doc, agd_json_root(doc), "entries")) != NULL &&
		   list->type == AGD_JSON_ARR) {
		for (l = agd_json_first(doc, list); l != NULL; l = agd_json_next(doc, l))
			if (l->type == AGD_JSON_OBJ)
				print_entry(ctx, doc, l);
	} else {
		/* A daemon from before entries: the bare lines. */
		list = agd_json_get(doc, agd_json_root(doc), "lines");
		if (list == NULL || list->type != AGD_JSON_ARR) {
			cli_errorf(ctx, "the reply to logs has no \"lines\" array");
			rc = CLI_EXIT_FAIL;
		}
		for (l = list ? agd_json_first(doc, list) : NULL; l != NULL; l = agd_json_next(doc, l))
			print_value(ctx, doc, l);
	}
	agd_json_destroy(&doc);
	return rc;
}

/* How answers of several replicas become one. */
enum combine { COMBINE_FIRST, COMBINE_ALL, COMBINE_MAJORITY };

/* Serialises a result for comparing answers (majority vote). */
static char *result_key(const struct agd_json *doc, const struct agd_json_val *v)
{
	struct agd_jw w;

	agd_jw_init(&w);
	cli_json_copy(&w, doc, v);
	return agd_jw_take(&w, NULL);
}

static int cmd_call(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *combine_s = NULL, *wait_s = NULL;
	const struct cli_opt opts[] = {
		{ "--combine", NULL, &combine_s, NULL },
		{ "--wait", "-w", &wait_s, NULL },
		{ NULL, NULL, NULL, NULL },
	};
	char *pos[2 + MAX_ARGS], *ids[MAX_REPLICAS], *idbuf = NULL, *save = NULL;
	char *bodies[MAX_REPLICAS] = { 0 }, *keys[MAX_REPLICAS] = { 0 };
	struct cli_host hosts[MAX_REPLICAS];
	struct cli_reply replies[MAX_REPLICAS];
	struct agd_json *docs[MAX_REPLICAS] = { 0 };
	const struct agd_json_val *results[MAX_REPLICAS] = { 0 };
	enum combine how = COMBINE_FIRST;
	int npos, rc, nok = 0, worst = CLI_EXIT_OK, best = -1, best_votes = 0;
	long wait_ms = 0;
	size_t nids = 0;
	struct agd_jw w;

	memset(replies, 0, sizeof replies);
	rc = cli_parse_opts(ctx, argc, argv, opts, pos, 2 + MAX_ARGS, &npos);
	if (rc != CLI_EXIT_OK || npos < 2)
		return CLI_EXIT_USAGE;
	if (combine_s != NULL) {
		if (strcmp(combine_s, "first") == 0)
			how = COMBINE_FIRST;
		else if (strcmp(combine_s, "all") == 0)
			how = COMBINE_ALL;
		else if (strcmp(combine_s, "majority") == 0)
			how = COMBINE_MAJORITY;
		else {
			cli_errorf(ctx, "--combine wants first, all or majority");
			return CLI_EXIT_USAGE;
		}
	}
	/* How long the agent may take to answer: by default the daemon's
	 * own limit, bounded by our request timeout. */
	if (wait_s != NULL && cli_parse_uint(wait_s, 3600L * 1000, &wait_ms) != 0) {
		cli_errorf(ctx, "--wait wants milliseconds");
		return CLI_EXIT_USAGE;
	}
	if (wait_ms == 0)
		wait_ms = ctx->timeout_ms > 500 ? ctx->timeout_ms - 250 : ctx->timeout_ms;
	else if (ctx->timeout_ms < wait_ms + 500)
		ctx->timeout_ms = (int)wait_ms + 500;
	idbuf = strdup(pos[0]);
	if (idbuf == NULL)
		return CLI_EXIT_FAIL;
	for (char *t = strtok_r(idbuf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		if (nids == MAX_REPLICAS) {
			cli_errorf(ctx, "at most %d agents in one call", MAX_REPLICAS);
			free(idbuf);
			return CLI_EXIT_USAGE;
		}
		ids[nids++] = t;
	}
	if (nids == 0) {
		free(idbuf);
		return CLI_EXIT_USAGE;
	}
	for (size_t i = 0; i < nids; i++) {
		rc = cli_locate(ctx, ids[i], &hosts[i]);
		if (rc != CLI_EXIT_OK)
			goto out;
		agd_jw_init(&w);
		agd_jw_obj_begin(&w);
		agd_jw_key(&w, "agent");
		agd_jw_str(&w, ids[i]);
		agd_jw_key(&w, "method");
		agd_jw_str(&w, pos[1]);
		agd_jw_key(&w, "args");
		agd_jw_arr_begin(&w);
		for (int a = 2; a < npos; a++)
			write_value(&w, pos[a]);
		agd_jw_arr_end(&w);
		agd_jw_key(&w, "timeout_ms");
		agd_jw_int(&w, wait_ms);
		agd_jw_obj_end(&w);
		bodies[i] = agd_jw_take(&w, NULL);
		if (bodies[i] == NULL) {
			rc = CLI_EXIT_FAIL;
			goto out;
		}
	}
	rc = cli_request_each(ctx, hosts, (const char *const *)bodies, nids, "call", replies);
	if (rc != CLI_EXIT_OK)
		goto out;
	for (size_t i = 0; i < nids; i++) {
		int this_rc = CLI_EXIT_OK;
		const char *msg = NULL;

		if (replies[i].rc != 0) {
			cli_errorf(ctx, "%s on %s: no answer within %d ms", ids[i], hosts[i].name,
				   ctx->timeout_ms);
			this_rc = CLI_EXIT_UNREACHABLE;
		} else if (agd_json_parse(replies[i].body, strlen(replies[i].body), &docs[i], NULL) != 0) {
			cli_errorf(ctx, "%s sent a malformed reply", hosts[i].name);
			this_rc = CLI_EXIT_FAIL;
		} else if (!replies[i].ok) {
			agd_json_get_str(docs[i], agd_json_root(docs[i]), "error", &msg);
			this_rc = cli_error_exit(replies[i].body);
			cli_errorf(ctx, "%s.%s on %s failed: %s", ids[i], pos[1], hosts[i].name,
				   msg ? msg : replies[i].body);
		} else {
			results[i] = agd_json_get(docs[i], agd_json_root(docs[i]), "result");
			if (results[i] == NULL)
				results[i] = agd_json_root(docs[i]);
			keys[i] = result_key(docs[i], results[i]);
			nok++;
		}
		if (this_rc != CLI_EXIT_OK && worst == CLI_EXIT_OK)
			worst = this_rc;
	}
	/* The answer: the first replica that answered, or the value most
	 * replicas gave (a strict majority of those asked), or all of them. */
	for (size_t i = 0; i < nids; i++) {
		int votes = 0;
		if (keys[i] == NULL)
			continue;
		for (size_t k = 0; k < nids; k++)
			votes += keys[k] != NULL && strcmp(keys[i], keys[k]) == 0;
		if (votes > best_votes) {
			best_votes = votes;
			best = (int)i;
		}
		if (how == COMBINE_FIRST)
			break;
	}
	if (how == COMBINE_MAJORITY && best >= 0 && (size_t)best_votes * 2 <= nids) {
		cli_errorf(ctx, "no majority: the most common answer came from %d of %zu replicas",
			   best_votes, nids);
		best = -1;
	}
	if (how == COMBINE_ALL ? nok == 0 : best < 0) {
		rc = worst != CLI_EXIT_OK ? worst : CLI_EXIT_FAIL;
		if (ctx->json && nids == 1 && replies[0].rc == 0 && replies[0].body != NULL)
			cli_json_emit(ctx, replies[0].body);
		goto out;
	}
	/* With one agent any failure is the command's; with replicas, the
	 * combined answer stands if the rule was met. */
	rc = nids == 1 ? worst : CLI_EXIT_OK;
	agd_jw_init(&w);
	if (ctx->json) {
		agd_jw_obj_begin(&w);
		agd_jw_key(&w, "method");
		agd_jw_str(&w, pos[1]);
		if (how != COMBINE_ALL) {
			agd_jw_key(&w, "result");
			cli_json_copy(&w, docs[best], results[best]);
			agd_jw_key(&w, "votes");
			agd_jw_int(&w, best_votes);
		}
		agd_jw_key(&w, "replies");
		agd_jw_arr_begin(&w);
		for (size_t i = 0; i < nids; i++) {
			agd_jw_obj_begin(&w);
			agd_jw_key(&w, "agent");
			agd_jw_str(&w, ids[i]);
			agd_jw_key(&w, "host");
			agd_jw_str(&w, hosts[i].name);
			agd_jw_key(&w, "ok");
			agd_jw_bool(&w, results[i] != NULL);
			if (results[i] != NULL) {
				agd_jw_key(&w, "result");
				cli_json_copy(&w, docs[i], results[i]);
			}
			agd_jw_key(&w, "ms");
			agd_jw_int(&w, replies[i].ms);
			agd_jw_obj_end(&w);
		}
		agd_jw_arr_end(&w);
		agd_jw_obj_end(&w);
		if (cli_emit_jw(ctx, &w) != CLI_EXIT_OK)
			rc = CLI_EXIT_FAIL;
	} else if (how == COMBINE_ALL) {
		for (size_t i = 0; i < nids; i++)
			if (results[i] != NULL) {
				fprintf(ctx->out, "%s@%s: ", ids[i], hosts[i].name);
				print_value(ctx, docs[i], results[i]);
			}
	} else {
		print_value(ctx, docs[best], results[best]);
	}
	agd_jw_free(&w);
out:
	for (size_t i = 0; i < nids; i++) {
		free(bodies[i]);
		free(keys[i]);
		agd_json_destroy(&docs[i]);
	}
	cli_replies_free(replies, nids);
	free(idbuf);
	return rc;
}

const struct cli_cmd cli_agent_cmds[] = {
	{ "send", cmd_send, "AGENT MESSAGE", "send a message (JSON, or a word) to an agent wherever it is" },
	{ "call", cmd_call, "AGENT[,AGENT...] METHOD [ARG...] [--combine first|all|majority] [--wait MS]",
	  "call an exported method and print the answer" },
	{ "kill", cmd_kill, "AGENT", "stop an agent" },
	{ "logs", cmd_logs, "AGENT [--lines N]", "what an agent logged" },
	{ NULL, NULL, NULL, NULL },
};
