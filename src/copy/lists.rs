//! The parameter lists backups and restores send the copy manager: `xcopy backup` and
//! `xcopy restore`, local and remote alike, and NDMP's image backup. A disk CSCD and a tape
//! CSCD, positioning segments, then segments of whole records. Part of the copy manager's
//! interface to its front ends (docs/architecture.md).

use anyhow::{bail, Context, Result};

use crate::device::inventory::InventoryDevice;
use crate::device::DataDirection;

use crate::scsi::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
use crate::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
use crate::scsi::{ListIdUsage, ParameterList};

/// The disk end of a backup or restore: how its CSCD names it and the range copied.
pub struct DiskEnd {
    pub identifier: CscdIdentifier,
    pub lba: u64,
    pub blocks: u64,
    pub block_length: u32,
}

impl DiskEnd {
    pub fn bytes(&self) -> u64 {
        self.blocks * u64::from(self.block_length)
    }
}

/// The list `xcopy backup` runs, for a front end that has already checked who may use the
/// devices (NDMP's local image backup): LBAs `lba..lba + blocks` of `disk` to `tape` where it
/// is positioned, in records of `transfer_length` bytes, with no filemark.
pub fn image_backup_list(
    disk: &InventoryDevice,
    lba: u64,
    blocks: u64,
    tape: &InventoryDevice,
    transfer_length: u64,
) -> Result<ParameterList> {
    let backend = disk
        .device
        .block_backend()
        .context("the disk has no block backend")?;
    let disk_end = DiskEnd {
        identifier: identification(disk)?,
        lba,
        blocks,
        block_length: backend.block_size,
    };
    backup_list(
        &disk_end,
        &tape_end(tape)?,
        transfer_length,
        false,
        Vec::new(),
    )
}

/// The tape end of `tape`, in the mode the drive is in (MODE SENSE's block descriptor).
pub fn tape_end(tape: &InventoryDevice) -> Result<TapeEnd> {
    let mut mode = [0u8; 12];
    let c = tape.device.execute(
        &crate::copy::op::Op::ModeSense6 {
            allocation_length: 12,
        }
        .cdb(),
        DataDirection::FromDevice(&mut mode),
    )?;
    let block_length = if c.is_good() && mode[3] >= 8 {
        u32::from_be_bytes([0, mode[9], mode[10], mode[11]])
    } else {
        0
    };
    Ok(TapeEnd {
        identifier: identification(tape)?,
        fixed: block_length != 0,
        block_length,
    })
}

/// How an identification CSCD (E4h) names `d`: its strongest designator that fits.
pub fn identification(d: &InventoryDevice) -> Result<CscdIdentifier> {
    let designator = d
        .designators
        .iter()
        .filter(|x| x.value.len() <= 20 && x.designator_type <= 3)
        .max_by_key(|x| x.designator_type)
        .with_context(|| {
            format!(
                "device {:?} has no designator an E4h CSCD can carry",
                d.config.name
            )
        })?;
    Ok(CscdIdentifier::Identification {
        designator: designator.clone(),
    })
}

/// The tape end: how its CSCD names it and the mode the drive is in.
pub struct TapeEnd {
    pub identifier: CscdIdentifier,
    pub fixed: bool,
    pub block_length: u32,
}

/// The backup list (local and remote alike): the disk and tape CSCDs, the positioning
/// segments (tape_position), 00h segments of whole records, then an optional filemark.
pub fn backup_list(
    disk: &DiskEnd,
    tape: &TapeEnd,
    transfer_length: u64,
    filemark: bool,
    positioning: Vec<SegmentDescriptor>,
) -> Result<ParameterList> {
    let cscds = cscds(disk, tape, transfer_length)?;
    let mut segments = positioning;
    for (lba, blocks, stl) in records(
        disk.lba,
        disk.blocks,
        disk.block_length,
        transfer_length,
        (tape.fixed, tape.block_length),
    )? {
        segments.push(SegmentDescriptor {
            cat: false,
            body: Segment::BlockToStream {
                hold: false,
                source: CscdId(0),
                destination: CscdId(1),
                stream_transfer_length: stl,
                blocks,
                lba,
            },
        });
    }
    if filemark {
        segments.push(SegmentDescriptor {
            cat: false,
            body: Segment::WriteFilemarks {
                destination: CscdId(1),
                immed: false,
                count: 1,
            },
        });
    }
    Ok(build(cscds, segments))
}

/// The restore list (local and remote alike): the disk and tape CSCDs, the positioning
/// segments, then 01h segments of whole records.
pub fn restore_list(
    disk: &DiskEnd,
    tape: &TapeEnd,
    transfer_length: u64,
    positioning: Vec<SegmentDescriptor>,
) -> Result<ParameterList> {
    let cscds = cscds(disk, tape, transfer_length)?;
    let mut segments = positioning;
    for (lba, blocks, stl) in records(
        disk.lba,
        disk.blocks,
        disk.block_length,
        transfer_length,
        (tape.fixed, tape.block_length),
    )? {
        segments.push(SegmentDescriptor {
            cat: false,
            body: Segment::StreamToBlock {
                hold: false,
                source: CscdId(1),
                destination: CscdId(0),
                stream_transfer_length: stl,
                blocks,
                lba,
            },
        });
    }
    Ok(build(cscds, segments))
}

/// CSCD 0 the disk, CSCD 1 the tape.
pub fn cscds(disk: &DiskEnd, tape: &TapeEnd, transfer_length: u64) -> Result<Vec<CscdDescriptor>> {
    if tape.fixed && !transfer_length.is_multiple_of(u64::from(tape.block_length)) {
        bail!(
            "--transfer-length {transfer_length} is not a multiple of the tape's block length {}",
            tape.block_length
        );
    }
    Ok(vec![
        CscdDescriptor {
            nul: false,
            peripheral_device_type: 0,
            relative_initiator_port: 0,
            identifier: disk.identifier.clone(),
            parameters: DeviceParameters::Block {
                pad: false,
                block_length: disk.block_length,
            },
        },
        CscdDescriptor {
            nul: false,
            peripheral_device_type: 1,
            relative_initiator_port: 0,
            identifier: tape.identifier.clone(),
            parameters: DeviceParameters::Stream {
                pad: false,
                fixed: tape.fixed,
                block_length: tape.block_length,
            },
        },
    ])
}

pub fn build(cscds: Vec<CscdDescriptor>, segments: Vec<SegmentDescriptor>) -> ParameterList {
    ParameterList {
        list_identifier: 0,
        sequential_striped: false,
        list_id_usage: ListIdUsage::NoListId,
        priority: 1,
        cscds,
        segments,
        inline_data: Vec::new(),
    }
}

/// Splits `blocks` blocks from `lba` into segments of whole records of `transfer_length`
/// bytes, each at most 65535 blocks, and a last segment whose single record takes the
/// remainder: no record is padded and no leftover data is carried. A record of more than
/// 65535 disk blocks is refused: no segment could read it.
pub fn records(
    lba: u64,
    blocks: u64,
    block_length: u32,
    transfer_length: u64,
    (fixed, tape_block): (bool, u32),
) -> Result<Vec<(u64, u16, u32)>> {
    let bl = u64::from(block_length);
    if transfer_length == 0 || !transfer_length.is_multiple_of(bl) {
        bail!("--transfer-length {transfer_length} must be a nonzero multiple of the disk block length {block_length}");
    }
    if transfer_length > 0x00ff_ffff && !fixed {
        bail!("--transfer-length {transfer_length} is more than a variable-mode record can hold (16 MiB - 1)");
    }
    let stl = |bytes: u64| -> Result<u32> {
        if fixed {
            if !bytes.is_multiple_of(u64::from(tape_block)) {
                bail!("the last {bytes} bytes are not a whole number of the tape's {tape_block}-byte blocks");
            }
            Ok((bytes / u64::from(tape_block)) as u32)
        } else {
            Ok(bytes as u32)
        }
    };
    let per_record = transfer_length / bl;
    if per_record > 65535 {
        bail!("--transfer-length {transfer_length} is {per_record} disk blocks: more than one segment reads (65535)");
    }
    let records_per_segment = (65535 / per_record).max(1);
    let mut out = Vec::new();
    let (mut at, mut left) = (lba, blocks);
    while left >= per_record {
        let n = (left / per_record).min(records_per_segment) * per_record;
        out.push((at, n as u16, stl(transfer_length)?));
        at += n;
        left -= n;
    }
    if left > 0 {
        out.push((at, left as u16, stl(left * bl)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::inventory::{Inventory, InventoryConfig};
    use crate::scsi::Designator;
    use std::sync::Arc;

    /// A drive that answers MODE SENSE GOOD with no block descriptor, page 0's bytes after
    /// the header.
    #[derive(Debug)]
    struct NoDescriptor;

    impl crate::device::ScsiDevice for NoDescriptor {
        fn execute(
            &self,
            _cdb: &[u8],
            data: DataDirection<'_>,
        ) -> Result<crate::device::Completion, crate::device::DeviceError> {
            let reply = [11, 0, 0, 0, 0x00, 0x06, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];
            let mut residual = 0;
            if let DataDirection::FromDevice(buf) = data {
                let n = reply.len().min(buf.len());
                buf[..n].copy_from_slice(&reply[..n]);
                residual = buf.len() - n;
            }
            Ok(crate::device::Completion::good(residual))
        }

        fn name(&self) -> &str {
            "no-descriptor"
        }
    }

    fn designator(designator_type: u8, len: usize) -> Designator {
        Designator {
            protocol_identifier: 0,
            code_set: 1,
            piv: false,
            association: 0,
            designator_type,
            value: vec![designator_type; len],
        }
    }

    #[test]
    fn a_disk_end_is_its_blocks_times_their_length() {
        let end = DiskEnd {
            identifier: CscdIdentifier::Identification {
                designator: designator(3, 8),
            },
            lba: 7,
            blocks: 3,
            block_length: 4096,
        };
        assert_eq!(end.bytes(), 12288);
    }

    #[test]
    fn a_tape_end_reads_the_drive_s_mode_and_the_strongest_designator_that_fits() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[[device]]\nname = \"tape0\"\nkind = \"tape\"\npath = \"t.tap\"\n\
                    designator = \"naa.5001405a1b2c3d02\"\n";
        let config = InventoryConfig::parse(text, dir.path()).unwrap();
        let inventory = Inventory::open(&config).unwrap();
        let tape = inventory.by_name("tape0").unwrap();
        let end = tape_end(tape).unwrap();
        assert_eq!((end.fixed, end.block_length), (false, 0), "variable mode");
        // MODE SELECT(6): a block descriptor of 512-byte blocks puts the drive in fixed mode.
        let mut select = [0u8; 12];
        select[3] = 8;
        select[9..12].copy_from_slice(&[0, 2, 0]);
        let c = tape
            .device
            .execute(&[0x15, 0x10, 0, 0, 12, 0], DataDirection::ToDevice(&select))
            .unwrap();
        assert!(c.is_good());
        let end = tape_end(tape).unwrap();
        assert_eq!((end.fixed, end.block_length), (true, 512), "fixed mode");
        // A list for a fixed-mode tape takes whole tape blocks per record only.
        let disk = DiskEnd {
            identifier: end.identifier.clone(),
            lba: 0,
            blocks: 8,
            block_length: 512,
        };
        let two = cscds(&disk, &end, 4096).unwrap();
        assert_eq!(
            two[1].parameters,
            DeviceParameters::Stream {
                pad: false,
                fixed: true,
                block_length: 512
            }
        );
        let e = cscds(&disk, &end, 4000).unwrap_err().to_string();
        assert!(
            e.contains("not a multiple of the tape's block length 512"),
            "{e}"
        );
        let naa = tape.designators[0].clone();
        assert_eq!(naa.designator_type, 3);
        assert_eq!(
            end.identifier,
            CscdIdentifier::Identification {
                designator: naa.clone()
            }
        );
        // Of several, the highest type of at most 3 (E4h: T10, EUI-64, NAA) whose value fits
        // in 20 bytes: not a short SCSI name string (8), not an NAA too long for the CSCD.
        let with = |designators| InventoryDevice {
            config: tape.config.clone(),
            device: Arc::clone(&tape.device),
            designators,
        };
        let several = with(vec![designator(8, 16), designator(3, 21), designator(2, 8)]);
        assert_eq!(
            identification(&several).unwrap(),
            CscdIdentifier::Identification {
                designator: designator(2, 8)
            }
        );
        assert!(identification(&with(vec![designator(8, 16), designator(3, 21)])).is_err());
        // A drive answering GOOD without a block descriptor: what follows the header is
        // page 0's, not a block length.
        let bare = InventoryDevice {
            config: tape.config.clone(),
            device: Arc::new(NoDescriptor),
            designators: tape.designators.clone(),
        };
        let end = tape_end(&bare).unwrap();
        assert_eq!((end.fixed, end.block_length), (false, 0));
    }

    #[test]
    fn records_split_without_padding() {
        // 2050 blocks of 512 in 64 KiB records: 16 records (2048 blocks) + one of 1 KiB.
        let r = records(10, 2050, 512, 65536, (false, 0)).unwrap();
        assert_eq!(r, vec![(10, 2048, 65536), (2058, 2, 1024)]);
        // Segments hold at most 65535 blocks, in whole records.
        let r = records(0, 200_000, 512, 65536, (false, 0)).unwrap();
        assert!(r.iter().all(|&(_, b, _)| b % 128 == 0 || b < 128));
        assert_eq!(
            r.iter().map(|&(_, b, _)| u64::from(b)).sum::<u64>(),
            200_000
        );
        // Fixed mode: the transfer length counts tape blocks.
        let r = records(0, 16, 512, 4096, (true, 512)).unwrap();
        assert_eq!(r, vec![(0, 16, 8)]);
        assert!(records(0, 16, 512, 1000, (false, 0)).is_err());
        // A variable-mode record holds at most 16 MiB - 1 (a 24-bit TRANSFER LENGTH); a
        // fixed-mode one counts blocks, and may be longer. (4095 x 4097 = 2^24 - 1.)
        assert_eq!(
            records(0, 4097, 4095, 0x00ff_ffff, (false, 0)).unwrap(),
            vec![(0, 4097, 0x00ff_ffff)]
        );
        // A record is read by one segment, whose NUMBER OF BLOCKS is 16 bits.
        assert_eq!(
            records(0, 131070, 512, 65535 * 512, (true, 512)).unwrap(),
            vec![(0, 65535, 65535), (65535, 65535, 65535)]
        );
        let e = records(0, 262144, 512, 64 << 20, (true, 512)).unwrap_err();
        assert!(e.to_string().contains("131072 disk blocks"), "{e}");
        let e = records(0, 32768, 512, 16 << 20, (false, 0)).unwrap_err();
        assert!(
            e.to_string().contains("more than a variable-mode record"),
            "{e}"
        );
        assert_eq!(
            records(0, 32768, 512, 16 << 20, (true, 512)).unwrap(),
            vec![(0, 32768, 32768)]
        );
    }
}
