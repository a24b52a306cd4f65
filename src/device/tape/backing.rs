//! What an emulated tape drive's medium is kept in: a SIMH .tap image on a local file
//! system ([`super::image::TapeImage`]) or a cartridge in an S3-compatible object store
//! ([`crate::objstore::ObjectCartridge`]). Both present the same thing: a SIMH byte stream
//! (offsets are image offsets, so capacity and early warning mean the same) and an index of
//! its logical objects, so LOCATE, SPACE and READ POSITION never read data.

use std::fmt;
use std::io;

use super::image::{Object, TapeImage};
use crate::device::FileSpan;

/// A tape medium the drive reads and writes records and filemarks on.
pub trait Backing: fmt::Debug + Send {
    /// Logical objects on the tape: end of data is at this object number.
    fn objects(&self) -> u64;
    /// The object at logical object number `n`, or None at (or past) end of data.
    fn object(&self, n: u64) -> Option<Object>;
    /// Image offset of object `n`; end of data for `n` at or past the end.
    fn offset_of(&self, n: u64) -> u64;
    /// Image offset of end of data.
    fn end_of_data(&self) -> u64;
    /// An end-of-medium marker sits at end of data.
    fn end_of_medium_marker(&self) -> bool;
    /// Filemarks before object `n`.
    fn filemarks_before(&self, n: u64) -> u64;
    /// The object number of the `k`-th filemark (0-based).
    fn filemark(&self, k: u64) -> Option<u64>;
    /// Filemarks on the tape.
    fn filemark_count(&self) -> u64;
    /// Whether appending objects with SIMH word `word` would overflow the index.
    fn index_full(&self, word: u32) -> bool;
    /// Reads the first `buf.len()` data bytes of record `n`.
    fn read_data(&mut self, n: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Makes object `n` end of data: every object from `n` on is gone.
    fn truncate(&mut self, n: u64) -> io::Result<()>;
    /// Appends whole records of `record_len` bytes at end of data.
    fn append_records(&mut self, data: &[&[u8]], record_len: usize) -> io::Result<()>;
    /// Whether [`Backing::append_from_file`] takes records now. None do by default.
    fn takes_files(&self) -> bool {
        false
    }
    /// Appends the bytes of `span`, whole records of `record_len` bytes, at end of data,
    /// the kernel copying them from the span's file ([`TapeImage::append_from_file`]).
    fn append_from_file(&mut self, _span: FileSpan<'_>, _record_len: usize) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
    /// Appends `count` filemarks at end of data.
    fn append_filemarks(&mut self, count: u64) -> io::Result<()>;
    /// Finishes what a run of writes left for later (nothing need be durable).
    fn settle(&mut self) -> io::Result<()>;
    /// Makes everything written durable: on stable storage, or committed to the store.
    fn sync(&mut self) -> io::Result<()>;
    /// What the end of an EXTENDED COPY list needs before the list is acknowledged. A local
    /// image: nothing (as a drive in buffered mode, its data is in the host's page cache
    /// and a filemark or SYNCHRONIZE makes it durable). A store whose uncommitted writes a
    /// dead gateway leaves behind unread (an object cartridge): a commit, so that GOOD for
    /// the list means the store has what it wrote.
    fn end_list(&mut self) -> io::Result<()>;
}

impl Backing for TapeImage {
    fn objects(&self) -> u64 {
        TapeImage::objects(self)
    }
    fn object(&self, n: u64) -> Option<Object> {
        TapeImage::object(self, n)
    }
    fn offset_of(&self, n: u64) -> u64 {
        TapeImage::offset_of(self, n)
    }
    fn end_of_data(&self) -> u64 {
        TapeImage::end_of_data(self)
    }
    fn end_of_medium_marker(&self) -> bool {
        TapeImage::end_of_medium_marker(self)
    }
    fn filemarks_before(&self, n: u64) -> u64 {
        TapeImage::filemarks_before(self, n)
    }
    fn filemark(&self, k: u64) -> Option<u64> {
        TapeImage::filemark(self, k)
    }
    fn filemark_count(&self) -> u64 {
        TapeImage::filemark_count(self)
    }
    fn index_full(&self, word: u32) -> bool {
        TapeImage::index_full(self, word)
    }
    fn read_data(&mut self, n: u64, buf: &mut [u8]) -> io::Result<()> {
        TapeImage::read_data(self, n, buf)
    }
    fn truncate(&mut self, n: u64) -> io::Result<()> {
        TapeImage::truncate(self, n)
    }
    fn append_records(&mut self, data: &[&[u8]], record_len: usize) -> io::Result<()> {
        TapeImage::append_records(self, data, record_len)
    }
    fn takes_files(&self) -> bool {
        TapeImage::takes_files(self)
    }
    fn append_from_file(&mut self, span: FileSpan<'_>, record_len: usize) -> io::Result<()> {
        TapeImage::append_from_file(self, span, record_len)
    }
    fn append_filemarks(&mut self, count: u64) -> io::Result<()> {
        TapeImage::append_filemarks(self, count)
    }
    fn settle(&mut self) -> io::Result<()> {
        TapeImage::settle(self)
    }
    fn sync(&mut self) -> io::Result<()> {
        TapeImage::sync(self)
    }
    fn end_list(&mut self) -> io::Result<()> {
        Ok(())
    }
}
