//! One module per subcommand: each turns its clap arguments into a plan and runs the concept
//! modules in order. Nothing below this layer sees a clap type.

pub mod gencert;
pub mod genkey;
pub mod sync;

use std::io::Read;
use std::path::Path;

use crate::cli::RequestArgs;
use crate::csr::{CertificateRequest, check_host};
use crate::error::{Error, Result};

/// csr.json with `-cn` and `-hostname` applied, and the hostname list when it was given (gencert
/// then sends it to the CA too).
pub(crate) fn load_request(
    args: &RequestArgs,
) -> Result<(CertificateRequest, Option<Vec<String>>)> {
    let source = csr_source(&args.csr_json);
    let bytes = if args.csr_json == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::input(&source, format!("cannot read: {e}")))?;
        bytes
    } else {
        crate::error::read_input(&args.csr_json, "csr.json")?
    };
    let mut request = CertificateRequest::parse(&bytes, &source)?;
    if let Some(cn) = &args.cn {
        request.common_name = cn.clone();
    }
    let hostname_override = match &args.hostname {
        None => None,
        Some(list) => {
            let hosts: Vec<String> = list.split(',').map(str::to_string).collect();
            for host in &hosts {
                check_host(host).map_err(|d| Error::Usage(format!("flag -hostname: entry {d}")))?;
            }
            request.hosts = hosts.clone();
            Some(hosts)
        }
    };
    if request.common_name.is_empty() && request.hosts.is_empty() {
        return Err(Error::input(
            source,
            "has neither CN nor hosts, so the certificate would name nothing: set CN or hosts (or -cn / -hostname)",
        ));
    }
    Ok((request, hostname_override))
}

fn csr_source(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".into()
    } else {
        path.display().to_string()
    }
}
