//! cfssl's wire format: the sign request, the authenticated envelope, the response envelope, and
//! the endpoint paths (`cfssl-protocol.md` §3–4).
//!
//! The inner request is emitted in the 2016 shape (five fields, struct order), which both the
//! Debian 2016 build and current cfssl accept. The token is computed over exactly the bytes that
//! are base64-encoded into `request`, so the server's MAC check sees what was MACed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::AuthKey;
use crate::csr::Subject;

/// The path of the authenticated signing endpoint, relative to the remote's base URL.
pub const AUTHSIGN_PATH: &str = "api/v1/cfssl/authsign";
/// The path of the unauthenticated signing endpoint (`cfssl serve` only; multirootca has none).
pub const SIGN_PATH: &str = "api/v1/cfssl/sign";
/// The info endpoint (CA certificate, usages, expiry for a label and profile).
pub const INFO_PATH: &str = "api/v1/cfssl/info";
/// Largest reply nodecert reads; a signed certificate is a few kilobytes.
pub const MAX_REPLY_BYTES: u64 = 1 << 20;

/// `signer.SignRequest` as cfssl's gencert fills it.
#[derive(Debug, Serialize)]
pub struct SignRequest<'a> {
    /// `None` keeps the CSR's SANs; a list replaces them (an empty list would strip every SAN, so
    /// nodecert never sends one).
    pub hosts: Option<&'a [String]>,
    pub certificate_request: &'a str,
    /// `cfssl sign`'s SUBJECT file, sent only when given (`omitempty` in cfssl).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "subject_wire"
    )]
    pub subject: Option<&'a Subject>,
    pub profile: &'a str,
    pub crl_override: &'a str,
    pub label: &'a str,
}

impl SignRequest<'_> {
    /// The exact request bytes: compact JSON in field order.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain strings and lists into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_else(|e| unreachable!("serialising SignRequest: {e}"))
    }

    /// The body to POST: for `Some(key)` the authsign envelope
    /// `{"timestamp":…,"token":…,"request":…}`, otherwise the bare request for `/sign`.
    pub fn to_body(&self, key: Option<&AuthKey>, timestamp: i64) -> Vec<u8> {
        let request = self.to_bytes();
        match key {
            None => request,
            Some(key) => {
                let envelope = AuthenticatedRequest {
                    timestamp,
                    token: BASE64.encode(key.token(&request)),
                    request: BASE64.encode(&request),
                };
                serde_json::to_vec(&envelope)
                    .unwrap_or_else(|e| unreachable!("serialising the envelope: {e}"))
            }
        }
    }
}

/// `signer.Subject`'s fields as cfssl sends them (in serde_json's key order, which a CA does
/// not care about): `CN`, `names` with the C, ST, L, O and OU of each entry (empty ones left
/// out, as current cfssl's `omitempty` leaves them; the CA's `Subject.Name` reads nothing
/// else, and [`Subject::parse`] warns about what it drops), and `SerialNumber`.
fn subject_wire<S: serde::Serializer>(
    subject: &Option<&Subject>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let Some(subject) = subject else {
        return serializer.serialize_none();
    };
    let names: Vec<Value> = (subject.names.iter())
        .map(|name| {
            let mut entry = serde_json::Map::new();
            for (key, value) in [
                ("C", &name.country),
                ("ST", &name.province),
                ("L", &name.locality),
                ("O", &name.organization),
                ("OU", &name.organizational_unit),
            ] {
                if !value.is_empty() {
                    entry.insert(key.into(), Value::String(value.clone()));
                }
            }
            Value::Object(entry)
        })
        .collect();
    serde_json::json!({
        "CN": subject.common_name,
        "names": if names.is_empty() { Value::Null } else { Value::Array(names) },
        "SerialNumber": subject.serial_number,
    })
    .serialize(serializer)
}

/// `auth.AuthenticatedRequest`, with `remote_address` omitted as gencert omits it.
#[derive(Debug, Serialize)]
struct AuthenticatedRequest {
    timestamp: i64,
    token: String,
    request: String,
}

/// What a sign reply means.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// HTTP 200, `success:true`, and a certificate PEM.
    Certificate(String),
    /// The CA said no (an error status, or a 200 whose envelope says `success:false` with
    /// errors). `message` is the CA's own text, made safe to print on one line.
    Failed { status: u16, message: String },
    /// An error status without cfssl's envelope: what a web server or proxy at the address
    /// says (`404 page not found`, `Bad Gateway`), not the CA's judgement of the request.
    /// `message` is the status and the start of the body.
    Status { status: u16, message: String },
    /// Neither: not cfssl's envelope, or success without a certificate.
    Malformed(String),
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    result: Value,
    #[serde(default)]
    errors: Vec<ApiMessage>,
}

#[derive(Deserialize)]
struct ApiMessage {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

/// Interprets an HTTP status and body from a sign endpoint.
pub fn parse_sign_reply(status: u16, body: &[u8]) -> Reply {
    // cfssl's envelope is an object that always says whether it succeeded: `{"foo":1}` or
    // `[]` (which serde would fill with defaults) is some other service's reply.
    let envelope: Option<Envelope> = serde_json::from_slice::<Value>(body)
        .ok()
        .filter(|value| value.get("success").is_some_and(Value::is_boolean))
        .and_then(|value| serde_json::from_value(value).ok());
    match (status, envelope) {
        // A refusal comes with an error status; a 200 that failed for no reason is not cfssl.
        (200, Some(env)) if !env.success && env.errors.is_empty() => Reply::Malformed(
            "the reply says it failed, with HTTP 200 and no reason: not cfssl's reply".into(),
        ),
        (200, Some(env)) if env.success => match env.result.get("certificate") {
            Some(Value::String(pem)) if !pem.trim().is_empty() => Reply::Certificate(pem.clone()),
            _ => Reply::Malformed("reported success but sent no certificate".into()),
        },
        (_, Some(env)) if !env.errors.is_empty() || !env.success => {
            let message = if env.errors.is_empty() {
                "the request failed and the CA gave no reason".to_string()
            } else {
                env.errors
                    .iter()
                    .map(|e| format!("{} (code {})", one_line(&e.message), e.code))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            Reply::Failed { status, message }
        }
        (200, _) if body.trim_ascii().is_empty() => {
            Reply::Malformed("the reply is not cfssl's JSON envelope (an empty body)".into())
        }
        (200, _) => Reply::Malformed(format!(
            "the reply is not cfssl's JSON envelope (starts {:?})",
            preview(body)
        )),
        (_, _) => Reply::Status {
            status,
            message: format!("HTTP {status}: {}", preview(body)),
        },
    }
}

/// cfssl's `info.Resp` from an info reply `body` that [`parse_sign_reply`] accepted: the
/// certificate, `usages` and `expiry` as the CA sent them (empty when absent), in cfssl's field
/// order, as `cfssl info` prints it.
pub fn info_response(body: &[u8], certificate: &str) -> String {
    #[derive(Deserialize, Default)]
    struct InfoResult {
        #[serde(default)]
        usages: Option<Vec<String>>,
        #[serde(default)]
        expiry: Option<String>,
    }
    #[derive(Deserialize)]
    struct InfoEnvelope {
        #[serde(default)]
        result: InfoResult,
    }
    // Go marshals a nil slice as null, and an unset string as "".
    #[derive(serde::Serialize)]
    struct Resp<'a> {
        certificate: &'a str,
        usages: Option<&'a [String]>,
        expiry: &'a str,
    }
    let result = serde_json::from_slice::<InfoEnvelope>(body)
        .map(|e| e.result)
        .unwrap_or_default();
    serde_json::to_string(&Resp {
        certificate,
        usages: result.usages.as_deref(),
        expiry: result.expiry.as_deref().unwrap_or_default(),
    })
    .unwrap_or_default()
}

/// Makes server text safe for a one-line terminal message: control characters and bidi
/// overrides escaped (as every text line is, by `logging::escape_controls`), length capped.
pub fn one_line(text: &str) -> String {
    let text = text.trim();
    let capped = match text.char_indices().nth(300) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    };
    crate::logging::escape_controls(&capped).into_owned()
}

/// What a reply `body` starts with, for a message, or `an empty body`.
fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    if text.trim().is_empty() {
        "an empty body".into()
    } else {
        one_line(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPTURED_REQUEST: &str = include_str!("../tests/fixtures/captured-authsign-request.json");

    /// Re-creates the inner request of `cfssl-protocol.md` §7.1 byte for byte from its parts.
    #[test]
    fn request_bytes_match_cfssl_2016() {
        let csr_start = CAPTURED_REQUEST.find("-----BEGIN").unwrap();
        let csr_end = CAPTURED_REQUEST.find("\",\"profile\"").unwrap();
        let csr = CAPTURED_REQUEST[csr_start..csr_end].replace("\\n", "\n");
        let hosts = ["node1.example.com".to_string(), "127.0.0.1".to_string()];
        let request = SignRequest {
            hosts: Some(&hosts),
            certificate_request: &csr,
            subject: None,
            profile: "",
            crl_override: "",
            label: "default",
        };
        assert_eq!(
            String::from_utf8(request.to_bytes()).unwrap(),
            CAPTURED_REQUEST
        );
    }

    #[test]
    fn hosts_are_null_unless_given() {
        let request = SignRequest {
            hosts: None,
            certificate_request: "x",
            subject: None,
            profile: "",
            crl_override: "",
            label: "",
        };
        assert_eq!(
            String::from_utf8(request.to_bytes()).unwrap(),
            r#"{"hosts":null,"certificate_request":"x","profile":"","crl_override":"","label":""}"#
        );
    }

    /// A SUBJECT file goes between the CSR and the profile, where Go's struct order puts it,
    /// in `signer.Subject`'s shape: empty name fields left out, and what the CA would not read
    /// (an OID attribute) not sent.
    #[test]
    fn a_subject_is_sent_in_cfssls_shape() {
        let subject = crate::csr::Subject::parse(
            br#"{"cn":"a","names":[{"O":"Org","C":""},{"OID":{"2.5.4.97":"V"}}],"SerialNumber":"7"}"#,
            "subject.json",
        )
        .unwrap();
        let request = SignRequest {
            hosts: None,
            certificate_request: "x",
            subject: Some(&subject),
            profile: "p",
            crl_override: "",
            label: "",
        };
        assert_eq!(
            String::from_utf8(request.to_bytes()).unwrap(),
            r#"{"hosts":null,"certificate_request":"x","subject":{"CN":"a","SerialNumber":"7","names":[{"O":"Org"},{}]},"profile":"p","crl_override":"","label":""}"#
        );
    }

    #[test]
    fn envelope_carries_the_captured_token() {
        let csr_start = CAPTURED_REQUEST.find("-----BEGIN").unwrap();
        let csr_end = CAPTURED_REQUEST.find("\",\"profile\"").unwrap();
        let csr = CAPTURED_REQUEST[csr_start..csr_end].replace("\\n", "\n");
        let hosts = ["node1.example.com".to_string(), "127.0.0.1".to_string()];
        let request = SignRequest {
            hosts: Some(&hosts),
            certificate_request: &csr,
            subject: None,
            profile: "",
            crl_override: "",
            label: "default",
        };
        let key = AuthKey::from_hex("659523f913e9a1c2045c294f28e3e901").unwrap();
        let body = String::from_utf8(request.to_body(Some(&key), 1795844770)).unwrap();
        assert!(body.starts_with(
            r#"{"timestamp":1795844770,"token":"hVM/RApH88X1RmevEE/g3YWsOVMXU59SdIQiTMSDVxU=","request":"eyJob3N0cyI6WyJub2RlMS5leGFtcGxlLmNvbSIsIjEyNy4wLjAuMSJdLCJjZXJ0aWZpY2F0ZV9yZXF1ZXN0IjoiLS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS1cbk1JSUJZRENDQVFjQ0FRQXdjREVMTUFrR0ExVUVCaE1DVlZNeEN6QUpCZ05WQkFnVEFrTkJNUll3RkFZRFZRUUhcbkV3MVRZVzRnUm5KaGJtTnBjMk52TVJBd0RnWURWUVFLRXdkRmVHRnRjR3hsTVE0d0RBWURWUVFMRXdWT2IyUmxcbmN6RWFNQmdHQTFVRUF4TVJibTlrWlRFdVpYaGhiWEJzWlM1amIyMHdXVEFUQmdjcWhrak9QUUlCQmdncWhrak9cblBRTUJCd05DQUFRRm52eFNpQ0ZkeUFSckFuclh2eENKd1ZJVWZVU0tLa2FwZkJiSmFmY3pnanlET1ZlSTFyYXlcbm5qSEI1bFVJdjMrdVJEd1h0SEs4aUJPTmlCZktJRDd4b0RVd013WUpLb1pJaHZjTkFRa09NU1l3SkRBaUJnTlZcbkhSRUVHekFaZ2hGdWIyUmxNUzVsZUdGdGNHeGxMbU52YlljRWZ3QUFBVEFLQmdncWhrak9QUVFEQWdOSEFEQkVcbkFpQXlvZFdjR29SZW4zdUNaNHgzS2lPUTJGWUk1VjF6VjNQTnNBN3JocUtYL3dJZ0c4L1ljOVRQdEp3WDNaWlNcblNsR0QwYllMSjVmbFNhMVI5Y0NqY1VFR3JvRT1cbi0tLS0tRU5EIENFUlRJRklDQVRFIFJFUVVFU1QtLS0tLVxuIiwicHJvZmlsZSI6IiIsImNybF9vdmVycmlkZSI6IiIsImxhYmVsIjoiZGVmYXVsdCJ9"}"#
        ));
    }

    /// The reply captured in `cfssl-protocol.md` §7.1.
    #[test]
    fn captured_success_reply() {
        let body = include_bytes!("../tests/fixtures/captured-authsign-reply.json");
        match parse_sign_reply(200, body) {
            Reply::Certificate(pem) => {
                assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\nMIICVDCC"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn multirootca_errors_are_kept_verbatim() {
        let body = br#"{"success":false,"result":null,"errors":[{"code":1,"message":"invalid token"}],"messages":[]}"#;
        assert_eq!(
            parse_sign_reply(400, body),
            Reply::Failed {
                status: 400,
                message: "invalid token (code 1)".into()
            }
        );
    }

    #[test]
    fn odd_replies() {
        assert!(matches!(
            parse_sign_reply(200, b"<html>"),
            Reply::Malformed(_)
        ));
        assert!(matches!(
            parse_sign_reply(200, br#"{"success":true,"result":{}}"#),
            Reply::Malformed(_)
        ));
        assert!(matches!(
            parse_sign_reply(200, br#"{"success":true,"result":{"certif"#),
            Reply::Malformed(_)
        ));
        assert!(matches!(
            parse_sign_reply(502, b"Bad Gateway"),
            Reply::Status { status: 502, .. }
        ));
        // JSON, but not cfssl's envelope: some other service answered.
        for body in [
            &br#"{"success":false}"#[..],
            br#"{"foo":1}"#,
            b"[]",
            br#"{"success":"yes"}"#,
        ] {
            assert!(
                matches!(parse_sign_reply(200, body), Reply::Malformed(_)),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            parse_sign_reply(200, b""),
            Reply::Malformed("the reply is not cfssl's JSON envelope (an empty body)".into())
        );
    }

    #[test]
    fn server_text_is_made_one_line() {
        assert_eq!(one_line("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
    }
}
