/*
 * agd_trust.c: the trust store (docs/segments.md, "Trust store").
 *
 * The file is read once, line by line, every line and count capped; the
 * result is an array of immutable entries that deciding only reads, so one
 * store serves every thread without a lock.
 */
#include "agd_trust.h"

#include <errno.h>
#include <fnmatch.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GLOB_MAX 64 /* one agent-name pattern, without NUL */

struct trust_entry {
	uint8_t pk[MIG_KEY_PUBLIC_LEN];          /* the author's Ed25519 key */
	uint8_t curve_pk[MIG_KEY_CURVE_LEN];     /* its X25519 form, for ZAP */
	int has_curve;                           /* 0 when pk is no valid point */
	char name[MIG_KEY_NAME_MAX + 1];         /* the key's name, for messages */
	unsigned nglobs;                         /* 0: any agent name */
	char globs[AGD_TRUST_GLOBS_MAX][GLOB_MAX + 1]; /* fnmatch patterns */
	int has_max_memory;                      /* max_memory applies */
	uint64_t max_memory;                     /* bytes */
	int has_max_instructions;                /* max_instructions applies */
	uint64_t max_instructions;               /* per time slice */
};

struct agd_trust {
	size_t n;                   /* used entries */
	struct trust_entry *entries; /* owned, n of them */
};

const char *agd_trust_strerror(int code)
{
	switch (code) {
	case AGD_TRUST_OK: return "trusted";
	case AGD_TRUST_ERR_IO: return "trust store cannot be read";
	case AGD_TRUST_ERR_SYNTAX: return "trust store line malformed";
	case AGD_TRUST_ERR_NOMEM: return "out of memory";
	case AGD_TRUST_ERR_LIMIT: return "trust store too large";
	case AGD_TRUST_ERR_SIGNATURE: return "bad signature";
	case AGD_TRUST_ERR_UNKNOWN_KEY: return "signed by an untrusted key";
	case AGD_TRUST_ERR_NAME: return "agent name not allowed for this key";
	case AGD_TRUST_ERR_QUOTA: return "quota over the key's limit";
	case AGD_TRUST_ERR_ARG: return "invalid argument";
	}
	return "unknown trust error";
}

static int say(char *why, size_t why_len, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int say(char *why, size_t why_len, int code, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || why_len == 0)
		return code;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
	return code;
}

void agd_trust_destroy(struct agd_trust **tp)
{
	if (tp == NULL || *tp == NULL)
		return;
	free((*tp)->entries);
	free(*tp);
	*tp = NULL;
}

size_t agd_trust_count(const struct agd_trust *t)
{
	return t != NULL ? t->n : 0;
}

int agd_trust_key(const struct agd_trust *t, size_t i, uint8_t pk[MIG_KEY_PUBLIC_LEN],
		  uint8_t curve_pk[MIG_KEY_CURVE_LEN], char *name)
{
	const struct trust_entry *e;

	if (t == NULL || i >= t->n)
		return AGD_TRUST_ERR_ARG;
	e = &t->entries[i];
	if (curve_pk != NULL) {
		if (!e->has_curve)
			return AGD_TRUST_ERR_ARG;
		memcpy(curve_pk, e->curve_pk, MIG_KEY_CURVE_LEN);
	}
	if (pk != NULL)
		memcpy(pk, e->pk, MIG_KEY_PUBLIC_LEN);
	if (name != NULL)
		memcpy(name, e->name, strlen(e->name) + 1);
	return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0' || strlen(s) > 20)
		return -1;
	for (; *s != '\0'; s++) {
		unsigned d;

		if (*s < '0' || *s > '9')
			return -1;
		d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* agents=GLOB[,GLOB...]: patterns over agent-name characters and * ? [ ] !. */
static int parse_globs(const char *s, struct trust_entry *e)
{
	while (*s != '\0') {
		const char *comma = strchr(s, ',');
		size_t n = comma != NULL ? (size_t)(comma - s) : strlen(s);

		if (n == 0 || n > GLOB_MAX || e->nglobs == AGD_TRUST_GLOBS_MAX)
			return -1;
		for (size_t i = 0; i < n; i++) {
			char c = s[i];

			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			      strchr("_.-*?[]!", c) != NULL))
				return -1;
		}
		memcpy(e->globs[e->nglobs], s, n);
		e->globs[e->nglobs][n] = '\0';
		e->nglobs++;
		if (comma == NULL)
			break;
		s = comma + 1;
		if (*s == '\0')
			return -1;
	}
	return e->nglobs > 0 ? 0 : -1;
}

/* One non-comment line (NUL-terminated, trimmed, modified in place). */
static int parse_entry(char *s, struct trust_entry *e, const char **problem)
{
	char *w[4 + 3 + 1];
	size_t n = 0;
	char keyline[AGD_TRUST_LINE_MAX + 1];
	int pos;

	memset(e, 0, sizeof *e);
	while (*s != '\0' && n < sizeof w / sizeof w[0]) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			break;
		w[n++] = s;
		while (*s != '\0' && *s != ' ' && *s != '\t')
			s++;
		if (*s != '\0')
			*s++ = '\0';
	}
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s != '\0' || n == sizeof w / sizeof w[0]) {
		*problem = "too many fields";
		return -1;
	}
	if (n < 4) {
		*problem = "want: agentd-public-key v1 HEX NAME [options]";
		return -1;
	}
	pos = snprintf(keyline, sizeof keyline, "%s %s %s %s", w[0], w[1], w[2], w[3]);
	if (pos < 0 || (size_t)pos >= sizeof keyline ||
	    mig_key_parse_public(keyline, (size_t)pos, e->pk, e->name) != 0) {
		*problem = "not a public key: want agentd-public-key v1 HEX NAME";
		return -1;
	}
	e->has_curve = mig_key_curve_public(e->pk, e->curve_pk) == 0;
	for (size_t i = 4; i < n; i++) {
		if (strncmp(w[i], "agents=", 7) == 0) {
			if (e->nglobs > 0 || parse_globs(w[i] + 7, e) != 0) {
				*problem = "bad agents=GLOB[,GLOB...]";
				return -1;
			}
		} else if (strncmp(w[i], "max-memory=", 11) == 0) {
			if (e->has_max_memory || parse_u64(w[i] + 11, &e->max_memory) != 0) {
				*problem = "bad max-memory=BYTES";
				return -1;
			}
			e->has_max_memory = 1;
		} else if (strncmp(w[i], "max-instructions=", 17) == 0) {
			if (e->has_max_instructions || parse_u64(w[i] + 17, &e->max_instructions) != 0) {
				*problem = "bad max-instructions=N";
				return -1;
			}
			e->has_max_instructions = 1;
		} else {
			*problem = "unknown option (agents=, max-memory=, max-instructions=)";
			return -1;
		}
	}
	return 0;
}

static int parse(const char *text, size_t len, const char *label, struct agd_trust **out,
		 char *why, size_t why_len)
{
	struct agd_trust *t = NULL;
	const char *p = text, *end = text + len;
	char line[AGD_TRUST_LINE_MAX + 1];
	size_t cap = 0;
	unsigned lineno = 0;
	int rc;

	if (out == NULL || (text == NULL && len > 0))
		return say(why, why_len, AGD_TRUST_ERR_ARG, "no trust store");
	*out = NULL;
	if ((t = calloc(1, sizeof *t)) == NULL)
		return say(why, why_len, AGD_TRUST_ERR_NOMEM, "out of memory");
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl != NULL ? nl : end) - p);
		const char *problem = NULL;
		char *s, *e;

		lineno++;
		if (n > AGD_TRUST_LINE_MAX) {
			rc = say(why, why_len, AGD_TRUST_ERR_LIMIT, "%s:%u: line longer than %u bytes", label,
				 lineno, AGD_TRUST_LINE_MAX);
			goto out;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		p += n + (nl != NULL);
		if (memchr(line, '\0', n) != NULL) {
			rc = say(why, why_len, AGD_TRUST_ERR_SYNTAX, "%s:%u: NUL byte", label, lineno);
			goto out;
		}
		s = line;
		while (*s == ' ' || *s == '\t')
			s++;
		e = s + strlen(s);
		while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			*--e = '\0';
		if (*s == '\0' || *s == '#')
			continue;
		if (t->n == AGD_TRUST_KEYS_MAX) {
			rc = say(why, why_len, AGD_TRUST_ERR_LIMIT, "%s:%u: more than %u keys", label, lineno,
				 AGD_TRUST_KEYS_MAX);
			goto out;
		}
		if (t->n == cap) {
			size_t ncap = cap == 0 ? 8 : cap * 2;
			struct trust_entry *ne = realloc(t->entries, ncap * sizeof *ne);

			if (ne == NULL) {
				rc = say(why, why_len, AGD_TRUST_ERR_NOMEM, "out of memory");
				goto out;
			}
			t->entries = ne;
			cap = ncap;
		}
		if (parse_entry(s, &t->entries[t->n], &problem) != 0) {
			rc = say(why, why_len, AGD_TRUST_ERR_SYNTAX, "%s:%u: %s", label, lineno, problem);
			goto out;
		}
		for (size_t i = 0; i < t->n; i++) {
			if (memcmp(t->entries[i].pk, t->entries[t->n].pk, MIG_KEY_PUBLIC_LEN) == 0) {
				rc = say(why, why_len, AGD_TRUST_ERR_SYNTAX,
					 "%s:%u: key %s is listed twice", label, lineno,
					 t->entries[t->n].name);
				goto out;
			}
		}
		t->n++;
	}
	*out = t;
	t = NULL;
	rc = 0;
out:
	agd_trust_destroy(&t);
	return rc;
}

int agd_trust_parse(const char *text, size_t len, struct agd_trust **out, char *why,
		    size_t why_len)
{
	return parse(text, len, "trust", out, why, why_len);
}

int agd_trust_load(const char *path, struct agd_trust **out, char *why, size_t why_len)
{
	/* Keys times the longest line, plus slack for comments. */
	const size_t cap = (size_t)AGD_TRUST_KEYS_MAX * (AGD_TRUST_LINE_MAX + 1) + (1u << 20);
	char *buf = NULL;
	size_t len = 0, n;
	FILE *f;
	int rc;

	if (out == NULL || path == NULL)
		return say(why, why_len, AGD_TRUST_ERR_ARG, "no trust store path");
	*out = NULL;
	if ((f = fopen(path, "re")) == NULL)
		return say(why, why_len, AGD_TRUST_ERR_IO, "cannot open trust store %s: %s", path,
			   strerror(errno));
	if ((buf = malloc(cap + 1)) == NULL) {
		fclose(f);
		return say(why, why_len, AGD_TRUST_ERR_NOMEM, "out of memory");
	}
	while ((n = fread(buf + len, 1, cap + 1 - len, f)) > 0) {
		len += n;
		if (len > cap)
			break;
	}
	if (ferror(f)) {
		rc = say(why, why_len, AGD_TRUST_ERR_IO, "cannot read trust store %s", path);
	} else if (len > cap) {
		rc = say(why, why_len, AGD_TRUST_ERR_LIMIT, "trust store %s is too large", path);
	} else {
		rc = parse(buf, len, path, out, why, why_len);
	}
	fclose(f);
	free(buf);
	return rc;
}

static const struct trust_entry *find(const struct agd_trust *t, const uint8_t pk[MIG_KEY_PUBLIC_LEN])
{
	for (size_t i = 0; i < t->n; i++)
		if (sodium_memcmp(t->entries[i].pk, pk, MIG_KEY_PUBLIC_LEN) == 0)
			return &t->entries[i];
	return NULL;
}

int agd_trust_find(const struct agd_trust *t, const uint8_t pk[MIG_KEY_PUBLIC_LEN], char *name)
{
	const struct trust_entry *e;

	if (t == NULL || pk == NULL || (e = find(t, pk)) == NULL)
		return 0;
	if (name != NULL)
		memcpy(name, e->name, strlen(e->name) + 1);
	return 1;
}

int agd_trust_find_curve(const struct agd_trust *t, const uint8_t curve_pk[MIG_KEY_CURVE_LEN],
			 char *name)
{
	if (t == NULL || curve_pk == NULL)
		return 0;
	for (size_t i = 0; i < t->n; i++) {
		const struct trust_entry *e = &t->entries[i];

		if (e->has_curve && sodium_memcmp(e->curve_pk, curve_pk, MIG_KEY_CURVE_LEN) == 0) {
			if (name != NULL)
				memcpy(name, e->name, strlen(e->name) + 1);
			return 1;
		}
	}
	return 0;
}

int agd_trust_decide(const struct agd_trust *t, const struct mig_segment *seg, char *why,
		     size_t why_len)
{
	const struct mig_manifest *m;
	const struct trust_entry *e;
	char hex[MIG_SEGMENT_HEX_LEN], id[MIG_KEY_ID_HEX_LEN];
	int allowed;

	if (t == NULL || seg == NULL)
		return say(why, why_len, AGD_TRUST_ERR_ARG, "no trust store or segment");
	mig_segment_hash_hex(seg, hex);
	m = mig_segment_manifest(seg);
	if (!mig_segment_is_signed(seg))
		return say(why, why_len, AGD_TRUST_ERR_SIGNATURE, "segment %.16s (%s) is not signed", hex,
			   m->name);
	mig_key_id_hex(mig_segment_signer(seg), id);
	/* The signature first: until it verifies, nothing else in the segment
	 * (name, quotas, even which key it claims) is the author's word. */
	if (mig_segment_verify(seg) != 0)
		return say(why, why_len, AGD_TRUST_ERR_SIGNATURE,
			   "segment %.16s: signature does not verify for key %s", hex, id);
	if ((e = find(t, mig_segment_signer(seg))) == NULL)
		return say(why, why_len, AGD_TRUST_ERR_UNKNOWN_KEY,
			   "segment %.16s (%s) is signed by key %s, which this host does not trust", hex,
			   m->name, id);
	allowed = e->nglobs == 0;
	for (unsigned i = 0; i < e->nglobs && !allowed; i++)
		allowed = fnmatch(e->globs[i], m->name, 0) == 0;
	if (!allowed)
		return say(why, why_len, AGD_TRUST_ERR_NAME,
			   "segment %.16s: key %s (%s) may not sign an agent named '%s'", hex, id, e->name,
			   m->name);
	/* A quota of 0 means "the host's default", which a limited key cannot
	 * promise to stay under: the manifest must then state its quota. */
	if (e->has_max_memory && (m->quota_memory == 0 || m->quota_memory > e->max_memory))
		return say(why, why_len, AGD_TRUST_ERR_QUOTA,
			   "segment %.16s (%s): memory %llu%s over key %s's limit of %llu bytes", hex,
			   m->name, (unsigned long long)m->quota_memory,
			   m->quota_memory == 0 ? " (host default)" : "", id,
			   (unsigned long long)e->max_memory);
	if (e->has_max_instructions &&
	    (m->quota_instructions == 0 || m->quota_instructions > e->max_instructions))
		return say(why, why_len, AGD_TRUST_ERR_QUOTA,
			   "segment %.16s (%s): instructions %llu%s over key %s's limit of %llu", hex,
			   m->name, (unsigned long long)m->quota_instructions,
			   m->quota_instructions == 0 ? " (host default)" : "", id,
			   (unsigned long long)e->max_instructions);
	return say(why, why_len, 0, "segment %.16s (%s) trusted: key %s (%s)", hex, m->name, id,
		   e->name);
}
