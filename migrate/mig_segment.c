/*
 * mig_segment.c: canonical bytes, hashing, signing and decoding of code
 * segments (docs/segments.md, "Canonical bytes" and "Signed segment file").
 *
 * Building and decoding share one reader: mig_segment_build writes the
 * canonical bytes and then parses them like any received segment, so a
 * segment made here and one received from a peer are checked by the same
 * code and cannot disagree about what they contain.
 */
#include "mig_segment.h"

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

static const uint8_t canon_magic[8] = { 'A', 'G', 'D', 'S', 'E', 'G', 'C', 0x01 };
static const uint8_t signed_magic[8] = { 'A', 'G', 'D', 'S', 'E', 'G', 'S', 0x00 };

/* One source file of a parsed segment; pointers into seg->bytes. */
struct seg_file {
	const char *text;                   /* file text, not NUL-terminated */
	size_t len;                         /* bytes of text */
	uint8_t hash[MIG_SEGMENT_HASH_LEN]; /* BLAKE2b-256 of the text alone */
};

struct mig_segment {
	uint8_t *bytes;            /* owned: the signed file, or canonical bytes only */
	size_t len;                /* bytes of `bytes` */
	size_t canon_off;          /* where the canonical bytes start in `bytes` */
	size_t canon_len;          /* their length */
	int is_signed;             /* 1: bytes is a signed file with the fields below */
	const uint8_t *key_id;     /* into bytes (signed only) */
	const uint8_t *signer;     /* into bytes (signed only) */
	const uint8_t *signature;  /* into bytes (signed only) */
	uint8_t hash[MIG_SEGMENT_HASH_LEN]; /* BLAKE2b-256 of the canonical bytes */
	const char *manifest_text; /* into bytes: the canonical manifest */
	size_t manifest_len;       /* its length */
	struct mig_manifest manifest; /* parsed; files[] in canonical order */
	struct seg_file files[MIG_MANIFEST_FILES_MAX]; /* manifest.nfiles used */
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

/* A bounded reader. `short_code` is what running past the end means: in a
 * whole file, TRUNCATED; inside a part whose length was already declared
 * and present, MALFORMED. */
struct cursor {
	const uint8_t *p;   /* next byte */
	const uint8_t *end; /* one past the last readable byte */
	int short_code;     /* MIG_ERR_TRUNCATED or MIG_ERR_MALFORMED */
};

static int need(const struct cursor *c, size_t n)
{
	return (size_t)(c->end - c->p) >= n ? 0 : c->short_code;
}

static int get_u16(struct cursor *c, uint32_t *v)
{
	int rc = need(c, 2);

	if (rc != 0)
		return rc;
	*v = (uint32_t)c->p[0] << 8 | c->p[1];
	c->p += 2;
	return 0;
}

static int get_u32(struct cursor *c, uint32_t *v)
{
	int rc = need(c, 4);

	if (rc != 0)
		return rc;
	*v = (uint32_t)c->p[0] << 24 | (uint32_t)c->p[1] << 16 | (uint32_t)c->p[2] << 8 | c->p[3];
	c->p += 4;
	return 0;
}

static int get_bytes(struct cursor *c, size_t n, const uint8_t **out)
{
	int rc = need(c, n);

	if (rc != 0)
		return rc;
	*out = c->p;
	c->p += n;
	return 0;
}

static uint8_t *put_u16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

/*
 * Parses the canonical bytes seg->bytes[canon_off, canon_off + canon_len)
 * into seg's manifest, files and hash. The length is already known to be
 * present, so running short inside is MALFORMED.
 */
static int parse_canonical(struct mig_segment *seg, struct mig_error *err)
{
	struct cursor c = { seg->bytes + seg->canon_off, seg->bytes + seg->canon_off + seg->canon_len,
			    MIG_ERR_MALFORMED };
	const uint8_t *magic, *text;
	char *again = NULL;
	size_t again_len;
	uint32_t mlen, nfiles;
	int rc;

	if ((rc = get_bytes(&c, sizeof canon_magic, &magic)) != 0)
		return fail(err, rc, "segment: canonical bytes too short");
	if (memcmp(magic, canon_magic, sizeof canon_magic) != 0)
		return fail(err, MIG_ERR_MALFORMED, "segment: bad canonical magic");
	if ((rc = get_u32(&c, &mlen)) != 0)
		return fail(err, rc, "segment: no manifest length");
	if (mlen > MIG_MANIFEST_TEXT_MAX)
		return fail(err, MIG_ERR_LIMIT, "segment: manifest longer than %u bytes",
			    MIG_MANIFEST_TEXT_MAX);
	if ((rc = get_bytes(&c, mlen, &text)) != 0)
		return fail(err, rc, "segment: manifest runs past its part");
	rc = mig_manifest_parse((const char *)text, mlen, &seg->manifest, err);
	if (rc != 0)
		return rc == MIG_ERR_ARG ? fail(err, MIG_ERR_MALFORMED, "segment: bad manifest") : rc;
	/* Only the canonical text is accepted: otherwise two byte strings,
	 * hence two hashes, could stand for one manifest. */
	again = malloc(MIG_MANIFEST_TEXT_MAX + 1);
	if (again == NULL)
		return fail(err, MIG_ERR_NOMEM, "out of memory");
	rc = mig_manifest_format(&seg->manifest, again, MIG_MANIFEST_TEXT_MAX + 1, &again_len);
	if (rc != 0 || again_len != mlen || memcmp(again, text, mlen) != 0) {
		free(again);
		return fail(err, MIG_ERR_MALFORMED, "segment: manifest is not in canonical form");
	}
	free(again);
	seg->manifest_text = (const char *)text;
	seg->manifest_len = mlen;

	if ((rc = get_u32(&c, &nfiles)) != 0)
		return fail(err, rc, "segment: no file count");
	if (nfiles != seg->manifest.nfiles)
		return fail(err, MIG_ERR_MALFORMED, "segment: %u files but the manifest lists %u",
			    (unsigned)nfiles, (unsigned)seg->manifest.nfiles);
	for (uint32_t i = 0; i < nfiles; i++) {
		const uint8_t *name;
		uint32_t nlen, tlen;
		struct seg_file *f = &seg->files[i];

		if ((rc = get_u16(&c, &nlen)) != 0 || (rc = get_bytes(&c, nlen, &name)) != 0)
			return fail(err, rc, "segment: file %u: name runs past the end", (unsigned)i);
		if (nlen != strlen(seg->manifest.files[i]) ||
		    memcmp(name, seg->manifest.files[i], nlen) != 0)
			return fail(err, MIG_ERR_MALFORMED,
				    "segment: file %u is not '%s', the manifest's next file", (unsigned)i,
				    seg->manifest.files[i]);
		if ((rc = get_u32(&c, &tlen)) != 0)
			return fail(err, rc, "segment: file %s: no length", seg->manifest.files[i]);
		if (tlen > MIG_SEGMENT_FILE_MAX)
			return fail(err, MIG_ERR_LIMIT, "segment: file %s larger than %u bytes",
				    seg->manifest.files[i], MIG_SEGMENT_FILE_MAX);
		if ((rc = get_bytes(&c, tlen, &text)) != 0)
			return fail(err, rc, "segment: file %s runs past the end", seg->manifest.files[i]);
		f->text = (const char *)text;
		f->len = tlen;
		crypto_generichash(f->hash, sizeof f->hash, text, tlen, NULL, 0);
	}
	if (c.p != c.end)
		return fail(err, MIG_ERR_MALFORMED, "segment: %zu bytes after the last file",
			    (size_t)(c.end - c.p));
	crypto_generichash(seg->hash, sizeof seg->hash, seg->bytes + seg->canon_off, seg->canon_len,
			   NULL, 0);
	return 0;
}

static struct mig_segment *seg_alloc(void)
{
	if (sodium_init() < 0)
		return NULL;
	return calloc(1, sizeof(struct mig_segment));
}

void mig_segment_destroy(struct mig_segment **segp)
{
	if (segp == NULL || *segp == NULL)
		return;
	free((*segp)->bytes);
	free(*segp);
	*segp = NULL;
}

int mig_segment_build(const char *manifest, size_t manifest_len, const struct mig_seg_file *files,
		      size_t nfiles, struct mig_segment **out, struct mig_error *err)
{
	struct mig_manifest *m = NULL;
	struct mig_segment *seg = NULL;
	const struct mig_seg_file *order[MIG_MANIFEST_FILES_MAX];
	char *mtext = NULL;
	size_t mlen = 0, total;
	uint8_t *p;
	int rc;

	if (out == NULL || (files == NULL && nfiles > 0))
		return fail(err, MIG_ERR_ARG, "segment: bad arguments");
	*out = NULL;
	m = malloc(sizeof *m);
	mtext = malloc(MIG_MANIFEST_TEXT_MAX + 1);
	if (m == NULL || mtext == NULL) {
		rc = fail(err, MIG_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = mig_manifest_parse(manifest, manifest_len, m, err)) != 0)
		goto out;
	if ((rc = mig_manifest_format(m, mtext, MIG_MANIFEST_TEXT_MAX + 1, &mlen)) != 0) {
		rc = fail(err, rc, "segment: cannot write the manifest canonically");
		goto out;
	}
	if (nfiles != m->nfiles) {
		rc = fail(err, MIG_ERR_ARG, "segment: %zu files given, the manifest lists %u", nfiles,
			  (unsigned)m->nfiles);
		goto out;
	}
	/* Every listed file given exactly once; with equal counts that also
	 * means nothing unlisted was given. */
	total = sizeof canon_magic + 4 + mlen + 4;
	for (uint32_t i = 0; i < m->nfiles; i++) {
		order[i] = NULL;
		for (size_t j = 0; j < nfiles; j++) {
			if (files[j].name == NULL || strcmp(files[j].name, m->files[i]) != 0)
				continue;
			if (order[i] != NULL) {
				rc = fail(err, MIG_ERR_ARG, "segment: file %s given twice", m->files[i]);
				goto out;
			}
			order[i] = &files[j];
		}
		if (order[i] == NULL) {
			rc = fail(err, MIG_ERR_ARG, "segment: file %s listed but not given", m->files[i]);
			goto out;
		}
		if (order[i]->len > MIG_SEGMENT_FILE_MAX || (order[i]->text == NULL && order[i]->len > 0)) {
			rc = fail(err, MIG_ERR_LIMIT, "segment: file %s larger than %u bytes", m->files[i],
				  MIG_SEGMENT_FILE_MAX);
			goto out;
		}
		total += 2 + strlen(m->files[i]) + 4 + order[i]->len;
		if (total > MIG_SEGMENT_CANON_MAX) {
			rc = fail(err, MIG_ERR_LIMIT, "segment: larger than %u bytes", MIG_SEGMENT_CANON_MAX);
			goto out;
		}
	}

	if ((seg = seg_alloc()) == NULL || (seg->bytes = malloc(total)) == NULL) {
		rc = fail(err, MIG_ERR_NOMEM, "out of memory");
		goto out;
	}
	seg->len = seg->canon_len = total;
	p = seg->bytes;
	memcpy(p, canon_magic, sizeof canon_magic);
	p = put_u32(p + sizeof canon_magic, (uint32_t)mlen);
	memcpy(p, mtext, mlen);
	p = put_u32(p + mlen, m->nfiles);
	for (uint32_t i = 0; i < m->nfiles; i++) {
		size_t nlen = strlen(m->files[i]);

		p = put_u16(p, (uint32_t)nlen);
		memcpy(p, m->files[i], nlen);
		p = put_u32(p + nlen, (uint32_t)order[i]->len);
		if (order[i]->len > 0)
			memcpy(p, order[i]->text, order[i]->len);
		p += order[i]->len;
	}
	if ((rc = parse_canonical(seg, err)) != 0)
		goto out;
	*out = seg;
	seg = NULL;
out:
	mig_segment_destroy(&seg);
	free(m);
	free(mtext);
	return rc;
}

/* Reads a whole regular file of at most `cap` bytes into a malloc'd buffer.
 * Returns 0, MIG_ERR_IO, MIG_ERR_LIMIT or MIG_ERR_NOMEM. */
static int slurp(const char *path, size_t cap, char **out, size_t *out_len, struct mig_error *err)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd, rc;

	*out = NULL;
	*out_len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return fail(err, MIG_ERR_IO, "cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = fail(err, MIG_ERR_IO, "%s is not a readable regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > cap) {
		rc = fail(err, MIG_ERR_LIMIT, "%s is larger than %zu bytes", path, cap);
		goto out;
	}
	/* One byte more than the cap, to notice a file that grew meanwhile. */
	if ((buf = malloc(cap + 1)) == NULL) {
		rc = fail(err, MIG_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, cap + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = fail(err, MIG_ERR_IO, "cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > cap) {
			rc = fail(err, MIG_ERR_LIMIT, "%s is larger than %zu bytes", path, cap);
			goto out;
		}
	}
	*out = buf;
	*out_len = len;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

int mig_segment_load_dir(const char *dir, struct mig_segment **out, struct mig_error *err)
{
	struct mig_manifest *m = NULL;
	struct mig_seg_file files[MIG_MANIFEST_FILES_MAX];
	char path[PATH_MAX];
	char *mtext = NULL;
	size_t mlen = 0, nloaded = 0;
	int rc;

	if (out == NULL || dir == NULL)
		return fail(err, MIG_ERR_ARG, "no directory");
	*out = NULL;
	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, MIG_MANIFEST_FILE) >= sizeof path)
		return fail(err, MIG_ERR_ARG, "directory name too long");
	if ((rc = slurp(path, MIG_MANIFEST_TEXT_MAX, &mtext, &mlen, err)) != 0)
		goto out;
	if ((m = malloc(sizeof *m)) == NULL) {
		rc = fail(err, MIG_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = mig_manifest_parse(mtext, mlen, m, err)) != 0)
		goto out;
	for (uint32_t i = 0; i < m->nfiles; i++) {
		char *text;
		size_t tlen;

		/* File names are flat (mig_manifest_valid_file_name), so this
		 * never leaves dir. */
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, m->files[i]) >= sizeof path) {
			rc = fail(err, MIG_ERR_ARG, "path too long for %s", m->files[i]);
			goto out;
		}
		if ((rc = slurp(path, MIG_SEGMENT_FILE_MAX, &text, &tlen, err)) != 0)
			goto out;
		files[nloaded].name = m->files[i];
		files[nloaded].text = text;
		files[nloaded].len = tlen;
		nloaded++;
	}
	rc = mig_segment_build(mtext, mlen, files, nloaded, out, err);
out:
	for (size_t i = 0; i < nloaded; i++)
		free((char *)files[i].text);
	free(m);
	free(mtext);
	return rc;
}

/* What the author signs: the domain prefix (with its NUL) and the hash. */
static void sig_message(const uint8_t hash[MIG_SEGMENT_HASH_LEN],
			uint8_t msg[sizeof MIG_SEGMENT_SIG_DOMAIN + MIG_SEGMENT_HASH_LEN])
{
	memcpy(msg, MIG_SEGMENT_SIG_DOMAIN, sizeof MIG_SEGMENT_SIG_DOMAIN);
	memcpy(msg + sizeof MIG_SEGMENT_SIG_DOMAIN, hash, MIG_SEGMENT_HASH_LEN);
}

int mig_segment_sign(const struct mig_segment *seg, const struct mig_key *author, uint8_t **out,
		     size_t *out_len)
{
	uint8_t msg[sizeof MIG_SEGMENT_SIG_DOMAIN + MIG_SEGMENT_HASH_LEN];
	uint8_t *buf, *p;
	size_t total;

	if (out == NULL || out_len == NULL)
		return MIG_ERR_ARG;
	*out = NULL;
	*out_len = 0;
	if (seg == NULL || author == NULL)
		return MIG_ERR_ARG;
	total = MIG_SEGMENT_SIGNED_OVERHEAD + seg->canon_len;
	if ((buf = malloc(total)) == NULL)
		return MIG_ERR_NOMEM;
	p = buf;
	memcpy(p, signed_magic, sizeof signed_magic);
	p = put_u32(p + sizeof signed_magic, MIG_SEGMENT_VERSION);
	p = put_u32(p, (uint32_t)seg->canon_len);
	memcpy(p, seg->bytes + seg->canon_off, seg->canon_len);
	p += seg->canon_len;
	mig_key_id(mig_key_public(author), p);
	p += MIG_KEY_ID_LEN;
	memcpy(p, mig_key_public(author), MIG_KEY_PUBLIC_LEN);
	p += MIG_KEY_PUBLIC_LEN;
	sig_message(seg->hash, msg);
	if (mig_key_sign(author, msg, sizeof msg, p) != 0) {
		free(buf);
		return MIG_ERR_ARG;
	}
	*out = buf;
	*out_len = total;
	return 0;
}

int mig_segment_decode(const void *buf, size_t len, struct mig_segment **out,
		       struct mig_error *err)
{
	struct cursor c = { buf, (const uint8_t *)buf + len, MIG_ERR_TRUNCATED };
	struct mig_segment *seg = NULL;
	const uint8_t *magic, *canon;
	uint8_t id[MIG_KEY_ID_LEN];
	uint32_t version, clen;
	size_t rest;
	int rc;

	if (out == NULL || (buf == NULL && len > 0))
		return fail(err, MIG_ERR_ARG, "segment: bad arguments");
	*out = NULL;
	if (len < sizeof signed_magic) {
		if (len > 0 && memcmp(buf, signed_magic, len) != 0)
			return fail(err, MIG_ERR_MALFORMED, "not a signed segment");
		return fail(err, MIG_ERR_TRUNCATED, "signed segment: truncated in the magic");
	}
	get_bytes(&c, sizeof signed_magic, &magic);
	if (memcmp(magic, signed_magic, sizeof signed_magic) != 0)
		return fail(err, MIG_ERR_MALFORMED, "not a signed segment");
	if ((rc = get_u32(&c, &version)) != 0)
		return fail(err, rc, "signed segment: truncated in the version");
	if (version != MIG_SEGMENT_VERSION)
		return fail(err, MIG_ERR_VERSION, "signed segment: format version %u, this host reads %u",
			    (unsigned)version, MIG_SEGMENT_VERSION);
	if ((rc = get_u32(&c, &clen)) != 0)
		return fail(err, rc, "signed segment: truncated in the length");
	if (clen > MIG_SEGMENT_CANON_MAX)
		return fail(err, MIG_ERR_LIMIT, "signed segment: %u bytes, more than %u", (unsigned)clen,
			    MIG_SEGMENT_CANON_MAX);
	rest = (size_t)clen + MIG_KEY_ID_LEN + MIG_KEY_PUBLIC_LEN + MIG_KEY_SIG_LEN;
	if ((rc = get_bytes(&c, rest, &canon)) != 0)
		return fail(err, rc, "signed segment: truncated (%zu of %zu bytes)", len,
			    MIG_SEGMENT_SIGNED_OVERHEAD + (size_t)clen);
	if (c.p != c.end)
		return fail(err, MIG_ERR_MALFORMED, "signed segment: %zu bytes after the signature",
			    (size_t)(c.end - c.p));

	if ((seg = seg_alloc()) == NULL || (seg->bytes = malloc(len)) == NULL) {
		rc = fail(err, MIG_ERR_NOMEM, "out of memory");
		goto out;
	}
	memcpy(seg->bytes, buf, len);
	seg->len = len;
	seg->canon_off = (size_t)(canon - (const uint8_t *)buf);
	seg->canon_len = clen;
	seg->is_signed = 1;
	seg->key_id = seg->bytes + seg->canon_off + clen;
	seg->signer = seg->key_id + MIG_KEY_ID_LEN;
	seg->signature = seg->signer + MIG_KEY_PUBLIC_LEN;
	if ((rc = parse_canonical(seg, err)) != 0)
		goto out;
	mig_key_id(seg->signer, id);
	if (sodium_memcmp(id, seg->key_id, sizeof id) != 0) {
		rc = fail(err, MIG_ERR_MALFORMED, "signed segment: key id does not match its public key");
		goto out;
	}
	*out = seg;
	seg = NULL;
out:
	mig_segment_destroy(&seg);
	return rc;
}

int mig_segment_read_file(const char *path, struct mig_segment **out, struct mig_error *err)
{
	char *buf;
	size_t len;
	int rc;

	if (out == NULL || path == NULL)
		return fail(err, MIG_ERR_ARG, "no path");
	*out = NULL;
	rc = slurp(path, MIG_SEGMENT_CANON_MAX + MIG_SEGMENT_SIGNED_OVERHEAD, &buf, &len, err);
	if (rc != 0)
		return rc;
	rc = mig_segment_decode(buf, len, out, err);
	free(buf);
	return rc;
}

int mig_segment_verify(const struct mig_segment *seg)
{
	uint8_t msg[sizeof MIG_SEGMENT_SIG_DOMAIN + MIG_SEGMENT_HASH_LEN];

	if (seg == NULL || !seg->is_signed)
		return MIG_ERR_SIGNATURE;
	sig_message(seg->hash, msg);
	return mig_key_verify(seg->signer, msg, sizeof msg, seg->signature);
}

const uint8_t *mig_segment_hash(const struct mig_segment *seg)
{
	return seg->hash;
}

void mig_hash_hex(const uint8_t hash[MIG_SEGMENT_HASH_LEN], char out[MIG_SEGMENT_HEX_LEN])
{
	sodium_bin2hex(out, MIG_SEGMENT_HEX_LEN, hash, MIG_SEGMENT_HASH_LEN);
}

int mig_hash_parse(const char *hex, uint8_t hash[MIG_SEGMENT_HASH_LEN])
{
	size_t got = 0;

	if (hex == NULL || strlen(hex) != 2 * MIG_SEGMENT_HASH_LEN)
		return -1;
	if (sodium_hex2bin(hash, MIG_SEGMENT_HASH_LEN, hex, 2 * MIG_SEGMENT_HASH_LEN, NULL, &got,
			   NULL) != 0 ||
	    got != MIG_SEGMENT_HASH_LEN)
		return -1;
	return 0;
}

void mig_segment_hash_hex(const struct mig_segment *seg, char out[MIG_SEGMENT_HEX_LEN])
{
	mig_hash_hex(seg->hash, out);
}

const struct mig_manifest *mig_segment_manifest(const struct mig_segment *seg)
{
	return &seg->manifest;
}

const char *mig_segment_manifest_text(const struct mig_segment *seg, size_t *len)
{
	*len = seg->manifest_len;
	return seg->manifest_text;
}

const uint8_t *mig_segment_canonical(const struct mig_segment *seg, size_t *len)
{
	*len = seg->canon_len;
	return seg->bytes + seg->canon_off;
}

size_t mig_segment_nfiles(const struct mig_segment *seg)
{
	return seg->manifest.nfiles;
}

int mig_segment_file(const struct mig_segment *seg, size_t i, const char **name,
		     const char **text, size_t *len)
{
	if (i >= seg->manifest.nfiles)
		return MIG_ERR_ARG;
	if (name != NULL)
		*name = seg->manifest.files[i];
	if (text != NULL)
		*text = seg->files[i].text;
	if (len != NULL)
		*len = seg->files[i].len;
	return 0;
}

void mig_segment_file_hash(const struct mig_segment *seg, size_t i,
			   uint8_t hash[MIG_SEGMENT_HASH_LEN])
{
	if (i < seg->manifest.nfiles)
		memcpy(hash, seg->files[i].hash, MIG_SEGMENT_HASH_LEN);
	else
		memset(hash, 0, MIG_SEGMENT_HASH_LEN);
}

int mig_segment_find(const struct mig_segment *seg, const char *name, const char **text,
		     size_t *len)
{
	for (uint32_t i = 0; i < seg->manifest.nfiles; i++) {
		if (strcmp(seg->manifest.files[i], name) == 0) {
			*text = seg->files[i].text;
			*len = seg->files[i].len;
			return 0;
		}
	}
	return MIG_ERR_NOSOURCE;
}

int mig_segment_is_signed(const struct mig_segment *seg)
{
	return seg->is_signed;
}

const uint8_t *mig_segment_signed_bytes(const struct mig_segment *seg, size_t *len)
{
	if (!seg->is_signed) {
		*len = 0;
		return NULL;
	}
	*len = seg->len;
	return seg->bytes;
}

const uint8_t *mig_segment_signer(const struct mig_segment *seg)
{
	return seg->is_signed ? seg->signer : NULL;
}

const uint8_t *mig_segment_key_id(const struct mig_segment *seg)
{
	return seg->is_signed ? seg->key_id : NULL;
}
