//! Medium auxiliary memory: READ ATTRIBUTE (8Ch) and WRITE ATTRIBUTE (8Dh) (SPC-4 6.17,
//! 6.44; attribute identifiers SPC-4 7.4, SSC-4 for the tape ones) as bytes <-> types.
//!
//! An attribute is a 2-byte identifier, a byte with READ ONLY (bit 7) and FORMAT (bits 1-0:
//! binary, ASCII, text), a 2-byte length and the value. Identifiers 0000h-03FFh are device
//! attributes and 0400h-07FFh medium attributes (read only to a host); 0800h-0BFFh and
//! 1400h-17FFh are host attributes an application writes.

use super::error::{DecodeError, Reason};
use super::reader::{Put, Reader};

/// Attribute identifiers this drive reports or checks (SPC-4 Table 236 ff., sg3_utils'
/// sg_read_attr table).
pub mod id {
    pub const REMAINING_CAPACITY: u16 = 0x0000;
    pub const MAXIMUM_CAPACITY: u16 = 0x0001;
    pub const LOAD_COUNT: u16 = 0x0003;
    pub const MAM_SPACE_REMAINING: u16 = 0x0004;
    pub const ASSIGNING_ORGANIZATION: u16 = 0x0005;
    pub const FORMAT_DENSITY_CODE: u16 = 0x0006;
    pub const VOLUME_CHANGE_REFERENCE: u16 = 0x0009;
    pub const MEDIUM_MANUFACTURER: u16 = 0x0400;
    pub const MEDIUM_SERIAL_NUMBER: u16 = 0x0401;
    pub const MEDIUM_DENSITY_CODE: u16 = 0x0405;
    pub const MAM_CAPACITY: u16 = 0x0407;
    pub const MEDIUM_TYPE: u16 = 0x0408;
    pub const APPLICATION_VENDOR: u16 = 0x0800;
    pub const BARCODE: u16 = 0x0806;
    pub const VOLUME_COHERENCY_INFORMATION: u16 = 0x080c;
}

/// FORMAT values.
pub mod format {
    pub const BINARY: u8 = 0;
    pub const ASCII: u8 = 1;
    pub const TEXT: u8 = 2;
}

/// Whether a host may write attribute `id` (host and host vendor-specific ranges).
pub fn host_writable(id: u16) -> bool {
    matches!(id, 0x0800..=0x0bff | 0x1400..=0x17ff)
}

/// The fixed length of a standard host attribute (SPC-4 Table 240), None when variable or
/// unknown.
pub fn host_length(id: u16) -> Option<usize> {
    Some(match id {
        0x0800 => 8,
        0x0801 => 32,
        0x0802 => 8,
        0x0803 => 160,
        0x0804 => 12,
        0x0805 => 1,
        0x0806 => 32,
        0x0807 => 80,
        0x0808 => 160,
        0x0809 => 16,
        0x080a => 1,
        0x080b => 16,
        _ => return None,
    })
}

/// One attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    pub id: u16,
    pub read_only: bool,
    pub format: u8,
    pub value: Vec<u8>,
}

impl Attribute {
    pub fn binary(id: u16, value: &[u8]) -> Self {
        Self {
            id,
            read_only: true,
            format: format::BINARY,
            value: value.to_vec(),
        }
    }

    /// An ASCII attribute of `len` bytes, left-aligned and space padded.
    pub fn ascii(id: u16, text: &str, len: usize) -> Self {
        let mut value: Vec<u8> = text.bytes().take(len).collect();
        value.resize(len, b' ');
        Self {
            id,
            read_only: true,
            format: format::ASCII,
            value,
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.id);
        out.put_u8((u8::from(self.read_only) << 7) | (self.format & 0x03));
        let n = self.value.len().min(usize::from(u16::MAX));
        out.put_u16(n as u16);
        out.extend_from_slice(self.value.get(..n).unwrap_or_default());
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = r.u16()?;
        let b2 = r.u8()?;
        let len = r.u16()?;
        Ok(Self {
            id,
            read_only: b2 & 0x80 != 0,
            format: b2 & 0x03,
            value: r.take(usize::from(len))?.to_vec(),
        })
    }
}

/// READ ATTRIBUTE service actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadAttributeAction {
    /// 00h: the attributes from FIRST ATTRIBUTE IDENTIFIER on.
    Values,
    /// 01h: the identifiers of the attributes present.
    List,
    /// 03h: the partitions with attributes.
    PartitionList,
    /// 05h: the identifiers of the attributes supported.
    Supported,
}

/// READ ATTRIBUTE CDB (SPC-4 6.17.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadAttribute {
    pub action: ReadAttributeAction,
    pub volume: u8,
    pub partition: u8,
    pub first: u16,
    pub allocation_length: u32,
}

fn cdb16(cdb: &[u8]) -> Result<[u8; 16], DecodeError> {
    cdb.get(..16)
        .and_then(|s| <[u8; 16]>::try_from(s).ok())
        .ok_or_else(|| DecodeError::new(Reason::InvalidFieldInCdb, 0))
}

fn invalid(byte: usize, bit: u8) -> DecodeError {
    DecodeError::new(Reason::InvalidFieldInCdb, byte).with_bit(bit)
}

impl ReadAttribute {
    /// Service actions 02h (logical volume list) and 04h (element addresses) are 24/00.
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, _, _, _, v5, _, p7, f8, f9, a10, a11, a12, a13, _, ctl] = cdb16(cdb)?;
        let action = match b1 & 0x1f {
            0x00 => ReadAttributeAction::Values,
            0x01 => ReadAttributeAction::List,
            0x03 => ReadAttributeAction::PartitionList,
            0x05 => ReadAttributeAction::Supported,
            _ => return Err(invalid(1, 4)),
        };
        if ctl & 0x05 != 0 {
            return Err(invalid(15, 2));
        }
        Ok(Self {
            action,
            volume: v5,
            partition: p7,
            first: u16::from_be_bytes([f8, f9]),
            allocation_length: u32::from_be_bytes([a10, a11, a12, a13]),
        })
    }
}

/// WRITE ATTRIBUTE CDB (SPC-4 6.44.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteAttribute {
    /// WTC: write through the cache (every write here is).
    pub write_through: bool,
    pub volume: u8,
    pub partition: u8,
    pub parameter_list_length: u32,
}

impl WriteAttribute {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, _, _, _, v5, _, p7, _, _, l10, l11, l12, l13, _, ctl] = cdb16(cdb)?;
        if b1 & 0xfe != 0 {
            return Err(invalid(1, 7 - (b1 & 0xfe).leading_zeros() as u8));
        }
        if ctl & 0x05 != 0 {
            return Err(invalid(15, 2));
        }
        Ok(Self {
            write_through: b1 & 0x01 != 0,
            volume: v5,
            partition: p7,
            parameter_list_length: u32::from_be_bytes([l10, l11, l12, l13]),
        })
    }
}

/// READ ATTRIBUTE data: AVAILABLE DATA (4 bytes, the length of what follows) and `body`.
pub fn with_available_data(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + body.len());
    out.put_u32(u32::try_from(body.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(body);
    out
}

/// A WRITE ATTRIBUTE parameter list: PARAMETER DATA LENGTH (4 bytes) and the attributes.
/// Offsets in errors are parameter-list bytes (26/00 with the field pointer, or 1A/00).
/// LTFS sends PARAMETER DATA LENGTH as the length of the whole list, 4 more than the
/// attributes (IBM drives take it): a length past the data by at most those 4 bytes reads
/// the attributes that are there.
pub fn decode_parameter_list(params: &[u8]) -> Result<Vec<Attribute>, DecodeError> {
    let mut r = Reader::new(params);
    let len = r.u32()? as usize;
    let available = r.remaining();
    if len > available + 4 {
        return Err(DecodeError::new(Reason::ParameterListLength, 0));
    }
    let mut body = r.sub(len.min(available))?;
    let mut out = Vec::new();
    while !body.is_empty() {
        out.push(Attribute::decode(&mut body)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdbs_spc4_6_17_and_6_44() {
        let mut c = [0u8; 16];
        c[0] = 0x8c;
        c[7] = 1;
        c[8..10].copy_from_slice(&[0x08, 0x0c]);
        c[10..14].copy_from_slice(&1024u32.to_be_bytes());
        let r = ReadAttribute::decode(&c).unwrap();
        assert_eq!(
            (r.action, r.partition, r.first, r.allocation_length),
            (ReadAttributeAction::Values, 1, 0x080c, 1024)
        );
        c[1] = 0x02;
        let e = ReadAttribute::decode(&c).unwrap_err();
        assert_eq!((e.offset, e.bit), (1, Some(4)));
        let mut w = [0u8; 16];
        w[0] = 0x8d;
        w[1] = 1;
        w[10..14].copy_from_slice(&20u32.to_be_bytes());
        let d = WriteAttribute::decode(&w).unwrap();
        assert!(d.write_through && d.parameter_list_length == 20);
        w[1] = 2;
        assert_eq!(WriteAttribute::decode(&w).unwrap_err().offset, 1);
    }

    #[test]
    fn attributes_and_parameter_lists() {
        let a = Attribute::ascii(id::APPLICATION_VENDOR, "XCOPY", 8);
        let mut out = Vec::new();
        a.encode(&mut out);
        assert_eq!(out, b"\x08\x00\x81\x00\x08XCOPY   ");
        let mut list = vec![0, 0, 0, 13];
        list.extend_from_slice(b"\x08\x00\x01\x00\x08XCOPY   ");
        let got = decode_parameter_list(&list).unwrap();
        assert_eq!(
            (got[0].id, got[0].read_only, &got[0].value[..5]),
            (0x800, false, &b"XCOPY"[..])
        );
        // PARAMETER DATA LENGTH past the data: 1A/00 (LTFS's 4 bytes too many are taken);
        // an attribute cut short: 1A/00 too.
        list[3] = 17;
        assert_eq!(decode_parameter_list(&list).unwrap()[0].id, 0x800);
        list[3] = 18;
        assert_eq!(
            decode_parameter_list(&list).unwrap_err().reason,
            Reason::ParameterListLength
        );
        assert!(decode_parameter_list(&[0, 0, 0, 4, 8, 0, 1, 0]).is_err());
        assert!(host_writable(0x080c) && !host_writable(0x0401) && !host_writable(0x0c00));
        assert_eq!(with_available_data(&[1, 2]), [0, 0, 0, 2, 1, 2]);
    }

    /// SPC-4 Table 240: the standard host attributes of fixed length; 080Ch (VOLUME
    /// COHERENCY INFORMATION) is variable, the rest of the range unassigned.
    #[test]
    fn host_attribute_lengths_are_spc4_table_240() {
        let table = [
            (0x0800, 8),   // APPLICATION VENDOR
            (0x0801, 32),  // APPLICATION NAME
            (0x0802, 8),   // APPLICATION VERSION
            (0x0803, 160), // USER MEDIUM TEXT LABEL
            (0x0804, 12),  // DATE AND TIME LAST WRITTEN
            (0x0805, 1),   // TEXT LOCALIZATION IDENTIFIER
            (0x0806, 32),  // BARCODE
            (0x0807, 80),  // OWNING HOST TEXTUAL NAME
            (0x0808, 160), // MEDIA POOL
            (0x0809, 16),  // PARTITION USER TEXT LABEL
            (0x080a, 1),   // LOAD/UNLOAD AT PARTITION
            (0x080b, 16),  // APPLICATION FORMAT VERSION
        ];
        for (id, len) in table {
            assert_eq!(host_length(id), Some(len), "{id:04x}");
        }
        for id in [0x080c, 0x07ff, 0x0bff, 0x1400] {
            assert_eq!(host_length(id), None, "{id:04x}");
        }
    }

    /// Byte 2 of an attribute: READ ONLY is bit 7, FORMAT bits 1-0; the bits between are
    /// reserved and not part of FORMAT.
    #[test]
    fn attribute_header_bits() {
        let mut r = Reader::new(b"\x04\x01\x7e\x00\x01Z");
        let a = Attribute::decode(&mut r).unwrap();
        assert_eq!((a.id, a.read_only, a.format), (0x0401, false, format::TEXT));
        let mut r = Reader::new(b"\x04\x01\x80\x00\x00");
        let a = Attribute::decode(&mut r).unwrap();
        assert_eq!(
            (a.read_only, a.format, a.value.len()),
            (true, format::BINARY, 0)
        );
    }

    /// READ ATTRIBUTE's service actions (SPC-4 Table 172): 00h, 01h, 03h and 05h served,
    /// 02h and 04h (volume list, element addresses) 24/00 at byte 1.
    #[test]
    fn read_attribute_service_actions() {
        let mut c = [0u8; 16];
        c[0] = 0x8c;
        for (sa, action) in [
            (0x00, ReadAttributeAction::Values),
            (0x01, ReadAttributeAction::List),
            (0x03, ReadAttributeAction::PartitionList),
            (0x05, ReadAttributeAction::Supported),
        ] {
            c[1] = 0xe0 | sa;
            assert_eq!(ReadAttribute::decode(&c).unwrap().action, action, "{sa}");
        }
        for sa in [0x02, 0x04, 0x06, 0x1f] {
            c[1] = sa;
            assert!(ReadAttribute::decode(&c).is_err(), "{sa}");
        }
    }

    /// WRITE ATTRIBUTE byte 1: WTC is bit 0; any other bit set is 24/00 with the bit
    /// pointer at the highest one set.
    #[test]
    fn write_attribute_byte_1() {
        let mut w = [0u8; 16];
        w[0] = 0x8d;
        assert!(!WriteAttribute::decode(&w).unwrap().write_through);
        for (b1, bit) in [(0x03, 1), (0x80, 7), (0x41, 6), (0x10, 4)] {
            w[1] = b1;
            let e = WriteAttribute::decode(&w).unwrap_err();
            assert_eq!((e.offset, e.bit), (1, Some(bit)), "{b1:02x}");
        }
    }
}
