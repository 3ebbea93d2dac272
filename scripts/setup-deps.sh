#!/usr/bin/env bash
# Installs what nodecert's demo and tests need, when missing: from Debian, golang-cfssl
# (cfssl, cfssljson, multirootca: the real CA), openssl (independent checks) and systemd
# (systemd-analyze verifies the shipped units), gdb (dumps a run's memory to show secrets are
# wiped), tinyproxy, procps and GNU time (peak RSS in the benchmark, which the tests smoke-run);
# from PyPI, ansible-core and Salt (the shipped playbook and state are run by the tests).
# `setup-deps.sh demo` installs only what the demo needs (golang-cfssl, openssl). Needs root.
set -euo pipefail
demo=0
[ "${1:-}" = demo ] && demo=1

missing=()
command -v multirootca >/dev/null || missing+=(golang-cfssl)
command -v openssl >/dev/null || missing+=(openssl)
[ "$demo" = 1 ] || command -v systemd-analyze >/dev/null || missing+=(systemd)
[ "$demo" = 1 ] || command -v tinyproxy >/dev/null || missing+=(tinyproxy-bin)
[ "$demo" = 1 ] || command -v pgrep >/dev/null || missing+=(procps)
[ "$demo" = 1 ] || command -v gdb >/dev/null || missing+=(gdb)
[ "$demo" = 1 ] || [ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# pip_tool COMMAND PACKAGE SPEC: when COMMAND is missing, installs SPEC from PyPI into a virtualenv
# of its own (/opt/nodecert-PACKAGE) and links COMMAND into /usr/local/bin. A virtualenv each:
# Debian's python3 refuses pip installs into itself (PEP 668), and ansible-core and Salt pin
# different ranges of the libraries they share.
pip_tool() {
  local command=$1 package=$2 spec=$3
  command -v "$command" >/dev/null && return 0
  echo "installing $spec from PyPI" >&2
  python3 -m venv "/opt/nodecert-$package"
  "/opt/nodecert-$package/bin/pip" install --quiet "$spec"
  ln -sf "/opt/nodecert-$package/bin/$command" "/usr/local/bin/$command"
  command -v "$command" >/dev/null || {
    echo "$command is not on PATH after installing $spec: add /usr/local/bin to PATH" >&2
    exit 1
  }
}
# The shipped Ansible playbook and Salt state are run by the tests (tests/it/deploy.rs). The two
# installs run side by side (each is mostly waiting on downloads); venv support is made sure of
# first, since two apt-get runs cannot share the dpkg lock.
if [ "$demo" = 0 ]; then
  if ! python3 -c 'import ensurepip' 2>/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-venv >/dev/null
  fi
  pip_tool ansible-playbook ansible-core 'ansible-core>=2.16,<2.20' &
  ansible=$!
  pip_tool salt-call salt 'salt>=3007,<3009' &
  salt=$!
  wait "$ansible"
  wait "$salt"
fi
command -v cargo >/dev/null || {
  echo "cargo is missing: install a Rust toolchain (1.89 or newer) with rustup first" >&2
  exit 1
}
