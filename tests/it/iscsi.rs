//! The iSCSI target in process, driven by a minimal initiator written here: login,
//! INQUIRY, REPORT LUNS, unit attention, WRITE(6)/READ(6) on an emulated tape through
//! immediate data + R2T + split Data-In, task management, logout, and hostile input.

use crate::common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;

use common::{read_pdu, Initiator, IQN};

use xcopyd::device::tape::{EmulatedTape, TapeConfig};
use xcopyd::device::ScsiDevice;
use xcopyd::frontend::iscsi::{self, Target, TargetConfig};
use xcopyd::frontend::testing::{MemoryDisk, RecordingCopyService};
use xcopyd::frontend::Dispatcher;
use xcopyd::iscsi::pdu::{Bhs, Opcode, Pdu};
use xcopyd::iscsi::text::TextKeys;

fn start() -> (tempfile::TempDir, Target) {
    start_with(|_| {})
}

/// [`start`] with the target's configuration changed by `f`.
fn start_with(f: impl FnOnce(&mut TargetConfig)) -> (tempfile::TempDir, Target) {
    let dir = tempfile::tempdir().unwrap();
    let (tape, _) =
        EmulatedTape::open("tape0", dir.path().join("t.tap"), TapeConfig::default()).unwrap();
    let luns: Vec<Arc<dyn ScsiDevice>> = vec![
        Arc::new(MemoryDisk::new("disk0", 512, 2048)),
        Arc::new(tape),
    ];
    let d = Arc::new(Dispatcher::new(luns, RecordingCopyService::new()));
    let mut config = TargetConfig::new("127.0.0.1:0", IQN);
    f(&mut config);
    let t = iscsi::start(config, d).unwrap();
    (dir, t)
}

#[test]
fn login_commands_tape_round_trip_abort_and_logout() {
    let (_dir, target) = start();
    let mut i = Initiator::logged_in(target.local_addr());

    // INQUIRY is not blocked by the pending unit attention; it keeps 3PC.
    let r = i.command(1, &[0x12, 0, 0, 0, 96, 0], &[], 96);
    assert_eq!(r.status, 0);
    assert_eq!(r.data.len(), 96);
    assert_eq!((r.data[0], r.data[5] & 0x08), (0x01, 0x08));
    // SSC-3 version descriptor (after SAM-3, SPC-3).
    assert_eq!(r.data[62..64], [0x04, 0x00]);
    // Expected 96, got 96: no residual, status collapsed into the Data-In.
    assert!(!r.underflow);
    assert_eq!((r.residual, r.data_in_pdus), (0, 1));

    let r = i.command(0, &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0], &[], 64);
    assert_eq!(&r.data[..8], &[0, 0, 0, 16, 0, 0, 0, 0]);
    assert_eq!(r.data[17], 1);

    // Missing LUN: INQUIRY qualifier 011b, TUR 05/25/00.
    let r = i.command(9, &[0x12, 0, 0, 0, 36, 0], &[], 36);
    assert_eq!(r.data[0], 0x7f);
    assert_eq!(
        Initiator::sense(&i.command(9, &[0; 6], &[], 0)),
        (5, 0x25, 0)
    );

    assert_eq!(
        Initiator::sense(&i.command(1, &[0; 6], &[], 0)),
        (6, 0x29, 0)
    );
    assert_eq!(i.command(1, &[0; 6], &[], 0).status, 0);

    // 100000 bytes: 8192 immediate, the rest in R2T bursts of 32768, 8192 per Data-Out.
    let data: Vec<u8> = (0..100_000u32).map(|x| (x * 7 + x / 251) as u8).collect();
    let len = data.len() as u32;
    let write6 = [0x0a, 0, (len >> 16) as u8, (len >> 8) as u8, len as u8, 0];
    assert_eq!(i.command(1, &write6, &data, 0).status, 0);
    assert_eq!(i.command(1, &[0x01, 0, 0, 0, 0, 0], &[], 0).status, 0);
    let read6 = [0x08, 0, (len >> 16) as u8, (len >> 8) as u8, len as u8, 0];
    let r = i.command(1, &read6, &[], len);
    assert_eq!(r.status, 0);
    assert_eq!(r.data.len(), data.len());
    assert!(r.data == data, "tape data read back");
    assert_eq!(r.data_in_pdus, 100_000usize.div_ceil(8192));
    assert!(!r.underflow);

    // The disk LUN, with a CHECK CONDITION: separate SCSI Response with sense.
    assert_eq!(
        Initiator::sense(&i.command(0, &[0; 6], &[], 0)),
        (6, 0x29, 0)
    );
    let r = i.command(0, &[0x28, 0, 0, 0, 0x10, 0, 0, 0, 1, 0], &[], 512);
    assert_eq!(Initiator::sense(&r), (5, 0x21, 0));

    // ABORT TASK: unknown tag -> Task does not exist.
    assert_eq!(i.tmf(1, 1, 0x7777), 1);
    // A write waiting for its R2T'd data: aborted, never answered.
    let p = i.command_pdu(0, &[0x2a, 0, 0, 0, 0, 0, 0, 0, 4, 0], 2048, false, &[]);
    let itt = p.bhs.itt();
    i.send(&p);
    let r2t = i.recv();
    assert_eq!((r2t.bhs.opcode(), r2t.bhs.itt()), (Opcode::R2T, itt));
    assert_eq!(i.tmf(1, 0, itt), 0);
    // Data-Out for the aborted task is dropped; the connection keeps working.
    let mut b = Bhs::new(Opcode::DATA_OUT);
    b.set_flags(0x80).set_itt(itt).set_ttt(r2t.bhs.ttt());
    i.send(&Pdu::with_data(b, vec![0; 2048]));
    let r = i.nop(b"ping");
    assert_eq!(r.data, b"ping");
    // LUN RESET raises the unit attention again.
    assert_eq!(i.tmf(5, 1, 0), 0);
    assert_eq!(
        Initiator::sense(&i.command(1, &[0; 6], &[], 0)),
        (6, 0x29, 0)
    );
    assert_eq!(i.tmf(5, 9, 0), 2, "LUN does not exist");
    i.logout();
    target.shutdown();
}

#[test]
fn discovery_session_send_targets() {
    let (_dir, target) = start();
    let (mut i, r) = Initiator::login(
        target.local_addr(),
        "InitiatorName=iqn.test:init|SessionType=Discovery",
    );
    assert_eq!(r.bhs.byte(36), 0);
    assert_ne!(r.bhs.tsih(), 0);
    let mut b = Bhs::new(Opcode::TEXT_REQUEST);
    b.set_immediate(true)
        .set_flags(0x80)
        .set_itt(5)
        .set_ttt(0xffff_ffff)
        .set_cmd_sn(1);
    i.send(&Pdu::with_data(b, b"SendTargets=All\0".to_vec()));
    let r = i.recv();
    assert_eq!(r.bhs.opcode(), Opcode::TEXT_RESPONSE);
    let keys = TextKeys::decode(&r.data).unwrap();
    assert_eq!(keys.get("TargetName"), Some(IQN));
    assert_eq!(
        keys.get("TargetAddress"),
        Some(format!("{},1", target.local_addr()).as_str())
    );
    i.logout();
    target.shutdown();
}

#[test]
fn login_failures() {
    let (_dir, target) = start();
    let addr = target.local_addr();
    let (_, r) = Initiator::login(addr, "InitiatorName=i|TargetName=iqn.nope");
    assert_eq!((r.bhs.byte(36), r.bhs.byte(37)), (2, 3));
    let (_, r) = Initiator::login(addr, &format!("TargetName={IQN}"));
    assert_eq!((r.bhs.byte(36), r.bhs.byte(37)), (2, 7));
    let (_, r) = Initiator::login(addr, "garbage-without-equals");
    assert_eq!(r.bhs.byte(36), 2);
    target.shutdown();
}

#[test]
fn hostile_pdus_close_or_reject_and_others_keep_being_served() {
    let (_dir, target) = start();
    let addr = target.local_addr();
    let mut good = Initiator::logged_in(addr);
    good.nop(b"1");

    // A truncated PDU, then the peer goes away.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&[0x43, 0x87, 0, 0, 0, 0, 1]).unwrap();
    drop(s);

    // A data segment over the limit: closed without reading it.
    let mut bad = Initiator::connect(addr);
    let mut b = Bhs::new(Opcode::LOGIN_REQUEST);
    b.set_flags(0x87);
    let mut bytes = b.0.to_vec();
    bytes[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
    bad.s.write_all(&bytes).unwrap();
    assert!(read_pdu(&mut bad.s).is_none());

    // A SCSI command before login: Reject, then closed.
    let mut bad = Initiator::connect(addr);
    let p = bad.command_pdu(0, &[0; 6], 0, false, &[]);
    bad.send(&p);
    let r = bad.recv();
    assert_eq!((r.bhs.opcode(), r.bhs.byte(2)), (Opcode::REJECT, 0x04));
    assert_eq!(&r.data[..], &p.bhs.0[..]);
    assert!(read_pdu(&mut bad.s).is_none());

    // In full feature phase: an unknown opcode is rejected (command not supported), a
    // command outside the CmdSN window is ignored, an oversized segment closes.
    let mut bad = Initiator::logged_in(addr);
    let mut b = Bhs::new(Opcode(0x1c));
    b.set_immediate(true).set_itt(3).set_cmd_sn(bad.cmd_sn);
    bad.send(&Pdu::new(b));
    let r = bad.recv();
    assert_eq!((r.bhs.opcode(), r.bhs.byte(2)), (Opcode::REJECT, 0x05));
    let saved = bad.cmd_sn;
    bad.cmd_sn += 1000;
    let p = bad.command_pdu(0, &[0; 6], 0, false, &[]);
    bad.send(&p);
    bad.cmd_sn = saved;
    // Out of order but in the window: held until the gap is filled, then both answered.
    bad.cmd_sn += 1;
    let later = bad.command_pdu(0, &[0; 6], 0, false, &[]);
    bad.cmd_sn = saved;
    let first = bad.command_pdu(0, &[0; 6], 0, false, &[]);
    bad.send(&later);
    bad.send(&first);
    let a = bad.recv();
    let b2 = bad.recv();
    assert_eq!(
        (a.bhs.itt(), b2.bhs.itt()),
        (first.bhs.itt(), later.bhs.itt()),
        "executed in CmdSN order"
    );
    bad.cmd_sn = saved + 2;
    let r = bad.nop(b"still here");
    assert_eq!(
        r.bhs.exp_cmd_sn(),
        saved + 2,
        "the out-of-window command was ignored"
    );
    // Data-Out with a wrong DataSN: Reject, and the task ends with ABORTED COMMAND, DATA
    // PHASE ERROR; the connection stays up.
    let p = bad.command_pdu(0, &[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], 512, false, &[]);
    bad.send(&p);
    let r2t = bad.recv();
    let mut b = Bhs::new(Opcode::DATA_OUT);
    b.set_flags(0x80)
        .set_itt(p.bhs.itt())
        .set_ttt(r2t.bhs.ttt())
        .set_data_sn(27);
    bad.send(&Pdu::with_data(b, vec![0; 512]));
    let r = bad.recv();
    assert_eq!((r.bhs.opcode(), r.bhs.byte(2)), (Opcode::REJECT, 0x04));
    let r = bad.recv();
    assert_eq!(
        (r.bhs.opcode(), r.bhs.itt(), r.bhs.byte(3)),
        (Opcode::SCSI_RESPONSE, p.bhs.itt(), 2)
    );
    let sense = xcopyd::scsi::Sense::decode(&r.data[2..]).unwrap();
    assert_eq!((sense.key.0, sense.asc.asc()), (0x0b, 0x4b));
    assert_eq!(bad.nop(b"alive").data, b"alive");

    // Random garbage on a fresh connection.
    let mut s = TcpStream::connect(addr).unwrap();
    let junk: Vec<u8> = (0..4096u32)
        .map(|x| (x.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let _ = s.write_all(&junk);
    drop(s);

    // The first session never noticed.
    let r = good.nop(b"2");
    assert_eq!(r.data, b"2");
    let r = good.command(1, &[0x12, 0, 0, 0, 36, 0], &[], 36);
    assert_eq!(r.status, 0);
    good.logout();
    target.shutdown();
}

#[test]
fn many_sessions_at_once() {
    let (_dir, target) = start();
    let addr = target.local_addr();
    let handles: Vec<_> = (0..8)
        .map(|n| {
            std::thread::spawn(move || {
                let mut i = Initiator::logged_in(addr);
                let lba = n as u8;
                assert_eq!(
                    Initiator::sense(&i.command(0, &[0; 6], &[], 0)),
                    (6, 0x29, 0)
                );
                let data = vec![n as u8 + 1; 4096];
                let w = [0x2a, 0, 0, 0, 0, lba * 8, 0, 0, 8, 0];
                assert_eq!(i.command(0, &w, &data, 0).status, 0);
                let r = [0x28, 0, 0, 0, 0, lba * 8, 0, 0, 8, 0];
                assert!(i.command(0, &r, &[], 4096).data == data);
                i.logout();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    target.shutdown();
}

/// A memory disk whose READ(10) of one LBA stops at a gate: it says it has entered, then
/// waits until the test opens the gate (or `timeout` passes). Lets a test hold one command
/// in flight on the target.
struct GateDisk {
    inner: MemoryDisk,
    held_lba: u8,
    timeout: std::time::Duration,
    gate: Arc<Gate>,
}

#[derive(Default)]
struct Gate {
    /// Reads that reached the gate, and whether it is open.
    state: std::sync::Mutex<(usize, bool)>,
    cv: std::sync::Condvar,
}

impl Gate {
    /// Counts one more held read (`entered`) and/or opens the gate.
    fn set(&self, entered: Option<bool>, open: Option<bool>) {
        let mut s = self.state.lock().unwrap();
        s.0 += usize::from(entered == Some(true));
        s.1 = open.unwrap_or(s.1);
        self.cv.notify_all();
    }

    fn wait_entered(&self) {
        self.wait_entered_by(1);
    }

    /// Waits (10 s at most) until `n` reads are held at the gate at once.
    fn wait_entered_by(&self, n: usize) {
        let s = self.state.lock().unwrap();
        let (s, t) = self
            .cv
            .wait_timeout_while(s, std::time::Duration::from_secs(10), |s| s.0 < n)
            .unwrap();
        assert!(
            !t.timed_out(),
            "{} of {n} held reads reached the device",
            s.0
        );
    }
}

impl ScsiDevice for GateDisk {
    fn execute(
        &self,
        cdb: &[u8],
        data: xcopyd::device::DataDirection<'_>,
    ) -> Result<xcopyd::device::Completion, xcopyd::device::DeviceError> {
        let read10_of = |lba: u8| cdb[0] == 0x28 && cdb[2..5] == [0, 0, 0] && cdb[5] == lba;
        if read10_of(self.held_lba) {
            self.gate.set(Some(true), None);
            let s = self.gate.state.lock().unwrap();
            drop(
                self.gate
                    .cv
                    .wait_timeout_while(s, self.timeout, |s| !s.1)
                    .unwrap(),
            );
        }
        self.inner.execute(cdb, data)
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn concurrent_io(&self) -> bool {
        true
    }

    fn reservations(&self) -> Option<&xcopyd::device::reservation::Reservations> {
        self.inner.reservations()
    }
}

/// A target whose LUN 0 is a [`GateDisk`] holding READ(10) of LBA 0, filled with a
/// pattern (block n: bytes n*7+i), and LUN 1 a plain memory disk; and an initiator logged
/// in to it, past the power-on unit attention.
fn start_gated(timeout_ms: u64) -> (Target, Arc<Gate>, Vec<u8>, Initiator) {
    let gate = Arc::new(Gate::default());
    let disk = GateDisk {
        inner: MemoryDisk::new("gated", 512, 64),
        held_lba: 0,
        timeout: std::time::Duration::from_millis(timeout_ms),
        gate: gate.clone(),
    };
    let pattern: Vec<u8> = (0..64 * 512u32)
        .map(|x| ((x / 512) * 7 + x % 251) as u8)
        .collect();
    let write = [0x2a, 0, 0, 0, 0, 0, 0, 0, 64, 0];
    disk.execute(&write, xcopyd::device::DataDirection::ToDevice(&pattern))
        .unwrap();
    let luns: Vec<Arc<dyn ScsiDevice>> =
        vec![Arc::new(disk), Arc::new(MemoryDisk::new("disk1", 512, 64))];
    let d = Arc::new(Dispatcher::new(luns, RecordingCopyService::new()));
    let t = iscsi::start(TargetConfig::new("127.0.0.1:0", IQN), d).unwrap();
    let mut i = Initiator::logged_in(t.local_addr());
    assert_eq!(
        Initiator::sense(&i.command(0, &[0; 6], &[], 0)),
        (6, 0x29, 0)
    );
    (t, gate, pattern, i)
}

/// Reads replies until every ITT in `itts` has its final one; returns them in the order
/// they completed, each with its data-in (checked contiguous) and status.
fn replies(i: &mut Initiator, itts: &[u32]) -> Vec<(u32, u8, Vec<u8>)> {
    let mut data: std::collections::HashMap<u32, Vec<u8>> = Default::default();
    let mut done = Vec::new();
    while done.len() < itts.len() {
        let r = i.recv();
        let itt = r.bhs.itt();
        assert!(itts.contains(&itt), "{:?}", r.bhs);
        let d = data.entry(itt).or_default();
        match r.bhs.opcode() {
            Opcode::DATA_IN => {
                assert_eq!(r.bhs.buffer_offset() as usize, d.len());
                d.extend_from_slice(&r.data);
                if r.bhs.flags() & 0x01 != 0 {
                    done.push((itt, r.bhs.byte(3), std::mem::take(d)));
                }
            }
            Opcode::SCSI_RESPONSE => done.push((itt, r.bhs.byte(3), std::mem::take(d))),
            other => panic!("unexpected {other:?}"),
        }
    }
    done
}

fn read10(lba: u8, blocks: u8) -> [u8; 10] {
    [0x28, 0, 0, 0, 0, lba, 0, 0, blocks, 0]
}

#[test]
fn simple_reads_complete_out_of_order_with_exact_data() {
    // READ of LBA 0 is held in the device; the READ of LBA 1, sent after it, is answered
    // meanwhile; then the first is let go.
    let (target, gate, pattern, mut i) = start_gated(10_000);
    let a = i.command_pdu(0, &read10(0, 2), 1024, true, &[]);
    let b = i.command_pdu(0, &read10(1, 3), 1536, true, &[]);
    i.send(&a);
    gate.wait_entered();
    i.send(&b);
    // Only b may come now (a PDU of a fails in `replies`).
    let got = replies(&mut i, &[b.bhs.itt()]);
    assert_eq!((got[0].0, got[0].1), (b.bhs.itt(), 0));
    assert!(got[0].2 == pattern[512..2048]);
    gate.set(None, Some(true));
    let got = replies(&mut i, &[a.bhs.itt()]);
    assert_eq!((got[0].0, got[0].1), (a.bhs.itt(), 0));
    assert!(got[0].2 == pattern[..1024]);

    // 31 in flight and one out of range, the whole CmdSN window (queue depth 32: an
    // initiator may not send past MaxCmdSN), some overlapping the held one and each
    // other, a few short (underflow): every one answered once with exactly its data.
    let mut sent = Vec::new();
    for n in 0..31u8 {
        let lba = n % 60 + 1;
        let blocks = n % 4 + 1;
        let want = u32::from(blocks) * 512 + if n % 5 == 0 { 512 } else { 0 };
        let p = i.command_pdu(0, &read10(lba, blocks), want, true, &[]);
        i.send(&p);
        sent.push((p.bhs.itt(), lba as usize, blocks as usize));
    }
    let oob = i.command_pdu(0, &read10(63, 2), 1024, true, &[]);
    i.send(&oob);
    let itts: Vec<u32> = sent.iter().map(|s| s.0).chain([oob.bhs.itt()]).collect();
    let got = replies(&mut i, &itts);
    assert_eq!(got.len(), 32);
    for (itt, lba, blocks) in sent {
        let r = got.iter().find(|r| r.0 == itt).unwrap();
        assert_eq!(r.1, 0);
        assert!(
            r.2 == pattern[lba * 512..(lba + blocks) * 512],
            "data of LBA {lba}"
        );
    }
    let r = got.iter().find(|r| r.0 == oob.bhs.itt()).unwrap();
    assert_eq!((r.1, r.2.len()), (2, 0));
    assert_eq!(i.nop(b"after").data, b"after");
    i.logout();
    target.shutdown();
}

#[test]
fn ordered_and_non_disk_commands_wait_for_the_running_read() {
    // An ORDERED read and a TEST UNIT READY sent while a read is held in the device are
    // answered after it. They are known to be queued before the gate opens: the reader
    // handles PDUs in order, so once an immediate NOP-Out sent after them is answered, both
    // have reached the executor.
    let (target, gate, pattern, mut i) = start_gated(30_000);
    let a = i.command_pdu(0, &read10(0, 1), 512, true, &[]);
    let mut b = i.command_pdu(0, &read10(1, 1), 512, true, &[]);
    b.bhs.set_flags((b.bhs.flags() & !0x07) | 2);
    let c = i.command_pdu(0, &[0; 6], 0, false, &[]);
    i.send(&a);
    gate.wait_entered();
    i.send(&b);
    i.send(&c);
    assert_eq!(i.nop(b"queued").data, b"queued");
    gate.set(None, Some(true));
    let got = replies(&mut i, &[a.bhs.itt(), b.bhs.itt(), c.bhs.itt()]);
    let order: Vec<(u32, u8)> = got.iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(
        order,
        [(a.bhs.itt(), 0), (b.bhs.itt(), 0), (c.bhs.itt(), 0)],
        "in CmdSN order"
    );
    assert!(got[0].2 == pattern[..512] && got[1].2 == pattern[512..1024]);
    assert!(got[2].2.is_empty());
    i.logout();
    target.shutdown();
}

/// A copy service whose EXTENDED COPY says it has started, waits until its task is aborted
/// (so the test knows the ABORT TASK reached the target), then waits to be let go.
#[derive(Default)]
struct HeldCopy {
    state: std::sync::Mutex<(bool, bool, bool)>, // started, aborted, released
    cv: std::sync::Condvar,
}

impl HeldCopy {
    fn wait(&self, what: &str, f: impl Fn(&(bool, bool, bool)) -> bool) {
        let s = self.state.lock().unwrap();
        let (s, t) = self
            .cv
            .wait_timeout_while(s, std::time::Duration::from_secs(30), |s| !f(s))
            .unwrap();
        assert!(!t.timed_out() && f(&s), "timed out waiting for {what}");
    }

    fn release(&self) {
        self.state.lock().unwrap().2 = true;
        self.cv.notify_all();
    }
}

impl xcopyd::copy::CopyService for HeldCopy {
    fn extended_copy(
        &self,
        _nexus: &xcopyd::command::Nexus,
        _lun: Option<Arc<dyn ScsiDevice>>,
        _cdb: &xcopyd::scsi::cdb::ExtendedCopyCdb,
        _list: &[u8],
        abort: &xcopyd::command::Abort,
    ) -> xcopyd::command::CommandResult {
        self.state.lock().unwrap().0 = true;
        self.cv.notify_all();
        // Polled with a deadline: the Abort is a flag, not something to wait on.
        let t0 = std::time::Instant::now();
        while !abort.is_aborted() {
            assert!(t0.elapsed().as_secs() < 30, "never aborted");
            std::thread::yield_now();
        }
        self.state.lock().unwrap().1 = true;
        self.cv.notify_all();
        self.wait("the release", |s| s.2);
        xcopyd::command::CommandResult::good(Vec::new())
    }

    fn receive_copy_results(
        &self,
        _nexus: &xcopyd::command::Nexus,
        _cdb: &xcopyd::scsi::copy_results::ReceiveCopyResultsCdb,
    ) -> xcopyd::command::CommandResult {
        xcopyd::command::CommandResult::good(vec![0; 4])
    }

    fn nexus_lost(&self, _nexus: &xcopyd::command::Nexus) {}
}

#[test]
fn abort_task_of_a_copy_in_flight_answers_after_it_left_and_never_the_copy() {
    abort_a_copy_in_flight(1);
}

/// ABORT TASK SET, CLEAR TASK SET and LOGICAL UNIT RESET end the copy the same way: their
/// response leaves once it has (SAM-5 7.1), never before. On a LUN that does not exist they
/// answer 2 (LUN does not exist).
#[test]
fn task_set_functions_answer_after_the_copy_left() {
    for function in [2, 4, 5] {
        abort_a_copy_in_flight(function);
    }
    let (_dir, target) = start();
    let mut i = Initiator::logged_in(target.local_addr());
    for function in [2, 4, 5] {
        assert_eq!(i.tmf(function, 9, 0), 2, "function {function}");
    }
}

/// Holds an EXTENDED COPY on LUN 0 and ends it with task management `function`.
fn abort_a_copy_in_flight(function: u8) {
    let copy = Arc::new(HeldCopy::default());
    let luns: Vec<Arc<dyn ScsiDevice>> = vec![Arc::new(MemoryDisk::new("disk0", 512, 64))];
    let d = Arc::new(Dispatcher::new(luns, copy.clone()));
    let target = iscsi::start(TargetConfig::new("127.0.0.1:0", IQN), d).unwrap();
    let mut i = Initiator::logged_in(target.local_addr());
    assert_eq!(
        Initiator::sense(&i.command(0, &[0; 6], &[], 0)),
        (6, 0x29, 0)
    );
    // An EXTENDED COPY with an empty 16-byte list header: the service holds it.
    let mut cdb = [0u8; 16];
    cdb[0] = 0x83;
    cdb[13] = 16;
    let x = i.command_pdu(0, &cdb, 16, false, &[0; 16]);
    i.send(&x);
    copy.wait("the copy to start", |s| s.0);
    // ABORT TASK: the service sees its task aborted while the TMF waits for it.
    let mut b = Bhs::new(Opcode::TASK_MANAGEMENT_REQUEST);
    b.set_immediate(true)
        .set_flags(0x80 | function)
        .set_itt(0x7000)
        .set_referenced_task_tag(x.bhs.itt())
        .set_cmd_sn(i.cmd_sn)
        .set_ref_cmd_sn(x.bhs.cmd_sn());
    i.send(&Pdu::new(b));
    copy.wait("the abort to reach the copy", |s| s.1);
    // Nothing may be answered while the copy is in: the TMF waits for the task to leave.
    // (A negative: watched for 100 ms, which only a wrong early answer can end sooner.)
    i.s.set_nonblocking(true).unwrap();
    let t0 = std::time::Instant::now();
    while t0.elapsed() < std::time::Duration::from_millis(100) {
        let early = std::io::Read::read(&mut i.s, &mut [0u8; 1]);
        assert!(
            matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "a PDU before the copy left: {early:?}"
        );
        std::thread::yield_now();
    }
    i.s.set_nonblocking(false).unwrap();
    copy.release();
    // The TMF response (function complete), and never the copy's status.
    let r = i.recv();
    assert_eq!(
        (r.bhs.opcode(), r.bhs.itt(), r.bhs.byte(2)),
        (Opcode::TASK_MANAGEMENT_RESPONSE, 0x7000, 0)
    );
    assert_eq!(i.nop(b"no status before me").data, b"no status before me");
    i.logout();
    target.shutdown();
}

#[test]
fn abort_task_of_a_task_queued_behind_an_exclusive_task() {
    let (target, gate, pattern, mut i) = start_gated(30_000);
    // A TEST UNIT READY held behind an ORDERED read that is in the device, aborted while
    // queued: answered by its TMF at once, never executed, and the read still completes.
    let mut b = i.command_pdu(0, &read10(0, 1), 512, true, &[]);
    b.bhs.set_flags((b.bhs.flags() & !0x07) | 2);
    let c = i.command_pdu(0, &[0; 6], 0, false, &[]);
    i.send(&b);
    gate.wait_entered();
    i.send(&c);
    assert_eq!(i.tmf(1, 0, c.bhs.itt()), 0);
    gate.set(None, Some(true));
    let got = replies(&mut i, &[b.bhs.itt()]);
    assert_eq!((got[0].0, got[0].1), (b.bhs.itt(), 0));
    assert!(got[0].2 == pattern[..512]);
    assert_eq!(i.nop(b"c was dropped").data, b"c was dropped");
    i.logout();
    target.shutdown();
}

/// PERSISTENT RESERVE OUT from `i` on LUN 0, with the basic parameter list (SPC-4 6.16.3):
/// RESERVATION KEY `key`, SERVICE ACTION RESERVATION KEY `sa_key`.
fn pr_out_pdu(i: &mut Initiator, sa: u8, kind: u8, key: u64, sa_key: u64) -> Pdu {
    let mut list = [0u8; 24];
    list[..8].copy_from_slice(&key.to_be_bytes());
    list[8..16].copy_from_slice(&sa_key.to_be_bytes());
    i.command_pdu(0, &[0x5f, sa, kind, 0, 0, 0, 0, 0, 24, 0], 24, false, &list)
}

/// SPC-4 5.13.11.4.4: PREEMPT AND ABORT aborts the preempted I_T nexus's tasks on the LUN
/// as its own ABORT TASK SET would (TAS 0: never answered), and its GOOD leaves only once
/// they have ended; the preempted nexus then gets REGISTRATIONS PREEMPTED (2A/05) and,
/// under A's Exclusive Access, RESERVATION CONFLICT.
#[test]
fn preempt_and_abort_ends_the_preempted_nexus_task_before_its_good() {
    let (target, gate, pattern, mut a) = start_gated(30_000);
    let mut b = Initiator::logged_in_to(target.local_addr(), IQN, "iqn.test:host-b");
    assert_eq!(
        Initiator::sense(&b.command(0, &[0; 6], &[], 0)),
        (6, 0x29, 0)
    );
    let good = |i: &mut Initiator, p: Pdu| {
        let itt = p.bhs.itt();
        i.send(&p);
        let r = i.recv();
        assert_eq!(
            (r.bhs.opcode(), r.bhs.itt(), r.bhs.byte(3)),
            (Opcode::SCSI_RESPONSE, itt, 0)
        );
    };
    // REGISTER A (key A1h) and B (key B1h); B takes Write Exclusive (type 1).
    let p = pr_out_pdu(&mut a, 0x00, 0, 0, 0xa1);
    good(&mut a, p);
    let p = pr_out_pdu(&mut b, 0x00, 0, 0, 0xb1);
    good(&mut b, p);
    let p = pr_out_pdu(&mut b, 0x01, 0x01, 0xb1, 0);
    good(&mut b, p);
    // B's READ of LBA 0 is in the device, held there.
    let held = b.command_pdu(0, &read10(0, 1), 512, true, &[]);
    b.send(&held);
    gate.wait_entered();
    // A preempts B's key and aborts, taking Exclusive Access (type 3).
    let preempt = pr_out_pdu(&mut a, 0x05, 0x03, 0xa1, 0xb1);
    a.send(&preempt);
    // Nothing answered to A while B's task is in the device (a negative: watched for
    // 100 ms, which only a wrong early answer can end sooner).
    a.s.set_nonblocking(true).unwrap();
    let t0 = std::time::Instant::now();
    while t0.elapsed() < std::time::Duration::from_millis(100) {
        let early = std::io::Read::read(&mut a.s, &mut [0u8; 1]);
        assert!(
            matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "PREEMPT AND ABORT answered while the preempted task ran: {early:?}"
        );
        std::thread::yield_now();
    }
    a.s.set_nonblocking(false).unwrap();
    gate.set(None, Some(true));
    let r = a.recv();
    assert_eq!(
        (r.bhs.opcode(), r.bhs.itt(), r.bhs.byte(3)),
        (Opcode::SCSI_RESPONSE, preempt.bhs.itt(), 0)
    );
    // B's held READ is never answered: the NOP-In comes first.
    assert_eq!(b.nop(b"held read dropped").data, b"held read dropped");
    assert_eq!(
        Initiator::sense(&b.command(0, &[0; 6], &[], 0)),
        (6, 0x2a, 0x05)
    );
    assert_eq!(b.command(0, &read10(0, 1), &[], 512).status, 0x18);
    // A reads on: its own tasks were not touched.
    let r = a.command(0, &read10(0, 1), &[], 512);
    assert_eq!(r.status, 0);
    assert!(r.data == pattern[..512]);
    b.logout();
    a.logout();
    target.shutdown();
}

/// TARGET COLD RESET (RFC 7143 11.5.1): a warm reset (the unit attention is raised again)
/// whose response arrives, and then every connection to every initiator is closed.
#[test]
fn target_cold_reset_answers_then_closes_every_session() {
    let (_dir, target) = start();
    let mut a = Initiator::logged_in(target.local_addr());
    let mut b = Initiator::logged_in(target.local_addr());
    for i in [&mut a, &mut b] {
        assert_eq!(
            Initiator::sense(&i.command(0, &[0; 6], &[], 0)),
            (6, 0x29, 0)
        );
    }
    assert_eq!(a.tmf(7, 0, 0), 0, "function complete");
    for i in [&mut a, &mut b] {
        assert!(read_pdu(&mut i.s).is_none(), "the connection is closed");
    }
    // The target goes on accepting logins.
    let mut c = Initiator::logged_in(target.local_addr());
    assert_eq!(
        Initiator::sense(&c.command(0, &[0; 6], &[], 0)),
        (6, 0x29, 0)
    );
    assert_eq!(c.command(0, &[0; 6], &[], 0).status, 0);
    c.logout();
    target.shutdown();
}

/// I_T nexus loss (SBC-3 5.15: PREVENT ALLOW MEDIUM REMOVAL's prevention ends with its
/// nexus): an initiator that drops its connection without a logout and logs in again at
/// once finds the old nexus gone before its first command. The old connection's teardown
/// is held here (a READ in a gated device it must wait for), so a login that does not
/// wait for it reaches the eject while the old nexus still prevents it — libiscsi's
/// PreventAllow.ITNexusLoss failed that way once in CI, where the race was the reader's.
#[test]
fn a_dropped_connection_s_nexus_is_gone_before_the_next_login_s_first_command() {
    use xcopyd::device::disk::{DiskOptions, EmulatedDisk};
    let dir = tempfile::tempdir().unwrap();
    let mut opts = DiskOptions::new(dir.path().join("r.img"), 512);
    opts.create_size = Some(1 << 20);
    opts.removable = true;
    let gate = Arc::new(Gate::default());
    let gated = GateDisk {
        inner: MemoryDisk::new("gated", 512, 64),
        held_lba: 0,
        timeout: std::time::Duration::from_secs(10),
        gate: gate.clone(),
    };
    let luns: Vec<Arc<dyn ScsiDevice>> = vec![
        Arc::new(gated),
        Arc::new(EmulatedDisk::open("r0", &opts).unwrap()),
    ];
    let d = Arc::new(Dispatcher::new(luns, RecordingCopyService::new()));
    let target = iscsi::start(TargetConfig::new("127.0.0.1:0", IQN), d).unwrap();
    const PREVENT: [u8; 6] = [0x1e, 0, 0, 0, 1, 0];
    const EJECT: [u8; 6] = [0x1b, 0, 0, 0, 2, 0];
    const LOAD: [u8; 6] = [0x1b, 0, 0, 0, 3, 0];
    // Past the power-on unit attention of `lun`, then `cdb`'s reply.
    let on = |i: &mut Initiator, lun: u8, cdb: &[u8]| {
        let r = i.command(lun, cdb, &[], 0);
        if r.status == 2 && Initiator::sense(&r) == (6, 0x29, 0) {
            i.command(lun, cdb, &[], 0)
        } else {
            r
        }
    };

    let mut a = Initiator::logged_in(target.local_addr());
    assert_eq!(on(&mut a, 1, &PREVENT).status, 0);
    assert_eq!(
        Initiator::sense(&a.command(1, &EJECT, &[], 0)),
        (5, 0x53, 2)
    );
    let _ = a.command(0, &[0; 6], &[], 0);
    let held = a.command_pdu(0, &read10(0, 1), 512, true, &[]);
    a.send(&held);
    gate.wait_entered();
    drop(a);
    let opener = std::thread::spawn({
        let gate = gate.clone();
        move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            gate.set(None, Some(true));
        }
    });
    let mut b = Initiator::logged_in(target.local_addr());
    let r = on(&mut b, 1, &EJECT);
    assert_eq!(r.status, 0, "the eject after the nexus loss: {r:?}");
    assert_eq!(b.command(1, &LOAD, &[], 0).status, 0);
    b.logout();
    opener.join().unwrap();
    target.shutdown();
}

/// RFC 7143 13.11 and 13.14: immediate data only where ImmediateData=Yes was negotiated,
/// and never past FirstBurstLength; either is a protocol error (Reject, reason 04h), the
/// session goes on, and nothing is written. Exactly FirstBurstLength is taken.
#[test]
fn immediate_data_only_when_negotiated_and_within_the_first_burst() {
    let (_dir, target) = start();
    let addr = target.local_addr();
    let write10 = |blocks: u8| [0x2a, 0, 0, 0, 0, 0, 0, 0, blocks, 0];
    let keys = |immediate: &str| {
        format!(
            "InitiatorName=iqn.test:imm|TargetName={IQN}|SessionType=Normal|\
             HeaderDigest=None|DataDigest=None|MaxRecvDataSegmentLength=8192|\
             ImmediateData={immediate}|InitialR2T=Yes|FirstBurstLength=8192|\
             MaxBurstLength=32768"
        )
    };
    let rejected = |i: &mut Initiator, data: &[u8]| {
        let p = i.command_pdu(
            0,
            &write10((data.len() / 512) as u8),
            data.len() as u32,
            false,
            data,
        );
        i.send(&p);
        let r = i.recv();
        assert_eq!((r.bhs.opcode(), r.bhs.byte(2)), (Opcode::REJECT, 0x04));
        // The Reject carries the rejected header: its opcode and ITT.
        assert_eq!((r.data[0], &r.data[16..20]), (p.bhs.0[0], &p.bhs.0[16..20]));
        // The session is still served (the rejected command's CmdSN is spent: it was
        // taken in order before its data was judged).
        i.nop(b"alive");
    };

    let (mut no, r) = Initiator::login(addr, &keys("No"));
    assert_eq!((r.bhs.byte(36), r.bhs.byte(37)), (0, 0));
    assert_eq!(
        TextKeys::decode(&r.data).unwrap().get("ImmediateData"),
        Some("No")
    );
    rejected(&mut no, &[0x11; 512]);

    let (mut yes, r) = Initiator::login(addr, &keys("Yes"));
    assert_eq!((r.bhs.byte(36), r.bhs.byte(37)), (0, 0));
    rejected(&mut yes, &[0x22; 8192 + 512]);
    // The unit attention first, then exactly FirstBurstLength of immediate data lands.
    assert_eq!(
        Initiator::sense(&yes.command(0, &[0; 6], &[], 0)),
        (6, 0x29, 0)
    );
    assert_eq!(yes.command(0, &write10(16), &[0x33; 8192], 0).status, 0);
    let back = yes.command(0, &[0x28, 0, 0, 0, 0, 0, 0, 0, 17, 0], &[], 17 * 512);
    assert_eq!(back.data[..8192], [0x33; 8192]);
    assert_eq!(
        back.data[8192..],
        [0; 512],
        "nothing of the rejected commands landed"
    );
}

/// RFC 7143 6.3: a login in three requests — security without transit, security to
/// operational, operational to full feature — answered with the stages asked for (the
/// response's T, CSG, NSG), a TSIH only on the last.
#[test]
fn a_login_steps_through_the_stages_it_asks_for() {
    let (_dir, target) = start();
    let mut i = Initiator::connect(target.local_addr());
    let mut step = |flags: u8, keys: &str| {
        let r = i.login_request(flags, common::text(keys));
        assert_eq!((r.bhs.byte(36), r.bhs.byte(37)), (0, 0), "status");
        (r.bhs.flags(), r.bhs.tsih())
    };
    let names = format!("InitiatorName=iqn.test:steps|TargetName={IQN}|SessionType=Normal");
    assert_eq!(step(0x00, &format!("{names}|AuthMethod=None")), (0x00, 0));
    assert_eq!(step(0x81, "HeaderDigest=None"), (0x81, 0));
    // No transit in the operational stage: the answer names that stage (CSG 1), T=0.
    assert_eq!(step(0x04, "InitialR2T=Yes"), (0x04, 0));
    let (flags, tsih) = step(0x87, "DataDigest=None|MaxRecvDataSegmentLength=8192");
    assert_eq!(flags, 0x87);
    assert_ne!(tsih, 0);
    i.nop(b"in full feature phase");
}

/// The SCSI Response to the command `itt` (R2Ts for it skipped): (status, sense key, ASC,
/// ASCQ), the sense zero without CHECK CONDITION.
fn response_to(i: &mut Initiator, itt: u32) -> (u8, u8, u8, u8) {
    loop {
        let r = i.recv();
        if r.bhs.opcode() == Opcode::R2T {
            continue;
        }
        assert_eq!((r.bhs.opcode(), r.bhs.itt()), (Opcode::SCSI_RESPONSE, itt));
        let status = r.bhs.byte(3);
        if status != 2 {
            return (status, 0, 0, 0);
        }
        let n = u16::from_be_bytes([r.data[0], r.data[1]]) as usize;
        let s = xcopyd::scsi::Sense::decode(&r.data[2..2 + n]).unwrap();
        return (status, s.key.0, s.asc.asc(), s.asc.ascq());
    }
}

/// Write data the target would have to hold past `max_data_out` is refused with TASK SET
/// FULL (SAM-5 5.3.1), and the session goes on.
#[test]
fn write_data_past_max_data_out_is_task_set_full() {
    let (_dir, target) = start_with(|c| c.max_data_out = 4096);
    let mut i = Initiator::logged_in(target.local_addr());
    let write10 = [0x2a, 0, 0, 0, 0, 0, 0, 0, 16, 0];
    let p = i.command_pdu(0, &write10, 8192, false, &[0x44; 512]);
    i.send(&p);
    assert_eq!(response_to(&mut i, p.bhs.itt()), (0x28, 0, 0, 0));
    i.nop(b"still served");
}

/// A write whose Data-Out stops coming ends after data_out_timeout with ABORTED COMMAND,
/// DATA PHASE ERROR (0B/4B/00), and its data is not written.
#[test]
fn a_write_whose_data_out_stalls_ends_with_a_data_phase_error() {
    let (_dir, target) = start_with(|c| c.data_out_timeout = std::time::Duration::from_secs(1));
    let mut i = Initiator::logged_in(target.local_addr());
    assert_eq!(
        Initiator::sense(&i.command(0, &[0; 6], &[], 0)),
        (6, 0x29, 0)
    );
    let write10 = [0x2a, 0, 0, 0, 0, 0, 0, 0, 16, 0];
    let p = i.command_pdu(0, &write10, 8192, false, &[0x55; 512]);
    i.send(&p);
    // The R2T for the rest comes, and nothing is sent for it.
    assert_eq!(response_to(&mut i, p.bhs.itt()), (2, 0x0b, 0x4b, 0x00));
    let back = i.command(0, &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[], 512);
    assert_eq!(back.data, vec![0; 512]);
}

/// RFC 7143 13.10: with InitialR2T=Yes no unsolicited Data-Out may follow a command (its F
/// bit clear): a protocol error, Reject, and the connection closes.
#[test]
fn unsolicited_data_out_under_initial_r2t_closes_the_connection() {
    let (_dir, target) = start();
    let mut i = Initiator::logged_in(target.local_addr());
    let write10 = [0x2a, 0, 0, 0, 0, 0, 0, 0, 16, 0];
    let mut p = i.command_pdu(0, &write10, 8192, false, &[0x66; 512]);
    p.bhs.set_flags(p.bhs.flags() & !0x80);
    i.send(&p);
    let r = i.recv();
    assert_eq!((r.bhs.opcode(), r.bhs.byte(2)), (Opcode::REJECT, 0x04));
    assert!(read_pdu(&mut i.s).is_none(), "the connection closes");
}

/// RFC 7143 6.3 with CHAP required: a request asking to leave the security stage (T=1)
/// before the initiator has authenticated is answered T=0 — while the method is chosen, and
/// while the challenge is out — and only the right response lets the login transit.
#[test]
fn no_transit_out_of_the_security_stage_before_chap_succeeds() {
    use xcopyd::frontend::iscsi::auth::{Chap, Credentials, Initiators};
    use xcopyd::iscsi::chap as auth;
    let creds = Credentials {
        chap: Chap {
            user: "u".into(),
            secret: b"secretsecret".to_vec(),
        },
        mutual: None,
    };
    let table = Initiators::listed([("iqn.test:chap".to_string(), creds)]).unwrap();
    let (_dir, target) = start_with(|c| c.initiators = Arc::new(table));
    let mut i = Initiator::connect(target.local_addr());
    let mut step = |keys: &str| {
        // T=1, CSG security, NSG operational.
        let r = i.login_request(0x81, common::text(keys));
        assert_eq!((r.bhs.byte(36), r.bhs.byte(37)), (0, 0), "status");
        (r.bhs.flags(), TextKeys::decode(&r.data).unwrap())
    };
    let (flags, keys) = step(&format!(
        "InitiatorName=iqn.test:chap|TargetName={IQN}|SessionType=Normal|AuthMethod=CHAP"
    ));
    assert_eq!((flags, keys.get("AuthMethod")), (0x00, Some("CHAP")));
    let (flags, keys) = step("CHAP_A=5");
    assert_eq!(flags, 0x00, "no transit while the challenge is out");
    let id: u8 = keys.get("CHAP_I").unwrap().parse().unwrap();
    let challenge = auth::decode_binary(keys.get("CHAP_C").unwrap()).unwrap();
    let r = auth::encode_binary(&auth::chap_response(id, b"secretsecret", &challenge));
    let (flags, _) = step(&format!("CHAP_N=u|CHAP_R={r}"));
    assert_eq!(flags, 0x81, "authenticated: security to operational");
}

/// Login text is bounded at 64 KiB across continued PDUs (C=1, RFC 7143 6.2): exactly
/// 65536 bytes are taken, one more ends the login with an initiator error.
#[test]
fn login_text_of_exactly_64_kib_across_continued_pdus_is_taken() {
    let (_dir, target) = start();
    let login = |total: usize| {
        let mut i = Initiator::connect(target.local_addr());
        let mut text = common::text(&format!(
            "InitiatorName=iqn.test:long|TargetName={IQN}|SessionType=Normal"
        ));
        let mut n = 0;
        while text.len() < total {
            let room = (total - text.len()).min(4096);
            let head = format!("X-k{n}=");
            let value = room.saturating_sub(head.len() + 1).max(1);
            text.extend_from_slice(head.as_bytes());
            text.extend(std::iter::repeat_n(b'v', value));
            text.push(0);
            n += 1;
        }
        assert_eq!(text.len(), total);
        let pieces: Vec<&[u8]> = text.chunks(8192).collect();
        for (k, piece) in pieces.iter().enumerate() {
            let last = k + 1 == pieces.len();
            // CSG operational; C on all but the last, which asks for full feature.
            let r = i.login_request(if last { 0x87 } else { 0x44 }, piece.to_vec());
            let status = (r.bhs.byte(36), r.bhs.byte(37));
            if last || status != (0, 0) {
                return status;
            }
            // Each piece is acknowledged in the stage it was sent in (CSG 1), no transit,
            // no text.
            assert_eq!((r.bhs.flags(), r.data.len()), (0x04, 0));
        }
        unreachable!()
    };
    assert_eq!(login(65536), (0, 0));
    assert_eq!(login(65537), (2, 0), "initiator error");
}

/// Every worker the connection has is held in the device: the next command gets a worker of
/// its own (up to WORKERS), so 15 reads held at once and a 16th answered beside them.
#[test]
fn a_command_gets_a_worker_while_every_other_is_held() {
    let (target, gate, pattern, mut i) = start_gated(30_000);
    let held: Vec<Pdu> = (0..15)
        .map(|_| i.command_pdu(0, &read10(0, 1), 512, true, &[]))
        .collect();
    for p in &held {
        i.send(p);
    }
    gate.wait_entered_by(15);
    let free = i.command_pdu(0, &read10(1, 1), 512, true, &[]);
    i.send(&free);
    let got = replies(&mut i, &[free.bhs.itt()]);
    assert_eq!(got[0].1, 0);
    assert!(got[0].2 == pattern[512..1024]);
    gate.set(None, Some(true));
    let itts: Vec<u32> = held.iter().map(|p| p.bhs.itt()).collect();
    for r in replies(&mut i, &itts) {
        assert_eq!(r.1, 0);
        assert!(r.2 == pattern[..512]);
    }
    i.logout();
    target.shutdown();
}

/// A SIMPLE command that is not a disk READ or WRITE (TEST UNIT READY) waits for the read
/// running before it, like an ORDERED one: only RECEIVE COPY RESULTS may pass.
#[test]
fn a_simple_non_disk_command_waits_for_the_running_read() {
    let (target, gate, _pattern, mut i) = start_gated(30_000);
    let a = i.command_pdu(0, &read10(0, 1), 512, true, &[]);
    let tur = i.command_pdu(0, &[0; 6], 0, false, &[]);
    assert_eq!(tur.bhs.flags() & 0x07, 1, "SIMPLE");
    i.send(&a);
    gate.wait_entered();
    i.send(&tur);
    // Both have reached the executor once a later immediate NOP-Out is answered.
    assert_eq!(i.nop(b"queued").data, b"queued");
    gate.set(None, Some(true));
    let got = replies(&mut i, &[a.bhs.itt(), tur.bhs.itt()]);
    let order: Vec<u32> = got.iter().map(|r| r.0).collect();
    assert_eq!(order, [a.bhs.itt(), tur.bhs.itt()]);
    i.logout();
    target.shutdown();
}

/// Command intake (RFC 7143 11.3): the reserved ITT FFFFFFFFh and an ITT still in use are
/// rejected (invalid PDU field), as is a bidirectional command; a transfer longer than
/// max_command_data ends CHECK CONDITION, ILLEGAL REQUEST, INVALID FIELD IN CDB.
#[test]
fn command_intake_refuses_bad_tags_directions_and_lengths() {
    let (_dir, target) = start_with(|c| c.max_command_data = 4096);
    let mut i = Initiator::logged_in(target.local_addr());
    assert_eq!(
        Initiator::sense(&i.command(0, &[0; 6], &[], 0)),
        (6, 0x29, 0)
    );
    let rejected = |i: &mut Initiator, p: &Pdu, reason: u8| {
        i.send(p);
        let r = i.recv();
        assert_eq!((r.bhs.opcode(), r.bhs.byte(2)), (Opcode::REJECT, reason));
        // The rejected header, as sent (its data segment length set on the wire).
        assert_eq!(
            (&r.data[..4], &r.data[8..48]),
            (&p.bhs.0[..4], &p.bhs.0[8..])
        );
        assert_eq!(&r.data[5..8], &(p.data.len() as u32).to_be_bytes()[1..]);
    };
    let mut p = i.command_pdu(0, &[0; 6], 0, false, &[]);
    p.bhs.set_itt(0xffff_ffff);
    rejected(&mut i, &p, 0x09);
    // An ITT in use: a write waiting for its Data-Out.
    let write = i.command_pdu(0, &[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], 512, false, &[]);
    i.send(&write);
    let r2t = i.recv();
    assert_eq!(r2t.bhs.opcode(), Opcode::R2T);
    let mut again = i.command_pdu(0, &[0; 6], 0, false, &[]);
    again.bhs.set_itt(write.bhs.itt());
    rejected(&mut i, &again, 0x09);
    completes(&mut i, &(write, r2t));
    let mut both = i.command_pdu(0, &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], 512, true, &[]);
    both.bhs.set_flags(both.bhs.flags() | 0x20);
    rejected(&mut i, &both, 0x09);
    // Immediate data with a command that writes nothing, or more than it writes.
    let read_with_data = i.command_pdu(0, &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], 512, true, &[1; 512]);
    rejected(&mut i, &read_with_data, 0x09);
    let write = [0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    let too_much = i.command_pdu(0, &write, 512, false, &[1; 1024]);
    rejected(&mut i, &too_much, 0x09);
    // Exactly max_command_data is taken; one block more is refused.
    let r = i.command(0, &[0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0], &[], 4096);
    assert_eq!((r.status, r.data.len()), (0, 4096));
    let r = i.command(0, &[0x28, 0, 0, 0, 0, 0, 0, 0, 9, 0], &[], 4608);
    assert_eq!(Initiator::sense(&r), (5, 0x24, 0));
    assert_eq!(i.nop(b"alive").data, b"alive");
    target.shutdown();
}

/// A Data-Out that runs past the end of the burst its R2T asked for, even without the F
/// bit, is out of place: Reject (protocol error), and the write ends ABORTED COMMAND, DATA
/// PHASE ERROR (0B/4B/00) without being executed.
#[test]
fn a_data_out_past_its_burst_ends_the_write() {
    let (_dir, target) = start();
    let mut i = Initiator::logged_in(target.local_addr());
    assert_eq!(
        Initiator::sense(&i.command(0, &[0; 6], &[], 0)),
        (6, 0x29, 0)
    );
    let p = i.command_pdu(0, &[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], 512, false, &[]);
    i.send(&p);
    let r2t = i.recv();
    // DESIRED DATA TRANSFER LENGTH, bytes 44-47.
    assert_eq!(
        (r2t.bhs.opcode(), &r2t.bhs.0[44..48]),
        (Opcode::R2T, &[0, 0, 2, 0][..])
    );
    let mut b = Bhs::new(Opcode::DATA_OUT);
    b.set_flags(0x00)
        .set_itt(p.bhs.itt())
        .set_ttt(r2t.bhs.ttt())
        .set_data_sn(0);
    i.send(&Pdu::with_data(b, vec![0x5a; 1024]));
    let r = i.recv();
    assert_eq!((r.bhs.opcode(), r.bhs.byte(2)), (Opcode::REJECT, 0x04));
    let r = i.recv();
    assert_eq!(
        (r.bhs.opcode(), r.bhs.itt(), r.bhs.byte(3)),
        (Opcode::SCSI_RESPONSE, p.bhs.itt(), 2)
    );
    let sense = xcopyd::scsi::Sense::decode(&r.data[2..]).unwrap();
    assert_eq!(
        (sense.key.0, sense.asc.asc(), sense.asc.ascq()),
        (0x0b, 0x4b, 0)
    );
    let read = i.command(0, &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[], 512);
    assert_eq!(read.data, vec![0; 512], "nothing written");
    target.shutdown();
}

/// ABORT TASK of a task the target does not know (RFC 7143 11.5.1): function complete when
/// its RefCmdSN is in the CmdSN window and not the request's own CmdSN (the task may still
/// arrive), else task does not exist.
#[test]
fn abort_task_of_an_unknown_task_looks_at_its_ref_cmd_sn() {
    let (_dir, target) = start();
    let mut i = Initiator::logged_in(target.local_addr());
    let own = i.cmd_sn;
    assert_eq!(i.tmf_at(1, 0, 0x4242, own), 1, "its own CmdSN");
    assert_eq!(
        i.tmf_at(1, 0, 0x4242, own.wrapping_add(1)),
        0,
        "in the window"
    );
    assert_eq!(
        i.tmf_at(1, 0, 0x4242, own.wrapping_add(100_000)),
        1,
        "past it"
    );
    assert_eq!(i.tmf_at(1, 0, 0x4242, own.wrapping_sub(1)), 1, "before it");
    target.shutdown();
}

/// A write of `blocks` 512-byte blocks to `lun` (WRITE(10) on the disk, WRITE(6) variable
/// on the tape), sent and waiting for its Data-Out: (the command, the R2T).
fn pending_write(i: &mut Initiator, lun: u8) -> (Pdu, Pdu) {
    let cdb: &[u8] = if lun == 0 {
        &[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0]
    } else {
        &[0x0a, 0, 0, 2, 0, 0]
    };
    let p = i.command_pdu(lun, cdb, 512, false, &[]);
    i.send(&p);
    let r2t = i.recv();
    assert_eq!(
        (r2t.bhs.opcode(), r2t.bhs.itt()),
        (Opcode::R2T, p.bhs.itt())
    );
    (p, r2t)
}

/// Sends the Data-Out a pending write asked for.
fn data_out(i: &mut Initiator, (p, r2t): &(Pdu, Pdu)) {
    let mut b = Bhs::new(Opcode::DATA_OUT);
    b.set_flags(0x80)
        .set_lun(p.bhs.lun())
        .set_itt(p.bhs.itt())
        .set_ttt(r2t.bhs.ttt())
        .set_data_sn(0);
    i.send(&Pdu::with_data(b, vec![0x5a; 512]));
}

/// Completes a pending write: its Data-Out, then GOOD.
fn completes(i: &mut Initiator, w: &(Pdu, Pdu)) {
    data_out(i, w);
    let r = i.recv();
    assert_eq!(
        (r.bhs.opcode(), r.bhs.itt(), r.bhs.byte(3)),
        (Opcode::SCSI_RESPONSE, w.0.bhs.itt(), 0)
    );
}

/// An aborted pending write: its Data-Out is dropped, nothing answers it before the next
/// NOP-In.
fn was_aborted(i: &mut Initiator, w: &(Pdu, Pdu)) {
    data_out(i, w);
    assert_eq!(i.nop(b"next").data, b"next");
}

/// The task-set functions reach the writes they name and no others: ABORT TASK SET the
/// LUN's of this session only, CLEAR TASK SET the LUN's of every session (SAM-5 7.3, 7.5).
#[test]
fn task_set_functions_abort_the_writes_of_their_lun_and_sessions() {
    let (_dir, target) = start();
    let addr = target.local_addr();
    let mut a = Initiator::logged_in(addr);
    let mut b = Initiator::logged_in_to(addr, IQN, "iqn.test:other");
    for lun in [0, 1] {
        assert_eq!(
            Initiator::sense(&a.command(lun, &[0; 6], &[], 0)),
            (6, 0x29, 0)
        );
    }
    // ABORT TASK SET of LUN 1: the tape's write goes, the disk's stays.
    let disk = pending_write(&mut a, 0);
    let tape = pending_write(&mut a, 1);
    assert_eq!(a.tmf(2, 1, 0), 0);
    completes(&mut a, &disk);
    was_aborted(&mut a, &tape);
    // Another session's ABORT TASK SET leaves this session's tasks alone ...
    let disk = pending_write(&mut a, 0);
    assert_eq!(b.tmf(2, 0, 0), 0);
    completes(&mut a, &disk);
    // ... its CLEAR TASK SET does not.
    let disk = pending_write(&mut a, 0);
    assert_eq!(b.tmf(4, 0, 0), 0);
    was_aborted(&mut a, &disk);
    target.shutdown();
}

/// How logins that end early are counted (`xcopyd_iscsi_logins_total`): a connection closed
/// before its first byte (a port probe) is no login at all; one dropped after its first
/// request is refused for "connection lost", not "timeout". With max_connections = 1 the
/// target serves a connection only once the one before it has ended and been counted, so
/// the counts read after the last login are final.
#[test]
fn a_port_probe_is_no_login_and_a_dropped_login_is_a_lost_connection() {
    let metrics = Arc::new(xcopyd::metrics::Metrics::default());
    let m = metrics.clone();
    let (_dir, target) = start_with(|c| {
        c.metrics = Some(m);
        c.max_connections = 1;
    });
    let addr = target.local_addr();
    // The first request of a login (security stage, no transit) on the next connection
    // the target serves: one closed at accept reads end of file, and is tried again.
    let served = || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let mut b = Bhs::new(Opcode::LOGIN_REQUEST);
            b.set_immediate(true)
                .set_isid([0x80, 0, 0, 0, 0x12, 0x34])
                .set_cmd_sn(1);
            let text = common::text(&format!(
                "InitiatorName=iqn.test:probe|TargetName={IQN}|AuthMethod=None"
            ));
            let pdu = Pdu::with_data(b, text).encode(Default::default());
            let sent = s.write_all(&pdu).is_ok();
            if let Some(r) = read_pdu(&mut s).filter(|_| sent) {
                assert_eq!((r.bhs.byte(36), r.bhs.byte(37)), (0, 0));
                return s;
            }
            assert!(std::time::Instant::now() < deadline, "never served");
        }
    };
    drop(TcpStream::connect(addr).unwrap());
    drop(served());
    let last = served();
    let text = metrics.render();
    let refused: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("xcopyd_iscsi_logins_total{") && l.contains("\"refused\""))
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].contains("reason=\"connection lost\"") && refused[0].ends_with(" 1"),
        "{refused:?}"
    );
    drop(last);
    target.shutdown();
}

/// An ORDERED command running excludes every other: a SIMPLE read sent while an ORDERED
/// read is held in the device is answered after it.
#[test]
fn a_simple_read_waits_for_a_running_ordered_read() {
    let (target, gate, pattern, mut i) = start_gated(30_000);
    let mut ordered = i.command_pdu(0, &read10(0, 1), 512, true, &[]);
    ordered.bhs.set_flags((ordered.bhs.flags() & !0x07) | 2);
    let simple = i.command_pdu(0, &read10(1, 1), 512, true, &[]);
    i.send(&ordered);
    gate.wait_entered();
    i.send(&simple);
    // Both have reached the executor once a later immediate NOP-Out is answered. More
    // round trips give a read wrongly let past the ORDERED one time to be answered: it
    // then arrives before a NOP-In, or before the ORDERED read's data.
    for _ in 0..100 {
        assert_eq!(i.nop(b"queued").data, b"queued");
    }
    gate.set(None, Some(true));
    let got = replies(&mut i, &[ordered.bhs.itt(), simple.bhs.itt()]);
    let order: Vec<u32> = got.iter().map(|r| r.0).collect();
    assert_eq!(order, [ordered.bhs.itt(), simple.bhs.itt()]);
    assert!(got[0].2 == pattern[..512] && got[1].2 == pattern[512..1024]);
    i.logout();
    target.shutdown();
}

/// Task management functions this target does not do: TASK REASSIGN at ErrorRecoveryLevel
/// 0 is "task allegiance reassignment not supported" (4, RFC 7143 11.5.1); CLEAR ACA (no
/// NACA) and an unassigned function are "function not supported" (5).
#[test]
fn task_reassign_and_clear_aca_are_not_supported() {
    let (_dir, target) = start();
    let mut i = Initiator::logged_in(target.local_addr());
    assert_eq!(i.tmf(8, 0, 0x99), 4);
    assert_eq!(i.tmf(3, 0, 0), 5);
    assert_eq!(i.tmf(14, 0, 0), 5);
    assert_eq!(i.nop(b"alive").data, b"alive");
    target.shutdown();
}

/// A write longer than MaxBurstLength (32 KiB here) is solicited in bursts, one R2T each,
/// numbered from 0 (R2TSN, bytes 36-39) with the offset and length of its burst.
#[test]
fn each_burst_of_a_long_write_has_the_next_r2t_sn() {
    let (_dir, target) = start();
    let mut i = Initiator::logged_in(target.local_addr());
    assert_eq!(
        Initiator::sense(&i.command(0, &[0; 6], &[], 0)),
        (6, 0x29, 0)
    );
    let data: Vec<u8> = (0..160 * 512u32).map(|x| (x % 253) as u8).collect();
    let p = i.command_pdu(
        0,
        &[0x2a, 0, 0, 0, 0, 0, 0, 0, 160, 0],
        160 * 512,
        false,
        &[],
    );
    i.send(&p);
    let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
    for (n, offset) in [(0u32, 0usize), (1, 32768), (2, 65536)] {
        let r2t = i.recv();
        assert_eq!(r2t.bhs.opcode(), Opcode::R2T);
        let len = (data.len() - offset).min(32768);
        assert_eq!(
            (
                be(&r2t.bhs.0[36..40]),
                be(&r2t.bhs.0[40..44]),
                be(&r2t.bhs.0[44..48])
            ),
            (n, offset as u32, len as u32),
            "R2T {n}"
        );
        let mut b = Bhs::new(Opcode::DATA_OUT);
        b.set_flags(0x80)
            .set_itt(p.bhs.itt())
            .set_ttt(r2t.bhs.ttt())
            .set_data_sn(0)
            .set_buffer_offset(offset as u32);
        i.send(&Pdu::with_data(b, data[offset..offset + len].to_vec()));
    }
    let r = i.recv();
    assert_eq!((r.bhs.opcode(), r.bhs.byte(3)), (Opcode::SCSI_RESPONSE, 0));
    let back = i.command(0, &[0x28, 0, 0, 0, 0, 0, 0, 0, 160, 0], &[], 160 * 512);
    assert!(back.data == data);
    target.shutdown();
}
