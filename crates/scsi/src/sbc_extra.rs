//! The rest of the SBC-3 (T10/1799-D r35) command set an emulated disk answers: COMPARE AND
//! WRITE (5.2), ORWRITE(16) (5.8), PRE-FETCH(10)/(16) (5.9-5.10), PREVENT ALLOW MEDIUM
//! REMOVAL (5.11), READ DEFECT DATA(10)/(12) (5.19-5.20), SANITIZE (5.30), START STOP UNIT
//! (5.25) and WRITE ATOMIC(16) (SBC-4 5.48). Pure CDB and parameter list decoders; a bad
//! field is INVALID FIELD IN CDB (or IN PARAMETER LIST) with its byte and bit.

use super::codes::Opcode;
use super::error::{DecodeError, Reason};
use super::reader::Put;
use super::sbc::{be32, be64, control, fixed, invalid, invalid_bit, protect, ReadWriteCdb};

/// PRE-FETCH(10) shares 34h with the stream devices' READ POSITION.
pub const PRE_FETCH_10: u8 = 0x34;

/// COMPARE AND WRITE (SBC-3 5.2): NUMBER OF LOGICAL BLOCKS blocks are compared with the
/// first half of the data-out buffer and, if equal, written from the second half.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompareAndWriteCdb {
    pub lba: u64,
    pub blocks: u8,
    pub fua: bool,
    pub dpo: bool,
}

impl CompareAndWriteCdb {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, l0, l1, l2, l3, l4, l5, l6, l7, _, _, _, blocks, _group, ctl] =
            fixed::<16>(cdb)?;
        control(ctl, 15)?;
        protect(b1)?;
        Ok(Self {
            lba: be64([l0, l1, l2, l3, l4, l5, l6, l7]),
            blocks,
            fua: b1 & 0x08 != 0,
            dpo: b1 & 0x10 != 0,
        })
    }
}

/// ORWRITE(16) (SBC-3 5.8): the data-out is ORed into the blocks, as a WRITE(16) would
/// transfer it (ORPROTECT 0, no BMOP/PREVIOUS GENERATION PROCESSING of ORWRITE(32)).
pub fn decode_orwrite_16(cdb: &[u8]) -> Result<ReadWriteCdb, DecodeError> {
    let [_, b1, l0, l1, l2, l3, l4, l5, l6, l7, n0, n1, n2, n3, _group, ctl] = fixed::<16>(cdb)?;
    control(ctl, 15)?;
    protect(b1)?;
    Ok(ReadWriteCdb {
        write: true,
        lba: be64([l0, l1, l2, l3, l4, l5, l6, l7]),
        blocks: be32([n0, n1, n2, n3]),
        fua: b1 & 0x08 != 0,
        dpo: b1 & 0x10 != 0,
        length_offset: 10,
    })
}

/// WRITE ATOMIC(16) (SBC-4 5.48): a WRITE(16) with a 2-byte TRANSFER LENGTH at byte 12 and an
/// ATOMIC BOUNDARY at byte 10, which this device server does not support (MAXIMUM ATOMIC
/// BOUNDARY SIZE 0): nonzero is INVALID FIELD IN CDB at byte 10.
pub fn decode_write_atomic_16(cdb: &[u8]) -> Result<ReadWriteCdb, DecodeError> {
    let [_, b1, l0, l1, l2, l3, l4, l5, l6, l7, a0, a1, n0, n1, _group, ctl] = fixed::<16>(cdb)?;
    control(ctl, 15)?;
    protect(b1)?;
    if a0 != 0 || a1 != 0 {
        return Err(invalid(10));
    }
    Ok(ReadWriteCdb {
        write: true,
        lba: be64([l0, l1, l2, l3, l4, l5, l6, l7]),
        blocks: u32::from(u16::from_be_bytes([n0, n1])),
        fua: b1 & 0x08 != 0,
        dpo: b1 & 0x10 != 0,
        length_offset: 12,
    })
}

/// PRE-FETCH(10) or (16): the range to bring into the cache, and IMMED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefetchCdb {
    pub lba: u64,
    /// PREFETCH LENGTH; 0 = through the last logical block.
    pub blocks: u32,
    pub immed: bool,
}

impl PrefetchCdb {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        match cdb.first().copied() {
            Some(PRE_FETCH_10) => {
                let [_, b1, l0, l1, l2, l3, _group, n0, n1, ctl] = fixed::<10>(cdb)?;
                control(ctl, 9)?;
                Ok(Self {
                    lba: u64::from(be32([l0, l1, l2, l3])),
                    blocks: u32::from(u16::from_be_bytes([n0, n1])),
                    immed: b1 & 0x02 != 0,
                })
            }
            Some(op) if Opcode(op) == Opcode::PRE_FETCH_16 => {
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

/// START STOP UNIT (SBC-3 5.25).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartStopUnitCdb {
    pub immed: bool,
    /// POWER CONDITION: 0 (START_VALID: START and LOEJ apply), else they are ignored.
    pub power_condition: u8,
    pub load_eject: bool,
    pub start: bool,
}

impl StartStopUnitCdb {
    /// Every POWER CONDITION is taken (this device server has no power conditions and
    /// ignores them, as tgt does and libiscsi's StartStopUnit.PwrCnd expects).
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, _, _, b4, ctl] = fixed::<6>(cdb)?;
        control(ctl, 5)?;
        let power_condition = b4 >> 4;
        Ok(Self {
            immed: b1 & 0x01 != 0,
            power_condition,
            load_eject: b4 & 0x02 != 0,
            start: b4 & 0x01 != 0,
        })
    }
}

/// PREVENT ALLOW MEDIUM REMOVAL (SBC-3 5.11): `true` to prevent. PREVENT 10b and 11b
/// (obsolete, medium changers) are INVALID FIELD IN CDB at byte 4.
pub fn decode_prevent_allow(cdb: &[u8]) -> Result<bool, DecodeError> {
    let [_, _, _, _, b4, ctl] = fixed::<6>(cdb)?;
    control(ctl, 5)?;
    match b4 & 0x03 {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(invalid_bit(4, 1)),
    }
}

/// READ DEFECT DATA(10) or (12) (SBC-3 5.19-5.20).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadDefectDataCdb {
    pub twelve: bool,
    pub primary: bool,
    pub grown: bool,
    /// DEFECT LIST FORMAT.
    pub format: u8,
    pub allocation_length: u32,
}

impl ReadDefectDataCdb {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let (twelve, flags, allocation_length) = match cdb.first().copied().map(Opcode) {
            Some(Opcode::READ_DEFECT_DATA_10) => {
                let [_, _, b2, _, _, _, _, a0, a1, ctl] = fixed::<10>(cdb)?;
                control(ctl, 9)?;
                (false, b2, u32::from(u16::from_be_bytes([a0, a1])))
            }
            Some(Opcode::READ_DEFECT_DATA_12) => {
                let [_, b1, _, _, _, _, a0, a1, a2, a3, _, ctl] = fixed::<12>(cdb)?;
                control(ctl, 11)?;
                (true, b1, be32([a0, a1, a2, a3]))
            }
            _ => return Err(invalid(0)),
        };
        Ok(Self {
            twelve,
            primary: flags & 0x10 != 0,
            grown: flags & 0x08 != 0,
            format: flags & 0x07,
            allocation_length,
        })
    }

    /// The parameter data of a medium without defects: the header, with the lists asked
    /// for reported valid (and empty) in the format asked for.
    pub fn empty_list(&self) -> Vec<u8> {
        let flags = (u8::from(self.primary) << 4) | (u8::from(self.grown) << 3) | self.format;
        let mut out = Vec::with_capacity(8);
        out.put_u8(0);
        out.put_u8(flags);
        if self.twelve {
            out.put_u16(0); // GENERATION CODE: not supported
            out.put_u32(0);
        } else {
            out.put_u16(0);
        }
        out
    }
}

/// SANITIZE service actions (SBC-3 Table 88) this device server performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SanitizeAction {
    Overwrite,
    BlockErase,
    ExitFailureMode,
}

/// SANITIZE (SBC-3 5.30).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SanitizeCdb {
    pub immed: bool,
    pub ause: bool,
    pub action: SanitizeAction,
    pub parameter_list_length: u16,
}

impl SanitizeCdb {
    /// Decodes the CDB. CRYPTOGRAPHIC ERASE (an image has no key to change), reserved
    /// service actions and reserved bits are INVALID FIELD IN CDB at their byte; a PARAMETER LIST LENGTH other
    /// than 0 for BLOCK ERASE and EXIT FAILURE MODE, and one that cannot hold an OVERWRITE
    /// list (4 bytes or less, or more than `block_size` + 4), at byte 7.
    pub fn decode(cdb: &[u8], block_size: u32) -> Result<Self, DecodeError> {
        let [_, b1, b2, b3, b4, b5, b6, p0, p1, ctl] = fixed::<10>(cdb)?;
        control(ctl, 9)?;
        // A destructive command: reserved bits are refused, not ignored (byte 1 bit 6,
        // bytes 2-6), as libiscsi's Sanitize.*Reserved tests ask.
        if b1 & 0x40 != 0 {
            return Err(invalid_bit(1, 6));
        }
        if let Some(i) = [b2, b3, b4, b5, b6].iter().position(|&b| b != 0) {
            return Err(invalid(2 + i));
        }
        let action = match b1 & 0x1f {
            0x01 => SanitizeAction::Overwrite,
            0x02 => SanitizeAction::BlockErase,
            0x1f => SanitizeAction::ExitFailureMode,
            _ => return Err(invalid_bit(1, 4)),
        };
        let parameter_list_length = u16::from_be_bytes([p0, p1]);
        let length_ok = match action {
            SanitizeAction::Overwrite => {
                parameter_list_length > 4 && u32::from(parameter_list_length) <= block_size + 4
            }
            _ => parameter_list_length == 0,
        };
        if !length_ok {
            return Err(invalid(7));
        }
        Ok(Self {
            immed: b1 & 0x80 != 0,
            ause: b1 & 0x20 != 0,
            action,
            parameter_list_length,
        })
    }
}

/// The OVERWRITE parameter list (SBC-3 Table 90).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverwriteParameters {
    /// INVERT: the pattern is inverted between passes.
    pub invert: bool,
    pub count: u8,
    pub pattern: Vec<u8>,
}

impl OverwriteParameters {
    /// OVERWRITE COUNT 0 or TEST not 00b (byte 0), an INITIALIZATION PATTERN LENGTH of 0,
    /// over `block_size`, or not the rest of the list (byte 2) are INVALID FIELD IN PARAMETER
    /// LIST; fewer bytes than the CDB promised is PARAMETER LIST LENGTH ERROR.
    pub fn decode(data: &[u8], cdb_length: u16, block_size: u32) -> Result<Self, DecodeError> {
        let list = data
            .get(..usize::from(cdb_length))
            .ok_or_else(|| DecodeError::new(Reason::ParameterListLength, 0))?;
        let [b0, _, l0, l1] = list
            .get(..4)
            .and_then(|h| <[u8; 4]>::try_from(h).ok())
            .ok_or_else(|| DecodeError::new(Reason::ParameterListLength, 0))?;
        let count = b0 & 0x1f;
        if count == 0 {
            return Err(DecodeError::invalid_bit(0, 4));
        }
        if b0 & 0x60 != 0 {
            return Err(DecodeError::invalid_bit(0, 6));
        }
        let length = usize::from(u16::from_be_bytes([l0, l1]));
        let block = usize::try_from(block_size).unwrap_or(usize::MAX);
        if length == 0 || length > block || length + 4 != list.len() {
            return Err(DecodeError::invalid(2));
        }
        Ok(Self {
            invert: b0 & 0x80 != 0,
            count,
            pattern: list.get(4..).unwrap_or_default().to_vec(),
        })
    }
}

/// Sense-key-specific PROGRESS INDICATION (SPC-4 4.5.2.4.4) of `done` out of `total`, as the
/// 16-bit fraction of 65536.
pub fn progress(done: u64, total: u64) -> u16 {
    if total == 0 {
        return 0;
    }
    u16::try_from(u128::from(done.min(total)) * 65536 / u128::from(total)).unwrap_or(u16::MAX)
}

#[cfg(test)]
#[path = "sbc_extra_tests.rs"]
mod tests;
