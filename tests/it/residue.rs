//! PAD and CAT, every row of SPC-4 Table 116 (Part B 3.3), with leftover source data,
//! leftover destination data and both at once, each followed by a segment that shows what
//! was kept: the copy manager over emulated disks and tapes against a model written here
//! from the standard (the table, and the data flow of SPC-4 5.17.7.2), not from the engine.
//!
//! Four shapes of segment make the leftovers:
//! - 00h disk -> tape, 3 blocks into 1024-byte records: 512 bytes of leftover destination data;
//! - 01h tape -> disk, 1024-byte records into 1 block: 512 bytes of leftover source data;
//! - 03h tape -> tape, 1500 bytes read in 1024-byte records and written in 1000-byte records:
//!   548 bytes of leftover source data and 500 of leftover destination data;
//! - 09h tape -> a byte range of a disk, 1500 bytes from 1024-byte records: 548 bytes of
//!   leftover source data.
//!
//! Tapes are parsed and written as SIMH .tap here, independently of the tape module.

use crate::common::list::{decoded_rcr, decoded_xcopy};
use std::path::Path;
use std::sync::Arc;

use xcopyd::command::{Abort, Nexus};
use xcopyd::copy::manager::CopyManager;
use xcopyd::copy::CopyService;
use xcopyd::device::disk::{DiskOptions, EmulatedDisk};
use xcopyd::device::inventory::{DeviceConfig, DeviceKind, Inventory};
use xcopyd::device::tape::{EmulatedTape, TapeConfig};
use xcopyd::device::ScsiDevice;
use xcopyd::scsi::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
use xcopyd::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
use xcopyd::scsi::{Designator, Limits, ListIdUsage, ParameterList, Status};

const BL: usize = 512;
const BLOCKS: usize = 64;
const RECORD: usize = 1024;
const RECORDS: usize = 8;
/// Bytes of inline data in every list.
const INLINE: usize = 4096;
/// d0 (source disk), d1 (destination disk), t1 (source tape), t2 (destination tape).
const NAMES: [&str; 4] = [
    "naa.5001405a1b2c3d01",
    "naa.5001405a1b2c3d03",
    "naa.5001405a1b2c3d02",
    "naa.5001405a1b2c3d04",
];
const D0: CscdId = CscdId(0);
const D1: CscdId = CscdId(1);
const T1: CscdId = CscdId(2);
const T2: CscdId = CscdId(3);

/// One segment of a case, in the model's terms.
#[derive(Clone, Copy, Debug)]
enum Seg {
    /// 00h d0 -> t2.
    DiskToTape {
        lba: usize,
        blocks: usize,
        stl: usize,
    },
    /// 01h t1 -> d1.
    TapeToDisk {
        lba: usize,
        blocks: usize,
        stl: usize,
    },
    /// 03h t1 -> t2.
    TapeToTape {
        bytes: usize,
        src_stl: usize,
        dst_stl: usize,
    },
    /// 09h t1 -> d1 at byte `offset` of block `lba`: exactly `bytes` bytes.
    TapeToDiskOffset {
        lba: usize,
        offset: usize,
        bytes: usize,
        stl: usize,
    },
    /// 04h inline data -> t2 ([`inline`] bytes at `offset` of the list's inline data).
    InlineToTape {
        offset: usize,
        bytes: usize,
        stl: usize,
    },
}

/// The list's inline data (byte i of it).
fn inline(i: usize) -> u8 {
    (i * 13) as u8 ^ 0x5a
}

/// What the standard says happens at the end of a segment (Table 116).
#[derive(Debug, PartialEq)]
struct Settle {
    error: bool,
    keep_source: bool,
    keep_destination: bool,
    pad_destination: bool,
}

/// SPC-4 Table 116, row by row.
fn table_116(source_pad: bool, destination_pad: bool, cat: bool, last: bool) -> Settle {
    let (s, d) = (source_pad, destination_pad);
    match (s, d, cat) {
        // CAT=1: both kept for the next segment; dropped silently after the last one.
        (_, _, true) => Settle {
            error: false,
            keep_source: !last,
            keep_destination: !last,
            pad_destination: false,
        },
        (true, true, false) => Settle {
            error: false,
            keep_source: false,
            keep_destination: false,
            pad_destination: true,
        },
        // Leftover source data is treated as if CAT=1.
        (false, true, false) => Settle {
            error: false,
            keep_source: !last,
            keep_destination: false,
            pad_destination: true,
        },
        (true, false, false) => Settle {
            error: false,
            keep_source: false,
            keep_destination: false,
            pad_destination: false,
        },
        // Any leftover at all is UNEXPECTED INEXACT SEGMENT.
        (false, false, false) => Settle {
            error: true,
            keep_source: false,
            keep_destination: false,
            pad_destination: false,
        },
    }
}

/// The model's devices and leftovers.
struct Model {
    d0: Vec<u8>,
    d1: Vec<u8>,
    t1: Vec<Vec<u8>>,
    t1_at: usize,
    t2: Vec<Vec<u8>>,
    left_source: Vec<u8>,
    left_destination: Vec<u8>,
    /// Bytes written to destinations, and segments completed (COPY STATUS).
    written: usize,
    done: usize,
}

impl Model {
    /// Leftover source data first, then whole reads of `stl` bytes from t1.
    fn take_stream(&mut self, n: usize, stl: usize) -> Vec<u8> {
        let mut out: Vec<u8> = self
            .left_source
            .drain(..n.min(self.left_source.len()))
            .collect();
        while out.len() < n {
            let record = self.t1[self.t1_at].clone();
            assert_eq!(record.len(), stl, "the cases read whole records");
            self.t1_at += 1;
            let want = n - out.len();
            out.extend_from_slice(&record[..want.min(stl)]);
            self.left_source.extend_from_slice(&record[want.min(stl)..]);
        }
        out
    }

    /// Runs the segments; Err(index) for COPY ABORTED 26/0A in segment `index`.
    fn run(&mut self, segs: &[(Seg, bool)], pads: (bool, bool)) -> Result<(), usize> {
        for (i, &(seg, cat)) in segs.iter().enumerate() {
            let last = i + 1 == segs.len();
            // Destination data: leftover destination data first, then what is processed.
            let mut dest = std::mem::take(&mut self.left_destination);
            let unit = match seg {
                Seg::DiskToTape { lba, blocks, stl } => {
                    dest.extend_from_slice(&self.d0[lba * BL..(lba + blocks) * BL]);
                    stl
                }
                Seg::TapeToDisk { blocks, stl, .. } => {
                    // Exactly the stated blocks are written (Table 115): process only what
                    // they need beyond the leftover destination data.
                    let need = (blocks * BL).saturating_sub(dest.len());
                    let data = self.take_stream(need, stl);
                    dest.extend_from_slice(&data);
                    BL
                }
                Seg::TapeToTape {
                    bytes,
                    src_stl,
                    dst_stl,
                } => {
                    let data = self.take_stream(bytes, src_stl);
                    dest.extend_from_slice(&data);
                    dst_stl
                }
                // An exact byte range (Table 115): no destination unit to fill.
                Seg::TapeToDiskOffset { bytes, stl, .. } => {
                    let need = bytes.saturating_sub(dest.len());
                    let data = self.take_stream(need, stl);
                    dest.extend_from_slice(&data);
                    1
                }
                // No source device: leftover source data is left alone (5.17.7.2).
                Seg::InlineToTape { offset, bytes, stl } => {
                    dest.extend((offset..offset + bytes).map(inline));
                    stl
                }
            };
            let whole = dest.len() / unit * unit;
            self.put(seg, &dest[..whole], 0);
            self.left_destination = dest[whole..].to_vec();
            // 04h acts as if the source PAD were 0 (Table 117).
            let source_pad = pads.0 && !matches!(seg, Seg::InlineToTape { .. });
            let settle = table_116(source_pad, pads.1, cat, last);
            let leftovers = !self.left_source.is_empty() || !self.left_destination.is_empty();
            if settle.error && leftovers {
                return Err(i);
            }
            // The footnote to Table 116: where the segment fixes the destination amount
            // (01h, 09h), leftover destination data is 26/0A even with destination PAD.
            let exact = matches!(seg, Seg::TapeToDisk { .. } | Seg::TapeToDiskOffset { .. });
            if exact && settle.pad_destination && !self.left_destination.is_empty() {
                return Err(i);
            }
            if settle.pad_destination && !self.left_destination.is_empty() {
                let mut padded = std::mem::take(&mut self.left_destination);
                padded.resize(unit, 0);
                self.put(seg, &padded, whole);
            }
            if !settle.keep_source {
                self.left_source.clear();
            }
            if !settle.keep_destination {
                self.left_destination.clear();
            }
            self.done += 1;
        }
        Ok(())
    }

    /// Writes whole units of destination data (`skip` bytes already written by the segment).
    fn put(&mut self, seg: Seg, data: &[u8], skip: usize) {
        self.written += data.len();
        match seg {
            Seg::DiskToTape { stl: unit, .. }
            | Seg::TapeToTape { dst_stl: unit, .. }
            | Seg::InlineToTape { stl: unit, .. } => {
                self.t2.extend(data.chunks(unit).map(<[u8]>::to_vec));
            }
            Seg::TapeToDisk { lba, .. } => {
                let at = lba * BL + skip;
                self.d1[at..at + data.len()].copy_from_slice(data);
            }
            Seg::TapeToDiskOffset { lba, offset, .. } => {
                let at = lba * BL + offset + skip;
                self.d1[at..at + data.len()].copy_from_slice(data);
            }
        }
    }
}

fn record(k: usize) -> Vec<u8> {
    (0..RECORD)
        .map(|i| (k * 37 + i * 3 + i / 7) as u8)
        .collect()
}

fn simh_write(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        let len = (r.len() as u32).to_le_bytes();
        out.extend_from_slice(&len);
        out.extend_from_slice(r);
        if r.len() % 2 == 1 {
            out.push(0);
        }
        out.extend_from_slice(&len);
    }
    out
}

fn simh_read(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let (mut out, mut at) = (Vec::new(), 0);
    while at + 4 <= bytes.len() {
        let n = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        assert!(
            n != 0 && n & 0x8000_0000 == 0,
            "only records: {n:#x} at {at}"
        );
        let n = n as usize;
        out.push(bytes[at + 4..at + 4 + n].to_vec());
        let tail = at + 4 + n + n % 2;
        assert_eq!(bytes[tail..tail + 4], (n as u32).to_le_bytes());
        at = tail + 4;
    }
    assert_eq!(at, bytes.len());
    out
}

fn cscd(name: &str, parameters: DeviceParameters) -> CscdDescriptor {
    CscdDescriptor {
        nul: false,
        peripheral_device_type: u8::from(matches!(parameters, DeviceParameters::Stream { .. })),
        relative_initiator_port: 0,
        identifier: CscdIdentifier::Identification {
            designator: Designator::parse_name(name).unwrap(),
        },
        parameters,
    }
}

fn body(seg: Seg) -> Segment {
    match seg {
        Seg::DiskToTape { lba, blocks, stl } => Segment::BlockToStream {
            hold: false,
            source: D0,
            destination: T2,
            stream_transfer_length: stl as u32,
            blocks: blocks as u16,
            lba: lba as u64,
        },
        Seg::TapeToDisk { lba, blocks, stl } => Segment::StreamToBlock {
            hold: false,
            source: T1,
            destination: D1,
            stream_transfer_length: stl as u32,
            blocks: blocks as u16,
            lba: lba as u64,
        },
        Seg::TapeToTape {
            bytes,
            src_stl,
            dst_stl,
        } => Segment::StreamToStream {
            hold: false,
            source: T1,
            destination: T2,
            source_transfer_length: src_stl as u32,
            destination_transfer_length: dst_stl as u32,
            byte_count: bytes as u32,
        },
        Seg::TapeToDiskOffset {
            lba,
            offset,
            bytes,
            stl,
        } => Segment::StreamToBlockOffset {
            source: T1,
            destination: D1,
            stream_transfer_length: stl as u32,
            bytes: bytes as u32,
            lba: lba as u64,
            byte_offset: offset as u16,
        },
        Seg::InlineToTape { offset, bytes, stl } => Segment::InlineToStream {
            destination: T2,
            stream_transfer_length: stl as u32,
            inline_offset: offset as u32,
            bytes: bytes as u32,
        },
    }
}

/// What the copy manager did: its status, COPY ABORTED's (ASC, ASCQ, segment number) read
/// from the fixed-format bytes, the destination disk and the destination tape.
/// ..., and COPY STATUS's (SEGMENTS PROCESSED, TRANSFER COUNT in bytes).
type Observed = (
    Status,
    Option<(u8, u8, u16)>,
    Vec<u8>,
    Vec<Vec<u8>>,
    (u16, u32),
);

/// Runs `segs` with the source CSCDs' PAD = `pads.0` and the destination CSCDs' = `pads.1`.
fn run(segs: &[(Seg, bool)], pads: (bool, bool)) -> Observed {
    let dir = tempfile::tempdir().unwrap();
    let d0: Vec<u8> = (0..BLOCKS * BL).map(|i| (i * 7 + i / BL) as u8).collect();
    std::fs::write(dir.path().join("d0.img"), &d0).unwrap();
    std::fs::write(dir.path().join("d1.img"), vec![0xee; BLOCKS * BL]).unwrap();
    let records: Vec<Vec<u8>> = (0..RECORDS).map(record).collect();
    std::fs::write(dir.path().join("t1.tap"), simh_write(&records)).unwrap();
    let mut devices: Vec<(DeviceConfig, Arc<dyn ScsiDevice>)> = Vec::new();
    for (i, name) in ["d0", "d1", "t1", "t2"].into_iter().enumerate() {
        let designator = Designator::parse_name(NAMES[i]).unwrap();
        let (kind, path) = if i < 2 {
            (DeviceKind::Disk, dir.path().join(format!("{name}.img")))
        } else {
            (DeviceKind::Tape, dir.path().join(format!("{name}.tap")))
        };
        let device: Arc<dyn ScsiDevice> = if i < 2 {
            Arc::new(EmulatedDisk::open(name, &DiskOptions::new(&path, BL as u32)).unwrap())
        } else {
            let config = TapeConfig {
                designators: vec![designator.clone()],
                ..TapeConfig::default()
            };
            Arc::new(EmulatedTape::open(name, &path, config).unwrap().0)
        };
        let mut c = DeviceConfig::new(name, kind, &path);
        c.designators = vec![designator];
        devices.push((c, device));
    }
    let manager = CopyManager::new(
        Arc::new(Inventory::from_devices(devices).unwrap()),
        Limits::default(),
    );
    let block = |pad| DeviceParameters::Block {
        pad,
        block_length: BL as u32,
    };
    let stream = |pad| DeviceParameters::Stream {
        pad,
        fixed: false,
        block_length: 0,
    };
    let list = ParameterList {
        list_identifier: 1,
        sequential_striped: false,
        list_id_usage: ListIdUsage::Discard,
        priority: 1,
        cscds: vec![
            cscd(NAMES[0], block(pads.0)),
            cscd(NAMES[1], block(pads.1)),
            cscd(NAMES[2], stream(pads.0)),
            cscd(NAMES[3], stream(pads.1)),
        ],
        segments: segs
            .iter()
            .map(|&(s, cat)| SegmentDescriptor { cat, body: body(s) })
            .collect(),
        inline_data: (0..INLINE).map(inline).collect(),
    };
    let bytes = list.encode();
    let mut cdb = [0u8; 16];
    cdb[0] = 0x83;
    cdb[10..14].copy_from_slice(&(bytes.len() as u32).to_be_bytes());
    let r = manager.extended_copy(
        &Nexus::local(),
        None,
        &decoded_xcopy(&cdb),
        &bytes,
        &Abort::new(),
    );
    // COPY STATUS (SPC-4 6.18.2) of list 1: bytes 5-6 SEGMENTS PROCESSED, byte 7 units
    // (00h = bytes), bytes 8-11 TRANSFER COUNT.
    let mut rcr = [0u8; 16];
    rcr[0] = 0x84;
    rcr[2] = 1;
    rcr[13] = 12;
    let st = manager
        .receive_copy_results(&Nexus::local(), &decoded_rcr(&rcr))
        .data_in;
    assert_eq!(st[7], 0, "transfer count in bytes");
    let status = (
        u16::from_be_bytes([st[5], st[6]]),
        u32::from_be_bytes([st[8], st[9], st[10], st[11]]),
    );
    drop(manager);
    let aborted = (r.status == Status::CHECK_CONDITION).then(|| {
        let s = &r.sense;
        assert_eq!(
            (s[0] & 0x7f, s[2] & 0x0f),
            (0x70, 0x0a),
            "COPY ABORTED: {s:02x?}"
        );
        (s[12], s[13], u16::from_be_bytes([s[10], s[11]]))
    });
    let d1 = std::fs::read(dir.path().join("d1.img")).unwrap();
    let t2 = std::fs::read(dir.path().join("t2.tap"))
        .map(|_| simh_read(&dir.path().join("t2.tap")))
        .unwrap_or_default();
    (r.status, aborted, d1, t2, status)
}

fn model(segs: &[(Seg, bool)], pads: (bool, bool)) -> Observed {
    let mut m = Model {
        d0: (0..BLOCKS * BL).map(|i| (i * 7 + i / BL) as u8).collect(),
        d1: vec![0xee; BLOCKS * BL],
        t1: (0..RECORDS).map(record).collect(),
        t1_at: 0,
        t2: Vec::new(),
        left_source: Vec::new(),
        left_destination: Vec::new(),
        written: 0,
        done: 0,
    };
    let result = m.run(segs, pads);
    let status = (m.done as u16, m.written as u32);
    match result {
        Ok(()) => (Status::GOOD, None, m.d1, m.t2, status),
        Err(i) => (
            Status::CHECK_CONDITION,
            Some((0x26, 0x0a, i as u16)),
            m.d1,
            m.t2,
            status,
        ),
    }
}

/// The three shapes, each alone (the last segment) and followed by a segment that consumes
/// what was carried.
fn shapes() -> Vec<(&'static str, Seg, Seg)> {
    vec![
        (
            "00h leftover destination",
            Seg::DiskToTape {
                lba: 0,
                blocks: 3,
                stl: 1024,
            },
            Seg::DiskToTape {
                lba: 3,
                blocks: 1,
                stl: 1024,
            },
        ),
        (
            "01h leftover source",
            Seg::TapeToDisk {
                lba: 0,
                blocks: 1,
                stl: 1024,
            },
            Seg::TapeToDisk {
                lba: 1,
                blocks: 1,
                stl: 1024,
            },
        ),
        (
            "03h leftover source and destination",
            Seg::TapeToTape {
                bytes: 1500,
                src_stl: 1024,
                dst_stl: 1000,
            },
            Seg::TapeToTape {
                bytes: 548,
                src_stl: 1024,
                dst_stl: 1048,
            },
        ),
        (
            "09h leftover source",
            Seg::TapeToDiskOffset {
                lba: 2,
                offset: 300,
                bytes: 1500,
                stl: 1024,
            },
            Seg::TapeToDiskOffset {
                lba: 8,
                offset: 7,
                bytes: 548,
                stl: 1024,
            },
        ),
    ]
}

#[test]
fn every_row_of_table_116_with_either_leftover_and_both() {
    let mut checked = 0;
    for (name, first, next) in shapes() {
        for pads in [(false, false), (false, true), (true, false), (true, true)] {
            for cat in [false, true] {
                for segs in [vec![(first, cat)], vec![(first, cat), (next, false)]] {
                    let got = run(&segs, pads);
                    let want = model(&segs, pads);
                    let what = format!("{name}, PAD {pads:?}, CAT {cat}, {} segments", segs.len());
                    assert_eq!((got.0, got.1), (want.0, want.1), "{what}");
                    assert!(got.2 == want.2, "{what}: destination disk");
                    assert_eq!(got.3, want.3, "{what}: destination tape");
                    assert_eq!(got.4, want.4, "{what}: COPY STATUS");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 4 * 4 * 2 * 2);
}

/// The cases the model must get right on its own, spelled out from the table (so a model
/// that drifted with the engine would be caught here).
#[test]
fn the_model_follows_the_table_in_the_cases_that_matter() {
    let restore = Seg::TapeToDisk {
        lba: 0,
        blocks: 1,
        stl: 1024,
    };
    // A 1024-byte record restored into one block without PAD: 26/0A in segment 0, the
    // block written first.
    let (status, aborted, d1, ..) = model(&[(restore, false)], (false, false));
    assert_eq!(
        (status, aborted),
        (Status::CHECK_CONDITION, Some((0x26, 0x0a, 0)))
    );
    assert_eq!(d1[..BL], record(0)[..BL]);
    // Source PAD=0, destination PAD=1: the other half of record 0 is kept and restored by
    // the next segment without reading the tape.
    let next = Seg::TapeToDisk {
        lba: 1,
        blocks: 1,
        stl: 1024,
    };
    let (status, _, d1, ..) = model(&[(restore, false), (next, false)], (false, true));
    assert_eq!(status, Status::GOOD);
    assert_eq!(d1[..2 * BL], record(0)[..]);
    // Source PAD=1: dropped, so the next segment reads record 1.
    let (_, _, d1, ..) = model(&[(restore, false), (next, false)], (true, false));
    assert_eq!(d1[BL..2 * BL], record(1)[..BL]);
    // Destination PAD=1 pads 1536 bytes into two 1024-byte records.
    let backup = Seg::DiskToTape {
        lba: 0,
        blocks: 3,
        stl: 1024,
    };
    let (_, _, _, t2, _) = model(&[(backup, false)], (true, true));
    assert_eq!((t2.len(), &t2[1][512..]), (2, &[0u8; 512][..]));
}

/// Inline data (04h) has no source device: leftover source data carried into it stays
/// leftover source data for the next segment that reads (SPC-4 5.17.7.2), it is neither
/// written nor dropped by the 04h segment.
#[test]
fn inline_data_leaves_leftover_source_data_alone() {
    let segs = [
        (
            Seg::TapeToDisk {
                lba: 0,
                blocks: 1,
                stl: 1024,
            },
            true,
        ),
        (
            Seg::InlineToTape {
                offset: 8,
                bytes: 1000,
                stl: 1000,
            },
            true,
        ),
        (
            Seg::TapeToDisk {
                lba: 1,
                blocks: 1,
                stl: 1024,
            },
            false,
        ),
    ];
    for pads in [(false, false), (true, true)] {
        let got = run(&segs, pads);
        let want = model(&segs, pads);
        assert_eq!((got.0, got.1), (want.0, want.1), "PAD {pads:?}");
        assert!(got.2 == want.2, "PAD {pads:?}: destination disk");
        assert_eq!(got.3, want.3, "PAD {pads:?}: destination tape");
        assert_eq!(got.4, want.4, "PAD {pads:?}: COPY STATUS");
        // Spelled out: record 0 restored whole across the two 01h segments, and the tape
        // holds exactly the inline bytes.
        assert_eq!(got.2[..2 * BL], record(0)[..]);
        let inline_bytes: Vec<u8> = (8..1008).map(inline).collect();
        assert_eq!(got.3, vec![inline_bytes]);
    }
}

/// The footnote to Table 116: destination data carried into a segment that writes a fixed
/// amount (01h: 1 block) and left over after it is 26/0A, with destination PAD or not;
/// CAT keeps it instead.
#[test]
fn leftover_destination_data_after_an_exact_segment_is_inexact() {
    // 03h leaves 700 bytes of destination data (1700 in 1000-byte records) and 348 of
    // source data; 01h then writes one block from the carried 700, 188 left over.
    let carry = Seg::TapeToTape {
        bytes: 1700,
        src_stl: 1024,
        dst_stl: 1000,
    };
    let exact = Seg::TapeToDisk {
        lba: 0,
        blocks: 1,
        stl: 1024,
    };
    for pads in [(false, false), (false, true), (true, false), (true, true)] {
        for cat in [false, true] {
            let segs = [(carry, true), (exact, cat)];
            let got = run(&segs, pads);
            let want = model(&segs, pads);
            let what = format!("PAD {pads:?}, CAT {cat}");
            assert_eq!((got.0, got.1), (want.0, want.1), "{what}");
            assert!(got.2 == want.2, "{what}: destination disk");
            assert_eq!(got.3, want.3, "{what}: destination tape");
            assert_eq!(got.4, want.4, "{what}: COPY STATUS");
            if !cat && pads.1 {
                assert_eq!(got.1, Some((0x26, 0x0a, 1)), "{what}: the footnote");
            }
        }
    }
}
