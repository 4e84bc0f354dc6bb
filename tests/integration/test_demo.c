/*
 * test_demo.c: scripts/demo, the README's first command, on the binaries of
 * this build (--build-dir, so that it does not set up or rebuild): it
 * starts three hosts, runs every example agent, reports, and stops
 * everything, leaving no daemon and no namespace behind. The same demo on
 * the network-namespace cluster when the test runs as root; skipped, with
 * a message, otherwise.
 */
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char out[1 << 18];

TestSuite(demo, .timeout = 600);

static int run_demo(int netns)
{
	char script[512], build[512];
	const char *top = getenv("AGENTD_SOURCE_DIR"), *bdir = getenv("AGENTD_BUILD_DIR");
	char *argv[8];
	int n = 0;

	cr_assert_not_null(top);
	cr_assert_not_null(bdir);
	snprintf(script, sizeof script, "%s/scripts/demo", top);
	snprintf(build, sizeof build, "%s", bdir);
	argv[n++] = "/bin/bash";
	argv[n++] = script;
	argv[n++] = "--build-dir";
	argv[n++] = build;
	if (netns)
		argv[n++] = "--netns";
	argv[n] = NULL;
	return tst_run(argv, out, sizeof out, 540000);
}

/* Whether a process whose command line mentions `needle` is still alive. */
static int process_left(const char *needle)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int found = 0;

	cr_assert_not_null(d);
	while (!found && (e = readdir(d)) != NULL) {
		char path[300], cmd[4096];
		FILE *f;
		size_t n;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		n = fread(cmd, 1, sizeof cmd - 1, f);
		fclose(f);
		for (size_t i = 0; i < n; i++)
			if (cmd[i] == '\0')
				cmd[i] = ' ';
		cmd[n] = '\0';
		found = strstr(cmd, "agentd") != NULL && strstr(cmd, needle) != NULL;
	}
	closedir(d);
	return found;
}

/* The cluster directory the demo announced ("3 hosts up (MODE) in DIR"). */
static void demo_dir(const char *mode, char *dir, size_t len)
{
	char line[128];
	const char *p;
	size_t n;

	snprintf(line, sizeof line, "3 hosts up (%s) in ", mode);
	p = strstr(out, line);
	cr_assert_not_null(p, "no '%s' in:\n%s", line, out);
	p += strlen(line);
	n = strcspn(p, "\n");
	cr_assert_lt(n, len);
	memcpy(dir, p, n);
	dir[n] = '\0';
}

static void check_demo_output(const char *mode)
{
	char dir[256];

	demo_dir(mode, dir, sizeof dir);
	cr_assert(strstr(out, "== agentctl status --all") != NULL, "%s", out);
	cr_assert(strstr(out, "== tour") != NULL, "%s", out);
	cr_assert(strstr(out, "== summary") != NULL, "%s", out);
	cr_assert(strstr(out, "worked: status --all run hello on 3 hosts") != NULL, "%s", out);
	cr_assert(strstr(out, "clean stop") != NULL, "%s", out);
	/* None of this demo's daemons may survive it (another test's demo
	 * may be running at the same time, in another directory). */
	cr_assert_not(process_left(dir), "a daemon of %s is still running", dir);
}

Test(demo, runs_the_agents_on_three_loopback_hosts_and_stops_everything)
{
	int rc = run_demo(0);

	cr_assert_eq(rc, 0, "demo failed (%d):\n%s", rc, out);
	check_demo_output("loopback");
}

Test(demo, runs_the_agents_on_a_network_namespace_cluster_as_root)
{
	char list[4096], dir[256], cmd[400], tag[32], prefix[48];
	char *sh[] = { "/bin/sh", "-c", cmd, NULL };
	int rc;

	if (geteuid() != 0)
		cr_skip_test("the namespace cluster needs root (network namespaces); run ctest as root to include it");
	if (access("/sbin/ip", X_OK) != 0 && access("/usr/sbin/ip", X_OK) != 0 && access("/bin/ip", X_OK) != 0)
		cr_skip_test("iproute2 (ip) is not installed");
	rc = run_demo(1);
	cr_assert_eq(rc, 0, "demo --netns failed (%d):\n%s", rc, out);
	check_demo_output("netns");

	/* Its namespaces are gone: their names carry a tag made from the
	 * cluster directory, as scripts/cluster makes it. */
	demo_dir("netns", dir, sizeof dir);
	snprintf(cmd, sizeof cmd, "printf '%%s' '%s' | cksum | cut -c1-6", dir);
	cr_assert_eq(tst_run(sh, tag, sizeof tag, 10000), 0);
	tag[strcspn(tag, "\n")] = '\0';
	snprintf(prefix, sizeof prefix, "agd%s-", tag);
	snprintf(cmd, sizeof cmd, "ip netns list");
	cr_assert_eq(tst_run(sh, list, sizeof list, 10000), 0);
	cr_assert(strstr(list, prefix) == NULL, "namespaces %s* left: %s", prefix, list);
}
