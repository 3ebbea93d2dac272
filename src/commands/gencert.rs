//! `nodecert gencert`: csr.json → local key + CSR → authsign → checked certificate → files.
//!
//! The order is chosen so that every input error is found before a key is generated, and every
//! output error before the CA is asked to sign: a run either ends with all outputs written or
//! leaves the disk as it was.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cli::GencertArgs;
use crate::csr::CertificateRequest;
use crate::error::{Error, Result};
use crate::keygen::{KeySpec, PrivateKey, pem_encode};
use crate::output::{Bundle, Destination, Reserved};
use crate::profile::{self, Target};
use crate::protocol::{self, AUTHSIGN_PATH, Reply, SIGN_PATH, SignRequest};
use crate::transport::{TlsOptions, Transport};
use crate::verify;

/// Everything gencert needs, resolved from the command line and the files it names.
#[derive(Debug)]
pub struct Plan {
    pub request: CertificateRequest,
    /// `Some` when `-hostname` replaced the hosts: then they are also sent to the CA.
    pub hostname_override: Option<Vec<String>>,
    pub target: Target,
    pub tls: TlsOptions,
    pub profile: String,
    pub label: String,
    pub destination: Destination,
    pub timeout: Duration,
}

impl Plan {
    /// Resolves the arguments: reads csr.json and the request profile, applies the overrides.
    pub fn from_args(args: &GencertArgs) -> Result<Self> {
        let (request, hostname_override) = super::load_request(&args.request)?;
        let target = profile::resolve(
            args.config.as_deref(),
            &args.profile,
            args.remote.as_deref(),
        )?;
        if let Some(remote) = target.remotes.iter().find(|r| r.is_plaintext()) {
            if !args.allow_plaintext {
                return Err(Error::Usage(format!(
                    "remote {remote} is plain http: the auth token and CSR would travel in clear. Use https://, or pass --allow-plaintext to accept that"
                )));
            }
            log::warn!(
                "remote {remote} is plain http: the auth token and CSR travel in clear (--allow-plaintext)"
            );
        }
        let destination = match (&args.bare, &args.cert, &args.key) {
            (Some(name), _, _) => {
                if name.is_empty() {
                    return Err(Error::Usage(
                        "flag -bare: give a NAME for NAME.pem, NAME-key.pem, NAME.csr".into(),
                    ));
                }
                Destination::bare(name)
            }
            (None, Some(cert), Some(key)) => Destination::Files {
                cert: Some(cert.clone()),
                key: key.clone(),
                csr: args.csr.clone(),
            },
            _ => Destination::Stdout,
        };
        let client_identity = match (&args.mutual_tls_client_cert, &args.mutual_tls_client_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            _ => None,
        };
        Ok(Self {
            request,
            hostname_override,
            target,
            tls: TlsOptions {
                pinned_ca: args.tls_remote_ca.clone(),
                client_identity,
            },
            profile: args.profile.clone(),
            label: args.label.clone(),
            destination,
            timeout: args.timeout,
        })
    }
}

/// Runs gencert.
pub fn run(args: &GencertArgs) -> Result<()> {
    let plan = Plan::from_args(args)?;
    execute(&plan)
}

/// Executes a resolved plan.
pub fn execute(plan: &Plan) -> Result<()> {
    let transport = Transport::new(&plan.tls, plan.timeout)?;
    let reserved = Reserved::new(plan.destination.clone())?;

    let key = PrivateKey::generate(plan.request.key)?;
    let csr_pem = pem_encode("CERTIFICATE REQUEST", &plan.request.to_csr_der(&key)?);
    log::debug!("generated a {} key and its CSR", key.spec());

    let sign_request = SignRequest {
        hosts: plan.hostname_override.as_deref(),
        certificate_request: &csr_pem,
        profile: &plan.profile,
        crl_override: "",
        label: &plan.label,
    };
    let cert_pem = request_certificate(plan, &transport, &sign_request)?;

    let now = unix_now();
    let sans = plan.request.sans();
    let issued = verify::check(&cert_pem.1, key.spki_der(), &sans, now).map_err(|detail| {
        Error::BadResponse {
            server: cert_pem.0.clone(),
            detail,
        }
    })?;
    let key_pem = key.to_pem();
    reserved.commit(&Bundle {
        cert: Some(&issued.pem),
        csr: &csr_pem,
        key: &key_pem,
    })?;
    log::debug!("issued serial {} by {}", issued.serial, cert_pem.0);
    Ok(())
}

/// Sends the request to each remote in order until one answers; moves on only when a remote is
/// unreachable, times out or fails with 5xx. Returns the server name and the certificate PEM.
fn request_certificate(
    plan: &Plan,
    transport: &Transport,
    request: &SignRequest<'_>,
) -> Result<(String, String)> {
    let auth_key = plan.target.auth_key.as_ref();
    let path = if auth_key.is_some() {
        AUTHSIGN_PATH
    } else {
        SIGN_PATH
    };
    let body = request.to_body(auth_key, unix_now());
    let mut last_error = None;
    for remote in &plan.target.remotes {
        let server = remote.display_name();
        let url = remote.endpoint(path);
        log::debug!("POST {url}");
        let outcome = transport
            .post(remote, &url, body.clone())
            .and_then(
                |reply| match protocol::parse_sign_reply(reply.status, &reply.body) {
                    Reply::Certificate(pem) => Ok(pem),
                    Reply::Failed { status, message } if status >= 500 => Err(Error::Unavailable {
                        server: server.clone(),
                        detail: format!("the CA failed (HTTP {status}): {message}"),
                    }),
                    Reply::Failed { status, message } => Err(Error::Refused {
                        server: server.clone(),
                        message: refusal_hint(status, message, path, plan.request.key),
                    }),
                    Reply::Malformed(detail) => Err(Error::BadResponse {
                        server: server.clone(),
                        detail,
                    }),
                },
            );
        match outcome {
            Ok(pem) => return Ok((server, pem)),
            Err(err @ Error::Unavailable { .. }) => {
                if plan.target.remotes.len() > 1 {
                    log::warn!("{err}; trying the next remote");
                }
                last_error = Some(err);
            }
            Err(err) => return Err(err),
        }
    }
    Err(last_error.unwrap_or_else(|| Error::Internal("no remote to try".into())))
}

/// Adds what to do to the refusals whose cause is known.
fn refusal_hint(status: u16, message: String, path: &str, key: KeySpec) -> String {
    let hint = if message.contains("invalid token") {
        " (the auth key does not match the CA's: check auth_keys in the request profile)"
    } else if message.contains("invalid profile") {
        " (the CA has no such profile: check -profile, or leave it out for the CA's default)"
    } else if status == 404 && path == SIGN_PATH {
        " (this CA only serves authenticated requests: add an auth key to the request profile)"
    } else if message.contains("bad request") && key == KeySpec::Ed25519 {
        " (cfssl before 1.6.5 cannot verify Ed25519 CSRs: use an ecdsa or rsa key with this CA)"
    } else if message.contains("bad request") {
        " (unknown -label, or a CSR the CA's policy or version refuses; the CA's log says which)"
    } else {
        ""
    };
    format!("{message}{hint}")
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
