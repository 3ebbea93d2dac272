//! csr.json: `CertificateRequest::parse`, then everything nodecert derives from a parsed request
//! (SANs, subject DER, the signed PKCS#10 request), checked by parsing it back with x509-parser.
//!
//! Input: the bytes of a csr.json file.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nodecert::csr::{CertificateRequest, San};
use nodecert::keygen::{KeySpec, PrivateKey};
use x509_parser::prelude::{FromDer, ParsedExtension, X509CertificationRequest, X509Name};

/// One key for the whole run: generating per input would measure the RNG, not the parser.
fn key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(KeySpec::DEFAULT).expect("generating a P-256 key"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = CertificateRequest::parse(data, "csr.json") else {
        return;
    };
    let sans = request.sans();
    for san in &sans {
        let _ = san.to_string();
    }

    // The subject must be exactly one DER Name.
    let subject = request.subject_der();
    let (rest, _) = X509Name::from_der(&subject)
        .unwrap_or_else(|e| panic!("subject_der is not a DER Name: {e}\n{request:?}"));
    assert!(
        rest.is_empty(),
        "subject_der has trailing bytes: {request:?}"
    );

    // The PKCS#10 request must parse, verify, and carry exactly the requested SANs.
    let der = request
        .to_csr_der(key())
        .unwrap_or_else(|e| panic!("to_csr_der failed: {e}\n{request:?}"));
    let (rest, csr) = X509CertificationRequest::from_der(&der)
        .unwrap_or_else(|e| panic!("to_csr_der is not a PKCS#10 request: {e}\n{request:?}"));
    assert!(rest.is_empty(), "the CSR has trailing bytes: {request:?}");
    csr.verify_signature()
        .unwrap_or_else(|e| panic!("the CSR's signature does not verify: {e}\n{request:?}"));
    let mut in_csr: Vec<San> = Vec::new();
    for extension in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(names) = extension {
            in_csr.extend(
                names
                    .general_names
                    .iter()
                    .filter_map(San::from_general_name),
            );
        }
    }
    let key = |s: &San| s.to_string();
    let mut wanted = sans.clone();
    wanted.sort_by_key(key);
    in_csr.sort_by_key(key);
    assert_eq!(
        wanted, in_csr,
        "the CSR's SANs differ from csr.json's hosts"
    );
});
