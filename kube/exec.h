/*
 * kube/exec: run a command in a pod's container through the pod exec
 * WebSocket (pods/exec), the way client-go's WebSocket executor does
 * (s/client-go/tools/remotecommand/websocket.go), without SPDY.
 *
 * One call, one command: kube_exec_run() connects (TLS, proxy and
 * credentials exactly those of the REST path), upgrades, streams stdin to
 * the command, hands stdout and stderr to two callbacks as they arrive
 * (nothing is buffered whole), and returns the exit code read from the
 * status channel. A stream that ends without that status is ERR_LOST
 * ("the command's outcome is unknown"), never a success.
 *
 * Protocols: v5.channel.k8s.io is offered first, then v4.channel.k8s.io.
 * Only v5 can say "stdin is finished" (the FF 00 close message); under v4
 * the only EOF is closing the connection, which would lose the output and
 * status still in flight (k/k #89899), so under v4 the client never
 * closes early: a command reading stdin must know where its input ends by
 * itself (e.g. `head -c N | tar x`). result.protocol says which was used;
 * opts.protocol can require one.
 *
 * Thread-safety: any number of runs may proceed at once on one kube_client,
 * each in its own thread. A run may be cancelled from another thread.
 */
#ifndef KUBE_EXEC_H
#define KUBE_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "kube/client.h"

/* Defaults (client-go: pingPeriod 5 s, pingReadDeadline 12 pings + 1 s). */
#define KUBE_EXEC_PING_MS_DEFAULT 5000
#define KUBE_EXEC_IDLE_MS_DEFAULT 61000
/* Default cap on one WebSocket message from the server (output is still
 * streamed in pieces; this only bounds what the framing may claim). */
#define KUBE_EXEC_MAX_MESSAGE_DEFAULT (16u << 20)

/* Receives a piece of the command's stdout or stderr, in order, as it
 * arrives (len may be large; data is only valid during the call). Return 0
 * to go on, or a negative err code (after err_set) to stop the run: the
 * connection is closed and kube_exec_run returns that code. */
typedef int (*kube_exec_output_fn)(void *arg, const void *data, size_t len);

/* Supplies stdin: store up to cap bytes in buf and set *got. Return 0 with
 * *got > 0 for data, 0 with *got == 0 at the end of input, or a negative
 * err code to stop the run. Called from the run's thread whenever there is
 * room to send; it should not block for long (pings and output wait while
 * it does): a producer that is slow should feed a pipe and use stdin_fd. */
typedef int (*kube_exec_input_fn)(void *arg, void *buf, size_t cap, size_t *got);

typedef struct kube_exec_opts {
	const char *ns;               /* NULL: the client's namespace */
	const char *pod;              /* required */
	const char *container;        /* NULL: the pod's only container */
	const char *const *argv;      /* required, NULL-terminated, argv[0] non-empty */

	/* stdin: at most one source; none means stdin is not requested. */
	const void *stdin_data;       /* a fixed input of stdin_len bytes */
	size_t stdin_len;
	int stdin_fd;                 /* read until EOF (polled; not closed); -1: none */
	kube_exec_input_fn stdin_read;
	void *stdin_arg;

	/* stdout / stderr: a stream is requested only when its callback is set
	 * (at least one stream of the three must be). */
	kube_exec_output_fn on_stdout;
	kube_exec_output_fn on_stderr;
	void *out_arg;                /* passed to both */

	int protocol;                 /* 0: offer v5 then v4; 5 or 4: offer only that */
	int ping_ms;                  /* 0: KUBE_EXEC_PING_MS_DEFAULT; < 0: no pings */
	int idle_ms;                  /* silence (no byte, no pong) after which the stream
					 is lost; 0: KUBE_EXEC_IDLE_MS_DEFAULT */
	int64_t deadline_ms;          /* clock_mono_ms() deadline for the whole run; 0: none */
	size_t max_message;           /* 0: KUBE_EXEC_MAX_MESSAGE_DEFAULT */

	/* Cancellation from any thread: the flag is checked at least every
	 * 100 ms; cancel_fd (e.g. sandbox_cancel_fd()), when >= 0, wakes the
	 * run at once when it becomes readable (it is never read). */
	kube_cancel *cancel;
	int cancel_fd;
} kube_exec_opts;

#define KUBE_EXEC_OPTS_INIT { .stdin_fd = -1, .cancel_fd = -1 }

typedef struct kube_exec_result {
	int exit_code;            /* 0..255 when kube_exec_run returned 0, else -1 */
	int signal;               /* kube_exec_signal_of(exit_code): N when the code is
				     128+N (how runtimes report a process killed by
				     signal N), else 0. A reading, not proof. */
	int protocol;             /* 5 or 4 once upgraded, 0 before */
	int http_code;            /* the answer to the upgrade: 101, or the error's */
	int attempts;             /* connections made (2 after a 401 and a retry) */
	uint64_t stdin_bytes;     /* sent to the command */
	uint64_t stdout_bytes;    /* received, all delivered to on_stdout */
	uint64_t stderr_bytes;
	int64_t duration_ms;
	int close_code;           /* the server's WebSocket close code, 0 if none came */
	char reason[64];          /* the status's reason ("NonZeroExitCode",
				     "InternalError"...; "" for Success) */
	char message[1024];       /* the status's message */
} kube_exec_result;

/* Run opts->argv in the pod and wait for its end. *out is always filled
 * (counters, protocol, status). Returns:
 *   0              the command ran to an exit code: out->exit_code (non-zero
 *                  exit codes are not errors);
 *   ERR_LOST       the stream ended (EOF, reset, close frame, silence past
 *                  idle_ms, a protocol violation) without a valid status:
 *                  the command's outcome is unknown;
 *   ERR_FAIL       the server's status was a Failure other than a non-zero
 *                  exit (e.g. InternalError: the command could not be run);
 *                  the message is the server's;
 *   ERR_CANCELLED, ERR_TIMEOUT (deadline_ms), or the code an output/input
 *                  callback returned;
 * and before the upgrade (nothing ran, so retrying is safe):
 *   ERR_UNAUTHORIZED (after one retry with refreshed credentials),
 *   ERR_FORBIDDEN, ERR_NOTFOUND, ERR_INVALID (400, bad opts), ERR_AGAIN
 *   (connection failure, 429, 5xx), ERR_FAIL (an answer that is neither a
 *   valid upgrade nor an HTTP error), each with the API server's message
 *   (kube_status_last() holds its Status);
 *   ERR_AGAIN also when the upgrade request got no answer within idle_ms
 *   while deadline_ms was still ahead: an overloaded server, which may
 *   or may not have started the command (retry only what is safe to run
 *   twice or, like sandbox/command.c's durable commands, reattaches).
 * Thread-safe. */
int kube_exec_run(kube_exec_result *out, kube_client *c, const kube_exec_opts *opts);

#endif
