//! Bandwidth limits end to end: every route the copy manager moves data on (the ring from a
//! file-backed disk, straight to a disk or in order to a tape; stream reads and writes; the
//! CDB path of a disk without a fast path; tape image copy) waits on the device's `limit`
//! for every byte it reads or writes there, and on the copy's own limit for the bytes it
//! reads from its sources. Counted in bytes; time only as a lower bound.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use xcopyd::command::{Abort, Nexus};
use xcopyd::copy::limit::DeviceLimits;
use xcopyd::copy::manager::CopyManager;
use xcopyd::copy::run::Progress;
use xcopyd::device::disk::{DiskOptions, EmulatedDisk};
use xcopyd::device::faults::FaultyDevice;
use xcopyd::device::inventory::{DeviceConfig, DeviceKind, Inventory};
use xcopyd::device::tape::{EmulatedTape, TapeConfig};
use xcopyd::device::ScsiDevice;
use xcopyd::scsi::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
use xcopyd::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
use xcopyd::scsi::{Asc, Designator, Limits, ListIdUsage, ParameterList, SenseKey};

const MIB: u64 = 1 << 20;
/// Disks of 8 MiB in 512-byte blocks; copies of 6 MiB go through the ring (more than the
/// 2 MiB read in line).
const BLOCKS: u64 = 16384;
const COPY_BLOCKS: u16 = 12288;
const COPY_BYTES: u64 = COPY_BLOCKS as u64 * 512;
/// So high that nothing waits: the limits only count.
const UNLIMITED: u64 = 1 << 50;

const SRC: &str = "naa.5001405a1b2c3d11";
const DST: &str = "naa.5001405a1b2c3d12";
const CDB: &str = "naa.5001405a1b2c3d13";
const TAPE0: &str = "naa.5001405a1b2c3d14";
const TAPE1: &str = "naa.5001405a1b2c3d15";
const NAMES: [&str; 5] = ["src", "dst", "cdb", "tape0", "tape1"];

struct Rig {
    _dir: tempfile::TempDir,
    inventory: Arc<Inventory>,
    limits: Arc<DeviceLimits>,
    pattern: Vec<u8>,
    dst_path: std::path::PathBuf,
    cdb_path: std::path::PathBuf,
}

fn config(name: &str, kind: DeviceKind, path: &std::path::Path, designator: &str) -> DeviceConfig {
    let mut c = DeviceConfig::new(name, kind, path);
    c.designators = vec![Designator::parse_name(designator).unwrap()];
    c
}

/// One SIMH record.
fn simh_record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u32).to_le_bytes();
    let mut out = len.to_vec();
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
    out.extend_from_slice(&len);
    out
}

/// src (a pattern), dst (zeros), cdb (zeros, reached only through CDBs), tape0 (three
/// records and a filemark), tape1 (blank); every device limited at `rate`.
fn rig(rate: u64) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let mut devices: Vec<(DeviceConfig, Arc<dyn ScsiDevice>)> = Vec::new();
    let pattern: Vec<u8> = (0..BLOCKS * 512).map(|i| (i * 7 + i / 512) as u8).collect();
    for (name, designator, fill) in [("src", SRC, true), ("dst", DST, false), ("cdb", CDB, false)] {
        let path = dir.path().join(format!("{name}.img"));
        let data = if fill {
            pattern.clone()
        } else {
            vec![0u8; pattern.len()]
        };
        std::fs::write(&path, data).unwrap();
        let disk: Arc<dyn ScsiDevice> =
            Arc::new(EmulatedDisk::open(name, &DiskOptions::new(&path, 512)).unwrap());
        let device: Arc<dyn ScsiDevice> = if name == "cdb" {
            // No fast path: READ(16)/WRITE(16) only.
            Arc::new(FaultyDevice::new(disk))
        } else {
            disk
        };
        devices.push((config(name, DeviceKind::Disk, &path, designator), device));
    }
    let mut image = Vec::new();
    for len in [65536usize, 1000, 4097] {
        image.extend(simh_record(&vec![0x5a; len]));
    }
    image.extend([0u8; 4]);
    for (name, designator, image) in [("tape0", TAPE0, image), ("tape1", TAPE1, Vec::new())] {
        let path = dir.path().join(format!("{name}.tap"));
        std::fs::write(&path, image).unwrap();
        let tape_config = TapeConfig {
            designators: vec![Designator::parse_name(designator).unwrap()],
            ..TapeConfig::default()
        };
        let (tape, _) = EmulatedTape::open(name, &path, tape_config).unwrap();
        devices.push((
            config(name, DeviceKind::Tape, &path, designator),
            Arc::new(tape),
        ));
    }
    let inventory = Arc::new(Inventory::from_devices(devices).unwrap());
    let limits = Arc::new(DeviceLimits::default());
    limits.configure(NAMES.map(|n| (n, rate)));
    Rig {
        dst_path: dir.path().join("dst.img"),
        cdb_path: dir.path().join("cdb.img"),
        _dir: dir,
        inventory,
        limits,
        pattern,
    }
}

impl Rig {
    fn manager(&self, copy_limit: Option<u64>) -> CopyManager {
        CopyManager::new(self.inventory.clone(), Limits::default())
            .with_device_limits(self.limits.clone())
            .with_copy_limit(copy_limit)
    }

    /// Bytes each device's limit granted, in [`NAMES`] order.
    fn granted(&self) -> [u64; 5] {
        NAMES.map(|n| self.limits.get(n).unwrap().granted())
    }
}

fn cscd(designator: &str, parameters: DeviceParameters) -> CscdDescriptor {
    let pdt = match parameters {
        DeviceParameters::Block { .. } => 0,
        _ => 1,
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

fn disk(designator: &str) -> CscdDescriptor {
    cscd(
        designator,
        DeviceParameters::Block {
            pad: false,
            block_length: 512,
        },
    )
}

fn tape(designator: &str) -> CscdDescriptor {
    cscd(
        designator,
        DeviceParameters::Stream {
            pad: false,
            fixed: false,
            block_length: 0,
        },
    )
}

fn list(priority: u8, cscds: Vec<CscdDescriptor>, body: Segment) -> ParameterList {
    ParameterList {
        list_identifier: 1,
        sequential_striped: false,
        list_id_usage: ListIdUsage::NoListId,
        priority,
        cscds,
        segments: vec![SegmentDescriptor { cat: false, body }],
        inline_data: Vec::new(),
    }
}

fn block_to_block(blocks: u16) -> Segment {
    Segment::BlockToBlock {
        hold: false,
        dc: false,
        source: CscdId(0),
        destination: CscdId(1),
        blocks,
        source_lba: 0,
        destination_lba: 0,
    }
}

fn run(manager: &CopyManager, l: &ParameterList) {
    let r = manager.run_list(
        &Nexus::local(),
        l,
        None,
        &Abort::new(),
        Arc::new(Progress::default()),
    );
    assert_eq!(r, Ok(()), "the copy completes");
}

#[test]
fn block_to_block_through_the_ring_counts_reads_and_writes() {
    let rig = rig(UNLIMITED);
    let manager = rig.manager(Some(UNLIMITED));
    run(
        &manager,
        &list(1, vec![disk(SRC), disk(DST)], block_to_block(COPY_BLOCKS)),
    );
    assert_eq!(rig.granted(), [COPY_BYTES, COPY_BYTES, 0, 0, 0]);
    let copied = std::fs::read(&rig.dst_path).unwrap();
    assert!(copied[..COPY_BYTES as usize] == rig.pattern[..COPY_BYTES as usize]);
}

#[test]
fn block_to_stream_counts_the_disk_reads_and_the_tape_writes() {
    let rig = rig(UNLIMITED);
    let manager = rig.manager(None);
    let body = Segment::BlockToStream {
        hold: false,
        source: CscdId(0),
        destination: CscdId(1),
        stream_transfer_length: 65536,
        blocks: COPY_BLOCKS,
        lba: 0,
    };
    run(&manager, &list(1, vec![disk(SRC), tape(TAPE1)], body));
    assert_eq!(rig.granted(), [COPY_BYTES, 0, 0, 0, COPY_BYTES]);
}

#[test]
fn stream_to_block_counts_the_tape_reads_and_the_disk_writes() {
    let rig = rig(UNLIMITED);
    let manager = rig.manager(None);
    // The first record of tape0: 64 KiB, read as one transfer, written as 128 blocks.
    let body = Segment::StreamToBlock {
        hold: false,
        source: CscdId(0),
        destination: CscdId(1),
        stream_transfer_length: 65536,
        blocks: 128,
        lba: 0,
    };
    run(&manager, &list(1, vec![tape(TAPE0), disk(DST)], body));
    assert_eq!(rig.granted(), [0, 65536, 0, 65536, 0]);
}

#[test]
fn the_cdb_path_counts_its_reads_and_writes() {
    let rig = rig(UNLIMITED);
    let manager = rig.manager(Some(UNLIMITED));
    // To the disk without a fast path (WRITE(16)), then back from it (READ(16), the
    // read-ahead thread).
    run(
        &manager,
        &list(1, vec![disk(SRC), disk(CDB)], block_to_block(COPY_BLOCKS)),
    );
    assert_eq!(rig.granted(), [COPY_BYTES, 0, COPY_BYTES, 0, 0]);
    run(
        &manager,
        &list(1, vec![disk(CDB), disk(DST)], block_to_block(COPY_BLOCKS)),
    );
    assert_eq!(
        rig.granted(),
        [COPY_BYTES, COPY_BYTES, 2 * COPY_BYTES, 0, 0]
    );
    let copied = std::fs::read(&rig.cdb_path).unwrap();
    assert!(copied[..COPY_BYTES as usize] == rig.pattern[..COPY_BYTES as usize]);
}

#[test]
fn tape_image_copy_counts_each_record() {
    let rig = rig(UNLIMITED);
    let manager = rig.manager(None);
    let body = Segment::TapeImageCopy {
        source: CscdId(0),
        destination: CscdId(1),
        count: 1,
    };
    run(&manager, &list(1, vec![tape(TAPE0), tape(TAPE1)], body));
    let records = 65536 + 1000 + 4097;
    assert_eq!(rig.granted(), [0, 0, 0, records, records]);
}

#[test]
fn the_copy_limit_counts_the_bytes_read_from_the_source() {
    let rig = rig(UNLIMITED);
    // A copy limit of 4 MiB/s on a 6 MiB copy (a 1 MiB burst): at least 1.25 s, however
    // fast the disks.
    let manager = rig.manager(Some(4 * MIB));
    let start = Instant::now();
    run(
        &manager,
        &list(1, vec![disk(SRC), disk(DST)], block_to_block(COPY_BLOCKS)),
    );
    let took = start.elapsed();
    let least = Duration::from_secs_f64((COPY_BYTES - 1024 * 1024) as f64 / (4 * MIB) as f64);
    assert!(took >= least.mul_f64(0.98), "{took:?} < {least:?}");
    let copies = manager.registry().list();
    assert_eq!(copies[0].request.limit, Some(4 * MIB));
    assert_eq!(copies[0].request.priority, 1);
}

#[test]
fn a_device_limit_holds_a_copy_to_its_rate() {
    // 4 MiB/s on every device (a 1 MiB burst); the copy reads 6 MiB from src and writes
    // 6 MiB to dst, each against its own device's bucket: at least (6 - 1) / 4 s.
    let rig = rig(4 * MIB);
    let manager = rig.manager(None);
    let start = Instant::now();
    run(
        &manager,
        &list(1, vec![disk(SRC), disk(DST)], block_to_block(COPY_BLOCKS)),
    );
    let took = start.elapsed();
    let least = Duration::from_secs_f64((COPY_BYTES - MIB) as f64 / (4 * MIB) as f64);
    assert!(took >= least.mul_f64(0.98), "{took:?} < {least:?}");
    assert!(rig.limits.get("src").unwrap().waited() > Duration::ZERO);
}

#[test]
fn an_aborted_capped_copy_stops_while_it_waits() {
    // 64 KiB/s: the 6 MiB copy would take a minute and a half.
    let rig = rig(64 * 1024);
    let manager = rig.manager(None);
    let abort = Abort::new();
    let l = list(1, vec![disk(SRC), disk(DST)], block_to_block(COPY_BLOCKS));
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        let (manager, task, l) = (&manager, abort.clone(), &l);
        s.spawn(move || {
            let r = manager.run_list(
                &Nexus::local(),
                l,
                None,
                &task,
                Arc::new(Progress::default()),
            );
            tx.send(r).unwrap();
        });
        // Once it has read its first burst, it waits on the limit.
        let src = rig.limits.get("src").unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while src.granted() == 0 {
            assert!(Instant::now() < deadline, "the copy never started");
            std::thread::yield_now();
        }
        abort.abort();
        let sense = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("an aborted copy ends while it waits")
            .unwrap_err();
        assert_eq!(sense.key, SenseKey::COPY_ABORTED);
        assert_eq!(sense.asc, Asc::NO_ADDITIONAL_SENSE);
    });
    assert!(rig.limits.get("src").unwrap().granted() < COPY_BYTES);
}

/// `xcopy backup` of an 8 MiB disk to a tape, with `extra` on the tape's inventory entry
/// and `args` on the command line; returns how long it took.
fn cli_backup(tape_entry: &str, args: &[&str]) -> (std::process::Output, Duration) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("disk0.img"), vec![0x11u8; 8 << 20]).unwrap();
    let inventory = dir.path().join("inv.toml");
    std::fs::write(
        &inventory,
        format!(
            "[[device]]\nname = \"disk0\"\nkind = \"disk\"\npath = \"disk0.img\"\n\
             [[device]]\nname = \"tape0\"\nkind = \"tape\"\npath = \"tape0.tap\"\n{tape_entry}"
        ),
    )
    .unwrap();
    let start = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xcopy"))
        .args(["backup", "-q", "-d"])
        .arg(&inventory)
        .args(["--from", "disk0", "--to", "tape0"])
        .args(args)
        .env("XCOPYD_STATE_DIR", dir.path())
        .output()
        .unwrap();
    (out, start.elapsed())
}

#[test]
fn the_cli_applies_limit_and_the_inventory_limit() {
    // 8 MiB at 4 MiB/s with a 1 MiB burst: at least 1.75 s either way.
    let least = Duration::from_secs_f64(7.0 / 4.0).mul_f64(0.98);
    let (out, took) = cli_backup("", &["--limit", "4MiB"]);
    assert!(out.status.success(), "{out:?}");
    assert!(took >= least, "--limit: {took:?}");
    let (out, took) = cli_backup("limit = \"4MiB\"\n", &[]);
    assert!(out.status.success(), "{out:?}");
    assert!(took >= least, "the tape's limit: {took:?}");
    let (out, _) = cli_backup("", &["--limit", "0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least 1 byte per second"), "{stderr}");
}

#[test]
fn a_backup_of_several_segments_counts_the_reads_done_early_once() {
    // Consecutive disk-to-tape segments (2.4 MiB each: through the ring): the ring reads the next one's first chunks while
    // this one's last records are written; they count when read, and not again when used.
    let rig = rig(UNLIMITED);
    let manager = rig.manager(Some(UNLIMITED));
    let b2s = |lba: u64| Segment::BlockToStream {
        hold: false,
        source: CscdId(0),
        destination: CscdId(1),
        stream_transfer_length: 65536,
        blocks: 4992,
        lba,
    };
    let mut l = list(1, vec![disk(SRC), tape(TAPE1)], b2s(0));
    l.segments = [0, 4992, 9984]
        .map(|lba| SegmentDescriptor {
            cat: false,
            body: b2s(lba),
        })
        .to_vec();
    run(&manager, &l);
    let bytes = 3 * 4992 * 512;
    assert_eq!(rig.granted(), [bytes, 0, 0, 0, bytes]);
}
