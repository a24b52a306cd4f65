//! An emulated SSC-3 tape drive over a SIMH .tap image: the commands the Linux st driver,
//! sg3_utils and the copy engine send, answered as SSC-3 and SPC-3 say.
//!
//! Positions are logical object identifiers: records and filemarks are objects, numbered
//! from 0 at BOP; end of data is the object number one past the last object. READ
//! POSITION, LOCATE and SPACE use those numbers directly (the block address type, BT, and
//! the vendor-specific short form of READ POSITION report the same numbers).
//!
//! Capacity is in image bytes: a record that would end past `capacity` is not written
//! (VOLUME OVERFLOW), and a write or WRITE FILEMARKS that leaves end of data at or past
//! `capacity - early_warning` completes with the early-warning sense (NO SENSE, EOM=1,
//! 00/02). Every write reaches the image file before status is returned (the page cache,
//! flushed by WRITE FILEMARKS with IMMED=0, REWIND and UNLOAD), so the drive never holds
//! buffered data it could lose at early warning.

pub mod backing;
pub mod image;
pub mod index;
mod medium;

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use image::{scan_bytes, Damage, LoadReport, Object};

pub use self::backing::Backing;
use self::image::TapeImage;
use super::{Completion, DataDirection, DeviceError, FileSpan, ScsiDevice};
use crate::buf::Rings;
use crate::scsi::inquiry::{self, InquiryCdb, StandardInquiry};
use crate::scsi::ssc::{self, ModeSelect, ModeSense, ModeState, PageControl, RequestSense};
use crate::scsi::{
    Asc, DecodeError, Designator, Opcode, PeripheralDeviceType, Sense, SenseKey, SenseKeySpecific,
};

/// Vendor and product in INQUIRY.
pub const VENDOR: &str = "XCOPYD";
pub const PRODUCT: &str = "EMULATED TAPE";
pub const REVISION: &str = "0001";

/// How an emulated drive is set up (the inventory's `[[device]] kind = "tape"` entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapeConfig {
    /// The block length the drive starts with: 0 = variable-block mode, else fixed blocks.
    pub block_size: u32,
    /// Image bytes at which the physical end of the medium is reached.
    pub capacity: u64,
    /// Bytes before `capacity` where early warning starts.
    pub early_warning: u64,
    /// The medium is write protected (the image is opened read-only).
    pub write_protect: bool,
    /// MAXIMUM BLOCK LENGTH LIMIT of READ BLOCK LIMITS (at most 16 MiB - 1).
    pub max_block_length: u32,
    /// VPD 83h designation descriptors.
    pub designators: Vec<Designator>,
    /// VPD 80h PRODUCT SERIAL NUMBER; the inventory name when empty.
    pub serial: String,
    /// DENSITY CODE of the medium (MODE SENSE block descriptor): 0 (default) for a lone
    /// drive; a library drive reports its cartridge's (an LTO generation's code).
    pub density_code: u8,
}

impl Default for TapeConfig {
    /// Variable-block mode, no capacity limit, no early warning zone, 16 MiB - 1 blocks.
    fn default() -> Self {
        Self {
            block_size: 0,
            capacity: u64::MAX,
            early_warning: 0,
            write_protect: false,
            max_block_length: ssc::MAX_BLOCK_LENGTH_LIMIT,
            designators: Vec::new(),
            serial: String::new(),
            density_code: 0,
        }
    }
}

/// An emulated tape drive with a SIMH .tap image loaded.
#[derive(Debug)]
pub struct EmulatedTape {
    name: String,
    config: TapeConfig,
    drive: Mutex<Drive>,
    reservations: super::reservation::Reservations,
}

/// The drive's state, behind the lock.
#[derive(Debug)]
struct Drive {
    image: Box<dyn Backing>,
    /// Logical object identifier of the current position.
    position: u64,
    loaded: bool,
    prevent_removal: bool,
    mode: ModeState,
    /// The mode the drive starts in (MODE SENSE default values).
    default_mode: ModeState,
    /// Written since the last flush.
    dirty: bool,
    capacity: u64,
    early_warning_at: u64,
    max_block_length: u32,
}

/// Refuses a configuration no drive can have.
fn check_config(config: &TapeConfig) -> io::Result<()> {
    let invalid = |what: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, what));
    if config.max_block_length == 0 || config.max_block_length > ssc::MAX_BLOCK_LENGTH_LIMIT {
        return invalid("tape max_block_length must be 1..=16777215");
    }
    if config.block_size > config.max_block_length {
        return invalid("tape block_size exceeds max_block_length");
    }
    if config.early_warning > config.capacity {
        return invalid("tape early_warning exceeds capacity");
    }
    Ok(())
}

impl EmulatedTape {
    /// Opens the image at `path` (creating an empty one if missing, unless write
    /// protected), indexes it, and cuts off a record half-written by a crash. The report
    /// says what was found and cut, for the caller to log.
    pub fn open(
        name: impl Into<String>,
        path: impl AsRef<Path>,
        config: TapeConfig,
    ) -> io::Result<(Self, LoadReport)> {
        check_config(&config)?;
        let (image, report) = TapeImage::open(path.as_ref(), !config.write_protect)?;
        Ok((Self::with_backing(name, Box::new(image), config)?, report))
    }

    /// [`EmulatedTape::open`], the image's O_DIRECT appends borrowing their ring from
    /// `rings` (the process's, which the copy engines share).
    pub fn open_in(
        name: impl Into<String>,
        path: impl AsRef<Path>,
        config: TapeConfig,
        rings: Arc<Rings>,
    ) -> io::Result<(Self, LoadReport)> {
        check_config(&config)?;
        let (image, report) = TapeImage::open_in(path.as_ref(), !config.write_protect, rings)?;
        Ok((Self::with_backing(name, Box::new(image), config)?, report))
    }

    /// A drive over `image`, a medium kept anywhere ([`Backing`]).
    pub fn with_backing(
        name: impl Into<String>,
        image: Box<dyn Backing>,
        config: TapeConfig,
    ) -> io::Result<Self> {
        check_config(&config)?;
        let drive = Drive {
            image,
            position: 0,
            loaded: true,
            prevent_removal: false,
            mode: default_mode(&config),
            default_mode: default_mode(&config),
            dirty: false,
            capacity: config.capacity,
            early_warning_at: config.capacity - config.early_warning,
            max_block_length: config.max_block_length,
        };
        Ok(Self {
            name: name.into(),
            config,
            drive: Mutex::new(drive),
            reservations: super::reservation::Reservations::new(crate::scsi::DeviceClass::Stream),
        })
    }

    pub fn config(&self) -> &TapeConfig {
        &self.config
    }

    /// The current logical object identifier (what READ POSITION reports).
    pub fn position(&self) -> u64 {
        self.lock().position
    }

    /// Makes the medium `capacity` bytes with an early warning zone of `early_warning`
    /// (a library cartridge FORMAT MEDIUM re-partitioned). The zone is clamped to the
    /// capacity.
    pub fn resize(&mut self, capacity: u64, early_warning: u64) {
        let early_warning = early_warning.min(capacity);
        self.config.capacity = capacity;
        self.config.early_warning = early_warning;
        let d = self.drive.get_mut().unwrap_or_else(PoisonError::into_inner);
        d.capacity = capacity;
        d.early_warning_at = capacity - early_warning;
    }

    /// Image bytes up to end of data: the medium used (a library's remaining capacity).
    pub fn end_of_data(&self) -> u64 {
        self.lock().image.end_of_data()
    }

    fn lock(&self) -> MutexGuard<'_, Drive> {
        self.drive.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn inquiry(&self, cdb: &[u8], buf: &mut [u8]) -> Completion {
        let cdb = match InquiryCdb::decode(cdb) {
            Ok(c) => c,
            Err(e) => return decode_error(e, buf.len()),
        };
        let pdt = PeripheralDeviceType::SEQUENTIAL_ACCESS;
        let data = if !cdb.evpd {
            let mut out = Vec::with_capacity(inquiry::STANDARD_INQUIRY_LEN);
            StandardInquiry::new(pdt, VENDOR, PRODUCT, REVISION).encode(&mut out);
            out
        } else {
            let body = match cdb.page_code {
                inquiry::page::SUPPORTED_VPD_PAGES => vec![
                    inquiry::page::SUPPORTED_VPD_PAGES,
                    inquiry::page::UNIT_SERIAL_NUMBER,
                    inquiry::page::DEVICE_IDENTIFICATION,
                ],
                inquiry::page::UNIT_SERIAL_NUMBER => {
                    let serial = if self.config.serial.is_empty() {
                        &self.name
                    } else {
                        &self.config.serial
                    };
                    serial.as_bytes().to_vec()
                }
                inquiry::page::DEVICE_IDENTIFICATION => {
                    inquiry::encode_device_identification(&self.config.designators)
                }
                _ => {
                    let sense = Sense::invalid_field_in_cdb(2, None);
                    return Completion::check_condition(&sense, buf.len());
                }
            };
            inquiry::vpd_page(pdt, cdb.page_code, &body)
        };
        reply(buf, &data, usize::from(cdb.allocation_length))
    }
}

fn default_mode(config: &TapeConfig) -> ModeState {
    ModeState {
        density_code: config.density_code,
        block_length: config.block_size,
        buffered_mode: 1,
        write_protect: config.write_protect,
    }
}

/// Data-in: copies what fits the allocation length and the buffer; GOOD with the rest of
/// the buffer as residual.
fn reply(buf: &mut [u8], data: &[u8], allocation_length: usize) -> Completion {
    let n = data.len().min(allocation_length).min(buf.len());
    if let (Some(dst), Some(src)) = (buf.get_mut(..n), data.get(..n)) {
        dst.copy_from_slice(src);
    }
    Completion::good(buf.len() - n)
}

fn decode_error(e: DecodeError, residual: usize) -> Completion {
    Completion::check_condition(&Sense::from(e), residual)
}

fn check(sense: Sense, residual: usize) -> Completion {
    Completion::check_condition(&sense, residual)
}

fn not_ready(residual: usize) -> Completion {
    check(
        Sense::new(SenseKey::NOT_READY, Asc::MEDIUM_NOT_PRESENT),
        residual,
    )
}

/// The data-in buffer of a command, or an empty one.
fn data_in<'a>(data: DataDirection<'a>) -> &'a mut [u8] {
    match data {
        DataDirection::FromDevice(b) => b,
        _ => &mut [],
    }
}

/// The data-out buffer of a command, or an empty one.
fn data_out<'a>(data: DataDirection<'a>) -> &'a [u8] {
    match data {
        DataDirection::ToDevice(b) => b,
        _ => &[],
    }
}

impl ScsiDevice for EmulatedTape {
    fn execute(&self, cdb: &[u8], data: DataDirection<'_>) -> Result<Completion, DeviceError> {
        let Some(&op) = cdb.first() else {
            return Ok(check(
                Sense::illegal_request(Asc::INVALID_COMMAND_OPERATION_CODE),
                data.len(),
            ));
        };
        let op = Opcode(op);
        if op == Opcode::INQUIRY {
            return Ok(self.inquiry(cdb, data_in(data)));
        }
        let mut d = self.lock();
        let completion = match op {
            Opcode::TEST_UNIT_READY => d.test_unit_ready(),
            Opcode::REQUEST_SENSE => d.request_sense(cdb, data_in(data)),
            Opcode::MODE_SENSE_6 => d.mode_sense(ModeSense::decode6(cdb), data_in(data)),
            Opcode::MODE_SENSE_10 => d.mode_sense(ModeSense::decode10(cdb), data_in(data)),
            Opcode::MODE_SELECT_6 => d.mode_select(ModeSelect::decode6(cdb), data_out(data)),
            Opcode::MODE_SELECT_10 => d.mode_select(ModeSelect::decode10(cdb), data_out(data)),
            Opcode::READ_BLOCK_LIMITS => d.read_block_limits(cdb, data_in(data)),
            Opcode::START_STOP_UNIT => d.load_unload(cdb),
            Opcode::PREVENT_ALLOW_MEDIUM_REMOVAL => d.prevent_allow(cdb),
            Opcode::REWIND => d.rewind(cdb),
            Opcode::READ_6 => d.read(cdb, data_in(data)),
            Opcode::WRITE_6 => {
                let c = d.write(cdb, data_out(data));
                // A host's WRITE leaves the image exact, whoever looks at it next; only the
                // copy manager's runs of writes keep the end padding until the list ends.
                d.settle(&self.name);
                c
            }
            Opcode::WRITE_FILEMARKS_6 => d.write_filemarks(cdb),
            Opcode::SPACE_6 => d.space(cdb),
            Opcode::LOCATE_10 => d.locate(ssc::Locate::decode10(cdb), 8),
            Opcode::LOCATE_16 => d.locate(ssc::Locate::decode16(cdb), 3),
            Opcode::READ_POSITION => d.read_position(cdb, data_in(data)),
            Opcode::ERASE_6 => d.erase(cdb),
            _ => check(
                Sense::illegal_request(Asc::INVALID_COMMAND_OPERATION_CODE),
                data.len(),
            ),
        };
        Ok(completion)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn write_transfers(
        &self,
        cdb: &[u8],
        data: &[&[u8]],
        transfer: usize,
    ) -> (usize, Option<Result<Completion, DeviceError>>) {
        if cdb.first() != Some(&Opcode::WRITE_6.0) {
            let send = |piece: &[u8]| self.execute(cdb, DataDirection::ToDevice(piece));
            return super::write_one_by_one(send, data, transfer);
        }
        let (done, stopped) = self.lock().write_many(cdb, data, transfer);
        (done, stopped.map(Ok))
    }

    fn write_transfers_from_file(
        &self,
        cdb: &[u8],
        span: FileSpan<'_>,
        transfer: usize,
    ) -> Option<(usize, Option<Result<Completion, DeviceError>>)> {
        if cdb.first() != Some(&Opcode::WRITE_6.0) {
            return None;
        }
        let (done, stopped) = self.lock().write_many_from_file(cdb, span, transfer)?;
        Some((done, stopped.map(Ok)))
    }

    fn settle(&self) -> Result<(), Completion> {
        self.lock().end_list(&self.name)
    }

    fn reservations(&self) -> Option<&super::reservation::Reservations> {
        Some(&self.reservations)
    }
}

impl Drive {
    /// Cuts the image to end of data ([`TapeImage::settle`]).
    fn settle(&mut self, name: &str) {
        if let Err(e) = self.image.settle() {
            // The image still reads the same (readers stop at the padding's end-of-medium
            // marker); the next write, a flush or the close cuts it.
            tracing::warn!(tape = %name, error = %e, "could not cut the image to end of data");
        }
    }

    /// The end of an EXTENDED COPY list: the image settled, and what the list wrote kept
    /// where the backing keeps nothing uncommitted ([`Backing::end_list`]); a failure is
    /// MEDIUM ERROR, WRITE ERROR, as a flush's.
    fn end_list(&mut self, name: &str) -> Result<(), Completion> {
        self.settle(name);
        self.image.end_list().map_err(|e| {
            tracing::error!(tape = %name, error = %e, "what the list wrote could not be committed");
            check(Sense::new(SenseKey::MEDIUM_ERROR, Asc::WRITE_ERROR), 0)
        })
    }

    fn test_unit_ready(&self) -> Completion {
        if self.loaded {
            Completion::good(0)
        } else {
            not_ready(0)
        }
    }

    /// SPC-3 REQUEST SENSE: sense is returned with each CHECK CONDITION (autosense), so
    /// this reports the current state: no medium, or nothing to report.
    fn request_sense(&self, cdb: &[u8], buf: &mut [u8]) -> Completion {
        let cdb = match RequestSense::decode(cdb) {
            Ok(c) => c,
            Err(e) => return decode_error(e, buf.len()),
        };
        let mut sense = if self.loaded {
            Sense::new(SenseKey::NO_SENSE, Asc::NO_ADDITIONAL_SENSE)
        } else {
            Sense::new(SenseKey::NOT_READY, Asc::MEDIUM_NOT_PRESENT)
        };
        sense.descriptor_format = cdb.descriptor_format;
        reply(buf, &sense.encode(), usize::from(cdb.allocation_length))
    }

    fn mode_sense(&self, cdb: Result<ModeSense, DecodeError>, buf: &mut [u8]) -> Completion {
        let cdb = match cdb {
            Ok(c) => c,
            Err(e) => return decode_error(e, buf.len()),
        };
        if cdb.page_control == PageControl::Saved {
            let sense = Sense::illegal_request(Asc::SAVING_PARAMETERS_NOT_SUPPORTED).with_sks(
                SenseKeySpecific::Field {
                    command: true,
                    bit: Some(7),
                    pointer: 2,
                },
            );
            return check(sense, buf.len());
        }
        let data = ssc::mode_sense_data(&cdb, &self.mode, &self.default_mode);
        reply(buf, &data, usize::from(cdb.allocation_length))
    }

    /// SPC-3 MODE SELECT: the block descriptor switches fixed/variable mode; the whole list
    /// is validated before anything changes.
    fn mode_select(&mut self, cdb: Result<ModeSelect, DecodeError>, buf: &[u8]) -> Completion {
        let cdb = match cdb {
            Ok(c) => c,
            Err(e) => return decode_error(e, buf.len()),
        };
        let len = usize::from(cdb.parameter_list_length);
        let Some(params) = buf.get(..len) else {
            // The initiator promised more parameter data than it sent.
            let pointer = if cdb.ten { 7 } else { 4 };
            return check(Sense::invalid_field_in_cdb(pointer, None), buf.len());
        };
        match ssc::mode_select(params, cdb.ten, &self.mode, self.max_block_length) {
            Ok(next) => {
                self.mode = next;
                Completion::good(buf.len() - len)
            }
            Err(e) => decode_error(e, buf.len()),
        }
    }

    fn read_block_limits(&self, cdb: &[u8], buf: &mut [u8]) -> Completion {
        if let Err(e) = ssc::decode_read_block_limits(cdb) {
            return decode_error(e, buf.len());
        }
        reply(buf, &ssc::block_limits(self.max_block_length, 1), 6)
    }

    /// SSC-3 LOAD UNLOAD: unloading makes the drive not ready until loaded again; both
    /// leave the position at BOP. UNLOAD with medium removal prevented is 05/53/02.
    fn load_unload(&mut self, cdb: &[u8]) -> Completion {
        let cmd = match ssc::LoadUnload::decode(cdb) {
            Ok(c) => c,
            Err(e) => return decode_error(e, 0),
        };
        if cmd.load {
            self.loaded = true;
        } else {
            if self.prevent_removal && self.loaded {
                return check(Sense::illegal_request(Asc::MEDIUM_REMOVAL_PREVENTED), 0);
            }
            if let Err(c) = self.flush() {
                return c;
            }
            self.loaded = false;
        }
        self.position = 0;
        Completion::good(0)
    }

    fn prevent_allow(&mut self, cdb: &[u8]) -> Completion {
        match ssc::decode_prevent_allow(cdb) {
            Ok(prevent) => {
                self.prevent_removal = prevent;
                Completion::good(0)
            }
            Err(e) => decode_error(e, 0),
        }
    }

    fn rewind(&mut self, cdb: &[u8]) -> Completion {
        if let Err(e) = ssc::decode_rewind(cdb) {
            return decode_error(e, 0);
        }
        if !self.loaded {
            return not_ready(0);
        }
        if let Err(c) = self.flush() {
            return c;
        }
        self.position = 0;
        Completion::good(0)
    }

    /// Syncs written data to stable storage; a failure is MEDIUM ERROR, WRITE ERROR.
    fn flush(&mut self) -> Result<(), Completion> {
        if self.dirty {
            self.image
                .sync()
                .map_err(|_| check(Sense::new(SenseKey::MEDIUM_ERROR, Asc::WRITE_ERROR), 0))?;
            self.dirty = false;
        }
        Ok(())
    }

    /// At or past early warning: the `capacity - early_warning` image offset.
    fn beyond_early_warning(&self, offset: u64) -> bool {
        offset >= self.early_warning_at
    }

    /// BLANK CHECK, END-OF-DATA DETECTED. EOM is set when end of data is at or after early
    /// warning, or an end-of-medium marker ends the image (SSC-3 READ(6), SPACE(6)).
    fn blank_check(&self, information: Option<u64>) -> Sense {
        Sense {
            eom: self.beyond_early_warning(self.image.end_of_data())
                || self.image.end_of_medium_marker(),
            information,
            ..Sense::new(SenseKey::BLANK_CHECK, Asc::END_OF_DATA_DETECTED)
        }
    }
}

#[cfg(test)]
mod tests;
