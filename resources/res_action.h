/*
 * res_action.h: the mechanics of the four actions, as calls the daemon
 * makes during a migration: bytes in, bytes out, no sockets
 * (docs/resources.md, "Actions" and "Transfer encoding").
 *
 *   MV  source: res_export -> blob; target: res_import(.., RES_ACT_MV, ..)
 *       under the same identifier; when the target has confirmed, source:
 *       res_move_commit, which deletes the content and leaves a forwarding
 *       entry (agents still bound there reach the new home through it).
 *       Until commit the source is unchanged, so an aborted move (target
 *       refused, connection lost) needs nothing undone at the source; the
 *       target undoes an import with res_registry_remove(.., 1).
 *   CP  source: res_export; target: res_import(.., RES_ACT_CP, ..) as a new
 *       local resource with a fresh identifier derived from the original.
 *   RB  target: res_registry_find_kind, bind to what it returns.
 *   GR  nothing moves: the handle keeps (home host, identifier) and its
 *       operations go through a struct res_transport to the home, whose
 *       daemon runs them with res_exec_op (res_op.h).
 *
 * Thread-safety: as the registries involved (one thread at a time each).
 */
#ifndef RES_ACTION_H
#define RES_ACTION_H

#include "res.h"
#include "res_policy.h"
#include "res_registry.h"

#include <stddef.h>
#include <stdint.h>

/*
 * What crosses hosts. The daemon implements `call` over its encrypted peer
 * channel: it sends (resource_id, op, args) to `home_host`, whose daemon
 * answers with the reply of res_exec_op(reg, resource_id, op, args,
 * args_len, RES_EXEC_REMOTE, ...). On success `call` returns 0 and sets
 * *reply (malloc'd; the caller frees it with free()) to those reply bytes,
 * whether they say ok or error. When no reply comes it returns
 * RES_ERR_UNREACHABLE (the home is down or does not answer in time) or
 * RES_ERR_TRANSPORT (anything else), with *reply NULL. It may block the
 * calling agent; it must not call back into the Lua state.
 */
struct res_transport {
	int (*call)(void *ud, const char *home_host, const char *resource_id, const char *op,
		    const void *args, size_t args_len, void **reply, size_t *reply_len);
	void *ud; /* the daemon's context, passed back to call */
};

/* One agent binding as a handle holds it, and as it travels in a
 * persisted state. */
struct res_bind {
	char name[RES_NAME_MAX];  /* the binding's name in the agent manifest */
	uint8_t binding;          /* enum res_binding */
	uint8_t kind;             /* enum res_kind */
	uint8_t attach;           /* enum res_attach of the resource */
	uint8_t action;           /* enum res_action last applied; NONE at start */
	uint8_t bound;            /* 0: bound to nothing (no action applied) */
	char id[RES_ID_MAX];      /* resource identifier at home */
	char home[RES_HOST_MAX];  /* host that holds the resource */
};

/*
 * Resolves a manifest binding at agent start on this host: for by
 * identifier and by value, `ref` is a resource identifier of reg (a
 * forwarding entry resolves to its new home); for by type, `ref` is a kind
 * name and the first local resource of that kind is taken. Fills *out
 * (action NONE, bound 1). Returns 0, RES_ERR_ARG or RES_ERR_NOTFOUND.
 */
int res_bind_resolve(struct res_registry *reg, const char *name, enum res_binding binding,
		     const char *ref, struct res_bind *out);

/*
 * Fills what the source host knows of binding b for res_policy_decide:
 * binding, attachment, size, transfer limit, other binders (the registry's
 * count minus the mover), not_local (b is not on this host, or has moved)
 * and remote_denied. The target's facts (target_lacks_kind: test the kind
 * against res_registry_kinds of the target; target_has_id; target_refuses)
 * and home_down are the daemon's to set afterwards. Returns 0 or an I/O
 * error from measuring the size.
 */
int res_policy_ctx_fill(struct res_registry *src, const struct res_bind *b,
			struct res_policy_ctx *ctx);

/* Exports resource id (content and metadata) into a malloc'd blob (the
 * caller frees *blob with free()). The source is not changed. Returns 0,
 * RES_ERR_NOTFOUND, RES_ERR_MOVED, RES_ERR_DENIED (a fixed resource never
 * leaves), RES_ERR_LIMIT, or an I/O error. */
int res_export(struct res_registry *reg, const char *id, void **blob, size_t *blob_len);

/*
 * Imports a blob from res_export as a local resource of reg, stored under
 * its data directory. how == RES_ACT_MV keeps the identifier (replacing a
 * forwarding entry of that identifier: the resource coming back);
 * how == RES_ACT_CP takes the first free of "<id>.copy", "<id>.copy2", ...
 * "<id>.copy99". The new identifier is copied to id_out. Returns 0,
 * RES_ERR_ARG, RES_ERR_EXISTS, RES_ERR_TRUNCATED, RES_ERR_MALFORMED,
 * RES_ERR_VERSION, RES_ERR_LIMIT or an I/O error; on failure reg is as
 * before.
 */
int res_import(struct res_registry *reg, const void *blob, size_t blob_len, enum res_action how,
	       char id_out[RES_ID_MAX]);

/* After the target imported a MV: deletes the content of `id` at the
 * source and turns its entry into a forward to new_home. Returns 0,
 * RES_ERR_NOTFOUND, RES_ERR_MOVED (already forward) or RES_ERR_ARG. */
int res_move_commit(struct res_registry *reg, const char *id, const char *new_home);

#endif
