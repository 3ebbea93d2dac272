//! The parts of an end-to-end run that `bench/compare.sh` cannot see from outside a process: key
//! generation alone, and the CA's own signing time on a TLS connection that is already open.
//! Together they are the floor of a row (no client can do less than generate the key and wait
//! for the CA to sign); the harness prints how far the end-to-end run is from it.
//!
//! ```text
//! floor keygen CSR.JSON RUNS              keys of CSR.JSON's type, generated in this process
//! floor sign PROFILE CA.PEM CSR.JSON RUNS signing requests for one CSR, through nodecert's own
//!                                         transport: RUNS on one connection ("warm"), RUNS
//!                                         each on a new connection ("cold", + TCP and TLS)
//! ```
//!
//! Prints one JSON object of medians and p90s in milliseconds. Built with
//! `cargo build --release --locked --example floor`, so it runs the same code as the binary.

use std::path::Path;
use std::time::{Duration, Instant};

use nodecert::client::CaClient;
use nodecert::csr::CertificateRequest;
use nodecert::job::unix_now;
use nodecert::keygen::PrivateKey;
use nodecert::protocol::SignRequest;
use nodecert::transport::{TlsOptions, Transport};

type Failure = Box<dyn std::error::Error>;

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs = |text: &str| -> Result<usize, Failure> {
        match text.parse() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("RUNS must be a positive integer, not {text:?}").into()),
        }
    };
    let line = match args.as_slice() {
        [cmd, csr, n] if cmd == "keygen" => keygen(Path::new(csr), runs(n)?)?,
        [cmd, profile, ca, csr, n] if cmd == "sign" => {
            sign(Path::new(profile), Path::new(ca), Path::new(csr), runs(n)?)?
        }
        _ => {
            return Err(
                "usage: floor keygen CSR.JSON RUNS | floor sign PROFILE CA.PEM CSR.JSON RUNS"
                    .into(),
            );
        }
    };
    println!("{line}");
    Ok(())
}

fn request(csr: &Path) -> Result<CertificateRequest, Failure> {
    let bytes = std::fs::read(csr)?;
    Ok(CertificateRequest::parse(
        &bytes,
        &csr.display().to_string(),
    )?)
}

/// Key generation only: no CSR, no PEM, no file.
fn keygen(csr: &Path, runs: usize) -> Result<serde_json::Value, Failure> {
    let spec = request(csr)?.key;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let key = PrivateKey::generate(spec)?;
        times.push(start.elapsed());
        drop(key);
    }
    Ok(serde_json::json!({
        "key": spec.to_string(),
        "keygen_ms": median(&mut times),
        "keygen_p90_ms": p90(&mut times),
    }))
}

/// The CA's signing time for one CSR: requests on an open connection, and on new ones.
fn sign(profile: &Path, ca: &Path, csr: &Path, runs: usize) -> Result<serde_json::Value, Failure> {
    let request = request(csr)?;
    let key = PrivateKey::generate(request.key)?;
    let csr_pem = pem::encode(&pem::Pem::new(
        "CERTIFICATE REQUEST",
        request.to_csr_der(&key)?,
    ));
    let target = nodecert::profile::resolve(Some(profile), "", None)?;
    let tls = TlsOptions {
        pinned_ca: Some(ca.to_path_buf()),
        client_identity: None,
    };
    let timeout = Duration::from_secs(30);
    let sign_request = SignRequest {
        hosts: None,
        certificate_request: &csr_pem,
        subject: None,
        profile: "",
        crl_override: "",
        label: "",
    };
    let once = |transport: &Transport| -> Result<Duration, Failure> {
        let body = sign_request.to_body(target.auth_key.as_ref(), unix_now());
        let client = CaClient {
            target: &target,
            transport,
        };
        let start = Instant::now();
        client.certificate(target.sign_path(), &body, Some(request.key))?;
        Ok(start.elapsed())
    };

    let warm_transport = Transport::new(&tls, timeout)?;
    once(&warm_transport)?; // opens the connection that the timed requests reuse
    let mut warm = Vec::with_capacity(runs);
    let mut cold = Vec::with_capacity(runs);
    for _ in 0..runs {
        warm.push(once(&warm_transport)?);
        let fresh = Transport::new(&tls, timeout)?;
        cold.push(once(&fresh)?);
    }
    Ok(serde_json::json!({
        "key": request.key.to_string(),
        "warm_ms": median(&mut warm),
        "warm_p90_ms": p90(&mut warm),
        "cold_ms": median(&mut cold),
        "cold_p90_ms": p90(&mut cold),
    }))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(times: &mut [Duration]) -> f64 {
    times.sort();
    let n = times.len();
    if n % 2 == 1 {
        ms(times[n / 2])
    } else {
        (ms(times[n / 2 - 1]) + ms(times[n / 2])) / 2.0
    }
}

/// Nearest-rank 90th percentile, as the harness computes it.
fn p90(times: &mut [Duration]) -> f64 {
    times.sort();
    let rank = (0.9 * times.len() as f64).ceil() as usize;
    ms(times[rank.max(1) - 1])
}
