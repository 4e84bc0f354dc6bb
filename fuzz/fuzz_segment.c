/*
 * fuzz_segment.c: libFuzzer target for the parsers of issue 5. Every input
 * is fed to the signed-segment decoder, the manifest parser and the trust
 * store parser. Besides "no crash, no leak, no overread" (ASan, UBSan), it
 * checks two properties and aborts when they break:
 * - a manifest that parses has a canonical text that parses back to the
 *   same manifest and formats to the same text;
 * - a segment that decodes re-encodes: its canonical bytes hash to its
 *   hash, and building a segment from its manifest and files gives the
 *   same hash.
 */
#include "agd_trust.h"
#include "mig_manifest.h"
#include "mig_segment.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_manifest(const uint8_t *data, size_t size)
{
	static struct mig_manifest m, again;
	static char text[MIG_MANIFEST_TEXT_MAX + 1], text2[MIG_MANIFEST_TEXT_MAX + 1];
	size_t len, len2;

	if (mig_manifest_parse((const char *)data, size, &m, NULL) != 0)
		return;
	if (mig_manifest_format(&m, text, sizeof text, &len) != 0)
		abort();
	if (mig_manifest_parse(text, len, &again, NULL) != 0 || memcmp(&m, &again, sizeof m) != 0)
		abort();
	if (mig_manifest_format(&again, text2, sizeof text2, &len2) != 0 || len != len2 ||
	    memcmp(text, text2, len) != 0)
		abort();
}

static void check_segment(const uint8_t *data, size_t size)
{
	struct mig_segment *seg = NULL, *rebuilt = NULL;
	struct mig_seg_file files[MIG_MANIFEST_FILES_MAX];
	const uint8_t *canon;
	const char *mtext;
	uint8_t h[MIG_SEGMENT_HASH_LEN];
	size_t clen, mlen, n;

	if (mig_segment_decode(data, size, &seg, NULL) != 0)
		return;
	(void)mig_segment_verify(seg);
	canon = mig_segment_canonical(seg, &clen);
	crypto_generichash(h, sizeof h, canon, clen, NULL, 0);
	if (memcmp(h, mig_segment_hash(seg), sizeof h) != 0)
		abort();
	n = mig_segment_nfiles(seg);
	for (size_t i = 0; i < n; i++)
		if (mig_segment_file(seg, i, &files[i].name, &files[i].text, &files[i].len) != 0)
			abort();
	mtext = mig_segment_manifest_text(seg, &mlen);
	if (mig_segment_build(mtext, mlen, files, n, &rebuilt, NULL) != 0 ||
	    memcmp(mig_segment_hash(rebuilt), mig_segment_hash(seg), MIG_SEGMENT_HASH_LEN) != 0)
		abort();
	mig_segment_destroy(&rebuilt);
	mig_segment_destroy(&seg);
}

static void check_trust(const uint8_t *data, size_t size)
{
	struct agd_trust *t = NULL;
	char why[AGD_TRUST_WHY_MAX];

	if (agd_trust_parse((const char *)data, size, &t, why, sizeof why) == 0)
		(void)agd_trust_count(t);
	agd_trust_destroy(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (sodium_init() < 0)
		abort();
	check_segment(data, size);
	check_manifest(data, size);
	check_trust(data, size);
	return 0;
}
