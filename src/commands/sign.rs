//! `nodecert sign`: an existing CSR, whose key lives elsewhere (TPM, HSM, another host), through
//! the same authsign path as gencert (cfssl sign -remote). The certificate gets the same checks:
//! it must be for the CSR's key and carry the requested SANs.

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;

use crate::cli::SignArgs;
use crate::client::CaClient;
use crate::csr::{San, Subject};
use crate::error::{Error, Result};
use crate::job::unix_now;
use crate::output::{PUBLIC_MODE, write_file_atomically};
use crate::protocol::SignRequest;
use crate::transport::Transport;

/// Runs sign.
pub(crate) fn run(args: &SignArgs) -> Result<()> {
    let out_path = match (&args.bare, &args.cert) {
        (Some(name), _) => Some(crate::output::bare_file(name, ".pem")),
        (None, Some(path)) => Some(path.clone()),
        _ => None,
    };
    // The key of the pair the certificate would join: -bare names it; beside --cert PATH, it
    // is where the usual naming puts it (`--cert node.pem`: node-key.pem). Only -bare's may
    // also be in the certificate file (a hook's combined file): a --cert file holding a key
    // is refused whichever key it holds, as it was before sign looked beside it.
    let bare_key = (args.bare.as_ref()).map(|name| crate::output::bare_file(name, "-key.pem"));
    let pair_key = match (&bare_key, &out_path) {
        (Some(key), _) => Some(key.clone()),
        (None, Some(out)) => crate::output::key_beside(out),
        (None, None) => None,
    };
    let (csr_path, subject_path) = args.files().map_err(Error::Usage)?;
    // Reading the profile writes nothing, and its `file:` auth key is an input too.
    let (target, tls) = super::resolve_ca(&args.ca)?;
    match &out_path {
        Some(out) => {
            let mut inputs = super::ca_inputs(&args.ca, Some(&target));
            inputs.push((csr_path, "the CSR"));
            inputs.extend(subject_path.map(|path| (path, "the SUBJECT file")));
            crate::output::check_distinct(&[(out, "the certificate output")], &inputs)?;
            crate::output::check_writable(out)?;
            crate::output::check_not_a_key(out, bare_key.as_deref())?;
        }
        None => crate::output::stdout_keeps_output()?,
    }
    let (bytes, source) = super::read_arg(csr_path, "CSR")?;
    let (csr_pem, spki, csr_sans) = read_csr(&bytes).map_err(|d| Error::input(&source, d))?;
    // The pair's lock, as gencert takes it, from the check that a working pair survives until
    // the certificate is written: a renewal of the pair meanwhile would otherwise be broken.
    // The certificate's owner may hold it (root signing for a pair it gave a service with
    // --owner leaves the service's lock file to the service), and without it nothing is written.
    let _lock = match &out_path {
        Some(out) => {
            use std::os::unix::fs::MetadataExt as _;
            let cert = crate::output::write_target(out)?;
            let owner = std::fs::symlink_metadata(&cert).ok().map(|meta| meta.uid());
            let lock = crate::lock::PairLock::acquire(&cert, args.lock_timeout, owner)?;
            if let Some(why) = lock.unheld() {
                return Err(Error::output(
                    &crate::lock::lock_path(&cert),
                    format!("{why}; a certificate is not written without the pair's lock"),
                ));
            }
            // A certificate name that is a link (`node.pem -> v/node-2026.pem`) has the file
            // it leads to replaced (the one locked): the key beside that file makes a pair
            // with it too.
            let beside_target = (cert != *out)
                .then(|| crate::output::key_beside(&cert))
                .flatten();
            for key in pair_key.iter().chain(&beside_target) {
                crate::renew::check_pair_survives(out, key, Some(&spki))?;
            }
            Some(lock)
        }
        None => None,
    };
    let hostname_override = super::given(&args.hostname)
        .map(super::hostname_list)
        .transpose()?;
    let wanted: Vec<San> = match &hostname_override {
        Some(hosts) => hosts.iter().map(|h| San::classify(h)).collect(),
        None => csr_sans,
    };
    let subject = match subject_path {
        Some(path) => {
            let (bytes, source) = super::read_arg(path, "SUBJECT")?;
            Some(Subject::parse(&bytes, &source)?)
        }
        None => None,
    };
    let transport = Transport::new(&tls, args.ca.timeout)?;
    let request = SignRequest {
        hosts: hostname_override.as_deref(),
        certificate_request: &csr_pem,
        subject: subject.as_ref(),
        profile: &args.ca.profile,
        crl_override: "",
        label: &args.ca.label,
    };
    let client = CaClient {
        target: &target,
        transport: &transport,
    };
    let (server, cert_pem) = client.certificate(
        target.sign_path(),
        &request.to_body(target.auth_key.as_ref(), unix_now()),
        None,
    )?;
    let issued = crate::verify::check(
        &cert_pem,
        &spki,
        &wanted,
        unix_now(),
        transport.pinned_cas(),
    )
    .map_err(|detail| Error::BadResponse { server, detail })?;
    match out_path {
        Some(path) => write_file_atomically(&path, issued.pem.as_bytes(), PUBLIC_MODE),
        None => {
            // cfssl sign prints the certificate and the CSR as it was read, so that
            // `| cfssljson -bare NAME` writes NAME.pem and NAME.csr.
            let csr_as_read = String::from_utf8_lossy(&bytes);
            let line = serde_json::json!({"cert": issued.pem, "csr": csr_as_read}).to_string();
            crate::output::print_product(&format!("{line}\n"))
        }
    }
}

/// The CSR as PEM (normalised), its SubjectPublicKeyInfo, and its SANs. The self-signature is
/// checked here so a corrupted CSR is reported as the input error it is.
fn read_csr(bytes: &[u8]) -> std::result::Result<(String, Vec<u8>, Vec<San>), String> {
    let block = pem::parse(bytes).map_err(|_| {
        "is not a PEM CSR: expected a -----BEGIN CERTIFICATE REQUEST----- block".to_string()
    })?;
    if block.tag() != "CERTIFICATE REQUEST" && block.tag() != "NEW CERTIFICATE REQUEST" {
        return Err(format!(
            "a PEM {} block, not a CERTIFICATE REQUEST",
            block.tag()
        ));
    }
    let (_, csr) = X509CertificationRequest::from_der(block.contents())
        .map_err(|e| format!("the CSR does not parse: {e}"))?;
    check_self_signature(&csr)?;
    let spki = csr.certification_request_info.subject_pki.raw.to_vec();
    let sans = csr
        .requested_extensions()
        .into_iter()
        .flatten()
        .filter_map(|ext| match ext {
            ParsedExtension::SubjectAlternativeName(names) => Some(names.general_names.iter()),
            _ => None,
        })
        .flatten()
        .filter_map(San::from_general_name)
        .collect();
    let pem = crate::keygen::pem_encode("CERTIFICATE REQUEST", block.contents()).to_string();
    Ok((pem, spki, sans))
}

/// Refuses a CSR whose self-signature is wrong. One this build cannot check (ECDSA with SHA-512
/// or SHA-1, P-521, RSA under 2048 bits, which ring does not verify) goes to the CA as it is:
/// cfssl checks every CSR's signature itself, and `cfssl sign -remote` sends such CSRs too.
fn check_self_signature(csr: &X509CertificationRequest<'_>) -> std::result::Result<(), String> {
    use x509_parser::error::X509Error;
    use x509_parser::public_key::PublicKey;
    let small_rsa = matches!(
        csr.certification_request_info.subject_pki.parsed(),
        Ok(PublicKey::RSA(rsa)) if rsa.key_size() < 2048
    );
    match csr.verify_signature() {
        Ok(()) => Ok(()),
        Err(X509Error::SignatureUnsupportedAlgorithm) => {
            log::debug!("the CSR's signature algorithm is not checked here; the CA checks it");
            Ok(())
        }
        Err(_) if small_rsa => {
            log::debug!("an RSA key under 2048 bits: its CSR's signature is left to the CA");
            Ok(())
        }
        Err(_) => Err("the CSR's self-signature does not verify".into()),
    }
}
