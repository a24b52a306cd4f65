//! The process's aligned I/O memory. Its io_uring rings, each with its pool of registered
//! aligned buffers: made on first use, lent to one user at a time (a list's copy engine for
//! as long as the list runs, a tape image for a run of O_DIRECT appends) and taken back
//! quiet, with nothing in flight and no file registered, for the next. One owner of
//! io_uring for the whole process: the memory pinned for it is what is running plus
//! [`IDLE_KEPT`] idle rings, whoever the users are. And its bounce buffers, for an O_DIRECT
//! disk given a buffer O_DIRECT cannot take: lent for one read or write, at most
//! [`BOUNCES_KEPT`] kept. Before, each tape image kept a ring of its own for as long as it
//! was open, an idle engine kept the files of its last copy open, and every thread that
//! ever bounced kept a buffer of its own.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{AlignedBuf, ALIGN};
use crate::sys::uring::Ring;

/// Bytes in each ring buffer: the copy's chunk and the tape image's O_DIRECT piece.
pub const RING_BUFFER: usize = 1 << 20;

/// Buffers in a ring's pool by default: the most chunks a copy has in flight (reads and
/// writes together), so [`RING_BUFFER`] x this is the memory a running copy uses whatever
/// its size.
pub const BUFFERS: u16 = 32;

/// The pool sizes [`Rings::new`] and [`Rings::set_buffers`] accept.
pub const POOL_BUFFERS: std::ops::RangeInclusive<u16> = 4..=1024;

/// Idle rings kept for the next user. Each holds its pool registered with the kernel
/// (pinned), so a daemon that once ran many copies at once gives the rest back.
pub const IDLE_KEPT: usize = 4;

/// File slots in every ring: a copy's source and destination.
pub const FILES: u32 = 2;

/// Bounce buffers kept for the next read or write that needs one.
pub const BOUNCES_KEPT: usize = 8;

/// The rings and bounce buffers of a process (the daemon's, or a local copy's).
pub struct Rings {
    buffers: AtomicU16,
    idle: Mutex<Vec<Ring>>,
    bounces: Mutex<Vec<AlignedBuf>>,
}

impl Default for Rings {
    fn default() -> Self {
        Self {
            buffers: AtomicU16::new(BUFFERS),
            idle: Mutex::new(Vec::new()),
            bounces: Mutex::new(Vec::new()),
        }
    }
}

impl std::fmt::Debug for Rings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rings")
            .field("buffers", &self.buffers())
            .field("idle", &self.idle_count())
            .finish()
    }
}

impl Rings {
    /// Rings whose pools hold `buffers` x [`RING_BUFFER`] bytes (the daemon's `[daemon]
    /// copy_buffers`, the CLI's `--buffers`).
    pub fn new(buffers: u16) -> Result<Self, String> {
        let rings = Self::default();
        rings.set_buffers(buffers)?;
        Ok(rings)
    }

    /// Rings made from now on get `buffers`; idle ones of another size are dropped.
    pub fn set_buffers(&self, buffers: u16) -> Result<(), String> {
        if !POOL_BUFFERS.contains(&buffers) {
            return Err(format!(
                "copy buffers: {buffers} is outside {}..={}",
                POOL_BUFFERS.start(),
                POOL_BUFFERS.end()
            ));
        }
        self.buffers.store(buffers, Ordering::Relaxed);
        self.idle().retain(|r| r.buffers() == usize::from(buffers));
        Ok(())
    }

    pub fn buffers(&self) -> u16 {
        self.buffers.load(Ordering::Relaxed)
    }

    /// Rings kept idle now.
    pub fn idle_count(&self) -> usize {
        self.idle().len()
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Ring>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A ring, idle or made now; None where io_uring is refused (or the memory is not
    /// there). It has [`FILES`] empty file slots and every buffer free.
    pub fn take(&self) -> Option<Ring> {
        let idle = self.idle().pop();
        idle.or_else(|| Ring::new(self.buffers(), RING_BUFFER, FILES).ok())
    }

    /// Takes `ring` back: what it still has in flight is waited for and dropped, and its
    /// files let go (a registered file stays open, with any lock on it). Kept for the next
    /// user when it is of the current size and fewer than [`IDLE_KEPT`] are idle; freed
    /// otherwise, and when waiting or letting go fails (it is then of no use to anyone).
    pub fn give(&self, mut ring: Ring) {
        let mut done = Vec::new();
        while ring.in_flight() > 0 {
            if ring.wait(&mut done).is_err() {
                return;
            }
            done.clear();
        }
        if ring.clear_files().is_err() || ring.buffers() != usize::from(self.buffers()) {
            return;
        }
        let mut idle = self.idle();
        if idle.len() < IDLE_KEPT {
            idle.push(ring);
        }
    }

    /// Runs `f` with an aligned bounce buffer of `len` bytes rounded up to [`ALIGN`] (its
    /// contents unspecified), lent for the call: a kept one, grown if need be, or a new one.
    pub fn with_bounce<T>(&self, len: usize, f: impl FnOnce(&mut [u8]) -> T) -> T {
        let mut buf = self.bounces().pop().unwrap_or_default();
        let out = f(buf.slice(len.next_multiple_of(ALIGN)));
        let mut kept = self.bounces();
        if kept.len() < BOUNCES_KEPT {
            kept.push(buf);
        }
        out
    }

    /// Bounce buffers kept now.
    pub fn bounces_kept(&self) -> usize {
        self.bounces().len()
    }

    fn bounces(&self) -> MutexGuard<'_, Vec<AlignedBuf>> {
        self.bounces.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::sync::Arc;

    #[test]
    fn rings_come_back_quiet_and_at_most_idle_kept_stay() {
        let rings = Rings::new(4).unwrap();
        let mut taken: Vec<Ring> = (0..IDLE_KEPT + 2)
            .map(|_| rings.take().expect("io_uring"))
            .collect();
        assert!(taken.iter().all(|r| r.buffers() == 4));
        assert!(taken.iter().all(|r| r.buffer_size() == RING_BUFFER));
        // One comes back with a file registered and a read in flight.
        let file = Arc::new(File::open("/proc/self/exe").unwrap());
        let busy = taken.first_mut().unwrap();
        busy.set_file(FILES - 1, &file).unwrap();
        let buf = busy.buffer().unwrap();
        busy.read(FILES - 1, 0, buf, 0..4096, 9).unwrap();
        assert_eq!(Arc::strong_count(&file), 2);
        for r in taken {
            rings.give(r);
        }
        assert_eq!(rings.idle_count(), IDLE_KEPT, "the rest are freed");
        assert_eq!(Arc::strong_count(&file), 1, "no idle ring holds a file");
        let r = rings.take().unwrap();
        assert_eq!((r.in_flight(), rings.idle_count()), (0, IDLE_KEPT - 1));
        let all: Vec<_> = (0..4)
            .map(|_| r.buffer().expect("every buffer free"))
            .collect();
        drop(all);
        rings.give(r);
        assert!(rings.set_buffers(3).is_err());
        assert!(rings.set_buffers(1025).is_err());
        assert_eq!(rings.buffers(), 4);
        assert_eq!(format!("{rings:?}"), "Rings { buffers: 4, idle: 4 }");
        rings.set_buffers(8).unwrap();
        assert_eq!(rings.idle_count(), 0, "idle rings of the old size go");
        let old = Ring::new(4, RING_BUFFER, FILES).unwrap();
        rings.give(old);
        assert_eq!(rings.idle_count(), 0, "nor is one of the old size kept");
        assert_eq!(rings.take().unwrap().buffers(), 8);
    }

    #[test]
    fn bounce_buffers_are_aligned_lent_one_to_a_caller_and_at_most_bounces_kept_stay() {
        let rings = Rings::default();
        let len = rings.with_bounce(5000, |b| {
            assert!(b.as_ptr().align_offset(ALIGN) == 0);
            b.fill(7);
            b.len()
        });
        assert_eq!((len, rings.bounces_kept()), (8192, 1));
        // Callers at once get buffers of their own; all come back, up to BOUNCES_KEPT.
        fn nest(rings: &Rings, depth: usize, seen: &mut Vec<usize>) {
            if depth == 0 {
                return;
            }
            rings.with_bounce(ALIGN, |b| {
                seen.push(b.as_ptr() as usize);
                nest(rings, depth - 1, seen);
            });
        }
        let mut seen = Vec::new();
        nest(&rings, BOUNCES_KEPT + 2, &mut seen);
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), BOUNCES_KEPT + 2, "no buffer lent twice at once");
        assert_eq!(rings.bounces_kept(), BOUNCES_KEPT);
        // A kept one grows for a longer request.
        assert_eq!(rings.with_bounce(3 << 20, |b| b.len()), 3 << 20);
    }
}
