/*
 * placement: where the sandbox pod may run and what it asks the node for,
 * beyond cpu and memory: nodeSelector, tolerations, affinity, GPUs (an
 * extended resource), the image pull policy and the pod's ServiceAccount.
 * They come from the service's configuration (sandbox_config), never from
 * a run request, and none of them touches the Pod Security hardening.
 *
 * The runner parses its JSON settings (config.json, flags) with the
 * parsers below; the Job spec builder checks the resulting sandbox_config
 * again with sandbox_pod_settings_check() (a config may be built in C) and
 * adds the settings with sandbox_pod_settings_apply().
 */
#ifndef SANDBOX_PLACEMENT_H
#define SANDBOX_PLACEMENT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "sandbox/run.h"

/* Parse a nodeSelector: JSON text of an object whose keys are label keys
 * and whose values are label values (strings). *out gets count pairs
 * (NULL and 0 for "{}"); caller frees with sandbox_kv_array_free(). 0, or
 * ERR_INVALID with err_msg() naming the entry ("\"bad key\": not a valid
 * label key"), or ERR_NOMEM. */
int sandbox_node_selector_parse(sandbox_kv **out, size_t *count, const char *json);
void sandbox_kv_array_free(sandbox_kv *kv, size_t count);

/* Parse tolerations: JSON text of an array of core/v1 Toleration objects
 * (key, operator, value, effect, tolerationSeconds; no other field), each
 * checked with sandbox_toleration_check(). *out gets count entries (NULL
 * and 0 for "[]"); caller frees with sandbox_tolerations_free(). 0, or
 * ERR_INVALID naming the entry ("[1].effect: ..."), or ERR_NOMEM. */
int sandbox_tolerations_parse(sandbox_toleration **out, size_t *count, const char *json);
void sandbox_tolerations_free(sandbox_toleration *t, size_t count);

/* One toleration as the API server checks it (pkg/apis/core/validation
 * ValidateTolerations): key empty or a qualified name; an empty key needs
 * operator Exists; operator Exists (value empty) or Equal (value a label
 * value); effect empty, NoSchedule, PreferNoSchedule or NoExecute;
 * tolerationSeconds only with NoExecute, and not negative. 0 or
 * ERR_INVALID with a message naming the field ("effect: ..."). */
int sandbox_toleration_check(const sandbox_toleration *t);

/* Affinity: JSON text of an object whose members are among nodeAffinity,
 * podAffinity and podAntiAffinity, each an object. Their contents are
 * passed to the API server as they are (it validates them). 0 or
 * ERR_INVALID. */
int sandbox_affinity_check(const char *json);

/* All of cfg's pod settings above, plus the image pull policy, the
 * ServiceAccount name (a DNS-1123 subdomain) and the GPUs (gpu_count 0 or
 * more; when more, gpu_resource an extended resource name). 0 or
 * ERR_INVALID naming the setting ("configuration: tolerations[0].key:
 * ..."). */
int sandbox_pod_settings_check(const sandbox_config *cfg);

/* Add cfg's nodeSelector, tolerations and affinity (each only when set) to
 * pod_spec, and gpu_count of gpu_resource to resources' limits and requests
 * (equal: Kubernetes does not overcommit extended resources, and a request
 * must equal the limit). Assumes sandbox_pod_settings_check() passed. 0,
 * ERR_INVALID (affinity is not JSON) or ERR_NOMEM. */
int sandbox_pod_settings_apply(cJSON *pod_spec, cJSON *resources, const sandbox_config *cfg);

#endif
