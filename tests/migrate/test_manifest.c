/*
 * test_manifest.c: the manifest parser reads what docs/segments.md says,
 * refuses everything else with a line number, caps every length and count,
 * and has one canonical text per manifest.
 */
#include "mig_manifest.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char full[] =
	"agentd-manifest 1\n"
	"# a counter that moves\n"
	"name = counter\n"
	"version = 1.2.0-beta\n"
	"entry = main.lua main\n"
	"   mobility   =   both  \n"
	"activation = on-demand\n"
	"memory = 1048576\n"
	"instructions = 250000\n"
	"\n"
	"binding = log by-identifier files/log-1\n"
	"binding = cache by-value kv:cache actions=CP,GR\n"
	"binding = printer by-type device actions=RB\n"
	"file = util.lua\n"
	"file = main.lua\r\n";

static struct mig_manifest m;
static struct mig_error err;

static int parse(const char *text)
{
	memset(&err, 0, sizeof err);
	return mig_manifest_parse(text, strlen(text), &m, &err);
}

Test(mig_manifest, full_manifest_gives_every_field)
{
	cr_assert_eq(parse(full), 0, "%s", err.msg);
	cr_assert_str_eq(m.name, "counter");
	cr_assert_str_eq(m.version, "1.2.0-beta");
	cr_assert_str_eq(m.entry_file, "main.lua");
	cr_assert_str_eq(m.entry_func, "main");
	cr_assert_eq(m.mobility, MIG_MOBILITY_BOTH);
	cr_assert_eq(m.activation, MIG_ACTIVATION_ON_DEMAND);
	cr_assert_eq(m.quota_memory, 1048576u);
	cr_assert_eq(m.quota_instructions, 250000u);
	cr_assert_eq(m.nfiles, 2);
	cr_assert_str_eq(m.files[0], "main.lua"); /* sorted */
	cr_assert_str_eq(m.files[1], "util.lua");
	cr_assert_eq(m.nbindings, 3);
	/* sorted by name: cache, log, printer */
	cr_assert_str_eq(m.bindings[0].name, "cache");
	cr_assert_eq(m.bindings[0].kind, MIG_BIND_VALUE);
	cr_assert_str_eq(m.bindings[0].target, "kv:cache");
	cr_assert_eq(m.bindings[0].nactions, 2);
	cr_assert_eq(m.bindings[0].actions[0], MIG_ACTION_CP);
	cr_assert_eq(m.bindings[0].actions[1], MIG_ACTION_GR);
	cr_assert_str_eq(m.bindings[1].name, "log");
	cr_assert_eq(m.bindings[1].kind, MIG_BIND_IDENTIFIER);
	cr_assert_str_eq(m.bindings[1].target, "files/log-1");
	cr_assert_eq(m.bindings[1].nactions, 0);
	cr_assert_eq(m.bindings[2].kind, MIG_BIND_TYPE);
	cr_assert_str_eq(m.bindings[2].target, "device");
	cr_assert_eq(m.bindings[2].actions[0], MIG_ACTION_RB);
}

Test(mig_manifest, defaults_are_resident_and_host_quotas)
{
	cr_assert_eq(parse("agentd-manifest 1\nname = a\nversion = 1\nentry = a.lua go\n"
			   "mobility = weak\nfile = a.lua\n"), 0, "%s", err.msg);
	cr_assert_eq(m.activation, MIG_ACTIVATION_RESIDENT);
	cr_assert_eq(m.quota_memory, 0);
	cr_assert_eq(m.quota_instructions, 0);
	cr_assert_eq(m.nbindings, 0);
}

Test(mig_manifest, canonical_text_parses_back_to_the_same_manifest)
{
	static struct mig_manifest again;
	char buf[MIG_MANIFEST_TEXT_MAX + 1], buf2[MIG_MANIFEST_TEXT_MAX + 1];
	size_t len, len2;

	cr_assert_eq(parse(full), 0);
	cr_assert_eq(mig_manifest_format(&m, buf, sizeof buf, &len), 0);
	cr_assert_eq(strlen(buf), len);
	cr_assert_eq(mig_manifest_parse(buf, len, &again, &err), 0, "%s", err.msg);
	cr_assert_eq(memcmp(&m, &again, sizeof m), 0);
	cr_assert_eq(mig_manifest_format(&again, buf2, sizeof buf2, &len2), 0);
	cr_assert_eq(len, len2);
	cr_assert_eq(memcmp(buf, buf2, len), 0);
	cr_assert_not_null(strstr(buf, "binding = cache by-value kv:cache actions=CP,GR\n"));
	cr_assert_null(strstr(buf, "#"), "comments do not survive canonicalisation");
}

Test(mig_manifest, format_refuses_a_small_buffer)
{
	char buf[64];
	size_t len = 99;

	cr_assert_eq(parse(full), 0);
	cr_assert_eq(mig_manifest_format(&m, buf, sizeof buf, &len), MIG_ERR_LIMIT);
	cr_assert_eq(len, 0);
}

/* Each bad manifest, with the word its error must contain. */
static const struct {
	const char *text;
	int code;
	const char *says;
} bad[] = {
	{ "", MIG_ERR_MALFORMED, "empty" },
	{ "agentd-manifest 2\nname = a\n", MIG_ERR_MALFORMED, "first line" },
	{ "agentd-manifest 1\nversion = 1\nentry = a.lua f\nmobility = weak\nfile = a.lua\n",
	  MIG_ERR_MALFORMED, "no name" },
	{ "agentd-manifest 1\nname = a\nentry = a.lua f\nmobility = weak\nfile = a.lua\n",
	  MIG_ERR_MALFORMED, "no version" },
	{ "agentd-manifest 1\nname = a\nversion = 1\nmobility = weak\nfile = a.lua\n",
	  MIG_ERR_MALFORMED, "no entry" },
	{ "agentd-manifest 1\nname = a\nversion = 1\nentry = a.lua f\nfile = a.lua\n",
	  MIG_ERR_MALFORMED, "no mobility" },
	{ "agentd-manifest 1\nname = a\nversion = 1\nentry = a.lua f\nmobility = weak\n",
	  MIG_ERR_MALFORMED, "no file" },
	{ "agentd-manifest 1\nname = a\nname = b\n", MIG_ERR_MALFORMED, "line 3" },
	{ "agentd-manifest 1\nnmae = a\n", MIG_ERR_MALFORMED, "unknown key" },
	{ "agentd-manifest 1\nname a\n", MIG_ERR_MALFORMED, "key = value" },
	{ "agentd-manifest 1\nname =\n", MIG_ERR_MALFORMED, "no value" },
	{ "agentd-manifest 1\nname = -a\n", MIG_ERR_MALFORMED, "bad name" },
	{ "agentd-manifest 1\nname = a b\n", MIG_ERR_MALFORMED, "bad name" },
	{ "agentd-manifest 1\nmobility = sometimes\n", MIG_ERR_MALFORMED, "mobility" },
	{ "agentd-manifest 1\nactivation = lazy\n", MIG_ERR_MALFORMED, "activation" },
	{ "agentd-manifest 1\nmemory = -1\n", MIG_ERR_MALFORMED, "memory" },
	{ "agentd-manifest 1\nmemory = 18446744073709551616\n", MIG_ERR_MALFORMED, "memory" },
	{ "agentd-manifest 1\ninstructions = 1e6\n", MIG_ERR_MALFORMED, "instructions" },
	{ "agentd-manifest 1\nentry = main.lua\n", MIG_ERR_MALFORMED, "entry" },
	{ "agentd-manifest 1\nentry = main.lua 1main\n", MIG_ERR_MALFORMED, "entry" },
	{ "agentd-manifest 1\nentry = ../main.lua main\n", MIG_ERR_MALFORMED, "entry" },
	{ "agentd-manifest 1\nfile = ../etc/passwd\n", MIG_ERR_MALFORMED, "file name" },
	{ "agentd-manifest 1\nfile = sub/a.lua\n", MIG_ERR_MALFORMED, "file name" },
	{ "agentd-manifest 1\nfile = .hidden\n", MIG_ERR_MALFORMED, "file name" },
	{ "agentd-manifest 1\nfile = a.lua\nfile = a.lua\n", MIG_ERR_MALFORMED, "twice" },
	{ "agentd-manifest 1\nname = a\nversion = 1\nentry = b.lua f\nmobility = weak\nfile = a.lua\n",
	  MIG_ERR_MALFORMED, "not listed" },
	{ "agentd-manifest 1\nbinding = x by-reference y\n", MIG_ERR_MALFORMED, "binding kind" },
	{ "agentd-manifest 1\nbinding = x by-type scanner\n", MIG_ERR_MALFORMED, "kind" },
	{ "agentd-manifest 1\nbinding = x by-type\n", MIG_ERR_MALFORMED, "binding wants" },
	{ "agentd-manifest 1\nbinding = x by-type kv actions=RB,RB\n", MIG_ERR_MALFORMED, "actions" },
	{ "agentd-manifest 1\nbinding = x by-type kv actions=XX\n", MIG_ERR_MALFORMED, "actions" },
	{ "agentd-manifest 1\nbinding = x by-type kv actions=GR,\n", MIG_ERR_MALFORMED, "actions" },
	{ "agentd-manifest 1\nbinding = x by-type kv actions=\n", MIG_ERR_MALFORMED, "actions" },
	{ "agentd-manifest 1\nbinding = x by-type kv x=1\n", MIG_ERR_MALFORMED, "actions" },
	{ "agentd-manifest 1\nbinding = x by-type kv\nbinding = x by-type file\n", MIG_ERR_MALFORMED,
	  "twice" },
	{ "agentd-manifest 1\nversion = 1\x01\n", MIG_ERR_MALFORMED, "control" },
};

Test(mig_manifest, bad_manifests_are_refused_with_a_reason)
{
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = parse(bad[i].text);

		cr_assert_eq(rc, bad[i].code, "case %zu (%s): got %d (%s)", i, bad[i].text, rc, err.msg);
		cr_assert_eq(err.code, rc);
		cr_assert_not_null(strstr(err.msg, bad[i].says), "case %zu: message '%s' lacks '%s'", i,
				   err.msg, bad[i].says);
	}
}

Test(mig_manifest, nul_byte_is_refused)
{
	static const char text[] = "agentd-manifest 1\nname = a\0b\n";

	cr_assert_eq(mig_manifest_parse(text, sizeof text - 1, &m, &err), MIG_ERR_MALFORMED);
	cr_assert_not_null(strstr(err.msg, "NUL"));
}

Test(mig_manifest, lines_and_counts_are_capped)
{
	char *text = malloc(MIG_MANIFEST_TEXT_MAX + 2);
	size_t pos;

	cr_assert_not_null(text);
	/* A line one byte over the cap. */
	pos = (size_t)sprintf(text, "agentd-manifest 1\n# ");
	memset(text + pos, 'x', MIG_MANIFEST_LINE_MAX);
	text[pos + MIG_MANIFEST_LINE_MAX] = '\0';
	cr_assert_eq(parse(text), MIG_ERR_LIMIT, "%s", err.msg);

	/* One file more than the cap. */
	pos = (size_t)sprintf(text, "agentd-manifest 1\n");
	for (unsigned i = 0; i <= MIG_MANIFEST_FILES_MAX; i++)
		pos += (size_t)sprintf(text + pos, "file = f%u.lua\n", i);
	cr_assert_eq(parse(text), MIG_ERR_LIMIT, "%s", err.msg);

	/* One binding more than the cap. */
	pos = (size_t)sprintf(text, "agentd-manifest 1\n");
	for (unsigned i = 0; i <= MIG_MANIFEST_BINDINGS_MAX; i++)
		pos += (size_t)sprintf(text + pos, "binding = b%u by-type kv\n", i);
	cr_assert_eq(parse(text), MIG_ERR_LIMIT, "%s", err.msg);

	/* The whole text over the cap, even if every line is fine. */
	memset(text, '\n', MIG_MANIFEST_TEXT_MAX + 1);
	memcpy(text, "agentd-manifest 1\n", 18);
	cr_assert_eq(mig_manifest_parse(text, MIG_MANIFEST_TEXT_MAX + 1, &m, &err), MIG_ERR_LIMIT);
	free(text);
}

Test(mig_manifest, every_prefix_of_a_manifest_parses_or_fails_cleanly)
{
	/* No prefix crashes; the complete text parses; shorter ones that cut
	 * into a required line do not. */
	for (size_t n = 0; n < sizeof full - 1; n++) {
		int rc = mig_manifest_parse(full, n, &m, &err);

		cr_assert(rc == 0 || rc == MIG_ERR_MALFORMED || rc == MIG_ERR_LIMIT, "prefix %zu: %d", n, rc);
	}
	cr_assert_eq(mig_manifest_parse(full, sizeof full - 1, &m, &err), 0);
	cr_assert_neq(mig_manifest_parse(full, 40, &m, &err), 0);
}

Test(mig_manifest, by_type_names_each_device_kind_or_any_device)
{
	static const char *const kinds[] = { "file", "kv", "printer", "sensor", "device" };
	char text[256];

	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		snprintf(text, sizeof text,
			 "agentd-manifest 1\nname = a\nversion = 1\nentry = a.lua go\n"
			 "mobility = weak\nbinding = d by-type %s\nfile = a.lua\n", kinds[i]);
		cr_assert_eq(parse(text), 0, "%s: %s", kinds[i], err.msg);
		cr_assert_eq(m.bindings[0].kind, MIG_BIND_TYPE);
		cr_assert_str_eq(m.bindings[0].target, kinds[i]);
	}
	/* A kind the resources library lacks is refused, naming the choices. */
	cr_assert_eq(parse("agentd-manifest 1\nbinding = d by-type Printer\n"), MIG_ERR_MALFORMED);
	cr_assert(strstr(err.msg, "printer, sensor or device") != NULL, "%s", err.msg);
}

Test(mig_manifest, names_for_values_match_the_text_format)
{
	cr_assert_str_eq(mig_mobility_name(MIG_MOBILITY_STRONG), "strong");
	cr_assert_str_eq(mig_activation_name(MIG_ACTIVATION_ON_DEMAND), "on-demand");
	cr_assert_str_eq(mig_binding_kind_name(MIG_BIND_TYPE), "by-type");
	cr_assert_str_eq(mig_action_name(MIG_ACTION_MV), "MV");
	cr_assert_str_eq(mig_mobility_name((enum mig_mobility)9), "?");
}
