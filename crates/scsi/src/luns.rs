//! Logical unit numbers on the wire (SAM-3 4.9.7) and REPORT LUNS (SPC-3 6.21).
//!
//! ```text
//! REPORT LUNS CDB            parameter data
//!  0     A0h                  0-3   LUN LIST LENGTH (8 x the LUNs listed)
//!  2     SELECT REPORT        4-7   reserved
//!  6-9   ALLOCATION LENGTH    8-    one 8-byte LUN each
//!  11    CONTROL
//! ```

use super::error::{DecodeError, Reason};
use super::reader::Put;

/// The 8-byte LUN field for LUN `n`: peripheral device addressing below 256, flat space
/// addressing up to 16383.
pub fn lun_to_wire(n: u64) -> [u8; 8] {
    let mut out = [0u8; 8];
    if n < 256 {
        out[1] = n as u8;
    } else {
        out[0] = 0x40 | ((n >> 8) & 0x3f) as u8;
        out[1] = n as u8;
    }
    out
}

/// The LUN number an 8-byte LUN field addresses; `u64::MAX` (no such LUN) for anything
/// but single-level peripheral (bus 0) or flat space addressing.
pub fn lun_from_wire(lun: [u8; 8]) -> u64 {
    let [b0, b1, rest @ ..] = lun;
    if rest.iter().any(|&b| b != 0) {
        return u64::MAX;
    }
    match b0 >> 6 {
        0 if b0 == 0 => u64::from(b1),
        1 => (u64::from(b0 & 0x3f) << 8) | u64::from(b1),
        _ => u64::MAX,
    }
}

/// A decoded REPORT LUNS CDB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportLunsCdb {
    /// SELECT REPORT: 00h the logical units, 01h the well-known ones, 02h both.
    pub select_report: u8,
    pub allocation_length: u32,
}

impl ReportLunsCdb {
    /// Decodes the CDB. INVALID FIELD IN CDB at byte 0 for a CDB too short to hold the
    /// ALLOCATION LENGTH, at byte 2 for a SELECT REPORT above 02h, at byte 6 for an
    /// ALLOCATION LENGTH below 16 (SPC-3 6.21).
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let (Some(&select_report), Some(&[a, b, c, d])) = (cdb.get(2), cdb.get(6..10)) else {
            return Err(DecodeError::new(Reason::InvalidFieldInCdb, 0));
        };
        if select_report > 2 {
            return Err(DecodeError::new(Reason::InvalidFieldInCdb, 2));
        }
        let allocation_length = u32::from_be_bytes([a, b, c, d]);
        if allocation_length < 16 {
            return Err(DecodeError::new(Reason::InvalidFieldInCdb, 6));
        }
        Ok(Self {
            select_report,
            allocation_length,
        })
    }
}

/// REPORT LUNS parameter data listing `luns`, whole (the caller cuts it to the ALLOCATION
/// LENGTH).
pub fn report_luns_data(luns: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 8 * luns.len());
    out.put_u32(u32::try_from(8 * luns.len()).unwrap_or(u32::MAX));
    out.put_zeros(4);
    for &n in luns {
        out.extend_from_slice(&lun_to_wire(n));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luns_on_the_wire_both_ways() {
        assert_eq!(lun_to_wire(0), [0; 8]);
        assert_eq!(lun_to_wire(5), [0, 5, 0, 0, 0, 0, 0, 0]);
        assert_eq!(lun_to_wire(255), [0, 0xff, 0, 0, 0, 0, 0, 0]);
        assert_eq!(lun_to_wire(256), [0x41, 0x00, 0, 0, 0, 0, 0, 0]);
        assert_eq!(lun_to_wire(300), [0x41, 0x2c, 0, 0, 0, 0, 0, 0]);
        assert_eq!(lun_to_wire(16383), [0x7f, 0xff, 0, 0, 0, 0, 0, 0]);
        for n in [0, 1, 255, 256, 300, 16383] {
            assert_eq!(lun_from_wire(lun_to_wire(n)), n);
        }
        // Bus 1 of peripheral addressing, logical unit addressing, a second level.
        assert_eq!(lun_from_wire([0x01, 5, 0, 0, 0, 0, 0, 0]), u64::MAX);
        assert_eq!(lun_from_wire([0x80, 5, 0, 0, 0, 0, 0, 0]), u64::MAX);
        assert_eq!(lun_from_wire([0xc0, 0, 0, 0, 0, 0, 0, 0]), u64::MAX);
        assert_eq!(lun_from_wire([0, 5, 0, 1, 0, 0, 0, 0]), u64::MAX);
        assert_eq!(lun_from_wire([0, 5, 0, 0, 0, 0, 0, 1]), u64::MAX);
    }

    fn cdb(select: u8, alloc: u32) -> [u8; 12] {
        let mut c = [0u8; 12];
        c[0] = 0xa0;
        c[2] = select;
        c[6..10].copy_from_slice(&alloc.to_be_bytes());
        c
    }

    #[test]
    fn the_cdb_and_its_refusals() {
        assert_eq!(
            ReportLunsCdb::decode(&cdb(2, 0x0102_0304)),
            Ok(ReportLunsCdb {
                select_report: 2,
                allocation_length: 0x0102_0304
            })
        );
        assert_eq!(
            ReportLunsCdb::decode(&cdb(0, 16))
                .unwrap()
                .allocation_length,
            16
        );
        let refused = |c: &[u8]| {
            let e = ReportLunsCdb::decode(c).unwrap_err();
            (e.reason, e.offset, e.bit)
        };
        assert_eq!(refused(&cdb(3, 16)), (Reason::InvalidFieldInCdb, 2, None));
        assert_eq!(refused(&cdb(0, 15)), (Reason::InvalidFieldInCdb, 6, None));
        assert_eq!(
            refused(&cdb(0, 16)[..9]),
            (Reason::InvalidFieldInCdb, 0, None)
        );
    }

    #[test]
    fn parameter_data_lists_each_lun_in_eight_bytes() {
        assert_eq!(report_luns_data(&[]), [0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            report_luns_data(&[0, 300]),
            [
                0, 0, 0, 16, 0, 0, 0, 0, //
                0, 0, 0, 0, 0, 0, 0, 0, //
                0x41, 0x2c, 0, 0, 0, 0, 0, 0
            ]
        );
    }
}
