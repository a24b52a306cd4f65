//! The transfer segments (00h-06h, 08h-0Fh) planned without I/O: where a segment reads and
//! writes, in which units, how many source bytes it processes, the range checks SPC-3 makes
//! before any I/O (with the segment-descriptor byte each failure points at), and the PAD/CAT
//! rules of its end. The runner carries a [`Transfer`] out through the engine and `segment`;
//! the byte-range segments (08h-0Ah) move through [`Transfer::chunks`].

use crate::scsi::segment_descriptor::Segment;
use crate::scsi::Asc;

use super::super::failure::Failure;
use super::super::op::StreamUnit;
use super::super::residue::Residue;

/// The most bytes a byte-range segment (08h, 09h, 0Ah) moves through memory at once: its
/// buffers are this size (plus a block at each end), whatever its byte count says.
pub const RANGE_CHUNK: u64 = 1 << 20;

/// What the planner knows of a resolved CSCD, decided once when the list resolves it: its
/// geometry and its units, no device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cscd {
    /// Block devices: the logical block length and the number of blocks (0 for others).
    pub block_length: u32,
    pub blocks: u64,
    /// Stream devices: FIXED and the block length of the CSCD descriptor (variable, 0, for
    /// any other descriptor and for the copy manager itself).
    pub fixed: bool,
    pub stream_block_length: u32,
    /// The unit COPY ABORTED's residue counts this CSCD's data in as a destination (Part B
    /// 4): its block length for a disk, the block length for a fixed-mode tape, else bytes.
    pub residue_unit: u32,
}

impl Cscd {
    /// One READ(6) or WRITE(6) of this stream CSCD for a segment's STREAM DEVICE TRANSFER
    /// LENGTH.
    pub fn stream(&self, transfer_length: u32) -> StreamUnit {
        StreamUnit {
            fixed: self.fixed,
            block_length: self.stream_block_length,
            transfer_length,
        }
    }

    /// `blocks` blocks from `lba` lie on the device; else COPY ABORTED with the segment
    /// pointer at `field`, the LBA (ASC 00/00, as SCST does and libiscsi's ValidSegDescr
    /// accepts), before any I/O.
    fn holds(&self, lba: u64, blocks: u64, field: u16) -> Result<(), Failure> {
        match lba.checked_add(blocks) {
            Some(end) if end <= self.blocks => Ok(()),
            _ => Err(Failure::at_field(Asc::NO_ADDITIONAL_SENSE, field)),
        }
    }

    /// The blocks `bytes` bytes from `offset` bytes into block 0 span.
    fn blocks_for(&self, offset: u64, bytes: u64) -> u64 {
        (offset + bytes).div_ceil(u64::from(self.block_length.max(1)))
    }
}

/// Where a transfer's source data comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum From {
    /// Whole blocks from `lba` (00h, 02h).
    Blocks { lba: u64 },
    /// Stream transfers of one unit each (01h, 03h, 06h, 09h).
    Stream(StreamUnit),
    /// `bytes` bytes of the list's inline data from `offset` (04h): no source device.
    Inline { offset: u32, bytes: u32 },
    /// The segment's embedded data (05h): no source device.
    Embedded,
    /// Nothing: 06h from a null LU with nothing to read, which only settles leftovers.
    Nothing,
    /// Bytes from `offset` bytes past the start of block `lba` (08h, 0Ah).
    Range { lba: u64, offset: u64 },
}

/// Where a transfer's destination data goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum To {
    /// Whole blocks from `lba` (01h, 02h).
    Blocks { lba: u64 },
    /// Stream transfers of one unit each (00h, 03h-05h, 08h).
    Stream(StreamUnit),
    /// Read and dropped (06h).
    Discard,
    /// Bytes from `offset` bytes past the start of block `lba`, read-modify-write (09h, 0Ah).
    Range { lba: u64, offset: u64 },
}

/// One transfer segment, planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub from: From,
    pub to: To,
    /// Source bytes the segment processes (leftover source data first).
    pub process: u64,
    /// The PAD/CAT rules of its end, as this segment type applies them.
    pub residue: Residue,
    /// 0Bh-0Fh: the processed bytes are held for RECEIVE DATA.
    pub hold: bool,
}

/// How much leftover data the segments before this one carried in (bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Carried {
    pub source: u64,
    pub destination: u64,
}

/// A piece of a byte-range segment: `bytes` bytes `at` bytes into its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub at: u64,
    pub bytes: u64,
    /// The PAD/CAT rules this piece ends with: each but the last carries its leftover
    /// destination data on as CAT would; the last applies the segment's own.
    pub residue: Residue,
    pub last: bool,
}

impl Transfer {
    /// The pieces a byte-range segment moves through memory, [`RANGE_CHUNK`] bytes at a
    /// time; one empty piece when the segment processes nothing (08h still settles what was
    /// carried in).
    pub fn chunks(&self) -> impl Iterator<Item = Chunk> + '_ {
        let total = self.process;
        let count = total.div_ceil(RANGE_CHUNK).max(1);
        (0..count).map(move |i| {
            let at = i * RANGE_CHUNK;
            let last = i + 1 == count;
            Chunk {
                at,
                bytes: (total - at).min(RANGE_CHUNK),
                // The last piece: the source disk's own PAD too (Table 116; only 04h and
                // 05h act as if source PAD were 0, Table 117).
                residue: if last {
                    self.residue
                } else {
                    Residue {
                        source_pad: false,
                        cat: true,
                        last: false,
                        ..self.residue
                    }
                },
                last,
            }
        })
    }

    /// The bytes the whole segment writes to a stream destination of `unit` bytes a
    /// transfer, carried-in destination data first (whole transfers only): what a failure in
    /// a later piece reports its residue against (Part B 4), not the pieces' so far.
    pub fn expected(&self, carried: Carried, unit: usize) -> u64 {
        let unit = unit.max(1) as u64;
        (carried.destination + self.process) / unit * unit
    }
}

/// The plan of transfer segment `segment` with its CSCDs as resolved (None: not resolved;
/// 06h's null LU source), the leftovers carried in and the PAD/CAT bits of its end (from
/// the list). Ok(None): not a transfer segment. Err: COPY ABORTED before any I/O.
pub fn transfer(
    segment: &Segment,
    source: Option<&Cscd>,
    destination: Option<&Cscd>,
    carried: Carried,
    residue: Residue,
) -> Result<Option<Transfer>, Failure> {
    let need = |c: Option<&Cscd>| {
        c.copied()
            .ok_or(Failure::new(Asc::COPY_TARGET_DEVICE_NOT_REACHABLE))
    };
    let hold = segment.holds_data();
    let plan = |from, to, process| Transfer {
        from,
        to,
        process,
        residue,
        hold,
    };
    // Inline data (04h; its range was checked with the segment) or embedded data (05h) to a
    // stream: no source device, so act as if the source PAD were 0 (Table 117).
    let own_data = |from, transfer_length, process| -> Result<Transfer, Failure> {
        let to = To::Stream(need(destination)?.stream(transfer_length));
        Ok(Transfer {
            residue: Residue {
                source_pad: false,
                ..residue
            },
            ..plan(from, to, process)
        })
    };
    Ok(Some(match *segment {
        Segment::BlockToStream {
            stream_transfer_length,
            blocks,
            lba,
            ..
        } => {
            let (s, d) = (need(source)?, need(destination)?);
            s.holds(lba, u64::from(blocks), 16)?;
            let process = u64::from(blocks) * u64::from(s.block_length);
            plan(
                From::Blocks { lba },
                To::Stream(d.stream(stream_transfer_length)),
                process,
            )
        }
        Segment::StreamToBlock {
            stream_transfer_length,
            blocks,
            lba,
            ..
        } => {
            let (s, d) = (need(source)?, need(destination)?);
            d.holds(lba, u64::from(blocks), 16)?;
            // NUMBER OF BLOCKS counts destination blocks: carried-in destination data fills
            // part of them.
            let exact = u64::from(blocks) * u64::from(d.block_length);
            plan(
                From::Stream(s.stream(stream_transfer_length)),
                To::Blocks { lba },
                exact.saturating_sub(carried.destination),
            )
        }
        Segment::BlockToBlock {
            dc,
            blocks,
            source_lba,
            destination_lba,
            ..
        } => {
            let (s, d) = (need(source)?, need(destination)?);
            // DC=1: NUMBER OF BLOCKS counts destination blocks, else source blocks.
            let process = if dc {
                (u64::from(blocks) * u64::from(d.block_length)).saturating_sub(carried.destination)
            } else {
                u64::from(blocks) * u64::from(s.block_length)
            };
            // SOURCE and DESTINATION LOGICAL BLOCK ADDRESS: bytes 12 and 20.
            s.holds(source_lba, s.blocks_for(0, process), 12)?;
            d.holds(
                destination_lba,
                d.blocks_for(carried.destination, process),
                20,
            )?;
            plan(
                From::Blocks { lba: source_lba },
                To::Blocks {
                    lba: destination_lba,
                },
                process,
            )
        }
        Segment::StreamToStream {
            source_transfer_length,
            destination_transfer_length,
            byte_count,
            ..
        } => {
            let (s, d) = (need(source)?, need(destination)?);
            plan(
                From::Stream(s.stream(source_transfer_length)),
                To::Stream(d.stream(destination_transfer_length)),
                u64::from(byte_count),
            )
        }
        Segment::InlineToStream {
            stream_transfer_length,
            inline_offset,
            bytes,
            ..
        } => own_data(
            From::Inline {
                offset: inline_offset,
                bytes,
            },
            stream_transfer_length,
            u64::from(bytes),
        )?,
        Segment::EmbeddedToStream {
            stream_transfer_length,
            ref data,
            ..
        } => own_data(From::Embedded, stream_transfer_length, data.len() as u64)?,
        // 06h: nothing is written, so there is no destination PAD to apply.
        Segment::StreamToDiscard {
            stream_transfer_length,
            bytes,
            ..
        } => {
            let (from, process) = match source {
                Some(s) => (
                    From::Stream(s.stream(stream_transfer_length)),
                    u64::from(bytes),
                ),
                // A null LU source (C001h) with nothing to read just settles leftovers.
                None => (From::Nothing, 0),
            };
            Transfer {
                residue: Residue {
                    destination_pad: false,
                    ..residue
                },
                ..plan(from, To::Discard, process)
            }
        }
        Segment::BlockOffsetToStream {
            stream_transfer_length,
            bytes,
            lba,
            byte_offset,
            ..
        } => {
            let (s, d) = (need(source)?, need(destination)?);
            let offset = u64::from(byte_offset);
            s.holds(lba, s.blocks_for(offset, u64::from(bytes)), 16)?;
            plan(
                From::Range { lba, offset },
                To::Stream(d.stream(stream_transfer_length)),
                u64::from(bytes),
            )
        }
        Segment::StreamToBlockOffset {
            stream_transfer_length,
            bytes,
            lba,
            byte_offset,
            ..
        } => {
            let (s, d) = (need(source)?, need(destination)?);
            let offset = u64::from(byte_offset);
            d.holds(lba, d.blocks_for(offset, u64::from(bytes)), 16)?;
            plan(
                From::Stream(s.stream(stream_transfer_length)),
                To::Range { lba, offset },
                u64::from(bytes),
            )
        }
        Segment::BlockOffsetToBlockOffset {
            bytes,
            source_lba,
            destination_lba,
            source_byte_offset,
            destination_byte_offset,
            ..
        } => {
            let (s, d) = (need(source)?, need(destination)?);
            let (from, to) = (
                u64::from(source_byte_offset),
                u64::from(destination_byte_offset),
            );
            let total = u64::from(bytes);
            s.holds(source_lba, s.blocks_for(from, total), 12)?;
            d.holds(destination_lba, d.blocks_for(to, total), 20)?;
            plan(
                From::Range {
                    lba: source_lba,
                    offset: from,
                },
                To::Range {
                    lba: destination_lba,
                    offset: to,
                },
                total,
            )
        }
        Segment::VerifyCscd { .. }
        | Segment::WriteFilemarks { .. }
        | Segment::Space { .. }
        | Segment::Locate { .. }
        | Segment::TapeImageCopy { .. }
        | Segment::RegisterKey { .. }
        | Segment::ThirdPartyPrSource { .. } => return Ok(None),
    }))
}

#[cfg(test)]
#[path = "transfer_tests.rs"]
mod tests;
