/*
 * mig_key.h: Ed25519 key pairs of authors (who sign code segments) and of
 * hosts (whose daemons authenticate each other), and their files
 * (docs/segments.md, "Key files").
 *
 *   PREFIX.key  (0600)  agentd-secret-key v1
 *                       name NAME
 *                       seed <64 hex: the 32-byte Ed25519 seed>
 *                       public <64 hex: the Ed25519 public key>
 *   PREFIX.pub          agentd-public-key v1 <64 hex> NAME
 *
 * A key's id is the first 8 bytes of BLAKE2b-256 of its public key, shown
 * as 16 lowercase hex digits.
 *
 * CURVE (ZeroMQ): a host has one key pair. Its CURVE (X25519) keys are
 * derived from the Ed25519 pair by libsodium's birational map
 * (crypto_sign_ed25519_pk_to_curve25519 / _sk_to_curve25519), so one key
 * file and one public key in a trust list name a host for both signing and
 * transport. mig_key_curve_public converts a peer's Ed25519 public key;
 * mig_key_curve_secret gives the host's own X25519 secret.
 *
 * Invariants: secret key material lives only in sodium_malloc memory and is
 * wiped when freed; secret key files wider than 0600 are refused; no
 * function here prints or logs.
 *
 * Thread-safety: a struct mig_key is immutable after creation; any number of
 * threads may sign with it at once. Call sodium_init() before any function
 * here (mig_key_generate and mig_key_load call it themselves).
 */
#ifndef MIG_KEY_H
#define MIG_KEY_H

#include "mig_state.h"

#include <stddef.h>
#include <stdint.h>

#define MIG_KEY_PUBLIC_LEN 32  /* Ed25519 public key */
#define MIG_KEY_SIG_LEN 64     /* Ed25519 signature */
#define MIG_KEY_ID_LEN 8       /* key id bytes */
#define MIG_KEY_ID_HEX_LEN 17  /* 16 hex digits and a NUL */
#define MIG_KEY_CURVE_LEN 32   /* X25519 public or secret key */
#define MIG_KEY_NAME_MAX 64    /* key name (comment), without NUL */

#define MIG_KEY_SECRET_MAGIC "agentd-secret-key v1"
#define MIG_KEY_PUBLIC_MAGIC "agentd-public-key v1"

/* An Ed25519 key pair, opaque. The secret part is in sodium_malloc memory. */
struct mig_key;

/* Makes a fresh key pair named `name` (MIG_KEY_NAME_MAX printable ASCII
 * characters without blanks; NULL for "key"). Returns 0, MIG_ERR_ARG or
 * MIG_ERR_NOMEM; the caller owns *out (mig_key_destroy). */
int mig_key_generate(const char *name, struct mig_key **out);

/* Frees a key pair after wiping it; accepts NULL and sets *kp to NULL. */
void mig_key_destroy(struct mig_key **kp);

/*
 * Writes PREFIX.key (mode 0600, created exclusively: an existing file is
 * never overwritten) and PREFIX.pub (0644). Returns 0, MIG_ERR_IO (err->msg
 * says which file and why; EEXIST when a file is there already) or
 * MIG_ERR_ARG. On failure no half-written file is left behind.
 */
int mig_key_save(const struct mig_key *k, const char *prefix, struct mig_error *err);

/*
 * Reads a secret key file. Refuses, with MIG_ERR_IO and a message saying so,
 * a file whose permissions grant anything to group or others (chmod 600),
 * or that is not a regular file. MIG_ERR_MALFORMED for a bad format, or when
 * the public line does not match the seed. The caller owns *out.
 */
int mig_key_load(const char *path, struct mig_key **out, struct mig_error *err);

/*
 * Parses one public key line ("agentd-public-key v1 HEX NAME", trailing
 * newline allowed) into pk and name (name may be NULL; else at least
 * MIG_KEY_NAME_MAX + 1 bytes). Returns 0 or MIG_ERR_MALFORMED.
 */
int mig_key_parse_public(const char *line, size_t len, uint8_t pk[MIG_KEY_PUBLIC_LEN],
			 char *name);

/* Reads a public key file (its first line). Returns 0, MIG_ERR_IO or
 * MIG_ERR_MALFORMED. */
int mig_key_load_public(const char *path, uint8_t pk[MIG_KEY_PUBLIC_LEN], char *name,
			struct mig_error *err);

/* The public half, MIG_KEY_PUBLIC_LEN bytes, owned by k. */
const uint8_t *mig_key_public(const struct mig_key *k);

/* The key's name, owned by k. */
const char *mig_key_name(const struct mig_key *k);

/* Detached Ed25519 signature of msg. Returns 0 or MIG_ERR_ARG. */
int mig_key_sign(const struct mig_key *k, const void *msg, size_t len,
		 uint8_t sig[MIG_KEY_SIG_LEN]);

/* Checks a detached signature. Returns 0 or MIG_ERR_SIGNATURE. */
int mig_key_verify(const uint8_t pk[MIG_KEY_PUBLIC_LEN], const void *msg, size_t len,
		   const uint8_t sig[MIG_KEY_SIG_LEN]) __attribute__((warn_unused_result));

/* Key id of a public key, as bytes and as 16 lowercase hex digits. */
void mig_key_id(const uint8_t pk[MIG_KEY_PUBLIC_LEN], uint8_t id[MIG_KEY_ID_LEN]);
void mig_key_id_hex(const uint8_t pk[MIG_KEY_PUBLIC_LEN], char out[MIG_KEY_ID_HEX_LEN]);

/* X25519 public key (for ZMQ_CURVE_SERVERKEY / ZAP checks) from an Ed25519
 * public key. Returns 0, or MIG_ERR_ARG when pk is not a valid point. */
int mig_key_curve_public(const uint8_t pk[MIG_KEY_PUBLIC_LEN], uint8_t curve_pk[MIG_KEY_CURVE_LEN]);

/* The host's own X25519 secret (for ZMQ_CURVE_SECRETKEY) into curve_sk,
 * which the caller should have from sodium_malloc and wipes after use.
 * Returns 0 or MIG_ERR_ARG. */
int mig_key_curve_secret(const struct mig_key *k, uint8_t curve_sk[MIG_KEY_CURVE_LEN]);

#endif
