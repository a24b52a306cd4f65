//! An emulated SBC-3 direct-access logical unit over a regular file or a Linux block device.
//!
//! The CDBs are decoded by the pure [`crate::scsi::sbc`]; this file does the file I/O. The
//! file is opened with O_DIRECT where the file system allows it (EINVAL from open, as on
//! tmpfs, or a DIO offset alignment larger than the block size, falls back to buffered I/O;
//! [`EmulatedDisk::is_direct`] tells which). With O_DIRECT, a caller's buffer that is
//! suitably aligned is read into or written from directly; any other goes through a
//! per-thread aligned bounce buffer. [`ScsiDevice::block_backend`] hands the raw file to the
//! copy engine's own aligned fast path.
//!
//! Command set and the sense each failure returns (SBC-3 clause in brackets):
//! INQUIRY (standard, VPD 00h/80h/83h/B0h/B1h/B2h) [SPC-3 6.4], TEST UNIT READY, REQUEST
//! SENSE (NO SENSE, or the unit's not-ready condition: sense is returned with each CHECK
//! CONDITION), READ CAPACITY(10/16) [5.10, 5.11], READ/WRITE(6/10/12/16) [5.5-5.10,
//! 5.25-5.28], VERIFY(10/12/16) [5.22-5.24], SYNCHRONIZE CACHE(10/16) [5.18, 5.19], MODE
//! SENSE(6/10) [SPC-3 6.9, 6.10], MODE SELECT(6/10) [SPC-4 6.11, 6.12: the Control page's
//! SWP, `crate::scsi::sbc_mode`], REPORT SUPPORTED OPERATION CODES [SPC-3 6.23]; thin
//! provisioning (WRITE SAME, UNMAP, GET LBA STATUS: `disk_provisioning.rs`); COMPARE AND
//! WRITE and ORWRITE (`disk_compare.rs`); WRITE ATOMIC(16) through a journal
//! (`disk_atomic.rs`); START STOP UNIT and SANITIZE (`disk_unit.rs`);
//! PRE-FETCH, PREVENT ALLOW MEDIUM REMOVAL, READ DEFECT DATA. Every write holds its LBA
//! range in the disk's [`RangeLock`] (shared; COMPARE AND WRITE and ORWRITE exclusive), as
//! the copy engine does for its writes to the image. LBA past the end: 05/21/00; write to a
//! read-only disk: 07/27/00; with SWP set: 07/27/02; unknown opcode: 05/20/00; bad CDB field: 05/24/00 with the
//! field pointer; host read error: 03/11/00; host write error: 03/0C/00; out of space on a
//! sparse image: 07/27/07; BYTCHK=1 mismatch: 0E/1D/00 with INFORMATION = byte offset in
//! the data-out buffer of the first difference (as for COMPARE AND WRITE, SBC-3 5.2).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::libc;

use self::image::BOUNCE_CHUNK;
use super::attention::AttentionLog;
use super::lock::{ImageLock, LockError};
use super::range_lock::RangeLock;
use super::reservation::Reservations;
use super::{BlockBackend, Completion, DataDirection, DeviceError, ScsiDevice};
use crate::buf::Rings;
use crate::scsi::designator::Designator;
use crate::scsi::inquiry::{
    encode_device_identification, page, vpd_page, InquiryCdb, StandardInquiry, STANDARD_INQUIRY_LEN,
};
use crate::scsi::sbc::{
    self, ByteCheck, DiskCommand, DiskModeParameters, ReadWriteCdb, VerifyCdb, WriteVerifyCdb,
    DISK_COMMANDS,
};
use crate::scsi::sbc_provisioning::block_device_characteristics_body;
use crate::scsi::ssc::ModeSelect;
use crate::scsi::{Asc, PeripheralDeviceType, Sense, SenseKey};

/// INQUIRY identification of every emulated disk (one product id for all: ESXi uses XCOPY
/// only between LUNs whose PRODUCT IDENTIFICATION matches).
pub const VENDOR: &str = "XCOPYD";
pub const PRODUCT: &str = "EMULATED DISK";
pub const REVISION: &str = "0001";

/// Default MAXIMUM TRANSFER LENGTH, in bytes (Block Limits VPD page): what the iSCSI
/// target's default `max_command_bytes` lets one command move, so a transfer the page allows
/// gets through.
pub const DEFAULT_MAX_TRANSFER_BYTES: u32 = 16 << 20;
/// How to open an [`EmulatedDisk`].
#[derive(Clone, Debug)]
pub struct DiskOptions {
    pub path: PathBuf,
    /// Logical block size: 512 or 4096.
    pub block_size: u32,
    pub read_only: bool,
    /// Create a sparse image of this many bytes if `path` does not exist.
    pub create_size: Option<u64>,
    /// VPD 83h designators (logical-unit association).
    pub designators: Vec<Designator>,
    /// VPD 80h PRODUCT SERIAL NUMBER; defaults to the hex of the first designator.
    pub serial: Option<String>,
    /// Try O_DIRECT (default true).
    pub direct_io: bool,
    /// MAXIMUM TRANSFER LENGTH in bytes (a multiple of the block size).
    pub max_transfer_bytes: u32,
    /// I/Os the copy engine keeps in flight on the image ([`BlockBackend::queue_depth`]).
    pub queue_depth: Option<u16>,
    /// RMB: the medium can be ejected and loaded (START STOP UNIT with LOEJ).
    pub removable: bool,
    /// Where its O_DIRECT reads and writes borrow a bounce buffer (the process's, which
    /// the inventory passes; a disk opened on its own has its own).
    pub rings: Arc<Rings>,
}

impl DiskOptions {
    pub fn new(path: impl Into<PathBuf>, block_size: u32) -> Self {
        Self {
            path: path.into(),
            block_size,
            read_only: false,
            create_size: None,
            designators: Vec::new(),
            serial: None,
            direct_io: true,
            max_transfer_bytes: DEFAULT_MAX_TRANSFER_BYTES,
            queue_depth: None,
            removable: false,
            rings: Arc::default(),
        }
    }
}

/// Why a disk could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiskError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: block size {block_size} is not supported (512 or 4096)", path.display())]
    BlockSize { path: PathBuf, block_size: u32 },
    #[error(
        "{}: the device's logical block size {device} is larger than block_size {block_size}",
        path.display()
    )]
    DeviceBlockSize {
        path: PathBuf,
        device: u32,
        block_size: u32,
    },
    #[error("{}: not a regular file or a block device", path.display())]
    NotBlockStorage { path: PathBuf },
    #[error("{}: holds no whole {block_size}-byte block (give `size` to create an image)", path.display())]
    Empty { path: PathBuf, block_size: u32 },
    #[error("{}: size {size} is not a multiple of block_size {block_size}", path.display())]
    CreateSize {
        path: PathBuf,
        size: u64,
        block_size: u32,
    },
    #[error(transparent)]
    Locked(LockError),
}

/// An SBC-3 disk over a file or block device. `Sync`: commands may run concurrently.
#[derive(Debug)]
pub struct EmulatedDisk {
    name: String,
    path: PathBuf,
    file: Arc<File>,
    direct: bool,
    /// Lends the bounce buffers of reads and writes O_DIRECT cannot take as given.
    rings: Arc<Rings>,
    /// O_DIRECT memory and file-offset alignment (1 when buffered).
    mem_align: usize,
    offset_align: usize,
    block_size: u32,
    blocks: u64,
    read_only: bool,
    designators: Vec<Designator>,
    serial: String,
    max_transfer_blocks: u32,
    queue_depth: Option<u16>,
    /// The image is in tmpfs ([`BlockBackend::in_memory`]).
    in_memory: bool,
    /// [`BlockBackend::page_cache`].
    page_cache: Option<Arc<File>>,
    /// A block device (else a regular file).
    is_block: bool,
    removable: bool,
    /// LBA ranges being written (COMPARE AND WRITE holds its range alone).
    writes: Arc<RangeLock>,
    /// WRITE ATOMIC(16)'s journal beside an image file.
    journal: atomic::Journal,
    /// Stopped, sanitizing, sanitize failed.
    unit: Arc<unit::UnitState>,
    /// The logical unit's reservations (checked by the front ends and the copy manager).
    reservations: Reservations,
    /// SWP of the Control mode page, set by MODE SELECT: the medium is write protected.
    software_write_protect: AtomicBool,
    /// MODE PARAMETERS CHANGED after a MODE SELECT changed something, for the dispatcher
    /// to report to the other I_T nexuses.
    attention: AttentionLog,
    /// This process's flock on the image: exclusive, or shared when read-only.
    _lock: ImageLock,
}

impl EmulatedDisk {
    /// Whether the file was opened with O_DIRECT.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    /// Capacity in logical blocks.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    pub fn designators(&self) -> &[Designator] {
        &self.designators
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the medium may be written: DATA PROTECT, WRITE PROTECTED (07/27/00) for a
    /// read-only disk, LOGICAL UNIT SOFTWARE WRITE PROTECTED (07/27/02) while the Control
    /// mode page's SWP is set (SPC-4 7.5.8: every command that writes the medium).
    pub(super) fn check_writable(&self) -> Result<(), Sense> {
        if self.read_only {
            return Err(Sense::new(SenseKey::DATA_PROTECT, Asc::WRITE_PROTECTED));
        }
        if self.software_write_protect.load(Ordering::Acquire) {
            return Err(Sense::new(
                SenseKey::DATA_PROTECT,
                Asc::LOGICAL_UNIT_SOFTWARE_WRITE_PROTECTED,
            ));
        }
        Ok(())
    }

    fn mode_parameters(&self) -> DiskModeParameters {
        DiskModeParameters {
            blocks: self.blocks,
            block_size: self.block_size,
            write_protect: self.read_only,
            write_cache: true,
            software_write_protect: self.software_write_protect.load(Ordering::Acquire),
        }
    }

    /// MODE SELECT(6)/(10): the whole list is checked before anything changes
    /// ([`sbc::mode_select`]); a change raises MODE PARAMETERS CHANGED (2A/01), which the
    /// dispatcher reports to every I_T nexus but the one that sent it (SPC-4 7.5.1).
    fn mode_select(&self, cdb: &ModeSelect, data: DataDirection<'_>) -> Result<Completion, Sense> {
        let offered = data.len();
        let sent: &[u8] = match data {
            DataDirection::ToDevice(b) => b,
            _ => &[],
        };
        let len = usize::from(cdb.parameter_list_length);
        let Some(list) = sent.get(..len) else {
            tracing::debug!(disk = %self.name, len, sent = sent.len(), "MODE SELECT: less data than PARAMETER LIST LENGTH");
            return Err(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR));
        };
        if list.is_empty() {
            return Ok(Completion::good(offered));
        }
        let current = self.mode_parameters();
        let next = sbc::mode_select(list, cdb.ten, &current).map_err(|e| {
            tracing::info!(disk = %self.name, "MODE SELECT refused: {e}");
            Sense::from(e)
        })?;
        if next != current {
            self.software_write_protect
                .store(next.software_write_protect, Ordering::Release);
            tracing::info!(disk = %self.name, swp = next.software_write_protect, "mode parameters changed");
            self.attention.raise(Asc::MODE_PARAMETERS_CHANGED);
        }
        Ok(Completion::good(offered - len))
    }

    fn check_length(&self, blocks: u32, length_offset: u8) -> Result<(), Sense> {
        if blocks > self.max_transfer_blocks {
            return Err(Sense::invalid_field_in_cdb(u16::from(length_offset), None));
        }
        Ok(())
    }

    fn read(&self, cdb: &ReadWriteCdb, data: DataDirection<'_>) -> Result<Completion, Sense> {
        self.check_length(cdb.blocks, cdb.length_offset)?;
        sbc::check_range(cdb.lba, u64::from(cdb.blocks), self.blocks)?;
        let need = cdb.blocks as usize * self.block_size as usize;
        let buf = match data {
            DataDirection::FromDevice(buf) => buf,
            // No data-in buffer at all: nothing moves, all of it is overflow.
            DataDirection::None => return Ok(Completion::good(0).with_overflow(need)),
            DataDirection::ToDevice(_) => return Ok(Completion::good(0)),
        };
        // A buffer shorter than TRANSFER LENGTH gets what fits (SAM-3 5.4.3: the transfer
        // stops at the buffer); the rest is overflow.
        let n = need.min(buf.len());
        self.read_at(&mut buf[..n], cdb.lba * u64::from(self.block_size))
            .map_err(|_| medium_error(Asc::UNRECOVERED_READ_ERROR, cdb.lba))?;
        Ok(Completion::good(buf.len() - n).with_overflow(need - n))
    }

    fn write(&self, cdb: &ReadWriteCdb, data: DataDirection<'_>) -> Result<Completion, Sense> {
        self.check_length(cdb.blocks, cdb.length_offset)?;
        self.check_writable()?;
        sbc::check_range(cdb.lba, u64::from(cdb.blocks), self.blocks)?;
        let buf: &[u8] = match data {
            DataDirection::ToDevice(b) => b,
            _ => &[],
        };
        let bs = self.block_size as usize;
        let need = cdb.blocks as usize * bs;
        // Less data-out than TRANSFER LENGTH asks for: the whole blocks that came are
        // written and the rest is overflow (what libiscsi's WriteNNResiduals expect of
        // an iSCSI target whose Expected Data Transfer Length is short, and what LIO does).
        let got = need.min(buf.len()) / bs * bs;
        let payload = &buf[..got];
        let offset = cdb.lba * u64::from(self.block_size);
        let held = self.writes.shared(cdb.lba, (got / bs) as u64);
        self.write_at(payload, offset)
            .map_err(|e| write_error(&e, cdb.lba))?;
        drop(held);
        if cdb.fua && got > 0 {
            self.file
                .sync_data()
                .map_err(|e| write_error(&e, cdb.lba))?;
        }
        Ok(Completion::good(buf.len().saturating_sub(need))
            .with_overflow(need.saturating_sub(buf.len())))
    }

    fn verify(&self, cdb: &VerifyCdb, data: DataDirection<'_>) -> Result<Completion, Sense> {
        self.check_length(cdb.blocks, cdb.length_offset)?;
        sbc::check_range(cdb.lba, u64::from(cdb.blocks), self.blocks)?;
        let bs = self.block_size as usize;
        let need = cdb.blocks as usize * bs;
        let expected: &[u8] = match (cdb.byte_check, &data) {
            (ByteCheck::Compare, DataDirection::ToDevice(b)) => b,
            _ => &[],
        };
        if cdb.byte_check == ByteCheck::Compare && expected.len() < need {
            return Err(Sense::invalid_field_in_cdb(
                u16::from(cdb.length_offset),
                None,
            ));
        }
        let compare = (cdb.byte_check == ByteCheck::Compare).then_some(expected);
        self.check_medium(cdb.lba, need, compare)?;
        Ok(Completion::good(expected.len().saturating_sub(need)))
    }

    /// WRITE AND VERIFY: the WRITE (with its residual rules: only the whole blocks that came
    /// are written), then the blocks written are read back and verified, or compared with
    /// the data-out when BYTCHK is 1.
    fn write_and_verify(
        &self,
        cdb: &WriteVerifyCdb,
        data: DataDirection<'_>,
    ) -> Result<Completion, Sense> {
        let buf: &[u8] = match data {
            DataDirection::ToDevice(b) => b,
            _ => &[],
        };
        let completion = self.write(&cdb.write(), DataDirection::ToDevice(buf))?;
        let bs = self.block_size as usize;
        let written = (cdb.blocks as usize * bs).min(buf.len()) / bs * bs;
        let compare = (cdb.byte_check == ByteCheck::Compare).then(|| &buf[..written]);
        self.check_medium(cdb.lba, written, compare)?;
        Ok(completion)
    }

    /// Reads `len` bytes from `lba` on: MEDIUM ERROR (03/11/00, INFORMATION = the LBA) when
    /// they cannot be read; with `expected`, MISCOMPARE DURING VERIFY OPERATION (0E/1D/00)
    /// with INFORMATION = the offset of the first differing byte from the start of
    /// `expected` (SBC-3 5.22, 5.29).
    fn check_medium(&self, lba: u64, len: usize, expected: Option<&[u8]>) -> Result<(), Sense> {
        let bs = self.block_size as usize;
        let base = lba * bs as u64;
        let mut done = 0;
        self.rings
            .with_bounce(len.clamp(1, BOUNCE_CHUNK), |bounce| {
                while done < len {
                    let n = (len - done).min(BOUNCE_CHUNK);
                    let chunk = &mut bounce[..n];
                    self.file
                        .read_exact_at(chunk, base + done as u64)
                        .map_err(|_| {
                            medium_error(Asc::UNRECOVERED_READ_ERROR, lba + (done / bs) as u64)
                        })?;
                    if let Some(want) = expected.and_then(|e| e.get(done..done + n)) {
                        if let Some(at) = chunk.iter().zip(want).position(|(a, b)| a != b) {
                            return Err(Sense::new(
                                SenseKey::MISCOMPARE,
                                Asc::MISCOMPARE_DURING_VERIFY_OPERATION,
                            )
                            .with_information((done + at) as u64));
                        }
                    }
                    done += n;
                }
                Ok(())
            })
    }

    fn inquiry(&self, cdb: &InquiryCdb) -> Result<Vec<u8>, Sense> {
        let pdt = PeripheralDeviceType::DIRECT_ACCESS;
        if !cdb.evpd {
            let mut out = Vec::with_capacity(STANDARD_INQUIRY_LEN);
            StandardInquiry {
                removable: self.removable,
                ..StandardInquiry::new(pdt, VENDOR, PRODUCT, REVISION)
            }
            .encode(&mut out);
            return Ok(out);
        }
        let body = match cdb.page_code {
            page::SUPPORTED_VPD_PAGES => vec![
                page::SUPPORTED_VPD_PAGES,
                page::UNIT_SERIAL_NUMBER,
                page::DEVICE_IDENTIFICATION,
                page::BLOCK_LIMITS,
                page::BLOCK_DEVICE_CHARACTERISTICS,
                page::LOGICAL_BLOCK_PROVISIONING,
            ],
            page::UNIT_SERIAL_NUMBER => self.serial.as_bytes().to_vec(),
            page::DEVICE_IDENTIFICATION => encode_device_identification(&self.designators),
            page::BLOCK_LIMITS => self.block_limits().encode_body(),
            page::BLOCK_DEVICE_CHARACTERISTICS => block_device_characteristics_body(),
            page::LOGICAL_BLOCK_PROVISIONING => self.provisioned().encode_body(),
            _ => return Err(Sense::invalid_field_in_cdb(2, None)),
        };
        Ok(vpd_page(pdt, cdb.page_code, &body))
    }

    fn run(&self, cdb: &[u8], data: DataDirection<'_>) -> Result<Completion, Sense> {
        let command = DiskCommand::decode(cdb).map_err(Sense::from)?;
        if let Some(sense) = self.unit.gate(&command) {
            return Err(sense);
        }
        match command {
            DiskCommand::TestUnitReady => Ok(Completion::good(data.len())),
            DiskCommand::RequestSense {
                descriptor_format,
                allocation_length,
            } => {
                let sense = Sense {
                    descriptor_format,
                    ..self
                        .unit
                        .condition()
                        .unwrap_or_else(|| Sense::new(SenseKey::NO_SENSE, Asc::NO_ADDITIONAL_SENSE))
                };
                Ok(data_in(data, &sense.encode(), allocation_length.into()))
            }
            DiskCommand::Inquiry(inq) => {
                let out = self.inquiry(&inq)?;
                Ok(data_in(data, &out, inq.allocation_length.into()))
            }
            DiskCommand::ModeSense(ms) => {
                let out = sbc::mode_sense_data(&ms, &self.mode_parameters())?;
                Ok(data_in(data, &out, ms.allocation_length.into()))
            }
            DiskCommand::ModeSelect(c) => self.mode_select(&c, data),
            DiskCommand::ReadCapacity10 => {
                let out = sbc::read_capacity_10_data(self.blocks, self.block_size);
                Ok(data_in(data, &out, out.len()))
            }
            DiskCommand::ReadCapacity16 { allocation_length } => {
                let out = sbc::read_capacity_16_data(
                    self.blocks,
                    self.block_size,
                    self.physical_exponent(),
                    Some(self.provisioned()),
                );
                let alloc = usize::try_from(allocation_length).unwrap_or(usize::MAX);
                Ok(data_in(data, &out, alloc))
            }
            DiskCommand::Read(rw) => self.read(&rw, data),
            DiskCommand::Write(rw) => self.write(&rw, data),
            DiskCommand::Verify(v) => self.verify(&v, data),
            DiskCommand::WriteAndVerify(wv) => self.write_and_verify(&wv, data),
            DiskCommand::SynchronizeCache(sc) => {
                // NUMBER OF LOGICAL BLOCKS 0 = through the end: only the LBA is checked.
                sbc::check_range(sc.lba, u64::from(sc.blocks), self.blocks)?;
                if !self.read_only {
                    self.file.sync_data().map_err(|e| write_error(&e, sc.lba))?;
                }
                Ok(Completion::good(data.len()))
            }
            DiskCommand::ReportSupportedOperationCodes(rsoc) => {
                let out = rsoc.response(DISK_COMMANDS).map_err(Sense::from)?;
                let alloc = usize::try_from(rsoc.allocation_length).unwrap_or(usize::MAX);
                Ok(data_in(data, &out, alloc))
            }
            DiskCommand::CompareAndWrite(c) => self.compare_and_write(&c, data),
            DiskCommand::OrWrite(c) => self.or_write(&c, data),
            DiskCommand::WriteSame(c) => self.write_same(&c, data),
            DiskCommand::Unmap(c) => self.unmap(&c, data),
            DiskCommand::GetLbaStatus(c) => self.get_lba_status(&c, data),
            DiskCommand::Prefetch(c) => {
                // Through the last block for PREFETCH LENGTH 0; no cache to fill: GOOD, not
                // CONDITION MET (SBC-3 5.9).
                let blocks = if c.blocks == 0 {
                    0
                } else {
                    u64::from(c.blocks)
                };
                sbc::check_range(c.lba, blocks, self.blocks)?;
                Ok(Completion::good(data.len()))
            }
            DiskCommand::StartStopUnit(c) => self.start_stop(&c),
            // The medium cannot be removed: preventing its removal changes nothing.
            DiskCommand::PreventAllow(_) => Ok(Completion::good(data.len())),
            DiskCommand::ReadDefectData(c) => {
                let alloc = usize::try_from(c.allocation_length).unwrap_or(usize::MAX);
                Ok(data_in(data, &c.empty_list(), alloc))
            }
            DiskCommand::Sanitize => self.sanitize(cdb, data),
            DiskCommand::WriteAtomic(c) => self.write_atomic(&c, data),
            DiskCommand::Reservation(_) | DiskCommand::Unsupported(_) => {
                Err(Sense::illegal_request(Asc::INVALID_COMMAND_OPERATION_CODE))
            }
        }
    }
}

impl ScsiDevice for EmulatedDisk {
    fn execute(&self, cdb: &[u8], data: DataDirection<'_>) -> Result<Completion, DeviceError> {
        let offered = data.len();
        Ok(self
            .run(cdb, data)
            .unwrap_or_else(|sense| Completion::check_condition(&sense, offered)))
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn supported_commands(&self) -> Option<&'static [sbc::CommandUsage]> {
        Some(if self.is_block {
            atomic::commands_without_atomic()
        } else {
            DISK_COMMANDS
        })
    }

    fn concurrent_io(&self) -> bool {
        true
    }

    fn reservations(&self) -> Option<&Reservations> {
        Some(&self.reservations)
    }

    fn unit_attentions(&self) -> Option<&AttentionLog> {
        Some(&self.attention)
    }

    fn block_backend(&self) -> Option<BlockBackend> {
        Some(BlockBackend {
            writes: Arc::clone(&self.writes),
            file: Arc::clone(&self.file),
            offset: 0,
            block_size: self.block_size,
            blocks: self.blocks,
            direct: self.direct,
            // SWP as it stands when the copy manager resolves the disk for a list.
            read_only: self.read_only || self.software_write_protect.load(Ordering::Acquire),
            queue_depth: self.queue_depth,
            in_memory: self.in_memory,
            page_cache: self.page_cache.clone(),
        })
    }
}

/// Copies parameter data into a data-in buffer, at most `allocation_length` bytes; the
/// residual is what the buffer offered and did not receive.
fn data_in(data: DataDirection<'_>, bytes: &[u8], allocation_length: usize) -> Completion {
    match data {
        DataDirection::FromDevice(buf) => {
            let n = bytes.len().min(allocation_length).min(buf.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            Completion::good(buf.len() - n)
        }
        other => Completion::good(other.len()),
    }
}

fn medium_error(asc: Asc, lba: u64) -> Sense {
    Sense::new(SenseKey::MEDIUM_ERROR, asc).with_information(lba)
}

fn write_error(e: &io::Error, lba: u64) -> Sense {
    match e.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => Sense::new(
            SenseKey::DATA_PROTECT,
            Asc::SPACE_ALLOCATION_FAILED_WRITE_PROTECT,
        ),
        Some(libc::EROFS) => Sense::new(SenseKey::DATA_PROTECT, Asc::WRITE_PROTECTED),
        _ => medium_error(Asc::WRITE_ERROR, lba),
    }
}

#[path = "disk_atomic.rs"]
mod atomic;
#[path = "disk_compare.rs"]
mod compare;
#[path = "disk_image.rs"]
mod image;
#[path = "disk_provisioning.rs"]
pub mod provisioning;
#[path = "disk_unit.rs"]
mod unit;

#[cfg(test)]
#[path = "disk_tests.rs"]
mod tests;
