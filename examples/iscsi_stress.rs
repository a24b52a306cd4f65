//! Stress run (issue #5): N initiators at once against an in-process xcopyd on loopback,
//! each issuing C EXTENDED COPY (02h, one segment of S MiB) through xcopyd's own iSCSI
//! initiator, with a RECEIVE COPY RESULTS (COPY STATUS) after each. Each initiator owns its
//! regions: two source slots with different patterns, copied alternately to one destination
//! slot; the destination is read back and checked every 25 copies and at the end.
//!
//! Prints: errors, p50/p99/max latency of EXTENDED COPY and of RECEIVE COPY RESULTS, the
//! process RSS (daemon + initiators) after the first and the last quarter of the copies.
//!
//!   cargo run --release --example iscsi_stress -- [SESSIONS [COPIES [MIB [DIR]]]]
//!   (defaults: 16 200 4 and a temp dir under the current directory)

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use xcopyd::daemon::{Daemon, DaemonConfig};
use xcopyd::iscsi::initiator::{LoginOptions, Session};
use xcopyd::scsi::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
use xcopyd::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
use xcopyd::scsi::{Designator, ListIdUsage, ParameterList};

const TARGET: &str = "iqn.2026-11.org.xcopyd:mover";
const SRC: &str = "naa.5001405a1b2c3d01";
const DST: &str = "naa.5001405a1b2c3d03";
const BS: u64 = 512;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (sessions, copies, mib) = (arg(0, 16), arg(1, 200), arg(2, 4));
    let base = args.get(3).map_or_else(|| ".".into(), |d| d.clone());
    let dir = tempfile::tempdir_in(&base).expect("temp dir");
    let blocks = mib * (1 << 20) / BS;
    let src_size = sessions * 2 * blocks * BS;
    let dst_size = sessions * blocks * BS;
    let config = DaemonConfig::parse(
        &format!(
            r#"
[iscsi]
listen = "127.0.0.1:0"
target = "{TARGET}"
[[device]]
name = "src"
kind = "disk"
path = "src.img"
size = "{}MiB"
designator = "{SRC}"
[[device]]
name = "dst"
kind = "disk"
path = "dst.img"
size = "{}MiB"
designator = "{DST}"
[[lun]]
device = "src"
[[lun]]
device = "dst"
"#,
            src_size >> 20,
            dst_size >> 20
        ),
        dir.path(),
    )
    .expect("config");
    let daemon = Daemon::start(config).expect("daemon");
    let addr = daemon.local_addr();
    println!(
        "stress: {sessions} initiators x {copies} EXTENDED COPY (02h, {mib} MiB) + RECEIVE COPY RESULTS, loopback, images in {}",
        Path::new(&base).display()
    );

    let done = AtomicU64::new(0);
    let total = sessions * copies;
    let xcopy_lat = Mutex::new(Vec::new());
    let rcr_lat = Mutex::new(Vec::new());
    let errors = AtomicU64::new(0);
    let rss_marks = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        // RSS at 25%, 50%, 75%, 100% of the copies.
        scope.spawn(|| {
            let mut next = 1;
            while next <= 4 {
                let d = done.load(Ordering::Relaxed);
                if d * 4 >= total * next {
                    rss_marks.lock().unwrap().push((next, rss_kib()));
                    next += 1;
                } else {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        for n in 0..sessions {
            let (done, xcopy_lat, rcr_lat, errors) = (&done, &xcopy_lat, &rcr_lat, &errors);
            scope.spawn(move || {
                let s = Session::connect(addr, &LoginOptions::new(TARGET)).expect("login");
                for lun in 0..2 {
                    // POWER ON, RESET once per LUN.
                    let _ = s.command(lun, &[0; 6], &[], 0);
                }
                let bytes = (blocks * BS) as usize;
                let slots = [n * 2 * blocks, (n * 2 + 1) * blocks];
                for (i, lba) in slots.iter().enumerate() {
                    let data = pattern(bytes, (n * 2 + i as u64) as u32);
                    if s.command(0, &write16(*lba, blocks as u32), &data, 0)
                        .map(|r| r.status)
                        .ok()
                        != Some(0)
                    {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let dst_lba = n * blocks;
                let (mut xl, mut rl) = (Vec::new(), Vec::new());
                for k in 0..copies {
                    let slot = (k % 2) as usize;
                    let id = (k % 250) as u8 + 1;
                    let list = copy_list(id, slots[slot], dst_lba, blocks as u16);
                    let t = Instant::now();
                    let r = s.command(0, &extended_copy_cdb(list.len()), &list, 0);
                    xl.push(t.elapsed());
                    if r.map(|r| r.status).ok() != Some(0) {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    let t = Instant::now();
                    let r = s.command(0, &copy_status_cdb(id), &[], 12);
                    rl.push(t.elapsed());
                    match r {
                        Ok(r) if r.status == 0 && r.data_in.get(4) == Some(&1) => {}
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if k % 25 == 24 || k + 1 == copies {
                        let want = pattern(bytes, (n * 2 + slot as u64) as u32);
                        let r = s.command(1, &read16(dst_lba, blocks as u32), &[], bytes);
                        if !r.is_ok_and(|r| r.status == 0 && r.data_in == want) {
                            eprintln!("initiator {n}: wrong destination data after copy {k}");
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                let _ = s.logout();
                xcopy_lat.lock().unwrap().extend(xl);
                rcr_lat.lock().unwrap().extend(rl);
            });
        }
    });
    let elapsed = started.elapsed();
    daemon.shutdown(Duration::from_secs(1));
    let moved = total * blocks * BS;
    println!(
        "{} copies, {} errors, {:.2} s, {:.0} MiB/s copied",
        total,
        errors.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        moved as f64 / elapsed.as_secs_f64() / (1 << 20) as f64
    );
    for (name, lat) in [
        ("EXTENDED COPY", xcopy_lat),
        ("RECEIVE COPY RESULTS", rcr_lat),
    ] {
        let mut v = lat.into_inner().unwrap();
        v.sort_unstable();
        let q = |p: f64| {
            v.get(((v.len() as f64 - 1.0) * p).round() as usize)
                .copied()
                .unwrap_or_default()
        };
        println!(
            "{name} latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} commands)",
            ms(q(0.50)),
            ms(q(0.99)),
            ms(q(1.0)),
            v.len()
        );
    }
    for (quarter, rss) in rss_marks.into_inner().unwrap() {
        println!("RSS after quarter {quarter}: {rss} KiB");
    }
    if errors.load(Ordering::Relaxed) > 0 {
        std::process::exit(1);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// VmRSS of this process (daemon and initiators) in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn disk(designator: &str) -> CscdDescriptor {
    CscdDescriptor {
        nul: false,
        peripheral_device_type: 0,
        relative_initiator_port: 0,
        identifier: CscdIdentifier::Identification {
            designator: Designator::parse_name(designator).expect("designator"),
        },
        parameters: DeviceParameters::Block {
            pad: false,
            block_length: BS as u32,
        },
    }
}

fn copy_list(id: u8, src_lba: u64, dst_lba: u64, blocks: u16) -> Vec<u8> {
    ParameterList {
        list_identifier: id,
        sequential_striped: false,
        list_id_usage: ListIdUsage::Hold,
        priority: 1,
        cscds: vec![disk(SRC), disk(DST)],
        segments: vec![SegmentDescriptor {
            cat: false,
            body: Segment::BlockToBlock {
                hold: false,
                dc: false,
                source: CscdId(0),
                destination: CscdId(1),
                blocks,
                source_lba: src_lba,
                destination_lba: dst_lba,
            },
        }],
        inline_data: Vec::new(),
    }
    .encode()
}

fn extended_copy_cdb(len: usize) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x83;
    c[10..14].copy_from_slice(&(len as u32).to_be_bytes());
    c
}

fn copy_status_cdb(id: u8) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x84;
    c[2] = id;
    c[10..14].copy_from_slice(&12u32.to_be_bytes());
    c
}

fn write16(lba: u64, blocks: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x8a;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&blocks.to_be_bytes());
    c
}

fn read16(lba: u64, blocks: u32) -> [u8; 16] {
    let mut c = write16(lba, blocks);
    c[0] = 0x88;
    c
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|n| (n.wrapping_mul(2654435761) >> 13) as u8 ^ seed.wrapping_mul(37) as u8)
        .collect()
}
