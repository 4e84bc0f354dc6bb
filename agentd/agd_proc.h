/*
 * agd_proc.h: process isolation (config `isolation = process`): each agent's
 * lua_State lives in its own worker process, started by fork and exec of the
 * daemon's own binary (`agentd --agent-worker FD`) with rlimits (RLIMIT_AS
 * above the memory quota, RLIMIT_CPU, RLIMIT_CORE 0), and driven over a
 * socketpair by small length-prefixed messages (docs/runtime.md, "Process
 * isolation"). A crash of the worker process ends that agent ("agent
 * process died: ..."), never the daemon.
 *
 * The daemon side is a drop-in for the in-daemon vm: agd_lua.c forwards its
 * agd_vm_* calls here when the runtime is in process mode. During a resume
 * the worker process calls back for the host services (log, send, the
 * mailbox), which the daemon's worker thread answers.
 *
 * Thread-safety: as agd_vm (one thread at a time), except agd_proc_kill.
 */
#ifndef AGD_PROC_H
#define AGD_PROC_H

#include "agd_vm.h"

#include <stddef.h>
#include <stdint.h>

struct agd_proc;
struct mig_buf;

/* Largest message between the daemon and a worker process. */
#define AGD_PROC_MSG_MAX (80u << 20)

/* Starts a worker process for agent a and makes its vm there, fresh (state
 * NULL) or restored (with *wait filled). 0 or agd_err with err filled. */
int agd_proc_start(struct agd_rt *rt, struct agd_agent *a, const struct agd_vm_limits *lim,
		   const void *state, size_t len, struct agd_proc **out, struct agd_vm_wait *wait,
		   char *err, size_t err_len);
void agd_proc_resume(struct agd_proc *p, int deliver, const struct agd_msg *msg,
		     struct agd_vm_result *res);
int agd_proc_persist(struct agd_proc *p, const struct agd_vm_wait *wait, struct mig_buf *out,
		     char *err, size_t err_len);
/* [call] Stages a park's answer in the worker process (agd_vm_unpark). */
void agd_proc_unpark(struct agd_proc *p, const struct agd_park_answer *ans, const char *why);
/* [call] Runs an exported method in the worker process (agd_vm_call). */
void agd_proc_call(struct agd_proc *p, const char *method, const void *args, size_t len,
		   struct agd_vm_call_result *res);

/* Ends the agent at its next instruction (signal to the process). */
void agd_proc_kill(struct agd_proc *p);
size_t agd_proc_memory(const struct agd_proc *p);
uint64_t agd_proc_instructions(const struct agd_proc *p);
/* The worker process's pid (0 once gone). */
long agd_proc_pid(const struct agd_proc *p);
/* Stops the process and frees. NULL-safe. */
void agd_proc_destroy(struct agd_proc **p_p);

/* The worker process's main: serves the daemon on fd until it closes.
 * Returns the process's exit code. For main.c only. */
int agd_proc_child_main(int fd);

#endif
