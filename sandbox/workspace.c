/*
 * workspace: libgit2 in, libgit2 out (see workspace.h for the flow).
 *
 * Layout on the runner:
 *   CACHE/KEY.git                  KEY = sha256(url)[:32]; bare repository, one per URL, shared by
 *                                  runs; CACHE/<key>.lock serialises fetches
 *                                  (flock: works across threads and processes)
 *   SCRATCH/cifix-ws-XXXXXX        this run's scratch, removed at the end:
 *     repo/.git                    a scratch repository whose object database
 *                                  borrows the cache's objects (alternates) and
 *                                  writes new ones to memory (mempack)
 *     repo (work tree)             only .gitignore files, so libgit2's ignore
 *                                  rules see what the workspace's say
 *
 * Fetch refspecs: heads into refs/remotes/origin, tags into refs/tags,
 * pruned, like a mirror of what a clone sees; a ref outside heads and tags
 * (refs/pull/1/head) is fetched by name.
 */
#include "sandbox/workspace.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>
#include <git2/sys/mempack.h>
#include <openssl/sha.h>

#include "sandbox/tar.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

struct sandbox_workspace {
	/* Strings of their own (path_keep), not 4 KiB arrays: three arrays
	 * kept 12 KiB per run in flight resident (a string at the start of
	 * each page), 11 MiB of serve's heap at 1,000 runs (bench part 4). */
	char *scratch;            /* this run's scratch directory */
	char *repo_dir;           /* scratch/repo */
	char *cache_git;          /* the bare cache repository */
	int has_repo;
	char commit[GIT_OID_HEXSZ + 1];
	git_repository *repo;     /* the scratch repository */
	git_odb_backend *mempack; /* owned by repo's odb */
	git_tree *base;           /* NULL without a repository */
	buf upload;

	/* collect */
	sandbox_tar_reader *reader;
	git_index *index;
	size_t max_file;
	uint64_t max_total;
	int collect_failed;
	size_t gitignores;        /* .gitignore files seen in the download */
	char **gi_paths;
	size_t gi_count, gi_alloc;
};

/* snprintf into a path buffer; a path that does not fit is an error. */
static int pathf(char *out, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int pathf(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		return err_set(ERR_INVALID, "path too long: %.100s", out);
	return 0;
}

/* Keep p, a path made with str_printf, in *out (the workspace frees it),
 * with pathf's limit: a path of 4,096 bytes or more is refused. */
static int path_keep(char **out, char *p)
{
	if (!p)
		return err_set(ERR_NOMEM, "out of memory");
	if (strlen(p) >= 4096) {
		err_set(ERR_INVALID, "path too long: %.100s", p);
		free(p);
		return ERR_INVALID;
	}
	free(*out);
	*out = p;
	return 0;
}

static int git_fail(const char *what)
{
	const git_error *e = git_error_last();

	return err_set(ERR_FAIL, "%s: %s", what, e && e->message ? e->message : "libgit2 error");
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void rm_rf(const char *dir)
{
	if (dir && *dir)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[4096];

	if (str_copy(tmp, sizeof(tmp), path) != 0)
		return err_set(ERR_INVALID, "path too long: %.100s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) != 0 && errno != EEXIST)
			return err_set(ERR_FAIL, "mkdir %s: %s", tmp, strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST)
		return err_set(ERR_FAIL, "mkdir %s: %s", tmp, strerror(errno));
	return 0;
}

/* ---- fetch ----------------------------------------------------------------- */

typedef struct fetch_ctx {
	sandbox_cancel *cancel;
	int64_t deadline_ms;
	int stopped; /* 1 cancelled, 2 deadline */
} fetch_ctx;

static int fetch_progress(const git_indexer_progress *st, void *payload)
{
	fetch_ctx *f = payload;

	(void)st;
	if (sandbox_cancel_requested(f->cancel)) {
		f->stopped = 1;
		return -1;
	}
	if (f->deadline_ms && clock_remaining_ms(f->deadline_ms) == 0) {
		f->stopped = 2;
		return -1;
	}
	return 0;
}

static int fetch_sideband(const char *str, int len, void *payload)
{
	(void)str;
	(void)len;
	return fetch_progress(NULL, payload);
}

/* libgit2 wants a path or a URL: file:// and absolute paths go as they are. */
static int fetch_into(git_repository *cache, const sandbox_repo *r, fetch_ctx *f,
		      char *default_branch, size_t dbsize)
{
	git_remote *remote = NULL;
	git_fetch_options fo;
	git_remote_create_options ro;
	char extra[600];
	char *specs[3] = { "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*", NULL };
	git_strarray sa = { specs, 2 };
	git_buf db = GIT_BUF_INIT;
	int rc = 0;

	if (r->ref && str_has_prefix(r->ref, "refs/") && !str_has_prefix(r->ref, "refs/heads/") &&
	    !str_has_prefix(r->ref, "refs/tags/")) {
		snprintf(extra, sizeof(extra), "+%s:%s", r->ref, r->ref);
		specs[2] = extra;
		sa.count = 3;
	}
	git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
	fo.prune = GIT_FETCH_PRUNE;
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE; /* the refspec brings them */
	fo.callbacks.transfer_progress = fetch_progress;
	fo.callbacks.sideband_progress = fetch_sideband;
	fo.callbacks.payload = f;
	/* An anonymous remote, without the url.*.insteadOf rewrites: the URL
	 * fetched is the one the request names, whatever the host's git
	 * config says. It also skips libgit2 1.5's insteadOf scan, whose
	 * git_regexp_match() leaks a pcre2 match block (~20 KiB) on every
	 * non-matching config entry (src/util/regexp.c returns before
	 * pcre2_match_data_free): two per run, LeakSanitizer's only report. */
	git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	ro.repository = cache;
	ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
	if (git_remote_create_with_opts(&remote, r->url, &ro) != 0) {
		rc = git_fail("repo.url");
		goto done;
	}
	if (git_remote_fetch(remote, &sa, &fo, "ci-fixer fetch") != 0) {
		if (f->stopped == 1)
			rc = err_set(ERR_CANCELLED, "fetch of %s cancelled", r->url);
		else if (f->stopped == 2)
			rc = err_set(ERR_TIMEOUT, "fetch of %s: run deadline passed", r->url);
		else
			rc = git_fail("fetching the repository");
		goto done;
	}
	default_branch[0] = '\0';
	if (git_remote_default_branch(&db, remote) == 0 && db.ptr)
		str_copy(default_branch, dbsize, db.ptr);
done:
	git_buf_dispose(&db);
	git_remote_free(remote);
	return rc;
}

/* Resolve what to check out into *oid. */
static int resolve(git_oid *oid, git_repository *cache, const sandbox_repo *r,
		   const char *default_branch)
{
	char cand[3][600];
	int n = 0;
	git_object *obj = NULL;

	if (r->commit) {
		git_commit *c = NULL;

		if (git_oid_fromstr(oid, r->commit) != 0)
			return err_set(ERR_INVALID, "repo.commit: not a sha");
		if (git_commit_lookup(&c, cache, oid) != 0)
			return err_set(ERR_NOTFOUND,
				       "repo.commit: %s is not in %s (not reachable from any branch or tag)",
				       r->commit, r->url);
		git_commit_free(c);
		return 0;
	}
	if (!r->ref) {
		if (!default_branch[0])
			return err_set(ERR_NOTFOUND, "repo: %s has no default branch (HEAD); give a ref",
				       r->url);
		if (str_has_prefix(default_branch, "refs/heads/"))
			snprintf(cand[n++], sizeof(cand[0]), "refs/remotes/origin/%s", default_branch + 11);
		else
			snprintf(cand[n++], sizeof(cand[0]), "%s", default_branch);
	} else if (str_has_prefix(r->ref, "refs/heads/")) {
		snprintf(cand[n++], sizeof(cand[0]), "refs/remotes/origin/%s", r->ref + 11);
	} else if (str_has_prefix(r->ref, "refs/")) {
		snprintf(cand[n++], sizeof(cand[0]), "%s", r->ref);
	} else {
		snprintf(cand[n++], sizeof(cand[0]), "refs/remotes/origin/%s", r->ref);
		snprintf(cand[n++], sizeof(cand[0]), "refs/tags/%s", r->ref);
	}
	for (int i = 0; i < n; i++) {
		git_reference *ref = NULL;

		if (git_reference_lookup(&ref, cache, cand[i]) != 0)
			continue;
		int prc = git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT);

		git_reference_free(ref);
		if (prc == 0) {
			git_oid_cpy(oid, git_object_id(obj));
			git_object_free(obj);
			return 0;
		}
	}
	return err_set(ERR_NOTFOUND, "repo.ref: \"%s\" is neither a branch nor a tag of %s",
		       r->ref ? r->ref : default_branch, r->url);
}

static int cache_key(char out[33], const char *url)
{
	unsigned char md[32];
	char hex[65];

	SHA256((const unsigned char *)url, strlen(url), md);
	str_hex(hex, md, 32);
	memcpy(out, hex, 32);
	out[32] = '\0';
	return 0;
}

/* Fetch (or reuse) under the cache lock and resolve the commit. */
static int fetch_and_resolve(sandbox_workspace *ws, const sandbox_config *cfg,
			     const sandbox_repo *r, sandbox_cancel *cancel, int64_t deadline_ms)
{
	char key[33], lockpath[4200], default_branch[512] = "";
	git_repository *cache = NULL;
	git_oid oid;
	int lockfd = -1, rc = 0;
	fetch_ctx f = { cancel, deadline_ms, 0 };

	cache_key(key, r->url);
	if (cfg->repo_cache_dir && *cfg->repo_cache_dir) {
		if ((rc = mkdir_p(cfg->repo_cache_dir, 0700)) != 0)
			return err_wrap(rc, "repository cache");
		if (path_keep(&ws->cache_git, str_printf("%s/%s.git", cfg->repo_cache_dir, key)) ||
		    pathf(lockpath, sizeof(lockpath), "%s/%s.lock", cfg->repo_cache_dir, key))
			return ERR_INVALID;
	} else {
		if (path_keep(&ws->cache_git, str_printf("%s/cache.git", ws->scratch)) ||
		    pathf(lockpath, sizeof(lockpath), "%s/cache.lock", ws->scratch))
			return ERR_INVALID;
	}
	lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lockfd < 0)
		return err_set(ERR_FAIL, "repository cache lock %s: %s", lockpath, strerror(errno));
	while (flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
		if (sandbox_cancel_requested(cancel)) {
			rc = err_set(ERR_CANCELLED, "cancelled while waiting for the repository cache");
			goto done;
		}
		if (deadline_ms && clock_remaining_ms(deadline_ms) == 0) {
			rc = err_set(ERR_TIMEOUT, "run deadline passed waiting for the repository cache");
			goto done;
		}
		/* another run fetches the same URL; it holds the lock for one fetch */
		clock_sleep_ms(100);
	}
	if (git_repository_open_bare(&cache, ws->cache_git) != 0) {
		rm_rf(ws->cache_git);
		if (git_repository_init(&cache, ws->cache_git, 1) != 0) {
			rc = git_fail("creating the repository cache");
			goto done;
		}
	}
	/* a commit already in the cache needs no fetch; a ref always does */
	if (r->commit && !r->ref) {
		git_commit *c = NULL;

		if (git_oid_fromstr(&oid, r->commit) == 0 && git_commit_lookup(&c, cache, &oid) == 0) {
			git_commit_free(c);
			goto resolved;
		}
	}
	if ((rc = fetch_into(cache, r, &f, default_branch, sizeof(default_branch))) != 0)
		goto done;
	if ((rc = resolve(&oid, cache, r, default_branch)) != 0)
		goto done;
resolved:
	git_oid_tostr(ws->commit, sizeof(ws->commit), &oid);
done:
	git_repository_free(cache);
	if (lockfd >= 0)
		close(lockfd); /* releases the flock */
	return rc;
}

/* ---- the upload tar ---------------------------------------------------- */

typedef struct walk_ctx {
	sandbox_workspace *ws;
	int64_t mtime;
	int rc;
} walk_ctx;

static int write_gitignore(sandbox_workspace *ws, const char *path, const void *data, size_t len)
{
	char full[8192], dir[8192];
	FILE *f;
	char *slash;

	if (pathf(full, sizeof(full), "%s/%s", ws->repo_dir, path))
		return ERR_INVALID;
	str_copy(dir, sizeof(dir), full);
	slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		if (mkdir_p(dir, 0700) != 0)
			return ERR_FAIL;
	}
	f = fopen(full, "wb");
	if (!f)
		return err_set(ERR_FAIL, "writing %s: %s", full, strerror(errno));
	if (len && fwrite(data, 1, len, f) != len) {
		fclose(f);
		return err_set(ERR_FAIL, "writing %s", full);
	}
	fclose(f);
	return 0;
}

static int walk_cb(const char *root, const git_tree_entry *e, void *payload)
{
	walk_ctx *w = payload;
	char path[8192];
	git_blob *blob = NULL;
	git_filemode_t mode = git_tree_entry_filemode(e);
	const char *name = git_tree_entry_name(e);

	if ((w->rc = pathf(path, sizeof(path), "%s%s", root, name)) != 0)
		return -1;
	switch (mode) {
	case GIT_FILEMODE_TREE:
		w->rc = sandbox_tar_add_dir(&w->ws->upload, path, 0755, w->mtime);
		break;
	case GIT_FILEMODE_COMMIT:
		/* a submodule: an empty directory, as a clone without
		 * --recurse-submodules leaves it */
		w->rc = sandbox_tar_add_dir(&w->ws->upload, path, 0755, w->mtime);
		return w->rc ? -1 : 1;
	case GIT_FILEMODE_BLOB:
	case GIT_FILEMODE_BLOB_EXECUTABLE:
	case GIT_FILEMODE_LINK:
		if (git_blob_lookup(&blob, w->ws->repo, git_tree_entry_id(e)) != 0) {
			w->rc = git_fail(path);
			return -1;
		}
		if (mode == GIT_FILEMODE_LINK) {
			char *target = str_ndup(git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob));

			w->rc = target ? sandbox_tar_add_symlink(&w->ws->upload, path, target, w->mtime)
				       : ERR_NOMEM;
			free(target);
		} else {
			w->rc = sandbox_tar_add_file(&w->ws->upload, path,
						     mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0755 : 0644,
						     w->mtime, git_blob_rawcontent(blob),
						     (size_t)git_blob_rawsize(blob));
			if (!w->rc && strcmp(name, ".gitignore") == 0)
				w->rc = write_gitignore(w->ws, path, git_blob_rawcontent(blob),
							(size_t)git_blob_rawsize(blob));
		}
		git_blob_free(blob);
		break;
	default:
		break;
	}
	if (w->rc == ERR_TOOBIG)
		err_set(ERR_TOOBIG, "the repository's tree is larger than the %zu-byte workspace cap",
			w->ws->upload.max);
	return w->rc ? -1 : 0;
}

/* ---- prepare --------------------------------------------------------------- */

static int scratch_repo_open(sandbox_workspace *ws)
{
	git_odb *odb = NULL;
	char alt[4200];
	int rc = 0;

	if (git_repository_init(&ws->repo, ws->repo_dir, 0) != 0)
		return git_fail("creating the scratch repository");
	if (git_repository_odb(&odb, ws->repo) != 0)
		return git_fail("scratch object database");
	if (ws->has_repo) {
		if (pathf(alt, sizeof(alt), "%s/objects", ws->cache_git) != 0 ||
		    git_odb_add_disk_alternate(odb, alt) != 0) {
			rc = git_fail("linking the repository cache");
			goto done;
		}
	}
	if (git_mempack_new(&ws->mempack) != 0 || git_odb_add_backend(odb, ws->mempack, 999) != 0) {
		rc = git_fail("in-memory object store");
		goto done;
	}
done:
	git_odb_free(odb);
	return rc;
}

int sandbox_workspace_prepare(sandbox_workspace **out, const sandbox_config *cfg,
			      const sandbox_repo *repo, sandbox_cancel *cancel, int64_t deadline_ms)
{
	sandbox_workspace *ws = calloc(1, sizeof(*ws));
	const char *tmp = cfg->scratch_dir && *cfg->scratch_dir ? cfg->scratch_dir : getenv("TMPDIR");
	git_commit *commit = NULL;
	int rc = 0;

	*out = NULL;
	if (!ws)
		return err_set(ERR_NOMEM, "out of memory");
	git_libgit2_init();
	buf_init(&ws->upload, cfg->workspace_cap ? cfg->workspace_cap : (512u << 20));
	ws->max_file = cfg->workspace_cap ? cfg->workspace_cap : (512u << 20);
	ws->max_total = ws->max_file;
	if (!tmp || !*tmp)
		tmp = "/tmp";
	if ((rc = mkdir_p(tmp, 0700)) != 0)
		goto done;
	if ((rc = path_keep(&ws->scratch, str_printf("%s/cifix-ws-XXXXXX", tmp))) != 0)
		goto done;
	if (!mkdtemp(ws->scratch)) {
		rc = err_set(ERR_FAIL, "scratch directory under %s: %s", tmp, strerror(errno));
		free(ws->scratch);
		ws->scratch = NULL;
		goto done;
	}
	if ((rc = path_keep(&ws->repo_dir, str_printf("%s/repo", ws->scratch))) != 0)
		goto done;
	ws->has_repo = repo && repo->url;
	if (ws->has_repo &&
	    (rc = fetch_and_resolve(ws, cfg, repo, cancel, deadline_ms)) != 0)
		goto done;
	if ((rc = scratch_repo_open(ws)) != 0)
		goto done;
	if (ws->has_repo) {
		git_oid oid;
		walk_ctx w = { ws, 0, 0 };

		git_oid_fromstr(&oid, ws->commit);
		if (git_commit_lookup(&commit, ws->repo, &oid) != 0 ||
		    git_commit_tree(&ws->base, commit) != 0) {
			rc = git_fail("reading the commit");
			goto done;
		}
		w.mtime = (int64_t)git_commit_time(commit);
		if (git_tree_walk(ws->base, GIT_TREEWALK_PRE, walk_cb, &w) != 0) {
			rc = w.rc ? w.rc : git_fail("reading the tree");
			goto done;
		}
	}
	if ((rc = sandbox_tar_finish(&ws->upload)) != 0) {
		rc = err_set(ERR_TOOBIG, "the repository's tree is larger than the workspace cap");
		goto done;
	}
done:
	git_commit_free(commit);
	if (rc) {
		sandbox_workspace_free(ws);
		return rc;
	}
	*out = ws;
	return 0;
}

const char *sandbox_workspace_commit(const sandbox_workspace *ws)
{
	return ws && ws->has_repo ? ws->commit : NULL;
}

const char *sandbox_workspace_upload(const sandbox_workspace *ws, size_t *len)
{
	*len = ws->upload.len;
	return buf_cstr(&ws->upload);
}

void sandbox_workspace_drop_upload(sandbox_workspace *ws)
{
	if (ws)
		buf_free(&ws->upload);
}

/* ---- collect ------------------------------------------------------------- */

static int has_git_component(const char *path)
{
	const char *p = path;

	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n == 4 && memcmp(p, ".git", 4) == 0)
			return 1;
		if (!e)
			break;
		p = e + 1;
	}
	return 0;
}

/* 1 when the base tree has path with this oid and mode (so unchanged). */
static int in_base(const sandbox_workspace *ws, const char *path, const git_oid *oid,
		   uint32_t mode, int *tracked)
{
	git_tree_entry *te = NULL;
	int same = 0;

	*tracked = 0;
	if (!ws->base || git_tree_entry_bypath(&te, ws->base, path) != 0)
		return 0;
	*tracked = git_tree_entry_type(te) == GIT_OBJECT_BLOB;
	same = *tracked && git_oid_equal(git_tree_entry_id(te), oid) &&
	       (uint32_t)git_tree_entry_filemode(te) == mode;
	git_tree_entry_free(te);
	return same;
}

static int ignored(sandbox_workspace *ws, const char *path)
{
	int ign = 0;

	if (git_ignore_path_is_ignored(&ign, ws->repo, path) != 0)
		return 0;
	return ign;
}

static int add_index(sandbox_workspace *ws, const char *path, uint32_t mode, const git_oid *oid,
		     size_t size)
{
	git_index_entry e;

	memset(&e, 0, sizeof(e));
	e.path = path;
	e.mode = mode;
	e.file_size = (uint32_t)size;
	git_oid_cpy(&e.id, oid);
	if (git_index_add(ws->index, &e) != 0)
		return git_fail(path);
	return 0;
}

static int on_entry(void *ctx, const sandbox_tar_entry *e)
{
	sandbox_workspace *ws = ctx;
	git_oid oid;
	uint32_t mode;
	int tracked = 0;
	const void *data = e->data;
	size_t size = e->size;

	if (has_git_component(e->path))
		return 0;
	switch (e->type) {
	case SANDBOX_TAR_DIR:
		return 0; /* git has no empty directories */
	case SANDBOX_TAR_HARDLINK: {
		const git_index_entry *t = git_index_get_bypath(ws->index, e->linkname, 0);

		if (!t)
			return 0; /* its target was skipped (ignored or under .git) */
		return add_index(ws, e->path, t->mode, &t->id, t->file_size);
	}
	case SANDBOX_TAR_SYMLINK:
		mode = GIT_FILEMODE_LINK;
		data = e->linkname;
		size = strlen(e->linkname);
		break;
	default:
		mode = (e->mode & 0111) ? GIT_FILEMODE_BLOB_EXECUTABLE : GIT_FILEMODE_BLOB;
		break;
	}
	if (git_odb_hash(&oid, data, size, GIT_OBJECT_BLOB) != 0)
		return git_fail(e->path);
	if (!in_base(ws, e->path, &oid, mode, &tracked)) {
		const char *base = strrchr(e->path, '/');

		base = base ? base + 1 : e->path;
		if (strcmp(base, ".gitignore") == 0 && mode != GIT_FILEMODE_LINK) {
			int rc = write_gitignore(ws, e->path, data, size);

			if (rc)
				return rc;
		}
		if (!tracked && ignored(ws, e->path))
			return 0;
		git_oid written;

		if (git_blob_create_from_buffer(&written, ws->repo, data, size) != 0)
			return git_fail(e->path);
	}
	{
		const char *base = strrchr(e->path, '/');

		base = base ? base + 1 : e->path;
		if (strcmp(base, ".gitignore") == 0) {
			if (ws->gi_count == ws->gi_alloc) {
				size_t na = ws->gi_alloc ? ws->gi_alloc * 2 : 16;
				char **np = realloc(ws->gi_paths, na * sizeof(*np));

				if (!np)
					return err_set(ERR_NOMEM, "out of memory");
				ws->gi_paths = np;
				ws->gi_alloc = na;
			}
			if (!(ws->gi_paths[ws->gi_count++] = str_dup(e->path)))
				return err_set(ERR_NOMEM, "out of memory");
		}
	}
	return add_index(ws, e->path, mode, &oid, size);
}

int sandbox_workspace_collect_feed(sandbox_workspace *ws, const void *p, size_t n)
{
	int rc;

	if (ws->collect_failed)
		return err_set(ERR_INVALID, "workspace download already failed");
	if (!ws->reader) {
		if (git_index_new(&ws->index) != 0)
			return git_fail("in-memory index");
		if ((rc = sandbox_tar_reader_new(&ws->reader, ws->max_file, ws->max_total, on_entry,
						 ws)) != 0)
			return rc;
	}
	rc = sandbox_tar_reader_feed(ws->reader, p, n);
	if (rc)
		ws->collect_failed = 1;
	return rc;
}

/* .gitignore files of the base that the download no longer has: remove
 * them from the scratch work tree so the final ignore check is right. */
static int gitignore_walk(const char *root, const git_tree_entry *e, void *payload)
{
	sandbox_workspace *ws = payload;

	if (git_tree_entry_type(e) == GIT_OBJECT_BLOB &&
	    strcmp(git_tree_entry_name(e), ".gitignore") == 0) {
		char path[8192], full[8400];
		int present = 0;

		if (pathf(path, sizeof(path), "%s%s", root, git_tree_entry_name(e)))
			return 0;
		for (size_t i = 0; i < ws->gi_count && !present; i++)
			present = strcmp(ws->gi_paths[i], path) == 0;
		if (!present) {
			if (pathf(full, sizeof(full), "%s/%s", ws->repo_dir, path) == 0)
				unlink(full);
		}
	}
	return 0;
}

/* Gitlinks (submodules) of the base stay as they are: the pod only had an
 * empty directory for them. */
static int gitlink_walk(const char *root, const git_tree_entry *e, void *payload)
{
	sandbox_workspace *ws = payload;

	if (git_tree_entry_filemode(e) == GIT_FILEMODE_COMMIT) {
		char path[8192];

		if (pathf(path, sizeof(path), "%s%s", root, git_tree_entry_name(e)))
			return -1;
		if (add_index(ws, path, GIT_FILEMODE_COMMIT, git_tree_entry_id(e), 0) != 0)
			return -1;
		return 1;
	}
	return 0;
}

int sandbox_workspace_collect_patch(char **out, size_t *len, sandbox_workspace *ws,
				    size_t max_patch)
{
	git_oid tree_oid;
	git_tree *tree = NULL;
	git_diff *diff = NULL;
	git_diff_options dopt;
	git_buf patch = GIT_BUF_INIT;
	int rc = 0;

	*out = NULL;
	*len = 0;
	if (!ws->reader) /* nothing was fed: not even the end marker */
		return err_set(ERR_INVALID, "workspace download: empty stream");
	if ((rc = sandbox_tar_reader_finish(ws->reader)) != 0)
		return err_wrap(rc, "workspace download");
	if (ws->base) {
		git_tree_walk(ws->base, GIT_TREEWALK_PRE, gitignore_walk, ws);
		if (git_tree_walk(ws->base, GIT_TREEWALK_PRE, gitlink_walk, ws) < 0)
			return ERR_FAIL;
	}
	/* new files that the final .gitignore set ignores */
	for (size_t i = git_index_entrycount(ws->index); i-- > 0;) {
		const git_index_entry *e = git_index_get_byindex(ws->index, i);
		git_tree_entry *te = NULL;

		if (e->mode == GIT_FILEMODE_COMMIT)
			continue;
		if (ws->base && git_tree_entry_bypath(&te, ws->base, e->path) == 0) {
			git_tree_entry_free(te);
			continue;
		}
		if (ignored(ws, e->path) && git_index_remove(ws->index, e->path, 0) != 0)
			return git_fail("index");
	}
	if (git_index_write_tree_to(&tree_oid, ws->index, ws->repo) != 0 ||
	    git_tree_lookup(&tree, ws->repo, &tree_oid) != 0) {
		rc = git_fail("building the workspace tree");
		goto done;
	}
	/* binary files as "GIT binary patch" with full ids, so git apply can
	 * apply them (a bare "Binary files differ" cannot be applied) */
	git_diff_options_init(&dopt, GIT_DIFF_OPTIONS_VERSION);
	dopt.flags = GIT_DIFF_SHOW_BINARY;
	dopt.id_abbrev = GIT_OID_HEXSZ;
	if (git_diff_tree_to_tree(&diff, ws->repo, ws->base, tree, &dopt) != 0 ||
	    git_diff_to_buf(&patch, diff, GIT_DIFF_FORMAT_PATCH) != 0) {
		rc = git_fail("diffing the workspace");
		goto done;
	}
	if (max_patch && patch.size > max_patch) {
		rc = err_set(ERR_TOOBIG, "the patch is %zu bytes, over the %zu-byte cap", patch.size,
			     max_patch);
		goto done;
	}
	*out = str_ndup(patch.ptr ? patch.ptr : "", patch.size);
	if (!*out) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto done;
	}
	*len = patch.size;
done:
	git_buf_dispose(&patch);
	git_diff_free(diff);
	git_tree_free(tree);
	return rc;
}

void sandbox_workspace_free(sandbox_workspace *ws)
{
	if (!ws)
		return;
	sandbox_tar_reader_free(ws->reader);
	git_index_free(ws->index);
	git_tree_free(ws->base);
	git_repository_free(ws->repo); /* frees the odb and the mempack in it */
	buf_free(&ws->upload);
	for (size_t i = 0; i < ws->gi_count; i++)
		free(ws->gi_paths[i]);
	free(ws->gi_paths);
	if (ws->scratch)
		rm_rf(ws->scratch);
	free(ws->scratch);
	free(ws->repo_dir);
	free(ws->cache_git);
	free(ws);
	git_libgit2_shutdown();
}

/* libgit2 keeps per-thread state (its error buffer) freed by a thread-exit
 * destructor, and its last git_libgit2_shutdown() deletes that key: a
 * process whose workspaces each init and shut libgit2 down, while its
 * worker threads live on, lost every worker's state at each cycle (serve
 * under LeakSanitizer: 4 workers x ~270 bytes). One process-wide
 * reference keeps the count above zero until exit. */
void sandbox_workspace_global_init(void)
{
	git_libgit2_init();
}

void sandbox_workspace_global_cleanup(void)
{
	git_libgit2_shutdown();
}
