/*
 * test_log.c: the logging facility writes whole, one-line, level-filtered
 * records with key=value fields.
 */
#include "agd_log.h"
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static char dir[64], path[128];

static void setup(void)
{
	cr_assert_eq(tst_tmpdir(dir, sizeof dir), 0);
	snprintf(path, sizeof path, "%s/log", dir);
}

static void teardown(void)
{
	agd_log_close();
	tst_rmtree(dir);
}

static size_t slurp(char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	cr_assert_not_null(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	return n;
}

TestSuite(agd_log, .init = setup, .fini = teardown, .timeout = 10);

Test(agd_log, writes_level_event_and_fields)
{
	char buf[4096];

	cr_assert_eq(agd_log_open(path, AGD_LOG_INFO), 0);
	agd_log(AGD_LOG_INFO, "agent.start", "agent=%s n=%d", "a1", 7);
	slurp(buf, sizeof buf);
	cr_assert(strstr(buf, " info agent.start agent=a1 n=7\n") != NULL, "got: %s", buf);
}

Test(agd_log, drops_lines_below_the_level)
{
	char buf[4096];

	cr_assert_eq(agd_log_open(path, AGD_LOG_WARN), 0);
	agd_log(AGD_LOG_INFO, "quiet", NULL);
	agd_log(AGD_LOG_ERROR, "loud", NULL);
	slurp(buf, sizeof buf);
	cr_assert(strstr(buf, "quiet") == NULL);
	cr_assert(strstr(buf, " error loud\n") != NULL, "got: %s", buf);
}

Test(agd_log, agent_strings_cannot_forge_lines)
{
	char buf[4096];

	cr_assert_eq(agd_log_open(path, AGD_LOG_DEBUG), 0);
	agd_log(AGD_LOG_INFO, "agent.log", "msg=%s", "x\n2026-01-01 error forged");
	slurp(buf, sizeof buf);
	cr_assert_eq(strchr(buf, '\n'), buf + strlen(buf) - 1, "one line expected: %s", buf);
}

Test(agd_log, long_fields_are_cut_to_one_bounded_line)
{
	static char big[8192], buf[16384];
	size_t n;

	memset(big, 'a', sizeof big - 1);
	cr_assert_eq(agd_log_open(path, AGD_LOG_DEBUG), 0);
	agd_log(AGD_LOG_INFO, "big", "v=%s", big);
	n = slurp(buf, sizeof buf);
	cr_assert_leq(n, AGD_LOG_LINE_MAX);
	cr_assert_eq(buf[n - 1], '\n');
	cr_assert(strstr(buf, "...") != NULL);
}

Test(agd_log, parses_level_names)
{
	enum agd_log_level l;

	cr_assert_eq(agd_log_level_parse("warn", &l), 0);
	cr_assert_eq(l, AGD_LOG_WARN);
	cr_assert_neq(agd_log_level_parse("loud", &l), 0);
}
