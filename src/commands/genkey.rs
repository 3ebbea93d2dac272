//! `nodecert genkey`: a key and its CSR, no network (cfssl genkey). For a CSR that another path
//! will carry to a CA, or to inspect what gencert would send.

use crate::cli::GenkeyArgs;
use crate::error::{Error, Result};
use crate::keygen::{PrivateKey, pem_encode};
use crate::output::{Bundle, Destination, FileOptions, Reserved};

/// Runs genkey.
pub fn run(args: &GenkeyArgs) -> Result<()> {
    let (request, _) = super::load_request(&args.request)?;
    let destination = match (&args.bare, &args.key, &args.csr) {
        (Some(name), _, _) if name.is_empty() => {
            return Err(Error::Usage(
                "flag -bare: give a NAME for NAME-key.pem and NAME.csr".into(),
            ));
        }
        (Some(name), _, _) => Destination::bare_without_cert(name),
        (None, Some(key), Some(csr)) => Destination::Files {
            cert: None,
            key: key.clone(),
            csr: Some(csr.clone()),
        },
        _ => Destination::Stdout,
    };
    let reserved = Reserved::new(destination, &FileOptions::default())?;
    let key = PrivateKey::generate(request.key)?;
    let csr_pem = pem_encode("CERTIFICATE REQUEST", &request.to_csr_der(&key)?);
    let key_pem = key.to_pem();
    reserved.commit(&Bundle {
        cert: None,
        csr: &csr_pem,
        key: &key_pem,
    })
}
