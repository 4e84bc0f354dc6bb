/*
 * res_op.h: operations on resources as bytes in, bytes out, so that the
 * same request runs whether the caller is on the resource's home host or
 * forwarded there through a GR (docs/resources.md, "Op encoding").
 *
 * A message (arguments or reply) is:
 *   'R' | version (1) | type ('A' args, 'K' ok reply, 'E' error reply) |
 *   field count (0..RES_OP_MAX_FIELDS) | per field: u32 big-endian length,
 *   then the bytes.
 * Numbers are u64 big-endian fields of 8 bytes. An error reply's fields are
 * code (4 bytes, big-endian two's complement, a res_err), message text,
 * and for RES_ERR_MOVED the new home host. The whole message is at most
 * RES_OP_MAX_BYTES; nothing may follow the last field.
 *
 * Thread-safety: the codec is pure; res_exec_op uses the registry (one
 * thread at a time, see res_registry.h).
 */
#ifndef RES_OP_H
#define RES_OP_H

#include "res.h"
#include "res_registry.h"

#include <stddef.h>
#include <stdint.h>

#define RES_OP_VERSION 1
#define RES_OP_MAX_FIELDS 4
#define RES_OP_HEADER 4
#define RES_OP_MAX_BYTES (RES_CONTENT_MAX + 4096u)
#define RES_OP_NAME_MAX 16     /* op names are shorter than this */
#define RES_OP_MSG_MAX 256     /* error message text cap */

enum res_msg_type {
	RES_MSG_ARGS = 'A',
	RES_MSG_OK = 'K',
	RES_MSG_ERR = 'E',
};

/* A field: bytes borrowed from whoever built or decoded the message. */
struct res_field {
	const void *p;
	size_t len;
};

struct res_msg {
	uint8_t type;                            /* enum res_msg_type */
	uint8_t n;                               /* fields in use */
	struct res_field f[RES_OP_MAX_FIELDS];   /* in order */
};

/* Encoded size of m, or 0 when it would exceed RES_OP_MAX_BYTES or has
 * too many fields. */
size_t res_msg_size(const struct res_msg *m);

/* Writes m into buf[len], which must hold res_msg_size(m) bytes. Returns 0
 * or RES_ERR_LIMIT. */
int res_msg_write(const struct res_msg *m, void *buf, size_t len);

/* Encodes m into a malloc'd buffer (the caller frees *out with free()).
 * Returns 0, RES_ERR_LIMIT or RES_ERR_NOMEM. */
int res_msg_encode(const struct res_msg *m, void **out, size_t *out_len);

/* Decodes buf[len]; out's fields point into buf. Returns 0,
 * RES_ERR_TRUNCATED (buf is a prefix of a valid message),
 * RES_ERR_MALFORMED, RES_ERR_VERSION or RES_ERR_LIMIT. An error reply is
 * checked too: a 4-byte code in range and a message. */
int res_msg_decode(const void *buf, size_t len, struct res_msg *out);

/* The code of a decoded error reply (0 for an ok reply). */
int res_msg_code(const struct res_msg *m);

/* An 8-byte u64 field. */
void res_u64_put(uint8_t out[8], uint64_t v);
int res_u64_get(const struct res_field *f, uint64_t *out);

/* Flags for res_exec_op. */
#define RES_EXEC_REMOTE 1u  /* the caller is on another host (GR): honour remote=no */

/*
 * Runs operation `op` with encoded arguments args[args_len] on resource
 * `id` of reg, and encodes the reply into *reply (malloc'd; the caller
 * frees it with free()), ok or error. Returns the op's own code: 0, or the
 * negative res_err also written into the error reply. If not even an error
 * reply can be made (out of memory), returns RES_ERR_NOMEM with *reply
 * NULL. A forward entry answers RES_ERR_MOVED with the new home.
 * Ops by kind (arguments -> ok reply fields), docs/resources.md:
 *   file:    read [n [off]] -> bytes; write data; append data; size -> u64
 *   kv:      get key -> value | (no field: absent); put key value;
 *            delete key -> u64 (1 if it existed); keys -> list; size -> u64
 *   printer: print text; read [n [off]] -> bytes; size -> u64
 *   sensor:  read -> value text (trailing whitespace dropped)
 */
int res_exec_op(struct res_registry *reg, const char *id, const char *op, const void *args,
		size_t args_len, unsigned flags, void **reply, size_t *reply_len);

/* Encodes an error reply (for a daemon answering for a host it cannot
 * reach, say). `extra` may be NULL. Same ownership as res_msg_encode. */
int res_reply_error(int code, const char *msg, const char *extra, void **out, size_t *out_len);

/* Decodes a keys-list field (u32 count, then u32 length + bytes per key)
 * by calling fn for each key in order. Returns 0, a decode error, or fn's
 * nonzero value. */
int res_keys_each(const struct res_field *f, int (*fn)(void *ud, const void *k, size_t len),
		  void *ud);

#endif
