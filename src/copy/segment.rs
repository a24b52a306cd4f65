//! Processing one segment descriptor: the data flow of SPC-4 5.17.7.2 (Part B 3.2), with
//! the PAD/CAT residue rules of Part B 3.3 (decided in [`super::residue`]) applied at its end.
//!
//! Source data is read in whole units (disk blocks, or stream transfers of STL bytes or
//! STL x block length), leftover source data first; destination data is written in whole
//! units (disk blocks or stream transfers), leftover destination data first. What is left
//! at the end of the segment is kept, dropped, padded or refused by the table.

use crate::scsi::segment_descriptor::Segment;
use crate::scsi::Asc;

use super::flow::Flow;
pub use super::flow::{Held, Moved, Sink, Tap};
use super::io::{self, Endpoint, Failure, Side, StreamUnit};
pub use super::residue::Residue;
use super::CHUNK;
use crate::buf::AlignedBuf;

/// Disk chunks read ahead of the writer.
pub const READ_AHEAD: usize = 4;

/// Leftover source and destination data carried between segments.
#[derive(Debug, Default)]
pub struct Leftovers {
    pub source: Vec<u8>,
    pub destination: Vec<u8>,
}

/// Where a segment's source data comes from.
pub enum Source<'a> {
    Blocks {
        endpoint: &'a Endpoint,
        lba: u64,
    },
    Stream {
        endpoint: &'a Endpoint,
        unit: StreamUnit,
    },
    /// Inline or embedded data: no reads, no leftover source data involved.
    Bytes(&'a [u8]),
}

impl Source<'_> {
    fn unit(&self) -> usize {
        match self {
            Self::Blocks { endpoint, .. } => endpoint.block_length as usize,
            Self::Stream { unit, .. } => unit.bytes(),
            Self::Bytes(_) => 1,
        }
    }
}

/// A segment that ended early.
#[derive(Debug)]
pub struct SegmentFailure {
    pub failure: Failure,
    pub moved: Moved,
}

/// Moves `process` bytes from `source` to `sink`, leftover source data first, leftover
/// destination data written first; then applies the residue rules. `held` receives a copy of
/// the processed bytes for 0Bh-0Fh (up to its capacity; returns whether any was dropped).
#[allow(clippy::too_many_arguments)]
pub(super) fn transfer(
    engine: &mut super::engine::Lease<'_>,
    source: Source<'_>,
    mut sink: Sink<'_>,
    process: u64,
    left: &mut Leftovers,
    residue: Residue,
    mut hold: Option<&mut Held>,
    abort: &(dyn Fn() -> bool + Sync),
) -> Result<Moved, SegmentFailure> {
    let out_unit = sink.unit().max(1);
    let initial_destination = left.destination.len() as u64;
    let moved = Moved {
        written: 0,
        expected: (initial_destination + process) / out_unit as u64 * out_unit as u64,
    };
    let fail = |failure: Failure, moved: Moved| Err(SegmentFailure { failure, moved });

    // Leftover source data is processed first (not for inline/embedded sources).
    let mut remaining = process;
    let mut pending = std::mem::take(&mut left.destination);
    if !matches!(source, Source::Bytes(_)) && !left.source.is_empty() {
        let take = remaining.min(left.source.len() as u64) as usize;
        let rest = left.source.split_off(take);
        pending.extend_from_slice(&left.source);
        if let Some(h) = hold.as_deref_mut() {
            h.keep(&left.source);
        }
        left.source = rest;
        remaining -= take as u64;
    }

    let in_unit = source.unit().max(1);
    let mut flow = Flow {
        sink: &mut sink,
        pending,
        moved,
        out_unit,
        hold,
    };
    match source {
        Source::Blocks { endpoint, lba } if remaining > 0 => {
            let r = read_disk(
                engine,
                DiskRead {
                    endpoint,
                    lba,
                    remaining,
                    in_unit,
                },
                &mut flow,
                &mut left.source,
                abort,
            );
            if let Err(f) = r {
                return fail(f, flow.moved);
            }
        }
        Source::Blocks { .. } => {}
        Source::Stream { endpoint, unit } => {
            // Never read ahead on a stream source: one transfer at a time, as needed.
            let mut buf = AlignedBuf::default();
            while remaining > 0 {
                if abort() {
                    return fail(Failure::new(Asc::NO_ADDITIONAL_SENSE), flow.moved);
                }
                let b = buf.slice(in_unit);
                if let Err(f) = io::read_stream(endpoint, unit, b) {
                    return fail(f, flow.moved);
                }
                let used = remaining.min(b.len() as u64) as usize;
                left.source.extend_from_slice(&b[used..]);
                if let Err(f) = flow.push(&[&b[..used]]) {
                    return fail(f, flow.moved);
                }
                remaining -= used as u64;
            }
        }
        Source::Bytes(bytes) => {
            let data = bytes.get(..remaining as usize).unwrap_or(bytes);
            if let Err(f) = flow.push(&[data]) {
                return fail(f, flow.moved);
            }
        }
    }
    let Flow { pending, moved, .. } = flow;
    end_segment(&mut sink, pending, left, residue, moved, out_unit)
}

/// Writes the whole destination units still pending, then applies the end-of-segment
/// rule ([`Residue::end`]) to what is left over on either side.
fn end_segment(
    sink: &mut Sink<'_>,
    mut pending: Vec<u8>,
    left: &mut Leftovers,
    residue: Residue,
    mut moved: Moved,
    out_unit: usize,
) -> Result<Moved, SegmentFailure> {
    let fail = |failure: Failure, moved: Moved| Err(SegmentFailure { failure, moved });
    if pending.len() >= out_unit {
        let whole = pending.len() / out_unit * out_unit;
        if let Err((f, done)) = sink.write(&[&pending[..whole]]) {
            moved.written += done;
            return fail(f, moved);
        }
        moved.written += whole as u64;
        pending.drain(..whole);
    }
    left.destination = pending;
    let end = residue.end(!left.source.is_empty(), !left.destination.is_empty());
    if end.inexact {
        return fail(Failure::new(Asc::UNEXPECTED_INEXACT_SEGMENT), moved);
    }
    if end.pad_destination {
        let mut padded = std::mem::take(&mut left.destination);
        padded.resize(padded.len().next_multiple_of(out_unit), 0);
        if let Err((f, done)) = sink.write(&[&padded]) {
            moved.written += done;
            return fail(f, moved);
        }
        moved.written += padded.len() as u64;
        moved.expected = moved.expected.max(moved.written);
    }
    if end.drop_destination {
        left.destination.clear();
    }
    if end.drop_source {
        left.source.clear();
    }
    Ok(moved)
}

/// Whether a segment's destination amount is fixed by the segment (footnote to Table 116).
pub fn exact_destination(body: &Segment) -> bool {
    matches!(
        body,
        Segment::StreamToBlock { .. }
            | Segment::BlockToBlock { dc: true, .. }
            | Segment::StreamToBlockOffset { .. }
            | Segment::BlockOffsetToBlockOffset { .. }
    )
}

/// A disk source's part of a segment: `remaining` bytes from `lba`, read in `in_unit`s.
#[derive(Clone, Copy)]
struct DiskRead<'e> {
    endpoint: &'e Endpoint,
    lba: u64,
    remaining: u64,
    in_unit: usize,
}

/// Reads a disk source by the cheapest path for it: on this thread (`in_line`), through the
/// ring where the disk has a file-backed fast path, else read ahead on a second thread,
/// CHUNK bytes at a time with up to READ_AHEAD chunks in flight, so reads and writes overlap
/// (buffers are recycled, so memory stays bounded whatever the segment's size).
fn read_disk(
    engine: &mut super::engine::Lease<'_>,
    r: DiskRead<'_>,
    flow: &mut Flow<'_, '_>,
    left_source: &mut Vec<u8>,
    abort: &(dyn Fn() -> bool + Sync),
) -> Result<(), Failure> {
    if in_line(r.endpoint, r.remaining) {
        return read_in_line(r, flow, left_source, abort);
    }
    let ring = super::engine::read_blocks(
        engine,
        r.endpoint,
        r.lba,
        r.remaining,
        flow,
        left_source,
        abort,
    );
    ring.unwrap_or_else(|| read_ahead(r, flow, left_source, abort))
}

/// Whether a disk source is read on the copy's own thread: a short segment (a second
/// thread or a ring costs more than it saves there) or an image in memory
/// ([`crate::device::BlockBackend::in_memory`]: 4 concurrent in-memory backups spent
/// more CPU per GiB than dd through io_uring, whose kernel worker did every read).
pub(super) fn in_line(endpoint: &Endpoint, remaining: u64) -> bool {
    remaining <= (2 * CHUNK) as u64 || endpoint.backend.as_ref().is_some_and(|b| b.in_memory)
}

/// Reads `remaining` bytes from `lba` on this thread, CHUNK bytes at a time through one
/// buffer, each chunk passed to `flow` before the next is read.
fn read_in_line(
    r: DiskRead<'_>,
    flow: &mut Flow<'_, '_>,
    left_source: &mut Vec<u8>,
    abort: &(dyn Fn() -> bool + Sync),
) -> Result<(), Failure> {
    let DiskRead {
        endpoint,
        mut lba,
        mut remaining,
        in_unit,
    } = r;
    let per_chunk = (CHUNK / in_unit).max(1) as u64;
    let mut buf = AlignedBuf::default();
    let mut in_kernel = true;
    loop {
        let units = remaining.div_ceil(in_unit as u64).min(per_chunk);
        let len = units as usize * in_unit;
        if in_kernel && remaining >= len as u64 {
            match flow.push_from_file(endpoint, lba, len) {
                Some(r) => {
                    r?;
                    (lba, remaining) = (lba + units, remaining - len as u64);
                    if remaining == 0 {
                        return Ok(());
                    }
                    if abort() {
                        return Err(Failure::new(Asc::NO_ADDITIONAL_SENSE));
                    }
                    continue;
                }
                None => in_kernel = false,
            }
        }
        let b = buf.slice(len);
        io::read_blocks(endpoint, Side::Source, lba, b)?;
        let used = remaining.min(b.len() as u64) as usize;
        left_source.extend_from_slice(&b[used..]);
        flow.push(&[&b[..used]])?;
        lba += units;
        remaining -= used as u64;
        if remaining == 0 {
            return Ok(());
        }
        if abort() {
            return Err(Failure::new(Asc::NO_ADDITIONAL_SENSE));
        }
    }
}

/// A long block segment without the ring (a source reached through CDBs, or no io_uring):
/// read ahead on a second thread, CHUNK bytes at a time with up to READ_AHEAD chunks in
/// flight, so reads and writes overlap; buffers are recycled, so memory stays bounded
/// whatever the segment's size.
fn read_ahead(
    r: DiskRead<'_>,
    flow: &mut Flow<'_, '_>,
    left_source: &mut Vec<u8>,
    abort: &(dyn Fn() -> bool + Sync),
) -> Result<(), Failure> {
    let DiskRead {
        endpoint,
        lba,
        mut remaining,
        in_unit,
    } = r;
    let units = remaining.div_ceil(in_unit as u64);
    let per_chunk = (CHUNK / in_unit).max(1) as u64;
    std::thread::scope(|scope| {
        let (full_tx, full_rx) =
            crossbeam_channel::bounded::<Result<(AlignedBuf, usize), Failure>>(READ_AHEAD);
        let (free_tx, free_rx) = crossbeam_channel::unbounded::<AlignedBuf>();
        for _ in 0..=READ_AHEAD {
            let _ = free_tx.send(AlignedBuf::default());
        }
        scope.spawn(move || {
            let (mut at, mut left_units) = (lba, units);
            while left_units > 0 {
                let Ok(mut buf) = free_rx.recv() else { return };
                if abort() {
                    let _ = full_tx.send(Err(Failure::new(Asc::NO_ADDITIONAL_SENSE)));
                    return;
                }
                let n = per_chunk.min(left_units);
                let len = n as usize * in_unit;
                let read = io::read_blocks(endpoint, Side::Source, at, buf.slice(len));
                let failed = read.is_err();
                if full_tx.send(read.map(|()| (buf, len))).is_err() || failed {
                    return;
                }
                at += n;
                left_units -= n;
            }
        });
        for message in full_rx {
            let (buf, len) = message?;
            let got = buf.get(len);
            let used = remaining.min(got.len() as u64) as usize;
            left_source.extend_from_slice(&got[used..]);
            flow.push(&[&got[..used]])?;
            remaining -= used as u64;
            let _ = free_tx.send(buf);
        }
        Ok(())
    })
}

#[cfg(test)]
#[path = "segment_file_tests.rs"]
mod file_tests;
