/*
 * kube/config: where the API server is and who we are to it.
 *
 * Two sources, as client-go has them:
 *  - kubeconfig files (s/client-go/tools/clientcmd/loader.go): an explicit
 *    file (--kubeconfig) is used alone; otherwise $KUBECONFIG, a
 *    ':'-separated list merged so that the FIRST file to set a value or a
 *    named entry wins; otherwise ~/.kube/config.
 *  - in-cluster (s/client-go/rest/config.go InClusterConfig):
 *    KUBERNETES_SERVICE_HOST/PORT and the service-account directory
 *    (token, ca.crt, namespace).
 *
 * A kube_config is plain data: what the files said, with relative paths
 * resolved and *-data fields base64-decoded. Reading token files, running
 * exec plugins and caching credentials happen later, in the client
 * (kube/auth.h), because those change over the life of a process.
 */
#ifndef KUBE_CONFIG_H
#define KUBE_CONFIG_H

#include <stddef.h>

/* Hard cap on one kubeconfig file (and the whole merged set). */
#define KUBE_CONFIG_MAX_BYTES (4u << 20)

/* The default service-account directory (overridable, see opts.sa_dir). */
#define KUBE_SA_DIR_DEFAULT "/var/run/secrets/kubernetes.io/serviceaccount"

enum kube_incluster_mode {
	/* kubeconfig files if any are found and non-empty, else in-cluster
	 * (client-go's DeferredLoadingClientConfig does the same). */
	KUBE_INCLUSTER_AUTO = 0,
	KUBE_INCLUSTER_NEVER = 1, /* kubeconfig only */
	KUBE_INCLUSTER_ONLY = 2   /* in-cluster only */
};

typedef struct kube_config_opts {
	const char *kubeconfig; /* explicit file: that file only; NULL: $KUBECONFIG or ~/.kube/config */
	const char *context;    /* NULL: current-context */
	const char *ns;         /* namespace override; NULL: the context's, else "default" */
	int in_cluster;         /* enum kube_incluster_mode */
	const char *sa_dir;     /* NULL: $CIFIXER_SA_DIR, else KUBE_SA_DIR_DEFAULT */
} kube_config_opts;

#define KUBE_CONFIG_OPTS_INIT { NULL, NULL, NULL, KUBE_INCLUSTER_AUTO, NULL }

/* users[].user.exec (client.authentication.k8s.io/v1 or v1beta1). */
typedef struct kube_exec_config {
	char *api_version;       /* required */
	char *command;           /* required; resolved against the file's dir when it has a '/' */
	char **args;             /* nargs strings */
	size_t nargs;
	char **env;              /* "NAME=VALUE" strings, nenv of them */
	size_t nenv;
	int provide_cluster_info;
	char *install_hint;      /* may be NULL */
} kube_exec_config;

/* The resolved view of one context. Read-only for users of the library.
 * Every string is owned by the config; NULL means "not set". */
typedef struct kube_config {
	char *source;           /* "kubeconfig FILE[:FILE...]" or "in-cluster (DIR)" */
	char *context;          /* context name; NULL in-cluster */
	char *cluster_name;
	char *user_name;
	char *server;           /* "https://host:port", no trailing slash; never NULL */
	char *ns;               /* never NULL, "default" at least */
	int in_cluster;         /* 1 when built from the service-account directory */

	/* TLS */
	char *ca_file;          /* certificate-authority (absolute) */
	char *ca_data;          /* certificate-authority-data, decoded PEM; beats ca_file */
	size_t ca_data_len;
	int insecure;           /* insecure-skip-tls-verify: true in the file */
	char *tls_server_name;
	char *proxy_url;

	/* credentials */
	char *client_cert_file;
	char *client_key_file;
	char *client_cert_data; /* decoded PEM; beats the file */
	size_t client_cert_data_len;
	char *client_key_data;
	size_t client_key_data_len;
	char *token;            /* beats token_file */
	char *token_file;       /* tokenFile, or DIR/token in-cluster: re-read, see kube/auth.h */
	char *username;
	char *password;
	kube_exec_config *exec; /* NULL unless the user is an exec plugin */
} kube_config;

/* Load the configuration the way kubectl does (see the top of this file).
 * opts may be NULL (all defaults). Caller owns *out; free with
 * kube_config_free(). Errors name the file and the field at fault:
 * ERR_NOTFOUND (no configuration anywhere, missing context/cluster/user,
 * a missing referenced file), ERR_INVALID (unparsable YAML, a bad field),
 * ERR_TOOBIG (a file over KUBE_CONFIG_MAX_BYTES). */
int kube_config_load(kube_config **out, const kube_config_opts *opts);

/* In-cluster configuration from the environment and sa_dir (NULL: the
 * default, see kube_config_opts.sa_dir). ERR_NOTFOUND when not in a
 * cluster (no KUBERNETES_SERVICE_HOST/PORT, or no token file). */
int kube_config_in_cluster(kube_config **out, const char *sa_dir, const char *ns_override);

/* One kubeconfig document to merge: its text and the file it came from
 * (used to resolve relative paths and in messages). */
typedef struct kube_config_doc {
	const char *text;
	size_t len;
	const char *path;  /* e.g. "/home/u/.kube/config"; its directory resolves relative paths */
} kube_config_doc;

/* Merge ndocs kubeconfig documents (first wins) and resolve one context
 * (NULL: current-context). No file is read: *-data fields are decoded,
 * paths are only resolved against each document's directory.
 * The parser behind kube_config_load, exposed for tests and fuzzing.
 * Caller owns *out (kube_config_free()). */
int kube_config_parse(kube_config **out, const kube_config_doc *docs, size_t ndocs,
		      const char *context, const char *ns_override);

/* Deep copy. Caller owns *out. 0 or ERR_NOMEM. */
int kube_config_dup(kube_config **out, const kube_config *cfg);

/* Free a config. NULL-safe. */
void kube_config_free(kube_config *cfg);

#endif
