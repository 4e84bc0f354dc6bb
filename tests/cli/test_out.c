/*
 * test_out.c: agentctl's output helpers (cli/cli_out.c): sizes for people,
 * table cells from reply fields (control characters an agent put in a
 * string never reach the terminal), and JSON copied back out unchanged.
 */
#include "cli.h"
#include "cli_out.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

TestSuite(cli_out, .timeout = 30);

Test(cli_out, sizes_are_shown_in_binary_units)
{
	char b[32];

	cr_assert_str_eq(cli_fmt_bytes(0, b, sizeof b), "0 B");
	cr_assert_str_eq(cli_fmt_bytes(1023, b, sizeof b), "1023 B");
	cr_assert_str_eq(cli_fmt_bytes(1024, b, sizeof b), "1.0 KiB");
	cr_assert_str_eq(cli_fmt_bytes(17.2 * 1024, b, sizeof b), "17.2 KiB");
	cr_assert_str_eq(cli_fmt_bytes(3.5 * 1024 * 1024, b, sizeof b), "3.5 MiB");
	cr_assert_str_eq(cli_fmt_bytes(5.0 * 1024 * 1024 * 1024, b, sizeof b), "5.0 GiB");
}

Test(cli_out, cells_render_each_type_and_neutralise_control_characters)
{
	static const char text[] =
		"{\"s\":\"run\\u001b[2Jning\\nx\",\"i\":42,\"f\":1.5,\"t\":true,\"n\":null,\"a\":[1],\"o\":{}}";
	struct agd_json *doc = NULL;
	const struct agd_json_val *r;
	char c[64];

	cr_assert_eq(agd_json_parse(text, strlen(text), &doc, NULL), 0);
	r = agd_json_root(doc);
	cr_assert_str_eq(cli_cell(doc, r, "s", c, sizeof c), "run?[2Jning?x");
	cr_assert_str_eq(cli_cell(doc, r, "i", c, sizeof c), "42");
	cr_assert_str_eq(cli_cell(doc, r, "f", c, sizeof c), "1.5");
	cr_assert_str_eq(cli_cell(doc, r, "t", c, sizeof c), "yes");
	cr_assert_str_eq(cli_cell(doc, r, "n", c, sizeof c), "-");
	cr_assert_str_eq(cli_cell(doc, r, "missing", c, sizeof c), "-");
	cr_assert_str_eq(cli_cell(doc, r, "a", c, sizeof c), "[...]");
	cr_assert_str_eq(cli_cell(doc, r, "o", c, sizeof c), "{...}");
	agd_json_destroy(&doc);
}

Test(cli_out, json_copies_back_to_equal_text)
{
	static const char text[] =
		"{\"a\":[1,2.5,\"x\",true,false,null,{\"b\":{\"c\":[]}}],\"big\":123456789012,\"neg\":-7}";
	struct agd_json *doc = NULL;
	struct agd_jw w;
	char *out;

	cr_assert_eq(agd_json_parse(text, strlen(text), &doc, NULL), 0);
	agd_jw_init(&w);
	cli_json_copy(&w, doc, agd_json_root(doc));
	out = agd_jw_take(&w, NULL);
	cr_assert_not_null(out);
	cr_assert_str_eq(out, text);
	free(out);
	agd_json_destroy(&doc);
}

Test(cli_out, errors_are_remembered_for_json_output_and_progress_stays_off_without_a_tty)
{
	struct cli_ctx ctx;

	memset(&ctx, 0, sizeof ctx);
	ctx.err = NULL;
	cli_errorf(&ctx, "host %s did not answer", "h3");
	cr_assert_str_eq(ctx.errmsg, "host h3 did not answer");
	ctx.err = tmpfile();
	cr_assert_not_null(ctx.err);
	cr_assert_not(cli_progress_wanted(&ctx, 100u << 20), "a file is not a terminal");
	fclose(ctx.err);
}
