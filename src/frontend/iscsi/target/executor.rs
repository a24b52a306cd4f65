//! A connection's command executor: worker threads that run ready tasks through the
//! dispatcher and send their results.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use super::window::CmdWindow;
use super::writer::{lock, send_result, Writer};
use super::{Session, Shared};
use crate::buf::AlignedBuf;
use crate::command::Abort;

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
    /// Runs whatever else runs: a SIMPLE RECEIVE COPY RESULTS, which only reads the copy
    /// manager's records, so COPY STATUS can report a list in progress on the same I_T
    /// nexus (SPC-4 6.18: the results of a "current" EXTENDED COPY).
    pub(super) independent: bool,
    /// Bytes of the connection's Data-Out allowance this task's buffer holds, given back
    /// when it ends ([`Session::buffered`]).
    pub(super) charge: usize,
}

/// Most workers one connection runs its commands on (started only as its queue fills).
/// Measured with iscsi-perf, 32 x 128 KiB READs in flight on an O_DIRECT image: a read
/// takes ~0.2 ms alone, and the disk's throughput is flat from 8 reads at once (each
/// then takes ~0.9 ms) to 32 (~4 ms); 16 matches tgtd's backing-store threads and rides
/// out a host disk that is slower than usual.
pub(super) const WORKERS: usize = 16;

/// Largest data-in buffer a worker keeps for its next command; larger ones are allocated
/// for the command and freed after it.
pub(super) const KEEP_BUFFER: usize = 1 << 20;

/// A connection's command executor: the reader queues ready tasks in CmdSN order, and up
/// to [`WORKERS`] threads (started as the queue needs them, kept until the connection
/// closes) take them from the front. A concurrent task (SIMPLE READ/WRITE on a disk) runs
/// as soon as no exclusive task runs; an independent one (SIMPLE RECEIVE COPY RESULTS) as
/// soon as it is at the front; any other task waits until nothing runs, and nothing
/// behind it starts until it is done. Each worker reads into its own aligned,
/// reused buffer, and sends the result itself, so responses leave in completion order
/// (RFC 7143 allows that for SIMPLE tasks: the initiator matches them by ITT).
pub(super) struct Executor {
    pub(super) shared: Arc<Shared>,
    pub(super) session: Arc<Session>,
    pub(super) writer: Arc<Mutex<Writer>>,
    pub(super) window: Arc<CmdWindow>,
    pub(super) max_send: u32,
    pub(super) max_burst: u32,
    pub(super) queue: Mutex<Queue>,
    /// Signalled when a task is queued, when the last running task ends, and at close.
    pub(super) wake: Condvar,
}

#[derive(Default)]
pub(super) struct Queue {
    pub(super) tasks: VecDeque<ReadyTask>,
    /// Tasks being executed now.
    pub(super) running: usize,
    /// Whether the one running task is an exclusive (non-concurrent) one.
    pub(super) exclusive: bool,
    /// Workers waiting for work, and wake-ups sent to them not yet taken.
    pub(super) idle: usize,
    pub(super) signals: usize,
    pub(super) handles: Vec<thread::JoinHandle<()>>,
    pub(super) closed: bool,
}

impl Executor {
    /// Starts the first worker.
    pub(super) fn start(exec: Self) -> io::Result<Arc<Self>> {
        let exec = Arc::new(exec);
        let h = exec.spawn()?;
        exec.queue().handles.push(h);
        Ok(exec)
    }

    pub(super) fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn spawn(self: &Arc<Self>) -> io::Result<thread::JoinHandle<()>> {
        let exec = self.clone();
        thread::Builder::new()
            .name("iscsi-exec".into())
            .spawn(move || exec.work())
    }

    /// Queues a task whose data-out is complete, waking or starting a worker for it.
    pub(super) fn push(self: &Arc<Self>, task: ReadyTask) {
        let mut q = self.queue();
        q.tasks.push_back(task);
        if q.idle > q.signals {
            q.signals += 1;
            self.wake.notify_one();
        } else if q.handles.len() < WORKERS {
            // Every worker is busy (or about to take a queued task): one more. If the
            // thread cannot be started, the running ones get to it.
            if let Ok(h) = self.spawn() {
                q.handles.push(h);
            }
        }
    }

    /// Ends every queued task that was aborted before it ran: it is never executed nor
    /// answered (its ABORT TASK or reset is).
    pub(super) fn drop_aborted(&self) {
        let gone: VecDeque<ReadyTask> = {
            let mut q = self.queue();
            let (gone, keep) = std::mem::take(&mut q.tasks)
                .into_iter()
                .partition(|t| t.abort.is_aborted());
            q.tasks = keep;
            gone
        };
        for t in gone {
            self.finish(&t);
        }
    }

    /// Lets the workers run what is queued (aborted by now: the connection is gone), then
    /// stops and joins them.
    pub(super) fn close(&self) {
        let handles = {
            let mut q = self.queue();
            q.closed = true;
            self.wake.notify_all();
            std::mem::take(&mut q.handles)
        };
        for h in handles {
            let _ = h.join();
        }
    }

    pub(super) fn work(&self) {
        let mut buf = AlignedBuf::default();
        let mut q = self.queue();
        loop {
            let runnable = q.tasks.front().map(|t| {
                if t.independent {
                    true
                } else if t.concurrent {
                    !q.exclusive
                } else {
                    q.running == 0
                }
            });
            match runnable {
                Some(true) => {
                    let Some(task) = q.tasks.pop_front() else {
                        continue;
                    };
                    let exclusive = !task.concurrent && !task.independent;
                    q.running += 1;
                    // An exclusive task starts only when nothing runs; an independent one
                    // may start beside it and must not clear the flag.
                    q.exclusive |= exclusive;
                    drop(q);
                    if task.data_in_len > KEEP_BUFFER {
                        self.execute(task, &mut AlignedBuf::default());
                    } else {
                        self.execute(task, &mut buf);
                    }
                    q = self.queue();
                    q.running -= 1;
                    if exclusive {
                        q.exclusive = false;
                    }
                    if q.running == 0 && q.tasks.len() > 1 {
                        // A task that waited for the others may start now.
                        self.wake.notify_all();
                    }
                }
                None if q.closed => return,
                _ => {
                    q.idle += 1;
                    q = self.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
                    q.idle -= 1;
                    q.signals = q.signals.saturating_sub(1);
                }
            }
        }
    }

    /// The task is over (answered, aborted or dropped): it leaves the task set and the
    /// CmdSN window.
    pub(super) fn finish(&self, task: &ReadyTask) {
        if self.session.tasks().remove(&task.itt).is_some() {
            self.window.outstanding.fetch_sub(1, Ordering::AcqRel);
            self.session.release(task.charge);
        }
        self.session.task_done.notify_all();
    }

    /// Runs one command on a worker and sends its result, unless it was aborted.
    pub(super) fn execute(&self, task: ReadyTask, buf: &mut AlignedBuf) {
        if task.abort.is_aborted() {
            self.finish(&task);
            return;
        }
        let data_in = buf.slice(task.data_in_len);
        let (result, n) = self.shared.dispatcher.execute_into(
            &self.session.nexus,
            task.lun,
            &task.cdb,
            &task.data_out,
            data_in,
            &task.abort,
        );
        let data = data_in.get(..n).unwrap_or_default();
        let edtl = task.data_in_len.max(task.data_out.len());
        let read = task.data_in_len > 0;
        let mut w = lock(&self.writer);
        // Finish before answering so the window reopens in this response.
        let aborted = task.abort.is_aborted();
        self.finish(&task);
        if !aborted {
            let _ = send_result(
                &mut w,
                task.itt,
                edtl,
                read,
                &result,
                data,
                self.max_send,
                self.max_burst,
            );
        }
    }
}
