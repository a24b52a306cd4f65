//! Thin provisioning of an emulated disk (SBC-3 4.7): UNMAP, WRITE SAME (with UNMAP, NDOB),
//! GET LBA STATUS, and the Block Limits / Block Device Characteristics / Logical Block
//! Provisioning pages that describe them.
//!
//! Deallocating a range punches a hole in an image file (`FALLOC_FL_PUNCH_HOLE`, falling back
//! to writing zeros where the file system cannot) and zeroes a block device (`BLKZEROOUT`,
//! which the kernel turns into an unmap where the device guarantees zeros): a deallocated
//! block always reads as zeros, so LBPRZ is 1. GET LBA STATUS reports an image's holes
//! (`SEEK_HOLE`/`SEEK_DATA`); a block device reports every block mapped.

use std::os::fd::AsFd;

use super::{data_in, write_error, EmulatedDisk};
use crate::device::{Completion, DataDirection};
use crate::scsi::inquiry::BlockLimits;
use crate::scsi::sbc::check_range;
use crate::scsi::sbc_provisioning::{
    lba_status_data, GetLbaStatusCdb, LbaStatus, Provisioned, Provisioning, UnmapCdb, UnmapList,
    WriteSameCdb,
};
use crate::scsi::{Asc, Sense, SenseKey};
use crate::sys::block;

/// MAXIMUM UNMAP LBA COUNT: blocks one UNMAP may deallocate.
pub const MAX_UNMAP_BLOCKS: u32 = 1 << 20;
/// MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT.
pub const MAX_UNMAP_DESCRIPTORS: u32 = 256;
/// MAXIMUM WRITE SAME LENGTH, in blocks.
pub const MAX_WRITE_SAME_BLOCKS: u32 = 1 << 15;
/// MAXIMUM COMPARE AND WRITE LENGTH, in blocks (the byte's largest value).
pub const MAX_COMPARE_AND_WRITE: u8 = 255;
/// Most LBA status descriptors one GET LBA STATUS returns.
const MAX_STATUS_DESCRIPTORS: usize = 64;
/// Bytes written at once by WRITE SAME and by the zeroing fallback.
const FILL_CHUNK: usize = 1 << 20;

impl EmulatedDisk {
    /// What this disk tells of its provisioning (B2h, READ CAPACITY(16)).
    pub fn provisioned(&self) -> Provisioned {
        Provisioned {
            unmap: true,
            write_same_unmap: true,
            reads_zeros: true,
        }
    }

    /// LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT: 0. The unit an image's file system
    /// allocates (4 KiB) is told by the OPTIMAL TRANSFER LENGTH and OPTIMAL UNMAP
    /// granularities instead: a physical block larger than the logical one makes libiscsi
    /// 1.19's GetLBAStatus.UnmapSingle expect a first LBA status descriptor past the LBA
    /// asked for, which SBC-3 5.26.2 does not allow; and one logical block is written as a
    /// unit anyway.
    pub fn physical_exponent(&self) -> u8 {
        0
    }

    pub(super) fn block_limits(&self) -> BlockLimits {
        let per_4k = (4096 / self.block_size).max(1);
        BlockLimits {
            wsnz: false,
            maximum_compare_and_write_length: MAX_COMPARE_AND_WRITE,
            optimal_transfer_length_granularity: u16::try_from(per_4k).unwrap_or(1),
            maximum_transfer_length: self.max_transfer_blocks,
            optimal_transfer_length: ((1 << 20) / self.block_size).min(self.max_transfer_blocks),
            maximum_prefetch_length: 0,
            maximum_unmap_lba_count: MAX_UNMAP_BLOCKS,
            maximum_unmap_block_descriptor_count: MAX_UNMAP_DESCRIPTORS,
            optimal_unmap_granularity: per_4k,
            unmap_granularity_alignment: Some(0),
            maximum_write_same_length: u64::from(MAX_WRITE_SAME_BLOCKS),
            maximum_atomic_transfer_length: self.max_atomic_blocks(),
            ..BlockLimits::default()
        }
    }

    /// Deallocates `blocks` blocks from `lba` (holding the range as a writer).
    pub(super) fn deallocate(&self, lba: u64, blocks: u64) -> Result<(), Sense> {
        if blocks == 0 {
            return Ok(());
        }
        let _held = self.writes.shared(lba, blocks);
        let bs = u64::from(self.block_size);
        let (offset, len) = (lba * bs, blocks * bs);
        let fd = self.file.as_fd();
        let result = if self.is_block {
            block::zero_out(fd, offset, len)
        } else {
            match block::punch_hole(fd, offset, len) {
                Err(e) if e.raw_os_error() == Some(nix::libc::EOPNOTSUPP) => {
                    tracing::debug!(disk = %self.name, "no hole punching here: writing zeros");
                    self.fill(lba, blocks, &vec![0u8; self.block_size as usize])
                        .map_err(|_| std::io::Error::from_raw_os_error(nix::libc::EIO))
                }
                other => other,
            }
        };
        result.map_err(|e| write_error(&e, lba))
    }

    /// Writes `pattern` (one block) to `blocks` blocks from `lba`, a chunk at a time.
    fn fill(&self, lba: u64, blocks: u64, pattern: &[u8]) -> Result<(), Sense> {
        let bs = self.block_size as usize;
        let per_chunk = (FILL_CHUNK / bs).max(1) as u64;
        let chunk: Vec<u8> = pattern
            .iter()
            .copied()
            .cycle()
            .take(bs * per_chunk.min(blocks) as usize)
            .collect();
        let mut done = 0u64;
        while done < blocks {
            let n = (blocks - done).min(per_chunk);
            let at = lba + done;
            self.write_at(&chunk[..n as usize * bs], at * bs as u64)
                .map_err(|e| write_error(&e, at))?;
            done += n;
        }
        Ok(())
    }

    /// WRITE SAME(10)/(16) (SBC-3 5.42-5.43): NUMBER OF LOGICAL BLOCKS 0 is through the last
    /// block (WSNZ 0); more than MAXIMUM WRITE SAME LENGTH is 24/00 on that field; the
    /// data-out is exactly one block (none with NDOB, whose block is zeros); UNMAP
    /// deallocates the range whatever the block holds (it then reads as zeros, LBPRZ);
    /// ANCHOR is 24/00 (no anchored state, ANC_SUP 0).
    pub(super) fn write_same(
        &self,
        cdb: &WriteSameCdb,
        data: DataDirection<'_>,
    ) -> Result<Completion, Sense> {
        self.check_writable()?;
        if cdb.anchor {
            return Err(Sense::invalid_field_in_cdb(1, Some(4)));
        }
        let blocks = if cdb.blocks == 0 {
            self.blocks
                .checked_sub(cdb.lba)
                .ok_or_else(|| Sense::illegal_request(Asc::LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE))?
        } else {
            u64::from(cdb.blocks)
        };
        if blocks > u64::from(MAX_WRITE_SAME_BLOCKS) {
            return Err(Sense::invalid_field_in_cdb(
                u16::from(cdb.length_offset),
                None,
            ));
        }
        check_range(cdb.lba, blocks, self.blocks)?;
        let out: &[u8] = match data {
            DataDirection::ToDevice(b) => b,
            _ => &[],
        };
        let zeros;
        let pattern = if cdb.ndob {
            zeros = vec![0u8; self.block_size as usize];
            &zeros[..]
        } else if out.len() == self.block_size as usize {
            out
        } else {
            tracing::debug!(disk = %self.name, got = out.len(), "WRITE SAME: data-out is not one block");
            return Err(Sense::invalid_field_in_cdb(
                u16::from(cdb.length_offset),
                None,
            ));
        };
        if cdb.unmap {
            self.deallocate(cdb.lba, blocks)?;
        } else {
            let _held = self.writes.shared(cdb.lba, blocks);
            self.fill(cdb.lba, blocks, pattern)?;
        }
        Ok(Completion::good(0))
    }

    /// UNMAP (SBC-3 5.28): every descriptor is checked before any is acted on.
    pub(super) fn unmap(
        &self,
        cdb: &UnmapCdb,
        data: DataDirection<'_>,
    ) -> Result<Completion, Sense> {
        self.check_writable()?;
        if cdb.anchor {
            return Err(Sense::invalid_field_in_cdb(1, Some(0)));
        }
        let out: &[u8] = match data {
            DataDirection::ToDevice(b) => b,
            _ => &[],
        };
        let list = UnmapList::decode(out, cdb.parameter_list_length, MAX_UNMAP_DESCRIPTORS)
            .map_err(Sense::from)?;
        list.check(self.blocks, MAX_UNMAP_BLOCKS)?;
        for r in &list.ranges {
            self.deallocate(r.lba, u64::from(r.blocks))?;
        }
        Ok(Completion::good(
            out.len()
                .saturating_sub(usize::from(cdb.parameter_list_length)),
        ))
    }

    /// GET LBA STATUS (SBC-3 5.26): descriptors from the starting LBA on, as many as the
    /// allocation length holds (at most 64), each a run of mapped or deallocated blocks.
    pub(super) fn get_lba_status(
        &self,
        cdb: &GetLbaStatusCdb,
        data: DataDirection<'_>,
    ) -> Result<Completion, Sense> {
        if cdb.lba >= self.blocks {
            return Err(Sense::illegal_request(
                Asc::LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE,
            ));
        }
        let alloc = usize::try_from(cdb.allocation_length).unwrap_or(usize::MAX);
        let wanted = (alloc.saturating_sub(8) / 16).clamp(1, MAX_STATUS_DESCRIPTORS);
        let runs = self.runs(cdb.lba, wanted).map_err(|_| {
            Sense::new(SenseKey::MEDIUM_ERROR, Asc::UNRECOVERED_READ_ERROR)
                .with_information(cdb.lba)
        })?;
        let out = lba_status_data(&runs);
        Ok(data_in(data, &out, alloc))
    }

    /// Up to `wanted` runs of blocks from `lba`, each mapped or deallocated.
    fn runs(&self, lba: u64, wanted: usize) -> std::io::Result<Vec<LbaStatus>> {
        let bs = u64::from(self.block_size);
        let mut runs = Vec::new();
        let mut at = lba;
        while at < self.blocks && runs.len() < wanted {
            let (status, end) = if self.is_block {
                (Provisioning::Mapped, self.blocks)
            } else {
                let fd = self.file.as_fd();
                match block::next_data(fd, at * bs)? {
                    // Data here: mapped up to the next hole (a block it starts in is mapped).
                    Some(d) if d < (at + 1) * bs => {
                        let hole = block::next_hole(fd, at * bs)?.unwrap_or(self.blocks * bs);
                        (Provisioning::Mapped, hole.div_ceil(bs))
                    }
                    Some(d) => (Provisioning::Deallocated, d / bs),
                    None => (Provisioning::Deallocated, self.blocks),
                }
            };
            let end = end.clamp(at + 1, self.blocks);
            let blocks = u32::try_from(end - at).unwrap_or(u32::MAX);
            runs.push(LbaStatus {
                lba: at,
                blocks,
                status,
            });
            at += u64::from(blocks);
        }
        Ok(runs)
    }
}
