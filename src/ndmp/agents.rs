//! The MOVER and DATA interfaces of one session, and how their data connection is made:
//! LISTEN on one side and CONNECT on the other, over TCP (three-way, or with another
//! server's agent) or ADDR_LOCAL when both are this session's (an in-process pipe).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use super::conn::Conn;
use super::data::{self, Data, Disk};
use super::message::{Addr, Error, MoverMode, Pval, Request, TcpAddr, ADDR_LOCAL, ADDR_TCP};
use super::mover::{self, Command, Mover};
use super::reply::{self, Next};
use super::services::Services;
use super::stream::{local_pair, Stream};
use super::tape::TapeDrive;
use crate::device::inventory::DeviceKind;

pub struct Agents {
    services: Arc<Services>,
    conn: Arc<Conn>,
    tape: Arc<Mutex<Option<TapeDrive>>>,
    /// The address the DMA reached this server at: where TCP listeners bind.
    local_ip: IpAddr,
    mover: Arc<Mover>,
    data: Arc<Data>,
    nexus: crate::command::Nexus,
}

fn err(e: Error) -> Next {
    Next::Reply(Error::NO_ERR, reply::error_only(e))
}

fn tcp_addr(a: SocketAddr) -> Addr {
    let ip = match a.ip() {
        IpAddr::V4(v4) => u32::from(v4),
        IpAddr::V6(_) => 0,
    };
    Addr::Tcp(vec![TcpAddr {
        ip,
        port: a.port(),
        env: Vec::new(),
    }])
}

/// Connects to the first reachable address of `addrs`.
fn connect(addrs: &[TcpAddr]) -> Result<TcpStream, Error> {
    for a in addrs {
        let to = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a.ip)), a.port);
        match TcpStream::connect(to) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => tracing::info!(%to, error = %e, "ndmp: data connection refused"),
        }
    }
    Err(Error::CONNECT)
}

impl Agents {
    pub fn new(
        services: Arc<Services>,
        conn: Arc<Conn>,
        tape: Arc<Mutex<Option<TapeDrive>>>,
        local_ip: IpAddr,
        nexus: crate::command::Nexus,
    ) -> Self {
        Self {
            services,
            conn,
            tape,
            local_ip,
            mover: Arc::default(),
            data: Arc::default(),
            nexus,
        }
    }

    /// The mover is moving data: the tape belongs to it.
    pub fn mover_busy(&self) -> bool {
        self.mover.lock().state == mover::ACTIVE
    }

    /// The session ends: abort whatever runs.
    pub fn shutdown(&mut self) {
        self.mover.halt(&self.conn, mover::HALT_ABORTED);
        self.data.halt(&self.conn, data::HALT_ABORTED);
    }

    pub fn handle(&mut self, request: Request) -> Next {
        match request {
            Request::MoverGetState => Next::Reply(Error::NO_ERR, self.mover.state_reply()),
            Request::MoverSetRecordSize { len } => self.set_record_size(len),
            Request::MoverSetWindow { offset, length } => self.set_window(offset, length),
            Request::MoverListen { mode, addr_type } => self.mover_listen(mode, addr_type),
            Request::MoverConnect { mode, addr } => self.mover_connect(mode, addr),
            Request::MoverContinue => self.mover_command(Command::Continue),
            Request::MoverAbort => self.mover_abort(),
            Request::MoverStop => self.mover_stop(),
            Request::MoverClose => self.mover_close(),
            Request::MoverRead { offset, length } => self.mover_read(offset, length),
            Request::DataGetState => Next::Reply(Error::NO_ERR, self.data.state_reply()),
            Request::DataListen { addr_type } => self.data_listen(addr_type),
            Request::DataConnect { addr } => self.data_connect(addr),
            Request::DataStartBackup { butype, env } => {
                self.data_start(&butype, env, data::OP_BACKUP)
            }
            Request::DataStartRecover { env, butype, .. } => {
                self.data_start(&butype, env, data::OP_RECOVER)
            }
            Request::DataAbort => self.data_abort(),
            Request::DataStop => self.data_stop(),
            Request::DataGetEnv => {
                let d = self.data.lock();
                // The environment of the last operation stays readable after DATA_STOP.
                let e = if !d.env.is_empty() {
                    Error::NO_ERR
                } else {
                    Error::ILLEGAL_STATE
                };
                Next::Reply(Error::NO_ERR, reply::env_reply(e, &d.env))
            }
            _ => Next::Reply(Error::NOT_SUPPORTED, Vec::new()),
        }
    }

    fn set_record_size(&self, len: u32) -> Next {
        let mut m = self.mover.lock();
        if m.state != mover::IDLE {
            return err(Error::ILLEGAL_STATE);
        }
        if len == 0 || len > mover::MAX_RECORD_SIZE || !len.is_multiple_of(512) {
            return err(Error::ILLEGAL_ARGS);
        }
        m.record_size = len;
        err(Error::NO_ERR)
    }

    fn set_window(&self, offset: u64, length: u64) -> Next {
        let mut m = self.mover.lock();
        if m.state != mover::IDLE && m.state != mover::PAUSED {
            return err(Error::ILLEGAL_STATE);
        }
        if !offset.is_multiple_of(u64::from(m.record_size)) {
            return err(Error::ILLEGAL_ARGS);
        }
        m.window_offset = offset;
        m.window_length = length;
        m.window_record = 0;
        err(Error::NO_ERR)
    }

    /// The checks MOVER_LISTEN and MOVER_CONNECT share: arguments, state, the tape.
    fn mover_ready(&self, mode: u32) -> Result<MoverMode, Error> {
        let mode = match MoverMode::from_wire(mode) {
            Some(m @ (MoverMode::Read | MoverMode::Write)) => m,
            _ => return Err(Error::ILLEGAL_ARGS),
        };
        if self.mover.lock().state != mover::IDLE {
            return Err(Error::ILLEGAL_STATE);
        }
        let slot = self
            .tape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match slot.as_ref() {
            None => Err(Error::DEV_NOT_OPEN),
            Some(t) if mode == MoverMode::Read && !t.writable => Err(Error::PERMISSION),
            Some(_) => Ok(mode),
        }
    }

    fn mover_listen(&mut self, mode: u32, addr_type: u32) -> Next {
        if addr_type != ADDR_LOCAL && addr_type != ADDR_TCP {
            return Next::Reply(
                Error::NO_ERR,
                reply::listen(Error::ILLEGAL_ARGS, &Addr::Local),
            );
        }
        let mode = match self.mover_ready(mode) {
            Ok(m) => m,
            Err(e) => return Next::Reply(Error::NO_ERR, reply::listen(e, &Addr::Local)),
        };
        let addr = if addr_type == ADDR_LOCAL {
            Addr::Local
        } else {
            match self.listen_tcp(true) {
                Ok(a) => a,
                Err(e) => return Next::Reply(Error::NO_ERR, reply::listen(e, &Addr::Local)),
            }
        };
        let mut m = self.mover.lock();
        m.mode = mode;
        m.state = mover::LISTEN;
        m.halt_reason = mover::HALT_NA;
        m.addr = addr.clone();
        Next::Reply(Error::NO_ERR, reply::listen(Error::NO_ERR, &addr))
    }

    /// Binds a listener for the mover (or the data side) and accepts one connection on
    /// its own thread.
    fn listen_tcp(&self, for_mover: bool) -> Result<Addr, Error> {
        let listener = TcpListener::bind((self.local_ip, 0)).map_err(|_| Error::CONNECT)?;
        let at = listener.local_addr().map_err(|_| Error::CONNECT)?;
        let (mover, data, conn, tape) = (
            self.mover.clone(),
            self.data.clone(),
            self.conn.clone(),
            self.tape.clone(),
        );
        if for_mover {
            mover.lock().listener = Some(at);
        } else {
            data.lock().listener = Some(at);
        }
        std::thread::Builder::new()
            .name("ndmp-accept".into())
            .spawn(move || {
                let Ok((stream, peer)) = listener.accept() else {
                    return;
                };
                let _ = stream.set_nodelay(true);
                if for_mover {
                    if mover.run_accepted(conn, tape, Stream::Tcp(stream), at) {
                        tracing::info!(%peer, "ndmp: mover connected");
                    }
                } else {
                    let mut d = data.lock();
                    // Only the listener DATA still listens on (not one a halt has closed).
                    if d.state != data::LISTEN || d.listener != Some(at) {
                        return;
                    }
                    tracing::info!(%peer, "ndmp: data connected");
                    d.listener = None;
                    d.state = data::CONNECTED;
                    d.stream = Some(Stream::Tcp(stream));
                    drop(d);
                    data.notify();
                }
            })
            .map_err(|_| Error::NO_MEM)?;
        Ok(tcp_addr(at))
    }

    fn mover_connect(&mut self, mode: u32, addr: Addr) -> Next {
        let mode = match self.mover_ready(mode) {
            Ok(m) => m,
            Err(e) => return err(e),
        };
        let stream = match &addr {
            Addr::Local => {
                let mut d = self.data.lock();
                if d.state != data::LISTEN || d.addr != Some(Addr::Local) {
                    return err(Error::ILLEGAL_STATE);
                }
                let (ours, theirs, _) = local_pair();
                d.state = data::CONNECTED;
                d.stream = Some(theirs);
                drop(d);
                let mut m = self.mover.lock();
                m.mode = mode;
                m.addr = addr;
                m.halt_reason = mover::HALT_NA;
                drop(m);
                self.mover.hold(ours);
                return err(Error::NO_ERR);
            }
            Addr::Tcp(addrs) => match connect(addrs) {
                Ok(s) => Stream::Tcp(s),
                Err(e) => return err(e),
            },
        };
        {
            let mut m = self.mover.lock();
            m.mode = mode;
            m.addr = addr;
            m.halt_reason = mover::HALT_NA;
        }
        self.mover
            .clone()
            .run(self.conn.clone(), self.tape.clone(), stream);
        err(Error::NO_ERR)
    }

    fn mover_command(&self, command: Command) -> Next {
        let mut m = self.mover.lock();
        if m.state != mover::PAUSED {
            return err(Error::ILLEGAL_STATE);
        }
        m.command = Some(command);
        drop(m);
        self.mover.notify();
        err(Error::NO_ERR)
    }

    fn mover_abort(&self) -> Next {
        let state = self.mover.lock().state;
        if !matches!(state, mover::LISTEN | mover::ACTIVE | mover::PAUSED) {
            return err(Error::ILLEGAL_STATE);
        }
        self.mover.halt(&self.conn, mover::HALT_ABORTED);
        // A local image backup has no connection to break: its DATA stops with the mover.
        if self.data.lock().engine_abort.is_some() {
            self.data.halt(&self.conn, data::HALT_CONNECT_ERROR);
        }
        err(Error::NO_ERR)
    }

    /// HALTED to IDLE, keeping record size and window.
    fn mover_stop(&self) -> Next {
        let mut m = self.mover.lock();
        if m.state != mover::HALTED {
            return err(Error::ILLEGAL_STATE);
        }
        let (record_size, wo, wl) = (m.record_size, m.window_offset, m.window_length);
        *m = mover::Inner {
            record_size,
            window_offset: wo,
            window_length: wl,
            ..Default::default()
        };
        err(Error::NO_ERR)
    }

    /// MOVER_CLOSE: a paused mover halts as if the connection closed.
    fn mover_close(&self) -> Next {
        if self.mover.lock().state != mover::PAUSED {
            return err(Error::ILLEGAL_STATE);
        }
        self.mover.halt(&self.conn, mover::HALT_CONNECT_CLOSED);
        err(Error::NO_ERR)
    }

    fn mover_read(&self, offset: u64, length: u64) -> Next {
        let mut m = self.mover.lock();
        // LISTEN too: the DMA may ask before this side has accepted the TCP connection
        // its DATA_CONNECT made (the mover picks the request up when it starts).
        if !matches!(m.state, mover::ACTIVE | mover::LISTEN) || m.mode != MoverMode::Write {
            return err(Error::ILLEGAL_STATE);
        }
        if m.bytes_left_to_read > 0 {
            return err(Error::READ_IN_PROGRESS);
        }
        if length == 0 {
            return err(Error::ILLEGAL_ARGS);
        }
        m.seek_position = offset;
        m.bytes_left_to_read = length;
        drop(m);
        self.mover.notify();
        err(Error::NO_ERR)
    }

    fn data_listen(&mut self, addr_type: u32) -> Next {
        if addr_type != ADDR_LOCAL && addr_type != ADDR_TCP {
            return Next::Reply(
                Error::NO_ERR,
                reply::listen(Error::ILLEGAL_ARGS, &Addr::Local),
            );
        }
        if self.data.lock().state != data::IDLE {
            return Next::Reply(
                Error::NO_ERR,
                reply::listen(Error::ILLEGAL_STATE, &Addr::Local),
            );
        }
        let addr = if addr_type == ADDR_LOCAL {
            Addr::Local
        } else {
            match self.listen_tcp(false) {
                Ok(a) => a,
                Err(e) => return Next::Reply(Error::NO_ERR, reply::listen(e, &Addr::Local)),
            }
        };
        let mut d = self.data.lock();
        d.state = data::LISTEN;
        d.halt_reason = data::HALT_NA;
        d.addr = Some(addr.clone());
        Next::Reply(Error::NO_ERR, reply::listen(Error::NO_ERR, &addr))
    }

    fn data_connect(&mut self, addr: Addr) -> Next {
        if self.data.lock().state != data::IDLE {
            return err(Error::ILLEGAL_STATE);
        }
        let stream = match &addr {
            Addr::Local => {
                let listening = {
                    let m = self.mover.lock();
                    m.state == mover::LISTEN && m.addr == Addr::Local
                };
                if !listening {
                    return err(Error::ILLEGAL_STATE);
                }
                let (ours, theirs, _) = local_pair();
                self.mover.hold(theirs);
                ours
            }
            Addr::Tcp(addrs) => match connect(addrs) {
                Ok(s) => Stream::Tcp(s),
                Err(e) => return err(e),
            },
        };
        let mut d = self.data.lock();
        d.state = data::CONNECTED;
        d.addr = Some(addr);
        d.stream = Some(stream);
        err(Error::NO_ERR)
    }

    fn data_start(&mut self, butype: &str, env: Vec<Pval>, operation: u32) -> Next {
        if butype != "image" {
            tracing::info!(butype, "ndmp: backup type not supported (only \"image\")");
            return err(Error::ILLEGAL_ARGS);
        }
        // A TCP connection the peer has made may not be accepted yet.
        if !self.data.wait_connected(std::time::Duration::from_secs(5)) {
            return err(Error::ILLEGAL_STATE);
        }
        let Some(name) = env
            .iter()
            .find(|p| p.name == "FILESYSTEM")
            .map(|p| p.value.clone())
        else {
            tracing::info!("ndmp: image without FILESYSTEM in the environment");
            return err(Error::ILLEGAL_ARGS);
        };
        let disk = match self.disk(&name) {
            Ok(d) => d,
            Err(e) => return err(e),
        };
        let digest = match super::digest::Kind::from_env(&env) {
            Ok(kind) => kind,
            Err(e) => {
                tracing::warn!(disk = %disk.name, "ndmp: data: {e}");
                return err(Error::ILLEGAL_ARGS);
            }
        };
        let mut env = env;
        if !env.iter().any(|p| p.name == "TYPE") {
            env.push(Pval::new("TYPE", "image"));
        }
        let (local, record_size) = {
            let m = self.mover.lock();
            (
                m.pending.is_some() && m.mode == MoverMode::Read,
                m.record_size,
            )
        };
        if operation == data::OP_BACKUP && local && super::local::applicable(&disk, record_size) {
            // Disk to tape through the copy engine: the pipe is not needed.
            self.mover.lock().pending = None;

            if !self.data.activate(operation, env) {
                return err(Error::ILLEGAL_STATE);
            }
            let job = super::local::Job {
                services: self.services.clone(),
                conn: self.conn.clone(),
                mover: self.mover.clone(),
                data: self.data.clone(),
                tape: self.tape.clone(),
                digest,
                disk,
                nexus: self.nexus.clone(),
            };
            return err(if job.start() {
                Error::NO_ERR
            } else {
                Error::NO_MEM
            });
        }
        self.mover
            .clone()
            .run_pending(self.conn.clone(), self.tape.clone());
        err(self
            .data
            .start(self.conn.clone(), disk, operation, env, digest))
    }

    /// The inventory disk `name`, if this user may see it.
    fn disk(&self, name: &str) -> Result<Disk, Error> {
        let found = self
            .services
            .visible(&[DeviceKind::Disk])
            .into_iter()
            .find(|(c, _)| c.name == name);
        let Some((_, device)) = found else {
            tracing::info!(disk = name, "ndmp: image: no such disk (or not allowed)");
            return Err(Error::FILE_NOT_FOUND);
        };
        let Some(backend) = device.block_backend() else {
            return Err(Error::NOT_SUPPORTED);
        };
        let lu = self
            .services
            .reach(name, &[DeviceKind::Disk], &self.nexus)?;
        Ok(Disk {
            name: name.to_string(),
            backend,
            lu: Arc::new(lu),
        })
    }

    fn data_abort(&self) -> Next {
        let state = self.data.lock().state;
        if !matches!(state, data::LISTEN | data::CONNECTED | data::ACTIVE) {
            return err(Error::ILLEGAL_STATE);
        }
        self.data.halt(&self.conn, data::HALT_ABORTED);
        err(Error::NO_ERR)
    }

    fn data_stop(&self) -> Next {
        let mut d = self.data.lock();
        if d.state != data::HALTED {
            return err(Error::ILLEGAL_STATE);
        }
        let env = std::mem::take(&mut d.env);
        *d = data::Inner {
            env,
            ..Default::default()
        };
        err(Error::NO_ERR)
    }
}
