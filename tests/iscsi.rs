//! The iSCSI target in process, driven by a minimal initiator written here: login,
//! INQUIRY, REPORT LUNS, unit attention, WRITE(6)/READ(6) on an emulated tape through
//! immediate data + R2T + split Data-In, task management, logout, and hostile input.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use xcopyd::device::tape::{EmulatedTape, TapeConfig};
use xcopyd::device::ScsiDevice;
use xcopyd::frontend::iscsi::login::TextKeys;
use xcopyd::frontend::iscsi::pdu::{Bhs, Digests, Opcode, Pdu, BHS_LEN};
use xcopyd::frontend::iscsi::{self, Target, TargetConfig};
use xcopyd::frontend::testing::{MemoryDisk, RecordingCopyService};
use xcopyd::frontend::Dispatcher;
use xcopyd::scsi::Sense;

static NEXT_ISID: AtomicU16 = AtomicU16::new(1);

const IQN: &str = "iqn.2026-11.org.xcopyd:test";

fn start() -> (tempfile::TempDir, Target) {
    let dir = tempfile::tempdir().unwrap();
    let (tape, _) =
        EmulatedTape::open("tape0", dir.path().join("t.tap"), TapeConfig::default()).unwrap();
    let luns: Vec<Arc<dyn ScsiDevice>> = vec![
        Arc::new(MemoryDisk::new("disk0", 512, 2048)),
        Arc::new(tape),
    ];
    let d = Arc::new(Dispatcher::new(luns, RecordingCopyService::new()));
    let t = iscsi::start(TargetConfig::new("127.0.0.1:0", IQN), d).unwrap();
    (dir, t)
}

struct Initiator {
    s: TcpStream,
    cmd_sn: u32,
    itt: u32,
}

fn read_pdu(s: &mut TcpStream) -> Option<Pdu> {
    let mut head = [0u8; BHS_LEN];
    s.read_exact(&mut head).ok()?;
    let bhs = Bhs(head);
    let n = Pdu::wire_len(&bhs, Digests::default(), 1 << 24).ok()?;
    let mut buf = head.to_vec();
    buf.resize(n, 0);
    s.read_exact(&mut buf[BHS_LEN..]).ok()?;
    Some(Pdu::decode(&buf, Digests::default(), 1 << 24).ok()?.0)
}

/// What a command got back.
#[derive(Debug, Default)]
struct Reply {
    status: u8,
    data: Vec<u8>,
    sense: Vec<u8>,
    residual: u32,
    underflow: bool,
    data_in_pdus: usize,
}

impl Initiator {
    fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Self {
            s,
            cmd_sn: 1,
            itt: 1,
        }
    }

    fn send(&mut self, p: &Pdu) {
        self.s.write_all(&p.encode(Digests::default())).unwrap();
    }

    fn recv(&mut self) -> Pdu {
        read_pdu(&mut self.s).expect("a PDU")
    }

    fn login(addr: SocketAddr, keys: &str) -> (Self, Pdu) {
        let mut i = Self::connect(addr);
        let mut b = Bhs::new(Opcode::LOGIN_REQUEST);
        b.set_immediate(true)
            .set_flags(0x80 | (1 << 2) | 3)
            .set_isid({
                // A distinct ISID per login: the same one would reinstate the session.
                let n = NEXT_ISID.fetch_add(1, Ordering::Relaxed).to_be_bytes();
                [0x80, 0, 0, 0, n[0], n[1]]
            })
            .set_itt(0)
            .set_cmd_sn(1)
            .set_exp_stat_sn(0);
        let text = keys.replace('|', "\0") + "\0";
        i.send(&Pdu::with_data(b, text.into_bytes()));
        let r = i.recv();
        (i, r)
    }

    fn logged_in(addr: SocketAddr) -> Self {
        let (i, r) = Self::login(
            addr,
            &format!(
                "InitiatorName=iqn.test:init|TargetName={IQN}|SessionType=Normal|\
                 HeaderDigest=None|DataDigest=None|MaxRecvDataSegmentLength=8192|\
                 ImmediateData=Yes|InitialR2T=Yes|FirstBurstLength=8192|MaxBurstLength=32768"
            ),
        );
        assert_eq!(r.bhs.opcode(), Opcode::LOGIN_RESPONSE);
        assert_eq!((r.bhs.byte(36), r.bhs.byte(37)), (0, 0), "login status");
        assert_eq!(r.bhs.flags(), 0x80 | (1 << 2) | 3);
        assert_ne!(r.bhs.tsih(), 0);
        let keys = TextKeys::decode(&r.data).unwrap();
        assert_eq!(keys.get("TargetPortalGroupTag"), Some("1"));
        assert_eq!(keys.get("MaxBurstLength"), Some("32768"));
        i
    }

    fn next_itt(&mut self) -> u32 {
        self.itt += 1;
        self.itt
    }

    fn command_pdu(&mut self, lun: u8, cdb: &[u8], edtl: u32, read: bool, imm: &[u8]) -> Pdu {
        let itt = self.next_itt();
        let mut b = Bhs::new(Opcode::SCSI_COMMAND);
        let dir = if read {
            0x40
        } else if edtl > 0 {
            0x20
        } else {
            0
        };
        // F=1 always: InitialR2T=Yes, so no unsolicited Data-Out follows.
        let f = 0x80;
        b.set_flags(f | dir | 1)
            .set_lun([0, lun, 0, 0, 0, 0, 0, 0])
            .set_itt(itt)
            .set_expected_data_transfer_len(edtl)
            .set_cmd_sn(self.cmd_sn)
            .set_cdb(cdb);
        self.cmd_sn += 1;
        Pdu::with_data(b, imm.to_vec())
    }

    /// Sends a command with `data` (immediate up to 8192, the rest on R2T) and collects
    /// the reply.
    fn command(&mut self, lun: u8, cdb: &[u8], data: &[u8], read_len: u32) -> Reply {
        let (edtl, read) = if data.is_empty() {
            (read_len, read_len > 0)
        } else {
            (data.len() as u32, false)
        };
        let imm = &data[..data.len().min(8192)];
        let p = self.command_pdu(lun, cdb, edtl, read, imm);
        let itt = p.bhs.itt();
        self.send(&p);
        let mut reply = Reply::default();
        loop {
            let r = self.recv();
            assert_eq!(r.bhs.itt(), itt, "{:?}", r.bhs);
            match r.bhs.opcode() {
                Opcode::R2T => {
                    let (off, len) = (r.bhs.buffer_offset(), r.bhs.desired_data_transfer_len());
                    assert!(len <= 32768, "R2T within MaxBurstLength");
                    let mut sent = 0;
                    let mut data_sn = 0;
                    while sent < len {
                        let n = (len - sent).min(8192);
                        let mut b = Bhs::new(Opcode::DATA_OUT);
                        let start = (off + sent) as usize;
                        b.set_flags(if sent + n == len { 0x80 } else { 0 })
                            .set_lun(p.bhs.lun())
                            .set_itt(itt)
                            .set_ttt(r.bhs.ttt())
                            .set_data_sn(data_sn)
                            .set_buffer_offset(off + sent);
                        self.send(&Pdu::with_data(b, data[start..start + n as usize].to_vec()));
                        sent += n;
                        data_sn += 1;
                    }
                }
                Opcode::DATA_IN => {
                    assert_eq!(r.bhs.buffer_offset() as usize, reply.data.len());
                    assert!(
                        r.data.len() <= 8192,
                        "Data-In within MaxRecvDataSegmentLength"
                    );
                    assert_eq!(r.bhs.data_sn() as usize, reply.data_in_pdus);
                    reply.data.extend_from_slice(&r.data);
                    reply.data_in_pdus += 1;
                    if r.bhs.flags() & 0x01 != 0 {
                        reply.status = r.bhs.byte(3);
                        reply.residual = r.bhs.residual_count();
                        reply.underflow = r.bhs.flags() & 0x02 != 0;
                        return reply;
                    }
                }
                Opcode::SCSI_RESPONSE => {
                    reply.status = r.bhs.byte(3);
                    reply.residual = r.bhs.residual_count();
                    reply.underflow = r.bhs.flags() & 0x02 != 0;
                    if r.data.len() >= 2 {
                        let n = u16::from_be_bytes([r.data[0], r.data[1]]) as usize;
                        reply.sense = r.data[2..2 + n].to_vec();
                    }
                    return reply;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn sense(r: &Reply) -> (u8, u8, u8) {
        assert_eq!(r.status, 2, "{r:?}");
        let s = Sense::decode(&r.sense).unwrap();
        (s.key.0, s.asc.asc(), s.asc.ascq())
    }

    fn nop(&mut self, payload: &[u8]) -> Pdu {
        let mut b = Bhs::new(Opcode::NOP_OUT);
        let itt = self.next_itt();
        b.set_immediate(true)
            .set_flags(0x80)
            .set_itt(itt)
            .set_ttt(0xffff_ffff)
            .set_cmd_sn(self.cmd_sn);
        self.send(&Pdu::with_data(b, payload.to_vec()));
        let r = self.recv();
        assert_eq!((r.bhs.opcode(), r.bhs.itt()), (Opcode::NOP_IN, itt));
        r
    }

    fn tmf(&mut self, function: u8, lun: u8, rtt: u32) -> u8 {
        let mut b = Bhs::new(Opcode::TASK_MANAGEMENT_REQUEST);
        let itt = self.next_itt();
        b.set_immediate(true)
            .set_flags(0x80 | function)
            .set_lun([0, lun, 0, 0, 0, 0, 0, 0])
            .set_itt(itt)
            .set_referenced_task_tag(rtt)
            .set_cmd_sn(self.cmd_sn)
            .set_ref_cmd_sn(0);
        self.send(&Pdu::new(b));
        let r = self.recv();
        assert_eq!(
            (r.bhs.opcode(), r.bhs.itt()),
            (Opcode::TASK_MANAGEMENT_RESPONSE, itt)
        );
        r.bhs.byte(2)
    }

    fn logout(mut self) {
        let mut b = Bhs::new(Opcode::LOGOUT_REQUEST);
        let itt = self.next_itt();
        b.set_immediate(true)
            .set_flags(0x80)
            .set_itt(itt)
            .set_cmd_sn(self.cmd_sn);
        self.send(&Pdu::new(b));
        let r = self.recv();
        assert_eq!(
            (r.bhs.opcode(), r.bhs.byte(2)),
            (Opcode::LOGOUT_RESPONSE, 0)
        );
        assert!(
            read_pdu(&mut self.s).is_none(),
            "connection closed after logout"
        );
    }
}

#[test]
fn login_commands_tape_round_trip_abort_and_logout() {
    let (_dir, target) = start();
    let mut i = Initiator::logged_in(target.local_addr());

    // INQUIRY is not blocked by the pending unit attention; it keeps 3PC.
    let r = i.command(1, &[0x12, 0, 0, 0, 96, 0], &[], 96);
    assert_eq!(r.status, 0);
    assert_eq!(r.data.len(), 36);
    assert_eq!((r.data[0], r.data[5] & 0x08), (0x01, 0x08));
    // Expected 96, got 36: underflow 60, status collapsed into the Data-In.
    assert!(r.underflow);
    assert_eq!((r.residual, r.data_in_pdus), (60, 1));

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
    // Data-Out with a wrong DataSN: protocol error, Reject and close.
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
    assert!(read_pdu(&mut bad.s).is_none());

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
