/*
 * agd_ctl.h: the control protocol between agentctl and agentd
 * (docs/protocol.md, section "Control channel").
 *
 * A request is a multipart ZeroMQ message [version][command][body]; a reply
 * is [version]["ok" | "error"][body]. Bodies are JSON text. The version frame
 * comes first so that a peer of another version is refused before anything
 * else is read.
 */
#ifndef AGD_CTL_H
#define AGD_CTL_H

#define AGD_CTL_VERSION "AGD-CTL/1"
#define AGD_CTL_OK "ok"
#define AGD_CTL_ERROR "error"

/* Largest request body the daemon accepts on the control channel. */
#define AGD_CTL_BODY_MAX (64u << 20)

#endif
