/*
 * agd_zap.c: the ZAP handler (RFC 27) admitting trusted CURVE keys.
 *
 * Invariants: every request gets exactly one reply (a REP socket must answer
 * before it can read again), and anything but a well-formed CURVE request
 * with a trusted key for its domain is answered 400. A request is read with
 * a cap on its frame count and size; the rest is drained, never trusted.
 */
#include "agd_zap.h"

#include "agd_log.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <zmq.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_FRAMES_MAX 8   /* version..credentials: CURVE sends 7 */
#define ZAP_FIELD_MAX 256  /* longest frame we keep (domain, address...) */
#define DOMAIN_MAX 64

struct trusted {
	char domain[DOMAIN_MAX + 1];      /* ZAP domain it is trusted for */
	uint8_t key[AGD_ZAP_KEY_LEN];     /* CURVE public key */
	char user[AGD_ZAP_USER_MAX + 1];  /* User-Id handed to the socket */
};

struct agd_zap {
	void *sock;                /* REP on inproc://zeromq.zap.01 */
	pthread_mutex_t lock;      /* guards trust, ntrust and stats */
	struct trusted *trust;     /* trusted keys, ntrust of them */
	size_t ntrust;             /* entries in use */
	struct agd_zap_stats stats;/* counters */
	pthread_t thread;          /* the serving thread, if started */
	int started;               /* whether thread runs */
	atomic_int stop;           /* asks the thread to return */
};

const char *agd_zap_strerror(int code)
{
	switch (code) {
	case AGD_ZAP_OK: return "ok";
	case AGD_ZAP_ERR_NOMEM: return "out of memory";
	case AGD_ZAP_ERR_ZMQ: return "zeromq call failed";
	case AGD_ZAP_ERR_ARG: return "invalid argument";
	case AGD_ZAP_ERR_FULL: return "trust list full";
	case AGD_ZAP_ERR_THREAD: return "cannot start the ZAP thread";
	default: return "unknown zap error";
	}
}

int agd_zap_new(void *zctx, struct agd_zap **out)
{
	struct agd_zap *z;
	int linger = 0;

	*out = NULL;
	z = calloc(1, sizeof *z);
	if (z == NULL)
		return AGD_ZAP_ERR_NOMEM;
	z->trust = calloc(AGD_ZAP_TRUST_MAX, sizeof *z->trust);
	if (z->trust == NULL) {
		free(z);
		return AGD_ZAP_ERR_NOMEM;
	}
	pthread_mutex_init(&z->lock, NULL);
	z->sock = zmq_socket(zctx, ZMQ_REP);
	if (z->sock == NULL)
		goto fail;
	zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof linger);
	if (zmq_bind(z->sock, ZAP_ENDPOINT) != 0)
		goto fail;
	*out = z;
	return 0;
fail:
	{
		int e = errno;

		if (z->sock)
			zmq_close(z->sock);
		pthread_mutex_destroy(&z->lock);
		free(z->trust);
		free(z);
		errno = e;
	}
	return AGD_ZAP_ERR_ZMQ;
}

void agd_zap_destroy(struct agd_zap **zap)
{
	struct agd_zap *z;

	if (zap == NULL || *zap == NULL)
		return;
	z = *zap;
	*zap = NULL;
	if (z->started) {
		atomic_store(&z->stop, 1);
		pthread_join(z->thread, NULL);
	}
	zmq_close(z->sock);
	pthread_mutex_destroy(&z->lock);
	free(z->trust);
	free(z);
}

static int check_names(const char *domain, const char *user)
{
	if (domain == NULL || domain[0] == '\0' || strlen(domain) > DOMAIN_MAX)
		return -1;
	if (user != NULL && (user[0] == '\0' || strlen(user) > AGD_ZAP_USER_MAX))
		return -1;
	return 0;
}

/* Index of (domain, key) in the list, or -1. Caller holds the lock. */
static ssize_t find(struct agd_zap *z, const char *domain, const uint8_t *key)
{
	for (size_t i = 0; i < z->ntrust; i++)
		if (sodium_memcmp(z->trust[i].key, key, AGD_ZAP_KEY_LEN) == 0 &&
		    strcmp(z->trust[i].domain, domain) == 0)
			return (ssize_t)i;
	return -1;
}

int agd_zap_trust(struct agd_zap *z, const char *domain, const uint8_t key[AGD_ZAP_KEY_LEN],
		  const char *user)
{
	ssize_t i;
	int rc = 0;

	if (z == NULL || key == NULL || user == NULL || check_names(domain, user) != 0)
		return AGD_ZAP_ERR_ARG;
	pthread_mutex_lock(&z->lock);
	i = find(z, domain, key);
	if (i < 0) {
		if (z->ntrust == AGD_ZAP_TRUST_MAX) {
			rc = AGD_ZAP_ERR_FULL;
			goto out;
		}
		i = (ssize_t)z->ntrust++;
		snprintf(z->trust[i].domain, sizeof z->trust[i].domain, "%s", domain);
		memcpy(z->trust[i].key, key, AGD_ZAP_KEY_LEN);
	}
	snprintf(z->trust[i].user, sizeof z->trust[i].user, "%s", user);
out:
	pthread_mutex_unlock(&z->lock);
	return rc;
}

int agd_zap_untrust(struct agd_zap *z, const char *domain, const uint8_t key[AGD_ZAP_KEY_LEN])
{
	ssize_t i;

	if (z == NULL || key == NULL || check_names(domain, NULL) != 0)
		return AGD_ZAP_ERR_ARG;
	pthread_mutex_lock(&z->lock);
	i = find(z, domain, key);
	if (i >= 0)
		z->trust[i] = z->trust[--z->ntrust];
	pthread_mutex_unlock(&z->lock);
	return i >= 0 ? 0 : AGD_ZAP_ERR_ARG;
}

void *agd_zap_socket(struct agd_zap *z)
{
	return z->sock;
}

void agd_zap_stats(struct agd_zap *z, struct agd_zap_stats *out)
{
	pthread_mutex_lock(&z->lock);
	*out = z->stats;
	pthread_mutex_unlock(&z->lock);
}

/* One received frame, kept only up to ZAP_FIELD_MAX bytes. */
struct field {
	char data[ZAP_FIELD_MAX + 1]; /* NUL-terminated copy */
	size_t len;                   /* real length (may exceed the copy) */
};

static int send_reply(void *sock, const struct field *reqid, const char *code, const char *text,
		      const char *user)
{
	if (zmq_send(sock, "1.0", 3, ZMQ_SNDMORE) < 0 ||
	    zmq_send(sock, reqid->data, reqid->len <= ZAP_FIELD_MAX ? reqid->len : 0, ZMQ_SNDMORE) < 0 ||
	    zmq_send(sock, code, strlen(code), ZMQ_SNDMORE) < 0 ||
	    zmq_send(sock, text, strlen(text), ZMQ_SNDMORE) < 0 ||
	    zmq_send(sock, user, strlen(user), ZMQ_SNDMORE) < 0 ||
	    zmq_send(sock, "", 0, 0) < 0)
		return AGD_ZAP_ERR_ZMQ;
	return 0;
}

int agd_zap_serve_one(struct agd_zap *z)
{
	struct field f[ZAP_FRAMES_MAX];
	size_t n = 0;
	int more = 1, rc;
	char user[AGD_ZAP_USER_MAX + 1] = "";
	const char *why = NULL;
	ssize_t i;

	/* Frames: 0 version, 1 request id, 2 domain, 3 address, 4 routing id,
	 * 5 mechanism, 6.. credentials. */
	while (more) {
		zmq_msg_t part;

		zmq_msg_init(&part);
		if (zmq_msg_recv(&part, z->sock, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
			zmq_msg_close(&part);
			if (n == 0 && errno == EAGAIN)
				return 0;
			return AGD_ZAP_ERR_ZMQ;
		}
		more = zmq_msg_more(&part);
		if (n < ZAP_FRAMES_MAX) {
			size_t len = zmq_msg_size(&part);
			size_t keep = len < ZAP_FIELD_MAX ? len : ZAP_FIELD_MAX;

			memcpy(f[n].data, zmq_msg_data(&part), keep);
			f[n].data[keep] = '\0';
			f[n].len = len;
		}
		n++;
		zmq_msg_close(&part);
	}

	if (n < 6 || n > ZAP_FRAMES_MAX || f[0].len != 3 || memcmp(f[0].data, "1.0", 3) != 0) {
		static const struct field none;

		pthread_mutex_lock(&z->lock);
		z->stats.malformed++;
		pthread_mutex_unlock(&z->lock);
		agd_log(AGD_LOG_WARN, "zap.malformed", "frames=%zu", n);
		rc = send_reply(z->sock, n >= 2 ? &f[1] : &none, "400", "malformed request", "");
		return rc ? rc : 1;
	}
	if (strcmp(f[5].data, "CURVE") != 0)
		why = "mechanism not allowed";
	else if (n != 7 || f[6].len != AGD_ZAP_KEY_LEN)
		why = "bad credentials";
	pthread_mutex_lock(&z->lock);
	if (why == NULL) {
		i = find(z, f[2].data, (const uint8_t *)f[6].data);
		if (i < 0 || f[2].len > DOMAIN_MAX)
			why = "key not trusted";
		else
			memcpy(user, z->trust[i].user, sizeof user);
	}
	if (why == NULL)
		z->stats.allowed++;
	else
		z->stats.denied++;
	pthread_mutex_unlock(&z->lock);

	if (why != NULL) {
		char hex[17] = "";

		if (n == 7 && f[6].len == AGD_ZAP_KEY_LEN)
			sodium_bin2hex(hex, sizeof hex, (const uint8_t *)f[6].data, 8);
		agd_log(AGD_LOG_WARN, "zap.denied", "domain=%.64s mechanism=%.16s address=%.64s key=%s reason=\"%s\"",
			f[2].data, f[5].data, f[3].data, hex[0] ? hex : "-", why);
		rc = send_reply(z->sock, &f[1], "400", why, "");
	} else {
		agd_log(AGD_LOG_DEBUG, "zap.allowed", "domain=%.64s user=%s address=%.64s", f[2].data, user,
			f[3].data);
		rc = send_reply(z->sock, &f[1], "200", "OK", user);
	}
	return rc ? rc : 1;
}

static void *serve(void *arg)
{
	struct agd_zap *z = arg;

	while (!atomic_load(&z->stop)) {
		zmq_pollitem_t it = { z->sock, 0, ZMQ_POLLIN, 0 };
		int rc = zmq_poll(&it, 1, 100);

		if (rc < 0 && zmq_errno() == ETERM)
			break;
		if (rc > 0)
			while (agd_zap_serve_one(z) == 1)
				;
	}
	return NULL;
}

int agd_zap_start(struct agd_zap *z)
{
	if (z->started)
		return AGD_ZAP_ERR_ARG;
	if (pthread_create(&z->thread, NULL, serve, z) != 0)
		return AGD_ZAP_ERR_THREAD;
	z->started = 1;
	return 0;
}
