/*
 * Fuzz the workspace tar reader (sandbox/tar.c): bytes from `tar -c` in
 * the pod, so anything the network can carry. The input is fed in pieces
 * whose sizes come from the first byte, to exercise the streaming state.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sandbox/tar.h"

static int on_entry(void *ctx, const sandbox_tar_entry *e)
{
	size_t *n = ctx;

	/* touch everything the reader hands out */
	*n += strlen(e->path) + e->size + (e->linkname ? strlen(e->linkname) : 0);
	if (e->data && e->size)
		*n += (unsigned char)e->data[e->size - 1];
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sandbox_tar_reader *r;
	size_t sum = 0, step;

	if (size == 0)
		return 0;
	step = (size_t)data[0] * 7 + 1;
	data++;
	size--;
	if (sandbox_tar_reader_new(&r, 1 << 20, 8 << 20, on_entry, &sum) != 0)
		return 0;
	for (size_t off = 0; off < size; off += step)
		if (sandbox_tar_reader_feed(r, data + off, size - off < step ? size - off : step) != 0)
			break;
	sandbox_tar_reader_finish(r);
	sandbox_tar_reader_free(r);
	return 0;
}
