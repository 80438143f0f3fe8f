/*
 * ci-fixer: the program's entry point. Parses the command line (runner/cli.c)
 * and hands over to one of the four subcommands (runner/commands.h).
 * Exit status 125 for a usage error (as `docker run` does, so that it is
 * never mistaken for a command's own status), otherwise the subcommand's.
 */
#include <stdio.h>

#include "runner/cli.h"
#include "runner/commands.h"
#include "sandbox/workspace.h"
#include "util/err.h"

int main(int argc, char **argv)
{
	runner_opts o = { 0 };
	int rc;

	if (runner_opts_parse(&o, argc, argv)) {
		fprintf(stderr, "ci-fixer: %s\n", err_msg());
		fprintf(stderr, "Run 'ci-fixer %s--help' for usage.\n",
			o.cmd == RUNNER_CMD_RUN ? "run " : o.cmd == RUNNER_CMD_SERVE ? "serve " :
			o.cmd == RUNNER_CMD_SUBMIT ? "submit " : o.cmd == RUNNER_CMD_VERIFY_RBAC ? "verify-rbac " : "");
		runner_opts_clear(&o);
		return 125;
	}
	if (o.help) {
		runner_opts_usage(stdout, o.cmd);
		runner_opts_clear(&o);
		return 0;
	}
	if (o.cmd == RUNNER_CMD_SERVE)
		runner_serve_tune_malloc(argv);
	sandbox_workspace_global_init();
	switch (o.cmd) {
	case RUNNER_CMD_RUN: rc = runner_cmd_run(&o); break;
	case RUNNER_CMD_SERVE: rc = runner_cmd_serve(&o); break;
	case RUNNER_CMD_SUBMIT: rc = runner_cmd_submit(&o); break;
	case RUNNER_CMD_VERIFY_RBAC: rc = runner_cmd_verify_rbac(&o); break;
	default: rc = 125; break;
	}
	sandbox_workspace_global_cleanup();
	runner_opts_clear(&o);
	return rc;
}
