//! `nodecert genkey`: a key and its CSR, no network (cfssl genkey); optionally linted against a
//! Kubernetes signer and wrapped in a CertificateSigningRequest manifest.

use crate::cli::GenkeyArgs;
use crate::error::{Error, Result};
use crate::keygen::{PrivateKey, pem_encode};
use crate::output::{Bundle, Destination, FileOptions, Reserved};
use crate::signer::{self, MIN_EXPIRATION_SECONDS, Manifest, Signer};

/// Runs genkey.
pub(crate) fn run(args: &GenkeyArgs) -> Result<()> {
    let (request, _) = super::load_request(&args.request)?;
    // The manifest's flags first: a refused command line is one usage error, not preceded by
    // the lint's lines (for a signer nodecert does not know, a warning that nothing was checked).
    let manifest = match (args.k8s_csr, &args.signer) {
        (true, Some(name)) => Some(manifest_plan(args, name, &request.common_name)?),
        _ => None,
    };
    let source = args.request.csr_json.display().to_string();
    if let Some(name) = &args.signer {
        signer::lint_request(name, &request, &source)?;
    }
    let destination = match (&args.bare, &args.key, &args.csr) {
        (Some(name), _, _) => Destination::bare_without_cert(name),
        (None, Some(key), Some(csr)) => Destination::Files {
            cert: None,
            key: key.clone(),
            csr: Some(csr.clone()),
        },
        _ => Destination::Stdout,
    };
    if manifest.is_some() && destination == Destination::Stdout {
        return Err(Error::Usage(
            "--k8s-csr prints the manifest on stdout: write the key with -bare NAME or --key/--csr"
                .into(),
        ));
    }
    crate::output::check_distinct(
        &destination.outputs(),
        &[(&args.request.csr_json, "the csr.json input")],
    )?;
    if let Some(name) = &args.bare {
        crate::renew::check_pair_survives(
            &crate::output::bare_file(name, ".pem"),
            &crate::output::bare_file(name, "-key.pem"),
            None,
        )?;
    }
    let reserved = Reserved::new(destination, &FileOptions::default())?;
    let key = PrivateKey::generate(request.key)?;
    let csr_pem = pem_encode("CERTIFICATE REQUEST", &request.to_csr_der(&key)?);
    reserved.commit(&Bundle {
        cert: None,
        csr: &csr_pem,
        key: &key.to_pem(),
    })?;
    if let Some((name, signer, usages, expiration_seconds)) = manifest {
        let manifest = Manifest {
            name: &name,
            csr_pem: &csr_pem,
            signer,
            usages: &usages,
            expiration_seconds,
        };
        crate::output::print_product(&format!("{}\n", manifest.to_json()))?;
    }
    Ok(())
}

type ManifestPlan<'a> = (String, &'a str, Vec<String>, Option<u64>);

/// Name, signer, usages and expiration of the manifest, checked before any key is made.
fn manifest_plan<'a>(
    args: &GenkeyArgs,
    signer_name: &'a str,
    common_name: &str,
) -> Result<ManifestPlan<'a>> {
    let name = match &args.k8s_name {
        Some(name) => {
            signer::check_object_name(name)
                .map_err(|d| Error::Usage(format!("flag --k8s-name: {d}")))?;
            name.clone()
        }
        None => signer::object_name(common_name).ok_or_else(|| {
            Error::Usage("the CN gives no valid object name: pass --k8s-name".into())
        })?,
    };
    let known = Signer::from_name(signer_name);
    let usages: Vec<String> = match (&args.usages, known) {
        (Some(list), _) => list
            .split(',')
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect(),
        (None, Some(signer)) => signer.default_usages(),
        (None, None) => {
            return Err(Error::Usage(format!(
                "--signer {signer_name} is not built in: give --usages"
            )));
        }
    };
    signer::check_usage_names(&usages).map_err(|d| Error::Usage(format!("flag --usages: {d}")))?;
    if let Some(signer) = known {
        signer::report(signer_name, "flag --usages", signer.check_usages(&usages))?;
    }
    let expiration_seconds = match args.expiration {
        Some(d) if d.as_secs() < MIN_EXPIRATION_SECONDS => {
            return Err(Error::Usage(format!(
                "flag --expiration: {} is under the 10m the API server accepts",
                humantime::format_duration(d)
            )));
        }
        other => other.map(|d| d.as_secs()),
    };
    Ok((name, signer_name, usages, expiration_seconds))
}
