//! The ring engine: a block source with a fast path (a file-backed disk) read through
//! io_uring into registered buffers, many chunks in flight at once.
//!
//! - To a block destination with a fast path, each chunk is written from the buffer it was
//!   read into as soon as its read completes (reads and writes in flight together, in any
//!   order: a disk is random access), no copy.
//! - To anything else (a tape, a disk reached through CDBs, a discard), chunks are handed to
//!   the segment's [`Flow`] strictly in order, from the buffers they were read into, while
//!   the later chunks' reads go on in the kernel; a tape therefore gets its records in order,
//!   each written by the device as one record (its crash safety is the device's own).
//!
//! Failures keep the sequential semantics exactly: the first failing chunk (by position, a
//! read, a write, an LBA out of range or an abort) ends the segment; every chunk before it
//! is completed and counted, nothing from it on is counted. A list borrows one ring with
//! its pool of [`BUFFERS`] (or what [`Engines::set_buffers`] set) x
//! [`super::CHUNK`] bytes from the process's [`Engines`] ([`lease`]), so memory is
//! bounded whatever the copy's size.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io;
use std::sync::Arc;

use crate::device::range_lock::RangeGuard;
use crate::device::BlockBackend;
use crate::scsi::Asc;
use crate::sys::uring::{Buf, Done, Ring};

use super::flow::{Flow, Sink};
use super::io::{check_range, io_failure, Endpoint, Failure, Side};
use super::limit::Throttle;
use super::reservation;
use super::CHUNK;

mod lease;
pub(super) use lease::Lease;
pub use lease::{Engines, BUFFERS, POOL_BUFFERS};

/// Reads in flight at most with a pool of `buffers`: half; the rest is for writes. With
/// every buffer reading at once, a disk completes the first read about when it completes
/// the last, and the writes of a segment would only start when its reads are nearly done.
fn reads_for(buffers: usize) -> usize {
    (buffers / 2).max(1)
}

const SOURCE_SLOT: u32 = 0;
const DESTINATION_SLOT: u32 = 1;

/// A ring, and the reads it already has in flight for the next segment.
struct Engine {
    ring: Ring,
    /// The last generation handed out: every job's (and every prefetch's) completions
    /// carry their own, so a stale completion is never taken for a current one.
    generation: u64,
    prefetch: Option<Prefetch>,
}

impl Engine {
    fn next_generation(&mut self) -> u64 {
        self.generation = (self.generation + 1) & GENERATION_MASK;
        self.generation
    }
}

/// The next segment's source range: a file-backed disk, read in whole `in_unit`s.
#[derive(Clone)]
pub(super) struct NextRead {
    pub file: Arc<File>,
    /// Byte offset of its first byte in the file.
    pub offset: u64,
    pub bytes: u64,
    pub in_unit: usize,
}

/// Reads issued for the next segment while this one finishes: the first chunks of the next
/// job, with the same chunk geometry, tagged with the generation that job will run under.
struct Prefetch {
    next: NextRead,
    chunk: usize,
    chunks: usize,
    generation: u64,
    issued: usize,
    in_flight: usize,
    done: Vec<Done>,
}

impl Prefetch {
    fn read_len(&self, k: usize) -> usize {
        chunk_read_len(self.next.bytes, self.chunk, self.next.in_unit, k)
    }
}

/// Bytes read for chunk `k` of a `bytes`-long range cut in `chunk`-byte chunks: the chunk,
/// or what is left of the range, rounded up to whole `unit`s.
fn chunk_read_len(bytes: u64, chunk: usize, unit: usize, k: usize) -> usize {
    let wanted = (bytes - (k * chunk) as u64).min(chunk as u64);
    wanted.div_ceil(unit as u64) as usize * unit
}

const GENERATION_SHIFT: u32 = 40;
const GENERATION_MASK: u64 = (1 << (64 - GENERATION_SHIFT)) - 1;

#[cfg(test)]
thread_local! {
    /// Segments this thread's ring served (the tests check the ring really ran).
    static SERVED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Segments that took over reads done early for them.
    static ADOPTED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// The most reads and writes one job had in flight at once.
    static MAX_IN_FLIGHT: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

/// The fast path of `endpoint` if the ring can use it: O_DIRECT needs 512-byte aligned
/// offsets and lengths (the pool's buffers are aligned).
fn usable(endpoint: &Endpoint) -> Option<&BlockBackend> {
    let b = endpoint.backend.as_ref()?;
    let ok = b.block_size == endpoint.block_length
        && b.block_size > 0
        && (!b.direct || (b.block_size % 512 == 0 && b.offset % 512 == 0));
    ok.then_some(b)
}

/// Reads `remaining` bytes (whole source units, the tail kept as leftover source data) from
/// `lba` of `source` and passes them to `flow`. `None`: the ring cannot serve this segment
/// (no ring on this system, an unusable backend or unit); nothing was done.
pub(super) fn read_blocks(
    lease: &mut Lease<'_>,
    source: &Endpoint,
    lba: u64,
    remaining: u64,
    flow: &mut Flow<'_, '_>,
    left_source: &mut Vec<u8>,
    abort: &(dyn Fn() -> bool + Sync),
) -> Option<Result<(), Failure>> {
    let src = usable(source)?;
    let in_unit = source.block_length as usize;
    // Straight to the destination's file when it has a usable fast path and nothing is
    // pending or held; else in order through the flow.
    let direct_sink = match &*flow.sink {
        Sink::Blocks { endpoint, .. }
            if flow.pending.is_empty()
                && flow.hold.is_none()
                && endpoint.backend.as_ref().is_some_and(|b| !b.read_only) =>
        {
            usable(endpoint).map(|b| (*endpoint, b))
        }
        _ => None,
    };
    let out_unit = flow.out_unit;
    let step = match direct_sink {
        Some(_) => lcm(in_unit, out_unit),
        None => in_unit,
    };
    let chunk = CHUNK / step * step;
    if chunk == 0 {
        return None;
    }
    let next = lease.next.clone();
    let engine = lease.engine()?;
    if engine.ring.set_file(SOURCE_SLOT, &src.file).is_err() {
        return None;
    }
    if let Some((_, b)) = direct_sink {
        if engine.ring.set_file(DESTINATION_SLOT, &b.file).is_err() {
            return None;
        }
    }
    let chunks = remaining.div_ceil(chunk as u64) as usize;
    let offset = src.offset + lba * u64::from(src.block_size);
    // The reads done early for this segment, if they are its reads.
    let adopted = engine.prefetch.take().filter(|p| {
        direct_sink.is_none()
            && Arc::ptr_eq(&p.next.file, &src.file)
            && p.next.offset == offset
            && p.next.bytes == remaining
            && p.next.in_unit == in_unit
            && p.chunk == chunk
    });
    let generation = match &adopted {
        Some(p) => p.generation,
        None => engine.next_generation(),
    };
    // The next segment's reads, when the runner says they may be done early and this
    // one feeds a flow in order (a direct sink needs every buffer it can get).
    let next = next
        .filter(|n| direct_sink.is_none() && Arc::ptr_eq(&n.file, &src.file))
        .and_then(|n| {
            let chunk = CHUNK / n.in_unit.max(1) * n.in_unit;
            (chunk > 0 && n.bytes > 0).then(|| Prefetch {
                chunk,
                chunks: n.bytes.div_ceil(chunk as u64) as usize,
                generation: engine.next_generation(),
                issued: 0,
                in_flight: 0,
                done: Vec::new(),
                next: n,
            })
        });
    let pool_reads = reads_for(engine.ring.buffers());
    let depth = |b: &BlockBackend| b.queue_depth.map(usize::from);
    let mut job = Job {
        read_depth: depth(src).unwrap_or(pool_reads).clamp(1, pool_reads),
        write_depth: direct_sink
            .and_then(|(_, b)| depth(b))
            .unwrap_or(usize::MAX)
            .max(1),
        deferred: VecDeque::new(),
        source,
        src,
        lba,
        remaining,
        chunk,
        in_unit,
        chunks,
        sink: direct_sink,
        read_done: Vec::new(),
        write_done: Vec::new(),
        write_held: Vec::new(),
        stop: None,
        ready: BTreeMap::new(),
        next_push: 0,
        reading: 0,
        writing: 0,
        generation,
        next_read: 0,
        next,
    };
    #[cfg(test)]
    SERVED.with(|n| n.set(n.get() + 1));
    job.read_done.resize(job.chunks, 0);
    if job.sink.is_some() {
        job.write_done.resize(job.chunks, 0);
        job.write_held.resize_with(job.chunks, || None);
    }
    let ring = &mut engine.ring;
    if let Some(p) = adopted {
        job.adopt(ring, p, flow, left_source);
    }
    let result = job.run(ring, flow, left_source, abort);
    if let Err(e) = result {
        // The ring itself failed: drop it (its drop waits for the kernel or leaks) and
        // count nothing not yet known to be done.
        lease.engine = None;
        let k = if job.sink.is_some() { 0 } else { job.next_push };
        job.fail(k, io_failure(source, Side::Source, &e, true));
    } else if job.stop.is_none() {
        engine.prefetch = job.next.take().filter(|p| p.issued > 0);
    }
    Some(job.finish(flow))
}

fn lcm(a: usize, b: usize) -> usize {
    let (mut x, mut y) = (a, b);
    while y != 0 {
        (x, y) = (y, x % y);
    }
    a.checked_div(x).map_or(0, |q| q * b)
}

struct Job<'e> {
    source: &'e Endpoint,
    src: &'e BlockBackend,
    lba: u64,
    remaining: u64,
    /// Bytes per chunk (whole source units; whole destination units too with `sink`).
    chunk: usize,
    in_unit: usize,
    chunks: usize,
    /// The destination written directly through the ring.
    sink: Option<(&'e Endpoint, &'e BlockBackend)>,
    read_done: Vec<usize>,
    write_done: Vec<usize>,
    /// The destination range each chunk being written holds (see `device::range_lock`).
    write_held: Vec<Option<RangeGuard>>,
    /// The first chunk that failed, and why.
    stop: Option<(usize, Failure)>,
    /// Chunks read and waiting for their turn (in-order mode).
    ready: BTreeMap<usize, Buf>,
    next_push: usize,
    /// This job's reads and writes in flight, at most these many (the devices'
    /// `queue_depth`, the pool's half for reads by default; writes wait their turn in
    /// `deferred`, in order).
    reading: usize,
    writing: usize,
    read_depth: usize,
    write_depth: usize,
    deferred: VecDeque<(usize, Buf)>,
    /// Carried by this job's completions.
    generation: u64,
    /// The next chunk to read.
    next_read: usize,
    /// Reads for the next segment, issued once all of this one's are.
    next: Option<Prefetch>,
}

impl Job<'_> {
    fn stop_at(&self) -> usize {
        self.stop.as_ref().map_or(self.chunks, |(k, _)| *k)
    }

    fn fail(&mut self, k: usize, f: Failure) {
        if k < self.stop_at() {
            self.stop = Some((k, f));
        }
    }

    /// Bytes read for chunk `k` (whole source units).
    fn read_len(&self, k: usize) -> usize {
        chunk_read_len(self.remaining, self.chunk, self.in_unit, k)
    }

    /// Bytes of chunk `k` the segment processes.
    fn used_len(&self, k: usize) -> usize {
        (self.remaining - (k * self.chunk) as u64).min(self.chunk as u64) as usize
    }

    /// Bytes of chunk `k` written directly (whole destination units).
    fn write_len(&self, k: usize, out_unit: usize) -> usize {
        self.used_len(k) / out_unit * out_unit
    }

    fn source_lba(&self, k: usize) -> u64 {
        self.lba + (k * self.chunk / self.in_unit) as u64
    }

    fn submit_read(&mut self, ring: &mut Ring, k: usize, buf: Buf) {
        let (done, len) = (self.read_done[k], self.read_len(k));
        let offset =
            self.src.offset + self.source_lba(k) * u64::from(self.src.block_size) + done as u64;
        match ring.read(SOURCE_SLOT, offset, buf, done..len, self.tag(k, false)) {
            Ok(()) => {
                self.reading += 1;
                self.note_in_flight();
            }
            Err(r) => {
                let f = io_failure(self.source, Side::Source, &r.error, true);
                self.fail(k, f);
            }
        }
    }

    fn submit_write(&mut self, ring: &mut Ring, k: usize, buf: Buf, first_lba: u64, out: usize) {
        let Some((endpoint, b)) = self.sink else {
            return;
        };
        let (done, len) = (self.write_done[k], self.write_len(k, out));
        let lba = first_lba + (k * self.chunk / out) as u64;
        let offset = b.offset + lba * u64::from(b.block_size) + done as u64;
        if self.write_held[k].is_none() {
            self.write_held[k] = Some(b.writes.shared(lba, (len / out) as u64));
        }
        match ring.write(DESTINATION_SLOT, offset, buf, done..len, self.tag(k, true)) {
            Ok(()) => {
                self.writing += 1;
                self.note_in_flight();
            }
            Err(r) => {
                let f = io_failure(endpoint, Side::Destination, &r.error, false);
                self.fail(k, f);
            }
        }
    }

    fn note_in_flight(&self) {
        #[cfg(test)]
        MAX_IN_FLIGHT.with(|m| {
            let (r, w) = m.get();
            m.set((r.max(self.reading), w.max(self.writing)));
        });
    }

    fn tag(&self, k: usize, write: bool) -> u64 {
        tag(self.generation, k, write)
    }

    /// Takes over the reads done early for this segment, as if this job had issued them.
    fn adopt(
        &mut self,
        ring: &mut Ring,
        p: Prefetch,
        flow: &mut Flow<'_, '_>,
        left_source: &mut Vec<u8>,
    ) {
        #[cfg(test)]
        ADOPTED.with(|n| n.set(n.get() + 1));
        self.next_read = p.issued;
        self.reading = p.in_flight + p.done.len();
        for d in p.done {
            let (_, k, _) = untag(d.tag);
            self.read_completed(ring, k, d, 0, flow, left_source);
        }
    }

    /// Once every read of this segment is issued, reads the next segment's first chunks (as
    /// many as this one's read depth) with the buffers this one no longer needs.
    fn read_next(&mut self, ring: &mut Ring) {
        if self.next_read < self.chunks || self.stop.is_some() {
            return;
        }
        let Some(p) = self.next.as_mut() else {
            return;
        };
        while p.issued < p.chunks && p.in_flight + p.done.len() < self.read_depth {
            let Some(buf) = ring.buffer() else {
                break;
            };
            let len = p.read_len(p.issued);
            if throttled(ring, &self.source.throttle, Side::Source, len as u64).is_err() {
                break;
            }
            let offset = p.next.offset + (p.issued * p.chunk) as u64;
            let t = tag(p.generation, p.issued, false);
            if ring.read(SOURCE_SLOT, offset, buf, 0..len, t).is_err() {
                break;
            }
            p.issued += 1;
            p.in_flight += 1;
        }
    }

    fn run(
        &mut self,
        ring: &mut Ring,
        flow: &mut Flow<'_, '_>,
        left_source: &mut Vec<u8>,
        abort: &(dyn Fn() -> bool + Sync),
    ) -> io::Result<()> {
        let out = flow.out_unit;
        let first_lba = match &*flow.sink {
            Sink::Blocks { lba, .. } => *lba,
            _ => 0,
        };
        let mut done: Vec<Done> = Vec::with_capacity(ring.buffers());
        loop {
            self.issue_reads(ring, abort);
            self.read_next(ring);
            if !self.ready.is_empty() {
                // The source reads on while the flow (a tape, on this thread) writes what
                // is ready; the buffers it frees are refilled before anything waits.
                ring.submit()?;
                if self.push_ready(flow, left_source) {
                    continue;
                }
            }
            // Done when nothing of this job is in flight and nothing more can be issued;
            // the next segment's reads stay in flight for it.
            let more = self.next_read < self.stop_at();
            if self.reading + self.writing == 0 && (!more || ring.in_flight() == 0) {
                break;
            }
            ring.wait(&mut done)?;
            for d in done.drain(..) {
                let (generation, k, write) = untag(d.tag);
                if generation == self.generation {
                    if write {
                        self.write_completed(ring, k, d, first_lba, out);
                    } else {
                        self.read_completed(ring, k, d, first_lba, flow, left_source);
                    }
                } else if let Some(p) = self.next.as_mut().filter(|p| p.generation == generation) {
                    p.in_flight -= 1;
                    p.done.push(d);
                }
                // Anything else is a read done early for a segment that did not use it:
                // its buffer goes back to the pool.
            }
        }
        Ok(())
    }

    /// Reads the next chunks while the pool has buffers and the read depth allows.
    fn issue_reads(&mut self, ring: &mut Ring, abort: &(dyn Fn() -> bool + Sync)) {
        while self.next_read < self.stop_at() && self.reading < self.read_depth {
            let k = self.next_read;
            if abort() {
                self.fail(k, Failure::new(Asc::NO_ADDITIONAL_SENSE));
                break;
            }
            let units = (self.read_len(k) / self.in_unit) as u64;
            let lba = self.source_lba(k);
            let checked = check_range(self.source, Side::Source, lba, units)
                .and_then(|()| reservation::check_io(self.source, Side::Source, false, lba, units));
            if let Err(f) = checked {
                self.fail(k, f);
                break;
            }
            let Some(buf) = ring.buffer() else { break };
            let bytes = self.read_len(k) as u64;
            if let Err(f) = throttled(ring, &self.source.throttle, Side::Source, bytes) {
                self.fail(k, f);
                break;
            }
            self.submit_read(ring, k, buf);
            self.next_read += 1;
        }
    }

    fn read_completed(
        &mut self,
        ring: &mut Ring,
        k: usize,
        d: Done,
        first_lba: u64,
        flow: &mut Flow<'_, '_>,
        left_source: &mut Vec<u8>,
    ) {
        self.reading -= 1;
        let n = match d.result {
            Ok(0) => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            other => other,
        };
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                let f = io_failure(self.source, Side::Source, &e, true);
                return self.fail(k, f);
            }
        };
        self.read_done[k] += n;
        if self.read_done[k] < self.read_len(k) {
            return self.submit_read(ring, k, d.buf);
        }
        if k >= self.stop_at() {
            return;
        }
        let (used, len) = (self.used_len(k), self.read_len(k));
        if self.sink.is_some() {
            let out = flow.out_unit;
            let whole = self.write_len(k, out);
            if used < len || whole < used {
                // The last chunk: its tail is leftover source / pending destination data.
                let bytes = d.buf.as_slice();
                flow.pending.extend_from_slice(&bytes[whole..used]);
                left_source.extend_from_slice(&bytes[used..len]);
            }
            if whole == 0 {
                return;
            }
            let (endpoint, _) = self.sink.expect("checked");
            let lba = first_lba + (k * self.chunk / out) as u64;
            let blocks = (whole / out) as u64;
            let checked = check_range(endpoint, Side::Destination, lba, blocks).and_then(|()| {
                reservation::check_io(endpoint, Side::Destination, true, lba, blocks)
            });
            if let Err(f) = checked {
                return self.fail(k, f);
            }
            self.deferred.push_back((k, d.buf));
            return self.submit_deferred(ring, first_lba, out);
        }
        self.ready.insert(k, d.buf);
    }

    /// Hands the flow every chunk ready in order from `next_push`, in one call (a tape then
    /// appends them in one go); false if none was.
    fn push_ready(&mut self, flow: &mut Flow<'_, '_>, left_source: &mut Vec<u8>) -> bool {
        let first = self.next_push;
        let mut end = first;
        while end < self.stop_at() && self.ready.contains_key(&end) {
            end += 1;
        }
        if end > first {
            let bufs: Vec<Buf> = (first..end).filter_map(|k| self.ready.remove(&k)).collect();
            let mut parts = Vec::with_capacity(bufs.len());
            for (k, buf) in (first..end).zip(&bufs) {
                let (used, len) = (self.used_len(k), self.read_len(k));
                let bytes = buf.as_slice();
                left_source.extend_from_slice(&bytes[used..len]);
                parts.push(&bytes[..used]);
            }
            match flow.push(&parts) {
                Ok(()) => self.next_push = end,
                Err(f) => self.fail(first, f),
            }
        }
        if self.next_push >= self.stop_at() {
            self.ready.clear();
        }
        end > first
    }

    /// Writes waiting chunks while the destination's depth allows (none past a failure).
    fn submit_deferred(&mut self, ring: &mut Ring, first_lba: u64, out: usize) {
        while self.writing < self.write_depth {
            let Some((k, buf)) = self.deferred.pop_front() else {
                break;
            };
            if k >= self.stop_at() {
                continue;
            }
            if let Some((endpoint, _)) = self.sink {
                let bytes = self.write_len(k, out) as u64;
                if let Err(f) = throttled(ring, &endpoint.throttle, Side::Destination, bytes) {
                    self.fail(k, f);
                    continue;
                }
            }
            self.submit_write(ring, k, buf, first_lba, out);
        }
    }

    fn write_completed(&mut self, ring: &mut Ring, k: usize, d: Done, first_lba: u64, out: usize) {
        self.writing -= 1;
        let n = match d.result {
            Ok(0) => Err(io::Error::from(io::ErrorKind::WriteZero)),
            other => other,
        };
        match n {
            Ok(n) => {
                self.write_done[k] += n;
                if self.write_done[k] < self.write_len(k, out) {
                    self.submit_write(ring, k, d.buf, first_lba, out);
                } else {
                    self.write_held[k] = None;
                }
            }
            Err(e) => {
                self.write_held[k] = None;
                if let Some((endpoint, _)) = self.sink {
                    let f = io_failure(endpoint, Side::Destination, &e, false);
                    self.fail(k, f);
                }
            }
        }
        self.submit_deferred(ring, first_lba, out);
    }

    /// Counts what the direct sink wrote (every chunk before the failing one) and returns
    /// the segment's outcome.
    fn finish(self, flow: &mut Flow<'_, '_>) -> Result<(), Failure> {
        let stop = self.stop_at();
        if self.sink.is_some() {
            let out = flow.out_unit;
            let written: u64 = (0..stop).map(|k| self.write_len(k, out) as u64).sum();
            flow.moved.written += written;
            if let Sink::Blocks { lba, .. } = &mut *flow.sink {
                *lba += written / out as u64;
            }
        }
        match self.stop {
            Some((_, f)) => Err(f),
            None => Ok(()),
        }
    }
}

/// Waits for the bandwidth limits of a read or write about to be queued; what is queued
/// already goes to the kernel first, so the device works while this thread waits.
fn throttled(ring: &mut Ring, throttle: &Throttle, side: Side, bytes: u64) -> Result<(), Failure> {
    if throttle.is_limited() {
        // A failing submit shows again, and is reported, at the next wait.
        let _ = ring.submit();
    }
    throttle.take(side, bytes)
}

fn tag(generation: u64, k: usize, write: bool) -> u64 {
    generation << GENERATION_SHIFT | (k as u64) << 1 | u64::from(write)
}

/// (generation, chunk, write)
fn untag(tag: u64) -> (u64, usize, bool) {
    let low = tag & ((1 << GENERATION_SHIFT) - 1);
    (tag >> GENERATION_SHIFT, (low >> 1) as usize, low & 1 == 1)
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
