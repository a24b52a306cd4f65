//! The local image backup: DATA and MOVER of one session, connected by ADDR_LOCAL, in mode
//! READ, on an inventory disk and an inventory tape. The blocks go through the copy engine as
//! an EXTENDED COPY list (the list `xcopy backup` runs: disk to tape, records of the
//! mover's record size), so no socket and no extra copy stand between the disk and the
//! tape. The list runs a window at a time; at end of medium the copy stops (COPY ABORTED
//! with the tape's sense forwarded) with the records before it on the tape, the mover pauses
//! (NOTIFY_MOVER_PAUSED, EOM), and after MOVER_CONTINUE the next list starts at the next
//! disk block on whatever cartridge the DMA loaded. The MD5 of DATA_GET_ENV is computed from
//! the records as they land on the tape (the copy's [`Tap`]), on a thread beside the copy,
//! so the disk is read once; the environment variable `DIGEST=none` skips it (DATA_GET_ENV
//! then has BYTES and no MD5).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use md5::{Digest, Md5};

use super::conn::Conn;
use super::data::{self, Data, Disk};
use super::mover::{self, Mover};
use super::services::Services;
use super::tape::TapeDrive;
use crate::copy::Abort;
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
    pub nexus: crate::copy::Nexus,
    /// Compute the MD5 beside the copy (not with `DIGEST=none`).
    pub digest: bool,
}

impl Job {
    /// Runs the backup on its own thread; DATA and MOVER halt (and notify) when it ends.
    pub fn start(self) -> bool {
        tracing::info!(disk = %self.disk.name, "ndmp: local image backup through the copy engine");
        std::thread::Builder::new()
            .name("ndmp-image".into())
            .spawn(move || {
                let digester = self
                    .digest
                    .then(|| Digester::start(self.disk.bytes()))
                    .flatten();
                let copied = self.copy(digester.as_ref().map(Digester::tap));
                let digest = digester.map(Digester::finish);
                match (copied, digest) {
                    (Ok(bytes), Some(Some(md5))) => {
                        self.data.finish_env(bytes, Some(md5));
                        self.data.halt(&self.conn, data::HALT_SUCCESSFUL);
                        self.mover.halt(&self.conn, mover::HALT_CONNECT_CLOSED);
                    }
                    (Ok(bytes), None) if !self.digest => {
                        self.data.finish_env(bytes, None);
                        self.data.halt(&self.conn, data::HALT_SUCCESSFUL);
                        self.mover.halt(&self.conn, mover::HALT_CONNECT_CLOSED);
                    }
                    (Ok(_), _) => {
                        self.data.halt(&self.conn, data::HALT_INTERNAL_ERROR);
                        self.mover.halt(&self.conn, mover::HALT_CONNECT_CLOSED);
                    }
                    (Err((d, m)), _) => {
                        self.data.halt(&self.conn, d);
                        self.mover.halt(&self.conn, m);
                    }
                }
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
            crate::cli::copy::image_backup_list(disk, lba, blocks, tape, u64::from(record_size))
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

/// The MD5 of the image the copy writes (its first `total` bytes: a fixed-block tape's
/// padding is not the disk's), computed on a thread of its own from the copies its [`Tap`]
/// hands over (buffers recycled; at most [`Digester::QUEUE`] waiting, so a hasher slower
/// than the copy holds the copy back rather than growing memory).
struct Digester {
    /// The only strong reference: the tap holds a weak one, so dropping this ends the
    /// hasher's input even while a finished copy's progress (and its tap) is still listed.
    pipes: Arc<Pipes>,
    hasher: std::thread::JoinHandle<[u8; 16]>,
}

struct Pipes {
    to: crossbeam_channel::Sender<Vec<u8>>,
    back: crossbeam_channel::Receiver<Vec<u8>>,
}

impl Digester {
    const QUEUE: usize = 4;

    /// None if the thread cannot be made.
    fn start(total: u64) -> Option<Self> {
        let (to, from) = crossbeam_channel::bounded::<Vec<u8>>(Self::QUEUE);
        let (give_back, back) = crossbeam_channel::bounded(Self::QUEUE + 2);
        let hasher = std::thread::Builder::new()
            .name("ndmp-digest".into())
            .spawn(move || {
                let (mut md5, mut left) = (Md5::new(), total);
                for b in from {
                    let n = b.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    md5.update(&b[..n]);
                    left -= n as u64;
                    let _ = give_back.try_send(b);
                }
                md5.finalize().into()
            })
            .map_err(|e| tracing::warn!(error = %e, "ndmp: image digest: no thread"))
            .ok()?;
        let pipes = Arc::new(Pipes { to, back });
        Some(Self { pipes, hasher })
    }

    fn tap(&self) -> Tap {
        let pipes = Arc::downgrade(&self.pipes);
        Tap::new(move |bytes| {
            let Some(p) = pipes.upgrade() else { return };
            let mut b = p.back.try_recv().unwrap_or_default();
            b.clear();
            b.extend_from_slice(bytes);
            let _ = p.to.send(b);
        })
    }

    /// The digest of everything tapped (None if the hasher died).
    fn finish(self) -> Option<[u8; 16]> {
        drop(self.pipes);
        self.hasher.join().ok()
    }
}
