/*
 * sim: kubesim's shared state and the seams between its modules (internal
 * to kubesim/; nothing outside kubesim includes it).
 *
 * Threads:
 *   - libmicrohttpd: one thread per connection (requests, watches, log
 *     follows), plus its listener thread;
 *   - the controller thread (controllers.c): Job, TTL, garbage collection,
 *     namespace deletion, pod deletion completion;
 *   - the kubelet action thread (controllers.c): runs start/stop/forget
 *     calls into the kubelet in order, never under the store lock (the
 *     kubelet may call back into kubesim from its own threads, which take
 *     the store lock: calling it with the lock held could deadlock);
 *   - kubelet threads (K2's): call the status/event callbacks;
 *   - exec relay threads (server.c), one per exec session.
 * Shared data: the store and everything in it behind the store lock
 * (ks_sim_lock); the action queue behind act_mu; metrics behind their own
 * mutex; faults behind theirs.
 */
#ifndef KUBESIM_SIM_H
#define KUBESIM_SIM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "kubesim/certs.h"
#include "kubesim/kubelet.h"
#include "kubesim/resources.h"
#include "kubesim/store.h"

#define KS_MAX_BODY (3u * 1024 * 1024) /* upstream's 3 MB request limit */
#define KS_MAX_GROUPS 16

typedef struct ks_faults ks_faults;
typedef struct ks_inflight ks_inflight;
typedef struct ks_metrics ks_metrics;
typedef struct ks_action ks_action;

typedef struct ks_user {
	char name[256];
	char uid[64];
	char groups[KS_MAX_GROUPS][128];
	size_t n_groups;
} ks_user;

typedef struct ks_sim {
	ks_store *store;
	ks_kubelet *kubelet;
	char *data_dir;
	char admin_token[65];
	unsigned char sa_key[32];
	ks_certs certs;
	ks_faults *faults;
	ks_inflight *inflight; /* max-in-flight limits (inflight.h) */
	struct ks_token_cache *token_cache; /* successful token checks (auth.c) */
	ks_metrics *metrics;
	char *image_fail_glob;
	uint64_t seed;

	volatile int stopping;
	pthread_t ctl_thread;
	int ctl_started;
	pthread_mutex_t ctl_mu;
	pthread_cond_t ctl_cond;
	int ctl_kick;

	pthread_mutex_t act_mu;
	pthread_cond_t act_cond;
	ks_action *act_head, *act_tail;
	pthread_t act_thread;
	int act_started;
} ks_sim;

typedef struct ks_sim_opts {
	const char *data_dir;
	const char *faults;
	uint64_t seed;
	const char *image_fail_glob;
	size_t history_cap;
	int image_pull_ms; /* simulated pull time for pullPolicy Always (0: none) */
	int max_inflight;  /* --max-requests-inflight (0: no limit) */
	int max_mutating_inflight; /* --max-mutating-requests-inflight (0: no limit) */
} ks_sim_opts;

/* Build kubesim's state: certificates, store with the bootstrap objects
 * (namespaces default, kube-system, kube-public, kube-node-lease with their
 * default ServiceAccounts, bootstrap RBAC), the kubelet, the controllers.
 * Caller owns the result; free with ks_sim_free(). */
int ks_sim_new(ks_sim **out, const ks_sim_opts *opts);
/* Stop controllers and every pod, free everything. NULL-safe. */
void ks_sim_free(ks_sim *s);
/* Write DIR/kubeconfig (users admin and admin-cert), DIR/ca.crt and
 * DIR/token for the server URL. 0 or ERR_FAIL. */
int ks_sim_write_kubeconfig(ks_sim *s, const char *url);

void ks_sim_lock(ks_sim *s);
void ks_sim_unlock(ks_sim *s);

/* ---- requests (server.c) ---- */

struct MHD_Connection;
struct MHD_Response;

typedef struct ks_req {
	ks_sim *sim;
	struct MHD_Connection *conn;
	const char *method;
	const char *url;
	const char *body;
	size_t body_len;
	ks_user user;
	int authenticated;

	/* parsed path (resource requests) */
	int is_resource;
	int res; /* index in ks_resources, -1 if unknown */
	char group[64];
	char version[16];
	char ns[254];
	char name[254];
	char sub[32];
	char plural[64];
	char verb[24];

	/* response */
	int code;
	struct MHD_Response *resp;
	char warning[512];
	int retry_after;
} ks_req;

const char *ks_req_header(ks_req *r, const char *name);
const char *ks_req_query(ks_req *r, const char *name);
/* 1 if a boolean query parameter is true (present and not "0"/"false"). */
int ks_req_bool(ks_req *r, const char *name);

/* Set the response. body is copied. */
void ks_reply(ks_req *r, int code, const char *ctype, const char *body, size_t len);
void ks_reply_json(ks_req *r, int code, const cJSON *obj);
/* A Status with reason and message; details (taken, may be NULL). */
void ks_reply_status(ks_req *r, int code, const char *reason, const char *msg, cJSON *details);
/* A prepared libmicrohttpd response (taken). */
void ks_reply_mhd(ks_req *r, int code, struct MHD_Response *resp);

/* Build a Status object (caller owns). */
cJSON *ks_status_new(int code, const char *reason, const char *msg, cJSON *details);

/* ---- the API (api.c) ---- */
void ks_api_handle(ks_req *r);
/* Resource request routing: parse r->url into r's path fields and verb.
 * 1 if it is a resource request, 0 if not (non-resource URL). */
int ks_api_parse_path(ks_req *r);

/* Object helpers (lock held). */
/* Fill metadata for a new object: uid, creationTimestamp, name from
 * generateName, namespace. */
void ks_obj_init_meta(cJSON *obj, const char *ns);
void ks_uid_new(char out[37]);
void ks_now(char out[32]);
/* Create an object through validation and admission as the API would
 * (used by controllers). Takes obj. 0, or an error with message. */
int ks_obj_create_internal(ks_sim *s, int res, cJSON *obj, cJSON **stored);
/* Record an Event about obj (lock held). */
void ks_event_record(ks_sim *s, const cJSON *obj, const char *type, const char *reason,
		     const char *msg, const char *component);
/* Delete an object with propagation ("Background", "Foreground", "Orphan")
 * and grace (-1: default), as the DELETE verb does (lock held). */
int ks_obj_delete(ks_sim *s, int res, const char *ns, const char *name, const char *propagation,
		  int grace);
/* cJSON helpers */
const char *ks_jstr(const cJSON *o, const char *key);
const char *ks_meta(const cJSON *o, const char *key);
cJSON *ks_obj_child(cJSON *o, const char *key); /* get or add an object member */

/* ---- discovery and OpenAPI (discovery.c) ---- */
/* 1 if handled. */
int ks_discovery_handle(ks_req *r);

/* ---- auth (auth.c) ---- */
/* Authenticate the request into r->user (anonymous when no credentials).
 * 0, or ERR_UNAUTHORIZED (an invalid/expired token). */
int ks_auth_authenticate(ks_req *r);
/* Apply Impersonate-* headers after checking the impersonate permission.
 * 0, or ERR_FORBIDDEN (reply set), ERR_INVALID (reply set). */
int ks_auth_impersonate(ks_req *r);
/* Mint a ServiceAccount token. exp_seconds from now; pod name/uid optional.
 * Caller frees the result. */
char *ks_auth_token_new(ks_sim *s, const char *ns, const char *sa, const char *sa_uid,
			const char *pod_name, const char *pod_uid, int64_t exp_unix, int64_t now_unix);
/* Validate a token into user (lock NOT held). 0 or ERR_UNAUTHORIZED.
 * A success is remembered for 10 s (at most until the token expires), as
 * kube-apiserver's token cache does; failures are not. */
int ks_auth_token_check(ks_sim *s, const char *token, ks_user *user);
void ks_auth_cache_free(struct ks_token_cache *c);
void ks_user_add_group(ks_user *u, const char *g);

/* ---- RBAC (rbac.c) ---- */
typedef struct ks_attrs {
	const char *verb;
	const char *group;
	const char *resource;
	const char *sub;
	const char *ns;
	const char *name;
	const char *path; /* non-resource requests */
	int is_resource;
} ks_attrs;
/* Decide (lock taken inside). 1 allowed, 0 denied; reason written. */
int ks_rbac_allowed(ks_sim *s, const ks_user *u, const ks_attrs *a, char *reason, size_t n);
/* Upstream forbidden message for a denial. */
void ks_rbac_forbidden_msg(char *out, size_t n, const ks_user *u, const ks_attrs *a);
/* The rules that apply to u in ns for a SelfSubjectRulesReview status. */
cJSON *ks_rbac_rules_review(ks_sim *s, const ks_user *u, const char *ns);
/* Store the bootstrap ClusterRoles and bindings (lock held). */
void ks_rbac_bootstrap(ks_sim *s);

/* ---- admission (admission.c) ---- */
/* Pod Security and ResourceQuota checks for a new pod (lock held). 0, or
 * ERR_FORBIDDEN with the upstream message in err_msg(). */
int ks_admit_pod(ks_sim *s, const cJSON *pod);
/* Sum of a quota resource name (pods, requests.cpu, ...) over the
 * non-terminal pods of ns (lock held), and its formatting. */
double ks_quota_used(ks_sim *s, const char *ns, const char *name, const char *skip_uid);
void ks_quota_fmt(char *out, size_t n, const char *name, double v);

/* ---- controllers (controllers.c) ---- */
int ks_controllers_start(ks_sim *s);
void ks_controllers_stop(ks_sim *s);
void ks_controllers_kick(ks_sim *s);
/* Kubelet actions, queued (lock may be held). pod is copied. */
void ks_action_pod_start(ks_sim *s, const cJSON *pod);
void ks_action_pod_stop(ks_sim *s, const char *uid, int grace, const char *reason);
void ks_action_pod_forget(ks_sim *s, const char *uid);
/* The kubelet callbacks. */
void ks_on_pod_status(void *arg, const ks_pod_status *st);
void ks_on_pod_event(void *arg, const char *ns, const char *pod, const char *uid, const char *type,
		     const char *reason, const char *message, const char *field_path);

/* ---- metrics (metrics.c) ---- */
int ks_metrics_new(ks_metrics **out);
void ks_metrics_free(ks_metrics *m);
void ks_metrics_count(ks_metrics *m, const char *verb, const char *group, const char *version,
		      const char *resource, const char *sub, const char *scope, int code);
/* Prometheus text. Caller frees. */
char *ks_metrics_render(ks_sim *s);

#endif
