/*
 * agd_log.c: levels, key=value fields, one write(2) a line (see agd_log.h).
 *
 * The destination is process state by nature (one daemon, one log); it is set
 * once in main() before threads start and read with relaxed atomics after.
 */
#include "agd_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_fd = 2;
static atomic_int log_min = AGD_LOG_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int agd_log_open(const char *path, enum agd_log_level min)
{
	int fd = 2;

	if (path != NULL) {
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (fd < 0)
			return -errno;
	}
	agd_log_close();
	atomic_store(&log_fd, fd);
	atomic_store(&log_min, (int)min);
	return 0;
}

void agd_log_close(void)
{
	int fd = atomic_exchange(&log_fd, 2);

	if (fd > 2)
		close(fd);
}

int agd_log_level_parse(const char *name, enum agd_log_level *out)
{
	for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum agd_log_level)i;
			return 0;
		}
	}
	return -1;
}

int agd_log_enabled(enum agd_log_level level)
{
	return (int)level >= atomic_load_explicit(&log_min, memory_order_relaxed);
}

/* Replaces bytes that could break the one-line format. */
static void scrub(char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			s[i] = '?';
	}
}

void agd_log(enum agd_log_level level, const char *event, const char *fields, ...)
{
	char line[AGD_LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	size_t n, cap = sizeof line - 1; /* room for the newline */
	int k;

	if (!agd_log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	k = snprintf(line + n, cap - n, ".%03ldZ %s %s", ts.tv_nsec / 1000000L,
		     level_names[level], event ? event : "-");
	n += k > 0 ? (size_t)k : 0;
	if (n > cap)
		n = cap;
	if (fields != NULL && fields[0] != '\0' && n + 1 < cap) {
		va_list ap;
		size_t start = n + 1;

		line[n] = ' ';
		va_start(ap, fields);
		k = vsnprintf(line + start, cap - start, fields, ap);
		va_end(ap);
		if (k < 0)
			k = 0;
		if ((size_t)k >= cap - start) {
			k = (int)(cap - start - 1);
			memcpy(line + cap - 4, "...", 3);
		}
		scrub(line + start, (size_t)k);
		n = start + (size_t)k;
	}
	line[n++] = '\n';
	/* One write: concurrent lines stay whole (O_APPEND or a pipe). */
	if (write(atomic_load(&log_fd), line, n) < 0)
		return;
}
