/*
 * test_rt.c: the agent runtime in-process (no ZeroMQ): agents are
 * user-level threads that never block one another, busy loops are
 * preempted, quotas end only the offending agent with a reason its pcall
 * cannot catch, the sandbox refuses what it must, and the life cycle ends
 * in the right state. Agents come from plain source (allow_source) so that
 * these tests need neither keys nor a store.
 */
#include "agd_config.h"
#include "agd_json.h"
#include "agd_loop.h"
#include "agd_rt.h"
#include "agd_vm.h"
#include "mig_state.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct agd_config cfg;
static struct agd_loop *loop;
static struct agd_rt *rt;

static void start(unsigned workers)
{
	agd_config_defaults(&cfg);
	cfg.data_dir[0] = '\0';
	cfg.allow_source = 1;
	cfg.workers = workers;
	cfg.memory_limit = 4u << 20;
	snprintf(cfg.trust_store, sizeof cfg.trust_store, "/nonexistent/trust");
	strcpy(cfg.host, "h1");
	loop = agd_loop_new();
	cr_assert_not_null(loop);
	cr_assert_eq(agd_rt_new(&cfg, loop, &rt), 0);
	cr_assert_eq(agd_rt_start(rt), 0);
}

static void one_worker(void) { start(1); }
static void two_workers(void) { start(2); }

static void stop(void)
{
	agd_rt_stop(rt, 0);
	agd_rt_destroy(&rt);
	agd_loop_destroy(&loop);
	agd_config_free(&cfg);
}

static void spawn(const char *src, char id[AGD_ID_LEN + 1], uint64_t instructions)
{
	struct agd_code *code = NULL;
	struct agd_run_opts o = { -1, 0, instructions, NULL, NULL, 0 };
	char err[256];

	cr_assert_eq(agd_rt_code_source(rt, "t", src, strlen(src), &code, err, sizeof err), 0, "%s", err);
	cr_assert_eq(agd_rt_spawn(rt, code, &o, id, err, sizeof err), 0, "%s", err);
	agd_code_unref(rt, &code);
}

/* The agent's state and reason, from its ps entry. */
static void state_of(const char *id, char *state, size_t n, char *reason, size_t rn)
{
	struct agd_jw w;
	struct agd_json *doc = NULL;
	const struct agd_json_val *a;
	const char *s = "", *r = "";
	char *text;
	size_t len;

	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	cr_assert_eq(agd_rt_agent_json(rt, id, &w), 0);
	agd_jw_obj_end(&w);
	text = agd_jw_take(&w, &len);
	cr_assert_eq(agd_json_parse(text, len, &doc, NULL), 0);
	a = agd_json_get(doc, agd_json_root(doc), "agent");
	agd_json_get_str(doc, a, "state", &s);
	agd_json_get_str(doc, a, "reason", &r);
	snprintf(state, n, "%s", s);
	if (reason)
		snprintf(reason, rn, "%s", r);
	agd_json_destroy(&doc);
	free(text);
}

/* Drives the dispatcher's tick until agent id is in `want`, at most ms. */
static int wait_state(const char *id, const char *want, int ms)
{
	char st[32];

	for (int t = 0; t < ms; t += 5) {
		agd_rt_tick(loop, rt);
		state_of(id, st, sizeof st, NULL, 0);
		if (strcmp(st, want) == 0)
			return 1;
		usleep(5000);
	}
	return 0;
}

static int log_has(const char *id, const char *needle)
{
	struct agd_jw w;
	char *text;
	int found;

	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	agd_rt_logs_json(rt, id, 0, &w);
	agd_jw_obj_end(&w);
	text = agd_jw_take(&w, NULL);
	found = strstr(text, needle) != NULL;
	free(text);
	return found;
}

TestSuite(agd_rt_one, .init = one_worker, .fini = stop, .timeout = 60);
TestSuite(agd_rt_two, .init = two_workers, .fini = stop, .timeout = 60);

Test(agd_rt_one, a_sleeping_agent_does_not_block_another)
{
	char a[AGD_ID_LEN + 1], b[AGD_ID_LEN + 1];

	spawn("agent.sleep(30) agent.log('woke')", a, 0);
	spawn("local n = 0 for i = 1, 1000 do n = n + i end agent.log('sum', n)", b, 0);
	cr_assert(wait_state(b, "finished", 5000), "the second agent never finished");
	cr_assert(log_has(b, "sum 500500"));
	cr_assert(wait_state(a, "waiting", 1000));
	cr_assert(!log_has(a, "woke"));
}

Test(agd_rt_one, a_busy_loop_is_preempted_and_others_run)
{
	char a[AGD_ID_LEN + 1], b[AGD_ID_LEN + 1];
	char st[32];

	spawn("while true do end", a, 0);
	spawn("agent.log('ran')", b, 0);
	cr_assert(wait_state(b, "finished", 5000), "one worker, a busy loop, and the other agent starved");
	state_of(a, st, sizeof st, NULL, 0);
	cr_assert_str_eq(st, "running");
	cr_assert_eq(agd_rt_kill(rt, a, "test over"), 0);
	cr_assert(wait_state(a, "killed", 5000));
}

Test(agd_rt_one, busy_agents_share_one_worker_fairly)
{
	char ids[3][AGD_ID_LEN + 1];

	/* Each counts its own slices by noticing time pass; instead, each
	 * runs the same amount of work: with a FIFO queue and equal slices,
	 * all three finish, in any order, while none starves. */
	for (int i = 0; i < 3; i++)
		spawn("local x = 0 for i = 1, 3000000 do x = x + 1 end agent.log('done', x)", ids[i], 0);
	for (int i = 0; i < 3; i++)
		cr_assert(wait_state(ids[i], "finished", 30000));
	for (int i = 0; i < 3; i++)
		cr_assert(log_has(ids[i], "done 3000000"));
}

Test(agd_rt_one, the_run_queue_is_fifo_so_busy_agents_get_equal_slices)
{
	char ids[3][AGD_ID_LEN + 1];
	uint64_t s0[3], sw[3], d[3], lo, hi;

	for (int i = 0; i < 3; i++)
		spawn("while true do end", ids[i], 0);
	/* The first ones ran alone while the others were being made: count
	 * from a moment when all three are in the queue. */
	for (int t = 0; t < 2000; t++) {
		int all = 1;

		for (int i = 0; i < 3; i++) {
			agd_rt_agent_state(rt, ids[i], NULL, &s0[i], NULL);
			all &= s0[i] > 0;
		}
		if (all)
			break;
		usleep(1000);
	}
	for (int t = 0; t < 2000; t++) {
		uint64_t least = UINT64_MAX;

		for (int i = 0; i < 3; i++) {
			agd_rt_agent_state(rt, ids[i], NULL, &sw[i], NULL);
			if (sw[i] - s0[i] < least)
				least = sw[i] - s0[i];
		}
		if (least >= 200)
			break;
		usleep(5000);
	}
	for (int i = 0; i < 3; i++) {
		agd_rt_agent_state(rt, ids[i], NULL, &sw[i], NULL);
		d[i] = sw[i] - s0[i];
	}
	lo = hi = d[0];
	for (int i = 1; i < 3; i++) {
		lo = d[i] < lo ? d[i] : lo;
		hi = d[i] > hi ? d[i] : hi;
	}
	cr_assert_geq(lo, 200, "an agent starved: %llu slices", (unsigned long long)lo);
	/* Round robin: one worker takes them in turn, so their counts differ
	 * only by the slices run while we read them one after another. */
	cr_assert_leq(hi - lo, 6, "unfair: %llu %llu %llu", (unsigned long long)d[0],
		      (unsigned long long)d[1], (unsigned long long)d[2]);
	for (int i = 0; i < 3; i++)
		agd_rt_kill(rt, ids[i], "test over");
	for (int i = 0; i < 3; i++)
		cr_assert(wait_state(ids[i], "killed", 5000));
}

Test(agd_rt_two, memory_quota_kills_only_that_agent_and_pcall_cannot_catch_it)
{
	char a[AGD_ID_LEN + 1], b[AGD_ID_LEN + 1];
	char st[32], reason[128];

	spawn("local t = {} while true do pcall(function() for i = 1, 1e6 do t[#t + 1] = "
	      "string.rep('x', 64) .. i end end) end", a, 0);
	spawn("agent.sleep(0.05) agent.log('alive')", b, 0);
	cr_assert(wait_state(a, "killed", 20000));
	state_of(a, st, sizeof st, reason, sizeof reason);
	cr_assert(strstr(reason, "memory quota") != NULL, "reason: %s", reason);
	cr_assert(wait_state(b, "finished", 5000));
	cr_assert(log_has(b, "alive"));
}

Test(agd_rt_two, instruction_quota_kills_with_a_reason_through_pcall)
{
	char a[AGD_ID_LEN + 1];
	char st[32], reason[128];

	spawn("while true do pcall(function() while true do end end) end", a, 2000000);
	cr_assert(wait_state(a, "killed", 20000));
	state_of(a, st, sizeof st, reason, sizeof reason);
	cr_assert(strstr(reason, "instruction quota") != NULL, "reason: %s", reason);
}

Test(agd_rt_two, sandbox_refuses_libraries_files_and_bytecode)
{
	char a[AGD_ID_LEN + 1];
	const char *src =
		"assert(io == nil and os == nil and debug == nil and package == nil)\n"
		"assert(require == nil and dofile == nil and loadfile == nil)\n"
		"assert(string.dump == nil)\n"
		"local f, e = load('\\27Lua', 'x', 'b')\n"
		"assert(f == nil, 'binary chunk accepted')\n"
		"assert(load('return 1 + 1')() == 2)\n"
		"assert(type(agent.id()) == 'string' and agent.host() == 'h1')\n"
		"agent.log('sandbox ok')\n";

	spawn(src, a, 0);
	cr_assert(wait_state(a, "finished", 5000), "agent failed: a sandbox check did not hold");
	cr_assert(log_has(a, "sandbox ok"));
}

Test(agd_rt_two, blocking_inside_a_nested_coroutine_is_a_clear_error)
{
	char a[AGD_ID_LEN + 1];

	spawn("local ok, e = pcall(coroutine.wrap(function() agent.sleep(0) end))\n"
	      "agent.log(tostring(ok), e)", a, 0);
	cr_assert(wait_state(a, "finished", 5000));
	cr_assert(log_has(a, "cannot block inside a nested coroutine"));
}

Test(agd_rt_two, an_error_fails_the_agent_with_its_message)
{
	char a[AGD_ID_LEN + 1];
	char st[32], reason[256];

	spawn("error('boom')", a, 0);
	cr_assert(wait_state(a, "failed", 5000));
	state_of(a, st, sizeof st, reason, sizeof reason);
	cr_assert(strstr(reason, "boom") != NULL, "reason: %s", reason);
	cr_assert(log_has(a, "[state] running -> failed"));
}

Test(agd_rt_two, recv_times_out_and_messages_arrive)
{
	char a[AGD_ID_LEN + 1], b[AGD_ID_LEN + 1];
	char src[256];

	spawn("agent.log('timeout', tostring(agent.recv(0.05)))\n"
	      "local m = agent.recv() agent.log('got', m)", a, 0);
	/* The tick (the dispatcher's part) must run for the timeout to fire. */
	for (int i = 0; i < 1000 && !log_has(a, "timeout nil"); i++) {
		agd_rt_tick(loop, rt);
		usleep(5000);
	}
	cr_assert(log_has(a, "timeout nil"));
	cr_assert(wait_state(a, "waiting", 5000));
	snprintf(src, sizeof src, "assert(agent.send('%s', 'hello'))", a);
	spawn(src, b, 0);
	cr_assert(wait_state(b, "finished", 5000));
	cr_assert(wait_state(a, "finished", 5000));
	cr_assert(log_has(a, "timeout nil"));
	cr_assert(log_has(a, "got hello"));
}

Test(agd_rt_two, kill_ends_a_waiting_agent_and_not_twice)
{
	char a[AGD_ID_LEN + 1];

	spawn("agent.recv()", a, 0);
	cr_assert(wait_state(a, "waiting", 5000));
	cr_assert_eq(agd_rt_kill(rt, a, "by test"), 0);
	cr_assert(wait_state(a, "killed", 5000));
	cr_assert_eq(agd_rt_kill(rt, a, "again"), AGD_ERR_STATE);
	cr_assert_eq(agd_rt_kill(rt, "0000000000000000", "x"), AGD_ERR_NOTFOUND);
	cr_assert(agd_rt_send(rt, "", a, "x", 1) == AGD_ERR_STATE);
}

/* ---- the migration seam: suspend, release, forget, admit ---- */

struct captured {
	int called;
	int rc;
	uint8_t *state;
	size_t len;
	struct agd_code *code;
};

static void on_suspended(void *ud, const char *id, int rc, const uint8_t *state, size_t len,
			 struct agd_code *code)
{
	struct captured *c = ud;

	(void)id;
	c->rc = rc;
	if (rc == 0 && state != NULL) {
		c->state = malloc(len);
		memcpy(c->state, state, len);
		c->len = len;
	}
	c->code = code;
	__atomic_store_n(&c->called, 1, __ATOMIC_SEQ_CST);
}

/* Sends a string message as the control channel would. */
static void send_text(const char *id, const char *text)
{
	char json[128];
	struct agd_json *doc = NULL;
	struct mig_buf b = { 0 };
	char err[128];

	snprintf(json, sizeof json, "\"%s\"", text);
	cr_assert_eq(agd_json_parse(json, strlen(json), &doc, NULL), 0);
	cr_assert_eq(agd_msg_from_json(doc, agd_json_root(doc), &b, err, sizeof err), 0, "%s", err);
	cr_assert_eq(agd_rt_send(rt, "", id, b.data, b.len), 0);
	agd_buf_free(&b);
	agd_json_destroy(&doc);
}

static void wait_called(struct captured *c)
{
	for (int i = 0; i < 1000 && !__atomic_load_n(&c->called, __ATOMIC_SEQ_CST); i++) {
		agd_rt_tick(loop, rt);
		usleep(5000);
	}
	cr_assert(c->called, "suspend callback never ran");
}

Test(agd_rt_two, a_suspended_waiting_agent_released_waits_again_and_keeps_its_state)
{
	char a[AGD_ID_LEN + 1];
	struct captured c = { 0 };

	spawn("local n = 41 local m = agent.recv() agent.log('got', m, n + 1)", a, 0);
	cr_assert(wait_state(a, "waiting", 5000));
	cr_assert_eq(agd_rt_suspend(rt, a, on_suspended, &c), 0);
	wait_called(&c);
	cr_assert_eq(c.rc, 0);
	cr_assert_gt(c.len, 0);
	cr_assert(wait_state(a, "migrating", 2000));
	cr_assert_eq(agd_rt_release(rt, a), 0);
	/* No spurious wake-up: still waiting for its message. */
	cr_assert(wait_state(a, "waiting", 2000));
	cr_assert(!log_has(a, "got"));
	send_text(a, "yo");
	cr_assert(wait_state(a, "finished", 5000));
	cr_assert(log_has(a, "got yo 42"));
	free(c.state);
}

Test(agd_rt_two, a_suspended_agent_admitted_elsewhere_resumes_its_wait_and_the_source_forgets_it)
{
	char a[AGD_ID_LEN + 1], b[AGD_ID_LEN + 1];
	struct captured c = { 0 };
	struct agd_admit in;
	char err[256];
	enum agd_state st;

	spawn("local n = 41 local m = agent.recv() agent.log('got', m, n + 1)", a, 0);
	cr_assert(wait_state(a, "waiting", 5000));
	cr_assert_eq(agd_rt_suspend(rt, a, on_suspended, &c), 0);
	wait_called(&c);
	cr_assert_eq(c.rc, 0);
	/* "Elsewhere": the same runtime under another id, as a target would. */
	memcpy(b, a, sizeof b);
	b[0] = b[0] == 'f' ? '0' : 'f';
	memset(&in, 0, sizeof in);
	in.id = b;
	in.home = "h1";
	in.epoch = 1;
	in.activation = AGD_ACTIVATION_RESIDENT;
	in.state = c.state;
	in.state_len = c.len;
	cr_assert_eq(agd_rt_admit(rt, &in, c.code, err, sizeof err), 0, "%s", err);
	cr_assert_eq(agd_rt_forget(rt, a, "h2"), 0);
	cr_assert_eq(agd_rt_agent_state(rt, a, &st, NULL, NULL), AGD_ERR_NOTFOUND);
	cr_assert(wait_state(b, "waiting", 5000), "admitted agent did not go back to its recv");
	cr_assert(!log_has(b, "got"));
	send_text(b, "hi");
	cr_assert(wait_state(b, "finished", 5000));
	cr_assert(log_has(b, "got hi 42"), "state lost in the move");
	free(c.state);
}
