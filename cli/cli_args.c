/*
 * cli_args.c: option parsing for agentctl (see cli_args.h).
 */
#include "cli_args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cli_parse_uint(const char *s, long max, long *out)
{
	char *end = NULL;
	long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

/* If argv[*i] is "--name" or "--name=value" for `name` (or equals alias),
 * returns 1 and sets *inline_val to the text after '=' (or NULL). */
static int matches(const char *arg, const char *name, const char *alias, const char **inline_val)
{
	size_t n = strlen(name);

	*inline_val = NULL;
	if (alias != NULL && strcmp(arg, alias) == 0)
		return 1;
	if (strncmp(arg, name, n) != 0)
		return 0;
	if (arg[n] == '\0')
		return 1;
	if (arg[n] == '=') {
		*inline_val = arg + n + 1;
		return 1;
	}
	return 0;
}

/* The value of an option: inline, or the next word. */
static const char *take_value(struct cli_ctx *ctx, const char *name, const char *inline_val,
			      int argc, char **argv, int *i)
{
	if (inline_val != NULL)
		return inline_val;
	if (*i + 1 >= argc) {
		cli_errorf(ctx, "%s needs a value", name);
		return NULL;
	}
	return argv[++*i];
}

int cli_common_opt(struct cli_ctx *ctx, int argc, char **argv, int *i)
{
	const char *arg = argv[*i], *iv = NULL, *v;
	long ms;

	if (matches(arg, "--host", "-H", &iv)) {
		if ((v = take_value(ctx, "--host", iv, argc, argv, i)) == NULL)
			return -1;
		ctx->host = v;
		return 1;
	}
	if (matches(arg, "--cluster", "-C", &iv)) {
		if ((v = take_value(ctx, "--cluster", iv, argc, argv, i)) == NULL)
			return -1;
		ctx->cluster = v;
		return 1;
	}
	if (matches(arg, "--timeout", NULL, &iv)) {
		if ((v = take_value(ctx, "--timeout", iv, argc, argv, i)) == NULL)
			return -1;
		if (cli_parse_uint(v, 3600L * 1000, &ms) != 0 || ms == 0) {
			cli_errorf(ctx, "--timeout wants milliseconds (1 to 3600000), not '%s'", v);
			return -1;
		}
		ctx->timeout_ms = (int)ms;
		return 1;
	}
	if (strcmp(arg, "--json") == 0 || strcmp(arg, "-j") == 0) {
		ctx->json = 1;
		return 1;
	}
	if (strcmp(arg, "--quiet") == 0 || strcmp(arg, "-q") == 0) {
		ctx->quiet = 1;
		return 1;
	}
	return 0;
}

int cli_parse_global(struct cli_ctx *ctx, int argc, char **argv, int *cmd, int *help)
{
	int i;

	*help = 0;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		int r;

		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			*help = 1;
			continue;
		}
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		r = cli_common_opt(ctx, argc, argv, &i);
		if (r < 0)
			return CLI_EXIT_USAGE;
		if (r == 0) {
			cli_errorf(ctx, "unknown option %s", argv[i]);
			return CLI_EXIT_USAGE;
		}
	}
	*cmd = i;
	return CLI_EXIT_OK;
}

int cli_parse_opts(struct cli_ctx *ctx, int argc, char **argv, const struct cli_opt *opts,
		   char **pos, int maxpos, int *npos)
{
	int only_pos = 0;

	*npos = 0;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *iv = NULL;
		const struct cli_opt *o = NULL;
		int r;

		if (only_pos || arg[0] != '-' || arg[1] == '\0') {
			/* "-" alone is a positional (stdin, by convention). */
			if (*npos >= maxpos) {
				cli_errorf(ctx, "unexpected argument '%s'", arg);
				return CLI_EXIT_USAGE;
			}
			pos[(*npos)++] = argv[i];
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			only_pos = 1;
			continue;
		}
		for (const struct cli_opt *c = opts; c != NULL && c->name != NULL; c++)
			if (matches(arg, c->name, c->alias, &iv)) {
				o = c;
				break;
			}
		if (o == NULL) {
			r = cli_common_opt(ctx, argc, argv, &i);
			if (r < 0)
				return CLI_EXIT_USAGE;
			if (r == 0) {
				cli_errorf(ctx, "unknown option %s", arg);
				return CLI_EXIT_USAGE;
			}
			continue;
		}
		if (o->flag != NULL) {
			if (iv != NULL) {
				cli_errorf(ctx, "%s takes no value", o->name);
				return CLI_EXIT_USAGE;
			}
			*o->flag = 1;
			continue;
		}
		if ((*o->val = take_value(ctx, o->name, iv, argc, argv, &i)) == NULL)
			return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}
