/*
 * agd_res.c: the daemon's resource glue (see agd_res.h).
 *
 * Invariants:
 * - The host registry is touched only with the runtime's resource lock
 *   held, and that lock is never held while a worker waits for a peer: the
 *   GR transport releases it for the wait (agents holding handles run their
 *   slices with it held; agd_res_vm_env makes restored agents do so too), and
 *   agd_res_prepare asks its peers before it takes it. So the dispatcher may
 *   block on it, and no wait-for cycle spans two hosts.
 * - Lock order: resource lock, then `mu`.
 * - A call waiting for RES_REPLY lives on its worker's stack and in
 *   r->calls; the dispatcher sends it (borrowing its arguments) only under
 *   mu, and the worker unlinks it under mu before returning, so nothing
 *   outlives it.
 * - A parked agent's op (struct acall) is owned by r->acalls from
 *   park_start until one of: its RES_REPLY (the dispatcher unparks the
 *   agent), a failed send (unparked at once with AGD_ERR_TIMEOUT), or the
 *   park's end without an answer (park_done, from the continuation).
 *   agd_rt_unpark is never called under mu.
 * - A move is committed at the source only after the transfer committed
 *   (agd_res_left with rc 0); until then the source is unchanged.
 *
 * The resource segment (TRANSFER blob1, docs/protocol.md):
 *   "ARS" version(=1) count(u8 <= AGD_RES_BINDINGS_MAX) item* lines(u8) line*
 *   item = str8 name, binding u8, kind u8, attach u8, action u8, bound u8,
 *          str8 id, str8 home, nman u8 (<= RES_POLICY_MAX_ACTIONS), man[nman],
 *          blob_len u32 (<= RES_OP_MAX_BYTES), blob,
 *          ep_len u16 (< ENDPOINT_MAX), home's peer endpoint (or empty)
 *   line = len u16 (< 512), bytes (no NUL)
 *   str8 = len u8, bytes (no NUL; shorter than the field it fills)
 */
#include "agd_res.h"

#include "agd_ctl.h"
#include "agd_err.h"
#include "agd_json.h"
#include "agd_log.h"
#include "agd_park.h"
#include "agd_loop.h"
#include "agd_store.h"
#include "agd_xfer.h"
#include "res_op.h"
#include "res_policy.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define SEG_VERSION 1
#define LINE_MAX_BYTES 512
#define OP_FACTS 100u /* RES_OP op code: the host's kinds and identifiers */
#define ENDPOINT_MAX 256

/* Op names of res_exec_op and their codes on the wire (RES_OP.op). */
static const char *const op_names[] = {
	NULL, "read", "write", "append", "size", "get", "put", "delete", "keys", "print",
};
#define NOPS (sizeof op_names / sizeof op_names[0])

static uint32_t op_code(const char *name)
{
	for (uint32_t i = 1; i < NOPS; i++)
		if (strcmp(op_names[i], name) == 0)
			return i;
	return 0;
}

/* One binding of an agent here. */
struct rbind {
	struct res_bind b;            /* current binding */
	struct res_action_list man;   /* manifest's list (n == 0: none) */
	uint8_t act;                  /* action decided for the leaving attempt */
};

/* What the glue knows of one agent. */
struct ent {
	char id[AGD_WIRE_NAME_MAX + 1];       /* agent id */
	struct rbind bind[AGD_RES_BINDINGS_MAX];
	size_t nbind;
	struct res_bind rebind[AGD_RES_BINDINGS_MAX]; /* restore context (env->rebinds) */
	size_t nrebind;
	char *hist[AGD_RES_HISTORY_MAX];      /* decision lines, oldest first; owned */
	size_t nhist;
	size_t logged;                        /* lines already in the agent's log */
	int leaving;                          /* an attempt is under way */
	int kind;                             /* its AGD_KIND_* */
	char to[AGD_WIRE_NAME_MAX + 1];       /* its target */
	uint8_t *seg;                         /* prepared segment; owned */
	size_t seg_len;
	struct ent *next;
};

struct stage;

/* A parked agent's op on its way to the home (agd_park.h): sent by the
 * dispatcher, answered through agd_rt_unpark. Owned by r->acalls. */
struct acall {
	uint64_t msgid;
	char agent[AGD_WIRE_NAME_MAX + 1];
	uint64_t token;               /* the agent's park */
	char host[AGD_WIRE_NAME_MAX + 1];
	char id[RES_ID_MAX];
	uint32_t op;
	void *args;                   /* malloc'd copy */
	size_t args_len;
	int sent;
	struct acall *next;
};

/* A worker waiting for a RES_REPLY (lives on the worker's stack). */
struct call {
	uint64_t msgid;
	const char *host, *id;        /* borrowed from the worker */
	uint32_t op;
	const void *args;
	size_t args_len;
	int sent, done, rc;
	void *reply;                  /* malloc'd on done */
	size_t reply_len;
	struct call *next;
};

struct agd_res {
	struct agd_rt *rt;
	struct agd_loop *loop;
	const char *host;             /* this host (the config's) */
	struct res_policy policy;     /* the host's table */
	agd_res_send_fn send;
	void *send_ud;
	int efd;                      /* eventfd: calls to send */
	pthread_mutex_t mu;           /* guards what follows */
	pthread_cond_t cv;            /* a call completed */
	struct call *calls;
	struct acall *acalls;         /* parked agents' ops */
	uint64_t next_msgid;
	int closing;
	struct ent *ents;
	struct stage *stages;         /* imports of arrivals not yet activated */
	struct {
		char host[AGD_WIRE_NAME_MAX + 1];
		struct timespec until;        /* CLOCK_MONOTONIC */
	} down[8];                    /* hosts that timed out lately (guarded by mu) */
	struct agd_store *st;         /* the daemon's store (agd_rt_store), borrowed, or NULL */
	pthread_mutex_t st_mu;        /* serialises st */
};

/* ------------------------------------------------ glue of a runtime */

/* The Lua bindings reach the glue from their runtime. A small table rather
 * than a field of struct agd_rt, so that the runtime needs no change; keyed
 * by runtime so that tests may run several daemons in one process. */
#define GLUES_MAX 16
static pthread_mutex_t glues_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	struct agd_rt *rt;
	struct agd_res *r;
} glues[GLUES_MAX];

static struct agd_res *glue_of(struct agd_rt *rt)
{
	struct agd_res *r = NULL;

	pthread_mutex_lock(&glues_mu);
	for (size_t i = 0; i < GLUES_MAX; i++)
		if (glues[i].rt == rt && rt != NULL)
			r = glues[i].r;
	pthread_mutex_unlock(&glues_mu);
	return r;
}

static int glue_set(struct agd_rt *rt, struct agd_res *r)
{
	int rc = AGD_ERR_FULL;

	pthread_mutex_lock(&glues_mu);
	for (size_t i = 0; i < GLUES_MAX; i++)
		if (glues[i].rt == rt) {
			glues[i].r = r;
			if (r == NULL)
				glues[i].rt = NULL;
			rc = 0;
			break;
		}
	for (size_t i = 0; rc != 0 && r != NULL && i < GLUES_MAX; i++)
		if (glues[i].rt == NULL) {
			glues[i].rt = rt;
			glues[i].r = r;
			rc = 0;
		}
	pthread_mutex_unlock(&glues_mu);
	return r == NULL ? 0 : rc;
}

/* ------------------------------------------------------------ entries */

static struct ent *ent_find(struct agd_res *r, const char *id)
{
	for (struct ent *e = r->ents; e; e = e->next)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

static struct ent *ent_get(struct agd_res *r, const char *id)
{
	struct ent *e = ent_find(r, id);

	if (e != NULL)
		return e;
	e = calloc(1, sizeof *e);
	if (e == NULL)
		return NULL;
	snprintf(e->id, sizeof e->id, "%s", id);
	e->next = r->ents;
	r->ents = e;
	return e;
}

static void ent_free(struct ent *e)
{
	for (size_t i = 0; i < e->nhist; i++)
		free(e->hist[i]);
	free(e->seg);
	free(e);
}

static void ent_drop(struct agd_res *r, struct ent *e)
{
	for (struct ent **pp = &r->ents; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			ent_free(e);
			return;
		}
}

/* Appends a history line (copied), dropping the oldest past the cap. */
static void ent_line(struct ent *e, const char *s)
{
	char *c = strdup(s);

	if (c == NULL)
		return;
	if (e->nhist == AGD_RES_HISTORY_MAX) {
		free(e->hist[0]);
		memmove(e->hist, e->hist + 1, (AGD_RES_HISTORY_MAX - 1) * sizeof e->hist[0]);
		e->nhist--;
		if (e->logged > 0)
			e->logged--;
	}
	e->hist[e->nhist++] = c;
}

/* ------------------------------------------------------- peer calls */

static void wake(struct agd_res *r)
{
	uint64_t one = 1;

	if (write(r->efd, &one, sizeof one) < 0)
		agd_log(AGD_LOG_WARN, "res.wake_failed", "error=\"%s\"", strerror(errno));
}

/* Notes whether host answered (mu held): a host that did not is
 * remembered for AGD_RES_DOWN_MS. */
static void down_note(struct agd_res *r, const char *host, int answered)
{
	size_t n = sizeof r->down / sizeof r->down[0], slot = n;

	for (size_t i = 0; i < n; i++)
		if (strcmp(r->down[i].host, host) == 0)
			slot = i;
	if (answered) {
		if (slot < n)
			r->down[slot].host[0] = '\0';
		return;
	}
	for (size_t i = 0; slot == n && i < n; i++)
		if (r->down[i].host[0] == '\0')
			slot = i;
	if (slot == n)
		slot = 0;
	snprintf(r->down[slot].host, sizeof r->down[slot].host, "%s", host);
	clock_gettime(CLOCK_MONOTONIC, &r->down[slot].until);
	r->down[slot].until.tv_sec += AGD_RES_DOWN_MS / 1000;
}

/* How long a call to host may wait (mu held): a host that did not answer
 * lately gets a short wait, so an agent whose home is down learns it
 * quickly; a host that answers is out of the list at once. */
static unsigned wait_ms(struct agd_res *r, const char *host, unsigned timeout_ms)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	for (size_t i = 0; i < sizeof r->down / sizeof r->down[0]; i++)
		if (strcmp(r->down[i].host, host) == 0 &&
		    (r->down[i].until.tv_sec > now.tv_sec ||
		     (r->down[i].until.tv_sec == now.tv_sec &&
		      r->down[i].until.tv_nsec > now.tv_nsec)) &&
		    timeout_ms > AGD_RES_DOWN_TIMEOUT_MS)
			timeout_ms = AGD_RES_DOWN_TIMEOUT_MS;
	return timeout_ms;
}

/*
 * Worker: sends (id, op, args) to host through the dispatcher and waits up
 * to timeout_ms for the reply bytes (*reply malloc'd). Returns 0,
 * RES_ERR_UNREACHABLE (no answer) or RES_ERR_TRANSPORT.
 */
static int call_wait(struct agd_res *r, const char *host, const char *id, uint32_t op,
		     const void *args, size_t args_len, unsigned timeout_ms, void **reply,
		     size_t *reply_len)
{
	struct call c;
	struct timespec ts;
	int rc;

	*reply = NULL;
	*reply_len = 0;
	memset(&c, 0, sizeof c);
	c.host = host;
	c.id = id;
	c.op = op;
	c.args = args;
	c.args_len = args_len;
	pthread_mutex_lock(&r->mu);
	timeout_ms = wait_ms(r, host, timeout_ms);
	pthread_mutex_unlock(&r->mu);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&r->mu);
	if (r->closing) {
		pthread_mutex_unlock(&r->mu);
		return RES_ERR_UNREACHABLE;
	}
	c.msgid = ++r->next_msgid;
	c.next = r->calls;
	r->calls = &c;
	pthread_mutex_unlock(&r->mu);
	wake(r);
	pthread_mutex_lock(&r->mu);
	while (!c.done && !r->closing)
		if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT)
			break;
	for (struct call **pp = &r->calls; *pp; pp = &(*pp)->next)
		if (*pp == &c) {
			*pp = c.next;
			break;
		}
	down_note(r, host, c.done && c.rc == 0);
	pthread_mutex_unlock(&r->mu);
	if (!c.done) {
		free(c.reply);
		return RES_ERR_UNREACHABLE;
	}
	rc = c.rc;
	if (rc == 0) {
		*reply = c.reply;
		*reply_len = c.reply_len;
	} else
		free(c.reply);
	return rc;
}

/* The res_transport of every agent state here: a handle's op on a resource
 * whose home is another host, where the agent cannot park (a C call
 * boundary). Runs on the agent's worker inside its slice, which holds the
 * resource lock when this host has a registry: released for the wait (see
 * the invariants). The wait is synchronous and bounded
 * (AGD_RES_CALL_TIMEOUT_MS): the agent's worker is busy meanwhile. */
static int tp_call(void *ud, const char *home, const char *id, const char *op, const void *args,
		   size_t args_len, void **reply, size_t *reply_len)
{
	struct agd_res *r = ud;
	uint32_t code = op_code(op);
	int held = agd_rt_registry(r->rt) != NULL;
	int rc;

	*reply = NULL;
	*reply_len = 0;
	if (code == 0)
		return RES_ERR_TRANSPORT;
	if (held)
		agd_rt_res_unlock(r->rt);
	rc = call_wait(r, home, id, code, args, args_len, AGD_RES_CALL_TIMEOUT_MS, reply, reply_len);
	if (held)
		agd_rt_res_lock(r->rt);
	if (rc == RES_ERR_UNREACHABLE)
		agd_log(AGD_LOG_WARN, "res.unreachable", "home=%s resource=%s op=%s", home, id, op);
	return rc;
}

/* res_lua_park.start: queues the op for the dispatcher to send, tagged
 * with the agent's park token; the agent then parks (res_lua). Worker. */
static int park_start(void *ud, const char *agent, const char *home, const char *id,
		      const char *op, const void *args, size_t args_len, uint64_t token,
		      double *timeout_s)
{
	struct agd_res *r = ud;
	uint32_t code = op_code(op);
	struct acall *c;

	if (code == 0 || strlen(agent) >= sizeof c->agent || strlen(home) >= sizeof c->host ||
	    strlen(id) >= sizeof c->id)
		return RES_ERR_TRANSPORT;
	c = calloc(1, sizeof *c);
	if (c == NULL || (args_len > 0 && (c->args = malloc(args_len)) == NULL)) {
		free(c);
		return RES_ERR_NOMEM;
	}
	if (args_len > 0)
		memcpy(c->args, args, args_len);
	c->args_len = args_len;
	snprintf(c->agent, sizeof c->agent, "%s", agent);
	snprintf(c->host, sizeof c->host, "%s", home);
	snprintf(c->id, sizeof c->id, "%s", id);
	c->op = code;
	c->token = token;
	pthread_mutex_lock(&r->mu);
	if (r->closing) {
		pthread_mutex_unlock(&r->mu);
		free(c->args);
		free(c);
		return RES_ERR_UNREACHABLE;
	}
	*timeout_s = wait_ms(r, home, AGD_RES_CALL_TIMEOUT_MS) / 1000.0;
	c->msgid = ++r->next_msgid;
	c->next = r->acalls;
	r->acalls = c;
	pthread_mutex_unlock(&r->mu);
	wake(r);
	return 0;
}

/* Unlinks the acall matching (agent, token) or msgid (mu held). */
static struct acall *acall_take(struct agd_res *r, const char *agent, uint64_t token,
				uint64_t msgid)
{
	for (struct acall **pp = &r->acalls; *pp; pp = &(*pp)->next) {
		struct acall *c = *pp;

		if (agent != NULL ? (c->token == token && strcmp(c->agent, agent) == 0)
				  : c->msgid == msgid) {
			*pp = c->next;
			return c;
		}
	}
	return NULL;
}

static void acall_free(struct acall *c)
{
	if (c != NULL)
		free(c->args);
	free(c);
}

/* res_lua_park.done: the agent's park ended (worker). An op still listed
 * got no answer in time: its home counts as down for a while. */
static void park_done(void *ud, const char *agent, uint64_t token, int code)
{
	struct agd_res *r = ud;
	struct acall *c;

	pthread_mutex_lock(&r->mu);
	c = acall_take(r, agent, token, 0);
	if (c != NULL && code != 0)
		down_note(r, c->host, 0);
	pthread_mutex_unlock(&r->mu);
	if (c != NULL && code != 0)
		agd_log(AGD_LOG_WARN, "res.unreachable", "agent=%s home=%s resource=%s op=%s",
			agent, c->host, c->id, op_names[c->op]);
	acall_free(c);
}

/* Dispatcher: sends the calls that wait to be sent. */
static void on_efd(struct agd_loop *loop, void *sock, int fd, void *ud)
{
	struct agd_res *r = ud;
	struct acall *failed = NULL;
	uint64_t n;
	int any = 0;

	(void)loop;
	(void)sock;
	if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&r->mu);
	for (struct call *c = r->calls; c; c = c->next) {
		struct agd_wire_msg m;

		if (c->sent)
			continue;
		c->sent = 1;
		memset(&m, 0, sizeof m);
		m.type = AGD_MSG_RES_OP;
		m.corr = c->msgid;
		m.msgid = c->msgid;
		m.op = c->op;
		snprintf(m.name, sizeof m.name, "%s", c->id);
		m.blob[0].data = c->args_len ? c->args : NULL;
		m.blob[0].len = c->args_len;
		if (r->send(r->send_ud, c->host, &m) != 0) {
			c->done = 1;
			c->rc = RES_ERR_UNREACHABLE;
			any = 1;
		}
	}
	if (any)
		pthread_cond_broadcast(&r->cv);
	for (struct acall **pp = &r->acalls; *pp;) {
		struct acall *c = *pp;
		struct agd_wire_msg m;

		if (c->sent) {
			pp = &c->next;
			continue;
		}
		c->sent = 1;
		memset(&m, 0, sizeof m);
		m.type = AGD_MSG_RES_OP;
		m.corr = c->msgid;
		m.msgid = c->msgid;
		m.op = c->op;
		snprintf(m.name, sizeof m.name, "%s", c->id);
		m.blob[0].data = c->args_len ? c->args : NULL;
		m.blob[0].len = c->args_len;
		if (r->send(r->send_ud, c->host, &m) == 0) {
			pp = &c->next;
			continue;
		}
		/* Not sent: the agent learns it now rather than at its
		 * timeout. Answered after mu is released (lock order). */
		*pp = c->next;
		c->next = failed;
		failed = c;
	}
	pthread_mutex_unlock(&r->mu);
	while (failed != NULL) {
		struct acall *c = failed;

		failed = c->next;
		agd_rt_unpark(r->rt, c->agent, c->token, AGD_ERR_TIMEOUT, "home unreachable", NULL,
			      0);
		acall_free(c);
	}
}

/* Dispatcher: this host's facts as an ok reply: kinds mask, identifiers of
 * live local resources separated by '\n'. Resource lock held. */
static int facts_reply(struct res_registry *reg, void **out, size_t *out_len)
{
	uint8_t kinds[8];
	struct res_msg m = { RES_MSG_OK, 2, { { kinds, 8 }, { "", 0 } } };
	char *ids = NULL;
	size_t used = 0;
	int rc;

	res_u64_put(kinds, reg ? res_registry_kinds(reg) : 0);
	for (size_t i = 0; reg != NULL && i < res_registry_count(reg); i++) {
		const char *id = res_registry_id_at(reg, i);
		struct res_info info;
		size_t l = strlen(id);
		char *p;

		if (res_registry_info(reg, id, &info) != 0 || info.forward)
			continue;
		p = realloc(ids, used + l + 1);
		if (p == NULL) {
			free(ids);
			return RES_ERR_NOMEM;
		}
		ids = p;
		memcpy(ids + used, id, l);
		ids[used + l] = '\n';
		used += l + 1;
	}
	m.f[1].p = ids ? ids : "";
	m.f[1].len = used;
	rc = res_msg_encode(&m, out, out_len);
	free(ids);
	return rc;
}

static void serve(struct agd_res *r, const char *from, const struct agd_wire_msg *m)
{
	struct agd_wire_msg out;
	struct res_registry *reg;
	void *reply = NULL;
	size_t reply_len = 0;
	int rc;

	agd_rt_res_lock(r->rt);
	reg = agd_rt_registry(r->rt);
	if (m->op == OP_FACTS)
		rc = facts_reply(reg, &reply, &reply_len);
	else if (m->op == 0 || m->op >= NOPS)
		rc = res_reply_error(RES_ERR_ARG, "unknown resource operation", NULL, &reply,
				     &reply_len);
	else if (reg == NULL)
		rc = res_reply_error(RES_ERR_NOTFOUND, "this host has no resources", NULL, &reply,
				     &reply_len);
	else {
		rc = res_exec_op(reg, m->name, op_names[m->op], m->blob[0].data, m->blob[0].len,
				 RES_EXEC_REMOTE, &reply, &reply_len);
		agd_log(AGD_LOG_DEBUG, "res.remote_op", "from=%s resource=%s op=%s result=%s", from,
			m->name, op_names[m->op], res_errname(rc));
		rc = reply != NULL ? 0 : rc;
	}
	agd_rt_res_unlock(r->rt);
	memset(&out, 0, sizeof out);
	out.type = AGD_MSG_RES_REPLY;
	out.corr = m->corr;
	out.msgid = m->msgid;
	if (reply == NULL) {
		out.code = rc < 0 ? rc : RES_ERR_NOMEM;
		snprintf(out.text, sizeof out.text, "%s", res_strerror(out.code));
	} else {
		out.blob[0].data = reply;
		out.blob[0].len = reply_len;
	}
	if (r->send(r->send_ud, from, &out) != 0)
		agd_log(AGD_LOG_WARN, "res.reply_failed", "to=%s resource=%s", from, m->name);
	free(reply);
}

int agd_res_input(struct agd_res *r, const char *from, const struct agd_wire_msg *m)
{
	if (r == NULL)
		return 0;
	if (m->type == AGD_MSG_RES_OP) {
		serve(r, from, m);
		return 1;
	}
	if (m->type != AGD_MSG_RES_REPLY)
		return 0;
	pthread_mutex_lock(&r->mu);
	{
		struct acall *ac = acall_take(r, NULL, 0, m->msgid);

		if (ac != NULL && strcmp(ac->host, from) != 0) {
			/* Not from the host asked: not its answer. */
			ac->next = r->acalls;
			r->acalls = ac;
			ac = NULL;
		}
		if (ac != NULL) {
			int ok = m->code == 0 && m->blob[0].len > 0;

			down_note(r, from, 1);
			pthread_mutex_unlock(&r->mu);
			/* The agent is resumed with the reply bytes; a daemon's
			 * error is a transport failure to the handle. */
			agd_rt_unpark(r->rt, ac->agent, ac->token, ok ? 0 : AGD_ERR_REMOTE,
				      ok ? "" : m->text, ok ? m->blob[0].data : NULL,
				      ok ? m->blob[0].len : 0);
			acall_free(ac);
			return 1;
		}
	}
	for (struct call *c = r->calls; c; c = c->next) {
		if (c->msgid != m->msgid || c->done || strcmp(c->host, from) != 0)
			continue;
		c->done = 1;
		if (m->code != 0 || m->blob[0].len == 0) {
			c->rc = RES_ERR_TRANSPORT;
		} else if ((c->reply = malloc(m->blob[0].len)) == NULL) {
			c->rc = RES_ERR_TRANSPORT;
		} else {
			memcpy(c->reply, m->blob[0].data, m->blob[0].len);
			c->reply_len = m->blob[0].len;
			c->rc = 0;
		}
		pthread_cond_broadcast(&r->cv);
		break;
	}
	pthread_mutex_unlock(&r->mu);
	return 1;
}

/* ------------------------------------------------------- the segment */

struct buf {
	uint8_t *p;
	size_t len, cap;
	int failed;
};

static void put(struct buf *b, const void *d, size_t n)
{
	if (b->failed || n == 0)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *p;

		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (p == NULL) {
			b->failed = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void put_u8(struct buf *b, unsigned v)
{
	uint8_t c = (uint8_t)v;

	put(b, &c, 1);
}

static void put_str8(struct buf *b, const char *s)
{
	size_t n = strlen(s);

	put_u8(b, (unsigned)n);
	put(b, s, n);
}

static void put_u32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	put(b, x, 4);
}

struct cur {
	const uint8_t *p, *end;
};

static int get(struct cur *c, void *out, size_t n)
{
	if ((size_t)(c->end - c->p) < n)
		return -1;
	if (n == 0)
		return 0;
	memcpy(out, c->p, n);
	c->p += n;
	return 0;
}

static int get_u8(struct cur *c, uint8_t *v)
{
	return get(c, v, 1);
}

static int get_str8(struct cur *c, char *out, size_t cap)
{
	uint8_t n;

	if (get_u8(c, &n) != 0 || n >= cap || get(c, out, n) != 0)
		return -1;
	out[n] = '\0';
	return strlen(out) == n ? 0 : -1;
}

int agd_res_segment_parse(const uint8_t *p, size_t len,
			  int (*item)(void *ud, const struct agd_res_item *it),
			  int (*line)(void *ud, const char *s), void *ud)
{
	struct cur c = { p, p + len };
	uint8_t magic[3], ver, n, nl;
	int rc;

	if (p == NULL || get(&c, magic, 3) != 0 || memcmp(magic, "ARS", 3) != 0 ||
	    get_u8(&c, &ver) != 0 || ver != SEG_VERSION || get_u8(&c, &n) != 0 ||
	    n > AGD_RES_BINDINGS_MAX)
		return AGD_ERR_SEGMENT;
	for (unsigned i = 0; i < n; i++) {
		struct agd_res_item it;
		uint8_t x[5], bl[4];
		uint32_t blen;

		memset(&it, 0, sizeof it);
		if (get_str8(&c, it.bind.name, sizeof it.bind.name) != 0 || get(&c, x, 5) != 0 ||
		    get_str8(&c, it.bind.id, sizeof it.bind.id) != 0 ||
		    get_str8(&c, it.bind.home, sizeof it.bind.home) != 0 ||
		    get_u8(&c, &it.manifest.n) != 0 || it.manifest.n > RES_POLICY_MAX_ACTIONS ||
		    get(&c, it.manifest.a, it.manifest.n) != 0 || get(&c, bl, 4) != 0)
			return AGD_ERR_SEGMENT;
		if (x[0] >= RES_NBINDINGS || x[1] >= RES_NKINDS || x[2] >= RES_NATTACH ||
		    x[3] >= RES_NACTIONS || x[4] > 1 || it.bind.name[0] == '\0')
			return AGD_ERR_SEGMENT;
		for (unsigned k = 0; k < it.manifest.n; k++)
			if (it.manifest.a[k] == RES_ACT_NONE || it.manifest.a[k] >= RES_NACTIONS)
				return AGD_ERR_SEGMENT;
		it.bind.binding = x[0];
		it.bind.kind = x[1];
		it.bind.attach = x[2];
		it.bind.action = x[3];
		it.bind.bound = x[4];
		blen = (uint32_t)bl[0] << 24 | (uint32_t)bl[1] << 16 | (uint32_t)bl[2] << 8 | bl[3];
		if (blen > RES_OP_MAX_BYTES || (size_t)(c.end - c.p) < blen)
			return AGD_ERR_SEGMENT;
		it.blob = blen ? c.p : NULL;
		it.blob_len = blen;
		c.p += blen;
		if (get(&c, bl, 2) != 0)
			return AGD_ERR_SEGMENT;
		blen = (uint32_t)bl[0] << 8 | bl[1];
		if (blen >= sizeof it.endpoint || get(&c, it.endpoint, blen) != 0)
			return AGD_ERR_SEGMENT;
		it.endpoint[blen] = '\0';
		if (strlen(it.endpoint) != blen)
			return AGD_ERR_SEGMENT;
		if (item != NULL && (rc = item(ud, &it)) != 0)
			return rc;
	}
	if (get_u8(&c, &nl) != 0 || nl > AGD_RES_HISTORY_MAX)
		return AGD_ERR_SEGMENT;
	for (unsigned i = 0; i < nl; i++) {
		uint8_t l2[2];
		char s[LINE_MAX_BYTES];
		size_t l;

		if (get(&c, l2, 2) != 0)
			return AGD_ERR_SEGMENT;
		l = (size_t)l2[0] << 8 | l2[1];
		if (l >= sizeof s || get(&c, s, l) != 0)
			return AGD_ERR_SEGMENT;
		s[l] = '\0';
		if (strlen(s) != l)
			return AGD_ERR_SEGMENT;
		if (line != NULL && (rc = line(ud, s)) != 0)
			return rc;
	}
	return c.p == c.end ? 0 : AGD_ERR_SEGMENT;
}

int agd_res_segment_build(const struct agd_res_item *items, size_t n, const char *const *lines,
			  size_t nl, uint8_t **out, size_t *out_len)
{
	struct buf b = { 0 };

	*out = NULL;
	*out_len = 0;
	if (n > AGD_RES_BINDINGS_MAX || nl > AGD_RES_HISTORY_MAX)
		return AGD_ERR_ARG;
	put(&b, "ARS", 3);
	put_u8(&b, SEG_VERSION);
	put_u8(&b, (unsigned)n);
	for (size_t i = 0; i < n; i++) {
		const struct res_bind *bd = &items[i].bind;
		size_t el = strnlen(items[i].endpoint, sizeof items[i].endpoint);

		if (strnlen(bd->name, sizeof bd->name) >= sizeof bd->name ||
		    strnlen(bd->id, sizeof bd->id) >= sizeof bd->id ||
		    strnlen(bd->home, sizeof bd->home) >= sizeof bd->home ||
		    el >= sizeof items[i].endpoint || items[i].manifest.n > RES_POLICY_MAX_ACTIONS ||
		    items[i].blob_len > RES_OP_MAX_BYTES) {
			free(b.p);
			return AGD_ERR_ARG;
		}
		put_str8(&b, bd->name);
		put_u8(&b, bd->binding);
		put_u8(&b, bd->kind);
		put_u8(&b, bd->attach);
		put_u8(&b, bd->action);
		put_u8(&b, bd->bound);
		put_str8(&b, bd->id);
		put_str8(&b, bd->home);
		put_u8(&b, items[i].manifest.n);
		put(&b, items[i].manifest.a, items[i].manifest.n);
		put_u32(&b, (uint32_t)items[i].blob_len);
		put(&b, items[i].blob, items[i].blob_len);
		put(&b, (uint8_t[]){ (uint8_t)(el >> 8), (uint8_t)el }, 2);
		put(&b, items[i].endpoint, el);
	}
	put_u8(&b, (unsigned)nl);
	for (size_t i = 0; i < nl; i++) {
		size_t l = strlen(lines[i]);

		if (l >= LINE_MAX_BYTES)
			l = LINE_MAX_BYTES - 1; /* a decision line is cut, not refused */
		put(&b, (uint8_t[]){ (uint8_t)(l >> 8), (uint8_t)l }, 2);
		put(&b, lines[i], l);
	}
	if (b.failed || b.len > AGD_WIRE_BLOB_MAX) {
		free(b.p);
		return b.failed ? AGD_ERR_NOMEM : AGD_ERR_TOOBIG;
	}
	*out = b.p;
	*out_len = b.len;
	return 0;
}

/* ------------------------------------------------------- endpoints */

/* Where host's peer endpoint is kept (the key agd_mobility uses, so that
 * its dialling finds what a transfer taught this host). */
static void endpoint_key(char *key, size_t len, const char *host)
{
	snprintf(key, len, "peer.ep.%s", host);
}

/* The endpoint this host knows for `host`, or "" (also for itself: the
 * target heard from this host already). */
static void endpoint_get(struct agd_res *r, const char *host, char ep[ENDPOINT_MAX])
{
	char key[AGD_STORE_KEY_MAX + 1];
	void *v = NULL;
	size_t len = 0;

	ep[0] = '\0';
	if (r->st == NULL || strcmp(host, r->host) == 0)
		return;
	endpoint_key(key, sizeof key, host);
	pthread_mutex_lock(&r->st_mu);
	if (agd_store_kv_get(r->st, key, &v, &len) == 0 && len > 0 && len <= ENDPOINT_MAX &&
	    ((char *)v)[len - 1] == '\0' && strlen(v) == len - 1)
		memcpy(ep, v, len);
	pthread_mutex_unlock(&r->st_mu);
	free(v);
}

/* Learns a GR's home endpoint from a segment, unless already known: a
 * handle must reach its home from every host it is carried to, also those
 * that never talked to it. */
static void endpoint_learn(struct agd_res *r, const char *host, const char *ep)
{
	char key[AGD_STORE_KEY_MAX + 1], known[ENDPOINT_MAX];

	if (r->st == NULL || ep[0] == '\0' || strcmp(host, r->host) == 0)
		return;
	endpoint_get(r, host, known);
	if (known[0] != '\0')
		return;
	endpoint_key(key, sizeof key, host);
	pthread_mutex_lock(&r->st_mu);
	agd_store_kv_put(r->st, key, ep, strlen(ep) + 1);
	pthread_mutex_unlock(&r->st_mu);
	agd_log(AGD_LOG_INFO, "res.endpoint_learned", "host=%s endpoint=%s", host, ep);
}

/* ------------------------------------------------------- durability */

/* The registry a host starts with is its config; what migrations changed
 * (content that arrived, content that left and the forward it left) is
 * recorded in the store's resources table and replayed at start, before
 * any agent resumes. An agent's bindings and decision history are kept
 * under kv "res.agent.<id>" (as a resource segment without content), so
 * that it leaves with them after a restart too. */

#define META_FORWARD "forward"

/* Records resource id of reg as this host's import. st_mu taken here. */
static void record_import(struct agd_res *r, struct res_registry *reg, const char *id)
{
	struct agd_resource_rec rec;
	struct res_info info;
	char meta[PATH_MAX + 160];
	int n;

	if (r->st == NULL || res_registry_info(reg, id, &info) != 0)
		return;
	memset(&rec, 0, sizeof rec);
	snprintf(rec.id, sizeof rec.id, "%s", id);
	snprintf(rec.kind, sizeof rec.kind, "%s", res_kind_name((enum res_kind)info.kind));
	snprintf(rec.attachment, sizeof rec.attachment, "%s",
		 res_attach_name((enum res_attach)info.attach));
	snprintf(rec.home, sizeof rec.home, "%s", r->host);
	n = snprintf(meta, sizeof meta, "%llu\n%llu\n%s\n%s\n%s",
		     (unsigned long long)info.max_size, (unsigned long long)info.transfer_limit,
		     info.remote ? "yes" : "no", info.copy ? "yes" : "no", info.path);
	if (n < 0 || (size_t)n >= sizeof meta)
		return;
	rec.meta = (uint8_t *)meta;
	rec.meta_len = (size_t)n + 1;
	pthread_mutex_lock(&r->st_mu);
	if (agd_store_resource_put(r->st, &rec) != 0)
		agd_log(AGD_LOG_WARN, "res.record_failed", "resource=%s", id);
	pthread_mutex_unlock(&r->st_mu);
}

/* Records that resource id moved to new_home. */
static void record_forward(struct agd_res *r, const char *id, const char *new_home)
{
	struct agd_resource_rec rec;

	if (r->st == NULL)
		return;
	memset(&rec, 0, sizeof rec);
	snprintf(rec.id, sizeof rec.id, "%s", id);
	snprintf(rec.kind, sizeof rec.kind, "-");
	snprintf(rec.attachment, sizeof rec.attachment, "-");
	snprintf(rec.home, sizeof rec.home, "%s", new_home);
	rec.meta = (uint8_t *)META_FORWARD;
	rec.meta_len = sizeof META_FORWARD;
	pthread_mutex_lock(&r->st_mu);
	if (agd_store_resource_put(r->st, &rec) != 0)
		agd_log(AGD_LOG_WARN, "res.record_failed", "resource=%s", id);
	pthread_mutex_unlock(&r->st_mu);
}

struct replay_ctx {
	struct agd_res *r;
	struct res_registry *reg;
};

static int replay_one(const struct agd_resource_rec *rec, void *ud)
{
	struct replay_ctx *c = ud;
	struct res_info info;
	int have = res_registry_info(c->reg, rec->id, &info) == 0;
	int rc;

	if (rec->meta == NULL || rec->meta_len == 0 || rec->meta[rec->meta_len - 1] != '\0')
		return 0;
	if (strcmp(rec->home, c->r->host) != 0) {
		/* It left: the config entry (recreated empty, maybe) becomes the
		 * forward it was. */
		if (have && !info.forward) {
			rc = res_move_commit(c->reg, rec->id, rec->home);
			agd_log(AGD_LOG_INFO, "res.replayed", "resource=%s forward=%s result=%s",
				rec->id, rec->home, res_errname(rc));
		}
		return 0;
	} else {
		char meta[PATH_MAX + 160], *f[5], *p = meta;
		const char *keys[] = { "kind", "path", "attachment", "max_size", "transfer_limit",
				       "remote", "copy", "create" };
		const char *vals[8];
		struct res_error e = { 0, "" };

		snprintf(meta, sizeof meta, "%s", (const char *)rec->meta);
		for (int i = 0; i < 5; i++) {
			f[i] = p;
			p = i < 4 ? strchr(p, '\n') : NULL;
			if (i < 4 && p == NULL)
				return 0;
			if (p)
				*p++ = '\0';
		}
		if (have && !info.forward && strcmp(info.path, f[4]) == 0)
			return 0;
		if (have)
			res_registry_remove(c->reg, rec->id, 0);
		vals[0] = rec->kind;
		vals[1] = f[4];
		vals[2] = rec->attachment;
		vals[3] = f[0];
		vals[4] = f[1];
		vals[5] = f[2];
		vals[6] = f[3];
		vals[7] = "no";
		rc = res_registry_add(c->reg, rec->id, 8, keys, vals, &e);
		agd_log(rc == 0 ? AGD_LOG_INFO : AGD_LOG_ERROR, "res.replayed",
			"resource=%s import=%s result=%s%s%s", rec->id, f[4], res_errname(rc),
			rc ? " error=" : "", rc ? e.msg : "");
	}
	return 0;
}

/* At start: the registry as the migrations left it. */
static void replay(struct agd_res *r)
{
	struct replay_ctx c;

	if (r->st == NULL)
		return;
	agd_rt_res_lock(r->rt);
	c.r = r;
	c.reg = agd_rt_registry(r->rt);
	if (c.reg != NULL) {
		pthread_mutex_lock(&r->st_mu);
		agd_store_resource_list(r->st, replay_one, &c);
		pthread_mutex_unlock(&r->st_mu);
	}
	agd_rt_res_unlock(r->rt);
}

static void agent_key(char *key, size_t len, const char *id)
{
	snprintf(key, len, "res.agent.%s", id);
}

/* Saves e's bindings and history (mu held). */
static void ent_save(struct agd_res *r, const struct ent *e)
{
	struct agd_res_item items[AGD_RES_BINDINGS_MAX];
	char key[AGD_STORE_KEY_MAX + 1];
	uint8_t *seg;
	size_t len;

	if (r->st == NULL)
		return;
	memset(items, 0, sizeof items);
	for (size_t i = 0; i < e->nbind; i++) {
		items[i].bind = e->bind[i].b;
		items[i].manifest = e->bind[i].man;
	}
	if (agd_res_segment_build(items, e->nbind, (const char *const *)e->hist, e->nhist, &seg,
				  &len) != 0)
		return;
	agent_key(key, sizeof key, e->id);
	pthread_mutex_lock(&r->st_mu);
	agd_store_kv_put(r->st, key, seg, len);
	pthread_mutex_unlock(&r->st_mu);
	free(seg);
}

static void ent_forget(struct agd_res *r, const char *id)
{
	char key[AGD_STORE_KEY_MAX + 1];

	if (r->st == NULL)
		return;
	agent_key(key, sizeof key, id);
	pthread_mutex_lock(&r->st_mu);
	agd_store_kv_delete(r->st, key);
	pthread_mutex_unlock(&r->st_mu);
}

static int load_item(void *ud, const struct agd_res_item *it)
{
	struct ent *e = ud;

	e->bind[e->nbind].b = it->bind;
	e->bind[e->nbind].man = it->manifest;
	e->nbind++;
	return 0;
}

static int load_line(void *ud, const char *s)
{
	ent_line(ud, s);
	return 0;
}

/* The entry of agent id, from memory or (after a restart) the store; NULL
 * when it has none (mu held). */
static struct ent *ent_load(struct agd_res *r, const char *id)
{
	char key[AGD_STORE_KEY_MAX + 1];
	struct ent *e = ent_find(r, id);
	void *v = NULL;
	size_t len = 0;

	if (e != NULL || r->st == NULL)
		return e;
	agent_key(key, sizeof key, id);
	pthread_mutex_lock(&r->st_mu);
	if (agd_store_kv_get(r->st, key, &v, &len) != 0)
		len = 0;
	pthread_mutex_unlock(&r->st_mu);
	if (len > 0 && agd_res_segment_parse(v, len, NULL, NULL, NULL) == 0 &&
	    (e = ent_get(r, id)) != NULL) {
		agd_res_segment_parse(v, len, load_item, load_line, e);
		e->logged = e->nhist;
	}
	free(v);
	return e;
}

/* ------------------------------------------------------- leaving */

void agd_res_leaving(struct agd_res *r, const char *agent, const char *to, int kind)
{
	struct ent *e;

	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	e = ent_load(r, agent);
	if (e != NULL) {
		e->leaving = 1;
		e->kind = kind;
		snprintf(e->to, sizeof e->to, "%s", to);
		free(e->seg);
		e->seg = NULL;
		e->seg_len = 0;
	}
	pthread_mutex_unlock(&r->mu);
}

/* A peer's facts (reply to OP_FACTS). */
struct facts {
	int known;
	unsigned kinds;
	char *ids; /* '\n'-terminated identifiers; owned */
};

static void facts_ask(struct agd_res *r, const char *host, struct facts *f)
{
	void *rep = NULL;
	size_t len = 0;
	struct res_msg m;
	uint64_t kinds;

	memset(f, 0, sizeof *f);
	if (call_wait(r, host, "", OP_FACTS, NULL, 0, AGD_RES_PROBE_TIMEOUT_MS, &rep, &len) != 0)
		return;
	if (res_msg_decode(rep, len, &m) == 0 && m.type == RES_MSG_OK && m.n == 2 &&
	    res_u64_get(&m.f[0], &kinds) == 0 && (f->ids = malloc(m.f[1].len + 1)) != NULL) {
		memcpy(f->ids, m.f[1].p, m.f[1].len);
		f->ids[m.f[1].len] = '\0';
		f->kinds = (unsigned)kinds;
		f->known = 1;
	}
	free(rep);
}

static int facts_has_id(const struct facts *f, const char *id)
{
	size_t l = strlen(id);

	for (const char *p = f->ids; p && *p;) {
		const char *nl = strchr(p, '\n');

		if (nl == NULL)
			break;
		if ((size_t)(nl - p) == l && memcmp(p, id, l) == 0)
			return 1;
		p = nl + 1;
	}
	return 0;
}

/* Agents that ended here no longer bind anything: their counts are
 * dropped before a decision reads them (the runtime has no hook at an
 * agent's end; this is where counts matter). Resource lock held. */
static void sweep(struct agd_res *r, struct res_registry *reg, const char *mover)
{
	pthread_mutex_lock(&r->mu);
	for (struct ent *e = r->ents, *next; e; e = next) {
		enum agd_state st;
		uint64_t sw;
		int resident;

		next = e->next;
		if (strcmp(e->id, mover) == 0 || e->leaving ||
		    agd_rt_agent_state(r->rt, e->id, &st, &sw, &resident) != 0 ||
		    (st != AGD_FINISHED && st != AGD_FAILED && st != AGD_KILLED))
			continue;
		for (size_t i = 0; i < e->nbind; i++)
			if (reg != NULL && e->bind[i].b.bound && strcmp(e->bind[i].b.home, r->host) == 0)
				res_registry_unbind(reg, e->bind[i].b.id);
		agd_log(AGD_LOG_DEBUG, "res.swept", "agent=%s state=%s", e->id, agd_state_name(st));
		ent_forget(r, e->id);
		ent_drop(r, e);
	}
	pthread_mutex_unlock(&r->mu);
}

int agd_res_prepare(struct agd_res *r, const char *agent)
{
	struct rbind bind[AGD_RES_BINDINGS_MAX];
	char hist[AGD_RES_HISTORY_MAX][LINE_MAX_BYTES];
	char lines[AGD_RES_BINDINGS_MAX][LINE_MAX_BYTES];
	void *blobs[AGD_RES_BINDINGS_MAX] = { 0 };
	size_t blens[AGD_RES_BINDINGS_MAX] = { 0 };
	char to[AGD_WIRE_NAME_MAX + 1];
	struct facts target, homes[AGD_RES_BINDINGS_MAX];
	struct res_registry *reg;
	struct buf b = { 0 };
	struct ent *e;
	size_t n, nh;
	int kind, rc = 0;

	if (r == NULL)
		return 0;
	pthread_mutex_lock(&r->mu);
	e = ent_find(r, agent);
	if (e == NULL || !e->leaving || e->nbind == 0) {
		pthread_mutex_unlock(&r->mu);
		return 0;
	}
	n = e->nbind;
	memcpy(bind, e->bind, n * sizeof bind[0]);
	nh = e->nhist;
	for (size_t i = 0; i < nh; i++)
		snprintf(hist[i], sizeof hist[i], "%s", e->hist[i]);
	snprintf(to, sizeof to, "%s", e->to);
	kind = e->kind;
	pthread_mutex_unlock(&r->mu);

	/* The peers' facts first, with no lock held. */
	facts_ask(r, to, &target);
	for (size_t i = 0; i < n; i++) {
		memset(&homes[i], 0, sizeof homes[i]);
		if (!bind[i].b.bound || strcmp(bind[i].b.home, r->host) == 0)
			homes[i].known = 1;
		else if (strcmp(bind[i].b.home, to) == 0)
			homes[i].known = target.known;
		else
			facts_ask(r, bind[i].b.home, &homes[i]);
	}

	agd_rt_res_lock(r->rt);
	reg = agd_rt_registry(r->rt);
	sweep(r, reg, agent);
	for (size_t i = 0; i < n; i++) {
		struct res_bind *bd = &bind[i].b;
		struct res_policy_ctx ctx;
		struct res_decision d;
		char text[256] = "";
		int local = reg != NULL && bd->bound && strcmp(bd->home, r->host) == 0;

		memset(&ctx, 0, sizeof ctx);
		if (!bd->bound) {
			bind[i].act = RES_ACT_NONE;
			snprintf(lines[i], sizeof lines[i], "%s->%s %s: unbound", r->host, to, bd->name);
			continue;
		}
		if (local) {
			if (res_policy_ctx_fill(reg, bd, &ctx) != 0)
				ctx.not_local = 1;
		} else {
			ctx.binding = (enum res_binding)bd->binding;
			ctx.attach = (enum res_attach)bd->attach;
			ctx.not_local = 1;
		}
		/* A clone's original stays bound here. */
		if (kind == AGD_KIND_CLONE && local)
			ctx.other_binders++;
		ctx.target_lacks_kind = !target.known || !((target.kinds >> bd->kind) & 1u);
		ctx.target_refuses = !target.known;
		ctx.target_has_id = target.known && facts_has_id(&target, bd->id);
		ctx.home_down = !homes[i].known;
		rc = res_policy_decide(&r->policy, bind[i].man.n ? &bind[i].man : NULL, &ctx, &d);
		res_decision_format(&d, 0, text, sizeof text);
		bind[i].act = rc == 0 ? d.action : RES_ACT_NONE;
		if (bind[i].act == RES_ACT_MV || bind[i].act == RES_ACT_CP) {
			int erc = res_export(reg, bd->id, &blobs[i], &blens[i]);

			if (erc != 0) {
				agd_log(AGD_LOG_WARN, "res.export_failed",
					"agent=%s binding=%s resource=%s error=\"%s\"", agent, bd->name,
					bd->id, res_strerror(erc));
				bind[i].act = RES_ACT_NONE;
			}
		}
		agd_log(AGD_LOG_INFO, "res.decide", "agent=%s binding=%s resource=%s@%s from=%s to=%s %s%s",
			agent, bd->name, bd->id, bd->home, r->host, to, text,
			rc == 0 ? "" : " result=no-action");
		snprintf(lines[i], sizeof lines[i], "%s->%s %s: %s%s", r->host, to, bd->name, text,
			 bind[i].act == RES_ACT_NONE ? " (unbound)" : "");
	}
	agd_rt_res_unlock(r->rt);
	free(target.ids);
	for (size_t i = 0; i < n; i++)
		free(homes[i].ids);

	{
		struct agd_res_item items[AGD_RES_BINDINGS_MAX];
		const char *all[AGD_RES_HISTORY_MAX];
		size_t keep = nh + n > AGD_RES_HISTORY_MAX ? AGD_RES_HISTORY_MAX - n : nh, na = 0;

		for (size_t i = 0; i < n; i++) {
			memset(&items[i], 0, sizeof items[i]);
			items[i].bind = bind[i].b;
			items[i].bind.action = bind[i].act;
			items[i].bind.bound = bind[i].act != RES_ACT_NONE;
			items[i].manifest = bind[i].man;
			items[i].blob = blobs[i];
			items[i].blob_len = blens[i];
			endpoint_get(r, bind[i].b.home, items[i].endpoint);
		}
		for (size_t i = nh - keep; i < nh; i++)
			all[na++] = hist[i];
		for (size_t i = 0; i < n; i++)
			all[na++] = lines[i];
		rc = agd_res_segment_build(items, n, all, na, &b.p, &b.len);
		for (size_t i = 0; i < n; i++)
			free(blobs[i]);
		if (rc != 0)
			return rc;
	}
	pthread_mutex_lock(&r->mu);
	e = ent_find(r, agent);
	if (e == NULL || !e->leaving) {
		pthread_mutex_unlock(&r->mu);
		free(b.p);
		return 0;
	}
	free(e->seg);
	e->seg = b.p;
	e->seg_len = b.len;
	for (size_t i = 0; i < n && i < e->nbind; i++)
		e->bind[i].act = bind[i].act;
	for (size_t i = 0; i < n; i++)
		ent_line(e, lines[i]);
	pthread_mutex_unlock(&r->mu);
	return 0;
}

const uint8_t *agd_res_segment(struct agd_res *r, const char *agent, size_t *len)
{
	struct ent *e;
	const uint8_t *p = NULL;

	*len = 0;
	if (r == NULL)
		return NULL;
	pthread_mutex_lock(&r->mu);
	e = ent_find(r, agent);
	if (e != NULL && e->leaving && e->seg != NULL) {
		p = e->seg;
		*len = e->seg_len;
	}
	pthread_mutex_unlock(&r->mu);
	return p;
}

void agd_res_left(struct agd_res *r, const char *agent, int rc, const char *host)
{
	struct res_registry *reg;
	struct ent *e;

	if (r == NULL)
		return;
	agd_rt_res_lock(r->rt);
	reg = agd_rt_registry(r->rt);
	pthread_mutex_lock(&r->mu);
	e = ent_find(r, agent);
	if (e == NULL || !e->leaving)
		goto out;
	if (rc != 0 || e->kind == AGD_KIND_CLONE) {
		e->leaving = 0;
		free(e->seg);
		e->seg = NULL;
		e->seg_len = 0;
		goto out;
	}
	for (size_t i = 0; i < e->nbind; i++) {
		const struct res_bind *bd = &e->bind[i].b;
		int local = reg != NULL && bd->bound && strcmp(bd->home, r->host) == 0;

		if (!local || e->bind[i].act == RES_ACT_GR)
			continue; /* a GR still binds the resource here */
		res_registry_unbind(reg, bd->id);
		if (e->bind[i].act == RES_ACT_MV) {
			int mrc = res_move_commit(reg, bd->id, host);

			if (mrc == 0)
				record_forward(r, bd->id, host);
			agd_log(mrc == 0 ? AGD_LOG_INFO : AGD_LOG_ERROR, "res.moved",
				"agent=%s resource=%s to=%s result=%s", agent, bd->id, host,
				res_errname(mrc));
		}
	}
	ent_forget(r, e->id);
	ent_drop(r, e);
out:
	pthread_mutex_unlock(&r->mu);
	agd_rt_res_unlock(r->rt);
}

/* ------------------------------------------------------- staging */

/* The content an arriving agent's MV/CP bindings brought, imported before
 * this host acknowledged the transfer (agd_res_stage), by binding name.
 * Kept in memory and, so that an arrival that outlives a restart finds
 * it, in the store under kv "res.stage.<agent>":
 *   epoch u64, count u8 (<= AGD_RES_BINDINGS_MAX), (str8 name, str8 id)*
 */
struct stage {
	char agent[AGD_WIRE_NAME_MAX + 1];
	uint64_t epoch;
	size_t n;
	char name[AGD_RES_BINDINGS_MAX][RES_NAME_MAX];
	char id[AGD_RES_BINDINGS_MAX][RES_ID_MAX];
	struct stage *next;
};

static void stage_key(char *key, size_t len, const char *agent)
{
	snprintf(key, len, "res.stage.%s", agent);
}

static void stage_save(struct agd_res *r, const struct stage *s)
{
	char key[AGD_STORE_KEY_MAX + 1];
	struct buf b = { 0 };
	uint8_t e[8];

	if (r->st == NULL)
		return;
	for (int i = 0; i < 8; i++)
		e[i] = (uint8_t)(s->epoch >> (56 - 8 * i));
	put(&b, e, 8);
	put_u8(&b, (unsigned)s->n);
	for (size_t i = 0; i < s->n; i++) {
		put_str8(&b, s->name[i]);
		put_str8(&b, s->id[i]);
	}
	stage_key(key, sizeof key, s->agent);
	pthread_mutex_lock(&r->st_mu);
	if (b.failed || agd_store_kv_put(r->st, key, b.p, b.len) != 0)
		agd_log(AGD_LOG_WARN, "res.record_failed", "agent=%s what=stage", s->agent);
	pthread_mutex_unlock(&r->st_mu);
	free(b.p);
}

static void stage_erase(struct agd_res *r, const char *agent)
{
	char key[AGD_STORE_KEY_MAX + 1];

	if (r->st == NULL)
		return;
	stage_key(key, sizeof key, agent);
	pthread_mutex_lock(&r->st_mu);
	agd_store_kv_delete(r->st, key);
	pthread_mutex_unlock(&r->st_mu);
}

/* The stage of agent, from memory or the store; NULL if none (mu held). */
static struct stage *stage_find(struct agd_res *r, const char *agent)
{
	char key[AGD_STORE_KEY_MAX + 1];
	struct stage *s;
	void *v = NULL;
	size_t len = 0;
	struct cur c;
	uint8_t e[8], n;

	for (s = r->stages; s; s = s->next)
		if (strcmp(s->agent, agent) == 0)
			return s;
	if (r->st == NULL)
		return NULL;
	stage_key(key, sizeof key, agent);
	pthread_mutex_lock(&r->st_mu);
	if (agd_store_kv_get(r->st, key, &v, &len) != 0)
		len = 0;
	pthread_mutex_unlock(&r->st_mu);
	if (len == 0 || (s = calloc(1, sizeof *s)) == NULL) {
		free(v);
		return NULL;
	}
	c.p = v;
	c.end = c.p + len;
	if (get(&c, e, 8) != 0 || get_u8(&c, &n) != 0 || n > AGD_RES_BINDINGS_MAX)
		goto bad;
	for (int i = 0; i < 8; i++)
		s->epoch = s->epoch << 8 | e[i];
	for (size_t i = 0; i < n; i++)
		if (get_str8(&c, s->name[i], sizeof s->name[i]) != 0 ||
		    get_str8(&c, s->id[i], sizeof s->id[i]) != 0 || !res_id_valid(s->id[i]))
			goto bad;
	if (c.p != c.end)
		goto bad;
	s->n = n;
	snprintf(s->agent, sizeof s->agent, "%s", agent);
	s->next = r->stages;
	r->stages = s;
	free(v);
	return s;
bad:
	agd_log(AGD_LOG_WARN, "res.stage_unreadable", "agent=%s", agent);
	free(v);
	free(s);
	return NULL;
}

static void stage_unlink(struct agd_res *r, struct stage *s)
{
	for (struct stage **pp = &r->stages; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			return;
		}
}

/* Removes what a stage imported, its records and the stage itself.
 * Resource lock and mu held. */
static void stage_undo(struct agd_res *r, struct res_registry *reg, struct stage *s)
{
	for (size_t i = 0; i < s->n; i++) {
		int rc = reg != NULL ? res_registry_remove(reg, s->id[i], 1) : RES_ERR_NOTFOUND;

		if (r->st != NULL) {
			pthread_mutex_lock(&r->st_mu);
			agd_store_resource_delete(r->st, s->id[i]);
			pthread_mutex_unlock(&r->st_mu);
		}
		agd_log(AGD_LOG_INFO, "res.unstaged", "agent=%s epoch=%llu resource=%s result=%s",
			s->agent, (unsigned long long)s->epoch, s->id[i], res_errname(rc));
	}
	stage_erase(r, s->agent);
	stage_unlink(r, s);
	free(s);
}

/* Whether the store holds agent as an arrival at epoch (stored by the
 * transfer protocol, not yet activated). */
static int arriving_at(struct agd_res *r, const char *agent, uint64_t epoch)
{
	struct agd_agent_rec rec;
	int yes = 0;

	if (r->st == NULL)
		return 0;
	memset(&rec, 0, sizeof rec);
	pthread_mutex_lock(&r->st_mu);
	if (agd_store_agent_get(r->st, agent, &rec) == 0) {
		yes = rec.epoch == epoch && agd_xfer_arriving(r->st, agent) == 1;
		agd_store_agent_clear(&rec);
	}
	pthread_mutex_unlock(&r->st_mu);
	return yes;
}

/* Whether the store has any row for agent. */
static int has_row(struct agd_res *r, const char *agent)
{
	struct agd_agent_rec rec;
	int yes;

	if (r->st == NULL)
		return 0;
	memset(&rec, 0, sizeof rec);
	pthread_mutex_lock(&r->st_mu);
	yes = agd_store_agent_get(r->st, agent, &rec) == 0;
	if (yes)
		agd_store_agent_clear(&rec);
	pthread_mutex_unlock(&r->st_mu);
	return yes;
}

struct stage_ctx {
	struct res_registry *reg;
	struct stage *s;
	int rc;                    /* the first failure */
	char bad[RES_NAME_MAX];    /* its binding */
};

static int stage_item(void *ud, const struct agd_res_item *it)
{
	struct stage_ctx *c = ud;
	struct stage *s = c->s;
	int rc;

	if (!it->bind.bound || (it->bind.action != RES_ACT_MV && it->bind.action != RES_ACT_CP))
		return 0;
	rc = c->reg == NULL ? RES_ERR_NOTFOUND
			    : res_import(c->reg, it->blob, it->blob_len,
					 (enum res_action)it->bind.action, s->id[s->n]);
	if (rc != 0) {
		c->rc = rc;
		snprintf(c->bad, sizeof c->bad, "%s", it->bind.name);
		return 1; /* stops the walk */
	}
	snprintf(s->name[s->n], sizeof s->name[0], "%s", it->bind.name);
	s->n++;
	return 0;
}

int agd_res_stage(struct agd_res *r, const char *agent, const char *from, uint64_t epoch,
		  const uint8_t *seg, size_t len, char *why, size_t why_len)
{
	struct stage_ctx c;
	struct stage *s, *old;
	int rc;

	if (why_len > 0)
		why[0] = '\0';
	/* Nothing to import, or a segment the arrival refuses anyway (the
	 * agent then lands without bindings: agd_res_arrive). A row here
	 * already means a duplicate or stale TRANSFER, or another attempt
	 * still arriving: the transfer protocol answers those, and an arrival
	 * with no stage imports at activation. */
	if (r == NULL || seg == NULL || len == 0 ||
	    agd_res_segment_parse(seg, len, NULL, NULL, NULL) != 0 || has_row(r, agent))
		return 0;
	s = calloc(1, sizeof *s);
	if (s == NULL) {
		snprintf(why, why_len, "out of memory importing resources");
		return AGD_ERR_NOMEM;
	}
	snprintf(s->agent, sizeof s->agent, "%s", agent);
	s->epoch = epoch;
	agd_rt_res_lock(r->rt);
	pthread_mutex_lock(&r->mu);
	old = stage_find(r, agent);
	if (old != NULL && old->epoch == epoch) {
		/* The same TRANSFER again before it was stored: imported. */
		pthread_mutex_unlock(&r->mu);
		agd_rt_res_unlock(r->rt);
		free(s);
		return 0;
	}
	if (old != NULL)
		stage_undo(r, agd_rt_registry(r->rt), old); /* an attempt that never got stored */
	memset(&c, 0, sizeof c);
	c.reg = agd_rt_registry(r->rt);
	c.s = s;
	agd_res_segment_parse(seg, len, stage_item, NULL, &c);
	rc = c.rc;
	if (rc != 0) {
		snprintf(why, why_len, "binding %s: resource import failed: %s", c.bad,
			 res_strerror(rc));
		agd_log(AGD_LOG_ERROR, "res.import_failed",
			"agent=%s from=%s epoch=%llu binding=%s error=\"%s\"", agent, from,
			(unsigned long long)epoch, c.bad, res_strerror(rc));
		/* Nothing stays: the source keeps the agent and its content. */
		for (size_t i = 0; i < s->n; i++)
			res_registry_remove(c.reg, s->id[i], 1);
		free(s);
		s = NULL;
	} else if (s->n == 0) {
		free(s);
		s = NULL;
	} else {
		for (size_t i = 0; i < s->n; i++) {
			record_import(r, c.reg, s->id[i]);
			agd_log(AGD_LOG_INFO, "res.staged",
				"agent=%s from=%s epoch=%llu binding=%s resource=%s", agent, from,
				(unsigned long long)epoch, s->name[i], s->id[i]);
		}
		s->next = r->stages;
		r->stages = s;
		stage_save(r, s);
	}
	pthread_mutex_unlock(&r->mu);
	agd_rt_res_unlock(r->rt);
	return rc != 0 ? AGD_ERR_IO : 0;
}

void agd_res_stage_settle(struct agd_res *r, const char *agent, uint64_t epoch)
{
	struct stage *s;

	if (r == NULL)
		return;
	agd_rt_res_lock(r->rt);
	pthread_mutex_lock(&r->mu);
	s = stage_find(r, agent);
	if (s != NULL && s->epoch == epoch && !arriving_at(r, agent, epoch))
		stage_undo(r, agd_rt_registry(r->rt), s);
	pthread_mutex_unlock(&r->mu);
	agd_rt_res_unlock(r->rt);
}

/* The stage of agent, taken (mu held): the caller frees it. */
static struct stage *stage_take(struct agd_res *r, const char *agent)
{
	struct stage *s = stage_find(r, agent);

	if (s != NULL) {
		stage_unlink(r, s);
		stage_erase(r, agent);
	}
	return s;
}

/* ------------------------------------------------------- arriving */

struct arrive_ctx {
	struct agd_res *r;
	struct res_registry *reg;
	const char *agent;
	struct ent *e;
	size_t nitems;
	struct stage *staged;         /* what agd_res_stage imported, or NULL */
};

static int arrive_item(void *ud, const struct agd_res_item *it)
{
	struct arrive_ctx *a = ud;
	struct agd_res *r = a->r;
	struct ent *e = a->e;
	struct rbind *rb = &e->bind[e->nbind];
	struct res_bind *nb = &e->rebind[e->nrebind];
	char id[RES_ID_MAX];
	struct res_info info;
	int rc = 0;

	a->nitems++;
	if (it->bind.bound && it->bind.action == RES_ACT_GR)
		endpoint_learn(r, it->bind.home, it->endpoint);
	rb->b = it->bind;
	rb->man = it->manifest;
	rb->act = RES_ACT_NONE;
	memset(nb, 0, sizeof *nb);
	snprintf(nb->name, sizeof nb->name, "%s", it->bind.name);
	nb->binding = it->bind.binding;
	nb->kind = it->bind.kind;
	nb->attach = it->bind.attach;
	nb->action = it->bind.action;
	nb->bound = it->bind.bound;
	switch (it->bind.bound ? it->bind.action : RES_ACT_NONE) {
	case RES_ACT_MV:
	case RES_ACT_CP:
		for (size_t k = 0; a->staged != NULL && k < a->staged->n; k++)
			if (strcmp(a->staged->name[k], it->bind.name) == 0) {
				/* Imported before the transfer was acknowledged. */
				snprintf(id, sizeof id, "%s", a->staged->id[k]);
				rc = a->reg != NULL && res_registry_info(a->reg, id, &info) == 0 &&
						     !info.forward
					     ? 0
					     : RES_ERR_NOTFOUND;
				goto imported;
			}
		rc = a->reg == NULL ? RES_ERR_NOTFOUND
				    : res_import(a->reg, it->blob, it->blob_len,
						 (enum res_action)it->bind.action, id);
		/* The same arrival activated again (the runtime could not start
		 * it the first time, or a restart): the move is already here. */
		if (rc == RES_ERR_EXISTS && it->bind.action == RES_ACT_MV &&
		    res_registry_info(a->reg, it->bind.id, &info) == 0 && info.imported &&
		    !info.forward) {
			snprintf(id, sizeof id, "%s", it->bind.id);
			rc = 0;
		}
imported:
		break;
	case RES_ACT_RB:
		rc = a->reg == NULL ? RES_ERR_NOTFOUND
				    : res_registry_find_kind(a->reg, (enum res_kind)it->bind.kind,
							     it->bind.id, id);
		if (rc == 0 && res_registry_info(a->reg, id, &info) == 0)
			nb->attach = info.attach;
		break;
	case RES_ACT_GR:
		break;
	default:
		nb->bound = 0;
		rb->b.bound = 0;
		break;
	}
	if (rc != 0) {
		agd_log(AGD_LOG_ERROR, "res.arrive_failed",
			"agent=%s binding=%s action=%s resource=%s error=\"%s\"", a->agent,
			it->bind.name, res_action_name((enum res_action)it->bind.action), it->bind.id,
			res_strerror(rc));
		/* What the content was is lost to this host: the handle answers
		 * "unbound" rather than reaching a resource it did not ask for. */
		nb->bound = 0;
		rb->b.bound = 0;
	} else if (it->bind.bound && it->bind.action != RES_ACT_GR) {
		snprintf(nb->id, sizeof nb->id, "%s", id);
		snprintf(nb->home, sizeof nb->home, "%s", r->host);
		rb->b = *nb;
		res_registry_bind(a->reg, id);
		if (it->bind.action != RES_ACT_RB)
			record_import(r, a->reg, id);
	} else if (it->bind.bound) {
		/* GR: the handle keeps its (id, home); back home it is local. */
		rb->b.action = RES_ACT_GR;
		if (a->reg != NULL && strcmp(it->bind.home, r->host) == 0)
			res_registry_bind(a->reg, it->bind.id);
	}
	if (it->bind.bound || nb->bound == 0)
		agd_log(AGD_LOG_INFO, "res.arrived", "agent=%s binding=%s action=%s resource=%s@%s",
			a->agent, it->bind.name,
			nb->bound ? res_action_name((enum res_action)it->bind.action) : "none",
			rb->b.id, rb->b.home);
	e->nbind++;
	e->nrebind++;
	return 0;
}

static int arrive_line(void *ud, const char *s)
{
	struct arrive_ctx *a = ud;

	ent_line(a->e, s);
	return 0;
}

int agd_res_arrive(struct agd_res *r, const char *agent, const char *from, const uint8_t *seg,
		   size_t len)
{
	struct arrive_ctx a;
	struct ent *e;
	int rc;

	if (r == NULL || seg == NULL || len == 0)
		return 0;
	/* Checked whole before anything is imported. */
	rc = agd_res_segment_parse(seg, len, NULL, NULL, NULL);
	if (rc != 0) {
		agd_log(AGD_LOG_WARN, "res.segment_refused", "agent=%s from=%s", agent, from);
		return rc;
	}
	agd_rt_res_lock(r->rt);
	pthread_mutex_lock(&r->mu);
	e = ent_get(r, agent);
	if (e == NULL) {
		pthread_mutex_unlock(&r->mu);
		agd_rt_res_unlock(r->rt);
		return AGD_ERR_NOMEM;
	}
	/* An agent coming back starts afresh: its old entry left with it. */
	for (size_t i = 0; i < e->nhist; i++)
		free(e->hist[i]);
	free(e->seg);
	memset(e->bind, 0, sizeof e->bind);
	e->nbind = e->nrebind = e->nhist = e->logged = 0;
	e->leaving = 0;
	e->seg = NULL;
	e->seg_len = 0;
	memset(&a, 0, sizeof a);
	a.r = r;
	a.reg = agd_rt_registry(r->rt);
	a.agent = agent;
	a.e = e;
	a.staged = stage_take(r, agent);
	rc = agd_res_segment_parse(seg, len, arrive_item, arrive_line, &a);
	free(a.staged);
	/* The lines of this hop are the last ones: one per binding. */
	e->logged = e->nhist >= a.nitems ? e->nhist - a.nitems : 0;
	ent_save(r, e);
	pthread_mutex_unlock(&r->mu);
	agd_rt_res_unlock(r->rt);
	return rc;
}

/* ------------------------------------------------------ Lua hooks */

void agd_res_vm_env(struct agd_rt *rt, struct agd_agent *a, struct res_lua_env *env,
		    int *uses_res, int restoring)
{
	struct agd_res *r = glue_of(rt);
	char lines[AGD_RES_HISTORY_MAX][LINE_MAX_BYTES];
	size_t nl = 0;
	struct ent *e;

	if (r == NULL)
		return;
	env->transport.call = tp_call;
	env->transport.ud = r;
	/* Remote ops park the agent (the transport stays for where it
	 * cannot yield). */
	env->agent = agd_agent_id(a);
	env->park.token = agd_park_token;
	env->park.start = park_start;
	env->park.yield = agd_park_yield;
	env->park.done = park_done;
	env->park.timeout_code = AGD_ERR_TIMEOUT;
	env->park.ud = r;
	if (restoring && env->reg != NULL)
		*uses_res = 1;
	pthread_mutex_lock(&r->mu);
	e = ent_find(r, agd_agent_id(a));
	if (e != NULL) {
		/* The entry lives until the agent leaves this host, so the
		 * pointer outlives the restore that reads it. (A fresh start,
		 * weak mobility, has no handles to rebind: agent.resource asks
		 * agd_res_bound.) */
		if (restoring) {
			env->rebinds = e->rebind;
			env->nrebinds = e->nrebind;
		}
		for (size_t i = e->logged; i < e->nhist; i++)
			snprintf(lines[nl++], sizeof lines[0], "resource %s", e->hist[i]);
		e->logged = e->nhist;
	}
	pthread_mutex_unlock(&r->mu);
	for (size_t i = 0; i < nl; i++)
		agd_agent_log(rt, a, lines[i], strlen(lines[i]));
}

int agd_res_bound(struct agd_rt *rt, const char *agent, const char *name, struct res_bind *out)
{
	struct agd_res *r = glue_of(rt);
	struct ent *e;
	int rc = AGD_ERR_NOTFOUND;

	if (r == NULL)
		return rc;
	pthread_mutex_lock(&r->mu);
	e = ent_find(r, agent);
	for (size_t i = 0; e != NULL && i < e->nrebind; i++)
		if (strcmp(e->rebind[i].name, name) == 0) {
			*out = e->rebind[i];
			if (out->bound && out->id[0] == '\0') {
				/* A GR: what the agent holds now. */
				for (size_t k = 0; k < e->nbind; k++)
					if (strcmp(e->bind[k].b.name, name) == 0)
						*out = e->bind[k].b;
			}
			rc = 0;
		}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

void agd_res_note_bind(struct agd_rt *rt, const char *agent, const struct res_bind *b,
		       const uint8_t *acts, size_t nacts)
{
	struct agd_res *r = glue_of(rt);
	struct res_registry *reg = agd_rt_registry(rt);
	struct rbind *rb = NULL;
	struct ent *e;

	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	e = ent_get(r, agent);
	if (e == NULL)
		goto out;
	for (size_t i = 0; i < e->nbind; i++)
		if (strcmp(e->bind[i].b.name, b->name) == 0)
			rb = &e->bind[i];
	if (rb != NULL && rb->b.bound && strcmp(rb->b.id, b->id) == 0 &&
	    strcmp(rb->b.home, b->home) == 0)
		goto out; /* the same binding again: one binder */
	if (rb == NULL) {
		if (e->nbind == AGD_RES_BINDINGS_MAX)
			goto out;
		rb = &e->bind[e->nbind++];
	} else if (reg != NULL && rb->b.bound && strcmp(rb->b.home, r->host) == 0)
		res_registry_unbind(reg, rb->b.id);
	memset(rb, 0, sizeof *rb);
	rb->b = *b;
	for (size_t i = 0; i < nacts && i < RES_POLICY_MAX_ACTIONS; i++)
		rb->man.a[rb->man.n++] = acts[i];
	if (reg != NULL && b->bound && strcmp(b->home, r->host) == 0)
		res_registry_bind(reg, b->id);
	/* A later restore here rebinds this name to what the agent now holds. */
	for (size_t i = 0; i < e->nrebind; i++)
		if (strcmp(e->rebind[i].name, b->name) == 0)
			e->rebind[i] = *b;
	ent_save(r, e);
out:
	pthread_mutex_unlock(&r->mu);
}

const char *agd_res_target_ref(struct res_registry *reg, const char *target)
{
	unsigned kinds;

	if (strcmp(target, "device") != 0 || reg == NULL)
		return target;
	kinds = res_registry_kinds(reg);
	if (kinds & (1u << RES_KIND_PRINTER))
		return res_kind_name(RES_KIND_PRINTER);
	if (kinds & (1u << RES_KIND_SENSOR))
		return res_kind_name(RES_KIND_SENSOR);
	return target;
}

/* ------------------------------------------------------- control */

static int cmd_policy(void *ud, struct agd_ctl_req *req, struct agd_jw *w)
{
	struct agd_res *r = ud;

	(void)req;
	agd_jw_key(w, "host");
	agd_jw_str(w, r->host);
	agd_jw_key(w, "cells");
	agd_jw_arr_begin(w);
	for (int b = 0; b < RES_NBINDINGS; b++)
		for (int a = 0; a < RES_NATTACH; a++) {
			const struct res_action_list *l = &r->policy.host[b][a];
			int host = l->n > 0;

			if (!host)
				l = res_policy_default((enum res_binding)b, (enum res_attach)a);
			agd_jw_obj_begin(w);
			agd_jw_key(w, "binding");
			agd_jw_str(w, res_binding_name((enum res_binding)b));
			agd_jw_key(w, "attachment");
			agd_jw_str(w, res_attach_name((enum res_attach)a));
			agd_jw_key(w, "actions");
			agd_jw_arr_begin(w);
			for (unsigned k = 0; k < l->n; k++)
				agd_jw_str(w, res_action_name((enum res_action)l->a[k]));
			agd_jw_arr_end(w);
			agd_jw_key(w, "origin");
			agd_jw_str(w, res_origin_name(host ? RES_ORIGIN_HOST : RES_ORIGIN_DEFAULT));
			agd_jw_obj_end(w);
		}
	agd_jw_arr_end(w);
	return 0;
}

static void ent_json(const struct ent *e, struct agd_jw *w)
{
	agd_jw_obj_begin(w);
	agd_jw_key(w, "agent");
	agd_jw_str(w, e->id);
	agd_jw_key(w, "bindings");
	agd_jw_arr_begin(w);
	for (size_t i = 0; i < e->nbind; i++) {
		const struct res_bind *b = &e->bind[i].b;

		agd_jw_obj_begin(w);
		agd_jw_key(w, "name");
		agd_jw_str(w, b->name);
		agd_jw_key(w, "binding");
		agd_jw_str(w, res_binding_name((enum res_binding)b->binding));
		agd_jw_key(w, "kind");
		agd_jw_str(w, res_kind_name((enum res_kind)b->kind));
		agd_jw_key(w, "attachment");
		agd_jw_str(w, res_attach_name((enum res_attach)b->attach));
		agd_jw_key(w, "bound");
		agd_jw_bool(w, b->bound);
		agd_jw_key(w, "action");
		agd_jw_str(w, b->action ? res_action_name((enum res_action)b->action) : "none");
		agd_jw_key(w, "id");
		agd_jw_str(w, b->id);
		agd_jw_key(w, "home");
		agd_jw_str(w, b->home);
		agd_jw_obj_end(w);
	}
	agd_jw_arr_end(w);
	agd_jw_key(w, "history");
	agd_jw_arr_begin(w);
	for (size_t i = 0; i < e->nhist; i++)
		agd_jw_str(w, e->hist[i]);
	agd_jw_arr_end(w);
	agd_jw_obj_end(w);
}

/* `bindings` [{"agent": ID}]: each agent's bindings here and the decision
 * taken for each binding at each hop. */
static int cmd_bindings(void *ud, struct agd_ctl_req *req, struct agd_jw *w)
{
	struct agd_res *r = ud;
	const char *agent = NULL;
	int found = 0;

	if (req->args != NULL)
		agd_json_get_str(req->doc, req->args, "agent", &agent);
	agd_jw_key(w, "host");
	agd_jw_str(w, r->host);
	agd_jw_key(w, "agents");
	agd_jw_arr_begin(w);
	pthread_mutex_lock(&r->mu);
	for (const struct ent *e = r->ents; e; e = e->next)
		if (agent == NULL || strcmp(agent, e->id) == 0) {
			ent_json(e, w);
			found = 1;
		}
	pthread_mutex_unlock(&r->mu);
	agd_jw_arr_end(w);
	if (agent != NULL && !found) {
		snprintf(req->err, sizeof req->err, "no resource bindings of agent %.64s here", agent);
		return AGD_ERR_NOTFOUND;
	}
	return 0;
}

/* --------------------------------------------------------- life */

int agd_res_new(struct agd_rt *rt, struct agd_loop *loop, struct agd_ctl *ctl,
		const struct agd_config *cfg, agd_res_send_fn send, void *send_ud,
		struct agd_res **out)
{
	struct agd_res *r;
	pthread_condattr_t ca;
	int rc;

	*out = NULL;
	r = calloc(1, sizeof *r);
	if (r == NULL)
		return AGD_ERR_NOMEM;
	r->rt = rt;
	r->loop = loop;
	r->host = cfg->host;
	r->send = send;
	r->send_ud = send_ud;
	res_policy_init(&r->policy);
	for (size_t i = 0; i < cfg->policy.n; i++) {
		const char *cell = cfg->policy.kv[i].key;
		struct res_error e = { 0, "" };

		if (strncmp(cell, "policy.", 7) == 0)
			cell += 7;
		if (res_policy_set(&r->policy, cell, cfg->policy.kv[i].value, &e) != 0)
			agd_log(AGD_LOG_ERROR, "res.policy_refused", "cell=%s error=\"%s\"", cell,
				e.msg[0] ? e.msg : res_strerror(e.code));
	}
	pthread_mutex_init(&r->mu, NULL);
	pthread_mutex_init(&r->st_mu, NULL);
	r->st = agd_rt_store(rt); /* shared: the store is open private to the daemon */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cv, &ca);
	pthread_condattr_destroy(&ca);
	r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->efd < 0 || agd_loop_add_fd(loop, r->efd, on_efd, r) != 0) {
		rc = AGD_ERR_IO;
		goto fail;
	}
	rc = glue_set(rt, r);
	if (rc != 0)
		goto fail;
	replay(r);
	if (ctl != NULL) {
		agd_ctl_register(ctl, "policy", cmd_policy, r);
		agd_ctl_register(ctl, "bindings", cmd_bindings, r);
	}
	*out = r;
	return 0;
fail:
	agd_res_destroy(&r);
	return rc;
}

void agd_res_destroy(struct agd_res **rp)
{
	struct agd_res *r;

	if (rp == NULL || *rp == NULL)
		return;
	r = *rp;
	*rp = NULL;
	glue_set(r->rt, NULL);
	pthread_mutex_lock(&r->mu);
	r->closing = 1;
	pthread_cond_broadcast(&r->cv);
	/* Waiting workers see `closing` and leave; wait until they have. */
	while (r->calls != NULL) {
		pthread_mutex_unlock(&r->mu);
		usleep(1000);
		pthread_mutex_lock(&r->mu);
	}
	pthread_mutex_unlock(&r->mu);
	if (r->efd >= 0) {
		agd_loop_remove(r->loop, NULL, r->efd);
		close(r->efd);
	}
	while (r->ents) {
		struct ent *e = r->ents;

		r->ents = e->next;
		ent_free(e);
	}
	while (r->acalls) {
		struct acall *c = r->acalls;

		r->acalls = c->next;
		acall_free(c);
	}
	while (r->stages) {
		struct stage *s = r->stages;

		r->stages = s->next;
		free(s);
	}
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	pthread_mutex_destroy(&r->st_mu);
	free(r);
}
