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
# ansible-core goes into python3 when that has pip and may install (pyenv, a virtualenv: its bin is
# on PATH); Debian's own python3 has no pip and refuses one (PEP 668), so there it goes into a
# virtualenv, linked from /usr/local/bin.
if ! command -v ansible-playbook >/dev/null; then
  echo "installing ansible-core from PyPI" >&2
  if python3 -m pip --version >/dev/null 2>&1 && python3 -c 'import os, sys, sysconfig
sys.exit(sys.prefix == sys.base_prefix and
         os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
    python3 -m pip install --quiet ansible-core
    if command -v pyenv >/dev/null; then pyenv rehash; fi
  else
    if ! python3 -c 'import ensurepip' 2>/dev/null; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq python3-venv >/dev/null
    fi
    python3 -m venv /opt/nodecert-ansible
    /opt/nodecert-ansible/bin/pip install --quiet ansible-core
    ln -sf /opt/nodecert-ansible/bin/ansible-playbook /usr/local/bin/ansible-playbook
  fi
fi
command -v ansible-playbook >/dev/null || {
  echo "ansible-playbook is not on PATH after installing ansible-core: add the bin directory of the python3 it went into" >&2
  exit 1
}
command -v cargo >/dev/null || {
  echo "cargo is missing: install a Rust toolchain (1.89 or newer) with rustup first" >&2
  exit 1
}
