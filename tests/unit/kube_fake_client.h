/*
 * A kube_client for the unit tests' local fake servers: a kubeconfig with
 * one cluster at URL, context namespace NS (none when NULL) and the user
 * entry USER_YAML (indented four spaces; a token "tok-1" when NULL).
 *
 * Header-only, included by tests/unit/test_kube_*.c.
 */
#ifndef KUBE_FAKE_CLIENT_H
#define KUBE_FAKE_CLIENT_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "kube/client.h"
#include "kube/config.h"
#include "util/err.h"
#include "util/str.h"

static inline kube_client *fake_kube_client(const char *url, const char *ns, const char *user_yaml)
{
	char *y = str_printf("apiVersion: v1\nkind: Config\ncurrent-context: t\n"
			     "clusters:\n- name: c\n  cluster:\n    server: '%s'\n"
			     "contexts:\n- name: t\n  context: {cluster: c, user: u%s%s}\n"
			     "users:\n- name: u\n  user:\n%s",
			     url, ns ? ", namespace: " : "", ns ? ns : "",
			     user_yaml ? user_yaml : "    token: tok-1\n");
	kube_config_doc d = { y, strlen(y), "/tmp/kc-test" };
	kube_config *cfg = NULL;
	kube_client *c = NULL;

	cr_assert_eq(kube_config_parse(&cfg, &d, 1, NULL, NULL), 0, "%s", err_msg());
	cr_assert_eq(kube_client_new(&c, cfg), 0, "%s", err_msg());
	kube_config_free(cfg);
	free(y);
	return c;
}

#endif
