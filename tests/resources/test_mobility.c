/*
 * test_mobility.c: a handle held inside a suspended coroutine moves with the
 * strong-mobility engine (mig_state_persist / mig_state_restore) and is
 * rebound by its hooks: after MV the resumed agent finds its file local on
 * the target; after GR it reaches the old home through the transport.
 */
#include "mig_lua.h"
#include "mig_state.h"
#include "res_agent.h"

static struct fx_cluster c;

static void setup(void)
{
	fx_cluster_init(&c, 2);
}

static void teardown(void)
{
	fx_cluster_fini(&c);
}

TestSuite(res_mobility, .init = setup, .fini = teardown, .timeout = 60);

static void *alloc(void *ud, void *p, size_t osize, size_t nsize)
{
	(void)ud;
	(void)osize;
	if (nsize == 0) {
		free(p);
		return NULL;
	}
	return realloc(p, nsize);
}

/* A state as a daemon prepares it on host h. */
static lua_State *agent_state(struct fx_host *h, unsigned seed)
{
	lua_State *L = mig_lua_newstate(alloc, NULL, seed);

	cr_assert_not_null(L);
	luaL_openlibs(L);
	cr_assert_eq(mig_env_open(L), 0);
	cr_assert_eq(res_lua_open(L, &h->env), 0);
	cr_assert_eq(res_lua_mobility(L), 0);
	return L;
}

static const char agent_src[] =
	"local h = ...\n"
	"assert(h:write('before'))\n"
	"local write = h.append\n" /* a method kept in a variable moves too */
	"coroutine.yield(h:info().home)\n"
	"assert(write(h, '+after'))\n"
	"local i = h:info()\n"
	"return h:read() .. ' ' .. i.home .. ' ' .. i.mode .. ' ' .. i.action\n";

/* Starts the agent on L with handle b; runs it to its yield. Leaves the
 * coroutine at the top of L's stack. */
static void start(lua_State *L, const struct res_bind *b)
{
	uint8_t hash[MIG_HASH_LEN];
	struct mig_error err;
	lua_State *co;
	int nres;

	cr_assert_eq(mig_source_add(L, agent_src, sizeof agent_src - 1, "=agent", 0, hash), 0);
	co = lua_newthread(L);
	cr_assert_eq(mig_source_load(co, hash, &err), 0, "%s", err.msg);
	res_lua_push_handle(co, b);
	cr_assert_eq(lua_resume(co, L, 1, &nres), LUA_YIELD, "%s", lua_tostring(co, -1));
	cr_assert_str_eq(lua_tostring(co, -1), "h1");
	lua_pop(co, nres);
}

/* Persists the coroutine at the top of L, closes L as a daemon does after
 * a move, restores on h with rebind rb, resumes to the end and returns its
 * result (static buffer). */
static const char *hop_and_finish(lua_State *L, struct fx_host *h, const struct res_bind *rb)
{
	static char out[256];
	struct mig_buf buf = {0};
	struct mig_error err;
	struct mig_state_info info;
	lua_State *L2, *co;
	int nres;

	cr_assert_eq(mig_state_persist(L, -1, &buf, &err), 0, "%s", err.msg);
	mig_state_forget_finalizers(L);
	lua_close(L);
	cr_assert_eq(mig_state_peek(buf.data, buf.len, &info), 0);
	L2 = agent_state(h, info.seed);
	h->env.rebinds = rb;
	h->env.nrebinds = 1;
	cr_assert_eq(mig_state_restore(L2, buf.data, buf.len, &err), 0, "%s", err.msg);
	h->env.rebinds = NULL;
	h->env.nrebinds = 0;
	mig_buf_free(&buf);
	co = lua_tothread(L2, -1);
	cr_assert_not_null(co);
	cr_assert_eq(lua_resume(co, L2, 0, &nres), LUA_OK, "%s", lua_tostring(co, -1));
	snprintf(out, sizeof out, "%s", lua_tostring(co, -1));
	lua_close(L2);
	return out;
}

Test(res_mobility, suspended_agent_finds_its_moved_file_local_on_the_target)
{
	struct res_bind b, rb;
	void *blob;
	size_t len;
	char id[RES_ID_MAX];
	lua_State *L;

	cr_assert_eq(fx_add(c.host[0].reg, NULL, "notes", "kind=file", fx_pathkv(c.dir, "notes"), NULL),
		     0);
	cr_assert_eq(res_bind_resolve(c.host[0].reg, "notes", RES_BIND_ID, "notes", &b), 0);
	L = agent_state(&c.host[0], 7u);
	start(L, &b);
	/* MV, as the daemon would do it. */
	cr_assert_eq(res_export(c.host[0].reg, "notes", &blob, &len), 0);
	cr_assert_eq(res_import(c.host[1].reg, blob, len, RES_ACT_MV, id), 0);
	free(blob);
	cr_assert_eq(res_move_commit(c.host[0].reg, "notes", "h2"), 0);
	rb = b;
	rb.action = RES_ACT_MV;
	snprintf(rb.id, sizeof rb.id, "%s", id);
	snprintf(rb.home, sizeof rb.home, "h2");
	cr_assert_str_eq(hop_and_finish(L, &c.host[1], &rb), "before+after h2 local MV");
}

Test(res_mobility, suspended_agent_keeps_a_gr_to_its_home)
{
	struct res_bind b, rb;
	lua_State *L;
	char *disk;

	cr_assert_eq(fx_add(c.host[0].reg, NULL, "notes", "kind=file", fx_pathkv(c.dir, "notes"), NULL),
		     0);
	cr_assert_eq(res_bind_resolve(c.host[0].reg, "notes", RES_BIND_ID, "notes", &b), 0);
	L = agent_state(&c.host[0], 9u);
	start(L, &b);
	memset(&rb, 0, sizeof rb);
	snprintf(rb.name, sizeof rb.name, "notes");
	rb.bound = 1;
	rb.action = RES_ACT_GR; /* id empty: keep the persisted home */
	cr_assert_str_eq(hop_and_finish(L, &c.host[1], &rb), "before+after h1 remote GR");
	disk = fx_slurp(fx_path(c.dir, "notes"), NULL);
	cr_assert_str_eq(disk, "before+after");
	free(disk);
}
