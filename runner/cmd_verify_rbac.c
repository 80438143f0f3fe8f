/*
 * cmd_verify_rbac: `ci-fixer verify-rbac`, the permission self-check as a
 * command (runner/rbac_check.c). Exit 0 only when every needed permission is
 * allowed and every dangerous one denied; 1 when not; 125 when the reviews
 * could not be made.
 */
#include <stdio.h>

#include "runner/commands.h"
#include "runner/rbac_check.h"
#include "runner/result.h"
#include "util/err.h"

int runner_cmd_verify_rbac(const runner_opts *o)
{
	kube_client *kc = NULL;
	runner_rbac_result *r = NULL;
	size_t n = 0;
	int all_ok = 0, status = RUNNER_EXIT_INFRA;
	const char *ns;
	buf out = BUF_INIT(1 << 20);

	if (runner_kube_client(&kc, o)) {
		fprintf(stderr, "ci-fixer: Kubernetes configuration: %s\n", err_msg());
		goto done;
	}
	ns = o->namespace_ ? o->namespace_ : kube_client_namespace(kc);
	if (runner_rbac_verify(&r, &n, &all_ok, kc, ns)) {
		fprintf(stderr, "ci-fixer: %s\n", err_msg());
		goto done;
	}
	if (o->json)
		runner_rbac_json(&out, r, n, all_ok, ns);
	else
		runner_rbac_table(&out, r, n);
	fwrite(out.data, 1, out.len, stdout);
	if (!o->json) {
		size_t bad = 0;

		for (size_t i = 0; i < n; i++)
			bad += !r[i].ok;
		printf("\n%s: %zu checks in namespace %s, %zu failed\n", all_ok ? "PASS" : "FAIL", n, ns, bad);
	}
	fflush(stdout);
	status = all_ok ? 0 : 1;
done:
	buf_free(&out);
	runner_rbac_results_free(r, n);
	kube_client_free(kc);
	return status;
}
