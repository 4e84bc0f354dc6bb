/*
 * agd_sched.c: the scheduler: run queue, timer heap, passivation LRU,
 * worker pool and the dispatcher's tick. The model, the locking and the
 * invariants are in agd_sched.h; a slice itself is run by agd_rt_work
 * (agd_rt.c).
 *
 * This file moves agents between queues and threads only: it never runs
 * agent code, touches a vm, or reads the store.
 */
#include "agd_sched.h"

#include "agd_loop.h"
#include "agd_rt_int.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

void agd_sched_init(struct agd_rt *rt)
{
	pthread_cond_init(&rt->work_cv, NULL);
	pthread_cond_init(&rt->idle_cv, NULL);
}

void agd_sched_fini(struct agd_rt *rt)
{
	free(rt->heap);
	free(rt->workers);
	pthread_cond_destroy(&rt->work_cv);
	pthread_cond_destroy(&rt->idle_cv);
}

/* ------------------------------------------------------------ run queue */

void agd_sched_enqueue(struct agd_rt *rt, struct agd_agent *a)
{
	if (a->queued || a->on_cpu)
		return;
	a->queued = 1;
	a->rq_next = NULL;
	if (rt->rq_tail)
		rt->rq_tail->rq_next = a;
	else
		rt->rq_head = a;
	rt->rq_tail = a;
	pthread_cond_signal(&rt->work_cv);
}

/* Queues a at the head: passivation and checkpoints are short and free
 * memory, so they go before agents waiting to run (with many agents
 * starting at once, a FIFO would give every one a Lua state before the
 * first went back to the store). */
void agd_sched_enqueue_front(struct agd_rt *rt, struct agd_agent *a)
{
	if (a->queued || a->on_cpu)
		return;
	a->queued = 1;
	a->rq_next = rt->rq_head;
	rt->rq_head = a;
	if (rt->rq_tail == NULL)
		rt->rq_tail = a;
	pthread_cond_signal(&rt->work_cv);
}

static struct agd_agent *dequeue(struct agd_rt *rt)
{
	struct agd_agent *a = rt->rq_head;

	if (a == NULL)
		return NULL;
	rt->rq_head = a->rq_next;
	if (rt->rq_head == NULL)
		rt->rq_tail = NULL;
	a->rq_next = NULL;
	a->queued = 0;
	return a;
}

/* ----------------------------------------------------------- timer heap */

/* A binary min-heap on wake_at in an array; each agent keeps its 1-based
 * position (a->heap_i) so that a wake-up by message or answer takes it out
 * in O(log n) without a search. */

static void heap_swap(struct agd_rt *rt, size_t i, size_t j)
{
	struct agd_agent *t = rt->heap[i];

	rt->heap[i] = rt->heap[j];
	rt->heap[j] = t;
	rt->heap[i]->heap_i = i + 1;
	rt->heap[j]->heap_i = j + 1;
}

static void heap_up(struct agd_rt *rt, size_t i)
{
	while (i > 0 && rt->heap[(i - 1) / 2]->wake_at > rt->heap[i]->wake_at) {
		heap_swap(rt, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct agd_rt *rt, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < rt->nheap && rt->heap[l]->wake_at < rt->heap[m]->wake_at)
			m = l;
		if (r < rt->nheap && rt->heap[r]->wake_at < rt->heap[m]->wake_at)
			m = r;
		if (m == i)
			return;
		heap_swap(rt, i, m);
		i = m;
	}
}

int agd_sched_heap_push(struct agd_rt *rt, struct agd_agent *a)
{
	if (rt->nheap == rt->heap_cap) {
		size_t cap = rt->heap_cap ? rt->heap_cap * 2 : 64;
		struct agd_agent **h = realloc(rt->heap, cap * sizeof *h);

		if (h == NULL)
			return AGD_ERR_NOMEM;
		rt->heap = h;
		rt->heap_cap = cap;
	}
	rt->heap[rt->nheap] = a;
	a->heap_i = ++rt->nheap;
	heap_up(rt, rt->nheap - 1);
	return 0;
}

void agd_sched_heap_remove(struct agd_rt *rt, struct agd_agent *a)
{
	size_t i;

	if (a->heap_i == 0)
		return;
	i = a->heap_i - 1;
	a->heap_i = 0;
	rt->nheap--;
	if (i == rt->nheap)
		return;
	rt->heap[i] = rt->heap[rt->nheap];
	rt->heap[i]->heap_i = i + 1;
	heap_up(rt, i);
	heap_down(rt, rt->heap[i]->heap_i - 1);
}

/* ------------------------------------------------------- passivation LRU */

void agd_sched_lru_remove(struct agd_rt *rt, struct agd_agent *a)
{
	if (!a->lru_in)
		return;
	if (a->lru_prev)
		a->lru_prev->lru_next = a->lru_next;
	else
		rt->lru_head = a->lru_next;
	if (a->lru_next)
		a->lru_next->lru_prev = a->lru_prev;
	else
		rt->lru_tail = a->lru_prev;
	a->lru_prev = a->lru_next = NULL;
	a->lru_in = 0;
}

void agd_sched_lru_append(struct agd_rt *rt, struct agd_agent *a)
{
	agd_sched_lru_remove(rt, a);
	a->lru_prev = rt->lru_tail;
	a->lru_next = NULL;
	if (rt->lru_tail)
		rt->lru_tail->lru_next = a;
	else
		rt->lru_head = a;
	rt->lru_tail = a;
	a->lru_in = 1;
}

/* --------------------------------------------------------------- waking */

void agd_sched_wake(struct agd_rt *rt, struct agd_agent *a)
{
	if (a->state != AGD_WAITING)
		return;
	agd_sched_heap_remove(rt, a);
	agd_sched_lru_remove(rt, a);
	agd_rt_set_state(rt, a, AGD_RUNNING,
			 a->wait == W_RECV ? "message"
			 : a->wait == W_PARK && a->park_ans ? "answer" : "timer");
	agd_sched_enqueue(rt, a);
}

/* ----------------------------------------------------------- worker pool */

/* A worker: takes agents from the head of the run queue, one piece of work
 * each, until the pool halts. It holds rt->mu except while it waits for
 * work and where agd_rt_work lets go of it. */
static void *worker_main(void *arg)
{
	struct agd_rt *rt = arg;

	pthread_mutex_lock(&rt->mu);
	for (;;) {
		struct agd_agent *a;

		while (rt->rq_head == NULL && !rt->stopped)
			pthread_cond_wait(&rt->work_cv, &rt->mu);
		if (rt->stopped && rt->rq_head == NULL)
			break;
		a = dequeue(rt);
		if (a != NULL)
			agd_rt_work(rt, a);
		/* agd_rt_stop waits for the queue to drain. */
		pthread_cond_broadcast(&rt->idle_cv);
	}
	pthread_mutex_unlock(&rt->mu);
	return NULL;
}

int agd_sched_start(struct agd_rt *rt)
{
	unsigned n = rt->cfg->workers;

	if (n == 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		n = c > 0 ? (unsigned)c : 1;
	}
	rt->workers = calloc(n, sizeof *rt->workers);
	if (rt->workers == NULL)
		return AGD_ERR_NOMEM;
	for (unsigned i = 0; i < n; i++) {
		if (pthread_create(&rt->workers[i], NULL, worker_main, rt) != 0)
			break;
		rt->nworkers++;
	}
	if (rt->nworkers == 0)
		return AGD_ERR_NOMEM;
	return 0;
}

void agd_sched_drain(struct agd_rt *rt)
{
	while (rt->rq_head != NULL || rt->busy > 0)
		pthread_cond_wait(&rt->idle_cv, &rt->mu);
}

void agd_sched_halt(struct agd_rt *rt)
{
	rt->stopped = 1;
	rt->rq_head = rt->rq_tail = NULL;
	pthread_cond_broadcast(&rt->work_cv);
}

void agd_sched_join(struct agd_rt *rt)
{
	for (unsigned i = 0; i < rt->nworkers; i++)
		pthread_join(rt->workers[i], NULL);
	rt->nworkers = 0;
}

/* ------------------------------------------------------------------ tick */

/* Wakes every agent whose deadline has passed (lock held). */
static void wake_due(struct agd_rt *rt, uint64_t now)
{
	while (rt->nheap > 0 && rt->heap[0]->wake_at <= now) {
		struct agd_agent *a = rt->heap[0];

		agd_sched_heap_remove(rt, a);
		a->timed_out = 1;
		agd_sched_wake(rt, a);
	}
}

/* Idle on-demand agents, oldest first, become passivation jobs; bounded
 * per tick so the dispatcher never stalls on a long list (lock held). */
static void passivate_idle(struct agd_rt *rt, uint64_t now, uint64_t idle_ms)
{
	size_t scanned = 0;

	while (rt->lru_head != NULL && !rt->stopping && scanned++ < 4096 &&
	       now - rt->lru_head->idle_since >= idle_ms) {
		struct agd_agent *a = rt->lru_head;

		agd_sched_lru_remove(rt, a);
		a->passivate_req = 1;
		agd_sched_enqueue_front(rt, a);
	}
}

static void checkpoint_due(struct agd_rt *rt, uint64_t now)
{
	if (rt->cfg->checkpoint_interval > 0 && !rt->stopping &&
	    now - rt->last_checkpoint >= (uint64_t)(rt->cfg->checkpoint_interval * 1000.0)) {
		rt->last_checkpoint = now;
		agd_rt_checkpoint_all(rt);
	}
}

/* Milliseconds until the next of the three timers (earliest deadline,
 * oldest idle agent, checkpoint), at most 1000; -1 when none runs (lock
 * held). */
static int next_wait(struct agd_rt *rt, uint64_t now, uint64_t idle_ms)
{
	int wait = -1;

	if (rt->nheap > 0) {
		uint64_t d = rt->heap[0]->wake_at - now;
		wait = d > 1000 ? 1000 : (int)d;
	}
	if (rt->lru_head != NULL) {
		uint64_t since = now - rt->lru_head->idle_since;
		int d = since >= idle_ms ? 1 : (int)(idle_ms - since > 1000 ? 1000 : idle_ms - since);

		if (wait < 0 || d < wait)
			wait = d;
	}
	if (rt->cfg->checkpoint_interval > 0) {
		uint64_t iv = (uint64_t)(rt->cfg->checkpoint_interval * 1000.0);
		uint64_t due = rt->last_checkpoint + iv;
		int d = due > now ? (int)(due - now > 1000 ? 1000 : due - now) : 1;

		if (wait < 0 || d < wait)
			wait = d;
	}
	return wait;
}

int agd_rt_tick(struct agd_loop *loop, void *ud)
{
	struct agd_rt *rt = ud;
	uint64_t now = agd_now_ms();
	int wait;
	uint64_t idle_ms = (uint64_t)(rt->cfg->passivate_after * 1000.0);

	(void)loop;
	pthread_mutex_lock(&rt->mu);
	wake_due(rt, now);
	passivate_idle(rt, now, idle_ms);
	checkpoint_due(rt, now);
	wait = next_wait(rt, now, idle_ms);
	/* agd_rt_work wakes the loop only for a deadline earlier than this. */
	rt->poll_deadline = wait < 0 ? UINT64_MAX : now + (uint64_t)wait;
	pthread_mutex_unlock(&rt->mu);
	return wait;
}
