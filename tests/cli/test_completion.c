/*
 * test_completion.c: cli/agentctl.bash-completion in a real bash: commands,
 * per-command options, host names from the cluster file for --to, and the
 * --combine choices.
 */
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char out[8192];

/* Sources the completion script, sets COMP_WORDS/COMP_CWORD from `words`
 * (a bash array literal) and prints the candidates, space-separated. */
static void complete_words(const char *words, int cword)
{
	static const char text[] = "# c\nalpha tcp://a:1\nbeta tcp://b:2 tcp://b:3 # x\n";
	char script[2048], path[512], cluster[] = "/tmp/cli-compl-XXXXXX";
	const char *top = getenv("AGENTD_SOURCE_DIR");
	int fd = mkstemp(cluster);
	char *argv[] = { "/bin/bash", "--norc", "--noprofile", "-c", script, NULL };

	cr_assert_not_null(top);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
	close(fd);
	snprintf(path, sizeof path, "%s/cli/agentctl.bash-completion", top);
	snprintf(script, sizeof script,
		 "complete() { :; }; source '%s'; export AGENTCTL_CLUSTER='%s';"
		 "COMP_WORDS=(%s); COMP_CWORD=%d; _agentctl; echo \"${COMPREPLY[*]}\"",
		 path, cluster, words, cword);
	cr_assert_eq(tst_run(argv, out, sizeof out, 10000), 0);
	out[strcspn(out, "\n")] = '\0';
	unlink(cluster);
}

TestSuite(cli_completion, .timeout = 30);

Test(cli_completion, command_names_complete_from_a_prefix)
{
	complete_words("agentctl pu", 1);
	cr_assert_str_eq(out, "push pull");
}

Test(cli_completion, host_options_offer_the_cluster_file_names)
{
	complete_words("agentctl push abc --to ''", 4);
	cr_assert_str_eq(out, "alpha beta");
	complete_words("agentctl --host b", 2);
	cr_assert_str_eq(out, "beta");
}

Test(cli_completion, each_command_offers_its_own_options_and_the_common_ones)
{
	complete_words("agentctl ps --", 2);
	cr_assert(strstr(out, "--all") && strstr(out, "--ended") && strstr(out, "--json"), "%s", out);
	cr_assert(strstr(out, "--to") == NULL, "%s", out);
	complete_words("agentctl call a b --combine ''", 5);
	cr_assert_str_eq(out, "first all majority");
}
