use x509_parser::prelude::FromDer;

use crate::support::gencert_in;
use crate::support::{Pki, node_csr, nodecert, s, tool, write};

/// The subject and SAN extension nodecert puts in its CSR are byte-identical to what cfssl
/// genkey writes for the same csr.json, including multi-valued RDNs and string types.
#[test]
fn csr_subject_and_sans_match_cfssl_byte_for_byte() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let json = r#"{"CN":"system:node:worker-1","hosts":["b.example","10.0.0.1","a.example","ops@example.com","::1"],
        "names":[{"C":"US","ST":"CA","L":"San Francisco","O":"system:nodes","OU":"Nodes & Co"},{"O":"Abcd"}],
        "serialnumber":"4711","key":{"algo":"ecdsa","size":256}}"#;
    let csr = write(dir, "csr.json", json);
    let theirs = tool(dir, "cfssl", &["genkey", s(&csr)]);
    crate::support::ca::cfssljson(dir, &theirs, "cfssl");
    nodecert(dir)
        .args(["genkey", "-bare", "ours", s(&csr)])
        .assert()
        .code(0);
    let ours = request_parts(&dir.join("ours.csr"));
    let cfssl = request_parts(&dir.join("cfssl.csr"));
    assert_eq!(ours.0, cfssl.0, "subject DER differs from cfssl's");
    assert_eq!(ours.1, cfssl.1, "SAN extension DER differs from cfssl's");
    tool(
        dir,
        "openssl",
        &["req", "-in", "ours.csr", "-noout", "-verify"],
    );
}

/// Ed25519: nodecert's CSR verifies with OpenSSL and the key file is standard PKCS#8; the 2016
/// multirootca refuses Ed25519 CSRs and that refusal is reported with what to do.
#[test]
fn ed25519_csr_verifies_and_the_old_server_refusal_is_explained() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let csr = write(
        dir,
        "csr.json",
        r#"{"CN":"e","hosts":["e.example"],"key":{"algo":"ed25519"}}"#,
    );
    nodecert(dir)
        .args(["genkey", "-bare", "ed", s(&csr)])
        .assert()
        .code(0);
    let verified = std::process::Command::new("openssl")
        .args(["req", "-in", "ed.csr", "-noout", "-verify"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let from_key = tool(dir, "openssl", &["pkey", "-in", "ed-key.pem", "-pubout"]);
    let from_csr = tool(
        dir,
        "openssl",
        &["req", "-in", "ed.csr", "-noout", "-pubkey"],
    );
    assert_eq!(from_key, from_csr);

    let profile = pki.request_profile(dir, &server.url(), &pki.auth_key);
    gencert_in(dir, &profile, &pki.primary_ca())
        .args(["-bare", "n", s(&csr)])
        .assert()
        .code(5)
        .stderr(predicates::str::contains("cannot verify Ed25519 CSRs"));
    assert!(!dir.join("n.pem").exists());
}

/// genkey's stdout is cfssl genkey's JSON shape, {"csr","key"}, which cfssljson accepts.
#[test]
fn genkey_stdout_is_cfssl_shaped() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let csr = write(dir, "csr.json", &node_csr("rsa", 2048));
    let out = nodecert(dir)
        .args(["genkey", s(&csr)])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let json = String::from_utf8(out).unwrap();
    assert!(
        json.starts_with(r#"{"csr":"-----BEGIN CERTIFICATE REQUEST-----\n"#),
        "{json:.50}"
    );
    assert!(json.contains(r#""key":"-----BEGIN RSA PRIVATE KEY-----\n"#));
    crate::support::ca::cfssljson(dir, &json, "k");
    tool(
        dir,
        "openssl",
        &["req", "-in", "k.csr", "-noout", "-verify"],
    );
    let from_key = tool(dir, "openssl", &["pkey", "-in", "k-key.pem", "-pubout"]);
    let from_csr = tool(
        dir,
        "openssl",
        &["req", "-in", "k.csr", "-noout", "-pubkey"],
    );
    assert_eq!(from_key, from_csr);
}

/// (subject DER, SAN extension value DER) of a PEM CSR.
fn request_parts(path: &std::path::Path) -> (Vec<u8>, Vec<u8>) {
    let pem = std::fs::read_to_string(path).unwrap();
    let block = pem::parse(pem).unwrap();
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(block.contents())
            .unwrap();
    let info = &csr.certification_request_info;
    let san = csr
        .requested_extensions()
        .into_iter()
        .flatten()
        .find_map(|ext| match ext {
            x509_parser::extensions::ParsedExtension::SubjectAlternativeName(_) => Some(()),
            _ => None,
        });
    assert!(san.is_some(), "{} has a SAN extension", path.display());
    let raw_attributes = info
        .attributes()
        .iter()
        .map(|a| a.value.to_vec())
        .collect::<Vec<_>>()
        .concat();
    (info.subject.as_raw().to_vec(), raw_attributes)
}
