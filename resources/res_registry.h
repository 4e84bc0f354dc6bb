/*
 * res_registry.h: a host's resources. Built from config entries given as
 * key/value pairs (docs/resources.md, "Config keys"), each resource is a
 * kind with real local I/O: a file, a key-value store (one SQLite database
 * per resource), a printer (an append-only sink file) or a sensor (a value
 * read from a file). Resources that arrive by MV or CP are kept under the
 * registry's data directory. An entry whose resource has moved away stays
 * as a forwarding entry naming the new home (RES_ERR_MOVED, res_op.h).
 *
 * Thread-safety: a registry is not synchronised; the daemon uses it from
 * one thread at a time (its agents' calls and its peers' requests alike).
 */
#ifndef RES_REGISTRY_H
#define RES_REGISTRY_H

#include "res.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

struct res_registry;

/*
 * Creates an empty registry for host `host` (a valid name: res_id_valid),
 * storing imported resources under `data_dir`, which is created (0700) if
 * missing. Returns 0 and *out (the caller owns it: res_registry_destroy),
 * or RES_ERR_ARG / RES_ERR_IO / RES_ERR_NOMEM.
 */
int res_registry_new(const char *host, const char *data_dir, struct res_registry **out);

/* Closes every store and frees the registry; accepts NULL and NULL *reg;
 * sets *reg to NULL. Content on disk is left alone. */
void res_registry_destroy(struct res_registry **reg);

/* The host name the registry was created with (owned by the registry). */
const char *res_registry_host(const struct res_registry *reg);

/*
 * Adds resource `id` from config pairs keys[i] = vals[i], i < n. Keys:
 * kind (required), path (required), attachment, max_size, transfer_limit,
 * remote, copy, create (docs/resources.md). Unknown keys and bad values are
 * refused, so a typo in a config never goes unnoticed. The resource's
 * file or store is opened or created now, so that a bad path fails at
 * startup. Returns 0, or RES_ERR_ARG, RES_ERR_EXISTS, RES_ERR_NOTFOUND
 * (create=no and the file is missing), RES_ERR_IO, RES_ERR_DB,
 * RES_ERR_NOMEM, with err (may be NULL) saying which key.
 */
int res_registry_add(struct res_registry *reg, const char *id, size_t n,
		     const char *const keys[], const char *const vals[], struct res_error *err);

/* Forgets resource `id`. With delete_content, also removes its file or
 * database (used to undo an import). Returns 0 or RES_ERR_NOTFOUND. */
int res_registry_remove(struct res_registry *reg, const char *id, int delete_content);

/* What the registry knows of one resource. */
struct res_info {
	char id[RES_ID_MAX];        /* identifier */
	uint8_t kind;               /* enum res_kind */
	uint8_t attach;             /* enum res_attach */
	uint8_t remote;             /* other hosts may use it through GR */
	uint8_t copy;               /* may be duplicated by CP */
	uint8_t forward;            /* moved away: only `home` is meaningful */
	uint8_t imported;           /* arrived by MV or CP (lives in data_dir) */
	unsigned binders;           /* agents bound here (res_registry_bind) */
	uint64_t size;              /* content bytes now (0 for forward entries) */
	uint64_t max_size;          /* writes beyond this are refused */
	uint64_t transfer_limit;    /* MV/CP allowed up to this size; 0: no limit */
	char home[RES_HOST_MAX];    /* this host, or the new home of a forward entry */
	char path[PATH_MAX];        /* file or database; empty for forward entries */
};

/* Fills *out for `id` (size is measured now). Returns 0, RES_ERR_NOTFOUND,
 * or the I/O error that measuring the size met. */
int res_registry_info(struct res_registry *reg, const char *id, struct res_info *out);

/* Number of entries (forward entries included), and the i-th identifier in
 * config/import order, or NULL past the end (owned by the registry, valid
 * until it changes). */
size_t res_registry_count(const struct res_registry *reg);
const char *res_registry_id_at(const struct res_registry *reg, size_t i);

/* Bit set (1 << kind) of the kinds this host holds locally (forward
 * entries do not count): what a target tells a source for RB decisions. */
unsigned res_registry_kinds(const struct res_registry *reg);

/* The local resource of `kind` to rebind to: `prefer_id` if it is local
 * and of that kind, else the first such in order. Copies its identifier to
 * id_out. Returns 0 or RES_ERR_NOTFOUND. */
int res_registry_find_kind(const struct res_registry *reg, enum res_kind kind,
			   const char *prefer_id, char id_out[RES_ID_MAX]);

/* Counts of agents bound to a resource, kept by the daemon as agents bind
 * and leave; res_policy_ctx.other_binders is the count minus the mover.
 * Return 0 or RES_ERR_NOTFOUND (unbind of an unbound resource: RES_ERR_ARG). */
int res_registry_bind(struct res_registry *reg, const char *id);
int res_registry_unbind(struct res_registry *reg, const char *id);

/* Parses a size with an optional k, m or g suffix (powers of 1024).
 * Returns 0 or RES_ERR_ARG. */
int res_size_parse(const char *s, uint64_t *out);

#endif
