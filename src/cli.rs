//! The command line: clap derive structs holding what was typed, nothing more.
//!
//! cfssl spells its flags with one dash (`-config x`, `-config=x`); clap does not do single-dash
//! long flags, so [`argv::normalize`] rewrites them to `--config` before clap sees them, using the
//! flag names of this very definition (a new flag needs no second edit).

pub mod argv;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::error::exit;

/// Get a TLS certificate from a CFSSL CA; the private key never leaves this host.
#[derive(Debug, Parser)]
#[command(name = "nodecert", version, about, long_about = None, after_long_help = after_help())]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log level as in cfssl: 0 debug, 1 info, 2 warning, 3 error, 4 critical, 5 fatal.
    #[arg(long, global = true, value_name = "LEVEL", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(0..=5))]
    pub loglevel: u8,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a key and CSR locally and have the CA sign it (cfssl gencert -remote | cfssljson).
    #[command(after_long_help = after_help())]
    Gencert(Box<GencertArgs>),

    /// Generate a key and CSR locally, with no network (cfssl genkey).
    #[command(after_long_help = after_help())]
    Genkey(GenkeyArgs),
}

/// What to request: csr.json and the flags that override it.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// cfssl csr.json (CN, names, hosts, key); `-` reads it from stdin.
    #[arg(value_name = "CSRJSON")]
    pub csr_json: PathBuf,

    /// Comma-separated SANs that replace csr.json's hosts (and are sent to the CA).
    #[arg(long, value_name = "LIST")]
    pub hostname: Option<String>,

    /// Common name, overriding csr.json's CN.
    #[arg(long, value_name = "NAME")]
    pub cn: Option<String>,
}

/// `nodecert genkey`.
#[derive(Debug, Args)]
pub struct GenkeyArgs {
    #[command(flatten)]
    pub request: RequestArgs,

    /// Write NAME-key.pem and NAME.csr, instead of JSON {"csr","key"} on stdout.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["key", "csr"])]
    pub bare: Option<String>,

    /// Write the private key (mode 0600) to this path; needs --csr.
    #[arg(long, value_name = "PATH", requires = "csr")]
    pub key: Option<PathBuf>,

    /// Write the CSR to this path; needs --key.
    #[arg(long, value_name = "PATH", requires = "key")]
    pub csr: Option<PathBuf>,
}

/// `nodecert gencert`.
#[derive(Debug, Args)]
pub struct GencertArgs {
    #[command(flatten)]
    pub request: RequestArgs,

    /// Request profile: signing.default / signing.profiles.NAME with auth_remote, auth_keys, remotes.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Profile name sent to the CA and used to pick signing.profiles.NAME (empty: the CA's default).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "",
        hide_default_value = true
    )]
    pub profile: String,

    /// Label selecting the CA root on a multirootca (empty: the server's default label).
    #[arg(
        long,
        value_name = "LABEL",
        default_value = "",
        hide_default_value = true
    )]
    pub label: String,

    /// CA address(es), overriding the profile's: https://HOST:PORT or HOST:PORT, comma list = failover.
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,

    /// Trust exactly this CA (PEM) for the CA's TLS certificate, instead of the system roots.
    #[arg(long = "tls-remote-ca", value_name = "FILE")]
    pub tls_remote_ca: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS; needs -mutual-tls-client-key.
    #[arg(
        long = "mutual-tls-client-cert",
        value_name = "FILE",
        requires = "mutual_tls_client_key"
    )]
    pub mutual_tls_client_cert: Option<PathBuf>,

    /// Client private key (PEM) for mutual TLS; needs -mutual-tls-client-cert.
    #[arg(
        long = "mutual-tls-client-key",
        value_name = "FILE",
        requires = "mutual_tls_client_cert"
    )]
    pub mutual_tls_client_key: Option<PathBuf>,

    /// Write NAME.pem, NAME-key.pem and NAME.csr (as cfssljson -bare NAME), instead of JSON on stdout.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["cert", "key", "csr"])]
    pub bare: Option<String>,

    /// Write the certificate to this path; needs --key.
    #[arg(long, value_name = "PATH", requires = "key")]
    pub cert: Option<PathBuf>,

    /// Write the private key (mode 0600) to this path; needs --cert.
    #[arg(long, value_name = "PATH", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Also write the CSR to this path (with --cert and --key).
    #[arg(long, value_name = "PATH", requires = "cert")]
    pub csr: Option<PathBuf>,

    /// Give up on a CA that has not answered within this time (e.g. 30s, 2m); connecting is capped at 10s.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Allow an http:// remote. The auth token and CSR then travel in clear; a warning is printed.
    #[arg(long)]
    pub allow_plaintext: bool,
}

/// Parses `30s`, `2m`, `720h`, `30d` (Go-style and humantime units).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e}: use a duration such as 30s, 2m or 720h"))?;
    if duration.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(duration)
}

/// The long help's epilogue: the cfssl spellings note and the exit-status table.
fn after_help() -> String {
    let mut text = String::from(
        "Every long flag is also accepted with one dash, as cfssl spells it: -config x, -config=x, \
         --config x and --config=x are the same.\n\nExit status:\n",
    );
    for (code, meaning) in exit::TABLE {
        text.push_str(&format!("  {code}  {meaning}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("720h"), Ok(Duration::from_secs(720 * 3600)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
