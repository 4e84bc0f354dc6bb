/*
 * itest.c: see itest.h.
 */
#include "itest.h"

#include "agd_json.h"
#include "mig_key.h"
#include "mig_segment.h"
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "cannot write %s", path);
	fputs(text, f);
	fclose(f);
}

void itest_setup(struct itest *t, const char *extra)
{
	struct mig_key *k = NULL;
	struct mig_error e;
	char path[256], pub[512], conf[2048];
	FILE *f;
	size_t n;

	memset(t, 0, sizeof *t);
	cr_assert_eq(sodium_init() >= 0, 1);
	cr_assert_eq(tst_tmpdir(t->dir, sizeof t->dir), 0);
	cr_assert_eq(mig_key_generate("tester", &k), 0);
	snprintf(path, sizeof path, "%s/author", t->dir);
	cr_assert_eq(mig_key_save(k, path, &e), 0, "%s", e.msg);
	t->key = k;
	snprintf(path, sizeof path, "%s/author.pub", t->dir);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	n = fread(pub, 1, sizeof pub - 1, f);
	pub[n] = '\0';
	fclose(f);
	snprintf(path, sizeof path, "%s/trust", t->dir);
	write_file(path, pub);
	snprintf(t->endpoint, sizeof t->endpoint, "tcp://127.0.0.1:%d", tst_free_port());
	snprintf(t->ipc, sizeof t->ipc, "ipc://%s/ctl.sock", t->dir);
	snprintf(t->conf, sizeof t->conf, "%s/agentd.conf", t->dir);
	snprintf(t->log, sizeof t->log, "%s/agentd.log", t->dir);
	snprintf(conf, sizeof conf,
		 "[daemon]\nhost = h1\ndata_dir = %s/data\nworkers = 2\n"
		 "[control]\ntcp = %s\nipc = %s\n"
		 "[peer]\nendpoint =\ntrust_store = %s/trust\n"
		 "[log]\nlevel = debug\n%s"
#ifdef ITEST_ISOLATION
		 "[daemon]\nisolation = " ITEST_ISOLATION "\n"
#endif
		 ,
		 t->dir, t->endpoint, t->ipc, t->dir, extra ? extra : "");
	write_file(t->conf, conf);
}

void itest_start(struct itest *t)
{
	char *argv[] = { (char *)tst_bin("AGENTD_BIN"), "--config", t->conf, NULL };
	char *reply = NULL;
	int ok = -1;

	cr_assert_not_null(argv[0], "AGENTD_BIN not set");
	t->pid = tst_proc_start(argv, t->log);
	cr_assert_gt(t->pid, 0);
	for (int i = 0; i < 100 && ok != 1; i++) {
		free(reply);
		reply = NULL;
		ok = itest_req(t, NULL, "status", "{}", &reply);
		if (ok != 1)
			usleep(50000);
	}
	free(reply);
	cr_assert_eq(ok, 1, "daemon did not come up (see %s)", t->log);
}

int itest_stop(struct itest *t)
{
	int st = -1;

	if (t->pid > 0)
		st = tst_proc_stop(t->pid, 10000);
	t->pid = 0;
	return st;
}

void itest_crash(struct itest *t)
{
	int st;

	if (t->pid > 0) {
		kill(t->pid, SIGKILL);
		waitpid(t->pid, &st, 0);
	}
	t->pid = 0;
}

void itest_teardown(struct itest *t)
{
	struct mig_key *k = t->key;

	itest_stop(t);
	mig_key_destroy(&k);
	t->key = NULL;
	/* ITEST_KEEP=1 keeps the directory (config, log, store) to look at. */
	if (t->dir[0] && getenv("ITEST_KEEP") == NULL)
		tst_rmtree(t->dir);
}

static char *recv_str(void *s, int *more)
{
	zmq_msg_t m;
	char *out = NULL;

	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, s, 0) >= 0) {
		out = malloc(zmq_msg_size(&m) + 1);
		memcpy(out, zmq_msg_data(&m), zmq_msg_size(&m));
		out[zmq_msg_size(&m)] = '\0';
		*more = zmq_msg_more(&m);
	}
	zmq_msg_close(&m);
	return out;
}

int itest_req(struct itest *t, const char *endpoint, const char *cmd, const char *body,
	      char **reply)
{
	void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_REQ);
	int tmo = 5000, linger = 0, more = 0, rc = -1;
	char *v = NULL, *st = NULL;

	*reply = NULL;
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
	zmq_connect(s, endpoint ? endpoint : t->endpoint);
	zmq_send(s, "AGD-CTL/1", 9, ZMQ_SNDMORE);
	zmq_send(s, cmd, strlen(cmd), ZMQ_SNDMORE);
	zmq_send(s, body, strlen(body), 0);
	v = recv_str(s, &more);
	if (v != NULL && more && strcmp(v, "AGD-CTL/1") == 0) {
		st = recv_str(s, &more);
		if (st != NULL && more) {
			*reply = recv_str(s, &more);
			if (*reply != NULL)
				rc = strcmp(st, "ok") == 0;
		}
	}
	free(v);
	free(st);
	zmq_close(s);
	zmq_ctx_term(ctx);
	return rc;
}

static char *segment_b64(struct mig_key *k, const char *name, const char *main_lua,
			 const char *func, const char *extra)
{
	char manifest[1024];
	struct mig_seg_file f = { "main.lua", main_lua, strlen(main_lua) };
	struct mig_segment *seg = NULL;
	struct mig_error e;
	uint8_t *bytes = NULL;
	size_t len = 0, n;
	char *out;

	snprintf(manifest, sizeof manifest,
		 "agentd-manifest 1\nname = %s\nversion = 1\nentry = main.lua %s\n"
		 "mobility = strong\n%sfile = main.lua\n",
		 name, func && func[0] ? func : "main", extra ? extra : "");
	cr_assert_eq(mig_segment_build(manifest, strlen(manifest), &f, 1, &seg, &e), 0, "%s", e.msg);
	cr_assert_eq(mig_segment_sign(seg, k, &bytes, &len), 0);
	mig_segment_destroy(&seg);
	n = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
	out = malloc(n);
	sodium_bin2base64(out, n, bytes, len, sodium_base64_VARIANT_ORIGINAL);
	free(bytes);
	return out;
}

int itest_run_with(struct itest *t, void *key, const char *name, const char *main_lua,
		   const char *opts, char **reply)
{
	char *b64 = segment_b64(key, name, main_lua, "", NULL);
	size_t n = strlen(b64) + strlen(opts) + 64;
	char *body = malloc(n);
	int rc;

	snprintf(body, n, "{\"segment\":\"%s\"%s}", b64, opts);
	rc = itest_req(t, NULL, "run", body, reply);
	free(body);
	free(b64);
	return rc;
}

void itest_run(struct itest *t, const char *name, const char *main_lua, const char *func,
	       const char *opts, char id[17])
{
	itest_run_ex(t, name, main_lua, func, NULL, opts, id);
}

void itest_run_ex(struct itest *t, const char *name, const char *main_lua, const char *func,
		  const char *manifest_extra, const char *opts, char id[17])
{
	char *b64 = segment_b64(t->key, name, main_lua, func, manifest_extra);
	size_t n = strlen(b64) + strlen(opts) + 64;
	char *body = malloc(n), *reply = NULL;
	struct agd_json *doc = NULL;
	const char *s = NULL;
	int rc;

	snprintf(body, n, "{\"segment\":\"%s\"%s}", b64, opts);
	rc = itest_req(t, NULL, "run", body, &reply);
	free(body);
	free(b64);
	cr_assert_eq(rc, 1, "run refused: %s", reply ? reply : "(no reply)");
	cr_assert_eq(agd_json_parse(reply, strlen(reply), &doc, NULL), 0);
	cr_assert_eq(agd_json_get_str(doc, agd_json_root(doc), "id", &s), 0);
	cr_assert_eq(strlen(s), 16);
	memcpy(id, s, 17);
	agd_json_destroy(&doc);
	free(reply);
}

void itest_state(struct itest *t, const char *id, char *buf, size_t len)
{
	char body[64], *reply = NULL;
	struct agd_json *doc = NULL;
	const char *s = "";

	snprintf(body, sizeof body, "{\"agent\":\"%s\"}", id);
	buf[0] = '\0';
	if (itest_req(t, NULL, "ps", body, &reply) == 1 &&
	    agd_json_parse(reply, strlen(reply), &doc, NULL) == 0) {
		agd_json_get_str(doc, agd_json_get(doc, agd_json_root(doc), "agent"), "state", &s);
		snprintf(buf, len, "%s", s);
	}
	agd_json_destroy(&doc);
	free(reply);
}

int itest_wait_state(struct itest *t, const char *id, const char *state, int ms)
{
	char st[32];

	for (int i = 0; i < ms; i += 20) {
		itest_state(t, id, st, sizeof st);
		if (strcmp(st, state) == 0)
			return 1;
		usleep(20000);
	}
	return 0;
}

int itest_log_has(struct itest *t, const char *id, const char *needle)
{
	char body[64], *reply = NULL;
	int found;

	snprintf(body, sizeof body, "{\"agent\":\"%s\"}", id);
	found = itest_req(t, NULL, "logs", body, &reply) == 1 && strstr(reply, needle) != NULL;
	free(reply);
	return found;
}

int itest_wait_log(struct itest *t, const char *id, const char *needle, int ms)
{
	for (int i = 0; i < ms; i += 20) {
		if (itest_log_has(t, id, needle))
			return 1;
		usleep(20000);
	}
	return 0;
}

char *itest_segment(struct itest *t, const char *name, const char *main_lua, size_t *len,
		    char hash[65])
{
	char manifest[512];
	struct mig_seg_file f = { "main.lua", main_lua, strlen(main_lua) };
	struct mig_segment *seg = NULL;
	struct mig_error e;
	uint8_t *bytes = NULL;

	snprintf(manifest, sizeof manifest,
		 "agentd-manifest 1\nname = %s\nversion = 1\nentry = main.lua main\n"
		 "mobility = strong\nfile = main.lua\n", name);
	cr_assert_eq(mig_segment_build(manifest, strlen(manifest), &f, 1, &seg, &e), 0, "%s", e.msg);
	cr_assert_eq(mig_segment_sign(seg, t->key, &bytes, len), 0);
	mig_segment_hash_hex(seg, hash);
	mig_segment_destroy(&seg);
	return (char *)bytes;
}
