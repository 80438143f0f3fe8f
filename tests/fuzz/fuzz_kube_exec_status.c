/*
 * Fuzz the exec status parser (kube/exec_status.h): the channel-3 JSON an
 * exec stream ends with. Checks the contract on every input: an accepted
 * status is either an exit code 0..255 or a failure without one.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "kube/exec_status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kube_exec_status st;
	int rc = kube_exec_status_parse(&st, data, size);

	if (rc == 0) {
		if (st.outcome == KUBE_EXEC_EXITED && (st.exit_code < 0 || st.exit_code > 255))
			abort();
		if (st.outcome == KUBE_EXEC_FAILED && st.exit_code != -1)
			abort();
		(void)kube_exec_signal_of(st.exit_code);
	} else if (st.exit_code != -1 || st.outcome != KUBE_EXEC_FAILED) {
		abort();
	}
	return 0;
}
