/*
 * agd_json.c: JSON writer and bounded, non-recursive parser (see agd_json.h).
 *
 * Parser invariants: `p` never passes `end`; every container on the explicit
 * stack is an index into doc->vals (which may move when it grows, so no
 * pointer into it is held across an append); decoded strings never take more
 * arena bytes than their quoted token, so an arena of len + 1 bytes is enough
 * and never moves.
 */
#include "agd_json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *agd_json_strerror(int code)
{
	switch (code) {
	case AGD_JSON_OK: return "success";
	case AGD_JSON_ERR_NOMEM: return "out of memory";
	case AGD_JSON_ERR_TRUNCATED: return "JSON text ends early";
	case AGD_JSON_ERR_SYNTAX: return "not valid JSON";
	case AGD_JSON_ERR_DEPTH: return "JSON nested too deeply";
	case AGD_JSON_ERR_LIMIT: return "JSON document too large";
	default: return "unknown JSON error";
	}
}

/* ---------------------------------------------------------------- writer */

void agd_jw_init(struct agd_jw *w)
{
	memset(w, 0, sizeof *w);
	w->first[0] = 1;
}

void agd_jw_free(struct agd_jw *w)
{
	free(w->buf);
	agd_jw_init(w);
}

static void put(struct agd_jw *w, const char *s, size_t n)
{
	if (w->err)
		return;
	if (w->cap - w->len < n + 1) {
		size_t cap = w->cap ? w->cap : 256;
		char *b;

		while (cap - w->len < n + 1) {
			if (cap > ((size_t)-1) / 2) {
				w->err = AGD_JSON_ERR_NOMEM;
				return;
			}
			cap *= 2;
		}
		b = realloc(w->buf, cap);
		if (b == NULL) {
			w->err = AGD_JSON_ERR_NOMEM;
			return;
		}
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

/* Writes the separator a new value needs at the current level. */
static void sep(struct agd_jw *w)
{
	if (w->after_key) {
		w->after_key = 0;
		return;
	}
	if (w->depth > 0 && !w->first[w->depth])
		put(w, ",", 1);
	w->first[w->depth] = 0;
}

static void open_c(struct agd_jw *w, char c)
{
	sep(w);
	if (w->depth + 1 >= AGD_JSON_DEPTH_MAX) {
		w->err = AGD_JSON_ERR_DEPTH;
		return;
	}
	put(w, &c, 1);
	w->depth++;
	w->first[w->depth] = 1;
}

static void close_c(struct agd_jw *w, char c)
{
	if (w->depth > 0)
		w->depth--;
	put(w, &c, 1);
}

void agd_jw_obj_begin(struct agd_jw *w) { open_c(w, '{'); }
void agd_jw_obj_end(struct agd_jw *w) { close_c(w, '}'); }
void agd_jw_arr_begin(struct agd_jw *w) { open_c(w, '['); }
void agd_jw_arr_end(struct agd_jw *w) { close_c(w, ']'); }

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t k;
	unsigned cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		k = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		k = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		k = 4;
		cp = c & 0x07;
	} else
		return 0;
	if (n < k)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
	if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return k;
}

/* Whether s[0..n) is the start of a valid sequence that the end cut. */
static int cut_utf8(const unsigned char *s, size_t n)
{
	size_t k = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;

	if (k == 0 || s[0] > 0xf4 || n >= k)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return 1;
}

static void put_escaped(struct agd_jw *w, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run = 0;

	put(w, "\"", 1);
	while (i < n) {
		unsigned c = u[i];
		size_t k = c >= 0x20 && c != '"' && c != '\\' && c != 0x7f ? utf8_len(u + i, n - i) : 0;
		char esc[8];

		if (k > 0) {
			i += k;
			run += k;
			continue;
		}
		put(w, s + i - run, run);
		run = 0;
		switch (c) {
		case '"': put(w, "\\\"", 2); break;
		case '\\': put(w, "\\\\", 2); break;
		case '\n': put(w, "\\n", 2); break;
		case '\r': put(w, "\\r", 2); break;
		case '\t': put(w, "\\t", 2); break;
		default:
			snprintf(esc, sizeof esc, "\\u%04x", c);
			put(w, esc, 6);
		}
		i++;
	}
	put(w, s + i - run, run);
	put(w, "\"", 1);
}

void agd_jw_key(struct agd_jw *w, const char *key)
{
	sep(w);
	put_escaped(w, key, strlen(key));
	put(w, ":", 1);
	w->after_key = 1;
}

void agd_jw_strn(struct agd_jw *w, const char *s, size_t n)
{
	sep(w);
	put_escaped(w, s, n);
}

void agd_jw_str(struct agd_jw *w, const char *s)
{
	if (s == NULL)
		agd_jw_null(w);
	else
		agd_jw_strn(w, s, strlen(s));
}

void agd_jw_int(struct agd_jw *w, long long v)
{
	char b[32];
	int n = snprintf(b, sizeof b, "%lld", v);

	sep(w);
	put(w, b, (size_t)n);
}

void agd_jw_num(struct agd_jw *w, double v)
{
	char b[40];
	int n;

	if (!isfinite(v)) {
		agd_jw_null(w);
		return;
	}
	n = snprintf(b, sizeof b, "%.17g", v);
	sep(w);
	put(w, b, (size_t)n);
}

void agd_jw_bool(struct agd_jw *w, int v)
{
	sep(w);
	put(w, v ? "true" : "false", v ? 4 : 5);
}

void agd_jw_null(struct agd_jw *w)
{
	sep(w);
	put(w, "null", 4);
}

void agd_jw_raw(struct agd_jw *w, const char *json, size_t n)
{
	sep(w);
	put(w, json, n);
}

char *agd_jw_take(struct agd_jw *w, size_t *len)
{
	char *b;

	if (w->err == 0 && w->buf == NULL)
		put(w, "", 0);
	if (w->err) {
		agd_jw_free(w);
		return NULL;
	}
	b = w->buf;
	if (len != NULL)
		*len = w->len;
	w->buf = NULL;
	agd_jw_free(w);
	return b;
}

/* ---------------------------------------------------------------- parser */

struct agd_json {
	struct agd_json_val *vals; /* vals[0] is the root */
	uint32_t n;                /* values in use */
	uint32_t cap;              /* values allocated */
	char *arena;               /* decoded strings, len + 1 bytes */
	size_t used;               /* arena bytes in use */
};

void agd_json_destroy(struct agd_json **doc_p)
{
	struct agd_json *d;

	if (doc_p == NULL || *doc_p == NULL)
		return;
	d = *doc_p;
	free(d->vals);
	free(d->arena);
	free(d);
	*doc_p = NULL;
}

/* Appends a value; returns its index, or 0 with *rc set (index 0 is the
 * root, which is the first append and cannot fail after a successful one). */
static uint32_t new_val(struct agd_json *d, enum agd_json_type t, int *rc)
{
	if (d->n == d->cap) {
		uint32_t cap = d->cap ? d->cap * 2 : 16;
		struct agd_json_val *v;

		if (d->cap >= AGD_JSON_VALUES_MAX) {
			*rc = AGD_JSON_ERR_LIMIT;
			return 0;
		}
		if (cap > AGD_JSON_VALUES_MAX)
			cap = AGD_JSON_VALUES_MAX;
		v = realloc(d->vals, (size_t)cap * sizeof *v);
		if (v == NULL) {
			*rc = AGD_JSON_ERR_NOMEM;
			return 0;
		}
		d->vals = v;
		d->cap = cap;
	}
	memset(&d->vals[d->n], 0, sizeof d->vals[0]);
	d->vals[d->n].type = t;
	return d->n++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int read_hex4(const char *p, const char *end, unsigned *out)
{
	unsigned v = 0;

	if (end - p < 4)
		return AGD_JSON_ERR_TRUNCATED;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);
		if (h < 0)
			return AGD_JSON_ERR_SYNTAX;
		v = v << 4 | (unsigned)h;
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Decodes the string starting at *pp (on the opening quote) into the arena.
 * Raw bytes must be valid UTF-8 without control characters. */
static int read_string(struct agd_json *d, const char **pp, const char *end, const char **out,
		       size_t *out_len)
{
	const char *p = *pp + 1;
	char *o = d->arena + d->used, *start = o;

	for (;;) {
		unsigned char c;
		size_t k;

		if (p >= end)
			return AGD_JSON_ERR_TRUNCATED;
		c = (unsigned char)*p;
		if (c == '"')
			break;
		if (c < 0x20) {
			*pp = p;
			return AGD_JSON_ERR_SYNTAX;
		}
		if (c == '\\') {
			unsigned cp, lo;
			int rc;

			if (end - p < 2)
				return AGD_JSON_ERR_TRUNCATED;
			switch (p[1]) {
			case '"': *o++ = '"'; p += 2; continue;
			case '\\': *o++ = '\\'; p += 2; continue;
			case '/': *o++ = '/'; p += 2; continue;
			case 'b': *o++ = '\b'; p += 2; continue;
			case 'f': *o++ = '\f'; p += 2; continue;
			case 'n': *o++ = '\n'; p += 2; continue;
			case 'r': *o++ = '\r'; p += 2; continue;
			case 't': *o++ = '\t'; p += 2; continue;
			case 'u': break;
			default: *pp = p; return AGD_JSON_ERR_SYNTAX;
			}
			if ((rc = read_hex4(p + 2, end, &cp)) != 0) {
				*pp = p;
				return rc;
			}
			p += 6;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (end - p < 2)
					return AGD_JSON_ERR_TRUNCATED;
				if (p[0] != '\\' || p[1] != 'u') {
					*pp = p;
					return AGD_JSON_ERR_SYNTAX;
				}
				if ((rc = read_hex4(p + 2, end, &lo)) != 0) {
					*pp = p;
					return rc;
				}
				if (lo < 0xdc00 || lo > 0xdfff) {
					*pp = p;
					return AGD_JSON_ERR_SYNTAX;
				}
				p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				*pp = p - 6;
				return AGD_JSON_ERR_SYNTAX;
			}
			o += put_utf8(o, cp);
			continue;
		}
		k = utf8_len((const unsigned char *)p, (size_t)(end - p));
		if (k == 0) {
			/* Distinguish a sequence cut by the end from a bad one. */
			*pp = p;
			return cut_utf8((const unsigned char *)p, (size_t)(end - p))
				       ? AGD_JSON_ERR_TRUNCATED
				       : AGD_JSON_ERR_SYNTAX;
		}
		memcpy(o, p, k);
		o += k;
		p += k;
	}
	*o++ = '\0';
	*out = start;
	*out_len = (size_t)(o - start - 1);
	d->used += (size_t)(o - start);
	*pp = p + 1;
	return 0;
}

static int read_number(const char **pp, const char *end, double *out)
{
	const char *p = *pp, *s = p;
	char buf[64];
	size_t n;

	if (p < end && *p == '-')
		p++;
	if (p >= end)
		return AGD_JSON_ERR_TRUNCATED;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	else
		return AGD_JSON_ERR_SYNTAX;
	if (p < end && *p == '.') {
		p++;
		if (p >= end)
			return AGD_JSON_ERR_TRUNCATED;
		if (*p < '0' || *p > '9')
			return AGD_JSON_ERR_SYNTAX;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end)
			return AGD_JSON_ERR_TRUNCATED;
		if (*p < '0' || *p > '9')
			return AGD_JSON_ERR_SYNTAX;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	n = (size_t)(p - s);
	if (n >= sizeof buf)
		return AGD_JSON_ERR_SYNTAX;
	memcpy(buf, s, n);
	buf[n] = '\0';
	*out = strtod(buf, NULL);
	*pp = p;
	return 0;
}

static int read_word(const char **pp, const char *end, const char *word)
{
	size_t n = strlen(word), have = (size_t)(end - *pp);

	if (memcmp(*pp, word, have < n ? have : n) != 0)
		return AGD_JSON_ERR_SYNTAX;
	if (have < n)
		return AGD_JSON_ERR_TRUNCATED;
	*pp += n;
	return 0;
}

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

int agd_json_parse(const char *text, size_t len, struct agd_json **out, size_t *err_off)
{
	struct agd_json *d = calloc(1, sizeof *d);
	const char *p = text, *end = text + len;
	uint32_t stack[AGD_JSON_DEPTH_MAX], last[AGD_JSON_DEPTH_MAX];
	int sp = 0, rc = 0;
	const char *key = NULL;
	size_t key_len = 0;

	*out = NULL;
	if (d == NULL)
		return AGD_JSON_ERR_NOMEM;
	d->arena = malloc(len + 1);
	if (d->arena == NULL) {
		rc = AGD_JSON_ERR_NOMEM;
		goto out;
	}
	for (;;) {
		uint32_t v;
		struct agd_json_val *val;

		/* Expecting a value. */
		p = skip_ws(p, end);
		if (p >= end) {
			rc = AGD_JSON_ERR_TRUNCATED;
			goto out;
		}
		switch (*p) {
		case '{': v = new_val(d, AGD_JSON_OBJ, &rc); break;
		case '[': v = new_val(d, AGD_JSON_ARR, &rc); break;
		case '"': v = new_val(d, AGD_JSON_STR, &rc); break;
		case 't': case 'f': v = new_val(d, AGD_JSON_BOOL, &rc); break;
		case 'n': v = new_val(d, AGD_JSON_NULL, &rc); break;
		default: v = new_val(d, AGD_JSON_NUM, &rc); break;
		}
		if (rc != 0)
			goto out;
		val = &d->vals[v];
		val->key = key;
		val->key_len = key_len;
		key = NULL;
		key_len = 0;
		if (sp > 0) {
			struct agd_json_val *parent = &d->vals[stack[sp - 1]];

			if (parent->count == 0)
				parent->child = v;
			else
				d->vals[last[sp - 1]].next = v;
			parent->count++;
			last[sp - 1] = v;
		}
		switch (*p) {
		case '{':
		case '[':
			if (sp == AGD_JSON_DEPTH_MAX) {
				rc = AGD_JSON_ERR_DEPTH;
				goto out;
			}
			stack[sp++] = v;
			p = skip_ws(p + 1, end);
			if (p >= end) {
				rc = AGD_JSON_ERR_TRUNCATED;
				goto out;
			}
			if (*p == (val->type == AGD_JSON_OBJ ? '}' : ']')) {
				p++;
				sp--;
				goto after_value;
			}
			if (val->type == AGD_JSON_OBJ)
				goto expect_key;
			continue;
		case '"':
			rc = read_string(d, &p, end, &val->str, &val->str_len);
			break;
		case 't':
			rc = read_word(&p, end, "true");
			val->boolean = 1;
			break;
		case 'f':
			rc = read_word(&p, end, "false");
			break;
		case 'n':
			rc = read_word(&p, end, "null");
			break;
		default:
			rc = read_number(&p, end, &val->num);
			break;
		}
		if (rc != 0)
			goto out;
after_value:
		p = skip_ws(p, end);
		if (sp == 0) {
			if (p != end)
				rc = AGD_JSON_ERR_SYNTAX;
			goto out;
		}
		if (p >= end) {
			rc = AGD_JSON_ERR_TRUNCATED;
			goto out;
		}
		if (*p == ',') {
			p++;
			if (d->vals[stack[sp - 1]].type == AGD_JSON_OBJ)
				goto expect_key;
			continue;
		}
		if (*p == (d->vals[stack[sp - 1]].type == AGD_JSON_OBJ ? '}' : ']')) {
			p++;
			sp--;
			goto after_value;
		}
		rc = AGD_JSON_ERR_SYNTAX;
		goto out;
expect_key:
		p = skip_ws(p, end);
		if (p >= end) {
			rc = AGD_JSON_ERR_TRUNCATED;
			goto out;
		}
		if (*p != '"') {
			rc = AGD_JSON_ERR_SYNTAX;
			goto out;
		}
		if ((rc = read_string(d, &p, end, &key, &key_len)) != 0)
			goto out;
		p = skip_ws(p, end);
		if (p >= end) {
			rc = AGD_JSON_ERR_TRUNCATED;
			goto out;
		}
		if (*p != ':') {
			rc = AGD_JSON_ERR_SYNTAX;
			goto out;
		}
		p++;
	}
out:
	if (rc != 0) {
		if (err_off != NULL)
			*err_off = (size_t)(p - text);
		agd_json_destroy(&d);
		return rc;
	}
	*out = d;
	return 0;
}

const struct agd_json_val *agd_json_root(const struct agd_json *doc)
{
	return &doc->vals[0];
}

const struct agd_json_val *agd_json_first(const struct agd_json *doc, const struct agd_json_val *v)
{
	if (v == NULL || (v->type != AGD_JSON_ARR && v->type != AGD_JSON_OBJ) || v->count == 0)
		return NULL;
	return &doc->vals[v->child];
}

const struct agd_json_val *agd_json_next(const struct agd_json *doc, const struct agd_json_val *v)
{
	if (v == NULL || v->next == 0)
		return NULL;
	return &doc->vals[v->next];
}

const struct agd_json_val *agd_json_get(const struct agd_json *doc, const struct agd_json_val *v,
					const char *key)
{
	const struct agd_json_val *found = NULL;
	size_t n = strlen(key);

	if (v == NULL || v->type != AGD_JSON_OBJ)
		return NULL;
	for (const struct agd_json_val *m = agd_json_first(doc, v); m; m = agd_json_next(doc, m))
		if (m->key_len == n && memcmp(m->key, key, n) == 0)
			found = m;
	return found;
}

int agd_json_get_str(const struct agd_json *doc, const struct agd_json_val *obj, const char *key,
		     const char **out)
{
	const struct agd_json_val *v = agd_json_get(doc, obj, key);

	if (v == NULL || v->type != AGD_JSON_STR)
		return -1;
	*out = v->str;
	return 0;
}

int agd_json_get_num(const struct agd_json *doc, const struct agd_json_val *obj, const char *key,
		     double *out)
{
	const struct agd_json_val *v = agd_json_get(doc, obj, key);

	if (v == NULL || v->type != AGD_JSON_NUM)
		return -1;
	*out = v->num;
	return 0;
}

int agd_json_get_int(const struct agd_json *doc, const struct agd_json_val *obj, const char *key,
		     long long *out)
{
	const struct agd_json_val *v = agd_json_get(doc, obj, key);

	/* 2^63 is exactly representable; anything at or past it is out. */
	if (v == NULL || v->type != AGD_JSON_NUM || v->num != floor(v->num) ||
	    v->num >= 9223372036854775808.0 || v->num < -9223372036854775808.0)
		return -1;
	*out = (long long)v->num;
	return 0;
}

int agd_json_get_bool(const struct agd_json *doc, const struct agd_json_val *obj, const char *key,
		      int *out)
{
	const struct agd_json_val *v = agd_json_get(doc, obj, key);

	if (v == NULL || v->type != AGD_JSON_BOOL)
		return -1;
	*out = v->boolean;
	return 0;
}
