/*
 * agd_hosts.c: the host registry kept by the directory daemon, and every
 * member's view of it (see agd_hosts.h; docs/protocol.md, "Host
 * registry").
 *
 * One array serves both roles: on the directory it is the registry (filled
 * by REGISTER), on a member the last HOST_LIST received. A member never
 * learns an endpoint for a host whose key differs from its own
 * trusted-hosts list, and never lists a host it does not trust.
 */
#include "agd_hosts.h"

#include "agd_err.h"
#include "agd_log.h"
#include "agd_loop.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	char name[AGD_WIRE_NAME_MAX + 1];
	char endpoint[AGD_HOSTS_EP_MAX + 1];
	char key[AGD_HOSTS_KEY_HEX + 1];     /* "" when the directory does not know it */
	uint64_t seen;                       /* ms (our clock): last registration */
};

struct agd_hosts {
	const struct agd_config *cfg;
	struct agd_hosts_ops ops;
	void *ud;
	char endpoint[AGD_HOSTS_EP_MAX + 1]; /* ours, as announced */
	int is_dir;                          /* this host is the directory */
	int have_view;                       /* a registry or a HOST_LIST is there */
	uint64_t next_register;              /* ms */
	uint64_t interval_ms;
	pthread_mutex_t mu;                  /* guards ents, n, have_view */
	struct entry ents[AGD_HOSTS_MAX];
	size_t n;
};

int agd_hosts_new(const struct agd_config *cfg, const char *endpoint, const struct agd_hosts_ops *ops,
		  void *ud, struct agd_hosts **out)
{
	struct agd_hosts *h;

	*out = NULL;
	if (cfg == NULL || ops == NULL || ops->send == NULL || ops->learn == NULL || ops->key == NULL)
		return AGD_ERR_ARG;
	h = calloc(1, sizeof *h);
	if (h == NULL)
		return AGD_ERR_NOMEM;
	h->cfg = cfg;
	h->ops = *ops;
	h->ud = ud;
	snprintf(h->endpoint, sizeof h->endpoint, "%s", endpoint ? endpoint : "");
	h->is_dir = cfg->directory[0] != '\0' && strcmp(cfg->directory, cfg->host) == 0;
	h->have_view = h->is_dir;
	h->interval_ms = cfg->register_interval > 0 ? (uint64_t)(cfg->register_interval * 1000.0) : 5000;
	pthread_mutex_init(&h->mu, NULL);
	*out = h;
	return 0;
}

void agd_hosts_destroy(struct agd_hosts **hp)
{
	if (hp == NULL || *hp == NULL)
		return;
	pthread_mutex_destroy(&(*hp)->mu);
	free(*hp);
	*hp = NULL;
}

int agd_hosts_is_directory(const struct agd_hosts *h)
{
	return h != NULL && h->is_dir;
}

/* mu held. */
static struct entry *find(struct agd_hosts *h, const char *name, int create)
{
	for (size_t i = 0; i < h->n; i++)
		if (strcmp(h->ents[i].name, name) == 0)
			return &h->ents[i];
	if (!create || h->n >= AGD_HOSTS_MAX)
		return NULL;
	memset(&h->ents[h->n], 0, sizeof h->ents[h->n]);
	snprintf(h->ents[h->n].name, sizeof h->ents[h->n].name, "%s", name);
	return &h->ents[h->n++];
}

static int endpoint_ok(const char *e)
{
	size_t n = strlen(e);

	return n > 6 && n <= AGD_HOSTS_EP_MAX && (strncmp(e, "tcp://", 6) == 0 || strncmp(e, "ipc://", 6) == 0) &&
	       strpbrk(e, " \t\n") == NULL;
}

static int alive(const struct agd_hosts *h, const struct entry *e, uint64_t now)
{
	return strcmp(e->name, h->cfg->host) == 0 || e->seen + 3 * h->interval_ms > now;
}

/* ---- directory side ---- */

static void send_list(struct agd_hosts *h, const char *to, uint64_t corr, uint64_t now)
{
	struct agd_wire_msg r;
	char *buf;
	size_t len = 0, cap = AGD_HOSTS_MAX * (AGD_WIRE_NAME_MAX + AGD_HOSTS_EP_MAX + AGD_HOSTS_KEY_HEX + 32);

	buf = malloc(cap);
	if (buf == NULL)
		return; /* the member registers again */
	pthread_mutex_lock(&h->mu);
	for (size_t i = 0; i < h->n; i++) {
		const struct entry *e = &h->ents[i];
		int k = snprintf(buf + len, cap - len, "%s %s %s %llu\n", e->name, e->endpoint,
				 e->key[0] ? e->key : "-", (unsigned long long)(now > e->seen ? now - e->seen : 0));

		if (k < 0 || (size_t)k >= cap - len)
			break;
		len += (size_t)k;
	}
	pthread_mutex_unlock(&h->mu);
	memset(&r, 0, sizeof r);
	r.type = AGD_MSG_HOST_LIST;
	r.corr = corr;
	r.blob[0].data = len ? (const uint8_t *)buf : NULL;
	r.blob[0].len = len;
	h->ops.send(h->ud, to, &r);
	free(buf);
}

/* `from` is who authentication says sent it; the message's own host field
 * must agree. */
static void on_register(struct agd_hosts *h, const char *from, const struct agd_wire_msg *m, uint64_t now)
{
	struct entry *e;
	char key[AGD_HOSTS_KEY_HEX + 1] = "";
	int fresh;

	if (!h->is_dir)
		return; /* not the directory: nothing to keep */
	if (strcmp(from, m->host) != 0 || !endpoint_ok(m->text)) {
		agd_log(AGD_LOG_WARN, "hosts.register_refused", "from=%s claims=%s", from, m->host);
		return;
	}
	if (h->ops.key(h->ud, from, key) != 0)
		key[0] = '\0';
	pthread_mutex_lock(&h->mu);
	fresh = find(h, from, 0) == NULL;
	e = find(h, from, 1);
	if (e != NULL) {
		snprintf(e->endpoint, sizeof e->endpoint, "%.*s", AGD_HOSTS_EP_MAX, m->text);
		snprintf(e->key, sizeof e->key, "%s", key);
		e->seen = now;
	}
	pthread_mutex_unlock(&h->mu);
	if (e == NULL) {
		agd_log(AGD_LOG_WARN, "hosts.registry_full", "from=%s max=%d", from, AGD_HOSTS_MAX);
		return;
	}
	if (fresh)
		agd_log(AGD_LOG_INFO, "hosts.registered", "host=%s endpoint=%.128s", from, m->text);
	/* The directory can dial it back, too. */
	h->ops.learn(h->ud, from, m->text);
	send_list(h, from, m->corr, now);
}

/* ---- member side ---- */

/* One line of HOST_LIST: "NAME ENDPOINT KEY AGE_MS". Returns 0 or -1. */
static int parse_line(char *line, struct entry *e, uint64_t *age)
{
	char *f[4], *p = line, *end, *name, *ep, *key, *a;

	/* Exactly four non-empty fields, one space apart. */
	for (int i = 0; i < 4; i++) {
		char *sp = strchr(p, ' ');

		if ((sp == NULL) != (i == 3) || (sp != NULL && sp == p) || *p == '\0')
			return -1;
		f[i] = p;
		if (sp != NULL) {
			*sp = '\0';
			p = sp + 1;
		}
	}
	name = f[0];
	ep = f[1];
	key = f[2];
	a = f[3];
	if (a[0] < '0' || a[0] > '9')
		return -1;
	if (strlen(name) > AGD_WIRE_NAME_MAX || !endpoint_ok(ep) ||
	    (strcmp(key, "-") != 0 && strlen(key) != AGD_HOSTS_KEY_HEX))
		return -1;
	*age = strtoull(a, &end, 10);
	if (*end != '\0')
		return -1;
	memset(e, 0, sizeof *e);
	snprintf(e->name, sizeof e->name, "%s", name);
	snprintf(e->endpoint, sizeof e->endpoint, "%s", ep);
	snprintf(e->key, sizeof e->key, "%s", strcmp(key, "-") == 0 ? "" : key);
	return 0;
}

static void on_list(struct agd_hosts *h, const char *from, const struct agd_wire_msg *m, uint64_t now)
{
	const char *p = (const char *)m->blob[0].data, *end = p + m->blob[0].len;
	struct entry *list;
	size_t n = 0;

	if (h->is_dir || strcmp(from, h->cfg->directory) != 0)
		return; /* only the directory speaks for the registry */
	list = calloc(AGD_HOSTS_MAX, sizeof *list);
	if (list == NULL)
		return;
	while (p < end && n < AGD_HOSTS_MAX) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		char line[AGD_WIRE_NAME_MAX + AGD_HOSTS_EP_MAX + AGD_HOSTS_KEY_HEX + 32];
		char mine[AGD_HOSTS_KEY_HEX + 1];
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
		uint64_t age = 0;
		struct entry e;

		if (l >= sizeof line || memchr(p, '\0', l) != NULL) {
			agd_log(AGD_LOG_WARN, "hosts.bad_list", "from=%s", from);
			break;
		}
		memcpy(line, p, l);
		line[l] = '\0';
		p += l + 1;
		if (parse_line(line, &e, &age) != 0) {
			agd_log(AGD_LOG_WARN, "hosts.bad_list", "from=%s", from);
			break;
		}
		/* Trust is this host's own list: a host it does not trust,
		 * or whose key differs, is neither listed nor dialled. */
		if (strcmp(e.name, h->cfg->host) != 0) {
			if (h->ops.key(h->ud, e.name, mine) != 0 ||
			    (e.key[0] && sodium_memcmp(mine, e.key, AGD_HOSTS_KEY_HEX) != 0)) {
				agd_log(AGD_LOG_DEBUG, "hosts.untrusted", "host=%s via=%s", e.name, from);
				continue;
			}
			h->ops.learn(h->ud, e.name, e.endpoint);
		}
		e.seen = now > age ? now - age : 0;
		list[n++] = e;
	}
	pthread_mutex_lock(&h->mu);
	memcpy(h->ents, list, n * sizeof *list);
	h->n = n;
	h->have_view = 1;
	pthread_mutex_unlock(&h->mu);
	free(list);
}

void agd_hosts_tick(struct agd_hosts *h, uint64_t now_ms)
{
	struct agd_wire_msg m;

	if (h == NULL || now_ms < h->next_register)
		return;
	h->next_register = now_ms + h->interval_ms;
	if (h->is_dir) {
		/* The directory lists itself, always alive. */
		struct entry *e;
		char key[AGD_HOSTS_KEY_HEX + 1];

		if (h->ops.key(h->ud, h->cfg->host, key) != 0)
			key[0] = '\0';
		pthread_mutex_lock(&h->mu);
		e = find(h, h->cfg->host, 1);
		if (e != NULL) {
			snprintf(e->endpoint, sizeof e->endpoint, "%s", h->endpoint);
			snprintf(e->key, sizeof e->key, "%s", key);
			e->seen = now_ms;
		}
		pthread_mutex_unlock(&h->mu);
		return;
	}
	if (h->cfg->directory[0] == '\0' || !endpoint_ok(h->endpoint))
		return;
	memset(&m, 0, sizeof m);
	m.type = AGD_MSG_REGISTER;
	randombytes_buf(&m.corr, sizeof m.corr);
	snprintf(m.host, sizeof m.host, "%s", h->cfg->host);
	snprintf(m.text, sizeof m.text, "%s", h->endpoint);
	if (h->ops.send(h->ud, h->cfg->directory, &m) != 0)
		agd_log(AGD_LOG_DEBUG, "hosts.register_unsent", "directory=%s", h->cfg->directory);
}

int agd_hosts_input(struct agd_hosts *h, const char *from, const struct agd_wire_msg *m, uint64_t now_ms)
{
	if (h == NULL)
		return 0;
	switch (m->type) {
	case AGD_MSG_REGISTER: on_register(h, from, m, now_ms); return 1;
	case AGD_MSG_HOST_LIST: on_list(h, from, m, now_ms); return 1;
	default: return 0;
	}
}

void agd_hosts_json(struct agd_hosts *h, uint64_t now_ms, struct agd_jw *w)
{
	int self_listed = 0;

	agd_jw_key(w, "host");
	agd_jw_str(w, h->cfg->host);
	agd_jw_key(w, "directory");
	agd_jw_str(w, h->cfg->directory[0] ? h->cfg->directory : NULL);
	agd_jw_key(w, "hosts");
	agd_jw_arr_begin(w);
	pthread_mutex_lock(&h->mu);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < h->n; i++) {
			const struct entry *e = &h->ents[i];
			int self = strcmp(e->name, h->cfg->host) == 0;

			/* This host first, then the others in registry order. */
			if ((pass == 0) != self)
				continue;
			self_listed |= self;
			agd_jw_obj_begin(w);
			agd_jw_key(w, "name");
			agd_jw_str(w, e->name);
			agd_jw_key(w, "endpoint");
			agd_jw_str(w, e->endpoint);
			agd_jw_key(w, "key");
			agd_jw_str(w, e->key[0] ? e->key : NULL);
			agd_jw_key(w, "age_ms");
			agd_jw_int(w, self ? 0 : (long long)(now_ms > e->seen ? now_ms - e->seen : 0));
			agd_jw_key(w, "alive");
			agd_jw_bool(w, alive(h, e, now_ms));
			agd_jw_obj_end(w);
		}
	pthread_mutex_unlock(&h->mu);
	if (!self_listed) {
		agd_jw_obj_begin(w);
		agd_jw_key(w, "name");
		agd_jw_str(w, h->cfg->host);
		agd_jw_key(w, "endpoint");
		agd_jw_str(w, h->endpoint);
		agd_jw_key(w, "age_ms");
		agd_jw_int(w, 0);
		agd_jw_key(w, "alive");
		agd_jw_bool(w, 1);
		agd_jw_obj_end(w);
	}
	agd_jw_arr_end(w);
}

size_t agd_hosts_names(struct agd_hosts *h, char (*names)[AGD_WIRE_NAME_MAX + 1], size_t max)
{
	size_t k = 0;
	uint64_t now;

	if (h == NULL || max == 0)
		return 0;
	now = agd_now_ms();
	pthread_mutex_lock(&h->mu);
	if (h->have_view) {
		snprintf(names[k++], AGD_WIRE_NAME_MAX + 1, "%s", h->cfg->host);
		for (size_t i = 0; i < h->n && k < max; i++)
			if (strcmp(h->ents[i].name, h->cfg->host) != 0 && alive(h, &h->ents[i], now))
				snprintf(names[k++], AGD_WIRE_NAME_MAX + 1, "%s", h->ents[i].name);
	}
	pthread_mutex_unlock(&h->mu);
	return k;
}
