/*
 * agd_json.h: a small JSON writer and a bounded parser, for the control
 * channel (docs/control-protocol.md) on both sides: agentd and agentctl.
 *
 * Writer: appends to a growable buffer; strings are escaped so that any bytes
 * (an agent can log anything) give valid JSON: quotes, backslashes and control
 * characters are escaped, and bytes that are not valid UTF-8 are written as
 * \u00XX (the byte value as a code point). A failed allocation is sticky: the
 * writer stops and agd_jw_take returns NULL.
 *
 * Parser: reads RFC 8259 JSON from (pointer, length), with no recursion: an
 * explicit stack capped at AGD_JSON_DEPTH_MAX. The whole document becomes a
 * flat array of values linked by index; strings are decoded (escapes,
 * surrogate pairs) into one arena and NUL-terminated (their length is kept
 * too, since \u0000 is legal). Every read is checked against the end; input
 * that stops early is told apart from input that is wrong.
 *
 * Thread-safety: none needed; objects are used by one thread at a time.
 */
#ifndef AGD_JSON_H
#define AGD_JSON_H

#include <stddef.h>
#include <stdint.h>

/* Deepest nesting of arrays and objects the parser accepts. */
#define AGD_JSON_DEPTH_MAX 64
/* Most values in one document. */
#define AGD_JSON_VALUES_MAX (4u << 20)

enum agd_json_err {
	AGD_JSON_OK = 0,
	AGD_JSON_ERR_NOMEM = -1,     /* out of memory */
	AGD_JSON_ERR_TRUNCATED = -2, /* the text ends inside a value */
	AGD_JSON_ERR_SYNTAX = -3,    /* the text is not JSON */
	AGD_JSON_ERR_DEPTH = -4,     /* nesting deeper than AGD_JSON_DEPTH_MAX */
	AGD_JSON_ERR_LIMIT = -5,     /* more than AGD_JSON_VALUES_MAX values */
};

/* A static string for a code; never NULL. */
const char *agd_json_strerror(int code);

/* ---- writer ---- */

struct agd_jw {
	char *buf;      /* output, NUL-terminated while err == 0 */
	size_t len;     /* bytes written */
	size_t cap;     /* bytes allocated */
	int err;        /* sticky AGD_JSON_ERR_NOMEM or _DEPTH */
	int depth;      /* open containers */
	uint8_t first[AGD_JSON_DEPTH_MAX]; /* 1 while the container has no item */
	uint8_t after_key; /* a key was written; the value needs no comma */
};

/* Zeroes w; nothing is allocated until the first write. */
void agd_jw_init(struct agd_jw *w);
/* Frees the buffer (unless taken) and zeroes w. */
void agd_jw_free(struct agd_jw *w);

void agd_jw_obj_begin(struct agd_jw *w);
void agd_jw_obj_end(struct agd_jw *w);
void agd_jw_arr_begin(struct agd_jw *w);
void agd_jw_arr_end(struct agd_jw *w);
/* An object member's key (NUL-terminated); the next call writes its value. */
void agd_jw_key(struct agd_jw *w, const char *key);
void agd_jw_str(struct agd_jw *w, const char *s);        /* NULL writes null */
void agd_jw_strn(struct agd_jw *w, const char *s, size_t n);
void agd_jw_int(struct agd_jw *w, long long v);
void agd_jw_num(struct agd_jw *w, double v);              /* non-finite -> null */
void agd_jw_bool(struct agd_jw *w, int v);
void agd_jw_null(struct agd_jw *w);
/* Appends already-valid JSON text as one value (for nesting documents). */
void agd_jw_raw(struct agd_jw *w, const char *json, size_t n);

/* Hands the NUL-terminated text to the caller (free()), sets *len if len is
 * not NULL, and resets w. Returns NULL after any error (w is freed then). */
char *agd_jw_take(struct agd_jw *w, size_t *len);

/* ---- parser ---- */

enum agd_json_type {
	AGD_JSON_NULL,
	AGD_JSON_BOOL,
	AGD_JSON_NUM,
	AGD_JSON_STR,
	AGD_JSON_ARR,
	AGD_JSON_OBJ,
};

/* One value of a parsed document. Pointers stay valid until the document is
 * destroyed. */
struct agd_json_val {
	enum agd_json_type type;  /* which of the fields below mean something */
	const char *key;          /* member name when the parent is an object */
	size_t key_len;           /* its length (may hold NULs) */
	const char *str;          /* AGD_JSON_STR: decoded text, NUL-terminated */
	size_t str_len;           /* its length */
	double num;               /* AGD_JSON_NUM */
	int boolean;              /* AGD_JSON_BOOL */
	uint32_t count;           /* AGD_JSON_ARR/OBJ: number of items */
	uint32_t child;           /* index of the first item, 0 when none */
	uint32_t next;            /* index of the next sibling, 0 when none */
};

struct agd_json;

/* Parses text[0..len). On success sets *out (free with agd_json_destroy).
 * On failure returns a negative agd_json_err and, if err_off is not NULL,
 * the byte offset where parsing stopped. */
int agd_json_parse(const char *text, size_t len, struct agd_json **out, size_t *err_off);
void agd_json_destroy(struct agd_json **doc_p);

/* The top-level value; never NULL for a parsed document. */
const struct agd_json_val *agd_json_root(const struct agd_json *doc);
/* First item of an array or object, or NULL. */
const struct agd_json_val *agd_json_first(const struct agd_json *doc, const struct agd_json_val *v);
/* Next sibling, or NULL. */
const struct agd_json_val *agd_json_next(const struct agd_json *doc, const struct agd_json_val *v);
/* Member `key` of object v (the last one when repeated), or NULL when v is not
 * an object or has no such member. */
const struct agd_json_val *agd_json_get(const struct agd_json *doc, const struct agd_json_val *v,
					const char *key);

/* Typed lookups on object members. Each returns 0 and sets *out, or -1 when
 * the member is missing or of another type (and leaves *out alone, so a
 * default can be preset). _int also fails for non-integral or out-of-range
 * numbers. */
int agd_json_get_str(const struct agd_json *doc, const struct agd_json_val *obj, const char *key,
		     const char **out);
int agd_json_get_int(const struct agd_json *doc, const struct agd_json_val *obj, const char *key,
		     long long *out);
int agd_json_get_num(const struct agd_json *doc, const struct agd_json_val *obj, const char *key,
		     double *out);
int agd_json_get_bool(const struct agd_json *doc, const struct agd_json_val *obj, const char *key,
		      int *out);

#endif
