/*
 * fuzz_wire.c: libFuzzer target for the peer wire codec. The input is the
 * packed form of a multipart message (agd_wire_pack); whatever decodes must
 * re-encode and decode to the same message, and nothing may read out of
 * bounds, leak or crash.
 */
#include "agd_wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agd_wire_bytes f[AGD_WIRE_FRAMES_MAX];
	static struct agd_wire_frames fr;
	struct agd_wire_msg m, m2;
	uint8_t *buf = NULL;
	size_t n, len = 0;

	if (agd_wire_unpack(data, size, f, AGD_WIRE_FRAMES_MAX, &n) != 0)
		return 0;
	if (agd_wire_decode(f, n, &m) != 0)
		return 0;
	if (agd_wire_encode(&m, &fr) != 0)
		abort();
	if (agd_wire_decode(fr.f, fr.n, &m2) != 0)
		abort();
	if (m2.type != m.type || m2.corr != m.corr || m2.epoch != m.epoch ||
	    strcmp(m2.agent, m.agent) != 0 || strcmp(m2.text, m.text) != 0)
		abort();
	if (agd_wire_pack(&fr, &buf, &len) != 0)
		abort();
	free(buf);
	return 0;
}
