/*
 * res_file.c: local I/O of the file kind, also behind printers (append-only
 * sinks) and sensors (read-only values).
 *
 * Invariants: no read returns more than RES_CONTENT_MAX bytes; a replace is
 * atomic (a reader sees the old or the new content, never a mix); every
 * descriptor opened here is closed on every path. Never follows a path
 * given by a peer: paths come from the host config or the data directory.
 */
#include "res_entry.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int resi_file_create(const char *path, int create)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | (create ? O_CREAT : 0), 0600);

	if (fd < 0) {
		if (create && errno == EACCES) {
			/* Write-only sinks are fine: try without reading. */
			fd = open(path, O_WRONLY | O_CLOEXEC);
			if (fd >= 0) {
				close(fd);
				return 0;
			}
		}
		return errno == ENOENT ? RES_ERR_NOTFOUND : RES_ERR_IO;
	}
	close(fd);
	return 0;
}

int resi_file_size(const char *path, uint64_t *out)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return errno == ENOENT ? RES_ERR_NOTFOUND : RES_ERR_IO;
	if (!S_ISREG(st.st_mode))
		return RES_ERR_IO;
	*out = (uint64_t)st.st_size;
	return 0;
}

int resi_file_read(const char *path, uint64_t off, uint64_t n, struct resi_bytes *out)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t want, got = 0;
	int fd, rc = RES_ERR_IO;

	out->data = NULL;
	out->len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? RES_ERR_NOTFOUND : RES_ERR_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		goto out;
	if (off >= (uint64_t)st.st_size) {
		want = 0;
	} else {
		uint64_t avail = (uint64_t)st.st_size - off;

		if (n == UINT64_MAX && avail > RES_CONTENT_MAX) {
			rc = RES_ERR_LIMIT;
			goto out;
		}
		want = (size_t)(n < avail ? n : avail);
		if (want > RES_CONTENT_MAX)
			want = RES_CONTENT_MAX;
	}
	/* One spare byte, so that an empty read still returns a buffer. */
	buf = malloc(want + 1);
	if (buf == NULL) {
		rc = RES_ERR_NOMEM;
		goto out;
	}
	while (got < want) {
		ssize_t r = pread(fd, buf + got, want - got, (off_t)(off + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto out;
		if (r == 0)
			break; /* shrank under us: return what there was */
		got += (size_t)r;
	}
	out->data = buf;
	out->len = got;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

static int write_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return RES_ERR_IO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int resi_file_replace(const char *path, const void *data, size_t len)
{
	char tmp[PATH_MAX];
	int fd, rc;

	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
		return RES_ERR_LIMIT;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return RES_ERR_IO;
	rc = write_all(fd, data, len);
	if (rc == 0 && fsync(fd) != 0)
		rc = RES_ERR_IO;
	if (close(fd) != 0 && rc == 0)
		rc = RES_ERR_IO;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = RES_ERR_IO;
	if (rc != 0)
		unlink(tmp);
	return rc;
}

int resi_file_append(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return errno == ENOENT ? RES_ERR_NOTFOUND : RES_ERR_IO;
	rc = write_all(fd, data, len);
	if (close(fd) != 0 && rc == 0)
		rc = RES_ERR_IO;
	return rc;
}
