# sandbox: one run's life on Kubernetes (Job spec, wait, workspace in/out,
# commands over exec, logs, teardown, reaper). Depends on kube and util.
SANDBOX_SRCS += \
	sandbox/model.c \
	sandbox/quantity.c \
	sandbox/validate.c \
	sandbox/placement.c \
	sandbox/jobspec.c \
	sandbox/tar.c \
	sandbox/capture.c \
	sandbox/workspace.c \
	sandbox/wait.c \
	sandbox/follow.c \
	sandbox/command.c \
	sandbox/jobs.c \
	sandbox/run.c
