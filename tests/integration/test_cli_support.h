/*
 * test_cli_support.h: what the end-to-end tests of agentctl share: a real
 * cluster of agentd processes on loopback started with scripts/cluster in a
 * fresh directory, agentctl run against it with output captured, and
 * bounded polling for what agents log.
 *
 * Header-only (static functions) so that each test binary stays one source
 * file plus this; every test gets its own cluster from its suite's .init
 * and loses it in .fini, which always stops the daemons.
 */
#ifndef TEST_CLI_SUPPORT_H
#define TEST_CLI_SUPPORT_H

#include "agd_json.h"
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char clu_dir[256];      /* the cluster's directory */
static char clu_file[320];     /* its cluster file */
static char clu_out[1 << 17];  /* stdout of the last agentctl */

static __attribute__((unused)) const char *clu_src(const char *rel, char *buf, size_t len)
{
	const char *top = getenv("AGENTD_SOURCE_DIR");

	cr_assert_not_null(top, "AGENTD_SOURCE_DIR not set");
	snprintf(buf, len, "%s/%s", top, rel);
	return buf;
}

/* Runs scripts/cluster with the words given (NULL-ended); returns its code. */
static __attribute__((unused)) int clu_script(const char *first, ...)
{
	char script[512];
	char *argv[16];
	int n = 0;
	va_list ap;

	argv[n++] = "/bin/bash";
	argv[n++] = (char *)clu_src("scripts/cluster", script, sizeof script);
	va_start(ap, first);
	for (const char *a = first; a != NULL && n < 15; a = va_arg(ap, const char *))
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	return tst_run(argv, NULL, 0, 60000);
}

/* Starts an n-host loopback cluster in a fresh directory. */
static __attribute__((unused)) void clu_start(int n)
{
	char nbuf[8];

	cr_assert_not_null(tst_bin("AGENTD_BIN"));
	cr_assert_not_null(tst_bin("AGENTCTL_BIN"));
	/* A prefix of our own: a stale path in another suite's cleanup can
	 * never name this directory. */
	snprintf(clu_dir, sizeof clu_dir, "/tmp/agentd-cli-XXXXXX");
	cr_assert_not_null(mkdtemp(clu_dir));
	snprintf(clu_file, sizeof clu_file, "%s/cluster", clu_dir);
	snprintf(nbuf, sizeof nbuf, "%d", n);
	cr_assert_eq(clu_script("start", "-n", nbuf, "--dir", clu_dir, NULL), 0,
		     "scripts/cluster start failed (logs in %s)", clu_dir);
}

static __attribute__((unused)) void clu_stop(void)
{
	if (clu_dir[0] == '\0')
		return;
	clu_script("stop", "--dir", clu_dir, "--purge", NULL);
	tst_rmtree(clu_dir);
	clu_dir[0] = '\0';
}

/* Runs agentctl against the cluster with the words given (NULL-ended);
 * stdout lands in clu_out. Returns the exit code. */
static __attribute__((unused)) int ctl(const char *first, ...)
{
	char *argv[40];
	int n = 0;
	va_list ap;

	argv[n++] = (char *)tst_bin("AGENTCTL_BIN");
	argv[n++] = "--cluster";
	argv[n++] = clu_file;
	argv[n++] = "--timeout";
	argv[n++] = "5000";
	va_start(ap, first);
	for (const char *a = first; a != NULL && n < 39; a = va_arg(ap, const char *))
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	return tst_run(argv, clu_out, sizeof clu_out, 60000);
}

/* Parses clu_out as one JSON document (the caller destroys it). */
static __attribute__((unused)) struct agd_json *clu_json(void)
{
	struct agd_json *doc = NULL;

	cr_assert_eq(agd_json_parse(clu_out, strlen(clu_out), &doc, NULL), 0,
		     "agentctl printed no JSON document: %s", clu_out);
	return doc;
}

/* Signs agents/<name> with the cluster's author key into DIR/<name>.seg
 * and returns that path (static buffer). */
static __attribute__((unused)) const char *clu_sign(const char *name)
{
	static char seg[512];
	char dir[512], key[512], rel[128];

	snprintf(rel, sizeof rel, "agents/%s", name);
	clu_src(rel, dir, sizeof dir);
	snprintf(key, sizeof key, "%s/author.key", clu_dir);
	snprintf(seg, sizeof seg, "%s/%s.seg", clu_dir, name);
	unlink(seg);
	cr_assert_eq(ctl("sign", dir, "-k", key, "-o", seg, NULL), 0, "agentctl sign %s failed", dir);
	return seg;
}

/* Runs a signed segment on host h and returns the agent id (static). */
static __attribute__((unused)) const char *clu_run(const char *seg, const char *host, const char *args)
{
	static char id[64];
	size_t n;

	if (args != NULL)
		cr_assert_eq(ctl("--host", host, "run", seg, "--args", args, NULL), 0, "run: %s", clu_out);
	else
		cr_assert_eq(ctl("--host", host, "run", seg, NULL), 0, "run: %s", clu_out);
	n = strcspn(clu_out, "\n");
	cr_assert(n > 0 && n < sizeof id, "run printed no id: %s", clu_out);
	memcpy(id, clu_out, n);
	id[n] = '\0';
	return id;
}

/* Has every pair of hosts talk once, by pushing a hello round the ring
 * h1 -> h2 -> h3 -> h1 (agentctl passes each target's peer endpoint; the
 * target learns the source's from its HELLO; daemons remember both), so
 * that agents moving by themselves find routes to every host. */
static __attribute__((unused)) void clu_introduce(void)
{
	char id[64];

	snprintf(id, sizeof id, "%s", clu_run(clu_sign("hello"), "h1", NULL));
	cr_assert_eq(ctl("push", id, "--to", "h2", "--weak", NULL), 0, "introduce h1->h2: %s", clu_out);
	cr_assert_eq(ctl("push", id, "--to", "h3", "--weak", NULL), 0, "introduce h2->h3: %s", clu_out);
	cr_assert_eq(ctl("push", id, "--to", "h1", "--weak", NULL), 0, "introduce h3->h1: %s", clu_out);
	cr_assert_eq(ctl("kill", id, NULL), 0, "%s", clu_out);
}

/* Polls `agentctl logs ID` until it contains `what`, for up to ms. */
static __attribute__((unused)) int clu_logs_wait(const char *id, const char *what, int ms)
{
	for (int t = 0; t < ms; t += 100) {
		if (ctl("logs", id, NULL) == 0 && strstr(clu_out, what) != NULL)
			return 1;
		usleep(100000);
	}
	return 0;
}

/* The pid of host hN's daemon, from the pid file scripts/cluster keeps. */
static __attribute__((unused)) pid_t clu_pid(int host)
{
	char path[400];
	FILE *f;
	long pid = -1;

	snprintf(path, sizeof path, "%s/h%d/agentd.pid", clu_dir, host);
	f = fopen(path, "r");
	cr_assert_not_null(f, "no pid file %s", path);
	cr_assert_eq(fscanf(f, "%ld", &pid), 1);
	fclose(f);
	return (pid_t)pid;
}

#endif
