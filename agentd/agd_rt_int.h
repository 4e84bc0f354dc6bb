/*
 * agd_rt_int.h: the runtime's shared records, private to agd_rt.c (registry,
 * life cycle, persistence, code cache) and agd_sched.c (run queue, timer
 * heap, passivation LRU, worker pool). Not part of the agd_rt.h API: no
 * other file includes it, so the layout may change with these two files.
 *
 * Locking: rt->mu guards every field of both structs below unless a field
 * says otherwise; agd_sched.h lists the scheduler's share of them and who
 * touches which. An agent's vm belongs to the worker that has it on CPU
 * (a->on_cpu) and is used without the lock.
 */
#ifndef AGD_RT_INT_H
#define AGD_RT_INT_H

#include "agd_rt.h"

#include "mig_state.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

enum wait_kind { W_NONE, W_SLEEP, W_RECV, W_PARK };

/* The answer to a park, kept from agd_rt_unpark until the agent runs. */
struct park_ans {
	int code;                      /* 0 or an agd_err */
	char *text;                    /* malloc'd, or NULL */
	size_t len;                    /* bytes of data */
	int has_data;                  /* data is a value (else nil) */
	uint8_t data[];                /* the bytes */
};

struct agd_agent {
	char id[AGD_ID_LEN + 1];      /* hex id */
	enum agd_state state;         /* public life-cycle state */
	char reason[128];             /* why it is in that state */
	char home[64];                /* home host */
	int on_demand;                /* activation policy: passivate when idle */
	uint32_t epoch;               /* migration epoch */
	struct agd_code *code;        /* reference */
	struct agd_vm *vm;            /* Lua side; NULL when passivated or ended */
	struct mig_buf saved;         /* last persisted state (when no store) */
	int persisted;                /* a state is in the store or in saved */
	int from_store;               /* loaded or admitted: its wait is in its state */
	uint8_t clean;                /* vm is exactly the state last persisted (restored
					 or persisted, not run since): a move need not
					 persist it again */
	uint8_t queued;               /* in the run queue */
	uint8_t on_cpu;               /* a worker has it */
	uint8_t kill_req;             /* end it when next seen */
	uint8_t passivate_req;        /* persist and close it when next seen */
	uint8_t checkpoint_req;       /* persist it (and keep running) when next seen */
	uint8_t timed_out;            /* its wait's deadline passed */
	uint8_t lru_in;               /* in the idle list */
	uint8_t had_deadline;         /* its wait had a deadline when a transfer took it */
	uint8_t was_waiting;          /* it was waiting (not woken yet) when a transfer took it */
	enum wait_kind wait;          /* what it waits for */
	uint64_t wake_at;             /* deadline in agd_now_ms(), when heap_i */
	size_t heap_i;                /* 1-based heap position, 0 = none */
	uint64_t idle_since;          /* when it started waiting */
	struct agd_agent *rq_next;    /* run queue link */
	struct agd_agent *hnext;      /* registry chain */
	struct agd_agent *lru_prev;   /* idle list links */
	struct agd_agent *lru_next;
	struct agd_msg *mb_head;      /* mailbox */
	struct agd_msg *mb_tail;
	uint32_t mb_n;                /* messages queued */
	uint32_t log_saved;           /* agd_logring_seq of the log last stored (in
				       * mb_n's padding: no bigger per agent) */
	struct agd_logring *log;      /* lines for `logs` (time, host, text), or NULL */
	size_t memory;                /* bytes, at the last slice */
	uint64_t instructions;        /* at the last slice */
	uint64_t switches;            /* slices run */
	size_t mem_quota;             /* its memory quota */
	uint64_t instr_quota;         /* its instruction quota */
	agd_rt_suspend_fn suspend_fn; /* migration seam callback, or NULL */
	void *suspend_ud;             /* its argument */
	int64_t created;              /* wall clock, ms */
	uint64_t park_token;          /* the park it expects an answer for (agd_park.h), 0 none */
	struct park_ans *park_ans;    /* that answer, once come; owned */
	uint8_t park_lost;            /* parked when persisted: resume it with an error */
	uint8_t args_kept;            /* its run arguments are in the store (ARGS_KEY) */
	uint8_t leaving;              /* a transfer is persisting it: calls are held elsewhere */
	struct agd_call_in *calls_head; /* calls waiting to be run (agd_call) */
	struct agd_call_in *calls_tail;
	uint32_t ncalls;              /* their number */
};

struct agd_rt {
	const struct agd_config *cfg; /* borrowed */
	struct agd_loop *loop;        /* borrowed: the dispatcher's */
	pthread_mutex_t mu;           /* guards everything below */
	/* The scheduler's share (agd_sched.c; agd_sched.h says who touches what). */
	pthread_cond_t work_cv;       /* run queue not empty, or stopping */
	pthread_cond_t idle_cv;       /* a worker put an agent down */
	struct agd_agent *rq_head;    /* run queue, FIFO */
	struct agd_agent *rq_tail;
	struct agd_agent **heap;      /* waiting agents with a deadline, min wake_at */
	size_t nheap;
	size_t heap_cap;
	struct agd_agent *lru_head;   /* idle on-demand agents, oldest first */
	struct agd_agent *lru_tail;
	pthread_t *workers;           /* worker threads */
	unsigned nworkers;            /* started */
	unsigned busy;                /* workers with an agent on CPU */
	int stopped;                  /* halted: workers return when the queue is empty */
	uint64_t poll_deadline;       /* the dispatcher sleeps until this (ms) */
	uint64_t last_checkpoint;     /* ms */
	/* The rest of the runtime (agd_rt.c). */
	struct agd_agent **buckets;   /* registry */
	size_t nbuckets;              /* power of two */
	size_t nagents;               /* records, ended ones included */
	size_t counts[AGD_KILLED + 1]; /* agents per state */
	size_t resident;              /* agents with a vm */
	struct agd_code *codes;       /* code cache */
	int stopping;                 /* no new work; persist instead of running */
	uint64_t switches;            /* slices run, all agents */
	int64_t started;              /* wall clock, ms */
	struct agd_store *store;      /* durable store, or NULL (no data dir) */
	struct agd_trust *trust;      /* trust store, or NULL (none: refuse all) */
	char trust_why[256];          /* why there is no trust store */
	struct res_registry *reg;     /* resources, or NULL */
	pthread_mutex_t res_mu;       /* serialises every use of reg */
	char **hosts;                 /* known host names, this one first */
	size_t nhosts;
	struct agd_rt_remote remote;  /* worker process: host services via the daemon */
	agd_rt_reply_fn reply_fn;     /* where calls' outcomes go, or NULL */
	void *reply_ud;
};

/* ---- agd_rt.c's side, called by the scheduler (agd_sched.c) ---- */

/* Runs one piece of work for a, which a worker has just taken from the run
 * queue: its queued calls, a kill, a persist at this safe point
 * (passivation, checkpoint, stop, the migration seam), its activation, and
 * one slice of its VM, after which it puts a back where the slice's end
 * says (agd_sched.h). Lock held on entry and on return; dropped around
 * every stretch that runs the VM or the store, with a->on_cpu set and
 * rt->busy counted. */
void agd_rt_work(struct agd_rt *rt, struct agd_agent *a);

/* Changes a's state, with a log line; transitions other than
 * running<->waiting also go to the agent's own log and the store. Lock
 * held. */
void agd_rt_set_state(struct agd_rt *rt, struct agd_agent *a, enum agd_state s,
		      const char *reason);

/* Asks every resident agent that has not ended or left for a checkpoint at
 * its next safe point (the tick's checkpoint timer). Lock held. */
void agd_rt_checkpoint_all(struct agd_rt *rt);

#endif
