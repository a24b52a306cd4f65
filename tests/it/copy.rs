//! The copy manager end to end over emulated devices: what lands on the destination, byte
//! for byte, and the exact sense when something fails. Tape images are checked with a
//! SIMH parser written here, not through the tape module.

use crate::common::list::{decoded_rcr, decoded_xcopy};
use std::path::Path;
use std::sync::Arc;

use xcopyd::command::{Abort, Nexus};
use xcopyd::copy::manager::CopyManager;
use xcopyd::copy::CopyService;
use xcopyd::device::disk::{DiskOptions, EmulatedDisk};
use xcopyd::device::faults::{Failure, Fault, FaultyDevice, TapeOp};
use xcopyd::device::inventory::{DeviceConfig, DeviceKind, Inventory};
use xcopyd::device::tape::{EmulatedTape, TapeConfig};
use xcopyd::device::ScsiDevice;
use xcopyd::scsi::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
use xcopyd::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
use xcopyd::scsi::{
    Asc, Designator, ForwardedSource, Limits, ListIdUsage, ParameterList, Sense, SenseKey,
    SenseKeySpecific, Status,
};

const DISK0: &str = "naa.5001405a1b2c3d01";
const TAPE0: &str = "naa.5001405a1b2c3d02";
const DISK1: &str = "naa.5001405a1b2c3d03";
const BLOCKS: u64 = 4096; // 2 MiB disks of 512-byte blocks

struct Rig {
    _dir: tempfile::TempDir,
    manager: CopyManager,
    disk0: Arc<EmulatedDisk>,
    disk1: Arc<EmulatedDisk>,
    tape: Arc<dyn ScsiDevice>,
    tape_path: std::path::PathBuf,
    pattern: Vec<u8>,
}

fn config(name: &str, kind: DeviceKind, path: &Path, designator: &str) -> DeviceConfig {
    let mut c = DeviceConfig::new(name, kind, path);
    c.designators = vec![Designator::parse_name(designator).unwrap()];
    c
}

/// disk0 (filled with a pattern), tape0 (variable mode, optionally behind a fault
/// injector), disk1 (zeros).
fn make_rig(tape_faults: &[Fault]) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let mut devices: Vec<(DeviceConfig, Arc<dyn ScsiDevice>)> = Vec::new();
    let mut disks = Vec::new();
    for (name, designator) in [("disk0", DISK0), ("disk1", DISK1)] {
        let path = dir.path().join(format!("{name}.img"));
        std::fs::write(&path, vec![0u8; (BLOCKS * 512) as usize]).unwrap();
        let disk = Arc::new(EmulatedDisk::open(name, &DiskOptions::new(&path, 512)).unwrap());
        disks.push(disk.clone());
        devices.push((config(name, DeviceKind::Disk, &path, designator), disk));
    }
    let pattern: Vec<u8> = (0..BLOCKS * 512).map(|i| (i * 7 + i / 512) as u8).collect();
    std::fs::write(dir.path().join("disk0.img"), &pattern).unwrap();
    let tape_path = dir.path().join("tape0.tap");
    let tape_config = TapeConfig {
        designators: vec![Designator::parse_name(TAPE0).unwrap()],
        ..TapeConfig::default()
    };
    let (tape, _) = EmulatedTape::open("tape0", &tape_path, tape_config).unwrap();
    let tape: Arc<dyn ScsiDevice> = if tape_faults.is_empty() {
        Arc::new(tape)
    } else {
        let faulty = FaultyDevice::new(Arc::new(tape));
        for f in tape_faults {
            faulty.add(f.clone());
        }
        Arc::new(faulty)
    };
    devices.push((
        config("tape0", DeviceKind::Tape, &tape_path, TAPE0),
        tape.clone(),
    ));
    let inventory = Inventory::from_devices(devices).unwrap();
    let manager = CopyManager::new(Arc::new(inventory), Limits::default());
    let disk1 = disks.pop().unwrap();
    let disk0 = disks.pop().unwrap();
    Rig {
        _dir: dir,
        manager,
        disk0,
        disk1,
        tape,
        tape_path,
        pattern,
    }
}

fn cscd(designator: &str, parameters: DeviceParameters) -> CscdDescriptor {
    let pdt = match parameters {
        DeviceParameters::Block { .. } => 0,
        DeviceParameters::Stream { .. } => 1,
        DeviceParameters::Processor { .. } => 3,
    };
    CscdDescriptor {
        nul: false,
        peripheral_device_type: pdt,
        relative_initiator_port: 0,
        identifier: CscdIdentifier::Identification {
            designator: Designator::parse_name(designator).unwrap(),
        },
        parameters,
    }
}

fn disk(designator: &str, pad: bool) -> CscdDescriptor {
    cscd(
        designator,
        DeviceParameters::Block {
            pad,
            block_length: 512,
        },
    )
}

fn tape(pad: bool) -> CscdDescriptor {
    cscd(
        TAPE0,
        DeviceParameters::Stream {
            pad,
            fixed: false,
            block_length: 0,
        },
    )
}

fn seg(cat: bool, body: Segment) -> SegmentDescriptor {
    SegmentDescriptor { cat, body }
}

fn list(cscds: Vec<CscdDescriptor>, segments: Vec<SegmentDescriptor>) -> ParameterList {
    ParameterList {
        list_identifier: 1,
        sequential_striped: false,
        list_id_usage: ListIdUsage::Hold,
        priority: 1,
        cscds,
        segments,
        inline_data: Vec::new(),
    }
}

fn b2s(blocks: u16, lba: u64, stl: u32) -> Segment {
    Segment::BlockToStream {
        hold: false,
        source: CscdId(0),
        destination: CscdId(1),
        stream_transfer_length: stl,
        blocks,
        lba,
    }
}

fn filemark() -> Segment {
    Segment::WriteFilemarks {
        destination: CscdId(1),
        immed: false,
        count: 1,
    }
}

fn run(rig: &Rig, l: &ParameterList) -> (Status, Option<Sense>) {
    let r = rig.manager.extended_copy(
        &Nexus::local(),
        None,
        &decoded_xcopy(&cdb(l.encode().len())),
        &l.encode(),
        &Abort::new(),
    );
    let sense = (!r.sense.is_empty()).then(|| Sense::decode(&r.sense).unwrap());
    (r.status, sense)
}

fn cdb(len: usize) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x83;
    c[10..14].copy_from_slice(&(len as u32).to_be_bytes());
    c
}

/// Tape objects parsed straight from the SIMH bytes: Some(record) or None (filemark).
fn simh(path: &Path) -> Vec<Option<Vec<u8>>> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        if len == 0 {
            out.push(None);
            at += 4;
            continue;
        }
        assert_eq!(len & 0x8000_0000, 0, "bad record at {at}");
        let n = len as usize;
        let data = bytes[at + 4..at + 4 + n].to_vec();
        let tail = at + 4 + n + n % 2;
        assert_eq!(
            &bytes[tail..tail + 4],
            &len.to_le_bytes(),
            "trailing length at {tail}"
        );
        out.push(Some(data));
        at = tail + 4;
    }
    assert_eq!(at, bytes.len(), "trailing bytes in the image");
    out
}

#[test]
fn backup_disk_to_tape_then_restore_to_another_disk() {
    let rig = make_rig(&[]);
    // 1 MiB from LBA 8 in 64 KiB records, then a filemark (00h + 10h).
    let backup = list(
        vec![disk(DISK0, false), tape(false)],
        vec![seg(false, b2s(2048, 8, 65536)), seg(false, filemark())],
    );
    assert_eq!(run(&rig, &backup), (Status::GOOD, None));
    let objects = simh(&rig.tape_path);
    assert_eq!(objects.len(), 17);
    for (i, record) in objects[..16].iter().enumerate() {
        let start = 8 * 512 + i * 65536;
        assert_eq!(
            record.as_deref(),
            Some(&rig.pattern[start..start + 65536]),
            "record {i}"
        );
    }
    assert_eq!(objects[16], None);

    // Restore: locate to the start, then 01h tape -> disk1 at LBA 100.
    let restore = list(
        vec![disk(DISK1, false), tape(false)],
        vec![
            seg(
                false,
                Segment::Locate {
                    destination: CscdId(1),
                    logical_object_id: 0,
                },
            ),
            seg(
                false,
                Segment::StreamToBlock {
                    hold: false,
                    source: CscdId(1),
                    destination: CscdId(0),
                    stream_transfer_length: 65536,
                    blocks: 2048,
                    lba: 100,
                },
            ),
        ],
    );
    assert_eq!(run(&rig, &restore), (Status::GOOD, None));
    let disk1 = std::fs::read(rig._dir.path().join("disk1.img")).unwrap();
    assert_eq!(
        &disk1[100 * 512..(100 + 2048) * 512],
        &rig.pattern[8 * 512..(8 + 2048) * 512]
    );
    assert!(disk1[..100 * 512].iter().all(|&b| b == 0));
    assert!(disk1[(100 + 2048) * 512..].iter().all(|&b| b == 0));
    let _ = (&rig.disk0, &rig.disk1);
}

#[test]
fn block_to_block_copies_exactly() {
    let rig = make_rig(&[]);
    let l = list(
        vec![disk(DISK0, false), disk(DISK1, false)],
        vec![seg(
            false,
            Segment::BlockToBlock {
                hold: false,
                dc: false,
                source: CscdId(0),
                destination: CscdId(1),
                blocks: 3000,
                source_lba: 1,
                destination_lba: 1000,
            },
        )],
    );
    assert_eq!(run(&rig, &l), (Status::GOOD, None));
    let disk1 = std::fs::read(rig._dir.path().join("disk1.img")).unwrap();
    assert_eq!(
        &disk1[1000 * 512..4000 * 512],
        &rig.pattern[512..3001 * 512]
    );
    assert!(disk1[..1000 * 512].iter().all(|&b| b == 0));
}

/// SPC-4 7.5.8: with the Control page's SWP set by MODE SELECT, the copy manager's writes
/// to the disk are refused like an initiator's (07/27/02, forwarded in COPY ABORTED) and
/// nothing lands; once SWP is cleared, the same list copies.
#[test]
fn a_software_write_protected_destination_aborts_the_copy() {
    let rig = make_rig(&[]);
    let swp = |on: bool| {
        let list = [
            0,
            0,
            0,
            0,
            0x0a,
            0x0a,
            0x02,
            0x10,
            u8::from(on) << 3,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        let c = rig
            .disk1
            .execute(
                &[0x15, 0x10, 0, 0, 16, 0],
                xcopyd::device::DataDirection::ToDevice(&list),
            )
            .unwrap();
        assert!(c.is_good(), "{c:?}");
    };
    let l = list(
        vec![disk(DISK0, false), disk(DISK1, false)],
        vec![seg(
            false,
            Segment::BlockToBlock {
                hold: false,
                dc: false,
                source: CscdId(0),
                destination: CscdId(1),
                blocks: 16,
                source_lba: 0,
                destination_lba: 0,
            },
        )],
    );
    swp(true);
    let (status, sense) = run(&rig, &l);
    assert_eq!(status, Status::CHECK_CONDITION);
    let sense = sense.unwrap();
    assert_eq!(
        (sense.key, sense.asc, sense.segment_number),
        (
            SenseKey::COPY_ABORTED,
            Asc::THIRD_PARTY_DEVICE_FAILURE,
            Some(0)
        )
    );
    let fwd = &sense.forwarded[0];
    assert_eq!(fwd.source, ForwardedSource::CopyDestination);
    let device = Sense::decode(&fwd.sense).unwrap();
    assert_eq!(
        (device.key, device.asc),
        (
            SenseKey::DATA_PROTECT,
            Asc::LOGICAL_UNIT_SOFTWARE_WRITE_PROTECTED
        )
    );
    let disk1 = std::fs::read(rig._dir.path().join("disk1.img")).unwrap();
    assert!(disk1[..16 * 512].iter().all(|&b| b == 0));
    swp(false);
    assert_eq!(run(&rig, &l), (Status::GOOD, None));
    let disk1 = std::fs::read(rig._dir.path().join("disk1.img")).unwrap();
    assert_eq!(&disk1[..16 * 512], &rig.pattern[..16 * 512]);
}

/// Unit attentions are for initiators: the copy manager's own I_T nexus takes none, so a
/// copy is not stopped by one pending on the devices it reaches — MODE PARAMETERS CHANGED
/// in the disk's log (another nexus's MODE SELECT), or RESERVATIONS PREEMPTED /
/// REGISTRATIONS PREEMPTED for registrants (the copy manager's key registered as segment
/// 14h would), while an initiator's nexus is told them.
#[test]
fn unit_attentions_for_initiators_do_not_stop_a_copy() {
    let rig = make_rig(&[]);
    let host = Nexus {
        initiator: "iqn.2026-11.org.example:host".into(),
        session: 1,
    };
    let copy_manager = xcopyd::copy::reservation::nexus();
    let pr = |d: &dyn ScsiDevice, n: &Nexus, sa: u8, kind: u8, key: u64, sa_key: u64| {
        let mut list = [0u8; 24];
        list[..8].copy_from_slice(&key.to_be_bytes());
        list[8..16].copy_from_slice(&sa_key.to_be_bytes());
        let cdb = [0x5f, sa, kind, 0, 0, 0, 0, 0, 24, 0];
        let command = xcopyd::command::Command::decode(&cdb).unwrap();
        d.reservations()
            .unwrap()
            .screen(n, &command, &list)
            .unwrap()
    };
    let good = xcopyd::device::reservation::Outcome::Good(Vec::new());
    // On the disk and on the tape (whose commands the copy manager sends through the
    // reservations, not a fast path), the copy manager and the host register; the host
    // reserves Write Exclusive - Registrants Only (type 5) and then CLEARs: RESERVATIONS
    // PREEMPTED for every other registrant.
    for d in [&*rig.disk1 as &dyn ScsiDevice, &*rig.tape] {
        assert_eq!(pr(d, &copy_manager, 0x00, 0, 0, 0xc0), good);
        assert_eq!(pr(d, &host, 0x00, 0, 0, 0x11), good);
        assert_eq!(pr(d, &host, 0x01, 0x05, 0x11, 0), good);
        assert_eq!(pr(d, &host, 0x03, 0, 0x11, 0), good);
    }
    // A MODE SELECT that changes the mode parameters, then changes them back: two MODE
    // PARAMETERS CHANGED in the disk's log.
    let swp = |on: bool| {
        let list = [
            0,
            0,
            0,
            0,
            0x0a,
            0x0a,
            0x02,
            0x10,
            u8::from(on) << 3,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        let dir = xcopyd::device::DataDirection::ToDevice(&list);
        let c = rig.disk1.execute(&[0x15, 0x10, 0, 0, 16, 0], dir).unwrap();
        assert!(c.is_good(), "{c:?}");
    };
    swp(true);
    swp(false);
    assert_eq!(rig.disk1.unit_attentions().unwrap().latest(), 2);
    let l = list(
        vec![disk(DISK0, false), disk(DISK1, false)],
        vec![seg(
            false,
            Segment::BlockToBlock {
                hold: false,
                dc: false,
                source: CscdId(0),
                destination: CscdId(1),
                blocks: 8,
                source_lba: 0,
                destination_lba: 0,
            },
        )],
    );
    assert_eq!(run(&rig, &l), (Status::GOOD, None));
    let disk1 = std::fs::read(rig._dir.path().join("disk1.img")).unwrap();
    assert_eq!(&disk1[..8 * 512], &rig.pattern[..8 * 512]);
    let to_tape = list(
        vec![disk(DISK0, false), tape(false)],
        // WRITE FILEMARKS goes to the tape as a command, through its reservations.
        vec![seg(false, b2s(4, 0, 512)), seg(false, filemark())],
    );
    assert_eq!(run(&rig, &to_tape), (Status::GOOD, None));
    assert_eq!(simh(&rig.tape_path).len(), 5);
    // Nothing was pending for the copy manager; an initiator registered as it was is told.
    for d in [&*rig.disk1 as &dyn ScsiDevice, &*rig.tape] {
        let state = d.reservations().unwrap().snapshot();
        assert!(state.attention.is_empty(), "{:?}", state.attention);
    }
    let other = Nexus {
        initiator: "iqn.2026-11.org.example:other".into(),
        session: 2,
    };
    let disk1: &dyn ScsiDevice = &*rig.disk1;
    assert_eq!(pr(disk1, &other, 0x00, 0, 0, 0x22), good);
    assert_eq!(pr(disk1, &host, 0x00, 0, 0, 0x11), good);
    assert_eq!(pr(disk1, &host, 0x01, 0x05, 0x11, 0), good);
    assert_eq!(pr(disk1, &host, 0x03, 0, 0x11, 0), good);
    let tur = rig.disk1.reservations().unwrap().screen(
        &other,
        &xcopyd::command::Command::decode(&[0; 6]).unwrap(),
        &[],
    );
    let Some(xcopyd::device::reservation::Outcome::Check(ua)) = tur else {
        panic!("a unit attention for the initiator: {tur:?}");
    };
    assert_eq!(
        (ua.key, ua.asc),
        (SenseKey::UNIT_ATTENTION, Asc::RESERVATIONS_PREEMPTED)
    );
    assert_eq!(run(&rig, &l), (Status::GOOD, None));
}

/// Part B 3.3: 3 blocks (1536 bytes) to 1024-byte records leaves 512 bytes over.
#[test]
fn pad_and_cat_rows() {
    // Destination PAD=1: the last record is padded with zeros.
    let rig = make_rig(&[]);
    let l = list(
        vec![disk(DISK0, false), tape(true)],
        vec![seg(false, b2s(3, 0, 1024))],
    );
    assert_eq!(run(&rig, &l), (Status::GOOD, None));
    let objects = simh(&rig.tape_path);
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0].as_deref(), Some(&rig.pattern[..1024]));
    let mut padded = rig.pattern[1024..1536].to_vec();
    padded.resize(1024, 0);
    assert_eq!(objects[1].as_deref(), Some(&padded[..]));

    // Source PAD=1, destination PAD=0: both leftovers dropped, no error.
    let rig = make_rig(&[]);
    let l = list(
        vec![disk(DISK0, true), tape(false)],
        vec![seg(false, b2s(3, 0, 1024))],
    );
    assert_eq!(run(&rig, &l), (Status::GOOD, None));
    assert_eq!(
        simh(&rig.tape_path),
        vec![Some(rig.pattern[..1024].to_vec())]
    );

    // No PAD anywhere: UNEXPECTED INEXACT SEGMENT, with the one record written and the
    // residue (the partial record was never written: 0 records short of floor).
    let rig = make_rig(&[]);
    let l = list(
        vec![disk(DISK0, false), tape(false)],
        vec![seg(false, b2s(3, 0, 1024))],
    );
    let (status, sense) = run(&rig, &l);
    assert_eq!(status, Status::CHECK_CONDITION);
    let sense = sense.unwrap();
    assert_eq!(
        (sense.key, sense.asc, sense.segment_number),
        (
            SenseKey::COPY_ABORTED,
            Asc::UNEXPECTED_INEXACT_SEGMENT,
            Some(0)
        )
    );
    assert_eq!(simh(&rig.tape_path).len(), 1);

    // CAT=1 carries the 512 bytes into the next segment: 3 + 1 blocks = 2 whole records.
    let rig = make_rig(&[]);
    let l = list(
        vec![disk(DISK0, false), tape(false)],
        vec![seg(true, b2s(3, 0, 1024)), seg(false, b2s(1, 3, 1024))],
    );
    assert_eq!(run(&rig, &l), (Status::GOOD, None));
    assert_eq!(
        simh(&rig.tape_path),
        vec![
            Some(rig.pattern[..1024].to_vec()),
            Some(rig.pattern[1024..2048].to_vec())
        ]
    );

    // CAT=1 on the last segment drops the leftovers silently.
    let rig = make_rig(&[]);
    let l = list(
        vec![disk(DISK0, false), tape(false)],
        vec![seg(true, b2s(3, 0, 1024))],
    );
    assert_eq!(run(&rig, &l), (Status::GOOD, None));
    assert_eq!(simh(&rig.tape_path).len(), 1);
}

/// A destination write error: COPY ABORTED 0D/01 with the segment number, the tape's sense
/// forwarded at the destination offset, the residue in records, and every record
/// acknowledged before the failure on the tape.
#[test]
fn tape_write_error_aborts_with_forwarded_sense_and_residue() {
    let medium = Sense::new(SenseKey::MEDIUM_ERROR, Asc::WRITE_ERROR);
    let rig = make_rig(&[Fault::TapeCommand {
        op: TapeOp::Write,
        n: 6,
        failure: Failure::check_condition(medium.clone()),
    }]);
    let l = list(
        vec![disk(DISK0, false), tape(false)],
        vec![seg(false, b2s(8, 0, 512)), seg(false, b2s(16, 8, 1024))],
    );
    let (status, sense) = run(&rig, &l);
    assert_eq!(status, Status::CHECK_CONDITION);
    let sense = sense.unwrap();
    assert_eq!(sense.key, SenseKey::COPY_ABORTED);
    assert_eq!(sense.asc, Asc::THIRD_PARTY_DEVICE_FAILURE);
    // Segment 0 writes 8 records of 512 bytes; the 6th WRITE fails inside it.
    assert_eq!(sense.segment_number, Some(0));
    // Residue in bytes for a variable-mode tape (Part B 4): 8 x 512 - 5 x 512.
    assert_eq!(sense.information, Some(3 * 512));
    // The segment pointer names the failing CSCD descriptor (the tape, at byte 48).
    assert_eq!(
        sense.sense_key_specific,
        Some(SenseKeySpecific::Segment {
            in_segment: false,
            bit: None,
            pointer: 48
        })
    );
    assert_eq!(sense.forwarded.len(), 1);
    let fwd = &sense.forwarded[0];
    assert_eq!(
        (fwd.source, fwd.status),
        (ForwardedSource::CopyDestination, Status::CHECK_CONDITION)
    );
    let device = Sense::decode(&fwd.sense).unwrap();
    assert_eq!(
        (device.key, device.asc),
        (SenseKey::MEDIUM_ERROR, Asc::WRITE_ERROR)
    );
    // Every acknowledged record is on the tape, and nothing else.
    let objects = simh(&rig.tape_path);
    assert_eq!(objects.len(), 5);
    for (i, record) in objects.iter().enumerate() {
        assert_eq!(
            record.as_deref(),
            Some(&rig.pattern[i * 512..(i + 1) * 512])
        );
    }
    // FAILED SEGMENT DETAILS returns the same sense; COPY STATUS says done with errors.
    let rcr = |sa: u8| {
        let mut c = [0u8; 16];
        c[0] = 0x84;
        c[1] = sa;
        c[2] = 1;
        c[10..14].copy_from_slice(&1024u32.to_be_bytes());
        rig.manager
            .receive_copy_results(&Nexus::local(), &decoded_rcr(&c))
    };
    let status = rcr(0x00);
    assert_eq!(status.status, Status::GOOD);
    assert_eq!(status.data_in[4], 0x02, "completed with errors");
    let details = rcr(0x04);
    assert_eq!(details.data_in[56], 0x02);
    assert_eq!(&details.data_in[60..], &sense.encode()[..]);
}

#[test]
fn unreachable_and_out_of_range() {
    let rig = make_rig(&[]);
    // A designator nothing in the inventory has: 0D/02, pointer at the CSCD (SD=0).
    let l = list(
        vec![disk(DISK0, false), disk("naa.5001405a1b2c3d99", false)],
        vec![seg(
            false,
            Segment::BlockToBlock {
                hold: false,
                dc: false,
                source: CscdId(0),
                destination: CscdId(1),
                blocks: 1,
                source_lba: 0,
                destination_lba: 0,
            },
        )],
    );
    let (_, sense) = run(&rig, &l);
    let sense = sense.unwrap();
    assert_eq!(
        (sense.key, sense.asc),
        (
            SenseKey::COPY_ABORTED,
            Asc::COPY_TARGET_DEVICE_NOT_REACHABLE
        )
    );
    assert_eq!(
        sense.sense_key_specific,
        Some(SenseKeySpecific::Segment {
            in_segment: false,
            bit: None,
            pointer: 48
        })
    );
    // libiscsi ValidSegDescr: 2048 blocks to the last LBA -> COPY ABORTED before any I/O,
    // pointing at the destination LBA field.
    let l = list(
        vec![disk(DISK0, false)],
        vec![seg(
            false,
            Segment::BlockToBlock {
                hold: false,
                dc: false,
                source: CscdId(0),
                destination: CscdId(0),
                blocks: 2048,
                source_lba: 0,
                destination_lba: BLOCKS - 1,
            },
        )],
    );
    let (_, sense) = run(&rig, &l);
    let sense = sense.unwrap();
    assert_eq!(
        (sense.key, sense.asc),
        (SenseKey::COPY_ABORTED, Asc::NO_ADDITIONAL_SENSE)
    );
    assert_eq!(
        sense.sense_key_specific,
        Some(SenseKeySpecific::Segment {
            in_segment: true,
            bit: None,
            pointer: 20
        })
    );
    assert_eq!(sense.information, None);
    let disk0 = std::fs::read(rig._dir.path().join("disk0.img")).unwrap();
    assert_eq!(disk0, rig.pattern, "nothing was written");
}

/// The byte-range segments (08h, 09h, 0Ah) move their data in bounded pieces; a byte count
/// past one piece, at offsets that are not block or piece multiples, lands exactly where a
/// byte-for-byte model of the standard says — the tape's records cut by STREAM TRANSFER
/// LENGTH alone, the disk's bytes around the range untouched.
#[test]
fn byte_range_segments_larger_than_a_piece_land_exactly() {
    let rig = make_rig(&[]);
    let bytes: u32 = (1 << 20) + 312_345; // more than one 1 MiB piece, on 2 MiB disks
    let stl = 100_000u32;
    let with_pad = |pad: bool| tape(pad);
    // 08h block<o>->stream from LBA 3, byte 77, PAD=1 on the tape: the last short record
    // is padded to STL.
    let l = list(
        vec![disk(DISK0, false), with_pad(true)],
        vec![seg(
            false,
            Segment::BlockOffsetToStream {
                source: CscdId(0),
                destination: CscdId(1),
                stream_transfer_length: stl,
                bytes,
                lba: 3,
                byte_offset: 77,
            },
        )],
    );
    assert_eq!(run(&rig, &l), (Status::GOOD, None));
    let start = 3 * 512 + 77;
    let data = &rig.pattern[start..start + bytes as usize];
    let want: Vec<Option<Vec<u8>>> = data
        .chunks(stl as usize)
        .map(|c| {
            let mut r = c.to_vec();
            r.resize(stl as usize, 0);
            Some(r)
        })
        .collect();
    let got = simh(&rig.tape_path);
    assert_eq!(got.len(), want.len());
    assert!(got == want, "08h records");
    // 09h stream->block<o>: read it back to disk1 at LBA 10, byte 300 (from the start).
    let rewind = Segment::Locate {
        destination: CscdId(1),
        logical_object_id: 0,
    };
    let l = list(
        vec![disk(DISK1, false), with_pad(true)],
        vec![
            seg(false, rewind),
            seg(
                false,
                Segment::StreamToBlockOffset {
                    source: CscdId(1),
                    destination: CscdId(0),
                    stream_transfer_length: stl,
                    bytes,
                    lba: 10,
                    byte_offset: 300,
                },
            ),
        ],
    );
    assert_eq!(run(&rig, &l), (Status::GOOD, None));
    let disk1 = std::fs::read(rig._dir.path().join("disk1.img")).unwrap();
    let at = 10 * 512 + 300;
    assert!(
        disk1[..at].iter().all(|&b| b == 0),
        "bytes before the range"
    );
    assert!(disk1[at..at + bytes as usize] == *data, "09h bytes");
    assert!(
        disk1[at + bytes as usize..].iter().all(|&b| b == 0),
        "after"
    );
    // 0Ah block<o>->block<o>: disk0 (LBA 1, byte 5) to disk1 (LBA 1, byte 509).
    let l = list(
        vec![disk(DISK0, false), disk(DISK1, false)],
        vec![seg(
            false,
            Segment::BlockOffsetToBlockOffset {
                source: CscdId(0),
                destination: CscdId(1),
                bytes,
                source_lba: 1,
                destination_lba: 1,
                source_byte_offset: 5,
                destination_byte_offset: 509,
            },
        )],
    );
    assert_eq!(run(&rig, &l), (Status::GOOD, None));
    let disk1 = std::fs::read(rig._dir.path().join("disk1.img")).unwrap();
    let (from, to) = (512 + 5, 512 + 509);
    assert!(disk1[to..to + bytes as usize] == rig.pattern[from..from + bytes as usize]);
    assert!(
        disk1[..to].iter().all(|&b| b == 0),
        "bytes before the 0Ah range"
    );
}

/// F5 of #14: a segment that would write more than MAXIMUM SEGMENT LENGTH (what VPD 8Fh and
/// OPERATING PARAMETERS advertise) is refused before any I/O — COPY ABORTED, INVALID FIELD
/// IN PARAMETER LIST, the segment pointer at its byte count — and nothing is ever sized by
/// the count (FFFFFFFFh bytes used to reserve 4 GiB).
#[test]
fn a_segment_past_the_maximum_segment_length_is_refused_before_io() {
    let rig = make_rig(&[]);
    for (body, field) in [
        (
            Segment::StreamToBlockOffset {
                source: CscdId(1),
                destination: CscdId(0),
                stream_transfer_length: 512,
                bytes: u32::MAX,
                lba: 0,
                byte_offset: 0,
            },
            12u16,
        ),
        (
            Segment::BlockOffsetToBlockOffset {
                source: CscdId(0),
                destination: CscdId(0),
                bytes: (1 << 30) + 1,
                source_lba: 0,
                destination_lba: 0,
                source_byte_offset: 0,
                destination_byte_offset: 0,
            },
            8,
        ),
    ] {
        let l = list(
            vec![disk(DISK1, false), tape(false)],
            vec![seg(false, body)],
        );
        let (status, sense) = run(&rig, &l);
        assert_eq!(status, Status::CHECK_CONDITION);
        let s = sense.unwrap();
        assert_eq!(
            (s.key, s.asc, s.segment_number),
            (
                SenseKey::COPY_ABORTED,
                Asc::INVALID_FIELD_IN_PARAMETER_LIST,
                Some(0)
            )
        );
        assert_eq!(
            s.sense_key_specific,
            Some(SenseKeySpecific::Segment {
                in_segment: true,
                bit: None,
                pointer: field
            })
        );
    }
    assert!(simh(&rig.tape_path).is_empty(), "the tape was not read");
}
