/*
 * rbac_check: the permission self-check behind `ci-fixer verify-rbac` and
 * serve's /readyz. Every permission a run needs must be allowed and every
 * permission on a list of dangerous ones must be denied, as answered by
 * SelfSubjectAccessReviews for the current identity (kube/resources.h).
 */
#ifndef RUNNER_RBAC_CHECK_H
#define RUNNER_RBAC_CHECK_H

#include <stddef.h>

#include "kube/client.h"
#include "util/buf.h"

typedef struct runner_rbac_item {
	int want_allowed;        /* 1: needed, 0: dangerous */
	const char *verb;
	const char *group;
	const char *resource;
	const char *subresource; /* or NULL */
	int cluster_scoped;      /* ask without a namespace */
	const char *other_ns;    /* ask in this namespace instead of the sandbox one */
	const char *why;
} runner_rbac_item;

typedef struct runner_rbac_result {
	const runner_rbac_item *item;
	char ns[64];             /* "" cluster-wide */
	int allowed;
	int ok;                  /* allowed == want_allowed */
	char *reason;            /* the review's reason, or NULL */
} runner_rbac_result;

/* The list of checks; *n gets its length. Static storage. */
const runner_rbac_item *runner_rbac_items(size_t *n);

/* Run every check in namespace ns. *out (caller frees with
 * runner_rbac_results_free) holds one result per item; *all_ok is 1 when
 * every needed permission is allowed and every dangerous one denied. 0, or
 * the first review's error (the API server could not answer): then *out is
 * NULL. */
int runner_rbac_verify(runner_rbac_result **out, size_t *n, int *all_ok, kube_client *kc, const char *ns);
void runner_rbac_results_free(runner_rbac_result *r, size_t n);

/* Format the results as a table (text) or a JSON document. */
int runner_rbac_table(buf *out, const runner_rbac_result *r, size_t n);
int runner_rbac_json(buf *out, const runner_rbac_result *r, size_t n, int all_ok, const char *ns);

#endif
