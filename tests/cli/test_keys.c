/*
 * test_keys.c: the real agentctl binary makes keys, signs a directory,
 * verifies (with and without a trust store) and inspects, with the
 * documented exit codes: 0 done, 1 failed, 2 usage, 5 missing file,
 * 6 bad signature or untrusted key.
 */
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char dir[256];
static char out[16384];

static void setup(void)
{
	char path[512];
	FILE *f;

	cr_assert_not_null(tst_bin("AGENTCTL_BIN"), "AGENTCTL_BIN not set");
	cr_assert_eq(tst_tmpdir(dir, sizeof dir), 0);
	snprintf(path, sizeof path, "%s/agent", dir);
	cr_assert_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/agent/manifest", dir);
	f = fopen(path, "w");
	fputs("agentd-manifest 1\nname = hello\nversion = 1.0\nentry = main.lua main\n"
	      "mobility = strong\nmemory = 100000\ninstructions = 5000\n"
	      "binding = db by-type kv actions=RB,CP\nfile = main.lua\nfile = util.lua\n", f);
	fclose(f);
	snprintf(path, sizeof path, "%s/agent/main.lua", dir);
	f = fopen(path, "w");
	fputs("function main() agent.log('UNIQUE-MARKER') end\n", f);
	fclose(f);
	snprintf(path, sizeof path, "%s/agent/util.lua", dir);
	f = fopen(path, "w");
	fputs("return {}\n", f);
	fclose(f);
}

static void teardown(void)
{
	tst_rmtree(dir);
}

TestSuite(cli_keys, .init = setup, .fini = teardown, .timeout = 60);

/* Runs `agentctl ARGS` in dir through sh (stderr joined to stdout into
 * out); returns the exit code. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int run(const char *fmt, ...)
{
	char args[2048], cmd[4096];
	va_list ap;
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };

	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>&1", dir, tst_bin("AGENTCTL_BIN"), args);
	return tst_run(argv, out, sizeof out, 30000);
}

/* The value of "key":"..." in out, copied to val. */
static void json_str(const char *key, char *val, size_t len)
{
	char pat[64];
	const char *p, *e;

	snprintf(pat, sizeof pat, "\"%s\":\"", key);
	p = strstr(out, pat);
	cr_assert_not_null(p, "no %s in %s", key, out);
	p += strlen(pat);
	e = strchr(p, '"');
	cr_assert_not_null(e);
	cr_assert_lt((size_t)(e - p), len);
	memcpy(val, p, (size_t)(e - p));
	val[e - p] = '\0';
}

static void keygen_and_sign(void)
{
	cr_assert_eq(run("keygen -o alice --name alice"), 0, "%s", out);
	cr_assert_eq(run("sign agent -k alice.key -o hello.seg"), 0, "%s", out);
}

Test(cli_keys, keygen_writes_a_0600_secret_and_a_public_key)
{
	char path[512];
	struct stat st;

	cr_assert_eq(run("--json keygen -o alice --name alice"), 0, "%s", out);
	cr_assert_not_null(strstr(out, "\"key_id\":\""), "%s", out);
	snprintf(path, sizeof path, "%s/alice.key", dir);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	snprintf(path, sizeof path, "%s/alice.pub", dir);
	cr_assert_eq(stat(path, &st), 0);
	/* A second keygen to the same prefix keeps the first key. */
	cr_assert_eq(run("keygen -o alice"), 1, "%s", out);
	cr_assert_not_null(strstr(out, "exists"), "%s", out);
	cr_assert_eq(run("keygen"), 2);
}

Test(cli_keys, sign_verify_and_inspect_agree_on_the_segment)
{
	char hash[80], hash2[80], id[40], id2[40];

	cr_assert_eq(run("--json keygen -o alice --name alice"), 0, "%s", out);
	json_str("key_id", id, sizeof id);
	cr_assert_eq(run("--json sign agent -k alice.key -o hello.seg"), 0, "%s", out);
	json_str("hash", hash, sizeof hash);
	cr_assert_eq(strlen(hash), 64);
	cr_assert_eq(run("--json verify hello.seg"), 0, "%s", out);
	json_str("hash", hash2, sizeof hash2);
	cr_assert_str_eq(hash, hash2);
	json_str("key_id", id2, sizeof id2);
	cr_assert_str_eq(id, id2);
	cr_assert_eq(run("inspect --json hello.seg"), 0, "%s", out);
	json_str("hash", hash2, sizeof hash2);
	cr_assert_str_eq(hash, hash2);
	cr_assert_not_null(strstr(out, "\"name\":\"hello\""), "%s", out);
	cr_assert_not_null(strstr(out, "\"mobility\":\"strong\""), "%s", out);
	cr_assert_not_null(strstr(out, "\"quotas\":{\"memory\":100000,\"instructions\":5000}"), "%s", out);
	cr_assert_not_null(strstr(out, "\"actions\":[\"RB\",\"CP\"]"), "%s", out);
	cr_assert_not_null(strstr(out, "\"name\":\"util.lua\",\"bytes\":10,\"source_hash\":\""), "%s", out);
	cr_assert_not_null(strstr(out, "\"signature\":\"good\""), "%s", out);
	cr_assert_eq(run("inspect hello.seg"), 0, "%s", out);
	cr_assert_not_null(strstr(out, hash), "%s", out);
	cr_assert_not_null(strstr(out, "signature   good"), "%s", out);
}

Test(cli_keys, a_tampered_segment_fails_verify_with_exit_6)
{
	char path[512], *buf, *p;
	FILE *f;
	long len;

	keygen_and_sign();
	snprintf(path, sizeof path, "%s/hello.seg", dir);
	f = fopen(path, "r+b");
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	buf = malloc((size_t)len);
	fseek(f, 0, SEEK_SET);
	cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
	p = memmem(buf, (size_t)len, "UNIQUE-MARKER", 13);
	cr_assert_not_null(p);
	p[0] = 'X';
	fseek(f, 0, SEEK_SET);
	fwrite(buf, 1, (size_t)len, f);
	fclose(f);
	free(buf);
	cr_assert_eq(run("verify hello.seg"), 6, "%s", out);
	cr_assert_not_null(strstr(out, "BAD signature"), "%s", out);
	/* inspect still shows it, and says the signature is bad. */
	cr_assert_eq(run("inspect hello.seg"), 0, "%s", out);
	cr_assert_not_null(strstr(out, "signature   BAD"), "%s", out);
}

Test(cli_keys, verify_applies_the_trust_store)
{
	keygen_and_sign();
	cr_assert_eq(run("keygen -o bob --name bob"), 0, "%s", out);
	cr_assert_eq(run("verify hello.seg --trust alice.pub"), 0, "%s", out);
	cr_assert_not_null(strstr(out, "trusted"), "%s", out);
	cr_assert_eq(run("verify hello.seg --trust bob.pub"), 6, "%s", out);
	cr_assert_not_null(strstr(out, "does not trust"), "%s", out);
	cr_assert_eq(run("verify hello.seg --trust no-such-trust"), 5, "%s", out);
	/* Limits: a name glob that does not match, a memory limit below the ask. */
	{
		char cmd[1024];
		char *argv[] = { "/bin/sh", "-c", cmd, NULL };

		snprintf(cmd, sizeof cmd,
			 "cd '%s' && sed 's/$/ agents=other*/' alice.pub > t1 && "
			 "sed 's/$/ max-memory=99999/' alice.pub > t2 && "
			 "sed 's/$/ agents=hel* max-memory=100000 max-instructions=5000/' alice.pub > t3",
			 dir);
		cr_assert_eq(tst_run(argv, NULL, 0, 10000), 0);
	}
	cr_assert_eq(run("verify hello.seg --trust t1"), 6, "%s", out);
	cr_assert_not_null(strstr(out, "may not sign an agent named 'hello'"), "%s", out);
	cr_assert_eq(run("verify hello.seg --trust t2"), 6, "%s", out);
	cr_assert_not_null(strstr(out, "limit of 99999 bytes"), "%s", out);
	cr_assert_eq(run("verify hello.seg --trust t3"), 0, "%s", out);
}

Test(cli_keys, sign_refuses_a_key_readable_by_others_and_missing_input)
{
	char path[512];

	cr_assert_eq(run("keygen -o alice"), 0, "%s", out);
	snprintf(path, sizeof path, "%s/alice.key", dir);
	cr_assert_eq(chmod(path, 0640), 0);
	cr_assert_eq(run("sign agent -k alice.key -o x.seg"), 1, "%s", out);
	cr_assert_not_null(strstr(out, "chmod 600"), "%s", out);
	cr_assert_eq(chmod(path, 0600), 0);
	cr_assert_eq(run("sign nodir -k alice.key -o x.seg"), 5, "%s", out);
	cr_assert_eq(run("sign agent -k nokey.key -o x.seg"), 5, "%s", out);
	cr_assert_eq(run("verify no.seg"), 5, "%s", out);
	cr_assert_eq(run("sign agent -k alice.key"), 2, "%s", out);
	/* A file that is not a segment at all. */
	cr_assert_eq(run("verify alice.pub"), 1, "%s", out);
	cr_assert_not_null(strstr(out, "not a signed segment"), "%s", out);
}
