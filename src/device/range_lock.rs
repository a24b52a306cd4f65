//! LBA range locks of a disk, so COMPARE AND WRITE (and ORWRITE, WRITE ATOMIC) are atomic
//! against every other writer of the logical unit: each ordinary write — a WRITE from any
//! session, WRITE SAME, UNMAP, the copy engine's writes to the image — holds its range
//! *shared* while it writes; a read-compare-write holds its range *exclusive*. Shared holders
//! never wait for each other, only for an exclusive holder of an overlapping range; an
//! exclusive one waits until no overlapping range is held.
//!
//! An exclusive holder never waits for anything while it holds (it reads and writes its own
//! range and lets go), and waiters are not given precedence: a writer already holding
//! ranges (the engine, with writes in flight) can therefore always get another one once the
//! exclusive holder is done, and no cycle can form.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// The held ranges of one disk.
#[derive(Debug, Default)]
pub struct RangeLock {
    held: Mutex<Held>,
    released: Condvar,
}

#[derive(Debug, Default)]
struct Held {
    next: u64,
    ranges: Vec<Entry>,
    waiting: usize,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    id: u64,
    start: u64,
    end: u64,
    exclusive: bool,
}

impl Entry {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start < end && start < self.end
    }
}

/// A held range; dropping it lets go.
#[must_use = "the range is released when the guard drops"]
#[derive(Debug)]
pub struct RangeGuard {
    lock: Arc<RangeLock>,
    id: u64,
}

impl RangeLock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Holds `blocks` blocks from `lba` for an ordinary write: waits while an overlapping
    /// range is held exclusive.
    pub fn shared(self: &Arc<Self>, lba: u64, blocks: u64) -> RangeGuard {
        self.acquire(lba, blocks, false)
    }

    /// Holds `blocks` blocks from `lba` alone: waits while any overlapping range is held.
    pub fn exclusive(self: &Arc<Self>, lba: u64, blocks: u64) -> RangeGuard {
        self.acquire(lba, blocks, true)
    }

    /// Ranges held now (tests).
    pub fn held(&self) -> usize {
        self.lock().ranges.len()
    }

    /// Threads waiting for a range now (tests).
    pub fn waiting(&self) -> usize {
        self.lock().waiting
    }

    fn acquire(self: &Arc<Self>, lba: u64, blocks: u64, exclusive: bool) -> RangeGuard {
        let (start, end) = (lba, lba.saturating_add(blocks.max(1)));
        let mut held = self.lock();
        while held
            .ranges
            .iter()
            .any(|e| (exclusive || e.exclusive) && e.overlaps(start, end))
        {
            held.waiting += 1;
            held = self
                .released
                .wait(held)
                .unwrap_or_else(PoisonError::into_inner);
            held.waiting -= 1;
        }
        held.next += 1;
        let id = held.next;
        held.ranges.push(Entry {
            id,
            start,
            end,
            exclusive,
        });
        RangeGuard {
            lock: Arc::clone(self),
            id,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for RangeGuard {
    fn drop(&mut self) {
        let mut held = self.lock.lock();
        if let Some(i) = held.ranges.iter().position(|e| e.id == self.id) {
            held.ranges.swap_remove(i);
        }
        if held.waiting > 0 {
            self.lock.released.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use super::*;

    /// Polls (with a deadline) until `n` threads wait on `lock`.
    fn until_waiting(lock: &RangeLock, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while lock.waiting() != n {
            assert!(Instant::now() < deadline, "never {n} waiting");
            std::thread::yield_now();
        }
    }

    #[test]
    fn shared_ranges_coexist_exclusive_ones_wait() {
        let lock = RangeLock::new();
        let a = lock.shared(0, 8);
        let b = lock.shared(4, 8);
        assert_eq!((lock.held(), lock.waiting()), (2, 0));
        // An exclusive hold of blocks 100-101 does not wait; one of block 6 waits for both.
        let far = lock.exclusive(100, 2);
        let (tx, rx) = mpsc::channel();
        let l = Arc::clone(&lock);
        let t = std::thread::spawn(move || {
            let _g = l.exclusive(6, 1);
            tx.send(()).unwrap();
        });
        until_waiting(&lock, 1);
        drop(a);
        // Woken, it finds b still there and waits again.
        until_waiting(&lock, 1);
        assert!(rx.try_recv().is_err());
        drop(b);
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        t.join().unwrap();
        drop(far);
        assert_eq!(lock.held(), 0);
    }

    #[test]
    fn a_shared_writer_waits_for_an_exclusive_holder() {
        let lock = RangeLock::new();
        let x = lock.exclusive(10, 1);
        let (tx, rx) = mpsc::channel();
        let l = Arc::clone(&lock);
        let t = std::thread::spawn(move || {
            let _g = l.shared(0, 64);
            tx.send(()).unwrap();
        });
        until_waiting(&lock, 1);
        assert!(rx.try_recv().is_err());
        let _beside = lock.shared(11, 5);
        drop(x);
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        t.join().unwrap();
    }

    #[test]
    fn zero_blocks_and_the_end_of_the_address_space() {
        let lock = RangeLock::new();
        let _a = lock.shared(u64::MAX, 5);
        let _b = lock.exclusive(0, 0);
        assert_eq!(lock.held(), 2);
    }
}
