/*
 * test_zap.c: the ZAP handler, spoken to directly over inproc as libzmq
 * would: a trusted CURVE key gets 200 and its host name as User-Id; an
 * unknown key, another domain, the NULL or PLAIN mechanism and malformed
 * requests get 400; untrusting a key takes effect.
 */
#include "agd_zap.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <string.h>
#include <zmq.h>

static void *ctx;
static struct agd_zap *zap;
static void *req;
static uint8_t trusted[32], stranger[32];

static void setup(void)
{
	int linger = 0, tmo = 3000;

	cr_assert_geq(sodium_init(), 0);
	randombytes_buf(trusted, sizeof trusted);
	randombytes_buf(stranger, sizeof stranger);
	ctx = zmq_ctx_new();
	cr_assert_eq(agd_zap_new(ctx, &zap), 0);
	cr_assert_eq(agd_zap_trust(zap, AGD_ZAP_DOMAIN_PEER, trusted, "host-b"), 0);
	cr_assert_eq(agd_zap_start(zap), 0);
	req = zmq_socket(ctx, ZMQ_REQ);
	zmq_setsockopt(req, ZMQ_LINGER, &linger, sizeof linger);
	zmq_setsockopt(req, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
	cr_assert_eq(zmq_connect(req, "inproc://zeromq.zap.01"), 0);
}

static void teardown(void)
{
	zmq_close(req);
	agd_zap_destroy(&zap);
	zmq_ctx_term(ctx);
}

TestSuite(agd_zap, .init = setup, .fini = teardown, .timeout = 30);

struct reply {
	char f[8][128];
	int n;
};

/* Sends a request of n frames (lens < 0 mean strlen) and reads the reply. */
static void ask(const void *const *frames, const int *lens, int n, struct reply *r)
{
	int more = 1;

	for (int i = 0; i < n; i++) {
		size_t l = lens[i] < 0 ? strlen(frames[i]) : (size_t)lens[i];

		cr_assert_geq(zmq_send(req, frames[i], l, i + 1 < n ? ZMQ_SNDMORE : 0), 0);
	}
	memset(r, 0, sizeof *r);
	while (more) {
		int got = zmq_recv(req, r->f[r->n < 8 ? r->n : 7], 127, 0);
		size_t ml = sizeof more;

		cr_assert_geq(got, 0, "no reply from the handler");
		zmq_getsockopt(req, ZMQ_RCVMORE, &more, &ml);
		r->n++;
	}
}

static void ask_curve(const char *domain, const char *mech, const uint8_t *key, struct reply *r)
{
	const void *fr[] = { "1.0", "7", domain, "127.0.0.1", "", mech, key };
	int lens[] = { -1, -1, -1, -1, 0, -1, 32 };

	ask(fr, lens, key ? 7 : 6, r);
}

Test(agd_zap, trusted_key_is_admitted_with_its_host_name)
{
	struct reply r;
	struct agd_zap_stats st;

	ask_curve(AGD_ZAP_DOMAIN_PEER, "CURVE", trusted, &r);
	cr_assert_eq(r.n, 6);
	cr_assert_str_eq(r.f[0], "1.0");
	cr_assert_str_eq(r.f[1], "7", "the request id is echoed");
	cr_assert_str_eq(r.f[2], "200");
	cr_assert_str_eq(r.f[4], "host-b");
	agd_zap_stats(zap, &st);
	cr_assert_eq(st.allowed, 1);
}

Test(agd_zap, unknown_key_is_refused)
{
	struct reply r;

	ask_curve(AGD_ZAP_DOMAIN_PEER, "CURVE", stranger, &r);
	cr_assert_str_eq(r.f[2], "400");
	cr_assert_str_eq(r.f[4], "");
}

Test(agd_zap, trusted_key_in_another_domain_is_refused)
{
	struct reply r;

	ask_curve("other.domain", "CURVE", trusted, &r);
	cr_assert_str_eq(r.f[2], "400");
}

Test(agd_zap, null_and_plain_mechanisms_are_refused)
{
	struct reply r;
	const void *plain[] = { "1.0", "8", AGD_ZAP_DOMAIN_PEER, "127.0.0.1", "", "PLAIN", "u", "p" };
	int plens[] = { -1, -1, -1, -1, 0, -1, -1, -1 };

	ask_curve(AGD_ZAP_DOMAIN_PEER, "NULL", NULL, &r);
	cr_assert_str_eq(r.f[2], "400");
	ask(plain, plens, 8, &r);
	cr_assert_str_eq(r.f[2], "400");
	cr_assert_str_eq(r.f[1], "8");
}

Test(agd_zap, malformed_requests_get_an_answer_and_are_counted)
{
	struct reply r;
	struct agd_zap_stats st;
	const void *shortreq[] = { "1.0", "9", AGD_ZAP_DOMAIN_PEER };
	int slens[] = { -1, -1, -1 };
	const void *badver[] = { "2.0", "10", AGD_ZAP_DOMAIN_PEER, "a", "", "CURVE", trusted };
	int blens[] = { -1, -1, -1, -1, 0, -1, 32 };
	const void *shortkey[] = { "1.0", "11", AGD_ZAP_DOMAIN_PEER, "a", "", "CURVE", trusted };
	int klens[] = { -1, -1, -1, -1, 0, -1, 31 };

	ask(shortreq, slens, 3, &r);
	cr_assert_str_eq(r.f[2], "400");
	ask(badver, blens, 7, &r);
	cr_assert_str_eq(r.f[2], "400");
	ask(shortkey, klens, 7, &r);
	cr_assert_str_eq(r.f[2], "400");
	agd_zap_stats(zap, &st);
	cr_assert_eq(st.malformed, 2);
	cr_assert_eq(st.allowed, 0);
	/* Still serving. */
	ask_curve(AGD_ZAP_DOMAIN_PEER, "CURVE", trusted, &r);
	cr_assert_str_eq(r.f[2], "200");
}

Test(agd_zap, untrusting_a_key_takes_effect)
{
	struct reply r;

	cr_assert_eq(agd_zap_untrust(zap, AGD_ZAP_DOMAIN_PEER, trusted), 0);
	ask_curve(AGD_ZAP_DOMAIN_PEER, "CURVE", trusted, &r);
	cr_assert_str_eq(r.f[2], "400");
	cr_assert_eq(agd_zap_untrust(zap, AGD_ZAP_DOMAIN_PEER, trusted), AGD_ZAP_ERR_ARG);
}

Test(agd_zap, second_handler_in_one_context_is_refused)
{
	struct agd_zap *z2 = NULL;

	cr_assert_eq(agd_zap_new(ctx, &z2), AGD_ZAP_ERR_ZMQ);
	cr_assert_null(z2);
}
