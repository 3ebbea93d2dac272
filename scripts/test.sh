#!/usr/bin/env bash
# The test command (README, "Set-up: two commands"; .ci/run runs it): installs what the tests
# need when it is missing, checks formatting and lints, runs every test (unit and integration,
# against a real multirootca), then a short fuzz smoke run of each cargo-fuzz target. Each step
# is announced on stderr, so a CI log shows where it is.
set -euo pipefail
cd "$(dirname "$0")/.."
step() {
  echo "== $*" >&2
  "$@"
}
step scripts/setup-deps.sh
step cargo fmt --check
step cargo clippy --all-targets --locked -- -D warnings
step cargo test --locked
step env FUZZ_SECONDS="${FUZZ_SECONDS:-15}" CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" scripts/fuzz-smoke.sh
