//! A SIMH .tap image (shared/DESIGN.md, "Tape image format") and its in-memory index.
//!
//! Each record is a 4-byte little-endian length, the data, one pad byte when the length is
//! odd, and the same length again; a 4-byte 0 is a tape mark (filemark); FFFFFFFFh marks
//! the end of medium; a length with the high bit set is a bad record (its data is present;
//! reading it is an error). SIMH's erase gaps (FFFFFFFEh, and the 2-byte forward half gap
//! FFFEFFFFh) are skipped; any other FxxxxxxXh marker ends the readable tape without
//! touching what follows.
//!
//! The index holds one entry per logical object (record or filemark) in tape order, so the
//! object at a logical object identifier is one lookup, and the filemarks' object numbers
//! are kept sorted for O(log n) spacing over filemarks.
//!
//! Writes go at end of data: the file is first cut to end of data (dropping whatever a write
//! in the middle of the tape overwrites, and any half-written tail). Records are then
//! appended through a second descriptor opened with O_DIRECT where the file system allows
//! it. SIMH's 4-byte framing puts record data at offsets no DMA can reach directly, so each
//! append lays the framed records out once in the buffers of a small io_uring ring, 1 MiB of
//! the image each, written while the next are filled. Only whole file-system blocks go that
//! way, and no page cache: an append starts at the block boundary below end of data, with
//! that block's head (kept in memory from the last append) written again, and ends at the
//! next boundary, the room after the last record holding an end-of-medium marker and zeros
//! (the end padding). The next append writes over them; any other write, a flush and the
//! close cut the file to end of data. (Partial blocks through the page cache would make
//! every append wait for a block's write-back, which ext4 stalls behind its journal
//! commits.)
//!
//! The first append after the file was cut writes its pieces in order, one at a time: each
//! extends the file, which ext4 runs one at a time anyway, and a later one must never land
//! before an earlier one, or a crash would leave a hole that reads as filemarks. The
//! appends after it find the last one's marker at end of data and go all at once: the file
//! grows first (fallocate, ahead of the append; the writes then neither extend the file nor
//! wait for each other), every piece is written in flight together, the marker kept in
//! place of the first new record's header, and once all of it is on stable storage the
//! blocks holding the marker are written again with that header, the only bytes that
//! change. Until that last write lands, any reader stops at the marker; torn, it leaves the
//! marker or the header. A failed append leaves the file cut at end of data. An append returns when all of it is in the file. That costs one copy in memory
//! but no page cache to speak of: a buffered write copies too, then pays for the pages and
//! their write-back. Where O_DIRECT or io_uring is refused (tmpfs), each batch of records is
//! one `pwritev` of header + data + pad + trailer slices through the page cache.
//!
//! Either way a crash at any point leaves a prefix of complete objects, then at most one
//! partial one, which [`TapeImage::open`] detects and cuts off, or the end-of-medium marker,
//! which ends the tape for every SIMH reader (the next write here cuts it and what follows).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use nix::libc;

use super::index::Index;
use crate::device::lock::{ImageLock, LockError, LockMode};
use crate::sys::uring::{Buf, Done, Ring, BUF_ALIGN};

/// Tape mark (filemark).
pub const TAPE_MARK: u32 = 0x0000_0000;
/// End of medium.
pub const END_OF_MEDIUM: u32 = 0xffff_ffff;
/// SIMH erase gap: 4 bytes to skip.
pub const ERASE_GAP: u32 = 0xffff_fffe;
/// SIMH forward half gap: 2 bytes to skip.
pub const HALF_GAP: u32 = 0xfffe_ffff;
/// The bad-record flag of a length word.
pub const BAD_RECORD: u32 = 0x8000_0000;

/// Records per `pwritev`, keeping the slice count under IOV_MAX (1024).
const RECORDS_PER_WRITE: usize = 256;
/// Bytes per O_DIRECT write of an append, and buffers of that size: one is written while
/// the others are filled.
const PIECE: usize = 1 << 20;
const PIECES: u16 = 8;
/// How far ahead of end of data the appends of a copy grow the file at a time.
const GROW_AHEAD: u64 = 64 << 20;
/// Bytes of zeros per filemark write.
const FILEMARK_CHUNK: usize = 64 * 1024;
/// Read-ahead while scanning objects that follow each other closely (small records,
/// filemarks)...
const SCAN_WINDOW: usize = 64 * 1024;
/// ...and what is read where the scan jumps over a record's data to its trailing length
/// (which the next object's header follows): a 4 GiB image of 256 KiB records is scanned
/// reading 64 MiB, not half the image.
const SCAN_JUMP: usize = 4096;

/// One logical object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    Record {
        len: u32,
    },
    /// A record written with the error flag: reading it is an unrecovered read error.
    BadRecord {
        len: u32,
    },
    Filemark,
}

impl Object {
    pub fn from_word(word: u32) -> Self {
        match word {
            TAPE_MARK => Self::Filemark,
            w if w & BAD_RECORD != 0 => Self::BadRecord {
                len: w & !BAD_RECORD,
            },
            len => Self::Record { len },
        }
    }

    /// Bytes the object occupies in the image.
    pub fn image_len(self) -> u64 {
        match self {
            Self::Filemark => 4,
            Self::Record { len } | Self::BadRecord { len } => record_image_len(u64::from(len)),
        }
    }
}

/// Bytes a record of `len` data bytes occupies: two length words, data, pad to even.
pub fn record_image_len(len: u64) -> u64 {
    8 + len + (len & 1)
}

/// What made the tail of an image unreadable (a record half-written when the writer died).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// The file ends 1-3 bytes into a length word.
    PartialLength { offset: u64, bytes: u8 },
    /// A record's data and trailing length run past the end of the file.
    RecordPastEnd { offset: u64, length: u32 },
    /// The trailing length differs from the leading one.
    LengthMismatch {
        offset: u64,
        leading: u32,
        trailing: u32,
    },
}

impl Damage {
    /// Where the damaged object starts: the end of the last complete object.
    pub fn offset(&self) -> u64 {
        match *self {
            Self::PartialLength { offset, .. }
            | Self::RecordPastEnd { offset, .. }
            | Self::LengthMismatch { offset, .. } => offset,
        }
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::PartialLength { offset, bytes } => {
                write!(f, "partial length word ({bytes} bytes) at offset {offset}")
            }
            Self::RecordPastEnd { offset, length } => write!(
                f,
                "record of {length} bytes at offset {offset} runs past the end of the file"
            ),
            Self::LengthMismatch {
                offset,
                leading,
                trailing,
            } => write!(
                f,
                "record at offset {offset}: leading length {leading:#010x} != trailing length {trailing:#010x}"
            ),
        }
    }
}

/// What loading an image found, for the caller to log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// The image did not exist and was created empty.
    pub created: bool,
    pub records: u64,
    pub bad_records: u64,
    pub filemarks: u64,
    /// SIMH erase gaps skipped.
    pub gaps: u64,
    /// Image offset of end of data: where the next write at EOD goes.
    pub end_of_data: u64,
    /// An FFFFFFFFh end-of-medium marker ends the recorded data.
    pub end_of_medium_marker: bool,
    /// An unsupported SIMH marker (offset, word) ends the readable data.
    pub unsupported_marker: Option<(u64, u32)>,
    /// Bytes after end of data (past an end-of-medium or unsupported marker) that are not
    /// part of the tape; left in place until a write at end of data replaces them.
    pub ignored_bytes: u64,
    /// A half-written object at the end of the image.
    pub damage: Option<Damage>,
    /// Bytes cut off the image because of `damage` (0 when opened write-protected: the
    /// damaged tail is then only ignored).
    pub truncated_bytes: u64,
    /// The index filled up ([`super::index::MAX_RUNS`] runs of objects): what follows is
    /// ignored, as past an end-of-medium marker.
    pub index_full: bool,
}

impl LoadReport {
    /// Nothing worth a warning: no damage and no ignored bytes.
    pub fn is_clean(&self) -> bool {
        self.damage.is_none()
            && self.ignored_bytes == 0
            && self.unsupported_marker.is_none()
            && !self.index_full
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.created {
            write!(f, "created empty image; ")?;
        }
        write!(
            f,
            "{} records ({} bad), {} filemarks, end of data at offset {}",
            self.records, self.bad_records, self.filemarks, self.end_of_data
        )?;
        if self.end_of_medium_marker {
            write!(f, ", end-of-medium marker")?;
        }
        if let Some((offset, word)) = self.unsupported_marker {
            write!(f, ", unsupported marker {word:#010x} at offset {offset}")?;
        }
        if self.ignored_bytes != 0 {
            write!(
                f,
                ", {} bytes after end of data ignored",
                self.ignored_bytes
            )?;
        }
        if let Some(damage) = &self.damage {
            write!(f, "; damaged tail: {damage}")?;
            if self.truncated_bytes != 0 {
                write!(f, ", {} bytes truncated", self.truncated_bytes)?;
            } else {
                write!(f, ", ignored (image is write protected)")?;
            }
        }
        Ok(())
    }
}

/// Positioned reads, from a file or from memory.
trait ReadAt {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl ReadAt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let src = self.get(start..).unwrap_or_default();
        let n = src.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), src.get(..n)) {
            dst.copy_from_slice(src);
        }
        Ok(n)
    }
}

/// A read-ahead window over a source of known length, for reading length words.
struct Window<'a, R: ?Sized> {
    src: &'a R,
    len: u64,
    buf: Vec<u8>,
    start: u64,
    filled: usize,
}

impl<'a, R: ReadAt + ?Sized> Window<'a, R> {
    fn new(src: &'a R, len: u64) -> Self {
        Self {
            src,
            len,
            buf: vec![0; SCAN_WINDOW],
            start: 0,
            filled: 0,
        }
    }

    /// The 4-byte little-endian word at `offset`; the caller checked 4 bytes remain.
    fn word(&mut self, offset: u64) -> io::Result<u32> {
        let cached = offset >= self.start && offset + 4 <= self.start + self.filled as u64;
        if !cached {
            let window = if offset <= self.start + (self.filled + SCAN_JUMP) as u64 {
                SCAN_WINDOW
            } else {
                SCAN_JUMP
            };
            self.start = offset;
            let want = usize::try_from((self.len - offset).min(window as u64)).unwrap_or(window);
            self.filled = 0;
            while self.filled < want {
                let dst = self.buf.get_mut(self.filled..want).unwrap_or_default();
                match self.src.read_at(dst, offset + self.filled as u64) {
                    Ok(0) => break,
                    Ok(n) => self.filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if self.filled < 4 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "tape image shrank while being read",
                ));
            }
        }
        let at = usize::try_from(offset - self.start).unwrap_or(usize::MAX);
        let bytes = self
            .buf
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .ok_or_else(|| io::Error::other("scan window out of range"))?;
        Ok(u32::from_le_bytes(bytes))
    }
}

/// The index built by a scan.
struct Scan {
    index: Index,
    /// Where the readable data ends (the next write goes here).
    end: u64,
    report: LoadReport,
}

fn scan<R: ReadAt + ?Sized>(src: &R, len: u64) -> io::Result<Scan> {
    let mut w = Window::new(src, len);
    let mut index = Index::default();
    let mut report = LoadReport::default();
    let mut p = 0u64;
    // End of the last object: erase gaps after it, up to the end of the file, are not data
    // (a SIMH writer, or an earlier xcopyd's O_DIRECT padding, can leave them there), and the
    // next write goes over them. Gaps before a damaged object or a marker stay, as before.
    let mut data_end = 0u64;
    while p < len {
        let remaining = len - p;
        if remaining < 4 {
            report.damage = Some(Damage::PartialLength {
                offset: p,
                bytes: remaining as u8,
            });
            break;
        }
        let word = w.word(p)?;
        match word {
            END_OF_MEDIUM => {
                report.end_of_medium_marker = true;
                report.ignored_bytes = remaining;
                break;
            }
            ERASE_GAP => {
                report.gaps += 1;
                p += 4;
                continue;
            }
            HALF_GAP => {
                report.gaps += 1;
                p += 2;
                continue;
            }
            marker if marker >> 28 == 0xf => {
                report.unsupported_marker = Some((p, marker));
                report.ignored_bytes = remaining;
                break;
            }
            _ => {}
        }
        let object = Object::from_word(word);
        let size = object.image_len();
        if index.would_overflow(word) {
            // More changes of record length than an index holds: the rest is not read.
            report.index_full = true;
            report.ignored_bytes = remaining;
            break;
        }
        match object {
            Object::Filemark => {
                report.filemarks += 1;
            }
            Object::Record { len: n } | Object::BadRecord { len: n } => {
                if size > remaining {
                    report.damage = Some(Damage::RecordPastEnd {
                        offset: p,
                        length: n,
                    });
                    break;
                }
                let trailing = w.word(p + size - 4)?;
                if trailing != word {
                    report.damage = Some(Damage::LengthMismatch {
                        offset: p,
                        leading: word,
                        trailing,
                    });
                    break;
                }
                if matches!(object, Object::BadRecord { .. }) {
                    report.bad_records += 1;
                }
                report.records += 1;
            }
        }
        // Cannot fail: would_overflow was asked above.
        let _ = index.push(p, word, 1);
        p += size;
        data_end = p;
    }
    let stopped = report.damage.is_some()
        || report.unsupported_marker.is_some()
        || report.end_of_medium_marker
        || report.index_full;
    let end = if stopped { p } else { data_end }.min(len);
    report.end_of_data = end;
    Ok(Scan { index, end, report })
}

/// The objects of an in-memory image (offset and kind, tape order) and what a load would
/// report; nothing is truncated. For tests and fuzzing of the image parser.
pub fn scan_bytes(image: &[u8]) -> (Vec<(u64, Object)>, LoadReport) {
    match scan(image, image.len() as u64) {
        Ok(s) => (
            (0..s.index.objects())
                .filter_map(|n| s.index.entry(n))
                .map(|(offset, word)| (offset, Object::from_word(word)))
                .collect(),
            s.report,
        ),
        // Reading memory cannot fail.
        Err(_) => (Vec::new(), LoadReport::default()),
    }
}

/// An open image and its index.
pub struct TapeImage {
    file: File,
    index: Index,
    /// End of data: where the next object goes.
    end: u64,
    /// The file holds bytes past `end` (a marker, ignored bytes, or a failed write's
    /// partial tail), cut before the next write.
    tail_after_end: bool,
    end_of_medium_marker: bool,
    /// Past `end` the file holds erase gaps up to a block boundary, the padding of the last
    /// O_DIRECT append: the next one overwrites them, any other write and the close cut them.
    padded: bool,
    /// The image's bytes from the block boundary below `end` up to `end`, as the last
    /// O_DIRECT append left them (with the end of data they belong to); the next one writes
    /// them again as its first block's head.
    carry: Option<(u64, Vec<u8>)>,
    /// How far the file was grown ahead of the appends writing all at once (0: not at all);
    /// what lies past the end padding is zeros, hidden by its marker.
    grown: u64,
    direct: Option<Direct>,
    /// This process's flock on the image (exclusive when writable), released after
    /// everything else is closed.
    _lock: ImageLock,
}

/// The O_DIRECT side of an image opened for writing.
struct Direct {
    file: Arc<File>,
    /// What O_DIRECT writes are aligned to: the file system's block, at least O_DIRECT's
    /// offset and length alignment (a power of two; the ring's buffers are aligned to
    /// [`BUF_ALIGN`], at least O_DIRECT's memory alignment).
    block: u64,
    /// Writes pieces of the framed stream while the next ones are being filled; made at
    /// the first append (a tape only read never pays for it).
    ring: Option<Ring>,
    /// Growing ahead allocates blocks (fallocate). Not on tmpfs: there it only zero-fills
    /// pages the appends then overwrite (a fifth of an in-memory backup's time, measured),
    /// while O_DIRECT writes into a hole do not wait for each other as ext4's do.
    allocate: bool,
}

impl Direct {
    /// Opens `path` again with O_DIRECT; `None` where the file system refuses it or needs
    /// an alignment the ring's buffers do not have.
    fn open(path: &Path) -> Option<Self> {
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok()?;
        let (mem, offset) = crate::sys::block::direct_io_alignment(file.as_fd())
            .unwrap_or((BUF_ALIGN as u32, BUF_ALIGN as u32));
        if mem as usize > BUF_ALIGN {
            return None;
        }
        let blksize = file.metadata().ok()?.blksize();
        let block = u64::from(offset).max(blksize).max(512);
        if !block.is_power_of_two() || block > PIECE as u64 / 2 {
            return None;
        }
        let allocate = !crate::sys::block::on_tmpfs(file.as_fd());
        Some(Self {
            file: Arc::new(file),
            block,
            ring: None,
            allocate,
        })
    }
}

/// Lays a byte stream out in the ring's buffers, each one `piece` bytes of the image between
/// multiples of `piece` (the first from `base`, a block boundary, on: the device sees
/// aligned writes, as from dd, not ones straddling its boundaries), and writes them while
/// the next are filled. Remembers the first piece that failed, and writes nothing after it.
///
/// Without a guard the pieces go in order, one at a time: each extends the file, and one
/// must never complete before the one below it, or the file would hold a hole (read back as
/// zeros, i.e. filemarks) if the process died in between (ext4 runs such writes one at a
/// time anyway). With a guard the file already reaches past the stream, and the pieces go
/// all at once, the guard's blocks with the marker kept in place (see [`Guard`]).
struct Pieces<'r> {
    ring: &'r mut Ring,
    base: u64,
    piece: usize,
    /// Where `base` falls in its piece: the first piece's bytes start there.
    lead: usize,
    /// Index of the piece being filled (all before it are queued or written).
    next: usize,
    current: Option<Buf>,
    fill: usize,
    /// Filled pieces not yet written: (index, buffer, end of the bytes to write).
    queued: std::collections::VecDeque<(usize, Buf, usize)>,
    /// Bytes each piece must write.
    lengths: Vec<usize>,
    failed: Option<(usize, io::Error)>,
    done: Vec<Done>,
    guard: Option<Guard>,
    /// Waiting on the ring failed: what is in flight is unknown, the ring unusable.
    broken: bool,
}

#[cfg(test)]
thread_local! {
    /// The piece of an O_DIRECT append whose write fails, for tests.
    static FAIL_PIECE: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// The head of a stream written all at once: the blocks from `base` up to `end`, which
/// hold the end-of-medium marker the last append left at end of data (at `marker`). The
/// pieces write them with everything in place but that marker; once all of it is on
/// stable storage they are written again whole (`bytes`), which changes only the 4 bytes
/// that turn the marker into the first record's header. Until then any reader stops at
/// the marker, never reaching the pieces in flight, and a torn last write can only leave
/// the marker or the header there.
struct Guard {
    marker: u64,
    end: u64,
    bytes: Vec<u8>,
}

impl Pieces<'_> {
    fn fail(&mut self, k: usize, e: io::Error) {
        if self.failed.as_ref().is_none_or(|(f, _)| k < *f) {
            self.failed = Some((k, e));
        }
        // Nothing after a failed piece may reach the file.
        self.queued.clear();
    }

    /// Starts the next queued piece when none is in flight; with a guard, every queued one.
    fn pump(&mut self) {
        while self.failed.is_none() && (self.guard.is_some() || self.ring.in_flight() == 0) {
            let Some((k, mut buf, len)) = self.queued.pop_front() else {
                return;
            };
            let from = if k == 0 { self.lead } else { 0 };
            let offset = self.base - self.lead as u64 + (k * self.piece + from) as u64;
            if let Some(g) = self.guard.as_mut() {
                if offset < g.end {
                    // The guard's final bytes are kept for the last write; this one puts
                    // the marker back where the first header goes.
                    let n = ((g.end - offset) as usize).min(len - from);
                    g.bytes
                        .extend_from_slice(buf.as_slice().get(from..from + n).unwrap_or_default());
                    // The marker's bytes that fall in this piece (it may straddle two).
                    let lo = g.marker.max(offset);
                    let hi = (g.marker + 4).min(offset + n as u64);
                    if lo < hi {
                        let at = from + (lo - offset) as usize;
                        let marker = END_OF_MEDIUM.to_le_bytes();
                        let part = marker.get((lo - g.marker) as usize..(hi - g.marker) as usize);
                        if let (Some(dst), Some(src)) = (
                            buf.as_mut_slice().get_mut(at..at + (hi - lo) as usize),
                            part,
                        ) {
                            dst.copy_from_slice(src);
                        }
                    }
                }
            }
            #[cfg(test)]
            if FAIL_PIECE.with(|f| f.get() == Some(k)) {
                return self.fail(k, io::Error::other("injected write failure"));
            }
            if let Err(r) = self.ring.write(0, offset, buf, from..len, k as u64) {
                return self.fail(k, r.error);
            }
            if let Err(e) = self.ring.submit() {
                return self.fail(k, e);
            }
        }
    }

    /// Waits for the piece in flight and starts the next.
    fn reap(&mut self) {
        if let Err(e) = self.ring.wait(&mut self.done) {
            // The ring is unusable; nothing of this batch can be trusted.
            self.broken = true;
            self.fail(0, e);
        }
        let mut done = std::mem::take(&mut self.done);
        for d in done.drain(..) {
            let k = d.tag as usize;
            let expected = self.lengths.get(k).copied().unwrap_or(0);
            match d.result {
                Ok(n) if n == expected => {}
                Ok(_) => self.fail(k, io::ErrorKind::WriteZero.into()),
                Err(e) => self.fail(k, e),
            }
        }
        self.done = done;
        self.pump();
    }

    /// Copies `bytes` in, queueing each piece that fills up.
    fn put(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && self.failed.is_none() {
            let buf = match self.current.as_mut() {
                Some(b) => b,
                None => match self.ring.buffer() {
                    Some(b) => self.current.insert(b),
                    None if self.ring.in_flight() > 0 => {
                        self.reap();
                        continue;
                    }
                    None => return self.fail(self.next, io::Error::other("no ring buffer")),
                },
            };
            let n = bytes.len().min(self.piece - self.fill);
            let (now, rest) = bytes.split_at(n);
            if let Some(dst) = buf.as_mut_slice().get_mut(self.fill..self.fill + n) {
                crate::sys::copy::copy_streaming(dst, now);
            }
            self.fill += n;
            bytes = rest;
            if self.fill == self.piece {
                self.queue(self.piece);
            }
        }
    }

    /// The last `n` bytes put, if they are all in the piece being filled.
    fn last(&self, n: usize) -> Option<Vec<u8>> {
        let from = self.fill.checked_sub(n)?;
        let b = self.current.as_ref()?;
        b.as_slice().get(from..self.fill).map(<[u8]>::to_vec)
    }

    /// Queues the first `len` bytes of the current piece and moves on to the next.
    fn queue(&mut self, len: usize) {
        let Some(buf) = self.current.take() else {
            return;
        };
        let k = self.next;
        self.next += 1;
        self.fill = 0;
        self.lengths.push(len - if k == 0 { self.lead } else { 0 });
        if self.failed.is_none() {
            self.queued.push_back((k, buf, len));
        }
        self.pump();
    }

    /// Queues what the current piece holds (whole blocks: the stream ends on one) and
    /// writes everything queued.
    fn finish(&mut self) {
        if self.fill > if self.next == 0 { self.lead } else { 0 } {
            self.queue(self.fill);
        }
        while !self.broken && (self.ring.in_flight() > 0 || !self.queued.is_empty()) {
            if self.ring.in_flight() == 0 {
                self.pump();
            } else {
                self.reap();
            }
        }
    }

    /// Writes `bytes` (whole blocks) at `offset` after everything else, and waits for it.
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut buf = self
            .ring
            .buffer()
            .ok_or_else(|| io::Error::other("no ring buffer"))?;
        let dst = buf
            .as_mut_slice()
            .get_mut(..bytes.len())
            .ok_or_else(|| io::Error::other("guard larger than a ring buffer"))?;
        dst.copy_from_slice(bytes);
        // One more piece, checked by `reap` like the others.
        let k = self.lengths.len();
        self.lengths.push(bytes.len());
        self.ring
            .write(0, offset, buf, 0..bytes.len(), k as u64)
            .map_err(|r| r.error)?;
        while !self.broken && self.ring.in_flight() > 0 {
            self.reap();
        }
        self.failed.take().map_or(Ok(()), |(_, e)| Err(e))
    }
}

/// What follows the records of an O_DIRECT append up to a block boundary: an end-of-medium
/// marker at `end` (any SIMH reader stops there), then zeros. At least the marker's 4 bytes,
/// so the boundary may be the next-but-one.
fn end_padding(end: u64, block: u64) -> Vec<u8> {
    let len = ((end + 4).next_multiple_of(block) - end) as usize;
    let mut pad = vec![0u8; len];
    if let Some(marker) = pad.get_mut(..4) {
        marker.copy_from_slice(&END_OF_MEDIUM.to_le_bytes());
    }
    pad
}

impl fmt::Debug for TapeImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TapeImage")
            .field("objects", &self.index.objects())
            .field("filemarks", &self.index.filemarks())
            .field("end_of_data", &self.end)
            .finish_non_exhaustive()
    }
}

impl TapeImage {
    /// Opens (creating if missing and `writable`) and indexes the image. A damaged tail is
    /// cut off when `writable`, otherwise only ignored.
    pub fn open(path: &Path, writable: bool) -> io::Result<(Self, LoadReport)> {
        let created = writable && !path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .create(writable)
            .truncate(false)
            .open(path)?;
        let mode = if writable {
            LockMode::Exclusive
        } else {
            LockMode::Shared
        };
        // Before the scan: a damaged tail is cut only under an exclusive lock.
        let lock = ImageLock::acquire(path, mode).map_err(|e| match e {
            LockError::Busy { .. } => io::Error::new(io::ErrorKind::ResourceBusy, e),
            LockError::Io { source, .. } => source,
        })?;
        let len = file.metadata()?.len();
        let Scan {
            index,
            end,
            mut report,
        } = scan(&file, len)?;
        report.created = created;
        if report.damage.is_some() && writable {
            file.set_len(end)?;
            file.sync_all()?;
            report.truncated_bytes = len - end;
        }
        let tail_after_end = file.metadata()?.len() != end;
        let direct = if writable { Direct::open(path) } else { None };
        Ok((
            Self {
                file,
                index,
                end,
                tail_after_end,
                end_of_medium_marker: report.end_of_medium_marker,
                padded: false,
                carry: None,
                grown: 0,
                direct,
                _lock: lock,
            },
            report,
        ))
    }

    /// Logical objects on the tape: end of data is at this object number.
    pub fn objects(&self) -> u64 {
        self.index.objects()
    }

    /// The object at logical object number `n`, or None at (or past) end of data.
    pub fn object(&self, n: u64) -> Option<Object> {
        self.index.entry(n).map(|(_, word)| Object::from_word(word))
    }

    /// Image offset of object `n`; end of data for `n` at or past the end.
    pub fn offset_of(&self, n: u64) -> u64 {
        self.index.entry(n).map_or(self.end, |(offset, _)| offset)
    }

    /// Image offset of end of data.
    pub fn end_of_data(&self) -> u64 {
        self.end
    }

    /// An end-of-medium marker sits at end of data.
    pub fn end_of_medium_marker(&self) -> bool {
        self.end_of_medium_marker
    }

    /// Filemarks before object `n`: the logical file identifier at `n`.
    pub fn filemarks_before(&self, n: u64) -> u64 {
        self.index.filemarks_before(n)
    }

    /// The object number of the `k`-th filemark (0-based).
    pub fn filemark(&self, k: u64) -> Option<u64> {
        self.index.filemark(k)
    }

    /// Filemarks on the tape.
    pub fn filemark_count(&self) -> u64 {
        self.index.filemarks()
    }

    /// Whether appending objects with SIMH word `word` (a record of that length, or 0 for
    /// filemarks) would need more index than a tape has ([`super::index::MAX_RUNS`]): the tape is
    /// then full, whatever its capacity.
    pub fn index_full(&self, word: u32) -> bool {
        self.index.would_overflow(word)
    }

    /// Reads the first `buf.len()` data bytes of record `n` (which must be that long).
    pub fn read_data(&self, n: u64, buf: &mut [u8]) -> io::Result<()> {
        let (offset, word) = self
            .index
            .entry(n)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no such object"))?;
        let len = match Object::from_word(word) {
            Object::Record { len } | Object::BadRecord { len } => len,
            Object::Filemark => 0,
        };
        if buf.len() as u64 > u64::from(len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "read past the end of a record",
            ));
        }
        self.file.read_exact_at(buf, offset + 4)
    }

    /// Makes object `n` end of data: every object from `n` on is gone, in the index and
    /// in the file (a drive writing or erasing mid-tape loses what follows).
    pub fn truncate(&mut self, n: u64) -> io::Result<()> {
        if n < self.objects() {
            self.end = self.offset_of(n);
            self.index.truncate(n);
            self.tail_after_end = true;
            self.carry = None;
        }
        // The end padding alone may stay: an append at end of data overwrites it.
        if self.tail_after_end {
            self.cut_tail()?;
        }
        Ok(())
    }

    /// Cuts whatever the file holds past end of data.
    fn cut_tail(&mut self) -> io::Result<()> {
        if self.tail_after_end || self.padded {
            self.file.set_len(self.end)?;
            self.tail_after_end = false;
            self.padded = false;
            self.grown = 0;
            self.end_of_medium_marker = false;
        }
        Ok(())
    }

    /// Appends the records in `data`, each slice whole records of `record_len` bytes, at
    /// end of data. The index grows as writes complete, so after an error it holds what
    /// reached the file, and the file is cut there (failing that, the next write cuts it).
    pub fn append_records(&mut self, data: &[&[u8]], record_len: usize) -> io::Result<()> {
        let word = u32::try_from(record_len)
            .ok()
            .filter(|&w| {
                w != 0 && w & BAD_RECORD == 0 && data.iter().all(|d| d.len() % record_len == 0)
            })
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad record length"))?;
        let result = self.append_words(data, record_len, word);
        if result.is_err() {
            // What reached the file past the index (and the room grown ahead) goes.
            let _ = self.cut_tail();
        }
        result
    }

    /// [`TapeImage::append_records`] once the length word is known good.
    fn append_words(&mut self, data: &[&[u8]], record_len: usize, word: u32) -> io::Result<()> {
        // SIMH keeps objects 16-bit aligned, so end of data is even; the O_DIRECT path needs
        // it (its pieces are laid out from the block boundary below).
        if self.end % 2 == 1 {
            self.direct = None;
        }
        // What an earlier write left past end of data goes; the end padding of the last
        // O_DIRECT append stays for this one to write over (the page cache path cuts it).
        if self.tail_after_end {
            self.cut_tail()?;
        }
        if let Some(mut direct) = self.direct.take() {
            if direct.ring.is_none() {
                direct.ring = Ring::new(PIECES, PIECE, 1)
                    .and_then(|mut r| r.set_file(0, &direct.file).map(|()| r))
                    .ok();
            }
            if let Some(mut ring) = direct.ring.take() {
                let result = self.append_direct(&direct, &mut ring, data, record_len, word);
                // A ring still holding writes failed to wait for them: it goes (its drop
                // waits for them, or leaks their buffers), and a new one is made next time.
                direct.ring = (ring.in_flight() == 0).then_some(ring);
                self.direct = Some(direct);
                return result;
            }
            // No io_uring here: the page cache it is, for good.
        }
        self.cut_tail()?;
        self.carry = None;
        let word_bytes = word.to_le_bytes();
        let pad = [0u8; 1];
        let odd = record_len % 2 == 1;
        let size = record_image_len(record_len as u64);
        let mut iov = Vec::with_capacity(RECORDS_PER_WRITE * 4);
        let mut records = data.iter().flat_map(|d| d.chunks(record_len)).peekable();
        while records.peek().is_some() {
            iov.clear();
            let mut count = 0u64;
            for rec in records.by_ref().take(RECORDS_PER_WRITE) {
                iov.push(IoSlice::new(&word_bytes));
                iov.push(IoSlice::new(rec));
                if odd {
                    iov.push(IoSlice::new(&pad));
                }
                iov.push(IoSlice::new(&word_bytes));
                count += 1;
            }
            let start = self.end;
            self.tail_after_end = true; // until the write is known complete
            pwritev_all(&self.file, &mut iov, start)?;
            self.index_push(start, word, count)?;
            self.end = start + count * size;
            self.tail_after_end = false;
        }
        Ok(())
    }

    /// [`TapeImage::append_records`] through O_DIRECT (see the module's description).
    fn append_direct(
        &mut self,
        d: &Direct,
        ring: &mut Ring,
        data: &[&[u8]],
        record_len: usize,
        word: u32,
    ) -> io::Result<()> {
        let size = record_image_len(record_len as u64) as usize;
        let count: usize = data.iter().map(|d| d.len() / record_len).sum();
        if count == 0 {
            return Ok(());
        }
        let total = count * size;
        let block = d.block;
        let start = self.end;
        let base = start / block * block;
        let head = (start - base) as usize;
        // The last append left its end padding here (an end-of-medium marker at end of
        // data): the file may grow first and take everything at once.
        let at_once = self.padded;
        let carry = match self.carry.take() {
            Some((at, c)) if at == start && c.len() == head => c,
            _ => {
                let mut c = vec![0; head];
                self.file.read_exact_at(&mut c, base)?;
                c
            }
        };
        let stop = start + total as u64;
        let padding = end_padding(stop, block);
        let file_end = stop + padding.len() as u64;
        let guard_end = (start + 4).next_multiple_of(block);
        // Until the writes are known complete, whatever is past end of data is unknown.
        self.tail_after_end = true;
        self.padded = false;
        let grown = self.grown.max(guard_end);
        if at_once && file_end > grown {
            // Ahead of this append too: one allocation per GROW_AHEAD, not per append.
            let to = file_end.max(grown + GROW_AHEAD).next_multiple_of(block);
            match grow(&self.file, grown, to, d.allocate) {
                Ok(()) => self.grown = to,
                Err(_) => grow(&self.file, grown, file_end, d.allocate)?,
            }
        }
        let word_bytes = word.to_le_bytes();
        let piece = ring.buffer_size() / block as usize * block as usize;
        let lead = (base % piece as u64) as usize;
        let mut out = Pieces {
            piece,
            ring,
            base,
            lead,
            next: 0,
            current: None,
            fill: lead,
            queued: std::collections::VecDeque::new(),
            lengths: Vec::new(),
            failed: None,
            done: Vec::new(),
            broken: false,
            guard: at_once.then(|| Guard {
                marker: start,
                end: guard_end,
                bytes: Vec::with_capacity((guard_end - base) as usize),
            }),
        };
        out.put(&carry);
        for rec in data.iter().flat_map(|d| d.chunks(record_len)) {
            out.put(&word_bytes);
            out.put(rec);
            if record_len % 2 == 1 {
                out.put(&[0]);
            }
            out.put(&word_bytes);
        }
        let next_carry = out.last((stop % block) as usize);
        out.put(&padding);
        out.finish();
        let result = match (out.failed.take(), out.guard.take()) {
            (None, Some(g)) => {
                // Everything past the guard must be on stable storage (ext4's conversion
                // of the new blocks committed) before the marker that hides it goes, or a
                // power failure could leave records whose middle reads as zeros.
                self.file
                    .sync_data()
                    .and_then(|()| out.write_at(base, &g.bytes))
            }
            (None, None) => Ok(()),
            (Some((k, e)), None) => {
                // Pieces below the failed one are in the file, the carry first.
                let written = (k * out.piece).saturating_sub(lead);
                let durable = written.saturating_sub(head).min(total);
                let complete = durable / size;
                self.index_push(start, word, complete as u64)?;
                self.end = start + (complete * size) as u64;
                return Err(e);
            }
            // The marker at end of data still hides all of it: none of it was written.
            (Some((_, e)), Some(_)) => Err(e),
        };
        result?;
        self.index_push(start, word, count as u64)?;
        self.end = stop;
        self.tail_after_end = false;
        self.padded = true;
        self.carry = next_carry.map(|c| (stop, c));
        Ok(())
    }

    /// Adds `count` objects that reached the file to the index (an index already full is
    /// an error: the drive checks [`TapeImage::index_full`] before it writes).
    fn index_push(&mut self, start: u64, word: u32, count: u64) -> io::Result<()> {
        self.index
            .push(start, word, count)
            .map_err(|_| io::Error::new(io::ErrorKind::StorageFull, "tape index full"))
    }

    /// Appends `count` filemarks at end of data.
    pub fn append_filemarks(&mut self, count: u64) -> io::Result<()> {
        self.cut_tail()?;
        self.carry = None;
        let zeros = vec![0u8; FILEMARK_CHUNK.min(usize::try_from(count * 4).unwrap_or(0))];
        let mut left = count;
        while left > 0 {
            let n = left.min(FILEMARK_CHUNK as u64 / 4);
            let bytes = zeros.get(..(n * 4) as usize).unwrap_or_default();
            let start = self.end;
            self.tail_after_end = true;
            self.file.write_all_at(bytes, start)?;
            self.index_push(start, TAPE_MARK, n)?;
            self.end = start + n * 4;
            self.tail_after_end = false;
            left -= n;
        }
        Ok(())
    }

    /// Cuts the end padding of the last O_DIRECT append: the file ends at end of data.
    pub fn settle(&mut self) -> io::Result<()> {
        if self.padded {
            self.cut_tail()?;
        }
        Ok(())
    }

    /// Flushes written data to stable storage, the file cut to end of data first.
    pub fn sync(&mut self) -> io::Result<()> {
        self.settle()?;
        self.file.sync_data()
    }
}

impl Drop for TapeImage {
    /// A closed image ends exactly at end of data: the last O_DIRECT append's end padding
    /// goes (left behind, say by a crash, its end-of-medium marker ends the tape there).
    fn drop(&mut self) {
        let _ = self.settle();
    }
}

/// Makes the file `to` bytes long from `from`, allocating the blocks if `allocate` and the
/// file system can (ext4 then takes O_DIRECT writes into them concurrently: they no longer
/// extend the file), else as a hole. The new bytes read as zeros.
fn grow(file: &File, from: u64, to: u64, allocate: bool) -> io::Result<()> {
    use nix::errno::Errno;
    use nix::fcntl::{fallocate, FallocateFlags};
    if !allocate {
        return file.set_len(to);
    }
    let offset = i64::try_from(from).map_err(|_| io::ErrorKind::InvalidInput)?;
    let len = i64::try_from(to - from).map_err(|_| io::ErrorKind::InvalidInput)?;
    match fallocate(file, FallocateFlags::empty(), offset, len) {
        Ok(()) => Ok(()),
        Err(Errno::EOPNOTSUPP) => file.set_len(to),
        Err(e) => Err(e.into()),
    }
}

/// `pwritev` until every slice is written.
fn pwritev_all(file: &File, mut bufs: &mut [IoSlice<'_>], mut offset: u64) -> io::Result<()> {
    while !bufs.is_empty() {
        let at = i64::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
        match nix::sys::uio::pwritev(file, bufs, at) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                offset += n as u64;
                IoSlice::advance_slices(&mut bufs, n);
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temp dir under the system temp dir on a file system that takes O_DIRECT, so the
    /// direct append path is the one tested: the temp dir, else /var/tmp (tmpfs refuses it).
    fn direct_tempdir() -> tempfile::TempDir {
        for base in [std::env::temp_dir(), std::path::PathBuf::from("/var/tmp")] {
            let Ok(dir) = tempfile::tempdir_in(&base) else {
                continue;
            };
            let probe = dir.path().join("probe");
            if std::fs::write(&probe, b"").is_ok() && Direct::open(&probe).is_some() {
                return dir;
            }
        }
        panic!("neither the temp dir nor /var/tmp takes O_DIRECT");
    }

    fn rec(data: &[u8]) -> Vec<u8> {
        let n = (data.len() as u32).to_le_bytes();
        let mut v = n.to_vec();
        v.extend_from_slice(data);
        if data.len() % 2 == 1 {
            v.push(0);
        }
        v.extend_from_slice(&n);
        v
    }

    #[test]
    fn scans_records_filemarks_gaps_and_markers() {
        // DESIGN.md tape image format: records, tape marks, FFFFFFFFh end of medium.
        let mut img = rec(b"abc");
        img.extend_from_slice(&0u32.to_le_bytes());
        img.extend_from_slice(&ERASE_GAP.to_le_bytes());
        let mut bad = rec(b"xy");
        bad[3] |= 0x80;
        bad[9] |= 0x80;
        img.extend_from_slice(&bad);
        img.extend_from_slice(&END_OF_MEDIUM.to_le_bytes());
        img.extend_from_slice(b"junk");
        let (objects, report) = scan_bytes(&img);
        assert_eq!(
            objects,
            vec![
                (0, Object::Record { len: 3 }),
                (12, Object::Filemark),
                (20, Object::BadRecord { len: 2 }),
            ]
        );
        assert_eq!(report.records, 2);
        assert_eq!(report.bad_records, 1);
        assert_eq!(report.filemarks, 1);
        assert_eq!(report.gaps, 1);
        assert_eq!(report.end_of_data, 30);
        assert!(report.end_of_medium_marker);
        assert_eq!(report.ignored_bytes, 8);
        assert!(report.damage.is_none());
    }

    #[test]
    fn detects_every_kind_of_half_written_tail() {
        let good = rec(b"hello!");
        let mut img = good.clone();
        img.extend_from_slice(&[5, 0]);
        assert_eq!(
            scan_bytes(&img).1.damage,
            Some(Damage::PartialLength {
                offset: 14,
                bytes: 2
            })
        );
        let mut img = good.clone();
        img.extend_from_slice(&rec(b"world")[..9]);
        assert_eq!(
            scan_bytes(&img).1.damage,
            Some(Damage::RecordPastEnd {
                offset: 14,
                length: 5
            })
        );
        let mut img = good.clone();
        let mut torn = rec(b"worlds");
        let n = torn.len();
        torn[n - 4..].copy_from_slice(&[0, 0, 0, 0]);
        img.extend_from_slice(&torn);
        let (objects, report) = scan_bytes(&img);
        assert_eq!(objects.len(), 1);
        assert_eq!(
            report.damage,
            Some(Damage::LengthMismatch {
                offset: 14,
                leading: 6,
                trailing: 0
            })
        );
        assert_eq!(report.end_of_data, 14);
    }

    /// Appends through O_DIRECT (in [`direct_tempdir`]) and through the page cache, mixed with filemarks and mid-tape truncation,
    /// must leave the same bytes as the format written out by hand, reopen to the same index,
    /// and read back the same records.
    #[test]
    fn direct_and_buffered_appends_write_the_same_image() {
        let dir = direct_tempdir();
        let data = |len: usize, seed: usize| -> Vec<u8> {
            (0..len)
                .map(|i| (i * 31 + seed * 7 + i / 251) as u8)
                .collect()
        };
        // (record length, records); 0 = one filemark; usize::MAX = truncate to object 3.
        let steps: &[(usize, usize)] = &[
            (50, 3),
            (511, 2),
            (0, 1),
            (4093, 5),
            (usize::MAX, 0),
            (65536, 70),
            (1, 9),
            (0, 2),
            (262_144, 3),
            (4_194_305, 1),
            (1_048_576, 6),
            (7, 1),
        ];
        let mut images = Vec::new();
        for direct in [true, false] {
            let path = dir.path().join(format!("t{direct}.tap"));
            let (mut img, _) = TapeImage::open(&path, true).unwrap();
            if !direct {
                img.direct = None;
            }
            let fs_direct = img.direct.is_some();
            let mut expected: Vec<Vec<u8>> = Vec::new();
            for (k, &(len, n)) in steps.iter().enumerate() {
                match len {
                    0 => {
                        img.append_filemarks(n as u64).unwrap();
                        expected.extend((0..n).map(|_| vec![0u8; 4]));
                    }
                    usize::MAX => {
                        img.truncate(3).unwrap();
                        expected.truncate(3);
                    }
                    _ => {
                        let bytes: Vec<u8> = (0..n).flat_map(|i| data(len, k * 100 + i)).collect();
                        img.append_records(&[&bytes], len).unwrap();
                        expected.extend(bytes.chunks(len).map(rec));
                    }
                }
            }
            // Open, an O_DIRECT image runs on to its block boundary: an end-of-medium marker,
            // then zeros, also where the file was grown ahead of the appends (as a crash
            // would leave it); closed, it ends at end of data.
            let expected = expected.concat();
            let open_image = std::fs::read(&path).unwrap();
            let mut padded = expected.clone();
            if let (true, Some(d)) = (fs_direct, img.direct.as_ref()) {
                padded.extend_from_slice(&end_padding(expected.len() as u64, d.block));
                assert!(padded.len() > expected.len());
                // The last appends went all at once, into a file grown ahead of them.
                assert!(img.grown >= padded.len() as u64 + 4 * PIECE as u64);
                assert_eq!(open_image.len() as u64, img.grown);
            }
            assert!(open_image.len() >= padded.len());
            assert!(
                open_image[..padded.len()] == padded[..]
                    && open_image[padded.len()..].iter().all(|&b| b == 0),
                "direct={direct} (fs allows it: {fs_direct})"
            );
            let (objects_open, report) = scan_bytes(&open_image);
            assert_eq!(report.end_of_data, expected.len() as u64);
            assert_eq!(
                (
                    report.damage,
                    report.ignored_bytes,
                    report.end_of_medium_marker
                ),
                (None, (open_image.len() - expected.len()) as u64, fs_direct),
                "{report}"
            );
            let mut back = vec![0u8; 65536];
            img.read_data(3, &mut back).unwrap();
            assert_eq!(back, data(65536, 500));
            let objects = img.objects();
            assert_eq!(objects_open.len() as u64, objects);
            drop(img);
            let image = std::fs::read(&path).unwrap();
            assert_eq!(image, expected, "direct={direct}, closed");
            let (img, report) = TapeImage::open(&path, true).unwrap();
            assert_eq!((img.objects(), report.damage), (objects, None));
            images.push(image);
        }
        assert_eq!(images[0], images[1]);
    }

    /// The scan jumps over large records' data and reads ahead over runs of small objects;
    /// either way it finds every object, at its offset.
    #[test]
    fn scan_finds_every_object_across_jumps_and_windows() {
        let mut img = Vec::new();
        let mut want = Vec::new();
        let mut push = |img: &mut Vec<u8>, len: usize| {
            let at = img.len() as u64;
            if len == 0 {
                img.extend_from_slice(&[0; 4]);
                want.push((at, Object::Filemark));
            } else {
                img.extend_from_slice(&rec(&vec![(len % 251) as u8; len]));
                want.push((at, Object::Record { len: len as u32 }));
            }
        };
        for round in 0..3 {
            for len in [300 * 1024 + round, 0, 5, 4090, 4097, 65 * 1024, 1] {
                push(&mut img, len);
            }
            for i in 0..2000 {
                push(&mut img, i % 17);
            }
        }
        let (objects, report) = scan_bytes(&img);
        assert_eq!(objects, want);
        assert_eq!(report.end_of_data, img.len() as u64);
        assert!(report.is_clean());
    }

    /// Found by the tape_image fuzz target: gaps, then a record whose trailing length does
    /// not match. The damage is reported where it is and end of data is there too (the gap
    /// before it stays); only gaps running to the end of the file fall outside the data.
    #[test]
    fn gaps_before_damage_stay_in_the_data() {
        let input = [
            254, 255, 255, 255, 4, 0, 0, 0, 100, 97, 116, 97, 4, 97, 116, 97, 4, 0, 0, 0, 255, 255,
            0, 0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 0, 0,
        ];
        let (objects, report) = scan_bytes(&input);
        assert!(objects.is_empty());
        assert_eq!(report.end_of_data, 4);
        assert_eq!(report.damage.map(|d| d.offset()), Some(4));
        let mut trailing = rec(b"data");
        trailing.extend_from_slice(&ERASE_GAP.to_le_bytes());
        assert_eq!(scan_bytes(&trailing).1.end_of_data, 12);
    }

    /// The end padding starts with an end-of-medium marker at every even end and runs to a
    /// block boundary; an image left with it, and whatever an append in flight had written
    /// past it (a crash), reopens to the objects before the marker, takes the next append
    /// over it, and closes exact.
    #[test]
    fn end_padding_hides_what_follows_and_is_written_over() {
        for block in [512u64, 4096] {
            for end in (0..block + 16)
                .step_by(2)
                .chain([block * 3 - 2, block * 3 - 4])
            {
                let pad = end_padding(end, block);
                assert_eq!((end + pad.len() as u64) % block, 0, "end {end}");
                assert!(
                    pad.len() >= 4 && pad.len() < block as usize + 4,
                    "end {end}"
                );
                let (mut img, objects_before) = match end {
                    0 => (Vec::new(), 0),
                    4 | 8 => (vec![0u8; end as usize], end as usize / 4),
                    2 | 6 => continue,
                    _ => (rec(&vec![7u8; end as usize - 8]), 1),
                };
                img.extend_from_slice(&pad);
                // Pieces of the next append that landed before its head did.
                img.extend_from_slice(&rec(&[9u8; 700]));
                img.extend_from_slice(&[0u8; 64]);
                let (objects, report) = scan_bytes(&img);
                assert_eq!(objects.len(), objects_before, "end {end}");
                assert_eq!(report.end_of_data, end, "end {end}");
                assert!(report.end_of_medium_marker && report.damage.is_none());
                assert_eq!(report.ignored_bytes, img.len() as u64 - end, "end {end}");
            }
        }
        let dir = direct_tempdir();
        let path = dir.path().join("crashed.tap");
        let mut bytes = rec(b"hello");
        bytes.extend_from_slice(&end_padding(bytes.len() as u64, 4096));
        bytes.extend_from_slice(&rec(&[5u8; 10_000]));
        std::fs::write(&path, &bytes).unwrap();
        let (mut img, report) = TapeImage::open(&path, true).unwrap();
        assert_eq!(
            (img.objects(), report.end_of_data, report.damage),
            (1, 14, None)
        );
        assert!(report.end_of_medium_marker);
        img.append_records(&[b"world!"], 6).unwrap();
        img.append_records(&[&[3u8; 9000]], 4500).unwrap();
        drop(img);
        let mut expected = rec(b"hello");
        expected.extend_from_slice(&rec(b"world!"));
        expected.extend_from_slice(&rec(&[3u8; 4500]));
        expected.extend_from_slice(&rec(&[3u8; 4500]));
        assert_eq!(std::fs::read(&path).unwrap(), expected);
        let (img, report) = TapeImage::open(&path, true).unwrap();
        assert_eq!((img.objects(), report.is_clean()), (4, true));
    }

    /// A piece that fails: in order (the first append after a cut), the records wholly
    /// below it count; all at once, none of the append counts, and until the file is cut
    /// the marker the last append left at end of data hides whatever pieces did land.
    /// `append_records` then cuts the file to end of data, and the image closes exact.
    #[test]
    fn a_failed_append_keeps_what_reached_the_file_and_nothing_else() {
        let dir = direct_tempdir();
        let path = dir.path().join("fail.tap");
        let (mut img, _) = TapeImage::open(&path, true).unwrap();
        if img.direct.is_none() {
            eprintln!("no O_DIRECT on this file system: nothing to test");
            return;
        }
        let len = 100_000;
        let data: Vec<u8> = (0..len * 30).map(|i| (i % 251) as u8).collect();
        let fail_at = |k| FAIL_PIECE.with(|f| f.set(k));
        // In order: piece 0 (the image's first MiB) lands, holding 10 whole records.
        fail_at(Some(1));
        assert!(img.append_records(&[&data], len).is_err());
        fail_at(None);
        assert_eq!((img.objects(), img.end_of_data()), (10, 10 * 100_008));
        img.append_records(&[&data[..2 * len]], len).unwrap();
        assert_eq!(img.objects(), 12);
        // All at once (the last append left its marker): piece 2 fails; pieces 0 and 1
        // land (the marker's block with the marker kept in place), and the file, read as
        // a crash would leave it, still ends at the marker.
        let mut direct = img.direct.take().unwrap();
        let mut ring = direct.ring.take().unwrap();
        fail_at(Some(2));
        let word = len as u32;
        assert!(img
            .append_direct(&direct, &mut ring, &[&data], len, word)
            .is_err());
        fail_at(None);
        direct.ring = Some(ring);
        img.direct = Some(direct);
        assert_eq!((img.objects(), img.end_of_data()), (12, 12 * 100_008));
        let (objects, report) = scan_bytes(&std::fs::read(&path).unwrap());
        assert_eq!((objects.len(), report.end_of_data), (12, 12 * 100_008));
        assert!(report.end_of_medium_marker && report.damage.is_none());
        assert!(report.ignored_bytes > 2 << 20, "{report}");
        // Through append_records, a failure also cuts the file to end of data.
        img.append_records(&[&data[..len]], len).unwrap();
        fail_at(Some(1));
        assert!(img.append_records(&[&data], len).is_err());
        fail_at(None);
        assert_eq!(img.objects(), 13);
        let (objects, report) = scan_bytes(&std::fs::read(&path).unwrap());
        assert_eq!((objects.len() as u64, report.is_clean()), (13, true));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 13 * 100_008);
        img.append_records(&[&data[len..2 * len]], len).unwrap();
        drop(img);
        let expected: Vec<u8> = (0..10)
            .chain([0, 1, 0, 1])
            .flat_map(|i| rec(&data[i * len..(i + 1) * len]))
            .collect();
        assert!(std::fs::read(&path).unwrap() == expected);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_scan_to_a_consistent_prefix(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let (objects, report) = scan_bytes(&bytes);
            let mut p = 0u64;
            for (offset, object) in &objects {
                proptest::prop_assert!(*offset >= p);
                p = offset + object.image_len();
            }
            proptest::prop_assert!(p <= report.end_of_data);
            if report.is_clean() && !report.end_of_medium_marker {
                proptest::prop_assert_eq!(p, report.end_of_data);
            }
            proptest::prop_assert!(report.end_of_data <= bytes.len() as u64);
        }
    }
}
