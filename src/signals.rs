//! SIGTERM, SIGINT and SIGHUP (systemd stopping a unit, Ctrl-C, `timeout`, a config-management
//! run that gives up): the run ends as the signal would end it, but first removes its temporary
//! files, one of which may already hold the new private key ([`crate::output::Reserved::stage`]).
//!
//! No handler runs in signal context: the three signals are blocked in every thread (threads
//! inherit the mask of the thread that starts them, so `main` calls [`install`] before any other
//! thread starts), and one thread waits for them with `sigwait`. After the clean-up it unblocks
//! the signal in that thread and raises it again, so the parent sees the process killed by that
//! signal, as before. A child inherits the mask of the thread that starts it, and the standard
//! library does not reset it, so `--exec` hooks are started with `posix_spawn` and an empty
//! mask of their own ([`crate::hook`]): no thread ever unblocks the signals. The thread
//! costs about 0.1 ms of CPU per run (BENCHMARKS.md), so only commands that write files start it.

use nix::sys::signal::{SigSet, Signal, raise};

fn handled() -> SigSet {
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        signals.add(signal);
    }
    signals
}

/// Blocks the signals in the calling thread (and so in every thread it starts afterwards) and
/// starts the thread that handles them. Without it, the signals keep their default action.
pub fn install() {
    let signals = handled();
    if signals.thread_block().is_err() {
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
