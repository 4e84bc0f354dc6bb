/*
 * agd_loop.h: the dispatcher's event loop: ZeroMQ sockets and file
 * descriptors polled together, one-shot and repeating timers, and a wake-up
 * any thread may ring.
 *
 * One thread (the dispatcher) runs the loop and owns every socket registered
 * with it; handlers and timers run on that thread and must not block. Other
 * modules (the peer transport, for one) add their sockets with
 * agd_loop_add_socket and their periodic work with agd_loop_add_timer.
 *
 * Thread-safety: agd_loop_wake and agd_loop_stop may be called from any
 * thread (and agd_loop_stop from a signal handler); everything else from the
 * loop's thread only.
 */
#ifndef AGD_LOOP_H
#define AGD_LOOP_H

#include <stdint.h>

struct agd_loop;

/* Called when `sock` (a ZeroMQ socket) or `fd` is readable. */
typedef void (*agd_loop_io_fn)(struct agd_loop *loop, void *sock, int fd, void *ud);
/* Called when a timer fires; for a one-shot timer, the id is dead after. */
typedef void (*agd_loop_timer_fn)(struct agd_loop *loop, uint64_t id, void *ud);
/* Called before every poll: returns the longest wait in ms it allows
 * (-1: no limit). Used by the scheduler for sleeping agents. */
typedef int (*agd_loop_tick_fn)(struct agd_loop *loop, void *ud);

/* Milliseconds on the monotonic clock. */
uint64_t agd_now_ms(void);
/* Microseconds on the monotonic clock. */
uint64_t agd_now_us(void);

/* Returns a new loop or NULL (out of memory or no eventfd). */
struct agd_loop *agd_loop_new(void);
/* Frees the loop (not the sockets, which their owners close). NULL-safe. */
void agd_loop_destroy(struct agd_loop **loop_p);

/* Watches a ZeroMQ socket (sock != NULL) or a file descriptor (sock == NULL)
 * for input. Returns 0, -ENOMEM, or -E2BIG past AGD_LOOP_IO_MAX. */
#define AGD_LOOP_IO_MAX 32
int agd_loop_add_socket(struct agd_loop *loop, void *sock, agd_loop_io_fn fn, void *ud);
int agd_loop_add_fd(struct agd_loop *loop, int fd, agd_loop_io_fn fn, void *ud);
/* Stops watching; returns 0 or -ENOENT. */
int agd_loop_remove(struct agd_loop *loop, void *sock, int fd);

/* Calls fn after delay_ms, then every delay_ms when repeat. Returns the
 * timer's id (never 0), or 0 when out of memory. */
uint64_t agd_loop_add_timer(struct agd_loop *loop, uint64_t delay_ms, int repeat,
			    agd_loop_timer_fn fn, void *ud);
/* Cancels a timer; unknown ids are ignored. */
void agd_loop_cancel_timer(struct agd_loop *loop, uint64_t id);

/* Sets the tick callback (one; NULL removes it). */
void agd_loop_set_tick(struct agd_loop *loop, agd_loop_tick_fn fn, void *ud);

/* Runs until agd_loop_stop. Returns 0, or a negative errno when polling
 * fails for good. */
int agd_loop_run(struct agd_loop *loop);
/* Makes the poll return now (thread-safe, async-signal-safe). */
void agd_loop_wake(struct agd_loop *loop);
/* Makes agd_loop_run return after the current iteration (thread-safe,
 * async-signal-safe). */
void agd_loop_stop(struct agd_loop *loop);
/* Whether agd_loop_stop was called. */
int agd_loop_stopping(const struct agd_loop *loop);

#endif
