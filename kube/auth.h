/*
 * kube/auth: the credentials of a client, kept current.
 *
 * Sources, in client-go's order of precedence (s/client-go/rest/transport.go):
 *  - an exec credential plugin (s/client-go/plugin/pkg/client/auth/exec/exec.go):
 *    run on first use, its ExecCredential cached until expirationTimestamp,
 *    re-run after a 401 with the credential it returned;
 *  - a bearer token, or a token file re-read every minute and after a 401
 *    (s/client-go/transport/token_source.go NewCachedFileTokenSource);
 *  - basic auth (username/password) and client certificates are static.
 * One lock (kube_auth.lock) guards the cache; a plugin runs under it, so
 * concurrent requests wait for one run instead of starting many.
 */
#ifndef KUBE_AUTH_H
#define KUBE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "kube/config.h"

typedef struct kube_auth kube_auth;

/* Caps on what an exec plugin may print, and how long it may run. */
#define KUBE_EXEC_PLUGIN_MAX_STDOUT (1u << 20)
#define KUBE_EXEC_PLUGIN_MAX_STDERR (16u << 10)
#define KUBE_EXEC_PLUGIN_TIMEOUT_MS 60000
/* client-go re-reads a token file at least this often. */
#define KUBE_TOKEN_REREAD_MS 60000

/* What to present on the next request. Strings owned by the struct;
 * free with kube_cred_clear(). */
typedef struct kube_cred {
	char *token;        /* bearer token, or NULL */
	char *cert_pem;     /* client certificate from an exec plugin, or NULL */
	size_t cert_len;
	char *key_pem;
	size_t key_len;
	uint64_t generation; /* changes whenever the credential changes */
} kube_cred;

/* cfg must outlive the auth object. Caller owns *out (kube_auth_free). */
int kube_auth_new(kube_auth **out, const kube_config *cfg);
void kube_auth_free(kube_auth *a);

/* The current credential, refreshing it if it has expired, is older than
 * the re-read period, or was invalidated. On a refresh failure with a
 * previous token still cached, the old token is used (as client-go's
 * cachingTokenSource does); otherwise an error: ERR_UNAUTHORIZED for a
 * plugin that returned no usable credential, ERR_NOTFOUND for a missing
 * token file, ERR_FAIL for a plugin that failed (its stderr and the
 * installHint quoted). Thread-safe. */
int kube_auth_get(kube_auth *a, kube_cred *out);

/* A 401 was answered to a request made with credential generation gen
 * (0: whatever is current): refresh before the next request. A 401 for an
 * older generation is ignored, so a burst of 401s re-runs a plugin once. */
void kube_auth_invalidate(kube_auth *a, uint64_t gen);

/* How many times the exec plugin has run / the token file was read. */
unsigned kube_auth_exec_runs(kube_auth *a);
unsigned kube_auth_token_reads(kube_auth *a);

/* Override the token-file re-read period (tests). */
void kube_auth_set_reread_ms(kube_auth *a, int64_t ms);

void kube_cred_clear(kube_cred *c);

/* Parse an exec plugin's stdout (an ExecCredential of api_version) into
 * *out; *expiry_ms is the expirationTimestamp in wall-clock ms, or 0 when
 * there is none. For tests and fuzzing as well. ERR_INVALID / ERR_UNAUTHORIZED
 * with a message. */
int kube_exec_credential_parse(kube_cred *out, int64_t *expiry_ms, const char *json, size_t len,
			       const char *api_version);

#endif
