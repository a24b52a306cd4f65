//! The ring engine against the reference path: the same transfer through the ring (devices
//! with a fast path) and through CDBs with the read-ahead thread (the same devices, no fast
//! path) must leave the same bytes, the same counts, the same leftovers and the same failure.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use crate::copy::io::{Endpoint, StreamUnit};
use crate::copy::segment::{transfer, Held, Leftovers, Moved, Residue, Sink, Source};
use crate::device::disk::{DiskOptions, EmulatedDisk};
use crate::device::tape::{EmulatedTape, TapeConfig};
use crate::device::ScsiDevice;

use super::Engines;

/// The engines every test here borrows from (idle rings are reused, as in the daemon).
static ENGINES: LazyLock<Engines> = LazyLock::new(Engines::default);

const MIB: usize = 1 << 20;

fn disk(dir: &Path, name: &str, block: u32, bytes: usize, fill: bool) -> Arc<EmulatedDisk> {
    disk_with_depth(dir, name, block, bytes, fill, None)
}

fn disk_with_depth(
    dir: &Path,
    name: &str,
    block: u32,
    bytes: usize,
    fill: bool,
    queue_depth: Option<u16>,
) -> Arc<EmulatedDisk> {
    let path = dir.join(name);
    let data: Vec<u8> = if fill {
        (0..bytes)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0])
            .collect()
    } else {
        vec![0xee; bytes]
    };
    std::fs::write(&path, data).unwrap();
    let opts = DiskOptions {
        queue_depth,
        ..DiskOptions::new(path, block)
    };
    Arc::new(EmulatedDisk::open(name, &opts).unwrap())
}

/// A tape as a copy's stream destination (CSCD 2).
fn tape_endpoint(tape: EmulatedTape) -> Endpoint {
    Endpoint {
        device: Arc::new(tape),
        cscd: Some(2),
        block_length: 0,
        blocks: 0,
        backend: None,
        throttle: crate::copy::limit::Throttle::none(),
    }
}

/// Variable-length records of `len` bytes.
fn variable(len: u32) -> StreamUnit {
    StreamUnit {
        fixed: false,
        block_length: 0,
        transfer_length: len,
    }
}

fn endpoint(d: &Arc<EmulatedDisk>, fast: bool) -> Endpoint {
    let b = d.block_backend().unwrap();
    Endpoint {
        device: Arc::clone(d) as Arc<dyn ScsiDevice>,
        cscd: Some(1),
        block_length: b.block_size,
        blocks: b.blocks,
        backend: fast.then_some(b),
        throttle: crate::copy::limit::Throttle::none(),
    }
}

#[derive(Clone, Copy)]
struct Case {
    src_block: u32,
    dst_block: u32,
    src_bytes: usize,
    dst_bytes: usize,
    src_lba: u64,
    dst_lba: u64,
    process: u64,
    residue: Residue,
    hold: bool,
    /// Abort after this many abort checks.
    abort_after: Option<usize>,
    /// Leftover destination data carried in.
    carried: usize,
    /// The source's and the destination's `queue_depth`.
    depths: (Option<u16>, Option<u16>),
}

type Outcome = (
    Vec<u8>,
    Result<Moved, (Moved, String)>,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
);

fn run(case: Case, fast: bool) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let (sq, dq) = case.depths;
    let s = disk_with_depth(
        dir.path(),
        "s.img",
        case.src_block,
        case.src_bytes,
        true,
        sq,
    );
    let d = disk_with_depth(
        dir.path(),
        "d.img",
        case.dst_block,
        case.dst_bytes,
        false,
        dq,
    );
    let (se, de) = (endpoint(&s, fast), endpoint(&d, fast));
    let mut left = Leftovers {
        source: Vec::new(),
        destination: vec![0x5a; case.carried],
    };
    let mut held = Held {
        limit: 3 * MIB,
        ..Held::default()
    };
    let checks = AtomicUsize::new(0);
    let abort = || {
        let n = checks.fetch_add(1, Ordering::Relaxed);
        case.abort_after.is_some_and(|a| n >= a)
    };
    let r = transfer(
        &mut ENGINES.lease(),
        Source::Blocks {
            endpoint: &se,
            lba: case.src_lba,
        },
        Sink::Blocks {
            endpoint: &de,
            lba: case.dst_lba,
        },
        case.process,
        &mut left,
        case.residue,
        case.hold.then_some(&mut held),
        &abort,
    );
    let r = r.map_err(|e| (e.moved, format!("{:?}", e.failure)));
    drop((se, de, s, d));
    let bytes = std::fs::read(dir.path().join("d.img")).unwrap();
    (bytes, r, left.source, left.destination, held.data)
}

fn same(case: Case) -> Outcome {
    let before = super::SERVED.with(std::cell::Cell::get);
    let fast = run(case, true);
    assert_eq!(
        super::SERVED.with(std::cell::Cell::get),
        before + 1,
        "the ring served it"
    );
    let slow = run(case, false);
    assert_eq!(fast.1, slow.1, "outcome");
    assert!(fast.0 == slow.0, "destination bytes differ");
    assert_eq!((&fast.2, &fast.3), (&slow.2, &slow.3), "leftovers");
    assert!(fast.4 == slow.4, "held data differs");
    // A bug both paths share passes the comparison: check both against the standard too.
    if case.abort_after.is_none() {
        if let Some(want) = model(case) {
            assert!(fast.0 == want.0, "destination bytes differ from the model");
            match (&fast.1, &want.1) {
                (Err((moved, failure)), Err((want_moved, _))) => {
                    assert_eq!(moved, want_moved, "moved against the model");
                    let inexact = format!("{:?}", crate::scsi::Asc::UNEXPECTED_INEXACT_SEGMENT);
                    assert!(failure.contains(&inexact), "{failure}");
                }
                (got, want_result) => {
                    assert_eq!(got, want_result, "outcome against the model");
                    assert_eq!((&fast.2, &fast.3), (&want.2, &want.3), "leftovers, model");
                    assert!(fast.4 == want.4, "held data differs from the model");
                }
            }
        }
    }
    fast
}

/// One block-to-block transfer as SPC-4 5.17.7.2 and Table 116 describe it, written from
/// the standard and not from the engine: destination data is the carried destination data
/// then the `process` bytes from the source LBA; whole destination blocks are written from
/// the destination LBA; the source is read in whole blocks and the unprocessed rest of the
/// last one is leftover source data; then PAD/CAT settle the leftovers. None where a device
/// range ends inside the transfer (the failure point depends on the engine's write sizes).
fn model(case: Case) -> Option<Outcome> {
    let fill = |bytes: usize| -> Vec<u8> {
        (0..bytes)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0])
            .collect()
    };
    let (sb, db) = (case.src_block as usize, case.dst_block as usize);
    let src = fill(case.src_bytes);
    let mut dst = vec![0xeeu8; case.dst_bytes];
    let start = case.src_lba as usize * sb;
    let process = case.process as usize;
    let read_end = start + process.div_ceil(sb) * sb;
    if read_end > src.len() {
        return None;
    }
    let processed = &src[start..start + process];
    let mut left_source = src[start + process..read_end].to_vec();
    let mut data = vec![0x5au8; case.carried];
    data.extend_from_slice(processed);
    let whole = data.len() / db * db;
    let at = case.dst_lba as usize * db;
    let r = case.residue;
    let leftover = data.len() > whole;
    let pad = !r.cat && r.destination_pad && leftover;
    let end = at + if pad { whole + db } else { whole };
    if end > dst.len() {
        return None;
    }
    dst[at..at + whole].copy_from_slice(&data[..whole]);
    let mut moved = Moved {
        written: whole as u64,
        expected: whole as u64,
    };
    let mut left_destination = data[whole..].to_vec();
    let error = |dst: Vec<u8>| {
        let moved = Moved {
            written: whole as u64,
            expected: whole as u64,
        };
        Some((
            dst,
            Err((moved, String::new())),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        ))
    };
    if !r.cat {
        let any = leftover || !left_source.is_empty();
        match (r.source_pad, r.destination_pad) {
            (false, false) if any => return error(dst),
            (_, true) if leftover && r.exact_destination => return error(dst),
            (_, true) if leftover => {
                let mut block = std::mem::take(&mut left_destination);
                block.resize(db, 0);
                dst[at + whole..end].copy_from_slice(&block);
                moved.written += db as u64;
                moved.expected = moved.written;
            }
            (true, false) => left_destination.clear(),
            _ => {}
        }
    }
    let keep_source = r.cat || (!r.source_pad && r.destination_pad);
    if !keep_source || r.last {
        left_source.clear();
    }
    if r.cat && r.last {
        left_destination.clear();
    }
    let held = if case.hold {
        processed[..process.min(3 * MIB)].to_vec()
    } else {
        Vec::new()
    };
    Some((dst, Ok(moved), left_source, left_destination, held))
}

const PAD: Residue = Residue {
    cat: false,
    source_pad: true,
    destination_pad: true,
    last: false,
    exact_destination: false,
};

fn base() -> Case {
    Case {
        src_block: 512,
        dst_block: 512,
        src_bytes: 12 * MIB,
        dst_bytes: 12 * MIB,
        src_lba: 3,
        dst_lba: 5,
        process: (5 * MIB + 3 * 512) as u64,
        residue: PAD,
        hold: false,
        abort_after: None,
        carried: 0,
        depths: (None, None),
    }
}

#[test]
fn disk_to_disk_same_block_size() {
    let out = same(base());
    assert_eq!(out.1.unwrap().written, (5 * MIB + 3 * 512) as u64);
}

#[test]
fn disk_to_disk_large_copy_many_chunks_in_flight() {
    let out = same(Case {
        src_bytes: 70 * MIB,
        dst_bytes: 70 * MIB,
        process: (69 * MIB) as u64,
        ..base()
    });
    assert_eq!(out.1.unwrap().written, (69 * MIB) as u64);
}

/// A device's `queue_depth` caps what the ring keeps in flight on it (reads on the source,
/// writes on the destination) and the copy is the same; without one, reads go as deep as
/// the pool allows.
#[test]
fn queue_depth_caps_reads_and_writes_in_flight() {
    for (depths, cap) in [
        ((Some(1), Some(2)), (1, 2)),
        ((Some(3), Some(1)), (3, 1)),
        // Unset, reads take half the pool (the writes need the other half).
        (
            (None, None),
            (usize::from(crate::buf::BUFFERS) / 2, usize::MAX),
        ),
    ] {
        super::MAX_IN_FLIGHT.with(|m| m.set((0, 0)));
        let out = same(Case {
            src_bytes: 24 * MIB,
            dst_bytes: 24 * MIB,
            process: (20 * MIB) as u64,
            depths,
            ..base()
        });
        assert_eq!(out.1.unwrap().written, (20 * MIB) as u64);
        let (reads, writes) = super::MAX_IN_FLIGHT.with(std::cell::Cell::get);
        assert!(
            reads <= cap.0 && writes <= cap.1,
            "{depths:?}: {reads} {writes}"
        );
        assert!(writes >= 1, "{depths:?}");
        match depths.0 {
            // The first reads all go at once.
            Some(d) => assert_eq!(reads, usize::from(d), "{depths:?}"),
            None => assert_eq!(reads, cap.0, "{depths:?}"),
        }
    }
}

#[test]
fn reblocking_512_to_4096_with_a_padded_tail() {
    let _ = same(Case {
        dst_block: 4096,
        dst_lba: 2,
        ..base()
    });
}

#[test]
fn reblocking_4096_to_512_with_leftover_source() {
    let _ = same(Case {
        src_block: 4096,
        src_lba: 1,
        process: (5 * MIB + 700) as u64,
        residue: Residue { cat: true, ..PAD },
        ..base()
    });
}

/// The last chunk ends on a destination block but inside a source block: nothing is left
/// for the destination, and the rest of the source block is leftover source data.
#[test]
fn reblocking_4096_to_512_ending_on_a_destination_block() {
    let out = same(Case {
        src_block: 4096,
        src_lba: 1,
        process: (5 * MIB + 512) as u64,
        residue: Residue { cat: true, ..PAD },
        ..base()
    });
    assert_eq!(out.2.len(), 3584, "leftover source data");
}

#[test]
fn carried_destination_data_and_held_data_go_in_order() {
    let _ = same(Case {
        carried: 100,
        hold: true,
        residue: Residue { cat: true, ..PAD },
        ..base()
    });
    let _ = same(Case {
        hold: true,
        ..base()
    });
}

#[test]
fn destination_out_of_range_midway_counts_what_was_written() {
    let out = same(Case {
        dst_bytes: 3 * MIB + 4096,
        ..base()
    });
    assert!(out.1.is_err());
}

#[test]
fn source_out_of_range_midway() {
    let out = same(Case {
        src_bytes: 4 * MIB,
        ..base()
    });
    assert!(out.1.is_err());
}

#[test]
fn abort_stops_at_a_chunk_boundary() {
    let out = same(Case {
        abort_after: Some(3),
        ..base()
    });
    let (moved, _) = out.1.unwrap_err();
    assert_eq!(moved.written, (3 * MIB) as u64);
}

#[test]
fn inexact_segment_is_refused_the_same_way() {
    let _ = same(Case {
        dst_block: 4096,
        residue: Residue {
            source_pad: false,
            destination_pad: false,
            ..PAD
        },
        ..base()
    });
}

fn tape_run(fast: bool) -> (Vec<u8>, Result<Moved, String>) {
    let dir = tempfile::tempdir().unwrap();
    let s = disk(dir.path(), "s.img", 512, 8 * MIB, true);
    let path = dir.path().join("t.tap");
    let (tape, _) = EmulatedTape::open("t", &path, TapeConfig::default()).unwrap();
    let tape: Arc<dyn ScsiDevice> = Arc::new(tape);
    let te = Endpoint {
        device: tape,
        cscd: Some(2),
        block_length: 0,
        blocks: 0,
        backend: None,
        throttle: crate::copy::limit::Throttle::none(),
    };
    let se = endpoint(&s, fast);
    let unit = variable(256 * 1024);
    let mut left = Leftovers::default();
    let r = transfer(
        &mut ENGINES.lease(),
        Source::Blocks {
            endpoint: &se,
            lba: 7,
        },
        Sink::Stream {
            endpoint: &te,
            unit,
            tap: None,
        },
        (6 * MIB + 1000) as u64,
        &mut left,
        PAD,
        None,
        &|| false,
    )
    .map_err(|e| format!("{:?} {:?}", e.failure, e.moved));
    drop((se, te));
    (std::fs::read(&path).unwrap(), r)
}

#[test]
fn disk_to_tape_records_land_in_order() {
    let before = super::SERVED.with(std::cell::Cell::get);
    let (fast, slow) = (tape_run(true), tape_run(false));
    assert_eq!(
        super::SERVED.with(std::cell::Cell::get),
        before + 1,
        "the ring served it"
    );
    assert_eq!(fast.1, slow.1);
    assert!(fast.0 == slow.0, "tape images differ");
    assert!(fast.0.len() > 6 * MIB);
}

/// A tape without an early-warning zone fills up: the WRITE past its capacity ends CHECK
/// CONDITION, VOLUME OVERFLOW with EOM set, and that record is not on the tape, so it is
/// not counted written (only EOM with NO SENSE, early warning, means it was).
#[test]
fn the_record_that_overflows_the_volume_is_not_counted() {
    for fast in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let s = disk(dir.path(), "s.img", 512, 8 * MIB, true);
        let config = TapeConfig {
            capacity: (3 * MIB) as u64,
            early_warning: 0,
            ..TapeConfig::default()
        };
        let path = dir.path().join("t.tap");
        let (tape, _) = EmulatedTape::open("t", &path, config).unwrap();
        let te = tape_endpoint(tape);
        let se = endpoint(&s, fast);
        let unit = variable(256 * 1024);
        let sink = Sink::Stream {
            endpoint: &te,
            unit,
            tap: None,
        };
        let source = Source::Blocks {
            endpoint: &se,
            lba: 0,
        };
        let r = transfer(
            &mut ENGINES.lease(),
            source,
            sink,
            (6 * MIB) as u64,
            &mut Leftovers::default(),
            PAD,
            None,
            &|| false,
        );
        let e = r.expect_err("volume overflow");
        // 11 records of 256 KiB and their 8 bytes of framing fit in 3 MiB; the 12th does not.
        assert_eq!(e.moved.written, 11 * 256 * 1024, "fast path: {fast}");
        drop(te);
        let image = std::fs::read(&path).unwrap();
        assert_eq!(image.len(), 11 * (256 * 1024 + 8), "fast path: {fast}");
    }
}

/// The tap (NDMP's digest) sees exactly the bytes of the records that landed, in order: at
/// early warning, the records up to and including the one the tape took, not the rest of
/// the failing write's data.
#[test]
fn a_tap_sees_exactly_the_records_that_landed_before_end_of_medium() {
    for fast in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let s = disk(dir.path(), "s.img", 512, 8 * MIB, true);
        let config = TapeConfig {
            capacity: (3 * MIB) as u64,
            early_warning: (MIB / 2) as u64,
            ..TapeConfig::default()
        };
        let (tape, _) = EmulatedTape::open("t", dir.path().join("t.tap"), config).unwrap();
        let te = tape_endpoint(tape);
        let se = endpoint(&s, fast);
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let tap = {
            let seen = seen.clone();
            crate::copy::segment::Tap::new(move |b| seen.lock().unwrap().extend_from_slice(b))
        };
        let unit = variable(256 * 1024);
        let r = transfer(
            &mut ENGINES.lease(),
            Source::Blocks {
                endpoint: &se,
                lba: 7,
            },
            Sink::Stream {
                endpoint: &te,
                unit,
                tap: Some(&tap),
            },
            (6 * MIB) as u64,
            &mut Leftovers::default(),
            PAD,
            None,
            &|| false,
        );
        let written = r.expect_err("end of medium").moved.written as usize;
        // Early warning from 2.5 MiB of image: the tenth 256 KiB record (with its framing)
        // is the first past it, and it was written.
        assert_eq!(written, 10 * 256 * 1024, "fast path: {fast}");
        let source = std::fs::read(dir.path().join("s.img")).unwrap();
        let seen = seen.lock().unwrap();
        assert!(
            *seen == source[7 * 512..7 * 512 + written],
            "fast path {fast}: {} bytes tapped",
            seen.len()
        );
    }
}

/// A backup as the runner drives it: consecutive disk-to-tape segments, each told where the
/// next one reads. Each later segment must take over the reads done early for it, and the
/// tape must hold exactly what the reference path writes; a hint that turns out wrong (the
/// next transfer reads elsewhere) must be dropped, never used.
#[test]
fn next_segment_reads_done_early_are_used_and_wrong_ones_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let s = disk(dir.path(), "s.img", 512, 40 * MIB, true);
    // (lba, bytes) per segment; the fourth hint is a lie: the segment after it reads
    // elsewhere.
    let segments: [(u64, u64); 6] = [
        (0, 3 * MIB as u64),
        (6144, 5 * MIB as u64 + 512),
        (16_385, 4 * MIB as u64),
        (24_577, 3 * MIB as u64),
        (40_000, 5 * MIB as u64),
        (50_000, 3 * MIB as u64),
    ];
    let mut images = Vec::new();
    for fast in [true, false] {
        let path = dir.path().join(format!("t{fast}.tap"));
        let (tape, _) = EmulatedTape::open("t", &path, TapeConfig::default()).unwrap();
        let te = tape_endpoint(tape);
        let se = endpoint(&s, fast);
        let file = Arc::clone(&s.block_backend().unwrap().file);
        let unit = variable(512);
        let adopted = super::ADOPTED.with(std::cell::Cell::get);
        let mut lease = ENGINES.lease();
        let mut left = Leftovers::default();
        for (i, &(lba, bytes)) in segments.iter().enumerate() {
            let next = segments.get(i + 1).map(|&(l, b)| super::NextRead {
                file: Arc::clone(&file),
                offset: if i == 3 { 12_345 * 512 } else { l * 512 },
                bytes: b,
                in_unit: 512,
            });
            lease.expect_next(next);
            transfer(
                &mut lease,
                Source::Blocks { endpoint: &se, lba },
                Sink::Stream {
                    endpoint: &te,
                    unit,
                    tap: None,
                },
                bytes,
                &mut left,
                PAD,
                None,
                &|| false,
            )
            .unwrap();
        }
        lease.forget_prefetch();
        if fast {
            // Every segment after the first but the one after the lie.
            assert_eq!(super::ADOPTED.with(std::cell::Cell::get), adopted + 4);
        }
        drop(te);
        images.push(std::fs::read(&path).unwrap());
    }
    let total: u64 = segments.iter().map(|&(_, b)| b).sum();
    assert_eq!(images[0].len() as u64, total / 512 * 520);
    assert!(images[0] == images[1], "tape images differ");
}

#[test]
fn ring_writes_wait_for_a_compare_and_write_holding_their_range() {
    // A COMPARE AND WRITE holds LBA 6000 of the destination alone; the ring's copy of 8 MiB
    // onto it must not write that block's chunk until it lets go.
    let dir = tempfile::tempdir().unwrap();
    let s = disk(dir.path(), "s.img", 512, 8 * MIB, true);
    let d = disk(dir.path(), "d.img", 512, 8 * MIB, false);
    let lock = d.block_backend().unwrap().writes;
    let held = lock.exclusive(6000, 1);
    let (se, de) = (endpoint(&s, true), endpoint(&d, true));
    let before = super::SERVED.with(std::cell::Cell::get);
    let copy = std::thread::spawn(move || {
        let mut left = Leftovers::default();
        let r = transfer(
            &mut ENGINES.lease(),
            Source::Blocks {
                endpoint: &se,
                lba: 0,
            },
            Sink::Blocks {
                endpoint: &de,
                lba: 0,
            },
            (8 * MIB) as u64,
            &mut left,
            PAD,
            None,
            &|| false,
        );
        (
            r.map(|m| m.written).map_err(|e| format!("{:?}", e.failure)),
            super::SERVED.with(std::cell::Cell::get),
        )
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while lock.waiting() == 0 {
        assert!(!copy.is_finished(), "the copy wrote past a held range");
        assert!(
            std::time::Instant::now() < deadline,
            "the copy never reached the range"
        );
        std::thread::yield_now();
    }
    // The chunk over block 6000 is not written while it is held.
    let image = std::fs::read(dir.path().join("d.img")).unwrap();
    assert_eq!(image[6000 * 512..6001 * 512], [0xee; 512]);
    drop(held);
    let (written, served) = copy.join().unwrap();
    assert_eq!(written, Ok((8 * MIB) as u64));
    assert_eq!(
        served, 1,
        "the ring served it (thread-local count: {before} here)"
    );
    assert_eq!(lock.held(), 0, "every write's range let go");
    drop(d);
    let image = std::fs::read(dir.path().join("d.img")).unwrap();
    assert!(image == std::fs::read(dir.path().join("s.img")).unwrap());
}

#[test]
fn a_list_s_engine_is_given_back_for_the_next_and_a_new_pool_size_replaces_the_idle_ones() {
    let engines = Engines::new(8).unwrap();
    let mut leases: Vec<_> = (0..crate::buf::IDLE_KEPT + 2)
        .map(|_| engines.lease())
        .collect();
    for lease in &mut leases {
        assert_eq!(lease.engine().expect("io_uring").ring.buffers(), 8);
    }
    assert_eq!(engines.rings().idle_count(), 0, "each list has its own");
    drop(leases);
    assert_eq!(
        engines.rings().idle_count(),
        crate::buf::IDLE_KEPT,
        "the rest are freed"
    );
    {
        let mut lease = engines.lease();
        assert!(lease.engine().is_some());
        assert_eq!(
            engines.rings().idle_count(),
            crate::buf::IDLE_KEPT - 1,
            "an idle one was taken"
        );
        // A lease that never needed a ring takes none.
        drop(engines.lease());
        assert_eq!(engines.rings().idle_count(), crate::buf::IDLE_KEPT - 1);
    }
    assert_eq!(engines.rings().idle_count(), crate::buf::IDLE_KEPT);
    assert!(engines.set_buffers(3).is_err());
    assert_eq!(engines.buffers(), 8);
    engines.set_buffers(4).unwrap();
    assert_eq!(
        engines.rings().idle_count(),
        0,
        "idle pools of the old size go"
    );
    let mut lease = engines.lease();
    assert_eq!(lease.engine().unwrap().ring.buffers(), 4);
}

/// An image in memory (tmpfs) is read on the copy's own thread, not through the ring (whose
/// kernel worker would make every tmpfs read, into another core's cache), whatever the
/// segment's length, and the destination gets exactly the source's bytes.
#[test]
fn a_long_segment_from_an_image_in_memory_is_read_without_the_ring() {
    let dir = tempfile::tempdir_in("/dev/shm").expect("/dev/shm (tmpfs)");
    let s = disk(dir.path(), "s.img", 512, 6 * MIB, true);
    let d = disk(dir.path(), "d.img", 512, 6 * MIB, false);
    assert!(s.block_backend().unwrap().in_memory);
    let (se, de) = (endpoint(&s, true), endpoint(&d, true));
    let process = 5 * MIB + 512;
    let before = super::SERVED.with(std::cell::Cell::get);
    let mut left = Leftovers::default();
    let moved = transfer(
        &mut ENGINES.lease(),
        Source::Blocks {
            endpoint: &se,
            lba: 3,
        },
        Sink::Blocks {
            endpoint: &de,
            lba: 1,
        },
        process as u64,
        &mut left,
        Residue {
            cat: false,
            source_pad: false,
            destination_pad: false,
            last: true,
            exact_destination: false,
        },
        None,
        &|| false,
    )
    .map_err(|e| e.failure)
    .unwrap();
    assert_eq!(super::SERVED.with(std::cell::Cell::get), before, "no ring");
    assert_eq!(
        moved,
        Moved {
            written: process as u64,
            expected: process as u64
        }
    );
    drop((se, de, s, d));
    let src = std::fs::read(dir.path().join("s.img")).unwrap();
    let dst = std::fs::read(dir.path().join("d.img")).unwrap();
    assert!(dst[512..512 + process] == src[3 * 512..3 * 512 + process]);
    assert!(dst[..512]
        .iter()
        .chain(&dst[512 + process..])
        .all(|&b| b == 0xee));
}

/// The ring pays each read and each write to the limits of the device it goes to: every
/// byte read from the source and written to the destination is granted by that device's
/// limiter, none twice (a limit high enough that nothing waits: no timing here).
#[test]
fn ring_reads_and_writes_are_paid_to_their_devices_limits() {
    use crate::copy::limit::Limiter;
    let dir = tempfile::tempdir().unwrap();
    let s = disk_with_depth(dir.path(), "s.img", 512, 12 * MIB, true, None);
    let d = disk_with_depth(dir.path(), "d.img", 512, 12 * MIB, false, None);
    let (read_limit, write_limit) = (
        Arc::new(Limiter::new("s", 1 << 40)),
        Arc::new(Limiter::new("d", 1 << 40)),
    );
    let mut se = endpoint(&s, true);
    se.throttle.device = Some(Arc::clone(&read_limit));
    let mut de = endpoint(&d, true);
    de.throttle.device = Some(Arc::clone(&write_limit));
    let bytes = (5 * MIB + 3 * 512) as u64;
    let before = super::SERVED.with(std::cell::Cell::get);
    let moved = transfer(
        &mut ENGINES.lease(),
        Source::Blocks {
            endpoint: &se,
            lba: 3,
        },
        Sink::Blocks {
            endpoint: &de,
            lba: 5,
        },
        bytes,
        &mut Leftovers::default(),
        PAD,
        None,
        &|| false,
    )
    .unwrap();
    assert_eq!(
        super::SERVED.with(std::cell::Cell::get),
        before + 1,
        "the ring served it"
    );
    assert_eq!(moved.written, bytes);
    assert_eq!(
        (read_limit.granted(), write_limit.granted()),
        (bytes, bytes)
    );
}

/// The ring serves an endpoint only where its reads are exactly the endpoint's blocks and,
/// on an O_DIRECT file, 512-byte aligned in memory, offset and length; anything else goes
/// the CDB way.
#[test]
fn the_ring_serves_only_whole_aligned_blocks_of_the_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), "d.img", 512, 64 * 1024, false);
    let base = endpoint(&d, true);
    // (backend block size, endpoint block length, O_DIRECT, offset of LBA 0, served)
    let cases = [
        (512, 512, true, 0, true),
        (4096, 4096, true, 4096, true),
        (512, 4096, true, 0, false),
        (0, 0, false, 0, false),
        (512, 512, true, 100, false),
        (520, 520, true, 0, false),
        (520, 520, false, 100, true),
    ];
    for (block_size, block_length, direct, offset, served) in cases {
        let mut b = base.backend.clone().unwrap();
        (b.block_size, b.direct, b.offset) = (block_size, direct, offset);
        let e = Endpoint {
            block_length,
            backend: Some(b),
            ..endpoint(&d, true)
        };
        assert_eq!(
            super::usable(&e).is_some(),
            served,
            "{block_size}-byte blocks, {block_length}-byte endpoint, direct {direct}, offset {offset}"
        );
    }
}

/// Each job's generation differs from the last one's and stays inside the bits a tag gives
/// it, wrapping to 0: a read done early for a segment that did not use it is then never
/// taken for one of the next job's.
#[test]
fn generations_differ_and_wrap_inside_the_tag() {
    let mut e = super::Engine {
        ring: crate::sys::uring::Ring::new(4, 4096, 2).expect("io_uring"),
        generation: super::GENERATION_MASK - 1,
        prefetch: None,
    };
    assert_eq!(e.next_generation(), super::GENERATION_MASK);
    assert_eq!(e.next_generation(), 0);
    assert_eq!(e.next_generation(), 1);
    let t = super::tag(super::GENERATION_MASK, 5, true);
    assert_eq!(super::untag(t), (super::GENERATION_MASK, 5, true));
}

/// The first 3 MiB of `se` onto `de`, through the ring where it serves.
fn first_3_mib(
    se: &Endpoint,
    de: &Endpoint,
) -> Result<Moved, crate::copy::segment::SegmentFailure> {
    transfer(
        &mut ENGINES.lease(),
        Source::Blocks {
            endpoint: se,
            lba: 0,
        },
        Sink::Blocks {
            endpoint: de,
            lba: 0,
        },
        (3 * MIB) as u64,
        &mut Leftovers::default(),
        PAD,
        None,
        &|| false,
    )
}

/// A source image cut short under the copy (another process truncating it): the read that
/// reaches the new end returns part of its chunk, the rest is asked for again from where
/// that part ended and is not there, and the copy stops at that chunk with what came
/// before it written, never a chunk filled from elsewhere.
#[test]
fn a_source_cut_short_under_the_copy_stops_at_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let s = disk(dir.path(), "s.img", 512, 4 * MIB, true);
    let d = disk(dir.path(), "d.img", 512, 4 * MIB, false);
    let (se, de) = (endpoint(&s, true), endpoint(&d, true));
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("s.img"))
        .unwrap()
        .set_len((2 * MIB + 4096) as u64)
        .unwrap();
    let before = super::SERVED.with(std::cell::Cell::get);
    let r = first_3_mib(&se, &de);
    assert_eq!(
        super::SERVED.with(std::cell::Cell::get),
        before + 1,
        "the ring served it"
    );
    let e = r.unwrap_err();
    assert_eq!(e.moved.written, (2 * MIB) as u64, "{e:?}");
}

/// The chunk of a copy straight to a disk is a whole number of both devices' blocks.
#[test]
fn lcm_of_the_two_units() {
    assert_eq!(super::lcm(512, 4096), 4096);
    assert_eq!(super::lcm(4096, 512), 4096);
    assert_eq!(super::lcm(6, 4), 12);
    assert_eq!(super::lcm(0, 512), 0);
}

const SHORT_WRITE_DIR: &str = "XCOPYD_TEST_SHORT_WRITE_DIR";

/// A destination that takes only part of a write (here past the file-size limit; a full
/// file system alike): the rest is asked for again from where the part ended, is refused
/// (EFBIG), and the copy fails at that chunk with what came before it written; never the
/// rest written somewhere else and the chunk counted done. Run in a child: the test re-run
/// under `prlimit --fsize`, SIGXFSZ ignored (that carries through exec).
#[test]
fn a_destination_that_takes_part_of_a_write_fails_the_copy_there() {
    if let Some(dir) = std::env::var_os(SHORT_WRITE_DIR) {
        return short_write_child(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    drop(disk(dir.path(), "s.img", 512, 4 * MIB, true));
    drop(disk(dir.path(), "d.img", 512, 4 * MIB, false));
    let limit = (2 * MIB + 4096).to_string();
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            "trap '' XFSZ; exec prlimit --fsize=\"$0\" -- \"$@\"",
            &limit,
        ])
        .arg(exe)
        .args([
            "copy::engine::tests::a_destination_that_takes_part_of_a_write_fails_the_copy_there",
            "--exact",
            "--nocapture",
        ])
        .env(SHORT_WRITE_DIR, dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("child: failed at 2097152"), "{text}");
    let bytes = std::fs::read(dir.path().join("d.img")).unwrap();
    let source = std::fs::read(dir.path().join("s.img")).unwrap();
    assert!(
        bytes[..2 * MIB] == source[..2 * MIB],
        "what came before is written"
    );
}

fn short_write_child(dir: &Path) {
    let open = |name: &str| -> Arc<EmulatedDisk> {
        Arc::new(EmulatedDisk::open(name, &DiskOptions::new(dir.join(name), 512)).unwrap())
    };
    let (s, d) = (open("s.img"), open("d.img"));
    let (se, de) = (endpoint(&s, true), endpoint(&d, true));
    let r = first_3_mib(&se, &de);
    let e = r.unwrap_err();
    println!("child: failed at {}", e.moved.written);
}

/// A hint naming another file than the running segment's source is not read early: the
/// ring's source slot holds this segment's file, and reading the next one's offsets from
/// it would hand the next segment another disk's bytes. (Segments of 3 MiB: shorter ones
/// are read in one go, without the ring.)
#[test]
fn reads_done_early_come_only_from_the_file_the_next_segment_reads() {
    let dir = tempfile::tempdir().unwrap();
    let a = disk(dir.path(), "a.img", 512, 4 * MIB, true);
    let b = disk(dir.path(), "b.img", 512, 4 * MIB, false);
    let path = dir.path().join("t.tap");
    let (tape, _) = EmulatedTape::open("t", &path, TapeConfig::default()).unwrap();
    let te = tape_endpoint(tape);
    let unit = variable(512);
    let (ae, be) = (endpoint(&a, true), endpoint(&b, true));
    let adopted = super::ADOPTED.with(std::cell::Cell::get);
    let mut lease = ENGINES.lease();
    let mut left = Leftovers::default();
    for (source, next) in [(&ae, Some(&b)), (&be, None)] {
        lease.expect_next(next.map(|d| super::NextRead {
            file: Arc::clone(&d.block_backend().unwrap().file),
            offset: 0,
            bytes: (3 * MIB) as u64,
            in_unit: 512,
        }));
        let sink = Sink::Stream {
            endpoint: &te,
            unit,
            tap: None,
        };
        let source = Source::Blocks {
            endpoint: source,
            lba: 0,
        };
        let moved = (3 * MIB) as u64;
        transfer(
            &mut lease,
            source,
            sink,
            moved,
            &mut left,
            PAD,
            None,
            &|| false,
        )
        .unwrap();
    }
    lease.forget_prefetch();
    assert_eq!(super::ADOPTED.with(std::cell::Cell::get), adopted);
    drop(te);
    let image = std::fs::read(&path).unwrap();
    let records: Vec<&[u8]> = image.chunks(520).map(|r| &r[4..516]).collect();
    assert_eq!(records.len(), 12_288);
    assert!(
        records[6144..].iter().all(|r| r.iter().all(|&b| b == 0xee)),
        "b.img's bytes"
    );
}
