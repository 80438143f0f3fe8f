/*
 * kube/exec_status and kube/exec_http: the exec status parser, the
 * upgrade answer's head parser, chunked error bodies, the request builder
 * and the request target.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "kube/exec_conn.h"
#include "kube/exec_http.h"
#include "kube/exec_status.h"
#include "util/err.h"
#include "util/str.h"

/* ---- channel-3 status ------------------------------------------------- */

static int parse(kube_exec_status *st, const char *json)
{
	return kube_exec_status_parse(st, json, strlen(json));
}

#define NONZERO(code) \
	"{\"metadata\":{},\"status\":\"Failure\",\"message\":\"command terminated with non-zero exit code: " \
	"error executing command, exit code " code "\",\"reason\":\"NonZeroExitCode\",\"details\":" \
	"{\"causes\":[{\"reason\":\"ExitCode\",\"message\":\"" code "\"}]}}"

Test(kube_exec_status, success_is_exit_0)
{
	kube_exec_status st;

	cr_assert_eq(parse(&st, "{\"metadata\":{},\"status\":\"Success\"}"), 0);
	cr_assert_eq(st.outcome, KUBE_EXEC_EXITED);
	cr_assert_eq(st.exit_code, 0);
	cr_assert_str_eq(st.status, "Success");
}

Test(kube_exec_status, exit_codes_come_from_the_cause)
{
	static const struct {
		const char *code;
		int want;
	} cases[] = { { "1", 1 }, { "3", 3 }, { "127", 127 }, { "137", 137 }, { "255", 255 }, { "007", 7 },
		      { "0", 0 } };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char json[512];
		kube_exec_status st;

		snprintf(json, sizeof(json),
			 "{\"status\":\"Failure\",\"message\":\"exit code 99\",\"reason\":\"NonZeroExitCode\","
			 "\"details\":{\"causes\":[{\"reason\":\"Other\",\"message\":\"12\"},"
			 "{\"reason\":\"ExitCode\",\"message\":\"%s\"}]}}",
			 cases[i].code);
		cr_assert_eq(parse(&st, json), 0, "%s: %s", cases[i].code, err_msg());
		cr_assert_eq(st.outcome, KUBE_EXEC_EXITED);
		cr_assert_eq(st.exit_code, cases[i].want, "code %s gave %d", cases[i].code, st.exit_code);
		cr_assert_str_eq(st.reason, "NonZeroExitCode");
		cr_assert_str_eq(st.message, "exit code 99");
	}
	kube_exec_status st;
	cr_assert_eq(parse(&st, NONZERO("3")), 0);
	cr_assert_eq(st.exit_code, 3);
}

Test(kube_exec_status, bad_exit_codes_are_protocol_errors)
{
	static const char *bad[] = { "256", "-1", "", "1a", " 1", "+1", "1.0", "99999999999999999999", "0x1" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char json[512];
		kube_exec_status st;

		snprintf(json, sizeof(json),
			 "{\"status\":\"Failure\",\"reason\":\"NonZeroExitCode\","
			 "\"details\":{\"causes\":[{\"reason\":\"ExitCode\",\"message\":\"%s\"}]}}",
			 bad[i]);
		cr_assert_eq(parse(&st, json), ERR_INVALID, "\"%s\" accepted", bad[i]);
		cr_assert_eq(st.exit_code, -1);
		cr_assert(strstr(err_msg(), "invalid exit code"), "%s", err_msg());
	}
}

Test(kube_exec_status, malformed_statuses_are_rejected)
{
	kube_exec_status st;

	cr_assert_eq(parse(&st, "not json"), ERR_INVALID);
	cr_assert_eq(parse(&st, "[1,2]"), ERR_INVALID);
	cr_assert_eq(parse(&st, ""), ERR_INVALID);
	cr_assert_eq(parse(&st, "{\"status\":\"Success\""), ERR_INVALID); /* cut */
	cr_assert_eq(parse(&st, "{\"status\":\"Maybe\"}"), ERR_INVALID);
	cr_assert(strstr(err_msg(), "unknown status"));
	cr_assert_eq(parse(&st, "{}"), ERR_INVALID);
	/* NonZeroExitCode needs details with an ExitCode cause (errorDecoderV4) */
	cr_assert_eq(parse(&st, "{\"status\":\"Failure\",\"reason\":\"NonZeroExitCode\"}"), ERR_INVALID);
	cr_assert(strstr(err_msg(), "details must be set"));
	cr_assert_eq(parse(&st, "{\"status\":\"Failure\",\"reason\":\"NonZeroExitCode\",\"details\":{}}"),
		     ERR_INVALID);
	cr_assert(strstr(err_msg(), "no ExitCode cause"));
	cr_assert_eq(parse(&st, "{\"status\":\"Failure\",\"reason\":\"NonZeroExitCode\",\"details\":"
				"{\"causes\":[{\"reason\":\"ExitCode\",\"message\":3}]}}"),
		     ERR_INVALID);
	/* the message text is never read for the code */
	cr_assert_eq(parse(&st, "{\"status\":\"Failure\",\"reason\":\"NonZeroExitCode\",\"message\":"
				"\"command terminated with non-zero exit code: 3\",\"details\":{\"causes\":[]}}"),
		     ERR_INVALID);
}

Test(kube_exec_status, other_failures_carry_the_servers_message)
{
	kube_exec_status st;

	cr_assert_eq(parse(&st, "{\"metadata\":{},\"status\":\"Failure\",\"message\":\"error executing command in "
				"container: failed to exec: no such file\",\"reason\":\"InternalError\","
				"\"details\":{\"causes\":[{\"message\":\"boom\"}]},\"code\":500}"),
		     0);
	cr_assert_eq(st.outcome, KUBE_EXEC_FAILED);
	cr_assert_eq(st.exit_code, -1);
	cr_assert_eq(st.code, 500);
	cr_assert_str_eq(st.reason, "InternalError");
	cr_assert(strstr(st.message, "no such file"));
}

Test(kube_exec_status, size_cap)
{
	size_t n = KUBE_EXEC_STATUS_MAX + 1;
	char *big = malloc(n);
	kube_exec_status st;

	memset(big, ' ', n);
	memcpy(big, "{\"status\":\"Success\"}", 20);
	cr_assert_eq(kube_exec_status_parse(&st, big, n), ERR_TOOBIG);
	/* just under the cap (trailing spaces are JSON whitespace) */
	cr_assert_eq(kube_exec_status_parse(&st, big, n - 1), 0);
	free(big);
}

Test(kube_exec_status, long_message_is_cut_not_overflowed)
{
	char json[8192];
	kube_exec_status st;

	strcpy(json, "{\"status\":\"Failure\",\"reason\":\"InternalError\",\"message\":\"");
	size_t l = strlen(json);
	memset(json + l, 'm', 5000);
	strcpy(json + l + 5000, "\"}");
	cr_assert_eq(parse(&st, json), 0);
	cr_assert_eq(strlen(st.message), sizeof(st.message) - 1);
}

Test(kube_exec_status, signal_reading)
{
	cr_assert_eq(kube_exec_signal_of(137), 9);
	cr_assert_eq(kube_exec_signal_of(143), 15);
	cr_assert_eq(kube_exec_signal_of(129), 1);
	cr_assert_eq(kube_exec_signal_of(128), 0);
	cr_assert_eq(kube_exec_signal_of(1), 0);
	cr_assert_eq(kube_exec_signal_of(255), 0);
	cr_assert_eq(kube_exec_signal_of(-1), 0);
}

/* ---- HTTP head -------------------------------------------------------- */

Test(kube_exec_http, upgrade_answer)
{
	const char *a = "HTTP/1.1 101 Switching Protocols\r\n"
			"Upgrade: WebSocket\r\n"
			"Connection: keep-alive, Upgrade\r\n"
			"Sec-WebSocket-Accept:  s3pPLMBiTxaQ9kYGzzhZRbK+xOo= \r\n"
			"Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n"
			"\r\n\x82\x01\x01";
	kube_exec_http_head h;

	cr_assert_eq(kube_exec_http_head_parse(&h, a, strlen(a)), 0, "%s", err_msg());
	cr_assert_eq(h.code, 101);
	cr_assert_str_eq(h.reason, "Switching Protocols");
	cr_assert_str_eq(h.upgrade, "WebSocket");
	cr_assert(h.conn_upgrade);
	cr_assert_str_eq(h.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	cr_assert_str_eq(h.protocol, "v5.channel.k8s.io");
	cr_assert_eq(h.head_len, strlen(a) - 3);
	cr_assert_eq(h.content_length, -1);
}

Test(kube_exec_http, error_answer_and_lf_only)
{
	const char *a = "HTTP/1.0 403 Forbidden\nContent-Type: application/json\nContent-Length: 12\n"
			"Transfer-Encoding: gzip, chunked\nRetry-After: 7\n\n{}";
	kube_exec_http_head h;

	cr_assert_eq(kube_exec_http_head_parse(&h, a, strlen(a)), 0, "%s", err_msg());
	cr_assert_eq(h.code, 403);
	cr_assert_eq(h.content_length, 12);
	cr_assert(h.chunked);
	cr_assert_eq(h.retry_after, 7);
	cr_assert_str_eq(h.content_type, "application/json");
	cr_assert_eq(h.head_len, strlen(a) - 2);
	cr_assert_not(h.conn_upgrade);
}

Test(kube_exec_http, incomplete_bad_and_too_big)
{
	kube_exec_http_head h;
	const char *part = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n";

	for (size_t i = 0; i <= strlen(part); i++)
		cr_assert_eq(kube_exec_http_head_parse(&h, part, i), ERR_AGAIN);
	cr_assert_eq(kube_exec_http_head_parse(&h, "SSH-2.0-x\r\n\r\n", 13), ERR_INVALID);
	cr_assert_eq(kube_exec_http_head_parse(&h, "HTTP/1.1 1x1 X\r\n\r\n", 18), ERR_INVALID);
	cr_assert_eq(kube_exec_http_head_parse(&h, "HTTP/1.1 101 X\r\nNoColon\r\n\r\n", 27), ERR_INVALID);
	cr_assert_eq(kube_exec_http_head_parse(&h, "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", 39),
		     ERR_INVALID);
	char *big = malloc(KUBE_EXEC_HEAD_MAX + 10);
	memset(big, 'a', KUBE_EXEC_HEAD_MAX + 10);
	memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
	cr_assert_eq(kube_exec_http_head_parse(&h, big, KUBE_EXEC_HEAD_MAX + 10), ERR_TOOBIG);
	free(big);
}

Test(kube_exec_http, chunked_bodies)
{
	buf b = BUF_INIT(64);
	size_t used;
	const char *body = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";

	for (size_t i = 0; i < strlen(body) - 4; i++)
		cr_assert_eq(kube_exec_http_chunked_decode(&b, body, i, &used), ERR_AGAIN, "at %zu", i);
	cr_assert_eq(kube_exec_http_chunked_decode(&b, body, strlen(body), &used), 0);
	cr_assert_str_eq(buf_cstr(&b), "hello world");
	cr_assert_eq(used, strlen(body) - 4);
	cr_assert_eq(kube_exec_http_chunked_decode(&b, "zz\r\n", 4, &used), ERR_INVALID);
	cr_assert_eq(kube_exec_http_chunked_decode(&b, "3\r\nabcX", 7, &used), ERR_INVALID);
	cr_assert_eq(kube_exec_http_chunked_decode(&b, "FFFFFFFFFFFFFFFFF\r\n", 19, &used), ERR_INVALID);
	cr_assert_eq(kube_exec_http_chunked_decode(&b, "50\r\n", 4, &used), ERR_AGAIN);
	char big[200];
	memset(big, 'x', sizeof(big));
	memcpy(big, "80\r\n", 4);
	cr_assert_eq(kube_exec_http_chunked_decode(&b, big, sizeof(big), &used), ERR_TOOBIG);
	buf_free(&b);
}

Test(kube_exec_http, request_builder)
{
	buf b = BUF_INIT(4096);
	struct curl_slist *h = curl_slist_append(NULL, "Authorization: Bearer abc");

	cr_assert_eq(kube_exec_http_request(&b, "k:6443", "/api/v1/x", "KEY", "v5.channel.k8s.io, v4.channel.k8s.io",
					    h),
		     0);
	cr_assert(strstr(b.data, "GET /api/v1/x HTTP/1.1\r\nHost: k:6443\r\n"));
	cr_assert(strstr(b.data, "\r\nSec-WebSocket-Key: KEY\r\n"));
	cr_assert(strstr(b.data, "\r\nSec-WebSocket-Version: 13\r\n"));
	cr_assert(strstr(b.data, "\r\nUpgrade: websocket\r\n"));
	cr_assert(strstr(b.data, "\r\nSec-WebSocket-Protocol: v5.channel.k8s.io, v4.channel.k8s.io\r\n"));
	cr_assert(strstr(b.data, "\r\nAuthorization: Bearer abc\r\n\r\n"));
	cr_assert(str_has_suffix(b.data, "\r\n\r\n"));
	/* the client's own Host wins */
	buf_reset(&b);
	h = curl_slist_append(h, "Host: other:1");
	cr_assert_eq(kube_exec_http_request(&b, "k:6443", "/x", "K", "p", h), 0);
	cr_assert_null(strstr(b.data, "Host: k:6443"));
	cr_assert(strstr(b.data, "Host: other:1"));
	buf_reset(&b);
	cr_assert_eq(kube_exec_http_request(&b, "k", "/x\r\nEvil: 1", "K", "p", NULL), ERR_INVALID);
	curl_slist_free_all(h);
	buf_free(&b);
}

Test(kube_exec_http, target_encodes_every_argument_and_omits_false_streams)
{
	buf b = BUF_INIT(4096);
	const char *argv[] = { "sh", "-c", "echo hi && exit 3", "a&b=c/d?é", NULL };
	kube_exec_opts o = KUBE_EXEC_OPTS_INIT;

	o.pod = "p-1";
	o.argv = argv;
	o.container = "main";
	o.on_stdout = (kube_exec_output_fn)1;
	cr_assert_eq(kube_exec_target(&b, "", "ns", &o), 0, "%s", err_msg());
	cr_assert_str_eq(buf_cstr(&b), "/api/v1/namespaces/ns/pods/p-1/exec?command=sh&command=-c&command=echo%20hi%20%26%26%20exit%203"
				       "&command=a%26b%3Dc%2Fd%3F%C3%A9&container=main&stdout=true");
	buf_reset(&b);
	o.container = NULL;
	o.on_stderr = (kube_exec_output_fn)1;
	o.stdin_data = "x";
	o.stdin_len = 1;
	cr_assert_eq(kube_exec_target(&b, "/prefix", "ns", &o), 0);
	cr_assert(str_has_prefix(buf_cstr(&b), "/prefix/api/v1/"));
	cr_assert(str_has_suffix(buf_cstr(&b), "&stdin=true&stdout=true&stderr=true"));
	cr_assert_null(strstr(buf_cstr(&b), "tty"));
	/* bad options */
	o.stdin_fd = 0;
	cr_assert_eq(kube_exec_target(&b, "", "ns", &o), ERR_INVALID); /* two stdin sources */
	o.stdin_fd = -1;
	o.argv = (const char *const[]){ NULL };
	cr_assert_eq(kube_exec_target(&b, "", "ns", &o), ERR_INVALID);
	o.argv = argv;
	o.stdin_data = NULL;
	o.on_stdout = o.on_stderr = NULL;
	cr_assert_eq(kube_exec_target(&b, "", "ns", &o), ERR_INVALID); /* no stream */
	buf_free(&b);
}
