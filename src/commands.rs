//! One module per subcommand: each turns its clap arguments into a plan and runs the concept
//! modules in order. Nothing below this layer sees a clap type.

pub(crate) mod certinfo;
pub(crate) mod gencert;
pub(crate) mod genkey;
pub(crate) mod info;
pub(crate) mod sign;
pub(crate) mod sync;

use std::io::Read;
use std::path::Path;

use crate::cli::{CaArgs, RequestArgs};
use crate::csr::{CertificateRequest, check_host};
use crate::error::{Error, Result};
use crate::profile::{self, Target};
use crate::transport::TlsOptions;

/// csr.json with `-cn` and `-hostname` applied, and the hostname list when it was given (gencert
/// then sends it to the CA too).
pub(crate) fn load_request(
    args: &RequestArgs,
) -> Result<(CertificateRequest, Option<Vec<String>>)> {
    let (bytes, source) = read_arg(&args.csr_json, "csr.json")?;
    let mut request = CertificateRequest::parse(&bytes, &source)?;
    if let Some(cn) = given(&args.cn) {
        request.common_name = cn.to_string();
    }
    let hostname_override = given(&args.hostname).map(hostname_list).transpose()?;
    if let Some(hosts) = &hostname_override {
        request.hosts = hosts.clone();
    }
    request.check_names_something(&source)?;
    Ok((request, hostname_override))
}

/// A string flag's value, or None when it was not given or given empty: cfssl tests these flags
/// against "" (`-cn "$CN"` with CN unset keeps csr.json's CN), and scripts rely on that.
pub(crate) fn given(flag: &Option<String>) -> Option<&str> {
    flag.as_deref().filter(|value| !value.is_empty())
}

/// `-hostname a,b,c` as a checked list. cfssl splits on commas without trimming, and issues an
/// empty SAN for an empty entry; nodecert leaves empty entries out, with a warning (a script's
/// `"$(hostname -f),$(hostname -I | cut -d' ' -f1)"` on a host with no address yet: the pair
/// is renewed with the address once there is one), and refuses space-padded ones, a SAN
/// nobody meant.
pub(crate) fn hostname_list(list: &str) -> Result<Vec<String>> {
    let entries: Vec<&str> = list.split(',').collect();
    let hosts: Vec<String> = (entries.iter())
        .filter(|host| !host.is_empty())
        .map(|host| host.to_string())
        .collect();
    if hosts.is_empty() {
        return Err(Error::Usage(
            "flag -hostname: lists no host, only commas: give host names or addresses".into(),
        ));
    }
    if hosts.len() < entries.len() {
        log::warn!("flag -hostname: {list:?} has an empty entry: left out");
    }
    for host in &hosts {
        check_host(host).map_err(|d| Error::Usage(format!("flag -hostname: entry {d}")))?;
    }
    Ok(hosts)
}

/// The CA to talk to and how to trust it, from the shared flags.
pub(crate) fn resolve_ca(args: &CaArgs) -> Result<(Target, TlsOptions)> {
    let target = profile::resolve(
        args.config.as_deref().filter(|p| !p.as_os_str().is_empty()),
        &args.profile,
        given(&args.remote),
    )?;
    target.check_plaintext(args.allow_plaintext)?;
    let client_identity = match (&args.mutual_tls_client_cert, &args.mutual_tls_client_key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        _ => None,
    };
    Ok((
        target,
        TlsOptions {
            pinned_ca: args.tls_remote_ca.clone(),
            client_identity,
        },
    ))
}

/// The files a run with these CA arguments reads, for [`crate::output::check_distinct`]: those
/// named by flags, and the auth key file of the profile's `target` once it is resolved.
pub(crate) fn ca_inputs<'a>(
    args: &'a CaArgs,
    target: Option<&'a Target>,
) -> Vec<(&'a Path, &'static str)> {
    let mut inputs: Vec<_> = [
        (&args.config, "the request profile (-config)"),
        (&args.tls_remote_ca, "the CA certificate (-tls-remote-ca)"),
        (
            &args.mutual_tls_client_cert,
            "the client certificate (-mutual-tls-client-cert)",
        ),
        (
            &args.mutual_tls_client_key,
            "the client key (-mutual-tls-client-key)",
        ),
    ]
    .into_iter()
    .filter_map(|(path, what)| Some((path.as_deref()?, what)))
    .filter(|(path, _)| !path.as_os_str().is_empty())
    .collect();
    inputs.extend(target.into_iter().flat_map(Target::auth_key_inputs));
    inputs
}

/// Reads a file argument, `-` meaning stdin; returns the bytes and a name for messages.
pub(crate) fn read_arg(path: &Path, role: &str) -> Result<(Vec<u8>, String)> {
    if path == Path::new("-") {
        let limit = crate::error::MAX_INPUT_BYTES;
        let mut bytes = Vec::new();
        std::io::stdin()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::input("<stdin>", format!("cannot read: {e}")))?;
        if bytes.len() as u64 > limit {
            return Err(Error::input(
                "<stdin>",
                format!("is larger than {} KiB: not a {role}", limit / 1024),
            ));
        }
        Ok((bytes, "<stdin>".into()))
    } else {
        Ok((
            crate::error::read_input(path, role)?,
            path.display().to_string(),
        ))
    }
}
