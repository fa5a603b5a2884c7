#!/usr/bin/env bash
# Backup and restore benchmark of the release operator binary against the local test ground
# (real kube-apiserver + etcd + S3 server on 127.0.0.1). Reports trigger-to-Completed wall time,
# the ratio to a floor measured in the same run, the operator's peak RSS, and the requests (and
# bytes) sent to the API server and to S3; writes one generated section per scenario and S3 setup
# into BENCHMARKS.md.
#
#   scripts/bench.sh [--scenario NAME[,NAME...]]... [--keep] [--runs N] [--s3 shared|s3s-fs|seaweedfs]
#                    [--no-build] [--no-write] [--md FILE] [--no-restore] [--create-concurrency 8,16,32]
#
#   --scenario   which scenarios to run, in this order (repeatable or a comma list; default 10k):
#     10k          10,000 ConfigMaps + Secrets in 20 namespaces, today's one-file-per-object layout:
#                  a warm-up, N explicit-namespace Backups, one `namespaces: ["*"]` Backup, one to
#                  the `filesystem` provider, the restore of run-N into an empty control plane
#                  `bench-restore`, and the floors (API lists, kubectl, raw S3 PUTs). Section SETUP.
#     packed10k    the same data, N Backups with `spec.format: packed`, each against the LIST floor
#                  (below). Section packed10k-SETUP.
#     incremental  the same data, one packed Backup run three times (run-now annotation): first,
#                  unchanged cluster, then after patching the data of every 100th ConfigMap/Secret
#                  (1 %). Uploads of the later runs as % of the first. Section incremental-SETUP.
#     incremental100k  the same on the 100k data. Section incremental100k-SETUP.
#     encrypted10k the 10k data, N packed Backups without and N with `encryption` (interleaved,
#                  each into a new bucket), then the restore of the last of each into an empty
#                  `bench-restore`: what client-side encryption costs. Section encrypted10k-SETUP.
#     100k         100 namespaces x (500 ConfigMaps + 500 Secrets) = 100,000 objects in their own
#                  control plane `bench-100k`, seeded once and KEPT between invocations (namespaces
#                  already holding their 1,000 objects are not seeded again): one packed Backup
#                  against its LIST floor; the restore into an empty `bench-restore` against a raw
#                  create floor (the same objects POSTed by scripts/bench/seed.py into a fresh empty
#                  control plane `bench-create`, once per --create-concurrency). Section 100k-SETUP.
#                  Remove the kept control plane with `scripts/testenv.sh down bench-100k`.
#   --keep       leave the `bench`, `bench-restore` and `bench-create` control planes, the buckets
#                written and the work directory in place (the operator processes are always
#                stopped; `bench-100k` is kept anyway)
#   --runs N     measured runs of the explicit-namespace Backup in 10k and packed10k (default 3;
#                100k and incremental run their Backups once per step)
#   --s3 MODE    shared (default): the S3 server shared by this checkout's test grounds.
#                s3s-fs or seaweedfs: a fresh S3 server of that kind for the benchmark alone
#                (a separate test-ground root, TESTENV_DIR=${TMPDIR:-/tmp}/cluster-backup-bench-testenv,
#                removed at the end unless `bench-100k` is kept in it); its CPU column then counts
#                only the benchmark's own requests, not those of tests running against the shared server
#   --no-build   do not run `cargo build --release` (the binary must exist)
#   --no-write   print the results only; leave BENCHMARKS.md alone
#   --md FILE    write the generated sections into FILE instead of BENCHMARKS.md (e.g. a copy)
#   --no-restore skip the restore measurements (and the `bench-restore`/`bench-create` control planes)
#   --create-concurrency LIST  concurrencies of the 100k create floor (default 8,16,32; best is used)
#
# Everything talks to 127.0.0.1 only. A run replaces only its own generated sections
# (bench:begin/bench:end markers named after scenario and S3 setup: shared-seaweedfs,
# packed10k-own-s3s-fs, ...); hand-written text and other sections are kept.
#
# 10k steps: seed (timed separately, not part of any measurement) -> install CRDs -> start
# target/release/cluster-backup run in the background -> a warm-up Backup (tiny) ->
# N one-shot Backups of the 20 namespaces, each timed from the POST that creates it until
# status.phase is Completed (polled every 100 ms) -> one Backup with namespaces ["*"] -> one
# Backup to the `filesystem` provider (ClusterStorageLocation `bench-fs`; the same run without
# S3, a diagnostic) -> restore: the
# last explicit-namespace backup (run-N) into a second, empty control plane `bench-restore`
# (same S3 server) by a second operator process, timed from the POST that creates the Restore
# until status.phase is Completed, with status.resourceCounts.created == 10,000 -> floors: the
# API server's list time and the S3 server's raw PUT rate.
# LIST floor (all scenarios; scripts/bench/kube.py listfloor): paginated LISTs (limit 500) of
# exactly the objects backed up (configmaps and secrets of each listed namespace), JSON-decoded,
# sequential, one keep-alive connection with the admin client certificate; best of 3.
# Every Backup/Restore also reports: API requests (delta of the kube-apiserver's
# apiserver_request_total around the run: total, LIST, POST, other - other includes the
# benchmark's own status polls, counted separately), and the S3 figures of status.lastRun
# (uploadRequests, uploadedBytes, storageRequests, reusedObjects; `n/a` when the operator does
# not report them). A Backup whose spec.format the API server pruned (an operator without
# `format`) is marked "objects (format pruned)": it ran one-file-per-object.
# Targets are reported, not asserted: 10k: < 10 s, < 100 MiB (issue 3); all backups: <= 4x the
# LIST floor and <= 64 MiB peak RSS; 100k restore <= 1.3x the create floor; incremental: an
# unchanged re-run uploads <= 1 % of the first run's bytes and PUTs and takes <= the LIST floor.
# The exit status is non-zero only for real errors (a step that fails, a backup with the wrong
# object count, a one-shot Backup that ran more than once); the work directory is then kept.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$ROOT/scripts/bench
NAME=bench
KEEP=0
RUNS=3
BUILD=1
WRITE_MD=1
S3_MODE=shared
MD=$ROOT/BENCHMARKS.md
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
SCENARIOS=()
# The 100k data: its own control plane, kept between invocations.
NAME_100K=bench-100k
NS_COUNT_100K=100
CM_PER_NS_100K=500
SECRET_PER_NS_100K=500
NS_PREFIX_100K=b100k
RUN_TIMEOUT_100K=3600
CREATE_NAME=bench-create
CREATE_CONCURRENCY=8,16,32
TARGET_FLOOR_RATIO=4
TARGET_RSS_NEW_MIB=64
TARGET_RESTORE_RATIO=1.3
LIST_FLOOR_RUNS=3

while [ $# -gt 0 ]; do
  case "$1" in
    --keep) KEEP=1 ;;
    --runs) RUNS=${2:?--runs needs a number}; shift ;;
    --no-build) BUILD=0 ;;
    --no-write) WRITE_MD=0 ;;
    --md) MD=${2:?--md needs a file}; shift ;;
    --no-restore) RESTORE=0 ;;
    --s3) S3_MODE=${2:?--s3 needs shared, s3s-fs or seaweedfs}; shift ;;
    --scenario) IFS=, read -r -a _sc <<<"${2:?--scenario needs a name}"; SCENARIOS+=("${_sc[@]}"); shift ;;
    --create-concurrency) CREATE_CONCURRENCY=${2:?--create-concurrency needs a comma list}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "--runs must be a positive number" >&2; exit 2; }
[[ "$CREATE_CONCURRENCY" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || { echo "--create-concurrency must be a comma list of numbers" >&2; exit 2; }
[ "${#SCENARIOS[@]}" -gt 0 ] || SCENARIOS=(10k)
for _s in "${SCENARIOS[@]}"; do
  case "$_s" in
    10k|packed10k|incremental|incremental100k|100k|encrypted10k) ;;
    *) echo "unknown scenario: $_s (10k, packed10k, incremental, incremental100k, 100k, encrypted10k)" >&2; exit 2 ;;
  esac
done
has_scenario() { local s; for s in "${SCENARIOS[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
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
GROUNDS=()        # control planes this run used and stops at the end (not bench-100k)
USED_100K=0       # bench-100k was used (it is kept)
CERTS=            # the current control plane's admin certificates (see use_ground)
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
  local b g
  [ "$USED_100K" = 1 ] && log "kept: control plane '$NAME_100K' with the 100k seeded objects (remove it with: ${TESTENV_DIR:+TESTENV_DIR=$TESTENV_DIR }scripts/testenv.sh down $NAME_100K)"
  if [ "$KEEP" = 1 ]; then
    [ "${#BUCKETS[@]}" -gt 0 ] && log "kept: buckets ${BUCKETS[*]} on $S3_ENDPOINT"
    [ -n "$WORK" ] && log "kept: work directory $WORK (operator logs: $WORK/operator*.log)"
    [ "${#GROUNDS[@]}" -gt 0 ] && log "kept: control planes ${GROUNDS[*]} (stop them with scripts/testenv.sh down NAME)"
  else
    # The shared S3 server would otherwise keep tens of thousands of our small objects.
    for b in "${BUCKETS[@]}"; do purge_bucket "$b"; done
    if [ "$ERRORS" -gt 0 ] && [ -n "$WORK" ]; then
      rm -rf -- "$WORK/seed" "$WORK/fs-backups"
      log "kept for inspection: $WORK (operator.log, backups.yaml, events.txt)"
    elif [ -n "$WORK" ]; then
      rm -rf -- "$WORK"
    fi
    for g in "${GROUNDS[@]}"; do "$ROOT/scripts/testenv.sh" down "$g" >/dev/null 2>&1 || true; done
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
  curl --noproxy '*' -sS --max-time 60 --cacert "$CERTS/ca.crt" --cert "$CERTS/client.crt" --key "$CERTS/client.key" \
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

s3_storage() { # BUCKET [KEY_SECRET] -> storageLocation JSON (encrypting with KEY_SECRET's keys)
  jq -nc --arg b "$1" --arg e "$S3_ENDPOINT" --arg r "$S3_REGION" --arg k "${2:-}" \
    '{provider: "s3", bucket: $b, endpoint: $e, region: $r, credentialsSecret: "bench-s3"}
     + (if $k == "" then {} else {encryption: {keySecret: $k}} end)'
}

# The key of the encrypted10k scenario (a benchmark key, not a secret).
BENCH_KEY_HEX=6b6579206f66207468652062656e63686d61726b206f6e6c792c206e6f74206b
bench_keys_secret() { # NAMESPACE KUBECTL... -> applies Secret bench-keys there
  local ns=$1; shift
  jq -n --arg ns "$ns" --arg k "$BENCH_KEY_HEX" \
    '{apiVersion: "v1", kind: "Secret", metadata: {name: "bench-keys", namespace: $ns}, type: "Opaque",
      stringData: {"bench.key": $k}}' | "$@" apply -f - >/dev/null
}

# A new bucket for each run. Buckets are only deleted at the very end: deleting many files just
# before a run makes s3s-fs several times slower for minutes, because on this machine's ext4
# the kernel skips recently freed inodes when it allocates new ones (perf: recently_deleted()).
next_bucket() { # LABEL -> sets BUCKET (call it in the main shell, not in $(...))
  BUCKET="$BUCKET_BASE-$1"
  BUCKETS+=("$BUCKET")
}

median() { sort -n | awk '{a[NR]=$1} END{if (NR==0) {print "n/a"} else if (NR%2) {print a[(NR+1)/2]} else {printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}}'; }

backup_json() { # NAME SOURCE_JSON STORAGE_JSON [FORMAT]
  jq -n --arg name "$1" --arg ns "$BACKUP_NS" --argjson source "$2" --argjson storage "$3" --arg format "${4:-}" \
    '{apiVersion: "backup.cnd.dk/v1", kind: "Backup", metadata: {name: $name, namespace: $ns},
      spec: ({source: $source, storageLocation: $storage} + (if $format == "" then {} else {format: $format} end))}'
}

# "total list post other" of the current control plane's apiserver_request_total.
api_counts() { python3 "$HERE/kube.py" apicounts "$KUBECONFIG" 2>/dev/null || echo "0 0 0 0"; }
lastrun_field() { # STATUS_JSON FIELD -> the integer or n/a (older operators do not report it)
  jq -r --arg f "$2" '.status.lastRun[$f] // "n/a"' <<<"$1"
}

# Creates a Backup (measure) or triggers one more run of an existing one through the run-now
# annotation (measure_again) and waits for that run to finish. Appends one TSV line to
# $WORK/results.tsv:
# 1 label 2 wall_s 3 pickup_s 4 engine_s 5 result 6 objects 7 bytes 8 idle_rss_kib 9 peak_rss_kib
#   10 cpu_operator 11 cpu_apiserver 12 cpu_etcd 13 cpu_s3 14 load1 15 ok 16 format
#   17 api_total 18 api_list 19 api_post 20 api_other 21 bench_polls 22 upload_requests
#   23 uploaded_bytes 24 storage_requests 25 reused_objects
measure() { # LABEL BACKUP_NAME EXPECTED_OBJECTS SOURCE_JSON STORAGE_JSON [FORMAT]
  run_measured create "$@"
}
measure_again() { # LABEL BACKUP_NAME EXPECTED_OBJECTS [FORMAT the Backup was created with]
  run_measured again "$1" "$2" "$3" '' '' "${4:-}"
}
run_measured() {
  local mode=$1 label=$2 name=$3 expected=$4 format=${7:-} body t0 t_running='' t1='' code phase status i
  local path="/apis/backup.cnd.dk/v1/namespaces/$BACKUP_NS/backups"
  local prev_start='' prev_runs=0 trigger=''
  if [ "$mode" = again ]; then
    status=$(api GET "$path/$name") || die "[$label] cannot read Backup $BACKUP_NS/$name"
    prev_start=$(jq -r '.status.lastRun.startTime // ""' <<<"$status")
    prev_runs=$(jq -r '.status.history // [] | length' <<<"$status")
    trigger="bench-$(date +%s%N)"
  else
    body=$(backup_json "$name" "$5" "$6" "$format")
  fi
  local idle_rss; idle_rss=$(proc_field "$OP_PID" VmRSS)
  # Reset the peak-RSS counter so VmHWM afterwards is this run's peak (Linux >= 4.0).
  echo 5 > "/proc/$OP_PID/clear_refs" 2>/dev/null || log "note: cannot reset VmHWM; peak covers the process lifetime"
  local load1; load1=$(cut -d' ' -f1 /proc/loadavg)
  local a0 a1; a0=$(api_counts)
  local c_op c_api c_etcd c_s3
  c_op=$(cpu_ticks "$OP_PID"); c_api=$(cpu_ticks "$APISERVER_PID"); c_etcd=$(cpu_ticks "$ETCD_PID"); c_s3=$(cpu_ticks "$S3_PID")
  if [ "$mode" = again ]; then
    log "[$label] run-now $trigger on Backup $BACKUP_NS/$name (operator RSS idle $(kib_to_mib "$idle_rss") MiB, load $load1)"
    t0=$(now)
    code=$(api PATCH "$path/$name" -H 'Content-Type: application/merge-patch+json' \
             -d "$(jq -nc --arg v "$trigger" '{metadata: {annotations: {"backup.cnd.dk/run-now": $v}}}')" \
             -o "$WORK/create.out" -w '%{http_code}') || die "[$label] annotating the Backup failed"
    [ "$code" = 200 ] || die "[$label] annotating the Backup: HTTP $code: $(head -c 400 "$WORK/create.out")"
  else
    log "[$label] creating Backup $BACKUP_NS/$name${format:+ (format $format)} (operator RSS idle $(kib_to_mib "$idle_rss") MiB, load $load1)"
    t0=$(now)
    code=$(api POST "$path" -H 'Content-Type: application/json' \
             -d "$body" -o "$WORK/create.out" -w '%{http_code}') || die "[$label] creating the Backup failed"
    [ "$code" = 201 ] || die "[$label] creating the Backup: HTTP $code: $(head -c 400 "$WORK/create.out")"
  fi
  # An operator without spec.format: the API server prunes the unknown field.
  local fmt_eff=objects
  if [ -n "$format" ]; then
    fmt_eff=$(jq -r '.spec.format // ""' "$WORK/create.out")
    if [ -z "$fmt_eff" ]; then
      fmt_eff="objects (format pruned)"
      log "[$label] NOTE: the API server pruned spec.format=$format (CRD without it): this run is one-file-per-object"
    fi
  fi
  local run_now
  for ((i = 1; ; i++)); do
    status=$(api GET "$path/$name") || status='{}'
    phase=$(jq -r '.status.phase // ""' <<<"$status" 2>/dev/null || true)
    if [ "$mode" = again ]; then
      # The run counts once the phase left Completed for it, i.e. lastRun is a new record.
      run_now=$(jq -r --arg p "$prev_start" '(.status.lastRun.startTime // "") != $p and .status.lastRun.result != null and .status.currentRun == null' <<<"$status" 2>/dev/null || echo false)
      if [ -z "$t_running" ] && { [ "$run_now" = true ] || [ "$phase" = Running ]; }; then t_running=$(now); fi
      [ "$run_now" = true ] || phase=waiting
    elif [ -z "$t_running" ] && [ -n "$phase" ] && [ "$phase" != New ]; then t_running=$(now); fi
    case "$phase" in
      Completed|PartiallyFailed|Failed) t1=$(now); break ;;
    esac
    if awk -v a="$t0" -v b="$(now)" -v t="$RUN_TIMEOUT" 'BEGIN{exit !(b-a > t)}'; then
      die "[$label] no result after $RUN_TIMEOUT s (phase '$phase'); operator log: $OP_LOG"
    fi
    sleep "$POLL_INTERVAL"
  done
  local polls=$i
  a1=$(api_counts)
  local peak
  peak=$(proc_field "$OP_PID" VmHWM)
  local d_op d_api d_etcd d_s3
  d_op=$(( $(cpu_ticks "$OP_PID") - c_op )); d_api=$(( $(cpu_ticks "$APISERVER_PID") - c_api ))
  d_etcd=$(( $(cpu_ticks "$ETCD_PID") - c_etcd )); d_s3=$(( $(cpu_ticks "$S3_PID") - c_s3 ))
  local objects bytes result message engine_s wall pickup ok=yes reused up_req up_bytes st_req
  objects=$(jq -r '.status.lastRun.objects // 0' <<<"$status")
  bytes=$(jq -r '.status.lastRun.bytes // 0' <<<"$status")
  result=$(jq -r '.status.lastRun.result // "?"' <<<"$status")
  message=$(jq -r '.status.lastRun.message // .status.message // ""' <<<"$status")
  up_req=$(lastrun_field "$status" uploadRequests); up_bytes=$(lastrun_field "$status" uploadedBytes)
  st_req=$(lastrun_field "$status" storageRequests); reused=$(lastrun_field "$status" reusedObjects)
  engine_s=$(sed -n 's/.* in \([0-9.]*\) s at .*/\1/p' <<<"$message"); engine_s=${engine_s:-n/a}
  wall=$(elapsed "$t0" "$t1"); pickup=$(elapsed "$t0" "${t_running:-$t1}")
  # A later run of a packed Backup may count only what it uploaded; objects + reused is then the total.
  local complete=no
  if [ "$objects" = "$expected" ]; then complete=yes
  elif [ "$mode" = again ] && [ "$reused" != n/a ] && [ $((objects + reused)) = "$expected" ]; then complete=yes; fi
  if [ "$phase" != Completed ] || [ "$complete" != yes ]; then
    ok=NO
    ERRORS=$((ERRORS + 1))
    log "[$label] WRONG RESULT: phase $phase, objects $objects (reused $reused; expected $expected): $message"
  fi
  # A one-shot Backup runs exactly once (once more per run-now): a second run (e.g. one started
  # from a stale cache) shows up as one more history entry, possibly only a moment after Completed.
  sleep 1
  status=$(api GET "$path/$name") || status='{}'
  local runs phase_after want_runs=1
  [ "$mode" = again ] && want_runs=$(( prev_runs + 1 > 10 ? 10 : prev_runs + 1 ))
  runs=$(jq -r '.status.history // [] | length' <<<"$status")
  phase_after=$(jq -r '.status.phase // ""' <<<"$status")
  if [ "$runs" != "$want_runs" ] || [ "$phase_after" != Completed ]; then
    [ "$ok" = NO ] || ERRORS=$((ERRORS + 1))
    ok="NO: ran $runs times (phase now $phase_after)"
    log "[$label] DUPLICATE RUN: the Backup has $runs history entries (expected $want_runs), phase now $phase_after: $(jq -c '[.status.history[]? | {trigger, result, startTime, completionTime, message}]' <<<"$status")"
  fi
  local api_d
  api_d=$(awk -v a="$a0" -v b="$a1" 'BEGIN{split(a, x, " "); split(b, y, " "); printf "%d\t%d\t%d\t%d", y[1]-x[1], y[2]-x[2], y[3]-x[3], y[4]-x[4]}')
  log "[$label] $phase in $wall s (run ${engine_s} s, picked up after $pickup s): $objects objects, $bytes bytes, format $fmt_eff; peak RSS $(kib_to_mib "$peak") MiB; CPU s op/apiserver/etcd/s3 $(ticks_to_s "$d_op")/$(ticks_to_s "$d_api")/$(ticks_to_s "$d_etcd")/$(ticks_to_s "$d_s3"); API requests total/LIST/POST/other $(tr '\t' / <<<"$api_d") (incl. $polls status polls); S3 PUTs $up_req, PUT bytes $up_bytes, all requests $st_req, reused $reused"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$wall" "$pickup" "$engine_s" "$result" \
    "$objects" "$bytes" "$idle_rss" "$peak" "$(ticks_to_s "$d_op")" "$(ticks_to_s "$d_api")" "$(ticks_to_s "$d_etcd")" \
    "$(ticks_to_s "$d_s3")" "$load1" "$ok" "$fmt_eff" "$api_d" "$polls" "$up_req" "$up_bytes" "$st_req" "$reused" >> "$RESULTS"
}

# --- build, test grounds -----------------------------------------------------------------

command -v jq >/dev/null || die "jq is needed"
command -v python3 >/dev/null || die "python3 is needed"
command -v curl >/dev/null || die "curl is needed"

if [ "$BUILD" = 1 ]; then
  log "cargo build --release (first build on 2 cores takes a long while)"
  (cd "$ROOT" && cargo build --release --bin cluster-backup >&2) || die "cargo build --release failed"
fi
[ -x "$BIN" ] || die "$BIN is missing (run without --no-build)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cluster-backup-bench.XXXXXX")
chmod 700 "$WORK"
RESULTS=$WORK/results.tsv
OP_LOG=$WORK/operator.log
BUCKET_BASE="bench-$(date +%Y%m%d-%H%M%S)-$$"

# Starts (or reuses) control plane NAME and makes it the current one: KUBECONFIG, KUBECTL,
# TESTENV_ROOT (from its env file), API_SERVER, CERTS (for api), APISERVER_PID, ETCD_PID.
use_ground() { # NAME
  local name=$1 env_file g seen=0
  log "test ground '$name'"
  env_file=$("$ROOT/scripts/testenv.sh" up "$name") || die "scripts/testenv.sh up $name failed"
  if [ "$name" = "$NAME_100K" ]; then USED_100K=1
  else
    for g in "${GROUNDS[@]}"; do [ "$g" = "$name" ] && seen=1; done
    [ "$seen" = 1 ] || GROUNDS+=("$name")
  fi
  # shellcheck disable=SC1090
  . "$env_file"
  [ -n "${KUBECTL:-}" ] && [ -x "$KUBECTL" ] || die "no kubectl from the test ground"
  API_SERVER=$("$KUBECTL" config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
  case "$API_SERVER" in https://127.0.0.1:*|https://localhost:*) ;; *) die "API server $API_SERVER is not on loopback" ;; esac
  case "$S3_ENDPOINT" in http://127.0.0.1:*|http://localhost:*) ;; *) die "S3 endpoint $S3_ENDPOINT is not on loopback" ;; esac
  CERTS=$WORK/certs-$name
  mkdir -p "$CERTS"
  "$KUBECTL" config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d > "$CERTS/ca.crt"
  "$KUBECTL" config view --raw --minify -o jsonpath='{.users[0].user.client-certificate-data}' | base64 -d > "$CERTS/client.crt"
  "$KUBECTL" config view --raw --minify -o jsonpath='{.users[0].user.client-key-data}' | base64 -d > "$CERTS/client.key"
  chmod 600 "$CERTS"/*
  [ "$(api GET /readyz)" = ok ] || die "API server $API_SERVER is not ready"
  APISERVER_PID=$(pid_from "$TESTENV_ROOT/apiserver.pid")
  ETCD_PID=$(pid_from "$TESTENV_ROOT/etcd.pid")
  [ -n "${S3_KIND:-}" ] || s3_setup
}

# The S3 server and versions (once, from the first control plane).
s3_setup() {
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
}

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

ns_names() { # PREFIX COUNT -> one namespace name a line
  local n; for ((n = 0; n < $2; n++)); do printf '%s-%02d\n' "$1" "$n"; done
}

# The LIST floor of a Backup of configmaps + secrets in PREFIX-00..: sets FLOOR_S (best of
# LIST_FLOOR_RUNS), FLOOR_RUNS_S, FLOOR_REQUESTS, FLOOR_OBJECTS, FLOOR_CPU (apiserver + etcd CPU
# s of all runs).
list_floor() { # PREFIX COUNT EXPECTED
  local out c_api c_etcd
  log "LIST floor: paginated LISTs (limit 500) of configmaps + secrets in $2 namespaces, JSON-decoded, sequential, best of $LIST_FLOOR_RUNS"
  c_api=$(cpu_ticks "$APISERVER_PID"); c_etcd=$(cpu_ticks "$ETCD_PID")
  mapfile -t _ns < <(ns_names "$1" "$2")
  out=$(python3 "$HERE/kube.py" listfloor "$KUBECONFIG" "$LIST_FLOOR_RUNS" "${_ns[@]}") || die "LIST floor failed"
  FLOOR_CPU=$(ticks_to_s $(( $(cpu_ticks "$APISERVER_PID") + $(cpu_ticks "$ETCD_PID") - c_api - c_etcd )))
  FLOOR_S=$(sed -n 's/.*best=\([0-9.]*\).*/\1/p' <<<"$out")
  FLOOR_RUNS_S=$(sed -n 's/.*runs=\([0-9.,]*\).*/\1/p' <<<"$out")
  FLOOR_REQUESTS=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$out")
  FLOOR_OBJECTS=$(sed -n 's/.*objects=\([0-9]*\).*/\1/p' <<<"$out")
  # kube-controller-manager's kube-root-ca.crt ConfigMap (one per namespace) is listed by the
  # operator too, and skipped.
  [ "$FLOOR_OBJECTS" = "$3" ] || log "note: the LIST floor's pages held $FLOOR_OBJECTS objects, the Backup covers $3 (the operator lists the same pages and skips e.g. kube-root-ca.crt)"
  log "LIST floor: best $FLOOR_S s (runs $FLOOR_RUNS_S s; $FLOOR_REQUESTS requests, $FLOOR_OBJECTS objects; apiserver+etcd $FLOOR_CPU CPU s for $LIST_FLOOR_RUNS runs)"
}

# The 10k data in control plane `bench` (idempotent within one invocation): SEED_* variables,
# the 10k LIST floor (FLOOR10K_*).
DATA10K=0
prepare_data10k() {
  use_ground "$NAME"
  [ "$DATA10K" = 1 ] && return 0
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
  list_floor "$NS_PREFIX" "$NS_COUNT" "$EXPECTED"
  FLOOR10K_S=$FLOOR_S FLOOR10K_RUNS=$FLOOR_RUNS_S FLOOR10K_REQ=$FLOOR_REQUESTS FLOOR10K_CPU=$FLOOR_CPU
  DATA10K=1
}

# The 100k data in the kept control plane `bench-100k`: namespaces that already hold their
# objects are skipped; the others are seeded. Sets SEED100K_*, FLOOR100K_*.
DATA100K=0
prepare_data100k() {
  use_ground "$NAME_100K"
  [ "$DATA100K" = 1 ] && return 0
  local per_ns=$((CM_PER_NS_100K + SECRET_PER_NS_100K)) missing=() f t
  EXPECTED_100K=$((NS_COUNT_100K * per_ns))
  mapfile -t _ns < <(ns_names "$NS_PREFIX_100K" "$NS_COUNT_100K")
  local counts
  counts=$(python3 "$HERE/kube.py" seeded "$KUBECONFIG" "${_ns[@]}") || die "counting the 100k objects failed"
  while read -r ns n; do [ "$n" = "$per_ns" ] || missing+=("$ns"); done <<<"$counts"
  # The object files are needed for seeding and for the create floor.
  if [ "${#missing[@]}" -gt 0 ] || { [ "$RESTORE" = 1 ] && has_scenario 100k; }; then
    log "generating $EXPECTED_100K objects ($NS_COUNT_100K namespaces x ($CM_PER_NS_100K ConfigMaps + $SECRET_PER_NS_100K Secrets))"
    python3 "$HERE/gen_objects.py" "$WORK/seed100k" "$NS_COUNT_100K" "$CM_PER_NS_100K" "$SECRET_PER_NS_100K" "$NS_PREFIX_100K" \
      > "$WORK/seed100k-files.txt"
  fi
  t=$(now)
  if [ "${#missing[@]}" = 0 ]; then
    log "the $EXPECTED_100K objects are already in '$NAME_100K'; not seeding"
    SEED100K_NOTE="already seeded"
  else
    log "seeding ${#missing[@]} of $NS_COUNT_100K namespaces into '$NAME_100K' (8 workers; the control plane is kept for later runs)"
    local files=()
    for f in "${missing[@]}"; do files+=("$WORK/seed100k/$f.json"); done
    SEED100K_NOTE=$(python3 "$HERE/seed.py" "$KUBECONFIG" 8 "${files[@]}") || die "seeding the 100k data failed"
    SEED100K_NOTE="${#missing[@]} namespaces seeded: $SEED100K_NOTE"
  fi
  SEED100K_SECONDS=$(elapsed "$t" "$(now)")
  local seeded; seeded=$(count_seeded)
  [ "$seeded" = "$EXPECTED_100K" ] || die "'$NAME_100K' holds $seeded seeded objects, expected $EXPECTED_100K"
  log "100k data ready in $SEED100K_SECONDS s ($SEED100K_NOTE)"
  list_floor "$NS_PREFIX_100K" "$NS_COUNT_100K" "$EXPECTED_100K"
  FLOOR100K_S=$FLOOR_S FLOOR100K_RUNS=$FLOOR_RUNS_S FLOOR100K_REQ=$FLOOR_REQUESTS FLOOR100K_CPU=$FLOOR_CPU
  DATA100K=1
}

# --- operator ----------------------------------------------------------------------------

# Installs the CRDs into the current control plane and starts the operator against it
# (OP_PID, OP_LOG, OP_START_RSS).
start_operator() { # LOG_LABEL
  log "installing CRDs"
  "$BIN" install >&2 || die "cluster-backup install failed"
  "$KUBECTL" create namespace "$BACKUP_NS" --dry-run=client -o json | "$KUBECTL" apply -f - >/dev/null
  jq -n --arg ns "$BACKUP_NS" --arg a "$S3_ACCESS_KEY" --arg s "$S3_SECRET_KEY" \
    '{apiVersion: "v1", kind: "Secret", metadata: {name: "bench-s3", namespace: $ns}, type: "Opaque",
      stringData: {accessKey: $a, secretKey: $s}}' | "$KUBECTL" apply -f - >/dev/null
  # Leftover Backups of a kept test ground would be reconciled by the new operator; start clean.
  "$KUBECTL" -n "$BACKUP_NS" delete backups.backup.cnd.dk --all --wait=true >/dev/null 2>&1 || true
  OP_LOG=$WORK/operator${1:+-$1}.log
  log "starting $BIN run (log: $OP_LOG)"
  RUST_LOG=${RUST_LOG:-info,kube_runtime=warn,object_store=warn} "$BIN" run > "$OP_LOG" 2>&1 &
  OP_PID=$!
  for _ in $(seq 100); do
    grep -q 'starting cluster-backup operator' "$OP_LOG" 2>/dev/null && break
    kill -0 "$OP_PID" 2>/dev/null || { tail -20 "$OP_LOG" >&2; die "the operator exited"; }
    sleep 0.1
  done
  sleep 1  # let the controller's watch start
  kill -0 "$OP_PID" 2>/dev/null || { tail -20 "$OP_LOG" >&2; die "the operator exited"; }
  OP_START_RSS=$(proc_field "$OP_PID" VmRSS)
  log "operator pid $OP_PID, RSS after start $(kib_to_mib "$OP_START_RSS") MiB"
}

stop_operator() {
  OP_FINAL_RSS=$(proc_field "$OP_PID" VmRSS)
  kill -TERM "$OP_PID" 2>/dev/null || true
  wait "$OP_PID" 2>/dev/null || true
  OP_PID=
}

# Every one-shot Backup must still show exactly one run (late duplicates).
check_late_duplicates() { # [NAME_TO_SKIP]
  LATE=$(api GET "/apis/backup.cnd.dk/v1/namespaces/$BACKUP_NS/backups" |
    jq -r --arg skip "${1:-}" '.items[] | select(.metadata.name != $skip) | select((.status.history // [] | length) != 1) | "\(.metadata.name): \(.status.history // [] | length) runs"')
  if [ -n "$LATE" ]; then
    ERRORS=$((ERRORS + 1))
    log "one-shot Backups that did not run exactly once: $(tr '\n' ' ' <<<"$LATE")"
  fi
  if [ "$ERRORS" -gt 0 ]; then
    "$KUBECTL" -n "$BACKUP_NS" get backups.backup.cnd.dk -o yaml > "$WORK/backups.yaml" 2>/dev/null || true
    "$KUBECTL" -n "$BACKUP_NS" get events --sort-by=.lastTimestamp > "$WORK/events.txt" 2>/dev/null || true
  fi
}

NAMESPACES_JSON=$(ns_names "$NS_PREFIX" "$NS_COUNT" | jq -R . | jq -sc .)
SOURCE_EXPLICIT=$(jq -nc --argjson ns "$NAMESPACES_JSON" '{namespaces: $ns, resourceTypes: ["configmaps", "secrets"]}')
EXCLUDED='["'"$BACKUP_NS"'", "default", "kube-system", "kube-public", "kube-node-lease"]'
SOURCE_ALL=$(jq -nc --argjson ex "$EXCLUDED" '{namespaces: ["*"], excludeNamespaces: $ex, resourceTypes: ["configmaps", "secrets"]}')
SOURCE_100K=$(ns_names "$NS_PREFIX_100K" "$NS_COUNT_100K" | jq -R . | jq -sc '{namespaces: ., resourceTypes: ["configmaps", "secrets"]}')
SOURCE_WARMUP=$(jq -nc --arg ns "$BACKUP_NS" '{namespaces: [$ns], resourceTypes: ["configmaps"]}')

# --- scenario 10k: one file per object ----------------------------------------------------

backups_10k() {
  RESULTS=$WORK/results.tsv; : > "$RESULTS"
  prepare_data10k
  start_operator
  # What the "*" Backup must contain: every ConfigMap/Secret outside the excluded namespaces,
  # except the kube-root-ca.crt ConfigMap kube-controller-manager publishes in each namespace
  # (the operator skips it).
  EXPECTED_ALL=$("$KUBECTL" get configmaps,secrets -A --no-headers -o custom-columns=NS:.metadata.namespace,KIND:.kind,NAME:.metadata.name |
    jq -R . | jq -s --argjson ex "$EXCLUDED" '[.[] | split(" ") | map(select(. != "")) |
      select(.[0] as $n | $ex | index($n) | not) | select(.[1] != "ConfigMap" or .[2] != "kube-root-ca.crt")] | length')

  # Warm-up: a tiny Backup that creates the bucket and warms the operator's connections.
  next_bucket warmup
  measure warmup bench-warmup 0 "$SOURCE_WARMUP" "$(s3_storage "$BUCKET")"
  for ((r = 1; r <= RUNS; r++)); do
    next_bucket "run-$r"
    measure "run-$r" "bench-run-$r" "$EXPECTED" "$SOURCE_EXPLICIT" "$(s3_storage "$BUCKET")"
  done
  next_bucket all-ns
  measure 'all-namespaces (*)' bench-all-ns "$EXPECTED_ALL" "$SOURCE_ALL" "$(s3_storage "$BUCKET")"
  FS_DIR=$WORK/fs-backups
  mkdir -p "$FS_DIR"
  # The operator's own disk is offered only by an administrator, as a ClusterStorageLocation.
  jq -n --arg d "$FS_DIR" --arg ns "$BACKUP_NS" \
    '{apiVersion: "backup.cnd.dk/v1", kind: "ClusterStorageLocation", metadata: {name: "bench-fs"},
      spec: {provider: "filesystem", bucket: $d, allowedNamespaces: [$ns]}}' | "$KUBECTL" apply -f - >/dev/null ||
    die "creating ClusterStorageLocation bench-fs failed"
  measure 'filesystem (no S3)' bench-fs "$EXPECTED" "$SOURCE_EXPLICIT" '{"name": "bench-fs"}'
  "$KUBECTL" delete clusterstoragelocations.backup.cnd.dk bench-fs --wait=false >/dev/null 2>&1 || true
  check_late_duplicates
  # Stop the operator before the floor measurements so it cannot compete for the CPU.
  stop_operator
  if [ "$RESTORE" = 1 ]; then
    restore_measure "bench-run-$RUNS" "$BUCKET_BASE-run-$RUNS" "$EXPECTED" "$NS_COUNT" "$WORK/restore.tsv"
  fi
  report_10k
}

# --- restore: the last explicit backup into an empty second control plane ---------------

# Restores SRC_BACKUP (of the current control plane) into an empty control plane `bench-restore`.
# Writes OUT_TSV (one line):
# wall_s pickup_s restoring_s engine_s phase created overwritten skipped failed present
#   idle_rss_kib peak_rss_kib cpu_operator cpu_apiserver cpu_etcd cpu_s3 load1 ok created_namespaces
#   api_total api_list api_post api_other (bench-restore's apiserver_request_total delta)
# `created` counts the namespaces that createNamespaces made too (created/namespaces).
restore_measure() { # SRC_BACKUP SRC_BUCKET EXPECTED_OBJECTS NAMESPACES OUT_TSV [TIMEOUT_S]
  local src_backup=$1 src_bucket=$2 r_expected=$3 r_ns=$4 r_out=$5 r_timeout=${6:-$RUN_TIMEOUT} backup_path r_env g seen=0
  backup_path=$(api GET "/apis/backup.cnd.dk/v1/namespaces/$BACKUP_NS/backups/$src_backup" | jq -r '.status.backupPath // ""')
  [ -n "$backup_path" ] || die "[restore] Backup $BACKUP_NS/$src_backup has no status.backupPath"
  RESTORE_SOURCE_PATH=$backup_path RESTORE_SOURCE_BUCKET=$src_bucket
  R_OP_LOG=$WORK/restore-operator-$src_backup.log

  # An empty control plane: a kept one from an earlier --keep run is replaced.
  log "[restore] starting an empty test ground '$RESTORE_NAME' (same S3 server)"
  "$ROOT/scripts/testenv.sh" down "$RESTORE_NAME" >/dev/null 2>&1 || true
  for g in "${GROUNDS[@]}"; do [ "$g" = "$RESTORE_NAME" ] && seen=1; done
  [ "$seen" = 1 ] || GROUNDS+=("$RESTORE_NAME")
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

  log "[restore] starting a second $BIN run against '$RESTORE_NAME' (log: $R_OP_LOG)"
  KUBECONFIG=$R_KUBECONFIG RUST_LOG=${RUST_LOG:-info,kube_runtime=warn,object_store=warn} "$BIN" run > "$R_OP_LOG" 2>&1 &
  R_OP_PID=$!
  for _ in $(seq 100); do
    grep -q 'starting cluster-backup operator' "$R_OP_LOG" 2>/dev/null && break
    kill -0 "$R_OP_PID" 2>/dev/null || { tail -20 "$R_OP_LOG" >&2; die "the restore operator exited"; }
    sleep 0.1
  done
  sleep 1  # let the controllers' watches start
  kill -0 "$R_OP_PID" 2>/dev/null || { tail -20 "$R_OP_LOG" >&2; die "the restore operator exited"; }
  R_OP_START_RSS=$(proc_field "$R_OP_PID" VmRSS)
  log "[restore] operator pid $R_OP_PID, RSS after start $(kib_to_mib "$R_OP_START_RSS") MiB"

  local body storage
  # RESTORE_KEYS=1: the backup is encrypted; the restore reads the same key from its own Secret.
  [ "${RESTORE_KEYS:-0}" = 1 ] && bench_keys_secret "$RESTORE_NS" rk
  storage=$(jq -nc --arg b "$src_bucket" --arg e "$S3_ENDPOINT" --arg r "$S3_REGION" --arg k "$([ "${RESTORE_KEYS:-0}" = 1 ] && echo bench-keys)" \
    '{provider: "minio", bucket: $b, endpoint: $e, region: $r, credentialsSecret: "bench-s3"}
     + (if $k == "" then {} else {encryption: {keySecret: $k}} end)')
  body=$(jq -n --arg ns "$RESTORE_NS" --arg p "$backup_path" --argjson st "$storage" \
    '{apiVersion: "backup.cnd.dk/v1", kind: "Restore", metadata: {name: "bench-restore", namespace: $ns},
      spec: {source: {storageLocation: $st, backupPath: $p}, options: {createNamespaces: true}}}')
  local idle_rss load1 c_op c_api c_etcd c_s3 t0 t1='' t_pick='' t_rest='' status phase code
  idle_rss=$(proc_field "$R_OP_PID" VmRSS)
  echo 5 > "/proc/$R_OP_PID/clear_refs" 2>/dev/null || log "note: cannot reset VmHWM; peak covers the process lifetime"
  load1=$(cut -d' ' -f1 /proc/loadavg)
  local a0 a1; a0=$(python3 "$HERE/kube.py" apicounts "$R_KUBECONFIG" 2>/dev/null || echo "0 0 0 0")
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
    if awk -v a="$t0" -v b="$(now)" -v t="$r_timeout" 'BEGIN{exit !(b-a > t)}'; then
      die "[restore] no result after $r_timeout s (phase '$phase'); operator log: $R_OP_LOG"
    fi
    sleep "$POLL_INTERVAL"
  done
  local peak d_op d_api d_etcd d_s3
  a1=$(python3 "$HERE/kube.py" apicounts "$R_KUBECONFIG" 2>/dev/null || echo "0 0 0 0")
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
  if [ "$phase" != Completed ] || [ "$((created - created_ns))" != "$r_expected" ] || [ "$created_ns" != "$r_ns" ] ||
     [ "$failed" != 0 ] || [ "$present" != "$r_expected" ]; then
    ok=NO
    ERRORS=$((ERRORS + 1))
    log "[restore] WRONG RESULT: phase $phase, created $created (expected $r_expected objects + $r_ns namespaces, got $created_ns namespaces), failed $failed, $present seeded objects in $RESTORE_NAME: $message"
    rapi GET "/api/v1/namespaces/$RESTORE_NS/events" > "$WORK/restore-events.json" 2>/dev/null || true
  fi
  log "[restore] $phase in $wall s (operator: ${engine_s} s; picked up after $pickup s, Restoring seen at $to_restoring s): created/overwritten/skipped/failed $created/$overwritten/$skipped/$failed, $present objects present; peak RSS $(kib_to_mib "$peak") MiB; CPU s op/apiserver/etcd/s3 $(ticks_to_s "$d_op")/$(ticks_to_s "$d_api")/$(ticks_to_s "$d_etcd")/$(ticks_to_s "$d_s3")"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$wall" "$pickup" "$to_restoring" "$engine_s" "$phase" \
    "$created" "$overwritten" "$skipped" "$failed" "$present" "$idle_rss" "$peak" "$(ticks_to_s "$d_op")" "$(ticks_to_s "$d_api")" \
    "$(ticks_to_s "$d_etcd")" "$(ticks_to_s "$d_s3")" "$load1" "$ok" "$created_ns" \
    "$(awk -v a="$a0" -v b="$a1" 'BEGIN{split(a, x, " "); split(b, y, " "); printf "%d\t%d\t%d\t%d", y[1]-x[1], y[2]-x[2], y[3]-x[3], y[4]-x[4]}')" > "$r_out"
  R_OP_FINAL_RSS=$(proc_field "$R_OP_PID" VmRSS)
  stop_pid "$R_OP_PID"; R_OP_PID=
}

# --- report helpers ----------------------------------------------------------------------

common_facts() {
  CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
  MEM_GIB=$(awk '/^MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)
  GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || GIT_REV="$GIT_REV (with uncommitted changes in src/)"
  BIN_BUILT=$(date -u -r "$BIN" +%Y-%m-%dT%H:%M:%SZ)
  RUSTC=$(rustc --version 2>/dev/null || echo unknown)
  S3_NAME=${S3_VERSION%% *}
  NPROC=$(nproc)
}

machine_md() {
  cat <<MD
### Machine and versions
- Machine: $NPROC CPUs ($CPU_MODEL), $MEM_GIB GiB RAM, Linux $(uname -r). The machine is shared: the 1-minute load average before each run is in the table; above $NPROC, other work competed for the CPUs and the wall times are pessimistic (the CPU-seconds are not affected much).
- kube-apiserver $K8S_VERSION with etcd $ETCD_VER (\`--unsafe-no-fsync\`) and $S3_VERSION ($([ "$S3_MODE" = shared ] && echo "shared with the other test grounds" || echo "fresh, the benchmark's own")${S3_STATE_NOTE:+; $S3_STATE_NOTE}), from \`scripts/testenv.sh\`, on 127.0.0.1 and the same CPUs as the operator.
- Operator: \`target/release/cluster-backup\` built $BIN_BUILT$([ "$BUILD" = 1 ] && echo " by this run" || echo " (\`--no-build\`)"); git HEAD at the time of the benchmark $GIT_REV; $RUSTC.
MD
}

ratio() { # A B -> A/B with 2 decimals, or n/a
  awk -v a="$1" -v b="$2" 'BEGIN{if (a == "n/a" || b == "n/a" || a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b}'
}
pct() { # A B -> A/B in % with 2 decimals, or n/a
  awk -v a="$1" -v b="$2" 'BEGIN{if (a == "n/a" || b == "n/a" || a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", 100 * a / b}'
}
at_most() { # VALUE LIMIT -> met / NOT met / n/a
  awk -v v="$1" -v t="$2" 'BEGIN{if (v == "n/a" || v == "") print "n/a"; else print (v + 0 <= t + 0) ? "met" : "NOT met"}'
}

# Per run: format, wall time, ratio to FLOOR_S, peak RSS, API requests, S3 figures (results.tsv).
requests_table() { # RESULTS_TSV FLOOR_S
  echo "| run | format | trigger → Completed (s) | × LIST floor ($2 s) | peak RSS (MiB) | API requests: total / LIST / POST / other (of which the benchmark's status polls) | S3 PUT requests | S3 PUT bytes | S3 requests, all | reused objects | load before | ok |"
  echo "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"
  awk -F'\t' -v f="$2" '{r = (f + 0 > 0) ? sprintf("%.2f", $2 / f) : "n/a";
    printf "| %s | %s | %s | %s | %.1f | %s / %s / %s / %s (%s) | %s | %s | %s | %s | %s | %s |\n",
    $1, $16, $2, r, $9/1024, $17, $18, $19, $20, $21, $22, $23, $24, $25, $14, $15}' "$1"
}
requests_legend() {
  cat <<MD
**API requests**: the delta of the kube-apiserver's \`apiserver_request_total\` (from \`/metrics\`, admin client certificate) from just before the trigger to just after \`Completed\`, all verbs; *other* includes WATCH, GET, PATCH/APPLY (status writes), the operator's Lease renewals and the benchmark's own status polls (every ${POLL_INTERVAL} s, counted in brackets). **S3**: \`status.lastRun.uploadRequests\` (PUTs, manifest included), \`uploadedBytes\`, \`storageRequests\` (GET, HEAD, LIST, PUT, DELETE) and \`reusedObjects\` as the operator reports them; \`n/a\`: this operator does not report the field. **format**: \`spec.format\` as stored; "objects (format pruned)" means the API server dropped \`format: packed\` (a CRD without the field), so the run wrote one file per object. **× LIST floor**: trigger → Completed divided by the LIST floor measured in the same invocation (paginated LISTs, limit 500, of exactly the objects backed up, JSON-decoded, sequential, one keep-alive connection, \`scripts/bench/kube.py listfloor\`, best of $LIST_FLOOR_RUNS).
MD
}

# Replaces section KEY of BENCHMARKS.md (or appends it); everything else in the file is kept.
write_section() { # KEY REPORT_TEXT
  [ "$WRITE_MD" = 1 ] || return 0
  local key=$1
  printf '%s\n' "$2" > "$WORK/report-$key.md"
  python3 - "$MD" "$WORK/report-$key.md" "$key" <<'PY'
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
  log "wrote section '$key' of $MD"
}

# --- 10k: floors and report --------------------------------------------------------------

report_10k() {
# --- floors: what the API server and the S3 server alone need

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
OBJ_SIZE=$(awk -F'\t' '$1 == "run-1" && $6 > 0 {printf "%d", $7 / $6}' "$RESULTS")
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

col() { awk -F'\t' -v l="$1" -v c="$2" '$1 == l {print $c}' "$RESULTS"; }
MEDIAN_WALL=$(for ((r = 1; r <= RUNS; r++)); do col "run-$r" 2; done | median)
MEDIAN_ENGINE=$(for ((r = 1; r <= RUNS; r++)); do col "run-$r" 4; done | grep -v n/a | median)
MAX_PEAK_KIB=$(awk -F'\t' 'NR > 0 && $9 > m {m = $9} END{print m + 0}' "$RESULTS")
MAX_PEAK_MIB=$(kib_to_mib "$MAX_PEAK_KIB")
met() { awk -v v="$1" -v t="$2" 'BEGIN{print (v != "n/a" && v + 0 < t) ? "met" : "NOT met"}'; }
TIME_MET=$(met "$MEDIAN_WALL" "$TARGET_SECONDS")
RSS_MET=$(met "$MAX_PEAK_MIB" "$TARGET_RSS_MIB")
FLOOR_RATIO=$(ratio "$MEDIAN_WALL" "$FLOOR10K_S")
FLOOR_MET=$(at_most "$FLOOR_RATIO" "$TARGET_FLOOR_RATIO")
RSS_NEW_MET=$(at_most "$MAX_PEAK_MIB" "$TARGET_RSS_NEW_MIB")
ALL_WALL=$(col 'all-namespaces (*)' 2)
FS_WALL=$(col 'filesystem (no S3)' 2)

common_facts
table() {
  echo "| run | trigger → Completed (s) | run in operator (s) | trigger → picked up (s) | objects | stored bytes | RSS idle → peak (MiB) | CPU s: operator / apiserver / etcd / $S3_NAME | CPU s total ÷ $NPROC CPUs | load before | ok |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|"
  awk -F'\t' -v n="$NPROC" '{printf "| %s | %s | %s | %s | %s | %s | %.1f → %.1f | %s / %s / %s / %s | %.1f | %s | %s |\n",
    $1, $2, $4, $3, $6, $7, $8/1024, $9/1024, $10, $11, $12, $13, ($10+$11+$12+$13)/n, $14, $15}' "$RESULTS"
}
MEDIAN_CPU_FLOOR=$(for ((r = 1; r <= RUNS; r++)); do awk -F'\t' -v l="run-$r" -v n="$NPROC" '$1 == l {printf "%.2f\n", ($10+$11+$12+$13)/n}' "$RESULTS"; done | median)
MEDIAN_S3_CPU=$(for ((r = 1; r <= RUNS; r++)); do col "run-$r" 13; done | median)
MEDIAN_OP_CPU=$(for ((r = 1; r <= RUNS; r++)); do col "run-$r" 10; done | median)
STORED_PER_OBJECT=$(awk -F'\t' '$1 == "run-1" && $6 > 0 {printf "%d", $7 / $6}' "$RESULTS")

# The restore part of the report (empty line when --no-restore).
RESTORE_MD="### Restore
Not measured (\`--no-restore\`)."
RESTORE_LINE=
if [ "$RESTORE" = 1 ] && [ -s "$WORK/restore.tsv" ]; then
  IFS=$'\t' read -r R_WALL R_PICKUP R_TO_RESTORING R_ENGINE R_PHASE R_CREATED R_OVERWRITTEN R_SKIPPED R_FAILED R_PRESENT \
    R_IDLE R_PEAK R_CPU_OP R_CPU_API R_CPU_ETCD R_CPU_S3 R_LOAD R_OK R_CREATED_NS R_API_T R_API_L R_API_P R_API_O < "$WORK/restore.tsv"
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

API requests to \`$RESTORE_NAME\` during the restore (\`apiserver_request_total\` delta): $R_API_T (LIST $R_API_L, POST $R_API_P, other $R_API_O).

For comparison, seeding the same $EXPECTED objects into \`$NAME\` (8 concurrent keep-alive POSTs from \`scripts/bench/seed.py\`, the restore's concurrency is 8 too) took $SEED_SECONDS s.
RMD
)
fi

REPORT=$(cat <<MD
<!-- bench:begin $SETUP — generated by scripts/bench.sh --scenario 10k --s3 $S3_MODE; edits up to bench:end are overwritten -->
## $SETUP: $S3_VERSION, $([ "$S3_MODE" = shared ] && echo "the S3 server shared with the other test grounds" || echo "a fresh S3 server of the benchmark's own") — run of $STARTED_AT

**Result: median $MEDIAN_WALL s from trigger to \`Completed\` for $EXPECTED objects (target < $TARGET_SECONDS s: $TIME_MET); peak operator RSS $MAX_PEAK_MIB MiB (target < $TARGET_RSS_MIB MiB: $RSS_MET).** Against the LIST floor measured in the same run ($FLOOR10K_S s): **$FLOOR_RATIO×** (target ≤ $TARGET_FLOOR_RATIO×: $FLOOR_MET); peak RSS target ≤ $TARGET_RSS_NEW_MIB MiB: $RSS_NEW_MET.

$(machine_md)

### What was measured, and how
- Data: $NS_COUNT namespaces × ($CM_PER_NS ConfigMaps + $SECRET_PER_NS Secrets) = $EXPECTED objects with $((SEED_BYTES / EXPECTED)) bytes of \`data\` each on average (ConfigMaps: a properties file and a JSON config; Secrets: username, password, token and a PEM blob), made by \`scripts/bench/gen_objects.py\`; stored as pretty JSON with metadata they are $STORED_PER_OBJECT bytes each. Seeding is not part of any measurement: $SEED_SECONDS s ($SEED_NOTE) with 8 concurrent keep-alive HTTPS POSTs (\`scripts/bench/seed.py\`).
- Each run creates a new one-shot Backup (no \`schedule\`; \`resourceTypes: [configmaps, secrets]\`; the $NS_COUNT namespaces listed explicitly; \`credentialsSecret\`) writing to a new bucket (\`$BUCKET_BASE-LABEL\`; all are deleted only after the last measurement, see the note on deletions below). **trigger → Completed**: wall time from just before the POST that creates the Backup until a GET (curl, every ${POLL_INTERVAL} s) shows \`status.phase: Completed\`; **ok** checks \`lastRun.objects == $EXPECTED\` and \`lastRun.result == Completed\`. **run in operator**: the duration the operator reports in \`lastRun.message\` (start of the run until the manifest is written). **picked up**: when a poll first saw the phase leave \`New\` (includes one poll interval).
- A warm-up Backup (one namespace without ConfigMaps) runs first and warms the operator's connections.
- RSS: \`VmRSS\` before the run, \`VmHWM\` (peak resident set) after it, reset before each run (\`echo 5 > /proc/PID/clear_refs\`) so each peak is that run's. Operator RSS right after start $(kib_to_mib "$OP_START_RSS") MiB; at the end VmRSS $(kib_to_mib "$OP_FINAL_RSS") MiB.
- CPU: user+system seconds that each process used during the run (/proc/PID/stat). **CPU s total ÷ $NPROC CPUs** is the shortest wall time that work could take on an otherwise idle $NPROC-CPU machine.
- \`all-namespaces (*)\`: the same types with \`namespaces: ["*"]\` minus $EXCLUDED, i.e. one cluster-wide paged list per type; expected $EXPECTED_ALL objects.
- \`filesystem (no S3)\`: the explicit Backup to the \`filesystem\` provider (a local directory, offered as the ClusterStorageLocation \`bench-fs\`): the same listing, serialising and hashing, without the S3 server.
- Caveat: this machine's root filesystem is ext4 without a journal. For a few minutes after many files were deleted, creating files costs several times more CPU (perf shows the kernel's \`recently_deleted()\` inode scan on every allocation). That hits s3s-fs (three new files per PUT, in one flat directory) and the \`filesystem\` variant, not SeaweedFS (it appends to volume files). The benchmark therefore deletes its buckets only after the last measurement, but deletions by other work on the machine (or by the previous benchmark's cleanup) within the last ~5 minutes still show up in those CPU columns.$([ "$S3_MODE" = shared ] && echo " On the shared server, the $S3_NAME CPU column also counts requests of other tests running at the same time.")

### Results
$(table)

Median of $RUNS explicit-namespace runs: **$MEDIAN_WALL s** trigger → Completed (operator-reported run $MEDIAN_ENGINE s; CPU-bound minimum $MEDIAN_CPU_FLOOR s, of which $S3_NAME $MEDIAN_S3_CPU CPU s and the operator $MEDIAN_OP_CPU CPU s). \`*\` variant: $ALL_WALL s. Same Backup without S3 (filesystem): $FS_WALL s.

### Requests, and the ratio to the LIST floor
$(requests_table "$RESULTS" "$FLOOR10K_S")

$(requests_legend) LIST floor of these $EXPECTED objects: **$FLOOR10K_S s** (runs: $FLOOR10K_RUNS s; $FLOOR10K_REQ requests; apiserver + etcd $FLOOR10K_CPU CPU s for all $LIST_FLOOR_RUNS runs).

$RESTORE_MD

### Floors: each side alone
| measurement | result |
|---|---:|
| API server: the LIST floor above (Python client, JSON-decoded, best of $LIST_FLOOR_RUNS) | $FLOOR10K_S s |
| API server: the explicit Backup's $((NS_COUNT * 2)) list requests (one per namespace and type, limit 500), curl, sequential, best of 2 | $LIST_NS_S s (apiserver + etcd $LIST_NS_CPU CPU s) |
| API server: the \`*\` Backup's cluster-wide paged lists (limit 500) of configmaps and secrets, curl, best of 2 | $LIST_ALL_S s (apiserver + etcd $LIST_ALL_CPU CPU s) |
| \`kubectl get configmaps,secrets -A\` ($EXPECTED objects, server-side table) | $KUBECTL_GET_S s |
| \`kubectl get configmaps,secrets -A -o json\` | $KUBECTL_JSON_S s |
| $S3_NAME: $EXPECTED PUTs of $OBJ_SIZE bytes, 16 concurrent (Python client, \`scripts/bench/s3tool.py\`; a lower bound) | $PUT16_S s = $PUT16_RATE PUT/s; server $PUT16_CPU CPU ms per PUT |
| $S3_NAME: the same, 32 concurrent (the operator's upload concurrency) | $PUT32_S s = $PUT32_RATE PUT/s; server $PUT32_CPU CPU ms per PUT |

\`shared/notes/testenv-facts.md\` measured s3s-fs 0.14.1 at ≈ 1,750 PUT/s at 16 concurrent requests with \`object_store\` (≈ 5.7 s per 10k objects), SeaweedFS 4.48 at ≈ 1,200–1,340 PUT/s, one request at a time ≈ 730 PUT/s.

Targets: trigger → Completed under $TARGET_SECONDS s: **$TIME_MET** (median $MEDIAN_WALL s); peak RSS under $TARGET_RSS_MIB MiB: **$RSS_MET** ($MAX_PEAK_MIB MiB, the highest peak of all runs). Issue targets: ≤ $TARGET_FLOOR_RATIO× the LIST floor: **$FLOOR_MET** ($FLOOR_RATIO×); peak RSS ≤ $TARGET_RSS_NEW_MIB MiB: **$RSS_NEW_MET**.
<!-- bench:end $SETUP -->
MD
)

write_section "$SETUP" "$REPORT"

echo
echo "=== cluster-backup benchmark ($EXPECTED objects, $(nproc) CPUs, kube-apiserver $K8S_VERSION, $S3_VERSION) ==="
echo "seeding (not measured): $SEED_SECONDS s"
awk -F'\t' '{printf "%-20s %7s s  (run %s s, pickup %s s)  objects %-6s ok=%s  RSS idle %.1f MiB peak %.1f MiB  CPU s op/api/etcd/s3 %s/%s/%s/%s\n",
  $1, $2, $4, $3, $6, $15, $8/1024, $9/1024, $10, $11, $12, $13}' "$RESULTS"
echo "median of $RUNS runs: $MEDIAN_WALL s (target < $TARGET_SECONDS s: $TIME_MET); peak RSS $MAX_PEAK_MIB MiB (target < $TARGET_RSS_MIB MiB: $RSS_MET)"
echo "LIST floor $FLOOR10K_S s: median = ${FLOOR_RATIO}x (target <= ${TARGET_FLOOR_RATIO}x: $FLOOR_MET); peak RSS <= $TARGET_RSS_NEW_MIB MiB: $RSS_NEW_MET"
awk -F'\t' '{printf "%-20s format %s; API requests total/LIST/POST/other %s/%s/%s/%s (%s polls); S3 PUTs %s, PUT bytes %s, all requests %s, reused %s\n",
  $1, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25}' "$RESULTS"
echo "CPU-bound minimum of a run on idle CPUs (median): $MEDIAN_CPU_FLOOR s ($S3_NAME $MEDIAN_S3_CPU CPU s, operator $MEDIAN_OP_CPU CPU s); '*' variant $ALL_WALL s; without S3 $FS_WALL s"
[ -z "$RESTORE_LINE" ] || echo "$RESTORE_LINE"
echo "floors: API lists ${LIST_NS_S} s (per namespace) / ${LIST_ALL_S} s (cluster-wide); kubectl get cm,secret -A ${KUBECTL_GET_S} s; $S3_NAME ${PUT16_RATE} PUT/s @16 (${PUT16_CPU} CPU ms/PUT), ${PUT32_RATE} PUT/s @32"
}


# --- packed scenarios --------------------------------------------------------------------

# Median wall time and highest peak RSS of the measured runs (all but the warm-up) of RESULTS.
runs_median() { awk -F'\t' '$1 != "warmup" {print $2}' "$RESULTS" | median; }
runs_peak_mib() { kib_to_mib "$(awk -F'\t' '$1 != "warmup" && $9 > m {m = $9} END{print m + 0}' "$RESULTS")"; }
# The effective format of the measured runs (one word when all agree).
runs_format() { awk -F'\t' '$1 != "warmup" {print $16}' "$RESULTS" | sort -u | paste -sd, -; }
format_note() { # FORMAT
  case "$1" in
    *pruned*) echo "**Note: this operator does not know \`spec.format\`; the API server pruned \`format: packed\` and every run here wrote one file per object. The figures check the benchmark's plumbing, not the packed format.**" ;;
  esac
}
section_head() { # KEY SCENARIO TITLE
  cat <<MD
<!-- bench:begin $1 — generated by scripts/bench.sh --scenario $2 --s3 $S3_MODE; edits up to bench:end are overwritten -->
## $1: $3 — $S3_VERSION, $([ "$S3_MODE" = shared ] && echo "the S3 server shared with the other test grounds" || echo "a fresh S3 server of the benchmark's own") — run of $STARTED_AT
MD
}
data_10k_md() {
  echo "Data: the 10k data of control plane \`$NAME\` ($NS_COUNT namespaces × ($CM_PER_NS ConfigMaps + $SECRET_PER_NS Secrets) = $EXPECTED objects, \`scripts/bench/gen_objects.py\`; seeding $SEED_SECONDS s, $SEED_NOTE)."
}
data_100k_md() {
  echo "Data: control plane \`$NAME_100K\`, kept between invocations ($NS_COUNT_100K namespaces \`$NS_PREFIX_100K-NN\` × ($CM_PER_NS_100K ConfigMaps + $SECRET_PER_NS_100K Secrets) = $EXPECTED_100K objects, \`scripts/bench/gen_objects.py\`; this invocation: $SEED100K_SECONDS s, $SEED100K_NOTE; remove it with \`scripts/testenv.sh down $NAME_100K\`)."
}
floor_md() { # FLOOR_S RUNS REQUESTS CPU
  echo "LIST floor measured in this invocation: **$1 s** (runs: $2 s; $3 list requests; apiserver + etcd $4 CPU s for all $LIST_FLOOR_RUNS runs; the pages also hold the \`kube-root-ca.crt\` ConfigMap of each namespace, which the operator lists and skips)."
}

scenario_packed10k() {
  RESULTS=$WORK/results-packed10k.tsv; : > "$RESULTS"
  prepare_data10k
  start_operator packed10k
  next_bucket p10k-warmup
  measure warmup bench-p10k-warmup 0 "$SOURCE_WARMUP" "$(s3_storage "$BUCKET")" packed
  for ((r = 1; r <= RUNS; r++)); do
    next_bucket "p10k-run-$r"
    measure "packed-run-$r" "bench-p10k-run-$r" "$EXPECTED" "$SOURCE_EXPLICIT" "$(s3_storage "$BUCKET")" packed
  done
  check_late_duplicates
  stop_operator
  common_facts
  local med peak fmt rat key="packed10k-$SETUP"
  med=$(runs_median); peak=$(runs_peak_mib); fmt=$(runs_format); rat=$(ratio "$med" "$FLOOR10K_S")
  write_section "$key" "$(cat <<MD
$(section_head "$key" packed10k "$EXPECTED objects, \`format: packed\`")

**Result: median $med s from trigger to \`Completed\` over $RUNS runs = $rat× the LIST floor of $FLOOR10K_S s (target ≤ $TARGET_FLOOR_RATIO×: $(at_most "$rat" "$TARGET_FLOOR_RATIO")); peak operator RSS $peak MiB (target ≤ $TARGET_RSS_NEW_MIB MiB: $(at_most "$peak" "$TARGET_RSS_NEW_MIB")). Format of the runs: $fmt.**
$(format_note "$fmt")

$(machine_md)

### What was measured
$(data_10k_md) Each run creates a new one-shot Backup with \`format: packed\` (the $NS_COUNT namespaces listed, \`resourceTypes: [configmaps, secrets]\`) into a new bucket, after a warm-up Backup; timed from just before the POST until a poll (every ${POLL_INTERVAL} s) shows \`Completed\`. Peak RSS: \`VmHWM\`, reset before each run. $(floor_md "$FLOOR10K_S" "$FLOOR10K_RUNS" "$FLOOR10K_REQ" "$FLOOR10K_CPU")

### Results
$(requests_table "$RESULTS" "$FLOOR10K_S")

$(requests_legend)
<!-- bench:end $key -->
MD
)"
  echo
  echo "=== packed10k ($EXPECTED objects; format $fmt) ==="
  echo "median $med s = ${rat}x the LIST floor $FLOOR10K_S s (target <= ${TARGET_FLOOR_RATIO}x: $(at_most "$rat" "$TARGET_FLOOR_RATIO")); peak RSS $peak MiB (target <= $TARGET_RSS_NEW_MIB MiB: $(at_most "$peak" "$TARGET_RSS_NEW_MIB"))"
  print_runs
}

# Packed Backups of the 10k data without and with client-side encryption, interleaved, and the
# restore of the last of each.
scenario_encrypted10k() {
  RESULTS=$WORK/results-encrypted10k.tsv; : > "$RESULTS"
  prepare_data10k
  start_operator encrypted10k
  bench_keys_secret "$BACKUP_NS" "$KUBECTL"
  next_bucket e10k-warmup
  measure warmup bench-e10k-warmup 0 "$SOURCE_WARMUP" "$(s3_storage "$BUCKET" bench-keys)" packed
  local r
  for ((r = 1; r <= RUNS; r++)); do
    next_bucket "e10k-plain-$r"
    measure "plain-run-$r" "bench-e10k-plain-$r" "$EXPECTED" "$SOURCE_EXPLICIT" "$(s3_storage "$BUCKET")" packed
    next_bucket "e10k-encrypted-$r"
    measure "encrypted-run-$r" "bench-e10k-encrypted-$r" "$EXPECTED" "$SOURCE_EXPLICIT" "$(s3_storage "$BUCKET" bench-keys)" packed
  done
  check_late_duplicates
  stop_operator
  common_facts
  local plain enc plain_peak enc_peak plain_cpu enc_cpu backup_pct restore_md='' r_plain='' r_enc='' restore_pct=n/a
  plain=$(awk -F'\t' '$1 ~ /^plain-run/ {print $2}' "$RESULTS" | median)
  enc=$(awk -F'\t' '$1 ~ /^encrypted-run/ {print $2}' "$RESULTS" | median)
  plain_cpu=$(awk -F'\t' '$1 ~ /^plain-run/ {print $10}' "$RESULTS" | median)
  enc_cpu=$(awk -F'\t' '$1 ~ /^encrypted-run/ {print $10}' "$RESULTS" | median)
  plain_peak=$(kib_to_mib "$(awk -F'\t' '$1 ~ /^plain-run/ && $9 > m {m = $9} END{print m + 0}' "$RESULTS")")
  enc_peak=$(kib_to_mib "$(awk -F'\t' '$1 ~ /^encrypted-run/ && $9 > m {m = $9} END{print m + 0}' "$RESULTS")")
  backup_pct=$(awk -v a="$plain" -v b="$enc" 'BEGIN{ if (a > 0) printf "%+.1f", (b - a) * 100 / a; else print "n/a" }')
  if [ "$RESTORE" = 1 ]; then
    RESTORE_KEYS=0 restore_measure "bench-e10k-plain-$RUNS" "$BUCKET_BASE-e10k-plain-$RUNS" "$EXPECTED" "$NS_COUNT" "$WORK/restore-e10k-plain.tsv"
    RESTORE_KEYS=1 restore_measure "bench-e10k-encrypted-$RUNS" "$BUCKET_BASE-e10k-encrypted-$RUNS" "$EXPECTED" "$NS_COUNT" "$WORK/restore-e10k-encrypted.tsv"
    r_plain=$(cut -f1 "$WORK/restore-e10k-plain.tsv"); r_enc=$(cut -f1 "$WORK/restore-e10k-encrypted.tsv")
    restore_pct=$(awk -v a="$r_plain" -v b="$r_enc" 'BEGIN{ if (a > 0) printf "%+.1f", (b - a) * 100 / a; else print "n/a" }')
    restore_md="### Restore into an empty control plane
| restore of | wall (s) | operator CPU s | peak RSS (MiB) | created | ok |
|---|---:|---:|---:|---:|---|
| plain-run-$RUNS | $r_plain | $(cut -f13 "$WORK/restore-e10k-plain.tsv") | $(kib_to_mib "$(cut -f12 "$WORK/restore-e10k-plain.tsv")") | $(cut -f6 "$WORK/restore-e10k-plain.tsv") | $(cut -f18 "$WORK/restore-e10k-plain.tsv") |
| encrypted-run-$RUNS | $r_enc | $(cut -f13 "$WORK/restore-e10k-encrypted.tsv") | $(kib_to_mib "$(cut -f12 "$WORK/restore-e10k-encrypted.tsv")") | $(cut -f6 "$WORK/restore-e10k-encrypted.tsv") | $(cut -f18 "$WORK/restore-e10k-encrypted.tsv") |

One restore each (a restore's wall time varies by several seconds between runs on this shared machine; the operator CPU seconds are steadier)."
  fi
  local key="encrypted10k-$SETUP"
  write_section "$key" "$(cat <<MD
$(section_head "$key" encrypted10k "$EXPECTED objects, \`format: packed\`, without and with client-side encryption")

**Result: backup median $plain s without and $enc s with encryption ($backup_pct %; operator CPU $plain_cpu s → $enc_cpu s; target < +10 %); restore $r_plain s → $r_enc s ($restore_pct %). Peak RSS $plain_peak MiB without, $enc_peak MiB with.**

$(machine_md)

### What was measured
$(data_10k_md) $RUNS one-shot Backups with \`format: packed\` without encryption and $RUNS with \`encryption: {keySecret: bench-keys}\` (XChaCha20-Poly1305), interleaved, each into a new bucket, after a warm-up Backup; timed from the POST until \`Completed\`. Then the last of each is restored into an empty control plane (the encrypted one with the same key in a Secret there).

### Backups
$(requests_table "$RESULTS" "$FLOOR10K_S")

$(requests_legend)

$restore_md
<!-- bench:end $key -->
MD
)"
  echo
  echo "=== encrypted10k ($EXPECTED objects) ==="
  echo "backup median $plain s plain, $enc s encrypted ($backup_pct %); restore $r_plain s plain, $r_enc s encrypted ($restore_pct %)"
  print_runs
}

print_runs() {
  awk -F'\t' '{printf "%-14s %7s s  objects %-6s ok=%s  peak RSS %.1f MiB  format %s; API requests total/LIST/POST/other %s/%s/%s/%s (%s polls); S3 PUTs %s, PUT bytes %s, all requests %s, reused %s\n",
    $1, $2, $6, $15, $9/1024, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25}' "$RESULTS"
}

# One packed Backup run three times: first, unchanged, after 1 % of the objects changed.
scenario_incremental() { # 10k|100k
  local data=$1 key exp src floor floor_runs floor_req floor_cpu prefix count saved_timeout=$RUN_TIMEOUT
  if [ "$data" = 100k ]; then
    key=incremental100k; prepare_data100k; exp=$EXPECTED_100K; src=$SOURCE_100K; RUN_TIMEOUT=$RUN_TIMEOUT_100K
    floor=$FLOOR100K_S floor_runs=$FLOOR100K_RUNS floor_req=$FLOOR100K_REQ floor_cpu=$FLOOR100K_CPU
    prefix=$NS_PREFIX_100K count=$NS_COUNT_100K
  else
    key=incremental; prepare_data10k; exp=$EXPECTED; src=$SOURCE_EXPLICIT
    floor=$FLOOR10K_S floor_runs=$FLOOR10K_RUNS floor_req=$FLOOR10K_REQ floor_cpu=$FLOOR10K_CPU
    prefix=$NS_PREFIX count=$NS_COUNT
  fi
  RESULTS=$WORK/results-$key.tsv; : > "$RESULTS"
  start_operator "$key"
  next_bucket "$key-warmup"
  measure warmup "bench-$key-warmup" 0 "$SOURCE_WARMUP" "$(s3_storage "$BUCKET")" packed
  next_bucket "$key"
  measure first "bench-$key" "$exp" "$src" "$(s3_storage "$BUCKET")" packed
  measure_again unchanged "bench-$key" "$exp" packed
  log "[$key] changing 1 % of the objects: the data of every 100th ConfigMap/Secret (merge patch, 8 concurrent)"
  mapfile -t _ns < <(ns_names "$prefix" "$count")
  local change_out
  change_out=$(python3 "$HERE/kube.py" change "$KUBECONFIG" 100 8 "${_ns[@]}") || die "[$key] patching 1 % of the objects failed"
  log "[$key] $change_out"
  measure_again changed-1% "bench-$key" "$exp" packed
  check_late_duplicates "bench-$key"
  stop_operator
  RUN_TIMEOUT=$saved_timeout
  common_facts
  local f_wall f_req f_bytes u_wall u_req u_bytes c_wall c_req c_bytes fmt
  read -r f_wall f_req f_bytes < <(awk -F'\t' '$1 == "first" {print $2, $22, $23}' "$RESULTS")
  read -r u_wall u_req u_bytes < <(awk -F'\t' '$1 == "unchanged" {print $2, $22, $23}' "$RESULTS")
  read -r c_wall c_req c_bytes < <(awk -F'\t' '$1 == "changed-1%" {print $2, $22, $23}' "$RESULTS")
  fmt=$(runs_format)
  local u_req_pct u_bytes_pct c_req_pct c_bytes_pct u_floor
  u_req_pct=$(pct "$u_req" "$f_req"); u_bytes_pct=$(pct "$u_bytes" "$f_bytes")
  c_req_pct=$(pct "$c_req" "$f_req"); c_bytes_pct=$(pct "$c_bytes" "$f_bytes")
  u_floor=$(ratio "$u_wall" "$floor")
  local peak; peak=$(runs_peak_mib)
  write_section "$key-$SETUP" "$(cat <<MD
$(section_head "$key-$SETUP" "$key" "incremental packed Backup of $exp objects")

**Result: the unchanged re-run uploaded $u_bytes_pct % of the first run's bytes (target ≤ 1 %: $(at_most "$u_bytes_pct" 1)) in $u_req_pct % of its PUT requests (target ≤ 1 %: $(at_most "$u_req_pct" 1)) and took $u_wall s = $u_floor× the LIST floor of $floor s (target ≤ 1×: $(at_most "$u_floor" 1)). After 1 % of the objects changed: $c_bytes_pct % of the bytes, $c_req_pct % of the PUT requests, $c_wall s. First run: $f_wall s. Peak RSS $peak MiB (target ≤ $TARGET_RSS_NEW_MIB MiB: $(at_most "$peak" "$TARGET_RSS_NEW_MIB")). Format of the runs: $fmt.**
$(format_note "$fmt")

$(machine_md)

### What was measured
$([ "$data" = 100k ] && data_100k_md || data_10k_md) One Backup with \`format: packed\` (the $count namespaces listed, \`resourceTypes: [configmaps, secrets]\`) into a new bucket: **first** is its creation (timed from the POST until \`Completed\`); **unchanged** a second run of the same Backup, triggered with a new value of the \`backup.cnd.dk/run-now\` annotation (timed from that PATCH until \`status.lastRun\` is the new, finished run), on the unchanged cluster; **changed-1%** a third run after the data of every 100th ConfigMap/Secret was patched (\`scripts/bench/kube.py change\`: $change_out). A warm-up Backup runs first. The percentages compare \`status.lastRun.uploadedBytes\` and \`uploadRequests\` with those of the first run; \`n/a\` when the operator does not report them. $(floor_md "$floor" "$floor_runs" "$floor_req" "$floor_cpu")

### Results
$(requests_table "$RESULTS" "$floor")

$(requests_legend)
<!-- bench:end $key-$SETUP -->
MD
)"
  echo
  echo "=== $key ($exp objects; format $fmt) ==="
  echo "first $f_wall s; unchanged $u_wall s (${u_floor}x the LIST floor $floor s): PUT bytes $u_bytes_pct %, PUT requests $u_req_pct % of the first; 1 % changed $c_wall s: PUT bytes $c_bytes_pct %, PUT requests $c_req_pct %"
  print_runs
}

# The 100k create floor: the same objects POSTed by seed.py into a fresh, empty control plane
# `bench-create`, once per concurrency. Writes $WORK/create-floor.tsv: concurrency seconds.
create_floor() {
  local c out secs files=()
  mapfile -t files < "$WORK/seed100k-files.txt"
  : > "$WORK/create-floor.tsv"
  local seen=0 g; for g in "${GROUNDS[@]}"; do [ "$g" = "$CREATE_NAME" ] && seen=1; done
  [ "$seen" = 1 ] || GROUNDS+=("$CREATE_NAME")
  for c in ${CREATE_CONCURRENCY//,/ }; do
    "$ROOT/scripts/testenv.sh" down "$CREATE_NAME" >/dev/null 2>&1 || true
    local env_file kc
    env_file=$("$ROOT/scripts/testenv.sh" up "$CREATE_NAME") || die "scripts/testenv.sh up $CREATE_NAME failed"
    # shellcheck disable=SC1090
    kc=$(. "$env_file"; echo "$KUBECONFIG")
    log "[create floor] POSTing the $EXPECTED_100K objects (+ $NS_COUNT_100K namespaces) into an empty '$CREATE_NAME', $c concurrent"
    out=$(python3 "$HERE/seed.py" "$kc" "$c" "${files[@]}") || die "[create floor] seed.py at $c concurrent failed"
    secs=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$out")
    log "[create floor] $c concurrent: $out"
    printf '%s\t%s\n' "$c" "$secs" >> "$WORK/create-floor.tsv"
  done
  "$ROOT/scripts/testenv.sh" down "$CREATE_NAME" >/dev/null 2>&1 || true
}

scenario_100k() {
  local saved_timeout=$RUN_TIMEOUT
  RESULTS=$WORK/results-100k.tsv; : > "$RESULTS"
  prepare_data100k
  RUN_TIMEOUT=$RUN_TIMEOUT_100K
  start_operator 100k
  next_bucket 100k-warmup
  measure warmup bench-100k-warmup 0 "$SOURCE_WARMUP" "$(s3_storage "$BUCKET")" packed
  next_bucket 100k
  measure packed-100k bench-100k-run "$EXPECTED_100K" "$SOURCE_100K" "$(s3_storage "$BUCKET")" packed
  check_late_duplicates
  stop_operator
  common_facts
  local restore_md="### Restore
Not measured (\`--no-restore\`)." r_line='' best_c='' best_s=''
  if [ "$RESTORE" = 1 ]; then
    restore_measure bench-100k-run "$BUCKET_BASE-100k" "$EXPECTED_100K" "$NS_COUNT_100K" "$WORK/restore-100k.tsv" "$RUN_TIMEOUT_100K"
    create_floor
    read -r best_c best_s < <(sort -t$'\t' -k2,2g "$WORK/create-floor.tsv" | head -1)
    local r_wall r_pick r_rest r_eng r_phase r_created r_over r_skip r_failed r_present r_idle r_peak r_cop r_capi r_cetcd r_cs3 r_load r_ok r_cns r_at r_al r_ap r_ao
    # shellcheck disable=SC2034  # r_pick, r_rest, r_load: columns read past
    IFS=$'\t' read -r r_wall r_pick r_rest r_eng r_phase r_created r_over r_skip r_failed r_present r_idle r_peak r_cop r_capi r_cetcd r_cs3 r_load r_ok r_cns r_at r_al r_ap r_ao < "$WORK/restore-100k.tsv"
    local r_ratio; r_ratio=$(ratio "$r_wall" "$best_s")
    r_line="restore $r_phase in $r_wall s = ${r_ratio}x the create floor $best_s s (best of $CREATE_CONCURRENCY: $best_c concurrent; target <= ${TARGET_RESTORE_RATIO}x: $(at_most "$r_ratio" "$TARGET_RESTORE_RATIO")); peak RSS $(kib_to_mib "$r_peak") MiB; API requests $r_at (LIST $r_al, POST $r_ap, other $r_ao); ok=$r_ok"
    restore_md="### Restore into an empty control plane
**Restore: $r_wall s = $r_ratio× the create floor of $best_s s (target ≤ $TARGET_RESTORE_RATIO×: $(at_most "$r_ratio" "$TARGET_RESTORE_RATIO")); peak restore-operator RSS $(kib_to_mib "$r_peak") MiB (target ≤ $TARGET_RSS_NEW_MIB MiB: $(at_most "$(kib_to_mib "$r_peak")" "$TARGET_RSS_NEW_MIB")).** The packed backup (\`$RESTORE_SOURCE_BUCKET\`, \`$RESTORE_SOURCE_PATH\`) restored into a second, empty control plane (\`$RESTORE_NAME\`) by a second operator process: one Restore with \`createNamespaces: true\`, timed from its POST until \`Completed\`; **ok** checks \`created\` = $EXPECTED_100K objects + $NS_COUNT_100K namespaces, 0 failed, all seeded objects present afterwards.

| restore | trigger → Completed (s) | run in operator (s) | created / overwritten / skipped / failed | objects present after | × create floor | RSS idle → peak (MiB) | CPU s: operator / apiserver / etcd / $S3_NAME | API requests: total / LIST / POST / other | ok |
|---|---:|---:|---|---:|---:|---:|---|---|---|
| $EXPECTED_100K objects | $r_wall | $r_eng | $r_created ($r_cns namespaces) / $r_over / $r_skip / $r_failed | $r_present | $r_ratio | $(kib_to_mib "$r_idle") → $(kib_to_mib "$r_peak") | $r_cop / $r_capi / $r_cetcd / $r_cs3 | $r_at / $r_al / $r_ap / $r_ao | $r_ok |

Create floor: the same $EXPECTED_100K objects (and their $NS_COUNT_100K namespaces, created first, one at a time) POSTed by \`scripts/bench/seed.py\` (keep-alive HTTPS connections, one per worker; the time includes reading the object files) into a fresh, empty control plane \`$CREATE_NAME\` each time:

| concurrent POSTs | seconds | objects/s |
|---:|---:|---:|
$(awk -F'\t' -v n="$EXPECTED_100K" '{printf "| %s | %s | %d |\n", $1, $2, ($2 > 0) ? n / $2 : 0}' "$WORK/create-floor.tsv")

Best: $best_c concurrent, **$best_s s**."
  fi
  RUN_TIMEOUT=$saved_timeout
  local med peak fmt rat key="100k-$SETUP"
  med=$(runs_median); peak=$(runs_peak_mib); fmt=$(runs_format); rat=$(ratio "$med" "$FLOOR100K_S")
  write_section "$key" "$(cat <<MD
$(section_head "$key" 100k "$EXPECTED_100K objects, \`format: packed\`, backup and restore")

**Result: backup $med s from trigger to \`Completed\` = $rat× the LIST floor of $FLOOR100K_S s (target ≤ $TARGET_FLOOR_RATIO×: $(at_most "$rat" "$TARGET_FLOOR_RATIO")); peak operator RSS $peak MiB (target ≤ $TARGET_RSS_NEW_MIB MiB: $(at_most "$peak" "$TARGET_RSS_NEW_MIB")). Format: $fmt.**
$(format_note "$fmt")

$(machine_md)

### What was measured
$(data_100k_md) One one-shot Backup with \`format: packed\` (the $NS_COUNT_100K namespaces listed, \`resourceTypes: [configmaps, secrets]\`) into a new bucket after a warm-up Backup, timed from the POST until \`Completed\`. $(floor_md "$FLOOR100K_S" "$FLOOR100K_RUNS" "$FLOOR100K_REQ" "$FLOOR100K_CPU")

### Backup
$(requests_table "$RESULTS" "$FLOOR100K_S")

$(requests_legend)

$restore_md
<!-- bench:end $key -->
MD
)"
  echo
  echo "=== 100k ($EXPECTED_100K objects; format $fmt) ==="
  echo "backup $med s = ${rat}x the LIST floor $FLOOR100K_S s (target <= ${TARGET_FLOOR_RATIO}x: $(at_most "$rat" "$TARGET_FLOOR_RATIO")); peak RSS $peak MiB (target <= $TARGET_RSS_NEW_MIB MiB: $(at_most "$peak" "$TARGET_RSS_NEW_MIB"))"
  print_runs
  [ -z "$r_line" ] || echo "$r_line"
}

# --- main ----------------------------------------------------------------------------------

log "scenarios: ${SCENARIOS[*]}"
for scenario in "${SCENARIOS[@]}"; do
  log "=== scenario $scenario ==="
  case "$scenario" in
    10k) backups_10k ;;
    packed10k) scenario_packed10k ;;
    incremental) scenario_incremental 10k ;;
    incremental100k) scenario_incremental 100k ;;
    100k) scenario_100k ;;
    encrypted10k) scenario_encrypted10k ;;
  esac
done
if [ "$ERRORS" -gt 0 ]; then
  log "$ERRORS run(s) did not produce the expected backup; see above"
  exit 1
fi
