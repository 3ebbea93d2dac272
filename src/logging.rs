//! stderr logging with cfssl's `-loglevel` scale (0 debug … 5 fatal).
//!
//! Only nodecert's own records are printed: dependencies (rustls, reqwest, hyper) log at debug
//! level about connections, and nothing they say is needed to act on a failure. Secrets never
//! reach a log call: the auth key is a type without `Display`, and private keys are only
//! formatted by the output module.

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Installs the logger for a cfssl log level (0..=5). Safe to call more than once.
pub fn init(cfssl_level: u8) {
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
        let _ = writeln!(
            std::io::stderr().lock(),
            "nodecert: {level}: {}",
            record.args()
        );
    }

    fn flush(&self) {}
}
