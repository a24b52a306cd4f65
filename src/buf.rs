//! Aligned memory for I/O. [`AlignedBuf`], the byte buffer every O_DIRECT path shares: the
//! copy engine's fallback reads, the disks' bounce buffers, the iSCSI executor's data-in and
//! NDMP's DATA (safe code: the Vec is over-allocated and the aligned window found with
//! `align_offset`). [`Rings`], the process's io_uring rings and their registered buffers,
//! lent to the copy engine and to the tape images, and its bounce buffers, lent to the
//! disks.

mod rings;
pub use rings::{Rings, BOUNCES_KEPT, BUFFERS, IDLE_KEPT, POOL_BUFFERS, RING_BUFFER};

/// Where a buffer's data starts: O_DIRECT needs 512 bytes on this machine's file systems;
/// 4096 serves 4Kn devices too.
pub const ALIGN: usize = 4096;

/// A growable byte buffer whose data starts on an [`ALIGN`] boundary, so O_DIRECT reads and
/// writes need no bounce copy.
#[derive(Default)]
pub struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// A buffer of `len` zeroed bytes.
    pub fn new(len: usize) -> Self {
        let mut buf = Self::default();
        buf.slice(len);
        buf
    }

    /// The first `len` bytes, aligned, the buffer grown to hold them (contents
    /// unspecified: the caller fills them).
    pub fn slice(&mut self, len: usize) -> &mut [u8] {
        if self.raw.len() < len + ALIGN {
            self.raw = vec![0u8; len + ALIGN];
            self.start = self.raw.as_ptr().align_offset(ALIGN).min(ALIGN);
        }
        self.len = len;
        &mut self.raw[self.start..self.start + len]
    }

    /// The first `len` bytes (at most what the last [`AlignedBuf::slice`] made).
    pub fn get(&self, len: usize) -> &[u8] {
        &self.raw[self.start..self.start + len.min(self.len)]
    }

    /// Bytes the last [`AlignedBuf::slice`] (or [`AlignedBuf::new`]) made.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes the last [`AlignedBuf::slice`] (or [`AlignedBuf::new`]) made.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_is_aligned_and_keeps_its_length_as_it_grows() {
        let mut buf = AlignedBuf::new(512);
        assert_eq!(buf.as_mut_slice().as_ptr().align_offset(ALIGN), 0);
        assert_eq!(buf.len(), 512);
        buf.slice(3 * ALIGN + 1)[3 * ALIGN] = 7;
        assert_eq!(buf.get(usize::MAX).len(), 3 * ALIGN + 1);
        assert_eq!(buf.get(3 * ALIGN + 1)[3 * ALIGN], 7);
        assert_eq!(buf.as_mut_slice().as_ptr().align_offset(ALIGN), 0);
        // Shrinking keeps the allocation and the alignment.
        assert_eq!(buf.slice(100).len(), 100);
        assert_eq!(buf.get(usize::MAX).len(), 100);
        assert!(AlignedBuf::default().is_empty());
    }
}
