#!/usr/bin/env bash
# Backup and restore benchmark: 10,000 ConfigMaps and Secrets in 20 namespaces, backed up by the release
# operator binary to the local S3 server. Reports trigger-to-Completed wall time and the
# operator's RSS, and measures what limits it; writes the results into BENCHMARKS.md.
#
#   scripts/bench.sh [--keep] [--runs N] [--s3 shared|s3s-fs|seaweedfs] [--no-build] [--no-write]
#                    [--no-restore]
#
#   --keep       leave the `bench` and `bench-restore` control planes, the buckets written and
#                the work directory in place (the operator processes are always stopped)
#   --runs N     measured runs of the explicit-namespace Backup (default 3)
#   --s3 MODE    shared (default): the S3 server shared by this checkout's test grounds.
#                s3s-fs or seaweedfs: a fresh S3 server of that kind for the benchmark alone
#                (a separate test-ground root, TESTENV_DIR=${TMPDIR:-/tmp}/cluster-backup-bench-testenv,
#                removed at the end); its CPU column then counts only the benchmark's own
#                requests, not those of tests running against the shared server
#   --no-build   do not run `cargo build --release` (the binary must exist)
#   --no-write   print the results only; leave BENCHMARKS.md alone
#   --no-restore skip the restore measurement (and the `bench-restore` control plane)
#
# Uses its own test ground `scripts/testenv.sh up bench` (a separate etcd + kube-apiserver).
# Everything talks to 127.0.0.1 only. BENCHMARKS.md keeps one generated section per S3 setup
# (shared-s3s-fs, own-s3s-fs, own-seaweedfs, ...); a run replaces only its own section.
#
# Steps: seed (timed separately, not part of any measurement) -> install CRDs -> start
# target/release/cluster-backup run in the background -> a warm-up Backup (tiny) ->
# N one-shot Backups of the 20 namespaces, each timed from the POST that creates it until
# status.phase is Completed (polled every 100 ms) -> one Backup with namespaces ["*"] -> one
# Backup to the `filesystem` provider (the same run without S3, a diagnostic) -> restore: the
# last explicit-namespace backup (run-N) into a second, empty control plane `bench-restore`
# (same S3 server) by a second operator process, timed from the POST that creates the Restore
# until status.phase is Completed, with status.resourceCounts.created == 10,000 -> floors: the
# API server's list time and the S3 server's raw PUT rate.
# Targets (under 10 s, under 100 MiB peak RSS) are reported, not asserted: the exit status is
# non-zero only for real errors (a step that fails, a backup with the wrong object count, a
# one-shot Backup that ran more than once); the work directory is then kept for inspection.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$ROOT/scripts/bench
NAME=bench
KEEP=0
RUNS=3
BUILD=1
WRITE_MD=1
S3_MODE=shared
NS_COUNT=20
CM_PER_NS=250
SECRET_PER_NS=250
NS_PREFIX=bench
BACKUP_NS=bench-system
TARGET_SECONDS=10
TARGET_RSS_MIB=100
POLL_INTERVAL=0.1
RUN_TIMEOUT=900
RESTORE=1
RESTORE_NAME=bench-restore
RESTORE_NS=default

while [ $# -gt 0 ]; do
  case "$1" in
    --keep) KEEP=1 ;;
    --runs) RUNS=${2:?--runs needs a number}; shift ;;
    --no-build) BUILD=0 ;;
    --no-write) WRITE_MD=0 ;;
    --no-restore) RESTORE=0 ;;
    --s3) S3_MODE=${2:?--s3 needs shared, s3s-fs or seaweedfs}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "--runs must be a positive number" >&2; exit 2; }
case "$S3_MODE" in
  shared) ;;
  s3s-fs|seaweedfs)
    # A test-ground root of our own: its S3 server is started fresh for us and removed by
    # the final `down` (we are its only NAME).
    export TESTENV_DIR="${TMPDIR:-/tmp}/cluster-backup-bench-testenv" TESTENV_S3=$S3_MODE ;;
  *) echo "--s3 must be shared, s3s-fs or seaweedfs" >&2; exit 2 ;;
esac

EXPECTED=$((NS_COUNT * (CM_PER_NS + SECRET_PER_NS)))
BIN=$ROOT/target/release/cluster-backup
STARTED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b-a}'; } # START END -> seconds

OP_PID=
R_OP_PID=         # the restore operator (against bench-restore)
R_UP=0            # bench-restore was started by this run
WORK=
BUCKET=
FS_DIR=
ERRORS=0
S3_KIND=
S3_DATA=
BUCKETS=()        # every bucket this run wrote to, purged at the end (kept with --keep)

stop_pid() { # PID: TERM, up to 5 s, then KILL
  local pid=$1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  stop_pid "$OP_PID"
  stop_pid "$R_OP_PID"
  local b
  if [ "$KEEP" = 1 ]; then
    [ "${#BUCKETS[@]}" -gt 0 ] && log "kept: buckets ${BUCKETS[*]} on $S3_ENDPOINT"
    [ -n "$WORK" ] && log "kept: work directory $WORK (operator log: $WORK/operator.log), control plane '$NAME'"
    [ "$R_UP" = 1 ] && log "kept: control plane '$RESTORE_NAME' with the restored objects (restore operator log: $WORK/restore-operator.log)"
  else
    # The shared S3 server would otherwise keep tens of thousands of our small objects.
    for b in "${BUCKETS[@]}"; do purge_bucket "$b"; done
    if [ "$ERRORS" -gt 0 ] && [ -n "$WORK" ]; then
      rm -rf -- "$WORK/seed" "$WORK/fs-backups"
      log "kept for inspection: $WORK (operator.log, backups.yaml, events.txt)"
    elif [ -n "$WORK" ]; then
      rm -rf -- "$WORK"
    fi
    if [ "$R_UP" = 1 ]; then "$ROOT/scripts/testenv.sh" down "$RESTORE_NAME" >/dev/null 2>&1 || true; fi
    if [ -n "${TESTENV_ROOT:-}" ]; then "$ROOT/scripts/testenv.sh" down "$NAME" >/dev/null 2>&1 || true; fi
    # Our own test-ground root (--s3 s3s-fs|seaweedfs): once nothing but its lock file is left, remove it.
    if [ "$S3_MODE" != shared ] && [ -d "${TESTENV_DIR:-}" ] && [ -z "$(find "$TESTENV_DIR" -mindepth 1 ! -name .lock -print -quit)" ]; then
      rm -f -- "$TESTENV_DIR/.lock"; rmdir -- "$TESTENV_DIR" 2>/dev/null || true
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- helpers ----------------------------------------------------------------------------

# curl to the API server as the kubeconfig's admin (certificates extracted once into $WORK).
api() { # METHOD PATH [curl args...]
  local method=$1 path=$2; shift 2
  curl --noproxy '*' -sS --max-time 60 --cacert "$WORK/ca.crt" --cert "$WORK/client.crt" --key "$WORK/client.key" \
    -X "$method" "$API_SERVER$path" "$@"
}
# The same against the restore control plane (certificates in $WORK/restore).
rapi() { # METHOD PATH [curl args...]
  local method=$1 path=$2; shift 2
  curl --noproxy '*' -sS --max-time 60 --cacert "$WORK/restore/ca.crt" --cert "$WORK/restore/client.crt" \
    --key "$WORK/restore/client.key" -X "$method" "$R_API_SERVER$path" "$@"
}

proc_field() { # PID FIELD -> value in KiB from /proc/PID/status
  awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { # PID -> utime+stime in ticks (0 if not readable)
  local pid=$1 stat
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || { echo 0; return; }
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || { echo 0; return; }
  stat=${stat##*) }   # drop "pid (comm) "
  awk '{print $12 + $13}' <<<"$stat"
}
ticks_to_s() { awk -v t="$1" -v hz="$CLK_TCK" 'BEGIN{printf "%.1f", t/hz}'; }
kib_to_mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }

pid_from() { # PIDFILE -> pid or empty
  local p; p=$(cat "$1" 2>/dev/null || true)
  [[ "$p" =~ ^[0-9]+$ ]] && [ -d "/proc/$p" ] && echo "$p" || true
}

# Removes one of our buckets from the shared S3 server (not timed). s3s-fs keeps two metadata
# files per object in the flat root of its data directory and never deletes them (not even on
# DeleteObject), so for it the files are removed directly; other servers get S3 requests.
purge_bucket() { # BUCKET
  local bucket=$1 enc
  [[ "$bucket" == bench-* ]] || return 0
  case "$S3_KIND" in
    s3s-fs)
      [ -d "$S3_DATA" ] || return 0
      rm -rf -- "${S3_DATA:?}/$bucket"
      enc=$(printf '%s' "$bucket" | base64 -w0 | tr '+/' '-_' | tr -d '=')
      find "$S3_DATA" -maxdepth 1 -name ".bucket-$enc.*" -delete 2>/dev/null || true ;;
    *)
      python3 "$HERE/s3tool.py" purge "$S3_ENDPOINT" "$bucket" >/dev/null 2>&1 || log "note: could not purge bucket $bucket" ;;
  esac
}

s3_storage() { # BUCKET -> storageLocation JSON
  jq -nc --arg b "$1" --arg e "$S3_ENDPOINT" --arg r "$S3_REGION" \
    '{provider: "s3", bucket: $b, endpoint: $e, region: $r, credentialsSecret: "bench-s3"}'
}

# A new bucket for each run. Buckets are only deleted at the very end: deleting many files just
# before a run makes s3s-fs several times slower for minutes, because on this machine's ext4
# the kernel skips recently freed inodes when it allocates new ones (perf: recently_deleted()).
next_bucket() { # LABEL -> sets BUCKET (call it in the main shell, not in $(...))
  BUCKET="$BUCKET_BASE-$1"
  BUCKETS+=("$BUCKET")
}

median() { sort -n | awk '{a[NR]=$1} END{if (NR==0) {print "n/a"} else if (NR%2) {print a[(NR+1)/2]} else {printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}}'; }

backup_json() { # NAME SOURCE_JSON STORAGE_JSON
  jq -n --arg name "$1" --arg ns "$BACKUP_NS" --argjson source "$2" --argjson storage "$3" \
    '{apiVersion: "backup.cnd.dk/v1", kind: "Backup", metadata: {name: $name, namespace: $ns},
      spec: {source: $source, storageLocation: $storage}}'
}

# Creates a Backup and waits for its one-shot run to finish. Appends one TSV line to
# $WORK/results.tsv:
# label wall_s pickup_s engine_s result objects bytes idle_rss_kib peak_rss_kib
#   cpu_operator cpu_apiserver cpu_etcd cpu_s3 load1 ok
measure() { # LABEL BACKUP_NAME EXPECTED_OBJECTS SOURCE_JSON STORAGE_JSON
  local label=$1 name=$2 expected=$3 body t0 t_running='' t1='' code phase status i
  body=$(backup_json "$name" "$4" "$5")
  local idle_rss; idle_rss=$(proc_field "$OP_PID" VmRSS)
  # Reset the peak-RSS counter so VmHWM afterwards is this run's peak (Linux >= 4.0).
  echo 5 > "/proc/$OP_PID/clear_refs" 2>/dev/null || log "note: cannot reset VmHWM; peak covers the process lifetime"
  local load1; load1=$(cut -d' ' -f1 /proc/loadavg)
  local c_op c_api c_etcd c_s3
  c_op=$(cpu_ticks "$OP_PID"); c_api=$(cpu_ticks "$APISERVER_PID"); c_etcd=$(cpu_ticks "$ETCD_PID"); c_s3=$(cpu_ticks "$S3_PID")
  log "[$label] creating Backup $BACKUP_NS/$name (operator RSS idle $(kib_to_mib "$idle_rss") MiB, load $load1)"
  t0=$(now)
  code=$(api POST "/apis/backup.cnd.dk/v1/namespaces/$BACKUP_NS/backups" -H 'Content-Type: application/json' \
           -d "$body" -o "$WORK/create.out" -w '%{http_code}') || die "[$label] creating the Backup failed"
  [ "$code" = 201 ] || die "[$label] creating the Backup: HTTP $code: $(head -c 400 "$WORK/create.out")"
  for ((i = 0; ; i++)); do
    status=$(api GET "/apis/backup.cnd.dk/v1/namespaces/$BACKUP_NS/backups/$name") || status='{}'
    phase=$(jq -r '.status.phase // ""' <<<"$status" 2>/dev/null || true)
    if [ -z "$t_running" ] && [ -n "$phase" ] && [ "$phase" != New ]; then t_running=$(now); fi
    case "$phase" in
      Completed|PartiallyFailed|Failed) t1=$(now); break ;;
    esac
    if awk -v a="$t0" -v b="$(now)" -v t="$RUN_TIMEOUT" 'BEGIN{exit !(b-a > t)}'; then
      die "[$label] no result after $RUN_TIMEOUT s (phase '$phase'); operator log: $WORK/operator.log"
    fi
    sleep "$POLL_INTERVAL"
  done
  local peak
  peak=$(proc_field "$OP_PID" VmHWM)
  local d_op d_api d_etcd d_s3
  d_op=$(( $(cpu_ticks "$OP_PID") - c_op )); d_api=$(( $(cpu_ticks "$APISERVER_PID") - c_api ))
  d_etcd=$(( $(cpu_ticks "$ETCD_PID") - c_etcd )); d_s3=$(( $(cpu_ticks "$S3_PID") - c_s3 ))
  local objects bytes result message engine_s wall pickup ok=yes
  objects=$(jq -r '.status.lastRun.objects // 0' <<<"$status")
  bytes=$(jq -r '.status.lastRun.bytes // 0' <<<"$status")
  result=$(jq -r '.status.lastRun.result // "?"' <<<"$status")
  message=$(jq -r '.status.lastRun.message // .status.message // ""' <<<"$status")
  engine_s=$(sed -n 's/.* in \([0-9.]*\) s at .*/\1/p' <<<"$message"); engine_s=${engine_s:-n/a}
  wall=$(elapsed "$t0" "$t1"); pickup=$(elapsed "$t0" "${t_running:-$t1}")
  if [ "$phase" != Completed ] || [ "$objects" != "$expected" ]; then
    ok=NO
    ERRORS=$((ERRORS + 1))
    log "[$label] WRONG RESULT: phase $phase, objects $objects (expected $expected): $message"
  fi
  # A one-shot Backup runs exactly once: a second run (e.g. one started from a stale cache)
  # shows up as more than one history entry, possibly only a moment after Completed.
  sleep 1
  status=$(api GET "/apis/backup.cnd.dk/v1/namespaces/$BACKUP_NS/backups/$name") || status='{}'
  local runs phase_after
  runs=$(jq -r '.status.history // [] | length' <<<"$status")
  phase_after=$(jq -r '.status.phase // ""' <<<"$status")
  if [ "$runs" != 1 ] || [ "$phase_after" != Completed ]; then
    [ "$ok" = NO ] || ERRORS=$((ERRORS + 1))
    ok="NO: ran $runs times (phase now $phase_after)"
    log "[$label] DUPLICATE RUN: the one-shot Backup has $runs history entries, phase now $phase_after: $(jq -c '[.status.history[]? | {trigger, result, startTime, completionTime, message}]' <<<"$status")"
  fi
  log "[$label] $phase in $wall s (run ${engine_s} s, picked up after $pickup s): $objects objects, $bytes bytes; peak RSS $(kib_to_mib "$peak") MiB; CPU s op/apiserver/etcd/s3 $(ticks_to_s "$d_op")/$(ticks_to_s "$d_api")/$(ticks_to_s "$d_etcd")/$(ticks_to_s "$d_s3")"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$wall" "$pickup" "$engine_s" "$result" \
    "$objects" "$bytes" "$idle_rss" "$peak" "$(ticks_to_s "$d_op")" "$(ticks_to_s "$d_api")" "$(ticks_to_s "$d_etcd")" \
    "$(ticks_to_s "$d_s3")" "$load1" "$ok" >> "$WORK/results.tsv"
}

# --- build, test ground ------------------------------------------------------------------

command -v jq >/dev/null || die "jq is needed"
command -v python3 >/dev/null || die "python3 is needed"
command -v curl >/dev/null || die "curl is needed"

if [ "$BUILD" = 1 ]; then
  log "cargo build --release (first build on 2 cores takes a long while)"
  (cd "$ROOT" && cargo build --release --bin cluster-backup >&2) || die "cargo build --release failed"
fi
[ -x "$BIN" ] || die "$BIN is missing (run without --no-build)"

log "starting test ground '$NAME'"
ENV_FILE=$("$ROOT/scripts/testenv.sh" up "$NAME") || die "scripts/testenv.sh up $NAME failed"
# shellcheck disable=SC1090
. "$ENV_FILE"
[ -n "${KUBECTL:-}" ] && [ -x "$KUBECTL" ] || die "no kubectl from the test ground"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cluster-backup-bench.XXXXXX")
chmod 700 "$WORK"
: > "$WORK/results.tsv"
API_SERVER=$("$KUBECTL" config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
case "$API_SERVER" in https://127.0.0.1:*|https://localhost:*) ;; *) die "API server $API_SERVER is not on loopback" ;; esac
case "$S3_ENDPOINT" in http://127.0.0.1:*|http://localhost:*) ;; *) die "S3 endpoint $S3_ENDPOINT is not on loopback" ;; esac
"$KUBECTL" config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d > "$WORK/ca.crt"
"$KUBECTL" config view --raw --minify -o jsonpath='{.users[0].user.client-certificate-data}' | base64 -d > "$WORK/client.crt"
"$KUBECTL" config view --raw --minify -o jsonpath='{.users[0].user.client-key-data}' | base64 -d > "$WORK/client.key"
chmod 600 "$WORK"/*.crt "$WORK"/*.key
[ "$(api GET /readyz)" = ok ] || die "API server $API_SERVER is not ready"
APISERVER_PID=$(pid_from "$TESTENV_ROOT/apiserver.pid")
ETCD_PID=$(pid_from "$TESTENV_ROOT/etcd.pid")
S3_STATE=$(dirname "$TESTENV_ROOT")/_s3
S3_PID=$(pid_from "$S3_STATE/pid")
S3_DATA=$S3_STATE/data
# Which server the shared one is (scripts/testenv.sh records it; no record = s3s-fs).
S3_KIND=$(cat "$S3_STATE/kind" 2>/dev/null || echo s3s-fs)
K8S_VERSION=$(api GET /version | jq -r .gitVersion)
ETCD_VER=$("$(tr '\0' '\n' < "/proc/$ETCD_PID/cmdline" 2>/dev/null | head -1 || true)" --version 2>/dev/null | awk '/^etcd Version/ {print $3}' || true)
ETCD_VER=${ETCD_VER:-(version unknown)}
S3_BIN=$(tr '\0' '\n' < "/proc/$S3_PID/cmdline" 2>/dev/null | head -1 || true)
case "$S3_KIND" in
  s3s-fs) S3_VERSION=$("$S3_BIN" --version 2>/dev/null || echo "s3s-fs (version unknown)") ;;
  seaweedfs) S3_VERSION="SeaweedFS $("$S3_BIN" version 2>/dev/null | awk '/^version/ {print $3; exit}' || true)" ;;
  *) S3_VERSION=$S3_KIND ;;
esac
if [ "$S3_MODE" = shared ]; then SETUP="shared-$S3_KIND"; else SETUP="own-$S3_KIND"; fi
# s3s-fs keeps two metadata files per object in the flat root of its data directory, forever,
# and ext4 directories never shrink: the state the shared server is in matters for its speed.
S3_STATE_NOTE=
if [ "$S3_KIND" = s3s-fs ] && [ -d "$S3_DATA" ]; then
  S3_STATE_NOTE="at the start its data directory held $(find "$S3_DATA" -mindepth 1 -maxdepth 1 | wc -l) entries in its root, directory size $(( $(stat -c %s "$S3_DATA") / 1024 )) KiB"
fi
log "S3 setup: $SETUP ($S3_VERSION at $S3_ENDPOINT${S3_STATE_NOTE:+; $S3_STATE_NOTE})"

# --- seed (not measured) -----------------------------------------------------------------

count_seeded() { # [API_FUNCTION] -> number of seeded ConfigMaps + Secrets (metadata lists)
  local fn=${1:-api} type total=0 n cont page
  for type in configmaps secrets; do
    cont=
    while :; do
      page=$("$fn" GET "/api/v1/$type?limit=500&labelSelector=bench.cnd.dk%2Fseed%3Dtrue${cont:+&continue=$cont}" \
               -H 'Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1')
      n=$(jq '.items | length' <<<"$page"); total=$((total + n))
      cont=$(jq -r '.metadata.continue // ""' <<<"$page")
      [ -n "$cont" ] || break
    done
  done
  echo "$total"
}

log "generating $EXPECTED objects ($NS_COUNT namespaces x ($CM_PER_NS ConfigMaps + $SECRET_PER_NS Secrets))"
python3 "$HERE/gen_objects.py" "$WORK/seed" "$NS_COUNT" "$CM_PER_NS" "$SECRET_PER_NS" "$NS_PREFIX" > "$WORK/seed-files.txt"
SEEDED_BEFORE=$(count_seeded)
t=$(now)
if [ "$SEEDED_BEFORE" = "$EXPECTED" ]; then
  log "the $EXPECTED objects are already there (kept test ground); not seeding"
  SEED_NOTE="already seeded"
else
  log "seeding: concurrent POSTs (8 workers, keep-alive HTTPS) of one JSON List per namespace"
  mapfile -t SEED_FILES < "$WORK/seed-files.txt"
  SEED_OUT=$(python3 "$HERE/seed.py" "$KUBECONFIG" 8 "${SEED_FILES[@]}") || die "seeding failed"
  SEED_NOTE=$SEED_OUT
fi
SEED_SECONDS=$(elapsed "$t" "$(now)")
SEEDED=$(count_seeded)
[ "$SEEDED" = "$EXPECTED" ] || die "seeded $SEEDED objects, expected $EXPECTED"
SEED_BYTES=$(jq -s '[.[].items[] | select(.kind != "Namespace") | .data | tojson | length] | add' "$WORK"/seed/*.json)
log "seeded $SEEDED objects in $SEED_SECONDS s ($SEED_NOTE); data ${SEED_BYTES} bytes, $((SEED_BYTES / SEEDED)) bytes/object"

# --- operator ----------------------------------------------------------------------------

log "installing CRDs"
"$BIN" install >&2 || die "cluster-backup install failed"
"$KUBECTL" create namespace "$BACKUP_NS" --dry-run=client -o json | "$KUBECTL" apply -f - >/dev/null
jq -n --arg ns "$BACKUP_NS" --arg a "$S3_ACCESS_KEY" --arg s "$S3_SECRET_KEY" \
  '{apiVersion: "v1", kind: "Secret", metadata: {name: "bench-s3", namespace: $ns}, type: "Opaque",
    stringData: {accessKey: $a, secretKey: $s}}' | "$KUBECTL" apply -f - >/dev/null
# Leftover Backups of a kept test ground would be reconciled by the new operator; start clean.
"$KUBECTL" -n "$BACKUP_NS" delete backups.backup.cnd.dk --all --wait=true >/dev/null 2>&1 || true

log "starting $BIN run (log: $WORK/operator.log)"
RUST_LOG=${RUST_LOG:-info,kube_runtime=warn,object_store=warn} "$BIN" run > "$WORK/operator.log" 2>&1 &
OP_PID=$!
for _ in $(seq 100); do
  grep -q 'starting cluster-backup operator' "$WORK/operator.log" 2>/dev/null && break
  kill -0 "$OP_PID" 2>/dev/null || { tail -20 "$WORK/operator.log" >&2; die "the operator exited"; }
  sleep 0.1
done
sleep 1  # let the controller's watch start
kill -0 "$OP_PID" 2>/dev/null || { tail -20 "$WORK/operator.log" >&2; die "the operator exited"; }
OP_START_RSS=$(proc_field "$OP_PID" VmRSS)
log "operator pid $OP_PID, RSS after start $(kib_to_mib "$OP_START_RSS") MiB"

BUCKET_BASE="bench-$(date +%Y%m%d-%H%M%S)-$$"
NAMESPACES_JSON=$(for ((n = 0; n < NS_COUNT; n++)); do printf '%s-%02d\n' "$NS_PREFIX" "$n"; done | jq -R . | jq -sc .)
SOURCE_EXPLICIT=$(jq -nc --argjson ns "$NAMESPACES_JSON" '{namespaces: $ns, resourceTypes: ["configmaps", "secrets"]}')
EXCLUDED='["'"$BACKUP_NS"'", "default", "kube-system", "kube-public", "kube-node-lease"]'
SOURCE_ALL=$(jq -nc --argjson ex "$EXCLUDED" '{namespaces: ["*"], excludeNamespaces: $ex, resourceTypes: ["configmaps", "secrets"]}')
# What the "*" Backup must contain: every ConfigMap/Secret outside the excluded namespaces.
EXPECTED_ALL=$("$KUBECTL" get configmaps,secrets -A --no-headers -o custom-columns=NS:.metadata.namespace |
  jq -R . | jq -s --argjson ex "$EXCLUDED" '[.[] | select(. as $n | $ex | index($n) | not)] | length')

# Warm-up: a tiny Backup that creates the bucket and warms the operator's connections.
next_bucket warmup
measure warmup bench-warmup 0 "$(jq -nc --arg ns "$BACKUP_NS" '{namespaces: [$ns], resourceTypes: ["configmaps"]}')" "$(s3_storage "$BUCKET")"
for ((r = 1; r <= RUNS; r++)); do
  next_bucket "run-$r"
  measure "run-$r" "bench-run-$r" "$EXPECTED" "$SOURCE_EXPLICIT" "$(s3_storage "$BUCKET")"
done
next_bucket all-ns
measure 'all-namespaces (*)' bench-all-ns "$EXPECTED_ALL" "$SOURCE_ALL" "$(s3_storage "$BUCKET")"
FS_DIR=$WORK/fs-backups
mkdir -p "$FS_DIR"
measure 'filesystem (no S3)' bench-fs "$EXPECTED" "$SOURCE_EXPLICIT" "$(jq -nc --arg d "$FS_DIR" '{provider: "filesystem", bucket: $d}')"
OP_FINAL_RSS=$(proc_field "$OP_PID" VmRSS)

# Late duplicates: every one-shot Backup must still show exactly one run.
LATE=$(api GET "/apis/backup.cnd.dk/v1/namespaces/$BACKUP_NS/backups" |
  jq -r '.items[] | select((.status.history // [] | length) != 1) | "\(.metadata.name): \(.status.history // [] | length) runs"')
if [ -n "$LATE" ]; then
  ERRORS=$((ERRORS + 1))
  log "one-shot Backups that did not run exactly once: $(tr '\n' ' ' <<<"$LATE")"
fi
if [ "$ERRORS" -gt 0 ]; then
  "$KUBECTL" -n "$BACKUP_NS" get backups.backup.cnd.dk -o yaml > "$WORK/backups.yaml" 2>/dev/null || true
  "$KUBECTL" -n "$BACKUP_NS" get events --sort-by=.lastTimestamp > "$WORK/events.txt" 2>/dev/null || true
fi

# Stop the operator before the floor measurements so it cannot compete for the CPU.
kill -TERM "$OP_PID" 2>/dev/null || true
wait "$OP_PID" 2>/dev/null || true
OP_PID=

# --- restore: the last explicit backup into an empty second control plane ---------------

# Writes $WORK/restore.tsv (one line):
# wall_s pickup_s restoring_s engine_s phase created overwritten skipped failed present
#   idle_rss_kib peak_rss_kib cpu_operator cpu_apiserver cpu_etcd cpu_s3 load1 ok created_namespaces
# `created` counts the namespaces that createNamespaces made too (created/namespaces).
restore_measure() {
  local src_backup="bench-run-$RUNS" src_bucket="$BUCKET_BASE-run-$RUNS" backup_path r_env
  backup_path=$(api GET "/apis/backup.cnd.dk/v1/namespaces/$BACKUP_NS/backups/$src_backup" | jq -r '.status.backupPath // ""')
  [ -n "$backup_path" ] || die "[restore] Backup $BACKUP_NS/$src_backup has no status.backupPath"
  RESTORE_SOURCE_PATH=$backup_path RESTORE_SOURCE_BUCKET=$src_bucket

  # An empty control plane: a kept one from an earlier --keep run is replaced.
  log "[restore] starting an empty test ground '$RESTORE_NAME' (same S3 server)"
  "$ROOT/scripts/testenv.sh" down "$RESTORE_NAME" >/dev/null 2>&1 || true
  R_UP=1
  r_env=$("$ROOT/scripts/testenv.sh" up "$RESTORE_NAME") || die "scripts/testenv.sh up $RESTORE_NAME failed"
  # Read its env file in a subshell: sourcing it here would replace the bench ground's variables.
  # shellcheck disable=SC1090
  read -r R_KUBECONFIG R_ROOT R_S3_ENDPOINT < <(. "$r_env"; echo "$KUBECONFIG $TESTENV_ROOT $S3_ENDPOINT")
  [ "$R_S3_ENDPOINT" = "$S3_ENDPOINT" ] || die "[restore] $RESTORE_NAME uses S3 $R_S3_ENDPOINT, not $S3_ENDPOINT"
  rk() { "$KUBECTL" --kubeconfig "$R_KUBECONFIG" "$@"; }
  R_API_SERVER=$(rk config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
  case "$R_API_SERVER" in https://127.0.0.1:*|https://localhost:*) ;; *) die "API server $R_API_SERVER is not on loopback" ;; esac
  mkdir -p "$WORK/restore"
  rk config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d > "$WORK/restore/ca.crt"
  rk config view --raw --minify -o jsonpath='{.users[0].user.client-certificate-data}' | base64 -d > "$WORK/restore/client.crt"
  rk config view --raw --minify -o jsonpath='{.users[0].user.client-key-data}' | base64 -d > "$WORK/restore/client.key"
  chmod 600 "$WORK"/restore/*
  [ "$(rapi GET /readyz)" = ok ] || die "API server $R_API_SERVER is not ready"
  R_APISERVER_PID=$(pid_from "$R_ROOT/apiserver.pid")
  R_ETCD_PID=$(pid_from "$R_ROOT/etcd.pid")
  local before; before=$(count_seeded rapi)
  [ "$before" = 0 ] || die "[restore] $RESTORE_NAME is not empty: $before seeded objects"

  log "[restore] installing CRDs into '$RESTORE_NAME'"
  KUBECONFIG=$R_KUBECONFIG "$BIN" install >&2 || die "cluster-backup install ($RESTORE_NAME) failed"
  jq -n --arg ns "$RESTORE_NS" --arg a "$S3_ACCESS_KEY" --arg s "$S3_SECRET_KEY" \
    '{apiVersion: "v1", kind: "Secret", metadata: {name: "bench-s3", namespace: $ns}, type: "Opaque",
      stringData: {accessKey: $a, secretKey: $s}}' | rk apply -f - >/dev/null

  log "[restore] starting a second $BIN run against '$RESTORE_NAME' (log: $WORK/restore-operator.log)"
  KUBECONFIG=$R_KUBECONFIG RUST_LOG=${RUST_LOG:-info,kube_runtime=warn,object_store=warn} "$BIN" run > "$WORK/restore-operator.log" 2>&1 &
  R_OP_PID=$!
  for _ in $(seq 100); do
    grep -q 'starting cluster-backup operator' "$WORK/restore-operator.log" 2>/dev/null && break
    kill -0 "$R_OP_PID" 2>/dev/null || { tail -20 "$WORK/restore-operator.log" >&2; die "the restore operator exited"; }
    sleep 0.1
  done
  sleep 1  # let the controllers' watches start
  kill -0 "$R_OP_PID" 2>/dev/null || { tail -20 "$WORK/restore-operator.log" >&2; die "the restore operator exited"; }
  R_OP_START_RSS=$(proc_field "$R_OP_PID" VmRSS)
  log "[restore] operator pid $R_OP_PID, RSS after start $(kib_to_mib "$R_OP_START_RSS") MiB"

  local body storage
  storage=$(jq -nc --arg b "$src_bucket" --arg e "$S3_ENDPOINT" --arg r "$S3_REGION" \
    '{provider: "minio", bucket: $b, endpoint: $e, region: $r, credentialsSecret: "bench-s3"}')
  body=$(jq -n --arg ns "$RESTORE_NS" --arg p "$backup_path" --argjson st "$storage" \
    '{apiVersion: "backup.cnd.dk/v1", kind: "Restore", metadata: {name: "bench-restore", namespace: $ns},
      spec: {source: {storageLocation: $st, backupPath: $p}, options: {createNamespaces: true}}}')
  local idle_rss load1 c_op c_api c_etcd c_s3 t0 t1='' t_pick='' t_rest='' status phase code
  idle_rss=$(proc_field "$R_OP_PID" VmRSS)
  echo 5 > "/proc/$R_OP_PID/clear_refs" 2>/dev/null || log "note: cannot reset VmHWM; peak covers the process lifetime"
  load1=$(cut -d' ' -f1 /proc/loadavg)
  c_op=$(cpu_ticks "$R_OP_PID"); c_api=$(cpu_ticks "$R_APISERVER_PID"); c_etcd=$(cpu_ticks "$R_ETCD_PID"); c_s3=$(cpu_ticks "$S3_PID")
  log "[restore] creating Restore $RESTORE_NS/bench-restore of $src_bucket/$backup_path (load $load1)"
  t0=$(now)
  code=$(rapi POST "/apis/backup.cnd.dk/v1/namespaces/$RESTORE_NS/restores" -H 'Content-Type: application/json' \
           -d "$body" -o "$WORK/create.out" -w '%{http_code}') || die "[restore] creating the Restore failed"
  [ "$code" = 201 ] || die "[restore] creating the Restore: HTTP $code: $(head -c 400 "$WORK/create.out")"
  while :; do
    status=$(rapi GET "/apis/backup.cnd.dk/v1/namespaces/$RESTORE_NS/restores/bench-restore") || status='{}'
    phase=$(jq -r '.status.phase // ""' <<<"$status" 2>/dev/null || true)
    if [ -z "$t_pick" ] && [ -n "$phase" ] && [ "$phase" != New ]; then t_pick=$(now); fi
    if [ -z "$t_rest" ] && [ "$phase" = Restoring ]; then t_rest=$(now); fi
    case "$phase" in
      Completed|PartiallyFailed|Failed) t1=$(now); break ;;
    esac
    if awk -v a="$t0" -v b="$(now)" -v t="$RUN_TIMEOUT" 'BEGIN{exit !(b-a > t)}'; then
      die "[restore] no result after $RUN_TIMEOUT s (phase '$phase'); operator log: $WORK/restore-operator.log"
    fi
    sleep "$POLL_INTERVAL"
  done
  local peak d_op d_api d_etcd d_s3
  peak=$(proc_field "$R_OP_PID" VmHWM)
  d_op=$(( $(cpu_ticks "$R_OP_PID") - c_op )); d_api=$(( $(cpu_ticks "$R_APISERVER_PID") - c_api ))
  d_etcd=$(( $(cpu_ticks "$R_ETCD_PID") - c_etcd )); d_s3=$(( $(cpu_ticks "$S3_PID") - c_s3 ))
  printf '%s\n' "$status" > "$WORK/restore-status.json"
  local created overwritten skipped failed message engine_s present wall pickup to_restoring ok=yes
  created=$(jq -r '.status.resourceCounts.created // 0' <<<"$status")
  overwritten=$(jq -r '.status.resourceCounts.overwritten // 0' <<<"$status")
  skipped=$(jq -r '.status.resourceCounts.skipped // 0' <<<"$status")
  failed=$(jq -r '.status.resourceCounts.failed // 0' <<<"$status")
  local created_ns; created_ns=$(jq -r '.status.resourceCounts["created/namespaces"] // 0' <<<"$status")
  message=$(jq -r '.status.message // ""' <<<"$status")
  engine_s=$(sed -n 's/.* in \([0-9.]*\) s\( (first.*\)\{0,1\}$/\1/p' <<<"$message"); engine_s=${engine_s:-n/a}
  wall=$(elapsed "$t0" "$t1"); pickup=$(elapsed "$t0" "${t_pick:-$t1}")
  # Restoring is seen late (or never, for a very short run) when the poll misses it.
  to_restoring=$([ -n "$t_rest" ] && elapsed "$t0" "$t_rest" || echo n/a)
  present=$(count_seeded rapi)
  if [ "$phase" != Completed ] || [ "$((created - created_ns))" != "$EXPECTED" ] || [ "$created_ns" != "$NS_COUNT" ] ||
     [ "$failed" != 0 ] || [ "$present" != "$EXPECTED" ]; then
    ok=NO
    ERRORS=$((ERRORS + 1))
    log "[restore] WRONG RESULT: phase $phase, created $created (expected $EXPECTED objects + $NS_COUNT namespaces, got $created_ns namespaces), failed $failed, $present seeded objects in $RESTORE_NAME: $message"
    rapi GET "/api/v1/namespaces/$RESTORE_NS/events" > "$WORK/restore-events.json" 2>/dev/null || true
  fi
  log "[restore] $phase in $wall s (operator: ${engine_s} s; picked up after $pickup s, Restoring seen at $to_restoring s): created/overwritten/skipped/failed $created/$overwritten/$skipped/$failed, $present objects present; peak RSS $(kib_to_mib "$peak") MiB; CPU s op/apiserver/etcd/s3 $(ticks_to_s "$d_op")/$(ticks_to_s "$d_api")/$(ticks_to_s "$d_etcd")/$(ticks_to_s "$d_s3")"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$wall" "$pickup" "$to_restoring" "$engine_s" "$phase" \
    "$created" "$overwritten" "$skipped" "$failed" "$present" "$idle_rss" "$peak" "$(ticks_to_s "$d_op")" "$(ticks_to_s "$d_api")" \
    "$(ticks_to_s "$d_etcd")" "$(ticks_to_s "$d_s3")" "$load1" "$ok" "$created_ns" > "$WORK/restore.tsv"
  R_OP_FINAL_RSS=$(proc_field "$R_OP_PID" VmRSS)
  stop_pid "$R_OP_PID"; R_OP_PID=
}
if [ "$RESTORE" = 1 ]; then restore_measure; fi

# --- floors: what the API server and the S3 server alone need ----------------------------

log "floor: listing the same data straight from the API server (best of 2)"
min2() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", (a < b) ? a : b}'; }
list_per_namespace() { # the explicit Backup's requests: one list (limit 500) per namespace and type
  local t n type; t=$(now)
  for ((n = 0; n < NS_COUNT; n++)); do
    for type in configmaps secrets; do
      api GET "/api/v1/namespaces/$(printf '%s-%02d' "$NS_PREFIX" "$n")/$type?limit=500" -o /dev/null
    done
  done
  elapsed "$t" "$(now)"
}
list_cluster_wide() { # the "*" Backup's requests: one cluster-wide paged list per type
  local t type cont; t=$(now)
  for type in configmaps secrets; do
    cont=
    while :; do
      api GET "/api/v1/$type?limit=500${cont:+&continue=$cont}" -o "$WORK/page.json"
      cont=$(jq -r '.metadata.continue // ""' "$WORK/page.json")
      [ -n "$cont" ] || break
    done
  done
  elapsed "$t" "$(now)"
}
c_api=$(cpu_ticks "$APISERVER_PID"); c_etcd=$(cpu_ticks "$ETCD_PID")
LIST_NS_S=$(list_per_namespace)
LIST_NS_CPU=$(ticks_to_s $(( $(cpu_ticks "$APISERVER_PID") + $(cpu_ticks "$ETCD_PID") - c_api - c_etcd )))
LIST_NS_S=$(min2 "$LIST_NS_S" "$(list_per_namespace)")
c_api=$(cpu_ticks "$APISERVER_PID"); c_etcd=$(cpu_ticks "$ETCD_PID")
LIST_ALL_S=$(list_cluster_wide)
LIST_ALL_CPU=$(ticks_to_s $(( $(cpu_ticks "$APISERVER_PID") + $(cpu_ticks "$ETCD_PID") - c_api - c_etcd )))
LIST_ALL_S=$(min2 "$LIST_ALL_S" "$(list_cluster_wide)")
t=$(now); "$KUBECTL" get configmaps,secrets -A > /dev/null; KUBECTL_GET_S=$(elapsed "$t" "$(now)")
t=$(now); "$KUBECTL" get configmaps,secrets -A -o json > /dev/null; KUBECTL_JSON_S=$(elapsed "$t" "$(now)")
log "list floor: $((NS_COUNT * 2)) namespace lists ${LIST_NS_S} s (apiserver+etcd ${LIST_NS_CPU} CPU s), cluster-wide paged ${LIST_ALL_S} s (${LIST_ALL_CPU} CPU s), kubectl get cm,secret -A ${KUBECTL_GET_S} s (-o json ${KUBECTL_JSON_S} s)"

# Average stored object size of the real backup, for a like-for-like PUT test.
OBJ_SIZE=$(awk -F'\t' '$1 == "run-1" && $6 > 0 {printf "%d", $7 / $6}' "$WORK/results.tsv")
OBJ_SIZE=${OBJ_SIZE:-1500}
s3_floor() { # CONCURRENCY -> "seconds rate server_cpu_ms_per_put"
  local out c0 d
  next_bucket "s3put-$1"
  c0=$(cpu_ticks "$S3_PID")
  out=$(python3 "$HERE/s3tool.py" put "$S3_ENDPOINT" "$BUCKET" "p$1" "$EXPECTED" "$1" "$OBJ_SIZE") || die "S3 PUT test failed"
  d=$(( $(cpu_ticks "$S3_PID") - c0 ))
  printf '%s %s %s\n' "$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$out")" "$(sed -n 's/.*puts_per_s=\([0-9]*\).*/\1/p' <<<"$out")" \
    "$(awk -v t="$d" -v hz="$CLK_TCK" -v n="$EXPECTED" 'BEGIN{printf "%.2f", t / hz * 1000 / n}')"
}
log "floor: raw S3 PUTs of $EXPECTED objects of $OBJ_SIZE bytes (Python client, a lower bound)"
# (called in the main shell: next_bucket must record the bucket for the purge)
s3_floor 16 > "$WORK/put16"; read -r PUT16_S PUT16_RATE PUT16_CPU < "$WORK/put16"
s3_floor 32 > "$WORK/put32"; read -r PUT32_S PUT32_RATE PUT32_CPU < "$WORK/put32"
log "S3 floor: $PUT16_RATE PUT/s at 16 concurrent ($PUT16_S s for $EXPECTED, server CPU $PUT16_CPU ms/PUT), $PUT32_RATE PUT/s at 32 ($PUT32_S s, $PUT32_CPU ms/PUT)"

# --- report ------------------------------------------------------------------------------

col() { awk -F'\t' -v l="$1" -v c="$2" '$1 == l {print $c}' "$WORK/results.tsv"; }
MEDIAN_WALL=$(for ((r = 1; r <= RUNS; r++)); do col "run-$r" 2; done | median)
MEDIAN_ENGINE=$(for ((r = 1; r <= RUNS; r++)); do col "run-$r" 4; done | grep -v n/a | median)
MAX_PEAK_KIB=$(awk -F'\t' 'NR > 0 && $9 > m {m = $9} END{print m + 0}' "$WORK/results.tsv")
MAX_PEAK_MIB=$(kib_to_mib "$MAX_PEAK_KIB")
met() { awk -v v="$1" -v t="$2" 'BEGIN{print (v != "n/a" && v + 0 < t) ? "met" : "NOT met"}'; }
TIME_MET=$(met "$MEDIAN_WALL" "$TARGET_SECONDS")
RSS_MET=$(met "$MAX_PEAK_MIB" "$TARGET_RSS_MIB")
ALL_WALL=$(col 'all-namespaces (*)' 2)
FS_WALL=$(col 'filesystem (no S3)' 2)

CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
MEM_GIB=$(awk '/^MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || GIT_REV="$GIT_REV (with uncommitted changes in src/)"
BIN_BUILT=$(date -u -r "$BIN" +%Y-%m-%dT%H:%M:%SZ)
RUSTC=$(rustc --version 2>/dev/null || echo unknown)

S3_NAME=${S3_VERSION%% *}
NPROC=$(nproc)
table() {
  echo "| run | trigger → Completed (s) | run in operator (s) | trigger → picked up (s) | objects | stored bytes | RSS idle → peak (MiB) | CPU s: operator / apiserver / etcd / $S3_NAME | CPU s total ÷ $NPROC CPUs | load before | ok |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|"
  awk -F'\t' -v n="$NPROC" '{printf "| %s | %s | %s | %s | %s | %s | %.1f → %.1f | %s / %s / %s / %s | %.1f | %s | %s |\n",
    $1, $2, $4, $3, $6, $7, $8/1024, $9/1024, $10, $11, $12, $13, ($10+$11+$12+$13)/n, $14, $15}' "$WORK/results.tsv"
}
MEDIAN_CPU_FLOOR=$(for ((r = 1; r <= RUNS; r++)); do awk -F'\t' -v l="run-$r" -v n="$NPROC" '$1 == l {printf "%.2f\n", ($10+$11+$12+$13)/n}' "$WORK/results.tsv"; done | median)
MEDIAN_S3_CPU=$(for ((r = 1; r <= RUNS; r++)); do col "run-$r" 13; done | median)
MEDIAN_OP_CPU=$(for ((r = 1; r <= RUNS; r++)); do col "run-$r" 10; done | median)
STORED_PER_OBJECT=$(awk -F'\t' '$1 == "run-1" && $6 > 0 {printf "%d", $7 / $6}' "$WORK/results.tsv")

# The restore part of the report (empty line when --no-restore).
RESTORE_MD="### Restore
Not measured (\`--no-restore\`)."
RESTORE_LINE=
if [ "$RESTORE" = 1 ] && [ -s "$WORK/restore.tsv" ]; then
  IFS=$'\t' read -r R_WALL R_PICKUP R_TO_RESTORING R_ENGINE R_PHASE R_CREATED R_OVERWRITTEN R_SKIPPED R_FAILED R_PRESENT \
    R_IDLE R_PEAK R_CPU_OP R_CPU_API R_CPU_ETCD R_CPU_S3 R_LOAD R_OK R_CREATED_NS < "$WORK/restore.tsv"
  R_CREATED_OBJ=$((R_CREATED - R_CREATED_NS))
  R_CPU_FLOOR=$(awk -v a="$R_CPU_OP" -v b="$R_CPU_API" -v c="$R_CPU_ETCD" -v d="$R_CPU_S3" -v n="$NPROC" 'BEGIN{printf "%.1f", (a+b+c+d)/n}')
  R_RATE=$(awk -v n="$R_CREATED_OBJ" -v w="$R_WALL" 'BEGIN{printf "%d", (w > 0) ? n / w : 0}')
  RESTORE_LINE="restore of $R_CREATED_OBJ objects (+ $R_CREATED_NS namespaces) into empty '$RESTORE_NAME': $R_PHASE in $R_WALL s ($R_RATE objects/s; operator $R_ENGINE s), peak RSS $(kib_to_mib "$R_PEAK") MiB, CPU s op/api/etcd/s3 $R_CPU_OP/$R_CPU_API/$R_CPU_ETCD/$R_CPU_S3, ok=$R_OK"
  RESTORE_MD=$(cat <<RMD
### Restore
The backup of \`run-$RUNS\` (\`$RESTORE_SOURCE_BUCKET\`, \`$RESTORE_SOURCE_PATH\`) restored into a second, empty control plane (\`scripts/testenv.sh up $RESTORE_NAME\`: its own etcd + kube-apiserver, the same $S3_NAME server) by a second \`target/release/cluster-backup run\` process with its own kubeconfig (the backup operator is stopped by then). One Restore in \`$RESTORE_NS\`: \`spec.source.storageLocation\` (provider \`minio\`, the bucket, the S3 endpoint, \`credentialsSecret\`) + \`spec.source.backupPath\` (the Backup's \`status.backupPath\`), \`spec.options.createNamespaces: true\`. **trigger → Completed**: from just before the POST that creates the Restore until a GET (every ${POLL_INTERVAL} s) shows \`status.phase: Completed\`; **run in operator**: the duration in \`status.message\`; **→ Restoring**: when a poll first saw phase \`Restoring\` (manifest read, selection, API discovery and the $NS_COUNT namespaces created). **ok** checks \`Completed\`, \`status.resourceCounts.created == $((EXPECTED + NS_COUNT))\` ($EXPECTED objects + the $NS_COUNT namespaces \`createNamespaces\` made, \`created/namespaces\`), \`failed == 0\` and that the $EXPECTED seeded objects exist in \`$RESTORE_NAME\` afterwards. RSS and CPU as above (the apiserver/etcd columns are \`$RESTORE_NAME\`'s); restore operator RSS right after start $(kib_to_mib "$R_OP_START_RSS") MiB, after the restore $(kib_to_mib "$R_OP_FINAL_RSS") MiB.

| restore | trigger → Completed (s) | run in operator (s) | trigger → picked up / → Restoring (s) | created / overwritten / skipped / failed | objects present after | objects/s | RSS idle → peak (MiB) | CPU s: operator / apiserver / etcd / $S3_NAME | CPU s total ÷ $NPROC CPUs | load before | ok |
|---|---:|---:|---|---|---:|---:|---:|---|---:|---:|---|
| $EXPECTED objects, empty control plane | $R_WALL | $R_ENGINE | $R_PICKUP / $R_TO_RESTORING | $R_CREATED ($R_CREATED_OBJ + $R_CREATED_NS namespaces) / $R_OVERWRITTEN / $R_SKIPPED / $R_FAILED | $R_PRESENT | $R_RATE | $(kib_to_mib "$R_IDLE") → $(kib_to_mib "$R_PEAK") | $R_CPU_OP / $R_CPU_API / $R_CPU_ETCD / $R_CPU_S3 | $R_CPU_FLOOR | $R_LOAD | $R_OK |

For comparison, seeding the same $EXPECTED objects into \`$NAME\` (8 concurrent keep-alive POSTs from \`scripts/bench/seed.py\`, the restore's concurrency is 8 too) took $SEED_SECONDS s.
RMD
)
fi

REPORT=$(cat <<MD
<!-- bench:begin $SETUP — generated by scripts/bench.sh --s3 $S3_MODE; edits up to bench:end are overwritten -->
## $SETUP: $S3_VERSION, $([ "$S3_MODE" = shared ] && echo "the S3 server shared with the other test grounds" || echo "a fresh S3 server of the benchmark's own") — run of $STARTED_AT

**Result: median $MEDIAN_WALL s from trigger to \`Completed\` for $EXPECTED objects (target < $TARGET_SECONDS s: $TIME_MET); peak operator RSS $MAX_PEAK_MIB MiB (target < $TARGET_RSS_MIB MiB: $RSS_MET).**

### Machine and versions
- Machine: $NPROC CPUs ($CPU_MODEL), $MEM_GIB GiB RAM, Linux $(uname -r). The machine is shared: the 1-minute load average before each run is in the table; above $NPROC, other work competed for the CPUs and the wall times are pessimistic (the CPU-seconds are not affected much).
- kube-apiserver $K8S_VERSION with etcd $ETCD_VER (\`--unsafe-no-fsync\`) and $S3_VERSION ($([ "$S3_MODE" = shared ] && echo "shared with the other test grounds" || echo "fresh, the benchmark's own")${S3_STATE_NOTE:+; $S3_STATE_NOTE}), from \`scripts/testenv.sh\`, on 127.0.0.1 and the same CPUs as the operator.
- Operator: \`target/release/cluster-backup\` built $BIN_BUILT$([ "$BUILD" = 1 ] && echo " by this run" || echo " (\`--no-build\`)"); git HEAD at the time of the benchmark $GIT_REV; $RUSTC.

### What was measured, and how
- Data: $NS_COUNT namespaces × ($CM_PER_NS ConfigMaps + $SECRET_PER_NS Secrets) = $EXPECTED objects with $((SEED_BYTES / EXPECTED)) bytes of \`data\` each on average (ConfigMaps: a properties file and a JSON config; Secrets: username, password, token and a PEM blob), made by \`scripts/bench/gen_objects.py\`; stored as pretty JSON with metadata they are $STORED_PER_OBJECT bytes each. Seeding is not part of any measurement: $SEED_SECONDS s ($SEED_NOTE) with 8 concurrent keep-alive HTTPS POSTs (\`scripts/bench/seed.py\`).
- Each run creates a new one-shot Backup (no \`schedule\`; \`resourceTypes: [configmaps, secrets]\`; the $NS_COUNT namespaces listed explicitly; \`credentialsSecret\`) writing to a new bucket (\`$BUCKET_BASE-LABEL\`; all are deleted only after the last measurement, see the note on deletions below). **trigger → Completed**: wall time from just before the POST that creates the Backup until a GET (curl, every ${POLL_INTERVAL} s) shows \`status.phase: Completed\`; **ok** checks \`lastRun.objects == $EXPECTED\` and \`lastRun.result == Completed\`. **run in operator**: the duration the operator reports in \`lastRun.message\` (start of the run until the manifest is written). **picked up**: when a poll first saw the phase leave \`New\` (includes one poll interval).
- A warm-up Backup (one namespace without ConfigMaps) runs first and warms the operator's connections.
- RSS: \`VmRSS\` before the run, \`VmHWM\` (peak resident set) after it, reset before each run (\`echo 5 > /proc/PID/clear_refs\`) so each peak is that run's. Operator RSS right after start $(kib_to_mib "$OP_START_RSS") MiB; at the end VmRSS $(kib_to_mib "$OP_FINAL_RSS") MiB.
- CPU: user+system seconds that each process used during the run (/proc/PID/stat). **CPU s total ÷ $NPROC CPUs** is the shortest wall time that work could take on an otherwise idle $NPROC-CPU machine.
- \`all-namespaces (*)\`: the same types with \`namespaces: ["*"]\` minus $EXCLUDED, i.e. one cluster-wide paged list per type; expected $EXPECTED_ALL objects.
- \`filesystem (no S3)\`: the explicit Backup to the \`filesystem\` provider (a local directory): the same listing, serialising and hashing, without the S3 server.
- Caveat: this machine's root filesystem is ext4 without a journal. For a few minutes after many files were deleted, creating files costs several times more CPU (perf shows the kernel's \`recently_deleted()\` inode scan on every allocation). That hits s3s-fs (three new files per PUT, in one flat directory) and the \`filesystem\` variant, not SeaweedFS (it appends to volume files). The benchmark therefore deletes its buckets only after the last measurement, but deletions by other work on the machine (or by the previous benchmark's cleanup) within the last ~5 minutes still show up in those CPU columns.$([ "$S3_MODE" = shared ] && echo " On the shared server, the $S3_NAME CPU column also counts requests of other tests running at the same time.")

### Results
$(table)

Median of $RUNS explicit-namespace runs: **$MEDIAN_WALL s** trigger → Completed (operator-reported run $MEDIAN_ENGINE s; CPU-bound minimum $MEDIAN_CPU_FLOOR s, of which $S3_NAME $MEDIAN_S3_CPU CPU s and the operator $MEDIAN_OP_CPU CPU s). \`*\` variant: $ALL_WALL s. Same Backup without S3 (filesystem): $FS_WALL s.

$RESTORE_MD

### Floors: each side alone
| measurement | result |
|---|---:|
| API server: the explicit Backup's $((NS_COUNT * 2)) list requests (one per namespace and type, limit 500), curl, sequential, best of 2 | $LIST_NS_S s (apiserver + etcd $LIST_NS_CPU CPU s) |
| API server: the \`*\` Backup's cluster-wide paged lists (limit 500) of configmaps and secrets, curl, best of 2 | $LIST_ALL_S s (apiserver + etcd $LIST_ALL_CPU CPU s) |
| \`kubectl get configmaps,secrets -A\` ($EXPECTED objects, server-side table) | $KUBECTL_GET_S s |
| \`kubectl get configmaps,secrets -A -o json\` | $KUBECTL_JSON_S s |
| $S3_NAME: $EXPECTED PUTs of $OBJ_SIZE bytes, 16 concurrent (Python client, \`scripts/bench/s3tool.py\`; a lower bound) | $PUT16_S s = $PUT16_RATE PUT/s; server $PUT16_CPU CPU ms per PUT |
| $S3_NAME: the same, 32 concurrent (the operator's upload concurrency) | $PUT32_S s = $PUT32_RATE PUT/s; server $PUT32_CPU CPU ms per PUT |

\`shared/notes/testenv-facts.md\` measured s3s-fs 0.14.1 at ≈ 1,750 PUT/s at 16 concurrent requests with \`object_store\` (≈ 5.7 s per 10k objects), SeaweedFS 4.48 at ≈ 1,200–1,340 PUT/s, one request at a time ≈ 730 PUT/s.

Targets: trigger → Completed under $TARGET_SECONDS s: **$TIME_MET** (median $MEDIAN_WALL s); peak RSS under $TARGET_RSS_MIB MiB: **$RSS_MET** ($MAX_PEAK_MIB MiB, the highest peak of all runs).
<!-- bench:end $SETUP -->
MD
)

if [ "$WRITE_MD" = 1 ]; then
  MD=$ROOT/BENCHMARKS.md
  printf '%s\n' "$REPORT" > "$WORK/report.md"
  # Replace this setup's generated section (or append it); keep everything else in the file.
  python3 - "$MD" "$WORK/report.md" "$SETUP" <<'PY'
import os, re, sys
md, report, setup = sys.argv[1], open(sys.argv[2]).read().rstrip("\n"), sys.argv[3]
text = open(md).read() if os.path.exists(md) else (
    "# Benchmarks\n\nBackup of 10,000 ConfigMaps and Secrets with the release operator on the local test "
    "ground, measured by `scripts/bench.sh`. Each generated section below belongs to one S3 setup and is "
    "replaced by the next run with that setup; everything outside the markers is kept.\n")
pattern = re.compile(r"<!-- bench:begin " + re.escape(setup) + r" .*?<!-- bench:end " + re.escape(setup) + r" -->", re.S)
if pattern.search(text):
    text = pattern.sub(lambda m: report, text, count=1)
else:
    text = text.rstrip("\n") + "\n\n" + report + "\n"
open(md, "w").write(text if text.endswith("\n") else text + "\n")
PY
  log "wrote section '$SETUP' of $MD"
fi

echo
echo "=== cluster-backup benchmark ($EXPECTED objects, $(nproc) CPUs, kube-apiserver $K8S_VERSION, $S3_VERSION) ==="
echo "seeding (not measured): $SEED_SECONDS s"
awk -F'\t' '{printf "%-20s %7s s  (run %s s, pickup %s s)  objects %-6s ok=%s  RSS idle %.1f MiB peak %.1f MiB  CPU s op/api/etcd/s3 %s/%s/%s/%s\n",
  $1, $2, $4, $3, $6, $15, $8/1024, $9/1024, $10, $11, $12, $13}' "$WORK/results.tsv"
echo "median of $RUNS runs: $MEDIAN_WALL s (target < $TARGET_SECONDS s: $TIME_MET); peak RSS $MAX_PEAK_MIB MiB (target < $TARGET_RSS_MIB MiB: $RSS_MET)"
echo "CPU-bound minimum of a run on idle CPUs (median): $MEDIAN_CPU_FLOOR s ($S3_NAME $MEDIAN_S3_CPU CPU s, operator $MEDIAN_OP_CPU CPU s); '*' variant $ALL_WALL s; without S3 $FS_WALL s"
[ -z "$RESTORE_LINE" ] || echo "$RESTORE_LINE"
echo "floors: API lists ${LIST_NS_S} s (per namespace) / ${LIST_ALL_S} s (cluster-wide); kubectl get cm,secret -A ${KUBECTL_GET_S} s; $S3_NAME ${PUT16_RATE} PUT/s @16 (${PUT16_CPU} CPU ms/PUT), ${PUT32_RATE} PUT/s @32"
if [ "$ERRORS" -gt 0 ]; then
  log "$ERRORS run(s) did not produce the expected backup; see above"
  exit 1
fi
