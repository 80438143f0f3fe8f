# syntax=docker/dockerfile:1
# ci-fixer image: build in Debian bookworm, run in bookworm-slim as a
# numeric non-root user with only the shared libraries the binary links.
#
#   docker build -t ci-fixer:0.1.0 .
#   docker run --rm ci-fixer:0.1.0 --help
#
# Pin the bases by digest in production builds, e.g.
#   docker build --build-arg BUILD_IMAGE=debian:bookworm@sha256:<digest> \
#                --build-arg RUNTIME_IMAGE=debian:bookworm-slim@sha256:<digest> .
# (digests cannot be looked up where this file was written; the tags below
# are the release tags, never latest).
ARG BUILD_IMAGE=debian:bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# DL3008 (pin apt versions) is not followed: bookworm's point releases
# replace package versions; the base digest pins the set instead.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential pkg-config ca-certificates \
      libcurl4-openssl-dev libssl-dev libcjson-dev libyaml-dev libgit2-dev \
      libmicrohttpd-dev libgnutls28-dev libsqlite3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# RELEASE=1: -O2 -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
# -fstack-clash-protection, -pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack
RUN make -j"$(nproc)" RELEASE=1 build/ci-fixer \
 && install -D -m 0755 build/ci-fixer /out/usr/local/bin/ci-fixer \
 && strip --strip-unneeded /out/usr/local/bin/ci-fixer \
 && ldd /out/usr/local/bin/ci-fixer

FROM ${RUNTIME_IMAGE} AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The packages of exactly the libraries the binary links (its DT_NEEDED
# entries; their own dependencies come with them, e.g. libgnutls30 with
# libmicrohttpd12: the -lgnutls in the build is kubesim's and --as-needed
# drops it from ci-fixer), and CA certificates for HTTPS to the API server
# and git hosts. Nothing else: no shell tools, no compiler, no git binary
# (libgit2 does the cloning). tests/integration/deploy_static.sh checks
# this list against `readelf -d` and `ldd` of a locally built binary.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates libcurl4 libssl3 libcjson1 libyaml-0-2 libgit2-1.5 \
      libmicrohttpd12 libsqlite3-0 \
 && rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/*.log
COPY --from=build /out/ /
# Every library the binary needs resolves: the build fails otherwise.
RUN if ldd /usr/local/bin/ci-fixer | grep -q 'not found'; then \
      ldd /usr/local/bin/ci-fixer; exit 1; \
    fi
LABEL org.opencontainers.image.title="ci-fixer" \
      org.opencontainers.image.description="Sandbox job runner for CI on Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
# libgit2 and the service write only under /tmp and the data dir (emptyDir
# volumes in Kubernetes; the root filesystem is read-only).
ENV HOME=/tmp
EXPOSE 3001
# 65532: the conventional non-root UID/GID (distroless "nonroot"); numeric,
# so Kubernetes can verify runAsNonRoot without a passwd entry.
USER 65532:65532
# Exec form: ci-fixer is PID 1 and receives SIGTERM itself (it drains:
# stops accepting, finishes or cancels runs, deletes every Job).
ENTRYPOINT ["/usr/local/bin/ci-fixer"]
CMD ["serve"]
