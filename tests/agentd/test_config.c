/*
 * test_config.c: the config file is read strictly: defaults hold, every
 * known key is applied, and a typo, a bad number or a bad section is an
 * error that names its line.
 */
#include "agd_config.h"

#include <criterion/criterion.h>
#include <string.h>

TestSuite(agd_config, .timeout = 10);

static int parse(struct agd_config *c, const char *text, char *err, size_t n)
{
	return agd_config_parse(c, text, strlen(text), "t.conf", err, n);
}

Test(agd_config, defaults_are_documented_values)
{
	struct agd_config c;

	agd_config_defaults(&c);
	cr_assert_str_eq(c.ctl_tcp, "tcp://127.0.0.1:7400");
	cr_assert_eq(c.workers, 0);
	cr_assert_eq(c.memory_limit, 16u << 20);
	cr_assert_eq(c.slice_instructions, 10000);
	cr_assert_eq(c.isolation, AGD_ISOLATION_DAEMON);
	cr_assert_eq(c.activation, AGD_ACTIVATION_RESIDENT);
	agd_config_finish(&c);
	cr_assert_str_eq(c.host_key, "/var/lib/agentd/host.key");
	agd_config_free(&c);
}

Test(agd_config, reads_every_section_and_unit)
{
	struct agd_config c;
	char err[256] = "";
	const char *t =
		"# comment\n[daemon]\nhost = h7\nworkers = 3\nisolation = process\n"
		"data_dir = \"/tmp/x y\"\n[control]\ntcp = tcp://127.0.0.1:9\nipc = ipc:///tmp/a\n"
		"[agents]\nmemory_limit = 32K\npassivate_after = 250ms\ncheckpoint_interval = 2m\n"
		"activation = on-demand\ninstruction_limit = 1000\n"
		"[resource printer1]\nkind = printer\npath = /tmp/p\n[policy]\nid.fixed = GR\n"
		"[log]\nlevel = debug\n";

	agd_config_defaults(&c);
	cr_assert_eq(parse(&c, t, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(c.host, "h7");
	cr_assert_eq(c.workers, 3);
	cr_assert_eq(c.isolation, AGD_ISOLATION_PROCESS);
	cr_assert_str_eq(c.data_dir, "/tmp/x y");
	cr_assert_str_eq(c.ctl_ipc, "ipc:///tmp/a");
	cr_assert_eq(c.memory_limit, 32768);
	cr_assert_float_eq(c.passivate_after, 0.25, 1e-9);
	cr_assert_float_eq(c.checkpoint_interval, 120, 1e-9);
	cr_assert_eq(c.activation, AGD_ACTIVATION_ON_DEMAND);
	cr_assert_eq(c.instruction_limit, 1000);
	cr_assert_eq(c.nresources, 1);
	cr_assert_str_eq(c.resources[0].name, "printer1");
	cr_assert_str_eq(agd_section_get(&c.resources[0], "path"), "/tmp/p");
	cr_assert_str_eq(agd_section_get(&c.policy, "id.fixed"), "GR");
	cr_assert_eq(c.log_level, 0);
	agd_config_free(&c);
}

Test(agd_config, errors_name_the_line)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
		{ "[daemon]\nhots = x\n", "t.conf:2: unknown key 'hots'" },
		{ "\n\n[agents]\nmemory_limit = lots\n", "t.conf:4:" },
		{ "[nope]\n", "t.conf:1: unknown section" },
		{ "[daemon]\nworkers = -1\n", "t.conf:2:" },
		{ "[daemon]\nworkers = 1.5\n", "t.conf:2:" },
		{ "[daemon]\nisolation = vm\n", "t.conf:2:" },
		{ "[agents]\nslice_instructions = 0\n", "t.conf:2:" },
		{ "[daemon\n", "t.conf:1: malformed section" },
		{ "[resource a]\n[resource a]\n", "t.conf:2: resource 'a' defined twice" },
		{ "just words\n", "t.conf:1: expected key = value" },
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct agd_config c;
		char err[256] = "";

		agd_config_defaults(&c);
		cr_assert_neq(parse(&c, bad[i].text, err, sizeof err), 0, "accepted: %s", bad[i].text);
		cr_assert(strncmp(err, bad[i].want, strlen(bad[i].want)) == 0, "got '%s' want '%s'",
			  err, bad[i].want);
		agd_config_free(&c);
	}
}
