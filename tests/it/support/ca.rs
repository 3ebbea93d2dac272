//! A throw-away PKI made with the real cfssl tools, and a real multirootca serving it over TLS.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{s, tool, write};

/// Two CAs (labels `primary`, the server's default, and `secondary`), a TLS certificate for
/// 127.0.0.1 issued by the primary CA, and a random auth key, all in a temporary directory.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub auth_key: String,
}

impl Pki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let auth_key: String = (0..16).map(|_| format!("{:02x}", rand_byte())).collect();
        super::secrets::register(&auth_key);
        let pki = Self { dir, auth_key };
        for label in ["primary", "secondary"] {
            pki.make_ca(label);
            write(
                pki.path(),
                &format!("{label}-config.json"),
                &pki.ca_config(),
            );
        }
        write(
            pki.path(),
            "server-csr.json",
            r#"{"CN":"multirootca","hosts":["127.0.0.1","localhost"],"key":{"algo":"ecdsa","size":256}}"#,
        );
        let json = tool(
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
                "server-csr.json",
            ],
        );
        cfssljson(pki.path(), &json, "server");
        pki
    }

    /// The CA's policy: the shipped `profiles/ca-config.json` (a default and one profile per
    /// role, all requiring authsign) with this PKI's auth key in place of its `env:` reference,
    /// plus a short-lived `client` profile (client auth only) for the tests of `-profile`.
    fn ca_config(&self) -> String {
        let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/ca-config.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(shipped).unwrap()).unwrap();
        config["auth_keys"]["nodes"]["key"] = self.auth_key.clone().into();
        config["signing"]["profiles"]["client"] = serde_json::json!({
            "expiry": "2h", "auth_key": "nodes", "usages": ["signing", "key encipherment", "client auth"]
        });
        config.to_string()
    }

    /// Makes a self-signed CA `NAME.pem` / `NAME-key.pem` with cfssl.
    pub fn make_ca(&self, name: &str) -> PathBuf {
        write(
            self.path(),
            &format!("{name}-ca-csr.json"),
            &format!(
                r#"{{"CN":"nodecert test {name} root","key":{{"algo":"ecdsa","size":256}},"names":[{{"C":"US","O":"Example"}}],"ca":{{"expiry":"87600h"}}}}"#
            ),
        );
        let json = tool(
            self.path(),
            "cfssl",
            &["gencert", "-initca", &format!("{name}-ca-csr.json")],
        );
        cfssljson(self.path(), &json, name);
        self.path().join(format!("{name}.pem"))
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The CA that issued the server's TLS certificate (and signs label `primary`).
    pub fn primary_ca(&self) -> PathBuf {
        self.path().join("primary.pem")
    }

    pub fn secondary_ca(&self) -> PathBuf {
        self.path().join("secondary.pem")
    }

    /// Starts multirootca over TLS on a free loopback port.
    pub fn start(&self) -> Multirootca {
        Multirootca::start(self, Some("server"))
    }

    /// Starts multirootca over TLS with the certificate `NAME.pem` / `NAME-key.pem`.
    pub fn start_with_tls(&self, name: &str) -> Multirootca {
        Multirootca::start(self, Some(name))
    }

    /// Starts multirootca over plain HTTP (only for the --allow-plaintext test).
    pub fn start_plain(&self) -> Multirootca {
        Multirootca::start(self, None)
    }

    /// Starts `cfssl serve` over TLS (the server certificate of [`Self::start`]), signing with
    /// the primary CA under a policy without auth keys: unlike multirootca, it answers the
    /// unauthenticated `/api/v1/cfssl/sign` (and disables authsign). It logs a line per request
    /// with the path (`"POST /api/v1/cfssl/sign" 200`).
    pub fn start_cfssl_serve(&self) -> Multirootca {
        write(
            self.path(),
            "open-config.json",
            r#"{"signing":{"default":{"expiry":"8760h","usages":["signing","key encipherment","server auth","client auth"]}}}"#,
        );
        Multirootca::spawn(self.path(), "cfssl", |port| {
            let mut args = ["serve", "-address", "127.0.0.1", "-port"]
                .map(String::from)
                .to_vec();
            args.push(port.to_string());
            args.extend(
                [
                    "-ca",
                    "primary.pem",
                    "-ca-key",
                    "primary-key.pem",
                    "-config",
                    "open-config.json",
                    "-tls-cert",
                    "server.pem",
                    "-tls-key",
                    "server-key.pem",
                ]
                .map(String::from),
            );
            args
        })
    }

    /// Issues a TLS server certificate `NAME.pem` for `hosts` from the primary CA with cfssl,
    /// valid for `expiry` (a Go duration such as "1s").
    pub fn issue_tls_cert(&self, name: &str, hosts: &[&str], expiry: &str) {
        write(
            self.path(),
            &format!("{name}-policy.json"),
            &format!(
                r#"{{"signing":{{"default":{{"expiry":"{expiry}","usages":["digital signature","key encipherment","server auth"]}}}}}}"#
            ),
        );
        let hosts = serde_json::to_string(hosts).unwrap();
        write(
            self.path(),
            &format!("{name}-csr.json"),
            &format!(r#"{{"CN":"{name}","hosts":{hosts},"key":{{"algo":"ecdsa","size":256}}}}"#),
        );
        let json = tool(
            self.path(),
            "cfssl",
            &[
                "gencert",
                "-ca",
                "primary.pem",
                "-ca-key",
                "primary-key.pem",
                "-config",
                &format!("{name}-policy.json"),
                &format!("{name}-csr.json"),
            ],
        );
        cfssljson(self.path(), &json, name);
    }

    /// A request profile for `remote` with the auth key written as `key` (hex, env:…, file:…),
    /// in `dir`.
    pub fn request_profile(&self, dir: &Path, remote: &str, key: &str) -> PathBuf {
        self.request_profile_with_keys(dir, remote, &[key])
    }

    /// [`Self::request_profile`] whose `auth_keys` hold `keys`, the first (`k`) used and the
    /// others (`spare1`, …) named but unused, as a CA's profile can keep a second key.
    pub fn request_profile_with_keys(&self, dir: &Path, remote: &str, keys: &[&str]) -> PathBuf {
        let entries: Vec<String> = (keys.iter().enumerate())
            .map(|(i, key)| {
                if key.len() >= 16 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
                    super::secrets::register(key);
                }
                let name = if i == 0 {
                    "k".into()
                } else {
                    format!("spare{i}")
                };
                format!(r#""{name}":{{"type":"standard","key":"{key}"}}"#)
            })
            .collect();
        write(
            dir,
            "request-profile.json",
            &format!(
                r#"{{"signing":{{"default":{{"auth_remote":{{"remote":"ca","auth_key":"k"}}}}}},
                "auth_keys":{{{}}},
                "remotes":{{"ca":"{remote}"}}}}"#,
                entries.join(",")
            ),
        )
    }
}

/// A running multirootca (or `cfssl serve`, see [`Pki::start_cfssl_serve`]); killed by PID and
/// reaped on drop.
pub struct Multirootca {
    child: Child,
    pub port: u16,
    log: PathBuf,
    /// The local port of the connection that found the server listening: the server logs it
    /// (a TLS handshake error, EOF), and [`Self::request_log`] leaves that line out.
    probe_port: u16,
}

impl Multirootca {
    fn start(pki: &Pki, tls: Option<&str>) -> Self {
        let dir = pki.path();
        let mut roots = String::new();
        for label in ["primary", "secondary"] {
            roots.push_str(&format!(
                "[ {label} ]\nprivate = file://{}\ncertificate = {}\nconfig = {}\n\n",
                s(&dir.join(format!("{label}-key.pem"))),
                s(&dir.join(format!("{label}.pem"))),
                s(&dir.join(format!("{label}-config.json"))),
            ));
        }
        write(dir, "multiroot.conf", &roots);
        let (cert, key) = tls
            .map(|name| (format!("{name}.pem"), format!("{name}-key.pem")))
            .unzip();
        Self::spawn(dir, "multirootca", |port| {
            let mut args = vec!["-a".to_string(), format!("127.0.0.1:{port}")];
            args.extend(["-roots", "multiroot.conf", "-l", "primary"].map(String::from));
            if let (Some(cert), Some(key)) = (&cert, &key) {
                args.extend([
                    "-tls-cert".to_string(),
                    cert.clone(),
                    "-tls-key".into(),
                    key.clone(),
                ]);
            }
            args
        })
    }

    /// Runs `program` with `args_for(PORT)` in `dir` on a free port, logging stderr to a file,
    /// and waits until it listens there. A port that was free a moment ago can be taken by
    /// another test before the server binds it (the probe then reaches that test's listener
    /// and the server exits): the server must still be running a moment after the probe, or
    /// it is started again on another port.
    fn spawn(dir: &Path, program: &str, args_for: impl Fn(u16) -> Vec<String>) -> Self {
        for _ in 0..3 {
            let port = free_port();
            let log = dir.join(format!("{program}-{port}.log"));
            let child = Command::new(program)
                .args(args_for(port))
                .current_dir(dir)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("{program} runs (apt-get install golang-cfssl): {e}"));
            let mut server = Self {
                child,
                port,
                log,
                probe_port: 0,
            };
            server.probe_port = wait_for_listener(program, port, || server.log());
            std::thread::sleep(Duration::from_millis(50));
            if server.child.try_wait().unwrap().is_none() {
                return server;
            }
        }
        panic!("{program} lost its port to another listener three times");
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT` (no scheme).
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// How many certificates the server has signed so far (from its log).
    pub fn signed_count(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("signed certificate with serial")
            .count()
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every line the server logged about a client since it started listening: a signature
    /// (two lines), a refusal (`[ERROR] [HTTP 400] …`), a request to another handler, a TLS
    /// handshake that failed or was abandoned. The readiness probe's connection is left out.
    /// Not logged by the server, so not here: a request to a path it does not serve (a 404).
    pub fn request_log(&self) -> Vec<String> {
        let log = self.log();
        let probe = format!("handshake error from 127.0.0.1:{}: ", self.probe_port);
        log.lines()
            .skip_while(|line| !line.contains("Now listening on"))
            .skip(1)
            .filter(|line| !line.contains(&probe))
            .map(str::to_string)
            .collect()
    }
}

/// Waits (up to 10 s) until something accepts connections on 127.0.0.1:`port`, and returns the
/// local port of the connection that got through; panics with `log()` otherwise.
pub fn wait_for_listener(name: &str, port: u16, log: impl Fn() -> String) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(probe) = TcpStream::connect(("127.0.0.1", port)) {
            return probe.local_addr().map_or(0, |a| a.port());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{name} never listened on {port}; log:\n{}", log());
}

impl Drop for Multirootca {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The not-after of the certificate `cert` (relative to `dir`) in Unix seconds, as openssl and
/// date read it.
pub fn not_after_seconds(dir: &Path, cert: &Path) -> i64 {
    let enddate = tool(
        dir,
        "openssl",
        &["x509", "-in", s(cert), "-noout", "-enddate"],
    );
    let date = enddate.trim().trim_start_matches("notAfter=");
    let seconds = tool(dir, "date", &["-d", date, "+%s"]);
    seconds
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("date -d {date:?}: {seconds:?}: {e}"))
}

/// Pipes `json` into the real `cfssljson -bare NAME` in `dir`.
pub fn cfssljson(dir: &Path, json: &str, name: &str) {
    use std::io::Write;
    let mut child = Command::new("cfssljson")
        .args(["-bare", name])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cfssljson runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "cfssljson failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rand_byte() -> u8 {
    let mut b = [0u8; 1];
    getrandom::fill(&mut b).unwrap();
    b[0]
}
