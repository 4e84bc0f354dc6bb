/*
 * tst_proc.c: process helpers for tests (see tst_proc.h).
 */
#include "tst_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Whether `port` on loopback can be bound now. */
static int port_bindable(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	if (fd < 0)
		return 0;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
	close(fd);
	return ok;
}

/* Claims `port` among the test processes of this machine: an flock on a
 * file named after it, held (fd kept open, not inherited by the daemons)
 * until this process exits. Two test binaries running at once (ctest -j)
 * could otherwise both find a port free and both give it to a daemon,
 * and the slower one (an ASan build binds late) died of "Address already
 * in use". 1 if the port is ours now; without the directory, 1 (the
 * bind check alone). The files stay, empty, one per port ever claimed: a
 * file removed while locked would let two claims of one port coexist. */
static int port_claim(int port)
{
	char path[64];
	int fd;

	if (mkdir("/tmp/agentd-test-ports", 01777) != 0 && errno != EEXIST)
		return 1;
	snprintf(path, sizeof path, "/tmp/agentd-test-ports/%d", port);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0)
		return 1;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		return 0;
	}
	return 1; /* fd stays open: the claim lasts as long as this process */
}

/* A port below the kernel's ephemeral range (32768 and up by default):
 * the source port of any outgoing connection, of this test or of another
 * one running beside it, is taken from that range, and one taken between
 * our check and the daemon's bind made the daemon fail with "Address
 * already in use". Random (seeded from the kernel's generator, so that
 * tests running at once, forked from one runner, do not walk the same
 * sequence), checked free, and never the same twice in one process: a test
 * asks for several before its daemons bind any. */
int tst_free_port(void)
{
	static unsigned seed;
	static pid_t seeded_by; /* a forked child seeds again */
	static int given[256];
	static size_t ngiven;

	if (seeded_by != getpid()) {
		seeded_by = getpid();
		if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
			seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
	}
	for (int tries = 0; tries < 1000; tries++) {
		int port = 20000 + (int)(rand_r(&seed) % 12000), dup = 0;

		for (size_t i = 0; i < ngiven; i++)
			dup |= given[i] == port;
		if (dup || !port_bindable(port) || !port_claim(port))
			continue;
		if (ngiven < sizeof given / sizeof given[0])
			given[ngiven++] = port;
		return port;
	}
	return -1;
}

const char *tst_bin(const char *env)
{
	return getenv(env);
}

pid_t tst_proc_start(char *const argv[], const char *log_path)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	if (log_path != NULL) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
	}
	execv(argv[0], argv);
	_exit(127);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Waits for pid up to timeout_ms; returns the status or -1 on timeout. */
static int wait_for(pid_t pid, int timeout_ms)
{
	long deadline = now_ms() + timeout_ms;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0)
			return -1;
		if (now_ms() >= deadline)
			return -2;
		usleep(5000);
	}
}

int tst_proc_stop(pid_t pid, int timeout_ms)
{
	int status;

	if (pid <= 0)
		return -1;
	kill(pid, SIGTERM);
	status = wait_for(pid, timeout_ms);
	if (status == -2) {
		kill(pid, SIGKILL);
		status = wait_for(pid, 5000);
	}
	return status < 0 ? -1 : status;
}

int tst_run(char *const argv[], char *out, size_t out_len, int timeout_ms)
{
	int p[2];
	size_t used = 0;
	long deadline = now_ms() + timeout_ms;
	pid_t pid;
	int status;

	if (pipe(p) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], 1);
		close(p[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -1;
	}
	for (;;) {
		struct pollfd pf = { p[0], POLLIN, 0 };
		long left = deadline - now_ms();
		char sink[512];
		ssize_t n;

		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			break;
		if (out != NULL && used + 1 < out_len)
			n = read(p[0], out + used, out_len - 1 - used);
		else
			n = read(p[0], sink, sizeof sink);
		if (n <= 0)
			break;
		if (out != NULL && used + 1 < out_len)
			used += (size_t)n;
	}
	if (out != NULL && out_len > 0)
		out[used] = '\0';
	close(p[0]);
	status = wait_for(pid, (int)(deadline - now_ms() > 0 ? deadline - now_ms() : 1));
	if (status < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int tst_tmpdir(char *buf, size_t len)
{
	if (snprintf(buf, len, "/tmp/agentd-test-XXXXXX") >= (int)len)
		return -1;
	return mkdtemp(buf) ? 0 : -1;
}

int tst_rmtree(const char *path)
{
	char *argv[] = { "/bin/rm", "-rf", (char *)path, NULL };

	return tst_run(argv, NULL, 0, 30000);
}

int tst_file_has(const char *path, const char *what)
{
	enum { CAP = 1 << 18 };
	char *text = malloc(CAP);
	FILE *f;
	size_t n;
	int has;

	if (text == NULL || (f = fopen(path, "r")) == NULL) {
		free(text);
		return 0;
	}
	n = fread(text, 1, CAP - 1, f);
	fclose(f);
	text[n] = '\0';
	has = strstr(text, what) != NULL;
	free(text);
	return has;
}
