/*
 * test_sd.c: socket activation. The environment parser on its own, then the
 * whole hand-over in a child process that fakes what systemd does: a
 * listening socket at fd 3 with LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES set,
 * and a client that connected before the daemon's ZeroMQ socket existed.
 */
#include "agd_err.h"
#include "agd_sd.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

TestSuite(agd_sd, .timeout = 30);

Test(agd_sd, absent_variables_mean_not_activated)
{
	struct agd_sd sd;

	cr_assert_eq(agd_sd_parse(NULL, NULL, NULL, 42, &sd), AGD_OK);
	cr_assert_eq(sd.n, 0);
}

Test(agd_sd, descriptors_for_another_pid_are_ignored)
{
	struct agd_sd sd;

	cr_assert_eq(agd_sd_parse("41", "2", "control:peer", 42, &sd), AGD_OK);
	cr_assert_eq(sd.n, 0);
}

Test(agd_sd, names_are_matched_to_descriptors_from_three)
{
	struct agd_sd sd;

	cr_assert_eq(agd_sd_parse("42", "2", "control:peer", 42, &sd), AGD_OK);
	cr_assert_eq(sd.n, 2);
	cr_assert_eq(sd.fds[0].fd, 3);
	cr_assert_str_eq(sd.fds[0].name, "control");
	cr_assert_eq(sd.fds[1].fd, 4);
	cr_assert_str_eq(sd.fds[1].name, "peer");
	cr_assert_eq(agd_sd_find(&sd, "peer"), &sd.fds[1]);
	cr_assert_null(agd_sd_find(&sd, "nope"));
}

Test(agd_sd, names_are_optional)
{
	struct agd_sd sd;

	cr_assert_eq(agd_sd_parse("42", "1", NULL, 42, &sd), AGD_OK);
	cr_assert_eq(sd.n, 1);
	cr_assert_str_eq(sd.fds[0].name, "");
}

Test(agd_sd, malformed_variables_are_refused)
{
	struct agd_sd sd;
	char long_name[200];

	memset(long_name, 'x', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = '\0';
	cr_assert_eq(agd_sd_parse("x42", "1", NULL, 42, &sd), AGD_ERR_ARG);
	cr_assert_eq(agd_sd_parse("42", "one", NULL, 42, &sd), AGD_ERR_ARG);
	cr_assert_eq(agd_sd_parse("42", "-1", NULL, 42, &sd), AGD_ERR_ARG);
	cr_assert_eq(agd_sd_parse("42", "1000", NULL, 42, &sd), AGD_ERR_ARG);
	cr_assert_eq(agd_sd_parse("42", "2", "control", 42, &sd), AGD_ERR_ARG, "too few names");
	cr_assert_eq(agd_sd_parse("42", "1", "a:b", 42, &sd), AGD_ERR_ARG, "too many names");
	cr_assert_eq(agd_sd_parse("42", "1", long_name, 42, &sd), AGD_ERR_ARG);
	cr_assert_eq(sd.n, 0);
}

/* ---- the hand-over, in a child that owns its fd 3 ---- */

/* Exit codes of the child, so a failure says which step failed. */
enum { C_OK = 0, C_SOCKET = 10, C_LISTEN, C_CLIENT, C_SD, C_ENDPOINT, C_BIND, C_RECV, C_REPLY,
       C_ENV };

static int child_serve(int fd3, const char *expect_prefix)
{
	struct agd_sd sd;
	const struct agd_sd_fd *f;
	void *ctx = zmq_ctx_new(), *client, *server;
	int linger = 0, tmo = 5000;
	char pid[32], buf[64];
	zmq_msg_t id;

	if (dup2(fd3, 3) != 3)
		_exit(C_SOCKET);
	if (fd3 != 3)
		close(fd3);
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", "1", 1);
	setenv("LISTEN_FDNAMES", "control", 1);

	if (agd_sd_listen(&sd, 1) != AGD_OK || sd.n != 1)
		_exit(C_SD);
	if (getenv("LISTEN_FDS") != NULL)
		_exit(C_ENV);
	f = agd_sd_find(&sd, "control");
	if (f == NULL || strncmp(f->endpoint, expect_prefix, strlen(expect_prefix)) != 0)
		_exit(C_ENDPOINT);

	/* The client connects and sends before the server socket exists: the
	 * connection waits in the listening socket's backlog, as the first
	 * connection to a socket unit does while systemd starts the daemon. */
	client = zmq_socket(ctx, ZMQ_REQ);
	zmq_setsockopt(client, ZMQ_LINGER, &linger, sizeof linger);
	zmq_setsockopt(client, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
	if (zmq_connect(client, f->endpoint) != 0 || zmq_send(client, "ping", 4, 0) != 4)
		_exit(C_CLIENT);
	usleep(100000);

	server = zmq_socket(ctx, ZMQ_ROUTER);
	zmq_setsockopt(server, ZMQ_LINGER, &linger, sizeof linger);
	zmq_setsockopt(server, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
	if (agd_sd_bind(server, f) != AGD_OK)
		_exit(C_BIND);
	zmq_msg_init(&id);
	if (zmq_msg_recv(&id, server, 0) < 0 || zmq_recv(server, buf, sizeof buf, 0) != 0 ||
	    zmq_recv(server, buf, sizeof buf, 0) != 4 || memcmp(buf, "ping", 4) != 0)
		_exit(C_RECV);
	if (zmq_msg_send(&id, server, ZMQ_SNDMORE) < 0 || zmq_send(server, "", 0, ZMQ_SNDMORE) < 0 ||
	    zmq_send(server, "pong", 4, 0) != 4)
		_exit(C_REPLY);
	if (zmq_recv(client, buf, sizeof buf, 0) != 4 || memcmp(buf, "pong", 4) != 0)
		_exit(C_REPLY);
	zmq_close(client);
	zmq_close(server);
	zmq_ctx_term(ctx);
	_exit(C_OK);
}

/* Runs child_serve in a fork with a bounded wait; returns its exit code. */
static int run_child(int fd, const char *expect_prefix)
{
	pid_t pid = fork();
	int status = 0;

	cr_assert_geq(pid, 0);
	if (pid == 0)
		child_serve(fd, expect_prefix);
	close(fd);
	for (int i = 0; i < 200; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		usleep(50000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -2;
}

Test(agd_sd, tcp_socket_from_systemd_serves_a_client_that_connected_first)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(listen(fd, 16), 0);
	cr_assert_eq(run_child(fd, "tcp://127.0.0.1:"), C_OK);
}

Test(agd_sd, unix_socket_from_systemd_becomes_an_ipc_endpoint)
{
	struct sockaddr_un a;
	char dir[] = "/tmp/agd-sd-XXXXXX", path[64];
	int fd = socket(AF_UNIX, SOCK_STREAM, 0), rc;

	cr_assert_geq(fd, 0);
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/ctl.sock", dir);
	memset(&a, 0, sizeof a);
	a.sun_family = AF_UNIX;
	snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(listen(fd, 16), 0);
	rc = run_child(fd, "ipc:///tmp/agd-sd-");
	unlink(path);
	rmdir(dir);
	cr_assert_eq(rc, C_OK);
}

Test(agd_sd, a_descriptor_that_is_not_listening_is_refused)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	/* Not listening: agd_sd_listen must refuse (child exits C_SD). */
	cr_assert_eq(run_child(fd, "tcp://"), C_SD);
}
