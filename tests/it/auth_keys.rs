use predicates::str::contains;

use crate::support::gencert_in;
use crate::support::{Pki, assert_verifies, node_csr, nodecert, s, write};

/// hex (either case), `env:VAR`, and `file:PATH` with a trailing newline, relative to the
/// profile's directory: each is accepted by the real multirootca.
#[test]
fn every_key_form_is_accepted_by_the_ca() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::create_dir(dir.join("conf")).unwrap();
    write(
        &dir.join("conf"),
        "auth.key",
        &format!("{}\n", pki.auth_key),
    );
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    let forms = [
        ("hex", pki.auth_key.clone()),
        ("upper", pki.auth_key.to_uppercase()),
        ("env", "env:NODECERT_AUTH_KEY".to_string()),
        ("file", "file:auth.key".to_string()),
    ];
    for (name, key) in forms {
        let profile = pki.request_profile(&dir.join("conf"), &server.url(), &key);
        nodecert(dir)
            .env("NODECERT_AUTH_KEY", &pki.auth_key)
            .args([
                "gencert",
                "-config",
                s(&profile),
                "-tls-remote-ca",
                s(&pki.primary_ca()),
                "-bare",
                name,
                s(&csr),
            ])
            .assert()
            .code(0);
        assert_verifies(dir, &pki.primary_ca(), &dir.join(format!("{name}.pem")));
    }
    assert_eq!(server.signed_count(), 4);

    // A key file others can read works, with a warning; at 0600 nothing is said.
    let profile = pki.request_profile(&dir.join("conf"), &server.url(), "file:auth.key");
    let key_file = dir.join("conf/auth.key");
    for (mode, warned) in [(0o644, true), (0o600, false)] {
        std::fs::set_permissions(
            &key_file,
            std::os::unix::fs::PermissionsExt::from_mode(mode),
        )
        .unwrap();
        let out = nodecert(dir)
            .args(["gencert", "-config", s(&profile), "-tls-remote-ca"])
            .args([s(&pki.primary_ca()), "-bare", "perm", s(&csr)])
            .assert()
            .code(0)
            .get_output()
            .stderr
            .clone();
        let stderr = String::from_utf8_lossy(&out);
        assert_eq!(
            stderr.contains("auth key file is open to group or others (mode 0644)"),
            warned,
            "{stderr}"
        );
    }

    // A relative file: path is read beside the profile, quietly, whatever the working
    // directory holds.
    write(dir, "auth.key", "00");
    let out = nodecert(dir)
        .args(["gencert", "-config", s(&profile), "-tls-remote-ca"])
        .args([s(&pki.primary_ca()), "-bare", "beside", s(&csr)])
        .assert()
        .code(0);
    assert!(out.get_output().stderr.is_empty());
    // One that is not beside the profile is read, as cfssl reads it, from the working
    // directory, with a warning saying where it was looked for first.
    write(dir, "cwd.key", &pki.auth_key);
    let cfssl_style = pki.request_profile(&dir.join("conf"), &server.url(), "file:cwd.key");
    let out = nodecert(dir)
        .args(["gencert", "-config", s(&cfssl_style), "-tls-remote-ca"])
        .args([s(&pki.primary_ca()), "-bare", "cwd", s(&csr)])
        .assert()
        .code(0);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("auth key file cwd.key: read from the working directory, as cfssl"),
        "{stderr}"
    );
    assert!(stderr.contains(s(&dir.join("conf/cwd.key"))), "{stderr}");
    assert_verifies(dir, &pki.primary_ca(), &dir.join("cwd.pem"));
    // The place beside the profile is the key's too: an output there would be read first by
    // the next run, in place of the key.
    nodecert(dir)
        .args(["gencert", "-config", s(&cfssl_style), "-tls-remote-ca"])
        .args([s(&pki.primary_ca()), "--cert", "shadow.pem", "--key"])
        .args([s(&dir.join("conf/cwd.key")), s(&csr)])
        .assert()
        .code(2);
    assert!(!dir.join("conf/cwd.key").exists());
    // Only a plain file of this user's that group and others may not write: not one that
    // whoever may write the directory planted or swapped in (a link; one writable by group).
    // The error says why the file there was passed over.
    for plant in ["link", "group-writable"] {
        std::fs::remove_file(dir.join("cwd.key")).unwrap();
        if plant == "link" {
            std::os::unix::fs::symlink(dir.join("conf/auth.key"), dir.join("cwd.key")).unwrap();
        } else {
            write(dir, "cwd.key", &pki.auth_key);
            std::fs::set_permissions(
                dir.join("cwd.key"),
                std::os::unix::fs::PermissionsExt::from_mode(0o664),
            )
            .unwrap();
        }
        nodecert(dir)
            .args(["gencert", "-config", s(&cfssl_style), "-tls-remote-ca"])
            .args([s(&pki.primary_ca()), "-bare", "planted", s(&csr)])
            .assert()
            .code(3)
            .stderr(contains("conf/cwd.key").and(contains(
                "the file of that name in the working directory is not read",
            )));
        assert!(!dir.join("planted.pem").exists(), "{plant}");
    }
}

/// `remote` + `auth_key` without `auth_remote` (cfssl sends that unauthenticated to /sign, a 404
/// on multirootca) is sent as the authenticated request it was meant to be.
#[test]
fn remote_and_auth_key_without_auth_remote_still_authenticates() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let profile = write(
        dir,
        "rp.json",
        &format!(
            r#"{{"signing":{{"default":{{"remote":"ca","auth_key":"k"}}}},
            "auth_keys":{{"k":{{"type":"standard","key":"{}"}}}},"remotes":{{"ca":"{}"}}}}"#,
            pki.auth_key,
            server.url()
        ),
    );
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    gencert_in(dir, &profile, &pki.primary_ca())
        .args(["-bare", "n", s(&csr)])
        .assert()
        .code(0);
    assert_verifies(dir, &pki.primary_ca(), &dir.join("n.pem"));
}

/// A wrong key is the CA's refusal (exit 5), with the CA's message and a hint, and neither key
/// appears in anything nodecert prints, even at debug level.
#[test]
fn wrong_key_is_refused_and_never_printed() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let wrong = "00112233445566778899aabbccddeeff";
    let profile = pki.request_profile(dir, &server.url(), wrong);
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    let output = nodecert(dir)
        .args([
            "gencert",
            "-loglevel",
            "0",
            "-config",
            s(&profile),
            "-tls-remote-ca",
            s(&pki.primary_ca()),
            "-bare",
            "n",
            s(&csr),
        ])
        .assert()
        .code(5)
        .stderr(contains("invalid token").and(contains(format!(
            "does not match the CA's: check auth_keys.k in {}",
            profile.display()
        ))))
        .get_output()
        .clone();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !printed.contains(wrong) && !printed.contains(&pki.auth_key),
        "a key leaked: {printed}"
    );
    assert!(!dir.join("n.pem").exists() && !dir.join("n-key.pem").exists());
    // A key read from a file names the file too (it may be the working directory's).
    let key_file = write(dir, "wrong.key", wrong);
    let profile = pki.request_profile(dir, &server.url(), "file:wrong.key");
    nodecert(dir)
        .args(["gencert", "-config", s(&profile), "-tls-remote-ca"])
        .args([s(&pki.primary_ca()), "-bare", "n", s(&csr)])
        .assert()
        .code(5)
        .stderr(contains(format!(
            "check auth_keys.k in {} and its key file {}",
            profile.display(),
            key_file.display()
        )));
}

/// An unset `env:` variable is refused before anything is sent (cfssl would use an empty key).
#[test]
fn unset_env_key_is_an_input_error() {
    let pki = Pki::new();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let profile = pki.request_profile(dir, "127.0.0.1:1", "env:NODECERT_AUTH_KEY");
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    nodecert(dir)
        .args(["gencert", "-config", s(&profile), "-bare", "n", s(&csr)])
        .assert()
        .code(3)
        .stderr(contains("auth_keys.k.key").and(contains("NODECERT_AUTH_KEY is unset or empty")));
}

use predicates::prelude::PredicateBooleanExt as _;
