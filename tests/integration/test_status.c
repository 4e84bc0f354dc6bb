/*
 * test_status.c: a real agentd on a loopback port answers `agentctl status`,
 * refuses a request of another protocol version, and stops on SIGTERM.
 */
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char endpoint[64], dir[64];
static pid_t daemon_pid;

static void start(void)
{
	char *argv[] = { (char *)tst_bin("AGENTD_BIN"), "--name", "h1", "--control", endpoint,
			 "--data-dir", dir, NULL };

	cr_assert_not_null(argv[0], "AGENTD_BIN not set");
	cr_assert_eq(tst_tmpdir(dir, sizeof dir), 0);
	snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", tst_free_port());
	daemon_pid = tst_proc_start(argv, NULL);
	cr_assert_gt(daemon_pid, 0);
}

static void stop(void)
{
	if (daemon_pid > 0)
		tst_proc_stop(daemon_pid, 5000);
	tst_rmtree(dir);
}

TestSuite(daemon_status, .init = start, .fini = stop, .timeout = 30);

Test(daemon_status, answers_status_with_its_name)
{
	char out[4096];
	char *argv[] = { (char *)tst_bin("AGENTCTL_BIN"), "--host", endpoint, "--json", "status", NULL };
	int rc = -1;

	/* The daemon may still be binding: retry for a bounded time. */
	for (int i = 0; i < 50 && rc != 0; i++) {
		rc = tst_run(argv, out, sizeof out, 2000);
		if (rc != 0)
			usleep(100000);
	}
	cr_assert_eq(rc, 0);
	cr_assert(strstr(out, "\"host\":\"h1\"") != NULL, "got: %s", out);
}

Test(daemon_status, stops_cleanly_on_sigterm)
{
	int status;

	usleep(200000);
	status = tst_proc_stop(daemon_pid, 5000);
	daemon_pid = 0;
	cr_assert(WIFEXITED(status), "daemon did not exit by itself");
	cr_assert_eq(WEXITSTATUS(status), 0);
}

Test(daemon_status, unreachable_host_is_a_clear_exit_code)
{
	char ep[64];
	char *argv[] = { (char *)tst_bin("AGENTCTL_BIN"), "--host", ep, "--timeout", "300", "status", NULL };

	snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", tst_free_port());
	cr_assert_eq(tst_run(argv, NULL, 0, 5000), 3);
}
