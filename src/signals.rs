//! SIGTERM, SIGINT and SIGHUP (systemd stopping a unit, Ctrl-C, `timeout`, a config-management
//! run that gives up): the run ends as the signal would end it, but first removes its temporary
//! files, one of which may already hold the new private key ([`crate::output::Reserved::stage`]).
//!
//! No handler runs in signal context: the three signals (those not ignored when nodecert
//! started, as `nohup` ignores SIGHUP) are blocked in every thread (threads inherit the mask of
//! the thread that starts them, so `main` calls [`install`] before any other thread starts),
//! and one thread waits for them with `sigwait`. After the clean-up it unblocks
//! the signal in that thread and raises it again, so the parent sees the process killed by that
//! signal, as before. A child inherits the mask of the thread that starts it, and the standard
//! library does not reset it, so `--exec` hooks are started with `posix_spawn` and an empty
//! mask of their own ([`crate::hook`]): no thread ever unblocks the signals. The thread
//! costs about 0.1 ms of CPU per run (BENCHMARKS.md), so only commands that write files start it.

use nix::sys::signal::{SigSet, Signal, raise};

/// The signals handled: SIGTERM, SIGINT and SIGHUP, except those nodecert was started with
/// ignored (`nohup` ignores SIGHUP; a shell ignores SIGINT in a background job). A blocked
/// signal is still delivered to `sigwait` even when its action is to ignore it, so one that is
/// ignored must not be blocked, or `nohup nodecert …` would end at the first SIGHUP.
fn handled() -> SigSet {
    let ignored = ignored_at_start();
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        if ignored & (1 << (signal as i32 - 1)) == 0 {
            signals.add(signal);
        }
    }
    signals
}

/// The signals this process ignores, as a bit mask (bit n-1 for signal n), from the kernel's
/// own account (`SigIgn` in /proc/self/status): querying a signal's action with `sigaction`
/// would take unsafe code. Without /proc, none counts as ignored (and `nohup nodecert` ends on
/// SIGHUP, after its clean-up).
fn ignored_at_start() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    (status.lines())
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .unwrap_or(0)
}

/// Blocks the signals in the calling thread (and so in every thread it starts afterwards) and
/// starts the thread that handles them. Without it, the signals keep their default action.
pub(crate) fn install() {
    let signals = handled();
    if signals == SigSet::empty() || signals.thread_block().is_err() {
        return;
    }
    let handler = std::thread::Builder::new()
        .name("signals".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let Ok(signal) = signals.wait() else {
                return;
            };
            let _no_more_renames = crate::output::remove_pending();
            // A hook runs in its own process group, which the terminal's Ctrl-C, `timeout` or
            // a kill of nodecert's group does not reach: it gets the signal from here, or it
            // would run on outside the pair's lock after nodecert is gone.
            crate::hook::signal_running(signal);
            let mut this = SigSet::empty();
            this.add(signal);
            let _ = this.thread_unblock();
            let _ = raise(signal);
            // Not reached: the signal's default action ends the process.
            std::process::exit(128 + signal as i32);
        });
    // Without the handler, a blocked signal would never be acted on.
    if handler.is_err() {
        let _ = signals.thread_unblock();
    }
}
