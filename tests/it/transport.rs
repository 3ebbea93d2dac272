use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use predicates::prelude::PredicateBooleanExt as _;
use predicates::str::contains;

use crate::support::Setup;
use crate::support::gencert_in;
use crate::support::{Pki, listing, node_csr, nodecert, s, write};

/// A CA file that did not issue the server's certificate: exit 4, nothing written.
#[test]
fn wrong_pinned_ca_is_a_tls_failure() {
    let t = Setup::new();
    let (pki, server, dir, profile, csr) = (&t.pki, &t.server, t.dir(), &t.profile, &t.csr);
    gencert_in(dir, profile, &pki.secondary_ca())
        .args(["-bare", "n", s(csr)])
        .assert()
        .code(4)
        .stderr(contains("not issued by the trusted CA"));
    // Without -tls-remote-ca the system roots are used, and they do not know the test CA: the
    // message points at the missing flag.
    nodecert(dir)
        .args(["gencert", "-config", s(profile), "-bare", "n", s(csr)])
        .assert()
        .code(4)
        .stderr(contains(
            "not issued by a CA the system trusts: pass the CA that issued it with -tls-remote-ca",
        ));
    assert_eq!(listing(dir), ["csr.json", "request-profile.json"]);
    assert_eq!(server.signed_count(), 0);
}

/// The remote's host must be in the server certificate (a DNS SAN for a name, an IP SAN for an
/// address).
#[test]
fn hostname_mismatch_is_a_tls_failure() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    // Positive case: the server certificate names localhost.
    let profile = pki.request_profile(
        dir,
        &format!("https://localhost:{}", server.port),
        &pki.auth_key,
    );
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    gencert_in(dir, &profile, &pki.primary_ca())
        .args(["-bare", "ok", s(&csr)])
        .assert()
        .code(0);
    // Negative case: a server certificate for another name only, reached at 127.0.0.1.
    let other = write(
        dir,
        "server-csr.json",
        r#"{"CN":"elsewhere","hosts":["ca.elsewhere.example"],"key":{"algo":"ecdsa","size":256}}"#,
    );
    let json = crate::support::tool(
        pki.path(),
        "cfssl",
        &[
            "gencert",
            "-ca",
            "primary.pem",
            "-ca-key",
            "primary-key.pem",
            "-config",
            "primary-config.json",
            s(&other),
        ],
    );
    crate::support::ca::cfssljson(pki.path(), &json, "server");
    let renamed = pki.start();
    nodecert(dir)
        .args([
            "gencert",
            "-config",
            s(&profile),
            "-remote",
            &renamed.url(),
            "-tls-remote-ca",
            s(&pki.primary_ca()),
            "-bare",
            "n",
            s(&csr),
        ])
        .assert()
        .code(4)
        .stderr(contains("does not name this host"));
    assert!(!dir.join("n.pem").exists());
}

/// http:// is refused (exit 2) unless --allow-plaintext, which warns and works.
#[test]
fn plaintext_needs_explicit_consent() {
    let pki = Pki::new();
    let server = pki.start_plain();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let remote = format!("http://127.0.0.1:{}", server.port);
    let profile = pki.request_profile(dir, &remote, &pki.auth_key);
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    nodecert(dir)
        .args(["gencert", "-config", s(&profile), "-bare", "n", s(&csr)])
        .assert()
        .code(2)
        .stderr(contains("plain http").and(contains("--allow-plaintext")))
        .stderr(contains(format!(
            "remote {remote} (remotes.ca in {}) is plain http",
            profile.display()
        )));
    assert_eq!(server.signed_count(), 0);
    nodecert(dir)
        .args([
            "gencert",
            "-config",
            s(&profile),
            "--allow-plaintext",
            "-bare",
            "n",
            s(&csr),
        ])
        .assert()
        .code(0)
        .stderr(contains("warning").and(contains("replaced on the way")));
    assert_eq!(server.signed_count(), 1);
    // The same plain-HTTP CA under a remote nodecert reads as https (host:port): said as such.
    nodecert(dir)
        .args(["gencert", "-config", s(&profile), "-remote"])
        .arg(format!("127.0.0.1:{}", server.port))
        .args(["-bare", "n", s(&csr)])
        .assert()
        .code(4)
        .stderr(contains("the server does not speak TLS (plain HTTP?)"));
}

/// A self-signed TLS certificate (`openssl req -x509`: CA:TRUE) is trusted when it is pinned
/// itself, as Go (so cfssl) trusts a certificate in its root pool: for the remote's name only.
/// Pinned to another CA, it is refused with words saying what to pin.
#[test]
fn a_pinned_self_signed_server_certificate_is_trusted() {
    let pki = Pki::new();
    crate::support::self_signed(
        pki.path(),
        "selfsigned",
        "P-256",
        "/CN=self-signed CA",
        &["subjectAltName=IP:127.0.0.1"],
    );
    let server = pki.start_with_tls("selfsigned");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let profile = pki.request_profile(dir, &server.url(), &pki.auth_key);
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    let pinned = pki.path().join("selfsigned.pem");
    gencert_in(dir, &profile, &pinned)
        .args(["-bare", "n", s(&csr)])
        .assert()
        .code(0);
    assert_eq!(server.signed_count(), 1);
    // Under a name the certificate does not carry: refused.
    gencert_in(dir, &profile, &pinned)
        .args(["-remote", &format!("https://localhost:{}", server.port)])
        .args(["-bare", "m", s(&csr)])
        .assert()
        .code(4)
        .stderr(contains("does not name this host"));
    gencert_in(dir, &profile, &pki.primary_ca())
        .args(["-bare", "m", s(&csr)])
        .assert()
        .code(4)
        .stderr(contains(
            "the server presents a CA certificate (CA:TRUE) as its own, which is trusted only \
             when -tls-remote-ca holds that very certificate",
        ));
    assert_eq!(server.signed_count(), 1);
}

/// Nothing listening: exit 6 (worth retrying), nothing written.
#[test]
fn dead_server_is_unavailable() {
    let pki = Pki::new();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let port = crate::support::ca::free_port();
    let profile = pki.request_profile(dir, &format!("127.0.0.1:{port}"), &pki.auth_key);
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    gencert_in(dir, &profile, &pki.primary_ca())
        .args(["-bare", "n", s(&csr)])
        .assert()
        .code(6)
        .stderr(contains(format!("127.0.0.1:{port}")).and(contains("connection refused")));
    assert_eq!(listing(dir), ["csr.json", "request-profile.json"]);
}

/// A server that accepts and never answers (a fault multirootca cannot produce) is bounded by
/// --timeout: exit 6 after about that long.
#[test]
fn silent_server_times_out() {
    let pki = Pki::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        // Accept the connection and read, never writing a byte.
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = stream.read(&mut buf);
            held.push(stream);
        }
        held
    });
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let profile = pki.request_profile(dir, &format!("127.0.0.1:{port}"), &pki.auth_key);
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    let started = Instant::now();
    gencert_in(dir, &profile, &pki.primary_ca())
        .args(["--timeout", "1s", "-bare", "n", s(&csr)])
        .assert()
        .code(6)
        .stderr(contains("no answer within 1s"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by --timeout"
    );
    drop(holder);
    assert_eq!(listing(dir), ["csr.json", "request-profile.json"]);
}

/// Mutual-TLS flags come in pairs (cfssl silently ignores one alone); a pair that does not
/// match is an input error naming the key file.
#[test]
fn mutual_tls_flags() {
    let t = Setup::new();
    let server_cert = t.pki.path().join("server.pem");
    let mtls = |key: Option<&std::path::Path>| {
        let mut flags = vec!["-mutual-tls-client-cert", s(&server_cert)];
        flags.extend(
            key.map(|k| ["-mutual-tls-client-key", s(k)])
                .into_iter()
                .flatten(),
        );
        t.gencert_bare("n", &t.csr, &flags)
    };
    mtls(None)
        .assert()
        .code(2)
        .stderr(contains("--mutual-tls-client-key"));
    mtls(Some(&t.pki.path().join("secondary-key.pem")))
        .assert()
        .code(3)
        .stderr(
            contains("secondary-key.pem").and(
                contains("does not fit").and(contains("it is not the key of that certificate")),
            ),
        );
    // An encrypted key is said to be encrypted (nodecert reads no passphrase).
    let encrypted = t.dir().join("encrypted-key.pem");
    crate::support::tool(
        t.dir(),
        "openssl",
        &[
            "pkey",
            "-in",
            s(&t.pki.path().join("server-key.pem")),
            "-aes256",
            "-passout",
            "pass:secret",
            "-out",
            s(&encrypted),
        ],
    );
    mtls(Some(&encrypted))
        .assert()
        .code(3)
        .stderr(contains("encrypted-key.pem").and(contains("the key is encrypted")));
    // A matching pair is presented; multirootca does not ask for it, so the request succeeds.
    mtls(Some(&t.pki.path().join("server-key.pem")))
        .assert()
        .code(0);
    // The pair being renewed may be its own client identity (kubelet-style rotation): read
    // before anything is written, so no input a write could spoil; the new pair replaces it.
    let before = crate::support::pair_bytes(t.dir(), "n");
    t.gencert_bare(
        "n",
        &t.csr,
        &[
            "-mutual-tls-client-cert",
            "n.pem",
            "-mutual-tls-client-key",
            "n-key.pem",
        ],
    )
    .assert()
    .code(0);
    assert_ne!(crate::support::pair_bytes(t.dir(), "n"), before);
    crate::support::assert_key_matches(t.dir(), &t.dir().join("n-key.pem"), &t.dir().join("n.pem"));
    // Crossed (the key output as the client certificate) is still refused.
    t.gencert_bare(
        "n",
        &t.csr,
        &[
            "-mutual-tls-client-cert",
            "n-key.pem",
            "-mutual-tls-client-key",
            "n.pem",
        ],
    )
    .assert()
    .code(2);
}

/// The environment's HTTPS_PROXY is honoured as curl and cfssl honour it, with TLS end to end
/// through the tunnel (a real tinyproxy): the request reaches the CA through the proxy,
/// NO_PROXY bypasses it, and a proxy that refuses the tunnel or is down is named as the culprit
/// (exit 6), never with its credentials, and nothing is written.
#[test]
fn https_proxy_from_the_environment() {
    let t = Setup::new();
    let (dir, port) = (t.dir(), t.server.port);
    let proxy = crate::support::proxy::Tinyproxy::start(port);
    t.gencert(&[])
        .env("HTTPS_PROXY", proxy.url())
        .assert()
        .code(0);
    assert!(
        proxy.log().contains(&format!("CONNECT 127.0.0.1:{port} ")),
        "the request did not go through the proxy:\n{}",
        proxy.log()
    );
    assert_eq!(t.server.signed_count(), 1);
    crate::support::assert_verifies(dir, &t.pki.primary_ca(), &dir.join("node.pem"));

    // NO_PROXY: straight to the CA, although the proxy named is dead.
    let dead = format!("http://127.0.0.1:{}", crate::support::ca::free_port());
    t.gencert(&[])
        .env("HTTPS_PROXY", &dead)
        .env("NO_PROXY", "127.0.0.1")
        .assert()
        .code(0);
    assert_eq!(t.server.signed_count(), 2);
    // NO_PROXY=* is every host, an IP address included, as curl and Go read it.
    t.gencert(&[])
        .env("HTTPS_PROXY", &dead)
        .env("NO_PROXY", "*")
        .assert()
        .code(0);
    assert_eq!(t.server.signed_count(), 3);

    let before = std::fs::read(dir.join("node.pem")).unwrap();
    // A proxy that does not allow the CA's port: it, not the CA, is named.
    let strict = crate::support::proxy::Tinyproxy::start(crate::support::ca::free_port());
    t.gencert(&[])
        .env("https_proxy", strict.url())
        .assert()
        .code(6)
        .stderr(contains(format!(
            "the proxy {} (from the environment) would not open a tunnel to the CA",
            strict.url()
        )))
        .stderr(contains("NO_PROXY"));
    // A dead proxy with credentials in its URL: named without them.
    let with_password = dead.replace("http://", "http://operator:hunter2-proxy@");
    t.gencert(&[])
        .env("HTTPS_PROXY", &with_password)
        .assert()
        .code(6)
        .stderr(contains(format!("cannot reach the proxy {dead} ")))
        .stderr(contains("hunter2-proxy").not());
    // A proxy that wants credentials: without them, it is named with what to do; with them in
    // the proxy URL, the request goes through, and the password is never printed.
    let guarded = crate::support::proxy::Tinyproxy::start_with_auth(
        port,
        Some(("operator", "hunter2-proxy")),
    );
    t.gencert(&[])
        .env("HTTPS_PROXY", guarded.url())
        .assert()
        .code(6)
        .stderr(contains(format!(
            "the proxy {} (from the environment) wants credentials (407)",
            guarded.url()
        )));
    assert_eq!(t.server.signed_count(), 3);
    assert_eq!(std::fs::read(dir.join("node.pem")).unwrap(), before);
    assert!(listing(dir).iter().all(|f| !f.contains(".nodecert-")));
    let with_credentials = guarded
        .url()
        .replace("http://", "http://operator:hunter2-proxy@");
    t.gencert(&["-loglevel", "0"])
        .env("HTTPS_PROXY", &with_credentials)
        .assert()
        .code(0)
        .stderr(contains(format!("through the proxy {}", guarded.url())))
        .stderr(contains("hunter2-proxy").not());
    assert_eq!(t.server.signed_count(), 4);
}
