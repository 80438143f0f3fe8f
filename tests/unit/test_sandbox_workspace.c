/* sandbox/workspace against real git repositories made here, real libgit2
 * and the real tar and git binaries to check both directions. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/workspace.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/str.h"

static char root[64];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static char *out_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *out_of(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	buf b = BUF_INIT(1 << 20);
	char tmp[4096];
	size_t n;
	FILE *p;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	while ((n = fread(tmp, 1, sizeof(tmp), p)) > 0)
		buf_append(&b, tmp, n);
	pclose(p);
	while (b.len && b.data[b.len - 1] == '\n')
		b.data[--b.len] = '\0';
	return buf_take(&b, NULL);
}

#define GIT "git -c user.name=t -c user.email=t@e -c init.defaultBranch=main -c advice.detachedHead=false"

static void setup(void)
{
	strcpy(root, "/tmp/sbws-XXXXXX");
	cr_assert_not_null(mkdtemp(root));
	cr_assert_eq(sh("cd %s && " GIT " init -q origin && cd origin && "
			"printf 'hello\\n' > a.txt && mkdir -p bin sub/deep && "
			"printf '#!/bin/sh\\necho hi\\n' > bin/run.sh && chmod +x bin/run.sh && "
			"printf 'node_modules/\\n*.log\\n' > .gitignore && "
			"printf 'keep\\n' > sub/deep/keep.txt && printf 'gone\\n' > sub/gone.txt && "
			"head -c 3000 /dev/urandom > blob.bin && ln -s a.txt link && "
			GIT " add -A && " GIT " commit -qm base && " GIT " tag v1 && "
			GIT " checkout -qb feature && printf 'feat\\n' > feat.txt && " GIT " add -A && "
			GIT " commit -qm feat && " GIT " checkout -q main", root), 0);
}

static void teardown(void)
{
	sh("rm -rf %s", root);
}

TestSuite(sandbox_workspace, .init = setup, .fini = teardown);

static sandbox_config cfg_for(char *cache)
{
	sandbox_config cfg;

	sandbox_config_init(&cfg);
	cfg.repo_cache_dir = cache;
	cfg.scratch_dir = root;
	return cfg;
}

/* Write the upload tar to DIR/name.tar and extract it into DIR/name. */
static void extract_upload(sandbox_workspace *ws, const char *name)
{
	size_t len;
	const char *p = sandbox_workspace_upload(ws, &len);
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.tar", root, name);
	f = fopen(path, "wb");
	fwrite(p, 1, len, f);
	fclose(f);
	cr_assert_eq(sh("mkdir -p %s/%s && tar -x -C %s/%s -f %s", root, name, root, name, path), 0);
}

/* Tar DIR/name with GNU tar (as the pod does) and feed it in odd pieces. */
static void feed_dir(sandbox_workspace *ws, const char *name)
{
	char path[256];
	FILE *f;
	char tmp[777];
	size_t n;

	snprintf(path, sizeof(path), "%s/%s.out.tar", root, name);
	cr_assert_eq(sh("tar -c -C %s/%s -f %s .", root, name, path), 0);
	f = fopen(path, "rb");
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		cr_assert_eq(sandbox_workspace_collect_feed(ws, tmp, n), 0, "%s", err_msg());
	fclose(f);
}

Test(sandbox_workspace, default_branch_uploaded_exactly_as_git_checks_it_out)
{
	char cache[128];
	sandbox_workspace *ws;
	sandbox_repo r = { 0 };
	char url[128];

	snprintf(cache, sizeof(cache), "%s/cache", root);
	snprintf(url, sizeof(url), "%s/origin", root);
	r.url = url;
	sandbox_config cfg = cfg_for(cache);
	cr_assert_eq(sandbox_workspace_prepare(&ws, &cfg, &r, NULL, 0), 0, "%s", err_msg());
	char *head = out_of("git -C %s/origin rev-parse main", root);
	cr_assert_str_eq(sandbox_workspace_commit(ws), head);
	extract_upload(ws, "up");
	cr_assert_eq(sh(GIT " clone -q %s/origin %s/ref && rm -rf %s/ref/.git && diff -r --no-dereference %s/ref %s/up",
			root, root, root, root, root), 0);
	cr_assert_eq(sh("test -x %s/up/bin/run.sh && test \"$(readlink %s/up/link)\" = a.txt", root, root), 0);
	free(head);
	sandbox_workspace_free(ws);
	/* the scratch directory is gone */
	cr_assert_eq(sh("test -z \"$(ls -d %s/cifix-ws-* 2>/dev/null)\"", root), 0);
}

Test(sandbox_workspace, ref_tag_commit_and_file_url_resolve)
{
	char cache[128], url[160], furl[160];
	sandbox_workspace *ws;
	sandbox_repo r = { 0 };
	sandbox_config cfg;

	snprintf(cache, sizeof(cache), "%s/cache", root);
	snprintf(url, sizeof(url), "%s/origin", root);
	snprintf(furl, sizeof(furl), "file://%s/origin", root);
	cfg = cfg_for(cache);
	char *feat = out_of("git -C %s/origin rev-parse feature", root);
	char *v1 = out_of("git -C %s/origin rev-parse v1^{commit}", root);

	r.url = furl;
	r.ref = "feature";
	cr_assert_eq(sandbox_workspace_prepare(&ws, &cfg, &r, NULL, 0), 0, "%s", err_msg());
	cr_assert_str_eq(sandbox_workspace_commit(ws), feat);
	sandbox_workspace_free(ws);

	r.url = url;
	r.ref = "refs/heads/feature";
	cr_assert_eq(sandbox_workspace_prepare(&ws, &cfg, &r, NULL, 0), 0, "%s", err_msg());
	cr_assert_str_eq(sandbox_workspace_commit(ws), feat);
	sandbox_workspace_free(ws);

	r.ref = "v1";
	cr_assert_eq(sandbox_workspace_prepare(&ws, &cfg, &r, NULL, 0), 0, "%s", err_msg());
	cr_assert_str_eq(sandbox_workspace_commit(ws), v1);
	sandbox_workspace_free(ws);

	r.ref = NULL;
	r.commit = v1;
	cr_assert_eq(sandbox_workspace_prepare(&ws, &cfg, &r, NULL, 0), 0, "%s", err_msg());
	cr_assert_str_eq(sandbox_workspace_commit(ws), v1);
	sandbox_workspace_free(ws);

	r.commit = NULL;
	r.ref = "no-such-branch";
	cr_assert_eq(sandbox_workspace_prepare(&ws, &cfg, &r, NULL, 0), ERR_NOTFOUND);
	cr_assert(strstr(err_msg(), "no-such-branch"), "%s", err_msg());

	r.ref = NULL;
	r.commit = "0123456789abcdef0123456789abcdef01234567";
	cr_assert_eq(sandbox_workspace_prepare(&ws, &cfg, &r, NULL, 0), ERR_NOTFOUND);

	r.commit = NULL;
	snprintf(url, sizeof(url), "%s/nothing-here", root);
	cr_assert_eq(sandbox_workspace_prepare(&ws, &cfg, &r, NULL, 0), ERR_FAIL);
	cr_assert_neq(strlen(err_msg()), 0);
	free(feat);
	free(v1);
}

Test(sandbox_workspace, cache_fetches_new_commits)
{
	char cache[128], url[160];
	sandbox_workspace *ws;
	sandbox_repo r = { 0 };
	sandbox_config cfg;

	snprintf(cache, sizeof(cache), "%s/cache", root);
	snprintf(url, sizeof(url), "%s/origin", root);
	cfg = cfg_for(cache);
	r.url = url;
	r.ref = "main";
	cr_assert_eq(sandbox_workspace_prepare(&ws, &cfg, &r, NULL, 0), 0, "%s", err_msg());
	sandbox_workspace_free(ws);
	cr_assert_eq(sh("cd %s/origin && printf x > new.txt && " GIT " add -A && " GIT " commit -qm more", root), 0);
	char *head = out_of("git -C %s/origin rev-parse main", root);
	cr_assert_eq(sandbox_workspace_prepare(&ws, &cfg, &r, NULL, 0), 0, "%s", err_msg());
	cr_assert_str_eq(sandbox_workspace_commit(ws), head);
	/* one cache repository for the URL */
	cr_assert_eq(sh("test $(ls -d %s/*.git | wc -l) -eq 1", cache), 0);
	free(head);
	sandbox_workspace_free(ws);
}

Test(sandbox_workspace, cancel_before_fetch_stops_it)
{
	sandbox_cancel *c;
	sandbox_workspace *ws;
	sandbox_repo r = { 0 };
	char url[160];
	sandbox_config cfg = cfg_for(NULL);

	snprintf(url, sizeof(url), "%s/origin", root);
	r.url = url;
	cr_assert_eq(sandbox_cancel_new(&c), 0);
	sandbox_cancel_request(c, NULL);
	int rc = sandbox_workspace_prepare(&ws, &cfg, &r, c, 0);
	/* the local transport may finish before its first progress callback */
	cr_assert(rc == ERR_CANCELLED || rc == 0, "%d %s", rc, err_msg());
	if (rc == 0)
		sandbox_workspace_free(ws);
	sandbox_cancel_free(c);
}

Test(sandbox_workspace, patch_applies_on_the_base_commit)
{
	char url[160];
	sandbox_workspace *ws;
	sandbox_repo r = { 0 };
	sandbox_config cfg = cfg_for(NULL);
	char *patch;
	size_t len;

	snprintf(url, sizeof(url), "%s/origin", root);
	r.url = url;
	cr_assert_eq(sandbox_workspace_prepare(&ws, &cfg, &r, NULL, 0), 0, "%s", err_msg());
	extract_upload(ws, "w");
	/* what commands in the pod might do */
	cr_assert_eq(sh("cd %s/w && printf 'hello\\nworld\\n' > a.txt && rm sub/gone.txt && "
			"printf 'new\\n' > sub/deep/new.txt && mkdir -p node_modules/x && "
			"printf 'dep' > node_modules/x/i.js && printf 'log' > build.log && "
			"head -c 2000 /dev/urandom > blob.bin && chmod +x a.txt && "
			"printf 'x\\n' > 'with space.txt' && mkdir empty && "
			"printf '*.tmp\\n' > sub/.gitignore && printf t > sub/t.tmp && "
			"mkdir -p .git && printf junk > .git/HEAD", root), 0);
	feed_dir(ws, "w");
	cr_assert_eq(sandbox_workspace_collect_patch(&patch, &len, ws, 16 << 20), 0, "%s", err_msg());
	cr_assert_eq(strlen(patch), len);
	cr_assert(strstr(patch, "diff --git a/a.txt b/a.txt"));
	cr_assert(strstr(patch, "deleted file mode 100644"));
	cr_assert(strstr(patch, "new file mode 100644"));
	cr_assert(strstr(patch, "GIT binary patch"));
	cr_assert(strstr(patch, "sub/.gitignore"));
	cr_assert_null(strstr(patch, "node_modules"), "ignored files leaked into the patch");
	cr_assert_null(strstr(patch, "build.log"));
	cr_assert_null(strstr(patch, "t.tmp"));
	cr_assert_null(strstr(patch, ".git/HEAD"));
	/* git apply on a fresh checkout of the base gives the pod's tree */
	FILE *f;
	char pf[200];
	snprintf(pf, sizeof(pf), "%s/p.diff", root);
	f = fopen(pf, "wb");
	fwrite(patch, 1, len, f);
	fclose(f);
	cr_assert_eq(sh(GIT " clone -q %s/origin %s/check && cd %s/check && git apply --check %s && "
			"git apply %s", root, root, root, pf, pf), 0, "git apply refused:\n%s", patch);
	cr_assert_eq(sh("cd %s && rm -rf w/node_modules w/build.log w/sub/t.tmp w/.git w/empty check/.git && "
			"diff -r --no-dereference w check", root), 0);
	cr_assert_eq(sh("test -x %s/check/a.txt", root), 0);
	free(patch);
	sandbox_workspace_free(ws);
}

Test(sandbox_workspace, unchanged_workspace_gives_an_empty_patch)
{
	char url[160];
	sandbox_workspace *ws;
	sandbox_repo r = { 0 };
	sandbox_config cfg = cfg_for(NULL);
	char *patch;
	size_t len;

	snprintf(url, sizeof(url), "%s/origin", root);
	r.url = url;
	cr_assert_eq(sandbox_workspace_prepare(&ws, &cfg, &r, NULL, 0), 0, "%s", err_msg());
	extract_upload(ws, "u");
	feed_dir(ws, "u");
	cr_assert_eq(sandbox_workspace_collect_patch(&patch, &len, ws, 0), 0, "%s", err_msg());
	cr_assert_eq(len, 0, "%s", patch);
	free(patch);
	sandbox_workspace_free(ws);
}

Test(sandbox_workspace, no_repo_patch_adds_everything)
{
	sandbox_workspace *ws;
	sandbox_config cfg = cfg_for(NULL);
	char *patch;
	size_t len;

	cr_assert_eq(sandbox_workspace_prepare(&ws, &cfg, NULL, NULL, 0), 0, "%s", err_msg());
	cr_assert_null(sandbox_workspace_commit(ws));
	extract_upload(ws, "e");
	cr_assert_eq(sh("test -z \"$(ls -A %s/e)\"", root), 0);
	cr_assert_eq(sh("cd %s/e && printf 'one\\n' > f.txt && mkdir d && printf 'two\\n' > d/g.txt", root), 0);
	feed_dir(ws, "e");
	cr_assert_eq(sandbox_workspace_collect_patch(&patch, &len, ws, 0), 0, "%s", err_msg());
	cr_assert(strstr(patch, "+++ b/f.txt"));
	cr_assert(strstr(patch, "+++ b/d/g.txt"));
	char pf[200];
	snprintf(pf, sizeof(pf), "%s/n.diff", root);
	FILE *f = fopen(pf, "wb");
	fwrite(patch, 1, len, f);
	fclose(f);
	cr_assert_eq(sh("mkdir %s/na && cd %s/na && " GIT " init -q && git apply %s && "
			"test \"$(cat d/g.txt)\" = two", root, root, pf), 0);
	free(patch);
	sandbox_workspace_free(ws);
}

Test(sandbox_workspace, truncated_download_is_refused)
{
	sandbox_workspace *ws;
	sandbox_config cfg = cfg_for(NULL);
	char *patch;
	size_t len;
	char path[200], tmp[100000];
	FILE *f;
	size_t n;

	cr_assert_eq(sandbox_workspace_prepare(&ws, &cfg, NULL, NULL, 0), 0, "%s", err_msg());
	cr_assert_eq(sh("mkdir %s/t && head -c 50000 /dev/urandom > %s/t/big && tar -c -C %s/t -f %s/t.tar .",
			root, root, root, root), 0);
	snprintf(path, sizeof(path), "%s/t.tar", root);
	f = fopen(path, "rb");
	n = fread(tmp, 1, 30000, f);
	fclose(f);
	cr_assert_eq(sandbox_workspace_collect_feed(ws, tmp, n), 0);
	cr_assert_eq(sandbox_workspace_collect_patch(&patch, &len, ws, 0), ERR_INVALID);
	cr_assert(strstr(err_msg(), "truncated"), "%s", err_msg());
	cr_assert_null(patch);
	sandbox_workspace_free(ws);
}

Test(sandbox_workspace, patch_cap_enforced)
{
	sandbox_workspace *ws;
	sandbox_config cfg = cfg_for(NULL);
	char *patch;
	size_t len;

	cr_assert_eq(sandbox_workspace_prepare(&ws, &cfg, NULL, NULL, 0), 0);
	cr_assert_eq(sh("mkdir %s/c && seq 1 10000 > %s/c/f", root, root), 0);
	feed_dir(ws, "c");
	cr_assert_eq(sandbox_workspace_collect_patch(&patch, &len, ws, 1000), ERR_TOOBIG);
	sandbox_workspace_free(ws);
}
