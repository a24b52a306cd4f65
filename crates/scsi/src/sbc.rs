//! The block commands (SBC-3, T10/1799-D) an emulated direct-access logical unit answers:
//! CDB decoders for READ/WRITE (6/10/12/16) (SBC-3 5.7-5.10, 5.25-5.28), VERIFY (10/12/16)
//! (5.22-5.24), WRITE AND VERIFY (10/12/16) (5.29-5.31), SYNCHRONIZE CACHE (10/16) (5.18-5.19), READ CAPACITY (10/16) (5.10-5.11),
//! MODE SENSE (6/10) (SPC-3 6.9-6.10 with the SBC-3 6.3 pages), REPORT SUPPORTED OPERATION
//! CODES (SPC-3 6.23), and the encoders of the parameter data they return.
//!
//! Pure: no I/O and no panics on input. A malformed CDB is a [`DecodeError`] with reason
//! [`Reason::InvalidFieldInCdb`] naming the byte (and bit) at fault, which becomes ILLEGAL
//! REQUEST, INVALID FIELD IN CDB with the field pointer (C/D = 1). A CDB shorter than its
//! operation code's length points at byte 0.

use super::codes::{Asc, Opcode};
use super::error::{DecodeError, Reason};
use super::reader::Put;
use super::sense::Sense;

pub use super::sbc_commands::{DiskCommand, DISK_COMMANDS};
pub use super::sbc_mode::{mode_select, DiskModeParameters, PageValues};

/// SERVICE ACTION IN(16) service action of READ CAPACITY(16).
pub const SA_READ_CAPACITY_16: u8 = 0x10;
/// MAINTENANCE IN service action of REPORT SUPPORTED OPERATION CODES.
pub const SA_REPORT_SUPPORTED_OPERATION_CODES: u8 = 0x0c;

/// MODE SENSE page codes we serve.
pub mod mode_page {
    pub use crate::sbc_mode::{CACHING, CONTROL};
    pub const ALL: u8 = 0x3f;
}

pub(super) fn invalid(byte: usize) -> DecodeError {
    DecodeError::new(Reason::InvalidFieldInCdb, byte)
}

pub(super) fn invalid_bit(byte: usize, bit: u8) -> DecodeError {
    invalid(byte).with_bit(bit)
}

/// The first `N` bytes of `cdb`; a shorter CDB points at the operation code.
pub(super) fn fixed<const N: usize>(cdb: &[u8]) -> Result<[u8; N], DecodeError> {
    cdb.get(..N)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or_else(|| invalid(0))
}

/// The CONTROL byte (SAM-4 5.2): NACA and LINK are not supported (24/00).
pub(super) fn control(byte: u8, offset: usize) -> Result<(), DecodeError> {
    if byte & 0x04 != 0 {
        return Err(invalid_bit(offset, 2));
    }
    if byte & 0x01 != 0 {
        return Err(invalid_bit(offset, 0));
    }
    Ok(())
}

/// RDPROTECT / WRPROTECT / VRPROTECT (bits 7:5 of byte 1): this logical unit has no
/// protection information, so any non-zero value is 24/00 (SBC-3 5.8, Table 33).
pub(super) fn protect(byte1: u8) -> Result<(), DecodeError> {
    if byte1 & 0xe0 != 0 {
        return Err(invalid_bit(1, 7));
    }
    Ok(())
}

pub(super) fn be32(b: [u8; 4]) -> u32 {
    u32::from_be_bytes(b)
}

pub(super) fn be64(b: [u8; 8]) -> u64 {
    u64::from_be_bytes(b)
}

/// READ or WRITE (6/10/12/16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadWriteCdb {
    pub write: bool,
    pub lba: u64,
    /// TRANSFER LENGTH in logical blocks (READ(6)/WRITE(6): 0 already turned into 256).
    pub blocks: u32,
    /// Force unit access: the data must reach (or come from) the medium.
    pub fua: bool,
    pub dpo: bool,
    /// CDB byte of the TRANSFER LENGTH field, for field pointers.
    pub length_offset: u8,
}

impl ReadWriteCdb {
    /// Decodes any of READ(6/10/12/16) and WRITE(6/10/12/16).
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let opcode = Opcode(*cdb.first().ok_or_else(|| invalid(0))?);
        let write = matches!(
            opcode,
            Opcode::WRITE_6 | Opcode::WRITE_10 | Opcode::WRITE_12 | Opcode::WRITE_16
        );
        let flags = |b1: u8| -> Result<(bool, bool), DecodeError> {
            protect(b1)?;
            Ok((b1 & 0x08 != 0, b1 & 0x10 != 0))
        };
        match opcode {
            Opcode::READ_6 | Opcode::WRITE_6 => {
                let [_, b1, l1, l2, len, ctl] = fixed::<6>(cdb)?;
                control(ctl, 5)?;
                Ok(Self {
                    write,
                    lba: u64::from(be32([0, b1 & 0x1f, l1, l2])),
                    blocks: if len == 0 { 256 } else { u32::from(len) },
                    fua: false,
                    dpo: false,
                    length_offset: 4,
                })
            }
            Opcode::READ_10 | Opcode::WRITE_10 => {
                let [_, b1, l0, l1, l2, l3, _group, n0, n1, ctl] = fixed::<10>(cdb)?;
                control(ctl, 9)?;
                let (fua, dpo) = flags(b1)?;
                Ok(Self {
                    write,
                    lba: u64::from(be32([l0, l1, l2, l3])),
                    blocks: u32::from(u16::from_be_bytes([n0, n1])),
                    fua,
                    dpo,
                    length_offset: 7,
                })
            }
            Opcode::READ_12 | Opcode::WRITE_12 => {
                let [_, b1, l0, l1, l2, l3, n0, n1, n2, n3, _group, ctl] = fixed::<12>(cdb)?;
                control(ctl, 11)?;
                let (fua, dpo) = flags(b1)?;
                Ok(Self {
                    write,
                    lba: u64::from(be32([l0, l1, l2, l3])),
                    blocks: be32([n0, n1, n2, n3]),
                    fua,
                    dpo,
                    length_offset: 6,
                })
            }
            Opcode::READ_16 | Opcode::WRITE_16 => {
                let [_, b1, l0, l1, l2, l3, l4, l5, l6, l7, n0, n1, n2, n3, _group, ctl] =
                    fixed::<16>(cdb)?;
                control(ctl, 15)?;
                let (fua, dpo) = flags(b1)?;
                Ok(Self {
                    write,
                    lba: be64([l0, l1, l2, l3, l4, l5, l6, l7]),
                    blocks: be32([n0, n1, n2, n3]),
                    fua,
                    dpo,
                    length_offset: 10,
                })
            }
            _ => Err(invalid(0)),
        }
    }

    /// READ(16) (SBC-3 5.10): the form the copy engine sends.
    pub fn read_16(lba: u64, blocks: u32) -> [u8; 16] {
        Self::encode_16(Opcode::READ_16, lba, blocks, false)
    }

    /// WRITE(16) (SBC-3 5.28), with FUA when `fua`.
    pub fn write_16(lba: u64, blocks: u32, fua: bool) -> [u8; 16] {
        Self::encode_16(Opcode::WRITE_16, lba, blocks, fua)
    }

    fn encode_16(opcode: Opcode, lba: u64, blocks: u32, fua: bool) -> [u8; 16] {
        let mut out = Vec::with_capacity(16);
        out.put_u8(opcode.0);
        out.put_u8(u8::from(fua) << 3);
        out.put_u64(lba);
        out.put_u32(blocks);
        out.put_zeros(2);
        <[u8; 16]>::try_from(out).unwrap_or_default()
    }

    /// READ(10) (SBC-3 5.7), for devices without 16-byte CDBs.
    pub fn read_10(lba: u32, blocks: u16) -> [u8; 10] {
        Self::encode_10(Opcode::READ_10, lba, blocks)
    }

    /// WRITE(10) (SBC-3 5.25).
    pub fn write_10(lba: u32, blocks: u16) -> [u8; 10] {
        Self::encode_10(Opcode::WRITE_10, lba, blocks)
    }

    fn encode_10(opcode: Opcode, lba: u32, blocks: u16) -> [u8; 10] {
        let [a, b, c, d] = lba.to_be_bytes();
        let [n0, n1] = blocks.to_be_bytes();
        [opcode.0, 0, a, b, c, d, 0, n0, n1, 0]
    }
}

/// What VERIFY compares (BYTCHK, SBC-3 Table 55).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteCheck {
    /// BYTCHK 0: verify the medium only, no data-out.
    Medium,
    /// BYTCHK 1: compare the data-out buffer with the medium.
    Compare,
}

/// Byte 1, LBA, length and the CDB offset of the length field of the 10/12/16-byte CDBs that
/// share the READ/WRITE layout without a 6-byte form (VERIFY, WRITE AND VERIFY): 10 has a
/// 4-byte LBA and a 2-byte length at 7, 12 a 4-byte length at 6, 16 an 8-byte LBA and a 4-byte
/// length at 10. `opcodes` are the 10, 12 and 16-byte opcodes.
fn lba_and_length(cdb: &[u8], opcodes: [Opcode; 3]) -> Result<(u8, u64, u32, u8), DecodeError> {
    let opcode = Opcode(*cdb.first().ok_or_else(|| invalid(0))?);
    if opcode == opcodes[0] {
        let [_, b1, l0, l1, l2, l3, _group, n0, n1, ctl] = fixed::<10>(cdb)?;
        control(ctl, 9)?;
        let len = u32::from(u16::from_be_bytes([n0, n1]));
        Ok((b1, u64::from(be32([l0, l1, l2, l3])), len, 7))
    } else if opcode == opcodes[1] {
        let [_, b1, l0, l1, l2, l3, n0, n1, n2, n3, _group, ctl] = fixed::<12>(cdb)?;
        control(ctl, 11)?;
        let lba = u64::from(be32([l0, l1, l2, l3]));
        Ok((b1, lba, be32([n0, n1, n2, n3]), 6))
    } else if opcode == opcodes[2] {
        let [_, b1, l0, l1, l2, l3, l4, l5, l6, l7, n0, n1, n2, n3, _group, ctl] =
            fixed::<16>(cdb)?;
        control(ctl, 15)?;
        let lba = be64([l0, l1, l2, l3, l4, l5, l6, l7]);
        Ok((b1, lba, be32([n0, n1, n2, n3]), 10))
    } else {
        Err(invalid(0))
    }
}

/// VERIFY (10/12/16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyCdb {
    pub lba: u64,
    /// VERIFICATION LENGTH in logical blocks; 0 verifies nothing and is not an error.
    pub blocks: u32,
    pub byte_check: ByteCheck,
    pub length_offset: u8,
}

impl VerifyCdb {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let (b1, lba, blocks, length_offset) = lba_and_length(
            cdb,
            [Opcode::VERIFY_10, Opcode::VERIFY_12, Opcode::VERIFY_16],
        )?;
        protect(b1)?;
        Ok(Self {
            lba,
            blocks,
            byte_check: byte_check(b1)?,
            length_offset,
        })
    }
}

/// The BYTCHK field of VERIFY and WRITE AND VERIFY (byte 1 bits 2:1). SBC-3 has a one-bit
/// BYTCHK (bit 1) with bit 2 reserved; SBC-4 made bits 2:1 a field whose 10b is reserved and
/// whose 11b (VERIFY only: one block against all) we do not support: both are 24/00 at
/// byte 1 bit 2.
fn byte_check(b1: u8) -> Result<ByteCheck, DecodeError> {
    match (b1 >> 1) & 0x03 {
        0 => Ok(ByteCheck::Medium),
        1 => Ok(ByteCheck::Compare),
        _ => Err(invalid_bit(1, 2)),
    }
}

/// WRITE AND VERIFY (10/12/16) (SBC-3 5.29-5.31): write the data-out, then verify the
/// medium (BYTCHK 0) or compare it with the data-out (BYTCHK 1, MISCOMPARE 0E/1D/00 with
/// the offset of the first differing byte in INFORMATION).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteVerifyCdb {
    pub lba: u64,
    /// TRANSFER LENGTH in logical blocks.
    pub blocks: u32,
    pub byte_check: ByteCheck,
    pub dpo: bool,
    /// CDB byte of the TRANSFER LENGTH field, for field pointers.
    pub length_offset: u8,
}

impl WriteVerifyCdb {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let (b1, lba, blocks, length_offset) = lba_and_length(
            cdb,
            [
                Opcode::WRITE_AND_VERIFY_10,
                Opcode::WRITE_AND_VERIFY_12,
                Opcode::WRITE_AND_VERIFY_16,
            ],
        )?;
        protect(b1)?;
        Ok(Self {
            lba,
            blocks,
            byte_check: byte_check(b1)?,
            dpo: b1 & 0x10 != 0,
            length_offset,
        })
    }

    /// The WRITE this command starts with.
    pub fn write(&self) -> ReadWriteCdb {
        ReadWriteCdb {
            write: true,
            lba: self.lba,
            blocks: self.blocks,
            fua: false,
            dpo: self.dpo,
            length_offset: self.length_offset,
        }
    }
}

/// SYNCHRONIZE CACHE (10/16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynchronizeCacheCdb {
    pub lba: u64,
    /// NUMBER OF LOGICAL BLOCKS; 0 = through the last logical block.
    pub blocks: u32,
    pub immed: bool,
}

impl SynchronizeCacheCdb {
    /// SYNCHRONIZE CACHE(10) of the whole medium (LBA 0, NUMBER OF LOGICAL BLOCKS 0), not
    /// immediate.
    pub fn whole_10() -> [u8; 10] {
        [Opcode::SYNCHRONIZE_CACHE_10.0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    }

    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let opcode = Opcode(*cdb.first().ok_or_else(|| invalid(0))?);
        match opcode {
            Opcode::SYNCHRONIZE_CACHE_10 => {
                let [_, b1, l0, l1, l2, l3, _group, n0, n1, ctl] = fixed::<10>(cdb)?;
                control(ctl, 9)?;
                Ok(Self {
                    lba: u64::from(be32([l0, l1, l2, l3])),
                    blocks: u32::from(u16::from_be_bytes([n0, n1])),
                    immed: b1 & 0x02 != 0,
                })
            }
            Opcode::SYNCHRONIZE_CACHE_16 => {
                let [_, b1, l0, l1, l2, l3, l4, l5, l6, l7, n0, n1, n2, n3, _group, ctl] =
                    fixed::<16>(cdb)?;
                control(ctl, 15)?;
                Ok(Self {
                    lba: be64([l0, l1, l2, l3, l4, l5, l6, l7]),
                    blocks: be32([n0, n1, n2, n3]),
                    immed: b1 & 0x02 != 0,
                })
            }
            _ => Err(invalid(0)),
        }
    }
}

/// Checks an access of `blocks` blocks at `lba` against a medium of `capacity` blocks:
/// LOGICAL BLOCK ADDRESS OUT OF RANGE (21/00) when it ends past the last block (SBC-3 4.5;
/// the LIO and SCST rule: a zero-length access at LBA == capacity is in range).
pub fn check_range(lba: u64, blocks: u64, capacity: u64) -> Result<(), Sense> {
    match lba.checked_add(blocks) {
        Some(end) if end <= capacity => Ok(()),
        _ => Err(Sense::illegal_request(
            Asc::LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE,
        )),
    }
}

/// READ CAPACITY(10) parameter data (SBC-3 5.10.2, Table 39): the last LBA, FFFFFFFFh
/// when it does not fit in 32 bits (use READ CAPACITY(16)), and the block length.
pub fn read_capacity_10_data(blocks: u64, block_size: u32) -> [u8; 8] {
    let last = u32::try_from(blocks.saturating_sub(1)).unwrap_or(u32::MAX);
    let [a, b, c, d] = last.to_be_bytes();
    let [e, f, g, h] = block_size.to_be_bytes();
    [a, b, c, d, e, f, g, h]
}

/// READ CAPACITY(16) parameter data (SBC-3 5.11.2, Table 41), 32 bytes: no protection,
/// `physical_exponent` = LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT, LOWEST ALIGNED LBA 0;
/// with `thin`, LBPME (logical block provisioning management enabled) and LBPRZ as the
/// [`super::sbc_provisioning::Provisioned`] says.
pub fn read_capacity_16_data(
    blocks: u64,
    block_size: u32,
    physical_exponent: u8,
    thin: Option<super::sbc_provisioning::Provisioned>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.put_u64(blocks.saturating_sub(1));
    out.put_u32(block_size);
    out.put_u8(0);
    out.put_u8(physical_exponent & 0x0f);
    out.put_u8(thin.map_or(0, |t| 0x80 | (u8::from(t.reads_zeros) << 6)));
    out.put_zeros(17);
    out
}

/// READ CAPACITY(16) (SERVICE ACTION IN(16), service action 10h) asking for the 32 bytes of
/// [`read_capacity_16_data`].
pub const READ_CAPACITY_16_CDB: [u8; 16] = [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0];

/// READ CAPACITY(16) parameter data as an initiator reads it: (blocks, block length), or
/// None when it is shorter than its first 12 bytes or the last LBA is 2^64 - 1.
pub fn decode_read_capacity_16_data(data: &[u8]) -> Option<(u64, u32)> {
    let last = u64::from_be_bytes(data.get(..8)?.try_into().ok()?);
    let block_length = u32::from_be_bytes(data.get(8..12)?.try_into().ok()?);
    Some((last.checked_add(1)?, block_length))
}

/// READ CAPACITY(10): validates the CDB (SBC-3 5.10.1: PMI = 0 needs LBA 0).
pub fn decode_read_capacity_10(cdb: &[u8]) -> Result<(), DecodeError> {
    let [_, _, l0, l1, l2, l3, _, _, b8, ctl] = fixed::<10>(cdb)?;
    control(ctl, 9)?;
    if b8 & 0x01 == 0 && be32([l0, l1, l2, l3]) != 0 {
        return Err(invalid(2));
    }
    Ok(())
}

/// READ CAPACITY(16) (SERVICE ACTION IN(16) / 10h): validates the CDB and returns the
/// ALLOCATION LENGTH (SBC-3 5.11.1).
pub fn decode_read_capacity_16(cdb: &[u8]) -> Result<u32, DecodeError> {
    let [_, b1, l0, l1, l2, l3, l4, l5, l6, l7, a0, a1, a2, a3, b14, ctl] = fixed::<16>(cdb)?;
    control(ctl, 15)?;
    if b1 & 0x1f != SA_READ_CAPACITY_16 {
        return Err(invalid_bit(1, 4));
    }
    if b14 & 0x01 == 0 && be64([l0, l1, l2, l3, l4, l5, l6, l7]) != 0 {
        return Err(invalid(2));
    }
    Ok(be32([a0, a1, a2, a3]))
}

/// MODE SENSE(6) or (10) (SPC-3 6.9, 6.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeSenseCdb {
    /// MODE SENSE(10) rather than (6).
    pub ten: bool,
    /// DBD: no block descriptor.
    pub dbd: bool,
    /// LLBAA (10 only): a long LBA block descriptor is allowed.
    pub llbaa: bool,
    /// PAGE CONTROL: 0 current, 1 changeable, 2 default, 3 saved.
    pub page_control: u8,
    pub page_code: u8,
    pub subpage_code: u8,
    pub allocation_length: u16,
}

impl ModeSenseCdb {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        match cdb.first().copied().map(Opcode) {
            Some(Opcode::MODE_SENSE_6) => {
                let [_, b1, b2, subpage_code, alloc, ctl] = fixed::<6>(cdb)?;
                control(ctl, 5)?;
                Ok(Self {
                    ten: false,
                    dbd: b1 & 0x08 != 0,
                    llbaa: false,
                    page_control: b2 >> 6,
                    page_code: b2 & 0x3f,
                    subpage_code,
                    allocation_length: u16::from(alloc),
                })
            }
            Some(Opcode::MODE_SENSE_10) => {
                let [_, b1, b2, subpage_code, _, _, _, a0, a1, ctl] = fixed::<10>(cdb)?;
                control(ctl, 9)?;
                Ok(Self {
                    ten: true,
                    dbd: b1 & 0x08 != 0,
                    llbaa: b1 & 0x10 != 0,
                    page_control: b2 >> 6,
                    page_code: b2 & 0x3f,
                    subpage_code,
                    allocation_length: u16::from_be_bytes([a0, a1]),
                })
            }
            _ => Err(invalid(0)),
        }
    }

    /// MODE SENSE(6), whatever `ten` says; an ALLOCATION LENGTH over 255 is cut to 255 (the
    /// field has one byte).
    pub fn encode6(&self) -> [u8; 6] {
        [
            Opcode::MODE_SENSE_6.0,
            u8::from(self.dbd) << 3,
            (self.page_control << 6) | (self.page_code & 0x3f),
            self.subpage_code,
            self.allocation_length.min(255) as u8,
            0,
        ]
    }
}

/// The MODE SENSE parameter data (untruncated): header, block descriptor unless DBD, then
/// the Caching (08h) and Control (0Ah, SPC-4 7.5.8) pages, or both for 3Fh
/// ([`DiskModeParameters::page`]). PAGE CONTROL 11b (saved) is SAVING PARAMETERS NOT
/// SUPPORTED (39/00).
pub fn mode_sense_data(cdb: &ModeSenseCdb, params: &DiskModeParameters) -> Result<Vec<u8>, Sense> {
    if cdb.page_control == 3 {
        return Err(Sense::illegal_request(Asc::SAVING_PARAMETERS_NOT_SUPPORTED));
    }
    let values = match cdb.page_control {
        0 => PageValues::Current,
        1 => PageValues::Changeable,
        _ => PageValues::Default,
    };
    let pages: &[u8] = match cdb.page_code {
        mode_page::CACHING => &[mode_page::CACHING],
        mode_page::CONTROL => &[mode_page::CONTROL],
        mode_page::ALL => &[mode_page::CACHING, mode_page::CONTROL],
        _ => return Err(Sense::from(invalid_bit(2, 5))),
    };
    if cdb.subpage_code != 0 && cdb.subpage_code != 0xff {
        return Err(Sense::from(invalid(3)));
    }
    let mut body = Vec::new();
    for &page in pages {
        body.extend(params.page(page, values).unwrap_or_default());
    }
    let long = cdb.ten && cdb.llbaa;
    let mut descriptor = Vec::new();
    if !cdb.dbd {
        if long {
            descriptor.put_u64(params.blocks);
            descriptor.put_u32(0);
            descriptor.put_u32(params.block_size);
        } else {
            descriptor.put_u32(u32::try_from(params.blocks).unwrap_or(u32::MAX));
            descriptor.put_u8(0);
            descriptor.put_u24(params.block_size);
        }
    }
    let device_specific = params.device_specific();
    let mut out = Vec::with_capacity(8 + descriptor.len() + body.len());
    if cdb.ten {
        let len = 8 + descriptor.len() + body.len() - 2;
        out.put_u16(u16::try_from(len).unwrap_or(u16::MAX));
        out.put_u8(0);
        out.put_u8(device_specific);
        out.put_u8(u8::from(long));
        out.put_u8(0);
        out.put_u16(u16::try_from(descriptor.len()).unwrap_or(0));
    } else {
        let len = 4 + descriptor.len() + body.len() - 1;
        out.put_u8(u8::try_from(len).unwrap_or(u8::MAX));
        out.put_u8(0);
        out.put_u8(device_specific);
        out.put_u8(u8::try_from(descriptor.len()).unwrap_or(0));
    }
    out.extend_from_slice(&descriptor);
    out.extend_from_slice(&body);
    Ok(out)
}

/// One supported command, with its CDB USAGE DATA (SPC-3 6.23.3): byte 0 the operation
/// code, the service action where the CDB carries it, and elsewhere a 1 for every bit the
/// device server evaluates. Its length is the CDB length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandUsage {
    pub opcode: u8,
    pub service_action: Option<u16>,
    pub usage: &'static [u8],
}

/// REPORT SUPPORTED OPERATION CODES CDB (SPC-3 6.23.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportOpcodesCdb {
    /// REPORTING OPTIONS: 0 all commands, 1 one command (no service action), 2 one command
    /// with a service action.
    pub reporting_options: u8,
    /// RCTD (SPC-4 6.35.1): return a command timeouts descriptor with each command.
    pub rctd: bool,
    pub requested_opcode: u8,
    pub requested_service_action: u16,
    pub allocation_length: u32,
}

impl ReportOpcodesCdb {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, b2, op, s0, s1, a0, a1, a2, a3, _, ctl] = fixed::<12>(cdb)?;
        control(ctl, 11)?;
        if b1 & 0x1f != SA_REPORT_SUPPORTED_OPERATION_CODES {
            return Err(invalid_bit(1, 4));
        }
        let rctd = b2 & 0x80 != 0;
        let reporting_options = b2 & 0x07;
        if reporting_options > 2 || b2 & 0x78 != 0 {
            return Err(invalid_bit(2, 2));
        }
        Ok(Self {
            reporting_options,
            rctd,
            requested_opcode: op,
            requested_service_action: u16::from_be_bytes([s0, s1]),
            allocation_length: be32([a0, a1, a2, a3]),
        })
    }

    /// The parameter data (untruncated). All commands (SPC-3 Table 190): COMMAND DATA
    /// LENGTH, then an 8-byte descriptor per command (SERVACTV where a service action
    /// applies). One command (Table 192): SUPPORT 011b with the CDB USAGE DATA, or 001b
    /// (not supported) with CDB SIZE 0. Asking for an opcode with service actions without
    /// one (option 1), or for a service action of an opcode without them (option 2), is
    /// INVALID FIELD IN CDB on REPORTING OPTIONS. With RCTD (SPC-4) every descriptor has
    /// CTDP set and is followed by a [command timeouts descriptor](COMMAND_TIMEOUTS).
    pub fn response(&self, table: &[CommandUsage]) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        if self.reporting_options == 0 {
            out.put_u32(0);
            for c in table {
                out.put_u8(c.opcode);
                out.put_u8(0);
                out.put_u16(c.service_action.unwrap_or(0));
                out.put_u8(0);
                out.put_u8((u8::from(self.rctd) << 1) | u8::from(c.service_action.is_some()));
                out.put_u16(u16::try_from(c.usage.len()).unwrap_or(0));
                if self.rctd {
                    out.extend_from_slice(&COMMAND_TIMEOUTS);
                }
            }
            let len = u32::try_from(out.len() - 4).unwrap_or(u32::MAX);
            if let Some(head) = out.get_mut(..4) {
                head.copy_from_slice(&len.to_be_bytes());
            }
            return Ok(out);
        }
        let mut same_opcode = table.iter().filter(|c| c.opcode == self.requested_opcode);
        let has_service_actions = same_opcode.clone().any(|c| c.service_action.is_some());
        let found = if self.reporting_options == 1 {
            if has_service_actions {
                return Err(invalid_bit(2, 2));
            }
            same_opcode.next()
        } else {
            if same_opcode.clone().any(|c| c.service_action.is_none()) {
                return Err(invalid_bit(2, 2));
            }
            same_opcode.find(|c| c.service_action == Some(self.requested_service_action))
        };
        out.put_u8(0);
        match found {
            Some(c) => {
                out.put_u8((u8::from(self.rctd) << 7) | 0x03);
                out.put_u16(u16::try_from(c.usage.len()).unwrap_or(0));
                out.extend_from_slice(c.usage);
                if self.rctd {
                    out.extend_from_slice(&COMMAND_TIMEOUTS);
                }
            }
            None => {
                out.put_u8(0x01);
                out.put_u16(0);
            }
        }
        Ok(out)
    }
}

/// The command timeouts descriptor (SPC-4 Table 253) we return for every command:
/// DESCRIPTOR LENGTH 000Ah, COMMAND SPECIFIC 0, and NOMINAL COMMAND PROCESSING TIMEOUT and
/// RECOMMENDED COMMAND TIMEOUT both 0 ("not specified"): a command's time depends on the
/// backing file (and, for EXTENDED COPY, on other devices), so we promise no bound.
pub const COMMAND_TIMEOUTS: [u8; 12] = [0, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

#[cfg(test)]
#[path = "sbc_tests.rs"]
mod tests;
