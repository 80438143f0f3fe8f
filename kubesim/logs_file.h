/*
 * logs_file: container logs in the CRI format the kubelet reads
 * (pkg/kubelet/kuberuntime/logs/logs.go): one record per line,
 *   2026-11-23T09:31:38.123456789Z stdout F the line
 * F for a whole line, P for a piece of a longer one (lines over 16 KiB are
 * cut, and output left without a newline when the stream ends). A sink is
 * the writer side of one container instance's file; readers follow it.
 */
#ifndef KUBESIM_LOGS_FILE_H
#define KUBESIM_LOGS_FILE_H

#include <stddef.h>

#include "kubesim/kubelet.h"

typedef struct ks_log_sink ks_log_sink;

/* Create (truncate) the log file at path. Caller owns one reference;
 * drop it with ks_log_sink_unref(). */
int ks_log_sink_new(ks_log_sink **out, const char *path);
void ks_log_sink_ref(ks_log_sink *s);
void ks_log_sink_unref(ks_log_sink *s);

/* Append output of stream 1 (stdout) or 2 (stderr): whole lines become
 * records at once, the rest waits for its newline. */
void ks_log_sink_write(ks_log_sink *s, int stream, const char *p, size_t n);

/* The container stopped: flush partial lines, wake followers for good. */
void ks_log_sink_finish(ks_log_sink *s);

/* Open a reader on a sink (see ks_kubelet_log_open for the options).
 * Takes its own reference on s. */
int ks_log_reader_new(ks_log_reader **out, ks_log_sink *s, const ks_log_params *p);

#endif
