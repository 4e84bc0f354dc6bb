/*
 * agd_config.c: the INI-style config file (see agd_config.h, docs/config.md).
 *
 * Known keys are described by one table (section, key, type, field offset),
 * so parsing, checking and printing cannot drift apart. Every line is read
 * from a bounded copy; a line longer than the buffer is an error, not a
 * silent cut.
 */
#include "agd_config.h"

#include "agd_log.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum kind { K_STR, K_UINT, K_U64, K_SIZE, K_SECONDS, K_BOOL, K_ISOLATION, K_ACTIVATION, K_LEVEL,
	    K_DIRECTORY, K_BALANCE, K_DURABILITY };

struct key {
	const char *section; /* the [section] it belongs to */
	const char *name;    /* the key */
	enum kind kind;      /* how its value is read */
	size_t off;          /* where it lives in struct agd_config */
	double max;          /* largest value for numbers (0 = no cap) */
};

#define F(field) offsetof(struct agd_config, field)

static const struct key keys[] = {
	{ "daemon", "host", K_STR, F(host), 0 },
	{ "daemon", "data_dir", K_STR, F(data_dir), 0 },
	{ "daemon", "workers", K_UINT, F(workers), 1024 },
	{ "daemon", "isolation", K_ISOLATION, F(isolation), 0 },
	{ "daemon", "allow_source", K_BOOL, F(allow_source), 0 },
	{ "control", "tcp", K_STR, F(ctl_tcp), 0 },
	{ "control", "ipc", K_STR, F(ctl_ipc), 0 },
	{ "peer", "endpoint", K_STR, F(peer_endpoint), 0 },
	{ "peer", "host_key", K_STR, F(host_key), 0 },
	{ "peer", "trust_store", K_STR, F(trust_store), 0 },
	{ "peer", "trusted_hosts", K_STR, F(trusted_hosts), 0 },
	{ "peer", "directory", K_DIRECTORY, F(directory), 0 },
	{ "peer", "register_interval", K_SECONDS, F(register_interval), 86400.0 },
	{ "peer", "max_peers", K_UINT, F(max_peers), AGD_CONFIG_PEERS_MAX },
	{ "peer", "durability", K_DURABILITY, F(durability), 0 },
	{ "peer", "group_commit", K_BOOL, F(group_commit), 0 },
	{ "agents", "memory_limit", K_SIZE, F(memory_limit), (double)(64ull << 30) },
	{ "agents", "slice_instructions", K_UINT, F(slice_instructions), 100000000 },
	{ "agents", "instruction_limit", K_U64, F(instruction_limit), 1e18 },
	{ "agents", "activation", K_ACTIVATION, F(activation), 0 },
	{ "agents", "passivate_after", K_SECONDS, F(passivate_after), 86400.0 * 365 },
	{ "agents", "checkpoint_interval", K_SECONDS, F(checkpoint_interval), 86400.0 * 365 },
	{ "agents", "mailbox_max", K_UINT, F(mailbox_max), 1e7 },
	{ "agents", "message_max", K_SIZE, F(message_max), (double)(64u << 20) },
	{ "balance", "mode", K_BALANCE, F(balance), 0 },
	{ "balance", "idle_below", K_UINT, F(balance_idle_below), 1e6 },
	{ "balance", "busy_above", K_UINT, F(balance_busy_above), 1e6 },
	{ "balance", "interval", K_SECONDS, F(balance_interval), 86400.0 },
	{ "balance", "max_pulls", K_UINT, F(balance_max_pulls), 64 },
	{ "balance", "agents", K_STR, F(balance_agents), 0 },
	{ "log", "file", K_STR, F(log_file), 0 },
	{ "log", "level", K_LEVEL, F(log_level), 0 },
};

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void agd_config_defaults(struct agd_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->ctl_fd = -1;
	cfg->peer_fd = -1;
	if (gethostname(cfg->host, sizeof cfg->host - 1) != 0 || cfg->host[0] == '\0')
		strcpy(cfg->host, "agentd");
	strcpy(cfg->data_dir, "/var/lib/agentd");
	cfg->workers = 0;
	cfg->isolation = AGD_ISOLATION_DAEMON;
	strcpy(cfg->ctl_tcp, "tcp://127.0.0.1:7400");
	cfg->memory_limit = 16u << 20;
	cfg->slice_instructions = 10000;
	cfg->instruction_limit = 0;
	cfg->activation = AGD_ACTIVATION_RESIDENT;
	cfg->passivate_after = 30;
	cfg->checkpoint_interval = 0;
	cfg->mailbox_max = 1024;
	cfg->message_max = 1u << 20;
	cfg->log_level = AGD_LOG_INFO;
	cfg->register_interval = 5;
	cfg->max_peers = AGD_CONFIG_PEERS_MAX;
	cfg->group_commit = 1;
	cfg->balance = AGD_BALANCE_OFF;
	cfg->balance_idle_below = 1;
	cfg->balance_busy_above = 2;
	cfg->balance_interval = 2;
	cfg->balance_max_pulls = 1;
	strcpy(cfg->policy.name, "policy");
	strcpy(cfg->peers.name, "peers");
}

static void section_free(struct agd_section *s)
{
	free(s->kv);
	s->kv = NULL;
	s->n = 0;
}

void agd_config_free(struct agd_config *cfg)
{
	for (size_t i = 0; i < cfg->nresources; i++)
		section_free(&cfg->resources[i]);
	free(cfg->resources);
	cfg->resources = NULL;
	cfg->nresources = 0;
	section_free(&cfg->policy);
	section_free(&cfg->peers);
}

const char *agd_section_get(const struct agd_section *s, const char *key)
{
	for (size_t i = s->n; i-- > 0;)
		if (strcmp(s->kv[i].key, key) == 0)
			return s->kv[i].value;
	return NULL;
}

static void fail(char *err, size_t err_len, const char *name, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void fail(char *err, size_t err_len, const char *name, unsigned line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL || err_len == 0)
		return;
	n = snprintf(err, err_len, "%s:%u: ", name, line);
	if (n < 0 || (size_t)n >= err_len)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, err_len - (size_t)n, fmt, ap);
	va_end(ap);
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Reads a number with an optional suffix: K/M/G (x1024) for sizes, ms/s/m/h
 * for durations. Returns 0 or -1. */
static int read_number(const char *v, enum kind kind, double *out)
{
	char *end;
	double x, mul = 1;

	errno = 0;
	x = strtod(v, &end);
	if (end == v || errno != 0 || !isfinite(x) || x < 0)
		return -1;
	if (kind == K_SIZE) {
		if (strcmp(end, "K") == 0 || strcmp(end, "KiB") == 0)
			mul = 1024;
		else if (strcmp(end, "M") == 0 || strcmp(end, "MiB") == 0)
			mul = 1024.0 * 1024;
		else if (strcmp(end, "G") == 0 || strcmp(end, "GiB") == 0)
			mul = 1024.0 * 1024 * 1024;
		else if (*end != '\0')
			return -1;
	} else if (kind == K_SECONDS) {
		if (strcmp(end, "ms") == 0)
			mul = 0.001;
		else if (strcmp(end, "s") == 0 || *end == '\0')
			mul = 1;
		else if (strcmp(end, "m") == 0)
			mul = 60;
		else if (strcmp(end, "h") == 0)
			mul = 3600;
		else
			return -1;
	} else if (*end != '\0' || x != floor(x))
		return -1;
	*out = x * mul;
	return 0;
}

static int endpoint_ok(const char *e);

static int set_key(struct agd_config *cfg, const struct key *k, const char *v, char *why,
		   size_t why_len)
{
	char *field = (char *)cfg + k->off;
	double x = 0;

	switch (k->kind) {
	case K_STR:
		if (strlen(v) >= AGD_CONFIG_STR_MAX ||
		    (k->off == F(host) && strlen(v) >= sizeof cfg->host)) {
			snprintf(why, why_len, "value of '%s' is too long", k->name);
			return -1;
		}
		strcpy(field, v);
		return 0;
	case K_BOOL:
		if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0)
			*(int *)field = 1;
		else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "0") == 0)
			*(int *)field = 0;
		else {
			snprintf(why, why_len, "'%s' must be true or false", k->name);
			return -1;
		}
		return 0;
	case K_ISOLATION:
		if (strcmp(v, "in-daemon") == 0)
			*(enum agd_isolation *)field = AGD_ISOLATION_DAEMON;
		else if (strcmp(v, "process") == 0)
			*(enum agd_isolation *)field = AGD_ISOLATION_PROCESS;
		else {
			snprintf(why, why_len, "isolation must be in-daemon or process");
			return -1;
		}
		return 0;
	case K_DURABILITY:
		if (strcmp(v, "power") == 0)
			*(int *)field = 0;
		else if (strcmp(v, "crash") == 0)
			*(int *)field = 1;
		else {
			snprintf(why, why_len, "durability must be power or crash");
			return -1;
		}
		return 0;
	case K_ACTIVATION:
		if (strcmp(v, "resident") == 0)
			*(enum agd_activation *)field = AGD_ACTIVATION_RESIDENT;
		else if (strcmp(v, "on-demand") == 0)
			*(enum agd_activation *)field = AGD_ACTIVATION_ON_DEMAND;
		else {
			snprintf(why, why_len, "activation must be resident or on-demand");
			return -1;
		}
		return 0;
	case K_DIRECTORY: {
		/* HOST, or HOST@ENDPOINT: where to dial the directory without
		 * having heard from it. */
		const char *at = strchr(v, '@');
		size_t hl = at ? (size_t)(at - v) : strlen(v);

		if (hl >= 64 || (at && (!endpoint_ok(at + 1) || hl == 0)) || memchr(v, ' ', hl)) {
			snprintf(why, why_len, "directory must be HOST or HOST@ENDPOINT (tcp:// or ipc://)");
			return -1;
		}
		snprintf(cfg->directory, sizeof cfg->directory, "%.*s", (int)hl, v);
		snprintf(cfg->directory_endpoint, sizeof cfg->directory_endpoint, "%s", at ? at + 1 : "");
		return 0;
	}
	case K_BALANCE:
		if (strcmp(v, "off") == 0)
			*(enum agd_balance_mode *)field = AGD_BALANCE_OFF;
		else if (strcmp(v, "pull") == 0)
			*(enum agd_balance_mode *)field = AGD_BALANCE_PULL;
		else {
			snprintf(why, why_len, "balance mode must be off or pull");
			return -1;
		}
		return 0;
	case K_LEVEL: {
		enum agd_log_level l;

		if (agd_log_level_parse(v, &l) != 0) {
			snprintf(why, why_len, "level must be debug, info, warn or error");
			return -1;
		}
		*(int *)field = (int)l;
		return 0;
	}
	default:
		break;
	}
	if (read_number(v, k->kind, &x) != 0 || (k->max > 0 && x > k->max)) {
		snprintf(why, why_len, "'%s' is not a valid %s%s", v,
			 k->kind == K_SIZE ? "size (bytes, or with K, M, G)"
			 : k->kind == K_SECONDS ? "duration (seconds, or with ms, s, m, h)"
						 : "non-negative integer",
			 k->max > 0 && x > k->max ? " in range" : "");
		return -1;
	}
	switch (k->kind) {
	case K_UINT:
		if (k->off == F(slice_instructions) && x < 1) {
			snprintf(why, why_len, "slice_instructions must be at least 1");
			return -1;
		}
		if (k->off == F(max_peers) && x < 1) {
			snprintf(why, why_len, "max_peers must be at least 1");
			return -1;
		}
		if (k->off == F(workers) || k->off == F(max_peers))
			*(unsigned *)field = (unsigned)x;
		else
			*(uint32_t *)field = (uint32_t)x;
		break;
	case K_U64: *(uint64_t *)field = (uint64_t)x; break;
	case K_SIZE: *(size_t *)field = (size_t)x; break;
	case K_SECONDS:
		if (k->off == F(balance_interval) && x <= 0) {
			snprintf(why, why_len, "interval must be more than 0");
			return -1;
		}
		*(double *)field = x;
		break;
	default: break;
	}
	return 0;
}

/* A peer endpoint as ZeroMQ takes it: tcp:// or ipc://, no blanks, short
 * enough for the store (kv peer.ep.HOST). */
static int endpoint_ok(const char *e)
{
	size_t n = strlen(e);

	return n > 6 && n < 256 && (strncmp(e, "tcp://", 6) == 0 || strncmp(e, "ipc://", 6) == 0) &&
	       strpbrk(e, " \t") == NULL;
}

/* A [peers] line: NAME = ENDPOINT, each host once. */
static int peer_ok(const struct agd_section *s, const char *host, const char *ep, char *why,
		   size_t why_len)
{
	if (strlen(host) >= 64 || strpbrk(host, " \t@") != NULL) {
		snprintf(why, why_len, "bad host name '%s' in [peers]", host);
		return -1;
	}
	if (!endpoint_ok(ep)) {
		snprintf(why, why_len, "peer %s: endpoint must be tcp://... or ipc://...", host);
		return -1;
	}
	if (agd_section_get(s, host) != NULL) {
		snprintf(why, why_len, "peer %s listed twice", host);
		return -1;
	}
	return 0;
}

static int kv_add(struct agd_section *s, const char *key, const char *value)
{
	struct agd_kv *kv;

	if (s->n >= AGD_CONFIG_KEYS_MAX)
		return -1;
	kv = realloc(s->kv, (s->n + 1) * sizeof *kv);
	if (kv == NULL)
		return -1;
	s->kv = kv;
	snprintf(kv[s->n].key, sizeof kv[s->n].key, "%s", key);
	snprintf(kv[s->n].value, sizeof kv[s->n].value, "%s", value);
	s->n++;
	return 0;
}

int agd_config_parse(struct agd_config *cfg, const char *text, size_t len, const char *name,
		     char *err, size_t err_len)
{
	char section[80] = "daemon";
	struct agd_section *free_form = NULL;
	unsigned lineno = 0;
	size_t pos = 0;

	while (pos < len) {
		char line[2048], *s, *eq, *key, *val;
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;

		lineno++;
		if (n >= sizeof line) {
			fail(err, err_len, name, lineno, "line too long");
			return -EINVAL;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos += n + (nl != NULL);
		if (memchr(line, '\0', n) != NULL) {
			fail(err, err_len, name, lineno, "NUL byte in line");
			return -EINVAL;
		}
		s = trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *e = strchr(s, ']');

			if (e == NULL || *trim(e + 1) != '\0') {
				fail(err, err_len, name, lineno, "malformed section header");
				return -EINVAL;
			}
			*e = '\0';
			s = trim(s + 1);
			free_form = NULL;
			if (strncmp(s, "resource", 8) == 0 && (s[8] == ' ' || s[8] == '\t')) {
				char *id = trim(s + 9);
				struct agd_section *r;

				if (*id == '\0' || strlen(id) >= sizeof r->name || strchr(id, ' ')) {
					fail(err, err_len, name, lineno, "bad resource id '%s'", id);
					return -EINVAL;
				}
				for (size_t i = 0; i < cfg->nresources; i++)
					if (strcmp(cfg->resources[i].name, id) == 0) {
						fail(err, err_len, name, lineno,
						     "resource '%s' defined twice", id);
						return -EINVAL;
					}
				if (cfg->nresources >= AGD_CONFIG_SECTIONS_MAX) {
					fail(err, err_len, name, lineno, "too many resources");
					return -EINVAL;
				}
				r = realloc(cfg->resources, (cfg->nresources + 1) * sizeof *r);
				if (r == NULL)
					return -ENOMEM;
				cfg->resources = r;
				r = &cfg->resources[cfg->nresources++];
				memset(r, 0, sizeof *r);
				strcpy(r->name, id);
				free_form = r;
			} else if (strcmp(s, "policy") == 0) {
				free_form = &cfg->policy;
			} else if (strcmp(s, "peers") == 0) {
				free_form = &cfg->peers;
			} else if (strcmp(s, "daemon") && strcmp(s, "control") && strcmp(s, "peer") &&
				   strcmp(s, "agents") && strcmp(s, "balance") && strcmp(s, "log")) {
				fail(err, err_len, name, lineno, "unknown section [%s]", s);
				return -EINVAL;
			}
			snprintf(section, sizeof section, "%s", s);
			continue;
		}
		eq = strchr(s, '=');
		if (eq == NULL) {
			fail(err, err_len, name, lineno, "expected key = value");
			return -EINVAL;
		}
		*eq = '\0';
		key = trim(s);
		val = trim(eq + 1);
		if (*key == '\0') {
			fail(err, err_len, name, lineno, "empty key");
			return -EINVAL;
		}
		n = strlen(val);
		if (n >= 2 && val[0] == '"' && val[n - 1] == '"') {
			val[n - 1] = '\0';
			val++;
		}
		if (free_form != NULL) {
			if (strlen(key) >= sizeof free_form->kv[0].key ||
			    strlen(val) >= AGD_CONFIG_STR_MAX) {
				fail(err, err_len, name, lineno, "key or value too long");
				return -EINVAL;
			}
			if (free_form == &cfg->peers) {
				char why[256];

				if (peer_ok(free_form, key, val, why, sizeof why) != 0) {
					fail(err, err_len, name, lineno, "%s", why);
					return -EINVAL;
				}
			}
			if (kv_add(free_form, key, val) != 0) {
				fail(err, err_len, name, lineno, "too many keys in [%s]", section);
				return -EINVAL;
			}
			continue;
		}
		{
			const struct key *k = NULL;
			char why[256];

			for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
				if (strcmp(keys[i].section, section) == 0 &&
				    strcmp(keys[i].name, key) == 0)
					k = &keys[i];
			if (k == NULL) {
				fail(err, err_len, name, lineno, "unknown key '%s' in [%s]", key,
				     section);
				return -EINVAL;
			}
			if (set_key(cfg, k, val, why, sizeof why) != 0) {
				fail(err, err_len, name, lineno, "%s", why);
				return -EINVAL;
			}
		}
	}
	return 0;
}

int agd_config_load(struct agd_config *cfg, const char *path, char *err, size_t err_len)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t n;
	int rc;

	if (f == NULL) {
		rc = -errno;
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return rc;
	}
	buf = malloc(AGD_CONFIG_FILE_MAX + 1);
	if (buf == NULL) {
		fclose(f);
		return -ENOMEM;
	}
	n = fread(buf, 1, AGD_CONFIG_FILE_MAX + 1, f);
	if (ferror(f)) {
		rc = -EIO;
		snprintf(err, err_len, "%s: read error", path);
	} else if (n > AGD_CONFIG_FILE_MAX) {
		rc = -EFBIG;
		snprintf(err, err_len, "%s: larger than %u bytes", path, AGD_CONFIG_FILE_MAX);
	} else
		rc = agd_config_parse(cfg, buf, n, path, err, err_len);
	free(buf);
	fclose(f);
	return rc;
}

static void derive(char *field, const char *dir, const char *file)
{
	if (field[0] == '\0')
		snprintf(field, AGD_CONFIG_STR_MAX, "%.400s/%s", dir, file);
}

void agd_config_finish(struct agd_config *cfg)
{
	derive(cfg->host_key, cfg->data_dir, "host.key");
	derive(cfg->trust_store, cfg->data_dir, "trust");
	derive(cfg->trusted_hosts, cfg->data_dir, "trusted-hosts");
}

static void print_section(FILE *f, const char *title, const struct agd_section *s)
{
	fprintf(f, "\n[%s]\n", title);
	for (size_t i = 0; i < s->n; i++)
		fprintf(f, "%s = %s\n", s->kv[i].key, s->kv[i].value);
}

void agd_config_print(const struct agd_config *cfg, FILE *f)
{
	const char *cur = "";

	fprintf(f, "# effective agentd configuration\n");
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const struct key *k = &keys[i];
		const char *field = (const char *)cfg + k->off;

		if (strcmp(cur, k->section) != 0) {
			fprintf(f, "%s[%s]\n", i ? "\n" : "", k->section);
			cur = k->section;
		}
		fprintf(f, "%s = ", k->name);
		switch (k->kind) {
		case K_STR: fprintf(f, "%s\n", field); break;
		case K_BOOL: fprintf(f, "%s\n", *(const int *)field ? "true" : "false"); break;
		case K_UINT:
			fprintf(f, "%u\n", k->off == F(workers) || k->off == F(max_peers)
						   ? *(const unsigned *)field
							       : (unsigned)*(const uint32_t *)field);
			break;
		case K_U64: fprintf(f, "%llu\n", (unsigned long long)*(const uint64_t *)field); break;
		case K_SIZE: fprintf(f, "%zu\n", *(const size_t *)field); break;
		case K_SECONDS: fprintf(f, "%g\n", *(const double *)field); break;
		case K_ISOLATION:
			fprintf(f, "%s\n", *(const enum agd_isolation *)field == AGD_ISOLATION_PROCESS
						   ? "process" : "in-daemon");
			break;
		case K_DURABILITY: fprintf(f, "%s\n", *(const int *)field ? "crash" : "power"); break;
		case K_ACTIVATION:
			fprintf(f, "%s\n", *(const enum agd_activation *)field ==
						   AGD_ACTIVATION_ON_DEMAND ? "on-demand" : "resident");
			break;
		case K_LEVEL: fprintf(f, "%s\n", level_names[*(const int *)field & 3]); break;
		case K_DIRECTORY:
			fprintf(f, "%s%s%s\n", cfg->directory, cfg->directory_endpoint[0] ? "@" : "",
				cfg->directory_endpoint);
			break;
		case K_BALANCE:
			fprintf(f, "%s\n", *(const enum agd_balance_mode *)field == AGD_BALANCE_PULL ? "pull"
											  : "off");
			break;
		}
	}
	for (size_t i = 0; i < cfg->nresources; i++) {
		char title[80];

		snprintf(title, sizeof title, "resource %s", cfg->resources[i].name);
		print_section(f, title, &cfg->resources[i]);
	}
	if (cfg->policy.n > 0)
		print_section(f, "policy", &cfg->policy);
	if (cfg->peers.n > 0)
		print_section(f, "peers", &cfg->peers);
}
