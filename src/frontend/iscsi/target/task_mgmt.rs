//! Task management functions (RFC 7143 11.5): ABORT TASK, ABORT/CLEAR TASK SET, LOGICAL
//! UNIT RESET, TARGET WARM RESET, TARGET COLD RESET; the task set aborts PERSISTENT RESERVE
//! OUT PREEMPT AND ABORT asks for ([`TaskAborter`]); and waiting for aborted tasks to leave
//! the executor.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use super::connection::{Connection, Next};
use super::executor::Executor;
use super::window::sn_le;
use super::{abort_all, Session, Shared, TaskEntry};
use crate::command::Nexus;
use crate::frontend::reservation::TaskAborter;
use crate::iscsi::pdu::{Bhs, Opcode, Pdu};
use crate::scsi::luns::lun_from_wire;

impl Connection {
    pub(super) fn task_management(&mut self, b: &Bhs, tx: &Arc<Executor>) -> io::Result<Next> {
        let function = b.flags() & 0x7f;
        let lun = lun_from_wire(b.lun());
        let dispatcher = self.shared.dispatcher.clone();
        let response = match function {
            // ABORT TASK
            1 => {
                let rtt = b.referenced_task_tag();
                let found = self.session.tasks().get(&rtt).cloned();
                match found {
                    Some(t) => {
                        t.abort.abort();
                        self.forget_write(rtt);
                        tx.drop_aborted();
                        self.wait_for(|tasks| !tasks.contains_key(&rtt));
                        0
                    }
                    None => {
                        let exp = self.window.exp_cmd_sn.load(Ordering::Acquire);
                        let in_window = sn_le(exp, b.ref_cmd_sn()) && b.ref_cmd_sn() != b.cmd_sn();
                        if in_window && sn_le(b.ref_cmd_sn(), self.window.end()) {
                            0
                        } else {
                            1
                        }
                    }
                }
            }
            // ABORT TASK SET, CLEAR TASK SET
            2 | 4 if !dispatcher.has_lun(&self.session.nexus, lun) => 2,
            2 | 4 => {
                let sessions: Vec<Arc<Session>> = if function == 4 {
                    self.shared.sessions().values().cloned().collect()
                } else {
                    vec![self.session.clone()]
                };
                for s in &sessions {
                    abort_all(s, Some(lun));
                }
                self.forget_writes(Some(lun));
                tx.drop_aborted();
                self.wait_for(|tasks| tasks.values().all(|t| t.lun != lun));
                0
            }
            // LOGICAL UNIT RESET
            5 if !dispatcher.has_lun(&self.session.nexus, lun) => 2,
            5 => {
                for s in self.shared.sessions().values() {
                    abort_all(s, Some(lun));
                }
                self.forget_writes(Some(lun));
                tx.drop_aborted();
                dispatcher.lun_reset(lun);
                self.wait_for(|tasks| tasks.values().all(|t| t.lun != lun));
                0
            }
            // TARGET WARM RESET; TARGET COLD RESET does the same and then closes every
            // connection to every initiator (RFC 7143 11.5.1), after its response.
            6 | 7 => {
                for s in self.shared.sessions().values() {
                    abort_all(s, None);
                }
                self.forget_writes(None);
                tx.drop_aborted();
                dispatcher.target_reset();
                self.wait_for(|tasks| tasks.is_empty());
                0
            }
            // TASK REASSIGN: needs ERL 2.
            8 => 4,
            // CLEAR ACA (no NACA support), and anything else.
            _ => 5,
        };
        let mut r = Bhs::new(Opcode::TASK_MANAGEMENT_RESPONSE);
        r.set_flags(0x80).set_byte(2, response).set_itt(b.itt());
        self.w().send(Pdu::new(r), true)?;
        if function == 7 {
            for s in self.shared.sessions().values() {
                let _ = s.stream.shutdown(std::net::Shutdown::Both);
            }
            return Ok(Next::Close("TARGET COLD RESET".into()));
        }
        Ok(Next::Continue)
    }

    /// Drops collection state of aborted writes; they never reach the executor.
    pub(super) fn forget_writes(&mut self, lun: Option<u64>) {
        let gone: Vec<u32> = self
            .writes
            .iter()
            .filter(|(_, p)| lun.is_none_or(|l| l == p.task.lun))
            .map(|(&itt, _)| itt)
            .collect();
        for itt in gone {
            self.forget_write(itt);
        }
    }

    pub(super) fn forget_write(&mut self, itt: u32) {
        if let Some(p) = self.writes.remove(&itt) {
            self.drop_write(p);
        }
    }

    /// Waits (bounded) until this session's aborted tasks have left the executor.
    pub(super) fn wait_for(&self, done: impl Fn(&HashMap<u32, TaskEntry>) -> bool) {
        self.session.wait_until(Instant::now() + ABORT_WAIT, done);
    }
}

/// How long a task management function (or PREEMPT AND ABORT) waits for the tasks it
/// aborted to end: a write still collecting its Data-Out leaves only when its data has come
/// or `data_out_timeout` ends it.
const ABORT_WAIT: Duration = Duration::from_secs(30);

impl Session {
    /// Waits until `done` holds for the session's tasks, or `deadline`.
    fn wait_until(&self, deadline: Instant, done: impl Fn(&HashMap<u32, TaskEntry>) -> bool) {
        let mut tasks = self.tasks();
        while !done(&tasks) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(initiator = %self.initiator, "aborted tasks still running after {ABORT_WAIT:?}");
                return;
            }
            tasks = self
                .task_done
                .wait_timeout(tasks, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// PREEMPT AND ABORT: the sessions of the preempted nexuses lose their tasks on the LUN as
/// if each had sent ABORT TASK SET. Their running commands finish unanswered, queued ones
/// never run; the PERSISTENT RESERVE OUT waits for them (SPC-4 5.13.11.4.4).
impl TaskAborter for Shared {
    fn abort_task_sets(&self, lun: u64, preempted: &dyn Fn(&Nexus) -> bool) {
        let sessions: Vec<Arc<Session>> = self
            .sessions()
            .values()
            .filter(|s| preempted(&s.nexus))
            .cloned()
            .collect();
        for s in &sessions {
            tracing::info!(initiator = %s.initiator, lun, "PREEMPT AND ABORT: task set aborted");
            abort_all(s, Some(lun));
        }
        let deadline = Instant::now() + ABORT_WAIT;
        for s in &sessions {
            s.wait_until(deadline, |tasks| tasks.values().all(|t| t.lun != lun));
        }
    }
}
