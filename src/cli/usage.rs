//! Command-line usage errors as one line.
//!
//! clap renders a usage error over several lines (the error, tips, the usage synopsis, a
//! pointer to `--help`). Every other nodecert error is one `nodecert: error: …` line that a
//! script or a log collector can take whole, so usage errors are folded into the same shape,
//! keeping what the operator needs: what was wrong, clap's tip, and which `--help` to read.

use std::ffi::OsString;

use clap::{CommandFactory, ValueEnum};

use super::{Cli, LogFormat};

/// The one-line message for a clap error on `args` (without the `nodecert: error:` prefix).
pub fn one_line(err: &clap::Error, args: &[OsString]) -> String {
    if let Some(message) = cfssl_only_flag(err, args) {
        return message;
    }
    // A bare `nodecert`: clap would print the whole help, on stderr, for an exit code 2.
    if err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let commands: Vec<String> = (Cli::command().get_subcommands())
            .map(|c| c.get_name().to_owned())
            .filter(|name| name != "help")
            .collect();
        return format!(
            "a command is required ({}); see 'nodecert --help'",
            commands.join(", ")
        );
    }
    let rendered = err.render().to_string();
    let mut paragraphs = rendered.split("\n\n").map(|p| {
        p.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    });
    let first = paragraphs.next().unwrap_or_default();
    let mut message = first.strip_prefix("error: ").unwrap_or(&first).to_owned();
    for tip in paragraphs.filter_map(|p| p.strip_prefix("tip: ").map(str::to_owned)) {
        message.push_str(&format!(" ({tip})"));
    }
    format!("{message}; see '{} --help'", command_line_name(args))
}

/// cfssl gencert's flags for work a CA does itself, which nodecert (a client of a remote CA)
/// does not do; clap's own message would suggest passing them as values.
const LOCAL_CA_FLAGS: [&str; 5] = ["ca", "ca-key", "initca", "renewca", "db-config"];

/// cfssl certinfo's sources other than a certificate file, which nodecert certinfo does not
/// read; clap would suggest `--cert` for `-csr`, or passing the flag as a value.
const CERTINFO_SOURCES: [&str; 4] = ["csr", "domain", "serial", "aki"];

/// The message for a cfssl flag nodecert does not have ([`LOCAL_CA_FLAGS`], and
/// [`CERTINFO_SOURCES`] on certinfo) given as an unknown argument.
fn cfssl_only_flag(err: &clap::Error, args: &[OsString]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    if err.kind() != clap::error::ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) else {
        return None;
    };
    let name = arg.trim_start_matches('-');
    let name = name.split_once('=').map_or(name, |(name, _)| name);
    if LOCAL_CA_FLAGS.contains(&name) {
        return Some(format!(
            "-{name} is cfssl's local CA work (-ca, -ca-key, -initca, -renewca, -db-config), which \
             nodecert, a client of a remote CA, does not do: use cfssl itself to run a CA"
        ));
    }
    (CERTINFO_SOURCES.contains(&name) && command_line_name(args) == "nodecert certinfo").then(
        || {
            format!(
                "-{name} is one of cfssl certinfo's other sources (-csr, -domain, -serial, -aki: a \
             CSR, a live server, the CA's database), which nodecert certinfo does not read: give \
             it a certificate file, or - for stdin"
            )
        },
    )
}

/// "nodecert SUBCOMMAND" for the subcommand the arguments name, else "nodecert".
fn command_line_name(args: &[OsString]) -> String {
    let subcommands: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    args.iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .find(|a| subcommands.iter().any(|s| s == a))
        .map_or_else(|| "nodecert".to_owned(), |s| format!("nodecert {s}"))
}

/// The `--log-format` the command line asked for, read without clap (which just failed), so a
/// usage error comes out in the format the caller's log pipeline expects.
pub fn log_format(args: &[OsString]) -> LogFormat {
    let mut format = LogFormat::Text;
    let mut args = args.iter().filter_map(|a| a.to_str());
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        let value = match arg.strip_prefix("--log-format") {
            Some("") => args.next(),
            Some(rest) => rest.strip_prefix('='),
            None => None,
        };
        if let Some(parsed) = value.and_then(|v| LogFormat::from_str(v, false).ok()) {
            format = parsed;
        }
    }
    format
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::argv;

    fn args(line: &[&str]) -> Vec<OsString> {
        argv::normalize(
            &Cli::command(),
            std::iter::once("nodecert")
                .chain(line.iter().copied())
                .map(OsString::from),
        )
    }

    fn error_for(line: &[&str]) -> String {
        let args = args(line);
        one_line(
            &Cli::try_parse_from(&args).expect_err("a usage error"),
            &args,
        )
    }

    #[test]
    fn unknown_flag_is_one_line_naming_flag_and_help() {
        let message = error_for(&["gencert", "-nosuchflag", "x", "csr.json"]);
        assert!(!message.contains('\n'), "{message}");
        assert!(message.contains("'--nosuchflag'"), "{message}");
        assert!(
            message.ends_with("see 'nodecert gencert --help'"),
            "{message}"
        );
    }

    #[test]
    fn missing_argument_and_bad_value_are_one_line() {
        let missing = error_for(&["gencert"]);
        assert!(missing.contains("<CSRJSON>"), "{missing}");
        assert!(!missing.contains('\n'), "{missing}");
        let bad = error_for(&["gencert", "--timeout", "soon", "csr.json"]);
        assert!(bad.contains("--timeout"), "{bad}");
        assert!(bad.contains("soon"), "{bad}");
        assert!(!bad.contains('\n'), "{bad}");
    }

    #[test]
    fn local_ca_flags_say_what_nodecert_does_instead() {
        for line in [
            &["gencert", "-initca", "ca-csr.json"][..],
            &["gencert", "-ca", "ca.pem", "-ca-key=ca-key.pem", "csr.json"],
        ] {
            let message = error_for(line);
            assert!(
                message.contains("is cfssl's local CA work") && message.contains("remote CA"),
                "{message}"
            );
            assert!(
                !message.contains("use '--"),
                "no tip to pass it as a value: {message}"
            );
        }
        assert!(error_for(&["gencert", "-initca", "x"]).starts_with("-initca "));
        for flag in ["-csr", "-domain=example.com"] {
            let message = error_for(&["certinfo", flag, "x"]);
            assert!(
                message.contains("one of cfssl certinfo's other sources")
                    && message.ends_with("give it a certificate file, or - for stdin"),
                "{message}"
            );
        }
        // Elsewhere -csr is sign's own flag, or clap's message stands.
        assert!(!error_for(&["gencert", "-csr", "x", "y"]).contains("certinfo"));
    }

    #[test]
    fn no_command_is_one_line_listing_the_commands() {
        let args = args(&[]);
        let err = Cli::try_parse_from(&args).expect_err("a usage error");
        let message = one_line(&err, &args);
        assert_eq!(
            message,
            "a command is required (gencert, sign, info, certinfo, sync, genkey); see 'nodecert --help'"
        );
    }

    #[test]
    fn unknown_subcommand_points_at_top_level_help() {
        let message = error_for(&["gencrt"]);
        assert!(message.contains("'gencrt'"), "{message}");
        assert!(message.ends_with("see 'nodecert --help'"), "{message}");
    }

    #[test]
    fn log_format_is_read_in_every_spelling() {
        for line in [
            &["gencert", "--log-format", "json", "-x"][..],
            &["gencert", "-log-format=json"],
            &["--log-format=json", "gencert"],
        ] {
            assert_eq!(log_format(&args(line)), LogFormat::Json, "{line:?}");
        }
        assert_eq!(log_format(&args(&["gencert", "x"])), LogFormat::Text);
        assert_eq!(
            log_format(&args(&["gencert", "--", "--log-format=json"])),
            LogFormat::Text
        );
    }
}
