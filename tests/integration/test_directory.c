/*
 * test_directory.c: the cluster's directory daemon and what a host keeps
 * of deliveries, with real daemons on loopback.
 *
 * - Host registry: h1 is the directory (`[peer] directory = h1`); h2 and
 *   h3 name it with its endpoint (`directory = h1@ENDPOINT`), register,
 *   and learn each other from its HOST_LIST: `agentctl hosts` lists all
 *   three, agent.hosts() too, and an agent on h2 migrates to h3, which
 *   nothing but the registry told h2 about. A host that stops registering
 *   is shown gone.
 * - Delivered ids are durable: h2 is killed (kill -9, the test-only crash
 *   point before DELIVERED) right after it handed a message to its agent;
 *   the sender resends the same message id to the restarted h2, which
 *   answers "delivered" from its store instead of delivering it again.
 */
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "migcluster.h"

#include "agd_dir.h"
#include "agd_store.h"

static char roam_seg[300], recv_seg[300];

static void sign_lua(const char *name, const char *lua, char *out, size_t out_len)
{
	char dir[300], path[400], text[512], key[300];

	snprintf(dir, sizeof dir, "%.200s/%s", tmp, name);
	mkdir(dir, 0700);
	snprintf(path, sizeof path, "%s/manifest", dir);
	snprintf(text, sizeof text,
		 "agentd-manifest 1\nname = %s\nversion = 1.0\nentry = main.lua main\n"
		 "mobility = both\nactivation = resident\nfile = main.lua\n", name);
	write_file(path, text);
	snprintf(path, sizeof path, "%s/main.lua", dir);
	write_file(path, lua);
	snprintf(out, out_len, "%.200s/%s.seg", tmp, name);
	snprintf(key, sizeof key, "%.200s/author.key", tmp);
	{
		char *argv[] = { (char *)ctlbin(), "sign", dir, "-k", key, "-o", out, NULL };

		cr_assert_eq(tst_run(argv, NULL, 0, 10000), 0, "sign %s", name);
	}
}

static void dir_setup(void)
{
	setup();
	/* Says which hosts it sees, then moves itself to h3. */
	sign_lua("roamer",
		 "function main()\n"
		 "  agent.log('hosts ' .. table.concat(agent.hosts(), ','))\n"
		 "  local ok, err = agent.migrate('h3')\n"
		 "  agent.log('migrated ' .. tostring(ok) .. ' ' .. tostring(err) .. ' now on ' .. agent.host())\n"
		 "  while true do agent.sleep(0.2) end\n"
		 "end\n",
		 roam_seg, sizeof roam_seg);
	/* Logs every message it gets. */
	sign_lua("receiver",
		 "function main()\n"
		 "  while true do\n"
		 "    local m = agent.recv()\n"
		 "    agent.log('got ' .. tostring(m))\n"
		 "  end\n"
		 "end\n",
		 recv_seg, sizeof recv_seg);
}

TestSuite(directory, .init = dir_setup, .fini = teardown, .timeout = 300);

static void append_conf(struct host *h, const char *text)
{
	FILE *f = fopen(h->conf, "a");

	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static void run_seg(struct host *h, const char *segment, char id[17])
{
	char out[256];

	cr_assert_eq(ctl(h, out, sizeof out, 10000, "run", segment, NULL, NULL, NULL), 0, "run: %s", out);
	cr_assert_geq(strlen(out), 16);
	memcpy(id, out, 16);
	id[16] = '\0';
}

/* Lines of `path` from byte `from` on that contain both a and b. */
static int count_from(const char *path, long from, const char *a, const char *b)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int n = 0;

	if (f == NULL)
		return 0;
	fseek(f, from, SEEK_SET);
	while (fgets(line, sizeof line, f))
		if (strstr(line, a) && (b == NULL || strstr(line, b)))
			n++;
	fclose(f);
	return n;
}

static long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* How many hosts `agentctl --json hosts` on h shows alive, and whether it
 * shows `name` at all (registry entries are one JSON object each). */
static int alive_hosts(struct host *h, const char *name, int *listed)
{
	char out[8192], needle[64];
	int n = 0;

	*listed = 0;
	if (ctl(h, out, sizeof out, 10000, "--json", "hosts", NULL, NULL, NULL) != 0)
		return -1;
	snprintf(needle, sizeof needle, "\"name\":\"%s\"", name);
	*listed = strstr(out, needle) != NULL;
	for (char *p = strstr(out, "\"alive\":true"); p; p = strstr(p + 1, "\"alive\":true"))
		n++;
	return n;
}

/* The state of `name` in h's registry view: 1 alive, 0 gone, -1 absent. */
static int host_alive(struct host *h, const char *name)
{
	char out[8192], needle[64], *p, *end;

	if (ctl(h, out, sizeof out, 10000, "--json", "hosts", NULL, NULL, NULL) != 0)
		return -1;
	snprintf(needle, sizeof needle, "\"name\":\"%s\"", name);
	p = strstr(out, needle);
	if (p == NULL)
		return -1;
	end = strchr(p, '}');
	if (end)
		*end = '\0';
	return strstr(p, "\"alive\":true") != NULL;
}

static void config_cluster(void)
{
	char text[512];

	append_conf(&hosts[0], "\n[peer]\ndirectory = h1\nregister_interval = 300ms\n");
	for (int i = 1; i < 3; i++) {
		snprintf(text, sizeof text, "\n[peer]\ndirectory = h1@%s\nregister_interval = 300ms\n",
			 hosts[0].peer);
		append_conf(&hosts[i], text);
	}
}

static void wait_all_registered(struct host *h)
{
	long end = now_ms() + 30000;
	int listed = 0, n = 0;

	while (now_ms() < end) {
		n = alive_hosts(h, "h3", &listed);
		if (n == 3 && listed)
			return;
		usleep(100000);
	}
	cr_assert_fail("%s sees %d live hosts (h3 listed: %d), wanted 3", h->name, n, listed);
}

Test(directory, members_register_and_find_each_other_through_the_directory)
{
	char id[17];
	long end;

	config_cluster();
	for (int i = 0; i < 3; i++)
		start_host(&hosts[i], NULL, NULL);
	/* The directory and both members see all three. */
	wait_all_registered(&hosts[0]);
	wait_all_registered(&hosts[1]);
	wait_all_registered(&hosts[2]);

	/* h2 never heard of h3 but through the registry: its agent sees it
	 * and goes there. */
	run_seg(&hosts[1], roam_seg, id);
	end = now_ms() + 30000;
	while (now_ms() < end && count_from(hosts[2].log, 0, id, "migrated true nil now on h3") == 0)
		usleep(100000);
	cr_assert_eq(count_from(hosts[2].log, 0, id, "migrated true nil now on h3"), 1,
		     "the agent did not reach h3 through the registry's endpoint");
	cr_assert_eq(count_from(hosts[1].log, 0, id, "hosts h2,"), 1, "agent.hosts() does not start with h2");
	{
		FILE *f = fopen(hosts[1].log, "r");
		char line[4096];
		int seen = 0;

		cr_assert_not_null(f);
		while (fgets(line, sizeof line, f))
			if (strstr(line, id) && strstr(line, "hosts h2,"))
				seen = strstr(line, "h1") && strstr(line, "h3");
		fclose(f);
		cr_assert(seen, "agent.hosts() on h2 does not list h1 and h3");
	}
	cr_assert_eq(lists(&hosts[2], id), 1);
	cr_assert_eq(lists(&hosts[1], id), 0);
}

Test(directory, a_host_that_stops_registering_is_shown_gone)
{
	long end;
	int st = 1;

	config_cluster();
	for (int i = 0; i < 3; i++)
		start_host(&hosts[i], NULL, NULL);
	wait_all_registered(&hosts[1]);
	cr_assert_eq(host_alive(&hosts[1], "h3"), 1);
	tst_proc_stop(hosts[2].pid, 5000);
	hosts[2].pid = 0;
	end = now_ms() + 30000;
	while (now_ms() < end && (st = host_alive(&hosts[1], "h3")) != 0)
		usleep(100000);
	cr_assert_eq(st, 0, "h3 stopped but h2 still shows it alive");
	cr_assert_eq(host_alive(&hosts[0], "h3"), 0, "the directory still shows h3 alive");
	cr_assert_eq(host_alive(&hosts[1], "h1"), 1);
}

/* Waits (bounded) for process pid to end; returns its wait status or -1. */
static int wait_exit(pid_t pid, int ms)
{
	long end = now_ms() + ms;
	int status;

	while (now_ms() < end) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		usleep(50000);
	}
	return -1;
}

Test(directory, a_resend_after_the_receiver_was_killed_is_not_delivered_twice)
{
	char id[17], out[512], logpath[400];
	pid_t sender;
	long mark, end;
	int status;

	start_host(&hosts[0], NULL, NULL);
	/* h2 kills itself (SIGKILL) just before it sends its first DELIVERED:
	 * after the runtime took the message, before the sender hears so. */
	start_host(&hosts[1], "DELIVERED", NULL);
	run_seg(&hosts[0], recv_seg, id);
	cr_assert_eq(ctl(&hosts[0], out, sizeof out, 20000, "push", id, "--to", "h2", NULL), 0, "push: %s", out);
	end = now_ms() + 20000;
	while (now_ms() < end && lists(&hosts[1], id) != 1)
		usleep(100000);
	cr_assert_eq(lists(&hosts[1], id), 1);

	/* Sent through h1, which holds a forwarding pointer to h2: a DELIVER
	 * from h1 to h2, resent every 500 ms for 10 s until answered. */
	snprintf(logpath, sizeof logpath, "%.300s/sender.out", tmp);
	{
		char *argv[] = { (char *)ctlbin(), "--host", hosts[0].ctl, "--timeout", "20000", "send", id,
				 "hello", NULL };

		sender = tst_proc_start(argv, logpath);
		cr_assert_gt(sender, 0);
	}
	status = wait_exit(hosts[1].pid, 15000);
	cr_assert(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		  "h2 did not die at its crash point");
	hosts[1].pid = 0;
	mark = file_size(hosts[1].log);
	start_host(&hosts[1], NULL, NULL);

	/* The resend reached the restarted h2 and was answered delivered. */
	status = wait_exit(sender, 30000);
	if (status == -1) {
		kill(sender, SIGKILL);
		waitpid(sender, NULL, 0);
	}
	cr_assert(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the send did not complete after h2 came back (status %d)", status);

	/* A later message goes through the same mailbox: once it is there,
	 * a second delivery of the first would have shown before it. */
	cr_assert_eq(ctl(&hosts[1], out, sizeof out, 20000, "send", id, "second", NULL, NULL), 0, "send: %s", out);
	end = now_ms() + 20000;
	while (now_ms() < end && count_from(hosts[1].log, mark, id, "got second") == 0)
		usleep(100000);
	cr_assert_eq(count_from(hosts[1].log, mark, id, "got second"), 1);
	cr_assert_eq(count_from(hosts[1].log, mark, id, "got hello"), 0,
		     "the resend was delivered again after the restart");
	cr_assert_eq(count_from(hosts[0].log, 0, "dir.undelivered", id), 0);
}

Test(directory, a_host_past_its_max_peers_is_refused_with_the_reason)
{
	char a[17], b[17], out[2048];

	append_conf(&hosts[0], "\n[peer]\nmax_peers = 1\n");
	for (int i = 0; i < 3; i++)
		start_host(&hosts[i], NULL, NULL);
	run_seg(&hosts[0], seg, a);
	run_seg(&hosts[0], seg, b);
	cr_assert_eq(ctl(&hosts[0], out, sizeof out, 20000, "push", a, "--to", "h2", NULL), 0, "push: %s", out);
	/* A second peer is one too many: refused, and told why. */
	cr_assert_neq(ctl(&hosts[0], out, sizeof out, 20000, "--json", "push", b, "--to", "h3"), 0);
	cr_assert(strstr(out, "max_peers") != NULL, "no reason given: %s", out);
	cr_assert_eq(lists(&hosts[0], b), 1, "the refused agent must stay on h1");
	cr_assert_eq(count_from(hosts[0].log, 0, "peer.too_many_peers", "host=h3"), 1);
}

/* ---- the delivered-id records themselves, on a store without daemons ---- */

static int no_send(void *ud, const char *host, const struct agd_wire_msg *m)
{
	return 0;
}

static int no_deliver(void *ud, const char *agent, const char *from, const uint8_t *d, size_t len)
{
	return AGD_DIR_REFUSED;
}

static const struct agd_dir_ops quiet_ops = { no_send, no_deliver, NULL, NULL };

static struct agd_dir *dir_on(struct agd_store *st)
{
	struct agd_dir_cfg dc = { .host = "h1", .store = st };
	struct agd_dir *d = NULL;

	cr_assert_eq(agd_dir_new(&dc, &quiet_ops, NULL, &d), 0);
	return d;
}

Test(directory, delivered_ids_outlive_the_process_and_their_records_stay_bounded)
{
	char path[400], agent[32], key[64];
	struct agd_store *st = NULL;
	struct agd_dir *d;
	uint8_t ids[16], *out = NULL;
	size_t len = 0;
	void *v = NULL;
	size_t vlen = 0;

	snprintf(path, sizeof path, "%.300s/seen.db", tmp);
	cr_assert_eq(agd_store_open(path, &st), 0);
	d = dir_on(st);
	for (int i = 0; i < 16; i++)
		ids[i] = (uint8_t)(i + 1);
	/* 5000 agents with two ids each: more records than the store keeps. */
	for (int a = 0; a < 5000; a++) {
		snprintf(agent, sizeof agent, "%016x", a);
		cr_assert_eq(agd_dir_import_seen(d, agent, ids, 16), 0);
	}
	agd_dir_destroy(&d);
	agd_store_close(&st);

	/* A new process: the newest agents' ids are known from the store
	 * alone, the oldest records were dropped to stay bounded. */
	cr_assert_eq(agd_store_open(path, &st), 0);
	d = dir_on(st);
	cr_assert_eq(agd_dir_export_seen(d, "0000000000001387", &out, &len), 0);
	cr_assert_eq(len, 16, "the last agent's ids were not kept (%zu bytes)", len);
	cr_assert_eq(memcmp(out, ids, 16), 0);
	free(out);
	snprintf(key, sizeof key, "dir.seen.%016x", 0);
	cr_assert_eq(agd_store_kv_get(st, key, &v, &vlen), AGD_STORE_ERR_NOTFOUND,
		     "the oldest record is still there: the store grows without bound");
	{
		int kept = 0;

		for (int a = 0; a < 5000; a++) {
			snprintf(key, sizeof key, "dir.seen.%016x", a);
			if (agd_store_kv_get(st, key, &v, &vlen) == 0)
				kept++;
			free(v);
			v = NULL;
		}
		cr_assert(kept >= 4096 && kept <= 4096 + 64, "%d records kept", kept);
	}
	/* An agent that left has no record any more. */
	agd_dir_forget(d, "0000000000001387");
	snprintf(key, sizeof key, "dir.seen.%s", "0000000000001387");
	cr_assert_eq(agd_store_kv_get(st, key, &v, &vlen), AGD_STORE_ERR_NOTFOUND);
	agd_dir_destroy(&d);
	agd_store_close(&st);
}

/* ---- what a member takes from a HOST_LIST, without daemons ---- */

#include "agd_hosts.h"
#include "agd_loop.h"

struct learned {
	char host[8][AGD_WIRE_NAME_MAX + 1];
	char ep[8][AGD_HOSTS_EP_MAX + 1];
	int n;
};

static int h_send(void *ud, const char *host, const struct agd_wire_msg *m)
{
	return 0;
}

static void h_learn(void *ud, const char *host, const char *endpoint)
{
	struct learned *l = ud;

	if (l->n < 8) {
		snprintf(l->host[l->n], sizeof l->host[l->n], "%s", host);
		snprintf(l->ep[l->n], sizeof l->ep[l->n], "%s", endpoint);
		l->n++;
	}
}

/* This member trusts h1 and h3 (keys of 64 'a's and 'c's), not h4. */
static int h_key(void *ud, const char *host, char hex[AGD_HOSTS_KEY_HEX + 1])
{
	char c = strcmp(host, "h1") == 0 ? 'a' : strcmp(host, "h2") == 0 ? 'b' : strcmp(host, "h3") == 0 ? 'c' : 0;

	if (c == 0)
		return -1;
	memset(hex, c, AGD_HOSTS_KEY_HEX);
	hex[AGD_HOSTS_KEY_HEX] = '\0';
	return 0;
}

static const struct agd_hosts_ops member_ops = { h_send, h_learn, h_key };

static void feed(struct agd_hosts *h, const char *from, const char *text, size_t len)
{
	struct agd_wire_msg m;

	memset(&m, 0, sizeof m);
	m.type = AGD_MSG_HOST_LIST;
	m.blob[0].data = (const uint8_t *)text;
	m.blob[0].len = len;
	cr_assert_eq(agd_hosts_input(h, from, &m, agd_now_ms()), 1);
}

Test(directory, a_member_learns_only_trusted_hosts_with_matching_keys_from_its_directory)
{
	struct agd_config cfg;
	struct agd_hosts *h = NULL;
	struct learned l = { .n = 0 };
	char names[8][AGD_WIRE_NAME_MAX + 1], list[2048];
	char ka[65], kc[65], kx[65];
	size_t n;

	agd_config_defaults(&cfg);
	snprintf(cfg.host, sizeof cfg.host, "h2");
	snprintf(cfg.directory, sizeof cfg.directory, "h1");
	memset(ka, 'a', 64), ka[64] = '\0';
	memset(kc, 'c', 64), kc[64] = '\0';
	memset(kx, 'f', 64), kx[64] = '\0';
	cr_assert_eq(agd_hosts_new(&cfg, "tcp://127.0.0.1:9002", &member_ops, &l, &h), 0);
	cr_assert_eq(agd_hosts_names(h, names, 8), 0, "a view before any list");
	snprintf(list, sizeof list,
		 "h1 tcp://127.0.0.1:9001 %s 0\n"
		 "h2 tcp://127.0.0.1:9002 - 10\n"
		 "h3 tcp://127.0.0.1:9003 %s 20\n"
		 "h4 tcp://127.0.0.1:9004 - 30\n"
		 "h5 tcp://127.0.0.1:9005 %s 40\n",
		 ka, kc, kx);
	/* From a host that is not the directory: ignored. */
	feed(h, "h3", list, strlen(list));
	cr_assert_eq(l.n, 0);
	feed(h, "h1", list, strlen(list));
	/* h4 and h5 are not trusted here; h2 is this host. */
	cr_assert_eq(l.n, 2, "learned %d endpoints", l.n);
	cr_assert_str_eq(l.host[0], "h1");
	cr_assert_str_eq(l.ep[0], "tcp://127.0.0.1:9001");
	cr_assert_str_eq(l.host[1], "h3");
	n = agd_hosts_names(h, names, 8);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(names[0], "h2");

	/* A key that differs from the trusted one: not learned. */
	l.n = 0;
	snprintf(list, sizeof list, "h3 tcp://127.0.0.1:9333 %s 0\n", ka);
	feed(h, "h1", list, strlen(list));
	cr_assert_eq(l.n, 0, "a host was learned under another host's key");

	/* Malformed lists: every prefix of a good one, bad fields, NULs,
	 * no crash and nothing learned past the first bad line. */
	snprintf(list, sizeof list, "h1 tcp://127.0.0.1:9001 %s 0\nh3 tcp://127.0.0.1:9003 %s 20\n", ka, kc);
	for (size_t cut = 0; cut <= strlen(list); cut++)
		feed(h, "h1", list, cut);
	l.n = 0;
	feed(h, "h1", "h1 udp://x %s 0\n", 16);
	feed(h, "h1", "h1 tcp://127.0.0.1:1 - 12x\n", 27);
	feed(h, "h1", "h1 tcp://127.0.0.1:1\0 - 1\n", 26);
	feed(h, "h1", "h1  tcp://127.0.0.1:1 - 1\n", 26);
	feed(h, "h1", "\n\n\n", 3);
	cr_assert_eq(l.n, 0, "a malformed line was learned");
	agd_hosts_destroy(&h);
	cr_assert_null(h);
	agd_config_free(&cfg);
}
