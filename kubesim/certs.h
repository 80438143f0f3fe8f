/*
 * certs: kubesim's PKI, made fresh at every start with OpenSSL: a CA, a
 * serving certificate for 127.0.0.1 and localhost, and a client
 * certificate for the admin-cert kubeconfig user (CN=kubesim-admin,
 * O=system:masters). Everything stays in memory as PEM.
 */
#ifndef KUBESIM_CERTS_H
#define KUBESIM_CERTS_H

typedef struct ks_certs {
	char *ca_pem;          /* CA certificate */
	char *server_cert_pem; /* serving certificate (signed by the CA) */
	char *server_key_pem;
	char *client_cert_pem; /* admin-cert user */
	char *client_key_pem;
} ks_certs;

/* Generate the CA, serving and client material (EC P-256, valid one year).
 * Caller owns out's strings; free with ks_certs_clear(). 0 or ERR_FAIL. */
int ks_certs_generate(ks_certs *out);

/* Free the PEM strings; out is zeroed. NULL-safe. */
void ks_certs_clear(ks_certs *c);

#endif
