//! Segment descriptors of an EXTENDED COPY parameter list, 00h-15h: SPC-3 6.3.7 with the
//! byte layouts confirmed in spec Part B 1 (SPC-2 r20, SPC-4 draft tables, QNAP and
//! python-scsi offsets).
//!
//! Common header: byte 0 type, byte 1 DC (bit 1, 02h/0Dh only) and CAT (bit 0; absent from
//! 07h and 10h-15h), bytes 2-3 DESCRIPTOR LENGTH (bytes after byte 3), 4-5 source and 6-7
//! destination CSCD descriptor ID.

mod decode;
mod encode;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::persistent_reservation::RegisterAndMoveList;

/// A CSCD DESCRIPTOR ID (SPC-4 Table 148; SPC-3's TARGET DESCRIPTOR INDEX).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CscdId(pub u16);

impl CscdId {
    /// A null logical unit of peripheral device type 00h (block).
    pub const NULL_BLOCK: Self = Self(0xc000);
    /// A null logical unit of peripheral device type 01h (stream).
    pub const NULL_STREAM: Self = Self(0xc001);
    /// The logical unit that holds this copy manager (the one EXTENDED COPY was sent to).
    pub const COPY_MANAGER: Self = Self(0xffff);

    /// What the ID refers to.
    pub fn target(self) -> CscdTarget {
        match self.0 {
            0x0000..=0x07ff => CscdTarget::Index(usize::from(self.0)),
            0xc000 => CscdTarget::NullBlock,
            0xc001 => CscdTarget::NullStream,
            0xffff => CscdTarget::CopyManager,
            _ => CscdTarget::Reserved,
        }
    }
}

impl fmt::Debug for CscdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06x}", self.0)
    }
}

/// The meaning of a [`CscdId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CscdTarget {
    /// An index into the CSCD descriptor list.
    Index(usize),
    /// C000h: a null block device; it never receives commands.
    NullBlock,
    /// C001h: a null stream device; it never receives commands.
    NullStream,
    /// FFFFh: the logical unit the EXTENDED COPY was sent to.
    CopyManager,
    /// Reserved values (including F800h, which names a ROD, LID4 only).
    Reserved,
}

/// A segment descriptor: CAT plus the typed body.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SegmentDescriptor {
    /// CAT: carry leftover data into the next segment (ignored by the types without it).
    #[serde(default)]
    pub cat: bool,
    #[serde(flatten)]
    pub body: Segment,
}

/// The typed body of a segment descriptor, one variant per type (hold variants of
/// 00h-03h and 06h are the same variant with `hold` set).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Segment {
    /// 00h block→stream, 0Bh with hold. NUMBER OF BLOCKS counts source blocks.
    BlockToStream {
        #[serde(default)]
        hold: bool,
        source: CscdId,
        destination: CscdId,
        stream_transfer_length: u32,
        blocks: u16,
        lba: u64,
    },
    /// 01h stream→block, 0Ch with hold. NUMBER OF BLOCKS counts destination blocks.
    StreamToBlock {
        #[serde(default)]
        hold: bool,
        source: CscdId,
        destination: CscdId,
        stream_transfer_length: u32,
        blocks: u16,
        lba: u64,
    },
    /// 02h block→block, 0Dh with hold. DC=1: NUMBER OF BLOCKS counts destination blocks.
    BlockToBlock {
        #[serde(default)]
        hold: bool,
        #[serde(default)]
        dc: bool,
        source: CscdId,
        destination: CscdId,
        blocks: u16,
        source_lba: u64,
        destination_lba: u64,
    },
    /// 03h stream→stream, 0Eh with hold.
    StreamToStream {
        #[serde(default)]
        hold: bool,
        source: CscdId,
        destination: CscdId,
        source_transfer_length: u32,
        destination_transfer_length: u32,
        byte_count: u32,
    },
    /// 04h inline data→stream.
    InlineToStream {
        destination: CscdId,
        stream_transfer_length: u32,
        inline_offset: u32,
        bytes: u32,
    },
    /// 05h embedded data→stream.
    EmbeddedToStream {
        destination: CscdId,
        stream_transfer_length: u32,
        #[serde(with = "hex_bytes")]
        data: Vec<u8>,
    },
    /// 06h stream→discard, 0Fh with hold.
    StreamToDiscard {
        #[serde(default)]
        hold: bool,
        source: CscdId,
        stream_transfer_length: u32,
        bytes: u32,
    },
    /// 07h verify CSCD (TUR: send TEST UNIT READY).
    VerifyCscd {
        source: CscdId,
        #[serde(default)]
        tur: bool,
    },
    /// 08h block<o>→stream.
    BlockOffsetToStream {
        source: CscdId,
        destination: CscdId,
        stream_transfer_length: u32,
        bytes: u32,
        lba: u64,
        byte_offset: u16,
    },
    /// 09h stream→block<o>.
    StreamToBlockOffset {
        source: CscdId,
        destination: CscdId,
        stream_transfer_length: u32,
        bytes: u32,
        lba: u64,
        byte_offset: u16,
    },
    /// 0Ah block<o>→block<o>.
    BlockOffsetToBlockOffset {
        source: CscdId,
        destination: CscdId,
        bytes: u32,
        source_lba: u64,
        destination_lba: u64,
        source_byte_offset: u16,
        destination_byte_offset: u16,
    },
    /// 10h write filemarks (W_IMMED, 24-bit count).
    WriteFilemarks {
        destination: CscdId,
        #[serde(default)]
        immed: bool,
        count: u32,
    },
    /// 11h space (CODE as in SPACE(6), 24-bit two's complement count).
    Space {
        destination: CscdId,
        code: u8,
        count: i32,
    },
    /// 12h locate (logical object identifier).
    Locate {
        destination: CscdId,
        logical_object_id: u32,
    },
    /// 13h tape image copy (COUNT consecutive filemarks end it; 0 = to end of data).
    TapeImageCopy {
        source: CscdId,
        destination: CscdId,
        count: u32,
    },
    /// 14h register persistent reservation key.
    RegisterKey {
        destination: CscdId,
        reservation_key: u64,
        service_action_reservation_key: u64,
    },
    /// 15h third-party persistent reservations source I_T nexus.
    ThirdPartyPrSource {
        destination: CscdId,
        reservation_key: u64,
        service_action_reservation_key: u64,
        #[serde(default)]
        unreg: bool,
        #[serde(default)]
        aptpl: bool,
        relative_target_port: u16,
        #[serde(with = "hex_bytes")]
        transport_id: Vec<u8>,
    },
}

/// The name of segment descriptor type `code` (SPC-3 Table 38).
pub fn type_name(code: u8) -> &'static str {
    match code {
        0x00 => "block→stream",
        0x01 => "stream→block",
        0x02 => "block→block",
        0x03 => "stream→stream",
        0x04 => "inline data→stream",
        0x05 => "embedded data→stream",
        0x06 => "stream→discard",
        0x07 => "verify CSCD",
        0x08 => "block<o>→stream",
        0x09 => "stream→block<o>",
        0x0a => "block<o>→block<o>",
        0x0b => "block→stream & application client",
        0x0c => "stream→block & application client",
        0x0d => "block→block & application client",
        0x0e => "stream→stream & application client",
        0x0f => "stream→discard & application client",
        0x10 => "write filemarks",
        0x11 => "space",
        0x12 => "locate",
        0x13 => "tape image copy",
        0x14 => "register persistent reservation key",
        0x15 => "third party persistent reservations source I_T nexus",
        0x16 => "block image copy",
        0xbe | 0xbf => "populate ROD",
        0xc0..=0xdf => "vendor specific",
        _ => "reserved",
    }
}

/// The fixed DESCRIPTOR LENGTH of type `code`, or None for the variable ones (05h, 15h).
fn fixed_descriptor_length(code: u8) -> Option<u16> {
    match code {
        0x00 | 0x01 | 0x0b | 0x0c => Some(0x14),
        0x02 | 0x0d => Some(0x18),
        0x03 | 0x0e | 0x04 => Some(0x10),
        0x06 | 0x0f => Some(0x0c),
        0x07 | 0x10 | 0x11 | 0x12 | 0x13 => Some(0x08),
        0x08 | 0x09 | 0x14 => Some(0x18),
        0x0a => Some(0x1c),
        _ => None,
    }
}

impl Segment {
    /// 15h: the REGISTER AND MOVE parameter list the segment carries, which is its body
    /// from byte 8 on (SPC-4 6.3.7.23); None for any other type.
    pub fn register_and_move_list(&self) -> Option<RegisterAndMoveList<'_>> {
        let Self::ThirdPartyPrSource {
            reservation_key,
            service_action_reservation_key,
            unreg,
            aptpl,
            relative_target_port,
            ref transport_id,
            ..
        } = *self
        else {
            return None;
        };
        Some(RegisterAndMoveList {
            reservation_key,
            service_action_reservation_key,
            unreg,
            aptpl,
            relative_target_port,
            transport_id,
        })
    }

    /// The descriptor type code (hold variants map to 0Bh-0Fh).
    pub fn type_code(&self) -> u8 {
        match *self {
            Self::BlockToStream { hold, .. } => {
                if hold {
                    0x0b
                } else {
                    0x00
                }
            }
            Self::StreamToBlock { hold, .. } => {
                if hold {
                    0x0c
                } else {
                    0x01
                }
            }
            Self::BlockToBlock { hold, .. } => {
                if hold {
                    0x0d
                } else {
                    0x02
                }
            }
            Self::StreamToStream { hold, .. } => {
                if hold {
                    0x0e
                } else {
                    0x03
                }
            }
            Self::InlineToStream { .. } => 0x04,
            Self::EmbeddedToStream { .. } => 0x05,
            Self::StreamToDiscard { hold, .. } => {
                if hold {
                    0x0f
                } else {
                    0x06
                }
            }
            Self::VerifyCscd { .. } => 0x07,
            Self::BlockOffsetToStream { .. } => 0x08,
            Self::StreamToBlockOffset { .. } => 0x09,
            Self::BlockOffsetToBlockOffset { .. } => 0x0a,
            Self::WriteFilemarks { .. } => 0x10,
            Self::Space { .. } => 0x11,
            Self::Locate { .. } => 0x12,
            Self::TapeImageCopy { .. } => 0x13,
            Self::RegisterKey { .. } => 0x14,
            Self::ThirdPartyPrSource { .. } => 0x15,
        }
    }

    /// Whether the type has a CAT bit (SPC-4: not 07h, 10h-15h).
    pub fn has_cat(&self) -> bool {
        !matches!(self.type_code(), 0x07 | 0x10..=0x15)
    }

    /// The SOURCE CSCD DESCRIPTOR ID, for types that have a source.
    pub fn source(&self) -> Option<CscdId> {
        match *self {
            Self::BlockToStream { source, .. }
            | Self::StreamToBlock { source, .. }
            | Self::BlockToBlock { source, .. }
            | Self::StreamToStream { source, .. }
            | Self::StreamToDiscard { source, .. }
            | Self::VerifyCscd { source, .. }
            | Self::BlockOffsetToStream { source, .. }
            | Self::StreamToBlockOffset { source, .. }
            | Self::BlockOffsetToBlockOffset { source, .. }
            | Self::TapeImageCopy { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The DESTINATION CSCD DESCRIPTOR ID, for types that have a destination.
    pub fn destination(&self) -> Option<CscdId> {
        match *self {
            Self::BlockToStream { destination, .. }
            | Self::StreamToBlock { destination, .. }
            | Self::BlockToBlock { destination, .. }
            | Self::StreamToStream { destination, .. }
            | Self::InlineToStream { destination, .. }
            | Self::EmbeddedToStream { destination, .. }
            | Self::BlockOffsetToStream { destination, .. }
            | Self::StreamToBlockOffset { destination, .. }
            | Self::BlockOffsetToBlockOffset { destination, .. }
            | Self::WriteFilemarks { destination, .. }
            | Self::Space { destination, .. }
            | Self::Locate { destination, .. }
            | Self::TapeImageCopy { destination, .. }
            | Self::RegisterKey { destination, .. }
            | Self::ThirdPartyPrSource { destination, .. } => Some(destination),
            _ => None,
        }
    }

    /// Whether processed data is held for RECEIVE DATA (0Bh-0Fh).
    pub fn holds_data(&self) -> bool {
        (0x0b..=0x0f).contains(&self.type_code())
    }
}

/// Serde for byte strings as hex text (TOML and JSON friendly).
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(Vec::new());
        }
        crate::designator::parse_hex(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not hex bytes")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{DecodeError, Reason};
    use crate::limits::SUPPORTED_SEGMENT_TYPES;
    use crate::reader::Reader;

    fn decode(bytes: &[u8]) -> Result<SegmentDescriptor, DecodeError> {
        SegmentDescriptor::decode(&mut Reader::at(bytes, 100), SUPPORTED_SEGMENT_TYPES)
    }

    #[test]
    fn block_to_block_as_libiscsi_sends_it() {
        // 02h, DC=0, length 0018h, src 0, dst 0, 2048 blocks, LBA 0 -> LBA 0x1000
        let bytes = [
            0x02, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x00,
        ];
        let seg = decode(&bytes).unwrap();
        assert_eq!(
            seg.body,
            Segment::BlockToBlock {
                hold: false,
                dc: false,
                source: CscdId(0),
                destination: CscdId(0),
                blocks: 2048,
                source_lba: 0,
                destination_lba: 0x1000,
            }
        );
        let mut out = Vec::new();
        seg.encode(&mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn block_to_stream_offsets_match_part_b_1_2() {
        let mut bytes = vec![0x00, 0x01, 0x00, 0x14, 0x00, 0x00, 0x00, 0x01];
        bytes.extend_from_slice(&[0x00, 0x04, 0x00, 0x00]); // STL 256 KiB
        bytes.extend_from_slice(&[0x00, 0x00, 0x02, 0x00]); // 512 blocks
        bytes.extend_from_slice(&0x1234u64.to_be_bytes());
        let seg = decode(&bytes).unwrap();
        assert!(seg.cat);
        assert_eq!(
            seg.body,
            Segment::BlockToStream {
                hold: false,
                source: CscdId(0),
                destination: CscdId(1),
                stream_transfer_length: 0x040000,
                blocks: 512,
                lba: 0x1234
            }
        );
    }

    #[test]
    fn sg_xcopy_empty_body_quirk_is_26_00_at_the_length() {
        // sg_xcopy's seg_desc_from_dd_type() may pick 00h and send a 4-byte header with
        // DESCRIPTOR LENGTH 0 (users.md 1.6): refuse it cleanly, pointing at byte 2.
        assert_eq!(
            decode(&[0x00, 0x00, 0x00, 0x00]).unwrap_err(),
            DecodeError::invalid(102)
        );
    }

    #[test]
    fn unsupported_types_are_26_09() {
        for code in [0x16, 0xbe, 0xc0, 0xe4] {
            let err = decode(&[code, 0, 0, 0]).unwrap_err();
            assert_eq!(
                err,
                DecodeError::new(Reason::UnsupportedSegmentDescriptorType, 100)
            );
        }
    }

    #[test]
    fn embedded_data_count_beyond_the_descriptor_is_26_00() {
        let mut bytes = vec![
            0x05, 0x00, 0x00, 0x10, 0, 0, 0, 1, 0, 0, 0, 4, 0x00, 0x05, 0, 0,
        ];
        bytes.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(decode(&bytes).unwrap_err(), DecodeError::invalid(112));
        bytes[13] = 3;
        let seg = decode(&bytes).unwrap();
        assert_eq!(
            seg.body,
            Segment::EmbeddedToStream {
                destination: CscdId(1),
                stream_transfer_length: 4,
                data: vec![1, 2, 3]
            }
        );
        bytes[3] = 0x11; // not a multiple of 4
        assert_eq!(decode(&bytes).unwrap_err(), DecodeError::invalid(102));
    }

    #[test]
    fn space_count_is_signed_24_bit_and_cat_is_ignored_where_absent() {
        let bytes = [0x11, 0x01, 0x00, 0x08, 0, 0, 0, 2, 0x01, 0xff, 0xff, 0xfe];
        let seg = decode(&bytes).unwrap();
        assert!(!seg.cat);
        assert_eq!(
            seg.body,
            Segment::Space {
                destination: CscdId(2),
                code: 1,
                count: -2
            }
        );
        let mut out = Vec::new();
        seg.encode(&mut out);
        assert_eq!(out[1], 0);
        assert_eq!(out[8..], bytes[8..]);
    }

    /// A fixed-length descriptor: the header, then `fields` at their descriptor offsets.
    fn case(code: u8, b1: u8, ids: [u16; 2], length: u8, fields: &[(usize, &[u8])]) -> Vec<u8> {
        let mut bytes = vec![0u8; 4 + usize::from(length)];
        bytes[..4].copy_from_slice(&[code, b1, 0, length]);
        bytes[4..6].copy_from_slice(&ids[0].to_be_bytes());
        bytes[6..8].copy_from_slice(&ids[1].to_be_bytes());
        for &(at, value) in fields {
            bytes[at..at + value.len()].copy_from_slice(value);
        }
        bytes
    }

    /// One descriptor of every type, each field a distinct nonzero value at its own offset
    /// (reserved bytes zero), re-encodes to exactly its own bytes: the encoder's family
    /// writers put every field where the decoder reads it.
    #[test]
    fn every_type_re_encodes_to_its_own_bytes() {
        let all: Vec<u8> = (0x00..=0x15).collect();
        let lba = |n: u8| [0, 0, 0, 0, 0, 0, 1, n];
        let mut cases = vec![
            case(
                0x00,
                1,
                [1, 2],
                0x14,
                &[(9, &[0, 0, 0x10]), (14, &[0, 3]), (16, &lba(4))],
            ),
            case(
                0x01,
                0,
                [2, 1],
                0x14,
                &[(9, &[0, 2, 0]), (14, &[0, 5]), (16, &lba(6))],
            ),
            case(
                0x02,
                3,
                [1, 3],
                0x18,
                &[(10, &[0, 7]), (12, &lba(8)), (20, &lba(9))],
            ),
            case(
                0x03,
                1,
                [2, 4],
                0x10,
                &[(9, &[0, 0, 0x20]), (13, &[0, 0, 0x40]), (16, &[0, 0, 1, 0])],
            ),
            case(
                0x04,
                1,
                [0, 2],
                0x10,
                &[
                    (9, &[0, 0, 0x30]),
                    (12, &[0, 0, 0, 8]),
                    (16, &[0, 0, 0, 0x0c]),
                ],
            ),
            case(
                0x06,
                1,
                [2, 0],
                0x0c,
                &[(9, &[0, 1, 0]), (12, &[0, 0, 2, 0])],
            ),
            case(0x07, 0, [3, 0], 0x08, &[(8, &[1])]),
            case(
                0x08,
                1,
                [1, 2],
                0x18,
                &[
                    (9, &[0, 0, 0x50]),
                    (12, &[0, 0, 0, 0x11]),
                    (16, &lba(0x12)),
                    (26, &[0, 0x13]),
                ],
            ),
            case(
                0x09,
                0,
                [2, 1],
                0x18,
                &[
                    (9, &[0, 0, 0x60]),
                    (12, &[0, 0, 0, 0x14]),
                    (16, &lba(0x15)),
                    (26, &[0, 0x16]),
                ],
            ),
            case(
                0x0a,
                1,
                [1, 3],
                0x1c,
                &[
                    (8, &[0, 0, 0, 0x17]),
                    (12, &lba(0x18)),
                    (20, &lba(0x19)),
                    (28, &[0, 0x1a]),
                    (30, &[0, 0x1b]),
                ],
            ),
            case(
                0x0b,
                1,
                [1, 2],
                0x14,
                &[(9, &[0, 0, 0x70]), (14, &[0, 1]), (16, &lba(0x1c))],
            ),
            case(
                0x0c,
                0,
                [2, 1],
                0x14,
                &[(9, &[0, 0, 0x80]), (14, &[0, 2]), (16, &lba(0x1d))],
            ),
            case(
                0x0d,
                2,
                [1, 3],
                0x18,
                &[(10, &[0, 3]), (12, &lba(0x1e)), (20, &lba(0x1f))],
            ),
            case(
                0x0e,
                1,
                [2, 4],
                0x10,
                &[
                    (9, &[0, 0, 0x90]),
                    (13, &[0, 0, 0xa0]),
                    (16, &[0, 0, 0, 0x21]),
                ],
            ),
            case(
                0x0f,
                0,
                [2, 0],
                0x0c,
                &[(9, &[0, 0, 0xb0]), (12, &[0, 0, 0, 0x22])],
            ),
            case(0x10, 0, [0, 2], 0x08, &[(8, &[1]), (9, &[0, 0, 3])]),
            case(
                0x11,
                0,
                [0, 2],
                0x08,
                &[(8, &[2]), (9, &[0xff, 0xff, 0xfe])],
            ),
            case(0x12, 0, [0, 2], 0x08, &[(8, &[0, 0, 1, 0x23])]),
            case(0x13, 0, [2, 4], 0x08, &[(8, &[0, 0, 0, 2])]),
            case(
                0x14,
                0,
                [0, 2],
                0x18,
                &[
                    (8, &[1, 2, 3, 4, 5, 6, 7, 8]),
                    (16, &[8, 7, 6, 5, 4, 3, 2, 1]),
                ],
            ),
        ];
        // 05h: 5 bytes of embedded data, padded to 8.
        let mut embedded = vec![
            0x05, 0x01, 0x00, 0x14, 0, 0, 0, 2, 0, 0, 0, 0x40, 0, 5, 0, 0,
        ];
        embedded.extend_from_slice(&[1, 2, 3, 4, 5, 0, 0, 0]);
        cases.push(embedded);
        // 15h: a 24-byte TransportID, UNREG and APTPL set.
        let mut pr = vec![0x15, 0x00, 0x00, 52, 0, 0, 0, 2];
        pr.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
        pr.extend_from_slice(&[0, 0x03, 0, 1]);
        pr.extend_from_slice(&24u32.to_be_bytes());
        pr.extend_from_slice(&[0x05; 24]);
        cases.push(pr);
        let mut seen = Vec::new();
        for bytes in cases {
            let descriptor = SegmentDescriptor::decode(&mut Reader::at(&bytes, 0), &all)
                .unwrap_or_else(|e| panic!("{:02x}: {e:?}", bytes[0]));
            assert_eq!(descriptor.body.type_code(), bytes[0]);
            let mut out = Vec::new();
            descriptor.encode(&mut out);
            assert_eq!(out, bytes, "type {:02x}", bytes[0]);
            seen.push(bytes[0]);
        }
        seen.sort_unstable();
        assert_eq!(seen, all);
    }

    #[test]
    fn third_party_pr_transport_id_length_must_match() {
        let mut bytes = vec![0x15, 0x00, 0x00, 52, 0, 0, 0, 0];
        bytes.extend_from_slice(&[0; 16]);
        bytes.extend_from_slice(&[0, 0x03, 0, 1]);
        bytes.extend_from_slice(&24u32.to_be_bytes());
        bytes.extend_from_slice(&[0x05; 24]);
        let seg = decode(&bytes).unwrap();
        assert!(matches!(
            seg.body,
            Segment::ThirdPartyPrSource {
                unreg: true,
                aptpl: true,
                relative_target_port: 1,
                ..
            }
        ));
        bytes[31] = 20;
        assert_eq!(decode(&bytes).unwrap_err(), DecodeError::invalid(128));
    }

    #[test]
    fn cscd_id_targets() {
        assert_eq!(CscdId(5).target(), CscdTarget::Index(5));
        assert_eq!(CscdId(0x07ff).target(), CscdTarget::Index(0x7ff));
        assert_eq!(CscdId(0x0800).target(), CscdTarget::Reserved);
        assert_eq!(CscdId::NULL_BLOCK.target(), CscdTarget::NullBlock);
        assert_eq!(CscdId::NULL_STREAM.target(), CscdTarget::NullStream);
        assert_eq!(CscdId(0xf800).target(), CscdTarget::Reserved);
        assert_eq!(CscdId::COPY_MANAGER.target(), CscdTarget::CopyManager);
    }

    /// SPC-4 Table 127's names for what xcopyd does not serve, and the CSCD ID's Debug form.
    #[test]
    fn names_of_unserved_types_and_ids() {
        assert_eq!(type_name(0x16), "block image copy");
        assert_eq!(type_name(0xbe), "populate ROD");
        assert_eq!(type_name(0xc0), "vendor specific");
        assert_eq!(type_name(0xdf), "vendor specific");
        assert_eq!(type_name(0x17), "reserved");
        assert_eq!(type_name(0xe0), "reserved");
        assert_eq!(format!("{:?}", CscdId(0x1f)), "0x001f");
    }

    /// Held data: 0Bh-0Fh (the hold forms), never 00h-0Ah.
    #[test]
    fn which_segments_hold_data() {
        let discard = |hold| Segment::StreamToDiscard {
            hold,
            source: CscdId(0),
            stream_transfer_length: 1,
            bytes: 1,
        };
        assert!(discard(true).holds_data());
        assert!(!discard(false).holds_data());
    }

    /// Embedded data in TOML is hex (empty allowed); anything else is refused.
    #[test]
    fn embedded_data_is_hex() {
        let parse = |data: &str| -> Result<Segment, toml::de::Error> {
            toml::from_str(&format!(
                "type = \"embedded_to_stream\"\ndestination = 0\nstream_transfer_length = 2\ndata = \"{data}\"\n"
            ))
        };
        match parse("a5:b6").unwrap() {
            Segment::EmbeddedToStream { data, .. } => assert_eq!(data, [0xa5, 0xb6]),
            other => panic!("{other:?}"),
        }
        match parse("").unwrap() {
            Segment::EmbeddedToStream { data, .. } => assert!(data.is_empty()),
            other => panic!("{other:?}"),
        }
        assert!(parse("zz").is_err());
    }
}
