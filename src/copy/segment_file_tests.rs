//! A disk in memory copied to a tape in memory by the kernel (`copy_file_range`, see
//! [`super::Flow::push_from_file`]): the same records on the medium, the same counts and
//! the same failures as when the bytes are read into a buffer and written from it, which
//! the rest of the suite checks against the standard; and the cases that need the bytes
//! (held data, a tap) get them.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use super::{transfer, Held, Leftovers, Residue, Sink, Source, Tap};
use crate::copy::engine::Engines;
use crate::copy::io::{Endpoint, StreamUnit};
use crate::device::disk::{DiskOptions, EmulatedDisk};
use crate::device::tape::{EmulatedTape, TapeConfig};
use crate::device::{Completion, DataDirection, DeviceError, FileSpan, ScsiDevice};

static ENGINES: LazyLock<Engines> = LazyLock::new(Engines::default);

const MIB: usize = 1 << 20;
const RECORD: u32 = 256 * 1024;

/// A tape that counts the writes it was offered from a file.
struct Counting {
    tape: EmulatedTape,
    from_file: AtomicUsize,
}

impl ScsiDevice for Counting {
    fn execute(&self, cdb: &[u8], data: DataDirection<'_>) -> Result<Completion, DeviceError> {
        self.tape.execute(cdb, data)
    }
    fn name(&self) -> &str {
        self.tape.name()
    }
    fn write_transfers(
        &self,
        cdb: &[u8],
        data: &[&[u8]],
        transfer: usize,
    ) -> (usize, Option<Result<Completion, DeviceError>>) {
        self.tape.write_transfers(cdb, data, transfer)
    }
    fn write_transfers_from_file(
        &self,
        cdb: &[u8],
        span: FileSpan<'_>,
        transfer: usize,
    ) -> Option<(usize, Option<Result<Completion, DeviceError>>)> {
        let r = self.tape.write_transfers_from_file(cdb, span, transfer);
        if r.is_some() {
            self.from_file.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
}

/// How the run is set up.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Way {
    /// The disk hands out its page-cache descriptor.
    Kernel,
    /// The same disk without it: every byte read into a buffer.
    Buffer,
    /// The descriptor, but the segment holds its data (0Bh-0Fh).
    Held,
    /// The descriptor, but a tap sees the records (NDMP's digest).
    Tapped,
    /// The descriptor, but 4 KiB of destination data left over from an earlier segment
    /// goes first.
    Pending,
    /// The descriptor, but the source's reads are paced by a bandwidth limit.
    SourceLimited,
    /// The descriptor, but the tape's writes are paced by a bandwidth limit.
    DestinationLimited,
}

/// A limit far above what the test moves: it never waits, but it applies.
fn limited(on: bool) -> crate::copy::limit::Throttle {
    crate::copy::limit::Throttle {
        device: on.then(|| Arc::new(crate::copy::limit::Limiter::new("test", 1 << 40))),
        ..crate::copy::limit::Throttle::none()
    }
}

struct Outcome {
    image: Vec<u8>,
    result: String,
    from_file: usize,
    seen: Vec<u8>,
}

/// Copies `process` bytes from LBA 0 of an 8 MiB disk image (truncated to `source_bytes`
/// after it is opened) to a tape with `config`, both in /dev/shm.
fn run(way: Way, config: TapeConfig, process: u64, source_bytes: u64) -> Outcome {
    let dir = tempfile::tempdir_in("/dev/shm").expect("/dev/shm (tmpfs)");
    let disk = open_disk(dir.path());
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("s.img"))
        .and_then(|f| f.set_len(source_bytes))
        .unwrap();
    let mut backend = disk.block_backend().unwrap();
    assert!(backend.in_memory && backend.page_cache.is_some());
    if way == Way::Buffer {
        backend.page_cache = None;
    }
    let source = Endpoint {
        device: Arc::clone(&disk) as Arc<dyn ScsiDevice>,
        cscd: Some(1),
        block_length: backend.block_size,
        blocks: backend.blocks,
        backend: Some(backend),
        throttle: limited(way == Way::SourceLimited),
    };
    let path = dir.path().join("t.tap");
    let (tape, _) = EmulatedTape::open("t", &path, config).unwrap();
    let counting = Arc::new(Counting {
        tape,
        from_file: AtomicUsize::new(0),
    });
    let destination = Endpoint {
        device: Arc::clone(&counting) as Arc<dyn ScsiDevice>,
        cscd: Some(2),
        block_length: 0,
        blocks: 0,
        backend: None,
        throttle: limited(way == Way::DestinationLimited),
    };
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tap = {
        let seen = Arc::clone(&seen);
        Tap::new(move |b| seen.lock().unwrap().extend_from_slice(b))
    };
    let mut held = Held {
        limit: 16 * MIB,
        ..Held::default()
    };
    let result = transfer(
        &mut ENGINES.lease(),
        Source::Blocks {
            endpoint: &source,
            lba: 0,
        },
        Sink::Stream {
            endpoint: &destination,
            unit: StreamUnit {
                fixed: false,
                block_length: 0,
                transfer_length: RECORD,
            },
            tap: (way == Way::Tapped).then_some(&tap),
        },
        process,
        &mut Leftovers {
            destination: if way == Way::Pending {
                vec![0xab; 4096]
            } else {
                Vec::new()
            },
            ..Leftovers::default()
        },
        Residue {
            cat: false,
            source_pad: false,
            destination_pad: false,
            last: true,
            exact_destination: false,
        },
        (way == Way::Held).then_some(&mut held),
        &|| false,
    );
    let result = format!("{result:?}");
    let from_file = counting.from_file.load(Ordering::Relaxed);
    drop((source, destination, counting));
    let mut seen = std::mem::take(&mut *seen.lock().unwrap());
    if way == Way::Held {
        seen = held.data;
    }
    Outcome {
        image: std::fs::read(&path).unwrap(),
        result,
        from_file,
        seen,
    }
}

fn open_disk(dir: &Path) -> Arc<EmulatedDisk> {
    let path = dir.join("s.img");
    std::fs::write(&path, pattern(8 * MIB)).unwrap();
    Arc::new(EmulatedDisk::open("s", &DiskOptions::new(path, 512)).unwrap())
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[1])
        .collect()
}

/// The SIMH image of `data` as records of `len` bytes (SIMH, shared/DESIGN.md).
fn simh(data: &[u8], len: usize) -> Vec<u8> {
    let mut image = Vec::new();
    for r in data.chunks(len) {
        let word = (r.len() as u32).to_le_bytes();
        image.extend_from_slice(&word);
        image.extend_from_slice(r);
        image.extend_from_slice(&word);
    }
    image
}

/// The whole disk, its last chunk ending where its file does.
#[test]
fn a_disk_in_memory_goes_to_a_tape_in_memory_through_the_kernel() {
    let process = 8 * MIB as u64;
    let kernel = run(Way::Kernel, TapeConfig::default(), process, 8 * MIB as u64);
    assert_eq!(kernel.from_file, 8, "one kernel copy per 1 MiB chunk");
    assert!(kernel
        .result
        .starts_with("Ok(Moved { written: 8388608, expected: 8388608"));
    assert!(
        kernel.image == simh(&pattern(8 * MIB), RECORD as usize),
        "the tape holds the disk as 256 KiB records"
    );
    let buffer = run(Way::Buffer, TapeConfig::default(), process, 8 * MIB as u64);
    assert_eq!(buffer.from_file, 0);
    assert_eq!(buffer.result, kernel.result);
    assert!(buffer.image == kernel.image);
}

/// A segment ending inside a block: the chunks before it go through the kernel, the last
/// one, whose last block holds bytes past the segment, through a buffer (the kernel would
/// copy whole blocks, here exactly one more record's worth): the same records, counts and
/// end (26/0A: leftovers and no PAD) as the buffer way.
#[test]
fn a_segment_ending_inside_a_block_reads_its_last_chunk() {
    for process in [3 * MIB + 256 * 1024 - 100, 3 * MIB + 256 * 1024 + 100] {
        let process = process as u64;
        let kernel = run(Way::Kernel, TapeConfig::default(), process, 8 * MIB as u64);
        assert_eq!(kernel.from_file, 3, "the three whole chunks");
        let buffer = run(Way::Buffer, TapeConfig::default(), process, 8 * MIB as u64);
        assert_eq!(kernel.result, buffer.result);
        let whole = process / u64::from(RECORD) * u64::from(RECORD);
        let written = format!("written: {whole}");
        assert!(kernel.result.contains(&written), "{}", kernel.result);
        assert!(kernel.result.contains("0x260a"), "{}", kernel.result);
        assert!(kernel.image == simh(&pattern(whole as usize), RECORD as usize));
        assert!(kernel.image == buffer.image);
    }
}

/// Held data and a tap need the bytes: those segments read them, and see every one.
#[test]
fn held_data_and_a_tap_get_the_bytes() {
    let process = 3 * MIB as u64;
    for way in [Way::Held, Way::Tapped] {
        let o = run(way, TapeConfig::default(), process, 8 * MIB as u64);
        assert_eq!(o.from_file, 0, "{way:?}");
        assert!(o.seen == pattern(3 * MIB), "{way:?} saw other bytes");
        assert!(o.image == simh(&pattern(3 * MIB), RECORD as usize));
    }
}

/// Destination data left over from an earlier segment is written first, so the records
/// that follow are made of it and the disk's bytes together: they go through a buffer.
#[test]
fn leftover_destination_data_goes_first() {
    let o = run(
        Way::Pending,
        TapeConfig::default(),
        3 * MIB as u64,
        8 * MIB as u64,
    );
    assert_eq!(o.from_file, 0);
    let mut data = vec![0xab; 4096];
    data.extend_from_slice(&pattern(3 * MIB));
    // 3 MiB of whole records; the last 4 KiB are left over at the end of the list.
    assert!(o.image == simh(&data[..3 * MIB], RECORD as usize));
}

/// A bandwidth limit on either side paces every read and write: such copies read their
/// bytes, whichever side is limited, and land the same records.
#[test]
fn a_limited_copy_reads_its_bytes() {
    let process = 3 * MIB as u64;
    for way in [Way::SourceLimited, Way::DestinationLimited] {
        let o = run(way, TapeConfig::default(), process, 8 * MIB as u64);
        assert_eq!(o.from_file, 0, "{way:?}");
        assert!(
            o.result.starts_with("Ok(Moved { written: 3145728"),
            "{way:?}"
        );
        assert!(o.image == simh(&pattern(3 * MIB), RECORD as usize));
    }
}

/// Past early warning the records go one at a time, each with its sense, as from a
/// buffer: the same records on the tape, the same count and the same failure.
#[test]
fn at_early_warning_the_kernel_copy_gives_way_to_the_records_own_sense() {
    let config = TapeConfig {
        capacity: (3 * MIB) as u64,
        early_warning: (MIB + MIB / 2) as u64,
        ..TapeConfig::default()
    };
    let process = 6 * MIB as u64;
    let kernel = run(Way::Kernel, config.clone(), process, 8 * MIB as u64);
    let buffer = run(Way::Buffer, config, process, 8 * MIB as u64);
    assert_eq!(
        kernel.from_file, 1,
        "only the first chunk ends before early warning"
    );
    assert_eq!(kernel.result, buffer.result);
    assert!(kernel.result.starts_with("Err("), "{}", kernel.result);
    assert!(kernel.image == buffer.image);
}

/// A disk image cut short under the disk fails the source (MEDIUM ERROR, UNRECOVERED READ
/// ERROR from the disk), not the tape, where its bytes end, as when they are read: here in
/// the middle of the fourth 1 MiB chunk, which is not written.
#[test]
fn a_source_cut_short_under_the_copy_fails_the_source() {
    let process = 6 * MIB as u64;
    let cut = (3 * MIB + MIB / 2) as u64;
    let kernel = run(Way::Kernel, TapeConfig::default(), process, cut);
    let buffer = run(Way::Buffer, TapeConfig::default(), process, cut);
    assert_eq!(kernel.from_file, 3);
    assert_eq!(kernel.result, buffer.result);
    assert!(kernel.result.contains("Source"), "{}", kernel.result);
    assert!(kernel.image == simh(&pattern(3 * MIB), RECORD as usize));
    assert!(buffer.image == kernel.image);
}
