/*
 * cli_args.h: command-line parsing shared by main() and every command.
 *
 * Common options (--host, --cluster, --json, --timeout, --quiet) may come
 * before the command or anywhere among its arguments; each command declares
 * its own options in a table. "--name value" and "--name=value" are both
 * accepted; "--" ends the options. Nothing here prints except through
 * cli_errorf, and nothing keeps global state, so the parsers can be tested
 * on their own (tests/cli/test_args.c).
 */
#ifndef CLI_ARGS_H
#define CLI_ARGS_H

#include "cli.h"

/* One option of a command. Exactly one of val and flag is set. */
struct cli_opt {
	const char *name;   /* "--to" (long form, with the dashes) */
	const char *alias;  /* a short form such as "-n", or NULL */
	const char **val;   /* takes a value: where to put it */
	int *flag;          /* takes none: set to 1 when present */
};

/* Applies a common option at argv[*i] to ctx, consuming its value (and
 * advancing *i past it). Returns 1 if it was one, 0 if not, or -1 (with a
 * message) when it needs a value that is missing or wrong. */
int cli_common_opt(struct cli_ctx *ctx, int argc, char **argv, int *i);

/* Parses the common options before the command. Sets *cmd to the index of
 * the command word (argc when there is none). Returns CLI_EXIT_OK or
 * CLI_EXIT_USAGE. --help/-h sets *help. */
int cli_parse_global(struct cli_ctx *ctx, int argc, char **argv, int *cmd, int *help);

/* Parses a command's arguments (argv[0] is the command name): options from
 * opts (terminated by a NULL name) and the common ones; the rest are
 * positional and go to pos[0..*npos), at most maxpos of them. Returns
 * CLI_EXIT_OK or CLI_EXIT_USAGE (with a message). */
int cli_parse_opts(struct cli_ctx *ctx, int argc, char **argv, const struct cli_opt *opts,
		   char **pos, int maxpos, int *npos);

/* Parses a whole non-negative decimal number below `max`; returns 0 or -1. */
int cli_parse_uint(const char *s, long max, long *out);

#endif
