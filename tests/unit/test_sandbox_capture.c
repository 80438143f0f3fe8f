#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "sandbox/capture.h"
#include "util/str.h"

static void sha_hex(char out[65], const void *p, size_t n)
{
	unsigned char md[32];

	SHA256(p, n, md);
	str_hex(out, md, 32);
}

Test(sandbox_capture, small_stream_kept_whole_with_hash)
{
	sandbox_capture *c;
	sandbox_stream s;
	char want[65];

	cr_assert_eq(sandbox_capture_new(&c, 1024), 0);
	sandbox_capture_append(c, "hello ", 6);
	sandbox_capture_append(c, "world\n", 6);
	cr_assert_eq(sandbox_capture_finish(&s, c), 0);
	cr_assert_str_eq(s.data, "hello world\n");
	cr_assert_eq(s.len, 12);
	cr_assert_eq(s.bytes, 12);
	cr_assert_not(s.truncated);
	sha_hex(want, "hello world\n", 12);
	cr_assert_str_eq(s.sha256, want);
	free(s.data);
	sandbox_capture_free(c);
}

Test(sandbox_capture, empty_stream_hash_is_sha256_of_nothing)
{
	sandbox_capture *c;
	sandbox_stream s;

	cr_assert_eq(sandbox_capture_new(&c, 100), 0);
	cr_assert_eq(sandbox_capture_finish(&s, c), 0);
	cr_assert_str_eq(s.data, "");
	cr_assert_str_eq(s.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	free(s.data);
	sandbox_capture_free(c);
}

/* seq 1..N as a kubernetes-client/c #168-style check: every line counted,
 * head and tail exact, in pieces of every size */
Test(sandbox_capture, large_stream_keeps_head_and_tail_exactly)
{
	size_t cap = 1000;
	buf all = BUF_INIT(1 << 24);
	size_t steps[] = { 1, 3, 499, 500, 501, 4096, 1 << 20 };

	for (int i = 1; i <= 100000; i++)
		buf_printf(&all, "%d\n", i);
	for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		sandbox_capture *c;
		sandbox_stream s;
		char want[65], marker[96];

		cr_assert_eq(sandbox_capture_new(&c, cap), 0);
		for (size_t off = 0; off < all.len; off += steps[k])
			sandbox_capture_append(c, all.data + off,
					       all.len - off < steps[k] ? all.len - off : steps[k]);
		cr_assert_eq(sandbox_capture_finish(&s, c), 0);
		cr_assert_eq(s.bytes, all.len);
		cr_assert(s.truncated);
		sha_hex(want, all.data, all.len);
		cr_assert_str_eq(s.sha256, want);
		cr_assert_eq(memcmp(s.data, all.data, cap / 2), 0, "head differs (step %zu)", steps[k]);
		snprintf(marker, sizeof(marker), SANDBOX_TRUNCATION_FMT,
			 (unsigned long long)(all.len - cap));
		cr_assert_eq(memcmp(s.data + cap / 2, marker, strlen(marker)), 0);
		cr_assert_eq(memcmp(s.data + cap / 2 + strlen(marker), all.data + all.len - cap / 2, cap / 2),
			     0, "tail differs (step %zu)", steps[k]);
		cr_assert_eq(s.len, cap + strlen(marker));
		cr_assert(str_has_suffix(s.data, "99999\n100000\n"));
		free(s.data);
		sandbox_capture_free(c);
	}
	buf_free(&all);
}

Test(sandbox_capture, exactly_cap_is_not_truncated)
{
	sandbox_capture *c;
	sandbox_stream s;
	char data[200];

	memset(data, 'x', sizeof(data));
	cr_assert_eq(sandbox_capture_new(&c, 200), 0);
	sandbox_capture_append(c, data, 150);
	sandbox_capture_append(c, data, 50);
	cr_assert_eq(sandbox_capture_finish(&s, c), 0);
	cr_assert_not(s.truncated);
	cr_assert_eq(s.len, 200);
	free(s.data);
	sandbox_capture_free(c);
}

/* Buffers follow the output: nothing for a silent command, a head that
 * doubles as it fills, and the ring only past the head; the result is the
 * same whatever the sizes of the pieces. */
Test(sandbox_capture, memory_grows_with_the_output)
{
	size_t cap = 1 << 20;
	buf all = BUF_INIT(1 << 24);
	size_t steps[] = { 1, 777, 4096, 65536, 3 << 20 };

	for (int i = 1; i <= 300000; i++)
		buf_printf(&all, "%d\n", i);
	cr_assert_gt(all.len, cap);
	for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		sandbox_capture *c;
		sandbox_stream s;
		char want[65];
		size_t fed = 0;

		cr_assert_eq(sandbox_capture_new(&c, cap), 0);
		cr_assert_eq(sandbox_capture_held(c), 0, "nothing held before any output");
		while (fed < all.len) {
			size_t n = all.len - fed < steps[k] ? all.len - fed : steps[k];
			sandbox_capture_append(c, all.data + fed, n);
			fed += n;
			if (fed <= cap / 2)
				cr_assert_leq(sandbox_capture_held(c), fed * 2 > 4096 ? fed * 2 : 4096,
					      "held %zu after %zu bytes (step %zu)", sandbox_capture_held(c), fed,
					      steps[k]);
		}
		cr_assert_eq(sandbox_capture_held(c), cap);
		cr_assert_eq(sandbox_capture_finish(&s, c), 0);
		cr_assert_eq(s.bytes, all.len);
		cr_assert(s.truncated);
		sha_hex(want, all.data, all.len);
		cr_assert_str_eq(s.sha256, want);
		cr_assert_eq(memcmp(s.data, all.data, cap / 2), 0, "head differs (step %zu)", steps[k]);
		cr_assert(str_has_suffix(s.data, "299999\n300000\n"));
		cr_assert_eq(memcmp(s.data + s.len - cap / 2, all.data + all.len - cap / 2, cap / 2), 0,
			     "tail differs (step %zu)", steps[k]);
		free(s.data);
		sandbox_capture_free(c);
	}
	{
		sandbox_capture *c;
		sandbox_stream s;
		cr_assert_eq(sandbox_capture_new(&c, cap), 0);
		cr_assert_eq(sandbox_capture_finish(&s, c), 0);
		cr_assert_eq(s.len, 0);
		cr_assert_eq(sandbox_capture_held(c), 0);
		free(s.data);
		sandbox_capture_free(c);
	}
	buf_free(&all);
}
