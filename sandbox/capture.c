/*
 * Head + tail capture with an exact count and hash. The tail is a ring of
 * cap - cap/2 bytes; when the stream fits in cap nothing is dropped and
 * head followed by the ring in order is the stream itself.
 *
 * Memory is taken as output arrives, not up front: the head grows by
 * doubling up to cap/2, and the ring is allocated whole only once the head
 * is full. A command that prints nothing costs nothing (1,000 concurrent
 * `sleep 1` runs had 63 MB of empty capture buffers in serve, heaptrack).
 * If memory runs out, what is kept stops growing and the rest counts as
 * truncated; the count and hash stay exact.
 */
#include "sandbox/capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "util/err.h"
#include "util/str.h"

#define HEAD_FIRST 4096 /* the head's first allocation */

struct sandbox_capture {
	size_t head_cap, tail_cap; /* what may be kept (tail_cap 0: nothing more) */
	char *head;
	size_t head_len, head_alloc;
	char *ring; /* tail_cap bytes once the head is full */
	size_t ring_start, ring_len;
	uint64_t total;
	EVP_MD_CTX *sha;
	int finished;
};

int sandbox_capture_new(sandbox_capture **out, size_t cap)
{
	sandbox_capture *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (cap < 64)
		cap = 64;
	if (!c)
		return err_set(ERR_NOMEM, "out of memory");
	c->head_cap = cap / 2;
	c->tail_cap = cap - c->head_cap;
	c->sha = EVP_MD_CTX_new();
	if (!c->sha || EVP_DigestInit_ex(c->sha, EVP_sha256(), NULL) != 1) {
		sandbox_capture_free(c);
		return err_set(ERR_NOMEM, "capture: out of memory");
	}
	*out = c;
	return 0;
}

/* Room for at least want bytes in the head (want <= head_cap); on failure
 * the head stays as it is and becomes full at its current size. */
static void head_grow(sandbox_capture *c, size_t want)
{
	size_t n = c->head_alloc ? c->head_alloc : HEAD_FIRST;

	while (n < want)
		n *= 2;
	if (n > c->head_cap)
		n = c->head_cap;
	char *p = realloc(c->head, n);
	if (!p) {
		c->head_cap = c->head_alloc;
		return;
	}
	c->head = p;
	c->head_alloc = n;
}

void sandbox_capture_free(sandbox_capture *c)
{
	if (!c)
		return;
	free(c->head);
	free(c->ring);
	EVP_MD_CTX_free(c->sha);
	free(c);
}

void sandbox_capture_append(sandbox_capture *c, const void *data, size_t n)
{
	const char *p = data;

	if (!c || c->finished || n == 0)
		return;
	EVP_DigestUpdate(c->sha, p, n);
	c->total += n;
	if (c->head_len < c->head_cap) {
		size_t take = c->head_cap - c->head_len;

		if (take > n)
			take = n;
		if (c->head_len + take > c->head_alloc)
			head_grow(c, c->head_len + take);
		if (c->head_len + take > c->head_alloc)
			take = c->head_alloc - c->head_len;
		if (take)
			memcpy(c->head + c->head_len, p, take);
		c->head_len += take;
		p += take;
		n -= take;
	}
	if (n == 0)
		return;
	if (!c->ring && c->tail_cap) {
		c->ring = malloc(c->tail_cap);
		if (!c->ring)
			c->tail_cap = 0; /* keep nothing more; the rest counts as truncated */
	}
	if (!c->tail_cap)
		return;
	if (n >= c->tail_cap) {
		/* only the last tail_cap bytes can survive */
		memcpy(c->ring, p + n - c->tail_cap, c->tail_cap);
		c->ring_start = 0;
		c->ring_len = c->tail_cap;
		return;
	}
	while (n > 0) {
		size_t end = (c->ring_start + c->ring_len) % c->tail_cap;

		if (c->ring_len < c->tail_cap) {
			size_t room = c->tail_cap - c->ring_len;
			size_t contig = c->tail_cap - end;
			size_t take = n < room ? n : room;

			if (take > contig)
				take = contig;
			memcpy(c->ring + end, p, take);
			c->ring_len += take;
			p += take;
			n -= take;
		} else {
			/* full: overwrite the oldest */
			size_t contig = c->tail_cap - c->ring_start;
			size_t take = n < contig ? n : contig;

			memcpy(c->ring + c->ring_start, p, take);
			c->ring_start = (c->ring_start + take) % c->tail_cap;
			p += take;
			n -= take;
		}
	}
}

size_t sandbox_capture_held(const sandbox_capture *c)
{
	return c ? c->head_alloc + (c->ring ? c->tail_cap : 0) : 0;
}

uint64_t sandbox_capture_bytes(const sandbox_capture *c)
{
	return c ? c->total : 0;
}

int sandbox_capture_finish(sandbox_stream *out, sandbox_capture *c)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	char marker[96];
	size_t mlen = 0, len;
	uint64_t kept = (uint64_t)c->head_len + c->ring_len;

	memset(out, 0, sizeof(*out));
	if (!c->finished) {
		EVP_DigestFinal_ex(c->sha, md, &mdlen);
		c->finished = 1;
		str_hex(out->sha256, md, 32);
	}
	out->bytes = c->total;
	out->truncated = c->total > kept;
	if (out->truncated)
		mlen = (size_t)snprintf(marker, sizeof(marker), SANDBOX_TRUNCATION_FMT,
					(unsigned long long)(c->total - kept));
	len = c->head_len + mlen + c->ring_len;
	out->data = malloc(len + 1);
	if (!out->data)
		return err_set(ERR_NOMEM, "capture: out of memory");
	if (c->head_len)
		memcpy(out->data, c->head, c->head_len);
	memcpy(out->data + c->head_len, marker, mlen);
	if (c->ring_len) {
		size_t first = c->tail_cap - c->ring_start;

		if (first > c->ring_len)
			first = c->ring_len;
		memcpy(out->data + c->head_len + mlen, c->ring + c->ring_start, first);
		memcpy(out->data + c->head_len + mlen + first, c->ring, c->ring_len - first);
	}
	out->data[len] = '\0';
	out->len = len;
	return 0;
}
