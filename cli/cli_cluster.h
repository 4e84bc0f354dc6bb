/*
 * cli_cluster.h: the cluster file, agentctl's map from host names to the
 * endpoints of their daemons.
 *
 * Format (docs/cli.md, "Cluster file"): one host a line,
 *
 *     NAME  CONTROL_ENDPOINT  [PEER_ENDPOINT]
 *
 * separated by blanks; '#' starts a comment that runs to the end of the line;
 * blank lines are ignored. NAME is 1 to 63 characters of [A-Za-z0-9._-];
 * endpoints are ZeroMQ endpoints ("tcp://127.0.0.1:7401", "ipc:///run/x").
 * Names are unique. The order of the file is the order of `--all` output.
 *
 * Invariants: a parsed cluster holds only valid, unique names and endpoints
 * that contain "://"; parsing never reads past the given length and refuses
 * files of more than CLI_CLUSTER_MAX_HOSTS hosts or over-long lines.
 */
#ifndef CLI_CLUSTER_H
#define CLI_CLUSTER_H

#include <stddef.h>

#define CLI_CLUSTER_MAX_HOSTS 1024
#define CLI_NAME_MAX 64       /* including the NUL */
#define CLI_ENDPOINT_MAX 256  /* including the NUL */

/* Errors of the cluster parser (negative; 0 is success). */
enum cli_cluster_err {
	CLI_CLUSTER_OK = 0,
	CLI_CLUSTER_ERR_NOMEM = -1,     /* out of memory */
	CLI_CLUSTER_ERR_SYNTAX = -2,    /* a line is not NAME ENDPOINT [PEER] */
	CLI_CLUSTER_ERR_NAME = -3,      /* a name with a forbidden character or length */
	CLI_CLUSTER_ERR_ENDPOINT = -4,  /* an endpoint without "://" or too long */
	CLI_CLUSTER_ERR_DUPLICATE = -5, /* a name given twice */
	CLI_CLUSTER_ERR_LIMIT = -6,     /* too many hosts or a line too long */
	CLI_CLUSTER_ERR_IO = -7,        /* the file cannot be read */
};

struct cli_host {
	char name[CLI_NAME_MAX];         /* as in the file */
	char endpoint[CLI_ENDPOINT_MAX]; /* control endpoint (agentctl talks to it) */
	char peer[CLI_ENDPOINT_MAX];     /* daemon-to-daemon endpoint, "" if not given */
};

struct cli_cluster {
	struct cli_host *hosts; /* n entries, in file order; owned */
	size_t n;
};

/* A static string for a code; never NULL. */
const char *cli_cluster_strerror(int code);

/* Whether s is a valid host name (1..63 characters of [A-Za-z0-9._-]). */
int cli_name_valid(const char *s);

/* Parses `len` bytes of cluster-file text (need not be NUL-terminated).
 * On success sets *out to a new cluster the caller frees with
 * cli_cluster_destroy. On failure *out is NULL and, when line is not NULL,
 * *line is the 1-based number of the offending line (0 if none). */
int cli_cluster_parse(const char *text, size_t len, struct cli_cluster **out, int *line);

/* Reads and parses the file at path (at most 1 MiB). Same contract as
 * cli_cluster_parse; CLI_CLUSTER_ERR_IO when it cannot be read. */
int cli_cluster_load(const char *path, struct cli_cluster **out, int *line);

/* The host called `name`, or NULL. The pointer lives as long as c. */
const struct cli_host *cli_cluster_find(const struct cli_cluster *c, const char *name);

/* Frees a cluster and nulls the caller's pointer; accepts NULL. */
void cli_cluster_destroy(struct cli_cluster **c);

#endif
