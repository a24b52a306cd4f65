//! The TCMU front end: xcopyd as the userspace handler of a LIO user backstore
//! (target_core_user), so every LIO fabric (tcm_loop, FC, LIO's own iSCSI) reaches the
//! dispatcher.
//!
//! The kernel queues each command as an entry of the command ring in a UIO map
//! ([`ring`] decodes it) and raises the UIO interrupt; [`Handler`] copies the entry out
//! (CDB and data buffer list), runs it through [`Dispatcher::execute`] on a thread of its
//! own (an EXTENDED COPY may take minutes while RECEIVE COPY RESULTS for it arrives on the
//! same ring), writes data-in into the command's buffers and the response into the ring
//! entry at the tail ([`ring::complete`], out-of-order completion), publishes the tail and
//! writes to the UIO fd so the kernel reaps it.
//!
//! The ring carries no data direction: it is taken from the CDB ([`is_data_out`]).
//!
//! Nexus: TCMU does not say who the initiator is. Every command of the devices of one
//! configfs HBA (`target/core/user_<n>`) runs as initiator `tcmu:<n>`, session 0: like
//! the LUNs of one I_T nexus, they share held copy results (an EXTENDED COPY sent to one
//! LUN can be followed by RECEIVE COPY RESULTS on another) and unit attention state is
//! per LUN. Initiators that must not see each other's list identifiers get devices in
//! separate HBAs. Inventory `allow` lists are matched against `tcmu:<n>`.

pub mod ring;
pub mod scan;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::command::{Abort, CommandResult, Nexus};
use crate::frontend::Dispatcher;
use crate::scsi::{Asc, Sense, SenseKey};

use ring::{CmdEntry, Entry, Mailbox, Response, RingError, SharedMap, TmrEntry};

/// The kernel side of a TCMU device: its map plus the UIO interrupt.
pub trait Uio: SharedMap {
    /// Tells the kernel the tail moved (a 4-byte write to the UIO fd).
    fn notify(&self) -> std::io::Result<()>;
    /// Waits up to `timeout` for the kernel's interrupt: Ok(true) on one, Ok(false) on
    /// timeout, Err when the device is gone.
    fn wait(&self, timeout: Duration) -> std::io::Result<bool>;
}

/// Why a device could not be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Ring(#[from] RingError),
    #[error("starting the ring thread: {0}")]
    Thread(std::io::Error),
}

/// How often the ring is looked at without an interrupt (and the stop flag checked).
const POLL: Duration = Duration::from_millis(100);
/// How long stopping waits for aborted commands to complete.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Whether a CDB carries data-out (the ring says nothing about direction): the write,
/// parameter-list and compare commands of SPC-4, SBC-3 and SSC-3. Anything else with data
/// buffers is treated as data-in.
pub fn is_data_out(cdb: &[u8]) -> bool {
    matches!(
        cdb.first(),
        Some(
            0x04 // FORMAT UNIT
            | 0x07 // REASSIGN BLOCKS
            | 0x0a // WRITE(6)
            | 0x13 // VERIFY(6) (SSC, byte compare)
            | 0x15 // MODE SELECT(6)
            | 0x1d // SEND DIAGNOSTIC
            | 0x2a // WRITE(10)
            | 0x2e // WRITE AND VERIFY(10)
            | 0x2f // VERIFY(10)
            | 0x3b // WRITE BUFFER
            | 0x3f // WRITE LONG(10)
            | 0x41 // WRITE SAME(10)
            | 0x42 // UNMAP
            | 0x4c // LOG SELECT
            | 0x55 // MODE SELECT(10)
            | 0x5f // PERSISTENT RESERVE OUT
            | 0x83 // EXTENDED COPY
            | 0x89 // COMPARE AND WRITE
            | 0x8a // WRITE(16)
            | 0x8d // WRITE ATTRIBUTE
            | 0x8e // WRITE AND VERIFY(16)
            | 0x8f // VERIFY(16)
            | 0x93 // WRITE SAME(16)
            | 0x9f // SERVICE ACTION OUT(16)
            | 0xa4 // MAINTENANCE OUT
            | 0xaa // WRITE(12)
            | 0xae // WRITE AND VERIFY(12)
            | 0xaf // VERIFY(12)
            | 0xb5 // SECURITY PROTOCOL OUT
        )
    )
}

struct RingState {
    /// What we last published as `cmd_tail`.
    tail: u32,
    /// Where decoding continues: every entry in [tail, next) has been copied out.
    next: u32,
}

struct Inner {
    uio: Arc<dyn Uio>,
    mb: Mailbox,
    ring: Mutex<RingState>,
    running: Mutex<HashMap<u16, Abort>>,
    active: AtomicUsize,
    stop: AtomicBool,
    dispatcher: Arc<Dispatcher>,
    nexus: Nexus,
    label: String,
}

/// Serves one TCMU device on a thread of its own until stopped, failed or removed.
pub struct Handler {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl Handler {
    /// Starts serving `uio` as LUN 0 of `dispatcher`; commands run as `nexus`. `label`
    /// names the device in logs.
    pub fn start(
        uio: Arc<dyn Uio>,
        dispatcher: Arc<Dispatcher>,
        nexus: Nexus,
        label: String,
    ) -> Result<Self, StartError> {
        let mb = Mailbox::read(&*uio)?;
        let tail = mb.check_offset(uio.cmd_tail())?;
        let inner = Arc::new(Inner {
            uio,
            mb,
            ring: Mutex::new(RingState { tail, next: tail }),
            running: Mutex::new(HashMap::new()),
            active: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            dispatcher,
            nexus,
            label,
        });
        let run = inner.clone();
        let thread = std::thread::Builder::new()
            .name("tcmu-ring".into())
            .spawn(move || run.serve())
            .map_err(StartError::Thread)?;
        Ok(Self {
            inner,
            thread: Some(thread),
        })
    }

    /// Whether the ring thread has ended (device removed or failed).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Commands running now.
    pub fn running(&self) -> usize {
        self.inner.active.load(Ordering::Acquire)
    }

    /// Stops serving: running commands are aborted and completed (waiting at most a few
    /// seconds), then the ring thread ends.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.inner.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Handler {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    fn serve(self: Arc<Self>) {
        while !self.stop.load(Ordering::Acquire) {
            if let Err(e) = self.uio.wait(POLL) {
                tracing::info!(device = %self.label, "tcmu: device gone ({e}), no longer served");
                break;
            }
            if let Err(e) = self.poll_ring() {
                tracing::error!(device = %self.label, "tcmu: ring unusable, device failed: {e}");
                break;
            }
        }
        self.stop.store(true, Ordering::Release);
        for abort in lock(&self.running).values() {
            abort.abort();
        }
        let deadline = Instant::now() + STOP_GRACE;
        while self.active.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Copies out every entry the kernel queued, starts the commands, answers TMRs.
    fn poll_ring(self: &Arc<Self>) -> Result<(), RingError> {
        let map: &dyn SharedMap = &*self.uio;
        let head = self.mb.check_offset(self.uio.cmd_head())?;
        let mut commands = Vec::new();
        let moved = {
            let mut st = lock(&self.ring);
            while st.next != head {
                let (entry, len) = self.mb.entry(map, st.next)?;
                st.next = self.mb.advance(st.next, len);
                match entry {
                    Entry::Pad => {}
                    Entry::Tmr(t) => self.tmr(&t),
                    Entry::Cmd(c) => {
                        let abort = Abort::new();
                        if c.bad.is_none() {
                            lock(&self.running).insert(c.cmd_id, abort.clone());
                        }
                        commands.push((c, abort));
                    }
                }
            }
            let tail = ring::skip_non_commands(&self.mb, map, st.tail, st.next)?;
            let moved = tail != st.tail;
            if moved {
                st.tail = tail;
                self.uio.set_cmd_tail(tail);
            }
            moved
        };
        if moved {
            self.notify();
        }
        for (cmd, abort) in commands {
            self.active.fetch_add(1, Ordering::AcqRel);
            if let Some(why) = cmd.bad {
                tracing::warn!(device = %self.label, cmd_id = cmd.cmd_id, "tcmu: bad entry: {why}");
                let sense = Sense::new(SenseKey::HARDWARE_ERROR, Asc::INTERNAL_TARGET_FAILURE);
                self.finish(&cmd, CommandResult::check_condition(&sense), false);
                continue;
            }
            let me = self.clone();
            let job = move || {
                let (result, data_in) = me.run(&cmd, &abort);
                me.finish(&cmd, result, data_in);
            };
            // A thread per command: commands block (a copy for minutes), and each must be
            // able to run beside the others.
            let spawned = std::thread::Builder::new()
                .name("tcmu-cmd".into())
                .spawn(job);
            if let Err(e) = spawned {
                tracing::error!(device = %self.label, "tcmu: cannot start a command thread: {e}");
                self.stop.store(true, Ordering::Release);
            }
        }
        Ok(())
    }

    /// Runs one command; returns its result and whether it is a data-in command.
    fn run(&self, cmd: &CmdEntry, abort: &Abort) -> (CommandResult, bool) {
        let map: &dyn SharedMap = &*self.uio;
        if is_data_out(&cmd.cdb) {
            let result = match ring::gather(map, &cmd.iovs) {
                Ok(data) => self
                    .dispatcher
                    .execute(&self.nexus, 0, &cmd.cdb, &data, 0, abort),
                Err(_) => CommandResult::check_condition(&Sense::new(
                    SenseKey::HARDWARE_ERROR,
                    Asc::INTERNAL_TARGET_FAILURE,
                )),
            };
            (result, false)
        } else {
            let result =
                self.dispatcher
                    .execute(&self.nexus, 0, &cmd.cdb, &[], cmd.data_len(), abort);
            (result, true)
        }
    }

    /// Writes data-in and the response, publishes the tail, wakes the kernel.
    fn finish(&self, cmd: &CmdEntry, result: CommandResult, data_in: bool) {
        let map: &dyn SharedMap = &*self.uio;
        let mut read_len = None;
        if data_in {
            // The buffers are the command's until it is completed: no lock needed.
            let placed = ring::scatter(map, &cmd.iovs, &result.data_in).unwrap_or(0);
            read_len = Some(u32::try_from(placed).unwrap_or(u32::MAX));
        }
        let rsp = Response {
            cmd_id: cmd.cmd_id,
            scsi_status: result.status.0,
            sense: result.sense,
            read_len,
        };
        let done = {
            let mut st = lock(&self.ring);
            let r = ring::complete(&self.mb, map, st.tail, st.next, &rsp);
            if let Ok(tail) = r {
                st.tail = tail;
                self.uio.set_cmd_tail(tail);
            }
            r
        };
        lock(&self.running).remove(&cmd.cmd_id);
        match done {
            Ok(_) => self.notify(),
            Err(e) => {
                tracing::error!(device = %self.label, "tcmu: completion failed, device failed: {e}");
                self.stop.store(true, Ordering::Release);
            }
        }
        self.active.fetch_sub(1, Ordering::AcqRel);
    }

    fn tmr(&self, t: &TmrEntry) {
        tracing::info!(device = %self.label, tmr = t.tmr_type, cmds = ?t.cmd_ids, "tcmu: task management");
        let running = lock(&self.running);
        for id in &t.cmd_ids {
            if let Some(a) = running.get(id) {
                a.abort();
            }
        }
        if matches!(
            t.tmr_type,
            ring::tmr::LUN_RESET
                | ring::tmr::LUN_RESET_PRO
                | ring::tmr::TARGET_WARM_RESET
                | ring::tmr::TARGET_COLD_RESET
        ) {
            self.dispatcher.lun_reset(0);
        }
    }

    fn notify(&self) {
        if let Err(e) = self.uio.notify() {
            tracing::debug!(device = %self.label, "tcmu: notify: {e}");
        }
    }
}

impl SharedMap for crate::sys::uio::UioMap {
    fn size(&self) -> usize {
        self.len()
    }
    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), ring::OutOfBounds> {
        crate::sys::uio::UioMap::read_at(self, offset, buf).map_err(|_| ring::OutOfBounds)
    }
    fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), ring::OutOfBounds> {
        crate::sys::uio::UioMap::write_at(self, offset, data).map_err(|_| ring::OutOfBounds)
    }
    fn cmd_head(&self) -> u32 {
        // The mailbox is inside every valid map; a map too small fails Mailbox::read first.
        self.load_u32_acquire(ring::mailbox::CMD_HEAD)
            .unwrap_or(u32::MAX)
    }
    fn cmd_tail(&self) -> u32 {
        self.load_u32_acquire(ring::mailbox::CMD_TAIL)
            .unwrap_or(u32::MAX)
    }
    fn set_cmd_tail(&self, tail: u32) {
        let _ = self.store_u32_release(ring::mailbox::CMD_TAIL, tail);
    }
}

impl Uio for crate::sys::uio::UioMap {
    fn notify(&self) -> std::io::Result<()> {
        crate::sys::uio::UioMap::notify(self)
    }
    fn wait(&self, timeout: Duration) -> std::io::Result<bool> {
        crate::sys::uio::UioMap::wait(self, timeout)
    }
}

#[cfg(test)]
mod tests;
