//! One connection: login, then the reader loop — command sequencing, NOP, text and logout
//! requests, an idle connection pinged and then closed, every close logged with its reason.
//! Write commands and their Data-Out are in [`super::data_out`].

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::executor::{Executor, Queue, ReadyTask};
use super::login_phase::{is_timeout, login, LoggedIn, SILENT};
use super::window::{sn_le, CmdWindow};
use super::writer::{lock, read_pdu, Deadline, ReadError, Writer};
use super::{abort_all, Session, Shared};
use crate::frontend::iscsi::login::{self, Params};
use crate::iscsi::pdu::{reject, Bhs, Digests, Opcode, Pdu, PduError};
use crate::iscsi::text::TextKeys;

/// A write command still collecting data-out.
pub(super) struct PendingWrite {
    pub(super) task: ReadyTask,
    pub(super) expected: usize,
    /// The end of the current sequence (unsolicited burst or R2T'd burst).
    pub(super) sequence_end: usize,
    /// TTT the Data-Out must carry (ffffffffh for unsolicited).
    pub(super) ttt: u32,
    pub(super) data_sn: u32,
    pub(super) r2t_sn: u32,
    /// When Data-Out for it last arrived (or the command did): a write that stalls for
    /// `data_out_timeout` is ended.
    pub(super) progress: Instant,
}

/// The most one PDU may take to arrive once its first byte has (a slow sender holding a
/// half-sent PDU is closed).
const PDU_TIME: Duration = Duration::from_secs(30);
/// How often an idle connection's reader wakes to check its clocks.
const TICK: Duration = Duration::from_secs(1);
/// The Target Transfer Tag of the target's NOP-In pings.
const PING_TTT: u32 = 0x7069_6e67;

/// One connection from accept to close.
pub(super) fn serve(stream: TcpStream, shared: &Arc<Shared>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let window = Arc::new(CmdWindow::new(shared.config.queue_depth.max(1)));
    let mut writer = Writer {
        stream: stream.try_clone()?,
        digests: Digests::default(),
        stat_sn: 1,
        window: window.clone(),
    };
    let peer = stream.peer_addr().ok();
    let LoggedIn {
        params,
        session,
        conn_id,
        tsih,
    } = match login(&mut reader, &mut writer, shared)? {
        Ok(l) => l,
        Err(why) if why == SILENT => {
            tracing::debug!(peer = ?peer, "iSCSI connection closed before a login");
            return Ok(());
        }
        Err(why) => {
            tracing::warn!(peer = ?peer, reason = %why, "iSCSI login refused");
            if let Some(m) = &shared.config.metrics {
                m.iscsi_logins
                    .get_or_create(&vec![("result", "refused".into()), ("reason", kind(&why))])
                    .inc();
            }
            return Ok(());
        }
    };
    let metrics = shared.config.metrics.clone();
    if let Some(m) = &metrics {
        m.iscsi_logins
            .get_or_create(&vec![("result", "ok".into()), ("reason", String::new())])
            .inc();
        m.iscsi_sessions.inc();
    }
    // The session leaves the gauge however the connection ends.
    let _counted = SessionGauge(metrics);
    tracing::info!(
        peer = ?peer,
        initiator = %params.initiator_name,
        discovery = params.discovery,
        tsih,
        "iSCSI login"
    );
    writer.digests = Digests {
        header: params.header_digest,
        data: params.data_digest,
    };
    if !params.discovery {
        reinstate(shared, &session, peer);
        settle(shared, &session);
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
        heard: Instant::now(),
        pinged: false,
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
    let why = match conn.run(&mut reader, &exec) {
        Ok(why) => why,
        Err(e) => format!("send failed: {e}"),
    };
    // Connection gone: abort its tasks, let the workers drain, forget the nexus.
    abort_all(&session, None);
    exec.close();
    let _ = stream.shutdown(Shutdown::Both);
    if !conn.params.discovery {
        shared.dispatcher.nexus_lost(&session.nexus);
    }
    // Out of the map only once its nexus loss is done: a login waiting in settle() sees it.
    shared.sessions().remove(&conn_id);
    shared.left.notify_all();
    tracing::info!(initiator = %session.initiator, tsih, reason = %why, "iSCSI connection closed");
    Ok(())
}

/// Takes a session off the sessions gauge when dropped.
struct SessionGauge(Option<Arc<crate::metrics::Metrics>>);

impl Drop for SessionGauge {
    fn drop(&mut self) {
        if let Some(m) = &self.0 {
            m.iscsi_sessions.dec();
        }
    }
}

/// A refusal's kind for the metrics (few values: the login status, or how it failed).
fn kind(why: &str) -> String {
    if let Some(status) = why
        .rsplit_once("(status ")
        .and_then(|(_, s)| s.strip_suffix(')'))
    {
        return format!("status {status}");
    }
    if why.starts_with("not logged in within") {
        "timeout".into()
    } else if why.starts_with("connection lost") {
        "connection lost".into()
    } else {
        "protocol error".into()
    }
}

/// Session reinstatement (RFC 7143 6.3.5): a new login with the same initiator and ISID
/// (authenticated, if the table asks for it) replaces the old session.
fn reinstate(shared: &Shared, session: &Session, peer: Option<SocketAddr>) {
    let old: Vec<Arc<Session>> = shared
        .sessions()
        .values()
        .filter(|s| {
            s.initiator.eq_ignore_ascii_case(&session.initiator)
                && s.isid == session.isid
                && !std::ptr::eq(Arc::as_ptr(s), session)
        })
        .cloned()
        .collect();
    for s in old {
        tracing::info!(initiator = %s.initiator, peer = ?peer, "iSCSI session reinstated: the old one is closed");
        abort_all(&s, None);
        let _ = s.stream.shutdown(Shutdown::Both);
    }
}

/// The longest a new login waits for the teardown of its initiator's closed connections.
const SETTLE: Duration = Duration::from_secs(5);

/// Waits until this initiator's sessions whose connections are already gone — reinstated
/// by this login, or closed by the peer before it connected again — have been torn down,
/// so that their I_T nexus loss (PREVENT ALLOW MEDIUM REMOVAL cleared, reservations
/// released, unit attentions raised) happens before this session's first command, and
/// never after it. An initiator that drops its connection and logs in again at once
/// (libiscsi's PreventAllow.ITNexusLoss) otherwise races the old connection's reader.
fn settle(shared: &Shared, session: &Session) {
    let deadline = Instant::now() + SETTLE;
    let mut sessions = shared.sessions();
    loop {
        let gone = sessions
            .values()
            .filter(|s| {
                !std::ptr::eq(Arc::as_ptr(s), session)
                    && s.initiator.eq_ignore_ascii_case(&session.initiator)
                    && (s.isid == session.isid || peer_closed(&s.stream))
            })
            .count();
        if gone == 0 {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tracing::warn!(
                initiator = %session.initiator,
                gone,
                "iSCSI login goes on before the teardown of {gone} closed connection(s) of its initiator"
            );
            return;
        }
        sessions = shared
            .left
            .wait_timeout(sessions, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

/// The peer has closed (or reset) the connection: POLLRDHUP, even with data unread.
fn peer_closed(stream: &TcpStream) -> bool {
    // nix names no POLLRDHUP (Linux 2.6.17+); libc does. Asked for, it is the only bit
    // nix does not know, and a bit it does not know makes `revents()` None.
    let rdhup = PollFlags::from_bits_retain(nix::libc::POLLRDHUP);
    let mut fds = [PollFd::new(stream.as_fd(), rdhup)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_none_or(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)),
        Err(_) => false,
    }
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
    /// When the last PDU arrived.
    heard: Instant,
    /// A NOP-In ping went out since.
    pinged: bool,
}

/// What handling a PDU asks of the reader loop.
pub(super) enum Next {
    Continue,
    /// Close the connection, for this reason (logged).
    Close(String),
}

impl Connection {
    /// Reads and handles PDUs until the connection ends; returns why it ended.
    pub(super) fn run(
        &mut self,
        reader: &mut BufReader<TcpStream>,
        tx: &Arc<Executor>,
    ) -> io::Result<String> {
        let digests = Digests {
            header: self.params.header_digest,
            data: self.params.data_digest,
        };
        let max_data = login::TARGET_MAX_RECV_DATA_SEGMENT_LENGTH as usize;
        loop {
            if let Some(why) = self.wait_for_pdu(reader)? {
                return Ok(why);
            }
            let mut timed = Deadline {
                reader: &mut *reader,
                at: Instant::now() + PDU_TIME,
            };
            let pdu = match read_pdu(&mut timed, digests, max_data) {
                Ok(p) => p,
                Err(ReadError::Io(e)) if is_timeout(&e) => {
                    return Ok(format!(
                        "a PDU took longer than {} s to arrive",
                        PDU_TIME.as_secs()
                    ))
                }
                Err(ReadError::Io(e)) => return Ok(format!("connection lost: {e}")),
                Err(ReadError::Pdu(PduError::HeaderDigest)) => {
                    return Ok("header digest error".into())
                }
                Err(ReadError::Pdu(PduError::DataDigest)) => {
                    // The header is sound: drop the PDU (RFC 7143 7.8).
                    tracing::warn!(initiator = %self.session.initiator, "iSCSI PDU dropped: data digest error");
                    continue;
                }
                Err(ReadError::Pdu(e)) => {
                    // Oversized data segment: we cannot resynchronise without reading it.
                    return Ok(format!("{e}"));
                }
            };
            self.heard = Instant::now();
            self.pinged = false;
            if let Next::Close(why) = self.handle(pdu, tx)? {
                return Ok(why);
            }
        }
    }

    /// Waits for the next PDU's first byte, waking every [`TICK`] to end stalled writes,
    /// ping an idle initiator at half `idle_timeout` and close it at `idle_timeout` (idle:
    /// nothing received and no command outstanding). Some(reason) = close.
    fn wait_for_pdu(&mut self, reader: &mut BufReader<TcpStream>) -> io::Result<Option<String>> {
        let idle = self.shared.config.idle_timeout;
        loop {
            reader.get_ref().set_read_timeout(Some(TICK))?;
            match reader.fill_buf() {
                Ok([]) => return Ok(Some("closed by the initiator".into())),
                Ok(_) => return Ok(None),
                Err(e) if is_timeout(&e) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Ok(Some(format!("connection lost: {e}"))),
            }
            self.expire_stalled_writes()?;
            let busy = !self.session.tasks().is_empty();
            let quiet = self.heard.elapsed();
            if busy {
                continue;
            }
            if quiet >= idle {
                return Ok(Some(format!(
                    "idle for {} s (idle_timeout)",
                    quiet.as_secs()
                )));
            }
            if quiet >= idle / 2 && !self.pinged {
                // RFC 7143 11.19: a NOP-In with a TTT asks the initiator for a NOP-Out.
                let mut r = Bhs::new(Opcode::NOP_IN);
                r.set_flags(0x80)
                    .set_itt(0xffff_ffff)
                    .set_ttt(PING_TTT)
                    .set_lun([0; 8]);
                self.w().send(Pdu::new(r), false)?;
                self.pinged = true;
            }
        }
    }

    /// A command refused before it ran, logged with its reason.
    pub(super) fn refused(&self, b: &Bhs, why: &str) {
        tracing::warn!(
            initiator = %self.session.initiator,
            itt = b.itt(),
            opcode = ?b.opcode(),
            reason = why,
            "iSCSI command refused"
        );
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
            Ok(Next::Close("Login Request in full feature phase".into()))
        } else {
            self.w().reject(reject::COMMAND_NOT_SUPPORTED, &b)?;
            Ok(Next::Continue)
        }
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
        Ok(Next::Close("logout".into()))
    }
}
