# runner: the ci-fixer program (CLI, HTTP API, run queue, run store, metrics).
# Depends on sandbox, kube and util.
RUNNER_SRCS += \
	runner/request.c \
	runner/result.c \
	runner/bridge.c \
	runner/cli.c \
	runner/sse.c \
	runner/store.c \
	runner/rbac_check.c \
	runner/cmd_run.c \
	runner/cmd_submit.c \
	runner/cmd_verify_rbac.c \
	runner/serve.c

BINS += $(BUILD)/ci-fixer
$(BUILD)/ci-fixer: $(call objs,runner/main.c) $(LIBRUNNER) $(LIBSANDBOX) $(LIBKUBE) $(LIBUTIL)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
