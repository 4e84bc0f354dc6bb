/*
 * test_segment.c: canonical bytes are exactly the documented layout, the
 * hash names the content and nothing else, signed files round-trip, and the
 * decoder refuses every truncation, every flipped byte and random damage
 * without crashing.
 */
#include "mig_segment.h"
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char manifest[] =
	"agentd-manifest 1\n"
	"name = pinger\n"
	"version = 0.1\n"
	"entry = main.lua main\n"
	"mobility = strong\n"
	"binding = out by-type file\n"
	"file = main.lua\n"
	"file = lib.lua\n";

static const char main_lua[] = "local lib = ...\nfunction main() return 42 end\n";
static const char lib_lua[] = "return { ping = function() return 'pong' end }\n";

static struct mig_error err;

static struct mig_segment *build(const char *mtext, const char *main_text)
{
	struct mig_seg_file files[] = {
		{ "main.lua", main_text, strlen(main_text) },
		{ "lib.lua", lib_lua, strlen(lib_lua) },
	};
	struct mig_segment *seg = NULL;

	cr_assert_eq(mig_segment_build(mtext, strlen(mtext), files, 2, &seg, &err), 0, "%s", err.msg);
	return seg;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

Test(mig_segment, canonical_bytes_follow_the_documented_layout)
{
	struct mig_segment *seg = build(manifest, main_lua);
	const char *mtext;
	size_t mlen, clen, pos = 0;
	uint8_t expect[4096], hash[32];
	const uint8_t *canon;

	mtext = mig_segment_manifest_text(seg, &mlen);
	/* Written here from docs/segments.md, independently of the encoder. */
	memcpy(expect, "AGDSEGC\x01", 8);
	pos = 8;
	put32(expect + pos, (uint32_t)mlen);
	pos += 4;
	memcpy(expect + pos, mtext, mlen);
	pos += mlen;
	put32(expect + pos, 2);
	pos += 4;
	/* lib.lua sorts before main.lua */
	expect[pos++] = 0;
	expect[pos++] = 7;
	memcpy(expect + pos, "lib.lua", 7);
	pos += 7;
	put32(expect + pos, (uint32_t)strlen(lib_lua));
	pos += 4;
	memcpy(expect + pos, lib_lua, strlen(lib_lua));
	pos += strlen(lib_lua);
	expect[pos++] = 0;
	expect[pos++] = 8;
	memcpy(expect + pos, "main.lua", 8);
	pos += 8;
	put32(expect + pos, (uint32_t)strlen(main_lua));
	pos += 4;
	memcpy(expect + pos, main_lua, strlen(main_lua));
	pos += strlen(main_lua);

	canon = mig_segment_canonical(seg, &clen);
	cr_assert_eq(clen, pos);
	cr_assert_eq(memcmp(canon, expect, pos), 0);
	crypto_generichash(hash, sizeof hash, expect, pos, NULL, 0);
	cr_assert_eq(memcmp(mig_segment_hash(seg), hash, 32), 0);
	/* The canonical manifest is the documented normal form. */
	cr_assert_eq(mlen, strlen("agentd-manifest 1\nname = pinger\nversion = 0.1\nentry = main.lua main\n"
				  "mobility = strong\nactivation = resident\nmemory = 0\ninstructions = 0\n"
				  "binding = out by-type file\nfile = lib.lua\nfile = main.lua\n"));
	mig_segment_destroy(&seg);
	cr_assert_null(seg);
}

Test(mig_segment, hash_ignores_comments_spacing_and_file_order)
{
	static const char reordered[] =
		"agentd-manifest 1\n# same agent, written differently\n"
		"file = lib.lua\nfile = main.lua\n  binding =   out  by-type file\n"
		"mobility=strong\nentry = main.lua   main\nversion = 0.1\nname = pinger\n"
		"activation = resident\n";
	struct mig_segment *a = build(manifest, main_lua), *b = build(reordered, main_lua);
	char ha[MIG_SEGMENT_HEX_LEN], hb[MIG_SEGMENT_HEX_LEN];

	mig_segment_hash_hex(a, ha);
	mig_segment_hash_hex(b, hb);
	cr_assert_str_eq(ha, hb);
	cr_assert_eq(strlen(ha), 64);
	for (size_t i = 0; i < 64; i++)
		cr_assert((ha[i] >= '0' && ha[i] <= '9') || (ha[i] >= 'a' && ha[i] <= 'f'));
	mig_segment_destroy(&a);
	mig_segment_destroy(&b);
}

Test(mig_segment, hash_changes_with_any_source_byte_or_manifest_field)
{
	struct mig_segment *a = build(manifest, main_lua);
	struct mig_segment *b = build(manifest, "local lib = ...\nfunction main() return 43 end\n");
	char m2[sizeof manifest + 8];
	struct mig_segment *c;

	snprintf(m2, sizeof m2, "%s", manifest);
	*strstr(m2, "0.1") = '9';
	c = build(m2, main_lua);
	cr_assert_neq(memcmp(mig_segment_hash(a), mig_segment_hash(b), 32), 0);
	cr_assert_neq(memcmp(mig_segment_hash(a), mig_segment_hash(c), 32), 0);
	mig_segment_destroy(&a);
	mig_segment_destroy(&b);
	mig_segment_destroy(&c);
}

Test(mig_segment, files_are_exposed_with_their_own_source_hash)
{
	struct mig_segment *seg = build(manifest, main_lua);
	const char *name, *text;
	size_t len;
	uint8_t h[32], mine[32];

	cr_assert_eq(mig_segment_nfiles(seg), 2);
	cr_assert_eq(mig_segment_file(seg, 1, &name, &text, &len), 0);
	cr_assert_str_eq(name, "main.lua");
	cr_assert_eq(len, strlen(main_lua));
	cr_assert_eq(memcmp(text, main_lua, len), 0);
	mig_segment_file_hash(seg, 1, h);
	crypto_generichash(mine, sizeof mine, (const uint8_t *)main_lua, strlen(main_lua), NULL, 0);
	cr_assert_eq(memcmp(h, mine, 32), 0);
	cr_assert_eq(mig_segment_file(seg, 2, &name, &text, &len), MIG_ERR_ARG);
	cr_assert_eq(mig_segment_find(seg, "lib.lua", &text, &len), 0);
	cr_assert_eq(len, strlen(lib_lua));
	cr_assert_eq(mig_segment_find(seg, "nope.lua", &text, &len), MIG_ERR_NOSOURCE);
	cr_assert_eq(mig_segment_is_signed(seg), 0);
	cr_assert_eq(mig_segment_verify(seg), MIG_ERR_SIGNATURE);
	mig_segment_destroy(&seg);
}

Test(mig_segment, build_wants_exactly_the_listed_files)
{
	struct mig_seg_file one[] = { { "main.lua", main_lua, strlen(main_lua) } };
	struct mig_seg_file dup[] = { { "lib.lua", lib_lua, 3 }, { "lib.lua", lib_lua, 3 } };
	struct mig_seg_file other[] = { { "main.lua", main_lua, 3 }, { "evil.lua", lib_lua, 3 } };
	struct mig_segment *seg = NULL;

	cr_assert_eq(mig_segment_build(manifest, strlen(manifest), one, 1, &seg, &err), MIG_ERR_ARG);
	cr_assert_eq(mig_segment_build(manifest, strlen(manifest), dup, 2, &seg, &err), MIG_ERR_ARG);
	cr_assert_not_null(strstr(err.msg, "twice"));
	cr_assert_eq(mig_segment_build(manifest, strlen(manifest), other, 2, &seg, &err), MIG_ERR_ARG);
	cr_assert_not_null(strstr(err.msg, "lib.lua"));
	cr_assert_null(seg);
}

Test(mig_segment, a_file_over_the_cap_is_refused)
{
	char *big = calloc(1, MIG_SEGMENT_FILE_MAX + 1);
	struct mig_seg_file files[] = {
		{ "main.lua", big, MIG_SEGMENT_FILE_MAX + 1 },
		{ "lib.lua", lib_lua, strlen(lib_lua) },
	};
	struct mig_segment *seg = NULL;

	cr_assert_not_null(big);
	cr_assert_eq(mig_segment_build(manifest, strlen(manifest), files, 2, &seg, &err), MIG_ERR_LIMIT);
	free(big);
}

/* A signed file of the test segment, and its key. */
static uint8_t *signed_file(size_t *len, struct mig_key **kp)
{
	struct mig_segment *seg = build(manifest, main_lua);
	struct mig_key *k = NULL;
	uint8_t *buf = NULL;

	cr_assert_eq(mig_key_generate("author", &k), 0);
	cr_assert_eq(mig_segment_sign(seg, k, &buf, len), 0);
	mig_segment_destroy(&seg);
	if (kp != NULL)
		*kp = k;
	else
		mig_key_destroy(&k);
	return buf;
}

Test(mig_segment, signed_file_round_trips_and_verifies)
{
	struct mig_key *k;
	size_t len, blen;
	uint8_t *buf = signed_file(&len, &k);
	struct mig_segment *seg = NULL, *orig = build(manifest, main_lua);
	uint8_t id[MIG_KEY_ID_LEN];
	const uint8_t *bytes;

	cr_assert_not_null(mig_segment_canonical(orig, &blen));
	cr_assert_eq(len, MIG_SEGMENT_SIGNED_OVERHEAD + blen);
	cr_assert_eq(memcmp(buf, "AGDSEGS\0\0\0\0\x01", 12), 0);
	cr_assert_eq(mig_segment_decode(buf, len, &seg, &err), 0, "%s", err.msg);
	cr_assert_eq(mig_segment_verify(seg), 0);
	cr_assert_eq(memcmp(mig_segment_hash(seg), mig_segment_hash(orig), 32), 0);
	cr_assert_eq(memcmp(mig_segment_signer(seg), mig_key_public(k), MIG_KEY_PUBLIC_LEN), 0);
	mig_key_id(mig_key_public(k), id);
	cr_assert_eq(memcmp(mig_segment_key_id(seg), id, MIG_KEY_ID_LEN), 0);
	bytes = mig_segment_signed_bytes(seg, &blen);
	cr_assert_eq(blen, len);
	cr_assert_eq(memcmp(bytes, buf, len), 0);
	cr_assert_str_eq(mig_segment_manifest(seg)->name, "pinger");
	free(buf);
	mig_key_destroy(&k);
	mig_segment_destroy(&seg);
	mig_segment_destroy(&orig);
}

Test(mig_segment, signature_of_another_key_does_not_verify)
{
	struct mig_key *k, *other = NULL;
	size_t len;
	uint8_t *buf = signed_file(&len, &k);
	struct mig_segment *seg = NULL;
	uint8_t id[MIG_KEY_ID_LEN];

	/* Swap in another key's public key and id: well-formed, but the
	 * signature is not that key's. */
	cr_assert_eq(mig_key_generate("mallory", &other), 0);
	mig_key_id(mig_key_public(other), id);
	memcpy(buf + len - 64 - 32 - 8, id, 8);
	memcpy(buf + len - 64 - 32, mig_key_public(other), 32);
	cr_assert_eq(mig_segment_decode(buf, len, &seg, &err), 0, "%s", err.msg);
	cr_assert_eq(mig_segment_verify(seg), MIG_ERR_SIGNATURE);
	free(buf);
	mig_key_destroy(&k);
	mig_key_destroy(&other);
	mig_segment_destroy(&seg);
}

Test(mig_segment, every_truncation_is_reported_as_truncated)
{
	size_t len;
	uint8_t *buf = signed_file(&len, NULL);

	for (size_t n = 0; n < len; n++) {
		struct mig_segment *seg = NULL;
		/* A fresh copy of exactly n bytes, so ASan sees any overread. */
		uint8_t *cut = malloc(n > 0 ? n : 1);

		memcpy(cut, buf, n);
		cr_assert_eq(mig_segment_decode(cut, n, &seg, &err), MIG_ERR_TRUNCATED, "at %zu: %s", n,
			     err.msg);
		cr_assert_null(seg);
		free(cut);
	}
	free(buf);
}

Test(mig_segment, every_flipped_byte_is_refused)
{
	size_t len;
	uint8_t *buf = signed_file(&len, NULL);

	for (size_t i = 0; i < len; i++) {
		struct mig_segment *seg = NULL;
		int rc;

		buf[i] ^= 0x20;
		rc = mig_segment_decode(buf, len, &seg, &err);
		if (rc == 0)
			rc = mig_segment_verify(seg);
		cr_assert_neq(rc, 0, "flipping byte %zu went unnoticed", i);
		mig_segment_destroy(&seg);
		buf[i] ^= 0x20;
	}
	free(buf);
}

Test(mig_segment, format_errors_are_told_apart)
{
	size_t len;
	uint8_t *buf = signed_file(&len, NULL);
	uint8_t *longer = malloc(len + 1);
	struct mig_segment *seg = NULL;

	/* Another magic, another version, a byte too many. */
	cr_assert_eq(mig_segment_decode("XGDSEG", 6, &seg, &err), MIG_ERR_MALFORMED);
	buf[11] = 2;
	cr_assert_eq(mig_segment_decode(buf, len, &seg, &err), MIG_ERR_VERSION);
	cr_assert_not_null(strstr(err.msg, "version 2"));
	buf[11] = 1;
	memcpy(longer, buf, len);
	longer[len] = 0;
	cr_assert_eq(mig_segment_decode(longer, len + 1, &seg, &err), MIG_ERR_MALFORMED);
	/* A declared length over the cap is refused before anything is read. */
	put32(buf + 12, MIG_SEGMENT_CANON_MAX + 1);
	cr_assert_eq(mig_segment_decode(buf, len, &seg, &err), MIG_ERR_LIMIT);
	cr_assert_null(seg);
	free(longer);
	free(buf);
}

Test(mig_segment, a_non_canonical_manifest_inside_is_refused)
{
	size_t len;
	uint8_t *buf = signed_file(&len, NULL);
	struct mig_segment *seg = NULL;
	/* "name = pinger" -> "name =  inger": same length, still parses as a
	 * manifest, but not in canonical form. */
	uint8_t *p = memmem(buf, len, "name = pinger", 13);

	cr_assert_not_null(p);
	p[7] = ' ';
	cr_assert_eq(mig_segment_decode(buf, len, &seg, &err), MIG_ERR_MALFORMED);
	cr_assert_not_null(strstr(err.msg, "canonical"), "%s", err.msg);
	free(buf);
}

Test(mig_segment, random_damage_never_crashes)
{
	size_t len;
	uint8_t *buf = signed_file(&len, NULL);
	uint8_t *work = malloc(len);
	unsigned refused = 0;

	for (int round = 0; round < 3000; round++) {
		struct mig_segment *seg = NULL;
		size_t n = len - randombytes_uniform((uint32_t)(len / 4));
		int flips = 1 + (int)randombytes_uniform(8);

		memcpy(work, buf, len);
		for (int f = 0; f < flips; f++)
			work[randombytes_uniform((uint32_t)n)] = (uint8_t)randombytes_uniform(256);
		if (mig_segment_decode(work, n, &seg, &err) != 0 || mig_segment_verify(seg) != 0)
			refused++;
		mig_segment_destroy(&seg);
	}
	/* Every damaged copy that changed a byte is refused; a flip that
	 * wrote the same byte back or a cut of 0 bytes may pass. */
	cr_assert_gt(refused, 2500);
	free(work);
	free(buf);
}

Test(mig_segment, segment_loads_from_a_directory_and_files_are_read_whole)
{
	char dir[256], path[512];
	struct mig_segment *seg = NULL, *ref = build(manifest, main_lua);
	FILE *f;

	cr_assert_eq(tst_tmpdir(dir, sizeof dir), 0);
	snprintf(path, sizeof path, "%s/manifest", dir);
	f = fopen(path, "w");
	fputs(manifest, f);
	fclose(f);
	snprintf(path, sizeof path, "%s/main.lua", dir);
	f = fopen(path, "w");
	fputs(main_lua, f);
	fclose(f);
	/* lib.lua missing: a clear I/O error naming it. */
	cr_assert_eq(mig_segment_load_dir(dir, &seg, &err), MIG_ERR_IO);
	cr_assert_not_null(strstr(err.msg, "lib.lua"), "%s", err.msg);
	snprintf(path, sizeof path, "%s/lib.lua", dir);
	f = fopen(path, "w");
	fputs(lib_lua, f);
	fclose(f);
	/* An unlisted file in the directory is not part of the segment. */
	snprintf(path, sizeof path, "%s/notes.txt", dir);
	f = fopen(path, "w");
	fputs("not code", f);
	fclose(f);
	cr_assert_eq(mig_segment_load_dir(dir, &seg, &err), 0, "%s", err.msg);
	cr_assert_eq(memcmp(mig_segment_hash(seg), mig_segment_hash(ref), 32), 0);
	mig_segment_destroy(&seg);
	mig_segment_destroy(&ref);
	tst_rmtree(dir);
}
