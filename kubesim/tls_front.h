/*
 * tls_front: kubesim's TLS terminator (see tls_front.c). It accepts TCP
 * connections, does the TLS handshake with GnuTLS (client certificates
 * requested and verified against kubesim's CA) and hands each connection on
 * as the plaintext end of a socket pair; one thread per connection copies
 * bytes between TLS and that socket pair until either side is done.
 */
#ifndef KUBESIM_TLS_FRONT_H
#define KUBESIM_TLS_FRONT_H

#include <stdint.h>

#include "kubesim/certs.h"
#include "kubesim/sim.h"

typedef struct ks_tls_front ks_tls_front;
typedef struct ks_tls_conn ks_tls_conn;

/* Receives a new connection's plaintext end (owned by the callee from
 * now on, even when it fails). Called on the connection's own thread. */
typedef void (*ks_tls_accept_fn)(void *arg, int plain_fd);

/* Listen on host:port (IPv4; port 0 picks one) and serve TLS with certs'
 * serving certificate. certs must outlive the front. Caller owns the
 * result; free with ks_tls_front_free(). 0 or ERR_FAIL/ERR_INVALID. */
int ks_tls_front_new(ks_tls_front **out, const ks_certs *certs, const char *host, uint16_t port,
		     ks_tls_accept_fn fn, void *arg);

/* The port bound. */
uint16_t ks_tls_front_port(const ks_tls_front *f);

/* Stop accepting, reset every connection and wait for their threads.
 * Connections claimed with ks_tls_front_claim stay valid until
 * unreferenced. NULL-safe. */
void ks_tls_front_free(ks_tls_front *f);

/* The connection whose plaintext end was handed on as plain_fd, with a
 * reference for the caller (drop it with ks_tls_conn_unref), or NULL.
 * Each connection can be claimed once. Thread-safe. */
ks_tls_conn *ks_tls_front_claim(ks_tls_front *f, int plain_fd);

/* Drop a reference. NULL-safe. */
void ks_tls_conn_unref(ks_tls_conn *c);

/* The client certificate presented at the handshake: 1 with *out set to
 * its CN as name and its O values as groups (plus system:authenticated),
 * 0 when the client sent none, -1 when it did not verify against the CA. */
int ks_tls_conn_client_cert(const ks_tls_conn *c, ks_user *out);

/* Cut the TCP connection without TLS close_notify (fault injection: a
 * dropped connection, as a network failure looks to the client). */
void ks_tls_conn_drop(ks_tls_conn *c);

#endif
