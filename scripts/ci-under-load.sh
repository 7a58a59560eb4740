#!/usr/bin/env bash
# Runs `.ci/run` on a clean clone of this repository's HEAD, RUNS times (default 3), each with
# `stress-ng --cpu 2` beside it: what a busy 2-core CI machine looks like. A test that fails here
# depends on timing. Prints one line per run and exits non-zero if any run failed.
#
#   scripts/ci-under-load.sh [RUNS]
#   HAVOC_LOAD_CPUS=2        stress-ng workers (default: 2)
#   HAVOC_CI_TARGET_DIR=dir  share one cargo target dir across runs (default: none, as CI)
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
cpus=${HAVOC_LOAD_CPUS:-2}
repo=$(pwd)
work=$(mktemp -d /tmp/havoc-ci-load.XXXXXX)
command -v stress-ng >/dev/null || { echo "stress-ng is missing (apt-get install stress-ng)"; exit 1; }

failed=0
for run in $(seq 1 "$runs"); do
  clone="$work/run-$run"
  git clone -q "$repo" "$clone"
  stress-ng --cpu "$cpus" --timeout 90m --quiet &
  stress=$!
  started=$(date +%s)
  (
    cd "$clone" || exit 1
    if [ -n "${HAVOC_CI_TARGET_DIR:-}" ]; then export CARGO_TARGET_DIR=$HAVOC_CI_TARGET_DIR; fi
    CI=true bash .ci/run </dev/null >"$work/run-$run.log" 2>&1
  )
  status=$?
  kill "$stress" 2>/dev/null; wait "$stress" 2>/dev/null
  totals=$(grep -E '^ava: [0-9]+ passed' "$work/run-$run.log" | tail -1)
  cargo=$(grep -Eo 'test result: ok\. [0-9]+ passed' "$work/run-$run.log" | grep -Eo '[0-9]+' | awk '{ n += $1 } END { print n + 0 }')
  echo "run $run: exit $status in $(( $(date +%s) - started )) s; cargo $cargo passed; ${totals:-no ava totals}; log $work/run-$run.log"
  [ "$status" -eq 0 ] || failed=$((failed + 1))
  rm -rf "$clone"
done
echo "$((runs - failed)) of $runs runs under stress-ng --cpu $cpus passed"
[ "$failed" -eq 0 ]
