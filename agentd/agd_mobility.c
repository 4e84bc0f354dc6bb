/*
 * agd_mobility.c: the wiring of peer channel, transfer protocol and
 * directory into a running agentd (see agd_mobility.h).
 *
 * Threads: the runtime calls the suspend callback on a worker thread, with
 * the persisted state borrowed for the call. The callback copies what it
 * needs into a queue under `mu` and rings an eventfd; the dispatcher drains
 * the queue and starts the transfer. Everything else (sockets, xfer, dir,
 * control replies) runs on the dispatcher only.
 */
#include "agd_mobility.h"

#include "agd_balance.h" /* [bal] */
#include "agd_call.h" /* [call] CALL/REPLY, control `call` */
#include "agd_ctl.h"
#include "agd_dir.h"
#include "agd_err.h"
#include "agd_hosts.h" /* [bal] */
#include "agd_json.h"
#include "agd_log.h"
#include "agd_loop.h"
#include "agd_peer.h"
#include "agd_res.h" /* [resint] */
#include "agd_rt.h"
#include "agd_server.h"
#include "agd_store.h"
#include "agd_trust.h"
#include "agd_vm.h"
#include "agd_xfer.h"
#include "agd_zap.h"
#include "mig_key.h"
#include "mig_manifest.h"
#include "mig_state.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define ENDPOINT_MAX 256
#define TICK_MS 20

/* A suspended agent handed over by a worker thread. */
struct item {
	char id[AGD_ID_LEN + 1];
	int rc;                  /* the runtime's result */
	uint8_t *state;          /* copy of the persisted state */
	size_t len;
	int self;                /* the agent asked for this move itself */
	char to[AGD_WIRE_NAME_MAX + 1]; /* self: the target host */
	unsigned flags;          /* self: AGD_MOVE_* */
	struct item *next;
};

/* A move an agent asked for itself, between its yield (worker) and its
 * suspension (the suspend callback, also on a worker). */
struct self_req {
	char id[AGD_ID_LEN + 1];
	char to[AGD_WIRE_NAME_MAX + 1];
	unsigned flags;                /* AGD_MOVE_* */
	struct self_req *next;
};

/* A message an agent sent to an agent not here (agent.send), on its way
 * from the worker to agd_dir on the dispatcher. */
struct outmsg {
	char to[AGD_ID_LEN + 1];
	char hint[AGD_WIRE_NAME_MAX + 1];
	size_t len;
	struct outmsg *next;
	uint8_t data[];
};

/* How an agent's own move ended at this host, for agent.migrate's results
 * when it resumes here (failure, or a clone's new id). */
struct outcome {
	char id[AGD_ID_LEN + 1];
	int ok;
	char clone_id[AGD_ID_LEN + 1];
	char err[200];
	struct outcome *next;
};

/* A transfer this host asked for (push, clone, or a peer's pull). */
struct req {
	char id[AGD_ID_LEN + 1];
	char to[AGD_WIRE_NAME_MAX + 1];
	char clone_id[AGD_ID_LEN + 1];
	int kind;                      /* AGD_KIND_* */
	int mobility;                  /* AGD_MOB_* */
	struct agd_ctl_token *tok;     /* the control request to answer, or NULL */
	int self;                      /* the agent asked for it (agent.migrate/clone) */
	int awaiting;                  /* 1: the agent is still arriving here (committed,
					  not yet activated): suspend it once admitted */
	uint64_t deadline;             /* ms: give up waiting for the arrival */
	uint64_t started;              /* ms: when it was asked for (progress) */
	struct req *next;
};

/* A runtime call that met a race (the worker was still in our suspend
 * callback) and is retried on the next tick. */
struct retry {
	char id[AGD_ID_LEN + 1];
	char where[AGD_WIRE_NAME_MAX + 1];
	int forget;                    /* 1: agd_rt_forget, 0: agd_rt_release */
	int tries;
	struct retry *next;
};

/* A control request waiting for agd_dir. */
struct waiter {
	uint64_t id;                   /* msgid or corr */
	struct agd_ctl_token *tok;
	struct waiter *next;
};

struct agd_mobility {
	struct agd_server *srv;
	const struct agd_config *cfg;
	struct agd_rt *rt;
	struct agd_loop *loop;
	struct agd_ctl *ctl;
	struct agd_store *st;          /* the daemon's store (agd_rt_store), borrowed */
	struct agd_trust *hosts;       /* trusted-hosts list */
	struct agd_zap *zap;
	struct agd_peer *peer;
	struct agd_xfer *xfer;
	struct agd_dir *dir;
	struct agd_res *res;            /* [resint] resource glue, or NULL */
	struct agd_call *call;          /* [call] method calls, or NULL */
	struct agd_balance *bal;       /* [bal] load policy */
	struct agd_hosts *reg;         /* [bal] host registry (directory) */
	size_t ndialled;               /* [bal] DEALERs opened (capped by [peer] max_peers) */
	int overflow;                  /* [bal] some DEALER is not watched by the loop (its
					  input table is full): poll the peer sockets each tick */
	int efd;                       /* eventfd: the worker queue is not empty */
	uint64_t timer;
	uint64_t poll_timer;           /* one-shot: awaiting_poll, or 0 */
	unsigned poll_spins;           /* polls since something last waited */
	uint64_t sent_id;              /* a send answered inside agd_dir_send: */
	int sent_code;                 /* its id and outcome, for cmd_send */
	char sent_host[AGD_WIRE_NAME_MAX + 1];
	pthread_mutex_t mu;            /* guards items, selfq and outcomes */
	struct item *items;
	struct self_req *selfq;        /* self moves not yet suspended */
	struct outcome *outcomes;      /* self moves ended, not yet seen by the agent */
	struct outmsg *outq;           /* agent.send to elsewhere, newest first */
	struct req *reqs;
	struct retry *retries;
	struct waiter *waiters;
	int grouping;                  /* in on_sock's group commit: sends are held */
	int crash_due;                 /* crash_at met in a group: crash once it commits */
	char fail_group_at[32];        /* test-only: the group sending this type fails, or "" */
	int fail_due;                  /* it was met in the current group */
	char crash_at[32];             /* test-only crash point, or "" */
	char pause_after[32];          /* test-only stop point, or "" */
};

/* ------------------------------------------------- runtime registry */

/* Which runtime has which mobility context. The runtime knows nothing of
 * this module, and the Lua bindings and the worker loop reach it only
 * through their agd_rt: one entry per daemon in the process (tests run
 * daemons as processes, so this is normally one). Guarded by reg_mu, which
 * is taken before any m->mu and never around a runtime call. */
#define REG_MAX 8
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	struct agd_rt *rt;
	struct agd_mobility *m;
} reg[REG_MAX];

static void reg_set(struct agd_rt *rt, struct agd_mobility *m)
{
	pthread_mutex_lock(&reg_mu);
	for (size_t i = 0; i < REG_MAX; i++)
		if (m != NULL ? reg[i].rt == NULL : reg[i].rt == rt) {
			reg[i].rt = m != NULL ? rt : NULL;
			reg[i].m = m;
			break;
		}
	pthread_mutex_unlock(&reg_mu);
}

/* reg_mu held. */
static struct agd_mobility *reg_get(struct agd_rt *rt)
{
	for (size_t i = 0; i < REG_MAX; i++)
		if (reg[i].rt == rt && rt != NULL)
			return reg[i].m;
	return NULL;
}

/* m->mu held. */
static void outcome_put(struct agd_mobility *m, const char *id, int ok, const char *clone_id,
			const char *err)
{
	struct outcome *o = NULL;

	for (struct outcome *p = m->outcomes; p; p = p->next)
		if (strcmp(p->id, id) == 0)
			o = p;
	if (o == NULL) {
		o = calloc(1, sizeof *o);
		if (o == NULL)
			return; /* the agent then reads "did not complete" */
		snprintf(o->id, sizeof o->id, "%s", id);
		o->next = m->outcomes;
		m->outcomes = o;
	}
	o->ok = ok;
	snprintf(o->clone_id, sizeof o->clone_id, "%s", clone_id ? clone_id : "");
	snprintf(o->err, sizeof o->err, "%s", err ? err : "");
}

static void outcome_set(struct agd_mobility *m, const char *id, int ok, const char *clone_id,
			const char *err)
{
	pthread_mutex_lock(&m->mu);
	outcome_put(m, id, ok, clone_id, err);
	pthread_mutex_unlock(&m->mu);
}

int agd_mobility_available(struct agd_rt *rt)
{
	int yes;

	pthread_mutex_lock(&reg_mu);
	yes = reg_get(rt) != NULL;
	pthread_mutex_unlock(&reg_mu);
	return yes;
}

static void on_suspended(void *ud, const char *id, int rc, const uint8_t *state, size_t len,
			 struct agd_code *code);

void agd_mobility_self_move(struct agd_rt *rt, const char *id, const char *to, unsigned flags,
			    agd_rt_suspend_fn *fn, void **ud)
{
	struct agd_mobility *m;

	pthread_mutex_lock(&reg_mu);
	m = reg_get(rt);
	if (m != NULL) {
		struct self_req *q = NULL;

		pthread_mutex_lock(&m->mu);
		if (*fn != NULL)
			outcome_put(m, id, 0, NULL, "the agent is already being moved");
		else if ((q = calloc(1, sizeof *q)) == NULL)
			outcome_put(m, id, 0, NULL, "out of memory");
		else {
			snprintf(q->id, sizeof q->id, "%s", id);
			snprintf(q->to, sizeof q->to, "%s", to);
			q->flags = flags;
			q->next = m->selfq;
			m->selfq = q;
			*fn = on_suspended;
			*ud = m;
		}
		pthread_mutex_unlock(&m->mu);
	}
	pthread_mutex_unlock(&reg_mu);
}

int agd_mobility_self_outcome(struct agd_rt *rt, const char *id, int *ok,
			      char clone_id[AGD_ID_LEN + 1], char *err, size_t err_len)
{
	struct agd_mobility *m;
	int found = 0;

	*ok = 0;
	clone_id[0] = '\0';
	if (err_len > 0)
		err[0] = '\0';
	pthread_mutex_lock(&reg_mu);
	m = reg_get(rt);
	if (m != NULL) {
		pthread_mutex_lock(&m->mu);
		for (struct outcome **pp = &m->outcomes; *pp; pp = &(*pp)->next) {
			struct outcome *o = *pp;

			if (strcmp(o->id, id) != 0)
				continue;
			*ok = o->ok;
			snprintf(clone_id, AGD_ID_LEN + 1, "%s", o->clone_id);
			snprintf(err, err_len, "%s", o->err);
			*pp = o->next;
			free(o);
			found = 1;
			break;
		}
		pthread_mutex_unlock(&m->mu);
	}
	pthread_mutex_unlock(&reg_mu);
	return found;
}

int agd_mobility_send(struct agd_rt *rt, const char *from, const char *to, const void *data,
		      size_t len, const char *hint)
{
	struct agd_mobility *m;
	enum agd_state st;
	uint64_t sw;
	int res, rc = agd_rt_send(rt, from, to, data, len);

	if (rc != AGD_ERR_NOTFOUND && rc != AGD_ERR_STATE)
		return rc;
	/* Ended here: nothing to route. */
	if (rc == AGD_ERR_STATE &&
	    (agd_rt_agent_state(rt, to, &st, &sw, &res) != 0 || st != AGD_MIGRATING))
		return rc;
	if (strlen(to) != AGD_ID_LEN)
		return rc;
	pthread_mutex_lock(&reg_mu);
	m = reg_get(rt);
	if (m != NULL) {
		struct outmsg *o = malloc(sizeof *o + len);
		uint64_t one = 1;

		if (o == NULL)
			rc = AGD_ERR_NOMEM;
		else {
			snprintf(o->to, sizeof o->to, "%s", to);
			snprintf(o->hint, sizeof o->hint, "%s", hint && strlen(hint) <= AGD_WIRE_NAME_MAX ? hint : "");
			o->len = len;
			memcpy(o->data, data, len);
			pthread_mutex_lock(&m->mu);
			o->next = m->outq;
			m->outq = o;
			pthread_mutex_unlock(&m->mu);
			if (write(m->efd, &one, sizeof one) < 0)
				agd_log(AGD_LOG_WARN, "mobility.wake_failed", "error=\"%s\"", strerror(errno));
			rc = 0;
		}
	}
	pthread_mutex_unlock(&reg_mu);
	return rc;
}

/* ---------------------------------------------------------- test hooks */

static void crash_now(const char *what)
{
	agd_log(AGD_LOG_WARN, "test.crash", "at=%s", what);
	/* kill -9 of ourselves: the test knob simulates exactly that. */
	raise(SIGKILL);
}

/* In a group commit the step is durable only when the group is: the crash
 * waits for that (on_sock), so that it still comes right after the step. */
static void crash_point(struct agd_mobility *m, const char *what)
{
	if (m->crash_at[0] == '\0' || strcmp(m->crash_at, what) != 0)
		return;
	if (m->grouping)
		m->crash_due = 1;
	else
		crash_now(what);
}

/* SIGSTOP of ourselves right after sending `what`, once: the test resumes
 * us with SIGCONT when the other side has moved on. */
static void pause_point(struct agd_mobility *m, const char *what)
{
	if (m->pause_after[0] == '\0' || strcmp(m->pause_after, what) != 0)
		return;
	m->pause_after[0] = '\0';
	agd_log(AGD_LOG_WARN, "test.pause", "after=%s", what);
	raise(SIGSTOP);
}

/* ------------------------------------------------------------- routing */

/* The X25519 key of trusted host `name`, from the trusted-hosts list. */
static int host_key(struct agd_mobility *m, const char *name, uint8_t curve[AGD_PEER_KEY_LEN])
{
	size_t n = m->hosts ? agd_trust_count(m->hosts) : 0;

	for (size_t i = 0; i < n; i++) {
		char kname[MIG_KEY_NAME_MAX + 1];

		if (agd_trust_key(m->hosts, i, NULL, curve, kname) == 0 && strcmp(kname, name) == 0)
			return 0;
	}
	return -1;
}

static int ensure_route(struct agd_mobility *m, const char *host, int redial);

static void endpoint_key(char *key, size_t len, const char *host)
{
	snprintf(key, len, "peer.ep.%s", host);
}

/* Remembers where a host can be dialled (durably: after a restart this host
 * must still reach the sources of the agents it holds). */
static void learn_endpoint(struct agd_mobility *m, const char *host, const char *endpoint)
{
	char key[AGD_STORE_KEY_MAX + 1];

	if (host == NULL || endpoint == NULL || endpoint[0] == '\0' || strlen(endpoint) >= ENDPOINT_MAX ||
	    strcmp(host, m->cfg->host) == 0)
		return;
	endpoint_key(key, sizeof key, host);
	{
		void *v = NULL;
		size_t len = 0;
		int same = agd_store_kv_get(m->st, key, &v, &len) == 0 && len == strlen(endpoint) + 1 &&
			   memcmp(v, endpoint, len) == 0;

		free(v);
		if (same)
			return;
	}
	agd_store_kv_put(m->st, key, endpoint, strlen(endpoint) + 1);
	/* A host that moved to a new endpoint: dial it again there. */
	if (agd_peer_dialled(m->peer, host))
		ensure_route(m, host, 1);
}

static void before_held(void *ud, int type)
{
	crash_point(ud, agd_wire_type_name(type));
}

static void after_held(void *ud, const char *host, int type, int rc)
{
	if (rc == 0) {
		pause_point(ud, agd_wire_type_name(type));
		return;
	}
	agd_log(AGD_LOG_DEBUG, "peer.send_failed", "host=%s type=%s error=\"%s\"", host,
		agd_wire_type_name(type), agd_peer_strerror(rc));
}

/* The group's commit failed and SQLite rolled all of it back, but the
 * handlers went on as if each of their commits held: this process's memory
 * is ahead of its store, and no one can tell whose writes were lost. Stop
 * at once, as a kill -9 would: nothing the group reported has left (its
 * messages and answers were held), and a restart recovers from the store,
 * which every step of the transfer protocol is tested against. Not a
 * graceful stop: that would persist the agents' states from memory. */
static void group_failed(struct agd_mobility *m, int rc)
{
	agd_peer_drop(m->peer);
	agd_ctl_drop(m->ctl);
	agd_log(AGD_LOG_ERROR, "store.group_failed",
		"error=\"%s\" detail=\"%s\" action=\"stopping; a restart recovers from the store\"",
		agd_store_strerror(rc), agd_store_errmsg(m->st));
	fprintf(stderr, "agentd: store commit failed (%s): stopping; a restart recovers from the store\n",
		agd_store_strerror(rc));
	agd_log_close();
	_exit(1);
}

/*
 * Group commit: a burst of work on the dispatcher (peer messages that
 * arrived together, transfers whose agents the workers have suspended)
 * commits its store writes once, those of the workers meanwhile included,
 * and the messages and control answers it produced leave only after that
 * commit. Under load the commits of a hop on the two hosts are shared by
 * the hops whose steps come together. A group takes at most GROUP_MAX
 * steps: what it holds back waits for all of them, and with the next
 * daemon idle meanwhile, larger groups cost more hops per second than
 * their fewer commits save (bench/hop, 100 agents: 8, 16, 32 and 256 gave
 * about 4,200, 4,600, 4,600 and 4,000 hops/s); and it ends early once it
 * holds GROUP_BYTES of messages back. What a failed commit costs:
 * group_failed. [peer] group_commit = false commits (and fails) each
 * step's writes on their own.
 */
#define GROUP_MAX 16
/* A group also ends once what it holds back passes this: a held message
 * holds its bytes, and sixteen large transfers would hold sixteen states. */
#define GROUP_BYTES (4u << 20)

/* Whether the open group may take one more step (without group commit,
 * every step is its own). */
static int group_room(const struct agd_mobility *m, int steps)
{
	return !m->cfg->group_commit ||
	       (steps < GROUP_MAX && agd_peer_held_bytes(m->peer) < GROUP_BYTES);
}

/* group_open and group_close do nothing without group commit. */
static void group_open(struct agd_mobility *m)
{
	if (!m->cfg->group_commit)
		return;
	agd_store_group_begin(m->st);
	agd_peer_hold(m->peer);
	agd_ctl_hold(m->ctl);
	m->grouping = 1;
}

static void group_close(struct agd_mobility *m)
{
	int rc;

	if (!m->grouping)
		return;
	m->grouping = 0;
	if (m->fail_due) {
		/* The test knob: this group's commit fails. */
		agd_store_group_abort(m->st);
		group_failed(m, AGD_STORE_ERR_IO);
	}
	rc = agd_store_group_end(m->st);
	if (rc != 0)
		group_failed(m, rc);
	if (m->crash_due)
		crash_now(m->crash_at);
	agd_peer_release(m->peer, before_held, after_held, m);
	agd_ctl_release(m->ctl);
}

static void on_sock(struct agd_loop *loop, void *sock, int fd, void *ud)
{
	struct agd_mobility *m = ud;
	int total = 0, more = 1;

	(void)loop;
	(void)fd;
	if (!m->cfg->group_commit) {
		agd_peer_readable(m->peer, sock);
		return;
	}
	/* As many messages as agd_peer_readable would take, in groups. */
	while (more && total < AGD_PEER_READ_MAX) {
		int steps = 0;

		group_open(m);
		while (group_room(m, steps) && (more = agd_peer_read(m->peer, sock, 1) == 1))
			steps++;
		group_close(m);
		total += steps;
	}
}

/* Opens a DEALER to host if we have none (or `redial`): its endpoint from
 * the store, its key from the trusted-hosts list. */
static int ensure_route(struct agd_mobility *m, const char *host, int redial)
{
	char key[AGD_STORE_KEY_MAX + 1];
	void *v = NULL;
	size_t len = 0;
	uint8_t curve[AGD_PEER_KEY_LEN];
	void *before[AGD_PEER_MAX + 1], *after[AGD_PEER_MAX + 1];
	size_t nb, na;
	int rc;

	if (!redial && agd_peer_dialled(m->peer, host))
		return 0;
	endpoint_key(key, sizeof key, host);
	if (agd_store_kv_get(m->st, key, &v, &len) != 0 || len == 0 || ((char *)v)[len - 1] != '\0') {
		free(v);
		/* Heard from on our ROUTER is a route too. */
		return agd_peer_known(m->peer, host) ? 0 : AGD_PEER_ERR_UNKNOWN;
	}
	if (host_key(m, host, curve) != 0) {
		free(v);
		agd_log(AGD_LOG_WARN, "peer.untrusted_host", "host=%s", host);
		return AGD_PEER_ERR_UNKNOWN;
	}
	/* [bal] The cap on dialled hosts is the config's; past it the host is
	 * refused with a reason rather than silently not watched. */
	if (!agd_peer_dialled(m->peer, host) && m->ndialled >= m->cfg->max_peers) {
		free(v);
		agd_log(AGD_LOG_WARN, "peer.too_many_peers", "host=%s max_peers=%u", host, m->cfg->max_peers);
		return AGD_PEER_ERR_FULL;
	}
	if (!agd_peer_dialled(m->peer, host))
		m->ndialled++;
	nb = agd_peer_sockets(m->peer, before, AGD_PEER_MAX + 1);
	rc = agd_peer_add(m->peer, host, v, curve);
	free(v);
	if (rc != 0)
		return rc;
	na = agd_peer_sockets(m->peer, after, AGD_PEER_MAX + 1);
	/* Watch the new DEALER; a replaced one was closed by agd_peer_add. */
	for (size_t i = 0; i < nb; i++) {
		int still = 0;

		for (size_t k = 0; k < na; k++)
			still |= after[k] == before[i];
		if (!still)
			agd_loop_remove(m->loop, before[i], -1);
	}
	for (size_t k = 0; k < na; k++) {
		int old = 0;

		for (size_t i = 0; i < nb; i++)
			old |= after[k] == before[i];
		if (!old && agd_loop_add_socket(m->loop, after[k], on_sock, m) != 0) {
			/* [bal] The loop watches a few dozen inputs; the rest
			 * are polled on every tick (TICK_MS). */
			if (!m->overflow)
				agd_log(AGD_LOG_INFO, "peer.polled", "host=%s", host);
			m->overflow = 1;
		}
	}
	return 0;
}

static int send_to(void *ud, const char *host, const struct agd_wire_msg *msg)
{
	struct agd_mobility *m = ud;
	int rc;

	/* Held, the test points fire when the message really goes. */
	if (!m->grouping)
		crash_point(m, agd_wire_type_name(msg->type));
	else if (strcmp(m->fail_group_at, agd_wire_type_name(msg->type)) == 0)
		m->fail_due = 1;
	ensure_route(m, host, 0);
	rc = agd_peer_send(m->peer, host, msg);
	if (rc == AGD_PEER_ERR_UNKNOWN && ensure_route(m, host, 0) == 0)
		rc = agd_peer_send(m->peer, host, msg);
	if (rc != 0)
		agd_log(AGD_LOG_DEBUG, "peer.send_failed", "host=%s type=%s error=\"%s\"", host,
			agd_wire_type_name(msg->type), agd_peer_strerror(rc));
	else if (!m->grouping)
		pause_point(m, agd_wire_type_name(msg->type));
	return rc;
}

static void on_hello(void *ud, const char *host, const char *endpoint)
{
	learn_endpoint(ud, host, endpoint);
}

static void on_peer_msg(void *ud, const char *from, const struct agd_wire_msg *msg)
{
	struct agd_mobility *m = ud;
	uint64_t now = agd_now_ms();

	if (agd_res_input(m->res, from, msg)) /* [resint] RES_OP, RES_REPLY */
		return;
	if (agd_balance_input(m->bal, from, msg, now)) /* [bal] LOAD, LOAD_REPLY */
		return;
	if (agd_hosts_input(m->reg, from, msg, now)) /* [bal] REGISTER, HOST_LIST */
		return;
	if (msg->type == AGD_MSG_TRANSFER) {
		/* [resint] MV/CP content is imported before the target stores
		 * and acknowledges the agent: a failed import refuses the
		 * transfer, so agent and content stay at the source. */
		char why[AGD_WIRE_TEXT_MAX];

		if (agd_res_stage(m->res, msg->agent, from, msg->epoch, msg->blob[1].data,
				  msg->blob[1].len, why, sizeof why) != 0) {
			struct agd_wire_msg no;

			memset(&no, 0, sizeof no);
			no.type = AGD_MSG_REFUSE;
			no.corr = msg->corr;
			snprintf(no.agent, sizeof no.agent, "%s", msg->agent);
			no.epoch = msg->epoch;
			no.code = AGD_XFER_ERR_REFUSED;
			snprintf(no.text, sizeof no.text, "%s", why);
			send_to(m, from, &no);
			return;
		}
	}
	if (agd_xfer_input(m->xfer, from, msg, now)) {
		/* [resint] Imports of a transfer not stored, or aborted, go. */
		if (msg->type == AGD_MSG_TRANSFER || msg->type == AGD_MSG_ABORT)
			agd_res_stage_settle(m->res, msg->agent, msg->epoch);
		return;
	}
	if (agd_call_input(m->call, from, msg)) /* [call] REPLY (CALL is routed by agd_dir) */
		return;
	if (agd_dir_input(m->dir, from, msg, now))
		return;
	if (msg->type == AGD_MSG_ERROR)
		agd_log(AGD_LOG_WARN, "peer.error_reply", "from=%s code=%d text=\"%s\"", from, msg->code,
			msg->text);
	else
		agd_log(AGD_LOG_DEBUG, "peer.unhandled", "from=%s type=%s", from,
			agd_wire_type_name(msg->type));
}

/* ------------------------------------------------------- control replies */

static void answer(struct agd_mobility *m, struct agd_ctl_token **tok, int ok, struct agd_jw *w)
{
	char *body = agd_jw_take(w, NULL);

	if (*tok != NULL)
		agd_ctl_answer(m->ctl, tok, ok, body ? body : "{\"error\":\"out of memory\",\"code\":\"nomem\"}");
	free(body);
}

static void answer_error(struct agd_mobility *m, struct agd_ctl_token **tok, const char *code,
			 const char *text)
{
	struct agd_jw w;

	if (*tok == NULL)
		return;
	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	agd_jw_key(&w, "error");
	agd_jw_str(&w, text);
	agd_jw_key(&w, "code");
	agd_jw_str(&w, code);
	agd_jw_obj_end(&w);
	answer(m, tok, 0, &w);
}

/* --------------------------------------------------------- requests */

static struct req *req_find(struct agd_mobility *m, const char *id)
{
	for (struct req *r = m->reqs; r; r = r->next)
		if (strcmp(r->id, id) == 0)
			return r;
	return NULL;
}

static void req_drop(struct agd_mobility *m, struct req *r)
{
	for (struct req **pp = &m->reqs; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			if (r->tok)
				answer_error(m, &r->tok, "io", "transfer abandoned");
			free(r);
			return;
		}
}

/* Ends request r that failed before its attempt began: its client hears
 * the error, and so does the host that asked for a pull, which would
 * otherwise wait for an agent that is not coming. */
static void req_fail(struct agd_mobility *m, struct req *r, const char *code, int err,
		     const char *text)
{
	if (r->kind == AGD_KIND_PULL && agd_xfer_pull_failed(m->xfer, r->to, r->id, err, text) != 0)
		agd_log(AGD_LOG_WARN, "mobility.pull_unanswered", "agent=%s to=%s", r->id, r->to);
	answer_error(m, &r->tok, code, text);
	req_drop(m, r);
}

static void arm_poll(struct agd_mobility *m);
static void settle_pending(struct agd_mobility *m, const char *id);

/* The runtime's forget or release, once the worker that suspended the
 * agent is done with it: the runtime marks it migrating before our suspend
 * callback and keeps it on CPU through the call, and forget refuses an
 * agent on CPU, so a transfer that completes quickly retries rather than
 * freeing the agent under that worker. Returns 1 when done (or moot), 0
 * when it must wait. */
static int rt_settle_now(struct agd_mobility *m, const char *id, int forget, const char *where)
{
	enum agd_state st;
	uint64_t sw;
	int res;

	if (agd_rt_agent_state(m->rt, id, &st, &sw, &res) != 0)
		return 1;
	if (st != AGD_MIGRATING)
		return 0;
	/* The worker that suspended it may still be inside our callback (the
	 * runtime keeps it on CPU until then): forget says so, try again. */
	if (forget) {
		/* Messages queued here before it was marked migrating (it may
		 * have been suspended while running, its mailbox not empty)
		 * follow it: the store already points to where it went. */
		struct agd_msg *list = agd_rt_mbox_take_all(m->rt, id);
		int rc = agd_rt_forget(m->rt, id, where);

		while (list != NULL) {
			struct agd_msg *msg = list;
			uint64_t msgid = 0;

			list = msg->next;
			if (agd_dir_send(m->dir, id, msg->data, msg->len, where, agd_now_ms(), &msgid) != 0)
				agd_log(AGD_LOG_WARN, "mobility.message_lost", "agent=%s to=%s", id,
					where ? where : "?");
			free(msg);
		}
		return rc != AGD_ERR_STATE;
	}
	agd_rt_release(m->rt, id);
	return 1;
}

/* The runtime's call now, or at the next turn of the loop. */
static void rt_settle(struct agd_mobility *m, const char *id, int forget, const char *where)
{
	struct retry *t;

	if (rt_settle_now(m, id, forget, where))
		return;
	t = calloc(1, sizeof *t);
	if (t == NULL)
		return;
	snprintf(t->id, sizeof t->id, "%s", id);
	snprintf(t->where, sizeof t->where, "%s", where ? where : "");
	t->forget = forget;
	t->next = m->retries;
	m->retries = t;
	arm_poll(m);
}

/* Retries of rt_settle; returns whether some are left. */
static int settle_retries(struct agd_mobility *m)
{
	for (struct retry **pp = &m->retries; *pp;) {
		struct retry *t = *pp;

		if (!rt_settle_now(m, t->id, t->forget, t->where) && ++t->tries < 100000) {
			pp = &t->next;
			continue;
		}
		*pp = t->next;
		free(t);
	}
	return m->retries != NULL;
}

/* Worker thread: the runtime suspended the agent and persisted it. */
static void on_suspended(void *ud, const char *id, int rc, const uint8_t *state, size_t len,
			 struct agd_code *code)
{
	struct agd_mobility *m = ud;
	struct item *it = calloc(1, sizeof *it);
	struct self_req *q = NULL;
	uint64_t one = 1;

	(void)code;
	/* The agent's own request, if it made one (agent.migrate). */
	pthread_mutex_lock(&m->mu);
	for (struct self_req **pp = &m->selfq; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->id, id) == 0) {
			q = *pp;
			*pp = q->next;
			break;
		}
	if (q != NULL && (rc != 0 || it == NULL))
		outcome_put(m, id, 0, NULL, rc != 0 ? agd_strerror(rc) : "out of memory");
	pthread_mutex_unlock(&m->mu);
	if (q != NULL)
		agd_res_leaving(m->res, id, q->to,
				(q->flags & AGD_MOVE_CLONE) ? AGD_KIND_CLONE : AGD_KIND_PUSH); /* [mig2] */
	if (rc == 0)
		agd_res_prepare(m->res, id); /* [resint] decide, export (bounded wait) */
	if (it == NULL) {
		free(q);
		return; /* the transfer times out at the control client */
	}
	snprintf(it->id, sizeof it->id, "%s", id);
	it->rc = rc;
	if (q != NULL) {
		it->self = 1;
		snprintf(it->to, sizeof it->to, "%s", q->to);
		it->flags = q->flags;
		free(q);
	}
	if (rc == 0 && len > 0) {
		it->state = malloc(len);
		if (it->state == NULL)
			it->rc = AGD_ERR_NOMEM;
		else {
			memcpy(it->state, state, len);
			it->len = len;
		}
	}
	pthread_mutex_lock(&m->mu);
	it->next = m->items;
	m->items = it;
	pthread_mutex_unlock(&m->mu);
	if (write(m->efd, &one, sizeof one) < 0)
		agd_log(AGD_LOG_WARN, "mobility.wake_failed", "error=\"%s\"", strerror(errno));
}

/* Dispatcher: starts the transfer of a suspended agent. */
static void start_transfer(struct agd_mobility *m, struct item *it)
{
	struct req *r = req_find(m, it->id);
	struct agd_xfer_req x = { 0 };
	uint8_t *seen = NULL, *log = NULL;
	size_t seen_len = 0, log_len = 0;
	int rc;

	if (it->self && it->rc == 0) {
		/* agent.migrate/clone: the request starts here. */
		if (r != NULL || (r = calloc(1, sizeof *r)) == NULL) {
			outcome_set(m, it->id, 0, NULL, r ? "the agent is already being moved" : "out of memory");
			rt_settle(m, it->id, 0, NULL);
			return;
		}
		snprintf(r->id, sizeof r->id, "%s", it->id);
		snprintf(r->to, sizeof r->to, "%s", it->to);
		r->kind = (it->flags & AGD_MOVE_CLONE) ? AGD_KIND_CLONE : AGD_KIND_PUSH;
		r->mobility = (it->flags & AGD_MOVE_WEAK) ? AGD_MOB_WEAK : AGD_MOB_STRONG;
		r->self = 1;
		if (r->kind == AGD_KIND_CLONE) {
			uint8_t b[AGD_ID_LEN / 2];

			randombytes_buf(b, sizeof b);
			sodium_bin2hex(r->clone_id, sizeof r->clone_id, b, sizeof b);
		}
		r->next = m->reqs;
		m->reqs = r;
	}
	if (r == NULL) {
		/* Nobody asked (any more): let it run on. */
		if (it->rc == 0)
			rt_settle(m, it->id, 0, NULL);
		return;
	}
	if (it->rc != 0) {
		req_fail(m, r, "unavailable", it->rc, agd_strerror(it->rc));
		return;
	}
	agd_dir_export_seen(m->dir, it->id, &seen, &seen_len);
	/* Its log lines go with it (a clone's copy starts with them); without
	 * them (out of memory) it moves all the same. */
	agd_rt_log_export(m->rt, it->id, &log, &log_len);
	x.agent = r->id;
	x.to = r->to;
	x.kind = r->kind;
	x.mobility = r->mobility;
	x.clone_id = r->kind == AGD_KIND_CLONE ? r->clone_id : NULL;
	/* Weak mobility starts over at the entry: no state travels. */
	x.state = r->mobility == AGD_MOB_STRONG ? it->state : NULL;
	x.state_len = r->mobility == AGD_MOB_STRONG ? it->len : 0;
	x.seen = seen;
	x.seen_len = seen_len;
	x.log = log;
	x.log_len = log_len;
	x.res = agd_res_segment(m->res, r->id, &x.res_len); /* [resint] */
	rc = agd_xfer_push(m->xfer, &x, agd_now_ms());
	free(seen);
	free(log);
	if (rc != 0) {
		agd_log(AGD_LOG_WARN, "mobility.push_failed", "agent=%s to=%s error=\"%s\"", r->id, r->to,
			agd_xfer_strerror(rc));
		if (r->self)
			outcome_set(m, r->id, 0, NULL, agd_xfer_strerror(rc));
		rt_settle(m, r->id, 0, NULL);
		req_fail(m, r, "io", rc, agd_xfer_strerror(rc));
		return;
	}
	/* The original goes on now; one that cloned itself waits for the
	 * outcome (agent.clone returns the new id or an error). */
	if (r->kind == AGD_KIND_CLONE && !r->self)
		rt_settle(m, r->id, 0, NULL);
}

static void on_efd(struct agd_loop *loop, void *sock, int fd, void *ud)
{
	struct agd_mobility *m = ud;
	uint64_t n;
	struct item *list;
	struct outmsg *outs;

	if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&m->mu);
	list = m->items;
	m->items = NULL;
	outs = m->outq;
	m->outq = NULL;
	pthread_mutex_unlock(&m->mu);
	/* Oldest first: the queue is newest first. */
	for (struct outmsg *rev = NULL, *o; outs || rev;) {
		if (outs) {
			o = outs;
			outs = o->next;
			o->next = rev;
			rev = o;
			continue;
		}
		o = rev;
		rev = o->next;
		{
			uint64_t msgid = 0;

			if (agd_dir_send(m->dir, o->to, o->data, o->len, o->hint[0] ? o->hint : NULL,
					 agd_now_ms(), &msgid) != 0)
				agd_log(AGD_LOG_WARN, "mobility.send_unroutable", "agent=%s", o->to);
		}
		free(o);
	}
	while (list) {
		int k = 0;

		group_open(m);
		while (list && group_room(m, k++)) {
			struct item *it = list;

			list = it->next;
			start_transfer(m, it);
			free(it->state);
			free(it);
		}
		group_close(m);
	}
}

/* Asks the runtime to suspend agent `id` for a transfer. */
static int begin(struct agd_mobility *m, const char *id, const char *to, int kind, int mobility,
		 struct agd_ctl_token *tok, struct req **out)
{
	struct req *r;
	int rc;

	*out = NULL;
	if (req_find(m, id) != NULL)
		return AGD_ERR_STATE;
	/* The manifest says how the agent may move. A pull asks for strong
	 * by default without knowing the agent: a weak-only agent then moves
	 * weakly. A mode the manifest rules out otherwise is refused, strong
	 * included when the pull's user asked for it (AGD_MOB_STRONG_ONLY). */
	{
		int allowed, strict = mobility == AGD_MOB_STRONG_ONLY;

		if (strict)
			mobility = AGD_MOB_STRONG;
		if (agd_rt_agent_mobility(m->rt, id, &allowed) == 0 &&
		    !(allowed & (mobility == AGD_MOB_STRONG ? MIG_MOBILITY_STRONG : MIG_MOBILITY_WEAK))) {
			if (kind == AGD_KIND_PULL && !strict && (allowed & MIG_MOBILITY_WEAK))
				mobility = AGD_MOB_WEAK;
			else
				return AGD_ERR_ARG;
		}
	}
	r = calloc(1, sizeof *r);
	if (r == NULL)
		return AGD_ERR_NOMEM;
	snprintf(r->id, sizeof r->id, "%s", id);
	snprintf(r->to, sizeof r->to, "%s", to);
	r->kind = kind;
	r->mobility = mobility;
	r->tok = tok;
	r->started = agd_now_ms();
	agd_res_leaving(m->res, id, to, kind); /* [resint] */
	if (kind == AGD_KIND_CLONE) {
		uint8_t b[AGD_ID_LEN / 2];

		randombytes_buf(b, sizeof b);
		sodium_bin2hex(r->clone_id, sizeof r->clone_id, b, sizeof b);
	}
	{
		enum agd_state st;
		uint64_t sw;
		int res;

		settle_pending(m, id); /* an entry left from its last visit */
		rc = agd_rt_agent_state(m->rt, id, &st, &sw, &res);
		if (rc == AGD_ERR_NOTFOUND && agd_xfer_arriving(m->st, id)) {
			/* Committed here but not yet activated (the ACTIVATE is
			 * on its way): move it on as soon as it waits. */
			r->awaiting = 1;
			r->deadline = agd_now_ms() + 10000;
			rc = 0;
		} else {
			/* Waiting, queued or on a worker: the runtime keeps the
			 * request until the agent's next safe point. */
			rc = agd_rt_suspend(m->rt, id, on_suspended, m);
		}
	}
	if (rc != 0) {
		free(r);
		return rc;
	}
	r->next = m->reqs;
	m->reqs = r;
	*out = r;
	return 0;
}

/* Retries of forget/release that met the suspending worker still inside
 * our callback (rt_settle). */
static void awaiting_poll(struct agd_loop *loop, uint64_t id, void *ud)
{
	struct agd_mobility *m = ud;
	int more = 0;

	m->poll_timer = 0;
	if (settle_retries(m))
		more = 1;
	if (more)
		arm_poll(m);
	else
		m->poll_spins = 0;
}

/* Every millisecond, after one look at the next turn of the loop. Spinning
 * on the loop's turns stole the CPU from the very worker it waits for (on
 * two cores, a hop cost a third more CPU); nothing waits on a late forget:
 * an agent coming back first settles it (settle_pending). */
static void arm_poll(struct agd_mobility *m)
{
	if (m->poll_timer == 0)
		m->poll_timer = agd_loop_add_timer(m->loop, m->poll_spins++ < 1 ? 0 : 1, 0, awaiting_poll, m);
}

/* Finishes at once a forget still waiting for the worker that suspended
 * agent `id` here (rt_settle): the agent may be coming back before this
 * host let go of its last visit, and the runtime must not hold the old
 * entry when it is admitted again (or suspended for the next move). The
 * worker is past our callback within microseconds unless it was
 * preempted, so a bounded wait suffices. */
static void settle_pending(struct agd_mobility *m, const char *id)
{
	uint64_t give_up = 0;
	int settled;

	for (struct retry **pp = &m->retries; *pp;) {
		struct retry *t = *pp;

		if (strcmp(t->id, id) != 0) {
			pp = &t->next;
			continue;
		}
		if (give_up == 0)
			give_up = agd_now_ms() + 2000;
		while (!(settled = rt_settle_now(m, t->id, t->forget, t->where))) {
			enum agd_state st;
			uint64_t sw;
			int res;

			/* Only a worker still inside our callback is worth
			 * waiting for; anything else stays with the retries. */
			if (agd_now_ms() >= give_up || agd_rt_agent_state(m->rt, t->id, &st, &sw, &res) != 0 ||
			    st != AGD_MIGRATING)
				break;
			sched_yield();
		}
		if (!settled) {
			pp = &t->next;
			continue;
		}
		*pp = t->next;
		free(t);
	}
}

/* ----------------------------------------------------- xfer callbacks */

static int x_segment_in(void *ud, const uint8_t *bytes, size_t len, uint8_t hash[AGD_WIRE_HASH_LEN],
			char *why, size_t why_len)
{
	struct agd_mobility *m = ud;
	struct agd_code *code = NULL;
	int rc = agd_rt_code_add(m->rt, bytes, len, &code, why, why_len);

	if (rc != 0)
		return rc;
	memcpy(hash, code->hash, AGD_WIRE_HASH_LEN);
	agd_code_unref(m->rt, &code);
	return 0;
}

static struct agd_code *code_for(struct agd_mobility *m, const uint8_t hash[32])
{
	struct agd_code *code = agd_rt_code_find(m->rt, hash);
	uint8_t *bytes = NULL;
	size_t len = 0;
	char why[256];

	if (code != NULL)
		return code;
	/* Cached in the store, not (yet) in the runtime's memory. */
	if (agd_store_segment_get(m->st, hash, &bytes, &len) == 0 &&
	    agd_rt_code_add(m->rt, bytes, len, &code, why, sizeof why) != 0) {
		agd_log(AGD_LOG_WARN, "mobility.code_refused", "error=\"%s\"", why);
		code = NULL;
	}
	free(bytes);
	return code;
}

static int x_activate(void *ud, const struct agd_xfer_arrival *a)
{
	struct agd_mobility *m = ud;
	struct agd_code *code = code_for(m, a->segment);
	struct agd_admit in;
	char err[256] = "";
	int rc;

	if (code == NULL) {
		agd_log(AGD_LOG_ERROR, "mobility.admit_failed", "agent=%s error=\"code not available\"", a->id);
		return AGD_ERR_NOTFOUND;
	}
	settle_pending(m, a->id);
	memset(&in, 0, sizeof in);
	in.id = a->id;
	in.home = a->home;
	in.epoch = (uint32_t)a->epoch;
	in.activation = m->cfg->activation;
	in.state = a->mobility == AGD_MOB_STRONG && a->state_len ? a->state : NULL;
	in.state_len = in.state ? a->state_len : 0;
	in.log = a->log;
	in.log_len = a->log_len;
	in.stored = 1; /* the activation committed its row and log (agd_xfer.h) */
	agd_res_arrive(m->res, a->id, a->from, a->res, a->res_len); /* [resint] import, rebind */
	rc = agd_rt_admit(m->rt, &in, code, err, sizeof err);
	agd_code_unref(m->rt, &code);
	if (rc != 0) {
		agd_log(AGD_LOG_ERROR, "mobility.admit_failed", "agent=%s error=\"%s\"", a->id, err);
		return rc;
	}
	agd_dir_import_seen(m->dir, a->id, a->seen, a->seen_len);
	agd_dir_arrived(m->dir, a->id, a->home, a->epoch);
	crash_point(m, "activated");
	{
		struct req *r = req_find(m, a->id);

		/* A move asked while it was arriving: the runtime keeps a
		 * suspend asked while it restores the agent. */
		if (r != NULL && r->awaiting == 1) {
			int rc2;

			r->awaiting = 0;
			rc2 = agd_rt_suspend(m->rt, r->id, on_suspended, m);
			if (rc2 != 0)
				req_fail(m, r, agd_errname(rc2), rc2, agd_strerror(rc2));
		}
	}
	agd_dir_settled(m->dir, a->id, agd_now_ms());
	return 0;
}

static void x_done(void *ud, const char *agent, int rc, const char *host, uint64_t epoch,
		   const char *why)
{
	struct agd_mobility *m = ud;
	struct req *r = req_find(m, agent);
	struct agd_jw w;

	agd_res_left(m->res, agent, rc, host); /* [resint] commit moves, bind counts */
	if (r != NULL && r->self) {
		/* Before the release: the agent reads it when it resumes. */
		if (rc != 0 || r->kind == AGD_KIND_CLONE)
			outcome_set(m, agent, rc == 0, r->kind == AGD_KIND_CLONE ? r->clone_id : NULL,
				    why && why[0] ? why : "transfer failed");
		if (r->kind == AGD_KIND_CLONE)
			rt_settle(m, agent, 0, NULL);
	}
	/* A committed move is answered before the runtime lets go of the
	 * agent (destroying its VM costs more than the rest of this): the
	 * client's next step, often a push from the target, need not wait.
	 * Its next request here is read after this turn, forget done. */
	if (r != NULL && rc == 0 && r->tok) {
		agd_jw_init(&w);
		agd_jw_obj_begin(&w);
		agd_jw_key(&w, "agent");
		agd_jw_str(&w, agent);
		agd_jw_key(&w, "to");
		agd_jw_str(&w, host);
		agd_jw_key(&w, "epoch");
		agd_jw_int(&w, (long long)epoch);
		if (r->kind == AGD_KIND_CLONE) {
			agd_jw_key(&w, "clone");
			agd_jw_str(&w, r->clone_id);
		}
		agd_jw_obj_end(&w);
		answer(m, &r->tok, 1, &w);
	}
	if (r == NULL || r->kind != AGD_KIND_CLONE) {
		if (rc == 0) {
			rt_settle(m, agent, 1, host);
			agd_dir_forget(m->dir, agent);
		} else {
			rt_settle(m, agent, 0, NULL);
		}
	}
	agd_dir_settled(m->dir, agent, agd_now_ms());
	if (r == NULL)
		return;
	if (rc != 0)
		answer_error(m, &r->tok, "io", why);
	req_drop(m, r);
}

static int x_pull(void *ud, const char *agent, const char *to, int mobility, char *why,
		  size_t why_len)
{
	struct agd_mobility *m = ud;
	struct req *r;
	int rc = begin(m, agent, to, AGD_KIND_PULL, mobility, NULL, &r);

	if (rc == AGD_ERR_ARG) /* begin's only one: the manifest rules the mode out */
		snprintf(why, why_len, "the agent's manifest does not allow %s mobility",
			 mobility == AGD_MOB_WEAK ? "weak" : "strong");
	return rc;
}

/* ------------------------------------------------------ dir callbacks */

static int d_deliver(void *ud, const char *agent, const char *from_host, const uint8_t *data,
		     size_t len)
{
	struct agd_mobility *m = ud;
	enum agd_state st;
	uint64_t sw;
	int res, rc;

	if (req_find(m, agent) != NULL)
		return AGD_DIR_INFLIGHT;
	rc = agd_rt_send(m->rt, "", agent, data, len);
	if (rc == 0)
		return 0;
	if (rc == AGD_ERR_STATE && agd_rt_agent_state(m->rt, agent, &st, &sw, &res) == 0 &&
	    st == AGD_MIGRATING)
		return AGD_DIR_INFLIGHT;
	return AGD_DIR_REFUSED;
}

static struct agd_ctl_token *waiter_take(struct agd_mobility *m, uint64_t id)
{
	for (struct waiter **pp = &m->waiters; *pp; pp = &(*pp)->next)
		if ((*pp)->id == id) {
			struct waiter *w = *pp;
			struct agd_ctl_token *tok = w->tok;

			*pp = w->next;
			free(w);
			return tok;
		}
	return NULL;
}

static void answer_sent(struct agd_mobility *m, struct agd_ctl_token **tok, const char *agent,
			int code, const char *host)
{
	struct agd_jw w;

	if (code != AGD_DIR_HERE) {
		answer_error(m, tok, code == AGD_DIR_NOTFOUND || code == AGD_DIR_TOOFAR ? "notfound"
				     : code == AGD_DIR_ENDED ? "state"
				     : code == AGD_DIR_REFUSED ? "full" : "io",
			     agd_dir_strerror(code));
		return;
	}
	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	agd_jw_key(&w, "id");
	agd_jw_str(&w, agent);
	agd_jw_key(&w, "queued");
	agd_jw_bool(&w, 1);
	agd_jw_key(&w, "host");
	agd_jw_str(&w, host ? host : "");
	agd_jw_obj_end(&w);
	answer(m, tok, 1, &w);
}

static void d_sent(void *ud, uint64_t msgid, const char *agent, int code, const char *host)
{
	struct agd_mobility *m = ud;
	struct agd_ctl_token *tok = waiter_take(m, msgid);

	if (tok == NULL) {
		/* Answered inside agd_dir_send, before cmd_send knew the id. */
		m->sent_id = msgid;
		m->sent_code = code;
		snprintf(m->sent_host, sizeof m->sent_host, "%s", host ? host : "");
		return;
	}
	answer_sent(m, &tok, agent, code, host);
}

/* [call] a CALL for an agent here: held like a DELIVER while it moves. */
static int d_call(void *ud, const char *agent, const char *caller_host, uint64_t corr,
		  const char *method, const uint8_t *data, size_t len)
{
	struct agd_mobility *m = ud;

	if (m->call == NULL)
		return AGD_DIR_REFUSED;
	if (req_find(m, agent) != NULL)
		return AGD_DIR_INFLIGHT;
	return agd_call_deliver(m->call, agent, caller_host, corr, method, data, len);
}

/* [call] how a CALL this host sent was delivered */
static void d_called(void *ud, uint64_t corr, const char *agent, int code, const char *host)
{
	struct agd_mobility *m = ud;

	if (m->call != NULL)
		agd_call_sent(m->call, corr, agent, code, host);
}

static void d_located(void *ud, uint64_t corr, const char *agent, int code, const char *host,
		      uint64_t epoch)
{
	struct agd_mobility *m = ud;
	struct agd_ctl_token *tok = waiter_take(m, corr);
	struct agd_jw w;

	if (tok == NULL)
		return;
	if (code != AGD_DIR_HERE) {
		answer_error(m, &tok, code == AGD_DIR_TIMEOUT ? "io" : "notfound", agd_dir_strerror(code));
		return;
	}
	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	agd_jw_key(&w, "agent");
	agd_jw_str(&w, agent);
	agd_jw_key(&w, "host");
	agd_jw_str(&w, host);
	agd_jw_key(&w, "epoch");
	agd_jw_int(&w, (long long)epoch);
	agd_jw_obj_end(&w);
	answer(m, &tok, 1, &w);
}

/* ------------------------------------------------------ control commands */

/* The mode of a move: the one asked for, which the agent's manifest must
 * allow, or else the strongest it allows. */
static int mode_arg(struct agd_ctl_req *req, int allowed, int *mobility)
{
	const char *mode = NULL;

	if (agd_json_get_str(req->doc, req->args, "mode", &mode) != 0) {
		*mobility = (allowed & MIG_MOBILITY_STRONG) ? AGD_MOB_STRONG : AGD_MOB_WEAK;
		return 0;
	}
	if (strcmp(mode, "weak") == 0)
		*mobility = AGD_MOB_WEAK;
	else if (strcmp(mode, "strong") == 0)
		*mobility = AGD_MOB_STRONG;
	else {
		snprintf(req->err, sizeof req->err, "mode must be \"weak\" or \"strong\"");
		return AGD_ERR_ARG;
	}
	if (!(allowed & (*mobility == AGD_MOB_STRONG ? MIG_MOBILITY_STRONG : MIG_MOBILITY_WEAK))) {
		snprintf(req->err, sizeof req->err, "the agent's manifest allows only %s mobility",
			 mig_mobility_name((enum mig_mobility)allowed));
		return AGD_ERR_ARG;
	}
	return 0;
}

static int move_cmd(struct agd_mobility *m, struct agd_ctl_req *req, int kind)
{
	const char *id = NULL, *to = NULL, *ep = NULL;
	struct agd_ctl_token *tok;
	struct req *r;
	int mobility, allowed, rc;

	if (agd_json_get_str(req->doc, req->args, "agent", &id) != 0 ||
	    agd_json_get_str(req->doc, req->args, "to", &to) != 0 || strlen(to) > AGD_WIRE_NAME_MAX ||
	    strlen(id) != AGD_ID_LEN) {
		snprintf(req->err, sizeof req->err, "needs \"agent\" (an id here) and \"to\" (a host)");
		return AGD_ERR_ARG;
	}
	if (agd_rt_agent_mobility(m->rt, id, &allowed) != 0)
		allowed = MIG_MOBILITY_BOTH; /* not here: begin() says so */
	if ((rc = mode_arg(req, allowed, &mobility)) != 0)
		return rc;
	if (strcmp(to, m->cfg->host) == 0) {
		snprintf(req->err, sizeof req->err, "agent %s is on %s already", id, to);
		return AGD_ERR_ARG;
	}
	if (agd_json_get_str(req->doc, req->args, "to_endpoint", &ep) == 0)
		learn_endpoint(m, to, ep);
	if ((rc = ensure_route(m, to, 0)) != 0 && !agd_peer_known(m->peer, to)) {
		if (rc == AGD_PEER_ERR_FULL) /* [bal] */
			snprintf(req->err, sizeof req->err,
				 "no route to host %s: this host dials at most %u peers ([peer] max_peers)", to,
				 m->cfg->max_peers);
		else
			snprintf(req->err, sizeof req->err,
				 "no route to host %s (endpoint unknown or host not trusted)", to);
		return AGD_ERR_UNAVAILABLE;
	}
	tok = agd_ctl_defer(req);
	if (tok == NULL)
		return AGD_ERR_NOMEM;
	rc = begin(m, id, to, kind, mobility, tok, &r);
	if (rc != 0) {
		char text[128];

		snprintf(text, sizeof text, "cannot suspend agent %s: %s", id, agd_strerror(rc));
		answer_error(m, &tok, agd_errname(rc), text);
	}
	return AGD_CTL_DEFERRED;
}

static int cmd_push(void *ud, struct agd_ctl_req *req, struct agd_jw *w)
{
	return move_cmd(ud, req, AGD_KIND_PUSH);
}

static int cmd_clone(void *ud, struct agd_ctl_req *req, struct agd_jw *w)
{
	return move_cmd(ud, req, AGD_KIND_CLONE);
}

static int cmd_pull(void *ud, struct agd_ctl_req *req, struct agd_jw *w)
{
	struct agd_mobility *m = ud;
	const char *id = NULL, *from = NULL, *ep = NULL;
	int mobility, rc;

	if (agd_json_get_str(req->doc, req->args, "agent", &id) != 0 ||
	    agd_json_get_str(req->doc, req->args, "from", &from) != 0 ||
	    strlen(from) > AGD_WIRE_NAME_MAX || strlen(id) > AGD_WIRE_NAME_MAX) {
		snprintf(req->err, sizeof req->err, "needs \"agent\" and \"from\" (the host it is on)");
		return AGD_ERR_ARG;
	}
	/* The agent is on `from`, which holds its manifest and settles the
	 * mode (begin()): without one, strong if it may, else weak; an
	 * explicit "strong" is strong or refused there. */
	if ((rc = mode_arg(req, MIG_MOBILITY_BOTH, &mobility)) != 0)
		return rc;
	if (mobility == AGD_MOB_STRONG && agd_json_get(req->doc, req->args, "mode") != NULL)
		mobility = AGD_MOB_STRONG_ONLY;
	if (agd_json_get_str(req->doc, req->args, "from_endpoint", &ep) == 0)
		learn_endpoint(m, from, ep);
	ensure_route(m, from, 0);
	rc = agd_xfer_pull(m->xfer, from, id, mobility);
	if (rc != 0) {
		snprintf(req->err, sizeof req->err, "cannot ask %s: %s", from, agd_xfer_strerror(rc));
		return AGD_ERR_UNAVAILABLE;
	}
	agd_jw_key(w, "agent");
	agd_jw_str(w, id);
	agd_jw_key(w, "from");
	agd_jw_str(w, from);
	agd_jw_key(w, "requested");
	agd_jw_bool(w, 1);
	return 0;
}

static const char *const kind_names[] = { [AGD_KIND_PUSH] = "push", [AGD_KIND_PULL] = "pull",
					   [AGD_KIND_CLONE] = "clone" };

static const char *kind_name(int kind)
{
	return kind >= 0 && kind < (int)(sizeof kind_names / sizeof kind_names[0]) &&
			       kind_names[kind] != NULL
		       ? kind_names[kind]
		       : "move";
}

/* One move under way at this source: the transfer protocol's phase once
 * the agent is suspended, "suspending" before (waiting for its next safe
 * point), "awaiting" while it has not yet been activated here. */
static void transfer_json(struct agd_mobility *m, const struct req *r, uint64_t now,
			  struct agd_jw *w)
{
	struct agd_xfer_info xi;
	int have = agd_xfer_info(m->xfer, r->id, now, &xi) == 0;

	agd_jw_obj_begin(w);
	agd_jw_key(w, "agent");
	agd_jw_str(w, r->id);
	agd_jw_key(w, "to");
	agd_jw_str(w, r->to);
	agd_jw_key(w, "kind");
	agd_jw_str(w, kind_name(r->kind));
	agd_jw_key(w, "mobility");
	agd_jw_str(w, r->mobility == AGD_MOB_WEAK ? "weak" : "strong");
	agd_jw_key(w, "phase");
	agd_jw_str(w, have ? xi.phase : r->awaiting ? "awaiting" : "suspending");
	agd_jw_key(w, "bytes");
	agd_jw_int(w, have ? (long long)xi.bytes : 0);
	if (have) {
		agd_jw_key(w, "epoch");
		agd_jw_int(w, (long long)xi.epoch);
	}
	agd_jw_key(w, "elapsed_ms");
	agd_jw_int(w, (long long)(now > r->started ? now - r->started : 0));
	agd_jw_obj_end(w);
}

/* This host's transfer counts, as the object `key`. */
static void counts_json(const struct agd_mobility *m, struct agd_jw *w, const char *key)
{
	struct agd_xfer_counts c;

	agd_xfer_counts(m->xfer, &c);
	agd_jw_key(w, key);
	agd_jw_obj_begin(w);
	agd_jw_key(w, "moved_out");
	agd_jw_int(w, (long long)c.moved_out);
	agd_jw_key(w, "cloned_out");
	agd_jw_int(w, (long long)c.cloned_out);
	agd_jw_key(w, "failed");
	agd_jw_int(w, (long long)c.failed);
	agd_jw_key(w, "arrived");
	agd_jw_int(w, (long long)c.arrived);
	agd_jw_obj_end(w);
}

/* `status` gains "transfers": the same counts. */
static void status_json(void *ud, struct agd_jw *w)
{
	struct agd_mobility *m = ud;

	if (m->xfer != NULL)
		counts_json(m, w, "transfers");
}

/* `transfers {"agent"?}`: the moves under way from this host, and what
 * became of the pulls it asked for (agentctl's progress display and its
 * wait for a pulled agent), and this host's counts. */
static int cmd_transfers(void *ud, struct agd_ctl_req *req, struct agd_jw *w)
{
	struct agd_mobility *m = ud;
	const char *id = NULL;
	uint64_t now = agd_now_ms();
	struct agd_xfer_pull_info pi;

	agd_json_get_str(req->doc, req->args, "agent", &id);
	agd_jw_key(w, "host");
	agd_jw_str(w, m->cfg->host);
	agd_jw_key(w, "transfers");
	agd_jw_arr_begin(w);
	for (const struct req *r = m->reqs; r; r = r->next)
		if (id == NULL || strcmp(r->id, id) == 0)
			transfer_json(m, r, now, w);
	agd_jw_arr_end(w);
	counts_json(m, w, "counts");
	if (id != NULL && agd_xfer_pull_info(m->xfer, id, now, &pi) == 0) {
		agd_jw_key(w, "pull");
		agd_jw_obj_begin(w);
		agd_jw_key(w, "from");
		agd_jw_str(w, pi.from);
		agd_jw_key(w, "state");
		agd_jw_str(w, agd_xfer_pull_state_name(pi.state));
		if (pi.state == AGD_XFER_PULL_REFUSED) {
			agd_jw_key(w, "why");
			agd_jw_str(w, pi.why);
		}
		agd_jw_key(w, "elapsed_ms");
		agd_jw_int(w, (long long)pi.elapsed_ms);
		agd_jw_obj_end(w);
	}
	return 0;
}

static int cmd_locate(void *ud, struct agd_ctl_req *req, struct agd_jw *w)
{
	struct agd_mobility *m = ud;
	const char *id = NULL, *hint = NULL;
	struct waiter *wt;
	uint64_t corr;
	int rc;

	if (agd_json_get_str(req->doc, req->args, "agent", &id) != 0 || strlen(id) > AGD_WIRE_NAME_MAX) {
		snprintf(req->err, sizeof req->err, "needs \"agent\"");
		return AGD_ERR_ARG;
	}
	agd_json_get_str(req->doc, req->args, "hint", &hint);
	wt = calloc(1, sizeof *wt);
	if (wt == NULL)
		return AGD_ERR_NOMEM;
	wt->tok = agd_ctl_defer(req);
	if (wt->tok == NULL) {
		free(wt);
		return AGD_ERR_NOMEM;
	}
	wt->next = m->waiters;
	m->waiters = wt;
	rc = agd_dir_locate(m->dir, id, hint, agd_now_ms(), &corr);
	if (rc != 0) {
		struct agd_ctl_token *tok = wt->tok;

		m->waiters = wt->next;
		free(wt);
		answer_error(m, &tok, "notfound", agd_dir_strerror(rc));
	} else {
		wt->id = corr;
	}
	return AGD_CTL_DEFERRED;
}

/* `send` through the directory: delivered wherever the agent is, held while
 * it is in flight, exactly once; answered when delivered. Replaces the
 * runtime's local-only `send` when the peer channel is on. */
static int cmd_send(void *ud, struct agd_ctl_req *req, struct agd_jw *w)
{
	struct agd_mobility *m = ud;
	const char *id = NULL, *hint = NULL;
	const struct agd_json_val *msg;
	struct mig_buf buf = { 0 };
	struct agd_ctl_token *tok;
	struct waiter *wt;
	uint64_t msgid = 0;
	int rc;

	if ((agd_json_get_str(req->doc, req->args, "agent", &id) != 0 &&
	     agd_json_get_str(req->doc, req->args, "id", &id) != 0) || strlen(id) > AGD_WIRE_NAME_MAX) {
		snprintf(req->err, sizeof req->err, "missing \"agent\" (an agent id)");
		return AGD_ERR_ARG;
	}
	msg = agd_json_get(req->doc, req->args, "msg");
	if (msg == NULL) {
		snprintf(req->err, sizeof req->err, "missing \"msg\"");
		return AGD_ERR_ARG;
	}
	agd_json_get_str(req->doc, req->args, "hint", &hint);
	rc = agd_msg_from_json(req->doc, msg, &buf, req->err, sizeof req->err);
	if (rc != 0)
		return rc;
	wt = calloc(1, sizeof *wt);
	tok = wt ? agd_ctl_defer(req) : NULL;
	if (tok == NULL) {
		free(wt);
		agd_buf_free(&buf);
		return AGD_ERR_NOMEM;
	}
	m->sent_id = 0;
	rc = agd_dir_send(m->dir, id, buf.data, buf.len, hint, agd_now_ms(), &msgid);
	agd_buf_free(&buf);
	if (rc != 0) {
		free(wt);
		answer_error(m, &tok, "notfound", "no agent by that id here, and no directory to ask");
	} else if (m->sent_id == msgid) {
		free(wt);
		answer_sent(m, &tok, id, m->sent_code, m->sent_host);
	} else {
		wt->id = msgid;
		wt->tok = tok;
		wt->next = m->waiters;
		m->waiters = wt;
	}
	return AGD_CTL_DEFERRED;
}

/* ------------------------------------------------------------- timer */

static void on_timer(struct agd_loop *loop, uint64_t id, void *ud)
{
	struct agd_mobility *m = ud;
	uint64_t now = agd_now_ms();

	agd_xfer_tick(m->xfer, now);
	agd_dir_tick(m->dir, now);
	if (m->call != NULL)
		agd_call_tick(m->call, now); /* [call] */
	agd_hosts_tick(m->reg, now);  /* [bal] */
	agd_balance_tick(m->bal, now); /* [bal] */
	if (m->overflow)
		agd_peer_poll(m->peer, 0); /* [bal] DEALERs the loop cannot watch */
	for (struct req *r = m->reqs, *n; r; r = n) {
		n = r->next;
		if (r->awaiting && r->deadline <= now)
			req_fail(m, r, "notfound", AGD_ERR_NOTFOUND, "the agent did not arrive here in time");
	}
	if (settle_retries(m))
		arm_poll(m);
}

/* ------------------------------------- [bal] balancing, host registry */

static int b_pull(void *ud, const char *host, const char *agent)
{
	struct agd_mobility *m = ud;

	ensure_route(m, host, 0);
	/* Strong: the balancer offers only agents that may move so; a busy
	 * agent moved weakly would start over. */
	return agd_xfer_pull(m->xfer, host, agent, AGD_MOB_STRONG) == 0 ? 0 : AGD_ERR_UNAVAILABLE;
}

/* Trusted hosts this one can reach: an endpoint is known (config, HELLO,
 * registry) or they have talked to us. */
static size_t b_peers(void *ud, char (*names)[AGD_WIRE_NAME_MAX + 1], size_t max)
{
	struct agd_mobility *m = ud;
	size_t n = m->hosts ? agd_trust_count(m->hosts) : 0, k = 0;

	for (size_t i = 0; i < n && k < max; i++) {
		char name[MIG_KEY_NAME_MAX + 1];

		if (agd_trust_key(m->hosts, i, NULL, NULL, name) != 0 || name[0] == '\0' ||
		    strlen(name) > AGD_WIRE_NAME_MAX || strcmp(name, m->cfg->host) == 0)
			continue;
		/* Past max_peers only hosts already dialled or heard from:
		 * every round would otherwise log the cap again. */
		if (agd_peer_known(m->peer, name) ||
		    (m->ndialled < m->cfg->max_peers && ensure_route(m, name, 0) == 0))
			snprintf(names[k++], AGD_WIRE_NAME_MAX + 1, "%s", name);
	}
	return k;
}

static void h_learn(void *ud, const char *host, const char *endpoint)
{
	learn_endpoint(ud, host, endpoint);
}

static int h_key(void *ud, const char *host, char hex[AGD_HOSTS_KEY_HEX + 1])
{
	struct agd_mobility *m = ud;
	size_t n = m->hosts ? agd_trust_count(m->hosts) : 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t pk[MIG_KEY_PUBLIC_LEN];
		char name[MIG_KEY_NAME_MAX + 1];

		if (agd_trust_key(m->hosts, i, pk, NULL, name) == 0 && strcmp(name, host) == 0) {
			sodium_bin2hex(hex, AGD_HOSTS_KEY_HEX + 1, pk, sizeof pk);
			return 0;
		}
	}
	return -1;
}

static int cmd_hosts(void *ud, struct agd_ctl_req *req, struct agd_jw *w)
{
	struct agd_mobility *m = ud;

	agd_hosts_json(m->reg, agd_now_ms(), w);
	return 0;
}

size_t agd_mobility_hosts(struct agd_rt *rt, char (*names)[AGD_WIRE_NAME_MAX + 1], size_t max)
{
	struct agd_mobility *m;
	size_t n = 0;

	pthread_mutex_lock(&reg_mu);
	m = reg_get(rt);
	if (m != NULL)
		n = agd_hosts_names(m->reg, names, max);
	pthread_mutex_unlock(&reg_mu);
	return n;
}

/* -------------------------------------------------------- attach/detach */

static int load_keys(struct agd_mobility *m, uint8_t pub[32], uint8_t *sec, char *err, size_t err_len)
{
	struct mig_key *key = NULL;
	struct mig_error merr;
	char why[AGD_TRUST_WHY_MAX];
	size_t n;
	int rc;

	rc = mig_key_load(m->cfg->host_key, &key, &merr);
	if (rc != 0) {
		snprintf(err, err_len, "host key %s: %s", m->cfg->host_key, merr.msg);
		return AGD_ERR_UNTRUSTED;
	}
	rc = mig_key_curve_public(mig_key_public(key), pub) | mig_key_curve_secret(key, sec);
	mig_key_destroy(&key);
	if (rc != 0) {
		snprintf(err, err_len, "host key %s has no X25519 form", m->cfg->host_key);
		return AGD_ERR_UNTRUSTED;
	}
	rc = agd_trust_load(m->cfg->trusted_hosts, &m->hosts, why, sizeof why);
	if (rc != 0) {
		snprintf(err, err_len, "trusted hosts: %s", why);
		return AGD_ERR_UNTRUSTED;
	}
	n = agd_trust_count(m->hosts);
	for (size_t i = 0; i < n; i++) {
		uint8_t curve[AGD_PEER_KEY_LEN];
		char name[MIG_KEY_NAME_MAX + 1];

		if (agd_trust_key(m->hosts, i, NULL, curve, name) != 0 || name[0] == '\0')
			continue;
		if (agd_zap_trust(m->zap, AGD_ZAP_DOMAIN_PEER, curve, name) != 0)
			agd_log(AGD_LOG_WARN, "peer.trust_failed", "host=%s", name);
	}
	return 0;
}

int agd_mobility_attach(struct agd_server *srv, const struct agd_config *cfg,
			struct agd_mobility **out, char *err, size_t err_len)
{
	struct agd_mobility *m;
	struct agd_peer_cfg pc = { 0 };
	struct agd_xfer_cfg xc = { 0 };
	struct agd_dir_cfg dc = { 0 };
	static const struct agd_xfer_ops xops = { send_to, x_segment_in, x_activate, x_done, x_pull };
	static const struct agd_dir_ops dops = { send_to, d_deliver, d_sent, d_located };
	static const struct agd_dir_call_ops cops = { d_call, d_called }; /* [call] */
	uint8_t pub[32], *sec = NULL;
	void *socks[AGD_PEER_MAX + 1];
	size_t ns;
	const char *crash = getenv("AGENTD_TEST_CRASH_AT");
	const char *pause = getenv("AGENTD_TEST_PAUSE_AFTER");
	const char *fail_group = getenv("AGENTD_TEST_FAIL_GROUP_AT");
	int rc;

	*out = NULL;
	if (cfg->peer_endpoint[0] == '\0')
		return 0;
	m = calloc(1, sizeof *m);
	if (m == NULL)
		return AGD_ERR_NOMEM;
	m->srv = srv;
	m->cfg = cfg;
	m->rt = agd_server_rt(srv);
	m->loop = agd_server_loop(srv);
	m->ctl = agd_server_ctl(srv);
	m->efd = -1;
	pthread_mutex_init(&m->mu, NULL);
	if (crash)
		snprintf(m->crash_at, sizeof m->crash_at, "%s", crash);
	if (fail_group)
		snprintf(m->fail_group_at, sizeof m->fail_group_at, "%s", fail_group);
	if (pause)
		snprintf(m->pause_after, sizeof m->pause_after, "%s", pause);

	/* The runtime's handle: the store is open private to this process. */
	m->st = agd_rt_store(m->rt);
	if (m->st == NULL) {
		snprintf(err, err_len, "no store: mobility needs the daemon's data directory");
		rc = AGD_ERR_STORE;
		goto fail;
	}
	rc = agd_zap_new(agd_server_zctx(srv), &m->zap);
	if (rc != 0 || (rc = agd_zap_start(m->zap)) != 0) {
		snprintf(err, err_len, "ZAP handler: %s", agd_zap_strerror(rc));
		rc = AGD_ERR_IO;
		goto fail;
	}
	sec = sodium_malloc(32);
	if (sec == NULL) {
		rc = AGD_ERR_NOMEM;
		goto fail;
	}
	rc = load_keys(m, pub, sec, err, err_len);
	if (rc != 0)
		goto fail;
	pc.host = cfg->host;
	pc.bind = cfg->peer_endpoint;
	pc.fd = cfg->peer_fd;
	pc.public_key = pub;
	pc.secret_key = sec;
	rc = agd_peer_new(agd_server_zctx(srv), &pc, on_peer_msg, m, &m->peer);
	sodium_free(sec); /* wipes: the peer keeps its own copy */
	sec = NULL;
	if (rc != 0) {
		snprintf(err, err_len, "peer endpoint %s: %s", cfg->peer_endpoint, agd_peer_strerror(rc));
		rc = AGD_ERR_IO;
		goto fail;
	}
	agd_peer_on_hello(m->peer, on_hello, m);
	ns = agd_peer_sockets(m->peer, socks, AGD_PEER_MAX + 1);
	for (size_t i = 0; i < ns && i <= AGD_PEER_MAX; i++)
		agd_loop_add_socket(m->loop, socks[i], on_sock, m);

	xc.host = cfg->host;
	xc.store = m->st;
	rc = agd_xfer_new(&xc, &xops, m, &m->xfer);
	if (rc != 0) {
		snprintf(err, err_len, "transfer: %s", agd_xfer_strerror(rc));
		rc = AGD_ERR_NOMEM;
		goto fail;
	}
	agd_xfer_set_options(m->xfer, cfg->durability ? AGD_XFER_OPT_CRASH_DURABLE : 0);
	dc.host = cfg->host;
	dc.directory = cfg->directory[0] ? cfg->directory : NULL;
	dc.store = m->st;
	rc = agd_dir_new(&dc, &dops, m, &m->dir);
	if (rc != 0) {
		snprintf(err, err_len, "directory: %s", agd_dir_strerror(rc));
		rc = AGD_ERR_NOMEM;
		goto fail;
	}
	/* [bal] The peers the config names, and where the directory listens:
	 * routes before anyone has pushed or said HELLO. */
	for (size_t i = 0; i < cfg->peers.n; i++)
		learn_endpoint(m, cfg->peers.kv[i].key, cfg->peers.kv[i].value);
	if (cfg->directory[0] && cfg->directory_endpoint[0])
		learn_endpoint(m, cfg->directory, cfg->directory_endpoint);
	{
		static const struct agd_balance_ops bops = { send_to, b_pull, b_peers };
		static const struct agd_hosts_ops hops = { send_to, h_learn, h_key };

		if (agd_balance_new(cfg, m->rt, &bops, m, &m->bal) != 0 ||
		    agd_hosts_new(cfg, agd_peer_endpoint(m->peer), &hops, m, &m->reg) != 0) {
			snprintf(err, err_len, "balance/hosts: out of memory");
			rc = AGD_ERR_NOMEM;
			goto fail;
		}
	}
	/* Before the runtime loads its agents: interrupted attempts resume
	 * here, arrivals wait for their source's word. */
	rc = agd_xfer_recover(m->xfer, agd_now_ms());
	if (rc < 0)
		agd_log(AGD_LOG_WARN, "mobility.recover_failed", "error=\"%s\"", agd_xfer_strerror(rc));
	else if (rc > 0)
		agd_log(AGD_LOG_INFO, "mobility.recovered", "arriving=%d", rc);

	m->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (m->efd < 0 || agd_loop_add_fd(m->loop, m->efd, on_efd, m) != 0) {
		snprintf(err, err_len, "eventfd: %s", strerror(errno));
		rc = AGD_ERR_IO;
		goto fail;
	}
	m->timer = agd_loop_add_timer(m->loop, TICK_MS, 1, on_timer, m);
	if (m->timer == 0) {
		rc = AGD_ERR_NOMEM;
		goto fail;
	}
	agd_ctl_register(m->ctl, "push", cmd_push, m);
	agd_ctl_register(m->ctl, "pull", cmd_pull, m);
	agd_ctl_register(m->ctl, "clone", cmd_clone, m);
	agd_ctl_register(m->ctl, "locate", cmd_locate, m);
	agd_ctl_register(m->ctl, "transfers", cmd_transfers, m);
	agd_server_on_status(m->srv, status_json, m);
	agd_ctl_register(m->ctl, "send", cmd_send, m);
	if (agd_call_new(m->rt, m->loop, m->ctl, cfg->host, m->dir, send_to, m, &m->call) != 0) /* [call] */
		agd_log(AGD_LOG_WARN, "call.unavailable", "host=%s", cfg->host);
	else
		agd_dir_set_call_ops(m->dir, &cops);
	agd_ctl_register(m->ctl, "hosts", cmd_hosts, m); /* [bal] */
	if (agd_res_new(m->rt, m->loop, m->ctl, cfg, send_to, m, &m->res) != 0) /* [resint] */
		agd_log(AGD_LOG_WARN, "res.glue_failed", "host=%s", cfg->host);
	agd_log(AGD_LOG_INFO, "peer.listen", "host=%s endpoint=%s trusted_hosts=%zu", cfg->host,
		agd_peer_endpoint(m->peer), agd_trust_count(m->hosts));
	reg_set(m->rt, m);
	*out = m;
	return 0;
fail:
	sodium_free(sec);
	agd_mobility_detach(&m);
	return rc;
}

void agd_mobility_detach(struct agd_mobility **mp)
{
	struct agd_mobility *m;

	if (mp == NULL || *mp == NULL)
		return;
	m = *mp;
	*mp = NULL;
	agd_server_on_status(m->srv, NULL, NULL);
	reg_set(m->rt, NULL);
	agd_res_destroy(&m->res); /* [resint] */
	if (m->timer)
		agd_loop_cancel_timer(m->loop, m->timer);
	if (m->poll_timer)
		agd_loop_cancel_timer(m->loop, m->poll_timer);
	if (m->peer) {
		void *socks[AGD_PEER_MAX + 1];
		size_t ns = agd_peer_sockets(m->peer, socks, AGD_PEER_MAX + 1);

		for (size_t i = 0; i < ns && i <= AGD_PEER_MAX; i++)
			agd_loop_remove(m->loop, socks[i], -1);
	}
	if (m->efd >= 0) {
		agd_loop_remove(m->loop, NULL, m->efd);
		close(m->efd);
	}
	while (m->reqs)
		req_drop(m, m->reqs);
	while (m->retries) {
		struct retry *t = m->retries;

		m->retries = t->next;
		free(t);
	}
	while (m->waiters) {
		struct waiter *w = m->waiters;

		m->waiters = w->next;
		answer_error(m, &w->tok, "stopping", "daemon stopping");
		free(w);
	}
	while (m->items) {
		struct item *it = m->items;

		m->items = it->next;
		free(it->state);
		free(it);
	}
	while (m->selfq) {
		struct self_req *q = m->selfq;

		m->selfq = q->next;
		free(q);
	}
	while (m->outq) {
		struct outmsg *o = m->outq;

		m->outq = o->next;
		free(o);
	}
	while (m->outcomes) {
		struct outcome *o = m->outcomes;

		m->outcomes = o->next;
		free(o);
	}
	agd_balance_destroy(&m->bal); /* [bal] */
	agd_hosts_destroy(&m->reg);   /* [bal] */
	agd_call_destroy(&m->call); /* [call] before the directory it uses */
	agd_dir_destroy(&m->dir);
	agd_xfer_destroy(&m->xfer);
	agd_peer_destroy(&m->peer);
	agd_zap_destroy(&m->zap);
	agd_trust_destroy(&m->hosts);
	pthread_mutex_destroy(&m->mu);
	free(m);
}
