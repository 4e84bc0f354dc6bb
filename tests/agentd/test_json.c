/*
 * test_json.c: the control channel's JSON writer escapes anything into valid
 * JSON, and the parser reads what the writer writes, refuses what is not
 * JSON, tells truncated input from malformed, and caps nesting.
 */
#include "agd_json.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

TestSuite(agd_json, .timeout = 20);

Test(agd_json, writer_escapes_quotes_controls_and_bad_utf8)
{
	struct agd_jw w;
	char *s;
	const char raw[] = "a\"b\\c\n\x01\xff\xc3\xa9";

	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	agd_jw_key(&w, "k");
	agd_jw_strn(&w, raw, sizeof raw - 1);
	agd_jw_key(&w, "n");
	agd_jw_int(&w, -42);
	agd_jw_key(&w, "a");
	agd_jw_arr_begin(&w);
	agd_jw_bool(&w, 1);
	agd_jw_null(&w);
	agd_jw_num(&w, 0.5);
	agd_jw_arr_end(&w);
	agd_jw_obj_end(&w);
	s = agd_jw_take(&w, NULL);
	cr_assert_not_null(s);
	cr_assert_str_eq(s, "{\"k\":\"a\\\"b\\\\c\\n\\u0001\\u00ff\xc3\xa9\",\"n\":-42,\"a\":[true,null,0.5]}");
	free(s);
}

Test(agd_json, parser_reads_what_the_writer_wrote)
{
	struct agd_jw w;
	struct agd_json *doc = NULL;
	const struct agd_json_val *root, *arr, *it;
	const char *str = NULL;
	long long n = 0;
	int b = 0;
	size_t len;
	char *s;

	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	agd_jw_key(&w, "name");
	agd_jw_strn(&w, "x\0y\n", 4);
	agd_jw_key(&w, "n");
	agd_jw_int(&w, 1234567890123LL);
	agd_jw_key(&w, "list");
	agd_jw_arr_begin(&w);
	for (int i = 0; i < 5; i++)
		agd_jw_int(&w, i);
	agd_jw_arr_end(&w);
	agd_jw_key(&w, "ok");
	agd_jw_bool(&w, 1);
	agd_jw_obj_end(&w);
	s = agd_jw_take(&w, &len);
	cr_assert_eq(agd_json_parse(s, len, &doc, NULL), 0);
	root = agd_json_root(doc);
	cr_assert_eq(root->type, AGD_JSON_OBJ);
	cr_assert_eq(root->count, 4);
	cr_assert_eq(agd_json_get_str(doc, root, "name", &str), 0);
	cr_assert_eq(agd_json_get(doc, root, "name")->str_len, 4);
	cr_assert_eq(memcmp(str, "x\0y\n", 4), 0);
	cr_assert_eq(agd_json_get_int(doc, root, "n", &n), 0);
	cr_assert_eq(n, 1234567890123LL);
	cr_assert_eq(agd_json_get_bool(doc, root, "ok", &b), 0);
	cr_assert_eq(b, 1);
	cr_assert_eq(agd_json_get_int(doc, root, "name", &n), -1, "a string is not an int");
	arr = agd_json_get(doc, root, "list");
	cr_assert_eq(arr->count, 5);
	n = 0;
	for (it = agd_json_first(doc, arr); it; it = agd_json_next(doc, it))
		cr_assert_eq(it->num, (double)n++);
	cr_assert_eq(n, 5);
	agd_json_destroy(&doc);
	cr_assert_null(doc);
	free(s);
}

Test(agd_json, decodes_escapes_and_surrogate_pairs)
{
	const char *t = "[\"\\u00e9\\ud83d\\ude00\\/\\t\"]";
	struct agd_json *doc = NULL;
	const struct agd_json_val *v;

	cr_assert_eq(agd_json_parse(t, strlen(t), &doc, NULL), 0);
	v = agd_json_first(doc, agd_json_root(doc));
	cr_assert_str_eq(v->str, "\xc3\xa9\xf0\x9f\x98\x80/\t");
	agd_json_destroy(&doc);
}

Test(agd_json, every_truncation_is_refused_as_truncated)
{
	const char *t = "{\"a\":[1,2.5e3,-0.25,\"s\\u0041\",true,false,null],\"b\":{\"c\":{}}}";
	size_t n = strlen(t);
	struct agd_json *doc = NULL;

	cr_assert_eq(agd_json_parse(t, n, &doc, NULL), 0);
	agd_json_destroy(&doc);
	for (size_t i = 0; i < n; i++) {
		int rc = agd_json_parse(t, i, &doc, NULL);

		/* A prefix that is a complete number is not JSON of its own here,
		 * since every prefix starts with '{'. */
		cr_assert_eq(rc, AGD_JSON_ERR_TRUNCATED, "prefix %zu gave %d", i, rc);
		cr_assert_null(doc);
	}
}

Test(agd_json, malformed_text_is_a_syntax_error)
{
	const char *bad[] = { "{a:1}", "[1,]", "[1 2]", "{\"a\" 1}", "01", "[tru]", "\"\x01\"",
			      "[\"\\x\"]", "{\"a\":1}}", "-a", "[\"\\udc00\"]", "\"\xff\"", "1.e5" };

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct agd_json *doc = NULL;
		int rc = agd_json_parse(bad[i], strlen(bad[i]), &doc, NULL);

		cr_assert(rc == AGD_JSON_ERR_SYNTAX, "%s gave %d", bad[i], rc);
		cr_assert_null(doc);
	}
}

Test(agd_json, nesting_past_the_cap_is_refused_without_recursion)
{
	size_t n = 100000;
	char *t = malloc(n);
	struct agd_json *doc = NULL;

	memset(t, '[', n);
	cr_assert_eq(agd_json_parse(t, n, &doc, NULL), AGD_JSON_ERR_DEPTH);
	memset(t, '[', AGD_JSON_DEPTH_MAX);
	memset(t + AGD_JSON_DEPTH_MAX, ']', AGD_JSON_DEPTH_MAX);
	cr_assert_eq(agd_json_parse(t, 2 * AGD_JSON_DEPTH_MAX, &doc, NULL), 0);
	agd_json_destroy(&doc);
	free(t);
}

Test(agd_json, random_mutations_never_crash)
{
	const char *t = "{\"cmd\":\"run\",\"args\":[1,{\"x\":\"\\u00e9\"},null],\"n\":-3.5e-2}";
	size_t n = strlen(t);
	char buf[128];
	unsigned seed = 12345;

	for (int i = 0; i < 20000; i++) {
		struct agd_json *doc = NULL;

		memcpy(buf, t, n);
		for (int k = 0; k < 3; k++) {
			seed = seed * 1103515245u + 12345u;
			buf[(seed >> 8) % n] = (char)(seed >> 16);
		}
		if (agd_json_parse(buf, n, &doc, NULL) == 0)
			cr_assert_not_null(agd_json_root(doc));
		agd_json_destroy(&doc);
	}
}
