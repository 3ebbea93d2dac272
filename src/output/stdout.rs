//! stdout as an output: what a command prints, and refusing a stdout that keeps nothing.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Prints what the command was run to get (a certificate from `sign`, the CA's from `info`) on
/// stdout: any failure to deliver it, a reader that has gone too, is an output error (exit 8).
pub fn print_product(text: &str) -> Result<()> {
    write_stdout(text).map_err(stdout_error)
}

/// Prints a report or a description on stdout. A reader that has gone away (`| head -1`) is not
/// an error, so the command's own exit status stands (certinfo's 12 and 13); a full disk behind
/// `>` is (exit 8). Either way, never the standard library's panic.
pub fn print_report(text: &str) -> Result<()> {
    match write_stdout(text) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(stdout_error(e)),
        _ => Ok(()),
    }
}

fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

/// A failure to write stdout, as an output error (exit 8) naming `<stdout>`.
pub(crate) fn stdout_error(err: impl std::fmt::Display) -> Error {
    Error::output(Path::new("<stdout>"), err)
}

/// Fails when stdout goes nowhere: to /dev/null, or closed (`>&-`, which the Rust runtime
/// replaces with /dev/null at start), or to /dev/full, which refuses every write. A new private
/// key printed there is lost, with a certificate signed for nothing; checked before the key is
/// made, the CA is asked, and `--jitter` waits.
pub fn stdout_keeps_output() -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(out) = nix::sys::stat::fstat(std::io::stdout()) else {
        return Ok(());
    };
    if out.st_mode & nix::libc::S_IFMT != nix::libc::S_IFCHR {
        return Ok(());
    }
    let is = |device: &str| std::fs::metadata(device).is_ok_and(|d| d.rdev() == out.st_rdev);
    let lost = if is("/dev/null") {
        "closed or /dev/null"
    } else if is("/dev/full") {
        "/dev/full, which refuses every write"
    } else {
        return Ok(());
    };
    Err(stdout_error(format!(
        "standard output is {lost}, and the new key or certificate printed there would be \
         lost: redirect it to a file, or write files (-bare NAME)"
    )))
}
