//! The DATA service with backup type `image`: the raw blocks of the inventory disk the
//! environment's FILESYSTEM names, streamed to the data connection (backup) or from it
//! (recover), with the byte count and a digest of the stream returned in the environment
//! (DATA_GET_ENV: BYTES, and CRC32C or MD5 as DIGEST asks: [`super::digest`]).

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use super::conn::Conn;
use super::digest::{self, Hasher, Kind};
use super::lu::Lu;
use super::message::{code, Addr, Error, Pval};
use super::reply::{self, DataState};
use super::stream::{AbortHandle, Stream};
use crate::buf::AlignedBuf;
use crate::command::Abort;
use crate::device::BlockBackend;
use crate::ndmp::xdr::Put;
use crate::scsi::sbc::{ReadWriteCdb, SynchronizeCacheCdb};
use crate::scsi::{Sense, SenseKey, Status};

pub const IDLE: u32 = 0;
pub const ACTIVE: u32 = 1;
pub const HALTED: u32 = 2;
pub const LISTEN: u32 = 3;
pub const CONNECTED: u32 = 4;

pub const OP_NOACTION: u32 = 0;
pub const OP_BACKUP: u32 = 1;
pub const OP_RECOVER: u32 = 2;

pub const HALT_NA: u32 = 0;
pub const HALT_SUCCESSFUL: u32 = 1;
pub const HALT_ABORTED: u32 = 2;
pub const HALT_INTERNAL_ERROR: u32 = 3;
pub const HALT_CONNECT_ERROR: u32 = 4;

/// Bytes read or written per disk I/O.
const CHUNK: usize = 1 << 20;

#[derive(Default)]
pub struct Inner {
    pub state: u32,
    pub operation: u32,
    pub halt_reason: u32,
    pub bytes_processed: u64,
    pub addr: Option<Addr>,
    pub env: Vec<Pval>,
    /// The connection, from CONNECTED until START_BACKUP/RECOVER takes it.
    pub stream: Option<Stream>,
    pub abort: Option<AbortHandle>,
    pub listener: Option<std::net::SocketAddr>,
    /// The copy engine's abort while a local image backup runs a list.
    pub engine_abort: Option<crate::command::Abort>,
}

#[derive(Default)]
pub struct Data {
    inner: Mutex<Inner>,
    changed: Condvar,
}

/// The disk an image operation runs on. Its blocks are read and written through `lu`, with
/// READ(16)/WRITE(16) of the NDMP user's nexus, so a persistent reservation another
/// initiator holds, write protection (SWP) and the disk's range locks apply to DATA as to
/// any other path; `backend` gives its geometry (and the local backup's engine path).
pub struct Disk {
    pub name: String,
    pub backend: BlockBackend,
    pub lu: Arc<Lu>,
}

impl Disk {
    pub fn bytes(&self) -> u64 {
        self.backend.blocks * u64::from(self.backend.block_size)
    }

    /// Bytes per command: whole blocks, about CHUNK.
    fn piece(&self) -> usize {
        let block = self.backend.block_size.max(1) as usize;
        (CHUNK / block).max(1) * block
    }

    fn lba_of(&self, at: u64) -> u64 {
        at / u64::from(self.backend.block_size.max(1))
    }

    fn blocks_of(&self, len: usize) -> u32 {
        u32::try_from(len / self.backend.block_size.max(1) as usize).unwrap_or(u32::MAX)
    }

    /// Fills `b` from byte `at` (whole blocks).
    fn read(&self, at: u64, b: &mut [u8]) -> Result<(), String> {
        let cdb = ReadWriteCdb::read_16(self.lba_of(at), self.blocks_of(b.len()));
        let len = b.len();
        let n = self.exec(&cdb, &[], b, "READ(16)", at)?;
        (n == len)
            .then_some(())
            .ok_or_else(|| format!("READ(16) at byte {at}: {n} of {len} bytes"))
    }

    /// Writes `b` at byte `at` (whole blocks).
    fn write(&self, at: u64, b: &[u8]) -> Result<(), String> {
        let cdb = ReadWriteCdb::write_16(self.lba_of(at), self.blocks_of(b.len()), false);
        self.exec(&cdb, b, &mut [], "WRITE(16)", at).map(drop)
    }

    /// SYNCHRONIZE CACHE of the whole disk.
    fn sync(&self) -> Result<(), String> {
        let cdb = SynchronizeCacheCdb::whole_10();
        self.exec(&cdb, &[], &mut [], "SYNCHRONIZE CACHE(10)", 0)
            .map(drop)
    }

    /// One command through the disk's dispatcher: the data-in bytes, or what the disk
    /// said. A unit attention (the nexus's first command gets POWER ON; another
    /// initiator's MODE SELECT or reservation change may report one mid-copy) is logged
    /// and the command sent again, a few times at most, as an initiator's disk driver does.
    fn exec(
        &self,
        cdb: &[u8],
        data_out: &[u8],
        data_in: &mut [u8],
        what: &str,
        at: u64,
    ) -> Result<usize, String> {
        let mut tries = 0;
        loop {
            let (r, n) = self.lu.dispatcher.execute_into(
                &self.lu.nexus,
                0,
                cdb,
                data_out,
                data_in,
                &Abort::new(),
            );
            if r.status == Status::GOOD {
                return Ok(n);
            }
            match Sense::decode(&r.sense) {
                Ok(s) if s.key == SenseKey::UNIT_ATTENTION && tries < 4 => {
                    tries += 1;
                    tracing::info!(disk = %self.name, sense = %s, "ndmp: data: unit attention, {what} sent again");
                }
                Ok(s) => return Err(format!("{what} at byte {at}: {:?} {s}", r.status)),
                Err(_) => {
                    let sense = hex::encode(&r.sense);
                    return Err(format!("{what} at byte {at}: {:?} {sense}", r.status));
                }
            }
        }
    }
}

impl Data {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn notify(&self) {
        self.changed.notify_all();
    }

    pub fn state_reply(&self) -> Vec<u8> {
        let d = self.lock();
        DataState {
            operation: d.operation,
            state: d.state,
            halt_reason: d.halt_reason,
            bytes_processed: d.bytes_processed,
            addr: d.addr.clone().unwrap_or(Addr::Local),
            read_offset: 0,
            read_length: 0,
        }
        .encode()
    }

    /// Halts with `reason` and posts NOTIFY_DATA_HALTED.
    pub fn halt(&self, conn: &Conn, reason: u32) {
        {
            let mut d = self.lock();
            if d.state == HALTED || d.state == IDLE {
                return;
            }
            d.state = HALTED;
            d.halt_reason = reason;
            d.stream = None;
            // A finished stream has ended already (the peer reads its end); only a failed
            // or aborted one is torn down under the peer.
            if let Some(a) = d.abort.take().filter(|_| reason != HALT_SUCCESSFUL) {
                a.abort();
            }
            if let Some(addr) = d.listener.take() {
                let _ = std::net::TcpStream::connect(addr);
            }
            if let Some(a) = d.engine_abort.take() {
                a.abort();
            }
        }
        self.notify();
        tracing::info!(reason, "ndmp: data halted");
        let mut b = Vec::new();
        b.put_u32(reason);
        let _ = conn.post(code::NOTIFY_DATA_HALTED, &b);
        // What happened, in words, for the DMA's log.
        let (log_type, text) = match reason {
            HALT_SUCCESSFUL => (reply::LOG_NORMAL, self.summary()),
            HALT_ABORTED => (reply::LOG_NORMAL, "image operation aborted".to_string()),
            HALT_CONNECT_ERROR => (
                reply::LOG_ERROR,
                "image operation failed: the data connection broke".to_string(),
            ),
            _ => (
                reply::LOG_ERROR,
                "image operation failed: a disk or copy error (see the server's log)".to_string(),
            ),
        };
        let _ = conn.post(code::LOG_MESSAGE, &reply::log_message(log_type, 0, &text));
    }

    /// "image: BYTES=… CRC32C|MD5=…" from the environment of a finished operation.
    fn summary(&self) -> String {
        let d = self.lock();
        let get = |n: &str| {
            d.env
                .iter()
                .find(|p| p.name == n)
                .map_or("", |p| p.value.as_str())
                .to_string()
        };
        let digest = digest::VARIABLES
            .iter()
            .find_map(|v| {
                let value = get(v);
                (!value.is_empty()).then(|| format!(", {} {value}", v.to_ascii_lowercase()))
            })
            .unwrap_or_default();
        format!(
            "image {}: {} bytes{digest}",
            get("FILESYSTEM"),
            get("BYTES"),
        )
    }

    /// Waits (at most `timeout`) while a TCP listener has not yet accepted the connection
    /// its peer made; true once CONNECTED.
    pub fn wait_connected(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut d = self.lock();
        while d.state == LISTEN && d.listener.is_some() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            d = self
                .changed
                .wait_timeout(d, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        d.state == CONNECTED
    }

    /// Records the byte count and digest (if computed) of a finished operation in its
    /// environment.
    pub fn finish_env(&self, bytes: u64, digest: Option<digest::Value>) {
        let mut d = self.lock();
        d.env
            .retain(|p| p.name != "BYTES" && !digest::VARIABLES.contains(&p.name.as_str()));
        d.env.push(Pval::new("BYTES", bytes.to_string()));
        match digest {
            Some(v) => {
                tracing::info!(bytes, digest = v.kind.variable(), value = %v.hex, "ndmp: image done");
                d.env.push(Pval::new(v.kind.variable(), v.hex));
            }
            None => tracing::info!(bytes, "ndmp: image done"),
        }
    }

    /// DATA becomes ACTIVE on `operation` with `env` (the local engine path; no stream).
    pub fn activate(&self, operation: u32, env: Vec<Pval>) -> bool {
        let mut d = self.lock();
        if d.state != CONNECTED {
            return false;
        }
        d.state = ACTIVE;
        d.operation = operation;
        d.env = env;
        d.stream = None;
        true
    }

    /// Starts the image backup or recover of `disk` on the connection.
    pub fn start(
        self: &Arc<Self>,
        conn: Arc<Conn>,
        disk: Disk,
        operation: u32,
        env: Vec<Pval>,
        digest: Option<Kind>,
    ) -> Error {
        let stream = {
            let mut d = self.lock();
            if d.state != CONNECTED {
                return Error::ILLEGAL_STATE;
            }
            let Some(stream) = d.stream.take() else {
                return Error::ILLEGAL_STATE;
            };
            d.state = ACTIVE;
            d.operation = operation;
            d.env = env;
            d.abort = stream.abort_handle().ok();
            stream
        };
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("ndmp-data".into())
            .spawn(move || {
                let hasher = digest.map(Hasher::new);
                let result = if operation == OP_BACKUP {
                    me.backup(&disk, stream, hasher)
                } else {
                    me.recover(&conn, &disk, stream, hasher)
                };
                let reason = match result {
                    Ok((bytes, digest)) => {
                        me.finish_env(bytes, digest.map(Hasher::finish));
                        HALT_SUCCESSFUL
                    }
                    Err(reason) => reason,
                };
                me.halt(&conn, reason);
            });
        match spawned {
            Ok(_) => Error::NO_ERR,
            Err(_) => Error::NO_MEM,
        }
    }

    fn failed(&self, what: &str, e: &dyn std::fmt::Display) -> u32 {
        if self.lock().state != ACTIVE {
            return HALT_ABORTED;
        }
        tracing::warn!(error = %e, "ndmp: data: {what} failed");
        if what == "disk" {
            HALT_INTERNAL_ERROR
        } else {
            HALT_CONNECT_ERROR
        }
    }

    fn backup(
        &self,
        disk: &Disk,
        mut stream: Stream,
        mut digest: Option<Hasher>,
    ) -> Result<(u64, Option<Hasher>), u32> {
        let total = disk.bytes();
        let mut buf = AlignedBuf::default();
        let mut at = 0u64;
        while at < total {
            let n = disk
                .piece()
                .min(usize::try_from(total - at).unwrap_or(CHUNK));
            let b = buf.slice(n);
            disk.read(at, b).map_err(|e| self.failed("disk", &e))?;
            if let Some(h) = digest.as_mut() {
                h.update(b);
            }
            stream
                .send(b.to_vec())
                .map_err(|e| self.failed("connection", &e))?;
            at += n as u64;
            self.lock().bytes_processed = at;
        }
        stream.finish();
        Ok((at, digest))
    }

    fn recover(
        &self,
        conn: &Conn,
        disk: &Disk,
        mut stream: Stream,
        mut digest: Option<Hasher>,
    ) -> Result<(u64, Option<Hasher>), u32> {
        if disk.backend.read_only {
            tracing::warn!(disk = %disk.name, "ndmp: recover refused: the disk is read-only");
            return Err(HALT_INTERNAL_ERROR);
        }
        let total = disk.bytes();
        // Ask the DMA to have the mover send the whole image.
        let _ = conn.post(code::NOTIFY_DATA_READ, &reply::data_read(0, total));
        let mut buf = AlignedBuf::default();
        let mut at = 0u64;
        while at < total {
            let n = disk
                .piece()
                .min(usize::try_from(total - at).unwrap_or(CHUNK));
            let b = buf.slice(n);
            let got = stream.fill(b).map_err(|e| self.failed("connection", &e))?;
            if got < n {
                tracing::warn!(disk = %disk.name, at, "ndmp: recover: the stream ended before the image");
                return Err(HALT_CONNECT_ERROR);
            }
            if let Some(h) = digest.as_mut() {
                h.update(b);
            }
            disk.write(at, b).map_err(|e| self.failed("disk", &e))?;
            at += n as u64;
            self.lock().bytes_processed = at;
        }
        disk.sync().map_err(|e| self.failed("disk", &e))?;
        stream.finish();
        // The one "file" of an image: the disk, recovered.
        let mut b = Vec::new();
        b.put_string(&disk.name);
        b.put_u32(0);
        let _ = conn.post(code::LOG_FILE, &b);
        Ok((at, digest))
    }
}
