//! Secrets: the auth key never appears in anything nodecert prints (every run in this suite goes
//! through `support::nodecert`, which checks its output against every key the suite made); here
//! the same paths run at every log level, and the key file's mode is watched while it is written.

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::support::{Pki, node_csr, nodecert, s, secrets, write};

/// Success, refusal, unreachable, bad input and plaintext warnings, at log levels 0 to 5 and in
/// both log formats: the output check in the harness sees every byte.
#[test]
fn auth_key_is_never_printed_at_any_log_level() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let good = pki.request_profile(dir, &server.url(), &pki.auth_key);
    let env_profile = write(
        dir,
        "env.json",
        &std::fs::read_to_string(&good)
            .unwrap()
            .replace(&pki.auth_key, "env:KEY"),
    );
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    let ca = pki.primary_ca();
    for level in ["0", "1", "2", "3", "4", "5"] {
        for format in ["text", "json"] {
            let base = [
                "--log-format",
                format,
                "gencert",
                "-loglevel",
                level,
                "-tls-remote-ca",
                s(&ca),
            ];
            nodecert(dir)
                .args(base)
                .args(["-config", s(&good), s(&csr)])
                .assert()
                .code(0);
            nodecert(dir)
                .args(base)
                .args(["-config", s(&good), "-label", "nope", s(&csr)])
                .assert()
                .code(5);
            nodecert(dir)
                .args(base)
                .args(["-config", s(&good), "-remote", "127.0.0.1:1", s(&csr)])
                .assert()
                .code(6);
            nodecert(dir)
                .env("KEY", &pki.auth_key)
                .args(base)
                .args([
                    "-config",
                    s(&env_profile),
                    "-bare",
                    "n",
                    "--renew-before",
                    "1h",
                    "--report",
                    "json",
                    s(&csr),
                ])
                .assert()
                .code(0);
            nodecert(dir)
                .env("KEY", format!("{}zz", pki.auth_key))
                .args(base)
                .args(["-config", s(&env_profile), s(&csr)])
                .assert()
                .code(3);
        }
    }
}

/// An `--exec` hook does not inherit the variable the auth key came from (`env:VAR`), while it
/// still gets the pair's paths and the rest of the environment.
#[test]
fn exec_hook_does_not_inherit_the_auth_key() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let profile = pki.request_profile(dir, &server.url(), "env:NODECERT_TEST_AUTH_KEY");
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    nodecert(dir)
        .env("NODECERT_TEST_AUTH_KEY", &pki.auth_key)
        .env("NODECERT_TEST_OTHER", "kept")
        .args(["gencert", "-config", s(&profile), "-tls-remote-ca"])
        .arg(pki.primary_ca())
        .args(["-bare", "node", "--exec", "env > hook-env.txt", s(&csr)])
        .assert()
        .code(0);
    let seen = std::fs::read_to_string(dir.join("hook-env.txt")).unwrap();
    assert!(seen.contains("NODECERT_CERT=node.pem"), "{seen}");
    assert!(seen.contains("NODECERT_TEST_OTHER=kept"), "{seen}");
    assert!(!seen.contains("NODECERT_TEST_AUTH_KEY"), "{seen}");
    assert!(!seen.contains(&pki.auth_key), "the hook saw the auth key");
}

/// The check itself catches a printed key in each form.
#[test]
fn the_output_check_catches_a_printed_key() {
    let key = "5eb63bbbe01eeed093cb22bb8f5acdc3";
    secrets::register(key);
    for printed in [
        key.to_string(),
        key.to_uppercase(),
        "XrY7u+Ae7tCTyyK7j1rNww".to_string(),
    ] {
        let caught = std::panic::catch_unwind(|| secrets::assert_absent(b"", printed.as_bytes()));
        assert!(caught.is_err(), "{printed} was not caught");
    }
}

/// The private key file never exists with a mode wider than 0600, not even as a temporary file,
/// whatever the umask: a watcher polls the directory during RSA-4096 runs (the slowest, so the
/// temporary key file lives longest) under umask 000.
#[test]
fn key_file_is_never_wider_than_0600() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().to_path_buf();
    let profile = pki.request_profile(&dir, &server.url(), &pki.auth_key);
    let csr = write(&dir, "csr.json", &node_csr("rsa", 4096));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (dir, stop) = (dir.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut observations, mut key_sightings) = (0u64, 0u64);
            let mut wider = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if !name.contains("-key.pem") {
                        continue;
                    }
                    if let Ok(meta) = entry.metadata() {
                        key_sightings += 1;
                        if meta.mode() & 0o077 != 0 {
                            wider.push(format!("{name} {:o}", meta.mode() & 0o777));
                        }
                    }
                }
                observations += 1;
            }
            (observations, key_sightings, wider)
        })
    };
    let bin = assert_cmd::cargo::cargo_bin("nodecert");
    for _ in 0..3 {
        let cmd = format!(
            "umask 000; exec {} gencert -config {} -tls-remote-ca {} -bare node --force {}",
            bin.display(),
            s(&profile),
            s(&pki.primary_ca()),
            s(&csr)
        );
        crate::support::tool(&dir, "sh", &["-c", &cmd]);
    }
    stop.store(true, Ordering::Relaxed);
    let (observations, key_sightings, wider) = watcher.join().unwrap();
    assert!(
        key_sightings > 10,
        "the watcher saw the key files {key_sightings} times in {observations} scans"
    );
    assert!(wider.is_empty(), "key files with a wider mode: {wider:?}");
}
