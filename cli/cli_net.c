/*
 * cli_net.c: request/reply over the control channel (see cli_net.h).
 *
 * Each request uses its own context and REQ socket, so requests to several
 * hosts run on several threads at once with nothing shared but the reply
 * table of a fan-out, which is reference-counted: the caller may stop
 * waiting for a slow host, and whichever of the caller and the last thread
 * lets go of the table frees it.
 */
#include "cli_net.h"

#include "agd_ctl.h"
#include "agd_json.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

int cli_ctx_cluster(struct cli_ctx *ctx, int required)
{
	int line = 0, rc;

	if (ctx->clu != NULL)
		return CLI_EXIT_OK;
	if (ctx->cluster == NULL || ctx->cluster[0] == '\0') {
		if (!required)
			return CLI_EXIT_OK;
		cli_errorf(ctx, "no cluster file: give --cluster FILE or set AGENTCTL_CLUSTER");
		return CLI_EXIT_USAGE;
	}
	rc = cli_cluster_load(ctx->cluster, &ctx->clu, &line);
	if (rc == CLI_CLUSTER_ERR_IO) {
		cli_errorf(ctx, "cannot read cluster file %s: %s", ctx->cluster,
			strerror(errno));
		return CLI_EXIT_NOTFOUND;
	}
	if (rc != 0) {
		if (line > 0)
			cli_errorf(ctx, "%s:%d: %s", ctx->cluster, line,
				cli_cluster_strerror(rc));
		else
			cli_errorf(ctx, "%s: %s", ctx->cluster, cli_cluster_strerror(rc));
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

int cli_resolve(struct cli_ctx *ctx, const char *spec, struct cli_host *out)
{
	const struct cli_host *h;
	int rc;

	memset(out, 0, sizeof *out);
	if (strstr(spec, "://") != NULL) {
		if (strlen(spec) >= sizeof out->endpoint) {
			cli_errorf(ctx, "endpoint too long: %.64s...", spec);
			return CLI_EXIT_USAGE;
		}
		/* An endpoint names itself; if the cluster file knows it, take
		 * its name, so output says "h2" rather than a URL. */
		if (cli_ctx_cluster(ctx, 0) == CLI_EXIT_OK && ctx->clu != NULL)
			for (size_t i = 0; i < ctx->clu->n; i++)
				if (strcmp(ctx->clu->hosts[i].endpoint, spec) == 0) {
					*out = ctx->clu->hosts[i];
					return CLI_EXIT_OK;
				}
		snprintf(out->name, sizeof out->name, "%.*s", (int)sizeof out->name - 1, spec);
		snprintf(out->endpoint, sizeof out->endpoint, "%s", spec);
		return CLI_EXIT_OK;
	}
	rc = cli_ctx_cluster(ctx, 0);
	if (rc != CLI_EXIT_OK)
		return rc;
	h = cli_cluster_find(ctx->clu, spec);
	if (h == NULL) {
		if (ctx->clu == NULL)
			cli_errorf(ctx, "unknown host %s (no cluster file: give --cluster FILE, "
				"set AGENTCTL_CLUSTER, or name an endpoint such as tcp://HOST:PORT)", spec);
		else
			cli_errorf(ctx, "unknown host %s (not in %s)", spec, ctx->cluster);
		return CLI_EXIT_NOTFOUND;
	}
	*out = *h;
	return CLI_EXIT_OK;
}

int cli_target(struct cli_ctx *ctx, struct cli_host *out)
{
	const char *h = ctx->host ? ctx->host : getenv("AGENTCTL_HOST");
	int rc;

	if (h != NULL && h[0] != '\0')
		return cli_resolve(ctx, h, out);
	rc = cli_ctx_cluster(ctx, 0);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (ctx->clu != NULL && ctx->clu->n > 0) {
		*out = ctx->clu->hosts[0];
		return CLI_EXIT_OK;
	}
	return cli_resolve(ctx, "tcp://127.0.0.1:7400", out);
}

/* Receives one frame into a fresh malloc'd, NUL-terminated buffer. */
static char *recv_frame(void *sock, int *more)
{
	zmq_msg_t m;
	char *s = NULL;

	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, sock, 0) >= 0) {
		size_t n = zmq_msg_size(&m);
		s = malloc(n + 1);
		if (s != NULL) {
			memcpy(s, zmq_msg_data(&m), n);
			s[n] = '\0';
		}
		*more = zmq_msg_more(&m);
	}
	zmq_msg_close(&m);
	return s;
}

int cli_request_ep(const char *endpoint, int timeout_ms, const char *cmd, const char *body,
		   size_t body_len, int *ok, char **reply)
{
	void *zctx = zmq_ctx_new();
	void *sock = zctx ? zmq_socket(zctx, ZMQ_REQ) : NULL;
	char *version = NULL, *status = NULL, *payload = NULL;
	int linger = 0, more = 0, rc = CLI_EXIT_UNREACHABLE;

	*reply = NULL;
	*ok = 0;
	if (sock == NULL)
		goto out;
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
	zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
	zmq_setsockopt(sock, ZMQ_SNDTIMEO, &timeout_ms, sizeof timeout_ms);
	if (zmq_connect(sock, endpoint) != 0)
		goto out;
	if (zmq_send(sock, AGD_CTL_VERSION, strlen(AGD_CTL_VERSION), ZMQ_SNDMORE) < 0 ||
	    zmq_send(sock, cmd, strlen(cmd), ZMQ_SNDMORE) < 0 ||
	    zmq_send(sock, body, body_len, 0) < 0)
		goto out;
	version = recv_frame(sock, &more);
	if (version == NULL || !more || strcmp(version, AGD_CTL_VERSION) != 0)
		goto out;
	status = recv_frame(sock, &more);
	if (status == NULL || !more)
		goto out;
	payload = recv_frame(sock, &more);
	if (payload == NULL)
		goto out;
	*ok = strcmp(status, AGD_CTL_OK) == 0;
	*reply = payload;
	payload = NULL;
	rc = 0;
out:
	free(version);
	free(status);
	free(payload);
	if (sock != NULL)
		zmq_close(sock);
	if (zctx != NULL)
		zmq_ctx_term(zctx);
	return rc;
}

int cli_request(const struct cli_ctx *ctx, const char *endpoint, const char *cmd,
		const char *body, int *ok, char **reply)
{
	return cli_request_ep(endpoint, ctx->timeout_ms, cmd, body, strlen(body), ok, reply);
}

int cli_error_exit(const char *body)
{
	struct agd_json *doc = NULL;
	const char *code = NULL;
	int rc = CLI_EXIT_REFUSED;

	if (body == NULL || agd_json_parse(body, strlen(body), &doc, NULL) != 0)
		return CLI_EXIT_REFUSED;
	if (agd_json_get_str(doc, agd_json_root(doc), "code", &code) == 0) {
		if (strcmp(code, "not_found") == 0 || strcmp(code, "unknown_agent") == 0 ||
		    strcmp(code, "unknown_host") == 0 || strcmp(code, "notfound") == 0)
			rc = CLI_EXIT_NOTFOUND;
		else if (strcmp(code, "untrusted") == 0 || strcmp(code, "signature") == 0)
			rc = CLI_EXIT_UNTRUSTED;
	}
	agd_json_destroy(&doc);
	return rc;
}

/* The daemon's error message, or the whole body when it has none. */
static void print_refusal(struct cli_ctx *ctx, const struct cli_host *h, const char *cmd,
			  const char *body, int rc)
{
	struct agd_json *doc = NULL;
	const char *msg = NULL;

	if (body != NULL && agd_json_parse(body, strlen(body), &doc, NULL) == 0)
		agd_json_get_str(doc, agd_json_root(doc), "error", &msg);
	if (msg == NULL)
		msg = body ? body : "(no reason given)";
	if (rc == CLI_EXIT_UNTRUSTED)
		cli_errorf(ctx, "%s: untrusted: %s", h->name, msg);
	else if (rc == CLI_EXIT_NOTFOUND)
		cli_errorf(ctx, "%s: not found: %s", h->name, msg);
	else
		cli_errorf(ctx, "%s refused %s: %s", h->name, cmd, msg);
	agd_json_destroy(&doc);
}

int cli_call(struct cli_ctx *ctx, const struct cli_host *h, const char *cmd, const char *body,
	     char **reply)
{
	int ok = 0, rc;

	*reply = NULL;
	rc = cli_request(ctx, h->endpoint, cmd, body, &ok, reply);
	if (rc != 0) {
		cli_errorf(ctx, "host %s (%s) did not answer within %d ms: is agentd running there?",
			h->name, h->endpoint, ctx->timeout_ms);
		return CLI_EXIT_UNREACHABLE;
	}
	if (!ok) {
		rc = cli_error_exit(*reply);
		print_refusal(ctx, h, cmd, *reply, rc);
		return rc;
	}
	return CLI_EXIT_OK;
}

/* The fan-out's shared table: one slot per host, and a count of the threads
 * that still hold it, plus one for the caller while it waits. */
struct fanout {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;          /* holders; the last one frees the table */
	size_t pending;    /* threads not finished yet */
	int timeout_ms;
	char *cmd;         /* a copy: the caller may return before a thread ends */
	struct slot {
		char endpoint[CLI_ENDPOINT_MAX];
		char *body;        /* a copy of this request's body */
		struct cli_reply r;
		int done;
	} *slots;
	size_t n;
};

struct job {
	struct fanout *f;
	size_t i;
};

static void fanout_unref(struct fanout *f)
{
	int last;

	pthread_mutex_lock(&f->mu);
	last = --f->refs == 0;
	pthread_mutex_unlock(&f->mu);
	if (!last)
		return;
	for (size_t i = 0; i < f->n; i++)
		free(f->slots[i].r.body);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	for (size_t i = 0; i < f->n; i++)
		free(f->slots[i].body);
	free(f->slots);
	free(f->cmd);
	free(f);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void *fanout_run(void *arg)
{
	struct job *j = arg;
	struct fanout *f = j->f;
	struct slot *s = &f->slots[j->i];
	long t0 = now_ms();
	char *reply = NULL;
	int ok = 0;
	int rc = cli_request_ep(s->endpoint, f->timeout_ms, f->cmd, s->body, strlen(s->body), &ok,
				&reply);

	free(j);
	pthread_mutex_lock(&f->mu);
	s->r.rc = rc;
	s->r.ok = ok;
	s->r.body = reply;
	s->r.ms = now_ms() - t0;
	s->done = 1;
	f->pending--;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	fanout_unref(f);
	return NULL;
}

int cli_request_all(const struct cli_ctx *ctx, const struct cli_host *hosts, size_t n,
		    const char *cmd, const char *body, struct cli_reply *out)
{
	const char **bodies = malloc((n ? n : 1) * sizeof *bodies);
	int rc;

	if (bodies == NULL)
		return CLI_EXIT_FAIL;
	for (size_t i = 0; i < n; i++)
		bodies[i] = body;
	rc = cli_request_each(ctx, hosts, bodies, n, cmd, out);
	free(bodies);
	return rc;
}

int cli_request_each(const struct cli_ctx *ctx, const struct cli_host *hosts,
		     const char *const *bodies, size_t n, const char *cmd, struct cli_reply *out)
{
	struct fanout *f = calloc(1, sizeof *f);
	struct timespec deadline;
	pthread_attr_t attr;
	int rc = CLI_EXIT_FAIL;

	memset(out, 0, n * sizeof *out);
	if (f == NULL)
		return CLI_EXIT_FAIL;
	f->slots = calloc(n ? n : 1, sizeof *f->slots);
	f->cmd = strdup(cmd);
	if (f->slots == NULL || f->cmd == NULL) {
		free(f->slots);
		free(f->cmd);
		free(f);
		return CLI_EXIT_FAIL;
	}
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->refs = 1;
	f->n = n;
	f->timeout_ms = ctx->timeout_ms;
	pthread_attr_init(&attr);
	/* Detached: the caller waits on the condition, not on the threads, so
	 * that a host that hangs past the deadline cannot hold the command. */
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (size_t i = 0; i < n; i++) {
		struct job *j = malloc(sizeof *j);
		pthread_t t;

		snprintf(f->slots[i].endpoint, sizeof f->slots[i].endpoint, "%s", hosts[i].endpoint);
		f->slots[i].r.rc = CLI_EXIT_UNREACHABLE;
		f->slots[i].body = strdup(bodies[i]);
		if (j == NULL || f->slots[i].body == NULL) {
			free(j);
			continue;
		}
		j->f = f;
		j->i = i;
		pthread_mutex_lock(&f->mu);
		f->refs++;
		f->pending++;
		pthread_mutex_unlock(&f->mu);
		if (pthread_create(&t, &attr, fanout_run, j) != 0) {
			free(j);
			pthread_mutex_lock(&f->mu);
			f->refs--;
			f->pending--;
			pthread_mutex_unlock(&f->mu);
		}
	}
	pthread_attr_destroy(&attr);

	/* Every socket gives up after timeout_ms; the grace covers connecting
	 * and tearing down contexts. */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += (ctx->timeout_ms + 2000) / 1000;
	deadline.tv_nsec += (long)((ctx->timeout_ms + 2000) % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&f->mu);
	while (f->pending > 0)
		if (pthread_cond_timedwait(&f->cv, &f->mu, &deadline) == ETIMEDOUT)
			break;
	for (size_t i = 0; i < n; i++) {
		struct slot *s = &f->slots[i];
		if (!s->done) {
			out[i].rc = CLI_EXIT_UNREACHABLE;
			continue;
		}
		out[i] = s->r;
		s->r.body = NULL; /* handed to the caller */
	}
	pthread_mutex_unlock(&f->mu);
	rc = 0;
	fanout_unref(f);
	return rc;
}

void cli_replies_free(struct cli_reply *r, size_t n)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(r[i].body);
		r[i].body = NULL;
	}
}

int cli_call_agent(struct cli_ctx *ctx, const char *id, struct cli_host *h, const char *cmd,
		   const char *body, char **reply)
{
	FILE *err = ctx->err;
	struct cli_host moved;
	char saved[sizeof ctx->errmsg];
	int rc;

	/* First try quietly: "not found" here may only mean "moved on". */
	ctx->err = NULL;
	rc = cli_call(ctx, h, cmd, body, reply);
	ctx->err = err;
	if (rc == CLI_EXIT_NOTFOUND) {
		snprintf(saved, sizeof saved, "%s", ctx->errmsg);
		if (cli_relocate(ctx, id, h, &moved) == CLI_EXIT_OK) {
			free(*reply);
			*h = moved;
			return cli_call(ctx, h, cmd, body, reply);
		}
		snprintf(ctx->errmsg, sizeof ctx->errmsg, "%s", saved);
	}
	if (rc != CLI_EXIT_OK && err != NULL)
		fprintf(err, "agentctl: %s\n", ctx->errmsg);
	return rc;
}
