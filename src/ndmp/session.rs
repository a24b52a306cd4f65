//! One NDMP connection: the CONNECT handshake and authentication, then every request routed
//! to its interface. Requests are answered in order on this thread; the MOVER and DATA
//! threads post their notifications on the same connection.

use std::net::TcpStream;
use std::sync::Arc;

use super::auth;
use super::config_service as config;
use super::conn::{read_record, Conn};
use super::header::{Header, MessageType, HEADER_LEN};
use super::message::{code, AuthData, Error, ExecuteCdb, Request, AUTH_MD5, AUTH_TEXT};
use super::reply::Next;
use super::reply::{self, CdbReply};
use super::services::Services;
use super::tape::TapeDrive;
use super::xdr::{Put, Reader};
use crate::command::Nexus;
use crate::device::inventory::DeviceKind;
use crate::ndmp::lu::Lu;
use crate::ndmp::message::{MtioOp, TapeMode};

/// NOTIFY_CONNECTION_STATUS reasons.
const CONNECTED: u32 = 0;
const SHUTDOWN: u32 = 1;

fn ok(body: Vec<u8>) -> Next {
    Next::Reply(Error::NO_ERR, body)
}

fn err(e: Error) -> Next {
    ok(reply::error_only(e))
}

pub struct Session {
    pub(super) services: Arc<Services>,
    pub(super) conn: Arc<Conn>,
    pub(super) nexus: Nexus,
    opened: bool,
    authenticated: bool,
    challenge: Option<[u8; auth::CHALLENGE_LEN]>,
    pub(super) tape: Arc<std::sync::Mutex<Option<TapeDrive>>>,
    scsi: Option<Lu>,
    pub(super) agents: super::agents::Agents,
}

impl Session {
    pub fn new(services: Arc<Services>, stream: &TcpStream) -> std::io::Result<Self> {
        let id = services
            .sessions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let conn = Arc::new(Conn::new(stream.try_clone()?));
        let nexus = Nexus {
            initiator: services.config.initiator.clone(),
            session: id,
        };
        let tape = Arc::default();
        let local_ip = stream.local_addr()?.ip();
        Ok(Self {
            agents: super::agents::Agents::new(
                services.clone(),
                conn.clone(),
                Arc::clone(&tape),
                local_ip,
                nexus.clone(),
            ),
            services,
            conn,
            nexus,
            opened: false,
            authenticated: false,
            challenge: None,
            tape,
            scsi: None,
        })
    }

    /// Serves the connection until the peer closes it, sends CONNECT_CLOSE, or breaks the
    /// protocol (a record over the size limit or an undecodable header closes it).
    pub fn run(mut self, mut stream: TcpStream) {
        let peer = stream.peer_addr().ok();
        let hello = reply::connection_status(CONNECTED, 4, "");
        if self
            .conn
            .post(code::NOTIFY_CONNECTION_STATUS, &hello)
            .is_err()
        {
            return;
        }
        loop {
            let record = match read_record(&mut stream) {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(?peer, error = %e, "ndmp: connection closed: bad record");
                    break;
                }
            };
            let mut r = Reader::new(&record);
            let header = match Header::decode(&mut r) {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(?peer, error = %e, "ndmp: connection closed: bad header");
                    break;
                }
            };
            if header.message_type == MessageType::Reply {
                continue;
            }
            let body = record.get(HEADER_LEN..).unwrap_or_default();
            let next = match Request::decode(header.message, body) {
                Ok(Some(request)) => self.handle(request),
                Ok(None) => {
                    tracing::info!(
                        message = format_args!("{:#x}", header.message),
                        "ndmp: message not supported"
                    );
                    Next::Reply(Error::NOT_SUPPORTED, Vec::new())
                }
                Err(e) => {
                    tracing::warn!(?peer, message = format_args!("{:#x}", header.message), error = %e, "ndmp: request refused: XDR decode error");
                    Next::Reply(Error::XDR_DECODE, Vec::new())
                }
            };
            match next {
                Next::Reply(e, body) => {
                    if self.conn.reply(&header, e, &body).is_err() {
                        break;
                    }
                }
                Next::Close => {
                    let bye = reply::connection_status(SHUTDOWN, 4, "closed by client");
                    let _ = self.conn.post(code::NOTIFY_CONNECTION_STATUS, &bye);
                    break;
                }
            }
        }
        self.agents.shutdown();
        self.conn.shutdown();
    }

    fn handle(&mut self, request: Request) -> Next {
        match request {
            Request::ConnectOpen { version } => return self.connect_open(version),
            Request::ConnectClose => return Next::Close,
            _ if !self.opened => {
                tracing::info!("ndmp: request before CONNECT_OPEN refused");
                return Next::Reply(Error::ILLEGAL_STATE, Vec::new());
            }
            Request::ConnectClientAuth(a) => return self.client_auth(a),
            Request::ConnectServerAuth {
                auth_type,
                challenge,
            } => return self.server_auth(auth_type, &challenge),
            Request::ConfigGetAuthAttr { auth_type } => return self.auth_attr(auth_type),
            Request::ConfigGetServerInfo => return ok(config::server_info(&self.services)),
            Request::ConfigGetHostInfo => return ok(config::host_info()),
            Request::ConfigGetConnectionType => return ok(config::connection_types()),
            _ if !self.authenticated => {
                tracing::info!("ndmp: request before authentication refused");
                return Next::Reply(Error::NOT_AUTHORIZED, Vec::new());
            }
            _ => {}
        }
        match request {
            Request::ConfigGetButypeInfo => ok(config::butype_info()),
            Request::ConfigGetFsInfo => ok(config::fs_info(&self.services)),
            Request::ConfigGetTapeInfo => ok(config::tape_info(&self.services)),
            Request::ConfigGetScsiInfo => ok(config::scsi_info(&self.services)),
            Request::ConfigGetExtList => ok(config::ext_list()),
            Request::ConfigSetExtList { classes } => err(if classes.is_empty() {
                Error::NO_ERR
            } else {
                Error::CLASS_NOT_SUPPORTED
            }),
            Request::ScsiOpen { device } => self.scsi_open(&device),
            Request::ScsiClose => err(match self.scsi.take() {
                Some(_) => Error::NO_ERR,
                None => Error::DEV_NOT_OPEN,
            }),
            Request::ScsiGetState => match &self.scsi {
                Some(_) => {
                    let mut b = reply::error_only(Error::NO_ERR);
                    (0..3).for_each(|_| b.put_i32(0));
                    ok(b)
                }
                None => {
                    let mut b = reply::error_only(Error::DEV_NOT_OPEN);
                    (0..3).for_each(|_| b.put_i32(-1));
                    ok(b)
                }
            },
            Request::ScsiResetDevice => match &self.scsi {
                Some(lu) => {
                    lu.dispatcher.lun_reset(0);
                    err(Error::NO_ERR)
                }
                None => err(Error::DEV_NOT_OPEN),
            },
            Request::ScsiExecuteCdb(e) => ok(match &self.scsi {
                Some(lu) => execute_cdb(lu, &e),
                None => cdb_error(Error::DEV_NOT_OPEN),
            }),
            Request::TapeOpen { device, mode } => self.tape_open(&device, mode),
            Request::TapeClose => self.tape_close(),
            Request::TapeGetState => self.tape_get_state(),
            Request::TapeMtio { op, count } => self.tape_mtio(op, count),
            Request::TapeWrite { data } => self.with_tape(
                |t| {
                    let w = t.write(&data);
                    reply::error_count(w.error, w.count as u32)
                },
                |e| reply::error_count(e, 0),
            ),
            Request::TapeRead { count } => self.with_tape(
                |t| {
                    let (e, data) = t.read(count);
                    reply::tape_read(e, &data)
                },
                |e| reply::tape_read(e, &[]),
            ),
            Request::TapeExecuteCdb(e) => self.with_tape(|t| execute_cdb(&t.lu, &e), cdb_error),
            other => self.agents.handle(other),
        }
    }

    fn connect_open(&mut self, version: u16) -> Next {
        if version != 4 {
            tracing::info!(
                version,
                "ndmp: CONNECT_OPEN refused: only NDMP v4 is served"
            );
            return err(Error::ILLEGAL_ARGS);
        }
        if self.opened {
            return err(Error::ILLEGAL_STATE);
        }
        self.opened = true;
        err(Error::NO_ERR)
    }

    fn auth_attr(&mut self, auth_type: u32) -> Next {
        let mut b = Vec::new();
        match auth_type {
            AUTH_MD5 => {
                let mut c = [0u8; auth::CHALLENGE_LEN];
                if getrandom::fill(&mut c).is_err() {
                    return err(Error::UNDEFINED);
                }
                self.challenge = Some(c);
                b.put_u32(Error::NO_ERR.0);
                b.put_u32(AUTH_MD5);
                b.put_fixed(&c);
            }
            AUTH_TEXT if self.services.config.allow_text_auth => {
                b.put_u32(Error::NO_ERR.0);
                b.put_u32(AUTH_TEXT);
            }
            _ => {
                b.put_u32(Error::ILLEGAL_ARGS.0);
                b.put_u32(auth_type.min(2));
                if auth_type == AUTH_MD5 {
                    b.put_fixed(&[0; 64]);
                }
            }
        }
        ok(b)
    }

    fn client_auth(&mut self, a: AuthData) -> Next {
        let c = &self.services.config;
        let (user, passed, why) = match &a {
            AuthData::Md5 { id, digest } => match &self.challenge {
                Some(ch) => (
                    id.as_str(),
                    *id == c.user && auth::same(digest, &auth::digest(ch, &c.password)),
                    "bad user or digest",
                ),
                None => (
                    id.as_str(),
                    false,
                    "MD5 without a challenge (CONFIG_GET_AUTH_ATTR first)",
                ),
            },
            AuthData::Text { id, password } if c.allow_text_auth => (
                id.as_str(),
                *id == c.user && password.as_bytes() == c.password.as_bytes(),
                "bad user or password",
            ),
            AuthData::Text { id, .. } => (
                id.as_str(),
                false,
                "text authentication is not enabled (allow_text_auth)",
            ),
            AuthData::None => ("", false, "authentication NONE is not accepted"),
        };
        // One challenge, one attempt.
        self.challenge = None;
        if passed {
            tracing::info!(user, initiator = %self.nexus.initiator, "ndmp: client authenticated");
            self.authenticated = true;
            err(Error::NO_ERR)
        } else {
            tracing::warn!(user, reason = why, "ndmp: client authentication refused");
            err(Error::NOT_AUTHORIZED)
        }
    }

    /// The server proves it knows the password: the MD5 digest of the client's challenge.
    fn server_auth(&self, auth_type: u32, challenge: &[u8]) -> Next {
        let mut b = Vec::new();
        match <&[u8; 64]>::try_from(challenge) {
            Ok(ch) if auth_type == AUTH_MD5 => {
                b.put_u32(Error::NO_ERR.0);
                b.put_u32(AUTH_MD5);
                b.put_string(&self.services.config.user);
                b.put_fixed(&auth::digest(ch, &self.services.config.password));
            }
            _ => {
                b.put_u32(Error::ILLEGAL_ARGS.0);
                b.put_u32(0);
            }
        }
        ok(b)
    }

    fn scsi_open(&mut self, device: &str) -> Next {
        if self.scsi.is_some() {
            return err(Error::DEVICE_OPENED);
        }
        match self
            .services
            .open(device, &[DeviceKind::Changer, DeviceKind::Sg], &self.nexus)
        {
            Ok(lu) => {
                clear_unit_attention(&lu);
                self.scsi = Some(lu);
                err(Error::NO_ERR)
            }
            Err(e) => err(e),
        }
    }

    fn tape_open(&mut self, device: &str, mode: u32) -> Next {
        let mut slot = self
            .tape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_some() {
            return err(Error::DEVICE_OPENED);
        }
        let Some(mode) = TapeMode::from_wire(mode) else {
            return err(Error::ILLEGAL_ARGS);
        };
        let lu = match self
            .services
            .open(device, &[DeviceKind::Tape, DeviceKind::Sg], &self.nexus)
        {
            Ok(lu) => lu,
            Err(e) => return err(e),
        };
        if !clear_unit_attention(&lu) {
            return err(Error::NO_TAPE_LOADED);
        }
        let drive = TapeDrive::new(lu, mode != TapeMode::Read);
        if mode != TapeMode::Read && drive.state().flags & reply::TAPE_STATE_WR_PROT != 0 {
            return err(Error::WRITE_PROTECT);
        }
        *slot = Some(drive);
        err(Error::NO_ERR)
    }

    fn tape_close(&mut self) -> Next {
        if self.agents.mover_busy() {
            return err(Error::ILLEGAL_STATE);
        }
        let mut slot = self
            .tape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        err(match slot.take() {
            Some(_) => Error::NO_ERR,
            None => Error::DEV_NOT_OPEN,
        })
    }

    /// Answered while the mover runs too (a DMA watches the tape's position during a
    /// backup; ndmjob's monitor gives up on the operation if this fails): it waits for the
    /// record the mover is writing, and moves nothing.
    fn tape_get_state(&mut self) -> Next {
        let mut slot = self
            .tape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ok(match slot.as_mut() {
            Some(t) => t.state().encode(),
            None => reply::TapeState {
                error: Error::DEV_NOT_OPEN.0,
                ..Default::default()
            }
            .encode(),
        })
    }

    fn tape_mtio(&mut self, op: MtioOp, count: u32) -> Next {
        self.with_tape(
            |t| {
                let (e, resid) = t.mtio(op, count);
                reply::error_count(e, resid)
            },
            |e| reply::error_count(e, 0),
        )
    }

    /// Runs `f` on the open tape, or answers `refused(error)`: DEV_NOT_OPEN with no tape
    /// open, ILLEGAL_STATE while the MOVER owns it.
    fn with_tape(
        &mut self,
        f: impl FnOnce(&mut TapeDrive) -> Vec<u8>,
        refused: impl FnOnce(Error) -> Vec<u8>,
    ) -> Next {
        if self.agents.mover_busy() {
            return ok(refused(Error::ILLEGAL_STATE));
        }
        let mut slot = self
            .tape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ok(match slot.as_mut() {
            Some(t) => f(t),
            None => refused(Error::DEV_NOT_OPEN),
        })
    }
}

/// Sends TEST UNIT READY until it stops reporting a unit attention (the new nexus's POWER
/// ON, a medium change); `false` if the device then reports NOT READY (no medium).
fn clear_unit_attention(lu: &Lu) -> bool {
    for _ in 0..4 {
        let d = lu.exec(&[0, 0, 0, 0, 0, 0], &[], 0);
        match &d.sense {
            _ if d.good() => return true,
            Some(s) if s.key == crate::scsi::SenseKey::UNIT_ATTENTION => continue,
            Some(s) if s.key == crate::scsi::SenseKey::NOT_READY => return false,
            _ => return true,
        }
    }
    true
}

fn cdb_error(e: Error) -> Vec<u8> {
    CdbReply {
        error: e.0,
        ..Default::default()
    }
    .encode()
}

/// SCSI_EXECUTE_CDB and TAPE_EXECUTE_CDB: the CDB through the device's dispatcher.
fn execute_cdb(lu: &Lu, e: &ExecuteCdb) -> Vec<u8> {
    use super::message::{SCSI_DATA_IN, SCSI_DATA_OUT};
    let data_in = e.flags & SCSI_DATA_IN != 0;
    let data_out = e.flags & SCSI_DATA_OUT != 0;
    if e.cdb.is_empty() || (data_in && data_out) {
        return cdb_error(Error::ILLEGAL_ARGS);
    }
    let out: &[u8] = if data_out { &e.dataout } else { &[] };
    let d = lu.exec(&e.cdb, out, if data_in { e.datain_len as usize } else { 0 });
    CdbReply {
        error: Error::NO_ERR.0,
        status: d.result.status.0,
        dataout_len: out.len().saturating_sub(d.result.residual) as u32,
        datain: d.result.data_in,
        ext_sense: d.result.sense,
    }
    .encode()
}
