/*
 * agentd: the per-host daemon. A thin main(): options and config, logging,
 * signals, then the server; only this file exits the process.
 *
 * Command-line options override the config file (docs/config.md).
 */
#include "agd_config.h"
#include "agd_log.h"
#include "agd_proc.h"
#include "agd_sd.h"
#include "agd_mobility.h" /* [mig] */
#include "agd_server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct agd_server *the_server;

static void on_signal(int sig)
{
	(void)sig;
	if (the_server != NULL)
		agd_server_request_stop(the_server);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: agentd [--config FILE] [--name NAME] [--control ENDPOINT] [--ipc ENDPOINT]\n"
		   "              [--data-dir DIR] [--workers N] [--log FILE] [--log-level LEVEL]\n"
		   "       agentd --check-config FILE   print the effective config, or the error\n");
}

static int set(struct agd_config *cfg, const char *section, const char *key, const char *value,
	       char *err, size_t err_len)
{
	char text[AGD_CONFIG_STR_MAX + 128];

	snprintf(text, sizeof text, "[%s]\n%s = %s\n", section, key, value);
	return agd_config_parse(cfg, text, strlen(text), "command line", err, err_len);
}

/* Socket activation (the seeds' superserver): when systemd started agentd
 * for a first connection, the listening sockets it passed replace the
 * configured endpoints: "control" (or an unnamed one) for agentctl, "peer"
 * for other daemons. Before any thread starts: it reads the environment. */
static int adopt_passed_sockets(struct agd_config *cfg, char *err, size_t err_len)
{
	struct agd_sd sd;
	const struct agd_sd_fd *ctl, *peer;
	int rc = agd_sd_listen(&sd, 1);

	if (rc != 0) {
		snprintf(err, err_len, "socket activation: the passed descriptors are not usable (%s)",
			 agd_strerror(rc));
		return rc;
	}
	if (sd.n == 0)
		return 0;
	ctl = agd_sd_find(&sd, "control");
	if (ctl == NULL)
		ctl = agd_sd_find(&sd, "");
	peer = agd_sd_find(&sd, "peer");
	if (ctl != NULL) {
		cfg->ctl_fd = ctl->fd;
		snprintf(cfg->ctl_fd_endpoint, sizeof cfg->ctl_fd_endpoint, "%s", ctl->endpoint);
	}
	if (peer != NULL) {
		cfg->peer_fd = peer->fd;
		snprintf(cfg->peer_endpoint, sizeof cfg->peer_endpoint, "%s", peer->endpoint);
	}
	agd_log(AGD_LOG_INFO, "daemon.socket_activated", "fds=%zu control=%s peer=%s", sd.n,
		ctl ? ctl->endpoint : "-", peer ? peer->endpoint : "-");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *opt, *section, *key;
	} map[] = {
		{ "--name", "daemon", "host" },      { "--control", "control", "tcp" },
		{ "--ipc", "control", "ipc" },       { "--data-dir", "daemon", "data_dir" },
		{ "--workers", "daemon", "workers" }, { "--log", "log", "file" },
		{ "--log-level", "log", "level" },   { "--peer", "peer", "endpoint" },
		{ "--isolation", "daemon", "isolation" },
	};
	struct agd_config cfg;
	struct sigaction sa;
	struct agd_mobility *mobility = NULL; /* [mig] */
	char err[512];
	const char *check = NULL;
	int rc;

	/* A worker process of isolation = process (agd_proc.c), started by the
	 * daemon itself: it serves one agent on the inherited socket. */
	if (argc == 3 && strcmp(argv[1], "--agent-worker") == 0)
		return agd_proc_child_main(atoi(argv[2]));
	agd_config_defaults(&cfg);
	/* The config file first, then the other options over it. */
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "--check-config") == 0) &&
		    i + 1 < argc) {
			if (argv[i][2] == 'c' && argv[i][3] == 'h')
				check = argv[i + 1];
			if (agd_config_load(&cfg, argv[i + 1], err, sizeof err) != 0) {
				fprintf(stderr, "agentd: %s\n", err);
				agd_config_free(&cfg);
				return 1;
			}
			i++;
		}
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		size_t k;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			agd_config_free(&cfg);
			return 0;
		}
		if (i + 1 >= argc) {
			usage(stderr);
			agd_config_free(&cfg);
			return 2;
		}
		if (strcmp(a, "--config") == 0 || strcmp(a, "--check-config") == 0) {
			i++;
			continue;
		}
		for (k = 0; k < sizeof map / sizeof map[0]; k++)
			if (strcmp(a, map[k].opt) == 0)
				break;
		if (k == sizeof map / sizeof map[0]) {
			usage(stderr);
			agd_config_free(&cfg);
			return 2;
		}
		if (set(&cfg, map[k].section, map[k].key, argv[i + 1], err, sizeof err) != 0) {
			fprintf(stderr, "agentd: %s %s: %s\n", a, argv[i + 1], err);
			agd_config_free(&cfg);
			return 2;
		}
		i++;
	}
	agd_config_finish(&cfg);
	if (check != NULL) {
		agd_config_print(&cfg, stdout);
		agd_config_free(&cfg);
		return 0;
	}
	if (agd_log_open(cfg.log_file[0] ? cfg.log_file : NULL, (enum agd_log_level)cfg.log_level) != 0) {
		fprintf(stderr, "agentd: cannot open log %s: %s\n", cfg.log_file, strerror(errno));
		agd_config_free(&cfg);
		return 1;
	}
	if (adopt_passed_sockets(&cfg, err, sizeof err) != 0) {
		agd_log(AGD_LOG_ERROR, "daemon.start_failed", "error=\"%s\"", err);
		fprintf(stderr, "agentd: %s\n", err);
		agd_log_close();
		agd_config_free(&cfg);
		return 1;
	}
	rc = agd_server_new(&cfg, &the_server, err, sizeof err);
	if (rc != 0) {
		agd_log(AGD_LOG_ERROR, "daemon.start_failed", "error=\"%s\"", err);
		fprintf(stderr, "agentd: %s\n", err);
		agd_log_close();
		agd_config_free(&cfg);
		return 1;
	}
	/* [mig] daemon-to-daemon mobility (peer channel, transfers, directory). */
	if (agd_mobility_attach(the_server, &cfg, &mobility, err, sizeof err) != 0) {
		agd_log(AGD_LOG_ERROR, "daemon.start_failed", "error=\"%s\"", err);
		fprintf(stderr, "agentd: %s\n", err);
		agd_server_destroy(&the_server);
		agd_log_close();
		agd_config_free(&cfg);
		return 1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	rc = agd_server_run(the_server);
	agd_mobility_detach(&mobility); /* [mig] */
	agd_server_destroy(&the_server);
	agd_log_close();
	agd_config_free(&cfg);
	return rc == 0 ? 0 : 1;
}
