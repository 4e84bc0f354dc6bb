/*
 * cli_keys.c: keys and code segments on the author's side, no daemon
 * needed (docs/segments.md):
 *   agentctl keygen -o PREFIX [--name NAME]
 *   agentctl sign DIR -k KEY -o FILE
 *   agentctl verify FILE [--trust FILE]
 *   agentctl inspect FILE
 * Exit codes (cli.h): 0 done; 1 failed (unreadable or malformed input,
 * cannot write); 2 usage; 5 a named file is missing; 6 bad signature or a
 * key the trust store does not accept.
 */
#include "cli.h"

#include "agd_json.h"
#include "agd_trust.h"
#include "mig_key.h"
#include "mig_segment.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Exit code for a failure reading a named input. */
static int input_exit(const struct mig_error *err)
{
	return err->code == MIG_ERR_IO && strstr(err->msg, strerror(ENOENT)) != NULL ? CLI_EXIT_NOTFOUND
										 : CLI_EXIT_FAIL;
}

/* Parses "-x VALUE" style options; positional arguments go to pos[]. Returns
 * 0, or -1 for an unknown option or one missing its value. */
struct opt {
	const char *flag;   /* "-o" */
	const char *alias;  /* "--output" or NULL */
	const char **value; /* where the value goes */
};

static int parse_opts(int argc, char **argv, const struct opt *opts, const char **pos, int maxpos,
		      int *npos)
{
	*npos = 0;
	for (int i = 1; i < argc; i++) {
		const struct opt *o = NULL;

		if (argv[i][0] == '-' && argv[i][1] != '\0') {
			for (const struct opt *p = opts; p->flag != NULL; p++)
				if (strcmp(argv[i], p->flag) == 0 ||
				    (p->alias != NULL && strcmp(argv[i], p->alias) == 0))
					o = p;
			if (o == NULL || i + 1 >= argc)
				return -1;
			*o->value = argv[++i];
			continue;
		}
		if (*npos == maxpos)
			return -1;
		pos[(*npos)++] = argv[i];
	}
	return 0;
}

static int cmd_keygen(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *prefix = NULL, *name = NULL, *pos[1];
	const struct opt opts[] = { { "-o", "--output", &prefix }, { "-n", "--name", &name },
				    { NULL, NULL, NULL } };
	char idhex[MIG_KEY_ID_HEX_LEN], pkhex[2 * MIG_KEY_PUBLIC_LEN + 1], defname[MIG_KEY_NAME_MAX + 1];
	struct mig_key *k = NULL;
	struct mig_error err = { 0, "" };
	int npos, rc;

	if (parse_opts(argc, argv, opts, pos, 0, &npos) != 0 || prefix == NULL)
		return CLI_EXIT_USAGE;
	if (name == NULL) {
		/* The prefix's last component names the key unless told otherwise. */
		const char *base = strrchr(prefix, '/');

		snprintf(defname, sizeof defname, "%s", base != NULL ? base + 1 : prefix);
		name = defname;
	}
	rc = mig_key_generate(name, &k);
	if (rc != 0) {
		cli_errorf(ctx, "keygen: bad key name '%s' (1-%d printable characters, no blanks)",
			name, MIG_KEY_NAME_MAX);
		return rc == MIG_ERR_ARG ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
	}
	if (mig_key_save(k, prefix, &err) != 0) {
		cli_errorf(ctx, "keygen: %s", err.msg);
		mig_key_destroy(&k);
		return CLI_EXIT_FAIL;
	}
	mig_key_id_hex(mig_key_public(k), idhex);
	sodium_bin2hex(pkhex, sizeof pkhex, mig_key_public(k), MIG_KEY_PUBLIC_LEN);
	if (ctx->json) {
		struct agd_jw w;
		char *text;

		agd_jw_init(&w);
		agd_jw_obj_begin(&w);
		agd_jw_key(&w, "name");
		agd_jw_str(&w, mig_key_name(k));
		agd_jw_key(&w, "key_id");
		agd_jw_str(&w, idhex);
		agd_jw_key(&w, "public_key");
		agd_jw_str(&w, pkhex);
		agd_jw_key(&w, "prefix");
		agd_jw_str(&w, prefix);
		agd_jw_obj_end(&w);
		text = agd_jw_take(&w, NULL);
		cli_json_emit(ctx, text != NULL ? text : "{}");
		free(text);
	} else {
		fprintf(ctx->out, "wrote %s.key (secret, mode 0600) and %s.pub\nkey id %s, name %s\n", prefix,
			prefix, idhex, mig_key_name(k));
	}
	mig_key_destroy(&k);
	return CLI_EXIT_OK;
}

/* Writes buf to path through a temporary file and rename, so a reader
 * never sees half a segment. Returns 0 or an errno value. */
static int write_atomic(const char *path, const uint8_t *buf, size_t len)
{
	char tmp[PATH_MAX];
	int fd, e = 0;

	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
		return ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			e = n < 0 ? errno : EIO;
			break;
		}
		buf += n;
		len -= (size_t)n;
	}
	if (e == 0 && fsync(fd) != 0)
		e = errno;
	if (close(fd) != 0 && e == 0)
		e = errno;
	if (e == 0 && rename(tmp, path) != 0)
		e = errno;
	if (e != 0)
		unlink(tmp);
	return e;
}

static int cmd_sign(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *keypath = NULL, *outpath = NULL, *pos[1];
	const struct opt opts[] = { { "-k", "--key", &keypath }, { "-o", "--output", &outpath },
				    { NULL, NULL, NULL } };
	struct mig_key *k = NULL;
	struct mig_segment *seg = NULL;
	struct mig_error err = { 0, "" };
	char hex[MIG_SEGMENT_HEX_LEN], idhex[MIG_KEY_ID_HEX_LEN];
	uint8_t *buf = NULL;
	size_t len = 0;
	int npos, rc, e;

	if (parse_opts(argc, argv, opts, pos, 1, &npos) != 0 || npos != 1 || keypath == NULL ||
	    outpath == NULL)
		return CLI_EXIT_USAGE;
	if (mig_key_load(keypath, &k, &err) != 0) {
		cli_errorf(ctx, "sign: %s", err.msg);
		return input_exit(&err);
	}
	if (mig_segment_load_dir(pos[0], &seg, &err) != 0) {
		cli_errorf(ctx, "sign: %s: %s", pos[0], err.msg);
		rc = input_exit(&err);
		goto out;
	}
	if (mig_segment_sign(seg, k, &buf, &len) != 0) {
		cli_errorf(ctx, "sign: out of memory");
		rc = CLI_EXIT_FAIL;
		goto out;
	}
	if ((e = write_atomic(outpath, buf, len)) != 0) {
		cli_errorf(ctx, "sign: cannot write %s: %s", outpath, strerror(e));
		rc = CLI_EXIT_FAIL;
		goto out;
	}
	mig_segment_hash_hex(seg, hex);
	mig_key_id_hex(mig_key_public(k), idhex);
	if (ctx->json) {
		char json[256];

		snprintf(json, sizeof json, "{\"hash\":\"%s\",\"name\":\"%s\",\"key_id\":\"%s\",\"bytes\":%zu}",
			 hex, mig_segment_manifest(seg)->name, idhex, len);
		cli_json_emit(ctx, json);
	} else
		fprintf(ctx->out, "%s  %s signed by key %s, %zu bytes -> %s\n", hex,
			mig_segment_manifest(seg)->name, idhex, len, outpath);
	rc = CLI_EXIT_OK;
out:
	free(buf);
	mig_segment_destroy(&seg);
	mig_key_destroy(&k);
	return rc;
}

static int cmd_verify(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *trustpath = NULL, *pos[1];
	const struct opt opts[] = { { "-t", "--trust", &trustpath }, { NULL, NULL, NULL } };
	struct mig_segment *seg = NULL;
	struct agd_trust *trust = NULL;
	struct mig_error err = { 0, "" };
	char hex[MIG_SEGMENT_HEX_LEN], idhex[MIG_KEY_ID_HEX_LEN], why[AGD_TRUST_WHY_MAX];
	int npos, rc, verdict;

	if (parse_opts(argc, argv, opts, pos, 1, &npos) != 0 || npos != 1)
		return CLI_EXIT_USAGE;
	if (trustpath != NULL && (rc = agd_trust_load(trustpath, &trust, why, sizeof why)) != 0) {
		cli_errorf(ctx, "verify: %s", why);
		return rc == AGD_TRUST_ERR_IO && access(trustpath, F_OK) != 0 ? CLI_EXIT_NOTFOUND
									   : CLI_EXIT_FAIL;
	}
	if (mig_segment_read_file(pos[0], &seg, &err) != 0) {
		cli_errorf(ctx, "verify: %s: %s", pos[0], err.msg);
		rc = input_exit(&err);
		goto out;
	}
	mig_segment_hash_hex(seg, hex);
	mig_key_id_hex(mig_segment_signer(seg), idhex);
	if (mig_segment_verify(seg) != 0) {
		cli_errorf(ctx, "verify: %s: BAD signature (claims key %s)", pos[0], idhex);
		rc = CLI_EXIT_UNTRUSTED;
		goto out;
	}
	if (trust != NULL) {
		verdict = agd_trust_decide(trust, seg, why, sizeof why);
		if (verdict != 0) {
			cli_errorf(ctx, "verify: %s: %s: %s", pos[0],
				agd_trust_strerror(verdict), why);
			rc = CLI_EXIT_UNTRUSTED;
			goto out;
		}
	}
	if (ctx->json) {
		char json[256];

		/* Agent names are [A-Za-z0-9_.-]: nothing to escape. */
		snprintf(json, sizeof json,
			 "{\"hash\":\"%s\",\"name\":\"%s\",\"key_id\":\"%s\",\"signature\":\"good\","
			 "\"trusted\":%s}",
			 hex, mig_segment_manifest(seg)->name, idhex, trust == NULL ? "null" : "true");
		cli_json_emit(ctx, json);
	} else
		fprintf(ctx->out, "%s: good signature by key %s; segment %s (%s)%s\n", pos[0], idhex, hex,
			mig_segment_manifest(seg)->name, trust != NULL ? "; trusted" : "");
	rc = CLI_EXIT_OK;
out:
	mig_segment_destroy(&seg);
	agd_trust_destroy(&trust);
	return rc;
}

static void u64_raw(struct agd_jw *w, uint64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof num, "%llu", (unsigned long long)v);

	agd_jw_raw(w, num, (size_t)n);
}

static void inspect_json(struct cli_ctx *ctx, const struct mig_segment *seg, int good)
{
	const struct mig_manifest *m = mig_segment_manifest(seg);
	char hex[MIG_SEGMENT_HEX_LEN], idhex[MIG_KEY_ID_HEX_LEN], pkhex[2 * MIG_KEY_PUBLIC_LEN + 1];
	struct agd_jw w;
	size_t len;
	char *text;

	mig_segment_hash_hex(seg, hex);
	mig_key_id_hex(mig_segment_signer(seg), idhex);
	sodium_bin2hex(pkhex, sizeof pkhex, mig_segment_signer(seg), MIG_KEY_PUBLIC_LEN);
	mig_segment_signed_bytes(seg, &len);
	agd_jw_init(&w);
	agd_jw_obj_begin(&w);
	agd_jw_key(&w, "hash");
	agd_jw_str(&w, hex);
	agd_jw_key(&w, "bytes");
	agd_jw_int(&w, (long long)len);
	agd_jw_key(&w, "name");
	agd_jw_str(&w, m->name);
	agd_jw_key(&w, "version");
	agd_jw_str(&w, m->version);
	agd_jw_key(&w, "entry");
	agd_jw_obj_begin(&w);
	agd_jw_key(&w, "file");
	agd_jw_str(&w, m->entry_file);
	agd_jw_key(&w, "function");
	agd_jw_str(&w, m->entry_func);
	agd_jw_obj_end(&w);
	agd_jw_key(&w, "mobility");
	agd_jw_str(&w, mig_mobility_name(m->mobility));
	agd_jw_key(&w, "activation");
	agd_jw_str(&w, mig_activation_name(m->activation));
	agd_jw_key(&w, "quotas");
	agd_jw_obj_begin(&w);
	agd_jw_key(&w, "memory");
	u64_raw(&w, m->quota_memory);
	agd_jw_key(&w, "instructions");
	u64_raw(&w, m->quota_instructions);
	agd_jw_obj_end(&w);
	agd_jw_key(&w, "bindings");
	agd_jw_arr_begin(&w);
	for (uint32_t i = 0; i < m->nbindings; i++) {
		const struct mig_binding *b = &m->bindings[i];

		agd_jw_obj_begin(&w);
		agd_jw_key(&w, "name");
		agd_jw_str(&w, b->name);
		agd_jw_key(&w, "kind");
		agd_jw_str(&w, mig_binding_kind_name(b->kind));
		agd_jw_key(&w, b->kind == MIG_BIND_TYPE ? "type" : "identifier");
		agd_jw_str(&w, b->target);
		agd_jw_key(&w, "actions");
		agd_jw_arr_begin(&w);
		for (unsigned a = 0; a < b->nactions; a++)
			agd_jw_str(&w, mig_action_name(b->actions[a]));
		agd_jw_arr_end(&w);
		agd_jw_obj_end(&w);
	}
	agd_jw_arr_end(&w);
	agd_jw_key(&w, "files");
	agd_jw_arr_begin(&w);
	for (size_t i = 0; i < mig_segment_nfiles(seg); i++) {
		const char *name, *ftext;
		size_t flen;
		uint8_t fh[MIG_SEGMENT_HASH_LEN];
		char fhex[MIG_SEGMENT_HEX_LEN];

		mig_segment_file(seg, i, &name, &ftext, &flen);
		mig_segment_file_hash(seg, i, fh);
		mig_hash_hex(fh, fhex);
		agd_jw_obj_begin(&w);
		agd_jw_key(&w, "name");
		agd_jw_str(&w, name);
		agd_jw_key(&w, "bytes");
		agd_jw_int(&w, (long long)flen);
		agd_jw_key(&w, "source_hash");
		agd_jw_str(&w, fhex);
		agd_jw_obj_end(&w);
	}
	agd_jw_arr_end(&w);
	agd_jw_key(&w, "key_id");
	agd_jw_str(&w, idhex);
	agd_jw_key(&w, "public_key");
	agd_jw_str(&w, pkhex);
	agd_jw_key(&w, "signature");
	agd_jw_str(&w, good ? "good" : "bad");
	agd_jw_obj_end(&w);
	text = agd_jw_take(&w, NULL);
	cli_json_emit(ctx, text != NULL ? text : "{}");
	free(text);
}

static void inspect_text(struct cli_ctx *ctx, const struct mig_segment *seg, int good)
{
	const struct mig_manifest *m = mig_segment_manifest(seg);
	char hex[MIG_SEGMENT_HEX_LEN], idhex[MIG_KEY_ID_HEX_LEN];
	size_t len;

	mig_segment_hash_hex(seg, hex);
	mig_key_id_hex(mig_segment_signer(seg), idhex);
	mig_segment_signed_bytes(seg, &len);
	fprintf(ctx->out, "segment     %s (%zu bytes)\n", hex, len);
	fprintf(ctx->out, "agent       %s %s\n", m->name, m->version);
	fprintf(ctx->out, "entry       %s %s()\n", m->entry_file, m->entry_func);
	fprintf(ctx->out, "mobility    %s\n", mig_mobility_name(m->mobility));
	fprintf(ctx->out, "activation  %s\n", mig_activation_name(m->activation));
	fprintf(ctx->out, "quotas      memory %llu%s, instructions %llu%s\n",
		(unsigned long long)m->quota_memory, m->quota_memory == 0 ? " (host default)" : " bytes",
		(unsigned long long)m->quota_instructions,
		m->quota_instructions == 0 ? " (host default)" : " per slice");
	for (uint32_t i = 0; i < m->nbindings; i++) {
		const struct mig_binding *b = &m->bindings[i];

		fprintf(ctx->out, "binding     %s %s %s", b->name, mig_binding_kind_name(b->kind), b->target);
		for (unsigned a = 0; a < b->nactions; a++)
			fprintf(ctx->out, "%s%s", a == 0 ? " actions=" : ",", mig_action_name(b->actions[a]));
		fprintf(ctx->out, "\n");
	}
	for (size_t i = 0; i < mig_segment_nfiles(seg); i++) {
		const char *name, *ftext;
		size_t flen;
		uint8_t fh[MIG_SEGMENT_HASH_LEN];
		char fhex[MIG_SEGMENT_HEX_LEN];

		mig_segment_file(seg, i, &name, &ftext, &flen);
		mig_segment_file_hash(seg, i, fh);
		mig_hash_hex(fh, fhex);
		fprintf(ctx->out, "file        %-20s %8zu bytes  source %s\n", name, flen, fhex);
	}
	fprintf(ctx->out, "key id      %s\n", idhex);
	fprintf(ctx->out, "signature   %s\n", good ? "good" : "BAD");
}

static int cmd_inspect(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *pos[1];
	const struct opt opts[] = { { NULL, NULL, NULL } };
	struct mig_segment *seg = NULL;
	struct mig_error err = { 0, "" };
	int npos, good;

	/* --json may also come after the command. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			ctx->json = 1;
			memmove(&argv[i], &argv[i + 1], (size_t)(argc - i - 1) * sizeof argv[0]);
			argc--;
			i--;
		}
	}
	if (parse_opts(argc, argv, opts, pos, 1, &npos) != 0 || npos != 1)
		return CLI_EXIT_USAGE;
	if (mig_segment_read_file(pos[0], &seg, &err) != 0) {
		cli_errorf(ctx, "inspect: %s: %s", pos[0], err.msg);
		return input_exit(&err);
	}
	good = mig_segment_verify(seg) == 0;
	if (ctx->json)
		inspect_json(ctx, seg, good);
	else
		inspect_text(ctx, seg, good);
	mig_segment_destroy(&seg);
	/* Inspecting shows a bad signature; it does not judge it: verify does. */
	return CLI_EXIT_OK;
}

const struct cli_cmd cli_keys_cmds[] = {
	{ "keygen", cmd_keygen, "-o PREFIX [--name NAME]", "make an Ed25519 key pair (PREFIX.key, PREFIX.pub)" },
	{ "sign", cmd_sign, "DIR -k KEY -o FILE", "build and sign the code segment in DIR" },
	{ "verify", cmd_verify, "FILE [--trust FILE]", "check a signed segment (and a trust store)" },
	{ "inspect", cmd_inspect, "FILE [--json]", "show what a signed segment holds" },
	{ NULL, NULL, NULL, NULL },
};
