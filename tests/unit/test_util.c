#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

Test(err, set_returns_code_and_keeps_message_per_thread)
{
	cr_assert_eq(err_set(ERR_NOTFOUND, "pods \"%s\" not found", "x"), ERR_NOTFOUND);
	cr_assert_str_eq(err_msg(), "pods \"x\" not found");
	cr_assert_eq(err_last_code(), ERR_NOTFOUND);
	err_wrap(ERR_NOTFOUND, "get pod");
	cr_assert_str_eq(err_msg(), "get pod: pods \"x\" not found");
	err_clear();
	cr_assert_str_eq(err_msg(), "");
}

Test(buf, append_grows_and_stays_nul_terminated)
{
	buf b = BUF_INIT(1 << 20);

	cr_assert_str_eq(buf_cstr(&b), "");
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(buf_printf(&b, "%d,", i), 0);
	cr_assert(str_has_prefix(buf_cstr(&b), "0,1,2,"));
	cr_assert_eq(b.data[b.len], '\0');
	buf_consume(&b, 2);
	cr_assert(str_has_prefix(buf_cstr(&b), "1,2,"));
	buf_free(&b);
}

Test(buf, cap_is_enforced_and_buffer_unchanged)
{
	buf b = BUF_INIT(8);

	cr_assert_eq(buf_append(&b, "12345678", 8), 0);
	cr_assert_eq(buf_append(&b, "9", 1), ERR_TOOBIG);
	cr_assert_eq(b.len, 8);
	cr_assert_str_eq(buf_cstr(&b), "12345678");
	cr_assert(strstr(err_msg(), "8 bytes") != NULL);
	cr_assert_eq(buf_append(&b, "x", SIZE_MAX), ERR_TOOBIG);
	buf_free(&b);
}

Test(buf, take_hands_over_storage)
{
	buf b = BUF_INIT(64);
	size_t n;
	char *p;

	p = buf_take(&b, &n);
	cr_assert_str_eq(p, "");
	cr_assert_eq(n, 0);
	free(p);
	buf_append_str(&b, "abc");
	p = buf_take(&b, &n);
	cr_assert_str_eq(p, "abc");
	cr_assert_eq(n, 3);
	cr_assert_null(b.data);
	free(p);
	buf_free(NULL);
}

Test(str, parse_numbers_strictly)
{
	int64_t v;
	uint64_t u;
	int i;

	cr_assert_eq(str_parse_i64(&v, "-42", -100, 100), 0);
	cr_assert_eq(v, -42);
	cr_assert_eq(str_parse_i64(&v, "101", -100, 100), ERR_INVALID);
	cr_assert_eq(str_parse_i64(&v, "12x", 0, 100), ERR_INVALID);
	cr_assert_eq(str_parse_i64(&v, "", 0, 100), ERR_INVALID);
	cr_assert_eq(str_parse_i64(&v, " 1", 0, 100), ERR_INVALID);
	cr_assert_eq(str_parse_i64(&v, "99999999999999999999", INT64_MIN, INT64_MAX), ERR_INVALID);
	cr_assert_eq(str_parse_u64(&u, "18446744073709551615", UINT64_MAX), 0);
	cr_assert_eq(u, UINT64_MAX);
	cr_assert_eq(str_parse_u64(&u, "-1", UINT64_MAX), ERR_INVALID);
	cr_assert_eq(str_parse_int(&i, "255", 0, 255), 0);
	cr_assert_eq(i, 255);
}

Test(str, size_arithmetic_reports_overflow)
{
	size_t r;

	cr_assert_eq(size_add(&r, SIZE_MAX, 1), ERR_TOOBIG);
	cr_assert_eq(size_mul(&r, SIZE_MAX / 2, 3), ERR_TOOBIG);
	cr_assert_eq(size_mul(&r, 0, SIZE_MAX), 0);
	cr_assert_eq(r, 0);
	cr_assert_eq(size_add(&r, 2, 3), 0);
	cr_assert_eq(r, 5);
}

Test(str, copy_reports_truncation)
{
	char d[4];

	cr_assert_eq(str_copy(d, sizeof(d), "abc"), 0);
	cr_assert_str_eq(d, "abc");
	cr_assert_eq(str_copy(d, sizeof(d), "abcd"), ERR_TOOBIG);
	cr_assert_str_eq(d, "abc");
}

Test(str, json_quote_escapes_and_replaces_bad_utf8)
{
	buf b = BUF_INIT(1024);

	str_json_quote_n(&b, "a\"b\\\n\x01\xc3\xa9\xff", 9);
	cr_assert_str_eq(buf_cstr(&b), "\"a\\\"b\\\\\\n\\u0001\xc3\xa9\xEF\xBF\xBD\"");
	buf_free(&b);
}

Test(str, base64_round_trip_and_rejects_garbage)
{
	buf e = BUF_INIT(1024), d = BUF_INIT(1024);
	const char *in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	const char *want[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };

	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		buf_reset(&e);
		buf_reset(&d);
		cr_assert_eq(str_base64_encode(&e, in[i], strlen(in[i])), 0);
		cr_assert_str_eq(buf_cstr(&e), want[i]);
		cr_assert_eq(str_base64_decode(&d, e.data ? e.data : "", e.len), 0);
		cr_assert_str_eq(buf_cstr(&d), in[i]);
	}
	buf_reset(&d);
	cr_assert_eq(str_base64_decode(&d, "Zm9v!", 5), ERR_INVALID);
	buf_reset(&d);
	cr_assert_eq(str_base64_decode(&d, "Zg", 2), 0);
	cr_assert_str_eq(buf_cstr(&d), "f");
	buf_free(&e);
	buf_free(&d);
}

Test(str, dns1123_names)
{
	char long64[65];

	cr_assert(str_is_dns1123_label("cifix-abc123"));
	cr_assert_not(str_is_dns1123_label("Cifix"));
	cr_assert_not(str_is_dns1123_label("-a"));
	cr_assert_not(str_is_dns1123_label("a-"));
	cr_assert_not(str_is_dns1123_label(""));
	memset(long64, 'a', 64);
	long64[64] = '\0';
	cr_assert_not(str_is_dns1123_label(long64));
	long64[63] = '\0';
	cr_assert(str_is_dns1123_label(long64));
	cr_assert(str_is_dns1123_subdomain("ci-fixer.io"));
	cr_assert_not(str_is_dns1123_subdomain("a..b"));
}

Test(str, consttime_eq)
{
	cr_assert(str_consttime_eq("token", 5, "token", 5));
	cr_assert_not(str_consttime_eq("token", 5, "tokem", 5));
	cr_assert_not(str_consttime_eq("token", 5, "token2", 6));
}

Test(clock, monotonic_and_rfc3339_round_trip)
{
	char ts[40];
	int64_t a = clock_mono_ns(), b = clock_mono_ns(), ms;

	cr_assert_geq(b, a);
	clock_format_rfc3339(ts, sizeof(ts), 1795427498123, 1);
	cr_assert_str_eq(ts, "2026-11-23T09:51:38.123Z");
	cr_assert_eq(clock_parse_rfc3339(&ms, ts), 0);
	cr_assert_eq(ms, 1795427498123);
	cr_assert_eq(clock_parse_rfc3339(&ms, "2026-11-23T10:51:38+01:00"), 0);
	cr_assert_eq(ms, 1795427498000);
	cr_assert_eq(clock_parse_rfc3339(&ms, "yesterday"), ERR_INVALID);
	cr_assert_eq(clock_remaining_ms(0), INT64_MAX);
	cr_assert_eq(clock_remaining_ms(1), 0);
}
