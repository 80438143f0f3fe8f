/*
 * commands: the four subcommands of the ci-fixer program and the pieces
 * they share (the Kubernetes client and sandbox configuration built from
 * the options, run ids). Each command returns the process exit status.
 */
#ifndef RUNNER_COMMANDS_H
#define RUNNER_COMMANDS_H

#include <stddef.h>

#include "kube/client.h"
#include "runner/cli.h"
#include "sandbox/run.h"

int runner_cmd_run(const runner_opts *o);
int runner_cmd_serve(const runner_opts *o);
/* Before anything else in `serve`: make glibc's malloc keep no per-thread
 * cache (GLIBC_TUNABLES), executing the program again once if need be. */
void runner_serve_tune_malloc(char **argv);
int runner_cmd_submit(const runner_opts *o);
int runner_cmd_verify_rbac(const runner_opts *o);

/* A client from --kubeconfig/--context/--namespace (kubeconfig, else
 * in-cluster). Caller frees with kube_client_free(). 0 or an error with
 * err_msg(). */
int runner_kube_client(kube_client **out, const runner_opts *o);

/* The sandbox configuration: sandbox's defaults, then the options. Strings
 * point into o, which must outlive cfg. */
void runner_sandbox_config(sandbox_config *cfg, const runner_opts *o);

/* A fresh run id: "r-" and 16 lower-case hex digits from getrandom(2).
 * out holds at least 24 bytes. 0 or ERR_FAIL. */
int runner_new_id(char *out, size_t size);

/* Write len bytes to path ("-": stdout). 0 or ERR_FAIL with a message. */
int runner_write_file(const char *path, const char *data, size_t len);

#endif
