/*
 * cli.h: agentctl's command table and what every command shares.
 *
 * Each cli_<group>.c file defines one table of commands, terminated by an
 * entry with a NULL name, and main.c lists the tables. A command parses its
 * own arguments, does its work through the documented protocols, prints to
 * ctx->out (human text, or one JSON document when ctx->json), writes errors
 * to ctx->err, and returns one of the exit codes below. Commands never exit
 * the process.
 */
#ifndef CLI_H
#define CLI_H

#include <stdio.h>

/* Documented exit codes (agentctl(1), docs/cli.md). */
enum cli_exit {
	CLI_EXIT_OK = 0,          /* done */
	CLI_EXIT_FAIL = 1,        /* the operation failed (details on stderr) */
	CLI_EXIT_USAGE = 2,       /* bad command line */
	CLI_EXIT_UNREACHABLE = 3, /* a host did not answer in time */
	CLI_EXIT_REFUSED = 4,     /* a host answered with an error */
	CLI_EXIT_NOTFOUND = 5,    /* unknown agent, host or file */
	CLI_EXIT_UNTRUSTED = 6,   /* bad signature or untrusted key */
};

struct cli_cluster;

/* Options common to every command, parsed by main.c before the command.
 * The context belongs to main(); commands read it and may load the cluster
 * file into it (cli_ctx_cluster), which main() frees. */
struct cli_ctx {
	const char *host;     /* --host: a name from the cluster file, or an endpoint */
	const char *cluster;  /* --cluster FILE (default $AGENTCTL_CLUSTER) */
	int json;             /* --json: machine-readable output */
	int timeout_ms;       /* --timeout MS per request */
	int quiet;            /* --quiet: no progress display */
	FILE *out;            /* where results go */
	FILE *err;            /* where errors go */
	struct cli_cluster *clu; /* the loaded cluster file, or NULL; owned by main() */
	int emitted;          /* a JSON document went to out (cli_json_emit) */
	char errmsg[512];     /* the last error told (cli_errorf), for --json */
};

/* Tells the user what went wrong: "agentctl: <message>" on ctx->err, and
 * remembers it so that with --json main() can put it on ctx->out as
 * {"error": message, "exit": code} when the command printed nothing there. */
void cli_errorf(struct cli_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints one JSON document (and a newline) to ctx->out; with it a command
 * has answered, and main() adds nothing. */
void cli_json_emit(struct cli_ctx *ctx, const char *json);

struct cli_cmd {
	const char *name;     /* the word after the options */
	int (*run)(struct cli_ctx *ctx, int argc, char **argv); /* argv[0] is the name */
	const char *args;     /* synopsis of its arguments, for usage */
	const char *summary;  /* one line, for usage */
};

/* The command tables, one per cli_<group>.c. */
extern const struct cli_cmd cli_status_cmds[];
extern const struct cli_cmd cli_run_cmds[];
extern const struct cli_cmd cli_ps_cmds[];
extern const struct cli_cmd cli_agent_cmds[];
extern const struct cli_cmd cli_move_cmds[];
extern const struct cli_cmd cli_policy_cmds[];
extern const struct cli_cmd cli_keys_cmds[];

#endif
