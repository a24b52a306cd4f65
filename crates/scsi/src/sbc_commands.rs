//! The command set of an emulated direct-access logical unit: the CDB USAGE DATA table
//! REPORT SUPPORTED OPERATION CODES returns ([`DISK_COMMANDS`]), and [`DiskCommand`], one
//! decoded CDB. The CDB decoders live in [`super::sbc`] (SBC-3 reads, writes, VERIFY, READ
//! CAPACITY, MODE SENSE), [`super::sbc_provisioning`] (WRITE SAME, UNMAP, GET LBA STATUS)
//! and [`super::sbc_extra`] (COMPARE AND WRITE, ORWRITE, WRITE ATOMIC, PRE-FETCH, START STOP
//! UNIT, PREVENT ALLOW MEDIUM REMOVAL, READ DEFECT DATA, SANITIZE).

use super::codes::Opcode;
use super::error::{DecodeError, Reason};
use super::inquiry::InquiryCdb;
use super::sbc::{
    control, decode_read_capacity_10, decode_read_capacity_16, fixed, invalid, CommandUsage,
    ModeSenseCdb, ReadWriteCdb, ReportOpcodesCdb, SynchronizeCacheCdb, VerifyCdb, WriteVerifyCdb,
};
#[cfg(doc)]
use super::sbc_extra::SanitizeCdb;
use super::sbc_extra::{
    decode_orwrite_16, decode_prevent_allow, decode_write_atomic_16, CompareAndWriteCdb,
    PrefetchCdb, ReadDefectDataCdb, StartStopUnitCdb, PRE_FETCH_10,
};
use super::sbc_provisioning::{GetLbaStatusCdb, UnmapCdb, WriteSameCdb, SA_GET_LBA_STATUS};
use super::ssc::ModeSelect;

/// The commands an emulated disk supports, in opcode order, with the CDB bits it evaluates.
/// The CONTROL byte is 00h: NACA and LINK are rejected, not evaluated.
pub const DISK_COMMANDS: &[CommandUsage] = &[
    cmd(0x00, &[0, 0, 0, 0, 0, 0]),
    cmd(0x03, &[0x03, 0x01, 0, 0, 0xff, 0]),
    cmd(0x08, &[0x08, 0x1f, 0xff, 0xff, 0xff, 0]),
    cmd(0x0a, &[0x0a, 0x1f, 0xff, 0xff, 0xff, 0]),
    cmd(0x12, &[0x12, 0x01, 0xff, 0xff, 0xff, 0]),
    cmd(0x15, &[0x15, 0x11, 0, 0, 0xff, 0]),
    cmd(0x16, &[0x16, 0, 0, 0, 0, 0]),
    cmd(0x17, &[0x17, 0, 0, 0, 0, 0]),
    cmd(0x1a, &[0x1a, 0x08, 0xff, 0xff, 0xff, 0]),
    cmd(0x1b, &[0x1b, 0x01, 0, 0, 0xf3, 0]),
    cmd(0x1e, &[0x1e, 0, 0, 0, 0x03, 0]),
    cmd(0x25, &[0x25, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x01, 0]),
    cmd(
        0x28,
        &[0x28, 0xfa, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0],
    ),
    cmd(
        0x2a,
        &[0x2a, 0xfa, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0],
    ),
    cmd(
        0x2e,
        &[0x2e, 0xf2, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0],
    ),
    cmd(
        0x2f,
        &[0x2f, 0xf2, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0],
    ),
    cmd(
        0x34,
        &[0x34, 0x02, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0],
    ),
    cmd(
        0x35,
        &[0x35, 0x02, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0],
    ),
    cmd(0x37, &[0x37, 0, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0]),
    cmd(
        0x41,
        &[0x41, 0xf8, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0],
    ),
    cmd(0x42, &[0x42, 0x01, 0, 0, 0, 0, 0x1f, 0xff, 0xff, 0]),
    CommandUsage {
        opcode: 0x48,
        service_action: Some(0x01),
        usage: &[0x48, 0xa1, 0, 0, 0, 0, 0, 0xff, 0xff, 0],
    },
    CommandUsage {
        opcode: 0x48,
        service_action: Some(0x02),
        usage: &[0x48, 0xa2, 0, 0, 0, 0, 0, 0xff, 0xff, 0],
    },
    CommandUsage {
        opcode: 0x48,
        service_action: Some(0x1f),
        usage: &[0x48, 0xbf, 0, 0, 0, 0, 0, 0xff, 0xff, 0],
    },
    cmd(0x55, &[0x55, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, 0]),
    cmd(0x56, &[0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    cmd(0x57, &[0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    cmd(0x5a, &[0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, 0]),
    CommandUsage {
        opcode: 0x5e,
        service_action: Some(0x00),
        usage: &[0x5e, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0],
    },
    CommandUsage {
        opcode: 0x5e,
        service_action: Some(0x01),
        usage: &[0x5e, 0x01, 0, 0, 0, 0, 0, 0xff, 0xff, 0],
    },
    CommandUsage {
        opcode: 0x5e,
        service_action: Some(0x02),
        usage: &[0x5e, 0x02, 0, 0, 0, 0, 0, 0xff, 0xff, 0],
    },
    CommandUsage {
        opcode: 0x5e,
        service_action: Some(0x03),
        usage: &[0x5e, 0x03, 0, 0, 0, 0, 0, 0xff, 0xff, 0],
    },
    CommandUsage {
        opcode: 0x5f,
        service_action: Some(0x00),
        usage: &[0x5f, 0, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0],
    },
    CommandUsage {
        opcode: 0x5f,
        service_action: Some(0x01),
        usage: &[0x5f, 0x01, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0],
    },
    CommandUsage {
        opcode: 0x5f,
        service_action: Some(0x02),
        usage: &[0x5f, 0x02, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0],
    },
    CommandUsage {
        opcode: 0x5f,
        service_action: Some(0x03),
        usage: &[0x5f, 0x03, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0],
    },
    CommandUsage {
        opcode: 0x5f,
        service_action: Some(0x04),
        usage: &[0x5f, 0x04, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0],
    },
    CommandUsage {
        opcode: 0x5f,
        service_action: Some(0x05),
        usage: &[0x5f, 0x05, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0],
    },
    CommandUsage {
        opcode: 0x5f,
        service_action: Some(0x06),
        usage: &[0x5f, 0x06, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0],
    },
    CommandUsage {
        opcode: 0x5f,
        service_action: Some(0x07),
        usage: &[0x5f, 0x07, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0],
    },
    cmd(
        0x88,
        &[
            0x88, 0xfa, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x1f, 0,
        ],
    ),
    cmd(
        0x89,
        &[
            0x89, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0xff, 0x1f, 0,
        ],
    ),
    cmd(
        0x8a,
        &[
            0x8a, 0xfa, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x1f, 0,
        ],
    ),
    cmd(
        0x8b,
        &[
            0x8b, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x1f, 0,
        ],
    ),
    cmd(
        0x8e,
        &[
            0x8e, 0xf2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x1f, 0,
        ],
    ),
    cmd(
        0x8f,
        &[
            0x8f, 0xf2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x1f, 0,
        ],
    ),
    cmd(
        0x90,
        &[
            0x90, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x1f, 0,
        ],
    ),
    cmd(
        0x91,
        &[
            0x91, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x1f, 0,
        ],
    ),
    cmd(
        0x93,
        &[
            0x93, 0xf9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x1f, 0,
        ],
    ),
    cmd(
        0x9c,
        &[
            0x9c, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x1f, 0,
        ],
    ),
    CommandUsage {
        opcode: 0x9e,
        service_action: Some(0x10),
        usage: &[
            0x9e, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x01, 0,
        ],
    },
    CommandUsage {
        opcode: 0x9e,
        service_action: Some(0x12),
        usage: &[
            0x9e, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0,
            0,
        ],
    },
    CommandUsage {
        opcode: 0xa3,
        service_action: Some(0x0c),
        usage: &[
            0xa3, 0x0c, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0,
        ],
    },
    cmd(
        0xa8,
        &[
            0xa8, 0xfa, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0,
        ],
    ),
    cmd(
        0xaa,
        &[
            0xaa, 0xfa, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0,
        ],
    ),
    cmd(
        0xae,
        &[
            0xae, 0xf2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0,
        ],
    ),
    cmd(
        0xaf,
        &[
            0xaf, 0xf2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0,
        ],
    ),
    cmd(
        0xb7,
        &[0xb7, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0],
    ),
];

const fn cmd(opcode: u8, usage: &'static [u8]) -> CommandUsage {
    CommandUsage {
        opcode,
        service_action: None,
        usage,
    }
}

/// A decoded CDB addressed to an emulated disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskCommand {
    TestUnitReady,
    RequestSense {
        descriptor_format: bool,
        allocation_length: u8,
    },
    Inquiry(InquiryCdb),
    ModeSense(ModeSenseCdb),
    /// MODE SELECT(6)/(10) (SPC-4 6.11, 6.12); SP=1 and reserved bits refused, PF=1
    /// required with a parameter list (this logical unit's pages are the standard's).
    ModeSelect(ModeSelect),
    ReadCapacity10,
    ReadCapacity16 {
        allocation_length: u32,
    },
    Read(ReadWriteCdb),
    Write(ReadWriteCdb),
    Verify(VerifyCdb),
    WriteAndVerify(WriteVerifyCdb),
    SynchronizeCache(SynchronizeCacheCdb),
    ReportSupportedOperationCodes(ReportOpcodesCdb),
    CompareAndWrite(CompareAndWriteCdb),
    OrWrite(ReadWriteCdb),
    WriteAtomic(ReadWriteCdb),
    WriteSame(WriteSameCdb),
    Unmap(UnmapCdb),
    GetLbaStatus(GetLbaStatusCdb),
    Prefetch(PrefetchCdb),
    StartStopUnit(StartStopUnitCdb),
    /// PREVENT ALLOW MEDIUM REMOVAL: `true` = prevent.
    PreventAllow(bool),
    ReadDefectData(ReadDefectDataCdb),
    /// SANITIZE; decoded by the disk (its checks need the block size, [`SanitizeCdb`]).
    Sanitize,
    /// PERSISTENT RESERVE IN/OUT, RESERVE and RELEASE (6/10): commands of the logical
    /// unit's reservations, answered before the device with the I_T nexus
    /// (`device::reservation`); one that reaches the device came without a nexus.
    Reservation(u8),
    /// An operation code this logical unit does not implement (20/00).
    Unsupported(u8),
}

impl DiskCommand {
    /// Decodes a CDB. Never panics; an empty CDB is INVALID FIELD IN CDB at byte 0.
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let opcode = Opcode(*cdb.first().ok_or_else(|| invalid(0))?);
        Ok(match opcode {
            Opcode::TEST_UNIT_READY => {
                let [.., ctl] = fixed::<6>(cdb)?;
                control(ctl, 5)?;
                Self::TestUnitReady
            }
            Opcode::REQUEST_SENSE => {
                let [_, b1, _, _, alloc, ctl] = fixed::<6>(cdb)?;
                control(ctl, 5)?;
                Self::RequestSense {
                    descriptor_format: b1 & 0x01 != 0,
                    allocation_length: alloc,
                }
            }
            Opcode::INQUIRY => {
                let [.., ctl] = fixed::<6>(cdb)?;
                control(ctl, 5)?;
                Self::Inquiry(InquiryCdb::decode(cdb).map_err(|e| match e.reason {
                    Reason::InvalidFieldInCdb => e,
                    _ => invalid(0),
                })?)
            }
            Opcode::MODE_SENSE_6 | Opcode::MODE_SENSE_10 => {
                Self::ModeSense(ModeSenseCdb::decode(cdb)?)
            }
            Opcode::MODE_SELECT_6 | Opcode::MODE_SELECT_10 => {
                let ten = opcode == Opcode::MODE_SELECT_10;
                let select = if ten {
                    ModeSelect::decode10(cdb)?
                } else {
                    ModeSelect::decode6(cdb)?
                };
                let last = if ten { 9 } else { 5 };
                control(cdb.get(last).copied().unwrap_or(0), last)?;
                // PF 0 (vendor-specific pages) with a parameter list: refused; with none
                // there is nothing to interpret.
                if !select.page_format && select.parameter_list_length != 0 {
                    return Err(invalid(1).with_bit(4));
                }
                Self::ModeSelect(select)
            }
            Opcode::READ_CAPACITY_10 => {
                decode_read_capacity_10(cdb)?;
                Self::ReadCapacity10
            }
            Opcode::SERVICE_ACTION_IN_16 => match cdb.get(1).map(|b| b & 0x1f) {
                Some(SA_GET_LBA_STATUS) => Self::GetLbaStatus(GetLbaStatusCdb::decode(cdb)?),
                _ => Self::ReadCapacity16 {
                    allocation_length: decode_read_capacity_16(cdb)?,
                },
            },
            Opcode::COMPARE_AND_WRITE => Self::CompareAndWrite(CompareAndWriteCdb::decode(cdb)?),
            Opcode::ORWRITE_16 => Self::OrWrite(decode_orwrite_16(cdb)?),
            Opcode::WRITE_ATOMIC_16 => Self::WriteAtomic(decode_write_atomic_16(cdb)?),
            Opcode::WRITE_SAME_10 | Opcode::WRITE_SAME_16 => {
                Self::WriteSame(WriteSameCdb::decode(cdb)?)
            }
            Opcode::UNMAP => Self::Unmap(UnmapCdb::decode(cdb)?),
            Opcode(PRE_FETCH_10) | Opcode::PRE_FETCH_16 => {
                Self::Prefetch(PrefetchCdb::decode(cdb)?)
            }
            Opcode::START_STOP_UNIT => Self::StartStopUnit(StartStopUnitCdb::decode(cdb)?),
            Opcode::PREVENT_ALLOW_MEDIUM_REMOVAL => Self::PreventAllow(decode_prevent_allow(cdb)?),
            Opcode::READ_DEFECT_DATA_10 | Opcode::READ_DEFECT_DATA_12 => {
                Self::ReadDefectData(ReadDefectDataCdb::decode(cdb)?)
            }
            Opcode::SANITIZE => Self::Sanitize,
            Opcode::PERSISTENT_RESERVE_IN
            | Opcode::PERSISTENT_RESERVE_OUT
            | Opcode::RESERVE_6
            | Opcode::RELEASE_6
            | Opcode::RESERVE_10
            | Opcode::RELEASE_10 => Self::Reservation(opcode.0),
            Opcode::READ_6 | Opcode::READ_10 | Opcode::READ_12 | Opcode::READ_16 => {
                Self::Read(ReadWriteCdb::decode(cdb)?)
            }
            Opcode::WRITE_6 | Opcode::WRITE_10 | Opcode::WRITE_12 | Opcode::WRITE_16 => {
                Self::Write(ReadWriteCdb::decode(cdb)?)
            }
            Opcode::VERIFY_10 | Opcode::VERIFY_12 | Opcode::VERIFY_16 => {
                Self::Verify(VerifyCdb::decode(cdb)?)
            }
            Opcode::WRITE_AND_VERIFY_10
            | Opcode::WRITE_AND_VERIFY_12
            | Opcode::WRITE_AND_VERIFY_16 => Self::WriteAndVerify(WriteVerifyCdb::decode(cdb)?),
            Opcode::SYNCHRONIZE_CACHE_10 | Opcode::SYNCHRONIZE_CACHE_16 => {
                Self::SynchronizeCache(SynchronizeCacheCdb::decode(cdb)?)
            }
            Opcode::MAINTENANCE_IN => {
                Self::ReportSupportedOperationCodes(ReportOpcodesCdb::decode(cdb)?)
            }
            Opcode(other) => Self::Unsupported(other),
        })
    }
}
