/*
 * mig_segment.h: code segments, the signed and content-addressed bundles of
 * an agent's manifest and Lua sources (docs/segments.md).
 *
 *   canonical bytes  "AGDSEGC\x01" | u32 manifest length | canonical manifest
 *                    | u32 file count | per file, sorted by name:
 *                      u16 name length | name | u32 text length | text
 *   segment hash     BLAKE2b-256 of the canonical bytes: the segment's
 *                    identity in caches, persisted states, logs and the CLI
 *   signed file      "AGDSEGS\0" | u32 format version (1)
 *                    | u32 canonical length | canonical bytes
 *                    | 8-byte key id | 32-byte Ed25519 public key
 *                    | 64-byte Ed25519 signature of
 *                      ("agentd segment signature v1\0" | segment hash)
 * Integers are big-endian.
 *
 * Invariants:
 * - Nothing here runs agent code; decoding reads through a bounded cursor,
 *   checks magic and version first, caps every length and count, and tells
 *   truncated input (MIG_ERR_TRUNCATED) from malformed (MIG_ERR_MALFORMED).
 * - A decoded segment is well-formed, its manifest canonical, its files
 *   exactly those the manifest lists, its key id that of its public key.
 *   Its signature is NOT checked by decoding: call mig_segment_verify (or the
 *   daemon's trust store) before anything of it runs.
 *
 * Thread-safety: a struct mig_segment is immutable after it is made; many
 * threads may read one at once.
 */
#ifndef MIG_SEGMENT_H
#define MIG_SEGMENT_H

#include "mig_key.h"
#include "mig_manifest.h"
#include "mig_state.h"

#include <stddef.h>
#include <stdint.h>

#define MIG_SEGMENT_VERSION 1           /* signed file format version */
#define MIG_SEGMENT_HASH_LEN 32         /* BLAKE2b-256 */
#define MIG_SEGMENT_HEX_LEN 65          /* 64 lowercase hex digits and a NUL */
#define MIG_SEGMENT_FILE_MAX (4u << 20) /* one source file */
#define MIG_SEGMENT_CANON_MAX (16u << 20) /* canonical bytes */

/* Signed file overhead: magic, version, canonical length, key id, public
 * key and signature. */
#define MIG_SEGMENT_SIGNED_OVERHEAD (8 + 4 + 4 + MIG_KEY_ID_LEN + MIG_KEY_PUBLIC_LEN + MIG_KEY_SIG_LEN)

/* Domain-separation prefix of what the author signs (with its NUL). */
#define MIG_SEGMENT_SIG_DOMAIN "agentd segment signature v1"

struct mig_segment;

/* A source file handed to mig_segment_build: borrowed. */
struct mig_seg_file {
	const char *name; /* as listed in the manifest */
	const char *text; /* Lua source text; not NUL-terminated necessarily */
	size_t len;       /* bytes of text */
};

/*
 * Builds an unsigned segment from manifest text (any valid form; it is
 * re-written canonically) and the source files it lists, in any order.
 * Every listed file must be given once and no other. Returns 0, or
 * MIG_ERR_MALFORMED / MIG_ERR_LIMIT / MIG_ERR_NOMEM / MIG_ERR_ARG with err
 * filled (err may be NULL). The caller owns *out (mig_segment_destroy).
 */
int mig_segment_build(const char *manifest, size_t manifest_len, const struct mig_seg_file *files,
		      size_t nfiles, struct mig_segment **out, struct mig_error *err);

/*
 * Reads DIR/manifest and the source files it lists from DIR, then builds as
 * above. MIG_ERR_IO when a file is missing or unreadable (err->msg names
 * it). The caller owns *out.
 */
int mig_segment_load_dir(const char *dir, struct mig_segment **out, struct mig_error *err);

/*
 * Signs seg with the author's key: writes the signed file bytes into a
 * malloc'd *out (the caller frees it) of *out_len bytes. Returns 0,
 * MIG_ERR_NOMEM or MIG_ERR_ARG. seg is not modified; decode the bytes to get
 * a signed segment object.
 */
int mig_segment_sign(const struct mig_segment *seg, const struct mig_key *author, uint8_t **out,
		     size_t *out_len);

/*
 * Decodes a signed segment file (copied; buf is not kept). Returns 0,
 * MIG_ERR_TRUNCATED, MIG_ERR_MALFORMED, MIG_ERR_VERSION, MIG_ERR_LIMIT or
 * MIG_ERR_NOMEM with err filled (err may be NULL). Does not check the
 * signature. The caller owns *out.
 */
int mig_segment_decode(const void *buf, size_t len, struct mig_segment **out,
		       struct mig_error *err);

/* Reads and decodes a signed segment file: as above, or MIG_ERR_IO. */
int mig_segment_read_file(const char *path, struct mig_segment **out, struct mig_error *err);

/* Checks the signature of a decoded segment against its embedded public key.
 * Returns 0, or MIG_ERR_SIGNATURE (also for an unsigned segment). */
int mig_segment_verify(const struct mig_segment *seg) __attribute__((warn_unused_result));

/* Frees a segment; accepts NULL and sets *segp to NULL. */
void mig_segment_destroy(struct mig_segment **segp);

/* The segment hash (MIG_SEGMENT_HASH_LEN bytes, owned by seg) and its hex. */
const uint8_t *mig_segment_hash(const struct mig_segment *seg);
void mig_segment_hash_hex(const struct mig_segment *seg, char out[MIG_SEGMENT_HEX_LEN]);

/* Hex of any 32-byte hash, and back (exactly 64 hex digits; 0 or -1). */
void mig_hash_hex(const uint8_t hash[MIG_SEGMENT_HASH_LEN], char out[MIG_SEGMENT_HEX_LEN]);
int mig_hash_parse(const char *hex, uint8_t hash[MIG_SEGMENT_HASH_LEN]);

/* The parsed manifest, owned by seg. */
const struct mig_manifest *mig_segment_manifest(const struct mig_segment *seg);

/* The canonical manifest text (not NUL-terminated) and length, owned by seg. */
const char *mig_segment_manifest_text(const struct mig_segment *seg, size_t *len);

/* Canonical bytes, owned by seg. */
const uint8_t *mig_segment_canonical(const struct mig_segment *seg, size_t *len);

/* Source files, sorted by name. For i < mig_segment_nfiles: the name
 * (NUL-terminated), the text (exactly *len bytes, NOT NUL-terminated) and
 * BLAKE2b-256 of the text alone (what mig_source_add computes, so a daemon
 * can register each file as an external source and name it). All owned by
 * seg. Returns 0 or MIG_ERR_ARG for i out of range. */
size_t mig_segment_nfiles(const struct mig_segment *seg);
int mig_segment_file(const struct mig_segment *seg, size_t i, const char **name,
		     const char **text, size_t *len);
void mig_segment_file_hash(const struct mig_segment *seg, size_t i,
			   uint8_t hash[MIG_SEGMENT_HASH_LEN]);

/* Finds a file by name: 0 with text/len set, or MIG_ERR_NOSOURCE. */
int mig_segment_find(const struct mig_segment *seg, const char *name, const char **text,
		     size_t *len);

/* Whether seg came from a signed file (1) or was built unsigned (0). */
int mig_segment_is_signed(const struct mig_segment *seg);

/* For a signed segment: the signed file bytes, the author's public key and
 * the key id, owned by seg; NULL for an unsigned one. */
const uint8_t *mig_segment_signed_bytes(const struct mig_segment *seg, size_t *len);
const uint8_t *mig_segment_signer(const struct mig_segment *seg);
const uint8_t *mig_segment_key_id(const struct mig_segment *seg);

#endif
