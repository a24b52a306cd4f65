//! Decoding segment descriptors: the framed fast path for the common fixed-length types,
//! the checked path with its sense for everything else, and the variable-length 05h and
//! 15h.

use super::{fixed_descriptor_length, CscdId, Segment, SegmentDescriptor};
use crate::error::{DecodeError, Reason};
use crate::parameter_list::CodeSet;
use crate::reader::Reader;

impl SegmentDescriptor {
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
