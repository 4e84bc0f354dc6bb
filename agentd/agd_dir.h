/*
 * agd_dir.h: finding agents that move, and delivering messages to them
 * exactly once (docs/protocol.md, "Location and delivery").
 *
 * Location. Every agent has a home host. A host an agent leaves keeps a
 * forwarding pointer (agd_xfer writes it at the commit); the host it lands
 * on tells its home, and the cluster's directory host when one is
 * configured, with MOVED(agent, epoch, host). The home (and the directory)
 * keep the newest location as a forwarding pointer of their own, so a
 * chain of pointers always ends where the agent is. LOCATE asks one host;
 * the answer is "here", "try there" (a pointer), "in flight here" or "not
 * known"; the asker follows at most AGD_DIR_HOPS_MAX pointers.
 *
 * Delivery. A message gets a 64-bit random id at its sender. DELIVER goes
 * to the host the sender believes holds the agent; that host
 *   - hands it to the runtime and answers DELIVERED(code 0) if the agent
 *     lives there, unless the id is among the ids it already delivered to
 *     that agent (then it only answers again: none twice);
 *   - holds it while the agent is in flight to or from that host, and
 *     answers when the transfer has settled (none lost);
 *   - answers MOVED(code 1, host) if it holds a forwarding pointer, so the
 *     sender tries there, or NOTFOUND (code < 0).
 * The sender retries with the same id until it gets an answer or its
 * deadline passes. The ids delivered to an agent travel with it
 * (agd_dir_export_seen / agd_dir_import_seen, carried in TRANSFER).
 *
 * Thread-safety: none; the dispatcher thread owns an agd_dir.
 */
#ifndef AGD_DIR_H
#define AGD_DIR_H

#include "agd_store.h"
#include "agd_wire.h"

#include <stddef.h>
#include <stdint.h>

#define AGD_DIR_HOPS_MAX 16  /* pointers followed before giving up */
#define AGD_DIR_SEEN_MAX 256 /* message ids remembered per agent */

/* Codes of LOCATED and DELIVERED (the wire's `code`). */
enum agd_dir_code {
	AGD_DIR_HERE = 0,        /* lives here / delivered */
	AGD_DIR_MOVED = 1,       /* try `host` */
	AGD_DIR_INFLIGHT = 2,    /* LOCATED only: in flight here; ask again */
	AGD_DIR_NOTFOUND = -1,   /* not known here */
	AGD_DIR_ENDED = -2,      /* known, but finished, failed or killed */
	AGD_DIR_REFUSED = -3,    /* the runtime refused it (mailbox full...) */
	AGD_DIR_TIMEOUT = -4,    /* sender side: no answer in time */
	AGD_DIR_TOOFAR = -5,     /* sender side: too many hops */
};

const char *agd_dir_strerror(int code);

/* What this host knows of an agent right now. */
enum agd_dir_where {
	AGD_WHERE_UNKNOWN,  /* nothing */
	AGD_WHERE_LIVE,     /* it lives here */
	AGD_WHERE_LEAVING,  /* a transfer away from here is under way */
	AGD_WHERE_ARRIVING, /* stored here, not yet activated */
	AGD_WHERE_FORWARD,  /* a pointer: host, epoch */
	AGD_WHERE_ENDED,    /* it ended here */
};

struct agd_dir_ops {
	int (*send)(void *ud, const char *host, const struct agd_wire_msg *m);
	/* Hands a message to agent `agent` living here. 0, AGD_DIR_INFLIGHT
	 * (it is being suspended for a transfer: hold the message until
	 * agd_dir_settled), or negative (refused: mailbox full, ended). */
	int (*deliver)(void *ud, const char *agent, const char *from_host, const uint8_t *data,
		       size_t len);
	/* Sender side: how a DELIVER ended (code: AGD_DIR_HERE or < 0). May
	 * be NULL. */
	void (*sent)(void *ud, uint64_t msgid, const char *agent, int code, const char *host);
	/* LOCATE finished (code AGD_DIR_HERE with host, or < 0). May be NULL. */
	void (*located)(void *ud, uint64_t corr, const char *agent, int code, const char *host,
			uint64_t epoch);
};

/* [call] What a directory does with CALLs (agd_dir_set_call_ops; the same
 * ud as its agd_dir_ops). Without them, calls are refused. */
struct agd_dir_call_ops {
	/* Hands a CALL to agent `agent` living here (caller_host and corr say
	 * where its REPLY goes). Same results as agd_dir_ops.deliver. */
	int (*call)(void *ud, const char *agent, const char *caller_host, uint64_t corr,
		    const char *method, const uint8_t *data, size_t len);
	/* Caller side: how a CALL's delivery ended (AGD_DIR_HERE: it is queued
	 * at `host`, the REPLY will follow; or < 0). May be NULL. */
	void (*called)(void *ud, uint64_t corr, const char *agent, int code, const char *host);
};

struct agd_dir_cfg {
	const char *host;        /* this host */
	const char *directory;   /* the cluster's directory host, or NULL */
	struct agd_store *store; /* borrowed */
	uint64_t timeout_ms;     /* sender deadline per message; 0: 10000 */
	uint64_t retry_ms;       /* resend interval; 0: 500 */
};

struct agd_dir;

int agd_dir_new(const struct agd_dir_cfg *cfg, const struct agd_dir_ops *ops, void *ud,
		struct agd_dir **out);
void agd_dir_destroy(struct agd_dir **d);

/* [call] Sets (copies) the call operations. */
void agd_dir_set_call_ops(struct agd_dir *d, const struct agd_dir_call_ops *ops);

/* What the store says of `agent` here (host/epoch set for FORWARD). */
enum agd_dir_where agd_dir_where(struct agd_dir *d, const char *agent, char *host, size_t host_len,
				 uint64_t *epoch);

/*
 * Sends data (copied) to agent, wherever it is: first where this host's
 * store points (or locally), else `hint` (its home, say), else the
 * directory. The outcome comes through ops->sent. Returns 0 with *msgid
 * set, or a negative agd_dir_code / AGD_DIR_NOTFOUND when there is nowhere
 * to start.
 */
int agd_dir_send(struct agd_dir *d, const char *agent, const uint8_t *data, size_t len,
		 const char *hint, uint64_t now_ms, uint64_t *msgid);

/* [call] Sends a CALL of `method` with args (copied) to agent, routed,
 * held and deduplicated exactly like agd_dir_send's DELIVER (the callee's
 * seen ids cover both); corr is the caller's call id, carried for the
 * REPLY. Gives up after timeout_ms (0: the directory's timeout). The
 * outcome of the delivery comes through ops->called. Returns 0 with
 * *msgid set, or as agd_dir_send. */
int agd_dir_call(struct agd_dir *d, const char *agent, const char *method, uint64_t corr,
		 const uint8_t *data, size_t len, const char *hint, uint64_t now_ms,
		 uint64_t timeout_ms, uint64_t *msgid);

/* Starts a LOCATE as agd_dir_send would route; answers via ops->located.
 * Returns 0 with *corr set, or AGD_DIR_NOTFOUND. */
int agd_dir_locate(struct agd_dir *d, const char *agent, const char *hint, uint64_t now_ms,
		   uint64_t *corr);

/* Handles LOCATE, LOCATED, DELIVER, DELIVERED and MOVED: returns 1 if the
 * message was one of those, else 0. */
int agd_dir_input(struct agd_dir *d, const char *from, const struct agd_wire_msg *m, uint64_t now_ms);

/* An agent's local state changed (it arrived, left, or stayed after a
 * failed transfer): answers the messages held for it. Call after every
 * xfer activate/done. */
void agd_dir_settled(struct agd_dir *d, const char *agent, uint64_t now_ms);

/* An agent arrived here at `epoch`: tells its home and the directory. */
void agd_dir_arrived(struct agd_dir *d, const char *agent, const char *home, uint64_t epoch);

/* The ids delivered to `agent` here, as bytes for the TRANSFER (malloc'd
 * into *out, the caller frees; *len may be 0), and their import at the
 * target. Import returns 0 or AGD_DIR_REFUSED for malformed bytes. */
int agd_dir_export_seen(struct agd_dir *d, const char *agent, uint8_t **out, size_t *len);
/* The agent left for good (committed): drop its ids here; later resends
 * are answered MOVED and the target, which imported them, answers. */
void agd_dir_forget(struct agd_dir *d, const char *agent);
int agd_dir_import_seen(struct agd_dir *d, const char *agent, const uint8_t *in, size_t len);

/* Resends and deadlines. Returns ms until the next is due (-1: none). */
int64_t agd_dir_tick(struct agd_dir *d, uint64_t now_ms);

/* Messages this host still tries to deliver, and holds for agents in
 * flight. */
size_t agd_dir_pending(const struct agd_dir *d);
size_t agd_dir_held(const struct agd_dir *d);

#endif
