/*
 * mobility-check: runs a Lua 5.4 script inside a coroutine and moves it to a
 * fresh lua_State (persist, close, new state, restore) at every yield of
 * that coroutine and, with --every N, every N VM instructions, so that a
 * script behaving differently from plain `lua` shows a bug of the engine.
 * See docs/mobility-check.md for the command line and the exit codes.
 *
 * Invariants:
 * - Script output goes only through C stdio's stdout, which outlives every
 *   state of the process; it is flushed before each persist so that a dumped
 *   state never precedes output it has already produced.
 * - Only the main coroutine is ever yielded by the count hook: yielding a
 *   coroutine the script resumed itself would change what its resume sees.
 * - A state that cannot be persisted is not moved (the script goes on in it)
 *   and the point is reported; a freshly persisted state that cannot be
 *   restored is a bug of the engine and stops the run (exit 4).
 *
 * The context reaches the count hook and os.exit through each state's extra
 * space (copied into every thread the state creates).
 */
#include "mobility_env.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Exit codes of the tool itself (the script's own come through as they are). */
enum {
	EXIT_USAGE = 2,   /* bad command line */
	EXIT_REFUSED = 3, /* --resume file unreadable, damaged or for another script */
	EXIT_ENGINE = 4,  /* a move failed in a way only an engine bug explains, or I/O */
};

/* Distinct not-persisted points listed at the end; more are only counted. */
#define MAX_POINTS 64

/* A place where the state could not be persisted. */
struct point {
	char where[160];    /* "chunk:line" of the innermost Lua frame */
	int code;           /* mig_err */
	char msg[256];      /* the engine's message (path to the object) */
	unsigned long hits; /* how many attempts failed there with that message */
};

/* Everything one run needs; reached from Lua through the extra space. */
struct ctx {
	const char *prog;         /* argv[0] */
	const char *script;       /* FILE as given (chunk name "@FILE") */
	char *src;                /* the script's text, as compiled */
	size_t srclen;            /* its length */
	long every;               /* count-hook period, 0 for none */
	const char *dump_dir;     /* --dump-states DIR, or NULL */
	const char *resume;       /* --resume FILE, or NULL */
	int strict;               /* --strict */
	int stats;                /* --stats */
	int have_seed;            /* --seed given */
	unsigned int seed;        /* its value */
	char **args;              /* the script's arguments */
	int nargs;                /* how many */
	lua_State *L;             /* the current state */
	lua_State *co;            /* the script's main coroutine in L */
	lua_Integer moves;        /* moves done (the root's number) */
	unsigned long attempts;   /* persist attempts */
	unsigned long failed;     /* attempts that could not persist */
	struct point points[MAX_POINTS]; /* distinct failed points */
	size_t npoints;           /* used entries of points */
	int rearm;                /* the hook runs with count 1 until it next fires */
	int warn_on;              /* warnings enabled ("@on") */
	int warn_cont;            /* inside a multi-part warning */
};

static struct ctx *ctx_of(lua_State *L)
{
	return *(struct ctx **)lua_getextraspace(L);
}

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [options] FILE.lua [options] [--] [ARGS...]\n"
		"Runs FILE.lua in a coroutine and moves its state to a fresh Lua state\n"
		"at every top-level coroutine.yield and every N instructions.\n"
		"  --every N          also move every N VM instructions (0: only at yields)\n"
		"  --dump-states DIR  write each persisted state to DIR/state-NNNNNN.bin\n"
		"  --resume FILE      continue from a dumped state (FILE.lua still needed)\n"
		"  --strict           exit 1 if any point could not be persisted\n"
		"  --stats            print the number of moves on stderr at the end\n"
		"  --seed N           string-hash seed of the first state (default random)\n",
		prog);
}

/* Lua's warning function, as lua.c's: off until "@on", one line per warning. */
static void warnf(void *ud, const char *msg, int tocont)
{
	struct ctx *c = ud;

	if (!c->warn_cont && !tocont && msg[0] == '@') {
		if (strcmp(msg, "@on") == 0)
			c->warn_on = 1;
		else if (strcmp(msg, "@off") == 0)
			c->warn_on = 0;
		return;
	}
	if (c->warn_on) {
		if (!c->warn_cont)
			fputs("Lua warning: ", stderr);
		fputs(msg, stderr);
		if (!tocont)
			fputs("\n", stderr);
	}
	c->warn_cont = tocont;
}

static int panicf(lua_State *L)
{
	const char *msg = lua_tostring(L, -1);

	fflush(stdout);
	fprintf(stderr, "mobility-check: unprotected Lua error: %s\n",
		msg != NULL ? msg : "(not a string)");
	exit(EXIT_ENGINE);
}

/* Prints the not-persisted points (and the statistics line with --stats);
 * returns the exit code `status` becomes. */
static int finish(struct ctx *c, int status)
{
	size_t i;
	unsigned long listed = 0;

	fflush(stdout);
	if (c->stats)
		fprintf(stderr, "mobility-check: %lld moves, %lu of %lu persist attempts failed\n",
			(long long)c->moves, c->failed, c->attempts);
	if (c->failed > 0) {
		fprintf(stderr, "mobility-check: %lu point(s) could not be persisted:\n", c->failed);
		for (i = 0; i < c->npoints; i++) {
			fprintf(stderr, "  %s (x%lu): %s: %s\n", c->points[i].where, c->points[i].hits,
				mig_strerror(c->points[i].code), c->points[i].msg);
			listed += c->points[i].hits;
		}
		if (listed < c->failed)
			fprintf(stderr, "  ... and %lu more at other places\n", c->failed - listed);
		if (c->strict && status == EXIT_SUCCESS)
			status = EXIT_FAILURE;
	}
	return status;
}

/* os.exit, as the standard one, plus the report; exits at once like it. */
static int l_exit(lua_State *L)
{
	struct ctx *c = ctx_of(L);
	int status;

	if (lua_isboolean(L, 1))
		status = lua_toboolean(L, 1) ? EXIT_SUCCESS : EXIT_FAILURE;
	else
		status = (int)luaL_optinteger(L, 1, EXIT_SUCCESS);
	if (lua_toboolean(L, 2))
		lua_close(L);
	exit(finish(c, status));
}

/* Runs before the engine names the libraries: os.exit becomes l_exit, so
 * that the permanent "os.exit" is ours on every side. */
static int adjust_libs(lua_State *L)
{
	lua_getglobal(L, "os");
	lua_pushcfunction(L, l_exit);
	lua_setfield(L, -2, "exit");
	return 0;
}

/* The count hook: moves only the main coroutine, and only where it can
 * yield (not inside a C call such as a sort comparator); elsewhere it tries
 * again after the next N instructions. After a restore it first runs with
 * count 1 (see arm_restored) and switches to N when it next fires. */
static void hook(lua_State *L, lua_Debug *ar)
{
	struct ctx *c = ctx_of(L);

	(void)ar;
	if (L != c->co)
		return;
	if (c->rearm) {
		c->rearm = 0;
		lua_sethook(L, hook, LUA_MASKCOUNT, (int)c->every);
		return;
	}
	if (lua_isyieldable(L))
		lua_yield(L, 0);
}

/*
 * Sets the count hook on a restored main coroutine. After a hook yield,
 * plain Lua resumes with one instruction left on the count, so that the
 * re-executed instruction clears the frame's hook-yield mark at once; a
 * fresh lua_sethook(co, ..., N) would leave the mark on that frame for N
 * instructions, possibly below a newer frame. So: count 1 first, N after.
 */
static void arm_restored(struct ctx *c, lua_State *co)
{
	if (c->every <= 0)
		return;
	lua_sethook(co, hook, LUA_MASKCOUNT, 1);
	c->rearm = 1;
}

/* A fresh state with our warning and panic functions, the context in its
 * extra space, the count hook (inherited by every thread it creates) and the
 * script's source registered (its hash in hash). */
static lua_State *new_state(struct ctx *c, int have_seed, unsigned int seed,
			    uint8_t hash[MIG_HASH_LEN], struct mob_err *e)
{
	lua_State *L = have_seed ? mig_lua_newstate(mob_alloc, NULL, seed)
				 : mig_lua_newstate_random(mob_alloc, NULL);
	char chunk[PATH_MAX + 2];
	int rc;

	if (L == NULL) {
		mob_err_set(e, MIG_ERR_NOMEM, "cannot create a Lua state%s", "");
		return NULL;
	}
	*(struct ctx **)lua_getextraspace(L) = c;
	lua_atpanic(L, panicf);
	lua_setwarnf(L, warnf, c);
	if (c->every > 0)
		lua_sethook(L, hook, LUA_MASKCOUNT, (int)c->every);
	rc = mob_prepare(L, adjust_libs, e);
	if (rc == 0) {
		snprintf(chunk, sizeof chunk, "@%s", c->script);
		rc = mig_source_add(L, c->src, c->srclen, chunk, 1, hash);
		if (rc != 0)
			mob_err_set(e, rc, "registering the script's source: %s", mig_strerror(rc));
	}
	if (rc != 0) {
		lua_close(L);
		return NULL;
	}
	return L;
}

/* start_script under lua_pcall: creates env, arg, the root and the
 * coroutine with the main chunk and its arguments (left on co's stack). */
static int start_body(lua_State *L)
{
	struct ctx *c = ctx_of(L);
	const uint8_t *hash = lua_touserdata(L, 1);
	struct mig_error err = { 0 }; /* the engine keeps the first failure: start clear */
	int env, root, i;
	lua_State *co;

	mob_env_push(L);
	env = lua_gettop(L);
	/* arg as lua.c makes it: the script at 0, its arguments after. */
	lua_createtable(L, c->nargs, 2);
	lua_pushstring(L, c->prog);
	lua_rawseti(L, -2, -1);
	lua_pushstring(L, c->script);
	lua_rawseti(L, -2, 0);
	for (i = 0; i < c->nargs; i++) {
		lua_pushstring(L, c->args[i]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, env, "arg");

	lua_newtable(L);
	root = lua_gettop(L);
	lua_pushvalue(L, env);
	lua_setfield(L, root, "env");
	co = lua_newthread(L);
	lua_setfield(L, root, "co");
	lua_pushvalue(L, root);
	lua_setfield(L, LUA_REGISTRYINDEX, MOB_REG_ROOT);

	if (mig_source_load(L, hash, &err) != 0)
		return luaL_error(L, "%s", err.msg);
	/* The main chunk's only upvalue is its _ENV. */
	lua_pushvalue(L, env);
	if (lua_setupvalue(L, -2, 1) == NULL)
		lua_pop(L, 1);
	lua_xmove(L, co, 1);
	for (i = 0; i < c->nargs; i++)
		lua_pushstring(co, c->args[i]);
	mob_globals_set(L, env);
	c->co = co;
	return 0;
}

/* Sets up the first state for a run from the beginning. Returns 0, or
 * EXIT_FAILURE (script cannot be compiled, as lua.c) / EXIT_ENGINE. */
static int start_script(struct ctx *c)
{
	struct mob_err e;
	uint8_t hash[MIG_HASH_LEN];

	c->L = new_state(c, c->have_seed, c->seed, hash, &e);
	if (c->L == NULL) {
		fprintf(stderr, "%s: %s\n", c->prog, e.msg);
		return EXIT_ENGINE;
	}
	lua_pushcfunction(c->L, start_body);
	lua_pushlightuserdata(c->L, hash);
	if (lua_pcall(c->L, 1, 0, 0) != LUA_OK) {
		/* A syntax error: lua.c's message and status. */
		fprintf(stderr, "%s: %s\n", c->prog, lua_tostring(c->L, -1));
		return EXIT_FAILURE;
	}
	if (c->every > 0)
		lua_sethook(c->co, hook, LUA_MASKCOUNT, (int)c->every);
	return 0;
}

/* "chunk:line" of the innermost Lua frame of co. */
static void where(lua_State *co, char *buf, size_t len)
{
	lua_Debug ar;
	int level;

	snprintf(buf, len, "?");
	for (level = 0; lua_getstack(co, level, &ar); level++) {
		if (lua_getinfo(co, "Sl", &ar) && ar.currentline > 0) {
			snprintf(buf, len, "%s:%d", ar.short_src, ar.currentline);
			return;
		}
	}
}

static void record_failure(struct ctx *c, const struct mig_error *err)
{
	char at[160];
	size_t i;

	c->failed++;
	where(c->co, at, sizeof at);
	for (i = 0; i < c->npoints; i++) {
		struct point *p = &c->points[i];
		if (p->code == err->code && strcmp(p->where, at) == 0 &&
		    strcmp(p->msg, err->msg) == 0) {
			p->hits++;
			return;
		}
	}
	if (c->npoints < MAX_POINTS) {
		struct point *p = &c->points[c->npoints++];
		snprintf(p->where, sizeof p->where, "%s", at);
		p->code = err->code;
		snprintf(p->msg, sizeof p->msg, "%s", err->msg);
		p->hits = 1;
	}
}

static int write_dump(struct ctx *c, lua_Integer n, const struct mig_buf *b)
{
	char path[PATH_MAX];
	FILE *f;
	int ok;

	if ((size_t)snprintf(path, sizeof path, "%s/state-%06lld.bin", c->dump_dir,
			     (long long)n) >= sizeof path) {
		fprintf(stderr, "%s: --dump-states path too long\n", c->prog);
		return -1;
	}
	f = fopen(path, "wb");
	if (f == NULL) {
		fprintf(stderr, "%s: %s: %s\n", c->prog, path, strerror(errno));
		return -1;
	}
	ok = fwrite(b->data, 1, b->len, f) == b->len;
	ok = (fclose(f) == 0) && ok;
	if (!ok) {
		fprintf(stderr, "%s: %s: write failed\n", c->prog, path);
		return -1;
	}
	return 0;
}

/* Closes a state the script has left: its objects live on elsewhere, so
 * none of their finalizers may run here. */
static void drop_state(lua_State *L)
{
	mig_state_forget_finalizers(L);
	lua_close(L);
}

/*
 * Restores bytes into a fresh state and makes the root live. On success sets
 * *out (the caller owns it), c->co is NOT changed; *co_out and *moves_out
 * say what the root holds. Returns 0 or a negative code with e filled.
 */
static int restore_into_new(struct ctx *c, const struct mig_buf *b, lua_State **out,
			    lua_State **co_out, lua_Integer *moves_out, struct mob_err *e)
{
	struct mig_state_info info;
	struct mig_error err = { 0 }; /* the engine keeps the first failure: start clear */
	uint8_t hash[MIG_HASH_LEN];
	lua_State *L;
	int rc;

	*out = NULL;
	rc = mig_state_peek(b->data, b->len, &info);
	if (rc != 0) {
		mob_err_set(e, rc, "%s", mig_strerror(rc));
		return rc;
	}
	L = new_state(c, 1, info.seed, hash, e);
	if (L == NULL)
		return e->code != 0 ? e->code : MIG_ERR_NOMEM;
	mob_globals_original(L);
	memset(&err, 0, sizeof err);
	rc = mig_state_restore(L, b->data, b->len, &err);
	if (rc != 0) {
		char msg[300];
		snprintf(msg, sizeof msg, "%s: %s", mig_strerror(rc), err.msg);
		mob_err_set(e, rc, "%s", msg);
		lua_close(L);
		return rc;
	}
	rc = mob_root_install(L, co_out, moves_out, e);
	if (rc != 0) {
		drop_state(L);
		return rc;
	}
	*out = L;
	return 0;
}

/*
 * One move: persist the root, restore it into a fresh state, drop the old
 * one. Returns 0 (moved, or not movable here and recorded) or EXIT_ENGINE.
 */
static int move(struct ctx *c)
{
	struct mig_buf b = { NULL, 0, 0 };
	struct mig_error err = { 0 }; /* the engine keeps the first failure: start clear */
	struct mob_err e;
	lua_State *L2 = NULL, *co2 = NULL;
	lua_Integer n = c->moves + 1, got;
	char at[160];
	int rc, status = 0;

	c->attempts++;
	/* Garbage's finalizers run now, as they would at some later collection
	 * in plain Lua; after the move they could no longer run at all. */
	lua_gc(c->L, LUA_GCCOLLECT);
	fflush(stdout);
	memset(&err, 0, sizeof err);
	rc = mob_root_refresh(c->L, n, &e);
	if (rc != 0) {
		err.code = rc;
		snprintf(err.msg, sizeof err.msg, "%.200s", e.msg);
		record_failure(c, &err);
		return 0;
	}
	mob_globals_original(c->L);
	lua_getfield(c->L, LUA_REGISTRYINDEX, MOB_REG_ROOT);
	rc = mig_state_persist(c->L, -1, &b, &err);
	lua_pop(c->L, 1);
	lua_getfield(c->L, LUA_REGISTRYINDEX, MOB_REG_ROOT);
	lua_getfield(c->L, -1, "env");
	mob_globals_set(c->L, -1);
	lua_pop(c->L, 2);
	if (rc != 0) {
		err.code = rc;
		record_failure(c, &err);
		mig_buf_free(&b);
		return 0;
	}
	if (c->dump_dir != NULL && write_dump(c, n, &b) != 0) {
		status = EXIT_ENGINE;
		goto out;
	}
	rc = restore_into_new(c, &b, &L2, &co2, &got, &e);
	if (rc != 0 || got != n) {
		where(c->co, at, sizeof at);
		fprintf(stderr, "%s: move %lld at %s: the state just persisted does not restore: %s\n",
			c->prog, (long long)n, at, rc != 0 ? e.msg : "wrong move number");
		if (c->dump_dir == NULL)
			fprintf(stderr, "%s: rerun with --dump-states DIR to keep the state\n", c->prog);
		if (L2 != NULL)
			drop_state(L2);
		status = EXIT_ENGINE;
		goto out;
	}
	drop_state(c->L);
	c->L = L2;
	c->co = co2;
	c->moves = n;
	arm_restored(c, co2);
out:
	mig_buf_free(&b);
	return status;
}

/* Sets up from a --resume file. Returns 0 or EXIT_REFUSED. */
static int resume_from_file(struct ctx *c)
{
	struct mig_buf b = { NULL, 0, 0 };
	struct mob_err e;
	char *data;
	size_t len;
	int rc;

	rc = mob_file_read(c->resume, &data, &len);
	if (rc != 0) {
		fprintf(stderr, "%s: %s: %s\n", c->prog, c->resume, strerror(-rc));
		return EXIT_REFUSED;
	}
	b.data = (uint8_t *)data;
	b.len = len;
	rc = restore_into_new(c, &b, &c->L, &c->co, &c->moves, &e);
	free(data);
	if (rc == 0)
		arm_restored(c, c->co);
	if (rc != 0) {
		fprintf(stderr, "%s: %s: refused: %s%s\n", c->prog, c->resume, e.msg,
			rc == MIG_ERR_NOSOURCE ? " (was the state dumped from this script, unchanged?)"
					       : "");
		return EXIT_REFUSED;
	}
	return 0;
}

/* The script raised: report as lua.c does, after closing its pending
 * to-be-closed variables (lua.c's pcall unwinds them). */
static int script_error(struct ctx *c)
{
	lua_State *L = c->L, *co = c->co;
	const char *msg;

	/* The error object stays on co's top, where closing the thread takes
	 * it from, and a copy comes to L; co's frame may have no free slot,
	 * so the copy is made on L. */
	luaL_checkstack(L, 8, NULL);
	lua_xmove(co, L, 1);
	lua_pushvalue(L, -1);
	lua_xmove(L, co, 1);
	msg = lua_tostring(L, -1);
	if (msg == NULL) {
		if (luaL_callmeta(L, -1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			msg = lua_tostring(L, -1);
		else
			msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, -1));
	}
	luaL_traceback(L, co, msg, 0);
	lua_closethread(co, L);
	fflush(stdout);
	fprintf(stderr, "%s: %s\n", c->prog, lua_tostring(L, -1));
	lua_settop(L, 0);
	return EXIT_FAILURE;
}

static int run(struct ctx *c, int nargs)
{
	int status, nres, rc;

	status = lua_resume(c->co, c->L, nargs, &nres);
	while (status == LUA_YIELD) {
		/* A top-level yield's values go nowhere; it returns nothing. */
		lua_pop(c->co, nres);
		rc = move(c);
		if (rc != 0)
			return rc;
		status = lua_resume(c->co, c->L, 0, &nres);
	}
	if (status != LUA_OK)
		return script_error(c);
	return EXIT_SUCCESS;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* Parses the command line into c; returns 0, or EXIT_USAGE (message
 * printed), or -1 for --help. */
static int parse_args(struct ctx *c, int argc, char **argv)
{
	int i;
	long v;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		int more = i + 1 < argc;

		if (strcmp(a, "--every") == 0 && more) {
			if (parse_long(argv[++i], 0, INT_MAX, &c->every) != 0)
				goto bad_value;
		} else if (strcmp(a, "--dump-states") == 0 && more) {
			c->dump_dir = argv[++i];
		} else if (strcmp(a, "--resume") == 0 && more) {
			c->resume = argv[++i];
		} else if (strcmp(a, "--seed") == 0 && more) {
			if (parse_long(argv[++i], 0, (long)UINT_MAX, &v) != 0)
				goto bad_value;
			c->seed = (unsigned int)v;
			c->have_seed = 1;
		} else if (strcmp(a, "--strict") == 0) {
			c->strict = 1;
		} else if (strcmp(a, "--stats") == 0) {
			c->stats = 1;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			return -1;
		} else if (strcmp(a, "--") == 0) {
			if (c->script == NULL && i + 1 < argc)
				c->script = argv[++i];
			i++;
			break;
		} else if (c->script == NULL) {
			if (a[0] == '-' && a[1] != '\0') {
				fprintf(stderr, "%s: unknown option %s\n", c->prog, a);
				return EXIT_USAGE;
			}
			c->script = a;
		} else {
			break; /* the script's own arguments start here */
		}
	}
	if (c->script == NULL) {
		fprintf(stderr, "%s: no script given\n", c->prog);
		return EXIT_USAGE;
	}
	c->args = argv + i;
	c->nargs = argc - i;
	return 0;
bad_value:
	fprintf(stderr, "%s: bad value for %s: %s\n", c->prog, argv[i - 1], argv[i]);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static struct ctx c;
	int rc, status;

	c.prog = argc > 0 ? argv[0] : "mobility-check";
	rc = parse_args(&c, argc, argv);
	if (rc != 0) {
		usage(rc < 0 ? stdout : stderr, c.prog);
		return rc < 0 ? EXIT_SUCCESS : EXIT_USAGE;
	}
	if (c.dump_dir != NULL && mkdir(c.dump_dir, 0777) != 0 && errno != EEXIST) {
		fprintf(stderr, "%s: %s: %s\n", c.prog, c.dump_dir, strerror(errno));
		return EXIT_ENGINE;
	}
	rc = mob_script_read(c.script, &c.src, &c.srclen);
	if (rc != 0) {
		/* lua.c's status for a script it cannot open. */
		fprintf(stderr, "%s: cannot open %s: %s\n", c.prog, c.script,
			rc == -ENOEXEC ? "binary chunks are not accepted" : strerror(-rc));
		return EXIT_FAILURE;
	}
	if (c.resume != NULL) {
		rc = resume_from_file(&c);
		if (rc == 0)
			status = run(&c, 0);
	} else {
		rc = start_script(&c);
		if (rc == 0)
			status = run(&c, c.nargs);
	}
	if (rc != 0) {
		status = rc;
	} else if (status != EXIT_ENGINE) {
		/* Finalizers run at the end, as lua.c's lua_close runs them. */
		lua_close(c.L);
		c.L = NULL;
		status = finish(&c, status);
	}
	if (c.L != NULL)
		drop_state(c.L);
	free(c.src);
	return status;
}
