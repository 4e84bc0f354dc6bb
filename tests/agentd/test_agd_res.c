/*
 * test_agd_res.c: the daemon's resource glue without daemons: the resource
 * segment a transfer carries (round trip, caps, every truncation, random
 * mutation, bad magic and version) and the mapping of a manifest's "device"
 * target to the host's device kind.
 */
#include "agd_err.h"
#include "agd_res.h"
#include "res_op.h"
#include "res_registry.h"
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(agd_res, .timeout = 60);

struct seen {
	struct agd_res_item it[AGD_RES_BINDINGS_MAX];
	uint8_t blob[AGD_RES_BINDINGS_MAX][64];
	size_t n;
	char lines[AGD_RES_HISTORY_MAX][512];
	size_t nl;
};

static int on_item(void *ud, const struct agd_res_item *it)
{
	struct seen *s = ud;

	cr_assert_lt(s->n, AGD_RES_BINDINGS_MAX);
	s->it[s->n] = *it;
	if (it->blob_len > 0 && it->blob_len <= sizeof s->blob[0]) {
		memcpy(s->blob[s->n], it->blob, it->blob_len);
		s->it[s->n].blob = s->blob[s->n];
	}
	s->n++;
	return 0;
}

static int on_line(void *ud, const char *l)
{
	struct seen *s = ud;

	cr_assert_lt(s->nl, AGD_RES_HISTORY_MAX);
	snprintf(s->lines[s->nl++], sizeof s->lines[0], "%s", l);
	return 0;
}

static int count_only(void *ud, const struct agd_res_item *it)
{
	(void)it;
	(*(size_t *)ud)++;
	return 0;
}

/* Two bindings (a MV carrying a blob and manifest list, a GR with its
 * home's endpoint) and three history lines. */
static void sample(uint8_t **seg, size_t *len)
{
	struct agd_res_item items[2];
	const char *lines[] = { "h1->h2 notes: action=MV origin=default tried=MV:ok",
				"h1->h2 db: action=GR origin=default tried=GR:ok", "" };

	memset(items, 0, sizeof items);
	snprintf(items[0].bind.name, sizeof items[0].bind.name, "notes");
	items[0].bind.binding = RES_BIND_ID;
	items[0].bind.kind = RES_KIND_FILE;
	items[0].bind.attach = RES_ATT_UNATTACHED;
	items[0].bind.action = RES_ACT_MV;
	items[0].bind.bound = 1;
	snprintf(items[0].bind.id, sizeof items[0].bind.id, "notes");
	snprintf(items[0].bind.home, sizeof items[0].bind.home, "h1");
	items[0].manifest.n = 2;
	items[0].manifest.a[0] = RES_ACT_MV;
	items[0].manifest.a[1] = RES_ACT_GR;
	items[0].blob = (const uint8_t *)"RXcontent";
	items[0].blob_len = 9;
	snprintf(items[1].bind.name, sizeof items[1].bind.name, "db");
	items[1].bind.binding = RES_BIND_VALUE;
	items[1].bind.kind = RES_KIND_KV;
	items[1].bind.attach = RES_ATT_FASTENED;
	items[1].bind.action = RES_ACT_GR;
	items[1].bind.bound = 1;
	snprintf(items[1].bind.id, sizeof items[1].bind.id, "ledger");
	snprintf(items[1].bind.home, sizeof items[1].bind.home, "h3");
	snprintf(items[1].endpoint, sizeof items[1].endpoint, "tcp://127.0.0.1:7003");
	cr_assert_eq(agd_res_segment_build(items, 2, lines, 3, seg, len), 0);
}

Test(agd_res, segment_round_trip_keeps_bindings_blobs_endpoints_and_history)
{
	uint8_t *seg;
	size_t len;
	struct seen *s = calloc(1, sizeof *s);

	sample(&seg, &len);
	cr_assert_eq(agd_res_segment_parse(seg, len, on_item, on_line, s), 0);
	cr_assert_eq(s->n, 2);
	cr_assert_str_eq(s->it[0].bind.name, "notes");
	cr_assert_eq(s->it[0].bind.action, RES_ACT_MV);
	cr_assert_eq(s->it[0].bind.attach, RES_ATT_UNATTACHED);
	cr_assert_eq(s->it[0].manifest.n, 2);
	cr_assert_eq(s->it[0].manifest.a[1], RES_ACT_GR);
	cr_assert_eq(s->it[0].blob_len, 9);
	cr_assert_eq(memcmp(s->it[0].blob, "RXcontent", 9), 0);
	cr_assert_str_eq(s->it[0].endpoint, "");
	cr_assert_str_eq(s->it[1].bind.id, "ledger");
	cr_assert_str_eq(s->it[1].bind.home, "h3");
	cr_assert_eq(s->it[1].bind.kind, RES_KIND_KV);
	cr_assert_eq(s->it[1].blob_len, 0);
	cr_assert_str_eq(s->it[1].endpoint, "tcp://127.0.0.1:7003");
	cr_assert_eq(s->nl, 3);
	cr_assert_str_eq(s->lines[1], "h1->h2 db: action=GR origin=default tried=GR:ok");
	cr_assert_str_eq(s->lines[2], "");
	free(seg);
	free(s);
}

Test(agd_res, segment_cut_at_any_offset_is_refused)
{
	uint8_t *seg;
	size_t len;

	sample(&seg, &len);
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *p = malloc(cut ? cut : 1);
		size_t n = 0;

		memcpy(p, seg, cut);
		cr_assert_eq(agd_res_segment_parse(p, cut, count_only, NULL, &n), AGD_ERR_SEGMENT,
			     "cut at %zu", cut);
		free(p);
	}
	free(seg);
}

Test(agd_res, segment_with_trailing_bytes_bad_magic_or_version_is_refused)
{
	uint8_t *seg, *p;
	size_t len;

	sample(&seg, &len);
	p = malloc(len + 1);
	memcpy(p, seg, len);
	p[len] = 0;
	cr_assert_eq(agd_res_segment_parse(p, len + 1, NULL, NULL, NULL), AGD_ERR_SEGMENT);
	p[0] = 'X';
	cr_assert_eq(agd_res_segment_parse(p, len, NULL, NULL, NULL), AGD_ERR_SEGMENT);
	memcpy(p, seg, len);
	p[3] = 2;
	cr_assert_eq(agd_res_segment_parse(p, len, NULL, NULL, NULL), AGD_ERR_SEGMENT);
	cr_assert_eq(agd_res_segment_parse(NULL, 0, NULL, NULL, NULL), AGD_ERR_SEGMENT);
	free(p);
	free(seg);
}

Test(agd_res, segment_mutations_never_crash_and_enums_stay_in_range)
{
	uint8_t *seg;
	size_t len;
	unsigned seed = 12345;

	sample(&seg, &len);
	for (int round = 0; round < 20000; round++) {
		uint8_t *p = malloc(len);
		struct seen *s = calloc(1, sizeof *s);
		int rc;

		memcpy(p, seg, len);
		for (int k = 0; k < 1 + round % 4; k++) {
			seed = seed * 1103515245u + 12345u;
			p[(seed >> 8) % len] = (uint8_t)(seed >> 16);
		}
		rc = agd_res_segment_parse(p, len, on_item, on_line, s);
		cr_assert(rc == 0 || rc == AGD_ERR_SEGMENT);
		for (size_t i = 0; i < s->n; i++) {
			cr_assert_lt(s->it[i].bind.action, RES_NACTIONS);
			cr_assert_lt(s->it[i].bind.kind, RES_NKINDS);
			cr_assert_lt(s->it[i].bind.attach, RES_NATTACH);
			cr_assert_lt(s->it[i].bind.binding, RES_NBINDINGS);
			cr_assert_lt(strlen(s->it[i].bind.id), RES_ID_MAX);
		}
		free(s);
		free(p);
	}
	free(seg);
}

Test(agd_res, segment_build_refuses_too_many_bindings_and_lines)
{
	struct agd_res_item items[AGD_RES_BINDINGS_MAX + 1];
	const char *lines[AGD_RES_HISTORY_MAX + 1];
	uint8_t *seg = (uint8_t *)"x";
	size_t len = 1;

	memset(items, 0, sizeof items);
	for (size_t i = 0; i <= AGD_RES_HISTORY_MAX; i++)
		lines[i] = "l";
	cr_assert_eq(agd_res_segment_build(items, AGD_RES_BINDINGS_MAX + 1, NULL, 0, &seg, &len),
		     AGD_ERR_ARG);
	cr_assert_null(seg);
	cr_assert_eq(len, 0);
	cr_assert_eq(agd_res_segment_build(items, 0, lines, AGD_RES_HISTORY_MAX + 1, &seg, &len),
		     AGD_ERR_ARG);
	items[0].blob_len = RES_OP_MAX_BYTES + 1u;
	items[0].blob = (const uint8_t *)"";
	cr_assert_eq(agd_res_segment_build(items, 1, NULL, 0, &seg, &len), AGD_ERR_ARG);
}

Test(agd_res, empty_segment_round_trips)
{
	uint8_t *seg;
	size_t len, n = 7;

	cr_assert_eq(agd_res_segment_build(NULL, 0, NULL, 0, &seg, &len), 0);
	n = 0;
	cr_assert_eq(agd_res_segment_parse(seg, len, count_only, NULL, &n), 0);
	cr_assert_eq(n, 0);
	free(seg);
}

Test(agd_res, device_target_names_the_hosts_device_kind)
{
	char dir[256], path[512];
	struct res_registry *reg = NULL;
	const char *keys[] = { "kind", "path" };
	const char *vals[2];

	cr_assert_eq(tst_tmpdir(dir, sizeof dir), 0);
	snprintf(path, sizeof path, "%s/data", dir);
	cr_assert_eq(res_registry_new("h1", path, &reg), 0);
	cr_assert_str_eq(agd_res_target_ref(reg, "device"), "device", "no device: unchanged");
	cr_assert_str_eq(agd_res_target_ref(reg, "file"), "file");
	cr_assert_str_eq(agd_res_target_ref(NULL, "device"), "device");
	snprintf(path, sizeof path, "%s/temp", dir);
	{
		FILE *f = fopen(path, "w");

		cr_assert_not_null(f);
		fputs("1\n", f);
		fclose(f);
	}
	vals[0] = "sensor";
	vals[1] = path;
	cr_assert_eq(res_registry_add(reg, "temp", 2, keys, vals, NULL), 0);
	cr_assert_str_eq(agd_res_target_ref(reg, "device"), "sensor");
	snprintf(path, sizeof path, "%s/lp.out", dir);
	vals[0] = "printer";
	cr_assert_eq(res_registry_add(reg, "lp", 2, keys, vals, NULL), 0);
	cr_assert_str_eq(agd_res_target_ref(reg, "device"), "printer", "printer first");
	res_registry_destroy(&reg);
	tst_rmtree(dir);
}
