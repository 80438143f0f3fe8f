/*
 * server: kubesim's HTTPS front end: TLS terminated by tls_front.c
 * (GnuTLS; client certificates verified against kubesim's CA), HTTP by
 * libmicrohttpd on the plaintext side, one thread per connection, request
 * bodies capped at KS_MAX_BODY, WebSocket upgrades for pods/exec. Every
 * request goes through ks_api_handle (api.c).
 */
#ifndef KUBESIM_SERVER_H
#define KUBESIM_SERVER_H

#include <stdint.h>

#include "kubesim/sim.h"

typedef struct ks_server ks_server;

/* Start serving on host:port (port 0 picks a free one). Caller owns the
 * result; stop with ks_server_free(). 0 or ERR_FAIL. */
int ks_server_new(ks_server **out, ks_sim *sim, const char *host, uint16_t port);

/* The port actually bound. */
uint16_t ks_server_port(const ks_server *srv);

/* Stop accepting, close connections, free. NULL-safe. */
void ks_server_free(ks_server *srv);

/* The client certificate of r's connection (ks_tls_conn_client_cert):
 * 1 with *out set, 0 when none was sent, -1 when it did not verify. */
int ks_req_client_cert(ks_req *r, ks_user *out);

/* Cut r's connection at once, with no answer and no TLS close_notify
 * (the dropped-connection fault). */
void ks_req_drop(ks_req *r);

/* ---- exec upgrade (used by api.c) ---- */
/* Answer r with 101 Switching Protocols for subprotocol proto, then hand
 * the upgraded socket to the kubelet with p (taken). */
void ks_server_exec_upgrade(ks_req *r, const char *proto, ks_exec_params *p);

#endif
