/*
 * agd_logring.h: an agent's recent log lines, each with the wall-clock time
 * and the host it was logged on; the ring travels with the agent on every
 * transfer (TRANSFER blob 3, docs/protocol.md "The log part") and is kept
 * in the store beside the agent's row (kv "agent.log.<id>").
 *
 * Memory: nothing until the agent first logs; then one small array of
 * pointers per agent and one allocation per line held (time, host and text
 * together), at most AGD_LOGRING_LINES lines. A resident population of
 * 250,000 quiet agents costs nothing here.
 *
 * The encoded form (the log part) is bounded: at most AGD_LOGRING_LINES
 * lines and AGD_LOGRING_BYTES bytes; when the ring holds more, the oldest
 * lines are left out. Decoding checks magic and version first, reads every
 * field against the end, caps every count and length and refuses NUL bytes
 * in strings: bytes from a peer or a damaged store return an error, never
 * crash.
 *
 * Thread-safety: none; the runtime guards each ring with its lock.
 */
#ifndef AGD_LOGRING_H
#define AGD_LOGRING_H

#include "agd_json.h"

#include <stddef.h>
#include <stdint.h>

#define AGD_LOGRING_LINES 32       /* lines kept per agent (AGD_LOG_LINES) */
#define AGD_LOGRING_TEXT_MAX 400   /* bytes of one line's text (AGD_LOG_TEXT_MAX) */
#define AGD_LOGRING_HOST_MAX 64    /* bytes of a host name */
#define AGD_LOGRING_BYTES 16384    /* largest encoded log part */
#define AGD_LOGRING_VERSION 1      /* of the encoded form */
#define AGD_LOGRING_KEY "agent.log." /* store kv key prefix; the agent id follows */

struct agd_logring;

/* Appends a line (text cut at AGD_LOGRING_TEXT_MAX, and at a NUL byte;
 * host cut at AGD_LOGRING_HOST_MAX), creating the ring on first use and
 * dropping the oldest line when full. 0 or AGD_ERR_NOMEM (the line is
 * lost, the ring unchanged). */
int agd_logring_add(struct agd_logring **rp, int64_t t_ms, const char *host, const char *text,
		    size_t len);

/* Frees the ring and its lines; NULL-safe; sets *rp to NULL. */
void agd_logring_destroy(struct agd_logring **rp);

/* Lines held (0 for NULL). */
unsigned agd_logring_count(const struct agd_logring *r);

/* Counts every line ever added to this ring (0 for NULL): a caller that
 * remembers it knows whether the ring changed since. */
uint32_t agd_logring_seq(const struct agd_logring *r);

/* Encodes the newest lines that fit in AGD_LOGRING_BYTES, oldest first.
 * *out is malloc'd (the caller frees it), or NULL with *len 0 when the
 * ring is empty or NULL. 0 or AGD_ERR_NOMEM. */
int agd_logring_encode(const struct agd_logring *r, uint8_t **out, size_t *len);

/* Decodes a log part into a new ring (*out, the caller's; NULL when the
 * part holds no line). 0, AGD_ERR_TOOBIG (over AGD_LOGRING_BYTES or too
 * many lines), AGD_ERR_ARG (malformed or cut short), AGD_ERR_NOMEM. *out is
 * set only on success. */
int agd_logring_decode(const uint8_t *in, size_t len, struct agd_logring **out);

/* Writes the keys "lines" (the texts, as before) and "entries"
 * ([{"t":ms,"host":..,"text":..}], the same lines) into the object being
 * written, with the last max_lines lines (0: all). */
void agd_logring_json(const struct agd_logring *r, unsigned max_lines, struct agd_jw *w);

/* The store key of agent id's log: AGD_LOGRING_KEY id. */
void agd_logring_key(char *key, size_t len, const char *id);

#endif
