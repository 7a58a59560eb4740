#!/usr/bin/env bash
# Builds the havoc-core fuzz targets and runs each for a while, one after the other.
#
#   bash crates/havoc-core/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 30; targets default to all of them. Needs the nightly
# toolchain; installs cargo-fuzz when it is missing. New corpus entries go to a scratch
# directory (the committed corpus under corpus/<target> is only read); crash inputs land in
# artifacts/<target>/ (git-ignored). Exits non-zero when any target crashed, timed out or
# failed to build, after running all of them. Environment: FUZZ_TIMEOUT (seconds one input
# may take, default 25), FUZZ_ARGS (extra libFuzzer flags).
set -euo pipefail

seconds="${1:-30}"
shift || true
fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
all_targets=(sql_normalize config_compile matcher_decide token_bucket)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
  exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# The same flags for build and run, so that `run` does not rebuild: no sanitizer (the code
# under test is safe Rust; sanitizers would only slow it down), debug assertions and
# overflow checks on.
build_flags=(+nightly fuzz build --fuzz-dir "$fuzz_dir" --sanitizer none --debug-assertions)
run_flags=(+nightly fuzz run --fuzz-dir "$fuzz_dir" --sanitizer none --debug-assertions)

start=$SECONDS
echo "== building ${targets[*]}"
for target in "${targets[@]}"; do
  cargo "${build_flags[@]}" "$target"
done
echo "== built in $((SECONDS - start)) s"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/havoc-fuzz.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

failed=()
summary=()
for target in "${targets[@]}"; do
  dict=()
  case "$target" in
    sql_normalize) dict=("-dict=$fuzz_dir/dicts/sql.dict") ;;
    config_compile) dict=("-dict=$fuzz_dir/dicts/config.dict") ;;
  esac
  mkdir -p "$scratch/$target" "$fuzz_dir/artifacts/$target" "$fuzz_dir/corpus/$target"
  log="$scratch/$target.log"
  echo "== $target for ${seconds} s"
  status=0
  # The scratch corpus comes first: libFuzzer writes new entries into the first directory.
  # ${FUZZ_ARGS-} is split on purpose, so that it may hold several flags.
  # shellcheck disable=SC2086
  cargo "${run_flags[@]}" "$target" "$scratch/$target" "$fuzz_dir/corpus/$target" -- \
    -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-25}" -print_final_stats=1 \
    -artifact_prefix="$fuzz_dir/artifacts/$target/" "${dict[@]}" ${FUZZ_ARGS-} >"$log" 2>&1 || status=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
  line="$target: ${execs:-?} executions (${rate:-?} exec/s) in ${seconds} s"
  if [ "$status" -ne 0 ]; then
    line="$line — FAILED (exit $status)"
    failed+=("$target")
    echo "---- last lines of the $target log:"
    tail -n 60 "$log"
    echo "---- crash inputs: $(ls "$fuzz_dir/artifacts/$target" 2>/dev/null | tr '\n' ' ')"
    echo "---- reproduce: cargo +nightly fuzz run -s none $target $fuzz_dir/artifacts/$target/<file>"
  fi
  echo "$line"
  summary+=("$line")
done

echo "== summary ($((SECONDS - start)) s including the build)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "== FAILED: ${failed[*]}"
  exit 1
fi
