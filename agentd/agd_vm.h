/*
 * agd_vm.h: one agent's Lua side: its sandboxed lua_State, the coroutine it
 * runs in, its memory and instruction accounting, and persistence through
 * the strong-mobility engine. Implemented by agd_lua.c, the one file of Lua
 * bindings (docs/agent-api.md).
 *
 * Thread-safety: a vm is used by one thread at a time (the worker that has
 * its agent on CPU), except agd_vm_kill, which any thread may call.
 */
#ifndef AGD_VM_H
#define AGD_VM_H

#include "agd_rt.h"

#include <stddef.h>
#include <stdint.h>

struct mig_buf;

/* Why agd_vm_resume returned. */
enum agd_vm_status {
	AGD_VM_PREEMPTED, /* slice used up: runnable again */
	AGD_VM_SLEEP,     /* agent.sleep: wake after `timeout` seconds */
	AGD_VM_RECV,      /* agent.recv: wake on a message, or after `timeout` (< 0: never) */
	AGD_VM_DONE,      /* the entry returned */
	AGD_VM_ERROR,     /* an error escaped (reason holds the message) */
	AGD_VM_KILLED,    /* a quota or agd_vm_kill ended it (reason says which) */
	AGD_VM_MIGRATE,   /* [mig2] agent.migrate/clone: reason = target host, move_flags (agd_moblua.h) */
	AGD_VM_PARK,      /* agd_park_yield: wake on agd_rt_unpark(token), or after `timeout` */
};

struct agd_vm_result {
	enum agd_vm_status status; /* see above */
	double timeout;            /* seconds for SLEEP and RECV */
	char reason[256];          /* for ERROR and KILLED */
	unsigned move_flags;       /* [mig2] MIGRATE: AGD_MOVE_* (agd_mobility.h) */
	uint64_t token;            /* PARK: the token the answer must carry */
};

/* Quotas of one agent. */
struct agd_vm_limits {
	size_t memory;          /* bytes the allocator grants */
	uint32_t slice;         /* instructions per slice */
	uint64_t instructions;  /* total instructions; 0 = unlimited */
};

/* Frees a mig_buf's bytes and zeroes it (like mig_buf_free; kept here so
 * the runtime links whichever parts of the engine are present). */
void agd_buf_free(struct mig_buf *b);

/* What a persisted agent was waiting for, carried inside its state so that
 * a restart or another host resumes the wait rather than the agent. */
enum agd_vm_wait_kind { AGD_VM_WAIT_NONE, AGD_VM_WAIT_SLEEP, AGD_VM_WAIT_RECV, AGD_VM_WAIT_PARK };
struct agd_vm_wait {
	int kind;          /* enum agd_vm_wait_kind */
	int64_t until_ms;  /* deadline, wall clock ms since the epoch; 0 = none */
};

/* Whether this build has the strong-mobility engine (persistence). */
int agd_vm_can_persist(void);

/* Makes a fresh vm for agent a (borrowed; must outlive the vm) that will
 * run its code from the entry. 0 or agd_err with err filled. */
int agd_vm_new(struct agd_rt *rt, struct agd_agent *a, const struct agd_vm_limits *lim,
	       struct agd_vm **out, char *err, size_t err_len);
/* Rebuilds a vm from persisted bytes; *wait (may be NULL) gets what it was
 * waiting for. 0 or agd_err with err filled. */
int agd_vm_restore(struct agd_rt *rt, struct agd_agent *a, const struct agd_vm_limits *lim,
		   const void *state, size_t len, struct agd_vm **out, struct agd_vm_wait *wait,
		   char *err, size_t err_len);
/* Persists a suspended vm with what it waits for (appends to out). 0 or
 * agd_err with err filled. */
int agd_vm_persist(struct agd_vm *vm, const struct agd_vm_wait *wait, struct mig_buf *out,
		   char *err, size_t err_len);

/* Runs one slice. When deliver is set (the agent waits in agent.recv), msg
 * (borrowed; NULL for a timeout) becomes recv's result. */
void agd_vm_resume(struct agd_vm *vm, int deliver, const struct agd_msg *msg,
		   struct agd_vm_result *res);

/* The answer to a park (agd_park.h), for agd_vm_unpark. Borrowed. */
struct agd_park_answer {
	int code;             /* 0, or an agd_err */
	const char *text;     /* may be NULL */
	const void *data;     /* may be NULL (then nil) */
	size_t len;           /* bytes of data */
};

/* Before agd_vm_resume of an agent that parked (AGD_VM_PARK): stages what
 * the park's continuation receives (ans NULL: a timeout, with `why` as the
 * text, or "no answer in time"). The next agd_vm_resume (deliver 0) passes
 * it. A memory failure passes code AGD_ERR_NOMEM instead. */
void agd_vm_unpark(struct agd_vm *vm, const struct agd_park_answer *ans, const char *why);

/* An exported method's outcome (agd_vm_call). */
struct agd_vm_call_result {
	int code;             /* 0: results holds the encoded results; else an agd_err */
	char text[512];       /* the error text when code != 0 */
	struct mig_buf *out;  /* where the results go (caller's buffer) */
};

/* Runs exported method `method` of the agent (agent.export) to completion,
 * in a fresh coroutine of its state, with args (an encoded table: the
 * arguments, `n` their count) and appends the encoded results (a table,
 * `n` their count) to res->out. The agent must be off CPU and not moving
 * (its worker calls this between slices). A method that raises, yields or
 * tries to block, or runs longer than its budget, gives an error result;
 * the agent lives on unless a quota ended it (then it is killed at its next
 * resume). */
void agd_vm_call(struct agd_vm *vm, const char *method, const void *args, size_t len,
		 struct agd_vm_call_result *res);

/* Whether a quota or a kill has ended the agent (it must be resumed, or
 * ended, to record it). */
int agd_vm_killed(const struct agd_vm *vm, char *reason, size_t len);

/* Ends the agent at its next instruction (thread-safe). reason is copied. */
void agd_vm_kill(struct agd_vm *vm, const char *reason);

/* The worker process of a vm in process isolation, else 0. */
long agd_vm_pid(const struct agd_vm *vm);

/* The same from a signal handler in a worker process (no reason). */
void agd_vm_kill_async(struct agd_vm *vm);

/* Bytes the agent's state holds, and instructions it has run (approximate:
 * counted per hook period). */
size_t agd_vm_memory(const struct agd_vm *vm);
uint64_t agd_vm_instructions(const struct agd_vm *vm);

/* Encodes JSON value v as an agent message (what agent.recv returns:
 * objects become tables, arrays sequences, null nil). Appends to out.
 * 0 or agd_err with err filled. Thread-safe (uses a scratch state). */
int agd_msg_from_json(const struct agd_json *doc, const struct agd_json_val *v,
		      struct mig_buf *out, char *err, size_t err_len);

/* [call] Encodes JSON array v as a call's arguments (a table of its items
 * with `n`, their count). 0, AGD_ERR_ARG (not an array, not plain data) or
 * AGD_ERR_NOMEM, with err filled. Thread-safe. */
int agd_call_args_from_json(const struct agd_json *doc, const struct agd_json_val *v,
			    struct mig_buf *out, char *err, size_t err_len);
/* [call] Writes a call's encoded results (a table with `n`) into the open
 * JSON object w as "result": the first, and "results": all of them.
 * Tables become arrays (keys exactly 1..n) or objects (sorted keys); what
 * JSON cannot carry becomes null. 0, AGD_ERR_ARG (undecodable) or
 * AGD_ERR_NOMEM. Thread-safe. */
int agd_call_results_json(const void *data, size_t len, struct agd_jw *w);

/* Closes the state. `moved` drops pending finalizers first (the agent lives
 * on elsewhere). NULL-safe. */
void agd_vm_destroy(struct agd_vm **vm_p, int moved);

#endif
