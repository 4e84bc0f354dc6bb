/*
 * agd_wire.h: the peer wire codec, daemon to daemon (docs/protocol.md,
 * section "Peer messages").
 *
 * A peer message is a multipart ZeroMQ message:
 *   frame 0  header: "AGDP", version (u8), type (u8)             6 bytes
 *   frame 1  body: the type's fields, in a fixed order, big-endian
 *   frame 2+ blobs: bulk bytes (state, segment, payload), as many as the
 *            type declares at that version
 * Versions: a version-2 message differs from version 1 only in a type's
 * optional trailing blobs (TRANSFER's blob 3, the agent's log). The encoder
 * writes version 1 whenever those are empty, so a version-1 peer reads
 * every message but a TRANSFER that carries a log; the decoder reads both.
 * The codec is pure: no sockets, no allocation on decode (a decoded message
 * borrows its strings' and blobs' bytes from the frames), no logging.
 *
 * Invariants:
 * - Magic and version are checked before anything else is read.
 * - Every read is checked against the frame's end; every length and count is
 *   capped (AGD_WIRE_*_MAX); a decoded string holds no NUL byte.
 * - Decoding tells an incomplete message (AGD_WIRE_ERR_TRUNCATED: a frame
 *   missing or ending early) from a broken one (AGD_WIRE_ERR_MALFORMED) and
 *   from one too large (AGD_WIRE_ERR_TOOBIG).
 * - Encoding then decoding gives back the same message (fields the type does
 *   not carry are zero after decoding).
 *
 * Thread-safety: every function touches only what it is given.
 */
#ifndef AGD_WIRE_H
#define AGD_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define AGD_WIRE_MAGIC "AGDP"
#define AGD_WIRE_VERSION 2      /* spoken (HELLO's proto); written when needed */
#define AGD_WIRE_VERSION_MIN 1  /* oldest read */
#define AGD_WIRE_HEADER_LEN 6

/* Caps. A peer sending more is refused; they bound what one message can
 * make a daemon hold. */
#define AGD_WIRE_NAME_MAX 64          /* host names, agent ids, method names */
#define AGD_WIRE_TEXT_MAX 512         /* reasons and error texts */
#define AGD_WIRE_BODY_MAX 4096        /* frame 1 */
#define AGD_WIRE_BLOBS_MAX 4          /* frames after the body */
#define AGD_WIRE_BLOB_MAX (64u << 20) /* one blob: states up to 64 MiB */
#define AGD_WIRE_FRAME_MAX AGD_WIRE_BLOB_MAX /* largest frame (ZMQ_MAXMSGSIZE) */
#define AGD_WIRE_FRAMES_MAX (2 + AGD_WIRE_BLOBS_MAX)
#define AGD_WIRE_HASH_LEN 32          /* BLAKE2b-256 of a code segment */

enum agd_wire_err {
	AGD_WIRE_OK = 0,
	AGD_WIRE_ERR_TRUNCATED = -1, /* a frame is missing or ends early */
	AGD_WIRE_ERR_MALFORMED = -2, /* bad magic, bad field, extra bytes */
	AGD_WIRE_ERR_VERSION = -3,   /* another protocol version */
	AGD_WIRE_ERR_TYPE = -4,      /* unknown message type */
	AGD_WIRE_ERR_TOOBIG = -5,    /* a length or count over its cap */
	AGD_WIRE_ERR_ARG = -6,       /* misuse by the caller (encode side) */
	AGD_WIRE_ERR_NOMEM = -7,     /* out of memory */
};

/* A static string for a code; never NULL. */
const char *agd_wire_strerror(int code);

/* Message types. Values are on the wire: never renumber. */
enum agd_wire_type {
	AGD_MSG_HELLO = 1,         /* corr, proto, host, text (the sender's peer endpoint, may be "") */
	AGD_MSG_ERROR = 2,         /* corr, code, text: reply to a refused frame */
	AGD_MSG_HAVE_SEGMENT = 3,  /* corr, hash */
	AGD_MSG_SEGMENT_YES = 4,   /* corr, hash */
	AGD_MSG_SEGMENT_NO = 5,    /* corr, hash */
	AGD_MSG_GET_SEGMENT = 6,   /* corr, hash */
	AGD_MSG_SEGMENT = 7,       /* corr, hash; blob0 signed segment bytes */
	AGD_MSG_OFFER = 8,         /* corr, agent, epoch, hash, mobility, kind, size, name(new id for clone); blob0 bindings summary */
	AGD_MSG_ACCEPT = 9,        /* corr, agent, epoch */
	AGD_MSG_REFUSE = 10,       /* corr, agent, epoch, code, text */
	AGD_MSG_TRANSFER = 11,     /* corr, host (home), agent, name, epoch, hash, mobility, kind; blob0 state or initial data, blob1 resource segment, blob2 delivered message ids, [version 2] blob3 the agent's log (optional) */
	AGD_MSG_COMMITTED = 12,    /* corr, agent, epoch (the new epoch, at the target) */
	AGD_MSG_ABORT = 13,        /* corr, agent, epoch, code, text */
	AGD_MSG_PULL_REQUEST = 14, /* corr, agent, host (where to send it), mobility */
	AGD_MSG_LOCATE = 15,       /* corr, agent, hops */
	AGD_MSG_LOCATED = 16,      /* corr, agent, epoch, host, hops, code (0 found, <0 not) */
	AGD_MSG_DELIVER = 17,      /* corr, agent, msgid, host (sender); blob0 payload */
	AGD_MSG_DELIVERED = 18,    /* corr, host (where to try, code 1), agent, msgid, code */
	AGD_MSG_CALL = 19,         /* corr (the caller's call id), host (the caller's), agent, msgid, name (method); blob0 arguments */
	AGD_MSG_REPLY = 20,        /* corr (the call id), agent, msgid, code, text; blob0 results */
	AGD_MSG_RES_OP = 21,       /* corr, name (resource), op, msgid; blob0 arguments */
	AGD_MSG_RES_REPLY = 22,    /* corr, msgid, code, text; blob0 results */
	AGD_MSG_MOVED = 23,        /* corr, agent, epoch, host: forwarding update to the home */
	AGD_MSG_ACTIVATE = 24,     /* corr, agent, epoch: the source committed; run it */
	AGD_MSG_LOAD = 25,         /* [bal] corr, host (asker), size (its runnable agents) */
	AGD_MSG_LOAD_REPLY = 26,   /* [bal] corr, host, size (runnable), op (workers); blob0 agent ids that may be pulled */
	AGD_MSG_REGISTER = 27,     /* [bal] corr, host, text (its peer endpoint): to the directory */
	AGD_MSG_HOST_LIST = 28,    /* [bal] corr; blob0 the directory's host registry */
};
#define AGD_MSG_TYPE_MIN AGD_MSG_HELLO
#define AGD_MSG_TYPE_MAX AGD_MSG_HOST_LIST

/* Mobility and kind of a transfer (u8 on the wire). */
enum agd_wire_mobility {
	AGD_MOB_WEAK = 1,
	AGD_MOB_STRONG = 2,
	/* PULL_REQUEST only: strong or not at all (the user asked for strong).
	 * AGD_MOB_STRONG in a PULL_REQUEST means "strong if the agent's
	 * manifest allows it, else weak". */
	AGD_MOB_STRONG_ONLY = 3,
};
enum agd_wire_kind { AGD_KIND_PUSH = 1, AGD_KIND_PULL = 2, AGD_KIND_CLONE = 3 };

/* A borrowed byte range. */
struct agd_wire_bytes {
	const uint8_t *data; /* NULL when len == 0 */
	size_t len;          /* length in bytes */
};

/*
 * One peer message. The type decides which fields travel (see the enum and
 * docs/protocol.md); the others are ignored by encode and zeroed by decode.
 * Strings are NUL-terminated copies; blobs are borrowed.
 */
struct agd_wire_msg {
	uint8_t type;                            /* enum agd_wire_type */
	uint64_t corr;                           /* request/reply correlation id */
	uint32_t proto;                          /* HELLO: protocol version spoken */
	char host[AGD_WIRE_NAME_MAX + 1];        /* a host name */
	char agent[AGD_WIRE_NAME_MAX + 1];       /* an agent id */
	char name[AGD_WIRE_NAME_MAX + 1];        /* method, resource, or clone's new id */
	uint64_t epoch;                          /* the agent's epoch */
	uint8_t hash[AGD_WIRE_HASH_LEN];         /* code segment hash */
	uint8_t mobility;                        /* enum agd_wire_mobility */
	uint8_t kind;                            /* enum agd_wire_kind */
	uint64_t size;                           /* OFFER: bytes the TRANSFER will carry */
	uint64_t msgid;                          /* DELIVER/CALL/RES_OP: for exactly-once */
	uint32_t op;                             /* RES_OP: operation code */
	uint32_t hops;                           /* LOCATE/LOCATED: pointers followed */
	int32_t code;                            /* 0, or a negative reason code */
	char text[AGD_WIRE_TEXT_MAX + 1];        /* reason text */
	struct agd_wire_bytes blob[AGD_WIRE_BLOBS_MAX]; /* bulk bytes (borrowed) */
};

/* The encoded form: up to AGD_WIRE_FRAMES_MAX frames. Frames 0 and 1 point
 * into `head` (owned by this struct); blob frames point at the message's
 * blobs (borrowed: keep them alive until sent). */
struct agd_wire_frames {
	size_t n;                                      /* number of frames */
	struct agd_wire_bytes f[AGD_WIRE_FRAMES_MAX];  /* the frames */
	uint8_t head[AGD_WIRE_HEADER_LEN + AGD_WIRE_BODY_MAX]; /* storage of frames 0 and 1 */
};

/* The name of a type ("OFFER"), or "?" for an unknown one. */
const char *agd_wire_type_name(int type);

/* How many blobs a type can carry (0..AGD_WIRE_BLOBS_MAX; the optional
 * trailing ones of version 2 included), or -1 if unknown. */
int agd_wire_type_blobs(int type);

/* Encodes m into out, as version 1 unless an optional blob is not empty.
 * Returns 0, AGD_WIRE_ERR_TYPE, AGD_WIRE_ERR_TOOBIG (a
 * string or blob over its cap) or AGD_WIRE_ERR_ARG (a string with a NUL in
 * its counted part cannot happen; a blob with len but no data can). */
int agd_wire_encode(const struct agd_wire_msg *m, struct agd_wire_frames *out);

/* Decodes n frames into m (cleared on entry), of version 1 or 2 (optional
 * blobs absent from a version-1 message are empty). Blobs borrow frame
 * bytes. Returns 0 or a negative agd_wire_err. */
int agd_wire_decode(const struct agd_wire_bytes *frames, size_t n, struct agd_wire_msg *m);

/*
 * Flat form of a whole multipart message, for storage and for the fuzzer:
 * u8 frame count, then per frame a u32 big-endian length and the bytes.
 * agd_wire_pack appends to *buf (realloc'd; the caller frees it).
 * agd_wire_unpack splits a flat buffer into frames borrowing from it.
 */
int agd_wire_pack(const struct agd_wire_frames *fr, uint8_t **buf, size_t *len);
int agd_wire_unpack(const uint8_t *buf, size_t len, struct agd_wire_bytes *frames,
		    size_t max, size_t *n);

#endif
