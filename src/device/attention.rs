//! Unit attention conditions a device raises by itself — a tape loaded into a drive (28/00
//! NOT READY TO READY CHANGE), an import/export element an operator opened (28/01) — kept
//! as a numbered log that the dispatcher reads once per I_T nexus (SAM-3 5.9.7: a unit
//! attention is established for every nexus, and cleared for one by the command it is
//! reported to).
//!
//! The log keeps the last [`KEEP`] conditions; a nexus that has not looked for longer is
//! told the oldest one kept (one unit attention is enough for an initiator to re-read the
//! device's state), so memory stays bounded however many changes happen.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use crate::scsi::Asc;

/// How many conditions the log remembers.
pub const KEEP: usize = 16;

/// The numbered conditions a device raised: the first is 1.
#[derive(Debug, Default)]
pub struct AttentionLog {
    inner: Mutex<Log>,
}

#[derive(Debug, Default)]
struct Log {
    /// Number of the last condition raised (0: none yet).
    last: u64,
    recent: VecDeque<(u64, Asc)>,
}

impl AttentionLog {
    /// Raises `asc` for every nexus.
    pub fn raise(&self, asc: Asc) {
        let mut log = self.lock();
        log.last += 1;
        let n = log.last;
        log.recent.push_back((n, asc));
        while log.recent.len() > KEEP {
            log.recent.pop_front();
        }
    }

    /// The number of the last condition raised (what a nexus that has just been told
    /// everything has seen).
    pub fn latest(&self) -> u64 {
        self.lock().last
    }

    /// The oldest condition raised after condition `seen` that the log still has, with
    /// its number; None when nothing was raised since.
    pub fn after(&self, seen: u64) -> Option<(u64, Asc)> {
        self.lock().recent.iter().copied().find(|&(n, _)| n > seen)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_numbered_and_bounded() {
        let log = AttentionLog::default();
        assert_eq!((log.latest(), log.after(0)), (0, None));
        log.raise(Asc::NOT_READY_TO_READY_CHANGE);
        log.raise(Asc::IMPORT_OR_EXPORT_ELEMENT_ACCESSED);
        assert_eq!(log.after(0), Some((1, Asc::NOT_READY_TO_READY_CHANGE)));
        assert_eq!(
            log.after(1),
            Some((2, Asc::IMPORT_OR_EXPORT_ELEMENT_ACCESSED))
        );
        assert_eq!(log.after(2), None);
        for _ in 0..100 {
            log.raise(Asc::NOT_READY_TO_READY_CHANGE);
        }
        assert_eq!(log.latest(), 102);
        // A nexus far behind gets the oldest condition kept, then catches up.
        assert_eq!(log.after(0).map(|c| c.0), Some(102 - KEEP as u64 + 1));
    }
}
