# kubesim: the local Kubernetes API emulator (API server half; the node
# half, the kubelet, lists its sources in kubesim/kubelet.mk).
KUBESIM_SRCS += \
	kubesim/store.c \
	kubesim/certs.c \
	kubesim/resources.c \
	kubesim/patch.c \
	kubesim/proto.c \
	kubesim/proto_schema.c \
	kubesim/selector.c \
	kubesim/faults.c \
	kubesim/inflight.c \
	kubesim/tls_front.c \
	kubesim/server.c \
	kubesim/api.c \
	kubesim/discovery.c \
	kubesim/auth.c \
	kubesim/rbac.c \
	kubesim/admission.c \
	kubesim/controllers.c \
	kubesim/metrics.c \
	kubesim/sim.c

# gnutls: kubesim terminates TLS itself (kubesim/tls_front.c says why);
# libmicrohttpd's own pkg-config entry does not export gnutls to us.
LIBS += -lgnutls

# The binary needs the kubelet half (kubesim/kubelet.c); until it exists
# only the library is built, so the tree keeps building for everyone.
ifneq ($(wildcard kubesim/kubelet.c),)
BINS += $(BUILD)/kubesim
endif
$(BUILD)/kubesim: $(call objs,kubesim/main.c) $(LIBKUBESIM) $(LIBUTIL)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
