/*
 * test_output.c: the real agentctl binary against fake daemons (ROUTER
 * sockets in this process answering the control protocol with set replies):
 * the shape of --json output, what requests agentctl sends, the exit codes
 * for unreachable hosts and daemon errors, and that commands spanning hosts
 * ask them all at once.
 */
#include "agd_ctl.h"
#include "agd_json.h"
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define NFAKES 3

struct fake {
	char name[16];
	char endpoint[64];
	void *sock;
	pthread_t thread;
	int running;
	/* Reply to give: per command, status word and body. */
	const char *ps_body;
	const char *call_body;
	const char *error_body;   /* when set, every command is refused with it */
	int wait_for_all_calls;   /* answer `call` only once every fake got one */
	/* What came in last. */
	pthread_mutex_t mu;
	char last_cmd[32];
	char last_body[4096];
	int requests;
};

static void *zctx;
static struct fake fakes[NFAKES];
static atomic_int stop_flag;
static atomic_int calls_seen;
static char cluster_path[128];
static char outbuf[65536];

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int recv_str(void *sock, char *buf, size_t len, int *more)
{
	int n = zmq_recv(sock, buf, len - 1, 0);
	size_t m = sizeof *more;

	if (n < 0)
		return -1;
	buf[(size_t)n < len - 1 ? (size_t)n : len - 1] = '\0';
	zmq_getsockopt(sock, ZMQ_RCVMORE, more, &m);
	return n;
}

static void *fake_run(void *arg)
{
	struct fake *f = arg;

	while (!atomic_load(&stop_flag)) {
		zmq_pollitem_t it = { f->sock, 0, ZMQ_POLLIN, 0 };
		char id[256], empty[8], version[32], cmd[32], body[4096];
		const char *status = AGD_CTL_OK, *reply = "{}";
		int idlen, more = 0;

		if (zmq_poll(&it, 1, 50) <= 0)
			continue;
		idlen = zmq_recv(f->sock, id, sizeof id, 0);
		if (idlen < 0 || recv_str(f->sock, empty, sizeof empty, &more) < 0 ||
		    recv_str(f->sock, version, sizeof version, &more) < 0 ||
		    recv_str(f->sock, cmd, sizeof cmd, &more) < 0 ||
		    recv_str(f->sock, body, sizeof body, &more) < 0)
			continue;
		pthread_mutex_lock(&f->mu);
		snprintf(f->last_cmd, sizeof f->last_cmd, "%s", cmd);
		snprintf(f->last_body, sizeof f->last_body, "%s", body);
		f->requests++;
		pthread_mutex_unlock(&f->mu);
		if (f->error_body != NULL) {
			status = AGD_CTL_ERROR;
			reply = f->error_body;
		} else if (strcmp(cmd, "status") == 0) {
			static char st[128];
			snprintf(st, sizeof st, "{\"host\":\"%s\",\"agents\":1,\"workers\":2}", f->name);
			reply = st;
		} else if (strcmp(cmd, "ps") == 0) {
			reply = f->ps_body ? f->ps_body : "{\"agents\":[]}";
		} else if (strcmp(cmd, "call") == 0) {
			long deadline = now_ms() + 3000;

			atomic_fetch_add(&calls_seen, 1);
			/* A client that asks replicas one after another never
			 * gets past the first one here. */
			while (f->wait_for_all_calls && atomic_load(&calls_seen) < NFAKES &&
			       now_ms() < deadline)
				usleep(5000);
			reply = f->call_body ? f->call_body : "{\"result\":null}";
		} else if (strcmp(cmd, "send") == 0 || strcmp(cmd, "kill") == 0) {
			reply = "{}";
		} else {
			status = AGD_CTL_ERROR;
			reply = "{\"error\":\"unknown command\",\"code\":\"arg\"}";
		}
		zmq_send(f->sock, id, (size_t)idlen, ZMQ_SNDMORE);
		zmq_send(f->sock, "", 0, ZMQ_SNDMORE);
		zmq_send(f->sock, AGD_CTL_VERSION, strlen(AGD_CTL_VERSION), ZMQ_SNDMORE);
		zmq_send(f->sock, status, strlen(status), ZMQ_SNDMORE);
		zmq_send(f->sock, reply, strlen(reply), 0);
	}
	return NULL;
}

static void setup(void)
{
	FILE *c;
	int linger = 0;

	zctx = zmq_ctx_new();
	atomic_store(&stop_flag, 0);
	atomic_store(&calls_seen, 0);
	snprintf(cluster_path, sizeof cluster_path, "/tmp/cli-out-%ld.cluster", (long)getpid());
	c = fopen(cluster_path, "w");
	cr_assert_not_null(c);
	fprintf(c, "# fake cluster\n");
	for (int i = 0; i < NFAKES; i++) {
		struct fake *f = &fakes[i];

		memset(f, 0, sizeof *f);
		pthread_mutex_init(&f->mu, NULL);
		snprintf(f->name, sizeof f->name, "h%d", i + 1);
		snprintf(f->endpoint, sizeof f->endpoint, "tcp://127.0.0.1:%d", tst_free_port());
		fprintf(c, "%s %s\n", f->name, f->endpoint);
	}
	fclose(c);
	for (int i = 0; i < NFAKES; i++) {
		fakes[i].sock = zmq_socket(zctx, ZMQ_ROUTER);
		zmq_setsockopt(fakes[i].sock, ZMQ_LINGER, &linger, sizeof linger);
	}
}

/* Starts fakes[0..n); the others stay down (nothing listens there). */
static void start_fakes(int n)
{
	for (int i = 0; i < n; i++) {
		cr_assert_eq(zmq_bind(fakes[i].sock, fakes[i].endpoint), 0, "bind %s", fakes[i].endpoint);
		cr_assert_eq(pthread_create(&fakes[i].thread, NULL, fake_run, &fakes[i]), 0);
		fakes[i].running = 1;
	}
}

static void teardown(void)
{
	atomic_store(&stop_flag, 1);
	for (int i = 0; i < NFAKES; i++) {
		if (fakes[i].running)
			pthread_join(fakes[i].thread, NULL);
		zmq_close(fakes[i].sock);
		pthread_mutex_destroy(&fakes[i].mu);
	}
	zmq_ctx_term(zctx);
	unlink(cluster_path);
}

TestSuite(cli_output, .init = setup, .fini = teardown, .timeout = 60);

/* Runs agentctl with the fake cluster and the given arguments (NULL-ended). */
static int agentctl(const char *first, ...)
{
	char *argv[32];
	int n = 0;
	va_list ap;

	argv[n++] = (char *)tst_bin("AGENTCTL_BIN");
	cr_assert_not_null(argv[0], "AGENTCTL_BIN not set");
	argv[n++] = "--cluster";
	argv[n++] = cluster_path;
	argv[n++] = "--timeout";
	argv[n++] = "1000";
	va_start(ap, first);
	for (const char *a = first; a != NULL && n < 31; a = va_arg(ap, const char *))
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	return tst_run(argv, outbuf, sizeof outbuf, 20000);
}

static struct agd_json *parse_out(void)
{
	struct agd_json *doc = NULL;
	int rc = agd_json_parse(outbuf, strlen(outbuf), &doc, NULL);

	cr_assert_eq(rc, 0, "stdout is not one JSON document: %s", outbuf);
	return doc;
}

Test(cli_output, status_all_lists_every_host_and_marks_the_down_one)
{
	struct agd_json *doc;
	const struct agd_json_val *hosts, *h;
	int up = -1, i = 0;
	const char *name;

	start_fakes(2);
	cr_assert_eq(agentctl("--json", "status", "--all", NULL), 3, "one host down is exit 3");
	doc = parse_out();
	hosts = agd_json_get(doc, agd_json_root(doc), "hosts");
	cr_assert_not_null(hosts);
	cr_assert_eq(hosts->count, 3);
	for (h = agd_json_first(doc, hosts); h != NULL; h = agd_json_next(doc, h), i++) {
		cr_assert_eq(agd_json_get_str(doc, h, "name", &name), 0);
		cr_assert_str_eq(name, fakes[i].name, "hosts keep cluster-file order");
		cr_assert_eq(agd_json_get_bool(doc, h, "up", &up), 0);
		cr_assert_eq(up, i < 2, "host %s up=%d", name, up);
		cr_assert_eq(agd_json_get(doc, h, "status") != NULL, i < 2);
	}
	agd_json_destroy(&doc);
}

Test(cli_output, ps_all_merges_hosts_with_location_and_skips_forwarding_pointers)
{
	struct agd_json *doc;
	const struct agd_json_val *agents, *a;
	const char *id, *host;
	long long epoch = 0;

	fakes[0].ps_body = "{\"agents\":[{\"id\":\"a1\",\"name\":\"hello\",\"state\":\"running\","
			   "\"mobility\":\"weak\",\"epoch\":1,\"memory\":20480,\"home\":\"h1\"},"
			   "{\"id\":\"a2\",\"state\":\"moved\",\"epoch\":3}]}";
	fakes[1].ps_body = "{\"agents\":[{\"id\":\"a2\",\"name\":\"counter\",\"state\":\"waiting\","
			   "\"mobility\":\"strong\",\"epoch\":4,\"memory\":30000,\"home\":\"h1\"}]}";
	fakes[2].ps_body = "{\"agents\":[]}";
	start_fakes(3);
	cr_assert_eq(agentctl("ps", "--all", "--json", NULL), 0, "out: %s", outbuf);
	doc = parse_out();
	agents = agd_json_get(doc, agd_json_root(doc), "agents");
	cr_assert_not_null(agents);
	cr_assert_eq(agents->count, 2, "the forwarding pointer on h1 is not an agent: %s", outbuf);
	a = agd_json_first(doc, agents);
	cr_assert_eq(agd_json_get_str(doc, a, "id", &id), 0);
	cr_assert_eq(agd_json_get_str(doc, a, "host", &host), 0);
	cr_assert_str_eq(id, "a1");
	cr_assert_str_eq(host, "h1");
	a = agd_json_next(doc, a);
	cr_assert_eq(agd_json_get_str(doc, a, "id", &id), 0);
	cr_assert_eq(agd_json_get_str(doc, a, "host", &host), 0);
	cr_assert_eq(agd_json_get_int(doc, a, "epoch", &epoch), 0);
	cr_assert_str_eq(id, "a2");
	cr_assert_str_eq(host, "h2", "an agent is shown where it is, not at home");
	cr_assert_eq(epoch, 4);
	agd_json_destroy(&doc);
}

Test(cli_output, ps_table_has_the_documented_columns)
{
	fakes[0].ps_body = "{\"agents\":[{\"id\":\"a1\",\"name\":\"hello\",\"state\":\"running\","
			   "\"mobility\":\"weak\",\"epoch\":1,\"memory\":2048,\"home\":\"h1\"}]}";
	start_fakes(3);
	cr_assert_eq(agentctl("ps", "--all", NULL), 0);
	cr_assert(strstr(outbuf, "ID") && strstr(outbuf, "HOST") && strstr(outbuf, "STATE") &&
		  strstr(outbuf, "MOBILITY") && strstr(outbuf, "EPOCH") && strstr(outbuf, "MEMORY"),
		  "header: %s", outbuf);
	cr_assert(strstr(outbuf, "2.0 KiB") != NULL, "memory is shown in KiB: %s", outbuf);
}

Test(cli_output, call_with_host_sends_one_request_per_replica)
{
	struct agd_json *doc;
	long long result = 0, votes = 0;
	const struct agd_json_val *replies;

	fakes[0].call_body = "{\"result\":42}";
	start_fakes(3);
	/* With --host every call goes to h1 (a daemon follows its forwarding
	 * pointers), one request per replica. */
	cr_assert_eq(agentctl("--json", "call", "r1,r2,r3", "get", "--combine", "majority", "--host",
			      fakes[0].endpoint, NULL),
		     0, "out: %s", outbuf);
	doc = parse_out();
	cr_assert_eq(agd_json_get_int(doc, agd_json_root(doc), "result", &result), 0, "%s", outbuf);
	cr_assert_eq(agd_json_get_int(doc, agd_json_root(doc), "votes", &votes), 0);
	replies = agd_json_get(doc, agd_json_root(doc), "replies");
	cr_assert_eq(replies->count, 3);
	agd_json_destroy(&doc);
	/* h1 answered 42 three times: every replica got its own request. */
	cr_assert_eq(result, 42);
	cr_assert_eq(votes, 3);
	cr_assert_eq(fakes[0].requests, 3);
}

Test(cli_output, replicas_found_across_hosts_are_called_in_parallel_and_combined)
{
	struct agd_json *doc;
	long long result = 0, votes = 0;

	fakes[0].ps_body = "{\"agents\":[{\"id\":\"r1\",\"state\":\"waiting\"}]}";
	fakes[1].ps_body = "{\"agents\":[{\"id\":\"r2\",\"state\":\"waiting\"}]}";
	fakes[2].ps_body = "{\"agents\":[{\"id\":\"r3\",\"state\":\"waiting\"}]}";
	for (int i = 0; i < NFAKES; i++)
		fakes[i].wait_for_all_calls = 1;
	fakes[0].call_body = "{\"result\":7}";
	fakes[1].call_body = "{\"result\":8}";
	fakes[2].call_body = "{\"result\":7}";
	start_fakes(3);
	cr_assert_eq(agentctl("--json", "call", "r1,r2,r3", "get", "--combine=majority", NULL), 0,
		     "out: %s", outbuf);
	doc = parse_out();
	cr_assert_eq(agd_json_get_int(doc, agd_json_root(doc), "result", &result), 0);
	cr_assert_eq(agd_json_get_int(doc, agd_json_root(doc), "votes", &votes), 0);
	cr_assert_eq(result, 7);
	cr_assert_eq(votes, 2);
	agd_json_destroy(&doc);
	for (int i = 0; i < NFAKES; i++)
		cr_assert_str_eq(fakes[i].last_cmd, "call", "replica %d was called", i + 1);
}

Test(cli_output, no_majority_is_a_failure_but_all_shows_every_answer)
{
	fakes[0].ps_body = "{\"agents\":[{\"id\":\"r1\",\"state\":\"waiting\"}]}";
	fakes[1].ps_body = "{\"agents\":[{\"id\":\"r2\",\"state\":\"waiting\"}]}";
	fakes[2].ps_body = "{\"agents\":[{\"id\":\"r3\",\"state\":\"waiting\"}]}";
	fakes[0].call_body = "{\"result\":1}";
	fakes[1].call_body = "{\"result\":2}";
	fakes[2].call_body = "{\"result\":3}";
	start_fakes(3);
	cr_assert_eq(agentctl("call", "r1,r2,r3", "get", "--combine", "majority", NULL), 1);
	cr_assert_eq(agentctl("call", "r1,r2,r3", "get", "--combine", "all", NULL), 0);
	cr_assert(strstr(outbuf, "r1@h1: 1") && strstr(outbuf, "r2@h2: 2") && strstr(outbuf, "r3@h3: 3"),
		  "out: %s", outbuf);
}

Test(cli_output, send_wraps_json_or_a_word_as_the_message)
{
	struct agd_json *doc;
	const struct agd_json_val *msg;
	const char *agent;

	start_fakes(1);
	cr_assert_eq(agentctl("--host", "h1", "send", "a1", "{\"n\":[1,2]}", NULL), 0);
	cr_assert_str_eq(fakes[0].last_cmd, "send");
	cr_assert_eq(agd_json_parse(fakes[0].last_body, strlen(fakes[0].last_body), &doc, NULL), 0);
	cr_assert_eq(agd_json_get_str(doc, agd_json_root(doc), "agent", &agent), 0);
	cr_assert_str_eq(agent, "a1");
	msg = agd_json_get(doc, agd_json_root(doc), "msg");
	cr_assert_eq(msg->type, AGD_JSON_OBJ);
	agd_json_destroy(&doc);

	cr_assert_eq(agentctl("--host", "h1", "send", "a1", "hello world", NULL), 0);
	cr_assert_eq(agd_json_parse(fakes[0].last_body, strlen(fakes[0].last_body), &doc, NULL), 0);
	msg = agd_json_get(doc, agd_json_root(doc), "msg");
	cr_assert_eq(msg->type, AGD_JSON_STR);
	cr_assert_str_eq(msg->str, "hello world");
	agd_json_destroy(&doc);
}

Test(cli_output, daemon_error_codes_become_exit_codes_with_a_json_error)
{
	struct agd_json *doc;
	const char *err;

	fakes[0].error_body = "{\"error\":\"no agent a9\",\"code\":\"notfound\"}";
	start_fakes(1);
	cr_assert_eq(agentctl("--host", "h1", "--json", "kill", "a9", NULL), 5);
	doc = parse_out();
	cr_assert_eq(agd_json_get_str(doc, agd_json_root(doc), "error", &err), 0);
	cr_assert_str_eq(err, "no agent a9");
	agd_json_destroy(&doc);

	fakes[0].error_body = "{\"error\":\"key 1234 is not trusted\",\"code\":\"untrusted\"}";
	cr_assert_eq(agentctl("--host", "h1", "kill", "a9", NULL), 6);
	fakes[0].error_body = "{\"error\":\"busy\",\"code\":\"state\"}";
	cr_assert_eq(agentctl("--host", "h1", "kill", "a9", NULL), 4);
}

Test(cli_output, unknown_agent_is_not_found_on_any_host)
{
	start_fakes(3);
	cr_assert_eq(agentctl("kill", "nobody", NULL), 5);
	/* Every host was asked for its agents, then for the daemons' own
	 * location service (the fakes know neither command's agent). */
	for (int i = 0; i < NFAKES; i++) {
		cr_assert_eq(fakes[i].requests, 2, "host %d asked %d times", i + 1, fakes[i].requests);
		cr_assert_str_eq(fakes[i].last_cmd, "locate", "host %d was asked", i + 1);
	}
}

Test(cli_output, unreachable_host_gives_exit_3_and_a_json_error)
{
	struct agd_json *doc;
	long long code = 0;

	/* Nothing started: h1 is down. */
	cr_assert_eq(agentctl("--host", "h1", "--json", "status", NULL), 3);
	doc = parse_out();
	/* status always answers with its host list */
	cr_assert_not_null(agd_json_get(doc, agd_json_root(doc), "hosts"));
	agd_json_destroy(&doc);
	cr_assert_eq(agentctl("--host", "h1", "--json", "kill", "a1", NULL), 3);
	doc = parse_out();
	cr_assert_eq(agd_json_get_int(doc, agd_json_root(doc), "exit", &code), 0, "%s", outbuf);
	cr_assert_eq(code, 3);
	agd_json_destroy(&doc);
}

Test(cli_output, unknown_host_name_and_bad_usage_have_their_codes)
{
	cr_assert_eq(agentctl("--host", "h9", "status", NULL), 5);
	cr_assert_eq(agentctl("push", "a1", NULL), 2, "push needs --to");
	cr_assert_eq(agentctl("frobnicate", NULL), 2);
}

Test(cli_output, push_asks_the_source_and_pull_asks_the_target)
{
	struct agd_json *doc;
	const char *to = NULL, *from = NULL;

	start_fakes(2);
	fakes[0].error_body = NULL;
	/* The fakes refuse push/pull as unknown commands; what matters here
	 * is who was asked and with what. */
	agentctl("push", "a1", "--from", "h1", "--to", "h2", "--strong", NULL);
	cr_assert_str_eq(fakes[0].last_cmd, "push");
	cr_assert_eq(agd_json_parse(fakes[0].last_body, strlen(fakes[0].last_body), &doc, NULL), 0);
	cr_assert_eq(agd_json_get_str(doc, agd_json_root(doc), "to", &to), 0);
	cr_assert_str_eq(to, "h2");
	agd_json_destroy(&doc);

	agentctl("pull", "a1", "--from", "h1", "--to", "h2", NULL);
	cr_assert_str_eq(fakes[1].last_cmd, "pull");
	cr_assert_eq(agd_json_parse(fakes[1].last_body, strlen(fakes[1].last_body), &doc, NULL), 0);
	cr_assert_eq(agd_json_get_str(doc, agd_json_root(doc), "from", &from), 0);
	cr_assert_str_eq(from, "h1");
	agd_json_destroy(&doc);
}
