/*
 * migcluster.h: a three-daemon cluster on loopback for the migration tests
 * (test_migration.c, test_migration_self.c): host keys, trust store and
 * trusted-hosts list, per-host configs with a peer channel, a signed
 * "ticker" segment, and helpers to start daemons (optionally with a
 * test-only crash or pause point), run agentctl against them and follow an
 * agent's count in its log. Included by one test file each; the suite's
 * .init and .fini are setup and teardown.
 */
#ifndef MIGCLUSTER_H
#define MIGCLUSTER_H

#include "tst_proc.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
static char seg[300];
static struct host hosts[HOSTS];

static __attribute__((unused)) const char *ctlbin(void)
{
	const char *b = tst_bin("AGENTCTL_BIN");

	cr_assert_not_null(b, "AGENTCTL_BIN not set");
	return b;
}

static __attribute__((unused)) void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "cannot write %s", path);
	fputs(text, f);
	fclose(f);
}

static __attribute__((unused)) void append_file(const char *dst, const char *src)
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

static __attribute__((unused)) void keygen(const char *prefix, const char *name)
{
	char *argv[] = { (char *)ctlbin(), "keygen", "-o", (char *)prefix, "--name", (char *)name, NULL };

	cr_assert_eq(tst_run(argv, NULL, 0, 10000), 0, "keygen %s", prefix);
}

static __attribute__((unused)) void setup(void)
{
	char path[400], text[2048], agentdir[300];

	/* A cluster file left in the environment by an earlier test is gone. */
	unsetenv("AGENTCTL_CLUSTER");
	cr_assert_eq(tst_tmpdir(tmp, sizeof tmp), 0);
	snprintf(path, sizeof path, "%s/author", tmp);
	keygen(path, "author");
	snprintf(path, sizeof path, "%s/author.pub", tmp);
	{
		char trust[300];

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
		/* Through a local copy: GCC cannot tell h->dir from h->conf
		 * inside hosts[] (-Wrestrict). */
		{
			char hd[300];

			memcpy(hd, h->dir, sizeof hd);
			snprintf(h->conf, sizeof h->conf, "%s/agentd.conf", hd);
			snprintf(h->log, sizeof h->log, "%s/agentd.log", hd);
		}
		snprintf(text, sizeof text,
			 "[daemon]\nhost = h%d\ndata_dir = %.250s/data\nworkers = 2\n\n"
			 "[control]\ntcp = %.60s\nipc = ipc://%.250s/control.sock\n\n"
			 "[peer]\nendpoint = %.60s\nhost_key = %.250s/h%d.key\ntrust_store = %.200s/trust\n"
			 "trusted_hosts = %.200s/trusted-hosts\n\n"
			 "[log]\nfile = %.300s\nlevel = info\n",
			 i + 1, h->dir, h->ctl, h->dir, h->peer, h->dir, i + 1, tmp, tmp, h->log);
		write_file(h->conf, text);
	}
	/* The agent: counts in a local, logs every step. */
	snprintf(agentdir, sizeof agentdir, "%s/ticker", tmp);
	mkdir(agentdir, 0700);
	snprintf(path, sizeof path, "%s/manifest", agentdir);
	write_file(path, "agentd-manifest 1\nname = ticker\nversion = 1.0\nentry = main.lua main\n"
			 "mobility = both\nactivation = resident\nfile = main.lua\n");
	snprintf(path, sizeof path, "%s/main.lua", agentdir);
	write_file(path, "function main()\n  local n = 0\n  while true do\n    n = n + 1\n"
			 "    agent.log('tick ' .. n .. ' on ' .. agent.host())\n    agent.sleep(0.05)\n"
			 "  end\nend\n");
	/* The cluster file, so that agentctl knows the hosts by name. */
	{
		char body[1024], cluster[300];

		snprintf(cluster, sizeof cluster, "%s/cluster", tmp);
		snprintf(body, sizeof body, "h1 %s %s\nh2 %s %s\nh3 %s %s\n", hosts[0].ctl, hosts[0].peer,
			 hosts[1].ctl, hosts[1].peer, hosts[2].ctl, hosts[2].peer);
		write_file(cluster, body);
		setenv("AGENTCTL_CLUSTER", cluster, 1);
	}
	/* A second agent: counts the messages it receives and the duplicates. */
	{
		char idir[300], ipath[400], key[300], iseg[300];

		snprintf(idir, sizeof idir, "%.200s/inbox", tmp);
		mkdir(idir, 0700);
		snprintf(ipath, sizeof ipath, "%s/manifest", idir);
		write_file(ipath, "agentd-manifest 1\nname = inbox\nversion = 1.0\nentry = main.lua main\n"
				  "mobility = both\nactivation = resident\nfile = main.lua\n");
		snprintf(ipath, sizeof ipath, "%s/main.lua", idir);
		write_file(ipath, "function main()\n  local seen, total, dups = {}, 0, 0\n  while true do\n"
				  "    local m = agent.recv(0.05)\n    if m ~= nil then\n"
				  "      if seen[m] then dups = dups + 1 else seen[m] = true; total = total + 1 end\n"
				  "    end\n    agent.log('total ' .. total .. ' dups ' .. dups)\n  end\nend\n");
		snprintf(iseg, sizeof iseg, "%.200s/inbox.seg", tmp);
		snprintf(key, sizeof key, "%.200s/author.key", tmp);
		{
			char *argv[] = { (char *)ctlbin(), "sign", idir, "-k", key, "-o", iseg, NULL };

			cr_assert_eq(tst_run(argv, NULL, 0, 10000), 0, "sign inbox");
		}
	}
	snprintf(seg, sizeof seg, "%s/ticker.seg", tmp);
	{
		char key[300];
		char *argv[] = { (char *)ctlbin(), "sign", agentdir, "-k", key, "-o", seg, NULL };

		snprintf(key, sizeof key, "%s/author.key", tmp);
		cr_assert_eq(tst_run(argv, NULL, 0, 10000), 0, "sign");
	}
}

static __attribute__((unused)) void teardown(void)
{
	for (int i = 0; i < HOSTS; i++) {
		if (hosts[i].pid > 0) {
			kill(hosts[i].pid, SIGCONT);
			tst_proc_stop(hosts[i].pid, 5000);
		}
		hosts[i].pid = 0;
	}
	if (getenv("MIGRATION_TEST_KEEP") == NULL)
		tst_rmtree(tmp);
}

static __attribute__((unused)) long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* agentctl --host H ARGS...; output into out. */
static __attribute__((unused)) int ctl(struct host *h, char *out, size_t len, int timeout_ms, const char *a1, const char *a2,
	       const char *a3, const char *a4, const char *a5)
{
	char *argv[] = { (char *)ctlbin(), "--host", h->ctl, "--timeout", "8000", (char *)a1,
			 (char *)a2, (char *)a3, (char *)a4, (char *)a5, NULL };

	if (out && len)
		out[0] = '\0';
	return tst_run(argv, out, len, timeout_ms);
}

static __attribute__((unused)) void start_host(struct host *h, const char *crash, const char *pause)
{
	char *argv[] = { (char *)tst_bin("AGENTD_BIN"), "--config", h->conf, NULL };
	char out[1024];
	long end = now_ms() + 30000;

	cr_assert_not_null(argv[0], "AGENTD_BIN not set");
	if (crash)
		setenv("AGENTD_TEST_CRASH_AT", crash, 1);
	if (pause)
		setenv("AGENTD_TEST_PAUSE_AFTER", pause, 1);
	h->pid = tst_proc_start(argv, NULL);
	unsetenv("AGENTD_TEST_CRASH_AT");
	unsetenv("AGENTD_TEST_PAUSE_AFTER");
	cr_assert_gt(h->pid, 0);
	while (now_ms() < end) {
		if (ctl(h, out, sizeof out, 3000, "status", NULL, NULL, NULL, NULL) == 0)
			return;
		usleep(50000);
	}
	cr_assert_fail("%s did not come up", h->name);
}

/* Whether host h lists agent id among its live agents: 1, 0, or -1 when
 * the host does not answer. */
static __attribute__((unused)) int lists(struct host *h, const char *id)
{
	char out[16384];

	if (ctl(h, out, sizeof out, 10000, "--json", "ps", NULL, NULL, NULL) != 0)
		return -1;
	return strstr(out, id) != NULL;
}

/* The text of log line `line` ("TIME HOST TEXT") when it was logged on
 * host `name`, else NULL. */
static __attribute__((unused)) char *logged_on(char *line, const char *name)
{
	char *host = strchr(line, ' ');
	size_t hl = strlen(name);

	if (host == NULL || strncmp(host + 1, name, hl) != 0 || host[1 + hl] != ' ')
		return NULL;
	return host + 2 + hl;
}

/* The highest "tick N" logged on h, or -1. Only h's lines count: the log
 * follows the agent, and asked after a push h forwards to the target,
 * whose later ticks are not h's. */
static __attribute__((unused)) int last_tick(struct host *h, const char *id)
{
	char out[16384];
	int best = -1;
	char *save = NULL;

	if (ctl(h, out, sizeof out, 10000, "logs", id, "--lines", "200", NULL) != 0)
		return -1;
	for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *text = logged_on(line, h->name), *p;

		if (text != NULL && (p = strstr(text, "tick ")) != NULL && atoi(p + 5) > best)
			best = atoi(p + 5);
	}
	return best;
}

/* The smallest "tick N" logged on h since its run there began, or -1. The
 * log follows the agent and survives restarts, so only lines logged on h
 * (the HOST column of "TIME HOST TEXT") after the last "[state] created"
 * (it arrived) or "[state] resumed after restart" there count. */
static __attribute__((unused)) int first_tick(struct host *h, const char *id)
{
	char out[16384];
	int best = -1;
	char *save = NULL;

	if (ctl(h, out, sizeof out, 10000, "logs", id, "--lines", "200", NULL) != 0)
		return -1;
	for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *text = logged_on(line, h->name), *p;

		if (text == NULL)
			continue;
		if (strcmp(text, "[state] created") == 0 ||
		    strcmp(text, "[state] resumed after restart") == 0)
			best = -1;
		else if ((p = strstr(text, "tick ")) != NULL) {
			int n = atoi(p + 5);

			if (best < 0 || n < best)
				best = n;
		}
	}
	return best;
}

static __attribute__((unused)) void wait_ticks(struct host *h, const char *id, int n)
{
	long end = now_ms() + 10000;

	while (now_ms() < end && last_tick(h, id) < n)
		usleep(50000);
	cr_assert_geq(last_tick(h, id), n, "%s: agent not ticking", h->name);
}

/* The agent's count, as logged on h, never went back or skipped: each
 * "tick N" is one more than the one before, and the run there did not
 * start over at the entry (N = 1) after having counted further. Returns the
 * number of ticks seen. */
static __attribute__((unused)) int check_ticks(struct host *h, const char *id, const char *what)
{
	char out[16384];
	int prev = -1, n = 0;

	if (ctl(h, out, sizeof out, 10000, "logs", id, "--lines", "200", NULL) != 0)
		return 0;
	for (char *p = strstr(out, "tick "); p; p = strstr(p + 5, "tick ")) {
		int t = atoi(p + 5);

		if (prev >= 0)
			cr_assert_eq(t, prev + 1, "%s: on %s the count went %d -> %d (run twice, or state lost)",
				     what, h->name, prev, t);
		prev = t;
		n++;
	}
	return n;
}

#endif
