//! COPY ABORTED as SPC-4 5.17.7.3/5.17.7.4 (Part B 4) has it, for failures in the first, a
//! middle and the last segment of a list: SEGMENT NUMBER (bytes 10-11) names the failing
//! segment, INFORMATION (bytes 3-6, VALID set) is the residue in the destination's units
//! (logical blocks for a disk and a fixed-block tape, bytes for a variable-block tape), the
//! segment pointer names the failing CSCD descriptor, and a device that stops answering
//! mid-copy gives 0D/02 COPY TARGET DEVICE NOT REACHABLE.
//!
//! The residue is checked against what reached the medium: the blocks from the segment's
//! first one that hold the source's bytes (the unbroken run the standard counts), so the
//! test does not depend on how the engine cuts its writes.

use crate::common::list::decoded_xcopy;
use std::path::Path;
use std::sync::Arc;

use xcopyd::command::{Abort, Nexus};
use xcopyd::copy::manager::CopyManager;
use xcopyd::copy::CopyService;
use xcopyd::device::disk::{DiskOptions, EmulatedDisk};
use xcopyd::device::faults::{Failure, Fault, FaultyDevice, Silence, TapeOp};
use xcopyd::device::inventory::{DeviceConfig, DeviceKind, Inventory};
use xcopyd::device::tape::{EmulatedTape, TapeConfig};
use xcopyd::device::ScsiDevice;
use xcopyd::scsi::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
use xcopyd::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
use xcopyd::scsi::{Asc, Designator, Limits, ListIdUsage, ParameterList, Sense, SenseKey};

const BL: usize = 512;
/// 16 MiB disks.
const BLOCKS: usize = 32 * 1024;
/// One 3 MiB segment of 02h: several WRITEs whatever the engine's chunking.
const SEG_BLOCKS: usize = 6144;
const NAMES: [&str; 4] = [
    "naa.5001405a1b2c3d01",
    "naa.5001405a1b2c3d03",
    "naa.5001405a1b2c3d05",
    "naa.5001405a1b2c3d02",
];

/// CSCD 0 = d0 (source disk), 1 = d1 (destination disk, fault rules), 2 = d2 (a plain
/// destination disk), 3 = the tape (fault rules).
struct Rig {
    dir: tempfile::TempDir,
    manager: CopyManager,
    source: Vec<u8>,
}

fn pattern() -> Vec<u8> {
    (0..BLOCKS * BL)
        .map(|i| (i * 11 + i / BL * 3) as u8)
        .collect()
}

/// `d1` and `tape` get the fault rules; the tape is in fixed mode with `fixed` bytes per
/// block when given.
fn rig(d1: &[Fault], tape: &[Fault], fixed: Option<u32>) -> Rig {
    rig_with_tape(d1, tape, fixed, &[])
}

/// [`rig`] with the tape image's bytes given.
fn rig_with_tape(d1: &[Fault], tape: &[Fault], fixed: Option<u32>, image: &[u8]) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let source = pattern();
    std::fs::write(dir.path().join("d0.img"), &source).unwrap();
    let mut devices: Vec<(DeviceConfig, Arc<dyn ScsiDevice>)> = Vec::new();
    let wrap = |device: Arc<dyn ScsiDevice>, faults: &[Fault]| -> Arc<dyn ScsiDevice> {
        if faults.is_empty() {
            return device;
        }
        let f = FaultyDevice::new(device);
        for fault in faults {
            f.add(fault.clone());
        }
        Arc::new(f)
    };
    for (i, name) in ["d0", "d1", "d2"].into_iter().enumerate() {
        let path = dir.path().join(format!("{name}.img"));
        if i > 0 {
            std::fs::write(&path, vec![0u8; BLOCKS * BL]).unwrap();
        }
        let disk = Arc::new(EmulatedDisk::open(name, &DiskOptions::new(&path, BL as u32)).unwrap());
        let device = wrap(disk, if i == 1 { d1 } else { &[] });
        devices.push((config(name, DeviceKind::Disk, &path, NAMES[i]), device));
    }
    let path = dir.path().join("t.tap");
    std::fs::write(&path, image).unwrap();
    let t = TapeConfig {
        block_size: fixed.unwrap_or(0),
        designators: vec![Designator::parse_name(NAMES[3]).unwrap()],
        ..TapeConfig::default()
    };
    let device = wrap(Arc::new(EmulatedTape::open("t", &path, t).unwrap().0), tape);
    devices.push((config("t", DeviceKind::Tape, &path, NAMES[3]), device));
    let manager = CopyManager::new(
        Arc::new(Inventory::from_devices(devices).unwrap()),
        Limits::default(),
    );
    Rig {
        dir,
        manager,
        source,
    }
}

fn config(name: &str, kind: DeviceKind, path: &Path, designator: &str) -> DeviceConfig {
    let mut c = DeviceConfig::new(name, kind, path);
    c.designators = vec![Designator::parse_name(designator).unwrap()];
    c
}

fn cscds(fixed: Option<u32>) -> Vec<CscdDescriptor> {
    let block = DeviceParameters::Block {
        pad: false,
        block_length: BL as u32,
    };
    let stream = DeviceParameters::Stream {
        pad: false,
        fixed: fixed.is_some(),
        block_length: fixed.unwrap_or(0),
    };
    (0..4)
        .map(|i| CscdDescriptor {
            nul: false,
            peripheral_device_type: u8::from(i == 3),
            relative_initiator_port: 0,
            identifier: CscdIdentifier::Identification {
                designator: Designator::parse_name(NAMES[i]).unwrap(),
            },
            parameters: if i == 3 { stream } else { block },
        })
        .collect()
}

/// 02h from d0 to CSCD `to`, segment `k`'s own region on both disks.
fn b2b(k: usize, to: u16) -> Segment {
    Segment::BlockToBlock {
        hold: false,
        dc: false,
        source: CscdId(0),
        destination: CscdId(to),
        blocks: SEG_BLOCKS as u16,
        source_lba: (k * SEG_BLOCKS) as u64,
        destination_lba: (k * SEG_BLOCKS) as u64,
    }
}

/// The fixed-format COPY ABORTED fields, read from the bytes.
#[derive(Debug, PartialEq, Eq)]
struct Aborted {
    asc: (u8, u8),
    segment: u16,
    /// INFORMATION when VALID is set.
    residue: Option<u32>,
    /// SKSV, SD and the field pointer.
    pointer: Option<(bool, u16)>,
}

/// 00h: 8 blocks of d0 from `lba` to the tape in 1024-byte records.
fn to_tape(lba: u64) -> Segment {
    Segment::BlockToStream {
        hold: false,
        source: CscdId(0),
        destination: CscdId(3),
        stream_transfer_length: 1024,
        blocks: 8,
        lba,
    }
}

fn run(rig: &Rig, segments: Vec<Segment>, fixed: Option<u32>) -> (Aborted, Sense) {
    let (aborted, _, sense) = run_raw(rig, segments, fixed);
    (aborted, sense)
}

/// [`run`], with the sense bytes as sent.
fn run_raw(rig: &Rig, segments: Vec<Segment>, fixed: Option<u32>) -> (Aborted, Vec<u8>, Sense) {
    let list = ParameterList {
        list_identifier: 9,
        sequential_striped: false,
        list_id_usage: ListIdUsage::Hold,
        priority: 1,
        cscds: cscds(fixed),
        segments: segments
            .into_iter()
            .map(|body| SegmentDescriptor { cat: false, body })
            .collect(),
        inline_data: Vec::new(),
    };
    let bytes = list.encode();
    let mut cdb = [0u8; 16];
    cdb[0] = 0x83;
    cdb[10..14].copy_from_slice(&(bytes.len() as u32).to_be_bytes());
    let r = rig.manager.extended_copy(
        &Nexus::local(),
        None,
        &decoded_xcopy(&cdb),
        &bytes,
        &Abort::new(),
    );
    let s = r.sense;
    assert_eq!(r.status.0, 0x02, "CHECK CONDITION");
    assert_eq!(
        (s[0] & 0x7f, s[2] & 0x0f),
        (0x70, 0x0a),
        "fixed, COPY ABORTED: {s:02x?}"
    );
    let aborted = Aborted {
        asc: (s[12], s[13]),
        segment: u16::from_be_bytes([s[10], s[11]]),
        residue: (s[0] & 0x80 != 0).then(|| u32::from_be_bytes([s[3], s[4], s[5], s[6]])),
        pointer: (s[15] & 0x80 != 0)
            .then(|| (s[15] & 0x20 != 0, u16::from_be_bytes([s[16], s[17]]))),
    };
    let decoded = Sense::decode(&s).unwrap();
    (aborted, s, decoded)
}

fn disk(rig: &Rig, name: &str) -> Vec<u8> {
    std::fs::read(rig.dir.path().join(name)).unwrap()
}

/// Blocks from `lba` on that hold the source's blocks from `lba` on (the unbroken run the
/// residue counts), and that nothing past the run was written.
fn written_run(rig: &Rig, name: &str, lba: usize, blocks: usize) -> usize {
    let d = disk(rig, name);
    let block = |b: usize| &d[b * BL..(b + 1) * BL];
    let run = (lba..lba + blocks)
        .take_while(|&b| block(b) == &rig.source[b * BL..(b + 1) * BL])
        .count();
    assert!(
        (lba + run..lba + blocks).all(|b| block(b).iter().all(|&x| x == 0)),
        "nothing written after the first failed WRITE"
    );
    run
}

/// Where CSCD descriptor `i` starts in the list: the 16-byte header, 32 bytes each.
fn cscd_offset(i: u16) -> u16 {
    16 + 32 * i
}

/// A WRITE error on the destination disk in segment k of three: 0D/01 for segment k, the
/// residue in blocks, the pointer at the disk's CSCD descriptor, the disk's sense forwarded,
/// and the earlier segments whole on the disk.
#[test]
fn disk_write_error_in_the_first_a_middle_and_the_last_segment() {
    for k in 0..3 {
        // A bad block in the second MiB of segment k.
        let bad = (k * SEG_BLOCKS + 2048 + 77) as u64;
        let medium = Sense::new(SenseKey::MEDIUM_ERROR, Asc::WRITE_ERROR);
        let r = rig(
            &[Fault::LbaRange {
                first: bad,
                count: 1,
                failure: Failure::check_condition(medium),
            }],
            &[],
            None,
        );
        let (aborted, sense) = run(&r, (0..3).map(|i| b2b(i, 1)).collect(), None);
        let written = written_run(&r, "d1.img", k * SEG_BLOCKS, SEG_BLOCKS);
        assert!(
            written > 0 && written <= 2048 + 77,
            "segment {k}: {written}"
        );
        assert_eq!(
            aborted,
            Aborted {
                asc: (0x0d, 0x01),
                segment: k as u16,
                residue: Some((SEG_BLOCKS - written) as u32),
                pointer: Some((false, cscd_offset(1))),
            },
            "segment {k}"
        );
        let forwarded = Sense::decode(&sense.forwarded[0].sense).unwrap();
        assert_eq!(
            (forwarded.key, forwarded.asc),
            (SenseKey::MEDIUM_ERROR, Asc::WRITE_ERROR)
        );
        for done in 0..k {
            assert_eq!(
                written_run(&r, "d1.img", done * SEG_BLOCKS, SEG_BLOCKS),
                SEG_BLOCKS
            );
        }
    }
}

/// A fixed-block tape destination counts the residue in its blocks: four WRITEs of 4 x 512
/// bytes per segment, the third of segment k fails: 8 blocks short (not 4096 bytes).
#[test]
fn fixed_tape_write_error_counts_the_residue_in_blocks() {
    for k in 0..3u64 {
        let medium = Sense::new(SenseKey::MEDIUM_ERROR, Asc::WRITE_ERROR);
        let r = rig(
            &[],
            &[Fault::TapeCommand {
                op: TapeOp::Write,
                n: 4 * k + 3,
                failure: Failure::check_condition(medium),
            }],
            Some(512),
        );
        let segments = (0..3u64)
            .map(|i| Segment::BlockToStream {
                hold: false,
                source: CscdId(0),
                destination: CscdId(3),
                stream_transfer_length: 4,
                blocks: 16,
                lba: i * 16,
            })
            .collect();
        let (aborted, _) = run(&r, segments, Some(512));
        assert_eq!(
            aborted,
            Aborted {
                asc: (0x0d, 0x01),
                segment: k as u16,
                residue: Some(8),
                pointer: Some((false, cscd_offset(3))),
            },
            "segment {k}"
        );
    }
}

/// A variable-block tape destination counts bytes: 2 of 4 records of 1000 bytes written.
#[test]
fn variable_tape_write_error_in_the_last_segment_counts_bytes() {
    let medium = Sense::new(SenseKey::MEDIUM_ERROR, Asc::WRITE_ERROR);
    let r = rig(
        &[],
        &[Fault::TapeCommand {
            op: TapeOp::Write,
            n: 4 + 3,
            failure: Failure::check_condition(medium),
        }],
        None,
    );
    // 02h to d2 first (no tape WRITE), then two 00h segments of 8 blocks in 1024-byte
    // records: the failing WRITE is the third of segment 2.
    let segments = vec![b2b(0, 2), to_tape(0), to_tape(8)];
    let (aborted, _) = run(&r, segments, None);
    assert_eq!(
        aborted,
        Aborted {
            asc: (0x0d, 0x01),
            segment: 2,
            residue: Some(2 * 1024),
            pointer: Some((false, cscd_offset(3))),
        }
    );
}

/// A tape that cannot settle what the list wrote (as a cartridge whose object store will
/// not take it) turns the list into COPY ABORTED 0D/01 at its last segment, everything
/// written, the drive's sense forwarded after byte 17 for the destination (02h).
#[test]
fn a_destination_that_cannot_settle_aborts_the_list_at_its_last_segment() {
    let refused = Sense::new(SenseKey::MEDIUM_ERROR, Asc::WRITE_ERROR);
    let r = rig(
        &[],
        &[Fault::Settle {
            failure: Failure::check_condition(refused.clone()),
        }],
        None,
    );
    let segments = vec![b2b(0, 2), to_tape(0)];
    let (aborted, bytes, _) = run_raw(&r, segments, None);
    assert_eq!((aborted.asc, aborted.segment), ((0x0d, 0x01), 1));
    let forwarded = refused.encode();
    assert_eq!(bytes.len(), 19 + forwarded.len(), "{bytes:02x?}");
    assert_eq!(bytes[18], 0x02, "the destination's sense");
    assert_eq!(bytes[19..], forwarded[..]);
}

/// A tape that takes a WRITE with GOOD status but a residual (it kept less than it was
/// sent): COPY ABORTED 0D/04 COPY TARGET DEVICE DATA UNDERRUN at that segment, the pointer
/// at the tape's descriptor, not a device failure with GOOD "forwarded".
#[test]
fn a_tape_write_that_ends_good_with_a_residual_is_a_data_underrun() {
    let r = rig(
        &[],
        &[Fault::ShortTransfer {
            n: 3,
            opcode: Some(0x0a),
            residual: 100,
        }],
        None,
    );
    let segments = vec![to_tape(0)];
    let (aborted, bytes, _) = run_raw(&r, segments, None);
    assert_eq!(
        (aborted.asc, aborted.segment, aborted.pointer),
        ((0x0d, 0x04), 0, Some((false, cscd_offset(3))))
    );
    assert_eq!(bytes.len(), 18, "nothing forwarded: {bytes:02x?}");
}

/// A failure before the segment wrote anything: INFORMATION not valid (VALID = 0).
#[test]
fn nothing_written_no_residue() {
    let medium = Sense::new(SenseKey::MEDIUM_ERROR, Asc::WRITE_ERROR);
    let r = rig(
        &[Fault::LbaRange {
            first: SEG_BLOCKS as u64,
            count: 1,
            failure: Failure::check_condition(medium),
        }],
        &[],
        None,
    );
    let (aborted, _) = run(&r, (0..3).map(|i| b2b(i, 1)).collect(), None);
    assert_eq!(
        aborted,
        Aborted {
            asc: (0x0d, 0x01),
            segment: 1,
            residue: None,
            pointer: Some((false, cscd_offset(1))),
        }
    );
    assert_eq!(written_run(&r, "d1.img", 0, SEG_BLOCKS), SEG_BLOCKS);
}

/// The destination disk stops answering in the middle of segment 1 (after its first WRITE):
/// 0D/02 for segment 1, the pointer at its descriptor, the residue in blocks; segment 0 (to
/// another disk) is whole. Both ways of not answering.
#[test]
fn a_destination_that_stops_answering_mid_copy_is_not_reachable() {
    for silence in [Silence::NotResponding, Silence::Timeout(30_000)] {
        // d1 sees INQUIRY, READ CAPACITY(16), then WRITEs: it answers the first WRITE only.
        let r = rig(&[Fault::StopAnswering { from: 4, silence }], &[], None);
        let (aborted, sense) = run(&r, vec![b2b(0, 2), b2b(1, 1), b2b(2, 2)], None);
        let written = written_run(&r, "d1.img", SEG_BLOCKS, SEG_BLOCKS);
        assert!(
            written > 0 && written < SEG_BLOCKS,
            "{silence:?}: {written}"
        );
        assert_eq!(
            aborted,
            Aborted {
                asc: (0x0d, 0x02),
                segment: 1,
                residue: Some((SEG_BLOCKS - written) as u32),
                pointer: Some((false, cscd_offset(1))),
            },
            "{silence:?}"
        );
        assert!(sense.forwarded.is_empty(), "no status from a silent device");
        assert_eq!(written_run(&r, "d2.img", 0, SEG_BLOCKS), SEG_BLOCKS);
        assert_eq!(written_run(&r, "d2.img", 2 * SEG_BLOCKS, SEG_BLOCKS), 0);
    }
}

/// A tape source that stops answering mid-restore: 0D/02 naming the tape's descriptor, the
/// residue in the destination disk's blocks.
#[test]
fn a_source_tape_that_stops_answering_mid_restore_is_not_reachable() {
    // 8 records of 1024 bytes: the source's first 16 blocks, as SIMH .tap.
    let mut image = Vec::new();
    for record in pattern()[..16 * BL].chunks(1024) {
        image.extend_from_slice(&1024u32.to_le_bytes());
        image.extend_from_slice(record);
        image.extend_from_slice(&1024u32.to_le_bytes());
    }
    // INQUIRY, then READ(6)s: three records answered.
    let silent = Fault::StopAnswering {
        from: 5,
        silence: Silence::NotResponding,
    };
    let r = rig_with_tape(&[], &[silent], None, &image);
    let restore = Segment::StreamToBlock {
        hold: false,
        source: CscdId(3),
        destination: CscdId(1),
        stream_transfer_length: 1024,
        blocks: 16,
        lba: 0,
    };
    let (aborted, _) = run(&r, vec![b2b(0, 2), restore], None);
    assert_eq!(
        written_run(&r, "d1.img", 0, 16),
        6,
        "three records of two blocks"
    );
    assert_eq!(
        aborted,
        Aborted {
            asc: (0x0d, 0x02),
            segment: 1,
            residue: Some(10),
            pointer: Some((false, cscd_offset(3))),
        }
    );
}

/// A segment served entirely from carried leftover source data (SPC-4 5.17.7.2: leftover
/// source data is processed first) whose destination WRITE fails part way: the residue
/// counts the blocks the WRITEs before it put on the disk.
#[test]
fn a_write_error_while_writing_carried_source_data() {
    const RECORD: usize = 2 << 20;
    let mut image = Vec::new();
    image.extend_from_slice(&(RECORD as u32).to_le_bytes());
    image.extend_from_slice(&pattern()[..RECORD]);
    image.extend_from_slice(&(RECORD as u32).to_le_bytes());
    let medium = Sense::new(SenseKey::MEDIUM_ERROR, Asc::WRITE_ERROR);
    let bad = Fault::LbaRange {
        first: 1 + 3000,
        count: 1,
        failure: Failure::check_condition(medium),
    };
    let r = rig_with_tape(&[bad], &[], None, &image);
    let restore = |lba: u64, blocks: u16| Segment::StreamToBlock {
        hold: false,
        source: CscdId(3),
        destination: CscdId(1),
        stream_transfer_length: RECORD as u32,
        blocks,
        lba,
    };
    // Segment 0 reads the one 2 MiB record and writes its first block, keeping the rest
    // (CAT=1); segment 1 writes 4095 blocks from that rest alone, no read.
    let list = ParameterList {
        list_identifier: 9,
        sequential_striped: false,
        list_id_usage: ListIdUsage::Hold,
        priority: 1,
        cscds: cscds(None),
        segments: vec![
            SegmentDescriptor {
                cat: true,
                body: restore(0, 1),
            },
            SegmentDescriptor {
                cat: false,
                body: restore(1, 4095),
            },
        ],
        inline_data: Vec::new(),
    };
    let bytes = list.encode();
    let mut cdb = [0u8; 16];
    cdb[0] = 0x83;
    cdb[10..14].copy_from_slice(&(bytes.len() as u32).to_be_bytes());
    let res = r.manager.extended_copy(
        &Nexus::local(),
        None,
        &decoded_xcopy(&cdb),
        &bytes,
        &Abort::new(),
    );
    let s = res.sense;
    assert_eq!((s[2] & 0x0f, s[12], s[13]), (0x0a, 0x0d, 0x01), "{s:02x?}");
    assert_eq!(u16::from_be_bytes([s[10], s[11]]), 1, "segment 1");
    let written = written_run(&r, "d1.img", 1, 4095);
    assert!(written > 0 && written < 3000, "{written}");
    assert_eq!(s[0] & 0x80, 0x80, "INFORMATION valid");
    assert_eq!(
        u32::from_be_bytes([s[3], s[4], s[5], s[6]]),
        (4095 - written) as u32,
        "residue in blocks"
    );
}

/// 08h moves its byte range through memory in pieces of at most 1 MiB; a WRITE that fails in
/// a later piece still reports the residue of the whole segment (SPC-4 5.17.7.4, Part B 4:
/// what the segment would have written minus what it wrote), not of the pieces so far.
/// 1,500,000 bytes in 1000-byte records to the variable-block tape: 1500 records, the
/// 1200th WRITE fails (after the first 1 MiB piece), 1199 records written.
#[test]
fn a_write_error_in_a_later_piece_of_a_byte_range_counts_the_whole_segment() {
    let medium = Sense::new(SenseKey::MEDIUM_ERROR, Asc::WRITE_ERROR);
    let r = rig(
        &[],
        &[Fault::TapeCommand {
            op: TapeOp::Write,
            n: 1200,
            failure: Failure::check_condition(medium),
        }],
        None,
    );
    let segments = vec![Segment::BlockOffsetToStream {
        source: CscdId(0),
        destination: CscdId(3),
        stream_transfer_length: 1000,
        bytes: 1_500_000,
        lba: 2,
        byte_offset: 100,
    }];
    let (aborted, _) = run(&r, segments, None);
    assert_eq!(
        aborted,
        Aborted {
            asc: (0x0d, 0x01),
            segment: 0,
            residue: Some(1_500_000 - 1199 * 1000),
            pointer: Some((false, cscd_offset(3))),
        }
    );
    // The 1199 records on the tape are the range's first 1,199,000 bytes.
    drop(r.manager);
    let tape = std::fs::read(r.dir.path().join("t.tap")).unwrap();
    let start = 2 * BL + 100;
    let mut at = 0;
    for k in 0..1199 {
        assert_eq!(tape[at..at + 4], 1000u32.to_le_bytes(), "record {k}");
        let want = &r.source[start + k * 1000..start + (k + 1) * 1000];
        assert!(tape[at + 4..at + 1004] == *want, "record {k}'s bytes");
        at += 1008;
    }
    assert_eq!(tape.len(), at, "nothing after the failed record");
}

/// An inexact segment (26/0A: leftover data with no PAD, Table 116) that wrote some records
/// first: data reached the destination in the failing segment, so INFORMATION is valid
/// (VALID=1, Part B 4); 3 blocks in 1024-byte records write one record and leave 512 bytes.
/// What the residue then is (0, or the 512 bytes no record could carry) the standard does
/// not settle; only VALID is asserted.
#[test]
fn an_inexact_segment_that_wrote_records_has_a_valid_residue() {
    let r = rig(&[], &[], None);
    let segments = vec![Segment::BlockToStream {
        hold: false,
        source: CscdId(0),
        destination: CscdId(3),
        stream_transfer_length: 1024,
        blocks: 3,
        lba: 0,
    }];
    let (aborted, _) = run(&r, segments, None);
    assert_eq!(
        (aborted.asc, aborted.segment, aborted.pointer),
        ((0x26, 0x0a), 0, None)
    );
    assert!(aborted.residue.is_some(), "VALID set: {aborted:?}");
}
