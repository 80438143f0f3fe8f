/*
 * The ci-fixer command line (runner/cli.c): each subcommand's --help lists
 * every flag DESIGN.md ("Interfaces in detail", The CLI) gives it, each with
 * its environment variable; every flag a help text shows is accepted by the
 * parser for that subcommand; the precedence flag > environment > --config
 * file; clear refusals naming the option.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/cli.h"
#include "runner/commands.h"
#include "util/err.h"

/* The flags of DESIGN.md's CLI block, per subcommand. */
static const char *const design_run[] = { "--kubeconfig", "--context", "--namespace", "--image", "--repo",
					  "--ref", "--timeout", "--env", "-c", "--patch", "--json", NULL };
static const char *const design_submit[] = { "--server", "--token-file", "--image", "--repo", "--ref",
					     "--timeout", "--env", "-c", "--patch", "--json", NULL };
static const char *const design_serve[] = { "--listen", "--kubeconfig", "--namespace", "--token-file",
					    "--data-dir", "--max-concurrent", "--queue-size", "--config", NULL };
static const char *const design_verify[] = { "--kubeconfig", "--namespace", "--json", NULL };

static char *usage_of(enum runner_cmd cmd)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cr_assert_not_null(f);
	runner_opts_usage(f, cmd);
	fclose(f);
	return text;
}

/* The help line of flag (e.g. "--repo" or "-c") in the options list, or
 * NULL. */
static const char *help_line(const char *text, const char *flag)
{
	size_t n = strlen(flag);
	const char *opts = strstr(text, "\noptions");

	cr_assert_not_null(opts, "no options list:\n%s", text);
	for (const char *p = opts; (p = strstr(p, flag)); p += n) {
		char after = p[n];

		if ((p == text || p[-1] == ' ' || p[-1] == ',') && (after == ' ' || after == ',' || after == '\n'))
			return p;
	}
	return NULL;
}

static void check_design_flags(enum runner_cmd cmd, const char *const *flags, const char *name)
{
	char *text = usage_of(cmd);

	cr_assert(strstr(text, "usage: ci-fixer ") && strstr(text, name), "%s help:\n%s", name, text);
	cr_assert(strstr(text, "-h, --help"), "%s help lacks --help", name);
	for (size_t i = 0; flags[i]; i++) {
		const char *line = help_line(text, flags[i]), *eol;

		cr_assert_not_null(line, "`ci-fixer %s --help` lacks %s:\n%s", name, flags[i], text);
		eol = strchr(line, '\n');
		cr_assert(eol && memmem(line, (size_t)(eol - line), "[CIFIXER_", 9),
			  "%s %s: no environment variable shown", name, flags[i]);
	}
	free(text);
}

Test(runner_cli, run_help_has_every_design_flag)
{
	check_design_flags(RUNNER_CMD_RUN, design_run, "run");
}

Test(runner_cli, submit_help_has_every_design_flag)
{
	check_design_flags(RUNNER_CMD_SUBMIT, design_submit, "submit");
}

Test(runner_cli, serve_help_has_every_design_flag)
{
	check_design_flags(RUNNER_CMD_SERVE, design_serve, "serve");
}

Test(runner_cli, verify_rbac_help_has_every_design_flag)
{
	check_design_flags(RUNNER_CMD_VERIFY_RBAC, design_verify, "verify-rbac");
}

Test(runner_cli, overview_names_the_four_commands)
{
	char *text = usage_of(RUNNER_CMD_NONE);

	cr_assert(strstr(text, "ci-fixer run") && strstr(text, "ci-fixer submit --server URL") &&
		  strstr(text, "ci-fixer serve") && strstr(text, "ci-fixer verify-rbac"), "%s", text);
	free(text);
}

/* Parse `ci-fixer NAME [--server URL] FLAG [VALUE] [-- true]`: 0 or the
 * parser's code. */
static int parse_one(enum runner_cmd cmd, const char *name, const char *flag, const char *value)
{
	runner_opts o = { 0 };
	char *argv[8];
	int argc = 0, rc;

	argv[argc++] = "ci-fixer";
	argv[argc++] = (char *)name;
	if (cmd == RUNNER_CMD_SUBMIT && strcmp(flag, "--server")) {
		argv[argc++] = "--server";
		argv[argc++] = "http://127.0.0.1:3001";
	}
	argv[argc++] = (char *)flag;
	if (value)
		argv[argc++] = (char *)value;
	if (cmd == RUNNER_CMD_RUN || cmd == RUNNER_CMD_SUBMIT) {
		argv[argc++] = "--";
		argv[argc++] = "true";
	}
	rc = runner_opts_parse(&o, argc, argv);
	runner_opts_clear(&o);
	return rc;
}

/* Every "--flag" a subcommand's help shows parses for that subcommand with
 * some plausible value (the help shows a metavariable, not the type). */
static void every_shown_flag_parses(enum runner_cmd cmd, const char *name)
{
	static const char *const values[] = { "x", "5", "60", "1000", "3600", "86400", "500m", "1Gi", "K=V", "echo hi",
					      "{}", "[]", "IfNotPresent", "nvidia.com/gpu", NULL };
	char *text = usage_of(cmd), *save = NULL;
	int seen = 0;

	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char flag[64], arg[32] = "", why[512] = "";
		const char *p = strstr(line, "--");
		int ok = 0;

		if (strncmp(line, "  ", 2) || !p || sscanf(p, "%63s %31s", flag, arg) < 1 || !strcmp(flag, "--help"))
			continue;
		if (!strcmp(flag, "--config")) {
			/* /dev/null is not a JSON object: the file is read, and refused */
			cr_assert_neq(parse_one(cmd, name, flag, "/dev/null"), 0);
			cr_assert(strstr(err_msg(), "--config /dev/null"), "%s", err_msg());
			seen++;
			continue;
		}
		if (!((arg[0] >= 'A' && arg[0] <= 'Z') || arg[0] == '\'')) {
			ok = parse_one(cmd, name, flag, NULL) == 0; /* a boolean */
			snprintf(why, sizeof(why), "%s", err_msg());
		}
		for (size_t i = 0; !ok && values[i]; i++) {
			ok = parse_one(cmd, name, flag, values[i]) == 0;
			if (!ok)
				snprintf(why, sizeof(why), "%s", err_msg());
		}
		cr_assert(ok, "ci-fixer %s %s %s: no value accepted (last: %s)", name, flag, arg, why);
		seen++;
	}
	cr_assert_geq(seen, 3, "%s: too few flags found in its help", name);
	free(text);
}

Test(runner_cli, every_flag_in_each_help_is_accepted)
{
	every_shown_flag_parses(RUNNER_CMD_RUN, "run");
	every_shown_flag_parses(RUNNER_CMD_SUBMIT, "submit");
	every_shown_flag_parses(RUNNER_CMD_SERVE, "serve");
	every_shown_flag_parses(RUNNER_CMD_VERIFY_RBAC, "verify-rbac");
}

Test(runner_cli, help_flag_and_help_command)
{
	const char *cmds[] = { "run", "serve", "submit", "verify-rbac" };

	for (int i = 0; i < 4; i++) {
		runner_opts o = { 0 };
		char *a1[] = { "ci-fixer", (char *)cmds[i], "--help" };
		char *a2[] = { "ci-fixer", "help", (char *)cmds[i] };

		cr_assert_eq(runner_opts_parse(&o, 3, a1), 0, "%s --help: %s", cmds[i], err_msg());
		cr_assert(o.help && o.cmd == (enum runner_cmd)(i + 1), "%s --help", cmds[i]);
		runner_opts_clear(&o);
		cr_assert_eq(runner_opts_parse(&o, 3, a2), 0);
		cr_assert(o.help && o.cmd == (enum runner_cmd)(i + 1), "help %s", cmds[i]);
		runner_opts_clear(&o);
	}
}

Test(runner_cli, refusals_name_the_option)
{
	runner_opts o = { 0 };
	char *unknown[] = { "ci-fixer", "run", "--bogus", "--", "true" };
	char *wrong_cmd[] = { "ci-fixer", "run", "--listen", "0.0.0.0:1", "--", "true" };
	char *no_value[] = { "ci-fixer", "serve", "--max-concurrent" };
	char *bad_int[] = { "ci-fixer", "serve", "--max-concurrent", "lots" };
	char *no_server[] = { "ci-fixer", "submit", "--", "true" };
	char *no_cmd[] = { "ci-fixer", "run", "--image", "busybox" };

	cr_assert_eq(runner_opts_parse(&o, 5, unknown), ERR_INVALID);
	cr_assert(strstr(err_msg(), "--bogus"), "%s", err_msg());
	runner_opts_clear(&o);
	cr_assert_eq(runner_opts_parse(&o, 6, wrong_cmd), ERR_INVALID);
	cr_assert(strstr(err_msg(), "--listen does not apply to run"), "%s", err_msg());
	runner_opts_clear(&o);
	cr_assert_eq(runner_opts_parse(&o, 3, no_value), ERR_INVALID);
	cr_assert(strstr(err_msg(), "--max-concurrent needs a value"), "%s", err_msg());
	runner_opts_clear(&o);
	cr_assert_eq(runner_opts_parse(&o, 4, bad_int), ERR_INVALID);
	cr_assert(strstr(err_msg(), "\"lots\""), "%s", err_msg());
	runner_opts_clear(&o);
	cr_assert_eq(runner_opts_parse(&o, 4, no_server), ERR_INVALID);
	cr_assert(strstr(err_msg(), "--server"), "%s", err_msg());
	runner_opts_clear(&o);
	cr_assert_eq(runner_opts_parse(&o, 4, no_cmd), ERR_INVALID);
	cr_assert(strstr(err_msg(), "no command"), "%s", err_msg());
	runner_opts_clear(&o);
}

Test(runner_cli, flag_beats_environment_beats_config_file)
{
	char path[] = "/tmp/runner-cli-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	runner_opts o = { 0 };
	char *argv[] = { "ci-fixer", "serve", "--config", path, "--queue-size", "7" };

	cr_assert_not_null(f);
	fputs("{\"namespace\":\"from-file\",\"queue-size\":3,\"max-concurrent\":2,\"listen\":\"127.0.0.1:9\","
	      "\"allow-local-repos\":true}", f);
	fclose(f);
	setenv("CIFIXER_NAMESPACE", "from-env", 1);
	setenv("CIFIXER_QUEUE_SIZE", "5", 1);
	cr_assert_eq(runner_opts_parse(&o, 6, argv), 0, "%s", err_msg());
	cr_assert_str_eq(o.namespace_, "from-env");   /* env over file */
	cr_assert_eq(o.queue_size, 7);                 /* flag over env */
	cr_assert_eq(o.max_concurrent, 2);             /* file alone */
	cr_assert_str_eq(o.listen, "127.0.0.1:9");
	cr_assert_eq(o.allow_local_repos, 1);
	runner_opts_clear(&o);
	unsetenv("CIFIXER_NAMESPACE");
	unsetenv("CIFIXER_QUEUE_SIZE");

	f = fopen(path, "w");
	fputs("{\"max-concurent\":2}", f);
	fclose(f);
	cr_assert_eq(runner_opts_parse(&o, 4, argv), ERR_INVALID);
	cr_assert(strstr(err_msg(), "max-concurent: unknown setting"), "%s", err_msg());
	runner_opts_clear(&o);
	unlink(path);
}

Test(runner_cli, commands_from_c_then_argv_in_order)
{
	runner_opts o = { 0 };
	runner_request *r = NULL;
	char *argv[] = { "ci-fixer", "run", "-c", "make fix", "--env", "A=1", "-c", "make test", "--repo",
			 "https://example.org/x.git", "--", "npm", "test", "--", "-x" };

	cr_assert_eq(runner_opts_parse(&o, 15, argv), 0, "%s", err_msg());
	cr_assert_eq(runner_opts_request(&r, &o), 0, "%s", err_msg());
	cr_assert_eq(r->ncommands, 3);
	cr_assert_str_eq(r->commands[0].shell, "make fix");
	cr_assert_str_eq(r->commands[1].shell, "make test");
	cr_assert_eq(r->commands[2].argc, 4); /* the second "--" belongs to the command */
	cr_assert_str_eq(r->commands[2].argv[0], "npm");
	cr_assert_str_eq(r->commands[2].argv[2], "--");
	cr_assert_str_eq(r->repo_url, "https://example.org/x.git");
	cr_assert_str_eq(runner_map_get(&r->env, "A"), "1");
	runner_request_free(r);
	runner_opts_clear(&o);
}

/* Write text to a fresh temp file; path receives its name. */
static void write_config(char *path, const char *text)
{
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

/* Parse `ci-fixer serve --config FILE` with text as the file: 0 or the
 * parser's code; the options are cleared. */
static int parse_serve_config(const char *text)
{
	char path[] = "/tmp/runner-cli-XXXXXX";
	runner_opts o = { 0 };
	char *argv[] = { "ci-fixer", "serve", "--config", path };
	int rc;

	write_config(path, text);
	rc = runner_opts_parse(&o, 4, argv);
	runner_opts_clear(&o);
	unlink(path);
	return rc;
}

/* issue 6: the chart's config.json carries the sandbox Job settings; each
 * key reaches the sandbox_config the Jobs are built from. */
Test(runner_cli, sandbox_settings_from_config_reach_the_sandbox_config)
{
	char path[] = "/tmp/runner-cli-XXXXXX";
	runner_opts o = { 0 };
	sandbox_config cfg;
	char *argv[] = { "ci-fixer", "serve", "--config", path, "--run-as-group", "777" };

	write_config(path, "{\"ttl-seconds-after-finished\":0,\"run-as-user\":4242,\"run-as-group\":4243,"
			   "\"cpu-request\":\"100m\",\"cpu-limit\":\"1500m\",\"max-cpu\":\"2\","
			   "\"memory-request\":\"128Mi\",\"memory-limit\":\"3Gi\",\"max-memory\":\"4Gi\","
			   "\"workspace-size-limit\":\"5Gi\",\"default-timeout\":600,\"max-timeout\":3540,"
			   "\"deadline-grace\":0,\"pod-start-timeout\":120,\"image-pull-grace\":0}");
	cr_assert_eq(runner_opts_parse(&o, 6, argv), 0, "%s", err_msg());
	runner_sandbox_config(&cfg, &o);
	cr_assert_eq(cfg.ttl_seconds_after_finished, 0); /* 0 is a value, not "unset" */
	cr_assert_eq(cfg.run_as_user, 4242);
	cr_assert_eq(cfg.run_as_group, 777);             /* the flag over the file */
	cr_assert_str_eq(cfg.default_cpu_request, "100m");
	cr_assert_str_eq(cfg.default_cpu_limit, "1500m");
	cr_assert_str_eq(cfg.max_cpu, "2");
	cr_assert_str_eq(cfg.default_memory_request, "128Mi");
	cr_assert_str_eq(cfg.default_memory_limit, "3Gi");
	cr_assert_str_eq(cfg.max_memory, "4Gi");
	cr_assert_str_eq(cfg.ephemeral_storage_limit, "5Gi");
	cr_assert_eq(cfg.default_timeout_seconds, 600);
	cr_assert_eq(cfg.max_timeout_seconds, 3540);
	cr_assert_eq(cfg.grace_seconds, 0);
	cr_assert_eq(cfg.start_timeout_seconds, 120);
	cr_assert_eq(cfg.image_pull_grace_seconds, 0);
	runner_opts_clear(&o);
	unlink(path);

	/* none given: sandbox_config_init's defaults, untouched */
	char *bare[] = { "ci-fixer", "serve" };
	sandbox_config def;
	cr_assert_eq(runner_opts_parse(&o, 2, bare), 0, "%s", err_msg());
	runner_sandbox_config(&cfg, &o);
	sandbox_config_init(&def);
	cr_assert_eq(cfg.ttl_seconds_after_finished, def.ttl_seconds_after_finished);
	cr_assert_eq(cfg.run_as_user, def.run_as_user);
	cr_assert_eq(cfg.grace_seconds, def.grace_seconds);
	cr_assert_str_eq(cfg.default_memory_limit, def.default_memory_limit);
	runner_opts_clear(&o);
}

Test(runner_cli, sandbox_settings_for_run_by_flag_and_environment)
{
	runner_opts o = { 0 };
	sandbox_config cfg;
	char *argv[] = { "ci-fixer", "run", "--memory-limit", "2Gi", "--ttl-seconds-after-finished", "123", "--", "true" };

	setenv("CIFIXER_RUN_AS_USER", "1001", 1);
	cr_assert_eq(runner_opts_parse(&o, 8, argv), 0, "%s", err_msg());
	unsetenv("CIFIXER_RUN_AS_USER");
	runner_sandbox_config(&cfg, &o);
	cr_assert_str_eq(cfg.default_memory_limit, "2Gi");
	cr_assert_eq(cfg.ttl_seconds_after_finished, 123);
	cr_assert_eq(cfg.run_as_user, 1001);
	runner_opts_clear(&o);
}

Test(runner_cli, sandbox_settings_out_of_range_are_refused)
{
	cr_assert_eq(parse_one(RUNNER_CMD_SERVE, "serve", "--run-as-user", "0"), ERR_INVALID);
	cr_assert(strstr(err_msg(), "--run-as-user") && strstr(err_msg(), "\"0\""), "%s", err_msg());
	cr_assert_eq(parse_serve_config("{\"run-as-user\":0}"), ERR_INVALID);
	cr_assert(strstr(err_msg(), "run-as-user"), "%s", err_msg());
	cr_assert_eq(parse_serve_config("{\"ttl-seconds-after-finished\":-1}"), ERR_INVALID);
	cr_assert(strstr(err_msg(), "ttl-seconds-after-finished"), "%s", err_msg());
	cr_assert_eq(parse_serve_config("{\"deadline-grace\":3601}"), ERR_INVALID);
	cr_assert(strstr(err_msg(), "deadline-grace"), "%s", err_msg());
	cr_assert_eq(parse_serve_config("{\"max-timeout\":0}"), ERR_INVALID);
	cr_assert(strstr(err_msg(), "max-timeout"), "%s", err_msg());
	cr_assert_eq(parse_one(RUNNER_CMD_SERVE, "serve", "--run-as-group", "-5"), ERR_INVALID);
	/* not a flag of submit or verify-rbac: the service/run build the Job */
	cr_assert_eq(parse_one(RUNNER_CMD_VERIFY_RBAC, "verify-rbac", "--run-as-user", "1000"), ERR_INVALID);
	cr_assert(strstr(err_msg(), "does not apply"), "%s", err_msg());
}

Test(runner_cli, bad_quantities_are_refused_naming_the_key)
{
	static const char *const keys[] = { "cpu-request", "cpu-limit", "max-cpu", "memory-request",
					    "memory-limit", "max-memory", "workspace-size-limit", NULL };
	char text[128], flag[64];

	for (size_t i = 0; keys[i]; i++) {
		snprintf(text, sizeof(text), "{\"%s\":\"1GB\"}", keys[i]);
		cr_assert_eq(parse_serve_config(text), ERR_INVALID, "%s accepted 1GB", keys[i]);
		cr_assert(strstr(err_msg(), keys[i]) && strstr(err_msg(), "1GB"), "%s: %s", keys[i], err_msg());
		snprintf(flag, sizeof(flag), "--%s", keys[i]);
		cr_assert_eq(parse_one(RUNNER_CMD_SERVE, "serve", flag, ""), ERR_INVALID, "%s accepted \"\"", flag);
		cr_assert(strstr(err_msg(), flag), "%s", err_msg());
		cr_assert_eq(parse_one(RUNNER_CMD_SERVE, "serve", flag, "-1"), ERR_INVALID, "%s accepted -1", flag);
	}
	setenv("CIFIXER_MAX_MEMORY", "8 Gi", 1);
	cr_assert_eq(parse_one(RUNNER_CMD_SERVE, "serve", "--listen", "127.0.0.1:1"), ERR_INVALID);
	unsetenv("CIFIXER_MAX_MEMORY");
	cr_assert(strstr(err_msg(), "CIFIXER_MAX_MEMORY"), "%s", err_msg());
	/* a number in the file is a quantity too */
	cr_assert_eq(parse_serve_config("{\"cpu-limit\":2,\"max-cpu\":\"2\"}"), 0, "%s", err_msg());
}

Test(runner_cli, sandbox_settings_must_hang_together)
{
	cr_assert_eq(parse_serve_config("{\"default-timeout\":7200,\"max-timeout\":3600}"), ERR_INVALID);
	cr_assert(strstr(err_msg(), "default-timeout") && strstr(err_msg(), "max-timeout"), "%s", err_msg());
	/* against a default: the built-in memory limit is 1Gi */
	cr_assert_eq(parse_serve_config("{\"memory-request\":\"2Gi\"}"), ERR_INVALID);
	cr_assert(strstr(err_msg(), "memory-request") && strstr(err_msg(), "memory-limit"), "%s", err_msg());
	cr_assert_eq(parse_serve_config("{\"cpu-limit\":\"8\"}"), ERR_INVALID);
	cr_assert(strstr(err_msg(), "cpu-limit") && strstr(err_msg(), "max-cpu"), "%s", err_msg());
	cr_assert_eq(parse_serve_config("{\"memory-request\":\"2Gi\",\"memory-limit\":\"2Gi\"}"), 0, "%s",
		     err_msg());
}

/* issue 6: the sandbox pod's placement (image pull policy, ServiceAccount,
 * nodeSelector, tolerations, affinity, GPUs) from config.json, where the
 * JSON settings are JSON values, and from flags and variables, where they
 * are JSON text. */
Test(runner_cli, placement_settings_reach_the_sandbox_config)
{
	char path[] = "/tmp/runner-cli-XXXXXX";
	runner_opts o = { 0 };
	sandbox_config cfg;
	char *argv[] = { "ci-fixer", "serve", "--config", path, "--node-selector", "{\"pool\":\"from-flag\"}" };

	write_config(path, "{\"image-pull-policy\":\"Always\",\"sandbox-service-account\":\"team-a-sandbox\","
			   "\"node-selector\":{\"pool\":\"gpu\",\"example.com/zone\":\"a\"},"
			   "\"tolerations\":[{\"key\":\"nvidia.com/gpu\",\"operator\":\"Exists\",\"effect\":\"NoSchedule\"}],"
			   "\"affinity\":{\"nodeAffinity\":{\"requiredDuringSchedulingIgnoredDuringExecution\":"
			   "{\"nodeSelectorTerms\":[{\"matchExpressions\":[{\"key\":\"gpu\",\"operator\":\"Exists\"}]}]}}},"
			   "\"gpu-resource\":\"amd.com/gpu\",\"gpu-count\":2}");
	setenv("CIFIXER_TOLERATIONS", "[{\"key\":\"pool\",\"value\":\"ci\",\"effect\":\"NoExecute\","
				      "\"tolerationSeconds\":60},{\"operator\":\"Exists\"}]", 1);
	cr_assert_eq(runner_opts_parse(&o, 6, argv), 0, "%s", err_msg());
	unsetenv("CIFIXER_TOLERATIONS");
	runner_sandbox_config(&cfg, &o);
	cr_assert_str_eq(cfg.image_pull_policy, "Always");
	cr_assert_str_eq(cfg.service_account, "team-a-sandbox");
	cr_assert_eq(cfg.node_selector_count, 1);               /* the flag replaces the file's */
	cr_assert_str_eq(cfg.node_selector[0].name, "pool");
	cr_assert_str_eq(cfg.node_selector[0].value, "from-flag");
	cr_assert_eq(cfg.toleration_count, 2);                  /* the variable replaces the file's */
	cr_assert_str_eq(cfg.tolerations[0].key, "pool");
	cr_assert(cfg.tolerations[0].has_seconds && cfg.tolerations[0].seconds == 60);
	cr_assert_str_eq(cfg.tolerations[1].operator_, "Exists");
	cr_assert_not_null(cfg.affinity);
	cr_assert(strstr(cfg.affinity, "\"nodeSelectorTerms\""), "%s", cfg.affinity);
	cr_assert_str_eq(cfg.gpu_resource, "amd.com/gpu");
	cr_assert_eq(cfg.gpu_count, 2);
	runner_opts_clear(&o);
	unlink(path);

	/* empty values and none given: sandbox_config_init's, nothing set */
	cr_assert_eq(parse_serve_config("{\"node-selector\":{},\"tolerations\":[],\"affinity\":{},\"gpu-count\":0}"), 0,
		     "%s", err_msg());
	char *bare[] = { "ci-fixer", "serve" };
	sandbox_config def;
	cr_assert_eq(runner_opts_parse(&o, 2, bare), 0, "%s", err_msg());
	runner_sandbox_config(&cfg, &o);
	sandbox_config_init(&def);
	cr_assert_str_eq(cfg.image_pull_policy, def.image_pull_policy);
	cr_assert_str_eq(cfg.service_account, "ci-fixer-sandbox");
	cr_assert(cfg.node_selector_count == 0 && cfg.toleration_count == 0 && cfg.affinity == NULL);
	cr_assert_str_eq(cfg.gpu_resource, "nvidia.com/gpu");
	cr_assert_eq(cfg.gpu_count, 0);
	runner_opts_clear(&o);

	/* run takes them too (it builds the Job); submit does not */
	char *run[] = { "ci-fixer", "run", "--gpu-count", "1", "--tolerations", "[]", "--image-pull-policy", "Never",
			"--", "true" };
	cr_assert_eq(runner_opts_parse(&o, 10, run), 0, "%s", err_msg());
	runner_sandbox_config(&cfg, &o);
	cr_assert_eq(cfg.gpu_count, 1);
	cr_assert_str_eq(cfg.image_pull_policy, "Never");
	runner_opts_clear(&o);
	cr_assert_eq(parse_one(RUNNER_CMD_SUBMIT, "submit", "--node-selector", "{}"), ERR_INVALID);
	cr_assert(strstr(err_msg(), "does not apply"), "%s", err_msg());
}

Test(runner_cli, bad_placement_settings_are_refused_naming_the_key)
{
	static const struct {
		const char *config, *want;
	} bad[] = {
		{ "{\"image-pull-policy\":\"always\"}", "image-pull-policy: \"always\" is not Always, IfNotPresent or Never" },
		{ "{\"sandbox-service-account\":\"Team_A\"}", "sandbox-service-account: \"Team_A\" is not a ServiceAccount" },
		{ "{\"node-selector\":\"pool=gpu\"}", "node-selector: must be a JSON object" },
		{ "{\"node-selector\":[]}", "node-selector: must be a JSON object" },
		{ "{\"node-selector\":{\"pool\":true}}", "node-selector: \"pool\": the value must be a string" },
		{ "{\"tolerations\":{}}", "tolerations: must be a JSON array" },
		{ "{\"tolerations\":[{\"key\":\"a\",\"operator\":\"exists\"}]}",
		  "tolerations: [0].operator: \"exists\" is not Exists or Equal" },
		{ "{\"tolerations\":[{\"key\":\"a\",\"effect\":\"NoSchedule\",\"tolerationSeconds\":5}]}",
		  "tolerations: [0].effect: must be NoExecute" },
		{ "{\"affinity\":[]}", "affinity: must be a JSON object" },
		{ "{\"affinity\":{\"nodeAfinity\":{}}}", "affinity: \"nodeAfinity\": unknown field" },
		{ "{\"gpu-resource\":\"gpu\"}", "gpu-resource: \"gpu\" is not an extended resource name" },
		{ "{\"gpu-count\":-1}", "gpu-count: \"-1\" is not a number from 0" },
		{ "{\"image\":{\"name\":\"x\"}}", "image: must be a string, number or boolean" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(parse_serve_config(bad[i].config), ERR_INVALID, "accepted %s", bad[i].config);
		cr_assert(strstr(err_msg(), "--config /tmp/runner-cli-") && strstr(err_msg(), bad[i].want),
			  "%s: \"%s\" not in: %s", bad[i].config, bad[i].want, err_msg());
	}
	cr_assert_eq(parse_one(RUNNER_CMD_SERVE, "serve", "--tolerations", "[{\"value\":\"x\"}]"), ERR_INVALID);
	cr_assert(strstr(err_msg(), "--tolerations: [0].operator: must be Exists"), "%s", err_msg());
	cr_assert_eq(parse_one(RUNNER_CMD_RUN, "run", "--affinity", "{\"nodeAffinity\":"), ERR_INVALID);
	cr_assert(strstr(err_msg(), "--affinity: not valid JSON"), "%s", err_msg());
	setenv("CIFIXER_NODE_SELECTOR", "{\"bad key\":\"x\"}", 1);
	cr_assert_eq(parse_one(RUNNER_CMD_SERVE, "serve", "--listen", "127.0.0.1:1"), ERR_INVALID);
	unsetenv("CIFIXER_NODE_SELECTOR");
	cr_assert(strstr(err_msg(), "CIFIXER_NODE_SELECTOR: \"bad key\": not a valid label key"), "%s", err_msg());
	cr_assert_eq(parse_one(RUNNER_CMD_SERVE, "serve", "--gpu-resource", "kubernetes.io/gpu"), ERR_INVALID);
	cr_assert(strstr(err_msg(), "--gpu-resource"), "%s", err_msg());
}
