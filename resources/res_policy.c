/*
 * res_policy.c: the binding policy table and its decision procedure
 * (docs/resources.md, "Policy table", "Fall-back triggers", "Overrides and
 * precedence").
 *
 * Invariants: every list handled here holds distinct actions in
 * RES_ACT_GR..RES_ACT_RB, at most RES_POLICY_MAX_ACTIONS of them; a decision
 * never returns an action the hard rules forbid, whatever the lists say.
 * Never: I/O, allocation, global mutable state.
 */
#include "res_policy.h"

#include "res_internal.h"

#include <string.h>
#include <strings.h>

#define L1(a) {1, {a, 0, 0, 0}}
#define L2(a, b) {2, {a, b, 0, 0}}
#define L3(a, b, c) {3, {a, b, c, 0}}

/* The seeds' table, rows by binding, columns by attachment. */
static const struct res_action_list defaults[RES_NBINDINGS][RES_NATTACH] = {
	[RES_BIND_ID] = {
		[RES_ATT_UNATTACHED] = L2(RES_ACT_MV, RES_ACT_GR),
		[RES_ATT_FASTENED] = L2(RES_ACT_GR, RES_ACT_MV),
		[RES_ATT_FIXED] = L1(RES_ACT_GR),
	},
	[RES_BIND_VALUE] = {
		[RES_ATT_UNATTACHED] = L3(RES_ACT_CP, RES_ACT_MV, RES_ACT_GR),
		[RES_ATT_FASTENED] = L2(RES_ACT_GR, RES_ACT_CP),
		[RES_ATT_FIXED] = L1(RES_ACT_GR),
	},
	[RES_BIND_TYPE] = {
		[RES_ATT_UNATTACHED] = L3(RES_ACT_RB, RES_ACT_GR, RES_ACT_CP),
		[RES_ATT_FASTENED] = L3(RES_ACT_RB, RES_ACT_GR, RES_ACT_CP),
		[RES_ATT_FIXED] = L2(RES_ACT_RB, RES_ACT_GR),
	},
};

/* Hard rules, as bit sets of actions (bit = 1 << action). A binding by
 * identifier means this very resource: a copy or another resource would
 * betray it. A binding by value means this content: another resource's
 * content would betray it. A fixed resource cannot leave its machine. */
#define BIT(a) (1u << (a))
static const unsigned binding_allows[RES_NBINDINGS] = {
	[RES_BIND_ID] = BIT(RES_ACT_GR) | BIT(RES_ACT_MV),
	[RES_BIND_VALUE] = BIT(RES_ACT_GR) | BIT(RES_ACT_MV) | BIT(RES_ACT_CP),
	[RES_BIND_TYPE] = BIT(RES_ACT_GR) | BIT(RES_ACT_MV) | BIT(RES_ACT_CP) | BIT(RES_ACT_RB),
};
static const unsigned attach_allows[RES_NATTACH] = {
	[RES_ATT_UNATTACHED] = BIT(RES_ACT_GR) | BIT(RES_ACT_MV) | BIT(RES_ACT_CP) | BIT(RES_ACT_RB),
	[RES_ATT_FASTENED] = BIT(RES_ACT_GR) | BIT(RES_ACT_MV) | BIT(RES_ACT_CP) | BIT(RES_ACT_RB),
	[RES_ATT_FIXED] = BIT(RES_ACT_GR) | BIT(RES_ACT_RB),
};

static const char *const origin_names[] = {"default", "manifest", "host"};
static const char *const skip_names[RES_NSKIPS] = {
	"ok", "forbidden", "duplicate", "shared", "not-local", "too-large",
	"target-refuses", "id-taken", "no-kind", "home-down", "remote-denied", "copy-denied",
};

const char *res_origin_name(enum res_origin o)
{
	return (unsigned)o < 3 ? origin_names[o] : "?";
}

const char *res_skip_name(enum res_skip s)
{
	return (unsigned)s < RES_NSKIPS ? skip_names[s] : "?";
}

void res_policy_init(struct res_policy *p)
{
	memset(p, 0, sizeof *p);
}

const struct res_action_list *res_policy_default(enum res_binding b, enum res_attach a)
{
	if ((unsigned)b >= RES_NBINDINGS || (unsigned)a >= RES_NATTACH)
		return NULL;
	return &defaults[b][a];
}

int res_policy_permitted(enum res_binding b, enum res_attach a, enum res_action x)
{
	if ((unsigned)b >= RES_NBINDINGS || (unsigned)a >= RES_NATTACH || x <= RES_ACT_NONE ||
	    x >= RES_NACTIONS)
		return 0;
	return (binding_allows[b] & attach_allows[a] & BIT(x)) != 0;
}

int res_action_list_parse(const char *s, struct res_action_list *out)
{
	struct res_action_list l = {0};
	char word[8];

	if (s == NULL)
		return RES_ERR_ARG;
	while (*s != '\0') {
		size_t n = 0;
		enum res_action a;

		while (*s == ',' || *s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			break;
		while (s[n] != '\0' && s[n] != ',' && s[n] != ' ' && s[n] != '\t')
			n++;
		if (n >= sizeof word)
			return RES_ERR_ARG;
		memcpy(word, s, n);
		word[n] = '\0';
		s += n;
		if (res_action_parse(word, &a) != 0)
			return RES_ERR_ARG;
		for (unsigned i = 0; i < l.n; i++)
			if (l.a[i] == a)
				return RES_ERR_ARG;
		if (l.n == RES_POLICY_MAX_ACTIONS)
			return RES_ERR_ARG;
		l.a[l.n++] = (uint8_t)a;
	}
	if (l.n == 0)
		return RES_ERR_ARG;
	*out = l;
	return 0;
}

int res_action_list_format(const struct res_action_list *l, char *buf, size_t len)
{
	struct resi_text t;

	resi_text_init(&t, buf, len);
	for (unsigned i = 0; i < l->n && i < RES_POLICY_MAX_ACTIONS; i++)
		resi_text_add(&t, "%s%s", i ? "," : "", res_action_name(l->a[i]));
	return t.overflow ? RES_ERR_LIMIT : 0;
}

int res_policy_set(struct res_policy *p, const char *cell, const char *actions,
		   struct res_error *err)
{
	char bname[16];
	const char *dot;
	enum res_binding b;
	enum res_attach a;
	struct res_action_list l;

	if (cell == NULL || (dot = strchr(cell, '.')) == NULL || (size_t)(dot - cell) >= sizeof bname)
		return resi_fail(err, RES_ERR_ARG, "policy cell '%s' is not binding.attachment",
				 cell ? cell : "(null)");
	memcpy(bname, cell, (size_t)(dot - cell));
	bname[dot - cell] = '\0';
	if (res_binding_parse(bname, &b) != 0)
		return resi_fail(err, RES_ERR_ARG, "unknown binding '%s' (identifier, value, type)",
				 bname);
	if (res_attach_parse(dot + 1, &a) != 0)
		return resi_fail(err, RES_ERR_ARG,
				 "unknown attachment '%s' (unattached, fastened, fixed)", dot + 1);
	if (res_action_list_parse(actions, &l) != 0)
		return resi_fail(err, RES_ERR_ARG,
				 "bad action list '%s' (distinct GR, MV, CP, RB; at most %d)",
				 actions ? actions : "(null)", RES_POLICY_MAX_ACTIONS);
	for (unsigned i = 0; i < l.n; i++)
		if (!res_policy_permitted(b, a, l.a[i]))
			return resi_fail(err, RES_ERR_DENIED, "%s is never allowed for %s.%s",
					 res_action_name(l.a[i]), res_binding_name(b),
					 res_attach_name(a));
	p->host[b][a] = l;
	return 0;
}

/* The trigger that keeps action x from being taken in ctx, or RES_SKIP_NONE.
 * Checked in a fixed order so that a decision's reasons are stable. */
static enum res_skip trigger(const struct res_policy_ctx *c, enum res_action x)
{
	switch (x) {
	case RES_ACT_MV:
		if (c->not_local)
			return RES_SKIP_NOT_LOCAL;
		if (c->other_binders > 0)
			return RES_SKIP_SHARED;
		if (c->transfer_limit > 0 && c->size > c->transfer_limit)
			return RES_SKIP_TOO_LARGE;
		if (c->target_refuses)
			return RES_SKIP_TARGET_REFUSES;
		if (c->target_has_id)
			return RES_SKIP_ID_TAKEN;
		return RES_SKIP_NONE;
	case RES_ACT_CP:
		if (c->not_local)
			return RES_SKIP_NOT_LOCAL;
		if (c->copy_denied)
			return RES_SKIP_COPY_DENIED;
		if (c->transfer_limit > 0 && c->size > c->transfer_limit)
			return RES_SKIP_TOO_LARGE;
		if (c->target_refuses)
			return RES_SKIP_TARGET_REFUSES;
		return RES_SKIP_NONE;
	case RES_ACT_RB:
		return c->target_lacks_kind ? RES_SKIP_NO_KIND : RES_SKIP_NONE;
	case RES_ACT_GR:
		if (c->remote_denied)
			return RES_SKIP_REMOTE_DENIED;
		if (c->home_down)
			return RES_SKIP_HOME_DOWN;
		return RES_SKIP_NONE;
	default:
		return RES_SKIP_FORBIDDEN;
	}
}

int res_policy_decide(const struct res_policy *host, const struct res_action_list *manifest,
		      const struct res_policy_ctx *ctx, struct res_decision *out)
{
	const struct res_action_list *l;
	unsigned seen = 0;

	memset(out, 0, sizeof *out);
	if (ctx == NULL || (unsigned)ctx->binding >= RES_NBINDINGS ||
	    (unsigned)ctx->attach >= RES_NATTACH)
		return RES_ERR_ARG;
	if (host != NULL && host->host[ctx->binding][ctx->attach].n > 0) {
		l = &host->host[ctx->binding][ctx->attach];
		out->origin = RES_ORIGIN_HOST;
	} else if (manifest != NULL && manifest->n > 0) {
		l = manifest;
		out->origin = RES_ORIGIN_MANIFEST;
	} else {
		l = &defaults[ctx->binding][ctx->attach];
		out->origin = RES_ORIGIN_DEFAULT;
	}
	for (unsigned i = 0; i < l->n && i < RES_POLICY_MAX_ACTIONS; i++) {
		enum res_action x = (enum res_action)l->a[i];
		enum res_skip s;

		/* Lists may come from a manifest the agent wrote: check
		 * everything again rather than trust the parser. */
		if (!res_policy_permitted(ctx->binding, ctx->attach, x))
			s = RES_SKIP_FORBIDDEN;
		else if (seen & BIT(x))
			s = RES_SKIP_DUPLICATE;
		else
			s = trigger(ctx, x);
		if (x > RES_ACT_NONE && x < RES_NACTIONS)
			seen |= BIT(x);
		out->tried[out->ntried].action = (uint8_t)x;
		out->tried[out->ntried].skip = (uint8_t)s;
		out->ntried++;
		if (s == RES_SKIP_NONE) {
			out->action = (uint8_t)x;
			return 0;
		}
	}
	return RES_ERR_NOACTION;
}

int res_decision_format(const struct res_decision *d, int json, char *buf, size_t len)
{
	struct resi_text t;

	resi_text_init(&t, buf, len);
	if (json) {
		resi_text_add(&t, "{\"action\":\"%s\",\"origin\":\"%s\",\"tried\":[",
			      res_action_name(d->action), res_origin_name(d->origin));
		for (unsigned i = 0; i < d->ntried && i < RES_POLICY_MAX_ACTIONS; i++)
			resi_text_add(&t, "%s{\"action\":\"%s\",\"result\":\"%s\"}", i ? "," : "",
				      res_action_name(d->tried[i].action),
				      res_skip_name(d->tried[i].skip));
		resi_text_add(&t, "]}");
	} else {
		resi_text_add(&t, "action=%s origin=%s tried=", res_action_name(d->action),
			      res_origin_name(d->origin));
		for (unsigned i = 0; i < d->ntried && i < RES_POLICY_MAX_ACTIONS; i++)
			resi_text_add(&t, "%s%s:%s", i ? "," : "", res_action_name(d->tried[i].action),
				      res_skip_name(d->tried[i].skip));
		if (d->ntried == 0)
			resi_text_add(&t, "-");
	}
	return t.overflow ? RES_ERR_LIMIT : 0;
}

int res_policy_render(const struct res_policy *p, const char *host_name, int json, char *buf,
		      size_t len)
{
	struct resi_text t;
	char cell[32];

	resi_text_init(&t, buf, len);
	/* The host name goes into JSON unescaped: accept only valid names. */
	if (host_name != NULL && !res_id_valid(host_name))
		host_name = NULL;
	if (json) {
		resi_text_add(&t, "{\"host\":");
		if (host_name)
			resi_text_add(&t, "\"%s\"", host_name);
		else
			resi_text_add(&t, "null");
		resi_text_add(&t, ",\"cells\":[");
	} else {
		resi_text_add(&t, "binding policy%s%s (first action that applies wins; * = host override)\n",
			      host_name ? " of " : "", host_name ? host_name : "");
		resi_text_add(&t, "%-12s %-14s %-14s %s\n", "binding", "unattached", "fastened",
			      "fixed");
	}
	for (int b = 0; b < RES_NBINDINGS; b++) {
		if (!json)
			resi_text_add(&t, "%-12s", res_binding_name((enum res_binding)b));
		for (int a = 0; a < RES_NATTACH; a++) {
			const struct res_action_list *l = &defaults[b][a];
			int over = p != NULL && p->host[b][a].n > 0;

			if (over)
				l = &p->host[b][a];
			if (json) {
				resi_text_add(&t, "%s{\"binding\":\"%s\",\"attachment\":\"%s\",\"actions\":[",
					      b + a ? "," : "", res_binding_name((enum res_binding)b),
					      res_attach_name((enum res_attach)a));
				for (unsigned i = 0; i < l->n; i++)
					resi_text_add(&t, "%s\"%s\"", i ? "," : "",
						      res_action_name(l->a[i]));
				resi_text_add(&t, "],\"origin\":\"%s\"}", over ? "host" : "default");
			} else {
				size_t k = 0;

				for (unsigned i = 0; i < l->n && k + 4 < sizeof cell; i++) {
					const char *n = res_action_name(l->a[i]);

					if (i)
						cell[k++] = ' ';
					cell[k++] = n[0];
					cell[k++] = n[1];
				}
				if (over)
					cell[k++] = '*';
				cell[k] = '\0';
				/* The last column unpadded: no trailing blanks. */
				resi_text_add(&t, a + 1 < RES_NATTACH ? " %-14s" : " %s", cell);
			}
		}
		if (!json)
			resi_text_add(&t, "\n");
	}
	if (json)
		resi_text_add(&t, "]}");
	return t.overflow ? RES_ERR_LIMIT : 0;
}
