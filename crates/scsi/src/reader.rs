//! A bounds-checked big-endian cursor that knows its absolute offset.
//!
//! Every length field of a parameter list opens a sub-reader ([`Reader::sub`]); a sub-reader
//! that is not consumed to its end is an error ([`Reader::finish`]). Offsets are absolute
//! within the outermost buffer so that a decode error can name the byte of the parameter
//! list it is about, as the sense-key-specific FIELD POINTER requires.

use super::error::{DecodeError, Reason};

/// A cursor over a byte slice; all reads are big-endian, as SCSI is.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Absolute offset of `buf[0]` within the outermost buffer.
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, whose first byte is at absolute offset 0.
    pub fn new(buf: &'a [u8]) -> Self {
        Self::at(buf, 0)
    }

    /// A reader over `buf`, whose first byte is at absolute offset `base`.
    pub fn at(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    /// Takes `n` bytes, failing with a truncation error (1A/00 in a parameter list).
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let bytes = self
            .pos
            .checked_add(n)
            .and_then(|end| self.buf.get(self.pos..end))
            .ok_or_else(|| self.truncated())?;
        self.pos += n;
        Ok(bytes)
    }

    /// Takes exactly `N` bytes as an array.
    #[inline]
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self
            .buf
            .get(self.pos..)
            .and_then(<[u8]>::first_chunk::<N>)
            .ok_or_else(|| self.truncated())?;
        self.pos += N;
        Ok(*bytes)
    }

    /// The next `N` bytes as an array, without consuming them.
    #[inline]
    pub fn peek_array<const N: usize>(&self) -> Result<[u8; N], DecodeError> {
        self.buf
            .get(self.pos..)
            .and_then(<[u8]>::first_chunk::<N>)
            .copied()
            .ok_or_else(|| self.truncated())
    }

    #[cold]
    fn truncated(&self) -> DecodeError {
        DecodeError::new(Reason::Truncated, self.offset())
    }

    /// A child reader over the next `n` bytes; this reader moves past them.
    #[inline]
    pub fn sub(&mut self, n: usize) -> Result<Reader<'a>, DecodeError> {
        let base = self.offset();
        let bytes = self.take(n)?;
        Ok(Reader::at(bytes, base))
    }

    /// Skips `n` reserved bytes.
    #[inline]
    pub fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.take(n).map(|_| ())
    }

    #[inline]
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    #[inline]
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    #[inline]
    pub fn u24(&mut self) -> Result<u32, DecodeError> {
        let [a, b, c] = self.array()?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }

    #[inline]
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    #[inline]
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Everything not yet read.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        rest
    }

    /// The next byte without consuming it.
    #[inline]
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Fails if any byte is left unread.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::new(Reason::TrailingData, self.offset()))
        }
    }

    /// Bytes not yet read.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Absolute offset of the next byte to be read.
    #[inline]
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Absolute offset of this reader's first byte.
    pub fn base(&self) -> usize {
        self.base
    }
}

/// Big-endian writers for the encoders: the mirror of [`Reader`].
pub trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u24(&mut self, v: u32);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put_zeros(&mut self, n: usize);
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u24(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes()[1..]);
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_zeros(&mut self, n: usize) {
        self.resize(self.len() + n, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_and_tracks_offsets() {
        let data = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09];
        let mut r = Reader::at(&data, 16);
        assert_eq!(r.u8().unwrap(), 0x01);
        assert_eq!(r.u24().unwrap(), 0x020304);
        assert_eq!(r.offset(), 20);
        let mut sub = r.sub(4).unwrap();
        assert_eq!(sub.base(), 20);
        assert_eq!(sub.u16().unwrap(), 0x0506);
        assert_eq!(sub.finish().unwrap_err().offset, 22);
        assert_eq!(r.u16().unwrap_err().reason, Reason::Truncated);
        assert_eq!(r.u8().unwrap(), 0x09);
        r.finish().unwrap();
    }

    #[test]
    fn huge_take_does_not_overflow() {
        let mut r = Reader::new(&[1, 2]);
        r.u8().unwrap();
        assert!(r.take(usize::MAX).is_err());
        assert_eq!(r.remaining(), 1);
    }

    #[test]
    fn put_mirrors_reader() {
        let mut v = Vec::new();
        v.put_u8(1);
        v.put_u16(0x0203);
        v.put_u24(0x040506);
        v.put_u32(0x0708090a);
        v.put_u64(0x0b0c0d0e0f101112);
        v.put_zeros(2);
        let mut r = Reader::new(&v);
        assert_eq!(r.u8().unwrap(), 1);
        assert_eq!(r.u16().unwrap(), 0x0203);
        assert_eq!(r.u24().unwrap(), 0x040506);
        assert_eq!(r.u32().unwrap(), 0x0708090a);
        assert_eq!(r.u64().unwrap(), 0x0b0c0d0e0f101112);
        assert_eq!(r.rest(), &[0, 0]);
    }
}
