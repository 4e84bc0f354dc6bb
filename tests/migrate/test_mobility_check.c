/*
 * test_mobility_check.c: mobility-check runs every corpus script exactly as
 * the pinned Lua's own interpreter (lua_ref) does, same stdout bytes and
 * same exit status, for every move period the script's header lists; states
 * dumped with --dump-states resume in a fresh process; damaged or foreign
 * state files are refused (exit 3), never crash; --strict fails a run that
 * met an unpersistable open file.
 *
 * A corpus script's first line configures its runs:
 *   -- mobility-check: every=0,1,7 [strict] [unpersistable] [moves=0] [args=a b c]
 * every=   the --every periods to run (0: moves only at top-level yields);
 * strict   run with --strict (any point that cannot persist fails the run);
 * unpersistable  some point must fail to persist (reported on stderr);
 * moves=0  the script makes no move at all (a syntax error);
 * args=    the script's arguments (rest of the line).
 * Both interpreters run with the corpus directory as working directory and
 * the script's bare file name, so that error messages carry the same chunk
 * names.
 */
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Exit status a sanitizer report gets in the children (see run()). */
#define SANITIZER_EXIT 86
/* Longest one process may run. */
#define RUN_TIMEOUT_MS 90000

struct result {
	int code;     /* exit status; -1 when killed by a signal or the timeout */
	int sig;      /* the signal, or 0 */
	int timedout; /* the timeout killed it */
	char *out;    /* stdout (malloc'd, NUL-terminated) */
	size_t outlen;
	char *err;    /* stderr (malloc'd, NUL-terminated) */
	size_t errlen;
};

/* Results and scratch directories of the running test, released by the
 * suite's fini even when a failed assertion ends the test early. */
#define MAX_LIVE 8
static struct result *live[MAX_LIVE];
static char tmpdirs[4][256];
static void *owned[4];

/* Hands p to fini; returns it. */
static void *own(void *p)
{
	size_t i;

	for (i = 0; i < sizeof owned / sizeof owned[0]; i++)
		if (owned[i] == NULL) {
			owned[i] = p;
			return p;
		}
	cr_assert_fail("too many owned buffers");
	return NULL;
}

static void result_free(struct result *r)
{
	size_t i;

	for (i = 0; i < MAX_LIVE; i++)
		if (live[i] == r)
			live[i] = NULL;
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof *r);
}

static void result_track(struct result *r)
{
	size_t i;

	for (i = 0; i < MAX_LIVE; i++)
		if (live[i] == r || live[i] == NULL) {
			live[i] = r;
			return;
		}
	cr_assert_fail("more than %d live results", MAX_LIVE);
}

/* A fresh scratch directory, removed by fini. */
static void make_tmp(char *buf, size_t len)
{
	size_t i;

	cr_assert_eq(tst_tmpdir(buf, len), 0);
	for (i = 0; i < sizeof tmpdirs / sizeof tmpdirs[0]; i++)
		if (tmpdirs[i][0] == '\0') {
			snprintf(tmpdirs[i], sizeof tmpdirs[i], "%s", buf);
			return;
		}
}

static void cleanup(void)
{
	size_t i;

	for (i = 0; i < MAX_LIVE; i++)
		if (live[i] != NULL)
			result_free(live[i]);
	for (i = 0; i < sizeof owned / sizeof owned[0]; i++) {
		free(owned[i]);
		owned[i] = NULL;
	}
	for (i = 0; i < sizeof tmpdirs / sizeof tmpdirs[0]; i++)
		if (tmpdirs[i][0] != '\0') {
			tst_rmtree(tmpdirs[i]);
			tmpdirs[i][0] = '\0';
		}
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, used = 0, n;

	*len = 0;
	if (f == NULL)
		return NULL;
	for (;;) {
		if (cap - used < 4096) {
			char *nb = realloc(buf, cap * 2 + 8192);
			cr_assert_not_null(nb);
			buf = nb;
			cap = cap * 2 + 8192;
		}
		n = fread(buf + used, 1, cap - used - 1, f);
		if (n == 0)
			break;
		used += n;
	}
	fclose(f);
	buf[used] = '\0';
	*len = used;
	return buf;
}

static void write_all(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	cr_assert_not_null(f, "cannot write %s", path);
	cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Appends ":exitcode=86" to a sanitizer options variable, so that a report
 * in a child is told apart from the tool's own exit codes. */
static void mark_sanitizer_exit(const char *var)
{
	const char *old = getenv(var);
	char buf[1024];

	snprintf(buf, sizeof buf, "%s%sexitcode=%d", old != NULL ? old : "",
		 old != NULL && old[0] != '\0' ? ":" : "", SANITIZER_EXIT);
	setenv(var, buf, 1);
}

/*
 * Runs argv (argv[0] an absolute path) in directory `cwd` with stdin from
 * /dev/null, stdout and stderr captured through files in `tmp`. Never
 * returns before the child is gone (killed at RUN_TIMEOUT_MS).
 */
static void run(const char *tmp, const char *cwd, char *const argv[], struct result *r)
{
	char outp[512], errp[512];
	long deadline = now_ms() + RUN_TIMEOUT_MS;
	int status = 0;
	pid_t pid;

	memset(r, 0, sizeof *r);
	snprintf(outp, sizeof outp, "%s/stdout", tmp);
	snprintf(errp, sizeof errp, "%s/stderr", tmp);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (in < 0 || o < 0 || e < 0 || chdir(cwd) != 0)
			_exit(127);
		dup2(in, 0);
		dup2(o, 1);
		dup2(e, 2);
		unsetenv("LUA_INIT");
		unsetenv("LUA_INIT_5_4");
		mark_sanitizer_exit("ASAN_OPTIONS");
		mark_sanitizer_exit("UBSAN_OPTIONS");
		execv(argv[0], argv);
		_exit(127);
	}
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		cr_assert_eq(w, 0, "waitpid: %s", strerror(errno));
		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			r->timedout = 1;
			break;
		}
		usleep(2000);
	}
	if (!r->timedout && WIFEXITED(status)) {
		r->code = WEXITSTATUS(status);
	} else {
		r->code = -1;
		r->sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	}
	r->out = read_all(outp, &r->outlen);
	r->err = read_all(errp, &r->errlen);
	result_track(r);
	cr_assert_not_null(r->out);
	cr_assert_not_null(r->err);
}

/* Fails unless the process ended by itself, without a sanitizer report. */
static void assert_ended_normally(const struct result *r, const char *what)
{
	cr_assert(!r->timedout, "%s: timed out\nstderr: %.2000s", what, r->err);
	cr_assert_eq(r->sig, 0, "%s: killed by signal %d\nstderr: %.2000s", what, r->sig, r->err);
	cr_assert_neq(r->code, SANITIZER_EXIT, "%s: sanitizer report\nstderr: %.4000s", what, r->err);
	cr_assert_neq(r->code, 127, "%s: could not be started", what);
}

/* The first line where a and b differ, for failure messages. */
static void first_difference(const char *a, const char *b, char *buf, size_t len)
{
	size_t i = 0, line = 1, start = 0;
	const char *ea, *eb;

	while (a[i] != '\0' && a[i] == b[i]) {
		if (a[i] == '\n') {
			line++;
			start = i + 1;
		}
		i++;
	}
	ea = strchr(a + start, '\n');
	eb = strchr(b + start, '\n');
	snprintf(buf, len, "line %zu:\n  lua_ref:        %.*s\n  mobility-check: %.*s", line,
		 (int)(ea != NULL ? ea - (a + start) : (long)strlen(a + start)), a + start,
		 (int)(eb != NULL ? eb - (b + start) : (long)strlen(b + start)), b + start);
}

/* Moves and failed persists from the --stats line, or -1s. */
static void parse_stats(const char *err, long *moves, long *failed)
{
	const char *p = strstr(err, "mobility-check: ");

	*moves = -1;
	*failed = -1;
	while (p != NULL) {
		long m, f, a;
		if (sscanf(p, "mobility-check: %ld moves, %ld of %ld persist attempts failed", &m,
			   &f, &a) == 3) {
			*moves = m;
			*failed = f;
			return;
		}
		p = strstr(p + 1, "mobility-check: ");
	}
}

/* ------------------------------------------------------------------ */
/* Corpus header                                                       */

#define MAX_EVERY 8
#define MAX_ARGS 8

struct header {
	long every[MAX_EVERY];
	int nevery;
	int strict;
	int unpersistable;
	int no_moves;
	char argbuf[256];
	char *args[MAX_ARGS + 1];
	int nargs;
};

static void parse_header(const char *name, struct header *h)
{
	char path[1024], line[512], *tok, *save = NULL;
	FILE *f;

	memset(h, 0, sizeof *h);
	snprintf(path, sizeof path, "%s/%s", CORPUS_DIR, name);
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	cr_assert_not_null(fgets(line, sizeof line, f), "%s is empty", name);
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	cr_assert(strncmp(line, "-- mobility-check:", 18) == 0,
		  "%s: first line must be a '-- mobility-check:' header", name);
	tok = strstr(line, "args=");
	if (tok != NULL) {
		snprintf(h->argbuf, sizeof h->argbuf, "%s", tok + 5);
		*tok = '\0';
		for (tok = strtok_r(h->argbuf, " ", &save); tok != NULL && h->nargs < MAX_ARGS;
		     tok = strtok_r(NULL, " ", &save))
			h->args[h->nargs++] = tok;
	}
	save = NULL;
	for (tok = strtok_r(line + 18, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		if (strncmp(tok, "every=", 6) == 0) {
			char *p = tok + 6, *end;
			while (*p != '\0' && h->nevery < MAX_EVERY) {
				h->every[h->nevery++] = strtol(p, &end, 10);
				cr_assert(end != p, "%s: bad every= list", name);
				p = *end == ',' ? end + 1 : end;
			}
		} else if (strcmp(tok, "strict") == 0) {
			h->strict = 1;
		} else if (strcmp(tok, "unpersistable") == 0) {
			h->unpersistable = 1;
		} else if (strcmp(tok, "moves=0") == 0) {
			h->no_moves = 1;
		} else {
			cr_assert_fail("%s: unknown header word '%s'", name, tok);
		}
	}
	cr_assert_gt(h->nevery, 0, "%s: no every= list", name);
}

/* ------------------------------------------------------------------ */
/* Corpus comparison                                                   */

struct corpus_case {
	char name[64]; /* file name in CORPUS_DIR */
};

static int cmp_case(const void *a, const void *b)
{
	return strcmp(((const struct corpus_case *)a)->name, ((const struct corpus_case *)b)->name);
}

static void free_cases(struct criterion_test_params *crp)
{
	cr_free(crp->params);
}

ParameterizedTestParameters(mobility_check, corpus_script_behaves_as_under_lua_ref)
{
	DIR *d = opendir(CORPUS_DIR);
	struct dirent *de;
	struct corpus_case *cases;
	size_t n = 0, cap = 64;

	cases = cr_calloc(cap, sizeof *cases);
	if (d == NULL || cases == NULL)
		return cr_make_param_array(struct corpus_case, cases, 0, free_cases);
	while ((de = readdir(d)) != NULL && n < cap) {
		size_t len = strlen(de->d_name);
		if (len > 4 && len < sizeof cases[0].name && strcmp(de->d_name + len - 4, ".lua") == 0)
			memcpy(cases[n++].name, de->d_name, len + 1);
	}
	closedir(d);
	qsort(cases, n, sizeof *cases, cmp_case);
	return cr_make_param_array(struct corpus_case, cases, n, free_cases);
}

TestSuite(mobility_check, .timeout = 170, .fini = cleanup);

ParameterizedTest(struct corpus_case *c, mobility_check, corpus_script_behaves_as_under_lua_ref,
		  .timeout = 170, .fini = cleanup)
{
	struct header h;
	struct result ref, got;
	char tmp[256], every[32], diff[1024];
	char *argv[24];
	long total_moves = 0, total_failed = 0;
	int i, k, a;

	parse_header(c->name, &h);
	make_tmp(tmp, sizeof tmp);

	a = 0;
	argv[a++] = LUA_REF_BIN;
	argv[a++] = c->name;
	for (k = 0; k < h.nargs; k++)
		argv[a++] = h.args[k];
	argv[a] = NULL;
	run(tmp, CORPUS_DIR, argv, &ref);
	assert_ended_normally(&ref, "lua_ref");

	for (i = 0; i < h.nevery; i++) {
		long moves, failed;

		snprintf(every, sizeof every, "%ld", h.every[i]);
		a = 0;
		argv[a++] = MOBILITY_CHECK_BIN;
		argv[a++] = "--stats";
		if (h.strict)
			argv[a++] = "--strict";
		argv[a++] = "--every";
		argv[a++] = every;
		argv[a++] = c->name;
		for (k = 0; k < h.nargs; k++)
			argv[a++] = h.args[k];
		argv[a] = NULL;
		run(tmp, CORPUS_DIR, argv, &got);
		assert_ended_normally(&got, c->name);
		first_difference(ref.out, got.out, diff, sizeof diff);
		cr_assert(ref.outlen == got.outlen && memcmp(ref.out, got.out, ref.outlen) == 0,
			  "%s --every %ld: stdout differs at %s\nstderr: %.3000s", c->name,
			  h.every[i], diff, got.err);
		cr_assert_eq(got.code, ref.code,
			     "%s --every %ld: exit status %d, lua_ref %d\nstderr: %.3000s", c->name,
			     h.every[i], got.code, ref.code, got.err);
		parse_stats(got.err, &moves, &failed);
		if (!h.no_moves || moves >= 0) {
			cr_assert_geq(moves, 0, "%s --every %ld: no --stats line\nstderr: %.3000s",
				      c->name, h.every[i], got.err);
			total_moves += moves;
			total_failed += failed;
		}
		if (failed > 0)
			cr_assert(strstr(got.err, "could not be persisted") != NULL,
				  "%s: failed persists not listed", c->name);
		result_free(&got);
	}
	if (!h.no_moves)
		cr_assert_gt(total_moves, 0, "%s: the script never moved", c->name);
	if (h.unpersistable)
		cr_assert_gt(total_failed, 0, "%s: expected an unpersistable point", c->name);
	else
		cr_assert_eq(total_failed, 0, "%s: some points could not be persisted", c->name);
	result_free(&ref);
}

/* ------------------------------------------------------------------ */
/* --dump-states and --resume                                          */


/* Runs mobility-check with the given extra arguments (NULL-terminated). */
static void run_tool(const char *tmp, struct result *r, const char *first, ...)
{
	char *argv[24];
	int a = 0;
	va_list ap;
	const char *s;

	argv[a++] = MOBILITY_CHECK_BIN;
	va_start(ap, first);
	for (s = first; s != NULL && a < 23; s = va_arg(ap, const char *))
		argv[a++] = (char *)s;
	va_end(ap);
	argv[a] = NULL;
	run(tmp, CORPUS_DIR, argv, r);
}

static void ref_output(const char *tmp, const char *script, struct result *r)
{
	char *argv[] = { LUA_REF_BIN, (char *)script, NULL };

	run(tmp, CORPUS_DIR, argv, r);
	assert_ended_normally(r, "lua_ref");
}

/* The output after its first n lines. */
static const char *skip_lines(const char *s, int n)
{
	while (n-- > 0) {
		const char *nl = strchr(s, '\n');
		cr_assert_not_null(nl);
		s = nl + 1;
	}
	return s;
}

static int count_states(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	cr_assert_not_null(d, "%s", dir);
	while ((de = readdir(d)) != NULL)
		n += strncmp(de->d_name, "state-", 6) == 0;
	closedir(d);
	return n;
}

Test(mobility_check, dumped_states_resume_where_they_were_taken)
{
	struct result ref, full, res;
	char tmp[256], dir[300], state[400];
	static const int picks[] = { 1, 2, 20, 39, 40 };
	size_t i;

	make_tmp(tmp, sizeof tmp);
	snprintf(dir, sizeof dir, "%s/states", tmp);
	ref_output(tmp, "numbered.lua", &ref);
	run_tool(tmp, &full, "--strict", "--dump-states", dir, "numbered.lua", NULL);
	assert_ended_normally(&full, "dump run");
	cr_assert_eq(full.code, 0, "stderr: %s", full.err);
	cr_assert_str_eq(full.out, ref.out);
	/* numbered.lua moves once after each of its 40 lines. */
	cr_assert_eq(count_states(dir), 40);

	for (i = 0; i < sizeof picks / sizeof picks[0]; i++) {
		snprintf(state, sizeof state, "%s/state-%06d.bin", dir, picks[i]);
		run_tool(tmp, &res, "--strict", "--resume", state, "numbered.lua", NULL);
		assert_ended_normally(&res, state);
		cr_assert_eq(res.code, 0, "%s: exit %d\nstderr: %s", state, res.code, res.err);
		/* State k was taken right after line k was printed. */
		cr_assert_str_eq(res.out, skip_lines(ref.out, picks[i]), "resumed from %s", state);
		result_free(&res);
	}
	result_free(&full);
	result_free(&ref);
}

Test(mobility_check, resumed_run_numbers_its_dumps_after_the_resumed_state)
{
	struct result r;
	char tmp[256], dir[300], dir2[300], state[400], next[400];
	struct stat st;

	make_tmp(tmp, sizeof tmp);
	snprintf(dir, sizeof dir, "%s/a", tmp);
	snprintf(dir2, sizeof dir2, "%s/b", tmp);
	run_tool(tmp, &r, "--dump-states", dir, "numbered.lua", NULL);
	assert_ended_normally(&r, "dump run");
	result_free(&r);
	snprintf(state, sizeof state, "%s/state-000010.bin", dir);
	run_tool(tmp, &r, "--resume", state, "--dump-states", dir2, "numbered.lua", NULL);
	assert_ended_normally(&r, "resume run");
	cr_assert_eq(r.code, 0, "stderr: %s", r.err);
	snprintf(next, sizeof next, "%s/state-000011.bin", dir2);
	cr_assert_eq(stat(next, &st), 0, "no %s after resuming state 10", next);
	cr_assert_eq(count_states(dir2), 30);
	result_free(&r);
}

Test(mobility_check, states_dumped_by_the_count_hook_resume)
{
	struct result ref, full, res;
	char tmp[256], dir[300], state[400];
	int n, k, picks[3];

	make_tmp(tmp, sizeof tmp);
	snprintf(dir, sizeof dir, "%s/states", tmp);
	ref_output(tmp, "closures.lua", &ref);
	run_tool(tmp, &full, "--strict", "--every", "97", "--dump-states", dir, "closures.lua", NULL);
	assert_ended_normally(&full, "dump run");
	cr_assert_eq(full.code, 0, "stderr: %s", full.err);
	cr_assert_str_eq(full.out, ref.out);
	n = count_states(dir);
	cr_assert_gt(n, 10, "only %d states", n);
	picks[0] = 1;
	picks[1] = n / 2;
	picks[2] = n;
	for (k = 0; k < 3; k++) {
		size_t ol, rl;
		snprintf(state, sizeof state, "%s/state-%06d.bin", dir, picks[k]);
		run_tool(tmp, &res, "--strict", "--every", "97", "--resume", state, "closures.lua",
			 NULL);
		assert_ended_normally(&res, state);
		cr_assert_eq(res.code, 0, "%s: stderr: %s", state, res.err);
		/* Whatever it prints is the rest of the whole output. */
		ol = strlen(ref.out);
		rl = strlen(res.out);
		cr_assert_leq(rl, ol);
		cr_assert_str_eq(ref.out + ol - rl, res.out, "resumed from %s", state);
		result_free(&res);
	}
	result_free(&full);
	result_free(&ref);
}

/* Dumps numbered.lua's states into tmp/states and returns state 20's bytes. */
static char *one_state(const char *tmp, size_t *len)
{
	struct result r;
	char dir[300], state[400];
	char *data;

	snprintf(dir, sizeof dir, "%s/states", tmp);
	run_tool(tmp, &r, "--dump-states", dir, "numbered.lua", NULL);
	assert_ended_normally(&r, "dump run");
	cr_assert_eq(r.code, 0, "stderr: %s", r.err);
	result_free(&r);
	snprintf(state, sizeof state, "%s/state-000020.bin", dir);
	data = own(read_all(state, len));
	cr_assert_not_null(data);
	cr_assert_gt(*len, 16);
	return data;
}

/* Resumes from `bytes` and returns the run's result. */
static void resume_bytes(const char *tmp, const char *script, const void *bytes, size_t len,
			 struct result *r)
{
	char path[400];

	snprintf(path, sizeof path, "%s/damaged.bin", tmp);
	write_all(path, bytes, len);
	run_tool(tmp, r, "--resume", path, script, NULL);
}

Test(mobility_check, truncated_state_is_refused_with_status_3)
{
	char tmp[256];
	size_t len, cut, cuts[40], n = 0, i;
	char *data;

	make_tmp(tmp, sizeof tmp);
	data = one_state(tmp, &len);
	for (cut = 0; cut < 16 && cut < len; cut++)
		cuts[n++] = cut;
	for (i = 1; i <= 16; i++)
		cuts[n++] = len * i / 17;
	cuts[n++] = len - 2;
	cuts[n++] = len - 1;
	for (i = 0; i < n; i++) {
		struct result r;
		resume_bytes(tmp, "numbered.lua", data, cuts[i], &r);
		assert_ended_normally(&r, "truncated resume");
		cr_assert_eq(r.code, 3, "cut at %zu of %zu: exit %d\nstdout: %.300s\nstderr: %s",
			     cuts[i], len, r.code, r.out, r.err);
		cr_assert(strstr(r.err, "refused") != NULL || strstr(r.err, "damaged.bin") != NULL,
			  "no message for cut %zu: %s", cuts[i], r.err);
		cr_assert_eq(r.outlen, 0, "a refused state printed: %s", r.out);
		result_free(&r);
	}
}

Test(mobility_check, garbage_empty_and_missing_state_files_are_refused)
{
	struct result r;
	char tmp[256], garbage[4096], missing[300];
	size_t i;
	unsigned int x = 12345;

	make_tmp(tmp, sizeof tmp);
	for (i = 0; i < sizeof garbage; i++) {
		x = x * 1103515245u + 12345u;
		garbage[i] = (char)(x >> 16);
	}
	resume_bytes(tmp, "numbered.lua", garbage, sizeof garbage, &r);
	assert_ended_normally(&r, "garbage");
	cr_assert_eq(r.code, 3, "garbage: exit %d: %s", r.code, r.err);
	result_free(&r);

	resume_bytes(tmp, "numbered.lua", "", 0, &r);
	assert_ended_normally(&r, "empty");
	cr_assert_eq(r.code, 3, "empty: exit %d: %s", r.code, r.err);
	result_free(&r);

	snprintf(missing, sizeof missing, "%s/no-such-state.bin", tmp);
	run_tool(tmp, &r, "--resume", missing, "numbered.lua", NULL);
	assert_ended_normally(&r, "missing");
	cr_assert_eq(r.code, 3, "missing: exit %d: %s", r.code, r.err);
	cr_assert(strstr(r.err, "no-such-state.bin") != NULL, "%s", r.err);
	result_free(&r);
}

Test(mobility_check, state_of_another_script_is_refused)
{
	struct result r;
	char tmp[256];
	size_t len;
	char *data;

	make_tmp(tmp, sizeof tmp);
	data = one_state(tmp, &len);
	resume_bytes(tmp, "closures.lua", data, len, &r);
	assert_ended_normally(&r, "foreign resume");
	cr_assert_eq(r.code, 3, "exit %d\nstdout: %.300s\nstderr: %s", r.code, r.out, r.err);
	cr_assert_eq(r.outlen, 0);
	result_free(&r);
}

Test(mobility_check, flipped_bytes_never_crash_the_resume)
{
	char tmp[256];
	size_t len, i;
	char *data, *copy;
	unsigned int x = 4242;

	make_tmp(tmp, sizeof tmp);
	data = one_state(tmp, &len);
	copy = own(malloc(len));
	cr_assert_not_null(copy);
	for (i = 0; i < 40; i++) {
		struct result r;
		size_t at;
		memcpy(copy, data, len);
		x = x * 1103515245u + 12345u;
		at = (x >> 8) % len;
		x = x * 1103515245u + 12345u;
		copy[at] ^= (char)(1u << ((x >> 12) % 8));
		resume_bytes(tmp, "numbered.lua", copy, len, &r);
		/* A flip may hit a value and still decode; what matters is that
		 * the tool ends by itself with one of its statuses. */
		assert_ended_normally(&r, "flipped resume");
		cr_assert(r.code == 0 || r.code == 1 || r.code == 3 || r.code == 4,
			  "flip at %zu: exit %d: %s", at, r.code, r.err);
		result_free(&r);
	}
}

/* ------------------------------------------------------------------ */
/* --strict, usage                                                     */

Test(mobility_check, strict_fails_when_an_open_file_blocks_a_move)
{
	struct result ref, lax, strict;
	char tmp[256];

	make_tmp(tmp, sizeof tmp);
	ref_output(tmp, "open_file.lua", &ref);
	run_tool(tmp, &lax, "open_file.lua", NULL);
	assert_ended_normally(&lax, "without --strict");
	cr_assert_eq(lax.code, 0, "stderr: %s", lax.err);
	cr_assert_str_eq(lax.out, ref.out);
	/* Each blocked point is listed with its place and the engine's path. */
	cr_assert(strstr(lax.err, "could not be persisted") != NULL, "%s", lax.err);
	cr_assert(strstr(lax.err, "open_file.lua:") != NULL, "%s", lax.err);
	cr_assert(strstr(lax.err, "unpersistable") != NULL || strstr(lax.err, "cannot") != NULL,
		  "%s", lax.err);

	run_tool(tmp, &strict, "--strict", "open_file.lua", NULL);
	assert_ended_normally(&strict, "with --strict");
	cr_assert_eq(strict.code, 1, "exit %d: %s", strict.code, strict.err);
	cr_assert_str_eq(strict.out, ref.out, "--strict still runs the script to its end");
	result_free(&ref);
	result_free(&lax);
	result_free(&strict);
}

Test(mobility_check, strict_passes_when_every_point_persists)
{
	struct result r;
	char tmp[256];

	make_tmp(tmp, sizeof tmp);
	/* numbered.lua holds no file: --strict is satisfied. */
	run_tool(tmp, &r, "--strict", "--stats", "numbered.lua", NULL);
	assert_ended_normally(&r, "strict");
	cr_assert_eq(r.code, 0, "%s", r.err);
	cr_assert(strstr(r.err, "40 moves, 0 of 40") != NULL, "%s", r.err);
	result_free(&r);
}

Test(mobility_check, bad_command_lines_exit_with_status_2)
{
	struct result r;
	char tmp[256];

	make_tmp(tmp, sizeof tmp);
	run_tool(tmp, &r, NULL);
	assert_ended_normally(&r, "no args");
	cr_assert_eq(r.code, 2);
	result_free(&r);
	run_tool(tmp, &r, "--every", "often", "numbered.lua", NULL);
	assert_ended_normally(&r, "bad every");
	cr_assert_eq(r.code, 2);
	result_free(&r);
	run_tool(tmp, &r, "--bogus", "numbered.lua", NULL);
	assert_ended_normally(&r, "unknown option");
	cr_assert_eq(r.code, 2);
	result_free(&r);
}

Test(mobility_check, missing_script_fails_like_lua)
{
	struct result ref, got;
	char tmp[256];
	char *argv[] = { LUA_REF_BIN, "no-such-script.lua", NULL };

	make_tmp(tmp, sizeof tmp);
	run(tmp, CORPUS_DIR, argv, &ref);
	run_tool(tmp, &got, "no-such-script.lua", NULL);
	assert_ended_normally(&got, "missing script");
	cr_assert_eq(got.code, ref.code);
	cr_assert_eq(got.outlen, 0);
	result_free(&ref);
	result_free(&got);
}

Test(mobility_check, syntax_error_is_reported_as_lua_reports_it)
{
	struct result ref, got;
	char tmp[256];
	char *argv[] = { LUA_REF_BIN, "syntax_error.lua", NULL };
	const char *msg;

	make_tmp(tmp, sizeof tmp);
	run(tmp, CORPUS_DIR, argv, &ref);
	run_tool(tmp, &got, "syntax_error.lua", NULL);
	assert_ended_normally(&got, "syntax error");
	cr_assert_eq(got.code, ref.code);
	/* lua.c prints "<prog>: <message>"; the message must be the same. */
	msg = strstr(ref.err, ": syntax_error.lua:");
	cr_assert_not_null(msg, "lua_ref said: %s", ref.err);
	cr_assert(strstr(got.err, msg + 2) != NULL, "expected \"%s\" in: %s", msg + 2, got.err);
	result_free(&ref);
	result_free(&got);
}
