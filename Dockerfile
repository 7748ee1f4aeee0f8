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

# Workers drain on SIGTERM (the default stop signal); give them the time to do it in the
# orchestrator (stop_grace_period / terminationGracePeriodSeconds).
ENTRYPOINT ["linkkit"]
CMD ["all"]
