//! "Something a CDB can be sent to": the one device interface every device and every front
//! end uses, in the shape of SG_IO — a CDB, a data direction and buffer in; status, sense
//! and residual out.
//!
//! A SCSI failure is a result, not a Rust error: a command ends GOOD or CHECK CONDITION with
//! sense in [`Completion`]. [`DeviceError`] is only for the transport or host failing (the
//! device stopped answering, a timeout, an ioctl error), which the copy manager reports as
//! COPY TARGET DEVICE NOT REACHABLE.

pub mod access;
pub mod attention;
pub mod disk;
#[cfg(any(test, feature = "testing"))]
pub mod faults;
pub mod inventory;
pub mod library;
pub mod lock;
pub mod range_lock;
pub mod reservation;
pub mod sg;

use std::fs::File;
use std::sync::Arc;

use crate::scsi::{Sense, Status};

pub mod tape;

/// Where the data of a command goes.
#[derive(Debug)]
pub enum DataDirection<'a> {
    /// No data transfer.
    None,
    /// Data-in: the device fills the buffer (READ, INQUIRY, ...).
    FromDevice(&'a mut [u8]),
    /// Data-out: the device consumes the buffer (WRITE, MODE SELECT, ...).
    ToDevice(&'a [u8]),
}

impl DataDirection<'_> {
    /// Bytes the initiator offered to transfer.
    pub fn len(&self) -> usize {
        match self {
            Self::None => 0,
            Self::FromDevice(b) => b.len(),
            Self::ToDevice(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub status: Status,
    /// Sense bytes as the device returned them (empty unless CHECK CONDITION).
    pub sense: Vec<u8>,
    /// Bytes of the data buffer not transferred (SG_IO `resid`).
    pub residual: usize,
    /// Bytes the CDB asked to transfer beyond the buffer offered (nothing past the buffer
    /// moves): what an iSCSI or FC target reports as residual overflow. SG_IO never
    /// reports one (0).
    pub overflow: usize,
}

impl Completion {
    /// GOOD with `residual` bytes not transferred.
    pub fn good(residual: usize) -> Self {
        Self {
            status: Status::GOOD,
            sense: Vec::new(),
            residual,
            overflow: 0,
        }
    }

    /// CHECK CONDITION with `sense`, and `residual` bytes not transferred.
    pub fn check_condition(sense: &Sense, residual: usize) -> Self {
        Self {
            status: Status::CHECK_CONDITION,
            sense: sense.encode(),
            residual,
            overflow: 0,
        }
    }

    /// The same completion, with `overflow` bytes the CDB asked for beyond the buffer.
    pub fn with_overflow(mut self, overflow: usize) -> Self {
        self.overflow = overflow;
        self
    }

    pub fn is_good(&self) -> bool {
        self.status == Status::GOOD
    }

    /// The sense data decoded, if any was returned and it parses.
    pub fn decoded_sense(&self) -> Option<Sense> {
        if self.sense.is_empty() {
            None
        } else {
            Sense::decode(&self.sense).ok()
        }
    }
}

/// A transport or host failure: the command did not complete with a SCSI status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    #[error("device did not answer within {0} ms")]
    Timeout(u32),
    #[error("device is not answering")]
    NotResponding,
    #[error("device was removed")]
    Gone,
    #[error("host status {host:#x}, driver status {driver:#x}")]
    Transport { host: u16, driver: u16 },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// The fast data path of a block device: the copy engine reads and writes it directly
/// (io_uring, O_DIRECT where `direct`) instead of sending READ/WRITE CDBs.
#[derive(Clone, Debug)]
pub struct BlockBackend {
    pub file: Arc<File>,
    /// The device's LBA range lock: the engine holds the range of each write it has in
    /// flight (shared), so COMPARE AND WRITE stays atomic against copies.
    pub writes: Arc<range_lock::RangeLock>,
    /// Byte offset of LBA 0 within the file.
    pub offset: u64,
    pub block_size: u32,
    /// Number of logical blocks.
    pub blocks: u64,
    /// Opened with O_DIRECT: buffers, offsets and lengths must be 512-byte aligned.
    pub direct: bool,
    pub read_only: bool,
    /// I/Os the copy engine keeps in flight on this file (reads as a source, writes as a
    /// destination); `None`: the engine's default, half its buffer pool.
    pub queue_depth: Option<u16>,
    /// The file is in memory (tmpfs): a read is a memory copy that never waits, so a copy
    /// reads it on its own thread. Through io_uring every such read is handed to a kernel
    /// worker (tmpfs reads cannot complete inline there), which copies the bytes into
    /// another core's cache just before this thread writes them out.
    pub in_memory: bool,
    /// For an image in memory, a descriptor of it without O_DIRECT: a copy to a device
    /// that takes records from a file ([`ScsiDevice::write_transfers_from_file`]) has the
    /// kernel copy its pages straight across (`copy_file_range`), one memory copy per byte
    /// instead of a read into a buffer and a write from it. (Through an O_DIRECT
    /// descriptor the kernel would copy the pages into a pipe first.)
    pub page_cache: Option<Arc<File>>,
}

/// Bytes of a file, in the page cache, that a device may copy in the kernel.
#[derive(Clone, Copy, Debug)]
pub struct FileSpan<'a> {
    pub file: &'a File,
    pub offset: u64,
    pub len: u64,
}

/// Something a CDB can be sent to.
pub trait ScsiDevice: Send + Sync {
    /// Sends one CDB. `Ok` whenever the device returned a SCSI status, GOOD or not.
    fn execute(&self, cdb: &[u8], data: DataDirection<'_>) -> Result<Completion, DeviceError>;

    /// A short name for logs (the inventory name).
    fn name(&self) -> &str;

    /// The fast data path, for block devices that have one.
    fn block_backend(&self) -> Option<BlockBackend> {
        None
    }

    /// Sends the write `cdb` once per `transfer` bytes of `data` (each slice whole
    /// transfers), each time with the next `transfer` bytes, and stops at the first command
    /// that does not complete GOOD with nothing left over. Returns how many did, and the
    /// outcome of the one that stopped. A device with a faster way to do exactly the same
    /// (an emulated tape appending many records at once) overrides it.
    fn write_transfers(
        &self,
        cdb: &[u8],
        data: &[&[u8]],
        transfer: usize,
    ) -> (usize, Option<Result<Completion, DeviceError>>) {
        write_one_by_one(
            |piece| self.execute(cdb, DataDirection::ToDevice(piece)),
            data,
            transfer,
        )
    }

    /// [`ScsiDevice::write_transfers`] with `span` as the data, which the device copies
    /// from the file itself, in the kernel. `None`: not taken, nothing done, the caller
    /// reads the bytes and writes them the ordinary way (the default; a device that can
    /// take only some writes this way, as a tape away from early warning, refuses the
    /// rest). A source file that ends inside `span` stops the writes with an error.
    fn write_transfers_from_file(
        &self,
        _cdb: &[u8],
        _span: FileSpan<'_>,
        _transfer: usize,
    ) -> Option<(usize, Option<Result<Completion, DeviceError>>)> {
        None
    }

    /// Finishes what a run of writes left for later, once the copy manager is done with the
    /// device for a list and before it acknowledges the list: an emulated tape cuts the end
    /// padding (an end-of-medium marker, zeros, room grown ahead) its O_DIRECT appends leave
    /// past end of data, so the image ends exactly at end of data, and a cartridge in an
    /// object store commits what the list wrote (the end of an EXTENDED COPY is an
    /// acknowledgement). `Err`: a CHECK CONDITION with the device's sense; what the list
    /// wrote is not kept, so the list must not end GOOD. Nothing by default.
    fn settle(&self) -> Result<(), Completion> {
        Ok(())
    }

    /// Whether SIMPLE-attribute READs and WRITEs may run on several threads at once and
    /// complete in any order (SAM-3 8.6: the initiator orders them itself if it cares). A
    /// random-access disk: yes. A tape, whose position makes every command depend on the
    /// one before: no (the default).
    fn concurrent_io(&self) -> bool {
        false
    }

    /// The commands the device itself answers, in opcode order, for REPORT SUPPORTED
    /// OPERATION CODES; the dispatcher adds the ones it answers for every LUN (REPORT LUNS,
    /// EXTENDED COPY, RECEIVE COPY RESULTS). `None`: the device answers that command itself
    /// (a real device behind SG_IO).
    fn supported_commands(&self) -> Option<&'static [crate::scsi::sbc::CommandUsage]> {
        None
    }

    /// The unit attention conditions the device raises itself (a tape loaded, an
    /// import/export element accessed), which the dispatcher reports once per I_T nexus.
    fn unit_attentions(&self) -> Option<&attention::AttentionLog> {
        None
    }

    /// The logical unit's reservations, which the front ends and the copy manager check
    /// with the I_T nexus before a command reaches [`ScsiDevice::execute`] (emulated
    /// devices). `None`: the device keeps its own (a real device behind SG_IO).
    fn reservations(&self) -> Option<&reservation::Reservations> {
        None
    }
}

/// [`ScsiDevice::write_transfers`] the plain way: `send` once per `transfer` bytes.
pub fn write_one_by_one(
    mut send: impl FnMut(&[u8]) -> Result<Completion, DeviceError>,
    data: &[&[u8]],
    transfer: usize,
) -> (usize, Option<Result<Completion, DeviceError>>) {
    let mut done = 0;
    for piece in data.iter().flat_map(|d| d.chunks(transfer.max(1))) {
        match send(piece) {
            Ok(c) if c.is_good() && c.residual == 0 => done += 1,
            other => return (done, Some(other)),
        }
    }
    (done, None)
}
