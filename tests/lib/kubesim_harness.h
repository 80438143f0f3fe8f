/*
 * kubesim_harness: start and stop a real kubesim from Criterion tests.
 *
 *   ks_harness *h = NULL;
 *   cr_assert_eq(ks_harness_start(&h, NULL), 0, "%s", ks_harness_error(h));
 *   ... ks_harness_url(h), ks_harness_kubeconfig(h), ks_harness_token(h) ...
 *   ks_harness_stop(h);
 *
 * The binary is $BUILD/kubesim (BUILD defaults to "build"), relative to
 * $CIFIXER_TEST_ROOT (set by tests/run-tests.sh; default: the current
 * directory). Each start gets a fresh temporary directory and a free port.
 */
#ifndef TESTS_LIB_KUBESIM_HARNESS_H
#define TESTS_LIB_KUBESIM_HARNESS_H

#include <sys/types.h>

typedef struct ks_harness ks_harness;

/* Start kubesim with extra arguments (NULL-terminated array, or NULL) and
 * wait up to 20 s for DIR/ready. 0 on success; -1 on failure, with *out
 * still set (when allocation worked) so ks_harness_error() can say why;
 * the caller then calls ks_harness_stop(*out). */
int ks_harness_start(ks_harness **out, const char *const *extra_args);

/* SIGTERM, then SIGKILL after 10 s; reap; remove the directory; free.
 * NULL-safe. */
void ks_harness_stop(ks_harness *h);

const char *ks_harness_url(const ks_harness *h);        /* https://127.0.0.1:PORT */
const char *ks_harness_data_dir(const ks_harness *h);   /* kubesim's --data-dir */
const char *ks_harness_kubeconfig(const ks_harness *h); /* DATA/kubeconfig */
const char *ks_harness_ca_file(const ks_harness *h);    /* DATA/ca.crt */
const char *ks_harness_token(const ks_harness *h);      /* the admin bearer token */
pid_t ks_harness_pid(const ks_harness *h);
/* Why the last start failed ("" if it did not). NULL-safe. */
const char *ks_harness_error(const ks_harness *h);

#endif
