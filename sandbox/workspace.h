/*
 * workspace: the code going into the pod and the changes coming back.
 *
 * In (DESIGN.md step 2): libgit2 clones or fetches the repository into a
 * cache on the runner (one bare repository per URL, under a file lock),
 * resolves the requested commit or ref, and writes the commit's tree as a
 * tar stream (sandbox/tar.h) to upload; without a repository the stream is
 * an empty archive.
 *
 * Out (step 7): the tar of /workspace downloaded from the pod is fed in as
 * it arrives; each file is hashed as a git blob and compared with the base
 * commit's tree, new and changed content is kept in an in-memory object
 * store, and at the end libgit2 diffs the base tree against the new one
 * into a unified patch that `git apply` accepts on the base commit (binary
 * files as "GIT binary patch" data, new files and deletions included).
 * New files that the workspace's .gitignore files ignore are left out, as
 * `git add -A` would; tracked files always count. Without a repository the
 * patch adds everything, against the empty tree.
 */
#ifndef SANDBOX_WORKSPACE_H
#define SANDBOX_WORKSPACE_H

#include <stddef.h>
#include <stdint.h>

#include "sandbox/run.h"

typedef struct sandbox_workspace sandbox_workspace;

/*
 * Prepare the workspace for repo (repo->url NULL: an empty workspace).
 * Fetches into cfg->repo_cache_dir (a temporary directory when NULL),
 * honouring cancel and deadline_ms (a clock_mono_ms() deadline, 0 none).
 * Caller frees with sandbox_workspace_free(). 0, or ERR_NOTFOUND (ref or
 * commit not found: message names it), ERR_INVALID (bad URL), ERR_TOOBIG
 * (tree over cfg->workspace_cap), ERR_CANCELLED, ERR_TIMEOUT, ERR_FAIL (a
 * libgit2 failure: its message, e.g. the clone failing).
 */
int sandbox_workspace_prepare(sandbox_workspace **out, const sandbox_config *cfg,
			      const sandbox_repo *repo, sandbox_cancel *cancel, int64_t deadline_ms);

/* The base commit (40 hex), or NULL without a repository. */
const char *sandbox_workspace_commit(const sandbox_workspace *ws);

/* The tar stream to upload. Valid until sandbox_workspace_drop_upload() or
 * free. */
const char *sandbox_workspace_upload(const sandbox_workspace *ws, size_t *len);
/* Release the upload stream's memory once it was sent. */
void sandbox_workspace_drop_upload(sandbox_workspace *ws);

/* Feed the next piece of the downloaded workspace tar. 0 or the tar
 * reader's error (ERR_INVALID, ERR_TOOBIG) or a libgit2 failure. */
int sandbox_workspace_collect_feed(sandbox_workspace *ws, const void *p, size_t n);

/* The download ended: check it was whole, and diff. *out gets the patch
 * (NUL-terminated, "" when nothing changed; caller frees), *len its
 * length. ERR_INVALID for a truncated or malformed download, ERR_TOOBIG
 * when the patch exceeds max_patch, ERR_FAIL for a libgit2 failure. */
int sandbox_workspace_collect_patch(char **out, size_t *len, sandbox_workspace *ws,
				    size_t max_patch);

/* Remove the scratch directory and free everything. NULL-safe. */
void sandbox_workspace_free(sandbox_workspace *ws);

/* Hold libgit2 initialised for the life of the process: call once at
 * start (main) and once at exit, after every other thread has ended.
 * Workspaces still take their own reference, so tests need not call these;
 * a long-lived process must (see workspace.c). */
void sandbox_workspace_global_init(void);
void sandbox_workspace_global_cleanup(void);

#endif
