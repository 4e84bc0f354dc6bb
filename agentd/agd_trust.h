/*
 * agd_trust.h: a daemon's trust store, the authors whose code it runs and
 * what each may ask for (docs/segments.md, "Trust store"). Like OpenSSH's
 * authorized_keys: one trusted public key a line, in the public key file's
 * own form, optionally followed by limits:
 *
 *   # comment
 *   agentd-public-key v1 <64 hex> NAME [agents=GLOB[,GLOB...]] [max-memory=BYTES]
 *                                      [max-instructions=N]
 *
 * `cat alice.pub >> trust` trusts alice for everything; appending options
 * narrows it. The same file format serves as a daemon's trusted-hosts list
 * for the CURVE transport (agd_trust_find_curve).
 *
 * Invariants: a store is immutable once loaded; deciding never runs agent
 * code and never allocates.
 *
 * Thread-safety: agd_trust_decide and the finds may run in any number of
 * threads at once on one store. To reload, load a new store and swap
 * pointers under the caller's own lock; destroy the old one when no thread
 * uses it.
 */
#ifndef AGD_TRUST_H
#define AGD_TRUST_H

#include "mig_key.h"
#include "mig_segment.h"

#include <stddef.h>
#include <stdint.h>

/* Error and refusal codes (negative; 0 is success / "trusted"). */
enum agd_trust_err {
	AGD_TRUST_OK = 0,
	AGD_TRUST_ERR_IO = -200,        /* the file could not be read */
	AGD_TRUST_ERR_SYNTAX = -201,    /* a line of the file is malformed */
	AGD_TRUST_ERR_NOMEM = -202,     /* out of memory */
	AGD_TRUST_ERR_LIMIT = -203,     /* more than AGD_TRUST_KEYS_MAX keys, or a line too long */
	AGD_TRUST_ERR_SIGNATURE = -210, /* the segment's signature does not verify */
	AGD_TRUST_ERR_UNKNOWN_KEY = -211, /* signed by a key not in the store */
	AGD_TRUST_ERR_NAME = -212,      /* the key may not sign an agent of this name */
	AGD_TRUST_ERR_QUOTA = -213,     /* the manifest asks more than the key allows */
	AGD_TRUST_ERR_ARG = -214,       /* misuse by the caller */
};

#define AGD_TRUST_KEYS_MAX 4096     /* keys in one store */
#define AGD_TRUST_GLOBS_MAX 16      /* agent-name patterns a key */
#define AGD_TRUST_LINE_MAX 2048     /* one line of the file */
#define AGD_TRUST_WHY_MAX 256       /* a useful size for decide's `why` */

/* A static string for a code; never NULL. */
const char *agd_trust_strerror(int code);

struct agd_trust;

/*
 * Loads a trust store from a file. Returns 0 or AGD_TRUST_ERR_IO /
 * _SYNTAX / _LIMIT / _NOMEM with `why` (may be NULL) naming the file, the
 * line and the problem. The caller owns *out (agd_trust_destroy).
 */
int agd_trust_load(const char *path, struct agd_trust **out, char *why, size_t why_len);

/* The same from text in memory (for tests and config reloads). */
int agd_trust_parse(const char *text, size_t len, struct agd_trust **out, char *why,
		    size_t why_len);

/* Frees a store; accepts NULL and sets *tp to NULL. */
void agd_trust_destroy(struct agd_trust **tp);

/* Number of keys in the store. */
size_t agd_trust_count(const struct agd_trust *t);

/* The i-th key (file order), to load a trusted-hosts list into the ZAP
 * handler: its Ed25519 key, its X25519 form and its name (each may be NULL;
 * name needs MIG_KEY_NAME_MAX + 1 bytes). Returns 0, or AGD_TRUST_ERR_ARG
 * for i out of range or a key with no X25519 form (curve_pk asked). */
int agd_trust_key(const struct agd_trust *t, size_t i, uint8_t pk[MIG_KEY_PUBLIC_LEN],
		  uint8_t curve_pk[MIG_KEY_CURVE_LEN], char *name);

/*
 * Decides whether the daemon may run seg: its signature verifies, its key is
 * in the store, the key may sign an agent of the manifest's name, and the
 * manifest's quotas are within the key's limits (a quota of 0, "host
 * default", is within any limit only when the key has none). Returns 0, or
 * AGD_TRUST_ERR_SIGNATURE / _UNKNOWN_KEY / _NAME / _QUOTA with `why` (may be
 * NULL) saying exactly what failed: meant for the log line and the error
 * sent back to the sender.
 */
int agd_trust_decide(const struct agd_trust *t, const struct mig_segment *seg, char *why,
		     size_t why_len) __attribute__((warn_unused_result));

/* Whether an Ed25519 public key is in the store: 1 or 0; name (may be NULL,
 * else MIG_KEY_NAME_MAX + 1 bytes) gets its name. */
int agd_trust_find(const struct agd_trust *t, const uint8_t pk[MIG_KEY_PUBLIC_LEN], char *name);

/* The same by the X25519 key that CURVE/ZAP presents (the key's Ed25519
 * public key converted with mig_key_curve_public). */
int agd_trust_find_curve(const struct agd_trust *t, const uint8_t curve_pk[MIG_KEY_CURVE_LEN],
			 char *name);

#endif
