//! The page-cache writer, where O_DIRECT or io_uring is refused (tmpfs): each batch of
//! records is one `pwritev` of header + data + pad + trailer slices.

use std::fs::File;
use std::io::{self, IoSlice};

use super::{record_image_len, TapeImage};

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
