/*
 * res_registry.c: a host's resources, built from config key/value pairs
 * (docs/resources.md, "Config keys").
 *
 * Invariants: identifiers are valid (res_id_valid) and unique; entries keep
 * their config/import order (RB picks the first of a kind, so the order is
 * part of the behaviour); every local entry's file or store existed when it
 * was added. Never: accept a key it does not know.
 */
#include "res_entry.h"
#include "res_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

int res_registry_new(const char *host, const char *data_dir, struct res_registry **out)
{
	struct res_registry *reg;

	*out = NULL;
	if (!res_id_valid(host) || data_dir == NULL || data_dir[0] == '\0')
		return RES_ERR_ARG;
	if (mkdir(data_dir, 0700) != 0 && errno != EEXIST)
		return RES_ERR_IO;
	reg = calloc(1, sizeof *reg);
	if (reg == NULL)
		return RES_ERR_NOMEM;
	reg->dir = strdup(data_dir);
	if (reg->dir == NULL) {
		free(reg);
		return RES_ERR_NOMEM;
	}
	resi_copy(reg->host, sizeof reg->host, host);
	*out = reg;
	return 0;
}

void res_registry_destroy(struct res_registry **regp)
{
	struct res_registry *reg;

	if (regp == NULL || *regp == NULL)
		return;
	reg = *regp;
	for (size_t i = 0; i < reg->n; i++) {
		resi_kv_close(&reg->e[i].db);
		free(reg->e[i].path);
	}
	free(reg->e);
	free(reg->dir);
	free(reg);
	*regp = NULL;
}

const char *res_registry_host(const struct res_registry *reg)
{
	return reg->host;
}

struct resi_entry *resi_find(const struct res_registry *reg, const char *id)
{
	if (id == NULL)
		return NULL;
	for (size_t i = 0; i < reg->n; i++)
		if (strcmp(reg->e[i].id, id) == 0)
			return &reg->e[i];
	return NULL;
}

struct resi_entry *resi_append(struct res_registry *reg, const char *id)
{
	struct resi_entry *e;

	if (reg->n == reg->cap) {
		size_t cap = reg->cap ? reg->cap * 2 : 8;
		struct resi_entry *ne = realloc(reg->e, cap * sizeof *ne);

		if (ne == NULL)
			return NULL;
		reg->e = ne;
		reg->cap = cap;
	}
	e = &reg->e[reg->n++];
	memset(e, 0, sizeof *e);
	resi_copy(e->id, sizeof e->id, id);
	return e;
}

void resi_drop(struct res_registry *reg, struct resi_entry *e, int delete_content)
{
	size_t i = (size_t)(e - reg->e);

	resi_kv_close(&e->db);
	if (delete_content && e->path != NULL) {
		char side[PATH_MAX + 8];

		unlink(e->path);
		/* SQLite's write-ahead log and index live beside the database. */
		if (e->kind == RES_KIND_KV) {
			snprintf(side, sizeof side, "%s-wal", e->path);
			unlink(side);
			snprintf(side, sizeof side, "%s-shm", e->path);
			unlink(side);
		}
	}
	free(e->path);
	memmove(&reg->e[i], &reg->e[i + 1], (reg->n - i - 1) * sizeof *e);
	reg->n--;
}

int res_size_parse(const char *s, uint64_t *out)
{
	uint64_t v = 0, mul = 1;
	size_t i = 0;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return RES_ERR_ARG;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return RES_ERR_ARG;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (s[i] != '\0') {
		switch (s[i]) {
		case 'k': case 'K': mul = 1024u; break;
		case 'm': case 'M': mul = 1024u * 1024u; break;
		case 'g': case 'G': mul = 1024u * 1024u * 1024u; break;
		default: return RES_ERR_ARG;
		}
		if (s[i + 1] != '\0')
			return RES_ERR_ARG;
		if (v > UINT64_MAX / mul)
			return RES_ERR_ARG;
	}
	*out = v * mul;
	return 0;
}

static int parse_bool(const char *s, unsigned *out)
{
	if (strcasecmp(s, "yes") == 0 || strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0)
		*out = 1;
	else if (strcasecmp(s, "no") == 0 || strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0)
		*out = 0;
	else
		return RES_ERR_ARG;
	return 0;
}

/* The config of one resource as parsed, before anything is opened. */
struct spec {
	int have_kind, have_attach;
	enum res_kind kind;
	enum res_attach attach;
	const char *path;
	uint64_t max_size, transfer_limit;
	unsigned remote, copy, create;
	int have_create;
};

static int parse_spec(const char *id, size_t n, const char *const keys[], const char *const vals[],
		      struct spec *sp, struct res_error *err)
{
	memset(sp, 0, sizeof *sp);
	sp->max_size = RES_CONTENT_MAX;
	sp->remote = 1;
	sp->copy = 1;
	for (size_t i = 0; i < n; i++) {
		const char *k = keys[i], *v = vals[i];

		if (k == NULL || v == NULL)
			return resi_fail(err, RES_ERR_ARG, "resource %s: NULL key or value", id);
		if (strcmp(k, "id") == 0) {
			/* Tolerated so that a config parser can pass every pair
			 * of a section; it must agree with the id argument. */
			if (strcmp(v, id) != 0)
				return resi_fail(err, RES_ERR_ARG, "resource %s: id '%s' differs", id, v);
		} else if (strcmp(k, "kind") == 0) {
			if (res_kind_parse(v, &sp->kind) != 0)
				return resi_fail(err, RES_ERR_ARG,
						 "resource %s: kind '%s' (file, kv, printer, sensor)", id, v);
			sp->have_kind = 1;
		} else if (strcmp(k, "attachment") == 0) {
			if (res_attach_parse(v, &sp->attach) != 0)
				return resi_fail(err, RES_ERR_ARG,
						 "resource %s: attachment '%s' (unattached, fastened, fixed)",
						 id, v);
			sp->have_attach = 1;
		} else if (strcmp(k, "path") == 0) {
			if (v[0] == '\0' || strlen(v) >= PATH_MAX - 16)
				return resi_fail(err, RES_ERR_ARG, "resource %s: bad path", id);
			sp->path = v;
		} else if (strcmp(k, "max_size") == 0) {
			if (res_size_parse(v, &sp->max_size) != 0 || sp->max_size > RES_CONTENT_MAX)
				return resi_fail(err, RES_ERR_ARG,
						 "resource %s: max_size '%s' (bytes, k/m/g, at most 64m)", id, v);
		} else if (strcmp(k, "transfer_limit") == 0) {
			if (res_size_parse(v, &sp->transfer_limit) != 0)
				return resi_fail(err, RES_ERR_ARG,
						 "resource %s: transfer_limit '%s' (bytes, k/m/g)", id, v);
		} else if (strcmp(k, "remote") == 0) {
			if (parse_bool(v, &sp->remote) != 0)
				return resi_fail(err, RES_ERR_ARG, "resource %s: remote '%s' (yes, no)", id, v);
		} else if (strcmp(k, "copy") == 0) {
			if (parse_bool(v, &sp->copy) != 0)
				return resi_fail(err, RES_ERR_ARG, "resource %s: copy '%s' (yes, no)", id, v);
		} else if (strcmp(k, "create") == 0) {
			if (parse_bool(v, &sp->create) != 0)
				return resi_fail(err, RES_ERR_ARG, "resource %s: create '%s' (yes, no)", id, v);
			sp->have_create = 1;
		} else {
			return resi_fail(err, RES_ERR_ARG, "resource %s: unknown key '%s'", id, k);
		}
	}
	if (!sp->have_kind)
		return resi_fail(err, RES_ERR_ARG, "resource %s: no kind", id);
	if (sp->path == NULL)
		return resi_fail(err, RES_ERR_ARG, "resource %s: no path", id);
	if (!sp->have_attach)
		sp->attach = sp->kind == RES_KIND_FILE	 ? RES_ATT_UNATTACHED
			     : sp->kind == RES_KIND_KV ? RES_ATT_FASTENED
						       : RES_ATT_FIXED;
	/* A sensor's file is written by the device: creating it would hide a
	 * misconfigured path behind a sensor that reads "". */
	if (!sp->have_create)
		sp->create = sp->kind != RES_KIND_SENSOR;
	return 0;
}

int res_registry_add(struct res_registry *reg, const char *id, size_t n,
		     const char *const keys[], const char *const vals[], struct res_error *err)
{
	struct spec sp;
	struct resi_entry *e;
	sqlite3 *db = NULL;
	char *path = NULL;
	int rc;

	if (reg == NULL || (n > 0 && (keys == NULL || vals == NULL)))
		return resi_fail(err, RES_ERR_ARG, "bad arguments");
	if (!res_id_valid(id))
		return resi_fail(err, RES_ERR_ARG, "resource identifier '%.64s' is not valid "
				 "([A-Za-z0-9._:-], 1 to 63 bytes)", id ? id : "(null)");
	if (resi_find(reg, id) != NULL)
		return resi_fail(err, RES_ERR_EXISTS, "resource %s declared twice", id);
	rc = parse_spec(id, n, keys, vals, &sp, err);
	if (rc != 0)
		return rc;
	if (sp.kind == RES_KIND_KV)
		rc = resi_kv_open(sp.path, (int)sp.create, &db);
	else
		rc = resi_file_create(sp.path, (int)sp.create);
	if (rc != 0)
		return resi_fail(err, rc, "resource %s: cannot open %s: %s", id, sp.path,
				 res_strerror(rc));
	path = strdup(sp.path);
	if (path == NULL || (e = resi_append(reg, id)) == NULL) {
		free(path);
		resi_kv_close(&db);
		return resi_fail(err, RES_ERR_NOMEM, "out of memory");
	}
	e->kind = sp.kind;
	e->attach = sp.attach;
	e->path = path;
	e->max_size = sp.max_size;
	e->transfer_limit = sp.transfer_limit;
	e->remote = sp.remote;
	e->nocopy = !sp.copy;
	e->db = db;
	resi_copy(e->home, sizeof e->home, reg->host);
	return 0;
}

int res_registry_remove(struct res_registry *reg, const char *id, int delete_content)
{
	struct resi_entry *e = resi_find(reg, id);

	if (e == NULL)
		return RES_ERR_NOTFOUND;
	resi_drop(reg, e, delete_content);
	return 0;
}

int resi_entry_size(struct resi_entry *e, uint64_t *out)
{
	*out = 0;
	if (e->forward)
		return 0;
	if (e->kind == RES_KIND_KV)
		return resi_kv_size(e->db, out, NULL);
	return resi_file_size(e->path, out);
}

int res_registry_info(struct res_registry *reg, const char *id, struct res_info *out)
{
	struct resi_entry *e = resi_find(reg, id);
	int rc;

	memset(out, 0, sizeof *out);
	if (e == NULL)
		return RES_ERR_NOTFOUND;
	resi_copy(out->id, sizeof out->id, e->id);
	out->kind = (uint8_t)e->kind;
	out->attach = (uint8_t)e->attach;
	out->remote = e->remote;
	out->copy = !e->nocopy;
	out->forward = e->forward;
	out->imported = e->imported;
	out->binders = e->binders;
	out->max_size = e->max_size;
	out->transfer_limit = e->transfer_limit;
	resi_copy(out->home, sizeof out->home, e->home);
	if (e->path)
		resi_copy(out->path, sizeof out->path, e->path);
	rc = resi_entry_size(e, &out->size);
	return rc;
}

size_t res_registry_count(const struct res_registry *reg)
{
	return reg->n;
}

const char *res_registry_id_at(const struct res_registry *reg, size_t i)
{
	return i < reg->n ? reg->e[i].id : NULL;
}

unsigned res_registry_kinds(const struct res_registry *reg)
{
	unsigned m = 0;

	for (size_t i = 0; i < reg->n; i++)
		if (!reg->e[i].forward)
			m |= 1u << reg->e[i].kind;
	return m;
}

int res_registry_find_kind(const struct res_registry *reg, enum res_kind kind,
			   const char *prefer_id, char id_out[RES_ID_MAX])
{
	const struct resi_entry *e = resi_find(reg, prefer_id);

	if (e == NULL || e->forward || e->kind != kind) {
		e = NULL;
		for (size_t i = 0; i < reg->n && e == NULL; i++)
			if (!reg->e[i].forward && reg->e[i].kind == kind)
				e = &reg->e[i];
	}
	if (e == NULL)
		return RES_ERR_NOTFOUND;
	resi_copy(id_out, RES_ID_MAX, e->id);
	return 0;
}

int res_registry_bind(struct res_registry *reg, const char *id)
{
	struct resi_entry *e = resi_find(reg, id);

	if (e == NULL)
		return RES_ERR_NOTFOUND;
	e->binders++;
	return 0;
}

int res_registry_unbind(struct res_registry *reg, const char *id)
{
	struct resi_entry *e = resi_find(reg, id);

	if (e == NULL)
		return RES_ERR_NOTFOUND;
	if (e->binders == 0)
		return RES_ERR_ARG;
	e->binders--;
	return 0;
}
