/*
 * persist: speed and size of the strong-mobility engine (mig_state) on three
 * workloads, each built by a Lua chunk registered as an external source:
 *   (a) a table of 100,000 records {id=i, name="n"..i, score=i*0.5};
 *   (b) a coroutine suspended 200 Lua frames deep, 4 locals per frame;
 *   (c) 1,000 closures sharing 10 upvalues.
 * For each: the median over RUNS runs (default 15, at least 11) of the
 * persist time, the restore time (into a fresh prepared state; preparing it
 * is timed apart as "setup") and the buffer size. Each restored value is
 * checked once, so a fast but wrong engine fails the benchmark (exit 1).
 *
 * Usage: persist [RUNS]
 * Output: a human summary with the targets, then one JSON object a line,
 * {"bench":"persist","metric":"a_persist_ms_p50","value":...,"unit":"ms"}.
 */
#include "mobility_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RUNS 101

static const char src_a[] =
	"local t = {}\n"
	"for i = 1, 100000 do t[i] = { id = i, name = 'n' .. i, score = i * 0.5 } end\n"
	"return t\n";

/* f(n) holds 4 locals and calls itself until n reaches 1, where it yields:
 * 200 frames of f on the coroutine's stack (plus the body's own). */
static const char src_b[] =
	"local function f(n)\n"
	"  local a, b, c, d = n * 2, 'frame' .. n, { n }, n + 0.5\n"
	"  if n > 1 then f(n - 1) else coroutine.yield() end\n"
	"  return a + #b + c[1] + d\n"
	"end\n"
	"local co = coroutine.create(function() f(200); return 'finished' end)\n"
	"coroutine.resume(co)\n"
	"return co\n";

static const char src_c[] =
	"local u1, u2, u3, u4, u5, u6, u7, u8, u9, u10 = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10\n"
	"local t = {}\n"
	"for i = 1, 1000 do\n"
	"  t[i] = function() return u1 + u2 + u3 + u4 + u5 + u6 + u7 + u8 + u9 + u10 end\n"
	"end\n"
	"return t\n";

struct workload {
	char id;              /* 'a', 'b', 'c' */
	const char *title;    /* for the summary */
	const char *src;      /* the chunk building the value */
	double persist_target_ms;
	double restore_target_ms;
	double size_target;   /* bytes, or 0 for none */
	double eris_persist;  /* Eris on Lua 5.3, for reference */
	double eris_restore;
	double eris_size;
	double persist_ms;    /* measured medians */
	double restore_ms;
	double setup_ms;
	size_t size;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A prepared state with the workload's source registered. */
static lua_State *fresh(const struct workload *w, unsigned int seed, uint8_t hash[MIG_HASH_LEN])
{
	struct mob_err e;
	lua_State *L = mig_lua_newstate(mob_alloc, NULL, seed);

	if (L == NULL)
		return NULL;
	if (mob_prepare(L, NULL, &e) != 0 ||
	    mig_source_add(L, w->src, strlen(w->src), "=bench", 1, hash) != 0) {
		fprintf(stderr, "persist: cannot prepare a state: %s\n", e.msg);
		lua_close(L);
		return NULL;
	}
	return L;
}

/* Whether the restored value at the top is what the workload built. */
static int check(lua_State *L, char id)
{
	int ok = 0;

	switch (id) {
	case 'a':
		if (lua_type(L, -1) != LUA_TTABLE || luaL_len(L, -1) != 100000)
			break;
		lua_geti(L, -1, 100000);
		lua_getfield(L, -1, "name");
		lua_getfield(L, -2, "score");
		lua_getfield(L, -3, "id");
		ok = lua_type(L, -3) == LUA_TSTRING && strcmp(lua_tostring(L, -3), "n100000") == 0 &&
		     lua_tonumber(L, -2) == 50000.0 && lua_tointeger(L, -1) == 100000;
		lua_pop(L, 4);
		break;
	case 'b': {
		lua_State *co = lua_tothread(L, -1);
		lua_Debug ar;
		int nres, depth = 0;

		if (co == NULL || lua_status(co) != LUA_YIELD)
			break;
		while (lua_getstack(co, depth, &ar))
			depth++;
		/* yield + 200 frames of f + the coroutine's body */
		if (depth != 202)
			break;
		ok = lua_resume(co, L, 0, &nres) == LUA_OK && nres == 1 &&
		     strcmp(lua_tostring(co, -1), "finished") == 0;
		break;
	}
	case 'c':
		if (lua_type(L, -1) != LUA_TTABLE || luaL_len(L, -1) != 1000)
			break;
		lua_geti(L, -1, 1);
		lua_geti(L, -2, 1000);
		ok = lua_upvalueid(L, -2, 10) == lua_upvalueid(L, -1, 10);
		lua_call(L, 0, 1);
		ok = ok && lua_tointeger(L, -1) == 55;
		lua_pop(L, 2);
		break;
	}
	return ok;
}

/* Builds the workload, then persists and restores it `runs` times. */
static int measure(struct workload *w, int runs)
{
	double tp[MAX_RUNS], tr[MAX_RUNS], ts[MAX_RUNS];
	uint8_t hash[MIG_HASH_LEN];
	struct mig_error err = { 0 }; /* the engine keeps the first failure: start clear */
	struct mig_state_info info;
	lua_State *L = fresh(w, 0x5eed0000u + (unsigned char)w->id, hash);
	int i, rc = -1;

	if (L == NULL)
		return -1;
	if (mig_source_load(L, hash, &err) != 0 || lua_pcall(L, 0, 1, 0) != LUA_OK) {
		fprintf(stderr, "persist: (%c) does not build: %s\n", w->id,
			lua_tostring(L, -1) != NULL ? lua_tostring(L, -1) : err.msg);
		goto out;
	}
	for (i = 0; i < runs; i++) {
		struct mig_buf b = { NULL, 0, 0 };
		lua_State *R;
		double t0;
		int prc;

		lua_gc(L, LUA_GCCOLLECT);
		t0 = now_ms();
		prc = mig_state_persist(L, -1, &b, &err);
		tp[i] = now_ms() - t0;
		if (prc != 0) {
			fprintf(stderr, "persist: (%c) persist: %s: %s\n", w->id, mig_strerror(prc),
				err.msg);
			mig_buf_free(&b);
			goto out;
		}
		w->size = b.len;
		if (mig_state_peek(b.data, b.len, &info) != 0) {
			fprintf(stderr, "persist: (%c) peek fails\n", w->id);
			mig_buf_free(&b);
			goto out;
		}
		t0 = now_ms();
		R = fresh(w, info.seed, hash);
		ts[i] = now_ms() - t0;
		if (R == NULL) {
			mig_buf_free(&b);
			goto out;
		}
		t0 = now_ms();
		prc = mig_state_restore(R, b.data, b.len, &err);
		tr[i] = now_ms() - t0;
		mig_buf_free(&b);
		if (prc != 0) {
			fprintf(stderr, "persist: (%c) restore: %s: %s\n", w->id, mig_strerror(prc),
				err.msg);
			lua_close(R);
			goto out;
		}
		if (i == 0 && !check(R, w->id)) {
			fprintf(stderr, "persist: (%c) the restored value is wrong\n", w->id);
			lua_close(R);
			goto out;
		}
		lua_close(R);
	}
	w->persist_ms = median(tp, runs);
	w->restore_ms = median(tr, runs);
	w->setup_ms = median(ts, runs);
	rc = 0;
out:
	lua_close(L);
	return rc;
}

static void json(const char *metric, double value, const char *unit)
{
	/* Sizes are exact counts; times keep microsecond resolution. */
	printf("{\"bench\":\"persist\",\"metric\":\"%s\",\"value\":%.*f,\"unit\":\"%s\"}\n",
	       metric, strcmp(unit, "bytes") == 0 ? 0 : 4, value, unit);
}

int main(int argc, char **argv)
{
	struct workload w[] = {
		{ 'a', "(a) 100,000 records", src_a, 30, 45, 4e6, 229, 179, 9.3e6, 0, 0, 0, 0 },
		{ 'b', "(b) coroutine 200 frames deep", src_b, 0.1, 0.1, 0, 0.48, 0.46, 0, 0, 0, 0, 0 },
		{ 'c', "(c) 1,000 closures, 10 upvalues", src_c, 0.3, 0.4, 0, 1.44, 1.93, 0, 0, 0, 0, 0 },
	};
	int runs = 15, failed = 0;
	size_t i;
	char name[64];

	if (argc > 1) {
		runs = atoi(argv[1]);
		if (runs < 11 || runs > MAX_RUNS) {
			fprintf(stderr, "usage: persist [RUNS]   (11 <= RUNS <= %d)\n", MAX_RUNS);
			return 2;
		}
	}
	for (i = 0; i < sizeof w / sizeof w[0]; i++)
		if (measure(&w[i], runs) != 0)
			failed = 1;
	if (failed)
		return 1;

	printf("mig_state persist/restore, median of %d runs (restore into a fresh prepared state)\n",
	       runs);
	printf("%-34s %11s %11s %11s %11s   %s\n", "workload", "persist ms", "restore ms",
	       "size bytes", "setup ms", "target (Eris 5.3 reference)");
	for (i = 0; i < sizeof w / sizeof w[0]; i++) {
		int met = w[i].persist_ms <= w[i].persist_target_ms &&
			  w[i].restore_ms <= w[i].restore_target_ms &&
			  (w[i].size_target == 0 || (double)w[i].size <= w[i].size_target);

		printf("%-34s %11.3f %11.3f %11zu %11.3f   <=%g/<=%g ms", w[i].title, w[i].persist_ms,
		       w[i].restore_ms, w[i].size, w[i].setup_ms, w[i].persist_target_ms,
		       w[i].restore_target_ms);
		if (w[i].size_target > 0)
			printf(", <=%.0f MB", w[i].size_target / 1e6);
		printf(" (%g/%g ms", w[i].eris_persist, w[i].eris_restore);
		if (w[i].eris_size > 0)
			printf(", %.1f MB", w[i].eris_size / 1e6);
		printf(") %s\n", met ? "met" : "MISSED");
	}
	for (i = 0; i < sizeof w / sizeof w[0]; i++) {
		snprintf(name, sizeof name, "%c_persist_ms_p50", w[i].id);
		json(name, w[i].persist_ms, "ms");
		snprintf(name, sizeof name, "%c_restore_ms_p50", w[i].id);
		json(name, w[i].restore_ms, "ms");
		snprintf(name, sizeof name, "%c_size_bytes", w[i].id);
		json(name, (double)w[i].size, "bytes");
		snprintf(name, sizeof name, "%c_setup_ms_p50", w[i].id);
		json(name, w[i].setup_ms, "ms");
	}
	return 0;
}
