#!/usr/bin/env bash
# Installs what nodecert's demo and tests need, when missing: from Debian, golang-cfssl
# (cfssl, cfssljson, multirootca: the real CA) and openssl (independent checks); from PyPI,
# ansible-core (the shipped playbook is run by the tests). Needs root.
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
if ! python3 -c 'import ansible' 2>/dev/null; then
  echo "installing ansible-core from PyPI" >&2
  python3 -m pip install --quiet ansible-core
fi
command -v ansible-playbook >/dev/null || {
  echo "ansible-playbook is not on PATH after installing ansible-core: add $(python3 -m site --user-base)/bin or the interpreter's bin directory" >&2
  exit 1
}
command -v cargo >/dev/null || {
  echo "cargo is missing: install a Rust toolchain (1.89 or newer) with rustup first" >&2
  exit 1
}
