/*
 * test_cluster.c: the cluster file parser (cli/cli_cluster.c): the format
 * of docs/cli.md, its errors with line numbers, and hostile input.
 */
#include "cli_cluster.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TestSuite(cli_cluster, .timeout = 30);

static struct cli_cluster *parse_ok(const char *text)
{
	struct cli_cluster *c = NULL;
	int line = -1;
	int rc = cli_cluster_parse(text, strlen(text), &c, &line);

	cr_assert_eq(rc, 0, "parse failed: %s (line %d)", cli_cluster_strerror(rc), line);
	cr_assert_eq(line, 0);
	cr_assert_not_null(c);
	return c;
}

static void parse_fails(const char *text, int want_rc, int want_line)
{
	struct cli_cluster *c = (struct cli_cluster *)1;
	int line = -1;
	int rc = cli_cluster_parse(text, strlen(text), &c, &line);

	cr_assert_eq(rc, want_rc, "for %s: got %d (%s)", text, rc, cli_cluster_strerror(rc));
	cr_assert_eq(line, want_line, "for %s: line %d", text, line);
	cr_assert_null(c);
}

Test(cli_cluster, hosts_keep_file_order_with_optional_peer_endpoints)
{
	struct cli_cluster *c = parse_ok("# a comment\n"
					 "\n"
					 "h1 tcp://127.0.0.1:7401 tcp://127.0.0.1:7501\n"
					 "  h2\ttcp://127.0.0.1:7402   # trailing comment\n"
					 "h3 ipc:///tmp/h3.ctl\r\n");

	cr_assert_eq(c->n, 3);
	cr_assert_str_eq(c->hosts[0].name, "h1");
	cr_assert_str_eq(c->hosts[0].endpoint, "tcp://127.0.0.1:7401");
	cr_assert_str_eq(c->hosts[0].peer, "tcp://127.0.0.1:7501");
	cr_assert_str_eq(c->hosts[1].name, "h2");
	cr_assert_str_eq(c->hosts[1].endpoint, "tcp://127.0.0.1:7402");
	cr_assert_str_eq(c->hosts[1].peer, "");
	cr_assert_str_eq(c->hosts[2].endpoint, "ipc:///tmp/h3.ctl");
	cr_assert_eq(cli_cluster_find(c, "h2"), &c->hosts[1]);
	cr_assert_null(cli_cluster_find(c, "h4"));
	cli_cluster_destroy(&c);
	cr_assert_null(c);
}

Test(cli_cluster, last_line_needs_no_newline_and_empty_file_is_empty_cluster)
{
	struct cli_cluster *c = parse_ok("h1 tcp://a:1");

	cr_assert_eq(c->n, 1);
	cli_cluster_destroy(&c);
	c = parse_ok("");
	cr_assert_eq(c->n, 0);
	cli_cluster_destroy(&c);
	c = parse_ok("# only comments\n\n   \n");
	cr_assert_eq(c->n, 0);
	cli_cluster_destroy(&c);
}

Test(cli_cluster, errors_name_their_line)
{
	parse_fails("h1 tcp://a:1\nh2\n", CLI_CLUSTER_ERR_SYNTAX, 2);
	parse_fails("h1 tcp://a:1 tcp://b:2 extra\n", CLI_CLUSTER_ERR_SYNTAX, 1);
	parse_fails("\n\nh/1 tcp://a:1\n", CLI_CLUSTER_ERR_NAME, 3);
	parse_fails("h1 127.0.0.1:7400\n", CLI_CLUSTER_ERR_ENDPOINT, 1);
	parse_fails("h1 tcp://\n", CLI_CLUSTER_ERR_ENDPOINT, 1);
	parse_fails("h1 ://x\n", CLI_CLUSTER_ERR_ENDPOINT, 1);
	parse_fails("h1 tcp://a:1 nope\n", CLI_CLUSTER_ERR_ENDPOINT, 1);
	parse_fails("h1 tcp://a:1\nh1 tcp://b:2\n", CLI_CLUSTER_ERR_DUPLICATE, 2);
}

Test(cli_cluster, names_are_checked_for_characters_and_length)
{
	char name[80];

	cr_assert(cli_name_valid("h-1.example_2"));
	cr_assert_not(cli_name_valid(""));
	cr_assert_not(cli_name_valid("a b"));
	cr_assert_not(cli_name_valid("h\xc3\xa9"));
	memset(name, 'a', 63);
	name[63] = '\0';
	cr_assert(cli_name_valid(name));
	name[63] = 'a';
	name[64] = '\0';
	cr_assert_not(cli_name_valid(name));
}

Test(cli_cluster, a_nul_byte_inside_a_line_is_refused)
{
	static const char text[] = "h1 tcp://a:1\0 h2 tcp://b:2\n";
	struct cli_cluster *c = NULL;
	int line = 0;

	cr_assert_eq(cli_cluster_parse(text, sizeof text - 1, &c, &line), CLI_CLUSTER_ERR_SYNTAX);
	cr_assert_eq(line, 1);
	cr_assert_null(c);
}

Test(cli_cluster, overlong_lines_and_too_many_hosts_are_refused)
{
	size_t n = 5000, len = 0;
	char *big = malloc(n + 32);
	char *many;
	struct cli_cluster *c = NULL;
	int line = 0;

	cr_assert_not_null(big);
	memcpy(big, "h1 tcp://", 9);
	memset(big + 9, 'a', n);
	memcpy(big + 9 + n, ":1\n", 4);
	cr_assert_eq(cli_cluster_parse(big, strlen(big), &c, &line), CLI_CLUSTER_ERR_LIMIT);
	cr_assert_eq(line, 1);
	free(big);

	many = malloc((CLI_CLUSTER_MAX_HOSTS + 1) * 32);
	cr_assert_not_null(many);
	for (int i = 0; i <= CLI_CLUSTER_MAX_HOSTS; i++)
		len += (size_t)sprintf(many + len, "h%d tcp://x:%d\n", i, i + 1);
	cr_assert_eq(cli_cluster_parse(many, len, &c, &line), CLI_CLUSTER_ERR_LIMIT);
	cr_assert_eq(line, CLI_CLUSTER_MAX_HOSTS + 1);
	cr_assert_null(c);
	free(many);
}

Test(cli_cluster, every_truncation_of_a_valid_file_parses_or_fails_cleanly)
{
	static const char text[] = "# c\nh1 tcp://127.0.0.1:7401 tcp://127.0.0.1:7501\nh2 ipc:///x\n";

	for (size_t cut = 0; cut <= sizeof text - 1; cut++) {
		struct cli_cluster *c = NULL;
		int line = 0, rc = cli_cluster_parse(text, cut, &c, &line);

		if (rc == 0) {
			cr_assert_not_null(c);
			cr_assert_leq(c->n, 2);
		} else {
			cr_assert_null(c);
			cr_assert_gt(line, 0);
		}
		cli_cluster_destroy(&c);
	}
}

Test(cli_cluster, load_reads_a_file_and_reports_a_missing_one)
{
	char path[] = "/tmp/cli-cluster-XXXXXX";
	int fd = mkstemp(path);
	struct cli_cluster *c = NULL;
	int line = 0;

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "a tcp://x:1\nb tcp://y:2\n", 24), 24);
	close(fd);
	cr_assert_eq(cli_cluster_load(path, &c, &line), 0);
	cr_assert_eq(c->n, 2);
	cli_cluster_destroy(&c);
	unlink(path);
	cr_assert_eq(cli_cluster_load(path, &c, &line), CLI_CLUSTER_ERR_IO);
	cr_assert_null(c);
}
