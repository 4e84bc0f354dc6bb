/*
 * test_resources.c: the binding policy acting between real daemons (issue
 * 6): three agentd processes on loopback, each with resources in its
 * config; a probe agent (tests/integration/agents_res/probe) holding a
 * handle to one manifest binding in a local of its suspended coroutine,
 * running the operations the test sends it and logging the answers; pushes
 * between the daemons. Each test checks the decision the source took (from
 * the agent's log at the target and the `bindings` control command) and the
 * outcome on real files and key-value stores: where the content is on disk,
 * reads and writes through the handle before and after the hop, a GR after
 * two further hops, and a GR whose home was killed (-9) answering nil and
 * "unreachable" while the agent lives on.
 */
#include "itest.h"
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HOSTS 3

struct host {
	char name[8];
	char dir[300];
	char conf[340];
	char log[340];
	char ctl[64];
	char peer[64];
	pid_t pid;
};

static char tmp[256];
static struct host hosts[HOSTS];
static int tagseq = 100;

static const char *ctlbin(void)
{
	const char *b = tst_bin("AGENTCTL_BIN");

	cr_assert_not_null(b, "AGENTCTL_BIN not set");
	return b;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "cannot write %s", path);
	fputs(text, f);
	fclose(f);
}

static void append_file(const char *dst, const char *src)
{
	char buf[4096];
	FILE *in = fopen(src, "r"), *out = fopen(dst, "a");
	size_t n;

	cr_assert(in && out);
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		fwrite(buf, 1, n, out);
	fclose(in);
	fclose(out);
}

/* The whole content of a file (malloc'd), or NULL if it does not exist. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (f == NULL)
		return NULL;
	buf = calloc(1, 1 << 16);
	cr_assert_not_null(buf);
	n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static void keygen(const char *prefix, const char *name)
{
	char *argv[] = { (char *)ctlbin(), "keygen", "-o", (char *)prefix, "--name", (char *)name, NULL };

	cr_assert_eq(tst_run(argv, NULL, 0, 10000), 0, "keygen %s", prefix);
}

/* Each host's resources ([resource ID] sections); paths under its dir. */
static const char *const host_resources[HOSTS] = {
	"[resource notes]\nkind = file\npath = %1$s/notes.txt\n\n"
	"[resource shared]\nkind = file\npath = %1$s/shared.txt\n\n"
	"[resource ledger]\nkind = kv\npath = %1$s/ledger.db\n\n"
	"[resource lp0]\nkind = printer\npath = %1$s/lp0.out\n\n"
	"[resource doc]\nkind = file\npath = %1$s/doc.txt\n\n"
	"[resource prices]\nkind = kv\npath = %1$s/prices.db\n\n"
	"[resource temp]\nkind = sensor\npath = %1$s/temp\n\n"
	"[resource cache]\nkind = kv\npath = %1$s/cache.db\n\n",
	"[resource scratch2]\nkind = file\npath = %1$s/scratch2.txt\n\n"
	"[resource cache2]\nkind = kv\npath = %1$s/cache2.db\n\n"
	"[resource lp1]\nkind = printer\npath = %1$s/lp1.out\n\n",
	"[resource lp3]\nkind = printer\npath = %1$s/lp3.out\n\n",
};

static void setup(void)
{
	char path[400], text[4096], res[2048];

	cr_assert_eq(tst_tmpdir(tmp, sizeof tmp), 0);
	snprintf(path, sizeof path, "%s/author", tmp);
	keygen(path, "author");
	{
		char trust[300];

		snprintf(path, sizeof path, "%s/author.pub", tmp);
		snprintf(trust, sizeof trust, "%s/trust", tmp);
		append_file(trust, path);
	}
	for (int i = 0; i < HOSTS; i++) {
		struct host *h = &hosts[i];
		char pub[340], th[300];

		memset(h, 0, sizeof *h);
		snprintf(h->name, sizeof h->name, "h%d", i + 1);
		snprintf(h->dir, sizeof h->dir, "%.200s/h%d", tmp, i + 1);
		mkdir(h->dir, 0700);
		snprintf(path, sizeof path, "%s/data", h->dir);
		mkdir(path, 0700);
		snprintf(path, sizeof path, "%.250s/h%d", h->dir, i + 1);
		keygen(path, h->name);
		snprintf(pub, sizeof pub, "%.250s/h%d.pub", h->dir, i + 1);
		snprintf(th, sizeof th, "%s/trusted-hosts", tmp);
		append_file(th, pub);
		snprintf(h->ctl, sizeof h->ctl, "tcp://127.0.0.1:%d", tst_free_port());
		snprintf(h->peer, sizeof h->peer, "tcp://127.0.0.1:%d", tst_free_port());
		/* Through a copy: GCC cannot tell that the fields do not overlap. */
		snprintf(path, sizeof path, "%s", h->dir);
		snprintf(h->conf, sizeof h->conf, "%.300s/agentd.conf", path);
		snprintf(h->log, sizeof h->log, "%.300s/agentd.log", path);
		snprintf(res, sizeof res, host_resources[i], h->dir);
		snprintf(text, sizeof text,
			 "[daemon]\nhost = h%d\ndata_dir = %.250s/data\nworkers = 2\n\n"
			 "[control]\ntcp = %.60s\n\n"
			 "[peer]\nendpoint = %.60s\nhost_key = %.250s/h%d.key\ntrust_store = %.200s/trust\n"
			 "trusted_hosts = %.200s/trusted-hosts\n\n"
			 "[log]\nfile = %.300s\nlevel = debug\n\n%s",
			 i + 1, h->dir, h->ctl, h->peer, h->dir, i + 1, tmp, tmp, h->log, res);
		write_file(h->conf, text);
	}
	/* Initial content of h1's files and sensor. */
	snprintf(path, sizeof path, "%s/notes.txt", hosts[0].dir);
	write_file(path, "hello");
	snprintf(path, sizeof path, "%s/shared.txt", hosts[0].dir);
	write_file(path, "s0");
	snprintf(path, sizeof path, "%s/doc.txt", hosts[0].dir);
	write_file(path, "d0");
	snprintf(path, sizeof path, "%s/temp", hosts[0].dir);
	write_file(path, "21.5\n");
	snprintf(path, sizeof path, "%s/scratch2.txt", hosts[1].dir);
	write_file(path, "sc2");
	{
		char body[1024], cluster[300];

		snprintf(cluster, sizeof cluster, "%s/cluster", tmp);
		snprintf(body, sizeof body, "h1 %s %s\nh2 %s %s\nh3 %s %s\n", hosts[0].ctl, hosts[0].peer,
			 hosts[1].ctl, hosts[1].peer, hosts[2].ctl, hosts[2].peer);
		write_file(cluster, body);
		setenv("AGENTCTL_CLUSTER", cluster, 1);
	}
}

static void teardown(void)
{
	for (int i = 0; i < HOSTS; i++) {
		if (hosts[i].pid > 0)
			tst_proc_stop(hosts[i].pid, 5000);
		hosts[i].pid = 0;
	}
	if (getenv("RESOURCES_TEST_KEEP") == NULL)
		tst_rmtree(tmp);
}

TestSuite(resources_int, .init = setup, .fini = teardown, .timeout = 120);

/* agentctl --host H ARGS...; output into out; returns the exit code. */
static int ctl(struct host *h, char *out, size_t len, const char *a1, const char *a2,
	       const char *a3, const char *a4, const char *a5)
{
	char *argv[] = { (char *)ctlbin(), "--host", h->ctl, "--timeout", "8000", (char *)a1,
			 (char *)a2, (char *)a3, (char *)a4, (char *)a5, NULL };

	if (out && len)
		out[0] = '\0';
	return tst_run(argv, out, len, 15000);
}

static void start_host(struct host *h)
{
	char *argv[] = { (char *)tst_bin("AGENTD_BIN"), "--config", h->conf, NULL };
	char out[1024];
	long end = now_ms() + 10000;

	cr_assert_not_null(argv[0], "AGENTD_BIN not set");
	h->pid = tst_proc_start(argv, NULL);
	cr_assert_gt(h->pid, 0);
	while (now_ms() < end) {
		if (ctl(h, out, sizeof out, "status", NULL, NULL, NULL, NULL) == 0)
			return;
		usleep(50000);
	}
	cr_assert_fail("%s did not come up", h->name);
}

static void start_all(void)
{
	for (int i = 0; i < HOSTS; i++)
		start_host(&hosts[i]);
}

/* Signs the probe with manifest binding line `binding` ("r by-identifier
 * notes") and runs it on h; writes its id. Waits until it tried to bind,
 * and leaves its log in logs. */
static void start_probe(struct host *h, const char *binding, char id[17], char *logs, size_t len)
{
	char dir[400], path[500], seg[400], key[300], out[512];
	char *lua, manifest[1024];
	const char *src = getenv("AGENTD_SOURCE_DIR");
	static int n;

	cr_assert_not_null(src, "AGENTD_SOURCE_DIR not set");
	snprintf(path, sizeof path, "%s/tests/integration/agents_res/probe/main.lua", src);
	lua = slurp(path);
	cr_assert_not_null(lua, "%s", path);
	snprintf(dir, sizeof dir, "%s/probe%d", tmp, ++n);
	mkdir(dir, 0700);
	snprintf(path, sizeof path, "%s/main.lua", dir);
	write_file(path, lua);
	free(lua);
	snprintf(manifest, sizeof manifest,
		 "agentd-manifest 1\nname = probe\nversion = 1.0\nentry = main.lua main\n"
		 "mobility = both\nactivation = resident\nbinding = %s\nfile = main.lua\n",
		 binding);
	snprintf(path, sizeof path, "%s/manifest", dir);
	write_file(path, manifest);
	snprintf(seg, sizeof seg, "%s/probe%d.seg", tmp, n);
	snprintf(key, sizeof key, "%s/author.key", tmp);
	{
		char *argv[] = { (char *)ctlbin(), "sign", dir, "-k", key, "-o", seg, NULL };

		cr_assert_eq(tst_run(argv, out, sizeof out, 10000), 0, "sign: %s", out);
	}
	cr_assert_eq(ctl(h, out, sizeof out, "run", seg, NULL, NULL, NULL), 0, "run: %s", out);
	cr_assert_geq(strlen(out), 16);
	memcpy(id, out, 16);
	id[16] = '\0';
	{
		long end = now_ms() + 10000;

		while (now_ms() < end) {
			ctl(h, logs, len, "logs", id, "--lines", "50", NULL);
			if (strstr(logs, "bound ") != NULL)
				break;
			usleep(30000);
		}
	}
}

/* start_probe, and the probe got its handle. */
static void run_probe(struct host *h, const char *binding, char id[17])
{
	char logs[8192];

	start_probe(h, binding, id, logs, sizeof logs);
	cr_assert(strstr(logs, "bound true") != NULL, "probe did not bind: %s", logs);
}

/* Sends {"op":op,"a":a,"b":b,"tag":N} to the agent on h and returns (in
 * out) the rest of its answer line "RN ...", waiting at most 20 s. */
static void op(struct host *h, const char *id, const char *opname, const char *a, const char *b,
	       char *out, size_t len)
{
	char msg[512], needle[32], logs[32768];
	long end;
	int tag = ++tagseq;

	snprintf(msg, sizeof msg, "{\"op\":\"%s\",\"tag\":%d%s%s%s%s%s%s}", opname, tag,
		 a ? ",\"a\":\"" : "", a ? a : "", a ? "\"" : "", b ? ",\"b\":\"" : "", b ? b : "",
		 b ? "\"" : "");
	cr_assert_eq(ctl(h, logs, sizeof logs, "send", id, msg, NULL, NULL), 0, "send to %s on %s: %s",
		     id, h->name, logs);
	snprintf(needle, sizeof needle, "R%d ", tag);
	end = now_ms() + 20000;
	while (now_ms() < end) {
		char *p;

		ctl(h, logs, sizeof logs, "logs", id, "--lines", "200", NULL);
		p = strstr(logs, needle);
		if (p != NULL) {
			char *nl = strchr(p, '\n');

			p += strlen(needle);
			snprintf(out, len, "%.*s", nl ? (int)(nl - p) : (int)strlen(p), p);
			return;
		}
		usleep(30000);
	}
	cr_assert_fail("no answer to %s from %s on %s; logs:\n%s", opname, id, h->name, logs);
}

static void op_eq(struct host *h, const char *id, const char *opname, const char *a,
		  const char *b, const char *want)
{
	char got[1024];

	op(h, id, opname, a, b, got, sizeof got);
	cr_assert_str_eq(got, want, "%s(%s) on %s: got '%s'", opname, a ? a : "", h->name, got);
}

static void op_has(struct host *h, const char *id, const char *opname, const char *a,
		   const char *b, const char *want)
{
	char got[1024];

	op(h, id, opname, a, b, got, sizeof got);
	cr_assert(strstr(got, want) != NULL, "%s(%s) on %s: '%s' lacks '%s'", opname, a ? a : "",
		  h->name, got, want);
}

/* Pushes the agent from `from` to `to` and waits until its log at `to`
 * shows the decision lines of this hop; returns the log text of `to` in
 * logs. */
static void push_mode(struct host *from, const char *id, struct host *to, const char *mode,
		      char *logs, size_t len);

static void push(struct host *from, const char *id, struct host *to, char *logs, size_t len)
{
	push_mode(from, id, to, NULL, logs, len);
}

static void push_mode(struct host *from, const char *id, struct host *to, const char *mode,
		      char *logs, size_t len)
{
	char out[2048], needle[64];
	long end = now_ms() + 20000;

	cr_assert_eq(ctl(from, out, sizeof out, "push", id, "--to", to->name, mode), 0,
		     "push %s -> %s: %s", from->name, to->name, out);
	snprintf(needle, sizeof needle, "resource %s->%s ", from->name, to->name);
	while (now_ms() < end) {
		ctl(to, logs, len, "logs", id, "--lines", "200", NULL);
		if (strstr(logs, needle) != NULL)
			return;
		usleep(30000);
	}
	cr_assert_fail("no decision logged at %s for the hop %s->%s:\n%s", to->name, from->name,
		       to->name, logs);
}

static void assert_file(const char *path, const char *want)
{
	char *got = slurp(path);

	cr_assert_not_null(got, "%s missing", path);
	cr_assert_str_eq(got, want, "content of %s", path);
	free(got);
}

static void path_of(char *buf, size_t len, const struct host *h, const char *rel)
{
	snprintf(buf, len, "%s/%s", h->dir, rel);
}

/* ------------------------------------------------------------- cells */

Test(resources_int, identifier_unattached_moves_the_file_and_leaves_a_forward)
{
	struct host *h1 = &hosts[0], *h2 = &hosts[1];
	char id[17], logs[32768], p[512];

	start_all();
	run_probe(h1, "r by-identifier notes", id);
	op_eq(h1, id, "read", NULL, NULL, "hello nil nil");
	op_eq(h1, id, "write", "v1", NULL, "true nil nil");
	path_of(p, sizeof p, h1, "notes.txt");
	assert_file(p, "v1");

	push(h1, id, h2, logs, sizeof logs);
	cr_assert(strstr(logs, "r: action=MV origin=default tried=MV:ok") != NULL, "%s", logs);
	op_eq(h2, id, "read", NULL, NULL, "v1 nil nil");
	op_eq(h2, id, "write", "v2", NULL, "true nil nil");
	op_has(h2, id, "info", NULL, NULL, "action=MV id=notes home=h2 mode=local");
	/* The content lives in h2's data dir now; h1 keeps no copy. */
	path_of(p, sizeof p, h2, "data/resources/notes.file");
	assert_file(p, "v2");
	path_of(p, sizeof p, h1, "notes.txt");
	cr_assert(!exists(p), "h1 still has the moved file");
	/* The control command shows the binding and the decision of the hop. */
	{
		char *out = NULL, body[64];

		snprintf(body, sizeof body, "{\"agent\":\"%s\"}", id);
		cr_assert_eq(itest_req(NULL, h2->ctl, "bindings", body, &out), 1, "%s", out);
		cr_assert(strstr(out, "\"action\":\"MV\"") != NULL, "%s", out);
		cr_assert(strstr(out, "h1->h2 r: action=MV") != NULL, "%s", out);
		free(out);
	}
	{
		char out[4096];

		cr_assert_eq(ctl(h2, out, sizeof out, "bindings", id, NULL, NULL, NULL), 0, "%s", out);
		cr_assert(strstr(out, "notes@h2") != NULL, "%s", out);
		cr_assert(strstr(out, "h1->h2 r: action=MV origin=default tried=MV:ok") != NULL, "%s", out);
	}
}

Test(resources_int, identifier_unattached_shared_falls_back_to_gr)
{
	struct host *h1 = &hosts[0], *h2 = &hosts[1];
	char a[17], b[17], logs[32768], p[512];

	start_all();
	run_probe(h1, "r by-identifier shared", a);
	run_probe(h1, "r by-identifier shared", b);
	push(h1, a, h2, logs, sizeof logs);
	cr_assert(strstr(logs, "r: action=GR origin=default tried=MV:shared,GR:ok") != NULL, "%s",
		  logs);
	op_eq(h2, a, "read", NULL, NULL, "s0 nil nil");
	op_eq(h2, a, "write", "from-h2", NULL, "true nil nil");
	op_has(h2, a, "info", NULL, NULL, "action=GR id=shared home=h1 mode=remote");
	/* The write went to h1's file, which the other binder still reads. */
	path_of(p, sizeof p, h1, "shared.txt");
	assert_file(p, "from-h2");
	op_eq(h1, b, "read", NULL, NULL, "from-h2 nil nil");
	path_of(p, sizeof p, h2, "data/resources/shared.file");
	cr_assert(!exists(p));
}

Test(resources_int, identifier_fastened_gr_works_after_two_more_hops_and_fails_cleanly_when_home_dies)
{
	struct host *h1 = &hosts[0], *h2 = &hosts[1], *h3 = &hosts[2];
	char id[17], local[17], logs[32768], st[256];

	start_all();
	run_probe(h1, "r by-identifier ledger", id);
	run_probe(h1, "r by-identifier ledger", local);
	op_eq(h1, id, "put", "k", "v1", "true nil nil");

	push(h1, id, h2, logs, sizeof logs);
	cr_assert(strstr(logs, "r: action=GR origin=default tried=GR:ok") != NULL, "%s", logs);
	op_eq(h2, id, "get", "k", NULL, "v1 nil nil");
	op_eq(h2, id, "put", "k2", "from-h2", "true nil nil");

	push(h2, id, h3, logs, sizeof logs);
	cr_assert(strstr(logs, "h2->h3 r: action=GR") != NULL, "%s", logs);
	op_eq(h3, id, "put", "k3", "from-h3", "true nil nil");

	push(h3, id, h2, logs, sizeof logs);
	cr_assert(strstr(logs, "h3->h2 r: action=GR") != NULL, "%s", logs);
	op_eq(h2, id, "get", "k3", NULL, "from-h3 nil nil");
	op_has(h2, id, "info", NULL, NULL, "action=GR id=ledger home=h1 mode=remote");
	/* Every write landed in h1's store: an agent there reads them locally. */
	op_eq(h1, local, "get", "k2", NULL, "from-h2 nil nil");
	op_eq(h1, local, "get", "k3", NULL, "from-h3 nil nil");

	/* The home dies: the op answers nil, a message, "unreachable"; the
	 * agent lives on and keeps answering. */
	kill(h1->pid, SIGKILL);
	tst_proc_stop(h1->pid, 5000);
	h1->pid = 0;
	op_has(h2, id, "get", "k", NULL, "nil ");
	op_has(h2, id, "get", "k", NULL, "unreachable");
	op_has(h2, id, "info", NULL, NULL, "home=h1");
	cr_assert_eq(ctl(h2, st, sizeof st, "--json", "ps", NULL, NULL, NULL), 0);
	cr_assert(strstr(st, id) != NULL, "agent gone from h2: %s", st);
}

Test(resources_int, identifier_fixed_printer_stays_and_prints_remotely)
{
	struct host *h1 = &hosts[0], *h2 = &hosts[1];
	char id[17], logs[32768], p[512];

	start_all();
	run_probe(h1, "r by-identifier lp0", id);
	push(h1, id, h2, logs, sizeof logs);
	cr_assert(strstr(logs, "r: action=GR origin=default tried=GR:ok") != NULL, "%s", logs);
	op_eq(h2, id, "print", "page from h2", NULL, "true nil nil");
	path_of(p, sizeof p, h1, "lp0.out");
	assert_file(p, "page from h2\n");
}

Test(resources_int, value_unattached_copies_and_leaves_the_original)
{
	struct host *h1 = &hosts[0], *h2 = &hosts[1];
	char id[17], logs[32768], p[512];

	start_all();
	run_probe(h1, "r by-value doc", id);
	push(h1, id, h2, logs, sizeof logs);
	cr_assert(strstr(logs, "r: action=CP origin=default tried=CP:ok") != NULL, "%s", logs);
	op_eq(h2, id, "read", NULL, NULL, "d0 nil nil");
	op_eq(h2, id, "write", "changed on h2", NULL, "true nil nil");
	op_has(h2, id, "info", NULL, NULL, "action=CP id=doc.copy home=h2 mode=local");
	path_of(p, sizeof p, h2, "data/resources/doc.copy.file");
	assert_file(p, "changed on h2");
	path_of(p, sizeof p, h1, "doc.txt");
	assert_file(p, "d0");
}

Test(resources_int, value_fastened_kv_stays_home)
{
	struct host *h1 = &hosts[0], *h2 = &hosts[1];
	char id[17], local[17], logs[32768];

	start_all();
	run_probe(h1, "r by-value prices", id);
	run_probe(h1, "r by-identifier prices", local);
	op_eq(h1, id, "put", "apple", "3", "true nil nil");
	push(h1, id, h2, logs, sizeof logs);
	cr_assert(strstr(logs, "r: action=GR origin=default tried=GR:ok") != NULL, "%s", logs);
	op_eq(h2, id, "get", "apple", NULL, "3 nil nil");
	op_eq(h2, id, "put", "pear", "5", "true nil nil");
	op_eq(h1, local, "get", "pear", NULL, "5 nil nil");
}

Test(resources_int, value_fixed_sensor_is_read_remotely)
{
	struct host *h1 = &hosts[0], *h2 = &hosts[1];
	char id[17], logs[32768];

	start_all();
	run_probe(h1, "r by-value temp", id);
	push(h1, id, h2, logs, sizeof logs);
	cr_assert(strstr(logs, "r: action=GR origin=default tried=GR:ok") != NULL, "%s", logs);
	op_eq(h2, id, "read", NULL, NULL, "21.5 nil nil");
	op_has(h2, id, "info", NULL, NULL, "id=temp home=h1 mode=remote");
}

Test(resources_int, type_unattached_rebinds_to_the_targets_file)
{
	struct host *h1 = &hosts[0], *h2 = &hosts[1];
	char id[17], logs[32768], p[512];

	start_all();
	run_probe(h1, "r by-type file", id);
	op_eq(h1, id, "read", NULL, NULL, "hello nil nil");
	push(h1, id, h2, logs, sizeof logs);
	cr_assert(strstr(logs, "r: action=RB origin=default tried=RB:ok") != NULL, "%s", logs);
	op_eq(h2, id, "read", NULL, NULL, "sc2 nil nil");
	op_eq(h2, id, "append", "+h2", NULL, "true nil nil");
	op_has(h2, id, "info", NULL, NULL, "action=RB id=scratch2 home=h2 mode=local");
	path_of(p, sizeof p, h2, "scratch2.txt");
	assert_file(p, "sc2+h2");
	path_of(p, sizeof p, h1, "notes.txt");
	assert_file(p, "hello");
}

Test(resources_int, type_unattached_without_that_kind_on_the_target_falls_back_to_gr)
{
	struct host *h1 = &hosts[0], *h3 = &hosts[2];
	char id[17], logs[32768], p[512];

	start_all();
	run_probe(h1, "r by-type file", id);
	push(h1, id, h3, logs, sizeof logs);
	cr_assert(strstr(logs, "r: action=GR origin=default tried=RB:no-kind,GR:ok") != NULL, "%s",
		  logs);
	op_eq(h3, id, "write", "via gr", NULL, "true nil nil");
	path_of(p, sizeof p, h1, "notes.txt");
	assert_file(p, "via gr");
}

Test(resources_int, type_fastened_rebinds_to_the_targets_kv)
{
	struct host *h1 = &hosts[0], *h2 = &hosts[1];
	char id[17], logs[32768];

	start_all();
	run_probe(h1, "r by-type kv", id);
	op_eq(h1, id, "put", "where", "h1", "true nil nil");
	push(h1, id, h2, logs, sizeof logs);
	cr_assert(strstr(logs, "r: action=RB origin=default tried=RB:ok") != NULL, "%s", logs);
	op_eq(h2, id, "get", "where", NULL, "nil nil nil");
	op_eq(h2, id, "put", "where", "h2", "true nil nil");
	op_has(h2, id, "info", NULL, NULL, "action=RB id=cache2 home=h2 mode=local");
	op_eq(h2, id, "get", "where", NULL, "h2 nil nil");
}

Test(resources_int, type_fixed_rebinds_to_the_targets_printer)
{
	struct host *h1 = &hosts[0], *h2 = &hosts[1];
	char id[17], logs[32768], p[512];

	start_all();
	run_probe(h1, "r by-type device", id);
	op_eq(h1, id, "print", "on h1", NULL, "true nil nil");
	push(h1, id, h2, logs, sizeof logs);
	cr_assert(strstr(logs, "r: action=RB origin=default tried=RB:ok") != NULL, "%s", logs);
	op_eq(h2, id, "print", "on h2", NULL, "true nil nil");
	path_of(p, sizeof p, h2, "lp1.out");
	assert_file(p, "on h2\n");
	path_of(p, sizeof p, h1, "lp0.out");
	assert_file(p, "on h1\n");
}

Test(resources_int, policy_command_gives_the_hosts_table)
{
	struct host *h1 = &hosts[0];
	char out[8192];

	start_all();
	cr_assert_eq(ctl(h1, out, sizeof out, "policy", NULL, NULL, NULL, NULL), 0, "%s", out);
	cr_assert(strstr(out, "binding policy of h1") != NULL, "%s", out);
	cr_assert(strstr(out, "RB GR CP") != NULL, "%s", out);
}

Test(resources_int, a_binder_that_ended_no_longer_holds_a_move_back)
{
	struct host *h1 = &hosts[0], *h2 = &hosts[1];
	char a[17], b[17], logs[32768], out[1024], p[512];

	start_all();
	run_probe(h1, "r by-identifier notes", a);
	run_probe(h1, "r by-identifier notes", b);
	cr_assert_eq(ctl(h1, out, sizeof out, "kill", b, NULL, NULL, NULL), 0, "%s", out);
	push(h1, a, h2, logs, sizeof logs);
	cr_assert(strstr(logs, "r: action=MV origin=default tried=MV:ok") != NULL, "%s", logs);
	op_eq(h2, a, "read", NULL, NULL, "hello nil nil");
	path_of(p, sizeof p, h2, "data/resources/notes.file");
	assert_file(p, "hello");
}

Test(resources_int, clone_keeps_the_original_bound_so_identifier_becomes_gr)
{
	struct host *h1 = &hosts[0], *h2 = &hosts[1];
	char id[17], clone[17], out[2048], logs[32768], p[512];
	long end;
	char *as;

	start_all();
	run_probe(h1, "r by-identifier notes", id);
	cr_assert_eq(ctl(h1, out, sizeof out, "clone", id, "--to", "h2", NULL), 0, "%s", out);
	as = strstr(out, " as ");
	cr_assert_not_null(as, "%s", out);
	snprintf(clone, sizeof clone, "%.16s", as + 4);
	end = now_ms() + 10000;
	while (now_ms() < end) {
		ctl(h2, logs, sizeof logs, "logs", clone, "--lines", "200", NULL);
		if (strstr(logs, "resource h1->h2 ") != NULL)
			break;
		usleep(30000);
	}
	cr_assert(strstr(logs, "r: action=GR origin=default tried=MV:shared,GR:ok") != NULL, "%s",
		  logs);
	op_eq(h2, clone, "write", "by the clone", NULL, "true nil nil");
	op_eq(h1, id, "read", NULL, NULL, "by the clone nil nil");
	path_of(p, sizeof p, h1, "notes.txt");
	assert_file(p, "by the clone");
}

Test(resources_int, pull_copies_a_value_binding_to_the_puller)
{
	struct host *h1 = &hosts[0], *h2 = &hosts[1];
	char id[17], out[2048], logs[32768], p[512];
	long end;

	start_all();
	run_probe(h1, "r by-value doc", id);
	cr_assert_eq(ctl(h1, out, sizeof out, "pull", id, "--to", "h2", NULL), 0, "%s", out);
	end = now_ms() + 10000;
	while (now_ms() < end) {
		ctl(h2, logs, sizeof logs, "logs", id, "--lines", "200", NULL);
		if (strstr(logs, "resource h1->h2 ") != NULL)
			break;
		usleep(30000);
	}
	cr_assert(strstr(logs, "r: action=CP origin=default tried=CP:ok") != NULL, "%s", logs);
	op_eq(h2, id, "read", NULL, NULL, "d0 nil nil");
	path_of(p, sizeof p, h2, "data/resources/doc.copy.file");
	assert_file(p, "d0");
}

/* SIGTERM, then start again (the agent is persisted at stop). */
static void restart(struct host *h)
{
	cr_assert_eq(tst_proc_stop(h->pid, 10000), 0, "%s did not stop cleanly", h->name);
	h->pid = 0;
	start_host(h);
}

Test(resources_int, a_move_survives_restarts_of_both_daemons_and_comes_back)
{
	struct host *h1 = &hosts[0], *h2 = &hosts[1];
	char id[17], other[17], logs[32768], p[512];

	start_all();
	run_probe(h1, "r by-identifier notes", id);
	push(h1, id, h2, logs, sizeof logs);
	cr_assert(strstr(logs, "r: action=MV") != NULL, "%s", logs);
	op_eq(h2, id, "write", "v2", NULL, "true nil nil");
	restart(h1);
	restart(h2);
	/* h2 still holds the content, the agent's handle is still local. */
	op_eq(h2, id, "read", NULL, NULL, "v2 nil nil");
	op_has(h2, id, "info", NULL, NULL, "id=notes home=h2 mode=local");
	/* h1 did not bring back an empty notes from its config: it forwards. */
	path_of(p, sizeof p, h1, "notes.txt");
	cr_assert(!exists(p), "h1 recreated the moved file");
	run_probe(h1, "r by-identifier notes", other);
	op_eq(h1, other, "read", NULL, NULL, "v2 nil nil");
	op_has(h1, other, "info", NULL, NULL, "home=h2 mode=remote");
	/* The agent leaves h2 with the bindings it had before the restart. */
	push(h2, id, h1, logs, sizeof logs);
	cr_assert(strstr(logs, "h2->h1 r: action=MV origin=default tried=MV:ok") != NULL, "%s", logs);
	op_eq(h1, id, "read", NULL, NULL, "v2 nil nil");
	op_has(h1, id, "info", NULL, NULL, "id=notes home=h1 mode=local");
	path_of(p, sizeof p, h1, "data/resources/notes.file");
	assert_file(p, "v2");
}

Test(resources_int, weak_mobility_binds_anew_to_what_the_decision_made)
{
	struct host *h1 = &hosts[0], *h2 = &hosts[1];
	char id[17], logs[32768], p[512];

	start_all();
	run_probe(h1, "r by-value doc", id);
	push_mode(h1, id, h2, "--weak", logs, sizeof logs);
	cr_assert(strstr(logs, "r: action=CP origin=default tried=CP:ok") != NULL, "%s", logs);
	/* It started over at its entry on h2 and asked for 'r' again: it got
	 * the copy the decision made, not a fresh resolution of "doc". */
	op_has(h2, id, "info", NULL, NULL, "action=CP id=doc.copy home=h2 mode=local");
	op_eq(h2, id, "read", NULL, NULL, "d0 nil nil");
	op_eq(h2, id, "write", "weak copy", NULL, "true nil nil");
	path_of(p, sizeof p, h2, "data/resources/doc.copy.file");
	assert_file(p, "weak copy");
}

Test(resources_int, a_gr_whose_home_is_down_at_the_hop_arrives_unbound_and_says_so)
{
	struct host *h1 = &hosts[0], *h2 = &hosts[1], *h3 = &hosts[2];
	char id[17], logs[32768], st[16384];

	start_all();
	run_probe(h1, "r by-identifier ledger", id);
	push(h1, id, h2, logs, sizeof logs);
	op_eq(h2, id, "put", "k", "v", "true nil nil");
	kill(h1->pid, SIGKILL);
	tst_proc_stop(h1->pid, 5000);
	h1->pid = 0;
	/* GR needs its home, MV needs the content here: nothing applies. */
	push(h2, id, h3, logs, sizeof logs);
	cr_assert(strstr(logs, "h2->h3 r: ") != NULL && strstr(logs, "GR:home-down") != NULL &&
		  strstr(logs, "MV:not-local") != NULL && strstr(logs, "(unbound)") != NULL,
		  "%s", logs);
	op_has(h3, id, "get", "k", NULL, "unbound");
	op_has(h3, id, "info", NULL, NULL, "mode=unbound");
	cr_assert_eq(ctl(h3, st, sizeof st, "--json", "ps", NULL, NULL, NULL), 0);
	cr_assert(strstr(st, id) != NULL, "agent gone from h3: %s", st);
}

Test(resources_int, a_failed_import_refuses_the_move_and_keeps_agent_and_content_at_the_source)
{
	struct host *h1 = &hosts[0], *h2 = &hosts[1];
	char id[17], out[2048], logs[32768], p[512], *log2;

	start_all();
	run_probe(h1, "r by-identifier notes", id);
	op_eq(h1, id, "write", "kept", NULL, "true nil nil");
	/* h2 cannot store what arrives: its import directory is a file (the
	 * tests run as root, so permissions would not stop it). */
	path_of(p, sizeof p, h2, "data/resources");
	tst_rmtree(p);
	write_file(p, "not a directory");
	cr_assert_neq(ctl(h1, out, sizeof out, "push", id, "--to", "h2", NULL), 0,
		      "the push succeeded: %s", out);
	/* h1 heard why (agentctl says it on stderr). */
	log2 = slurp(h1->log);
	cr_assert_not_null(log2);
	cr_assert(strstr(log2, "resource import failed") != NULL, "%s", log2);
	free(log2);
	/* The agent runs at h1, its handle still local, the content there. */
	op_eq(h1, id, "read", NULL, NULL, "kept nil nil");
	op_has(h1, id, "info", NULL, NULL, "id=notes home=h1 mode=local");
	path_of(p, sizeof p, h1, "notes.txt");
	assert_file(p, "kept");
	cr_assert_neq(ctl(h2, logs, sizeof logs, "logs", id, NULL, NULL, NULL), 0,
		      "the agent is on h2: %s", logs);
	log2 = slurp(h2->log);
	cr_assert_not_null(log2);
	cr_assert(strstr(log2, "res.import_failed") != NULL, "%s", log2);
	free(log2);
	/* Once h2 can store again, the same agent moves with its content. */
	path_of(p, sizeof p, h2, "data/resources");
	unlink(p);
	cr_assert_eq(mkdir(p, 0700), 0);
	push(h1, id, h2, logs, sizeof logs);
	cr_assert(strstr(logs, "r: action=MV origin=default tried=MV:ok") != NULL, "%s", logs);
	op_eq(h2, id, "read", NULL, NULL, "kept nil nil");
	path_of(p, sizeof p, h2, "data/resources/notes.file");
	assert_file(p, "kept");
}

Test(resources_int, a_copy_is_stored_at_the_target_before_the_source_lets_go)
{
	struct host *h1 = &hosts[0], *h2 = &hosts[1];
	char id[17], logs[32768], *log2, *staged, *stored;

	start_all();
	run_probe(h1, "r by-value doc", id);
	push(h1, id, h2, logs, sizeof logs);
	cr_assert(strstr(logs, "r: action=CP") != NULL, "%s", logs);
	/* The import is logged before the transfer is stored (and so before
	 * the acknowledgement that lets h1 commit). */
	log2 = slurp(h2->log);
	cr_assert_not_null(log2);
	staged = strstr(log2, "res.staged");
	cr_assert_not_null(staged, "%s", log2);
	stored = strstr(log2, "xfer.stored");
	cr_assert_not_null(stored, "%s", log2);
	cr_assert(staged < stored, "imported after the transfer was stored:\n%s", log2);
	free(log2);
	op_eq(h2, id, "read", NULL, NULL, "d0 nil nil");
}

Test(resources_int, by_type_sensor_binds_the_hosts_sensor_and_reads_it_from_elsewhere)
{
	struct host *h1 = &hosts[0], *h2 = &hosts[1];
	char id[17], logs[32768];

	start_all();
	run_probe(h1, "r by-type sensor", id);
	op_has(h1, id, "info", NULL, NULL, "id=temp home=h1 mode=local");
	op_eq(h1, id, "read", NULL, NULL, "21.5 nil nil");
	/* h2 has no sensor: RB falls back to GR. */
	push(h1, id, h2, logs, sizeof logs);
	cr_assert(strstr(logs, "r: action=GR origin=default tried=RB:no-kind,GR:ok") != NULL, "%s",
		  logs);
	op_eq(h2, id, "read", NULL, NULL, "21.5 nil nil");
}

/* Rewrites h's config with its one worker thread. */
static void one_worker(struct host *h)
{
	char *conf = slurp(h->conf), *w;

	cr_assert_not_null(conf);
	w = strstr(conf, "workers = 2");
	cr_assert_not_null(w);
	w[10] = '1';
	write_file(h->conf, conf);
	free(conf);
}

/* The tail of agent id's log on h after its answer line "R<tag> ", or NULL
 * (static buffer) when it has not answered yet. */
static const char *answered(struct host *h, const char *id, int tag)
{
	static char logs[32768];
	char needle[32];

	snprintf(needle, sizeof needle, "R%d ", tag);
	ctl(h, logs, sizeof logs, "logs", id, "--lines", "200", NULL);
	return strstr(logs, needle);
}

Test(resources_int, a_gr_op_waiting_on_a_stopped_home_holds_no_worker)
{
	struct host *h1 = &hosts[0], *h2 = &hosts[1];
	char a[17], b[17], logs[32768], msg[128];
	const char *got;
	int tag;
	long end;

	one_worker(h2);
	start_all();
	run_probe(h1, "r by-identifier ledger", a);
	push(h1, a, h2, logs, sizeof logs); /* fastened: GR */
	cr_assert(strstr(logs, "r: action=GR") != NULL, "%s", logs);
	op_eq(h2, a, "put", "k", "v", "true nil nil");
	run_probe(h2, "r by-identifier scratch2", b);
	/* The home stops answering; a's get waits for it (AGD_RES_CALL_TIMEOUT_MS). */
	kill(h1->pid, SIGSTOP);
	tag = ++tagseq;
	snprintf(msg, sizeof msg, "{\"op\":\"get\",\"a\":\"k\",\"tag\":%d}", tag);
	cr_assert_eq(ctl(h2, logs, sizeof logs, "send", a, msg, NULL, NULL), 0, "%s", logs);
	/* Meanwhile the other agent on h2's only worker runs, reads and
	 * writes: its answers come while a still waits. */
	op_eq(h2, b, "write", "while a waits", NULL, "true nil nil");
	op_eq(h2, b, "read", NULL, NULL, "while a waits nil nil");
	cr_assert_null(answered(h2, a, tag), "a answered before the other agent ran");
	/* a gets its answer when the wait ends: nil, unreachable; alive. */
	end = now_ms() + 20000;
	while ((got = answered(h2, a, tag)) == NULL && now_ms() < end)
		usleep(30000);
	cr_assert_not_null(got, "a never answered");
	cr_assert(strstr(got, "unreachable") != NULL, "%s", got);
	kill(h1->pid, SIGCONT);
	op_eq(h2, a, "get", "k", NULL, "v nil nil");
	/* A nested coroutine cannot park: its op waits on the worker. */
	op_eq(h2, a, "nested_get", "k", NULL, "v nil nil");
}

Test(resources_int, an_agent_in_process_isolation_is_told_resources_are_unavailable)
{
	struct host *h3 = &hosts[2];
	char id[17], logs[8192], *conf, *w, *more;

	/* h3 runs each agent in its own process. */
	conf = slurp(h3->conf);
	cr_assert_not_null(conf);
	w = strstr(conf, "workers = 2\n");
	cr_assert_not_null(w);
	more = calloc(1, strlen(conf) + 64);
	cr_assert_not_null(more);
	memcpy(more, conf, (size_t)(w - conf));
	strcat(more, "workers = 2\nisolation = process\n");
	strcat(more, w + strlen("workers = 2\n"));
	write_file(h3->conf, more);
	free(more);
	free(conf);
	start_host(h3);
	start_probe(h3, "r by-type printer", id, logs, sizeof logs);
	cr_assert(strstr(logs, "bound false") != NULL, "%s", logs);
	cr_assert(strstr(logs, "not available under isolation = process") != NULL, "%s", logs);
}
