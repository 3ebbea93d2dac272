use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use predicates::prelude::PredicateBooleanExt as _;
use predicates::str::contains;

use crate::support::gencert_in;
use crate::support::{
    Pki, Setup, assert_key_matches, assert_verifies, listing, mode, node_csr, nodecert,
    one_line_stderr, s, tool, write,
};

/// `(bytes, inode, mtime)` of a file: "touched" means any of them changed.
fn fingerprint(path: &Path) -> (Vec<u8>, u64, i64) {
    let meta = std::fs::metadata(path).unwrap();
    (
        std::fs::read(path).unwrap(),
        meta.ino(),
        meta.mtime_nsec() + meta.mtime() * 1_000_000_000,
    )
}

fn report(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

/// The `--report json` object of a run on `t`'s pair with `args`, which must succeed.
fn run_report(t: &Setup, args: &[&str]) -> serde_json::Value {
    let mut args = args.to_vec();
    args.extend(["--report", "json"]);
    report(&t.gencert(&args).assert().code(0).get_output().stdout)
}

/// The reason of a `--renew-before 720h` run with `extra` flags, which must renew.
fn renewal_reason(t: &Setup, extra: &[&str]) -> String {
    let mut args = vec!["--renew-before", "720h"];
    args.extend_from_slice(extra);
    let r = run_report(t, &args);
    assert_eq!(r["action"], "renewed", "{r}");
    r["reason"].as_str().unwrap().to_string()
}

/// The action of a `--renew-before 720h` run with `extra` flags.
fn renewal_action(t: &Setup, extra: &[&str]) -> String {
    let mut args = vec!["--renew-before", "720h"];
    args.extend_from_slice(extra);
    run_report(t, &args)["action"].as_str().unwrap().to_string()
}

/// Starts `nodecert gencert` on `t`'s pair with `extra` flags without waiting for it (stdout
/// and stderr piped), for runs that overlap or are killed.
fn spawn_gencert(t: &Setup, extra: &[&str]) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("nodecert"))
        .current_dir(t.dir())
        .args([
            "gencert",
            "-config",
            s(&t.profile),
            "-tls-remote-ca",
            s(&t.pki.primary_ca()),
            "-bare",
            "node",
        ])
        .args(extra)
        .arg(s(&t.csr))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The serial of `node.pem` in `dir`, as openssl prints it.
fn serial(dir: &Path) -> String {
    crate::support::tool(
        dir,
        "openssl",
        &["x509", "-in", "node.pem", "-noout", "-serial"],
    )
}

/// A second run with --renew-before sends nothing to the CA and touches no file; the JSON
/// report says what happened each time. "Nothing" is checked on the CA's side by every line it
/// logs about a client (a signature, a refusal, a failed or abandoned TLS handshake), not only
/// signatures, and on nodecert's side by its debug log of each request.
#[test]
fn second_run_is_unchanged_and_contacts_no_one() {
    let t = Setup::new();
    let first = run_report(&t, &["--renew-before", "720h"]);
    assert_eq!(first["changed"], true);
    assert_eq!(first["action"], "issued");
    assert_eq!(first["cert"], "node.pem");
    assert_eq!(first["key"], "node-key.pem");
    assert!(first["not_after"].as_str().unwrap().ends_with('Z'));
    assert_eq!(t.server.signed_count(), 1);
    let requests = t.server.request_log();
    assert!(
        requests.iter().any(|l| l.contains("signed certificate")),
        "the CA's log shows the first request: {requests:?}"
    );
    let files = ["node.pem", "node-key.pem", "node.csr"];
    let before: Vec<_> = files
        .iter()
        .map(|f| fingerprint(&t.dir().join(f)))
        .collect();

    let second = run_report(&t, &["--renew-before", "720h"]);
    assert_eq!(second["changed"], false);
    assert_eq!(second["action"], "unchanged");
    assert_eq!(second["serial"], first["serial"]);
    assert!(
        second["reason"].as_str().unwrap().contains("over 30d"),
        "{second}"
    );
    assert_eq!(t.server.signed_count(), 1, "no request reached the CA");
    let after: Vec<_> = files
        .iter()
        .map(|f| fingerprint(&t.dir().join(f)))
        .collect();
    assert_eq!(before, after, "no file was touched");

    // Human summary: an unchanged run is silent above info level, a change is not.
    t.gencert(&["--renew-before", "720h", "-loglevel", "2"])
        .assert()
        .code(0)
        .stderr("");
    t.gencert(&["--renew-before", "720h", "-loglevel", "0"])
        .assert()
        .code(0)
        .stderr(contains("kept node.pem").and(contains("POST ").not()));
    assert_eq!(
        t.server.request_log(),
        requests,
        "an unchanged run reached the CA"
    );
    t.gencert(&["--renew-before", "720h", "--force", "-loglevel", "2"])
        .assert()
        .code(0)
        .stderr(contains("renewed node.pem (--force)"));
    assert_eq!(t.server.signed_count(), 2);

    // With --log-format json the summary is a JSON line like every other one.
    for extra in [&[][..], &["--force"]] {
        let out = t
            .gencert(&[&["--renew-before", "720h", "--log-format", "json"], extra].concat())
            .assert()
            .code(0)
            .get_output()
            .clone();
        let stderr = String::from_utf8(out.stderr).unwrap();
        let line: serde_json::Value = serde_json::from_str(stderr.trim_end())
            .unwrap_or_else(|e| panic!("not one JSON line ({e}): {stderr:?}"));
        let verb = if extra.is_empty() { "kept" } else { "renewed" };
        assert_eq!(line["level"], "info", "{line}");
        assert!(
            line["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{verb} node.pem")),
            "{line}"
        );
    }
}

/// Renewal is due when the certificate expires within the threshold, when the requested SANs
/// or subject changed, and when key and certificate do not match.
#[test]
fn renews_when_due_or_when_the_request_changed() {
    let t = Setup::new();
    t.gencert(&["--renew-before", "720h"]).assert().code(0);
    let reason = |extra: &[&str]| renewal_reason(&t, extra);
    // The server issues for 8760h, backdated 5 minutes (cfssl's default): 8759h58m is more
    // than is left (about 8759h55m) and less than the lifetime, so the pair is due.
    let out = t
        .gencert(&["--renew-before", "8759h58m", "--report", "json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    assert_eq!(report(&out)["action"], "renewed");
    // Rounded to days both would read 364d: said to the minute and second instead.
    let why = report(&out)["reason"].as_str().unwrap().to_string();
    assert!(
        why.starts_with("expires in 364d23h5") && why.ends_with(", under 364d23h58m"),
        "{why}"
    );
    assert!(
        reason(&["-hostname", "node1.example.com,127.0.0.1,extra.example.com"])
            .contains("DNS:extra.example.com")
    );
    assert!(reason(&["-cn", "other"]).contains("CN changed"));
    // Put another key next to the certificate: the mismatch is found and healed.
    nodecert(t.dir())
        .args(["genkey", "-bare", "other", s(&t.csr)])
        .assert()
        .code(0);
    std::fs::copy(t.dir().join("other-key.pem"), t.dir().join("node-key.pem")).unwrap();
    assert!(reason(&[]).contains("key does not match"));
    assert_key_matches(
        t.dir(),
        &t.dir().join("node-key.pem"),
        &t.dir().join("node.pem"),
    );
    // A key type change in csr.json.
    std::fs::write(&t.csr, node_csr("rsa", 2048)).unwrap();
    assert!(reason(&[]).contains("key type changed"));
    assert_eq!(t.server.signed_count(), 6);
}

/// A change in csr.json's subject names (C, ST, L, O, OU; a value changed, added or dropped)
/// renews, naming the attribute and the new value; the renewed pair then stays, including with a
/// multi-valued O.
#[test]
fn renews_when_a_subject_name_changes() {
    let t = Setup::new();
    t.gencert(&["--renew-before", "720h"]).assert().code(0);
    let names = |names: &str| {
        format!(
            r#"{{"CN":"node1.example.com","hosts":["node1.example.com","127.0.0.1"],"names":{names}}}"#
        )
    };
    // Each step changes one attribute of the one before; `values` are what it now asks for.
    for (names_json, field, values) in [
        (
            r#"[{"C":"DE","ST":"CA","L":"San Francisco","O":"Example","OU":"Nodes"}]"#,
            "C",
            &["DE"][..],
        ),
        (
            r#"[{"C":"DE","ST":"Bavaria","L":"San Francisco","O":"Example","OU":"Nodes"}]"#,
            "ST",
            &["Bavaria"],
        ),
        (
            r#"[{"C":"DE","ST":"Bavaria","L":"Munich","O":"Example","OU":"Nodes"}]"#,
            "L",
            &["Munich"],
        ),
        (
            r#"[{"C":"DE","ST":"Bavaria","L":"Munich","O":"Other","OU":"Nodes"}]"#,
            "O",
            &["Other"],
        ),
        (
            r#"[{"C":"DE","ST":"Bavaria","L":"Munich","O":"Other","OU":"Workers"}]"#,
            "OU",
            &["Workers"],
        ),
        (
            r#"[{"C":"DE","ST":"Bavaria","L":"Munich","O":"Other","OU":"Workers"},{"O":"system:masters"}]"#,
            "O",
            &["Other", "system:masters"],
        ),
        (
            r#"[{"C":"DE","ST":"Bavaria","L":"Munich","O":"Other"},{"O":"system:masters"}]"#,
            "OU",
            &[],
        ),
    ] {
        std::fs::write(&t.csr, names(names_json)).unwrap();
        let reason = renewal_reason(&t, &[]);
        assert!(
            reason.starts_with(&format!("subject {field} changed: "))
                && values.iter().all(|v| reason.contains(&format!("{v:?}"))),
            "{names_json}: {reason}"
        );
        assert_eq!(
            renewal_action(&t, &[]),
            "unchanged",
            "{names_json}: the renewed pair stays"
        );
    }
    assert_eq!(t.server.signed_count(), 8);
}

/// A pair that stays gets back a deleted CSR file (cfssljson's three files), made from the
/// kept key and the request: valid, for that key, with the requested subject and SANs; the CA
/// is not asked, the other two files are not touched, and the run reports a change.
#[test]
fn a_kept_pair_gets_its_deleted_csr_back() {
    let t = Setup::new();
    t.gencert(&["--renew-before", "720h"]).assert().code(0);
    let csr = t.dir().join("node.csr");
    std::fs::remove_file(&csr).unwrap();
    let kept = ["node.pem", "node-key.pem"].map(|f| fingerprint(&t.dir().join(f)));
    let report = run_report(&t, &["--renew-before", "720h"]);
    assert_eq!(report["action"], "unchanged", "{report}");
    assert_eq!(report["changed"], true, "{report}");
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .ends_with("; node.csr restored"),
        "{report}"
    );
    assert_eq!(
        kept,
        ["node.pem", "node-key.pem"].map(|f| fingerprint(&t.dir().join(f)))
    );
    assert_eq!(mode(&csr), 0o644);
    let text = tool(
        t.dir(),
        "openssl",
        &["req", "-in", "node.csr", "-verify", "-noout", "-text"],
    );
    assert!(
        text.contains("CN = node1.example.com")
            && text.contains("DNS:node1.example.com, IP Address:127.0.0.1"),
        "{text}"
    );
    let from_csr = tool(
        t.dir(),
        "openssl",
        &["req", "-in", "node.csr", "-noout", "-pubkey"],
    );
    let from_key = tool(
        t.dir(),
        "openssl",
        &["pkey", "-in", "node-key.pem", "-pubout"],
    );
    assert_eq!(from_csr, from_key);
    assert_eq!(t.server.signed_count(), 1, "the CA was not asked");
    // Once there, it is left alone.
    let before = fingerprint(&csr);
    assert_eq!(
        run_report(&t, &["--renew-before", "720h"])["changed"],
        false
    );
    assert_eq!(fingerprint(&csr), before);
}

/// csr.json's serialnumber is compared like the subject names above (added, changed, dropped).
/// E is compared only when the certificate carries it: the 2016 multirootca drops E, and a pair
/// must not be renewed on every run for what its CA leaves out.
#[test]
fn renews_when_the_serialnumber_changes_not_for_what_the_ca_drops() {
    let t = Setup::new();
    let csr = |extra: &str| {
        format!(r#"{{"CN":"node1.example.com","hosts":["node1.example.com","127.0.0.1"]{extra}}}"#)
    };
    std::fs::write(&t.csr, csr("")).unwrap();
    t.gencert(&["--renew-before", "720h"]).assert().code(0);
    std::fs::write(&t.csr, csr(r#","serialnumber":"abc123""#)).unwrap();
    assert_eq!(
        renewal_reason(&t, &[]),
        r#"subject serialNumber changed: [] on disk, ["abc123"] requested"#
    );
    std::fs::write(&t.csr, csr(r#","serialnumber":"zzz999""#)).unwrap();
    assert_eq!(
        renewal_reason(&t, &[]),
        r#"subject serialNumber changed: ["abc123"] on disk, ["zzz999"] requested"#
    );
    let with_e = r#","serialnumber":"zzz999","names":[{"E":"ops@example.com"}]"#;
    std::fs::write(&t.csr, csr(with_e)).unwrap();
    assert_eq!(renewal_action(&t, &[]), "unchanged");
    std::fs::write(&t.csr, csr("")).unwrap();
    assert_eq!(
        renewal_reason(&t, &[]),
        r#"subject serialNumber changed: ["zzz999"] on disk, [] requested"#
    );
    assert_eq!(renewal_action(&t, &[]), "unchanged");
    assert_eq!(t.server.signed_count(), 4);
}

/// With -tls-remote-ca, the pair's issuer must be a pinned CA: a certificate from another root
/// (here the multirootca's `secondary` label, over TLS pinned to the primary CA that issued the
/// server's certificate) is renewed, with a reason saying so; a pin file holding several CAs
/// keeps a certificate from any of them.
#[test]
fn renews_when_the_issuer_is_not_pinned() {
    let t = Setup::new();
    let bundle = t.dir().join("bundle.pem");
    std::fs::write(
        &bundle,
        [t.pki.primary_ca(), t.pki.secondary_ca()]
            .iter()
            .map(|ca| std::fs::read_to_string(ca).unwrap())
            .collect::<String>(),
    )
    .unwrap();
    let with_pin = |ca: &Path, extra: &[&str]| {
        let mut cmd = gencert_in(t.dir(), &t.profile, ca);
        cmd.args([
            "-bare",
            "node",
            "--renew-before",
            "720h",
            "--report",
            "json",
        ]);
        cmd.args(extra).arg(s(&t.csr));
        report(&cmd.assert().code(0).get_output().stdout)
    };
    let first = with_pin(&t.pki.primary_ca(), &["-label", "secondary"]);
    assert_eq!(first["action"], "issued", "{first}");
    assert_verifies(t.dir(), &t.pki.secondary_ca(), &t.dir().join("node.pem"));
    // The secondary root is in the bundle: the pair stays.
    for extra in [&["-label", "secondary"][..], &[]] {
        let r = with_pin(&bundle, extra);
        assert_eq!(r["action"], "unchanged", "{r}");
    }
    assert_eq!(t.server.signed_count(), 1);
    // Only the primary root is pinned: renewed, and the reason names the pin.
    let renewed = with_pin(&t.pki.primary_ca(), &[]);
    assert_eq!(renewed["action"], "renewed", "{renewed}");
    assert!(
        renewed["reason"].as_str().unwrap().contains("pinned"),
        "{renewed}"
    );
    assert_verifies(t.dir(), &t.pki.primary_ca(), &t.dir().join("node.pem"));
    assert_eq!(
        with_pin(&t.pki.primary_ca(), &[])["action"],
        "unchanged",
        "the renewed pair stays"
    );
    assert_eq!(t.server.signed_count(), 2);
}

/// The hook runs exactly once per change, with the paths in its environment, never when
/// unchanged; its failure has its own exit code and the new certificate stays.
#[test]
fn exec_hook_runs_once_per_change() {
    let t = Setup::new();
    let hook = r#"echo "$NODECERT_CERT $NODECERT_KEY" >> hook.log"#;
    for _ in 0..3 {
        t.gencert(&["--renew-before", "720h", "--exec", hook])
            .assert()
            .code(0);
    }
    t.gencert(&["--renew-before", "720h", "--force", "--exec", hook])
        .assert()
        .code(0);
    let log = std::fs::read_to_string(t.dir().join("hook.log")).unwrap();
    let paths = format!(
        "{} {}\n",
        s(&t.dir().join("node.pem")),
        s(&t.dir().join("node-key.pem"))
    );
    assert_eq!(log, paths.repeat(2), "absolute paths, once per change");

    let serial_before = serial(t.dir());
    t.gencert(&["--force", "--exec", "exit 3"])
        .assert()
        .code(10)
        .stderr(contains("exited with status 3").and(contains("the new certificate is in place")));
    let serial_after = serial(t.dir());
    assert_ne!(serial_before, serial_after, "the new certificate stays");
    assert_verifies(t.dir(), &t.pki.primary_ca(), &t.dir().join("node.pem"));

    // A hook that hangs is stopped at --exec-timeout, with what it started (its process
    // group, a member that ignores SIGTERM included, though the shell itself exits on it), and
    // the run fails with the hook's code; the lock is free for the next run.
    let started = std::time::Instant::now();
    t.gencert(&[
        "--force",
        "--exec-timeout",
        "1s",
        "--exec",
        "sleep 36.123 & (trap '' TERM; sleep 36.125) & sleep 36.124",
    ])
    .assert()
    .code(10)
    .stderr(contains("did not finish within 1s and was stopped"));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let left = std::process::Command::new("pgrep")
        .args(["-f", "sleep 36.12[345]"])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "hook processes survived: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    t.gencert(&["--lock-timeout", "1s"]).assert().code(0);
}

/// --reuse-key keeps the key even when csr.json now asks for another key type (the key type
/// is then whatever the key is), and says so.
#[test]
fn reuse_key_keeps_a_key_of_another_type_and_says_so() {
    let t = Setup::new();
    t.gencert(&[]).assert().code(0);
    let key_before = std::fs::read(t.dir().join("node-key.pem")).unwrap();
    let rsa = crate::support::write(t.dir(), "rsa-csr.json", &node_csr("rsa", 2048));
    t.gencert_bare("node", &rsa, &["--reuse-key", "--force"])
        .assert()
        .code(0)
        .stderr(contains(
            "node-key.pem is ecdsa-256, not the rsa-2048 csr.json asks for: --reuse-key keeps it",
        ));
    assert_eq!(
        std::fs::read(t.dir().join("node-key.pem")).unwrap(),
        key_before
    );
    assert_eq!(t.server.signed_count(), 2);
}

/// --reuse-key keeps the key file byte for byte and certifies it again.
#[test]
fn reuse_key_keeps_the_private_key() {
    let t = Setup::new();
    t.gencert(&[]).assert().code(0);
    let key_before = std::fs::read(t.dir().join("node-key.pem")).unwrap();
    let cert_before = std::fs::read(t.dir().join("node.pem")).unwrap();
    t.gencert(&["--reuse-key", "--force"]).assert().code(0);
    assert_eq!(
        std::fs::read(t.dir().join("node-key.pem")).unwrap(),
        key_before
    );
    assert_ne!(
        std::fs::read(t.dir().join("node.pem")).unwrap(),
        cert_before
    );
    assert_key_matches(
        t.dir(),
        &t.dir().join("node-key.pem"),
        &t.dir().join("node.pem"),
    );

    // A key file that cannot be reused fails the run (exit 3) and stays as it is, the CA not
    // asked: a new key would silently break whatever pinned the old one. A symlink someone
    // else planted at the key path (pointing at another key, say the CA's) is not followed
    // (exit 8, as for any output).
    let signed = t.server.signed_count();
    let key = t.dir().join("node-key.pem");
    let other = t.dir().join("other-key.pem");
    std::fs::rename(&key, &other).unwrap();
    std::os::unix::fs::symlink(&other, &key).unwrap();
    std::os::unix::fs::lchown(&key, Some(65534), None).unwrap();
    t.gencert(&["--reuse-key", "--force"])
        .assert()
        .code(8)
        .stderr(contains("node-key.pem: it is a symlink of uid 65534"));
    assert!(key.is_symlink());
    assert_eq!(std::fs::read(&other).unwrap(), key_before);
    let refused = |says: &str| {
        let out = t.gencert(&["--reuse-key", "--force"]).assert().code(3);
        let stderr = crate::support::one_line_stderr(&out);
        assert!(
            stderr.contains("node-key.pem: --reuse-key cannot reuse it: "),
            "{stderr}"
        );
        assert!(stderr.contains(says), "{stderr}");
    };
    std::fs::remove_file(&key).unwrap();
    tool(
        t.dir(),
        "openssl",
        &[
            "pkcs8",
            "-topk8",
            "-in",
            "other-key.pem",
            "-out",
            "node-key.pem",
            "-passout",
            "pass:x",
            "-v2",
            "aes-256-cbc",
        ],
    );
    let encrypted = std::fs::read(&key).unwrap();
    refused("ENCRYPTED PRIVATE KEY");
    assert_eq!(std::fs::read(&key).unwrap(), encrypted);
    assert_eq!(t.server.signed_count(), signed);

    // A PKCS#8 key is reused and stays PKCS#8, byte for byte.
    std::fs::remove_file(&key).unwrap();
    tool(
        t.dir(),
        "openssl",
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "other-key.pem",
            "-out",
            "node-key.pem",
        ],
    );
    let pkcs8 = std::fs::read(&key).unwrap();
    assert!(pkcs8.starts_with(b"-----BEGIN PRIVATE KEY-----"));
    t.gencert(&["--reuse-key", "--force"]).assert().code(0);
    assert_eq!(std::fs::read(&key).unwrap(), pkcs8);
    assert_key_matches(t.dir(), &key, &t.dir().join("node.pem"));
}

/// --owner, --mode and --key-mode; a key mode that exposes the key is refused.
#[test]
fn owner_and_modes() {
    let t = Setup::new();
    t.gencert(&["--owner", "0:0", "--mode", "0640", "--key-mode", "0640"])
        .assert()
        .code(0);
    assert_eq!(mode(&t.dir().join("node.pem")), 0o640);
    assert_eq!(mode(&t.dir().join("node-key.pem")), 0o640);
    assert_eq!(
        std::fs::metadata(t.dir().join("node-key.pem"))
            .unwrap()
            .gid(),
        0
    );
    // Another owner than root (nobody:nogroup, by number): every file of the pair is given to
    // it, with --mode for the certificate and CSR and the key kept at 0600.
    t.gencert(&["--owner", "65534:65534", "--mode", "0444"])
        .assert()
        .code(0);
    for (file, want) in [
        ("node.pem", 0o444),
        ("node.csr", 0o444),
        ("node-key.pem", 0o600),
    ] {
        let meta = std::fs::metadata(t.dir().join(file)).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o777),
            (65534, 65534, want),
            "{file}: owner, group, mode"
        );
    }
    assert_key_matches(
        t.dir(),
        &t.dir().join("node-key.pem"),
        &t.dir().join("node.pem"),
    );
    t.gencert(&["--key-mode", "0644"])
        .assert()
        .code(2)
        .stderr(contains("would expose the private key"));
    t.gencert(&["--key-mode", "0700"])
        .assert()
        .code(2)
        .stderr(contains("makes the private key executable"));
    t.gencert(&["--owner", "no-such-user-nodecert"])
        .assert()
        .code(2)
        .stderr(contains("no user"));
}

/// Without --owner, a renewed file keeps the group of the file it replaces (as cfssljson's
/// in-place write does), so a key shared with a service group through --key-mode 0640 stays
/// readable by it; but only when that file is the running user's own (or, for root, the
/// directory owner's: `owners::root_and_the_pairs_owner_take_turns`).
#[test]
fn a_replaced_file_keeps_its_group() {
    use std::os::unix::fs::MetadataExt as _;
    let t = Setup::new();
    let dir = t.dir();
    let group = |file: &str| std::fs::metadata(dir.join(file)).unwrap().gid();
    t.gencert(&["--key-mode", "0640"]).assert().code(0);
    for file in ["node.pem", "node-key.pem"] {
        std::os::unix::fs::chown(dir.join(file), None, Some(65534)).unwrap();
    }
    let key_before = std::fs::read(dir.join("node-key.pem")).unwrap();
    t.gencert(&["--key-mode", "0640"]).assert().code(0);
    assert_ne!(std::fs::read(dir.join("node-key.pem")).unwrap(), key_before);
    assert_eq!((group("node.pem"), group("node-key.pem")), (65534, 65534));
    assert_eq!(
        group("node.csr"),
        0,
        "the CSR had root's group: it keeps it"
    );
    assert_eq!(mode(&dir.join("node-key.pem")), 0o640);

    // A file someone else owns, who does not own the directory: neither its owner nor its
    // group is followed, and root says so.
    std::os::unix::fs::chown(dir.join("node-key.pem"), Some(65534), Some(65534)).unwrap();
    t.gencert(&["--key-mode", "0640"])
        .assert()
        .code(0)
        .stderr(contains(
            "node-key.pem: belonged to uid 65534; the new file is root's (root keeps the owner \
             only of a pair of the directory owner's that the pinned CA issued for this CN, \
             checked with -tls-remote-ca): set --owner 65534 to keep it theirs",
        ));
    let key = std::fs::metadata(dir.join("node-key.pem")).unwrap();
    assert_eq!((key.uid(), key.gid()), (0, 0));

    // --owner USER without a group leaves the group as chown does: the replaced file's.
    for owner in ["65534:65534", "65534"] {
        t.gencert(&["--owner", owner, "--key-mode", "0640", "--force"])
            .assert()
            .code(0);
        let key = std::fs::metadata(dir.join("node-key.pem")).unwrap();
        assert_eq!((key.uid(), key.gid()), (65534, 65534), "--owner {owner}");
    }
}

/// A renewal that replaces a key its group could read (0640, for a service) says so, and names
/// the flag that keeps that access: the new key is --key-mode's (0600 by default), where
/// cfssljson kept the old file's mode. With --key-mode 0640 the new key is 0640, quietly.
#[test]
fn replacing_a_group_readable_key_says_how_to_keep_it() {
    let t = Setup::new();
    t.gencert(&[]).assert().code(0);
    let key = t.dir().join("node-key.pem");
    let set = |mode| {
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap()
    };
    let mode = || std::fs::metadata(&key).unwrap().mode() & 0o777;
    set(0o640);
    t.gencert(&["--force"]).assert().code(0).stderr(contains(
        "had mode 0640, wider than --key-mode 0600: the new key will be 0600 \
         (set --key-mode 0640 if its group must read it)",
    ));
    assert_eq!(mode(), 0o600);
    set(0o640);
    t.gencert(&["--force", "--key-mode", "0640"])
        .assert()
        .code(0)
        .stderr("");
    assert_eq!(mode(), 0o640);
}

/// A pair that stays is brought to what --owner, --mode and --key-mode ask, its contents and
/// the CA untouched: config management converges on the next run, not at the next renewal. A
/// key someone widened is narrowed with a warning; --mode applies only when given.
#[test]
fn a_kept_pair_converges_to_owner_and_modes() {
    let t = Setup::new();
    let keep = |extra: &[&str]| {
        let mut args = vec!["--renew-before", "720h"];
        args.extend_from_slice(extra);
        t.gencert(&args)
    };
    keep(&[]).assert().code(0);
    let files = ["node.pem", "node.csr", "node-key.pem"];
    let contents = || files.map(|f| std::fs::read(t.dir().join(f)).unwrap());
    let state = || {
        files.map(|f| {
            let meta = std::fs::metadata(t.dir().join(f)).unwrap();
            (meta.uid(), meta.gid(), meta.mode() & 0o777)
        })
    };
    let before = contents();
    let key = t.dir().join("node-key.pem");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    keep(&[])
        .assert()
        .code(0)
        .stderr(contains("wider than --key-mode 0600: narrowed"));
    assert_eq!(state(), [(0, 0, 0o644), (0, 0, 0o644), (0, 0, 0o600)]);
    // For config management that is a change: `changed` in the report, the pair kept.
    keep(&[
        "--owner",
        "65534:65534",
        "--mode",
        "0640",
        "--report",
        "json",
    ])
    .assert()
    .code(0)
    .stdout(contains(r#""changed":true"#).and(contains(r#""action":"unchanged""#)))
    .stdout(contains("owner or modes set as the flags ask"));
    assert_eq!(
        state(),
        [
            (65534, 65534, 0o640),
            (65534, 65534, 0o640),
            (65534, 65534, 0o600)
        ]
    );
    // Already as asked: nothing to say. Without --mode, a certificate's mode is left alone.
    keep(&["--owner", "65534:65534", "--mode", "0640", "-loglevel", "2"])
        .assert()
        .code(0)
        .stderr("");
    keep(&["--owner", "65534:65534", "--report", "json"])
        .assert()
        .code(0)
        .stdout(contains(r#""changed":false"#));
    // Without --owner, root takes back the lock file it had given to nobody (nobody may not
    // write this directory: only the user --owner names, or the directory's owner, may hold
    // it), and says so once; the pair stays nobody's.
    keep(&["-loglevel", "2"]).assert().code(0).stderr(contains(
        "belonged to uid 65534, who neither owns the directory nor is --owner: given to uid 0",
    ));
    keep(&["-loglevel", "2"]).assert().code(0).stderr("");
    assert_eq!(state()[0], (65534, 65534, 0o640));
    // A file with another name (a hard link planted beside it) is not chowned or chmodded.
    std::fs::hard_link(t.dir().join("node.csr"), t.dir().join("linked")).unwrap();
    keep(&["--owner", "0:0"]).assert().code(0).stderr(contains(
        "node.csr: has 2 names (hard links), so its owner and mode are left as they are",
    ));
    assert_eq!(state().map(|(uid, _, _)| uid), [0, 65534, 0]);
    std::fs::remove_file(t.dir().join("linked")).unwrap();
    assert_eq!(contents(), before);
    assert_eq!(t.server.signed_count(), 1);
}

/// --retries retries what is worth retrying, with backoff, and then gives the same exit code.
#[test]
fn retries_back_off_then_give_up() {
    let t = Setup::new();
    let started = Instant::now();
    t.gencert(&["-remote", "127.0.0.1:1", "--retries", "2"])
        .assert()
        .code(6)
        .stderr(contains("retry 1 of 2").and(contains("retry 2 of 2")));
    assert!(started.elapsed() < Duration::from_secs(10));
    // A refusal is not retried.
    let wrong = t
        .pki
        .request_profile(&t.dir().join("."), &t.server.url(), "00");
    gencert_in(t.dir(), &wrong, &t.pki.primary_ca())
        .args(["--retries", "3", "-bare", "x", s(&t.csr)])
        .assert()
        .code(5)
        .stderr(contains("retry").not());
}

/// --jitter waits only when a certificate is due.
#[test]
fn jitter_only_when_due() {
    let t = Setup::new();
    t.gencert(&["--renew-before", "720h"]).assert().code(0);
    let started = Instant::now();
    t.gencert(&["--renew-before", "720h", "--jitter", "1h", "-loglevel", "0"])
        .assert()
        .code(0)
        .stderr(contains("(--jitter)").not());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "an unchanged run does not wait"
    );
}

/// --jitter on a run that is due waits a random time up to the bound before contacting the CA:
/// the debug log says how long, the run takes at least that long, and the waits differ.
#[test]
fn jitter_waits_when_due() {
    let t = Setup::new();
    let bound = Duration::from_millis(1500);
    let mut waits = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let out = t
            .gencert(&["--force", "--jitter", "1500ms", "-loglevel", "0"])
            .assert()
            .code(0)
            .get_output()
            .stderr
            .clone();
        let elapsed = started.elapsed();
        let stderr = String::from_utf8_lossy(&out);
        let wait = stderr
            .lines()
            .find_map(|l| {
                l.strip_prefix("nodecert: debug: waiting ")?
                    .strip_suffix(" (--jitter) before contacting the CA")
            })
            .unwrap_or_else(|| panic!("no jitter wait logged:\n{stderr}"));
        let wait = humantime::parse_duration(wait).unwrap();
        assert!(wait <= bound, "waited {wait:?}, over the bound");
        assert!(elapsed >= wait, "logged a {wait:?} wait, ran {elapsed:?}");
        waits.push(wait);
    }
    assert!(
        waits.iter().any(|w| *w != waits[0]),
        "not random: {waits:?}"
    );
    assert_eq!(t.server.signed_count(), 3);
}

/// --jitter sleeps before taking the pair's lock: while one run waits out its jitter, another
/// run on the same pair (a config-management run, say) goes through at once instead of timing
/// out as busy.
#[test]
fn jitter_does_not_hold_the_pair_lock() {
    use std::io::BufRead as _;
    let t = Setup::new();
    // Retry until the random wait is long enough to run a whole second gencert inside it.
    let (mut sleeper, wait) = (0..8)
        .find_map(|_| {
            let mut child = spawn_gencert(&t, &["--force", "--jitter", "8s", "-loglevel", "0"]);
            let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
            let wait = stderr.lines().map_while(Result::ok).find_map(|l| {
                let wait = l
                    .strip_prefix("nodecert: debug: waiting ")?
                    .strip_suffix(" (--jitter) before contacting the CA")?;
                Some(humantime::parse_duration(wait).unwrap())
            });
            match wait {
                Some(wait) if wait >= Duration::from_secs(3) => Some((child, wait)),
                _ => {
                    child.kill().unwrap();
                    child.wait().unwrap();
                    None
                }
            }
        })
        .expect("a jitter of at least 3s in 8 draws");
    let started = Instant::now();
    t.gencert(&["--force", "--lock-timeout", "1s"])
        .assert()
        .code(0);
    assert!(
        started.elapsed() < wait - Duration::from_millis(500),
        "the second run went through while the first was waiting {wait:?}"
    );
    assert!(sleeper.try_wait().unwrap().is_none(), "still in its jitter");
    assert!(sleeper.wait().unwrap().success());
    assert_eq!(t.server.signed_count(), 2);
}

/// --metrics-file: Prometheus text with the certificate's not-after and the last success and
/// failure, per certificate.
#[test]
fn metrics_file_for_node_exporter() {
    let t = Setup::new();
    t.gencert(&["--metrics-file", "nodecert.prom"])
        .assert()
        .code(0);
    t.gencert(&["--metrics-file", "nodecert.prom", "-remote", "127.0.0.1:1"])
        .assert()
        .code(6);
    // Bad input is a failed run too (here a csr.json that is gone), named by its certificate.
    nodecert(t.dir())
        .args(["gencert", "-config", s(&t.profile), "-bare", "gone"])
        .args(["--metrics-file", "nodecert.prom", "missing-csr.json"])
        .assert()
        .code(3);
    let text = std::fs::read_to_string(t.dir().join("nodecert.prom")).unwrap();
    // The label is the absolute path, however the run spelled it.
    let series = |metric: &str, cert: &str| {
        format!("nodecert_{metric}{{name=\"{}\"}} ", s(&t.dir().join(cert)))
    };
    let not_after = text
        .lines()
        .find_map(|l| l.strip_prefix(&series("certificate_not_after_seconds", "node.pem")))
        .unwrap_or_else(|| panic!("{text}"));
    let from_openssl = crate::support::ca::not_after_seconds(t.dir(), Path::new("node.pem"));
    assert_eq!(not_after, from_openssl.to_string());
    assert!(text.contains(&series("last_success_timestamp_seconds", "node.pem")));
    assert!(text.contains(&series("last_failure_timestamp_seconds", "node.pem")));
    assert!(
        text.contains(&series("last_failure_timestamp_seconds", "gone.pem")),
        "{text}"
    );
    assert!(!text.contains(&series("last_success_timestamp_seconds", "gone.pem")));
    // No certificate there: 0, so that an expiry alert fires.
    assert!(
        text.contains(&format!(
            "{}0\n",
            series("certificate_not_after_seconds", "gone.pem")
        )),
        "{text}"
    );

    // A metrics file begun by a failing run still has the expiry of the certificate in place
    // (what an expiry alert needs most is the pair whose runs fail).
    let fresh = "fresh.prom";
    // A run that fails (the CA unreachable) with the not-after it records.
    let failed_run_records = |not_after: String| {
        t.gencert(&["--force", "--metrics-file", fresh, "-remote", "127.0.0.1:1"])
            .assert()
            .code(6);
        let text = std::fs::read_to_string(t.dir().join(fresh)).unwrap();
        let line = format!(
            "{}{not_after}\n",
            series("certificate_not_after_seconds", "node.pem")
        );
        assert!(text.contains(&line), "{text}");
        assert!(text.contains(&series("last_failure_timestamp_seconds", "node.pem")));
    };
    failed_run_records(from_openssl.to_string());
    // Nor does it keep an expiry once there is no certificate to read (garbage in its place):
    // 0, so that the alert fires instead of being told all is well.
    let node = t.dir().join("node.pem");
    let kept = std::fs::read(&node).unwrap();
    std::fs::write(&node, "junk\n").unwrap();
    failed_run_records("0".to_string());
    std::fs::write(&node, kept).unwrap();

    // A certificate that is not there and not in the run (its spec or pair removed) leaves no
    // series behind; the others stay.
    t.gencert_bare("other", &t.csr, &["--metrics-file", "nodecert.prom"])
        .assert()
        .code(0);
    let text = std::fs::read_to_string(t.dir().join("nodecert.prom")).unwrap();
    assert!(!text.contains("gone.pem"), "{text}");
    assert!(text.contains(&series("last_success_timestamp_seconds", "node.pem")));
    assert!(text.contains(&series("last_success_timestamp_seconds", "other.pem")));
}

/// Concurrent runs on one pair never interleave: all succeed one after another and the final
/// pair matches; a run that cannot get the lock in time reports busy.
#[test]
fn concurrent_runs_on_one_pair() {
    let t = Setup::new();
    let spawn = |extra: &[&str]| spawn_gencert(&t, &[&["--force"], extra].concat());
    let children: Vec<_> = (0..6).map(|_| spawn(&[])).collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(t.server.signed_count(), 6);
    assert_key_matches(
        t.dir(),
        &t.dir().join("node-key.pem"),
        &t.dir().join("node.pem"),
    );

    // Hold the pair: a run whose hook (which runs under the pair's lock) marks that it started,
    // then sleeps; the impatient run starts once the mark is there. (Probing the lock from this
    // process would be unreliable: a child forked by a parallel test can inherit the probe's
    // descriptor, and with it the lock, for a moment.)
    let holder = spawn(&["--exec", "touch holding; sleep 3"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !t.dir().join("holding").exists() {
        assert!(Instant::now() < deadline, "the holder never ran its hook");
        std::thread::sleep(Duration::from_millis(20));
    }
    let impatient = spawn(&["--lock-timeout", "100ms"])
        .wait_with_output()
        .unwrap();
    if impatient.status.code() != Some(9) {
        let holder = holder.wait_with_output().unwrap();
        panic!(
            "impatient: {:?} {}; holder: {:?} {}",
            impatient.status,
            String::from_utf8_lossy(&impatient.stderr),
            holder.status,
            String::from_utf8_lossy(&holder.stderr)
        );
    }
    assert!(String::from_utf8_lossy(&impatient.stderr).contains("another run holds"));
    // --lock-timeout 0: busy at once, without a wait.
    let at_once = spawn(&["--lock-timeout", "0"]).wait_with_output().unwrap();
    assert_eq!(
        at_once.status.code(),
        Some(9),
        "{}",
        String::from_utf8_lossy(&at_once.stderr)
    );
    assert!(holder.wait_with_output().unwrap().status.success());
}

/// sign -bare takes the pair's lock too, as gencert does: while a renewal holds it (its hook
/// runs under the lock), sign waits, so it cannot check the pair, have the renewal replace the
/// key, and then write a certificate for the old one; `--lock-timeout 0` is busy at once.
#[test]
fn sign_waits_for_a_renewal_of_its_pair() {
    let t = Setup::new();
    t.gencert(&[]).assert().code(0);
    std::fs::copy(t.dir().join("node.csr"), t.dir().join("old.csr")).unwrap();
    let holder = spawn_gencert(
        &t,
        &[
            "--force",
            "--exec",
            "touch holding; sleep 2; touch released",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !t.dir().join("holding").exists() {
        assert!(Instant::now() < deadline, "the holder never ran its hook");
        std::thread::sleep(Duration::from_millis(20));
    }
    // With --lock-timeout 0 it does not wait: busy (exit 9), at once.
    crate::support::nodecert(t.dir())
        .args(["sign", "-config", s(&t.profile), "-tls-remote-ca"])
        .args([
            s(&t.pki.primary_ca()),
            "--lock-timeout",
            "0",
            "-bare",
            "node",
            "node.csr",
        ])
        .assert()
        .code(9);
    assert!(!t.dir().join("released").exists(), "sign waited");
    // The CSR is for the key the renewal is replacing: once the lock is free, sign finds a
    // working pair with another key and refuses (exit 8), instead of breaking it.
    crate::support::nodecert(t.dir())
        .args(["sign", "-config", s(&t.profile), "-tls-remote-ca"])
        .args([s(&t.pki.primary_ca()), "-bare", "node", "old.csr"])
        .assert()
        .code(8)
        .stderr(contains("the new certificate would break the pair"));
    assert!(
        t.dir().join("released").exists(),
        "sign did not wait for the lock"
    );
    assert!(holder.wait_with_output().unwrap().status.success());
    assert_key_matches(
        t.dir(),
        &t.dir().join("node-key.pem"),
        &t.dir().join("node.pem"),
    );
}

/// Concurrent --renew-before runs (no --force) on a pair that does not exist yet: each waits for
/// the pair's lock and then decides again, so exactly one issues, the others keep its pair, and
/// the CA signs once.
#[test]
fn concurrent_renewal_runs_issue_once() {
    let t = Setup::new();
    let children: Vec<_> = (0..5)
        .map(|_| spawn_gencert(&t, &["--renew-before", "720h", "--report", "json"]))
        .collect();
    let reports: Vec<serde_json::Value> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            report(&out.stdout)
        })
        .collect();
    let mut actions: Vec<&str> = reports
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        ["issued", "unchanged", "unchanged", "unchanged", "unchanged"],
        "{reports:?}"
    );
    assert!(
        reports.iter().all(|r| r["serial"] == reports[0]["serial"]),
        "every run reports the one pair: {reports:?}"
    );
    assert_eq!(t.server.signed_count(), 1);
    assert_key_matches(
        t.dir(),
        &t.dir().join("node-key.pem"),
        &t.dir().join("node.pem"),
    );
}

/// Crash safety: runs killed at any instant leave either the old pair or the new pair (or a
/// mismatched pair, which the next run detects and heals); never a truncated file.
///
/// Half the kills are spread over a run's lifetime; the other half are aimed at the swap: a
/// delay after the CA logged its signature, lengthened when the kill came before the swap and
/// shortened when the run had already finished. The test requires that some kill landed before
/// the swap and some after it began (the run died of the kill with the new key in place), so it
/// fails if the kills miss the write.
#[test]
fn killed_runs_leave_a_usable_or_healable_pair() {
    let t = Setup::new();
    t.gencert(&[]).assert().code(0);
    let mut seen = std::collections::BTreeMap::<&str, u32>::new();
    let mut aim = Duration::from_micros(500);
    let both_sides = |seen: &std::collections::BTreeMap<&str, u32>| {
        seen.contains_key("killed before the swap")
            && seen.contains_key("killed after the swap began")
    };
    let mut round = 0u64;
    while round < 30 || (!both_sides(&seen) && round < 150) {
        round += 1;
        let serial_before = serial(t.dir());
        let signed_before = t.server.signed_count();
        let mut child = spawn_gencert(&t, &["--force"]);
        let aimed = round.is_multiple_of(2);
        if aimed {
            let deadline = Instant::now() + Duration::from_secs(20);
            while t.server.signed_count() == signed_before
                && child.try_wait().unwrap().is_none()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_micros(100));
            }
            let until = Instant::now() + aim;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        } else {
            // Spread over a run's lifetime (about 10-40 ms here) and beyond.
            let mut random = [0u8; 2];
            getrandom::fill(&mut random).unwrap();
            std::thread::sleep(Duration::from_micros(
                u64::from(u16::from_le_bytes(random)) % 45_000 + round % 3 * 100,
            ));
        }
        let _ = child.kill();
        let killed = child.wait().unwrap().signal() == Some(nix::libc::SIGKILL);

        let cert = t.dir().join("node.pem");
        let key = t.dir().join("node-key.pem");
        assert!(
            cert.exists() && key.exists(),
            "round {round}: a file of the pair vanished"
        );
        let cert_ok = Command::new("openssl")
            .args(["x509", "-in", s(&cert), "-noout"])
            .status()
            .unwrap()
            .success();
        let key_ok = Command::new("openssl")
            .args(["pkey", "-in", s(&key), "-noout"])
            .status()
            .unwrap()
            .success();
        assert!(cert_ok && key_ok, "round {round}: a truncated file");
        let from_key = crate::support::tool(
            t.dir(),
            "openssl",
            &["pkey", "-in", "node-key.pem", "-pubout"],
        );
        let from_cert = crate::support::tool(
            t.dir(),
            "openssl",
            &["x509", "-in", "node.pem", "-noout", "-pubkey"],
        );
        let matched = from_key == from_cert;
        assert!(
            matched || killed,
            "round {round}: a finished run left a mismatched pair"
        );
        let old = matched && serial(t.dir()) == serial_before;
        let outcome = match (killed, old) {
            (false, _) => "finished before the kill",
            (true, true) => "killed before the swap",
            (true, false) => "killed after the swap began",
        };
        *seen.entry(outcome).or_default() += 1;
        if !matched {
            *seen.entry("mismatch, healed").or_default() += 1;
            let r = run_report(&t, &["--renew-before", "1h"]);
            assert!(
                r["reason"].as_str().unwrap().contains("key does not match"),
                "{r}"
            );
            assert_key_matches(t.dir(), &key, &cert);
        }
        if aimed {
            aim = match outcome {
                "finished before the kill" => aim * 2 / 3,
                "killed before the swap" => aim * 3 / 2 + Duration::from_micros(50),
                _ => aim,
            };
        }
    }
    eprintln!("kill test: {round} rounds, {seen:?}, last aim {aim:?}");
    assert!(
        both_sides(&seen),
        "the kills did not land on both sides of the swap: {seen:?}"
    );
    // The next run cleans what the killed runs left.
    t.gencert(&["--renew-before", "1h"]).assert().code(0);
    assert!(
        listing(t.dir()).iter().all(|f| !f.contains(".nodecert-")),
        "temporary files remain: {:?} (seen: {seen:?})",
        listing(t.dir())
    );
    assert_verifies(t.dir(), &t.pki.primary_ca(), &t.dir().join("node.pem"));
}

/// A hook's stdout goes to stderr, so `--report json` stays one JSON object; a metrics file in a
/// missing directory is refused before the CA is asked.
#[test]
fn hook_output_and_metrics_directory() {
    let t = Setup::new();
    let out = t
        .gencert(&["--report", "json", "--exec", "echo from-the-hook"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    assert_eq!(report(&out.stdout)["action"], "issued");
    assert!(String::from_utf8_lossy(&out.stderr).contains("from-the-hook"));
    t.gencert(&["--force", "--metrics-file", "no/such/dir/nodecert.prom"])
        .assert()
        .code(8)
        .stderr(contains("metrics directory no/such/dir does not exist"));
    assert_eq!(
        t.server.signed_count(),
        1,
        "refused before contacting the CA"
    );
    // A failing hook is a failure in the metrics, as in sync: the service may still use the
    // old files.
    t.gencert(&["--force", "--metrics-file", "n.prom", "--exec", "exit 1"])
        .assert()
        .code(10);
    let text = std::fs::read_to_string(t.dir().join("n.prom")).unwrap();
    let failure = format!(
        "nodecert_last_failure_timestamp_seconds{{name=\"{}\"}}",
        s(&t.dir().join("node.pem"))
    );
    assert!(
        text.contains(&failure) && !text.contains("nodecert_last_success_timestamp_seconds{name="),
        "{text}"
    );
}

/// A --renew-before not shorter than the certificate's lifetime would renew on every run: the
/// run that issues warns (naming the flag and the lifetime), and the next runs keep the pair
/// until a third of its lifetime is left, contacting no one.
#[test]
fn a_threshold_beyond_the_lifetime_does_not_renew_every_run() {
    let t = Setup::new();
    // The server issues for 8760h (365d).
    t.gencert(&["--renew-before", "9000h"])
        .assert()
        .code(0)
        .stderr(contains(
            "node.pem: the CA issues for 365d, not longer than --renew-before 375d: it will be \
             renewed when 121d16h is left; set --renew-before under 365d",
        ));
    for _ in 0..2 {
        let out = t
            .gencert(&["--renew-before", "9000h", "--report", "json"])
            .assert()
            .code(0)
            .get_output()
            .stdout
            .clone();
        let r = report(&out);
        assert_eq!(r["action"], "unchanged", "{r}");
        assert!(
            r["reason"]
                .as_str()
                .unwrap()
                .ends_with("over 121d16h, a third of its 365d lifetime (--renew-before 375d is not shorter than the lifetime)"),
            "{r}"
        );
    }
    assert_eq!(t.server.signed_count(), 1);
}

/// The stderr of a `--renew-before 720h` run on `t`'s pair pinned to `ca`, with `extra` flags,
/// which must exit with `code`.
fn renewal_stderr(t: &Setup, ca: &Path, extra: &[&str], code: i32) -> String {
    let out = gencert_in(t.dir(), &t.profile, ca)
        .args(["-bare", "node", "--renew-before", "720h"])
        .args(extra)
        .arg(s(&t.csr))
        .assert()
        .code(code)
        .get_output()
        .clone();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A root re-keyed under the same name: a pair the old key signed names the pinned CA as its
/// issuer, yet does not chain to it. The signature is checked, so the pair is renewed (here the
/// run then fails at TLS, since the test's CA server still presents the old root's chain: the
/// decision is what is asserted), while the pin of the real root keeps it.
#[test]
fn renews_when_the_pinned_ca_was_rekeyed_under_the_same_name() {
    let t = Setup::new();
    let rekeyed = crate::support::Pki::new();
    let run = |ca: &Path, code: i32| renewal_stderr(&t, ca, &["-loglevel", "0"], code);
    run(&t.pki.primary_ca(), 0);
    let kept = run(&t.pki.primary_ca(), 0);
    assert!(kept.contains("kept"), "{kept}");
    let before = std::fs::read(t.dir().join("node.pem")).unwrap();
    let stderr = run(&rekeyed.primary_ca(), 4);
    assert!(
        stderr.contains("not signed by its key"),
        "the pair is renewed: {stderr}"
    );
    assert_eq!(std::fs::read(t.dir().join("node.pem")).unwrap(), before);
    assert_eq!(t.server.signed_count(), 1);
}

/// A pinned CA file that went bad (truncated, emptied) does not let a kept pair pass unchecked:
/// the run fails on the file (exit 3, named), sends nothing, and leaves the pair as it was.
#[test]
fn a_broken_pinned_ca_file_fails_the_renewal_check() {
    let t = Setup::new();
    let pin = t.dir().join("pin.pem");
    std::fs::copy(t.pki.primary_ca(), &pin).unwrap();
    let run = |code: i32| renewal_stderr(&t, &pin, &[], code);
    run(0);
    let before = std::fs::read(t.dir().join("node.pem")).unwrap();
    for broken in ["", "-----BEGIN CERTIFICATE-----\ngarbage\n"] {
        std::fs::write(&pin, broken).unwrap();
        let stderr = run(3);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(s(&pin)), "names the file: {stderr}");
        assert_eq!(std::fs::read(t.dir().join("node.pem")).unwrap(), before);
    }
    assert_eq!(t.server.signed_count(), 1);
}

/// A tmpfs mounted on a directory for one test, unmounted when dropped (also when the test
/// panics).
struct Tmpfs<'a>(&'a Path);

impl<'a> Tmpfs<'a> {
    fn mount(dir: &'a Path) -> Self {
        Self::run(&["-t", "tmpfs", "-o", "mode=0755", "tmpfs", s(dir)]);
        Self(dir)
    }

    fn remount(&self, how: &str) {
        Self::run(&["-o", &format!("remount,{how}"), s(self.0)]);
    }

    fn run(args: &[&str]) {
        let status = Command::new("mount").args(args).status().unwrap();
        assert!(
            status.success(),
            "mount {args:?} failed (the suite runs as root)"
        );
    }
}

impl Drop for Tmpfs<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0).status();
    }
}

/// A valid pair on a read-only file system is kept with exit 0, with or without the lock file
/// an earlier run left there: nothing needs writing. A due one fails as an output error
/// (exit 8) and stays as it was.
#[test]
fn a_valid_pair_on_a_read_only_file_system_is_kept() {
    let t = Setup::new();
    let mnt = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(mnt.path());
    let bare = mnt.path().join("node");
    let run = |extra: &[&str]| {
        let mut args = vec!["--renew-before", "720h"];
        args.extend_from_slice(extra);
        t.gencert_bare(s(&bare), &t.csr, &args)
    };
    run(&[]).assert().code(0);
    let lock = mnt.path().join(".node.pem.lock");
    assert!(lock.exists());
    let pair = || crate::support::pair_bytes(mnt.path(), "node");
    let before = pair();
    fs.remount("ro");
    run(&["-loglevel", "2"]).assert().code(0).stderr("");
    fs.remount("rw");
    std::fs::remove_file(&lock).unwrap();
    fs.remount("ro");
    run(&["-loglevel", "2"]).assert().code(0).stderr("");
    run(&["--force"])
        .assert()
        .code(8)
        .stderr(contains("Read-only file system"));
    assert_eq!(pair(), before);
    assert_eq!(t.server.signed_count(), 1);
}

/// A pair whose names are symlinks (`node.pem -> versions/v1.pem`, made by this user) is
/// renewed through them, as cfssljson writes through them: the links stay links, the files they
/// name get the new pair, and a later run keeps it through the same links. A link someone else
/// put there is not followed: exit 8, the file it names untouched.
#[test]
fn symlinked_names_are_written_through() {
    let t = Setup::new();
    let dir = t.dir();
    std::fs::create_dir(dir.join("versions")).unwrap();
    t.gencert_bare("versions/v1", &t.csr, &[]).assert().code(0);
    let before = std::fs::read(dir.join("versions/v1.pem")).unwrap();
    for (link, file) in [
        ("node.pem", "versions/v1.pem"),
        ("node-key.pem", "versions/v1-key.pem"),
        ("node.csr", "versions/v1.csr"),
    ] {
        std::os::unix::fs::symlink(file, dir.join(link)).unwrap();
    }
    t.gencert_bare("node", &t.csr, &[]).assert().code(0);
    for link in ["node.pem", "node-key.pem", "node.csr"] {
        assert!(dir.join(link).is_symlink(), "{link} is still a link");
    }
    assert_ne!(std::fs::read(dir.join("versions/v1.pem")).unwrap(), before);
    assert_key_matches(dir, &dir.join("node-key.pem"), &dir.join("node.pem"));
    assert_eq!(mode(&dir.join("versions/v1-key.pem")), 0o600);
    assert_eq!(
        listing(&dir.join("versions")),
        ["v1-key.pem", "v1.csr", "v1.pem"]
    );
    t.gencert_bare("node", &t.csr, &["--renew-before", "720h"])
        .assert()
        .code(0)
        .stderr(contains("kept node.pem"));
    assert_eq!(t.server.signed_count(), 2);
    // A kept pair converges to --owner and --mode through the links too.
    std::fs::set_permissions(
        dir.join("versions/v1-key.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    t.gencert_bare(
        "node",
        &t.csr,
        &[
            "--renew-before",
            "720h",
            "--mode",
            "0640",
            "--owner",
            "65534:65534",
        ],
    )
    .assert()
    .code(0)
    .stderr(contains("kept node.pem"));
    assert_eq!(t.server.signed_count(), 2);
    for (file, wanted) in [("v1.pem", 0o640), ("v1.csr", 0o640), ("v1-key.pem", 0o600)] {
        let path = dir.join("versions").join(file);
        assert_eq!(mode(&path), wanted, "{file}");
        assert_eq!(std::fs::metadata(&path).unwrap().uid(), 65534, "{file}");
    }
    for link in ["node.pem", "node-key.pem", "node.csr"] {
        assert!(dir.join(link).is_symlink(), "{link} is still a link");
    }

    std::fs::write(dir.join("other.pem"), "x").unwrap();
    std::os::unix::fs::symlink("other.pem", dir.join("planted.pem")).unwrap();
    std::os::unix::fs::lchown(dir.join("planted.pem"), Some(65534), None).unwrap();
    t.gencert_bare("planted", &t.csr, &[])
        .assert()
        .code(8)
        .stderr(contains(
            "planted.pem: it is a symlink of uid 65534, neither this user's nor root's",
        ));
    assert_eq!(std::fs::read(dir.join("other.pem")).unwrap(), b"x");
    assert_eq!(t.server.signed_count(), 2);

    // Directories on the way likewise: root's directory link is followed; another user's is
    // not, whether it is named in the path or reached through root's link to a file.
    let symlink = |target: &str, link: &str, uid: u32| {
        std::os::unix::fs::symlink(target, dir.join(link)).unwrap();
        std::os::unix::fs::lchown(dir.join(link), Some(uid), None).unwrap();
    };
    std::fs::create_dir_all(dir.join("nb/real")).unwrap();
    symlink("nb/real", "trusted", 0);
    t.gencert_bare("trusted/n", &t.csr, &[]).assert().code(0);
    assert!(dir.join("nb/real/n.pem").is_file());
    symlink("real", "nb/sub", 65534);
    symlink("nb/sub/n2.pem", "n2.pem", 0);
    for (name, link) in [("nb/sub/n1", "nb/sub"), ("n2", "nb/sub")] {
        let stderr = one_line_stderr(&t.gencert_bare(name, &t.csr, &[]).assert().code(8));
        assert!(
            stderr.contains(&format!(
                "its directory is reached through {}, a symlink of uid 65534",
                dir.join(link).display()
            )),
            "{name}: {stderr}"
        );
    }
    assert_eq!(
        listing(&dir.join("nb/real")),
        ["n-key.pem", "n.csr", "n.pem"]
    );
    assert_eq!(t.server.signed_count(), 3);
}

/// A certificate due the moment it arrives (cfssl backdates its start by 5 minutes and counts
/// the profile's expiry from there, so a year's certificate arrives with a year less 5 minutes
/// left) would be renewed by every run: said when it is issued, with the threshold to use.
#[test]
fn a_certificate_due_on_arrival_is_warned_about() {
    let t = Setup::new();
    // The default profile issues for 8760h; 525599m is a minute under that.
    let out = t.gencert(&["--renew-before", "525599m"]).assert().code(0);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("left, not over --renew-before 364d23h59m: every run will renew it"),
        "{stderr}"
    );
    // And so it does: the next run renews again.
    let out = t
        .gencert(&["--renew-before", "525599m", "--report", "json"])
        .assert()
        .code(0);
    let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(report["action"], "renewed", "{report}");
    // A threshold under what is left on arrival keeps the pair, without a warning.
    t.gencert(&["--force", "--renew-before", "525500m"])
        .assert()
        .code(0)
        .stderr(contains("warning").not());
    t.gencert(&["--renew-before", "525500m", "--report", "json"])
        .assert()
        .code(0)
        .stdout(contains(r#""action":"unchanged""#));
}

/// A CA whose own certificate expires: a certificate it issues that outlives it is warned
/// about; once it has expired, a pair under it is due (nothing verifies it any more), and a
/// new certificate from it is refused (exit 7) with the working files left as they are.
#[test]
fn an_expired_ca_makes_its_pairs_due_and_its_certificates_refused() {
    let pki = Pki::new();
    // The secondary root replaced by one that expires in a few seconds.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "short-lived root");
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + (since_epoch - Duration::from_secs(3600));
    // Time enough to start the CA and issue once on a busy 2-core machine.
    let expires = since_epoch + Duration::from_secs(8);
    params.not_after = epoch + expires;
    let root = params.self_signed(&key).unwrap();
    write(pki.path(), "secondary.pem", &root.pem());
    write(pki.path(), "secondary-key.pem", &key.serialize_pem());
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let profile = pki.request_profile(dir, &server.url(), &pki.auth_key);
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    // The pin holds both roots, as during a rotation.
    let bundle = format!(
        "{}{}",
        std::fs::read_to_string(pki.primary_ca()).unwrap(),
        root.pem()
    );
    let pin = write(dir, "pin.pem", &bundle);
    let gencert = |extra: &[&str]| {
        let mut cmd = gencert_in(dir, &profile, &pin);
        cmd.args(["-label", "secondary", "-bare", "node"])
            .args(extra)
            .arg(s(&csr));
        cmd
    };
    gencert(&[]).assert().code(0).stderr(
        contains("its CA \"CN=short-lived root\" expires at")
            .and(contains("before the certificate does")),
    );
    let pair = crate::support::pair_bytes(dir, "node");
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        <= expires + Duration::from_secs(1)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    gencert(&["--renew-before", "720h"])
        .assert()
        .code(7)
        .stderr(contains(
            "whose certificate in the pinned file (-tls-remote-ca) expired at",
        ));
    assert_eq!(crate::support::pair_bytes(dir, "node"), pair);
    // The reason a due run gives.
    let out = gencert(&["--renew-before", "720h", "-loglevel", "0"])
        .assert()
        .code(7);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("debug: to be renewed: its CA \"CN=short-lived root\" expired at"),
        "{stderr}"
    );
}

/// A due run that fails says how long the certificate left in place still has, at the
/// warning level a cron line's `-loglevel 2` mails: days, or minutes, is the urgency.
#[test]
fn a_failed_renewal_says_how_long_the_pair_in_place_has() {
    let t = Setup::new();
    t.gencert(&[]).assert().code(0);
    let out = t
        .gencert(&["--force", "-loglevel", "2", "-remote", "127.0.0.1:1"])
        .assert()
        .code(6);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0]
            .starts_with("nodecert: warning: node.pem is left in place and expires in 364d (at 20"),
        "{stderr}"
    );
    assert!(
        lines[0].ends_with("); this run was to replace it (--force)"),
        "{stderr}"
    );
    assert!(lines[1].starts_with("nodecert: error: "), "{stderr}");
    // No pair in place: nothing to say but the error.
    t.gencert_bare("fresh", &t.csr, &["-remote", "127.0.0.1:1"])
        .assert()
        .code(6)
        .stderr(contains("left in place").not());
}
