/*
 * kube/client_priv: what the kube/ modules (rest, watch, logs, exec) use of
 * a client beyond its public header. Not for callers outside kube/.
 */
#ifndef KUBE_CLIENT_PRIV_H
#define KUBE_CLIENT_PRIV_H

#include <stdint.h>

#include <curl/curl.h>

#include "kube/auth.h"
#include "kube/client.h"

/* An easy handle attached to the client's shared connection cache: from
 * the idle pool, or new. NULL (with err_set) on allocation failure. Give it
 * back with kube_client_handle_put (which resets its options). */
CURL *kube_client_handle_get(kube_client *c);
void kube_client_handle_put(kube_client *c, CURL *h);

/* kube_client_curl_setup, also returning the credential generation used,
 * for kube_client_note_unauthorized_gen. */
int kube_client_prepare(kube_client *c, CURL *h, struct curl_slist **headers_out,
			uint64_t *gen_out);

/* A 401 answered a request made with credential generation gen. */
void kube_client_note_unauthorized_gen(kube_client *c, uint64_t gen);

/* Add n to the connections-opened counter (CURLINFO_NUM_CONNECTS). */
void kube_client_note_connections(kube_client *c, long n);

/* libcurl's message for a failed transfer (errbuf if set, else cc's
 * text), followed by the OS error in parentheses when libcurl has one
 * (CURLINFO_OS_ERRNO). Written to out (n bytes); returns out. */
const char *kube_curl_error(CURL *h, CURLcode cc, const char *errbuf, char *out, size_t n);

/* The client's credential cache (tests read its counters). */
kube_auth *kube_client_auth(kube_client *c);

#endif
