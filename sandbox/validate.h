/*
 * validate: the syntax checks behind sandbox_request_validate(), public so
 * the runner (flags, HTTP) and the Job spec builder use the same rules.
 * Each returns 1 when valid, 0 when not (no err_set).
 */
#ifndef SANDBOX_VALIDATE_H
#define SANDBOX_VALIDATE_H

/* [prefix/]name with prefix a DNS-1123 subdomain and name
 * (([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]) of at most 63. */
int sandbox_label_key_valid(const char *key);
/* Empty, or at most 63 of the name syntax above. */
int sandbox_label_value_valid(const char *value);
/* [A-Za-z_][A-Za-z0-9_]* (so `export NAME=...` in sh is safe). */
int sandbox_env_name_valid(const char *name);
/* NULL, "", or a relative path without ".." components or control bytes. */
int sandbox_workdir_valid(const char *workdir);
/* A container image reference (distribution/reference grammar). */
int sandbox_image_valid(const char *ref);
/* https://, http://, file:///..., or an absolute local path. */
int sandbox_repo_url_valid(const char *url);
/* A branch, tag or refs/... name (git check-ref-format rules). */
int sandbox_ref_valid(const char *ref);
/* 40 hex digits. */
int sandbox_commit_valid(const char *commit);
/* An image pull policy: Always, IfNotPresent or Never. */
int sandbox_pull_policy_valid(const char *policy);
/* An extended resource name a container may ask for ("nvidia.com/gpu"): a
 * qualified name with a domain prefix that is not kubernetes.io's (those
 * are native resources), not starting with "requests.", and whose quota
 * name "requests.NAME" is a qualified name too. */
int sandbox_extended_resource_valid(const char *name);

#endif
