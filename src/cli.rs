//! The command line: clap derive structs holding what was typed, nothing more.
//!
//! cfssl spells its flags with one dash (`-config x`, `-config=x`); clap does not do single-dash
//! long flags, so [`argv::normalize`] rewrites them to `--config` before clap sees them, using the
//! flag names of this very definition (a new flag needs no second edit).

pub mod argv;
pub mod usage;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::error::exit;

/// Get a TLS certificate from a CFSSL CA; the private key never leaves this host.
#[derive(Debug, Parser)]
// A flag given twice takes its last value, as Go's flag package (and so cfssl) does: wrappers
// write `$DEFAULTS -profile kubelet`.
#[command(name = "nodecert", version, about, long_about = None, after_long_help = after_help(),
          args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log level as in cfssl: 0 debug, 1 info, 2 warning, 3 error, 4 critical, 5 fatal.
    #[arg(long, global = true, value_name = "LEVEL", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(0..=5))]
    pub loglevel: u8,

    /// Print only errors (the same as -loglevel 3).
    #[arg(long, global = true)]
    pub quiet: bool,

    /// Log line format on stderr: `text` (`nodecert: LEVEL: message`) or `json` (one object per line).
    #[arg(long, global = true, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// `--log-format` values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a key and CSR locally and have the CA sign it (cfssl gencert -remote | cfssljson).
    #[command(after_long_help = after_help())]
    Gencert(Box<GencertArgs>),

    /// Send an existing CSR to the CA and write the certificate (cfssl sign -remote).
    #[command(after_long_help = after_help())]
    Sign(SignArgs),

    /// Fetch the CA certificate from the remote's info endpoint (cfssl info -remote).
    #[command(after_long_help = after_help())]
    Info(InfoArgs),

    /// Show a certificate: subject, issuer, SANs, serial, key, validity, days left.
    #[command(after_long_help = after_help())]
    Certinfo(CertinfoArgs),

    /// Run every *.json spec in a directory (certmgr-style), in parallel, one line per spec.
    #[command(after_long_help = after_help())]
    Sync(SyncArgs),

    /// Generate a key and CSR locally, with no network (cfssl genkey).
    #[command(after_long_help = after_help())]
    Genkey(GenkeyArgs),
}

impl Command {
    /// Whether the command may write files (and so leave temporary ones if stopped): all but
    /// certinfo. Only these pay for the signal thread (`signals`).
    pub fn writes_files(&self) -> bool {
        !matches!(self, Self::Certinfo(_))
    }
}

/// What to request: csr.json and the flags that override it.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// cfssl csr.json (CN, names, hosts, key); `-` reads it from stdin.
    #[arg(value_name = "CSRJSON")]
    pub csr_json: PathBuf,

    /// Comma-separated SANs that replace csr.json's hosts (gencert also sends them to the CA).
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
    #[arg(long, value_name = "NAME", value_parser = bare_name(), conflicts_with_all = ["key", "csr"])]
    pub bare: Option<PathBuf>,

    /// Write the private key (mode 0600) to this path; needs --csr.
    #[arg(long, value_name = "PATH", requires = "csr")]
    pub key: Option<PathBuf>,

    /// Write the CSR to this path; needs --key.
    #[arg(long, value_name = "PATH", requires = "key")]
    pub csr: Option<PathBuf>,

    /// Check csr.json against a built-in Kubernetes signer's rules before any key is made
    /// (kubernetes.io/kube-apiserver-client-kubelet, kubernetes.io/kubelet-serving,
    /// kubernetes.io/kube-apiserver-client); also the manifest's signerName.
    #[arg(long, value_name = "NAME")]
    pub signer: Option<String>,

    /// Also print a certificates.k8s.io/v1 CertificateSigningRequest manifest on stdout, for
    /// `kubectl apply -f -` (needs -bare or --key/--csr, and --signer).
    #[arg(long, requires = "signer")]
    pub k8s_csr: bool,

    /// metadata.name of the manifest (default: the CN, made a valid object name).
    #[arg(long, value_name = "NAME", requires = "k8s_csr")]
    pub k8s_name: Option<String>,

    /// Comma-separated spec.usages (default: the signer's usual ones).
    #[arg(long, value_name = "LIST", requires = "k8s_csr")]
    pub usages: Option<String>,

    /// spec.expirationSeconds (at least 10m, as the API server requires), e.g. 24h.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "k8s_csr")]
    pub expiration: Option<Duration>,
}

/// How to reach the CA: the request profile and the flags that override it (shared by
/// gencert, sign and info).
#[derive(Debug, Args)]
pub struct CaArgs {
    /// Request profile: signing.default / signing.profiles.NAME with auth_remote, auth_keys, remotes.
    // An empty value is taken (and then counts as not given, as in cfssl): clap's own path
    // parser refuses it, which broke `-config "$CFG" -remote "$CA"` with CFG unset.
    #[arg(long, value_name = "FILE",
          value_parser = clap::builder::TypedValueParser::map(
              clap::builder::OsStringValueParser::new(), PathBuf::from))]
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

    /// Give up on a CA that has not answered within this time (e.g. 30s, 2m); connecting is capped at 10s.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Allow an http:// remote. What is sent can then be read, and what comes back replaced, on
    /// the way; a warning is printed.
    #[arg(long)]
    pub allow_plaintext: bool,
}

/// `nodecert gencert`.
#[derive(Debug, Args)]
pub struct GencertArgs {
    #[command(flatten)]
    pub request: RequestArgs,

    #[command(flatten)]
    pub ca: CaArgs,

    /// Write NAME.pem, NAME-key.pem and NAME.csr (as cfssljson -bare NAME), instead of JSON on stdout.
    #[arg(long, value_name = "NAME", value_parser = bare_name(), conflicts_with_all = ["cert", "key", "csr"])]
    pub bare: Option<PathBuf>,

    /// Write the certificate to this path; needs --key.
    #[arg(long, value_name = "PATH", requires = "key")]
    pub cert: Option<PathBuf>,

    /// Write the private key (mode 0600) to this path; needs --cert.
    #[arg(long, value_name = "PATH", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Also write the CSR to this path (with --cert and --key).
    #[arg(long, value_name = "PATH", requires = "cert")]
    pub csr: Option<PathBuf>,

    /// Check csr.json against a built-in Kubernetes signer's rules before any key is made.
    #[arg(long, value_name = "NAME")]
    pub signer: Option<String>,

    /// CRL distribution point URL the CA is asked to put in the certificate (cfssl's -crl).
    #[arg(long, value_name = "URL", default_value = "")]
    pub crl: String,

    #[command(flatten)]
    pub renewal: RenewalArgs,
}

/// `nodecert sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// An existing PEM CSR (its key held elsewhere: TPM, HSM); `-` reads it from stdin.
    #[arg(value_name = "CSRPEM", required_unless_present = "csr_flag")]
    pub csr: Option<PathBuf>,

    /// A subject for the certificate instead of the CSR's, as cfssl sign's SUBJECT: JSON with
    /// CN, names (C, ST, L, O, OU) and SerialNumber (a csr.json will do); what it leaves empty
    /// stays the CSR's, other CSR attributes (E, OIDs) are dropped by the CA. With -csr FILE,
    /// it is the one file argument; `-` reads stdin.
    #[arg(value_name = "SUBJECT")]
    pub subject: Option<PathBuf>,

    /// The CSR, as cfssl sign spells it (-csr FILE), instead of CSRPEM.
    #[arg(long = "csr", id = "csr_flag", value_name = "FILE")]
    pub csr_flag: Option<PathBuf>,

    /// Comma-separated SANs sent to the CA, replacing the CSR's.
    #[arg(long, value_name = "LIST")]
    pub hostname: Option<String>,

    #[command(flatten)]
    pub ca: CaArgs,

    /// Write NAME.pem instead of cfssl's JSON {"cert","csr"} on stdout.
    #[arg(long, value_name = "NAME", value_parser = bare_name(), conflicts_with = "cert")]
    pub bare: Option<PathBuf>,

    /// Write the certificate to this path; not over the certificate of a working pair (its
    /// key beside it as X-key.pem for X.pem, X.key for X.crt) for another key.
    #[arg(long, value_name = "PATH")]
    pub cert: Option<PathBuf>,
    /// How long to wait for a run renewing the same pair to finish before reporting busy
    /// (0: not at all).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_wait)]
    pub lock_timeout: Duration,
}

/// `nodecert info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub ca: CaArgs,

    /// Write the CA certificate to this file (mode 0644) instead of printing it.
    #[arg(long, value_name = "PATH", conflicts_with = "pem")]
    pub out: Option<PathBuf>,

    /// Print the CA certificate as PEM instead of cfssl info's JSON
    /// ({"certificate","usages","expiry"}, which `| cfssljson -bare ca` turns into ca.pem).
    #[arg(long)]
    pub pem: bool,
}

impl SignArgs {
    /// The CSR file and the SUBJECT file, if any. cfssl sign takes its file arguments in
    /// turn: the CSR unless -csr gave it, then SUBJECT, so with -csr the first is SUBJECT.
    pub fn files(&self) -> Result<(&Path, Option<&Path>), String> {
        let (csr, subject) = match (&self.csr_flag, &self.csr, &self.subject) {
            (Some(csr), subject, None) => (csr.as_path(), subject.as_deref()),
            (Some(_), _, Some(extra)) => {
                return Err(format!(
                    "unexpected argument {}: with -csr FILE, sign takes at most one file \
                     argument (SUBJECT)",
                    extra.display()
                ));
            }
            (None, csr, subject) => (csr.as_deref().unwrap_or(Path::new("-")), subject.as_deref()),
        };
        let stdin = Path::new("-");
        if csr == stdin && subject == Some(stdin) {
            return Err(
                "the CSR and SUBJECT cannot both be read from stdin: give one as a file".into(),
            );
        }
        Ok((csr, subject))
    }
}

impl CertinfoArgs {
    /// The certificate file, given as FILE or -cert.
    pub fn file(&self) -> &Path {
        either(&self.file, &self.cert)
    }
}

/// The one of a positional argument and its flag spelling that was given (clap requires one
/// and refuses both).
fn either<'a>(positional: &'a Option<PathBuf>, flag: &'a Option<PathBuf>) -> &'a Path {
    positional
        .as_deref()
        .or(flag.as_deref())
        .unwrap_or(Path::new("-"))
}

/// `nodecert certinfo`.
#[derive(Debug, Args)]
pub struct CertinfoArgs {
    /// A PEM (or DER) certificate; `-` reads stdin.
    #[arg(value_name = "FILE", required_unless_present = "cert")]
    pub file: Option<PathBuf>,

    /// The certificate, as cfssl certinfo spells it (-cert FILE), instead of FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "file")]
    pub cert: Option<PathBuf>,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,

    /// Exit 12 when the certificate expires within this time (e.g. 720h, 30d); 13 once expired.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub check: Option<Duration>,
}

/// Unattended renewal: what to do with an existing pair, and how hard to try.
#[derive(Debug, Args)]
#[command(next_help_heading = "Renewal")]
pub struct RenewalArgs {
    /// Keep the existing pair when it matches the request and is valid for longer than this
    /// (e.g. 720h, 30d): no request is sent and its contents stay (its owner and modes are
    /// brought to --owner, --mode, --key-mode; a deleted CSR is written back). Without it,
    /// always issue.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub renew_before: Option<Duration>,

    /// Issue a new certificate even when the existing pair could stay.
    #[arg(long)]
    pub force: bool,

    /// Keep the existing private key and send a new CSR for it (one that cannot be reused fails)
    #[arg(long)]
    pub reuse_key: bool,

    /// Print the outcome: `json` is one object on stdout (changed, action, reason, cert, key,
    /// serial, not_after; error and exit_code when the --exec hook failed); `text` is one line
    /// on stderr.
    #[arg(long, value_name = "FORMAT", value_enum)]
    pub report: Option<ReportFormat>,

    /// Run this command with `/bin/sh -c` after the files changed, with NODECERT_CERT and
    /// NODECERT_KEY set (absolute paths); on an unchanged pair only when an earlier run's hook
    /// did not succeed (it is owed until it does).
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,

    /// Stop the --exec command (its whole process group: SIGTERM, SIGKILL 5 s later) if it runs
    /// longer than this.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub exec_timeout: Duration,

    /// Owner of the written files: USER, USER:GROUP or :GROUP.
    #[arg(long, value_name = "USER[:GROUP]")]
    pub owner: Option<String>,

    /// Mode of the certificate and CSR files (octal; 0644 when not given). A pair that stays
    /// is set to it too, as to --owner.
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,

    /// Mode of the private key (octal): 0600, or 0640 for a service group; never wider. A key
    /// of a pair that stays that is readable beyond it is narrowed to it, with a warning.
    #[arg(long, value_name = "MODE", default_value = "0600")]
    pub key_mode: String,

    /// Wait a random time up to this long before contacting the CA, only when a certificate is
    /// due, so a fleet's cron minute does not hit the CA at once.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub jitter: Option<Duration>,

    /// Retry this many times when the CA is unreachable, times out or fails with 5xx
    /// (exponential backoff with jitter); the CA's refusals are never retried.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,

    /// How long to wait for another run on the same pair to finish before reporting busy
    /// (0: not at all).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_wait)]
    pub lock_timeout: Duration,

    /// Write Prometheus metrics (not-after, last success, last failure per certificate) to this
    /// file for node_exporter's textfile collector.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

/// `nodecert sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Directory of spec files (`*.json`): csr, config, profile, label, tls_remote_ca, hostname,
    /// cert, key, csr_out, renew_before, exec, owner, mode, key_mode, reuse_key,
    /// mutual_tls_client_cert, mutual_tls_client_key.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Default for specs without renew_before: keep pairs valid for longer than this (with
    /// neither, a spec's pair is issued anew, and its exec run, on every sync).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub renew_before: Option<Duration>,

    /// Issue for every spec, even when its pair could stay.
    #[arg(long)]
    pub force: bool,

    /// `json`: one array on stdout, one object per spec; default: one line per spec.
    #[arg(long, value_name = "FORMAT", value_enum)]
    pub report: Option<ReportFormat>,

    /// Per-request bound (e.g. 30s).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Retries for retryable failures, per spec.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,

    /// Random wait before contacting the CA, for each spec that is due: a point within one
    /// window of this length from the start of the run, however many specs wait.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub jitter: Option<Duration>,

    /// How long a spec waits for another run on its pair (0: not at all).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_wait)]
    pub lock_timeout: Duration,

    /// Stop a spec's exec command (its whole process group: SIGTERM, SIGKILL 5 s later) if it
    /// runs longer than this.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub exec_timeout: Duration,

    /// Specs run at once (default: the number of CPUs).
    #[arg(long, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub parallel: Option<usize>,

    /// Allow http:// remotes (warns).
    #[arg(long)]
    pub allow_plaintext: bool,

    /// Write Prometheus metrics for every spec's certificate to this file.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

/// `--report` formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Json,
    Text,
}

/// A `-bare` NAME: the prefix of the files' names (any bytes, as a path; clap refuses an empty
/// one). One ending in `/`, or whose last part is `.` or `..` (a directory), would write the
/// hidden `DIR/.pem`, `DIR/-key.pem` or `DIR/..pem`, as cfssljson does: almost surely a slip.
fn bare_name() -> impl clap::builder::TypedValueParser<Value = PathBuf> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PathBufValueParser::new().try_map(|name: PathBuf| {
        use std::os::unix::ffi::OsStrExt as _;
        let text = name.display();
        let bytes = name.as_os_str().as_bytes();
        if bytes.ends_with(b"/") {
            return Err(format!(
                "ends in '/', so the files would be {text}.pem and {text}-key.pem: give a name, \
                 as in -bare {text}node"
            ));
        }
        // `.` and `..` name directories too: `out/.` would write the hidden `out/..pem`.
        let last = bytes.rsplit(|&b| b == b'/').next().unwrap_or_default();
        if last == b"." || last == b".." {
            return Err(format!(
                "names a directory, so the files would be {text}.pem and {text}-key.pem: give a \
                 name, as in -bare {text}/node"
            ));
        }
        Ok(name)
    })
}

/// Parses `30s`, `2m`, `720h`, `30d` (Go-style and humantime units); zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match parse_wait(text)? {
        duration if duration.is_zero() => Err("must be more than zero".into()),
        duration => Ok(duration),
    }
}

/// A duration of up to [`MAX_DURATION`], zero included: a wait that may be none
/// (`--lock-timeout 0`, busy at once).
fn parse_wait(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e}: use a duration such as 30s, 2m or 720h"))?;
    // Every duration here is added to a clock reading somewhere; ten years is beyond any
    // sensible timeout, wait or threshold and far from overflow.
    if duration > MAX_DURATION {
        return Err("must be at most 87600h (ten years)".into());
    }
    Ok(duration)
}

/// The longest duration any flag takes.
const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);

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
