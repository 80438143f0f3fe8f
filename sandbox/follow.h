/*
 * follow: the reader of what the in-pod follower (sandbox/command.c) writes
 * on the exec's stdout while a command runs. The command's own stdout and
 * stderr are files in the pod; the follower streams them from the byte
 * offsets the runner already has, in frames:
 *
 *   "O <offset> <length>\n" then <length> bytes   stdout, from <offset>
 *   "E <offset> <length>\n" then <length> bytes   stderr, from <offset>
 *   "X <code> <stdout bytes> <stderr bytes>\n"    the command ended with
 *                                                 <code>; the totals it wrote
 *
 * Offsets make a broken stream resumable without loss or duplication: a
 * new exec continues from sandbox_follow_offset(), and a frame whose
 * offset is not exactly that is refused. Data is handed on as it arrives,
 * so a frame cut in the middle still delivers (and counts) the bytes that
 * came. Headers are at most SANDBOX_FOLLOW_HEADER_MAX bytes; anything else
 * is a protocol error.
 */
#ifndef SANDBOX_FOLLOW_H
#define SANDBOX_FOLLOW_H

#include <stddef.h>
#include <stdint.h>

#define SANDBOX_FOLLOW_HEADER_MAX 80

typedef struct sandbox_follow sandbox_follow;

/* Receives command output: stream 1 stdout, 2 stderr. Return 0 to go on or
 * a negative err code (after err_set) to stop; sandbox_follow_feed()
 * returns it. */
typedef int (*sandbox_follow_data_fn)(void *arg, int stream, const char *data, size_t len);

/* A reader at offsets 0/0. Caller frees with sandbox_follow_free().
 * 0 or ERR_NOMEM. */
int sandbox_follow_new(sandbox_follow **out, sandbox_follow_data_fn fn, void *arg);
void sandbox_follow_free(sandbox_follow *f);

/* A new exec begins: a frame left incomplete by the last one is dropped
 * (its bytes already delivered stay counted); the offsets are kept. */
void sandbox_follow_restart(sandbox_follow *f);

/* Parse the next n bytes of the follower's stdout. 0, ERR_INVALID (a
 * malformed header, an offset other than the expected one, bytes after
 * the end, totals that disagree with what was delivered; err_msg() says
 * which) or the callback's code. */
int sandbox_follow_feed(sandbox_follow *f, const void *p, size_t n);

/* Bytes of stream (1 stdout, 2 stderr) delivered so far. */
uint64_t sandbox_follow_offset(const sandbox_follow *f, int stream);

/* 1 once the "X" frame came (then *code is the command's exit status,
 * 0..255), else 0. */
int sandbox_follow_ended(const sandbox_follow *f, int *code);

#endif
