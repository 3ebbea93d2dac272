//! What a certificate says, in the terms an operator checks: subject, issuer, SANs, serial, key,
//! validity. Used by `certinfo`, and by `info` to check the CA certificate it fetched.

use std::path::Path;

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

/// Not-after of the certificate now at `cert`, for a run that failed: its expiry is what an
/// alert and a cron mail need most. `None` when there is no certificate to read there.
pub(crate) fn not_after_in_place(cert: &Path) -> Option<i64> {
    // Wiped: the file a failed run refused to replace may be a private key.
    let bytes = crate::output::read_output_wiped(cert)?;
    summarise(&bytes, 0)
        .ok()
        .map(|summary| summary.not_after_unix)
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
    if der.iter().all(u8::is_ascii_whitespace) {
        return Err("is empty: give a certificate in PEM or DER".into());
    }
    let (_, cert) = X509Certificate::from_der(&der).map_err(|_| {
        "is not a certificate: neither a PEM CERTIFICATE block nor DER that parses as one"
            .to_string()
    })?;
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

/// One certificate of a PEM chain file, as the validity checks see it.
pub struct Link {
    /// Position in the file, from 1.
    pub position: usize,
    pub subject: String,
    pub not_before: i64,
    pub not_after: i64,
}

/// The certificates of a PEM file (a full chain: leaf, intermediates), in order. Blocks that do
/// not parse are skipped (the first one was parsed by [`summarise`]).
pub fn chain(bytes: &[u8]) -> Vec<Link> {
    let Ok(blocks) = pem::parse_many(bytes) else {
        return Vec::new();
    };
    (blocks.iter())
        .filter(|b| b.tag() == "CERTIFICATE")
        .enumerate()
        .filter_map(|(i, b)| {
            let (_, cert) = X509Certificate::from_der(b.contents()).ok()?;
            Some(Link {
                position: i + 1,
                subject: cert.subject().to_string(),
                not_before: cert.validity().not_before.timestamp(),
                not_after: cert.validity().not_after.timestamp(),
            })
        })
        .collect()
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
        // Named by the curve's OID, not the point's size: secp256k1 points are as long as P-256's.
        Ok(PublicKey::EC(_)) => {
            let curve = (spki.algorithm.parameters.as_ref())
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "ecdsa-256".into(),
                Some("1.3.132.0.34") => "ecdsa-384".into(),
                Some("1.3.132.0.35") => "ecdsa-521".into(),
                Some("1.3.132.0.10") => "ecdsa-secp256k1".into(),
                Some(oid) => format!("ecdsa (curve {oid})"),
                None => "ecdsa (curve not named)".into(),
            }
        }
        _ => match spki.algorithm.algorithm.to_id_string().as_str() {
            "1.3.101.113" => "ed448".into(),
            "1.2.840.113549.1.1.10" => "rsa-pss".into(),
            oid => oid.to_string(),
        },
    }
}

/// RFC 3339 in UTC, seconds precision; years 0000 to 9999, which X.509 times span.
pub fn rfc3339(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    // Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
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

    #[test]
    fn rfc3339_spans_x509_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_827_380_460), "2027-11-28T05:41:00Z");
        assert_eq!(rfc3339(-631_152_000), "1950-01-01T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
    }
}
