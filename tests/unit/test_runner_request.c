#include <criterion/criterion.h>
#include <string.h>

#include "runner/request.h"
#include "runner/result.h"
#include "util/err.h"
#include "util/str.h"

static const runner_limits lim_default = RUNNER_LIMITS_INIT;

/* Decode s; expect a refusal naming field with status. */
static void refused(const char *s, int status, const char *field, const char *needle)
{
	runner_request *r = NULL;
	runner_request_error e;
	int rc = runner_request_decode(&r, &e, s, strlen(s), &lim_default);

	cr_assert_neq(rc, 0, "accepted: %s", s);
	cr_assert_null(r);
	cr_assert_eq(e.status, status, "status %d for %s (%s)", e.status, s, e.message);
	cr_assert_str_eq(e.field, field, "field \"%s\" for %s (%s)", e.field, s, e.message);
	if (needle)
		cr_assert(strstr(e.message, needle), "message \"%s\" lacks \"%s\"", e.message, needle);
}

Test(runner_request, full_example_decodes)
{
	const char *s =
		"{\"repo\":{\"url\":\"https://example.org/org/app.git\",\"ref\":\"main\","
		"\"commit\":\"0123456789ABCDEF0123456789abcdef01234567\"},"
		"\"image\":\"nikolaik/python-nodejs:python3.11-nodejs20-bullseye\","
		"\"commands\":[{\"argv\":[\"npm\",\"test\"],\"timeoutSeconds\":600,\"env\":{\"CI\":\"true\"},\"workdir\":\".\"},"
		"{\"shell\":\"npm run lint -- --fix\",\"continueOnError\":true}],"
		"\"env\":{\"KEY\":\"value\"},\"timeoutSeconds\":1800,\"resources\":{\"cpu\":\"1\",\"memory\":\"2Gi\"},"
		"\"collect\":{\"patch\":true,\"logTailLines\":200},\"labels\":{\"pipeline\":\"1234\"},"
		"\"idempotencyKey\":\"pipeline-1234-attempt-1\"}";
	runner_request *r = NULL;
	runner_request_error e;

	cr_assert_eq(runner_request_decode(&r, &e, s, strlen(s), &lim_default), 0, "%s", e.message);
	cr_assert_str_eq(r->repo_commit, "0123456789abcdef0123456789abcdef01234567");
	cr_assert_eq(r->ncommands, 2);
	cr_assert_eq(r->commands[0].argc, 2);
	cr_assert_str_eq(r->commands[0].argv[1], "test");
	cr_assert_str_eq(runner_map_get(&r->commands[0].env, "CI"), "true");
	cr_assert_str_eq(r->commands[1].shell, "npm run lint -- --fix");
	cr_assert_eq(r->commands[1].continue_on_error, 1);
	cr_assert_eq(r->timeout_seconds, 1800);
	cr_assert_str_eq(r->memory, "2Gi");
	cr_assert_str_eq(r->idempotency_key, "pipeline-1234-attempt-1");

	/* encode -> decode gives the same request */
	buf b = BUF_INIT(1 << 20);
	runner_request *r2 = NULL;
	cr_assert_eq(runner_request_encode(&b, r), 0);
	cr_assert_eq(runner_request_decode(&r2, &e, b.data, b.len, &lim_default), 0, "%s: %s", e.message, b.data);
	cr_assert_str_eq(r2->commands[1].shell, r->commands[1].shell);
	cr_assert_str_eq(r2->repo_url, r->repo_url);
	buf_free(&b);
	runner_request_free(r);
	runner_request_free(r2);
}

Test(runner_request, minimal_request_gets_defaults)
{
	const char *s = "{\"commands\":[{\"argv\":[\"true\"]}]}";
	runner_request *r = NULL;
	runner_request_error e;

	cr_assert_eq(runner_request_decode(&r, &e, s, strlen(s), &lim_default), 0);
	cr_assert_eq(r->collect_patch, 1);
	cr_assert_eq(r->log_tail_lines, RUNNER_DEFAULT_LOG_TAIL);
	cr_assert_null(r->repo_url);
	runner_request_free(r);
}

Test(runner_request, shell_metacharacters_in_arguments_are_fine_but_not_in_the_program)
{
	const char *ok = "{\"commands\":[{\"argv\":[\"grep\",\"a|b; $(rm -rf /)\",\"`x`\"]}]}";
	runner_request *r = NULL;
	runner_request_error e;

	cr_assert_eq(runner_request_decode(&r, &e, ok, strlen(ok), &lim_default), 0, "%s", e.message);
	runner_request_free(r);
	refused("{\"commands\":[{\"argv\":[\"rm -rf /; echo\"]}]}", 400, "commands[0].argv[0]", "metacharacter");
	refused("{\"commands\":[{\"argv\":[\"$(id)\"]}]}", 400, "commands[0].argv[0]", "shell");
}

Test(runner_request, malformed_and_hostile_requests_name_the_field)
{
	refused("", 400, "", "empty");
	refused("{", 400, "", "invalid JSON");
	refused("[1,2]", 400, "", "object");
	refused("{\"commands\":[{\"argv\":[\"true\"]}]} trailing", 400, "", "invalid JSON");
	refused("{}", 400, "commands", "required");
	refused("{\"commands\":[]}", 400, "commands", "at least one");
	refused("{\"commands\":{}}", 400, "commands", "list");
	refused("{\"commands\":[{\"argv\":[\"true\"]}],\"bogus\":1}", 400, "bogus", "unknown field");
	refused("{\"commands\":[{\"argv\":[\"true\"],\"tty\":true}]}", 400, "commands[0].tty", "unknown field");
	refused("{\"repo\":{\"url\":\"https://x.org/a.git\",\"branch\":\"m\"},\"commands\":[{\"argv\":[\"true\"]}]}",
		400, "repo.branch", "unknown field");
	refused("{\"commands\":[{\"argv\":[\"true\"]}],\"commands\":[{\"argv\":[\"x\"]}]}", 400, "commands", "duplicate");
	refused("{\"commands\":[{\"argv\":[]}]}", 400, "commands[0].argv", "program name");
	refused("{\"commands\":[{}]}", 400, "commands[0].argv", "exactly one");
	refused("{\"commands\":[{\"argv\":[\"a\"],\"shell\":\"b\"}]}", 400, "commands[0].shell", "exactly one");
	refused("{\"commands\":[{\"argv\":[\"a\",1]}]}", 400, "commands[0].argv[1]", "string");
	refused("{\"commands\":[{\"argv\":[\"a\\u0000b\"]}]}", 400, "commands[0].argv[0]", "NUL");
	refused("{\"commands\":[{\"argv\":[\"a\"],\"env\":{\"K\":\"v\\u0000\"}}]}", 400, "commands[0].env.K", "NUL");
	refused("{\"commands\":[{\"argv\":[\"a\"],\"env\":{\"1BAD\":\"v\"}}]}", 400, "commands[0].env.1BAD", "name");
	refused("{\"commands\":[{\"argv\":[\"a\"],\"env\":{\"A=B\":\"v\"}}]}", 400, "commands[0].env[\"A=B\"]", "name");
	refused("{\"commands\":[{\"argv\":[\"a\"],\"timeoutSeconds\":0}]}", 400, "commands[0].timeoutSeconds", "between");
	refused("{\"commands\":[{\"argv\":[\"a\"],\"timeoutSeconds\":1.5}]}", 400, "commands[0].timeoutSeconds", "integer");
	refused("{\"commands\":[{\"argv\":[\"a\"],\"timeoutSeconds\":\"10\"}]}", 400, "commands[0].timeoutSeconds", "integer");
	refused("{\"commands\":[{\"argv\":[\"a\"],\"workdir\":\"../../etc\"}]}", 400, "commands[0].workdir", "..");
	refused("{\"commands\":[{\"argv\":[\"a\"],\"workdir\":\"a/../../b\"}]}", 400, "commands[0].workdir", "..");
	refused("{\"commands\":[{\"argv\":[\"a\"],\"workdir\":\"/etc\"}]}", 400, "commands[0].workdir", "relative");
	refused("{\"commands\":[{\"argv\":[\"a\"],\"continueOnError\":\"yes\"}]}", 400, "commands[0].continueOnError", "true or false");
	refused("{\"image\":\"UPPER/Case\",\"commands\":[{\"argv\":[\"a\"]}]}", 400, "image", "path component");
	refused("{\"image\":\"ubuntu:lat est\",\"commands\":[{\"argv\":[\"a\"]}]}", 400, "image", "space");
	refused("{\"image\":\"ubuntu@sha256:abc\",\"commands\":[{\"argv\":[\"a\"]}]}", 400, "image", "digest");
	refused("{\"image\":\"ubuntu:-bad\",\"commands\":[{\"argv\":[\"a\"]}]}", 400, "image", "tag");
	refused("{\"image\":\"\",\"commands\":[{\"argv\":[\"a\"]}]}", 400, "image", "empty");
	refused("{\"repo\":{\"url\":\"ext::sh -c touch% /tmp/pwned\"},\"commands\":[{\"argv\":[\"a\"]}]}", 400, "repo.url", NULL);
	refused("{\"repo\":{\"url\":\"ftp://x.org/a.git\"},\"commands\":[{\"argv\":[\"a\"]}]}", 400, "repo.url", "https://");
	refused("{\"repo\":{\"url\":\"https://u:secret@x.org/a.git\"},\"commands\":[{\"argv\":[\"a\"]}]}", 400, "repo.url", "password");
	refused("{\"repo\":{\"url\":\"/etc\"},\"commands\":[{\"argv\":[\"a\"]}]}", 400, "repo.url", "local path");
	refused("{\"repo\":{\"url\":\"--upload-pack=x\"},\"commands\":[{\"argv\":[\"a\"]}]}", 400, "repo.url", "'-'");
	refused("{\"repo\":{\"url\":\"https://x.org/a.git\",\"ref\":\"a..b\"},\"commands\":[{\"argv\":[\"a\"]}]}", 400, "repo.ref", NULL);
	refused("{\"repo\":{\"url\":\"https://x.org/a.git\",\"commit\":\"abc\"},\"commands\":[{\"argv\":[\"a\"]}]}", 400, "repo.commit", "full commit");
	refused("{\"repo\":{},\"commands\":[{\"argv\":[\"a\"]}]}", 400, "repo.url", "required");
	refused("{\"commands\":[{\"argv\":[\"a\"]}],\"resources\":{\"cpu\":\"lots\"}}", 400, "resources.cpu", "quantity");
	refused("{\"commands\":[{\"argv\":[\"a\"]}],\"resources\":{\"memory\":\"1Ei\"}}", 400, "resources.memory", NULL);
	refused("{\"commands\":[{\"argv\":[\"a\"]}],\"resources\":{\"gpu\":\"1\"}}", 400, "resources.gpu", "unknown");
	refused("{\"commands\":[{\"argv\":[\"a\"]}],\"collect\":{\"logTailLines\":-1}}", 400, "collect.logTailLines", "between");
	refused("{\"commands\":[{\"argv\":[\"a\"]}],\"labels\":{\"ci-fixer.io/owner\":\"x\"}}", 400, "labels.ci-fixer.io/owner", "reserved");
	refused("{\"commands\":[{\"argv\":[\"a\"]}],\"labels\":{\"a\":\"bad value\"}}", 400, "labels.a", "value");
	refused("{\"commands\":[{\"argv\":[\"a\"]}],\"idempotencyKey\":\"has space\"}", 400, "idempotencyKey", NULL);
	refused("{\"commands\":[{\"argv\":[\"a\"]}],\"timeoutSeconds\":1e300}", 400, "timeoutSeconds", NULL);
	refused("{\"commands\":[{\"argv\":[\"a\"]}],\"env\":\"x\"}", 400, "env", "object");
	refused("{\"commands\":[{\"argv\":[\"a\xff\"]}]}", 400, "", "UTF-8");
	refused("{\"commands\":[{\"argv\":[\"a\nb\"]}]}", 400, "", "control character");
}

Test(runner_request, caps_on_sizes_and_counts)
{
	buf b = BUF_INIT(8 << 20);
	runner_limits small = RUNNER_LIMITS_INIT;

	buf_append_str(&b, "{\"commands\":[");
	for (int i = 0; i < 10000; i++)
		buf_printf(&b, "%s{\"argv\":[\"true\"]}", i ? "," : "");
	buf_append_str(&b, "]}");
	refused(b.data, 400, "commands", "at most 100");
	buf_reset(&b);
	buf_append_str(&b, "{\"commands\":[{\"shell\":\"");
	for (int i = 0; i < 2 * 1024 * 1024; i++)
		buf_append_byte(&b, 'x');
	buf_append_str(&b, "\"}]}");
	refused(b.data, 413, "", "at most");
	buf_reset(&b);
	buf_append_str(&b, "{\"commands\":[{\"shell\":\"");
	for (int i = 0; i < 70000; i++)
		buf_append_byte(&b, 'x');
	buf_append_str(&b, "\"}]}");
	refused(b.data, 400, "commands[0].shell", "bytes");
	buf_free(&b);
	small.max_commands = 1;
	runner_request *r = NULL;
	runner_request_error e;
	const char *two = "{\"commands\":[{\"argv\":[\"a\"]},{\"argv\":[\"b\"]}]}";
	cr_assert_eq(runner_request_decode(&r, &e, two, strlen(two), &small), ERR_INVALID);
	cr_assert_str_eq(e.field, "commands");
}

Test(runner_request, local_repos_only_when_allowed)
{
	runner_limits l = RUNNER_LIMITS_INIT;
	runner_request *r = NULL;
	runner_request_error e;
	const char *s = "{\"repo\":{\"url\":\"file:///srv/repo\"},\"commands\":[{\"argv\":[\"a\"]}]}";

	cr_assert_eq(runner_request_decode(&r, &e, s, strlen(s), &l), ERR_INVALID);
	l.allow_local_repos = 1;
	cr_assert_eq(runner_request_decode(&r, &e, s, strlen(s), &l), 0, "%s", e.message);
	runner_request_free(r);
}

Test(runner_request, image_references)
{
	const char *good[] = { "ubuntu", "ubuntu:22.04", "library/ubuntu", "ghcr.io/org/app:v1.2.3",
			       "localhost:5000/a/b_c__d-e.f:tag", "registry.example.org:443/x",
			       "nikolaik/python-nodejs:python3.11-nodejs20-bullseye",
			       "debian@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			       "[::1]:5000/img", NULL };
	const char *bad[] = { "Ubuntu", "ubuntu:", ":tag", "a//b", "a/", "-a", "a__-b", "ubuntu:tag:tag",
			      "x@sha256:zz", "a b", NULL };
	char w[200];

	for (int i = 0; good[i]; i++)
		cr_assert(runner_image_ref_valid(good[i], w, sizeof(w)), "%s: %s", good[i], w);
	for (int i = 0; bad[i]; i++)
		cr_assert_not(runner_image_ref_valid(bad[i], w, sizeof(w)), "%s accepted", bad[i]);
}

Test(runner_request, repo_urls)
{
	char w[200];

	cr_assert(runner_repo_url_valid("https://github.com/org/app.git", 0, w, sizeof(w)));
	cr_assert(runner_repo_url_valid("git@github.com:org/app.git", 0, w, sizeof(w)), "%s", w);
	cr_assert(runner_repo_url_valid("ssh://git@host:22/org/app.git", 0, w, sizeof(w)), "%s", w);
	cr_assert_not(runner_repo_url_valid("https://", 0, w, sizeof(w)));
	cr_assert_not(runner_repo_url_valid("https://host", 0, w, sizeof(w)));
	cr_assert_not(runner_repo_url_valid("https://ho st/x", 0, w, sizeof(w)));
	cr_assert_not(runner_repo_url_valid("fd::17", 0, w, sizeof(w)));
	cr_assert(runner_repo_url_valid("/srv/git/app", 1, w, sizeof(w)));
}

Test(runner_request, quantities)
{
	int64_t v;

	cr_assert_eq(runner_quantity_parse(&v, "500m", 3), 0);
	cr_assert_eq(v, 500);
	cr_assert_eq(runner_quantity_parse(&v, "2", 3), 0);
	cr_assert_eq(v, 2000);
	cr_assert_eq(runner_quantity_parse(&v, "1.5", 3), 0);
	cr_assert_eq(v, 1500);
	cr_assert_eq(runner_quantity_parse(&v, "2Gi", 0), 0);
	cr_assert_eq(v, 2LL << 30);
	cr_assert_eq(runner_quantity_parse(&v, "512M", 0), 0);
	cr_assert_eq(v, 512000000);
	cr_assert_eq(runner_quantity_parse(&v, "1e3", 0), 0);
	cr_assert_eq(v, 1000);
	cr_assert_eq(runner_quantity_parse(&v, "1m", 0), 0);
	cr_assert_eq(v, 1); /* rounded up */
	cr_assert_eq(runner_quantity_parse(&v, "x", 0), ERR_INVALID);
	cr_assert_eq(runner_quantity_parse(&v, "1Xi", 0), ERR_INVALID);
	cr_assert_eq(runner_quantity_parse(&v, ".", 0), ERR_INVALID);
	cr_assert_eq(runner_quantity_parse(&v, "-1", 0), ERR_INVALID);
	cr_assert_eq(runner_quantity_parse(&v, "99999999999Ei", 0), ERR_TOOBIG);
}

Test(runner_result, document_round_trips_and_exit_status)
{
	runner_run_doc *d = runner_run_doc_new(), *d2 = NULL;
	buf b = BUF_INIT(1 << 20);
	char *argv[] = { "npm", "test", NULL };

	runner_doc_set(&d->id, "r-abc");
	d->phase = RUNNER_FAILED;
	runner_doc_set(&d->reason, "CommandFailed");
	d->created_ms = 1700000000123;
	d->ncmds = 2;
	d->cmds = calloc(2, sizeof(*d->cmds));
	d->cmds[0].argv = calloc(3, sizeof(char *));
	d->cmds[0].argv[0] = str_dup(argv[0]);
	d->cmds[0].argv[1] = str_dup(argv[1]);
	d->cmds[0].argc = 2;
	d->cmds[0].outcome = RUNNER_OUTCOME_EXITED;
	d->cmds[0].exit_code = 3;
	d->cmds[0].out = str_dup("hello \"world\"\n\xff");
	d->cmds[0].out_len = strlen(d->cmds[0].out);
	d->cmds[1].shell = str_dup("echo x");
	d->cmds[1].outcome = RUNNER_OUTCOME_SKIPPED;
	runner_doc_set(&d->patch, "diff --git a/x b/x\n");
	cr_assert_eq(runner_run_doc_encode(&b, d, 1), 0);
	cr_assert(strstr(b.data, "\"exitCode\":3"));
	cr_assert(strstr(b.data, "\"startedAt\":null"));
	cr_assert(strstr(b.data, "\"createdAt\":\"2023-11-14T22:13:20.123Z\""), "%s", b.data);
	cr_assert(strstr(b.data, "\"outcome\":\"skipped\",\"exitCode\":null"));
	cr_assert_eq(runner_run_doc_decode(&d2, b.data, b.len, 1 << 20), 0, "%s", err_msg());
	cr_assert_str_eq(d2->id, "r-abc");
	cr_assert_eq(d2->phase, RUNNER_FAILED);
	cr_assert_eq(d2->created_ms, 1700000000123);
	cr_assert_eq(d2->ncmds, 2);
	cr_assert_str_eq(d2->cmds[0].argv[1], "test");
	cr_assert_str_eq(d2->cmds[1].shell, "echo x");
	cr_assert_str_eq(d2->patch, "diff --git a/x b/x\n");
	cr_assert_eq(runner_run_doc_exit_status(d2), 3);
	d2->phase = RUNNER_ERROR;
	cr_assert_eq(runner_run_doc_exit_status(d2), 125);
	d2->phase = RUNNER_CANCELLED;
	cr_assert_eq(runner_run_doc_exit_status(d2), 130);
	d2->phase = RUNNER_SUCCEEDED;
	cr_assert_eq(runner_run_doc_exit_status(d2), 0);
	d2->phase = RUNNER_FAILED;
	d2->cmds[0].outcome = RUNNER_OUTCOME_TIMEOUT;
	cr_assert_eq(runner_run_doc_exit_status(d2), 124);
	buf_free(&b);
	runner_run_doc_free(d);
	runner_run_doc_free(d2);
}

Test(runner_result, decoder_refuses_garbage)
{
	runner_run_doc *d = NULL;

	cr_assert_eq(runner_run_doc_decode(&d, "[]", 2, 100), ERR_INVALID);
	cr_assert_eq(runner_run_doc_decode(&d, "{\"id\":\"x\",\"phase\":\"Nope\"}", 25, 100), ERR_INVALID);
	cr_assert_eq(runner_run_doc_decode(&d, "{\"id\":\"x\",\"phase\":\"Failed\",\"commands\":5}", 40, 100), ERR_INVALID);
	cr_assert_eq(runner_run_doc_decode(&d, "{}", 2, 1), ERR_TOOBIG);
	cr_assert_null(d);
}
