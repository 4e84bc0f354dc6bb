/*
 * test_key.c: key files are written in the documented text format with the
 * documented modes, read back to the same key, refused when readable by
 * others or damaged, and a host key's CURVE form is a working X25519 pair.
 */
#include "mig_key.h"
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char dir[256];
static char prefix[512];
static struct mig_error err;

static void setup(void)
{
	cr_assert_eq(tst_tmpdir(dir, sizeof dir), 0);
	snprintf(prefix, sizeof prefix, "%s/alice", dir);
}

static void teardown(void)
{
	tst_rmtree(dir);
}

TestSuite(mig_key, .init = setup, .fini = teardown, .timeout = 30);

static void path_of(char *out, size_t len, const char *ext)
{
	snprintf(out, len, "%s%s", prefix, ext);
}

static size_t read_text(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	cr_assert_not_null(f, "%s", path);
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
	return n;
}

Test(mig_key, saved_key_loads_back_and_signs_the_same)
{
	struct mig_key *k = NULL, *back = NULL;
	char keypath[600];
	uint8_t sig[MIG_KEY_SIG_LEN];

	cr_assert_eq(mig_key_generate("alice", &k), 0);
	cr_assert_eq(mig_key_save(k, prefix, &err), 0, "%s", err.msg);
	path_of(keypath, sizeof keypath, ".key");
	cr_assert_eq(mig_key_load(keypath, &back, &err), 0, "%s", err.msg);
	cr_assert_eq(memcmp(mig_key_public(k), mig_key_public(back), MIG_KEY_PUBLIC_LEN), 0);
	cr_assert_str_eq(mig_key_name(back), "alice");
	cr_assert_eq(mig_key_sign(back, "hello", 5, sig), 0);
	cr_assert_eq(mig_key_verify(mig_key_public(k), "hello", 5, sig), 0);
	cr_assert_eq(mig_key_verify(mig_key_public(k), "hellO", 5, sig), MIG_ERR_SIGNATURE);
	mig_key_destroy(&k);
	mig_key_destroy(&back);
	cr_assert_null(back);
	mig_key_destroy(&back); /* NULL-safe */
}

Test(mig_key, files_have_the_documented_format_and_modes)
{
	struct mig_key *k = NULL;
	char path[600], text[1024], hex[65], expect[256];
	struct stat st;
	uint8_t pk[32];
	char name[MIG_KEY_NAME_MAX + 1];

	umask(0);
	cr_assert_eq(mig_key_generate("alice@host-1", &k), 0);
	cr_assert_eq(mig_key_save(k, prefix, &err), 0, "%s", err.msg);
	sodium_bin2hex(hex, sizeof hex, mig_key_public(k), 32);

	path_of(path, sizeof path, ".key");
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	read_text(path, text, sizeof text);
	cr_assert_eq(strncmp(text, "agentd-secret-key v1\nname alice@host-1\nseed ", 44), 0, "%s", text);
	snprintf(expect, sizeof expect, "\npublic %s\n", hex);
	cr_assert_not_null(strstr(text, expect));

	path_of(path, sizeof path, ".pub");
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0644);
	read_text(path, text, sizeof text);
	snprintf(expect, sizeof expect, "agentd-public-key v1 %s alice@host-1\n", hex);
	cr_assert_str_eq(text, expect);
	cr_assert_eq(mig_key_load_public(path, pk, name, &err), 0, "%s", err.msg);
	cr_assert_eq(memcmp(pk, mig_key_public(k), 32), 0);
	cr_assert_str_eq(name, "alice@host-1");
	mig_key_destroy(&k);
}

Test(mig_key, secret_file_readable_by_others_is_refused)
{
	struct mig_key *k = NULL, *back = NULL;
	char keypath[600];

	cr_assert_eq(mig_key_generate("alice", &k), 0);
	cr_assert_eq(mig_key_save(k, prefix, &err), 0);
	path_of(keypath, sizeof keypath, ".key");
	for (mode_t mode = 0601; mode <= 0677; mode++) {
		if ((mode & 077) == 0)
			continue;
		cr_assert_eq(chmod(keypath, mode), 0);
		cr_assert_eq(mig_key_load(keypath, &back, &err), MIG_ERR_IO, "mode %o", (unsigned)mode);
		cr_assert_null(back);
		cr_assert_not_null(strstr(err.msg, "chmod 600"), "%s", err.msg);
	}
	cr_assert_eq(chmod(keypath, 0400), 0);
	cr_assert_eq(mig_key_load(keypath, &back, &err), 0, "%s", err.msg);
	mig_key_destroy(&back);
	mig_key_destroy(&k);
}

Test(mig_key, existing_files_are_never_overwritten)
{
	struct mig_key *a = NULL, *b = NULL, *back = NULL;
	char keypath[600];

	cr_assert_eq(mig_key_generate("a", &a), 0);
	cr_assert_eq(mig_key_generate("b", &b), 0);
	cr_assert_eq(mig_key_save(a, prefix, &err), 0);
	cr_assert_eq(mig_key_save(b, prefix, &err), MIG_ERR_IO);
	cr_assert_not_null(strstr(err.msg, "exists"), "%s", err.msg);
	path_of(keypath, sizeof keypath, ".key");
	cr_assert_eq(mig_key_load(keypath, &back, &err), 0);
	cr_assert_eq(memcmp(mig_key_public(back), mig_key_public(a), 32), 0);
	mig_key_destroy(&a);
	mig_key_destroy(&b);
	mig_key_destroy(&back);
}

Test(mig_key, damaged_secret_files_are_refused)
{
	struct mig_key *k = NULL, *back = NULL;
	char keypath[600], text[1024];
	size_t n;

	cr_assert_eq(mig_key_generate("alice", &k), 0);
	cr_assert_eq(mig_key_save(k, prefix, &err), 0);
	path_of(keypath, sizeof keypath, ".key");
	n = read_text(keypath, text, sizeof text);
	/* Change each byte in turn (keeping the file 0600): none loads a key
	 * that differs from the original, and most are refused outright. */
	for (size_t i = 0; i < n; i++) {
		FILE *f = fopen(keypath, "w");
		char save = text[i];

		text[i] = text[i] == '0' ? '1' : '0';
		fwrite(text, 1, n, f);
		fclose(f);
		if (mig_key_load(keypath, &back, &err) == 0) {
			/* Only the name line may change and still load. */
			cr_assert_eq(memcmp(mig_key_public(back), mig_key_public(k), 32), 0, "byte %zu", i);
			mig_key_destroy(&back);
		} else {
			cr_assert_eq(err.code, MIG_ERR_MALFORMED, "byte %zu: %s", i, err.msg);
		}
		text[i] = save;
	}
	mig_key_destroy(&k);
}

Test(mig_key, public_lines_are_parsed_strictly)
{
	uint8_t pk[32];
	char name[MIG_KEY_NAME_MAX + 1];
	const char *hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	char line[256];

	snprintf(line, sizeof line, "agentd-public-key v1 %s bob\n", hex);
	cr_assert_eq(mig_key_parse_public(line, strlen(line), pk, name), 0);
	cr_assert_str_eq(name, "bob");
	cr_assert_eq(pk[1], 0x11);
	snprintf(line, sizeof line, "agentd-public-key v2 %s bob", hex);
	cr_assert_eq(mig_key_parse_public(line, strlen(line), pk, name), MIG_ERR_MALFORMED);
	snprintf(line, sizeof line, "agentd-public-key v1 %.62s bob", hex);
	cr_assert_eq(mig_key_parse_public(line, strlen(line), pk, name), MIG_ERR_MALFORMED);
	snprintf(line, sizeof line, "agentd-public-key v1 %s", hex);
	cr_assert_eq(mig_key_parse_public(line, strlen(line), pk, name), MIG_ERR_MALFORMED);
	snprintf(line, sizeof line, "agentd-public-key v1 %s bob smith", hex);
	cr_assert_eq(mig_key_parse_public(line, strlen(line), pk, name), MIG_ERR_MALFORMED);
	snprintf(line, sizeof line, "agentd-public-key v1 %.63sg bob", hex);
	cr_assert_eq(mig_key_parse_public(line, strlen(line), pk, name), MIG_ERR_MALFORMED);
}

Test(mig_key, key_id_is_the_head_of_the_public_key_hash)
{
	struct mig_key *k = NULL;
	uint8_t h[32], id[MIG_KEY_ID_LEN];
	char hex[MIG_KEY_ID_HEX_LEN], expect[17];

	cr_assert_eq(mig_key_generate(NULL, &k), 0);
	cr_assert_str_eq(mig_key_name(k), "key");
	crypto_generichash(h, sizeof h, mig_key_public(k), 32, NULL, 0);
	mig_key_id(mig_key_public(k), id);
	cr_assert_eq(memcmp(id, h, 8), 0);
	mig_key_id_hex(mig_key_public(k), hex);
	sodium_bin2hex(expect, sizeof expect, h, 8);
	cr_assert_str_eq(hex, expect);
	mig_key_destroy(&k);
}

Test(mig_key, curve_keys_of_two_hosts_agree_on_a_shared_secret)
{
	struct mig_key *a = NULL, *b = NULL;
	uint8_t *ska, *skb;
	uint8_t pka[32], pkb[32], s1[32], s2[32], derived[32];

	cr_assert_geq(sodium_init(), 0);
	ska = sodium_malloc(32);
	skb = sodium_malloc(32);

	cr_assert_eq(mig_key_generate("h1", &a), 0);
	cr_assert_eq(mig_key_generate("h2", &b), 0);
	cr_assert_eq(mig_key_curve_secret(a, ska), 0);
	cr_assert_eq(mig_key_curve_secret(b, skb), 0);
	cr_assert_eq(mig_key_curve_public(mig_key_public(a), pka), 0);
	cr_assert_eq(mig_key_curve_public(mig_key_public(b), pkb), 0);
	/* The public half is the one the secret half makes. */
	cr_assert_eq(crypto_scalarmult_base(derived, ska), 0);
	cr_assert_eq(memcmp(derived, pka, 32), 0);
	cr_assert_eq(crypto_scalarmult(s1, ska, pkb), 0);
	cr_assert_eq(crypto_scalarmult(s2, skb, pka), 0);
	cr_assert_eq(memcmp(s1, s2, 32), 0);
	sodium_free(ska);
	sodium_free(skb);
	mig_key_destroy(&a);
	mig_key_destroy(&b);
}

Test(mig_key, bad_names_are_refused)
{
	struct mig_key *k = NULL;

	cr_assert_eq(mig_key_generate("two words", &k), MIG_ERR_ARG);
	cr_assert_eq(mig_key_generate("", &k), MIG_ERR_ARG);
	cr_assert_eq(mig_key_generate("line\nbreak", &k), MIG_ERR_ARG);
	cr_assert_null(k);
}
