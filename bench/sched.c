/*
 * bench/sched: scheduler switches per second between agents.
 *
 * N agents each loop on a bare coroutine.yield(), which the runtime treats
 * as the end of a slice: the agent goes to the tail of the FIFO run queue
 * and the next one is resumed. Every switch is one lua_resume, one queue
 * round trip under the runtime's lock. Run with one worker (the seeds'
 * iterative server) and with one per core (the concurrent server).
 * A third run, with one worker, has agents that never yield: each spins
 * inside a nested coroutine, and only the count hook (passed up through
 * coroutine.wrap, docs/runtime.md) ends its slices.
 *
 * Usage: sched [seconds per run, default 2] [agents, default 100]
 */
#include "agd_config.h"
#include "agd_json.h"
#include "agd_log.h"
#include "agd_loop.h"
#include "agd_rt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long long switches(struct agd_rt *rt)
{
	struct agd_jw w;
	struct agd_json *doc = NULL;
	long long n = -1;
	size_t len;
	char *s;

	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	agd_rt_status_json(rt, &w);
	agd_jw_obj_end(&w);
	s = agd_jw_take(&w, &len);
	if (s != NULL && agd_json_parse(s, len, &doc, NULL) == 0)
		agd_json_get_int(doc, agd_json_root(doc), "switches", &n);
	agd_json_destroy(&doc);
	free(s);
	return n;
}

static double run(unsigned workers, int agents, double seconds, const char *src)
{
	struct agd_config cfg;
	struct agd_loop *loop = agd_loop_new();
	struct agd_rt *rt = NULL;
	struct agd_code *code = NULL;
	char err[256], id[AGD_ID_LEN + 1];
	long long s0, s1;
	uint64_t t0, t1;

	agd_config_defaults(&cfg);
	cfg.data_dir[0] = '\0';
	cfg.allow_source = 1;
	cfg.workers = workers;
	snprintf(cfg.trust_store, sizeof cfg.trust_store, "/nonexistent");
	if (loop == NULL || agd_rt_new(&cfg, loop, &rt) != 0 || agd_rt_start(rt) != 0) {
		fprintf(stderr, "sched: cannot start the runtime\n");
		exit(1);
	}
	if (agd_rt_code_source(rt, "yielder", src, strlen(src), &code, err, sizeof err) != 0) {
		fprintf(stderr, "sched: %s\n", err);
		exit(1);
	}
	for (int i = 0; i < agents; i++)
		if (agd_rt_spawn(rt, code, NULL, id, err, sizeof err) != 0) {
			fprintf(stderr, "sched: %s\n", err);
			exit(1);
		}
	agd_code_unref(rt, &code);
	usleep(200000); /* warm up: every agent created and running */
	s0 = switches(rt);
	t0 = agd_now_us();
	usleep((useconds_t)(seconds * 1e6));
	s1 = switches(rt);
	t1 = agd_now_us();
	agd_rt_stop(rt, 0);
	agd_rt_destroy(&rt);
	agd_loop_destroy(&loop);
	agd_config_free(&cfg);
	return (double)(s1 - s0) / ((double)(t1 - t0) / 1e6);
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 2;
	int agents = argc > 2 ? atoi(argv[2]) : 100;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	double r1, rn, rh;
	const char *yielder = "while true do coroutine.yield() end";
	const char *spinner = "coroutine.wrap(function() while true do end end)()";

	/* Life-cycle lines would cost more than what is measured. */
	agd_log_open(NULL, AGD_LOG_WARN);
	if (seconds <= 0 || agents <= 0 || cores <= 0) {
		fprintf(stderr, "usage: sched [seconds] [agents]\n");
		return 2;
	}
	r1 = run(1, agents, seconds, yielder);
	rn = run((unsigned)cores, agents, seconds, yielder);
	rh = run(1, agents, seconds, spinner);
	printf("sched: %d agents yielding, %.1f s per run\n", agents, seconds);
	printf("  1 worker (iterative):       %12.0f switches/s\n", r1);
	printf("  %ld workers (concurrent):    %12.0f switches/s\n", cores, rn);
	printf("  1 worker, spinning in nested coroutines (hook preemption): %.0f switches/s\n", rh);
	printf("{\"bench\":\"sched\",\"metric\":\"switches_per_s_1_worker\",\"value\":%.0f,\"unit\":\"1/s\"}\n", r1);
	printf("{\"bench\":\"sched\",\"metric\":\"switches_per_s_%ld_workers\",\"value\":%.0f,\"unit\":\"1/s\"}\n",
	       cores, rn);
	printf("{\"bench\":\"sched\",\"metric\":\"nested_preemptions_per_s_1_worker\",\"value\":%.0f,\"unit\":\"1/s\"}\n",
	       rh);
	return 0;
}
