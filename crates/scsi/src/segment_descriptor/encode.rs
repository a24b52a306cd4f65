//! Encoding segment descriptors: the common header, then the fields of each descriptor
//! family at the byte offsets its decoder reads.

use super::{fixed_descriptor_length, Segment, SegmentDescriptor};
use crate::reader::Put;

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
            body @ (Segment::BlockToStream { .. }
            | Segment::StreamToBlock { .. }
            | Segment::BlockToBlock { .. }
            | Segment::StreamToStream { .. }) => put_block_and_stream(body, out),
            body @ (Segment::InlineToStream { .. }
            | Segment::EmbeddedToStream { .. }
            | Segment::StreamToDiscard { .. }) => put_data_to_stream(body, out),
            body @ (Segment::BlockOffsetToStream { .. }
            | Segment::StreamToBlockOffset { .. }
            | Segment::BlockOffsetToBlockOffset { .. }) => put_byte_offsets(body, out),
            body @ (Segment::VerifyCscd { .. }
            | Segment::WriteFilemarks { .. }
            | Segment::Space { .. }
            | Segment::Locate { .. }
            | Segment::TapeImageCopy { .. }) => put_device_operations(body, out),
            body @ (Segment::RegisterKey { .. } | Segment::ThirdPartyPrSource { .. }) => {
                put_reservations(body, out)
            }
        }
        debug_assert_eq!(out.len() - start, self.encoded_len());
    }
}

/// The fields of 00h-03h and 0Bh-0Eh: blocks and streams copied whole.
fn put_block_and_stream(body: &Segment, out: &mut Vec<u8>) {
    match body {
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
        // The other families: `SegmentDescriptor::encode` routes them elsewhere.
        _ => {}
    }
}

/// The fields of 04h-06h and 0Fh: inline and embedded data to a stream, a stream discarded.
fn put_data_to_stream(body: &Segment, out: &mut Vec<u8>) {
    match body {
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
        // The other families: `SegmentDescriptor::encode` routes them elsewhere.
        _ => {}
    }
}

/// The fields of 08h-0Ah: blocks addressed with a byte offset.
fn put_byte_offsets(body: &Segment, out: &mut Vec<u8>) {
    match body {
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
        // The other families: `SegmentDescriptor::encode` routes them elsewhere.
        _ => {}
    }
}

/// The fields of 07h and 10h-13h: verify a CSCD, and the tape operations.
fn put_device_operations(body: &Segment, out: &mut Vec<u8>) {
    match body {
        Segment::VerifyCscd { tur, .. } => {
            out.put_u8(u8::from(*tur));
            out.put_zeros(3);
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
        // The other families: `SegmentDescriptor::encode` routes them elsewhere.
        _ => {}
    }
}

/// The fields of 14h and 15h: persistent reservations made on the copy manager's behalf.
fn put_reservations(body: &Segment, out: &mut Vec<u8>) {
    match body {
        Segment::RegisterKey {
            reservation_key,
            service_action_reservation_key,
            ..
        } => {
            out.put_u64(*reservation_key);
            out.put_u64(*service_action_reservation_key);
            out.put_zeros(4);
        }
        Segment::ThirdPartyPrSource { .. } => {
            if let Some(list) = body.register_and_move_list() {
                list.encode(out);
            }
        }
        // The other families: `SegmentDescriptor::encode` routes them elsewhere.
        _ => {}
    }
}
