#!/usr/bin/env bash
# The long fault-injection run: tests/faults.rs with more objects and more random kills,
# against the real test ground (its own `faults` control plane + the shared S3 server), and
# its figures written to FAULTS.md.
#
#   scripts/faults.sh                 30 random kills, 3,000 objects per backup
#   FAULTS_RANDOM_KILLS=N FAULTS_OBJECTS=M FAULTS_SEED=S scripts/faults.sh
#
# `scripts/test.sh` runs the short version (3 random kills, 600 objects) in CI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export FAULTS_RANDOM_KILLS=${FAULTS_RANDOM_KILLS:-30}
export FAULTS_OBJECTS=${FAULTS_OBJECTS:-3000}
report=$(mktemp "${TMPDIR:-/tmp}/faults-report.XXXXXX.json")

started=()
cleanup() {
  local name
  for name in "${started[@]}"; do scripts/testenv.sh down "$name" || true; done
  rm -f "$report"
}
trap cleanup EXIT
if ! scripts/testenv.sh env faults >/dev/null 2>&1; then
  scripts/testenv.sh up faults
  started+=(faults)
fi

t0=$SECONDS
status=0
FAULTS_REPORT=$report cargo test --test faults -- --nocapture || status=$?
seconds=$((SECONDS - t0))

python3 - "$report" "$seconds" "$status" <<'PY' > FAULTS.md
import json, sys, datetime, platform, os
path, seconds, status = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
try:
    f = json.load(open(path))
except Exception:
    f = None
print("# Fault-injection figures\n")
print("Written by `scripts/faults.sh` (the long run of `tests/faults.rs`) on",
      datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
      f"({os.cpu_count()} CPUs, {platform.machine()}), in {seconds} s; exit status {status}.")
print("Real processes on 127.0.0.1: `cluster-backup run` killed with SIGKILL or aborted at a crash point,")
print("kube-apiserver v1.36 + etcd + kube-controller-manager, SeaweedFS S3. Targets: 0 corrupt-but-complete,")
print("0 duplicate runs, 0 stuck, pick-up <= 5 s after the API server answers again.\n")
if f is None:
    print("The run wrote no figures (it failed before the end; see its output).")
    sys.exit(0)
p = f["pickup_seconds"]
rows = [
    ("objects per backup", f["objects_per_backup"]),
    ("random-kill seed", f["seed"]),
    ("backup runs checked (every stored byte verified)", f["backup_runs_checked"]),
    ("restores checked (target compared with source)", f["restores_checked"]),
    ("operator kills (crash points + random SIGKILL)", f["operator_kills"]),
    ("API server kills", f["api_server_kills"]),
    ("S3 outages", f["s3_outages"]),
    ("runs adopted after a crash (manifest found, not run twice)", f["adopted_after_crash"]),
    ("runs given up at the retry bound (interrupted more often than --run-retries)", f.get("given_up_at_retry_bound", 0)),
    ("**corrupt-but-complete**", f["corrupt_but_complete"]),
    ("**duplicate runs**", f["duplicates"]),
    ("**stuck**", f["stuck"]),
    ("**pick-up after API restart (s)**", (", ".join(f"{x:.2f}" for x in p) + (" (target met)" if max(p) <= 5 else " (**target of 5 s missed**)")) if p else "-"),
]
print("| | |\n|---|---:|")
for k, v in rows:
    print(f"| {k} | {v} |")
if f["problems"]:
    print("\n## Problems\n")
    for x in f["problems"]:
        print(f"- {x}")
PY
cat FAULTS.md
exit "$status"
