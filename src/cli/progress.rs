//! What a running local copy tells the user while it runs: the progress bar on a terminal,
//! a line on SIGUSR1 (as ddpt does; the signal never kills), and off a terminal a line every
//! [`EVERY`] so a log shows the copy moving.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::copy_args::Common;

/// How often a copy off a terminal says how far it got.
pub const EVERY: Duration = Duration::from_secs(30);

/// Blocks SIGUSR1 in this thread and every thread started after it, so that it is taken
/// only by [`watch`] (and never kills): call first thing in main.
pub fn block_sigusr1() {
    let _ = SigSet::from(Signal::SIGUSR1).thread_block();
}

/// How often the watcher looks at the bytes moved and for SIGUSR1.
const TICK: Duration = Duration::from_millis(100);

/// The copy has ended: set once by the copying thread, waking [`watch`] at once (a copy's
/// end never waits for the watcher's next tick).
#[derive(Default)]
pub struct Done {
    done: Mutex<bool>,
    cv: Condvar,
}

impl Done {
    pub fn set(&self) {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cv.notify_all();
    }

    /// Waits at most `timeout` for the end; true once it came.
    fn wait(&self, timeout: Duration) -> bool {
        let done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        *self
            .cv
            .wait_timeout_while(done, timeout, |d| !*d)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }
}

/// Shows `bytes` (of `total`) moving until `done`: the bar on a terminal (unless
/// `--quiet`), a stderr line on SIGUSR1, and off a terminal one every [`EVERY`].
pub fn watch(common: &Common, total: u64, bytes: &AtomicU64, done: &Done) {
    let bar = super::report::progress_bar(common, total);
    let signals = SignalFd::with_flags(
        &SigSet::from(Signal::SIGUSR1),
        SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
    )
    .ok();
    let started = Instant::now();
    let periodic = !common.quiet && !std::io::stderr().is_terminal();
    let mut said = Instant::now();
    loop {
        let now = bytes.load(Ordering::Relaxed);
        if let Some(bar) = &bar {
            bar.set_position(now);
        }
        let asked = signals
            .as_ref()
            .is_some_and(|s| matches!(s.read_signal(), Ok(Some(_))));
        if asked || (periodic && said.elapsed() >= EVERY) {
            let line = line(now, total, started.elapsed());
            match &bar {
                Some(bar) => bar.println(line),
                None => eprintln!("{line}"),
            }
            said = Instant::now();
        }
        if done.wait(TICK) {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    // A SIGUSR1 that came as the copy ended is answered too.
    if signals.is_some_and(|s| matches!(s.read_signal(), Ok(Some(_)))) {
        eprintln!(
            "{}",
            line(bytes.load(Ordering::Relaxed), total, started.elapsed())
        );
    }
}

/// "xcopy: 123456789 of 1073741824 bytes (11%) in 2.1 s, 58.8 MB/s"
pub fn line(bytes: u64, total: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        bytes as f64 / secs / 1e6
    } else {
        0.0
    };
    let share = match (bytes * 100).checked_div(total) {
        Some(percent) => format!(" of {total} bytes ({percent}%)"),
        None => " bytes".to_string(),
    };
    format!("xcopy: {bytes}{share} in {secs:.1} s, {rate:.1} MB/s")
}

#[cfg(test)]
mod tests {
    #[test]
    fn progress_lines() {
        let l = super::line(250, 1000, std::time::Duration::from_secs(2));
        assert_eq!(l, "xcopy: 250 of 1000 bytes (25%) in 2.0 s, 0.0 MB/s");
        let l = super::line(4_000_000, 0, std::time::Duration::from_secs(2));
        assert_eq!(l, "xcopy: 4000000 bytes in 2.0 s, 2.0 MB/s");
    }
}
