//! HTTPS to the CA: trust, client identity, timeouts, bounded replies, failover, and the one place
//! where reqwest, rustls and io errors are turned into nodecert's error kinds.

use std::error::Error as StdError;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Url;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{AlertDescription, CertificateError, ClientConfig, RootCertStore};

use crate::error::{Error, Result, read_input};
use crate::profile::Remote;
use crate::protocol::MAX_REPLY_BYTES;

/// How to trust the CA and how to identify to it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsOptions {
    /// Trust exactly the certificates in this PEM file (`-tls-remote-ca`); system roots otherwise.
    pub pinned_ca: Option<PathBuf>,
    /// Client certificate and key for mutual TLS.
    pub client_identity: Option<(PathBuf, PathBuf)>,
}

/// A connection-reusing HTTP client for one run.
pub struct Transport {
    client: reqwest::blocking::Client,
    timeout: Duration,
    /// Whether `-tls-remote-ca` pinned the trust (for what a TLS error tells the user to do).
    pinned: bool,
    /// The pinned CA certificates (DER): the issued certificate is checked against them too.
    pinned_cas: Vec<Vec<u8>>,
    /// The environment's proxy settings (`HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, as curl and
    /// cfssl read them). reqwest applies the same rules from the same crate; nodecert consults
    /// them again only to say in an error that the request went through a proxy, which is the
    /// first thing to know when a node's environment carries one meant for apt. None with
    /// `NO_PROXY=*`.
    proxies: Option<hyper_util::client::proxy::matcher::Matcher>,
}

/// An HTTP reply, read up to [`MAX_REPLY_BYTES`].
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Transport {
    /// Builds the client. Reads the pinned CA and the client identity now, so a bad file is
    /// reported before any key is generated.
    pub fn new(tls: &TlsOptions, timeout: Duration) -> Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Internal(format!("TLS setup: {e}")))?;
        let mut pinned_cas = Vec::new();
        let builder = match &tls.pinned_ca {
            Some(path) => {
                pinned_cas = pinned_certificates(path)?;
                let roots = Arc::new(trust_anchors(path, &pinned_cas)?);
                let chain =
                    rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
                        .build()
                        .map_err(|e| Error::Internal(format!("TLS setup: {e}")))?;
                let verifier = PinnedVerifier {
                    chain,
                    pinned: pinned_cas
                        .iter()
                        .map(|der| CertificateDer::from(der.clone()))
                        .collect(),
                };
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier))
            }
            None => {
                let verifier = rustls_platform_verifier::Verifier::new(provider).map_err(|e| {
                    Error::Internal(format!("loading the system's trusted roots: {e}"))
                })?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier))
            }
        };
        let config = match &tls.client_identity {
            None => builder.with_no_client_auth(),
            Some((cert_path, key_path)) => {
                let certs = load_certs(
                    cert_path,
                    "mutual-TLS client certificate (-mutual-tls-client-cert)",
                )?;
                let key_pem =
                    zeroize::Zeroizing::new(read_input(key_path, "mutual-TLS client key")?);
                let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
                    let why = if key_pem.windows(9).any(|w| w == b"ENCRYPTED") {
                        "the key is encrypted, and nodecert reads no passphrase \
                         (-mutual-tls-client-key): give it the key decrypted (openssl pkey), \
                         kept 0600"
                    } else {
                        "no private key in PEM form found (-mutual-tls-client-key)"
                    };
                    Error::input_file(key_path, why)
                })?;
                builder.with_client_auth_cert(certs, key).map_err(|e| {
                    let why = match e {
                        rustls::Error::InconsistentKeys(_) => {
                            "it is not the key of that certificate".to_string()
                        }
                        other => other.to_string(),
                    };
                    Error::input_file(
                        key_path,
                        format!(
                            "does not fit the client certificate {}: {why}",
                            cert_path.display()
                        ),
                    )
                })?
            }
        };
        // NO_PROXY=* is "no proxy for any host" to curl and Go; the proxy matcher under reqwest
        // reads it as a name pattern, which no IP address matches.
        let no_proxy_at_all = ["NO_PROXY", "no_proxy"]
            .iter()
            .any(|name| std::env::var(name).is_ok_and(|value| value.trim() == "*"));
        let mut client = reqwest::blocking::Client::builder();
        if no_proxy_at_all {
            client = client.no_proxy();
        }
        let client = client
            .tls_backend_preconfigured(config)
            .timeout(timeout)
            .connect_timeout(timeout.min(CONNECT_TIMEOUT))
            .tcp_nodelay(true)
            .user_agent(concat!("nodecert/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Internal(format!("HTTP client setup: {e}")))?;
        Ok(Self {
            client,
            timeout,
            pinned: tls.pinned_ca.is_some(),
            pinned_cas,
            proxies: (!no_proxy_at_all).then(hyper_util::client::proxy::matcher::Matcher::from_env),
        })
    }

    /// The certificates of `-tls-remote-ca` (DER), empty when the system roots are trusted.
    pub fn pinned_cas(&self) -> &[Vec<u8>] {
        &self.pinned_cas
    }

    /// The proxy a request to `url` goes through, as `scheme://host:port` (never its
    /// credentials), or None for a direct connection.
    fn proxy_for(&self, url: &Url) -> Option<String> {
        let uri: http::Uri = url.as_str().parse().ok()?;
        let intercept = self.proxies.as_ref()?.intercept(&uri)?;
        let proxy = intercept.uri();
        let host = proxy.host()?;
        Some(match (proxy.scheme_str(), proxy.port_u16()) {
            (Some(scheme), Some(port)) => format!("{scheme}://{host}:{port}"),
            (Some(scheme), None) => format!("{scheme}://{host}"),
            (None, _) => host.to_string(),
        })
    }

    /// POSTs `body` as JSON to `url` on `remote` and reads the reply (bounded).
    pub fn post(&self, remote: &Remote, url: &Url, body: Vec<u8>) -> Result<HttpReply> {
        let server = remote.display_name();
        let proxy = self.proxy_for(url);
        if let Some(proxy) = &proxy {
            log::debug!("{server}: through the proxy {proxy} (from the environment)");
        }
        let context = Failure {
            server: &server,
            timeout: self.timeout,
            pinned: self.pinned,
        };
        let failed = |e: &(dyn StdError + 'static)| match &proxy {
            None => context.classify(e),
            Some(proxy) => context.classify_proxied(e, proxy),
        };
        // --timeout bounds the whole exchange: the request's timeout covers the body too (a
        // reply that trickles in a byte at a time: a tarpit, a choked proxy); the deadline on
        // the reads is a backstop, a moment later, so that it never cuts a reply reqwest let
        // through whole.
        let deadline = Instant::now() + self.timeout + DEADLINE_GRACE;
        let response = self
            .client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(self.timeout)
            .body(body)
            .send()
            .map_err(|e| failed(&e))?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        // Up to the length the server announced, when it did: the reply is then known to be
        // whole without one more read, which the deadline could refuse.
        let limit = (response.content_length()).map_or(MAX_REPLY_BYTES + 1, |announced| {
            announced.min(MAX_REPLY_BYTES + 1)
        });
        let read = Deadline {
            inner: response.take(limit),
            at: deadline,
        }
        .read_to_end(&mut body);
        match read {
            Err(e)
                if (e.kind() == std::io::ErrorKind::TimedOut && Instant::now() >= deadline)
                    || chain_text(&e).to_ascii_lowercase().contains("timed out") =>
            {
                return Err(Error::Unavailable {
                    server,
                    detail: format!(
                        "the reply did not arrive in full within {} (raise --timeout, or retry \
                         later)",
                        humantime::format_duration(self.timeout)
                    ),
                });
            }
            other => other.map_err(|e| failed(&e))?,
        };
        if body.len() as u64 > MAX_REPLY_BYTES {
            return Err(Error::BadResponse {
                server,
                detail: format!(
                    "the reply is larger than {} KiB; a certificate is a few KiB",
                    MAX_REPLY_BYTES / 1024
                ),
            });
        }
        Ok(HttpReply { status, body })
    }
}

/// How long after `--timeout` the backstop deadline on reading a reply falls.
const DEADLINE_GRACE: Duration = Duration::from_secs(1);

/// A reader that fails once `at` has passed, while there is still something to read: the
/// overall bound on reading a reply.
struct Deadline<R> {
    inner: std::io::Take<R>,
    at: Instant,
}

impl<R: Read> Read for Deadline<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.inner.limit() > 0 && Instant::now() >= self.at {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.inner.read(buf)
    }
}

/// The certificates of a pinned CA file (`-tls-remote-ca`), DER: the transport's trust anchors,
/// and what renewal compares an existing certificate's issuer with before any connection.
pub fn pinned_certificates(path: &Path) -> Result<Vec<Vec<u8>>> {
    Ok(load_certs(path, PINNED_CA_ROLE)?
        .iter()
        .map(|c| c.as_ref().to_vec())
        .collect())
}

const PINNED_CA_ROLE: &str = "CA certificate (-tls-remote-ca)";

/// Connecting never takes longer than this, whatever `--timeout` says.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn load_certs(path: &Path, role: &str) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read_input(path, role)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| {
            Error::input_file(
                path,
                format!("the {role} is not valid PEM: {}", pem_problem(&e)),
            )
        })?;
    if certs.is_empty() {
        return Err(Error::input_file(
            path,
            format!("the {role} holds no PEM CERTIFICATE block"),
        ));
    }
    Ok(certs)
}

/// A PEM parse error in words (the library's Display shows marker bytes as numbers).
fn pem_problem(err: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error as E;
    match err {
        E::MissingSectionEnd { .. } => "a BEGIN line has no matching END line",
        E::IllegalSectionStart { .. } => "a malformed BEGIN line",
        E::Base64Decode(_) => "the base64 between BEGIN and END is damaged",
        _ => "it cannot be read as PEM",
    }
}

fn trust_anchors(path: &Path, certs: &[Vec<u8>]) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(CertificateDer::from(cert.as_slice()))
            .map_err(|e| {
                Error::input_file(
                    path,
                    format!("a certificate in the CA file cannot be used as a trust anchor: {e}"),
                )
            })?;
    }
    Ok(roots)
}

/// The pinned CA file's trust, as Go's (so cfssl's): a chain to one of its certificates, or
/// the server presenting one of them itself. A self-signed TLS certificate pinned as it is
/// (`openssl req -x509` makes it CA:TRUE, which webpki refuses as a server's certificate) is
/// trusted as Go trusts a certificate in its root pool: still only for the remote's name and
/// while it is valid, and the handshake still proves the server holds its key.
#[derive(Debug)]
struct PinnedVerifier {
    chain: Arc<rustls::client::WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl rustls::client::danger::ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let chained = (self.chain).verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if chained.is_ok() || !self.pinned.iter().any(|pinned| pinned == end_entity) {
            return chained;
        }
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_name(&parsed, server_name)?;
        let (_, cert) = x509_parser::parse_x509_certificate(end_entity.as_ref())
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        if now < cert.validity().not_before.timestamp() {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidYet,
            ));
        }
        if now > cert.validity().not_after.timestamp() {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
        }
        // As Go: a certificate that names its uses must name a server's.
        if let Ok(Some(usage)) = cert.extended_key_usage()
            && !usage.value.server_auth
            && !usage.value.any
        {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::InvalidPurpose,
            ));
        }
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// What is known about a request when it fails: enough to say what went wrong and what to do.
struct Failure<'a> {
    server: &'a str,
    timeout: Duration,
    pinned: bool,
}

impl Failure<'_> {
    /// Classifies a transport failure into TLS, or timeout/unreachable (worth retrying).
    fn classify(&self, err: &(dyn StdError + 'static)) -> Error {
        if let Some(tls) = find_rustls_error(err) {
            return Error::Tls {
                server: self.server.to_string(),
                detail: explain_tls(tls, self.pinned),
            };
        }
        let text = chain_text(err);
        let lower = text.to_ascii_lowercase();
        let timed_out = err
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
            || lower.contains("timed out")
            || lower.contains("deadline");
        let detail = if timed_out {
            format!(
                "no answer within {} (raise --timeout, or retry later)",
                humantime::format_duration(self.timeout)
            )
        } else if lower.contains("connection refused") {
            "connection refused: is the CA running and listening on this address?".into()
        } else if lower.contains("reset")
            || lower.contains("broken pipe")
            || lower.contains("closed")
            || lower.contains("eof")
        {
            format!("the connection was cut: {text} (retry later)")
        } else if lower.contains("dns") || lower.contains("resolve") || lower.contains("lookup") {
            format!("cannot resolve the host: {text}")
        } else {
            format!("request failed: {text}")
        };
        self.unavailable(detail)
    }

    /// [`Self::classify`] for a request that went through `proxy`. Over HTTPS the proxy only
    /// opens a tunnel (HTTP CONNECT) and TLS runs end to end with the CA, so a failure is
    /// either the proxy's (unreachable, refusing the tunnel, wanting credentials: named as
    /// such, since the CA itself may be fine) or the CA's, classified as usual with the proxy
    /// named.
    fn classify_proxied(&self, err: &(dyn StdError + 'static), proxy: &str) -> Error {
        let text = chain_text(err);
        // hyper-util's TunnelError is not public: its Display text is what identifies it.
        if text.contains("tunnel error: proxy authorization required") {
            return self.unavailable(format!(
                "the proxy {proxy} (from the environment) wants credentials (407): give them in \
                 the proxy URL, or list the CA's host in NO_PROXY"
            ));
        }
        if text.contains("tunnel error: failed to create underlying connection") {
            return self.unavailable(format!(
                "cannot reach the proxy {proxy} (from HTTPS_PROXY or ALL_PROXY): {}; fix the \
                 proxy setting, or list the CA's host in NO_PROXY to connect directly",
                root_cause(err)
            ));
        }
        if text.contains("tunnel error") {
            return self.unavailable(format!(
                "the proxy {proxy} (from the environment) would not open a tunnel to the CA (its \
                 answer to CONNECT was not 200: the CA may be down, or the proxy does not allow \
                 its host and port): list the CA's host in NO_PROXY to connect directly"
            ));
        }
        match self.classify(err) {
            Error::Unavailable { server, detail } => Error::Unavailable {
                server,
                detail: format!("{detail} (through the proxy {proxy}, from the environment)"),
            },
            Error::Tls { server, detail } => Error::Tls {
                server,
                detail: format!(
                    "{detail} (through the proxy {proxy}, from the environment: a proxy that \
                     intercepts TLS presents its own certificate; list the CA's host in NO_PROXY)"
                ),
            },
            other => other,
        }
    }

    fn unavailable(&self, detail: String) -> Error {
        Error::Unavailable {
            server: self.server.to_string(),
            detail,
        }
    }
}

fn find_rustls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(found) = find_rustls_error(inner)
        {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// A rustls error in words, with what to do. `pinned`: whether `-tls-remote-ca` chose the trust
/// (without it, an untrusted issuer almost always means the flag is missing).
fn explain_tls(err: &rustls::Error, pinned: bool) -> String {
    use rustls::Error as E;
    match err {
        E::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => {
            if pinned {
                "the server's certificate is not issued by the trusted CA: check -tls-remote-ca names the CA that issued the server's TLS certificate".into()
            } else {
                "the server's certificate is not issued by a CA the system trusts: pass the CA that issued it with -tls-remote-ca".into()
            }
        }
        E::InvalidCertificate(CertificateError::NotValidForName)
        | E::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => {
            "the server's certificate does not name this host (it needs a DNS or IP SAN for the remote's host): use the name the certificate carries in the remote".into()
        }
        E::InvalidCertificate(CertificateError::Expired)
        | E::InvalidCertificate(CertificateError::ExpiredContext { .. }) => {
            "the server's certificate has expired: renew the CA's TLS certificate".into()
        }
        E::InvalidCertificate(CertificateError::NotValidYet)
        | E::InvalidCertificate(CertificateError::NotValidYetContext { .. }) => {
            "the server's certificate is not valid yet: check the clocks".into()
        }
        E::InvalidCertificate(CertificateError::Other(other))
            if format!("{other:?}").contains("CaUsedAsEndEntity") =>
        {
            "the server presents a CA certificate (CA:TRUE) as its own, which is trusted only when \
             -tls-remote-ca holds that very certificate: pin it once its fingerprint is checked \
             out of band (openssl x509 -fingerprint -sha256), or give the server a certificate \
             the CA issued"
                .into()
        }
        E::InvalidCertificate(other) => format!("the server's certificate was rejected: {other:?}"),
        E::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "the server does not speak TLS (plain HTTP?): start the CA with TLS (multirootca \
             -tls-cert/-tls-key), or, knowing what it exposes, use an http:// remote with \
             --allow-plaintext"
                .into()
        }
        E::PeerIncompatible(why) => format!("the server offers no TLS version or cipher nodecert accepts (TLS 1.2 or 1.3 required): {why:?}"),
        E::AlertReceived(AlertDescription::ProtocolVersion) => {
            "the server refused TLS 1.2 and 1.3 (it offers only older versions, which nodecert does not accept): upgrade the CA's TLS".into()
        }
        E::AlertReceived(
            alert @ (AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown),
        ) => format!(
            "the server rejected the client certificate (alert {alert:?}): check -mutual-tls-client-cert/-key"
        ),
        E::AlertReceived(alert) => format!("the server ended the handshake with alert {alert:?}"),
        other => format!("{other}"),
    }
}

/// The innermost error of a chain (`Connection refused (os error 111)`).
fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut current = err.source();
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}
