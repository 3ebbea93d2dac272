//! Checks on the certificate the CA returned, before anything is written. cfssl writes whatever
//! comes back (even `"certificate":"garbage"`); a fleet tool must not replace a working pair with
//! one that cannot be used.

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::csr::San;

/// What was learned from a certificate that passed the checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    /// The certificate, normalised to one PEM block ending in a newline.
    pub pem: String,
    /// How its issuer relates to the pinned CA file.
    pub issuer: IssuerCheck,
    /// Serial number, lower-case hex.
    pub serial: String,
    /// Not-before, seconds since the Unix epoch.
    pub not_before: i64,
    /// Not-after, seconds since the Unix epoch.
    pub not_after: i64,
}

/// Checks that `pem` is exactly one certificate, for the public key `spki_der`, valid at `now`
/// (Unix seconds), carrying every SAN in `requested`, and, when it names one of `pinned_cas` (DER)
/// as its issuer, signed by that CA ([`issuer_of`]). The error says which check failed.
pub fn check(
    pem: &str,
    spki_der: &[u8],
    requested: &[San],
    now: i64,
    pinned_cas: &[Vec<u8>],
) -> Result<Issued, String> {
    let blocks = ::pem::parse_many(pem.trim())
        .map_err(|e| format!("the certificate is not valid PEM: {e}"))?;
    let [block] = blocks.as_slice() else {
        return Err(format!(
            "expected one PEM certificate, got {} blocks",
            blocks.len()
        ));
    };
    if block.tag() != "CERTIFICATE" {
        return Err(format!("expected a PEM CERTIFICATE, got {}", block.tag()));
    }
    if !only_pem(pem.trim()) {
        return Err("the certificate PEM has text before or after it".into());
    }
    let (rest, cert) = X509Certificate::from_der(block.contents())
        .map_err(|_| "the certificate is not valid X.509 (its DER does not parse)".to_string())?;
    if !rest.is_empty() {
        return Err("the certificate has trailing bytes after its DER".into());
    }
    if cert.public_key().raw != spki_der {
        return Err(
            "the certificate is for a different public key than the one just generated".into(),
        );
    }
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    if now < not_before {
        return Err(format!(
            "the certificate is not valid until {} (check the clocks)",
            cert.validity().not_before
        ));
    }
    if now > not_after {
        // Issued expired: cfssl counts a profile's expiry from a start it backdates (5
        // minutes by default), so a profile shorter than that issues certificates that are
        // dead on arrival; or a clock is off.
        return Err(format!(
            "the certificate expired at {}, as issued (valid from {}): is the CA profile's \
             expiry shorter than its backdate, or a clock off?",
            cert.validity().not_after,
            cert.validity().not_before
        ));
    }
    let present = certificate_sans(&cert)?;
    let missing: Vec<&San> = requested
        .iter()
        .filter(|want| !present.iter().any(|have| same_san(want, have)))
        .collect();
    if !missing.is_empty() {
        // CFSSL 1.2 (Debian's multirootca) predates URI SANs: it drops them, or writes them as
        // DNS names. Said as such, since no policy change on the CA would help.
        let hint = if missing.iter().any(|san| matches!(san, San::Uri(_))) {
            "URI SANs need a CFSSL newer than 1.2, which drops them or writes them as DNS names: \
             remove them from the request (hosts, -hostname or the CSR), or upgrade the CA"
        } else {
            "does the CA's policy allow them?"
        };
        let missing: Vec<String> = missing.iter().map(ToString::to_string).collect();
        return Err(format!(
            "the certificate lacks requested SANs: {} ({hint})",
            missing.join(", ")
        ));
    }
    let issuer = issuer_of(&cert, pinned_cas)?;
    if let IssuerCheck::Pinned { ca, ca_not_after } = &issuer
        && now > *ca_not_after
    {
        return Err(format!(
            "the certificate was issued by the pinned CA \"{ca}\", whose certificate in the \
             pinned file (-tls-remote-ca) expired at {}: what trusts that copy accepts nothing \
             under it. If the CA has renewed its certificate, put the new one in that file; \
             else the CA must sign with a current root (renew it, or choose another -label)",
            crate::inspect::rfc3339(*ca_not_after)
        ));
    }
    Ok(Issued {
        pem: crate::keygen::pem_encode("CERTIFICATE", block.contents()).to_string(),
        issuer,
        serial: serial_hex(&cert),
        not_before,
        not_after,
    })
}

/// How an issued certificate relates to the pinned CA file (`-tls-remote-ca`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssuerCheck {
    /// No CA is pinned (the system roots are trusted): nothing to compare with.
    NothingPinned,
    /// Issued by a pinned CA: its name matches one, and that CA's key verifies the signature.
    /// `ca_not_after` is that CA certificate's own not-after (the latest, if several such):
    /// a certificate under an expired CA verifies nowhere.
    Pinned { ca: String, ca_not_after: i64 },
    /// Issued by a CA the pinned file does not hold: a multirootca `-label` root other than the
    /// one that signed the server's TLS certificate, say. Not an error; renewal, which expects
    /// the pinned CA as issuer, needs the issuing CA in that file to ever keep the pair.
    NotInPin { issuer: String },
}

/// Compares the issuer of `cert` with the pinned CA certificates `pinned_cas` (DER). A
/// certificate that names a pinned CA as its issuer but whose signature that CA's key does not
/// verify is an error: it did not come from the CA the operator trusts.
pub fn issuer_of(
    cert: &X509Certificate<'_>,
    pinned_cas: &[Vec<u8>],
) -> Result<IssuerCheck, String> {
    if pinned_cas.is_empty() {
        return Ok(IssuerCheck::NothingPinned);
    }
    let named: Vec<X509Certificate<'_>> = pinned_cas
        .iter()
        .filter_map(|der| X509Certificate::from_der(der).ok().map(|(_, ca)| ca))
        .filter(|ca| ca.subject().as_raw() == cert.issuer().as_raw())
        .collect();
    if named.is_empty() {
        return Ok(IssuerCheck::NotInPin {
            issuer: cert.issuer().to_string(),
        });
    }
    let signer = (named.iter())
        .filter(|ca| cert.verify_signature(Some(ca.public_key())).is_ok())
        .max_by_key(|ca| ca.validity().not_after.timestamp());
    if let Some(ca) = signer {
        Ok(IssuerCheck::Pinned {
            ca: ca.subject().to_string(),
            ca_not_after: ca.validity().not_after.timestamp(),
        })
    } else {
        Err(format!(
            "the certificate names the pinned CA \"{}\" as its issuer, but that CA's key does \
             not verify its signature: it was not issued by the CA you trust",
            cert.issuer()
        ))
    }
}

/// The serial number as lower-case hex, byte by byte as openssl prints it: without the leading
/// zero byte DER adds when the top bit is set (`80aabbcc`, not `0080aabbcc`).
pub fn serial_hex(cert: &X509Certificate<'_>) -> String {
    let raw = cert.raw_serial();
    let significant = raw
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    raw[significant..]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The certificates of a PEM text that holds certificates and nothing else (a CA bundle), as
/// DER, each checked to parse as X.509: text before, between or after them (a web page's, or a
/// terminal escape sequence) is refused, not passed on into a trust file.
pub fn certificates_only(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let text = text.trim();
    let blocks = ::pem::parse_many(text).map_err(|e| format!("is not valid PEM: {e}"))?;
    if blocks.is_empty() || !only_pem(text) {
        return Err("is not PEM certificates alone: it has text before or after them".into());
    }
    // Between the blocks, only white space: the blocks, encoded again, hold every other
    // character of the text.
    let visible = |text: &str| text.chars().filter(|c| !c.is_ascii_whitespace()).count();
    if visible(text)
        != blocks
            .iter()
            .map(|b| visible(&::pem::encode(b)))
            .sum::<usize>()
    {
        return Err("is not PEM certificates alone: it has text between them".into());
    }
    blocks
        .into_iter()
        .map(|block| {
            if block.tag() != "CERTIFICATE" {
                return Err(format!(
                    "holds a PEM {} block, not a certificate",
                    block.tag()
                ));
            }
            // Header lines (`Proc-Type: …`) are text, and would be passed on as it is.
            if block.headers().iter().next().is_some() {
                return Err("holds a PEM certificate with header lines".into());
            }
            match X509Certificate::from_der(block.contents()) {
                Ok(([], _)) => Ok(block.into_contents()),
                _ => Err("holds a certificate that is not valid X.509".into()),
            }
        })
        .collect()
}

fn only_pem(text: &str) -> bool {
    text.starts_with("-----BEGIN CERTIFICATE-----") && text.ends_with("-----END CERTIFICATE-----")
}

/// The SANs of a certificate (DNS, email, IP, URI); an error when the extension is malformed.
pub(crate) fn certificate_sans(cert: &X509Certificate<'_>) -> Result<Vec<San>, String> {
    let extension = cert
        .subject_alternative_name()
        .map_err(|e| format!("the SAN extension is malformed: {e}"))?;
    let Some(extension) = extension else {
        return Ok(Vec::new());
    };
    Ok(extension
        .value
        .general_names
        .iter()
        .filter_map(San::from_general_name)
        .collect())
}

fn same_san(want: &San, have: &San) -> bool {
    match (want, have) {
        (San::Dns(a), San::Dns(b)) | (San::Email(a), San::Email(b)) => a.eq_ignore_ascii_case(b),
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The certificate multirootca returned in the exchange captured in `cfssl-protocol.md` §7.1
    /// (valid 2026-11-28 05:41 to 2027-11-28 05:41 UTC; SANs node1.example.com, 127.0.0.1).
    fn captured() -> (String, Vec<u8>) {
        let body = include_str!("../tests/fixtures/captured-authsign-reply.json");
        let reply: serde_json::Value = serde_json::from_str(body).unwrap();
        let pem = reply["result"]["certificate"].as_str().unwrap().to_string();
        let block = ::pem::parse(&pem).unwrap();
        let (_, cert) = X509Certificate::from_der(block.contents()).unwrap();
        let spki = cert.public_key().raw.to_vec();
        (pem, spki)
    }

    const IN_VALIDITY: i64 = 1_800_000_000; // 2027-01-15

    fn sans() -> Vec<San> {
        vec![
            San::Dns("NODE1.example.com".into()),
            San::Ip("127.0.0.1".parse().unwrap()),
        ]
    }

    #[test]
    fn accepts_a_matching_certificate() {
        let (pem, spki) = captured();
        let issued = check(&pem, &spki, &sans(), IN_VALIDITY, &[]).unwrap();
        // Expected values from `openssl x509 -noout -serial -enddate` on the same certificate.
        assert_eq!(issued.serial, "64889e89c26ed55f86c087540dd4445e2c15a460");
        assert_eq!(issued.not_after, 1_827_380_460);
        assert_eq!(issued.pem, pem);
        assert_eq!(issued.issuer, IssuerCheck::NothingPinned);
    }

    #[test]
    fn rejects_another_key() {
        let (pem, mut spki) = captured();
        let last = spki.len() - 1;
        spki[last] ^= 1;
        assert!(
            check(&pem, &spki, &sans(), IN_VALIDITY, &[])
                .unwrap_err()
                .contains("different public key")
        );
    }

    #[test]
    fn rejects_outside_validity() {
        let (pem, spki) = captured();
        assert!(
            check(&pem, &spki, &sans(), 1_700_000_000, &[])
                .unwrap_err()
                .contains("not valid until")
        );
        assert!(
            check(&pem, &spki, &sans(), 1_900_000_000, &[])
                .unwrap_err()
                .contains("expired")
        );
    }

    #[test]
    fn rejects_a_missing_san() {
        let (pem, spki) = captured();
        let mut wanted = sans();
        wanted.push(San::Dns("other.example.com".into()));
        wanted.push(San::Ip("10.0.0.1".parse().unwrap()));
        let err = check(&pem, &spki, &wanted, IN_VALIDITY, &[]).unwrap_err();
        assert!(err.contains("DNS:other.example.com, IP:10.0.0.1"), "{err}");
    }

    #[test]
    fn rejects_garbage_and_extra_text() {
        let (pem, spki) = captured();
        assert!(check("garbage", &spki, &[], IN_VALIDITY, &[]).is_err());
        assert!(check(&format!("{pem}trailing"), &spki, &[], IN_VALIDITY, &[]).is_err());
        assert!(
            check(&format!("{pem}{pem}"), &spki, &[], IN_VALIDITY, &[])
                .unwrap_err()
                .contains("2 blocks")
        );
        let csr = pem.replace("CERTIFICATE", "CERTIFICATE REQUEST");
        assert!(check(&csr, &spki, &[], IN_VALIDITY, &[]).is_err());
    }

    #[test]
    fn a_trust_file_gets_certificates_alone() {
        let (pem, _) = captured();
        let pem = pem.trim();
        assert_eq!(certificates_only(pem).unwrap().len(), 1);
        assert_eq!(
            certificates_only(&format!("{pem}\n\n{pem}\n"))
                .unwrap()
                .len(),
            2
        );
        for bad in [
            format!("hello\n{pem}"),
            format!("{pem}\njunk after"),
            format!("{pem}\nbetween\n{pem}"),
            format!("{pem}\u{1b}[31m\n{pem}"),
            pem.replace("CERTIFICATE", "CERTIFICATE REQUEST"),
            format!("{pem}\n{}\n{pem}", pem.replace("CERTIFICATE", "X509 CRL")),
            pem.replacen("-----\n", "-----\nX-Note: \u{1b}[31mred\n\n", 1),
            String::new(),
        ] {
            assert!(certificates_only(&bad).is_err(), "{bad:?}");
        }
        let with_header = pem.replacen("-----\n", "-----\nX-Note: \u{1b}[31mred\n\n", 1);
        assert!(
            certificates_only(&with_header)
                .unwrap_err()
                .contains("header lines")
        );
        let crl_between = format!("{pem}\n{}\n{pem}", pem.replace("CERTIFICATE", "X509 CRL"));
        assert!(
            certificates_only(&crl_between)
                .unwrap_err()
                .contains("X509 CRL block")
        );
    }

    /// A CA and a certificate it issued, made with rcgen; `name` is the CA's CN.
    fn ca_and_leaf(name: &str) -> (Vec<u8>, Vec<u8>) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf_params = rcgen::CertificateParams::new(vec!["node.example".to_string()]).unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        (ca.der().to_vec(), leaf.der().to_vec())
    }

    fn issuer(der: &[u8], pinned_cas: &[Vec<u8>]) -> Result<IssuerCheck, String> {
        issuer_of(&X509Certificate::from_der(der).unwrap().1, pinned_cas)
    }

    #[test]
    fn issuer_is_compared_with_the_pinned_file() {
        let (ca, leaf) = ca_and_leaf("nodecert test root");
        let (other_ca, _) = ca_and_leaf("another root");
        assert_eq!(issuer(&leaf, &[]), Ok(IssuerCheck::NothingPinned));
        assert!(matches!(
            issuer(&leaf, &[other_ca.clone(), ca]),
            Ok(IssuerCheck::Pinned { ca, .. }) if ca == "CN=nodecert test root"
        ));
        assert_eq!(
            issuer(&leaf, &[other_ca]),
            Ok(IssuerCheck::NotInPin {
                issuer: "CN=nodecert test root".into()
            })
        );
    }

    #[test]
    fn a_certificate_naming_the_pinned_ca_without_its_signature_is_refused() {
        let (_, forged) = ca_and_leaf("nodecert test root");
        let (real_ca, _) = ca_and_leaf("nodecert test root");
        let err = issuer(&forged, &[real_ca]).unwrap_err();
        assert!(err.contains("does not verify"), "{err}");
        assert!(err.contains("CN=nodecert test root"), "{err}");
    }

    #[test]
    fn serials_are_printed_as_openssl_prints_them() {
        let serial = |bytes: &[u8]| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(vec!["s.example".to_string()]).unwrap();
            params.serial_number = Some(rcgen::SerialNumber::from_slice(bytes));
            let der = params.self_signed(&key).unwrap().der().to_vec();
            serial_hex(&X509Certificate::from_der(&der).unwrap().1)
        };
        assert_eq!(serial(&[0x80, 0xaa, 0xbb, 0xcc]), "80aabbcc");
        assert_eq!(serial(&[0x0a, 0x01]), "0a01");
        assert_eq!(serial(&[0x7f]), "7f");
    }
}
