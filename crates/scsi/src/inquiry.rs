//! INQUIRY data (SPC-3 6.4) and the VPD pages every xcopyd logical unit serves: 00h
//! Supported VPD Pages (SPC-3 7.6.10), 80h Unit Serial Number (7.6.11), 83h Device
//! Identification (7.6.3) and B0h Block Limits (SBC-3 6.5.3). The Third-party Copy page
//! (8Fh) lives in [`super::third_party_copy`].

use super::codes::PeripheralDeviceType;
use super::designator::Designator;
use super::error::{DecodeError, Reason};
use super::reader::{Put, Reader};

/// VERSION we claim: 05h = SPC-3.
pub const VERSION_SPC3: u8 = 0x05;

/// Version descriptors (SPC-3 Table 85), the "no version claimed" code of each standard.
pub mod version_descriptor {
    pub const SAM_3: u16 = 0x0060;
    pub const SPC_3: u16 = 0x0300;
    pub const SBC_3: u16 = 0x04c0;
    pub const SSC_3: u16 = 0x0400;
    pub const SMC_3: u16 = 0x0480;
}

/// Length of the standard INQUIRY data we return: through the version descriptors and
/// their trailing reserved bytes (SPC-3 Table 81, bytes 0-95).
pub const STANDARD_INQUIRY_LEN: usize = 96;

/// VPD page codes.
pub mod page {
    pub const SUPPORTED_VPD_PAGES: u8 = 0x00;
    pub const UNIT_SERIAL_NUMBER: u8 = 0x80;
    pub const DEVICE_IDENTIFICATION: u8 = 0x83;
    pub const THIRD_PARTY_COPY: u8 = 0x8f;
    pub const BLOCK_LIMITS: u8 = 0xb0;
    pub const BLOCK_DEVICE_CHARACTERISTICS: u8 = 0xb1;
    pub const LOGICAL_BLOCK_PROVISIONING: u8 = 0xb2;
}

/// INQUIRY CDB (SPC-3 6.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InquiryCdb {
    pub evpd: bool,
    pub page_code: u8,
    pub allocation_length: u16,
}

impl InquiryCdb {
    /// Decodes a 6-byte INQUIRY CDB. CMDDT (obsolete) or a page code without EVPD is 24/00.
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(cdb);
        r.skip(1)?;
        let b1 = r.u8()?;
        let page_code = r.u8()?;
        let allocation_length = r.u16()?;
        let evpd = b1 & 0x01 != 0;
        if b1 & 0x02 != 0 {
            return Err(DecodeError::new(Reason::InvalidFieldInCdb, 1).with_bit(1));
        }
        if !evpd && page_code != 0 {
            return Err(DecodeError::new(Reason::InvalidFieldInCdb, 2));
        }
        Ok(Self {
            evpd,
            page_code,
            allocation_length,
        })
    }

    pub fn encode(&self) -> [u8; 6] {
        let [hi, lo] = self.allocation_length.to_be_bytes();
        [0x12, u8::from(self.evpd), self.page_code, hi, lo, 0]
    }
}

/// Standard INQUIRY data (SPC-3 Table 81): the first 36 bytes and the eight VERSION
/// DESCRIPTORs (bytes 58-73); everything else is encoded as zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StandardInquiry {
    /// PERIPHERAL QUALIFIER (3 bits): 0 = connected.
    pub peripheral_qualifier: u8,
    pub peripheral_device_type: PeripheralDeviceType,
    /// RMB: removable medium (tapes).
    pub removable: bool,
    pub version: u8,
    /// HISUP: hierarchical LUNs.
    pub hisup: bool,
    /// 3PC: the logical unit contains a third-party copy manager.
    pub third_party_copy: bool,
    /// CMDQUE: full task management.
    pub command_queuing: bool,
    pub vendor: [u8; 8],
    pub product: [u8; 16],
    pub revision: [u8; 4],
    /// VERSION DESCRIPTORs (SPC-3 6.4.2), unused slots zero. Decoded from whatever part of
    /// bytes 58-73 the data (and its ADDITIONAL LENGTH) covers; zero beyond it.
    pub version_descriptors: [u16; 8],
}

impl StandardInquiry {
    /// INQUIRY data for an xcopyd logical unit of type `pdt`, with ASCII fields space padded.
    pub fn new(pdt: PeripheralDeviceType, vendor: &str, product: &str, revision: &str) -> Self {
        Self {
            peripheral_qualifier: 0,
            peripheral_device_type: pdt,
            removable: pdt == PeripheralDeviceType::SEQUENTIAL_ACCESS,
            version: VERSION_SPC3,
            hisup: true,
            third_party_copy: true,
            command_queuing: true,
            vendor: pad_ascii(vendor),
            product: pad_ascii(product),
            revision: pad_ascii(revision),
            version_descriptors: claimed_standards(pdt),
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u8((self.peripheral_qualifier << 5) | (self.peripheral_device_type.0 & 0x1f));
        out.put_u8(u8::from(self.removable) << 7);
        out.put_u8(self.version);
        out.put_u8((u8::from(self.hisup) << 4) | 0x02); // RESPONSE DATA FORMAT 2
        out.put_u8((STANDARD_INQUIRY_LEN - 5) as u8); // ADDITIONAL LENGTH
        out.put_u8(u8::from(self.third_party_copy) << 3);
        out.put_u8(0);
        out.put_u8(u8::from(self.command_queuing) << 1);
        out.extend_from_slice(&self.vendor);
        out.extend_from_slice(&self.product);
        out.extend_from_slice(&self.revision);
        out.put_zeros(58 - 36); // vendor specific, CLOCKING/QAS/IUS, reserved
        for d in self.version_descriptors {
            out.put_u16(d);
        }
        out.resize(start + STANDARD_INQUIRY_LEN, 0);
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let b0 = r.u8()?;
        let b1 = r.u8()?;
        let version = r.u8()?;
        let b3 = r.u8()?;
        let additional_length = r.u8()?;
        let b5 = r.u8()?;
        r.skip(1)?;
        let b7 = r.u8()?;
        let vendor = r.array()?;
        let product = r.array()?;
        let revision = r.array()?;
        // Descriptors are optional: the device (or the allocation length) may stop at 36.
        let end = bytes.len().min(5 + usize::from(additional_length)).min(74);
        let mut version_descriptors = [0u16; 8];
        let mut descriptors = Reader::new(bytes.get(58..end).unwrap_or_default());
        for slot in &mut version_descriptors {
            match descriptors.u16() {
                Ok(d) => *slot = d,
                Err(_) => break, // only whole descriptors count
            }
        }
        Ok(Self {
            peripheral_qualifier: b0 >> 5,
            peripheral_device_type: PeripheralDeviceType(b0 & 0x1f),
            removable: b1 & 0x80 != 0,
            version,
            hisup: b3 & 0x10 != 0,
            third_party_copy: b5 & 0x08 != 0,
            command_queuing: b7 & 0x02 != 0,
            vendor,
            product,
            revision,
            version_descriptors,
        })
    }
}

/// The standards an xcopyd logical unit of type `pdt` claims: SAM-3, SPC-3 and its command
/// set (SBC-3 for disks, SSC-3 for tapes). libiscsi, for one, keys SBC-3 checks (such as the
/// B0h page length) on the SBC-3 descriptor.
fn claimed_standards(pdt: PeripheralDeviceType) -> [u16; 8] {
    let command_set = match pdt {
        PeripheralDeviceType::DIRECT_ACCESS => version_descriptor::SBC_3,
        PeripheralDeviceType::SEQUENTIAL_ACCESS => version_descriptor::SSC_3,
        PeripheralDeviceType::MEDIUM_CHANGER => version_descriptor::SMC_3,
        _ => 0,
    };
    [
        version_descriptor::SAM_3,
        version_descriptor::SPC_3,
        command_set,
        0,
        0,
        0,
        0,
        0,
    ]
}

/// Left-justified, space-padded ASCII (SPC-3 4.4.1); non-ASCII characters become '?'.
pub fn pad_ascii<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [b' '; N];
    for (slot, c) in out.iter_mut().zip(s.chars()) {
        *slot = if c.is_ascii_graphic() || c == ' ' {
            c as u8
        } else {
            b'?'
        };
    }
    out
}

/// Wraps a VPD page body in its 4-byte header (byte 0 qualifier + PDT, byte 1 page code,
/// bytes 2-3 PAGE LENGTH).
pub fn vpd_page(pdt: PeripheralDeviceType, page_code: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + body.len());
    out.put_u8(pdt.0 & 0x1f);
    out.put_u8(page_code);
    out.put_u16(u16::try_from(body.len()).unwrap_or(u16::MAX));
    out.extend_from_slice(body.get(..usize::from(u16::MAX)).unwrap_or(body));
    out
}

/// Splits a VPD page into (page code, body), checking PAGE LENGTH.
pub fn split_vpd_page(bytes: &[u8]) -> Result<(u8, &[u8]), DecodeError> {
    let mut r = Reader::new(bytes);
    r.skip(1)?;
    let code = r.u8()?;
    let len = r.u16()?;
    Ok((code, r.take(usize::from(len))?))
}

/// 83h: the designation descriptors of a page body.
pub fn decode_device_identification(body: &[u8]) -> Result<Vec<Designator>, DecodeError> {
    let mut r = Reader::new(body);
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(Designator::decode(&mut r)?);
    }
    Ok(out)
}

/// 83h: encodes designation descriptors as a page body.
pub fn encode_device_identification(designators: &[Designator]) -> Vec<u8> {
    let mut out = Vec::new();
    for d in designators {
        d.encode(&mut out);
    }
    out
}

/// B0h Block Limits (SBC-3 Table 197; the atomic fields from SBC-4), the fields xcopyd sets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockLimits {
    /// WSNZ: WRITE SAME with NUMBER OF LOGICAL BLOCKS 0 is refused.
    pub wsnz: bool,
    pub maximum_compare_and_write_length: u8,
    pub optimal_transfer_length_granularity: u16,
    pub maximum_transfer_length: u32,
    pub optimal_transfer_length: u32,
    pub maximum_prefetch_length: u32,
    pub maximum_unmap_lba_count: u32,
    pub maximum_unmap_block_descriptor_count: u32,
    pub optimal_unmap_granularity: u32,
    /// UNMAP GRANULARITY ALIGNMENT, when UGAVALID.
    pub unmap_granularity_alignment: Option<u32>,
    pub maximum_write_same_length: u64,
    pub maximum_atomic_transfer_length: u32,
    pub atomic_alignment: u32,
    pub atomic_transfer_length_granularity: u32,
}

impl BlockLimits {
    /// The 60-byte page body (PAGE LENGTH 3Ch); the two atomic boundary fields are 0.
    pub fn encode_body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(0x3c);
        out.put_u8(u8::from(self.wsnz));
        out.put_u8(self.maximum_compare_and_write_length);
        out.put_u16(self.optimal_transfer_length_granularity);
        out.put_u32(self.maximum_transfer_length);
        out.put_u32(self.optimal_transfer_length);
        out.put_u32(self.maximum_prefetch_length);
        out.put_u32(self.maximum_unmap_lba_count);
        out.put_u32(self.maximum_unmap_block_descriptor_count);
        out.put_u32(self.optimal_unmap_granularity);
        out.put_u32(
            self.unmap_granularity_alignment
                .map_or(0, |a| 0x8000_0000 | (a & 0x7fff_ffff)),
        );
        out.put_u64(self.maximum_write_same_length);
        out.put_u32(self.maximum_atomic_transfer_length);
        out.put_u32(self.atomic_alignment);
        out.put_u32(self.atomic_transfer_length_granularity);
        out.resize(0x3c, 0);
        out
    }

    /// Decodes a body of at least 8 bytes; the fields a shorter page (SBC-2's) does not hold
    /// read as 0.
    pub fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        if body.len() < 8 {
            return Err(DecodeError::new(
                super::error::Reason::Truncated,
                body.len(),
            ));
        }
        let mut full = [0u8; 0x3c];
        for (d, s) in full.iter_mut().zip(body) {
            *d = *s;
        }
        let mut r = Reader::new(&full);
        let flags = r.u8()?;
        let mut bl = Self {
            wsnz: flags & 0x01 != 0,
            maximum_compare_and_write_length: r.u8()?,
            optimal_transfer_length_granularity: r.u16()?,
            maximum_transfer_length: r.u32()?,
            optimal_transfer_length: r.u32()?,
            ..Self::default()
        };
        bl.maximum_prefetch_length = r.u32()?;
        bl.maximum_unmap_lba_count = r.u32()?;
        bl.maximum_unmap_block_descriptor_count = r.u32()?;
        bl.optimal_unmap_granularity = r.u32()?;
        let uga = r.u32()?;
        bl.unmap_granularity_alignment = (uga & 0x8000_0000 != 0).then_some(uga & 0x7fff_ffff);
        bl.maximum_write_same_length = r.u64()?;
        bl.maximum_atomic_transfer_length = r.u32()?;
        bl.atomic_alignment = r.u32()?;
        bl.atomic_transfer_length_granularity = r.u32()?;
        Ok(bl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_inquiry_sets_3pc_and_version() {
        let inq = StandardInquiry::new(
            PeripheralDeviceType::SEQUENTIAL_ACCESS,
            "XCOPYD",
            "EMULATED TAPE",
            "0001",
        );
        let mut out = Vec::new();
        inq.encode(&mut out);
        assert_eq!(out.len(), 96);
        assert_eq!(out[..8], [0x01, 0x80, 0x05, 0x12, 91, 0x08, 0x00, 0x02]);
        assert_eq!(&out[8..16], b"XCOPYD  ");
        assert_eq!(out[58..64], [0x00, 0x60, 0x03, 0x00, 0x04, 0x00]);
        assert!(out[64..].iter().all(|&b| b == 0));
        assert_eq!(StandardInquiry::decode(&out).unwrap(), inq);
    }

    /// A changer claims SMC-3 (0480h); a type without a command set here claims none.
    #[test]
    fn changer_claims_smc3() {
        let inq = StandardInquiry::new(PeripheralDeviceType::MEDIUM_CHANGER, "X", "C", "1");
        assert_eq!(inq.version_descriptors[..3], [0x0060, 0x0300, 0x0480]);
        let other = StandardInquiry::new(PeripheralDeviceType(0x05), "X", "R", "1");
        assert_eq!(other.version_descriptors[..3], [0x0060, 0x0300, 0]);
    }

    /// A VPD page's header: PERIPHERAL QUALIFIER 000b and the device type, the page code,
    /// PAGE LENGTH.
    #[test]
    fn vpd_page_header() {
        assert_eq!(
            vpd_page(PeripheralDeviceType::MEDIUM_CHANGER, 0x80, b"ab"),
            [0x08, 0x80, 0, 2, b'a', b'b']
        );
        assert_eq!(
            vpd_page(PeripheralDeviceType::DIRECT_ACCESS, 0x83, &[]),
            [0x00, 0x83, 0, 0]
        );
    }

    #[test]
    fn disk_claims_sbc3_and_short_data_has_no_descriptors() {
        let inq = StandardInquiry::new(PeripheralDeviceType::DIRECT_ACCESS, "X", "D", "1");
        assert_eq!(inq.version_descriptors[..3], [0x0060, 0x0300, 0x04c0]);
        let mut out = Vec::new();
        inq.encode(&mut out);
        assert_eq!(out[62..64], [0x04, 0xc0]);
        // Truncated by the allocation length: 36 bytes decode, without descriptors.
        let short = StandardInquiry::decode(&out[..36]).unwrap();
        assert_eq!(short.version_descriptors, [0; 8]);
        assert_eq!(short.vendor, inq.vendor);
        // Cut mid-way: only whole descriptors inside the data count.
        let part = StandardInquiry::decode(&out[..63]).unwrap();
        assert_eq!(part.version_descriptors[..3], [0x0060, 0x0300, 0]);
    }

    #[test]
    fn inquiry_cdb_rules() {
        assert_eq!(
            InquiryCdb::decode(&[0x12, 1, 0x83, 0x01, 0x00, 0]).unwrap(),
            InquiryCdb {
                evpd: true,
                page_code: 0x83,
                allocation_length: 256
            }
        );
        let e = InquiryCdb::decode(&[0x12, 0, 0x83, 0, 0xff, 0]).unwrap_err();
        assert_eq!((e.reason, e.offset), (Reason::InvalidFieldInCdb, 2));
        let e = InquiryCdb::decode(&[0x12, 2, 0, 0, 0xff, 0]).unwrap_err();
        assert_eq!((e.offset, e.bit), (1, Some(1)));
        assert!(InquiryCdb::decode(&[0x12, 1]).is_err());
    }

    #[test]
    fn vpd_83_round_trip() {
        let ds = vec![
            Designator::parse_name("naa.5001405a1b2c3d01").unwrap(),
            Designator::parse_name("t10.XCOPYD  disk0").unwrap(),
        ];
        let page = vpd_page(
            PeripheralDeviceType::DIRECT_ACCESS,
            page::DEVICE_IDENTIFICATION,
            &encode_device_identification(&ds),
        );
        let (code, body) = split_vpd_page(&page).unwrap();
        assert_eq!(code, 0x83);
        assert_eq!(decode_device_identification(body).unwrap(), ds);
        assert!(split_vpd_page(&page[..page.len() - 1]).is_err());
    }

    #[test]
    fn block_limits_body_is_60_bytes() {
        let bl = BlockLimits {
            optimal_transfer_length_granularity: 8,
            maximum_transfer_length: 0x4000,
            optimal_transfer_length: 0x800,
            maximum_compare_and_write_length: 1,
            maximum_unmap_lba_count: 0x10_0000,
            maximum_unmap_block_descriptor_count: 256,
            optimal_unmap_granularity: 8,
            unmap_granularity_alignment: Some(0),
            maximum_write_same_length: 0x1_0000,
            ..BlockLimits::default()
        };
        let body = bl.encode_body();
        assert_eq!(body.len(), 0x3c);
        assert_eq!(body[..12], [0, 1, 0, 8, 0, 0, 0x40, 0, 0, 0, 0x08, 0]);
        assert_eq!(
            body[16..32],
            [0, 0x10, 0, 0, 0, 0, 1, 0, 0, 0, 0, 8, 0x80, 0, 0, 0]
        );
        assert_eq!(body[32..40], [0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(BlockLimits::decode_body(&body).unwrap(), bl);
        // An SBC-2 page (8 bytes of body): the rest reads as zero.
        let short = BlockLimits::decode_body(&body[..8]).unwrap();
        assert_eq!(short.maximum_transfer_length, 0x4000);
        assert_eq!(short.maximum_unmap_lba_count, 0);
    }
}
