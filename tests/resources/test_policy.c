/*
 * test_policy.c: the policy table alone. Every one of the nine cells, every
 * fall-back trigger, and the precedence of manifest lists, host overrides
 * and hard rules, each checked through the full decision trace (which
 * actions were tried and why each was passed over).
 */
#include "res_policy.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

/* Facts that fire triggers, as bits, so that a table row can name them. */
enum {
	F_SHARED = 1 << 0,
	F_TOO_LARGE = 1 << 1,
	F_NOT_LOCAL = 1 << 2,
	F_NO_KIND = 1 << 3,
	F_REFUSES = 1 << 4,
	F_ID_TAKEN = 1 << 5,
	F_HOME_DOWN = 1 << 6,
	F_REMOTE_DENIED = 1 << 7,
	F_COPY_DENIED = 1 << 8,
};
#define F_ALL 0x1ff

static struct res_policy_ctx make_ctx(enum res_binding b, enum res_attach a, unsigned f)
{
	struct res_policy_ctx c;

	memset(&c, 0, sizeof c);
	c.binding = b;
	c.attach = a;
	c.size = 1000;
	c.transfer_limit = (f & F_TOO_LARGE) ? 999 : 1000; /* equal to the size: allowed */
	c.other_binders = (f & F_SHARED) ? 1 : 0; /* the boundary: one other */
	c.not_local = !!(f & F_NOT_LOCAL);
	c.target_lacks_kind = !!(f & F_NO_KIND);
	c.target_refuses = !!(f & F_REFUSES);
	c.target_has_id = !!(f & F_ID_TAKEN);
	c.home_down = !!(f & F_HOME_DOWN);
	c.remote_denied = !!(f & F_REMOTE_DENIED);
	c.copy_denied = !!(f & F_COPY_DENIED);
	return c;
}

struct row {
	const char *what;
	enum res_binding b;
	enum res_attach a;
	unsigned facts;
	const char *host_cell;  /* host override "binding.attachment", or NULL */
	const char *host_list;
	const char *manifest;   /* manifest list, or NULL */
	int rc;                 /* expected return */
	const char *trace;      /* expected res_decision_format text */
};

#define ID RES_BIND_ID
#define VAL RES_BIND_VALUE
#define TYP RES_BIND_TYPE
#define UN RES_ATT_UNATTACHED
#define FA RES_ATT_FASTENED
#define FX RES_ATT_FIXED
#define NOACT RES_ERR_NOACTION

static const struct row rows[] = {
	/* The nine cells, nothing in the way: the first action of each. */
	{"id/unattached", ID, UN, 0, NULL, NULL, NULL, 0, "action=MV origin=default tried=MV:ok"},
	{"id/fastened", ID, FA, 0, NULL, NULL, NULL, 0, "action=GR origin=default tried=GR:ok"},
	{"id/fixed", ID, FX, 0, NULL, NULL, NULL, 0, "action=GR origin=default tried=GR:ok"},
	{"value/unattached", VAL, UN, 0, NULL, NULL, NULL, 0, "action=CP origin=default tried=CP:ok"},
	{"value/fastened", VAL, FA, 0, NULL, NULL, NULL, 0, "action=GR origin=default tried=GR:ok"},
	{"value/fixed", VAL, FX, 0, NULL, NULL, NULL, 0, "action=GR origin=default tried=GR:ok"},
	{"type/unattached", TYP, UN, 0, NULL, NULL, NULL, 0, "action=RB origin=default tried=RB:ok"},
	{"type/fastened", TYP, FA, 0, NULL, NULL, NULL, 0, "action=RB origin=default tried=RB:ok"},
	{"type/fixed", TYP, FX, 0, NULL, NULL, NULL, 0, "action=RB origin=default tried=RB:ok"},

	/* by identifier, unattached: MV (or GR). */
	{"MV shared -> GR", ID, UN, F_SHARED, NULL, NULL, NULL, 0,
	 "action=GR origin=default tried=MV:shared,GR:ok"},
	{"MV too large -> GR", ID, UN, F_TOO_LARGE, NULL, NULL, NULL, 0,
	 "action=GR origin=default tried=MV:too-large,GR:ok"},
	{"MV not local -> GR", ID, UN, F_NOT_LOCAL, NULL, NULL, NULL, 0,
	 "action=GR origin=default tried=MV:not-local,GR:ok"},
	{"MV target refuses -> GR", ID, UN, F_REFUSES, NULL, NULL, NULL, 0,
	 "action=GR origin=default tried=MV:target-refuses,GR:ok"},
	{"MV id taken -> GR", ID, UN, F_ID_TAKEN, NULL, NULL, NULL, 0,
	 "action=GR origin=default tried=MV:id-taken,GR:ok"},
	{"MV shared, GR home down -> none", ID, UN, F_SHARED | F_HOME_DOWN, NULL, NULL, NULL, NOACT,
	 "action=none origin=default tried=MV:shared,GR:home-down"},
	{"copy denied does not stop MV", ID, UN, F_COPY_DENIED, NULL, NULL, NULL, 0,
	 "action=MV origin=default tried=MV:ok"},

	/* by identifier, fastened: GR (or MV). */
	{"GR home down -> MV", ID, FA, F_HOME_DOWN, NULL, NULL, NULL, 0,
	 "action=MV origin=default tried=GR:home-down,MV:ok"},
	{"GR remote denied -> MV", ID, FA, F_REMOTE_DENIED, NULL, NULL, NULL, 0,
	 "action=MV origin=default tried=GR:remote-denied,MV:ok"},
	{"GR denied, MV shared -> none", ID, FA, F_REMOTE_DENIED | F_SHARED, NULL, NULL, NULL, NOACT,
	 "action=none origin=default tried=GR:remote-denied,MV:shared"},
	{"RB facts do not touch id", ID, FA, F_NO_KIND, NULL, NULL, NULL, 0,
	 "action=GR origin=default tried=GR:ok"},

	/* by identifier, fixed: GR only. */
	{"fixed GR home down -> none", ID, FX, F_HOME_DOWN, NULL, NULL, NULL, NOACT,
	 "action=none origin=default tried=GR:home-down"},

	/* by value, unattached: CP (or MV, GR). */
	{"CP copy denied -> MV", VAL, UN, F_COPY_DENIED, NULL, NULL, NULL, 0,
	 "action=MV origin=default tried=CP:copy-denied,MV:ok"},
	{"CP copy denied, MV shared -> GR", VAL, UN, F_COPY_DENIED | F_SHARED, NULL, NULL, NULL, 0,
	 "action=GR origin=default tried=CP:copy-denied,MV:shared,GR:ok"},
	{"CP, MV too large -> GR", VAL, UN, F_TOO_LARGE, NULL, NULL, NULL, 0,
	 "action=GR origin=default tried=CP:too-large,MV:too-large,GR:ok"},
	{"CP, MV refused -> GR", VAL, UN, F_REFUSES, NULL, NULL, NULL, 0,
	 "action=GR origin=default tried=CP:target-refuses,MV:target-refuses,GR:ok"},
	{"CP, MV not local -> GR", VAL, UN, F_NOT_LOCAL, NULL, NULL, NULL, 0,
	 "action=GR origin=default tried=CP:not-local,MV:not-local,GR:ok"},
	{"CP unaffected by sharing", VAL, UN, F_SHARED, NULL, NULL, NULL, 0,
	 "action=CP origin=default tried=CP:ok"},
	{"all of value/unattached fail", VAL, UN, F_TOO_LARGE | F_REMOTE_DENIED, NULL, NULL, NULL,
	 NOACT, "action=none origin=default tried=CP:too-large,MV:too-large,GR:remote-denied"},

	/* by value, fastened: GR (or CP). */
	{"value fastened GR down -> CP", VAL, FA, F_HOME_DOWN, NULL, NULL, NULL, 0,
	 "action=CP origin=default tried=GR:home-down,CP:ok"},
	{"value fastened GR denied, CP too large -> none", VAL, FA, F_REMOTE_DENIED | F_TOO_LARGE,
	 NULL, NULL, NULL, NOACT,
	 "action=none origin=default tried=GR:remote-denied,CP:too-large"},

	/* by value, fixed: GR only. */
	{"value fixed GR denied -> none", VAL, FX, F_REMOTE_DENIED, NULL, NULL, NULL, NOACT,
	 "action=none origin=default tried=GR:remote-denied"},

	/* by type, unattached and fastened: RB (or GR, CP). */
	{"RB no kind -> GR", TYP, UN, F_NO_KIND, NULL, NULL, NULL, 0,
	 "action=GR origin=default tried=RB:no-kind,GR:ok"},
	{"RB no kind, GR down -> CP", TYP, UN, F_NO_KIND | F_HOME_DOWN, NULL, NULL, NULL, 0,
	 "action=CP origin=default tried=RB:no-kind,GR:home-down,CP:ok"},
	{"fastened RB no kind -> GR", TYP, FA, F_NO_KIND, NULL, NULL, NULL, 0,
	 "action=GR origin=default tried=RB:no-kind,GR:ok"},
	{"fastened RB no kind, GR denied -> CP", TYP, FA, F_NO_KIND | F_REMOTE_DENIED, NULL, NULL,
	 NULL, 0, "action=CP origin=default tried=RB:no-kind,GR:remote-denied,CP:ok"},
	{"fastened all fail", TYP, FA, F_NO_KIND | F_HOME_DOWN | F_TOO_LARGE, NULL, NULL, NULL, NOACT,
	 "action=none origin=default tried=RB:no-kind,GR:home-down,CP:too-large"},

	/* by type, fixed: RB (or GR). */
	{"fixed RB no kind -> GR", TYP, FX, F_NO_KIND, NULL, NULL, NULL, 0,
	 "action=GR origin=default tried=RB:no-kind,GR:ok"},
	{"fixed RB no kind, GR down -> none (never CP)", TYP, FX, F_NO_KIND | F_HOME_DOWN, NULL, NULL,
	 NULL, NOACT, "action=none origin=default tried=RB:no-kind,GR:home-down"},

	/* Precedence: manifest over default. */
	{"manifest list replaces the default", ID, UN, 0, NULL, NULL, "GR,MV", 0,
	 "action=GR origin=manifest tried=GR:ok"},
	{"manifest list falls back in its own order", VAL, UN, F_HOME_DOWN, NULL, NULL, "GR,MV", 0,
	 "action=MV origin=manifest tried=GR:home-down,MV:ok"},
	/* Host override over manifest. */
	{"host override beats the manifest", ID, UN, 0, "identifier.unattached", "GR", "MV", 0,
	 "action=GR origin=host tried=GR:ok"},
	{"host override falls back in its order", TYP, UN, F_NO_KIND, "type.unattached", "RB,CP,GR",
	 "GR", 0, "action=CP origin=host tried=RB:no-kind,CP:ok"},
	{"override of another cell leaves this one", ID, UN, 0, "identifier.fastened", "MV", "GR", 0,
	 "action=GR origin=manifest tried=GR:ok"},
	/* Hard rules over everything. */
	{"manifest cannot move a fixed resource", ID, FX, 0, NULL, NULL, "MV,GR", 0,
	 "action=GR origin=manifest tried=MV:forbidden,GR:ok"},
	{"manifest cannot copy a fixed resource", VAL, FX, F_HOME_DOWN, NULL, NULL, "CP,MV", NOACT,
	 "action=none origin=manifest tried=CP:forbidden,MV:forbidden"},
	{"manifest cannot rebind by identifier", ID, UN, 0, NULL, NULL, "RB,CP,MV", 0,
	 "action=MV origin=manifest tried=RB:forbidden,CP:forbidden,MV:ok"},
	{"manifest cannot rebind by value", VAL, UN, 0, NULL, NULL, "RB,GR", 0,
	 "action=GR origin=manifest tried=RB:forbidden,GR:ok"},
	{"fixed by type may take RB from a manifest", TYP, FX, 0, NULL, NULL, "GR,RB", 0,
	 "action=GR origin=manifest tried=GR:ok"},
};

static void run_row(const struct row *r)
{
	struct res_policy host;
	struct res_action_list man, *manp = NULL;
	struct res_policy_ctx ctx = make_ctx(r->b, r->a, r->facts);
	struct res_decision d;
	char text[256];
	int rc;

	res_policy_init(&host);
	if (r->host_cell)
		cr_assert_eq(res_policy_set(&host, r->host_cell, r->host_list, NULL), 0, "%s", r->what);
	if (r->manifest) {
		cr_assert_eq(res_action_list_parse(r->manifest, &man), 0, "%s", r->what);
		manp = &man;
	}
	rc = res_policy_decide(&host, manp, &ctx, &d);
	cr_assert_eq(rc, r->rc, "%s: rc %d", r->what, rc);
	cr_assert_eq(res_decision_format(&d, 0, text, sizeof text), 0);
	cr_assert_str_eq(text, r->trace, "%s", r->what);
	if (rc == 0)
		cr_assert(res_policy_permitted(r->b, r->a, d.action), "%s", r->what);
}

TestSuite(res_policy, .timeout = 10);

Test(res_policy, every_row_of_the_table_decides_as_documented)
{
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		run_row(&rows[i]);
}

Test(res_policy, default_table_is_the_seeds_table)
{
	static const char *const want[3][3] = {
		{"MV,GR", "GR,MV", "GR"},
		{"CP,MV,GR", "GR,CP", "GR"},
		{"RB,GR,CP", "RB,GR,CP", "RB,GR"},
	};
	char buf[32];

	for (int b = 0; b < 3; b++)
		for (int a = 0; a < 3; a++) {
			const struct res_action_list *l = res_policy_default(b, a);

			cr_assert_not_null(l);
			cr_assert_eq(res_action_list_format(l, buf, sizeof buf), 0);
			cr_assert_str_eq(buf, want[b][a], "cell %d.%d", b, a);
			for (unsigned i = 0; i < l->n; i++)
				cr_assert(res_policy_permitted(b, a, l->a[i]), "cell %d.%d", b, a);
		}
	cr_assert_null(res_policy_default(3, 0));
}

Test(res_policy, no_situation_yields_a_forbidden_action)
{
	static const char *const lists[] = {"MV,CP,RB,GR", "RB,CP,MV,GR", "CP,RB", NULL};

	for (int b = 0; b < 3; b++)
		for (int a = 0; a < 3; a++)
			for (unsigned f = 0; f <= F_ALL; f++)
				for (size_t m = 0; m < sizeof lists / sizeof lists[0]; m++) {
					struct res_action_list man;
					struct res_policy_ctx c = make_ctx(b, a, f);
					struct res_decision d;
					int rc;

					if (lists[m])
						res_action_list_parse(lists[m], &man);
					rc = res_policy_decide(NULL, lists[m] ? &man : NULL, &c, &d);
					if (rc == 0)
						cr_assert(res_policy_permitted(b, a, d.action));
					else
						cr_assert_eq(rc, RES_ERR_NOACTION);
					cr_assert(d.ntried >= 1 && d.ntried <= RES_POLICY_MAX_ACTIONS);
					if (a == RES_ATT_FIXED)
						cr_assert(d.action != RES_ACT_MV && d.action != RES_ACT_CP);
				}
}

Test(res_policy, host_config_cannot_set_a_forbidden_action)
{
	struct res_policy p;
	struct res_error err;

	res_policy_init(&p);
	cr_assert_eq(res_policy_set(&p, "identifier.fixed", "MV,GR", &err), RES_ERR_DENIED);
	cr_assert(strstr(err.msg, "MV") != NULL, "%s", err.msg);
	cr_assert_eq(res_policy_set(&p, "value.fixed", "GR,CP", NULL), RES_ERR_DENIED);
	cr_assert_eq(res_policy_set(&p, "identifier.unattached", "CP", NULL), RES_ERR_DENIED);
	cr_assert_eq(res_policy_set(&p, "value.unattached", "RB", NULL), RES_ERR_DENIED);
	cr_assert_eq(p.host[RES_BIND_ID][RES_ATT_FIXED].n, 0, "a refused list is not kept");
	cr_assert_eq(res_policy_set(&p, "type.fixed", "GR,RB", NULL), 0);
	cr_assert_eq(res_policy_set(&p, "id.fastened", "mv gr", NULL), 0);
	cr_assert_eq(p.host[RES_BIND_ID][RES_ATT_FASTENED].a[0], RES_ACT_MV);
}

Test(res_policy, bad_cells_and_lists_are_refused)
{
	struct res_policy p;
	struct res_action_list l;

	res_policy_init(&p);
	cr_assert_eq(res_policy_set(&p, "identifier", "GR", NULL), RES_ERR_ARG);
	cr_assert_eq(res_policy_set(&p, "name.fixed", "GR", NULL), RES_ERR_ARG);
	cr_assert_eq(res_policy_set(&p, "value.glued", "GR", NULL), RES_ERR_ARG);
	cr_assert_eq(res_policy_set(&p, NULL, "GR", NULL), RES_ERR_ARG);
	cr_assert_eq(res_policy_set(&p, "value.fixed", NULL, NULL), RES_ERR_ARG);
	cr_assert_eq(res_action_list_parse("", &l), RES_ERR_ARG);
	cr_assert_eq(res_action_list_parse(" , ", &l), RES_ERR_ARG);
	cr_assert_eq(res_action_list_parse("GR,GR", &l), RES_ERR_ARG);
	cr_assert_eq(res_action_list_parse("GR,XX", &l), RES_ERR_ARG);
	cr_assert_eq(res_action_list_parse("none", &l), RES_ERR_ARG);
	cr_assert_eq(res_action_list_parse("GRMV", &l), RES_ERR_ARG);
	cr_assert_eq(res_action_list_parse("RB, GR ,CP,MV", &l), 0);
	cr_assert_eq(l.n, 4);
	cr_assert_eq(res_action_list_parse("RB,GR,CP,MV,GR", &l), RES_ERR_ARG);
}

Test(res_policy, hostile_manifest_lists_are_checked_again)
{
	/* A list built by hand (not by the parser): out-of-range and
	 * repeated actions are skipped with a reason, never chosen. */
	struct res_action_list man = {4, {9, RES_ACT_GR, RES_ACT_GR, RES_ACT_NONE}};
	struct res_policy_ctx c = make_ctx(RES_BIND_ID, RES_ATT_UNATTACHED, F_HOME_DOWN);
	struct res_decision d;
	char text[256];

	cr_assert_eq(res_policy_decide(NULL, &man, &c, &d), RES_ERR_NOACTION);
	cr_assert_eq(res_decision_format(&d, 0, text, sizeof text), 0);
	cr_assert_str_eq(text, "action=none origin=manifest tried=?:forbidden,GR:home-down,"
			       "GR:duplicate,none:forbidden");
	man.n = 200; /* a count past the array is capped, not followed */
	cr_assert_eq(res_policy_decide(NULL, &man, &c, &d), RES_ERR_NOACTION);
	cr_assert_eq(d.ntried, RES_POLICY_MAX_ACTIONS);
	c.binding = 7;
	cr_assert_eq(res_policy_decide(NULL, NULL, &c, &d), RES_ERR_ARG);
}

Test(res_policy, decision_formats_as_json)
{
	struct res_policy_ctx c = make_ctx(RES_BIND_TYPE, RES_ATT_UNATTACHED, F_NO_KIND);
	struct res_decision d;
	char js[512], tiny[10];

	cr_assert_eq(res_policy_decide(NULL, NULL, &c, &d), 0);
	cr_assert_eq(res_decision_format(&d, 1, js, sizeof js), 0);
	cr_assert_str_eq(js, "{\"action\":\"GR\",\"origin\":\"default\",\"tried\":["
			     "{\"action\":\"RB\",\"result\":\"no-kind\"},"
			     "{\"action\":\"GR\",\"result\":\"ok\"}]}");
	cr_assert_eq(res_decision_format(&d, 1, tiny, sizeof tiny), RES_ERR_LIMIT);
	cr_assert_eq(strlen(tiny) < sizeof tiny, 1);
}

Test(res_policy, render_shows_effective_table_with_overrides)
{
	struct res_policy p;
	char text[4096], js[4096], small[64];

	res_policy_init(&p);
	cr_assert_eq(res_policy_set(&p, "value.fastened", "CP,GR", NULL), 0);
	cr_assert_eq(res_policy_render(&p, "h1", 0, text, sizeof text), 0);
	cr_assert(strstr(text, "of h1") != NULL, "%s", text);
	cr_assert(strstr(text, "identifier   MV GR          GR MV          GR") != NULL, "%s", text);
	cr_assert(strstr(text, "value        CP MV GR       CP GR*         GR") != NULL, "%s", text);
	cr_assert(strstr(text, "type         RB GR CP       RB GR CP       RB GR") != NULL, "%s", text);
	cr_assert_eq(res_policy_render(&p, "h1", 1, js, sizeof js), 0);
	cr_assert(strncmp(js, "{\"host\":\"h1\",\"cells\":[", 22) == 0, "%s", js);
	cr_assert(strstr(js, "{\"binding\":\"value\",\"attachment\":\"fastened\",\"actions\":[\"CP\",\"GR\"],"
			     "\"origin\":\"host\"}") != NULL, "%s", js);
	cr_assert(strstr(js, "{\"binding\":\"type\",\"attachment\":\"fixed\",\"actions\":[\"RB\",\"GR\"],"
			     "\"origin\":\"default\"}") != NULL, "%s", js);
	cr_assert_eq(js[strlen(js) - 1], '}');
	/* Nine cells, each once. */
	{
		int cells = 0;

		for (const char *s = js; (s = strstr(s, "\"binding\"")) != NULL; s++)
			cells++;
		cr_assert_eq(cells, 9);
	}
	cr_assert_eq(res_policy_render(&p, "bad name\"", 1, js, sizeof js), 0);
	cr_assert(strncmp(js, "{\"host\":null,", 13) == 0, "an unsafe name is not echoed: %s", js);
	cr_assert_eq(res_policy_render(NULL, NULL, 0, small, sizeof small), RES_ERR_LIMIT);
}
