//! `nodecert certinfo FILE|-`: what a certificate says, and an exit code a monitoring check can
//! act on (expired, or expiring within `--check`; for a chain file, its first certificate to
//! expire).

use crate::cli::CertinfoArgs;
use crate::error::{Error, Result, exit};
use crate::inspect;
use crate::job::unix_now;

/// Runs certinfo; returns 0, [`exit::EXPIRING`] or [`exit::EXPIRED`].
pub(crate) fn run(args: &CertinfoArgs) -> Result<u8> {
    let (bytes, source) = super::read_arg(args.file(), "certificate")?;
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
        let left = if summary.not_after_unix <= now {
            format!(
                "expired {} ago",
                crate::renew::human(now - summary.not_after_unix)
            )
        } else {
            format!("{} days left", summary.days_left)
        };
        format!(
            "subject:    {}\nissuer:     {}\nSANs:       {sans}\nserial:     {}\nkey:        {}\n\
             not before: {}\nnot after:  {} ({left})\n",
            summary.subject,
            summary.issuer,
            summary.serial,
            summary.key,
            summary.not_before,
            summary.not_after,
        )
    };
    crate::output::print_report(&text)?;
    // A chain file is as good as its first certificate to expire: the exit code follows that
    // one, and a line says which it is (the description above is the first certificate's).
    // Not being valid yet is no expiry, so it has no exit code of its own; but a certificate a
    // service cannot use yet (a clock behind, a pair issued for later) is worth a line from a
    // monitoring check, wherever it is in the chain.
    let chain = inspect::chain(&bytes);
    for link in chain.iter().filter(|link| link.not_before > now) {
        let which = match link.position {
            1 => String::new(),
            n => format!(" certificate {n} of the chain ({})", link.subject),
        };
        log::warn!(
            "{source}:{which} not valid until {} ({} days from now)",
            inspect::rfc3339(link.not_before),
            (link.not_before - now).div_euclid(86_400)
        );
    }
    let mut not_after = summary.not_after_unix;
    if let Some(earlier) = (chain.iter().skip(1))
        .filter(|link| link.not_after < summary.not_after_unix)
        .min_by_key(|link| link.not_after)
    {
        log::warn!(
            "{source}: certificate {} of the chain ({}) expires first, at {}",
            earlier.position,
            earlier.subject,
            inspect::rfc3339(earlier.not_after)
        );
        not_after = earlier.not_after;
    }
    // The exit code says it to a script; a line says it to whoever reads cron's mail.
    let left = not_after - now;
    let at = inspect::rfc3339(not_after);
    Ok(match args.check {
        _ if left <= 0 => {
            log::warn!("{source}: expired at {at}: renew it now");
            exit::EXPIRED
        }
        Some(window) if left <= window.as_secs() as i64 => {
            log::warn!(
                "{source}: expires at {at}, within --check {}: renew it",
                crate::renew::human(i64::try_from(window.as_secs()).unwrap_or(i64::MAX))
            );
            exit::EXPIRING
        }
        _ => exit::OK,
    })
}
