/*
 * agd_rt.h: the agent runtime without Lua: the registry of agents, their
 * life cycle, mailboxes, the run queue and the worker pool, sleeping agents,
 * passivation and activation, and the code cache (docs/runtime.md).
 * Implemented by agd_rt.c and, for the scheduler (run queue, timer heap,
 * passivation LRU, worker pool, agd_rt_tick), agd_sched.c: agd_sched.h
 * tells how agents are multiplexed over the workers.
 *
 * Model (the seeds' LWP server): agents are user-level threads (a Lua
 * coroutine each, in its own lua_State) multiplexed over N kernel worker
 * threads. A worker takes the agent at the head of the FIFO run queue, runs
 * it for one slice (agd_vm_resume), and then puts it back at the tail
 * (preempted), parks it (sleep, recv: waiting on a timer or a message) or
 * ends it. No agent blocks a worker: every blocking host call yields.
 *
 * Locking: one mutex (rt->mu) guards the registry, every agent's scheduling
 * fields, mailboxes, the run queue and the sleepers heap. An agent's Lua
 * state (a->vm) belongs to the one worker that has it on CPU (a->on_cpu) and
 * is touched without the lock; no other thread touches it then, except
 * agd_vm_kill, which only sets a flag and the hook.
 *
 * Never: run agent code on the dispatcher thread; hold rt->mu across a
 * lua_resume; exit the process.
 */
#ifndef AGD_RT_H
#define AGD_RT_H

#include "agd_config.h"
#include "agd_err.h"
#include "agd_json.h"

#include <stddef.h>
#include <stdint.h>

#define AGD_ID_LEN 16           /* hex digits of an agent id */
#define AGD_NAME_MAX 64         /* agent name bytes */
#define AGD_LOG_LINES 32        /* lines kept per agent for `logs` */
#define AGD_LOG_TEXT_MAX 400    /* bytes of one agent log line */

struct agd_rt;
struct agd_agent;
struct agd_vm;
struct agd_loop;
struct agd_store;
struct mig_segment;

/* Life-cycle states (docs/runtime.md, "Life cycle"). */
enum agd_state {
	AGD_CREATED,
	AGD_RUNNING,   /* runnable or on a worker */
	AGD_WAITING,   /* sleeping or waiting for a message (resident or passivated) */
	AGD_MIGRATING, /* handed out to the transfer protocol */
	AGD_FINISHED,  /* returned from its entry */
	AGD_FAILED,    /* raised an error, or could not be restored */
	AGD_KILLED,    /* ended by kill, or by a quota */
};
const char *agd_state_name(enum agd_state s);

/* A queued message: plain data encoded by mig_data_encode. */
struct agd_msg {
	struct agd_msg *next;          /* mailbox order */
	char from[AGD_ID_LEN + 1];     /* sender id, or "" for the control channel */
	size_t len;                    /* bytes of data */
	uint8_t data[];                /* the encoding */
};

/* Code an agent runs: a verified segment, or (allow_source only) plain text.
 * Immutable once made; shared by reference count across threads. */
struct agd_code {
	int refs;                       /* guarded by rt->mu */
	uint8_t hash[32];               /* segment hash (or BLAKE2b of the text) */
	char hex[65];                   /* its hex */
	struct mig_segment *seg;        /* owned; NULL for plain text */
	char *text;                     /* owned plain text, or NULL */
	size_t text_len;                /* its bytes */
	char name[AGD_NAME_MAX + 1];    /* agent name from the manifest */
	char entry_file[132];           /* file whose chunk runs first */
	char entry_func[68];            /* global called after the chunk, or "" */
	int on_demand;                  /* the manifest asks for on-demand activation */
	size_t memory;                  /* quota asked for (0 = host default) */
	uint32_t slice;                 /* instructions per slice asked for (0 = default) */
	struct agd_code *next;          /* cache chain */
};

/* Options of a new agent (from `run`). */
struct agd_run_opts {
	int activation;          /* -1: manifest/config default; else enum agd_activation */
	size_t memory;           /* 0: default; else at most the host's limit */
	uint64_t instructions;   /* 0: default; else at most the host's limit */
	const char *home;        /* home host, NULL: this host */
	const void *args;        /* encoded arguments (the entry's `...`), or NULL */
	size_t args_len;         /* their bytes */
};

/* Creates the runtime: no threads yet. Returns 0 or a negative agd_err. The
 * config and loop are borrowed and must outlive it. */
int agd_rt_new(const struct agd_config *cfg, struct agd_loop *loop, struct agd_rt **out);
/* Starts the workers, resumes every agent the store holds. 0 or agd_err. */
int agd_rt_start(struct agd_rt *rt);
/* Stops accepting work, persists every agent it can (when persist), stops
 * the workers. Idempotent. */
void agd_rt_stop(struct agd_rt *rt, int persist);
/* Frees everything. NULL-safe. */
void agd_rt_destroy(struct agd_rt **rt_p);

/* The dispatcher's tick (agd_loop_set_tick): wakes due sleepers and queues
 * idle on-demand agents for passivation; returns ms until the next due. */
int agd_rt_tick(struct agd_loop *loop, void *rt);

/* Decodes, verifies (signature and trust store) and caches a signed segment
 * file. On success *out is a new reference (agd_code_unref). */
int agd_rt_code_add(struct agd_rt *rt, const void *bytes, size_t len, struct agd_code **out,
		    char *err, size_t err_len);
/* Wraps plain Lua text as code (only when the config allows it). */
int agd_rt_code_source(struct agd_rt *rt, const char *name, const char *text, size_t len,
		       struct agd_code **out, char *err, size_t err_len);
/* A cached segment by hash, as a new reference, or NULL. */
struct agd_code *agd_rt_code_find(struct agd_rt *rt, const uint8_t hash[32]);
void agd_code_unref(struct agd_rt *rt, struct agd_code **code_p);

/* Creates and schedules an agent running `code` from its entry. Writes its
 * id (AGD_ID_LEN + 1 bytes) to id_out. 0 or agd_err. */
int agd_rt_spawn(struct agd_rt *rt, struct agd_code *code, const struct agd_run_opts *opts,
		 char id_out[AGD_ID_LEN + 1], char *err, size_t err_len);

/* Ends an agent (state killed, reason recorded). 0, AGD_ERR_NOTFOUND or
 * AGD_ERR_STATE (already ended). */
int agd_rt_kill(struct agd_rt *rt, const char *id, const char *reason);

/* Queues a message (copied) for agent `to`, activating it if passivated.
 * 0, AGD_ERR_NOTFOUND, AGD_ERR_STATE (ended), AGD_ERR_FULL, AGD_ERR_TOOBIG. */
int agd_rt_send(struct agd_rt *rt, const char *from, const char *to, const void *data,
		size_t len);

/* JSON writers for the control channel. */
void agd_rt_status_json(struct agd_rt *rt, struct agd_jw *w);
void agd_rt_ps_json(struct agd_rt *rt, struct agd_jw *w, int include_ended);
/* Writes {"id":..,"state":..,"reason":..,"lines":[..],"entries":[..]}
 * with the last max_lines lines (0: all kept): "lines" the texts,
 * "entries" the same lines as {"t":ms,"host":..,"text":..} (where and when
 * each was logged; the log follows the agent from host to host).
 * AGD_ERR_NOTFOUND when unknown. */
int agd_rt_logs_json(struct agd_rt *rt, const char *id, unsigned max_lines, struct agd_jw *w);
/* Writes one agent's ps entry; AGD_ERR_NOTFOUND when unknown. */
int agd_rt_agent_json(struct agd_rt *rt, const char *id, struct agd_jw *w);

/* Cheap look-up of one agent: its state, slices run and whether its Lua
 * state is in memory. 0 or AGD_ERR_NOTFOUND. */
int agd_rt_agent_state(struct agd_rt *rt, const char *id, enum agd_state *state,
		       uint64_t *switches, int *resident);

/* The mobility agent `id`'s manifest allows (enum mig_mobility: weak 1,
 * strong 2, both 3; plain-text agents allow both). 0 or AGD_ERR_NOTFOUND. */
int agd_rt_agent_mobility(struct agd_rt *rt, const char *id, int *mobility);

/* ---- seams for daemon-to-daemon migration (agd_xfer, engineer `mig`) ----
 *
 * agd_rt_suspend: asks agent `id` to stop at its next safe point (a host
 * call that yields, or the end of a slice), then persists it and calls
 * done(ud, id, rc, state, len, code) on a worker thread: rc 0 with the
 * persisted state bytes (borrowed for the call) and the agent's code (a
 * borrowed reference; take agd_code refs to keep it). The agent is then in
 * state MIGRATING and runs no more until agd_rt_release (resume it here,
 * the transfer failed) or agd_rt_forget (it now lives elsewhere). Its row
 * in the store holds that state; its status there is "migrating" when the
 * state was persisted for this call, else (the state stored already was
 * handed out) its last one: recording the move is the caller's (agd_xfer).
 */
typedef void (*agd_rt_suspend_fn)(void *ud, const char *id, int rc, const uint8_t *state,
				  size_t len, struct agd_code *code);
int agd_rt_suspend(struct agd_rt *rt, const char *id, agd_rt_suspend_fn done, void *ud);
int agd_rt_release(struct agd_rt *rt, const char *id);
int agd_rt_forget(struct agd_rt *rt, const char *id, const char *where);
/* [mig2] Takes the messages queued for a migrating agent (oldest first; the
 * caller frees each with free()), so that they follow it rather than being
 * dropped by agd_rt_forget. NULL when none or not migrating. */
struct agd_msg *agd_rt_mbox_take_all(struct agd_rt *rt, const char *id);
/* The log part of agent `id` for its transfer (agd_logring_encode: the
 * newest lines within 16 KiB). *out is malloc'd (the caller frees it), or
 * NULL with *len 0 when it has logged nothing. 0, AGD_ERR_NOTFOUND or
 * AGD_ERR_NOMEM. */
int agd_rt_log_export(struct agd_rt *rt, const char *id, uint8_t **out, size_t *len);

/* agd_rt_admit: admits an arriving agent with its id, persisted state bytes
 * (copied) and code (borrowed; the runtime takes its own reference) and
 * schedules it to resume. 0, AGD_ERR_ARG (id taken), or agd_err. */
struct agd_admit {
	const char *id;          /* its id (kept across hosts) */
	const char *home;        /* its home host */
	uint32_t epoch;          /* transfer epoch */
	int activation;          /* enum agd_activation */
	const uint8_t *state;    /* persisted state, or NULL to start at the entry */
	size_t state_len;        /* bytes */
	const uint8_t *log;      /* its log part from the source (the lines it logged
				  * before it came), or NULL; a malformed one is
				  * ignored (logged), the agent admitted all the same */
	size_t log_len;          /* bytes */
	int stored;              /* 1: the store holds its row (status running, this
				  * state) and this log part under its log key,
				  * committed: admission writes neither again */
};
int agd_rt_admit(struct agd_rt *rt, const struct agd_admit *in, struct agd_code *code,
		 char *err, size_t err_len);

/* ---- resources (resources/res_registry.h) ----
 * The host's registry, built from the config's [resource ID] sections, and
 * the lock that serialises every use of it (the registry is not
 * synchronised): agents holding handles run their slices with it held, and
 * peers' resource requests must take it too. NULL when no resource is
 * configured. */
struct res_registry *agd_rt_registry(struct agd_rt *rt);
void agd_rt_res_lock(struct agd_rt *rt);
void agd_rt_res_unlock(struct agd_rt *rt);
/* Names of the hosts this one knows (itself first, then the trusted-hosts
 * list); *n set to their count. The array lives as long as rt. */
const char *const *agd_rt_hosts(struct agd_rt *rt, size_t *n);
/* The daemon's store (its data directory's AGD_STORE_FILE), or NULL when it
 * has none. Opened private (agd_store_open_private): the modules that keep
 * their records there (mobility, directory, resources) share this handle,
 * whose lock serialises them. Lives as long as rt. */
struct agd_store *agd_rt_store(struct agd_rt *rt);

/* ---- process isolation, worker side (agd_proc.c) ----
 * A runtime with one agent and no workers, store or trust store, whose host
 * services (agd_agent_log, agd_rt_send, agd_agent_mbox_take) go through
 * these hooks to the daemon. */
struct agd_rt_remote {
	void (*log)(void *ud, const char *text, size_t len);
	int (*send)(void *ud, const char *to, const void *data, size_t len);
	struct agd_msg *(*take)(void *ud); /* malloc'd message or NULL */
	void *ud;
	/* [call] a proxy call of the agent (agd_call_start's arguments but
	 * the caller): 0 or an agd_err. May be NULL (unavailable). */
	int (*call)(void *ud, uint64_t token, const char *callee, const char *method,
		    const void *args, size_t len, double timeout_s, const char *hint);
};
int agd_rt_child_new(const struct agd_config *cfg, const struct agd_rt_remote *remote,
		     const char *const *hosts, size_t nhosts, struct agd_rt **out);
/* [call] In a worker process: a proxy call through the daemon (remote.call).
 * 0 or agd_err (AGD_ERR_UNAVAILABLE without the hook). */
int agd_rt_remote_call(struct agd_rt *rt, uint64_t token, const char *callee, const char *method,
		       const void *args, size_t len, double timeout_s, const char *hint);
int agd_rt_child_agent(struct agd_rt *rt, struct agd_code *code, const char *id, const char *home,
		       struct agd_agent **out, char *err, size_t err_len);
/* Decodes a segment the daemon has already verified (no trust check). */
int agd_rt_code_local(struct agd_rt *rt, const void *bytes, size_t len, struct agd_code **out,
		      char *err, size_t err_len);

/* ---- exported methods (agd_call.c; docs/agent-api.md) ----
 * A call for an agent living here waits in its call queue until a worker
 * runs it between the agent's slices (agd_vm_call), activating a
 * passivated agent for it; the outcome goes to the reply function. */
struct agd_call_in {
	struct agd_call_in *next;            /* queue order */
	uint64_t corr;                       /* the caller's call id */
	char agent[AGD_NAME_MAX + 1];        /* the callee (for the REPLY) */
	char caller_host[AGD_NAME_MAX + 1];  /* where the REPLY goes */
	char method[AGD_NAME_MAX + 1];       /* the method */
	size_t len;                          /* bytes of args */
	uint8_t args[];                      /* encoded table {n=, ...} */
};
/* A call's outcome that is no answer: the agent left this host before it
 * ran the call (it was still queued when the transfer took the agent); the
 * caller sends it again, to where the agent went. */
#define AGD_CALL_AGAIN 1

/* Receives each call's outcome: code 0 with the encoded results, an agd_err
 * with text, or AGD_CALL_AGAIN. Called on a worker without the runtime's lock, or
 * with it held for calls the agent will never answer (it ended); it must
 * only copy and queue. data is NULL when code != 0. */
typedef void (*agd_rt_reply_fn)(void *ud, const struct agd_call_in *call, int code,
				const char *text, const void *data, size_t len);
void agd_rt_set_reply(struct agd_rt *rt, agd_rt_reply_fn fn, void *ud);
/* Queues *call (malloc'd) for agent `agent`. 0: taken (*call set to NULL);
 * 1: the agent is being moved away: not taken, hold it until the transfer
 * settles; AGD_ERR_NOTFOUND, AGD_ERR_STATE (ended), AGD_ERR_FULL (more
 * than mailbox_max calls queued): not taken. Any thread. */
int agd_rt_call_in(struct agd_rt *rt, const char *agent, struct agd_call_in **call);

/* ---- used by the Lua bindings (agd_lua.c) ---- */
const struct agd_config *agd_rt_config(const struct agd_rt *rt);
const char *agd_agent_id(const struct agd_agent *a);
const char *agd_agent_home(const struct agd_agent *a);
struct agd_code *agd_agent_code(const struct agd_agent *a);
/* Appends a line to the agent's log ring and the daemon log. */
void agd_agent_log(struct agd_rt *rt, struct agd_agent *a, const char *text, size_t len);
/* Takes the oldest queued message (caller frees with free()), or NULL. */
struct agd_msg *agd_agent_mbox_take(struct agd_rt *rt, struct agd_agent *a);
/* agd_park_token's other half: the agent will park for `token` next; an
 * answer for any other token is dropped (agd_rt_unpark, agd_park.h). */
void agd_rt_park_expect(struct agd_rt *rt, struct agd_agent *a, uint64_t token);
/* Whether rt is a worker process's runtime (process isolation). */
int agd_rt_is_child(const struct agd_rt *rt);

#endif
