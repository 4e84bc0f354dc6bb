/*
 * mig_manifest.h: the manifest of a code segment, a small declarative text
 * (docs/segments.md, "Manifest"). It names the agent, its entry, the
 * mobility it supports, its resource bindings, its activation policy, the
 * quotas it asks for and its source files.
 *
 * Invariants:
 * - Reading a manifest never runs agent code: it is parsed by C, line by
 *   line, every length and count capped (MIG_MANIFEST_*_MAX below).
 * - A parsed manifest has one canonical text (mig_manifest_format); a
 *   segment carries its manifest in that form only, so that equal manifests
 *   give equal segment hashes and no two texts stand for one manifest.
 *
 * Thread-safety: pure functions over caller-owned data.
 */
#ifndef MIG_MANIFEST_H
#define MIG_MANIFEST_H

#include "mig_state.h"

#include <stddef.h>
#include <stdint.h>

/* First line of every manifest: format name and version. */
#define MIG_MANIFEST_MAGIC "agentd-manifest 1"

/* The manifest's file name inside a segment directory (agentctl sign DIR). */
#define MIG_MANIFEST_FILE "manifest"

/* Caps. String caps count bytes without the terminating NUL. */
#define MIG_MANIFEST_TEXT_MAX 65536u   /* whole manifest text */
#define MIG_MANIFEST_LINE_MAX 1024u    /* one line */
#define MIG_MANIFEST_NAME_MAX 64u      /* agent name, binding name */
#define MIG_MANIFEST_VERSION_MAX 32u   /* agent version */
#define MIG_MANIFEST_FUNC_MAX 64u      /* entry function */
#define MIG_MANIFEST_FILE_NAME_MAX 128u /* source file name */
#define MIG_MANIFEST_TARGET_MAX 256u   /* binding identifier or kind */
#define MIG_MANIFEST_FILES_MAX 64u     /* source files */
#define MIG_MANIFEST_BINDINGS_MAX 64u  /* resource bindings */
#define MIG_MANIFEST_ACTIONS_MAX 4u    /* actions in a binding's override */

/* Mobility an agent supports (a bit set). */
enum mig_mobility {
	MIG_MOBILITY_WEAK = 1,   /* code and initial data move; restart at the entry */
	MIG_MOBILITY_STRONG = 2, /* code and execution state move; resume */
	MIG_MOBILITY_BOTH = 3,
};

/* What the daemon does with an idle agent. */
enum mig_activation {
	MIG_ACTIVATION_RESIDENT = 1,  /* stays in memory */
	MIG_ACTIVATION_ON_DEMAND = 2, /* passivated to the store when idle */
};

/* How a binding names its resource (the seeds' three kinds). */
enum mig_binding_kind {
	MIG_BIND_IDENTIFIER = 1, /* this very resource: target is its identifier */
	MIG_BIND_VALUE = 2,      /* its content: target is its identifier */
	MIG_BIND_TYPE = 3,       /* any resource of a kind: target is the kind */
};

/* Migration actions a binding may ask for, in order, overriding the host's
 * policy table (docs/resources.md decides the precedence). */
enum mig_action {
	MIG_ACTION_GR = 1, /* global reference */
	MIG_ACTION_MV = 2, /* move */
	MIG_ACTION_CP = 3, /* copy */
	MIG_ACTION_RB = 4, /* re-bind */
};

struct mig_binding {
	char name[MIG_MANIFEST_NAME_MAX + 1];     /* the name the agent uses: agent.resource(name) */
	enum mig_binding_kind kind;               /* by identifier, value or type */
	char target[MIG_MANIFEST_TARGET_MAX + 1]; /* identifier, or kind file|kv|printer|sensor|device */
	uint8_t nactions;                         /* 0: no override */
	uint8_t actions[MIG_MANIFEST_ACTIONS_MAX]; /* enum mig_action, in order, distinct */
};

struct mig_manifest {
	char name[MIG_MANIFEST_NAME_MAX + 1];          /* agent name: [A-Za-z0-9_.-], starts alnum */
	char version[MIG_MANIFEST_VERSION_MAX + 1];    /* printable, no blanks */
	char entry_file[MIG_MANIFEST_FILE_NAME_MAX + 1]; /* one of files[] */
	char entry_func[MIG_MANIFEST_FUNC_MAX + 1];    /* a Lua identifier */
	enum mig_mobility mobility;                    /* what the agent supports */
	enum mig_activation activation;                /* resident or on-demand */
	uint64_t quota_memory;                         /* bytes asked for; 0 = host default */
	uint64_t quota_instructions;                   /* per time slice; 0 = host default */
	uint32_t nbindings;                            /* used entries of bindings[] */
	struct mig_binding bindings[MIG_MANIFEST_BINDINGS_MAX];
	uint32_t nfiles;                               /* used entries of files[] */
	char files[MIG_MANIFEST_FILES_MAX][MIG_MANIFEST_FILE_NAME_MAX + 1]; /* sorted, distinct */
};

/*
 * Parses manifest text into *out (cleared first; the file list comes out
 * sorted). Returns 0, MIG_ERR_MALFORMED (err->msg names the line and the
 * problem), MIG_ERR_LIMIT (a cap exceeded) or MIG_ERR_ARG. err may be NULL.
 */
int mig_manifest_parse(const char *text, size_t len, struct mig_manifest *out,
		       struct mig_error *err);

/*
 * Writes the canonical text of m into buf (at most cap bytes, NUL
 * terminated) and its length, without the NUL, into *len. Returns 0,
 * MIG_ERR_LIMIT when cap is too small, or MIG_ERR_ARG for a manifest that
 * mig_manifest_parse would not produce.
 */
int mig_manifest_format(const struct mig_manifest *m, char *buf, size_t cap, size_t *len);

/* Checks a value against the manifest's rules. Return 1 if valid, else 0. */
int mig_manifest_valid_name(const char *s);      /* agent or binding name */
int mig_manifest_valid_file_name(const char *s); /* source file name */

/* Names for enum values, as written in the manifest ("strong",
 * "on-demand", "by-type", "GR"); "?" for an unknown value. */
const char *mig_mobility_name(enum mig_mobility m);
const char *mig_activation_name(enum mig_activation a);
const char *mig_binding_kind_name(enum mig_binding_kind k);
const char *mig_action_name(enum mig_action a);

#endif
