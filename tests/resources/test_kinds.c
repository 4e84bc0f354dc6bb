/*
 * test_kinds.c: each resource kind does real I/O on the host (files, SQLite
 * stores, sink and sensor files in a temp dir), through the same op
 * executor a GR reaches; the registry is built from config pairs and
 * refuses what it does not understand.
 */
#include "res_fixture.h"

#include <sqlite3.h>
#include <unistd.h>

static char dir[256];
static struct res_registry *reg;

static void setup(void)
{
	cr_assert_eq(tst_tmpdir(dir, sizeof dir), 0);
	cr_assert_eq(res_registry_new("h1", fx_path(dir, "data"), &reg), 0);
}

static void teardown(void)
{
	res_registry_destroy(&reg);
	cr_assert_null(reg);
	tst_rmtree(dir);
}

TestSuite(res_kinds, .init = setup, .fini = teardown, .timeout = 30);

Test(res_kinds, file_write_read_append_size_hit_the_disk)
{
	struct fx_reply r;
	struct res_msg a = {.type = RES_MSG_ARGS, .n = 2};
	uint8_t n[8], off[8];
	char *disk;

	cr_assert_eq(fx_add(reg, NULL, "notes", "kind=file", fx_pathkv(dir, "notes.txt"), NULL), 0);
	cr_assert_eq(fx_op(reg, "notes", "write", 0, &r, "hello", NULL), 0);
	fx_reply_free(&r);
	disk = fx_slurp(fx_path(dir, "notes.txt"), NULL);
	cr_assert_str_eq(disk, "hello");
	free(disk);
	cr_assert_eq(fx_op(reg, "notes", "append", 0, &r, ", world", NULL), 0);
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "notes", "read", 0, &r, NULL), 0);
	cr_assert_str_eq(fx_str(&r), "hello, world");
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "notes", "size", 0, &r, NULL), 0);
	cr_assert_eq(fx_u64(&r), 12);
	fx_reply_free(&r);
	/* read(n, offset) */
	res_u64_put(n, 5);
	res_u64_put(off, 7);
	a.f[0] = (struct res_field){n, 8};
	a.f[1] = (struct res_field){off, 8};
	cr_assert_eq(fx_op_msg(reg, "notes", "read", 0, &r, &a), 0);
	cr_assert_str_eq(fx_str(&r), "world");
	fx_reply_free(&r);
	res_u64_put(off, 100);
	cr_assert_eq(fx_op_msg(reg, "notes", "read", 0, &r, &a), 0);
	cr_assert_eq(r.m.n, 1);
	cr_assert_eq(r.m.f[0].len, 0, "reading past the end gives nothing");
	fx_reply_free(&r);
	/* write replaces the whole content */
	cr_assert_eq(fx_op(reg, "notes", "write", 0, &r, "x", NULL), 0);
	fx_reply_free(&r);
	disk = fx_slurp(fx_path(dir, "notes.txt"), NULL);
	cr_assert_str_eq(disk, "x");
	free(disk);
	cr_assert(!fx_exists(fx_path(dir, "notes.txt.tmp")), "no temporary file left");
}

Test(res_kinds, file_writes_past_max_size_are_refused_and_change_nothing)
{
	struct fx_reply r;
	char *disk;

	cr_assert_eq(fx_add(reg, NULL, "small", "kind=file", fx_pathkv(dir, "s"), "max_size=8", NULL),
		     0);
	cr_assert_eq(fx_op(reg, "small", "write", 0, &r, "12345678", NULL), 0);
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "small", "append", 0, &r, "9", NULL), RES_ERR_LIMIT);
	cr_assert(r.m.n >= 2 && r.m.f[1].len > 0, "the error says why");
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "small", "write", 0, &r, "123456789", NULL), RES_ERR_LIMIT);
	fx_reply_free(&r);
	disk = fx_slurp(fx_path(dir, "s"), NULL);
	cr_assert_str_eq(disk, "12345678");
	free(disk);
}

Test(res_kinds, kv_put_get_delete_keys_use_a_sqlite_file)
{
	struct fx_reply r;
	struct res_msg a = {.type = RES_MSG_ARGS, .n = 2};
	sqlite3 *db;
	sqlite3_stmt *st;
	const char *keys[3];
	int nkeys = 0;

	cr_assert_eq(fx_add(reg, NULL, "cfg", "kind=kv", fx_pathkv(dir, "cfg.db"), NULL), 0);
	cr_assert_eq(fx_op(reg, "cfg", "put", 0, &r, "b", "2", NULL), 0);
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "cfg", "put", 0, &r, "a", "1", NULL), 0);
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "cfg", "put", 0, &r, "c", "3", NULL), 0);
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "cfg", "put", 0, &r, "a", "one", NULL), 0);
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "cfg", "get", 0, &r, "a", NULL), 0);
	cr_assert_str_eq(fx_str(&r), "one");
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "cfg", "get", 0, &r, "zz", NULL), 0);
	cr_assert_eq(r.m.n, 0, "an absent key is an ok reply with no value");
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "cfg", "delete", 0, &r, "c", NULL), 0);
	cr_assert_eq(fx_u64(&r), 1);
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "cfg", "delete", 0, &r, "c", NULL), 0);
	cr_assert_eq(fx_u64(&r), 0);
	fx_reply_free(&r);
	/* Binary keys and values round-trip. */
	a.f[0] = (struct res_field){"k\0x", 3};
	a.f[1] = (struct res_field){"\0\1\2", 3};
	cr_assert_eq(fx_op_msg(reg, "cfg", "put", 0, &r, &a), 0);
	fx_reply_free(&r);
	a.n = 1;
	cr_assert_eq(fx_op_msg(reg, "cfg", "get", 0, &r, &a), 0);
	cr_assert_eq(r.m.f[0].len, 3);
	cr_assert_eq(memcmp(r.m.f[0].p, "\0\1\2", 3), 0);
	fx_reply_free(&r);
	a.n = 1;
	cr_assert_eq(fx_op_msg(reg, "cfg", "delete", 0, &r, &a), 0);
	fx_reply_free(&r);
	/* keys() in key order */
	cr_assert_eq(fx_op(reg, "cfg", "keys", 0, &r, NULL), 0);
	cr_assert_eq(r.m.f[0].len, 4 + 5 + 5);
	cr_assert_eq(memcmp((const char *)r.m.f[0].p, "\0\0\0\2\0\0\0\1a\0\0\0\1b", 14), 0);
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "cfg", "size", 0, &r, NULL), 0);
	cr_assert_eq(fx_u64(&r), 1 + 3 + 1 + 1);
	fx_reply_free(&r);
	/* The store is a real SQLite database on disk, readable by others. */
	cr_assert_eq(sqlite3_open(fx_path(dir, "cfg.db"), &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT k, v FROM kv ORDER BY k", -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW && nkeys < 3)
		keys[nkeys++] = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	cr_assert_eq(nkeys, 2);
	cr_assert_str_eq(keys[0], "a");
	cr_assert_str_eq(keys[1], "b");
	free((void *)keys[0]);
	free((void *)keys[1]);
}

Test(res_kinds, kv_store_survives_a_new_registry)
{
	struct fx_reply r;

	cr_assert_eq(fx_add(reg, NULL, "cfg", "kind=kv", fx_pathkv(dir, "cfg.db"), NULL), 0);
	cr_assert_eq(fx_op(reg, "cfg", "put", 0, &r, "k", "v", NULL), 0);
	fx_reply_free(&r);
	res_registry_destroy(&reg);
	cr_assert_eq(res_registry_new("h1", fx_path(dir, "data"), &reg), 0);
	cr_assert_eq(fx_add(reg, NULL, "cfg", "kind=kv", fx_pathkv(dir, "cfg.db"), "create=no", NULL),
		     0);
	cr_assert_eq(fx_op(reg, "cfg", "get", 0, &r, "k", NULL), 0);
	cr_assert_str_eq(fx_str(&r), "v");
	fx_reply_free(&r);
}

Test(res_kinds, printer_appends_lines_to_its_sink)
{
	struct fx_reply r;
	char *disk;

	cr_assert_eq(fx_add(reg, NULL, "lp0", "kind=printer", fx_pathkv(dir, "lp0.out"), NULL), 0);
	cr_assert_eq(fx_op(reg, "lp0", "print", 0, &r, "page one", NULL), 0);
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "lp0", "print", 0, &r, "page two\n", NULL), 0);
	fx_reply_free(&r);
	disk = fx_slurp(fx_path(dir, "lp0.out"), NULL);
	cr_assert_str_eq(disk, "page one\npage two\n");
	free(disk);
	cr_assert_eq(fx_op(reg, "lp0", "size", 0, &r, NULL), 0);
	cr_assert_eq(fx_u64(&r), 18);
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "lp0", "write", 0, &r, "overwrite", NULL), RES_ERR_KIND,
		     "a printer cannot be rewritten");
	fx_reply_free(&r);
}

Test(res_kinds, sensor_reads_the_current_value_of_its_file)
{
	struct fx_reply r;
	struct res_error err;

	/* A sensor's file is the device's: a missing one is a config error. */
	cr_assert_eq(fx_add(reg, &err, "temp", "kind=sensor", fx_pathkv(dir, "temp"), NULL),
		     RES_ERR_NOTFOUND);
	cr_assert(strstr(err.msg, "temp") != NULL, "%s", err.msg);
	fx_spit(fx_path(dir, "temp"), "21.5\n");
	cr_assert_eq(fx_add(reg, NULL, "temp", "kind=sensor", fx_pathkv(dir, "temp"), NULL), 0);
	cr_assert_eq(fx_op(reg, "temp", "read", 0, &r, NULL), 0);
	cr_assert_str_eq(fx_str(&r), "21.5");
	fx_reply_free(&r);
	fx_spit(fx_path(dir, "temp"), "22.0\r\n");
	cr_assert_eq(fx_op(reg, "temp", "read", 0, &r, NULL), 0);
	cr_assert_str_eq(fx_str(&r), "22.0");
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "temp", "size", 0, &r, NULL), RES_ERR_KIND);
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "temp", "print", 0, &r, "x", NULL), RES_ERR_KIND);
	fx_reply_free(&r);
}

Test(res_kinds, executor_refuses_wrong_kind_op_args_and_remote_use)
{
	struct fx_reply r;
	static const uint8_t garbage[] = {'R', 1, 'A', 9};

	cr_assert_eq(fx_add(reg, NULL, "f", "kind=file", fx_pathkv(dir, "f"), "remote=no", NULL), 0);
	cr_assert_eq(fx_op(reg, "f", "get", 0, &r, "k", NULL), RES_ERR_KIND);
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "f", "frobnicate", 0, &r, NULL), RES_ERR_ARG);
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "nope", "read", 0, &r, NULL), RES_ERR_NOTFOUND);
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "f", "write", 0, &r, NULL), RES_ERR_MALFORMED, "write needs data");
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "f", "append", 0, &r, "a", "b", NULL), RES_ERR_MALFORMED);
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "f", "read", 0, &r, "not-a-number", NULL), RES_ERR_MALFORMED);
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "f", "read", RES_EXEC_REMOTE, &r, NULL), RES_ERR_DENIED,
		     "remote=no keeps GRs out");
	fx_reply_free(&r);
	cr_assert_eq(fx_op(reg, "f", "read", 0, &r, NULL), 0, "local agents still use it");
	fx_reply_free(&r);
	/* Undecodable arguments still get a decodable error reply. */
	{
		void *rep;
		size_t len;
		struct res_msg m;

		cr_assert_eq(res_exec_op(reg, "f", "read", garbage, sizeof garbage, 0, &rep, &len),
			     RES_ERR_LIMIT);
		cr_assert_eq(res_msg_decode(rep, len, &m), 0);
		cr_assert_eq(res_msg_code(&m), RES_ERR_LIMIT);
		free(rep);
		cr_assert_eq(res_exec_op(reg, "f", "read", garbage, 2, 0, &rep, &len),
			     RES_ERR_TRUNCATED);
		free(rep);
	}
}

Test(res_kinds, config_refuses_what_it_does_not_understand)
{
	struct res_error err;

	cr_assert_eq(fx_add(reg, &err, "a", "kind=file", fx_pathkv(dir, "a"), "colour=red", NULL),
		     RES_ERR_ARG);
	cr_assert(strstr(err.msg, "colour") != NULL, "%s", err.msg);
	cr_assert_eq(fx_add(reg, &err, "a", fx_pathkv(dir, "a"), NULL), RES_ERR_ARG);
	cr_assert(strstr(err.msg, "kind") != NULL, "%s", err.msg);
	cr_assert_eq(fx_add(reg, &err, "a", "kind=file", NULL), RES_ERR_ARG);
	cr_assert(strstr(err.msg, "path") != NULL, "%s", err.msg);
	cr_assert_eq(fx_add(reg, &err, "a", "kind=device", fx_pathkv(dir, "a"), NULL), RES_ERR_ARG);
	cr_assert_eq(fx_add(reg, &err, "a", "kind=file", fx_pathkv(dir, "a"), "attachment=glued",
			    NULL), RES_ERR_ARG);
	cr_assert_eq(fx_add(reg, &err, "a", "kind=file", fx_pathkv(dir, "a"), "max_size=65m", NULL),
		     RES_ERR_ARG);
	cr_assert_eq(fx_add(reg, &err, "a", "kind=file", fx_pathkv(dir, "a"), "max_size=1x", NULL),
		     RES_ERR_ARG);
	cr_assert_eq(fx_add(reg, &err, "a", "kind=file", fx_pathkv(dir, "a"), "remote=maybe", NULL),
		     RES_ERR_ARG);
	cr_assert_eq(fx_add(reg, &err, "a/b", "kind=file", fx_pathkv(dir, "a"), NULL), RES_ERR_ARG);
	cr_assert_eq(fx_add(reg, &err, "..", "kind=file", fx_pathkv(dir, "a"), NULL), RES_ERR_ARG);
	cr_assert_eq(fx_add(reg, &err, "a", "kind=file", "id=b", fx_pathkv(dir, "a"), NULL),
		     RES_ERR_ARG);
	cr_assert_eq(fx_add(reg, &err, "a", "kind=file", fx_pathkv(dir, "missing"), "create=no", NULL),
		     RES_ERR_NOTFOUND);
	cr_assert_eq(fx_add(reg, &err, "a", "kind=file", "path=/nonexistent-dir/x", NULL),
		     RES_ERR_NOTFOUND);
	cr_assert(strstr(err.msg, "/nonexistent-dir/x") != NULL, "%s", err.msg);
	cr_assert_eq(res_registry_count(reg), 0, "nothing half-added");
	cr_assert_eq(fx_add(reg, &err, "a", "id=a", "kind=file", fx_pathkv(dir, "a"), NULL), 0);
	cr_assert_eq(fx_add(reg, &err, "a", "kind=file", fx_pathkv(dir, "a2"), NULL), RES_ERR_EXISTS);
}

Test(res_kinds, defaults_and_listing_follow_the_config)
{
	struct res_info info;
	char id[RES_ID_MAX];
	uint64_t v;

	fx_spit(fx_path(dir, "t"), "1");
	cr_assert_eq(fx_add(reg, NULL, "f", "kind=file", fx_pathkv(dir, "f"), NULL), 0);
	cr_assert_eq(fx_add(reg, NULL, "k", "kind=kv", fx_pathkv(dir, "k.db"), NULL), 0);
	cr_assert_eq(fx_add(reg, NULL, "p", "kind=printer", fx_pathkv(dir, "p"), NULL), 0);
	cr_assert_eq(fx_add(reg, NULL, "t", "kind=sensor", fx_pathkv(dir, "t"), NULL), 0);
	cr_assert_eq(fx_add(reg, NULL, "k2", "kind=kv", fx_pathkv(dir, "k2.db"),
			    "attachment=unattached", "transfer_limit=2k", "remote=no", "copy=no",
			    NULL), 0);
	cr_assert_eq(res_registry_info(reg, "f", &info), 0);
	cr_assert_eq(info.attach, RES_ATT_UNATTACHED);
	cr_assert_eq(info.remote, 1);
	cr_assert_eq(info.copy, 1);
	cr_assert_str_eq(info.home, "h1");
	cr_assert_str_eq(info.path, fx_path(dir, "f"));
	cr_assert_eq(res_registry_info(reg, "k", &info), 0);
	cr_assert_eq(info.attach, RES_ATT_FASTENED);
	cr_assert_eq(res_registry_info(reg, "p", &info), 0);
	cr_assert_eq(info.attach, RES_ATT_FIXED);
	cr_assert_eq(res_registry_info(reg, "t", &info), 0);
	cr_assert_eq(info.attach, RES_ATT_FIXED);
	cr_assert_eq(info.size, 1);
	cr_assert_eq(res_registry_info(reg, "k2", &info), 0);
	cr_assert_eq(info.attach, RES_ATT_UNATTACHED);
	cr_assert_eq(info.transfer_limit, 2048);
	cr_assert_eq(info.remote, 0);
	cr_assert_eq(info.copy, 0);
	cr_assert_eq(res_registry_info(reg, "zz", &info), RES_ERR_NOTFOUND);
	cr_assert_eq(res_registry_count(reg), 5);
	cr_assert_str_eq(res_registry_id_at(reg, 0), "f");
	cr_assert_str_eq(res_registry_id_at(reg, 4), "k2");
	cr_assert_null(res_registry_id_at(reg, 5));
	cr_assert_eq(res_registry_kinds(reg), 0xfu);
	cr_assert_eq(res_registry_find_kind(reg, RES_KIND_KV, NULL, id), 0);
	cr_assert_str_eq(id, "k");
	cr_assert_eq(res_registry_find_kind(reg, RES_KIND_KV, "k2", id), 0);
	cr_assert_str_eq(id, "k2", "the preferred id wins when it fits");
	cr_assert_eq(res_registry_find_kind(reg, RES_KIND_KV, "f", id), 0);
	cr_assert_str_eq(id, "k", "a preferred id of another kind is ignored");
	cr_assert_eq(res_registry_bind(reg, "k"), 0);
	cr_assert_eq(res_registry_bind(reg, "k"), 0);
	cr_assert_eq(res_registry_info(reg, "k", &info), 0);
	cr_assert_eq(info.binders, 2);
	cr_assert_eq(res_registry_unbind(reg, "k"), 0);
	cr_assert_eq(res_registry_unbind(reg, "k"), 0);
	cr_assert_eq(res_registry_unbind(reg, "k"), RES_ERR_ARG);
	cr_assert_eq(res_registry_bind(reg, "zz"), RES_ERR_NOTFOUND);
	cr_assert_eq(res_registry_remove(reg, "p", 1), 0);
	cr_assert(!fx_exists(fx_path(dir, "p")));
	cr_assert_eq(res_registry_kinds(reg), 0xbu);
	cr_assert_eq(res_size_parse("3k", &v), 0);
	cr_assert_eq(v, 3072);
	cr_assert_eq(res_size_parse("1G", &v), 0);
	cr_assert_eq(v, 1u << 30);
	cr_assert_eq(res_size_parse("99999999999999999999", &v), RES_ERR_ARG);
	cr_assert_eq(res_size_parse("-1", &v), RES_ERR_ARG);
	cr_assert_eq(res_size_parse("1kk", &v), RES_ERR_ARG);
}

Test(res_kinds, registry_rejects_bad_host_names)
{
	struct res_registry *r2 = (void *)1;

	cr_assert_eq(res_registry_new("bad host", fx_path(dir, "d2"), &r2), RES_ERR_ARG);
	cr_assert_null(r2);
	cr_assert_eq(res_registry_new("h2", "", &r2), RES_ERR_ARG);
	res_registry_destroy(NULL);
	res_registry_destroy(&r2);
}
