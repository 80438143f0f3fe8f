/*
 * pod_spec: the part of a Pod object the kubelet runs, parsed once from the
 * stored JSON into plain C (the object itself is not kept). Environment
 * variables are resolved here, as the kubelet does before it asks the
 * runtime to create a container (pkg/kubelet/kubelet_pods.go
 * makeEnvironmentVariables): values with $(VAR) expanded against the
 * variables defined before them, valueFrom.fieldRef from the pod's own
 * fields. What cannot be resolved without the API (secretKeyRef,
 * configMapKeyRef, resourceFieldRef) becomes the container's
 * CreateContainerConfigError message.
 */
#ifndef KUBESIM_POD_SPEC_H
#define KUBESIM_POD_SPEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

typedef struct ks_env_var {
	char *name;
	char *value;
} ks_env_var;

typedef struct ks_vol_mount {
	char *volume;    /* the volume's name */
	char *path;      /* absolute mountPath in the container */
	int read_only;
	int emptydir;    /* 1 when the volume is an emptyDir (mounted); 0: not mounted */
} ks_vol_mount;

typedef struct ks_ctr_spec {
	char *name;
	char *image;
	char *pull_policy;     /* Always, IfNotPresent or Never (defaulted as upstream) */
	char **argv;           /* command + args, $(VAR) expanded; NULL-terminated */
	size_t argc;
	char *workdir;         /* NULL: / */
	ks_env_var *env;
	size_t n_env;
	ks_vol_mount *mounts;
	size_t n_mounts;
	int has_uid, has_gid;
	uid_t uid;
	gid_t gid;
	int run_as_non_root;
	int ro_root;           /* securityContext.readOnlyRootFilesystem */
	int tty, stdin_open;
	char *config_error;    /* non-NULL: CreateContainerConfigError with this message */
} ks_ctr_spec;

typedef struct ks_pod_spec {
	char *uid, *ns, *name;
	char *hostname;
	char *restart_policy;  /* Always, OnFailure, Never */
	int64_t grace_seconds; /* terminationGracePeriodSeconds, default 30 */
	char **volumes;        /* emptyDir volume names */
	size_t n_volumes;
	gid_t *groups;         /* supplementalGroups and fsGroup */
	size_t n_groups;
	ks_ctr_spec *ctrs;
	size_t n_ctrs;
} ks_pod_spec;

/* Parse a Pod object. ERR_INVALID (with a message naming the field) for a
 * pod the kubelet cannot run: no uid/name/namespace, no containers, a
 * mountPath that is not absolute, a mount of an undeclared volume.
 * Caller owns the result; free with ks_pod_spec_free(). */
int ks_pod_spec_parse(ks_pod_spec **out, const cJSON *pod);

void ks_pod_spec_free(ks_pod_spec *s);

/* The container named name, or the first when name is NULL; NULL if none. */
const ks_ctr_spec *ks_pod_spec_container(const ks_pod_spec *s, const char *name);

#endif
