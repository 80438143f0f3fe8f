/*
 * patch: the three PATCH flavours of the Kubernetes API, applied to cJSON:
 * JSON merge patch (RFC 7386, application/merge-patch+json), strategic
 * merge patch as kubectl apply/patch send it
 * (application/strategic-merge-patch+json: lists merged by their
 * patchMergeKey, $patch / $retainKeys / $setElementOrder /
 * $deleteFromPrimitiveList directives), and JSON patch (RFC 6902,
 * application/json-patch+json).
 *
 * Merge keys are those of the upstream Go types (the patchMergeKey struct
 * tags in k/k staging/src/k8s.io/api/core/v1/types.go and
 * apimachinery/pkg/apis/meta/v1/types.go), looked up by field name.
 */
#ifndef KUBESIM_PATCH_H
#define KUBESIM_PATCH_H

#include <cjson/cJSON.h>

/* Apply a merge patch to *doc in place (*doc may be replaced when the patch
 * is not an object). 0 or ERR_INVALID. */
int ks_patch_merge(cJSON **doc, const cJSON *patch);

/* Apply a strategic merge patch to *doc in place. 0 or ERR_INVALID with a
 * message. */
int ks_patch_strategic(cJSON **doc, const cJSON *patch);

/* Apply a JSON patch (an array of operations) to *doc in place. 0,
 * ERR_INVALID (malformed op or path), or ERR_CONFLICT (a failed test). */
int ks_patch_json(cJSON **doc, const cJSON *ops);

#endif
