//! The process's copy engines and a list's lease of one: rings with their registered
//! buffer pools, made on first use, lent to one list at a time and kept for the next.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{Engine, NextRead, CHUNK};
use crate::sys::uring::Ring;

/// Buffers in an engine's pool by default: the most chunks in flight (reads and writes
/// together), so CHUNK x this is the memory a running copy uses whatever its size.
pub const BUFFERS: u16 = 32;

/// The pool sizes [`Engines::new`] and [`Engines::set_buffers`] accept.
pub const POOL_BUFFERS: std::ops::RangeInclusive<u16> = 4..=1024;

/// Idle engines kept for the next copies. Each holds its pool registered with the kernel
/// (pinned), so a daemon that once ran many copies at once gives the rest back.
pub(super) const IDLE_KEPT: usize = 4;

/// The copy engines of a process (the daemon's, or a local copy's): each running list
/// borrows one ring with its pool of [`Engines::buffers`] x [`CHUNK`] bytes for as long as
/// it runs and gives it back. Before, each thread kept its own, so every new iSCSI
/// connection's worker allocated, zeroed and registered a fresh pool for its first copy
/// (a tenth of four concurrent in-memory backups' CPU, measured).
pub struct Engines {
    buffers: AtomicU16,
    idle: Mutex<Vec<Engine>>,
}

impl Default for Engines {
    fn default() -> Self {
        Self {
            buffers: AtomicU16::new(BUFFERS),
            idle: Mutex::new(Vec::new()),
        }
    }
}

impl std::fmt::Debug for Engines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engines")
            .field("buffers", &self.buffers())
            .field("idle", &self.idle().len())
            .finish()
    }
}

impl Engines {
    /// Engines whose pools hold `buffers` x [`CHUNK`] bytes (the daemon's `[daemon]
    /// copy_buffers`, the CLI's `--buffers`).
    pub fn new(buffers: u16) -> Result<Self, String> {
        let engines = Self::default();
        engines.set_buffers(buffers)?;
        Ok(engines)
    }

    /// Engines made from now on get `buffers`; idle ones of another size are dropped.
    pub fn set_buffers(&self, buffers: u16) -> Result<(), String> {
        if !POOL_BUFFERS.contains(&buffers) {
            return Err(format!(
                "copy buffers: {buffers} is outside {}..={}",
                POOL_BUFFERS.start(),
                POOL_BUFFERS.end()
            ));
        }
        self.buffers.store(buffers, Ordering::Relaxed);
        self.idle()
            .retain(|e| e.ring.buffers() == usize::from(buffers));
        Ok(())
    }

    pub fn buffers(&self) -> u16 {
        self.buffers.load(Ordering::Relaxed)
    }

    pub(super) fn idle(&self) -> MutexGuard<'_, Vec<Engine>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What one list runs with: an engine taken when its first segment needs one.
    pub(in crate::copy) fn lease(&self) -> Lease<'_> {
        Lease {
            engines: self,
            engine: None,
            broken: false,
            next: None,
        }
    }
}

/// A list's use of the engines: at most one ring, taken at the first segment that reads
/// through it and given back (without any read done early) when the list ends.
pub(in crate::copy) struct Lease<'a> {
    engines: &'a Engines,
    pub(super) engine: Option<Engine>,
    /// The ring failed or none could be made: this list does without.
    broken: bool,
    /// Where the segment after the running one will read, when the runner knows it and may
    /// let it be read early.
    pub(super) next: Option<NextRead>,
}

impl Lease<'_> {
    /// The engine, taken from the idle ones or made; None where io_uring is refused.
    pub(super) fn engine(&mut self) -> Option<&mut Engine> {
        if self.engine.is_none() && !self.broken {
            let buffers = self.engines.buffers();
            let idle = self.engines.idle().pop();
            self.engine = idle.or_else(|| {
                Ring::new(buffers, CHUNK, 2).ok().map(|ring| Engine {
                    ring,
                    generation: 0,
                    prefetch: None,
                })
            });
            self.broken = self.engine.is_none();
        }
        self.engine.as_mut()
    }

    /// Tells the engine where the next segment will read (None: unknown, or it must not
    /// be read early because this segment may write it). Only a segment whose reads go
    /// through the ring, in order to a flow, uses the hint; it holds until replaced.
    pub(in crate::copy) fn expect_next(&mut self, next: Option<NextRead>) {
        self.next = next;
    }

    /// Drops any read done early (nothing read before a list's end may be used after it).
    pub(in crate::copy) fn forget_prefetch(&mut self) {
        self.next = None;
        if let Some(engine) = self.engine.as_mut() {
            engine.prefetch = None;
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.forget_prefetch();
        if let Some(engine) = self.engine.take() {
            let mut idle = self.engines.idle();
            if idle.len() < IDLE_KEPT
                && engine.ring.buffers() == usize::from(self.engines.buffers())
            {
                idle.push(engine);
            }
        }
    }
}
