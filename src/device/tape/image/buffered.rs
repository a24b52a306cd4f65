//! The page-cache writer, where O_DIRECT or io_uring is refused (tmpfs): each batch of
//! records is one `pwritev` of header + data + pad + trailer slices. Records whose data is
//! in another file's page cache are copied in by the kernel (`copy_file_range`) between
//! their header and trailer writes.

use std::fs::File;
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;

use super::{record_image_len, TapeImage, BAD_RECORD};
use crate::device::FileSpan;

/// Records per `pwritev`, keeping the slice count under IOV_MAX (1024).
const RECORDS_PER_WRITE: usize = 256;

impl TapeImage {
    /// [`TapeImage::append_records`] through the page cache.
    pub(super) fn append_buffered(
        &mut self,
        data: &[&[u8]],
        record_len: usize,
        word: u32,
    ) -> io::Result<()> {
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
}

impl TapeImage {
    /// Whether [`TapeImage::append_from_file`] can take records: the image is written
    /// through the page cache (in memory, or where O_DIRECT is refused).
    pub fn takes_files(&self) -> bool {
        self.direct.is_none()
    }

    /// Appends `span` as whole records of `record_len` bytes at end of data, each record's
    /// data copied by the kernel from the span's file, after its header and before its
    /// trailer: a process killed in the middle leaves a partial last record, which
    /// [`TapeImage::open`] cuts, never data where a header belongs. As
    /// [`TapeImage::append_records`], the index holds what reached the file and the file is
    /// cut there after an error. `Unsupported` with nothing written: the kernel will not
    /// copy between these files (two file systems); `UnexpectedEof`: the span's file ends
    /// inside it.
    pub fn append_from_file(&mut self, span: FileSpan<'_>, record_len: usize) -> io::Result<()> {
        let word = u32::try_from(record_len)
            .ok()
            .filter(|&w| {
                w != 0 && w & BAD_RECORD == 0 && span.len.is_multiple_of(record_len as u64)
            })
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad record length"))?;
        if !self.takes_files() {
            return Err(io::ErrorKind::Unsupported.into());
        }
        self.cut_tail()?;
        self.carry = None;
        let size = record_image_len(record_len as u64);
        let first = self.end;
        let mut done = 0u64;
        self.tail_after_end = true; // until each record is known complete
        let mut result = Ok(());
        while done < span.len / record_len as u64 {
            let at = first + done * size;
            let from = span.offset + done * record_len as u64;
            result = self.append_one_from(span.file, from, at, record_len, word);
            if result.is_err() {
                break;
            }
            done += 1;
        }
        if done > 0 {
            self.index_push(first, word, done)?;
            self.end = first + done * size;
        }
        if result.is_ok() {
            self.tail_after_end = false;
        } else {
            // What reached the file past the last whole record goes.
            let _ = self.cut_tail();
        }
        result
    }

    /// One record at `at`: header, data copied from `from` in `src`, pad, trailer.
    fn append_one_from(
        &self,
        src: &File,
        from: u64,
        at: u64,
        record_len: usize,
        word: u32,
    ) -> io::Result<()> {
        let word_bytes = word.to_le_bytes();
        self.file.write_all_at(&word_bytes, at)?;
        copy_range(src, from, &self.file, at + 4, record_len)?;
        let mut tail = [0u8; 5];
        let pad = record_len % 2;
        tail[pad..pad + 4].copy_from_slice(&word_bytes);
        self.file
            .write_all_at(&tail[..pad + 4], at + 4 + record_len as u64)
    }
}

/// `copy_file_range` until `len` bytes are copied.
fn copy_range(src: &File, from: u64, dst: &File, to: u64, len: usize) -> io::Result<()> {
    let offset = |o: u64| {
        i64::try_from(o)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))
    };
    let (mut from, mut to) = (offset(from)?, offset(to)?);
    let mut left = len;
    while left > 0 {
        match nix::fcntl::copy_file_range(src, Some(&mut from), dst, Some(&mut to), left) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => left -= n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(
                nix::errno::Errno::EXDEV
                | nix::errno::Errno::EOPNOTSUPP
                | nix::errno::Errno::ENOSYS,
            ) if left == len => return Err(io::ErrorKind::Unsupported.into()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
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
