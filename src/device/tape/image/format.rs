//! The SIMH .tap format: its length words, the objects they frame, and the scan that
//! indexes an image (and finds a half-written tail) — reading only, no writes.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::device::tape::index::Index;

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
/// Read-ahead while scanning objects that follow each other closely (small records,
/// filemarks)...
pub(super) const SCAN_WINDOW: usize = 64 * 1024;
/// ...and what is read where the scan jumps over a record's data to its trailing length
/// (which the next object's header follows): a 4 GiB image of 256 KiB records is scanned
/// reading 64 MiB, not half the image.
pub(super) const SCAN_JUMP: usize = 4096;

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
pub(super) trait ReadAt {
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
pub(super) struct Window<'a, R: ?Sized> {
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
pub(super) struct Scan {
    pub(super) index: Index,
    /// Where the readable data ends (the next write goes here).
    pub(super) end: u64,
    pub(super) report: LoadReport,
}

pub(super) fn scan<R: ReadAt + ?Sized>(src: &R, len: u64) -> io::Result<Scan> {
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
