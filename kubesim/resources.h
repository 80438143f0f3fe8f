/*
 * resources: the table of API resources kubesim serves (group, version,
 * plural, kind, scope, verbs, short names, subresources) and the
 * validation of objects clients send (names, labels, required and
 * immutable fields), producing upstream-shaped field causes.
 */
#ifndef KUBESIM_RESOURCES_H
#define KUBESIM_RESOURCES_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define KS_RES_STORED 1   /* stored object (CRUD, list, watch) */
#define KS_RES_CREATE_ONLY 2 /* a review: create only, never stored */

typedef struct ks_resource {
	const char *group;     /* "" for the core group */
	const char *version;
	const char *plural;
	const char *singular;
	const char *kind;
	int namespaced;
	int flags;
	const char *short_names;  /* comma-separated, may be "" */
	const char *subresources; /* comma-separated, may be "" */
	const char *categories;   /* comma-separated, may be "" */
} ks_resource;

extern const ks_resource ks_resources[];
extern const size_t ks_n_resources;

/* Index of group/version/plural in ks_resources, or -1. */
int ks_resource_find(const char *group, const char *version, const char *plural);
/* Index by plural alone (plurals are unique in kubesim's table), or -1. */
int ks_resource_by_plural(const char *plural);
/* 1 if sub is a subresource of r. */
int ks_resource_has_sub(const ks_resource *r, const char *sub);
/* "pods" or "jobs.batch": the qualified resource upstream errors use. */
void ks_resource_qualified(char *out, size_t n, const ks_resource *r);
/* "apps/v1" or "v1". */
void ks_resource_api_version(char *out, size_t n, const ks_resource *r);

/* One Invalid cause. */
typedef struct ks_cause {
	char reason[32];   /* FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, FieldValueForbidden, FieldValueTooLong */
	char field[128];
	char message[512];
} ks_cause;

#define KS_MAX_CAUSES 16

typedef struct ks_causes {
	ks_cause c[KS_MAX_CAUSES];
	size_t n;
} ks_causes;

void ks_causes_add(ks_causes *cs, const char *reason, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Validate obj for create (old NULL) or update (old set) of resource r.
 * Fills causes; returns their count. */
size_t ks_validate(ks_causes *out, const ks_resource *r, const cJSON *obj, const cJSON *old);

/* Label key/value checks (also used by selectors). 1 if valid. */
int ks_valid_label_value(const char *v);
int ks_valid_qualified_name(const char *k);

/* Strict field check for fieldValidation=Strict: the first unknown
 * top-level or metadata field of obj, written into out (e.g.
 * ".spec.foo"); 0 if none, 1 if one was found. */
int ks_unknown_field(char *out, size_t n, const ks_resource *r, const cJSON *obj);

#endif
