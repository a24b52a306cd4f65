//! REPORT DENSITY SUPPORT (SSC-3 7.7, SSC-4 7.9): the CDB and the density support data a
//! tape drive returns (4-byte header, 52-byte density support data block descriptors).

use super::error::{DecodeError, Reason};
use super::reader::Put;

/// Length of one density support data block descriptor.
pub const DESCRIPTOR_LEN: usize = 52;

/// REPORT DENSITY SUPPORT CDB: MEDIA (byte 1 bit 0) asks for the densities of the mounted
/// medium; MEDIUM TYPE (bit 1) for medium type descriptors instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportDensitySupport {
    pub media: bool,
    pub medium_type: bool,
    pub allocation_length: u16,
}

impl ReportDensitySupport {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let invalid = |byte, bit| DecodeError::new(Reason::InvalidFieldInCdb, byte).with_bit(bit);
        let [_, b1, b2, b3, b4, b5, b6, a7, a8, ctl] = cdb
            .get(..10)
            .and_then(|s| <[u8; 10]>::try_from(s).ok())
            .ok_or_else(|| DecodeError::new(Reason::InvalidFieldInCdb, 0))?;
        if b1 & 0xfc != 0 {
            return Err(invalid(1, 7 - (b1 & 0xfc).leading_zeros() as u8));
        }
        for (i, b) in [(2, b2), (3, b3), (4, b4), (5, b5), (6, b6)] {
            if b != 0 {
                return Err(invalid(i, 7 - b.leading_zeros() as u8));
            }
        }
        if ctl & 0x05 != 0 {
            return Err(invalid(9, if ctl & 0x04 != 0 { 2 } else { 0 }));
        }
        Ok(Self {
            media: b1 & 0x01 != 0,
            medium_type: b1 & 0x02 != 0,
            allocation_length: u16::from_be_bytes([a7, a8]),
        })
    }
}

/// One density support data block descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DensityDescriptor {
    pub primary_code: u8,
    pub secondary_code: u8,
    /// WRTOK: the drive writes this density.
    pub writable: bool,
    /// DUP: another descriptor reports the same density.
    pub duplicate: bool,
    /// DEFLT: the density the drive writes by default.
    pub default: bool,
    pub bits_per_mm: u32,
    /// MEDIA WIDTH in tenths of millimetres.
    pub media_width: u16,
    pub tracks: u16,
    /// CAPACITY in megabytes (10^6 bytes).
    pub capacity_mb: u32,
    pub organization: String,
    pub name: String,
    pub description: String,
}

impl DensityDescriptor {
    /// Encodes the 52 bytes, DLV=1 with DESCRIPTOR LENGTH 49 (SSC-4).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.primary_code);
        out.put_u8(self.secondary_code);
        out.put_u8(
            (u8::from(self.writable) << 7)
                | (u8::from(self.duplicate) << 6)
                | (u8::from(self.default) << 5)
                | 0x01,
        );
        out.put_u16((DESCRIPTOR_LEN - 3) as u16);
        out.put_u24(self.bits_per_mm.min(0xff_ffff));
        out.put_u16(self.media_width);
        out.put_u16(self.tracks);
        out.put_u32(self.capacity_mb);
        out.extend_from_slice(&super::inquiry::pad_ascii::<8>(&self.organization));
        out.extend_from_slice(&super::inquiry::pad_ascii::<8>(&self.name));
        out.extend_from_slice(&super::inquiry::pad_ascii::<20>(&self.description));
    }
}

/// Density support data: AVAILABLE DENSITY SUPPORT LENGTH (bytes after the field), two
/// reserved bytes, the descriptors.
pub fn density_support_data(descriptors: &[DensityDescriptor]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + DESCRIPTOR_LEN * descriptors.len());
    out.put_u16((2 + DESCRIPTOR_LEN * descriptors.len()).min(0xffff) as u16);
    out.put_zeros(2);
    for d in descriptors {
        d.encode(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdb_and_data_ssc4_7_9() {
        let c = ReportDensitySupport::decode(&[0x44, 1, 0, 0, 0, 0, 0, 0x02, 0x00, 0]).unwrap();
        assert_eq!(
            (c.media, c.medium_type, c.allocation_length),
            (true, false, 512)
        );
        let e = ReportDensitySupport::decode(&[0x44, 4, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
        assert_eq!((e.offset, e.bit), (1, Some(2)));
        let e = ReportDensitySupport::decode(&[0x44, 0, 0, 0, 0, 1, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(e.offset, 5);
        assert!(ReportDensitySupport::decode(&[0x44, 0]).is_err());
        let d = DensityDescriptor {
            primary_code: 0x60,
            secondary_code: 0x60,
            writable: true,
            duplicate: false,
            default: true,
            bits_per_mm: 21456,
            media_width: 127,
            tracks: 8960,
            capacity_mb: 18_000_000,
            organization: "LTO-CVE".into(),
            name: "U-932".into(),
            description: "Ultrium 9/48T".into(),
        };
        let data = density_support_data(&[d]);
        assert_eq!(data.len(), 56);
        assert_eq!(
            data[..24],
            [
                0x00, 0x36, 0, 0, 0x60, 0x60, 0xa1, 0x00, 0x31, 0x00, 0x53, 0xd0, 0x00, 0x7f, 0x23,
                0x00, 0x01, 0x12, 0xa8, 0x80, b'L', b'T', b'O', b'-'
            ]
        );
        assert_eq!(&data[28..36], b"U-932   ");
        assert_eq!(&data[36..56], b"Ultrium 9/48T       ");
    }

    /// Byte 1 holds MEDIA (bit 0) and MEDIUM TYPE (bit 1); bytes 2-6 are reserved (the bit
    /// pointer names the highest bit set); CONTROL's NACA (bit 2) and LINK (bit 0) are not
    /// supported.
    #[test]
    fn cdb_fields_and_reserved_bits() {
        let c = ReportDensitySupport::decode(&[0x44, 2, 0, 0, 0, 0, 0, 0, 0x34, 0]).unwrap();
        assert_eq!(
            (c.media, c.medium_type, c.allocation_length),
            (false, true, 0x34)
        );
        for (byte, value, bit) in [(2, 0x01, 0), (6, 0x80, 7), (3, 0x24, 5)] {
            let mut cdb = [0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            cdb[byte] = value;
            let e = ReportDensitySupport::decode(&cdb).unwrap_err();
            assert_eq!((e.offset, e.bit), (byte, Some(bit)), "byte {byte}");
        }
        for (ctl, bit) in [(0x04, 2), (0x01, 0), (0x05, 2)] {
            let e = ReportDensitySupport::decode(&[0x44, 0, 0, 0, 0, 0, 0, 0, 0, ctl]).unwrap_err();
            assert_eq!((e.offset, e.bit), (9, Some(bit)), "control {ctl:02x}");
        }
        assert!(ReportDensitySupport::decode(&[0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0x02]).is_ok());
    }

    /// WRTOK bit 7, DUP bit 6, DEFLT bit 5, DLV bit 0 (SSC-4 Table 186); AVAILABLE DENSITY
    /// SUPPORT LENGTH counts every descriptor.
    #[test]
    fn descriptor_flags_and_the_length_of_several() {
        let d = DensityDescriptor {
            primary_code: 0x5e,
            secondary_code: 0x5e,
            writable: false,
            duplicate: true,
            default: false,
            bits_per_mm: 0x0100_0000,
            media_width: 0,
            tracks: 0,
            capacity_mb: 0,
            organization: String::new(),
            name: String::new(),
            description: String::new(),
        };
        let data = density_support_data(&[d.clone(), d]);
        assert_eq!(data.len(), 4 + 2 * 52);
        assert_eq!(data[..2], [0, 106]);
        assert_eq!(data[6], 0x41);
        // BITS PER MM has 24 bits: a larger value is cut to the largest.
        assert_eq!(data[9..12], [0xff, 0xff, 0xff]);
        assert_eq!(data[4 + 52 + 2], 0x41);
    }
}
