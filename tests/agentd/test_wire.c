/*
 * test_wire.c: the peer wire codec round-trips every message type, tells a
 * truncated message from a malformed or oversized one at every offset, and
 * survives random mutation without reading out of bounds.
 */
#include "agd_wire.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

TestSuite(agd_wire, .timeout = 60);

static uint8_t blob_a[300];
static uint8_t blob_b[17];
static uint8_t blob_c[9];

/* Fills every field (the type decides which travel). */
static void fill(struct agd_wire_msg *m, int type)
{
	memset(m, 0, sizeof *m);
	m->type = (uint8_t)type;
	m->corr = 0x0102030405060708ull + (uint64_t)type;
	m->proto = AGD_WIRE_VERSION;
	strcpy(m->host, "host-b.example");
	strcpy(m->agent, "agent-0000000000000042");
	strcpy(m->name, "method_or_resource");
	m->epoch = 0xfedcba9876543210ull;
	for (int i = 0; i < AGD_WIRE_HASH_LEN; i++)
		m->hash[i] = (uint8_t)(i * 7 + 1);
	m->mobility = AGD_MOB_STRONG;
	m->kind = AGD_KIND_CLONE;
	m->size = 123456789;
	m->msgid = 77;
	m->op = 9;
	m->hops = 3;
	m->code = -42;
	strcpy(m->text, "segment signature does not verify");
	for (size_t i = 0; i < sizeof blob_a; i++)
		blob_a[i] = (uint8_t)(i ^ 0x5a);
	for (size_t i = 0; i < sizeof blob_b; i++)
		blob_b[i] = (uint8_t)(0xa0 + i);
	m->blob[0].data = blob_a;
	m->blob[0].len = sizeof blob_a;
	m->blob[1].data = blob_b;
	m->blob[1].len = sizeof blob_b;
	for (size_t i = 0; i < sizeof blob_c; i++)
		blob_c[i] = (uint8_t)(0x30 + i);
	m->blob[2].data = blob_c;
	m->blob[2].len = sizeof blob_c;
}

/* Encodes and packs m; the caller frees *buf. */
static void pack(const struct agd_wire_msg *m, uint8_t **buf, size_t *len)
{
	static struct agd_wire_frames fr;

	*buf = NULL;
	*len = 0;
	cr_assert_eq(agd_wire_encode(m, &fr), 0, "encode %s", agd_wire_type_name(m->type));
	cr_assert_eq(agd_wire_pack(&fr, buf, len), 0);
}

/* Unpacks and decodes. */
static int unpack_decode(const uint8_t *buf, size_t len, struct agd_wire_msg *m)
{
	struct agd_wire_bytes f[AGD_WIRE_FRAMES_MAX];
	size_t n;
	int rc = agd_wire_unpack(buf, len, f, AGD_WIRE_FRAMES_MAX, &n);

	if (rc != 0)
		return rc;
	return agd_wire_decode(f, n, m);
}

Test(agd_wire, every_type_round_trips_byte_for_byte)
{
	for (int t = AGD_MSG_TYPE_MIN; t <= AGD_MSG_TYPE_MAX; t++) {
		struct agd_wire_msg m, d;
		uint8_t *a, *b;
		size_t alen, blen;

		fill(&m, t);
		pack(&m, &a, &alen);
		cr_assert_eq(unpack_decode(a, alen, &d), 0, "decode %s", agd_wire_type_name(t));
		cr_assert_eq(d.type, t);
		cr_assert_eq(d.corr, m.corr);
		pack(&d, &b, &blen);
		cr_assert_eq(alen, blen, "%s re-encodes to another length", agd_wire_type_name(t));
		cr_assert_eq(memcmp(a, b, alen), 0, "%s re-encodes differently", agd_wire_type_name(t));
		for (int i = 0; i < agd_wire_type_blobs(t); i++) {
			cr_assert_eq(d.blob[i].len, m.blob[i].len);
			/* An optional blob left empty has no bytes to compare. */
			if (d.blob[i].len > 0)
				cr_assert_eq(memcmp(d.blob[i].data, m.blob[i].data, d.blob[i].len), 0);
		}
		free(a);
		free(b);
	}
}

Test(agd_wire, offer_keeps_every_field_it_carries)
{
	struct agd_wire_msg m, d;
	uint8_t *a;
	size_t alen;

	fill(&m, AGD_MSG_OFFER);
	pack(&m, &a, &alen);
	cr_assert_eq(unpack_decode(a, alen, &d), 0);
	cr_assert_str_eq(d.agent, m.agent);
	cr_assert_str_eq(d.name, m.name);
	cr_assert_eq(d.epoch, m.epoch);
	cr_assert_eq(memcmp(d.hash, m.hash, AGD_WIRE_HASH_LEN), 0);
	cr_assert_eq(d.mobility, AGD_MOB_STRONG);
	cr_assert_eq(d.kind, AGD_KIND_CLONE);
	cr_assert_eq(d.size, m.size);
	/* Fields OFFER does not carry come back zero. */
	cr_assert_eq(d.msgid, 0);
	cr_assert_eq(d.code, 0);
	cr_assert_str_eq(d.host, "");
	free(a);
}

Test(agd_wire, negative_codes_and_text_survive)
{
	struct agd_wire_msg m, d;
	uint8_t *a;
	size_t alen;

	fill(&m, AGD_MSG_REFUSE);
	m.code = -2147483647 - 1;
	pack(&m, &a, &alen);
	cr_assert_eq(unpack_decode(a, alen, &d), 0);
	cr_assert_eq(d.code, m.code);
	cr_assert_str_eq(d.text, m.text);
	free(a);
}

/* The exact bytes of a HELLO: the format is on the wire, it must not drift. */
Test(agd_wire, hello_matches_golden_bytes)
{
	static const uint8_t golden[] = {
		'A', 'G', 'D', 'P', 1, 1,                 /* header: magic, version, HELLO */
		0, 0, 0, 0, 0, 0, 0, 5,                   /* corr */
		0, 0, 0, 1,                               /* proto */
		0, 2, 'h', '1',                           /* host */
		0, 3, 't', ':', '9',                      /* text: its endpoint */
	};
	struct agd_wire_msg m;
	struct agd_wire_frames fr;

	memset(&m, 0, sizeof m);
	m.type = AGD_MSG_HELLO;
	m.corr = 5;
	m.proto = 1;
	strcpy(m.host, "h1");
	strcpy(m.text, "t:9");
	cr_assert_eq(agd_wire_encode(&m, &fr), 0);
	cr_assert_eq(fr.n, 2);
	cr_assert_eq(fr.f[0].len, 6);
	cr_assert_eq(memcmp(fr.f[0].data, golden, 6), 0);
	cr_assert_eq(fr.f[1].len, sizeof golden - 6);
	cr_assert_eq(memcmp(fr.f[1].data, golden + 6, sizeof golden - 6), 0);
}

Test(agd_wire, every_prefix_of_a_packed_message_is_truncated)
{
	for (int t = AGD_MSG_TYPE_MIN; t <= AGD_MSG_TYPE_MAX; t++) {
		struct agd_wire_msg m, d;
		uint8_t *a;
		size_t alen;

		fill(&m, t);
		pack(&m, &a, &alen);
		for (size_t cut = 0; cut < alen; cut++) {
			uint8_t *c = malloc(cut ? cut : 1);

			memcpy(c, a, cut);
			cr_assert_eq(unpack_decode(c, cut, &d), AGD_WIRE_ERR_TRUNCATED,
				     "%s cut at %zu of %zu", agd_wire_type_name(t), cut, alen);
			free(c);
		}
		free(a);
	}
}

Test(agd_wire, every_cut_of_a_frame_is_truncated)
{
	for (int t = AGD_MSG_TYPE_MIN; t <= AGD_MSG_TYPE_MAX; t++) {
		struct agd_wire_msg m, d;
		struct agd_wire_frames fr;

		fill(&m, t);
		cr_assert_eq(agd_wire_encode(&m, &fr), 0);
		for (size_t k = 0; k < fr.n; k++) {
			for (size_t cut = 0; cut < fr.f[k].len; cut++) {
				struct agd_wire_bytes f[AGD_WIRE_FRAMES_MAX];

				memcpy(f, fr.f, sizeof f);
				f[k].len = cut;
				cr_assert_eq(agd_wire_decode(f, fr.n, &d), AGD_WIRE_ERR_TRUNCATED,
					     "%s frame %zu cut at %zu", agd_wire_type_name(t), k, cut);
				cr_assert_eq(d.type, 0, "a failed decode leaves nothing behind");
			}
		}
		/* Frames missing at the end. */
		for (size_t n = 0; n < fr.n; n++)
			cr_assert_eq(agd_wire_decode(fr.f, n, &d), AGD_WIRE_ERR_TRUNCATED,
				     "%s with %zu frames", agd_wire_type_name(t), n);
	}
}

Test(agd_wire, broken_headers_are_told_apart)
{
	struct agd_wire_msg m, d;
	struct agd_wire_frames fr;
	uint8_t h[AGD_WIRE_HEADER_LEN];
	struct agd_wire_bytes f[AGD_WIRE_FRAMES_MAX];

	fill(&m, AGD_MSG_ACCEPT);
	cr_assert_eq(agd_wire_encode(&m, &fr), 0);
	memcpy(f, fr.f, sizeof f);
	f[0].data = h;

	memcpy(h, fr.f[0].data, sizeof h);
	h[0] = 'X';
	cr_assert_eq(agd_wire_decode(f, fr.n, &d), AGD_WIRE_ERR_MALFORMED);

	memcpy(h, fr.f[0].data, sizeof h);
	h[4] = AGD_WIRE_VERSION + 1;
	cr_assert_eq(agd_wire_decode(f, fr.n, &d), AGD_WIRE_ERR_VERSION);

	memcpy(h, fr.f[0].data, sizeof h);
	h[5] = 0;
	cr_assert_eq(agd_wire_decode(f, fr.n, &d), AGD_WIRE_ERR_TYPE);
	h[5] = AGD_MSG_TYPE_MAX + 1;
	cr_assert_eq(agd_wire_decode(f, fr.n, &d), AGD_WIRE_ERR_TYPE);
}

Test(agd_wire, extra_bytes_and_extra_frames_are_malformed)
{
	struct agd_wire_msg m, d;
	struct agd_wire_frames fr;
	struct agd_wire_bytes f[AGD_WIRE_FRAMES_MAX];
	uint8_t body[AGD_WIRE_BODY_MAX + 1];

	fill(&m, AGD_MSG_COMMITTED);
	cr_assert_eq(agd_wire_encode(&m, &fr), 0);
	memcpy(f, fr.f, sizeof f);
	memcpy(body, fr.f[1].data, fr.f[1].len);
	body[fr.f[1].len] = 0;
	f[1].data = body;
	f[1].len = fr.f[1].len + 1;
	cr_assert_eq(agd_wire_decode(f, 2, &d), AGD_WIRE_ERR_MALFORMED);

	f[1] = fr.f[1];
	f[2] = fr.f[1];
	cr_assert_eq(agd_wire_decode(f, 3, &d), AGD_WIRE_ERR_MALFORMED);
}

Test(agd_wire, a_blob_frame_longer_than_declared_is_malformed)
{
	struct agd_wire_msg m, d;
	struct agd_wire_frames fr;
	struct agd_wire_bytes f[AGD_WIRE_FRAMES_MAX];

	fill(&m, AGD_MSG_SEGMENT);
	m.blob[0].len = 10;
	cr_assert_eq(agd_wire_encode(&m, &fr), 0);
	memcpy(f, fr.f, sizeof f);
	f[2].len = 11;
	cr_assert_eq(agd_wire_decode(f, fr.n, &d), AGD_WIRE_ERR_MALFORMED);
}

Test(agd_wire, bad_field_values_are_malformed)
{
	struct agd_wire_msg m, d;
	struct agd_wire_frames fr;
	struct agd_wire_bytes f[AGD_WIRE_FRAMES_MAX];
	uint8_t body[AGD_WIRE_BODY_MAX];
	size_t mob_off;

	/* TRANSFER body: corr(8) host(2+n) agent(2+n) name(2+n) epoch(8) hash(32) mob kind ... */
	fill(&m, AGD_MSG_TRANSFER);
	cr_assert_eq(agd_wire_encode(&m, &fr), 0);
	mob_off = 8 + 2 + strlen(m.host) + 2 + strlen(m.agent) + 2 + strlen(m.name) + 8 + 32;
	memcpy(f, fr.f, sizeof f);
	memcpy(body, fr.f[1].data, fr.f[1].len);
	f[1].data = body;
	cr_assert_eq(body[mob_off], AGD_MOB_STRONG);
	body[mob_off] = 9;
	cr_assert_eq(agd_wire_decode(f, fr.n, &d), AGD_WIRE_ERR_MALFORMED);
	body[mob_off] = AGD_MOB_STRONG;
	body[mob_off + 1] = 0;
	cr_assert_eq(agd_wire_decode(f, fr.n, &d), AGD_WIRE_ERR_MALFORMED);
	body[mob_off + 1] = AGD_KIND_CLONE;
	/* A NUL inside the agent id. */
	body[8 + 2 + strlen(m.host) + 2 + 3] = 0;
	cr_assert_eq(agd_wire_decode(f, fr.n, &d), AGD_WIRE_ERR_MALFORMED);
	body[8 + 2 + strlen(m.host) + 2 + 3] = (uint8_t)m.agent[3];
	cr_assert_eq(agd_wire_decode(f, fr.n, &d), 0);
}

Test(agd_wire, oversized_things_are_refused)
{
	struct agd_wire_msg m, d;
	struct agd_wire_frames fr;
	struct agd_wire_bytes f[AGD_WIRE_FRAMES_MAX + 1];
	static uint8_t big[AGD_WIRE_BODY_MAX + 1];
	uint8_t body[64];

	/* A body over its cap. */
	fill(&m, AGD_MSG_ACCEPT);
	cr_assert_eq(agd_wire_encode(&m, &fr), 0);
	memcpy(f, fr.f, 2 * sizeof f[0]);
	f[1].data = big;
	f[1].len = sizeof big;
	cr_assert_eq(agd_wire_decode(f, 2, &d), AGD_WIRE_ERR_TOOBIG);

	/* A string length over its cap (the bytes are not even there). */
	body[0] = 0; /* corr */
	memset(body, 0, 8);
	body[8] = 0xff;
	body[9] = 0xff;
	f[1].data = body;
	f[1].len = 10;
	cr_assert_eq(agd_wire_decode(f, 2, &d), AGD_WIRE_ERR_TOOBIG);

	/* Too many frames. */
	for (size_t i = 2; i < AGD_WIRE_FRAMES_MAX + 1; i++)
		f[i] = fr.f[1];
	f[1] = fr.f[1];
	cr_assert_eq(agd_wire_decode(f, AGD_WIRE_FRAMES_MAX + 1, &d), AGD_WIRE_ERR_TOOBIG);

	/* Encode refuses a blob over the cap and an agent id that is too long. */
	fill(&m, AGD_MSG_DELIVER);
	m.blob[0].len = (size_t)AGD_WIRE_BLOB_MAX + 1;
	cr_assert_eq(agd_wire_encode(&m, &fr), AGD_WIRE_ERR_TOOBIG);
	fill(&m, AGD_MSG_DELIVER);
	memset(m.text, 'x', sizeof m.text); /* DELIVER carries no text: ignored */
	memset(m.agent, 'a', sizeof m.agent);
	cr_assert_eq(agd_wire_encode(&m, &fr), AGD_WIRE_ERR_TOOBIG);
}

Test(agd_wire, packed_form_refuses_oversized_frames)
{
	uint8_t buf[16] = { 1, 0xff, 0xff, 0xff, 0xff };
	uint8_t many[1] = { AGD_WIRE_FRAMES_MAX + 1 };
	uint8_t zero[1] = { 0 };
	struct agd_wire_bytes f[AGD_WIRE_FRAMES_MAX];
	size_t n;

	cr_assert_eq(agd_wire_unpack(buf, sizeof buf, f, AGD_WIRE_FRAMES_MAX, &n), AGD_WIRE_ERR_TOOBIG);
	cr_assert_eq(agd_wire_unpack(many, 1, f, AGD_WIRE_FRAMES_MAX, &n), AGD_WIRE_ERR_TOOBIG);
	cr_assert_eq(agd_wire_unpack(zero, 1, f, AGD_WIRE_FRAMES_MAX, &n), AGD_WIRE_ERR_MALFORMED);
}

/* Random mutation: whatever the bytes, decoding returns a code; whatever
 * decodes re-encodes to something that decodes to the same message. */
Test(agd_wire, random_mutations_never_break_the_decoder)
{
	uint32_t seed = 12345;
	size_t decoded = 0, refused = 0;

	for (int round = 0; round < 20000; round++) {
		int t = AGD_MSG_TYPE_MIN + round % (AGD_MSG_TYPE_MAX - AGD_MSG_TYPE_MIN + 1);
		struct agd_wire_msg m, d, d2;
		uint8_t *a, *b;
		size_t alen, blen;
		int flips, rc;

		fill(&m, t);
		m.blob[0].len = 5;
		m.blob[1].len = 3;
		m.blob[2].len = 2;
		pack(&m, &a, &alen);
		seed = seed * 1103515245u + 12345u;
		flips = 1 + (int)(seed >> 16) % 4;
		for (int k = 0; k < flips; k++) {
			seed = seed * 1103515245u + 12345u;
			a[(seed >> 8) % alen] ^= (uint8_t)(1u << ((seed >> 4) & 7));
		}
		rc = unpack_decode(a, alen, &d);
		if (rc == 0) {
			decoded++;
			pack(&d, &b, &blen);
			cr_assert_eq(unpack_decode(b, blen, &d2), 0);
			cr_assert_eq(d2.type, d.type);
			cr_assert_eq(d2.epoch, d.epoch);
			cr_assert_str_eq(d2.agent, d.agent);
			free(b);
		} else {
			cr_assert(rc < 0 && rc >= AGD_WIRE_ERR_NOMEM, "code %d", rc);
			refused++;
		}
		free(a);
	}
	/* Both outcomes must actually occur, or the mutation is not testing much. */
	cr_assert_gt(decoded, 0);
	cr_assert_gt(refused, 0);
}

Test(agd_wire, encode_refuses_unknown_types_and_empty_agents)
{
	struct agd_wire_msg m;
	struct agd_wire_frames fr;

	fill(&m, AGD_MSG_OFFER);
	m.type = 0;
	cr_assert_eq(agd_wire_encode(&m, &fr), AGD_WIRE_ERR_TYPE);
	fill(&m, AGD_MSG_OFFER);
	m.agent[0] = '\0';
	cr_assert_eq(agd_wire_encode(&m, &fr), AGD_WIRE_ERR_ARG);
	fill(&m, AGD_MSG_OFFER);
	m.mobility = 0;
	cr_assert_eq(agd_wire_encode(&m, &fr), AGD_WIRE_ERR_ARG);
	cr_assert_str_eq(agd_wire_type_name(AGD_MSG_OFFER), "OFFER");
	cr_assert_str_eq(agd_wire_type_name(99), "?");
}

/* Mobility 3 (strong or refused) is a pull's alone: a PULL_REQUEST
 * carries it both ways; an OFFER or TRANSFER with it is refused by the
 * encoder and, forged on the wire, by the decoder. */
Test(agd_wire, strong_only_mobility_travels_in_a_pull_request_alone)
{
	struct agd_wire_msg m, d;
	struct agd_wire_frames fr;
	uint8_t *buf;
	size_t len;

	fill(&m, AGD_MSG_PULL_REQUEST);
	m.mobility = AGD_MOB_STRONG_ONLY;
	pack(&m, &buf, &len);
	cr_assert_eq(unpack_decode(buf, len, &d), 0);
	cr_assert_eq(d.mobility, AGD_MOB_STRONG_ONLY);
	free(buf);
	m.mobility = 4;
	cr_assert_eq(agd_wire_encode(&m, &fr), AGD_WIRE_ERR_ARG);
	fill(&m, AGD_MSG_OFFER);
	m.mobility = AGD_MOB_STRONG_ONLY;
	cr_assert_eq(agd_wire_encode(&m, &fr), AGD_WIRE_ERR_ARG);
	/* The same OFFER with 2, then its mobility byte made 3 on the wire. */
	m.mobility = AGD_MOB_STRONG;
	pack(&m, &buf, &len);
	{
		size_t hits = 0;
		uint8_t *at = NULL;

		/* The packed OFFER holds the byte 2 where mobility goes; find it
		 * as the byte that, changed, decodes to another mobility. */
		for (size_t i = 0; i < len; i++) {
			if (buf[i] != AGD_MOB_STRONG)
				continue;
			buf[i] = AGD_MOB_WEAK;
			if (unpack_decode(buf, len, &d) == 0 && d.mobility == AGD_MOB_WEAK) {
				at = &buf[i];
				hits++;
			}
			buf[i] = AGD_MOB_STRONG;
		}
		cr_assert_eq(hits, 1, "the mobility byte not found");
		*at = AGD_MOB_STRONG_ONLY;
		cr_assert_eq(unpack_decode(buf, len, &d), AGD_WIRE_ERR_MALFORMED);
	}
	free(buf);
}

/* [logs] TRANSFER's optional blob 3, the agent's log: without it the
 * message is exactly version 1's (3 blobs), so a version-1 peer reads it;
 * with it, version 2 and 4 blobs, which round-trip. */
Test(agd_wire, a_transfer_without_a_log_is_a_version_1_message)
{
	struct agd_wire_msg m, d;
	struct agd_wire_frames fr;

	fill(&m, AGD_MSG_TRANSFER);
	cr_assert_eq(agd_wire_encode(&m, &fr), 0);
	cr_assert_eq(fr.f[0].data[4], 1, "version byte");
	cr_assert_eq(fr.n, 2 + 3, "three blobs");
	cr_assert_eq(agd_wire_decode(fr.f, fr.n, &d), 0);
	cr_assert_eq(d.blob[3].len, 0);
	cr_assert_null(d.blob[3].data);
	/* Every other type too: none has an optional blob filled. */
	for (int t = AGD_MSG_TYPE_MIN; t <= AGD_MSG_TYPE_MAX; t++) {
		fill(&m, t);
		cr_assert_eq(agd_wire_encode(&m, &fr), 0);
		cr_assert_eq(fr.f[0].data[4], 1, "%s is written as version 1", agd_wire_type_name(t));
	}
}

Test(agd_wire, a_transfer_with_a_log_is_version_2_and_round_trips)
{
	static const uint8_t log[] = "AGL\x01\x00";
	struct agd_wire_msg m, d;
	struct agd_wire_frames fr;
	uint8_t *a, *b;
	size_t alen, blen;

	fill(&m, AGD_MSG_TRANSFER);
	m.blob[3].data = log;
	m.blob[3].len = 5;
	cr_assert_eq(agd_wire_encode(&m, &fr), 0);
	cr_assert_eq(fr.f[0].data[4], 2, "version byte");
	cr_assert_eq(fr.n, 2 + 4, "four blobs");
	pack(&m, &a, &alen);
	cr_assert_eq(unpack_decode(a, alen, &d), 0);
	cr_assert_eq(d.blob[3].len, 5);
	cr_assert_eq(memcmp(d.blob[3].data, log, 5), 0);
	cr_assert_eq(d.blob[2].len, m.blob[2].len, "the blobs before it are where they were");
	pack(&d, &b, &blen);
	cr_assert_eq(blen, alen);
	cr_assert_eq(memcmp(a, b, alen), 0);
	/* Cut anywhere, or a frame short: truncated, as for version 1. */
	for (size_t cut = 0; cut < alen; cut++)
		cr_assert_eq(unpack_decode(a, cut, &d), AGD_WIRE_ERR_TRUNCATED, "cut at %zu", cut);
	cr_assert_eq(agd_wire_decode(fr.f, fr.n - 1, &d), AGD_WIRE_ERR_TRUNCATED,
		     "a version-2 TRANSFER with 3 blobs");
	free(a);
	free(b);
}

Test(agd_wire, versions_1_and_2_are_read_and_others_refused)
{
	struct agd_wire_msg m, d;
	struct agd_wire_frames fr;
	struct agd_wire_bytes f[AGD_WIRE_FRAMES_MAX];
	uint8_t h[AGD_WIRE_HEADER_LEN];

	fill(&m, AGD_MSG_ACCEPT);
	cr_assert_eq(agd_wire_encode(&m, &fr), 0);
	memcpy(f, fr.f, sizeof f);
	memcpy(h, fr.f[0].data, sizeof h);
	f[0].data = h;
	h[4] = 2; /* a type without optional blobs has the same layout in 2 */
	cr_assert_eq(agd_wire_decode(f, fr.n, &d), 0);
	cr_assert_str_eq(d.agent, m.agent);
	h[4] = 0;
	cr_assert_eq(agd_wire_decode(f, fr.n, &d), AGD_WIRE_ERR_VERSION);
	h[4] = 3;
	cr_assert_eq(agd_wire_decode(f, fr.n, &d), AGD_WIRE_ERR_VERSION);
	cr_assert_eq(AGD_WIRE_VERSION_MIN, 1);
	cr_assert_eq(AGD_WIRE_VERSION, 2);
}
