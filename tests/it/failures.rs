use predicates::prelude::PredicateBooleanExt as _;
use predicates::str::contains;

use crate::support::Setup;
use crate::support::gencert_in;
use crate::support::{Pki, listing, mode, node_csr, nodecert, nodecert_as, s, write};

/// A run that fails after the CA was reachable (here: the CA refuses) leaves an existing pair
/// byte-for-byte and mode-for-mode as it was, and leaves no temporary files.
#[test]
fn failed_run_leaves_old_files_untouched() {
    let t = Setup::new();
    let (pki, _server, dir, profile, csr) = (&t.pki, &t.server, t.dir(), &t.profile, &t.csr);
    let ca = pki.primary_ca();
    let base = ["gencert", "-config", s(profile), "-tls-remote-ca", s(&ca)];
    nodecert(dir)
        .args(base)
        .args(["-bare", "node", s(csr)])
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
        .args(["-label", "nope", "-bare", "node", s(csr)])
        .assert()
        .code(5);
    nodecert(dir)
        .args(base)
        .args(["-remote", "127.0.0.1:1", "-bare", "node", s(csr)])
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
    let t = Setup::new();
    let (pki, _server, dir, profile, csr) = (&t.pki, &t.server, t.dir(), &t.profile, &t.csr);
    write(dir, "node-key.pem", "old");
    std::fs::set_permissions(
        dir.join("node-key.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let cmd = format!(
        "umask 000; exec {} gencert -config {} -tls-remote-ca {} -bare node {}",
        assert_cmd::cargo::cargo_bin("nodecert").display(),
        s(profile),
        s(&pki.primary_ca()),
        s(csr)
    );
    crate::support::tool(dir, "sh", &["-c", &cmd]);
    assert_eq!(mode(&dir.join("node-key.pem")), 0o600);
    assert_eq!(mode(&dir.join("node.pem")), 0o644);
}

/// (csr.json, request profile) for a case; `None` uses a good one.
type Inputs = (Option<String>, Option<String>);

/// The bad-input matrix: csr.json, request profile, CA PEM, mTLS files and flags. Each case
/// gives one line naming the file and field (or flag), its documented exit code, never a panic,
/// and writes nothing.
#[test]
fn bad_input_matrix() {
    let pki = Pki::new();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let key = pki.auth_key.clone();
    let good_profile = pki.request_profile(dir, "127.0.0.1:1", &key);
    let good_profile_text = std::fs::read_to_string(&good_profile).unwrap();
    let good = write(dir, "good.json", &node_csr("ecdsa", 256));
    write(dir, "empty.pem", "");
    write(dir, "notpem.pem", "hello\n");
    write(
        dir,
        "garbage.pem",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    write(dir, "unended.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n");
    std::fs::create_dir(dir.join("adir")).unwrap();
    let profile = |signing: &str, rest: &str| {
        format!(
            r#"{{"signing":{signing},"auth_keys":{{"k":{{"type":"standard","key":"{key}"}}}},"remotes":{{"ca":"127.0.0.1:1"}}{rest}}}"#
        )
    };
    let default_ar = r#"{"default":{"auth_remote":{"remote":"ca","auth_key":"k"}}}"#;
    let with_key = |key_json: &str| {
        format!(
            r#"{{"signing":{default_ar},"auth_keys":{{"k":{key_json}}},"remotes":{{"ca":"127.0.0.1:1"}}}}"#
        )
    };
    let with_remote = |remote_json: &str| {
        format!(
            r#"{{"signing":{default_ar},"auth_keys":{{"k":{{"type":"standard","key":"{key}"}}}},"remotes":{{"ca":{remote_json}}}}}"#
        )
    };
    // (csr.json, request profile, extra flags, exit code, what the line must name)
    let csr = |json: &str| (Some(json.to_string()), None::<String>);
    let prof = |json: String| (None::<String>, Some(json));
    let flags = (None::<String>, None::<String>);
    let cases: Vec<(Inputs, Vec<&str>, i32, &str)> = vec![
        // csr.json
        (csr("not json"), vec![], 3, "case.json: not valid JSON"),
        (csr(""), vec![], 3, "case.json: not valid JSON"),
        (
            csr(r#"["CN"]"#),
            vec![],
            3,
            "case.json: expected a JSON object",
        ),
        (
            csr(r#"{"CN":1}"#),
            vec![],
            3,
            "case.json: field CN: must be a string",
        ),
        (
            csr(r#"{"CN":"x","names":{"O":"a"}}"#),
            vec![],
            3,
            "field names: must be a list",
        ),
        (
            csr(r#"{"CN":"x","names":["O"]}"#),
            vec![],
            3,
            "field names[0]: must be an object",
        ),
        (
            csr(r#"{"CN":"x","names":[{"O":5}]}"#),
            vec![],
            3,
            "field names[0].O: must be a string",
        ),
        (
            csr(r#"{"CN":"x","hosts":"a"}"#),
            vec![],
            3,
            "field hosts: must be a list",
        ),
        (
            csr(r#"{"CN":"x","hosts":[1]}"#),
            vec![],
            3,
            "field hosts[0]: must be a string",
        ),
        (
            csr(r#"{"CN":"x","hosts":["a",""]}"#),
            vec![],
            3,
            "field hosts[1]: is empty",
        ),
        (
            csr(r#"{"CN":"x","hosts":[" a"]}"#),
            vec![],
            3,
            "field hosts[0]: \" a\" has surrounding whitespace",
        ),
        (
            csr(r#"{"CN":"x","hosts":["a\u0007b"]}"#),
            vec![],
            3,
            "field hosts[0]",
        ),
        (
            csr(r#"{"CN":"x","key":"rsa"}"#),
            vec![],
            3,
            "field key: must be an object",
        ),
        (
            csr(r#"{"CN":"x","key":{"algo":5}}"#),
            vec![],
            3,
            "field key.algo: must be a string",
        ),
        (
            csr(r#"{"CN":"x","key":{"algo":"dsa"}}"#),
            vec![],
            3,
            "field key.algo: unknown algo \"dsa\"",
        ),
        (
            csr(r#"{"CN":"x","key":{"algo":"RSA","size":2048}}"#),
            vec![],
            3,
            "lower case",
        ),
        (
            csr(r#"{"CN":"x","key":{"algo":"rsa","size":"2048"}}"#),
            vec![],
            3,
            "field key.size: must be a number",
        ),
        (
            csr(r#"{"CN":"x","key":{"algo":"rsa","size":2048.5}}"#),
            vec![],
            3,
            "field key.size: must be a whole number",
        ),
        (
            csr(r#"{"CN":"x","key":{"algo":"rsa","size":1024}}"#),
            vec![],
            3,
            "field key.size: rsa size 1024 is too weak",
        ),
        (
            csr(r#"{"CN":"x","key":{"algo":"rsa","size":16384}}"#),
            vec![],
            3,
            "too large",
        ),
        (
            csr(r#"{"CN":"x","key":{"algo":"rsa"}}"#),
            vec![],
            3,
            "rsa needs a size",
        ),
        (
            csr(r#"{"CN":"x","key":{"algo":"rsa","size":2049}}"#),
            vec![],
            3,
            "not a whole number of bytes",
        ),
        (
            csr(r#"{"CN":"x","key":{"algo":"ecdsa","size":255}}"#),
            vec![],
            3,
            "ecdsa size 255 is not a curve",
        ),
        (
            csr(r#"{"CN":"x","key":{"algo":"ed25519","size":512}}"#),
            vec![],
            3,
            "ed25519 has no size 512",
        ),
        (
            csr(r#"{"CN":"x","ca":{"expiry":"1h"}}"#),
            vec![],
            3,
            "field ca: is only for creating a CA",
        ),
        (
            csr(r#"{"key":{"algo":"ecdsa","size":256}}"#),
            vec![],
            3,
            "case.json: has neither CN nor hosts",
        ),
        // request profile
        (
            csr(r#"{"CN":"x","cn":"y"}"#),
            vec![],
            3,
            r#"case.json: keys "CN" and "cn" both set CN (keys match in any case): keep one"#,
        ),
        (
            csr(r#"{"CN":"x","names":[{"OID":{"1.two":"y"}}]}"#),
            vec![],
            3,
            "field names[0].OID.1.two: \"1.two\" is not a dotted OID",
        ),
        (
            prof(r#"{"signing":{},"Signing":{}}"#.into()),
            vec![],
            3,
            "both set signing (keys match in any case): keep one",
        ),
        (prof("{".into()), vec![], 3, "rp.json: not valid JSON"),
        (
            prof("[]".into()),
            vec![],
            3,
            "rp.json: expected a JSON object",
        ),
        (
            prof(r#"{"remotes":{}}"#.into()),
            vec![],
            3,
            "rp.json: field signing: is missing",
        ),
        (
            prof(r#"{"signing":[]}"#.into()),
            vec![],
            3,
            "rp.json: field signing: must be an object",
        ),
        (
            prof(profile("{}", "")),
            vec![],
            3,
            "field signing.default: is missing",
        ),
        (
            prof(profile(r#"{"default":{"auth_remote":"ca"}}"#, "")),
            vec![],
            3,
            "field signing.default.auth_remote: must be an object",
        ),
        (
            prof(profile(
                r#"{"default":{"remote":"ca","auth_remote":{"remote":"ca","auth_key":"k"}}}"#,
                "",
            )),
            vec![],
            3,
            "has both remote and auth_remote",
        ),
        (
            prof(profile(
                r#"{"default":{"auth_remote":{"remote":"ca"}}}"#,
                "",
            )),
            vec![],
            3,
            "field signing.default.auth_remote.auth_key: is missing",
        ),
        (
            prof(profile(
                r#"{"default":{"auth_remote":{"auth_key":"k"}}}"#,
                "",
            )),
            vec![],
            3,
            "field signing.default.auth_remote.remote: is missing",
        ),
        (
            prof(profile(
                r#"{"default":{"auth_remote":{"remote":"other","auth_key":"k"}}}"#,
                "",
            )),
            vec![],
            3,
            "names \"other\", which is not in the remotes section",
        ),
        (
            prof(profile(
                r#"{"default":{"auth_remote":{"remote":"ca","auth_key":"nokey"}}}"#,
                "",
            )),
            vec![],
            3,
            "names \"nokey\", which is not in the auth_keys section",
        ),
        (
            prof(with_remote(r#"["127.0.0.1:1"]"#)),
            vec![],
            3,
            "field remotes.ca: must be a string",
        ),
        (
            prof(with_remote(r#""ftp://ca:1""#)),
            vec![],
            3,
            "field remotes.ca: \"ftp://ca:1\" has scheme ftp",
        ),
        (
            prof(with_remote(r#""""#)),
            vec![],
            3,
            "field remotes.ca: is empty",
        ),
        (
            prof(with_key(r#""k""#)),
            vec![],
            3,
            "field auth_keys.k: must be an object",
        ),
        (
            prof(with_key(&format!(r#"{{"key":"{key}"}}"#))),
            vec![],
            3,
            "field auth_keys.k.type: is \"\": only \"standard\"",
        ),
        (
            prof(with_key(&format!(
                r#"{{"type":"standard-ip","key":"{key}"}}"#
            ))),
            vec![],
            3,
            "auth_keys.k.type: is \"standard-ip\"",
        ),
        (
            prof(with_key(r#"{"type":"standard","key":"0g"}"#)),
            vec![],
            3,
            "field auth_keys.k.key: the key is not hex",
        ),
        (
            prof(with_key(r#"{"type":"standard","key":"abc"}"#)),
            vec![],
            3,
            "odd number of digits",
        ),
        (
            prof(with_key(r#"{"type":"standard","key":""}"#)),
            vec![],
            3,
            "field auth_keys.k.key: the key is empty",
        ),
        (
            prof(with_key(
                r#"{"type":"standard","key":"env:NODECERT_UNSET"}"#,
            )),
            vec![],
            3,
            "NODECERT_UNSET is unset or empty",
        ),
        (
            prof(with_key(r#"{"type":"standard","key":"file:missing.key"}"#)),
            vec![],
            3,
            "cannot read key file",
        ),
        (
            prof(with_key(r#"{"type":"standard","key":"vault:x"}"#)),
            vec![],
            3,
            "unknown key prefix \"vault\"",
        ),
        (
            flags.clone(),
            vec!["-config", "adir"],
            3,
            "adir: is a directory",
        ),
        (
            flags.clone(),
            vec!["-config", "missing.json"],
            3,
            "missing.json: cannot read the request profile: no such file",
        ),
        (
            flags.clone(),
            vec!["-config", "good.json/x"],
            3,
            "good.json/x: cannot read the request profile",
        ),
        // CA PEM and mTLS files
        (
            flags.clone(),
            vec!["-tls-remote-ca", "empty.pem"],
            3,
            "empty.pem: the CA certificate (-tls-remote-ca) holds no PEM",
        ),
        (
            flags.clone(),
            vec!["-tls-remote-ca", "notpem.pem"],
            3,
            "notpem.pem: the CA certificate (-tls-remote-ca) holds no PEM",
        ),
        (
            flags.clone(),
            vec!["-tls-remote-ca", "garbage.pem"],
            3,
            "garbage.pem: a certificate in the CA file cannot be used",
        ),
        (
            flags.clone(),
            vec!["-tls-remote-ca", "missing.pem"],
            3,
            "missing.pem: cannot read",
        ),
        (
            prof(with_key(r#"{"type":"standard","key":"file:/dev/zero"}"#)),
            vec![],
            3,
            "larger than 4 KiB: not a hex key",
        ),
        (
            flags.clone(),
            vec!["-config", "/dev/zero"],
            3,
            "/dev/zero: is larger than 1024 KiB: not a request profile",
        ),
        (
            flags.clone(),
            vec!["-tls-remote-ca", "unended.pem"],
            3,
            "unended.pem: the CA certificate (-tls-remote-ca) is not valid PEM: a BEGIN line has no matching END line",
        ),
        (
            flags.clone(),
            vec!["-tls-remote-ca", "adir"],
            3,
            "adir: is a directory",
        ),
        (
            flags.clone(),
            vec![
                "-mutual-tls-client-cert",
                "notpem.pem",
                "-mutual-tls-client-key",
                "notpem.pem",
            ],
            3,
            "notpem.pem: the mutual-TLS client certificate",
        ),
        (
            flags.clone(),
            vec![
                "-mutual-tls-client-cert",
                "good.json",
                "-mutual-tls-client-key",
                "notpem.pem",
            ],
            3,
            "good.json: the mutual-TLS client certificate",
        ),
        // flags
        (
            flags.clone(),
            vec!["-mutual-tls-client-key", "notpem.pem"],
            2,
            "--mutual-tls-client-cert",
        ),
        (
            flags.clone(),
            vec!["-hostname", ",,"],
            2,
            "flag -hostname: lists no host, only commas",
        ),
        (
            flags.clone(),
            vec!["-hostname", "a, b"],
            2,
            "flag -hostname: entry \" b\" has surrounding whitespace",
        ),
        (
            flags.clone(),
            vec!["-bare", "nodir/x"],
            8,
            "nodir does not exist",
        ),
        (flags.clone(), vec!["-loglevel", "9"], 2, "loglevel"),
        (flags.clone(), vec!["--timeout", "soon"], 2, "--timeout"),
        (
            flags.clone(),
            vec!["--timeout", "0s"],
            2,
            "must be more than zero",
        ),
        (flags.clone(), vec!["-remote", "ftp://x"], 2, "flag -remote"),
        (
            flags.clone(),
            vec!["-remote", "http://127.0.0.1:1"],
            2,
            "plain http",
        ),
        (
            flags.clone(),
            vec!["-ca-key", "x.pem"],
            2,
            "-ca-key is cfssl's local CA work",
        ),
        (
            flags.clone(),
            vec!["--key-mode", "0644"],
            2,
            "would expose the private key",
        ),
        (flags.clone(), vec!["--mode", "999"], 2, "flag --mode"),
        (
            flags.clone(),
            vec!["--mode", "0777"],
            2,
            "flag --mode: 0777 lets others than the owner replace the certificate",
        ),
        (
            flags.clone(),
            vec!["--mode", "0744"],
            2,
            "flag --mode: 0744 makes the certificate executable",
        ),
        (
            flags.clone(),
            vec!["--owner", "no-such-user-nodecert"],
            2,
            "flag --owner: no user",
        ),
        (flags.clone(), vec!["--report", "xml"], 2, "--report"),
        (
            flags.clone(),
            vec!["--retries", "-1"],
            2,
            "invalid value '-1' for '--retries <N>'",
        ),
        (
            flags.clone(),
            vec!["--renew-before", "soon"],
            2,
            "--renew-before",
        ),
        (
            flags.clone(),
            vec!["--cert", "same.pem", "--key", "./same.pem"],
            2,
            "is given for two outputs (the private key output and the certificate output)",
        ),
        (
            flags.clone(),
            vec!["--lock-timeout", "500000000000y"],
            2,
            "must be at most 87600h (ten years)",
        ),
        (
            flags.clone(),
            vec!["--signer", "kubernetes.io/kubelet-serving"],
            3,
            "violation(s) of the kubernetes.io/kubelet-serving signer's rules",
        ),
    ];
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for ((csr_json, profile_json), flags, code, expected) in cases {
        let csr_path = match &csr_json {
            Some(json) => write(dir, "case.json", json),
            None => good.clone(),
        };
        let profile_path = match &profile_json {
            Some(json) => write(dir, "rp.json", json),
            None => write(dir, "rp.json", &good_profile_text),
        };
        let mut args = vec!["gencert"];
        if !flags.contains(&"-config") {
            args.extend(["-config", s(&profile_path)]);
        }
        args.extend(flags.iter().copied());
        if !flags.contains(&"-bare") && !flags.contains(&"--cert") {
            args.extend(["-bare", "out"]);
        }
        args.push(s(&csr_path));
        let out = nodecert(dir).args(&args).assert().get_output().clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let case = format!("{args:?} {csr_json:?} {profile_json:?}");
        assert_eq!(out.status.code(), Some(code), "{case}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{case}: {stderr:?} lacks {expected:?}"
        );
        assert!(!stderr.contains("panicked"), "{case}: {stderr}");
        if flags.contains(&"--signer") {
            // One line per signer-rule violation, then the final error.
            assert!(
                stderr.lines().all(|l| l.starts_with("nodecert: ")),
                "{case}: {stderr}"
            );
            assert!(
                stderr
                    .lines()
                    .last()
                    .unwrap()
                    .starts_with("nodecert: error: "),
                "{case}"
            );
        } else {
            assert_eq!(stderr.lines().count(), 1, "{case}: one line, got {stderr}");
            assert!(stderr.starts_with("nodecert: error: "), "{case}: {stderr}");
        }
        let written: Vec<String> = listing(dir)
            .into_iter()
            .filter(|f| f.starts_with("out"))
            .collect();
        assert!(written.is_empty(), "{case} wrote {written:?}");
        assert!(
            out.stdout.is_empty(),
            "{case}: stdout {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert!(
        listing(dir).iter().all(|f| !f.contains(".nodecert-")),
        "no temporary files"
    );
}

/// A directory that cannot be written is reported before the CA is asked to sign.
#[test]
fn unwritable_output_directory_fails_before_contacting_the_ca() {
    let t = Setup::new();
    let (pki, server, dir, profile, csr) = (&t.pki, &t.server, t.dir(), &t.profile, &t.csr);
    gencert_in(dir, profile, &pki.primary_ca())
        .args(["-bare", "csr.json/x", s(csr)])
        .assert()
        .code(8)
        .stderr(
            contains("cannot write csr.json/x-key.pem")
                .and(contains("directory csr.json is not a directory")),
        );
    assert_eq!(server.signed_count(), 0, "the CA was not asked");
}

/// What root's privileges hide from the rest of the matrix: a csr.json or request profile the
/// user may not read, and an output directory the user may not write. Run as `nobody`, each is
/// one line naming the path, its exit code, the CA never asked, nothing written.
#[test]
fn unreadable_inputs_and_read_only_output_directory_as_an_unprivileged_user() {
    use std::os::unix::fs::PermissionsExt as _;
    const NOBODY: u32 = 65534;
    let t = Setup::new();
    let (pki, server, dir) = (&t.pki, &t.server, t.dir());
    let chmod = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    // nobody may enter the work directory and read what a node user normally can.
    chmod(dir, 0o755);
    chmod(&t.profile, 0o644);
    chmod(&t.csr, 0o644);
    let ca = dir.join("ca.pem");
    std::fs::copy(pki.primary_ca(), &ca).unwrap();
    chmod(&ca, 0o644);
    let writable = dir.join("out");
    std::fs::create_dir(&writable).unwrap();
    std::os::unix::fs::chown(&writable, Some(NOBODY), Some(NOBODY)).unwrap();
    let read_only = dir.join("read-only");
    std::fs::create_dir(&read_only).unwrap();
    chmod(&read_only, 0o555);
    let private_csr = write(
        dir,
        "private-csr.json",
        &std::fs::read_to_string(&t.csr).unwrap(),
    );
    chmod(&private_csr, 0o600);
    let private_profile = write(
        dir,
        "private-rp.json",
        &std::fs::read_to_string(&t.profile).unwrap(),
    );
    chmod(&private_profile, 0o600);

    let run = |profile: &std::path::Path, bare: &std::path::Path, csr: &std::path::Path| {
        let out = nodecert_as(dir, NOBODY, NOBODY)
            .gencert(profile, &ca)
            .arg("-bare")
            .args([bare, csr])
            .assert()
            .get_output()
            .clone();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The control: the same run with readable inputs and a writable directory succeeds.
    let (code, stderr) = run(&t.profile, &writable.join("ok"), &t.csr);
    assert_eq!(code, Some(0), "{stderr}");
    let signed = server.signed_count();

    let denied = "permission denied";
    for (profile, bare, csr, code, names, says) in [
        (
            &t.profile,
            writable.join("a"),
            &private_csr,
            3,
            "private-csr.json",
            denied,
        ),
        (
            &private_profile,
            writable.join("b"),
            &t.csr,
            3,
            "private-rp.json",
            denied,
        ),
        // No lock file can be made there either: the directory is named, before the CA is asked.
        (
            &t.profile,
            read_only.join("c"),
            &t.csr,
            8,
            "read-only/c-key.pem",
            "is not writable by this user (uid 65534; the directory is uid 0's)",
        ),
    ] {
        let (got, stderr) = run(profile, &bare, csr);
        assert_eq!(got, Some(code), "{names}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{names}: {stderr}");
        assert!(stderr.starts_with("nodecert: error: "), "{stderr}");
        assert!(stderr.contains(names), "{stderr:?} does not name {names}");
        assert!(stderr.to_lowercase().contains(says), "{stderr}");
    }
    assert_eq!(server.signed_count(), signed, "the CA was not asked");
    assert_eq!(listing(&writable), ["ok-key.pem", "ok.csr", "ok.pem"]);
    assert!(listing(&read_only).is_empty());

    // A kept pair that cannot be given the --owner asked for (only root may chown): exit 8,
    // one line naming the file and the flag, the pair as it was.
    let pair = || {
        listing(&writable)
            .iter()
            .map(|f| std::fs::read(writable.join(f)).unwrap())
            .collect::<Vec<_>>()
    };
    let before = pair();
    let out = nodecert_as(dir, NOBODY, NOBODY)
        .gencert(&t.profile, &ca)
        .args(["-bare", s(&writable.join("ok")), "--renew-before", "720h"])
        .args(["--owner", "0:0", s(&t.csr)])
        .assert()
        .code(8)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("ok-key.pem") && stderr.contains("cannot set the owner (--owner)"),
        "{stderr}"
    );
    assert_eq!(pair(), before);
    assert_eq!(server.signed_count(), signed, "the CA was not asked");

    // In a sticky directory nobody may not replace root's files: said before the CA signs.
    let sticky = dir.join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    chmod(&sticky, 0o1777);
    crate::support::gencert_in(dir, &t.profile, &ca)
        .args(["-bare", s(&sticky.join("n")), s(&t.csr)])
        .assert()
        .code(0);
    // Without root's lock file, which would stop nobody's run first.
    std::fs::remove_file(sticky.join(".n.pem.lock")).unwrap();
    let signed = server.signed_count();
    let out = nodecert_as(dir, NOBODY, NOBODY)
        .gencert(&t.profile, &ca)
        .args(["-bare", s(&sticky.join("n")), s(&t.csr)])
        .assert()
        .code(8)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("n-key.pem: belongs to uid 0 in a sticky directory"),
        "{stderr}"
    );
    assert_eq!(server.signed_count(), signed, "the CA was not asked");
    assert!(!sticky.join(".n.pem.lock").exists());
    // So may root's metrics file there: said before the pair is renewed, not after.
    write(&sticky, "m.prom", "");
    let out = nodecert_as(dir, NOBODY, NOBODY)
        .gencert(&t.profile, &ca)
        .args(["-bare", s(&writable.join("mx")), "--metrics-file"])
        .args([s(&sticky.join("m.prom")), s(&t.csr)])
        .assert()
        .code(8)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("m.prom: belongs to uid 0 in a sticky directory"),
        "{stderr}"
    );
    assert_eq!(server.signed_count(), signed, "the CA was not asked");
    assert!(!writable.join("mx.pem").exists());
}

/// `--report json` prints no report for a failed run: stdout stays empty and the one error
/// line is on stderr, which is where Salt's `stateful` cmd takes a failure's comment from
/// (deploy/salt, tested in deploy.rs).
#[test]
fn a_failed_run_prints_no_json_report() {
    let work = tempfile::tempdir().unwrap();
    nodecert(work.path())
        .args(["gencert", "-remote", "127.0.0.1:1", "--report", "json"])
        .arg("missing.json")
        .assert()
        .code(3)
        .stdout("")
        .stderr(contains("missing.json"));
}

/// A bare `nodecert` is a usage error (exit 2) in one line, not the whole help on stderr.
#[test]
fn no_command_is_one_usage_line() {
    let work = tempfile::tempdir().unwrap();
    let stderr = crate::support::one_line_stderr(&nodecert(work.path()).assert().code(2));
    assert!(
        stderr.contains("a command is required (gencert,"),
        "{stderr}"
    );
}

/// A metrics file that cannot be written after the pair was renewed (here the hook turns its
/// path into a directory) fails the run (exit 8), but the report of the renewal and the hook
/// is printed first: config management must see that the files changed. When the hook failed
/// too, its failure is the run's (exit 10), and the metrics failure a warning.
#[test]
fn a_metrics_failure_after_a_renewal_keeps_its_report() {
    let t = Setup::new();
    let flags = [
        "--metrics-file",
        "m.prom",
        "--report",
        "json",
        "--exec",
        "mkdir m.prom",
    ];
    let out = t.gencert_bare("node", &t.csr, &flags).assert().code(8);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout);
    assert!(stdout.contains(r#""changed":true"#), "{stdout}");
    let stderr = crate::support::one_line_stderr(&out);
    assert!(stderr.contains("m.prom"), "{stderr}");
    assert!(t.dir().join("node.pem").is_file());
    // A hook that failed as well is the run's error (exit 10); the metrics failure is said too.
    std::fs::remove_dir(t.dir().join("m.prom")).unwrap();
    let flags = ["--metrics-file", "m.prom", "--exec", "mkdir m.prom; exit 5"];
    let out = t.gencert_bare("node", &t.csr, &flags).assert().code(10);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    let line = |prefix: &str| stderr.lines().find(|l| l.starts_with(prefix)).unwrap_or("");
    assert!(line("nodecert: error:").contains("--exec"), "{stderr}");
    assert!(
        line("nodecert: warning: cannot write").contains("m.prom"),
        "{stderr}"
    );
}

/// A file of the pair that cannot be replaced (a bind-mounted certificate, as a container gets
/// one; an immutable or append-only CSR; an append-only directory) fails the run with exit 8
/// before the CA is asked: no certificate is spent for nothing (a timer would spend one on
/// every run), the old pair and its directory stay as they were, and the `--exec` hook neither
/// runs nor becomes owed. A pair that stays is kept all the same.
#[test]
fn a_file_that_cannot_be_replaced_is_refused_before_the_ca_is_asked() {
    let t = Setup::new();
    let dir = t.dir();
    t.gencert_bare("node", &t.csr, &[]).assert().code(0);
    let pair = || crate::support::pair_bytes(dir, "node");
    let before = pair();
    let check = |expected_hint: &str, file: &str| {
        let files_before = listing(dir);
        let out = (t.gencert_bare("node", &t.csr, &["--exec", "echo ran >> hook.log"]))
            .assert()
            .code(8);
        let stderr = crate::support::one_line_stderr(&out);
        assert!(stderr.contains(file), "names {file}: {stderr}");
        assert!(stderr.contains(expected_hint), "{stderr}");
        assert_eq!(pair(), before, "the old pair stays");
        assert_eq!(listing(dir), files_before, "nothing written or left behind");
        assert!(!dir.join("hook.log").exists(), "the hook did not run");
        assert_eq!(t.server.signed_count(), 1, "the CA was not asked");
    };

    let elsewhere = tempfile::tempdir().unwrap();
    let source = elsewhere.path().join("node.pem");
    std::fs::copy(dir.join("node.pem"), &source).unwrap();
    let cert = dir.join("node.pem");
    let bind = Altered::by(
        &["mount", "--bind", s(&source), s(&cert)],
        &["umount", s(&cert)],
    );
    check("mount point (a bind-mounted file?)", "node.pem");
    drop(bind);

    let csr = dir.join("node.csr");
    for (flag, hint) in [("+i", "chattr -i"), ("+a", "append-only")] {
        let unflag = flag.replace('+', "-");
        let marked = Altered::by(&["chattr", flag, s(&csr)], &["chattr", &unflag, s(&csr)]);
        check(hint, "node.csr");
        drop(marked);
    }
    // No name in an append-only directory can change.
    let marked = Altered::by(&["chattr", "+a", s(dir)], &["chattr", "-a", s(dir)]);
    check("is immutable or append-only (lsattr -d)", "node-key.pem");
    drop(marked);

    // A read-only file system: the temporary file cannot be made, said without the random
    // name tempfile gives it.
    let ro = dir.join("ro");
    std::fs::create_dir(&ro).unwrap();
    let mounted = Altered::by(
        &["mount", "--bind", "-o", "ro", s(&ro), s(&ro)],
        &["umount", s(&ro)],
    );
    let out = (t.gencert_bare(s(&ro.join("n")), &t.csr, &[]))
        .assert()
        .code(8);
    let stderr = crate::support::one_line_stderr(&out);
    assert!(
        stderr.contains("no lock file can be made in") && stderr.contains("Read-only file system"),
        "{stderr}"
    );
    assert!(!stderr.contains(".nodecert-"), "{stderr}");
    drop(mounted);
    assert_eq!(t.server.signed_count(), 1);

    // A pair that stays needs no replacing: it is kept, and a hook an earlier run owes runs.
    let owed = dir.join(".node.pem.exec-pending");
    std::fs::write(&owed, "").unwrap();
    let marked = Altered::by(&["chattr", "+i", s(&csr)], &["chattr", "-i", s(&csr)]);
    let kept = ["--renew-before", "1h", "--exec", "echo ran >> hook.log"];
    t.gencert_bare("node", &t.csr, &kept).assert().code(0);
    drop(marked);
    assert_eq!(pair(), before, "kept");
    assert_eq!(
        std::fs::read_to_string(dir.join("hook.log")).unwrap(),
        "ran\n"
    );
    assert!(!owed.exists(), "the owed hook was paid");
    assert_eq!(t.server.signed_count(), 1);

    t.gencert_bare("node", &t.csr, &[]).assert().code(0);
    assert_ne!(pair()[0], before[0]);
}

/// A file that becomes impossible to replace while the CA signs (made immutable after the
/// checks, here while the request is held at a relay) fails the run with exit 8 after the CA
/// signed, and the files swapped before it are swapped back: the old pair stays whole, its key
/// matching its certificate. The `--exec` hook does not run and is not left owed by this run;
/// one an earlier run owes stays owed.
#[test]
fn a_file_that_becomes_unreplaceable_during_the_run_leaves_the_old_pair_whole() {
    let t = Setup::new();
    let dir = t.dir();
    t.gencert_bare("node", &t.csr, &[]).assert().code(0);
    let pair = || crate::support::pair_bytes(dir, "node");
    let before = pair();
    // An earlier run changed the pair but its hook failed: the hook is owed.
    let owed = dir.join(".node.pem.exec-pending");
    std::fs::write(&owed, "").unwrap();
    let files_before = listing(dir);

    let gate = crate::support::gate::Gate::start(t.server.addr());
    let profile = t.pki.request_profile(dir, &gate.url(), &t.pki.auth_key);
    let run = std::process::Command::new(assert_cmd::cargo::cargo_bin!("nodecert"))
        .current_dir(dir)
        .args(["gencert", "-config", s(&profile), "-tls-remote-ca"])
        .arg(t.pki.primary_ca())
        .args(["-bare", "node", "--exec", "echo ran >> hook.log", s(&t.csr)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    gate.wait_for_arrival();
    let csr = dir.join("node.csr");
    let immutable = Altered::by(&["chattr", "+i", s(&csr)], &["chattr", "-i", s(&csr)]);
    gate.open();
    let out = run.wait_with_output().unwrap();
    drop(immutable);

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("node.csr"), "{stderr}");
    assert!(stderr.contains("immutable"), "{stderr}");
    assert!(stderr.contains("were put back"), "{stderr}");
    assert_eq!(t.server.signed_count(), 2, "the CA signed");
    assert_eq!(pair(), before, "the old pair is whole again");
    assert_eq!(listing(dir), files_before, "no temporary files remain");
    assert!(!dir.join("hook.log").exists(), "the hook did not run");
    assert!(owed.exists(), "the earlier run's hook is still owed");
}

/// A change to the file system made for one test (a bind mount, `chattr +i`) by a command run
/// as root, undone by another command when dropped (also when the test panics).
struct Altered(Vec<String>);

impl Altered {
    fn by(command: &[&str], undo: &[&str]) -> Self {
        let status = std::process::Command::new(command[0])
            .args(&command[1..])
            .status()
            .unwrap();
        assert!(
            status.success(),
            "{command:?} failed (the suite runs as root on ext4)"
        );
        Self(undo.iter().map(|a| a.to_string()).collect())
    }
}

impl Drop for Altered {
    fn drop(&mut self) {
        let _ = std::process::Command::new(&self.0[0])
            .args(&self.0[1..])
            .status();
    }
}

/// Runs nodecert in `dir` with `args` and stdout on `stdout`; returns the exit code and stderr
/// (checked for secrets). assert_cmd always pipes stdout, hence a plain Command here.
fn run_with_stdout(
    dir: &std::path::Path,
    args: &[&str],
    stdout: std::process::Stdio,
) -> (i32, String) {
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin!("nodecert"))
        .current_dir(dir)
        .env_clear()
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    crate::support::secrets::assert_absent(&[], &output.stderr);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().expect("exits, not killed"), stderr)
}

/// A pipe whose reader is already gone: every write to it fails with EPIPE.
fn pipe_without_reader() -> std::process::Stdio {
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    writer.into()
}

/// stdout that takes nothing. A key and certificate printed to /dev/null or a closed stdout
/// would be lost with exit 0: refused before the CA is asked. A full disk behind `>` is exit 8
/// with one line, never a panic; a reader that went away (`| head -1`) leaves the command's
/// own exit status (certinfo --check's 12).
#[test]
fn stdout_that_takes_nothing_is_an_output_error_never_a_panic() {
    let t = Setup::new();
    let dir = t.dir();
    let ca = t.pki.primary_ca();
    let gencert = [
        "gencert",
        "-config",
        s(&t.profile),
        "-tls-remote-ca",
        s(&ca),
    ];
    let one_line = |(code, stderr): (i32, String), expected: i32, says: &str| {
        assert_eq!(code, expected, "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    };

    let listing_before = listing(dir);
    let to_stdout = [&gencert[..], &[s(&t.csr)]].concat();
    one_line(
        run_with_stdout(dir, &to_stdout, std::process::Stdio::null()),
        8,
        "standard output is closed or /dev/null",
    );
    assert_eq!(t.server.signed_count(), 0, "the CA is not asked");
    assert_eq!(listing(dir), listing_before);
    // /dev/full too, which refuses every write: before --jitter's wait, the key and the CA.
    let dev_full = || std::process::Stdio::from(std::fs::File::create("/dev/full").unwrap());
    let jittered = [&gencert[..], &["--jitter", "1h", s(&t.csr)]].concat();
    one_line(
        run_with_stdout(dir, &jittered, dev_full()),
        8,
        "standard output is /dev/full, which refuses every write",
    );
    assert_eq!(t.server.signed_count(), 0, "the CA is not asked");
    assert_eq!(listing(dir), listing_before);

    // sign likewise: the certificate would be signed for nothing. info's CA certificate can be
    // fetched again, and `info >/dev/null` is a health check, as with cfssl info.
    t.gencert_bare("held", &t.csr, &[]).assert().code(0);
    let signed = t.server.signed_count();
    let sign = [&["sign"][..], &gencert[1..], &["held.csr"]].concat();
    one_line(
        run_with_stdout(dir, &sign, std::process::Stdio::null()),
        8,
        "standard output is closed or /dev/null",
    );
    assert_eq!(t.server.signed_count(), signed, "the CA is not asked");
    let info = ["info", "-config", s(&t.profile), "-tls-remote-ca", s(&ca)];
    assert_eq!(
        run_with_stdout(dir, &info, std::process::Stdio::null()),
        (0, String::new())
    );

    let full = || std::process::Stdio::from(std::fs::File::create("/dev/full").unwrap());
    let report = [
        &gencert[..],
        &["-bare", "node", "--report", "json", s(&t.csr)],
    ]
    .concat();
    one_line(run_with_stdout(dir, &report, full()), 8, "<stdout>");
    assert!(dir.join("node.pem").exists(), "the pair is written first");

    for args in [
        &["certinfo", "node.pem"][..],
        &["certinfo", "--json", "node.pem"],
        &["info", "-config", s(&t.profile), "-tls-remote-ca", s(&ca)],
        &["--version"],
        &["--help"],
        &["gencert", "--help"],
    ] {
        one_line(
            run_with_stdout(dir, args, full()),
            8,
            "No space left on device",
        );
    }

    for args in [&["certinfo", "node.pem"][..], &["--help"]] {
        assert_eq!(
            run_with_stdout(dir, args, pipe_without_reader()),
            (0, String::new()),
            "{args:?}"
        );
    }
    // The certificate is valid for a year: within 9000h. Only the warning saying so is on
    // stderr; the description that stdout could not take is no error.
    let (code, stderr) = run_with_stdout(
        dir,
        &["certinfo", "--check", "9000h", "node.pem"],
        pipe_without_reader(),
    );
    assert_eq!(code, 12, "{stderr}");
    assert!(
        stderr.starts_with("nodecert: warning: node.pem: expires at ")
            && stderr.ends_with(", within --check 375d: renew it\n")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
}

/// Every file in `dir`, hidden ones (the pair's lock) included, with its bytes.
fn snapshot(dir: &std::path::Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| (e.file_name(), std::fs::read(e.path()).unwrap()))
        .collect();
    files.sort();
    files
}

/// An output that is another output or a file the run reads would succeed and leave the CA
/// file, the request profile, csr.json or the new key overwritten: refused as a usage error
/// before the lock is taken and the CA asked, every file as it was. So is a directory given as
/// an output (exit 8).
#[test]
fn an_output_that_is_an_input_or_another_output_is_refused() {
    let t = Setup::new();
    let dir = t.dir();
    let ca = dir.join("ca.pem");
    std::fs::copy(t.pki.primary_ca(), &ca).unwrap();
    let (profile, csr) = (s(&t.profile), s(&t.csr));
    // A profile whose auth key is a `file:` beside it: that file is an input too.
    std::fs::create_dir(dir.join("fk")).unwrap();
    let auth_key = write(&dir.join("fk"), "ak.hex", &t.pki.auth_key);
    std::fs::set_permissions(
        auth_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    t.pki
        .request_profile(&dir.join("fk"), &t.server.url(), "file:ak.hex");
    let file_key = "fk/request-profile.json";
    // A profile whose spare key (a second one a CA accepts, unused by this run) is a `file:`.
    std::fs::create_dir(dir.join("spare")).unwrap();
    write(
        &dir.join("spare"),
        "spare.hex",
        "00ff00ff00ff00ff00ff00ff00ff00ff",
    );
    t.pki.request_profile_with_keys(
        &dir.join("spare"),
        &t.server.url(),
        &[&t.pki.auth_key, "file:spare.hex"],
    );
    let gencert = ["gencert", "-config", profile, "-tls-remote-ca", "ca.pem"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["-bare", "ca", csr],
            "ca.pem is both the certificate output and the CA certificate (-tls-remote-ca)",
        ),
        (
            vec!["--cert", "b.pem", "--key", profile, csr],
            "is both the private key output and the request profile (-config)",
        ),
        (
            vec!["--cert", "a.pem", "--key", "a-key.pem", "--csr", csr, csr],
            "is both the CSR output and the csr.json input",
        ),
        (
            vec!["-bare", "m", "--metrics-file", "m-key.pem", csr],
            "m-key.pem is given for two outputs (the private key output and the metrics file",
        ),
        (
            vec!["-bare", "m", "--metrics-file", ".m.pem.lock", csr],
            ".m.pem.lock is given for two outputs (the pair's lock file and the metrics file",
        ),
        (
            vec!["-bare", "m", "--metrics-file", csr, csr],
            "is both the metrics file (--metrics-file) and the csr.json input",
        ),
        (
            vec!["--cert", "a.pem", "--key", "./a.pem", csr],
            "a.pem is given for two outputs",
        ),
    ];
    let before = snapshot(dir);
    let runs = cases
        .iter()
        .map(|(flags, says)| ([&gencert[..], flags].concat(), *says))
        .chain([
            (
                vec!["genkey", "--key", csr, "--csr", "x.csr", csr],
                "is both the private key output and the csr.json input",
            ),
            (
                vec![
                    "gencert",
                    "-config",
                    file_key,
                    "--cert",
                    "a.pem",
                    "--key",
                    "fk/ak.hex",
                    csr,
                ],
                "is both the private key output and an auth key file (file: in the profile)",
            ),
            (
                vec![
                    "gencert",
                    "-config",
                    "spare/request-profile.json",
                    "--cert",
                    "a.pem",
                    "--key",
                    "spare/spare.hex",
                    csr,
                ],
                "is both the private key output and an auth key file (file: in the profile)",
            ),
            (
                vec![
                    "gencert",
                    "-config",
                    file_key,
                    "-bare",
                    "m",
                    "--metrics-file",
                    "fk/ak.hex",
                    csr,
                ],
                "is both the metrics file (--metrics-file) and an auth key file",
            ),
            (
                vec!["sign", "-config", file_key, "--cert", "fk/ak.hex", csr],
                "is both the certificate output and an auth key file",
            ),
            (
                vec!["info", "-config", file_key, "--out", "./fk/ak.hex"],
                "is both the output (--out) and an auth key file",
            ),
            (
                vec![
                    "info",
                    "-config",
                    profile,
                    "-tls-remote-ca",
                    "ca.pem",
                    "--out",
                    "ca.pem",
                ],
                "ca.pem is both the output (--out) and the CA certificate (-tls-remote-ca)",
            ),
            (
                vec![
                    "sign",
                    "-config",
                    profile,
                    "-tls-remote-ca",
                    "ca.pem",
                    "--cert",
                    csr,
                    csr,
                ],
                "is both the certificate output and the CSR",
            ),
        ]);
    for (args, says) in runs {
        let out = nodecert(dir).args(&args).assert().code(2);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert_eq!(
            snapshot(dir),
            before,
            "{args:?}: nothing written, no lock file"
        );
    }
    // A device or FIFO given as an output (or reached through root's symlink) would be
    // replaced by a regular file (as root, `--csr /dev/null` would replace /dev/null): exit 8
    // before the CA is asked, the node as it was.
    let null = dir.join("null");
    nix::sys::stat::mknod(
        &null,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    std::os::unix::fs::symlink("null", dir.join("to-null")).unwrap();
    nix::unistd::mkfifo(
        &dir.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let before = snapshot(dir);
    for extra in [
        &["--cert", "a.pem", "--key", "a-key.pem", "--csr", "null"][..],
        &["--cert", "a.pem", "--key", "a-key.pem", "--csr", "to-null"],
        &["-bare", "m", "--metrics-file", "fifo"],
    ] {
        let mut args = gencert.to_vec();
        args.extend(extra);
        args.push(csr);
        nodecert(dir)
            .args(&args)
            .assert()
            .code(8)
            .stderr(contains("is not a regular file (a device, FIFO or socket)"));
        assert_eq!(snapshot(dir), before, "{extra:?}");
    }
    use std::os::unix::fs::FileTypeExt as _;
    assert!(
        std::fs::symlink_metadata(&null)
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert!(
        std::fs::symlink_metadata(dir.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );

    // A directory given as the certificate is an output error, with no lock file made either.
    std::fs::create_dir(dir.join("adir")).unwrap();
    let mut args = gencert.to_vec();
    args.extend(["--cert", "adir", "--key", "k.pem", csr]);
    nodecert(dir)
        .args(&args)
        .assert()
        .code(8)
        .stderr(contains("adir: is a directory"));
    assert_eq!(snapshot(dir), before, "no .adir.lock");
    assert_eq!(t.server.signed_count(), 0);
}

/// --metrics-file rewrites its file whole, so one that holds anything but nodecert's series (a
/// mistyped path: here another pair's private key) is refused before anything is done: exit 8,
/// the key as it was, no lock file beside it, the CA not asked.
#[test]
fn a_metrics_file_that_is_not_nodecerts_is_not_replaced() {
    let t = Setup::new();
    t.gencert_bare("other", &t.csr, &[]).assert().code(0);
    let key = t.dir().join("other-key.pem");
    let before = std::fs::read(&key).unwrap();
    let signed = t.server.signed_count();
    t.gencert(&["--metrics-file", s(&key)])
        .assert()
        .code(8)
        .stderr(contains("line 1 is not one of nodecert's metrics"));
    assert_eq!(std::fs::read(&key).unwrap(), before);
    assert!(!t.dir().join(".other-key.pem.lock").exists());
    assert!(!t.dir().join("node.pem").exists());
    assert_eq!(t.server.signed_count(), signed);
    // nodecert's own metrics file is merged into as before.
    let metrics = t.dir().join("nodecert.prom");
    t.gencert(&["--metrics-file", s(&metrics)]).assert().code(0);
    t.gencert(&["--metrics-file", s(&metrics), "--force"])
        .assert()
        .code(0);
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        text.contains("nodecert_certificate_not_after_seconds{name="),
        "{text}"
    );
    // JSON on stdout has no certificate file to name a series after: a usage error, no file.
    let stdout_metrics = t.dir().join("stdout.prom");
    gencert_in(t.dir(), &t.profile, &t.pki.primary_ca())
        .args(["--metrics-file", s(&stdout_metrics), s(&t.csr)])
        .assert()
        .code(2)
        .stderr(contains("--metrics-file needs a certificate file"));
    assert!(!stdout_metrics.exists());
}

/// An output path that leads through /proc to an open descriptor (/dev/stdout, /dev/fd/1) is
/// not a file to replace: a cron job's `--cert /dev/stdout >> cron.log` would otherwise swap its
/// log for the certificate. Exit 8, the log as it was, no key or lock file written.
#[test]
fn an_output_through_dev_stdout_is_refused() {
    let t = Setup::new();
    let log = t.dir().join("cron.log");
    for cert in ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"] {
        std::fs::write(&log, "old line\n").unwrap();
        let status = std::process::Command::new(assert_cmd::cargo::cargo_bin!("nodecert"))
            .current_dir(t.dir())
            .args(["gencert", "-config", s(&t.profile), "-tls-remote-ca"])
            .args([
                s(&t.pki.primary_ca()),
                "--cert",
                cert,
                "--key",
                "k.pem",
                s(&t.csr),
            ])
            .stdout(std::fs::OpenOptions::new().append(true).open(&log).unwrap())
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(status.status.code(), Some(8), "{cert}");
        let stderr = String::from_utf8_lossy(&status.stderr);
        assert!(
            stderr.contains("leads through /proc to an open file descriptor"),
            "{stderr}"
        );
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "old line\n",
            "{cert}"
        );
        assert!(!t.dir().join("k.pem").exists() && !t.dir().join(".cron.log.lock").exists());
    }
}

/// A path with a newline or a terminal escape in it is printed escaped: the error stays one
/// line (what cron mails and log collectors split on), and no escape reaches the terminal.
#[test]
fn control_characters_in_a_path_keep_the_error_one_line() {
    let t = Setup::new();
    let profile = "odd\nname\u{1b}[31m.json";
    let out = nodecert(t.dir())
        .args(["gencert", "-config", profile, s(&t.csr)])
        .assert()
        .code(3);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(r"odd\nname\u{1b}[31m.json: cannot read"),
        "{stderr}"
    );
}

/// A certificate or CSR output that names a file holding a private key (a mistyped path:
/// another pair's key) is refused before the CA is asked, the key as it was, nothing left
/// behind: gencert --cert, gencert --csr, sign --cert and info --out alike (the CA's signing
/// count shows the first three were not sent; info asks for no signature). A certificate file
/// that holds the pair's own key too is renewed.
#[test]
fn a_certificate_output_never_replaces_a_private_key() {
    let t = Setup::new();
    t.gencert_bare("other", &t.csr, &[]).assert().code(0);
    let key = t.dir().join("other-key.pem");
    let before = std::fs::read(&key).unwrap();
    let signed = t.server.signed_count();
    let ca = t.pki.primary_ca();
    let runs: [Vec<&str>; 4] = [
        vec![
            "gencert",
            "--cert",
            s(&key),
            "--key",
            "n-key.pem",
            s(&t.csr),
        ],
        vec![
            "gencert",
            "--cert",
            "n.pem",
            "--key",
            "n-key.pem",
            "--csr",
            s(&key),
            s(&t.csr),
        ],
        vec!["sign", "--cert", s(&key), "other.csr"],
        vec!["info", "--out", s(&key)],
    ];
    for run in runs {
        let (command, rest) = run.split_first().unwrap();
        nodecert(t.dir())
            .args([command, "-config", s(&t.profile), "-tls-remote-ca", s(&ca)])
            .args(rest)
            .assert()
            .code(8)
            .stderr(contains(
                "holds a private key (not this pair's), and this output is a",
            ));
        assert_eq!(std::fs::read(&key).unwrap(), before, "{run:?}");
    }
    assert_eq!(t.server.signed_count(), signed);
    let left: Vec<String> = crate::support::listing(t.dir())
        .into_iter()
        .filter(|name| name.contains("n-key") || name.starts_with(".n."))
        .collect();
    assert!(
        left.is_empty(),
        "nothing of the refused runs is left: {left:?}"
    );
    // A certificate file that also holds the pair's own key (a hook appends it, for a server
    // that wants both in one file) is renewed as before.
    let combined = ["--exec", "cat other-key.pem >> other.pem"];
    t.gencert_bare("other", &t.csr, &combined).assert().code(0);
    t.gencert_bare("other", &t.csr, &combined).assert().code(0);
    assert_eq!(t.server.signed_count(), signed + 2);
}
