//! Reservations over the iSCSI target of the daemon, with PERSISTENT RESERVE commands built
//! here from SPC-4's tables (not through xcopyd's encoders): two sessions get the exact
//! parameter data, RESERVATION CONFLICT where the tables say, and unit attentions; an APTPL
//! reservation survives a daemon restart.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Initiator, Reply};
use xcopyd::daemon::{Daemon, DaemonConfig};

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
size = "1MiB"
designator = "naa.5001405a1b2c3d01"
[[lun]]
device = "disk0"
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
