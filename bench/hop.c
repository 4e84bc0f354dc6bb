/*
 * bench/hop: agents hopping between two daemons on loopback.
 *
 *   hop [AGENTD_BIN]   (default: $AGENTD_BIN, else ../agentd/agentd beside
 *                       this program)
 *
 * Starts two agentd processes (h1, h2) with host keys, a trusted-hosts list
 * and a trust store made here, data directories on /dev/shm when it exists,
 * and a strong-mobility agent that parks in agent.sleep holding a string of
 * a chosen size. A hop is one control request `push AGENT --to OTHER` sent
 * to the host holding the agent, answered when the target has committed:
 * suspend and persist at the source, OFFER / ACCEPT / TRANSFER / COMMITTED
 * with durable writes on both sides, ACTIVATE, restore at the target. The
 * segment is cached on both hosts after the first hop.
 *
 * Measures: one agent hopping back and forth (latency p50, p99, hops/s);
 * 100 agents hopping at once (aggregate hops/s); hop time against state
 * size from 1 KB to 10 MB. Then the same without a client in the loop:
 * agents that move themselves (agent.migrate) between the two hosts, one
 * (mean hop time) and 100 at once (aggregate hops/s), counted by the
 * daemons' own transfer counts (control `transfers`). Also the floors under
 * a hop: a control request answered at once, and a bare libzmq CURVE round
 * trip between two processes (no daemon) of a TRANSFER's size; and the
 * daemons' CPU time per hop (from /proc), which bounds the aggregate rate
 * on this machine whatever else runs on it. Prints a summary, then one
 * JSON object a line.
 *
 * For profiling: HOP_PARTS=1|2|3|4|5 (any combination, default all),
 * HOP_SINGLE=N hops in part 1, HOP_LOG=debug|info the daemons' log level,
 * HOP_PEER="key = value" one more line for the daemons' [peer] section
 * (e.g. "group_commit = false"), HOP_KEEP=1 keeps the data directory (logs,
 * stderr).
 */
#include "mig_key.h"
#include "mig_segment.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define SINGLE_HOPS 400
#define SINGLE_MAX 100000
#define CTL_ROUNDS 1000
#define MANY_AGENTS 100
#define MANY_SECONDS 5.0
#define RAW_ROUNDS 2000
#define RAW_BYTES 1024   /* about a TRANSFER of the 64-byte agent */
#define SELF_HOPS 2000   /* part 4: even, so the agent ends where it began */
#define POLL_US 20000    /* part 4: how often the hops are counted */

struct host {
	char name[8];
	char dir[512];
	char ctl[64];
	char peer[64];
	pid_t pid;
	void *req;   /* REQ socket for sequential requests */
	void *dealer; /* DEALER for concurrent ones */
};

static struct host H[2];
static void *zctx;
static char base[256];
static char segpath[600];

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int free_port(void)
{
	/* Ports from the pid, below the ephemeral range (32768-); good enough for
	 * a benchmark on loopback. */
	static int next;

	if (next == 0)
		next = 12000 + (getpid() % 2000) * 10;
	return next++;
}

static void die(const char *what)
{
	fprintf(stderr, "hop: %s\n", what);
	for (int i = 0; i < 2; i++)
		if (H[i].pid > 0)
			kill(H[i].pid, SIGKILL);
	exit(1);
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fwrite(data, 1, len, f) != len)
		die("cannot write a file");
	fclose(f);
}

static void append_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "a");

	if (f == NULL)
		die("cannot append to a file");
	fputs(text, f);
	fclose(f);
}

static void read_pub(const char *prefix, char *out, size_t len)
{
	char path[700];
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "%s.pub", prefix);
	f = fopen(path, "r");
	if (f == NULL)
		die("cannot read a public key");
	n = fread(out, 1, len - 1, f);
	out[n] = '\0';
	fclose(f);
}

static void make_key(const char *prefix, const char *name)
{
	struct mig_key *k = NULL;
	struct mig_error err;

	if (mig_key_generate(name, &k) != 0 || mig_key_save(k, prefix, &err) != 0)
		die("cannot make a key");
	mig_key_destroy(&k);
}

static void make_segment(void)
{
	static const char manifest[] = "agentd-manifest 1\nname = hopper\nversion = 1.0\n"
				       "entry = main.lua main\nmobility = strong\n"
				       "activation = resident\nfile = main.lua\n";
	static const char main_lua[] =
		"local start = ...\n"
		"function main(a)\n"
		"  a = a or start or {}\n"
		"  local blob = string.rep('x', tonumber(a.size) or 0)\n"
		"  local hops = 0\n"
		"  if a.between then\n"
		"    agent.recv()\n"
		"    local n = tonumber(a.hops) or 0\n"
		"    while n == 0 or hops < n do\n"
		"      local to = a.between[1]\n"
		"      if agent.host() == to then to = a.between[2] end\n"
		"      local ok, err = agent.migrate(to)\n"
		"      if not ok then agent.log('migrate: ' .. tostring(err)) end\n"
		"      hops = hops + 1\n"
		"    end\n"
		"  end\n"
		"  while true do\n"
		"    agent.sleep(3600)\n"
		"    hops = hops + #blob\n"
		"  end\n"
		"end\n";
	struct mig_seg_file f = { "main.lua", main_lua, sizeof main_lua - 1 };
	struct mig_segment *seg = NULL;
	struct mig_key *author = NULL;
	struct mig_error err;
	uint8_t *bytes = NULL;
	size_t len = 0;
	char path[600];

	snprintf(path, sizeof path, "%s/author", base);
	make_key(path, "author");
	snprintf(path, sizeof path, "%s/author.key", base);
	if (mig_key_load(path, &author, &err) != 0)
		die("cannot load the author key");
	if (mig_segment_build(manifest, sizeof manifest - 1, &f, 1, &seg, &err) != 0 ||
	    mig_segment_sign(seg, author, &bytes, &len) != 0)
		die("cannot sign the segment");
	snprintf(segpath, sizeof segpath, "%s/hopper.seg", base);
	write_file(segpath, bytes, len);
	free(bytes);
	mig_segment_destroy(&seg);
	mig_key_destroy(&author);
}

static void setup_hosts(void)
{
	char path[700], text[8192], pub[1024], trust[600], hostsfile[600];

	snprintf(trust, sizeof trust, "%s/trust", base);
	snprintf(path, sizeof path, "%s/author", base);
	read_pub(path, pub, sizeof pub);
	append_text(trust, pub);
	snprintf(hostsfile, sizeof hostsfile, "%s/trusted-hosts", base);
	for (int i = 0; i < 2; i++) {
		struct host *h = &H[i];

		snprintf(h->name, sizeof h->name, "h%d", i + 1);
		snprintf(h->dir, sizeof h->dir, "%s/h%d", base, i + 1);
		mkdir(h->dir, 0700);
		snprintf(path, sizeof path, "%s/data", h->dir);
		mkdir(path, 0700);
		snprintf(path, sizeof path, "%s/h%d", h->dir, i + 1);
		make_key(path, h->name);
		read_pub(path, pub, sizeof pub);
		append_text(hostsfile, pub);
		snprintf(h->ctl, sizeof h->ctl, "tcp://127.0.0.1:%d", free_port());
		snprintf(h->peer, sizeof h->peer, "tcp://127.0.0.1:%d", free_port());
	}
	for (int i = 0; i < 2; i++) {
		struct host *h = &H[i];

		snprintf(text, sizeof text,
			 "[daemon]\nhost = %s\ndata_dir = %s/data\nworkers = 2\n\n"
			 "[control]\ntcp = %s\nipc = \"\"\n\n"
			 "[peer]\nendpoint = %s\nhost_key = %s/%s.key\ntrust_store = %s\n"
			 "trusted_hosts = %s\n%s\n\n"
			 "[peers]\n%s = %s\n\n"
			 "[agents]\nmemory_limit = 67108864\nmessage_max = 67108864\n\n"
			 "[log]\nfile = %s/agentd.log\nlevel = %s\n",
			 h->name, h->dir, h->ctl, h->peer, h->dir, h->name, trust, hostsfile,
			 getenv("HOP_PEER") ? getenv("HOP_PEER") : "", H[1 - i].name,
			 H[1 - i].peer, h->dir,
			 getenv("HOP_LOG") ? getenv("HOP_LOG") : "warn");
		/* (the buffer is larger than any path this makes) */
		snprintf(path, sizeof path, "%s/agentd.conf", h->dir);
		write_file(path, text, strlen(text));
	}
}

/* One request on a REQ socket; the reply body goes to out. Returns 1 for
 * "ok", 0 for "error", -1 when no answer came. */
static int request(struct host *h, const char *cmd, const char *body, char *out, size_t len)
{
	char st[16];
	int n, more;
	size_t ml = sizeof more;

	if (zmq_send(h->req, "AGD-CTL/1", 9, ZMQ_SNDMORE) < 0 || zmq_send(h->req, cmd, strlen(cmd), ZMQ_SNDMORE) < 0 ||
	    zmq_send(h->req, body, strlen(body), 0) < 0)
		return -1;
	if (zmq_recv(h->req, st, sizeof st, 0) < 0) /* version */
		return -1;
	n = zmq_recv(h->req, st, sizeof st - 1, 0);
	if (n < 0)
		return -1;
	st[n < (int)sizeof st - 1 ? n : (int)sizeof st - 1] = '\0';
	n = zmq_recv(h->req, out, len - 1, 0);
	if (n < 0)
		return -1;
	out[(size_t)n < len - 1 ? (size_t)n : len - 1] = '\0';
	zmq_getsockopt(h->req, ZMQ_RCVMORE, &more, &ml);
	while (more) {
		char junk[64];

		zmq_recv(h->req, junk, sizeof junk, 0);
		zmq_getsockopt(h->req, ZMQ_RCVMORE, &more, &ml);
	}
	return strcmp(st, "ok") == 0;
}

static void open_req(struct host *h)
{
	int tmo = 30000, linger = 0;

	if (h->req)
		zmq_close(h->req);
	h->req = zmq_socket(zctx, ZMQ_REQ);
	zmq_setsockopt(h->req, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
	zmq_setsockopt(h->req, ZMQ_LINGER, &linger, sizeof linger);
	zmq_connect(h->req, h->ctl);
}

static void start_host(struct host *h, const char *bin)
{
	char conf[700], log[700], out[512];
	double end;

	snprintf(conf, sizeof conf, "%s/agentd.conf", h->dir);
	snprintf(log, sizeof log, "%s/stderr.log", h->dir);
	h->pid = fork();
	if (h->pid < 0)
		die("fork");
	if (h->pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(bin, bin, "--config", conf, (char *)NULL);
		_exit(127);
	}
	end = now_us() + 10e6;
	while (now_us() < end) {
		int tmo = 500;

		open_req(h);
		zmq_setsockopt(h->req, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
		if (request(h, "status", "{}", out, sizeof out) == 1) {
			open_req(h);
			return;
		}
		usleep(50000);
	}
	die("a daemon did not come up (see its log)");
}

/* Starts an agent on h holding `size` bytes; writes its id. */
static void spawn_args(struct host *h, const char *args, char id[32])
{
	char body[1024], out[1024];
	const char *p;

	snprintf(body, sizeof body, "{\"path\":\"%s\",\"args\":%s}", segpath, args);
	if (request(h, "run", body, out, sizeof out) != 1 || (p = strstr(out, "\"id\":\"")) == NULL) {
		fprintf(stderr, "hop: run failed: %s\n", out);
		die("cannot start the agent");
	}
	memcpy(id, p + 6, 16);
	id[16] = '\0';
}

static void spawn(struct host *h, size_t size, char id[32])
{
	char args[64];

	snprintf(args, sizeof args, "{\"size\":%zu}", size);
	spawn_args(h, args, id);
}

/* An agent on h that, once sent a message, migrates itself between the two
 * hosts `hops` times (0: for ever). */
static void spawn_mover(struct host *h, int hops, char id[32])
{
	char args[128];

	snprintf(args, sizeof args, "{\"size\":64,\"hops\":%d,\"between\":[\"%s\",\"%s\"]}", hops, H[0].name,
		 H[1].name);
	spawn_args(h, args, id);
}

static void send_go(struct host *h, const char *id)
{
	char body[128], out[512];

	snprintf(body, sizeof body, "{\"agent\":\"%s\",\"msg\":\"go\"}", id);
	if (request(h, "send", body, out, sizeof out) != 1) {
		fprintf(stderr, "hop: send failed: %s\n", out);
		die("cannot start a moving agent");
	}
}

/* Moves both daemons have committed as sources since they started: with
 * only agents moving themselves, the hops made. -1 if a daemon did not
 * answer. */
static long moved_total(void)
{
	long total = 0;

	for (int i = 0; i < 2; i++) {
		char out[8192];
		const char *p;

		if (request(&H[i], "transfers", "{}", out, sizeof out) != 1 ||
		    (p = strstr(out, "\"moved_out\":")) == NULL)
			return -1;
		total += strtol(p + 12, NULL, 10);
	}
	return total;
}

static int push_body(char *body, size_t len, const char *id, const struct host *to)
{
	return snprintf(body, len, "{\"agent\":\"%s\",\"to\":\"%s\",\"to_endpoint\":\"%s\",\"mode\":\"strong\"}",
			id, to->name, to->peer);
}

/* One hop of `id` from H[from]; returns its time in microseconds, or < 0. */
static double hop(int from, const char *id)
{
	char body[512], out[1024];
	double t0 = now_us();
	int rc;

	push_body(body, sizeof body, id, &H[1 - from]);
	rc = request(&H[from], "push", body, out, sizeof out);
	if (rc != 1) {
		fprintf(stderr, "hop: push failed: %s\n", out);
		return -1;
	}
	return now_us() - t0;
}

/* CPU time (user + system) both daemons have used so far, in us: with the
 * hops counted over the same span it tells what a hop costs the machine,
 * whatever else runs on it. */
static double daemons_cpu_us(void)
{
	double total = 0;
	long tick = sysconf(_SC_CLK_TCK);

	for (int i = 0; i < 2; i++) {
		char path[64], buf[2048], *p;
		unsigned long ut = 0, st = 0;
		FILE *f;
		size_t n;

		snprintf(path, sizeof path, "/proc/%d/stat", (int)H[i].pid);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = '\0';
		/* Fields 14 and 15, counted after the ")" that ends field 2. */
		p = strrchr(buf, ')');
		if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
			continue;
		total += (double)(ut + st) * 1e6 / (double)(tick > 0 ? tick : 100);
	}
	return total;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);

	return v[i < n ? i : n - 1];
}

static void json(const char *metric, double value, const char *unit)
{
	printf("{\"bench\":\"hop\",\"metric\":\"%s\",\"value\":%.3f,\"unit\":\"%s\"}\n", metric, value, unit);
}

/* ---- the wire's own floor: libzmq alone, no daemon ---- */

static void raw_echo(const char *ep, const char *secret, int rounds)
{
	void *ctx = zmq_ctx_new();
	void *s = zmq_socket(ctx, ZMQ_ROUTER);
	int one = 1, tmo = 10000, linger = 1000;
	char *buf = malloc(RAW_BYTES);

	zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one);
	zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, secret, 40);
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
	if (buf == NULL || zmq_bind(s, ep) != 0)
		_exit(1);
	for (int i = 0; i < rounds; i++) {
		char who[256];
		int n = zmq_recv(s, who, sizeof who, 0), len;

		if (n < 0 || (len = zmq_recv(s, buf, RAW_BYTES, 0)) < 0)
			_exit(1);
		zmq_send(s, who, (size_t)n, ZMQ_SNDMORE);
		zmq_send(s, buf, (size_t)len, 0);
	}
	free(buf);
	/* The last answer must leave before the process does. */
	zmq_close(s);
	zmq_ctx_term(ctx);
	_exit(0);
}

/* p50 of a CURVE-encrypted ROUTER/DEALER round trip of RAW_BYTES over
 * loopback TCP between this process and a child: what two daemons'
 * messages cost before any daemon work. A pushed hop makes two such round
 * trips (client and source, source and target); -1 if it could not run. */
static double raw_curve_rtt(void)
{
	static double t[RAW_ROUNDS];
	char spub[41], ssec[41], cpub[41], csec[41], ep[64];
	char *buf = calloc(1, RAW_BYTES);
	int warm = 100, tmo = 10000, linger = 0, ok = 1, st;
	void *d;
	pid_t pid;

	if (buf == NULL || zmq_curve_keypair(spub, ssec) != 0 || zmq_curve_keypair(cpub, csec) != 0) {
		free(buf);
		return -1;
	}
	snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", free_port());
	pid = fork();
	if (pid == 0)
		raw_echo(ep, ssec, RAW_ROUNDS + warm);
	d = zmq_socket(zctx, ZMQ_DEALER);
	zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, spub, 40);
	zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, cpub, 40);
	zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, csec, 40);
	zmq_setsockopt(d, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
	zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof linger);
	zmq_connect(d, ep);
	for (int i = 0; i < RAW_ROUNDS + warm && ok; i++) {
		double t0 = now_us();

		ok = zmq_send(d, buf, RAW_BYTES, 0) == RAW_BYTES && zmq_recv(d, buf, RAW_BYTES, 0) == RAW_BYTES;
		if (i >= warm)
			t[i - warm] = now_us() - t0;
	}
	zmq_close(d);
	free(buf);
	if (pid > 0)
		waitpid(pid, &st, 0);
	if (!ok || pid < 0)
		return -1;
	qsort(t, RAW_ROUNDS, sizeof t[0], cmp_double);
	return pct(t, RAW_ROUNDS, 0.5);
}

/* ---- agents that move themselves: no client in the loop ---- */

/* Part 4: one agent migrating itself SELF_HOPS times; the mean hop time. */
static double self_one(double *rate)
{
	char id[32];
	long c0, c;
	double t0, t, end;

	spawn_mover(&H[0], SELF_HOPS, id);
	usleep(200000);
	c0 = moved_total();
	t0 = now_us();
	send_go(&H[0], id);
	end = t0 + 120e6;
	do {
		usleep(POLL_US);
		c = moved_total();
		t = now_us();
	} while (c >= 0 && c - c0 < SELF_HOPS && t < end);
	if (c - c0 < SELF_HOPS)
		return -1;
	*rate = SELF_HOPS / ((t - t0) / 1e6);
	return (t - t0) / SELF_HOPS;
}

/* Part 5: MANY_AGENTS agents migrating themselves for ever; the aggregate
 * rate over MANY_SECONDS after a second's warm-up, and the daemons' CPU
 * time per hop. They go on until the daemons stop. */
static double self_many(double *cpu)
{
	char id[32];
	long c0, c1;
	double t0, cpu0;

	for (int i = 0; i < MANY_AGENTS; i++) {
		spawn_mover(&H[i % 2], 0, id);
		send_go(&H[i % 2], id);
	}
	usleep(1000000);
	c0 = moved_total();
	cpu0 = daemons_cpu_us();
	t0 = now_us();
	usleep((useconds_t)(MANY_SECONDS * 1e6));
	c1 = moved_total();
	*cpu = c1 > c0 ? (daemons_cpu_us() - cpu0) / (double)(c1 - c0) : 0;
	if (c0 < 0 || c1 < 0)
		return -1;
	return (double)(c1 - c0) / ((now_us() - t0) / 1e6);
}

/* ---- many agents at once, over one DEALER per daemon ---- */

static void open_dealer(struct host *h)
{
	int linger = 0, hwm = 100000;

	h->dealer = zmq_socket(zctx, ZMQ_DEALER);
	zmq_setsockopt(h->dealer, ZMQ_LINGER, &linger, sizeof linger);
	zmq_setsockopt(h->dealer, ZMQ_SNDHWM, &hwm, sizeof hwm);
	zmq_setsockopt(h->dealer, ZMQ_RCVHWM, &hwm, sizeof hwm);
	zmq_connect(h->dealer, h->ctl);
}

static void dealer_push(int from, const char *id)
{
	char body[512];

	push_body(body, sizeof body, id, &H[1 - from]);
	zmq_send(H[from].dealer, "", 0, ZMQ_SNDMORE);
	zmq_send(H[from].dealer, "AGD-CTL/1", 9, ZMQ_SNDMORE);
	zmq_send(H[from].dealer, "push", 4, ZMQ_SNDMORE);
	zmq_send(H[from].dealer, body, strlen(body), 0);
}

/* Reads one reply from a DEALER: 1 ok (agent id in id), 0 error, -1 none. */
static int dealer_reply(void *d, char id[32], char *out, size_t len)
{
	char fr[4][64];
	int n, more = 1, k = 0;
	size_t ml = sizeof more;
	const char *p;

	out[0] = '\0';
	while (more && k < 3) {
		n = zmq_recv(d, fr[k], sizeof fr[k] - 1, 0);
		if (n < 0)
			return -1;
		fr[k][n < 63 ? n : 63] = '\0';
		zmq_getsockopt(d, ZMQ_RCVMORE, &more, &ml);
		k++;
	}
	if (!more)
		return -1;
	n = zmq_recv(d, out, len - 1, 0);
	out[n > 0 ? ((size_t)n < len - 1 ? (size_t)n : len - 1) : 0] = '\0';
	zmq_getsockopt(d, ZMQ_RCVMORE, &more, &ml);
	while (more) {
		char junk[64];

		zmq_recv(d, junk, sizeof junk, 0);
		zmq_getsockopt(d, ZMQ_RCVMORE, &more, &ml);
	}
	if ((p = strstr(out, "\"agent\":\"")) != NULL) {
		memcpy(id, p + 9, 16);
		id[16] = '\0';
	} else {
		id[0] = '\0';
	}
	return strcmp(fr[2], "ok") == 0;
}

int main(int argc, char **argv)
{
	const char *bin = argc > 1 ? argv[1] : getenv("AGENTD_BIN");
	char selfbin[PATH_MAX], id[32];
	static double lat[SINGLE_MAX];
	static double ctl[CTL_ROUNDS];
	double total0, total, cpu0, cpu_single = 0, cpu_many = 0;
	/* HOP_PARTS picks parts (default "12345"), HOP_SINGLE the hops of part 1:
	 * for profiling one part at a time. */
	const char *parts = getenv("HOP_PARTS") ? getenv("HOP_PARTS") : "12345";
	int nsingle = getenv("HOP_SINGLE") ? atoi(getenv("HOP_SINGLE")) : SINGLE_HOPS;
	int at = 0, errors = 0;
	static const size_t sizes[] = { 1u << 10, 10u << 10, 100u << 10, 1u << 20, 10u << 20 };
	double size_us[sizeof sizes / sizeof sizes[0]];
	double many_rate = 0, raw_rtt, self_us = -1, self_rate = 0, self_many_rate = -1, self_cpu = 0;
	long many_hops = 0;

	if (bin == NULL) {
		ssize_t n = readlink("/proc/self/exe", selfbin, sizeof selfbin - 32);

		if (n <= 0)
			die("no agentd binary: pass its path or set AGENTD_BIN");
		selfbin[n] = '\0';
		*strrchr(selfbin, '/') = '\0';
		strcat(selfbin, "/../agentd/agentd");
		bin = selfbin;
	}
	if (nsingle < 10 || nsingle > SINGLE_MAX)
		die("HOP_SINGLE: 10 to 100000");
	if (access(bin, X_OK) != 0)
		die("agentd binary not found");
	snprintf(base, sizeof base, "%s/agentd-hop-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (mkdtemp(base) == NULL)
		die("mkdtemp");
	zctx = zmq_ctx_new();
	make_segment();
	setup_hosts();
	start_host(&H[0], bin);
	start_host(&H[1], bin);

	/* 0. The floor under a hop: one control request answered at once
	 * (status), the same REQ round trip a hop's push makes. */
	for (int i = 0; i < CTL_ROUNDS; i++) {
		char out[4096];
		double t0 = now_us();

		if (request(&H[0], "status", "{}", out, sizeof out) != 1)
			die("status failed");
		ctl[i] = now_us() - t0;
	}
	qsort(ctl, CTL_ROUNDS, sizeof ctl[0], cmp_double);
	raw_rtt = raw_curve_rtt();

	/* 1. One agent back and forth; the first hop (which fetches the
	 * segment) is a warm-up and not counted. */
	spawn(&H[0], 64, id);
	usleep(100000);
	if (hop(at, id) < 0)
		die("the first hop failed");
	at = 1 - at;
	cpu0 = daemons_cpu_us();
	total0 = now_us();
	for (int i = 0; i < nsingle; i++) {
		lat[i] = hop(at, id);
		if (lat[i] < 0)
			die("a hop failed");
		at = 1 - at;
	}
	total = now_us() - total0;
	cpu_single = (daemons_cpu_us() - cpu0) / nsingle;
	qsort(lat, (size_t)nsingle, sizeof lat[0], cmp_double);
	fprintf(stderr, "hop: one agent: p50 %.0f us\n", pct(lat, nsingle, 0.5));

	/* 2. Many agents at once: each hops again as soon as its last hop is
	 * answered. */
	if (strchr(parts, '2') != NULL) {
		char ids[MANY_AGENTS][32], out[1024], aid[32];
		int where[MANY_AGENTS];
		double t0, end;

		for (int i = 0; i < MANY_AGENTS; i++) {
			spawn(&H[i % 2], 64, ids[i]);
			where[i] = i % 2;
		}
		usleep(200000);
		open_dealer(&H[0]);
		open_dealer(&H[1]);
		cpu0 = daemons_cpu_us();
		t0 = now_us();
		end = t0 + MANY_SECONDS * 1e6;
		for (int i = 0; i < MANY_AGENTS; i++)
			dealer_push(where[i], ids[i]);
		while (now_us() < end) {
			zmq_pollitem_t it[2] = { { H[0].dealer, 0, ZMQ_POLLIN, 0 }, { H[1].dealer, 0, ZMQ_POLLIN, 0 } };

			if (zmq_poll(it, 2, 100) <= 0)
				continue;
			for (int h = 0; h < 2; h++) {
				int rc;

				if (!(it[h].revents & ZMQ_POLLIN))
					continue;
				rc = dealer_reply(H[h].dealer, aid, out, sizeof out);
				for (int i = 0; i < MANY_AGENTS; i++) {
					if (strcmp(ids[i], aid) != 0)
						continue;
					if (rc == 1) {
						many_hops++;
						where[i] = 1 - where[i];
					} else {
						errors++;
					}
					if (now_us() < end)
						dealer_push(where[i], ids[i]);
				}
			}
		}
		many_rate = (double)many_hops / ((now_us() - t0) / 1e6);
		if (many_hops > 0)
			cpu_many = (daemons_cpu_us() - cpu0) / (double)many_hops;
		fprintf(stderr, "hop: %d agents: %.0f hops/s\n", MANY_AGENTS, many_rate);
		/* Let the last requests finish before the size runs. */
		usleep(2000000);
		zmq_close(H[0].dealer);
		zmq_close(H[1].dealer);
	}

	/* 3. Hop time against state size (median of 5 hops each). */
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		double t[5];

		size_us[s] = -1;
		if (strchr(parts, '3') == NULL)
			continue;
		int from = 0;

		spawn(&H[0], sizes[s], id);
		usleep(200000);
		size_us[s] = -1;
		for (int k = 0; k < 5; k++) {
			t[k] = hop(from, id);
			if (t[k] < 0)
				break;
			from = 1 - from;
			if (k == 4) {
				qsort(t, 5, sizeof t[0], cmp_double);
				size_us[s] = t[2];
			}
		}
		fprintf(stderr, "hop: state %zu bytes: %.0f us\n", sizes[s], size_us[s]);
	}

	/* 4 and 5. Agents that move themselves; 5 last, as its agents never
	 * stop. */
	if (strchr(parts, '4') != NULL) {
		self_us = self_one(&self_rate);
		fprintf(stderr, "hop: one agent moving itself: %.0f us a hop\n", self_us);
	}
	if (strchr(parts, '5') != NULL) {
		self_many_rate = self_many(&self_cpu);
		fprintf(stderr, "hop: %d agents moving themselves: %.0f hops/s\n", MANY_AGENTS, self_many_rate);
	}

	for (int i = 0; i < 2; i++) {
		int st;

		zmq_close(H[i].req);
		kill(H[i].pid, SIGTERM);
		waitpid(H[i].pid, &st, 0);
	}
	zmq_ctx_term(zctx);

	printf("hop: two daemons on loopback, data in %s\n", base);
	printf("  one agent, %d hops: p50 %.0f us, p99 %.0f us, %.0f hops/s\n", nsingle,
	       pct(lat, nsingle, 0.5), pct(lat, nsingle, 0.99), nsingle / (total / 1e6));
	printf("  %d agents at once for %.0f s: %ld hops, %.0f hops/s aggregate (%d errors)\n", MANY_AGENTS,
	       MANY_SECONDS, many_hops, many_rate, errors);
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
		if (size_us[s] >= 0)
			printf("  state %8zu bytes: hop %.0f us (median of 5)\n", sizes[s], size_us[s]);
		else
			printf("  state %8zu bytes: hop FAILED\n", sizes[s]);
	printf("  daemons' CPU per hop: %.0f us (one agent), %.0f us (%d agents); 2 cores give at most %.0f hops/s\n",
	       cpu_single, cpu_many, MANY_AGENTS, cpu_many > 0 ? 2e6 / cpu_many : 0);
	if (self_us >= 0)
		printf("  one agent moving itself (agent.migrate), %d hops: %.0f us a hop (mean), %.0f hops/s\n",
		       SELF_HOPS, self_us, self_rate);
	if (self_many_rate >= 0)
		printf("  %d agents moving themselves for %.0f s: %.0f hops/s aggregate, CPU %.0f us a hop\n",
		       MANY_AGENTS, MANY_SECONDS, self_many_rate, self_cpu);
	printf("  floor: control request answered at once (status): p50 %.0f us\n", pct(ctl, CTL_ROUNDS, 0.5));
	printf("  floor: bare libzmq CURVE round trip, %d bytes, two processes: p50 %.0f us\n", RAW_BYTES,
	       raw_rtt);
	printf("  targets: p50 < 250 us, >= 5000 aggregate hops/s\n");
	json("control_rtt_p50", pct(ctl, CTL_ROUNDS, 0.5), "us");
	if (raw_rtt >= 0)
		json("zmq_curve_rtt_p50", raw_rtt, "us");
	json("hop_latency_p50", pct(lat, nsingle, 0.5), "us");
	json("hop_latency_p99", pct(lat, nsingle, 0.99), "us");
	json("hops_per_s_one_agent", nsingle / (total / 1e6), "hops/s");
	json("hops_per_s_100_agents", many_rate, "hops/s");
	json("cpu_per_hop_one_agent", cpu_single, "us");
	if (cpu_many > 0)
		json("cpu_per_hop_100_agents", cpu_many, "us");
	if (self_us >= 0) {
		json("self_hop_mean", self_us, "us");
		json("self_hops_per_s_one_agent", self_rate, "hops/s");
	}
	if (self_many_rate >= 0) {
		json("self_hops_per_s_100_agents", self_many_rate, "hops/s");
		json("cpu_per_self_hop_100_agents", self_cpu, "us");
	}
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		char m[64];

		snprintf(m, sizeof m, "hop_time_state_%zuB", sizes[s]);
		if (size_us[s] >= 0)
			json(m, size_us[s], "us");
	}
	{
		char cmd[600];

		snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
		if (getenv("HOP_KEEP") == NULL && system(cmd) != 0)
			fprintf(stderr, "hop: could not remove %s\n", base);
	}
	return 0;
}
