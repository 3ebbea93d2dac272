#!/usr/bin/env bash
# The test command: installs the real CA tools when missing, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-deps.sh
cargo test --locked
