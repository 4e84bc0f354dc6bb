/*
 * res_policy.h: the binding policy table, as pure functions over data.
 *
 * For each (binding, attachment) cell the table holds an ordered list of
 * actions; res_policy_decide walks the effective list for one binding and
 * picks the first action whose trigger does not fire in the situation
 * described by a struct res_policy_ctx. The situation is data the daemon
 * gathers (sizes, other binders, what the target offers, whether the home
 * answers): nothing here does I/O. Table, triggers and precedence:
 * docs/resources.md, sections "Policy table", "Fall-back triggers" and
 * "Overrides and precedence".
 *
 * Precedence (lowest to highest):
 *   1. the default table (the seeds');
 *   2. the agent manifest's list for one binding;
 *   3. the host's override of the cell (the host owns the resource and pays
 *      for what happens to it, so a guest cannot overrule it);
 *   4. the hard rules, which no list can break: a fixed resource never moves
 *      or is copied (only GR, RB), a binding by identifier is only kept by
 *      GR or MV, a binding by value never by RB.
 *
 * Thread-safety: functions read only their arguments; a struct res_policy
 * may be shared by threads once set up.
 */
#ifndef RES_POLICY_H
#define RES_POLICY_H

#include "res.h"

#include <stddef.h>
#include <stdint.h>

/* Longest ordered action list of a cell (each action at most once). */
#define RES_POLICY_MAX_ACTIONS 4

/* An ordered list of distinct actions. n == 0 means "not set". */
struct res_action_list {
	uint8_t n;                                   /* number of actions */
	uint8_t a[RES_POLICY_MAX_ACTIONS];           /* enum res_action, in order */
};

/* Where the list that was used came from. */
enum res_origin {
	RES_ORIGIN_DEFAULT = 0, /* the seeds' table */
	RES_ORIGIN_MANIFEST,    /* the agent's manifest, for this binding */
	RES_ORIGIN_HOST,        /* the host config's override of the cell */
};
const char *res_origin_name(enum res_origin o);

/* A host's table: the default plus the cells its config overrides. */
struct res_policy {
	struct res_action_list host[RES_NBINDINGS][RES_NATTACH]; /* overrides; n == 0: none */
};

/* Initialises p with no overrides (the effective table is the default). */
void res_policy_init(struct res_policy *p);

/* The default (seeds') list of a cell. */
const struct res_action_list *res_policy_default(enum res_binding b, enum res_attach a);

/* Whether the hard rules allow action x for a binding b to a resource with
 * attachment a. */
int res_policy_permitted(enum res_binding b, enum res_attach a, enum res_action x);

/* Parses an ordered action list: names separated by commas and/or spaces,
 * e.g. "GR,MV" or "RB GR CP". Returns 0, or RES_ERR_ARG for an unknown
 * name, a repeated action, an empty list or more than
 * RES_POLICY_MAX_ACTIONS names. */
int res_action_list_parse(const char *s, struct res_action_list *out);

/* Formats a list as "GR,MV" into buf. Returns 0 or RES_ERR_LIMIT. */
int res_action_list_format(const struct res_action_list *l, char *buf, size_t len);

/* Sets the host override of a cell named "binding.attachment" (e.g.
 * "identifier.fastened", "value.unattached") to the list in `actions`.
 * A list containing an action the hard rules forbid for that cell is
 * refused with RES_ERR_DENIED (err says which), so that an operator learns
 * of it when the config is read, not at migration time. err may be NULL. */
int res_policy_set(struct res_policy *p, const char *cell, const char *actions,
		   struct res_error *err);

/* The situation of one binding at migration time. Zero-initialised, it
 * describes the easy case: the resource is local to the source host, small,
 * bound by nobody else, the target has everything and the home answers.
 * Each nonzero field is a fact that fires one trigger. */
struct res_policy_ctx {
	enum res_binding binding;   /* how the agent is bound */
	enum res_attach attach;     /* the resource's attachment */
	uint64_t size;              /* current content size in bytes */
	uint64_t transfer_limit;    /* MV/CP only if size <= this; 0: no limit */
	unsigned other_binders;     /* agents other than the mover bound to it */
	unsigned not_local : 1;     /* the content is not on the source host (the
				       binding is already a GR): MV/CP impossible */
	unsigned target_lacks_kind : 1;  /* the target has no resource of the kind */
	unsigned target_refuses : 1;     /* the target does not take imports (MV/CP) */
	unsigned target_has_id : 1;      /* the identifier is taken on the target */
	unsigned home_down : 1;          /* the home host does not answer */
	unsigned remote_denied : 1;      /* the resource (or home) forbids remote use */
	unsigned copy_denied : 1;        /* the resource may not be duplicated (copy=no) */
};

/* Why an action was passed over. */
enum res_skip {
	RES_SKIP_NONE = 0,      /* not skipped: the chosen action */
	RES_SKIP_FORBIDDEN,     /* the hard rules forbid it for this cell */
	RES_SKIP_DUPLICATE,     /* already tried earlier in the list */
	RES_SKIP_SHARED,        /* MV: other agents still bind the resource */
	RES_SKIP_NOT_LOCAL,     /* MV/CP: the content is not on the source host */
	RES_SKIP_TOO_LARGE,     /* MV/CP: size over the transfer limit */
	RES_SKIP_TARGET_REFUSES,/* MV/CP: the target takes no imports */
	RES_SKIP_ID_TAKEN,      /* MV: the identifier is taken on the target */
	RES_SKIP_NO_KIND,       /* RB: the target has no resource of the kind */
	RES_SKIP_HOME_DOWN,     /* GR: the home host does not answer */
	RES_SKIP_REMOTE_DENIED, /* GR: remote use not allowed */
	RES_SKIP_COPY_DENIED,   /* CP: the resource may not be duplicated */
};
#define RES_NSKIPS 12
/* "ok", "forbidden", "duplicate", "shared", "not-local", "too-large",
 * "target-refuses", "id-taken", "no-kind", "home-down", "remote-denied", "copy-denied". */
const char *res_skip_name(enum res_skip s);

/* One step of a decision. */
struct res_policy_try {
	uint8_t action;  /* enum res_action */
	uint8_t skip;    /* enum res_skip; RES_SKIP_NONE for the chosen one */
};

/* The outcome of res_policy_decide. */
struct res_decision {
	uint8_t action;   /* enum res_action chosen; RES_ACT_NONE when none */
	uint8_t origin;   /* enum res_origin of the list walked */
	uint8_t ntried;   /* entries in tried */
	struct res_policy_try tried[RES_POLICY_MAX_ACTIONS]; /* in order */
};

/*
 * Decides the action for one binding. `host` may be NULL (no overrides);
 * `manifest` may be NULL or empty (the manifest names no list). The list
 * walked is the host override of the cell if set, else the manifest's,
 * else the default. Returns 0 with out->action set, or RES_ERR_NOACTION
 * when every action was skipped (out still says why for each), or
 * RES_ERR_ARG for out-of-range enums. out is always written.
 */
int res_policy_decide(const struct res_policy *host, const struct res_action_list *manifest,
		      const struct res_policy_ctx *ctx, struct res_decision *out);

/* Formats a decision for a log line or agentctl: text
 *   "action=GR origin=default tried=MV:shared,GR:ok"
 * or JSON
 *   {"action":"GR","origin":"default","tried":[{"action":"MV","result":"shared"},...]}
 * Returns 0 or RES_ERR_LIMIT when buf is too small. */
int res_decision_format(const struct res_decision *d, int json, char *buf, size_t len);

/* Renders the effective table of a host (for `agentctl policy`): a text
 * table, or one JSON object {"host":...,"cells":[{"binding":...,
 * "attachment":...,"actions":[...],"origin":"default"|"host"}...]}.
 * `host_name` may be NULL. Returns 0 or RES_ERR_LIMIT; 4096 bytes always
 * suffice. */
int res_policy_render(const struct res_policy *p, const char *host_name, int json, char *buf,
		      size_t len);

#endif
