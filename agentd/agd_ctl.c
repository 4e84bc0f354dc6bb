/*
 * agd_ctl.c: the control channel's ZeroMQ side (see agd_ctl.h,
 * docs/control-protocol.md).
 *
 * Every frame is read whole by ZeroMQ (ZMQ_MAXMSGSIZE caps it, so a giant
 * frame drops the connection instead of our memory); at most
 * AGD_CTL_FRAMES_MAX frames are kept and the rest drained. Nothing a client
 * sends can stop the loop: every malformed request gets an error reply.
 */
#include "agd_ctl.h"

#include "agd_err.h"
#include "agd_log.h"
#include "agd_loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define CTL_SOCKETS_MAX 4
#define CTL_CMDS_MAX 64

struct cmd {
	char name[AGD_CTL_CMD_MAX + 1]; /* command word */
	agd_ctl_fn fn;                  /* handler */
	void *ud;                       /* its argument */
};

/* An answer agd_ctl_answer kept while held. */
struct held {
	struct held *next;
	struct agd_ctl_token *tok; /* owned */
	int ok;
	size_t len;
	char body[];               /* len bytes */
};

struct agd_ctl {
	int holding;                    /* agd_ctl_hold: answers are kept */
	struct held *held, **held_tail; /* kept answers, oldest first */
	void *zctx;                     /* borrowed */
	struct agd_loop *loop;          /* borrowed */
	void *socks[CTL_SOCKETS_MAX];   /* ROUTER sockets, owned */
	int nsocks;
	struct cmd cmds[CTL_CMDS_MAX];  /* registered commands */
	int ncmds;
};

/* A reply envelope: the socket, the peer's routing id, and whether the
 * request had the REQ delimiter. */
struct agd_ctl_token {
	void *sock;       /* the ROUTER it came in on */
	size_t id_len;    /* routing id bytes */
	int delim;        /* mirror the empty delimiter */
	uint8_t id[256];  /* routing id (ZeroMQ caps it at 255) */
};

static void unhold(struct agd_ctl *ctl, int send);

int agd_ctl_new(void *zctx, struct agd_loop *loop, struct agd_ctl **out)
{
	struct agd_ctl *c = calloc(1, sizeof *c);

	*out = NULL;
	if (c == NULL)
		return AGD_ERR_NOMEM;
	c->zctx = zctx;
	c->loop = loop;
	*out = c;
	return 0;
}

void agd_ctl_destroy(struct agd_ctl **ctl_p)
{
	struct agd_ctl *c;

	if (ctl_p == NULL || *ctl_p == NULL)
		return;
	c = *ctl_p;
	unhold(c, 0);
	for (int i = 0; i < c->nsocks; i++) {
		agd_loop_remove(c->loop, c->socks[i], -1);
		zmq_close(c->socks[i]);
	}
	free(c);
	*ctl_p = NULL;
}

int agd_ctl_register(struct agd_ctl *c, const char *name, agd_ctl_fn fn, void *ud)
{
	if (name == NULL || strlen(name) > AGD_CTL_CMD_MAX || fn == NULL)
		return AGD_ERR_ARG;
	for (int i = 0; i < c->ncmds; i++) {
		if (strcmp(c->cmds[i].name, name) == 0) {
			c->cmds[i].fn = fn;
			c->cmds[i].ud = ud;
			return 0;
		}
	}
	if (c->ncmds == CTL_CMDS_MAX)
		return AGD_ERR_NOMEM;
	snprintf(c->cmds[c->ncmds].name, sizeof c->cmds[0].name, "%s", name);
	c->cmds[c->ncmds].fn = fn;
	c->cmds[c->ncmds].ud = ud;
	c->ncmds++;
	return 0;
}

static void send_reply(struct agd_ctl_token *t, int ok, const char *body, size_t len)
{
	const char *status = ok ? AGD_CTL_OK : AGD_CTL_ERROR;

	/* A peer gone meanwhile makes ROUTER drop the message: fine. */
	if (zmq_send(t->sock, t->id, t->id_len, ZMQ_SNDMORE) < 0)
		return;
	if (t->delim && zmq_send(t->sock, "", 0, ZMQ_SNDMORE) < 0)
		return;
	if (zmq_send(t->sock, AGD_CTL_VERSION, strlen(AGD_CTL_VERSION), ZMQ_SNDMORE) < 0 ||
	    zmq_send(t->sock, status, strlen(status), ZMQ_SNDMORE) < 0)
		return;
	zmq_send(t->sock, body, len, 0);
}

static void send_error(struct agd_ctl_token *t, const char *code, const char *msg)
{
	struct agd_jw w;
	char *s;
	size_t n;

	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	agd_jw_key(&w, "error");
	agd_jw_str(&w, msg);
	agd_jw_key(&w, "code");
	agd_jw_str(&w, code);
	agd_jw_obj_end(&w);
	s = agd_jw_take(&w, &n);
	if (s == NULL)
		send_reply(t, 0, "{\"error\":\"out of memory\",\"code\":\"nomem\"}", 39);
	else
		send_reply(t, 0, s, n);
	free(s);
}

struct agd_ctl_token *agd_ctl_defer(struct agd_ctl_req *req)
{
	struct agd_ctl_token *t = malloc(sizeof *t);

	if (t != NULL)
		memcpy(t, req->pending, sizeof *t);
	return t;
}

static const char nomem_body[] = "{\"error\":\"out of memory\",\"code\":\"nomem\"}";

void agd_ctl_answer(struct agd_ctl *ctl, struct agd_ctl_token **tok_p, int ok, const char *body)
{
	size_t len;
	struct held *h;

	if (tok_p == NULL || *tok_p == NULL)
		return;
	len = strlen(body);
	if (ctl != NULL && ctl->holding) {
		h = malloc(sizeof *h + len);
		if (h != NULL) {
			h->next = NULL;
			h->tok = *tok_p;
			h->ok = ok;
			h->len = len;
			memcpy(h->body, body, len);
			*ctl->held_tail = h;
			ctl->held_tail = &h->next;
			*tok_p = NULL;
			return;
		}
		ok = 0;
		body = nomem_body;
		len = strlen(body);
	}
	send_reply(*tok_p, ok, body, len);
	free(*tok_p);
	*tok_p = NULL;
}

void agd_ctl_hold(struct agd_ctl *ctl)
{
	if (!ctl->holding) {
		ctl->holding = 1;
		ctl->held = NULL;
		ctl->held_tail = &ctl->held;
	}
}

/* Ends holding; sends (or only frees) what was kept. */
static void unhold(struct agd_ctl *ctl, int send)
{
	struct held *h;

	ctl->holding = 0;
	while ((h = ctl->held) != NULL) {
		ctl->held = h->next;
		if (send)
			send_reply(h->tok, h->ok, h->body, h->len);
		free(h->tok);
		free(h);
	}
}

void agd_ctl_release(struct agd_ctl *ctl)
{
	unhold(ctl, 1);
}

void agd_ctl_drop(struct agd_ctl *ctl)
{
	unhold(ctl, 0);
}

static void dispatch(struct agd_ctl *c, struct agd_ctl_token *t, zmq_msg_t *frames, int n)
{
	struct agd_ctl_req req;
	struct agd_json *doc = NULL;
	char cmd[AGD_CTL_CMD_MAX + 1];
	char *body = NULL;
	struct agd_jw w;
	size_t len, off = 0;
	int rc, i = 0;

	memset(&req, 0, sizeof req);
	if (n > 0 && zmq_msg_size(&frames[0]) == 0) {
		t->delim = 1;
		i = 1;
	}
	if (n - i != 3 || zmq_msg_size(&frames[i]) != strlen(AGD_CTL_VERSION) ||
	    memcmp(zmq_msg_data(&frames[i]), AGD_CTL_VERSION, strlen(AGD_CTL_VERSION)) != 0) {
		agd_log(AGD_LOG_WARN, "ctl.refused", "reason=bad-envelope frames=%d", n);
		send_error(t, "protocol", "malformed request or wrong protocol version (want "
					   AGD_CTL_VERSION " [command] [JSON body])");
		return;
	}
	len = zmq_msg_size(&frames[i + 1]);
	if (len == 0 || len > AGD_CTL_CMD_MAX || memchr(zmq_msg_data(&frames[i + 1]), '\0', len)) {
		send_error(t, "protocol", "bad command frame");
		return;
	}
	memcpy(cmd, zmq_msg_data(&frames[i + 1]), len);
	cmd[len] = '\0';
	len = zmq_msg_size(&frames[i + 2]);
	if (len > AGD_CTL_BODY_MAX) {
		send_error(t, "toobig", "request body too large");
		return;
	}
	body = malloc(len + 1);
	if (body == NULL) {
		send_error(t, "nomem", "out of memory");
		return;
	}
	memcpy(body, zmq_msg_data(&frames[i + 2]), len);
	body[len] = '\0';
	rc = agd_json_parse(body, len, &doc, &off);
	if (rc != 0 || agd_json_root(doc)->type != AGD_JSON_OBJ) {
		char msg[128];

		snprintf(msg, sizeof msg, "body is not a JSON object (%s at byte %zu)",
			 rc ? agd_json_strerror(rc) : "not an object", rc ? off : 0);
		agd_log(AGD_LOG_WARN, "ctl.refused", "cmd=%s reason=bad-json", cmd);
		send_error(t, "json", msg);
		goto out;
	}
	for (int k = 0; k < c->ncmds; k++) {
		if (strcmp(c->cmds[k].name, cmd) != 0)
			continue;
		req.cmd = cmd;
		req.body = body;
		req.body_len = len;
		req.doc = doc;
		req.args = agd_json_root(doc);
		req.ctl = c;
		req.pending = t;
		agd_jw_init(&w);
		agd_jw_obj_begin(&w);
		rc = c->cmds[k].fn(c->cmds[k].ud, &req, &w);
		agd_jw_obj_end(&w);
		if (rc == AGD_CTL_DEFERRED) {
			agd_jw_free(&w);
		} else if (rc != 0) {
			agd_jw_free(&w);
			agd_log(AGD_LOG_INFO, "ctl.error", "cmd=%s code=%s error=\"%.200s\"", cmd,
				agd_errname(rc), req.err[0] ? req.err : agd_strerror(rc));
			send_error(t, agd_errname(rc), req.err[0] ? req.err : agd_strerror(rc));
		} else {
			size_t rlen;
			char *r = agd_jw_take(&w, &rlen);

			if (r == NULL)
				send_error(t, "nomem", "out of memory");
			else
				send_reply(t, 1, r, rlen);
			free(r);
		}
		goto out;
	}
	agd_log(AGD_LOG_WARN, "ctl.refused", "reason=unknown-command");
	send_error(t, "unknown", "unknown command");
out:
	agd_json_destroy(&doc);
	free(body);
}

static void on_readable(struct agd_loop *loop, void *sock, int fd, void *ud)
{
	struct agd_ctl *c = ud;

	(void)loop;
	(void)fd;
	/* Serve what is queued now, a bounded number, then go back to the
	 * loop so that other sockets and timers get their turn. */
	for (int served = 0; served < 64; served++) {
		zmq_msg_t id, frames[AGD_CTL_FRAMES_MAX];
		struct agd_ctl_token t;
		int n = 0, more;

		zmq_msg_init(&id);
		if (zmq_msg_recv(&id, sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&id);
			return;
		}
		memset(&t, 0, sizeof t);
		t.sock = sock;
		t.id_len = zmq_msg_size(&id) < sizeof t.id ? zmq_msg_size(&id) : sizeof t.id;
		memcpy(t.id, zmq_msg_data(&id), t.id_len);
		more = zmq_msg_more(&id);
		zmq_msg_close(&id);
		while (more) {
			zmq_msg_t part;

			zmq_msg_init(&part);
			if (zmq_msg_recv(&part, sock, 0) < 0) {
				zmq_msg_close(&part);
				break;
			}
			more = zmq_msg_more(&part);
			if (n < AGD_CTL_FRAMES_MAX)
				frames[n++] = part;
			else {
				zmq_msg_close(&part);
				t.delim = -1; /* too many: refused below */
			}
		}
		if (t.delim == -1) {
			t.delim = n > 0 && zmq_msg_size(&frames[0]) == 0;
			send_error(&t, "protocol", "too many frames");
		} else
			dispatch(c, &t, frames, n);
		for (int k = 0; k < n; k++)
			zmq_msg_close(&frames[k]);
	}
}

/* Opens a ROUTER on `endpoint`; with fd >= 0 it adopts that listening
 * socket instead of opening one (ZMQ_USE_FD). */
static int bind_socket(struct agd_ctl *c, const char *endpoint, int fd, char *err, size_t err_len)
{
	void *s;
	int linger = 0, hwm = 1000;
	int64_t maxsize = (int64_t)AGD_CTL_BODY_MAX + 4096;

	if (c->nsocks == CTL_SOCKETS_MAX) {
		snprintf(err, err_len, "too many control endpoints");
		return AGD_ERR_ARG;
	}
	s = zmq_socket(c->zctx, ZMQ_ROUTER);
	if (s == NULL) {
		snprintf(err, err_len, "%s", zmq_strerror(zmq_errno()));
		return AGD_ERR_IO;
	}
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
	zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxsize, sizeof maxsize);
	zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
	zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
	if (fd >= 0 && zmq_setsockopt(s, ZMQ_USE_FD, &fd, sizeof fd) != 0) {
		snprintf(err, err_len, "%s: %s", endpoint, zmq_strerror(zmq_errno()));
		zmq_close(s);
		return AGD_ERR_IO;
	}
	if (zmq_bind(s, endpoint) != 0) {
		snprintf(err, err_len, "%s: %s", endpoint, zmq_strerror(zmq_errno()));
		zmq_close(s);
		return AGD_ERR_IO;
	}
	if (agd_loop_add_socket(c->loop, s, on_readable, c) != 0) {
		zmq_close(s);
		snprintf(err, err_len, "loop full");
		return AGD_ERR_NOMEM;
	}
	c->socks[c->nsocks++] = s;
	return 0;
}

int agd_ctl_bind(struct agd_ctl *c, const char *endpoint, char *err, size_t err_len)
{
	return bind_socket(c, endpoint, -1, err, err_len);
}

int agd_ctl_bind_fd(struct agd_ctl *c, int fd, const char *endpoint, char *err, size_t err_len)
{
	return bind_socket(c, endpoint, fd, err, err_len);
}
