#!/usr/bin/env bash
# The operator's container image, built without Docker (no daemon, no registry, no base image
# download): an OCI image layout written directly by scripts/image.py.
#
#   scripts/image.sh                  cargo build --release, then the image
#   IMAGE_BINARY=path scripts/image.sh    package that binary instead (no cargo build)
#
# Output, in target/image/:
#   oci/                                        the OCI image layout (index.json, blobs/)
#   cluster-backup-operator-<version>.tar       the same as one archive that both
#                                               `docker load` / `podman load` (manifest.json)
#                                               and OCI tools (`skopeo copy oci-archive:...`) read
# tagged cluster-backup-operator:<version> (version from Cargo.toml).
#
# Push it to your registry, e.g.
#   skopeo copy oci-archive:target/image/cluster-backup-operator-0.1.0.tar docker://REGISTRY/cluster-backup-operator:0.1.0
#   docker load -i target/image/cluster-backup-operator-0.1.0.tar      (or podman load, kind load image-archive)
#
# The image: one layer with /cluster-backup, the shared libraries `ldd` lists for it plus the
# dynamic loader (no musl target offline, so a minimal glibc runtime instead of a static
# binary), CA certificates, /etc/passwd and /etc/group with the non-root user `nonroot`
# (65532), an empty /tmp; no shell, no package manager. Entrypoint /cluster-backup, user
# 65532:65532, OCI labels (version, source, licenses). Timestamps are SOURCE_DATE_EPOCH (the
# last commit's time by default), so the same binary gives the same image digest.
#
# tests/image.rs checks the result (`cargo test --test image -- --ignored` after this script).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { printf '[image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
[ -n "$VERSION" ] || { log "ERROR: no version in Cargo.toml"; exit 1; }

if [ -n "${IMAGE_BINARY:-}" ]; then
  BINARY=$IMAGE_BINARY
else
  log "cargo build --release (the first build takes several minutes)"
  CARGO_INCREMENTAL=0 cargo build --release --locked --bin cluster-backup
  BINARY=$ROOT/target/release/cluster-backup
fi
[ -x "$BINARY" ] || { log "ERROR: $BINARY is not an executable"; exit 1; }

SOURCE=${IMAGE_SOURCE:-$(git remote get-url origin 2>/dev/null || echo "cluster-backup-operator")}
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}

python3 "$ROOT/scripts/image.py" \
  --binary "$BINARY" --version "$VERSION" --source "$SOURCE" --revision "$REVISION" \
  --ca-certificates "${CA_CERTIFICATES:-/etc/ssl/certs/ca-certificates.crt}" \
  --out "$ROOT/target/image"
