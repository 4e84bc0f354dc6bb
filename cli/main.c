/*
 * agentctl: the command-line client. A thin main(): it finds the command in
 * the table and runs it; only this file exits the process.
 */
#include "agd_ctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

enum { EXIT_USAGE = 2, EXIT_UNREACHABLE = 3, EXIT_REFUSED = 4 };

static void usage(FILE *f)
{
	fprintf(f, "usage: agentctl [--host ENDPOINT] [--json] [--timeout MS] status\n");
}

/* Sends one request and waits up to timeout_ms for the reply body. */
static int request(const char *endpoint, const char *cmd, int timeout_ms, char *status,
		   size_t status_len, char *body, size_t body_len)
{
	void *ctx = zmq_ctx_new();
	void *sock = zmq_socket(ctx, ZMQ_REQ);
	int linger = 0, rc = -EXIT_UNREACHABLE;
	int n;

	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
	zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
	zmq_setsockopt(sock, ZMQ_SNDTIMEO, &timeout_ms, sizeof timeout_ms);
	if (zmq_connect(sock, endpoint) != 0)
		goto out;
	if (zmq_send(sock, AGD_CTL_VERSION, strlen(AGD_CTL_VERSION), ZMQ_SNDMORE) < 0 ||
	    zmq_send(sock, cmd, strlen(cmd), ZMQ_SNDMORE) < 0 || zmq_send(sock, "{}", 2, 0) < 0)
		goto out;
	char version[32];
	n = zmq_recv(sock, version, sizeof version - 1, 0);
	if (n < 0)
		goto out;
	n = zmq_recv(sock, status, status_len - 1, 0);
	if (n < 0)
		goto out;
	status[n < (int)status_len ? n : (int)status_len - 1] = '\0';
	n = zmq_recv(sock, body, body_len - 1, 0);
	if (n < 0)
		goto out;
	body[n < (int)body_len ? n : (int)body_len - 1] = '\0';
	rc = 0;
out:
	zmq_close(sock);
	zmq_ctx_term(ctx);
	return rc;
}

int main(int argc, char **argv)
{
	const char *host = getenv("AGENTCTL_HOST");
	int json = 0, timeout_ms = 3000;
	const char *cmd = NULL;
	char status[32], body[4096];

	if (host == NULL)
		host = "tcp://127.0.0.1:7400";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
			host = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			timeout_ms = atoi(argv[++i]);
		else if (cmd == NULL && argv[i][0] != '-')
			cmd = argv[i];
		else {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (cmd == NULL || strcmp(cmd, "status") != 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (request(host, cmd, timeout_ms, status, sizeof status, body, sizeof body) != 0) {
		fprintf(stderr, "agentctl: host %s did not answer within %d ms\n", host, timeout_ms);
		return EXIT_UNREACHABLE;
	}
	if (strcmp(status, AGD_CTL_OK) != 0) {
		fprintf(stderr, "agentctl: %s refused: %s\n", host, body);
		return EXIT_REFUSED;
	}
	if (json)
		printf("%s\n", body);
	else
		printf("%s: %s\n", host, body);
	return 0;
}
