//! The cfssl-compatibility shim: `-flag v` and `-flag=v` become `--flag v` and `--flag=v`.
//!
//! Only names that are long flags of the command line are rewritten; `-` (stdin), `--` and
//! everything after it, and the value that follows a flag taking one are left as they are. A
//! value that starts with a dash is that flag's value, as Go's flag package takes it (`-cn -x`
//! sets the CN to `-x`): it is joined to its flag (`--cn=-x`) so that clap does not read it as a
//! flag of its own.

use std::collections::BTreeMap;
use std::ffi::OsString;

use clap::{Command, CommandFactory, FromArgMatches};

use super::Cli;

/// Parses the command line, cfssl's single-dash flags included. Returns the arguments as
/// rewritten (for the one-line usage error) and the parse result.
///
/// clap's command tree is built once and serves both the rewriting and the parsing: building it
/// is most of what parsing costs, and nodecert runs from cron on every node.
pub fn parse(
    args: impl IntoIterator<Item = OsString>,
) -> (Vec<OsString>, Result<Cli, clap::Error>) {
    let mut command = Cli::command();
    let args = normalize(&command, args);
    let parsed = command
        .try_get_matches_from_mut(&args)
        .and_then(|mut matches| {
            Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command))
        });
    (args, parsed)
}

/// Rewrites cfssl-style single-dash long flags in `args` (the program name first), for the long
/// flags `command` and its subcommands define.
pub fn normalize(command: &Command, args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let flags = long_flags(command);
    let mut out = Vec::new();
    let mut args = args.into_iter();
    out.extend(args.next());
    let mut value_next = false;
    let mut rest_positional = false;
    for arg in args {
        if value_next && arg.as_encoded_bytes().starts_with(b"-") {
            value_next = false;
            if let Some(mut flag) = out.pop() {
                flag.push("=");
                flag.push(&arg);
                out.push(flag);
            }
            continue;
        }
        if rest_positional || value_next {
            value_next = false;
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            rest_positional = true;
            out.push(arg);
            continue;
        }
        let long = if let Some(body) = text.strip_prefix("--") {
            Some(body)
        } else if text.len() > 2 && text.starts_with('-') {
            Some(&text[1..])
        } else {
            None
        };
        match long.and_then(|body| {
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            // An unknown `-word` is passed on as `--word`, so clap names it whole instead of
            // complaining about its first letter as a short flag.
            let looks_long = name.len() > 1 && name.starts_with(|c: char| c.is_ascii_alphabetic());
            match flags.get(name) {
                Some(takes_value) => Some((name, value, *takes_value)),
                None if looks_long => Some((name, value, false)),
                None => None,
            }
        }) {
            Some((name, value, takes_value)) => {
                value_next = takes_value && value.is_none();
                out.push(match value {
                    Some(v) => format!("--{name}={v}").into(),
                    None => format!("--{name}").into(),
                });
            }
            None => out.push(arg),
        }
    }
    out
}

/// Every long flag of every subcommand, and whether it takes a value.
fn long_flags(root: &Command) -> BTreeMap<&str, bool> {
    let mut flags = BTreeMap::new();
    let mut stack = vec![root];
    while let Some(command) = stack.pop() {
        for arg in command.get_arguments() {
            if let Some(long) = arg.get_long() {
                flags.insert(long, arg.get_action().takes_values());
            }
        }
        stack.extend(command.get_subcommands());
    }
    flags.insert("help", false);
    flags.insert("version", false);
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        let mut full = vec!["nodecert"];
        full.extend_from_slice(args);
        normalize(&Cli::command(), full.iter().map(OsString::from))
            .into_iter()
            .skip(1)
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn all_four_spellings_are_equivalent() {
        for flag in [
            "config",
            "profile",
            "label",
            "hostname",
            "remote",
            "cn",
            "tls-remote-ca",
            "mutual-tls-client-cert",
            "mutual-tls-client-key",
            "loglevel",
            "bare",
        ] {
            assert_eq!(
                norm(&[&format!("-{flag}"), "v"]),
                [format!("--{flag}"), "v".into()]
            );
            assert_eq!(norm(&[&format!("-{flag}=v")]), [format!("--{flag}=v")]);
            assert_eq!(
                norm(&[&format!("--{flag}"), "v"]),
                [format!("--{flag}"), "v".into()]
            );
            assert_eq!(norm(&[&format!("--{flag}=v")]), [format!("--{flag}=v")]);
        }
    }

    #[test]
    fn values_stdin_and_double_dash_are_untouched() {
        assert_eq!(
            norm(&["gencert", "-cn", "-label", "-"]),
            ["gencert", "--cn=-label", "-"]
        );
        assert_eq!(
            norm(&["gencert", "--hostname", "-x", "-config", "-"]),
            ["gencert", "--hostname=-x", "--config=-"]
        );
        assert_eq!(
            norm(&["gencert", "--", "-config"]),
            ["gencert", "--", "-config"]
        );
        assert_eq!(
            norm(&["-h", "-x", "-allow-plaintext", "x"]),
            ["-h", "-x", "--allow-plaintext", "x"]
        );
        assert_eq!(
            norm(&["gencert", "-ca-key", "k.pem"]),
            ["gencert", "--ca-key", "k.pem"]
        );
        assert_eq!(norm(&["gencert", "-1x"]), ["gencert", "-1x"]);
    }

    #[test]
    fn parsed_cfssl_command_line() {
        let args = norm(&[
            "gencert",
            "-config=rp.json",
            "-tls-remote-ca",
            "ca.pem",
            "-profile",
            "kubelet",
            "-hostname=a,b",
            "-loglevel",
            "0",
            "csr.json",
        ]);
        let cli = <Cli as clap::Parser>::try_parse_from(
            std::iter::once("nodecert".to_string()).chain(args),
        )
        .unwrap();
        let super::super::Command::Gencert(g) = cli.command else {
            panic!("not gencert")
        };
        assert_eq!(g.ca.config.unwrap().to_str(), Some("rp.json"));
        assert_eq!(g.ca.profile, "kubelet");
        assert_eq!(g.request.hostname.as_deref(), Some("a,b"));
        assert_eq!(cli.loglevel, 0);
    }
}
