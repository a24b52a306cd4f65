//! The copy manager's own bookkeeping (src/copy/manager.rs), apart from what segments do:
//! - RECEIVE COPY RESULTS is per I_T nexus (SPC-4 6.18): COPY STATUS's exact bytes for a
//!   list that failed part way, FAILED SEGMENT DETAILS kept through a truncated transfer
//!   and discarded after full delivery or on allocation length 0, HDD for LIST ID USAGE
//!   10b with holding segments, an unknown list identifier 05/24/00 at CDB byte 2;
//! - a lost nexus takes its own results with it and nobody else's; the lists of other
//!   nexuses never push a nexus's results out (256 list identifiers fit in full);
//! - the parameter list is PARAMETER LIST LENGTH long: shorter is 05/1A/00, longer is cut;
//! - the metrics count lists by result, segments by type, bytes by destination (the failed
//!   segment's own bytes too), and the end of every list is logged with its sense.
//!
//! The failing list: segment 0 copies 4 blocks d0 -> d1 (02h), segment 1 writes 8 blocks
//! of d0 to the tape in 512-byte records (00h) and the tape's 6th WRITE fails.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::common::list::{decoded_rcr, decoded_xcopy, encode_list, xcopy_cdb};
use xcopyd::command::{Abort, Nexus};
use xcopyd::copy::engine::Engines;
use xcopyd::copy::manager::CopyManager;
use xcopyd::copy::CopyService;
use xcopyd::device::disk::{DiskOptions, EmulatedDisk};
use xcopyd::device::faults::{Failure, Fault, FaultyDevice, TapeOp};
use xcopyd::device::inventory::{DeviceConfig, DeviceKind, Inventory};
use xcopyd::device::tape::{EmulatedTape, TapeConfig};
use xcopyd::device::ScsiDevice;
use xcopyd::metrics::Metrics;
use xcopyd::scsi::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
use xcopyd::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
use xcopyd::scsi::{Asc, Designator, Limits, ListIdUsage, ParameterList, Sense, SenseKey, Status};

const BL: usize = 512;
const BLOCKS: usize = 64;
/// d0 (source), d1, d2 (every WRITE fails), the tape (its 6th WRITE fails).
const NAMES: [&str; 4] = [
    "naa.5001405a1b2c3d01",
    "naa.5001405a1b2c3d03",
    "naa.5001405a1b2c3d05",
    "naa.5001405a1b2c3d02",
];

struct Rig {
    _dir: tempfile::TempDir,
    m: CopyManager,
    metrics: Arc<Metrics>,
}

fn config(name: &str, kind: DeviceKind, path: &Path, designator: &str) -> DeviceConfig {
    let mut c = DeviceConfig::new(name, kind, path);
    c.designators = vec![Designator::parse_name(designator).unwrap()];
    c
}

fn medium_error() -> Failure {
    Failure::check_condition(Sense::new(SenseKey::MEDIUM_ERROR, Asc::WRITE_ERROR))
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let mut devices: Vec<(DeviceConfig, Arc<dyn ScsiDevice>)> = Vec::new();
    for (i, name) in ["d0", "d1", "d2"].into_iter().enumerate() {
        let path = dir.path().join(format!("{name}.img"));
        let fill: Vec<u8> = (0..BLOCKS * BL)
            .map(|n| (n * (1 - i.min(1))) as u8)
            .collect();
        std::fs::write(&path, fill).unwrap();
        let disk = Arc::new(EmulatedDisk::open(name, &DiskOptions::new(&path, BL as u32)).unwrap());
        let device: Arc<dyn ScsiDevice> = if i == 2 {
            Arc::new(FaultyDevice::new(disk).with(Fault::LbaRange {
                first: 0,
                count: BLOCKS as u64,
                failure: medium_error(),
            }))
        } else {
            disk
        };
        devices.push((config(name, DeviceKind::Disk, &path, NAMES[i]), device));
    }
    let path = dir.path().join("t.tap");
    let t = TapeConfig {
        designators: vec![Designator::parse_name(NAMES[3]).unwrap()],
        ..TapeConfig::default()
    };
    let tape = Arc::new(EmulatedTape::open("t", &path, t).unwrap().0);
    let tape = FaultyDevice::new(tape).with(Fault::TapeCommand {
        op: TapeOp::Write,
        n: 6,
        failure: medium_error(),
    });
    devices.push((
        config("t", DeviceKind::Tape, &path, NAMES[3]),
        Arc::new(tape),
    ));
    let metrics = Arc::new(Metrics::default());
    let m = CopyManager::new(
        Arc::new(Inventory::from_devices(devices).unwrap()),
        Limits::default(),
    )
    .with_metrics(metrics.clone());
    Rig {
        _dir: dir,
        m,
        metrics,
    }
}

fn cscds() -> Vec<CscdDescriptor> {
    NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| CscdDescriptor {
            nul: false,
            peripheral_device_type: u8::from(i == 3),
            relative_initiator_port: 0,
            identifier: CscdIdentifier::Identification {
                designator: Designator::parse_name(name).unwrap(),
            },
            parameters: if i == 3 {
                DeviceParameters::Stream {
                    pad: false,
                    fixed: false,
                    block_length: 0,
                }
            } else {
                DeviceParameters::Block {
                    pad: false,
                    block_length: BL as u32,
                }
            },
        })
        .collect()
}

/// 02h: 4 blocks of d0 from LBA 0 to CSCD `to` at LBA 8.
fn b2b(to: u16) -> Segment {
    Segment::BlockToBlock {
        hold: false,
        dc: false,
        source: CscdId(0),
        destination: CscdId(to),
        blocks: 4,
        source_lba: 0,
        destination_lba: 8,
    }
}

/// 00h: 8 blocks of d0 to the tape in 512-byte records.
fn b2s() -> Segment {
    Segment::BlockToStream {
        hold: false,
        source: CscdId(0),
        destination: CscdId(3),
        stream_transfer_length: BL as u32,
        blocks: 8,
        lba: 0,
    }
}

fn list(id: u8, usage: ListIdUsage, segments: Vec<Segment>) -> Vec<u8> {
    encode_list(id, usage, cscds(), segments)
}

fn nexus(n: u64) -> Nexus {
    Nexus {
        initiator: format!("iqn.test:manager-{n}"),
        session: n,
    }
}

/// EXTENDED COPY of `bytes` with PARAMETER LIST LENGTH `len`: (status, sense bytes).
fn xcopy_len(m: &CopyManager, nexus: &Nexus, bytes: &[u8], len: usize) -> (Status, Vec<u8>) {
    let r = m.extended_copy(
        nexus,
        None,
        &decoded_xcopy(&xcopy_cdb(len)),
        bytes,
        &Abort::new(),
    );
    (r.status, r.sense)
}

fn xcopy(m: &CopyManager, nexus: &Nexus, bytes: &[u8]) -> (Status, Vec<u8>) {
    xcopy_len(m, nexus, bytes, bytes.len())
}

fn good(r: (Status, Vec<u8>)) {
    assert_eq!(r, (Status::GOOD, Vec::new()));
}

/// RECEIVE COPY RESULTS: (status, data-in, sense).
fn rcr(m: &CopyManager, nexus: &Nexus, sa: u8, id: u8, len: u32) -> (Status, Vec<u8>, Vec<u8>) {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x84;
    cdb[1] = sa;
    cdb[2] = id;
    cdb[10..14].copy_from_slice(&len.to_be_bytes());
    let r = m.receive_copy_results(nexus, &decoded_rcr(&cdb));
    (r.status, r.data_in, r.sense)
}

fn copy_status(m: &CopyManager, nexus: &Nexus, id: u8) -> Vec<u8> {
    let (status, data, sense) = rcr(m, nexus, 0x00, id, 12);
    assert_eq!(status, Status::GOOD, "{sense:02x?}");
    data
}

/// 05/24/00 INVALID FIELD IN CDB, field pointer at CDB byte 2 (SKSV, C/D set).
fn unknown_list_id(r: (Status, Vec<u8>, Vec<u8>)) {
    let (status, data, s) = r;
    assert_eq!((status, data.len()), (Status::CHECK_CONDITION, 0));
    assert_eq!(
        (s[0] & 0x7f, s[2] & 0x0f, s[12], s[13], &s[15..18]),
        (0x70, 0x05, 0x24, 0x00, &[0xc0, 0x00, 0x02][..]),
        "{s:02x?}"
    );
}

/// The failing list (once per rig: the tape fails its 6th WRITE only): its sense is
/// COPY ABORTED, 0D/01 THIRD PARTY DEVICE FAILURE, segment 1.
fn run_failing(r: &Rig, nexus: &Nexus, id: u8) -> Vec<u8> {
    fail(r, nexus, id, vec![b2b(1), b2s()])
}

/// Runs `segments` as list `id`, whose segment 1 fails with 0D/01; returns the sense.
fn fail(r: &Rig, nexus: &Nexus, id: u8, segments: Vec<Segment>) -> Vec<u8> {
    let (status, sense) = xcopy(&r.m, nexus, &list(id, ListIdUsage::Hold, segments));
    assert_eq!(status, Status::CHECK_CONDITION);
    let s = Sense::decode(&sense).unwrap();
    assert_eq!(
        (s.key, s.asc, s.segment_number),
        (
            SenseKey::COPY_ABORTED,
            Asc::THIRD_PARTY_DEVICE_FAILURE,
            Some(1)
        )
    );
    sense
}

#[test]
fn copy_status_and_failed_segment_details_of_a_failed_list() {
    let r = rig();
    let (a, b) = (nexus(1), nexus(2));
    let sense = run_failing(&r, &a, 3);

    // Done with errors, one segment processed, 2048 + 5 x 512 bytes written, in bytes.
    assert_eq!(
        copy_status(&r.m, &a, 3),
        [0, 0, 0, 8, 0x02, 0, 1, 0x00, 0, 0, 0x12, 0x00]
    );
    // The list identifier is the nexus's own.
    unknown_list_id(rcr(&r.m, &b, 0x00, 3, 12));
    unknown_list_id(rcr(&r.m, &b, 0x04, 3, 1024));

    // FAILED SEGMENT DETAILS: status CHECK CONDITION and the sense the command returned.
    let mut details = ((56 + sense.len()) as u32).to_be_bytes().to_vec();
    details.extend([0; 52]);
    details.extend([0x02, 0]);
    details.extend((sense.len() as u16).to_be_bytes());
    details.extend(&sense);
    // A truncated transfer discards nothing, twice.
    for _ in 0..2 {
        let (status, data, _) = rcr(&r.m, &a, 0x04, 3, 60);
        assert_eq!((status, &data[..]), (Status::GOOD, &details[..60]));
    }
    // Full delivery returns it all, then it is gone.
    let (status, data, _) = rcr(&r.m, &a, 0x04, 3, 1024);
    assert_eq!((status, data), (Status::GOOD, details.clone()));
    let (status, data, _) = rcr(&r.m, &a, 0x04, 3, 1024);
    assert_eq!((status, data), (Status::GOOD, vec![0, 0, 0, 0]));
    // COPY STATUS outlives the details.
    assert_eq!(copy_status(&r.m, &a, 3)[4], 0x02);

    // Allocation length 0: nothing transferred, and the details are discarded (segment 1
    // writes to d2, which fails every WRITE).
    let sense = fail(&r, &a, 4, vec![b2b(1), b2b(2)]);
    let (status, data, _) = rcr(&r.m, &a, 0x04, 4, 0);
    assert_eq!((status, data.len()), (Status::GOOD, 0));
    let (status, data, _) = rcr(&r.m, &a, 0x04, 4, 1024);
    assert_eq!(
        (status, data),
        (Status::GOOD, vec![0, 0, 0, 0]),
        "{sense:02x?}"
    );
}

/// LIST ID USAGE 10b holds no data, so what a holding segment processed is discarded: HDD.
/// The same list with 00b holds it: HDD clear.
#[test]
fn a_discard_list_with_a_holding_segment_reports_held_data_discarded() {
    let r = rig();
    let a = nexus(1);
    // 0Bh, two records (the tape's 6th WRITE would fail).
    let two = Segment::BlockToStream {
        hold: true,
        source: CscdId(0),
        destination: CscdId(3),
        stream_transfer_length: BL as u32,
        blocks: 2,
        lba: 0,
    };
    good(xcopy(
        &r.m,
        &a,
        &list(1, ListIdUsage::Discard, vec![two.clone()]),
    ));
    assert_eq!(
        copy_status(&r.m, &a, 1),
        [0, 0, 0, 8, 0x81, 0, 1, 0x00, 0, 0, 0x04, 0x00]
    );
    assert_eq!(rcr(&r.m, &a, 0x01, 1, 1024).1, [0, 0, 0, 0]);
    good(xcopy(&r.m, &a, &list(2, ListIdUsage::Hold, vec![two])));
    assert_eq!(copy_status(&r.m, &a, 2)[4], 0x01);
    assert_eq!(rcr(&r.m, &a, 0x01, 2, 4096).1.len(), 4 + 1024);
}

/// A nexus keeps the held data of its 16 most recently finished lists: a 17th discards
/// the oldest one's (COPY STATUS then sets HDD, RECEIVE DATA has none), whatever the list
/// IDs' order; another nexus's held data is untouched; delivered data no longer counts.
#[test]
fn the_oldest_lists_held_data_goes_first_and_says_so() {
    let r = rig();
    let (a, b) = (nexus(1), nexus(2));
    // 0Dh: 4 blocks of d0 to d1, held.
    let held = || Segment::BlockToBlock {
        hold: true,
        dc: false,
        source: CscdId(0),
        destination: CscdId(1),
        blocks: 4,
        source_lba: 0,
        destination_lba: 8,
    };
    let run = |n: &Nexus, id: u8| good(xcopy(&r.m, n, &list(id, ListIdUsage::Hold, vec![held()])));
    let data: Vec<u8> = (0..4 * BL).map(|n| n as u8).collect();
    let receive = |n: &Nexus, id: u8| rcr(&r.m, n, 0x01, id, 4 + 4 * BL as u32).1;
    let with_data = {
        let mut v = ((4 * BL) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(&data);
        v
    };
    run(&b, 7);
    // Finished in the order 40, 39, ..., 24: list 40 is the oldest, 24 the newest.
    for id in (24..=40).rev() {
        run(&a, id);
    }
    assert_eq!(copy_status(&r.m, &a, 40)[4], 0x81, "the oldest list's HDD");
    assert_eq!(receive(&a, 40), [0, 0, 0, 0]);
    for id in 24..40 {
        assert_eq!(copy_status(&r.m, &a, id)[4], 0x01, "list {id}");
    }
    assert_eq!(receive(&a, 24), with_data);
    assert_eq!(receive(&b, 7), with_data);
    // List 24's data went with its delivery: one more list discards nothing (39 keeps its).
    run(&a, 41);
    assert_eq!(copy_status(&r.m, &a, 39)[4], 0x01);
    assert_eq!(receive(&a, 39), with_data);
}

#[test]
fn a_lost_nexus_takes_its_own_results_only() {
    let r = rig();
    let (a, b) = (nexus(1), nexus(2));
    for n in [&a, &b] {
        good(xcopy(&r.m, n, &list(1, ListIdUsage::Hold, vec![b2b(1)])));
    }
    r.m.nexus_lost(&a);
    unknown_list_id(rcr(&r.m, &a, 0x00, 1, 12));
    assert_eq!(
        copy_status(&r.m, &b, 1),
        [0, 0, 0, 8, 0x01, 0, 1, 0x00, 0, 0, 0x08, 0x00]
    );
}

/// Results are kept per nexus and list identifier; 300 lists on two other nexuses leave a
/// nexus's one list, and each other one, answerable.
#[test]
fn other_nexuses_lists_never_evict_a_nexus_results() {
    let r = rig();
    let (a, b, c) = (nexus(1), nexus(2), nexus(3));
    let one = |id| list(id, ListIdUsage::Discard, vec![b2b(1)]);
    for id in 0..200 {
        good(xcopy(&r.m, &b, &one(id)));
    }
    for id in 0..100 {
        good(xcopy(&r.m, &c, &one(id)));
    }
    good(xcopy(&r.m, &a, &one(5)));
    assert_eq!(copy_status(&r.m, &a, 5)[4], 0x01);
    for id in 0..200 {
        assert_eq!(copy_status(&r.m, &b, id)[4], 0x01, "b's list {id}");
    }
    for id in 0..100 {
        assert_eq!(copy_status(&r.m, &c, id)[4], 0x01, "c's list {id}");
    }
}

/// SPC-4 6.4.1: PARAMETER LIST LENGTH says how long the list is. Less data than that is
/// 05/1A/00 PARAMETER LIST LENGTH ERROR; bytes beyond it are not part of the list.
#[test]
fn the_parameter_list_is_parameter_list_length_long() {
    let r = rig();
    let a = nexus(1);
    let bytes = list(1, ListIdUsage::Hold, vec![b2b(1)]);
    let (status, s) = xcopy_len(&r.m, &a, &bytes[..bytes.len() - 1], bytes.len());
    assert_eq!(status, Status::CHECK_CONDITION);
    assert_eq!(
        (s[0] & 0x7f, s[2] & 0x0f, s[12], s[13]),
        (0x70, 0x05, 0x1a, 0x00),
        "{s:02x?}"
    );
    unknown_list_id(rcr(&r.m, &a, 0x00, 1, 12));
    let mut longer = bytes.clone();
    longer.extend([0xff; 16]);
    good(xcopy_len(&r.m, &a, &longer, bytes.len()));
    assert_eq!(copy_status(&r.m, &a, 1)[4], 0x01);
}

/// The series of `name` in the Prometheus text, with their values.
fn series(text: &str, name: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn metrics_count_lists_segments_and_the_bytes_each_destination_got() {
    let r = rig();
    let a = nexus(1);
    run_failing(&r, &a, 1);
    let text = r.metrics.render();
    // Segment 0 (02h) was processed; segment 1 (00h) failed after 5 records.
    assert_eq!(
        series(&text, "xcopyd_segments_total"),
        [r#"xcopyd_segments_total{type="02h"} 1"#]
    );
    assert_eq!(
        series(&text, "xcopyd_copy_bytes_total"),
        [
            format!(r#"xcopyd_copy_bytes_total{{device="{}"}} 2560"#, NAMES[3]),
            format!(r#"xcopyd_copy_bytes_total{{device="{}"}} 2048"#, NAMES[1]),
        ]
    );
    let copies = series(&text, "xcopyd_copies_total");
    assert_eq!(copies.len(), 1);
    assert!(
        copies[0].starts_with(r#"xcopyd_copies_total{result="check_condition",sense="0a/0d/01 "#)
            && copies[0].ends_with("} 1"),
        "{copies:?}"
    );

    // A segment that fails before writing anything adds no bytes for its destination.
    fail(&r, &a, 2, vec![b2b(1), b2b(2)]);
    good(xcopy(&r.m, &a, &list(3, ListIdUsage::Hold, vec![b2b(1)])));
    let text = r.metrics.render();
    assert_eq!(
        series(&text, "xcopyd_copy_bytes_total"),
        [
            format!(r#"xcopyd_copy_bytes_total{{device="{}"}} 2560"#, NAMES[3]),
            format!(r#"xcopyd_copy_bytes_total{{device="{}"}} 6144"#, NAMES[1]),
        ]
    );
    assert_eq!(
        series(&text, "xcopyd_segments_total"),
        [r#"xcopyd_segments_total{type="02h"} 3"#]
    );
    let copies = series(&text, "xcopyd_copies_total");
    assert_eq!(copies.len(), 2, "{copies:?}");
    assert!(copies[0].ends_with("} 2"), "{copies:?}");
    assert_eq!(
        copies[1],
        r#"xcopyd_copies_total{result="good",sense=""} 1"#
    );
    assert!(text.contains("\nxcopyd_copies_in_flight 0\n"), "{text}");
}

/// The initiator name of the log test's nexus: the log lines it looks for carry it.
const LOGGED: &str = "iqn.test:manager-logged";

/// The lines of the process's log that carry [`LOGGED`]. The subscriber is the process's
/// global one, set once: a thread-scoped one (`with_default`) misses events whose callsite
/// interest another test thread cached while no subscriber was listening.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The formatter writes each event whole, in one call.
        if buf.windows(LOGGED.len()).any(|w| w == LOGGED.as_bytes()) {
            self.0.lock().unwrap().extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn global_log() -> &'static Log {
    static LOG: std::sync::OnceLock<Log> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log = Log::default();
        let w = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || w.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        log
    })
}

/// The end of a list is logged with its sense and the failing device's sense; a good one
/// with what it moved.
#[test]
fn the_end_of_a_list_is_logged_with_the_devices_sense() {
    let r = rig();
    let a = Nexus {
        initiator: LOGGED.into(),
        session: 9,
    };
    let log = global_log();
    run_failing(&r, &a, 1);
    good(xcopy(&r.m, &a, &list(2, ListIdUsage::Hold, vec![b2b(1)])));
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let failed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("EXTENDED COPY failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{text}");
    assert!(
        failed[0].contains("list_id=1")
            && failed[0].contains("segments_processed=1")
            && failed[0].contains("bytes=4608")
            && failed[0].contains("0a/0d/01")
            && failed[0].contains("device_sense=\"03/0c/00"),
        "{}",
        failed[0]
    );
    let good_end: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("EXTENDED COPY good"))
        .collect();
    assert_eq!(good_end.len(), 1, "{text}");
    assert!(good_end[0].contains("list_id=2") && good_end[0].contains("bytes=2048"));
}

/// What the manager was built with is what it shows: limits, engines, the registry of its
/// copies, and its Debug form.
#[test]
fn the_accessors_show_what_the_manager_was_built_with() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d0.img");
    std::fs::write(&path, vec![0u8; BLOCKS * BL]).unwrap();
    let disk = Arc::new(EmulatedDisk::open("d0", &DiskOptions::new(&path, BL as u32)).unwrap());
    let inventory = Inventory::from_devices(vec![(
        config("d0", DeviceKind::Disk, &path, NAMES[0]),
        disk,
    )])
    .unwrap();
    let limits = Limits {
        total_concurrent_copies: 3,
        max_concurrent_copies: 2,
        ..Limits::default()
    };
    let m = CopyManager::new(Arc::new(inventory), limits.clone())
        .with_engines(Engines::new(8).unwrap());
    assert_eq!(m.limits(), &limits);
    assert_eq!(m.engines().buffers(), 8);
    assert!(format!("{m:?}").starts_with("CopyManager { limits: Limits {"));
    let one = ParameterList {
        list_identifier: 9,
        sequential_striped: false,
        list_id_usage: ListIdUsage::Hold,
        priority: 1,
        cscds: cscds()[..1].to_vec(),
        segments: vec![SegmentDescriptor {
            cat: false,
            body: b2b(0),
        }],
        inline_data: Vec::new(),
    };
    good(xcopy(&m, &nexus(4), &one.encode()));
    let copies = m.registry().list();
    assert_eq!(copies.len(), 1);
    assert_eq!(
        (copies[0].request.list_id, copies[0].state, copies[0].bytes),
        (9, "good", 2048)
    );
}
