/*
 * bridge: the runner's documents to and from sandbox's structs. A decoded
 * runner_request becomes a sandbox_request for sandbox_run(); a
 * sandbox_result becomes the run document the API serves; the runner's
 * request limits follow the sandbox configuration's maxima.
 */
#ifndef RUNNER_BRIDGE_H
#define RUNNER_BRIDGE_H

#include "runner/request.h"
#include "runner/result.h"
#include "sandbox/run.h"

/* A sandbox request with copies of r's strings. Caller frees *out with
 * sandbox_request_free(). 0 or ERR_NOMEM. */
int runner_to_sandbox_request(sandbox_request **out, const runner_request *r);

/* Check r with sandbox_request_validate() against cfg (the rules the Job
 * builder applies), turning a refusal into a 400 naming the field. 0 or
 * ERR_INVALID with *e filled. */
int runner_sandbox_validate(runner_request_error *e, const runner_request *r, const sandbox_config *cfg);

/* Fill d (an existing document: id and created time are kept) from a
 * sandbox result. 0 or ERR_NOMEM. */
int runner_doc_from_result(runner_run_doc *d, const sandbox_result *res);

/* The phase of the document for a sandbox phase. */
enum runner_phase runner_phase_from_sandbox(enum sandbox_phase p);

/* Tighten lim to what cfg allows (commands, timeouts, cpu, memory). */
void runner_limits_from_config(runner_limits *lim, const sandbox_config *cfg);

#endif
