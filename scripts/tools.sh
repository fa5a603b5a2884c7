#!/usr/bin/env bash
# Release tooling for the chart and the alert rules, built from the Go module proxy (no
# downloads of prebuilt binaries) and cached outside the repository next to the test ground's
# binaries, keyed by version:
#   ${CLUSTER_BACKUP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cluster-backup-operator}/helm-<v>/helm
#   .../promtool-<v>/promtool
#
#   scripts/tools.sh build          build what is missing (helm, promtool); prints nothing else
#   scripts/tools.sh path helm      print the path of the cached binary (fails if not built)
#   scripts/tools.sh path promtool
#
# HELM / PROMTOOL (paths to existing binaries) skip the build, like KUBEBUILDER_ASSETS does
# for the control plane.
set -euo pipefail

# helm.sh/helm/v3 and Prometheus' Go module (v0.3xx.y is Prometheus 3.xx.y).
HELM_VERSION=${HELM_VERSION:-v3.22.0}
PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-v0.316.0}

CACHE=${CLUSTER_BACKUP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cluster-backup-operator}

log() { printf '[tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

helm_bin() { if [ -n "${HELM:-}" ]; then echo "$HELM"; else echo "$CACHE/helm-$HELM_VERSION/helm"; fi; }
promtool_bin() { if [ -n "${PROMTOOL:-}" ]; then echo "$PROMTOOL"; else echo "$CACHE/promtool-$PROMETHEUS_VERSION/promtool"; fi; }

# `go install pkg@version` in a throw-away GOBIN, then an atomic move into the cache: an
# interrupted build never leaves a half-written binary that later runs would trust.
go_install() { # NAME PACKAGE VERSION OUT_DIR [LDFLAGS] [TAGS]
  local name=$1 pkg=$2 version=$3 out=$4 ldflags=${5:-} tags=${6:-} started=$SECONDS tmp
  command -v go >/dev/null || die "Go is needed to build $name (or set ${name^^} to a binary)"
  log "building $name $version from the Go module proxy into $out (first run only)"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/tools-$name.XXXXXX")
  # cd away from the repository; CGO off gives a static binary; -pgo=off: no profile download.
  (cd "$tmp" && GOFLAGS="${GOFLAGS:-} -mod=mod" CGO_ENABLED=0 GOBIN="$tmp/bin" \
     go install -pgo=off -trimpath -tags "$tags" -ldflags "-s -w $ldflags" "$pkg@$version" >&2) \
    || { rm -rf "$tmp"; die "go install $pkg@$version failed"; }
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  mv "$tmp/bin/$name" "$out.tmp/$name"
  rm -rf "$out" && mv "$out.tmp" "$out"
  rm -rf "$tmp"
  log "$name $version built in $((SECONDS - started)) s"
}

build_helm() {
  [ -n "${HELM:-}" ] && { [ -x "$HELM" ] || die "HELM=$HELM is not executable"; return 0; }
  [ -x "$(helm_bin)" ] && return 0
  # Without these, `helm version` says v3.x-dev-ish defaults; stamp the real version.
  go_install helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "$(dirname "$(helm_bin)")" \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
}

build_promtool() {
  [ -n "${PROMTOOL:-}" ] && { [ -x "$PROMTOOL" ] || die "PROMTOOL=$PROMTOOL is not executable"; return 0; }
  [ -x "$(promtool_bin)" ] && return 0
  local v=${PROMETHEUS_VERSION#v0.}
  # v0.316.0 -> 3.16.0 for `promtool --version`. remove_all_sd leaves out every service
  # discovery plugin (AWS, Azure, GCE, Kubernetes, ... SDKs): checking and unit-testing rules
  # needs none, and they are most of the module graph and of the compile time.
  go_install promtool github.com/prometheus/prometheus/cmd/promtool "$PROMETHEUS_VERSION" \
    "$(dirname "$(promtool_bin)")" \
    "-X github.com/prometheus/common/version.Version=${v:0:1}.${v:1}" remove_all_sd
}

# One build at a time per cache (CI and a developer may share it).
take_lock() {
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.tools.lock"
  flock 8
}

case "${1:-}" in
  build)
    take_lock
    build_helm
    build_promtool
    ;;
  path)
    case "${2:-}" in
      helm) b=$(helm_bin) ;;
      promtool) b=$(promtool_bin) ;;
      *) die "usage: scripts/tools.sh path helm|promtool" ;;
    esac
    [ -x "$b" ] || die "$b is not built (run: scripts/tools.sh build)"
    echo "$b"
    ;;
  *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
