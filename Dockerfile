# syntax=docker/dockerfile:1
# The operator's image for machines with Docker or another BuildKit builder. Without a daemon,
# scripts/image.sh builds the equivalent image (same entrypoint, user, labels) directly.
#
#   docker build -t cluster-backup-operator:0.1.0 .
#
# Keep the tag equal to Cargo.toml's version (config/manager/manager.yaml and the Helm chart's
# appVersion use it).

FROM docker.io/library/rust:1.95-bookworm AS builder
WORKDIR /src
# Dependencies first, so that a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --bin cluster-backup || true
COPY . .
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin cluster-backup \
    && cp target/release/cluster-backup /cluster-backup

# glibc, libgcc_s, CA certificates and the nonroot user (65532); no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
ARG SOURCE=""
ARG REVISION=""
LABEL org.opencontainers.image.title="cluster-backup-operator" \
      org.opencontainers.image.description="Kubernetes backup and restore operator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /cluster-backup /cluster-backup
USER 65532:65532
ENTRYPOINT ["/cluster-backup"]
