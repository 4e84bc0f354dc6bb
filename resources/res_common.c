/*
 * res_common.c: error strings and the names of the model's vocabulary.
 * Pure tables; no state.
 */
#include "res.h"

#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	const char *text;
} errs[] = {
	{"ok", "success"},
	{"nomem", "out of memory"},
	{"arg", "invalid argument"},
	{"notfound", "no such resource"},
	{"exists", "identifier already in use"},
	{"io", "input/output error"},
	{"db", "key-value store error"},
	{"kind", "operation not supported by this kind of resource"},
	{"limit", "size or count limit exceeded"},
	{"truncated", "encoded data truncated"},
	{"malformed", "encoded data malformed"},
	{"version", "unsupported encoding version"},
	{"unreachable", "home host unreachable"},
	{"denied", "not allowed"},
	{"moved", "resource has moved"},
	{"noaction", "no applicable policy action"},
	{"unbound", "handle is not bound to a resource"},
	{"transport", "transport failure"},
};

const char *res_strerror(int code)
{
	if (code > 0 || code < RES_ERR_MIN)
		return "unknown error";
	return errs[-code].text;
}

const char *res_errname(int code)
{
	if (code > 0 || code < RES_ERR_MIN)
		return "unknown";
	return errs[-code].name;
}

static const char *const action_names[RES_NACTIONS] = {"none", "GR", "MV", "CP", "RB"};
static const char *const binding_names[RES_NBINDINGS] = {"identifier", "value", "type"};
static const char *const attach_names[RES_NATTACH] = {"unattached", "fastened", "fixed"};
static const char *const kind_names[RES_NKINDS] = {"file", "kv", "printer", "sensor"};

const char *res_action_name(enum res_action a)
{
	return (unsigned)a < RES_NACTIONS ? action_names[a] : "?";
}

const char *res_binding_name(enum res_binding b)
{
	return (unsigned)b < RES_NBINDINGS ? binding_names[b] : "?";
}

const char *res_attach_name(enum res_attach a)
{
	return (unsigned)a < RES_NATTACH ? attach_names[a] : "?";
}

const char *res_kind_name(enum res_kind k)
{
	return (unsigned)k < RES_NKINDS ? kind_names[k] : "?";
}

/* Index of s in names[0..n), case-insensitive, or -1. */
static int lookup(const char *const *names, int n, const char *s)
{
	if (s == NULL)
		return -1;
	for (int i = 0; i < n; i++)
		if (strcasecmp(names[i], s) == 0)
			return i;
	return -1;
}

int res_action_parse(const char *s, enum res_action *out)
{
	/* "none" is a name for printing, not something a config may ask for. */
	int i = lookup(action_names + 1, RES_NACTIONS - 1, s);

	if (i < 0)
		return RES_ERR_ARG;
	*out = (enum res_action)(i + 1);
	return 0;
}

int res_binding_parse(const char *s, enum res_binding *out)
{
	int i = lookup(binding_names, RES_NBINDINGS, s);

	if (i < 0 && s != NULL && strcasecmp(s, "id") == 0)
		i = RES_BIND_ID;
	if (i < 0)
		return RES_ERR_ARG;
	*out = (enum res_binding)i;
	return 0;
}

int res_attach_parse(const char *s, enum res_attach *out)
{
	int i = lookup(attach_names, RES_NATTACH, s);

	if (i < 0)
		return RES_ERR_ARG;
	*out = (enum res_attach)i;
	return 0;
}

int res_kind_parse(const char *s, enum res_kind *out)
{
	int i = lookup(kind_names, RES_NKINDS, s);

	if (i < 0)
		return RES_ERR_ARG;
	*out = (enum res_kind)i;
	return 0;
}

int res_id_valid(const char *s)
{
	size_t n = 0;

	if (s == NULL || s[0] == '\0')
		return 0;
	/* "." and ".." would name directories when used as file names. */
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (; s[n] != '\0'; n++) {
		unsigned char c = (unsigned char)s[n];

		if (n + 1 >= RES_ID_MAX)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '-'))
			return 0;
	}
	return 1;
}

#include "res_internal.h"

#include <stdio.h>

void resi_text_init(struct resi_text *t, char *buf, size_t len)
{
	t->buf = buf;
	t->len = len;
	t->used = 0;
	t->overflow = len == 0;
	if (len > 0)
		buf[0] = '\0';
}

void resi_text_add(struct resi_text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->used, t->len - t->used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= t->len - t->used) {
		/* Leave what was complete before this call, NUL-terminated. */
		t->buf[t->used] = '\0';
		t->overflow = 1;
		return;
	}
	t->used += (size_t)n;
}

int resi_copy(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (n >= len) {
		if (len > 0)
			dst[0] = '\0';
		return -1;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

int resi_fail(void *errp, int code, const char *fmt, ...)
{
	struct res_error *err = errp;
	va_list ap;

	if (err == NULL)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return code;
}
