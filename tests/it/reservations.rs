//! Reservations over the iSCSI target of the daemon, with PERSISTENT RESERVE commands built
//! here from SPC-4's tables (not through xcopyd's encoders): two sessions get the exact
//! parameter data, RESERVATION CONFLICT where the tables say, and unit attentions; an APTPL
//! reservation survives a daemon restart; an EXTENDED COPY into a disk another initiator
//! holds Write Exclusive ends in COPY ABORTED with the destination's RESERVATION CONFLICT
//! forwarded and the disk untouched, and succeeds once segment 14h has registered the copy
//! manager under a registrants-only reservation.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::{Initiator, Reply};
use xcopyd::daemon::{Daemon, DaemonConfig};
use xcopyd::scsi::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
use xcopyd::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
use xcopyd::scsi::{
    Designator, ForwardedSense, ForwardedSource, ListIdUsage, ParameterList, Sense, Status,
};

const TARGET: &str = "iqn.2026-11.org.xcopyd:mover";
const HOST_A: &str = "iqn.2026-11.org.example:host-a";
const HOST_B: &str = "iqn.2026-11.org.example:host-b";
const HOST_C: &str = "iqn.2026-11.org.example:host-c";

fn config(dir: &Path) -> DaemonConfig {
    let text = format!(
        r#"
[iscsi]
listen = "127.0.0.1:0"
target = "{TARGET}"
[daemon]
shutdown_grace_secs = 1
state_dir = "state"
[[device]]
name = "disk0"
kind = "disk"
path = "disk0.img"
size = "8MiB"
designator = "naa.5001405a1b2c3d01"
[[device]]
name = "disk1"
kind = "disk"
path = "disk1.img"
size = "8MiB"
designator = "naa.5001405a1b2c3d03"
[[lun]]
device = "disk0"
[[lun]]
device = "disk1"
"#
    );
    DaemonConfig::parse(&text, dir).unwrap()
}

fn login(daemon: &Daemon, name: &str) -> Initiator {
    let mut i = Initiator::logged_in_to(daemon.local_addr(), TARGET, name);
    assert_eq!(
        Initiator::sense(&i.command(0, &[0; 6], &[], 0)),
        (6, 0x29, 0)
    );
    i
}

fn pr_out(i: &mut Initiator, sa: u8, kind: u8, key: u64, sa_key: u64, flags: u8) -> Reply {
    let mut list = [0u8; 24];
    list[..8].copy_from_slice(&key.to_be_bytes());
    list[8..16].copy_from_slice(&sa_key.to_be_bytes());
    list[20] = flags;
    i.command(0, &[0x5f, sa, kind, 0, 0, 0, 0, 0, 24, 0], &list, 0)
}

fn pr_in(i: &mut Initiator, sa: u8, alloc: u16) -> Reply {
    let [a0, a1] = alloc.to_be_bytes();
    i.command(
        0,
        &[0x5e, sa, 0, 0, 0, 0, 0, a0, a1, 0],
        &[],
        u32::from(alloc),
    )
}

fn write(i: &mut Initiator, byte: u8) -> Reply {
    i.command(0, &[0x2a, 0, 0, 0, 0, 8, 0, 0, 1, 0], &[byte; 512], 0)
}

fn read(i: &mut Initiator) -> Reply {
    i.command(0, &[0x28, 0, 0, 0, 0, 8, 0, 0, 1, 0], &[], 512)
}

const GOOD: u8 = 0x00;
const CONFLICT: u8 = 0x18;

#[test]
fn two_sessions_register_reserve_conflict_and_unit_attentions() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(config(dir.path())).unwrap();
    let (mut a, mut b, mut c) = (
        login(&daemon, HOST_A),
        login(&daemon, HOST_B),
        login(&daemon, HOST_C),
    );

    assert_eq!(pr_out(&mut a, 0x00, 0, 0, 0xa1, 0).status, GOOD);
    assert_eq!(pr_out(&mut b, 0x00, 0, 0, 0xb2, 0).status, GOOD);
    // Registering again with the wrong key conflicts.
    assert_eq!(pr_out(&mut b, 0x00, 0, 0x99, 0xb3, 0).status, CONFLICT);
    let keys = pr_in(&mut c, 0x00, 100);
    assert_eq!(
        keys.data,
        [0, 0, 0, 2, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0xa1, 0, 0, 0, 0, 0, 0, 0, 0xb2]
    );
    // a: Write Exclusive - Registrants Only (TYPE 5).
    assert_eq!(pr_out(&mut a, 0x01, 0x05, 0xa1, 0, 0).status, GOOD);
    let res = pr_in(&mut c, 0x01, 100);
    assert_eq!(
        res.data,
        [0, 0, 0, 2, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0xa1, 0, 0, 0, 0, 0, 0x05, 0, 0]
    );
    // Registered b writes; unregistered c reads but may not write.
    assert_eq!(write(&mut b, 0xbb).status, GOOD);
    assert_eq!(read(&mut c).status, GOOD);
    let w = write(&mut c, 0xcc);
    assert_eq!((w.status, w.sense.len()), (CONFLICT, 0));
    assert_eq!(read(&mut c).data, vec![0xbb; 512]);
    // c may not RESERVE, RELEASE or CLEAR: it is not registered.
    assert_eq!(pr_out(&mut c, 0x01, 0x05, 0, 0, 0).status, CONFLICT);
    assert_eq!(pr_out(&mut c, 0x03, 0, 0, 0, 0).status, CONFLICT);
    // a releases: b (registered) gets RESERVATIONS RELEASED, once; c nothing.
    assert_eq!(pr_out(&mut a, 0x02, 0x05, 0xa1, 0, 0).status, GOOD);
    assert_eq!(Initiator::sense(&read(&mut b)), (6, 0x2a, 0x04));
    assert_eq!(read(&mut b).status, GOOD);
    assert_eq!(write(&mut c, 0xcc).status, GOOD);
    // b takes Exclusive Access and a preempts it (PREEMPT, SA key = b's key): b's
    // registration goes, b is told REGISTRATIONS PREEMPTED, a holds Exclusive Access.
    assert_eq!(pr_out(&mut b, 0x01, 0x03, 0xb2, 0, 0).status, GOOD);
    assert_eq!(read(&mut a).status, CONFLICT);
    assert_eq!(pr_out(&mut a, 0x04, 0x03, 0xa1, 0xb2, 0).status, GOOD);
    assert_eq!(Initiator::sense(&read(&mut b)), (6, 0x2a, 0x05));
    assert_eq!(read(&mut b).status, CONFLICT);
    assert_eq!(read(&mut a).status, GOOD);
    assert_eq!(
        pr_in(&mut c, 0x00, 100).data,
        [0, 0, 0, 3, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0xa1]
    );
    // CLEAR by a: everything goes; c writes again.
    assert_eq!(pr_out(&mut a, 0x03, 0, 0xa1, 0, 0).status, GOOD);
    assert_eq!(write(&mut c, 0xcd).status, GOOD);
    for i in [a, b, c] {
        i.logout();
    }
    daemon.shutdown(Duration::from_secs(1));
}

#[test]
fn spc2_reservation_is_released_by_logout() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(config(dir.path())).unwrap();
    let (mut a, mut b) = (login(&daemon, HOST_A), login(&daemon, HOST_B));
    assert_eq!(a.command(0, &[0x16, 0, 0, 0, 0, 0], &[], 0).status, GOOD);
    assert_eq!(
        b.command(0, &[0x16, 0, 0, 0, 0, 0], &[], 0).status,
        CONFLICT
    );
    assert_eq!(b.command(0, &[0; 6], &[], 0).status, CONFLICT);
    a.logout();
    // The logout is processed by the target's connection thread: poll with a deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = b.command(0, &[0x16, 0, 0, 0, 0, 0], &[], 0);
        if r.status == GOOD {
            break;
        }
        assert_eq!(r.status, CONFLICT);
        assert!(
            std::time::Instant::now() < deadline,
            "RESERVE never released"
        );
        std::thread::yield_now();
    }
    assert_eq!(b.command(0, &[0x17, 0, 0, 0, 0, 0], &[], 0).status, GOOD);
    b.logout();
    daemon.shutdown(Duration::from_secs(1));
}

#[test]
fn aptpl_reservation_survives_a_daemon_restart() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(config(dir.path())).unwrap();
    let mut a = login(&daemon, HOST_A);
    // REGISTER with APTPL (byte 20 bit 0), RESERVE Exclusive Access.
    assert_eq!(
        pr_out(&mut a, 0x00, 0, 0, 0x1234_5678_9abc_def0, 0x01).status,
        GOOD
    );
    assert_eq!(
        pr_out(&mut a, 0x01, 0x03, 0x1234_5678_9abc_def0, 0, 0).status,
        GOOD
    );
    assert_eq!(pr_in(&mut a, 0x02, 8).data[3] & 0x01, 0x01, "PTPL_A");
    let before = pr_in(&mut a, 0x03, 512).data;
    a.logout();
    daemon.shutdown(Duration::from_secs(1));
    assert!(dir.path().join("state/reservations/disk0.toml").exists());

    let daemon = Daemon::start(config(dir.path())).unwrap();
    let mut b = login(&daemon, HOST_B);
    // The same registration (a's initiator port, its key), holding Exclusive Access.
    assert_eq!(pr_in(&mut b, 0x03, 512).data, before);
    let held = pr_in(&mut b, 0x01, 100).data;
    assert_eq!(held[8..16], 0x1234_5678_9abc_def0u64.to_be_bytes());
    assert_eq!(held[21], 0x03);
    assert_eq!(read(&mut b).status, CONFLICT);
    // b cannot clear it without a registration; a REGISTER AND IGNORE then PREEMPT can,
    // and APTPL off removes the saved state.
    assert_eq!(pr_out(&mut b, 0x06, 0, 0, 0x77, 0).status, GOOD);
    assert_eq!(
        pr_out(&mut b, 0x04, 0x01, 0x77, 0x1234_5678_9abc_def0, 0).status,
        GOOD
    );
    assert_eq!(read(&mut b).status, GOOD);
    assert!(!dir.path().join("state/reservations/disk0.toml").exists());
    b.logout();
    daemon.shutdown(Duration::from_secs(1));
}

fn disk(designator: &str) -> CscdDescriptor {
    CscdDescriptor {
        nul: false,
        peripheral_device_type: 0,
        relative_initiator_port: 0,
        identifier: CscdIdentifier::Identification {
            designator: Designator::parse_name(designator).unwrap(),
        },
        parameters: DeviceParameters::Block {
            pad: false,
            block_length: 512,
        },
    }
}

/// EXTENDED COPY (LID1) of `segments` between disk0 (CSCD 0) and disk1 (CSCD 1), sent to
/// LUN 0.
fn extended_copy(i: &mut Initiator, segments: Vec<Segment>) -> Reply {
    static NEXT_ID: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(1);
    let list = ParameterList {
        list_identifier: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        sequential_striped: false,
        list_id_usage: ListIdUsage::Discard,
        priority: 1,
        cscds: vec![disk("naa.5001405a1b2c3d01"), disk("naa.5001405a1b2c3d03")],
        segments: segments
            .into_iter()
            .map(|body| SegmentDescriptor { cat: false, body })
            .collect(),
        inline_data: Vec::new(),
    }
    .encode();
    let mut cdb = [0u8; 16];
    cdb[0] = 0x83;
    cdb[10..14].copy_from_slice(&(list.len() as u32).to_be_bytes());
    i.command(0, &cdb, &list, 0)
}

fn lun_read(i: &mut Initiator, lun: u8, lba: u8, blocks: u8) -> Reply {
    let cdb = [0x28, 0, 0, 0, 0, lba, 0, 0, blocks, 0];
    i.command(lun, &cdb, &[], u32::from(blocks) * 512)
}

#[test]
fn extended_copy_meets_a_write_exclusive_reservation() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(config(dir.path())).unwrap();
    let (mut a, mut b) = (login(&daemon, HOST_A), login(&daemon, HOST_B));
    for i in [&mut a, &mut b] {
        assert_eq!(
            Initiator::sense(&i.command(1, &[0; 6], &[], 0)),
            (6, 0x29, 0)
        );
    }
    let pattern: Vec<u8> = (0..8 * 512u32).map(|n| (n * 13 + n / 512) as u8).collect();
    assert_eq!(
        a.command(0, &[0x2a, 0, 0, 0, 0, 16, 0, 0, 8, 0], &pattern, 0)
            .status,
        GOOD
    );
    let untouched = lun_read(&mut a, 1, 32, 8).data;
    // b holds disk1 Write Exclusive.
    let mut list = [0u8; 24];
    list[8..16].copy_from_slice(&0xb0u64.to_be_bytes());
    assert_eq!(
        b.command(1, &[0x5f, 0, 0, 0, 0, 0, 0, 0, 24, 0], &list, 0)
            .status,
        GOOD
    );
    list = [0u8; 24];
    list[..8].copy_from_slice(&0xb0u64.to_be_bytes());
    assert_eq!(
        b.command(1, &[0x5f, 1, 0x01, 0, 0, 0, 0, 0, 24, 0], &list, 0)
            .status,
        GOOD
    );

    let copy = Segment::BlockToBlock {
        hold: false,
        dc: false,
        source: CscdId(0),
        destination: CscdId(1),
        blocks: 8,
        source_lba: 16,
        destination_lba: 32,
    };
    let r = extended_copy(&mut a, vec![copy.clone()]);
    assert_eq!(Initiator::sense(&r), (0x0a, 0x0d, 0x01), "{r:?}");
    let sense = Sense::decode(&r.sense).unwrap();
    assert_eq!(sense.segment_number, Some(0));
    assert_eq!(
        sense.forwarded,
        [ForwardedSense {
            source: ForwardedSource::CopyDestination,
            status: Status::RESERVATION_CONFLICT,
            sense: Vec::new(),
        }]
    );
    // Fixed format: the destination's area (offset in byte 9) starts with its status byte.
    let at = usize::from(r.sense[9]);
    assert_eq!(r.sense[at], 0x18);
    // The segment pointer names CSCD descriptor 1 (list offset 16 + 32).
    assert_eq!(sense.field_pointer(), Some(48));
    assert_eq!(lun_read(&mut a, 1, 32, 8).data, untouched);

    // Under Write Exclusive - Registrants Only (b preempts its own key to change the type),
    // a list that first registers the copy manager (14h) copies.
    list = [0u8; 24];
    list[..8].copy_from_slice(&0xb0u64.to_be_bytes());
    list[8..16].copy_from_slice(&0xb0u64.to_be_bytes());
    assert_eq!(
        b.command(1, &[0x5f, 4, 0x05, 0, 0, 0, 0, 0, 24, 0], &list, 0)
            .status,
        GOOD
    );
    let r = extended_copy(&mut a, vec![copy.clone()]);
    assert_eq!(
        Initiator::sense(&r),
        (0x0a, 0x0d, 0x01),
        "still unregistered"
    );
    let register = Segment::RegisterKey {
        destination: CscdId(1),
        reservation_key: 0,
        service_action_reservation_key: 0xc0c0,
    };
    let r = extended_copy(&mut a, vec![register, copy]);
    assert_eq!(r.status, GOOD, "{r:?}");
    assert_eq!(lun_read(&mut a, 1, 32, 8).data, pattern);
    // disk1's registrations: b's key, then the copy manager's.
    let keys = b.command(1, &[0x5e, 0, 0, 0, 0, 0, 0, 0, 64, 0], &[], 64);
    assert_eq!(
        keys.data,
        [0, 0, 0, 3, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0xb0, 0, 0, 0, 0, 0, 0, 0xc0, 0xc0]
    );
    let full = b
        .command(1, &[0x5e, 3, 0, 0, 0, 0, 0, 1, 0, 0], &[], 256)
        .data;
    let name = b"xcopyd:copy-manager";
    assert!(full.windows(name.len()).any(|w| w == name), "{full:02x?}");
    a.logout();
    b.logout();
    daemon.shutdown(Duration::from_secs(1));
}

#[test]
fn a_long_copy_through_the_ring_meets_the_reservation_too() {
    // 6144 blocks (3 MiB): more than the copy reads in line, so the io_uring engine (or
    // the read-ahead thread where the kernel refuses rings) moves it.
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(config(dir.path())).unwrap();
    let (mut a, mut b) = (login(&daemon, HOST_A), login(&daemon, HOST_B));
    assert_eq!(
        Initiator::sense(&b.command(1, &[0; 6], &[], 0)),
        (6, 0x29, 0)
    );
    let mut list = [0u8; 24];
    list[8..16].copy_from_slice(&7u64.to_be_bytes());
    assert_eq!(
        b.command(1, &[0x5f, 0, 0, 0, 0, 0, 0, 0, 24, 0], &list, 0)
            .status,
        GOOD
    );
    list = [0u8; 24];
    list[..8].copy_from_slice(&7u64.to_be_bytes());
    assert_eq!(
        b.command(1, &[0x5f, 1, 0x01, 0, 0, 0, 0, 0, 24, 0], &list, 0)
            .status,
        GOOD
    );
    let ones = vec![0xeeu8; 32 * 512];
    for k in 0..192u32 {
        let lba = (k * 32).to_be_bytes();
        let cdb = [0x2a, 0, lba[0], lba[1], lba[2], lba[3], 0, 0, 32, 0];
        assert_eq!(a.command(0, &cdb, &ones, 0).status, GOOD);
    }
    let copy = Segment::BlockToBlock {
        hold: false,
        dc: false,
        source: CscdId(0),
        destination: CscdId(1),
        blocks: 6144,
        source_lba: 0,
        destination_lba: 0,
    };
    let r = extended_copy(&mut a, vec![copy]);
    assert_eq!(Initiator::sense(&r), (0x0a, 0x0d, 0x01), "{r:?}");
    let sense = Sense::decode(&r.sense).unwrap();
    assert_eq!(sense.forwarded[0].status, Status::RESERVATION_CONFLICT);
    // Nothing reached disk1's image.
    let image = std::fs::read(dir.path().join("disk1.img")).unwrap();
    assert!(image.iter().all(|&x| x == 0));
    a.logout();
    b.logout();
    daemon.shutdown(Duration::from_secs(1));
}

#[test]
fn the_copy_manager_moves_a_reservation_it_was_given_15h() {
    use xcopyd::scsi::persistent_reservation::{RegisterAndMoveParameters, TransportId};
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(config(dir.path())).unwrap();
    let (mut a, mut b) = (login(&daemon, HOST_A), login(&daemon, HOST_B));
    for i in [&mut a, &mut b] {
        assert_eq!(
            Initiator::sense(&i.command(1, &[0; 6], &[], 0)),
            (6, 0x29, 0)
        );
    }
    // a holds disk1 Write Exclusive and moves it to the copy manager's initiator port.
    let mut list = [0u8; 24];
    list[8..16].copy_from_slice(&0xa0u64.to_be_bytes());
    assert_eq!(
        a.command(1, &[0x5f, 0, 0, 0, 0, 0, 0, 0, 24, 0], &list, 0)
            .status,
        GOOD
    );
    list = [0u8; 24];
    list[..8].copy_from_slice(&0xa0u64.to_be_bytes());
    assert_eq!(
        a.command(1, &[0x5f, 1, 0x01, 0, 0, 0, 0, 0, 24, 0], &list, 0)
            .status,
        GOOD
    );
    let to_cm = RegisterAndMoveParameters {
        reservation_key: 0xa0,
        service_action_reservation_key: 0xc0,
        unreg: true,
        aptpl: false,
        relative_target_port: 1,
        transport_id: TransportId {
            name: "xcopyd:copy-manager".into(),
            isid: None,
        },
    }
    .encode();
    let [_, _, h, l] = (to_cm.len() as u32).to_be_bytes();
    assert_eq!(
        a.command(1, &[0x5f, 7, 0x01, 0, 0, 0, 0, h, l, 0], &to_cm, 0)
            .status,
        GOOD
    );
    // Nobody but the copy manager may write disk1 now; a's copy into it works, and its 15h
    // hands the reservation on to b (every port of b's name, key 0xb0).
    let write1 = [0x2a, 0, 0, 0, 0, 64, 0, 0, 1, 0];
    assert_eq!(a.command(1, &write1, &[0x11; 512], 0).status, CONFLICT);
    let mut b_tid = Vec::new();
    TransportId {
        name: HOST_B.into(),
        isid: None,
    }
    .encode(&mut b_tid);
    let copy = Segment::BlockToBlock {
        hold: false,
        dc: false,
        source: CscdId(0),
        destination: CscdId(1),
        blocks: 8,
        source_lba: 0,
        destination_lba: 64,
    };
    let hand_over = Segment::ThirdPartyPrSource {
        destination: CscdId(1),
        reservation_key: 0xc0,
        service_action_reservation_key: 0xb0,
        unreg: true,
        aptpl: false,
        relative_target_port: 1,
        transport_id: b_tid,
    };
    let r = extended_copy(&mut a, vec![copy, hand_over]);
    assert_eq!(r.status, GOOD, "{r:?}");
    let held = b
        .command(1, &[0x5e, 1, 0, 0, 0, 0, 0, 0, 64, 0], &[], 64)
        .data;
    assert_eq!(held[8..16], 0xb0u64.to_be_bytes());
    assert_eq!(held[21], 0x01);
    // The copy manager unregistered itself (UNREG): b's key is the only one.
    let keys = b
        .command(1, &[0x5e, 0, 0, 0, 0, 0, 0, 0, 64, 0], &[], 64)
        .data;
    assert_eq!(keys[4..], [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0xb0]);
    assert_eq!(
        b.command(1, &[0x2a, 0, 0, 0, 0, 64, 0, 0, 1, 0], &[0x22; 512], 0)
            .status,
        GOOD
    );
    assert_eq!(
        a.command(1, &[0x2a, 0, 0, 0, 0, 64, 0, 0, 1, 0], &[0x33; 512], 0)
            .status,
        CONFLICT
    );
    a.logout();
    b.logout();
    daemon.shutdown(Duration::from_secs(1));
}
