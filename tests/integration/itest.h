/*
 * itest.h: helpers for integration tests of agentd: a daemon in a fresh
 * directory with its own author key and trust store, signed segments built
 * from Lua text, and raw control requests over ZeroMQ.
 */
#ifndef ITEST_H
#define ITEST_H

#include <stddef.h>
#include <sys/types.h>

struct itest {
	char dir[128];        /* temporary directory, removed at the end */
	char conf[192];       /* config file */
	char log[192];        /* daemon log */
	char endpoint[64];    /* tcp control endpoint */
	char ipc[192];        /* ipc control endpoint */
	pid_t pid;            /* daemon, or 0 */
	void *key;            /* struct mig_key *: the author key the daemon trusts */
};

/* Makes the directory, key, trust store and config. `extra` is appended to
 * the config ("[agents]\nmemory_limit = 1M\n"...), may be NULL. */
void itest_setup(struct itest *t, const char *extra);
/* Starts the daemon and waits until it answers status. */
void itest_start(struct itest *t);
/* SIGTERM (then SIGKILL); returns the wait status. */
int itest_stop(struct itest *t);
/* SIGKILL now. */
void itest_crash(struct itest *t);
/* Stops the daemon if running, removes everything. */
void itest_teardown(struct itest *t);

/* One request on the tcp endpoint (or `endpoint` if not NULL); returns 1
 * for "ok", 0 for "error", -1 for no reply within 5 s. *reply is malloc'd. */
int itest_req(struct itest *t, const char *endpoint, const char *cmd, const char *body,
	      char **reply);

/* Runs `main_lua` (entry chunk main.lua, entry function `func` or "") as a
 * signed segment named `name`; `opts` is extra JSON members (",\"memory\":1000"
 * or ""). Writes the agent id (17 bytes). Asserts success. */
void itest_run(struct itest *t, const char *name, const char *main_lua, const char *func,
	       const char *opts, char id[17]);
/* The same with extra manifest lines ("binding = site by-type file\n"). */
void itest_run_ex(struct itest *t, const char *name, const char *main_lua, const char *func,
		  const char *manifest_extra, const char *opts, char id[17]);
/* The same with a given key (for untrusted-key tests); returns the reply
 * status as itest_req and *reply. */
int itest_run_with(struct itest *t, void *key, const char *name, const char *main_lua,
		   const char *opts, char **reply);

/* A signed segment (malloc'd bytes, *len) and its hash in hex. */
char *itest_segment(struct itest *t, const char *name, const char *main_lua, size_t *len,
		    char hash[65]);

/* The agent's state into buf ("" if unknown). */
void itest_state(struct itest *t, const char *id, char *buf, size_t len);
/* Polls until the agent is in `state`, at most ms. Returns 1 or 0. */
int itest_wait_state(struct itest *t, const char *id, const char *state, int ms);
/* Whether the agent's logs contain `needle`. */
int itest_log_has(struct itest *t, const char *id, const char *needle);
/* Polls itest_log_has for at most ms. */
int itest_wait_log(struct itest *t, const char *id, const char *needle, int ms);

#endif
