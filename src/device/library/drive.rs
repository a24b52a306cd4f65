//! A library's tape drive: an LTO drive that is empty until the changer puts a cartridge in
//! it. The cartridge is a [`Loaded`]: its partitions over their SIMH images, opened when the changer
//! loads it (the image's lock then belongs to the drive) and closed when the changer takes
//! it out; every SSC command the emulated tape answers works on whatever cartridge is in.
//!
//! - Empty: every medium command is NOT READY, MEDIUM NOT PRESENT (02/3A/00); INQUIRY,
//!   REQUEST SENSE, REPORT DENSITY SUPPORT (MEDIA=0), READ BLOCK LIMITS, MODE SENSE and
//!   PREVENT ALLOW MEDIUM REMOVAL answer without a medium, as drives do.
//! - A cartridge loaded raises NOT READY TO READY CHANGE (28/00) for every nexus.
//! - SSC LOAD UNLOAD with LOAD=0 unloads: the cartridge stays in the drive, not ready,
//!   and the changer sees the drive full with ACCESS set (ready to be taken), as real
//!   libraries report it. LOAD=1 loads it again.
//! - Identity: INQUIRY says IBM ULT3580-TD<generation>; MODE SENSE reports the cartridge's
//!   density code; capacity and early warning follow the cartridge's generation (its
//!   barcode suffix) unless the cartridge says otherwise.

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::lto::{self, Access};
use crate::device::attention::AttentionLog;
use crate::device::tape::TapeConfig;
use crate::device::{Completion, DataDirection, DeviceError, FileSpan, ScsiDevice};
use crate::scsi::density::{density_support_data, DensityDescriptor, ReportDensitySupport};
use crate::scsi::inquiry::{self, InquiryCdb, StandardInquiry};
use crate::scsi::sbc::CommandUsage;
use crate::scsi::ssc::{self, ModeSense, ModeState, PageControl};
use crate::scsi::{Asc, Designator, Opcode, PeripheralDeviceType, Sense, SenseKey};

/// REPORT DENSITY SUPPORT's operation code.
const REPORT_DENSITY_SUPPORT: u8 = 0x44;

/// How a library drive is set up (its `[[device]] kind = "tape"` entry without `path`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveConfig {
    pub name: String,
    /// LTO generation (5-9): identity, densities, which cartridges it reads and writes.
    pub generation: u8,
    /// The block length a cartridge starts in: 0 = variable.
    pub block_size: u32,
    /// VPD 83h designators (the first is what the changer's DVCID reports).
    pub designators: Vec<Designator>,
    /// VPD 80h serial; the name when empty.
    pub serial: String,
}

pub use super::loaded::Loaded;

/// LOG SENSE's operation code.
const LOG_SENSE: u8 = 0x4d;

/// READ ATTRIBUTE and WRITE ATTRIBUTE's operation codes.
const READ_ATTRIBUTE: u8 = 0x8c;
const WRITE_ATTRIBUTE: u8 = 0x8d;

/// A drive of a library.
#[derive(Debug)]
pub struct LibraryDrive {
    config: DriveConfig,
    inner: Mutex<Option<Loaded>>,
    /// PREVENT ALLOW MEDIUM REMOVAL as the last initiator set it: kept across cartridges.
    prevent: Mutex<bool>,
    attention: AttentionLog,
}

/// What the changer sees of a drive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriveState {
    Empty,
    /// A cartridge is in; `ready` when loaded (not accessible to the robot).
    Full {
        barcode: String,
        ready: bool,
    },
}

fn check(sense: Sense, residual: usize) -> Completion {
    Completion::check_condition(&sense, residual)
}

fn reply(buf: &mut [u8], data: &[u8], allocation: usize) -> Completion {
    let n = data.len().min(allocation).min(buf.len());
    if let (Some(dst), Some(src)) = (buf.get_mut(..n), data.get(..n)) {
        dst.copy_from_slice(src);
    }
    Completion::good(buf.len() - n)
}

fn no_medium() -> Sense {
    Sense::new(SenseKey::NOT_READY, Asc::MEDIUM_NOT_PRESENT)
}

impl LibraryDrive {
    pub fn new(config: DriveConfig) -> Self {
        Self {
            config,
            inner: Mutex::new(None),
            prevent: Mutex::new(false),
            attention: AttentionLog::default(),
        }
    }

    pub fn config(&self) -> &DriveConfig {
        &self.config
    }

    /// How a cartridge with `barcode` is opened in this drive: its generation's density,
    /// capacity (or `capacity` when the cartridge carries its own) and early warning;
    /// write protected when the drive only reads that generation. Also what the drive
    /// may do with it.
    pub fn cartridge_config(&self, barcode: &str, capacity: Option<u64>) -> (TapeConfig, Access) {
        let generation = lto::media_generation(barcode).unwrap_or(self.config.generation);
        let access = lto::access(self.config.generation, generation);
        let capacity = capacity.unwrap_or_else(|| lto::capacity(generation));
        let config = TapeConfig {
            block_size: self.config.block_size,
            capacity,
            early_warning: lto::early_warning_zone(capacity),
            write_protect: access != Access::ReadWrite,
            designators: self.config.designators.clone(),
            serial: self.serial().to_string(),
            density_code: lto::density(generation).code,
            ..TapeConfig::default()
        };
        (config, access)
    }

    /// MODE SENSE's MEDIUM TYPE for cartridge `barcode` in this drive.
    pub fn medium_type(&self, barcode: &str) -> u8 {
        super::loaded::medium_type(lto::media_generation(barcode).unwrap_or(self.config.generation))
    }

    /// Puts a cartridge in (the changer's load): it is loaded at BOP, with this drive's
    /// PREVENT state, and every nexus gets NOT READY TO READY CHANGE.
    pub fn insert(&self, loaded: Loaded) {
        let prevent = *self.prevent.lock().unwrap_or_else(PoisonError::into_inner);
        let mut loaded = loaded;
        let _ = loaded.load();
        let _ = loaded.on_all(&[0x1e, 0, 0, 0, u8::from(prevent), 0]);
        *self.lock() = Some(loaded);
        self.attention.raise(Asc::NOT_READY_TO_READY_CHANGE);
    }

    /// Takes the cartridge out (the changer's unload): a loaded cartridge is unloaded
    /// first (written data synced), unless its removal is prevented (Err with the
    /// cartridge left in). Ok(None) for an empty drive.
    pub fn take(&self) -> Result<Option<Loaded>, Sense> {
        let mut inner = self.lock();
        let Some(loaded) = inner.as_mut() else {
            return Ok(None);
        };
        loaded.unload()?;
        Ok(inner.take())
    }

    /// What the changer reports for this drive.
    pub fn state(&self) -> DriveState {
        match self.lock().as_ref() {
            None => DriveState::Empty,
            Some(l) => DriveState::Full {
                barcode: l.barcode.clone(),
                ready: l.ready(),
            },
        }
    }

    fn serial(&self) -> &str {
        if self.config.serial.is_empty() {
            &self.config.name
        } else {
            &self.config.serial
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Loaded>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn inquiry(&self, cdb: &[u8], buf: &mut [u8]) -> Completion {
        let cdb = match InquiryCdb::decode(cdb) {
            Ok(c) => c,
            Err(e) => return check(Sense::from(e), buf.len()),
        };
        let pdt = PeripheralDeviceType::SEQUENTIAL_ACCESS;
        let data = if !cdb.evpd {
            let (vendor, product, revision) = lto::identity(self.config.generation);
            let mut out = Vec::with_capacity(inquiry::STANDARD_INQUIRY_LEN);
            StandardInquiry::new(pdt, vendor, &product, revision).encode(&mut out);
            out
        } else {
            let body = match cdb.page_code {
                inquiry::page::SUPPORTED_VPD_PAGES => vec![
                    inquiry::page::SUPPORTED_VPD_PAGES,
                    inquiry::page::UNIT_SERIAL_NUMBER,
                    inquiry::page::DEVICE_IDENTIFICATION,
                ],
                inquiry::page::UNIT_SERIAL_NUMBER => self.serial().as_bytes().to_vec(),
                inquiry::page::DEVICE_IDENTIFICATION => {
                    inquiry::encode_device_identification(&self.config.designators)
                }
                _ => return check(Sense::invalid_field_in_cdb(2, None), buf.len()),
            };
            inquiry::vpd_page(pdt, cdb.page_code, &body)
        };
        reply(buf, &data, usize::from(cdb.allocation_length))
    }

    /// REPORT DENSITY SUPPORT: the densities this drive writes (MEDIA=0), or that of the
    /// cartridge in it (MEDIA=1, NOT READY without one).
    fn report_density_support(&self, cdb: &[u8], buf: &mut [u8], medium: Option<u8>) -> Completion {
        let cdb = match ReportDensitySupport::decode(cdb) {
            Ok(c) => c,
            Err(e) => return check(Sense::from(e), buf.len()),
        };
        if cdb.medium_type {
            return check(Sense::invalid_field_in_cdb(1, Some(1)), buf.len());
        }
        let generations: Vec<u8> = match (cdb.media, medium) {
            (false, _) => lto::writable(self.config.generation).to_vec(),
            (true, Some(g)) => vec![g],
            (true, None) => return check(no_medium(), buf.len()),
        };
        let descriptors: Vec<DensityDescriptor> = generations
            .iter()
            .map(|&g| {
                let d = lto::density(g);
                DensityDescriptor {
                    primary_code: d.code,
                    secondary_code: d.code,
                    writable: lto::access(self.config.generation, g) == Access::ReadWrite,
                    duplicate: false,
                    default: g == self.config.generation,
                    bits_per_mm: d.bits_per_mm,
                    media_width: 127,
                    tracks: d.tracks,
                    capacity_mb: d.capacity_mb,
                    organization: "LTO-CVE".into(),
                    name: d.name.into(),
                    description: d.description.into(),
                }
            })
            .collect();
        let data = density_support_data(&descriptors);
        reply(buf, &data, usize::from(cdb.allocation_length))
    }

    /// What an empty drive answers itself: MODE SENSE (no medium: density 0, not write
    /// protected), READ BLOCK LIMITS, PREVENT ALLOW; the rest is NOT READY, 3A/00.
    fn empty(&self, op: Opcode, cdb: &[u8], data: DataDirection<'_>) -> Completion {
        let total = data.len();
        let mut none: [u8; 0] = [];
        let buf = match data {
            DataDirection::FromDevice(b) => b,
            _ => &mut none[..],
        };
        match op {
            Opcode::REQUEST_SENSE => match ssc::RequestSense::decode(cdb) {
                Ok(c) => {
                    let mut sense = no_medium();
                    sense.descriptor_format = c.descriptor_format;
                    reply(buf, &sense.encode(), usize::from(c.allocation_length))
                }
                Err(e) => check(Sense::from(e), total),
            },
            Opcode::MODE_SENSE_6 | Opcode::MODE_SENSE_10 => {
                let decoded = if op == Opcode::MODE_SENSE_6 {
                    ModeSense::decode6(cdb)
                } else {
                    ModeSense::decode10(cdb)
                };
                match decoded {
                    Ok(c) if c.page_control == PageControl::Saved => check(
                        Sense::illegal_request(Asc::SAVING_PARAMETERS_NOT_SUPPORTED),
                        total,
                    ),
                    Ok(c) => {
                        let state = ModeState {
                            density_code: 0,
                            block_length: self.config.block_size,
                            buffered_mode: 1,
                            write_protect: false,
                        };
                        let data = ssc::mode_sense_data(&c, &state, &state);
                        reply(buf, &data, usize::from(c.allocation_length))
                    }
                    Err(e) => check(Sense::from(e), total),
                }
            }
            Opcode::READ_BLOCK_LIMITS => match ssc::decode_read_block_limits(cdb) {
                Ok(()) => reply(buf, &ssc::block_limits(ssc::MAX_BLOCK_LENGTH_LIMIT, 1), 6),
                Err(e) => check(Sense::from(e), total),
            },
            _ => check(no_medium(), total),
        }
    }
}

impl ScsiDevice for LibraryDrive {
    fn execute(&self, cdb: &[u8], data: DataDirection<'_>) -> Result<Completion, DeviceError> {
        let Some(&op) = cdb.first() else {
            return Ok(check(
                Sense::illegal_request(Asc::INVALID_COMMAND_OPERATION_CODE),
                data.len(),
            ));
        };
        let op = Opcode(op);
        let total = data.len();
        if op == Opcode::INQUIRY {
            return Ok(match data {
                DataDirection::FromDevice(b) => self.inquiry(cdb, b),
                _ => self.inquiry(cdb, &mut []),
            });
        }
        if op == Opcode::PREVENT_ALLOW_MEDIUM_REMOVAL {
            match ssc::decode_prevent_allow(cdb) {
                Ok(p) => *self.prevent.lock().unwrap_or_else(PoisonError::into_inner) = p,
                Err(e) => return Ok(check(Sense::from(e), total)),
            }
        }
        let mut inner = self.lock();
        if op.0 == LOG_SENSE {
            let facts = inner.as_ref().map(|l| (l.facts(), l.mam.load_count()));
            let medium = facts.as_ref().map(|(f, n)| (f.as_slice(), *n));
            return Ok(match data {
                DataDirection::FromDevice(b) => super::logs::log_sense(cdb, b, medium),
                _ => super::logs::log_sense(cdb, &mut [], medium),
            });
        }
        if op.0 == REPORT_DENSITY_SUPPORT {
            let medium = inner
                .as_ref()
                .map(|l| lto::media_generation(&l.barcode).unwrap_or(self.config.generation));
            return Ok(match data {
                DataDirection::FromDevice(b) => self.report_density_support(cdb, b, medium),
                _ => self.report_density_support(cdb, &mut [], medium),
            });
        }
        match inner.as_mut() {
            None if op == Opcode::PREVENT_ALLOW_MEDIUM_REMOVAL => Ok(Completion::good(0)),
            None => Ok(self.empty(op, cdb, data)),
            Some(l) if l.access == Access::None && op != Opcode::REQUEST_SENSE => Ok(check(
                Sense::new(SenseKey::NOT_READY, Asc::INCOMPATIBLE_MEDIUM_INSTALLED),
                total,
            )),
            Some(l) if op.0 == READ_ATTRIBUTE => {
                let facts = l.facts();
                Ok(match data {
                    DataDirection::FromDevice(b) => l.mam.read_attribute(cdb, b, &facts),
                    _ => l.mam.read_attribute(cdb, &mut [], &facts),
                })
            }
            Some(l) if op.0 == WRITE_ATTRIBUTE => {
                let partitions = l.partitions();
                Ok(match data {
                    DataDirection::ToDevice(b) => l.mam.write_attribute(cdb, b, partitions),
                    _ => l.mam.write_attribute(cdb, &[], partitions),
                })
            }
            Some(l) => l.execute(cdb, data),
        }
    }

    fn name(&self) -> &str {
        &self.config.name
    }

    fn write_transfers(
        &self,
        cdb: &[u8],
        data: &[&[u8]],
        transfer: usize,
    ) -> (usize, Option<Result<Completion, DeviceError>>) {
        {
            let mut inner = self.lock();
            if let Some(l) = inner.as_mut().filter(|l| l.access != Access::None) {
                return l.write_transfers(cdb, data, transfer);
            }
        }
        // No usable cartridge: each transfer gets the drive's answer (NOT READY, ...).
        let send = |piece: &[u8]| self.execute(cdb, DataDirection::ToDevice(piece));
        crate::device::write_one_by_one(send, data, transfer)
    }

    fn write_transfers_from_file(
        &self,
        cdb: &[u8],
        span: FileSpan<'_>,
        transfer: usize,
    ) -> Option<(usize, Option<Result<Completion, DeviceError>>)> {
        let mut inner = self.lock();
        let l = inner.as_mut().filter(|l| l.access != Access::None)?;
        l.write_transfers_from_file(cdb, span, transfer)
    }

    fn settle(&self) -> Result<(), Completion> {
        match self.lock().as_ref() {
            Some(l) => l.settle(),
            None => Ok(()),
        }
    }

    fn unit_attentions(&self) -> Option<&AttentionLog> {
        Some(&self.attention)
    }

    fn supported_commands(&self) -> Option<&'static [CommandUsage]> {
        Some(DRIVE_COMMANDS)
    }
}

const fn usage(opcode: u8, usage: &'static [u8]) -> CommandUsage {
    CommandUsage {
        opcode,
        service_action: None,
        usage,
    }
}

/// The commands a library drive answers, in opcode order, with their CDB usage data
/// (REPORT SUPPORTED OPERATION CODES; with RCTD each gets a timeouts descriptor).
pub const DRIVE_COMMANDS: &[CommandUsage] = &[
    usage(0x00, &[0x00, 0, 0, 0, 0, 0]),
    usage(0x01, &[0x01, 0x01, 0, 0, 0, 0]),
    usage(0x03, &[0x03, 0x01, 0, 0, 0xff, 0]),
    usage(0x04, &[0x04, 0x03, 0x0f, 0, 0, 0]),
    usage(0x05, &[0x05, 0, 0, 0, 0, 0]),
    usage(0x08, &[0x08, 0x03, 0xff, 0xff, 0xff, 0]),
    usage(0x0a, &[0x0a, 0x01, 0xff, 0xff, 0xff, 0]),
    usage(0x10, &[0x10, 0x01, 0xff, 0xff, 0xff, 0]),
    usage(0x11, &[0x11, 0x03, 0xff, 0xff, 0xff, 0]),
    usage(0x12, &[0x12, 0x01, 0xff, 0xff, 0xff, 0]),
    usage(0x15, &[0x15, 0x10, 0, 0, 0xff, 0]),
    usage(0x19, &[0x19, 0x03, 0, 0, 0, 0]),
    usage(0x1a, &[0x1a, 0x08, 0xff, 0xff, 0xff, 0]),
    usage(0x1b, &[0x1b, 0x01, 0, 0, 0x0f, 0]),
    usage(0x1e, &[0x1e, 0, 0, 0, 0x01, 0]),
    usage(0x2b, &[0x2b, 0x07, 0, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0]),
    usage(0x34, &[0x34, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, 0]),
    usage(0x44, &[0x44, 0x03, 0, 0, 0, 0, 0, 0xff, 0xff, 0]),
    usage(0x4d, &[0x4d, 0, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0]),
    usage(0x55, &[0x55, 0x10, 0, 0, 0, 0, 0, 0xff, 0xff, 0]),
    usage(0x5a, &[0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, 0]),
    usage(
        0x8c,
        &[
            0x8c, 0x1f, 0, 0, 0, 0xff, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0,
        ],
    ),
    usage(
        0x8d,
        &[
            0x8d, 0x01, 0, 0, 0, 0xff, 0, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0,
        ],
    ),
    usage(
        0x91,
        &[
            0x91, 0x0f, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
        ],
    ),
    usage(
        0x92,
        &[
            0x92, 0x3b, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
        ],
    ),
    CommandUsage {
        opcode: 0xa3,
        service_action: Some(0x0c),
        usage: &[
            0xa3, 0x0c, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0,
        ],
    },
];

#[cfg(test)]
#[path = "drive_tests.rs"]
mod tests;
