//! Talking to the CA: endpoints in failover order, and what each reply means for the caller.
//!
//! The transport moves bytes; this module decides that a remote that is down, failing (5xx,
//! 429), fails TLS (a certificate the pin does not vouch for, say) or answers with something
//! that is not cfssl's reply moves on to the next one
//! (one broken replica must not stop a fleet's renewals while another is fine), that a refusal
//! stops at once (another remote would refuse the same request, and a bad token must not be
//! sprayed across a fleet's CAs), and what to tell the user about a refusal whose cause is known.

use crate::error::{Error, Result};
use crate::keygen::KeySpec;
use crate::profile::Target;
use crate::protocol::{self, Reply, SIGN_PATH};
use crate::transport::Transport;

/// A CA reached through `target`'s remotes.
pub struct CaClient<'a> {
    pub target: &'a Target,
    pub transport: &'a Transport,
}

impl CaClient<'_> {
    /// POSTs `body` to `path` on each remote in order until one answers, and returns that
    /// server's name and `result.certificate`. `key` (the key type of the CSR, if known) sharpens
    /// the hint on a refusal.
    pub fn certificate(
        &self,
        path: &str,
        body: &[u8],
        key: Option<KeySpec>,
    ) -> Result<(String, String)> {
        self.certificate_and_reply(path, body, key)
            .map(|(server, pem, _)| (server, pem))
    }

    /// [`Self::certificate`], with the whole reply body as well (for the rest of `result`).
    pub fn certificate_and_reply(
        &self,
        path: &str,
        body: &[u8],
        key: Option<KeySpec>,
    ) -> Result<(String, String, Vec<u8>)> {
        let remotes = &self.target.remotes;
        let mut failures = Vec::new();
        for (index, remote) in remotes.iter().enumerate() {
            let server = remote.display_name();
            let url = remote.endpoint(path);
            log::debug!("POST {url}");
            let outcome = (self.transport.post(remote, &url, body.to_vec()))
                .and_then(|reply| self.certificate_in(&server, reply, path, key));
            match outcome {
                Ok((pem, reply)) => return Ok((server, pem, reply)),
                Err(err) if is_this_remotes(&err) => {
                    if index + 1 < remotes.len() {
                        log::warn!("{err}; trying the next remote");
                    }
                    failures.push(err);
                }
                Err(err) => return Err(err),
            }
        }
        // The run's error, printed once as the error: the last failure a retry may mend (so
        // that --retries does not depend on the order of the list), else the last one. The
        // last remote's, when it is not that one, is said as a warning, as the others were.
        let chosen = (failures.iter().rposition(Error::is_retryable))
            .unwrap_or(failures.len().saturating_sub(1));
        if chosen + 1 < failures.len()
            && let Some(last) = failures.last()
        {
            log::warn!("{last}");
        }
        match failures.into_iter().nth(chosen) {
            Some(err) => Err(err),
            None => Err(Error::Internal("no remote to try".into())),
        }
    }

    /// What the CA at `server` answered to a request to `path`: the certificate and the whole
    /// reply, or the error it means (a 5xx or 429 is the CA's trouble, retried and failed over;
    /// another error status a refusal, the CA's own when it came in cfssl's envelope; anything
    /// else not cfssl's reply).
    fn certificate_in(
        &self,
        server: &str,
        reply: crate::transport::HttpReply,
        path: &str,
        key: Option<KeySpec>,
    ) -> Result<(String, Vec<u8>)> {
        let refused = |status, message, by_the_ca| Error::Refused {
            server: server.to_string(),
            message: refusal_hint(
                status,
                message,
                path,
                key,
                self.target.auth_key_origin.as_deref(),
            ),
            by_the_ca,
        };
        match protocol::parse_sign_reply(reply.status, &reply.body) {
            Reply::Certificate(pem) => Ok((pem, reply.body)),
            // 429 is a rate limiter's "later" (a renewal storm behind a load balancer), not a
            // refusal of the request.
            Reply::Failed { status, message } | Reply::Status { status, message }
                if status >= 500 || status == 429 =>
            {
                let what = if status == 429 { "is busy" } else { "failed" };
                Err(Error::Unavailable {
                    server: server.to_string(),
                    detail: if message.starts_with("HTTP ") {
                        format!("the CA {what}: {message}")
                    } else {
                        format!("the CA {what} (HTTP {status}): {message}")
                    },
                })
            }
            Reply::Failed { status, message } => Err(refused(status, message, true)),
            // multirootca's own plain 404 for the unauthenticated /sign: every replica says it.
            Reply::Status { status, message } => {
                Err(refused(status, message, status == 404 && path == SIGN_PATH))
            }
            Reply::Malformed(detail) => Err(Error::BadResponse {
                server: server.to_string(),
                detail,
            }),
        }
    }
}

/// Whether `err` may be a fault of the remote that answered, not of the request, so that the
/// next remote may succeed: unreachable or failing, a TLS failure (mostly in the handshake: a
/// certificate the pin does not vouch for, before anything is sent; one every remote gives,
/// such as a refused client certificate, ends with the last remote's), or a reply that is not
/// cfssl's (a middlebox, a wrong service, a web server's `404 page not found`: cfssl itself
/// tries the next remote on any failure; nodecert stops only at what a CA said in its envelope).
/// When every remote fails, the others are logged as they happen, and the run's error is
/// chosen in [`CaClient::certificate_and_reply`].
fn is_this_remotes(err: &Error) -> bool {
    matches!(
        err,
        Error::Unavailable { .. }
            | Error::Tls { .. }
            | Error::BadResponse { .. }
            | Error::Refused {
                by_the_ca: false,
                ..
            }
    )
}

/// Adds what to do to the refusals whose cause is known; a bad token names the key that made
/// it (`auth_key_origin`), since a profile can hold several.
fn refusal_hint(
    status: u16,
    message: String,
    path: &str,
    key: Option<KeySpec>,
    auth_key_origin: Option<&str>,
) -> String {
    let hint = if message.contains("invalid token") {
        let origin = auth_key_origin.unwrap_or("auth_keys in the request profile");
        &format!(" (the auth key does not match the CA's: check {origin})")
    } else if message.contains("invalid profile") {
        &format!(
            " (the CA has no such profile: check {}, or leave it out for the CA's default)",
            crate::logging::setting("-profile")
        )
    } else if (300..400).contains(&status) {
        " (a redirect, which nodecert does not follow: give the remote the address it points to)"
    } else if status == 404 && path == SIGN_PATH {
        " (this CA only serves authenticated requests: add an auth key to the request profile)"
    } else if message.contains("bad request") && key == Some(KeySpec::Ed25519) {
        " (cfssl before 1.6.5 cannot verify Ed25519 CSRs: use an ecdsa or rsa key with this CA)"
    } else if message.contains("bad request") {
        &format!(
            " (unknown {}, or a CSR the CA's policy or version refuses; the CA's log says which)",
            crate::logging::setting("-label")
        )
    } else {
        ""
    };
    format!("{message}{hint}")
}
