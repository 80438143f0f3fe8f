/*
 * kube/exec_status: the metav1.Status that ends a pod exec stream.
 *
 * After the command's output, the server writes one JSON Status on channel
 * 3 (v4 and v5 protocols), json.Marshal(metav1.Status) without kind and
 * apiVersion:
 *   {"metadata":{},"status":"Success"}
 *   {"metadata":{},"status":"Failure","message":"command terminated with
 *    non-zero exit code: ...","reason":"NonZeroExitCode",
 *    "details":{"causes":[{"reason":"ExitCode","message":"3"}]}}
 * or another Failure (e.g. reason InternalError, code 500) when the command
 * could not be run to an exit code. (HTTP errors before the upgrade are
 * ordinary Status bodies: kube/status.h reads those.)
 *
 * The exit code is read from the ExitCode cause, never from the message
 * text, as client-go does (s/client-go/tools/remotecommand/v4.go,
 * errorDecoderV4: strconv.ParseUint(cause.Message, 10, 8)); the server side
 * is s/kubelet/pkg/cri/streaming/remotecommand/exec.go ServeExec.
 */
#ifndef KUBE_EXEC_STATUS_H
#define KUBE_EXEC_STATUS_H

#include <stddef.h>

/* Hard cap on the status JSON (the whole channel-3 content). */
#define KUBE_EXEC_STATUS_MAX (64u << 10)

enum kube_exec_outcome {
	/* The command ran to an exit code: Success (0), or Failure with
	 * reason NonZeroExitCode and an ExitCode cause (1..255). */
	KUBE_EXEC_EXITED = 0,
	/* Any other Failure: the command did not run to an exit code
	 * (InternalError: no such executable, container gone...). */
	KUBE_EXEC_FAILED = 1
};

typedef struct kube_exec_status {
	int outcome;          /* enum kube_exec_outcome */
	int exit_code;        /* EXITED: 0..255; FAILED: -1 */
	int code;             /* the Status's "code" (HTTP code), 0 when absent */
	char status[16];      /* "Success" or "Failure" */
	char reason[64];      /* "" when absent; cut to fit */
	char message[1024];   /* "" when absent; cut to fit */
} kube_exec_status;

/* Parse the channel-3 JSON (len bytes, not NUL-terminated) into *out and
 * decide the outcome the way errorDecoderV4 does. 0, or ERR_TOOBIG (over
 * KUBE_EXEC_STATUS_MAX) or ERR_INVALID with a message ("error stream
 * protocol error: ...") for anything that is not a well-formed status:
 * not JSON, not an object, a status other than Success/Failure,
 * NonZeroExitCode without an ExitCode cause, an exit code that is not a
 * plain decimal 0..255. *out is always initialised. */
int kube_exec_status_parse(kube_exec_status *out, const void *json, size_t len);

/* The signal conventionally meant by an exit code: 128+N for a process
 * killed by signal N (how shells and container runtimes report it), so
 * 129..192 gives 1..64; 0 otherwise. Only a reading of the number: a
 * program may exit with 137 on its own. */
int kube_exec_signal_of(int exit_code);

#endif
