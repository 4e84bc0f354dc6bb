/*
 * agd_config.h: agentd's configuration: an INI-style file (docs/config.md)
 * over built-in defaults.
 *
 * The file is read whole and checked strictly: an unknown section or key, a
 * bad number or a value out of range is an error naming its line, so a typo
 * never silently falls back to a default. [resource ID] sections and the
 * [policy] section are kept as key/value pairs for the resources library,
 * which owns their meaning.
 *
 * Thread-safety: a config is built by main() and read-only afterwards.
 */
#ifndef AGD_CONFIG_H
#define AGD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define AGD_CONFIG_STR_MAX 512
#define AGD_CONFIG_FILE_MAX (1u << 20)  /* largest config file read */
#define AGD_CONFIG_SECTIONS_MAX 256     /* resource sections */
#define AGD_CONFIG_KEYS_MAX 128         /* keys in one free-form section */
#define AGD_CONFIG_PEERS_MAX 256        /* largest max_peers (agd_peer's AGD_PEER_MAX) */

enum agd_isolation {
	AGD_ISOLATION_DAEMON,  /* agents run on the daemon's worker threads */
	AGD_ISOLATION_PROCESS, /* each agent in a forked process with rlimits */
};

enum agd_balance_mode {
	AGD_BALANCE_OFF,  /* this host never pulls agents on its own */
	AGD_BALANCE_PULL, /* when idle, it pulls agents from the busiest peer */
};

enum agd_activation {
	AGD_ACTIVATION_RESIDENT,  /* stays in memory until it ends */
	AGD_ACTIVATION_ON_DEMAND, /* passivated when idle, activated by a message or timer */
};

/* One key = value line of a free-form section. */
struct agd_kv {
	char key[64];                  /* as written, trimmed */
	char value[AGD_CONFIG_STR_MAX]; /* as written, trimmed, quotes removed */
};

/* A free-form section: [resource ID], [policy] or [peers]. */
struct agd_section {
	char name[64];       /* the resource ID (or "policy") */
	struct agd_kv *kv;   /* owned; n entries */
	size_t n;            /* entries */
};

struct agd_config {
	/* [daemon] */
	char host[64];                           /* this host's name */
	char data_dir[AGD_CONFIG_STR_MAX];       /* store, code cache */
	unsigned workers;                        /* worker threads; 0 = one per core */
	enum agd_isolation isolation;            /* in-daemon or process */
	int allow_source;                        /* `run` may take unsigned Lua text (tests only) */
	/* [control] */
	char ctl_tcp[AGD_CONFIG_STR_MAX];        /* tcp:// endpoint, "" = none */
	char ctl_ipc[AGD_CONFIG_STR_MAX];        /* ipc:// endpoint, "" = none */
	/* [peer] */
	char peer_endpoint[AGD_CONFIG_STR_MAX];  /* daemon-to-daemon endpoint, "" = none */
	char host_key[AGD_CONFIG_STR_MAX];       /* host key file */
	char trust_store[AGD_CONFIG_STR_MAX];    /* trusted signing keys */
	char trusted_hosts[AGD_CONFIG_STR_MAX];  /* hosts admitted by CURVE */
	char directory[AGD_CONFIG_STR_MAX];      /* directory host, "" = none */
	char directory_endpoint[AGD_CONFIG_STR_MAX]; /* where it listens ("HOST@ENDPOINT"), "" = learned */
	double register_interval;                /* seconds between registrations with the directory */
	unsigned max_peers;                      /* hosts this one dials at most (<= AGD_CONFIG_PEERS_MAX) */
	int durability;                          /* transfer commits survive: 0 power loss (default),
						    1 a crash of the daemon only (agd_xfer.h) */
	int group_commit;                        /* one store commit per burst of peer messages
						    (agd_mobility.c, on_sock); default on */
	/* [balance] (agd_balance.h) */
	enum agd_balance_mode balance;           /* off or pull */
	uint32_t balance_idle_below;             /* idle: fewer runnable agents than this */
	uint32_t balance_busy_above;             /* a peer is busy with more runnable agents than this */
	double balance_interval;                 /* seconds between rounds */
	uint32_t balance_max_pulls;              /* agents pulled per round at most */
	char balance_agents[AGD_CONFIG_STR_MAX]; /* manifest names that may be pulled from here
						    (comma or space separated); "" = any */
	/* [agents] */
	size_t memory_limit;                     /* bytes per agent */
	uint32_t slice_instructions;             /* instructions per time slice */
	uint64_t instruction_limit;              /* total per agent; 0 = none */
	enum agd_activation activation;          /* default activation policy */
	double passivate_after;                  /* idle seconds before passivation */
	double checkpoint_interval;               /* seconds; 0 = only at passivation/stop */
	uint32_t mailbox_max;                    /* queued messages per agent */
	size_t message_max;                      /* bytes of one encoded message */
	/* [log] */
	char log_file[AGD_CONFIG_STR_MAX];       /* "" = stderr */
	int log_level;                           /* enum agd_log_level */
	/* free-form */
	struct agd_section *resources;           /* owned; nresources entries */
	size_t nresources;                       /* [resource ID] sections */
	struct agd_section policy;               /* [policy] */
	struct agd_section peers;                /* [peers]: host name = peer endpoint, checked */
	/* Not from the file: listening sockets systemd passed (agd_sd.h), set
	 * by main() and adopted instead of the endpoints above. */
	int ctl_fd;                              /* control socket, -1 = none */
	char ctl_fd_endpoint[AGD_CONFIG_STR_MAX]; /* what ctl_fd listens on */
	int peer_fd;                             /* peer socket, -1 = none */
};

/* Fills cfg with the defaults (docs/config.md). Allocates nothing. */
void agd_config_defaults(struct agd_config *cfg);

/* Reads `path` over the current contents of cfg. On error returns a negative
 * errno-style code (-ENOENT, -EINVAL...) and writes "FILE:LINE: what" into
 * err; cfg may be partly updated then and must still be freed. */
int agd_config_load(struct agd_config *cfg, const char *path, char *err, size_t err_len);

/* Same, from text in memory (name is used in messages). */
int agd_config_parse(struct agd_config *cfg, const char *text, size_t len, const char *name,
		     char *err, size_t err_len);

/* Fills in paths derived from data_dir that were left empty. */
void agd_config_finish(struct agd_config *cfg);

/* Writes the effective configuration as a config file. */
void agd_config_print(const struct agd_config *cfg, FILE *f);

/* The value of key in a free-form section, or NULL. */
const char *agd_section_get(const struct agd_section *s, const char *key);

/* Frees the free-form sections; cfg stays valid with none. */
void agd_config_free(struct agd_config *cfg);

#endif
