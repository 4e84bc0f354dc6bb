/*
 * res_internal.h: helpers shared by the files of the resources library and
 * not part of its interface (prefix resi_).
 */
#ifndef RES_INTERNAL_H
#define RES_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Bounded text output: appends never write past len and record overflow,
 * so a caller formats everything and checks once at the end. */
struct resi_text {
	char *buf;      /* destination, always NUL-terminated when len > 0 */
	size_t len;     /* its size */
	size_t used;    /* bytes written, excluding the NUL */
	int overflow;   /* set when something did not fit */
};
void resi_text_init(struct resi_text *t, char *buf, size_t len);
void resi_text_add(struct resi_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copies src into dst[len] (NUL-terminated); returns 0, or -1 when it does
 * not fit (dst then holds an empty string). */
int resi_copy(char *dst, size_t len, const char *src);

/* Formats into err (may be NULL) and returns code. */
int resi_fail(void *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
