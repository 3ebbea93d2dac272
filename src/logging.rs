//! stderr logging with cfssl's `-loglevel` scale (0 debug … 5 fatal).
//!
//! Only nodecert's own records are printed: dependencies (rustls, reqwest, hyper) log at debug
//! level about connections, and nothing they say is needed to act on a failure. Secrets never
//! reach a log call: the auth key is a type without `Display`, and private keys are only
//! formatted by the output module.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::cli::LogFormat;

/// Installs the logger for a cfssl log level (0..=5) and format. Safe to call more than once.
pub(crate) fn init(cfssl_level: u8, format: LogFormat) {
    JSON.store(format == LogFormat::Json, Ordering::Relaxed);
    let filter = match cfssl_level {
        0 => LevelFilter::Debug,
        1 => LevelFilter::Info,
        2 => LevelFilter::Warn,
        _ => LevelFilter::Error,
    };
    // A second call (tests run `run` repeatedly) keeps the first logger; the level still moves.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(filter);
}

/// Whether lines are JSON objects.
static JSON: AtomicBool = AtomicBool::new(false);

/// Prints the final error of a run in the chosen format.
///
/// The final error is printed at every `-loglevel`, 5 (fatal) included: a script that gets a
/// non-zero exit code must always be told why.
pub(crate) fn print_error(err: &crate::Error) {
    line("error", &err.to_string(), Some(err.exit_code()));
}

/// Prints a run's final error that is no [`crate::Error`] (sync's: some specs failed, each
/// said on its own line) with the exit code it ends with, in the chosen format.
pub(crate) fn print_failure(message: &str, exit_code: u8) {
    line("error", message, Some(exit_code));
}

/// Prints a command-line usage error (exit code 2) as one line in the chosen format: clap's own
/// rendering is several lines (usage, tips), which breaks the one-line contract scripts and log
/// collectors rely on.
pub(crate) fn print_usage_error(message: &str, format: LogFormat) {
    JSON.store(format == LogFormat::Json, Ordering::Relaxed);
    line("error", message, Some(crate::error::exit::USAGE));
}

/// Prints a run's one-line outcome (`issued …`, `kept …`) in the chosen format: `nodecert:
/// SUMMARY` as text, an info-level object as JSON, so that a log collector reading JSON gets
/// nothing else.
pub(crate) fn print_outcome(summary: &str) {
    if JSON.load(Ordering::Relaxed) {
        line("info", summary, None);
    } else {
        let summary = escape_controls(summary);
        let _ = writeln!(std::io::stderr().lock(), "nodecert: {summary}");
    }
}

/// `text` with its control characters escaped (`\n`, `\u{1b}`) and bidi overrides too, for a
/// line of text: a path, name or server message with a newline in it must not split a run's
/// one line in two, nor an escape reach the terminal, nor U+202E show a line reordered. (JSON
/// escapes control characters itself.)
pub(crate) fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    };
    if !text.chars().any(unsafe_char) {
        return text.into();
    }
    (text.chars())
        .map(|c| match c {
            c if unsafe_char(c) => c.escape_default().to_string(),
            c => c.to_string(),
        })
        .collect::<String>()
        .into()
}

fn line(level: &str, message: &str, exit_code: Option<u8>) {
    let text = if JSON.load(Ordering::Relaxed) {
        let mut object = serde_json::json!({"level": level, "message": message});
        if let Some(code) = exit_code {
            object["exit_code"] = code.into();
        }
        object.to_string()
    } else {
        format!("nodecert: {level}: {}", escape_controls(message))
    };
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

thread_local! {
    /// The sync spec this thread works on: its log records name it, since a sync run's lines
    /// interleave many specs' (which of thirty warned about its auth key file?).
    static SPEC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// How the setting that `flag` gives (`--key-mode`) is named in a message made now: the flag,
/// or, while a sync spec is handled, the spec's field (`key_mode`) when a spec holds that setting:
/// a warning that told a sync user to pass `--key-mode` sent them to a flag sync refuses.
/// `--renew-before` is both a field and a flag of sync's (the default for specs without it).
pub(crate) fn setting(flag: &str) -> String {
    /// The flags a spec holds as fields, the dashes made underscores.
    const SPEC_FIELDS: [&str; 7] = [
        "--owner",
        "--mode",
        "--key-mode",
        "--exec",
        "--reuse-key",
        "-profile",
        "-label",
    ];
    let in_spec = in_spec();
    match flag {
        "--renew-before" if in_spec => "renew_before (spec field, or sync --renew-before)".into(),
        _ if in_spec && SPEC_FIELDS.contains(&flag) => {
            format!(
                "spec field {}",
                flag.trim_start_matches('-').replace('-', "_")
            )
        }
        _ => flag.to_string(),
    }
}

/// Whether this thread is handling a sync spec ([`for_spec`]).
pub(crate) fn in_spec() -> bool {
    SPEC.with(|current| current.borrow().is_some())
}

/// Runs `work` with this thread's log records naming the sync spec `spec`.
pub(crate) fn for_spec<T>(spec: &str, work: impl FnOnce() -> T) -> T {
    SPEC.with(|current| *current.borrow_mut() = Some(spec.to_string()));
    let out = work();
    SPEC.with(|current| *current.borrow_mut() = None);
    out
}

struct StderrLogger;

static LOGGER: StderrLogger = StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("nodecert") && metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug | Level::Trace => "debug",
        };
        let message = record.args().to_string();
        match SPEC.with(|current| current.borrow().clone()) {
            Some(spec) => line(level, &format!("spec {spec}: {message}"), None),
            None => line(level, &message, None),
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::{escape_controls, for_spec, setting};

    #[test]
    fn settings_are_named_as_the_run_was_given_them() {
        assert_eq!(setting("--key-mode"), "--key-mode");
        let in_spec = for_spec("kubelet", || (setting("--key-mode"), setting("--jitter")));
        assert_eq!(
            in_spec,
            ("spec field key_mode".to_string(), "--jitter".to_string())
        );
        assert_eq!(setting("--renew-before"), "--renew-before");
    }

    #[test]
    fn controls_and_bidi_overrides_are_escaped() {
        assert_eq!(escape_controls("plain/path.pem"), "plain/path.pem");
        assert_eq!(
            escape_controls("a\nb\u{1b}[31m\u{202e}c"),
            r"a\nb\u{1b}[31m\u{202e}c"
        );
    }
}
