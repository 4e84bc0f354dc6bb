/*
 * agd_call.c: the call layer (see agd_call.h; docs/protocol.md, "Calls").
 *
 * Two lists:
 *   jobs  work handed over by worker threads (under mu): replies the
 *         runtime produced, and calls agents started through proxies;
 *   pend  calls this host started and still waits for (dispatcher only),
 *         keyed by a random 64-bit call id (the CALL's and REPLY's corr).
 * A call ends exactly once: by its REPLY, by a failed delivery (agd_dir's
 * `called`), or by its deadline; whichever comes first removes it from
 * pend, and anything later finds nothing and is dropped.
 */
#include "agd_call.h"

#include "agd_ctl.h"
#include "agd_dir.h"
#include "agd_err.h"
#include "agd_json.h"
#include "agd_log.h"
#include "agd_loop.h"
#include "agd_park.h"
#include "agd_rt.h"
#include "agd_vm.h"
#include "mig_state.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define PEND_MAX 65536             /* calls waiting at this host */
#define TIMEOUT_MS_DEFAULT 10000   /* a control call's default wait */
#define TIMEOUT_MS_MAX 3600000     /* and its longest */
#define AGAIN_MAX 16               /* times a call is sent again after its agent left */

enum pend_kind { P_CTL, P_PARK };

/* A call this host started. */
struct pend {
	uint64_t corr;                         /* call id */
	int kind;                              /* enum pend_kind */
	struct agd_ctl_token *tok;             /* P_CTL: the request to answer */
	char caller[AGD_ID_LEN + 1];           /* P_PARK: the parked agent */
	uint64_t token;                        /* P_PARK: its park */
	char callee[AGD_WIRE_NAME_MAX + 1];    /* the called agent */
	char method[AGD_WIRE_NAME_MAX + 1];    /* the method */
	char host[AGD_WIRE_NAME_MAX + 1];      /* where it was queued ("" not yet) */
	uint64_t deadline;                     /* ms (agd_now_ms) */
	uint8_t *args;                         /* the arguments, kept to send again (owned) */
	size_t len;                            /* their bytes */
	int again;                             /* times sent again (AGD_CALL_AGAIN) */
	struct pend *next;
};

enum job_kind { J_REPLY, J_START };

/* Work from a worker thread. */
struct job {
	int kind;                              /* enum job_kind */
	uint64_t corr;                         /* J_REPLY: the call id */
	char host[AGD_WIRE_NAME_MAX + 1];      /* J_REPLY: the caller's host; J_START: hint */
	char agent[AGD_WIRE_NAME_MAX + 1];     /* J_REPLY: the callee; J_START: the caller */
	char callee[AGD_WIRE_NAME_MAX + 1];    /* J_START */
	char method[AGD_WIRE_NAME_MAX + 1];    /* J_START */
	uint64_t token;                        /* J_START: the caller's park */
	uint64_t timeout_ms;                   /* J_START */
	int code;                              /* J_REPLY */
	char text[AGD_WIRE_TEXT_MAX + 1];      /* J_REPLY */
	int has_data;                          /* data is a value (else none) */
	size_t len;                            /* bytes of data */
	struct job *next;
	uint8_t data[];                        /* results (J_REPLY) or arguments (J_START) */
};

struct agd_call {
	struct agd_rt *rt;                     /* borrowed */
	struct agd_loop *loop;                 /* borrowed */
	struct agd_ctl *ctl;                   /* borrowed */
	struct agd_dir *dir;                   /* borrowed */
	char host[AGD_WIRE_NAME_MAX + 1];      /* this host */
	agd_call_send_fn send;                 /* to a peer */
	void *send_ud;
	size_t max_data;                       /* message_max: largest arguments or results */
	int efd;                               /* eventfd: jobs are waiting */
	pthread_mutex_t mu;                    /* guards jobs */
	struct job *jobs;                      /* newest first */
	struct pend *pend;                     /* dispatcher only */
	size_t npend;
};

/* ------------------------------------------------- runtime registry */

/* Which runtime has which call layer: agd_call_start reaches it from a
 * worker through the agent's rt. One entry per daemon in the process. */
#define REG_MAX 8
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	struct agd_rt *rt;
	struct agd_call *c;
} reg[REG_MAX];

static int reg_set(struct agd_rt *rt, struct agd_call *c)
{
	int rc = AGD_ERR_NOMEM;

	pthread_mutex_lock(&reg_mu);
	for (size_t i = 0; i < REG_MAX; i++)
		if (c != NULL ? reg[i].rt == NULL : reg[i].rt == rt) {
			reg[i].rt = c != NULL ? rt : NULL;
			reg[i].c = c;
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&reg_mu);
	return rc;
}

/* ---------------------------------------------------------- jobs */

static void job_push(struct agd_call *c, struct job *j)
{
	uint64_t one = 1;

	pthread_mutex_lock(&c->mu);
	j->next = c->jobs;
	c->jobs = j;
	pthread_mutex_unlock(&c->mu);
	if (write(c->efd, &one, sizeof one) < 0)
		agd_log(AGD_LOG_WARN, "call.wake_failed", "error=\"%s\"", strerror(errno));
}

static struct job *job_new(int kind, const void *data, size_t len)
{
	struct job *j = calloc(1, sizeof *j + len);

	if (j == NULL)
		return NULL;
	j->kind = kind;
	if (data != NULL) {
		j->has_data = 1;
		j->len = len;
		if (len > 0)
			memcpy(j->data, data, len);
	}
	return j;
}

/* The runtime's reply function (agd_rt_set_reply): a worker, or the
 * runtime's lock held. Copies and queues only. */
static void on_rt_reply(void *ud, const struct agd_call_in *call, int code, const char *text,
			const void *data, size_t len)
{
	struct agd_call *c = ud;
	struct job *j;

	if (code == 0 && len > c->max_data) {
		code = AGD_ERR_TOOBIG;
		text = "the method's results are larger than message_max";
		data = NULL;
		len = 0;
	}
	j = job_new(J_REPLY, code == 0 ? data : NULL, code == 0 ? len : 0);
	if (j == NULL)
		return; /* the caller times out */
	j->corr = call->corr;
	j->code = code;
	snprintf(j->agent, sizeof j->agent, "%s", call->agent);
	snprintf(j->host, sizeof j->host, "%s", call->caller_host);
	snprintf(j->text, sizeof j->text, "%s", text ? text : "");
	job_push(c, j);
}

int agd_call_start(struct agd_rt *rt, const char *caller, uint64_t token, const char *callee,
		   const char *method, const void *args, size_t len, double timeout_s,
		   const char *hint)
{
	struct agd_call *c = NULL;
	struct job *j;

	if (strlen(callee) > AGD_WIRE_NAME_MAX || strlen(method) > AGD_WIRE_NAME_MAX ||
	    callee[0] == '\0' || method[0] == '\0')
		return AGD_ERR_ARG;
	pthread_mutex_lock(&reg_mu);
	for (size_t i = 0; i < REG_MAX; i++)
		if (reg[i].rt == rt && rt != NULL)
			c = reg[i].c;
	if (c == NULL) {
		pthread_mutex_unlock(&reg_mu);
		return AGD_ERR_UNAVAILABLE;
	}
	if (len > c->max_data) {
		pthread_mutex_unlock(&reg_mu);
		return AGD_ERR_TOOBIG;
	}
	j = job_new(J_START, args, len);
	if (j == NULL) {
		pthread_mutex_unlock(&reg_mu);
		return AGD_ERR_NOMEM;
	}
	snprintf(j->agent, sizeof j->agent, "%s", caller);
	snprintf(j->callee, sizeof j->callee, "%s", callee);
	snprintf(j->method, sizeof j->method, "%s", method);
	snprintf(j->host, sizeof j->host, "%s", hint && strlen(hint) <= AGD_WIRE_NAME_MAX ? hint : "");
	j->token = token;
	j->timeout_ms = timeout_s > 0 ? (uint64_t)(timeout_s * 1000.0) : TIMEOUT_MS_DEFAULT;
	/* Under reg_mu: the layer cannot be destroyed meanwhile. */
	job_push(c, j);
	pthread_mutex_unlock(&reg_mu);
	return 0;
}

/* ------------------------------------------------------ waiting calls */

static struct pend *pend_find(struct agd_call *c, uint64_t corr)
{
	for (struct pend *p = c->pend; p; p = p->next)
		if (p->corr == corr)
			return p;
	return NULL;
}

static void pend_unlink(struct agd_call *c, struct pend *p)
{
	for (struct pend **pp = &c->pend; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			c->npend--;
			return;
		}
}

static struct pend *pend_new(struct agd_call *c, int kind, const char *callee, const char *method,
			     uint64_t timeout_ms)
{
	struct pend *p;

	if (c->npend >= PEND_MAX || (p = calloc(1, sizeof *p)) == NULL)
		return NULL;
	do
		randombytes_buf(&p->corr, sizeof p->corr);
	while (p->corr == 0 || pend_find(c, p->corr) != NULL);
	p->kind = kind;
	snprintf(p->callee, sizeof p->callee, "%s", callee);
	snprintf(p->method, sizeof p->method, "%s", method);
	p->deadline = agd_now_ms() + timeout_ms;
	p->next = c->pend;
	c->pend = p;
	c->npend++;
	return p;
}

static void ctl_error(struct agd_call *c, struct agd_ctl_token **tok, int code, const char *text)
{
	struct agd_jw w;
	char *body;

	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	agd_jw_key(&w, "error");
	agd_jw_str(&w, text && text[0] ? text : agd_strerror(code));
	agd_jw_key(&w, "code");
	agd_jw_str(&w, agd_errname(code));
	agd_jw_obj_end(&w);
	body = agd_jw_take(&w, NULL);
	agd_ctl_answer(c->ctl, tok, 0, body ? body : "{\"error\":\"out of memory\",\"code\":\"nomem\"}");
	free(body);
}

static void ctl_result(struct agd_call *c, struct pend *p, const void *data, size_t len)
{
	struct agd_jw w;
	char *body;
	int rc;

	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	agd_jw_key(&w, "id");
	agd_jw_str(&w, p->callee);
	agd_jw_key(&w, "method");
	agd_jw_str(&w, p->method);
	agd_jw_key(&w, "host");
	agd_jw_str(&w, p->host);
	rc = agd_call_results_json(data, len, &w);
	agd_jw_obj_end(&w);
	if (rc != 0) {
		agd_jw_free(&w);
		ctl_error(c, &p->tok, rc, "the results cannot be shown as JSON");
		return;
	}
	body = agd_jw_take(&w, NULL);
	agd_ctl_answer(c->ctl, &p->tok, 1, body ? body : "{\"error\":\"out of memory\",\"code\":\"nomem\"}");
	free(body);
}

/* Ends a waiting call: answers its control request or unparks its agent.
 * Takes p off the list and frees it. */
static void pend_finish(struct agd_call *c, struct pend *p, int code, const char *text,
			const void *data, size_t len)
{
	pend_unlink(c, p);
	if (p->kind == P_CTL) {
		if (code == 0)
			ctl_result(c, p, data, len);
		else
			ctl_error(c, &p->tok, code, text);
	} else {
		int rc = agd_rt_unpark(c->rt, p->caller, p->token, code, text, code == 0 ? data : NULL,
				       code == 0 ? len : 0);

		if (rc != 0)
			agd_log(AGD_LOG_DEBUG, "call.caller_gone", "agent=%s", p->caller);
	}
	agd_log(AGD_LOG_DEBUG, "call.done", "callee=%s method=%s code=%s", p->callee, p->method,
		agd_errname(code));
	free(p->args);
	free(p);
}

/* Sends the CALL. Returns 0, or finishes p with the error and returns it. */
static int pend_send(struct agd_call *c, struct pend *p, const void *args, size_t len,
		     const char *hint)
{
	uint64_t msgid = 0, corr = p->corr, now = agd_now_ms();
	uint64_t left = p->deadline > now ? p->deadline - now : 1;
	int rc;

	if (p->args == NULL && len > 0) {
		/* Kept in case the agent leaves before it runs the call. */
		p->args = malloc(len);
		if (p->args != NULL) {
			memcpy(p->args, args, len);
			p->len = len;
		}
	}

	rc = agd_dir_call(c->dir, p->callee, p->method, corr, args, len, hint && hint[0] ? hint : NULL,
			  now, left, &msgid);
	if (rc != 0) {
		/* p may be gone already (answered inside agd_dir_call): look
		 * it up by id. */
		struct pend *q = pend_find(c, corr);

		if (q != NULL)
			pend_finish(c, q, AGD_ERR_NOTFOUND,
				    "no agent by that id here, and no host or directory to ask", NULL, 0);
		return AGD_ERR_NOTFOUND;
	}
	return 0;
}

/* ------------------------------------------------------------ replies */

static void send_reply(struct agd_call *c, const struct job *j)
{
	struct agd_wire_msg m;

	memset(&m, 0, sizeof m);
	m.type = AGD_MSG_REPLY;
	m.corr = j->corr;
	snprintf(m.agent, sizeof m.agent, "%s", j->agent);
	m.code = j->code;
	snprintf(m.text, sizeof m.text, "%s", j->text);
	if (j->has_data) {
		m.blob[0].data = j->data;
		m.blob[0].len = j->len;
	}
	if (j->host[0] == '\0')
		return;
	if (strcmp(j->host, c->host) == 0)
		agd_call_input(c, c->host, &m);
	else if (c->send(c->send_ud, j->host, &m) != 0)
		agd_log(AGD_LOG_WARN, "call.reply_lost", "host=%s", j->host);
}

int agd_call_input(struct agd_call *c, const char *from, const struct agd_wire_msg *m)
{
	struct pend *p;

	if (c == NULL || m->type != AGD_MSG_REPLY)
		return 0;
	p = pend_find(c, m->corr);
	if (p == NULL)
		return 1; /* answered already, or timed out: dropped */
	/* Only the host that took the call answers it. */
	if (p->host[0] != '\0' && strcmp(p->host, from) != 0) {
		agd_log(AGD_LOG_WARN, "call.reply_refused", "from=%s expected=%s", from, p->host);
		return 1;
	}
	if (m->code == AGD_CALL_AGAIN) {
		/* The agent left `from` before it ran the call: send it again,
		 * asking `from` first (it points to where the agent went). */
		char hint[AGD_WIRE_NAME_MAX + 1];

		if (++p->again > AGAIN_MAX || (p->len > 0 && p->args == NULL)) {
			pend_finish(c, p, AGD_ERR_TIMEOUT, "the agent kept moving away from the call",
				    NULL, 0);
			return 1;
		}
		snprintf(hint, sizeof hint, "%s", from);
		agd_log(AGD_LOG_INFO, "call.again", "callee=%s method=%s left=%s", p->callee, p->method,
			from);
		p->host[0] = '\0';
		pend_send(c, p, p->args, p->len, hint);
		return 1;
	}
	if (p->host[0] == '\0')
		snprintf(p->host, sizeof p->host, "%s", from);
	if (m->code == 0 && m->blob[0].data == NULL && m->blob[0].len == 0)
		pend_finish(c, p, AGD_ERR_REMOTE, "the answer carried no results", NULL, 0);
	else
		pend_finish(c, p, m->code > 0 ? AGD_ERR_REMOTE : m->code, m->text, m->blob[0].data,
			    m->blob[0].len);
	return 1;
}

/* ------------------------------------------------------------ callee */

int agd_call_deliver(struct agd_call *c, const char *agent, const char *caller_host, uint64_t corr,
		     const char *method, const uint8_t *data, size_t len)
{
	struct agd_call_in *in;
	int rc;

	if (len > c->max_data)
		return AGD_DIR_REFUSED;
	in = calloc(1, sizeof *in + len);
	if (in == NULL)
		return AGD_DIR_REFUSED;
	in->corr = corr;
	snprintf(in->agent, sizeof in->agent, "%s", agent);
	snprintf(in->caller_host, sizeof in->caller_host, "%s", caller_host);
	snprintf(in->method, sizeof in->method, "%s", method);
	in->len = len;
	if (len > 0)
		memcpy(in->args, data, len);
	rc = agd_rt_call_in(c->rt, agent, &in);
	free(in); /* NULL when taken */
	if (rc == 0)
		return 0;
	if (rc == 1)
		return AGD_DIR_INFLIGHT;
	return rc == AGD_ERR_STATE ? AGD_DIR_ENDED : rc == AGD_ERR_NOTFOUND ? AGD_DIR_NOTFOUND
									 : AGD_DIR_REFUSED;
}

/* ------------------------------------------------------------ caller */

void agd_call_sent(struct agd_call *c, uint64_t corr, const char *agent, int code, const char *host)
{
	struct pend *p = pend_find(c, corr);

	(void)agent;
	if (p == NULL)
		return;
	if (code == AGD_DIR_HERE) {
		if (p->host[0] == '\0')
			snprintf(p->host, sizeof p->host, "%s", host ? host : "");
		return;
	}
	pend_finish(c, p,
		    code == AGD_DIR_TIMEOUT ? AGD_ERR_TIMEOUT
		    : code == AGD_DIR_ENDED ? AGD_ERR_STATE
		    : code == AGD_DIR_REFUSED ? AGD_ERR_FULL : AGD_ERR_NOTFOUND,
		    code == AGD_DIR_TIMEOUT ? "the call reached no host holding the agent in time"
					    : agd_dir_strerror(code),
		    NULL, 0);
}

void agd_call_tick(struct agd_call *c, uint64_t now_ms)
{
	for (struct pend *p = c->pend, *n; p; p = n) {
		n = p->next;
		if (p->deadline <= now_ms)
			pend_finish(c, p, AGD_ERR_TIMEOUT,
				    p->host[0] ? "no answer in time"
					       : "the call reached no host holding the agent in time",
				    NULL, 0);
	}
}

size_t agd_call_pending(const struct agd_call *c)
{
	return c ? c->npend : 0;
}

static void start_job(struct agd_call *c, const struct job *j)
{
	struct pend *p = pend_new(c, P_PARK, j->callee, j->method, j->timeout_ms);

	if (p == NULL) {
		agd_rt_unpark(c->rt, j->agent, j->token, AGD_ERR_FULL, "too many calls under way", NULL,
			      0);
		return;
	}
	snprintf(p->caller, sizeof p->caller, "%.*s", AGD_ID_LEN, j->agent);
	p->token = j->token;
	pend_send(c, p, j->has_data ? j->data : NULL, j->len, j->host);
}

static void on_efd(struct agd_loop *loop, void *sock, int fd, void *ud)
{
	struct agd_call *c = ud;
	struct job *list, *rev = NULL;
	uint64_t n;

	(void)loop;
	(void)sock;
	if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&c->mu);
	list = c->jobs;
	c->jobs = NULL;
	pthread_mutex_unlock(&c->mu);
	/* Oldest first. */
	while (list) {
		struct job *j = list;

		list = j->next;
		j->next = rev;
		rev = j;
	}
	while (rev) {
		struct job *j = rev;

		rev = j->next;
		if (j->kind == J_REPLY)
			send_reply(c, j);
		else
			start_job(c, j);
		free(j);
	}
}

/* ------------------------------------------------------ control `call` */

static int cmd_call(void *ud, struct agd_ctl_req *req, struct agd_jw *w)
{
	struct agd_call *c = ud;
	const char *id = NULL, *method = NULL, *hint = NULL;
	const struct agd_json_val *args;
	struct mig_buf buf = { 0 };
	long long timeout_ms = TIMEOUT_MS_DEFAULT;
	struct pend *p;
	int rc;

	(void)w;
	if ((agd_json_get_str(req->doc, req->args, "agent", &id) != 0 &&
	     agd_json_get_str(req->doc, req->args, "id", &id) != 0) || id[0] == '\0' ||
	    strlen(id) > AGD_WIRE_NAME_MAX) {
		snprintf(req->err, sizeof req->err, "missing \"agent\" (an agent id)");
		return AGD_ERR_ARG;
	}
	if (agd_json_get_str(req->doc, req->args, "method", &method) != 0 || method[0] == '\0' ||
	    strlen(method) > AGD_WIRE_NAME_MAX) {
		snprintf(req->err, sizeof req->err, "missing \"method\" (a name of 1 to %d bytes)",
			 AGD_WIRE_NAME_MAX);
		return AGD_ERR_ARG;
	}
	if (agd_json_get(req->doc, req->args, "timeout_ms") != NULL &&
	    (agd_json_get_int(req->doc, req->args, "timeout_ms", &timeout_ms) != 0 ||
	     timeout_ms < 0 || timeout_ms > TIMEOUT_MS_MAX)) {
		snprintf(req->err, sizeof req->err, "\"timeout_ms\" must be 0..%d", TIMEOUT_MS_MAX);
		return AGD_ERR_ARG;
	}
	if (timeout_ms == 0)
		timeout_ms = TIMEOUT_MS_DEFAULT;
	if (agd_json_get_str(req->doc, req->args, "hint", &hint) != 0)
		hint = NULL;
	args = agd_json_get(req->doc, req->args, "args");
	if (args != NULL) {
		rc = agd_call_args_from_json(req->doc, args, &buf, req->err, sizeof req->err);
		if (rc != 0)
			return rc;
	} else {
		/* No arguments: an empty list. */
		struct agd_json *doc = NULL;

		if (agd_json_parse("[]", 2, &doc, NULL) != 0)
			return AGD_ERR_NOMEM;
		rc = agd_call_args_from_json(doc, agd_json_root(doc), &buf, req->err, sizeof req->err);
		agd_json_destroy(&doc);
		if (rc != 0)
			return rc;
	}
	if (buf.len > c->max_data) {
		agd_buf_free(&buf);
		snprintf(req->err, sizeof req->err, "the arguments are larger than message_max");
		return AGD_ERR_TOOBIG;
	}
	p = pend_new(c, P_CTL, id, method, (uint64_t)timeout_ms);
	if (p == NULL || (p->tok = agd_ctl_defer(req)) == NULL) {
		if (p != NULL) {
			pend_unlink(c, p);
			free(p);
		}
		agd_buf_free(&buf);
		return AGD_ERR_NOMEM;
	}
	pend_send(c, p, buf.data, buf.len, hint);
	agd_buf_free(&buf);
	return AGD_CTL_DEFERRED;
}

/* ------------------------------------------------------- new/destroy */

int agd_call_new(struct agd_rt *rt, struct agd_loop *loop, struct agd_ctl *ctl, const char *host,
		 struct agd_dir *dir, agd_call_send_fn send, void *send_ud, struct agd_call **out)
{
	struct agd_call *c;
	int rc;

	*out = NULL;
	if (rt == NULL || loop == NULL || ctl == NULL || dir == NULL || send == NULL || host == NULL ||
	    strlen(host) > AGD_WIRE_NAME_MAX)
		return AGD_ERR_ARG;
	c = calloc(1, sizeof *c);
	if (c == NULL)
		return AGD_ERR_NOMEM;
	c->rt = rt;
	c->loop = loop;
	c->ctl = ctl;
	c->dir = dir;
	c->send = send;
	c->send_ud = send_ud;
	snprintf(c->host, sizeof c->host, "%s", host);
	c->max_data = agd_rt_config(rt)->message_max;
	if (c->max_data > AGD_WIRE_BLOB_MAX)
		c->max_data = AGD_WIRE_BLOB_MAX;
	pthread_mutex_init(&c->mu, NULL);
	c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->efd < 0) {
		pthread_mutex_destroy(&c->mu);
		free(c);
		return AGD_ERR_IO;
	}
	rc = agd_loop_add_fd(loop, c->efd, on_efd, c);
	if (rc != 0 || reg_set(rt, c) != 0) {
		if (rc == 0)
			agd_loop_remove(loop, NULL, c->efd);
		close(c->efd);
		pthread_mutex_destroy(&c->mu);
		free(c);
		return AGD_ERR_NOMEM;
	}
	agd_rt_set_reply(rt, on_rt_reply, c);
	agd_ctl_register(ctl, "call", cmd_call, c);
	*out = c;
	return 0;
}

void agd_call_destroy(struct agd_call **c_p)
{
	struct agd_call *c;

	if (c_p == NULL || *c_p == NULL)
		return;
	c = *c_p;
	*c_p = NULL;
	/* No worker reaches us after these: the runtime's reply function
	 * is swapped under its lock, agd_call_start finds nothing. */
	agd_rt_set_reply(c->rt, NULL, NULL);
	reg_set(c->rt, NULL);
	agd_loop_remove(c->loop, NULL, c->efd);
	close(c->efd);
	while (c->pend) {
		struct pend *p = c->pend;

		c->pend = p->next;
		if (p->kind == P_CTL)
			ctl_error(c, &p->tok, AGD_ERR_STOPPING, "daemon stopping");
		free(p->args);
		free(p);
	}
	while (c->jobs) {
		struct job *j = c->jobs;

		c->jobs = j->next;
		free(j);
	}
	pthread_mutex_destroy(&c->mu);
	free(c);
}
