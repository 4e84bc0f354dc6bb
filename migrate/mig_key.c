/*
 * mig_key.c: Ed25519 key pairs and their files (docs/segments.md, "Key
 * files").
 *
 * Every byte of secret material (the seed, the expanded secret key, the hex
 * text of the file, the X25519 secret) is kept in sodium_malloc memory and
 * wiped on every exit path; the file text is parsed in place so that no copy
 * of it reaches the ordinary heap or the stack.
 */
#include "mig_key.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Largest key file read; a real one is about 200 bytes. */
#define KEY_FILE_MAX 1024

struct mig_key {
	uint8_t sk[crypto_sign_SECRETKEYBYTES]; /* Ed25519 secret (seed || public) */
	uint8_t pk[MIG_KEY_PUBLIC_LEN];         /* Ed25519 public key */
	char name[MIG_KEY_NAME_MAX + 1];        /* the key's name, printable */
};

static int fail(struct mig_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct mig_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return code;
}

static int valid_key_name(const char *s, size_t n)
{
	if (n == 0 || n > MIG_KEY_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return 0;
	return 1;
}

static struct mig_key *key_alloc(void)
{
	struct mig_key *k;

	if (sodium_init() < 0)
		return NULL;
	k = sodium_malloc(sizeof *k);
	if (k != NULL)
		sodium_memzero(k, sizeof *k);
	return k;
}

void mig_key_destroy(struct mig_key **kp)
{
	if (kp == NULL || *kp == NULL)
		return;
	sodium_free(*kp); /* sodium_free wipes before it frees */
	*kp = NULL;
}

int mig_key_generate(const char *name, struct mig_key **out)
{
	struct mig_key *k;

	if (out == NULL)
		return MIG_ERR_ARG;
	*out = NULL;
	if (name == NULL)
		name = "key";
	if (!valid_key_name(name, strlen(name)))
		return MIG_ERR_ARG;
	if ((k = key_alloc()) == NULL)
		return MIG_ERR_NOMEM;
	crypto_sign_keypair(k->pk, k->sk);
	memcpy(k->name, name, strlen(name) + 1);
	*out = k;
	return 0;
}

const uint8_t *mig_key_public(const struct mig_key *k)
{
	return k->pk;
}

const char *mig_key_name(const struct mig_key *k)
{
	return k->name;
}

int mig_key_sign(const struct mig_key *k, const void *msg, size_t len, uint8_t sig[MIG_KEY_SIG_LEN])
{
	if (k == NULL || sig == NULL || (msg == NULL && len > 0))
		return MIG_ERR_ARG;
	crypto_sign_detached(sig, NULL, msg, len, k->sk);
	return 0;
}

int mig_key_verify(const uint8_t pk[MIG_KEY_PUBLIC_LEN], const void *msg, size_t len,
		   const uint8_t sig[MIG_KEY_SIG_LEN])
{
	if (sodium_init() < 0)
		return MIG_ERR_SIGNATURE;
	return crypto_sign_verify_detached(sig, msg, len, pk) == 0 ? 0 : MIG_ERR_SIGNATURE;
}

void mig_key_id(const uint8_t pk[MIG_KEY_PUBLIC_LEN], uint8_t id[MIG_KEY_ID_LEN])
{
	uint8_t h[32];

	crypto_generichash(h, sizeof h, pk, MIG_KEY_PUBLIC_LEN, NULL, 0);
	memcpy(id, h, MIG_KEY_ID_LEN);
}

void mig_key_id_hex(const uint8_t pk[MIG_KEY_PUBLIC_LEN], char out[MIG_KEY_ID_HEX_LEN])
{
	uint8_t id[MIG_KEY_ID_LEN];

	mig_key_id(pk, id);
	sodium_bin2hex(out, MIG_KEY_ID_HEX_LEN, id, sizeof id);
}

int mig_key_curve_public(const uint8_t pk[MIG_KEY_PUBLIC_LEN], uint8_t curve_pk[MIG_KEY_CURVE_LEN])
{
	if (sodium_init() < 0)
		return MIG_ERR_ARG;
	return crypto_sign_ed25519_pk_to_curve25519(curve_pk, pk) == 0 ? 0 : MIG_ERR_ARG;
}

int mig_key_curve_secret(const struct mig_key *k, uint8_t curve_sk[MIG_KEY_CURVE_LEN])
{
	if (k == NULL || curve_sk == NULL)
		return MIG_ERR_ARG;
	return crypto_sign_ed25519_sk_to_curve25519(curve_sk, k->sk) == 0 ? 0 : MIG_ERR_ARG;
}

/* Writes all of buf to fd. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Creates path exclusively with mode, writes buf, syncs. Removes the file
 * again on any failure. Returns 0 or an errno value. */
static int write_new_file(const char *path, mode_t mode, const char *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	int e;

	if (fd < 0)
		return errno;
	/* The umask can only narrow the mode; fchmod makes it exactly `mode`
	 * so a public key is readable whatever the umask. */
	if (fchmod(fd, mode) != 0 || write_all(fd, buf, len) != 0 || fsync(fd) != 0) {
		e = errno != 0 ? errno : EIO;
		close(fd);
		unlink(path);
		return e;
	}
	if (close(fd) != 0) {
		e = errno;
		unlink(path);
		return e;
	}
	return 0;
}

int mig_key_save(const struct mig_key *k, const char *prefix, struct mig_error *err)
{
	char keypath[PATH_MAX], pubpath[PATH_MAX], pkhex[2 * MIG_KEY_PUBLIC_LEN + 1];
	char pubtext[sizeof MIG_KEY_PUBLIC_MAGIC + sizeof pkhex + MIG_KEY_NAME_MAX + 8];
	/* Secret text layout: magic, name, seed and public lines. */
	const size_t seclen_max = sizeof MIG_KEY_SECRET_MAGIC + MIG_KEY_NAME_MAX + 2 * 32 + sizeof pkhex + 32;
	char *sectext = NULL;
	int n, e, publen;

	if (k == NULL || prefix == NULL || *prefix == '\0')
		return fail(err, MIG_ERR_ARG, "no key or prefix");
	if ((size_t)snprintf(keypath, sizeof keypath, "%s.key", prefix) >= sizeof keypath ||
	    (size_t)snprintf(pubpath, sizeof pubpath, "%s.pub", prefix) >= sizeof pubpath)
		return fail(err, MIG_ERR_ARG, "prefix too long");
	sodium_bin2hex(pkhex, sizeof pkhex, k->pk, sizeof k->pk);
	publen = snprintf(pubtext, sizeof pubtext, "%s %s %s\n", MIG_KEY_PUBLIC_MAGIC, pkhex, k->name);
	if (publen < 0 || (size_t)publen >= sizeof pubtext)
		return fail(err, MIG_ERR_ARG, "bad key name");

	sectext = sodium_malloc(seclen_max);
	if (sectext == NULL)
		return fail(err, MIG_ERR_NOMEM, "out of memory");
	{
		size_t pos;

		/* seed = the first 32 bytes of libsodium's secret key. */
		pos = (size_t)snprintf(sectext, seclen_max, "%s\nname %s\nseed ", MIG_KEY_SECRET_MAGIC, k->name);
		sodium_bin2hex(sectext + pos, seclen_max - pos, k->sk, crypto_sign_SEEDBYTES);
		pos += 2 * crypto_sign_SEEDBYTES;
		n = snprintf(sectext + pos, seclen_max - pos, "\npublic %s\n", pkhex);
		pos += (size_t)n;
		e = write_new_file(keypath, 0600, sectext, pos);
	}
	sodium_free(sectext);
	if (e != 0)
		return fail(err, MIG_ERR_IO, "cannot write %s: %s", keypath, strerror(e));
	e = write_new_file(pubpath, 0644, pubtext, (size_t)publen);
	if (e != 0) {
		unlink(keypath);
		return fail(err, MIG_ERR_IO, "cannot write %s: %s", pubpath, strerror(e));
	}
	return 0;
}

/* Cuts the next line (without its '\n') from [*p, end). */
static int next_line(const char **p, const char *end, const char **line, size_t *len)
{
	const char *nl;

	if (*p >= end)
		return -1;
	nl = memchr(*p, '\n', (size_t)(end - *p));
	*line = *p;
	*len = (size_t)((nl != NULL ? nl : end) - *p);
	*p = nl != NULL ? nl + 1 : end;
	return 0;
}

/* Whether line is `word` SP value; sets *val, *vlen. */
static int field(const char *line, size_t len, const char *word, const char **val, size_t *vlen)
{
	size_t w = strlen(word);

	if (len <= w + 1 || memcmp(line, word, w) != 0 || line[w] != ' ')
		return 0;
	*val = line + w + 1;
	*vlen = len - w - 1;
	return 1;
}

/* Exactly 2 * n hex digits into out. */
static int hex_exact(const char *hex, size_t hexlen, uint8_t *out, size_t n)
{
	size_t got = 0;

	if (hexlen != 2 * n)
		return -1;
	if (sodium_hex2bin(out, n, hex, hexlen, NULL, &got, NULL) != 0 || got != n)
		return -1;
	return 0;
}

static int parse_secret(const char *text, size_t len, struct mig_key *k, uint8_t *seed)
{
	const char *p = text, *end = text + len, *line, *val;
	size_t n, vlen;
	uint8_t pk[MIG_KEY_PUBLIC_LEN];

	if (next_line(&p, end, &line, &n) != 0 || n != strlen(MIG_KEY_SECRET_MAGIC) ||
	    memcmp(line, MIG_KEY_SECRET_MAGIC, n) != 0)
		return -1;
	if (next_line(&p, end, &line, &n) != 0 || !field(line, n, "name", &val, &vlen) ||
	    !valid_key_name(val, vlen))
		return -1;
	memcpy(k->name, val, vlen);
	k->name[vlen] = '\0';
	if (next_line(&p, end, &line, &n) != 0 || !field(line, n, "seed", &val, &vlen) ||
	    hex_exact(val, vlen, seed, crypto_sign_SEEDBYTES) != 0)
		return -1;
	if (next_line(&p, end, &line, &n) != 0 || !field(line, n, "public", &val, &vlen) ||
	    hex_exact(val, vlen, pk, sizeof pk) != 0)
		return -1;
	if (p != end)
		return -1;
	if (crypto_sign_seed_keypair(k->pk, k->sk, seed) != 0)
		return -1;
	/* A file whose public line does not match its seed has been edited or
	 * damaged: signing with it would name the wrong author. */
	if (sodium_memcmp(pk, k->pk, sizeof pk) != 0)
		return -1;
	return 0;
}

int mig_key_load(const char *path, struct mig_key **out, struct mig_error *err)
{
	struct mig_key *k = NULL;
	char *text = NULL;
	uint8_t *seed = NULL;
	struct stat st;
	size_t len = 0;
	int fd = -1, rc;

	if (out == NULL || path == NULL)
		return fail(err, MIG_ERR_ARG, "no path");
	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = fail(err, MIG_ERR_IO, "cannot open %s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		rc = fail(err, MIG_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = fail(err, MIG_ERR_IO, "%s is not a regular file", path);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		rc = fail(err, MIG_ERR_IO,
			  "secret key file %s has mode %04o, readable by others: refusing it "
			  "(chmod 600 %s)",
			  path, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	k = key_alloc();
	text = sodium_malloc(KEY_FILE_MAX + 1);
	seed = sodium_malloc(crypto_sign_SEEDBYTES);
	if (k == NULL || text == NULL || seed == NULL) {
		rc = fail(err, MIG_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, text + len, KEY_FILE_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = fail(err, MIG_ERR_IO, "cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > KEY_FILE_MAX) {
			rc = fail(err, MIG_ERR_MALFORMED, "%s: too large for a key file", path);
			goto out;
		}
	}
	if (parse_secret(text, len, k, seed) != 0) {
		rc = fail(err, MIG_ERR_MALFORMED, "%s: not an %s file, or damaged", path,
			  MIG_KEY_SECRET_MAGIC);
		goto out;
	}
	*out = k;
	k = NULL;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (text != NULL)
		sodium_free(text);
	if (seed != NULL)
		sodium_free(seed);
	mig_key_destroy(&k);
	return rc;
}

int mig_key_parse_public(const char *line, size_t len, uint8_t pk[MIG_KEY_PUBLIC_LEN], char *name)
{
	const size_t mlen = strlen(MIG_KEY_PUBLIC_MAGIC);
	const char *p, *end;

	if (line == NULL || pk == NULL)
		return MIG_ERR_ARG;
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	end = line + len;
	if (len < mlen + 1 + 64 + 2 || memcmp(line, MIG_KEY_PUBLIC_MAGIC, mlen) != 0 ||
	    line[mlen] != ' ')
		return MIG_ERR_MALFORMED;
	p = line + mlen + 1;
	if (hex_exact(p, 64, pk, MIG_KEY_PUBLIC_LEN) != 0 || p[64] != ' ')
		return MIG_ERR_MALFORMED;
	p += 65;
	if (!valid_key_name(p, (size_t)(end - p)))
		return MIG_ERR_MALFORMED;
	if (name != NULL) {
		memcpy(name, p, (size_t)(end - p));
		name[end - p] = '\0';
	}
	return 0;
}

int mig_key_load_public(const char *path, uint8_t pk[MIG_KEY_PUBLIC_LEN], char *name,
			struct mig_error *err)
{
	char buf[512];
	FILE *f;
	size_t n;

	if (path == NULL || pk == NULL)
		return fail(err, MIG_ERR_ARG, "no path");
	f = fopen(path, "re");
	if (f == NULL)
		return fail(err, MIG_ERR_IO, "cannot open %s: %s", path, strerror(errno));
	if (fgets(buf, sizeof buf, f) == NULL) {
		fclose(f);
		return fail(err, MIG_ERR_MALFORMED, "%s: empty", path);
	}
	fclose(f);
	n = strlen(buf);
	if (mig_key_parse_public(buf, n, pk, name) != 0)
		return fail(err, MIG_ERR_MALFORMED, "%s: not an %s line", path, MIG_KEY_PUBLIC_MAGIC);
	return 0;
}
