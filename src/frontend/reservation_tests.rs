//! Persistent reservations through the dispatcher: two I_T nexuses send PERSISTENT RESERVE
//! commands built here byte by byte (SPC-4 6.15, 6.16), and get exact parameter data,
//! RESERVATION CONFLICT on exactly what the tables say, and unit attentions.

use std::sync::Arc;

use crate::command::{Abort, CommandResult, Nexus};
use crate::device::ScsiDevice;
use crate::frontend::testing::{MemoryDisk, RecordingCopyService};
use crate::frontend::Dispatcher;
use crate::scsi::{Sense, Status};

/// Two iSCSI initiator ports (name + ISID; the TSIH in the low 16 bits is the session).
fn host_a() -> Nexus {
    Nexus {
        initiator: "iqn.1993-08.org.debian:01:a".into(),
        session: 0x4000_0000_0001_0001,
    }
}

fn host_b() -> Nexus {
    Nexus {
        initiator: "iqn.1993-08.org.debian:01:b".into(),
        session: 0x4000_0000_0002_0002,
    }
}

fn dispatcher() -> Dispatcher {
    let luns: Vec<Arc<dyn ScsiDevice>> = vec![Arc::new(MemoryDisk::new("disk0", 512, 64))];
    Dispatcher::new(luns, RecordingCopyService::new())
}

fn run(d: &Dispatcher, n: &Nexus, cdb: &[u8], out: &[u8], len: usize) -> CommandResult {
    d.execute(n, 0, cdb, out, len, &Abort::new())
}

/// PERSISTENT RESERVE OUT: service action, TYPE, and the 24-byte basic parameter list.
fn pr_out(
    d: &Dispatcher,
    n: &Nexus,
    sa: u8,
    kind: u8,
    key: u64,
    sa_key: u64,
    flags: u8,
) -> CommandResult {
    let cdb = [0x5f, sa, kind, 0, 0, 0, 0, 0, 24, 0];
    let mut list = [0u8; 24];
    list[..8].copy_from_slice(&key.to_be_bytes());
    list[8..16].copy_from_slice(&sa_key.to_be_bytes());
    list[20] = flags;
    run(d, n, &cdb, &list, 0)
}

fn pr_in(d: &Dispatcher, n: &Nexus, sa: u8, alloc: u16) -> CommandResult {
    let [a0, a1] = alloc.to_be_bytes();
    run(
        d,
        n,
        &[0x5e, sa, 0, 0, 0, 0, 0, a0, a1, 0],
        &[],
        usize::from(alloc),
    )
}

fn good(r: &CommandResult) {
    assert_eq!((r.status, r.sense.len()), (Status::GOOD, 0), "{r:?}");
}

fn conflict(r: &CommandResult) {
    assert_eq!(r.status, Status::RESERVATION_CONFLICT, "{r:?}");
    assert!(r.sense.is_empty());
}

fn sense(r: &CommandResult) -> (u8, u8, u8) {
    assert_eq!(r.status, Status::CHECK_CONDITION, "{r:?}");
    let s = Sense::decode(&r.sense).unwrap();
    (s.key.0, s.asc.asc(), s.asc.ascq())
}

const TUR: [u8; 6] = [0; 6];
const READ10: [u8; 10] = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0];
const WRITE10: [u8; 10] = [0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0];

/// Clears the power-on unit attention of `n`.
fn attach(d: &Dispatcher, n: &Nexus) {
    assert_eq!(sense(&run(d, n, &TUR, &[], 0)), (6, 0x29, 0));
}

fn read(d: &Dispatcher, n: &Nexus) -> CommandResult {
    run(d, n, &READ10, &[], 512)
}

fn write(d: &Dispatcher, n: &Nexus) -> CommandResult {
    run(d, n, &WRITE10, &[0x5a; 512], 0)
}

#[test]
fn register_reserve_and_the_exact_parameter_data() {
    let d = dispatcher();
    let (a, b) = (host_a(), host_b());
    attach(&d, &a);
    attach(&d, &b);
    // Nothing registered: READ KEYS is PRGENERATION 0, no keys.
    let r = pr_in(&d, &a, 0x00, 64);
    good(&r);
    assert_eq!(r.data_in, [0, 0, 0, 0, 0, 0, 0, 0]);
    good(&pr_out(&d, &a, 0x00, 0, 0, 0xaaaa, 0));
    good(&pr_out(&d, &b, 0x00, 0, 0, 0xbbbb, 0));
    let r = pr_in(&d, &b, 0x00, 64);
    assert_eq!(
        r.data_in,
        [0, 0, 0, 2, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0xaa, 0xaa, 0, 0, 0, 0, 0, 0, 0xbb, 0xbb]
    );
    // Truncated to the allocation length, ADDITIONAL LENGTH still says 16.
    assert_eq!(
        pr_in(&d, &b, 0x00, 12).data_in,
        [0, 0, 0, 2, 0, 0, 0, 16, 0, 0, 0, 0]
    );
    // a takes Write Exclusive (TYPE 1).
    good(&pr_out(&d, &a, 0x01, 0x01, 0xaaaa, 0, 0));
    let r = pr_in(&d, &b, 0x01, 64);
    assert_eq!(
        r.data_in,
        [0, 0, 0, 2, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0xaa, 0xaa, 0, 0, 0, 0, 0, 0x01, 0, 0]
    );
    // READ FULL STATUS: a holds it, b does not; both through target port 1, with their
    // iSCSI initiator port TransportIDs.
    let r = pr_in(&d, &b, 0x03, 512);
    let tid_a = b"iqn.1993-08.org.debian:01:a,i,0x400000000001";
    let tid_len = (tid_a.len() + 1).next_multiple_of(4);
    let desc = 24 + 4 + tid_len;
    assert_eq!(r.data_in[..8], [0, 0, 0, 2, 0, 0, 0, (2 * desc) as u8]);
    let first = &r.data_in[8..8 + desc];
    assert_eq!(first[..8], [0, 0, 0, 0, 0, 0, 0xaa, 0xaa]);
    assert_eq!(first[12..14], [0x01, 0x01]);
    assert_eq!(first[18..24], [0, 1, 0, 0, 0, (4 + tid_len) as u8]);
    assert_eq!(first[24..28], [0x45, 0, 0, tid_len as u8]);
    assert_eq!(&first[28..28 + tid_a.len()], tid_a);
    assert!(first[28 + tid_a.len()..].iter().all(|&x| x == 0));
    let second = &r.data_in[8 + desc..];
    assert_eq!(second[12..14], [0x00, 0x00]);
    // REPORT CAPABILITIES.
    assert_eq!(
        pr_in(&d, &a, 0x02, 8).data_in,
        [0, 8, 0x1d, 0xb0, 0xea, 0x01, 0, 0]
    );
    // A bad service action: 05/24/00.
    assert_eq!(sense(&pr_in(&d, &a, 0x07, 8)), (5, 0x24, 0));
}

#[test]
fn write_exclusive_blocks_writes_of_others_only() {
    let d = dispatcher();
    let (a, b) = (host_a(), host_b());
    attach(&d, &a);
    attach(&d, &b);
    good(&pr_out(&d, &a, 0x00, 0, 0, 1, 0));
    good(&pr_out(&d, &a, 0x01, 0x01, 1, 0, 0));
    good(&write(&d, &a));
    good(&read(&d, &b));
    good(&run(&d, &b, &TUR, &[], 0));
    conflict(&write(&d, &b));
    // The same initiator name with another ISID is another I_T nexus.
    let a2 = Nexus {
        session: 0x4000_0000_0009_0003,
        ..host_a()
    };
    attach(&d, &a2);
    conflict(&write(&d, &a2));
    // Session reinstatement (same ISID, new TSIH) keeps the holder.
    let a3 = Nexus {
        session: 0x4000_0000_0001_0007,
        ..host_a()
    };
    attach(&d, &a3);
    good(&write(&d, &a3));
    // Exclusive Access: b's reads conflict too, INQUIRY and READ CAPACITY pass.
    good(&pr_out(&d, &a, 0x02, 0x01, 1, 0, 0));
    good(&pr_out(&d, &a, 0x01, 0x03, 1, 0, 0));
    conflict(&read(&d, &b));
    good(&run(&d, &b, &[0x12, 0, 0, 0, 36, 0], &[], 36));
    good(&run(&d, &b, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 8));
    // b registers: still no access under plain Exclusive Access.
    good(&pr_out(&d, &b, 0x00, 0, 0, 2, 0));
    conflict(&read(&d, &b));
    // ...but under Exclusive Access - Registrants Only it has. a changes the type by
    // preempting its own key, which tells b: RESERVATIONS RELEASED.
    good(&pr_out(&d, &a, 0x04, 0x06, 1, 1, 0));
    assert_eq!(sense(&read(&d, &b)), (6, 0x2a, 0x04));
    good(&read(&d, &b));
    good(&write(&d, &b));
    let unregistered = Nexus {
        initiator: "iqn.1993-08.org.debian:01:c".into(),
        session: 0x4000_0000_0003_0001,
    };
    attach(&d, &unregistered);
    conflict(&read(&d, &unregistered));
}

#[test]
fn unit_attentions_go_to_the_other_registrants() {
    let d = dispatcher();
    let (a, b) = (host_a(), host_b());
    attach(&d, &a);
    attach(&d, &b);
    good(&pr_out(&d, &a, 0x00, 0, 0, 1, 0));
    good(&pr_out(&d, &b, 0x00, 0, 0, 2, 0));
    good(&pr_out(&d, &a, 0x01, 0x05, 1, 0, 0));
    // a releases a registrants-only reservation: b gets RESERVATIONS RELEASED once;
    // INQUIRY neither reports nor clears it.
    good(&pr_out(&d, &a, 0x02, 0x05, 1, 0, 0));
    good(&run(&d, &b, &[0x12, 0, 0, 0, 36, 0], &[], 36));
    assert_eq!(sense(&read(&d, &b)), (6, 0x2a, 0x04));
    good(&read(&d, &b));
    good(&read(&d, &a));
    // b preempts a's registration: REGISTRATIONS PREEMPTED for a.
    good(&pr_out(&d, &b, 0x04, 0x01, 2, 1, 0));
    assert_eq!(sense(&run(&d, &a, &TUR, &[], 0)), (6, 0x2a, 0x05));
    // a is no longer registered: its PR OUT RESERVE conflicts. b reserves Write Exclusive:
    // a's write conflicts.
    conflict(&pr_out(&d, &a, 0x01, 0x01, 1, 0, 0));
    good(&write(&d, &a));
    good(&pr_out(&d, &b, 0x01, 0x01, 2, 0, 0));
    conflict(&write(&d, &a));
    // CLEAR by b (after a registers again): RESERVATIONS PREEMPTED for a.
    good(&pr_out(&d, &a, 0x06, 0, 0, 1, 0));
    good(&pr_out(&d, &b, 0x03, 0, 2, 0, 0));
    assert_eq!(sense(&run(&d, &a, &TUR, &[], 0)), (6, 0x2a, 0x03));
    good(&write(&d, &a));
    assert_eq!(pr_in(&d, &a, 0x00, 8).data_in[4..8], [0, 0, 0, 0]);
}

#[test]
fn spc2_reserve_release_across_nexuses_and_loss() {
    let d = dispatcher();
    let (a, b) = (host_a(), host_b());
    attach(&d, &a);
    attach(&d, &b);
    good(&run(&d, &a, &[0x16, 0, 0, 0, 0, 0], &[], 0));
    good(&run(&d, &a, &[0x16, 0, 0, 0, 0, 0], &[], 0));
    conflict(&run(&d, &b, &[0x16, 0, 0, 0, 0, 0], &[], 0));
    conflict(&run(&d, &b, &TUR, &[], 0));
    conflict(&run(&d, &b, &[0x1a, 0, 0x3f, 0, 255, 0], &[], 255));
    good(&run(&d, &b, &[0x12, 0, 0, 0, 36, 0], &[], 36));
    // RELEASE from b: GOOD, releases nothing.
    good(&run(&d, &b, &[0x17, 0, 0, 0, 0, 0], &[], 0));
    conflict(&read(&d, &b));
    // PERSISTENT RESERVE commands conflict for everyone while it is held.
    conflict(&pr_in(&d, &a, 0x00, 8));
    // a's nexus is lost: the reservation goes.
    d.nexus_lost(&a);
    good(&run(&d, &b, &[0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 0));
    // A LUN reset releases it too.
    d.lun_reset(0);
    assert_eq!(sense(&run(&d, &a, &TUR, &[], 0)), (6, 0x29, 0));
    good(&write(&d, &a));
    // With a registration present, RESERVE from an unregistered nexus conflicts (CRH).
    good(&pr_out(&d, &a, 0x00, 0, 0, 1, 0));
    assert_eq!(sense(&run(&d, &b, &TUR, &[], 0)), (6, 0x29, 0));
    conflict(&run(&d, &b, &[0x16, 0, 0, 0, 0, 0], &[], 0));
}

#[test]
fn parameter_list_errors_are_exact() {
    let d = dispatcher();
    let a = host_a();
    attach(&d, &a);
    // 23 bytes where the CDB says 24, and the CDB saying 23: PARAMETER LIST LENGTH ERROR.
    let r = run(&d, &a, &[0x5f, 0, 0, 0, 0, 0, 0, 0, 24, 0], &[0; 23], 0);
    assert_eq!(sense(&r), (5, 0x1a, 0));
    let r = run(&d, &a, &[0x5f, 0, 0, 0, 0, 0, 0, 0, 23, 0], &[0; 23], 0);
    assert_eq!(sense(&r), (5, 0x1a, 0));
    // SPEC_I_PT with RESERVE: INVALID FIELD IN PARAMETER LIST at byte 20.
    good(&pr_out(&d, &a, 0x00, 0, 0, 1, 0));
    let r = pr_out(&d, &a, 0x01, 0x01, 1, 0, 0x08);
    let s = Sense::decode(&r.sense).unwrap();
    assert_eq!((s.asc.0, s.field_pointer()), (0x2600, Some(20)));
    // RESERVE with a SCOPE: INVALID FIELD IN CDB at byte 2.
    let r = pr_out(&d, &a, 0x01, 0x11, 1, 0, 0);
    let s = Sense::decode(&r.sense).unwrap();
    assert_eq!((s.asc.0, s.field_pointer()), (0x2400, Some(2)));
}

#[test]
fn prevented_medium_removal_is_per_nexus_and_ends_with_it() {
    let d = dispatcher();
    let (a, b) = (host_a(), host_b());
    attach(&d, &a);
    attach(&d, &b);
    const PREVENT: [u8; 6] = [0x1e, 0, 0, 0, 1, 0];
    const ALLOW: [u8; 6] = [0x1e, 0, 0, 0, 0, 0];
    const EJECT: [u8; 6] = [0x1b, 0, 0, 0, 0x02, 0];
    // The memory disk answers neither command itself (05/20/00): what reaches it shows.
    assert_eq!(sense(&run(&d, &a, &PREVENT, &[], 0)), (5, 0x20, 0));
    // Any nexus's eject or load is refused while a prevents; a power condition is not.
    assert_eq!(sense(&run(&d, &b, &EJECT, &[], 0)), (5, 0x53, 0x02));
    assert_eq!(sense(&run(&d, &a, &EJECT, &[], 0)), (5, 0x53, 0x02));
    let load = [0x1b, 0, 0, 0, 0x03, 0];
    assert_eq!(sense(&run(&d, &b, &load, &[], 0)), (5, 0x53, 0x02));
    let idle = [0x1b, 0, 0, 0, 0x22, 0];
    assert_eq!(sense(&run(&d, &b, &idle, &[], 0)), (5, 0x20, 0));
    // b's ALLOW does not lift a's prevention; a's does.
    assert_eq!(sense(&run(&d, &b, &ALLOW, &[], 0)), (5, 0x20, 0));
    assert_eq!(sense(&run(&d, &b, &EJECT, &[], 0)), (5, 0x53, 0x02));
    assert_eq!(sense(&run(&d, &a, &ALLOW, &[], 0)), (5, 0x20, 0));
    assert_eq!(sense(&run(&d, &b, &EJECT, &[], 0)), (5, 0x20, 0));
    // I_T nexus loss and LUN reset end a prevention too.
    run(&d, &a, &PREVENT, &[], 0);
    d.nexus_lost(&a);
    assert_eq!(sense(&run(&d, &b, &EJECT, &[], 0)), (5, 0x20, 0));
    run(&d, &b, &PREVENT, &[], 0);
    d.lun_reset(0);
    assert_eq!(sense(&run(&d, &a, &EJECT, &[], 0)), (6, 0x29, 0));
    assert_eq!(sense(&run(&d, &a, &EJECT, &[], 0)), (5, 0x20, 0));
}

#[test]
fn a_tape_keeps_reservations_too() {
    let dir = tempfile::tempdir().unwrap();
    let (tape, _) = crate::device::tape::EmulatedTape::open(
        "tape0",
        dir.path().join("t.tap"),
        crate::device::tape::TapeConfig::default(),
    )
    .unwrap();
    let luns: Vec<Arc<dyn ScsiDevice>> = vec![Arc::new(tape)];
    let d = Dispatcher::new(luns, RecordingCopyService::new());
    let (a, b) = (host_a(), host_b());
    attach(&d, &a);
    attach(&d, &b);
    good(&pr_out(&d, &a, 0x00, 0, 0, 1, 0));
    good(&pr_out(&d, &a, 0x01, 0x03, 1, 0, 0));
    // Exclusive Access: b may ask the limits, not write, read or rewind.
    good(&run(&d, &b, &[0x05, 0, 0, 0, 0, 0], &[], 6));
    conflict(&run(&d, &b, &[0x0a, 0, 0, 0, 4, 0], &[1, 2, 3, 4], 0));
    conflict(&run(&d, &b, &[0x08, 0, 0, 0, 4, 0], &[], 4));
    conflict(&run(&d, &b, &[0x01, 0, 0, 0, 0, 0], &[], 0));
    good(&run(&d, &a, &[0x0a, 0, 0, 0, 4, 0], &[1, 2, 3, 4], 0));
    // Write Exclusive: b rewinds and reads, still may not write.
    good(&pr_out(&d, &a, 0x04, 0x01, 1, 1, 0));
    good(&run(&d, &b, &[0x01, 0, 0, 0, 0, 0], &[], 0));
    let r = run(&d, &b, &[0x08, 0, 0, 0, 4, 0], &[], 4);
    good(&r);
    assert_eq!(r.data_in, [1, 2, 3, 4]);
    conflict(&run(&d, &b, &[0x10, 0, 0, 0, 1, 0], &[], 0));
}
