#!/usr/bin/env bash
# The main job, end to end, on a fresh machine:
#   local control plane + S3 server  →  CRDs  →  the operator  →  sample resources  →
#   the design document's sample Backup  →  its status and the object keys it wrote.
#
#   scripts/demo.sh          run it (leaves everything running so you can look around)
#   scripts/demo.sh down     stop the operator and the local test ground
#
# The sample's endpoint (the document's Docker address 172.17.0.3) is rewritten to the local
# S3 server before anything sees it; nothing here connects outside 127.0.0.1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
NAME=demo
STATE=$ROOT/.testenv/$NAME
log() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

stop_operator() {
  if [ -f "$STATE/operator.pid" ]; then
    kill "$(cat "$STATE/operator.pid")" 2>/dev/null || true
    rm -f "$STATE/operator.pid"
  fi
}

if [ "${1:-}" = "down" ]; then
  stop_operator
  scripts/testenv.sh down "$NAME"
  exit 0
fi

log "1/6 local control plane (etcd + kube-apiserver + kube-controller-manager) and S3 server"
scripts/testenv.sh up "$NAME"
# shellcheck disable=SC1091
source "$STATE/env"
kc() { "$KUBECTL" "$@"; }

log "2/6 build the operator and install the CRDs"
cargo build --quiet --bin cluster-backup
BIN=$ROOT/target/debug/cluster-backup
"$BIN" install

log "3/6 start the operator (log: $STATE/operator.log)"
stop_operator
nohup "$BIN" run --metrics-bind-address 127.0.0.1:0 >"$STATE/operator.log" 2>&1 &
echo $! >"$STATE/operator.pid"

log "4/6 sample resources (the design document's walkthrough)"
kc create namespace test-backup --dry-run=client -o yaml | kc apply -f -
kc -n test-backup create deployment nginx --image=nginx --dry-run=client -o yaml | kc apply -f -
kc -n test-backup create configmap test-config --from-literal=key=value --dry-run=client -o yaml | kc apply -f -
kc -n test-backup create secret generic test-secret --from-literal=password=secret123 --dry-run=client -o yaml | kc apply -f -
kc -n test-backup create service clusterip nginx --tcp=80:80 --dry-run=client -o yaml | kc apply -f -
kc -n test-backup get all,configmaps,secrets

log "5/6 the sample Backup (config/samples/backup_v1_test_namespace_backup.yaml)"
# Its keys live in a Secret, as the sample's credentialsSecret expects.
kc -n default create secret generic minio-credentials \
  --from-literal=accessKey="$S3_ACCESS_KEY" --from-literal=secretKey="$S3_SECRET_KEY" \
  --dry-run=client -o yaml | kc apply -f -
sed "s#endpoint: .*#endpoint: \"$S3_ENDPOINT\"#" config/samples/backup_v1_test_namespace_backup.yaml | kc apply -f -
# The sample runs every 5 minutes; ask for a run now instead of waiting.
kc -n default annotate backup test-namespace-backup --overwrite "backup.cnd.dk/run-now=demo-$(date +%s)"

printf 'waiting for the run to finish'
for _ in $(seq 1 120); do
  result=$(kc -n default get backup test-namespace-backup -o jsonpath='{.status.lastRun.result}' 2>/dev/null || true)
  [ -n "$result" ] && break
  printf '.'; sleep 1
done
echo " $result"

log "6/6 status and what was stored"
kc -n default get backups -o wide
"$BIN" describe test-namespace-backup -n default
echo
echo "Operator log: $STATE/operator.log   Stop everything: scripts/demo.sh down"
[ "$result" = "Completed" ]
