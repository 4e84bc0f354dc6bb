/*
 * fuzz_wire.c: libFuzzer target for the peer wire codec. The input is the
 * packed form of a multipart message (agd_wire_pack); whatever decodes must
 * re-encode and decode to the same message, and nothing may read out of
 * bounds, leak or crash. A TRANSFER's log part (blob 3) goes through the
 * log-ring decoder as the target's does; what it accepts must encode again
 * within the caps.
 */
#include "agd_logring.h"
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
	if (m.type == AGD_MSG_TRANSFER && m.blob[3].len > 0) {
		struct agd_logring *r = NULL;

		if (agd_logring_decode(m.blob[3].data, m.blob[3].len, &r) == 0) {
			buf = NULL;
			len = 0;
			if (agd_logring_encode(r, &buf, &len) != 0 || len > m.blob[3].len ||
			    agd_logring_count(r) > AGD_LOGRING_LINES)
				abort();
			free(buf);
		}
		agd_logring_destroy(&r);
	}
	return 0;
}
