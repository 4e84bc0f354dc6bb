/*
 * test_migration.c: real daemons on loopback moving a real agent. A ticker
 * agent counts in a local variable and logs "tick N on HOST"; strong
 * mobility must carry N across. Then each daemon is killed (SIGKILL, via the
 * test-only AGENTD_TEST_CRASH_AT knob) at each step of the transfer and
 * restarted: afterwards the agent runs on exactly one host, and its count
 * goes on from where it was (state intact). A source stopped (SIGSTOP) in
 * the middle and resumed late must not make it run twice.
 */
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "migcluster.h"

TestSuite(migration, .init = setup, .fini = teardown, .timeout = 240);

static void run_ticker(struct host *h, char id[32])
{
	char out[256];

	cr_assert_eq(ctl(h, out, sizeof out, 10000, "run", seg, NULL, NULL, NULL), 0, "run: %s", out);
	cr_assert_geq(strlen(out), 16);
	memcpy(id, out, 16);
	id[16] = '\0';
}

/* Waits (bounded) until exactly one of a, b lists the agent and its count
 * goes on there past `before`; checks the count's continuity there. */
static struct host *settle_on_one(struct host *a, struct host *b, const char *id, int before,
				  const struct host *restarted, const char *what)
{
	long end = now_ms() + 30000;
	struct host *where = NULL;

	while (now_ms() < end) {
		int ia = lists(a, id), ib = lists(b, id);

		where = NULL;
		if (ia >= 0 && ib >= 0 && ia + ib == 1) {
			where = ia ? a : b;
			if (last_tick(where, id) > before)
				break;
		}
		usleep(100000);
	}
	cr_assert_not_null(where, "%s: the agent is not on exactly one host", what);
	/* Where its log starts afresh (it arrived there, or that daemon
	 * restarted), the count must go on, not start over at 1. */
	if (where == b || where == restarted)
		cr_assert_gt(first_tick(where, id), 1, "%s: it started over at its entry on %s: state lost",
			     what, where->name);
	check_ticks(where, id, what);
	/* And it stays that way. */
	usleep(1500000);
	cr_assert_eq(lists(a, id) + lists(b, id), 1, "%s: the agent runs on both hosts or none", what);
	cr_assert_eq(lists(where, id), 1);
	check_ticks(where, id, what);
	return where;
}

static int push(struct host *from, const char *id, const char *to, char *out, size_t len)
{
	return ctl(from, out, len, 20000, "push", id, "--to", to, NULL);
}

Test(migration, push_carries_the_running_state_across)
{
	char id[32], out[512];
	int before, first;

	start_host(&hosts[0], NULL, NULL);
	start_host(&hosts[1], NULL, NULL);
	run_ticker(&hosts[0], id);
	wait_ticks(&hosts[0], id, 5);
	/* Read before the push: afterwards the source may have let go of the
	 * agent, and agentctl logs follows it to the target. Any tick at the
	 * source is a lower bound for the first one at the target. */
	before = last_tick(&hosts[0], id);
	cr_assert_eq(push(&hosts[0], id, "h2", out, sizeof out), 0, "push: %s", out);
	cr_assert_eq(lists(&hosts[0], id), 0, "still listed at the source");
	cr_assert_eq(lists(&hosts[1], id), 1, "not listed at the target");
	wait_ticks(&hosts[1], id, before + 3);
	first = first_tick(&hosts[1], id);
	cr_assert_geq(first, before, "the count restarted (%d after %d): state lost", first, before);
	check_ticks(&hosts[1], id, "push");
}

Test(migration, three_hosts_round_trip_and_back_home)
{
	char id[32], out[512];
	int t;

	for (int i = 0; i < HOSTS; i++)
		start_host(&hosts[i], NULL, NULL);
	run_ticker(&hosts[0], id);
	wait_ticks(&hosts[0], id, 3);
	cr_assert_eq(push(&hosts[0], id, "h2", out, sizeof out), 0, "push h1->h2: %s", out);
	wait_ticks(&hosts[1], id, 6);
	t = last_tick(&hosts[1], id); /* before the push, as above */
	cr_assert_eq(push(&hosts[1], id, "h3", out, sizeof out), 0, "push h2->h3: %s", out);
	wait_ticks(&hosts[2], id, t + 3);
	cr_assert_geq(first_tick(&hosts[2], id), t, "state lost on the second hop");
	/* h3 pulls nothing; h1 pulls it home. */
	{
		char *argv[] = { (char *)ctlbin(), "--timeout", "8000", "pull", id, "--to", "h1", "--from",
				 "h3", NULL };

		cr_assert_eq(tst_run(argv, out, sizeof out, 20000), 0, "pull: %s", out);
	}
	{
		long end = now_ms() + 10000;

		while (now_ms() < end && lists(&hosts[0], id) != 1)
			usleep(50000);
	}
	cr_assert_eq(lists(&hosts[0], id), 1);
	cr_assert_eq(lists(&hosts[1], id) + lists(&hosts[2], id), 0);
}

Test(migration, a_refused_push_leaves_the_agent_running_at_the_source)
{
	char id[32], out[512];
	int t;

	start_host(&hosts[0], NULL, NULL);
	/* h2 is not running: the push times out. */
	run_ticker(&hosts[0], id);
	wait_ticks(&hosts[0], id, 3);
	cr_assert_neq(push(&hosts[0], id, "h2", out, sizeof out), 0, "push to a dead host succeeded");
	cr_assert_eq(lists(&hosts[0], id), 1);
	t = last_tick(&hosts[0], id);
	wait_ticks(&hosts[0], id, t + 3);
}

/* A pull the source accepted whose transfer then fails: the host that
 * asked stops (SIGSTOP) right after it accepts the source's offer, so the
 * source's attempt times out and the agent resumes there. Resumed, the asker learns why from the
 * source's ABORT: agentctl pull exits 4 with the reason instead of waiting
 * out its --timeout for an agent that is not coming. */
Test(migration, a_pull_whose_transfer_fails_says_why_and_the_agent_stays)
{
	char id[32], log[400];
	char *argv[] = { (char *)ctlbin(), "--timeout", "60000", "pull", id, "--to", "h2", "--from",
			 "h1", NULL };
	long end, asked;
	pid_t cli;
	int status = 0, rc = -1, exited = 0, t;

	start_host(&hosts[0], NULL, NULL);
	start_host(&hosts[1], NULL, "ACCEPT");
	run_ticker(&hosts[0], id);
	wait_ticks(&hosts[0], id, 3);
	snprintf(log, sizeof log, "%.300s/pull.out", tmp);
	cli = tst_proc_start(argv, log);
	cr_assert_gt(cli, 0);
	asked = now_ms();
	/* h1 gives up on the stopped h2 (its attempt's deadline) and says so
	 * in its log. */
	end = now_ms() + 30000;
	while (now_ms() < end && !tst_file_has(hosts[0].log, "xfer.failed"))
		usleep(50000);
	cr_assert(tst_file_has(hosts[0].log, "xfer.failed"), "h1 never gave up on the stopped h2");
	kill(hosts[1].pid, SIGCONT);
	end = now_ms() + 20000;
	while (now_ms() < end && !exited)
		if (!(exited = waitpid(cli, &status, WNOHANG) == cli))
			usleep(50000);
	if (exited && WIFEXITED(status))
		rc = WEXITSTATUS(status);
	else if (!exited)
		tst_proc_stop(cli, 1000);
	cr_assert(exited, "agentctl pull still waits, 20 s after the source gave up");
	cr_assert_eq(rc, 4, "agentctl pull gave %d, not 4 (refused)", rc);
	cr_assert(tst_file_has(log, "h1 refused to send"), "no reason in the pull's output");
	cr_assert_lt(now_ms() - asked, 45000, "the pull waited out its timeout");
	/* The agent goes on at h1, and only there. */
	cr_assert_eq(lists(&hosts[0], id), 1);
	cr_assert_eq(lists(&hosts[1], id), 0);
	t = last_tick(&hosts[0], id);
	wait_ticks(&hosts[0], id, t + 3);
	cr_assert_eq(lists(&hosts[1], id), 0);
}

/* kill -9 of one daemon at one step, restart it, check exactly once. */
/* The victim host stops at `step` of a push from h1 to h2: killed there
 * (AGENTD_TEST_CRASH_AT), or, with failed_group, because the group commit
 * that would send it fails (AGENTD_TEST_FAIL_GROUP_AT: the group is rolled
 * back and the daemon exits with status 1, nothing of the group sent).
 * Restarted, it recovers from its store, and the agent ends up on exactly
 * one host with its state intact. */
static void stop_case(int victim, const char *step, int failed_group)
{
	char id[32], out[512], what[64];
	struct host *src = &hosts[0], *dst = &hosts[1], *v = &hosts[victim];
	int before, status = 0;
	long end;

	for (int i = 0; i < 2; i++) {
		if (i == victim && failed_group)
			setenv("AGENTD_TEST_FAIL_GROUP_AT", step, 1);
		start_host(&hosts[i], i == victim && !failed_group ? step : NULL, NULL);
		unsetenv("AGENTD_TEST_FAIL_GROUP_AT");
	}
	run_ticker(src, id);
	wait_ticks(src, id, 3);
	before = last_tick(src, id);
	push(src, id, "h2", out, sizeof out); /* fails or not: the stop decides */
	end = now_ms() + 15000;
	while (now_ms() < end && waitpid(v->pid, &status, WNOHANG) == 0)
		usleep(20000);
	if (failed_group) {
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1,
			  "%s did not stop with status 1 when its group failed at %s (status %#x)", v->name,
			  step, status);
		cr_assert(tst_file_has(v->log, "store.group_failed"), "no store.group_failed in %s's log",
			  v->name);
	} else {
		cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "%s did not die at %s", v->name,
			  step);
	}
	v->pid = 0;
	start_host(v, NULL, NULL);
	snprintf(what, sizeof what, "%s of %s at %s", failed_group ? "failed group" : "kill -9", v->name, step);
	settle_on_one(src, dst, id, before, v, what);
	for (int i = 0; i < 2; i++) {
		tst_proc_stop(hosts[i].pid, 5000);
		hosts[i].pid = 0;
	}
}

static void crash_case(int victim, const char *step)
{
	stop_case(victim, step, 0);
}

Test(migration, kill_9_of_the_source_before_the_offer)
{
	crash_case(0, "OFFER");
}

Test(migration, kill_9_of_the_target_before_it_accepts)
{
	crash_case(1, "ACCEPT");
}

Test(migration, kill_9_of_the_source_before_the_transfer)
{
	crash_case(0, "TRANSFER");
}

Test(migration, kill_9_of_the_target_after_storing_before_the_ack)
{
	crash_case(1, "COMMITTED");
}

Test(migration, kill_9_of_the_source_after_the_commit_point)
{
	crash_case(0, "ACTIVATE");
}

Test(migration, kill_9_of_the_target_right_after_activation)
{
	crash_case(1, "activated");
}

/* A group commit that fails stops its daemon before anything of the group
 * leaves (docs/config.md, group_commit): at the target, the stored arrival
 * and its acknowledgement; at the source, its commit point and ACTIVATE. */
Test(migration, a_failed_group_commit_at_the_target_stops_it_and_the_agent_stays_once)
{
	stop_case(1, "COMMITTED", 1);
}

Test(migration, a_failed_group_commit_at_the_commit_point_stops_the_source_and_the_agent_stays_once)
{
	stop_case(0, "ACTIVATE", 1);
}

/* Pushes every agent of ids from its host to `to`, all at once (one
 * agentctl each): the daemons see the steps of many transfers together
 * and commit them in groups. Returns how many pushes succeeded. */
static int push_all_at_once(struct host *from, char ids[][32], int n, const char *to)
{
	pid_t pids[16];
	int ok = 0;
	long end = now_ms() + 60000;
	char log[400];

	cr_assert_leq(n, 16);
	snprintf(log, sizeof log, "%s/push-all.log", tmp);
	for (int i = 0; i < n; i++) {
		char *argv[] = { (char *)ctlbin(), "--host", from->ctl, "--timeout", "20000", "push", ids[i],
				 "--to", (char *)to, NULL };

		pids[i] = tst_proc_start(argv, log);
		cr_assert_gt(pids[i], 0);
	}
	for (int i = 0; i < n; i++) {
		int status = 0;

		while (waitpid(pids[i], &status, WNOHANG) == 0 && now_ms() < end)
			usleep(20000);
		if (now_ms() >= end) {
			tst_proc_stop(pids[i], 1000);
			continue;
		}
		ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
	}
	return ok;
}

/* The moves a host has committed as a source (`status`, "transfers"). */
static long moved_out(struct host *h)
{
	char out[8192];
	const char *p;

	if (ctl(h, out, sizeof out, 10000, "--json", "status", NULL, NULL, NULL) != 0 ||
	    (p = strstr(out, "\"moved_out\":")) == NULL)
		return -1;
	return strtol(p + 12, NULL, 10);
}

/* Twelve agents pushed back and forth, all at once, three times: group
 * commit puts the steps of different transfers in one commit and holds
 * their messages back; afterwards every agent runs on exactly one host,
 * its count unbroken, and the hosts counted each move that succeeded. */
Test(migration, agents_pushed_all_at_once_each_end_up_once_with_their_count)
{
	enum { N = 12 };
	char ids[N][32];
	struct host *h1 = &hosts[0], *h2 = &hosts[1];
	int moved = 0;

	start_host(h1, NULL, NULL);
	start_host(h2, NULL, NULL);
	for (int i = 0; i < N; i++)
		run_ticker(h1, ids[i]);
	for (int i = 0; i < N; i++)
		wait_ticks(h1, ids[i], 2);
	moved += push_all_at_once(h1, ids, N, "h2");
	moved += push_all_at_once(h2, ids, N, "h1");
	moved += push_all_at_once(h1, ids, N, "h2");
	cr_assert_gt(moved, N, "hardly any push succeeded (%d)", moved);
	for (int i = 0; i < N; i++) {
		long end = now_ms() + 10000;
		int on1 = -1, on2 = -1;
		struct host *where;

		while (now_ms() < end) {
			on1 = lists(h1, ids[i]);
			on2 = lists(h2, ids[i]);
			if (on1 >= 0 && on2 >= 0 && on1 + on2 == 1)
				break;
			usleep(100000);
		}
		cr_assert_eq(on1 + on2, 1, "agent %d runs on %d hosts", i, on1 + on2);
		where = on1 ? h1 : h2;
		wait_ticks(where, ids[i], last_tick(where, ids[i]) + 1);
		check_ticks(where, ids[i], "pushed all at once");
		cr_assert_gt(first_tick(where, ids[i]), 1, "agent %d started over on %s: state lost", i,
			     where->name);
	}
	cr_assert_eq(moved_out(h1) + moved_out(h2), moved, "the hosts counted %ld moves, agentctl saw %d",
		     moved_out(h1) + moved_out(h2), moved);
}

/* SIGSTOP on the source right after it sent TRANSFER; the target stores
 * the agent and acknowledges; SIGCONT after the source's deadline passed. */
Test(migration, a_source_stopped_mid_transfer_and_resumed_late_does_not_duplicate)
{
	char id[32], out[512];
	int before, status;
	long end;

	start_host(&hosts[0], NULL, "TRANSFER");
	start_host(&hosts[1], NULL, NULL);
	run_ticker(&hosts[0], id);
	wait_ticks(&hosts[0], id, 3);
	before = last_tick(&hosts[0], id);
	push(&hosts[0], id, "h2", out, sizeof out);
	end = now_ms() + 10000;
	while (now_ms() < end) {
		if (waitpid(hosts[0].pid, &status, WNOHANG | WUNTRACED) > 0 && WIFSTOPPED(status))
			break;
		usleep(20000);
	}
	cr_assert(WIFSTOPPED(status), "the source did not stop");
	usleep(6500000); /* past the source's 5 s deadline */
	kill(hosts[0].pid, SIGCONT);
	settle_on_one(&hosts[0], &hosts[1], id, before, NULL, "source stopped mid-transfer");
}

/* The last "total N dups D" the inbox agent logged on h. */
static int inbox_counts(struct host *h, const char *id, int *total, int *dups)
{
	char out[16384];
	char *p, *last = NULL;

	if (ctl(h, out, sizeof out, 10000, "logs", id, "--lines", "5", NULL) != 0)
		return -1;
	for (p = strstr(out, "total "); p; p = strstr(p + 6, "total "))
		last = p;
	if (last == NULL || sscanf(last, "total %d dups %d", total, dups) != 2)
		return -1;
	return 0;
}

/* Messages sent while the agent hops back and forth (through the host it
 * was last seen on, which may be the one it is leaving) all arrive, once. */
Test(migration, messages_sent_during_hops_arrive_exactly_once)
{
	char id[32], out[512], iseg[300], msg[16];
	int total = -1, dups = -1, sent = 0;
	struct host *where;
	long end;

	start_host(&hosts[0], NULL, NULL);
	start_host(&hosts[1], NULL, NULL);
	snprintf(iseg, sizeof iseg, "%.200s/inbox.seg", tmp);
	cr_assert_eq(ctl(&hosts[0], out, sizeof out, 10000, "run", iseg, NULL, NULL, NULL), 0, "run: %s", out);
	memcpy(id, out, 16);
	id[16] = '\0';
	for (int round = 0; round < 6; round++) {
		struct host *from = &hosts[round % 2];
		char *argv[] = { (char *)ctlbin(), "--host", from->ctl, "--timeout", "15000", "push", id,
				 "--to", round % 2 ? "h1" : "h2", NULL };
		pid_t mover = tst_proc_start(argv, "/dev/null");

		cr_assert_gt(mover, 0);
		/* While it moves: messages, each through the host it is
		 * leaving (held there, then sent on). */
		for (int k = 0; k < 5; k++) {
			snprintf(msg, sizeof msg, "m%d", sent++);
			cr_assert_eq(ctl(from, out, sizeof out, 20000, "--json", "send", id, msg, NULL) == 0 ||
					     ctl(&hosts[1 - round % 2], out, sizeof out, 20000, "--json", "send", id,
						 msg, NULL) == 0,
				     1, "send %s failed: %s", msg, out);
		}
		{
			int st;

			waitpid(mover, &st, 0);
		}
	}
	where = NULL;
	end = now_ms() + 15000;
	while (now_ms() < end) {
		for (int i = 0; i < 2; i++)
			if (lists(&hosts[i], id) == 1 && inbox_counts(&hosts[i], id, &total, &dups) == 0)
				where = &hosts[i];
		if (where && total == sent)
			break;
		usleep(100000);
	}
	cr_assert_not_null(where, "the inbox agent is nowhere");
	cr_assert_eq(total, sent, "%d of %d messages arrived", total, sent);
	cr_assert_eq(dups, 0, "%d messages arrived twice", dups);
}
