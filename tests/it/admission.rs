//! Admission of EXTENDED COPY (SPC-4 6.4 / 5.17.4, Part B 1): while a list runs,
//! - the same list identifier on the same I_T nexus (LIST ID USAGE 00b or 10b) is refused
//!   with ILLEGAL REQUEST, OPERATION IN PROGRESS (05/00/16);
//! - a tracked list beyond MAXIMUM CONCURRENT COPIES, and any list beyond TOTAL CONCURRENT
//!   COPIES, is refused with ILLEGAL REQUEST, INSUFFICIENT RESOURCES (05/55/03);
//! - another nexus may use the same list identifier; an untracked list (11b) counts only
//!   against the total;
//! - refused lists leave the running list's COPY STATUS alone, and once it ends, the
//!   identifier and the slots are free again.
//!
//! Lists are held in the middle of their data by a gate in the destination device's WRITE,
//! so "running" is a fact the test waits for, not a time it guesses.

use crate::common::list::{decoded_rcr, decoded_xcopy};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use xcopyd::command::{Abort, Nexus};
use xcopyd::copy::manager::CopyManager;
use xcopyd::copy::CopyService;
use xcopyd::device::disk::{DiskOptions, EmulatedDisk};
use xcopyd::device::inventory::{DeviceConfig, DeviceKind, Inventory};
use xcopyd::device::{Completion, DataDirection, DeviceError, ScsiDevice};
use xcopyd::scsi::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
use xcopyd::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
use xcopyd::scsi::{Designator, Limits, ListIdUsage, ParameterList, Status};

const BL: u32 = 512;
const NAMES: [&str; 3] = [
    "naa.5001405a1b2c3d01",
    "naa.5001405a1b2c3d03",
    "naa.5001405a1b2c3d05",
];

/// Counts the WRITEs that reached it and holds each until opened.
#[derive(Default)]
struct Gate {
    state: Mutex<(usize, bool)>,
    cv: Condvar,
}

impl Gate {
    fn wait_entered(&self, n: usize) {
        let s = self.state.lock().unwrap();
        let (s, t) = self
            .cv
            .wait_timeout_while(s, Duration::from_secs(30), |s| s.0 < n)
            .unwrap();
        assert!(!t.timed_out(), "{} of {n} copies reached the device", s.0);
    }

    fn open(&self) {
        self.state.lock().unwrap().1 = true;
        self.cv.notify_all();
    }
}

/// A disk reached through CDBs only, whose WRITEs wait at the gate.
struct GatedDisk {
    inner: EmulatedDisk,
    gate: Arc<Gate>,
}

impl ScsiDevice for GatedDisk {
    fn execute(&self, cdb: &[u8], data: DataDirection<'_>) -> Result<Completion, DeviceError> {
        if matches!(cdb[0], 0x2a | 0x8a) {
            let mut s = self.gate.state.lock().unwrap();
            s.0 += 1;
            self.gate.cv.notify_all();
            let (s, t) = self
                .gate
                .cv
                .wait_timeout_while(s, Duration::from_secs(30), |s| !s.1)
                .unwrap();
            assert!(!t.timed_out() && s.1, "the gate was opened");
        }
        self.inner.execute(cdb, data)
    }

    fn name(&self) -> &str {
        self.inner.name()
    }
}

/// d0 = source, d1 = gated destination, d2 = plain destination.
fn manager(dir: &std::path::Path, gate: Arc<Gate>, limits: Limits) -> Arc<CopyManager> {
    let mut devices: Vec<(DeviceConfig, Arc<dyn ScsiDevice>)> = Vec::new();
    for (i, name) in ["d0", "d1", "d2"].into_iter().enumerate() {
        let path = dir.join(format!("{name}.img"));
        std::fs::write(&path, vec![i as u8; 64 * BL as usize]).unwrap();
        let disk = EmulatedDisk::open(name, &DiskOptions::new(&path, BL)).unwrap();
        let device: Arc<dyn ScsiDevice> = if i == 1 {
            Arc::new(GatedDisk {
                inner: disk,
                gate: gate.clone(),
            })
        } else {
            Arc::new(disk)
        };
        let mut c = DeviceConfig::new(name, DeviceKind::Disk, &path);
        c.designators = vec![Designator::parse_name(NAMES[i]).unwrap()];
        devices.push((c, device));
    }
    Arc::new(CopyManager::new(
        Arc::new(Inventory::from_devices(devices).unwrap()),
        limits,
    ))
}

/// A one-segment list copying 4 blocks from d0 to CSCD `to`.
fn list(id: u8, usage: ListIdUsage, to: u16) -> Vec<u8> {
    let cscd = |name: &str| CscdDescriptor {
        nul: false,
        peripheral_device_type: 0,
        relative_initiator_port: 0,
        identifier: CscdIdentifier::Identification {
            designator: Designator::parse_name(name).unwrap(),
        },
        parameters: DeviceParameters::Block {
            pad: false,
            block_length: BL,
        },
    };
    ParameterList {
        list_identifier: id,
        sequential_striped: false,
        list_id_usage: usage,
        priority: 1,
        cscds: NAMES.iter().map(|n| cscd(n)).collect(),
        segments: vec![SegmentDescriptor {
            cat: false,
            body: Segment::BlockToBlock {
                hold: false,
                dc: false,
                source: CscdId(0),
                destination: CscdId(to),
                blocks: 4,
                source_lba: 0,
                destination_lba: 8,
            },
        }],
        inline_data: Vec::new(),
    }
    .encode()
}

fn nexus(n: u64) -> Nexus {
    Nexus {
        initiator: format!("iqn.test:admission-{n}"),
        session: n,
    }
}

fn xcopy(m: &CopyManager, nexus: &Nexus, bytes: &[u8]) -> (Status, Vec<u8>) {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x83;
    cdb[10..14].copy_from_slice(&(bytes.len() as u32).to_be_bytes());
    let r = m.extended_copy(nexus, None, &decoded_xcopy(&cdb), bytes, &Abort::new());
    (r.status, r.sense)
}

/// ILLEGAL REQUEST with (ASC, ASCQ), fixed format, no sense-key-specific data.
fn refused(r: (Status, Vec<u8>), asc: u8, ascq: u8, what: &str) {
    let (status, s) = r;
    assert_eq!(status, Status::CHECK_CONDITION, "{what}");
    assert_eq!(
        (s[0] & 0x7f, s[2] & 0x0f, s[12], s[13], s[15] & 0x80),
        (0x70, 0x05, asc, ascq, 0),
        "{what}: {s:02x?}"
    );
}

/// COPY STATUS byte 4 (HDD and COPY MANAGER STATUS) of list `id` for `nexus`.
fn copy_status(m: &CopyManager, nexus: &Nexus, id: u8) -> u8 {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x84;
    cdb[2] = id;
    cdb[13] = 12;
    let r = m.receive_copy_results(nexus, &decoded_rcr(&cdb));
    assert_eq!(r.status, Status::GOOD, "{:02x?}", r.sense);
    r.data_in[4]
}

#[test]
fn operation_in_progress_and_insufficient_resources() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    let limits = Limits {
        total_concurrent_copies: 2,
        max_concurrent_copies: 1,
        ..Limits::default()
    };
    let m = manager(dir.path(), gate.clone(), limits);
    let (a, b) = (nexus(1), nexus(2));

    // List 1 (hold) on nexus a, in the gated disk's WRITE.
    let first = {
        let (m, a) = (m.clone(), a.clone());
        std::thread::spawn(move || xcopy(&m, &a, &list(1, ListIdUsage::Hold, 1)))
    };
    gate.wait_entered(1);
    assert_eq!(copy_status(&m, &a, 1), 0x00, "in progress");
    assert_eq!(m.running(), 1);

    let busy = "the same list ID on the same nexus";
    refused(
        xcopy(&m, &a, &list(1, ListIdUsage::Hold, 2)),
        0x00,
        0x16,
        busy,
    );
    refused(
        xcopy(&m, &a, &list(1, ListIdUsage::Discard, 2)),
        0x00,
        0x16,
        busy,
    );
    // Tracked lists beyond MAXIMUM CONCURRENT COPIES (1), the same ID on another nexus too.
    let full = "a second tracked list";
    refused(
        xcopy(&m, &a, &list(2, ListIdUsage::Hold, 2)),
        0x55,
        0x03,
        full,
    );
    refused(
        xcopy(&m, &b, &list(1, ListIdUsage::Discard, 2)),
        0x55,
        0x03,
        full,
    );
    // An untracked list counts only against TOTAL CONCURRENT COPIES (2): it runs.
    assert_eq!(
        xcopy(&m, &b, &list(0, ListIdUsage::NoListId, 2)),
        (Status::GOOD, Vec::new())
    );

    // A second untracked one, held too: now the total is reached.
    let second = {
        let (m, b) = (m.clone(), b.clone());
        std::thread::spawn(move || xcopy(&m, &b, &list(0, ListIdUsage::NoListId, 1)))
    };
    gate.wait_entered(2);
    assert_eq!(m.running(), 2);
    let total = "beyond TOTAL CONCURRENT COPIES";
    refused(
        xcopy(&m, &b, &list(0, ListIdUsage::NoListId, 2)),
        0x55,
        0x03,
        total,
    );
    refused(
        xcopy(&m, &b, &list(7, ListIdUsage::Hold, 2)),
        0x55,
        0x03,
        total,
    );
    // None of it disturbed list 1.
    assert_eq!(copy_status(&m, &a, 1), 0x00, "still in progress");

    gate.open();
    assert_eq!(first.join().unwrap(), (Status::GOOD, Vec::new()));
    assert_eq!(second.join().unwrap(), (Status::GOOD, Vec::new()));
    assert_eq!(m.running(), 0);
    assert_eq!(copy_status(&m, &a, 1), 0x01, "done without errors");
    // The identifier and the slots are free again.
    assert_eq!(
        xcopy(&m, &a, &list(1, ListIdUsage::Hold, 2)),
        (Status::GOOD, Vec::new())
    );
    assert_eq!(
        xcopy(&m, &b, &list(1, ListIdUsage::Hold, 2)),
        (Status::GOOD, Vec::new())
    );
    let d2 = std::fs::read(dir.path().join("d2.img")).unwrap();
    assert!(d2[8 * 512..12 * 512].iter().all(|&x| x == 0), "d0's bytes");
}

/// A list ID that finished is not "in progress": reusing it at once on the same nexus is
/// accepted (and replaces the old results).
#[test]
fn a_finished_list_id_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    gate.open();
    let m = manager(dir.path(), gate, Limits::default());
    let a = nexus(3);
    for _ in 0..3 {
        assert_eq!(
            xcopy(&m, &a, &list(4, ListIdUsage::Hold, 1)),
            (Status::GOOD, Vec::new())
        );
        assert_eq!(copy_status(&m, &a, 4), 0x01);
    }
}
