//! A hand-written HTTP server for faults a real multirootca cannot produce: resets, silence,
//! stalls, odd statuses, garbage, oversized bodies, and certificates that are wrong in one
//! specific way (issued with rcgen from the CSR it receives, so only the intended defect differs).
//! Plain HTTP: nodecert is run with `--allow-plaintext` against it, which leaves the body
//! handling (the part under test) the same as over TLS.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;

/// What the server does with each request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Reads part of the request, writes part of a status line, and closes with unread data
    /// (the kernel answers with RST).
    Reset,
    /// Reads the request and never answers.
    HangHeaders,
    /// Sends headers promising 4096 bytes, 10 of them, then stalls.
    StallBody,
    /// Sends headers promising 4096 bytes, then one byte every 200 ms (a tarpit): no read
    /// waits long, the reply never ends.
    DripBody,
    /// Answers with this status and body.
    Status(u16, String),
    /// Answers 200 with a body of this many bytes, streamed.
    Huge(usize),
    /// Signs the CSR it receives, with one defect.
    Issue(Twist),
}

/// The one thing wrong with an issued certificate.
#[derive(Clone, Debug)]
pub enum Twist {
    /// Issued under the name of the CA in this PEM (the pinned one), signed by another key.
    Impostor(String),
    /// For a key other than the CSR's.
    OtherKey,
    /// Without the SANs of the request.
    DropSans,
    /// Expired in 2000.
    Expired,
    /// Valid only from 2090.
    NotYetValid,
    /// Correct, followed by text after the PEM.
    TrailingGarbage,
    /// With a SAN the request did not ask for (a CA profile's policy): a valid certificate.
    ExtraSan,
}

/// A running fault server; stopped on drop.
pub struct FaultServer {
    pub port: u16,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FaultServer {
    pub fn start(fault: Fault) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if halt.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (fault, count, halt) = (fault.clone(), count.clone(), halt.clone());
                std::thread::spawn(move || serve(stream, &fault, &count, &halt));
            }
        });
        Self {
            port,
            requests,
            stop,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(mut stream: TcpStream, fault: &Fault, count: &AtomicUsize, stop: &AtomicBool) {
    if let Fault::Reset = fault {
        let mut first = [0u8; 16];
        if stream.read(&mut first).unwrap_or(0) > 0 {
            count.fetch_add(1, Ordering::Relaxed);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Le");
        }
        return; // dropped with unread request bytes: RST
    }
    let Some(body) = read_request(&mut stream) else {
        return;
    };
    count.fetch_add(1, Ordering::Relaxed);
    let respond = |stream: &mut TcpStream, status: u16, body: &[u8]| {
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body);
    };
    match fault {
        Fault::Reset => unreachable!("handled above"),
        Fault::HangHeaders => hold(stop),
        Fault::StallBody => {
            let _ =
                stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n{\"success\":");
            hold(stop);
        }
        Fault::DripBody => {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n");
            while !stop.load(Ordering::Relaxed) && stream.write_all(b" ").is_ok() {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        Fault::Status(status, text) => respond(&mut stream, *status, text.as_bytes()),
        Fault::Huge(size) => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n");
            let _ = stream.write_all(head.as_bytes());
            let chunk = vec![b'a'; 64 * 1024];
            let mut sent = 0;
            while sent < *size {
                let n = chunk.len().min(size - sent);
                if stream.write_all(&chunk[..n]).is_err() {
                    break;
                }
                sent += n;
            }
        }
        Fault::Issue(twist) => {
            let reply = match issue(&body, twist.clone()) {
                Ok(pem) => {
                    serde_json::json!({"success": true, "result": {"certificate": pem}, "errors": [], "messages": []})
                }
                Err(e) => {
                    serde_json::json!({"success": false, "result": null, "errors": [{"code": 1, "message": e}], "messages": []})
                }
            };
            respond(&mut stream, 200, reply.to_string().as_bytes());
        }
    }
}

fn hold(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads one HTTP request and returns its body.
fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while data.len() < end + 4 + length {
                let n = stream.read(&mut buf).ok()?;
                if n == 0 {
                    return None;
                }
                data.extend_from_slice(&buf[..n]);
            }
            return Some(data[end + 4..end + 4 + length].to_vec());
        }
    }
}

/// Issues a certificate for the CSR in an authsign body, with `twist`.
fn issue(body: &[u8], twist: Twist) -> Result<String, String> {
    let envelope: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let inner = base64::engine::general_purpose::STANDARD
        .decode(envelope["request"].as_str().ok_or("no request")?)
        .map_err(|e| e.to_string())?;
    let inner: serde_json::Value = serde_json::from_slice(&inner).map_err(|e| e.to_string())?;
    let csr_pem = inner["certificate_request"].as_str().ok_or("no CSR")?;
    let mut csr =
        rcgen::CertificateSigningRequestParams::from_pem(csr_pem).map_err(|e| e.to_string())?;

    let ca_key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let issuer = match &twist {
        Twist::Impostor(ca_pem) => {
            rcgen::Issuer::from_ca_cert_pem(ca_pem, ca_key).map_err(|e| e.to_string())?
        }
        _ => {
            let mut params =
                rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            rcgen::Issuer::new(params, ca_key)
        }
    };

    let params = &mut csr.params;
    params.not_before = rcgen::date_time_ymd(2026, 1, 1);
    params.not_after = rcgen::date_time_ymd(2080, 1, 1);
    match twist {
        Twist::Expired => {
            params.not_before = rcgen::date_time_ymd(1999, 1, 1);
            params.not_after = rcgen::date_time_ymd(2000, 1, 1);
        }
        Twist::NotYetValid => {
            params.not_before = rcgen::date_time_ymd(2090, 1, 1);
            params.not_after = rcgen::date_time_ymd(2091, 1, 1);
        }
        Twist::DropSans => params.subject_alt_names.clear(),
        Twist::ExtraSan => params.subject_alt_names.push(rcgen::SanType::DnsName(
            "added.example.com".try_into().map_err(|e| format!("{e}"))?,
        )),
        Twist::OtherKey | Twist::TrailingGarbage | Twist::Impostor(_) => {}
    }
    let cert = match twist {
        Twist::OtherKey => {
            let other = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
            params
                .signed_by(&other, &issuer)
                .map_err(|e| e.to_string())?
        }
        _ => csr.signed_by(&issuer).map_err(|e| e.to_string())?,
    };
    let mut pem = cert.pem();
    if let Twist::TrailingGarbage = twist {
        pem.push_str("garbage after the certificate\n");
    }
    Ok(pem)
}
