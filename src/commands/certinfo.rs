//! `nodecert certinfo FILE|-`: what a certificate says, and an exit code a monitoring check can
//! act on (expired, or expiring within `--check`).

use crate::cli::CertinfoArgs;
use crate::error::{Error, Result, exit};
use crate::inspect;
use crate::job::unix_now;

/// Runs certinfo; returns 0, [`exit::EXPIRING`] or [`exit::EXPIRED`].
pub fn run(args: &CertinfoArgs) -> Result<u8> {
    let (bytes, source) = super::read_arg(&args.file, "certificate")?;
    let now = unix_now();
    let summary = inspect::summarise(&bytes, now).map_err(|d| Error::input(&source, d))?;
    if args.json {
        let line = serde_json::to_string(&summary).map_err(|e| Error::Internal(e.to_string()))?;
        println!("{line}");
    } else {
        println!("subject:    {}", summary.subject);
        println!("issuer:     {}", summary.issuer);
        println!(
            "SANs:       {}",
            if summary.sans.is_empty() {
                "(none)".into()
            } else {
                summary.sans.join(", ")
            }
        );
        println!("serial:     {}", summary.serial);
        println!("key:        {}", summary.key);
        println!("not before: {}", summary.not_before);
        println!(
            "not after:  {} ({} days left)",
            summary.not_after, summary.days_left
        );
    }
    let left = summary.not_after_unix - now;
    Ok(match args.check {
        _ if left <= 0 => exit::EXPIRED,
        Some(window) if left <= window.as_secs() as i64 => exit::EXPIRING,
        _ => exit::OK,
    })
}
