/*
 * Request validation: everything a request can get wrong is found here,
 * before a workspace is prepared or a Job created, with a message that
 * names the field ("commands[1].workdir: ..."). The rules follow what the
 * Kubernetes API server would refuse later (label syntax:
 * staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go; image
 * references: github.com/distribution/reference regexp.go) so that a bad
 * request is a 400 from ci-fixer, not an Error from the cluster.
 */
#include "sandbox/run.h"
#include "sandbox/validate.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "sandbox/quantity.h"
#include "util/err.h"
#include "util/str.h"

static int is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int is_lower_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Label name part / value: (([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?, <= 63. */
static int label_part_ok(const char *s, size_t n, int allow_empty)
{
	if (n == 0)
		return allow_empty;
	if (n > 63 || !is_alnum((unsigned char)s[0]) || !is_alnum((unsigned char)s[n - 1]))
		return 0;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (!is_alnum(c) && c != '-' && c != '_' && c != '.')
			return 0;
	}
	return 1;
}

int sandbox_label_key_valid(const char *key)
{
	const char *slash;

	if (!key || !*key)
		return 0;
	slash = strchr(key, '/');
	if (slash) {
		char prefix[254];
		size_t n = (size_t)(slash - key);

		if (n == 0 || n > 253)
			return 0;
		memcpy(prefix, key, n);
		prefix[n] = '\0';
		if (!str_is_dns1123_subdomain(prefix))
			return 0;
		key = slash + 1;
	}
	return label_part_ok(key, strlen(key), 0);
}

int sandbox_label_value_valid(const char *value)
{
	return value && label_part_ok(value, strlen(value), 1);
}

/* Keys the Job's own labels use, and the API server's (job-name,
 * controller-uid: pkg/registry/batch/job/strategy.go). */
static int label_key_reserved(const char *key)
{
	static const char *const exact[] = { "app", "job-name", "controller-uid" };
	static const char *const prefixes[] = {
		"ci-fixer.io/", "app.kubernetes.io/", "kubernetes.io/", "k8s.io/",
		"batch.kubernetes.io/",
	};

	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (strcmp(key, exact[i]) == 0)
			return 1;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (str_has_prefix(key, prefixes[i]))
			return 1;
	/* any *.kubernetes.io/ or *.k8s.io/ prefix is reserved upstream */
	const char *slash = strchr(key, '/');
	if (slash) {
		size_t n = (size_t)(slash - key);

		if ((n > 14 && memcmp(slash - 14, ".kubernetes.io", 14) == 0) ||
		    (n > 7 && memcmp(slash - 7, ".k8s.io", 7) == 0))
			return 1;
	}
	return 0;
}

int sandbox_env_name_valid(const char *name)
{
	if (!name || !*name || strlen(name) > 256)
		return 0;
	if (!(isalpha((unsigned char)name[0]) || name[0] == '_'))
		return 0;
	for (const char *p = name; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '_'))
			return 0;
	return 1;
}

int sandbox_workdir_valid(const char *wd)
{
	const char *p;

	if (!wd || !*wd)
		return 1;
	if (wd[0] == '/' || strlen(wd) > 1024)
		return 0;
	for (p = wd; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return 0;
	p = wd;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return 0;
		p += n;
		while (*p == '/')
			p++;
	}
	return 1;
}

/* distribution/reference: path-component [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static int path_component_ok(const char *s, size_t n)
{
	size_t i = 0;

	if (n == 0 || !is_lower_alnum((unsigned char)s[0]) ||
	    !is_lower_alnum((unsigned char)s[n - 1]))
		return 0;
	while (i < n) {
		if (is_lower_alnum((unsigned char)s[i])) {
			i++;
			continue;
		}
		/* a separator: ".", "_", "__" or "-"+, between alphanumerics */
		size_t j = i;

		if (s[i] == '.') {
			j++;
		} else if (s[i] == '_') {
			j++;
			if (j < n && s[j] == '_')
				j++;
		} else if (s[i] == '-') {
			while (j < n && s[j] == '-')
				j++;
		} else {
			return 0;
		}
		if (j >= n || !is_lower_alnum((unsigned char)s[j]))
			return 0;
		i = j;
	}
	return 1;
}

/* domain-component ([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]) joined
 * by '.', optional :port. */
static int domain_ok(const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);
	size_t hn = colon ? (size_t)(colon - s) : n;
	size_t i = 0;

	if (colon) {
		size_t pn = n - hn - 1;

		if (pn == 0 || pn > 5)
			return 0;
		for (size_t k = 0; k < pn; k++)
			if (!isdigit((unsigned char)colon[1 + k]))
				return 0;
	}
	if (hn == 0)
		return 0;
	while (i < hn) {
		size_t j = i;

		while (j < hn && s[j] != '.')
			j++;
		if (j == i || !is_alnum((unsigned char)s[i]) || !is_alnum((unsigned char)s[j - 1]))
			return 0;
		for (size_t k = i; k < j; k++)
			if (!is_alnum((unsigned char)s[k]) && s[k] != '-')
				return 0;
		i = j + 1;
		if (j < hn && i >= hn)
			return 0; /* trailing dot */
	}
	return 1;
}

int sandbox_image_valid(const char *ref)
{
	const char *at, *name_end, *p, *tag = NULL;
	size_t n;

	if (!ref || !*ref || strlen(ref) > 512)
		return 0;
	at = strchr(ref, '@');
	name_end = at ? at : ref + strlen(ref);
	/* the tag is after the last ':' that follows the last '/' */
	{
		const char *slash = NULL, *colon = NULL;

		for (p = ref; p < name_end; p++) {
			if (*p == '/')
				slash = p;
			else if (*p == ':')
				colon = p;
		}
		if (colon && (!slash || colon > slash)) {
			tag = colon + 1;
			/* a ':' in the first component with no '/' after it is a tag */
		}
		if (tag) {
			size_t tn = (size_t)(name_end - tag);

			if (tn == 0 || tn > 128)
				return 0;
			if (!(isalnum((unsigned char)tag[0]) || tag[0] == '_'))
				return 0;
			for (size_t k = 0; k < tn; k++)
				if (!(isalnum((unsigned char)tag[k]) || tag[k] == '_' ||
				      tag[k] == '.' || tag[k] == '-'))
					return 0;
			name_end = colon;
		}
	}
	n = (size_t)(name_end - ref);
	if (n == 0 || n > 255)
		return 0;
	/* split into components; the first is a domain if it has '.' or ':',
	 * is "localhost", or has an upper-case letter */
	p = ref;
	{
		const char *slash = memchr(ref, '/', n);

		if (slash) {
			size_t dn = (size_t)(slash - ref);
			int is_domain = memchr(ref, '.', dn) || memchr(ref, ':', dn) ||
					(dn == 9 && memcmp(ref, "localhost", 9) == 0);

			for (size_t k = 0; k < dn && !is_domain; k++)
				if (isupper((unsigned char)ref[k]))
					is_domain = 1;
			if (is_domain) {
				if (!domain_ok(ref, dn))
					return 0;
				p = slash + 1;
			}
		}
	}
	while (p < name_end) {
		const char *e = memchr(p, '/', (size_t)(name_end - p));
		size_t cn = e ? (size_t)(e - p) : (size_t)(name_end - p);

		if (!path_component_ok(p, cn))
			return 0;
		if (!e)
			break;
		p = e + 1;
		if (p >= name_end)
			return 0;
	}
	if (at) {
		/* digest: algorithm ":" hex (>= 32) */
		const char *d = at + 1, *c = strchr(d, ':');

		if (!c || c == d)
			return 0;
		for (p = d; p < c; p++)
			if (!(isalnum((unsigned char)*p) || strchr("-_+.", *p)))
				return 0;
		if (!isalpha((unsigned char)d[0]))
			return 0;
		if (strlen(c + 1) < 32)
			return 0;
		for (p = c + 1; *p; p++)
			if (!isxdigit((unsigned char)*p))
				return 0;
	}
	return 1;
}

static int ctl_free(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

int sandbox_repo_url_valid(const char *url)
{
	if (!url || !*url || strlen(url) > 2048 || !ctl_free(url))
		return 0;
	if (str_has_prefix(url, "https://") || str_has_prefix(url, "http://"))
		return url[strlen(url[4] == 's' ? "https://" : "http://")] != '\0' &&
		       !strchr(url, ' ');
	if (str_has_prefix(url, "file://"))
		return url[7] == '/';
	return url[0] == '/';
}

int sandbox_ref_valid(const char *ref)
{
	size_t n;

	if (!ref || !*ref || (n = strlen(ref)) > 255 || !ctl_free(ref))
		return 0;
	/* git check-ref-format: no "..", "@{", "//", space ~ ^ : ? * [ \ ;
	 * no leading '-' or '/', no trailing '/', '.' or ".lock" */
	if (ref[0] == '-' || ref[0] == '/' || ref[n - 1] == '/' || ref[n - 1] == '.' ||
	    strstr(ref, "..") || strstr(ref, "@{") || strstr(ref, "//") ||
	    str_has_suffix(ref, ".lock") || strcmp(ref, "@") == 0)
		return 0;
	for (const char *p = ref; *p; p++)
		if (strchr(" ~^:?*[\\", *p))
			return 0;
	return 1;
}

int sandbox_commit_valid(const char *c)
{
	if (!c || strlen(c) != 40)
		return 0;
	for (; *c; c++)
		if (!isxdigit((unsigned char)*c))
			return 0;
	return 1;
}

int sandbox_pull_policy_valid(const char *policy)
{
	return policy && (!strcmp(policy, "Always") || !strcmp(policy, "IfNotPresent") ||
			  !strcmp(policy, "Never"));
}

/* k/k pkg/apis/core/helper IsExtendedResourceName: not native (a name
 * without a "/" or in the kubernetes.io domain), not "requests."-prefixed,
 * and "requests." + name must be a qualified name, since that is how a
 * ResourceQuota names it. */
int sandbox_extended_resource_valid(const char *name)
{
	char quota[320];
	const char *slash;

	if (!name || !sandbox_label_key_valid(name) || !(slash = strchr(name, '/')))
		return 0;
	if (str_has_prefix(name, "requests."))
		return 0;
	if (memmem(name, (size_t)(slash - name + 1), "kubernetes.io/", 14))
		return 0;
	if (snprintf(quota, sizeof(quota), "requests.%s", name) >= (int)sizeof(quota))
		return 0;
	return sandbox_label_key_valid(quota);
}

int sandbox_job_name(char out[64], const char *run_id)
{
	size_t n;

	out[0] = '\0';
	if (!run_id || (n = strlen(run_id)) == 0 || n > 57)
		return err_set(ERR_INVALID, "run id must be 1 to 57 characters");
	if (!is_lower_alnum((unsigned char)run_id[0]) ||
	    !is_lower_alnum((unsigned char)run_id[n - 1]))
		return err_set(ERR_INVALID, "run id \"%s\" must start and end with [a-z0-9]", run_id);
	for (size_t i = 0; i < n; i++)
		if (!is_lower_alnum((unsigned char)run_id[i]) && run_id[i] != '-')
			return err_set(ERR_INVALID, "run id \"%s\": only [a-z0-9-] allowed", run_id);
	memcpy(out, "cifix-", 6);
	memcpy(out + 6, run_id, n + 1);
	return 0;
}

static int check_quantity(const char *field, const char *value, const char *max)
{
	int64_t v, m;

	if (sandbox_quantity_parse(&v, value) != 0)
		return err_wrap(ERR_INVALID, "%s", field);
	if (v <= 0)
		return err_set(ERR_INVALID, "%s: must be greater than zero", field);
	if (max && sandbox_quantity_parse(&m, max) == 0 && v > m)
		return err_set(ERR_INVALID, "%s: \"%s\" is above the maximum \"%s\"", field,
			       value, max);
	return 0;
}

static int check_env(const char *field, const sandbox_kv *env, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!sandbox_env_name_valid(env[i].name))
			return err_set(ERR_INVALID,
				       "%s: \"%.64s\" is not a valid variable name "
				       "([A-Za-z_][A-Za-z0-9_]*)", field,
				       env[i].name ? env[i].name : "");
		if (!env[i].value)
			return err_set(ERR_INVALID, "%s.%s: value missing", field, env[i].name);
		for (size_t j = 0; j < i; j++)
			if (strcmp(env[i].name, env[j].name) == 0)
				return err_set(ERR_INVALID, "%s.%s: given twice", field,
					       env[i].name);
	}
	return 0;
}

static size_t kv_bytes(const sandbox_kv *kv, size_t n)
{
	size_t t = 0;

	for (size_t i = 0; i < n; i++)
		t += strlen(kv[i].name ? kv[i].name : "") + strlen(kv[i].value ? kv[i].value : "") + 2;
	return t;
}

int sandbox_request_validate(const sandbox_config *cfg, const sandbox_request *req)
{
	int64_t max_t = cfg->max_timeout_seconds > 0 ? cfg->max_timeout_seconds : 6 * 3600;

	if (!req)
		return err_set(ERR_INVALID, "request: missing");
	if (req->repo.url || req->repo.ref || req->repo.commit) {
		if (!req->repo.url)
			return err_set(ERR_INVALID, "repo.url: required with repo");
		if (!sandbox_repo_url_valid(req->repo.url))
			return err_set(ERR_INVALID,
				       "repo.url: \"%.200s\" is not an https://, http://, file:// URL "
				       "or an absolute path", req->repo.url);
		if (req->repo.ref && !sandbox_ref_valid(req->repo.ref))
			return err_set(ERR_INVALID, "repo.ref: \"%.200s\" is not a valid git ref",
				       req->repo.ref);
		if (req->repo.commit && !sandbox_commit_valid(req->repo.commit))
			return err_set(ERR_INVALID, "repo.commit: must be a full 40-hex sha");
	}
	if (req->image && !sandbox_image_valid(req->image))
		return err_set(ERR_INVALID, "image: \"%.200s\" is not a valid image reference",
			       req->image);
	if (!req->image && (!cfg->default_image || !*cfg->default_image))
		return err_set(ERR_INVALID, "image: required (no default image configured)");
	if (req->command_count == 0 || !req->commands)
		return err_set(ERR_INVALID, "commands: at least one command is required");
	if (cfg->max_commands && req->command_count > cfg->max_commands)
		return err_set(ERR_INVALID, "commands: %zu commands, at most %zu allowed",
			       req->command_count, cfg->max_commands);
	if (req->timeout_seconds < 0 || req->timeout_seconds > max_t)
		return err_set(ERR_INVALID, "timeoutSeconds: must be between 1 and %lld",
			       (long long)max_t);
	if (check_env("env", req->env, req->env_count))
		return ERR_INVALID;
	for (size_t i = 0; i < req->command_count; i++) {
		const sandbox_command *c = &req->commands[i];
		char f[64];
		size_t bytes = kv_bytes(req->env, req->env_count) + kv_bytes(c->env, c->env_count);

		if ((c->argc > 0) == (c->shell != NULL))
			return err_set(ERR_INVALID, "commands[%zu]: exactly one of argv and shell "
				       "is required", i);
		if (c->shell && !*c->shell)
			return err_set(ERR_INVALID, "commands[%zu].shell: empty", i);
		if (c->argc > 0 && !c->argv)
			return err_set(ERR_INVALID, "commands[%zu].argv: missing", i);
		for (size_t j = 0; j < c->argc; j++) {
			if (!c->argv[j])
				return err_set(ERR_INVALID, "commands[%zu].argv[%zu]: missing", i, j);
			bytes += strlen(c->argv[j]) + 1;
		}
		if (c->argc > 0 && !*c->argv[0])
			return err_set(ERR_INVALID, "commands[%zu].argv[0]: empty program name", i);
		if (c->shell)
			bytes += strlen(c->shell);
		if (cfg->max_command_bytes && bytes > cfg->max_command_bytes)
			return err_set(ERR_INVALID, "commands[%zu]: argv and env take %zu bytes, at "
				       "most %zu allowed", i, bytes, cfg->max_command_bytes);
		if (c->timeout_seconds < 0 || c->timeout_seconds > max_t)
			return err_set(ERR_INVALID, "commands[%zu].timeoutSeconds: must be between "
				       "1 and %lld", i, (long long)max_t);
		if (!sandbox_workdir_valid(c->workdir))
			return err_set(ERR_INVALID, "commands[%zu].workdir: \"%.200s\" must be a "
				       "relative path inside /workspace without \"..\"", i,
				       c->workdir);
		snprintf(f, sizeof(f), "commands[%zu].env", i);
		if (check_env(f, c->env, c->env_count))
			return ERR_INVALID;
	}
	if (req->resources.cpu &&
	    check_quantity("resources.cpu", req->resources.cpu, cfg->max_cpu))
		return ERR_INVALID;
	if (req->resources.memory &&
	    check_quantity("resources.memory", req->resources.memory, cfg->max_memory))
		return ERR_INVALID;
	if (req->collect.log_tail_lines < -1 || req->collect.log_tail_lines > 100000)
		return err_set(ERR_INVALID, "collect.logTailLines: must be between 0 and 100000");
	if (req->collect.patch < -1 || req->collect.patch > 1)
		return err_set(ERR_INVALID, "collect.patch: must be true or false");
	for (size_t i = 0; i < req->label_count; i++) {
		const sandbox_kv *l = &req->labels[i];

		if (!sandbox_label_key_valid(l->name))
			return err_set(ERR_INVALID, "labels: \"%.100s\" is not a valid label key",
				       l->name ? l->name : "");
		if (label_key_reserved(l->name))
			return err_set(ERR_INVALID, "labels.%s: reserved for ci-fixer and "
				       "Kubernetes", l->name);
		if (!sandbox_label_value_valid(l->value))
			return err_set(ERR_INVALID, "labels.%s: \"%.100s\" is not a valid label "
				       "value (at most 63 of [A-Za-z0-9-_.])", l->name,
				       l->value ? l->value : "");
		for (size_t j = 0; j < i; j++)
			if (strcmp(l->name, req->labels[j].name) == 0)
				return err_set(ERR_INVALID, "labels.%s: given twice", l->name);
	}
	if (req->label_count > 32)
		return err_set(ERR_INVALID, "labels: at most 32 allowed");
	if (req->idempotency_key) {
		size_t n = strlen(req->idempotency_key);

		if (n == 0 || n > 256 || !ctl_free(req->idempotency_key))
			return err_set(ERR_INVALID, "idempotencyKey: 1 to 256 printable characters");
	}
	return 0;
}
