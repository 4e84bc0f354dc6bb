/*
 * agd_sched.h: the scheduler: how agents are multiplexed over kernel worker
 * threads, preempted and woken (docs/runtime.md, "Threads"). Private to the
 * agd library (agd_rt.c and agd_sched.c); the daemon sees it only through
 * agd_rt.h (agd_rt_start, agd_rt_stop, agd_rt_tick).
 *
 * The LWP model (the seeds' light-weight-process server). An agent is a
 * user-level thread: a Lua coroutine in its own lua_State. A pool of kernel
 * threads, the workers, multiplexes them: a worker takes the agent at the
 * head of the FIFO run queue and hands it to agd_rt_work (agd_rt.c), which
 * runs one slice of it (agd_vm_resume, agd_lua.c) and puts it back here
 * according to how the slice ended:
 *  - preempted: the instruction-count hook (agd_lua.c) yields the agent when
 *    its slice of instructions runs out, from nested coroutines too: it goes
 *    back to the tail of the run queue;
 *  - waiting: every blocking host call (sleep, recv, a park for an answer
 *    from elsewhere) yields instead of blocking the worker; a deadline puts
 *    the agent into the timer heap, and an idle on-demand agent goes into
 *    the passivation LRU;
 *  - ended: it leaves every queue.
 * So no agent ever blocks a worker: one worker is the iterative server,
 * several the concurrent one (bench/sched measures both). A waiting agent
 * is made runnable by agd_sched_wake: from the dispatcher's tick
 * (agd_rt_tick, here) when its deadline passes, from agd_rt_send when a
 * message comes, from agd_rt_unpark when its answer does. The tick also
 * turns agents idle for passivate_after into passivation jobs, and every
 * checkpoint_interval asks for checkpoints (agd_rt_checkpoint_all).
 * Passivation, checkpoints, activation and the migration seam are jobs on
 * the same run queue, run by agd_rt_work at the agent's safe points
 * (between slices), so a slow persist never stalls the dispatcher.
 *
 * Locking. rt->mu (agd_rt_int.h) protects, besides the rest of the runtime:
 *  - the run queue: rt->rq_head, rt->rq_tail, a->queued, a->rq_next;
 *  - the timer heap: rt->heap, rt->nheap, rt->heap_cap, a->heap_i,
 *    a->wake_at (set by agd_rt.c before agd_sched_heap_push);
 *  - the passivation LRU: rt->lru_head, rt->lru_tail, a->lru_in,
 *    a->lru_prev, a->lru_next, a->idle_since (set by agd_rt.c when the
 *    agent starts waiting);
 *  - the pool's counters: rt->busy (counted by agd_rt_work around every
 *    stretch it runs without the lock, with a->on_cpu set), rt->stopped,
 *    rt->poll_deadline, rt->last_checkpoint.
 * Two condition variables go with it: rt->work_cv (the run queue is not
 * empty, or the pool halts), waited on by idle workers; rt->idle_cv (a
 * worker put an agent down: broadcast by agd_rt_work and by the worker
 * after each piece of work), waited on by agd_sched_drain. rt->workers and
 * rt->nworkers are written only by agd_sched_start and agd_sched_join, on
 * the thread that starts and stops the runtime, while no other thread
 * starts or joins workers.
 * Every function below is called with rt->mu held, except agd_sched_init
 * and agd_sched_fini (before the runtime has threads, after they are
 * joined), agd_sched_start and agd_sched_join (they create and join the
 * workers, which take the lock themselves) and agd_rt_tick (takes it).
 *
 * Invariants (under rt->mu):
 * - An agent is in the run queue at most once (a->queued), and never while
 *   a worker has it (a->on_cpu); agd_rt_work queues it again when it puts
 *   it down still runnable.
 * - a->heap_i != 0 iff the agent waits with a deadline (sleep, recv with a
 *   timeout, park); a->lru_in iff it is an on-demand agent waiting in
 *   memory.
 *
 * Never: hold rt->mu across a slice (agd_rt_work drops it around every
 * lua_resume, persist and activation); run agent code on the dispatcher
 * thread (the tick only moves agents between queues).
 */
#ifndef AGD_SCHED_H
#define AGD_SCHED_H

struct agd_rt;
struct agd_agent;

/* Sets up the condition variables of a zeroed runtime (agd_rt_new,
 * agd_rt_child_new). */
void agd_sched_init(struct agd_rt *rt);
/* Frees the heap and the workers' array and destroys the condition
 * variables; the workers must have been joined (agd_rt_destroy). */
void agd_sched_fini(struct agd_rt *rt);

/* ---- run queue ---- */

/* Queues a at the tail, and signals a worker; no-op when a is queued or on
 * CPU (agd_rt_work queues it when it puts it down). */
void agd_sched_enqueue(struct agd_rt *rt, struct agd_agent *a);
/* Queues a at the head: for passivation and checkpoints, which are short
 * and free memory. Same no-op rule. */
void agd_sched_enqueue_front(struct agd_rt *rt, struct agd_agent *a);

/* ---- timer heap of waiting agents, earliest a->wake_at first ---- */

/* Adds a with its a->wake_at. 0 or AGD_ERR_NOMEM (a not added). */
int agd_sched_heap_push(struct agd_rt *rt, struct agd_agent *a);
/* Takes a out; no-op when it is not in. */
void agd_sched_heap_remove(struct agd_rt *rt, struct agd_agent *a);

/* ---- passivation LRU: idle on-demand agents, oldest a->idle_since first ---- */

/* Appends a (taking it out first if it is in). */
void agd_sched_lru_append(struct agd_rt *rt, struct agd_agent *a);
/* Takes a out; no-op when it is not in. */
void agd_sched_lru_remove(struct agd_rt *rt, struct agd_agent *a);

/* Makes a waiting agent runnable: out of the heap and the LRU, state
 * running (the reason says what woke it), queued. No-op unless a is
 * waiting. */
void agd_sched_wake(struct agd_rt *rt, struct agd_agent *a);

/* ---- worker pool ---- */

/* Starts rt->cfg->workers workers (0: one per online core). 0, or
 * AGD_ERR_NOMEM when not even one could start. Lock not held. */
int agd_sched_start(struct agd_rt *rt);
/* Waits (on rt->idle_cv, releasing rt->mu meanwhile) until the run queue
 * is empty and no worker has an agent on CPU. */
void agd_sched_drain(struct agd_rt *rt);
/* Halts the pool: drops whatever is queued and tells every worker to
 * return once it has put its agent down. Then agd_sched_join. */
void agd_sched_halt(struct agd_rt *rt);
/* Joins the workers after agd_sched_halt. Lock not held. */
void agd_sched_join(struct agd_rt *rt);

#endif
