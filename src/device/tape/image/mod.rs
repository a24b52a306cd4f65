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
//! wait for each other), up to `direct::PIECES` pieces in flight together, the marker kept in
//! place of the first new record's header, and once all of it is on stable storage the
//! blocks holding the marker are written again with that header, the only bytes that
//! change. Until that last write lands, any reader stops at the marker; torn, it leaves the
//! marker or the header. A failed append leaves the file cut at end of data. An append returns when all of it is in the file. That costs one copy in memory
//! but no page cache to speak of: a buffered write copies too, then pays for the pages and
//! their write-back. Where O_DIRECT or io_uring is refused, and on tmpfs (whose O_DIRECT is
//! the page cache: there the ring's layout is only a second copy), each batch of records is
//! one `pwritev` of header + data + pad + trailer slices through the page cache.
//!
//! Either way a crash at any point leaves a prefix of complete objects, then at most one
//! partial one, which [`TapeImage::open`] detects and cuts off, or the end-of-medium marker,
//! which ends the tape for every SIMH reader (the next write here cuts it and what follows).
//!
//! This module holds the open image and its state; `format` the format and the scan,
//! `direct` the O_DIRECT writer, `buffered` the page-cache one.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::index::Index;
use crate::buf::Rings;
use crate::device::lock::{ImageLock, LockError, LockMode};
use std::sync::Arc;

mod buffered;
mod direct;
mod format;
#[cfg(test)]
mod tests;

use direct::{Direct, PIECES};
pub use format::{
    record_image_len, scan_bytes, Damage, LoadReport, Object, BAD_RECORD, END_OF_MEDIUM, ERASE_GAP,
    HALF_GAP, TAPE_MARK,
};
use format::{scan, Scan};

/// Bytes of zeros per filemark write.
const FILEMARK_CHUNK: usize = 64 * 1024;

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
    /// Where the O_DIRECT appends borrow their ring: the process's rings, shared with the
    /// copy engines (the inventory's), or the image's own ([`TapeImage::open`]).
    rings: Arc<Rings>,
    /// This process's flock on the image (exclusive when writable), released after
    /// everything else is closed.
    _lock: ImageLock,
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
    /// cut off when `writable`, otherwise only ignored. Its O_DIRECT appends borrow rings
    /// of its own; [`TapeImage::open_in`] shares the process's.
    pub fn open(path: &Path, writable: bool) -> io::Result<(Self, LoadReport)> {
        let rings = Rings::new(PIECES).map_err(io::Error::other)?;
        Self::open_in(path, writable, Arc::new(rings))
    }

    /// [`TapeImage::open`], the O_DIRECT appends borrowing their ring from `rings`.
    pub fn open_in(
        path: &Path,
        writable: bool,
        rings: Arc<Rings>,
    ) -> io::Result<(Self, LoadReport)> {
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
                rings,
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

    /// Cuts whatever the file holds past end of data. A run of appends ends here: their
    /// ring goes back to the rings.
    fn cut_tail(&mut self) -> io::Result<()> {
        self.give_ring();
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
                direct.ring = self.rings.take().and_then(|mut r| {
                    if r.set_file(0, &direct.file).is_ok() {
                        return Some(r);
                    }
                    self.rings.give(r);
                    None
                });
            }
            if let Some(mut ring) = direct.ring.take() {
                let result = self.append_direct(&direct, &mut ring, data, record_len, word);
                // A ring still holding writes failed to wait for them: it goes back (the
                // rings wait for them, or free it), and the next append borrows one anew.
                if ring.in_flight() == 0 {
                    direct.ring = Some(ring);
                } else {
                    self.rings.give(ring);
                }
                self.direct = Some(direct);
                return result;
            }
            // No io_uring here: the page cache it is, for good.
        }
        self.append_buffered(data, record_len, word)
    }

    /// Gives the ring of a run of appends back (its slot lets go of the image's file).
    fn give_ring(&mut self) {
        if let Some(ring) = self.direct.as_mut().and_then(|d| d.ring.take()) {
            self.rings.give(ring);
        }
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

    /// Cuts the end padding of the last O_DIRECT append: the file ends at end of data, and
    /// the appends' ring goes back.
    pub fn settle(&mut self) -> io::Result<()> {
        self.give_ring();
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

/// A temp dir under the system temp dir on a file system that takes O_DIRECT, so the
/// direct append path is the one tested: the temp dir, else /var/tmp (tmpfs refuses it).
#[cfg(test)]
pub(crate) fn direct_tempdir() -> tempfile::TempDir {
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
