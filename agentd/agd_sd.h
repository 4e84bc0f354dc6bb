/*
 * agd_sd.h: socket activation (the seeds' superserver, as systemd does it).
 *
 * When systemd starts agentd for the first connection to agentd.socket, the
 * listening sockets are already open as file descriptors 3, 4, ... and the
 * environment says so:
 *   LISTEN_PID      the pid they are meant for (else they are not ours)
 *   LISTEN_FDS      how many, starting at fd 3 (SD_LISTEN_FDS_START)
 *   LISTEN_FDNAMES  their names, colon-separated (FileDescriptorName= in the
 *                   unit: "control", "peer"); optional
 * agd_sd_listen reads that, checks each fd is a listening stream socket,
 * marks it close-on-exec and works out the ZeroMQ endpoint it stands for
 * (tcp://ADDR:PORT or ipc://PATH). agd_sd_bind then hands one fd to a ZeroMQ
 * socket with ZMQ_USE_FD, so that zmq_bind adopts it instead of opening a
 * new one: connections that arrived before agentd started are waiting in
 * its backlog and are served.
 *
 * Never: close a descriptor it was not given, or act on descriptors meant
 * for another process (LISTEN_PID).
 * Thread-safety: call from main() before threads start (it reads and may
 * unset the environment).
 */
#ifndef AGD_SD_H
#define AGD_SD_H

#include <stddef.h>
#include <sys/types.h>

#define AGD_SD_FDS_START 3    /* systemd's first passed descriptor */
#define AGD_SD_FDS_MAX 16     /* more than agentd ever listens on */
#define AGD_SD_NAME_MAX 64
#define AGD_SD_ENDPOINT_MAX 256

/* One passed descriptor. */
struct agd_sd_fd {
	int fd;                             /* the descriptor (3, 4, ...) */
	char name[AGD_SD_NAME_MAX];         /* from LISTEN_FDNAMES, or "" */
	char endpoint[AGD_SD_ENDPOINT_MAX]; /* what it listens on, as a ZeroMQ endpoint */
};

struct agd_sd {
	size_t n;                           /* descriptors passed (0: not activated) */
	struct agd_sd_fd fds[AGD_SD_FDS_MAX];
};

/*
 * Pure part: what the three variables (any may be NULL) say for a process
 * `self`. Fills out->n and each fd and name (endpoints are left empty).
 * Returns 0 (out->n == 0 when the variables are absent or meant for another
 * pid), or AGD_ERR_ARG when they are malformed (a count that is not a
 * number, more than AGD_SD_FDS_MAX, names that do not match the count or
 * are too long).
 */
int agd_sd_parse(const char *listen_pid, const char *listen_fds, const char *listen_fdnames,
		 pid_t self, struct agd_sd *out);

/*
 * Reads the environment for this process, checks every fd (a listening
 * SOCK_STREAM socket, AF_INET, AF_INET6 or AF_UNIX), sets FD_CLOEXEC and
 * fills the endpoints. With unset_env the three variables are removed, so
 * that agents' worker processes do not see them. Returns 0 (out->n == 0 when
 * not socket-activated), AGD_ERR_ARG for malformed variables or
 * AGD_ERR_IO when a passed fd is not a usable listening socket.
 */
int agd_sd_listen(struct agd_sd *out, int unset_env);

/* The passed descriptor called `name`, or NULL. */
const struct agd_sd_fd *agd_sd_find(const struct agd_sd *sd, const char *name);

/*
 * Binds ZeroMQ socket `zsock` (a ROUTER, typically) to the passed
 * descriptor: sets ZMQ_USE_FD, calls zmq_bind with its endpoint, and resets
 * ZMQ_USE_FD so that later binds of the same socket open their own. Returns
 * 0 or AGD_ERR_IO (zmq_errno() says why). The ZeroMQ socket owns the fd
 * afterwards and closes it.
 */
int agd_sd_bind(void *zsock, const struct agd_sd_fd *f);

#endif
