//! LOG SENSE (SPC-4 6.6) as a tape drive answers it: the CDB, and log pages made of
//! parameters (SPC-4 7.3.2: a 4-byte page header, then PARAMETER CODE, control byte,
//! PARAMETER LENGTH and the value of each). The pages a library drive serves: 00h
//! (supported pages), 17h Volume Statistics (SSC-4 8.2.4: mounts and the partition records
//! of capacity) and 31h Tape Capacity (IBM LTO: remaining and maximum capacity of
//! partitions 0 and 1, in megabytes), which LTFS reads for a cartridge's capacity.

use super::error::{DecodeError, Reason};
use super::reader::Put;

/// Log page codes.
pub mod page {
    pub const SUPPORTED: u8 = 0x00;
    pub const VOLUME_STATISTICS: u8 = 0x17;
    pub const TAPE_CAPACITY: u8 = 0x31;
}

/// LOG SENSE CDB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogSense {
    /// PC: 0 threshold, 1 cumulative (current), 2 default threshold, 3 default cumulative.
    pub page_control: u8,
    pub page_code: u8,
    pub subpage_code: u8,
    pub parameter_pointer: u16,
    pub allocation_length: u16,
}

impl LogSense {
    /// SP (save parameters) and a subpage are refused (24/00): nothing is saved, and the
    /// pages have no subpages.
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let invalid = |byte, bit| DecodeError::new(Reason::InvalidFieldInCdb, byte).with_bit(bit);
        let [_, b1, b2, b3, _, p5, p6, a7, a8, ctl] = cdb
            .get(..10)
            .and_then(|s| <[u8; 10]>::try_from(s).ok())
            .ok_or_else(|| DecodeError::new(Reason::InvalidFieldInCdb, 0))?;
        if b1 & 0x01 != 0 {
            return Err(invalid(1, 0));
        }
        if b3 != 0 {
            return Err(invalid(3, 7));
        }
        if ctl & 0x05 != 0 {
            return Err(invalid(9, 2));
        }
        Ok(Self {
            page_control: b2 >> 6,
            page_code: b2 & 0x3f,
            subpage_code: b3,
            parameter_pointer: u16::from_be_bytes([p5, p6]),
            allocation_length: u16::from_be_bytes([a7, a8]),
        })
    }
}

/// One log parameter: its code and value (a binary list parameter, FORMAT AND LINKING 11b).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parameter {
    pub code: u16,
    pub value: Vec<u8>,
}

/// A log page: header and the parameters whose code is at least `pointer`, in order.
pub fn log_page(code: u8, parameters: &[Parameter], pointer: u16) -> Vec<u8> {
    let mut body = Vec::new();
    for p in parameters.iter().filter(|p| p.code >= pointer) {
        body.put_u16(p.code);
        body.put_u8(0x03);
        let n = p.value.len().min(255);
        body.put_u8(n as u8);
        body.extend_from_slice(p.value.get(..n).unwrap_or_default());
    }
    let mut out = Vec::with_capacity(4 + body.len());
    out.put_u8(code & 0x3f);
    out.put_u8(0);
    out.put_u16(u16::try_from(body.len()).unwrap_or(u16::MAX));
    out.extend_from_slice(&body);
    out
}

/// Page 00h: the page codes, ascending.
pub fn supported_pages(codes: &[u8]) -> Vec<u8> {
    let mut out = vec![page::SUPPORTED, 0];
    out.put_u16(codes.len() as u16);
    out.extend_from_slice(codes);
    out
}

/// A partition record of the Volume Statistics page (SSC-4 Table 102): a length byte (the
/// bytes after it), a reserved byte, PARTITION NUMBER and a 4-byte value.
pub fn partition_records(values: &[(u16, u32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 * values.len());
    for &(partition, value) in values {
        out.put_u8(7);
        out.put_u8(0);
        out.put_u16(partition);
        out.put_u32(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdb_and_pages_spc4_7_3() {
        // As LTFS sends it: PC 01b (current cumulative), page 17h, 65535 bytes.
        let c = LogSense::decode(&[0x4d, 0, 0x57, 0, 0, 0, 0, 0xff, 0xff, 0]).unwrap();
        assert_eq!(
            (c.page_control, c.page_code, c.allocation_length),
            (1, 0x17, 0xffff)
        );
        assert_eq!(
            LogSense::decode(&[0x4d, 1, 0x57, 0, 0, 0, 0, 0, 0, 0])
                .unwrap_err()
                .offset,
            1
        );
        assert_eq!(
            LogSense::decode(&[0x4d, 0, 0x57, 1, 0, 0, 0, 0, 0, 0])
                .unwrap_err()
                .offset,
            3
        );
        let p = log_page(
            0x31,
            &[
                Parameter {
                    code: 1,
                    value: vec![0, 0, 0, 7],
                },
                Parameter {
                    code: 3,
                    value: vec![0, 0, 0, 9],
                },
            ],
            2,
        );
        assert_eq!(p, [0x31, 0, 0, 8, 0, 3, 0x03, 4, 0, 0, 0, 9]);
        assert_eq!(
            supported_pages(&[0, 0x17, 0x31]),
            [0, 0, 0, 3, 0, 0x17, 0x31]
        );
        assert_eq!(
            partition_records(&[(0, 1), (1, 2)]),
            [7, 0, 0, 0, 0, 0, 0, 1, 7, 0, 0, 1, 0, 0, 0, 2]
        );
    }
}
