/*
 * test_loop.c: the dispatcher's loop runs timers in deadline order,
 * repeats and cancels them, serves sockets, and wakes and stops on request
 * from another thread.
 */
#include "agd_loop.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

struct rec {
	char order[16];
	int n;
	int repeats;
	uint64_t cancel_me;
};

static void fire(struct agd_loop *l, uint64_t id, void *ud)
{
	struct rec *r = ud;

	(void)id;
	if (r->n < 15)
		r->order[r->n++] = 'x';
	(void)l;
}

static void fire_a(struct agd_loop *l, uint64_t id, void *ud) { struct rec *r = ud; (void)l; (void)id; r->order[r->n++] = 'a'; }
static void fire_b(struct agd_loop *l, uint64_t id, void *ud) { struct rec *r = ud; (void)l; (void)id; r->order[r->n++] = 'b'; }

static void fire_c(struct agd_loop *l, uint64_t id, void *ud)
{
	struct rec *r = ud;

	(void)id;
	r->order[r->n++] = 'c';
	agd_loop_cancel_timer(l, r->cancel_me);
	agd_loop_stop(l);
}

static void tick_repeat(struct agd_loop *l, uint64_t id, void *ud)
{
	struct rec *r = ud;

	(void)l;
	(void)id;
	r->repeats++;
}

TestSuite(agd_loop, .timeout = 20);

Test(agd_loop, timers_fire_in_deadline_order_and_cancel_works)
{
	struct agd_loop *l = agd_loop_new();
	struct rec r;

	memset(&r, 0, sizeof r);
	cr_assert_not_null(l);
	agd_loop_add_timer(l, 60, 0, fire_b, &r);
	agd_loop_add_timer(l, 20, 0, fire_a, &r);
	r.cancel_me = agd_loop_add_timer(l, 200, 0, fire, &r);
	agd_loop_add_timer(l, 10, 1, tick_repeat, &r);
	agd_loop_add_timer(l, 100, 0, fire_c, &r);
	cr_assert_eq(agd_loop_run(l), 0);
	r.order[r.n] = '\0';
	cr_assert_str_eq(r.order, "abc", "cancelled timer fired or order wrong: %s", r.order);
	cr_assert_geq(r.repeats, 3, "repeating timer ran %d times", r.repeats);
	agd_loop_destroy(&l);
	cr_assert_null(l);
}

static void *stopper(void *arg)
{
	usleep(50000);
	agd_loop_stop(arg);
	return NULL;
}

Test(agd_loop, another_thread_can_stop_a_loop_with_nothing_to_do)
{
	struct agd_loop *l = agd_loop_new();
	pthread_t th;

	pthread_create(&th, NULL, stopper, l);
	cr_assert_eq(agd_loop_run(l), 0);
	cr_assert(agd_loop_stopping(l));
	pthread_join(th, NULL);
	agd_loop_destroy(&l);
}

static void on_sock(struct agd_loop *l, void *sock, int fd, void *ud)
{
	char buf[8];
	int *got = ud;

	(void)fd;
	if (zmq_recv(sock, buf, sizeof buf, ZMQ_DONTWAIT) >= 0)
		(*got)++;
	agd_loop_stop(l);
}

Test(agd_loop, a_readable_socket_calls_its_handler)
{
	void *ctx = zmq_ctx_new();
	void *a = zmq_socket(ctx, ZMQ_PAIR), *b = zmq_socket(ctx, ZMQ_PAIR);
	struct agd_loop *l = agd_loop_new();
	int got = 0, linger = 0;

	zmq_setsockopt(a, ZMQ_LINGER, &linger, sizeof linger);
	zmq_setsockopt(b, ZMQ_LINGER, &linger, sizeof linger);
	cr_assert_eq(zmq_bind(a, "inproc://loop-test"), 0);
	cr_assert_eq(zmq_connect(b, "inproc://loop-test"), 0);
	cr_assert_eq(agd_loop_add_socket(l, a, on_sock, &got), 0);
	zmq_send(b, "hi", 2, 0);
	cr_assert_eq(agd_loop_run(l), 0);
	cr_assert_eq(got, 1);
	cr_assert_eq(agd_loop_remove(l, a, -1), 0);
	cr_assert_eq(agd_loop_remove(l, a, -1), -ENOENT);
	agd_loop_destroy(&l);
	zmq_close(a);
	zmq_close(b);
	zmq_ctx_term(ctx);
}
