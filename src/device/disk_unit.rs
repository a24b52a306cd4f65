//! The unit states of an emulated disk beside "ready": its medium ejected by START STOP
//! UNIT with LOEJ (a removable disk, SBC-3 5.25), and SANITIZE (SBC-3 4.11, 5.30) running or
//! failed, with the commands each lets through:
//! - sanitize in progress: INQUIRY and REQUEST SENSE only (REPORT LUNS is the front end's);
//!   everything else is NOT READY, LOGICAL UNIT NOT READY, SANITIZE IN PROGRESS (02/04/1B)
//!   with the progress indication; REQUEST SENSE returns that sense.
//! - sanitize failed: medium access is MEDIUM ERROR, SANITIZE COMMAND FAILED (03/31/03) until
//!   a sanitize completes, or EXIT FAILURE MODE when the failed one had AUSE set.
//! - medium ejected: everything but INQUIRY, REQUEST SENSE, REPORT SUPPORTED OPERATION
//!   CODES, MODE SENSE, START STOP UNIT and PREVENT ALLOW MEDIUM REMOVAL is NOT READY,
//!   MEDIUM NOT PRESENT (02/3A/00) until START STOP UNIT loads it again.
//!
//! There are no power conditions: START STOP UNIT without LOEJ changes nothing (as LIO and
//! tgt; libiscsi's StartStopUnit.NoLoej expects the unit to stay ready). Whether an ejection
//! is prevented (PREVENT ALLOW MEDIUM REMOVAL, per I_T nexus) is the logical unit's
//! reservations' business, which know the nexus (`device::reservation`).
//!
//! A sanitize overwrites every block with the pattern (OVERWRITE COUNT passes, inverted
//! between passes with INVERT) or deallocates them all (BLOCK ERASE: they read as zeros
//! after, WABEREQ 01b); with IMMED it runs on a thread of its own. It holds the whole LBA
//! range exclusive, so the copy engine's writes wait for it too.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::{write_error, EmulatedDisk};
use crate::device::range_lock::RangeLock;
use crate::device::{Completion, DataDirection};
use crate::scsi::sbc::DiskCommand;
use crate::scsi::sbc_extra::{
    progress, OverwriteParameters, SanitizeAction, SanitizeCdb, StartStopUnitCdb,
};
use crate::scsi::{Asc, Sense, SenseKey, SenseKeySpecific};

/// Bytes a sanitize writes at once.
const SANITIZE_CHUNK: usize = 1 << 20;

/// Shared with a sanitize thread.
#[derive(Debug, Default)]
pub(super) struct UnitState {
    ejected: AtomicBool,
    sanitizing: AtomicBool,
    /// Blocks done and to do (all passes) of the running sanitize.
    done: AtomicU64,
    total: AtomicU64,
    /// The last sanitize failed (and whether it had AUSE).
    failed: AtomicBool,
    failed_ause: AtomicBool,
}

impl UnitState {
    /// Pretends a sanitize is `Some((done, total))` blocks along, or none runs (tests).
    #[cfg(test)]
    pub(super) fn set_progress_for_test(&self, progress: Option<(u64, u64)>) {
        let (done, total) = progress.unwrap_or((0, 0));
        self.done.store(done, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
        self.sanitizing.store(progress.is_some(), Ordering::Release);
    }

    /// The condition REQUEST SENSE reports, if any.
    pub(super) fn condition(&self) -> Option<Sense> {
        if self.sanitizing.load(Ordering::Acquire) {
            let p = progress(
                self.done.load(Ordering::Relaxed),
                self.total.load(Ordering::Relaxed),
            );
            return Some(
                Sense::new(
                    SenseKey::NOT_READY,
                    Asc::LOGICAL_UNIT_NOT_READY_SANITIZE_IN_PROGRESS,
                )
                .with_sks(SenseKeySpecific::Progress(p)),
            );
        }
        if self.failed.load(Ordering::Acquire) {
            return Some(Sense::new(
                SenseKey::MEDIUM_ERROR,
                Asc::SANITIZE_COMMAND_FAILED,
            ));
        }
        if self.ejected.load(Ordering::Acquire) {
            return Some(Sense::new(SenseKey::NOT_READY, Asc::MEDIUM_NOT_PRESENT));
        }
        None
    }

    /// The sense `command` ends with in the current state, if it may not run.
    pub(super) fn gate(&self, command: &DiskCommand) -> Option<Sense> {
        use DiskCommand as C;
        let condition = self.condition()?;
        let passes = match command {
            C::Inquiry(_) | C::RequestSense { .. } => true,
            _ if self.sanitizing.load(Ordering::Acquire) => false,
            C::ModeSense(_)
            | C::ReportSupportedOperationCodes(_)
            | C::StartStopUnit(_)
            | C::PreventAllow(_) => true,
            _ if self.ejected.load(Ordering::Acquire) => false,
            // A failed sanitize: a new SANITIZE may run; no medium access.
            C::Sanitize | C::ReadCapacity10 | C::ReadCapacity16 { .. } | C::ReadDefectData(_) => {
                true
            }
            _ => false,
        };
        (!passes).then_some(condition)
    }
}

impl EmulatedDisk {
    /// START STOP UNIT: with LOEJ (and POWER CONDITION 0), START 0 ejects the medium of a
    /// removable disk and START 1 loads it; LOEJ on a disk whose medium cannot be removed is
    /// 24/00 at byte 4 bit 1. Anything else changes nothing (no power conditions).
    pub(super) fn start_stop(&self, cdb: &StartStopUnitCdb) -> Result<Completion, Sense> {
        if cdb.load_eject && cdb.power_condition == 0 {
            if !self.removable {
                return Err(Sense::invalid_field_in_cdb(4, Some(1)));
            }
            self.unit.ejected.store(!cdb.start, Ordering::Release);
            tracing::info!(disk = %self.name, loaded = cdb.start, "medium");
        }
        Ok(Completion::good(0))
    }

    /// SANITIZE (SBC-3 5.30).
    pub(super) fn sanitize(
        &self,
        cdb: &[u8],
        data: DataDirection<'_>,
    ) -> Result<Completion, Sense> {
        let c = SanitizeCdb::decode(cdb, self.block_size).map_err(Sense::from)?;
        self.check_writable()?;
        let out: &[u8] = match data {
            DataDirection::ToDevice(b) => b,
            _ => &[],
        };
        let pattern = match c.action {
            SanitizeAction::ExitFailureMode => {
                if self.unit.failed.load(Ordering::Acquire)
                    && !self.unit.failed_ause.load(Ordering::Acquire)
                {
                    return Err(Sense::new(
                        SenseKey::MEDIUM_ERROR,
                        Asc::SANITIZE_COMMAND_FAILED,
                    ));
                }
                self.unit.failed.store(false, Ordering::Release);
                return Ok(Completion::good(0));
            }
            SanitizeAction::Overwrite => Some(
                OverwriteParameters::decode(out, c.parameter_list_length, self.block_size)
                    .map_err(Sense::from)?,
            ),
            SanitizeAction::BlockErase => None,
        };
        let job = Sanitize {
            file: Arc::clone(&self.file),
            writes: Arc::clone(&self.writes),
            unit: Arc::clone(&self.unit),
            name: self.name.clone(),
            block_size: self.block_size,
            blocks: self.blocks,
            is_block: self.is_block,
            direct: self.direct,
            pattern,
            ause: c.ause,
        };
        let passes = job.pattern.as_ref().map_or(1, |p| u64::from(p.count));
        self.unit.done.store(0, Ordering::Relaxed);
        self.unit
            .total
            .store(passes * self.blocks, Ordering::Relaxed);
        self.unit.sanitizing.store(true, Ordering::Release);
        tracing::info!(disk = %self.name, action = ?c.action, immed = c.immed, "sanitize started");
        if c.immed {
            std::thread::Builder::new()
                .name(format!("sanitize {}", self.name))
                .spawn(move || {
                    let _ = job.run();
                })
                .map_err(|_| Sense::new(SenseKey::HARDWARE_ERROR, Asc::INTERNAL_TARGET_FAILURE))?;
            return Ok(Completion::good(0));
        }
        job.run()?;
        Ok(Completion::good(0))
    }
}

/// A sanitize, owned by whoever runs it.
struct Sanitize {
    file: Arc<std::fs::File>,
    writes: Arc<RangeLock>,
    unit: Arc<UnitState>,
    name: String,
    block_size: u32,
    blocks: u64,
    is_block: bool,
    direct: bool,
    pattern: Option<OverwriteParameters>,
    ause: bool,
}

impl Sanitize {
    fn run(self) -> Result<(), Sense> {
        let result = {
            let _alone = self.writes.exclusive(0, self.blocks);
            match &self.pattern {
                None => self.erase(),
                Some(p) => self.overwrite(p),
            }
        };
        let ok = result.is_ok();
        self.unit.failed.store(!ok, Ordering::Release);
        self.unit
            .failed_ause
            .store(!ok && self.ause, Ordering::Release);
        self.unit.sanitizing.store(false, Ordering::Release);
        match &result {
            Ok(()) => tracing::info!(disk = %self.name, "sanitize done"),
            Err(s) => tracing::error!(disk = %self.name, asc = %s.asc, "sanitize failed"),
        }
        result
    }

    fn erase(&self) -> Result<(), Sense> {
        use std::os::fd::AsFd;
        let len = self.blocks * u64::from(self.block_size);
        let fd = self.file.as_fd();
        let done = if self.is_block {
            crate::sys::block::zero_out(fd, 0, len)
        } else {
            crate::sys::block::punch_hole(fd, 0, len)
        };
        match done {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::EOPNOTSUPP) => {
                return self.overwrite(&OverwriteParameters {
                    invert: false,
                    count: 1,
                    pattern: vec![0],
                });
            }
            Err(e) => return Err(write_error(&e, 0)),
        }
        self.unit.done.store(self.blocks, Ordering::Relaxed);
        Ok(())
    }

    fn overwrite(&self, p: &OverwriteParameters) -> Result<(), Sense> {
        use std::os::unix::fs::FileExt;
        let bs = self.block_size as usize;
        let per_chunk = (SANITIZE_CHUNK / bs).max(1);
        // An aligned buffer for O_DIRECT: a 4 KiB-aligned window of a larger Vec.
        let mut raw = vec![0u8; per_chunk * bs + 4096];
        let start = if self.direct {
            raw.as_ptr().align_offset(4096).min(4096)
        } else {
            0
        };
        for pass in 0..p.count {
            let invert = p.invert && pass % 2 == 1;
            let chunk = &mut raw[start..start + per_chunk * bs];
            for (i, b) in chunk.iter_mut().enumerate() {
                let x = p
                    .pattern
                    .get(i % bs % p.pattern.len().max(1))
                    .copied()
                    .unwrap_or(0);
                *b = if invert { !x } else { x };
            }
            let mut lba = 0u64;
            while lba < self.blocks {
                let n = (self.blocks - lba).min(per_chunk as u64) as usize;
                self.file
                    .write_all_at(&chunk[..n * bs], lba * bs as u64)
                    .map_err(|e| write_error(&e, lba))?;
                lba += n as u64;
                self.unit.done.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        self.file.sync_data().map_err(|e| write_error(&e, 0))
    }
}
