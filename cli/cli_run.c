/*
 * cli_run.c: `agentctl run SEGMENT`, starting a signed code segment on a host.
 *
 * SEGMENT is a signed segment file (agentctl sign DIR), or a segment
 * directory (a manifest and its Lua files) together with --key, which
 * agentctl then builds and signs in memory. The segment is decoded and its
 * signature checked here first, so that a corrupt file is told apart from a
 * host that does not trust its author (CLI_EXIT_UNTRUSTED either way, with
 * different words).
 *
 * Upload (docs/control-protocol.md): a segment travels base64-encoded in the
 * JSON body. Small ones go in the `run` request itself; larger ones are sent
 * first in chunks with `upload` (each chunk acknowledged), which is what
 * makes a progress display possible, then `run` names the segment by hash.
 */
#include "cli.h"
#include "cli_args.h"
#include "cli_net.h"
#include "cli_out.h"

#include "mig_key.h"
#include "mig_segment.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Segments up to this size go inline in `run`; larger ones in chunks of
 * this size, so each request stays well under the daemon's body cap. */
#define INLINE_MAX (1u << 20)
#define CHUNK (1u << 20)

/* Words for the migrate library's codes that reach users here. (Kept
 * local: the library's own table lives with the state engine.) */
static const char *code_text(int rc)
{
	switch (rc) {
	case MIG_ERR_NOMEM: return "out of memory";
	case MIG_ERR_TRUNCATED: return "the file ends early";
	case MIG_ERR_MALFORMED: return "malformed";
	case MIG_ERR_VERSION: return "another format version";
	case MIG_ERR_LIMIT: return "too large";
	case MIG_ERR_SIGNATURE: return "bad signature";
	case MIG_ERR_IO: return "cannot read or write the file";
	case MIG_ERR_ARG: return "bad argument";
	}
	return "failed";
}

/* Loads SEGMENT into *seg (a signed segment object). */
static int load_segment(struct cli_ctx *ctx, const char *path, const char *key_path,
			struct mig_segment **seg)
{
	struct mig_error err = { 0, "" };
	struct mig_segment *unsigned_seg = NULL;
	struct mig_key *key = NULL;
	uint8_t *bytes = NULL;
	size_t len = 0;
	struct stat st;
	int rc;

	*seg = NULL;
	if (stat(path, &st) != 0) {
		cli_errorf(ctx, "no such segment file or directory: %s", path);
		return CLI_EXIT_NOTFOUND;
	}
	if (!S_ISDIR(st.st_mode)) {
		rc = mig_segment_read_file(path, seg, &err);
		if (rc == MIG_ERR_IO) {
			cli_errorf(ctx, "cannot read %s: %s", path, err.msg[0] ? err.msg : code_text(rc));
			return CLI_EXIT_NOTFOUND;
		}
		if (rc != 0) {
			cli_errorf(ctx, "%s is not a signed segment: %s", path,
				   err.msg[0] ? err.msg : code_text(rc));
			return CLI_EXIT_FAIL;
		}
		return CLI_EXIT_OK;
	}
	if (key_path == NULL) {
		cli_errorf(ctx, "%s is a directory: sign it first (agentctl sign) or give --key KEYFILE", path);
		return CLI_EXIT_USAGE;
	}
	rc = mig_key_load(key_path, &key, &err);
	if (rc != 0) {
		cli_errorf(ctx, "cannot load key %s: %s", key_path, err.msg[0] ? err.msg : code_text(rc));
		return rc == MIG_ERR_IO ? CLI_EXIT_NOTFOUND : CLI_EXIT_FAIL;
	}
	rc = mig_segment_load_dir(path, &unsigned_seg, &err);
	if (rc == 0)
		rc = mig_segment_sign(unsigned_seg, key, &bytes, &len);
	if (rc == 0)
		rc = mig_segment_decode(bytes, len, seg, &err);
	if (rc != 0)
		cli_errorf(ctx, "cannot build a segment from %s: %s", path,
			   err.msg[0] ? err.msg : code_text(rc));
	free(bytes);
	mig_segment_destroy(&unsigned_seg);
	mig_key_destroy(&key);
	return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/* Base64 (standard alphabet, padded) of data into a fresh string. */
static char *b64(const uint8_t *data, size_t len)
{
	size_t n = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
	char *s = malloc(n);

	if (s != NULL)
		sodium_bin2base64(s, n, data, len, sodium_base64_VARIANT_ORIGINAL);
	return s;
}

/* Sends the signed bytes in chunks; returns an exit code. */
static int upload(struct cli_ctx *ctx, const struct cli_host *h, const char *hash,
		  const uint8_t *bytes, size_t len)
{
	size_t off = 0;

	cli_progress(ctx, "uploading", 0, len);
	while (off < len) {
		size_t n = len - off < CHUNK ? len - off : CHUNK;
		char *data = b64(bytes + off, n), *body, *reply = NULL;
		struct agd_jw w;
		int rc;

		if (data == NULL)
			return CLI_EXIT_FAIL;
		agd_jw_init(&w);
		agd_jw_obj_begin(&w);
		agd_jw_key(&w, "hash");
		agd_jw_str(&w, hash);
		agd_jw_key(&w, "offset");
		agd_jw_int(&w, (long long)off);
		agd_jw_key(&w, "total");
		agd_jw_int(&w, (long long)len);
		agd_jw_key(&w, "data");
		agd_jw_str(&w, data);
		agd_jw_obj_end(&w);
		free(data);
		if ((body = agd_jw_take(&w, NULL)) == NULL)
			return CLI_EXIT_FAIL;
		rc = cli_call(ctx, h, "upload", body, &reply);
		free(body);
		free(reply);
		if (rc != CLI_EXIT_OK)
			return rc;
		off += n;
		cli_progress(ctx, "uploading", off, len);
	}
	return CLI_EXIT_OK;
}

static int cmd_run(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *key_path = NULL, *args = NULL, *mode = NULL;
	const struct cli_opt opts[] = {
		{ "--key", "-k", &key_path, NULL },
		{ "--args", NULL, &args, NULL },
		{ "--activation", NULL, &mode, NULL },
		{ NULL, NULL, NULL, NULL },
	};
	char *pos[1], *body = NULL, *reply = NULL, *data = NULL;
	char hash[MIG_SEGMENT_HEX_LEN];
	struct mig_segment *seg = NULL;
	struct agd_json *doc = NULL, *argdoc = NULL;
	const struct mig_manifest *man;
	const uint8_t *bytes;
	const char *id = NULL;
	struct cli_host h;
	struct agd_jw w;
	size_t len = 0;
	int npos, rc;

	rc = cli_parse_opts(ctx, argc, argv, opts, pos, 1, &npos);
	if (rc != CLI_EXIT_OK || npos != 1)
		return CLI_EXIT_USAGE;
	if (args != NULL && agd_json_parse(args, strlen(args), &argdoc, NULL) != 0) {
		cli_errorf(ctx, "--args wants a JSON value, e.g. '{\"n\": 3}'");
		return CLI_EXIT_USAGE;
	}
	if (mode != NULL && strcmp(mode, "resident") != 0 && strcmp(mode, "on-demand") != 0) {
		cli_errorf(ctx, "--activation wants resident or on-demand");
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	rc = load_segment(ctx, pos[0], key_path, &seg);
	if (rc != CLI_EXIT_OK)
		goto out;
	/* A bad signature is the author's problem, not the host's: say so
	 * before sending anything. */
	if (mig_segment_verify(seg) != 0) {
		cli_errorf(ctx, "%s: the segment's signature does not verify (corrupt or tampered)", pos[0]);
		rc = CLI_EXIT_UNTRUSTED;
		goto out;
	}
	rc = cli_target(ctx, &h);
	if (rc != CLI_EXIT_OK)
		goto out;
	mig_segment_hash_hex(seg, hash);
	man = mig_segment_manifest(seg);
	bytes = mig_segment_signed_bytes(seg, &len);
	if (len > INLINE_MAX) {
		rc = upload(ctx, &h, hash, bytes, len);
		if (rc != CLI_EXIT_OK)
			goto out;
	} else if ((data = b64(bytes, len)) == NULL) {
		rc = CLI_EXIT_FAIL;
		goto out;
	}
	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	if (data != NULL) {
		agd_jw_key(&w, "segment");
		agd_jw_str(&w, data);
	} else {
		agd_jw_key(&w, "hash");
		agd_jw_str(&w, hash);
	}
	if (argdoc != NULL) {
		agd_jw_key(&w, "args");
		cli_json_copy(&w, argdoc, agd_json_root(argdoc));
	}
	if (mode != NULL) {
		agd_jw_key(&w, "activation");
		agd_jw_str(&w, mode);
	}
	agd_jw_obj_end(&w);
	if ((body = agd_jw_take(&w, NULL)) == NULL) {
		rc = CLI_EXIT_FAIL;
		goto out;
	}
	rc = cli_call(ctx, &h, "run", body, &reply);
	if (rc != CLI_EXIT_OK) {
		if (ctx->json && reply != NULL)
			cli_json_emit(ctx, reply);
		goto out;
	}
	rc = cli_reply_parse(ctx, h.name, reply, &doc);
	if (rc != CLI_EXIT_OK)
		goto out;
	agd_json_get_str(doc, agd_json_root(doc), "id", &id);
	if (ctx->json) {
		agd_jw_init(&w);
		agd_jw_obj_begin(&w);
		agd_jw_key(&w, "id");
		agd_jw_str(&w, id);
		agd_jw_key(&w, "name");
		agd_jw_str(&w, man->name);
		agd_jw_key(&w, "host");
		agd_jw_str(&w, h.name);
		agd_jw_key(&w, "segment");
		agd_jw_str(&w, hash);
		agd_jw_key(&w, "bytes");
		agd_jw_int(&w, (long long)len);
		agd_jw_key(&w, "reply");
		cli_json_copy(&w, doc, agd_json_root(doc));
		agd_jw_obj_end(&w);
		rc = cli_emit_jw(ctx, &w);
	} else {
		fprintf(ctx->out, "%s\n", id ? id : "(the host gave no id)");
	}
out:
	agd_json_destroy(&doc);
	agd_json_destroy(&argdoc);
	mig_segment_destroy(&seg);
	free(data);
	free(body);
	free(reply);
	return rc;
}

const struct cli_cmd cli_run_cmds[] = {
	{ "run", cmd_run, "SEGMENT [--key KEY] [--args JSON] [--activation resident|on-demand]",
	  "start a signed segment (file, or directory with --key) on a host; prints the agent id" },
	{ NULL, NULL, NULL, NULL },
};
