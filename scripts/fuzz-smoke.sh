#!/usr/bin/env bash
# Fuzz smoke run: builds the cargo-fuzz targets in fuzz/, replays every saved reproducer in
# fuzz/regressions/, then fuzzes each target for a short time from the committed seed corpus.
# Exits non-zero when a target crashes (panic, sanitizer report, timeout or OOM); the input that
# did it is left in fuzz/artifacts/TARGET/.
#
#   FUZZ_SECONDS=20   seconds of fuzzing per target
#   FUZZ_TARGETS="…"  which targets (default: all three)
#
# cargo-fuzz passes nightly-only flags (-Zsanitizer=address, sanitizer coverage) to rustc; the
# stable compiler accepts them with RUSTC_BOOTSTRAP=1, which is set here and nowhere else.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_PER_TARGET=${FUZZ_SECONDS:-20}
TARGETS=${FUZZ_TARGETS:-"csr_json request_profile server_reply"}
export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked --version 0.13.2
fi

echo "== building the fuzz targets"
cargo fuzz build

# The cause (panic message or sanitizer/libFuzzer error), then where the input went.
show_failure() {
  grep -m 1 -A 6 -E "panicked at|ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)" "$1" || true
  echo "   ..."
  grep -E "Test unit written to|^Reproduce with|cargo fuzz run .*artifacts/" "$1" || tail -n 20 "$1"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for target in $TARGETS; do
  if [ -d "regressions/$target" ] && [ -n "$(ls -A "regressions/$target")" ]; then
    echo "== $target: replaying regressions/$target"
    if ! cargo fuzz run "$target" "regressions/$target" -- -runs=0 >"$work/$target.replay.log" 2>&1; then
      show_failure "$work/$target.replay.log"
      failed+=("$target (regression)")
      continue
    fi
  fi
  echo "== $target: fuzzing for ${SECONDS_PER_TARGET}s"
  mkdir -p "$work/corpus-$target"
  # New inputs go to the throw-away first directory; corpus/$target (the seeds) is only read.
  if cargo fuzz run "$target" "$work/corpus-$target" "corpus/$target" -- \
    -dict="dict/$target.dict" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 >"$work/$target.log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$work/$target.log" |
      sed "s/^/   /"
  else
    show_failure "$work/$target.log"
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz smoke: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)"
  exit 1
fi
echo "fuzz smoke: ok (${TARGETS// /, })"
