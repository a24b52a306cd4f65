//! The byte-range segments (08h-0Ah) as planned: blocks read or written at a byte offset,
//! one piece of at most [`RANGE_CHUNK`](crate::copy::plan::RANGE_CHUNK) bytes at a time
//! ([`Transfer::chunks`]), whatever the byte count says.

use super::*;
use crate::copy::io::StreamUnit;
use crate::copy::plan::Transfer;
use crate::copy::segment::{Sink, Source};

/// Block `.0` and `.1` bytes past its start: where a byte range begins.
type At = (u64, u64);

impl Runner<'_> {
    /// 08h: a byte range of blocks to a stream.
    pub(super) fn range_to_stream(
        &mut self,
        step: &Step<'_>,
        plan: &Transfer,
        (lba, offset): At,
        unit: StreamUnit,
        carried: Carried,
    ) -> Result<Moved, (Failure, Moved)> {
        let (s, d) = (need(&step.source)?, need(&step.destination)?);
        let abort = || self.ctx.abort.is_aborted();
        let mut moved = Moved {
            written: 0,
            expected: plan.expected(carried, unit.bytes()),
        };
        for chunk in plan.chunks() {
            let data =
                read_range(s, lba, offset + chunk.at, chunk.bytes).map_err(|f| (f, moved))?;
            let sink = Sink::Stream {
                endpoint: d,
                unit,
                tap: self.ctx.progress.tap.as_ref(),
            };
            let m = segment::transfer(
                &mut self.engine,
                Source::Bytes(&data),
                sink,
                chunk.bytes,
                &mut self.left,
                chunk.residue,
                None,
                &abort,
            )
            .map_err(|e| {
                let written = moved.written + e.moved.written;
                (e.failure, Moved { written, ..moved })
            })?;
            moved.written += m.written;
        }
        Ok(moved)
    }

    /// 09h: stream data to a byte range of blocks: the bytes gathered from the stream
    /// (leftover source data first), then the block range read-modified-written, a piece at
    /// a time (never a buffer the size of the byte count).
    pub(super) fn stream_to_range(
        &mut self,
        step: &Step<'_>,
        plan: &Transfer,
        unit: StreamUnit,
        (lba, offset): At,
    ) -> Result<Moved, (Failure, Moved)> {
        let (s, d) = (need(&step.source)?, need(&step.destination)?);
        let total = plan.process;
        let mut record = vec![0u8; unit.bytes()];
        // An empty range writes nothing (its one piece only settles leftovers).
        for chunk in plan.chunks().filter(|c| c.bytes > 0) {
            let n = chunk.bytes as usize;
            let mut gathered = Vec::with_capacity(n);
            let take = n.min(self.left.source.len());
            gathered.extend(self.left.source.drain(..take));
            let progress = Moved {
                written: chunk.at,
                expected: total,
            };
            while gathered.len() < n {
                io::read_stream(s, unit, &mut record).map_err(|f| (f, progress))?;
                let want = (n - gathered.len()).min(record.len());
                gathered.extend_from_slice(&record[..want]);
                self.left.source.extend_from_slice(&record[want..]);
            }
            write_range(d, lba, offset + chunk.at, &gathered).map_err(|f| (f, progress))?;
        }
        let moved = Moved {
            written: total,
            expected: total,
        };
        // The destination amount is exact, so only leftover source data is left to settle.
        let end = plan.residue.end(!self.left.source.is_empty(), false);
        if end.inexact {
            return Err((Failure::new(Asc::UNEXPECTED_INEXACT_SEGMENT), moved));
        }
        if end.drop_source {
            self.left.source.clear();
        }
        Ok(moved)
    }

    /// 0Ah: a byte range of blocks to a byte range of blocks.
    pub(super) fn range_to_range(
        &mut self,
        step: &Step<'_>,
        plan: &Transfer,
        (from, at): At,
        (to, into): At,
    ) -> Result<Moved, (Failure, Moved)> {
        let (s, d) = (need(&step.source)?, need(&step.destination)?);
        let total = plan.process;
        for chunk in plan.chunks().filter(|c| c.bytes > 0) {
            let progress = Moved {
                written: chunk.at,
                expected: total,
            };
            let data =
                read_range(s, from, at + chunk.at, chunk.bytes).map_err(|f| (f, progress))?;
            write_range(d, to, into + chunk.at, &data).map_err(|f| (f, progress))?;
        }
        Ok(Moved {
            written: total,
            expected: total,
        })
    }
}

/// Reads `bytes` bytes (at most one piece, [`Transfer::chunks`]) starting `offset` bytes past the start of
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

/// Writes `data` (at most one piece, [`Transfer::chunks`]) starting `offset` bytes past the start of
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
