/*
 * test_args.c: agentctl's option parsing (cli/cli_args.c): common options
 * anywhere, --name=value, flags, positionals, "--", and errors that are
 * usage errors rather than crashes.
 */
#include "cli.h"
#include "cli_args.h"

#include <criterion/criterion.h>
#include <string.h>

static struct cli_ctx ctx;

static void setup(void)
{
	memset(&ctx, 0, sizeof ctx);
	ctx.timeout_ms = 5000;
	ctx.out = stdout;
	ctx.err = NULL; /* cli_errorf keeps the message without printing */
}

TestSuite(cli_args, .init = setup, .timeout = 30);

Test(cli_args, global_options_come_before_the_command)
{
	char *argv[] = { "agentctl", "--host", "h2", "--json", "--timeout=250", "-C", "c.txt", "ps", "--all", NULL };
	int cmd = 0, help = 0;

	cr_assert_eq(cli_parse_global(&ctx, 9, argv, &cmd, &help), CLI_EXIT_OK);
	cr_assert_eq(cmd, 7);
	cr_assert_str_eq(ctx.host, "h2");
	cr_assert_str_eq(ctx.cluster, "c.txt");
	cr_assert(ctx.json);
	cr_assert_eq(ctx.timeout_ms, 250);
	cr_assert_not(help);
}

Test(cli_args, unknown_global_option_is_a_usage_error)
{
	char *argv[] = { "agentctl", "--frobnicate", "ps", NULL };
	int cmd = 0, help = 0;

	cr_assert_eq(cli_parse_global(&ctx, 3, argv, &cmd, &help), CLI_EXIT_USAGE);
	cr_assert(strstr(ctx.errmsg, "--frobnicate") != NULL, "message: %s", ctx.errmsg);
}

Test(cli_args, bad_or_missing_values_are_usage_errors)
{
	char *a1[] = { "agentctl", "--timeout", "soon", "ps", NULL };
	char *a2[] = { "agentctl", "--timeout", "0", "ps", NULL };
	char *a3[] = { "agentctl", "--host", NULL };
	int cmd, help;

	cr_assert_eq(cli_parse_global(&ctx, 4, a1, &cmd, &help), CLI_EXIT_USAGE);
	cr_assert_eq(cli_parse_global(&ctx, 4, a2, &cmd, &help), CLI_EXIT_USAGE);
	cr_assert_eq(cli_parse_global(&ctx, 2, a3, &cmd, &help), CLI_EXIT_USAGE);
	cr_assert(strstr(ctx.errmsg, "needs a value") != NULL, "message: %s", ctx.errmsg);
}

Test(cli_args, command_options_flags_and_positionals_mix_in_any_order)
{
	const char *to = NULL, *from = NULL;
	int weak = 0, strong = 0, npos = 0;
	const struct cli_opt opts[] = {
		{ "--to", "-t", &to, NULL },
		{ "--from", NULL, &from, NULL },
		{ "--weak", NULL, NULL, &weak },
		{ "--strong", NULL, NULL, &strong },
		{ NULL, NULL, NULL, NULL },
	};
	char *argv[] = { "push", "--weak", "a1b2", "-t", "h2", "--json", "--from=h1", "--host", "h1", NULL };
	char *pos[2];

	cr_assert_eq(cli_parse_opts(&ctx, 9, argv, opts, pos, 2, &npos), CLI_EXIT_OK);
	cr_assert_eq(npos, 1);
	cr_assert_str_eq(pos[0], "a1b2");
	cr_assert_str_eq(to, "h2");
	cr_assert_str_eq(from, "h1");
	cr_assert(weak);
	cr_assert_not(strong);
	cr_assert(ctx.json, "common options are accepted after the command");
	cr_assert_str_eq(ctx.host, "h1");
}

Test(cli_args, double_dash_makes_the_rest_positional)
{
	int npos = 0;
	char *argv[] = { "send", "--", "a1", "--json", NULL };
	char *pos[2];

	cr_assert_eq(cli_parse_opts(&ctx, 4, argv, NULL, pos, 2, &npos), CLI_EXIT_OK);
	cr_assert_eq(npos, 2);
	cr_assert_str_eq(pos[1], "--json");
	cr_assert_not(ctx.json);
}

Test(cli_args, negative_numbers_after_double_dash_and_lone_dash_are_positional)
{
	int npos = 0;
	char *argv[] = { "call", "a1", "add", "-", "--", "-3", NULL };
	char *pos[4];

	cr_assert_eq(cli_parse_opts(&ctx, 6, argv, NULL, pos, 4, &npos), CLI_EXIT_OK);
	cr_assert_eq(npos, 4);
	cr_assert_str_eq(pos[2], "-");
	cr_assert_str_eq(pos[3], "-3");
}

Test(cli_args, too_many_positionals_unknown_options_and_flag_values_are_refused)
{
	int flag = 0, npos = 0;
	const struct cli_opt opts[] = { { "--all", "-a", NULL, &flag }, { NULL, NULL, NULL, NULL } };
	char *a1[] = { "ps", "extra", NULL };
	char *a2[] = { "ps", "--bogus", NULL };
	char *a3[] = { "ps", "--all=yes", NULL };
	char *a4[] = { "ps", "--allx", NULL };

	cr_assert_eq(cli_parse_opts(&ctx, 2, a1, opts, NULL, 0, &npos), CLI_EXIT_USAGE);
	cr_assert_eq(cli_parse_opts(&ctx, 2, a2, opts, NULL, 0, &npos), CLI_EXIT_USAGE);
	cr_assert_eq(cli_parse_opts(&ctx, 2, a3, opts, NULL, 0, &npos), CLI_EXIT_USAGE);
	cr_assert_eq(cli_parse_opts(&ctx, 2, a4, opts, NULL, 0, &npos), CLI_EXIT_USAGE,
		     "a prefix of an option is not the option");
	cr_assert_not(flag);
}

Test(cli_args, uint_parser_takes_whole_numbers_in_range_only)
{
	long v = -1;

	cr_assert_eq(cli_parse_uint("42", 100, &v), 0);
	cr_assert_eq(v, 42);
	cr_assert_eq(cli_parse_uint("101", 100, &v), -1);
	cr_assert_eq(cli_parse_uint("-1", 100, &v), -1);
	cr_assert_eq(cli_parse_uint("4x", 100, &v), -1);
	cr_assert_eq(cli_parse_uint("", 100, &v), -1);
	cr_assert_eq(cli_parse_uint("99999999999999999999999", 1L << 40, &v), -1);
	cr_assert_eq(v, 42);
}
