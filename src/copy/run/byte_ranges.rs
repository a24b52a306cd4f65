//! The byte-range segments (08h-0Ah): blocks read or written at a byte offset, through
//! buffers of at most [`RANGE_CHUNK`] bytes whatever the byte count says.

use super::*;

impl Runner<'_> {
    /// 08h: a byte range of blocks to a stream, [`RANGE_CHUNK`] bytes at a time.
    pub(super) fn block_offset_to_stream(
        &mut self,
        step: &Step<'_>,
    ) -> Result<Moved, (Failure, Moved)> {
        let body = &step.descriptor.body;
        let source = &step.source;
        let destination = &step.destination;
        let residue = step.residue;
        let abort = || self.ctx.abort.is_aborted();
        Ok(match *body {
            Segment::BlockOffsetToStream {
                stream_transfer_length,
                bytes,
                lba,
                byte_offset,
                ..
            } => {
                let (s, d) = (need(source)?, need(destination)?);
                let unit = stream_unit(self.list, body.destination(), stream_transfer_length);
                let start = u64::from(byte_offset);
                let bl = u64::from(s.block_length.max(1));
                range(s, lba, (start + u64::from(bytes)).div_ceil(bl), 16)?;
                // In chunks of at most RANGE_CHUNK bytes: each but the last carries its
                // leftover destination data on as CAT would; the last applies the
                // segment's own PAD/CAT rules.
                let total = u64::from(bytes);
                // What the whole segment would write: a failure in a later chunk reports
                // the segment's residue (Part B 4), not the chunks' so far.
                let out = unit.bytes().max(1) as u64;
                let expected = (self.left.destination.len() as u64 + total) / out * out;
                let mut moved = Moved {
                    written: 0,
                    expected,
                };
                let mut done = 0u64;
                loop {
                    let n = (total - done).min(RANGE_CHUNK);
                    let data = read_range(s, lba, start + done, n).map_err(|f| (f, moved))?;
                    let last = done + n == total;
                    // The last chunk: the source disk's own PAD too (Table 116; only
                    // 04h/05h act as if source PAD were 0, Table 117).
                    let chunk_residue = if last {
                        residue
                    } else {
                        Residue {
                            source_pad: false,
                            cat: true,
                            last: false,
                            ..residue
                        }
                    };
                    let sink = Sink::Stream {
                        endpoint: d,
                        unit,
                        tap: self.ctx.progress.tap.as_ref(),
                    };
                    let m = segment::transfer(
                        &mut self.engine,
                        Source::Bytes(&data),
                        sink,
                        n,
                        &mut self.left,
                        chunk_residue,
                        None,
                        &abort,
                    )
                    .map_err(|e| {
                        let written = moved.written + e.moved.written;
                        (e.failure, Moved { written, ..moved })
                    })?;
                    moved.written += m.written;
                    done += n;
                    if last {
                        break moved;
                    }
                }
            }
            // The other families: `Runner::segment` routes them elsewhere.
            _ => Moved::default(),
        })
    }

    /// 09h: stream data to a byte range of blocks, read-modify-write [`RANGE_CHUNK`] bytes at a time.
    pub(super) fn stream_to_block_offset(
        &mut self,
        step: &Step<'_>,
    ) -> Result<Moved, (Failure, Moved)> {
        let body = &step.descriptor.body;
        let source = &step.source;
        let destination = &step.destination;
        let residue = step.residue;
        Ok(match *body {
            Segment::StreamToBlockOffset {
                stream_transfer_length,
                bytes,
                lba,
                byte_offset,
                ..
            } => {
                let (s, d) = (need(source)?, need(destination)?);
                // Gather the bytes from the stream (leftover source first), then
                // read-modify-write the block range, RANGE_CHUNK bytes at a time (never a
                // buffer the size of the byte count).
                let unit = stream_unit(self.list, body.source(), stream_transfer_length);
                let start = u64::from(byte_offset);
                let bl = u64::from(d.block_length.max(1));
                let total = u64::from(bytes);
                range(d, lba, (start + total).div_ceil(bl), 16)?;
                let mut record = vec![0u8; unit.bytes()];
                let mut done = 0u64;
                while done < total {
                    let n = (total - done).min(RANGE_CHUNK) as usize;
                    let mut gathered = Vec::with_capacity(n);
                    let take = n.min(self.left.source.len());
                    gathered.extend(self.left.source.drain(..take));
                    let progress = Moved {
                        written: done,
                        expected: total,
                    };
                    while gathered.len() < n {
                        io::read_stream(s, unit, &mut record).map_err(|f| (f, progress))?;
                        let want = (n - gathered.len()).min(record.len());
                        gathered.extend_from_slice(&record[..want]);
                        self.left.source.extend_from_slice(&record[want..]);
                    }
                    write_range(d, lba, start + done, &gathered).map_err(|f| (f, progress))?;
                    done += n as u64;
                }
                let moved = Moved {
                    written: total,
                    expected: total,
                };
                // Table 116: with no PAD on either side, leftover source data is an
                // inexact segment; source PAD drops it; destination PAD alone keeps it.
                let (cat, sp, dp) = (residue.cat, residue.source_pad, residue.destination_pad);
                if !cat && !sp && !dp && !self.left.source.is_empty() {
                    return Err((Failure::new(Asc::UNEXPECTED_INEXACT_SEGMENT), moved));
                }
                if residue.last || (!cat && sp) {
                    self.left.source.clear();
                }
                moved
            }
            // The other families: `Runner::segment` routes them elsewhere.
            _ => Moved::default(),
        })
    }

    /// 0Ah: a byte range of blocks to a byte range of blocks, [`RANGE_CHUNK`] bytes at a time.
    pub(super) fn block_offset_to_block_offset(
        &mut self,
        step: &Step<'_>,
    ) -> Result<Moved, (Failure, Moved)> {
        let body = &step.descriptor.body;
        let source = &step.source;
        let destination = &step.destination;
        Ok(match *body {
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
                let blocks =
                    |e: &Endpoint, at: u64| (at + total).div_ceil(u64::from(e.block_length.max(1)));
                // SOURCE and DESTINATION LOGICAL BLOCK ADDRESS: bytes 12 and 20.
                range(s, source_lba, blocks(s, from), 12)?;
                range(d, destination_lba, blocks(d, to), 20)?;
                let mut done = 0u64;
                while done < total {
                    let n = (total - done).min(RANGE_CHUNK);
                    let progress = Moved {
                        written: done,
                        expected: total,
                    };
                    let data =
                        read_range(s, source_lba, from + done, n).map_err(|f| (f, progress))?;
                    write_range(d, destination_lba, to + done, &data).map_err(|f| (f, progress))?;
                    done += n;
                }
                Moved {
                    written: total,
                    expected: total,
                }
            }
            // The other families: `Runner::segment` routes them elsewhere.
            _ => Moved::default(),
        })
    }
}

/// The most bytes a byte-range segment (08h, 09h, 0Ah) moves through memory at once: its
/// buffers are this size (plus a block at each end), whatever its byte count says.
const RANGE_CHUNK: u64 = 1 << 20;

/// Reads `bytes` bytes (at most [`RANGE_CHUNK`]) starting `offset` bytes past the start of
/// block `lba`. The caller has checked the whole range against the device.
fn read_range(endpoint: &Endpoint, lba: u64, offset: u64, bytes: u64) -> Result<Vec<u8>, Failure> {
    let bl = u64::from(endpoint.block_length.max(1));
    let first = lba + offset / bl;
    let start = offset % bl;
    let blocks = (start + bytes).div_ceil(bl);
    // Sized by RANGE_CHUNK and one block length (at most 16 MiB) on each side.
    let mut buf = vec![0u8; (blocks * bl) as usize];
    io::read_blocks(endpoint, Side::Source, first, &mut buf)?;
    Ok(buf[start as usize..(start + bytes) as usize].to_vec())
}

/// Writes `data` (at most [`RANGE_CHUNK`] bytes) starting `offset` bytes past the start of
/// block `lba`, leaving the bytes around it in the first and last blocks unchanged
/// (read-modify-write). The caller has checked the whole range against the device.
fn write_range(endpoint: &Endpoint, lba: u64, offset: u64, data: &[u8]) -> Result<(), Failure> {
    let bl = u64::from(endpoint.block_length.max(1));
    let first = lba + offset / bl;
    let start = offset % bl;
    let blocks = (start + data.len() as u64).div_ceil(bl);
    let mut buf = vec![0u8; (blocks * bl) as usize];
    if start != 0 || !(start + data.len() as u64).is_multiple_of(bl) {
        io::read_blocks(endpoint, Side::Destination, first, &mut buf)?;
    }
    buf[start as usize..start as usize + data.len()].copy_from_slice(data);
    io::write_blocks(endpoint, first, &buf)
}
