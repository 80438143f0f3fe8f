/*
 * Fuzz the exec handshake parsers (kube/exec_http.h): the answer's head
 * (status line and headers) and a chunked error body. The first byte
 * chooses which.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "kube/exec_http.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1) {
		kube_exec_http_head h;
		int rc = kube_exec_http_head_parse(&h, (const char *)data + 1, size - 1);

		if (rc == 0 && (h.head_len > size - 1 || h.code < 100 || h.code > 999))
			abort();
	} else {
		buf b = BUF_INIT(4096);
		size_t used = 0;
		int rc = kube_exec_http_chunked_decode(&b, (const char *)data + 1, size - 1, &used);

		if (rc == 0 && (used > size - 1 || b.len > 4096))
			abort();
		buf_free(&b);
	}
	return 0;
}
