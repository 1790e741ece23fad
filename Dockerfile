# syntax=docker/dockerfile:1
#
# switchboard container image: a multi-stage build (Rust builder, then a
# small non-root runtime holding only the binary).
#
#   docker build -t switchboard .
#   docker run --rm -p 4000:4000 \
#     -v "$PWD/my-switchboard.toml:/etc/switchboard/switchboard.toml:ro" switchboard
#
# The config file must set `listen = "0.0.0.0:4000"` (the default,
# 127.0.0.1, is unreachable from outside the container). Without a config
# file the image has nothing to serve; `docker run ... switchboard serve`
# runs the embedded demo, but on 127.0.0.1 only. See deploy/README.md.

ARG RUST_VERSION=1

# ---- builder ---------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
# The context is whitelisted by .dockerignore: Cargo.toml, Cargo.lock and
# crates/ only.
COPY . .
# Cache mounts keep the cargo registry and the target directory between
# builds, so a source change recompiles only the workspace crates, without a
# dependency-only layer that would have to list every crate's manifest. The
# binary is copied out of the cache mount in the same step. --locked: build
# exactly what Cargo.lock says.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p switchboard \
    && install -D -m 0755 target/release/switchboard /out/switchboard \
    && install -d -m 0750 /out/state

# ---- runtime ---------------------------------------------------------------
# gcr.io/distroless/cc-debian12: glibc and libgcc_s (all the binary links
# against: TLS is rustls with aws-lc built in, no OpenSSL), the CA
# certificates that rustls-platform-verifier reads for https webhooks, and a
# `nonroot` user (uid/gid 65532). Same Debian release as the builder, so the
# same glibc. No shell, no package manager, no curl.
#
# No HEALTHCHECK: Docker's HEALTHCHECK runs a command inside the container,
# and this image has no curl or shell to run one with (the binary has no
# self-probe subcommand). Health is checked from outside instead: Kubernetes
# probes GET /health/ready and /health/live over HTTP (deploy/kubernetes/),
# the compose file's nginx retries another node on a connect error or a 503
# (deploy/compose/nginx.conf). Because there is no `sleep` binary either, the
# Kubernetes preStop hook uses the kubelet's built-in sleep action.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/switchboard /usr/local/bin/switchboard
# A relative `state_file` (the default, switchboard-state.json: apps
# registered through the admin API on a single node) lands here; in a
# cluster they live in Redis and nothing is written. Mount a volume here to
# keep it across container restarts.
COPY --from=builder --chown=65532:65532 /out/state /var/lib/switchboard
WORKDIR /var/lib/switchboard
ENV SWITCHBOARD_LOG_FORMAT=json
# Numeric, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
EXPOSE 4000
# SIGTERM drains (readiness 503, clients told to reconnect with close 1012,
# in-flight webhooks finish within drain_timeout_secs, exit 0): give it at
# least drain_timeout_secs + 10 s before the kill (`docker stop -t 45`,
# compose stop_grace_period, Kubernetes terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/switchboard"]
CMD ["serve", "--config", "/etc/switchboard/switchboard.toml"]
