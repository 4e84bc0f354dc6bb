/*
 * agd_sd.c: socket activation (see agd_sd.h). Implements the environment
 * protocol of sd_listen_fds(3) without libsystemd: three variables and the
 * descriptors from 3 on.
 */
#include "agd_sd.h"

#include "agd_err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

/* Parses a whole decimal number in [0, max]; 0 or -1. */
static int parse_num(const char *s, long max, long *out)
{
	char *end = NULL;
	long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

int agd_sd_parse(const char *listen_pid, const char *listen_fds, const char *listen_fdnames,
		 pid_t self, struct agd_sd *out)
{
	long pid, n;
	size_t i = 0;
	const char *p;

	memset(out, 0, sizeof *out);
	if (listen_pid == NULL || listen_fds == NULL)
		return AGD_OK;
	if (parse_num(listen_pid, 0x7fffffffL, &pid) != 0)
		return AGD_ERR_ARG;
	/* Descriptors inherited by a child of the activated process (an agent
	 * worker, say) are not the child's to use. */
	if ((pid_t)pid != self)
		return AGD_OK;
	if (parse_num(listen_fds, AGD_SD_FDS_MAX, &n) != 0)
		return AGD_ERR_ARG;
	for (long k = 0; k < n; k++)
		out->fds[k].fd = AGD_SD_FDS_START + (int)k;
	if (listen_fdnames != NULL) {
		/* Exactly n names, colon-separated (a name may be empty). */
		for (p = listen_fdnames;; i++) {
			const char *colon = strchr(p, ':');
			size_t len = colon ? (size_t)(colon - p) : strlen(p);

			if ((long)i >= n || len >= AGD_SD_NAME_MAX) {
				memset(out, 0, sizeof *out);
				return AGD_ERR_ARG;
			}
			memcpy(out->fds[i].name, p, len);
			out->fds[i].name[len] = '\0';
			if (colon == NULL)
				break;
			p = colon + 1;
		}
		if ((long)i + 1 != n) {
			memset(out, 0, sizeof *out);
			return AGD_ERR_ARG;
		}
	}
	out->n = (size_t)n;
	return AGD_OK;
}

/* Works out the ZeroMQ endpoint of a listening socket. */
static int endpoint_of(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char addr[INET6_ADDRSTRLEN];
	int type = 0, listening = 0, n = -1;
	socklen_t ol = sizeof type;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ol) != 0 || type != SOCK_STREAM)
		return -1;
	ol = sizeof listening;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ol) != 0 || !listening)
		return -1;
	memset(&ss, 0, sizeof ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		return -1;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, addr, sizeof addr);
		n = snprintf(buf, len, "tcp://%s:%u", addr, (unsigned)ntohs(a->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, addr, sizeof addr);
		n = snprintf(buf, len, "tcp://[%s]:%u", addr, (unsigned)ntohs(a->sin6_port));
	} else if (ss.ss_family == AF_UNIX) {
		const struct sockaddr_un *a = (const struct sockaddr_un *)&ss;
		size_t plen = sl > offsetof(struct sockaddr_un, sun_path)
				      ? sl - offsetof(struct sockaddr_un, sun_path) : 0;

		if (plen == 0)
			return -1; /* unnamed: nothing to call it */
		if (a->sun_path[0] == '\0') /* abstract: ZeroMQ writes it "@name" */
			n = snprintf(buf, len, "ipc://@%.*s", (int)(plen - 1), a->sun_path + 1);
		else
			n = snprintf(buf, len, "ipc://%.*s", (int)strnlen(a->sun_path, plen), a->sun_path);
	}
	return n > 0 && (size_t)n < len ? 0 : -1;
}

int agd_sd_listen(struct agd_sd *out, int unset_env)
{
	int rc = agd_sd_parse(getenv("LISTEN_PID"), getenv("LISTEN_FDS"), getenv("LISTEN_FDNAMES"),
			      getpid(), out);

	if (unset_env) {
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_FDNAMES");
	}
	if (rc != AGD_OK)
		return rc;
	for (size_t i = 0; i < out->n; i++) {
		int fd = out->fds[i].fd, fl = fcntl(fd, F_GETFD);

		if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) != 0 ||
		    endpoint_of(fd, out->fds[i].endpoint, sizeof out->fds[i].endpoint) != 0) {
			out->n = 0;
			return AGD_ERR_IO;
		}
	}
	return AGD_OK;
}

const struct agd_sd_fd *agd_sd_find(const struct agd_sd *sd, const char *name)
{
	for (size_t i = 0; i < sd->n; i++)
		if (strcmp(sd->fds[i].name, name) == 0)
			return &sd->fds[i];
	return NULL;
}

int agd_sd_bind(void *zsock, const struct agd_sd_fd *f)
{
	int fd = f->fd, none = -1, rc = AGD_OK;

	if (zmq_setsockopt(zsock, ZMQ_USE_FD, &fd, sizeof fd) != 0)
		return AGD_ERR_IO;
	if (zmq_bind(zsock, f->endpoint) != 0)
		rc = AGD_ERR_IO;
	/* Reset, so that the socket's next bind opens its own descriptor;
	 * keep the bind's errno for the caller. */
	{
		int e = zmq_errno();
		zmq_setsockopt(zsock, ZMQ_USE_FD, &none, sizeof none);
		errno = e;
	}
	return rc;
}
