#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox/quantity.h"
#include "sandbox/run.h"
#include "sandbox/validate.h"
#include "util/err.h"
#include "util/str.h"

Test(sandbox_quantity, parses_cpu_and_memory_forms)
{
	int64_t v;

	cr_assert_eq(sandbox_quantity_parse(&v, "500m"), 0);
	cr_assert_eq(v, 500);
	cr_assert_eq(sandbox_quantity_parse(&v, "1"), 0);
	cr_assert_eq(v, 1000);
	cr_assert_eq(sandbox_quantity_parse(&v, "0.5"), 0);
	cr_assert_eq(v, 500);
	cr_assert_eq(sandbox_quantity_parse(&v, "2Gi"), 0);
	cr_assert_eq(v, 2LL * 1024 * 1024 * 1024 * 1000);
	cr_assert_eq(sandbox_quantity_parse(&v, "512Mi"), 0);
	cr_assert_eq(v, 512LL * 1024 * 1024 * 1000);
	cr_assert_eq(sandbox_quantity_parse(&v, "1k"), 0);
	cr_assert_eq(v, 1000000);
	cr_assert_eq(sandbox_quantity_parse(&v, "1e3"), 0);
	cr_assert_eq(v, 1000000);
	cr_assert_eq(sandbox_quantity_parse(&v, "1.5G"), 0);
	cr_assert_eq(v, 1500000000000LL);
	cr_assert_eq(sandbox_quantity_parse(&v, "+2"), 0);
	cr_assert_eq(v, 2000);
}

Test(sandbox_quantity, rejects_malformed_strictly)
{
	static const char *bad[] = { "", "-1", "1.5.2", "1 ", " 1", "1m1", "1Xi", "1mi", "1KiB",
				     "abc", ".", "1.", "1e", "1e+", "0.1m", "9Ei", "100000000E",
				     "1e999", "Gi" };
	int64_t v;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(sandbox_quantity_parse(&v, bad[i]), ERR_INVALID, "accepted \"%s\"", bad[i]);
}

Test(sandbox_model, phase_and_outcome_names_round_trip)
{
	for (int i = 0; i < SANDBOX_PHASE_COUNT; i++) {
		enum sandbox_phase p;

		cr_assert_eq(sandbox_phase_parse(&p, sandbox_phase_name((enum sandbox_phase)i)), 0);
		cr_assert_eq((int)p, i);
	}
	cr_assert_str_eq(sandbox_phase_name(SANDBOX_CANCELLED), "Cancelled");
	cr_assert(sandbox_phase_is_terminal(SANDBOX_ERROR));
	cr_assert_not(sandbox_phase_is_terminal(SANDBOX_RUNNING));
	enum sandbox_outcome o;
	cr_assert_eq(sandbox_outcome_parse(&o, "lost"), 0);
	cr_assert_eq(o, SANDBOX_OUTCOME_LOST);
	cr_assert_eq(sandbox_outcome_parse(&o, "Lost"), ERR_INVALID);
	cr_assert_str_eq(sandbox_step_name(SANDBOX_STEP_WAITING), "waiting for pod");
}

Test(sandbox_model, cancel_token_is_sticky_and_first_reason_wins)
{
	sandbox_cancel *c;

	cr_assert_eq(sandbox_cancel_new(&c), 0);
	cr_assert_not(sandbox_cancel_requested(c));
	cr_assert_str_eq(sandbox_cancel_reason(c), "");
	sandbox_cancel_request(c, "Shutdown");
	sandbox_cancel_request(c, "Cancelled");
	cr_assert(sandbox_cancel_requested(c));
	cr_assert_str_eq(sandbox_cancel_reason(c), "Shutdown");
	char x;
	cr_assert_eq(read(sandbox_cancel_fd(c), &x, 1), 1);
	sandbox_cancel_free(c);
	sandbox_cancel_free(NULL);
}

Test(sandbox_model, job_name_is_a_dns_label)
{
	char name[64];

	cr_assert_eq(sandbox_job_name(name, "r-7f3a"), 0);
	cr_assert_str_eq(name, "cifix-r-7f3a");
	cr_assert(str_is_dns1123_label(name));
	char id[58];
	memset(id, 'a', 57);
	id[57] = '\0';
	cr_assert_eq(sandbox_job_name(name, id), 0);
	cr_assert_eq(strlen(name), 63);
	cr_assert(str_is_dns1123_label(name));
	char longid[59];
	memset(longid, 'a', 58);
	longid[58] = '\0';
	cr_assert_eq(sandbox_job_name(name, longid), ERR_INVALID);
	cr_assert_eq(sandbox_job_name(name, "R1"), ERR_INVALID);
	cr_assert_eq(sandbox_job_name(name, "a;b"), ERR_INVALID);
	cr_assert_eq(sandbox_job_name(name, "-a"), ERR_INVALID);
	cr_assert_eq(sandbox_job_name(name, ""), ERR_INVALID);
}

Test(sandbox_validate, syntax_helpers)
{
	cr_assert(sandbox_image_valid("nikolaik/python-nodejs:python3.11-nodejs20-bullseye"));
	cr_assert(sandbox_image_valid("debian:bookworm-slim"));
	cr_assert(sandbox_image_valid("localhost:5000/a/b:1"));
	cr_assert(sandbox_image_valid("ghcr.io/org/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
	cr_assert_not(sandbox_image_valid("Debian"));
	cr_assert_not(sandbox_image_valid("a b"));
	cr_assert_not(sandbox_image_valid("a;rm -rf /"));
	cr_assert_not(sandbox_image_valid("a:"));
	cr_assert_not(sandbox_image_valid("a//b"));
	cr_assert_not(sandbox_image_valid(""));
	cr_assert(sandbox_workdir_valid("."));
	cr_assert(sandbox_workdir_valid("src/app"));
	cr_assert(sandbox_workdir_valid(NULL));
	cr_assert_not(sandbox_workdir_valid("/etc"));
	cr_assert_not(sandbox_workdir_valid("../x"));
	cr_assert_not(sandbox_workdir_valid("a/../../x"));
	cr_assert_not(sandbox_workdir_valid("a/.."));
	cr_assert(sandbox_workdir_valid("a/..b"));
	cr_assert(sandbox_env_name_valid("CI"));
	cr_assert_not(sandbox_env_name_valid("1A"));
	cr_assert_not(sandbox_env_name_valid("A=B"));
	cr_assert_not(sandbox_env_name_valid("A;B"));
	cr_assert(sandbox_label_key_valid("pipeline"));
	cr_assert(sandbox_label_key_valid("example.com/pipeline"));
	cr_assert_not(sandbox_label_key_valid("-x"));
	cr_assert(sandbox_label_value_valid(""));
	cr_assert_not(sandbox_label_value_valid("a b"));
	cr_assert(sandbox_repo_url_valid("https://example.org/org/app.git"));
	cr_assert(sandbox_repo_url_valid("file:///srv/repo"));
	cr_assert(sandbox_repo_url_valid("/srv/repo"));
	cr_assert_not(sandbox_repo_url_valid("ssh://x/y"));
	cr_assert_not(sandbox_repo_url_valid("relative/path"));
	cr_assert_not(sandbox_repo_url_valid("-uhttps://x"));
	cr_assert(sandbox_ref_valid("main"));
	cr_assert(sandbox_ref_valid("refs/tags/v1.0"));
	cr_assert_not(sandbox_ref_valid("a..b"));
	cr_assert_not(sandbox_ref_valid("-main"));
	cr_assert_not(sandbox_ref_valid("a b"));
	cr_assert(sandbox_commit_valid("0123456789abcdef0123456789abcdef01234567"));
	cr_assert_not(sandbox_commit_valid("0123"));
}

static sandbox_request *one_command(void)
{
	sandbox_request *r = sandbox_request_new();

	r->commands = calloc(1, sizeof(*r->commands));
	r->command_count = 1;
	r->commands[0].argv = calloc(2, sizeof(char *));
	r->commands[0].argv[0] = strdup("true");
	r->commands[0].argc = 1;
	return r;
}

Test(sandbox_validate, request_errors_name_the_field)
{
	sandbox_config cfg;
	sandbox_request *r = one_command();

	sandbox_config_init(&cfg);
	cr_assert_eq(sandbox_request_validate(&cfg, r), 0, "%s", err_msg());

	r->commands[0].workdir = strdup("../../etc");
	cr_assert_eq(sandbox_request_validate(&cfg, r), ERR_INVALID);
	cr_assert(str_has_prefix(err_msg(), "commands[0].workdir"), "%s", err_msg());
	free(r->commands[0].workdir);
	r->commands[0].workdir = NULL;

	r->commands[0].shell = strdup("echo");
	cr_assert_eq(sandbox_request_validate(&cfg, r), ERR_INVALID);
	cr_assert(str_has_prefix(err_msg(), "commands[0]"), "%s", err_msg());
	free(r->commands[0].shell);
	r->commands[0].shell = NULL;

	r->resources.memory = strdup("64Gi");
	cr_assert_eq(sandbox_request_validate(&cfg, r), ERR_INVALID);
	cr_assert(str_has_prefix(err_msg(), "resources.memory"), "%s", err_msg());
	free(r->resources.memory);
	r->resources.memory = strdup("2Gi");
	cr_assert_eq(sandbox_request_validate(&cfg, r), 0, "%s", err_msg());

	r->resources.cpu = strdup("1.5.2");
	cr_assert_eq(sandbox_request_validate(&cfg, r), ERR_INVALID);
	cr_assert(str_has_prefix(err_msg(), "resources.cpu"), "%s", err_msg());
	free(r->resources.cpu);
	r->resources.cpu = NULL;

	r->labels = calloc(1, sizeof(*r->labels));
	r->label_count = 1;
	r->labels[0].name = strdup("ci-fixer.io/owner");
	r->labels[0].value = strdup("evil");
	cr_assert_eq(sandbox_request_validate(&cfg, r), ERR_INVALID);
	cr_assert(str_has_prefix(err_msg(), "labels.ci-fixer.io/owner"), "%s", err_msg());
	free(r->labels[0].name);
	r->labels[0].name = strdup("pipeline");
	cr_assert_eq(sandbox_request_validate(&cfg, r), 0, "%s", err_msg());

	r->repo.url = strdup("ftp://x");
	cr_assert_eq(sandbox_request_validate(&cfg, r), ERR_INVALID);
	cr_assert(str_has_prefix(err_msg(), "repo.url"), "%s", err_msg());

	sandbox_request_free(r);
}

Test(sandbox_validate, counts_and_timeouts_bounded)
{
	sandbox_config cfg;
	sandbox_request *r = one_command();

	sandbox_config_init(&cfg);
	r->timeout_seconds = -1;
	cr_assert_eq(sandbox_request_validate(&cfg, r), ERR_INVALID);
	cr_assert(str_has_prefix(err_msg(), "timeoutSeconds"));
	r->timeout_seconds = 60;
	r->commands[0].timeout_seconds = 7 * 3600;
	cr_assert_eq(sandbox_request_validate(&cfg, r), ERR_INVALID);
	r->commands[0].timeout_seconds = 5;
	cfg.max_commands = 0;
	cr_assert_eq(sandbox_request_validate(&cfg, r), 0);
	r->command_count = 0;
	cr_assert_eq(sandbox_request_validate(&cfg, r), ERR_INVALID);
	cr_assert(str_has_prefix(err_msg(), "commands"));
	r->command_count = 1;
	sandbox_request_free(r);
}

Test(sandbox_model, result_new_has_empty_strings)
{
	sandbox_result *r = sandbox_result_new("r-1");

	cr_assert_not_null(r);
	cr_assert_eq(r->phase, SANDBOX_PENDING);
	cr_assert_str_eq(r->reason, "");
	cr_assert_str_eq(r->patch, "");
	cr_assert_str_eq(r->logs, "");
	sandbox_result_free(r);
	sandbox_result_free(NULL);
}
