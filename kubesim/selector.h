/*
 * selector: label selectors (=, ==, !=, in, notin, exists, !exists, gt/lt)
 * and field selectors (=, ==, !=) as in k/k
 * staging/src/k8s.io/apimachinery/pkg/labels/selector.go and
 * pkg/fields/selector.go, parsed from query strings and from the
 * LabelSelector objects of Job/Deployment specs.
 */
#ifndef KUBESIM_SELECTOR_H
#define KUBESIM_SELECTOR_H

#include <cjson/cJSON.h>

typedef struct ks_selector ks_selector;

#define KS_SELECTOR_MAX_LEN 4096

/* Parse a labelSelector query value. NULL/"" selects everything.
 * Caller owns the result (ks_selector_free). 0 or ERR_INVALID/ERR_TOOBIG. */
int ks_selector_parse_labels(ks_selector **out, const char *s);
/* Parse a fieldSelector query value (only =, ==, !=). */
int ks_selector_parse_fields(ks_selector **out, const char *s);
/* From a metav1.LabelSelector object (matchLabels, matchExpressions). */
int ks_selector_from_object(ks_selector **out, const cJSON *sel);

void ks_selector_free(ks_selector *s);

/* 1 if the labels object (may be NULL) matches. */
int ks_selector_match_labels(const ks_selector *s, const cJSON *labels);
/* 1 if obj matches, reading each field by its dotted path. */
int ks_selector_match_fields(const ks_selector *s, const cJSON *obj);
/* The field keys used (for checking them against what a resource supports):
 * the i-th key or NULL past the end. */
const char *ks_selector_key(const ks_selector *s, int i);
/* 1 if the selector requires key == value exactly (for watch shortcuts). */
int ks_selector_empty(const ks_selector *s);

/* Read a dotted path (e.g. "status.phase", "involvedObject.name") as a
 * string ("" when absent; numbers printed). Writes into out. */
void ks_field_get(char *out, size_t n, const cJSON *obj, const char *path);

#endif
