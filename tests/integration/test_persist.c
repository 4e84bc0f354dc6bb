/*
 * test_persist.c: agents outlive their lua_State and their daemon. An
 * on-demand agent is passivated to the store when idle and activated by a
 * message or its timer with its locals intact; SIGTERM persists every
 * agent and the next start resumes them; after kill -9 a restart resumes
 * each agent from its last checkpoint.
 */
#include "itest.h"
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct itest t;

static void up(void)
{
	char extra[512], path[256];
	FILE *f;

	itest_setup(&t, "[agents]\npassivate_after = 100ms\ncheckpoint_interval = 200ms\n");
	snprintf(path, sizeof path, "%s/site.txt", t.dir);
	f = fopen(path, "w");
	fputs("7", f);
	fclose(f);
	snprintf(extra, sizeof extra, "[resource site]\nkind = file\npath = %s\n", path);
	f = fopen(t.conf, "a");
	fputs(extra, f);
	fclose(f);
	itest_start(&t);
}

static void down(void)
{
	itest_teardown(&t);
}

TestSuite(daemon_persist, .init = up, .fini = down, .timeout = 90);

/* Whether ps shows the agent without a Lua state in memory. */
static int passive(const char *id)
{
	char body[64], *reply = NULL;
	int p;

	snprintf(body, sizeof body, "{\"agent\":\"%s\"}", id);
	p = itest_req(&t, NULL, "ps", body, &reply) == 1 && strstr(reply, "\"resident\":false") != NULL;
	free(reply);
	return p;
}

static int wait_passive(const char *id, int ms)
{
	for (int i = 0; i < ms; i += 20) {
		if (passive(id))
			return 1;
		usleep(20000);
	}
	return 0;
}

static void send_msg(const char *id, const char *json)
{
	char body[256], *reply = NULL;

	snprintf(body, sizeof body, "{\"agent\":\"%s\",\"msg\":%s}", id, json);
	cr_assert_eq(itest_req(&t, NULL, "send", body, &reply), 1, "%s", reply);
	free(reply);
}

static const char counter[] =
	"function main()\n"
	"  local n, seen = 0, {}\n"
	"  while true do\n"
	"    local m = agent.recv()\n"
	"    n = n + 1\n"
	"    seen[#seen + 1] = m\n"
	"    agent.log('count', n, table.concat(seen, ','))\n"
	"  end\n"
	"end\n";

Test(daemon_persist, an_idle_on_demand_agent_is_passivated_and_a_message_activates_it)
{
	char id[17];

	itest_run(&t, "counter", counter, "main", ",\"activation\":\"on-demand\"", id);
	cr_assert(wait_passive(id, 5000), "never passivated");
	send_msg(id, "\"a\"");
	cr_assert(itest_wait_log(&t, id, "count 1 a", 5000));
	cr_assert(wait_passive(id, 5000), "not passivated again");
	send_msg(id, "\"b\"");
	cr_assert(itest_wait_log(&t, id, "count 2 a,b", 5000), "locals lost across passivation");
}

Test(daemon_persist, a_timer_activates_a_passivated_sleeper)
{
	char id[17];

	itest_run(&t, "sleeper",
		  "function main() local x = {v = 41} agent.sleep(1.0) agent.log('woke', x.v + 1) "
		  "agent.recv() end", "main", ",\"activation\":\"on-demand\"", id);
	cr_assert(wait_passive(id, 3000), "sleeping on-demand agent not passivated");
	cr_assert(itest_wait_log(&t, id, "woke 42", 5000));
}

Test(daemon_persist, resident_agents_stay_in_memory)
{
	char id[17];

	itest_run(&t, "counter", counter, "main", ",\"activation\":\"resident\"", id);
	cr_assert(itest_wait_state(&t, id, "waiting", 5000));
	usleep(500000);
	cr_assert(!passive(id));
}

Test(daemon_persist, sigterm_persists_every_agent_and_the_next_start_resumes_them)
{
	char a[17], b[17], c[17];
	int st;

	itest_run(&t, "counter", counter, "main", "", a);
	itest_run(&t, "sleeper", "function main() local k = 'kept' agent.sleep(2) agent.log('after', k) "
				 "agent.recv() end", "main", "", b);
	itest_run(&t, "spinner", "function main() local i = 0 while true do i = i + 1 end end", "main",
		  "", c);
	send_msg(a, "\"x\"");
	cr_assert(itest_wait_log(&t, a, "count 1 x", 5000));
	st = itest_stop(&t);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
	itest_start(&t);
	cr_assert(itest_wait_state(&t, a, "waiting", 5000), "counter not resumed");
	send_msg(a, "\"y\"");
	cr_assert(itest_wait_log(&t, a, "count 2 x,y", 5000), "counter lost its state");
	cr_assert(itest_wait_log(&t, b, "after kept", 8000), "sleeper not resumed");
	cr_assert(itest_wait_state(&t, c, "running", 5000), "busy agent not resumed");
}

/* Agents that end as soon as they resume: a restart loads them from the
 * store while the workers already run the first ones, whose ends are
 * written to the store. Loading must not hold the store while it waits
 * for the runtime (a worker ending an agent holds the runtime and waits
 * for the store): the daemon comes up and every agent ends. Each sleeps
 * 6 s, long enough to be asleep when the daemon stops however slowly they
 * were started, and the restart comes when every sleep is over. */
Test(daemon_persist, agents_ending_as_they_resume_do_not_stall_the_restart)
{
	enum { N = 40 };
	char ids[N][17];
	struct timespec ts;
	long last;
	int st;

	for (int i = 0; i < N; i++)
		itest_run(&t, "brief", "function main() agent.sleep(6) agent.log('woke') end", "main",
			  ",\"activation\":\"resident\"", ids[i]);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	last = ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
	for (int i = 0; i < N; i++)
		cr_assert(itest_wait_state(&t, ids[i], "waiting", 5000), "agent %d not asleep", i);
	st = itest_stop(&t);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
	for (;;) { /* every sleep is over: each ends on its first slice */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (ts.tv_sec * 1000L + ts.tv_nsec / 1000000L > last + 6500)
			break;
		usleep(100000);
	}
	itest_start(&t);
	for (int i = 0; i < N; i++) {
		char now[32];

		if (!itest_wait_state(&t, ids[i], "finished", 10000)) {
			itest_state(&t, ids[i], now, sizeof now);
			cr_assert_fail("agent %d did not finish: '%s'", i, now);
		}
		cr_assert(itest_log_has(&t, ids[i], "woke"), "agent %d ended without waking", i);
	}
}

/* A second daemon started on a running one's data directory is refused
 * (the store is private to the first), says why, and the first goes on. */
Test(daemon_persist, a_second_daemon_on_the_same_data_directory_is_refused)
{
	char *argv[] = { (char *)tst_bin("AGENTD_BIN"), "--config", t.conf, NULL };
	char log[400], a[17];
	pid_t pid;
	int status = 0, exited = 0;

	itest_run(&t, "counter", counter, "main", "", a);
	snprintf(log, sizeof log, "%.300s/second.out", t.dir);
	pid = tst_proc_start(argv, log);
	cr_assert_gt(pid, 0);
	for (int i = 0; i < 300 && !exited; i++) /* 15 s: its store waits 5 s */
		if (!(exited = waitpid(pid, &status, WNOHANG) == pid))
			usleep(50000);
	if (!exited)
		tst_proc_stop(pid, 1000);
	cr_assert(exited, "the second daemon is still running");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 0, "the second daemon did not fail");
	cr_assert(tst_file_has(log, "in use by another process"), "no reason on its stderr");
	send_msg(a, "\"still\"");
	cr_assert(itest_wait_log(&t, a, "count 1 still", 5000), "the first daemon suffered");
}

Test(daemon_persist, after_kill_9_a_restart_resumes_agents_from_their_checkpoint)
{
	char a[17];
	char st[32];

	itest_run(&t, "counter", counter, "main", ",\"activation\":\"resident\"", a);
	send_msg(a, "\"p\"");
	cr_assert(itest_wait_log(&t, a, "count 1 p", 5000));
	usleep(800000); /* a few checkpoint intervals */
	itest_crash(&t);
	itest_start(&t);
	cr_assert(itest_wait_state(&t, a, "waiting", 5000));
	send_msg(a, "\"q\"");
	cr_assert(itest_wait_log(&t, a, "count 2 p,q", 5000), "checkpointed state lost");
	/* Its line can come before its slice ends (in process isolation the
	 * worker process sends it at once): waiting again, but not at once. */
	if (!itest_wait_state(&t, a, "waiting", 5000)) {
		itest_state(&t, a, st, sizeof st);
		cr_assert_fail("not waiting again after its message: '%s'", st);
	}
}

/* [logs] The log lives outside the agent's Lua state: passivation keeps
 * it, and it is stored with the state, so SIGTERM and a restart keep the
 * lines logged before (each with its host and time in "entries"). */
Test(daemon_persist, the_log_outlives_passivation_and_a_restart)
{
	char id[17], body[64], *reply = NULL;
	const char *one, *two, *again;
	int st;

	itest_run(&t, "counter", counter, "main", ",\"activation\":\"on-demand\"", id);
	send_msg(id, "\"a\"");
	cr_assert(itest_wait_log(&t, id, "count 1 a", 5000));
	cr_assert(wait_passive(id, 5000), "never passivated");
	send_msg(id, "\"b\"");
	cr_assert(itest_wait_log(&t, id, "count 2 a,b", 5000));
	cr_assert(itest_log_has(&t, id, "count 1 a"), "a line logged before passivation is gone");
	cr_assert(wait_passive(id, 5000), "not passivated again");
	st = itest_stop(&t);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
	itest_start(&t);
	cr_assert(itest_wait_log(&t, id, "resumed after restart", 5000));
	snprintf(body, sizeof body, "{\"agent\":\"%s\"}", id);
	cr_assert_eq(itest_req(&t, NULL, "logs", body, &reply), 1, "%s", reply);
	one = strstr(reply, "{\"t\":");
	cr_assert_not_null(one, "no entries: %s", reply);
	one = strstr(reply, "\"host\":\"h1\",\"text\":\"count 1 a\"");
	two = strstr(reply, "\"host\":\"h1\",\"text\":\"count 2 a,b\"");
	again = strstr(reply, "\"host\":\"h1\",\"text\":\"[state] resumed after restart\"");
	cr_assert(one && two && again && one < two && two < again,
		  "lines lost or out of order over passivation and restart: %s", reply);
	free(reply);
}

#ifndef ITEST_ISOLATION
/* A resource handle is part of the agent's state: it survives passivation
 * (through the resources library's engine hooks) and works after. */
Test(daemon_persist, a_resource_handle_survives_passivation)
{
	char id[17];

	itest_run_ex(&t, "holder",
		     "function main()\n"
		     "  local h = assert(agent.resource('site'))\n"
		     "  agent.log('before', h:read())\n"
		     "  agent.recv()\n"
		     "  agent.log('after', h:read())\n"
		     "  agent.recv()\n"
		     "end", "main", "binding = site by-type file\n", ",\"activation\":\"on-demand\"", id);
	cr_assert(itest_wait_log(&t, id, "before 7", 5000));
	cr_assert(wait_passive(id, 5000), "agent with a handle never passivated");
	send_msg(id, "\"go\"");
	if (!itest_wait_log(&t, id, "after 7", 15000)) {
		char body[64], *reply = NULL;

		/* Its log says what became of it (a [state] line with the
		 * reason). */
		snprintf(body, sizeof body, "{\"agent\":\"%s\"}", id);
		itest_req(&t, NULL, "logs", body, &reply);
		cr_assert_fail("no 'after 7' from the activated agent: %s", reply ? reply : "(no reply)");
	}
}
#endif

/* Checkpoints every 5 ms and passivation as soon as an agent waits: the
 * tick asks for checkpoints while workers are persisting agents into the
 * store. Such a request used to outlive the passivation and, when the
 * next message woke the agent, swallow the wake-up: the agent stayed
 * "running", never queued, and the message unanswered. */
static void up_busy(void)
{
	itest_setup(&t, "[agents]\npassivate_after = 0\ncheckpoint_interval = 5ms\n");
	itest_start(&t);
}

TestSuite(daemon_wake, .init = up_busy, .fini = down, .timeout = 120);

Test(daemon_wake, every_message_wakes_a_passivated_agent_while_checkpoints_run)
{
	enum { AGENTS = 6, ROUNDS = 15 };
	char ids[AGENTS][17], want[64];

	for (int i = 0; i < AGENTS; i++)
		itest_run(&t, "counter", counter, "main", ",\"activation\":\"on-demand\"", ids[i]);
	for (int r = 1; r <= ROUNDS; r++) {
		for (int i = 0; i < AGENTS; i++) {
			char msg[16];

			snprintf(msg, sizeof msg, "\"m%d\"", r);
			send_msg(ids[i], msg);
		}
		for (int i = 0; i < AGENTS; i++) {
			snprintf(want, sizeof want, "count %d ", r);
			cr_assert(itest_wait_log(&t, ids[i], want, 10000),
				  "agent %s did not answer message %d", ids[i], r);
		}
	}
}
