// Harness items are `pub` for sibling test modules; nothing is exported from a test binary.
#![allow(unreachable_pub)]

//! The one integration-test binary. Every test here runs the real `nodecert` binary; those that
//! need a CA start a real `multirootca` (Debian's golang-cfssl) on 127.0.0.1 with a CA, a TLS
//! certificate and an auth key made for the test, and stop it by PID when the test ends.

/// Harness: work directories, the CA and multirootca, the nodecert command, openssl checks.
mod support;

/// Every form of auth key in the request profile, and the wrong one.
mod auth_keys;
/// bench/compare.sh, one round against the debug builds (no timing asserted).
mod bench;
/// sign, info, certinfo, Kubernetes manifests and signer lint, role profiles, log formats.
mod companions;
/// Byte-level agreement with cfssl's own CSRs and cfssljson's files; genkey.
mod compat;
/// Shipped deployment files (Ansible, Salt, cron, systemd), each run for real.
mod deploy;
/// Bad input and what a failed run leaves on disk.
mod failures;
/// The fault matrix: broken, hostile or silent servers.
mod faults;
/// Issuing against the real multirootca: key types, outputs, flags, failover.
mod gencert;
/// completions/ and man/ match the CLI definition; CI runs the README's test command.
mod generated;
/// An --exec hook that failed is owed, and run by the next run until it succeeds.
mod hooks;
/// 200 concurrent runs against one multirootca.
mod load;
/// Root and the pair's owner taking turns: --owner, lock files, unreadable and unwritable pairs.
mod owners;
/// --renew-before, hooks, locks, retries, metrics, crash safety.
mod renewal;
/// The auth key never printed; the key file never wider than 0600.
mod secrets;
/// `nodecert sync` over a directory of specs.
mod sync;
/// Trust, plaintext refusal, mutual-TLS flags, unreachable and silent servers.
mod transport;
