//! How a segment's CSCD IDs become devices (SPC-4 6.4.5 and 6.4.6, 5.17.7.4; Part B 1-2
//! and 4): CSCD ID FFFFh names the copy manager's own logical unit, the one the EXTENDED
//! COPY was sent to; a null LU never receives a command; a CSCD descriptor with NUL set,
//! a device whose INQUIRY fails or shows no LU, and one whose INQUIRY or block length
//! does not match its descriptor each end the copy with the COPY ABORTED code S4 gives.
//! Checked byte for byte on the disk written, and in the fixed-format sense bytes.

use crate::common::list::decoded_xcopy;
use std::path::Path;
use std::sync::Arc;

use xcopyd::command::{Abort, CommandResult, Nexus};
use xcopyd::copy::manager::CopyManager;
use xcopyd::copy::CopyService;
use xcopyd::device::disk::{DiskOptions, EmulatedDisk};
use xcopyd::device::faults::{Failure, Fault, FaultyDevice};
use xcopyd::device::inventory::{DeviceConfig, DeviceKind, Inventory};
use xcopyd::device::{Completion, DataDirection, DeviceError, ScsiDevice};
use xcopyd::scsi::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
use xcopyd::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
use xcopyd::scsi::{Asc, Designator, Limits, ListIdUsage, ParameterList, Sense, SenseKey, Status};

const BL: usize = 512;
const BLOCKS: usize = 64;
const D0: &str = "naa.5001405a1b2c3d01";
const D1: &str = "naa.5001405a1b2c3d03";

struct Rig {
    dir: tempfile::TempDir,
    manager: CopyManager,
    /// d1, the logical unit the EXTENDED COPY is sent to in these tests.
    d1: Arc<dyn ScsiDevice>,
    pattern: Vec<u8>,
}

/// How d1 answers, for the tests of resolution.
#[derive(Clone, Copy)]
enum D1 {
    Plain,
    /// Its standard INQUIRY data's byte 0 (PERIPHERAL QUALIFIER, PERIPHERAL DEVICE TYPE).
    InquiryByte0(u8),
    /// INQUIRY ends CHECK CONDITION (HARDWARE ERROR, 44/00 INTERNAL TARGET FAILURE).
    InquiryFails,
    /// Panics on every WRITE (a bug in a device, stood in for).
    PanicsOnWrite,
}

/// Panics on WRITE(10)/(16); passes everything else on.
struct PanicsOnWrite(Arc<dyn ScsiDevice>);

impl ScsiDevice for PanicsOnWrite {
    fn execute(&self, cdb: &[u8], data: DataDirection<'_>) -> Result<Completion, DeviceError> {
        assert!(!matches!(cdb[0], 0x2a | 0x8a), "a device bug, on purpose");
        self.0.execute(cdb, data)
    }

    fn name(&self) -> &str {
        self.0.name()
    }
}

/// Answers INQUIRY with byte 0 replaced; passes everything else on.
struct Byte0 {
    inner: Arc<dyn ScsiDevice>,
    byte0: u8,
}

impl ScsiDevice for Byte0 {
    fn execute(&self, cdb: &[u8], data: DataDirection<'_>) -> Result<Completion, DeviceError> {
        match data {
            DataDirection::FromDevice(buf) if cdb[0] == 0x12 => {
                let c = self
                    .inner
                    .execute(cdb, DataDirection::FromDevice(&mut *buf))?;
                buf[0] = self.byte0;
                Ok(c)
            }
            data => self.inner.execute(cdb, data),
        }
    }

    fn name(&self) -> &str {
        self.inner.name()
    }
}

fn rig() -> Rig {
    rig_with(D1::Plain)
}

fn rig_with(d1: D1) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let pattern: Vec<u8> = (0..BLOCKS * BL).map(|i| (i * 7 + i / BL) as u8).collect();
    std::fs::write(dir.path().join("d0.img"), &pattern).unwrap();
    std::fs::write(dir.path().join("d1.img"), vec![0u8; BLOCKS * BL]).unwrap();
    let mut devices: Vec<(DeviceConfig, Arc<dyn ScsiDevice>)> = Vec::new();
    for (name, designator) in [("d0", D0), ("d1", D1)] {
        let path = dir.path().join(format!("{name}.img"));
        let mut disk: Arc<dyn ScsiDevice> =
            Arc::new(EmulatedDisk::open(name, &DiskOptions::new(&path, BL as u32)).unwrap());
        if name == "d1" {
            disk = match d1 {
                D1::Plain => disk,
                D1::InquiryByte0(byte0) => Arc::new(Byte0 { inner: disk, byte0 }),
                D1::PanicsOnWrite => Arc::new(PanicsOnWrite(disk)),
                D1::InquiryFails => {
                    let hardware =
                        Sense::new(SenseKey::HARDWARE_ERROR, Asc::INTERNAL_TARGET_FAILURE);
                    Arc::new(FaultyDevice::new(disk).with(Fault::NthCommand {
                        n: 1,
                        opcode: Some(0x12),
                        failure: Failure::check_condition(hardware),
                    }))
                }
            };
        }
        devices.push((config(name, &path, designator), disk));
    }
    let d1 = devices[1].1.clone();
    let manager = CopyManager::new(
        Arc::new(Inventory::from_devices(devices).unwrap()),
        Limits::default(),
    );
    Rig {
        dir,
        manager,
        d1,
        pattern,
    }
}

fn config(name: &str, path: &Path, designator: &str) -> DeviceConfig {
    let mut c = DeviceConfig::new(name, DeviceKind::Disk, path);
    c.designators = vec![Designator::parse_name(designator).unwrap()];
    c
}

/// An identification CSCD descriptor of a disk with `block_length`-byte blocks.
fn disk(designator: &str, block_length: u32) -> CscdDescriptor {
    CscdDescriptor {
        nul: false,
        peripheral_device_type: 0,
        relative_initiator_port: 0,
        identifier: CscdIdentifier::Identification {
            designator: Designator::parse_name(designator).unwrap(),
        },
        parameters: DeviceParameters::Block {
            pad: false,
            block_length,
        },
    }
}

/// Sends `segment` as list 3 to the copy manager, through `receiving_lun`, with d0 the
/// only CSCD descriptor.
fn xcopy(rig: &Rig, segment: Segment, receiving_lun: Option<Arc<dyn ScsiDevice>>) -> CommandResult {
    xcopy_with(rig, vec![disk(D0, BL as u32)], segment, receiving_lun)
}

fn xcopy_with(
    rig: &Rig,
    cscds: Vec<CscdDescriptor>,
    segment: Segment,
    receiving_lun: Option<Arc<dyn ScsiDevice>>,
) -> CommandResult {
    let list = ParameterList {
        list_identifier: 3,
        sequential_striped: false,
        list_id_usage: ListIdUsage::Hold,
        priority: 1,
        cscds,
        segments: vec![SegmentDescriptor {
            cat: false,
            body: segment,
        }],
        inline_data: Vec::new(),
    };
    let bytes = list.encode();
    let mut cdb = [0u8; 16];
    cdb[0] = 0x83;
    cdb[10..14].copy_from_slice(&(bytes.len() as u32).to_be_bytes());
    rig.manager.extended_copy(
        &Nexus::local(),
        receiving_lun,
        &decoded_xcopy(&cdb),
        &bytes,
        &Abort::new(),
    )
}

/// 02h from d0 (CSCD 0) to FFFFh: 8 blocks from LBA 5 to LBA 40 of the LU it was sent to.
fn to_copy_manager() -> Segment {
    Segment::BlockToBlock {
        hold: false,
        dc: false,
        source: CscdId(0),
        destination: CscdId::COPY_MANAGER,
        blocks: 8,
        source_lba: 5,
        destination_lba: 40,
    }
}

fn d1_image(rig: &Rig) -> Vec<u8> {
    std::fs::read(rig.dir.path().join("d1.img")).unwrap()
}

/// SPC-4 6.4.6.1: CSCD ID FFFFh is the copy manager processing the command, i.e. the LU
/// the EXTENDED COPY came in on (a disk here, whose type no CSCD descriptor states).
#[test]
fn cscd_id_ffffh_is_the_logical_unit_the_copy_was_sent_to() {
    let r = rig();
    let res = xcopy(&r, to_copy_manager(), Some(r.d1.clone()));
    assert_eq!(
        (res.status, res.sense.as_slice()),
        (Status::GOOD, &[][..]),
        "{:02x?}",
        res.sense
    );
    let d1 = d1_image(&r);
    assert!(
        d1[40 * BL..48 * BL] == r.pattern[5 * BL..13 * BL],
        "the 8 blocks"
    );
    assert!(d1[..40 * BL].iter().all(|&b| b == 0), "nothing before them");
    assert!(d1[48 * BL..].iter().all(|&b| b == 0), "nothing after them");
}

/// With no LU behind the command (the CLI's local copies), FFFFh names nothing: COPY
/// ABORTED, 0D/02 COPY TARGET DEVICE NOT REACHABLE, segment 0, the segment pointer (SD=1)
/// at the segment descriptor's DESTINATION CSCD DESCRIPTOR ID field (bytes 6-7), there
/// being no CSCD descriptor to point at; nothing written, so INFORMATION not valid.
#[test]
fn cscd_id_ffffh_without_a_receiving_lu_is_not_reachable() {
    let r = rig();
    let res = xcopy(&r, to_copy_manager(), None);
    let s = res.sense;
    assert_eq!(res.status, Status::CHECK_CONDITION);
    assert_eq!(s[0], 0x70, "fixed format, VALID=0: {s:02x?}");
    assert_eq!(s[2] & 0x0f, 0x0a, "COPY ABORTED");
    assert_eq!((s[12], s[13]), (0x0d, 0x02));
    assert_eq!(u16::from_be_bytes([s[10], s[11]]), 0, "segment 0");
    assert_eq!(s[15..18], [0xa0, 0, 6], "SKSV, SD, field pointer 6");
    assert!(d1_image(&r).iter().all(|&b| b == 0));
}

/// 06h from the null stream LU (C001h): a null LU never receives a command (SPC-4 6.4.6.1,
/// Part B 1.1). With BYTE COUNT 0 there is nothing to read, so the segment completes with
/// no command sent; with bytes to read it ends as for an unreachable CSCD: 0D/02, the
/// pointer (SD=1) at the segment's SOURCE CSCD DESCRIPTOR ID (bytes 4-5).
#[test]
fn a_null_lu_source_needs_no_command_until_it_must_read() {
    let r = rig();
    let discard = |bytes| Segment::StreamToDiscard {
        hold: false,
        source: CscdId::NULL_STREAM,
        stream_transfer_length: 1024,
        bytes,
    };
    let res = xcopy(&r, discard(0), None);
    assert_eq!(
        (res.status, res.sense.as_slice()),
        (Status::GOOD, &[][..]),
        "{:02x?}",
        res.sense
    );
    let res = xcopy(&r, discard(1024), None);
    let s = res.sense;
    assert_eq!(res.status, Status::CHECK_CONDITION);
    assert_eq!(
        (s[0], s[2] & 0x0f, s[12], s[13]),
        (0x70, 0x0a, 0x0d, 0x02),
        "{s:02x?}"
    );
    assert_eq!(u16::from_be_bytes([s[10], s[11]]), 0, "segment 0");
    assert_eq!(s[15..18], [0xa0, 0, 4], "SKSV, SD, field pointer 4");
}

/// 02h, 8 blocks from d0 (CSCD 0) to CSCD `to`.
fn d0_to(to: u16) -> Segment {
    Segment::BlockToBlock {
        hold: false,
        dc: false,
        source: CscdId(0),
        destination: CscdId(to),
        blocks: 8,
        source_lba: 5,
        destination_lba: 40,
    }
}

/// COPY ABORTED for segment 0 with `asc`, nothing written (VALID=0), and the segment
/// pointer (SKSV=1, SD=0) at CSCD descriptor `cscd` (16 + 32 each), d1 untouched.
fn assert_aborted_at_cscd(r: &Rig, res: &CommandResult, asc: (u8, u8), cscd: u16) {
    let s = &res.sense;
    assert_eq!(res.status, Status::CHECK_CONDITION);
    assert_eq!(
        (s[0], s[2] & 0x0f, s[12], s[13]),
        (0x70, 0x0a, asc.0, asc.1),
        "{s:02x?}"
    );
    assert_eq!(u16::from_be_bytes([s[10], s[11]]), 0, "segment 0");
    let pointer = 16 + 32 * cscd;
    assert_eq!(
        s[15..18],
        [0x80, (pointer >> 8) as u8, pointer as u8],
        "SKSV, SD=0, field pointer at the CSCD descriptor"
    );
    assert!(d1_image(r).iter().all(|&b| b == 0), "nothing written");
}

/// A CSCD descriptor with NUL set names no device (SPC-3; obsolete in SPC-4, which libiscsi
/// still tests on older targets): a segment that uses it gets 0D/02 with the pointer at
/// that descriptor, here the third of three (SCST, libiscsi ValidTgtDescr).
#[test]
fn a_nul_cscd_descriptor_is_not_reachable() {
    let r = rig();
    let mut nul = disk(D1, BL as u32);
    nul.nul = true;
    let cscds = vec![disk(D0, BL as u32), disk(D1, BL as u32), nul];
    let res = xcopy_with(&r, cscds, d0_to(2), None);
    assert_aborted_at_cscd(&r, &res, (0x0d, 0x02), 2);
}

/// SPC-4 5.17.7.4: a CSCD whose INQUIRY fails, or whose INQUIRY shows no logical unit
/// (PERIPHERAL QUALIFIER 001b: not connected; 011b with type 1Fh: no LU), cannot be
/// used: 0D/02 COPY TARGET DEVICE NOT REACHABLE, pointer at its descriptor.
#[test]
fn a_cscd_whose_inquiry_fails_or_shows_no_lu_is_not_reachable() {
    for d1 in [
        D1::InquiryFails,
        D1::InquiryByte0(0x20),
        D1::InquiryByte0(0x7f),
    ] {
        let r = rig_with(d1);
        let cscds = vec![disk(D0, BL as u32), disk(D1, BL as u32)];
        let res = xcopy_with(&r, cscds, d0_to(1), None);
        assert_aborted_at_cscd(&r, &res, (0x0d, 0x02), 1);
        // The CSCD cannot be reached: no sense of its is forwarded (the failed INQUIRY's
        // 04/44/00 is not the copy's to report), fixed format, 18 bytes.
        assert_eq!(
            (res.sense.len(), res.sense[7]),
            (18, 10),
            "{:02x?}",
            res.sense
        );
    }
}

/// SPC-4 5.17.7.4 and Part B 1.1: INQUIRY shows a device type other than the descriptor's
/// (a tape, 01h, behind a block descriptor), or the disk's block length differs from the
/// descriptor's DISK BLOCK LENGTH: 0D/03 INCORRECT COPY TARGET DEVICE TYPE.
#[test]
fn a_cscd_of_another_type_or_block_length_is_incorrect() {
    let r = rig_with(D1::InquiryByte0(0x01));
    let cscds = vec![disk(D0, BL as u32), disk(D1, BL as u32)];
    let res = xcopy_with(&r, cscds, d0_to(1), None);
    assert_aborted_at_cscd(&r, &res, (0x0d, 0x03), 1);
    let r = rig();
    let cscds = vec![disk(D0, BL as u32), disk(D1, 4096)];
    let res = xcopy_with(&r, cscds, d0_to(1), None);
    assert_aborted_at_cscd(&r, &res, (0x0d, 0x03), 1);
}

/// A panic inside a copy (a bug, here a device's) ends that copy alone: the initiator gets
/// COPY ABORTED 44/00 INTERNAL TARGET FAILURE at the segment it was in, and the list's
/// record is closed, so the same list identifier runs again (not OPERATION IN PROGRESS).
#[test]
fn a_panic_inside_a_copy_aborts_that_copy_and_frees_its_list_identifier() {
    let r = rig_with(D1::PanicsOnWrite);
    for _ in 0..2 {
        let cscds = vec![disk(D0, BL as u32), disk(D1, BL as u32)];
        let res = xcopy_with(&r, cscds, d0_to(1), None);
        assert_eq!(res.status, Status::CHECK_CONDITION);
        let s = Sense::decode(&res.sense).unwrap();
        assert_eq!(
            (s.key, s.asc, s.segment_number),
            (
                SenseKey::COPY_ABORTED,
                Asc::INTERNAL_TARGET_FAILURE,
                Some(0)
            )
        );
    }
}
