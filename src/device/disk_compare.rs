//! The read-modify-write commands of an emulated disk, each atomic against every other writer
//! of the logical unit (it holds its LBA range exclusive, [`crate::device::range_lock`]):
//! COMPARE AND WRITE (SBC-3 5.2, VMware's ATS) and ORWRITE(16) (5.8).

use super::provisioning::MAX_COMPARE_AND_WRITE;
use super::{write_error, EmulatedDisk};
use crate::device::{Completion, DataDirection};
use crate::scsi::sbc::{check_range, ReadWriteCdb};
use crate::scsi::sbc_extra::CompareAndWriteCdb;
use crate::scsi::{Asc, Sense, SenseKey};

impl EmulatedDisk {
    /// COMPARE AND WRITE: a data-out that is not exactly twice the blocks is 24/00 at byte 13
    /// (also for NUMBER OF LOGICAL BLOCKS 0, which otherwise does nothing: an initiator that
    /// sends data with it meant a count the byte cannot hold). The blocks are read and compared with the first half of the data-out while the
    /// range is held alone; on the first difference MISCOMPARE DURING VERIFY OPERATION
    /// (0E/1D/00) with INFORMATION = its offset in the data-out, and nothing is written;
    /// else the second half is written (FUA: to the medium before GOOD).
    pub(super) fn compare_and_write(
        &self,
        cdb: &CompareAndWriteCdb,
        data: DataDirection<'_>,
    ) -> Result<Completion, Sense> {
        self.check_writable()?;
        // NUMBER OF LOGICAL BLOCKS is one byte: it cannot exceed MAXIMUM COMPARE AND WRITE
        // LENGTH (255), so no request is refused for its length.
        const _: () = assert!(MAX_COMPARE_AND_WRITE == u8::MAX);
        check_range(cdb.lba, u64::from(cdb.blocks), self.blocks)?;
        let out: &[u8] = match data {
            DataDirection::ToDevice(b) => b,
            _ => &[],
        };
        let half = usize::from(cdb.blocks) * self.block_size as usize;
        if out.len() != 2 * half {
            tracing::debug!(disk = %self.name, got = out.len(), want = 2 * half, "COMPARE AND WRITE: data-out length");
            return Err(Sense::invalid_field_in_cdb(13, None));
        }
        if cdb.blocks == 0 {
            return Ok(Completion::good(0));
        }
        let (verify, write) = out.split_at(half);
        let offset = cdb.lba * u64::from(self.block_size);
        let _alone = self.writes.exclusive(cdb.lba, u64::from(cdb.blocks));
        let mut current = vec![0u8; half];
        self.read_at(&mut current, offset).map_err(|_| {
            Sense::new(SenseKey::MEDIUM_ERROR, Asc::UNRECOVERED_READ_ERROR)
                .with_information(cdb.lba)
        })?;
        if let Some(at) = current.iter().zip(verify).position(|(a, b)| a != b) {
            return Err(Sense::new(
                SenseKey::MISCOMPARE,
                Asc::MISCOMPARE_DURING_VERIFY_OPERATION,
            )
            .with_information(at as u64));
        }
        self.write_at(write, offset)
            .map_err(|e| write_error(&e, cdb.lba))?;
        if cdb.fua {
            self.file
                .sync_data()
                .map_err(|e| write_error(&e, cdb.lba))?;
        }
        Ok(Completion::good(0))
    }

    /// ORWRITE(16): the data-out ORed into the blocks, read and written while the range is
    /// held alone. The transfer rules are WRITE's (only the whole blocks that came; the rest
    /// is overflow).
    pub(super) fn or_write(
        &self,
        cdb: &ReadWriteCdb,
        data: DataDirection<'_>,
    ) -> Result<Completion, Sense> {
        if cdb.blocks > self.max_transfer_blocks {
            return Err(Sense::invalid_field_in_cdb(
                u16::from(cdb.length_offset),
                None,
            ));
        }
        self.check_writable()?;
        check_range(cdb.lba, u64::from(cdb.blocks), self.blocks)?;
        let buf: &[u8] = match data {
            DataDirection::ToDevice(b) => b,
            _ => &[],
        };
        let bs = self.block_size as usize;
        let need = cdb.blocks as usize * bs;
        let got = need.min(buf.len()) / bs * bs;
        if got > 0 {
            let offset = cdb.lba * u64::from(self.block_size);
            let _alone = self.writes.exclusive(cdb.lba, (got / bs) as u64);
            let mut blocks = vec![0u8; got];
            self.read_at(&mut blocks, offset).map_err(|_| {
                Sense::new(SenseKey::MEDIUM_ERROR, Asc::UNRECOVERED_READ_ERROR)
                    .with_information(cdb.lba)
            })?;
            for (b, x) in blocks.iter_mut().zip(buf) {
                *b |= x;
            }
            self.write_at(&blocks, offset)
                .map_err(|e| write_error(&e, cdb.lba))?;
            if cdb.fua {
                self.file
                    .sync_data()
                    .map_err(|e| write_error(&e, cdb.lba))?;
            }
        }
        Ok(Completion::good(buf.len().saturating_sub(need))
            .with_overflow(need.saturating_sub(buf.len())))
    }
}
