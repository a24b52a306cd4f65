//! The segment types no other test runs, each checked against what the standard says it
//! does (SPC-4 6.4.6 / Part B 1): 06h and 0Fh (stream -> discard, and held), 07h (verify
//! CSCD: TEST UNIT READY or INQUIRY), 08h (block byte range -> stream), 10h (WRITE
//! FILEMARKS with IMMED), 11h (SPACE), 13h (tape image copy), 14h (PERSISTENT RESERVE OUT
//! REGISTER) and 15h (REGISTER AND MOVE, sent after every other segment).
//!
//! Tapes are written and parsed as SIMH .tap here; commands a device receives are recorded
//! by a wrapper, so the CDBs and parameter data are checked byte for byte; COPY STATUS
//! (TRANSFER COUNT) is checked after 13h.

use crate::common::list::{decoded_rcr, decoded_xcopy};
use std::path::Path;
use std::sync::{Arc, Mutex};

use xcopyd::command::{Abort, Nexus};
use xcopyd::copy::manager::CopyManager;
use xcopyd::copy::CopyService;
use xcopyd::device::disk::{DiskOptions, EmulatedDisk};
use xcopyd::device::faults::{Failure, Fault, FaultyDevice, TapeOp};
use xcopyd::device::inventory::{DeviceConfig, DeviceKind, Inventory};
use xcopyd::device::tape::{EmulatedTape, TapeConfig};
use xcopyd::device::{BlockBackend, Completion, DataDirection, DeviceError, ScsiDevice};
use xcopyd::scsi::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
use xcopyd::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
use xcopyd::scsi::{Asc, Designator, Limits, ListIdUsage, ParameterList, Sense, SenseKey, Status};

const BL: usize = 512;
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

/// Records every command (CDB, data-out) and answers PERSISTENT RESERVE OUT itself (GOOD);
/// everything else goes to the wrapped device.
struct Recorder {
    inner: Arc<dyn ScsiDevice>,
    seen: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl Recorder {
    fn commands(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.seen.lock().unwrap().clone()
    }
}

impl ScsiDevice for Recorder {
    fn execute(&self, cdb: &[u8], data: DataDirection<'_>) -> Result<Completion, DeviceError> {
        let out = match &data {
            DataDirection::ToDevice(d) => d.to_vec(),
            _ => Vec::new(),
        };
        self.seen.lock().unwrap().push((cdb.to_vec(), out));
        if cdb[0] == 0x5f {
            return Ok(Completion::good(0));
        }
        self.inner.execute(cdb, data)
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn block_backend(&self) -> Option<BlockBackend> {
        self.inner.block_backend()
    }
}

/// A SIMH object: a record or a filemark.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Obj {
    R(Vec<u8>),
    Fm,
}

fn record(k: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (k * 29 + i * 7 + i / 11) as u8).collect()
}

fn simh_write(objects: &[Obj]) -> Vec<u8> {
    let mut out = Vec::new();
    for o in objects {
        match o {
            Obj::Fm => out.extend_from_slice(&[0; 4]),
            Obj::R(r) => {
                let len = (r.len() as u32).to_le_bytes();
                out.extend_from_slice(&len);
                out.extend_from_slice(r);
                if r.len() % 2 == 1 {
                    out.push(0);
                }
                out.extend_from_slice(&len);
            }
        }
    }
    out
}

fn simh_read(path: &Path) -> Vec<Obj> {
    let bytes = std::fs::read(path).unwrap();
    let (mut out, mut at) = (Vec::new(), 0);
    while at + 4 <= bytes.len() {
        let n = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if n == 0 {
            out.push(Obj::Fm);
            at += 4;
            continue;
        }
        assert!(n < 1 << 24, "a record, not a marker, at {at}");
        out.push(Obj::R(bytes[at + 4..at + 4 + n].to_vec()));
        let tail = at + 4 + n + n % 2;
        assert_eq!(bytes[tail..tail + 4], (n as u32).to_le_bytes());
        at = tail + 4;
    }
    assert_eq!(at, bytes.len());
    out
}

struct Rig {
    dir: tempfile::TempDir,
    manager: CopyManager,
    d0: Vec<u8>,
    d1: Arc<Recorder>,
    t2: Arc<Recorder>,
}

/// d0 (a pattern), d1 (zeros, recorded), t1 (`objects`), t2 (empty, recorded).
fn rig(objects: &[Obj]) -> Rig {
    rig_with(objects, &[])
}

/// [`rig`] with fault rules on t1.
fn rig_with(objects: &[Obj], t1_faults: &[Fault]) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let d0: Vec<u8> = (0..64 * BL).map(|i| (i * 3 + i / BL) as u8).collect();
    std::fs::write(dir.path().join("d0.img"), &d0).unwrap();
    std::fs::write(dir.path().join("d1.img"), vec![0u8; 64 * BL]).unwrap();
    std::fs::write(dir.path().join("t1.tap"), simh_write(objects)).unwrap();
    let mut devices: Vec<(DeviceConfig, Arc<dyn ScsiDevice>)> = Vec::new();
    let mut recorders = Vec::new();
    for (i, name) in ["d0", "d1", "t1", "t2"].into_iter().enumerate() {
        let designator = Designator::parse_name(NAMES[i]).unwrap();
        let (kind, path): (DeviceKind, _) = if i < 2 {
            (DeviceKind::Disk, dir.path().join(format!("{name}.img")))
        } else {
            (DeviceKind::Tape, dir.path().join(format!("{name}.tap")))
        };
        let mut device: Arc<dyn ScsiDevice> = if i < 2 {
            Arc::new(EmulatedDisk::open(name, &DiskOptions::new(&path, BL as u32)).unwrap())
        } else {
            // t1's largest block is 70,000 bytes: 13h reads its record of that size with
            // one READ that ends GOOD, the shorter ones with ILI.
            let c = TapeConfig {
                designators: vec![designator.clone()],
                max_block_length: if i == 2 {
                    70_000
                } else {
                    TapeConfig::default().max_block_length
                },
                ..TapeConfig::default()
            };
            Arc::new(EmulatedTape::open(name, &path, c).unwrap().0)
        };
        if i == 2 && !t1_faults.is_empty() {
            let f = FaultyDevice::new(device);
            for fault in t1_faults {
                f.add(fault.clone());
            }
            device = Arc::new(f);
        }
        if i == 1 || i == 3 {
            let r = Arc::new(Recorder {
                inner: device,
                seen: Mutex::new(Vec::new()),
            });
            recorders.push(r.clone());
            device = r;
        }
        let mut c = DeviceConfig::new(name, kind, &path);
        c.designators = vec![designator];
        devices.push((c, device));
    }
    let t2 = recorders.pop().unwrap();
    let d1 = recorders.pop().unwrap();
    Rig {
        dir,
        manager: CopyManager::new(
            Arc::new(Inventory::from_devices(devices).unwrap()),
            Limits::default(),
        ),
        d0,
        d1,
        t2,
    }
}

fn cscds() -> Vec<CscdDescriptor> {
    (0..4)
        .map(|i| CscdDescriptor {
            nul: false,
            peripheral_device_type: u8::from(i >= 2),
            relative_initiator_port: 0,
            identifier: CscdIdentifier::Identification {
                designator: Designator::parse_name(NAMES[i]).unwrap(),
            },
            parameters: if i < 2 {
                DeviceParameters::Block {
                    pad: false,
                    block_length: BL as u32,
                }
            } else {
                DeviceParameters::Stream {
                    pad: false,
                    fixed: false,
                    block_length: 0,
                }
            },
        })
        .collect()
}

/// Runs `segments` as list 1 (LIST ID USAGE 00b); returns the status and the sense bytes.
fn run(rig: &Rig, segments: Vec<Segment>) -> (Status, Vec<u8>) {
    run_with(rig, cscds(), segments)
}

/// [`run`] with the CSCD descriptors given.
fn run_with(rig: &Rig, cscds: Vec<CscdDescriptor>, segments: Vec<Segment>) -> (Status, Vec<u8>) {
    let segments = segments
        .into_iter()
        .map(|body| SegmentDescriptor { cat: false, body })
        .collect();
    run_list(rig, cscds, segments)
}

/// [`run`] with the CSCD descriptors and whole segment descriptors (CAT) given.
fn run_list(
    rig: &Rig,
    cscds: Vec<CscdDescriptor>,
    segments: Vec<SegmentDescriptor>,
) -> (Status, Vec<u8>) {
    let list = ParameterList {
        list_identifier: 1,
        sequential_striped: false,
        list_id_usage: ListIdUsage::Hold,
        priority: 1,
        cscds,
        segments,
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
    (r.status, r.sense)
}

/// COPY STATUS of list 1 (SPC-4 6.18.2): SEGMENTS PROCESSED and TRANSFER COUNT, in bytes.
fn copy_status(rig: &Rig) -> (u16, u32) {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x84;
    cdb[2] = 1;
    cdb[13] = 12;
    let st = rig
        .manager
        .receive_copy_results(&Nexus::local(), &decoded_rcr(&cdb))
        .data_in;
    assert_eq!(st[7], 0, "TRANSFER COUNT UNITS: bytes");
    (
        u16::from_be_bytes([st[5], st[6]]),
        u32::from_be_bytes([st[8], st[9], st[10], st[11]]),
    )
}

fn good(r: (Status, Vec<u8>)) {
    assert_eq!(r, (Status::GOOD, Vec::new()), "sense {:02x?}", r.1);
}

fn d1(rig: &Rig) -> Vec<u8> {
    std::fs::read(rig.dir.path().join("d1.img")).unwrap()
}

/// 01h: one 1024-byte record of t1 into d1 at `lba`.
fn restore_one(lba: u64) -> Segment {
    Segment::StreamToBlock {
        hold: false,
        source: T1,
        destination: D1,
        stream_transfer_length: 1024,
        blocks: 2,
        lba,
    }
}

#[test]
fn stream_to_discard_skips_records_and_0fh_holds_them() {
    let records: Vec<Obj> = (0..6).map(|k| Obj::R(record(k, 1024))).collect();
    let r = rig(&records);
    let discard = |hold| Segment::StreamToDiscard {
        hold,
        source: T1,
        stream_transfer_length: 1024,
        bytes: 1024,
    };
    good(run(&r, vec![discard(false), discard(true), restore_one(0)]));
    // Records 0 and 1 were read and dropped; the restore got record 2.
    assert_eq!(d1(&r)[..1024], record(2, 1024)[..]);
    // RECEIVE DATA: exactly what 0Fh discarded (record 1), 06h held nothing.
    let mut cdb = [0u8; 16];
    cdb[0] = 0x84;
    cdb[1] = 0x01;
    cdb[2] = 1;
    cdb[10..14].copy_from_slice(&4096u32.to_be_bytes());
    let held = r
        .manager
        .receive_copy_results(&Nexus::local(), &decoded_rcr(&cdb));
    assert_eq!(held.status, Status::GOOD);
    assert_eq!(held.data_in[..4], 1024u32.to_be_bytes());
    assert_eq!(held.data_in[4..], record(1, 1024)[..]);
    // No data segment wrote the tape t2.
    assert!(r.t2.commands().iter().all(|(c, _)| c[0] == 0x12));
}

#[test]
fn verify_cscd_sends_test_unit_ready_or_inquiry() {
    let r = rig(&[]);
    let verify = |tur| Segment::VerifyCscd { source: D1, tur };
    good(run(&r, vec![verify(true), verify(false)]));
    let cdbs: Vec<Vec<u8>> = r.d1.commands().into_iter().map(|(c, _)| c).collect();
    // The resolution's standard INQUIRY, then TUR (TUR=1), then INQUIRY (TUR=0).
    assert_eq!(
        cdbs,
        vec![
            vec![0x12, 0, 0, 0, 36, 0],
            vec![0; 6],
            vec![0x12, 0, 0, 0, 36, 0]
        ]
    );
}

#[test]
fn block_byte_range_to_stream_08h() {
    let r = rig(&[]);
    good(run(
        &r,
        vec![Segment::BlockOffsetToStream {
            source: D0,
            destination: T2,
            stream_transfer_length: 500,
            bytes: 1500,
            lba: 3,
            byte_offset: 100,
        }],
    ));
    let start = 3 * BL + 100;
    let want: Vec<Obj> = r.d0[start..start + 1500]
        .chunks(500)
        .map(|c| Obj::R(c.to_vec()))
        .collect();
    drop(r.manager);
    assert_eq!(simh_read(&r.dir.path().join("t2.tap")), want);
}

#[test]
fn write_filemarks_sends_immed_and_count() {
    let r = rig(&[]);
    let fm = |immed, count| Segment::WriteFilemarks {
        destination: T2,
        immed,
        count,
    };
    good(run(&r, vec![fm(false, 2), fm(true, 0x010203)]));
    let cdbs: Vec<Vec<u8>> = r.t2.commands().into_iter().map(|(c, _)| c).collect();
    assert_eq!(
        cdbs[1..],
        [vec![0x10, 0, 0, 0, 2, 0], vec![0x10, 1, 1, 2, 3, 0]]
    );
}

#[test]
fn space_moves_over_records_and_filemarks() {
    let objects = vec![
        Obj::R(record(0, 1024)),
        Obj::R(record(1, 1024)),
        Obj::Fm,
        Obj::R(record(2, 1024)),
        Obj::R(record(3, 1024)),
        Obj::R(record(4, 1024)),
    ];
    let r = rig(&objects);
    let space = |code, count| Segment::Space {
        destination: T1,
        code,
        count,
    };
    // Over one filemark (code 1): record 2; then over one block (code 0): record 4; then
    // back one block (-1): record 4 again.
    good(run(
        &r,
        vec![
            space(1, 1),
            restore_one(0),
            space(0, 1),
            restore_one(2),
            space(0, -1),
            restore_one(4),
        ],
    ));
    let d = d1(&r);
    assert_eq!(d[..1024], record(2, 1024)[..]);
    assert_eq!(d[1024..2048], record(4, 1024)[..]);
    assert_eq!(d[2048..3072], record(4, 1024)[..]);
}

#[test]
fn tape_image_copy_copies_records_and_filemarks() {
    let objects = vec![
        Obj::R(record(0, 1024)),
        Obj::R(record(1, 301)),
        Obj::Fm,
        Obj::R(record(2, 70_000)),
        Obj::Fm,
        Obj::Fm,
        Obj::R(record(3, 5)),
    ];
    // COUNT 1: up to and including the first filemark.
    let r = rig(&objects);
    let copy = |count| Segment::TapeImageCopy {
        source: T1,
        destination: T2,
        count,
    };
    good(run(&r, vec![copy(1)]));
    // TRANSFER COUNT: the record bytes written (filemarks carry none).
    assert_eq!(copy_status(&r), (1, 1024 + 301));
    let path = r.dir.path().join("t2.tap");
    drop(r.manager);
    assert_eq!(simh_read(&path), objects[..3]);

    // COUNT 2: up to two consecutive filemarks; COUNT 0: to end of data.
    let r = rig(&objects);
    good(run(&r, vec![copy(2)]));
    let path = r.dir.path().join("t2.tap");
    drop(r.manager);
    assert_eq!(simh_read(&path), objects[..6]);
    let r = rig(&objects);
    good(run(&r, vec![copy(0)]));
    assert_eq!(copy_status(&r), (1, 1024 + 301 + 70_000 + 5));
    let path = r.dir.path().join("t2.tap");
    drop(r.manager);
    assert_eq!(simh_read(&path), objects);
}

#[test]
fn register_key_and_register_and_move_go_out_as_persistent_reserve_out() {
    let r = rig(&[]);
    let transport_id: Vec<u8> = {
        // iSCSI TransportID (SPC-4 7.6.4.6): format 00b, protocol 5, a name padded to 4.
        let name = b"iqn.2026-11.org.example:host\0\0\0\0";
        let mut t = vec![0x05, 0, 0, name.len() as u8];
        t.extend_from_slice(name);
        t
    };
    good(run(
        &r,
        vec![
            Segment::ThirdPartyPrSource {
                destination: D1,
                reservation_key: 0x1122_3344_5566_7788,
                service_action_reservation_key: 0x99aa_bbcc_ddee_ff00,
                unreg: true,
                aptpl: false,
                relative_target_port: 0x0102,
                transport_id: transport_id.clone(),
            },
            Segment::RegisterKey {
                destination: D1,
                reservation_key: 0x0102_0304_0506_0708,
                service_action_reservation_key: 0x1112_1314_1516_1718,
            },
            Segment::BlockToBlock {
                hold: false,
                dc: false,
                source: D0,
                destination: D1,
                blocks: 1,
                source_lba: 0,
                destination_lba: 0,
            },
            Segment::VerifyCscd {
                source: D1,
                tur: true,
            },
        ],
    ));
    let pr: Vec<(Vec<u8>, Vec<u8>)> =
        r.d1.commands()
            .into_iter()
            .filter(|(c, _)| c[0] == 0x5f)
            .collect();
    assert_eq!(pr.len(), 2);
    // 14h: REGISTER (service action 00h), 24 bytes of parameter list (SPC-4 6.16.3).
    let mut register = vec![0u8; 24];
    register[..8].copy_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
    register[8..16].copy_from_slice(&0x1112_1314_1516_1718u64.to_be_bytes());
    assert_eq!(pr[0].0, [0x5f, 0x00, 0, 0, 0, 0, 0, 0, 24, 0]);
    assert_eq!(pr[0].1, register);
    // 15h: REGISTER AND MOVE (07h), after every other segment (the last one's TUR too),
    // with the REGISTER AND MOVE parameter list (SPC-4 6.16.4): keys, UNREG/APTPL,
    // RELATIVE TARGET PORT IDENTIFIER, TRANSPORTID LENGTH, TransportID.
    let mut moved = Vec::new();
    moved.extend_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes());
    moved.extend_from_slice(&0x99aa_bbcc_ddee_ff00u64.to_be_bytes());
    moved.extend_from_slice(&[0, 0x02, 0x01, 0x02]);
    moved.extend_from_slice(&(transport_id.len() as u32).to_be_bytes());
    moved.extend_from_slice(&transport_id);
    let len = moved.len() as u16;
    assert_eq!(
        pr[1].0,
        [0x5f, 0x07, 0, 0, 0, 0, 0, (len >> 8) as u8, len as u8, 0]
    );
    assert_eq!(pr[1].1, moved);
    let cmds = r.d1.commands();
    let tur = cmds.iter().position(|(c, _)| c[..] == [0; 6]).unwrap();
    let move_at = cmds
        .iter()
        .position(|(c, _)| c[..2] == [0x5f, 0x07])
        .unwrap();
    assert_eq!(
        move_at,
        cmds.len() - 1,
        "REGISTER AND MOVE is the last command"
    );
    assert!(tur < move_at);
    assert_eq!(d1(&r)[..BL], r.d0[..BL]);
}

/// 0Ah writes its byte range and leaves the rest of the first and last blocks as they were
/// (Part B 1.8/1.9: a read-modify-write is allowed, a change around the range is not),
/// whether the range starts inside a block and ends on a boundary, or starts on a boundary
/// and ends inside one. d1 is first filled with d0's blocks (02h) so the bytes around each
/// range are not zeros.
#[test]
fn block_byte_range_writes_keep_the_bytes_around_the_range() {
    let r = rig(&[]);
    let range = |destination_lba, destination_byte_offset| Segment::BlockOffsetToBlockOffset {
        source: D0,
        destination: D1,
        bytes: 700,
        source_lba: 0,
        destination_lba,
        source_byte_offset: 0,
        destination_byte_offset,
    };
    good(run(
        &r,
        vec![
            Segment::BlockToBlock {
                hold: false,
                dc: false,
                source: D0,
                destination: D1,
                blocks: 64,
                source_lba: 0,
                destination_lba: 0,
            },
            // From byte 324 of block 10 to the end of block 11.
            range(10, 324),
            // From the start of block 20 to byte 188 of block 21.
            range(20, 0),
        ],
    ));
    let mut want = r.d0.clone();
    want[10 * BL + 324..10 * BL + 1024].copy_from_slice(&r.d0[..700]);
    want[20 * BL..20 * BL + 700].copy_from_slice(&r.d0[..700]);
    let got = d1(&r);
    for block in 0..64 {
        let b = block * BL..(block + 1) * BL;
        assert!(got[b.clone()] == want[b], "block {block}");
    }
}

/// 13h whose source READ fails (MEDIUM ERROR, 11/00, with INFORMATION set but no ILI: not a
/// shorter record) after one record was copied: COPY ABORTED 0D/01 THIRD PARTY DEVICE
/// FAILURE for segment 0, INFORMATION not valid (13h computes no residue, Part B 1.x), the
/// pointer at t1's descriptor and t1's status and sense forwarded (byte 8: CHECK
/// CONDITION, then its sense with key 3, 11/00); the record read before it is on t2.
#[test]
fn tape_image_copy_stops_on_a_source_read_error() {
    let objects = vec![Obj::R(record(0, 1024)), Obj::R(record(1, 1024))];
    let mut medium = Sense::new(SenseKey::MEDIUM_ERROR, Asc::new(0x11, 0x00));
    medium.information = Some(7);
    let r = rig_with(
        &objects,
        &[Fault::TapeCommand {
            op: TapeOp::Read,
            n: 2,
            failure: Failure::check_condition(medium),
        }],
    );
    let (status, s) = run(
        &r,
        vec![Segment::TapeImageCopy {
            source: T1,
            destination: T2,
            count: 0,
        }],
    );
    assert_eq!(status, Status::CHECK_CONDITION);
    assert_eq!((s[0], s[2] & 0x0f), (0x70, 0x0a), "VALID=0: {s:02x?}");
    assert_eq!((s[12], s[13]), (0x0d, 0x01));
    assert_eq!(u16::from_be_bytes([s[10], s[11]]), 0);
    assert_eq!(
        s[15..18],
        [0x80, 0, 16 + 32 * 2],
        "pointer at t1's descriptor"
    );
    let at = usize::from(s[8]);
    assert!(at >= 18, "source sense area: {s:02x?}");
    assert_eq!(s[at], 0x02, "CHECK CONDITION");
    assert_eq!(
        (s[at + 1] & 0x7f, s[at + 3] & 0x0f, s[at + 13], s[at + 14]),
        (0x70, 0x03, 0x11, 0x00)
    );
    let path = r.dir.path().join("t2.tap");
    drop(r.manager);
    assert_eq!(simh_read(&path), objects[..1]);
}

/// 08h's PAD/CAT follows Table 116 with the source disk's own PAD (only 04h/05h act as if
/// source PAD were 0, Table 117): 1200 bytes in 500-byte records leave 200 bytes of
/// leftover destination data. Source PAD=1, destination PAD=0, CAT=0: both leftovers are
/// dropped, no error, no padding (two records on t2); both PAD=0: 26/0A UNEXPECTED INEXACT
/// SEGMENT.
#[test]
fn block_byte_range_to_stream_follows_the_source_pad() {
    let range = Segment::BlockOffsetToStream {
        source: D0,
        destination: T2,
        stream_transfer_length: 500,
        bytes: 1200,
        lba: 3,
        byte_offset: 100,
    };
    let start = 3 * BL + 100;
    let r = rig(&[]);
    let mut padded = cscds();
    padded[0].parameters = DeviceParameters::Block {
        pad: true,
        block_length: BL as u32,
    };
    good(run_with(&r, padded, vec![range.clone()]));
    let want: Vec<Obj> = (0..2)
        .map(|k| Obj::R(r.d0[start + k * 500..start + (k + 1) * 500].to_vec()))
        .collect();
    let path = r.dir.path().join("t2.tap");
    drop(r.manager);
    assert_eq!(simh_read(&path), want);

    let r = rig(&[]);
    let (status, s) = run(&r, vec![range]);
    assert_eq!(status, Status::CHECK_CONDITION);
    assert_eq!((s[2] & 0x0f, s[12], s[13]), (0x0a, 0x26, 0x0a), "{s:02x?}");
}

/// 02h with DC=1: NUMBER OF BLOCKS counts destination blocks, written exactly (Table 115);
/// leftover destination data is written first and counts toward them, so the range
/// checked against the destination is the leftover plus the new data: 2 blocks at LBA 63
/// of a 64-block disk run past its end and are refused before any I/O (COPY ABORTED,
/// 00/00 as SCST and libiscsi's ValidSegDescr have it, pointer at DESTINATION LOGICAL
/// BLOCK ADDRESS, byte 20, of segment 1).
#[test]
fn block_to_block_with_dc_counts_destination_blocks_and_leftover_data() {
    let b2b = |blocks, destination_lba| Segment::BlockToBlock {
        hold: false,
        dc: true,
        source: D0,
        destination: D1,
        blocks,
        source_lba: 2,
        destination_lba,
    };
    let r = rig(&[]);
    good(run(&r, vec![b2b(3, 7)]));
    let mut want = vec![0u8; 64 * BL];
    want[7 * BL..10 * BL].copy_from_slice(&r.d0[2 * BL..5 * BL]);
    assert!(d1(&r) == want, "3 blocks at LBA 7");

    // 00h, CAT=1: 3 blocks into 1024-byte records leave 512 bytes of destination data.
    let r = rig(&[]);
    let backup = Segment::BlockToStream {
        hold: false,
        source: D0,
        destination: T2,
        stream_transfer_length: 1024,
        blocks: 3,
        lba: 0,
    };
    let segments = vec![
        SegmentDescriptor {
            cat: true,
            body: backup,
        },
        SegmentDescriptor {
            cat: false,
            body: b2b(2, 63),
        },
    ];
    let (status, s) = run_list(&r, cscds(), segments);
    assert_eq!(status, Status::CHECK_CONDITION);
    assert_eq!((s[2] & 0x0f, s[12], s[13]), (0x0a, 0, 0), "{s:02x?}");
    assert_eq!(u16::from_be_bytes([s[10], s[11]]), 1, "segment 1");
    assert_eq!(s[15..18], [0xa0, 0, 20], "SD=1, DESTINATION LBA");
    assert!(d1(&r).iter().all(|&b| b == 0), "nothing written to d1");
}
