/*
 * Fuzz the follower's frame reader (sandbox/follow.c): the exec stdout of
 * the in-pod wrapper, so anything the network can carry. The first byte
 * sets the piece size; a 0xFF byte in the input marks a reattach
 * (sandbox_follow_restart), as after a broken stream.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sandbox/follow.h"

static int on_data(void *arg, int stream, const char *p, size_t n)
{
	size_t *sum = arg;

	*sum += (size_t)stream + n + (n ? (unsigned char)p[n - 1] : 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sandbox_follow *f = NULL;
	size_t sum = 0, step;
	int code;

	if (size == 0)
		return 0;
	step = (size_t)data[0] % 32 + 1;
	data++;
	size--;
	if (sandbox_follow_new(&f, on_data, &sum) != 0)
		return 0;
	for (size_t off = 0; off < size;) {
		const uint8_t *cut = memchr(data + off, 0xFF, size - off);
		size_t end = cut ? (size_t)(cut - data) : size;
		size_t n = end - off < step ? end - off : step;

		if (n && sandbox_follow_feed(f, data + off, n) != 0)
			break;
		off += n;
		if (cut && off == end) {
			sandbox_follow_restart(f);
			off++;
		}
	}
	sandbox_follow_ended(f, &code);
	sandbox_follow_free(f);
	return 0;
}
