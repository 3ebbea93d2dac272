#!/usr/bin/env bash
# The test command (README, and all that .ci/run does): installs what the tests need when it is
# missing, checks formatting and lints, runs every test (unit and integration, against a real
# multirootca), then a short fuzz smoke run of each cargo-fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-deps.sh
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
FUZZ_SECONDS=${FUZZ_SECONDS:-15} CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2} scripts/fuzz-smoke.sh
