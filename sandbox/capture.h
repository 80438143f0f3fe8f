/*
 * capture: one output stream of one command, kept in memory up to a cap.
 *
 * Up to cap bytes are kept as they are. Past that, the first half (head)
 * and the last half (tail) are kept, joined by a marker line saying how
 * many bytes were left out; the full byte count and the SHA-256 of the
 * whole stream are always exact. Memory is bounded by cap whatever the
 * command writes, and grows with what it writes.
 */
#ifndef SANDBOX_CAPTURE_H
#define SANDBOX_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#include "sandbox/run.h"

typedef struct sandbox_capture sandbox_capture;

/* cap: bytes kept (at least 64). Caller frees with sandbox_capture_free().
 * 0 or ERR_NOMEM. */
int sandbox_capture_new(sandbox_capture **out, size_t cap);
void sandbox_capture_free(sandbox_capture *c);

/* Add the next n bytes. Never fails: memory is taken as output arrives
 * (none for a command that prints nothing); if it runs out, what is kept
 * stops growing and the rest counts as truncated, the count and hash
 * stay exact. */
void sandbox_capture_append(sandbox_capture *c, const void *p, size_t n);

/* Bytes of buffer held for what was kept so far (0 until output comes). */
size_t sandbox_capture_held(const sandbox_capture *c);

/* Total bytes appended. */
uint64_t sandbox_capture_bytes(const sandbox_capture *c);

/* Fill *out (data allocated, caller frees out->data) with what was kept,
 * the byte count, the hex SHA-256 and the truncation flag. The capture
 * may not be appended to afterwards. 0 or ERR_NOMEM. */
int sandbox_capture_finish(sandbox_stream *out, sandbox_capture *c);

/* The marker placed between head and tail, e.g.
 * "\n[... 1234 bytes truncated by ci-fixer ...]\n". */
#define SANDBOX_TRUNCATION_FMT "\n[... %llu bytes truncated by ci-fixer ...]\n"

#endif
