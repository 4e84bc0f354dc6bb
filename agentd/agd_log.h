/*
 * agd_log.h: the project's one logging facility.
 *
 * A line is: time, level, a stable event name, then key=value fields:
 *   2026-11-23T11:20:01.123Z info agent.start agent=a1b2 host=h1
 * Only agentd and the CLI log; the libraries (migrate/, resources/) return
 * codes and leave the wording to their callers.
 *
 * Every line is formatted into a bounded buffer and written with one write(2),
 * so lines from several threads never interleave. Control characters in the
 * formatted fields (an agent can put anything in a string it logs) are
 * replaced, so no input can forge a second line.
 *
 * Thread-safety: agd_log_* may be called from any thread once agd_log_open
 * has returned; agd_log_open and agd_log_close are for main() only.
 */
#ifndef AGD_LOG_H
#define AGD_LOG_H

enum agd_log_level {
	AGD_LOG_DEBUG,
	AGD_LOG_INFO,
	AGD_LOG_WARN,
	AGD_LOG_ERROR,
};

/* Longest line written; longer field text is cut and marked with "...". */
#define AGD_LOG_LINE_MAX 1024

/* Directs logging to `path` (appended to, created 0640) or, when path is NULL,
 * to stderr; drops lines below `min`. Returns 0 or -errno. */
int agd_log_open(const char *path, enum agd_log_level min);

/* Closes a log file opened by agd_log_open; logging goes back to stderr. */
void agd_log_close(void);

/* Parses "debug", "info", "warn" or "error"; returns 0 or -1. */
int agd_log_level_parse(const char *name, enum agd_log_level *out);

/* Whether a line at `level` would be written (to skip costly formatting). */
int agd_log_enabled(enum agd_log_level level);

/* Writes one line: `event` is a stable dotted name; `fields` a printf format
 * producing space-separated key=value pairs (may be NULL). */
void agd_log(enum agd_log_level level, const char *event, const char *fields, ...)
	__attribute__((format(printf, 3, 4)));

#endif
