//! Shared test harness.

pub mod ca;

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

pub use ca::Pki;

/// A `nodecert` command with a scrubbed environment, run in `dir`.
pub fn nodecert(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("nodecert").expect("the nodecert binary is built");
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .timeout(std::time::Duration::from_secs(60));
    cmd
}

/// Runs an external tool and returns its stdout; panics with its stderr when it fails.
pub fn tool(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = StdCommand::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts `openssl verify -CAfile ca cert` succeeds.
pub fn assert_verifies(dir: &Path, ca: &Path, cert: &Path) {
    let out = tool(dir, "openssl", &["verify", "-CAfile", s(ca), s(cert)]);
    assert!(out.trim_end().ends_with(": OK"), "openssl verify: {out}");
}

/// Asserts the private key in `key` belongs to the certificate in `cert` (openssl's view).
pub fn assert_key_matches(dir: &Path, key: &Path, cert: &Path) {
    let from_key = tool(dir, "openssl", &["pkey", "-in", s(key), "-pubout"]);
    let from_cert = tool(
        dir,
        "openssl",
        &["x509", "-in", s(cert), "-noout", "-pubkey"],
    );
    assert_eq!(
        from_key,
        from_cert,
        "key {} does not match {}",
        key.display(),
        cert.display()
    );
}

/// `openssl x509 -text` of a certificate.
pub fn cert_text(dir: &Path, cert: &Path) -> String {
    tool(dir, "openssl", &["x509", "-in", s(cert), "-noout", "-text"])
}

/// Unix permission bits of a file.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o777
}

/// The names of the files in `dir`, sorted, without the pair lock files (`.NAME.lock`, which
/// stay by design: deleting a lock file would let two runs lock different inodes).
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !(name.starts_with('.') && name.ends_with(".lock")))
        .collect();
    names.sort();
    names
}

/// Writes `content` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// A path as &str (test paths are UTF-8).
pub fn s(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// A typical node csr.json.
pub fn node_csr(algo: &str, size: u32) -> String {
    format!(
        r#"{{"CN":"node1.example.com","hosts":["node1.example.com","127.0.0.1"],
            "key":{{"algo":"{algo}","size":{size}}},
            "names":[{{"C":"US","ST":"CA","L":"San Francisco","O":"Example","OU":"Nodes"}}]}}"#
    )
}
