//! The EXTENDED COPY (LID1) CDB: SPC-3 6.3.1 Table 32.
//!
//! ```text
//!  0      83h
//!  1      bits 4-0 SERVICE ACTION (00h = LID1; reserved in SPC-3, LID4 is 01h in SPC-4)
//!  10-13  PARAMETER LIST LENGTH
//!  15     CONTROL
//! ```
//! A PARAMETER LIST LENGTH of 0 is not an error: nothing is copied and the command is GOOD.

use super::codes::Opcode;
use super::error::{DecodeError, Reason};
use super::reader::{Put, Reader};

/// TEST UNIT READY (SPC-3 6.33): six zero bytes.
pub const TEST_UNIT_READY: [u8; 6] = [0; 6];

/// A decoded EXTENDED COPY (LID1) CDB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtendedCopyCdb {
    pub parameter_list_length: u32,
    pub control: u8,
}

impl ExtendedCopyCdb {
    /// Decodes a 16-byte CDB. A service action other than 00h (e.g. LID4) is INVALID FIELD
    /// IN CDB at byte 1 bit 4.
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(cdb);
        if r.u8()? != Opcode::EXTENDED_COPY.0 {
            return Err(DecodeError::new(Reason::InvalidFieldInCdb, 0));
        }
        if r.u8()? & 0x1f != 0 {
            return Err(DecodeError::new(Reason::InvalidFieldInCdb, 1).with_bit(4));
        }
        r.skip(8)?;
        let parameter_list_length = r.u32()?;
        r.skip(1)?;
        let control = r.u8()?;
        Ok(Self {
            parameter_list_length,
            control,
        })
    }

    pub fn encode(&self) -> [u8; 16] {
        let mut out = Vec::with_capacity(16);
        out.put_u8(Opcode::EXTENDED_COPY.0);
        out.put_zeros(9);
        out.put_u32(self.parameter_list_length);
        out.put_u8(0);
        out.put_u8(self.control);
        let mut cdb = [0u8; 16];
        cdb.copy_from_slice(&out);
        cdb
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_service_action() {
        let cdb = ExtendedCopyCdb {
            parameter_list_length: 0x0102_0304,
            control: 0,
        };
        let bytes = cdb.encode();
        assert_eq!(bytes[10..14], [1, 2, 3, 4]);
        assert_eq!(ExtendedCopyCdb::decode(&bytes).unwrap(), cdb);
        let mut lid4 = bytes;
        lid4[1] = 0x01;
        let e = ExtendedCopyCdb::decode(&lid4).unwrap_err();
        assert_eq!(
            (e.reason, e.offset, e.bit),
            (Reason::InvalidFieldInCdb, 1, Some(4))
        );
        assert_eq!(
            ExtendedCopyCdb::decode(&bytes[..12]).unwrap_err().reason,
            Reason::Truncated
        );
    }
}
