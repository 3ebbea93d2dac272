//! Checks on the certificate the CA returned, before anything is written. cfssl writes whatever
//! comes back (even `"certificate":"garbage"`); a fleet tool must not replace a working pair with
//! one that cannot be used.

use std::net::IpAddr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::csr::San;

/// What was learned from a certificate that passed the checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    /// The certificate, normalised to one PEM block ending in a newline.
    pub pem: String,
    /// Serial number, lower-case hex.
    pub serial: String,
    /// Not-after, seconds since the Unix epoch.
    pub not_after: i64,
}

/// Checks that `pem` is exactly one certificate, for the public key `spki_der`, valid at `now`
/// (Unix seconds), and carrying every SAN in `requested`. The error says which check failed.
pub fn check(pem: &str, spki_der: &[u8], requested: &[San], now: i64) -> Result<Issued, String> {
    let blocks = ::pem::parse_many(pem.trim()).map_err(|e| format!("the certificate is not valid PEM: {e}"))?;
    let [block] = blocks.as_slice() else {
        return Err(format!("expected one PEM certificate, got {} blocks", blocks.len()));
    };
    if block.tag() != "CERTIFICATE" {
        return Err(format!("expected a PEM CERTIFICATE, got {}", block.tag()));
    }
    if !only_pem(pem.trim()) {
        return Err("the certificate PEM has text before or after it".into());
    }
    let (rest, cert) = X509Certificate::from_der(block.contents())
        .map_err(|e| format!("the certificate does not parse: {e}"))?;
    if !rest.is_empty() {
        return Err("the certificate has trailing bytes after its DER".into());
    }
    if cert.public_key().raw != spki_der {
        return Err("the certificate is for a different public key than the one just generated".into());
    }
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    if now < not_before {
        return Err(format!("the certificate is not valid until {} (check the clocks)", cert.validity().not_before));
    }
    if now > not_after {
        return Err(format!("the certificate expired at {}", cert.validity().not_after));
    }
    let present = present_sans(&cert)?;
    let missing: Vec<String> =
        requested.iter().filter(|want| !present.iter().any(|have| same_san(want, have))).map(ToString::to_string).collect();
    if !missing.is_empty() {
        return Err(format!("the certificate lacks requested SANs: {} (does the CA's policy allow them?)", missing.join(", ")));
    }
    Ok(Issued {
        pem: crate::keygen::pem_encode("CERTIFICATE", block.contents()).to_string(),
        serial: cert.raw_serial().iter().map(|b| format!("{b:02x}")).collect(),
        not_after,
    })
}

fn only_pem(text: &str) -> bool {
    text.starts_with("-----BEGIN CERTIFICATE-----") && text.ends_with("-----END CERTIFICATE-----")
}

fn present_sans(cert: &X509Certificate<'_>) -> Result<Vec<San>, String> {
    let extension = cert.subject_alternative_name().map_err(|e| format!("the SAN extension is malformed: {e}"))?;
    let Some(extension) = extension else { return Ok(Vec::new()) };
    Ok(extension
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(v) => Some(San::Dns(v.to_string())),
            GeneralName::RFC822Name(v) => Some(San::Email(v.to_string())),
            GeneralName::URI(v) => Some(San::Uri(v.to_string())),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes).ok().map(|b| San::Ip(IpAddr::from(b))),
                16 => <[u8; 16]>::try_from(*bytes).ok().map(|b| San::Ip(IpAddr::from(b))),
                _ => None,
            },
            _ => None,
        })
        .collect())
}

fn same_san(want: &San, have: &San) -> bool {
    match (want, have) {
        (San::Dns(a), San::Dns(b)) | (San::Email(a), San::Email(b)) => a.eq_ignore_ascii_case(b),
        (a, b) => a == b,
    }
}
