//! WRITE ATOMIC(16) (SBC-4 4.29, 5.48) on an image file: all of the blocks are written or
//! none, against other writers (the range is held exclusive) and across a crash, through a
//! one-record journal beside the image (`IMAGE.atomic`, created at the first atomic write):
//!
//! 1. the record (header with LBA, length and an FNV-1a hash, then the data) is written to
//!    the journal and synced;
//! 2. the data is written in place and the image synced;
//! 3. the record's magic is cleared and the journal synced; then GOOD.
//!
//! Opening the disk replays a whole record (its hash matches) still in the journal; a torn
//! one was never applied (step 2 follows step 1's sync) and is dropped. A block device has
//! no place for the journal: it does not offer the command (MAXIMUM ATOMIC TRANSFER LENGTH
//! 0, not listed by REPORT SUPPORTED OPERATION CODES).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use super::{write_error, EmulatedDisk};
use crate::device::{Completion, DataDirection};
use crate::scsi::sbc::{check_range, CommandUsage, ReadWriteCdb, DISK_COMMANDS};
use crate::scsi::{Asc, Opcode, Sense};

/// MAXIMUM ATOMIC TRANSFER LENGTH, in bytes (the Block Limits page gives it in blocks).
pub const MAX_ATOMIC_BYTES: u32 = 1 << 20;
const MAGIC: &[u8; 8] = b"XCOPYDAW";
const HEADER: usize = 512;

/// The journal of one image, opened at its first use.
#[derive(Debug)]
pub(super) struct Journal {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.iter().flat_map(|p| p.iter()) {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn header(lba: u64, block_size: u32, data: &[u8]) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    let fields = [
        &lba.to_be_bytes()[..],
        &block_size.to_be_bytes()[..],
        &(data.len() as u64).to_be_bytes()[..],
    ];
    let hash = fnv1a(&[fields[0], fields[1], fields[2], data]);
    h[..8].copy_from_slice(MAGIC);
    h[8..16].copy_from_slice(fields[0]);
    h[16..20].copy_from_slice(fields[1]);
    h[20..28].copy_from_slice(fields[2]);
    h[28..36].copy_from_slice(&hash.to_be_bytes());
    h
}

impl Journal {
    pub(super) fn beside(image: &Path) -> Self {
        let mut name = image.file_name().unwrap_or_default().to_os_string();
        name.push(".atomic");
        Self {
            path: image.with_file_name(name),
            file: Mutex::new(None),
        }
    }

    /// Replays a whole record left by a crash onto `image`; drops a torn one.
    pub(super) fn recover(&self, image: &File, block_size: u32, blocks: u64) -> io::Result<()> {
        let file = match OpenOptions::new().read(true).write(true).open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut h = [0u8; HEADER];
        if file.read_exact_at(&mut h, 0).is_err() || &h[..8] != MAGIC {
            return Ok(());
        }
        let word =
            |r: std::ops::Range<usize>| h[r].iter().fold(0u64, |a, &b| a << 8 | u64::from(b));
        let (lba, size, len, hash) = (word(8..16), word(16..20), word(20..28), word(28..36));
        let fits = size == u64::from(block_size)
            && len % size.max(1) == 0
            && len <= u64::from(MAX_ATOMIC_BYTES)
            && lba
                .checked_add(len / size.max(1))
                .is_some_and(|end| end <= blocks);
        let mut data = vec![0u8; if fits { len as usize } else { 0 }];
        let whole = fits
            && file.read_exact_at(&mut data, HEADER as u64).is_ok()
            && header(lba, block_size, &data)[28..36] == hash.to_be_bytes();
        if whole {
            image.write_all_at(&data, lba * size)?;
            image.sync_data()?;
            tracing::warn!(journal = %self.path.display(), lba, bytes = len, "replayed an atomic write a crash interrupted");
        } else {
            tracing::warn!(journal = %self.path.display(), "dropped a torn atomic write record");
        }
        file.write_all_at(&[0u8; HEADER], 0)?;
        file.sync_data()
    }

    /// Steps 1-3 of the module doc, `write` being step 2.
    fn run(
        &self,
        lba: u64,
        block_size: u32,
        data: &[u8],
        write: impl FnOnce() -> io::Result<()>,
    ) -> io::Result<()> {
        let mut slot = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&self.path)?,
            );
        }
        let Some(file) = slot.as_ref() else {
            return Err(io::Error::other("journal not open"));
        };
        file.write_all_at(&header(lba, block_size, data), 0)?;
        file.write_all_at(data, HEADER as u64)?;
        file.sync_data()?;
        write()?;
        file.write_all_at(&[0u8; HEADER], 0)?;
        file.sync_data()
    }
}

/// The disk's command table without WRITE ATOMIC(16) (a block device's).
pub(super) fn commands_without_atomic() -> &'static [CommandUsage] {
    static TABLE: OnceLock<Vec<CommandUsage>> = OnceLock::new();
    TABLE.get_or_init(|| {
        DISK_COMMANDS
            .iter()
            .filter(|c| c.opcode != Opcode::WRITE_ATOMIC_16.0)
            .copied()
            .collect()
    })
}

impl EmulatedDisk {
    /// MAXIMUM ATOMIC TRANSFER LENGTH in blocks: 0 where there is no journal.
    pub(super) fn max_atomic_blocks(&self) -> u32 {
        if self.is_block {
            0
        } else {
            (MAX_ATOMIC_BYTES / self.block_size).min(self.max_transfer_blocks)
        }
    }

    /// WRITE ATOMIC(16): TRANSFER LENGTH above MAXIMUM ATOMIC TRANSFER LENGTH is 24/00 at
    /// byte 12; fewer data-out bytes than it asks for write nothing (an atomic write is
    /// whole) and are 24/00 at byte 12 too.
    pub(super) fn write_atomic(
        &self,
        cdb: &ReadWriteCdb,
        data: DataDirection<'_>,
    ) -> Result<Completion, Sense> {
        let max = self.max_atomic_blocks();
        if max == 0 {
            return Err(Sense::illegal_request(Asc::INVALID_COMMAND_OPERATION_CODE));
        }
        self.check_writable()?;
        if cdb.blocks > max {
            return Err(Sense::invalid_field_in_cdb(12, None));
        }
        check_range(cdb.lba, u64::from(cdb.blocks), self.blocks)?;
        let out: &[u8] = match data {
            DataDirection::ToDevice(b) => b,
            _ => &[],
        };
        let need = cdb.blocks as usize * self.block_size as usize;
        if need == 0 {
            return Ok(Completion::good(out.len()));
        }
        if out.len() < need {
            return Err(Sense::invalid_field_in_cdb(12, None));
        }
        let payload = &out[..need];
        let offset = cdb.lba * u64::from(self.block_size);
        let _alone = self.writes.exclusive(cdb.lba, u64::from(cdb.blocks));
        self.journal
            .run(cdb.lba, self.block_size, payload, || {
                self.write_at(payload, offset)?;
                self.file.sync_data()
            })
            .map_err(|e| write_error(&e, cdb.lba))?;
        Ok(Completion::good(out.len() - need))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_record_is_replayed_a_torn_one_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let image_path = dir.path().join("d.img");
        let image = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&image_path)
            .unwrap();
        image.set_len(64 * 512).unwrap();
        let j = Journal::beside(&image_path);
        assert_eq!(j.path, dir.path().join("d.img.atomic"));
        // A crash between steps 1 and 3: the record is there, the image untouched.
        let data = vec![0x5au8; 3 * 512];
        let crash = j.run(7, 512, &data, || Err(io::Error::other("power lost")));
        assert!(crash.is_err());
        let mut back = vec![0u8; 3 * 512];
        image.read_exact_at(&mut back, 7 * 512).unwrap();
        assert!(back.iter().all(|&b| b == 0));
        j.recover(&image, 512, 64).unwrap();
        image.read_exact_at(&mut back, 7 * 512).unwrap();
        assert_eq!(back, data);
        // The record is gone: a second recovery changes nothing.
        image.write_all_at(&[1u8; 512], 7 * 512).unwrap();
        j.recover(&image, 512, 64).unwrap();
        image.read_exact_at(&mut back[..512], 7 * 512).unwrap();
        assert_eq!(back[..512], [1u8; 512]);
        // A torn record (data not all there, hash wrong) is never applied.
        let _ = j.run(2, 512, &data, || Err(io::Error::other("power lost")));
        let journal = OpenOptions::new().write(true).open(&j.path).unwrap();
        journal
            .write_all_at(&[0xff; 16], HEADER as u64 + 100)
            .unwrap();
        j.recover(&image, 512, 64).unwrap();
        image.read_exact_at(&mut back, 2 * 512).unwrap();
        assert!(back.iter().all(|&b| b == 0));
        // A record past the end of this image (another geometry) is dropped too.
        let _ = j.run(63, 512, &data, || Err(io::Error::other("power lost")));
        j.recover(&image, 512, 64).unwrap();
        let mut h = [0u8; HEADER];
        std::fs::File::open(&j.path)
            .unwrap()
            .read_exact_at(&mut h, 0)
            .unwrap();
        assert!(h.iter().all(|&b| b == 0));
    }
}
