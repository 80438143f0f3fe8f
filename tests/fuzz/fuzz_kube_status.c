/*
 * Fuzz the parsers of what the API server says when something fails: an
 * HTTP error body (JSON Status or plain text) into kube_status and its
 * error message, and an exec plugin's ExecCredential (kube/status.h,
 * kube/auth.h). The first two bytes pick the HTTP status.
 */
#include <stddef.h>
#include <stdint.h>

#include "kube/auth.h"
#include "kube/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kube_status st;
	kube_cred cred;
	int64_t exp;

	if (size < 2)
		return 0;
	long code = 100 + ((data[0] << 8 | data[1]) % 500);
	kube_status_from_body(&st, code, (const char *)data + 2, size - 2);
	kube_status_err(&st, "fuzz");
	if (kube_exec_credential_parse(&cred, &exp, (const char *)data + 2, size - 2,
				       "client.authentication.k8s.io/v1") == 0)
		kube_cred_clear(&cred);
	return 0;
}
