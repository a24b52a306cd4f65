//! The daemon in process, reached the way an initiator reaches it: an iSCSI login with the
//! test initiator, WRITE(10) of a pattern to disk0, a real EXTENDED COPY (E4h CSCDs for
//! disk0 and tape0, segment 00h block->stream and 10h filemark) and RECEIVE COPY RESULTS;
//! then the tape image is parsed as SIMH .tap here, independently of the tape module.
//! Also: an `allow` list refusing this initiator, and a reload changing the LUN map.

use crate::common;
use crate::common::list::{encode_list, xcopy_cdb};

use std::path::Path;
use std::time::Duration;

use common::Initiator;
use xcopyd::daemon::{Daemon, DaemonConfig};
use xcopyd::scsi::segment_descriptor::{CscdId, Segment};
use xcopyd::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
use xcopyd::scsi::{Designator, ListIdUsage, Sense};

const TARGET: &str = "iqn.2026-11.org.xcopyd:mover";
const INITIATOR: &str = "iqn.2026-11.org.example:backup";

fn config(dir: &Path, extra_lun: bool) -> DaemonConfig {
    let text = format!(
        r#"
[iscsi]
listen = "127.0.0.1:0"
target = "{TARGET}"
[daemon]
shutdown_grace_secs = 5
[[device]]
name = "disk0"
kind = "disk"
path = "disk0.img"
size = "1MiB"
designator = "naa.5001405a1b2c3d01"
[[device]]
name = "tape0"
kind = "tape"
path = "tape0.tap"
designator = "naa.5001405a1b2c3d02"
[[device]]
name = "vault"
kind = "disk"
path = "vault.img"
size = "1MiB"
designator = "naa.5001405a1b2c3d09"
allow = ["iqn.2026-11.org.example:someone-else"]
[[lun]]
device = "disk0"
[[lun]]
device = "tape0"
{}"#,
        if extra_lun {
            "[[lun]]\ndevice = \"vault\"\n"
        } else {
            ""
        }
    );
    DaemonConfig::parse(&text, dir).unwrap()
}

fn cscd(designator: &str, parameters: DeviceParameters, pdt: u8) -> CscdDescriptor {
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
        0,
    )
}

/// RECEIVE COPY RESULTS, COPY STATUS (service action 00h) for `id`.
fn copy_status_cdb(id: u8) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x84;
    c[2] = id;
    c[10..14].copy_from_slice(&64u32.to_be_bytes());
    c
}

/// Tape objects parsed straight from the SIMH bytes: Some(record) or None (filemark).
fn simh(path: &Path) -> Vec<Option<Vec<u8>>> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        if len == 0 {
            out.push(None);
            at += 4;
            continue;
        }
        assert_eq!(len & 0x8000_0000, 0, "bad record at {at}");
        let n = len as usize;
        let tail = at + 4 + n + n % 2;
        assert_eq!(
            &bytes[tail..tail + 4],
            &len.to_le_bytes(),
            "length at {tail}"
        );
        out.push(Some(bytes[at + 4..at + 4 + n].to_vec()));
        at = tail + 4;
    }
    assert_eq!(at, bytes.len(), "trailing bytes in the image");
    out
}

#[test]
fn extended_copy_disk_to_tape_over_iscsi_then_reload_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tape0.tap"), b"").unwrap();
    let mut daemon = Daemon::start(config(dir.path(), false)).unwrap();
    let addr = daemon.local_addr();
    let mut i = Initiator::logged_in_to(addr, TARGET, INITIATOR);
    // The first command on each LUN reports POWER ON, RESET.
    for lun in 0..2 {
        assert_eq!(i.command(lun, &[0; 6], &[], 0).status, 2);
        assert_eq!(i.command(lun, &[0; 6], &[], 0).status, 0);
    }

    // 16 blocks of a pattern at LBA 8 of disk0.
    let pattern: Vec<u8> = (0..16 * 512u32).map(|n| (n * 7 + n / 512) as u8).collect();
    let mut write10 = [0u8; 10];
    write10[0] = 0x2a;
    write10[5] = 8;
    write10[8] = 16;
    assert_eq!(i.command(0, &write10, &pattern, 0).status, 0);
    // Residuals against the Expected Data Transfer Length (RFC 7143 11.4.5): READ(10)
    // of 16 blocks with 4096 expected overflows by 4096; with 10000, underflows.
    let mut read10 = write10;
    read10[0] = 0x28;
    let r = i.command(0, &read10, &[], 4096);
    assert_eq!((r.status, r.overflow, r.residual), (0, true, 4096), "{r:?}");
    assert_eq!(r.data, pattern[..4096]);
    let r = i.command(0, &read10, &[], 10000);
    assert_eq!((r.underflow, r.residual), (true, 10000 - 8192));

    // disk0 -> tape0: 16 blocks in 2 KiB records, then a filemark.
    let tape = cscd(
        "naa.5001405a1b2c3d02",
        DeviceParameters::Stream {
            pad: false,
            fixed: false,
            block_length: 0,
        },
        1,
    );
    let backup = encode_list(
        7,
        ListIdUsage::Hold,
        vec![disk("naa.5001405a1b2c3d01"), tape.clone()],
        vec![
            Segment::BlockToStream {
                hold: false,
                source: CscdId(0),
                destination: CscdId(1),
                stream_transfer_length: 2048,
                blocks: 16,
                lba: 8,
            },
            Segment::WriteFilemarks {
                destination: CscdId(1),
                immed: false,
                count: 1,
            },
        ],
    );
    let r = i.command(0, &xcopy_cdb(backup.len()), &backup, 0);
    assert_eq!(r.status, 0, "{r:?}");

    let r = i.command(0, &copy_status_cdb(7), &[], 64);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(r.data[4] & 0x7f, 1, "completed without errors: {r:?}");
    assert_eq!(u16::from_be_bytes([r.data[5], r.data[6]]), 2, "segments");
    assert_eq!(r.data[7], 0, "transfer count in bytes");
    assert_eq!(&r.data[8..12], &(16u32 * 512).to_be_bytes());
    // The copy's engine and the tape's appends borrowed their rings from the daemon's,
    // and gave them back.
    assert_eq!(daemon.rings().idle_count(), 1);

    // The vault's allow list does not name us: unreachable, never copied to.
    let refused = encode_list(
        8,
        ListIdUsage::Hold,
        vec![disk("naa.5001405a1b2c3d01"), disk("naa.5001405a1b2c3d09")],
        vec![Segment::BlockToBlock {
            hold: false,
            dc: false,
            source: CscdId(0),
            destination: CscdId(1),
            blocks: 1,
            source_lba: 0,
            destination_lba: 0,
        }],
    );
    let r = i.command(1, &xcopy_cdb(refused.len()), &refused, 0);
    let s = Sense::decode(&r.sense).unwrap();
    assert_eq!((s.key.0, s.asc.asc(), s.asc.ascq()), (0x0a, 0x0d, 0x02));

    // SIGHUP's reload: a third LUN appears, and the initiator is told.
    daemon.reload(config(dir.path(), true)).unwrap();
    let r = i.command(0, &[0; 6], &[], 0);
    let s = Sense::decode(&r.sense).unwrap();
    assert_eq!((s.key.0, s.asc.asc(), s.asc.ascq()), (0x06, 0x3f, 0x0e));
    let mut report_luns = [0u8; 12];
    report_luns[0] = 0xa0;
    report_luns[9] = 64;
    let r = i.command(0, &report_luns, &[], 64);
    // The new LUN 2 is "vault", whose allow list does not name this initiator: masked.
    assert_eq!(&r.data[..4], &16u32.to_be_bytes());
    assert_eq!(
        &r.data[8..24],
        &[0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    );
    let r = i.command(2, &[0x12, 0, 0, 0, 36, 0], &[], 36);
    assert_eq!(
        r.data[0], 0x7f,
        "INQUIRY of a masked LUN: qualifier 011b, PDT 1Fh"
    );
    let r = i.command(2, &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[], 512);
    let s = Sense::decode(&r.sense).unwrap();
    assert_eq!((s.key.0, s.asc.asc(), s.asc.ascq()), (0x05, 0x25, 0x00));

    daemon.shutdown(Duration::from_secs(1));

    let objects = simh(&dir.path().join("tape0.tap"));
    assert_eq!(objects.len(), 5, "4 records and a filemark");
    for (n, record) in objects[..4].iter().enumerate() {
        assert_eq!(
            record.as_deref(),
            Some(&pattern[n * 2048..(n + 1) * 2048]),
            "record {n}"
        );
    }
    assert_eq!(objects[4], None);
}
