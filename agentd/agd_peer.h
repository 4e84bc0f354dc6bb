/*
 * agd_peer.h: the daemon-to-daemon channel. All of the daemon's ZeroMQ for
 * peers lives here (the control channel is agentctl's, elsewhere).
 *
 * One ROUTER socket, a CURVE server, receives from every peer; one DEALER
 * socket per known peer, a CURVE client pinned to that peer's server key,
 * sends to it. Who sent a message is what authentication says, never what
 * the message claims: on the ROUTER the User-Id that the ZAP handler
 * (agd_zap) gave the connection, on a DEALER the host it was opened to.
 * Frames are decoded by agd_wire (docs/protocol.md, "Transport").
 *
 * Invariants:
 * - The ROUTER sets ZMQ_ZAP_DOMAIN and ZMQ_ZAP_ENFORCE_DOMAIN: with no ZAP
 *   handler the handshake fails. A frame without a User-Id (ZAP did not
 *   run) is dropped before it is decoded.
 * - A malformed, oversized or unknown message is logged and answered with
 *   an ERROR message (when it came in on the ROUTER); it never reaches the
 *   handler and never stops the loop. Frames over maxmsgsize make libzmq
 *   drop the connection.
 * - Sends never block: a peer whose queue (sndhwm messages) is full gets
 *   AGD_PEER_ERR_AGAIN.
 *
 * Thread-safety: one thread (the dispatcher) owns a struct agd_peer and
 * calls every function on it.
 */
#ifndef AGD_PEER_H
#define AGD_PEER_H

#include "agd_wire.h"

#include <stddef.h>
#include <stdint.h>

#define AGD_PEER_KEY_LEN 32      /* binary CURVE key */
#define AGD_PEER_MAX 256         /* most peers one daemon dials */

enum agd_peer_err {
	AGD_PEER_OK = 0,
	AGD_PEER_ERR_NOMEM = -1,   /* out of memory */
	AGD_PEER_ERR_ZMQ = -2,     /* a ZeroMQ call failed (errno kept) */
	AGD_PEER_ERR_ARG = -3,     /* bad argument */
	AGD_PEER_ERR_UNKNOWN = -4, /* no route to that host */
	AGD_PEER_ERR_AGAIN = -5,   /* that peer's send queue is full */
	AGD_PEER_ERR_WIRE = -6,    /* the message does not encode */
	AGD_PEER_ERR_FULL = -7,    /* too many peers */
};

const char *agd_peer_strerror(int code);

struct agd_peer_cfg {
	const char *host;          /* this daemon's name (sent in HELLO) */
	const char *bind;          /* ROUTER endpoint, e.g. tcp://127.0.0.1:7500 */
	const uint8_t *public_key; /* this host's CURVE public key (32 bytes) */
	const uint8_t *secret_key; /* and secret key (copied to locked memory) */
	int sndhwm;                /* messages queued per peer; 0: 1000 */
	int64_t maxmsgsize;        /* largest frame accepted; 0: AGD_WIRE_FRAME_MAX + 64 */
	int handshake_ms;          /* handshake deadline; 0: 3000 */
	const char *advertise;     /* endpoint peers should dial us at (sent in
				      HELLO); NULL: the bound endpoint */
	int fd;                    /* a listening socket systemd passed for
				      `bind` (adopted with ZMQ_USE_FD); <= 0:
				      none (systemd's start at 3, and a zeroed
				      config must mean none) */
};

/* Called when a peer's HELLO names the endpoint it can be dialled at (the
 * peer is authenticated; the endpoint is its claim). */
typedef void (*agd_peer_hello_fn)(void *ud, const char *host, const char *endpoint);

/* Called for every well-formed message that is not HELLO. `from` is the
 * authenticated sender; m and its blobs live only during the call. */
typedef void (*agd_peer_handler)(void *ud, const char *from, const struct agd_wire_msg *m);

struct agd_peer;

struct agd_peer_stats {
	uint64_t received; /* messages handed to the handler */
	uint64_t refused;  /* messages refused (malformed, unauthenticated) */
	uint64_t sent;     /* messages sent */
};

/* Creates the ROUTER bound on cfg->bind in context zctx (borrowed). The ZAP
 * handler must be bound in the same context (agd_zap_new) for anyone to get
 * in. Sets *out. Returns 0 or a negative agd_peer_err. */
int agd_peer_new(void *zctx, const struct agd_peer_cfg *cfg, agd_peer_handler handler, void *ud,
		 struct agd_peer **out);

/* Closes every socket, wipes the secret key, frees; NULL-safe; nulls *p. */
void agd_peer_destroy(struct agd_peer **p);

/* The endpoint the ROUTER actually bound (with the port resolved when the
 * config said tcp://127.0.0.1:*). Borrowed, valid until destroy. */
const char *agd_peer_endpoint(const struct agd_peer *p);

/* Opens a DEALER to `host` at `endpoint`, pinned to its server key, and
 * queues a HELLO. Adding a host again replaces its socket. Returns 0 or a
 * negative code. */
int agd_peer_add(struct agd_peer *p, const char *host, const char *endpoint,
		 const uint8_t server_key[AGD_PEER_KEY_LEN]);

/* Whether a route to `host` exists (dialled, or heard from on the ROUTER). */
int agd_peer_known(const struct agd_peer *p, const char *host);

/* Whether this host has a DEALER of its own to `host`. */
int agd_peer_dialled(const struct agd_peer *p, const char *host);

/* Sends m to host: through its DEALER, or else back through the ROUTER to
 * the connection it was last heard from. Never blocks. Returns 0,
 * AGD_PEER_ERR_UNKNOWN, AGD_PEER_ERR_AGAIN, AGD_PEER_ERR_WIRE or
 * AGD_PEER_ERR_ZMQ; while held (below), 0 once kept, or AGD_PEER_ERR_NOMEM. */
int agd_peer_send(struct agd_peer *p, const char *host, const struct agd_wire_msg *m);

/*
 * Holding messages back. While held, agd_peer_send checks the route and
 * encodes as usual but keeps a copy instead of sending it; release sends
 * the kept ones in order, drop discards them. For a group commit
 * (agd_store_group_begin): a message must not leave before the writes it
 * reports are durable. release calls before(ud, type) ahead of each
 * message and after(ud, type, rc) once it went or failed (either may be
 * NULL), so the caller's test points and logs fire when a message really
 * goes. Returns the number of messages that could not be sent.
 */
typedef void (*agd_peer_before_fn)(void *ud, int type);
typedef void (*agd_peer_after_fn)(void *ud, const char *host, int type, int rc);

void agd_peer_hold(struct agd_peer *p);
/* Bytes kept so far (0 when not held): a holder bounds its memory by it. */
size_t agd_peer_held_bytes(const struct agd_peer *p);
size_t agd_peer_release(struct agd_peer *p, agd_peer_before_fn before, agd_peer_after_fn after,
			void *ud);
void agd_peer_drop(struct agd_peer *p);

/* Sockets to poll for ZMQ_POLLIN (the ROUTER and every DEALER); writes at
 * most max and returns how many there are. The set changes after
 * agd_peer_add. */
size_t agd_peer_sockets(const struct agd_peer *p, void **socks, size_t max);

/* Reads and dispatches the messages waiting on sock (one of the above), at
 * most AGD_PEER_READ_MAX, so that one busy peer cannot starve the rest of
 * the loop. Returns the number read, or a negative code. */
#define AGD_PEER_READ_MAX 256
int agd_peer_readable(struct agd_peer *p, void *sock);

/* The same, at most max messages (a group commit's share). */
int agd_peer_read(struct agd_peer *p, void *sock, int max);

/* Polls all sockets for up to timeout_ms and dispatches what arrived.
 * Returns the number of messages read, or a negative code. */
int agd_peer_poll(struct agd_peer *p, int timeout_ms);

void agd_peer_stats(const struct agd_peer *p, struct agd_peer_stats *out);

/* Sets the HELLO callback (NULL removes it). */
void agd_peer_on_hello(struct agd_peer *p, agd_peer_hello_fn fn, void *ud);

#endif
