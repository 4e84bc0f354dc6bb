/*
 * agd_zap.h: the daemon's ZAP handler (ZeroMQ RFC 27), which decides who
 * may complete a CURVE handshake with the daemon's server sockets.
 *
 * It binds a REP socket on inproc://zeromq.zap.01 in the daemon's ZeroMQ
 * context and answers each request: 200 with the host name as User-Id when
 * the mechanism is CURVE and the client's public key is trusted for the
 * request's domain; 400 otherwise (NULL and PLAIN clients included).
 *
 * Fail closed: the server sockets (agd_peer) set ZMQ_ZAP_DOMAIN and
 * ZMQ_ZAP_ENFORCE_DOMAIN, so that when no handler is bound libzmq refuses
 * the handshake instead of admitting everyone; and agd_peer drops any frame
 * that arrives without a User-Id, which only this handler sets.
 *
 * Thread-safety: the trust list is guarded by a mutex, so agd_zap_trust and
 * agd_zap_untrust may be called from any thread while the handler serves.
 * Serve either with agd_zap_start (its own thread) or by polling
 * agd_zap_socket from one thread with agd_zap_serve_one, never both.
 */
#ifndef AGD_ZAP_H
#define AGD_ZAP_H

#include <stddef.h>
#include <stdint.h>

/* The ZAP domain of the daemon-to-daemon sockets. */
#define AGD_ZAP_DOMAIN_PEER "agentd.peer"

/* Binary CURVE public keys are 32 bytes. */
#define AGD_ZAP_KEY_LEN 32

/* Longest user id (host name) the handler hands out. */
#define AGD_ZAP_USER_MAX 64

/* Most trusted keys one handler holds. */
#define AGD_ZAP_TRUST_MAX 1024

enum agd_zap_err {
	AGD_ZAP_OK = 0,
	AGD_ZAP_ERR_NOMEM = -1,  /* out of memory */
	AGD_ZAP_ERR_ZMQ = -2,    /* a ZeroMQ call failed (errno kept) */
	AGD_ZAP_ERR_ARG = -3,    /* bad argument */
	AGD_ZAP_ERR_FULL = -4,   /* trust list full */
	AGD_ZAP_ERR_THREAD = -5, /* the serving thread could not start */
};

const char *agd_zap_strerror(int code);

struct agd_zap;

/* Counters, for tests and status. */
struct agd_zap_stats {
	uint64_t allowed;   /* requests answered 200 */
	uint64_t denied;    /* requests answered 400 */
	uint64_t malformed; /* requests that were not valid ZAP */
};

/* Binds the handler in ZeroMQ context zctx (borrowed; must outlive the
 * handler). Only one handler can exist per context. Sets *out on success.
 * Returns 0, AGD_ZAP_ERR_ZMQ (e.g. the address is taken) or
 * AGD_ZAP_ERR_NOMEM. */
int agd_zap_new(void *zctx, struct agd_zap **out);

/* Stops the thread if started, closes the socket, frees; NULL-safe; nulls
 * *zap. */
void agd_zap_destroy(struct agd_zap **zap);

/* Trusts a CURVE public key (32 bytes) for `domain`, answering with `user`
 * as User-Id. Trusting a known key again replaces its user. Returns 0,
 * AGD_ZAP_ERR_ARG or AGD_ZAP_ERR_FULL. */
int agd_zap_trust(struct agd_zap *zap, const char *domain, const uint8_t key[AGD_ZAP_KEY_LEN],
		  const char *user);

/* Forgets a key for a domain. Returns 0, or AGD_ZAP_ERR_ARG if unknown. */
int agd_zap_untrust(struct agd_zap *zap, const char *domain, const uint8_t key[AGD_ZAP_KEY_LEN]);

/* Serves requests on a thread of its own until agd_zap_destroy. */
int agd_zap_start(struct agd_zap *zap);

/* For a dispatcher that polls: the REP socket, and one step of service
 * (reads one request if there is one, answers it; never blocks). Returns 1
 * if a request was handled, 0 if none was waiting, or a negative code. */
void *agd_zap_socket(struct agd_zap *zap);
int agd_zap_serve_one(struct agd_zap *zap);

/* A snapshot of the counters. */
void agd_zap_stats(struct agd_zap *zap, struct agd_zap_stats *out);

#endif
