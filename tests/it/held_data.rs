//! Held data end to end (SPC-4 6.4.6.x segments 0Bh-0Fh, 6.18.3 RECEIVE DATA): the daemon
//! over iSCSI runs lists whose segments hold a copy of the data they process; RECEIVE COPY
//! RESULTS service action 01h returns AVAILABLE DATA and the held bytes, keeps them while
//! delivery is partial, discards them once delivered in full, keeps none for LIST ID
//! USAGE 10b, and sets HDD in COPY STATUS when more than HELD DATA LIMIT was processed.

use std::path::Path;
use std::time::Duration;

use crate::common::list::encode_list;
use xcopyd::daemon::{Daemon, DaemonConfig};
use xcopyd::iscsi::initiator::{LoginOptions, Session};
use xcopyd::scsi::segment_descriptor::{CscdId, Segment};
use xcopyd::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
use xcopyd::scsi::{Designator, ListIdUsage};

const TARGET: &str = "iqn.2026-11.org.xcopyd:mover";
const DISK: &str = "naa.5001405a1b2c3d01";
const TAPE: &str = "naa.5001405a1b2c3d02";
/// HELD DATA LIMIT in the config.
const LIMIT: usize = 4096;

fn config(dir: &Path) -> DaemonConfig {
    std::fs::write(dir.join("tape0.tap"), b"").unwrap();
    let text = format!(
        "[iscsi]\nlisten = \"127.0.0.1:0\"\ntarget = \"{TARGET}\"\n\
         [limits]\nheld_data_limit = {LIMIT}\n\
         [[device]]\nname = \"disk0\"\nkind = \"disk\"\npath = \"disk0.img\"\nsize = \"1MiB\"\n\
         designator = \"{DISK}\"\n\
         [[device]]\nname = \"tape0\"\nkind = \"tape\"\npath = \"tape0.tap\"\n\
         designator = \"{TAPE}\"\n\
         [[lun]]\ndevice = \"disk0\"\n[[lun]]\ndevice = \"tape0\"\n"
    );
    DaemonConfig::parse(&text, dir).unwrap()
}

fn cscds() -> Vec<CscdDescriptor> {
    let c = |name: &str, parameters, pdt| CscdDescriptor {
        nul: false,
        peripheral_device_type: pdt,
        relative_initiator_port: 0,
        identifier: CscdIdentifier::Identification {
            designator: Designator::parse_name(name).unwrap(),
        },
        parameters,
    };
    vec![
        c(
            DISK,
            DeviceParameters::Block {
                pad: false,
                block_length: 512,
            },
            0,
        ),
        c(
            TAPE,
            DeviceParameters::Stream {
                pad: false,
                fixed: false,
                block_length: 0,
            },
            1,
        ),
    ]
}

/// 0Bh (00h + hold): `blocks` blocks from `lba` of the disk to the tape in 512-byte records.
fn hold_backup(lba: u64, blocks: u16) -> Segment {
    Segment::BlockToStream {
        hold: true,
        source: CscdId(0),
        destination: CscdId(1),
        stream_transfer_length: 512,
        blocks,
        lba,
    }
}

fn xcopy(s: &Session, bytes: &[u8]) {
    let mut c = [0u8; 16];
    c[0] = 0x83;
    c[10..14].copy_from_slice(&(bytes.len() as u32).to_be_bytes());
    let r = s.command(0, &c, bytes, 0).unwrap();
    assert_eq!((r.status, r.sense.len()), (0, 0), "{r:?}");
}

/// RECEIVE COPY RESULTS with service action `sa` for list `id`, allocation length `len`.
fn results(s: &Session, sa: u8, id: u8, len: u32) -> Vec<u8> {
    let mut c = [0u8; 16];
    c[0] = 0x84;
    c[1] = sa;
    c[2] = id;
    c[10..14].copy_from_slice(&len.to_be_bytes());
    let r = s.command(0, &c, &[], len as usize).unwrap();
    assert_eq!(r.status, 0, "{r:?}");
    r.data_in
}

fn available(data: &[u8]) -> usize {
    u32::from_be_bytes(data[..4].try_into().unwrap()) as usize
}

#[test]
fn receive_data_returns_held_data_once_then_discards_it() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(config(dir.path())).unwrap();
    let s = Session::connect(daemon.local_addr(), &LoginOptions::new(TARGET)).unwrap();
    for lun in 0..2 {
        let _ = s.command(lun, &[0; 6], &[], 0).unwrap();
    }
    let pattern: Vec<u8> = (0..64 * 512u32).map(|n| (n * 5 + n / 512) as u8).collect();
    let mut write10 = [0u8; 10];
    write10[0] = 0x2a;
    write10[8] = 64;
    assert_eq!(s.command(0, &write10, &pattern, 0).unwrap().status, 0);

    // Two holding segments around a plain one: held data is what the 0Bh segments
    // processed, in order; the 00h segment between them holds nothing.
    let plain = Segment::BlockToStream {
        hold: false,
        source: CscdId(0),
        destination: CscdId(1),
        stream_transfer_length: 512,
        blocks: 2,
        lba: 20,
    };
    xcopy(
        &s,
        &encode_list(
            5,
            ListIdUsage::Hold,
            cscds(),
            vec![hold_backup(2, 3), plain, hold_backup(10, 1)],
        ),
    );
    let want: Vec<u8> = [&pattern[2 * 512..5 * 512], &pattern[10 * 512..11 * 512]].concat();

    // COPY STATUS: done, 3 segments, HDD clear.
    let st = results(&s, 0x00, 5, 12);
    assert_eq!(st[4], 0x01, "completed, HDD clear: {st:02x?}");
    assert_eq!(u16::from_be_bytes([st[5], st[6]]), 3);

    // Partial delivery (allocation length 8): AVAILABLE DATA says all of it; kept.
    let part = results(&s, 0x01, 5, 8);
    assert_eq!((part.len(), available(&part)), (8, want.len()));
    assert_eq!(part[4..], want[..4]);
    // In full: the header and every held byte.
    let full = results(&s, 0x01, 5, 8192);
    assert_eq!((full.len(), available(&full)), (4 + want.len(), want.len()));
    assert!(full[4..] == want[..], "held data = the processed bytes");
    // Delivered in full, so discarded.
    assert_eq!(results(&s, 0x01, 5, 8192), [0, 0, 0, 0]);

    // LIST ID USAGE 10b keeps no held data.
    xcopy(
        &s,
        &encode_list(6, ListIdUsage::Discard, cscds(), vec![hold_backup(0, 1)]),
    );
    assert_eq!(results(&s, 0x01, 6, 8192), [0, 0, 0, 0]);

    // Exactly HELD DATA LIMIT processed: all of it held, nothing discarded.
    xcopy(
        &s,
        &encode_list(8, ListIdUsage::Hold, cscds(), vec![hold_backup(0, 8)]),
    );
    assert_eq!(results(&s, 0x00, 8, 12)[4], 0x01, "completed, HDD clear");
    let held = results(&s, 0x01, 8, 16384);
    assert_eq!(available(&held), LIMIT);
    assert!(held[4..] == pattern[..LIMIT]);

    // More than HELD DATA LIMIT processed: the limit is still held, the rest discarded
    // and HDD set.
    xcopy(
        &s,
        &encode_list(7, ListIdUsage::Hold, cscds(), vec![hold_backup(0, 16)]),
    );
    let st = results(&s, 0x00, 7, 12);
    assert_eq!(st[4], 0x81, "HDD set, completed: {st:02x?}");
    let held = results(&s, 0x01, 7, 16384);
    assert_eq!(available(&held), LIMIT);
    let processed = &pattern[..16 * 512];
    assert!(
        processed.windows(LIMIT).any(|w| w == &held[4..]),
        "the held bytes are processed bytes, in order"
    );
    s.logout().unwrap();
    daemon.shutdown(Duration::from_secs(1));
}
