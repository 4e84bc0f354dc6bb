/*
 * test_cli_socket_activation.c: agentd started the way systemd starts it
 * from agentd.socket. systemd-socket-activate (systemd's own tool for
 * testing socket-activated services) listens on a loopback port and starts
 * agentd at the first connection, passing the listening socket as fd 3
 * with LISTEN_FDS=1 and LISTEN_FDNAMES=control. agentctl's first request
 * must be answered by that daemon, through the socket it was handed (its
 * config names another control port, which nothing listens on).
 *
 * Skipped, with a message, where systemd-socket-activate is not installed.
 */
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];
static pid_t activator = -1;

static void fini(void)
{
	if (activator > 0)
		tst_proc_stop(activator, 10000);
	/* The daemon is the activator's child: stopping the activator with
	 * SIGTERM ends it too; anything left is killed by its pid file. */
	if (dir[0] != '\0')
		tst_rmtree(dir);
}

TestSuite(socket_activation, .fini = fini, .timeout = 60);

static const char *find_activator(void)
{
	static const char *const paths[] = { "/usr/bin/systemd-socket-activate",
					     "/bin/systemd-socket-activate",
					     "/lib/systemd/systemd-activate", NULL };

	for (size_t i = 0; paths[i] != NULL; i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

Test(socket_activation, first_connection_starts_agentd_which_serves_it_on_the_passed_socket)
{
	const char *act = find_activator();
	char conf[300], listen[64], ep[64], unused_ep[64], fdname[] = "--fdname=control";
	char out[4096], text[1024];
	FILE *f;
	int port = tst_free_port(), other = tst_free_port(), rc = -1;

	if (act == NULL)
		cr_skip_test("systemd-socket-activate is not installed (package systemd)");
	cr_assert_not_null(tst_bin("AGENTD_BIN"));
	cr_assert_eq(tst_tmpdir(dir, sizeof dir), 0);
	snprintf(conf, sizeof conf, "%s/agentd.conf", dir);
	snprintf(unused_ep, sizeof unused_ep, "tcp://127.0.0.1:%d", other);
	snprintf(text, sizeof text,
		 "[daemon]\nhost = sa1\ndata_dir = %s\n\n[control]\ntcp = %s\n\n[log]\nfile = %s/agentd.log\n",
		 dir, unused_ep, dir);
	f = fopen(conf, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);

	snprintf(listen, sizeof listen, "--listen=127.0.0.1:%d", port);
	{
		char *argv[] = { (char *)act, listen, fdname, (char *)tst_bin("AGENTD_BIN"), "--config",
				 conf, NULL };
		char log[300];

		snprintf(log, sizeof log, "%s/activator.log", dir);
		activator = tst_proc_start(argv, log);
		cr_assert_gt(activator, 0);
	}
	snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
	{
		char *argv[] = { (char *)tst_bin("AGENTCTL_BIN"), "--host", ep, "--json", "--timeout", "2000",
				 "status", NULL };

		/* The activator needs a moment to listen; then the first
		 * request wakes agentd. */
		for (int i = 0; i < 15 && rc != 0; i++) {
			rc = tst_run(argv, out, sizeof out, 10000);
			if (rc != 0)
				usleep(100000);
		}
	}
	cr_assert_eq(rc, 0, "no answer through the socket systemd passed (see %s/agentd.log)", dir);
	cr_assert(strstr(out, "\"host\":\"sa1\"") != NULL, "%s", out);
}
