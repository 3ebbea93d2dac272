use predicates::str::contains;

use crate::support::Setup;
use crate::support::gencert_in;
use crate::support::{
    self, Pki, assert_key_matches, assert_verifies, cert_text, mode, node_csr, nodecert, s, write,
};

/// Every key type the 2016 multirootca signs: the certificate verifies against the CA, carries
/// the key we wrote, and the key file is in cfssl's PEM form.
#[test]
fn issues_every_key_type_the_server_signs() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let profile = pki.request_profile(dir, &server.url(), &pki.auth_key);
    for (algo, size, label, sig) in [
        ("ecdsa", 256, "EC PRIVATE KEY", "ecdsa-with-SHA256"),
        ("ecdsa", 384, "EC PRIVATE KEY", "ecdsa-with-SHA384"),
        ("ecdsa", 521, "EC PRIVATE KEY", "ecdsa-with-SHA512"),
        ("rsa", 2048, "RSA PRIVATE KEY", "sha256WithRSAEncryption"),
        // Sizes cfssl allows whose primes are not a multiple of 512 bits (ring will not sign
        // with them).
        ("rsa", 2560, "RSA PRIVATE KEY", "sha256WithRSAEncryption"),
        ("rsa", 3072, "RSA PRIVATE KEY", "sha384WithRSAEncryption"),
        ("rsa", 3584, "RSA PRIVATE KEY", "sha384WithRSAEncryption"),
        ("rsa", 4096, "RSA PRIVATE KEY", "sha512WithRSAEncryption"),
    ] {
        let name = format!("{algo}{size}");
        let csr = write(dir, &format!("{name}.json"), &node_csr(algo, size));
        gencert_in(dir, &profile, &pki.primary_ca())
            .args(["-bare", &name, s(&csr)])
            .assert()
            .code(0)
            .stdout("")
            .stderr("");
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}-key.pem"));
        assert_verifies(dir, &pki.primary_ca(), &cert);
        assert_key_matches(dir, &key, &cert);
        let key_pem = std::fs::read_to_string(&key).unwrap();
        assert!(
            key_pem.starts_with(&format!("-----BEGIN {label}-----\n")),
            "{name}: {key_pem:.40}"
        );
        let csr_text = support::tool(
            dir,
            "openssl",
            &[
                "req",
                "-in",
                &format!("{name}.csr"),
                "-noout",
                "-verify",
                "-text",
            ],
        );
        assert!(
            csr_text.contains(sig),
            "{name}: CSR signature algorithm should be {sig}"
        );
        let text = cert_text(dir, &cert);
        assert!(
            text.contains("DNS:node1.example.com, IP Address:127.0.0.1"),
            "{name}: {text}"
        );
        assert!(
            text.contains("CN = node1.example.com") || text.contains("CN=node1.example.com"),
            "{name}"
        );
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(&cert), 0o644);
        assert_eq!(mode(&dir.join(format!("{name}.csr"))), 0o644);
    }
    assert_eq!(server.signed_count(), 8);
}

/// No output flag: cfssl's JSON on stdout, which the real cfssljson turns into the usual files.
#[test]
fn stdout_json_pipes_into_real_cfssljson() {
    let t = Setup::new();
    let (pki, _server, dir, profile, csr) = (&t.pki, &t.server, t.dir(), &t.profile, &t.csr);
    let out = gencert_in(dir, profile, &pki.primary_ca())
        .args([s(csr)])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let json = String::from_utf8(out).unwrap();
    assert!(
        json.starts_with(r#"{"cert":"-----BEGIN CERTIFICATE-----\n"#),
        "{json:.60}"
    );
    assert!(json.contains(r#","csr":"-----BEGIN CERTIFICATE REQUEST-----\n"#));
    assert!(json.contains(r#","key":"-----BEGIN EC PRIVATE KEY-----\n"#));
    assert!(json.ends_with("\"}\n"));
    support::ca::cfssljson(dir, &json, "node");
    assert_verifies(dir, &pki.primary_ca(), &dir.join("node.pem"));
    assert_key_matches(dir, &dir.join("node-key.pem"), &dir.join("node.pem"));
}

/// `--cert/--key/--csr` write exactly those paths; csr.json read from stdin with `-`.
#[test]
fn explicit_paths_and_csr_from_stdin() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::create_dir(dir.join("tls")).unwrap();
    let profile = pki.request_profile(dir, &server.url(), &pki.auth_key);
    nodecert(dir)
        .args([
            "gencert",
            "--config",
            s(&profile),
            "--tls-remote-ca",
            s(&pki.primary_ca()),
            "--cert",
            "tls/kubelet.crt",
            "--key",
            "tls/kubelet.key",
            "--csr",
            "tls/kubelet.req",
            "-",
        ])
        .write_stdin(node_csr("ecdsa", 256))
        .assert()
        .code(0);
    assert_eq!(
        support::listing(&dir.join("tls")),
        ["kubelet.crt", "kubelet.key", "kubelet.req"]
    );
    assert_key_matches(
        dir,
        &dir.join("tls/kubelet.key"),
        &dir.join("tls/kubelet.crt"),
    );
    assert_eq!(mode(&dir.join("tls/kubelet.key")), 0o600);
}

/// `-hostname` replaces the SANs (and is sent to the CA); `-cn` replaces the CN.
#[test]
fn hostname_and_cn_override_csr_json() {
    let t = Setup::new();
    let (pki, server, dir, profile, csr) = (&t.pki, &t.server, t.dir(), &t.profile, &t.csr);
    gencert_in(dir, profile, &pki.primary_ca())
        .args([
            "-hostname=other.example.com,10.9.8.7,ops@example.com",
            "-cn",
            "system:node:other",
            "-bare",
            "n",
            s(csr),
        ])
        .assert()
        .code(0);
    let text = cert_text(dir, &dir.join("n.pem"));
    assert!(
        text.contains("DNS:other.example.com, email:ops@example.com, IP Address:10.9.8.7"),
        "{text}"
    );
    assert!(
        !text.contains("node1.example.com"),
        "the csr.json hosts were replaced"
    );
    assert!(text.contains("CN = system:node:other"), "{text}");

    // Given empty (`-cn "$CN"` with CN unset), the flags are not given, as in cfssl: csr.json's
    // CN and hosts stay, and the profile's remote is used.
    t.gencert_bare("e", csr, &["-hostname", "", "-cn=", "-remote", ""])
        .assert()
        .code(0);
    let text = cert_text(dir, &dir.join("e.pem"));
    assert!(
        text.contains("DNS:node1.example.com, IP Address:127.0.0.1"),
        "{text}"
    );
    assert!(text.contains("CN = node1.example.com"), "{text}");

    // An empty entry (a script's `$(hostname -I | …)` on a host with no address yet) is left
    // out, with a warning, rather than issued as an empty SAN as cfssl would.
    t.gencert_bare("t", csr, &["-hostname", "other.example.com,"])
        .assert()
        .code(0)
        .stderr(contains(
            r#"flag -hostname: "other.example.com," has an empty entry: left out"#,
        ));
    let text = cert_text(dir, &dir.join("t.pem"));
    assert!(text.contains("DNS:other.example.com\n"), "{text}");

    // A flag given twice takes its last value, as Go's flag package (so cfssl) does.
    let twice = [
        "-cn=first",
        "-cn",
        "second",
        "-hostname",
        "a.example.com",
        "-hostname=b.example.com",
    ];
    t.gencert_bare("r", csr, &twice).assert().code(0);
    let text = cert_text(dir, &dir.join("r.pem"));
    assert!(
        text.contains("CN = second")
            && text.contains("DNS:b.example.com")
            && !text.contains("a.example.com"),
        "{text}"
    );
    // `-config ""` counts as not given too (info needs no auth key).
    let ca = pki.primary_ca();
    let info = [
        "info",
        "-config",
        "",
        "-remote",
        &server.url(),
        "-tls-remote-ca",
        s(&ca),
    ];
    nodecert(dir)
        .args(info)
        .assert()
        .code(0)
        .stdout(contains("\"certificate\":\"-----BEGIN CERTIFICATE-----"));
}

/// A URI host (a SPIFFE ID) goes into the CSR as a URI SAN, as current cfssl does; the 2016
/// multirootca leaves it out of the certificate, which nodecert refuses (exit 7) with what to
/// do, writing nothing.
#[test]
fn a_uri_san_the_old_ca_drops_is_explained() {
    let t = Setup::new();
    let csr = write(
        t.dir(),
        "uri.json",
        r#"{"CN":"node1.example.com","hosts":["node1.example.com","spiffe://cluster.local/ns/x"]}"#,
    );
    let stderr = support::one_line_stderr(&t.gencert_bare("u", &csr, &[]).assert().code(7));
    assert!(
        stderr.contains(
            "lacks requested SANs: URI:spiffe://cluster.local/ns/x (URI SANs need a CFSSL newer \
             than 1.2"
        ),
        "{stderr}"
    );
    assert!(!t.dir().join("u.pem").exists() && !t.dir().join("u-key.pem").exists());
}

/// `names[].E` and `names[].OID` (current cfssl's extra subject attributes) are in the CSR as
/// OpenSSL reads it, after CN; the Debian multirootca signs it (it copies only the standard
/// attributes into the certificate, as cfssl 1.2 does).
#[test]
fn extra_subject_attributes_reach_the_csr() {
    let t = Setup::new();
    let csr = write(
        t.dir(),
        "extra.json",
        r#"{"CN":"node1.example.com","hosts":["node1.example.com"],
            "names":[{"O":"Example","E":"ops@example.com","OID":{"1.3.6.1.4.1.311.60.2.1.3":"US"}}]}"#,
    );
    t.gencert_bare("x", &csr, &[]).assert().code(0);
    let subject = crate::support::tool(
        t.dir(),
        "openssl",
        &["req", "-in", "x.csr", "-noout", "-verify", "-subject"],
    );
    assert!(
        subject.contains(
            "O = Example, CN = node1.example.com, jurisdictionC = US, emailAddress = ops@example.com"
        ),
        "{subject}"
    );
    assert_verifies(t.dir(), &t.pki.primary_ca(), &t.dir().join("x.pem"));
}

/// `-crl URL` is sent as the sign request's crl_override, and the CA puts it in the certificate.
#[test]
fn crl_override_reaches_the_certificate() {
    let t = Setup::new();
    t.gencert(&["-crl", "http://crl.example.internal/ca.crl"])
        .assert()
        .code(0);
    let text = cert_text(t.dir(), &t.dir().join("node.pem"));
    assert!(
        text.contains("CRL Distribution Points")
            && text.contains("URI:http://crl.example.internal/ca.crl"),
        "{text}"
    );
}

/// `-label` picks the root on a multirootca with two: each certificate verifies only against
/// its own CA.
#[test]
fn label_selects_the_signing_root() {
    let t = Setup::new();
    let (pki, _server, dir, profile, csr) = (&t.pki, &t.server, t.dir(), &t.profile, &t.csr);
    for (label, name) in [("secondary", "b"), ("primary", "a")] {
        gencert_in(dir, profile, &pki.primary_ca())
            .args(["-label", label, "-bare", name, s(csr)])
            .assert()
            .code(0);
    }
    assert_verifies(dir, &pki.secondary_ca(), &dir.join("b.pem"));
    assert_verifies(dir, &pki.primary_ca(), &dir.join("a.pem"));
    let wrong = support::tool(
        dir,
        "sh",
        &[
            "-c",
            &format!(
                "openssl verify -CAfile {} b.pem 2>&1 || true",
                s(&pki.primary_ca())
            ),
        ],
    );
    assert!(
        !wrong.contains(": OK"),
        "a secondary-label certificate must not verify against the primary CA"
    );
    gencert_in(dir, profile, &pki.primary_ca())
        .args(["-label", "nope", "-bare", "c", s(csr)])
        .assert()
        .code(5)
        .stderr(predicates::str::contains(
            "refused the request: bad request",
        ));
}

/// `-profile` names a server profile (here `client`: client auth only, 2 h); no flag sends an
/// empty name (the server's default); an unknown name is the server's "invalid profile".
#[test]
fn profile_selects_the_server_policy() {
    let t = Setup::new();
    let (pki, _server, dir, profile, csr) = (&t.pki, &t.server, t.dir(), &t.profile, &t.csr);
    let ca = pki.primary_ca();
    let base = ["gencert", "-config", s(profile), "-tls-remote-ca", s(&ca)];
    nodecert(dir)
        .args(base)
        .args(["-profile", "client", "-bare", "client", s(csr)])
        .assert()
        .code(0);
    nodecert(dir)
        .args(base)
        .args(["-bare", "default", s(csr)])
        .assert()
        .code(0);
    let client = cert_text(dir, &dir.join("client.pem"));
    let default = cert_text(dir, &dir.join("default.pem"));
    assert!(
        client.contains("TLS Web Client Authentication")
            && !client.contains("TLS Web Server Authentication"),
        "{client}"
    );
    assert!(
        default.contains("TLS Web Server Authentication"),
        "{default}"
    );
    nodecert(dir)
        .args(base)
        .args(["-profile", "nope", "-bare", "x", s(csr)])
        .assert()
        .code(5)
        .stderr(predicates::str::contains("invalid profile"));
    assert!(!dir.join("x.pem").exists());
}

/// A comma list of remotes is tried in order: a dead first remote is skipped.
#[test]
fn fails_over_to_the_next_remote() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let dead = format!("127.0.0.1:{}", support::ca::free_port());
    let profile = pki.request_profile(dir, &format!("{dead},{}", server.url()), &pki.auth_key);
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    gencert_in(dir, &profile, &pki.primary_ca())
        .args(["-bare", "n", s(&csr)])
        .assert()
        .code(0)
        .stderr(
            predicates::str::contains("connection refused")
                .and(predicates::str::contains("trying the next remote")),
        );
    assert_verifies(dir, &pki.primary_ca(), &dir.join("n.pem"));
}

/// A remote that answers 5xx (here the fault server: 503 with an empty body, 500 with cfssl's
/// envelope) is passed over for the next one, the real multirootca, after exactly one request;
/// the failure is logged with the status.
#[test]
fn fails_over_on_a_5xx_answer() {
    use crate::support::fault::{Fault, FaultServer};
    let t = Setup::new();
    let envelope = r#"{"success":false,"result":null,"errors":[{"code":1,"message":"internal"}],"messages":[]}"#;
    for (status, body, logged) in [
        (503, "", "HTTP 503"),
        (500, envelope, "the CA failed (HTTP 500): internal"),
    ] {
        let failing = FaultServer::start(Fault::Status(status, body.into()));
        let signed_before = t.server.signed_count();
        let remotes = format!("{},{}", failing.url(), t.server.url());
        t.gencert(&["-remote", &remotes, "--allow-plaintext"])
            .assert()
            .code(0)
            .stderr(contains(logged).and(contains("trying the next remote")));
        assert_eq!(failing.requests(), 1, "HTTP {status}: one request");
        assert_eq!(t.server.signed_count(), signed_before + 1);
        assert_verifies(t.dir(), &t.pki.primary_ca(), &t.dir().join("node.pem"));
    }
}

/// A remote whose TLS certificate the pin does not vouch for (a replica of another CA: its
/// multirootca serves a certificate of a second test PKI) is passed over for the next one, as is
/// a remote answering with something that is not cfssl's reply (a wrong service behind the
/// address: HTML, JSON that is not cfssl's envelope, a web server's plain 404); each is logged,
/// and nothing was sent to the first before its TLS failed.
#[test]
fn fails_over_past_a_tls_failure_and_a_reply_that_is_not_cfssls() {
    use crate::support::fault::{Fault, FaultServer};
    let t = Setup::new();
    let stranger = Pki::new();
    let other = stranger.start();
    let garbage = FaultServer::start(Fault::Status(200, "<html>it works</html>".into()));
    let other_json = FaultServer::start(Fault::Status(200, r#"{"status":"ok"}"#.into()));
    let not_found = FaultServer::start(Fault::Status(404, "404 page not found\n".into()));
    for (first, logged) in [
        (other.url(), "TLS with"),
        (garbage.url(), "not cfssl's JSON envelope"),
        (other_json.url(), "not cfssl's JSON envelope"),
        (not_found.url(), "HTTP 404: 404 page not found"),
    ] {
        let signed_before = t.server.signed_count();
        let remotes = format!("{first},{}", t.server.url());
        let _ = std::fs::remove_file(t.dir().join("node.pem"));
        t.gencert(&["-remote", &remotes, "--allow-plaintext"])
            .assert()
            .code(0)
            .stderr(contains(logged).and(contains("trying the next remote")));
        assert_eq!(t.server.signed_count(), signed_before + 1);
        assert_verifies(t.dir(), &t.pki.primary_ca(), &t.dir().join("node.pem"));
    }
    assert_eq!(other.signed_count(), 0, "TLS failed before any request");
    assert_eq!(garbage.requests(), 1);
    assert_eq!(other_json.requests(), 1);
    assert_eq!(not_found.requests(), 1);
}

/// csr.json and the request profile saved by an editor that puts a UTF-8 byte-order mark first
/// (Windows Notepad) are read as the JSON they are; cfssl refuses them (`invalid character`).
#[test]
fn json_inputs_may_start_with_a_byte_order_mark() {
    let t = Setup::new();
    for path in [&t.csr, &t.profile] {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend(std::fs::read(path).unwrap());
        std::fs::write(path, bytes).unwrap();
    }
    t.gencert(&[]).assert().code(0);
    assert_verifies(t.dir(), &t.pki.primary_ca(), &t.dir().join("node.pem"));
}

/// When every remote fails and one of them only for now (unreachable), that failure is the
/// run's, whatever the order of the list: exit 6, retried with --retries, the other remote's
/// TLS failure said as a warning.
#[test]
fn a_failure_a_retry_may_mend_is_the_runs_in_any_order() {
    let t = Setup::new();
    let stranger = Pki::new();
    let other = stranger.start();
    let dead = format!("127.0.0.1:{}", support::ca::free_port());
    for remotes in [
        format!("{},{dead}", other.url()),
        format!("{dead},{}", other.url()),
    ] {
        let out = t
            .gencert(&["-remote", &remotes, "--retries", "1"])
            .assert()
            .code(6);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        let error = stderr
            .lines()
            .find(|l| l.starts_with("nodecert: error:"))
            .unwrap_or("");
        assert!(error.contains("connection refused"), "{remotes}: {stderr}");
        assert!(stderr.contains("warning: TLS with"), "{remotes}: {stderr}");
        assert!(stderr.contains("retry 1 of 1"), "retried: {stderr}");
    }
    assert_eq!(other.signed_count(), 0);
}

/// A -bare NAME ending in '/', '.' or '..' would write the hidden DIR/.pem and DIR/-key.pem
/// (as cfssljson does): a usage error that shows the name meant, with nothing written and the
/// CA not asked.
#[test]
fn a_bare_name_ending_in_a_slash_is_refused() {
    let t = Setup::new();
    std::fs::create_dir(t.dir().join("out")).unwrap();
    t.gencert_bare("out/", &t.csr, &[])
        .assert()
        .code(2)
        .stderr(contains("ends in '/'").and(contains("as in -bare out/node")));
    for name in ["out/.", "out/..", "."] {
        t.gencert_bare(name, &t.csr, &[])
            .assert()
            .code(2)
            .stderr(contains("names a directory"));
    }
    assert!(support::listing(&t.dir().join("out")).is_empty());
    assert_eq!(t.server.signed_count(), 0);
}

/// When every remote fails, the last one's error is the run's, printed once as the error, not
/// also as a warning that promises a next remote.
#[test]
fn the_last_remotes_failure_is_the_error_alone() {
    let t = Setup::new();
    let dead = |_| format!("127.0.0.1:{}", support::ca::free_port());
    let remotes = [dead(1), dead(2)].join(",");
    let out = t.gencert(&["-remote", &remotes]).assert().code(6);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(
        stderr.matches("trying the next remote").count(),
        1,
        "{stderr}"
    );
    assert_eq!(stderr.matches("connection refused").count(), 2, "{stderr}");
    assert!(stderr.contains("error: "), "{stderr}");
}

/// A request profile without an auth key (`remote` alone) sends the unauthenticated request to
/// `/api/v1/cfssl/sign`: a real `cfssl serve` with an open policy issues on it (its log names
/// the path); multirootca, which serves only authsign, answers 404, and nodecert says what to do;
/// with a list of remotes, that 404 stops it as a refusal would.
#[test]
fn no_auth_key_uses_the_unauthenticated_sign_endpoint() {
    let pki = Pki::new();
    let open = pki.start_cfssl_serve();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let profile = write(
        dir,
        "open-profile.json",
        &format!(
            r#"{{"signing":{{"default":{{"remote":"ca"}}}},"remotes":{{"ca":"{}"}}}}"#,
            open.url()
        ),
    );
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    let gencert = |remote: Option<&str>| {
        let mut cmd = nodecert(dir);
        cmd.args([
            "-loglevel",
            "0",
            "gencert",
            "-config",
            s(&profile),
            "-tls-remote-ca",
            s(&pki.primary_ca()),
            "-bare",
            "n",
        ]);
        if let Some(remote) = remote {
            cmd.args(["-remote", remote]);
        }
        cmd.arg(s(&csr));
        cmd
    };
    gencert(None)
        .assert()
        .code(0)
        .stderr(contains(format!("POST {}/api/v1/cfssl/sign\n", open.url())));
    assert_verifies(dir, &pki.primary_ca(), &dir.join("n.pem"));
    let log = open.request_log();
    assert!(
        log.iter()
            .any(|l| l.ends_with(r#" - "POST /api/v1/cfssl/sign" 200"#)),
        "{log:?}"
    );
    assert!(!log.iter().any(|l| l.contains("authsign")), "{log:?}");
    assert_eq!(open.signed_count(), 1);

    let multirootca = pki.start();
    let before = std::fs::read(dir.join("n.pem")).unwrap();
    gencert(Some(&multirootca.url()))
        .assert()
        .code(5)
        .stderr(contains(format!(
            "POST {}/api/v1/cfssl/sign\n",
            multirootca.url()
        )))
        .stderr(contains("HTTP 404").and(contains(
            "this CA only serves authenticated requests: add an auth key to the request profile",
        )));
    assert_eq!(multirootca.signed_count(), 0);
    assert_eq!(std::fs::read(dir.join("n.pem")).unwrap(), before);
    // That 404 is multirootca's own answer, which every replica gives: it stops the list like
    // a refusal, rather than pass to a next remote that is down and end as exit 6.
    let dead = format!("127.0.0.1:{}", support::ca::free_port());
    gencert(Some(&format!("{},{dead}", multirootca.url())))
        .assert()
        .code(5)
        .stderr(contains("this CA only serves authenticated requests"))
        .stderr(contains("trying the next remote").not());
}

/// cfssl's flag spellings mixed in one run, each flag's value taking effect: `-flag v`
/// (-label), `-flag=v` (-config, -profile), `--flag v` (--tls-remote-ca, --cn) and `--flag=v`
/// (--bare, --hostname).
#[test]
fn every_flag_spelling_in_one_run() {
    let t = Setup::new();
    let (pki, dir) = (&t.pki, t.dir());
    nodecert(dir)
        .args([
            "gencert",
            &format!("-config={}", s(&t.profile)),
            "--tls-remote-ca",
            s(&pki.primary_ca()),
            "--bare=spelled",
            "-label",
            "secondary",
            "-profile=client",
            "--cn",
            "spelled.example.com",
            "--hostname=spelled.example.com,10.1.2.3",
            s(&t.csr),
        ])
        .assert()
        .code(0);
    let cert = dir.join("spelled.pem");
    assert_verifies(dir, &pki.secondary_ca(), &cert);
    assert_key_matches(dir, &dir.join("spelled-key.pem"), &cert);
    let text = cert_text(dir, &cert);
    assert!(text.contains("CN = spelled.example.com"), "{text}");
    assert!(
        text.contains("DNS:spelled.example.com, IP Address:10.1.2.3"),
        "{text}"
    );
    assert!(
        text.contains("TLS Web Client Authentication")
            && !text.contains("TLS Web Server Authentication"),
        "-profile=client: {text}"
    );
    assert_eq!(mode(&dir.join("spelled-key.pem")), 0o600);
}

/// A remote written without a scheme is https, and `-remote` overrides the profile's remote
/// while keeping its auth key.
#[test]
fn remote_without_scheme_and_remote_flag() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let profile = pki.request_profile(dir, "127.0.0.1:1", &pki.auth_key);
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    nodecert(dir)
        .args([
            "gencert",
            "-config",
            s(&profile),
            "-remote",
            &server.addr(),
            "-tls-remote-ca",
            s(&pki.primary_ca()),
            "-bare",
            "n",
            s(&csr),
        ])
        .assert()
        .code(0);
    assert_eq!(server.signed_count(), 1);
}

use predicates::prelude::PredicateBooleanExt as _;

/// `-bare NAME` takes NAME byte for byte, as cfssljson does: a file name need not be UTF-8.
#[test]
fn a_bare_name_need_not_be_utf8() {
    use std::os::unix::ffi::OsStrExt as _;
    let t = Setup::new();
    let dir = t.dir();
    let name = std::ffi::OsStr::from_bytes(b"n\xffde");
    let file =
        |suffix: &[u8]| dir.join(std::ffi::OsStr::from_bytes(&[b"n\xffde", suffix].concat()));
    gencert_in(dir, &t.profile, &t.pki.primary_ca())
        .arg("-bare")
        .arg(name)
        .arg(s(&t.csr))
        .assert()
        .code(0);
    // The checks take UTF-8 paths: look at copies.
    std::fs::copy(file(b"-key.pem"), dir.join("copy-key.pem")).unwrap();
    std::fs::copy(file(b".pem"), dir.join("copy.pem")).unwrap();
    assert_key_matches(dir, &dir.join("copy-key.pem"), &dir.join("copy.pem"));
    assert!(file(b".csr").is_file());
    nodecert(dir)
        .arg("genkey")
        .arg("-bare")
        .arg(std::ffi::OsStr::from_bytes(b"g\xfe"))
        .arg(s(&t.csr))
        .assert()
        .code(0);
    assert!(
        dir.join(std::ffi::OsStr::from_bytes(b"g\xfe-key.pem"))
            .is_file()
    );
}
