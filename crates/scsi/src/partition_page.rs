//! The Medium Partition mode page (11h, SSC-4 8.3.4) for a drive of two partitions at most,
//! as LTO drives have it and LTFS sets it (MODE SENSE, then MODE SELECT of the page with
//! ADDITIONAL PARTITIONS DEFINED 1, IDP=1, units 10^9 and the sizes, then FORMAT MEDIUM),
//! and the pieces of a MODE SELECT parameter list and MODE SENSE data the page is cut from
//! or added to.
//!
//! Page layout (12 bytes): page code, PAGE LENGTH 0Ah, MAXIMUM ADDITIONAL PARTITIONS,
//! ADDITIONAL PARTITIONS DEFINED, FDP SDP IDP PSUM(2) POFM CLEAR ADDP, MEDIUM FORMAT
//! RECOGNITION, PARTITION UNITS (bits 3-0), reserved, two 2-byte PARTITION SIZEs. A size of
//! FFFFh is "the rest of the medium". PSUM says what a size counts: bytes (00b), kilobytes
//! (01b), megabytes (10b, what Linux st's `mt mkpartition` sends) or 10^PARTITION UNITS
//! bytes (11b, what LTFS sends).

use super::error::{DecodeError, Reason};
use super::reader::Put;

pub const PAGE_CODE: u8 = 0x11;
/// Bytes of the page (two partition size descriptors).
pub const PAGE_LEN: usize = 12;
/// Partitions a cartridge can have.
pub const MAX_PARTITIONS: usize = 2;
/// The smallest partition FORMAT MEDIUM makes (a size asked for below it is rounded up).
pub const MIN_PARTITION: u64 = 1 << 20;

/// The fields of the page that describe a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionPage {
    /// ADDITIONAL PARTITIONS DEFINED (0 or 1).
    pub additional: u8,
    /// Byte 4: FDP (7), SDP (6), IDP (5), PSUM (4-3), POFM (2), CLEAR (1), ADDP (0).
    pub flags: u8,
    /// PARTITION UNITS: sizes are in 10^units bytes when PSUM is 11b.
    pub units: u8,
    pub sizes: [u16; MAX_PARTITIONS],
}

impl PartitionPage {
    /// One partition: what a cartridge never partitioned reports.
    pub fn single() -> Self {
        Self {
            additional: 0,
            flags: 0x18, // PSUM 11b: sizes in 10^PARTITION UNITS bytes
            units: 9,
            sizes: [0, 0],
        }
    }

    /// The page as MODE SENSE reports it, POFM set (the layout takes effect at FORMAT
    /// MEDIUM), MEDIUM FORMAT RECOGNITION 03h (format and partitions recognised).
    pub fn encode(&self) -> [u8; PAGE_LEN] {
        let mut out = Vec::with_capacity(PAGE_LEN);
        out.put_u8(PAGE_CODE);
        out.put_u8((PAGE_LEN - 2) as u8);
        out.put_u8((MAX_PARTITIONS - 1) as u8);
        out.put_u8(self.additional);
        out.put_u8(self.flags | 0x04);
        out.put_u8(0x03);
        out.put_u8(self.units & 0x0f);
        out.put_u8(0);
        for s in self.sizes {
            out.put_u16(s);
        }
        let mut page = [0u8; PAGE_LEN];
        page.copy_from_slice(out.get(..PAGE_LEN).unwrap_or(&[0; PAGE_LEN]));
        page
    }

    /// The changeable mask: ADDITIONAL PARTITIONS DEFINED, the flags but POFM, PARTITION
    /// UNITS and the sizes.
    pub fn changeable() -> [u8; PAGE_LEN] {
        [
            PAGE_CODE,
            (PAGE_LEN - 2) as u8,
            0,
            0xff,
            0xf8,
            0,
            0x0f,
            0,
            0xff,
            0xff,
            0xff,
            0xff,
        ]
    }

    /// The page of a MODE SELECT parameter list at absolute offset `at` (for the field
    /// pointer). ADDITIONAL PARTITIONS DEFINED above 1 is 26/00 at its byte; a page too
    /// short for its header at PAGE LENGTH.
    pub fn decode(page: &[u8], at: usize) -> Result<Self, DecodeError> {
        let byte = |i: usize| page.get(i).copied();
        let len = usize::from(byte(1).ok_or_else(|| DecodeError::new(Reason::Truncated, at))?);
        if len < 6 || page.len() < 2 + len {
            return Err(DecodeError::invalid(at + 1));
        }
        let additional = byte(3).unwrap_or(0);
        if usize::from(additional) >= MAX_PARTITIONS {
            return Err(DecodeError::invalid(at + 3));
        }
        let flags = byte(4).unwrap_or(0);
        let mut sizes = [0u16; MAX_PARTITIONS];
        for (i, s) in sizes.iter_mut().enumerate() {
            let hi = byte(8 + 2 * i).unwrap_or(0);
            let lo = byte(9 + 2 * i).unwrap_or(0);
            if 8 + 2 * i + 1 < 2 + len {
                *s = u16::from_be_bytes([hi, lo]);
            }
        }
        Ok(Self {
            additional,
            flags: flags & 0xfb,
            units: byte(6).unwrap_or(0) & 0x0f,
            sizes,
        })
    }

    /// Bytes a PARTITION SIZE of 1 stands for (PSUM, and PARTITION UNITS for 11b).
    pub fn unit(&self) -> u64 {
        match (self.flags >> 3) & 0x03 {
            0 => 1,
            1 => 1_000,
            2 => 1_000_000,
            _ => 10u64.saturating_pow(u32::from(self.units)),
        }
    }

    /// The sizes in bytes of the partitions this page asks for on a medium of `capacity`
    /// bytes: FFFFh takes what the others leave; a partition is at least [`MIN_PARTITION`];
    /// fixed sizes that do not fit (an index partition asked for in gigabytes on a small
    /// cartridge) shrink in proportion to half the medium when another partition takes
    /// the rest, else to the whole.
    pub fn partition_bytes(&self, capacity: u64) -> Vec<u64> {
        let n = usize::from(self.additional) + 1;
        if n == 1 {
            return vec![capacity];
        }
        let unit = self.unit();
        let sizes: Vec<Option<u64>> = self
            .sizes
            .iter()
            .take(n)
            .map(|&s| (s != 0xffff).then(|| u64::from(s).saturating_mul(unit).max(MIN_PARTITION)))
            .collect();
        let rest = sizes.iter().filter(|s| s.is_none()).count() as u64;
        let fixed: u64 = sizes.iter().flatten().sum();
        let budget = if rest > 0 { capacity / 2 } else { capacity };
        let scale = |s: u64| {
            if fixed > budget && fixed > 0 {
                (u128::from(s) * u128::from(budget) / u128::from(fixed)) as u64
            } else {
                s
            }
        };
        let fixed_after: u64 = sizes.iter().flatten().map(|&s| scale(s)).sum();
        let each_rest = capacity.saturating_sub(fixed_after) / rest.max(1);
        sizes.iter().map(|s| s.map_or(each_rest, scale)).collect()
    }
}

/// A MODE SELECT parameter list with its Medium Partition page cut out: the rest (header,
/// block descriptor, other pages) and the page, if there was one.
pub fn cut_partition_page(
    params: &[u8],
    ten: bool,
) -> Result<(Vec<u8>, Option<PartitionPage>), DecodeError> {
    let header = if ten { 8 } else { 4 };
    if params.len() < header {
        return Ok((params.to_vec(), None));
    }
    let bdl = if ten {
        usize::from(u16::from_be_bytes([
            params.get(6).copied().unwrap_or(0),
            params.get(7).copied().unwrap_or(0),
        ]))
    } else {
        usize::from(params.get(3).copied().unwrap_or(0))
    };
    let mut at = header + bdl;
    let mut rest = params
        .get(..at.min(params.len()))
        .unwrap_or(params)
        .to_vec();
    let mut page = None;
    while at < params.len() {
        let code = params.get(at).copied().unwrap_or(0) & 0x3f;
        let len = 2 + usize::from(
            params
                .get(at + 1)
                .copied()
                .ok_or_else(|| DecodeError::new(Reason::Truncated, params.len()))?,
        );
        let bytes = params
            .get(at..at + len)
            .ok_or_else(|| DecodeError::new(Reason::Truncated, params.len()))?;
        if code == PAGE_CODE {
            page = Some(PartitionPage::decode(bytes, at)?);
        } else {
            rest.extend_from_slice(bytes);
        }
        at += len;
    }
    Ok((rest, page))
}

/// MODE SENSE data with `page` added after what it holds; MODE DATA LENGTH follows.
pub fn add_page(data: &mut Vec<u8>, ten: bool, page: &[u8]) {
    data.extend_from_slice(page);
    let total = data.len();
    if ten {
        let len = u16::try_from(total.saturating_sub(2)).unwrap_or(u16::MAX);
        if let Some(h) = data.get_mut(..2) {
            h.copy_from_slice(&len.to_be_bytes());
        }
    } else if let Some(h) = data.first_mut() {
        *h = u8::try_from(total.saturating_sub(1)).unwrap_or(u8::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ltfs_layout_ssc4_8_3_4() {
        // What LTFS selects: 1 additional partition, IDP, units 10^9, 1 GB + the rest.
        let page = [
            0x11, 0x0a, 0x01, 0x01, 0x38, 0x03, 0x09, 0, 0x00, 0x01, 0xff, 0xff,
        ];
        let p = PartitionPage::decode(&page, 16).unwrap();
        assert_eq!(p.additional, 1);
        assert_eq!(
            p.encode(),
            [0x11, 0x0a, 1, 1, 0x3c, 3, 9, 0, 0, 1, 0xff, 0xff]
        );
        let sizes = p.partition_bytes(18_000_000_000_000);
        assert_eq!(sizes, [1_000_000_000, 17_999_000_000_000]);
        // A 400 MiB cartridge: the 1 GB index partition shrinks to half the medium.
        let sizes = p.partition_bytes(400 << 20);
        assert_eq!(sizes, [200 << 20, 200 << 20]);
        assert_eq!(PartitionPage::single().partition_bytes(5), [5]);
        // Three partitions: 26/00 at the byte; a page without its header: at PAGE LENGTH.
        let mut bad = page;
        bad[3] = 2;
        assert_eq!(PartitionPage::decode(&bad, 16).unwrap_err().offset, 19);
        assert_eq!(
            PartitionPage::decode(&page[..6], 16).unwrap_err().offset,
            17
        );
        // What Linux st's `mt mkpartition 100` selects: IDP, PSUM 10b (megabytes),
        // partition 1 of 100 MB, page length 0Ah (two size descriptors, the first FFFFh).
        let st = [0x11, 0x0a, 1, 1, 0x30, 3, 0, 0, 0xff, 0xff, 0, 100];
        let p = PartitionPage::decode(&st, 0).unwrap();
        assert_eq!(p.unit(), 1_000_000);
        assert_eq!(p.partition_bytes(1_000_000_000), [900_000_000, 100_000_000]);
        // PSUM 00b bytes, 01b kilobytes.
        let bytes = [0x11, 0x0a, 1, 1, 0x20, 3, 0, 0, 0xff, 0xff, 0x40, 0];
        assert_eq!(
            PartitionPage::decode(&bytes, 0)
                .unwrap()
                .partition_bytes(64 << 20),
            [63 << 20, 1 << 20]
        );
        let kb = [0x11, 0x0a, 1, 1, 0x28, 3, 0, 0, 0x40, 0, 0xff, 0xff];
        assert_eq!(
            PartitionPage::decode(&kb, 0)
                .unwrap()
                .partition_bytes(64 << 20),
            [16_384_000, (64 << 20) - 16_384_000]
        );
    }

    #[test]
    fn mode_select_lists_and_mode_sense_data() {
        // MODE SELECT(10): header, 8-byte block descriptor, page 11h, page 10h.
        let mut list = vec![0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0];
        list.extend_from_slice(&[0x11, 0x0a, 1, 1, 0x38, 3, 9, 0, 0, 1, 0xff, 0xff]);
        list.extend_from_slice(&[0x10, 0x02, 7, 7]);
        let (rest, page) = cut_partition_page(&list, true).unwrap();
        assert_eq!(rest.len(), 16 + 4);
        assert_eq!(rest[16..], [0x10, 0x02, 7, 7]);
        assert_eq!(page.unwrap().sizes, [1, 0xffff]);
        assert!(cut_partition_page(&list[..20], true).is_err());
        let mut data = vec![3, 0, 0x10, 0];
        add_page(
            &mut data,
            false,
            &[0x11, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        );
        assert_eq!(data[0], 15);
        let mut data = vec![0, 6, 0, 0, 0, 0, 0, 0];
        add_page(&mut data, true, &[1, 2]);
        assert_eq!(data[..2], [0, 8]);
    }

    /// The changeable mask (SSC-4 8.3.4): ADDITIONAL PARTITIONS DEFINED, byte 4's flags but
    /// POFM, PARTITION UNITS, both sizes; PAGE LENGTH 0Ah.
    #[test]
    fn changeable_mask() {
        assert_eq!(
            PartitionPage::changeable(),
            [0x11, 0x0a, 0, 0xff, 0xf8, 0, 0x0f, 0, 0xff, 0xff, 0xff, 0xff]
        );
    }

    /// A size descriptor counts only when both its bytes are inside PAGE LENGTH.
    #[test]
    fn sizes_past_the_page_length_are_zero() {
        // PAGE LENGTH 7: the page ends at byte 8, halfway through the first size.
        let page = [0x11, 0x07, 0, 1, 0x20, 3, 0, 0, 0x12, 0x34, 0x56, 0x78];
        assert_eq!(PartitionPage::decode(&page, 0).unwrap().sizes, [0, 0]);
        let page = [0x11, 0x08, 0, 1, 0x20, 3, 0, 0, 0x12, 0x34, 0x56, 0x78];
        assert_eq!(PartitionPage::decode(&page, 0).unwrap().sizes, [0x1234, 0]);
    }

    /// Two partitions both FFFFh ("the rest") share the medium equally.
    #[test]
    fn two_rest_partitions_share_the_medium() {
        let mut p = PartitionPage::single();
        p.additional = 1;
        p.sizes = [0xffff, 0xffff];
        assert_eq!(p.partition_bytes(1000 << 20), [500 << 20, 500 << 20]);
    }

    /// PSUM 00b counts bytes whatever PARTITION UNITS says; 11b counts 10^units.
    #[test]
    fn size_units() {
        let mut p = PartitionPage::single();
        p.units = 3;
        for (psum, unit) in [(0, 1), (1, 1_000), (2, 1_000_000), (3, 1_000)] {
            p.flags = psum << 3;
            assert_eq!(p.unit(), unit, "PSUM {psum}");
        }
    }
}

#[cfg(test)]
proptest::proptest! {
    #[test]
    fn decoders_never_panic_and_pages_round_trip(
        bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        capacity in proptest::num::u64::ANY,
    ) {
        let _ = cut_partition_page(&bytes, false);
        let _ = cut_partition_page(&bytes, true);
        if let Ok(p) = PartitionPage::decode(&bytes, 0) {
            proptest::prop_assert_eq!(PartitionPage::decode(&p.encode(), 0), Ok(p));
            let sizes = p.partition_bytes(capacity);
            proptest::prop_assert_eq!(sizes.len(), usize::from(p.additional) + 1);
        }
        let mut data = bytes.clone();
        add_page(&mut data, true, &[0x11, 0]);
    }
}
