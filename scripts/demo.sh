#!/usr/bin/env bash
# The demo: build nodecert, start a throw-away CFSSL CA (multirootca over TLS on loopback),
# and obtain a node certificate from it, then check it with openssl.
#
# Everything lives in a temporary directory; the CA is stopped by its PID on exit.
# KEEP=1 keeps the directory for a look around.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-deps.sh demo
cargo build --release --locked --quiet
NODECERT=$PWD/target/release/nodecert

WORK=$(mktemp -d)
CA_PID=
cleanup() {
  [ -n "$CA_PID" ] && kill "$CA_PID" 2>/dev/null && wait "$CA_PID" 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
cd "$WORK"
step() { printf '\n== %s\n' "$*"; }

step "a throw-away CA, its signing policy and an auth key (cfssl)"
echo '{"CN":"demo root","key":{"algo":"ecdsa","size":256},"names":[{"O":"nodecert demo"}],"ca":{"expiry":"87600h"}}' > ca-csr.json
cfssl gencert -initca ca-csr.json 2>/dev/null | cfssljson -bare ca
od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > auth.key   # the HMAC key, hex, never on a command line
cat > ca-config.json <<JSON
{"signing":{"default":{"expiry":"8760h","auth_key":"node",
   "usages":["signing","key encipherment","server auth","client auth"]}},
 "auth_keys":{"node":{"type":"standard","key":"file:$WORK/auth.key"}}}
JSON
echo '{"CN":"ca.demo","hosts":["127.0.0.1"],"key":{"algo":"ecdsa","size":256}}' > tls-csr.json
cfssl gencert -ca ca.pem -ca-key ca-key.pem -config ca-config.json tls-csr.json 2>/dev/null | cfssljson -bare tls
printf '[ default ]\nprivate = file://%s/ca-key.pem\ncertificate = %s/ca.pem\nconfig = %s/ca-config.json\n' \
  "$WORK" "$WORK" "$WORK" > roots.conf

step "multirootca over TLS on 127.0.0.1"
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null || echo 18888)
multirootca -a "127.0.0.1:$PORT" -roots roots.conf -l default -tls-cert tls.pem -tls-key tls-key.pem > ca.log 2>&1 &
CA_PID=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
echo "listening on https://127.0.0.1:$PORT (pid $CA_PID)"

step "the node's request profile and csr.json (cfssl's own formats)"
cat > request-profile.json <<JSON
{"signing":{"default":{"auth_remote":{"remote":"ca","auth_key":"node"}}},
 "auth_keys":{"node":{"type":"standard","key":"file:auth.key"}},
 "remotes":{"ca":"127.0.0.1:$PORT"}}
JSON
cat > node-csr.json <<'JSON'
{"CN":"node1.demo","hosts":["node1.demo","127.0.0.1"],"key":{"algo":"ecdsa","size":256},
 "names":[{"O":"nodecert demo","OU":"nodes"}]}
JSON
cat request-profile.json

step "nodecert gencert: key made here, CSR signed by the CA, files written atomically"
( set -x; "$NODECERT" gencert -config request-profile.json -tls-remote-ca ca.pem -bare node1 node-csr.json )
ls -l node1.pem node1-key.pem node1.csr

step "independent checks"
openssl verify -CAfile ca.pem node1.pem
openssl x509 -in node1.pem -noout -subject -enddate -ext subjectAltName
[ "$(openssl pkey -in node1-key.pem -pubout)" = "$(openssl x509 -in node1.pem -noout -pubkey)" ] \
  && echo "node1-key.pem matches node1.pem"

step "and what a refusal looks like (a wrong auth key): exit code 5"
sed 's/file:auth.key/00112233445566778899aabbccddeeff/' request-profile.json > wrong.json
set +e; "$NODECERT" gencert -config wrong.json -tls-remote-ca ca.pem -bare nope node-csr.json; echo "exit $?"; set -e
echo; echo "demo done"
