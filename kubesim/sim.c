/*
 * sim: kubesim's state from start to stop (see sim.h for the threads):
 * certificates, tokens, the store and its bootstrap objects, the kubelet
 * with its callbacks, the controllers; and the kubeconfig clients use.
 */
#include "kubesim/sim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "kubesim/faults.h"
#include "kubesim/inflight.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/str.h"

static void bootstrap_ns(ks_sim *s, const char *name)
{
	cJSON *ns = cJSON_CreateObject();
	cJSON_AddStringToObject(ns, "kind", "Namespace");
	cJSON_AddStringToObject(ns, "apiVersion", "v1");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(ns, "metadata"), "name", name);
	cJSON *stored = NULL;
	if (ks_obj_create_internal(s, ks_resource_by_plural("namespaces"), ns, &stored))
		fprintf(stderr, "kubesim: bootstrap namespace %s: %s\n", name, err_msg());
}

int ks_sim_new(ks_sim **out, const ks_sim_opts *opts)
{
	*out = NULL;
	ks_sim *s = calloc(1, sizeof *s);
	if (!s)
		return err_set(ERR_NOMEM, "out of memory");
	pthread_mutex_init(&s->ctl_mu, NULL);
	pthread_cond_init(&s->ctl_cond, NULL);
	pthread_mutex_init(&s->act_mu, NULL);
	pthread_cond_init(&s->act_cond, NULL);
	int rc;
	s->data_dir = str_dup(opts->data_dir);
	s->image_fail_glob = str_dup(opts->image_fail_glob);
	s->seed = opts->seed;
	unsigned char tok[32];
	if (RAND_bytes(tok, sizeof tok) != 1 || RAND_bytes(s->sa_key, sizeof s->sa_key) != 1) {
		rc = err_set(ERR_FAIL, "kubesim: no randomness");
		goto fail;
	}
	str_hex(s->admin_token, tok, sizeof tok);
	if ((rc = ks_certs_generate(&s->certs)))
		goto fail;
	if ((rc = ks_faults_new(&s->faults, opts->faults, opts->seed)))
		goto fail;
	if ((rc = ks_inflight_new(&s->inflight, opts->max_inflight, opts->max_mutating_inflight)))
		goto fail;
	if (ks_metrics_new(&s->metrics)) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto fail;
	}
	if ((rc = ks_store_new(&s->store, ks_n_resources, opts->history_cap ? opts->history_cap : 10000)))
		goto fail;
	ks_kubelet_opts ko = KS_KUBELET_OPTS_INIT;
	ko.data_dir = opts->data_dir;
	ko.image_fail_glob = opts->image_fail_glob;
	ko.image_pull_ms = opts->image_pull_ms;
	if ((rc = ks_kubelet_new(&s->kubelet, &ko, ks_on_pod_status, ks_on_pod_event, s)))
		goto fail;
	ks_sim_lock(s);
	ks_rbac_bootstrap(s);
	bootstrap_ns(s, "default");
	bootstrap_ns(s, "kube-system");
	bootstrap_ns(s, "kube-public");
	bootstrap_ns(s, "kube-node-lease");
	ks_sim_unlock(s);
	if ((rc = ks_controllers_start(s)))
		goto fail;
	*out = s;
	return 0;
fail:
	ks_sim_free(s);
	return rc;
}

void ks_sim_free(ks_sim *s)
{
	if (!s)
		return;
	ks_controllers_stop(s);
	ks_kubelet_free(s->kubelet);
	s->kubelet = NULL;
	ks_store_free(s->store);
	ks_faults_free(s->faults);
	ks_inflight_free(s->inflight);
	ks_auth_cache_free(s->token_cache);
	ks_metrics_free(s->metrics);
	ks_certs_clear(&s->certs);
	free(s->data_dir);
	free(s->image_fail_glob);
	pthread_mutex_destroy(&s->ctl_mu);
	pthread_cond_destroy(&s->ctl_cond);
	pthread_mutex_destroy(&s->act_mu);
	pthread_cond_destroy(&s->act_cond);
	free(s);
}

static int write_file(const char *dir, const char *name, const char *data, mode_t mode)
{
	char path[4096], tmp[4200];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return err_set(ERR_FAIL, "kubesim: cannot write %s: %s", tmp, strerror(errno));
	size_t n = strlen(data), off = 0;
	while (off < n) {
		ssize_t w = write(fd, data + off, n - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return err_set(ERR_FAIL, "kubesim: cannot write %s: %s", tmp, strerror(errno));
		}
		off += (size_t)w;
	}
	close(fd);
	if (rename(tmp, path) != 0)
		return err_set(ERR_FAIL, "kubesim: cannot rename %s: %s", tmp, strerror(errno));
	return 0;
}

static void b64(buf *out, const char *s)
{
	str_base64_encode(out, s, strlen(s));
}

int ks_sim_write_kubeconfig(ks_sim *s, const char *url)
{
	buf k = BUF_INIT(1u << 20);
	buf_append_str(&k, "apiVersion: v1\nkind: Config\nclusters:\n- name: kubesim\n  cluster:\n    server: ");
	buf_append_str(&k, url);
	buf_append_str(&k, "\n    certificate-authority-data: ");
	b64(&k, s->certs.ca_pem);
	buf_append_str(&k, "\nusers:\n- name: admin\n  user:\n    token: ");
	buf_append_str(&k, s->admin_token);
	buf_append_str(&k, "\n- name: admin-cert\n  user:\n    client-certificate-data: ");
	b64(&k, s->certs.client_cert_pem);
	buf_append_str(&k, "\n    client-key-data: ");
	b64(&k, s->certs.client_key_pem);
	buf_append_str(&k, "\ncontexts:\n- name: admin\n  context:\n    cluster: kubesim\n    user: admin\n    namespace: default\n"
			   "- name: admin-cert\n  context:\n    cluster: kubesim\n    user: admin-cert\n    namespace: default\n"
			   "current-context: admin\npreferences: {}\n");
	int rc = write_file(s->data_dir, "kubeconfig", buf_cstr(&k), 0600);
	buf_free(&k);
	if (!rc)
		rc = write_file(s->data_dir, "ca.crt", s->certs.ca_pem, 0644);
	if (!rc)
		rc = write_file(s->data_dir, "token", s->admin_token, 0600);
	return rc;
}
