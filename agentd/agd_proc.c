/*
 * agd_proc.c: process isolation (see agd_proc.h).
 *
 * Messages: u32 length (big-endian, of what follows) | u8 type | payload.
 * Payload fields are u8, u32, u64 (big-endian) and blobs (u32 length |
 * bytes); every read is checked against the end of the message, and a
 * message over AGD_PROC_MSG_MAX is refused (the peer is then treated as
 * gone). Daemon -> worker: INIT, RESUME, PERSIST, CALL (an exported
 * method: answered by CALLRES), UNPARK (a park's answer, staged for the
 * next RESUME: no answer), RELEASE (drop the agent and wait for the next
 * INIT: answered by OK with the CPU milliseconds the process has used);
 * worker -> daemon: the answers (OK, ERR, RESULT,
 * STATE, CALLRES) and, during a RESUME or CALL, the host calls LOG, SEND
 * and PROXY (answered by RC) and TAKE (answered by MSG).
 *
 * The worker process is started by fork + exec of /proc/self/exe, so it
 * starts single-threaded with nothing inherited but its socket: between
 * fork and exec the child calls only async-signal-safe functions.
 *
 * A process whose agent was passivated or ended is not ended with it: it
 * drops its Lua state (RELEASE) and waits in a small pool for the next
 * activation with the same memory quota (its address-space limit), so an
 * on-demand agent's activation costs a message, not a fork and exec. A
 * process that died, broke the protocol or has used much CPU (its
 * RLIMIT_CPU counts for the process's whole life) is not pooled.
 */
#include "agd_proc.h"

#include "agd_call.h"
#include "agd_config.h"
#include "agd_log.h"
#include "agd_park.h"
#include "agd_rt.h"
#include "mig_segment.h"
#include "mig_state.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define AGD_PROC_TEXT_MAX 520 /* a park answer's text (AGD_WIRE_TEXT_MAX and its NUL) */

enum {
	M_INIT = 1, M_RESUME, M_PERSIST, M_CALL, M_UNPARK, M_RELEASE, /* daemon -> worker */
	M_OK = 16, M_ERR, M_RESULT, M_STATE, M_CALLRES, /* worker -> daemon: answers */
	M_LOG = 32, M_SEND, M_TAKE, M_PROXY,           /* worker -> daemon: host calls */
	M_RC = 48, M_MSG,                              /* daemon -> worker: their answers */
};

struct agd_proc {
	pid_t pid;              /* the worker process */
	int fd;                 /* our end of the socketpair */
	struct agd_rt *rt;      /* borrowed */
	struct agd_agent *a;    /* borrowed */
	size_t memory;          /* as of the last RESULT */
	size_t memory_quota;    /* the quota the process's limits were set for */
	uint64_t instructions;  /* as of the last RESULT */
	int dead;               /* the process is gone or the channel broken */
	char why[128];          /* why it is dead */
};

/* ---------------------------------------------------------------- codec */

struct pb {
	uint8_t *d;  /* bytes, with 5 reserved at the front for the header */
	size_t n;    /* bytes used */
	size_t cap;  /* allocated */
	int err;     /* allocation failed */
};

static void pb_init(struct pb *b, int type)
{
	memset(b, 0, sizeof *b);
	b->cap = 256;
	b->d = malloc(b->cap);
	if (b->d == NULL) {
		b->err = 1;
		return;
	}
	b->n = 5;
	b->d[4] = (uint8_t)type;
}

static void pb_put(struct pb *b, const void *p, size_t n)
{
	if (b->err || n == 0)
		return;
	if (b->cap - b->n < n) {
		size_t cap = b->cap;
		uint8_t *d;

		while (cap - b->n < n)
			cap *= 2;
		d = realloc(b->d, cap);
		if (d == NULL) {
			b->err = 1;
			return;
		}
		b->d = d;
		b->cap = cap;
	}
	memcpy(b->d + b->n, p, n);
	b->n += n;
}

static void pb_u32(struct pb *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	pb_put(b, x, 4);
}

static void pb_u64(struct pb *b, uint64_t v)
{
	pb_u32(b, (uint32_t)(v >> 32));
	pb_u32(b, (uint32_t)v);
}

static void pb_blob(struct pb *b, const void *p, size_t n)
{
	pb_u32(b, (uint32_t)n);
	pb_put(b, p, n);
}

static void pb_str(struct pb *b, const char *s)
{
	pb_blob(b, s, s ? strlen(s) : 0);
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t n)
{
	uint8_t *c = p;

	while (n > 0) {
		ssize_t r = read(fd, c, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Sends and frees b. 0 or -1. */
static int pb_send(int fd, struct pb *b)
{
	uint32_t len = (uint32_t)(b->n - 4);
	int rc;

	if (b->err || b->n - 4 > AGD_PROC_MSG_MAX) {
		free(b->d);
		return -1;
	}
	b->d[0] = (uint8_t)(len >> 24);
	b->d[1] = (uint8_t)(len >> 16);
	b->d[2] = (uint8_t)(len >> 8);
	b->d[3] = (uint8_t)len;
	rc = write_all(fd, b->d, b->n);
	free(b->d);
	return rc;
}

/* A received message: type and a bounded cursor over the payload. */
struct msg {
	int type;
	uint8_t *d;       /* owned */
	const uint8_t *p; /* cursor */
	const uint8_t *e; /* end */
	int bad;          /* a read ran past the end */
};

static int msg_recv(int fd, struct msg *m)
{
	uint8_t h[4];
	uint32_t len;

	memset(m, 0, sizeof *m);
	if (read_all(fd, h, 4) != 0)
		return -1;
	len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	if (len == 0 || len > AGD_PROC_MSG_MAX)
		return -1;
	m->d = malloc(len);
	if (m->d == NULL || read_all(fd, m->d, len) != 0) {
		free(m->d);
		m->d = NULL;
		return -1;
	}
	m->type = m->d[0];
	m->p = m->d + 1;
	m->e = m->d + len;
	return 0;
}

static void msg_free(struct msg *m)
{
	free(m->d);
	m->d = NULL;
}

static uint32_t get_u32(struct msg *m)
{
	uint32_t v;

	if (m->e - m->p < 4) {
		m->bad = 1;
		m->p = m->e;
		return 0;
	}
	v = (uint32_t)m->p[0] << 24 | (uint32_t)m->p[1] << 16 | (uint32_t)m->p[2] << 8 | m->p[3];
	m->p += 4;
	return v;
}

static uint64_t get_u64(struct msg *m)
{
	uint64_t hi = get_u32(m);

	return hi << 32 | get_u32(m);
}

/* A blob, borrowed from the message; n gets its length. */
static const uint8_t *get_blob(struct msg *m, size_t *n)
{
	uint32_t len = get_u32(m);
	const uint8_t *p = m->p;

	if ((size_t)(m->e - m->p) < len) {
		m->bad = 1;
		m->p = m->e;
		*n = 0;
		return NULL;
	}
	m->p += len;
	*n = len;
	return p;
}

/* A blob copied into buf as a string (cut to fit). */
static void get_str(struct msg *m, char *buf, size_t cap)
{
	size_t n;
	const uint8_t *p = get_blob(m, &n);

	if (n >= cap)
		n = cap - 1;
	if (p != NULL && n > 0)
		memcpy(buf, p, n);
	buf[p ? n : 0] = '\0';
}

/* ---------------------------------------------------------- daemon side */

static void mark_dead(struct agd_proc *p)
{
	int st;

	if (p->dead)
		return;
	p->dead = 1;
	snprintf(p->why, sizeof p->why, "agent process lost");
	/* The channel broke: the process is dying or broke the protocol.
	 * Give it half a second to be reaped with its status, then end it. */
	for (int i = 0; p->pid > 0 && i < 200; i++) {
		if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
			if (WIFSIGNALED(st))
				snprintf(p->why, sizeof p->why, "agent process died: signal %d (%s)",
					 WTERMSIG(st), strsignal(WTERMSIG(st)));
			else if (WIFEXITED(st))
				snprintf(p->why, sizeof p->why, "agent process exited with %d",
					 WEXITSTATUS(st));
			p->pid = 0;
			return;
		}
		usleep(2500);
	}
	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &st, 0);
		p->pid = 0;
		snprintf(p->why, sizeof p->why, "agent process lost (broke the protocol, killed)");
	}
}

/* ----------------------------------------------------------------- pool */

#define POOL_MAX 8                 /* idle processes kept */
#define POOL_CPU_MAX_MS 600000     /* a process past this much CPU is not kept */

struct pooled {
	pid_t pid;      /* an idle worker process, waiting for INIT */
	int fd;         /* our end of its socketpair */
	size_t memory;  /* the memory quota its address-space limit was set for */
};

/* The one daemon-wide table of this file: worker processes belong to the
 * daemon process, not to a runtime, and a process taken from here is owned
 * by the agd_proc that took it. */
static struct {
	pthread_mutex_t mu;         /* guards the rest */
	int n;                      /* entries used */
	struct pooled e[POOL_MAX];  /* the idle processes */
} pool = { PTHREAD_MUTEX_INITIALIZER, 0, { { 0, -1, 0 } } };

/* An idle process for the quota `memory`, into p; 0 when there is none. */
static int pool_take(struct agd_proc *p, size_t memory)
{
	int found = 0;

	pthread_mutex_lock(&pool.mu);
	for (int i = pool.n - 1; i >= 0 && !found; i--) {
		if (pool.e[i].memory != memory)
			continue;
		p->pid = pool.e[i].pid;
		p->fd = pool.e[i].fd;
		p->memory_quota = memory;
		pool.e[i] = pool.e[--pool.n];
		found = 1;
	}
	pthread_mutex_unlock(&pool.mu);
	return found;
}

/* Asks p's process to drop its agent and keeps it in the pool; 0 when it
 * was kept (p no longer owns it), -1 when p must end it. */
static int pool_put(struct agd_proc *p)
{
	struct pb b;
	struct msg m;
	uint64_t cpu_ms;
	int kept = 0;

	if (p->dead || p->pid <= 0 || p->fd < 0)
		return -1;
	pb_init(&b, M_RELEASE);
	if (pb_send(p->fd, &b) != 0 || msg_recv(p->fd, &m) != 0)
		return -1;
	cpu_ms = get_u64(&m);
	if (m.type != M_OK || m.bad || cpu_ms >= POOL_CPU_MAX_MS) {
		msg_free(&m);
		return -1;
	}
	msg_free(&m);
	pthread_mutex_lock(&pool.mu);
	if (pool.n < POOL_MAX) {
		pool.e[pool.n].pid = p->pid;
		pool.e[pool.n].fd = p->fd;
		pool.e[pool.n].memory = p->memory_quota;
		pool.n++;
		kept = 1;
	}
	pthread_mutex_unlock(&pool.mu);
	if (!kept)
		return -1;
	p->pid = 0;
	p->fd = -1;
	return 0;
}

static int spawn(struct agd_proc *p, const struct agd_vm_limits *lim, char *err, size_t err_len)
{
	int sv[2];
	struct rlimit as, cpu, core = { 0, 0 };
	char *argv[] = { "agentd", "--agent-worker", "3", NULL };
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		snprintf(err, err_len, "socketpair: %s", strerror(errno));
		return AGD_ERR_IO;
	}
	/* Address space: the quota plus room for the binary, the libraries
	 * and the engine's scratch; CPU: an hour, past which the kernel ends
	 * a runaway (the instruction quota normally comes first). */
	as.rlim_cur = as.rlim_max = (rlim_t)lim->memory + (512u << 20);
	cpu.rlim_cur = 3600;
	cpu.rlim_max = 3700;
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		snprintf(err, err_len, "fork: %s", strerror(errno));
		return AGD_ERR_IO;
	}
	if (pid == 0) {
		/* Async-signal-safe calls only until exec. */
		if (dup2(sv[1], 3) < 0)
			_exit(127);
#ifndef __SANITIZE_ADDRESS__
		/* (AddressSanitizer reserves terabytes of address space for
		 * its shadow: sanitizer builds go without this limit.) */
		setrlimit(RLIMIT_AS, &as);
#else
		(void)as;
#endif
		setrlimit(RLIMIT_CPU, &cpu);
		setrlimit(RLIMIT_CORE, &core);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(sv[1]);
	p->pid = pid;
	p->fd = sv[0];
	p->memory_quota = lim->memory;
	return 0;
}

static void end_process(struct agd_proc *p);

int agd_proc_start(struct agd_rt *rt, struct agd_agent *a, const struct agd_vm_limits *lim,
		   const void *state, size_t len, struct agd_proc **out, struct agd_vm_wait *wait,
		   char *err, size_t err_len)
{
	struct agd_proc *p = calloc(1, sizeof *p);
	struct agd_code *code = agd_agent_code(a);
	const struct agd_config *cfg = agd_rt_config(rt);
	const char *const *hosts;
	size_t nhosts = 0;
	struct pb b;
	struct msg m;
	int rc, pooled;

	*out = NULL;
	if (p == NULL)
		return AGD_ERR_NOMEM;
	p->rt = rt;
	p->a = a;
	p->fd = -1;
	pooled = pool_take(p, lim->memory);
again:
	if (!pooled) {
		rc = spawn(p, lim, err, err_len);
		if (rc != 0) {
			free(p);
			return rc;
		}
	}
	hosts = agd_rt_hosts(rt, &nhosts);
	pb_init(&b, M_INIT);
	pb_str(&b, agd_agent_id(a));
	pb_str(&b, agd_agent_home(a));
	pb_str(&b, cfg->host);
	pb_u32(&b, (uint32_t)nhosts);
	for (size_t i = 0; i < nhosts; i++)
		pb_str(&b, hosts[i]);
	pb_u64(&b, lim->memory);
	pb_u32(&b, lim->slice);
	pb_u64(&b, lim->instructions);
	if (code->seg != NULL) {
		size_t n = 0;
		const uint8_t *bytes = mig_segment_signed_bytes(code->seg, &n);

		pb_blob(&b, bytes, bytes ? n : 0);
		pb_str(&b, "");
		pb_blob(&b, "", 0);
	} else {
		pb_blob(&b, "", 0);
		pb_str(&b, code->name);
		pb_blob(&b, code->text, code->text_len);
	}
	pb_blob(&b, state, state ? len : 0);
	if (pb_send(p->fd, &b) != 0 || msg_recv(p->fd, &m) != 0) {
		if (pooled) {
			/* It died while idle: start a fresh one. */
			mark_dead(p);
			end_process(p);
			p->dead = 0;
			pooled = 0;
			goto again;
		}
		mark_dead(p);
		snprintf(err, err_len, "%s", p->why);
		agd_proc_destroy(&p);
		return AGD_ERR_IO;
	}
	if (m.type != M_OK) {
		get_str(&m, err, err_len);
		rc = (int)get_u32(&m);
		msg_free(&m);
		agd_proc_destroy(&p);
		return rc < 0 ? rc : AGD_ERR_LUA;
	}
	if (wait != NULL) {
		wait->kind = (int)get_u32(&m);
		wait->until_ms = (int64_t)get_u64(&m);
	}
	msg_free(&m);
	*out = p;
	return 0;
}

/* Answers one host call of the worker process during a resume. */
static int serve_call(struct agd_proc *p, struct msg *m)
{
	struct pb b;

	switch (m->type) {
	case M_LOG: {
		size_t n;
		const uint8_t *t = get_blob(m, &n);

		if (!m->bad)
			agd_agent_log(p->rt, p->a, (const char *)t, n > AGD_LOG_TEXT_MAX ? AGD_LOG_TEXT_MAX : n);
		return 0;
	}
	case M_SEND: {
		char to[AGD_ID_LEN + 8];
		size_t n;
		const uint8_t *d;
		int rc;

		get_str(m, to, sizeof to);
		d = get_blob(m, &n);
		rc = m->bad ? AGD_ERR_ARG : agd_rt_send(p->rt, agd_agent_id(p->a), to, d, n);
		pb_init(&b, M_RC);
		pb_u32(&b, (uint32_t)rc);
		return pb_send(p->fd, &b);
	}
	case M_PROXY: { /* [call] the agent's proxy call, sent on its behalf */
		char callee[AGD_NAME_MAX + 1], method[AGD_NAME_MAX + 1], hint[AGD_NAME_MAX + 1];
		uint64_t token, t;
		double timeout;
		size_t n;
		const uint8_t *d;
		int rc;

		get_str(m, callee, sizeof callee);
		get_str(m, method, sizeof method);
		get_str(m, hint, sizeof hint);
		token = get_u64(m);
		t = get_u64(m);
		memcpy(&timeout, &t, sizeof timeout);
		d = get_blob(m, &n);
		if (m->bad)
			rc = AGD_ERR_ARG;
		else {
			agd_rt_park_expect(p->rt, p->a, token);
			rc = agd_call_start(p->rt, agd_agent_id(p->a), token, callee, method, d, n,
					    timeout, hint[0] ? hint : NULL);
		}
		pb_init(&b, M_RC);
		pb_u32(&b, (uint32_t)rc);
		return pb_send(p->fd, &b);
	}
	case M_TAKE: {
		struct agd_msg *msg = agd_agent_mbox_take(p->rt, p->a);

		pb_init(&b, M_MSG);
		pb_u32(&b, msg != NULL);
		pb_blob(&b, msg ? msg->data : NULL, msg ? msg->len : 0);
		free(msg);
		return pb_send(p->fd, &b);
	}
	default:
		return -1;
	}
}

void agd_proc_resume(struct agd_proc *p, int deliver, const struct agd_msg *msg,
		     struct agd_vm_result *res)
{
	struct pb b;
	struct msg m;

	memset(res, 0, sizeof *res);
	res->timeout = -1;
	if (!p->dead) {
		pb_init(&b, M_RESUME);
		pb_u32(&b, (uint32_t)deliver);
		pb_u32(&b, msg != NULL);
		pb_blob(&b, msg ? msg->data : NULL, msg ? msg->len : 0);
		if (pb_send(p->fd, &b) != 0)
			mark_dead(p);
	}
	while (!p->dead) {
		if (msg_recv(p->fd, &m) != 0) {
			mark_dead(p);
			break;
		}
		if (m.type == M_RESULT) {
			uint64_t t;

			res->status = (enum agd_vm_status)get_u32(&m);
			t = get_u64(&m);
			memcpy(&res->timeout, &t, sizeof t);
			get_str(&m, res->reason, sizeof res->reason);
			p->memory = (size_t)get_u64(&m);
			p->instructions = get_u64(&m);
			res->token = get_u64(&m); /* [call] PARK's token */
			if (m.bad || ((unsigned)res->status > AGD_VM_KILLED && res->status != AGD_VM_PARK)) {
				msg_free(&m);
				mark_dead(p);
				break;
			}
			msg_free(&m);
			return;
		}
		if (serve_call(p, &m) != 0 || m.bad) {
			msg_free(&m);
			mark_dead(p);
			break;
		}
		msg_free(&m);
	}
	/* The process died or broke the protocol: the agent ends here. */
	res->status = AGD_VM_KILLED;
	snprintf(res->reason, sizeof res->reason, "%s", p->why);
}

void agd_proc_unpark(struct agd_proc *p, const struct agd_park_answer *ans, const char *why)
{
	struct pb b;

	if (p->dead)
		return;
	pb_init(&b, M_UNPARK);
	pb_u32(&b, ans != NULL);
	pb_u32(&b, ans ? (uint32_t)ans->code : 0);
	pb_str(&b, ans && ans->text ? ans->text : "");
	pb_u32(&b, ans && ans->data != NULL);
	pb_blob(&b, ans ? ans->data : NULL, ans && ans->data ? ans->len : 0);
	pb_str(&b, why ? why : "");
	if (pb_send(p->fd, &b) != 0)
		mark_dead(p);
}

void agd_proc_call(struct agd_proc *p, const char *method, const void *args, size_t len,
		   struct agd_vm_call_result *res)
{
	struct pb b;
	struct msg m;

	res->code = AGD_ERR_IO;
	snprintf(res->text, sizeof res->text, "the agent's worker process is gone");
	if (p->dead)
		return;
	pb_init(&b, M_CALL);
	pb_str(&b, method);
	pb_blob(&b, args, len);
	if (pb_send(p->fd, &b) != 0) {
		mark_dead(p);
		return;
	}
	while (!p->dead) {
		if (msg_recv(p->fd, &m) != 0) {
			mark_dead(p);
			break;
		}
		if (m.type == M_CALLRES) {
			int code = (int)get_u32(&m);
			uint32_t has = get_u32(&m);
			size_t n = 0;
			const uint8_t *d;

			get_str(&m, res->text, sizeof res->text);
			d = get_blob(&m, &n);
			p->memory = (size_t)get_u64(&m);
			p->instructions = get_u64(&m);
			if (m.bad) {
				msg_free(&m);
				mark_dead(p);
				break;
			}
			res->code = code;
			if (code == 0 && has) {
				agd_buf_free(res->out);
				res->out->data = malloc(n ? n : 1);
				if (res->out->data == NULL) {
					res->code = AGD_ERR_NOMEM;
				} else {
					memcpy(res->out->data, d, n);
					res->out->len = res->out->cap = n;
				}
			}
			msg_free(&m);
			return;
		}
		if (serve_call(p, &m) != 0 || m.bad) {
			msg_free(&m);
			mark_dead(p);
			break;
		}
		msg_free(&m);
	}
	res->code = AGD_ERR_IO;
	snprintf(res->text, sizeof res->text, "the agent's worker process ended: %s", p->why);
}

int agd_proc_persist(struct agd_proc *p, const struct agd_vm_wait *wait, struct mig_buf *out,
		     char *err, size_t err_len)
{
	struct pb b;
	struct msg m;
	const uint8_t *d;
	size_t n;

	if (p->dead) {
		snprintf(err, err_len, "%s", p->why);
		return AGD_ERR_IO;
	}
	pb_init(&b, M_PERSIST);
	pb_u32(&b, wait ? (uint32_t)wait->kind : 0);
	pb_u64(&b, wait ? (uint64_t)wait->until_ms : 0);
	if (pb_send(p->fd, &b) != 0 || msg_recv(p->fd, &m) != 0) {
		mark_dead(p);
		snprintf(err, err_len, "%s", p->why);
		return AGD_ERR_IO;
	}
	if (m.type != M_STATE) {
		get_str(&m, err, err_len);
		msg_free(&m);
		return AGD_ERR_LUA;
	}
	d = get_blob(&m, &n);
	if (m.bad) {
		msg_free(&m);
		snprintf(err, err_len, "malformed state message");
		return AGD_ERR_IO;
	}
	free(out->data);
	out->data = malloc(n ? n : 1);
	if (out->data == NULL) {
		msg_free(&m);
		memset(out, 0, sizeof *out);
		return AGD_ERR_NOMEM;
	}
	memcpy(out->data, d, n);
	out->len = out->cap = n;
	msg_free(&m);
	return 0;
}

void agd_proc_kill(struct agd_proc *p)
{
	if (p->pid > 0)
		kill(p->pid, SIGUSR1);
}

long agd_proc_pid(const struct agd_proc *p)
{
	return p->pid;
}

size_t agd_proc_memory(const struct agd_proc *p)
{
	return p->memory;
}

uint64_t agd_proc_instructions(const struct agd_proc *p)
{
	return p->instructions;
}

/* Closes p's channel and reaps its process (it exits on EOF; a wedged one
 * is killed). */
static void end_process(struct agd_proc *p)
{
	int st;

	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	if (p->pid > 0) {
		/* It exits on EOF; a wedged one is killed. */
		for (int i = 0; i < 100; i++) {
			if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
				p->pid = 0;
				break;
			}
			usleep(1000);
		}
		if (p->pid > 0) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &st, 0);
		}
		p->pid = 0;
	}
}

void agd_proc_destroy(struct agd_proc **p_p)
{
	struct agd_proc *p;

	if (p_p == NULL || *p_p == NULL)
		return;
	p = *p_p;
	if (pool_put(p) != 0)
		end_process(p);
	free(p);
	*p_p = NULL;
}

/* ---------------------------------------------------------- worker side */

struct child {
	int fd;                 /* to the daemon */
	struct agd_rt *rt;      /* one-agent runtime */
	struct agd_agent *a;    /* the agent */
	struct agd_vm *vm;      /* its state */
	int broken;             /* the channel failed */
};

static struct agd_vm *volatile child_vm;

static void on_kill(int sig)
{
	(void)sig;
	if (child_vm != NULL)
		agd_vm_kill_async(child_vm);
}

static void c_log(void *ud, const char *text, size_t len)
{
	struct child *c = ud;
	struct pb b;

	pb_init(&b, M_LOG);
	pb_blob(&b, text, len);
	if (pb_send(c->fd, &b) != 0)
		c->broken = 1;
}

static int c_send(void *ud, const char *to, const void *data, size_t len)
{
	struct child *c = ud;
	struct pb b;
	struct msg m;
	int rc;

	pb_init(&b, M_SEND);
	pb_str(&b, to);
	pb_blob(&b, data, len);
	if (pb_send(c->fd, &b) != 0 || msg_recv(c->fd, &m) != 0 || m.type != M_RC) {
		c->broken = 1;
		return AGD_ERR_IO;
	}
	rc = (int)get_u32(&m);
	msg_free(&m);
	return rc;
}

static struct agd_msg *c_take(void *ud)
{
	struct child *c = ud;
	struct agd_msg *out = NULL;
	struct pb b;
	struct msg m;
	const uint8_t *d;
	size_t n;

	pb_init(&b, M_TAKE);
	if (pb_send(c->fd, &b) != 0 || msg_recv(c->fd, &m) != 0 || m.type != M_MSG) {
		c->broken = 1;
		return NULL;
	}
	if (get_u32(&m)) {
		d = get_blob(&m, &n);
		if (!m.bad && (out = malloc(sizeof *out + n)) != NULL) {
			memset(out, 0, sizeof *out);
			out->len = n;
			memcpy(out->data, d, n);
		}
	}
	msg_free(&m);
	return out;
}

/* [call] agent.proxy's call, sent by the daemon on the agent's behalf. */
static int c_call(void *ud, uint64_t token, const char *callee, const char *method,
		  const void *args, size_t len, double timeout_s, const char *hint)
{
	struct child *c = ud;
	struct pb b;
	struct msg m;
	uint64_t t;
	int rc;

	memcpy(&t, &timeout_s, sizeof t);
	pb_init(&b, M_PROXY);
	pb_str(&b, callee);
	pb_str(&b, method);
	pb_str(&b, hint ? hint : "");
	pb_u64(&b, token);
	pb_u64(&b, t);
	pb_blob(&b, args, len);
	if (pb_send(c->fd, &b) != 0 || msg_recv(c->fd, &m) != 0 || m.type != M_RC) {
		c->broken = 1;
		return AGD_ERR_IO;
	}
	rc = (int)get_u32(&m);
	msg_free(&m);
	return rc;
}

static void send_err(int fd, const char *text, int code)
{
	struct pb b;

	pb_init(&b, M_ERR);
	pb_str(&b, text);
	pb_u32(&b, (uint32_t)code);
	pb_send(fd, &b);
}

static int child_init(struct child *c, struct msg *m, struct agd_config *cfg)
{
	char id[AGD_ID_LEN + 8], home[64], name[AGD_NAME_MAX + 1], err[256];
	char **hosts = NULL;
	uint32_t nhosts;
	struct agd_vm_limits lim;
	const uint8_t *seg, *text, *state;
	size_t seg_len, text_len, state_len;
	struct agd_code *code = NULL;
	struct agd_vm_wait w = { 0, 0 };
	struct pb b;
	int rc;

	get_str(m, id, sizeof id);
	get_str(m, home, sizeof home);
	get_str(m, cfg->host, sizeof cfg->host);
	nhosts = get_u32(m);
	if (nhosts > 4096) {
		send_err(c->fd, "too many hosts", AGD_ERR_ARG);
		return -1;
	}
	hosts = calloc(nhosts + 1, sizeof *hosts);
	for (uint32_t i = 0; hosts != NULL && i < nhosts; i++) {
		hosts[i] = malloc(65);
		if (hosts[i] != NULL)
			get_str(m, hosts[i], 65);
	}
	lim.memory = (size_t)get_u64(m);
	lim.slice = get_u32(m);
	lim.instructions = get_u64(m);
	seg = get_blob(m, &seg_len);
	get_str(m, name, sizeof name);
	text = get_blob(m, &text_len);
	state = get_blob(m, &state_len);
	if (m->bad || hosts == NULL) {
		send_err(c->fd, "malformed init", AGD_ERR_ARG);
		goto fail;
	}
	cfg->memory_limit = lim.memory;
	cfg->slice_instructions = lim.slice ? lim.slice : 10000;
	cfg->instruction_limit = lim.instructions;
	cfg->allow_source = seg_len == 0;
	{
		struct agd_rt_remote r = { c_log, c_send, c_take, c, c_call };

		rc = agd_rt_child_new(cfg, &r, (const char *const *)hosts, nhosts, &c->rt);
	}
	if (rc != 0) {
		send_err(c->fd, "cannot make the runtime", rc);
		goto fail;
	}
	if (seg_len > 0)
		rc = agd_rt_code_local(c->rt, seg, seg_len, &code, err, sizeof err);
	else
		rc = agd_rt_code_source(c->rt, name, (const char *)text, text_len, &code, err,
					sizeof err);
	if (rc == 0)
		rc = agd_rt_child_agent(c->rt, code, id, home, &c->a, err, sizeof err);
	agd_code_unref(c->rt, &code);
	if (rc != 0) {
		send_err(c->fd, err, rc);
		goto fail;
	}
	if (state_len > 0)
		rc = agd_vm_restore(c->rt, c->a, &lim, state, state_len, &c->vm, &w, err, sizeof err);
	else
		rc = agd_vm_new(c->rt, c->a, &lim, &c->vm, err, sizeof err);
	if (rc != 0) {
		send_err(c->fd, err, rc);
		goto fail;
	}
	child_vm = c->vm;
	pb_init(&b, M_OK);
	pb_u32(&b, (uint32_t)w.kind);
	pb_u64(&b, (uint64_t)w.until_ms);
	rc = pb_send(c->fd, &b);
	for (uint32_t i = 0; i < nhosts; i++)
		free(hosts[i]);
	free(hosts);
	return rc;
fail:
	for (uint32_t i = 0; hosts != NULL && i < nhosts; i++)
		free(hosts[i]);
	free(hosts);
	return -1;
}

int agd_proc_child_main(int fd)
{
	struct child c = { fd, NULL, NULL, NULL, 0 };
	struct agd_config cfg;
	struct sigaction sa;
	struct msg m;
	int rc = 0;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_kill;
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, SIG_IGN); /* the daemon decides when this one ends */
	signal(SIGINT, SIG_IGN);
	agd_config_defaults(&cfg);
	cfg.data_dir[0] = '\0';
	if (msg_recv(fd, &m) != 0 || m.type != M_INIT) {
		msg_free(&m);
		agd_config_free(&cfg);
		return 2;
	}
next_agent:
	rc = child_init(&c, &m, &cfg);
	msg_free(&m);
	if (rc != 0) {
		agd_rt_destroy(&c.rt);
		agd_config_free(&cfg);
		return 3;
	}
	while (!c.broken && msg_recv(fd, &m) == 0) {
		struct pb b;

		if (m.type == M_RELEASE) {
			/* Back to the pool: drop the agent, report the CPU this
			 * process has used, wait for the next INIT. */
			struct rusage ru;
			uint64_t cpu_ms = 0;

			msg_free(&m);
			child_vm = NULL;
			agd_vm_destroy(&c.vm, 0);
			agd_rt_destroy(&c.rt);
			c.a = NULL;
			agd_config_free(&cfg);
			malloc_trim(0);
			if (getrusage(RUSAGE_SELF, &ru) == 0)
				cpu_ms = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
					 (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
			pb_init(&b, M_OK);
			pb_u64(&b, cpu_ms);
			if (pb_send(fd, &b) != 0 || msg_recv(fd, &m) != 0 || m.type != M_INIT) {
				msg_free(&m);
				return 0;
			}
			agd_config_defaults(&cfg);
			cfg.data_dir[0] = '\0';
			goto next_agent;
		}

		if (m.type == M_RESUME) {
			struct agd_vm_result res;
			struct agd_msg *in = NULL;
			uint32_t deliver = get_u32(&m), has = get_u32(&m);
			size_t n;
			const uint8_t *d = get_blob(&m, &n);
			uint64_t t;

			if (m.bad)
				break;
			if (has && (in = malloc(sizeof *in + n)) != NULL) {
				memset(in, 0, sizeof *in);
				in->len = n;
				memcpy(in->data, d, n);
			}
			agd_vm_resume(c.vm, (int)deliver, in, &res);
			free(in);
			pb_init(&b, M_RESULT);
			pb_u32(&b, (uint32_t)res.status);
			memcpy(&t, &res.timeout, sizeof t);
			pb_u64(&b, t);
			pb_str(&b, res.reason);
			pb_u64(&b, agd_vm_memory(c.vm));
			pb_u64(&b, agd_vm_instructions(c.vm));
			pb_u64(&b, res.token);
			if (pb_send(fd, &b) != 0)
				break;
		} else if (m.type == M_UNPARK) {
			struct agd_park_answer ans;
			char text[AGD_PROC_TEXT_MAX], why[AGD_PROC_TEXT_MAX];
			uint32_t has = get_u32(&m), has_data;

			ans.code = (int)get_u32(&m);
			get_str(&m, text, sizeof text);
			has_data = get_u32(&m);
			ans.data = get_blob(&m, &ans.len);
			get_str(&m, why, sizeof why);
			if (m.bad)
				break;
			ans.text = text;
			if (!has_data)
				ans.data = NULL;
			agd_vm_unpark(c.vm, has ? &ans : NULL, why[0] ? why : NULL);
		} else if (m.type == M_CALL) {
			char method[AGD_NAME_MAX + 1];
			struct mig_buf out = { 0 };
			struct agd_vm_call_result r;
			const uint8_t *d;
			size_t n;

			get_str(&m, method, sizeof method);
			d = get_blob(&m, &n);
			if (m.bad)
				break;
			memset(&r, 0, sizeof r);
			r.out = &out;
			agd_vm_call(c.vm, method, d, n, &r);
			pb_init(&b, M_CALLRES);
			pb_u32(&b, (uint32_t)r.code);
			pb_u32(&b, r.code == 0);
			pb_str(&b, r.text);
			pb_blob(&b, out.data, r.code == 0 ? out.len : 0);
			pb_u64(&b, agd_vm_memory(c.vm));
			pb_u64(&b, agd_vm_instructions(c.vm));
			agd_buf_free(&out);
			if (pb_send(fd, &b) != 0)
				break;
		} else if (m.type == M_PERSIST) {
			struct agd_vm_wait w;
			struct mig_buf out = { 0 };
			char err[256];

			w.kind = (int)get_u32(&m);
			w.until_ms = (int64_t)get_u64(&m);
			if (agd_vm_persist(c.vm, &w, &out, err, sizeof err) == 0) {
				pb_init(&b, M_STATE);
				pb_blob(&b, out.data, out.len);
			} else {
				pb_init(&b, M_ERR);
				pb_str(&b, err);
			}
			agd_buf_free(&out);
			if (pb_send(fd, &b) != 0)
				break;
		} else
			break;
		msg_free(&m);
	}
	msg_free(&m);
	child_vm = NULL;
	agd_vm_destroy(&c.vm, 0);
	agd_rt_destroy(&c.rt);
	agd_config_free(&cfg);
	return 0;
}
