# syntax=docker/dockerfile:1
#
# Linkkit: one image, one binary, one subcommand per deployable
# (`docker run linkkit api|redirect|fanout|sender|all|migrate`).

# ---- build ------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src

# The whole workspace is needed: `tests` is a workspace member and `--locked` checks
# Cargo.lock against every member. .dockerignore keeps target/ and .git/ out.
COPY . .

# Cache mounts keep the registry and target/ between builds, so a code change recompiles
# only our crates. target/ is a cache mount and does not survive the RUN, hence the copy.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin linkkit \
 && install -m 0755 target/release/linkkit /usr/local/bin/linkkit

# ---- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim

# ca-certificates: webhook endpoints are HTTPS and rustls reads the system roots. Not
# pinned on purpose: the newest trust store of the release is the one to have.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 linkkit \
 && useradd --system --uid 10001 --gid linkkit --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin linkkit

COPY --from=builder /usr/local/bin/linkkit /usr/local/bin/linkkit

# Health check without curl: bash (in every Debian image) opens the admin port through
# /dev/tcp and reads the status line. `linkkit-healthcheck /readyz` checks readiness.
COPY --chmod=0755 <<'EOF' /usr/local/bin/linkkit-healthcheck
#!/bin/bash
# linkkit-healthcheck [PATH]: exit 0 when this container's admin server (LINKKIT_ADMIN_ADDR)
# answers GET PATH (default /healthz) with 200 within 5 seconds.
set -u
path=${1:-/healthz}
addr=${LINKKIT_ADMIN_ADDR:-127.0.0.1:9464}
host=${addr%:*} port=${addr##*:}
case $host in 0.0.0.0 | "") host=127.0.0.1 ;; "[::]") host=::1 ;; \[*\]) host=${host:1:-1} ;; esac
exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$path" >&3
read -r -t 5 _ status _ <&3 || exit 1
[ "$status" = 200 ]
EOF

# The built-in defaults bind 127.0.0.1, which nothing outside a container can reach.
# Inside the image every listener binds all interfaces; the rest of SPEC §2 keeps its
# defaults and is set by the deployment (compose file, Kubernetes ConfigMap/Secret).
ENV LINKKIT_API_ADDR=0.0.0.0:8080 \
    LINKKIT_REDIRECT_ADDR=0.0.0.0:8081 \
    LINKKIT_ADMIN_ADDR=0.0.0.0:9464

# Numeric uid so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001

# 8080 API, 8081 redirect, 9464 admin (/metrics, /healthz, /readyz).
EXPOSE 8080 8081 9464

# For `docker run`; docker-compose.yml sets its own per service (and none for migrate,
# which exits). Kubernetes ignores it and uses the probes of deploy/k8s.
HEALTHCHECK --interval=10s --timeout=6s --start-period=20s --retries=3 \
    CMD ["linkkit-healthcheck", "/healthz"]

# Workers drain on SIGTERM (the default stop signal); give them the time to do it in the
# orchestrator (stop_grace_period / terminationGracePeriodSeconds).
ENTRYPOINT ["linkkit"]
CMD ["all"]
