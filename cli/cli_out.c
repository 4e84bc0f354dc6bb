/*
 * cli_out.c: output helpers for agentctl (see cli_out.h and cli.h).
 */
#include "cli_out.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_errorf(struct cli_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx->errmsg, sizeof ctx->errmsg, fmt, ap);
	va_end(ap);
	if (ctx->err != NULL)
		fprintf(ctx->err, "agentctl: %s\n", ctx->errmsg);
}

void cli_json_emit(struct cli_ctx *ctx, const char *json)
{
	fprintf(ctx->out, "%s\n", json);
	ctx->emitted = 1;
}

int cli_emit_jw(struct cli_ctx *ctx, struct agd_jw *w)
{
	char *text = agd_jw_take(w, NULL);

	if (text == NULL) {
		cli_errorf(ctx, "out of memory while writing JSON");
		return CLI_EXIT_FAIL;
	}
	cli_json_emit(ctx, text);
	free(text);
	return CLI_EXIT_OK;
}

const char *cli_fmt_bytes(double n, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	size_t u = 0;

	while (n >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
		n /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%.0f B", n);
	else
		snprintf(buf, len, "%.1f %s", n, units[u]);
	return buf;
}

int cli_progress_wanted(const struct cli_ctx *ctx, size_t total)
{
	return !ctx->quiet && total >= CLI_PROGRESS_MIN && ctx->err != NULL &&
	       isatty(fileno(ctx->err));
}

void cli_progress(struct cli_ctx *ctx, const char *label, size_t done, size_t total)
{
	char a[32], b[32];
	int pct;

	if (!cli_progress_wanted(ctx, total))
		return;
	pct = total ? (int)((double)done * 100.0 / (double)total) : 100;
	/* \r and erase-to-end redraw the same line; the final call ends it. */
	fprintf(ctx->err, "\r%s %3d%%  %s / %s\033[K", label, pct, cli_fmt_bytes((double)done, a, sizeof a),
		cli_fmt_bytes((double)total, b, sizeof b));
	if (done >= total)
		fputc('\n', ctx->err);
	fflush(ctx->err);
}

int cli_reply_parse(struct cli_ctx *ctx, const char *host, const char *body, struct agd_json **doc)
{
	size_t off = 0;
	int rc;

	*doc = NULL;
	rc = agd_json_parse(body, strlen(body), doc, &off);
	if (rc != 0) {
		cli_errorf(ctx, "%s sent a malformed reply (%s at byte %zu)", host,
			   agd_json_strerror(rc), off);
		return CLI_EXIT_FAIL;
	}
	return CLI_EXIT_OK;
}

const char *cli_cell(const struct agd_json *doc, const struct agd_json_val *v, const char *key,
		     char *buf, size_t len)
{
	const struct agd_json_val *m = agd_json_get(doc, v, key);

	if (m == NULL) {
		snprintf(buf, len, "-");
		return buf;
	}
	switch (m->type) {
	case AGD_JSON_STR:
		/* Cells are one line: a control character becomes '?'. */
		snprintf(buf, len, "%s", m->str);
		for (char *p = buf; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		break;
	case AGD_JSON_NUM:
		if (m->num == floor(m->num) && fabs(m->num) < 1e15)
			snprintf(buf, len, "%.0f", m->num);
		else
			snprintf(buf, len, "%g", m->num);
		break;
	case AGD_JSON_BOOL:
		snprintf(buf, len, "%s", m->boolean ? "yes" : "no");
		break;
	case AGD_JSON_NULL:
		snprintf(buf, len, "-");
		break;
	default:
		snprintf(buf, len, "%s", m->type == AGD_JSON_ARR ? "[...]" : "{...}");
		break;
	}
	return buf;
}

void cli_json_copy(struct agd_jw *w, const struct agd_json *doc, const struct agd_json_val *v)
{
	const struct agd_json_val *c;

	/* Recursion is bounded by the parser's depth cap (AGD_JSON_DEPTH_MAX). */
	switch (v->type) {
	case AGD_JSON_NULL:
		agd_jw_null(w);
		break;
	case AGD_JSON_BOOL:
		agd_jw_bool(w, v->boolean);
		break;
	case AGD_JSON_NUM:
		if (v->num == floor(v->num) && fabs(v->num) < 9e15)
			agd_jw_int(w, (long long)v->num);
		else
			agd_jw_num(w, v->num);
		break;
	case AGD_JSON_STR:
		agd_jw_strn(w, v->str, v->str_len);
		break;
	case AGD_JSON_ARR:
		agd_jw_arr_begin(w);
		for (c = agd_json_first(doc, v); c != NULL; c = agd_json_next(doc, c))
			cli_json_copy(w, doc, c);
		agd_jw_arr_end(w);
		break;
	case AGD_JSON_OBJ:
		agd_jw_obj_begin(w);
		for (c = agd_json_first(doc, v); c != NULL; c = agd_json_next(doc, c)) {
			/* Keys may hold NULs in principle; write them whole. */
			char *k = strndup(c->key, c->key_len);
			agd_jw_key(w, k ? k : "");
			free(k);
			cli_json_copy(w, doc, c);
		}
		agd_jw_obj_end(w);
		break;
	}
}
