/*
 * res.h: what every part of the resources library shares: error codes, the
 * vocabulary of the binding model (bindings, attachments, actions, kinds),
 * their names, and the limits every input is checked against.
 *
 * The model (docs/resources.md): a host declares resources, each with a kind
 * and an attachment to the machine; an agent declares bindings to them, by
 * identifier, by value or by type; when the agent moves, the policy table
 * (res_policy.h) picks an action for each binding, and the action's
 * mechanics (res_action.h) carry it out.
 *
 * Never: print, log, exit, or keep global mutable state.
 * Thread-safety: everything here is pure and reentrant.
 */
#ifndef RES_H
#define RES_H

#include <stddef.h>
#include <stdint.h>

/* Error codes of the resources library (all negative; 0 is success). */
enum res_err {
	RES_OK = 0,
	RES_ERR_NOMEM = -1,       /* out of memory */
	RES_ERR_ARG = -2,         /* misuse by the caller, or a bad config value */
	RES_ERR_NOTFOUND = -3,    /* no resource with that identifier (or key) */
	RES_ERR_EXISTS = -4,      /* the identifier is taken */
	RES_ERR_IO = -5,          /* a file could not be read or written */
	RES_ERR_DB = -6,          /* the key-value store failed (SQLite) */
	RES_ERR_KIND = -7,        /* the operation does not apply to this kind */
	RES_ERR_LIMIT = -8,       /* a size or count limit exceeded */
	RES_ERR_TRUNCATED = -9,   /* encoded bytes end before the format does */
	RES_ERR_MALFORMED = -10,  /* encoded bytes break the format */
	RES_ERR_VERSION = -11,    /* another encoding version */
	RES_ERR_UNREACHABLE = -12,/* the resource's home host does not answer */
	RES_ERR_DENIED = -13,     /* not allowed (remote access off, fixed resource...) */
	RES_ERR_MOVED = -14,      /* the resource lives elsewhere now (see res_op.h) */
	RES_ERR_NOACTION = -15,   /* the policy found no applicable action */
	RES_ERR_UNBOUND = -16,    /* the handle is bound to nothing */
	RES_ERR_TRANSPORT = -17,  /* the transport failed otherwise */
};
#define RES_ERR_MIN (-17)

/* A static string for a code; never NULL. */
const char *res_strerror(int code);
/* A short stable name for a code ("notfound", "unreachable"...), for the
 * third result of a failed Lua call and for log fields; never NULL. */
const char *res_errname(int code);

/* Details of a failure: the code and a human message. */
struct res_error {
	int code;
	char msg[192];
};

/* How an agent is bound to a resource. */
enum res_binding {
	RES_BIND_ID = 0,   /* by identifier: this very resource */
	RES_BIND_VALUE,    /* by value: its content at the time of the move */
	RES_BIND_TYPE,     /* by type: any resource of this kind */
};
#define RES_NBINDINGS 3

/* How a resource is attached to its host. */
enum res_attach {
	RES_ATT_UNATTACHED = 0, /* data that moves freely */
	RES_ATT_FASTENED,       /* can move or be copied, at a cost */
	RES_ATT_FIXED,          /* bound to this machine (a device) */
};
#define RES_NATTACH 3

/* What happens to a binding when its agent moves. RES_ACT_NONE (0) means
 * "no action": the list terminator, and the decision when none applies. */
enum res_action {
	RES_ACT_NONE = 0,
	RES_ACT_GR,  /* global reference: operations go back to the home host */
	RES_ACT_MV,  /* move: the content goes with the agent */
	RES_ACT_CP,  /* copy: a copy is made on the target */
	RES_ACT_RB,  /* rebind: to the target's own resource of the kind */
};
#define RES_NACTIONS 5

/* Resource kinds. printer and sensor are the device kinds. */
enum res_kind {
	RES_KIND_FILE = 0, /* bytes in a file */
	RES_KIND_KV,       /* key-value store, one SQLite file per resource */
	RES_KIND_PRINTER,  /* append-only sink file the device "prints" to */
	RES_KIND_SENSOR,   /* a value read from a file the device keeps current */
};
#define RES_NKINDS 4

/* Limits. Identifiers and host names: 1..RES_ID_MAX-1 bytes of
 * [A-Za-z0-9._:-], so they are safe as file names, log fields and JSON. */
#define RES_ID_MAX 64
#define RES_HOST_MAX 64
#define RES_NAME_MAX 64           /* binding names in manifests */
#define RES_CONTENT_MAX (64u << 20) /* hard cap on any one resource's content */
#define RES_KEY_MAX 1024          /* kv key bytes */
#define RES_KV_MAX_KEYS 100000    /* keys() and export refuse bigger stores */

/* Names: "GR" "MV" "CP" "RB" / "identifier" "value" "type" /
 * "unattached" "fastened" "fixed" / "file" "kv" "printer" "sensor".
 * The _name functions return "?" for out-of-range values; the _parse
 * functions return 0 or RES_ERR_ARG (case-insensitive; "id" is accepted for
 * "identifier", "device" is not a kind: name printer or sensor). */
const char *res_action_name(enum res_action a);
const char *res_binding_name(enum res_binding b);
const char *res_attach_name(enum res_attach a);
const char *res_kind_name(enum res_kind k);
int res_action_parse(const char *s, enum res_action *out);
int res_binding_parse(const char *s, enum res_binding *out);
int res_attach_parse(const char *s, enum res_attach *out);
int res_kind_parse(const char *s, enum res_kind *out);

/* Whether s is a valid identifier or host name (see the limits above). */
int res_id_valid(const char *s);

#endif
