//! Unit attention conditions a device raises by itself — a tape loaded into a drive (28/00
//! NOT READY TO READY CHANGE), an import/export element an operator opened (28/01) — kept
//! as a numbered log that the dispatcher reads once per I_T nexus (SAM-3 5.9.7: a unit
//! attention is established for every nexus, and cleared for one by the command it is
//! reported to).
//!
//! A condition one I_T nexus caused — MODE PARAMETERS CHANGED (2A/01) after its MODE
//! SELECT — is for the other nexuses only (SPC-4 7.5.1): the dispatcher, which knows who
//! sent the command, [`AttentionLog::claim`]s it for that nexus, and [`AttentionLog::after_for`]
//! passes it over for it.
//!
//! The log keeps the last [`KEEP`] conditions; a nexus that has not looked for longer is
//! told the oldest one kept (one unit attention is enough for an initiator to re-read the
//! device's state), so memory stays bounded however many changes happen.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use crate::command::Nexus;
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
    recent: VecDeque<Entry>,
}

#[derive(Debug)]
struct Entry {
    number: u64,
    asc: Asc,
    /// The I_T nexus whose command caused it (it is not reported to that one).
    origin: Option<Nexus>,
}

impl AttentionLog {
    /// Raises `asc` for every nexus.
    pub fn raise(&self, asc: Asc) {
        let mut log = self.lock();
        log.last += 1;
        let n = log.last;
        log.recent.push_back(Entry {
            number: n,
            asc,
            origin: None,
        });
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
        let log = self.lock();
        let e = log.recent.iter().find(|e| e.number > seen)?;
        Some((e.number, e.asc))
    }

    /// [`AttentionLog::after`] for `nexus`: the conditions it caused itself are passed
    /// over.
    pub fn after_for(&self, seen: u64, nexus: &Nexus) -> Option<(u64, Asc)> {
        let log = self.lock();
        let e = log
            .recent
            .iter()
            .find(|e| e.number > seen && e.origin.as_ref() != Some(nexus))?;
        Some((e.number, e.asc))
    }

    /// Marks the conditions `asc` raised after condition `since` that no nexus has claimed
    /// yet as caused by `nexus` (its command, which began when `since` was the latest, raised
    /// them).
    pub fn claim(&self, since: u64, asc: Asc, nexus: &Nexus) {
        let mut log = self.lock();
        for e in log.recent.iter_mut() {
            if e.number > since && e.asc == asc && e.origin.is_none() {
                e.origin = Some(nexus.clone());
            }
        }
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

    #[test]
    fn a_claimed_condition_is_passed_over_for_its_origin_only() {
        let log = AttentionLog::default();
        let a = Nexus {
            initiator: "iqn.a".into(),
            session: 1,
        };
        let b = Nexus {
            initiator: "iqn.b".into(),
            session: 2,
        };
        log.raise(Asc::NOT_READY_TO_READY_CHANGE);
        let since = log.latest();
        log.raise(Asc::MODE_PARAMETERS_CHANGED);
        log.claim(since, Asc::MODE_PARAMETERS_CHANGED, &a);
        // Another nexus's claim takes neither a condition already claimed nor one of
        // another ASC.
        log.claim(0, Asc::MODE_PARAMETERS_CHANGED, &b);
        assert_eq!(
            log.after_for(0, &a),
            Some((1, Asc::NOT_READY_TO_READY_CHANGE))
        );
        assert_eq!(log.after_for(1, &a), None);
        assert_eq!(
            log.after_for(1, &b),
            Some((2, Asc::MODE_PARAMETERS_CHANGED))
        );
        assert_eq!(log.after(1), Some((2, Asc::MODE_PARAMETERS_CHANGED)));
    }
}
