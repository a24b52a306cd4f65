//! XDR (RFC 4506) primitives for NDMP: big-endian 4-byte units, variable-length opaque data
//! and strings padded to 4 bytes, arrays with a count. The [`Reader`] never panics and never
//! sizes an allocation from a length it has not first checked against both its bound and
//! the bytes actually left.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

use std::fmt;

/// Most bytes any one string may hold (device names, environment values, paths).
pub const MAX_STRING: usize = 4096;
/// Most elements any one array may hold (environment variables, device lists).
pub const MAX_ARRAY: usize = 1024;

/// Why a message did not decode: the byte offset and what was wrong there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub offset: usize,
    pub reason: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

impl std::error::Error for DecodeError {}

/// A bounds-checked cursor over one message body.
#[derive(Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, offset: 0 }
    }

    fn error(&self, reason: &'static str) -> DecodeError {
        DecodeError {
            offset: self.offset,
            reason,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let rest = self.data.get(self.offset..).unwrap_or_default();
        let bytes = rest.get(..n).ok_or(self.error("truncated"))?;
        self.offset += n;
        Ok(bytes)
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }

    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        self.u32().map(|v| v as i32)
    }

    /// A `u_short` (XDR carries it in 4 bytes); a value above 0xFFFF is refused.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        let at = self.offset;
        u16::try_from(self.u32()?).map_err(|_| DecodeError {
            offset: at,
            reason: "u_short out of range",
        })
    }

    /// An `ndmp4_u_quad`: high word, then low word.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let high = self.u32()?;
        let low = self.u32()?;
        Ok((u64::from(high) << 32) | u64::from(low))
    }

    /// Fixed-length opaque data (`opaque x[N]`), padded to 4 bytes.
    pub fn fixed(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let bytes = self.take(n)?;
        self.take(pad(n))?;
        Ok(bytes)
    }

    /// Variable-length opaque data (`opaque x<>`) of at most `max` bytes.
    pub fn opaque(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let at = self.offset;
        let n = self.u32()? as usize;
        if n > max {
            return Err(DecodeError {
                offset: at,
                reason: "opaque length over its bound",
            });
        }
        self.fixed(n)
    }

    /// A `string x<>` of at most [`MAX_STRING`] bytes; bytes that are not UTF-8 are
    /// replaced (names are compared, never executed).
    pub fn string(&mut self) -> Result<String, DecodeError> {
        Ok(String::from_utf8_lossy(self.opaque(MAX_STRING)?).into_owned())
    }

    /// An array count of at most `max` elements, each at least `min_size` bytes: a count
    /// the remaining bytes cannot hold is refused before anything is allocated.
    pub fn count(&mut self, max: usize, min_size: usize) -> Result<usize, DecodeError> {
        let at = self.offset;
        let n = self.u32()? as usize;
        let fits = n
            .checked_mul(min_size.max(1))
            .is_some_and(|b| b <= self.remaining());
        if n > max || !fits {
            return Err(DecodeError {
                offset: at,
                reason: "array count over its bound",
            });
        }
        Ok(n)
    }

    /// An array of at most [`MAX_ARRAY`] elements of at least `min_size` bytes each.
    pub fn array<T>(
        &mut self,
        min_size: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let n = self.count(MAX_ARRAY, min_size)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(item(self)?);
        }
        Ok(v)
    }

    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.offset)
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Refuses bytes left over after the last field.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(self.error("trailing bytes"))
        }
    }
}

/// Zero bytes that pad `n` bytes to a multiple of 4.
pub fn pad(n: usize) -> usize {
    (4 - n % 4) % 4
}

/// XDR encoding onto a byte vector.
pub trait Put {
    fn put_u32(&mut self, v: u32);
    fn put_i32(&mut self, v: i32);
    fn put_u64(&mut self, v: u64);
    fn put_fixed(&mut self, b: &[u8]);
    fn put_opaque(&mut self, b: &[u8]);
    fn put_string(&mut self, s: &str);
    fn put_count(&mut self, n: usize);
}

impl Put for Vec<u8> {
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }

    fn put_i32(&mut self, v: i32) {
        self.extend_from_slice(&v.to_be_bytes());
    }

    fn put_u64(&mut self, v: u64) {
        self.put_u32((v >> 32) as u32);
        self.put_u32(v as u32);
    }

    fn put_fixed(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
        self.resize(self.len() + pad(b.len()), 0);
    }

    /// Lengths are bounded by the message size limit, far below 2^32.
    fn put_opaque(&mut self, b: &[u8]) {
        self.put_count(b.len());
        self.put_fixed(b);
    }

    fn put_string(&mut self, s: &str) {
        self.put_opaque(s.as_bytes());
    }

    fn put_count(&mut self, n: usize) {
        self.put_u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_encode_as_rfc4506_says() {
        let mut b = Vec::new();
        b.put_u32(0x0102_0304);
        b.put_u64(0x0000_0001_0000_0002);
        b.put_string("abcde");
        b.put_opaque(&[]);
        b.put_fixed(&[9, 9]);
        assert_eq!(
            b,
            [
                1, 2, 3, 4, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 5, b'a', b'b', b'c', b'd', b'e', 0, 0,
                0, 0, 0, 0, 0, 9, 9, 0, 0
            ]
        );
        let mut r = Reader::new(&b);
        assert_eq!(r.u32().unwrap(), 0x0102_0304);
        assert_eq!(r.u64().unwrap(), 0x0000_0001_0000_0002);
        assert_eq!(r.string().unwrap(), "abcde");
        assert_eq!(r.opaque(0).unwrap(), &[] as &[u8]);
        assert_eq!(r.fixed(2).unwrap(), &[9, 9]);
        r.finish().unwrap();
    }

    #[test]
    fn lengths_are_checked_before_anything_is_sized() {
        // A string claiming 4 GiB - 1 in an 8-byte message.
        let e = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])
            .string()
            .unwrap_err();
        assert_eq!(
            e,
            DecodeError {
                offset: 0,
                reason: "opaque length over its bound"
            }
        );
        // An array of 1000 elements in 8 bytes: refused before Vec::with_capacity.
        let e = Reader::new(&[0, 0, 0x03, 0xe8, 0, 0, 0, 0])
            .array(8, |r| r.u64())
            .unwrap_err();
        assert_eq!(
            e,
            DecodeError {
                offset: 0,
                reason: "array count over its bound"
            }
        );
        // Padding is part of the data: a 1-byte string without its 3 pad bytes is short.
        let e = Reader::new(&[0, 0, 0, 1, b'x']).string().unwrap_err();
        assert_eq!(
            e,
            DecodeError {
                offset: 5,
                reason: "truncated"
            }
        );
        let e = Reader::new(&[0, 1, 0, 0]).u16().unwrap_err();
        assert_eq!(e.reason, "u_short out of range");
        let r = Reader::new(&[0]);
        assert_eq!(r.finish().unwrap_err().reason, "trailing bytes");
    }
}
