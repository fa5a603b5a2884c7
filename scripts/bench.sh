#!/usr/bin/env bash
# Backup benchmark: 10,000 ConfigMaps and Secrets in 20 namespaces, backed up by the release
# operator binary to the local S3 server. Reports trigger-to-Completed wall time and the
# operator's RSS, and measures what limits it; writes the results into BENCHMARKS.md.
#
#   scripts/bench.sh [--keep] [--runs N] [--no-build] [--no-write]
#
#   --keep       leave the `bench` control plane, the operator's data in S3 and the work
#                directory in place (the operator process is always stopped)
#   --runs N     measured runs of the explicit-namespace Backup (default 3)
#   --no-build   do not run `cargo build --release` (the binary must exist)
#   --no-write   print the results only; leave BENCHMARKS.md alone
#
# Uses its own test ground `scripts/testenv.sh up bench` (a separate etcd + kube-apiserver; the
# S3 server is shared with other test grounds). Everything talks to 127.0.0.1 only.
#
# Steps: seed (timed separately, not part of any measurement) -> install CRDs -> start
# target/release/cluster-backup run in the background -> warm-up Backup (creates the bucket) ->
# N one-shot Backups of the 20 namespaces, each timed from the POST that creates it until
# status.phase is Completed (polled every 100 ms) -> one Backup with namespaces ["*"] -> one
# Backup to the `filesystem` provider (the same run without S3, a diagnostic) -> floors: the
# API server's list time and the S3 server's raw PUT rate.
# Targets (under 10 s, under 100 MiB peak RSS) are reported, not asserted: the exit status is
# non-zero only for real errors (a step that fails, a backup with the wrong object count).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$ROOT/scripts/bench
NAME=bench
KEEP=0
RUNS=3
BUILD=1
WRITE_MD=1
NS_COUNT=20
CM_PER_NS=250
SECRET_PER_NS=250
NS_PREFIX=bench
BACKUP_NS=bench-system
TARGET_SECONDS=10
TARGET_RSS_MIB=100
POLL_INTERVAL=0.1
RUN_TIMEOUT=900

while [ $# -gt 0 ]; do
  case "$1" in
    --keep) KEEP=1 ;;
    --runs) RUNS=${2:?--runs needs a number}; shift ;;
    --no-build) BUILD=0 ;;
    --no-write) WRITE_MD=0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "--runs must be a positive number" >&2; exit 2; }

EXPECTED=$((NS_COUNT * (CM_PER_NS + SECRET_PER_NS)))
BIN=$ROOT/target/release/cluster-backup
STARTED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b-a}'; } # START END -> seconds

OP_PID=
WORK=
BUCKET=
FS_DIR=
ERRORS=0

cleanup() {
  local rc=$?
  if [ -n "$OP_PID" ] && kill -0 "$OP_PID" 2>/dev/null; then
    kill -TERM "$OP_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$OP_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$OP_PID" 2>/dev/null && kill -KILL "$OP_PID" 2>/dev/null || true
    wait "$OP_PID" 2>/dev/null || true
  fi
  if [ "$KEEP" = 1 ]; then
    [ -n "$WORK" ] && log "kept: work directory $WORK (operator log: $WORK/operator.log), control plane '$NAME'"
  else
    # The backups written to the shared S3 server are ours: remove that bucket's files so
    # tens of thousands of small files do not pile up for the other test grounds.
    if [ -n "$BUCKET" ] && [ -n "${TESTENV_ROOT:-}" ] && [[ "$BUCKET" == bench-* ]]; then
      local bdir; bdir="$(dirname "$TESTENV_ROOT")/_s3/data/$BUCKET"
      [ -d "$bdir" ] && rm -rf -- "$bdir"
    fi
    [ -n "$WORK" ] && rm -rf -- "$WORK"
    if [ -n "${TESTENV_ROOT:-}" ]; then "$ROOT/scripts/testenv.sh" down "$NAME" >/dev/null 2>&1 || true; fi
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
S3_PID=$(pid_from "$(dirname "$TESTENV_ROOT")/_s3/pid")
K8S_VERSION=$(api GET /version | jq -r .gitVersion)
S3_VERSION=$("$(tr '\0' '\n' < "/proc/$S3_PID/cmdline" 2>/dev/null | head -1)" --version 2>/dev/null || echo "s3s-fs (unknown)")

# --- seed (not measured) -----------------------------------------------------------------

count_seeded() { # -> number of ConfigMaps + Secrets in the bench namespaces (metadata lists)
  local type total=0 n cont page
  for type in configmaps secrets; do
    cont=
    while :; do
      page=$(api GET "/api/v1/$type?limit=500&labelSelector=bench.cnd.dk%2Fseed%3Dtrue${cont:+&continue=$cont}" \
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

BUCKET="bench-$(date +%Y%m%d-%H%M%S)-$$"
S3_STORAGE=$(jq -n --arg b "$BUCKET" --arg e "$S3_ENDPOINT" --arg r "$S3_REGION" \
  '{provider: "s3", bucket: $b, endpoint: $e, region: $r, credentialsSecret: "bench-s3"}')
NAMESPACES_JSON=$(for ((n = 0; n < NS_COUNT; n++)); do printf '%s-%02d\n' "$NS_PREFIX" "$n"; done | jq -R . | jq -sc .)
SOURCE_EXPLICIT=$(jq -nc --argjson ns "$NAMESPACES_JSON" '{namespaces: $ns, resourceTypes: ["configmaps", "secrets"]}')
EXCLUDED='["'"$BACKUP_NS"'", "default", "kube-system", "kube-public", "kube-node-lease"]'
SOURCE_ALL=$(jq -nc --argjson ex "$EXCLUDED" '{namespaces: ["*"], excludeNamespaces: $ex, resourceTypes: ["configmaps", "secrets"]}')
# What the "*" Backup must contain: every ConfigMap/Secret outside the excluded namespaces.
EXPECTED_ALL=$("$KUBECTL" get configmaps,secrets -A --no-headers -o custom-columns=NS:.metadata.namespace |
  jq -R . | jq -s --argjson ex "$EXCLUDED" '[.[] | select(. as $n | $ex | index($n) | not)] | length')

# Warm-up: a tiny Backup that creates the bucket and warms the operator's connections.
measure warmup bench-warmup 0 "$(jq -nc --arg ns "$BACKUP_NS" '{namespaces: [$ns], resourceTypes: ["configmaps"]}')" "$S3_STORAGE"

for ((r = 1; r <= RUNS; r++)); do
  measure "run-$r" "bench-run-$r" "$EXPECTED" "$SOURCE_EXPLICIT" "$S3_STORAGE"
done
measure 'all-namespaces (*)' bench-all-ns "$EXPECTED_ALL" "$SOURCE_ALL" "$S3_STORAGE"
FS_DIR=$WORK/fs-backups
mkdir -p "$FS_DIR"
measure 'filesystem (no S3)' bench-fs "$EXPECTED" "$SOURCE_EXPLICIT" "$(jq -nc --arg d "$FS_DIR" '{provider: "filesystem", bucket: $d}')"
OP_FINAL_HWM=$(proc_field "$OP_PID" VmHWM)
OP_FINAL_RSS=$(proc_field "$OP_PID" VmRSS)

# Stop the operator before the floor measurements so it cannot compete for the CPU.
kill -TERM "$OP_PID" 2>/dev/null || true
wait "$OP_PID" 2>/dev/null || true
OP_PID=

# --- floors: what the API server and the S3 server alone need ----------------------------

log "floor: listing the same data straight from the API server"
# The operator's requests for the explicit Backup: one list (limit 500) per namespace and type.
t=$(now)
for ((n = 0; n < NS_COUNT; n++)); do
  for type in configmaps secrets; do
    api GET "/api/v1/namespaces/$(printf '%s-%02d' "$NS_PREFIX" "$n")/$type?limit=500" -o /dev/null
  done
done
LIST_NS_S=$(elapsed "$t" "$(now)")
# The "*" Backup's requests: one cluster-wide paged list per type.
t=$(now)
for type in configmaps secrets; do
  cont=
  while :; do
    api GET "/api/v1/$type?limit=500${cont:+&continue=$cont}" -o "$WORK/page.json"
    cont=$(jq -r '.metadata.continue // ""' "$WORK/page.json")
    [ -n "$cont" ] || break
  done
done
LIST_ALL_S=$(elapsed "$t" "$(now)")
t=$(now); "$KUBECTL" get configmaps,secrets -A > /dev/null; KUBECTL_GET_S=$(elapsed "$t" "$(now)")
t=$(now); "$KUBECTL" get configmaps,secrets -A -o json > /dev/null; KUBECTL_JSON_S=$(elapsed "$t" "$(now)")
log "list floor: $((NS_COUNT * 2)) namespace lists ${LIST_NS_S} s, cluster-wide paged ${LIST_ALL_S} s, kubectl get cm,secret -A ${KUBECTL_GET_S} s (-o json ${KUBECTL_JSON_S} s)"

# Average stored object size of the real backup, for a like-for-like PUT test.
OBJ_SIZE=$(awk -F'\t' '$1 == "run-1" && $6 > 0 {printf "%d", $7 / $6}' "$WORK/results.tsv")
OBJ_SIZE=${OBJ_SIZE:-1500}
log "floor: raw S3 PUTs of $EXPECTED objects of $OBJ_SIZE bytes (Python client, a lower bound)"
PUT16=$(python3 "$HERE/s3put.py" "$S3_ENDPOINT" "$BUCKET" s3put-16 "$EXPECTED" 16 "$OBJ_SIZE") || die "S3 PUT test failed"
PUT32=$(python3 "$HERE/s3put.py" "$S3_ENDPOINT" "$BUCKET" s3put-32 "$EXPECTED" 32 "$OBJ_SIZE") || die "S3 PUT test failed"
PUT16_RATE=$(sed -n 's/.*puts_per_s=\([0-9]*\).*/\1/p' <<<"$PUT16"); PUT16_S=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$PUT16")
PUT32_RATE=$(sed -n 's/.*puts_per_s=\([0-9]*\).*/\1/p' <<<"$PUT32"); PUT32_S=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$PUT32")
log "S3 floor: $PUT16_RATE PUT/s at 16 concurrent ($PUT16_S s for $EXPECTED), $PUT32_RATE PUT/s at 32 ($PUT32_S s)"

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
git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || GIT_REV="$GIT_REV + uncommitted changes in src/"
RUSTC=$(rustc --version 2>/dev/null || echo unknown)

table() {
  echo "| run | trigger → Completed (s) | run in operator (s) | trigger → picked up (s) | objects | bytes | RSS idle → peak (MiB) | CPU s: operator / apiserver / etcd / s3s-fs | load before | ok |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|---:|---|"
  awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %.1f → %.1f | %s / %s / %s / %s | %s | %s |\n",
    $1, $2, $4, $3, $6, $7, $8/1024, $9/1024, $10, $11, $12, $13, $14, $15}' "$WORK/results.tsv"
}

REPORT=$(cat <<MD
<!-- bench:begin — generated by scripts/bench.sh; edits between these markers are overwritten -->
## Latest run: $STARTED_AT

**Result: median $MEDIAN_WALL s from trigger to \`Completed\` for $EXPECTED objects (target < $TARGET_SECONDS s: $TIME_MET); peak operator RSS $MAX_PEAK_MIB MiB (target < $TARGET_RSS_MIB MiB: $RSS_MET).**

### Machine and versions
- Machine: $(nproc) CPUs ($CPU_MODEL), $MEM_GIB GiB RAM, Linux $(uname -r); load average before the runs is in the table (other work on the machine skews the numbers).
- kube-apiserver $K8S_VERSION with etcd (\`--unsafe-no-fsync\`), $S3_VERSION, both from \`scripts/testenv.sh\` on 127.0.0.1; all on the same 2 CPUs as the operator.
- Operator: \`target/release/cluster-backup\` at git $GIT_REV; $RUSTC.

### What was measured, and how
- Data: $NS_COUNT namespaces × ($CM_PER_NS ConfigMaps + $SECRET_PER_NS Secrets) = $EXPECTED objects, $((SEED_BYTES / EXPECTED)) bytes of \`data\` per object on average (ConfigMaps: a properties file and a JSON config; Secrets: password, token and a PEM blob), generated by \`scripts/bench/gen_objects.py\`. Seeding (not part of any measurement): $SEED_SECONDS s ($SEED_NOTE), 8 concurrent keep-alive HTTPS POSTs (\`scripts/bench/seed.py\`).
- Each run creates a new one-shot Backup (no \`schedule\`; \`resourceTypes: [configmaps, secrets]\`, the $NS_COUNT namespaces listed explicitly, \`credentialsSecret\`) in the fresh bucket \`$BUCKET\`. **trigger → Completed** is wall time from just before the POST that creates the Backup until a GET of the object (every ${POLL_INTERVAL} s, curl) shows \`status.phase: Completed\`; the check \`lastRun.objects == $EXPECTED\` is the "ok" column. **run in operator** is the duration the operator reports in \`lastRun.message\` (start of the run to manifest written); **picked up** is when the first poll saw the phase leave \`New\`.
- A warm-up Backup (one empty namespace) runs first; it creates the bucket and warms the operator's connections.
- RSS: \`VmRSS\` of the operator before the run, \`VmHWM\` (peak) after it; VmHWM is reset before each run (\`echo 5 > /proc/PID/clear_refs\`), so each peak is that run's. Operator RSS right after start: $(kib_to_mib "$OP_START_RSS") MiB; at the end VmRSS $(kib_to_mib "$OP_FINAL_RSS") MiB, VmHWM $(kib_to_mib "$OP_FINAL_HWM") MiB.
- CPU: user+system seconds each process used during the run (/proc/PID/stat). The machine has 2 CPUs, so at most 2 CPU-seconds per wall second.
- \`all-namespaces (*)\`: the same types with \`namespaces: ["*"]\` minus $EXCLUDED (one cluster-wide paged list per type); expected $EXPECTED_ALL objects.
- \`filesystem (no S3)\`: the explicit Backup to the \`filesystem\` provider (a local directory): the same listing, serialising and hashing without the S3 server, to separate the two costs.

### Results
$(table)

Median of $RUNS explicit-namespace runs: **$MEDIAN_WALL s** trigger → Completed (operator-reported run time $MEDIAN_ENGINE s). \`*\` variant: $ALL_WALL s. Without S3 (filesystem): $FS_WALL s.

### Floors (what limits it)
| measurement | time |
|---|---:|
| API server: the operator's $((NS_COUNT * 2)) list requests (one per namespace and type, limit 500), curl, sequential | $LIST_NS_S s |
| API server: cluster-wide paged lists (limit 500) of configmaps and secrets, curl | $LIST_ALL_S s |
| \`kubectl get configmaps,secrets -A\` ($EXPECTED objects, table output) | $KUBECTL_GET_S s |
| \`kubectl get configmaps,secrets -A -o json\` | $KUBECTL_JSON_S s |
| S3: $EXPECTED PUTs of $OBJ_SIZE bytes, 16 concurrent (Python client; a lower bound of the server) | $PUT16_S s ($PUT16_RATE PUT/s) |
| S3: the same, 32 concurrent (the operator's upload concurrency) | $PUT32_S s ($PUT32_RATE PUT/s) |

For comparison, \`shared/notes/testenv-facts.md\` measured s3s-fs at ≈ 1,750 PUT/s at 16 concurrent requests with \`object_store\` (≈ 5.7 s per 10k objects), slower at 64.

Targets: trigger → Completed under $TARGET_SECONDS s: **$TIME_MET** (median $MEDIAN_WALL s); peak RSS under $TARGET_RSS_MIB MiB: **$RSS_MET** ($MAX_PEAK_MIB MiB, the highest peak of all runs).
<!-- bench:end -->
MD
)

if [ "$WRITE_MD" = 1 ]; then
  MD=$ROOT/BENCHMARKS.md
  if [ -f "$MD" ] && grep -q '<!-- bench:begin' "$MD" && grep -q '<!-- bench:end -->' "$MD"; then
    # Replace the generated block, keep everything written around it.
    printf '%s\n' "$REPORT" > "$WORK/report.md"
    python3 - "$MD" "$WORK/report.md" <<'PY'
import re, sys
md, report = sys.argv[1], open(sys.argv[2]).read().rstrip("\n")
text = open(md).read()
new = re.sub(r"<!-- bench:begin.*?<!-- bench:end -->", lambda m: report, text, count=1, flags=re.S)
open(md, "w").write(new)
PY
  else
    {
      echo "# Benchmarks"
      echo
      echo "Backup of 10,000 ConfigMaps and Secrets with the release operator on the local test ground. Re-run with \`scripts/bench.sh\`; it rewrites the block between the markers below and keeps the rest of this file."
      echo
      echo "$REPORT"
    } > "$MD"
  fi
  log "wrote $MD"
fi

echo
echo "=== cluster-backup benchmark ($EXPECTED objects, $(nproc) CPUs, kube-apiserver $K8S_VERSION, $S3_VERSION) ==="
echo "seeding (not measured): $SEED_SECONDS s"
awk -F'\t' '{printf "%-20s %7s s  (run %s s, pickup %s s)  objects %-6s ok=%s  RSS idle %.1f MiB peak %.1f MiB  CPU s op/api/etcd/s3 %s/%s/%s/%s\n",
  $1, $2, $4, $3, $6, $15, $8/1024, $9/1024, $10, $11, $12, $13}' "$WORK/results.tsv"
echo "median of $RUNS runs: $MEDIAN_WALL s (target < $TARGET_SECONDS s: $TIME_MET); peak RSS $MAX_PEAK_MIB MiB (target < $TARGET_RSS_MIB MiB: $RSS_MET)"
echo "floors: API lists ${LIST_NS_S} s (per namespace) / ${LIST_ALL_S} s (cluster-wide); kubectl get cm,secret -A ${KUBECTL_GET_S} s; S3 PUTs ${PUT16_RATE}/s @16, ${PUT32_RATE}/s @32"
if [ "$ERRORS" -gt 0 ]; then
  log "$ERRORS run(s) did not produce the expected backup; see above"
  exit 1
fi
