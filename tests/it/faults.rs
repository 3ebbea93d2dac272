//! The fault matrix: each way a CA (or something pretending to be one) can misbehave, and what
//! nodecert does about it: exit code, message, whether it retried, nothing written, an existing
//! pair intact. The table is summarised in the README ("Faults").

use std::process::Command;

use crate::support::fault::{Fault, FaultServer, Twist};
use crate::support::{Pki, listing, node_csr, nodecert, s, write};

/// Where the request goes.
enum Endpoint {
    /// The fault server, over plain HTTP.
    Fault(Fault),
    /// Nothing listening.
    Dead,
    /// The fault server issuing under the pinned CA's name with a key of its own.
    Impostor,
    /// The real multirootca, pinned to a CA that did not issue its TLS certificate.
    WrongCa,
    /// The real multirootca with a TLS certificate for another name.
    NameMismatch,
    /// The real multirootca with an expired TLS certificate.
    ExpiredTls,
    /// `openssl s_server` offering only one old protocol: its flag (`-tls1`) and the name
    /// openssl's client prints once it negotiated it (`TLSv1`).
    OldTls {
        flag: &'static str,
        version: &'static str,
    },
}

struct Case {
    name: &'static str,
    endpoint: Endpoint,
    code: i32,
    message: &'static str,
    retried: bool,
}

fn cases() -> Vec<Case> {
    use Endpoint as E;
    use Fault as F;
    let envelope = |code: u16, message: &str| {
        F::Status(
            code,
            format!(
                r#"{{"success":false,"result":null,"errors":[{{"code":1,"message":"{message}"}}],"messages":[]}}"#
            ),
        )
    };
    vec![
        Case {
            name: "connection refused",
            endpoint: E::Dead,
            code: 6,
            message: "connection refused",
            retried: true,
        },
        Case {
            name: "reset mid-response",
            endpoint: E::Fault(F::Reset),
            code: 6,
            message: "the connection was cut",
            retried: true,
        },
        Case {
            name: "never answers",
            endpoint: E::Fault(F::HangHeaders),
            code: 6,
            message: "no answer within 1s",
            retried: true,
        },
        Case {
            name: "answers then stalls",
            endpoint: E::Fault(F::StallBody),
            code: 6,
            message: "the reply did not arrive in full within 1s",
            retried: true,
        },
        Case {
            name: "answers a byte at a time",
            endpoint: E::Fault(F::DripBody),
            code: 6,
            message: "the reply did not arrive in full within 1s",
            retried: true,
        },
        Case {
            name: "HTTP 429",
            endpoint: E::Fault(F::Status(429, "Too Many Requests".into())),
            code: 6,
            message: "the CA is busy: HTTP 429: Too Many Requests",
            retried: true,
        },
        Case {
            name: "HTTP 400",
            endpoint: E::Fault(envelope(400, "bad request")),
            code: 5,
            message: "refused the request: bad request (code 1)",
            retried: false,
        },
        Case {
            name: "HTTP 401",
            endpoint: E::Fault(envelope(401, "authorisation required")),
            code: 5,
            message: "authorisation required",
            retried: false,
        },
        Case {
            name: "HTTP 403",
            endpoint: E::Fault(envelope(403, "not authorised")),
            code: 5,
            message: "not authorised",
            retried: false,
        },
        Case {
            name: "HTTP 404",
            endpoint: E::Fault(F::Status(404, "404 page not found\n".into())),
            code: 5,
            message: "HTTP 404: 404 page not found",
            retried: false,
        },
        Case {
            name: "HTTP 302",
            endpoint: E::Fault(F::Status(302, "Found".into())),
            code: 5,
            message: "a redirect, which nodecert does not follow",
            retried: false,
        },
        Case {
            name: "HTTP 500",
            endpoint: E::Fault(envelope(500, "internal")),
            code: 6,
            message: "the CA failed (HTTP 500): internal",
            retried: true,
        },
        Case {
            name: "HTTP 502",
            endpoint: E::Fault(F::Status(502, "Bad Gateway".into())),
            code: 6,
            message: "HTTP 502: Bad Gateway",
            retried: true,
        },
        Case {
            name: "HTTP 503",
            endpoint: E::Fault(F::Status(503, "".into())),
            code: 6,
            message: "HTTP 503: an empty body",
            retried: true,
        },
        Case {
            name: "non-JSON body",
            endpoint: E::Fault(F::Status(200, "<html>hello</html>".into())),
            code: 7,
            message: "not cfssl's JSON envelope",
            retried: false,
        },
        Case {
            name: "truncated JSON",
            endpoint: E::Fault(F::Status(
                200,
                r#"{"success":true,"result":{"certifi"#.into(),
            )),
            code: 7,
            message: "not cfssl's JSON envelope",
            retried: false,
        },
        Case {
            name: "success:false with errors",
            endpoint: E::Fault(envelope(200, "policy violation")),
            code: 5,
            message: "policy violation (code 1)",
            retried: false,
        },
        Case {
            name: "success:true without a certificate",
            endpoint: E::Fault(F::Status(
                200,
                r#"{"success":true,"result":{},"errors":[],"messages":[]}"#.into(),
            )),
            code: 7,
            message: "sent no certificate",
            retried: false,
        },
        Case {
            name: "a 64 MB body",
            endpoint: E::Fault(F::Huge(64 << 20)),
            code: 7,
            message: "larger than 1024 KiB",
            retried: false,
        },
        Case {
            name: "certificate for another key",
            endpoint: E::Fault(F::Issue(Twist::OtherKey)),
            code: 7,
            message: "different public key",
            retried: false,
        },
        Case {
            name: "certificate missing a requested SAN",
            endpoint: E::Fault(F::Issue(Twist::DropSans)),
            code: 7,
            message: "lacks requested SANs: DNS:node1.example.com, IP:127.0.0.1",
            retried: false,
        },
        Case {
            name: "expired certificate",
            endpoint: E::Fault(F::Issue(Twist::Expired)),
            code: 7,
            message: "as issued (valid from",
            retried: false,
        },
        Case {
            name: "not-yet-valid certificate",
            endpoint: E::Fault(F::Issue(Twist::NotYetValid)),
            code: 7,
            message: "not valid until",
            retried: false,
        },
        Case {
            name: "PEM with trailing garbage",
            endpoint: E::Fault(F::Issue(Twist::TrailingGarbage)),
            code: 7,
            message: "text before or after it",
            retried: false,
        },
        Case {
            name: "certificate naming the pinned CA, signed by another key",
            endpoint: E::Impostor,
            code: 7,
            message: "that CA's key does not verify its signature",
            retried: false,
        },
        Case {
            name: "TLS certificate from another CA",
            endpoint: E::WrongCa,
            code: 4,
            message: "not issued by the trusted CA",
            retried: false,
        },
        Case {
            name: "TLS hostname mismatch",
            endpoint: E::NameMismatch,
            code: 4,
            message: "does not name this host",
            retried: false,
        },
        Case {
            name: "expired TLS certificate",
            endpoint: E::ExpiredTls,
            code: 4,
            message: "certificate has expired",
            retried: false,
        },
        Case {
            name: "TLS 1.0 only",
            endpoint: E::OldTls {
                flag: "-tls1",
                version: "TLSv1",
            },
            code: 4,
            message: "refused TLS 1.2 and 1.3",
            retried: false,
        },
        Case {
            name: "TLS 1.1 only",
            endpoint: E::OldTls {
                flag: "-tls1_1",
                version: "TLSv1.1",
            },
            code: 4,
            message: "refused TLS 1.2 and 1.3",
            retried: false,
        },
    ]
}

#[test]
fn fault_matrix() {
    let pki = Pki::new();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    write(dir, "node.pem", "OLD CERTIFICATE\n");
    write(dir, "node-key.pem", "OLD KEY\n");
    let files_before = listing(dir);
    let mut failures = Vec::new();
    let mut rows = Vec::new();
    for case in cases() {
        let (remote, pin, guard) = endpoint(&pki, &case.endpoint);
        let profile = pki.request_profile(dir, &remote, &pki.auth_key);
        let mut cmd = nodecert(dir);
        cmd.args([
            "gencert",
            "-config",
            s(&profile),
            "--retries",
            "1",
            "--timeout",
            "1s",
            "-bare",
            "node",
        ]);
        if remote.starts_with("http://") {
            cmd.arg("--allow-plaintext");
        }
        cmd.args(["-tls-remote-ca", s(&pin)]).arg(s(&csr));
        let started = std::time::Instant::now();
        let out = cmd.assert().get_output().clone();
        let elapsed = started.elapsed().as_secs_f64();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let last = stderr.lines().last().unwrap_or_default().to_string();
        let attempts = match &guard {
            Guard::Fault(server) => server.requests(),
            _ => 1 + stderr.matches("retry 1 of 1").count(),
        };
        let retried = attempts > 1;
        let mut problems = Vec::new();
        if out.status.code() != Some(case.code) {
            problems.push(format!(
                "exit {:?}, expected {}",
                out.status.code(),
                case.code
            ));
        }
        if !last.starts_with("nodecert: error: ") || !last.contains(case.message) {
            problems.push(format!("message {last:?} lacks {:?}", case.message));
        }
        if retried != case.retried {
            problems.push(format!("retried: {retried}, expected {}", case.retried));
        }
        // A silent server costs exactly --timeout (1 s) per attempt, plus the backoff before
        // the retry (under 1 s for the first) and process start-up: so at least one second per
        // attempt the server saw, and at most that plus one second per retry and 1.5 s of slack.
        let silent = matches!(
            case.endpoint,
            Endpoint::Fault(Fault::HangHeaders | Fault::StallBody | Fault::DripBody)
        );
        let bound = attempts as f64..(2 * attempts) as f64 + 0.5;
        if silent && (attempts == 0 || !bound.contains(&elapsed)) {
            problems.push(format!(
                "took {elapsed:.2}s over {attempts} attempt(s): not bounded by --timeout 1s \
                 per attempt ({bound:.1?})"
            ));
        }
        if std::fs::read_to_string(dir.join("node.pem")).unwrap() != "OLD CERTIFICATE\n"
            || std::fs::read_to_string(dir.join("node-key.pem")).unwrap() != "OLD KEY\n"
        {
            problems.push("the existing pair changed".into());
        }
        let mut expected = files_before.clone();
        expected.push("request-profile.json".into());
        expected.sort();
        if listing(dir) != expected {
            problems.push(format!("files written: {:?}", listing(dir)));
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}", case.name, problems.join("; ")));
        }
        rows.push(format!(
            "| {} | {} | {} | {} | {elapsed:.2}s |",
            case.name,
            case.code,
            if case.retried { "yes" } else { "no" },
            case.message
        ));
        std::fs::remove_file(&profile).unwrap();
    }
    eprintln!("{}", rows.join("\n"));
    assert!(
        failures.is_empty(),
        "fault matrix:\n{}",
        failures.join("\n")
    );
}

/// A 64 MB reply is read only up to the limit: peak memory stays small.
#[test]
fn oversized_reply_keeps_memory_bounded() {
    let pki = Pki::new();
    let server = FaultServer::start(Fault::Huge(64 << 20));
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    let profile = pki.request_profile(dir, &server.url(), &pki.auth_key);
    // python3 reports the child's peak RSS (KiB) from getrusage.
    let script = "import resource,subprocess,sys; r=subprocess.run(sys.argv[1:]).returncode; \
                  print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r)";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(assert_cmd::cargo::cargo_bin("nodecert"))
        .args([
            "gencert",
            "-config",
            s(&profile),
            "--allow-plaintext",
            s(&csr),
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    let peak_kib: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(
        peak_kib < 32 * 1024,
        "peak RSS {peak_kib} KiB for a 64 MB reply"
    );
}

/// Keeps whatever serves an endpoint alive for the case.
enum Guard {
    Fault(FaultServer),
    // The next two are only held, for their Drop.
    Real(#[allow(dead_code)] crate::support::ca::Multirootca),
    Process(#[allow(dead_code)] ChildGuard),
    None,
}

struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The remote URL, the CA file to pin, and the guard keeping the endpoint up.
fn endpoint(pki: &Pki, endpoint: &Endpoint) -> (String, std::path::PathBuf, Guard) {
    match endpoint {
        Endpoint::Fault(fault) => {
            let server = FaultServer::start(fault.clone());
            (server.url(), pki.primary_ca(), Guard::Fault(server))
        }
        Endpoint::Impostor => {
            let pinned = std::fs::read_to_string(pki.primary_ca()).unwrap();
            let server = FaultServer::start(Fault::Issue(Twist::Impostor(pinned)));
            (server.url(), pki.primary_ca(), Guard::Fault(server))
        }
        Endpoint::Dead => (
            format!("127.0.0.1:{}", crate::support::ca::free_port()),
            pki.primary_ca(),
            Guard::None,
        ),
        Endpoint::WrongCa => {
            let server = pki.start();
            (server.url(), pki.secondary_ca(), Guard::Real(server))
        }
        Endpoint::NameMismatch => {
            pki.issue_tls_cert("elsewhere", &["ca.elsewhere.example"], "8760h");
            let server = pki.start_with_tls("elsewhere");
            (server.url(), pki.primary_ca(), Guard::Real(server))
        }
        Endpoint::ExpiredTls => {
            pki.issue_tls_cert("expired", &["127.0.0.1"], "1s");
            std::thread::sleep(std::time::Duration::from_millis(1500));
            let server = pki.start_with_tls("expired");
            (server.url(), pki.primary_ca(), Guard::Real(server))
        }
        Endpoint::OldTls { flag, version } => {
            let port = crate::support::ca::free_port();
            let child = Command::new("openssl")
                .args([
                    "s_server",
                    "-accept",
                    &format!("127.0.0.1:{port}"),
                    "-cert",
                    "server.pem",
                    "-key",
                    "server-key.pem",
                    flag,
                    "-cipher",
                    "DEFAULT:@SECLEVEL=0",
                    "-quiet",
                ])
                .current_dir(pki.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("openssl s_server runs");
            // Guarded before the checks, which panic when they fail.
            let guard = Guard::Process(ChildGuard(child));
            wait_port(port);
            assert_negotiates(pki.path(), port, flag, version);
            (format!("https://127.0.0.1:{port}"), pki.primary_ca(), guard)
        }
    }
}

/// Asserts that openssl's own client completes a handshake at `version` with the server on
/// `port`. OpenSSL 3 offers TLS 1.0 and 1.1 only at security level 0 (hence the servers'
/// `-cipher DEFAULT:@SECLEVEL=0`); a server that cannot offer its protocol answers every
/// ClientHello with an alert, and its row would pass without testing anything.
fn assert_negotiates(dir: &std::path::Path, port: u16, flag: &str, version: &str) {
    let out = crate::support::tool(
        dir,
        "openssl",
        &[
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            flag,
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
        ],
    );
    assert!(
        out.lines()
            .any(|l| l.trim() == format!("Protocol  : {version}"))
            && !out.contains("Cipher is (NONE)"),
        "openssl s_server {flag} did not negotiate {version}:\n{out}"
    );
}

fn wait_port(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("port {port} never opened");
}

/// A run stopped by SIGTERM, SIGINT or SIGHUP while the CA keeps it waiting (the key already
/// staged in its temporary file) removes its temporary files and dies of that signal, as the
/// caller expects; an existing pair stays as it was.
#[test]
fn a_signal_mid_request_leaves_no_temporary_files() {
    use std::os::unix::process::ExitStatusExt as _;
    let pki = Pki::new();
    let server = FaultServer::start(Fault::HangHeaders);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let csr = write(dir, "csr.json", &node_csr("rsa", 2048));
    let profile = pki.request_profile(dir, &server.url(), &pki.auth_key);
    let old = [("n.pem", "old cert\n"), ("n-key.pem", "old key\n")];
    for (name, content) in old {
        write(dir, name, content);
    }
    for (signal, number) in [("TERM", 15), ("INT", 2), ("HUP", 1)] {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("nodecert"))
            .args(["gencert", "-config", s(&profile), "--allow-plaintext"])
            .args(["-bare", "n", s(&csr)])
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // The key's temporary file is written while the request waits on the server.
        let staged_key = || {
            std::fs::read_dir(dir).unwrap().flatten().any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".n-key.pem.nodecert-")
                    && e.metadata().is_ok_and(|m| m.len() > 0)
            })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !staged_key() {
            assert!(
                std::time::Instant::now() < deadline,
                "no staged key: {:?}",
                listing(dir)
            );
            assert!(child.try_wait().unwrap().is_none(), "nodecert ended early");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let killed = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(number), "SIG{signal}: {status:?}");
        assert!(
            listing(dir).iter().all(|f| !f.contains(".nodecert-")),
            "SIG{signal} left {:?}",
            listing(dir)
        );
        for (name, content) in old {
            assert_eq!(std::fs::read_to_string(dir.join(name)).unwrap(), content);
        }
    }
}

/// A signal nodecert was started with ignored stays ignored: `nohup` ignores SIGHUP, and a shell
/// ignores SIGINT in its background jobs; the run carries on and issues (a blocked signal would
/// still reach the thread that waits for signals, and end the run).
#[test]
fn a_signal_ignored_at_start_stays_ignored() {
    let t = crate::support::Setup::new();
    let dir = t.dir();
    let gate = crate::support::gate::Gate::start(t.server.addr());
    let profile = t.pki.request_profile(dir, &gate.url(), &t.pki.auth_key);
    let run = Command::new("sh")
        .current_dir(dir)
        .args(["-c", r#"trap '' HUP INT; exec "$0" "$@""#])
        .arg(assert_cmd::cargo::cargo_bin!("nodecert"))
        .args(["gencert", "-config", s(&profile), "-tls-remote-ca"])
        .arg(t.pki.primary_ca())
        .args(["-bare", "node", s(&t.csr)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    gate.wait_for_arrival();
    // Seen by the kernel: ignored, and not blocked (a blocked one would reach sigwait).
    let status = std::fs::read_to_string(format!("/proc/{}/status", run.id())).unwrap();
    let mask = |name: &str| crate::support::signal_mask(&status, name);
    let (hup, int) = (1 << 0, 1 << 1);
    assert_eq!(mask("SigIgn:") & (hup | int), hup | int, "{status}");
    assert_eq!(mask("SigBlk:") & (hup | int), 0, "{status}");
    for signal in ["-HUP", "-INT"] {
        let sent = Command::new("kill")
            .args([signal, &run.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }
    // Let the signals arrive before the request goes on.
    std::thread::sleep(std::time::Duration::from_millis(200));
    gate.open();
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{:?} {stderr}", out.status);
    assert!(dir.join("node.pem").is_file());
    assert_eq!(t.server.signed_count(), 1);
}

/// A CA whose profile adds a SAN issues a valid certificate that the next `--renew-before` run
/// finds changed: said at issuance, since every run would renew it.
#[test]
fn a_ca_that_adds_names_is_warned_about_at_issuance() {
    let t = crate::support::Setup::new();
    let server = FaultServer::start(Fault::Issue(Twist::ExtraSan));
    let run = || {
        let mut cmd = nodecert(t.dir());
        cmd.args(["gencert", "-config", s(&t.profile), "--allow-plaintext"])
            .args([
                "-remote",
                &server.url(),
                "-bare",
                "node",
                "--renew-before",
                "720h",
            ])
            .arg(s(&t.csr));
        cmd
    };
    run().assert().code(0).stderr(predicates::str::contains(
        "the CA issued other names than asked (SANs changed: DNS:added.example.com in the \
         certificate, no longer requested): --renew-before will renew it on every run",
    ));
    run()
        .assert()
        .code(0)
        .stderr(predicates::str::contains("renewed node.pem (SANs changed"));
}
