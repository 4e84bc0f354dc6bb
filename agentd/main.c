/*
 * agentd: the per-host daemon. A thin main(): options, logging, signals, then
 * the server loop; only this file exits the process.
 */
#include "agd_ctl.h"
#include "agd_log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: agentd [--name NAME] [--control ENDPOINT] [--log FILE] [--log-level LEVEL]\n");
}

struct options {
	const char *name;
	const char *control;
	const char *log_path;
	enum agd_log_level level;
};

static int parse_args(int argc, char **argv, struct options *o)
{
	o->name = "agentd";
	o->control = "tcp://127.0.0.1:7400";
	o->log_path = NULL;
	o->level = AGD_LOG_INFO;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		if (v == NULL)
			return -1;
		if (strcmp(a, "--name") == 0)
			o->name = v;
		else if (strcmp(a, "--control") == 0)
			o->control = v;
		else if (strcmp(a, "--log") == 0)
			o->log_path = v;
		else if (strcmp(a, "--log-level") == 0) {
			if (agd_log_level_parse(v, &o->level) != 0)
				return -1;
		} else
			return -1;
		i++;
	}
	return 0;
}

static int send_reply(void *sock, zmq_msg_t *identity, const char *status, const char *body)
{
	if (zmq_msg_send(identity, sock, ZMQ_SNDMORE) < 0 ||
	    zmq_send(sock, "", 0, ZMQ_SNDMORE) < 0 ||
	    zmq_send(sock, AGD_CTL_VERSION, strlen(AGD_CTL_VERSION), ZMQ_SNDMORE) < 0 ||
	    zmq_send(sock, status, strlen(status), ZMQ_SNDMORE) < 0 ||
	    zmq_send(sock, body, strlen(body), 0) < 0)
		return -errno;
	return 0;
}

/* Reads one request from the ROUTER socket and answers it. Malformed requests
 * get an error reply; nothing a client sends can stop the loop. */
static void serve_one(void *sock, const struct options *o, time_t started)
{
	zmq_msg_t id, part;
	char frames[4][64];
	size_t nframes = 0;
	int more = 1;
	char body[512];

	zmq_msg_init(&id);
	if (zmq_msg_recv(&id, sock, 0) < 0) {
		zmq_msg_close(&id);
		return;
	}
	more = zmq_msg_more(&id);
	while (more) {
		zmq_msg_init(&part);
		if (zmq_msg_recv(&part, sock, 0) < 0) {
			zmq_msg_close(&part);
			break;
		}
		more = zmq_msg_more(&part);
		if (nframes < 4) {
			size_t n = zmq_msg_size(&part);
			if (n >= sizeof frames[0])
				n = sizeof frames[0] - 1;
			memcpy(frames[nframes], zmq_msg_data(&part), n);
			frames[nframes][n] = '\0';
		}
		nframes++;
		zmq_msg_close(&part);
	}
	/* frames[0] is the REQ envelope's empty delimiter. */
	if (nframes < 3 || frames[0][0] != '\0' || strcmp(frames[1], AGD_CTL_VERSION) != 0) {
		agd_log(AGD_LOG_WARN, "ctl.refused", "reason=bad-envelope frames=%zu", nframes);
		send_reply(sock, &id, AGD_CTL_ERROR, "{\"error\":\"malformed request or wrong protocol version\"}");
	} else if (strcmp(frames[2], "status") == 0) {
		snprintf(body, sizeof body,
			 "{\"host\":\"%s\",\"version\":\"%s\",\"pid\":%ld,\"uptime_s\":%ld,\"agents\":0}",
			 o->name, "0.1.0", (long)getpid(), (long)(time(NULL) - started));
		send_reply(sock, &id, AGD_CTL_OK, body);
	} else {
		agd_log(AGD_LOG_WARN, "ctl.refused", "reason=unknown-command");
		send_reply(sock, &id, AGD_CTL_ERROR, "{\"error\":\"unknown command\"}");
	}
	zmq_msg_close(&id);
}

int main(int argc, char **argv)
{
	struct options o;
	struct sigaction sa;
	void *ctx, *sock;
	time_t started = time(NULL);
	int linger = 0, rc = 0;

	if (parse_args(argc, argv, &o) != 0) {
		usage(stderr);
		return 2;
	}
	if (agd_log_open(o.log_path, o.level) != 0) {
		fprintf(stderr, "agentd: cannot open log %s: %s\n", o.log_path, strerror(errno));
		return 1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	ctx = zmq_ctx_new();
	sock = zmq_socket(ctx, ZMQ_ROUTER);
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
	if (zmq_bind(sock, o.control) != 0) {
		agd_log(AGD_LOG_ERROR, "daemon.bind_failed", "endpoint=%s error=\"%s\"", o.control,
			zmq_strerror(zmq_errno()));
		rc = 1;
		goto out;
	}
	agd_log(AGD_LOG_INFO, "daemon.start", "host=%s control=%s pid=%ld", o.name, o.control,
		(long)getpid());
	while (!stop_requested) {
		zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };

		if (zmq_poll(&item, 1, 200) > 0)
			serve_one(sock, &o, started);
	}
	agd_log(AGD_LOG_INFO, "daemon.stop", "host=%s reason=signal", o.name);
out:
	zmq_close(sock);
	zmq_ctx_term(ctx);
	agd_log_close();
	return rc;
}
