//! `nodecert certinfo FILE|-`: what a certificate says, and an exit code a monitoring check can
//! act on (expired, or expiring within `--check`; for a chain file, its first certificate to
//! expire).

use crate::cli::CertinfoArgs;
use crate::error::{Error, Result, exit};
use crate::inspect;
use crate::job::unix_now;

/// Runs certinfo; returns 0, [`exit::EXPIRING`] or [`exit::EXPIRED`].
pub fn run(args: &CertinfoArgs) -> Result<u8> {
    let (bytes, source) = super::read_arg(&args.file, "certificate")?;
    let now = unix_now();
    let summary = inspect::summarise(&bytes, now).map_err(|d| Error::input(&source, d))?;
    let text = if args.json {
        let line = serde_json::to_string(&summary).map_err(|e| Error::Internal(e.to_string()))?;
        format!("{line}\n")
    } else {
        let sans = if summary.sans.is_empty() {
            "(none)".into()
        } else {
            summary.sans.join(", ")
        };
        format!(
            "subject:    {}\nissuer:     {}\nSANs:       {sans}\nserial:     {}\nkey:        {}\n\
             not before: {}\nnot after:  {} ({} days left)\n",
            summary.subject,
            summary.issuer,
            summary.serial,
            summary.key,
            summary.not_before,
            summary.not_after,
            summary.days_left
        )
    };
    crate::output::print_report(&text)?;
    // Not an expiry, so no exit code of its own; but a certificate a service cannot use yet
    // (a clock behind, a pair issued for later) is worth a line from a monitoring check.
    if summary.not_before_unix > now {
        log::warn!(
            "{source}: not valid until {} ({} days from now)",
            summary.not_before,
            (summary.not_before_unix - now).div_euclid(86_400)
        );
    }
    // A chain file is as good as its first certificate to expire: the exit code follows that
    // one, and a line says which it is (the description above is the first certificate's).
    let mut not_after = summary.not_after_unix;
    if let Some((position, subject, earlier)) = inspect::earlier_in_chain(&bytes) {
        log::warn!(
            "{source}: certificate {position} of the chain ({subject}) expires first, at {}",
            inspect::rfc3339(earlier)
        );
        not_after = earlier;
    }
    let left = not_after - now;
    Ok(match args.check {
        _ if left <= 0 => exit::EXPIRED,
        Some(window) if left <= window.as_secs() as i64 => exit::EXPIRING,
        _ => exit::OK,
    })
}
