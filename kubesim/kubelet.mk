# kubesim's node half (kubelet: pods as isolated processes, exec sessions,
# container logs). Included by the top-level Makefile after
# kubesim/module.mk; owned apart from it so the two halves never edit the
# same lines.
KUBESIM_SRCS += \
	kubesim/kubelet.c \
	kubesim/pod_spec.c \
	kubesim/isolate.c \
	kubesim/logs_file.c \
	kubesim/exec_session.c
