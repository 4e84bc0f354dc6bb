/*
 * mig_manifest.c: parsing and canonical formatting of segment manifests
 * (docs/segments.md, "Manifest").
 *
 * The parser walks the text once, line by line, against an end pointer; no
 * line is longer than MIG_MANIFEST_LINE_MAX and nothing is copied without a
 * length check, so any byte string is safe to hand it. It never runs code.
 */
#include "mig_manifest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(struct mig_error *err, int code, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(struct mig_error *err, int code, unsigned line, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (err == NULL)
		return code;
	err->code = code;
	if (line > 0)
		n = snprintf(err->msg, sizeof err->msg, "manifest line %u: ", line);
	else
		n = snprintf(err->msg, sizeof err->msg, "manifest: ");
	if (n < 0 || (size_t)n >= sizeof err->msg)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(err->msg + n, sizeof err->msg - (size_t)n, fmt, ap);
	va_end(ap);
	return code;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Printable ASCII without blanks: versions, identifiers. */
static int is_graph(char c)
{
	return c > 0x20 && c < 0x7f;
}

int mig_manifest_valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MIG_MANIFEST_NAME_MAX || !is_alnum(s[0]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
			return 0;
	return 1;
}

/* Flat names only: no '/', no leading '.', so that signing a directory can
 * never reach outside it. */
int mig_manifest_valid_file_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MIG_MANIFEST_FILE_NAME_MAX || s[0] == '.' || s[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
			return 0;
	return 1;
}

static int valid_lua_ident(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MIG_MANIFEST_FUNC_MAX || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '_')
			return 0;
	return 1;
}

static int valid_graph(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_graph(s[i]))
			return 0;
	return 1;
}

const char *mig_mobility_name(enum mig_mobility m)
{
	switch (m) {
	case MIG_MOBILITY_WEAK: return "weak";
	case MIG_MOBILITY_STRONG: return "strong";
	case MIG_MOBILITY_BOTH: return "both";
	}
	return "?";
}

const char *mig_activation_name(enum mig_activation a)
{
	switch (a) {
	case MIG_ACTIVATION_RESIDENT: return "resident";
	case MIG_ACTIVATION_ON_DEMAND: return "on-demand";
	}
	return "?";
}

const char *mig_binding_kind_name(enum mig_binding_kind k)
{
	switch (k) {
	case MIG_BIND_IDENTIFIER: return "by-identifier";
	case MIG_BIND_VALUE: return "by-value";
	case MIG_BIND_TYPE: return "by-type";
	}
	return "?";
}

const char *mig_action_name(enum mig_action a)
{
	switch (a) {
	case MIG_ACTION_GR: return "GR";
	case MIG_ACTION_MV: return "MV";
	case MIG_ACTION_CP: return "CP";
	case MIG_ACTION_RB: return "RB";
	}
	return "?";
}

/* The resource kinds a by-type binding may name: the resources library's
 * (file, kv, printer, sensor) and "device", any device (the host's printer,
 * else its sensor: docs/resources.md). */
static int valid_res_kind(const char *s)
{
	static const char *const kinds[] = { "file", "kv", "printer", "sensor", "device" };

	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strcmp(s, kinds[i]) == 0)
			return 1;
	return 0;
}

/* Splits the blank-separated words of s (modified in place) into w[]; returns
 * the count, or max + 1 when there are more. */
static size_t split_words(char *s, char **w, size_t max)
{
	size_t n = 0;

	for (;;) {
		while (is_blank(*s))
			s++;
		if (*s == '\0')
			return n;
		if (n == max)
			return max + 1;
		w[n++] = s;
		while (*s != '\0' && !is_blank(*s))
			s++;
		if (*s == '\0')
			return n;
		*s++ = '\0';
	}
}

/* Copies src into dst[cap] if it fits (cap counts the NUL). */
static int copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

/* Decimal, no sign, no leading '+', at most 2^64 - 1. */
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

static int parse_actions(const char *s, struct mig_binding *b)
{
	static const char *const names[] = { NULL, "GR", "MV", "CP", "RB" };

	b->nactions = 0;
	while (*s != '\0') {
		int found = 0;

		for (int a = MIG_ACTION_GR; a <= MIG_ACTION_RB; a++) {
			if (strncmp(s, names[a], 2) != 0 || (s[2] != ',' && s[2] != '\0'))
				continue;
			for (unsigned i = 0; i < b->nactions; i++)
				if (b->actions[i] == a)
					return -1;
			if (b->nactions == MIG_MANIFEST_ACTIONS_MAX)
				return -1;
			b->actions[b->nactions++] = (uint8_t)a;
			s += 2;
			if (*s == ',' && s[1] == '\0')
				return -1;
			if (*s == ',')
				s++;
			found = 1;
			break;
		}
		if (!found)
			return -1;
	}
	return b->nactions > 0 ? 0 : -1;
}

static int parse_binding(char *value, struct mig_binding *b, unsigned line, struct mig_error *err)
{
	char *w[5];
	size_t n = split_words(value, w, 4);

	memset(b, 0, sizeof *b);
	if (n < 3 || n > 4)
		return fail(err, MIG_ERR_MALFORMED, line,
			    "binding wants NAME by-identifier|by-value|by-type TARGET [actions=...]");
	if (!mig_manifest_valid_name(w[0]))
		return fail(err, MIG_ERR_MALFORMED, line, "bad binding name");
	copy_str(b->name, sizeof b->name, w[0]);
	if (strcmp(w[1], "by-identifier") == 0)
		b->kind = MIG_BIND_IDENTIFIER;
	else if (strcmp(w[1], "by-value") == 0)
		b->kind = MIG_BIND_VALUE;
	else if (strcmp(w[1], "by-type") == 0)
		b->kind = MIG_BIND_TYPE;
	else
		return fail(err, MIG_ERR_MALFORMED, line, "binding kind must be by-identifier, by-value or by-type");
	if (b->kind == MIG_BIND_TYPE ? !valid_res_kind(w[2]) : !valid_graph(w[2], MIG_MANIFEST_TARGET_MAX))
		return fail(err, MIG_ERR_MALFORMED, line,
			    b->kind == MIG_BIND_TYPE ? "by-type wants a kind: file, kv, printer, sensor or device"
						     : "bad resource identifier");
	copy_str(b->target, sizeof b->target, w[2]);
	if (n == 4) {
		if (strncmp(w[3], "actions=", 8) != 0 || parse_actions(w[3] + 8, b) != 0)
			return fail(err, MIG_ERR_MALFORMED, line,
				    "bad actions: want actions=A[,B...] of GR, MV, CP, RB, distinct");
	}
	return 0;
}

static int cmp_files(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

static int cmp_bindings(const void *a, const void *b)
{
	return strcmp(((const struct mig_binding *)a)->name, ((const struct mig_binding *)b)->name);
}

/* Which singleton keys have been seen, to refuse duplicates. */
enum {
	SEEN_NAME = 1 << 0,
	SEEN_VERSION = 1 << 1,
	SEEN_ENTRY = 1 << 2,
	SEEN_MOBILITY = 1 << 3,
	SEEN_ACTIVATION = 1 << 4,
	SEEN_MEMORY = 1 << 5,
	SEEN_INSTRUCTIONS = 1 << 6,
};

static int parse_line(char *key, char *value, struct mig_manifest *m, unsigned *seen,
		      unsigned line, struct mig_error *err)
{
	char *w[3];
	unsigned bit = 0;

	if (strcmp(key, "name") == 0) bit = SEEN_NAME;
	else if (strcmp(key, "version") == 0) bit = SEEN_VERSION;
	else if (strcmp(key, "entry") == 0) bit = SEEN_ENTRY;
	else if (strcmp(key, "mobility") == 0) bit = SEEN_MOBILITY;
	else if (strcmp(key, "activation") == 0) bit = SEEN_ACTIVATION;
	else if (strcmp(key, "memory") == 0) bit = SEEN_MEMORY;
	else if (strcmp(key, "instructions") == 0) bit = SEEN_INSTRUCTIONS;
	if (bit != 0) {
		if (*seen & bit)
			return fail(err, MIG_ERR_MALFORMED, line, "'%s' given twice", key);
		*seen |= bit;
	}

	switch (bit) {
	case SEEN_NAME:
		if (!mig_manifest_valid_name(value))
			return fail(err, MIG_ERR_MALFORMED, line,
				    "bad name: 1-%u of A-Z a-z 0-9 _ . -, starting with a letter or digit",
				    MIG_MANIFEST_NAME_MAX);
		copy_str(m->name, sizeof m->name, value);
		return 0;
	case SEEN_VERSION:
		if (!valid_graph(value, MIG_MANIFEST_VERSION_MAX))
			return fail(err, MIG_ERR_MALFORMED, line, "bad version: 1-%u printable characters, no blanks",
				    MIG_MANIFEST_VERSION_MAX);
		copy_str(m->version, sizeof m->version, value);
		return 0;
	case SEEN_ENTRY:
		if (split_words(value, w, 2) != 2 || !mig_manifest_valid_file_name(w[0]) ||
		    !valid_lua_ident(w[1]))
			return fail(err, MIG_ERR_MALFORMED, line, "entry wants FILE FUNCTION");
		copy_str(m->entry_file, sizeof m->entry_file, w[0]);
		copy_str(m->entry_func, sizeof m->entry_func, w[1]);
		return 0;
	case SEEN_MOBILITY:
		if (strcmp(value, "weak") == 0) m->mobility = MIG_MOBILITY_WEAK;
		else if (strcmp(value, "strong") == 0) m->mobility = MIG_MOBILITY_STRONG;
		else if (strcmp(value, "both") == 0) m->mobility = MIG_MOBILITY_BOTH;
		else return fail(err, MIG_ERR_MALFORMED, line, "mobility must be weak, strong or both");
		return 0;
	case SEEN_ACTIVATION:
		if (strcmp(value, "resident") == 0) m->activation = MIG_ACTIVATION_RESIDENT;
		else if (strcmp(value, "on-demand") == 0) m->activation = MIG_ACTIVATION_ON_DEMAND;
		else return fail(err, MIG_ERR_MALFORMED, line, "activation must be resident or on-demand");
		return 0;
	case SEEN_MEMORY:
		if (parse_u64(value, &m->quota_memory) != 0)
			return fail(err, MIG_ERR_MALFORMED, line, "memory wants a byte count");
		return 0;
	case SEEN_INSTRUCTIONS:
		if (parse_u64(value, &m->quota_instructions) != 0)
			return fail(err, MIG_ERR_MALFORMED, line, "instructions wants a count");
		return 0;
	default:
		break;
	}

	if (strcmp(key, "binding") == 0) {
		if (m->nbindings == MIG_MANIFEST_BINDINGS_MAX)
			return fail(err, MIG_ERR_LIMIT, line, "more than %u bindings", MIG_MANIFEST_BINDINGS_MAX);
		if (parse_binding(value, &m->bindings[m->nbindings], line, err) != 0)
			return err != NULL ? err->code : MIG_ERR_MALFORMED;
		for (uint32_t i = 0; i < m->nbindings; i++)
			if (strcmp(m->bindings[i].name, m->bindings[m->nbindings].name) == 0)
				return fail(err, MIG_ERR_MALFORMED, line, "binding '%s' given twice",
					    m->bindings[i].name);
		m->nbindings++;
		return 0;
	}
	if (strcmp(key, "file") == 0) {
		if (m->nfiles == MIG_MANIFEST_FILES_MAX)
			return fail(err, MIG_ERR_LIMIT, line, "more than %u files", MIG_MANIFEST_FILES_MAX);
		if (!mig_manifest_valid_file_name(value))
			return fail(err, MIG_ERR_MALFORMED, line,
				    "bad file name: 1-%u of A-Z a-z 0-9 _ . -, no leading '.' or '-'",
				    MIG_MANIFEST_FILE_NAME_MAX);
		for (uint32_t i = 0; i < m->nfiles; i++)
			if (strcmp(m->files[i], value) == 0)
				return fail(err, MIG_ERR_MALFORMED, line, "file '%s' listed twice", value);
		copy_str(m->files[m->nfiles++], sizeof m->files[0], value);
		return 0;
	}
	return fail(err, MIG_ERR_MALFORMED, line, "unknown key '%.32s'", key);
}

int mig_manifest_parse(const char *text, size_t len, struct mig_manifest *out,
		       struct mig_error *err)
{
	char buf[MIG_MANIFEST_LINE_MAX + 1];
	const char *p = text, *end;
	unsigned line = 0, seen = 0;
	int found_entry = 0;

	if (out == NULL || (text == NULL && len > 0))
		return fail(err, MIG_ERR_ARG, 0, "no manifest");
	memset(out, 0, sizeof *out);
	if (len > MIG_MANIFEST_TEXT_MAX)
		return fail(err, MIG_ERR_LIMIT, 0, "longer than %u bytes", MIG_MANIFEST_TEXT_MAX);
	if (len == 0)
		return fail(err, MIG_ERR_MALFORMED, 0, "empty");
	end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl != NULL ? nl : end) - p);
		char *s, *e, *eq;

		line++;
		if (n > MIG_MANIFEST_LINE_MAX)
			return fail(err, MIG_ERR_LIMIT, line, "longer than %u bytes", MIG_MANIFEST_LINE_MAX);
		memcpy(buf, p, n);
		buf[n] = '\0';
		p += n + (nl != NULL);
		if (memchr(buf, '\0', n) != NULL)
			return fail(err, MIG_ERR_MALFORMED, line, "NUL byte");
		if (n > 0 && buf[n - 1] == '\r')
			buf[--n] = '\0';
		s = buf;
		while (is_blank(*s))
			s++;
		e = s + strlen(s);
		while (e > s && is_blank(e[-1]))
			*--e = '\0';
		if (line == 1) {
			if (strcmp(s, MIG_MANIFEST_MAGIC) != 0)
				return fail(err, MIG_ERR_MALFORMED, line, "first line must be '%s'",
					    MIG_MANIFEST_MAGIC);
			continue;
		}
		if (*s == '\0' || *s == '#')
			continue;
		for (char *q = s; *q != '\0'; q++)
			if ((unsigned char)*q < 0x20 && *q != '\t')
				return fail(err, MIG_ERR_MALFORMED, line, "control character");
		eq = strchr(s, '=');
		if (eq == NULL)
			return fail(err, MIG_ERR_MALFORMED, line, "want key = value");
		e = eq;
		*eq = '\0';
		while (e > s && is_blank(e[-1]))
			*--e = '\0';
		eq++;
		while (is_blank(*eq))
			eq++;
		if (*eq == '\0')
			return fail(err, MIG_ERR_MALFORMED, line, "'%.32s' has no value", s);
		if (parse_line(s, eq, out, &seen, line, err) != 0)
			return err != NULL ? err->code : MIG_ERR_MALFORMED;
	}

	if (!(seen & SEEN_NAME))
		return fail(err, MIG_ERR_MALFORMED, 0, "no name");
	if (!(seen & SEEN_VERSION))
		return fail(err, MIG_ERR_MALFORMED, 0, "no version");
	if (!(seen & SEEN_ENTRY))
		return fail(err, MIG_ERR_MALFORMED, 0, "no entry");
	if (!(seen & SEEN_MOBILITY))
		return fail(err, MIG_ERR_MALFORMED, 0, "no mobility");
	if (!(seen & SEEN_ACTIVATION))
		out->activation = MIG_ACTIVATION_RESIDENT;
	if (out->nfiles == 0)
		return fail(err, MIG_ERR_MALFORMED, 0, "no file");
	for (uint32_t i = 0; i < out->nfiles; i++)
		if (strcmp(out->files[i], out->entry_file) == 0)
			found_entry = 1;
	if (!found_entry)
		return fail(err, MIG_ERR_MALFORMED, 0, "entry file '%s' is not listed as a file",
			    out->entry_file);
	qsort(out->files, out->nfiles, sizeof out->files[0], cmp_files);
	qsort(out->bindings, out->nbindings, sizeof out->bindings[0], cmp_bindings);
	return 0;
}

/* Appends formatted text at *pos, refusing to overflow. */
static int put(char *buf, size_t cap, size_t *pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int put(char *buf, size_t cap, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*pos >= cap)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(buf + *pos, cap - *pos, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap - *pos)
		return -1;
	*pos += (size_t)n;
	return 0;
}

int mig_manifest_format(const struct mig_manifest *m, char *buf, size_t cap, size_t *len)
{
	size_t pos = 0;

	if (m == NULL || buf == NULL || len == NULL)
		return MIG_ERR_ARG;
	*len = 0;
	if (!mig_manifest_valid_name(m->name) || !valid_graph(m->version, MIG_MANIFEST_VERSION_MAX) ||
	    !mig_manifest_valid_file_name(m->entry_file) || !valid_lua_ident(m->entry_func) ||
	    m->nfiles == 0 || m->nfiles > MIG_MANIFEST_FILES_MAX ||
	    m->nbindings > MIG_MANIFEST_BINDINGS_MAX ||
	    strcmp(mig_mobility_name(m->mobility), "?") == 0 ||
	    strcmp(mig_activation_name(m->activation), "?") == 0)
		return MIG_ERR_ARG;
	if (put(buf, cap, &pos, "%s\nname = %s\nversion = %s\nentry = %s %s\nmobility = %s\n"
		"activation = %s\nmemory = %llu\ninstructions = %llu\n",
		MIG_MANIFEST_MAGIC, m->name, m->version, m->entry_file, m->entry_func,
		mig_mobility_name(m->mobility), mig_activation_name(m->activation),
		(unsigned long long)m->quota_memory, (unsigned long long)m->quota_instructions) != 0)
		return MIG_ERR_LIMIT;
	for (uint32_t i = 0; i < m->nbindings; i++) {
		const struct mig_binding *b = &m->bindings[i];

		if (!mig_manifest_valid_name(b->name) || strcmp(mig_binding_kind_name(b->kind), "?") == 0 ||
		    !valid_graph(b->target, MIG_MANIFEST_TARGET_MAX) ||
		    b->nactions > MIG_MANIFEST_ACTIONS_MAX ||
		    (i > 0 && strcmp(m->bindings[i - 1].name, b->name) >= 0))
			return MIG_ERR_ARG;
		if (put(buf, cap, &pos, "binding = %s %s %s", b->name, mig_binding_kind_name(b->kind),
			b->target) != 0)
			return MIG_ERR_LIMIT;
		for (unsigned a = 0; a < b->nactions; a++) {
			if (strcmp(mig_action_name(b->actions[a]), "?") == 0)
				return MIG_ERR_ARG;
			if (put(buf, cap, &pos, "%s%s", a == 0 ? " actions=" : ",",
				mig_action_name(b->actions[a])) != 0)
				return MIG_ERR_LIMIT;
		}
		if (put(buf, cap, &pos, "\n") != 0)
			return MIG_ERR_LIMIT;
	}
	for (uint32_t i = 0; i < m->nfiles; i++) {
		if (!mig_manifest_valid_file_name(m->files[i]) ||
		    (i > 0 && strcmp(m->files[i - 1], m->files[i]) >= 0))
			return MIG_ERR_ARG;
		if (put(buf, cap, &pos, "file = %s\n", m->files[i]) != 0)
			return MIG_ERR_LIMIT;
	}
	*len = pos;
	return 0;
}
