//! One connection: login, then the reader loop — command sequencing, SCSI commands and
//! their Data-Out (immediate, unsolicited, R2T), NOP, text and logout requests.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufReader, Read};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::executor::{Executor, Queue};
use super::login_phase::login;
use super::window::{sn_le, CmdWindow};
use super::writer::{lock, read_pdu, send_result, ReadError, Writer};
use super::{abort_all, Session, Shared, TaskEntry};
use crate::copy::{Abort, CommandResult};
use crate::frontend::dispatch::lun_from_wire;
use crate::frontend::iscsi::login::{self, Params, TextKeys};
use crate::frontend::iscsi::pdu::{reject, Bhs, Digests, Opcode, Pdu, PduError};
use crate::scsi::{Asc, Sense, SenseKey};

/// One connection from accept to close.
pub(super) fn serve(stream: TcpStream, shared: &Arc<Shared>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    // A login must finish promptly; full feature phase has no idle limit.
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let window = Arc::new(CmdWindow::new(shared.config.queue_depth.max(1)));
    let mut writer = Writer {
        stream: stream.try_clone()?,
        digests: Digests::default(),
        stat_sn: 1,
        window: window.clone(),
    };
    let peer = stream.peer_addr().ok();
    let Some((params, isid, tsih)) = login(&mut reader, &mut writer, shared)? else {
        tracing::info!(peer = ?peer, "iSCSI login failed");
        return Ok(());
    };
    tracing::info!(
        peer = ?peer,
        initiator = %params.initiator_name,
        discovery = params.discovery,
        tsih,
        "iSCSI login"
    );
    stream.set_read_timeout(None)?;
    writer.digests = Digests {
        header: params.header_digest,
        data: params.data_digest,
    };
    let session = Arc::new(Session {
        initiator: params.initiator_name.clone(),
        isid,
        nexus: Session::nexus(&params.initiator_name, isid, tsih),
        stream: stream.try_clone()?,
        tasks: Mutex::new(HashMap::new()),
        task_done: Condvar::new(),
    });
    let conn_id = shared.next_conn.fetch_add(1, Ordering::AcqRel);
    if !params.discovery {
        // Session reinstatement (RFC 7143 6.3.5): a new login with the same initiator and
        // ISID replaces the old session.
        let old: Vec<Arc<Session>> = shared
            .sessions()
            .values()
            .filter(|s| s.initiator == session.initiator && s.isid == isid)
            .cloned()
            .collect();
        for s in old {
            abort_all(&s, None);
            let _ = s.stream.shutdown(Shutdown::Both);
        }
        shared.sessions().insert(conn_id, session.clone());
    }
    let writer = Arc::new(Mutex::new(writer));
    let mut conn = Connection {
        shared: shared.clone(),
        session: session.clone(),
        params,
        writer: writer.clone(),
        window,
        held: BTreeMap::new(),
        writes: HashMap::new(),
        next_ttt: 1,
    };
    let exec = Executor::start(Executor {
        shared: shared.clone(),
        session: session.clone(),
        writer: writer.clone(),
        window: conn.window.clone(),
        max_send: conn.params.initiator_max_recv_data_segment_length,
        max_burst: conn.params.max_burst_length,
        queue: Mutex::new(Queue::default()),
        wake: Condvar::new(),
    })?;
    let result = conn.run(&mut reader, &exec);
    // Connection gone: abort its tasks, let the workers drain, forget the nexus.
    abort_all(&session, None);
    exec.close();
    let _ = stream.shutdown(Shutdown::Both);
    shared.sessions().remove(&conn_id);
    if !conn.params.discovery {
        shared.dispatcher.nexus_lost(&session.nexus);
    }
    tracing::debug!(initiator = %session.initiator, tsih, "iSCSI connection closed");
    result
}

/// A command whose data-out is complete, ready for the executor.
pub(super) struct ReadyTask {
    pub(super) itt: u32,
    pub(super) lun: u64,
    pub(super) cdb: Vec<u8>,
    pub(super) data_out: Vec<u8>,
    pub(super) data_in_len: usize,
    pub(super) abort: Abort,
    /// May run beside other such tasks and complete out of order: a SIMPLE READ/WRITE on
    /// a disk ([`Dispatcher::concurrent`]). Any other task runs alone, in order.
    pub(super) concurrent: bool,
}

/// A write command still collecting data-out.
pub(super) struct PendingWrite {
    pub(super) task: ReadyTask,
    pub(super) expected: usize,
    /// The end of the current sequence (unsolicited burst or R2T'd burst).
    pub(super) sequence_end: usize,
    /// TTT the Data-Out must carry (ffffffffh for unsolicited).
    pub(super) ttt: u32,
    pub(super) data_sn: u32,
    r2t_sn: u32,
}

pub(super) struct Connection {
    pub(super) shared: Arc<Shared>,
    pub(super) session: Arc<Session>,
    pub(super) params: Params,
    pub(super) writer: Arc<Mutex<Writer>>,
    pub(super) window: Arc<CmdWindow>,
    /// Non-immediate requests that arrived ahead of ExpCmdSN.
    pub(super) held: BTreeMap<u32, Pdu>,
    pub(super) writes: HashMap<u32, PendingWrite>,
    pub(super) next_ttt: u32,
}

/// What handling a PDU asks of the reader loop.
pub(super) enum Next {
    Continue,
    Close,
}

impl Connection {
    pub(super) fn run(&mut self, reader: &mut impl Read, tx: &Arc<Executor>) -> io::Result<()> {
        let digests = Digests {
            header: self.params.header_digest,
            data: self.params.data_digest,
        };
        let max_data = login::TARGET_MAX_RECV_DATA_SEGMENT_LENGTH as usize;
        loop {
            let pdu = match read_pdu(reader, digests, max_data) {
                Ok(p) => p,
                Err(ReadError::Io) | Err(ReadError::Pdu(PduError::HeaderDigest)) => return Ok(()),
                Err(ReadError::Pdu(PduError::DataDigest)) => {
                    // The header is sound: say so, and drop the PDU (RFC 7143 7.8).
                    continue;
                }
                Err(ReadError::Pdu(_)) => {
                    // Oversized data segment: we cannot resynchronise without reading it.
                    return Ok(());
                }
            };
            if let Next::Close = self.handle(pdu, tx)? {
                return Ok(());
            }
        }
    }

    pub(super) fn w(&self) -> MutexGuard<'_, Writer> {
        lock(&self.writer)
    }

    pub(super) fn handle(&mut self, pdu: Pdu, tx: &Arc<Executor>) -> io::Result<Next> {
        let b = pdu.bhs;
        let op = b.opcode();
        if op == Opcode::DATA_OUT {
            return self.data_out(pdu, tx);
        }
        if op == Opcode::SNACK_REQUEST {
            self.w().reject(reject::SNACK_REJECT, &b)?;
            return Ok(Next::Continue);
        }
        // Command sequencing (RFC 7143 4.2.2.1).
        let immediate = b.immediate();
        let sn = b.cmd_sn();
        if !immediate {
            let exp = self.window.exp_cmd_sn.load(Ordering::Acquire);
            let max = self.window.end();
            if !(sn_le(exp, sn) && sn_le(sn, max)) {
                // Outside the window: silently ignored.
                return Ok(Next::Continue);
            }
            if sn != exp {
                self.held.insert(sn, pdu);
                return Ok(Next::Continue);
            }
            self.window
                .exp_cmd_sn
                .store(exp.wrapping_add(1), Ordering::Release);
        }
        let mut next = self.request(pdu, tx)?;
        // Requests held for a gap that is now filled.
        while let Next::Continue = next {
            let exp = self.window.exp_cmd_sn.load(Ordering::Acquire);
            let Some(p) = self.held.remove(&exp) else {
                break;
            };
            self.window
                .exp_cmd_sn
                .store(exp.wrapping_add(1), Ordering::Release);
            next = self.request(p, tx)?;
        }
        Ok(next)
    }

    /// A request in CmdSN order.
    pub(super) fn request(&mut self, pdu: Pdu, tx: &Arc<Executor>) -> io::Result<Next> {
        let b = pdu.bhs;
        let op = b.opcode();
        if op == Opcode::NOP_OUT {
            if b.itt() != 0xffff_ffff {
                let mut r = Bhs::new(Opcode::NOP_IN);
                r.set_flags(0x80)
                    .set_lun(b.lun())
                    .set_itt(b.itt())
                    .set_ttt(0xffff_ffff);
                self.w().send(Pdu::with_data(r, pdu.data), true)?;
            }
            Ok(Next::Continue)
        } else if op == Opcode::SCSI_COMMAND && !self.params.discovery {
            self.scsi_command(pdu, tx)
        } else if op == Opcode::TASK_MANAGEMENT_REQUEST && !self.params.discovery {
            self.task_management(&b, tx)
        } else if op == Opcode::TEXT_REQUEST {
            self.text(pdu)
        } else if op == Opcode::LOGOUT_REQUEST {
            self.logout(&b)
        } else if op == Opcode::LOGIN_REQUEST {
            // A login in full feature phase is a protocol error.
            self.w().reject(reject::PROTOCOL_ERROR, &b)?;
            Ok(Next::Close)
        } else {
            self.w().reject(reject::COMMAND_NOT_SUPPORTED, &b)?;
            Ok(Next::Continue)
        }
    }

    pub(super) fn scsi_command(&mut self, pdu: Pdu, tx: &Arc<Executor>) -> io::Result<Next> {
        let b = pdu.bhs;
        let itt = b.itt();
        let flags = b.flags();
        let (read, write) = (flags & 0x40 != 0, flags & 0x20 != 0);
        let edtl = b.expected_data_transfer_len() as usize;
        if self.session.tasks().contains_key(&itt) || itt == 0xffff_ffff {
            // ITT already in use: the task tag must be unique (RFC 7143 11.2.1.8).
            self.w().reject(reject::INVALID_PDU_FIELD, &b)?;
            return Ok(Next::Continue);
        }
        if (read && write) || pdu.data.len() > edtl || (!write && !pdu.data.is_empty()) {
            // Bidirectional commands are not supported; immediate data must fit.
            self.w().reject(reject::INVALID_PDU_FIELD, &b)?;
            return Ok(Next::Continue);
        }
        let mut cdb = b.cdb().to_vec();
        cdb.extend_from_slice(&pdu.ahs_cdb());
        let lun = lun_from_wire(b.lun());
        let abort = Abort::new();
        // Task attribute (RFC 7143 11.3.1.2): 1 = SIMPLE.
        let simple = flags & 0x07 == 1;
        let task = ReadyTask {
            itt,
            lun,
            concurrent: simple && self.shared.dispatcher.concurrent(lun, &cdb),
            cdb,
            data_out: pdu.data,
            data_in_len: if read { edtl } else { 0 },
            abort: abort.clone(),
        };
        if edtl > self.shared.config.max_command_data as usize {
            let sense = Sense::invalid_field_in_cdb(0, None);
            let result = CommandResult::check_condition(&sense);
            let mut w = self.w();
            return send_result(&mut w, itt, edtl, read, &result, &[], u32::MAX, u32::MAX)
                .map(|_| Next::Continue);
        }
        self.session.tasks().insert(itt, TaskEntry { lun, abort });
        self.window.outstanding.fetch_add(1, Ordering::AcqRel);
        if !write || task.data_out.len() == edtl {
            tx.push(task);
            return Ok(Next::Continue);
        }
        let have = task.data_out.len();
        let mut pending = PendingWrite {
            task,
            expected: edtl,
            sequence_end: have,
            ttt: 0xffff_ffff,
            data_sn: 0,
            r2t_sn: 0,
        };
        if flags & 0x80 == 0 {
            // Unsolicited Data-Out follows, up to FirstBurstLength (F bit clear).
            if self.params.initial_r2t {
                self.w().reject(reject::PROTOCOL_ERROR, &b)?;
                return Ok(Next::Close);
            }
            pending.sequence_end = edtl.min(self.params.first_burst_length as usize);
        } else {
            self.r2t(&mut pending, &b)?;
        }
        self.writes.insert(itt, pending);
        Ok(Next::Continue)
    }

    /// Solicits the next burst (one R2T outstanding at a time: MaxOutstandingR2T=1).
    pub(super) fn r2t(&mut self, p: &mut PendingWrite, b: &Bhs) -> io::Result<()> {
        let have = p.task.data_out.len();
        let len = (p.expected - have).min(self.params.max_burst_length as usize);
        p.ttt = self.next_ttt;
        self.next_ttt = match self.next_ttt.wrapping_add(1) {
            u32::MAX => 0,
            t => t,
        };
        p.sequence_end = have + len;
        p.data_sn = 0;
        let mut r = Bhs::new(Opcode::R2T);
        r.set_flags(0x80)
            .set_lun(b.lun())
            .set_itt(p.task.itt)
            .set_ttt(p.ttt)
            .set_data_sn(p.r2t_sn)
            .set_buffer_offset(have as u32)
            .set_desired_data_transfer_len(len as u32);
        p.r2t_sn += 1;
        self.w().send(Pdu::new(r), false)
    }

    pub(super) fn data_out(&mut self, pdu: Pdu, tx: &Arc<Executor>) -> io::Result<Next> {
        let b = pdu.bhs;
        let itt = b.itt();
        let Some(mut p) = self.writes.remove(&itt) else {
            // Data for a task that is gone (aborted, rejected): dropped.
            return Ok(Next::Continue);
        };
        if p.task.abort.is_aborted() {
            return Ok(Next::Continue);
        }
        let have = p.task.data_out.len();
        // DataPDUInOrder=Yes: a Data-Out out of place (DataSN, offset, TTT, F bit) is a
        // protocol error. The PDU was read whole, so the connection is still in step: the
        // PDU is rejected and the task ends with CHECK CONDITION, ABORTED COMMAND, DATA
        // PHASE ERROR — never executed, never data written to the wrong place. Later
        // Data-Out for it is dropped. (Closing the connection instead makes initiators
        // reconnect and replay the write with renegotiated immediate data, which then
        // succeeds: libiscsi's DataSnInvalid.)
        let in_place = b.ttt() == p.ttt
            && b.data_sn() == p.data_sn
            && b.buffer_offset() as usize == have
            && have + pdu.data.len() <= p.sequence_end
            && b.final_bit() == (have + pdu.data.len() == p.sequence_end);
        if !in_place {
            self.w().reject(reject::PROTOCOL_ERROR, &b)?;
            self.session.tasks().remove(&itt);
            self.window.outstanding.fetch_sub(1, Ordering::AcqRel);
            self.session.task_done.notify_all();
            let sense = Sense::new(SenseKey::ABORTED_COMMAND, Asc::DATA_PHASE_ERROR);
            let result = CommandResult::check_condition(&sense);
            let mut w = self.w();
            send_result(
                &mut w,
                itt,
                p.expected,
                false,
                &result,
                &[],
                u32::MAX,
                u32::MAX,
            )?;
            return Ok(Next::Continue);
        }
        p.data_sn = p.data_sn.wrapping_add(1);
        p.task.data_out.extend_from_slice(&pdu.data);
        let done = p.task.data_out.len();
        if done == p.expected {
            tx.push(p.task);
        } else if b.final_bit() {
            self.r2t(&mut p, &b)?;
            self.writes.insert(itt, p);
        } else {
            self.writes.insert(itt, p);
        }
        Ok(Next::Continue)
    }

    pub(super) fn text(&mut self, pdu: Pdu) -> io::Result<Next> {
        let b = pdu.bhs;
        let answer = match TextKeys::decode(&pdu.data) {
            Ok(keys) => {
                let mut targets = BTreeMap::new();
                targets.insert(
                    self.shared.config.target_name.clone(),
                    format!("{},1", self.shared.addr),
                );
                login::text_keys(&keys, &targets)
            }
            Err(_) => {
                self.w().reject(reject::PROTOCOL_ERROR, &b)?;
                return Ok(Next::Continue);
            }
        };
        let mut r = Bhs::new(Opcode::TEXT_RESPONSE);
        r.set_flags(0x80)
            .set_lun(b.lun())
            .set_itt(b.itt())
            .set_ttt(0xffff_ffff);
        let mut data = answer.encode();
        data.truncate(self.params.initiator_max_recv_data_segment_length as usize);
        self.w().send(Pdu::with_data(r, data), true)?;
        Ok(Next::Continue)
    }

    pub(super) fn logout(&mut self, b: &Bhs) -> io::Result<Next> {
        // Let running commands finish and answer first (RFC 7143 11.14).
        self.wait_for(|tasks| tasks.is_empty());
        let mut r = Bhs::new(Opcode::LOGOUT_RESPONSE);
        r.set_flags(0x80).set_itt(b.itt());
        self.w().send(Pdu::new(r), true)?;
        Ok(Next::Close)
    }
}

impl Pdu {
    /// The Extended CDB AHS (type 1) of a SCSI Command: CDB bytes past 16.
    pub(super) fn ahs_cdb(&self) -> Vec<u8> {
        let mut rest = self.ahs.as_slice();
        // AHSLength counts the AHS-specific byte and the data, not the padding.
        while let [l0, l1, kind, _, tail @ ..] = rest {
            let len = usize::from(u16::from_be_bytes([*l0, *l1]));
            if *kind == 1 {
                return tail
                    .get(..len.saturating_sub(1))
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default();
            }
            rest = rest
                .get((3 + len).next_multiple_of(4)..)
                .unwrap_or_default();
        }
        Vec::new()
    }
}
