# syntax=docker/dockerfile:1
#
# session-authorizer container image.
#
#   docker build -t session-authorizer .
#   docker run --rm -p 8080:8080 -p 9191:9191 \
#     -e SESSION_AUTHORIZER__SUPERTOKENS__CONNECTION_URI=http://core:3567 \
#     -e SESSION_AUTHORIZER__SUPERTOKENS__API_KEY=... \
#     session-authorizer
#
# The configuration is /etc/session-authorizer/config.toml (the repository's documented default,
# `config.toml`); mount your own file there, or override single keys with
# SESSION_AUTHORIZER__<SECTION>__<KEY> variables. `docker run IMAGE check-config` validates and
# prints the effective configuration (secrets redacted). docs/deploy.md has the details.
#
# tests/packaging.rs reads ENTRYPOINT, CMD, ENV, EXPOSE, USER and the config COPY from this file
# and runs the natively built binary exactly that way: keep ENTRYPOINT and CMD in JSON form.

ARG RUST_VERSION=1.95

# ---------------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# Only what the build needs (see .dockerignore); the dependency and target caches are BuildKit
# cache mounts, so the binary is copied out of them in the same step.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY proto ./proto
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --no-default-features --bin session-authorizer \
    && install -D -m 0755 target/release/session-authorizer /out/session-authorizer

# ---------------------------------------------------------------------------------------------
# Distroless: glibc, libgcc, CA certificates and a nonroot user (65532), no shell, no package
# manager. Built on bookworm, so the binary's glibc matches.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="session-authorizer" \
      org.opencontainers.image.description="SuperTokens session authorizer for API gateways: Lambda authorizer contract, Envoy ext_authz (HTTP and gRPC), forward-auth" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="session-authorizer" \
      org.opencontainers.image.source="${SOURCE_URL}"

COPY --from=build /out/session-authorizer /usr/local/bin/session-authorizer
COPY config.toml /etc/session-authorizer/config.toml

# JSON logs on stdout; RUST_LOG picks the level.
ENV RUST_LOG=info

USER 65532:65532
# server.http_listen (Lambda contract, /ext-authz, /forward-auth, /healthz, /readyz, /metrics)
EXPOSE 8080
# server.grpc_listen (Envoy ext_authz gRPC)
EXPOSE 9191

ENTRYPOINT ["/usr/local/bin/session-authorizer", "--config", "/etc/session-authorizer/config.toml"]
CMD ["serve"]
