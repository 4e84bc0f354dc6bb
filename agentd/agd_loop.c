/*
 * agd_loop.c: zmq_poll over sockets and fds, timers in a sorted list, and an
 * eventfd for wake-ups (see agd_loop.h).
 *
 * Timers are few (checkpoints, passivation scans, peer retries): a sorted
 * singly linked list is enough. Sleeping agents are not timers here; the
 * scheduler keeps its own heap and bounds the poll through the tick.
 */
#include "agd_loop.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

struct io {
	void *sock;        /* ZeroMQ socket, or NULL for an fd */
	int fd;            /* file descriptor when sock is NULL */
	agd_loop_io_fn fn; /* handler */
	void *ud;          /* its argument */
};

struct timer {
	uint64_t id;          /* never 0 */
	uint64_t due;         /* agd_now_ms() when it fires */
	uint64_t period;      /* 0 for one-shot */
	agd_loop_timer_fn fn; /* callback */
	void *ud;             /* its argument */
	struct timer *next;   /* sorted by due */
};

struct agd_loop {
	struct io io[AGD_LOOP_IO_MAX]; /* watched inputs */
	int nio;                       /* used entries */
	struct timer *timers;          /* sorted by due */
	uint64_t next_id;              /* last timer id given */
	int wake_fd;                   /* eventfd rung by agd_loop_wake */
	atomic_int stop;               /* set by agd_loop_stop */
	agd_loop_tick_fn tick;         /* scheduler hook, may be NULL */
	void *tick_ud;                 /* its argument */
};

uint64_t agd_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t agd_now_ms(void)
{
	return agd_now_us() / 1000u;
}

struct agd_loop *agd_loop_new(void)
{
	struct agd_loop *l = calloc(1, sizeof *l);

	if (l == NULL)
		return NULL;
	l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->wake_fd < 0) {
		free(l);
		return NULL;
	}
	return l;
}

void agd_loop_destroy(struct agd_loop **loop_p)
{
	struct agd_loop *l;

	if (loop_p == NULL || *loop_p == NULL)
		return;
	l = *loop_p;
	while (l->timers != NULL) {
		struct timer *t = l->timers;
		l->timers = t->next;
		free(t);
	}
	close(l->wake_fd);
	free(l);
	*loop_p = NULL;
}

static int add_io(struct agd_loop *l, void *sock, int fd, agd_loop_io_fn fn, void *ud)
{
	if (l->nio == AGD_LOOP_IO_MAX)
		return -E2BIG;
	l->io[l->nio].sock = sock;
	l->io[l->nio].fd = fd;
	l->io[l->nio].fn = fn;
	l->io[l->nio].ud = ud;
	l->nio++;
	return 0;
}

int agd_loop_add_socket(struct agd_loop *l, void *sock, agd_loop_io_fn fn, void *ud)
{
	return add_io(l, sock, -1, fn, ud);
}

int agd_loop_add_fd(struct agd_loop *l, int fd, agd_loop_io_fn fn, void *ud)
{
	return add_io(l, NULL, fd, fn, ud);
}

int agd_loop_remove(struct agd_loop *l, void *sock, int fd)
{
	for (int i = 0; i < l->nio; i++) {
		if (l->io[i].sock == sock && (sock != NULL || l->io[i].fd == fd)) {
			memmove(&l->io[i], &l->io[i + 1], (size_t)(l->nio - i - 1) * sizeof l->io[0]);
			l->nio--;
			return 0;
		}
	}
	return -ENOENT;
}

static void insert_timer(struct agd_loop *l, struct timer *t)
{
	struct timer **pp = &l->timers;

	while (*pp != NULL && (*pp)->due <= t->due)
		pp = &(*pp)->next;
	t->next = *pp;
	*pp = t;
}

uint64_t agd_loop_add_timer(struct agd_loop *l, uint64_t delay_ms, int repeat,
			    agd_loop_timer_fn fn, void *ud)
{
	struct timer *t = calloc(1, sizeof *t);

	if (t == NULL)
		return 0;
	t->id = ++l->next_id;
	t->due = agd_now_ms() + delay_ms;
	t->period = repeat ? (delay_ms ? delay_ms : 1) : 0;
	t->fn = fn;
	t->ud = ud;
	insert_timer(l, t);
	return t->id;
}

void agd_loop_cancel_timer(struct agd_loop *l, uint64_t id)
{
	for (struct timer **pp = &l->timers; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			struct timer *t = *pp;
			*pp = t->next;
			free(t);
			return;
		}
	}
}

void agd_loop_set_tick(struct agd_loop *l, agd_loop_tick_fn fn, void *ud)
{
	l->tick = fn;
	l->tick_ud = ud;
}

void agd_loop_wake(struct agd_loop *l)
{
	uint64_t one = 1;
	ssize_t n = write(l->wake_fd, &one, sizeof one);

	(void)n; /* a full counter still wakes the poll */
}

void agd_loop_stop(struct agd_loop *l)
{
	atomic_store(&l->stop, 1);
	agd_loop_wake(l);
}

int agd_loop_stopping(const struct agd_loop *l)
{
	return atomic_load(&((struct agd_loop *)l)->stop);
}

/* Runs every due timer once. A handler may add or cancel timers, so the
 * list is re-read from the head after each call. */
static void run_timers(struct agd_loop *l)
{
	uint64_t now = agd_now_ms();

	while (l->timers != NULL && l->timers->due <= now) {
		struct timer *t = l->timers;
		uint64_t id = t->id;
		agd_loop_timer_fn fn = t->fn;
		void *ud = t->ud;

		l->timers = t->next;
		if (t->period) {
			t->due = now + t->period;
			insert_timer(l, t);
		} else
			free(t);
		fn(l, id, ud);
	}
}

int agd_loop_run(struct agd_loop *l)
{
	zmq_pollitem_t items[AGD_LOOP_IO_MAX + 1];

	while (!atomic_load(&l->stop)) {
		int n = l->nio, timeout = 1000, rc;
		uint64_t now = agd_now_ms();
		struct io snapshot[AGD_LOOP_IO_MAX];

		if (l->tick != NULL) {
			int t = l->tick(l, l->tick_ud);
			if (t >= 0 && t < timeout)
				timeout = t;
		}
		if (l->timers != NULL) {
			uint64_t d = l->timers->due > now ? l->timers->due - now : 0;
			if (d < (uint64_t)timeout)
				timeout = (int)d;
		}
		/* Handlers may add or remove inputs: poll a snapshot. */
		memcpy(snapshot, l->io, (size_t)n * sizeof snapshot[0]);
		for (int i = 0; i < n; i++) {
			items[i].socket = snapshot[i].sock;
			items[i].fd = snapshot[i].fd;
			items[i].events = ZMQ_POLLIN;
			items[i].revents = 0;
		}
		items[n].socket = NULL;
		items[n].fd = l->wake_fd;
		items[n].events = ZMQ_POLLIN;
		items[n].revents = 0;
		rc = zmq_poll(items, n + 1, timeout);
		if (rc < 0) {
			if (zmq_errno() == EINTR)
				continue;
			return -zmq_errno();
		}
		if (items[n].revents & ZMQ_POLLIN) {
			uint64_t v;
			ssize_t r = read(l->wake_fd, &v, sizeof v);
			(void)r;
		}
		for (int i = 0; i < n && !atomic_load(&l->stop); i++)
			if (items[i].revents & ZMQ_POLLIN)
				snapshot[i].fn(l, snapshot[i].sock, snapshot[i].fd, snapshot[i].ud);
		run_timers(l);
	}
	return 0;
}
