/*
 * agd_rt.c: agents' registry and life cycle, without Lua (see agd_rt.h,
 * docs/runtime.md): creation, kills, mailboxes, calls and parks,
 * passivation and activation through the store, the migration seam, the
 * code cache, and the slice a worker runs (agd_rt_work). The run queue,
 * the timer heap, the passivation LRU and the workers are agd_sched.c's;
 * the records both share are in agd_rt_int.h.
 *
 * Invariants (all under rt->mu; the scheduler's are in agd_sched.h):
 * - Ended agents (finished, failed, killed) have no vm, no mailbox, and are
 *   in no queue; their record stays for ps and logs.
 * - a->vm is touched only by the worker that has the agent on CPU.
 */
#include "agd_rt_int.h"

#include "agd_mobility.h" /* [mig2] agd_mobility_self_move */
#include "agd_log.h"
#include "agd_logring.h"
#include "agd_loop.h"
#include "agd_park.h"
#include "agd_sched.h"
#include "agd_store.h"
#include "agd_trust.h"
#include "agd_vm.h"
#include "mig_segment.h"
#include "mig_state.h"
#include "res_registry.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define PS_MAX 10000 /* agents listed by one ps */

static const char *const state_names[] = { "created", "running", "waiting", "migrating",
					   "finished", "failed", "killed" };

const char *agd_state_name(enum agd_state s)
{
	return (unsigned)s <= AGD_KILLED ? state_names[s] : "?";
}

const char *agd_strerror(int code)
{
	switch (code) {
	case AGD_OK: return "success";
	case AGD_ERR_NOMEM: return "out of memory";
	case AGD_ERR_ARG: return "bad argument";
	case AGD_ERR_NOTFOUND: return "no such agent";
	case AGD_ERR_FULL: return "mailbox full";
	case AGD_ERR_TOOBIG: return "message too large";
	case AGD_ERR_STATE: return "agent has ended";
	case AGD_ERR_UNTRUSTED: return "segment not trusted";
	case AGD_ERR_SEGMENT: return "malformed segment";
	case AGD_ERR_LUA: return "Lua error";
	case AGD_ERR_UNAVAILABLE: return "not available";
	case AGD_ERR_STORE: return "store failure";
	case AGD_ERR_IO: return "I/O error";
	case AGD_ERR_STOPPING: return "daemon is stopping";
	case AGD_ERR_TIMEOUT: return "timed out";
	case AGD_ERR_REMOTE: return "remote error";
	case AGD_ERR_BUSY: return "in use by another process";
	default: return "unknown error";
	}
}

const char *agd_errname(int code)
{
	switch (code) {
	case AGD_OK: return "ok";
	case AGD_ERR_NOMEM: return "nomem";
	case AGD_ERR_ARG: return "arg";
	case AGD_ERR_NOTFOUND: return "notfound";
	case AGD_ERR_FULL: return "full";
	case AGD_ERR_TOOBIG: return "toobig";
	case AGD_ERR_STATE: return "state";
	case AGD_ERR_UNTRUSTED: return "untrusted";
	case AGD_ERR_SEGMENT: return "segment";
	case AGD_ERR_LUA: return "lua";
	case AGD_ERR_UNAVAILABLE: return "unavailable";
	case AGD_ERR_STORE: return "store";
	case AGD_ERR_IO: return "io";
	case AGD_ERR_STOPPING: return "stopping";
	case AGD_ERR_TIMEOUT: return "timeout";
	case AGD_ERR_REMOTE: return "remote";
	case AGD_ERR_BUSY: return "busy";
	default: return "error";
	}
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------- registry */

static size_t id_hash(const char *id)
{
	size_t h = 1469598103934665603ull;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ull;
	return h;
}

static struct agd_agent *find(struct agd_rt *rt, const char *id)
{
	struct agd_agent *a;

	if (id == NULL)
		return NULL;
	for (a = rt->buckets[id_hash(id) & (rt->nbuckets - 1)]; a; a = a->hnext)
		if (strcmp(a->id, id) == 0)
			return a;
	return NULL;
}

static int insert(struct agd_rt *rt, struct agd_agent *a)
{
	size_t i;

	if (rt->nagents >= rt->nbuckets) {
		size_t n = rt->nbuckets * 2;
		struct agd_agent **b = calloc(n, sizeof *b);

		if (b == NULL)
			return AGD_ERR_NOMEM;
		for (i = 0; i < rt->nbuckets; i++) {
			while (rt->buckets[i] != NULL) {
				struct agd_agent *x = rt->buckets[i];
				size_t j = id_hash(x->id) & (n - 1);

				rt->buckets[i] = x->hnext;
				x->hnext = b[j];
				b[j] = x;
			}
		}
		free(rt->buckets);
		rt->buckets = b;
		rt->nbuckets = n;
	}
	i = id_hash(a->id) & (rt->nbuckets - 1);
	a->hnext = rt->buckets[i];
	rt->buckets[i] = a;
	rt->nagents++;
	rt->counts[a->state]++;
	return 0;
}

static void unlink_agent(struct agd_rt *rt, struct agd_agent *a)
{
	struct agd_agent **pp = &rt->buckets[id_hash(a->id) & (rt->nbuckets - 1)];

	for (; *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == a) {
			*pp = a->hnext;
			rt->nagents--;
			rt->counts[a->state]--;
			return;
		}
	}
}

/* ----------------------------------------------------------- life cycle */

static int ended(enum agd_state s)
{
	return s == AGD_FINISHED || s == AGD_FAILED || s == AGD_KILLED;
}

/* Appends a line to a's log, stamped with the time and this host (lock
 * held, or a not yet published). A line lost to memory is only a line. */
static void ring_add(struct agd_rt *rt, struct agd_agent *a, const char *text, size_t len)
{
	(void)agd_logring_add(&a->log, wall_ms(), rt->cfg->host, text, len);
}

/* a's log for the store when it changed since it was last stored (*out
 * malloc'd, NULL when unchanged or empty; *seq what it was encoded at).
 * Takes the lock: the ring is guarded by it. */
static void log_snapshot(struct agd_rt *rt, struct agd_agent *a, uint8_t **out, size_t *len,
			 uint32_t *seq)
{
	*out = NULL;
	*len = 0;
	pthread_mutex_lock(&rt->mu);
	*seq = agd_logring_seq(a->log);
	if (*seq != a->log_saved && agd_logring_encode(a->log, out, len) != 0)
		*seq = a->log_saved; /* out of memory: stored another time */
	pthread_mutex_unlock(&rt->mu);
}

/* Agent id's log as last stored, or NULL (none, or unreadable: logged). */
static struct agd_logring *log_load(struct agd_rt *rt, const char *id)
{
	char key[AGD_STORE_KEY_MAX + 1];
	struct agd_logring *r = NULL;
	void *v = NULL;
	size_t len = 0;
	int rc;

	agd_logring_key(key, sizeof key, id);
	if (rt->store == NULL || agd_store_kv_get(rt->store, key, &v, &len) != 0)
		return NULL;
	rc = agd_logring_decode(v, len, &r);
	if (rc != 0)
		agd_log(AGD_LOG_WARN, "agent.log_unreadable", "agent=%s error=\"%s\"", id,
			agd_strerror(rc));
	free(v);
	return r;
}

/* Run arguments are kept in the store's kv table under this key until the
 * agent's first state is (which holds them in its root), so that an agent
 * that restarts at its entry, never having been persisted, gets them
 * again. */
#define ARGS_KEY "agent.args."

static void args_key(char *key, size_t len, const struct agd_agent *a)
{
	snprintf(key, len, ARGS_KEY "%s", a->id);
}

/* Drops a's kept run arguments, inside the caller's transaction. */
static int args_forget(struct agd_rt *rt, struct agd_agent *a)
{
	char key[64];
	int rc;

	if (!a->args_kept)
		return 0;
	args_key(key, sizeof key, a);
	rc = agd_store_kv_delete(rt->store, key);
	return rc == AGD_STORE_ERR_NOTFOUND ? 0 : rc;
}

static void store_status(struct agd_rt *rt, struct agd_agent *a)
{
	int rc;

	if (rt->store == NULL || a->code->seg == NULL)
		return;
	rc = agd_store_begin(rt->store, 0);
	if (rc == 0) {
		rc = agd_store_agent_set_status(rt->store, a->id, agd_state_name(a->state),
						a->reason);
		if (rc == 0 && ended(a->state))
			rc = args_forget(rt, a);
		if (rc == 0 && ended(a->state)) {
			/* An ended agent is not loaded again: its stored log
			 * would never be read. */
			char key[AGD_STORE_KEY_MAX + 1];

			agd_logring_key(key, sizeof key, a->id);
			rc = agd_store_kv_delete(rt->store, key);
			rc = rc == AGD_STORE_ERR_NOTFOUND ? 0 : rc;
		}
		if (rc == 0)
			rc = agd_store_commit(rt->store);
		else
			agd_store_rollback(rt->store);
	}
	if (rc != 0 && rc != AGD_STORE_ERR_NOTFOUND)
		agd_log(AGD_LOG_WARN, "store.failed", "op=status agent=%s error=\"%s\"", a->id,
			agd_store_strerror(rc));
}

/* Changes state, with a log line; transitions other than running<->waiting
 * also go to the agent's own log and, with `store`, to the store (without:
 * the caller has just written the row with this status). */
static void change_state(struct agd_rt *rt, struct agd_agent *a, enum agd_state s,
			 const char *reason, int store)
{
	enum agd_state old = a->state;
	int quiet = (old == AGD_RUNNING && s == AGD_WAITING) ||
		    (old == AGD_WAITING && s == AGD_RUNNING) || old == s;

	rt->counts[old]--;
	rt->counts[s]++;
	a->state = s;
	snprintf(a->reason, sizeof a->reason, "%s", reason ? reason : "");
	if (quiet) {
		if (agd_log_enabled(AGD_LOG_DEBUG))
			agd_log(AGD_LOG_DEBUG, "agent.state", "agent=%s from=%s to=%s reason=\"%s\"",
				a->id, agd_state_name(old), agd_state_name(s), a->reason);
		return;
	}
	agd_log(s == AGD_FAILED ? AGD_LOG_WARN : AGD_LOG_INFO, "agent.state",
		"agent=%s from=%s to=%s reason=\"%.200s\"", a->id, agd_state_name(old),
		agd_state_name(s), a->reason);
	{
		char line[AGD_LOG_TEXT_MAX + 64];
		int n = snprintf(line, sizeof line, "[state] %s -> %s: %s", agd_state_name(old),
				 agd_state_name(s), a->reason);

		ring_add(rt, a, line, n < 0 ? 0 : (size_t)n >= sizeof line ? sizeof line - 1 : (size_t)n);
	}
	if (store)
		store_status(rt, a);
}

void agd_rt_set_state(struct agd_rt *rt, struct agd_agent *a, enum agd_state s,
		      const char *reason)
{
	change_state(rt, a, s, reason, 1);
}

static void mbox_clear(struct agd_agent *a)
{
	while (a->mb_head != NULL) {
		struct agd_msg *m = a->mb_head;
		a->mb_head = m->next;
		free(m);
	}
	a->mb_tail = NULL;
	a->mb_n = 0;
}

static void park_clear(struct agd_agent *a)
{
	if (a->park_ans != NULL) {
		free(a->park_ans->text);
		free(a->park_ans);
		a->park_ans = NULL;
	}
	a->park_token = 0;
}

/* Answers every call queued for a with an error (lock held). */
static void calls_fail(struct agd_rt *rt, struct agd_agent *a, int code, const char *text)
{
	while (a->calls_head != NULL) {
		struct agd_call_in *c = a->calls_head;

		a->calls_head = c->next;
		if (rt->reply_fn != NULL)
			rt->reply_fn(rt->reply_ud, c, code, text, NULL, 0);
		free(c);
	}
	a->calls_tail = NULL;
	a->ncalls = 0;
}

/* Ends an agent (lock held). Its vm is handed to *dead for the caller to
 * close outside the lock. */
static void finish(struct agd_rt *rt, struct agd_agent *a, enum agd_state s, const char *reason,
		   struct agd_vm **dead)
{
	agd_sched_heap_remove(rt, a);
	agd_sched_lru_remove(rt, a);
	mbox_clear(a);
	park_clear(a);
	calls_fail(rt, a, AGD_ERR_STATE, "the agent ended before it answered");
	a->wait = W_NONE;
	if (a->vm != NULL) {
		*dead = a->vm;
		a->vm = NULL;
		rt->resident--;
	}
	agd_buf_free(&a->saved);
	a->persisted = 0;
	agd_rt_set_state(rt, a, s, reason);
}

/* ----------------------------------------------------------- persistence */

static void limits_of(const struct agd_rt *rt, const struct agd_agent *a, struct agd_vm_limits *l)
{
	l->memory = a->mem_quota;
	l->slice = a->code->slice && a->code->slice < rt->cfg->slice_instructions
			   ? a->code->slice : rt->cfg->slice_instructions;
	l->instructions = a->instr_quota;
}

/* Writes a's row with status and reason (NULL: a's own); with args (at
 * spawn), its run arguments too; with a state, drops the run arguments
 * kept so far. One transaction. */
static int store_put_args(struct agd_rt *rt, struct agd_agent *a, const uint8_t *state, size_t len,
			  const char *status, const char *reason, const struct agd_msg *args)
{
	struct agd_agent_rec rec;
	uint8_t *log = NULL;
	size_t log_len = 0;
	uint32_t log_seq = 0;
	int rc;

	if (rt->store == NULL || a->code->seg == NULL)
		return AGD_ERR_UNAVAILABLE;
	/* Its log goes with each state it stores (never a write per line),
	 * when it changed since the last. */
	log_snapshot(rt, a, &log, &log_len, &log_seq);
	memset(&rec, 0, sizeof rec);
	snprintf(rec.id, sizeof rec.id, "%s", a->id);
	memcpy(rec.segment, a->code->hash, sizeof rec.segment);
	rec.state = (uint8_t *)state;
	rec.state_len = len;
	snprintf(rec.status, sizeof rec.status, "%s", status);
	rec.epoch = a->epoch;
	snprintf(rec.home, sizeof rec.home, "%s", a->home);
	rec.mobility = 3;
	rec.activation = a->on_demand ? 2 : 1;
	snprintf(rec.reason, sizeof rec.reason, "%s", reason != NULL ? reason : a->reason);
	/* synchronous=NORMAL: survives kill -9 (the WAL is written), not a
	 * power cut; full durability is for transfers (agd_xfer). */
	rc = agd_store_begin(rt->store, 0);
	if (rc == 0) {
		rc = agd_store_agent_put(rt->store, &rec);
		if (rc == 0 && args != NULL) {
			char key[64];

			args_key(key, sizeof key, a);
			rc = agd_store_kv_put(rt->store, key, args->data, args->len);
		} else if (rc == 0 && state != NULL)
			rc = args_forget(rt, a);
		if (rc == 0 && log != NULL) {
			char key[AGD_STORE_KEY_MAX + 1];

			agd_logring_key(key, sizeof key, a->id);
			rc = agd_store_kv_put(rt->store, key, log, log_len);
		}
		if (rc == 0)
			rc = agd_store_commit(rt->store);
		else
			agd_store_rollback(rt->store);
	}
	free(log);
	if (rc != 0) {
		agd_log(AGD_LOG_WARN, "store.failed", "op=agent_put agent=%s error=\"%s\" sqlite=\"%s\"",
			a->id, agd_store_strerror(rc), agd_store_errmsg(rt->store));
		return AGD_ERR_STORE;
	}
	if (args != NULL)
		a->args_kept = 1;
	else if (state != NULL)
		a->args_kept = 0;
	if (log != NULL) {
		pthread_mutex_lock(&rt->mu);
		a->log_saved = log_seq;
		pthread_mutex_unlock(&rt->mu);
	}
	return 0;
}

static int store_put(struct agd_rt *rt, struct agd_agent *a, const uint8_t *state, size_t len,
		     const char *status, const char *reason)
{
	return store_put_args(rt, a, state, len, status, reason, NULL);
}

/* Persists a's vm (worker, on CPU, lock NOT held). On success the bytes are
 * in the store (or in a->saved when there is no store for this code). */
static int persist_vm(struct agd_rt *rt, struct agd_agent *a, const struct agd_vm_wait *w,
		      const char *status, const char *reason)
{
	struct mig_buf buf = { 0 };
	char err[256];
	int rc = agd_vm_persist(a->vm, w, &buf, err, sizeof err);

	if (rc != 0) {
		agd_log(AGD_LOG_WARN, "agent.persist_failed", "agent=%s error=\"%s\"", a->id, err);
		agd_buf_free(&buf);
		return rc;
	}
	rc = store_put(rt, a, buf.data, buf.len, status, reason);
	if (rc == 0) {
		agd_buf_free(&buf);
		agd_buf_free(&a->saved);
	} else {
		agd_buf_free(&a->saved);
		a->saved = buf;
	}
	a->persisted = 1;
	a->clean = 1;
	return 0;
}

/* What a waits for, for its persisted state (lock held). */
static void wait_of(const struct agd_agent *a, struct agd_vm_wait *w)
{
	w->kind = a->wait == W_SLEEP ? AGD_VM_WAIT_SLEEP
		  : a->wait == W_RECV ? AGD_VM_WAIT_RECV
		  : a->wait == W_PARK ? AGD_VM_WAIT_PARK : AGD_VM_WAIT_NONE;
	w->until_ms = 0;
	if (a->heap_i != 0) {
		uint64_t now = agd_now_ms();

		w->until_ms = wall_ms() + (int64_t)(a->wake_at > now ? a->wake_at - now : 0);
		if (w->until_ms == 0)
			w->until_ms = 1;
	}
}

/* An agent loaded from the store starts again at its entry: its run
 * arguments, if it was given any, go first in its mailbox, to be delivered
 * at the first resume as at spawn (worker, lock NOT held). */
static void args_again(struct agd_rt *rt, struct agd_agent *a)
{
	char key[64];
	void *v = NULL;
	size_t len = 0;
	struct agd_msg *m;

	args_key(key, sizeof key, a);
	if (agd_store_kv_get(rt->store, key, &v, &len) != 0)
		return;
	m = malloc(sizeof *m + len);
	if (m == NULL) {
		agd_log(AGD_LOG_WARN, "agent.args_lost", "agent=%s error=\"out of memory\"", a->id);
		free(v);
		return;
	}
	memset(m, 0, sizeof *m);
	m->len = len;
	if (len > 0)
		memcpy(m->data, v, len);
	free(v);
	pthread_mutex_lock(&rt->mu);
	m->next = a->mb_head;
	a->mb_head = m;
	if (a->mb_tail == NULL)
		a->mb_tail = m;
	a->mb_n++;
	a->wait = W_RECV;
	a->args_kept = 1;
	pthread_mutex_unlock(&rt->mu);
}

/* Loads a's persisted state and restores its vm (worker, lock NOT held). */
static int activate(struct agd_rt *rt, struct agd_agent *a, struct agd_vm_wait *w, char *err,
		    size_t err_len)
{
	struct agd_vm_limits lim;
	struct agd_agent_rec rec;
	int rc;

	limits_of(rt, a, &lim);
	memset(w, 0, sizeof *w);
	if (!a->persisted)
		return agd_vm_new(rt, a, &lim, &a->vm, err, err_len);
	if (a->saved.data != NULL)
		return agd_vm_restore(rt, a, &lim, a->saved.data, a->saved.len, &a->vm, w, err,
				      err_len);
	if (rt->store == NULL)
		return AGD_ERR_UNAVAILABLE;
	memset(&rec, 0, sizeof rec);
	rc = agd_store_agent_get(rt->store, a->id, &rec);
	if (rc != 0) {
		snprintf(err, err_len, "store: %s", agd_store_strerror(rc));
		return AGD_ERR_STORE;
	}
	if (rec.state == NULL) {
		rc = agd_vm_new(rt, a, &lim, &a->vm, err, err_len);
		if (rc == 0 && a->from_store)
			args_again(rt, a);
	} else
		rc = agd_vm_restore(rt, a, &lim, rec.state, rec.state_len, &a->vm, w, err, err_len);
	agd_store_agent_clear(&rec);
	return rc;
}

/* activate() with a on CPU and the lock released meanwhile (lock held on
 * entry and on return); a failure is logged, err says why. */
static int activate_here(struct agd_rt *rt, struct agd_agent *a, struct agd_vm_wait *w, char *err,
			 size_t err_len)
{
	int rc;

	a->on_cpu = 1;
	rt->busy++;
	pthread_mutex_unlock(&rt->mu);
	rc = activate(rt, a, w, err, err_len);
	pthread_mutex_lock(&rt->mu);
	a->on_cpu = 0;
	rt->busy--;
	if (rc != 0)
		agd_log(AGD_LOG_WARN, "agent.activate_failed", "agent=%s error=\"%s\"", a->id, err);
	return rc;
}

/* --------------------------------------------------------------- slices */

/* Runs the calls queued for a, between its slices, with the agent off CPU
 * (lock held on entry and on return). A passivated waiting agent is
 * activated for them and goes back to the idle list. Calls that come while
 * a method runs are run too; a quota a method broke ends the agent. */
static void serve_calls(struct agd_rt *rt, struct agd_agent *a, struct agd_vm **dead)
{
	struct agd_vm_wait w;
	char err[256];
	int rc;

	if (a->calls_head == NULL || a->kill_req || a->leaving || a->state == AGD_MIGRATING ||
	    ended(a->state))
		return;
	if (a->vm == NULL) {
		/* Runnable: the run path activates it, the next turn serves. A
		 * stopping daemon activates nothing (its callers time out). */
		if (a->state != AGD_WAITING || rt->stopping)
			return;
		if (activate_here(rt, a, &w, err, sizeof err) != 0) {
			finish(rt, a, AGD_FAILED, err, dead);
			return;
		}
		rt->resident++;
		if (a->on_demand && a->state == AGD_WAITING && a->wait != W_PARK &&
		    rt->cfg->passivate_after >= 0)
			agd_sched_lru_append(rt, a);
	}
	while (a->calls_head != NULL && a->vm != NULL && !a->kill_req && !ended(a->state)) {
		struct agd_call_in *c = a->calls_head;
		struct mig_buf out = { 0 };
		struct agd_vm_call_result r;
		agd_rt_reply_fn reply = rt->reply_fn; /* read under the lock */
		void *reply_ud = rt->reply_ud;
		char why[128];

		a->calls_head = c->next;
		if (a->calls_head == NULL)
			a->calls_tail = NULL;
		a->ncalls--;
		a->clean = 0; /* the method runs in its vm */
		a->on_cpu = 1;
		rt->busy++;
		pthread_mutex_unlock(&rt->mu);
		memset(&r, 0, sizeof r);
		r.out = &out;
		agd_vm_call(a->vm, c->method, c->args, c->len, &r);
		if (reply != NULL)
			reply(reply_ud, c, r.code, r.text, r.code == 0 ? out.data : NULL,
			      r.code == 0 ? out.len : 0);
		agd_buf_free(&out);
		free(c);
		rc = agd_vm_killed(a->vm, why, sizeof why);
		pthread_mutex_lock(&rt->mu);
		a->on_cpu = 0;
		rt->busy--;
		a->memory = agd_vm_memory(a->vm);
		a->instructions = agd_vm_instructions(a->vm);
		if (rc && !a->kill_req) {
			a->kill_req = 1;
			snprintf(a->reason, sizeof a->reason, "%s", why);
		}
	}
}

/* A suspension's done() gets the state a holds already (a->saved, or its
 * row in the store): a is passive, or clean. Marked migrating first and
 * kept on CPU through the call, so that a forget waits for it. Its row
 * keeps its status: the transfer writes "migrating" with the attempt's
 * epoch, in the transaction it needs anyway (agd_xfer_push); a status of
 * ours would cost one more. Lock held on entry and on return, released
 * for the call. */
static void hand_out_stored(struct agd_rt *rt, struct agd_agent *a, agd_rt_suspend_fn fn, void *ud)
{
	struct agd_agent_rec rec;
	int rc = 0;

	a->had_deadline = a->heap_i != 0; /* [mig2] migrating before the callback */
	a->was_waiting = a->state == AGD_WAITING;
	agd_sched_heap_remove(rt, a);
	agd_sched_lru_remove(rt, a);
	change_state(rt, a, AGD_MIGRATING, "transfer", 0);
	a->on_cpu = 1;
	pthread_mutex_unlock(&rt->mu);
	memset(&rec, 0, sizeof rec);
	if (a->saved.data != NULL)
		fn(ud, a->id, 0, a->saved.data, a->saved.len, a->code);
	else if (rt->store != NULL && agd_store_agent_get(rt->store, a->id, &rec) == 0)
		fn(ud, a->id, 0, rec.state, rec.state_len, a->code);
	else {
		rc = AGD_ERR_STORE;
		fn(ud, a->id, rc, NULL, 0, a->code);
	}
	agd_store_agent_clear(&rec);
	pthread_mutex_lock(&rt->mu);
	a->on_cpu = 0; /* [mig2] */
	if (rc != 0 && a->state == AGD_MIGRATING) /* not handed out: it goes on */
		agd_rt_set_state(rt, a, AGD_RUNNING, "transfer failed");
	if (a->state != AGD_MIGRATING)
		a->leaving = 0;
	if (a->state == AGD_RUNNING && !rt->stopping) /* [mig2] released meanwhile */
		agd_sched_enqueue(rt, a);
}

/* Runs one piece of work for a (agd_rt_int.h; lock held on entry and on
 * return). */
void agd_rt_work(struct agd_rt *rt, struct agd_agent *a)
{
	struct agd_vm *dead = NULL;
	struct agd_vm_result res;
	struct agd_msg *msg = NULL;
	struct agd_vm_wait w;
	struct park_ans *ans = NULL;
	int deliver = 0, unpark = 0, lost = 0, rc;
	char err[256];

	if (ended(a->state))
		return;
	serve_calls(rt, a, &dead); /* [call] before anything may move or close it */
	if (ended(a->state))
		goto out;
	if (a->kill_req) {
		finish(rt, a, AGD_KILLED, a->reason[0] ? a->reason : "killed", &dead);
		goto out;
	}
	/* A parked agent (or one whose answer is not yet delivered) is not
	 * moved or passivated (agd_park.h): its push or passivation waits for
	 * the slice after the answer or the timeout. A stop or a checkpoint
	 * persists it parked; it then resumes with an error (park_lost). */
	if ((a->suspend_fn != NULL && a->wait != W_PARK) || (rt->stopping && a->state != AGD_MIGRATING) ||
	    (a->passivate_req && a->state == AGD_WAITING && a->wait != W_PARK) || a->checkpoint_req) {
		/* Persist at this safe point: the agent is not on CPU. */
		agd_rt_suspend_fn fn = a->wait != W_PARK ? a->suspend_fn : NULL;
		void *ud = a->suspend_ud;
		int passivate = (a->passivate_req && a->state == AGD_WAITING && a->wait != W_PARK) ||
				rt->stopping;
		int checkpoint = a->checkpoint_req;

		if (fn != NULL) {
			a->suspend_fn = NULL;
			a->leaving = 1; /* [call] calls from now on wait for the transfer's end */
		}
		a->passivate_req = 0;
		a->checkpoint_req = 0;
		/* Restored (or persisted) and not run since, its state is the
		 * one stored: a move hands that out, as for a passive agent,
		 * instead of persisting the same bytes again. An agent that
		 * arrived and is pushed on before it ran is the common case. */
		if (a->vm == NULL || (fn != NULL && a->clean)) {
			if (fn != NULL)
				goto suspend_passive;
			/* Nothing in memory to persist: a checkpoint asked for
			 * while its passivation was persisting it (the tick
			 * cannot queue an agent on CPU, so the request stayed)
			 * meets the agent only when a message wakes it. The
			 * request is void; the woken agent must still run, or
			 * it would sit running and unqueued for good. */
			if (a->state == AGD_RUNNING && !rt->stopping)
				agd_sched_enqueue(rt, a);
			return;
		}
		a->on_cpu = 1;
		rt->busy++;
		wait_of(a, &w);
		pthread_mutex_unlock(&rt->mu);
		rc = fn ? persist_vm(rt, a, &w, "migrating", "transfer")
			: persist_vm(rt, a, &w, agd_state_name(a->state), NULL);
		pthread_mutex_lock(&rt->mu);
		a->on_cpu = 0;
		rt->busy--;
		if (fn != NULL) {
			/* The migration seam: hand out the persisted state. [mig2]
			 * Marked migrating before the callback, and on CPU through
			 * it, so that a forget waits for this worker. */
			if (rc == 0) {
				a->had_deadline = a->heap_i != 0;
				a->was_waiting = a->state == AGD_WAITING;
				agd_sched_heap_remove(rt, a);
				agd_sched_lru_remove(rt, a);
				/* The row says so already when the state went to
				 * the store: one transaction less per move. */
				change_state(rt, a, AGD_MIGRATING, "transfer", a->saved.data != NULL);
			}
			a->on_cpu = 1;
			pthread_mutex_unlock(&rt->mu);
			if (rc == 0 && a->saved.data == NULL) {
				struct agd_agent_rec rec;

				memset(&rec, 0, sizeof rec);
				rc = agd_store_agent_get(rt->store, a->id, &rec) == 0 ? 0 : AGD_ERR_STORE;
				fn(ud, a->id, rc, rec.state, rec.state_len, a->code);
				agd_store_agent_clear(&rec);
			} else
				fn(ud, a->id, rc, a->saved.data, a->saved.len, a->code);
			pthread_mutex_lock(&rt->mu);
			a->on_cpu = 0;
			if (rc != 0 && a->state == AGD_MIGRATING) /* [mig2] not handed out */
				agd_rt_set_state(rt, a, AGD_RUNNING, "transfer failed");
			if (a->state != AGD_MIGRATING)
				a->leaving = 0;
		} else if (rt->stopping || (rc == 0 && (passivate || !checkpoint))) {
			dead = a->vm;
			a->vm = NULL;
			rt->resident--;
			agd_log(AGD_LOG_DEBUG, "agent.passivated", "agent=%s", a->id);
		}
		if (a->state == AGD_RUNNING && !rt->stopping)
			agd_sched_enqueue(rt, a);
		goto out;
suspend_passive:
		hand_out_stored(rt, a, fn, ud);
		return;
	}
	if (a->state != AGD_RUNNING)
		return; /* stale: woken and put to sleep again, or migrating */
	if (a->vm == NULL) {
		if (activate_here(rt, a, &w, err, sizeof err) != 0) {
			finish(rt, a, AGD_FAILED, err, &dead);
			goto out;
		}
		rt->resident++;
		if (a->kill_req || ended(a->state)) {
			agd_sched_enqueue(rt, a);
			goto out;
		}
		if (a->from_store) {
			/* Restarted or arrived: resume the wait it was in. */
			uint64_t now = agd_now_ms();
			int64_t left = w.until_ms ? w.until_ms - wall_ms() : -1;

			a->from_store = 0;
			if (w.kind == AGD_VM_WAIT_RECV)
				a->wait = W_RECV;
			if (w.kind == AGD_VM_WAIT_PARK) {
				/* Its answer was for the process that stopped. */
				a->wait = W_PARK;
				a->park_lost = 1;
			}
			if ((w.kind == AGD_VM_WAIT_SLEEP && left > 0) ||
			    (w.kind == AGD_VM_WAIT_RECV && a->mb_head == NULL && left != 0)) {
				a->wait = w.kind == AGD_VM_WAIT_SLEEP ? W_SLEEP : W_RECV;
				a->clean = 1; /* nothing ran since the restore */
				agd_rt_set_state(rt, a, AGD_WAITING, "resumed waiting");
				a->idle_since = now;
				if (left > 0) {
					a->wake_at = now + (uint64_t)left;
					if (agd_sched_heap_push(rt, a) != 0)
						finish(rt, a, AGD_FAILED, "out of memory", &dead);
					else if (a->wake_at < rt->poll_deadline)
						agd_loop_wake(rt->loop);
				}
				goto out;
			}
			if (w.kind == AGD_VM_WAIT_RECV && a->mb_head == NULL)
				a->timed_out = 1;
		}
	}
	if (a->wait == W_RECV) {
		deliver = 1;
		if (!a->timed_out && a->mb_head != NULL) {
			msg = a->mb_head;
			a->mb_head = msg->next;
			if (a->mb_head == NULL)
				a->mb_tail = NULL;
			a->mb_n--;
		}
	}
	if (a->wait == W_PARK) {
		/* The answer, or the timeout; later answers are dropped. */
		unpark = 1;
		ans = a->park_ans;
		a->park_ans = NULL;
		a->park_token = 0;
		lost = a->park_lost;
		a->park_lost = 0;
	}
	a->wait = W_NONE;
	a->timed_out = 0;
	a->clean = 0; /* it runs: its vm moves on from the stored state */
	a->on_cpu = 1;
	rt->busy++;
	pthread_mutex_unlock(&rt->mu);

	if (unpark) {
		struct agd_park_answer pa;

		if (ans != NULL) {
			pa.code = ans->code;
			pa.text = ans->text;
			pa.data = ans->has_data ? ans->data : NULL;
			pa.len = ans->len;
		}
		agd_vm_unpark(a->vm, ans ? &pa : NULL,
			      lost ? "no answer: the daemon restarted while the agent waited" : NULL);
		if (ans != NULL) {
			free(ans->text);
			free(ans);
		}
	}
	agd_vm_resume(a->vm, deliver, msg, &res);
	free(msg);

	pthread_mutex_lock(&rt->mu);
	a->on_cpu = 0;
	rt->busy--;
	a->switches++;
	rt->switches++;
	a->memory = agd_vm_memory(a->vm);
	a->instructions = agd_vm_instructions(a->vm);
	switch (res.status) {
	case AGD_VM_PREEMPTED:
		agd_sched_enqueue(rt, a);
		break;
	case AGD_VM_SLEEP:
	case AGD_VM_RECV:
		a->wait = res.status == AGD_VM_SLEEP ? W_SLEEP : W_RECV;
		if (a->wait == W_RECV && a->mb_head != NULL) {
			agd_sched_enqueue(rt, a); /* a message came while it ran */
			break;
		}
		if (a->kill_req) {
			agd_sched_enqueue(rt, a);
			break;
		}
		agd_rt_set_state(rt, a, AGD_WAITING, a->wait == W_SLEEP ? "sleep" : "recv");
		a->idle_since = agd_now_ms();
		if (res.timeout >= 0) {
			double ms = res.timeout * 1000.0;

			a->wake_at = a->idle_since + (ms > 1e15 ? (uint64_t)1e15 : (uint64_t)ms);
			if (agd_sched_heap_push(rt, a) != 0) {
				finish(rt, a, AGD_FAILED, "out of memory", &dead);
				break;
			}
			if (a->wake_at < rt->poll_deadline)
				agd_loop_wake(rt->loop);
		}
		if (a->on_demand && rt->cfg->passivate_after >= 0 && agd_vm_can_persist()) {
			if (rt->cfg->passivate_after == 0) {
				a->passivate_req = 1;
				agd_sched_enqueue_front(rt, a);
			} else
				agd_sched_lru_append(rt, a);
		}
		break;
	case AGD_VM_PARK:
		/* Waits for agd_rt_unpark(res.token) or the timeout; never
		 * passivated meanwhile (its park is not persistable as a wait
		 * another process could answer). */
		a->wait = W_PARK;
		if (a->park_token != res.token) {
			park_clear(a); /* a token it did not take: nothing will match */
		}
		if (a->park_ans != NULL || a->kill_req) {
			agd_sched_enqueue(rt, a); /* answered while it was yielding, or killed */
			break;
		}
		agd_rt_set_state(rt, a, AGD_WAITING, "park");
		a->idle_since = agd_now_ms();
		{
			double ms = res.timeout * 1000.0;

			a->wake_at = a->idle_since + (ms > 1e15 ? (uint64_t)1e15 : (uint64_t)ms);
			if (agd_sched_heap_push(rt, a) != 0) {
				finish(rt, a, AGD_FAILED, "out of memory", &dead);
				break;
			}
			if (a->wake_at < rt->poll_deadline)
				agd_loop_wake(rt->loop);
		}
		break;
	case AGD_VM_DONE:
		finish(rt, a, AGD_FINISHED, "returned", &dead);
		break;
	case AGD_VM_ERROR:
		finish(rt, a, AGD_FAILED, res.reason, &dead);
		break;
	case AGD_VM_KILLED:
		finish(rt, a, AGD_KILLED, a->kill_req && a->reason[0] ? a->reason : res.reason,
		       &dead);
		break;
	case AGD_VM_MIGRATE: /* [mig2] agent.migrate/clone: suspend now; agd_mobility moves it */
		agd_mobility_self_move(rt, a->id, res.reason, res.move_flags, &a->suspend_fn,
				       &a->suspend_ud);
		agd_sched_enqueue_front(rt, a);
		break;
	}
out:
	if (a->suspend_fn != NULL && !ended(a->state)) /* [mig2] asked while it was on CPU */
		agd_sched_enqueue(rt, a);
	if (a->calls_head != NULL && !ended(a->state) && !a->leaving) /* [call] came while on CPU */
		agd_sched_enqueue(rt, a);
	pthread_cond_broadcast(&rt->idle_cv);
	if (dead != NULL) {
		pthread_mutex_unlock(&rt->mu);
		agd_vm_destroy(&dead, 0);
		pthread_mutex_lock(&rt->mu);
	}
}

/* --------------------------------------------------------------- public */

static int load_resources(struct agd_rt *rt)
{
	const struct agd_config *cfg = rt->cfg;
	char dir[AGD_CONFIG_STR_MAX + 16];
	int rc;

	if (cfg->nresources == 0)
		return 0;
	snprintf(dir, sizeof dir, "%s/resources", cfg->data_dir[0] ? cfg->data_dir : ".");
	rc = res_registry_new(cfg->host, dir, &rt->reg);
	if (rc != 0) {
		agd_log(AGD_LOG_ERROR, "resource.failed", "op=registry dir=%s error=\"%s\"", dir,
			res_strerror(rc));
		return AGD_ERR_ARG;
	}
	for (size_t i = 0; i < cfg->nresources; i++) {
		const struct agd_section *r = &cfg->resources[i];
		const char *keys[AGD_CONFIG_KEYS_MAX], *vals[AGD_CONFIG_KEYS_MAX];
		struct res_error e = { 0, "" };

		for (size_t k = 0; k < r->n; k++) {
			keys[k] = r->kv[k].key;
			vals[k] = r->kv[k].value;
		}
		rc = res_registry_add(rt->reg, r->name, r->n, keys, vals, &e);
		if (rc != 0) {
			agd_log(AGD_LOG_ERROR, "resource.failed", "resource=%s error=\"%s: %s\"",
				r->name, res_strerror(rc), e.msg);
			return AGD_ERR_ARG;
		}
		agd_log(AGD_LOG_INFO, "resource.added", "resource=%s", r->name);
	}
	return 0;
}

/* Host names for agent.hosts(): this host, then the trusted-hosts list
 * (whose key names are host names). A missing list is not an error. */
static void load_hosts(struct agd_rt *rt)
{
	struct agd_trust *th = NULL;
	size_t n = 0;
	char why[256];

	if (agd_trust_load(rt->cfg->trusted_hosts, &th, why, sizeof why) == 0)
		n = agd_trust_count(th);
	rt->hosts = calloc(n + 1, sizeof *rt->hosts);
	if (rt->hosts == NULL) {
		agd_trust_destroy(&th);
		return;
	}
	rt->hosts[rt->nhosts++] = strdup(rt->cfg->host);
	for (size_t i = 0; i < n; i++) {
		char name[MIG_KEY_NAME_MAX + 1];
		int dup = 0;

		if (agd_trust_key(th, i, NULL, NULL, name) != 0)
			continue;
		for (size_t k = 0; k < rt->nhosts; k++)
			dup |= rt->hosts[k] && strcmp(rt->hosts[k], name) == 0;
		if (!dup)
			rt->hosts[rt->nhosts++] = strdup(name);
	}
	agd_trust_destroy(&th);
}

struct res_registry *agd_rt_registry(struct agd_rt *rt)
{
	return rt->reg;
}

void agd_rt_res_lock(struct agd_rt *rt)
{
	pthread_mutex_lock(&rt->res_mu);
}

void agd_rt_res_unlock(struct agd_rt *rt)
{
	pthread_mutex_unlock(&rt->res_mu);
}

struct agd_store *agd_rt_store(struct agd_rt *rt)
{
	return rt->store;
}

const char *const *agd_rt_hosts(struct agd_rt *rt, size_t *n)
{
	*n = rt->nhosts;
	return (const char *const *)rt->hosts;
}

int agd_rt_new(const struct agd_config *cfg, struct agd_loop *loop, struct agd_rt **out)
{
	struct agd_rt *rt = calloc(1, sizeof *rt);
	char path[AGD_CONFIG_STR_MAX + 32];
	int rc;

	*out = NULL;
	if (rt == NULL || sodium_init() < 0) {
		free(rt);
		return AGD_ERR_NOMEM;
	}
	rt->cfg = cfg;
	rt->loop = loop;
	rt->nbuckets = 1024;
	rt->buckets = calloc(rt->nbuckets, sizeof *rt->buckets);
	rt->poll_deadline = UINT64_MAX;
	rt->started = wall_ms();
	pthread_mutex_init(&rt->mu, NULL);
	agd_sched_init(rt);
	if (rt->buckets == NULL) {
		agd_rt_destroy(&rt);
		return AGD_ERR_NOMEM;
	}
	if (cfg->data_dir[0] != '\0') {
		if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
			agd_log(AGD_LOG_ERROR, "store.failed", "op=mkdir dir=%s error=\"%s\"",
				cfg->data_dir, strerror(errno));
			agd_rt_destroy(&rt);
			return AGD_ERR_IO;
		}
		snprintf(path, sizeof path, "%s/%s", cfg->data_dir, AGD_STORE_FILE);
		rc = agd_store_open_private(path, &rt->store);
		if (rc != 0) {
			agd_log(AGD_LOG_ERROR, "store.failed", "op=open path=%s error=\"%s\"", path,
				agd_store_strerror(rc));
			agd_rt_destroy(&rt);
			/* Open private: a busy file is another daemon's. */
			return rc == AGD_STORE_ERR_BUSY ? AGD_ERR_BUSY : AGD_ERR_STORE;
		}
	}
	pthread_mutex_init(&rt->res_mu, NULL);
	rc = load_resources(rt);
	if (rc != 0) {
		agd_rt_destroy(&rt);
		return rc;
	}
	load_hosts(rt);
	rc = agd_trust_load(cfg->trust_store, &rt->trust, rt->trust_why, sizeof rt->trust_why);
	if (rc != 0)
		agd_log(AGD_LOG_WARN, "trust.unavailable", "path=%s error=\"%s\"", cfg->trust_store,
			rt->trust_why);
	*out = rt;
	return 0;
}

/* Recreates agent records from the store; each resumes from its state (or
 * starts at its entry when none was persisted). */
struct load_ctx {
	struct agd_rt *rt;
	unsigned n;
};

static int load_one(const struct agd_agent_rec *rec, void *ud)
{
	struct load_ctx *lc = ud;
	struct agd_rt *rt = lc->rt;
	struct agd_code *code;
	struct agd_agent *a;
	struct agd_logring *log;
	int terminal = strcmp(rec->status, "finished") == 0 || strcmp(rec->status, "failed") == 0 ||
		       strcmp(rec->status, "killed") == 0 || strcmp(rec->status, "migrating") == 0 ||
		       strcmp(rec->status, "gone") == 0;

	if (terminal || strlen(rec->id) != AGD_ID_LEN)
		return 0;
	code = agd_rt_code_find(rt, rec->segment);
	if (code == NULL) {
		agd_log(AGD_LOG_WARN, "agent.resume_failed", "agent=%s error=\"segment not cached\"",
			rec->id);
		return 0;
	}
	a = calloc(1, sizeof *a);
	if (a == NULL) {
		agd_code_unref(rt, &code);
		return 0;
	}
	memcpy(a->id, rec->id, AGD_ID_LEN);
	a->code = code;
	a->state = AGD_RUNNING;
	/* Listed without states: activation reads the store, and starts
	 * at the entry when no state was ever written. */
	a->persisted = 1;
	a->on_demand = rec->activation == 2;
	a->epoch = (uint32_t)rec->epoch;
	snprintf(a->home, sizeof a->home, "%.63s", rec->home);
	a->mem_quota = code->memory && code->memory < rt->cfg->memory_limit ? code->memory
									  : rt->cfg->memory_limit;
	a->instr_quota = rt->cfg->instruction_limit;
	a->created = rec->updated_ms;
	snprintf(a->reason, sizeof a->reason, "resumed after restart");
	a->from_store = 1;
	log = log_load(rt, a->id);
	pthread_mutex_lock(&rt->mu);
	if (find(rt, a->id) != NULL || insert(rt, a) != 0) {
		pthread_mutex_unlock(&rt->mu);
		agd_logring_destroy(&log);
		agd_code_unref(rt, &a->code);
		free(a);
		return 0;
	}
	a->log = log;
	a->log_saved = agd_logring_seq(log);
	ring_add(rt, a, "[state] resumed after restart", 29);
	agd_sched_enqueue(rt, a);
	pthread_mutex_unlock(&rt->mu);
	agd_log(AGD_LOG_INFO, "agent.resumed", "agent=%s status=%s", a->id, rec->status);
	lc->n++;
	return 0;
}

int agd_rt_start(struct agd_rt *rt)
{
	struct load_ctx lc = { rt, 0 };

	/* The stored agents are queued before any worker runs: the listing
	 * holds the store's lock while load_one takes the runtime's, and a
	 * worker takes them the other way round (a state change written to
	 * the store under the runtime's lock). With no worker yet, nobody can
	 * hold the second while waiting for the first. */
	if (rt->store != NULL) {
		agd_store_agent_list(rt->store, NULL, 0, load_one, &lc);
		if (lc.n > 0)
			agd_log(AGD_LOG_INFO, "daemon.resumed", "agents=%u", lc.n);
	}
	return agd_sched_start(rt);
}

void agd_rt_stop(struct agd_rt *rt, int persist)
{
	size_t persisted = 0;

	pthread_mutex_lock(&rt->mu);
	if (rt->stopped) {
		pthread_mutex_unlock(&rt->mu);
		return;
	}
	rt->stopping = 1;
	if (persist) {
		/* Queue every agent that has a vm: the workers persist each at
		 * its next safe point (now for waiting ones, after its slice for
		 * running ones) and close it. Agents on CPU now come back with
		 * a vm and are queued in the next round; each round closes every
		 * vm it reaches, so the rounds end. */
		for (;;) {
			size_t left = 0;

			for (size_t i = 0; i < rt->nbuckets; i++)
				for (struct agd_agent *a = rt->buckets[i]; a; a = a->hnext)
					if (a->vm != NULL && !ended(a->state) &&
					    a->state != AGD_MIGRATING) {
						agd_sched_enqueue(rt, a);
						left++;
					}
			if (left == 0)
				break;
			persisted += left;
			agd_sched_drain(rt);
		}
	}
	agd_sched_halt(rt);
	pthread_mutex_unlock(&rt->mu);
	agd_sched_join(rt);
	agd_log(AGD_LOG_INFO, "daemon.persisted", "agents=%zu", persisted);
}

void agd_rt_destroy(struct agd_rt **rt_p)
{
	struct agd_rt *rt;

	if (rt_p == NULL || *rt_p == NULL)
		return;
	rt = *rt_p;
	if (rt->nworkers > 0)
		agd_rt_stop(rt, 0);
	for (size_t i = 0; rt->buckets && i < rt->nbuckets; i++) {
		while (rt->buckets[i] != NULL) {
			struct agd_agent *a = rt->buckets[i];

			rt->buckets[i] = a->hnext;
			agd_vm_destroy(&a->vm, 0);
			mbox_clear(a);
			park_clear(a);
			while (a->calls_head != NULL) {
				struct agd_call_in *c = a->calls_head;

				a->calls_head = c->next;
				free(c);
			}
			agd_buf_free(&a->saved);
			agd_logring_destroy(&a->log);
			a->code->refs--;
			free(a);
		}
	}
	while (rt->codes != NULL) {
		struct agd_code *c = rt->codes;

		rt->codes = c->next;
		mig_segment_destroy(&c->seg);
		free(c->text);
		free(c);
	}
	free(rt->buckets);
	agd_sched_fini(rt);
	agd_store_close(&rt->store);
	agd_trust_destroy(&rt->trust);
	res_registry_destroy(&rt->reg);
	for (size_t i = 0; i < rt->nhosts; i++)
		free(rt->hosts[i]);
	free(rt->hosts);
	pthread_mutex_destroy(&rt->res_mu);
	pthread_mutex_destroy(&rt->mu);
	free(rt);
	*rt_p = NULL;
}

/* The tick's checkpoint timer (agd_sched.c) asks for checkpoints here: it
 * knows the queues, not which agents have a state worth keeping. */
void agd_rt_checkpoint_all(struct agd_rt *rt)
{
	for (size_t i = 0; i < rt->nbuckets; i++)
		for (struct agd_agent *a = rt->buckets[i]; a; a = a->hnext)
			if (a->vm != NULL && !ended(a->state) && a->state != AGD_MIGRATING) {
				a->checkpoint_req = 1;
				agd_sched_enqueue(rt, a);
			}
}

/* ------------------------------------------------------------ code cache */

static struct agd_code *code_lookup(struct agd_rt *rt, const uint8_t hash[32])
{
	for (struct agd_code *c = rt->codes; c; c = c->next)
		if (memcmp(c->hash, hash, 32) == 0)
			return c;
	return NULL;
}

struct agd_code *agd_rt_code_find(struct agd_rt *rt, const uint8_t hash[32])
{
	struct agd_code *c;

	pthread_mutex_lock(&rt->mu);
	c = code_lookup(rt, hash);
	if (c != NULL)
		c->refs++;
	pthread_mutex_unlock(&rt->mu);
	if (c == NULL && rt->store != NULL) {
		uint8_t *bytes = NULL;
		size_t len = 0;
		char err[256];

		/* Not in memory: the store's code cache holds it once verified. */
		if (agd_store_segment_get(rt->store, hash, &bytes, &len) == 0) {
			if (agd_rt_code_add(rt, bytes, len, &c, err, sizeof err) != 0)
				c = NULL;
			free(bytes);
		}
	}
	return c;
}

void agd_code_unref(struct agd_rt *rt, struct agd_code **code_p)
{
	if (code_p == NULL || *code_p == NULL)
		return;
	pthread_mutex_lock(&rt->mu);
	(*code_p)->refs--;
	pthread_mutex_unlock(&rt->mu);
	*code_p = NULL;
}

static int code_insert(struct agd_rt *rt, struct agd_code *c, struct agd_code **out)
{
	struct agd_code *old;

	pthread_mutex_lock(&rt->mu);
	old = code_lookup(rt, c->hash);
	if (old != NULL) {
		old->refs++;
		pthread_mutex_unlock(&rt->mu);
		mig_segment_destroy(&c->seg);
		free(c->text);
		free(c);
		*out = old;
		return 0;
	}
	c->refs = 1;
	c->next = rt->codes;
	rt->codes = c;
	pthread_mutex_unlock(&rt->mu);
	*out = c;
	return 0;
}

int agd_rt_code_add(struct agd_rt *rt, const void *bytes, size_t len, struct agd_code **out,
		    char *err, size_t err_len)
{
	struct mig_segment *seg = NULL;
	struct mig_error e;
	const struct mig_manifest *m;
	struct agd_code *c;
	int rc;

	*out = NULL;
	rc = mig_segment_decode(bytes, len, &seg, &e);
	if (rc != 0) {
		snprintf(err, err_len, "segment: %s", e.msg);
		return AGD_ERR_SEGMENT;
	}
	if (rt->trust == NULL) {
		snprintf(err, err_len, "no trust store (%s): refusing all code", rt->trust_why);
		mig_segment_destroy(&seg);
		return AGD_ERR_UNTRUSTED;
	}
	rc = agd_trust_decide(rt->trust, seg, err, err_len);
	if (rc != 0) {
		mig_segment_destroy(&seg);
		return AGD_ERR_UNTRUSTED;
	}
	m = mig_segment_manifest(seg);
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		mig_segment_destroy(&seg);
		return AGD_ERR_NOMEM;
	}
	memcpy(c->hash, mig_segment_hash(seg), 32);
	mig_hash_hex(c->hash, c->hex);
	snprintf(c->name, sizeof c->name, "%s", m->name);
	snprintf(c->entry_file, sizeof c->entry_file, "%s", m->entry_file);
	snprintf(c->entry_func, sizeof c->entry_func, "%s", m->entry_func);
	c->on_demand = m->activation == MIG_ACTIVATION_ON_DEMAND;
	c->memory = m->quota_memory;
	c->slice = m->quota_instructions > UINT32_MAX ? UINT32_MAX : (uint32_t)m->quota_instructions;
	c->seg = seg;
	if (rt->store != NULL) {
		rc = agd_store_segment_put(rt->store, seg);
		if (rc != 0)
			agd_log(AGD_LOG_WARN, "store.failed", "op=segment_put segment=%s error=\"%s\"",
				c->hex, agd_store_strerror(rc));
	}
	return code_insert(rt, c, out);
}

int agd_rt_code_source(struct agd_rt *rt, const char *name, const char *text, size_t len,
		       struct agd_code **out, char *err, size_t err_len)
{
	struct agd_code *c;

	*out = NULL;
	if (!rt->cfg->allow_source) {
		snprintf(err, err_len, "plain source is refused: run a signed segment");
		return AGD_ERR_UNTRUSTED;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL || (c->text = malloc(len + 1)) == NULL) {
		free(c);
		return AGD_ERR_NOMEM;
	}
	memcpy(c->text, text, len);
	c->text[len] = '\0';
	c->text_len = len;
	crypto_generichash(c->hash, 32, (const unsigned char *)text, len, NULL, 0);
	sodium_bin2hex(c->hex, sizeof c->hex, c->hash, 32);
	snprintf(c->name, sizeof c->name, "%s", name && name[0] ? name : "source");
	snprintf(c->entry_file, sizeof c->entry_file, "%s.lua", c->name);
	return code_insert(rt, c, out);
}

int agd_rt_code_local(struct agd_rt *rt, const void *bytes, size_t len, struct agd_code **out,
		      char *err, size_t err_len)
{
	struct mig_segment *seg = NULL;
	struct mig_error e;
	const struct mig_manifest *m;
	struct agd_code *c;

	*out = NULL;
	if (mig_segment_decode(bytes, len, &seg, &e) != 0) {
		snprintf(err, err_len, "segment: %s", e.msg);
		return AGD_ERR_SEGMENT;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		mig_segment_destroy(&seg);
		return AGD_ERR_NOMEM;
	}
	m = mig_segment_manifest(seg);
	memcpy(c->hash, mig_segment_hash(seg), 32);
	mig_hash_hex(c->hash, c->hex);
	snprintf(c->name, sizeof c->name, "%s", m->name);
	snprintf(c->entry_file, sizeof c->entry_file, "%s", m->entry_file);
	snprintf(c->entry_func, sizeof c->entry_func, "%s", m->entry_func);
	c->seg = seg;
	return code_insert(rt, c, out);
}

int agd_rt_child_new(const struct agd_config *cfg, const struct agd_rt_remote *remote,
		     const char *const *hosts, size_t nhosts, struct agd_rt **out)
{
	struct agd_rt *rt = calloc(1, sizeof *rt);

	*out = NULL;
	if (rt == NULL)
		return AGD_ERR_NOMEM;
	rt->cfg = cfg;
	rt->remote = *remote;
	rt->nbuckets = 16;
	rt->buckets = calloc(rt->nbuckets, sizeof *rt->buckets);
	rt->hosts = calloc(nhosts + 1, sizeof *rt->hosts);
	pthread_mutex_init(&rt->mu, NULL);
	agd_sched_init(rt);
	pthread_mutex_init(&rt->res_mu, NULL);
	if (rt->buckets == NULL || rt->hosts == NULL) {
		agd_rt_destroy(&rt);
		return AGD_ERR_NOMEM;
	}
	for (size_t i = 0; i < nhosts; i++)
		if (hosts[i] != NULL && (rt->hosts[rt->nhosts] = strdup(hosts[i])) != NULL)
			rt->nhosts++;
	*out = rt;
	return 0;
}

/* --------------------------------------------------------------- agents */

static void new_id(char out[AGD_ID_LEN + 1])
{
	unsigned char b[AGD_ID_LEN / 2];

	randombytes_buf(b, sizeof b);
	sodium_bin2hex(out, AGD_ID_LEN + 1, b, sizeof b);
}

/* Adds a; with start, runs it (status "running" to the store unless the
 * row says so already: start == 2). */
static int add_agent(struct agd_rt *rt, struct agd_agent *a, int start)
{
	int rc;

	pthread_mutex_lock(&rt->mu);
	if (rt->stopping) {
		pthread_mutex_unlock(&rt->mu);
		return AGD_ERR_STOPPING;
	}
	if (find(rt, a->id) != NULL) {
		pthread_mutex_unlock(&rt->mu);
		return AGD_ERR_ARG;
	}
	rc = insert(rt, a);
	if (rc == 0) {
		a->code->refs++;
		ring_add(rt, a, "[state] created", 15);
		if (start) {
			change_state(rt, a, AGD_RUNNING, "started", start != 2);
			agd_sched_enqueue(rt, a);
		}
	}
	pthread_mutex_unlock(&rt->mu);
	return rc;
}

static struct agd_agent *agent_alloc(struct agd_rt *rt, struct agd_code *code)
{
	struct agd_agent *a = calloc(1, sizeof *a);

	if (a == NULL)
		return NULL;
	a->code = code;
	a->state = AGD_CREATED;
	a->on_demand = code->on_demand ? 1 : rt->cfg->activation == AGD_ACTIVATION_ON_DEMAND;
	a->mem_quota = code->memory && code->memory < rt->cfg->memory_limit ? code->memory
									  : rt->cfg->memory_limit;
	a->instr_quota = rt->cfg->instruction_limit;
	a->created = wall_ms();
	snprintf(a->home, sizeof a->home, "%s", rt->cfg->host);
	return a;
}

int agd_rt_spawn(struct agd_rt *rt, struct agd_code *code, const struct agd_run_opts *opts,
		 char id_out[AGD_ID_LEN + 1], char *err, size_t err_len)
{
	struct agd_agent *a = agent_alloc(rt, code);
	int rc;

	if (a == NULL)
		return AGD_ERR_NOMEM;
	if (opts != NULL) {
		if (opts->activation >= 0)
			a->on_demand = opts->activation == AGD_ACTIVATION_ON_DEMAND;
		if (opts->memory > 0 && opts->memory < a->mem_quota)
			a->mem_quota = opts->memory;
		if (opts->instructions > 0 &&
		    (a->instr_quota == 0 || opts->instructions < a->instr_quota))
			a->instr_quota = opts->instructions;
		if (opts->home != NULL && opts->home[0] != '\0')
			snprintf(a->home, sizeof a->home, "%s", opts->home);
		if (opts->args != NULL) {
			/* Delivered at the first resume, as a pending recv's
			 * value would be: it becomes the chunk's `...`. */
			struct agd_msg *m = malloc(sizeof *m + opts->args_len);

			if (m == NULL) {
				free(a);
				return AGD_ERR_NOMEM;
			}
			memset(m, 0, sizeof *m);
			m->len = opts->args_len;
			memcpy(m->data, opts->args, opts->args_len);
			a->mb_head = a->mb_tail = m;
			a->mb_n = 1;
			a->wait = W_RECV;
		}
	}
	new_id(a->id);
	/* The record goes to the store first, so that a crash right after the
	 * reply still finds the agent (it starts again at its entry, with its
	 * run arguments). */
	rc = store_put_args(rt, a, NULL, 0, "created", NULL, opts != NULL && opts->args != NULL ? a->mb_head : NULL);
	if (rc != 0 && rc != AGD_ERR_UNAVAILABLE) {
		snprintf(err, err_len, "cannot record the agent in the store");
		mbox_clear(a);
		free(a);
		return rc;
	}
	rc = add_agent(rt, a, 1);
	if (rc != 0) {
		snprintf(err, err_len, "%s", agd_strerror(rc));
		mbox_clear(a);
		free(a);
		return rc;
	}
	memcpy(id_out, a->id, AGD_ID_LEN + 1);
	return 0;
}

int agd_rt_child_agent(struct agd_rt *rt, struct agd_code *code, const char *id, const char *home,
		       struct agd_agent **out, char *err, size_t err_len)
{
	struct agd_agent *a = agent_alloc(rt, code);
	int rc;

	*out = NULL;
	if (a == NULL)
		return AGD_ERR_NOMEM;
	snprintf(a->id, sizeof a->id, "%s", id);
	snprintf(a->home, sizeof a->home, "%s", home);
	rc = add_agent(rt, a, 0);
	if (rc != 0) {
		snprintf(err, err_len, "%s", agd_strerror(rc));
		free(a);
		return rc;
	}
	*out = a;
	return 0;
}

int agd_rt_admit(struct agd_rt *rt, const struct agd_admit *in, struct agd_code *code, char *err,
		 size_t err_len)
{
	struct agd_agent *a;
	int rc, stored;

	if (in->id == NULL || strlen(in->id) != AGD_ID_LEN) {
		snprintf(err, err_len, "bad agent id");
		return AGD_ERR_ARG;
	}
	a = agent_alloc(rt, code);
	if (a == NULL)
		return AGD_ERR_NOMEM;
	/* Written already (by the transfer's activation) only counts where
	 * this runtime would have written it: its store, code from a segment. */
	stored = in->stored && rt->store != NULL && a->code->seg != NULL;
	memcpy(a->id, in->id, AGD_ID_LEN + 1);
	a->epoch = in->epoch;
	a->on_demand = in->activation == AGD_ACTIVATION_ON_DEMAND;
	if (in->home != NULL)
		snprintf(a->home, sizeof a->home, "%s", in->home);
	if (in->log != NULL && in->log_len > 0) {
		/* Its lines from the hosts it came through go first; a bad
		 * log part costs the lines, not the agent. */
		rc = agd_logring_decode(in->log, in->log_len, &a->log);
		if (rc != 0)
			agd_log(AGD_LOG_WARN, "agent.log_refused", "agent=%s bytes=%zu error=\"%s\"",
				a->id, in->log_len, agd_strerror(rc));
	}
	if (stored && a->log != NULL)
		a->log_saved = agd_logring_seq(a->log);
	if (!stored && in->state == NULL && a->log != NULL && rt->store != NULL && a->code->seg != NULL) {
		/* Weak: no row is written here; the log is stored on its own
		 * so a restart before its first state still has it. */
		char key[AGD_STORE_KEY_MAX + 1];
		uint8_t *b = NULL;
		size_t blen = 0;

		agd_logring_key(key, sizeof key, a->id);
		if (agd_logring_encode(a->log, &b, &blen) == 0 && b != NULL &&
		    agd_store_kv_put(rt->store, key, b, blen) == 0)
			a->log_saved = agd_logring_seq(a->log);
		free(b);
	}
	if (in->state != NULL && !stored) {
		rc = store_put(rt, a, in->state, in->state_len, "running", NULL);
		if (rc != 0) {
			if (rc != AGD_ERR_UNAVAILABLE) {
				snprintf(err, err_len, "cannot store the agent");
				agd_logring_destroy(&a->log);
				free(a);
				return rc;
			}
			a->saved.data = malloc(in->state_len ? in->state_len : 1);
			if (a->saved.data == NULL) {
				agd_logring_destroy(&a->log);
				free(a);
				return AGD_ERR_NOMEM;
			}
			memcpy(a->saved.data, in->state, in->state_len);
			a->saved.len = a->saved.cap = in->state_len;
		}
	}
	if (in->state != NULL) {
		a->persisted = 1;
		a->from_store = 1;
	}
	rc = add_agent(rt, a, stored ? 2 : 1);
	if (rc != 0) {
		snprintf(err, err_len, "%s", agd_strerror(rc));
		agd_buf_free(&a->saved);
		agd_logring_destroy(&a->log);
		free(a);
	}
	return rc;
}

int agd_rt_kill(struct agd_rt *rt, const char *id, const char *reason)
{
	struct agd_agent *a;
	struct agd_vm *dead = NULL;

	pthread_mutex_lock(&rt->mu);
	a = find(rt, id);
	if (a == NULL) {
		pthread_mutex_unlock(&rt->mu);
		return AGD_ERR_NOTFOUND;
	}
	if (ended(a->state)) {
		pthread_mutex_unlock(&rt->mu);
		return AGD_ERR_STATE;
	}
	a->kill_req = 1;
	snprintf(a->reason, sizeof a->reason, "%s", reason ? reason : "killed");
	if (a->on_cpu) {
		if (a->vm != NULL)
			agd_vm_kill(a->vm, a->reason);
	} else if (a->state == AGD_MIGRATING || (!a->queued && a->vm == NULL)) {
		char r[128];

		snprintf(r, sizeof r, "%s", a->reason);
		finish(rt, a, AGD_KILLED, r, &dead);
	} else {
		agd_sched_heap_remove(rt, a);
		agd_sched_lru_remove(rt, a);
		agd_sched_enqueue(rt, a);
	}
	pthread_mutex_unlock(&rt->mu);
	agd_vm_destroy(&dead, 0);
	return 0;
}

int agd_rt_send(struct agd_rt *rt, const char *from, const char *to, const void *data, size_t len)
{
	struct agd_agent *a;
	struct agd_msg *m;

	if (rt->remote.send != NULL)
		return rt->remote.send(rt->remote.ud, to, data, len);
	if (len > rt->cfg->message_max)
		return AGD_ERR_TOOBIG;
	m = malloc(sizeof *m + len);
	if (m == NULL)
		return AGD_ERR_NOMEM;
	m->next = NULL;
	snprintf(m->from, sizeof m->from, "%s", from ? from : "");
	m->len = len;
	memcpy(m->data, data, len);
	pthread_mutex_lock(&rt->mu);
	a = find(rt, to);
	if (a == NULL || ended(a->state) || a->state == AGD_MIGRATING || a->mb_n >= rt->cfg->mailbox_max) {
		int rc = a == NULL ? AGD_ERR_NOTFOUND
			 : a->mb_n >= rt->cfg->mailbox_max ? AGD_ERR_FULL : AGD_ERR_STATE;

		pthread_mutex_unlock(&rt->mu);
		free(m);
		return rc;
	}
	if (a->mb_tail)
		a->mb_tail->next = m;
	else
		a->mb_head = m;
	a->mb_tail = m;
	a->mb_n++;
	if (a->state == AGD_WAITING && a->wait == W_RECV)
		agd_sched_wake(rt, a);
	pthread_mutex_unlock(&rt->mu);
	return 0;
}

int agd_rt_suspend(struct agd_rt *rt, const char *id, agd_rt_suspend_fn done, void *ud)
{
	struct agd_agent *a;
	int rc = 0;

	pthread_mutex_lock(&rt->mu);
	a = find(rt, id);
	if (a == NULL)
		rc = AGD_ERR_NOTFOUND;
	else if (ended(a->state) || a->state == AGD_MIGRATING || a->suspend_fn != NULL)
		rc = AGD_ERR_STATE;
	else if (!agd_vm_can_persist())
		rc = AGD_ERR_UNAVAILABLE;
	else {
		a->suspend_fn = done;
		a->suspend_ud = ud;
		agd_sched_enqueue(rt, a);
	}
	pthread_mutex_unlock(&rt->mu);
	return rc;
}

int agd_rt_release(struct agd_rt *rt, const char *id)
{
	struct agd_agent *a;
	int rc = 0;

	pthread_mutex_lock(&rt->mu);
	a = find(rt, id);
	if (a != NULL && a->state == AGD_MIGRATING)
		a->leaving = 0; /* [call] it stays: calls are taken again */
	if (a == NULL)
		rc = AGD_ERR_NOTFOUND;
	else if (a->state != AGD_MIGRATING)
		rc = AGD_ERR_STATE;
	else if (a->was_waiting && a->wait != W_NONE &&
		 !(a->wait == W_RECV && a->mb_head != NULL)) {
		/* It was waiting when the transfer took it: it waits again,
		 * with its deadline (the tick wakes it if that has passed). One
		 * already woken (its wait still set until it runs) is runnable
		 * again instead: it had no deadline left to wait for, and waited
		 * forever (a refused push of a ticker under load). */
		agd_rt_set_state(rt, a, AGD_WAITING, "transfer abandoned");
		a->idle_since = agd_now_ms();
		if (a->had_deadline && agd_sched_heap_push(rt, a) == 0)
			agd_loop_wake(rt->loop);
		if (a->on_demand && a->vm != NULL && rt->cfg->passivate_after > 0)
			agd_sched_lru_append(rt, a);
	} else {
		agd_rt_set_state(rt, a, AGD_RUNNING, "transfer abandoned");
		agd_sched_enqueue(rt, a);
	}
	pthread_mutex_unlock(&rt->mu);
	return rc;
}

/* [mig2] see agd_rt.h */
struct agd_msg *agd_rt_mbox_take_all(struct agd_rt *rt, const char *id)
{
	struct agd_agent *a;
	struct agd_msg *list = NULL;

	pthread_mutex_lock(&rt->mu);
	a = find(rt, id);
	if (a != NULL && a->state == AGD_MIGRATING) {
		list = a->mb_head;
		a->mb_head = a->mb_tail = NULL;
		a->mb_n = 0;
	}
	pthread_mutex_unlock(&rt->mu);
	return list;
}

int agd_rt_log_export(struct agd_rt *rt, const char *id, uint8_t **out, size_t *len)
{
	struct agd_agent *a;
	int rc;

	*out = NULL;
	*len = 0;
	pthread_mutex_lock(&rt->mu);
	a = find(rt, id);
	rc = a == NULL ? AGD_ERR_NOTFOUND : agd_logring_encode(a->log, out, len);
	pthread_mutex_unlock(&rt->mu);
	return rc;
}

int agd_rt_forget(struct agd_rt *rt, const char *id, const char *where)
{
	struct agd_agent *a;
	struct agd_vm *dead = NULL;

	pthread_mutex_lock(&rt->mu);
	a = find(rt, id);
	if (a == NULL || a->on_cpu) {
		pthread_mutex_unlock(&rt->mu);
		return a == NULL ? AGD_ERR_NOTFOUND : AGD_ERR_STATE;
	}
	agd_sched_heap_remove(rt, a);
	agd_sched_lru_remove(rt, a);
	if (a->vm != NULL) {
		dead = a->vm;
		a->vm = NULL;
		rt->resident--;
	}
	mbox_clear(a);
	park_clear(a);
	/* Calls still queued (it was taken while passivated, before they
	 * could run): their callers send them again, to where it went. */
	calls_fail(rt, a, AGD_CALL_AGAIN, "the agent moved before it ran the call");
	agd_buf_free(&a->saved);
	agd_log(AGD_LOG_INFO, "agent.gone", "agent=%s to=%s", a->id, where ? where : "?");
	unlink_agent(rt, a);
	pthread_mutex_unlock(&rt->mu);
	agd_vm_destroy(&dead, 1);
	agd_logring_destroy(&a->log);
	agd_code_unref(rt, &a->code);
	free(a);
	return 0;
}

/* ------------------------------------------------- bindings' services */

const struct agd_config *agd_rt_config(const struct agd_rt *rt)
{
	return rt->cfg;
}

const char *agd_agent_id(const struct agd_agent *a)
{
	return a->id;
}

const char *agd_agent_home(const struct agd_agent *a)
{
	return a->home;
}

struct agd_code *agd_agent_code(const struct agd_agent *a)
{
	return a->code;
}

void agd_agent_log(struct agd_rt *rt, struct agd_agent *a, const char *text, size_t len)
{
	if (rt->remote.log != NULL) {
		rt->remote.log(rt->remote.ud, text, len);
		return;
	}
	agd_log(AGD_LOG_INFO, "agent.log", "agent=%s text=\"%.*s\"", a->id,
		(int)(len > AGD_LOG_TEXT_MAX ? AGD_LOG_TEXT_MAX : len), text);
	pthread_mutex_lock(&rt->mu);
	ring_add(rt, a, text, len > AGD_LOG_TEXT_MAX ? AGD_LOG_TEXT_MAX : len);
	pthread_mutex_unlock(&rt->mu);
}

void agd_rt_set_reply(struct agd_rt *rt, agd_rt_reply_fn fn, void *ud)
{
	pthread_mutex_lock(&rt->mu);
	rt->reply_fn = fn;
	rt->reply_ud = ud;
	pthread_mutex_unlock(&rt->mu);
}

int agd_rt_call_in(struct agd_rt *rt, const char *agent, struct agd_call_in **call)
{
	struct agd_agent *a;
	int rc = 0;

	pthread_mutex_lock(&rt->mu);
	a = find(rt, agent);
	if (a == NULL)
		rc = AGD_ERR_NOTFOUND;
	else if (ended(a->state))
		rc = AGD_ERR_STATE;
	else if (a->state == AGD_MIGRATING || a->leaving)
		rc = 1;
	else if (a->ncalls >= rt->cfg->mailbox_max)
		rc = AGD_ERR_FULL;
	else {
		struct agd_call_in *c = *call;

		*call = NULL;
		c->next = NULL;
		if (a->calls_tail)
			a->calls_tail->next = c;
		else
			a->calls_head = c;
		a->calls_tail = c;
		a->ncalls++;
		/* Served at its next turn on a worker, whatever it waits for
		 * (it stays waiting); on CPU now: when it is put down. */
		agd_sched_enqueue(rt, a);
	}
	pthread_mutex_unlock(&rt->mu);
	return rc;
}

void agd_rt_park_expect(struct agd_rt *rt, struct agd_agent *a, uint64_t token)
{
	pthread_mutex_lock(&rt->mu);
	park_clear(a);
	a->park_token = token;
	pthread_mutex_unlock(&rt->mu);
}

int agd_rt_is_child(const struct agd_rt *rt)
{
	return rt->remote.send != NULL;
}

int agd_rt_remote_call(struct agd_rt *rt, uint64_t token, const char *callee, const char *method,
		       const void *args, size_t len, double timeout_s, const char *hint)
{
	if (rt->remote.call == NULL)
		return AGD_ERR_UNAVAILABLE;
	return rt->remote.call(rt->remote.ud, token, callee, method, args, len, timeout_s, hint);
}

int agd_rt_unpark(struct agd_rt *rt, const char *agent, uint64_t token, int code, const char *text,
		  const void *data, size_t len)
{
	struct park_ans *ans;
	struct agd_agent *a;

	/* Copied before the lock: the copy is the only allocation. */
	ans = malloc(sizeof *ans + len);
	if (ans == NULL)
		return AGD_ERR_NOMEM;
	ans->code = code;
	ans->text = text != NULL ? strdup(text) : NULL;
	ans->len = data != NULL ? len : 0;
	ans->has_data = data != NULL;
	if (data != NULL && len > 0)
		memcpy(ans->data, data, len);
	pthread_mutex_lock(&rt->mu);
	a = find(rt, agent);
	if (a == NULL || ended(a->state)) {
		pthread_mutex_unlock(&rt->mu);
		free(ans->text);
		free(ans);
		return AGD_ERR_NOTFOUND;
	}
	if (token == 0 || a->park_token != token || a->park_ans != NULL) {
		/* Not what it waits for (a stale or repeated answer): dropped. */
		pthread_mutex_unlock(&rt->mu);
		free(ans->text);
		free(ans);
		return 0;
	}
	a->park_ans = ans;
	if (a->state == AGD_WAITING && a->wait == W_PARK)
		agd_sched_wake(rt, a);
	/* Otherwise it is still yielding on a worker: agd_rt_work() finds the
	 * answer when the slice ends. */
	pthread_mutex_unlock(&rt->mu);
	return 0;
}

struct agd_msg *agd_agent_mbox_take(struct agd_rt *rt, struct agd_agent *a)
{
	struct agd_msg *m;

	if (rt->remote.take != NULL)
		return rt->remote.take(rt->remote.ud);
	pthread_mutex_lock(&rt->mu);
	m = a->mb_head;
	if (m != NULL) {
		a->mb_head = m->next;
		if (a->mb_head == NULL)
			a->mb_tail = NULL;
		a->mb_n--;
	}
	pthread_mutex_unlock(&rt->mu);
	return m;
}

/* ----------------------------------------------------------------- JSON */

/* What the agent's code allows; plain text (tests, benchmarks) has no
 * manifest and may move either way. Caller holds rt->mu. */
static int code_mobility(const struct agd_code *c)
{
	return c->seg != NULL ? (int)mig_segment_manifest(c->seg)->mobility : MIG_MOBILITY_BOTH;
}

static void agent_json(struct agd_rt *rt, struct agd_agent *a, struct agd_jw *w)
{
	agd_jw_obj_begin(w);
	agd_jw_key(w, "id");
	agd_jw_str(w, a->id);
	agd_jw_key(w, "name");
	agd_jw_str(w, a->code->name);
	agd_jw_key(w, "state");
	agd_jw_str(w, agd_state_name(a->state));
	agd_jw_key(w, "reason");
	agd_jw_str(w, a->reason);
	agd_jw_key(w, "host");
	agd_jw_str(w, rt->cfg->host);
	agd_jw_key(w, "home");
	agd_jw_str(w, a->home);
	agd_jw_key(w, "segment");
	agd_jw_str(w, a->code->hex);
	agd_jw_key(w, "activation");
	agd_jw_str(w, a->on_demand ? "on-demand" : "resident");
	agd_jw_key(w, "mobility");
	agd_jw_str(w, mig_mobility_name((enum mig_mobility)code_mobility(a->code)));
	agd_jw_key(w, "resident");
	agd_jw_bool(w, a->vm != NULL);
	agd_jw_key(w, "epoch");
	agd_jw_int(w, a->epoch);
	agd_jw_key(w, "memory");
	agd_jw_int(w, (long long)a->memory);
	agd_jw_key(w, "instructions");
	agd_jw_int(w, (long long)a->instructions);
	agd_jw_key(w, "switches");
	agd_jw_int(w, (long long)a->switches);
	agd_jw_key(w, "mailbox");
	agd_jw_int(w, a->mb_n);
	agd_jw_key(w, "created_ms");
	agd_jw_int(w, a->created);
	if (rt->cfg->isolation == AGD_ISOLATION_PROCESS) {
		/* Read without the vm's owner: a pid is one word, and a stale
		 * one only names a process that has gone. */
		agd_jw_key(w, "pid");
		agd_jw_int(w, a->vm ? agd_vm_pid(a->vm) : 0);
	}
	agd_jw_obj_end(w);
}

void agd_rt_status_json(struct agd_rt *rt, struct agd_jw *w)
{
	pthread_mutex_lock(&rt->mu);
	agd_jw_key(w, "agents");
	agd_jw_int(w, (long long)(rt->nagents - rt->counts[AGD_FINISHED] - rt->counts[AGD_FAILED] -
				  rt->counts[AGD_KILLED]));
	agd_jw_key(w, "states");
	agd_jw_obj_begin(w);
	for (int s = AGD_CREATED; s <= AGD_KILLED; s++) {
		agd_jw_key(w, agd_state_name((enum agd_state)s));
		agd_jw_int(w, (long long)rt->counts[s]);
	}
	agd_jw_obj_end(w);
	agd_jw_key(w, "resident");
	agd_jw_int(w, (long long)rt->resident);
	agd_jw_key(w, "workers");
	agd_jw_int(w, rt->nworkers);
	agd_jw_key(w, "isolation");
	agd_jw_str(w, rt->cfg->isolation == AGD_ISOLATION_PROCESS ? "process" : "in-daemon");
	agd_jw_key(w, "switches");
	agd_jw_int(w, (long long)rt->switches);
	agd_jw_key(w, "persistence");
	agd_jw_bool(w, agd_vm_can_persist());
	agd_jw_key(w, "store");
	agd_jw_bool(w, rt->store != NULL);
	agd_jw_key(w, "trust_keys");
	agd_jw_int(w, rt->trust ? (long long)agd_trust_count(rt->trust) : 0);
	pthread_mutex_unlock(&rt->mu);
}

void agd_rt_ps_json(struct agd_rt *rt, struct agd_jw *w, int include_ended)
{
	size_t n = 0;
	int truncated = 0;

	pthread_mutex_lock(&rt->mu);
	agd_jw_key(w, "agents");
	agd_jw_arr_begin(w);
	for (size_t i = 0; i < rt->nbuckets && !truncated; i++) {
		for (struct agd_agent *a = rt->buckets[i]; a; a = a->hnext) {
			if (!include_ended && ended(a->state))
				continue;
			if (n++ == PS_MAX) {
				truncated = 1;
				break;
			}
			agent_json(rt, a, w);
		}
	}
	agd_jw_arr_end(w);
	agd_jw_key(w, "truncated");
	agd_jw_bool(w, truncated);
	pthread_mutex_unlock(&rt->mu);
}

int agd_rt_agent_state(struct agd_rt *rt, const char *id, enum agd_state *state,
		       uint64_t *switches, int *resident)
{
	struct agd_agent *a;

	pthread_mutex_lock(&rt->mu);
	a = find(rt, id);
	if (a != NULL) {
		if (state)
			*state = a->state;
		if (switches)
			*switches = a->switches;
		if (resident)
			*resident = a->vm != NULL;
	}
	pthread_mutex_unlock(&rt->mu);
	return a ? 0 : AGD_ERR_NOTFOUND;
}

int agd_rt_agent_mobility(struct agd_rt *rt, const char *id, int *mobility)
{
	struct agd_agent *a;

	pthread_mutex_lock(&rt->mu);
	a = find(rt, id);
	if (a != NULL)
		*mobility = code_mobility(a->code);
	pthread_mutex_unlock(&rt->mu);
	return a ? 0 : AGD_ERR_NOTFOUND;
}

int agd_rt_agent_json(struct agd_rt *rt, const char *id, struct agd_jw *w)
{
	struct agd_agent *a;

	pthread_mutex_lock(&rt->mu);
	a = find(rt, id);
	if (a != NULL) {
		agd_jw_key(w, "agent");
		agent_json(rt, a, w);
	}
	pthread_mutex_unlock(&rt->mu);
	return a ? 0 : AGD_ERR_NOTFOUND;
}

int agd_rt_logs_json(struct agd_rt *rt, const char *id, unsigned max_lines, struct agd_jw *w)
{
	struct agd_agent *a;

	pthread_mutex_lock(&rt->mu);
	a = find(rt, id);
	if (a != NULL) {
		agd_jw_key(w, "id");
		agd_jw_str(w, a->id);
		agd_jw_key(w, "state");
		agd_jw_str(w, agd_state_name(a->state));
		agd_jw_key(w, "reason");
		agd_jw_str(w, a->reason);
		agd_logring_json(a->log, max_lines, w);
	}
	pthread_mutex_unlock(&rt->mu);
	return a ? 0 : AGD_ERR_NOTFOUND;
}
