//! The iSCSI target server: a `std::net` listener, and per connection a reader thread and
//! a few worker threads.
//!
//! Why threads and not an event loop: a connection carries at most a queue depth of
//! commands, the devices behind the dispatcher are synchronous (`ScsiDevice::execute`
//! blocks), and an EXTENDED COPY may run for minutes. A reader thread per connection keeps
//! parsing PDUs (Data-Out, NOP-Out, task management) while the connection's [`Executor`]
//! runs its commands: SIMPLE READs and WRITEs on a disk side by side on up to [`WORKERS`]
//! threads (a disk serves several reads at once; one at a time left it mostly idle), each
//! answered as it completes; RECEIVE COPY RESULTS beside anything (COPY STATUS of a
//! running EXTENDED COPY); everything else alone, in CmdSN order — which is also the
//! order a tape needs. Data-In leaves straight from the buffer the disk read into, header
//! and data in one vectored write. Sessions are independent: one hung or hostile
//! connection costs a few parked threads, bounded by `max_connections`, and never blocks
//! another.
//!
//! Error recovery level 0 (RFC 7143 7.1.5): a protocol error the target cannot recover
//! from by a Reject closes the connection, which ends the session and its tasks.

mod connection;
mod data_out;
mod executor;
mod login_phase;
mod task_mgmt;
mod window;
mod writer;

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::auth::Initiators;
use crate::command::{Abort, Nexus};
use crate::frontend::dispatch::Dispatcher;
use crate::metrics::Metrics;

/// How long [`Target::shutdown`] waits for connection threads to end.
pub(super) const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// What the daemon's `[iscsi]` table configures: who may log in, and the bounds on what one
/// peer may hold (every refusal is logged with its reason).
#[derive(Clone, Debug)]
pub struct TargetConfig {
    /// Address to listen on ("127.0.0.1:3260"; port 0 picks a free one).
    pub listen: String,
    /// The target's IQN.
    pub target_name: String,
    /// Who may log in and how they authenticate (`[[initiator]]`).
    pub initiators: Arc<Initiators>,
    /// Connections served at once (logging in or logged in); more are closed at accept.
    pub max_connections: usize,
    /// Sessions one initiator name may have at once; one more login gets Too many
    /// connections (0206h).
    pub max_sessions_per_initiator: usize,
    /// A login must reach full feature phase within this, as a whole.
    pub login_timeout: Duration,
    /// A logged-in connection with no command outstanding and nothing received for this
    /// long is closed (a NOP-In ping goes out at half of it, so live initiators answer).
    pub idle_timeout: Duration,
    /// Commands a session may have outstanding (the CmdSN window).
    pub queue_depth: u32,
    /// Largest Expected Data Transfer Length accepted for one command; bounds the buffer a
    /// command holds.
    pub max_command_data: u32,
    /// Bytes of write data (immediate, unsolicited and solicited Data-Out) one connection
    /// may hold in buffers at once; a write beyond it gets TASK SET FULL.
    pub max_data_out: usize,
    /// A write whose Data-Out stops arriving for this long ends with ABORTED COMMAND and
    /// its buffer is freed.
    pub data_out_timeout: Duration,
    /// Where logins and sessions are counted.
    pub metrics: Option<Arc<Metrics>>,
}

impl TargetConfig {
    /// Safe defaults: anonymous logins (the daemon allows that only on loopback), 64
    /// connections, 8 sessions per initiator, 15 s to log in, 5 minutes idle, 32 commands,
    /// 16 MiB per command and 64 MiB of write data per connection, 60 s of Data-Out stall.
    pub fn new(listen: &str, target_name: &str) -> Self {
        Self {
            listen: listen.into(),
            target_name: target_name.into(),
            initiators: Arc::new(Initiators::anonymous()),
            max_connections: 64,
            max_sessions_per_initiator: 8,
            login_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(300),
            queue_depth: 32,
            max_command_data: 16 * 1024 * 1024,
            max_data_out: 64 * 1024 * 1024,
            data_out_timeout: Duration::from_secs(60),
            metrics: None,
        }
    }
}

/// A running target; dropping it does not stop it — call [`Target::shutdown`].
pub struct Target {
    pub(super) addr: SocketAddr,
    pub(super) shared: Arc<Shared>,
    pub(super) accept: Option<thread::JoinHandle<()>>,
}

pub(super) struct Shared {
    pub(super) config: TargetConfig,
    pub(super) addr: SocketAddr,
    pub(super) dispatcher: Arc<Dispatcher>,
    pub(super) stopping: AtomicBool,
    pub(super) connections: AtomicUsize,
    pub(super) next_tsih: AtomicU16,
    pub(super) next_conn: AtomicU32,
    pub(super) sessions: Mutex<HashMap<u32, Arc<Session>>>,
    /// Notified (with `sessions`) when a session has been torn down and left the map.
    pub(super) left: Condvar,
}

/// A logged-in (full feature phase) session = one connection here (MaxConnections=1).
pub(super) struct Session {
    pub(super) initiator: String,
    pub(super) isid: [u8; 6],
    /// The I_T nexus (initiator name + ISID/TSIH), built once: every command needs it.
    pub(super) nexus: Nexus,
    pub(super) stream: TcpStream,
    pub(super) tasks: Mutex<HashMap<u32, TaskEntry>>,
    pub(super) task_done: Condvar,
    /// Bytes of write data the connection's tasks hold (reserved when a write command
    /// arrives, given back when it ends): at most `max_data_out`.
    pub(super) buffered: AtomicUsize,
}

#[derive(Clone)]
pub(super) struct TaskEntry {
    pub(super) lun: u64,
    pub(super) abort: Abort,
}

/// Starts serving `dispatcher` on `config.listen`.
pub fn start(config: TargetConfig, dispatcher: Arc<Dispatcher>) -> io::Result<Target> {
    let listener = TcpListener::bind(&config.listen)?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        config,
        addr,
        dispatcher,
        stopping: AtomicBool::new(false),
        connections: AtomicUsize::new(0),
        next_tsih: AtomicU16::new(1),
        next_conn: AtomicU32::new(1),
        sessions: Mutex::new(HashMap::new()),
        left: Condvar::new(),
    });
    let aborter: std::sync::Weak<Shared> = Arc::downgrade(&shared);
    shared.dispatcher.add_task_aborter(aborter);
    let s = shared.clone();
    let accept = thread::Builder::new()
        .name("iscsi-accept".into())
        .spawn(move || accept_loop(listener, s))?;
    Ok(Target {
        addr,
        shared,
        accept: Some(accept),
    })
}

impl Target {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections; those already logged in go on being served.
    pub fn stop_accepting(&self) {
        if !self.shared.stopping.swap(true, Ordering::AcqRel) {
            // Wake the accept loop so it sees `stopping`.
            let _ = TcpStream::connect(self.addr);
        }
    }

    /// Connections being served now.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Acquire)
    }

    /// Stops accepting, closes every connection (aborting their tasks), waits for the
    /// accept thread, and waits (at most `CLOSE_WAIT`) for the connections' threads to
    /// see their aborted tasks end.
    pub fn shutdown(mut self) {
        self.stop_accepting();
        for s in self.shared.sessions().values() {
            abort_all(s, None);
            let _ = s.stream.shutdown(Shutdown::Both);
        }
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let deadline = Instant::now() + CLOSE_WAIT;
        while self.connections() > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Shared {
    pub(super) fn sessions(&self) -> MutexGuard<'_, HashMap<u32, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Session {
    pub(super) fn tasks(&self) -> MutexGuard<'_, HashMap<u32, TaskEntry>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves `bytes` of the Data-Out allowance `limit`; false (nothing reserved) if
    /// they do not fit.
    pub(super) fn charge(&self, bytes: usize, limit: usize) -> bool {
        self.buffered
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(bytes).filter(|&t| t <= limit)
            })
            .is_ok()
    }

    /// Gives `bytes` of the allowance back.
    pub(super) fn release(&self, bytes: usize) {
        self.buffered.fetch_sub(bytes, Ordering::AcqRel);
    }

    pub(super) fn nexus(initiator: &str, isid: [u8; 6], tsih: u16) -> Nexus {
        let mut id = [0u8; 8];
        id[..6].copy_from_slice(&isid);
        id[6..].copy_from_slice(&tsih.to_be_bytes());
        Nexus {
            initiator: initiator.to_string(),
            session: u64::from_be_bytes(id),
        }
    }
}

/// Aborts every task of `s` (on `lun` only, if given).
pub(super) fn abort_all(s: &Session, lun: Option<u64>) {
    for t in s.tasks().values() {
        if lun.is_none_or(|l| l == t.lun) {
            t.abort.abort();
        }
    }
}

pub(super) fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::Acquire) {
            break;
        }
        let Ok(stream) = stream else { continue };
        if shared.connections.fetch_add(1, Ordering::AcqRel) >= shared.config.max_connections {
            shared.connections.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(
                peer = ?stream.peer_addr().ok(),
                max_connections = shared.config.max_connections,
                "iSCSI connection refused: max_connections reached"
            );
            continue;
        }
        let s = shared.clone();
        let spawned = thread::Builder::new()
            .name("iscsi-conn".into())
            .spawn(move || {
                let _ = connection::serve(stream, &s);
                s.connections.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            shared.connections.fetch_sub(1, Ordering::AcqRel);
        }
    }
}
