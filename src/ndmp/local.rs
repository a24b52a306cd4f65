//! The local image backup: DATA and MOVER of one session, connected by ADDR_LOCAL, in mode
//! READ, on an inventory disk and an inventory tape. The blocks go through the copy engine as
//! an EXTENDED COPY list (the list `xcopy backup` runs: disk to tape, records of the
//! mover's record size), so no socket and no extra copy stand between the disk and the
//! tape. The list runs a window at a time; at end of medium the copy stops (COPY ABORTED
//! with the tape's sense forwarded) with the records before it on the tape, the mover pauses
//! (NOTIFY_MOVER_PAUSED, EOM), and after MOVER_CONTINUE the next list starts at the next
//! disk block on whatever cartridge the DMA loaded. The digest of DATA_GET_ENV is computed
//! by a reader of the disk beside the copy: a second read of the disk, which an I/O-bound
//! disk pays for in throughput; the environment variable `DIGEST=none` skips it (DATA_GET_ENV
//! then has BYTES and no MD5).

use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use md5::{Digest, Md5};

use super::conn::Conn;
use super::data::{self, Data, Disk};
use super::mover::{self, Mover};
use super::services::Services;
use super::tape::TapeDrive;
use crate::copy::io::AlignedBuf;
use crate::copy::run::Progress;
use crate::copy::Abort;
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
                let digest = std::thread::scope(|s| {
                    let digest = s.spawn(|| {
                        if self.digest {
                            self.digest().map(Some)
                        } else {
                            Some(None)
                        }
                    });
                    let copied = self.copy();
                    (copied, digest.join().ok().flatten())
                });
                match digest {
                    (Ok(bytes), Some(md5)) => {
                        self.data.finish_env(bytes, md5);
                        self.data.halt(&self.conn, data::HALT_SUCCESSFUL);
                        self.mover.halt(&self.conn, mover::HALT_CONNECT_CLOSED);
                    }
                    (Ok(_), None) => {
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

    /// The MD5 of the disk, read beside the copy (None if a read failed or it was aborted).
    fn digest(&self) -> Option<[u8; 16]> {
        let total = self.disk.bytes();
        let mut md5 = Md5::new();
        let mut buf = AlignedBuf::default();
        let mut at = 0u64;
        while at < total {
            if self.data.lock().state != data::ACTIVE {
                return None;
            }
            let n = (1usize << 20).min(usize::try_from(total - at).unwrap_or(1 << 20));
            let b = buf.slice(n);
            if let Err(e) = self
                .disk
                .backend
                .file
                .read_exact_at(b, self.disk.backend.offset + at)
            {
                tracing::warn!(disk = %self.disk.name, error = %e, "ndmp: image digest: read failed");
                return None;
            }
            md5.update(&*b);
            at += n as u64;
        }
        Some(md5.finalize().into())
    }

    /// Copies the disk to tape a list at a time. Ok(bytes) or the (data, mover) halt reasons.
    fn copy(&self) -> Result<u64, (u32, u32)> {
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
            let (written, sense) =
                self.run_list(moved / block, (until - moved) / block, record_size)?;
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
        let progress = Arc::new(Progress::default());
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
