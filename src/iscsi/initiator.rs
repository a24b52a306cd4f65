//! A small iSCSI initiator (RFC 7143) sharing the target's PDU codec ([`super::pdu`]),
//! text keys ([`super::text`]) and CHAP ([`super::chap`]): one session of one connection, login with
//! optional CHAP, SCSI commands with data-out (immediate data, unsolicited Data-Out and R2T
//! per what was negotiated) and data-in, status and sense, NOP-In answered, and any number
//! of tasks outstanding at once (an EXTENDED COPY running while RECEIVE COPY RESULTS
//! polls): callers on several threads share one [`Session`], a reader thread matches
//! responses to tasks by Initiator Task Tag.
//!
//! Not implemented (not needed by a copy client): digests (we offer None only),
//! multiple connections, error recovery levels above 0, task management.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use super::chap as auth;
use super::pdu::{Bhs, Digests, Opcode, Pdu, BHS_LEN};
use super::text::TextKeys;
use crate::scsi::luns::lun_to_wire;

/// What we accept in one Data-In (MaxRecvDataSegmentLength we declare).
const OUR_MAX_RECV: u32 = 256 * 1024;
/// The ISID type we use: 80h = random (RFC 7143 11.12.5), then a per-process qualifier.
const ISID_RANDOM: u8 = 0x80;
/// Sessions opened by this process, for distinct ISIDs.
static SESSIONS: AtomicU16 = AtomicU16::new(0);
/// Target Transfer Tag / ITT "reserved" value.
const RESERVED_TAG: u32 = 0xffff_ffff;

#[derive(Debug, thiserror::Error)]
pub enum InitiatorError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("login refused: status class {0:#04x} detail {1:#04x}")]
    LoginRefused(u8, u8),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("the connection is closed")]
    Closed,
    #[error("bad iSCSI URL {0:?}: expected iscsi://HOST[:PORT]/IQN/LUN")]
    Url(String),
}

/// `iscsi://HOST[:PORT]/IQN/LUN`, as libiscsi spells a LUN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IscsiUrl {
    /// HOST:PORT (port 3260 when not given).
    pub address: String,
    pub target: String,
    pub lun: u64,
}

impl IscsiUrl {
    pub fn parse(text: &str) -> Result<Self, InitiatorError> {
        let bad = || InitiatorError::Url(text.to_string());
        let rest = text.strip_prefix("iscsi://").ok_or_else(bad)?;
        let mut parts = rest.splitn(3, '/');
        let host = parts.next().filter(|h| !h.is_empty()).ok_or_else(bad)?;
        let target = parts.next().filter(|t| !t.is_empty()).ok_or_else(bad)?;
        let lun = parts.next().and_then(|l| l.parse().ok()).ok_or_else(bad)?;
        // A port is what follows the last ':' outside brackets.
        let has_port = host
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.ends_with(':') && p.parse::<u16>().is_ok() && !h.is_empty());
        let address = if has_port {
            host.to_string()
        } else {
            format!("{host}:3260")
        };
        Ok(Self {
            address,
            target: target.to_string(),
            lun,
        })
    }
}

/// How to log in.
#[derive(Clone, Debug)]
pub struct LoginOptions {
    pub initiator_name: String,
    pub target_name: String,
    /// CHAP user and secret; None = AuthMethod=None.
    pub chap: Option<(String, Vec<u8>)>,
    /// Mutual CHAP: the user name and secret the target must prove (with `chap` only).
    pub mutual_chap: Option<(String, Vec<u8>)>,
}

impl LoginOptions {
    pub fn new(target_name: &str) -> Self {
        Self {
            initiator_name: "iqn.2026-11.org.xcopyd:initiator".to_string(),
            target_name: target_name.to_string(),
            chap: None,
            mutual_chap: None,
        }
    }
}

/// What the target answered a SCSI command with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScsiResponse {
    /// SCSI status (00h GOOD, 02h CHECK CONDITION, ...).
    pub status: u8,
    /// Sense data (without the 2-byte SenseLength).
    pub sense: Vec<u8>,
    pub data_in: Vec<u8>,
    /// Residual count from the response (underflow or overflow, per the flags).
    pub residual: u32,
}

/// The operational parameters in force after login.
#[derive(Clone, Copy, Debug)]
struct Negotiated {
    /// The most data we may send in one PDU.
    target_max_recv: usize,
    first_burst: usize,
    immediate_data: bool,
    initial_r2t: bool,
}

struct Task {
    data_out: Arc<[u8]>,
    lun: [u8; 8],
    /// The most data-in the command asked for: Data-In past it is a target error, and
    /// nothing is sized by the target's offsets beyond it.
    data_in_len: usize,
    data_in: Vec<u8>,
    done: Option<Result<ScsiResponse, InitiatorError>>,
}

struct Shared {
    next_itt: u32,
    cmd_sn: u32,
    max_cmd_sn: u32,
    exp_stat_sn: u32,
    tasks: HashMap<u32, Task>,
    closed: bool,
}

struct Inner {
    writer: Mutex<TcpStream>,
    shared: Mutex<Shared>,
    changed: Condvar,
    params: Negotiated,
}

/// A logged-in session (one connection). Share it between threads by reference (or an Arc);
/// each [`command`](Session::command) waits for its own task only.
pub struct Session {
    inner: Arc<Inner>,
    reader: Option<JoinHandle<()>>,
    stream: TcpStream,
}

impl Session {
    /// Connects and logs in to a normal session.
    pub fn connect(
        address: impl ToSocketAddrs,
        opts: &LoginOptions,
    ) -> Result<Self, InitiatorError> {
        let mut stream = TcpStream::connect(address)?;
        stream.set_nodelay(true)?;
        let (params, cmd_sn, max_cmd_sn, exp_stat_sn) = login(&mut stream, opts)?;
        let inner = Arc::new(Inner {
            writer: Mutex::new(stream.try_clone()?),
            shared: Mutex::new(Shared {
                next_itt: 1,
                cmd_sn,
                max_cmd_sn,
                exp_stat_sn,
                tasks: HashMap::new(),
                closed: false,
            }),
            changed: Condvar::new(),
            params,
        });
        let reader = {
            let inner = Arc::clone(&inner);
            let stream = stream.try_clone()?;
            std::thread::Builder::new()
                .name("iscsi-initiator".into())
                .spawn(move || read_loop(&inner, stream))?
        };
        Ok(Self {
            inner,
            reader: Some(reader),
            stream,
        })
    }

    /// Runs one SCSI command on `lun`: `data_out` goes to the target (immediate, unsolicited
    /// and R2T-solicited as negotiated), at most `data_in_len` bytes come back.
    pub fn command(
        &self,
        lun: u64,
        cdb: &[u8],
        data_out: &[u8],
        data_in_len: usize,
    ) -> Result<ScsiResponse, InitiatorError> {
        use crate::scsi::dump::hex_spaced;
        tracing::debug!(lun, cdb = %hex_spaced(cdb), data_out = data_out.len(), data_in_len, "iSCSI command");
        let r = self.send_command(lun, cdb, data_out, data_in_len);
        match &r {
            Ok(resp) => tracing::debug!(
                status = format_args!("{:02x}h", resp.status),
                sense = %hex_spaced(&resp.sense),
                data_in = resp.data_in.len(),
                residual = resp.residual,
                "iSCSI response"
            ),
            Err(e) => tracing::debug!(error = %e, "iSCSI command failed"),
        }
        r
    }

    fn send_command(
        &self,
        lun: u64,
        cdb: &[u8],
        data_out: &[u8],
        data_in_len: usize,
    ) -> Result<ScsiResponse, InitiatorError> {
        let p = self.inner.params;
        let wire_lun = lun_to_wire(lun);
        let data: Arc<[u8]> = Arc::from(data_out);
        let (itt, cmd_sn, exp_stat_sn) = {
            let mut s = self.inner.lock();
            // Wait for the command window (CmdSN <= MaxCmdSN, serial arithmetic).
            while !s.closed && (s.max_cmd_sn.wrapping_sub(s.cmd_sn) as i32) < 0 {
                s = self.inner.wait(s);
            }
            if s.closed {
                return Err(InitiatorError::Closed);
            }
            let itt = s.next_itt;
            s.next_itt = s.next_itt.wrapping_add(1).max(1);
            let cmd_sn = s.cmd_sn;
            s.cmd_sn = s.cmd_sn.wrapping_add(1);
            s.tasks.insert(
                itt,
                Task {
                    data_out: Arc::clone(&data),
                    lun: wire_lun,
                    data_in_len: if data.is_empty() { data_in_len } else { 0 },
                    data_in: Vec::new(),
                    done: None,
                },
            );
            (itt, cmd_sn, s.exp_stat_sn)
        };
        let edtl = if data.is_empty() {
            data_in_len
        } else {
            data.len()
        };
        let mut bhs = Bhs::new(Opcode::SCSI_COMMAND);
        let write = !data.is_empty();
        let read = data_in_len > 0 && !write;
        // F, R, W, ATTR = simple.
        bhs.set_flags(0x80 | if read { 0x40 } else { 0 } | if write { 0x20 } else { 0 } | 0x01)
            .set_lun(wire_lun)
            .set_itt(itt)
            .set_expected_data_transfer_len(u32::try_from(edtl).unwrap_or(u32::MAX))
            .set_cmd_sn(cmd_sn)
            .set_exp_stat_sn(exp_stat_sn)
            .set_cdb(cdb);
        let burst = p.first_burst.min(data.len());
        let immediate = if p.immediate_data {
            burst.min(p.target_max_recv)
        } else {
            0
        };
        let mut out = Pdu::with_data(bhs, data[..immediate].to_vec()).encode(Digests::default());
        // Unsolicited Data-Out up to FirstBurstLength when InitialR2T=No.
        if !p.initial_r2t && immediate < burst {
            let mut data_sn = 0;
            let mut at = immediate;
            while at < burst {
                let n = (burst - at).min(p.target_max_recv);
                let last = at + n == burst;
                out.extend(data_out_pdu(
                    &wire_lun,
                    itt,
                    RESERVED_TAG,
                    exp_stat_sn,
                    data_sn,
                    at,
                    &data[at..at + n],
                    last,
                ));
                data_sn += 1;
                at += n;
            }
        }
        self.inner.send(&out)?;
        let mut s = self.inner.lock();
        loop {
            let finished = s.tasks.get(&itt).is_none_or(|t| t.done.is_some());
            if finished {
                let task = s.tasks.remove(&itt);
                return task
                    .and_then(|t| t.done)
                    .unwrap_or(Err(InitiatorError::Closed));
            }
            if s.closed {
                s.tasks.remove(&itt);
                return Err(InitiatorError::Closed);
            }
            s = self.inner.wait(s);
        }
    }

    /// Logs out (reason: close the session) and closes the connection.
    pub fn logout(mut self) -> Result<(), InitiatorError> {
        let (cmd_sn, exp_stat_sn) = {
            let s = self.inner.lock();
            (s.cmd_sn, s.exp_stat_sn)
        };
        let mut bhs = Bhs::new(Opcode::LOGOUT_REQUEST);
        bhs.set_immediate(true)
            .set_flags(0x80)
            .set_itt(0)
            .set_cmd_sn(cmd_sn)
            .set_exp_stat_sn(exp_stat_sn);
        self.inner.send(&Pdu::new(bhs).encode(Digests::default()))?;
        {
            let mut s = self.inner.lock();
            while !s.closed {
                s = self.inner.wait(s);
            }
        }
        self.finish();
        Ok(())
    }

    fn finish(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, g: MutexGuard<'a, Shared>) -> MutexGuard<'a, Shared> {
        self.changed.wait(g).unwrap_or_else(PoisonError::into_inner)
    }

    fn send(&self, bytes: &[u8]) -> io::Result<()> {
        self.writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write_all(bytes)
    }
}

#[allow(clippy::too_many_arguments)]
fn data_out_pdu(
    lun: &[u8; 8],
    itt: u32,
    ttt: u32,
    exp_stat_sn: u32,
    data_sn: u32,
    offset: usize,
    data: &[u8],
    last: bool,
) -> Vec<u8> {
    let mut bhs = Bhs::new(Opcode::DATA_OUT);
    bhs.set_flags(if last { 0x80 } else { 0 })
        .set_lun(*lun)
        .set_itt(itt)
        .set_ttt(ttt)
        .set_exp_stat_sn(exp_stat_sn)
        .set_data_sn(data_sn)
        .set_buffer_offset(u32::try_from(offset).unwrap_or(u32::MAX));
    Pdu::with_data(bhs, data.to_vec()).encode(Digests::default())
}

fn read_pdu(stream: &mut TcpStream, max_data: usize) -> Result<Pdu, InitiatorError> {
    let mut head = [0u8; BHS_LEN];
    stream.read_exact(&mut head)?;
    let bhs = Bhs(head);
    let total = Pdu::wire_len(&bhs, Digests::default(), max_data)
        .map_err(|e| InitiatorError::Protocol(e.to_string()))?;
    let mut buf = head.to_vec();
    buf.resize(total, 0);
    stream.read_exact(&mut buf[BHS_LEN..])?;
    Pdu::decode(&buf, Digests::default(), max_data)
        .map(|(p, _)| p)
        .map_err(|e| InitiatorError::Protocol(e.to_string()))
}

/// The reader thread: Data-In, SCSI Response, R2T, NOP-In, Logout Response, Reject.
fn read_loop(inner: &Inner, mut stream: TcpStream) {
    while let Ok(pdu) = read_pdu(&mut stream, OUR_MAX_RECV as usize) {
        let bhs = pdu.bhs;
        let op = bhs.opcode();
        let mut s = inner.lock();
        // Every target PDU with a StatSN that acknowledges a status advances ExpStatSN;
        // ExpCmdSN/MaxCmdSN are at 28/32 in all of them.
        let carries_status = op == Opcode::SCSI_RESPONSE
            || op == Opcode::LOGOUT_RESPONSE
            || op == Opcode::NOP_IN
            || (op == Opcode::DATA_IN && bhs.flags() & 0x01 != 0);
        if carries_status {
            s.exp_stat_sn = bhs.stat_sn().wrapping_add(1);
        }
        let max_cmd = bhs.max_cmd_sn();
        if (max_cmd.wrapping_sub(s.max_cmd_sn) as i32) > 0 {
            s.max_cmd_sn = max_cmd;
        }
        match op {
            Opcode::DATA_IN => data_in(&mut s, &bhs, &pdu.data),
            Opcode::SCSI_RESPONSE => scsi_response(&mut s, &bhs, &pdu.data),
            Opcode::R2T if s.tasks.contains_key(&bhs.itt()) => {
                if answer_r2t(inner, s, &bhs).is_err() {
                    break;
                }
                continue;
            }
            Opcode::NOP_IN if bhs.ttt() != RESERVED_TAG => {
                if answer_nop_in(inner, s, &bhs).is_err() {
                    break;
                }
                continue;
            }
            Opcode::LOGOUT_RESPONSE => {
                s.closed = true;
                inner.changed.notify_all();
                break;
            }
            // Reject, Async Message, an R2T for no task, anything else: nothing a waiting
            // task can use.
            _ => {}
        }
        inner.changed.notify_all();
    }
    let mut s = inner.lock();
    s.closed = true;
    for t in s.tasks.values_mut() {
        if t.done.is_none() {
            t.done = Some(Err(InitiatorError::Closed));
        }
    }
    inner.changed.notify_all();
}

/// Data-In: the data lands at its buffer offset; with S set it is the task's status too.
/// Data past what the command asked for ends the task with a protocol error.
fn data_in(s: &mut Shared, bhs: &Bhs, data: &[u8]) {
    let Some(t) = s.tasks.get_mut(&bhs.itt()) else {
        return;
    };
    let off = bhs.buffer_offset() as usize;
    let end = off.saturating_add(data.len());
    if end > t.data_in_len {
        t.done = Some(Err(InitiatorError::Protocol(format!(
            "the target sent Data-In for bytes {off}..{end}, past the {} the command asked for",
            t.data_in_len
        ))));
        return;
    }
    if t.data_in.len() < end {
        t.data_in.resize(end, 0);
    }
    t.data_in[off..end].copy_from_slice(data);
    if bhs.flags() & 0x01 != 0 {
        t.done = Some(Ok(ScsiResponse {
            status: bhs.byte(3),
            sense: Vec::new(),
            data_in: std::mem::take(&mut t.data_in),
            residual: bhs.residual_count(),
        }));
    }
}

/// SCSI Response: the task's status, sense (after its 2-byte SenseLength) and residual.
fn scsi_response(s: &mut Shared, bhs: &Bhs, data: &[u8]) {
    let Some(t) = s.tasks.get_mut(&bhs.itt()) else {
        return;
    };
    let sense = match data.get(..2) {
        Some(l) => {
            let n = usize::from(u16::from_be_bytes([l[0], l[1]]));
            data.get(2..2 + n).unwrap_or_default().to_vec()
        }
        None => Vec::new(),
    };
    t.done = Some(if bhs.byte(2) != 0 {
        Err(InitiatorError::Protocol(format!(
            "iSCSI response {:#04x}",
            bhs.byte(2)
        )))
    } else {
        Ok(ScsiResponse {
            status: bhs.byte(3),
            sense,
            data_in: std::mem::take(&mut t.data_in),
            residual: bhs.residual_count(),
        })
    });
}

/// R2T for a task of ours: the data it asks for, in Data-Out PDUs no larger than the
/// target receives, sent with the lock released.
fn answer_r2t(inner: &Inner, s: MutexGuard<'_, Shared>, bhs: &Bhs) -> io::Result<()> {
    let itt = bhs.itt();
    let exp_stat_sn = s.exp_stat_sn;
    let Some(t) = s.tasks.get(&itt) else {
        return Ok(());
    };
    let (data, lun) = (Arc::clone(&t.data_out), t.lun);
    drop(s);
    let off = bhs.buffer_offset() as usize;
    let want = bhs.desired_data_transfer_len() as usize;
    let end = (off + want).min(data.len());
    let mut out = Vec::new();
    let mut at = off.min(end);
    let mut data_sn = 0;
    while at < end {
        let n = (end - at).min(inner.params.target_max_recv);
        out.extend(data_out_pdu(
            &lun,
            itt,
            bhs.ttt(),
            exp_stat_sn,
            data_sn,
            at,
            &data[at..at + n],
            at + n == end,
        ));
        data_sn += 1;
        at += n;
    }
    inner.send(&out)
}

/// A NOP-In that asks for an answer (a target ping): the NOP-Out echoing its TTT.
fn answer_nop_in(inner: &Inner, s: MutexGuard<'_, Shared>, bhs: &Bhs) -> io::Result<()> {
    let mut out = Bhs::new(Opcode::NOP_OUT);
    out.set_immediate(true)
        .set_flags(0x80)
        .set_lun(bhs.lun())
        .set_itt(RESERVED_TAG)
        .set_ttt(bhs.ttt())
        .set_cmd_sn(s.cmd_sn)
        .set_exp_stat_sn(s.exp_stat_sn);
    drop(s);
    inner.send(&Pdu::new(out).encode(Digests::default()))
}

/// A login in progress: the connection, our ISID, and the sequence numbers and TSIH the
/// next Login Request carries.
struct Login<'a> {
    stream: &'a mut TcpStream,
    isid: [u8; 6],
    cmd_sn: u32,
    exp_stat_sn: u32,
    tsih: u16,
}

impl Login<'_> {
    /// One Login Request (CSG `csg`, transit to `nsg` if given) and its Login Response,
    /// which must be a success; returns the response and its keys.
    fn exchange(
        &mut self,
        csg: u8,
        nsg: Option<u8>,
        keys: &TextKeys,
    ) -> Result<(Pdu, TextKeys), InitiatorError> {
        let mut bhs = Bhs::new(Opcode::LOGIN_REQUEST);
        let transit = nsg.map_or(0, |n| 0x80 | n);
        bhs.set_immediate(true)
            .set_flags(transit | (csg << 2))
            .set_isid(self.isid)
            .set_tsih(self.tsih)
            .set_itt(0)
            .set_cid(0)
            .set_cmd_sn(self.cmd_sn)
            .set_exp_stat_sn(self.exp_stat_sn);
        self.stream
            .write_all(&Pdu::with_data(bhs, keys.encode()).encode(Digests::default()))?;
        let pdu = read_pdu(self.stream, 1 << 20)?;
        if pdu.bhs.opcode() != Opcode::LOGIN_RESPONSE {
            return Err(InitiatorError::Protocol(format!(
                "expected a Login Response, got {:?}",
                pdu.bhs.opcode()
            )));
        }
        let (class, detail) = (pdu.bhs.byte(36), pdu.bhs.byte(37));
        if class != 0 {
            return Err(InitiatorError::LoginRefused(class, detail));
        }
        let keys = TextKeys::decode(&pdu.data)
            .map_err(|e| InitiatorError::Protocol(format!("login keys: {e}")))?;
        Ok((pdu, keys))
    }

    /// The security stage with CHAP offered: the first keys (`first`), then CHAP (mutual
    /// when `opts` asks) if the target chose it, else straight on to the operational stage.
    fn security(
        &mut self,
        first: &TextKeys,
        user: &str,
        secret: &[u8],
        opts: &LoginOptions,
    ) -> Result<(), InitiatorError> {
        let (pdu, keys) = self.exchange(0, None, first)?;
        self.exp_stat_sn = pdu.bhs.stat_sn().wrapping_add(1);
        self.tsih = pdu.bhs.tsih();
        if keys.get("AuthMethod") == Some("CHAP") {
            return self.chap(user, secret, opts);
        }
        // The target chose None: move on to operational negotiation.
        let (pdu, _) = self.exchange(0, Some(1), &TextKeys::default())?;
        self.exp_stat_sn = pdu.bhs.stat_sn().wrapping_add(1);
        self.tsih = pdu.bhs.tsih();
        Ok(())
    }

    /// CHAP (RFC 7143 12.1.3): algorithm 5, our response to the target's challenge, and
    /// with mutual CHAP our own challenge, whose answer proves the target.
    fn chap(
        &mut self,
        user: &str,
        secret: &[u8],
        opts: &LoginOptions,
    ) -> Result<(), InitiatorError> {
        let mut a = TextKeys::default();
        a.push("CHAP_A", "5");
        let (pdu, keys) = self.exchange(0, None, &a)?;
        self.exp_stat_sn = pdu.bhs.stat_sn().wrapping_add(1);
        let id: u8 = keys
            .get("CHAP_I")
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| InitiatorError::Protocol("no CHAP_I".into()))?;
        let challenge = keys
            .get("CHAP_C")
            .and_then(auth::decode_binary)
            .ok_or_else(|| InitiatorError::Protocol("no CHAP_C".into()))?;
        let response = auth::chap_response(id, secret, &challenge);
        let mut r = TextKeys::default();
        r.push("CHAP_N", user);
        r.push("CHAP_R", auth::encode_binary(&response));
        // Mutual CHAP: our own challenge, which the target must answer.
        let ours = match &opts.mutual_chap {
            Some(_) => {
                let (i, c) = auth::new_challenge()
                    .map_err(|e| InitiatorError::Protocol(format!("random: {e}")))?;
                r.push("CHAP_I", i.to_string());
                r.push("CHAP_C", auth::encode_binary(&c));
                Some((i, c))
            }
            None => None,
        };
        let (pdu, keys) = self.exchange(0, Some(1), &r)?;
        self.exp_stat_sn = pdu.bhs.stat_sn().wrapping_add(1);
        self.tsih = pdu.bhs.tsih();
        if let (Some((i, c)), Some((user, secret))) = (ours, &opts.mutual_chap) {
            let answer = keys.get("CHAP_R").and_then(auth::decode_binary);
            let proved = keys.get("CHAP_N") == Some(user.as_str())
                && answer.is_some_and(|a| auth::verify(i, secret, &c, &a));
            if !proved {
                return Err(InitiatorError::Protocol(
                    "the target failed mutual CHAP: it is not who it claims".into(),
                ));
            }
        }
        Ok(())
    }

    /// The operational stage: our keys added to `ops`, the target's answers taken, until
    /// the target transits to full feature phase. Returns the parameters and (MaxCmdSN,
    /// ExpCmdSN) of the last response.
    fn operational(&mut self, mut ops: TextKeys) -> Result<(Negotiated, u32, u32), InitiatorError> {
        ops.push("HeaderDigest", "None");
        ops.push("DataDigest", "None");
        ops.push("MaxRecvDataSegmentLength", OUR_MAX_RECV.to_string());
        ops.push("ImmediateData", "Yes");
        ops.push("InitialR2T", "No");
        ops.push("FirstBurstLength", "262144");
        ops.push("MaxBurstLength", "1048576");
        ops.push("MaxConnections", "1");
        ops.push("ErrorRecoveryLevel", "0");
        ops.push("MaxOutstandingR2T", "1");
        ops.push("DataPDUInOrder", "Yes");
        ops.push("DataSequenceInOrder", "Yes");
        ops.push("DefaultTime2Wait", "2");
        ops.push("DefaultTime2Retain", "0");
        let mut params = Negotiated {
            target_max_recv: 8192,
            first_burst: 65536,
            immediate_data: true,
            initial_r2t: true,
        };
        let mut keys_to_send = ops;
        loop {
            // Without CHAP the first PDU goes from security straight to operational (CSG 0
            // -> NSG 1 needs AuthMethod agreed); we simply start in the operational stage.
            let (pdu, keys) = self.exchange(1, Some(3), &keys_to_send)?;
            self.exp_stat_sn = pdu.bhs.stat_sn().wrapping_add(1);
            self.tsih = pdu.bhs.tsih();
            let num = |k: &str| keys.get(k).and_then(|v| v.parse::<usize>().ok());
            if let Some(n) = num("MaxRecvDataSegmentLength") {
                params.target_max_recv = n.max(512);
            }
            if let Some(n) = num("FirstBurstLength") {
                params.first_burst = n;
            }
            if let Some(v) = keys.get("ImmediateData") {
                params.immediate_data = v == "Yes";
            }
            if let Some(v) = keys.get("InitialR2T") {
                params.initial_r2t = v == "Yes";
            }
            if pdu.bhs.flags() & 0x80 != 0 && pdu.bhs.flags() & 0x03 == 3 {
                return Ok((params, pdu.bhs.max_cmd_sn(), pdu.bhs.exp_cmd_sn()));
            }
            keys_to_send = TextKeys::default();
        }
    }
}

/// The login phase: security (CHAP when asked) and operational negotiation. Returns the
/// negotiated parameters and (CmdSN, MaxCmdSN, ExpStatSN) to start full feature phase with.
fn login(
    stream: &mut TcpStream,
    opts: &LoginOptions,
) -> Result<(Negotiated, u32, u32, u32), InitiatorError> {
    // Sessions of one process differ in their ISID (same name + ISID would reinstate).
    let [n0, n1] = SESSIONS.fetch_add(1, Ordering::Relaxed).to_be_bytes();
    let pid = std::process::id();
    let mut login = Login {
        stream,
        isid: [ISID_RANDOM, 0, (pid >> 8) as u8, pid as u8, n0, n1],
        cmd_sn: 1,
        exp_stat_sn: 0,
        tsih: 0,
    };
    let mut first = TextKeys::default();
    first.push("InitiatorName", opts.initiator_name.as_str());
    first.push("TargetName", opts.target_name.as_str());
    first.push("SessionType", "Normal");
    if let Some((user, secret)) = &opts.chap {
        first.push("AuthMethod", "CHAP,None");
        login.security(&first, user, secret, opts)?;
        first = TextKeys::default();
    }
    let (params, max_cmd_sn, exp_cmd_sn) = login.operational(first)?;
    let cmd_sn = exp_cmd_sn.max(login.cmd_sn);
    Ok((params, cmd_sn, max_cmd_sn, login.exp_stat_sn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            IscsiUrl::parse("iscsi://127.0.0.1:3261/iqn.2026-11.org.xcopyd:mover/1").unwrap(),
            IscsiUrl {
                address: "127.0.0.1:3261".into(),
                target: "iqn.2026-11.org.xcopyd:mover".into(),
                lun: 1
            }
        );
        assert_eq!(
            IscsiUrl::parse("iscsi://host/iqn.x:y/0").unwrap().address,
            "host:3260"
        );
        assert!(IscsiUrl::parse("iscsi://host/iqn.x:y").is_err());
        assert!(IscsiUrl::parse("http://host/iqn/0").is_err());
        assert!(IscsiUrl::parse("iscsi://host/iqn/x").is_err());
    }
}
