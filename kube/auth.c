/* kube/auth: token files and exec credential plugins, cached. See auth.h. */
#include "kube/auth.h"
#include "kube/objects.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

extern char **environ;

struct kube_auth {
	const kube_config *cfg;
	pthread_mutex_t lock; /* guards everything below */
	kube_cred cur;        /* the cached credential */
	int valid;            /* cur may be used */
	int64_t expiry_wall_ms; /* exec: expirationTimestamp, 0 = none */
	int64_t read_mono_ms; /* token file: when it was read */
	int64_t reread_ms;
	uint64_t next_gen;
	unsigned exec_runs;
	unsigned token_reads;
};

void kube_cred_clear(kube_cred *c)
{
	if (!c)
		return;
	if (c->token) {
		explicit_bzero(c->token, strlen(c->token));
		free(c->token);
	}
	if (c->key_pem) {
		explicit_bzero(c->key_pem, c->key_len);
		free(c->key_pem);
	}
	free(c->cert_pem);
	memset(c, 0, sizeof(*c));
}

static int cred_copy(kube_cred *dst, const kube_cred *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->generation = src->generation;
	if (src->token && !(dst->token = strdup(src->token)))
		goto nomem;
	if (src->cert_pem) {
		if (!(dst->cert_pem = str_ndup(src->cert_pem, src->cert_len)))
			goto nomem;
		dst->cert_len = src->cert_len;
	}
	if (src->key_pem) {
		if (!(dst->key_pem = str_ndup(src->key_pem, src->key_len)))
			goto nomem;
		dst->key_len = src->key_len;
	}
	return 0;
nomem:
	kube_cred_clear(dst);
	return err_set(ERR_NOMEM, "out of memory");
}

static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static int same_cred(const kube_cred *a, const kube_cred *b)
{
	return same_str(a->token, b->token) && same_str(a->cert_pem, b->cert_pem) &&
	       same_str(a->key_pem, b->key_pem);
}

int kube_auth_new(kube_auth **out, const kube_config *cfg)
{
	kube_auth *a = calloc(1, sizeof(*a));

	*out = NULL;
	if (!a)
		return err_set(ERR_NOMEM, "out of memory");
	a->cfg = cfg;
	a->reread_ms = KUBE_TOKEN_REREAD_MS;
	a->next_gen = 1;
	pthread_mutex_init(&a->lock, NULL);
	*out = a;
	return 0;
}

void kube_auth_free(kube_auth *a)
{
	if (!a)
		return;
	kube_cred_clear(&a->cur);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

void kube_auth_set_reread_ms(kube_auth *a, int64_t ms)
{
	pthread_mutex_lock(&a->lock);
	a->reread_ms = ms;
	pthread_mutex_unlock(&a->lock);
}

unsigned kube_auth_exec_runs(kube_auth *a)
{
	pthread_mutex_lock(&a->lock);
	unsigned n = a->exec_runs;
	pthread_mutex_unlock(&a->lock);
	return n;
}

unsigned kube_auth_token_reads(kube_auth *a)
{
	pthread_mutex_lock(&a->lock);
	unsigned n = a->token_reads;
	pthread_mutex_unlock(&a->lock);
	return n;
}

void kube_auth_invalidate(kube_auth *a, uint64_t gen)
{
	pthread_mutex_lock(&a->lock);
	if (gen == 0 || gen == a->cur.generation)
		a->valid = 0;
	pthread_mutex_unlock(&a->lock);
}

/* ---- ExecCredential --------------------------------------------------- */

int kube_exec_credential_parse(kube_cred *out, int64_t *expiry_ms, const char *json, size_t len,
			       const char *api_version)
{
	cJSON *root = cJSON_ParseWithLength(json, len);
	int rc = 0;

	memset(out, 0, sizeof(*out));
	*expiry_ms = 0;
	if (!cJSON_IsObject(root)) {
		rc = err_set(ERR_INVALID, "exec plugin: output is not a JSON object");
		goto done;
	}
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
	const cJSON *av = cJSON_GetObjectItemCaseSensitive(root, "apiVersion");
	if (!cJSON_IsString(kind) || strcmp(kind->valuestring, "ExecCredential")) {
		rc = err_set(ERR_INVALID, "exec plugin: output is not an ExecCredential (kind %s)",
			     cJSON_IsString(kind) ? kind->valuestring : "missing");
		goto done;
	}
	/* exec.go: "exec plugin is configured to use API version %s, plugin
	 * returned version %s". */
	if (!cJSON_IsString(av) || (api_version && strcmp(av->valuestring, api_version))) {
		rc = err_set(ERR_INVALID, "exec plugin is configured to use API version %s, plugin "
			     "returned version %s", api_version ? api_version : "?",
			     cJSON_IsString(av) ? av->valuestring : "(none)");
		goto done;
	}
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "status");
	if (!cJSON_IsObject(st)) {
		rc = err_set(ERR_UNAUTHORIZED, "exec plugin didn't return a status field");
		goto done;
	}
	const cJSON *tok = cJSON_GetObjectItemCaseSensitive(st, "token");
	const cJSON *cert = cJSON_GetObjectItemCaseSensitive(st, "clientCertificateData");
	const cJSON *key = cJSON_GetObjectItemCaseSensitive(st, "clientKeyData");
	const cJSON *exp = cJSON_GetObjectItemCaseSensitive(st, "expirationTimestamp");
	int has_tok = cJSON_IsString(tok) && tok->valuestring[0];
	int has_cert = cJSON_IsString(cert) && cert->valuestring[0];
	int has_key = cJSON_IsString(key) && key->valuestring[0];
	if (!has_tok && !has_cert && !has_key) {
		rc = err_set(ERR_UNAUTHORIZED, "exec plugin didn't return a token or cert/key pair");
		goto done;
	}
	if (has_cert != has_key) {
		rc = err_set(ERR_UNAUTHORIZED, "exec plugin returned only %s",
			     has_cert ? "clientCertificateData" : "clientKeyData");
		goto done;
	}
	if (exp && !cJSON_IsNull(exp)) {
		if (!cJSON_IsString(exp) || kube_time_parse(expiry_ms, exp->valuestring) < 0) {
			rc = err_set(ERR_INVALID, "exec plugin: status.expirationTimestamp is not an "
				     "RFC 3339 time");
			goto done;
		}
	}
	if ((has_tok && !(out->token = strdup(tok->valuestring))) ||
	    (has_cert && !(out->cert_pem = strdup(cert->valuestring))) ||
	    (has_key && !(out->key_pem = strdup(key->valuestring)))) {
		kube_cred_clear(out);
		rc = err_set(ERR_NOMEM, "out of memory");
		goto done;
	}
	out->cert_len = has_cert ? strlen(out->cert_pem) : 0;
	out->key_len = has_key ? strlen(out->key_pem) : 0;
done:
	cJSON_Delete(root);
	return rc;
}

/* KUBERNETES_EXEC_INFO (exec.go): the ExecCredential with spec.interactive
 * false, and spec.cluster when provideClusterInfo is set. */
static char *exec_info_json(const kube_config *cfg)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *spec = cJSON_AddObjectToObject(root, "spec");
	char *ca = NULL, *s = NULL;
	size_t ca_len = 0;

	cJSON_AddStringToObject(root, "kind", "ExecCredential");
	cJSON_AddStringToObject(root, "apiVersion", cfg->exec->api_version);
	cJSON_AddBoolToObject(spec, "interactive", 0);
	if (cfg->exec->provide_cluster_info) {
		cJSON *cl = cJSON_AddObjectToObject(spec, "cluster");
		buf b64 = BUF_INIT(16u << 20);
		cJSON_AddStringToObject(cl, "server", cfg->server);
		if (cfg->tls_server_name)
			cJSON_AddStringToObject(cl, "tls-server-name", cfg->tls_server_name);
		if (cfg->insecure)
			cJSON_AddBoolToObject(cl, "insecure-skip-tls-verify", 1);
		if (cfg->proxy_url)
			cJSON_AddStringToObject(cl, "proxy-url", cfg->proxy_url);
		if (cfg->ca_data) {
			str_base64_encode(&b64, cfg->ca_data, cfg->ca_data_len);
		} else if (cfg->ca_file) {
			FILE *f = fopen(cfg->ca_file, "rb");
			if (f) {
				ca = malloc(1 << 20);
				if (ca)
					ca_len = fread(ca, 1, 1 << 20, f);
				fclose(f);
				if (ca)
					str_base64_encode(&b64, ca, ca_len);
			}
		}
		if (b64.len)
			cJSON_AddStringToObject(cl, "certificate-authority-data", buf_cstr(&b64));
		buf_free(&b64);
	}
	s = cJSON_PrintUnformatted(root);
	free(ca);
	cJSON_Delete(root);
	return s;
}

/* Run the plugin, capture its stdout (capped) and stderr (the head). */
static int exec_plugin_run(const kube_config *cfg, buf *out, buf *errb)
{
	const kube_exec_config *e = cfg->exec;
	posix_spawn_file_actions_t fa;
	char **argv = NULL, **envp = NULL, *info = NULL, *info_env = NULL;
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 };
	size_t nenv = 0;
	pid_t pid = -1;
	int rc = 0, fa_init = 0;

	argv = calloc(e->nargs + 2, sizeof(char *));
	for (char **p = environ; p && *p; p++)
		nenv++;
	envp = calloc(nenv + e->nenv + 2, sizeof(char *));
	info = exec_info_json(cfg);
	info_env = info ? str_printf("KUBERNETES_EXEC_INFO=%s", info) : NULL;
	if (!argv || !envp || !info_env) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto done;
	}
	argv[0] = e->command;
	for (size_t i = 0; i < e->nargs; i++)
		argv[i + 1] = e->args[i];
	/* The plugin's env entries override the inherited ones (exec.go
	 * appends them after os.Environ(); the last one wins for getenv). */
	size_t k = 0;
	for (char **p = environ; p && *p; p++) {
		int overridden = str_has_prefix(*p, "KUBERNETES_EXEC_INFO=");
		for (size_t i = 0; i < e->nenv && !overridden; i++) {
			size_t nl = strcspn(e->env[i], "=");
			overridden = !strncmp(*p, e->env[i], nl + 1);
		}
		if (!overridden)
			envp[k++] = *p;
	}
	for (size_t i = 0; i < e->nenv; i++)
		envp[k++] = e->env[i];
	envp[k++] = info_env;

	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		rc = err_set(ERR_FAIL, "exec plugin: pipe: %s", strerror(errno));
		goto done;
	}
	posix_spawn_file_actions_init(&fa);
	fa_init = 1;
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	int se = posix_spawnp(&pid, e->command, &fa, NULL, argv, envp);
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	if (se != 0) {
		pid = -1;
		rc = err_set(ERR_FAIL, "exec plugin \"%s\": %s%s%s", e->command, strerror(se),
			     e->install_hint ? ". " : "", e->install_hint ? e->install_hint : "");
		goto done;
	}

	int64_t deadline = clock_mono_ms() + KUBE_EXEC_PLUGIN_TIMEOUT_MS;
	int open_o = 1, open_e = 1, toobig = 0;
	while (open_o || open_e) {
		struct pollfd pf[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
		int64_t left = clock_remaining_ms(deadline);
		if (left <= 0) {
			kill(pid, SIGKILL);
			rc = err_set(ERR_TIMEOUT, "exec plugin \"%s\" did not finish within %d s",
				     e->command, KUBE_EXEC_PLUGIN_TIMEOUT_MS / 1000);
			break;
		}
		if (!open_o)
			pf[0].fd = -1;
		if (!open_e)
			pf[1].fd = -1;
		int r = poll(pf, 2, (int)(left > 1000 ? 1000 : left));
		if (r < 0 && errno != EINTR) {
			rc = err_set(ERR_FAIL, "exec plugin: poll: %s", strerror(errno));
			kill(pid, SIGKILL);
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char tmp[4096];
			ssize_t n = read(pf[i].fd, tmp, sizeof(tmp));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				if (i == 0)
					open_o = 0;
				else
					open_e = 0;
				continue;
			}
			if (i == 0) {
				if (buf_append(out, tmp, (size_t)n) < 0)
					toobig = 1;
			} else {
				size_t room = errb->max - errb->len;
				buf_append(errb, tmp, (size_t)n < room ? (size_t)n : room);
			}
		}
		if (toobig) {
			kill(pid, SIGKILL);
			rc = err_set(ERR_TOOBIG, "exec plugin \"%s\": output larger than %u bytes",
				     e->command, KUBE_EXEC_PLUGIN_MAX_STDOUT);
			break;
		}
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	pid = -1;
	if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		char code[32];
		if (WIFEXITED(status))
			snprintf(code, sizeof(code), "exit code %d", WEXITSTATUS(status));
		else
			snprintf(code, sizeof(code), "signal %d", WTERMSIG(status));
		rc = err_set(ERR_FAIL, "exec plugin \"%s\" failed with %s%s%s%s%s", e->command, code,
			     errb->len ? ": " : "", buf_cstr(errb),
			     WIFEXITED(status) && WEXITSTATUS(status) == 127 && e->install_hint ? ". " : "",
			     WIFEXITED(status) && WEXITSTATUS(status) == 127 && e->install_hint
				     ? e->install_hint : "");
	}
done:
	if (fa_init)
		posix_spawn_file_actions_destroy(&fa);
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	free(argv);
	free(envp);
	free(info);
	free(info_env);
	return rc;
}

static int refresh_exec(kube_auth *a)
{
	buf out = BUF_INIT(KUBE_EXEC_PLUGIN_MAX_STDOUT);
	buf errb = BUF_INIT(KUBE_EXEC_PLUGIN_MAX_STDERR);
	kube_cred c;
	int64_t exp = 0;
	int rc;

	a->exec_runs++;
	rc = exec_plugin_run(a->cfg, &out, &errb);
	if (rc == 0)
		rc = kube_exec_credential_parse(&c, &exp, buf_cstr(&out), out.len,
						a->cfg->exec->api_version);
	if (rc == 0) {
		/* The generation changes only when the credential does, so a
		 * caller can tell whether a retry after a 401 is worth it. */
		uint64_t gen = same_cred(&a->cur, &c) ? a->cur.generation : a->next_gen++;
		kube_cred_clear(&a->cur);
		a->cur = c;
		a->cur.generation = gen;
		a->expiry_wall_ms = exp;
		a->valid = 1;
	} else {
		rc = err_wrap(rc, "getting credentials for user \"%s\"",
			      a->cfg->user_name ? a->cfg->user_name : "?");
	}
	if (out.data)
		explicit_bzero(out.data, out.len);
	buf_free(&out);
	buf_free(&errb);
	return rc;
}

static int refresh_token_file(kube_auth *a)
{
	buf b = BUF_INIT(1u << 20);
	char tmp[4096];
	int rc = 0;
	int fd = open(a->cfg->token_file, O_RDONLY | O_CLOEXEC);

	a->token_reads++;
	if (fd < 0)
		return err_set(errno == ENOENT ? ERR_NOTFOUND : ERR_FAIL, "token file %s: %s",
			       a->cfg->token_file, strerror(errno));
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = err_set(ERR_FAIL, "token file %s: %s", a->cfg->token_file, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if (buf_append(&b, tmp, (size_t)n) < 0) {
			rc = err_set(ERR_TOOBIG, "token file %s: larger than 1 MiB", a->cfg->token_file);
			break;
		}
	}
	close(fd);
	explicit_bzero(tmp, sizeof(tmp));
	/* token_source.go trims surrounding whitespace. */
	size_t s = 0, e = b.len;
	while (s < e && strchr(" \t\r\n", b.data[s]))
		s++;
	while (e > s && strchr(" \t\r\n", b.data[e - 1]))
		e--;
	if (rc == 0 && e == s)
		rc = err_set(ERR_UNAUTHORIZED, "token file %s is empty", a->cfg->token_file);
	if (rc == 0) {
		char *t = str_ndup(b.data + s, e - s);
		if (!t) {
			rc = err_set(ERR_NOMEM, "out of memory");
		} else {
			uint64_t gen = a->cur.token && !strcmp(a->cur.token, t) ? a->cur.generation
										 : a->next_gen++;
			kube_cred_clear(&a->cur);
			a->cur.token = t;
			a->cur.generation = gen;
			a->read_mono_ms = clock_mono_ms();
			a->valid = 1;
		}
	}
	if (b.data)
		explicit_bzero(b.data, b.len);
	buf_free(&b);
	return rc;
}

int kube_auth_get(kube_auth *a, kube_cred *out)
{
	const kube_config *cfg = a->cfg;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&a->lock);
	if (cfg->exec) {
		/* exec.go: refresh when there is no credential, it expired, or a
		 * 401 invalidated it. */
		int expired = a->expiry_wall_ms && clock_wall_ms() >= a->expiry_wall_ms;
		if (!a->valid || expired)
			rc = refresh_exec(a);
	} else if (cfg->token) {
		/* A static token never changes: a 401 cannot be fixed by a retry. */
		if (!a->cur.token) {
			a->cur.token = strdup(cfg->token);
			a->cur.generation = a->next_gen++;
			if (!a->cur.token)
				rc = err_set(ERR_NOMEM, "out of memory");
		}
		a->valid = 1;
	} else if (cfg->token_file) {
		if (!a->valid || clock_mono_ms() - a->read_mono_ms >= a->reread_ms) {
			rc = refresh_token_file(a);
			/* cachingTokenSource: keep serving the old token when a
			 * re-read fails and one is cached. */
			if (rc < 0 && a->cur.token)
				rc = 0;
		}
	}
	if (rc == 0)
		rc = cred_copy(out, &a->cur);
	pthread_mutex_unlock(&a->lock);
	return rc;
}
