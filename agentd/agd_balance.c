/*
 * agd_balance.c: receiver-initiated load balancing between daemons (see
 * agd_balance.h; docs/protocol.md, "Load balancing").
 *
 * State: at most one round at a time (its correlation id, deadline and the
 * answers so far) and the pulls asked for recently, which count as load
 * here until their agent shows up in the runtime or AGD_BALANCE_PENDING_MS
 * passed: without them a host would pull again before the first agent
 * landed. Nothing is durable: a restarted daemon starts a fresh round.
 *
 * Never: pull from a peer that is not busier than this host would be after
 * the pull; trust a peer's list beyond its format (an id that is not an
 * agent there is simply refused by that peer's transfer code).
 */
#include "agd_balance.h"

#include "agd_err.h"
#include "agd_json.h"
#include "agd_log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW_MAX_MS 1000 /* longest wait for LOAD_REPLY */

/* One peer's answer in the current round. */
struct answer {
	char host[AGD_WIRE_NAME_MAX + 1];
	uint64_t load;                                  /* its runnable agents */
	size_t nids;                                    /* agents it lets go */
	char ids[AGD_BALANCE_OFFER_MAX][AGD_ID_LEN + 1];
};

/* A pull asked for, not yet landed. */
struct pending {
	char id[AGD_ID_LEN + 1];
	uint64_t until;                                 /* ms: counts as load until then */
};

struct agd_balance {
	const struct agd_config *cfg;
	struct agd_rt *rt;
	struct agd_balance_ops ops;
	void *ud;
	uint64_t next_round;                            /* ms: the next round is due */
	uint64_t corr;                                  /* the open round's LOAD corr, 0: none */
	uint64_t window_end;                            /* ms: decide then at the latest */
	uint64_t my_load;                               /* load when the round started */
	size_t asked;                                   /* peers asked */
	size_t nans;                                    /* answers in */
	struct answer ans[AGD_BALANCE_PEERS_MAX];
	size_t npend;
	struct pending pend[AGD_BALANCE_PEERS_MAX];
	uint64_t rounds, pulls;                         /* counters */
	char names[AGD_BALANCE_PEERS_MAX][AGD_WIRE_NAME_MAX + 1]; /* peers of the round */
};

/* This host's load as the runtime shows it. */
struct local {
	uint64_t runnable;                              /* agents in state running */
	size_t nids;                                    /* of those, the ones that may go */
	char ids[AGD_BALANCE_OFFER_MAX][AGD_ID_LEN + 1];
};

int agd_balance_new(const struct agd_config *cfg, struct agd_rt *rt, const struct agd_balance_ops *ops,
		    void *ud, struct agd_balance **out)
{
	struct agd_balance *b;

	*out = NULL;
	if (cfg == NULL || rt == NULL || ops == NULL || ops->send == NULL || ops->pull == NULL ||
	    ops->peers == NULL)
		return AGD_ERR_ARG;
	b = calloc(1, sizeof *b);
	if (b == NULL)
		return AGD_ERR_NOMEM;
	b->cfg = cfg;
	b->rt = rt;
	b->ops = *ops;
	b->ud = ud;
	*out = b;
	return 0;
}

void agd_balance_destroy(struct agd_balance **bp)
{
	if (bp == NULL || *bp == NULL)
		return;
	free(*bp);
	*bp = NULL;
}

void agd_balance_stats(const struct agd_balance *b, uint64_t *rounds, uint64_t *pulls)
{
	*rounds = b ? b->rounds : 0;
	*pulls = b ? b->pulls : 0;
}

/* Whether `name` is in the space- or comma-separated list (an empty list
 * admits every name). */
static int name_listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	if (list[0] == '\0')
		return 1;
	for (const char *p = list; *p;) {
		size_t k;

		p += strspn(p, ", \t");
		k = strcspn(p, ", \t");
		if (k == n && k > 0 && memcmp(p, name, n) == 0)
			return 1;
		p += k;
	}
	return 0;
}

static int is_id(const char *s, size_t len)
{
	if (len != AGD_ID_LEN)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* Reads the runtime's agent list (the same one `ps` shows): the runnable
 * agents, and which of them may be pulled from here. Pending pulls whose
 * agent is now here are dropped. */
static int scan(struct agd_balance *b, struct local *out)
{
	struct agd_jw w;
	struct agd_json *doc = NULL;
	const struct agd_json_val *list, *a;
	char *text;
	size_t len;
	int rc;

	memset(out, 0, sizeof *out);
	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	agd_rt_ps_json(b->rt, &w, 0);
	agd_jw_obj_end(&w);
	text = agd_jw_take(&w, &len);
	if (text == NULL)
		return AGD_ERR_NOMEM;
	rc = agd_json_parse(text, len, &doc, NULL);
	free(text);
	if (rc != 0)
		return AGD_ERR_NOMEM;
	list = agd_json_get(doc, agd_json_root(doc), "agents");
	for (a = list ? agd_json_first(doc, list) : NULL; a; a = agd_json_next(doc, a)) {
		const char *id = NULL, *state = NULL, *name = NULL, *mob = NULL;

		if (agd_json_get_str(doc, a, "id", &id) != 0 ||
		    agd_json_get_str(doc, a, "state", &state) != 0)
			continue;
		for (size_t i = 0; i < b->npend; i++)
			if (strcmp(b->pend[i].id, id) == 0)
				b->pend[i].until = 0; /* landed: counted below as itself */
		if (strcmp(state, "running") != 0)
			continue;
		out->runnable++;
		/* A weak move would start a busy agent over: only agents that
		 * may move with their execution state are offered. */
		if (agd_json_get_str(doc, a, "mobility", &mob) != 0 ||
		    (strcmp(mob, "strong") != 0 && strcmp(mob, "both") != 0))
			continue;
		if (agd_json_get_str(doc, a, "name", &name) != 0 ||
		    !name_listed(b->cfg->balance_agents, name))
			continue;
		if (out->nids < AGD_BALANCE_OFFER_MAX && is_id(id, strlen(id)))
			snprintf(out->ids[out->nids++], AGD_ID_LEN + 1, "%s", id);
	}
	agd_json_destroy(&doc);
	return 0;
}

/* Pulls still under way, after dropping the landed and the expired. */
static size_t pending_count(struct agd_balance *b, uint64_t now)
{
	size_t k = 0;

	for (size_t i = 0; i < b->npend; i++)
		if (b->pend[i].until > now)
			b->pend[k++] = b->pend[i];
	b->npend = k;
	return k;
}

/* ---- the busy side: answering LOAD ---- */

static void on_load(struct agd_balance *b, const char *from, const struct agd_wire_msg *m)
{
	struct agd_wire_msg r;
	struct local me;
	char ids[AGD_BALANCE_OFFER_MAX * (AGD_ID_LEN + 1)];
	size_t n = 0;

	if (scan(b, &me) != 0)
		return; /* the asker decides without us */
	memset(&r, 0, sizeof r);
	r.type = AGD_MSG_LOAD_REPLY;
	r.corr = m->corr;
	snprintf(r.host, sizeof r.host, "%s", b->cfg->host);
	r.size = me.runnable;
	r.op = b->cfg->workers;
	/* Offer agents only to a host that would still be less loaded with
	 * one more: the asker applies the same rule, this side just keeps a
	 * stale or confused asker from taking what would not help. */
	if (m->size + 1 < me.runnable)
		for (size_t i = 0; i < me.nids; i++) {
			memcpy(ids + n, me.ids[i], AGD_ID_LEN);
			n += AGD_ID_LEN;
			ids[n++] = '\n';
		}
	r.blob[0].data = n ? (const uint8_t *)ids : NULL;
	r.blob[0].len = n;
	b->ops.send(b->ud, from, &r);
}

/* ---- the idle side: rounds ---- */

/* Parses a LOAD_REPLY's list: ids of AGD_ID_LEN hex digits, each followed
 * by '\n'. Returns 0, or -1 when malformed (the answer is then ignored). */
static int parse_ids(const struct agd_wire_bytes *blob, struct answer *a)
{
	const char *p = (const char *)blob->data, *end = p + blob->len;

	a->nids = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (nl == NULL || !is_id(p, (size_t)(nl - p)) || a->nids >= AGD_BALANCE_OFFER_MAX)
			return -1;
		memcpy(a->ids[a->nids], p, AGD_ID_LEN);
		a->ids[a->nids++][AGD_ID_LEN] = '\0';
		p = nl + 1;
	}
	return 0;
}

static void decide(struct agd_balance *b, uint64_t now);

static void on_load_reply(struct agd_balance *b, const char *from, const struct agd_wire_msg *m,
			  uint64_t now)
{
	struct answer *a;

	if (b->corr == 0 || m->corr != b->corr || b->nans >= AGD_BALANCE_PEERS_MAX)
		return; /* late, or for a round that is over */
	for (size_t i = 0; i < b->nans; i++)
		if (strcmp(b->ans[i].host, from) == 0)
			return; /* answered already */
	a = &b->ans[b->nans];
	memset(a, 0, sizeof *a);
	snprintf(a->host, sizeof a->host, "%s", from);
	a->load = m->size;
	if (parse_ids(&m->blob[0], a) != 0) {
		agd_log(AGD_LOG_WARN, "balance.bad_reply", "from=%s", from);
		return;
	}
	b->nans++;
	if (b->nans >= b->asked)
		decide(b, now);
}

/* The round's answers are in (or the window closed): pull from the
 * busiest peer. */
static void decide(struct agd_balance *b, uint64_t now)
{
	const struct answer *best = NULL;
	uint64_t mine = b->my_load, room, take;

	b->corr = 0;
	for (size_t i = 0; i < b->nans; i++)
		if (b->ans[i].load > b->cfg->balance_busy_above && b->ans[i].nids > 0 &&
		    (best == NULL || b->ans[i].load > best->load))
			best = &b->ans[i];
	if (best == NULL) {
		agd_log(AGD_LOG_DEBUG, "balance.none_busy", "load=%llu answers=%zu asked=%zu",
			(unsigned long long)mine, b->nans, b->asked);
		return;
	}
	/* As many as keep this host below idle_below and the peer no less
	 * loaded than this host: load moves from best to here one by one. */
	room = b->cfg->balance_idle_below > mine ? b->cfg->balance_idle_below - mine : 0;
	take = best->load > mine ? (best->load - mine) / 2 : 0;
	if (take > room)
		take = room;
	if (take > b->cfg->balance_max_pulls)
		take = b->cfg->balance_max_pulls;
	for (size_t i = 0, k = 0; i < best->nids && k < take && b->npend < AGD_BALANCE_PEERS_MAX; i++) {
		const char *id = best->ids[i];
		int asked = 0, rc;

		/* One asked for already is on its way (or was refused):
		 * another would not add load here. */
		for (size_t j = 0; j < b->npend; j++)
			asked |= strcmp(b->pend[j].id, id) == 0;
		if (asked)
			continue;
		rc = b->ops.pull(b->ud, best->host, id);

		if (rc != 0) {
			agd_log(AGD_LOG_WARN, "balance.pull_failed", "agent=%s from=%s error=\"%s\"", id,
				best->host, agd_strerror(rc));
			continue;
		}
		snprintf(b->pend[b->npend].id, sizeof b->pend[b->npend].id, "%s", id);
		b->pend[b->npend++].until = now + AGD_BALANCE_PENDING_MS;
		b->pulls++;
		agd_log(AGD_LOG_INFO, "balance.pull", "agent=%s from=%s peer_load=%llu load=%llu", id,
			best->host, (unsigned long long)best->load, (unsigned long long)(mine + k));
		k++;
	}
}

static void start_round(struct agd_balance *b, uint64_t now)
{
	char (*names)[AGD_WIRE_NAME_MAX + 1] = b->names;
	struct agd_wire_msg m;
	struct local me;
	uint64_t interval = (uint64_t)(b->cfg->balance_interval * 1000.0);
	uint64_t window = interval / 2 < WINDOW_MAX_MS ? interval / 2 : WINDOW_MAX_MS;
	size_t n;

	if (scan(b, &me) != 0)
		return;
	me.runnable += pending_count(b, now);
	if (me.runnable >= b->cfg->balance_idle_below)
		return; /* busy enough: no round */
	n = b->ops.peers(b->ud, names, AGD_BALANCE_PEERS_MAX);
	if (n == 0)
		return;
	memset(&m, 0, sizeof m);
	m.type = AGD_MSG_LOAD;
	do
		randombytes_buf(&m.corr, sizeof m.corr);
	while (m.corr == 0);
	snprintf(m.host, sizeof m.host, "%s", b->cfg->host);
	m.size = me.runnable;
	b->corr = m.corr;
	b->my_load = me.runnable;
	b->nans = 0;
	b->asked = 0;
	b->window_end = now + (window ? window : 1);
	b->rounds++;
	for (size_t i = 0; i < n; i++)
		if (b->ops.send(b->ud, names[i], &m) == 0)
			b->asked++;
	agd_log(AGD_LOG_DEBUG, "balance.round", "load=%llu asked=%zu", (unsigned long long)me.runnable,
		b->asked);
	if (b->asked == 0)
		b->corr = 0;
}

void agd_balance_tick(struct agd_balance *b, uint64_t now_ms)
{
	if (b == NULL || b->cfg->balance != AGD_BALANCE_PULL)
		return;
	if (b->corr != 0 && now_ms >= b->window_end)
		decide(b, now_ms);
	if (b->corr == 0 && now_ms >= b->next_round) {
		b->next_round = now_ms + (uint64_t)(b->cfg->balance_interval * 1000.0);
		start_round(b, now_ms);
	}
}

int agd_balance_input(struct agd_balance *b, const char *from, const struct agd_wire_msg *m,
		      uint64_t now_ms)
{
	if (b == NULL)
		return 0;
	switch (m->type) {
	case AGD_MSG_LOAD: on_load(b, from, m); return 1;
	case AGD_MSG_LOAD_REPLY: on_load_reply(b, from, m, now_ms); return 1;
	default: return 0;
	}
}
