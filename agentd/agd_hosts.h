/*
 * agd_hosts.h: the cluster's registry of hosts, kept by the daemon the
 * config names as directory (`[peer] directory = HOST[@ENDPOINT]`;
 * docs/protocol.md, "Host registry").
 *
 * Every other daemon sends REGISTER(its name, its peer endpoint) to the
 * directory at start and every `[peer] register_interval`; the directory
 * records the host (the name is the authenticated sender's, never the
 * message's claim), and answers HOST_LIST: every registered host with its
 * endpoint, its public key as the directory's trusted-hosts list has it,
 * and how long ago it last registered. A member learns the endpoints of
 * hosts whose key matches its own trusted-hosts list (ops->learn): that is
 * how it finds its peers without being told each one. Keys never come to
 * be trusted through the registry.
 *
 * The registry lives in memory: a restarted directory knows every live host
 * again within one register_interval.
 *
 * Thread-safety: the dispatcher owns an agd_hosts and calls everything but
 * agd_hosts_names, which any thread may call (a mutex guards the view).
 */
#ifndef AGD_HOSTS_H
#define AGD_HOSTS_H

#include "agd_config.h"
#include "agd_json.h"
#include "agd_wire.h"

#include <stddef.h>
#include <stdint.h>

#define AGD_HOSTS_MAX 256        /* hosts in the registry */
#define AGD_HOSTS_KEY_HEX 64     /* hex digits of a public key */
#define AGD_HOSTS_EP_MAX 255     /* bytes of an endpoint */

struct agd_hosts_ops {
	/* Sends m to host; 0 or a negative code. */
	int (*send)(void *ud, const char *host, const struct agd_wire_msg *m);
	/* host listens at endpoint (remember it, dial it when needed). */
	void (*learn)(void *ud, const char *host, const char *endpoint);
	/* The hex public key the trusted-hosts list has for host: 0, or -1
	 * when the host is not trusted here. */
	int (*key)(void *ud, const char *host, char hex[AGD_HOSTS_KEY_HEX + 1]);
};

struct agd_hosts;

/* cfg (borrowed, outlives it) names this host, the directory and the
 * register interval; `endpoint` (copied) is what this host tells others to
 * dial. Returns 0 or AGD_ERR_NOMEM. */
int agd_hosts_new(const struct agd_config *cfg, const char *endpoint, const struct agd_hosts_ops *ops,
		  void *ud, struct agd_hosts **out);
void agd_hosts_destroy(struct agd_hosts **h);

/* Whether this host is the directory. */
int agd_hosts_is_directory(const struct agd_hosts *h);

/* Handles REGISTER and HOST_LIST: 1 if m was one of those, else 0. */
int agd_hosts_input(struct agd_hosts *h, const char *from, const struct agd_wire_msg *m, uint64_t now_ms);

/* Registers with the directory when due (at once after new). */
void agd_hosts_tick(struct agd_hosts *h, uint64_t now_ms);

/* Writes the `hosts` control reply's members: "host", "directory",
 * "hosts": [{"name", "endpoint", "key", "age_ms", "alive"}...], this host
 * first. */
void agd_hosts_json(struct agd_hosts *h, uint64_t now_ms, struct agd_jw *w);

/*
 * The hosts of the cluster as the registry has them, live ones only (heard
 * from within three register intervals), this host first: copies at most
 * max names and returns how many; 0 when there is no registry view (no
 * directory configured, or no list received yet). Any thread.
 */
size_t agd_hosts_names(struct agd_hosts *h, char (*names)[AGD_WIRE_NAME_MAX + 1], size_t max);

#endif
