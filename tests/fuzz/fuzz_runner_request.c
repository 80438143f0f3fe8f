/* libFuzzer target: the run request decoder (POST /v1/runs bodies) and the
 * run document decoder (what `submit` reads from a server). A request that
 * decodes must encode into a document that decodes again. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runner/request.h"
#include "runner/result.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	runner_limits lim = RUNNER_LIMITS_INIT;
	runner_request *r = NULL, *r2 = NULL;
	runner_request_error e;
	runner_run_doc *d = NULL;

	lim.allow_local_repos = size & 1;
	if (runner_request_decode(&r, &e, (const char *)data, size, &lim) == 0) {
		buf b = BUF_INIT(8 << 20);

		if (runner_request_encode(&b, r) == 0) {
			lim.max_body = 8 << 20;
			if (runner_request_decode(&r2, &e, b.data, b.len, &lim) != 0)
				abort(); /* what we encode we must accept */
		}
		buf_free(&b);
	} else if (e.message[0] == '\0') {
		abort(); /* every refusal says why */
	}
	if (runner_run_doc_decode(&d, (const char *)data, size, 1 << 20) == 0) {
		buf b = BUF_INIT(8 << 20);

		runner_run_doc_encode(&b, d, 1);
		(void)runner_run_doc_exit_status(d);
		buf_free(&b);
	}
	runner_run_doc_free(d);
	runner_request_free(r);
	runner_request_free(r2);
	return 0;
}
