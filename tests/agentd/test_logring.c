/*
 * test_logring.c: an agent's log ring and its encoded form, the log part
 * that travels in TRANSFER blob 3 and sits in the store (agd_logring.h,
 * docs/protocol.md "The log part"): what goes in comes out (time, host,
 * text, order), the ring keeps the newest lines, and hostile bytes (every
 * truncation, every single-byte change, over-cap counts and lengths) are
 * refused or decoded into a sane ring, never a crash.
 */
#include "agd_err.h"
#include "agd_json.h"
#include "agd_logring.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(agd_logring, .timeout = 60);

/* A ring of n lines "line K" logged at 1000 + K ms on host "hK%3". */
static struct agd_logring *ring_of(unsigned n)
{
	struct agd_logring *r = NULL;

	for (unsigned k = 0; k < n; k++) {
		char host[8], text[32];

		snprintf(host, sizeof host, "h%u", k % 3 + 1);
		snprintf(text, sizeof text, "line %u", k);
		cr_assert_eq(agd_logring_add(&r, 1000 + (int64_t)k, host, text, strlen(text)), 0);
	}
	return r;
}

static char *json_of(const struct agd_logring *r, unsigned max)
{
	struct agd_jw w;
	char *s;

	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	agd_logring_json(r, max, &w);
	agd_jw_obj_end(&w);
	s = agd_jw_take(&w, NULL);
	cr_assert_not_null(s);
	return s;
}

Test(agd_logring, nothing_is_allocated_until_the_first_line)
{
	struct agd_logring *r = NULL;
	uint8_t *b = (uint8_t *)"x";
	size_t len = 7;

	cr_assert_eq(agd_logring_count(r), 0);
	cr_assert_eq(agd_logring_seq(r), 0);
	cr_assert_eq(agd_logring_encode(r, &b, &len), 0);
	cr_assert_null(b, "an empty ring has no log part");
	cr_assert_eq(len, 0);
	agd_logring_destroy(&r);
}

Test(agd_logring, a_round_trip_keeps_time_host_text_and_order)
{
	struct agd_logring *r = ring_of(5), *d = NULL;
	uint8_t *b = NULL, *b2 = NULL;
	size_t len = 0, len2 = 0;
	char *a, *c;

	cr_assert_eq(agd_logring_encode(r, &b, &len), 0);
	cr_assert_not_null(b);
	cr_assert_eq(memcmp(b, "AGL\x01\x05", 5), 0, "magic, version 1, 5 lines");
	cr_assert_eq(agd_logring_decode(b, len, &d), 0);
	cr_assert_eq(agd_logring_count(d), 5);
	a = json_of(r, 0);
	c = json_of(d, 0);
	cr_assert_str_eq(c, a);
	cr_assert_not_null(strstr(a, "\"lines\":[\"line 0\",\"line 1\",\"line 2\",\"line 3\",\"line 4\"]"), "%s", a);
	cr_assert_not_null(strstr(a, "{\"t\":1000,\"host\":\"h1\",\"text\":\"line 0\"}"), "%s", a);
	cr_assert_not_null(strstr(a, "{\"t\":1004,\"host\":\"h2\",\"text\":\"line 4\"}"), "%s", a);
	/* And again: a ring survives any number of hops unchanged. */
	cr_assert_eq(agd_logring_encode(d, &b2, &len2), 0);
	cr_assert_eq(len2, len);
	cr_assert_eq(memcmp(b2, b, len), 0);
	free(a);
	free(c);
	free(b);
	free(b2);
	agd_logring_destroy(&r);
	agd_logring_destroy(&d);
	cr_assert_null(r);
}

Test(agd_logring, the_ring_keeps_the_newest_lines_and_json_the_last_asked)
{
	struct agd_logring *r = ring_of(AGD_LOGRING_LINES + 10);
	char *s;

	cr_assert_eq(agd_logring_count(r), AGD_LOGRING_LINES);
	cr_assert_eq(agd_logring_seq(r), AGD_LOGRING_LINES + 10);
	s = json_of(r, 0);
	cr_assert_null(strstr(s, "\"line 9\""), "the oldest lines went: %s", s);
	cr_assert_not_null(strstr(s, "\"lines\":[\"line 10\","), "%s", s);
	cr_assert_not_null(strstr(s, "\"line 41\"]"), "%s", s);
	free(s);
	s = json_of(r, 2);
	cr_assert_not_null(strstr(s, "\"lines\":[\"line 40\",\"line 41\"],\"entries\":[{\"t\":1040,"), "%s", s);
	free(s);
	agd_logring_destroy(&r);
}

Test(agd_logring, long_text_and_host_are_cut_and_a_nul_ends_the_text)
{
	struct agd_logring *r = NULL, *d = NULL;
	char text[AGD_LOGRING_TEXT_MAX + 100], host[AGD_LOGRING_HOST_MAX + 20];
	uint8_t *b = NULL;
	size_t len = 0;
	char *s;

	memset(text, 'x', sizeof text);
	memset(host, 'h', sizeof host - 1);
	host[sizeof host - 1] = '\0';
	cr_assert_eq(agd_logring_add(&r, 5, host, text, sizeof text), 0);
	cr_assert_eq(agd_logring_add(&r, 6, "h1", "before\0after", 12), 0);
	cr_assert_eq(agd_logring_encode(r, &b, &len), 0);
	/* header + (fixed 11 + 64 + 400) + (11 + 2 + 6) */
	cr_assert_eq(len, 5 + 11 + AGD_LOGRING_HOST_MAX + AGD_LOGRING_TEXT_MAX + 11 + 2 + 6);
	cr_assert_eq(agd_logring_decode(b, len, &d), 0);
	s = json_of(d, 0);
	cr_assert_not_null(strstr(s, "\"before\""), "%s", s);
	cr_assert_null(strstr(s, "after"), "%s", s);
	free(s);
	free(b);
	agd_logring_destroy(&r);
	agd_logring_destroy(&d);
}

Test(agd_logring, a_full_ring_of_the_longest_lines_fits_the_byte_cap)
{
	struct agd_logring *r = NULL, *d = NULL;
	char text[AGD_LOGRING_TEXT_MAX], host[AGD_LOGRING_HOST_MAX + 1];
	uint8_t *b = NULL;
	size_t len = 0;

	memset(text, 't', sizeof text);
	memset(host, 'h', sizeof host - 1);
	host[sizeof host - 1] = '\0';
	for (int k = 0; k < AGD_LOGRING_LINES; k++)
		cr_assert_eq(agd_logring_add(&r, k, host, text, sizeof text), 0);
	cr_assert_eq(agd_logring_encode(r, &b, &len), 0);
	cr_assert_leq(len, AGD_LOGRING_BYTES);
	cr_assert_eq(b[4], AGD_LOGRING_LINES, "no line dropped: they all fit");
	cr_assert_eq(agd_logring_decode(b, len, &d), 0);
	cr_assert_eq(agd_logring_count(d), AGD_LOGRING_LINES);
	free(b);
	agd_logring_destroy(&r);
	agd_logring_destroy(&d);
}

Test(agd_logring, every_truncation_is_refused)
{
	struct agd_logring *r = ring_of(7), *d = NULL;
	uint8_t *b = NULL;
	size_t len = 0;

	cr_assert_eq(agd_logring_encode(r, &b, &len), 0);
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *c = malloc(cut ? cut : 1);

		memcpy(c, b, cut);
		cr_assert_neq(agd_logring_decode(c, cut, &d), 0, "cut at %zu accepted", cut);
		cr_assert_null(d);
		free(c);
	}
	free(b);
	agd_logring_destroy(&r);
}

Test(agd_logring, extra_bytes_bad_magic_version_and_nul_bytes_are_refused)
{
	struct agd_logring *r = ring_of(2), *d = NULL;
	uint8_t *b = NULL, *c;
	size_t len = 0;

	cr_assert_eq(agd_logring_encode(r, &b, &len), 0);
	c = malloc(len + 1);
	memcpy(c, b, len);
	c[len] = 0;
	cr_assert_eq(agd_logring_decode(c, len + 1, &d), AGD_ERR_ARG, "a trailing byte");
	memcpy(c, b, len);
	c[0] = 'X';
	cr_assert_eq(agd_logring_decode(c, len, &d), AGD_ERR_ARG, "bad magic");
	memcpy(c, b, len);
	c[3] = 2;
	cr_assert_eq(agd_logring_decode(c, len, &d), AGD_ERR_ARG, "another version");
	memcpy(c, b, len);
	c[len - 1] = '\0';
	cr_assert_eq(agd_logring_decode(c, len, &d), AGD_ERR_ARG, "a NUL in a text");
	cr_assert_null(d);
	free(c);
	free(b);
	agd_logring_destroy(&r);
}

Test(agd_logring, over_cap_counts_lengths_and_sizes_are_too_big)
{
	uint8_t b[AGD_LOGRING_BYTES + 1];
	struct agd_logring *d = NULL;
	size_t n;

	memset(b, 'a', sizeof b);
	memcpy(b, "AGL\x01", 4);
	b[4] = AGD_LOGRING_LINES + 1;
	cr_assert_eq(agd_logring_decode(b, 5, &d), AGD_ERR_TOOBIG, "33 lines");
	cr_assert_eq(agd_logring_decode(b, sizeof b, &d), AGD_ERR_TOOBIG, "over 16 KiB");
	/* One line whose host says 65 bytes. */
	b[4] = 1;
	memset(b + 5, 0, 8);
	b[13] = AGD_LOGRING_HOST_MAX + 1;
	n = 14 + AGD_LOGRING_HOST_MAX + 1 + 2;
	cr_assert_eq(agd_logring_decode(b, n, &d), AGD_ERR_TOOBIG, "a 65-byte host");
	/* One line whose text says 401 bytes. */
	b[13] = 2;
	b[16] = (AGD_LOGRING_TEXT_MAX + 1) >> 8;
	b[17] = (AGD_LOGRING_TEXT_MAX + 1) & 0xff;
	n = 18 + AGD_LOGRING_TEXT_MAX + 1;
	cr_assert_eq(agd_logring_decode(b, n, &d), AGD_ERR_TOOBIG, "a 401-byte text");
	/* A time past INT64_MAX. */
	b[5] = 0x80;
	b[16] = 0;
	b[17] = 1;
	cr_assert_eq(agd_logring_decode(b, 19, &d), AGD_ERR_ARG, "a negative time");
	b[5] = 0;
	cr_assert_eq(agd_logring_decode(b, 19, &d), 0, "the same line, sane");
	cr_assert_eq(agd_logring_count(d), 1);
	agd_logring_destroy(&d);
	/* No line at all is a log part of nothing. */
	b[4] = 0;
	cr_assert_eq(agd_logring_decode(b, 5, &d), 0);
	cr_assert_null(d);
}

Test(agd_logring, every_single_byte_change_is_refused_or_decodes_sanely)
{
	struct agd_logring *r = ring_of(6), *d = NULL;
	uint8_t *b = NULL;
	size_t len = 0;
	static const uint8_t vals[] = { 0x00, 0x01, 0x20, 0x41, 0x7f, 0x80, 0xfe, 0xff };

	cr_assert_eq(agd_logring_encode(r, &b, &len), 0);
	for (size_t i = 0; i < len; i++) {
		for (size_t v = 0; v < sizeof vals; v++) {
			uint8_t *c = malloc(len);
			int rc;

			memcpy(c, b, len);
			c[i] = vals[v];
			rc = agd_logring_decode(c, len, &d);
			cr_assert(rc == 0 || rc == AGD_ERR_ARG || rc == AGD_ERR_TOOBIG, "rc %d", rc);
			if (rc == 0) {
				uint8_t *e = NULL;
				size_t elen = 0;

				/* What decodes encodes again, within the caps. */
				cr_assert_leq(agd_logring_count(d), AGD_LOGRING_LINES);
				cr_assert_eq(agd_logring_encode(d, &e, &elen), 0);
				cr_assert_leq(elen, len);
				free(e);
			} else {
				cr_assert_null(d);
			}
			agd_logring_destroy(&d);
			free(c);
		}
	}
	free(b);
	agd_logring_destroy(&r);
}

Test(agd_logring, the_store_key_names_the_agent)
{
	char key[64];

	agd_logring_key(key, sizeof key, "0123456789abcdef");
	cr_assert_str_eq(key, "agent.log.0123456789abcdef");
}
