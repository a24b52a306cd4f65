//! The MOVER: moves a data connection's byte stream to tape records (mode READ, a backup)
//! or tape records to the connection (mode WRITE, a recover), within a window of the
//! stream, pausing at end of medium, end of window, a filemark, or a seek outside the
//! window (NOTIFY_MOVER_PAUSED), until the DMA continues (after changing cartridges and
//! setting the next window) or aborts. It halts (NOTIFY_MOVER_HALTED) when the connection
//! closes, on abort, or on a media error.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use super::conn::Conn;
use super::message::{code, Addr, Error, MoverMode, MtioOp};
use super::reply::{self, MoverState};
use super::stream::{AbortHandle, Stream};
use super::tape::TapeDrive;
use crate::ndmp::xdr::Put;

pub const IDLE: u32 = 0;
pub const LISTEN: u32 = 1;
pub const ACTIVE: u32 = 2;
pub const PAUSED: u32 = 3;
pub const HALTED: u32 = 4;

pub const PAUSE_NA: u32 = 0;
pub const PAUSE_EOM: u32 = 1;
pub const PAUSE_EOF: u32 = 2;
pub const PAUSE_SEEK: u32 = 3;
pub const PAUSE_EOW: u32 = 5;

pub const HALT_NA: u32 = 0;
pub const HALT_CONNECT_CLOSED: u32 = 1;
pub const HALT_ABORTED: u32 = 2;
pub const HALT_INTERNAL_ERROR: u32 = 3;
pub const HALT_CONNECT_ERROR: u32 = 4;
pub const HALT_MEDIA_ERROR: u32 = 5;

/// The record size until SET_RECORD_SIZE (ndmjob's default: 20 blocks of 512).
pub const DEFAULT_RECORD_SIZE: u32 = 10240;
/// The largest record size accepted.
pub const MAX_RECORD_SIZE: u32 = 1 << 20;

/// What the DMA told a paused or waiting mover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Continue,
    Abort,
}

pub struct Inner {
    pub state: u32,
    pub mode: MoverMode,
    pub pause_reason: u32,
    pub halt_reason: u32,
    pub record_size: u32,
    pub record_num: u32,
    pub bytes_moved: u64,
    pub seek_position: u64,
    pub bytes_left_to_read: u64,
    pub window_offset: u64,
    pub window_length: u64,
    pub addr: Addr,
    pub command: Option<Command>,
    /// Records of the window passed on the current tape (mode WRITE).
    pub window_record: u64,
    /// How to abort the connection (and the listener's address, to wake its accept).
    pub abort: Option<AbortHandle>,
    pub listener: Option<std::net::SocketAddr>,
    /// A local connection made but not yet moving: DATA_START decides how it runs (the
    /// copy engine for an image backup, else this pipe).
    pub pending: Option<Stream>,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            state: IDLE,
            mode: MoverMode::NoAction,
            pause_reason: PAUSE_NA,
            halt_reason: HALT_NA,
            record_size: DEFAULT_RECORD_SIZE,
            record_num: 0,
            bytes_moved: 0,
            seek_position: 0,
            bytes_left_to_read: 0,
            window_offset: 0,
            window_length: u64::MAX,
            addr: Addr::Local,
            command: None,
            window_record: 0,
            abort: None,
            listener: None,
            pending: None,
        }
    }
}

/// The mover of one session, shared with its thread.
#[derive(Default)]
pub struct Mover {
    inner: Mutex<Inner>,
    changed: Condvar,
}

impl Mover {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn notify(&self) {
        self.changed.notify_all();
    }

    fn wait<'a>(&self, g: MutexGuard<'a, Inner>) -> MutexGuard<'a, Inner> {
        self.changed.wait(g).unwrap_or_else(PoisonError::into_inner)
    }

    pub fn state_reply(&self) -> Vec<u8> {
        let m = self.lock();
        MoverState {
            mode: m.mode.wire(),
            state: m.state,
            pause_reason: m.pause_reason,
            halt_reason: m.halt_reason,
            record_size: m.record_size,
            record_num: m.record_num,
            bytes_moved: m.bytes_moved,
            seek_position: m.seek_position,
            bytes_left_to_read: m.bytes_left_to_read,
            window_offset: m.window_offset,
            window_length: m.window_length,
            addr: m.addr.clone(),
        }
        .encode()
    }

    /// Halts (from any state but IDLE) and tells the DMA why.
    pub fn halt(&self, conn: &Conn, reason: u32) {
        {
            let mut m = self.lock();
            if m.state == HALTED || m.state == IDLE {
                return;
            }
            m.state = HALTED;
            m.halt_reason = reason;
            m.pause_reason = PAUSE_NA;
            m.pending = None;
            if let Some(a) = m.abort.take().filter(|_| reason != HALT_CONNECT_CLOSED) {
                a.abort();
            }
            if let Some(addr) = m.listener.take() {
                // Wake the accept loop; it sees the state is no longer LISTEN.
                let _ = std::net::TcpStream::connect(addr);
            }
        }
        self.notify();
        tracing::info!(reason, "ndmp: mover halted");
        let mut b = Vec::new();
        b.put_u32(reason);
        let _ = conn.post(code::NOTIFY_MOVER_HALTED, &b);
    }

    /// Pauses, tells the DMA, and waits for CONTINUE (true) or ABORT/STOP (false).
    pub fn pause_now(&self, conn: &Conn, reason: u32, seek_position: u64) -> bool {
        self.pause(conn, reason, seek_position)
    }

    fn pause(&self, conn: &Conn, reason: u32, seek_position: u64) -> bool {
        {
            let mut m = self.lock();
            if m.state != ACTIVE {
                return false;
            }
            m.state = PAUSED;
            m.pause_reason = reason;
            m.seek_position = seek_position;
            m.command = None;
        }
        tracing::info!(reason, seek_position, "ndmp: mover paused");
        let _ = conn.post(
            code::NOTIFY_MOVER_PAUSED,
            &reply::mover_paused(reason, seek_position),
        );
        let mut m = self.lock();
        loop {
            match m.command.take() {
                Some(Command::Continue) => {
                    m.state = ACTIVE;
                    m.pause_reason = PAUSE_NA;
                    return true;
                }
                Some(Command::Abort) => return false,
                None if m.state != PAUSED => return false,
                None => m = self.wait(m),
            }
        }
    }

    /// Becomes ACTIVE on a local connection that waits for DATA_START.
    pub fn hold(&self, stream: Stream) {
        let mut m = self.lock();
        m.state = ACTIVE;
        m.listener = None;
        m.pending = Some(stream);
    }

    /// Runs the local connection held by [`Mover::hold`], if any.
    pub fn run_pending(self: Arc<Self>, conn: Arc<Conn>, tape: Arc<Mutex<Option<TapeDrive>>>) {
        let pending = self.lock().pending.take();
        if let Some(stream) = pending {
            self.run(conn, tape, stream);
        }
    }

    /// Becomes ACTIVE on `stream` in `mode` and runs until it halts.
    pub fn run(
        self: Arc<Self>,
        conn: Arc<Conn>,
        tape: Arc<Mutex<Option<TapeDrive>>>,
        stream: Stream,
    ) {
        self.start(conn, tape, stream, None);
    }

    /// [`Mover::run`] on a connection the listener at `listener` accepted, if the mover is
    /// still listening on it: an accept that loses the race with MOVER_ABORT (or with the
    /// wake-up connection of a halt, seen after a new MOVER_LISTEN) is dropped.
    pub fn run_accepted(
        self: Arc<Self>,
        conn: Arc<Conn>,
        tape: Arc<Mutex<Option<TapeDrive>>>,
        stream: Stream,
        listener: std::net::SocketAddr,
    ) -> bool {
        self.start(conn, tape, stream, Some(listener))
    }

    fn start(
        self: Arc<Self>,
        conn: Arc<Conn>,
        tape: Arc<Mutex<Option<TapeDrive>>>,
        stream: Stream,
        listener: Option<std::net::SocketAddr>,
    ) -> bool {
        let mode = {
            let mut m = self.lock();
            if listener.is_some() && (m.state != LISTEN || m.listener != listener) {
                return false;
            }
            m.state = ACTIVE;
            m.listener = None;
            m.abort = stream.abort_handle().ok();
            m.mode
        };
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("ndmp-mover".into())
            .spawn(move || {
                let reason = match mode {
                    MoverMode::Read => me.backup(&conn, &tape, stream),
                    _ => me.recover(&conn, &tape, stream),
                };
                me.halt(&conn, reason);
            });
        if spawned.is_err() {
            tracing::warn!("ndmp: no thread for the mover");
        }
        true
    }

    /// Mode READ: the connection's bytes to tape records of `record_size`, the last one
    /// padded with zeros. Returns the halt reason.
    fn backup(&self, conn: &Conn, tape: &Mutex<Option<TapeDrive>>, mut stream: Stream) -> u32 {
        let record_size = self.lock().record_size as usize;
        loop {
            let mut record = vec![0u8; record_size];
            let n = match stream.fill(&mut record) {
                Ok(n) => n,
                Err(_) if self.lock().state != ACTIVE => return HALT_ABORTED,
                Err(e) => {
                    tracing::warn!(error = %e, "ndmp: mover: data connection failed");
                    return HALT_CONNECT_ERROR;
                }
            };
            if n == 0 {
                return HALT_CONNECT_CLOSED;
            }
            if let Some(reason) = self.write_record(conn, tape, &record, n as u64) {
                return reason;
            }
            if n < record_size {
                return HALT_CONNECT_CLOSED;
            }
        }
    }

    /// Writes one record (`n` stream bytes, the rest padding) where the window allows,
    /// pausing at end of window and end of medium. `Some(reason)` if the mover must halt.
    fn write_record(
        &self,
        conn: &Conn,
        tape: &Mutex<Option<TapeDrive>>,
        record: &[u8],
        n: u64,
    ) -> Option<u32> {
        loop {
            let (moved, end) = {
                let m = self.lock();
                (
                    m.bytes_moved,
                    m.window_offset.saturating_add(m.window_length),
                )
            };
            if moved >= end {
                if !self.pause(conn, PAUSE_EOW, moved) {
                    return Some(HALT_ABORTED);
                }
                continue;
            }
            let written = {
                let mut slot = tape.lock().unwrap_or_else(PoisonError::into_inner);
                match slot.as_mut() {
                    Some(t) => t.write(record),
                    None => super::tape::Written {
                        error: Error::DEV_NOT_OPEN,
                        count: 0,
                    },
                }
            };
            if written.count == record.len() {
                let mut m = self.lock();
                m.bytes_moved += n;
                m.record_num += 1;
            }
            match written.error {
                Error::NO_ERR => return None,
                // End of medium: paused; the record is written again on the next cartridge
                // only if it did not reach this one.
                Error::EOM => {
                    let moved = self.lock().bytes_moved;
                    if !self.pause(conn, PAUSE_EOM, moved) {
                        return Some(HALT_ABORTED);
                    }
                    if written.count == record.len() {
                        return None;
                    }
                }
                e => {
                    tracing::warn!(error = e.0, "ndmp: mover: tape write failed");
                    return Some(HALT_MEDIA_ERROR);
                }
            }
        }
    }

    /// Mode WRITE: on each MOVER_READ, tape records to the connection.
    fn recover(&self, conn: &Conn, tape: &Mutex<Option<TapeDrive>>, mut stream: Stream) -> u32 {
        loop {
            let (offset, left, record_size) = {
                let mut m = self.lock();
                while m.state == ACTIVE && m.bytes_left_to_read == 0 {
                    m = self.wait(m);
                }
                if m.state != ACTIVE {
                    return HALT_ABORTED;
                }
                (
                    m.seek_position,
                    m.bytes_left_to_read,
                    u64::from(m.record_size),
                )
            };
            match self.read_range(conn, tape, &mut stream, offset, left, record_size) {
                Ok(()) => {}
                Err(reason) => return reason,
            }
            if self.lock().bytes_left_to_read == 0 {
                // Everything asked for was sent: the data side closes when it has all.
                stream.finish();
                let mut probe = [0u8; 1];
                return match stream.fill(&mut probe) {
                    Ok(_) => HALT_CONNECT_CLOSED,
                    Err(_) if self.lock().state != ACTIVE => HALT_ABORTED,
                    Err(_) => HALT_CONNECT_CLOSED,
                };
            }
        }
    }

    /// Sends stream bytes [offset, offset + left) from the tape.
    fn read_range(
        &self,
        conn: &Conn,
        tape: &Mutex<Option<TapeDrive>>,
        stream: &mut Stream,
        mut offset: u64,
        mut left: u64,
        record_size: u64,
    ) -> Result<(), u32> {
        while left > 0 {
            let (wo, wl, at) = {
                let m = self.lock();
                (m.window_offset, m.window_length, m.window_record)
            };
            if offset < wo || offset - wo >= wl {
                if !self.pause(conn, PAUSE_SEEK, offset) {
                    return Err(HALT_ABORTED);
                }
                continue;
            }
            let record = (offset - wo) / record_size;
            let skip = ((offset - wo) % record_size) as usize;
            let mut slot = tape.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(t) = slot.as_mut() else {
                return Err(HALT_MEDIA_ERROR);
            };
            if record != at {
                let (op, n) = if record > at {
                    (MtioOp::Fsr, record - at)
                } else {
                    (MtioOp::Bsr, at - record)
                };
                let (e, resid) = t.mtio(op, u32::try_from(n).unwrap_or(u32::MAX));
                if e != Error::NO_ERR || resid != 0 {
                    return Err(HALT_MEDIA_ERROR);
                }
                self.lock().window_record = record;
            }
            let (e, data) = t.read(record_size as u32);
            drop(slot);
            match e {
                Error::NO_ERR => {}
                Error::EOF | Error::EOM => {
                    let reason = if e == Error::EOF {
                        PAUSE_EOF
                    } else {
                        PAUSE_EOM
                    };
                    if !self.pause(conn, reason, offset) {
                        return Err(HALT_ABORTED);
                    }
                    self.lock().window_record = 0;
                    continue;
                }
                _ => return Err(HALT_MEDIA_ERROR),
            }
            let useful = data.get(skip..).unwrap_or_default();
            let take = useful
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            if take == 0 {
                return Err(HALT_MEDIA_ERROR);
            }
            let chunk = useful[..take].to_vec();
            if stream.send(chunk).is_err() {
                return Err(if self.lock().state == ACTIVE {
                    HALT_CONNECT_ERROR
                } else {
                    HALT_ABORTED
                });
            }
            offset += take as u64;
            left -= take as u64;
            let mut m = self.lock();
            m.window_record = record + 1;
            m.record_num += 1;
            m.bytes_moved += take as u64;
            m.seek_position = offset;
            m.bytes_left_to_read = left;
        }
        Ok(())
    }
}
