//! Segment descriptors of an EXTENDED COPY parameter list, 00h-15h: SPC-3 6.3.7 with the
//! byte layouts confirmed in spec Part B 1 (SPC-2 r20, SPC-4 draft tables, QNAP and
//! python-scsi offsets).
//!
//! Common header: byte 0 type, byte 1 DC (bit 1, 02h/0Dh only) and CAT (bit 0; absent from
//! 07h and 10h-15h), bytes 2-3 DESCRIPTOR LENGTH (bytes after byte 3), 4-5 source and 6-7
//! destination CSCD descriptor ID.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::{DecodeError, Reason};
use super::parameter_list::CodeSet;
use super::reader::{Put, Reader};

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

impl SegmentDescriptor {
    /// Encoded length (DESCRIPTOR LENGTH + 4).
    pub fn encoded_len(&self) -> usize {
        match &self.body {
            Segment::EmbeddedToStream { data, .. } => 16 + data.len().next_multiple_of(4),
            Segment::ThirdPartyPrSource { transport_id, .. } => 32 + transport_id.len(),
            body => usize::from(fixed_descriptor_length(body.type_code()).unwrap_or(0)) + 4,
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let code = self.body.type_code();
        let dc = matches!(self.body, Segment::BlockToBlock { dc: true, .. });
        out.put_u8(code);
        out.put_u8((u8::from(dc) << 1) | u8::from(self.cat && self.body.has_cat()));
        out.put_u16(u16::try_from(self.encoded_len() - 4).unwrap_or(u16::MAX));
        out.put_u16(self.body.source().map_or(0, |id| id.0));
        out.put_u16(self.body.destination().map_or(0, |id| id.0));
        match &self.body {
            Segment::BlockToStream {
                stream_transfer_length,
                blocks,
                lba,
                ..
            }
            | Segment::StreamToBlock {
                stream_transfer_length,
                blocks,
                lba,
                ..
            } => {
                out.put_u8(0);
                out.put_u24(*stream_transfer_length);
                out.put_u16(0);
                out.put_u16(*blocks);
                out.put_u64(*lba);
            }
            Segment::BlockToBlock {
                blocks,
                source_lba,
                destination_lba,
                ..
            } => {
                out.put_u16(0);
                out.put_u16(*blocks);
                out.put_u64(*source_lba);
                out.put_u64(*destination_lba);
            }
            Segment::StreamToStream {
                source_transfer_length,
                destination_transfer_length,
                byte_count,
                ..
            } => {
                out.put_u8(0);
                out.put_u24(*source_transfer_length);
                out.put_u8(0);
                out.put_u24(*destination_transfer_length);
                out.put_u32(*byte_count);
            }
            Segment::InlineToStream {
                stream_transfer_length,
                inline_offset,
                bytes,
                ..
            } => {
                out.put_u8(0);
                out.put_u24(*stream_transfer_length);
                out.put_u32(*inline_offset);
                out.put_u32(*bytes);
            }
            Segment::EmbeddedToStream {
                stream_transfer_length,
                data,
                ..
            } => {
                out.put_u8(0);
                out.put_u24(*stream_transfer_length);
                out.put_u16(u16::try_from(data.len()).unwrap_or(u16::MAX));
                out.put_u16(0);
                out.extend_from_slice(data);
                out.put_zeros(data.len().next_multiple_of(4) - data.len());
            }
            Segment::StreamToDiscard {
                stream_transfer_length,
                bytes,
                ..
            } => {
                out.put_u8(0);
                out.put_u24(*stream_transfer_length);
                out.put_u32(*bytes);
            }
            Segment::VerifyCscd { tur, .. } => {
                out.put_u8(u8::from(*tur));
                out.put_zeros(3);
            }
            Segment::BlockOffsetToStream {
                stream_transfer_length,
                bytes,
                lba,
                byte_offset,
                ..
            }
            | Segment::StreamToBlockOffset {
                stream_transfer_length,
                bytes,
                lba,
                byte_offset,
                ..
            } => {
                out.put_u8(0);
                out.put_u24(*stream_transfer_length);
                out.put_u32(*bytes);
                out.put_u64(*lba);
                out.put_u16(0);
                out.put_u16(*byte_offset);
            }
            Segment::BlockOffsetToBlockOffset {
                bytes,
                source_lba,
                destination_lba,
                source_byte_offset,
                destination_byte_offset,
                ..
            } => {
                out.put_u32(*bytes);
                out.put_u64(*source_lba);
                out.put_u64(*destination_lba);
                out.put_u16(*source_byte_offset);
                out.put_u16(*destination_byte_offset);
            }
            Segment::WriteFilemarks { immed, count, .. } => {
                out.put_u8(u8::from(*immed));
                out.put_u24(*count);
            }
            Segment::Space { code, count, .. } => {
                out.put_u8(*code & 0x0f);
                out.put_u24(*count as u32 & 0x00ff_ffff);
            }
            Segment::Locate {
                logical_object_id, ..
            } => out.put_u32(*logical_object_id),
            Segment::TapeImageCopy { count, .. } => out.put_u32(*count),
            Segment::RegisterKey {
                reservation_key,
                service_action_reservation_key,
                ..
            } => {
                out.put_u64(*reservation_key);
                out.put_u64(*service_action_reservation_key);
                out.put_zeros(4);
            }
            Segment::ThirdPartyPrSource {
                reservation_key,
                service_action_reservation_key,
                unreg,
                aptpl,
                relative_target_port,
                transport_id,
                ..
            } => {
                out.put_u64(*reservation_key);
                out.put_u64(*service_action_reservation_key);
                out.put_u8(0);
                out.put_u8((u8::from(*unreg) << 1) | u8::from(*aptpl));
                out.put_u16(*relative_target_port);
                out.put_u32(u32::try_from(transport_id.len()).unwrap_or(u32::MAX));
                out.extend_from_slice(transport_id);
            }
        }
        debug_assert_eq!(out.len() - start, self.encoded_len());
    }

    /// Decodes one descriptor from a reader framed to exactly its length (the framing in
    /// [`super::parameter_list`] has already read DESCRIPTOR LENGTH). Unsupported type ->
    /// 26/09 at byte 0; a DESCRIPTOR LENGTH the type does not have -> 26/00 at byte 2; the
    /// 05h and 15h length rules -> 26/00 at the field in error.
    pub fn decode(r: &mut Reader<'_>, supported: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_with(r, CodeSet::new(supported))
    }

    /// Decodes the next descriptor of a segment list, framed by its own DESCRIPTOR LENGTH
    /// (the list has already been framed, so it fits).
    pub(crate) fn decode_framed(
        list: &mut Reader<'_>,
        supported: CodeSet,
    ) -> Result<Self, DecodeError> {
        let [code, b1, hi, lo] = list.peek_array::<4>()?;
        let length = u16::from_be_bytes([hi, lo]);
        // The common case, a supported fixed-length type with its own length: one take,
        // fields read in place.
        if supported.contains(code) && fixed_descriptor_length(code) == Some(length) {
            let bytes = list.take(4 + usize::from(length))?;
            let body = decode_fixed(
                code,
                (0x0b..=0x0f).contains(&code),
                b1,
                &Fields(bytes.get(4..).unwrap_or_default()),
            );
            return Ok(Self {
                cat: b1 & 0x01 != 0 && body.has_cat(),
                body,
            });
        }
        Self::decode_with(&mut list.sub(4 + usize::from(length))?, supported)
    }

    pub(crate) fn decode_with(r: &mut Reader<'_>, supported: CodeSet) -> Result<Self, DecodeError> {
        let start = r.offset();
        let [code, b1, len_hi, len_lo] = r.array::<4>()?;
        if !supported.contains(code) {
            return Err(DecodeError::new(
                Reason::UnsupportedSegmentDescriptorType,
                start,
            ));
        }
        let length = u16::from_be_bytes([len_hi, len_lo]);
        let hold = (0x0b..=0x0f).contains(&code);
        let body = match fixed_descriptor_length(code) {
            Some(fixed) if fixed != length => return Err(DecodeError::invalid(start + 2)),
            Some(fixed) => {
                // Fixed layouts: read fields at constant offsets of the whole descriptor.
                let rest = r.take(usize::from(fixed))?;
                decode_fixed(code, hold, b1, &Fields(rest))
            }
            None => {
                if length % 4 != 0 || length < if code == 0x05 { 12 } else { 52 } {
                    return Err(DecodeError::invalid(start + 2));
                }
                decode_variable(code, length, r)?
            }
        };
        r.finish()?;
        let cat = b1 & 0x01 != 0 && body.has_cat();
        Ok(Self { cat, body })
    }
}

/// The bytes after a fixed-size descriptor's 4-byte header, read at the descriptor's own
/// byte offsets (so `u16(10)` is descriptor bytes 10-11). Short input reads as zeros; the
/// caller has already checked the length.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    #[inline(always)]
    fn at<const N: usize>(&self, at: usize) -> [u8; N] {
        self.0
            .get(at - 4..)
            .and_then(<[u8]>::first_chunk::<N>)
            .copied()
            .unwrap_or([0; N])
    }
    #[inline(always)]
    fn u8(&self, at: usize) -> u8 {
        self.at::<1>(at)[0]
    }
    #[inline(always)]
    fn u16(&self, at: usize) -> u16 {
        u16::from_be_bytes(self.at(at))
    }
    #[inline(always)]
    fn u24(&self, at: usize) -> u32 {
        let [a, b, c] = self.at(at);
        u32::from_be_bytes([0, a, b, c])
    }
    #[inline(always)]
    fn u32(&self, at: usize) -> u32 {
        u32::from_be_bytes(self.at(at))
    }
    #[inline(always)]
    fn u64(&self, at: usize) -> u64 {
        u64::from_be_bytes(self.at(at))
    }
    #[inline(always)]
    fn id(&self, at: usize) -> CscdId {
        CscdId(self.u16(at))
    }
}

/// The body of a fixed-length segment descriptor (byte offsets as in Part B 1).
fn decode_fixed(code: u8, hold: bool, b1: u8, d: &Fields<'_>) -> Segment {
    let (source, destination) = (d.id(4), d.id(6));
    match code {
        0x00 | 0x0b => Segment::BlockToStream {
            hold,
            source,
            destination,
            stream_transfer_length: d.u24(9),
            blocks: d.u16(14),
            lba: d.u64(16),
        },
        0x01 | 0x0c => Segment::StreamToBlock {
            hold,
            source,
            destination,
            stream_transfer_length: d.u24(9),
            blocks: d.u16(14),
            lba: d.u64(16),
        },
        0x02 | 0x0d => Segment::BlockToBlock {
            hold,
            dc: b1 & 0x02 != 0,
            source,
            destination,
            blocks: d.u16(10),
            source_lba: d.u64(12),
            destination_lba: d.u64(20),
        },
        0x03 | 0x0e => Segment::StreamToStream {
            hold,
            source,
            destination,
            source_transfer_length: d.u24(9),
            destination_transfer_length: d.u24(13),
            byte_count: d.u32(16),
        },
        0x04 => Segment::InlineToStream {
            destination,
            stream_transfer_length: d.u24(9),
            inline_offset: d.u32(12),
            bytes: d.u32(16),
        },
        0x06 | 0x0f => Segment::StreamToDiscard {
            hold,
            source,
            stream_transfer_length: d.u24(9),
            bytes: d.u32(12),
        },
        0x07 => Segment::VerifyCscd {
            source,
            tur: d.u8(8) & 0x01 != 0,
        },
        0x08 => Segment::BlockOffsetToStream {
            source,
            destination,
            stream_transfer_length: d.u24(9),
            bytes: d.u32(12),
            lba: d.u64(16),
            byte_offset: d.u16(26),
        },
        0x09 => Segment::StreamToBlockOffset {
            source,
            destination,
            stream_transfer_length: d.u24(9),
            bytes: d.u32(12),
            lba: d.u64(16),
            byte_offset: d.u16(26),
        },
        0x0a => Segment::BlockOffsetToBlockOffset {
            source,
            destination,
            bytes: d.u32(8),
            source_lba: d.u64(12),
            destination_lba: d.u64(20),
            source_byte_offset: d.u16(28),
            destination_byte_offset: d.u16(30),
        },
        0x10 => Segment::WriteFilemarks {
            destination,
            immed: d.u8(8) & 0x01 != 0,
            count: d.u24(9),
        },
        // 24-bit two's complement, as in SPACE(6).
        0x11 => Segment::Space {
            destination,
            code: d.u8(8) & 0x0f,
            count: ((d.u24(9) << 8) as i32) >> 8,
        },
        0x12 => Segment::Locate {
            destination,
            logical_object_id: d.u32(8),
        },
        0x13 => Segment::TapeImageCopy {
            source,
            destination,
            count: d.u32(8),
        },
        // 14h: the only other fixed-length type.
        _ => Segment::RegisterKey {
            destination,
            reservation_key: d.u64(8),
            service_action_reservation_key: d.u64(16),
        },
    }
}

/// 05h and 15h, whose length varies; `r` is positioned after the 4-byte header.
fn decode_variable(code: u8, length: u16, r: &mut Reader<'_>) -> Result<Segment, DecodeError> {
    r.skip(2)?;
    let destination = CscdId(r.u16()?);
    if code == 0x05 {
        r.skip(1)?;
        let stream_transfer_length = r.u24()?;
        let count_at = r.offset();
        let count = usize::from(r.u16()?);
        r.skip(2)?;
        if count > usize::from(length) - 12 {
            return Err(DecodeError::invalid(count_at));
        }
        let data = r.take(count)?.to_vec();
        r.rest(); // zero padding to a multiple of 4
        return Ok(Segment::EmbeddedToStream {
            destination,
            stream_transfer_length,
            data,
        });
    }
    let reservation_key = r.u64()?;
    let service_action_reservation_key = r.u64()?;
    r.skip(1)?;
    let flags = r.u8()?;
    let relative_target_port = r.u16()?;
    let tid_at = r.offset();
    let tid_len = r.u32()?;
    if usize::try_from(tid_len).ok() != Some(r.remaining()) {
        return Err(DecodeError::invalid(tid_at));
    }
    Ok(Segment::ThirdPartyPrSource {
        destination,
        reservation_key,
        service_action_reservation_key,
        unreg: flags & 0x02 != 0,
        aptpl: flags & 0x01 != 0,
        relative_target_port,
        transport_id: r.rest().to_vec(),
    })
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
        crate::scsi::designator::parse_hex(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not hex bytes")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::limits::SUPPORTED_SEGMENT_TYPES;

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
}
