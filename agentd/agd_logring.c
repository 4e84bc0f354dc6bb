/*
 * agd_logring.c: an agent's log ring and its encoded form (see
 * agd_logring.h; the format is docs/protocol.md, "The log part").
 *
 * Invariants: 0 <= n <= AGD_LOGRING_LINES; line[(head + k) % LINES] for
 * k < n are the lines held, oldest first, each one allocation owned by the
 * ring; a line's host and text hold no NUL byte and are within their caps.
 * The encoder writes only what the decoder accepts, so a ring survives any
 * number of hops unchanged (but for the oldest lines the byte cap drops).
 */
#include "agd_logring.h"

#include "agd_err.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One line: time, host and text in one allocation (host NUL text NUL). */
struct logline {
	int64_t t;     /* wall clock, ms since the epoch */
	uint16_t len;  /* bytes of text */
	uint8_t hlen;  /* bytes of host */
	char s[];      /* host, NUL, text, NUL */
};

struct agd_logring {
	struct logline *line[AGD_LOGRING_LINES]; /* oldest at head */
	uint8_t head;                            /* index of the oldest */
	uint8_t n;                               /* lines held */
	uint32_t seq;                            /* lines ever added */
};

/* Fixed part of an encoded line: time u64, host length u8, text length u16. */
#define LINE_FIXED (8 + 1 + 2)
/* Encoded header: "AGL", version u8, count u8. */
#define HEAD_LEN 5

static const char *host_of(const struct logline *l)
{
	return l->s;
}

static const char *text_of(const struct logline *l)
{
	return l->s + l->hlen + 1;
}

static struct logline *line_new(int64_t t, const char *host, size_t hlen, const char *text,
				size_t len)
{
	/* offsetof, not sizeof: the struct's tail padding would cost a
	 * larger malloc chunk per line for the short lines most are. */
	struct logline *l = malloc(offsetof(struct logline, s) + hlen + 1 + len + 1);

	if (l == NULL)
		return NULL;
	l->t = t;
	l->hlen = (uint8_t)hlen;
	l->len = (uint16_t)len;
	if (hlen)
		memcpy(l->s, host, hlen);
	l->s[hlen] = '\0';
	if (len)
		memcpy(l->s + hlen + 1, text, len);
	l->s[hlen + 1 + len] = '\0';
	return l;
}

/* Takes ownership of l. */
static void ring_push(struct agd_logring *r, struct logline *l)
{
	if (r->n == AGD_LOGRING_LINES) {
		free(r->line[r->head]);
		r->line[r->head] = l;
		r->head = (uint8_t)((r->head + 1) % AGD_LOGRING_LINES);
	} else {
		r->line[(r->head + r->n) % AGD_LOGRING_LINES] = l;
		r->n++;
	}
	r->seq++;
}

static const struct logline *ring_at(const struct agd_logring *r, unsigned k)
{
	return r->line[(r->head + k) % AGD_LOGRING_LINES];
}

int agd_logring_add(struct agd_logring **rp, int64_t t_ms, const char *host, const char *text,
		    size_t len)
{
	struct logline *l;
	size_t hlen = host ? strnlen(host, AGD_LOGRING_HOST_MAX) : 0;
	const char *nul;

	if (len > AGD_LOGRING_TEXT_MAX)
		len = AGD_LOGRING_TEXT_MAX;
	/* Stored and shown as a C string: what follows a NUL would never be
	 * seen, and the encoded form refuses NUL bytes. */
	if (len > 0 && (nul = memchr(text, '\0', len)) != NULL)
		len = (size_t)(nul - text);
	if (*rp == NULL) {
		*rp = calloc(1, sizeof **rp);
		if (*rp == NULL)
			return AGD_ERR_NOMEM;
	}
	l = line_new(t_ms, host, hlen, text, len);
	if (l == NULL)
		return AGD_ERR_NOMEM;
	ring_push(*rp, l);
	return 0;
}

void agd_logring_destroy(struct agd_logring **rp)
{
	struct agd_logring *r;

	if (rp == NULL || *rp == NULL)
		return;
	r = *rp;
	for (unsigned k = 0; k < r->n; k++)
		free(r->line[(r->head + k) % AGD_LOGRING_LINES]);
	free(r);
	*rp = NULL;
}

unsigned agd_logring_count(const struct agd_logring *r)
{
	return r ? r->n : 0;
}

uint32_t agd_logring_seq(const struct agd_logring *r)
{
	return r ? r->seq : 0;
}

static size_t line_bytes(const struct logline *l)
{
	return LINE_FIXED + l->hlen + l->len;
}

int agd_logring_encode(const struct agd_logring *r, uint8_t **out, size_t *len)
{
	size_t total = HEAD_LEN;
	unsigned first, n = agd_logring_count(r);
	uint8_t *b, *p;

	*out = NULL;
	*len = 0;
	if (n == 0)
		return 0;
	/* The newest lines that fit; a line is at most LINE_FIXED + 64 + 400
	 * bytes, so at least one always does. */
	first = n;
	while (first > 0 && total + line_bytes(ring_at(r, first - 1)) <= AGD_LOGRING_BYTES) {
		total += line_bytes(ring_at(r, first - 1));
		first--;
	}
	b = malloc(total);
	if (b == NULL)
		return AGD_ERR_NOMEM;
	p = b;
	memcpy(p, "AGL", 3);
	p[3] = AGD_LOGRING_VERSION;
	p[4] = (uint8_t)(n - first);
	p += HEAD_LEN;
	for (unsigned k = first; k < n; k++) {
		const struct logline *l = ring_at(r, k);
		uint64_t t = (uint64_t)l->t;

		for (int i = 7; i >= 0; i--)
			*p++ = (uint8_t)(t >> (8 * i));
		*p++ = l->hlen;
		memcpy(p, host_of(l), l->hlen);
		p += l->hlen;
		*p++ = (uint8_t)(l->len >> 8);
		*p++ = (uint8_t)l->len;
		memcpy(p, text_of(l), l->len);
		p += l->len;
	}
	*out = b;
	*len = total;
	return 0;
}

int agd_logring_decode(const uint8_t *in, size_t len, struct agd_logring **out)
{
	struct agd_logring *r = NULL;
	const uint8_t *p = in, *end;
	unsigned count;
	int rc = AGD_ERR_ARG;

	*out = NULL;
	if (len > AGD_LOGRING_BYTES)
		return AGD_ERR_TOOBIG;
	if (len < HEAD_LEN || in == NULL)
		return AGD_ERR_ARG;
	end = in + len;
	if (memcmp(p, "AGL", 3) != 0 || p[3] != AGD_LOGRING_VERSION)
		return AGD_ERR_ARG;
	count = p[4];
	p += HEAD_LEN;
	if (count > AGD_LOGRING_LINES)
		return AGD_ERR_TOOBIG;
	if (count == 0)
		return p == end ? 0 : AGD_ERR_ARG;
	r = calloc(1, sizeof *r);
	if (r == NULL)
		return AGD_ERR_NOMEM;
	for (unsigned k = 0; k < count; k++) {
		uint64_t t = 0;
		size_t hlen, tlen;
		const uint8_t *host, *text;
		struct logline *l;

		if ((size_t)(end - p) < 9)
			goto out;
		for (int i = 0; i < 8; i++)
			t = t << 8 | *p++;
		hlen = *p++;
		if (hlen > AGD_LOGRING_HOST_MAX) {
			rc = AGD_ERR_TOOBIG;
			goto out;
		}
		if ((size_t)(end - p) < hlen + 2)
			goto out;
		host = p;
		p += hlen;
		tlen = (size_t)p[0] << 8 | p[1];
		p += 2;
		if (tlen > AGD_LOGRING_TEXT_MAX) {
			rc = AGD_ERR_TOOBIG;
			goto out;
		}
		if ((size_t)(end - p) < tlen)
			goto out;
		text = p;
		p += tlen;
		if (memchr(host, '\0', hlen) != NULL || memchr(text, '\0', tlen) != NULL ||
		    t > (uint64_t)INT64_MAX)
			goto out;
		l = line_new((int64_t)t, (const char *)host, hlen, (const char *)text, tlen);
		if (l == NULL) {
			rc = AGD_ERR_NOMEM;
			goto out;
		}
		ring_push(r, l);
	}
	if (p != end)
		goto out;
	*out = r;
	r = NULL;
	rc = 0;
out:
	agd_logring_destroy(&r);
	return rc;
}

void agd_logring_json(const struct agd_logring *r, unsigned max_lines, struct agd_jw *w)
{
	unsigned n = agd_logring_count(r);
	unsigned skip = max_lines > 0 && max_lines < n ? n - max_lines : 0;

	agd_jw_key(w, "lines");
	agd_jw_arr_begin(w);
	for (unsigned k = skip; k < n; k++)
		agd_jw_str(w, text_of(ring_at(r, k)));
	agd_jw_arr_end(w);
	agd_jw_key(w, "entries");
	agd_jw_arr_begin(w);
	for (unsigned k = skip; k < n; k++) {
		const struct logline *l = ring_at(r, k);

		agd_jw_obj_begin(w);
		agd_jw_key(w, "t");
		agd_jw_int(w, (long long)l->t);
		agd_jw_key(w, "host");
		agd_jw_str(w, host_of(l));
		agd_jw_key(w, "text");
		agd_jw_str(w, text_of(l));
		agd_jw_obj_end(w);
	}
	agd_jw_arr_end(w);
}

void agd_logring_key(char *key, size_t len, const char *id)
{
	snprintf(key, len, AGD_LOGRING_KEY "%s", id);
}
