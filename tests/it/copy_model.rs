//! Model test: random segment lists (02h, 0Ah, 00h with CAT chains and destination PAD,
//! 04h, 05h, 10h) run by the copy manager over emulated devices; the destination disk and
//! the tape image must equal what a naive reference copy, written here, produces.

use crate::common::list::decoded_xcopy;
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
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
const BLOCKS: u64 = 256;
const NAMES: [&str; 3] = [
    "naa.5001405a1b2c3d01",
    "naa.5001405a1b2c3d03",
    "naa.5001405a1b2c3d02",
];

/// One step of a generated list.
#[derive(Clone, Debug)]
enum Step {
    BlockToBlock {
        blocks: u16,
        src: u64,
        dst: u64,
    },
    Bytes {
        bytes: u32,
        src: u64,
        src_off: u16,
        dst: u64,
        dst_off: u16,
    },
    ToTape {
        blocks: u16,
        lba: u64,
        stl: u32,
        cat: bool,
    },
    Inline {
        bytes: u32,
        stl: u32,
        cat: bool,
    },
    Embedded {
        data: Vec<u8>,
        stl: u32,
        cat: bool,
    },
    Filemark,
}

fn step() -> impl Strategy<Value = Step> {
    let stl = prop::sample::select(vec![512u32, 1024, 1536, 4096]);
    prop_oneof![
        (0u16..40, 0..BLOCKS - 40, 0..BLOCKS - 40)
            .prop_map(|(blocks, src, dst)| Step::BlockToBlock { blocks, src, dst }),
        (
            0u32..6000,
            0..BLOCKS - 16,
            0u16..512,
            0..BLOCKS - 16,
            0u16..512
        )
            .prop_map(|(bytes, src, src_off, dst, dst_off)| Step::Bytes {
                bytes,
                src,
                src_off,
                dst,
                dst_off
            }),
        (0u16..12, 0..BLOCKS - 12, stl.clone(), any::<bool>()).prop_map(
            |(blocks, lba, stl, cat)| Step::ToTape {
                blocks,
                lba,
                stl,
                cat
            }
        ),
        (0u32..3000, stl.clone(), any::<bool>()).prop_map(|(bytes, stl, cat)| Step::Inline {
            bytes,
            stl,
            cat
        }),
        (
            prop::collection::vec(any::<u8>(), 0..300),
            stl,
            any::<bool>()
        )
            .prop_map(|(data, stl, cat)| Step::Embedded { data, stl, cat }),
        Just(Step::Filemark),
    ]
}

/// The naive reference: byte vectors and a list of tape objects.
struct Reference {
    src: Vec<u8>,
    dst: Vec<u8>,
    tape: Vec<Option<Vec<u8>>>,
    pending: Vec<u8>,
}

impl Reference {
    fn write_to_tape(&mut self, data: &[u8], stl: usize, cat: bool, last: bool) {
        self.pending.extend_from_slice(data);
        while self.pending.len() >= stl {
            let record: Vec<u8> = self.pending.drain(..stl).collect();
            self.tape.push(Some(record));
        }
        if cat {
            if last {
                self.pending.clear();
            }
        } else if !self.pending.is_empty() {
            // Destination PAD=1: pad the leftover to a whole transfer.
            let mut record = std::mem::take(&mut self.pending);
            record.resize(stl, 0);
            self.tape.push(Some(record));
        }
    }
}

fn cscd(name: &str, parameters: DeviceParameters) -> CscdDescriptor {
    CscdDescriptor {
        nul: false,
        peripheral_device_type: if matches!(parameters, DeviceParameters::Stream { .. }) {
            1
        } else {
            0
        },
        relative_initiator_port: 0,
        identifier: CscdIdentifier::Identification {
            designator: Designator::parse_name(name).unwrap(),
        },
        parameters,
    }
}

fn simh(path: &Path) -> Vec<Option<Vec<u8>>> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let (mut out, mut at) = (Vec::new(), 0);
    while at + 4 <= bytes.len() {
        let n = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if n == 0 {
            out.push(None);
            at += 4;
            continue;
        }
        out.push(Some(bytes[at + 4..at + 4 + n].to_vec()));
        at += 8 + n + n % 2;
    }
    out
}

fn run_case(steps: &[Step]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let src: Vec<u8> = (0..BLOCKS as usize * BL)
        .map(|i| (i * 13 + i / 511) as u8)
        .collect();
    std::fs::write(dir.path().join("d0.img"), &src).unwrap();
    std::fs::write(dir.path().join("d1.img"), vec![0u8; src.len()]).unwrap();
    let mut devices: Vec<(DeviceConfig, Arc<dyn ScsiDevice>)> = Vec::new();
    for (name, file, designator) in [("d0", "d0.img", NAMES[0]), ("d1", "d1.img", NAMES[1])] {
        let path = dir.path().join(file);
        let disk = EmulatedDisk::open(name, &DiskOptions::new(&path, BL as u32)).unwrap();
        let mut c = DeviceConfig::new(name, DeviceKind::Disk, &path);
        c.designators = vec![Designator::parse_name(designator).unwrap()];
        devices.push((c, Arc::new(disk)));
    }
    let tape_path = dir.path().join("t.tap");
    let (tape, _) = EmulatedTape::open(
        "t",
        &tape_path,
        TapeConfig {
            designators: vec![Designator::parse_name(NAMES[2]).unwrap()],
            ..TapeConfig::default()
        },
    )
    .unwrap();
    let mut c = DeviceConfig::new("t", DeviceKind::Tape, &tape_path);
    c.designators = vec![Designator::parse_name(NAMES[2]).unwrap()];
    devices.push((c, Arc::new(tape)));
    let manager = CopyManager::new(
        Arc::new(Inventory::from_devices(devices).unwrap()),
        Limits::default(),
    );

    let mut reference = Reference {
        src: src.clone(),
        dst: vec![0u8; src.len()],
        tape: Vec::new(),
        pending: Vec::new(),
    };
    let mut inline = Vec::new();
    let mut segments = Vec::new();
    let (d0, d1, t) = (CscdId(0), CscdId(1), CscdId(2));
    // CAT carries leftover destination data into the next segment, whatever its
    // destination: keep chains tape to tape, so the reference stays a tape model.
    let tape_data = |s: Option<&Step>| {
        matches!(
            s,
            Some(Step::ToTape { .. } | Step::Inline { .. } | Step::Embedded { .. })
        )
    };
    let steps: Vec<Step> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let chained = tape_data(steps.get(i + 1)) || i + 1 == steps.len();
            match s.clone() {
                Step::ToTape {
                    blocks,
                    lba,
                    stl,
                    cat,
                } => Step::ToTape {
                    blocks,
                    lba,
                    stl,
                    cat: cat && chained,
                },
                Step::Inline { bytes, stl, cat } => Step::Inline {
                    bytes,
                    stl,
                    cat: cat && chained,
                },
                Step::Embedded { data, stl, cat } => Step::Embedded {
                    data,
                    stl,
                    cat: cat && chained,
                },
                other => other,
            }
        })
        .collect();
    for (i, s) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        let (cat, body) = match s.clone() {
            Step::BlockToBlock { blocks, src, dst } => {
                let (a, b, n) = (src as usize * BL, dst as usize * BL, blocks as usize * BL);
                reference.dst[b..b + n].copy_from_slice(&reference.src[a..a + n]);
                (
                    false,
                    Segment::BlockToBlock {
                        hold: false,
                        dc: false,
                        source: d0,
                        destination: d1,
                        blocks,
                        source_lba: src,
                        destination_lba: dst,
                    },
                )
            }
            Step::Bytes {
                bytes,
                src,
                src_off,
                dst,
                dst_off,
            } => {
                let a = src as usize * BL + src_off as usize;
                let b = dst as usize * BL + dst_off as usize;
                let n = bytes as usize;
                let chunk = reference.src[a..a + n].to_vec();
                reference.dst[b..b + n].copy_from_slice(&chunk);
                (
                    false,
                    Segment::BlockOffsetToBlockOffset {
                        source: d0,
                        destination: d1,
                        bytes,
                        source_lba: src,
                        destination_lba: dst,
                        source_byte_offset: src_off,
                        destination_byte_offset: dst_off,
                    },
                )
            }
            Step::ToTape {
                blocks,
                lba,
                stl,
                cat,
            } => {
                let a = lba as usize * BL;
                let data = reference.src[a..a + blocks as usize * BL].to_vec();
                reference.write_to_tape(&data, stl as usize, cat, last);
                (
                    cat,
                    Segment::BlockToStream {
                        hold: false,
                        source: d0,
                        destination: t,
                        stream_transfer_length: stl,
                        blocks,
                        lba,
                    },
                )
            }
            Step::Inline { bytes, stl, cat } => {
                let offset = inline.len() as u32;
                let data: Vec<u8> = (0..bytes).map(|i| (i as u8) ^ 0x5a).collect();
                reference.write_to_tape(&data, stl as usize, cat, last);
                inline.extend_from_slice(&data);
                inline.resize(inline.len().next_multiple_of(4), 0);
                (
                    cat,
                    Segment::InlineToStream {
                        destination: t,
                        stream_transfer_length: stl,
                        inline_offset: offset,
                        bytes,
                    },
                )
            }
            Step::Embedded { data, stl, cat } => {
                reference.write_to_tape(&data, stl as usize, cat, last);
                (
                    cat,
                    Segment::EmbeddedToStream {
                        destination: t,
                        stream_transfer_length: stl,
                        data,
                    },
                )
            }
            Step::Filemark => {
                // Processes no data: leftovers are kept as if CAT=1 (dropped on the last).
                reference.tape.push(None);
                if last {
                    reference.pending.clear();
                }
                (
                    false,
                    Segment::WriteFilemarks {
                        destination: t,
                        immed: false,
                        count: 1,
                    },
                )
            }
        };
        segments.push(SegmentDescriptor { cat, body });
    }
    let list = ParameterList {
        list_identifier: 1,
        sequential_striped: false,
        list_id_usage: ListIdUsage::Discard,
        priority: 1,
        cscds: vec![
            cscd(
                NAMES[0],
                DeviceParameters::Block {
                    pad: false,
                    block_length: 512,
                },
            ),
            cscd(
                NAMES[1],
                DeviceParameters::Block {
                    pad: false,
                    block_length: 512,
                },
            ),
            cscd(
                NAMES[2],
                DeviceParameters::Stream {
                    pad: true,
                    fixed: false,
                    block_length: 0,
                },
            ),
        ],
        segments,
        inline_data: inline,
    };
    let bytes = list.encode();
    let mut cdb = [0u8; 16];
    cdb[0] = 0x83;
    cdb[10..14].copy_from_slice(&(bytes.len() as u32).to_be_bytes());
    let result = manager.extended_copy(
        &Nexus::local(),
        None,
        &decoded_xcopy(&cdb),
        &bytes,
        &Abort::new(),
    );
    prop_assert_eq!(result.status, Status::GOOD, "sense {:02x?}", result.sense);
    let dst = std::fs::read(dir.path().join("d1.img")).unwrap();
    prop_assert!(
        dst == reference.dst,
        "destination disk differs from the reference copy"
    );
    prop_assert_eq!(simh(&tape_path), reference.tape);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn destination_equals_reference_copy(steps in prop::collection::vec(step(), 1..10)) {
        run_case(&steps)?;
    }
}
