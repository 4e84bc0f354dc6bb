/*
 * mig_err.c: error strings and the error-detail helper of the migrate
 * library (mig_state.h).
 */
#include "mig_state_int.h"

#include <stdio.h>

const char *mig_strerror(int code)
{
	switch (code) {
	case MIG_OK: return "success";
	case MIG_ERR_NOMEM: return "out of memory";
	case MIG_ERR_TRUNCATED: return "input ends before the format does";
	case MIG_ERR_MALFORMED: return "malformed input";
	case MIG_ERR_VERSION: return "unsupported format version";
	case MIG_ERR_UNPERSISTABLE: return "value cannot be persisted";
	case MIG_ERR_NOSOURCE: return "function source not known";
	case MIG_ERR_SHAPE: return "recompiled prototype differs";
	case MIG_ERR_LIMIT: return "size, count or depth limit exceeded";
	case MIG_ERR_BUSY: return "coroutine is running";
	case MIG_ERR_LUA: return "Lua error";
	case MIG_ERR_ARG: return "invalid argument";
	case MIG_ERR_SIGNATURE: return "signature does not verify";
	case MIG_ERR_IO: return "input/output error";
	default: return "unknown error";
	}
}

int mig_err_set(struct mig_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return code;
	/* The first failure is the one worth reporting: later ones are
	 * usually its consequences. */
	if (err->code != 0)
		return code;
	err->code = code;
	if (fmt == NULL) {
		snprintf(err->msg, sizeof err->msg, "%s", mig_strerror(code));
		return code;
	}
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return code;
}
