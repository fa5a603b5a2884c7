#!/usr/bin/env bash
# The whole test suite, against a REAL kube-apiserver + etcd and a REAL S3 server:
#   1. builds (first time only) and starts the local test ground (scripts/testenv.sh up),
#   2. builds (first time only) helm and promtool (scripts/tools.sh),
#   3. runs every unit and integration test (cargo test),
#   4. stops the test ground again if this script started it.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh --test backup_scope`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

started=()
cleanup() {
  local name
  for name in "${started[@]}"; do scripts/testenv.sh down "$name" || true; done
}
trap cleanup EXIT

# `default` hosts most tests; `second` is an independent control plane (same S3 server) for
# cross-cluster tests; `faults` is the one the fault-injection suite (tests/faults.rs) kills
# and restarts.
GROUNDS="default second faults"
for name in $GROUNDS; do
  if ! scripts/testenv.sh env "$name" >/dev/null 2>&1; then
    scripts/testenv.sh up "$name"
    started+=("$name")
  fi
done

# helm and promtool for tests/chart.rs and tests/alerts.rs (built once, then cached).
scripts/tools.sh build

# Show what the tests talk to: real servers, not mocks.
for name in $GROUNDS; do
  # shellcheck disable=SC1090
  ( source "$(scripts/testenv.sh env "$name")"
    echo "== test ground '$name': kube-apiserver $("$KUBECTL" version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])') at $("$KUBECTL" config view -o jsonpath='{.clusters[0].cluster.server}'), S3 at $S3_ENDPOINT" )
done

# Integration tests share two API servers and one S3 server; a few threads keep the 2-core
# machine responsive without making tests wait on each other.
export RUST_TEST_THREADS=${RUST_TEST_THREADS:-4}
if [ $# -eq 0 ]; then
  # Print the API server's /version from inside the test suite too.
  cargo test --test api_server server_version -- --nocapture
fi
cargo test --all-targets "$@"
