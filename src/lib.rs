//! nodecert: get a TLS certificate from a CFSSL CA (multirootca or `cfssl serve`) without the
//! private key ever leaving the host.
//!
//! The key and the PKCS#10 request are made locally; the request goes to the CA's
//! `/api/v1/cfssl/authsign` with cfssl's HMAC token over TLS that trusts exactly the CA given;
//! the certificate that comes back is checked (our key, valid now, every requested SAN) before
//! anything is written, and files are replaced atomically, the key at mode 0600 (or the
//! narrower or group-readable mode `--key-mode` asks for).
//!
//! The binary is a thin adapter over [`run`]; tests and benchmarks call the same code.

#![forbid(unsafe_code)]

// Public: the modules the integration tests, fuzz targets and the benchmark's floor program
// call; the rest is the binary's own.
mod auth;
pub mod cli;
pub mod client;
mod commands;
pub mod csr;
mod der;
pub mod error;
mod hook;
pub mod inspect;
pub mod job;
pub mod keygen;
mod lock;
mod logging;
mod metrics;
pub mod output;
pub mod profile;
pub mod protocol;
mod renew;
mod signals;
mod signer;
mod spec;
pub mod transport;
pub mod verify;

pub use error::{Error, Result};

/// The whole process, from its arguments (the program name first) to its exit code: a panic is
/// reported as a bug ([`error::report_panics`]), usage errors are one line, `--help` and
/// `--version` are printed, and a command that writes files has its signals handled first.
pub fn main(args: impl IntoIterator<Item = std::ffi::OsString>) -> u8 {
    use clap::error::ErrorKind;
    use cli::{argv, usage};

    error::report_panics();
    let (args, parsed) = argv::parse(args);
    let cli = match parsed {
        Ok(cli) => cli,
        Err(err)
            if err.use_stderr()
                || err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            let message = usage::one_line(&err, &args);
            logging::print_usage_error(&message, usage::log_format(&args));
            return error::exit::USAGE;
        }
        Err(err) => {
            // --help and --version (stdout, exit 0). A stdout that takes nothing (a full disk)
            // fails as any other output does; a reader that has gone away (`| head -1`) does not.
            if let Err(e) = err.print()
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                let err = output::stdout_error(e);
                logging::print_error(&err);
                return err.exit_code();
            }
            return err.exit_code() as u8;
        }
    };
    if cli.command.writes_files() {
        // Before any other thread starts: they inherit the blocked signals.
        signals::install();
    }
    match run(&cli) {
        Ok(code) => code,
        Err(err) => {
            logging::print_error(&err);
            err.exit_code()
        }
    }
}

/// Runs a parsed command line; returns the exit code for a run that completed (sync reports
/// failed specs through it).
pub fn run(cli: &cli::Cli) -> Result<u8> {
    let level = if cli.quiet {
        cli.loglevel.max(3)
    } else {
        cli.loglevel
    };
    logging::init(level, cli.log_format);
    let done = |()| error::exit::OK;
    match &cli.command {
        cli::Command::Gencert(args) => commands::gencert::run(args, level).map(done),
        cli::Command::Genkey(args) => commands::genkey::run(args).map(done),
        cli::Command::Sign(args) => commands::sign::run(args).map(done),
        cli::Command::Info(args) => commands::info::run(args).map(done),
        cli::Command::Certinfo(args) => commands::certinfo::run(args),
        cli::Command::Sync(args) => commands::sync::run(args, level),
    }
}
