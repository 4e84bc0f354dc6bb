/*
 * test_op.c: the op codec (docs/resources.md, "Op encoding"): golden bytes,
 * round trips, truncation at every offset, every header check, and random
 * mutation that never crashes and never decodes to something that does not
 * re-encode to the same bytes.
 */
#include "res_op.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

TestSuite(res_op, .timeout = 30);

Test(res_op, encoding_matches_the_documented_bytes)
{
	struct res_msg m = {.type = RES_MSG_ARGS, .n = 2};
	static const uint8_t golden[] = {'R', 1, 'A', 2, 0, 0, 0, 1, 'k', 0, 0, 0, 2, 'v', 'w'};
	void *buf;
	size_t len;

	m.f[0] = (struct res_field){"k", 1};
	m.f[1] = (struct res_field){"vw", 2};
	cr_assert_eq(res_msg_size(&m), sizeof golden);
	cr_assert_eq(res_msg_encode(&m, &buf, &len), 0);
	cr_assert_eq(len, sizeof golden);
	cr_assert_eq(memcmp(buf, golden, len), 0);
	free(buf);
}

Test(res_op, error_reply_matches_the_documented_bytes)
{
	static const uint8_t golden[] = {'R', 1, 'E', 3, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xf2,
					 0, 0, 0, 1, 'm', 0, 0, 0, 2, 'h', '2'};
	void *buf;
	size_t len;
	struct res_msg m;

	cr_assert_eq(res_reply_error(RES_ERR_MOVED, "m", "h2", &buf, &len), 0);
	cr_assert_eq(len, sizeof golden);
	cr_assert_eq(memcmp(buf, golden, len), 0);
	cr_assert_eq(res_msg_decode(buf, len, &m), 0);
	cr_assert_eq(res_msg_code(&m), RES_ERR_MOVED);
	free(buf);
}

Test(res_op, messages_round_trip_with_every_field_count)
{
	for (unsigned n = 0; n <= RES_OP_MAX_FIELDS; n++) {
		struct res_msg m = {.type = RES_MSG_OK, .n = (uint8_t)n}, back;
		static const char *const text[] = {"", "a", "bc", "\0\1\2"};
		void *buf;
		size_t len;

		for (unsigned i = 0; i < n; i++)
			m.f[i] = (struct res_field){text[i], i == 3 ? 3 : strlen(text[i])};
		cr_assert_eq(res_msg_encode(&m, &buf, &len), 0);
		cr_assert_eq(res_msg_decode(buf, len, &back), 0);
		cr_assert_eq(back.type, RES_MSG_OK);
		cr_assert_eq(back.n, n);
		for (unsigned i = 0; i < n; i++) {
			cr_assert_eq(back.f[i].len, m.f[i].len);
			cr_assert_eq(memcmp(back.f[i].p, m.f[i].p, m.f[i].len), 0);
		}
		free(buf);
	}
}

Test(res_op, every_prefix_is_truncated_not_malformed)
{
	struct res_msg m = {.type = RES_MSG_ARGS, .n = 3}, back;
	void *buf;
	size_t len;

	m.f[0] = (struct res_field){"key", 3};
	m.f[1] = (struct res_field){"", 0};
	m.f[2] = (struct res_field){"value", 5};
	cr_assert_eq(res_msg_encode(&m, &buf, &len), 0);
	for (size_t cut = 0; cut < len; cut++)
		cr_assert_eq(res_msg_decode(buf, cut, &back), RES_ERR_TRUNCATED, "cut at %zu", cut);
	cr_assert_eq(res_msg_decode(buf, len, &back), 0);
	free(buf);
}

Test(res_op, header_checks_come_first)
{
	struct res_msg m;
	uint8_t b[8] = {'R', 1, 'A', 0};

	cr_assert_eq(res_msg_decode(b, 4, &m), 0);
	b[0] = 'X';
	cr_assert_eq(res_msg_decode(b, 1, &m), RES_ERR_MALFORMED, "bad signature at once");
	b[0] = 'R';
	b[1] = 2;
	cr_assert_eq(res_msg_decode(b, 2, &m), RES_ERR_VERSION, "other version at once");
	b[1] = 1;
	b[2] = 'Q';
	cr_assert_eq(res_msg_decode(b, 4, &m), RES_ERR_MALFORMED);
	b[2] = 'A';
	b[3] = RES_OP_MAX_FIELDS + 1;
	cr_assert_eq(res_msg_decode(b, 4, &m), RES_ERR_LIMIT);
	b[3] = 0;
	cr_assert_eq(res_msg_decode(b, 5, &m), RES_ERR_MALFORMED, "trailing bytes");
	/* A field length beyond the cap is refused before anything is read. */
	{
		uint8_t big[8] = {'R', 1, 'A', 1, 0x7f, 0xff, 0xff, 0xff};

		cr_assert_eq(res_msg_decode(big, sizeof big, &m), RES_ERR_LIMIT);
	}
	/* Error replies must carry a code in range and a message. */
	{
		uint8_t e1[] = {'R', 1, 'E', 1, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff};
		uint8_t e2[] = {'R', 1, 'E', 2, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0};
		uint8_t e3[] = {'R', 1, 'E', 2, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0, 0, 0, 0};
		uint8_t e4[] = {'R', 1, 'E', 2, 0, 0, 0, 4, 0x80, 0, 0, 0, 0, 0, 0, 0};

		cr_assert_eq(res_msg_decode(e1, sizeof e1, &m), RES_ERR_MALFORMED);
		cr_assert_eq(res_msg_decode(e2, sizeof e2, &m), RES_ERR_MALFORMED, "positive code");
		cr_assert_eq(res_msg_decode(e3, sizeof e3, &m), RES_ERR_MALFORMED);
		cr_assert_eq(res_msg_decode(e4, sizeof e4, &m), RES_ERR_MALFORMED, "code out of range");
	}
}

Test(res_op, oversized_messages_are_not_encoded)
{
	struct res_msg m = {.type = RES_MSG_OK, .n = 1};
	void *buf = (void *)1;
	size_t len = 1;

	m.f[0] = (struct res_field){"x", RES_OP_MAX_BYTES};
	cr_assert_eq(res_msg_size(&m), 0);
	cr_assert_eq(res_msg_encode(&m, &buf, &len), RES_ERR_LIMIT);
	cr_assert_null(buf);
	cr_assert_eq(len, 0);
	m.n = RES_OP_MAX_FIELDS + 1;
	m.f[0].len = 1;
	cr_assert_eq(res_msg_size(&m), 0);
}

/* A small deterministic generator, so that failures reproduce. */
static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

Test(res_op, random_mutations_never_crash_and_decode_canonically)
{
	struct res_msg m = {.type = RES_MSG_ERR, .n = 3}, back;
	uint8_t code[4] = {0xff, 0xff, 0xff, 0xf4};
	uint32_t seed = 0x12345678u;
	void *orig;
	size_t len;

	m.f[0] = (struct res_field){code, 4};
	m.f[1] = (struct res_field){"home host down", 14};
	m.f[2] = (struct res_field){"h3", 2};
	cr_assert_eq(res_msg_encode(&m, &orig, &len), 0);
	for (int iter = 0; iter < 20000; iter++) {
		uint8_t buf[64];
		size_t n = len;
		int flips = 1 + (int)(rnd(&seed) % 4), rc;

		memcpy(buf, orig, len);
		for (int i = 0; i < flips; i++)
			buf[rnd(&seed) % len] = (uint8_t)rnd(&seed);
		if (rnd(&seed) % 8 == 0)
			n = rnd(&seed) % (len + 1);
		rc = res_msg_decode(buf, n, &back);
		if (rc == 0) {
			void *again;
			size_t alen;

			/* Whatever decodes re-encodes to the very same bytes. */
			cr_assert_eq(res_msg_encode(&back, &again, &alen), 0);
			cr_assert_eq(alen, n);
			cr_assert_eq(memcmp(again, buf, n), 0);
			free(again);
		} else {
			cr_assert(rc == RES_ERR_TRUNCATED || rc == RES_ERR_MALFORMED ||
				  rc == RES_ERR_VERSION || rc == RES_ERR_LIMIT, "rc %d", rc);
		}
	}
	free(orig);
}

static int collect(void *ud, const void *k, size_t len)
{
	char *out = ud;

	strncat(out, k, len);
	strcat(out, "|");
	return 0;
}

Test(res_op, keys_lists_decode_and_truncate_cleanly)
{
	static const uint8_t list[] = {0, 0, 0, 2, 0, 0, 0, 1, 'a', 0, 0, 0, 2, 'b', 'c'};
	char out[64] = "";
	struct res_field f = {list, sizeof list};

	cr_assert_eq(res_keys_each(&f, collect, out), 0);
	cr_assert_str_eq(out, "a|bc|");
	for (size_t cut = 0; cut < sizeof list; cut++) {
		struct res_field g = {list, cut};

		out[0] = '\0';
		cr_assert_eq(res_keys_each(&g, collect, out), RES_ERR_TRUNCATED, "cut %zu", cut);
	}
	{
		uint8_t extra[sizeof list + 1];
		struct res_field g = {extra, sizeof extra};

		memcpy(extra, list, sizeof list);
		extra[sizeof list] = 'x';
		out[0] = '\0';
		cr_assert_eq(res_keys_each(&g, collect, out), RES_ERR_MALFORMED);
	}
	{
		static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff};
		struct res_field g = {huge, sizeof huge};

		cr_assert_eq(res_keys_each(&g, collect, out), RES_ERR_LIMIT);
	}
}

Test(res_op, names_and_errors_are_total)
{
	for (int c = RES_ERR_MIN - 2; c <= 1; c++) {
		cr_assert_not_null(res_strerror(c));
		cr_assert_not_null(res_errname(c));
	}
	cr_assert_str_eq(res_errname(RES_ERR_UNREACHABLE), "unreachable");
	cr_assert_str_eq(res_strerror(1), "unknown error");
}
