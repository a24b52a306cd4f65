//! The login phase on the wire (RFC 7143 6.3): stages, transitions, text continuation, the
//! TSIH, the whole-login deadline and the per-initiator session limit; the keys themselves
//! (and who may log in) are negotiated by [`crate::frontend::iscsi::login`].

use std::collections::HashMap;
use std::io::{self, BufReader};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use super::writer::{read_pdu, Deadline, ReadError, Writer};
use super::{Session, Shared};
use crate::frontend::iscsi::login::{stage, LoginStatus, Negotiation, Params};
use crate::iscsi::pdu::{reject, Bhs, Digests, Opcode, Pdu};
use crate::iscsi::text::TextKeys;

/// Largest data segment of a Login Request (what we declare before negotiation).
const LOGIN_PDU_DATA: usize = 8192;
/// Most text one login may send across continued PDUs.
const LOGIN_TEXT: usize = 65536;

/// Why a connection that closed before sending a byte ended (a port probe, not a login).
pub(super) const SILENT: &str = "closed before a login";

/// A login that reached full feature phase, its session registered (normal sessions).
pub(super) struct LoggedIn {
    pub(super) params: Params,
    pub(super) session: Arc<Session>,
    /// Its key in the target's session table.
    pub(super) conn_id: u32,
    pub(super) tsih: u16,
}

/// The login phase (RFC 7143 6.3), within `login_timeout` as a whole. Returns the session,
/// or why the login failed (a Login Response with the failure status was sent where the
/// connection still allowed it).
pub(super) fn login(
    reader: &mut BufReader<TcpStream>,
    w: &mut Writer,
    shared: &Shared,
) -> io::Result<Result<LoggedIn, String>> {
    let deadline = Instant::now() + shared.config.login_timeout;
    let mut neg = Negotiation::new(&shared.config.target_name, shared.config.initiators.clone());
    let mut current = stage::SECURITY;
    let mut text = Vec::new();
    let mut first = true;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Err(format!(
                "not logged in within {} s",
                shared.config.login_timeout.as_secs()
            )));
        }
        let req = match read_login_pdu(reader, deadline, shared, first) {
            Ok(p) => p,
            Err(why) => return Ok(Err(why)),
        };
        let b = req.bhs;
        if b.opcode() != Opcode::LOGIN_REQUEST {
            // Anything but a Login Request before full feature phase: protocol error.
            let _ = w.reject(reject::PROTOCOL_ERROR, &b);
            return Ok(Err(format!("{:?} before the login ended", b.opcode())));
        }
        if first {
            first = false;
            w.window.exp_cmd_sn.store(b.cmd_sn(), Ordering::Release);
            w.stat_sn = b.exp_stat_sn();
        }
        let isid = b.isid();
        let flags = b.flags();
        let transit = flags & 0x80 != 0;
        let cont = flags & 0x40 != 0;
        let csg = (flags >> 2) & 3;
        let nsg = flags & 3;
        let respond = |w: &mut Writer, flags: u8, tsih: u16, status: LoginStatus, data: Vec<u8>| {
            let mut r = Bhs::new(Opcode::LOGIN_RESPONSE);
            r.set_flags(flags)
                .set_isid(isid)
                .set_tsih(tsih)
                .set_itt(b.itt())
                .set_byte(36, status.0)
                .set_byte(37, status.1);
            w.send(Pdu::with_data(r, data), true)
        };
        let fail = |w: &mut Writer, status: LoginStatus, why: String| {
            respond(w, 0, 0, status, Vec::new())?;
            Ok(Err(format!(
                "{why} (status {:02x}{:02x})",
                status.0, status.1
            )))
        };
        if let Some((status, why)) = refusal(&b, current, &neg) {
            return fail(w, status, why);
        }
        current = csg;
        text.extend_from_slice(&req.data);
        if text.len() > LOGIN_TEXT {
            let why = format!("more than {LOGIN_TEXT} bytes of login text");
            return fail(w, LoginStatus::INITIATOR_ERROR, why);
        }
        if cont {
            // Text continues in the next PDU (RFC 7143 6.2): acknowledge with nothing.
            respond(w, csg << 2, 0, LoginStatus::SUCCESS, Vec::new())?;
            continue;
        }
        let keys = match TextKeys::decode(&text) {
            Ok(k) => k,
            Err(e) => return fail(w, LoginStatus::INITIATOR_ERROR, format!("login keys: {e}")),
        };
        text.clear();
        let answer = match neg.login_keys(csg, &keys) {
            Ok(a) => a,
            Err(status) => {
                let why = neg.refusal.take().unwrap_or_else(|| "refused".into());
                return fail(w, status, why);
            }
        };
        // A login that starts in the operational stage names its initiator only now: one
        // the table requires to authenticate has skipped the security stage.
        if csg != stage::SECURITY && !neg.may_leave_security() {
            let why = "the security stage skipped by an initiator that must authenticate".into();
            return fail(w, LoginStatus::AUTHENTICATION_FAILURE, why);
        }
        let may_transit = transit
            && !(csg == stage::SECURITY && (!neg.may_leave_security() || neg.chap_pending()));
        if may_transit && nsg == stage::FULL_FEATURE {
            let (session, conn_id, tsih) = match open_session(shared, w, &neg.params, isid)? {
                Ok(opened) => opened,
                Err(why) => return fail(w, LoginStatus::TOO_MANY_CONNECTIONS, why),
            };
            respond(
                w,
                0x80 | (csg << 2) | nsg,
                tsih,
                LoginStatus::SUCCESS,
                answer.encode(),
            )?;
            return Ok(Ok(LoggedIn {
                params: neg.params,
                session,
                conn_id,
                tsih,
            }));
        }
        let flags = if may_transit {
            0x80 | (csg << 2) | nsg
        } else {
            csg << 2
        };
        if may_transit {
            current = nsg;
        }
        respond(w, flags, 0, LoginStatus::SUCCESS, answer.encode())?;
    }
}

/// Why a Login Request's header is refused before its keys are read, if it is: version,
/// a TSIH (no connection joins a session), a stage transition RFC 7143 6.3 forbids
/// (`current` is the stage the login is in), or the operational stage before authentication.
fn refusal(b: &Bhs, current: u8, neg: &Negotiation) -> Option<(LoginStatus, String)> {
    let flags = b.flags();
    let transit = flags & 0x80 != 0;
    let cont = flags & 0x40 != 0;
    let csg = (flags >> 2) & 3;
    let nsg = flags & 3;
    // Version-max/min (bytes 2, 3): we speak version 0.
    if b.byte(3) != 0 {
        return Some((LoginStatus::UNSUPPORTED_VERSION, "version".into()));
    }
    if b.tsih() != 0 {
        // MaxConnections=1: no connection may join an existing session.
        let why = "a connection to join an existing session".into();
        return Some((LoginStatus::SESSION_DOES_NOT_EXIST, why));
    }
    if csg == 2 || csg < current || (transit && (nsg == 2 || nsg <= csg)) || (transit && cont) {
        let why = format!("stage transition CSG {csg} NSG {nsg}");
        return Some((LoginStatus::INITIATOR_ERROR, why));
    }
    if csg == stage::OPERATIONAL && !neg.may_leave_security() {
        let why = "operational stage before authentication".into();
        return Some((LoginStatus::AUTHENTICATION_FAILURE, why));
    }
    None
}

/// Reads the next Login Request PDU before `deadline`; Err says why the login ends (time
/// out, the connection closed, a PDU that does not decode).
fn read_login_pdu(
    reader: &mut BufReader<TcpStream>,
    deadline: Instant,
    shared: &Shared,
    first: bool,
) -> Result<Pdu, String> {
    let mut timed = Deadline {
        reader,
        at: deadline,
    };
    match read_pdu(&mut timed, Digests::default(), LOGIN_PDU_DATA) {
        Ok(p) => Ok(p),
        Err(ReadError::Io(e)) if is_timeout(&e) => Err(format!(
            "not logged in within {} s",
            shared.config.login_timeout.as_secs()
        )),
        Err(ReadError::Io(e)) if first && e.kind() == io::ErrorKind::UnexpectedEof => {
            Err(SILENT.into())
        }
        Err(ReadError::Io(e)) => Err(format!("connection lost: {e}")),
        Err(ReadError::Pdu(e)) => Err(format!("bad login PDU: {e}")),
    }
}

/// An opened session, its connection id and its TSIH.
type Opened = (Arc<Session>, u32, u16);

/// The session a login entering full feature phase opens: a new TSIH (never 0) and
/// connection id, and (but for discovery) its place in the session table. Err: the
/// initiator already has `max_sessions_per_initiator` sessions (nothing registered).
fn open_session(
    shared: &Shared,
    w: &Writer,
    params: &Params,
    isid: [u8; 6],
) -> io::Result<Result<Opened, String>> {
    let tsih = match shared.next_tsih.fetch_add(1, Ordering::AcqRel) {
        0 => shared.next_tsih.fetch_add(1, Ordering::AcqRel),
        t => t,
    };
    let tsih = tsih.max(1);
    let session = Arc::new(Session {
        initiator: params.initiator_name.clone(),
        isid,
        nexus: Session::nexus(&params.initiator_name, isid, tsih),
        stream: w.stream.try_clone()?,
        tasks: Mutex::new(HashMap::new()),
        task_done: Condvar::new(),
        buffered: AtomicUsize::new(0),
    });
    let conn_id = shared.next_conn.fetch_add(1, Ordering::AcqRel);
    // Counted and registered under one lock, before the initiator hears it is in:
    // two logins racing cannot both take the last session.
    if !params.discovery {
        let mut sessions = shared.sessions();
        let others = sessions
            .values()
            .filter(|s| s.initiator.eq_ignore_ascii_case(&params.initiator_name) && s.isid != isid)
            .count();
        if others >= shared.config.max_sessions_per_initiator {
            drop(sessions);
            return Ok(Err(format!(
                "{others} sessions already: max_sessions_per_initiator = {}",
                shared.config.max_sessions_per_initiator
            )));
        }
        sessions.insert(conn_id, session.clone());
    }
    Ok(Ok((session, conn_id, tsih)))
}

/// A read that ran out of time (SO_RCVTIMEO: EAGAIN or ETIMEDOUT).
pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::iscsi::auth::{Chap, Credentials, Initiators};

    fn request(flags: u8) -> Bhs {
        let mut b = Bhs::new(Opcode::LOGIN_REQUEST);
        b.set_flags(flags);
        b
    }

    fn anyone() -> Negotiation {
        Negotiation::new("iqn.t", Arc::new(Initiators::anonymous()))
    }

    fn status(b: &Bhs, current: u8, neg: &Negotiation) -> Option<LoginStatus> {
        refusal(b, current, neg).map(|(status, _)| status)
    }

    /// RFC 7143 6.3 and 11.12: the stage transitions a Login Request may ask for, from the
    /// stage the login is in. T=1 with NSG not after CSG, NSG 2 (reserved), CSG 2, a step
    /// back, T and C together: initiator error.
    #[test]
    fn stage_transitions_rfc_7143_allows_and_no_other() {
        let n = anyone();
        let (sec, op) = (stage::SECURITY, stage::OPERATIONAL);
        let flags = |t: bool, c: bool, csg: u8, nsg: u8| {
            u8::from(t) << 7 | u8::from(c) << 6 | csg << 2 | nsg
        };
        // Allowed: stay (T=0) in either stage, security -> operational or full feature,
        // operational -> full feature, continue (C=1, T=0).
        for (f, current) in [
            (flags(false, false, sec, 0), sec),
            (flags(true, false, sec, op), sec),
            (flags(true, false, sec, 3), sec),
            (flags(false, false, op, 0), sec),
            (flags(true, false, op, 3), op),
            (flags(false, true, sec, 0), sec),
            // NSG is ignored without T.
            (flags(false, false, sec, 2), sec),
        ] {
            assert_eq!(status(&request(f), current, &n), None, "flags {f:02x}");
        }
        for (f, current) in [
            (flags(true, false, sec, sec), sec),
            (flags(true, false, op, op), op),
            (flags(true, false, op, sec), op),
            (flags(true, false, sec, 2), sec),
            (flags(false, false, 2, 0), sec),
            (flags(true, false, 2, 3), sec),
            (flags(false, false, sec, 0), op),
            (flags(true, true, sec, op), sec),
        ] {
            assert_eq!(
                status(&request(f), current, &n),
                Some(LoginStatus::INITIATOR_ERROR),
                "flags {f:02x} in stage {current}"
            );
        }
    }

    #[test]
    fn version_and_tsih_are_refused_before_the_keys() {
        let n = anyone();
        let mut b = request(0x81);
        b.set_byte(3, 1);
        assert_eq!(status(&b, 0, &n), Some(LoginStatus::UNSUPPORTED_VERSION));
        let mut b = request(0x81);
        b.set_tsih(5);
        assert_eq!(status(&b, 0, &n), Some(LoginStatus::SESSION_DOES_NOT_EXIST));
    }

    /// An initiator the table requires to authenticate may not enter the operational
    /// stage before it has.
    #[test]
    fn the_operational_stage_waits_for_authentication() {
        let c = Credentials {
            chap: Chap {
                user: "u".into(),
                secret: b"secretsecret".to_vec(),
            },
            mutual: None,
        };
        let table = Initiators::listed([("iqn.i".to_string(), c)]).unwrap();
        let mut n = Negotiation::new("iqn.t", Arc::new(table));
        let keys =
            TextKeys::decode(b"InitiatorName=iqn.i\0TargetName=iqn.t\0AuthMethod=CHAP").unwrap();
        n.login_keys(stage::SECURITY, &keys).unwrap();
        assert_eq!(
            status(&request(0x04), stage::SECURITY, &n),
            Some(LoginStatus::AUTHENTICATION_FAILURE)
        );
        assert_eq!(status(&request(0x00), stage::SECURITY, &n), None);
        assert_eq!(status(&request(0x04), stage::SECURITY, &anyone()), None);
    }
}
