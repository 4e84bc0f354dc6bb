/*
 * test_trust.c: a daemon's trust store admits a segment only when its
 * signature verifies, its key is listed, the key may sign that agent name
 * and the manifest's quotas are within the key's limits; a byte flipped in
 * any part of a signed segment (manifest, each source file, key id, public
 * key, signature) is refused, and each refusal says why.
 */
#include "agd_trust.h"
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct mig_key *alice, *bob;
static char why[AGD_TRUST_WHY_MAX];

static void setup(void)
{
	cr_assert_eq(mig_key_generate("alice", &alice), 0);
	cr_assert_eq(mig_key_generate("bob", &bob), 0);
}

static void teardown(void)
{
	mig_key_destroy(&alice);
	mig_key_destroy(&bob);
}

TestSuite(agd_trust, .init = setup, .fini = teardown, .timeout = 60);

static const char main_lua[] = "function main() agent.log('hi') end\n";
static const char util_lua[] = "return { twice = function(x) return 2 * x end }\n";

/* A signed segment named `name` asking `memory` bytes and `instr`
 * instructions, signed by k; the caller frees *buf. */
static uint8_t *make(const char *name, unsigned long long memory, unsigned long long instr,
		     struct mig_key *k, size_t *len)
{
	char manifest[512];
	struct mig_seg_file files[] = {
		{ "main.lua", main_lua, strlen(main_lua) },
		{ "util.lua", util_lua, strlen(util_lua) },
	};
	struct mig_segment *seg = NULL;
	struct mig_error err;
	uint8_t *buf = NULL;

	snprintf(manifest, sizeof manifest,
		 "agentd-manifest 1\nname = %s\nversion = 1\nentry = main.lua main\nmobility = both\n"
		 "memory = %llu\ninstructions = %llu\nfile = main.lua\nfile = util.lua\n",
		 name, memory, instr);
	cr_assert_eq(mig_segment_build(manifest, strlen(manifest), files, 2, &seg, &err), 0, "%s", err.msg);
	cr_assert_eq(mig_segment_sign(seg, k, &buf, len), 0);
	mig_segment_destroy(&seg);
	return buf;
}

static struct mig_segment *decode(const uint8_t *buf, size_t len)
{
	struct mig_segment *seg = NULL;
	struct mig_error err;

	cr_assert_eq(mig_segment_decode(buf, len, &seg, &err), 0, "%s", err.msg);
	return seg;
}

/* The trust line for k with extra options. */
static void line_for(struct mig_key *k, const char *opts, char *out, size_t cap)
{
	char hex[65];

	sodium_bin2hex(hex, sizeof hex, mig_key_public(k), 32);
	snprintf(out, cap, "agentd-public-key v1 %s %s%s%s\n", hex, mig_key_name(k),
		 opts[0] ? " " : "", opts);
}

static struct agd_trust *store_of(const char *text)
{
	struct agd_trust *t = NULL;

	cr_assert_eq(agd_trust_parse(text, strlen(text), &t, why, sizeof why), 0, "%s", why);
	return t;
}

/* Decides a fresh segment (name, memory, instr) by alice under `opts`. */
static int decide(const char *opts, const char *name, unsigned long long memory,
		  unsigned long long instr)
{
	char text[1024];
	size_t len;
	uint8_t *buf = make(name, memory, instr, alice, &len);
	struct mig_segment *seg = decode(buf, len);
	struct agd_trust *t;
	int rc;

	snprintf(text, sizeof text, "# the authors this host runs\n\n");
	line_for(alice, opts, text + strlen(text), sizeof text - strlen(text));
	t = store_of(text);
	rc = agd_trust_decide(t, seg, why, sizeof why);
	agd_trust_destroy(&t);
	mig_segment_destroy(&seg);
	free(buf);
	return rc;
}

Test(agd_trust, a_listed_key_without_limits_is_trusted)
{
	cr_assert_eq(decide("", "pinger", 0, 0), 0, "%s", why);
	cr_assert_not_null(strstr(why, "alice"));
}

Test(agd_trust, an_unlisted_key_is_refused_with_its_id)
{
	char text[512], id[MIG_KEY_ID_HEX_LEN];
	size_t len;
	uint8_t *buf = make("pinger", 0, 0, bob, &len);
	struct mig_segment *seg = decode(buf, len);
	struct agd_trust *t;

	line_for(alice, "", text, sizeof text);
	t = store_of(text);
	cr_assert_eq(agd_trust_decide(t, seg, why, sizeof why), AGD_TRUST_ERR_UNKNOWN_KEY);
	mig_key_id_hex(mig_key_public(bob), id);
	cr_assert_not_null(strstr(why, id), "%s", why);
	cr_assert_not_null(strstr(why, "does not trust"), "%s", why);
	agd_trust_destroy(&t);
	mig_segment_destroy(&seg);
	free(buf);
}

Test(agd_trust, agent_names_are_limited_by_globs)
{
	cr_assert_eq(decide("agents=ping*,counter", "pinger", 0, 0), 0, "%s", why);
	cr_assert_eq(decide("agents=ping*,counter", "counter", 0, 0), 0, "%s", why);
	cr_assert_eq(decide("agents=ping*,counter", "counter2", 0, 0), AGD_TRUST_ERR_NAME);
	cr_assert_not_null(strstr(why, "'counter2'"), "%s", why);
	cr_assert_eq(decide("agents=p?ng", "pong", 0, 0), 0, "%s", why);
	cr_assert_eq(decide("agents=p?ng", "pinger", 0, 0), AGD_TRUST_ERR_NAME);
}

Test(agd_trust, quotas_over_the_key_limits_are_refused)
{
	cr_assert_eq(decide("max-memory=1000000", "a", 1000000, 0), 0, "%s", why);
	cr_assert_eq(decide("max-memory=1000000", "a", 1000001, 0), AGD_TRUST_ERR_QUOTA);
	cr_assert_not_null(strstr(why, "memory 1000001"), "%s", why);
	cr_assert_not_null(strstr(why, "1000000 bytes"), "%s", why);
	/* "Host default" cannot be promised to fit under a limit. */
	cr_assert_eq(decide("max-memory=1000000", "a", 0, 0), AGD_TRUST_ERR_QUOTA);
	cr_assert_not_null(strstr(why, "host default"), "%s", why);
	cr_assert_eq(decide("max-instructions=500", "a", 0, 500), 0, "%s", why);
	cr_assert_eq(decide("max-instructions=500", "a", 0, 501), AGD_TRUST_ERR_QUOTA);
	cr_assert_not_null(strstr(why, "instructions 501"), "%s", why);
	cr_assert_eq(decide("agents=a max-memory=10 max-instructions=10", "a", 10, 10), 0, "%s", why);
}

/* Flips each byte of [off, off + n) of a signed segment in turn and checks
 * that the trust store refuses it; returns how many were refused with
 * exactly `code` after a successful decode (the rest failed to decode). */
static size_t flip_range(struct agd_trust *t, uint8_t *buf, size_t len, size_t off, size_t n,
			 int code, const char *part)
{
	size_t with_code = 0;

	cr_assert_leq(off + n, len, "%s", part);
	cr_assert_gt(n, 0, "%s", part);
	for (size_t i = off; i < off + n; i++) {
		struct mig_segment *seg = NULL;
		struct mig_error err;
		int rc;

		buf[i] ^= 0x01;
		rc = mig_segment_decode(buf, len, &seg, &err);
		if (rc == 0) {
			rc = agd_trust_decide(t, seg, why, sizeof why);
			cr_assert_neq(rc, 0, "%s: flipping byte %zu was accepted", part, i);
			if (rc == code)
				with_code++;
		}
		mig_segment_destroy(&seg);
		buf[i] ^= 0x01;
	}
	return with_code;
}

Test(agd_trust, a_flipped_byte_in_any_part_is_refused)
{
	char text[512];
	size_t len, mlen, clen, off;
	uint8_t *buf = make("pinger", 0, 0, alice, &len);
	struct mig_segment *seg = decode(buf, len);
	struct agd_trust *t;

	line_for(alice, "", text, sizeof text);
	t = store_of(text);
	cr_assert_eq(agd_trust_decide(t, seg, why, sizeof why), 0, "%s", why);
	mig_segment_manifest_text(seg, &mlen);
	mig_segment_canonical(seg, &clen);

	/* Layout (docs/segments.md): 16-byte header, then canonical bytes:
	 * 8 magic, 4 manifest length, manifest, 4 file count, then per file
	 * 2 + name + 4 + text; then key id, public key, signature. */
	off = 16 + 8 + 4;
	flip_range(t, buf, len, off, mlen, AGD_TRUST_ERR_SIGNATURE, "manifest");
	/* Flipping the case of a letter of the name keeps a valid canonical
	 * manifest: only the signature can tell, and it does. */
	{
		uint8_t *p = memmem(buf, len, "name = pinger", 13);

		cr_assert_not_null(p);
		cr_assert_eq(flip_range(t, buf, len, (size_t)(p - buf) + 7, 1, AGD_TRUST_ERR_SIGNATURE,
					"name"), 1);
	}
	off += mlen + 4;
	off += 2 + strlen("main.lua") + 4;
	cr_assert_eq(memcmp(buf + off, main_lua, strlen(main_lua)), 0);
	cr_assert_eq(flip_range(t, buf, len, off, strlen(main_lua), AGD_TRUST_ERR_SIGNATURE, "main.lua"),
		     strlen(main_lua), "every byte of a source file is covered by the signature");
	off += strlen(main_lua);
	off += 2 + strlen("util.lua") + 4;
	cr_assert_eq(memcmp(buf + off, util_lua, strlen(util_lua)), 0);
	cr_assert_eq(flip_range(t, buf, len, off, strlen(util_lua), AGD_TRUST_ERR_SIGNATURE, "util.lua"),
		     strlen(util_lua));
	off += strlen(util_lua);
	cr_assert_eq(off, 16 + clen);
	/* Key id: refused at decode (it must match the public key). */
	cr_assert_eq(flip_range(t, buf, len, off, MIG_KEY_ID_LEN, 0, "key id"), 0);
	off += MIG_KEY_ID_LEN;
	/* Public key: its id no longer matches, refused at decode too. */
	flip_range(t, buf, len, off, MIG_KEY_PUBLIC_LEN, AGD_TRUST_ERR_UNKNOWN_KEY, "public key");
	off += MIG_KEY_PUBLIC_LEN;
	cr_assert_eq(flip_range(t, buf, len, off, MIG_KEY_SIG_LEN, AGD_TRUST_ERR_SIGNATURE, "signature"),
		     MIG_KEY_SIG_LEN);
	cr_assert_eq(off + MIG_KEY_SIG_LEN, len);
	/* And the untouched file is still trusted. */
	cr_assert_eq(agd_trust_decide(t, seg, why, sizeof why), 0, "%s", why);
	agd_trust_destroy(&t);
	mig_segment_destroy(&seg);
	free(buf);
}

Test(agd_trust, an_unsigned_segment_is_refused)
{
	static const char m[] = "agentd-manifest 1\nname = a\nversion = 1\nentry = a.lua f\n"
				"mobility = weak\nfile = a.lua\n";
	struct mig_seg_file f = { "a.lua", "x = 1", 5 };
	struct mig_segment *seg = NULL;
	struct agd_trust *t;
	char text[512];

	cr_assert_eq(mig_segment_build(m, strlen(m), &f, 1, &seg, NULL), 0);
	line_for(alice, "", text, sizeof text);
	t = store_of(text);
	cr_assert_eq(agd_trust_decide(t, seg, why, sizeof why), AGD_TRUST_ERR_SIGNATURE);
	cr_assert_not_null(strstr(why, "not signed"));
	agd_trust_destroy(&t);
	mig_segment_destroy(&seg);
}

Test(agd_trust, malformed_stores_are_refused_with_the_line)
{
	char good[512], text[1200];
	struct agd_trust *t = NULL;
	static const char *const opts[] = { "agents=", "agents=a,,b", "agents=a/b", "max-memory=",
					    "max-memory=12k", "max-instructions=-1", "colour=blue",
					    "max-memory=1 max-memory=2" };

	line_for(alice, "", good, sizeof good);
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
		snprintf(text, sizeof text, "# c\n");
		line_for(alice, opts[i], text + strlen(text), sizeof text - strlen(text));
		cr_assert_eq(agd_trust_parse(text, strlen(text), &t, why, sizeof why), AGD_TRUST_ERR_SYNTAX,
			     "%s", opts[i]);
		cr_assert_not_null(strstr(why, ":2:"), "%s", why);
		cr_assert_null(t);
	}
	snprintf(text, sizeof text, "%s%s", good, good);
	cr_assert_eq(agd_trust_parse(text, strlen(text), &t, why, sizeof why), AGD_TRUST_ERR_SYNTAX);
	cr_assert_not_null(strstr(why, "twice"), "%s", why);
	cr_assert_eq(agd_trust_parse("ssh-ed25519 AAAA x\n", 19, &t, why, sizeof why), AGD_TRUST_ERR_SYNTAX);
	cr_assert_eq(agd_trust_load("/nonexistent/trust", &t, why, sizeof why), AGD_TRUST_ERR_IO);
	cr_assert_not_null(strstr(why, "/nonexistent/trust"));
}

Test(agd_trust, store_loads_from_a_file_and_finds_keys_by_either_form)
{
	char dir[256], path[300], text[1024], name[MIG_KEY_NAME_MAX + 1];
	struct agd_trust *t = NULL;
	uint8_t curve[32], pk[32];
	FILE *f;

	cr_assert_eq(tst_tmpdir(dir, sizeof dir), 0);
	snprintf(path, sizeof path, "%s/trust", dir);
	line_for(alice, "agents=x*", text, sizeof text);
	line_for(bob, "", text + strlen(text), sizeof text - strlen(text));
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	cr_assert_eq(agd_trust_load(path, &t, why, sizeof why), 0, "%s", why);
	cr_assert_eq(agd_trust_count(t), 2);
	cr_assert_eq(agd_trust_find(t, mig_key_public(bob), name), 1);
	cr_assert_str_eq(name, "bob");
	cr_assert_eq(mig_key_curve_public(mig_key_public(alice), curve), 0);
	cr_assert_eq(agd_trust_find_curve(t, curve, name), 1);
	cr_assert_str_eq(name, "alice");
	cr_assert_eq(agd_trust_key(t, 1, pk, curve, name), 0);
	cr_assert_eq(memcmp(pk, mig_key_public(bob), 32), 0);
	cr_assert_eq(agd_trust_key(t, 2, pk, curve, name), AGD_TRUST_ERR_ARG);
	curve[0] ^= 1;
	cr_assert_eq(agd_trust_find_curve(t, curve, NULL), 0);
	agd_trust_destroy(&t);
	cr_assert_null(t);
	tst_rmtree(dir);
}

Test(agd_trust, strerror_names_every_refusal)
{
	cr_assert_str_eq(agd_trust_strerror(AGD_TRUST_ERR_SIGNATURE), "bad signature");
	cr_assert_str_eq(agd_trust_strerror(AGD_TRUST_ERR_UNKNOWN_KEY), "signed by an untrusted key");
	cr_assert_str_eq(agd_trust_strerror(-9999), "unknown trust error");
}
