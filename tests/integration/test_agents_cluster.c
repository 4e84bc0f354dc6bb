/*
 * test_agents_cluster.c: the example agents of agents/ on a real
 * three-host loopback cluster (scripts/cluster), each doing what its header
 * comment promises: hello greets from every host and starts again after a
 * weak push; counter's one count goes on across every host; tour comes home
 * with every host's value and the action chosen per hop; mover's file
 * follows it; replicas answer one combined call from three hosts; balancer's
 * jobs are pulled by workers on the idle hosts.
 *
 * These need the whole platform (migration, clone, resources, exported
 * methods); each test says which part failed when one is missing.
 */
#include "test_cli_support.h"

static void setup(void)
{
	clu_start(3);
	clu_introduce();
}

TestSuite(agents_cluster, .init = setup, .fini = clu_stop, .timeout = 180);

Test(agents_cluster, hello_greets_from_every_host_and_answers_a_message)
{
	const char *seg = clu_sign("hello");
	char ids[3][64];

	for (int i = 0; i < 3; i++) {
		char host[8];
		snprintf(host, sizeof host, "h%d", i + 1);
		snprintf(ids[i], sizeof ids[i], "%s", clu_run(seg, host, NULL));
	}
	for (int i = 0; i < 3; i++) {
		char want[64];
		snprintf(want, sizeof want, "hello from h%d", i + 1);
		cr_assert(clu_logs_wait(ids[i], want, 5000), "%s: %s", ids[i], clu_out);
	}
	cr_assert_eq(ctl("send", ids[2], "ping", NULL), 0, "%s", clu_out);
	cr_assert(clu_logs_wait(ids[2], "got ping on h3", 5000), "%s", clu_out);
}

Test(agents_cluster, hello_starts_again_on_the_target_after_a_weak_push)
{
	const char *id = clu_run(clu_sign("hello"), "h1", NULL);
	char saved[64];

	snprintf(saved, sizeof saved, "%s", id);
	cr_assert(clu_logs_wait(saved, "hello from h1", 5000), "%s", clu_out);
	cr_assert_eq(ctl("push", saved, "--to", "h2", "--weak", NULL), 0, "push --weak: %s", clu_out);
	cr_assert(clu_logs_wait(saved, "hello from h2", 10000), "no second greeting from h2: %s",
		  clu_out);
	cr_assert_eq(ctl("--json", "ps", "--all", NULL), 0);
	cr_assert(strstr(clu_out, "\"host\":\"h2\"") != NULL, "%s", clu_out);
}

Test(agents_cluster, counter_counts_on_across_every_host_and_comes_home)
{
	const char *id = clu_run(clu_sign("counter"), "h1", "{\"rounds\":2,\"linger\":10}");
	char saved[64];

	snprintf(saved, sizeof saved, "%s", id);
	/* Each host keeps the lines written there: the final one, at home,
	 * says it all (one count, six hops, the path). */
	cr_assert(clu_logs_wait(saved, "done:", 60000), "counter never finished: %s", clu_out);
	cr_assert(strstr(clu_out, "done: count=6 hops=6 path=h1>h2>h3>h1>h2>h3>h1") != NULL, "%s",
		  clu_out);
	cr_assert_eq(ctl("--json", "ps", "--all", NULL), 0);
	cr_assert(strstr(clu_out, "\"epoch\":6") != NULL, "six moves, six epochs: %s", clu_out);
}

/* Its exported count, through agentctl call (issue 8, "Access
 * transparency"). */
Test(agents_cluster, counter_answers_its_count_through_call)
{
	const char *id = clu_run(clu_sign("counter"), "h1", "{\"rounds\":2,\"linger\":10}");
	char saved[64];

	snprintf(saved, sizeof saved, "%s", id);
	cr_assert(clu_logs_wait(saved, "done:", 60000), "counter never finished: %s", clu_out);
	/* Its exported count, asked from outside while it lingers at home. */
	cr_assert_eq(ctl("call", saved, "count", NULL), 0, "call: %s", clu_out);
	cr_assert_eq(atoi(clu_out), 6, "%s", clu_out);
}

Test(agents_cluster, tour_comes_home_with_each_hosts_value_and_the_action_per_hop)
{
	const char *id = clu_run(clu_sign("tour"), "h1", "{\"linger\":10}");
	char saved[64];

	snprintf(saved, sizeof saved, "%s", id);
	cr_assert(clu_logs_wait(saved, "result:", 60000), "tour never finished: %s", clu_out);
	cr_assert(strstr(clu_out, "itinerary: h1 > h2 > h3 > h1") != NULL, "%s", clu_out);
	cr_assert(strstr(clu_out, "visit 2: host=h2 binding=probe action=RB") != NULL, "%s", clu_out);
	cr_assert(strstr(clu_out, "visit 3: host=h3 binding=probe action=RB") != NULL, "%s", clu_out);
	cr_assert(strstr(clu_out, "result: h1=10 h2=20 h3=30 sum=60") != NULL, "%s", clu_out);
}

Test(agents_cluster, mover_takes_its_file_along_or_refers_back_to_it)
{
	const char *id = clu_run(clu_sign("mover"), "h1", "{\"linger\":10}");
	char saved[64];

	snprintf(saved, sizeof saved, "%s", id);
	cr_assert(clu_logs_wait(saved, "notes now", 60000), "mover never finished: %s", clu_out);
	cr_assert(strstr(clu_out, "hop 3: h3") != NULL, "the line written on h3 is in the file: %s",
		  clu_out);
	cr_assert(strstr(clu_out, "h2:MV") != NULL || strstr(clu_out, "h2:GR") != NULL, "%s", clu_out);
}

/* The replicas clone themselves onto three hosts. */
static void replicas_start(char *members, size_t len)
{
	const char *id = clu_run(clu_sign("replicas"), "h1", "{\"value\":42,\"linger\":60}");
	char saved[64];
	const char *p;
	size_t n;

	snprintf(saved, sizeof saved, "%s", id);
	cr_assert(clu_logs_wait(saved, "replicas: ", 30000), "no replicas line: %s", clu_out);
	p = strstr(clu_out, "replicas: ") + strlen("replicas: ");
	n = strspn(p, "0123456789abcdef,");
	cr_assert_lt(n, len);
	memcpy(members, p, n);
	members[n] = '\0';
	cr_assert_eq(strlen(members), 3 * 16 + 2, "three ids: %s", members);
	/* Three copies on three hosts. */
	cr_assert_eq(ctl("ps", "--all", NULL), 0);
	cr_assert(strstr(clu_out, "replicas     h2") != NULL && strstr(clu_out, "replicas     h3") != NULL,
		  "%s", clu_out);
}

Test(agents_cluster, replicas_clone_themselves_onto_three_hosts)
{
	char members[256];

	replicas_start(members, sizeof members);
}

/* One call sent to every replica, the answers combined (issue 9). */
Test(agents_cluster, replicas_on_three_hosts_answer_one_combined_call)
{
	char members[256];

	replicas_start(members, sizeof members);
	cr_assert_eq(ctl("call", members, "get", "--combine", "majority", NULL), 0, "call: %s", clu_out);
	cr_assert_eq(atoi(clu_out), 42, "%s", clu_out);
}

Test(agents_cluster, balancer_jobs_are_pulled_by_workers_on_the_idle_hosts)
{
	const char *id = clu_run(clu_sign("balancer"), "h1", "{\"jobs\":8,\"size\":5000,\"linger\":2}");
	char saved[64];

	snprintf(saved, sizeof saved, "%s", id);
	cr_assert(clu_logs_wait(saved, "pool: ", 60000), "pool never finished: %s", clu_out);
	cr_assert(strstr(clu_out, "pool: 8/8 jobs done") != NULL, "%s", clu_out);
	cr_assert(strstr(clu_out, "h2=") != NULL || strstr(clu_out, "h3=") != NULL,
		  "no job done on an idle host: %s", clu_out);
}
