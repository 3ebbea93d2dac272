//! What a certificate says, in the terms an operator checks: subject, issuer, SANs, serial, key,
//! validity. Used by `certinfo`.

use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

/// A summary of one certificate.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    /// Lower-case hex.
    pub serial: String,
    /// `ecdsa-256`, `rsa-2048`, `ed25519`, as csr.json names keys.
    pub key: String,
    /// RFC 3339.
    pub not_before: String,
    /// RFC 3339.
    pub not_after: String,
    /// Whole days until not-after (negative once expired).
    pub days_left: i64,
    #[serde(skip)]
    pub not_after_unix: i64,
    pub is_ca: bool,
}

/// Reads the first certificate in PEM (or DER) `bytes`.
pub fn summarise(bytes: &[u8], now: i64) -> Result<Summary, String> {
    let der = match pem::parse_many(bytes) {
        Ok(blocks) if !blocks.is_empty() => blocks
            .into_iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .map(|b| b.into_contents())
            .ok_or("holds no PEM CERTIFICATE block")?,
        _ => bytes.to_vec(),
    };
    let (_, cert) =
        X509Certificate::from_der(&der).map_err(|e| format!("not a certificate: {e}"))?;
    let not_after_unix = cert.validity().not_after.timestamp();
    Ok(Summary {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans: sans(&cert),
        serial: crate::verify::serial_hex(&cert),
        key: key_name(&cert),
        not_before: rfc3339(cert.validity().not_before.timestamp()),
        not_after: rfc3339(not_after_unix),
        days_left: (not_after_unix - now).div_euclid(86_400),
        not_after_unix,
        is_ca: cert.is_ca(),
    })
}

fn sans(cert: &X509Certificate<'_>) -> Vec<String> {
    crate::verify::certificate_sans(cert)
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn key_name(cert: &X509Certificate<'_>) -> String {
    let spki = cert.public_key();
    if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" {
        return "ed25519".into();
    }
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("rsa-{}", rsa.key_size()),
        Ok(PublicKey::EC(point)) => match point.data().len() {
            65 => "ecdsa-256".into(),
            97 => "ecdsa-384".into(),
            133 => "ecdsa-521".into(),
            n => format!("ecdsa ({n}-byte point)"),
        },
        _ => spki.algorithm.algorithm.to_id_string(),
    }
}

/// RFC 3339 in UTC, seconds precision.
pub fn rfc3339(unix: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_the_captured_certificate() {
        let body = include_str!("../tests/fixtures/captured-authsign-reply.json");
        let reply: serde_json::Value = serde_json::from_str(body).unwrap();
        let pem = reply["result"]["certificate"].as_str().unwrap();
        // 2027-11-18T05:41:00Z: ten days before not-after.
        let summary = summarise(pem.as_bytes(), 1_827_380_460 - 10 * 86_400).unwrap();
        assert_eq!(summary.key, "ecdsa-256");
        assert_eq!(summary.sans, ["DNS:node1.example.com", "IP:127.0.0.1"]);
        assert_eq!(summary.not_after, "2027-11-28T05:41:00Z");
        assert_eq!(summary.days_left, 10);
        assert!(
            summary.subject.contains("CN=node1.example.com"),
            "{}",
            summary.subject
        );
        assert!(
            summary.issuer.contains("CN=nodecert test root"),
            "{}",
            summary.issuer
        );
        assert!(!summary.is_ca);
    }
}
