/*
 * agd_store.h: the daemon's durable store, one SQLite file in the data
 * directory (docs/segments.md, "Code cache and store").
 *
 * Tables (schema version AGD_STORE_SCHEMA, kept in PRAGMA user_version):
 *   segments   the code cache: verified signed segments by hash; "has H?"
 *              lets the migration protocol send a segment to a host once
 *   agents     every agent this host holds: segment, status, epoch, home
 *              host, mobility, activation, reason
 *   agent_states  its persisted state, apart (since schema 2) so that a
 *              status change or a peek never reads or rewrites a large blob;
 *              written, read and deleted with the agent's row, atomically
 *   forwards   forwarding pointers left by agents that moved away
 *   resources  the host's resource registry
 *   kv         small host metadata (host id, counters...)
 *
 * Durability: WAL journal, foreign keys on (an agent's segment must be in
 * the cache). A statement outside a transaction, and a transaction begun
 * with durable != 0, commit with synchronous=FULL: when the call returns the
 * data is on disk (use that before acknowledging a transfer). A transaction
 * begun with durable == 0 commits with synchronous=NORMAL: it survives a
 * crash of the process (kill -9) but the last commits may be lost if the
 * machine loses power; meant for bulk passivation.
 *
 * Errors: every function that can fail returns 0 or a negative
 * AGD_STORE_ERR_*; a full disk, an I/O error or a read-only file is an
 * error code, never a crash. agd_store_errmsg gives SQLite's last message.
 *
 * Thread-safety: one handle may be shared by all threads; a recursive mutex
 * inside serialises calls. agd_store_begin takes that mutex and keeps it
 * until agd_store_commit or agd_store_rollback in the same thread, so the
 * transaction's calls are atomic and other threads wait. A list callback
 * runs with the mutex held: it may call the store (same thread) but should
 * be short; rows it changes may or may not show up later in that listing.
 * Several processes may open the same file (SQLite locks it); a busy lock is
 * retried for up to 5 s, then AGD_STORE_ERR_BUSY.
 */
#ifndef AGD_STORE_H
#define AGD_STORE_H

#include "mig_segment.h"

#include <stddef.h>
#include <stdint.h>

/* The store's file name in the data directory. */
#define AGD_STORE_FILE "agentd.db"

/* Schema version this build reads and writes; a store of version 1 or 2 is
 * upgraded in place, in one transaction, when opened. */
#define AGD_STORE_SCHEMA 3

enum agd_store_err {
	AGD_STORE_OK = 0,
	AGD_STORE_ERR_NOMEM = -100,      /* out of memory */
	AGD_STORE_ERR_IO = -101,         /* I/O error, read-only file or directory, cannot open */
	AGD_STORE_ERR_FULL = -102,       /* disk full, or the store's size limit reached */
	AGD_STORE_ERR_CORRUPT = -103,    /* not a store, or damaged */
	AGD_STORE_ERR_VERSION = -104,    /* schema newer than this build */
	AGD_STORE_ERR_BUSY = -105,       /* locked by another process for too long */
	AGD_STORE_ERR_NOTFOUND = -106,   /* no such row */
	AGD_STORE_ERR_CONSTRAINT = -107, /* e.g. an agent whose segment is not stored, or a
					    segment still used by an agent */
	AGD_STORE_ERR_ARG = -108,        /* misuse: bad argument, no transaction open... */
	AGD_STORE_ERR_TOOBIG = -109,     /* a value larger than SQLite takes */
	AGD_STORE_ERR_SQL = -110,        /* any other SQLite failure */
	AGD_STORE_ERR_ABORTED = -111,    /* an earlier error (full disk, I/O) ended the open
					    transaction: nothing of it was kept; roll back */
};

/* A static string for a code; never NULL. */
const char *agd_store_strerror(int code);

/* Caps of text fields, in bytes without the NUL. */
#define AGD_STORE_ID_MAX 127      /* agent and resource ids */
#define AGD_STORE_HOST_MAX 255    /* host names or endpoints */
#define AGD_STORE_STATUS_MAX 31   /* agent status ("running", "passive"...) */
#define AGD_STORE_REASON_MAX 255  /* why the agent has its status */
#define AGD_STORE_KIND_MAX 31     /* resource kind, attachment */
#define AGD_STORE_KEY_MAX 127     /* kv keys */

struct agd_store;

/*
 * An agent's row. For put, every field is read (updated_ms is ignored and
 * set to the current time; state is borrowed). For get, the struct is
 * filled and state is malloc'd (NULL when state_len == 0): release it with
 * agd_store_agent_clear. In a list callback, state is borrowed for the call
 * only (NULL unless asked for).
 */
struct agd_agent_rec {
	char id[AGD_STORE_ID_MAX + 1];         /* agent id, unique on this host */
	uint8_t segment[MIG_SEGMENT_HASH_LEN]; /* its code segment (must be stored) */
	uint8_t *state;                        /* persisted execution state, or NULL */
	size_t state_len;                      /* bytes of state */
	char status[AGD_STORE_STATUS_MAX + 1]; /* life-cycle status, the runtime's words */
	uint64_t epoch;                        /* migration epoch (exactly-once handoff) */
	char home[AGD_STORE_HOST_MAX + 1];     /* home host, which knows where it is */
	int mobility;                          /* enum mig_mobility in use */
	int activation;                        /* enum mig_activation in use */
	int64_t updated_ms;                    /* last put, ms since the epoch (UTC) */
	char reason[AGD_STORE_REASON_MAX + 1]; /* why it has this status; may be "" */
};

/* A resource of this host's registry. meta: as state above. */
struct agd_resource_rec {
	char id[AGD_STORE_ID_MAX + 1];           /* resource identifier */
	char kind[AGD_STORE_KIND_MAX + 1];       /* "file", "kv", "device"... */
	char attachment[AGD_STORE_KIND_MAX + 1]; /* "unattached", "fastened", "fixed" */
	char home[AGD_STORE_HOST_MAX + 1];       /* host where the resource lives */
	uint8_t *meta;                           /* opaque metadata (e.g. JSON), or NULL */
	size_t meta_len;                         /* bytes of meta */
};

/* A cached segment, as listed (no bytes). */
struct agd_segment_info {
	uint8_t hash[MIG_SEGMENT_HASH_LEN]; /* the segment's identity */
	char name[MIG_MANIFEST_NAME_MAX + 1]; /* agent name from its manifest */
	size_t len;                         /* bytes of the signed file */
	int64_t added_ms;                   /* when it entered the cache */
};

/*
 * Opens (creating if needed) the store at `path`, usually
 * <data dir>/AGD_STORE_FILE. Creates the schema in a fresh file; refuses a
 * file of a newer schema (AGD_STORE_ERR_VERSION) or one that is not a store
 * (AGD_STORE_ERR_CORRUPT). The caller owns *out (agd_store_close).
 */
int agd_store_open(const char *path, struct agd_store **out);

/* agd_store_open for this process alone, as the daemon opens its store:
 * the file stays locked while the handle is open, so another process (a
 * second daemon on the same data directory, a tool) gets
 * AGD_STORE_ERR_BUSY after the 5 s busy wait; in exchange a transaction
 * takes no file lock and the WAL index lives in memory, which on a hop's
 * dozen transactions saves a hundred fcntl calls. One such handle per
 * file: the daemon's modules share it (agd_rt_store). */
int agd_store_open_private(const char *path, struct agd_store **out);

/* Closes the store; accepts NULL and sets *stp to NULL. A transaction still
 * open is rolled back. */
void agd_store_close(struct agd_store **stp);

/* SQLite's last error message on this handle (for a log line); valid until
 * the next call from any thread. */
const char *agd_store_errmsg(struct agd_store *st);

/* Caps the file at about max_bytes (0: no cap); writes that would pass it
 * fail with AGD_STORE_ERR_FULL, as on a full disk. */
int agd_store_set_max_size(struct agd_store *st, uint64_t max_bytes);

/* Transactions: see the header comment for durability and locking. Begin
 * within a transaction, or commit/rollback without one, is
 * AGD_STORE_ERR_ARG. After a failed commit the transaction is rolled back. */
int agd_store_begin(struct agd_store *st, int durable);
int agd_store_commit(struct agd_store *st);
int agd_store_rollback(struct agd_store *st);

/*
 * Group commit. Between group_begin and group_end every write, from any
 * thread, goes into one transaction that group_end commits at FULL: a
 * transaction begun meanwhile is a savepoint in it (its commit keeps its
 * writes for the group, its rollback undoes them alone), a statement
 * outside one joins it. So a burst of small transactions costs one commit.
 *
 * The price is the caller's: until group_end returns 0 nothing of the
 * group is durable, though each commit inside said 0. The caller must hold
 * back whatever reports those writes (messages, answers) until then, and
 * if group_end fails (it rolls the whole group back) it cannot tell whose
 * writes were lost: its memory is ahead of its store, and the only safe
 * way on is from the store, as after a crash. Not nested; no group open
 * is 0.
 */
void agd_store_group_begin(struct agd_store *st);
int agd_store_group_end(struct agd_store *st);
/* Ends the group by rolling all of it back. */
void agd_store_group_abort(struct agd_store *st);

/* Transactions committed through this handle so far (tests read it to see
 * a group commit once): begin/commit pairs and groups, once each; a lone
 * statement's own commit is not counted. */
uint64_t agd_store_commits(struct agd_store *st);

/* Code cache. put stores a signed, decoded segment (idempotent: storing a
 * hash twice is 0); the caller has verified it. get returns the signed file
 * bytes in a malloc'd *bytes (the caller frees; decode with
 * mig_segment_decode), or AGD_STORE_ERR_NOTFOUND. has returns 1, 0 or a
 * negative code. delete fails with AGD_STORE_ERR_CONSTRAINT while an agent
 * row uses the segment, AGD_STORE_ERR_NOTFOUND when absent. */
int agd_store_segment_put(struct agd_store *st, const struct mig_segment *seg);
int agd_store_segment_get(struct agd_store *st, const uint8_t hash[MIG_SEGMENT_HASH_LEN],
			  uint8_t **bytes, size_t *len);
int agd_store_segment_has(struct agd_store *st, const uint8_t hash[MIG_SEGMENT_HASH_LEN]);
int agd_store_segment_delete(struct agd_store *st, const uint8_t hash[MIG_SEGMENT_HASH_LEN]);
/* Calls fn for each cached segment, oldest first; a non-zero return from fn
 * stops the listing and is returned. */
int agd_store_segment_list(struct agd_store *st,
			   int (*fn)(const struct agd_segment_info *info, void *ud), void *ud);

/* Agents. put inserts or replaces the row rec->id (AGD_STORE_ERR_CONSTRAINT
 * when rec->segment is not stored); a state equal to the one stored is not
 * written again, and a row's epoch never goes down (put keeps the higher of
 * the stored and the new one): a writer that knew an older epoch (the
 * runtime, after an aborted transfer) cannot bring back one already used.
 * get fills *rec (release with agd_store_agent_clear) or returns
 * AGD_STORE_ERR_NOTFOUND. delete returns AGD_STORE_ERR_NOTFOUND when
 * absent. */
int agd_store_agent_put(struct agd_store *st, const struct agd_agent_rec *rec);
int agd_store_agent_get(struct agd_store *st, const char *id, struct agd_agent_rec *rec);
int agd_store_agent_delete(struct agd_store *st, const char *id);
void agd_store_agent_clear(struct agd_agent_rec *rec);
/* [bal] As get, without the state (rec->state stays NULL, nothing to
 * clear): what location needs; the state is not read at all. */
int agd_store_agent_peek(struct agd_store *st, const char *id, struct agd_agent_rec *rec);
/* Updates status and reason of an existing agent without rewriting its
 * state (AGD_STORE_ERR_NOTFOUND when absent). */
int agd_store_agent_set_status(struct agd_store *st, const char *id, const char *status,
			       const char *reason);
/* set_status, and the row's epoch raised to `epoch` if it is lower. */
int agd_store_agent_mark(struct agd_store *st, const char *id, const char *status,
			 const char *reason, uint64_t epoch);
/* Calls fn for each agent (in id order), or only those whose status is
 * `status` when it is not NULL; with_state != 0 loads each state too. A
 * non-zero return from fn stops the listing and is returned. */
int agd_store_agent_list(struct agd_store *st, const char *status, int with_state,
			 int (*fn)(const struct agd_agent_rec *rec, void *ud), void *ud);
/* Number of agents (with status `status`, or all when NULL) into *count. */
int agd_store_agent_count(struct agd_store *st, const char *status, uint64_t *count);

/* Forwarding pointers: where agent `id` went, at which epoch. put inserts or
 * replaces; get returns AGD_STORE_ERR_NOTFOUND when none (host needs
 * AGD_STORE_HOST_MAX + 1 bytes). */
int agd_store_forward_put(struct agd_store *st, const char *id, const char *host, uint64_t epoch);
int agd_store_forward_get(struct agd_store *st, const char *id, char *host, uint64_t *epoch);
int agd_store_forward_delete(struct agd_store *st, const char *id);

/* Resource registry, as agents above. */
int agd_store_resource_put(struct agd_store *st, const struct agd_resource_rec *rec);
int agd_store_resource_get(struct agd_store *st, const char *id, struct agd_resource_rec *rec);
int agd_store_resource_delete(struct agd_store *st, const char *id);
void agd_store_resource_clear(struct agd_resource_rec *rec);
int agd_store_resource_list(struct agd_store *st,
			    int (*fn)(const struct agd_resource_rec *rec, void *ud), void *ud);

/* Host metadata. get returns a malloc'd copy (the caller frees) or
 * AGD_STORE_ERR_NOTFOUND. Values are bytes; a text value gets no NUL added
 * unless it was stored with one. */
int agd_store_kv_put(struct agd_store *st, const char *key, const void *value, size_t len);
int agd_store_kv_get(struct agd_store *st, const char *key, void **value, size_t *len);
int agd_store_kv_delete(struct agd_store *st, const char *key);
/* [bal] Deletes the keys starting with `prefix` (non-empty) but the `keep`
 * most recently created ones (a key replaced keeps its age); *deleted (may
 * be NULL) says how many went. For records that must stay bounded. */
int agd_store_kv_prune(struct agd_store *st, const char *prefix, uint64_t keep, uint64_t *deleted);

#endif
