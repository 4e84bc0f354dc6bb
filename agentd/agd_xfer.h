/*
 * agd_xfer.h: the two-phase transfer protocol that moves (push, pull) or
 * copies (clone) an agent between daemons exactly once (docs/protocol.md,
 * "Transfer").
 *
 * The source coordinates. For an attempt to move agent X to host T:
 *
 *   source                                  target
 *   epoch' = row epoch + 1, and X's row
 *   (state, "migrating", epoch') written
 *   durably (the store never lowers a
 *   row's epoch)
 *   OFFER(X, epoch', segment hash)   ---->  segment cached?  no: GET_SEGMENT
 *                                    <----  ... SEGMENT ...  (code on demand)
 *                                    <----  ACCEPT(X, epoch') or REFUSE
 *   TRANSFER(X, epoch', state, res)  ---->  X stored durably, arriving
 *                                    <----  COMMITTED(X, epoch')   (the ACK)
 *   X's row deleted, forwarding
 *   pointer (X -> T, epoch') written,
 *   durably, in one transaction: the
 *   commit point
 *   ACTIVATE(X, epoch')              ---->  X runs at T
 *
 * Invariants:
 * - The target never runs an arriving agent before the source has durably
 *   committed; the source never lets the agent run again after it has.
 *   So a timeout or a refusal before the commit point simply resumes X at
 *   the source (done() with an error); after it, the target gets ACTIVATE.
 * - Every attempt has its own epoch, written durably at the source before
 *   the OFFER. A message whose (agent, epoch) is older than what a host
 *   knows (a row or a forwarding pointer with an epoch at least as high) is
 *   stale: refused or ignored, it activates nothing. A duplicate of the
 *   current step is answered again, idempotently.
 * - Crash recovery needs only the stores: a target holding an "arriving"
 *   agent asks its source (COMMITTED again, every retry interval) until the
 *   source answers ACTIVATE (it holds a forwarding pointer to this target at
 *   that epoch) or ABORT (anything else). A source that restarts with X's
 *   row still "migrating" treats the attempt as aborted: X resumes there.
 *
 * The module is pure protocol over a store and wire messages: it sends
 * through ops->send and touches the runtime only through ops callbacks, so
 * two instances can be tested in one process without sockets.
 *
 * Thread-safety: none; one thread (the dispatcher) owns an agd_xfer.
 */
#ifndef AGD_XFER_H
#define AGD_XFER_H

#include "agd_store.h"
#include "agd_wire.h"

#include <stddef.h>
#include <stdint.h>

/* Error codes (negative) of this module; 0 is success. */
enum agd_xfer_err {
	AGD_XFER_OK = 0,
	AGD_XFER_ERR_NOMEM = -300,    /* out of memory */
	AGD_XFER_ERR_ARG = -301,      /* bad argument */
	AGD_XFER_ERR_BUSY = -302,     /* an attempt for this agent is under way */
	AGD_XFER_ERR_TIMEOUT = -303,  /* the target did not answer in time */
	AGD_XFER_ERR_REFUSED = -304,  /* the target refused (reason in why) */
	AGD_XFER_ERR_STORE = -305,    /* the durable store failed */
	AGD_XFER_ERR_SEND = -306,     /* the message could not be sent */
	AGD_XFER_ERR_STALE = -307,    /* a stale epoch */
	AGD_XFER_ERR_NOTFOUND = -308, /* no such agent here */
	AGD_XFER_ERR_SEGMENT = -309,  /* the code segment is missing or not trusted */
};

const char *agd_xfer_strerror(int code);

/* Status words this module writes in the agents table. */
#define AGD_XFER_STATUS_MIGRATING "migrating" /* source: an attempt is under way */
/* Target: stored, not yet activated. The same word as the source's, which
 * the runtime never resumes at start; an arriving row is told from a
 * leaving one by its kv record "xfer.in.<id>" (agd_xfer_arriving). */
#define AGD_XFER_STATUS_ARRIVING "migrating"
#define AGD_XFER_STATUS_RUNNING "running"     /* target: activated; source: aborted */

/* An agent becoming ours (ops->activate). Everything is borrowed for the
 * call. */
struct agd_xfer_arrival {
	const char *id;          /* the agent's id here (the clone's new id) */
	const char *origin;      /* for a clone, the original's id; else id */
	const char *from;        /* the source host */
	const char *home;        /* its home host */
	uint64_t epoch;          /* its epoch from now on */
	int mobility;            /* AGD_MOB_WEAK (start at the entry) or AGD_MOB_STRONG */
	int kind;                /* AGD_KIND_PUSH, PULL or CLONE */
	const uint8_t *segment;  /* code segment hash (stored in the store) */
	const uint8_t *state;    /* persisted state, or the initial data (weak) */
	size_t state_len;        /* bytes */
	const uint8_t *res;      /* resource segment, or NULL */
	size_t res_len;          /* bytes */
	const uint8_t *seen;     /* message ids delivered to it (agd_dir), or NULL */
	size_t seen_len;         /* bytes */
	const uint8_t *log;      /* its log part (agd_logring.h), or NULL: none came,
				  * or a malformed one was dropped */
	size_t log_len;          /* bytes */
};

struct agd_xfer_ops {
	/* Sends m to host. 0 or negative (the attempt then fails or retries). */
	int (*send)(void *ud, const char *host, const struct agd_wire_msg *m);
	/* A signed segment arrived: verify it against the trust store and put
	 * it in the store; set hash. 0 or negative (why filled). */
	int (*segment_in)(void *ud, const uint8_t *bytes, size_t len, uint8_t hash[AGD_WIRE_HASH_LEN],
			  char *why, size_t why_len);
	/* Target: an agent is ours now; run it. Its row (this state, status
	 * "running") and its log part (under agd_logring_key) are in the store,
	 * committed: the callee need not write them again. Non-zero: it could
	 * not be started (logged by the callee); its row stays for the next
	 * start, which runs it. */
	int (*activate)(void *ud, const struct agd_xfer_arrival *a);
	/* Source: an attempt ended. rc 0: committed, the agent now lives at
	 * host (forget it here, except for a clone); rc < 0: it stays here
	 * (resume it) and why says why. */
	void (*done)(void *ud, const char *agent, int rc, const char *host, uint64_t epoch,
		     const char *why);
	/* Source: a host asks for agent (PULL_REQUEST; mobility as there,
	 * AGD_MOB_STRONG_ONLY included). The callee suspends it and calls
	 * agd_xfer_push; a refusal returns non-zero and may say why (the
	 * asker's user reads it). NULL refuses every pull. */
	int (*pull)(void *ud, const char *agent, const char *to, int mobility, char *why,
		    size_t why_len);
};

struct agd_xfer_cfg {
	const char *host;        /* this host's name */
	struct agd_store *store; /* borrowed; outlives the xfer */
	uint64_t timeout_ms;     /* source: an attempt's deadline; 0: 5000 */
	uint64_t retry_ms;       /* target: how often to ask about an arriving agent; 0: 1000 */
};

struct agd_xfer;

/* Options of an agd_xfer, set after agd_xfer_new (none by default). */
enum agd_xfer_option {
	/* The commits the exactly-once rules rest on (the source's epoch
	 * before it is sent, the target's stored arrival before its ACK, the
	 * source's commit point) use synchronous=NORMAL instead of FULL: in
	 * the WAL when the message goes, which survives kill -9 of the
	 * daemon but not a power cut or a kernel crash ([peer] durability =
	 * crash, docs/config.md). The other commits of this module never
	 * need more: lost, they are redone from the stores and the
	 * questions the target asks. */
	AGD_XFER_OPT_CRASH_DURABLE = 1,
};

/* Sets the options (an OR of enum agd_xfer_option), replacing the old. */
void agd_xfer_set_options(struct agd_xfer *x, unsigned options);

/* Creates the state machine. Returns 0 or a negative code; *out is the
 * caller's (agd_xfer_destroy). */
int agd_xfer_new(const struct agd_xfer_cfg *cfg, const struct agd_xfer_ops *ops, void *ud,
		 struct agd_xfer **out);
void agd_xfer_destroy(struct agd_xfer **x);

/*
 * After a (re)start: reads the store and schedules a question to the source
 * of every "arriving" agent, and marks every "migrating" row (an attempt the
 * crash aborted) "running" again. Returns the number of arriving agents, or
 * a negative code.
 */
int agd_xfer_recover(struct agd_xfer *x, uint64_t now_ms);

/* What agd_xfer_push moves. Borrowed for the call (copied). */
struct agd_xfer_req {
	const char *agent;       /* its id here */
	const char *to;          /* target host */
	int kind;                /* AGD_KIND_PUSH, PULL or CLONE */
	int mobility;            /* AGD_MOB_WEAK or AGD_MOB_STRONG */
	const char *clone_id;    /* CLONE: the new id at the target */
	const uint8_t *state;    /* persisted state (strong) or initial data (weak) */
	size_t state_len;
	const uint8_t *res;      /* resource segment, or NULL */
	size_t res_len;
	const uint8_t *bindings; /* resource bindings summary for the OFFER, or NULL */
	size_t bindings_len;
	const uint8_t *seen;     /* message ids delivered to it (agd_dir_export_seen), or NULL */
	size_t seen_len;
	const uint8_t *log;      /* its log part (agd_rt_log_export), or NULL */
	size_t log_len;          /* at most AGD_LOGRING_BYTES */
};

/*
 * Source: starts an attempt. The agent's row must be in the store (its
 * segment, home and epoch are read from it) and the agent suspended by the
 * caller. Writes the new epoch durably, sends the OFFER. The outcome comes
 * through ops->done (never from inside this call). Returns 0,
 * AGD_XFER_ERR_BUSY, AGD_XFER_ERR_NOTFOUND, AGD_XFER_ERR_ARG or
 * AGD_XFER_ERR_STORE; on error nothing was sent and done() is not called.
 */
int agd_xfer_push(struct agd_xfer *x, const struct agd_xfer_req *req, uint64_t now_ms);

/* Target side of a pull: asks `from` to send agent here. Fire and forget:
 * the agent arrives through the usual transfer, or not. mobility:
 * AGD_MOB_WEAK, AGD_MOB_STRONG (strong when the agent's manifest allows
 * it, else weak) or AGD_MOB_STRONG_ONLY (strong, or refused). */
int agd_xfer_pull(struct agd_xfer *x, const char *from, const char *agent, int mobility);

/* Source side of a pull: the request of host `to` for agent, accepted
 * (ops->pull returned 0), failed before any attempt began (the agent could
 * not be suspended, or the attempt not started). Sends `to` a REFUSE with
 * why, which ends its pull (agd_xfer_pull_info: refused). An attempt that
 * fails later says so itself: its ABORT carries the reason. */
int agd_xfer_pull_failed(struct agd_xfer *x, const char *to, const char *agent, int code,
			 const char *why);

/* Handles one protocol message from `from` (authenticated). Messages of
 * other modules (LOCATE, DELIVER, CALL, RES_OP...) return 0 untouched:
 * returns 1 if the message was the transfer protocol's, 0 if not. */
int agd_xfer_input(struct agd_xfer *x, const char *from, const struct agd_wire_msg *m,
		   uint64_t now_ms);

/* Deadlines and retries. Returns ms until the next one is due (-1: none). */
int64_t agd_xfer_tick(struct agd_xfer *x, uint64_t now_ms);

/* Whether agent's row here is an arrival not yet activated (1), or not (0). */
int agd_xfer_arriving(struct agd_store *st, const char *agent);

/* Number of attempts under way at the source, for status and tests. */
size_t agd_xfer_pending(const struct agd_xfer *x);

/* What this host's transfers have come to since it started (the control
 * command `transfers`; bench/hop counts hops by them). */
struct agd_xfer_counts {
	uint64_t moved_out;  /* source: moves (push, pull) past the commit point */
	uint64_t cloned_out; /* source: clones past the commit point */
	uint64_t failed;     /* source: attempts that ended with the agent still here */
	uint64_t arrived;    /* target: agents activated here (moves and clones) */
};

void agd_xfer_counts(const struct agd_xfer *x, struct agd_xfer_counts *out);

/* Progress of the attempt under way for agent at this source (control
 * `transfers`, agentctl's progress display). Strings are borrowed until
 * the next call into the module. Returns 0 or AGD_XFER_ERR_NOTFOUND. */
struct agd_xfer_info {
	const char *to;          /* target host */
	const char *phase;       /* "offered" (waiting for ACCEPT, or the
				    target fetching the code) or "transferring"
				    (TRANSFER sent, waiting for COMMITTED) */
	int kind;                /* AGD_KIND_* */
	int mobility;            /* AGD_MOB_* */
	uint64_t epoch;          /* the attempt's epoch */
	size_t bytes;            /* state and resource segment sent */
	uint64_t elapsed_ms;     /* since the attempt began */
};
int agd_xfer_info(const struct agd_xfer *x, const char *agent, uint64_t now_ms,
		  struct agd_xfer_info *out);

/* Pulls this host asked for (agd_xfer_pull), the last 32: whether the
 * agent arrived or the source refused (with its reason). A pull the source
 * accepted but whose transfer then failed stays "requested". */
enum { AGD_XFER_PULL_REQUESTED = 1, AGD_XFER_PULL_REFUSED, AGD_XFER_PULL_ARRIVED };
struct agd_xfer_pull_info {
	const char *from;        /* the host asked */
	int state;               /* AGD_XFER_PULL_* */
	const char *why;         /* REFUSED: the source's reason */
	uint64_t elapsed_ms;     /* since it was asked */
};
int agd_xfer_pull_info(const struct agd_xfer *x, const char *agent, uint64_t now_ms,
		       struct agd_xfer_pull_info *out);
const char *agd_xfer_pull_state_name(int state);

#endif
