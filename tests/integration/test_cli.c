/*
 * test_cli.c: agentctl against real daemons. A three-host cluster on
 * loopback (scripts/cluster) per test; agents signed with the cluster's
 * author key; every command's exit code and output checked, including the
 * errors a user meets: an unreachable host, an untrusted key, an unknown
 * agent.
 */
#include "test_cli_support.h"
#include "itest.h"

#include <sys/stat.h>
#include <sys/wait.h>

static void setup(void)
{
	clu_start(3);
}

TestSuite(cli, .init = setup, .fini = clu_stop, .timeout = 120);

Test(cli, status_all_asks_every_host_and_each_answers_with_its_name)
{
	struct agd_json *doc;
	const struct agd_json_val *hosts, *h, *st;
	int i = 1;

	cr_assert_eq(ctl("--json", "status", "--all", NULL), 0, "%s", clu_out);
	doc = clu_json();
	hosts = agd_json_get(doc, agd_json_root(doc), "hosts");
	cr_assert_not_null(hosts);
	cr_assert_eq(hosts->count, 3);
	for (h = agd_json_first(doc, hosts); h != NULL; h = agd_json_next(doc, h), i++) {
		const char *name = NULL, *reported = NULL;
		char want[16];

		snprintf(want, sizeof want, "h%d", i);
		cr_assert_eq(agd_json_get_str(doc, h, "name", &name), 0);
		cr_assert_str_eq(name, want);
		st = agd_json_get(doc, h, "status");
		cr_assert_not_null(st, "no status from %s", name);
		cr_assert_eq(agd_json_get_str(doc, st, "host", &reported), 0);
		cr_assert_str_eq(reported, want, "the daemon behind %s calls itself %s", name, reported);
	}
	agd_json_destroy(&doc);
}

Test(cli, a_stopped_host_is_reported_down_with_exit_3_and_the_others_still_listed)
{
	struct agd_json *doc;
	const struct agd_json_val *hosts, *h;
	int up[3] = { -1, -1, -1 }, i = 0;
	pid_t pid = clu_pid(3);

	cr_assert_eq(kill(pid, SIGTERM), 0);
	for (int t = 0; t < 100 && kill(pid, 0) == 0; t++)
		usleep(100000);
	cr_assert_neq(kill(pid, 0), 0, "h3 did not stop");
	cr_assert_eq(ctl("--json", "--timeout", "1000", "status", "--all", NULL), 3);
	doc = clu_json();
	hosts = agd_json_get(doc, agd_json_root(doc), "hosts");
	for (h = agd_json_first(doc, hosts); h != NULL && i < 3; h = agd_json_next(doc, h), i++)
		cr_assert_eq(agd_json_get_bool(doc, h, "up", &up[i]), 0);
	cr_assert_eq(up[0], 1);
	cr_assert_eq(up[1], 1);
	cr_assert_eq(up[2], 0);
	agd_json_destroy(&doc);
	cr_assert_eq(ctl("--host", "h3", "--timeout", "500", "ps", NULL), 3);
}

Test(cli, hello_runs_where_asked_and_is_found_by_ps_logs_send_and_kill)
{
	const char *seg = clu_sign("hello");
	char id[64];
	struct agd_json *doc;
	const struct agd_json_val *agents, *a;
	int seen = 0;

	snprintf(id, sizeof id, "%s", clu_run(seg, "h2", NULL));
	cr_assert_eq(strspn(id, "0123456789abcdef"), strlen(id), "id %s", id);

	/* ps --all finds it on h2, with the documented columns. */
	cr_assert_eq(ctl("--json", "ps", "--all", NULL), 0, "%s", clu_out);
	doc = clu_json();
	agents = agd_json_get(doc, agd_json_root(doc), "agents");
	cr_assert_not_null(agents);
	for (a = agd_json_first(doc, agents); a != NULL; a = agd_json_next(doc, a)) {
		const char *aid = NULL, *host = NULL, *state = NULL;
		long long epoch = -1;
		double mem = -1;

		agd_json_get_str(doc, a, "id", &aid);
		if (aid == NULL || strcmp(aid, id) != 0)
			continue;
		seen++;
		cr_assert_eq(agd_json_get_str(doc, a, "host", &host), 0);
		cr_assert_str_eq(host, "h2");
		cr_assert_eq(agd_json_get_str(doc, a, "state", &state), 0);
		cr_assert_eq(agd_json_get_int(doc, a, "epoch", &epoch), 0);
		cr_assert_eq(agd_json_get_num(doc, a, "memory", &mem), 0);
	}
	agd_json_destroy(&doc);
	cr_assert_eq(seen, 1, "agent %s listed %d times: %s", id, seen, clu_out);

	/* logs without --host: agentctl finds the host itself. */
	cr_assert(clu_logs_wait(id, "hello from h2", 5000), "logs: %s", clu_out);
	cr_assert_eq(ctl("send", id, "hi there", NULL), 0, "%s", clu_out);
	cr_assert(clu_logs_wait(id, "got hi there on h2", 5000), "logs: %s", clu_out);

	cr_assert_eq(ctl("kill", id, NULL), 0, "%s", clu_out);
	cr_assert(strstr(clu_out, "killed") != NULL);
	/* Gone from the live list, but its logs remain. */
	cr_assert_eq(ctl("ps", "--all", NULL), 0);
	cr_assert(strstr(clu_out, id) == NULL, "still listed: %s", clu_out);
	cr_assert_eq(ctl("ps", "--all", "--ended", NULL), 0);
	cr_assert(strstr(clu_out, id) != NULL, "ended agent not listed with --ended: %s", clu_out);
	cr_assert(clu_logs_wait(id, "killed", 3000), "logs: %s", clu_out);
}

Test(cli, an_agent_signed_by_an_unknown_key_is_refused_with_exit_6)
{
	char prefix[400], key[420], seg[420], dir[512];

	snprintf(prefix, sizeof prefix, "%s/mallory", clu_dir);
	snprintf(key, sizeof key, "%s.key", prefix);
	snprintf(seg, sizeof seg, "%s/evil.seg", clu_dir);
	cr_assert_eq(ctl("keygen", "-o", prefix, "--name", "mallory", NULL), 0);
	cr_assert_eq(ctl("sign", clu_src("agents/hello", dir, sizeof dir), "-k", key, "-o", seg, NULL), 0);
	cr_assert_eq(ctl("--host", "h1", "run", seg, NULL), 6, "%s", clu_out);
	cr_assert_eq(ctl("--host", "h1", "--json", "run", seg, NULL), 6);
	cr_assert(strstr(clu_out, "\"error\"") != NULL, "json error: %s", clu_out);
}

Test(cli, a_tampered_segment_is_refused_before_it_is_sent)
{
	const char *seg = clu_sign("hello");
	FILE *f = fopen(seg, "r+b");
	int c;

	cr_assert_not_null(f);
	/* Flip one bit of the signature, the file's last byte: the segment
	 * still decodes, and only the signature check can tell. */
	fseek(f, -1, SEEK_END);
	c = fgetc(f);
	fseek(f, -1, SEEK_END);
	fputc(c ^ 0x01, f);
	fclose(f);
	cr_assert_eq(ctl("--host", "h1", "run", seg, NULL), 6);
}

Test(cli, a_segment_directory_runs_with_key_signed_in_memory)
{
	char dir[512], key[400];

	snprintf(key, sizeof key, "%s/author.key", clu_dir);
	cr_assert_eq(ctl("--host", "h1", "run", clu_src("agents/hello", dir, sizeof dir), "--key", key,
			 NULL),
		     0, "%s", clu_out);
	cr_assert_eq(strspn(clu_out, "0123456789abcdef"), 16, "id: %s", clu_out);
}

/* Makes agent directory clu_dir/<name> with a manifest (entry main.lua
 * main, the mobility given) and returns main.lua opened for writing. */
static FILE *agent_dir(const char *name, const char *mobility, char *sdir, size_t len)
{
	char path[600];
	FILE *f;

	snprintf(sdir, len, "%s/%s", clu_dir, name);
	cr_assert_eq(mkdir(sdir, 0755), 0);
	snprintf(path, sizeof path, "%s/manifest", sdir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f, "agentd-manifest 1\nname = %s\nversion = 1\nentry = main.lua main\n"
		   "mobility = %s\nfile = main.lua\n", name, mobility);
	fclose(f);
	snprintf(path, sizeof path, "%s/main.lua", sdir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	return f;
}

Test(cli, a_large_segment_is_uploaded_in_chunks_then_run)
{
	char sdir[400], key[400], seg[420];
	FILE *f;
	const char *id;

	/* A 3 MiB source file (a long comment): over the 1 MiB inline limit. */
	f = agent_dir("big", "weak", sdir, sizeof sdir);
	for (int i = 0; i < 3 * 1024; i++) {
		fputs("-- ", f);
		for (int k = 0; k < 1020; k++)
			fputc('a' + (i + k) % 26, f);
		fputc('\n', f);
	}
	fputs("function main() agent.log('big agent ran') end\n", f);
	fclose(f);
	snprintf(key, sizeof key, "%s/author.key", clu_dir);
	snprintf(seg, sizeof seg, "%s/big.seg", clu_dir);
	cr_assert_eq(ctl("sign", sdir, "-k", key, "-o", seg, NULL), 0);
	id = clu_run(seg, "h1", NULL);
	cr_assert(clu_logs_wait(id, "big agent ran", 10000), "logs: %s", clu_out);
}

Test(cli, unknown_agents_and_hosts_have_their_own_exit_codes)
{
	cr_assert_eq(ctl("kill", "0123456789abcdef", NULL), 5, "%s", clu_out);
	cr_assert_eq(ctl("--host", "h1", "logs", "0123456789abcdef", NULL), 5);
	cr_assert_eq(ctl("--host", "nosuchhost", "status", NULL), 5);
	cr_assert_eq(ctl("--json", "kill", "0123456789abcdef", NULL), 5);
	cr_assert(strstr(clu_out, "\"exit\":5") != NULL, "%s", clu_out);
}

/* The epoch and host ps --all gives for one agent (host "" when absent). */
static long long where_is(const char *id, char *host, size_t len)
{
	struct agd_json *doc;
	const struct agd_json_val *agents, *a;
	long long epoch = -1;

	host[0] = '\0';
	cr_assert_eq(ctl("--json", "ps", "--all", NULL), 0, "%s", clu_out);
	doc = clu_json();
	agents = agd_json_get(doc, agd_json_root(doc), "agents");
	for (a = agents ? agd_json_first(doc, agents) : NULL; a != NULL; a = agd_json_next(doc, a)) {
		const char *aid = NULL, *h = NULL;

		if (agd_json_get_str(doc, a, "id", &aid) != 0 || strcmp(aid, id) != 0)
			continue;
		agd_json_get_str(doc, a, "host", &h);
		agd_json_get_int(doc, a, "epoch", &epoch);
		snprintf(host, len, "%s", h ? h : "");
	}
	agd_json_destroy(&doc);
	return epoch;
}

Test(cli, push_pull_and_clone_move_an_agent_between_hosts_from_outside)
{
	char id[64], host[64], clone_id[64];
	const char *p;

	snprintf(id, sizeof id, "%s", clu_run(clu_sign("hello"), "h1", NULL));
	cr_assert(clu_logs_wait(id, "hello from h1", 5000), "%s", clu_out);

	/* push: h1 sends it to h2; weak, so it greets again from h2. */
	cr_assert_eq(ctl("push", id, "--to", "h2", "--weak", NULL), 0, "push: %s", clu_out);
	cr_assert(strstr(clu_out, "h1 -> h2") != NULL, "%s", clu_out);
	cr_assert_eq(where_is(id, host, sizeof host), 1, "epoch after one move");
	cr_assert_str_eq(host, "h2");
	cr_assert(clu_logs_wait(id, "hello from h2", 10000), "%s", clu_out);
	/* The daemons' location service agrees: every host asked at once,
	 * and the agent's home (h1, which left a pointer) on its own. */
	cr_assert_eq(ctl("locate", id, NULL), 0, "locate: %s", clu_out);
	cr_assert(strstr(clu_out, "is on h2 (epoch 1)") != NULL, "%s", clu_out);
	cr_assert_eq(ctl("--host", "h1", "locate", id, NULL), 0, "locate via h1: %s", clu_out);
	cr_assert(strstr(clu_out, "is on h2") != NULL, "%s", clu_out);
	/* Asked by name of the host it left, agentctl follows it to h2. */
	cr_assert_eq(ctl("--host", "h1", "logs", id, NULL), 0, "logs via h1: %s", clu_out);
	cr_assert(strstr(clu_out, "hello from h2") != NULL, "%s", clu_out);

	/* pull: h3 fetches it from wherever it is. */
	cr_assert_eq(ctl("pull", id, "--to", "h3", "--weak", NULL), 0, "pull: %s", clu_out);
	for (int t = 0; t < 100; t++) {
		if (where_is(id, host, sizeof host) >= 0 && strcmp(host, "h3") == 0)
			break;
		usleep(100000);
	}
	cr_assert_str_eq(host, "h3", "pulled agent not on h3");
	cr_assert(clu_logs_wait(id, "hello from h3", 10000), "%s", clu_out);

	/* clone: a copy on h1 under a new id; the output names it. */
	cr_assert_eq(ctl("clone", id, "--to", "h1", "--weak", NULL), 0, "clone: %s", clu_out);
	p = strstr(clu_out, " as ");
	cr_assert_not_null(p, "%s", clu_out);
	snprintf(clone_id, sizeof clone_id, "%.16s", p + 4);
	cr_assert_str_neq(clone_id, id);
	cr_assert(clu_logs_wait(clone_id, "hello from h1", 10000), "clone did not start on h1: %s",
		  clu_out);

	/* Moving it to where it is already is a usage error, said plainly. */
	cr_assert_eq(ctl("push", clone_id, "--to", "h1", NULL), 2);
}

/* hello's manifest allows weak mobility only. An explicit strong move is
 * refused with the reason; a move without a mode goes the way the manifest
 * allows (it greets again on the target); so does a pull, which asks for
 * strong by default without knowing the agent. */
Test(cli, the_manifest_decides_how_an_agent_may_move)
{
	char id[64], host[64];

	snprintf(id, sizeof id, "%s", clu_run(clu_sign("hello"), "h1", NULL));
	cr_assert(clu_logs_wait(id, "hello from h1", 5000), "%s", clu_out);
	cr_assert_neq(ctl("--json", "push", id, "--to", "h2", "--strong", NULL), 0, "%s", clu_out);
	cr_assert(strstr(clu_out, "only weak") != NULL, "%s", clu_out);
	cr_assert_eq(where_is(id, host, sizeof host), 0, "a refused move changes no epoch");
	cr_assert_eq(ctl("push", id, "--to", "h2", NULL), 0, "push: %s", clu_out);
	cr_assert(clu_logs_wait(id, "hello from h2", 10000), "not restarted on h2: %s", clu_out);
	cr_assert_eq(ctl("pull", id, "--to", "h3", NULL), 0, "pull: %s", clu_out);
	cr_assert(clu_logs_wait(id, "hello from h3", 10000), "not restarted on h3: %s", clu_out);
}

Test(cli, policy_shows_the_hosts_table_as_text_and_json)
{
	struct agd_json *doc;
	const struct agd_json_val *cells;
	const char *host = NULL;

	cr_assert_eq(ctl("--host", "h2", "policy", NULL), 0, "%s", clu_out);
	cr_assert(strstr(clu_out, "identifier") && strstr(clu_out, "unattached") &&
		  strstr(clu_out, "RB GR CP"), "%s", clu_out);
	cr_assert_eq(ctl("--host", "h2", "--json", "policy", NULL), 0, "%s", clu_out);
	doc = clu_json();
	cr_assert_eq(agd_json_get_str(doc, agd_json_root(doc), "host", &host), 0);
	cr_assert_str_eq(host, "h2");
	cells = agd_json_get(doc, agd_json_root(doc), "cells");
	cr_assert_not_null(cells);
	cr_assert_eq(cells->count, 9, "three bindings by three attachments");
	agd_json_destroy(&doc);
}

Test(cli, bindings_show_the_action_chosen_for_each_binding_at_each_hop)
{
	char mover[64], tour[64];

	snprintf(mover, sizeof mover, "%s", clu_run(clu_sign("mover"), "h1", "{\"linger\":60}"));
	snprintf(tour, sizeof tour, "%s", clu_run(clu_sign("tour"), "h1", "{\"linger\":60}"));
	/* Both try to hop by themselves first; wait until they are settled. */
	cr_assert(clu_logs_wait(mover, "notes now", 20000), "%s", clu_out);
	cr_assert(clu_logs_wait(tour, "result:", 20000), "%s", clu_out);

	cr_assert_eq(ctl("push", mover, "--to", "h2", "--strong", NULL), 0, "%s", clu_out);
	cr_assert_eq(ctl("bindings", mover, NULL), 0, "%s", clu_out);
	/* A by-identifier file, unattached: moved with the agent. */
	cr_assert(strstr(clu_out, "notes@h2") != NULL, "%s", clu_out);
	cr_assert(strstr(clu_out, "h1->h2 notes: action=MV") != NULL, "%s", clu_out);

	cr_assert_eq(ctl("push", tour, "--to", "h3", "--strong", NULL), 0, "%s", clu_out);
	cr_assert_eq(ctl("bindings", tour, NULL), 0, "%s", clu_out);
	/* By type: re-bound to h3's own file resource. */
	cr_assert(strstr(clu_out, "site@h3") != NULL, "%s", clu_out);
	cr_assert(strstr(clu_out, "h1->h3 probe: action=RB") != NULL, "%s", clu_out);
	cr_assert_eq(ctl("--json", "bindings", tour, NULL), 0);
	cr_assert(strstr(clu_out, "\"agents\"") != NULL, "%s", clu_out);
}

/* Host hN's control endpoint, from the cluster file. */
static void ctl_endpoint(int host, char *buf, size_t len)
{
	char line[600], name[16], want[16];
	FILE *f = fopen(clu_file, "r");

	cr_assert_not_null(f);
	snprintf(want, sizeof want, "h%d", host);
	buf[0] = '\0';
	while (fgets(line, sizeof line, f) != NULL) {
		char ep[512];

		if (sscanf(line, "%15s %511s", name, ep) == 2 && strcmp(name, want) == 0)
			snprintf(buf, len, "%s", ep);
	}
	fclose(f);
	cr_assert(buf[0] != '\0', "no %s in the cluster file", want);
}

/* Waits for process pid to exit by itself, up to ms; its exit code, or -1. */
static int wait_exit(pid_t pid, int ms)
{
	int status;

	for (int t = 0; t < ms; t += 50) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		usleep(50000);
	}
	return -1;
}

/* A strong agent holding 6 MiB is pushed to a host that is stopped for a
 * while: the source lists the move in `transfers` (phase, bytes, elapsed),
 * and agentctl draws a progress line from it (forced with
 * AGENTCTL_PROGRESS=1, since stderr is a file here); once the target runs
 * again the push completes and the agent lives on there with its data. */
Test(cli, a_slow_push_is_listed_by_transfers_and_shown_as_progress)
{
	char sdir[400], path[450], key[400], seg[420], ep1[512], body[128], log[450];
	char *argv[16], *reply = NULL;
	const char *id_p;
	char id[64];
	pid_t h2 = clu_pid(2), pusher;
	int listed = 0, n = 0, rc;
	FILE *f;

	f = agent_dir("heavy", "strong", sdir, sizeof sdir);
	fputs("function main()\n"
	      "  local big = string.rep('0123456789abcdef', 6 * 65536)\n"
	      "  agent.log('heavy ready on ' .. agent.host())\n"
	      "  while true do\n"
	      "    agent.sleep(0.05)\n"
	      "    if agent.host() ~= 'h1' then agent.log('heavy on ' .. agent.host() .. ' #' .. #big) "
	      "agent.sleep(3600) end\n"
	      "  end\n"
	      "end\n",
	      f);
	fclose(f);
	snprintf(key, sizeof key, "%s/author.key", clu_dir);
	snprintf(seg, sizeof seg, "%s/heavy.seg", clu_dir);
	cr_assert_eq(ctl("sign", sdir, "-k", key, "-o", seg, NULL), 0, "%s", clu_out);
	id_p = clu_run(seg, "h1", NULL);
	snprintf(id, sizeof id, "%s", id_p);
	cr_assert(clu_logs_wait(id, "heavy ready on h1", 10000), "%s", clu_out);
	ctl_endpoint(1, ep1, sizeof ep1);

	cr_assert_eq(kill(h2, SIGSTOP), 0);
	snprintf(log, sizeof log, "%s/push.log", clu_dir);
	argv[n++] = (char *)tst_bin("AGENTCTL_BIN");
	argv[n++] = "--cluster";
	argv[n++] = clu_file;
	argv[n++] = "--timeout";
	argv[n++] = "30000";
	argv[n++] = "push";
	argv[n++] = id;
	argv[n++] = "--to";
	argv[n++] = "h2";
	argv[n++] = "--from"; /* finding it would ask the stopped h2 too */
	argv[n++] = "h1";
	argv[n] = NULL;
	setenv("AGENTCTL_PROGRESS", "1", 1);
	pusher = tst_proc_start(argv, log);
	unsetenv("AGENTCTL_PROGRESS");
	cr_assert_gt(pusher, 0);
	/* While h2 is stopped the move cannot pass its offer. */
	snprintf(body, sizeof body, "{\"agent\":\"%s\"}", id);
	for (int t = 0; t < 100 && !listed; t++) {
		struct agd_json *doc = NULL;
		const struct agd_json_val *list, *x;
		const char *phase = NULL, *to = NULL;
		long long bytes = 0;

		usleep(50000);
		cr_assert_eq(itest_req(NULL, ep1, "transfers", body, &reply), 1, "%s", reply ? reply : "");
		cr_assert_eq(agd_json_parse(reply, strlen(reply), &doc, NULL), 0, "%s", reply);
		list = agd_json_get(doc, agd_json_root(doc), "transfers");
		cr_assert_not_null(list, "%s", reply);
		x = agd_json_first(doc, list);
		if (x != NULL && agd_json_get_str(doc, x, "phase", &phase) == 0 &&
		    strcmp(phase, "suspending") != 0) {
			cr_assert_eq(agd_json_get_str(doc, x, "to", &to), 0);
			cr_assert_str_eq(to, "h2");
			cr_assert_eq(agd_json_get_int(doc, x, "bytes", &bytes), 0);
			cr_assert_geq(bytes, 6 << 20, "%s", reply);
			cr_assert_str_eq(phase, "offered", "%s", reply);
			listed = 1;
		}
		agd_json_destroy(&doc);
		free(reply);
		reply = NULL;
	}
	cr_assert(listed, "the source never listed the push in transfers");
	/* A progress line is drawn (over 4 MiB), naming the move. */
	snprintf(path, sizeof path, "push %s h1 -> h2: offered", id);
	for (int t = 0; t < 100 && !tst_file_has(log, path); t++)
		usleep(50000);
	kill(h2, SIGCONT);
	rc = wait_exit(pusher, 40000);
	cr_assert(tst_file_has(log, path), "no progress line '%s' in the push's output", path);
	cr_assert_eq(rc, 0, "push failed (see %s)", log);
	cr_assert(tst_file_has(log, "pushed "), "no result line");
	cr_assert(clu_logs_wait(id, "heavy on h2 #6291456", 15000), "%s", clu_out);
	/* Nothing under way any more. */
	cr_assert_eq(itest_req(NULL, ep1, "transfers", body, &reply), 1);
	cr_assert(strstr(reply, "\"transfers\":[]") != NULL, "%s", reply);
	free(reply);
}

/* scripts/cluster is ready when the daemons it started answer: another
 * daemon already listening on a host's control port (another test's, say)
 * does not make a cluster "up" whose host is a stranger. Here a second
 * cluster is asked to use this one's ports. */
Test(cli, a_cluster_whose_port_another_daemon_holds_does_not_come_up)
{
	char ep[512], other[300];
	const char *port;
	int rc;

	ctl_endpoint(1, ep, sizeof ep);
	port = strrchr(ep, ':');
	cr_assert_not_null(port, "no port in %s", ep);
	snprintf(other, sizeof other, "%.200s/other", clu_dir);
	rc = clu_script("start", "-n", "1", "--dir", other, "--base-port", port + 1, NULL);
	clu_script("stop", "--dir", other, "--purge", NULL);
	cr_assert_neq(rc, 0, "a cluster came up on ports another cluster's h1 holds");
	cr_assert_eq(ctl("--host", "h1", "status", NULL), 0, "%s", clu_out);
}

/* A pull waits for the agent to arrive, and a refused pull says why with
 * exit 4: asked of a host the agent is not on, the pull is refused there;
 * asked explicitly for strong mobility of an agent whose manifest allows
 * only weak (hello), it is refused by its host; asked of its host without
 * a mode, it moves (weakly) and returns once the agent is on the target. */
Test(cli, a_pull_returns_when_the_agent_has_arrived_or_says_why_it_was_refused)
{
	char id[64], host[64];

	snprintf(id, sizeof id, "%s", clu_run(clu_sign("hello"), "h1", NULL));
	cr_assert(clu_logs_wait(id, "hello from h1", 5000), "%s", clu_out);
	cr_assert_eq(ctl("pull", id, "--to", "h2", "--from", "h3", NULL), 4, "%s", clu_out);
	cr_assert_eq(ctl("--json", "pull", id, "--to", "h2", "--from", "h3", NULL), 4, "%s", clu_out);
	cr_assert(strstr(clu_out, "h3 refused to send") != NULL && strstr(clu_out, "pull refused") != NULL,
		  "%s", clu_out);
	cr_assert_eq(where_is(id, host, sizeof host), 0, "a refused pull changes no epoch");
	cr_assert_str_eq(host, "h1");
	cr_assert_eq(ctl("--json", "pull", id, "--to", "h2", "--strong", NULL), 4, "%s", clu_out);
	cr_assert(strstr(clu_out, "h1 refused to send") != NULL &&
		  strstr(clu_out, "does not allow strong mobility") != NULL, "%s", clu_out);
	cr_assert_eq(where_is(id, host, sizeof host), 0, "a refused strong pull moved the agent");
	cr_assert_str_eq(host, "h1");
	cr_assert_eq(ctl("pull", id, "--to", "h2", NULL), 0, "%s", clu_out);
	/* No polling here: the pull has returned, so the agent is there. */
	cr_assert_eq(where_is(id, host, sizeof host), 1);
	cr_assert_str_eq(host, "h2");
}
