//! The process's copy engines and a list's lease of one: a ring with its registered
//! buffer pool, borrowed from the process's rings ([`crate::buf::Rings`]) when the list's
//! first segment needs it and given back when the list ends.

use std::sync::Arc;

use super::{Engine, NextRead};
use crate::buf::Rings;
pub use crate::buf::{BUFFERS, POOL_BUFFERS};

/// The copy engines of a process (the daemon's, or a local copy's): each running list
/// borrows one ring with its pool of [`Engines::buffers`] x [`super::CHUNK`] bytes from the
/// process's [`Rings`] for as long as it runs and gives it back. Before, each thread kept
/// its own, so every new iSCSI connection's worker allocated, zeroed and registered a fresh
/// pool for its first copy (a tenth of four concurrent in-memory backups' CPU, measured).
#[derive(Debug, Default)]
pub struct Engines {
    rings: Arc<Rings>,
}

impl Engines {
    /// Engines whose pools hold `buffers` x [`super::CHUNK`] bytes (the daemon's `[daemon]
    /// copy_buffers`, the CLI's `--buffers`), from rings of their own.
    pub fn new(buffers: u16) -> Result<Self, String> {
        Ok(Self::with_rings(Arc::new(Rings::new(buffers)?)))
    }

    /// Engines over the process's `rings`, which its tape images share.
    pub fn with_rings(rings: Arc<Rings>) -> Self {
        Self { rings }
    }

    /// The rings the engines borrow from.
    pub fn rings(&self) -> &Arc<Rings> {
        &self.rings
    }

    /// Engines made from now on get `buffers`; idle ones of another size are dropped.
    pub fn set_buffers(&self, buffers: u16) -> Result<(), String> {
        self.rings.set_buffers(buffers)
    }

    pub fn buffers(&self) -> u16 {
        self.rings.buffers()
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
            self.engine = self.engines.rings.take().map(|ring| Engine {
                ring,
                generation: 0,
                prefetch: None,
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
            // Reads done early for a segment that will not run are waited for there.
            self.engines.rings.give(engine.ring);
        }
    }
}
