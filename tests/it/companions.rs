use base64::Engine as _;
use predicates::prelude::PredicateBooleanExt as _;
use predicates::str::contains;

use crate::support::{
    Pki, assert_key_matches, assert_verifies, node_csr, nodecert, s, tool, write,
};

/// genkey -bare and sign -bare never break a working pair from the side: a new key beside
/// NAME.pem, or NAME.pem for another key than NAME-key.pem's, is exit 8, nothing written, the
/// CA not asked. Signing the pair's own key again is fine.
#[test]
fn genkey_and_sign_leave_a_working_pair_whole() {
    let t = crate::support::Setup::new();
    let dir = t.dir();
    t.gencert(&[]).assert().code(0);
    let before = crate::support::pair_bytes(dir, "node");
    nodecert(dir)
        .args(["genkey", "-bare", "node", s(&t.csr)])
        .assert()
        .code(8)
        .stderr(contains(
            "node-key.pem: is the key of node.pem, a working pair a new key would break",
        ));
    nodecert(dir)
        .args(["genkey", "-bare", "other", s(&t.csr)])
        .assert()
        .code(0);
    let sign_to = |out: &[&str], csr: &str| {
        let mut cmd = nodecert(dir);
        cmd.args(["sign", "-config", s(&t.profile), "-tls-remote-ca"])
            .arg(t.pki.primary_ca())
            .args(out)
            .arg(csr);
        cmd
    };
    let sign = |csr: &str| sign_to(&["-bare", "node"], csr);
    let refusal = "node.pem: is the certificate of node-key.pem, a working pair, and the CSR is \
                   for another key";
    sign("other.csr").assert().code(8).stderr(contains(refusal));
    // --cert NAME.pem knows the key beside it by cfssljson's naming, as -bare does.
    sign_to(&["--cert", "node.pem"], "other.csr")
        .assert()
        .code(8)
        .stderr(contains(refusal));
    assert_eq!(crate::support::pair_bytes(dir, "node"), before);
    assert_eq!(t.server.signed_count(), 1, "the CA was not asked");
    sign("node.csr").assert().code(0);
    assert_key_matches(dir, &dir.join("node-key.pem"), &dir.join("node.pem"));
    // So does --cert X.crt with X.key beside it (kubelet's naming).
    std::fs::copy(dir.join("node.pem"), dir.join("kubelet.crt")).unwrap();
    std::fs::copy(dir.join("node-key.pem"), dir.join("kubelet.key")).unwrap();
    let kubelet = std::fs::read(dir.join("kubelet.crt")).unwrap();
    sign_to(&["--cert", "kubelet.crt"], "other.csr")
        .assert()
        .code(8)
        .stderr(contains(
            "kubelet.crt: is the certificate of kubelet.key, a working pair",
        ));
    assert_eq!(std::fs::read(dir.join("kubelet.crt")).unwrap(), kubelet);
    // An encrypted key beside a valid certificate (nginx's ssl_password_file) cannot be
    // checked: it may be the pair's, so neither genkey nor sign replaces anything; nor with a
    // key of a kind nodecert does not read (a TPM's). A CSR for the certificate's own key
    // breaks nothing, so sign takes it.
    std::fs::create_dir(dir.join("e")).unwrap();
    std::fs::copy(dir.join("node.pem"), dir.join("e/n.pem")).unwrap();
    let encrypted = tool(
        dir,
        "openssl",
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:x",
            "-in",
            "node-key.pem",
        ],
    );
    let read_pair = || ["e/n.pem", "e/n-key.pem"].map(|f| std::fs::read(dir.join(f)).unwrap());
    for key in [
        encrypted.as_str(),
        "-----BEGIN TSS2 PRIVATE KEY-----\nMAA=\n-----END TSS2 PRIVATE KEY-----\n",
    ] {
        write(&dir.join("e"), "n-key.pem", key);
        let kept = read_pair();
        nodecert(dir)
            .args(["genkey", "-bare", "e/n", s(&t.csr)])
            .assert()
            .code(8)
            .stderr(contains("maybe a working pair"));
        sign_to(&["--cert", "e/n.pem"], "other.csr")
            .assert()
            .code(8)
            .stderr(contains("maybe a working pair"));
        assert_eq!(read_pair(), kept);
        assert!(!dir.join("e/n.csr").exists());
    }
    sign_to(&["--cert", "e/n.pem"], "node.csr").assert().code(0);
    assert_key_matches(dir, &dir.join("node-key.pem"), &dir.join("e/n.pem"));
    // A certificate name that is a link: the key beside the file it leads to is the pair's.
    std::fs::create_dir(dir.join("v")).unwrap();
    std::fs::copy(dir.join("kubelet.crt"), dir.join("v/k-2026.pem")).unwrap();
    std::fs::copy(dir.join("kubelet.key"), dir.join("v/k-2026-key.pem")).unwrap();
    std::os::unix::fs::symlink("v/k-2026.pem", dir.join("current.pem")).unwrap();
    sign_to(&["--cert", "current.pem"], "other.csr")
        .assert()
        .code(8)
        .stderr(contains("is the certificate of").and(contains("v/k-2026-key.pem")));
    assert_key_matches(
        dir,
        &dir.join("v/k-2026-key.pem"),
        &dir.join("v/k-2026.pem"),
    );
    // Once the key beside it is the CSR's (re-keyed in place), the certificate follows it.
    std::fs::copy(dir.join("other-key.pem"), dir.join("kubelet.key")).unwrap();
    sign_to(&["--cert", "kubelet.crt"], "other.csr")
        .assert()
        .code(0);
    assert_key_matches(dir, &dir.join("kubelet.key"), &dir.join("kubelet.crt"));
    // An expired pair is no working pair: genkey re-keys it.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["old.example".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(1999, 1, 1);
    params.not_after = rcgen::date_time_ymd(2000, 1, 1);
    write(dir, "old.pem", &params.self_signed(&key).unwrap().pem());
    write(dir, "old-key.pem", &key.serialize_pem());
    nodecert(dir)
        .args(["genkey", "-bare", "old", s(&t.csr)])
        .assert()
        .code(0);
    // The same pair, still valid, is one.
    params.not_after = rcgen::date_time_ymd(2090, 1, 1);
    write(dir, "live.pem", &params.self_signed(&key).unwrap().pem());
    write(dir, "live-key.pem", &key.serialize_pem());
    nodecert(dir)
        .args(["genkey", "-bare", "live", s(&t.csr)])
        .assert()
        .code(8);
    // A FIFO where NAME.pem would be is looked at without a blocking open: genkey (which does
    // not write NAME.pem) goes on at once instead of hanging.
    nix::unistd::mkfifo(
        &dir.join("fifo.pem"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    nodecert(dir)
        .args(["genkey", "-bare", "fifo", s(&t.csr)])
        .assert()
        .code(0);
    assert!(dir.join("fifo-key.pem").exists());
}

/// sign: an existing CSR (key kept elsewhere) through authsign; the certificate is for that key.
#[test]
fn sign_sends_an_existing_csr() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let profile = pki.request_profile(dir, &server.url(), &pki.auth_key);
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 384));
    nodecert(dir)
        .args(["genkey", "-bare", "held", s(&csr)])
        .assert()
        .code(0);
    nodecert(dir)
        .args([
            "sign",
            "-config",
            s(&profile),
            "-tls-remote-ca",
            s(&pki.primary_ca()),
            "-bare",
            "held",
            "held.csr",
        ])
        .assert()
        .code(0);
    assert_verifies(dir, &pki.primary_ca(), &dir.join("held.pem"));
    assert_key_matches(dir, &dir.join("held-key.pem"), &dir.join("held.pem"));
    // stdout: cfssl sign's {"cert","csr"} JSON, which the real cfssljson turns into files.
    let out = nodecert(dir)
        .args([
            "sign",
            "-config",
            s(&profile),
            "-tls-remote-ca",
            s(&pki.primary_ca()),
            "-",
        ])
        .write_stdin(std::fs::read(dir.join("held.csr")).unwrap())
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert!(
        json["cert"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----\n")
    );
    crate::support::ca::cfssljson(dir, &String::from_utf8(out).unwrap(), "piped");
    assert_eq!(
        std::fs::read(dir.join("piped.csr")).unwrap(),
        std::fs::read(dir.join("held.csr")).unwrap()
    );
    assert_key_matches(dir, &dir.join("held-key.pem"), &dir.join("piped.pem"));
    // A CSR whose signature was tampered with is an input error, sent nowhere.
    let pem = std::fs::read_to_string(dir.join("held.csr")).unwrap();
    let mut der = pem::parse(&pem).unwrap().into_contents();
    let last = der.len() - 3;
    der[last] ^= 0x55;
    let bad = write(
        dir,
        "bad.csr",
        &pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der)),
    );
    nodecert(dir)
        .args([
            "sign",
            "-config",
            s(&profile),
            "-tls-remote-ca",
            s(&pki.primary_ca()),
            // As cfssl sign spells it.
            "-csr",
            s(&bad),
        ])
        .assert()
        .code(3)
        .stderr(contains("self-signature does not verify"));
    // An empty NAME would write a hidden `.pem`: a usage error (clap's), as in gencert.
    nodecert(dir)
        .args(["sign", "-config", s(&profile), "-tls-remote-ca"])
        .args([s(&pki.primary_ca()), "-bare", "", s(&bad)])
        .assert()
        .code(2)
        .stderr(contains("'--bare <NAME>'"));
    assert!(!dir.join(".pem").exists());
    nodecert(dir)
        .args(["sign", "-config", s(&profile), "-tls-remote-ca"])
        .args([s(&pki.primary_ca()), s(&csr)])
        .assert()
        .code(3)
        .stderr(contains(
            "csr.json: is not a PEM CSR: expected a -----BEGIN CERTIFICATE REQUEST----- block",
        ));
    assert_eq!(server.signed_count(), 2);

    // CSRs whose signature ring cannot check (P-521 from nodecert's own genkey, ECDSA with
    // SHA-512 or SHA-1, RSA under 2048 bits) go to the CA, which checks them, as cfssl sign
    // sends them: each is signed, for its own key.
    let p521 = write(dir, "p521.json", &node_csr("ecdsa", 521));
    nodecert(dir)
        .args(["genkey", "-bare", "p521", s(&p521)])
        .assert()
        .code(0);
    let mut names = vec!["p521"];
    tool(
        dir,
        "openssl",
        &["ecparam", "-name", "prime256v1", "-out", "p256.param"],
    );
    for (name, key, digest) in [
        ("p256-sha512", "ec:p256.param", "-sha512"),
        ("p256-sha1", "ec:p256.param", "-sha1"),
        ("rsa1024", "rsa:1024", "-sha256"),
    ] {
        tool(
            dir,
            "openssl",
            &[
                "req",
                "-new",
                "-newkey",
                key,
                "-nodes",
                "-keyout",
                &format!("{name}-key.pem"),
                "-subj",
                "/CN=held.example",
                digest,
                "-out",
                &format!("{name}.csr"),
            ],
        );
        names.push(name);
    }
    for name in names {
        nodecert(dir)
            .args([
                "sign",
                "-config",
                s(&profile),
                "-tls-remote-ca",
                s(&pki.primary_ca()),
                "-bare",
                name,
                &format!("{name}.csr"),
            ])
            .assert()
            .code(0);
        let cert = dir.join(format!("{name}.pem"));
        assert_key_matches(dir, &dir.join(format!("{name}-key.pem")), &cert);
    }
    assert_eq!(server.signed_count(), 6);
}

/// sign's SUBJECT file, as cfssl sign takes it: its CN and names replace the CSR's (what it
/// leaves empty stays the CSR's), so the certificate's subject is the one real cfssl sign gets
/// from the same CA for the same files; a csr.json's hosts are ignored (with a warning), the
/// SANs stay the CSR's. With -csr, the one file argument is SUBJECT; a second is refused.
#[test]
fn sign_takes_cfssls_subject_file() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let profile = pki.request_profile(dir, &server.url(), &pki.auth_key);
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    nodecert(dir)
        .args(["genkey", "-bare", "held", s(&csr)])
        .assert()
        .code(0);
    let subject = write(
        dir,
        "subject.json",
        r#"{"CN":"renamed.example.com","names":[{"O":"Other Org","OU":"","E":"a@b.c"}],
            "hosts":["ignored.example.com"],"key":{"algo":"rsa","size":2048}}"#,
    );
    let ca = pki.primary_ca();
    let sign = |extra: &[&str]| {
        let mut cmd = nodecert(dir);
        cmd.args(["sign", "-config", s(&profile), "-tls-remote-ca", s(&ca)])
            .args(extra);
        cmd
    };
    sign(&["-bare", "ours", "held.csr", s(&subject)])
        .assert()
        .code(0)
        .stderr(contains("subject.json: field hosts is ignored").and(contains("key").not()))
        .stderr(contains("subject.json: field names[0].E is ignored"));
    let subject_of = |name: &str| {
        tool(
            dir,
            "openssl",
            &[
                "x509", "-in", name, "-noout", "-subject", "-nameopt", "RFC2253",
            ],
        )
    };
    let theirs = tool(
        dir,
        "cfssl",
        &[
            "sign",
            "-config",
            s(&profile),
            "-tls-remote-ca",
            s(&ca),
            "held.csr",
            s(&subject),
        ],
    );
    crate::support::ca::cfssljson(dir, &theirs, "theirs");
    assert_eq!(
        subject_of("ours.pem").trim(),
        "subject=CN=renamed.example.com,OU=Nodes,O=Other Org,L=San Francisco,ST=CA,C=US"
    );
    assert_eq!(subject_of("ours.pem"), subject_of("theirs.pem"));
    let sans = |name: &str| {
        tool(
            dir,
            "openssl",
            &["x509", "-in", name, "-noout", "-ext", "subjectAltName"],
        )
    };
    assert!(
        sans("ours.pem").contains("DNS:node1.example.com"),
        "{}",
        sans("ours.pem")
    );
    assert!(!sans("ours.pem").contains("ignored"));
    // `null`, as Go reads it, overrides nothing: the CSR's subject.
    let null = write(dir, "null.json", "null");
    sign(&["-bare", "null", "held.csr", s(&null)])
        .assert()
        .code(0);
    assert!(subject_of("null.pem").contains("CN=node1.example.com,OU=Nodes,O=Example"));
    // -csr FILE: the one file argument is SUBJECT; two are one too many.
    sign(&["-bare", "flag", "-csr", "held.csr", s(&subject)])
        .assert()
        .code(0);
    assert_eq!(subject_of("flag.pem"), subject_of("ours.pem"));
    let signed = server.signed_count();
    sign(&[
        "-bare",
        "extra",
        "-csr",
        "held.csr",
        s(&subject),
        "more.json",
    ])
    .assert()
    .code(2)
    .stderr(contains(
        "with -csr FILE, sign takes at most one file argument",
    ));
    sign(&["-", "-"])
        .assert()
        .code(2)
        .stderr(contains("cannot both be read from stdin"));
    let bad = write(dir, "bad-subject.json", r#"{"CN":["a"]}"#);
    sign(&["-bare", "bad", "held.csr", s(&bad)])
        .assert()
        .code(3)
        .stderr(contains("bad-subject.json: field CN: must be a string"));
    assert_eq!(
        server.signed_count(),
        signed,
        "nothing sent for a refused command line"
    );
    assert!(!dir.join("extra.pem").exists() && !dir.join("bad.pem").exists());
}

/// info: the CA certificate of a label, over the pinned TLS.
#[test]
fn info_fetches_the_ca_certificate_of_a_label() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let profile = pki.request_profile(dir, &server.url(), &pki.auth_key);
    let der = |path: &std::path::Path| {
        pem::parse(std::fs::read(path).unwrap())
            .unwrap()
            .into_contents()
    };
    nodecert(dir)
        .args([
            "info",
            "-config",
            s(&profile),
            "-tls-remote-ca",
            s(&pki.primary_ca()),
            "-label",
            "secondary",
            "--out",
            "ca2.pem",
        ])
        .assert()
        .code(0);
    assert_eq!(der(&dir.join("ca2.pem")), der(&pki.secondary_ca()));
    let info = |extra: &[&str]| {
        nodecert(dir)
            .args(["info", "-config", s(&profile), "-tls-remote-ca"])
            .arg(pki.primary_ca())
            .args(extra)
            .assert()
            .code(0)
            .get_output()
            .stdout
            .clone()
    };
    assert_eq!(
        pem::parse(info(&["--pem"])).unwrap().into_contents(),
        der(&pki.primary_ca())
    );
    // By default cfssl info's JSON, with the CA's usages and expiry, which the real cfssljson
    // turns into ca.pem.
    let json = String::from_utf8(info(&[])).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["expiry"], "8760h", "{json}");
    assert!(
        value["usages"].as_array().is_some_and(|u| !u.is_empty()),
        "{json}"
    );
    // The same JSON as real cfssl info prints from the same CA, byte for byte once parsed (the
    // certificate as the CA sent it, without a final newline).
    let cfssl = tool(
        dir,
        "cfssl",
        &[
            "info",
            "-remote",
            &server.url(),
            "-tls-remote-ca",
            s(&pki.primary_ca()),
        ],
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&cfssl).unwrap(),
        value,
        "cfssl: {cfssl}\nnodecert: {json}"
    );
    crate::support::ca::cfssljson(dir, &json, "piped-ca");
    assert_eq!(der(&dir.join("piped-ca.pem")), der(&pki.primary_ca()));
    // -profile asks for one profile of the CA's policy (profiles/ca-config.json): its expiry
    // and usages, not the default's.
    let kubelet: serde_json::Value =
        serde_json::from_slice(&info(&["-profile", "kubelet-client"])).unwrap();
    assert_eq!(kubelet["expiry"], "2160h", "{kubelet}");
    let mut usages: Vec<&str> = kubelet["usages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    usages.sort_unstable();
    assert_eq!(
        usages,
        ["client auth", "digital signature", "key encipherment"]
    );
    // Pinned to a CA that did not issue the server's TLS certificate: a TLS failure.
    nodecert(dir)
        .args(["info", "-config", s(&profile), "-tls-remote-ca"])
        .arg(pki.secondary_ca())
        .assert()
        .code(4)
        .stderr(contains("not issued by the trusted CA"));

    // A reply with more than certificates in it (text around the PEM, a terminal escape
    // sequence) is refused (exit 7), not printed or written into a trust file.
    use crate::support::fault::{Fault, FaultServer};
    let ca_pem = std::fs::read_to_string(pki.primary_ca()).unwrap();
    let ca_pem = ca_pem.trim();
    for certificate in [
        format!("{ca_pem}\njunk after"),
        format!("\u{1b}[31mred\n{ca_pem}"),
    ] {
        let reply = serde_json::json!({"success": true, "result": {"certificate": certificate},
            "errors": [], "messages": []});
        let fake = FaultServer::start(Fault::Status(200, reply.to_string()));
        let fake_dir = dir.join("fake");
        std::fs::create_dir_all(&fake_dir).unwrap();
        let fake_profile = pki.request_profile(&fake_dir, &fake.url(), &pki.auth_key);
        nodecert(dir)
            .args(["info", "-config", s(&fake_profile), "--allow-plaintext"])
            .args(["--out", "fake-ca.pem"])
            .assert()
            .code(7)
            .stderr(contains("not PEM certificates alone"));
        assert!(!dir.join("fake-ca.pem").exists());
    }
}

/// certinfo: text, JSON (every field, checked against openssl), stdin, and the --check exit code.
#[test]
fn certinfo_reports_and_checks_expiry() {
    let t = crate::support::Setup::new();
    let dir = t.dir();
    let csr = write(dir, "csr.json", &node_csr("rsa", 3072));
    t.gencert_bare("n", &csr, &[]).assert().code(0);
    let stdout = |args: &[&str], stdin: Option<Vec<u8>>| {
        let mut cmd = nodecert(dir);
        cmd.args(args);
        if let Some(input) = stdin {
            cmd.write_stdin(input);
        }
        String::from_utf8(cmd.assert().code(0).get_output().stdout.clone()).unwrap()
    };
    let text = stdout(&["certinfo", "n.pem"], None);
    // `name:  value` lines; `not after` also carries "(N days left)".
    let field = |name: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .trim()
            .to_string()
    };
    let openssl = |what: &str| -> String {
        let out = tool(dir, "openssl", &["x509", "-in", "n.pem", "-noout", what]);
        let (_, value) = out.trim().split_once('=').unwrap();
        value.replace(" = ", "=")
    };
    let date = |openssl_date: &str| -> String {
        tool(
            dir,
            "date",
            &["-u", "-d", openssl_date, "+%Y-%m-%dT%H:%M:%SZ"],
        )
        .trim()
        .to_string()
    };
    assert_eq!(field("subject"), openssl("-subject"));
    assert_eq!(field("issuer"), openssl("-issuer"));
    let serial = field("serial");
    assert_eq!(serial, openssl("-serial").to_lowercase());
    assert_eq!(field("key"), "rsa-3072");
    assert_eq!(field("SANs"), "DNS:node1.example.com, IP:127.0.0.1");
    assert_eq!(field("not before"), date(&openssl("-startdate")));
    let not_after = date(&openssl("-enddate"));
    let not_after_seconds =
        crate::support::ca::not_after_seconds(dir, std::path::Path::new("n.pem"));
    let now: i64 = tool(dir, "date", &["+%s"]).trim().parse().unwrap();
    let days_left = (not_after_seconds - now).div_euclid(86_400);
    assert_eq!(
        field("not after"),
        format!("{not_after} ({days_left} days left)")
    );

    // The JSON carries the same facts.
    let json: serde_json::Value = serde_json::from_str(&stdout(
        &["certinfo", "--json", "--check", "30d", "n.pem"],
        None,
    ))
    .unwrap();
    assert_eq!(json["subject"], field("subject"));
    assert_eq!(json["issuer"], field("issuer"));
    assert_eq!(json["serial"], field("serial"));
    assert_eq!(json["key"], "rsa-3072");
    assert_eq!(
        json["sans"],
        serde_json::json!(["DNS:node1.example.com", "IP:127.0.0.1"])
    );
    assert_eq!(json["not_before"], field("not before"));
    assert_eq!(json["not_after"], not_after);
    assert_eq!(json["days_left"], days_left);
    assert_eq!(json["is_ca"], false);
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "days_left",
            "is_ca",
            "issuer",
            "key",
            "not_after",
            "not_before",
            "sans",
            "serial",
            "subject"
        ],
        "every field of --json is asserted above"
    );
    // `-` reads the certificate from stdin.
    let pem = std::fs::read(dir.join("n.pem")).unwrap();
    assert_eq!(stdout(&["certinfo", "-"], Some(pem)), text);
    // The server issues for 8760h: a 400-day window says "expiring".
    nodecert(dir)
        .args(["certinfo", "--check", "400d", "n.pem"])
        .assert()
        .code(12)
        .stderr(
            contains("nodecert: warning: n.pem: expires at ")
                .and(contains(", within --check 400d: renew it")),
        );
    nodecert(dir)
        .args(["certinfo", "csr.json"])
        .assert()
        .code(3);
}

/// genkey --k8s-csr: a CertificateSigningRequest manifest whose request is the CSR written, with
/// the signer's usages; the lint names each violation; the API's limits are enforced.
#[test]
fn kubernetes_manifest_and_signer_lint() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/csr");
    let out = nodecert(dir)
        .args([
            "genkey",
            "--signer",
            "kubernetes.io/kubelet-serving",
            "--k8s-csr",
            "--expiration",
            "24h",
            "-bare",
            "kl",
            s(&root.join("kubelet-serving.json")),
        ])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let manifest: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(manifest["apiVersion"], "certificates.k8s.io/v1");
    assert_eq!(manifest["kind"], "CertificateSigningRequest");
    assert_eq!(
        manifest["metadata"]["name"],
        "system-node-node1.example.internal"
    );
    assert_eq!(
        manifest["spec"]["signerName"],
        "kubernetes.io/kubelet-serving"
    );
    assert_eq!(manifest["spec"]["expirationSeconds"], 86400);
    assert_eq!(
        manifest["spec"]["usages"],
        serde_json::json!(["digital signature", "key encipherment", "server auth"])
    );
    let request = base64::engine::general_purpose::STANDARD
        .decode(manifest["spec"]["request"].as_str().unwrap())
        .unwrap();
    assert_eq!(request, std::fs::read(dir.join("kl.csr")).unwrap());

    nodecert(dir)
        .args([
            "genkey",
            "--signer",
            "kubernetes.io/kubelet-serving",
            "--k8s-csr",
            "--expiration",
            "5m",
            "-bare",
            "x",
            s(&root.join("kubelet-serving.json")),
        ])
        .assert()
        .code(2)
        .stderr(contains("under the 10m"));
    let bad = write(
        dir,
        "bad.json",
        r#"{"CN":"w1","hosts":["w1"],"names":[{"O":"admins"}]}"#,
    );
    let out = nodecert(dir)
        .args([
            "genkey",
            "--signer",
            "kubernetes.io/kube-apiserver-client-kubelet",
            "-bare",
            "x",
            s(&bad),
        ])
        .assert()
        .code(3)
        .get_output()
        .stderr
        .clone();
    let stderr = String::from_utf8(out).unwrap();
    assert_eq!(
        stderr.lines().count(),
        4,
        "three violations and the summary: {stderr}"
    );
    assert!(
        stderr.contains("O must be exactly \"system:nodes\"")
            && stderr.contains("CN must be")
            && stderr.contains("hosts must be empty")
    );
    assert!(
        !dir.join("x-key.pem").exists(),
        "no key is made for a CSR that breaks the rules"
    );
    nodecert(dir)
        .args([
            "genkey",
            "--signer",
            "example.com/custom",
            "-bare",
            "y",
            s(&bad),
        ])
        .assert()
        .code(0)
        .stderr(contains("nothing was checked"));
}

/// Every role in profiles/ is issued by the real multirootca (with its profile name), the
/// kubelet ones linted with their signer.
#[test]
fn shipped_role_profiles_are_issued() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    for (role, profile, signer) in [
        (
            "kubelet-client",
            "kubelet-client",
            Some("kubernetes.io/kube-apiserver-client-kubelet"),
        ),
        (
            "kubelet-serving",
            "kubelet-serving",
            Some("kubernetes.io/kubelet-serving"),
        ),
        ("etcd-peer", "etcd-peer", None),
        ("etcd-server", "etcd-server", None),
        ("server", "", None),
    ] {
        let mut cmd = nodecert(dir);
        cmd.env("NODECERT_AUTH_KEY", &pki.auth_key).args([
            "gencert",
            "-config",
            s(&root.join("request-profile.json")),
            "-remote",
            &server.url(),
            "-tls-remote-ca",
            s(&pki.primary_ca()),
            "-bare",
            role,
        ]);
        if !profile.is_empty() {
            cmd.args(["-profile", profile]);
        }
        if let Some(signer) = signer {
            cmd.args(["--signer", signer]);
        }
        cmd.arg(s(&root.join(format!("csr/{role}.json"))))
            .assert()
            .code(0);
        assert_verifies(dir, &pki.primary_ca(), &dir.join(format!("{role}.pem")));
        let text = crate::support::cert_text(dir, &dir.join(format!("{role}.pem")));
        let server_auth = text.contains("TLS Web Server Authentication");
        let client_auth = text.contains("TLS Web Client Authentication");
        match role {
            "kubelet-client" => assert!(client_auth && !server_auth, "{role}: {text}"),
            "kubelet-serving" => assert!(server_auth && !client_auth, "{role}: {text}"),
            _ => assert!(server_auth && client_auth, "{role}: {text}"),
        }
    }
    assert_eq!(server.signed_count(), 5);
}

/// --log-format json and --quiet.
#[test]
fn log_formats() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    // Every line is one JSON object in JSON mode: debug and warning records on the way, the
    // final error with its exit code, and a usage error that clap would print over several lines.
    let json_lines = |args: &[&str], code: i32| -> Vec<serde_json::Value> {
        let out = nodecert(dir)
            .args(args)
            .assert()
            .code(code)
            .get_output()
            .clone();
        let stderr = String::from_utf8(out.stderr).unwrap();
        stderr
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    };
    let plaintext = [
        "--log-format",
        "json",
        "gencert",
        "-loglevel",
        "0",
        "-remote",
        "http://127.0.0.1:1",
        "--allow-plaintext",
        s(&csr),
    ];
    let lines = json_lines(&plaintext, 6);
    let levels: Vec<&str> = lines.iter().map(|l| l["level"].as_str().unwrap()).collect();
    assert!(levels.contains(&"debug"), "{lines:?}");
    assert!(levels.contains(&"warning"), "{lines:?}");
    assert_eq!(levels.last(), Some(&"error"), "{lines:?}");
    assert_eq!(lines.last().unwrap()["exit_code"], 6);
    let missing = json_lines(
        &[
            "--log-format=json",
            "gencert",
            "-config",
            "nope.json",
            "x.json",
        ],
        3,
    );
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0]["exit_code"], 3);
    let usage = json_lines(
        &["gencert", "-log-format", "json", "--no-such-flag", "x.json"],
        2,
    );
    assert_eq!(usage.len(), 1, "{usage:?}");
    assert_eq!(usage[0]["exit_code"], 2);
    assert!(
        usage[0]["message"]
            .as_str()
            .unwrap()
            .contains("--no-such-flag")
    );
    // A warning (plaintext) is shown by default and hidden by --quiet; the error stays.
    nodecert(dir)
        .args([
            "gencert",
            "-remote",
            "http://127.0.0.1:1",
            "--allow-plaintext",
            s(&csr),
        ])
        .assert()
        .code(6)
        .stderr(contains("warning"));
    nodecert(dir)
        .args([
            "--quiet",
            "gencert",
            "-remote",
            "http://127.0.0.1:1",
            "--allow-plaintext",
            s(&csr),
        ])
        .assert()
        .code(6)
        .stderr(contains("warning").not().and(contains("error")));
}

/// certinfo exits 13 for an expired certificate (made with rcgen: no CA issues one on demand),
/// shows dates before 1970, warns about one not valid yet, names a secp256k1 key by its curve,
/// and says in words what is not a certificate.
#[test]
fn certinfo_reports_an_expired_certificate() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["old.example".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(1999, 1, 1);
    params.not_after = rcgen::date_time_ymd(2000, 1, 1);
    write(dir, "old.pem", &params.self_signed(&key).unwrap().pem());
    nodecert(dir)
        .args(["certinfo", "old.pem"])
        .assert()
        .code(13)
        .stdout(contains("not after:  2000-01-01T00:00:00Z (expired "))
        .stderr("nodecert: warning: old.pem: expired at 2000-01-01T00:00:00Z: renew it now\n");

    // Times before 1970 (UTCTime reaches back to 1950) are shown as they are, not as the epoch.
    params.not_before = rcgen::date_time_ymd(1950, 1, 1);
    params.not_after = rcgen::date_time_ymd(1960, 6, 30);
    write(dir, "older.pem", &params.self_signed(&key).unwrap().pem());
    nodecert(dir)
        .args(["certinfo", "-cert", "older.pem"])
        .assert()
        .code(13)
        .stdout(contains("not before: 1950-01-01T00:00:00Z"))
        .stdout(contains("not after:  1960-06-30T00:00:00Z"));

    // Not valid yet: no exit code of its own, but a warning line.
    params.not_before = rcgen::date_time_ymd(2090, 1, 1);
    params.not_after = rcgen::date_time_ymd(2091, 1, 1);
    write(dir, "later.pem", &params.self_signed(&key).unwrap().pem());
    nodecert(dir)
        .args(["certinfo", "--check", "30d", "later.pem"])
        .assert()
        .code(0)
        .stderr(contains(
            "nodecert: warning: later.pem: not valid until 2090-01-01T00:00:00Z",
        ));

    // A chain file (leaf first) is as good as its first certificate to expire: the exit code
    // follows it, and a warning says which one it is; the description stays the leaf's.
    let leaf = {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2090, 1, 1);
        params.self_signed(&key).unwrap().pem()
    };
    let expired = std::fs::read_to_string(dir.join("old.pem")).unwrap();
    write(dir, "chain.pem", &format!("{leaf}{expired}"));
    nodecert(dir)
        .args(["certinfo", "chain.pem"])
        .assert()
        .code(13)
        .stdout(contains("not after:  2090-01-01T00:00:00Z"))
        .stderr(contains(
            "nodecert: warning: chain.pem: certificate 2 of the chain (CN=rcgen self signed cert) \
             expires first, at 2000-01-01T00:00:00Z",
        ));
    write(dir, "chain-ok.pem", &format!("{expired}{leaf}"));
    nodecert(dir)
        .args(["certinfo", "--check", "30d", "chain-ok.pem"])
        .assert()
        .code(13)
        .stderr("nodecert: warning: chain-ok.pem: expired at 2000-01-01T00:00:00Z: renew it now\n");
    // A certificate of the chain that is not valid yet gets its line wherever it is.
    let later = std::fs::read_to_string(dir.join("later.pem")).unwrap();
    write(dir, "chain-later.pem", &format!("{leaf}{later}"));
    nodecert(dir)
        .args(["certinfo", "--check", "30d", "chain-later.pem"])
        .assert()
        .code(0)
        .stderr(contains(
            "nodecert: warning: chain-later.pem: certificate 2 of the chain \
             (CN=rcgen self signed cert) not valid until 2090-01-01T00:00:00Z",
        ));

    // A secp256k1 key is named by its curve, not by its point's size (P-256's).
    crate::support::self_signed(dir, "k1", "secp256k1", "/CN=k1", &[]);
    nodecert(dir)
        .args(["certinfo", "k1.pem"])
        .assert()
        .code(0)
        .stdout(contains("key:        ecdsa-secp256k1\n"));

    // What is not a certificate is said in words, not in the parser's.
    write(dir, "empty.pem", "");
    write(dir, "junk.pem", "hello");
    for (file, says) in [
        (
            "empty.pem",
            "empty.pem: is empty: give a certificate in PEM or DER",
        ),
        (
            "junk.pem",
            "junk.pem: is not a certificate: neither a PEM CERTIFICATE block",
        ),
    ] {
        nodecert(dir)
            .args(["certinfo", file])
            .assert()
            .code(3)
            .stderr(contains(says));
    }
}

/// The manifest's name and usages when given, the third built-in signer, a signer nodecert does
/// not know, and several kubelet-serving violations at once (one line each, before any key).
#[test]
fn kubernetes_names_usages_and_other_signers() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    let genkey = |extra: &[&str], code: i32| {
        let out = nodecert(dir)
            .arg("genkey")
            .args(extra)
            .args(["-bare", "k", s(&csr)])
            .assert()
            .code(code)
            .get_output()
            .clone();
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let manifest = |stdout: &str| -> serde_json::Value { serde_json::from_str(stdout).unwrap() };
    let client = [
        "--signer",
        "kubernetes.io/kube-apiserver-client",
        "--k8s-csr",
    ];

    let (stdout, _) = genkey(&client, 0);
    let m = manifest(&stdout);
    assert_eq!(m["metadata"]["name"], "node1.example.com");
    assert_eq!(
        m["spec"]["usages"],
        serde_json::json!(["digital signature", "key encipherment", "client auth"])
    );
    let (stdout, _) = genkey(
        &[
            &client[..],
            &[
                "--usages",
                "client auth",
                "--k8s-name",
                "ops-laptop.example",
            ],
        ]
        .concat(),
        0,
    );
    let m = manifest(&stdout);
    assert_eq!(m["metadata"]["name"], "ops-laptop.example");
    assert_eq!(m["spec"]["usages"], serde_json::json!(["client auth"]));
    // A usage the signer does not allow, and a name Kubernetes would refuse: both refused
    // before a key is made.
    std::fs::remove_file(dir.join("k-key.pem")).unwrap();
    let (_, stderr) = genkey(
        &[&client[..], &["--usages", "client auth,server auth"]].concat(),
        3,
    );
    assert!(
        stderr.contains("usage \"server auth\" is not allowed"),
        "{stderr}"
    );
    let (_, stderr) = genkey(&[&client[..], &["--k8s-name", "Ops_Laptop"]].concat(), 2);
    assert!(
        stderr.contains("flag --k8s-name") && stderr.contains("'O'"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // A signer nodecert does not know: usages must be given, nothing is checked, and it says so.
    let custom = ["--signer", "example.com/custom", "--k8s-csr"];
    let (_, stderr) = genkey(&custom, 2);
    assert!(
        stderr.starts_with(
            "nodecert: error: --signer example.com/custom is not built in: give --usages"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!dir.join("k-key.pem").exists(), "no key for a refused flag");
    let with_usages = [&custom[..], &["--usages", "client auth"]].concat();
    let (stdout, stderr) = genkey(&with_usages, 0);
    assert_eq!(
        stderr.trim_end(),
        "nodecert: warning: --signer example.com/custom: not a built-in Kubernetes signer, so \
         nothing was checked"
    );
    let m = manifest(&stdout);
    assert_eq!(m["spec"]["signerName"], "example.com/custom");
    assert_eq!(m["spec"]["usages"], serde_json::json!(["client auth"]));
    // That line is a warning, and --quiet hides it as it hides every warning (the plaintext one
    // too, see log_formats): the manifest is still printed.
    let (stdout, stderr) = genkey(&[&["--quiet"][..], &with_usages].concat(), 0);
    assert_eq!(stderr, "");
    assert_eq!(
        manifest(&stdout)["spec"]["signerName"],
        "example.com/custom"
    );
    // Usages the API server refuses, for any signer: an unknown name, a repeat.
    std::fs::remove_file(dir.join("k-key.pem")).unwrap();
    for (usages, says) in [
        (
            "server auth,bogus usage",
            "flag --usages: \"bogus usage\" is not a Kubernetes key usage",
        ),
        (
            "client auth,client auth",
            "flag --usages: \"client auth\" is given twice",
        ),
    ] {
        let (_, stderr) = genkey(&[&custom[..], &["--usages", usages]].concat(), 2);
        assert!(stderr.contains(says), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(!dir.join("k-key.pem").exists(), "no key for a refused flag");
    }

    // kubelet-serving: wrong O, wrong CN, an email SAN and no DNS or IP SAN, each its own line.
    write(
        dir,
        "csr.json",
        r#"{"CN":"w1","hosts":["ops@example.com"],"names":[{"O":"admins"}]}"#,
    );
    let (_, stderr) = genkey(&["--signer", "kubernetes.io/kubelet-serving"], 3);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 5, "four violations and the summary: {stderr}");
    assert!(
        lines.iter().all(|l| l.starts_with("nodecert: error: ")),
        "{stderr}"
    );
    for violation in [
        "O must be exactly \"system:nodes\"",
        "CN must be",
        "at least one DNS name or IP address",
        "must not hold email or URI SANs",
    ] {
        assert_eq!(
            lines.iter().filter(|l| l.contains(violation)).count(),
            1,
            "{violation}: {stderr}"
        );
    }
    assert!(
        !dir.join("k-key.pem").exists(),
        "no key for a CSR that breaks the rules"
    );
}
