/*
 * res_entry.h: the inside of a registry and the local I/O of each kind,
 * shared by the library's files (not part of its interface).
 *
 * Invariants: a forward entry has path == NULL, db == NULL and home set to
 * the new home; a local entry has path set and home equal to the registry's
 * host. db is open only for kv entries, from res_registry_add (or import)
 * until the entry goes.
 */
#ifndef RES_ENTRY_H
#define RES_ENTRY_H

#include "res.h"
#include "res_registry.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

struct resi_entry {
	char id[RES_ID_MAX];      /* identifier, unique in the registry */
	enum res_kind kind;       /* what it is */
	enum res_attach attach;   /* how it is attached */
	char *path;               /* file or database (owned); NULL when forward */
	uint64_t max_size;        /* writes that would exceed it are refused */
	uint64_t transfer_limit;  /* MV/CP limit; 0: none */
	unsigned binders;         /* agents bound, kept by the daemon */
	unsigned remote : 1;      /* GR use from other hosts allowed */
	unsigned nocopy : 1;      /* CP not allowed (config copy=no) */
	unsigned forward : 1;     /* moved away; see home */
	unsigned imported : 1;    /* lives in the data directory */
	char home[RES_HOST_MAX];  /* new home of a forward entry */
	sqlite3 *db;              /* kv only: the open store */
};

struct res_registry {
	char host[RES_HOST_MAX];  /* this host's name */
	char *dir;                /* data directory for imports (owned) */
	struct resi_entry *e;     /* entries, in config/import order (owned) */
	size_t n;                 /* entries in use */
	size_t cap;               /* entries allocated */
};

/* The entry for id, or NULL. */
struct resi_entry *resi_find(const struct res_registry *reg, const char *id);

/* Appends a zeroed entry named id (which must be valid and unused);
 * returns it or NULL when out of memory. The pointer is valid until the
 * next append or removal. */
struct resi_entry *resi_append(struct res_registry *reg, const char *id);

/* Drops entry e (closing its store) and, with delete_content, its file. */
void resi_drop(struct res_registry *reg, struct resi_entry *e, int delete_content);

/* A malloc'd byte buffer handed from kind I/O to its caller, who frees
 * data with free(). */
struct resi_bytes {
	uint8_t *data;
	size_t len;
};

/* Files (and the files behind printers and sensors). */
int resi_file_create(const char *path, int create);
int resi_file_size(const char *path, uint64_t *out);
/* Reads up to n bytes from offset off (n == UINT64_MAX: to the end,
 * capped at RES_CONTENT_MAX). */
int resi_file_read(const char *path, uint64_t off, uint64_t n, struct resi_bytes *out);
/* Replaces the whole content atomically (temporary file and rename). */
int resi_file_replace(const char *path, const void *data, size_t len);
int resi_file_append(const char *path, const void *data, size_t len);

/* Key-value stores. */
int resi_kv_open(const char *path, int create, sqlite3 **out);
void resi_kv_close(sqlite3 **db);
int resi_kv_get(sqlite3 *db, const void *k, size_t klen, struct resi_bytes *out, int *found);
int resi_kv_put(sqlite3 *db, const void *k, size_t klen, const void *v, size_t vlen);
int resi_kv_delete(sqlite3 *db, const void *k, size_t klen, int *found);
int resi_kv_size(sqlite3 *db, uint64_t *out, uint64_t *count);
/* Visits every pair in key order; stops early when fn returns nonzero and
 * returns that value. At most RES_KV_MAX_KEYS pairs: beyond, RES_ERR_LIMIT. */
int resi_kv_each(sqlite3 *db, int (*fn)(void *ud, const void *k, size_t klen, const void *v,
					size_t vlen),
		 void *ud);
/* Runs fn inside one transaction (committed when fn returns 0). */
int resi_kv_txn(sqlite3 *db, int (*fn)(void *ud, sqlite3 *db), void *ud);

/* Size of an entry's content now. */
int resi_entry_size(struct resi_entry *e, uint64_t *out);

#endif
