#!/usr/bin/env bash
# Installs what nodecert's demo and tests need from Debian, when missing: golang-cfssl
# (cfssl, cfssljson, multirootca: the real CA) and openssl (independent checks). Needs root.
set -euo pipefail

missing=()
command -v multirootca >/dev/null || missing+=(golang-cfssl)
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || {
  echo "cargo is missing: install a Rust toolchain (1.85 or newer) with rustup first" >&2
  exit 1
}
