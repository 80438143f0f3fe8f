/*
 * tar: a small ustar/pax writer and a streaming, capped, strict reader.
 *
 * The workspace travels in and out of the pod as a tar stream through
 * exec (`tar -x` reads it, `tar -c` writes it), so no tar binary is needed
 * on the runner. The writer emits POSIX ustar headers with pax extended
 * headers for long names (POSIX.1-2001 pax format, as GNU tar and BusyBox
 * read them). The reader accepts what GNU tar, BusyBox and bsdtar write by
 * default: ustar, pax ('x', 'g'), GNU long names ('L', 'K'), base-256
 * sizes; it is fed from the network, so every size is capped, every path
 * is normalised and checked (no absolute paths, no "..", no link leaving
 * the archive's root), and a stream that ends before the end-of-archive
 * blocks is an error, never a shorter workspace.
 */
#ifndef SANDBOX_TAR_H
#define SANDBOX_TAR_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* ---- writer ------------------------------------------------------------ */

/* Entries are appended to out (a buf with its own cap: ERR_TOOBIG past
 * it). Paths are relative, '/'-separated, without "." or ".." components. */
int sandbox_tar_add_dir(buf *out, const char *path, unsigned mode, int64_t mtime);
int sandbox_tar_add_file(buf *out, const char *path, unsigned mode, int64_t mtime,
			 const void *data, size_t len);
int sandbox_tar_add_symlink(buf *out, const char *path, const char *target, int64_t mtime);
/* The end-of-archive marker: two zero blocks. */
int sandbox_tar_finish(buf *out);

/* ---- reader ------------------------------------------------------------ */

enum sandbox_tar_type {
	SANDBOX_TAR_FILE = 0,
	SANDBOX_TAR_DIR,
	SANDBOX_TAR_SYMLINK,
	SANDBOX_TAR_HARDLINK   /* linkname is an earlier entry's path */
};

typedef struct sandbox_tar_entry {
	int type;              /* enum sandbox_tar_type */
	const char *path;      /* normalised: no leading "./" or '/', no "..", no trailing '/' */
	const char *linkname;  /* symlink target (as written) / hardlink path (normalised) */
	unsigned mode;         /* permission bits */
	const char *data;      /* FILE: the whole content (valid during the call) */
	size_t size;
} sandbox_tar_entry;

/* Called once per entry. Return 0 to go on, a negative err code to stop
 * (set its message). Device nodes and FIFOs are skipped, not reported. */
typedef int (*sandbox_tar_entry_cb)(void *ctx, const sandbox_tar_entry *e);

typedef struct sandbox_tar_reader sandbox_tar_reader;

/* max_file: the largest file kept; max_total: all bytes of the stream
 * (headers included). Caller frees with sandbox_tar_reader_free(). */
int sandbox_tar_reader_new(sandbox_tar_reader **out, size_t max_file, uint64_t max_total,
			   sandbox_tar_entry_cb cb, void *ctx);
void sandbox_tar_reader_free(sandbox_tar_reader *r);

/* Feed the next n bytes. 0, ERR_INVALID (malformed header, bad checksum,
 * unsafe path or link: the message says which entry), ERR_TOOBIG (a cap),
 * or the callback's code. After an error the reader refuses more input. */
int sandbox_tar_reader_feed(sandbox_tar_reader *r, const void *p, size_t n);

/* The stream ended. 0 if the end-of-archive marker was seen (trailing zero
 * padding is fine), ERR_INVALID "tar stream truncated ..." otherwise. */
int sandbox_tar_reader_finish(sandbox_tar_reader *r);

/* Normalise a path from an archive into out (size bytes): strip leading
 * "./", collapse "//" and "/./", drop a trailing '/'.
 * 0, or ERR_INVALID for an absolute path, a ".." component, an empty
 * result, or a result that does not fit. */
int sandbox_tar_path_normalise(char *out, size_t size, const char *path, size_t len);

#endif
