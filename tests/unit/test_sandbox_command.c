/* The exec wrapper, run here with the local sh (dash: POSIX): every user
 * string arrives intact, nothing is interpreted by a shell unless asked;
 * the output comes back in follow frames, and a second run of the same
 * argv from given offsets continues without starting the command again. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/command.h"
#include "sandbox/follow.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/str.h"

static char dir[64];

typedef struct got {
	buf out, err, diag;
	int ended, code, rc;
} got;

static int got_data(void *arg, int stream, const char *p, size_t n)
{
	got *g = arg;

	buf_append(stream == 1 ? &g->out : &g->err, p, n);
	return 0;
}

/* Run argv with the command's directory and the workdir moved into dir;
 * parse its stdout as frames from the offsets in argv. Returns the
 * wrapper's own exit status. */
static int run_local(char **argv, got *g)
{
	int p[2], e[2], status;
	pid_t pid;
	char wd[512], cdir[512];
	sandbox_follow *f = NULL;
	char tmp[4096];
	ssize_t n;

	cr_assert_str_eq(argv[4], "/tmp/.ci-fixer");
	cr_assert(str_has_prefix(argv[8], "/workspace"));
	snprintf(cdir, sizeof(cdir), "%s/state", dir);
	snprintf(wd, sizeof(wd), "%s%s", dir, argv[8] + strlen("/workspace"));
	free(argv[4]);
	argv[4] = strdup(cdir);
	free(argv[8]);
	argv[8] = strdup(wd);
	cr_assert_eq(sandbox_follow_new(&f, got_data, g), 0);
	/* the reader starts where the argv says */
	if (strcmp(argv[6], "0") || strcmp(argv[7], "0")) {
		char hdr[128];
		size_t skip_o = strtoull(argv[6], NULL, 10), skip_e = strtoull(argv[7], NULL, 10);
		/* advance the reader by feeding it frames of what we already have */
		if (skip_o) {
			snprintf(hdr, sizeof(hdr), "O 0 %zu\n", skip_o);
			cr_assert_eq(sandbox_follow_feed(f, hdr, strlen(hdr)), 0);
			char *z = calloc(1, skip_o);
			cr_assert_eq(sandbox_follow_feed(f, z, skip_o), 0);
			free(z);
		}
		if (skip_e) {
			snprintf(hdr, sizeof(hdr), "E 0 %zu\n", skip_e);
			cr_assert_eq(sandbox_follow_feed(f, hdr, strlen(hdr)), 0);
			char *z = calloc(1, skip_e);
			cr_assert_eq(sandbox_follow_feed(f, z, skip_e), 0);
			free(z);
		}
		buf_reset(&g->out);
		buf_reset(&g->err);
	}
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(pipe(e), 0);
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(e[1], 2);
		close(p[0]);
		close(e[0]);
		execvp(argv[0], argv);
		_exit(99);
	}
	close(p[1]);
	close(e[1]);
	g->rc = 0;
	while ((n = read(p[0], tmp, sizeof(tmp))) > 0)
		if (!g->rc)
			g->rc = sandbox_follow_feed(f, tmp, (size_t)n);
	while ((n = read(e[0], tmp, sizeof(tmp))) > 0)
		buf_append(&g->diag, tmp, (size_t)n);
	close(p[0]);
	close(e[0]);
	waitpid(pid, &status, 0);
	g->ended = sandbox_follow_ended(f, &g->code);
	sandbox_follow_free(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void got_init(got *g)
{
	memset(g, 0, sizeof(*g));
	buf_init(&g->out, 1 << 20);
	buf_init(&g->err, 1 << 20);
	buf_init(&g->diag, 1 << 16);
	g->code = -1;
}

static void got_free(got *g)
{
	buf_free(&g->out);
	buf_free(&g->err);
	buf_free(&g->diag);
}

static sandbox_request *req1(void)
{
	sandbox_request *r = sandbox_request_new();

	r->commands = calloc(1, sizeof(*r->commands));
	r->command_count = 1;
	return r;
}

static void setup(void)
{
	strcpy(dir, "/tmp/sbcmd-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	char sub[128];
	snprintf(sub, sizeof(sub), "%s/sub dir", dir);
	mkdir(sub, 0755);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(sandbox_command, .init = setup, .fini = teardown);

Test(sandbox_command, argv_form_passes_metacharacters_untouched)
{
	sandbox_request *r = req1();
	char **argv;
	got g;

	got_init(&g);
	r->commands[0].argc = 4;
	r->commands[0].argv = calloc(5, sizeof(char *));
	r->commands[0].argv[0] = strdup("printf");
	r->commands[0].argv[1] = strdup("[%s][%s]\\n");
	r->commands[0].argv[2] = strdup("$(touch /tmp/pwned); `id` && echo x");
	r->commands[0].argv[3] = strdup("a\nb 'c\" -- --");
	cr_assert_eq(sandbox_command_argv(&argv, r, 0, 0, 0), 0, "%s", err_msg());
	cr_assert_eq(run_local(argv, &g), 0, "%s", buf_cstr(&g.diag));
	cr_assert_eq(g.rc, 0, "%s", err_msg());
	cr_assert(g.ended);
	cr_assert_eq(g.code, 0);
	cr_assert_str_eq(buf_cstr(&g.out), "[$(touch /tmp/pwned); `id` && echo x][a\nb 'c\" -- --]\n");
	sandbox_argv_free(argv);
	got_free(&g);
	sandbox_request_free(r);
}

Test(sandbox_command, shell_form_env_workdir_and_exit_code)
{
	sandbox_request *r = req1();
	char **argv;
	got g;
	char pidfile[128];

	got_init(&g);
	r->commands[0].shell = strdup("echo \"$GREETING|$EMPTY|$(basename \"$PWD\")\"; echo oops >&2; exit 7");
	r->commands[0].workdir = strdup("sub dir");
	r->commands[0].env = calloc(2, sizeof(sandbox_kv));
	r->commands[0].env_count = 2;
	r->commands[0].env[0].name = strdup("GREETING");
	r->commands[0].env[0].value = strdup("hello world; $(id)");
	r->commands[0].env[1].name = strdup("EMPTY");
	r->commands[0].env[1].value = strdup("");
	cr_assert_eq(sandbox_command_argv(&argv, r, 0, 0, 0), 0, "%s", err_msg());
	/* the follower's own status is 0: the command's 7 is in the X frame */
	cr_assert_eq(run_local(argv, &g), 0, "%s", buf_cstr(&g.diag));
	cr_assert(g.ended);
	cr_assert_eq(g.code, 7);
	cr_assert_str_eq(buf_cstr(&g.out), "hello world; $(id)||sub dir\n");
	cr_assert_str_eq(buf_cstr(&g.err), "oops\n");
	/* the pid file names the wrapper that ran */
	snprintf(pidfile, sizeof(pidfile), "%s/state/c0.pid", dir);
	cr_assert_eq(access(pidfile, R_OK), 0);
	sandbox_argv_free(argv);
	got_free(&g);
	sandbox_request_free(r);
}

Test(sandbox_command, missing_workdir_and_program_exit_127)
{
	sandbox_request *r = req1();
	char **argv;
	got g;

	got_init(&g);
	r->commands[0].argc = 1;
	r->commands[0].argv = calloc(2, sizeof(char *));
	r->commands[0].argv[0] = strdup("true");
	r->commands[0].workdir = strdup("does/not/exist");
	cr_assert_eq(sandbox_command_argv(&argv, r, 0, 0, 0), 0);
	cr_assert_eq(run_local(argv, &g), 0, "%s", buf_cstr(&g.diag));
	cr_assert_eq(g.code, 127);
	cr_assert(strstr(buf_cstr(&g.err), "cannot enter the working directory"), "%s", buf_cstr(&g.err));
	sandbox_argv_free(argv);
	free(r->commands[0].workdir);
	r->commands[0].workdir = NULL;
	free(r->commands[0].argv[0]);
	r->commands[0].argv[0] = strdup("no-such-program-here");
	/* command 1: a directory of its own (and command 0's is removed) */
	r->commands = realloc(r->commands, 2 * sizeof(*r->commands));
	r->commands[1] = r->commands[0];
	memset(&r->commands[0], 0, sizeof(r->commands[0]));
	r->command_count = 2;
	cr_assert_eq(sandbox_command_argv(&argv, r, 1, 0, 0), 0);
	buf_reset(&g.err);
	cr_assert_eq(run_local(argv, &g), 0, "%s", buf_cstr(&g.diag));
	cr_assert_eq(g.code, 127);
	char c0[128];
	snprintf(c0, sizeof(c0), "%s/state/c0.out", dir);
	cr_assert_neq(access(c0, F_OK), 0, "command 0's files were not removed");
	sandbox_argv_free(argv);
	got_free(&g);
	sandbox_request_free(r);
}

Test(sandbox_command, reattach_continues_from_offsets_without_running_again)
{
	sandbox_request *r = req1();
	char **argv;
	got g, g2;
	char counter[128];

	got_init(&g);
	got_init(&g2);
	snprintf(counter, sizeof(counter), "%s/runs", dir);
	r->commands[0].argc = 4;
	r->commands[0].argv = calloc(5, sizeof(char *));
	r->commands[0].argv[0] = strdup("sh");
	r->commands[0].argv[1] = strdup("-c");
	r->commands[0].argv[2] = strdup("echo run >> \"$1\"; printf 'abcdefghij'; printf '0123' >&2; "
					"sleep 0.3; printf 'KLMNOP\\n'; printf '45' >&2; exit 42");
	r->commands[0].argv[3] = strdup("sh");
	r->commands[0].argv = realloc(r->commands[0].argv, 6 * sizeof(char *));
	r->commands[0].argv[4] = strdup(counter);
	r->commands[0].argv[5] = NULL;
	r->commands[0].argc = 5;
	cr_assert_eq(sandbox_command_argv(&argv, r, 0, 0, 0), 0);
	cr_assert_eq(run_local(argv, &g), 0, "%s", buf_cstr(&g.diag));
	cr_assert_eq(g.code, 42);
	cr_assert_str_eq(buf_cstr(&g.out), "abcdefghijKLMNOP\n");
	cr_assert_str_eq(buf_cstr(&g.err), "012345");
	sandbox_argv_free(argv);
	/* as after a break at stdout byte 4 and stderr byte 3: only the rest,
	 * the same status, and the command did not run a second time */
	cr_assert_eq(sandbox_command_argv(&argv, r, 0, 4, 3), 0);
	cr_assert_eq(run_local(argv, &g2), 0, "%s", buf_cstr(&g2.diag));
	cr_assert_eq(g2.rc, 0, "%s", err_msg());
	cr_assert_eq(g2.code, 42);
	cr_assert_str_eq(buf_cstr(&g2.out), "efghijKLMNOP\n");
	cr_assert_str_eq(buf_cstr(&g2.err), "345");
	FILE *f = fopen(counter, "r");
	char line[64] = "";
	size_t nl = 0;
	while (f && fgets(line, sizeof(line), f))
		nl++;
	if (f)
		fclose(f);
	cr_assert_eq(nl, 1, "the command ran %zu times", nl);
	sandbox_argv_free(argv);
	got_free(&g);
	got_free(&g2);
	sandbox_request_free(r);
}

Test(sandbox_command, follower_gives_up_when_the_command_was_killed_or_is_gone)
{
	sandbox_request *r = req1();
	char **argv;
	got g;
	char cdir[512];

	got_init(&g);
	r->commands[0].shell = strdup("echo x");
	/* a lock without files: started, but the files are gone */
	snprintf(cdir, sizeof(cdir), "mkdir -p %s/state && : > %s/state/c0.lock", dir, dir);
	cr_assert_eq(system(cdir), 0);
	cr_assert_eq(sandbox_command_argv(&argv, r, 0, 0, 0), 0);
	cr_assert_eq(run_local(argv, &g), 125);
	cr_assert_not(g.ended);
	cr_assert(strstr(buf_cstr(&g.diag), "ci-fixer:"), "%s", buf_cstr(&g.diag));
	sandbox_argv_free(argv);
	/* files but no status, and the killed mark: the follower stops */
	snprintf(cdir, sizeof(cdir), "cd %s/state && : > c0.out && : > c0.err && : > c0.killed", dir);
	cr_assert_eq(system(cdir), 0);
	buf_reset(&g.diag);
	cr_assert_eq(sandbox_command_argv(&argv, r, 0, 0, 0), 0);
	cr_assert_eq(run_local(argv, &g), 125);
	cr_assert(strstr(buf_cstr(&g.diag), "without an exit status"), "%s", buf_cstr(&g.diag));
	sandbox_argv_free(argv);
	got_free(&g);
	sandbox_request_free(r);
}

Test(sandbox_command, traversal_and_bad_env_refused)
{
	sandbox_request *r = req1();
	char **argv = NULL;

	r->commands[0].shell = strdup("true");
	r->commands[0].workdir = strdup("../etc");
	cr_assert_eq(sandbox_command_argv(&argv, r, 0, 0, 0), ERR_INVALID);
	cr_assert_null(argv);
	free(r->commands[0].workdir);
	r->commands[0].workdir = NULL;
	r->commands[0].env = calloc(1, sizeof(sandbox_kv));
	r->commands[0].env_count = 1;
	r->commands[0].env[0].name = strdup("A=B");
	r->commands[0].env[0].value = strdup("x");
	cr_assert_eq(sandbox_command_argv(&argv, r, 0, 0, 0), ERR_INVALID);
	sandbox_request_free(r);
}
