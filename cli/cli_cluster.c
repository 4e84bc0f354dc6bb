/*
 * cli_cluster.c: parsing the cluster file (format in cli_cluster.h and
 * docs/cli.md, "Cluster file"). A pure parser over bytes plus one loader;
 * it prints nothing, the commands word the errors.
 */
#include "cli_cluster.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A line longer than this is refused rather than cut: a cut endpoint would
 * silently name another host. */
#define LINE_MAX_LEN 1024
#define FILE_MAX_LEN (1u << 20)

const char *cli_cluster_strerror(int code)
{
	switch (code) {
	case CLI_CLUSTER_OK: return "ok";
	case CLI_CLUSTER_ERR_NOMEM: return "out of memory";
	case CLI_CLUSTER_ERR_SYNTAX: return "expected NAME ENDPOINT [PEER_ENDPOINT]";
	case CLI_CLUSTER_ERR_NAME: return "bad host name (1-63 characters of A-Z a-z 0-9 . _ -)";
	case CLI_CLUSTER_ERR_ENDPOINT: return "bad endpoint (expected transport://address)";
	case CLI_CLUSTER_ERR_DUPLICATE: return "host name given twice";
	case CLI_CLUSTER_ERR_LIMIT: return "too many hosts or a line too long";
	case CLI_CLUSTER_ERR_IO: return "cannot read the cluster file";
	}
	return "unknown error";
}

int cli_name_valid(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
		if (n + 1 >= CLI_NAME_MAX)
			return 0;
	}
	return n > 0;
}

static int endpoint_valid(const char *s)
{
	const char *sep = strstr(s, "://");

	/* A transport before the separator and an address after it. */
	return sep != NULL && sep != s && sep[3] != '\0' && strlen(s) < CLI_ENDPOINT_MAX;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Splits one line (already without its newline and comment) into at most
 * four words; returns the number of words found (4 means "too many"). */
static size_t split(char *line, char *words[4])
{
	size_t n = 0;
	char *p = line;

	while (*p != '\0' && n < 4) {
		while (is_blank(*p))
			p++;
		if (*p == '\0')
			break;
		words[n++] = p;
		while (*p != '\0' && !is_blank(*p))
			p++;
		if (*p != '\0')
			*p++ = '\0';
	}
	return n;
}

static int add_host(struct cli_cluster *c, size_t *cap, char *words[3], size_t nw)
{
	struct cli_host *h;

	if (!cli_name_valid(words[0]))
		return CLI_CLUSTER_ERR_NAME;
	if (!endpoint_valid(words[1]) || (nw == 3 && !endpoint_valid(words[2])))
		return CLI_CLUSTER_ERR_ENDPOINT;
	if (cli_cluster_find(c, words[0]) != NULL)
		return CLI_CLUSTER_ERR_DUPLICATE;
	if (c->n >= CLI_CLUSTER_MAX_HOSTS)
		return CLI_CLUSTER_ERR_LIMIT;
	if (c->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		struct cli_host *nh = realloc(c->hosts, ncap * sizeof *nh);
		if (nh == NULL)
			return CLI_CLUSTER_ERR_NOMEM;
		c->hosts = nh;
		*cap = ncap;
	}
	h = &c->hosts[c->n++];
	memset(h, 0, sizeof *h);
	/* Lengths were checked above, so these copies are whole. */
	snprintf(h->name, sizeof h->name, "%s", words[0]);
	snprintf(h->endpoint, sizeof h->endpoint, "%s", words[1]);
	if (nw == 3)
		snprintf(h->peer, sizeof h->peer, "%s", words[2]);
	return 0;
}

int cli_cluster_parse(const char *text, size_t len, struct cli_cluster **out, int *line)
{
	struct cli_cluster *c = calloc(1, sizeof *c);
	char buf[LINE_MAX_LEN + 1];
	size_t pos = 0, cap = 0;
	int lineno = 0, rc = 0;

	*out = NULL;
	if (line != NULL)
		*line = 0;
	if (c == NULL)
		return CLI_CLUSTER_ERR_NOMEM;
	while (pos < len) {
		size_t start = pos, n;
		char *words[4], *hash;
		size_t nw;

		while (pos < len && text[pos] != '\n')
			pos++;
		n = pos - start;
		pos++; /* past the newline (or past the end: the loop stops) */
		lineno++;
		if (n > LINE_MAX_LEN) {
			rc = CLI_CLUSTER_ERR_LIMIT;
			goto out;
		}
		memcpy(buf, text + start, n);
		buf[n] = '\0';
		/* A NUL inside a line would hide the rest of it: refuse. */
		if (strlen(buf) != n) {
			rc = CLI_CLUSTER_ERR_SYNTAX;
			goto out;
		}
		hash = strchr(buf, '#');
		if (hash != NULL)
			*hash = '\0';
		nw = split(buf, words);
		if (nw == 0)
			continue;
		if (nw < 2 || nw > 3) {
			rc = CLI_CLUSTER_ERR_SYNTAX;
			goto out;
		}
		rc = add_host(c, &cap, words, nw);
		if (rc != 0)
			goto out;
	}
	*out = c;
	c = NULL;
	lineno = 0;
out:
	if (line != NULL)
		*line = rc != 0 ? lineno : 0;
	cli_cluster_destroy(&c);
	return rc;
}

int cli_cluster_load(const char *path, struct cli_cluster **out, int *line)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t n = 0;
	int rc = CLI_CLUSTER_ERR_IO;

	*out = NULL;
	if (line != NULL)
		*line = 0;
	if (f == NULL)
		return CLI_CLUSTER_ERR_IO;
	text = malloc(FILE_MAX_LEN + 1);
	if (text == NULL) {
		rc = CLI_CLUSTER_ERR_NOMEM;
		goto out;
	}
	n = fread(text, 1, FILE_MAX_LEN + 1, f);
	if (ferror(f))
		goto out;
	if (n > FILE_MAX_LEN) {
		rc = CLI_CLUSTER_ERR_LIMIT;
		goto out;
	}
	rc = cli_cluster_parse(text, n, out, line);
out:
	free(text);
	fclose(f);
	return rc;
}

const struct cli_host *cli_cluster_find(const struct cli_cluster *c, const char *name)
{
	if (c == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->hosts[i].name, name) == 0)
			return &c->hosts[i];
	return NULL;
}

void cli_cluster_destroy(struct cli_cluster **c)
{
	if (c == NULL || *c == NULL)
		return;
	free((*c)->hosts);
	free(*c);
	*c = NULL;
}
