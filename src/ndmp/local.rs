//! The local image backup: DATA and MOVER of one session, connected by ADDR_LOCAL, in mode
//! READ, on an inventory disk and an inventory tape. The blocks go through the copy engine as
//! an EXTENDED COPY list (the list `xcopy backup` runs: disk to tape, records of the
//! mover's record size), so no socket and no extra copy stand between the disk and the
//! tape. The list runs a window at a time; at end of medium the copy stops (COPY ABORTED
//! with the tape's sense forwarded) with the records before it on the tape, the mover pauses
//! (NOTIFY_MOVER_PAUSED, EOM), and after MOVER_CONTINUE the next list starts at the next
//! disk block on whatever cartridge the DMA loaded. The digest of DATA_GET_ENV is computed from
//! the records as they land on the tape (the copy's [`Tap`]), on a thread beside the copy,
//! so the disk is read once; the environment's `DIGEST` chooses it ([`super::digest`]).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use super::digest::{self, Hasher, Kind};

use super::conn::Conn;
use super::data::{self, Data, Disk};
use super::mover::{self, Mover};
use super::services::Services;
use super::tape::TapeDrive;
use crate::command::Abort;
use crate::copy::{Progress, Tap};
use crate::scsi::{Sense, SenseKey};

/// Whether the local engine path can run this backup: records of whole disk blocks.
pub fn applicable(disk: &Disk, record_size: u32) -> bool {
    record_size.is_multiple_of(disk.backend.block_size)
}

/// Whether a copy that stopped with `sense` stopped at end of medium.
fn end_of_medium(sense: &Sense) -> bool {
    sense
        .forwarded
        .iter()
        .any(|f| Sense::decode(&f.sense).is_ok_and(|s| s.eom || s.key == SenseKey::VOLUME_OVERFLOW))
}

/// Everything the worker needs.
pub struct Job {
    pub services: Arc<Services>,
    pub conn: Arc<Conn>,
    pub mover: Arc<Mover>,
    pub data: Arc<Data>,
    pub tape: Arc<Mutex<Option<TapeDrive>>>,
    pub disk: Disk,
    pub nexus: crate::command::Nexus,
    /// The digest computed beside the copy (None: `DIGEST=none`).
    pub digest: Option<Kind>,
}

impl Job {
    /// Runs the backup on its own thread; DATA and MOVER halt (and notify) when it ends.
    pub fn start(self) -> bool {
        tracing::info!(disk = %self.disk.name, "ndmp: local image backup through the copy engine");
        std::thread::Builder::new()
            .name("ndmp-image".into())
            .spawn(move || {
                // Some(None): a digest was asked for but MD5's thread could not be made.
                let digester = self
                    .digest
                    .map(|kind| Digester::start(kind, self.disk.bytes()));
                let tap = digester
                    .as_ref()
                    .and_then(|d| d.as_ref().map(Digester::tap));
                let copied = self.copy(tap);
                let digest = digester.map(|d| d.and_then(Digester::finish));
                let (data_reason, mover_reason) = match (copied, digest) {
                    (Ok(_), Some(None)) => (data::HALT_INTERNAL_ERROR, mover::HALT_CONNECT_CLOSED),
                    (Ok(bytes), digest) => {
                        self.data.finish_env(bytes, digest.flatten());
                        (data::HALT_SUCCESSFUL, mover::HALT_CONNECT_CLOSED)
                    }
                    (Err(reasons), _) => reasons,
                };
                self.data.halt(&self.conn, data_reason);
                self.mover.halt(&self.conn, mover_reason);
            })
            .is_ok()
    }

    /// Copies the disk to tape a list at a time, each list's records shown to `tap`.
    /// Ok(bytes) or the (data, mover) halt reasons.
    fn copy(&self, tap: Option<Tap>) -> Result<u64, (u32, u32)> {
        let block = u64::from(self.disk.backend.block_size);
        let total = self.disk.bytes();
        loop {
            let (moved, end, record_size) = {
                let m = self.mover.lock();
                (
                    m.bytes_moved,
                    m.window_offset.saturating_add(m.window_length),
                    m.record_size,
                )
            };
            if moved >= total {
                return Ok(total);
            }
            if moved >= end {
                if !self.mover.pause_now(&self.conn, mover::PAUSE_EOW, moved) {
                    return Err((data::HALT_ABORTED, mover::HALT_ABORTED));
                }
                continue;
            }
            let until = total.min(end) / block * block;
            let (written, sense) = self.run_list(
                moved / block,
                (until - moved) / block,
                record_size,
                tap.as_ref(),
            )?;
            {
                let mut m = self.mover.lock();
                m.bytes_moved += written;
                m.record_num += written.div_ceil(u64::from(record_size)) as u32;
            }
            self.data.lock().bytes_processed = moved + written;
            match sense {
                None => {}
                Some(s) if end_of_medium(&s) => {
                    let at = moved + written;
                    if !self.mover.pause_now(&self.conn, mover::PAUSE_EOM, at) {
                        return Err((data::HALT_ABORTED, mover::HALT_ABORTED));
                    }
                }
                Some(s) => {
                    tracing::warn!(sense = %s, "ndmp: image backup: the copy failed");
                    return Err((data::HALT_INTERNAL_ERROR, mover::HALT_MEDIA_ERROR));
                }
            }
        }
    }

    /// One EXTENDED COPY list: (bytes on tape, the sense if it stopped early).
    fn run_list(
        &self,
        lba: u64,
        blocks: u64,
        record_size: u32,
        tap: Option<&Tap>,
    ) -> Result<(u64, Option<Sense>), (u32, u32)> {
        let tape_name = {
            let slot = self.tape.lock().unwrap_or_else(PoisonError::into_inner);
            match slot.as_ref() {
                Some(t) => t.lu.name.clone(),
                None => return Err((data::HALT_INTERNAL_ERROR, mover::HALT_MEDIA_ERROR)),
            }
        };
        let inventory = (self.services.inventory)();
        let (Some(disk), Some(tape)) = (
            inventory.by_name(&self.disk.name),
            inventory.by_name(&tape_name),
        ) else {
            return Err((data::HALT_INTERNAL_ERROR, mover::HALT_INTERNAL_ERROR));
        };
        let list =
            crate::copy::lists::image_backup_list(disk, lba, blocks, tape, u64::from(record_size))
                .map_err(|e| {
                    tracing::warn!(error = %e, "ndmp: image backup: no list");
                    (data::HALT_INTERNAL_ERROR, mover::HALT_INTERNAL_ERROR)
                })?;
        let progress = Arc::new(Progress {
            tap: tap.cloned(),
            ..Progress::default()
        });
        let abort = Abort::new();
        self.data.lock().engine_abort = Some(abort.clone());
        let result =
            self.services
                .copy
                .run_list(&self.nexus, &list, None, &abort, progress.clone());
        self.data.lock().engine_abort = None;
        let written = progress.bytes.load(Ordering::Relaxed);
        if self.data.lock().state != data::ACTIVE {
            return Err((data::HALT_ABORTED, mover::HALT_ABORTED));
        }
        Ok((written, result.err()))
    }
}

/// The digest of the image the copy writes (its first `total` bytes: a fixed-block tape's
/// padding is not the disk's). CRC-32C is computed in the copy's own thread as the records
/// land: the CPU's CRC instruction is cheaper than copying the bytes to another thread.
/// MD5 (about 500 MiB/s a core) runs on a thread of its own from the copies the [`Tap`]
/// hands over (buffers recycled; at most [`Digester::QUEUE`] waiting, so a hasher slower
/// than the copy holds the copy back rather than growing memory).
enum Digester {
    Inline(Arc<Mutex<Option<Capped>>>),
    Threaded {
        /// The only strong reference: the tap holds a weak one, so dropping this ends the
        /// hasher's input even while a finished copy's progress (and its tap) is listed.
        pipes: Arc<Pipes>,
        hasher: std::thread::JoinHandle<digest::Value>,
    },
}

struct Pipes {
    to: crossbeam_channel::Sender<Vec<u8>>,
    back: crossbeam_channel::Receiver<Vec<u8>>,
}

/// A hasher that takes the first `left` bytes it is given.
struct Capped {
    hasher: Hasher,
    left: u64,
}

impl Capped {
    fn update(&mut self, bytes: &[u8]) {
        let n = bytes
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        self.hasher.update(&bytes[..n]);
        self.left -= n as u64;
    }
}

impl Digester {
    const QUEUE: usize = 4;

    /// None if MD5's thread cannot be made.
    fn start(kind: Kind, total: u64) -> Option<Self> {
        let capped = Capped {
            hasher: Hasher::new(kind),
            left: total,
        };
        if kind == Kind::Crc32c {
            return Some(Self::Inline(Arc::new(Mutex::new(Some(capped)))));
        }
        let (to, from) = crossbeam_channel::bounded::<Vec<u8>>(Self::QUEUE);
        let (give_back, back) = crossbeam_channel::bounded(Self::QUEUE + 2);
        let hasher = std::thread::Builder::new()
            .name("ndmp-digest".into())
            .spawn(move || {
                let mut capped = capped;
                for b in from {
                    capped.update(&b);
                    let _ = give_back.try_send(b);
                }
                capped.hasher.finish()
            })
            .map_err(|e| tracing::warn!(error = %e, "ndmp: image digest: no thread"))
            .ok()?;
        let pipes = Arc::new(Pipes { to, back });
        Some(Self::Threaded { pipes, hasher })
    }

    fn tap(&self) -> Tap {
        match self {
            Self::Inline(capped) => {
                let capped = capped.clone();
                Tap::new(move |bytes| {
                    if let Some(c) = capped
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .as_mut()
                    {
                        c.update(bytes);
                    }
                })
            }
            Self::Threaded { pipes, .. } => {
                let pipes = Arc::downgrade(pipes);
                Tap::new(move |bytes| {
                    let Some(p) = pipes.upgrade() else { return };
                    let mut b = p.back.try_recv().unwrap_or_default();
                    b.clear();
                    b.extend_from_slice(bytes);
                    let _ = p.to.send(b);
                })
            }
        }
    }

    /// The digest of everything tapped (None if the hasher died).
    fn finish(self) -> Option<digest::Value> {
        match self {
            Self::Inline(capped) => capped
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .map(|c| c.hasher.finish()),
            Self::Threaded { pipes, hasher } => {
                drop(pipes);
                hasher.join().ok()
            }
        }
    }
}
