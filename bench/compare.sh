#!/usr/bin/env bash
# Side-by-side benchmark: nodecert against the pipeline it replaces,
#
#   cfssl gencert -config rp-cfssl.json -tls-remote-ca ca.pem csr.json | cfssljson -bare Y
#   nodecert gencert -config rp.json -tls-remote-ca ca.pem -bare X csr.json
#
# both talking to ONE real multirootca over TLS on 127.0.0.1, for ecdsa-256, ecdsa-384,
# rsa-2048 and rsa-4096 keys, plus `nodecert sync` over 8 specs against 8 pipelines run one
# after another. The two tools are interleaved round by round (which goes first alternates),
# so drift in machine load hits both alike. bench/harness.py times each command, then runs it
# again under GNU time for its peak RSS (see bench/README.md for what each column means).
#
#   RUNS=30 bench/compare.sh        # runs per row (default 30; use at least 30 for the RSA rows)
#   COLD_RUNS=50                    # runs of `nodecert --version` / `cfssl version`
#   KEEP=1                          # keep the temporary directory
#   NODECERT=… FLOOR=…              # other builds than target/release (the tests smoke-run the debug ones)
#
# Builds nothing: run `cargo build --release --locked --bin nodecert --example floor` first
# (examples/floor.rs measures the floor of each row from inside a process). Everything else lives in a
# mktemp directory; the CA is stopped by its PID on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NODECERT=${NODECERT:-$ROOT/target/release/nodecert}
FLOOR=${FLOOR:-$ROOT/target/release/examples/floor}
RUNS=${RUNS:-30}
COLD_RUNS=${COLD_RUNS:-50}

for bin in "$NODECERT" "$FLOOR"; do
  if [ ! -x "$bin" ]; then
    echo "missing $bin: run \`cargo build --release --locked --bin nodecert --example floor\` first" >&2
    exit 2
  fi
done
if ! [[ $RUNS =~ ^[1-9][0-9]*$ && $COLD_RUNS =~ ^[1-9][0-9]*$ ]]; then
  echo "RUNS and COLD_RUNS must be positive integers" >&2
  exit 2
fi
for bin in cfssl cfssljson multirootca python3 openssl; do
  command -v "$bin" >/dev/null || {
    echo "missing $bin: scripts/setup-deps.sh installs golang-cfssl and openssl" >&2
    exit 2
  }
done
if [ ! -x /usr/bin/time ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's time (GNU time, for peak RSS per process)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
  else
    echo "missing /usr/bin/time: apt-get install time" >&2
    exit 2
  fi
fi

WORK=$(mktemp -d)
CA_PID=
cleanup() {
  if [ -n "$CA_PID" ]; then
    kill "$CA_PID" 2>/dev/null || true
    wait "$CA_PID" 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
cd "$WORK"
mkdir out sync sync-csr

# ------------------------------------------------------------------ a throw-away CA (cfssl)
echo '{"CN":"bench root","key":{"algo":"ecdsa","size":256},"names":[{"O":"nodecert bench"}],"ca":{"expiry":"87600h"}}' > ca-csr.json
cfssl gencert -initca ca-csr.json 2>/dev/null | cfssljson -bare ca
AUTH_KEY=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
# As in shared/tools/cfssl-e2e.sh: signing.default with an auth_key and no "profiles" section.
cat > ca-config.json <<JSON
{"signing":{"default":{"expiry":"8760h","auth_key":"primary",
   "usages":["signing","key encipherment","server auth","client auth"]}},
 "auth_keys":{"primary":{"type":"standard","key":"$AUTH_KEY"}}}
JSON
echo '{"CN":"multirootca","hosts":["127.0.0.1","localhost"],"key":{"algo":"ecdsa","size":256}}' > server-csr.json
cfssl gencert -ca ca.pem -ca-key ca-key.pem -config ca-config.json server-csr.json 2>/dev/null \
  | cfssljson -bare server
printf '[ default ]\nprivate = file://%s/ca-key.pem\ncertificate = %s/ca.pem\nconfig = %s/ca-config.json\n' \
  "$WORK" "$WORK" "$WORK" > roots.conf

# ------------------------------------------------------------------ one multirootca over TLS
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
multirootca -a "127.0.0.1:$PORT" -roots roots.conf -l default \
  -tls-cert server.pem -tls-key server-key.pem > multirootca.log 2>&1 &
CA_PID=$!
up=0
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then up=1; break; fi
  sleep 0.1
done
if [ "$up" != 1 ]; then
  echo "multirootca never listened on 127.0.0.1:$PORT:" >&2
  cat multirootca.log >&2
  exit 1
fi

# ------------------------------------------------------------------ request profiles
# The same CA, auth key and remote for both tools. The 2016 cfssl needs the scheme
# (a scheme-less IP remote fails to parse); nodecert takes HOST:PORT as https.
profile() {  # $1 = remote
  cat <<JSON
{"signing":{"default":{"auth_remote":{"remote":"ca","auth_key":"primary"}}},
 "auth_keys":{"primary":{"type":"standard","key":"$AUTH_KEY"}},
 "remotes":{"ca":"$1"}}
JSON
}
profile "https://127.0.0.1:$PORT" > rp-cfssl.json
profile "127.0.0.1:$PORT" > rp.json

# ------------------------------------------------------------------ csr.json per row
csr() {  # $1 = CN, $2 = algo, $3 = size
  cat <<JSON
{"CN":"$1","hosts":["$1","127.0.0.1"],"key":{"algo":"$2","size":$3},
 "names":[{"C":"US","ST":"CA","L":"San Francisco","O":"nodecert bench","OU":"nodes"}]}
JSON
}
csr node1.bench ecdsa 256 > csr-ecdsa-256.json
csr node1.bench ecdsa 384 > csr-ecdsa-384.json
csr node1.bench rsa 2048 > csr-rsa-2048.json
csr node1.bench rsa 4096 > csr-rsa-4096.json

# ------------------------------------------------------------------ 8 sync specs (ecdsa-256)
for i in 1 2 3 4 5 6 7 8; do
  csr "node$i.bench" ecdsa 256 > "sync-csr/node$i.json"
  cat > "sync/node$i.json" <<JSON
{"csr":"$WORK/sync-csr/node$i.json","config":"$WORK/rp.json","tls_remote_ca":"$WORK/ca.pem",
 "cert":"$WORK/out/s-node$i.pem","key":"$WORK/out/s-node$i-key.pem","csr_out":"$WORK/out/s-node$i.csr"}
JSON
done

# ------------------------------------------------------------------ measure
echo "nodecert: $NODECERT ($("$NODECERT" --version))"
echo "cfssl:    $(command -v cfssl) ($(cfssl version 2>/dev/null | tr '\n' ' '))"
echo "CA:       multirootca over TLS on https://127.0.0.1:$PORT (pid $CA_PID), ECDSA P-256 root"
echo "machine:  $(nproc) CPUs, $(uname -sr), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 "$ROOT/bench/harness.py" --work "$WORK" --nodecert "$NODECERT" --floor "$FLOOR" \
  --runs "$RUNS" --cold-runs "$COLD_RUNS"
