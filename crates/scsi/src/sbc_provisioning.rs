//! Logical block provisioning (SBC-3 T10/1799-D r35: 4.7 thin provisioning, 5.26 GET LBA
//! STATUS, 5.28 UNMAP, 5.42-5.43 WRITE SAME(10)/(16), 6.5.2 Block Limits, 6.5.3 Block Device
//! Characteristics, 6.5.4 Logical Block Provisioning VPD pages; NDOB from SBC-4 5.53).
//!
//! Pure: the CDBs, the UNMAP parameter list and the parameter data; the disk decides what to
//! deallocate. Field pointers follow [`super::sbc`]: INVALID FIELD IN CDB names the CDB byte;
//! INVALID FIELD IN PARAMETER LIST names the byte of the UNMAP list.

use super::codes::{Asc, Opcode};
use super::error::{DecodeError, Reason};
use super::reader::{Put, Reader};
use super::sbc::{be32, be64, control, fixed, invalid, invalid_bit, protect};
use super::sense::Sense;

/// SERVICE ACTION IN(16) service action of GET LBA STATUS.
pub const SA_GET_LBA_STATUS: u8 = 0x12;

/// WRITE SAME (10) or (16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteSameCdb {
    pub lba: u64,
    /// NUMBER OF LOGICAL BLOCKS; 0 = through the last logical block (WSNZ = 0).
    pub blocks: u32,
    /// UNMAP: deallocate the blocks instead of writing them.
    pub unmap: bool,
    pub anchor: bool,
    /// NDOB (16 only): no data-out buffer; the block is all zeros.
    pub ndob: bool,
    /// CDB byte of the NUMBER OF LOGICAL BLOCKS field, for field pointers.
    pub length_offset: u8,
}

impl WriteSameCdb {
    /// Decodes WRITE SAME(10) or (16). WRPROTECT is 24/00 (no protection information); the
    /// obsolete PBDATA and LBDATA bits (byte 1 bits 2-1) are 24/00 as LIO and SBC-4 do.
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let opcode = Opcode(*cdb.first().ok_or_else(|| invalid(0))?);
        let (b1, lba, blocks, length_offset, ndob) = match opcode {
            Opcode::WRITE_SAME_10 => {
                let [_, b1, l0, l1, l2, l3, _group, n0, n1, ctl] = fixed::<10>(cdb)?;
                control(ctl, 9)?;
                let blocks = u32::from(u16::from_be_bytes([n0, n1]));
                (b1, u64::from(be32([l0, l1, l2, l3])), blocks, 7, false)
            }
            Opcode::WRITE_SAME_16 => {
                let [_, b1, l0, l1, l2, l3, l4, l5, l6, l7, n0, n1, n2, n3, _group, ctl] =
                    fixed::<16>(cdb)?;
                control(ctl, 15)?;
                let lba = be64([l0, l1, l2, l3, l4, l5, l6, l7]);
                (b1, lba, be32([n0, n1, n2, n3]), 10, b1 & 0x01 != 0)
            }
            _ => return Err(invalid(0)),
        };
        protect(b1)?;
        if b1 & 0x06 != 0 {
            return Err(invalid_bit(1, 2));
        }
        Ok(Self {
            lba,
            blocks,
            unmap: b1 & 0x08 != 0,
            anchor: b1 & 0x10 != 0,
            ndob,
            length_offset,
        })
    }
}

/// UNMAP CDB (SBC-3 5.28.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnmapCdb {
    pub anchor: bool,
    pub parameter_list_length: u16,
}

impl UnmapCdb {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, _, _, _, _, _group, p0, p1, ctl] = fixed::<10>(cdb)?;
        control(ctl, 9)?;
        Ok(Self {
            anchor: b1 & 0x01 != 0,
            parameter_list_length: u16::from_be_bytes([p0, p1]),
        })
    }
}

/// One UNMAP block descriptor: an LBA and a number of logical blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnmapRange {
    pub lba: u64,
    pub blocks: u32,
}

/// The UNMAP parameter list (SBC-3 5.28.2): the block descriptors it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnmapList {
    pub ranges: Vec<UnmapRange>,
}

impl UnmapList {
    /// Decodes the first `cdb_length` bytes of `data` (what arrived; less is what there
    /// is). A PARAMETER LIST LENGTH of 0 is no descriptor; 1 to 7 is PARAMETER LIST LENGTH
    /// ERROR. Descriptors are those the UNMAP BLOCK DESCRIPTOR DATA LENGTH and the list both
    /// hold whole (a truncated last one is ignored, as LIO does); more than
    /// `max_descriptors` is INVALID FIELD IN PARAMETER LIST at byte 2.
    pub fn decode(data: &[u8], cdb_length: u16, max_descriptors: u32) -> Result<Self, DecodeError> {
        let len = usize::from(cdb_length).min(data.len());
        if cdb_length == 0 {
            return Ok(Self::default());
        }
        if len < 8 {
            return Err(DecodeError::new(Reason::ParameterListLength, 0));
        }
        let mut r = Reader::new(data.get(..len).unwrap_or_default());
        r.skip(2)?;
        let descriptor_bytes = usize::from(r.u16()?);
        r.skip(4)?;
        let count = descriptor_bytes.min(r.remaining()) / 16;
        if count > usize::try_from(max_descriptors).unwrap_or(usize::MAX) {
            return Err(DecodeError::invalid(2));
        }
        let mut ranges = Vec::with_capacity(count);
        for _ in 0..count {
            let lba = r.u64()?;
            let blocks = r.u32()?;
            r.skip(4)?;
            ranges.push(UnmapRange { lba, blocks });
        }
        Ok(Self { ranges })
    }

    /// Checks every descriptor before anything is unmapped: one past the last LBA of a
    /// `capacity`-block medium is LOGICAL BLOCK ADDRESS OUT OF RANGE; a descriptor, or all of
    /// them together, above `max_blocks` (MAXIMUM UNMAP LBA COUNT) is INVALID FIELD IN
    /// PARAMETER LIST at the NUMBER OF LOGICAL BLOCKS field of the descriptor that goes past.
    pub fn check(&self, capacity: u64, max_blocks: u32) -> Result<(), Sense> {
        let mut total: u64 = 0;
        for (i, r) in self.ranges.iter().enumerate() {
            if r.lba
                .checked_add(u64::from(r.blocks))
                .is_none_or(|end| end > capacity)
            {
                return Err(Sense::illegal_request(
                    Asc::LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE,
                ));
            }
            total += u64::from(r.blocks);
            if total > u64::from(max_blocks) {
                return Err(Sense::from(DecodeError::invalid(8 + 16 * i + 8)));
            }
        }
        Ok(())
    }

    /// The parameter list (header and descriptors).
    pub fn encode(&self) -> Vec<u8> {
        let n = self.ranges.len() * 16;
        let mut out = Vec::with_capacity(8 + n);
        out.put_u16(u16::try_from(n + 6).unwrap_or(u16::MAX));
        out.put_u16(u16::try_from(n).unwrap_or(u16::MAX));
        out.put_zeros(4);
        for r in &self.ranges {
            out.put_u64(r.lba);
            out.put_u32(r.blocks);
            out.put_zeros(4);
        }
        out
    }
}

/// GET LBA STATUS CDB (SBC-3 5.26.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetLbaStatusCdb {
    pub lba: u64,
    pub allocation_length: u32,
}

impl GetLbaStatusCdb {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, l0, l1, l2, l3, l4, l5, l6, l7, a0, a1, a2, a3, _, ctl] = fixed::<16>(cdb)?;
        control(ctl, 15)?;
        if b1 & 0x1f != SA_GET_LBA_STATUS {
            return Err(invalid_bit(1, 4));
        }
        Ok(Self {
            lba: be64([l0, l1, l2, l3, l4, l5, l6, l7]),
            allocation_length: be32([a0, a1, a2, a3]),
        })
    }
}

/// PROVISIONING STATUS of an LBA status descriptor (SBC-3 Table 52).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provisioning {
    Mapped,
    Deallocated,
}

/// One LBA status descriptor: `blocks` blocks from `lba` in the same state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LbaStatus {
    pub lba: u64,
    pub blocks: u32,
    pub status: Provisioning,
}

/// GET LBA STATUS parameter data (SBC-3 5.26.2): PARAMETER DATA LENGTH (the bytes after
/// it), four reserved bytes, 16 bytes per descriptor.
pub fn lba_status_data(descriptors: &[LbaStatus]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 16 * descriptors.len());
    out.put_u32(u32::try_from(4 + 16 * descriptors.len()).unwrap_or(u32::MAX));
    out.put_zeros(4);
    for d in descriptors {
        out.put_u64(d.lba);
        out.put_u32(d.blocks);
        out.put_u8(match d.status {
            Provisioning::Mapped => 0,
            Provisioning::Deallocated => 1,
        });
        out.put_zeros(3);
    }
    out
}

/// What the Logical Block Provisioning VPD page (B2h) and READ CAPACITY(16) say about a
/// thin-provisioned logical unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Provisioned {
    /// LBPU: UNMAP is supported.
    pub unmap: bool,
    /// LBPWS / LBPWS10: WRITE SAME(16)/(10) with UNMAP deallocates.
    pub write_same_unmap: bool,
    /// LBPRZ: a deallocated block reads as zeros.
    pub reads_zeros: bool,
}

impl Provisioned {
    /// The B2h page body (PAGE LENGTH 4): THRESHOLD EXPONENT 0, the LBPU / LBPWS / LBPWS10 /
    /// LBPRZ bits (ANC_SUP and DP 0: no anchored state, no descriptor), PROVISIONING TYPE
    /// 010b (thin provisioned).
    pub fn encode_body(&self) -> Vec<u8> {
        let ws = if self.write_same_unmap { 0x60 } else { 0 };
        let flags = (u8::from(self.unmap) << 7) | ws | (u8::from(self.reads_zeros) << 2);
        vec![0, flags, 0x02, 0]
    }
}

/// The Block Device Characteristics VPD page (B1h) body, PAGE LENGTH 3Ch: MEDIUM ROTATION
/// RATE 0001h (not rotating), no product type or form factor, WABEREQ 01b (SBC-4: a read
/// after a SANITIZE BLOCK ERASE succeeds, returning what the erase left: zeros here).
pub fn block_device_characteristics_body() -> Vec<u8> {
    let mut out = Vec::with_capacity(0x3c);
    out.put_u16(1);
    out.put_u8(0);
    out.put_u8(0x40);
    out.resize(0x3c, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointer(e: DecodeError) -> (Asc, Option<u16>) {
        let s = Sense::from(e);
        (s.asc, s.field_pointer())
    }

    #[test]
    fn write_same_cdbs() {
        let ws10 = [0x41, 0x08, 0, 0, 0x10, 0, 0, 0x01, 0x00, 0];
        assert_eq!(
            WriteSameCdb::decode(&ws10),
            Ok(WriteSameCdb {
                lba: 0x1000,
                blocks: 256,
                unmap: true,
                anchor: false,
                ndob: false,
                length_offset: 7,
            })
        );
        let mut ws16 = [0u8; 16];
        ws16[0] = 0x93;
        ws16[1] = 0x11;
        ws16[2..10].copy_from_slice(&0x1_0000_0000u64.to_be_bytes());
        ws16[10..14].copy_from_slice(&7u32.to_be_bytes());
        let c = WriteSameCdb::decode(&ws16).unwrap();
        assert!(c.ndob && c.anchor && !c.unmap);
        ws16[1] = 0x08;
        let c = WriteSameCdb::decode(&ws16).unwrap();
        assert!(!c.ndob && !c.anchor && c.unmap);
        assert_eq!((c.lba, c.blocks, c.length_offset), (0x1_0000_0000, 7, 10));
        // WRPROTECT, LBDATA/PBDATA: 24/00 at byte 1.
        for b1 in [0x20, 0x02, 0x04] {
            let mut c = ws10;
            c[1] = b1;
            assert_eq!(
                pointer(WriteSameCdb::decode(&c).unwrap_err()),
                (Asc::INVALID_FIELD_IN_CDB, Some(1))
            );
        }
        assert!(WriteSameCdb::decode(&ws10[..9]).is_err());
    }

    #[test]
    fn unmap_list_rules() {
        let list = UnmapList {
            ranges: vec![
                UnmapRange { lba: 8, blocks: 16 },
                UnmapRange {
                    lba: 100,
                    blocks: 1,
                },
            ],
        };
        let bytes = list.encode();
        assert_eq!(bytes[..8], [0, 38, 0, 32, 0, 0, 0, 0]);
        assert_eq!(
            bytes[8..24],
            [0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 16, 0, 0, 0, 0]
        );
        assert_eq!(UnmapList::decode(&bytes, 40, 256), Ok(list.clone()));
        // No list, a list too short for its header, a truncated last descriptor.
        assert_eq!(UnmapList::decode(&[], 0, 256), Ok(UnmapList::default()));
        let e = UnmapList::decode(&bytes, 7, 256).unwrap_err();
        assert_eq!(e, DecodeError::new(Reason::ParameterListLength, 0));
        assert_eq!(Sense::from(e).asc, Asc::PARAMETER_LIST_LENGTH_ERROR);
        // As many descriptors as the device takes is fine.
        assert_eq!(UnmapList::decode(&bytes, 40, 2), Ok(list.clone()));
        // ANCHOR is byte 1 bit 0 of the CDB.
        let cdb = |b1: u8| [0x42, b1, 0, 0, 0, 0, 0, 0, 24, 0];
        assert!(!UnmapCdb::decode(&cdb(0)).unwrap().anchor);
        assert!(UnmapCdb::decode(&cdb(1)).unwrap().anchor);
        assert_eq!(UnmapList::decode(&bytes, 39, 256).unwrap().ranges.len(), 1);
        // More descriptors than the device takes: 26/00 at byte 2.
        assert_eq!(
            pointer(UnmapList::decode(&bytes, 40, 1).unwrap_err()),
            (Asc::INVALID_FIELD_IN_PARAMETER_LIST, Some(2))
        );
        assert_eq!(list.check(101, 17), Ok(()));
        assert_eq!(
            list.check(100, 17).unwrap_err().asc,
            Asc::LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE
        );
        let e = list.check(101, 16).unwrap_err();
        assert_eq!(
            (e.asc, e.field_pointer()),
            (Asc::INVALID_FIELD_IN_PARAMETER_LIST, Some(32))
        );
        let over = UnmapList {
            ranges: vec![UnmapRange {
                lba: u64::MAX,
                blocks: 2,
            }],
        };
        assert!(over.check(u64::MAX, 4).is_err());
        assert_eq!(
            UnmapCdb::decode(&[0x42, 1, 0, 0, 0, 0, 0, 0, 24, 0]),
            Ok(UnmapCdb {
                anchor: true,
                parameter_list_length: 24
            })
        );
    }

    #[test]
    fn get_lba_status() {
        let mut cdb = [0u8; 16];
        cdb[0] = 0x9e;
        cdb[1] = 0x12;
        cdb[9] = 5;
        cdb[13] = 24;
        assert_eq!(
            GetLbaStatusCdb::decode(&cdb),
            Ok(GetLbaStatusCdb {
                lba: 5,
                allocation_length: 24
            })
        );
        cdb[1] = 0x10;
        assert!(GetLbaStatusCdb::decode(&cdb).is_err());
        let d = lba_status_data(&[
            LbaStatus {
                lba: 5,
                blocks: 3,
                status: Provisioning::Deallocated,
            },
            LbaStatus {
                lba: 8,
                blocks: 0x100,
                status: Provisioning::Mapped,
            },
        ]);
        assert_eq!(d[..8], [0, 0, 0, 36, 0, 0, 0, 0]);
        assert_eq!(d[8..24], [0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 3, 1, 0, 0, 0]);
        assert_eq!(d[24..40], [0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 1, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn vpd_bodies() {
        let p = Provisioned {
            unmap: true,
            write_same_unmap: true,
            reads_zeros: true,
        };
        assert_eq!(p.encode_body(), [0, 0xe4, 0x02, 0]);
        assert_eq!(Provisioned::default().encode_body(), [0, 0, 0x02, 0]);
        let b1 = block_device_characteristics_body();
        assert_eq!((b1.len(), &b1[..4]), (0x3c, &[0u8, 1, 0, 0x40][..]));
    }
}
