/*
 * bench/agents: how many agents one host holds, and what activating a
 * passivated one costs.
 *
 *  1. Resident idle agents: N agents each waiting in agent.recv(); memory
 *     per agent from the process's resident set (and the Lua allocator's
 *     own count of one agent), and how many would fit in the host's memory
 *     (extrapolated from the measured slope when N is smaller).
 *  2. Registered agents with on-demand passivation (needs the state
 *     engine): M agents that passivate as soon as they wait (their state
 *     goes to the SQLite store and their lua_State is closed); memory per
 *     registered agent and registration rate.
 *  3. Activation latency: a message to a passivated agent, until its slice
 *     has run (store read, restore, resume); p50 and p99.
 *
 * Usage: agents [N resident, default 20000] [M passive, default 20000]
 *               [activations, default 1000]
 */
#include "agd_config.h"
#include "agd_json.h"
#include "agd_log.h"
#include "agd_loop.h"
#include "agd_rt.h"
#include "agd_vm.h"
#include "mig_key.h"
#include "mig_segment.h"

#include <malloc.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Bytes malloc has handed out (not returned): unlike the resident set, it
 * does not depend on what earlier phases left in the allocator's arenas. */
static double heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return (double)mi.uordblks + (double)mi.hblkhd;
}

static double rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, res = 0;

	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld %ld", &pages, &res) != 2)
		res = 0;
	fclose(f);
	return (double)res * (double)sysconf(_SC_PAGESIZE);
}

/* User and system CPU time of the process so far, in microseconds. */
static double cpu_us(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static double mem_total(void)
{
	return (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
}

/* The dispatcher's part: the tick, on its own thread. */
struct ticker {
	struct agd_rt *rt;
	struct agd_loop *loop;
	volatile int stop;
};

static void *tick_main(void *arg)
{
	struct ticker *t = arg;

	while (!t->stop) {
		agd_rt_tick(t->loop, t->rt);
		usleep(1000);
	}
	return NULL;
}

/* Sleeps about us microseconds (the timer slack is lowered in main). */
static void nap_us(long us)
{
	struct timespec ts = { 0, us * 1000 };

	nanosleep(&ts, NULL);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Waits until every listed agent has run at least one slice and waits. */
static void settle(struct agd_rt *rt, char (*ids)[AGD_ID_LEN + 1], int n, int want_passive)
{
	for (int i = 0; i < n; i++) {
		for (;;) {
			enum agd_state st;
			int resident = 1;

			if (agd_rt_agent_state(rt, ids[i], &st, NULL, &resident) != 0)
				break;
			if (st == AGD_WAITING && (!want_passive || !resident))
				break;
			if (st >= AGD_FINISHED) {
				fprintf(stderr, "agents: agent %s ended\n", ids[i]);
				exit(1);
			}
			usleep(200);
		}
	}
}

static void resident_phase(int n)
{
	struct agd_config cfg;
	struct agd_loop *loop = agd_loop_new();
	struct agd_rt *rt = NULL;
	struct agd_code *code = NULL;
	const char *src = "agent.recv()";
	char err[256], (*ids)[AGD_ID_LEN + 1] = calloc((size_t)n, AGD_ID_LEN + 1);
	double before, after, per, fits, hbefore, hafter;
	struct agd_jw w;
	char *js;
	struct agd_json *doc = NULL;
	long long lua_bytes = -1;

	agd_config_defaults(&cfg);
	cfg.data_dir[0] = '\0';
	cfg.allow_source = 1;
	snprintf(cfg.trust_store, sizeof cfg.trust_store, "/nonexistent");
	if (ids == NULL || agd_rt_new(&cfg, loop, &rt) != 0 || agd_rt_start(rt) != 0)
		exit(1);
	agd_rt_code_source(rt, "idle", src, strlen(src), &code, err, sizeof err);
	before = rss_bytes();
	hbefore = heap_bytes();
	for (int i = 0; i < n; i++)
		if (agd_rt_spawn(rt, code, NULL, ids[i], err, sizeof err) != 0) {
			fprintf(stderr, "agents: %s\n", err);
			exit(1);
		}
	settle(rt, ids, n, 0);
	after = rss_bytes();
	hafter = heap_bytes();
	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	agd_rt_agent_json(rt, ids[0], &w);
	agd_jw_obj_end(&w);
	js = agd_jw_take(&w, NULL);
	if (js && agd_json_parse(js, strlen(js), &doc, NULL) == 0)
		agd_json_get_int(doc, agd_json_get(doc, agd_json_root(doc), "agent"), "memory", &lua_bytes);
	agd_json_destroy(&doc);
	free(js);
	per = (after - before) / n;
	fits = mem_total() * 0.9 / per;
	printf("resident idle agents: %d\n", n);
	printf("  memory per agent (RSS delta): %.0f bytes (%.1f KiB)\n", per, per / 1024);
	printf("  memory per agent (malloc'd bytes delta): %.0f bytes\n", (hafter - hbefore) / n);
	printf("{\"bench\":\"agents\",\"metric\":\"resident_idle_heap_bytes_per_agent\",\"value\":%.0f,\"unit\":\"B\"}\n",
	       (hafter - hbefore) / n);
	printf("  Lua allocator bytes of one agent: %lld\n", lua_bytes);
	printf("  host memory %.1f GiB: about %.0f resident idle agents fit (90%%, extrapolated)\n",
	       mem_total() / (1u << 30), fits);
	printf("{\"bench\":\"agents\",\"metric\":\"resident_idle_bytes_per_agent\",\"value\":%.0f,\"unit\":\"B\"}\n", per);
	printf("{\"bench\":\"agents\",\"metric\":\"resident_idle_lua_bytes_per_agent\",\"value\":%lld,\"unit\":\"B\"}\n", lua_bytes);
	printf("{\"bench\":\"agents\",\"metric\":\"resident_idle_agents_measured\",\"value\":%d,\"unit\":\"agents\"}\n", n);
	printf("{\"bench\":\"agents\",\"metric\":\"resident_idle_agents_fit_extrapolated\",\"value\":%.0f,\"unit\":\"agents\"}\n", fits);
	fflush(stdout);
	agd_code_unref(rt, &code);
	agd_rt_stop(rt, 0);
	agd_rt_destroy(&rt);
	agd_loop_destroy(&loop);
	agd_config_free(&cfg);
	free(ids);
}

/* A signed segment of `src` and a trust store for its key, in dir. */
static uint8_t *make_segment(const char *dir, const char *src, size_t *len)
{
	const char *manifest = "agentd-manifest 1\nname = passive\nversion = 1\nentry = main.lua main\n"
			       "mobility = strong\nactivation = on-demand\nfile = main.lua\n";
	struct mig_seg_file f = { "main.lua", src, strlen(src) };
	struct mig_segment *seg = NULL;
	struct mig_key *k = NULL;
	struct mig_error e;
	char path[512];
	uint8_t *bytes = NULL;

	snprintf(path, sizeof path, "%s/author", dir);
	if (mig_key_generate("bench", &k) != 0 || mig_key_save(k, path, &e) != 0 ||
	    mig_segment_build(manifest, strlen(manifest), &f, 1, &seg, &e) != 0 ||
	    mig_segment_sign(seg, k, &bytes, len) != 0) {
		fprintf(stderr, "agents: cannot build the segment\n");
		exit(1);
	}
	mig_segment_destroy(&seg);
	mig_key_destroy(&k);
	return bytes;
}

static void passive_phase(int m, int activations)
{
	struct agd_config cfg;
	struct agd_loop *loop = agd_loop_new();
	struct agd_rt *rt = NULL;
	struct agd_code *code = NULL;
	struct ticker tk = { 0 };
	pthread_t th;
	char dir[] = "/tmp/agd-bench-XXXXXX", cmd[600], err[256];
	char (*ids)[AGD_ID_LEN + 1] = calloc((size_t)m, AGD_ID_LEN + 1);
	uint64_t *lat = calloc((size_t)activations, sizeof *lat);
	double before, after, t0, t1, per, cpu0, cpu1;
	uint8_t *seg;
	size_t len;
	struct stat st;
	char path[600];

	if (!agd_vm_can_persist()) {
		printf("passivation: not measured: this build has no state engine\n");
		free(ids);
		free(lat);
		agd_loop_destroy(&loop);
		return;
	}
	if (mkdtemp(dir) == NULL || ids == NULL || lat == NULL)
		exit(1);
	seg = make_segment(dir, "function main() while true do agent.recv() end end", &len);
	agd_config_defaults(&cfg);
	snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s/data", dir);
	snprintf(cfg.trust_store, sizeof cfg.trust_store, "%s/author.pub", dir);
	cfg.passivate_after = 0;
	agd_config_finish(&cfg);
	if (agd_rt_new(&cfg, loop, &rt) != 0 || agd_rt_start(rt) != 0)
		exit(1);
	tk.rt = rt;
	tk.loop = loop;
	pthread_create(&th, NULL, tick_main, &tk);
	if (agd_rt_code_add(rt, seg, len, &code, err, sizeof err) != 0) {
		fprintf(stderr, "agents: %s\n", err);
		exit(1);
	}
	before = heap_bytes();
	t0 = (double)agd_now_us();
	for (int i = 0; i < m; i++)
		if (agd_rt_spawn(rt, code, NULL, ids[i], err, sizeof err) != 0) {
			fprintf(stderr, "agents: %s\n", err);
			exit(1);
		}
	settle(rt, ids, m, 1);
	t1 = (double)agd_now_us();
	after = heap_bytes();
	per = (after - before) / m;
	snprintf(path, sizeof path, "%s/data/agentd.db", dir);
	printf("registered on-demand agents: %d, all passivated\n", m);
	printf("  memory per registered agent (malloc'd bytes delta): %.0f bytes\n", per);
	printf("  registration + first passivation: %.0f agents/s\n", m / ((t1 - t0) / 1e6));
	if (stat(path, &st) == 0)
		printf("  store file: %.1f MiB (%.0f bytes per agent; WAL not counted)\n",
		       st.st_size / 1048576.0, (double)st.st_size / m);
	printf("  about %.0f registered agents fit in memory (90%%, extrapolated)\n",
	       mem_total() * 0.9 / per);
	printf("{\"bench\":\"agents\",\"metric\":\"passive_bytes_per_agent\",\"value\":%.0f,\"unit\":\"B\"}\n", per);
	printf("{\"bench\":\"agents\",\"metric\":\"passive_agents_measured\",\"value\":%d,\"unit\":\"agents\"}\n", m);
	printf("{\"bench\":\"agents\",\"metric\":\"passive_agents_fit_extrapolated\",\"value\":%.0f,\"unit\":\"agents\"}\n",
	       mem_total() * 0.9 / per);
	printf("{\"bench\":\"agents\",\"metric\":\"passivations_per_s\",\"value\":%.0f,\"unit\":\"1/s\"}\n",
	       m / ((t1 - t0) / 1e6));
	fflush(stdout);
	cpu0 = cpu_us();
	for (int i = 0; i < activations; i++) {
		const char *id = ids[(size_t)i * 7919 % (size_t)m];
		uint64_t sw0 = 0, sw = 0, start;
		enum agd_state s;
		int resident = 1;

		/* Wait for it to be passive, then wake it with a message (the
		 * encoding of the string "x": the bench needs no Lua here). */
		while (agd_rt_agent_state(rt, id, &s, &sw0, &resident) == 0 &&
		       (resident || s != AGD_WAITING))
			usleep(100);
		{
			struct mig_buf b = { 0 };
			struct agd_json *doc = NULL;

			agd_json_parse("\"x\"", 3, &doc, NULL);
			agd_msg_from_json(doc, agd_json_root(doc), &b, err, sizeof err);
			start = agd_now_us();
			agd_rt_send(rt, "", id, b.data, b.len);
			agd_buf_free(&b);
			agd_json_destroy(&doc);
		}
		/* Polled every few microseconds, not in a tight loop: a
		 * spinning reader would take the runtime's lock from the
		 * worker it measures (and a core from a two-core host). */
		do {
			agd_rt_agent_state(rt, id, &s, &sw, &resident);
			if (sw == sw0)
				nap_us(20);
		} while (sw == sw0);
		lat[i] = agd_now_us() - start;
	}
	cpu1 = cpu_us();
	qsort(lat, (size_t)activations, sizeof *lat, cmp_u64);
	printf("activation of a passivated agent (message -> slice done), %d samples:\n", activations);
	printf("  p50 %llu us, p99 %llu us\n", (unsigned long long)lat[activations / 2],
	       (unsigned long long)lat[activations * 99 / 100]);
	printf("{\"bench\":\"agents\",\"metric\":\"activation_p50\",\"value\":%llu,\"unit\":\"us\"}\n",
	       (unsigned long long)lat[activations / 2]);
	printf("{\"bench\":\"agents\",\"metric\":\"activation_p99\",\"value\":%llu,\"unit\":\"us\"}\n",
	       (unsigned long long)lat[activations * 99 / 100]);
	/* CPU the whole process spent per sample (the activation, the
	 * passivation that follows it, the ticker and the polls): unlike
	 * the latency, it does not depend on what else the host runs. */
	printf("  CPU per activation + passivation: %.0f us\n", (cpu1 - cpu0) / activations);
	printf("{\"bench\":\"agents\",\"metric\":\"activation_and_passivation_cpu\",\"value\":%.0f,\"unit\":\"us\"}\n",
	       (cpu1 - cpu0) / activations);
	tk.stop = 1;
	pthread_join(th, NULL);
	agd_code_unref(rt, &code);
	agd_rt_stop(rt, 0);
	agd_rt_destroy(&rt);
	agd_loop_destroy(&loop);
	agd_config_free(&cfg);
	free(seg);
	free(ids);
	free(lat);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "agents: could not remove %s\n", dir);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 20000;
	int m = argc > 2 ? atoi(argv[2]) : 20000;
	int acts = argc > 3 ? atoi(argv[3]) : 1000;

	/* The polls for an activation's end sleep 20 us: with the default
	 * timer slack (50 us) each would add up to that much to a sample. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	/* Life-cycle lines would cost more than what is measured. */
	agd_log_open(NULL, AGD_LOG_WARN);
	if (n <= 0 || m <= 0 || acts <= 0 || sodium_init() < 0) {
		fprintf(stderr, "usage: agents [resident] [passive] [activations]\n");
		return 2;
	}
	resident_phase(n);
	passive_phase(m, acts);
	return 0;
}
