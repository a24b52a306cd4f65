//! A minimal iSCSI initiator for the tests: login, SCSI commands with immediate data, R2T
//! and Data-In, NOP, task management, logout. Written here from RFC 7143, independent of
//! the target's own session code (it shares only the PDU codec).
#![allow(dead_code)]

pub mod list;
pub mod weed;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use xcopyd::iscsi::pdu::{Bhs, Digests, Opcode, Pdu, BHS_LEN};
use xcopyd::iscsi::text::TextKeys;
use xcopyd::scsi::Sense;

static NEXT_ISID: AtomicU16 = AtomicU16::new(1);

/// The target name tests/iscsi.rs serves.
pub const IQN: &str = "iqn.2026-11.org.xcopyd:test";

pub struct Initiator {
    pub s: TcpStream,
    pub cmd_sn: u32,
    pub itt: u32,
    /// This connection's ISID, distinct per connection: the same one twice would
    /// reinstate the session.
    isid: [u8; 6],
}

/// Login or Text keys as they go on the wire: `A=1|B=2` becomes `A=1\0B=2\0`.
pub fn text(keys: &str) -> Vec<u8> {
    (keys.replace('|', "\0") + "\0").into_bytes()
}

pub fn read_pdu(s: &mut TcpStream) -> Option<Pdu> {
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
pub struct Reply {
    pub status: u8,
    pub data: Vec<u8>,
    pub sense: Vec<u8>,
    pub residual: u32,
    pub underflow: bool,
    pub overflow: bool,
    pub data_in_pdus: usize,
}

impl Initiator {
    pub fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let n = NEXT_ISID.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        Self {
            s,
            cmd_sn: 1,
            itt: 1,
            isid: [0x80, 0, 0, 0, n[0], n[1]],
        }
    }

    pub fn send(&mut self, p: &Pdu) {
        self.s.write_all(&p.encode(Digests::default())).unwrap();
    }

    pub fn recv(&mut self) -> Pdu {
        read_pdu(&mut self.s).expect("a PDU")
    }

    pub fn login(addr: SocketAddr, keys: &str) -> (Self, Pdu) {
        Self::login_at(addr, keys, 1)
    }

    /// A login whose CmdSN (the first command's, RFC 7143 4.2.2.1) is `cmd_sn`.
    pub fn login_at(addr: SocketAddr, keys: &str, cmd_sn: u32) -> (Self, Pdu) {
        let mut i = Self::connect(addr);
        i.cmd_sn = cmd_sn;
        let r = i.login_request(0x80 | (1 << 2) | 3, text(keys));
        (i, r)
    }

    /// Sends one Login Request of this connection (`flags`: T, C, CSG, NSG; `data` its
    /// text as sent) and returns the Login Response.
    pub fn login_request(&mut self, flags: u8, data: Vec<u8>) -> Pdu {
        let mut b = Bhs::new(Opcode::LOGIN_REQUEST);
        b.set_immediate(true)
            .set_flags(flags)
            .set_isid(self.isid)
            .set_itt(0)
            .set_cmd_sn(self.cmd_sn)
            .set_exp_stat_sn(0);
        self.send(&Pdu::with_data(b, data));
        let r = self.recv();
        assert_eq!(r.bhs.opcode(), Opcode::LOGIN_RESPONSE);
        r
    }

    pub fn logged_in(addr: SocketAddr) -> Self {
        Self::logged_in_to(addr, IQN, "iqn.test:init")
    }

    /// Logs in to `target` as `initiator`.
    pub fn logged_in_to(addr: SocketAddr, target: &str, initiator: &str) -> Self {
        let (i, r) = Self::login(
            addr,
            &format!(
                "InitiatorName={initiator}|TargetName={target}|SessionType=Normal|\
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

    pub fn next_itt(&mut self) -> u32 {
        self.itt += 1;
        self.itt
    }

    pub fn command_pdu(&mut self, lun: u8, cdb: &[u8], edtl: u32, read: bool, imm: &[u8]) -> Pdu {
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
    pub fn command(&mut self, lun: u8, cdb: &[u8], data: &[u8], read_len: u32) -> Reply {
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
                        reply.overflow = r.bhs.flags() & 0x04 != 0;
                        return reply;
                    }
                }
                Opcode::SCSI_RESPONSE => {
                    reply.status = r.bhs.byte(3);
                    reply.residual = r.bhs.residual_count();
                    reply.underflow = r.bhs.flags() & 0x02 != 0;
                    reply.overflow = r.bhs.flags() & 0x04 != 0;
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

    pub fn sense(r: &Reply) -> (u8, u8, u8) {
        assert_eq!(r.status, 2, "{r:?}");
        let s = Sense::decode(&r.sense).unwrap();
        (s.key.0, s.asc.asc(), s.asc.ascq())
    }

    pub fn nop(&mut self, payload: &[u8]) -> Pdu {
        let mut b = Bhs::new(Opcode::NOP_OUT);
        let itt = self.next_itt();
        b.set_immediate(true)
            .set_flags(0x80)
            .set_itt(itt)
            .set_ttt(0xffff_ffff)
            .set_cmd_sn(self.cmd_sn);
        self.send(&Pdu::with_data(b, payload.to_vec()));
        // A target's own ping (a NOP-In with ITT ffffffffh) may cross our NOP-Out on
        // the wire; it is not the answer.
        let r = loop {
            let r = self.recv();
            if !(r.bhs.opcode() == Opcode::NOP_IN && r.bhs.itt() == 0xffff_ffff) {
                break r;
            }
        };
        assert_eq!((r.bhs.opcode(), r.bhs.itt()), (Opcode::NOP_IN, itt));
        r
    }

    pub fn tmf(&mut self, function: u8, lun: u8, rtt: u32) -> u8 {
        self.tmf_at(function, lun, rtt, 0)
    }

    /// A task management request naming the referenced task by tag and CmdSN.
    pub fn tmf_at(&mut self, function: u8, lun: u8, rtt: u32, ref_cmd_sn: u32) -> u8 {
        let mut b = Bhs::new(Opcode::TASK_MANAGEMENT_REQUEST);
        let itt = self.next_itt();
        b.set_immediate(true)
            .set_flags(0x80 | function)
            .set_lun([0, lun, 0, 0, 0, 0, 0, 0])
            .set_itt(itt)
            .set_referenced_task_tag(rtt)
            .set_cmd_sn(self.cmd_sn)
            .set_ref_cmd_sn(ref_cmd_sn);
        self.send(&Pdu::new(b));
        let r = self.recv();
        assert_eq!(
            (r.bhs.opcode(), r.bhs.itt()),
            (Opcode::TASK_MANAGEMENT_RESPONSE, itt)
        );
        r.bhs.byte(2)
    }

    pub fn logout(mut self) {
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
