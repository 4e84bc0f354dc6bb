/*
 * test_runtime.c: a real agentd (loopback tcp and ipc control endpoints,
 * its own data directory, trust store and author key) runs signed agents:
 * blocking calls never block other agents, busy loops are preempted,
 * quotas end only the offending agent with a reason, the control commands
 * do what docs/control-protocol.md says, and bad requests get error replies
 * without hurting the daemon.
 */
#include "itest.h"

#include "mig_key.h"
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sodium.h>
#include <zmq.h>

static struct itest t;

static void up(void)
{
	char extra[512], path[256];
	FILE *f;

	/* A file resource with known content, for agent.resource. */
	itest_setup(&t, NULL);
	snprintf(path, sizeof path, "%s/site.txt", t.dir);
	f = fopen(path, "w");
	fputs("42", f);
	fclose(f);
	snprintf(extra, sizeof extra, "[agents]\nmemory_limit = 4M\n[resource site]\nkind = file\n"
		 "path = %s\n", path);
	f = fopen(t.conf, "a");
	fputs(extra, f);
	fclose(f);
	itest_start(&t);
}

static void up_one_worker(void)
{
	itest_setup(&t, "[agents]\nmemory_limit = 4M\n");
	/* One worker: the seeds' iterative server, where only preemption
	 * keeps a busy agent from starving the rest. */
	{
		FILE *f = fopen(t.conf, "a");
		fputs("[daemon]\nworkers = 1\n", f);
		fclose(f);
	}
	itest_start(&t);
}

static void down(void)
{
	itest_teardown(&t);
}

TestSuite(daemon_runtime, .init = up, .fini = down, .timeout = 60);
TestSuite(daemon_one_worker, .init = up_one_worker, .fini = down, .timeout = 60);

Test(daemon_runtime, runs_a_signed_agent_to_the_end_and_keeps_its_log)
{
	char id[17];

	itest_run(&t, "hello", "function main() agent.log('hello from', agent.host()) end", "main",
		  "", id);
	cr_assert(itest_wait_state(&t, id, "finished", 5000));
	cr_assert(itest_log_has(&t, id, "hello from h1"));
	cr_assert(itest_log_has(&t, id, "[state] running -> finished: returned"));
}

/* Resource handles need the host's registry, which a worker process does
 * not have (docs/runtime.md, "Process isolation"): in-daemon only. */
#ifndef ITEST_ISOLATION
Test(daemon_runtime, agent_resource_gives_a_handle_to_a_bound_resource)
{
	char id[17];

	itest_run_ex(&t, "reader",
		     "function main()\n"
		     "  local h = assert(agent.resource('site'))\n"
		     "  agent.log('site says', h:read())\n"
		     "  agent.log('missing', select(2, agent.resource('nope')))\n"
		     "end", "main", "binding = site by-type file\n", "", id);
	cr_assert(itest_wait_state(&t, id, "finished", 5000));
	cr_assert(itest_log_has(&t, id, "site says 42"));
	cr_assert(itest_log_has(&t, id, "missing no binding 'nope'"));
}
#endif

Test(daemon_runtime, run_args_reach_the_entry_chunk)
{
	char id[17];

	itest_run(&t, "args", "local a = ... agent.log('arg', a)\n"
		  "function main(b) agent.log('main', b) end", "main", ",\"args\":\"xyz\"", id);
	cr_assert(itest_wait_state(&t, id, "finished", 5000));
	cr_assert(itest_log_has(&t, id, "arg xyz"));
	cr_assert(itest_log_has(&t, id, "main xyz"));
}

Test(daemon_runtime, run_args_survive_a_kill_9_before_the_first_checkpoint)
{
	char id[17];

	/* Never persisted (resident, no checkpoints): after kill -9 it starts
	 * again at its entry, and must be given its arguments again. */
	itest_run(&t, "argkeeper", "local a = ... agent.log('arg', a) agent.recv()", "",
		  ",\"args\":\"xyz\"", id);
	itest_crash(&t);
	itest_start(&t);
	cr_assert(itest_wait_log(&t, id, "arg xyz", 5000), "the restarted agent lost its arguments");
	cr_assert(!itest_log_has(&t, id, "arg nil"));
	cr_assert(itest_wait_state(&t, id, "waiting", 5000));
}

Test(daemon_one_worker, a_sleeping_agent_does_not_block_another)
{
	char a[17], b[17];

	itest_run(&t, "sleeper", "agent.sleep(60) agent.log('woke')", "", "", a);
	itest_run(&t, "quick", "agent.log('quick done')", "", "", b);
	cr_assert(itest_wait_state(&t, b, "finished", 5000));
	cr_assert(itest_wait_state(&t, a, "waiting", 2000));
}

Test(daemon_one_worker, a_busy_loop_is_preempted)
{
	char a[17], b[17], st[32];

	itest_run(&t, "spinner", "while true do end", "", "", a);
	itest_run(&t, "quick", "agent.log('still scheduled')", "", "", b);
	cr_assert(itest_wait_state(&t, b, "finished", 5000), "the busy agent starved the other");
	itest_state(&t, a, st, sizeof st);
	cr_assert_str_eq(st, "running");
}

Test(daemon_one_worker, a_busy_loop_inside_nested_coroutines_is_preempted)
{
	char a[17], b[17], c[17], st[32];

	/* One level through wrap, two through resume and wrap. */
	itest_run(&t, "nested", "local w = coroutine.wrap(function() while true do end end) w()", "",
		  "", a);
	itest_run(&t, "deeper",
		  "coroutine.resume(coroutine.create(function()\n"
		  "  coroutine.wrap(function() while true do end end)()\n"
		  "end))", "", "", b);
	itest_run(&t, "quick", "agent.log('still scheduled')", "", "", c);
	cr_assert(itest_wait_state(&t, c, "finished", 5000), "a busy nested coroutine starved the other");
	itest_state(&t, a, st, sizeof st);
	cr_assert_str_eq(st, "running");
	itest_state(&t, b, st, sizeof st);
	cr_assert_str_eq(st, "running");
}

Test(daemon_one_worker, preemption_inside_coroutines_is_invisible_to_the_agent)
{
	char a[17];

	/* Millions of instructions in a nested coroutine: preempted many
	 * times, it still computes the sum and yields exactly once. */
	itest_run(&t, "summer",
		  "local total, yields = 0, 0\n"
		  "local w = coroutine.wrap(function()\n"
		  "  for i = 1, 3000000 do total = total + i end\n"
		  "  coroutine.yield(total) return 'end'\n"
		  "end)\n"
		  "agent.log('sum', w(), w())\n"
		  "local co = coroutine.create(function(x) local y = coroutine.yield(x + 1) error('boom ' .. y) end)\n"
		  "agent.log('r1', coroutine.resume(co, 1))\n"
		  "local ok, e = coroutine.resume(co, 5) agent.log('r2', ok, e)\n"
		  "agent.log('r3', coroutine.resume(co))\n"
		  "agent.log('r4', pcall(coroutine.wrap(function() error('wb') end)))\n"
		  "agent.log('r5', coroutine.resume(coroutine.running()))\n",
		  "", "", a);
	cr_assert(itest_wait_state(&t, a, "finished", 20000));
	cr_assert(itest_log_has(&t, a, "sum 4500001500000 end"));
	cr_assert(itest_log_has(&t, a, "r1 true 2"));
	cr_assert(itest_log_has(&t, a, "r2 false"));
	cr_assert(itest_log_has(&t, a, "boom 5"));
	cr_assert(itest_log_has(&t, a, "r3 false cannot resume dead coroutine"));
	cr_assert(itest_log_has(&t, a, "r4 false"));
	cr_assert(itest_log_has(&t, a, "wb"));
	cr_assert(itest_log_has(&t, a, "r5 false cannot resume non-suspended coroutine"));
}

Test(daemon_one_worker, an_agent_preempted_in_a_nested_coroutine_persists_and_resumes)
{
	char a[17], body[128], st[32], *reply = NULL;
	int status;

	/* The nested loop polls its mailbox without blocking (recv(0)); it
	 * is stopped by the hook somewhere inside, persisted at SIGTERM, and
	 * must go on from there after the restart. */
	itest_run(&t, "poller",
		  "local n = 0\n"
		  "local w = coroutine.wrap(function()\n"
		  "  while true do\n"
		  "    n = n + 1\n"
		  "    local m = agent.recv(0)\n"
		  "    if m then agent.log('got', m, n > 1000) return n end\n"
		  "  end\n"
		  "end)\n"
		  "agent.log('after', w() == n)", "", "", a);
	cr_assert(itest_wait_state(&t, a, "running", 5000));
	usleep(300000);
	status = itest_stop(&t);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
	itest_start(&t);
	usleep(200000);
	itest_state(&t, a, st, sizeof st);
	cr_assert_str_eq(st, "running", "after the restart: %s", st);
	snprintf(body, sizeof body, "{\"agent\":\"%s\",\"msg\":\"go\"}", a);
	cr_assert_eq(itest_req(&t, NULL, "send", body, &reply), 1, "%s", reply);
	free(reply);
	cr_assert(itest_wait_state(&t, a, "finished", 10000));
	cr_assert(itest_log_has(&t, a, "got go true"));
	cr_assert(itest_log_has(&t, a, "after true"));
}

Test(daemon_runtime, memory_quota_kills_only_that_agent_with_a_reason)
{
	char a[17], b[17];

	itest_run(&t, "hog",
		  "local t = {} while true do pcall(function() for i = 1, 1e7 do "
		  "t[#t + 1] = string.rep('y', 100) .. i end end) end", "", "", a);
	itest_run(&t, "bystander", "agent.sleep(0.2) agent.log('bystander ok')", "", "", b);
	cr_assert(itest_wait_state(&t, a, "killed", 20000));
	cr_assert(itest_log_has(&t, a, "memory quota exceeded"));
	cr_assert(itest_wait_state(&t, b, "finished", 5000));
}

Test(daemon_runtime, instruction_quota_from_run_kills_through_pcall)
{
	char a[17];

	itest_run(&t, "spin", "while true do pcall(function() while true do end end) end", "",
		  ",\"instructions\":1000000", a);
	cr_assert(itest_wait_state(&t, a, "killed", 20000));
	cr_assert(itest_log_has(&t, a, "instruction quota exceeded"));
}

Test(daemon_runtime, kill_and_send_and_ps_over_the_control_channel)
{
	char a[17], b[17], body[128], *reply = NULL;

	itest_run(&t, "echo", "local m = agent.recv() agent.log('got', m) agent.recv()", "", "", a);
	cr_assert(itest_wait_state(&t, a, "waiting", 5000));
	snprintf(body, sizeof body, "{\"agent\":\"%s\",\"msg\":\"ping\"}", a);
	cr_assert_eq(itest_req(&t, NULL, "send", body, &reply), 1, "%s", reply);
	free(reply);
	cr_assert(itest_wait_log(&t, a, "got ping", 5000));
	cr_assert(itest_wait_state(&t, a, "waiting", 5000));
	snprintf(body, sizeof body, "{\"agent\":\"%s\"}", a);
	cr_assert_eq(itest_req(&t, NULL, "kill", body, &reply), 1, "%s", reply);
	free(reply);
	cr_assert(itest_wait_state(&t, a, "killed", 5000));
	cr_assert_eq(itest_req(&t, NULL, "kill", body, &reply), 0);
	cr_assert(strstr(reply, "\"code\":\"state\"") != NULL, "%s", reply);
	free(reply);
	itest_run(&t, "other", "agent.recv()", "", "", b);
	cr_assert_eq(itest_req(&t, NULL, "ps", "{}", &reply), 1);
	cr_assert(strstr(reply, a) != NULL && strstr(reply, b) != NULL, "%s", reply);
	free(reply);
	/* The ipc endpoint answers too. */
	cr_assert_eq(itest_req(&t, t.ipc, "status", "{}", &reply), 1);
	cr_assert(strstr(reply, "\"host\":\"h1\"") != NULL, "%s", reply);
	free(reply);
}

Test(daemon_runtime, unknown_agents_and_untrusted_code_are_refused)
{
	struct mig_key *stranger = NULL;
	char *reply = NULL;

	cr_assert_eq(itest_req(&t, NULL, "kill", "{\"agent\":\"0123456789abcdef\"}", &reply), 0);
	cr_assert(strstr(reply, "notfound") != NULL, "%s", reply);
	free(reply);
	cr_assert_eq(mig_key_generate("stranger", &stranger), 0);
	cr_assert_eq(itest_run_with(&t, stranger, "evil", "agent.log('x')", "", &reply), 0);
	cr_assert(strstr(reply, "untrusted") != NULL, "%s", reply);
	free(reply);
	mig_key_destroy(&stranger);
}

/* Sends raw frames on a DEALER (no REQ state machine) and returns the
 * reply's status frame, or "" when none came. */
static void raw(const char *const *frames, const size_t *lens, int n, char *status, size_t len)
{
	void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
	int tmo = 3000, linger = 0;
	char buf[64];

	status[0] = '\0';
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
	zmq_connect(s, t.endpoint);
	for (int i = 0; i < n; i++)
		zmq_send(s, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0);
	/* Reply: [version][status][body] (no delimiter was sent). */
	if (zmq_recv(s, buf, sizeof buf, 0) >= 0) {
		int r = zmq_recv(s, buf, sizeof buf - 1, 0);
		if (r >= 0) {
			buf[r < (int)sizeof buf - 1 ? r : (int)sizeof buf - 1] = '\0';
			snprintf(status, len, "%s", buf);
		}
	}
	zmq_close(s);
	zmq_ctx_term(ctx);
}

Test(daemon_runtime, bad_requests_get_errors_and_the_daemon_lives_on)
{
	static char deep[5000];
	const char *v1[] = { "AGD-CTL/0", "status", "{}" };
	const char *v2[] = { "AGD-CTL/1", "status" };
	const char *v3[] = { "AGD-CTL/1", "status", "{not json" };
	const char *v4[] = { "AGD-CTL/1", "nosuchcommand", "{}" };
	const char *v5[] = { "AGD-CTL/1", "run", "{\"segment\":\"!!!\"}" };
	const char *v6[] = { "AGD-CTL/1", "run", "{\"segment\":\"AAAA\"}" };
	const char *v7[] = { "AGD-CTL/1", "send", deep };
	const char *v8[] = { "AGD-CTL/1", "upload", "{\"hash\":\"00\",\"offset\":0,\"total\":1e30,\"data\":\"\"}" };
	const char *v9[] = { "AGD-CTL/1", "status", "{}", "x", "y", "z", "w", "v", "u", "t" };
	const char *const *cases[] = { v1, v2, v3, v4, v5, v6, v7, v8, v9 };
	const int counts[] = { 3, 2, 3, 3, 3, 3, 3, 3, 10 };
	char status[64], *reply = NULL;

	memset(deep, '[', sizeof deep - 1);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t lens[10];

		for (int k = 0; k < counts[i]; k++)
			lens[k] = strlen(cases[i][k]);
		raw(cases[i], lens, counts[i], status, sizeof status);
		cr_assert_str_eq(status, "error", "case %zu answered '%s'", i, status);
	}
	cr_assert_eq(itest_req(&t, NULL, "status", "{}", &reply), 1);
	free(reply);
}

Test(daemon_runtime, sigterm_stops_cleanly)
{
	int st = itest_stop(&t);

	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
}

Test(daemon_check_config, prints_the_effective_config_or_the_failing_line, .timeout = 30)
{
	char dir[64], good[128], bad[128], out[8192];
	char *argv_good[] = { (char *)tst_bin("AGENTD_BIN"), "--check-config", good, NULL };
	char *argv_bad[] = { (char *)tst_bin("AGENTD_BIN"), "--check-config", bad, NULL };
	FILE *f;

	cr_assert_eq(tst_tmpdir(dir, sizeof dir), 0);
	snprintf(good, sizeof good, "%s/good.conf", dir);
	snprintf(bad, sizeof bad, "%s/bad.conf", dir);
	f = fopen(good, "w");
	fputs("[daemon]\nhost = hx\n[agents]\nmemory_limit = 2M\n", f);
	fclose(f);
	f = fopen(bad, "w");
	fputs("[daemon]\nhost = hx\nworkerz = 3\n", f);
	fclose(f);
	cr_assert_eq(tst_run(argv_good, out, sizeof out, 10000), 0);
	cr_assert(strstr(out, "host = hx") != NULL, "%s", out);
	cr_assert(strstr(out, "memory_limit = 2097152") != NULL, "%s", out);
	cr_assert_eq(tst_run(argv_bad, out, sizeof out, 10000), 1);
	tst_rmtree(dir);
}

#ifdef ITEST_ISOLATION
/* Process isolation: a crash of an agent's process ends that agent with a
 * reason; the daemon and the other agents go on. */
Test(daemon_runtime, a_crashed_agent_process_ends_only_that_agent)
{
	char a[17], b[17], body[64], *reply = NULL, *p;
	long pid = 0;

	itest_run(&t, "victim", "agent.recv() agent.log('unreachable')", "", "", a);
	cr_assert(itest_wait_state(&t, a, "waiting", 5000));
	snprintf(body, sizeof body, "{\"agent\":\"%s\"}", a);
	cr_assert_eq(itest_req(&t, NULL, "ps", body, &reply), 1);
	p = strstr(reply, "\"pid\":");
	cr_assert_not_null(p, "%s", reply);
	pid = strtol(p + 6, NULL, 10);
	free(reply);
	cr_assert_gt(pid, 0);
	cr_assert_eq(kill((pid_t)pid, SIGSEGV), 0);
	usleep(100000);
	snprintf(body, sizeof body, "{\"agent\":\"%s\",\"msg\":\"x\"}", a);
	cr_assert_eq(itest_req(&t, NULL, "send", body, &reply), 1);
	free(reply);
	cr_assert(itest_wait_state(&t, a, "killed", 5000));
	/* "died: signal 11" normally; a sanitizer build catches the signal
	 * itself and exits ("exited with 1") or, with abort_on_error, aborts
	 * ("died: signal 6"). Either way the reason names the process's end. */
	cr_assert(itest_log_has(&t, a, "agent process died: signal") ||
		  itest_log_has(&t, a, "agent process exited with"));
	itest_run(&t, "after", "agent.log('still fine')", "", "", b);
	cr_assert(itest_wait_state(&t, b, "finished", 5000));
}
#endif

#ifdef ITEST_ISOLATION
/* Process isolation with on-demand agents: a passivated agent's process
 * goes back to a pool and the next activation uses it again, rather than
 * forking and executing a new one every time. */
static void up_on_demand(void)
{
	itest_setup(&t, "[agents]\nmemory_limit = 4M\nactivation = on-demand\npassivate_after = 1\n");
	itest_start(&t);
}

TestSuite(daemon_on_demand, .init = up_on_demand, .fini = down, .timeout = 60);

/* ps of one agent: its pid, and whether it is resident. */
static long ps_pid(const char *id, int *resident)
{
	char body[64], *reply = NULL, *p;
	long pid = -1;

	snprintf(body, sizeof body, "{\"agent\":\"%s\"}", id);
	cr_assert_eq(itest_req(&t, NULL, "ps", body, &reply), 1);
	p = strstr(reply, "\"pid\":");
	if (p != NULL)
		pid = strtol(p + 6, NULL, 10);
	*resident = strstr(reply, "\"resident\":true") != NULL;
	free(reply);
	return pid;
}

Test(daemon_on_demand, an_activation_reuses_a_pooled_process)
{
	char a[17], body[128], *reply = NULL;
	long p1, p2 = -1;
	int resident = 1;

	itest_run(&t, "napper", "while true do local m = agent.recv() agent.log('got', m) end", "", "",
		  a);
	cr_assert(itest_wait_state(&t, a, "waiting", 5000));
	p1 = ps_pid(a, &resident);
	cr_assert(resident && p1 > 0, "pid %ld resident %d", p1, resident);
	for (int i = 0; i < 100 && resident; i++) {
		usleep(50000);
		ps_pid(a, &resident);
	}
	cr_assert(!resident, "never passivated");
	snprintf(body, sizeof body, "{\"agent\":\"%s\",\"msg\":\"again\"}", a);
	cr_assert_eq(itest_req(&t, NULL, "send", body, &reply), 1, "%s", reply);
	free(reply);
	cr_assert(itest_wait_log(&t, a, "got again", 5000));
	p2 = ps_pid(a, &resident);
	cr_assert(resident, "passivated again too soon to tell");
	cr_assert_eq(p2, p1, "activation started process %ld instead of reusing %ld", p2, p1);
}
#endif

/* A segment sent in chunks with upload, then run by its hash. */
Test(daemon_runtime, upload_in_chunks_then_run_by_hash)
{
	char hash[65], body[4096], b64[2048], id[17], *reply = NULL, *p;
	size_t len = 0, half;
	char *seg = itest_segment(&t, "chunked", "function main() agent.log('uploaded ok') end", &len,
				  hash);

	half = len / 2;
	/* Out of order first: refused. */
	sodium_bin2base64(b64, sizeof b64, (const unsigned char *)seg + half, len - half,
			  sodium_base64_VARIANT_ORIGINAL);
	snprintf(body, sizeof body, "{\"hash\":\"%s\",\"offset\":%zu,\"total\":%zu,\"data\":\"%s\"}",
		 hash, half, len, b64);
	cr_assert_eq(itest_req(&t, NULL, "upload", body, &reply), 0, "%s", reply);
	free(reply);
	sodium_bin2base64(b64, sizeof b64, (const unsigned char *)seg, half,
			  sodium_base64_VARIANT_ORIGINAL);
	snprintf(body, sizeof body, "{\"hash\":\"%s\",\"offset\":0,\"total\":%zu,\"data\":\"%s\"}",
		 hash, len, b64);
	cr_assert_eq(itest_req(&t, NULL, "upload", body, &reply), 1, "%s", reply);
	free(reply);
	sodium_bin2base64(b64, sizeof b64, (const unsigned char *)seg + half, len - half,
			  sodium_base64_VARIANT_ORIGINAL);
	snprintf(body, sizeof body, "{\"hash\":\"%s\",\"offset\":%zu,\"total\":%zu,\"data\":\"%s\"}",
		 hash, half, len, b64);
	cr_assert_eq(itest_req(&t, NULL, "upload", body, &reply), 1, "%s", reply);
	cr_assert(strstr(reply, hash) != NULL, "%s", reply);
	free(reply);
	snprintf(body, sizeof body, "{\"hash\":\"%s\"}", hash);
	cr_assert_eq(itest_req(&t, NULL, "run", body, &reply), 1, "%s", reply);
	p = strstr(reply, "\"id\":\"");
	cr_assert_not_null(p);
	memcpy(id, p + 6, 16);
	id[16] = '\0';
	free(reply);
	cr_assert(itest_wait_state(&t, id, "finished", 5000));
	cr_assert(itest_log_has(&t, id, "uploaded ok"));
	free(seg);
}
