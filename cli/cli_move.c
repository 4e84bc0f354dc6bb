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

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum move_kind { MOVE_PUSH, MOVE_PULL, MOVE_CLONE };

static const char *const verbs[] = { "push", "pull", "clone" };

/* ---- progress: the source's `transfers`, polled while a move runs ---- */

#define WATCH_PERIOD_MS 250
#define WATCH_SLOW_MS 1000 /* a move this old is shown whatever its size */

/* Whether moves get a progress line: on a terminal, or when
 * AGENTCTL_PROGRESS=1 asks for it (a script that keeps stderr). */
static int watch_wanted(const struct cli_ctx *ctx)
{
	const char *force = getenv("AGENTCTL_PROGRESS");

	if (ctx->quiet || ctx->json || ctx->err == NULL)
		return 0;
	return isatty(fileno(ctx->err)) || (force != NULL && strcmp(force, "1") == 0);
}

/* A move being watched; the thread only reads it, except `drawn`. */
struct watch {
	struct cli_ctx *ctx;   /* read-only here: timeout_ms */
	FILE *err;             /* ctx->err when the watch began (cli_call_agent
				  sets ctx->err aside while it asks) */
	char endpoint[CLI_ENDPOINT_MAX]; /* the source's control endpoint (a copy:
					    the caller's may change meanwhile) */
	char from[CLI_NAME_MAX];
	const char *agent, *verb, *to;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;             /* under mu */
	int drawn;            /* a line was drawn: end it */
	pthread_t th;
};

/* Asks the source how the move stands and redraws the line. Returns 1 when
 * the source lists the move, 0 when not, -1 when it did not answer. */
static int watch_poll(struct watch *wt)
{
	char body[96], *reply = NULL, size[32];
	struct agd_json *doc = NULL;
	const struct agd_json_val *list, *t;
	const char *phase = "?";
	long long bytes = 0, elapsed = 0;
	int ok = 0, rc, tmo = wt->ctx->timeout_ms < 1000 ? wt->ctx->timeout_ms : 1000;

	snprintf(body, sizeof body, "{\"agent\":\"%s\"}", wt->agent);
	rc = cli_request_ep(wt->endpoint, tmo, "transfers", body, strlen(body), &ok, &reply);
	if (rc != 0 || !ok || agd_json_parse(reply, strlen(reply), &doc, NULL) != 0) {
		free(reply);
		return -1;
	}
	free(reply);
	list = agd_json_get(doc, agd_json_root(doc), "transfers");
	t = list ? agd_json_first(doc, list) : NULL;
	if (t == NULL) {
		agd_json_destroy(&doc);
		return 0;
	}
	agd_json_get_str(doc, t, "phase", &phase);
	agd_json_get_int(doc, t, "bytes", &bytes);
	agd_json_get_int(doc, t, "elapsed_ms", &elapsed);
	if (bytes >= (long long)CLI_PROGRESS_MIN || elapsed >= WATCH_SLOW_MS) {
		fprintf(wt->err, "\r%s %s %s -> %s: %s %s, %.1f s\033[K", wt->verb, wt->agent,
			wt->from, wt->to, phase, cli_fmt_bytes((double)bytes, size, sizeof size),
			(double)elapsed / 1000.0);
		fflush(wt->err);
		wt->drawn = 1;
	}
	agd_json_destroy(&doc);
	return 1;
}

static void *watch_main(void *arg)
{
	struct watch *wt = arg;

	pthread_mutex_lock(&wt->mu);
	for (;;) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += WATCH_PERIOD_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!wt->stop && pthread_cond_timedwait(&wt->cv, &wt->mu, &until) != ETIMEDOUT)
			;
		if (wt->stop)
			break;
		pthread_mutex_unlock(&wt->mu);
		watch_poll(wt);
		pthread_mutex_lock(&wt->mu);
	}
	pthread_mutex_unlock(&wt->mu);
	return NULL;
}

/* Starts watching (when wanted); returns 1 if a thread runs. */
static int watch_start(struct watch *wt)
{
	if (!watch_wanted(wt->ctx))
		return 0;
	pthread_mutex_init(&wt->mu, NULL);
	pthread_cond_init(&wt->cv, NULL);
	if (pthread_create(&wt->th, NULL, watch_main, wt) != 0) {
		pthread_cond_destroy(&wt->cv);
		pthread_mutex_destroy(&wt->mu);
		return 0;
	}
	return 1;
}

/* Stops the thread; the last line drawn stays, ended. */
static void watch_stop(struct watch *wt)
{
	pthread_mutex_lock(&wt->mu);
	wt->stop = 1;
	pthread_cond_signal(&wt->cv);
	pthread_mutex_unlock(&wt->mu);
	pthread_join(wt->th, NULL);
	pthread_cond_destroy(&wt->cv);
	pthread_mutex_destroy(&wt->mu);
	if (wt->drawn)
		fputc('\n', wt->err);
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What the target says of the pull it asked for: "arrived", "refused"
 * (why set), "requested"; "unanswered" when the request got no answer (the
 * target busy or stopped for a while: ask again); NULL when it cannot say
 * (a daemon without `transfers`, or the pull no longer listed). *doc holds
 * the strings; caller destroys. */
static const char *pull_state(struct cli_ctx *ctx, const struct cli_host *dst, const char *id,
			      struct agd_json **doc, const char **why)
{
	char body[96], *reply = NULL;
	const struct agd_json_val *p;
	const char *state = NULL;
	int ok = 0;

	*doc = NULL;
	*why = "";
	snprintf(body, sizeof body, "{\"agent\":\"%s\"}", id);
	if (cli_request(ctx, dst->endpoint, "transfers", body, &ok, &reply) != 0) {
		free(reply);
		return "unanswered";
	}
	if (!ok || agd_json_parse(reply, strlen(reply), doc, NULL) != 0) {
		free(reply);
		return NULL;
	}
	free(reply);
	p = agd_json_get(*doc, agd_json_root(*doc), "pull");
	if (p == NULL || agd_json_get_str(*doc, p, "state", &state) != 0)
		return NULL;
	agd_json_get_str(*doc, p, "why", why);
	return state;
}

/* A pull is asked of the target, which answers at once: waits until the
 * agent has arrived there or the source refused. The source's progress is
 * shown meanwhile, and while the source still lists the move the wait goes
 * on; otherwise it ends after --timeout. */
static int pull_wait(struct cli_ctx *ctx, const struct cli_host *src, const struct cli_host *dst,
		     const char *id)
{
	struct watch wt = { .ctx = ctx, .err = ctx->err, .agent = id, .verb = "pull", .to = dst->name };
	long long deadline = mono_ms() + ctx->timeout_ms;
	int show = watch_wanted(ctx), rc = CLI_EXIT_OK;

	snprintf(wt.endpoint, sizeof wt.endpoint, "%s", src->endpoint);
	snprintf(wt.from, sizeof wt.from, "%s", src->name);
	for (;;) {
		struct agd_json *doc = NULL;
		const char *why, *state = pull_state(ctx, dst, id, &doc, &why);

		if (state == NULL || strcmp(state, "arrived") == 0) {
			agd_json_destroy(&doc); /* arrived, or nothing more to learn */
			break;
		}
		if (strcmp(state, "refused") == 0) {
			cli_errorf(ctx, "%s refused to send %s to %s: %s", src->name, id, dst->name, why);
			agd_json_destroy(&doc);
			rc = CLI_EXIT_REFUSED;
			break;
		}
		agd_json_destroy(&doc);
		if (show ? watch_poll(&wt) == 1 : 0)
			deadline = mono_ms() + ctx->timeout_ms;
		if (mono_ms() > deadline) {
			cli_errorf(ctx, "%s was asked for %s, which has not arrived on %s within %d ms",
				   src->name, id, dst->name, ctx->timeout_ms);
			rc = CLI_EXIT_FAIL;
			break;
		}
		nap_ms(show ? WATCH_PERIOD_MS : 50);
	}
	if (wt.drawn)
		fputc('\n', ctx->err);
	return rc;
}

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
	if (kind == MOVE_PULL) {
		rc = cli_call(ctx, ask, verbs[kind], body, &reply);
		if (rc == CLI_EXIT_OK && (rc = pull_wait(ctx, &src, &dst, pos[0])) != CLI_EXIT_OK) {
			free(reply); /* "requested" is not the outcome */
			reply = NULL;
		}
	} else {
		struct watch wt = { .ctx = ctx, .err = ctx->err, .agent = pos[0], .verb = verbs[kind],
				    .to = dst.name };
		int watching;

		snprintf(wt.endpoint, sizeof wt.endpoint, "%s", src.endpoint);
		snprintf(wt.from, sizeof wt.from, "%s", src.name);
		watching = watch_start(&wt);

		rc = cli_call_agent(ctx, pos[0], &src, verbs[kind], body, &reply);
		if (watching)
			watch_stop(&wt);
	}
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
