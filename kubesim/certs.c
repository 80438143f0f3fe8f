/*
 * certs: generate kubesim's CA, serving and client certificates with
 * OpenSSL 3 (EVP_EC_gen, X509 v3 extensions). See certs.h.
 */
#include "kubesim/certs.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "util/err.h"

static char *bio_take(BIO *b)
{
	char *p = NULL;
	long n = BIO_get_mem_data(b, &p);
	char *s = malloc((size_t)n + 1);
	if (!s)
		return NULL;
	memcpy(s, p, (size_t)n);
	s[n] = 0;
	return s;
}

static char *key_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;
	if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL))
		s = bio_take(b);
	BIO_free(b);
	return s;
}

static char *cert_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;
	if (b && PEM_write_bio_X509(b, x))
		s = bio_take(b);
	BIO_free(b);
	return s;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -1;
	int ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* One certificate for key, signed by ca_key (self-signed when ca is NULL). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *org, X509 *ca, EVP_PKEY *ca_key,
		       int is_ca, const char *san, int client)
{
	X509 *x = X509_new();
	if (!x)
		return NULL;
	unsigned char serial[16];
	if (RAND_bytes(serial, sizeof serial) != 1)
		goto fail;
	serial[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
	if (!bn)
		goto fail;
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600);
	X509_set_pubkey(x, key);
	X509_NAME *name = X509_get_subject_name(x);
	if (org)
		X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)org, -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : name);
	X509 *issuer = ca ? ca : x;
	if (is_ca) {
		if (add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE") ||
		    add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature"))
			goto fail;
	} else {
		if (add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE") ||
		    add_ext(x, issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
		    add_ext(x, issuer, NID_ext_key_usage, client ? "clientAuth" : "serverAuth"))
			goto fail;
	}
	if (add_ext(x, issuer, NID_subject_key_identifier, "hash"))
		goto fail;
	if (ca && add_ext(x, issuer, NID_authority_key_identifier, "keyid:always"))
		goto fail;
	if (san && add_ext(x, issuer, NID_subject_alt_name, san))
		goto fail;
	if (!X509_sign(x, ca_key ? ca_key : key, EVP_sha256()))
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

int ks_certs_generate(ks_certs *out)
{
	int rc = ERR_FAIL;
	EVP_PKEY *ca_key = NULL, *srv_key = NULL, *cli_key = NULL;
	X509 *ca = NULL, *srv = NULL, *cli = NULL;
	memset(out, 0, sizeof *out);

	ca_key = EVP_EC_gen("P-256");
	srv_key = EVP_EC_gen("P-256");
	cli_key = EVP_EC_gen("P-256");
	if (!ca_key || !srv_key || !cli_key) {
		err_set(ERR_FAIL, "kubesim: EC key generation failed");
		goto done;
	}
	ca = make_cert(ca_key, "kubesim-ca", NULL, NULL, NULL, 1, NULL, 0);
	if (ca)
		srv = make_cert(srv_key, "kubesim", NULL, ca, ca_key, 0,
				"IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc", 0);
	if (srv)
		cli = make_cert(cli_key, "kubesim-admin", "system:masters", ca, ca_key, 0, NULL, 1);
	if (!cli) {
		err_set(ERR_FAIL, "kubesim: certificate generation failed");
		goto done;
	}
	out->ca_pem = cert_pem(ca);
	out->server_cert_pem = cert_pem(srv);
	out->server_key_pem = key_pem(srv_key);
	out->client_cert_pem = cert_pem(cli);
	out->client_key_pem = key_pem(cli_key);
	if (!out->ca_pem || !out->server_cert_pem || !out->server_key_pem || !out->client_cert_pem ||
	    !out->client_key_pem) {
		ks_certs_clear(out);
		err_set(ERR_FAIL, "kubesim: PEM encoding failed");
		goto done;
	}
	rc = 0;
done:
	X509_free(ca);
	X509_free(srv);
	X509_free(cli);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(srv_key);
	EVP_PKEY_free(cli_key);
	return rc;
}

void ks_certs_clear(ks_certs *c)
{
	if (!c)
		return;
	free(c->ca_pem);
	free(c->server_cert_pem);
	free(c->server_key_pem);
	free(c->client_cert_pem);
	free(c->client_key_pem);
	memset(c, 0, sizeof *c);
}
