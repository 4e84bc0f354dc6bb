/*
 * tst_proc.h: starting and stopping real processes (daemons, the CLI) from
 * tests, with bounded waits. Every started process is stopped by
 * tst_proc_stop, which escalates from SIGTERM to SIGKILL.
 */
#ifndef TST_PROC_H
#define TST_PROC_H

#include <stddef.h>
#include <sys/types.h>

/* A free TCP port on 127.0.0.1 (bound and released; good enough for tests). */
int tst_free_port(void);

/* The path of a built binary named by environment variable `env`
 * (AGENTD_BIN, AGENTCTL_BIN), or NULL. */
const char *tst_bin(const char *env);

/* Starts argv[0] with argv, stdout and stderr appended to `log_path` (or
 * inherited when NULL). Returns the pid, or -1. */
pid_t tst_proc_start(char *const argv[], const char *log_path);

/* SIGTERM, wait up to timeout_ms, then SIGKILL. Returns the exit status as
 * from waitpid, or -1. */
int tst_proc_stop(pid_t pid, int timeout_ms);

/* Runs argv to completion (at most timeout_ms, then killed), capturing up to
 * out_len-1 bytes of stdout into out. Returns the exit code, or -1. */
int tst_run(char *const argv[], char *out, size_t out_len, int timeout_ms);

/* Whether file `path` holds `what` in its first 256 KiB (0 when it cannot
 * be read): for a log or a captured output a test waits on. */
int tst_file_has(const char *path, const char *what);

/* A fresh directory under /tmp; the caller removes it with tst_rmtree. */
int tst_tmpdir(char *buf, size_t len);
int tst_rmtree(const char *path);

#endif
