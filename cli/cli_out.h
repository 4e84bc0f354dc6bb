/*
 * cli_out.h: how agentctl shows things: sizes and times for people, a
 * progress line for long transfers, and reading reply bodies.
 */
#ifndef CLI_OUT_H
#define CLI_OUT_H

#include "cli.h"

#include "agd_json.h"

#include <stddef.h>

/* Transfers at least this large get a progress display (when stderr is a
 * terminal and --quiet was not given). */
#define CLI_PROGRESS_MIN (4u << 20)

/* "512 B", "12.0 KiB", "3.4 MiB": into buf (at least 16 bytes). */
const char *cli_fmt_bytes(double n, char *buf, size_t len);

/* A progress line on ctx->err, redrawn in place: "label  37%  12.0/32.0 MiB".
 * Does nothing unless ctx wants progress for a transfer of `total` bytes
 * (see cli_progress_wanted). Call with done == total to finish the line. */
void cli_progress(struct cli_ctx *ctx, const char *label, size_t done, size_t total);

/* Whether a transfer of `total` bytes gets a progress display. */
int cli_progress_wanted(const struct cli_ctx *ctx, size_t total);

/* Parses a reply body. Returns 0 and sets *doc, or reports "host sent a
 * malformed reply" through cli_errorf and returns CLI_EXIT_FAIL. */
int cli_reply_parse(struct cli_ctx *ctx, const char *host, const char *body,
		    struct agd_json **doc);

/* Member `key` of object v as text for a table cell: strings as they are,
 * numbers without a fraction when integral, booleans, "-" when missing.
 * Writes into buf and returns it. */
const char *cli_cell(const struct agd_json *doc, const struct agd_json_val *v, const char *key,
		     char *buf, size_t len);

/* Writes value v back out as compact JSON into w (for nesting a daemon's
 * reply into agentctl's own output). */
void cli_json_copy(struct agd_jw *w, const struct agd_json *doc, const struct agd_json_val *v);

/* Hands a finished writer's text to cli_json_emit; reports a failed
 * allocation. Returns an exit code. */
int cli_emit_jw(struct cli_ctx *ctx, struct agd_jw *w);

#endif
