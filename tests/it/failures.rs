use predicates::prelude::PredicateBooleanExt as _;
use predicates::str::contains;

use crate::support::{Pki, listing, mode, node_csr, nodecert, s, write};

/// A run that fails after the CA was reachable (here: the CA refuses) leaves an existing pair
/// byte-for-byte and mode-for-mode as it was, and leaves no temporary files.
#[test]
fn failed_run_leaves_old_files_untouched() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let profile = pki.request_profile(dir, &server.url(), &pki.auth_key);
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    let ca = pki.primary_ca();
    let base = ["gencert", "-config", s(&profile), "-tls-remote-ca", s(&ca)];
    nodecert(dir)
        .args(base)
        .args(["-bare", "node", s(&csr)])
        .assert()
        .code(0);
    let before: Vec<(String, Vec<u8>, u32)> = ["node.pem", "node-key.pem", "node.csr"]
        .iter()
        .map(|f| {
            (
                f.to_string(),
                std::fs::read(dir.join(f)).unwrap(),
                mode(&dir.join(f)),
            )
        })
        .collect();
    let files_before = listing(dir);

    // The CA refuses (unknown label), the CA is unreachable, the csr.json is broken.
    nodecert(dir)
        .args(base)
        .args(["-label", "nope", "-bare", "node", s(&csr)])
        .assert()
        .code(5);
    nodecert(dir)
        .args(base)
        .args(["-remote", "127.0.0.1:1", "-bare", "node", s(&csr)])
        .assert()
        .code(6);
    let broken = write(
        dir,
        "broken.json",
        r#"{"CN": "x", "key": {"algo": "rsa", "size": 512}}"#,
    );
    nodecert(dir)
        .args(base)
        .args(["-bare", "node", s(&broken)])
        .assert()
        .code(3);

    for (name, bytes, old_mode) in before {
        assert_eq!(
            std::fs::read(dir.join(&name)).unwrap(),
            bytes,
            "{name} changed"
        );
        assert_eq!(mode(&dir.join(&name)), old_mode, "{name} mode changed");
    }
    let mut expected = files_before;
    expected.push("broken.json".into());
    expected.sort();
    assert_eq!(
        listing(dir),
        expected,
        "no temporary or partial files remain"
    );
}

/// A key file that exists with a wider mode is replaced by one at 0600 (cfssljson keeps the old
/// mode), whatever the umask.
#[test]
fn key_mode_is_0600_even_over_a_wider_existing_file() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let profile = pki.request_profile(dir, &server.url(), &pki.auth_key);
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    write(dir, "node-key.pem", "old");
    std::fs::set_permissions(
        dir.join("node-key.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let cmd = format!(
        "umask 000; exec {} gencert -config {} -tls-remote-ca {} -bare node {}",
        assert_cmd::cargo::cargo_bin("nodecert").display(),
        s(&profile),
        s(&pki.primary_ca()),
        s(&csr)
    );
    crate::support::tool(dir, "sh", &["-c", &cmd]);
    assert_eq!(mode(&dir.join("node-key.pem")), 0o600);
    assert_eq!(mode(&dir.join("node.pem")), 0o644);
}

/// Bad input: one line naming the file/field/flag, the documented code, nothing written.
#[test]
fn bad_input_is_named_and_nothing_is_written() {
    let pki = Pki::new();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let profile = pki.request_profile(dir, "127.0.0.1:1", &pki.auth_key);
    let good = write(dir, "good.json", &node_csr("ecdsa", 256));
    write(dir, "empty.pem", "");
    std::fs::create_dir(dir.join("adir")).unwrap();
    let cases: Vec<(Vec<&str>, &str, i32, &str)> = vec![
        (
            vec![],
            r#"{"CN":"x","key":{"algo":"dsa"}}"#,
            3,
            "field key.algo",
        ),
        (
            vec![],
            r#"{"CN":"x","key":{"algo":"rsa","size":1024}}"#,
            3,
            "too weak",
        ),
        (
            vec![],
            r#"{"CN":"x","key":{"algo":"ecdsa","size":255}}"#,
            3,
            "field key.size",
        ),
        (vec![], r#"{"CN":"x","hosts":"a"}"#, 3, "field hosts"),
        (
            vec![],
            r#"{"key":{"algo":"ecdsa","size":256}}"#,
            3,
            "neither CN nor hosts",
        ),
        (vec![], "not json", 3, "not valid JSON"),
        (
            vec!["-tls-remote-ca", "empty.pem"],
            "",
            3,
            "empty.pem: the CA certificate (-tls-remote-ca) holds no PEM",
        ),
        (
            vec!["-tls-remote-ca", "missing.pem"],
            "",
            3,
            "missing.pem: cannot read",
        ),
        (vec!["-config", "adir"], "", 3, "adir: is a directory"),
        (
            vec!["-config", "missing.json"],
            "",
            3,
            "missing.json: cannot read the request profile",
        ),
        (vec!["-hostname", "a,,b"], "", 2, "flag -hostname"),
        (vec!["-bare", "nodir/x"], "", 8, "nodir does not exist"),
        (vec!["-loglevel", "9"], "", 2, "loglevel"),
        (vec!["--timeout", "soon"], "", 2, "timeout"),
        (vec!["-remote", "ftp://x"], "", 2, "flag -remote"),
    ];
    for (flags, csr_json, code, expected) in cases {
        let csr = if csr_json.is_empty() {
            good.clone()
        } else {
            write(dir, "case.json", csr_json)
        };
        let mut args = vec!["gencert"];
        if !flags.contains(&"-config") {
            args.extend(["-config", s(&profile)]);
        }
        args.extend(flags.iter().copied());
        if !flags.contains(&"-bare") {
            args.extend(["-bare", "out"]);
        }
        args.push(s(&csr));
        let out = nodecert(dir)
            .args(&args)
            .assert()
            .code(code)
            .stderr(contains(expected))
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if code != 2 {
            assert_eq!(
                stderr.lines().count(),
                1,
                "{args:?}: one line, got {stderr}"
            );
            assert!(stderr.starts_with("nodecert: error: "), "{stderr}");
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            !dir.join("out.pem").exists() && !dir.join("out-key.pem").exists(),
            "{args:?} wrote output"
        );
    }
    assert!(
        listing(dir).iter().all(|f| !f.starts_with(".nodecert-")),
        "no temporary files"
    );
}

/// A directory that cannot be written is reported before the CA is asked to sign.
#[test]
fn unwritable_output_directory_fails_before_contacting_the_ca() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let profile = pki.request_profile(dir, &server.url(), &pki.auth_key);
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    nodecert(dir)
        .args([
            "gencert",
            "-config",
            s(&profile),
            "-tls-remote-ca",
            s(&pki.primary_ca()),
            "-bare",
            "csr.json/x",
            s(&csr),
        ])
        .assert()
        .code(8)
        .stderr(contains("csr.json/x.pem").and(contains("does not exist")));
    assert_eq!(server.signed_count(), 0, "the CA was not asked");
}
