//! The data transfer commands: READ(6), WRITE(6) and WRITE FILEMARKS(6) (SSC-3), and the
//! residue a short or long read reports.

use super::{be24, cdb_bytes, invalid_cdb, reserved};
use crate::error::DecodeError;

/// READ(6) (SSC-3 READ(6)): FIXED and SILI in byte 1, TRANSFER LENGTH in bytes 2-4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Read6 {
    pub fixed: bool,
    /// Suppress incorrect-length indication (variable mode only).
    pub sili: bool,
    /// Blocks when `fixed`, else bytes.
    pub transfer_length: u32,
}

impl Read6 {
    /// SILI together with FIXED is 24/00 at byte 1 bit 1 (SSC-3 READ(6): SILI=1 with
    /// FIXED=1 is an invalid field).
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, l2, l3, l4, _] = cdb_bytes::<6>(cdb)?;
        reserved(1, b1, 0xfc)?;
        let fixed = b1 & 0x01 != 0;
        let sili = b1 & 0x02 != 0;
        if fixed && sili {
            return Err(invalid_cdb(1, 1));
        }
        Ok(Self {
            fixed,
            sili,
            transfer_length: be24(l2, l3, l4),
        })
    }

    pub fn encode(&self) -> [u8; 6] {
        let [_, a, b, c] = self.transfer_length.to_be_bytes();
        [
            0x08,
            u8::from(self.fixed) | (u8::from(self.sili) << 1),
            a,
            b,
            c,
            0,
        ]
    }
}

/// WRITE(6) (SSC-3 WRITE(6)): FIXED in byte 1, TRANSFER LENGTH in bytes 2-4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Write6 {
    pub fixed: bool,
    /// Blocks when `fixed`, else bytes.
    pub transfer_length: u32,
}

impl Write6 {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, l2, l3, l4, _] = cdb_bytes::<6>(cdb)?;
        reserved(1, b1, 0xfe)?;
        Ok(Self {
            fixed: b1 & 0x01 != 0,
            transfer_length: be24(l2, l3, l4),
        })
    }

    pub fn encode(&self) -> [u8; 6] {
        let [_, a, b, c] = self.transfer_length.to_be_bytes();
        [0x0a, u8::from(self.fixed), a, b, c, 0]
    }
}

/// WRITE FILEMARKS(6) (SSC-3 WRITE FILEMARKS(6)): IMMED in byte 1, FILEMARK COUNT in bytes 2-4. WSMK
/// (setmarks, byte 1 bit 1) is not supported and is 24/00.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteFilemarks6 {
    pub immediate: bool,
    pub count: u32,
}

impl WriteFilemarks6 {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, c2, c3, c4, _] = cdb_bytes::<6>(cdb)?;
        reserved(1, b1, 0xfe)?;
        Ok(Self {
            immediate: b1 & 0x01 != 0,
            count: be24(c2, c3, c4),
        })
    }

    pub fn encode(&self) -> [u8; 6] {
        let [_, a, b, c] = self.count.to_be_bytes();
        [0x10, u8::from(self.immediate), a, b, c, 0]
    }
}

/// A residue as the 32-bit two's complement INFORMATION field carries it: `requested −
/// actual`, negative for an overlength record (SSC-3 READ(6), ILI).
pub fn signed_information(requested: u64, actual: u64) -> u64 {
    let diff = i128::from(requested) - i128::from(actual);
    let clamped = diff.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32;
    u64::from(clamped as u32)
}
