# kube: the Kubernetes client library (config, auth, client, REST, watch,
# typed resources; exec is kube/exec.c). Depends on util only.
KUBE_SRCS += \
	kube/config.c \
	kube/auth.c \
	kube/client.c \
	kube/status.c \
	kube/rest.c \
	kube/watch.c \
	kube/resources.c \
	kube/objects.c
# pod exec over WebSocket (engineer W)
KUBE_SRCS += kube/exec.c kube/exec_http.c kube/exec_status.c
