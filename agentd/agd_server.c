/*
 * agd_server.c: wiring, and the control commands of the runtime (status,
 * run, upload, ps, kill, send, logs): docs/control-protocol.md.
 *
 * Commands run on the dispatcher thread and never run agent code: they
 * decode, check and hand work to the runtime, which queues it for workers.
 */
#include "agd_server.h"

#include "agd_ctl.h"
#include "agd_err.h"
#include "agd_log.h"
#include "agd_loop.h"
#include "agd_rt.h"
#include "agd_vm.h"
#include "mig_segment.h"
#include "mig_state.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define UPLOADS_MAX 8                                  /* segments being uploaded at once */
#define UPLOAD_MAX (MIG_SEGMENT_CANON_MAX + 4096u)     /* bytes of one upload */

struct upload {
	char hash[MIG_SEGMENT_HEX_LEN]; /* announced hash, "" = free slot */
	uint8_t *data;                  /* total bytes */
	size_t total;                   /* announced size */
	size_t have;                    /* contiguous bytes received */
	time_t touched;                 /* for expiry */
};

struct agd_server {
	const struct agd_config *cfg; /* borrowed */
	void *zctx;                   /* ZeroMQ context, owned */
	struct agd_loop *loop;        /* owned */
	struct agd_ctl *ctl;          /* owned */
	struct agd_rt *rt;            /* owned */
	time_t started;               /* for uptime */
	agd_server_status_fn status_fn; /* more `status` keys, or NULL */
	void *status_ud;
	struct upload uploads[UPLOADS_MAX];
};

static void fail(struct agd_ctl_req *req, const char *fmt, const char *arg)
{
	snprintf(req->err, sizeof req->err, fmt, arg);
}

static int get_agent_id(struct agd_ctl_req *req, const char **id)
{
	if (agd_json_get_str(req->doc, req->args, "agent", id) != 0 &&
	    agd_json_get_str(req->doc, req->args, "id", id) != 0) {
		fail(req, "%s", "missing \"agent\" (an agent id)");
		return AGD_ERR_ARG;
	}
	return 0;
}

static int cmd_status(void *ud, struct agd_ctl_req *req, struct agd_jw *w)
{
	struct agd_server *s = ud;

	(void)req;
	agd_jw_key(w, "host");
	agd_jw_str(w, s->cfg->host);
	agd_jw_key(w, "version");
	agd_jw_str(w, "0.1.0");
	agd_jw_key(w, "pid");
	agd_jw_int(w, (long long)getpid());
	agd_jw_key(w, "uptime_s");
	agd_jw_int(w, (long long)(time(NULL) - s->started));
	agd_jw_key(w, "peer");
	agd_jw_str(w, s->cfg->peer_endpoint);
	agd_rt_status_json(s->rt, w);
	if (s->status_fn != NULL)
		s->status_fn(s->status_ud, w);
	return 0;
}

static int b64_decode(const char *in, size_t in_len, uint8_t **out, size_t *out_len)
{
	size_t cap = in_len / 4 * 3 + 3;
	uint8_t *b = malloc(cap ? cap : 1);

	if (b == NULL)
		return AGD_ERR_NOMEM;
	if (sodium_base642bin(b, cap, in, in_len, " \r\n", out_len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0) {
		free(b);
		return AGD_ERR_ARG;
	}
	*out = b;
	return 0;
}

static struct upload *upload_find(struct agd_server *s, const char *hash)
{
	for (int i = 0; i < UPLOADS_MAX; i++)
		if (strcmp(s->uploads[i].hash, hash) == 0)
			return &s->uploads[i];
	return NULL;
}

static void upload_clear(struct upload *u)
{
	free(u->data);
	memset(u, 0, sizeof *u);
}

/* upload {hash, offset, total, data}: one chunk of a large segment, in
 * order; the last one completes it (verified and cached). */
static int cmd_upload(void *ud, struct agd_ctl_req *req, struct agd_jw *w)
{
	struct agd_server *s = ud;
	const char *hash = NULL, *data = NULL;
	long long off = -1, total = -1;
	struct upload *u;
	uint8_t *bytes = NULL;
	size_t n = 0;
	int rc;

	if (agd_json_get_str(req->doc, req->args, "hash", &hash) != 0 ||
	    strlen(hash) != MIG_SEGMENT_HEX_LEN - 1 ||
	    agd_json_get_int(req->doc, req->args, "offset", &off) != 0 ||
	    agd_json_get_int(req->doc, req->args, "total", &total) != 0 ||
	    agd_json_get_str(req->doc, req->args, "data", &data) != 0 || off < 0 || total <= 0 ||
	    (unsigned long long)total > UPLOAD_MAX) {
		fail(req, "%s", "upload wants hash (64 hex), offset, total (bounded) and data (base64)");
		return AGD_ERR_ARG;
	}
	u = upload_find(s, hash);
	if (u == NULL) {
		if (off != 0) {
			fail(req, "%s", "upload must start at offset 0");
			return AGD_ERR_ARG;
		}
		u = upload_find(s, "");
		if (u == NULL) {
			/* Reclaim the stalest slot rather than refusing forever. */
			u = &s->uploads[0];
			for (int i = 1; i < UPLOADS_MAX; i++)
				if (s->uploads[i].touched < u->touched)
					u = &s->uploads[i];
			upload_clear(u);
		}
		u->data = malloc((size_t)total);
		if (u->data == NULL)
			return AGD_ERR_NOMEM;
		snprintf(u->hash, sizeof u->hash, "%s", hash);
		u->total = (size_t)total;
	}
	if ((size_t)off != u->have || (size_t)total != u->total) {
		fail(req, "%s", "upload chunk out of order");
		return AGD_ERR_ARG;
	}
	rc = b64_decode(data, strlen(data), &bytes, &n);
	if (rc != 0 || n > u->total - u->have) {
		free(bytes);
		fail(req, "%s", "bad base64 data, or more than total");
		return AGD_ERR_ARG;
	}
	memcpy(u->data + u->have, bytes, n);
	u->have += n;
	u->touched = time(NULL);
	free(bytes);
	agd_jw_key(w, "have");
	agd_jw_int(w, (long long)u->have);
	if (u->have == u->total) {
		struct agd_code *code = NULL;

		rc = agd_rt_code_add(s->rt, u->data, u->total, &code, req->err, sizeof req->err);
		upload_clear(u);
		if (rc != 0)
			return rc;
		agd_jw_key(w, "segment");
		agd_jw_str(w, code->hex);
		agd_code_unref(s->rt, &code);
	}
	return 0;
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b;
	size_t n;

	if (f == NULL)
		return AGD_ERR_IO;
	b = malloc(UPLOAD_MAX + 1);
	if (b == NULL) {
		fclose(f);
		return AGD_ERR_NOMEM;
	}
	n = fread(b, 1, UPLOAD_MAX + 1, f);
	fclose(f);
	if (n > UPLOAD_MAX) {
		free(b);
		return AGD_ERR_TOOBIG;
	}
	*out = b;
	*len = n;
	return 0;
}

/* run {segment: base64 | hash: hex | path: file | source+name (config
 * allow_source)} [activation] [memory] [instructions] [args] */
static int cmd_run(void *ud, struct agd_ctl_req *req, struct agd_jw *w)
{
	struct agd_server *s = ud;
	const char *b64 = NULL, *hash = NULL, *path = NULL, *src = NULL, *name = NULL, *act = NULL;
	struct agd_run_opts opts = { -1, 0, 0, NULL, NULL, 0 };
	struct mig_buf argbuf = { 0 };
	struct agd_code *code = NULL;
	const struct agd_json_val *args;
	char id[AGD_ID_LEN + 1];
	long long n;
	int rc;

	agd_json_get_str(req->doc, req->args, "name", &name);
	if (agd_json_get_str(req->doc, req->args, "activation", &act) == 0) {
		if (strcmp(act, "resident") == 0)
			opts.activation = AGD_ACTIVATION_RESIDENT;
		else if (strcmp(act, "on-demand") == 0)
			opts.activation = AGD_ACTIVATION_ON_DEMAND;
		else {
			fail(req, "%s", "activation must be resident or on-demand");
			return AGD_ERR_ARG;
		}
	}
	if (agd_json_get_int(req->doc, req->args, "memory", &n) == 0 && n > 0)
		opts.memory = (size_t)n;
	if (agd_json_get_int(req->doc, req->args, "instructions", &n) == 0 && n > 0)
		opts.instructions = (uint64_t)n;
	if (agd_json_get_str(req->doc, req->args, "segment", &b64) == 0) {
		uint8_t *bytes = NULL;
		size_t len = 0;

		rc = b64_decode(b64, strlen(b64), &bytes, &len);
		if (rc != 0) {
			fail(req, "%s", "segment is not valid base64");
			return rc;
		}
		rc = agd_rt_code_add(s->rt, bytes, len, &code, req->err, sizeof req->err);
		free(bytes);
	} else if (agd_json_get_str(req->doc, req->args, "path", &path) == 0) {
		uint8_t *bytes = NULL;
		size_t len = 0;

		rc = read_file(path, &bytes, &len);
		if (rc != 0) {
			fail(req, "cannot read segment file %s", path);
			return rc;
		}
		rc = agd_rt_code_add(s->rt, bytes, len, &code, req->err, sizeof req->err);
		free(bytes);
	} else if (agd_json_get_str(req->doc, req->args, "hash", &hash) == 0) {
		uint8_t h[32];

		if (mig_hash_parse(hash, h) != 0) {
			fail(req, "%s", "hash must be 64 hex digits");
			return AGD_ERR_ARG;
		}
		code = agd_rt_code_find(s->rt, h);
		if (code == NULL) {
			fail(req, "segment %s is not cached here: upload it first", hash);
			return AGD_ERR_NOTFOUND;
		}
		rc = 0;
	} else if (agd_json_get_str(req->doc, req->args, "source", &src) == 0) {
		const struct agd_json_val *v = agd_json_get(req->doc, req->args, "source");

		rc = agd_rt_code_source(s->rt, name, src, v->str_len, &code, req->err,
					sizeof req->err);
	} else {
		fail(req, "%s", "run wants segment (base64), hash, or path");
		return AGD_ERR_ARG;
	}
	if (rc != 0)
		return rc;
	if ((args = agd_json_get(req->doc, req->args, "args")) != NULL) {
		rc = agd_msg_from_json(req->doc, args, &argbuf, req->err, sizeof req->err);
		if (rc != 0) {
			agd_code_unref(s->rt, &code);
			return rc;
		}
		opts.args = argbuf.data;
		opts.args_len = argbuf.len;
	}
	rc = agd_rt_spawn(s->rt, code, &opts, id, req->err, sizeof req->err);
	agd_buf_free(&argbuf);
	if (rc == 0) {
		agd_jw_key(w, "id");
		agd_jw_str(w, id);
		agd_jw_key(w, "name");
		agd_jw_str(w, code->name);
		agd_jw_key(w, "segment");
		agd_jw_str(w, code->hex);
		agd_jw_key(w, "host");
		agd_jw_str(w, s->cfg->host);
	}
	agd_code_unref(s->rt, &code);
	return rc;
}

static int cmd_ps(void *ud, struct agd_ctl_req *req, struct agd_jw *w)
{
	struct agd_server *s = ud;
	const char *id = NULL;
	int all = 1;

	agd_json_get_bool(req->doc, req->args, "all", &all);
	if (agd_json_get_str(req->doc, req->args, "agent", &id) == 0) {
		int rc = agd_rt_agent_json(s->rt, id, w);

		if (rc != 0)
			fail(req, "no agent %s here", id);
		return rc;
	}
	agd_jw_key(w, "host");
	agd_jw_str(w, s->cfg->host);
	agd_rt_ps_json(s->rt, w, all);
	return 0;
}

static int cmd_kill(void *ud, struct agd_ctl_req *req, struct agd_jw *w)
{
	struct agd_server *s = ud;
	const char *id = NULL;
	int rc = get_agent_id(req, &id);

	if (rc != 0)
		return rc;
	rc = agd_rt_kill(s->rt, id, "killed by agentctl");
	if (rc == AGD_ERR_NOTFOUND)
		fail(req, "no agent %s here", id);
	else if (rc == AGD_ERR_STATE)
		fail(req, "agent %s has already ended", id);
	if (rc != 0)
		return rc;
	agd_jw_key(w, "id");
	agd_jw_str(w, id);
	agd_jw_key(w, "killed");
	agd_jw_bool(w, 1);
	return 0;
}

static int cmd_send(void *ud, struct agd_ctl_req *req, struct agd_jw *w)
{
	struct agd_server *s = ud;
	const char *id = NULL;
	const struct agd_json_val *msg;
	struct mig_buf buf = { 0 };
	int rc = get_agent_id(req, &id);

	if (rc != 0)
		return rc;
	msg = agd_json_get(req->doc, req->args, "msg");
	if (msg == NULL) {
		fail(req, "%s", "missing \"msg\"");
		return AGD_ERR_ARG;
	}
	rc = agd_msg_from_json(req->doc, msg, &buf, req->err, sizeof req->err);
	if (rc == 0) {
		rc = agd_rt_send(s->rt, "", id, buf.data, buf.len);
		if (rc == AGD_ERR_NOTFOUND)
			fail(req, "no agent %s here", id);
	}
	agd_buf_free(&buf);
	if (rc != 0)
		return rc;
	agd_jw_key(w, "id");
	agd_jw_str(w, id);
	agd_jw_key(w, "queued");
	agd_jw_bool(w, 1);
	return 0;
}

static int cmd_logs(void *ud, struct agd_ctl_req *req, struct agd_jw *w)
{
	struct agd_server *s = ud;
	const char *id = NULL;
	int rc = get_agent_id(req, &id);

	if (rc != 0)
		return rc;
	long long lines = 0;

	agd_json_get_int(req->doc, req->args, "lines", &lines);
	rc = agd_rt_logs_json(s->rt, id, lines > 0 && lines < 1000000 ? (unsigned)lines : 0, w);
	if (rc != 0)
		fail(req, "no agent %s here", id);
	return rc;
}

int agd_server_new(const struct agd_config *cfg, struct agd_server **out, char *err,
		   size_t err_len)
{
	struct agd_server *s = calloc(1, sizeof *s);
	int rc;

	*out = NULL;
	if (s == NULL)
		return AGD_ERR_NOMEM;
	s->cfg = cfg;
	s->started = time(NULL);
	s->zctx = zmq_ctx_new();
	s->loop = agd_loop_new();
	if (s->zctx == NULL || s->loop == NULL) {
		snprintf(err, err_len, "cannot create the event loop");
		rc = AGD_ERR_NOMEM;
		goto fail;
	}
	rc = agd_rt_new(cfg, s->loop, &s->rt);
	if (rc != 0) {
		snprintf(err, err_len, "runtime: %s (data_dir %s)", agd_strerror(rc), cfg->data_dir);
		goto fail;
	}
	rc = agd_ctl_new(s->zctx, s->loop, &s->ctl);
	if (rc != 0)
		goto fail;
	/* A control socket systemd passed replaces the configured endpoints:
	 * the unit, not the file, says where agentd listens then. */
	if (cfg->ctl_fd >= 0) {
		if ((rc = agd_ctl_bind_fd(s->ctl, cfg->ctl_fd, cfg->ctl_fd_endpoint, err, err_len)) != 0)
			goto fail;
	} else {
		if (cfg->ctl_tcp[0] && (rc = agd_ctl_bind(s->ctl, cfg->ctl_tcp, err, err_len)) != 0)
			goto fail;
		if (cfg->ctl_ipc[0] && (rc = agd_ctl_bind(s->ctl, cfg->ctl_ipc, err, err_len)) != 0)
			goto fail;
	}
	agd_ctl_register(s->ctl, "status", cmd_status, s);
	agd_ctl_register(s->ctl, "run", cmd_run, s);
	agd_ctl_register(s->ctl, "upload", cmd_upload, s);
	agd_ctl_register(s->ctl, "ps", cmd_ps, s);
	agd_ctl_register(s->ctl, "kill", cmd_kill, s);
	agd_ctl_register(s->ctl, "send", cmd_send, s);
	agd_ctl_register(s->ctl, "logs", cmd_logs, s);
	agd_loop_set_tick(s->loop, agd_rt_tick, s->rt);
	*out = s;
	return 0;
fail:
	agd_server_destroy(&s);
	return rc;
}

int agd_server_run(struct agd_server *s)
{
	int rc = agd_rt_start(s->rt);

	if (rc != 0) {
		agd_log(AGD_LOG_ERROR, "daemon.start_failed", "error=\"%s\"", agd_strerror(rc));
		return rc;
	}
	agd_log(AGD_LOG_INFO, "daemon.start", "host=%s control=%s ipc=%s pid=%ld", s->cfg->host,
		s->cfg->ctl_tcp, s->cfg->ctl_ipc[0] ? s->cfg->ctl_ipc : "-", (long)getpid());
	rc = agd_loop_run(s->loop);
	agd_log(AGD_LOG_INFO, "daemon.stopping", "host=%s", s->cfg->host);
	agd_rt_stop(s->rt, 1);
	agd_log(AGD_LOG_INFO, "daemon.stop", "host=%s", s->cfg->host);
	return rc < 0 ? AGD_ERR_IO : 0;
}

void agd_server_request_stop(struct agd_server *s)
{
	agd_loop_stop(s->loop);
}

void agd_server_destroy(struct agd_server **srv_p)
{
	struct agd_server *s;

	if (srv_p == NULL || *srv_p == NULL)
		return;
	s = *srv_p;
	agd_ctl_destroy(&s->ctl);
	agd_rt_destroy(&s->rt);
	for (int i = 0; i < UPLOADS_MAX; i++)
		upload_clear(&s->uploads[i]);
	agd_loop_destroy(&s->loop);
	if (s->zctx != NULL)
		zmq_ctx_term(s->zctx);
	free(s);
	*srv_p = NULL;
}

struct agd_loop *agd_server_loop(struct agd_server *s) { return s->loop; }
void *agd_server_zctx(struct agd_server *s) { return s->zctx; }
struct agd_ctl *agd_server_ctl(struct agd_server *s) { return s->ctl; }
struct agd_rt *agd_server_rt(struct agd_server *s) { return s->rt; }

void agd_server_on_status(struct agd_server *s, agd_server_status_fn fn, void *ud)
{
	s->status_fn = fn;
	s->status_ud = ud;
}
