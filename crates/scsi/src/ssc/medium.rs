//! The small commands of the drive and its medium: READ BLOCK LIMITS, REWIND, ERASE(6),
//! LOAD UNLOAD, PREVENT ALLOW MEDIUM REMOVAL and REQUEST SENSE (SSC-3, SPC-3).

use super::{cdb_bytes, invalid_cdb, reserved, MAX_BLOCK_LENGTH_LIMIT};
use crate::error::DecodeError;

/// READ BLOCK LIMITS data (SSC-3 READ BLOCK LIMITS data): GRANULARITY 0, MAXIMUM and MINIMUM BLOCK
/// LENGTH LIMIT.
pub fn block_limits(max_block_length: u32, min_block_length: u16) -> [u8; 6] {
    let [_, a, b, c] = max_block_length.min(MAX_BLOCK_LENGTH_LIMIT).to_be_bytes();
    let [d, e] = min_block_length.to_be_bytes();
    [0, a, b, c, d, e]
}

/// READ BLOCK LIMITS (SSC-3): the CDB an initiator sends for the limits.
pub const READ_BLOCK_LIMITS_CDB: [u8; 6] = [0x05, 0, 0, 0, 0, 0];

/// READ BLOCK LIMITS data as an initiator reads it: (MAXIMUM BLOCK LENGTH LIMIT, MINIMUM
/// BLOCK LENGTH LIMIT), or None when shorter than its 6 bytes.
pub fn decode_block_limits(data: &[u8]) -> Option<(u32, u16)> {
    let [_, a, b, c, d, e] = *data.get(..6)? else {
        return None;
    };
    Some((u32::from_be_bytes([0, a, b, c]), u16::from_be_bytes([d, e])))
}

/// READ BLOCK LIMITS CDB: byte 1 (MLOI in SSC-4) must be zero.
pub fn decode_read_block_limits(cdb: &[u8]) -> Result<(), DecodeError> {
    let [_, b1, _, _, _, _] = cdb_bytes::<6>(cdb)?;
    reserved(1, b1, 0xff)
}

/// REWIND (SSC-3 REWIND): IMMED in byte 1. Returns IMMED.
pub fn decode_rewind(cdb: &[u8]) -> Result<bool, DecodeError> {
    let [_, b1, _, _, _, _] = cdb_bytes::<6>(cdb)?;
    reserved(1, b1, 0xfe)?;
    Ok(b1 & 0x01 != 0)
}

/// ERASE(6) (SSC-3 ERASE(6)): LONG byte 1 bit 0, IMMED bit 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Erase6 {
    pub long: bool,
    pub immediate: bool,
}

impl Erase6 {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, _, _, _, _] = cdb_bytes::<6>(cdb)?;
        reserved(1, b1, 0xfc)?;
        Ok(Self {
            long: b1 & 0x01 != 0,
            immediate: b1 & 0x02 != 0,
        })
    }
}

/// LOAD UNLOAD (SSC-3 LOAD UNLOAD): IMMED byte 1 bit 0; HOLD, EOT, RETEN, LOAD in byte 4 bits 3-0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadUnload {
    pub immediate: bool,
    pub hold: bool,
    pub eot: bool,
    pub retension: bool,
    pub load: bool,
}

impl LoadUnload {
    /// LOAD=1 with EOT=1 is 24/00 at byte 4 bit 2 (SSC-3: the combination is invalid).
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, _, _, b4, _] = cdb_bytes::<6>(cdb)?;
        reserved(1, b1, 0xfe)?;
        reserved(4, b4, 0xf0)?;
        let this = Self {
            immediate: b1 & 0x01 != 0,
            hold: b4 & 0x08 != 0,
            eot: b4 & 0x04 != 0,
            retension: b4 & 0x02 != 0,
            load: b4 & 0x01 != 0,
        };
        if this.load && this.eot {
            return Err(invalid_cdb(4, 2));
        }
        Ok(this)
    }
}

/// PREVENT ALLOW MEDIUM REMOVAL (SPC-3 PREVENT ALLOW MEDIUM REMOVAL): PREVENT in byte 4 bits 1-0, 00b or 01b.
pub fn decode_prevent_allow(cdb: &[u8]) -> Result<bool, DecodeError> {
    let [_, _, _, _, b4, _] = cdb_bytes::<6>(cdb)?;
    reserved(4, b4, 0xfe)?;
    Ok(b4 & 0x01 != 0)
}

/// REQUEST SENSE (SPC-3 REQUEST SENSE): DESC in byte 1 bit 0, ALLOCATION LENGTH in byte 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestSense {
    pub descriptor_format: bool,
    pub allocation_length: u8,
}

impl RequestSense {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, _, _, b4, _] = cdb_bytes::<6>(cdb)?;
        reserved(1, b1, 0xfe)?;
        Ok(Self {
            descriptor_format: b1 & 0x01 != 0,
            allocation_length: b4,
        })
    }
}
