//! `nodecert info`: the CA certificate from the remote's info endpoint, over the pinned TLS
//! (cfssl info -remote): printed as cfssl prints it (JSON), as PEM (`--pem`), or written. Useful to bootstrap a trust bundle once the CA's TLS certificate is
//! pinned, or to check which root a label signs with.

use crate::cli::InfoArgs;
use crate::client::CaClient;
use crate::error::{Error, Result};
use crate::output::{PUBLIC_MODE, write_file_atomically};
use crate::protocol::INFO_PATH;
use crate::transport::Transport;

/// Runs info.
pub(crate) fn run(args: &InfoArgs) -> Result<()> {
    let (target, tls) = super::resolve_ca(&args.ca)?;
    // Without --out, stdout may be /dev/null: the CA certificate is lost at no cost (it can be
    // fetched again), and `nodecert info … >/dev/null` is the health check cfssl info allows.
    if let Some(out) = &args.out {
        let inputs = super::ca_inputs(&args.ca, Some(&target));
        crate::output::check_distinct(&[(out, "the output (--out)")], &inputs)?;
        crate::output::check_writable(out)?;
        crate::output::check_not_a_key(out, None)?;
    }
    let transport = Transport::new(&tls, args.ca.timeout)?;
    let body = serde_json::json!({"label": args.ca.label, "profile": args.ca.profile}).to_string();
    let client = CaClient {
        target: &target,
        transport: &transport,
    };
    let (server, pem, reply) = client.certificate_and_reply(INFO_PATH, body.as_bytes(), None)?;
    // What goes into a trust file is certificates alone: a reply with anything else in it (a
    // page's text, a terminal escape sequence) is not cfssl's, and is refused.
    let bad = |detail: String| Error::BadResponse {
        server: server.clone(),
        detail: format!("the CA certificate {detail}"),
    };
    let ders = crate::verify::certificates_only(&pem).map_err(bad)?;
    let summary = crate::inspect::summarise(pem.as_bytes(), crate::job::unix_now()).map_err(bad)?;
    if !summary.is_ca {
        log::warn!(
            "{server}: the certificate of this label is not a CA's ({}): check -label before \
             trusting it",
            summary.subject
        );
    }
    // Written as PEM again from what was checked (a file ends in a newline); cfssl's JSON
    // carries the certificate as the CA sent it (without one), so that
    // `| cfssljson -bare ca` writes the same ca.pem as it does after cfssl info.
    let file_text = || {
        (ders.iter())
            .map(|der| crate::keygen::pem_encode("CERTIFICATE", der).to_string())
            .collect::<String>()
    };
    match &args.out {
        Some(path) => write_file_atomically(path, file_text().as_bytes(), PUBLIC_MODE),
        None if args.pem => crate::output::print_product(&file_text()),
        None => crate::output::print_product(&format!(
            "{}\n",
            crate::protocol::info_response(&reply, &pem)
        )),
    }
}
