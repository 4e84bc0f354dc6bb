/*
 * res_fixture.h: helpers shared by the resources tests: temporary
 * directories, registries built from "key=value" strings, ops run through
 * the real codec, a loopback transport between registries of one process
 * (with hosts that can be marked down), and whole-file reads for checking
 * what is on disk.
 */
#ifndef RES_FIXTURE_H
#define RES_FIXTURE_H

#include "res_action.h"
#include "res_op.h"
#include "res_registry.h"
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Adds resource id to reg from "key=value" strings (NULL-terminated).
 * Returns the registry's code; err gets the message. */
static inline int fx_add(struct res_registry *reg, struct res_error *err, const char *id, ...)
{
	const char *keys[16], *vals[16];
	char store[16][256];
	size_t n = 0;
	va_list ap;
	const char *kv;

	va_start(ap, id);
	while ((kv = va_arg(ap, const char *)) != NULL && n < 16) {
		char *eq;

		snprintf(store[n], sizeof store[n], "%s", kv);
		eq = strchr(store[n], '=');
		cr_assert_not_null(eq, "fixture: '%s' is not key=value", kv);
		*eq = '\0';
		keys[n] = store[n];
		vals[n] = eq + 1;
		n++;
	}
	va_end(ap);
	return res_registry_add(reg, id, n, keys, vals, err);
}

/* A path under dir, in a static rotating buffer (enough for one call). */
static inline const char *fx_path(const char *dir, const char *name)
{
	static char bufs[8][512];
	static int next;
	char *b = bufs[next++ % 8];

	snprintf(b, 512, "%s/%s", dir, name);
	return b;
}

/* "path=<dir>/<name>" for fx_add. */
static inline const char *fx_pathkv(const char *dir, const char *name)
{
	static char bufs[8][600];
	static int next;
	char *b = bufs[next++ % 8];

	snprintf(b, 600, "path=%s/%s", dir, name);
	return b;
}

/* Whole content of a file (malloc'd, NUL-terminated) or NULL if missing. */
static inline char *fx_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

static inline void fx_spit(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");

	cr_assert_not_null(f, "cannot write %s", path);
	fputs(text, f);
	fclose(f);
}

static inline int fx_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* A decoded reply kept with its bytes. */
struct fx_reply {
	void *buf;
	size_t len;
	struct res_msg m;
};

static inline void fx_reply_free(struct fx_reply *r)
{
	free(r->buf);
	memset(r, 0, sizeof *r);
}

/* Runs op on reg with the arguments in a. The reply must decode.
 * Returns the op's code. */
static inline int fx_op_msg(struct res_registry *reg, const char *id, const char *op,
			    unsigned flags, struct fx_reply *r, const struct res_msg *a)
{
	void *args;
	size_t alen;
	int rc;

	cr_assert_eq(res_msg_encode(a, &args, &alen), 0);
	memset(r, 0, sizeof *r);
	rc = res_exec_op(reg, id, op, args, alen, flags, &r->buf, &r->len);
	free(args);
	cr_assert_not_null(r->buf, "every op answers");
	cr_assert_eq(res_msg_decode(r->buf, r->len, &r->m), 0, "every reply decodes");
	cr_assert_eq(res_msg_code(&r->m), rc, "the reply carries the op's code");
	return rc;
}

/* Runs op on reg with string arguments (NULL-terminated; a NULL first
 * means none). */
static inline int fx_op(struct res_registry *reg, const char *id, const char *op, unsigned flags,
			struct fx_reply *r, ...)
{
	struct res_msg a = {.type = RES_MSG_ARGS};
	const char *s;
	va_list ap;

	va_start(ap, r);
	while ((s = va_arg(ap, const char *)) != NULL && a.n < RES_OP_MAX_FIELDS) {
		a.f[a.n].p = s;
		a.f[a.n].len = strlen(s);
		a.n++;
	}
	va_end(ap);
	return fx_op_msg(reg, id, op, flags, r, &a);
}

/* The u64 of the first reply field. */
static inline uint64_t fx_u64(const struct fx_reply *r)
{
	uint64_t v = 0;

	cr_assert(r->m.n >= 1);
	cr_assert_eq(res_u64_get(&r->m.f[0], &v), 0);
	return v;
}

/* The first reply field as a NUL-terminated string (static buffer). */
static inline const char *fx_str(const struct fx_reply *r)
{
	static char buf[4096];
	size_t n;

	if (r->m.n < 1)
		return NULL;
	n = r->m.f[0].len < sizeof buf - 1 ? r->m.f[0].len : sizeof buf - 1;
	memcpy(buf, r->m.f[0].p, n);
	buf[n] = '\0';
	return buf;
}

/* Loopback transport: a little cluster of registries in one process. */
#define FX_MAX_HOSTS 4
struct fx_net {
	struct res_registry *reg[FX_MAX_HOSTS]; /* by index; NULL slots unused */
	int down[FX_MAX_HOSTS];                 /* 1: host does not answer */
	unsigned calls;                         /* calls made through the transport */
	char last_home[RES_HOST_MAX];           /* home of the last call */
};

static inline int fx_net_call(void *ud, const char *home, const char *id, const char *op,
			      const void *args, size_t args_len, void **reply, size_t *reply_len)
{
	struct fx_net *net = ud;

	*reply = NULL;
	*reply_len = 0;
	net->calls++;
	snprintf(net->last_home, sizeof net->last_home, "%s", home);
	for (int i = 0; i < FX_MAX_HOSTS; i++)
		if (net->reg[i] != NULL && strcmp(res_registry_host(net->reg[i]), home) == 0) {
			if (net->down[i])
				return RES_ERR_UNREACHABLE;
			/* What the home's daemon does with a forwarded op. */
			res_exec_op(net->reg[i], id, op, args, args_len, RES_EXEC_REMOTE, reply,
				    reply_len);
			return *reply ? 0 : RES_ERR_TRANSPORT;
		}
	return RES_ERR_UNREACHABLE;
}

static inline struct res_transport fx_net_transport(struct fx_net *net)
{
	struct res_transport t = {fx_net_call, net};

	return t;
}

#endif
