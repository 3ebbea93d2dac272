//! Load: 200 nodecert processes at once against one real multirootca, with retries. Every one
//! must end with a valid certificate for its own key; the figures are printed for the README.

use std::process::{Command, Stdio};
use std::time::Instant;

use crate::support::Setup;
use crate::support::s;

#[test]
fn two_hundred_concurrent_runs_all_get_a_valid_certificate() {
    const RUNS: usize = 200;
    let t = Setup::new();
    let (pki, server, dir, profile, csr) = (&t.pki, &t.server, t.dir(), &t.profile, &t.csr);
    let bin = assert_cmd::cargo::cargo_bin("nodecert");
    let started = Instant::now();
    let children: Vec<_> = (0..RUNS)
        .map(|i| {
            Command::new(&bin)
                .current_dir(dir)
                .args([
                    "gencert",
                    "-config",
                    s(profile),
                    "-tls-remote-ca",
                    s(&pki.primary_ca()),
                    "--retries",
                    "5",
                ])
                .args(["-bare", &format!("n{i}"), s(csr)])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut retried = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        crate::support::secrets::assert_absent(&out.stdout, &out.stderr);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        retried += usize::from(stderr.contains("retry"));
    }
    let elapsed = started.elapsed();
    // Every certificate verifies, matches its own key, and every serial is distinct.
    let mut serials = std::collections::BTreeSet::new();
    let mut verify = Command::new("openssl");
    verify
        .current_dir(dir)
        .args(["verify", "-CAfile", s(&pki.primary_ca())]);
    for i in 0..RUNS {
        verify.arg(format!("n{i}.pem"));
        let key = crate::support::tool(
            dir,
            "openssl",
            &["pkey", "-in", &format!("n{i}-key.pem"), "-pubout"],
        );
        let cert = crate::support::tool(
            dir,
            "openssl",
            &["x509", "-in", &format!("n{i}.pem"), "-noout", "-pubkey"],
        );
        assert_eq!(key, cert, "n{i}: key and certificate differ");
        serials.insert(crate::support::tool(
            dir,
            "openssl",
            &["x509", "-in", &format!("n{i}.pem"), "-noout", "-serial"],
        ));
    }
    let verified = verify.output().unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&verified.stdout)
            .matches(": OK")
            .count(),
        RUNS
    );
    assert_eq!(serials.len(), RUNS);
    assert_eq!(server.signed_count(), RUNS);
    eprintln!(
        "load: {RUNS} concurrent runs, all issued and verified in {:.2} s ({:.0} certificates/s); {retried} needed a retry",
        elapsed.as_secs_f64(),
        RUNS as f64 / elapsed.as_secs_f64()
    );
}
