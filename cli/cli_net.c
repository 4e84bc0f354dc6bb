/*
 * cli_net.c: request/reply over the control channel (see cli_net.h).
 * Each request uses its own context and REQ socket, so requests to several
 * hosts may run on several threads at once.
 */
#include "cli_net.h"

#include "agd_ctl.h"

#include <stdlib.h>
#include <string.h>
#include <zmq.h>

int cli_host_endpoint(const struct cli_ctx *ctx, char *endpoint, size_t len)
{
	const char *h = ctx->host ? ctx->host : getenv("AGENTCTL_HOST");

	if (h == NULL)
		h = "tcp://127.0.0.1:7400";
	if (strstr(h, "://") == NULL)
		return CLI_EXIT_NOTFOUND;
	if (strlen(h) >= len)
		return CLI_EXIT_USAGE;
	strcpy(endpoint, h);
	return 0;
}

/* Receives one frame into a fresh malloc'd, NUL-terminated buffer. */
static char *recv_frame(void *sock, int *more)
{
	zmq_msg_t m;
	char *s = NULL;

	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, sock, 0) >= 0) {
		size_t n = zmq_msg_size(&m);
		s = malloc(n + 1);
		if (s != NULL) {
			memcpy(s, zmq_msg_data(&m), n);
			s[n] = '\0';
		}
		*more = zmq_msg_more(&m);
	}
	zmq_msg_close(&m);
	return s;
}

int cli_request(const struct cli_ctx *ctx, const char *endpoint, const char *cmd,
		const char *body, int *ok, char **reply)
{
	void *zctx = zmq_ctx_new();
	void *sock = zctx ? zmq_socket(zctx, ZMQ_REQ) : NULL;
	char *version = NULL, *status = NULL, *payload = NULL;
	int linger = 0, more = 0, rc = CLI_EXIT_UNREACHABLE;

	*reply = NULL;
	*ok = 0;
	if (sock == NULL)
		goto out;
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
	zmq_setsockopt(sock, ZMQ_RCVTIMEO, &ctx->timeout_ms, sizeof ctx->timeout_ms);
	zmq_setsockopt(sock, ZMQ_SNDTIMEO, &ctx->timeout_ms, sizeof ctx->timeout_ms);
	if (zmq_connect(sock, endpoint) != 0)
		goto out;
	if (zmq_send(sock, AGD_CTL_VERSION, strlen(AGD_CTL_VERSION), ZMQ_SNDMORE) < 0 ||
	    zmq_send(sock, cmd, strlen(cmd), ZMQ_SNDMORE) < 0 ||
	    zmq_send(sock, body, strlen(body), 0) < 0)
		goto out;
	version = recv_frame(sock, &more);
	if (version == NULL || !more || strcmp(version, AGD_CTL_VERSION) != 0)
		goto out;
	status = recv_frame(sock, &more);
	if (status == NULL || !more)
		goto out;
	payload = recv_frame(sock, &more);
	if (payload == NULL)
		goto out;
	*ok = strcmp(status, AGD_CTL_OK) == 0;
	*reply = payload;
	payload = NULL;
	rc = 0;
out:
	free(version);
	free(status);
	free(payload);
	if (sock != NULL)
		zmq_close(sock);
	if (zctx != NULL)
		zmq_ctx_term(zctx);
	return rc;
}
