//! The CA's reply: `protocol::parse_sign_reply`, then, for a certificate, the checks nodecert runs
//! before writing it (`verify::check`, the issuer check included) and `certinfo`'s reader
//! (`inspect::summarise`).
//!
//! Input: one status byte, then the HTTP body. Status byte `0x00..=0x7f` is HTTP 200; `0x80..=0xff`
//! is HTTP `400 + (byte - 0x80)` (0x81 = 401, 0xe4 = 500, 0xe6 = 502). The body is also handed to
//! `verify::check` and `inspect::summarise` directly, so the PEM/DER paths are fuzzed without the
//! JSON envelope around them.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nodecert::csr::San;
use nodecert::protocol::{Reply, parse_sign_reply};
use nodecert::{inspect, verify};
use x509_parser::prelude::{FromDer, X509Certificate};

/// Inside the captured certificate's validity (2026-11-28 .. 2027-11-28).
const NOW: i64 = 1_800_000_000;

const CAPTURED: &str = include_str!("../../tests/fixtures/captured-authsign-reply.json");

/// The public key of the captured certificate, the "key we just generated".
fn captured_spki() -> &'static [u8] {
    static SPKI: OnceLock<Vec<u8>> = OnceLock::new();
    SPKI.get_or_init(|| {
        let Reply::Certificate(pem) = parse_sign_reply(200, CAPTURED.as_bytes()) else {
            panic!("the captured reply does not parse");
        };
        own_key(&pem).expect("the captured certificate parses").0
    })
}

/// The captured certificate, DER.
fn captured_der() -> &'static Vec<u8> {
    static DER: OnceLock<Vec<u8>> = OnceLock::new();
    DER.get_or_init(|| {
        let Reply::Certificate(pem) = parse_sign_reply(200, CAPTURED.as_bytes()) else {
            panic!("the captured reply does not parse");
        };
        pem::parse(pem.trim()).expect("the captured certificate is PEM").into_contents()
    })
}

fn requested() -> &'static [San] {
    static SANS: OnceLock<Vec<San>> = OnceLock::new();
    SANS.get_or_init(|| {
        vec![
            San::classify("node1.example.com"),
            San::classify("127.0.0.1"),
        ]
    })
}

/// The SubjectPublicKeyInfo and the DER of the first PEM certificate in `text`, if it parses.
fn own_key(text: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let block = pem::parse_many(text.trim()).ok()?.into_iter().next()?;
    let (_, cert) = X509Certificate::from_der(block.contents()).ok()?;
    Some((cert.public_key().raw.to_vec(), block.contents().to_vec()))
}

/// What `verify::check` and `inspect::summarise` do with a certificate text.
fn certificate(text: &str) {
    if let Ok(issued) = verify::check(text, captured_spki(), requested(), NOW, &[]) {
        assert!(issued.pem.ends_with("-----END CERTIFICATE-----\n"));
    }
    // With the certificate's own key, the checks after the key match (validity, SANs) run too.
    if let Some((spki, der)) = own_key(text) {
        let _ = verify::check(text, &spki, requested(), NOW, &[]);
        // The issuer check, with the certificate itself pinned (a self-signed one verifies)
        // and with the captured certificate pinned (a name that may match, a key that won't).
        let _ = verify::check(text, &spki, &[], NOW, std::slice::from_ref(&der));
        let _ = verify::check(text, &spki, &[], NOW, std::slice::from_ref(captured_der()));
    }
    let _ = inspect::summarise(text.as_bytes(), NOW);
}

/// Server text reaches the terminal: it must be one line with no control or bidi characters.
fn assert_printable(message: &str) {
    let bad = message.chars().find(|&c| {
        c.is_control()
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    });
    assert!(
        bad.is_none(),
        "server text printed raw ({bad:?}): {message:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let status = if first < 0x80 {
        200
    } else {
        400 + u16::from(first - 0x80)
    };
    match parse_sign_reply(status, body) {
        Reply::Certificate(pem) => {
            assert_eq!(status, 200, "a certificate from HTTP {status}");
            assert!(!pem.trim().is_empty());
            certificate(&pem);
        }
        Reply::Failed { status: s, message } => {
            assert_eq!(s, status);
            assert_printable(&message);
        }
        Reply::Status { status: s, message } => {
            assert_eq!(s, status);
            assert_ne!(status, 200, "a bare status for HTTP 200");
            assert_printable(&message);
        }
        Reply::Malformed(message) => {
            assert_eq!(status, 200, "Malformed for HTTP {status}");
            assert_printable(&message);
        }
    }
    if let Ok(text) = std::str::from_utf8(body) {
        certificate(text);
        // info's trust-file check: whatever it accepts is certificates that parse, and nothing
        // it accepts holds a control character outside them.
        if let Ok(ders) = verify::certificates_only(text) {
            assert!(!ders.is_empty());
            assert!(!text.chars().any(|c| c.is_control() && !c.is_ascii_whitespace()));
        }
    }
    let _ = inspect::summarise(body, NOW);
});
