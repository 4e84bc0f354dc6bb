/*
 * agd_err.h: error codes of the agd runtime (the daemon library). Functions
 * that can fail return 0 or one of these; agd_strerror names them.
 */
#ifndef AGD_ERR_H
#define AGD_ERR_H

enum agd_err {
	AGD_OK = 0,
	AGD_ERR_NOMEM = -1,       /* out of memory */
	AGD_ERR_ARG = -2,         /* bad argument or request */
	AGD_ERR_NOTFOUND = -3,    /* no such agent or segment */
	AGD_ERR_FULL = -4,        /* a mailbox or queue is full */
	AGD_ERR_TOOBIG = -5,      /* a message or body over its cap */
	AGD_ERR_STATE = -6,       /* the agent is not in a state that allows it */
	AGD_ERR_UNTRUSTED = -7,   /* bad signature or key not trusted */
	AGD_ERR_SEGMENT = -8,     /* the segment is malformed */
	AGD_ERR_LUA = -9,         /* Lua failed (compile or run) */
	AGD_ERR_UNAVAILABLE = -10, /* a feature this build or config lacks */
	AGD_ERR_STORE = -11,      /* the durable store failed */
	AGD_ERR_IO = -12,         /* a file or socket failed */
	AGD_ERR_STOPPING = -13,   /* the daemon is shutting down */
	AGD_ERR_TIMEOUT = -14,    /* no answer in time (a remote call or operation) */
	AGD_ERR_REMOTE = -15,     /* the other side answered with an error */
	AGD_ERR_BUSY = -16,       /* in use by another process (the store's file) */
};

/* A static string for a code; never NULL. Thread-safe. */
const char *agd_strerror(int code);
/* A short stable name for a code ("notfound", "full"...); never NULL. */
const char *agd_errname(int code);

#endif
