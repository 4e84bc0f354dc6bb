/*
 * mig_state_int.h: what the engine's files share and nobody else sees:
 * the byte cursor, the pointer map, the error helpers and the environment
 * kept in the registry (docs/state-format.md, "Environment").
 *
 * Invariants: a reader never reads past `end`; every helper that can fail
 * returns 0 or a negative mig_err. Only migrate/ includes this header (it
 * pulls in Lua's internal headers).
 */
#ifndef MIG_STATE_INT_H
#define MIG_STATE_INT_H

#include "mig_state.h"

#include <lua.h>
#include <lauxlib.h>

#include <lfunc.h>
#include <lgc.h>
#include <lobject.h>
#include <lstate.h>
#include <lstring.h>
#include <ltable.h>

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

/* Fills err (may be NULL) and returns code. */
int mig_err_set(struct mig_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------ */
/* Output buffer                                                       */
/* ------------------------------------------------------------------ */

/* Makes room for n more bytes; 0 or MIG_ERR_NOMEM. */
int mig_buf_grow(struct mig_buf *b, size_t n);

static inline int mig_buf_put(struct mig_buf *b, const void *p, size_t n)
{
	if (b->cap - b->len < n && mig_buf_grow(b, n) != 0)
		return MIG_ERR_NOMEM;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

static inline int mig_buf_u8(struct mig_buf *b, unsigned v)
{
	if (b->cap == b->len && mig_buf_grow(b, 1) != 0)
		return MIG_ERR_NOMEM;
	b->data[b->len++] = (uint8_t)v;
	return 0;
}

static inline int mig_buf_varint(struct mig_buf *b, uint64_t v)
{
	if (b->cap - b->len < 10 && mig_buf_grow(b, 10) != 0)
		return MIG_ERR_NOMEM;
	while (v >= 0x80) {
		b->data[b->len++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	b->data[b->len++] = (uint8_t)v;
	return 0;
}

static inline uint64_t mig_zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t mig_unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static inline int mig_buf_svarint(struct mig_buf *b, int64_t v)
{
	return mig_buf_varint(b, mig_zigzag(v));
}

static inline int mig_buf_u64le(struct mig_buf *b, uint64_t v)
{
	uint8_t x[8];

	for (int i = 0; i < 8; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	return mig_buf_put(b, x, 8);
}

/* ------------------------------------------------------------------ */
/* Input cursor                                                        */
/* ------------------------------------------------------------------ */

/* A bounded cursor: every read checks `end` first. */
struct mig_rd {
	const uint8_t *p;   /* next byte */
	const uint8_t *end; /* one past the last byte */
};

static inline size_t mig_rd_left(const struct mig_rd *r)
{
	return (size_t)(r->end - r->p);
}

static inline int mig_rd_u8(struct mig_rd *r, unsigned *v)
{
	if (r->p >= r->end)
		return MIG_ERR_TRUNCATED;
	*v = *r->p++;
	return 0;
}

/* Varints are at most 10 bytes; an overlong or overflowing one is
 * malformed, one cut by the end is truncated. */
static inline int mig_rd_varint(struct mig_rd *r, uint64_t *v)
{
	uint64_t x = 0;
	unsigned shift = 0;

	for (;;) {
		unsigned c;

		if (r->p >= r->end)
			return MIG_ERR_TRUNCATED;
		c = *r->p++;
		if (shift == 63 && (c & 0x7e))
			return MIG_ERR_MALFORMED;
		x |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			break;
		shift += 7;
		if (shift > 63)
			return MIG_ERR_MALFORMED;
	}
	*v = x;
	return 0;
}

static inline int mig_rd_svarint(struct mig_rd *r, int64_t *v)
{
	uint64_t u;
	int rc = mig_rd_varint(r, &u);

	if (rc == 0)
		*v = mig_unzigzag(u);
	return rc;
}

static inline int mig_rd_bytes(struct mig_rd *r, size_t n, const uint8_t **p)
{
	if (mig_rd_left(r) < n)
		return MIG_ERR_TRUNCATED;
	*p = r->p;
	r->p += n;
	return 0;
}

static inline int mig_rd_u64le(struct mig_rd *r, uint64_t *v)
{
	const uint8_t *p;
	uint64_t x = 0;
	int rc = mig_rd_bytes(r, 8, &p);

	if (rc)
		return rc;
	for (int i = 0; i < 8; i++)
		x |= (uint64_t)p[i] << (8 * i);
	*v = x;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Pointer map: open addressing, pointer -> 32-bit value               */
/* ------------------------------------------------------------------ */

struct mig_pslot {
	uintptr_t key; /* 0 marks an empty slot */
	uint32_t val;  /* value of the key */
};

/* Key and value side by side: one cache line per probe. */
struct mig_pmap {
	struct mig_pslot *slots;
	size_t cap;      /* power of two, or 0 before the first put */
	size_t n;        /* keys stored */
};

void mig_pmap_free(struct mig_pmap *m);
/* Inserts or replaces; 0 or MIG_ERR_NOMEM. */
int mig_pmap_put(struct mig_pmap *m, const void *key, uint32_t val);
/* Inserts a key known to be absent (one probe less). */
int mig_pmap_add(struct mig_pmap *m, const void *key, uint32_t val);
/* Makes room for about n keys up front; 0 or MIG_ERR_NOMEM. */
int mig_pmap_reserve(struct mig_pmap *m, size_t n);

static inline size_t mig_pmap_hash(uintptr_t k)
{
	uint64_t x = (uint64_t)k;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 29;
	return (size_t)x;
}

/* The value of key, or NULL when absent. */
static inline uint32_t *mig_pmap_get(const struct mig_pmap *m, const void *key)
{
	uintptr_t k = (uintptr_t)key;
	size_t mask, i;

	if (m->cap == 0)
		return NULL;
	mask = m->cap - 1;
	for (i = mig_pmap_hash(k) & mask;; i = (i + 1) & mask) {
		if (m->slots[i].key == k)
			return &m->slots[i].val;
		if (m->slots[i].key == 0)
			return NULL;
	}
}

/* ------------------------------------------------------------------ */
/* Environment (mig_env.c)                                             */
/* ------------------------------------------------------------------ */

/* Registry key of the environment table. */
#define MIG_ENV_KEY "agentd.mig.env"

/* Slots of the environment table. The table holds its values weakly (its
 * metatable is { __mode = "v" }); every slot but the two permanent maps is
 * also held by that metatable's array part, so only those two can go: they
 * are built from the compact permanent list (MIG_ENV_PERMBUF) when
 * mig_env_push is called and nobody holds them, and left to the collector
 * afterwards (an idle state does not carry them). */
enum mig_env_slot {
	MIG_ENV_PERMNAME = 1, /* name -> permanent value (built on demand) */
	MIG_ENV_PERMVAL,      /* permanent value -> canonical name (built on demand) */
	MIG_ENV_SOURCES,      /* hash (32-byte string) -> source record */
	MIG_ENV_PROTOIDX,     /* light userdata Proto* -> index in its chunk */
	MIG_ENV_PROTOHASH,    /* light userdata Proto* -> hash of its source */
	MIG_ENV_UDHOOKS,      /* tname -> { persist, restore } */
	MIG_ENV_OVERLAYS,     /* table -> order overlay (weak keys) */
	MIG_ENV_SENTINEL,     /* a private table standing for unknown dead keys */
	MIG_ENV_CDATA,        /* struct mig_envc (full userdata) */
	MIG_ENV_WEAKK,        /* metatable { __mode = "k" } */
	MIG_ENV_WEAKV,        /* metatable { __mode = "v" } */
	MIG_ENV_CFNBUF,       /* userdata: the array envc.cfn points into */
	MIG_ENV_PERMBUF,      /* userdata: the permanent list envc.perm points into */
	MIG_ENV_PERMNAMES,    /* userdata: the bytes of the permanents' names */
	MIG_ENV_PERMANCH,     /* array of the permanents that are objects (anchors) */
	MIG_ENV_NSLOTS = MIG_ENV_PERMANCH
};

/* Fields of a source record. */
enum mig_src_field {
	MIG_SRC_TEXT = 1, /* the text (string) */
	MIG_SRC_NAME,     /* chunk name (string) */
	MIG_SRC_EXT,      /* true when the source belongs to a code segment */
	MIG_SRC_FN,       /* the compiled main closure, anchoring its prototypes */
};

/* Fields of an order overlay (see mig_env.c, engine `next`). */
enum mig_ov_field {
	MIG_OV_LIST = 1, /* array of keys in the order `next` must follow */
	MIG_OV_IDX,      /* key -> position in the list */
	MIG_OV_N,        /* length of the list */
};

#define MIG_NAME_MAX 64
#define MIG_CFN_MAX 64

/* A C function or continuation known by name. */
struct mig_cfn {
	char name[MIG_NAME_MAX]; /* stable name, the same on every host */
	lua_CFunction f;         /* C function of a C closure, or NULL */
	lua_KFunction k;         /* continuation, or NULL */
};

/* The state of a string.gmatch iterator, laid out as lstrlib.c lays out
 * its (private) GMatchState in the pinned Lua 5.4.7; mig_env_open checks
 * the size against a real one before trusting it. Pointers are into the
 * iterator's two string upvalues, so they travel as offsets. */
struct mig_gmatch {
	const char *src;       /* current position */
	const char *p;         /* pattern */
	const char *lastmatch; /* end of the last match, or NULL */
	struct {
		const char *src_init, *src_end, *p_end;
		lua_State *L;
		int matchdepth;
		unsigned char level;
		struct {
			const char *init;
			ptrdiff_t len;
		} capture[32];
	} ms;
};
#define MIG_GMATCH_DEPTH 200 /* lstrlib.c's MAXCCALLS */

/* One permanent as registered (mig_env.c): a light C function, or an
 * object kept in MIG_ENV_PERMANCH; its name's bytes in MIG_ENV_PERMNAMES.
 * The list keeps registration order, so that the maps built from it are
 * the ones registering straight into maps would have made. */
struct mig_perm {
	uintptr_t id;     /* the light C function, or the anchored object's address */
	uint32_t off;     /* name: offset in the names buffer */
	uint16_t len;     /* name: length */
	uint16_t anchor;  /* index in MIG_ENV_PERMANCH, 0 for a light C function */
};

/* C-side data of the environment. */
struct mig_envc {
	int ncfn;                 /* entries used in cfn */
	int cfncap;               /* entries cfn has room for */
	struct mig_cfn *cfn;      /* known C functions and continuations (MIG_ENV_CFNBUF) */
	int overlays;             /* nonzero once any overlay exists */
	lua_CFunction gmatch;     /* string.gmatch's iterator, if understood */
	uint32_t nperm;           /* permanents registered */
	uint32_t permcap;         /* room in perm */
	struct mig_perm *perm;    /* the permanents (MIG_ENV_PERMBUF) */
	uint32_t nameslen;        /* bytes used in names */
	uint32_t namescap;        /* room in names */
	char *names;              /* their names (MIG_ENV_PERMNAMES) */
	uint16_t nanch;           /* objects in MIG_ENV_PERMANCH */
};

/* Pushes the environment table, with its permanent maps (MIG_ENV_PERMNAME,
 * MIG_ENV_PERMVAL) built if the collector took them: a caller must take
 * those slots before its next allocation in L. MIG_ERR_ARG (nothing pushed)
 * when mig_env_open was not called on L; may raise on memory errors. */
int mig_env_push(lua_State *L);
/* The C data of the environment at stack index env. */
struct mig_envc *mig_env_cdata(lua_State *L, int env);

/* The index of a known C function / continuation, or -1. */
int mig_cfn_find_f(const struct mig_envc *c, lua_CFunction f);
int mig_cfn_find_k(const struct mig_envc *c, lua_KFunction k);
int mig_cfn_find_name(const struct mig_envc *c, const char *name, size_t len);

/* Makes sure the source `hash` (32 bytes, at stack index hashidx as a
 * string) is compiled and its prototypes indexed; pushes its main closure.
 * Returns 0, MIG_ERR_NOSOURCE or MIG_ERR_LUA (err filled). May raise only
 * on memory errors. env is the environment's stack index. */
int mig_src_compile(lua_State *L, int env, int hashidx, struct mig_error *err);

/* Registers text with the given hash (already computed); leaves nothing on
 * the stack. May raise on memory errors. */
void mig_src_register(lua_State *L, int env, const uint8_t hash[MIG_HASH_LEN],
		      const char *text, size_t len, const char *chunkname, int external);

/* Prototypes of a chunk in the fixed pre-order walk: the main prototype is
 * 0, then each child's subtree in order. *out is malloc'd (caller frees). */
int mig_proto_list(Proto *main, Proto ***out, int *n);

/* A fingerprint of a prototype's code and constants (docs/state-format.md,
 * "Function naming"). */
uint64_t mig_proto_fingerprint(const Proto *p);

/* True when a Lua value would be a binary chunk. */
int mig_is_binary(const char *text, size_t len);

/* The engine's pcall/xpcall continuation and the coroutine.wrap function,
 * registered by name in mig_env_open. */
#define MIG_CFN_PCALLK "mig.pcall.k"

/* The engine's pcall (which == 0) or xpcall (which == 1). */
lua_CFunction mig_env_pcall_f(int which);

/* ------------------------------------------------------------------ */
/* State format tags (docs/state-format.md, "Values")                  */
/* ------------------------------------------------------------------ */

#define MIG_STATE_MAGIC "MIGS"
#define MIG_DATA_MAGIC "MIGD"
#define MIG_HEADER_LEN 20

enum mig_tag {
	MIG_T_NIL = 0,   /* nil */
	MIG_T_EMPTY,     /* an empty table slot (Lua's "empty" nil variant) */
	MIG_T_FALSE,
	MIG_T_TRUE,
	MIG_T_INT,       /* zigzag varint */
	MIG_T_FLT,       /* 8 bytes, IEEE 754 bits, little-endian */
	MIG_T_FLTQ,      /* u8 s, zigzag varint m: the float m / 2^s */
	MIG_T_REF,       /* varint id of an object defined earlier */
	MIG_T_STR,       /* varint length, bytes: defines the next id */
	MIG_T_PERM,      /* varint perm ref: 0 then a new name, else ref */
	MIG_T_TABLE,     /* defines the next id; body later */
	MIG_T_LCL,       /* proto ref: defines the next id; body later */
	MIG_T_CCL,       /* C function name, u8 nupvalues; body later */
	MIG_T_LCF,       /* light C function known by name (not a permanent) */
	MIG_T_UDATA,     /* type name, data payload: defines the next id */
	MIG_T_THREAD,    /* defines the next id; body later */
	MIG_T_NVALUE,    /* first tag that is not a value */
	MIG_T_NODE_FREE = 32,    /* table node never used since the last rehash */
	MIG_T_NODE_PENDING = 33, /* removed key, bound by a fixup (or none) */
};

enum mig_uvtag {
	MIG_UV_REF = 0,  /* varint id of an upvalue defined earlier */
	MIG_UV_CLOSED,   /* defines the next id: value follows */
	MIG_UV_OPEN,     /* defines the next id: thread value, varint slot */
};

/* Table body flags. */
#define MIG_TB_MT 0x01       /* a metatable follows */
#define MIG_TB_FIN 0x02      /* marked for finalization */
#define MIG_TB_BITRAS 0x04   /* alimit is not the real array size */
#define MIG_TB_ORDERED 0x08  /* entries in `next` order, rebuilt by insertion */
#define MIG_TB_DUMMY 0x10    /* no node part */
#define MIG_TB_ALL 0x1f

/* Caps (docs/state-format.md, "Limits"). */
#define MIG_MAX_STRING ((size_t)1 << 30)
#define MIG_MAX_ASIZE ((uint64_t)1 << 26)
#define MIG_MAX_LSIZENODE 26
#define MIG_MAX_FRAMES 60000

/* mig_data.c: encodes the value at idx into out without a header (for
 * userdata payloads inside a state), and decodes one such value. */
int mig_data_put(lua_State *L, int idx, struct mig_buf *out, struct mig_error *err);
int mig_data_get(lua_State *L, struct mig_rd *r, struct mig_error *err);

#endif
