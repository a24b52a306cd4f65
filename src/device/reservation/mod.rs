//! Reservations of a logical unit: SPC-4 persistent reservations and SPC-2 RESERVE/RELEASE,
//! checked before the device sees a command, as a SCSI target's core does (the device
//! answers CDBs and does not know who sends them; this knows the I_T nexus).
//!
//! One [`Reservations`] belongs to each emulated device (it is the logical unit's state, so
//! every path to the device shares it: the iSCSI LUN, a TCMU backstore, the copy manager).
//! The front end's dispatcher calls [`Reservations::screen`] with the nexus of every
//! command; the copy manager calls it (and [`Reservations::check`] for its fast data path)
//! as the copy manager's own I_T nexus ([`copy_manager_port`]).
//!
//! `screen` does, in order: a pending unit attention of this logical unit for the
//! initiator port (RESERVATIONS PREEMPTED 2A/03, RESERVATIONS RELEASED 2A/04,
//! REGISTRATIONS PREEMPTED 2A/05; INQUIRY and REQUEST SENSE neither get nor clear it); an
//! SPC-2 reservation of another I_T nexus (RESERVATION CONFLICT on all but the few commands
//! SPC-2 lets through, and on every PERSISTENT RESERVE command from anyone); PERSISTENT
//! RESERVE IN/OUT, RESERVE and RELEASE, answered here; then the conflict tables
//! ([`conflict`]) for a persistent reservation held by another I_T nexus. It also keeps,
//! per I_T nexus, who prevents medium removal (PREVENT ALLOW MEDIUM REMOVAL, passed on to
//! the device), and refuses START STOP UNIT's eject or load with ILLEGAL REQUEST, MEDIUM
//! REMOVAL PREVENTED (05/53/02) while anyone does.
//!
//! With APTPL set by the last REGISTER, REGISTER AND IGNORE EXISTING KEY or REGISTER AND
//! MOVE, registrations and the reservation are saved after every change to the file given
//! to [`Reservations::persist_to`] ([`store`]) and restored from it when the daemon starts.

pub mod conflict;
pub mod state;
pub mod store;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::command::{Command, Nexus};
use crate::scsi::persistent_reservation::{PrInCdb, PrOutCdb, Spc2Cdb};
use crate::scsi::{Asc, DeviceClass, Opcode, Sense, SenseKey};

pub use conflict::Class;
pub use state::{Held, InitiatorPort, Outcome, Registration, State};

/// The initiator name of the copy manager's own I_T nexus (its reads and writes of the
/// devices it copies between, and segments 14h/15h).
pub const COPY_MANAGER_PORT: &str = "xcopyd:copy-manager";

/// The copy manager's initiator port.
pub fn copy_manager_port() -> InitiatorPort {
    InitiatorPort {
        name: COPY_MANAGER_PORT.into(),
        isid: None,
    }
}

/// The initiator port of an I_T nexus: the iSCSI initiator name and ISID, or the name of
/// another transport's initiator.
pub fn port_of(nexus: &Nexus) -> InitiatorPort {
    InitiatorPort {
        name: nexus.initiator.clone(),
        isid: nexus.isid(),
    }
}

/// The reservation state of one logical unit.
#[derive(Debug)]
pub struct Reservations {
    device: DeviceClass,
    state: Mutex<State>,
    /// Set while [`State::is_quiet`] is false: commands skip the lock otherwise.
    busy: AtomicBool,
    /// Where APTPL state is saved.
    store: Mutex<Option<PathBuf>>,
}

impl Reservations {
    /// The state of a logical unit of `device` class (which conflict table applies).
    pub fn new(device: DeviceClass) -> Self {
        Self {
            device,
            state: Mutex::new(State::default()),
            busy: AtomicBool::new(false),
            store: Mutex::new(None),
        }
    }

    /// Saves APTPL state to `path` from now on, restoring what it holds first (a daemon
    /// start). A missing file is no state; an unreadable one is an error (logged by the
    /// caller; the logical unit then starts without reservations).
    pub fn persist_to(&self, path: PathBuf) -> Result<(), store::StoreError> {
        let restored = store::load(&path);
        *self.store.lock().unwrap_or_else(PoisonError::into_inner) = Some(path);
        if let Some(saved) = restored? {
            let mut s = self.lock();
            *s = saved;
            self.settle(&s);
        }
        Ok(())
    }

    /// Takes over the state of `other`, and where it is saved (the same logical unit
    /// reopened by a configuration reload).
    pub fn take_over(&self, other: &Self) {
        let store = other
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        *self.store.lock().unwrap_or_else(PoisonError::into_inner) = store;
        let theirs = other.lock().clone();
        let mut s = self.lock();
        *s = theirs;
        self.settle(&s);
    }

    /// A copy of the state (tests, diagnostics).
    pub fn snapshot(&self) -> State {
        self.lock().clone()
    }

    /// Screens one command of `nexus` before the device sees it: `Some` when it ends here
    /// (a unit attention, a reservation command, a conflict), `None` to send it on.
    pub fn screen(&self, nexus: &Nexus, command: &Command, data_out: &[u8]) -> Option<Outcome> {
        self.screen_preempting(nexus, command, data_out)
            .map(|(outcome, _)| outcome)
    }

    /// [`Reservations::screen`], and the initiator ports a PREEMPT AND ABORT it ran
    /// preempted (empty for anything else): the front ends abort the tasks of their I_T
    /// nexuses on this logical unit before its GOOD leaves.
    pub fn screen_preempting(
        &self,
        nexus: &Nexus,
        command: &Command,
        data_out: &[u8],
    ) -> Option<(Outcome, Vec<InitiatorPort>)> {
        let (op, cdb) = (command.op, command.cdb);
        let own = matches!(
            op,
            Opcode::PERSISTENT_RESERVE_IN
                | Opcode::PERSISTENT_RESERVE_OUT
                | Opcode::RESERVE_6
                | Opcode::RELEASE_6
                | Opcode::RESERVE_10
                | Opcode::RELEASE_10
        );
        let prevent = op == Opcode::PREVENT_ALLOW_MEDIUM_REMOVAL;
        if !own && !prevent && !self.busy.load(Ordering::Acquire) {
            return None;
        }
        let port = port_of(nexus);
        let mut s = self.lock();
        if op != Opcode::INQUIRY && op != Opcode::REQUEST_SENSE {
            if let Some(asc) = s.take_attention(&port) {
                self.settle(&s);
                let ua = Outcome::Check(Sense::new(SenseKey::UNIT_ATTENTION, asc));
                return Some((ua, Vec::new()));
            }
        }
        if let Some((holder, _)) = &s.spc2 {
            let pr = op == Opcode::PERSISTENT_RESERVE_IN || op == Opcode::PERSISTENT_RESERVE_OUT;
            if pr || (!holder.covers(&port) && !conflict::passes_spc2(cdb)) {
                tracing::debug!(initiator = %nexus.initiator, ?op, "SPC-2 reservation conflict");
                return Some((Outcome::Conflict, Vec::new()));
            }
        }
        let mut preempted = Vec::new();
        let outcome = match op {
            Opcode::PERSISTENT_RESERVE_IN => Some(match PrInCdb::decode(cdb) {
                Ok(c) => {
                    let mut data = s.reserve_in(c.action);
                    data.truncate(usize::from(c.allocation_length));
                    Outcome::Good(data)
                }
                Err(e) => e.into(),
            }),
            Opcode::PERSISTENT_RESERVE_OUT => Some(match PrOutCdb::decode(cdb) {
                Ok(c) => {
                    let before = s.clone();
                    let outcome = s.reserve_out(&port, &c, data_out);
                    preempted = std::mem::take(&mut s.preempted);
                    if s.aptpl || before.aptpl {
                        self.save(&s, &before);
                    }
                    outcome
                }
                Err(e) => e.into(),
            }),
            Opcode::RESERVE_6 | Opcode::RELEASE_6 | Opcode::RESERVE_10 | Opcode::RELEASE_10 => {
                Some(match Spc2Cdb::decode(cdb) {
                    Ok(c) => s.spc2(&port, nexus.session, c == Spc2Cdb::Reserve),
                    Err(e) => e.into(),
                })
            }
            _ if self.conflict(&s, &port, cdb) => Some(Outcome::Conflict),
            Opcode::PREVENT_ALLOW_MEDIUM_REMOVAL => {
                prevention(&mut s, &port, nexus.session, cdb);
                None
            }
            Opcode::START_STOP_UNIT if ejects(cdb) && !s.prevent.is_empty() => Some(
                Outcome::Check(Sense::illegal_request(Asc::MEDIUM_REMOVAL_PREVENTED)),
            ),
            _ => None,
        };
        match &outcome {
            Some(o @ (Outcome::Conflict | Outcome::Check(_))) => {
                tracing::debug!(initiator = %nexus.initiator, ?op, outcome = ?o, "reservations: refused");
            }
            Some(_) => tracing::debug!(initiator = %nexus.initiator, ?op, "reservations: done"),
            None => {}
        }
        if !preempted.is_empty() {
            tracing::info!(initiator = %nexus.initiator, ?preempted, "PREEMPT AND ABORT: the preempted nexuses' tasks are aborted");
        }
        self.settle(&s);
        outcome.map(|o| (o, preempted))
    }

    /// Whether a command `cdb` from `port` conflicts with the reservations (no unit
    /// attention is taken; the copy manager's reads and writes).
    pub fn check(&self, port: &InitiatorPort, cdb: &[u8]) -> bool {
        if !self.busy.load(Ordering::Acquire) {
            return false;
        }
        let s = self.lock();
        if let Some((holder, _)) = &s.spc2 {
            if !holder.covers(port) && !conflict::passes_spc2(cdb) {
                return true;
            }
        }
        self.conflict(&s, port, cdb)
    }

    /// I_T nexus loss (logout, connection loss, session reinstatement): an SPC-2 reservation
    /// of that session is released (SPC-2 5.5.1).
    pub fn nexus_lost(&self, nexus: &Nexus) {
        let port = port_of(nexus);
        let mut s = self.lock();
        if s.spc2
            .as_ref()
            .is_some_and(|(p, session)| p.covers(&port) && *session == nexus.session)
        {
            s.spc2 = None;
        }
        s.prevent
            .retain(|(p, session)| !(p.covers(&port) && *session == nexus.session));
        self.settle(&s);
    }

    /// LOGICAL UNIT RESET and target resets: SPC-2 reservations and medium removal
    /// prevention are released; persistent reservations are not (SPC-4 5.13.1).
    pub fn reset(&self) {
        let mut s = self.lock();
        s.spc2 = None;
        s.prevent.clear();
        self.settle(&s);
    }

    /// A persistent reservation of another I_T nexus that `cdb` from `port` conflicts with.
    fn conflict(&self, s: &State, port: &InitiatorPort, cdb: &[u8]) -> bool {
        let Some(held) = &s.reservation else {
            return false;
        };
        if s.is_holder(port) {
            return false;
        }
        let class = conflict::classify(cdb, self.device);
        conflict::conflicts(class, held.kind, s.registration(port).is_some())
    }

    /// Writes APTPL state (or removes it once APTPL is cleared) after a change from
    /// `before`. A failure is logged: the command has already taken effect in memory.
    fn save(&self, s: &State, before: &State) {
        fn persisted(x: &State) -> (u32, &[Registration], Option<&Held>, bool) {
            (
                x.generation,
                &x.registrations,
                x.reservation.as_ref(),
                x.aptpl,
            )
        }
        if persisted(s) == persisted(before) {
            return;
        }
        let path = self
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(path) = path else {
            return;
        };
        let result = if s.aptpl {
            store::save(&path, s)
        } else {
            store::remove(&path)
        };
        if let Err(e) = result {
            tracing::error!(path = %path.display(), "persistent reservations not saved: {e}");
        }
    }

    fn settle(&self, s: &MutexGuard<'_, State>) {
        self.busy.store(!s.is_quiet(), Ordering::Release);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// PREVENT ALLOW MEDIUM REMOVAL from `port` on `session`: PREVENT 01b records the nexus,
/// 00b forgets it (10b and 11b are the device's to refuse).
fn prevention(s: &mut State, port: &InitiatorPort, session: u64, cdb: &[u8]) {
    let same = |(p, x): &(InitiatorPort, u64)| p.covers(port) && *x == session;
    match cdb.get(4).map(|b| b & 0x03) {
        Some(1) if !s.prevent.iter().any(same) => s.prevent.push((port.clone(), session)),
        Some(0) => s.prevent.retain(|e| !same(e)),
        _ => {}
    }
}

/// START STOP UNIT that ejects or loads the medium: LOEJ 1 and POWER CONDITION 0. Both are
/// refused while removal is prevented (a locked tray opens neither way; libiscsi's
/// PreventAllow.Eject asks for the load to fail too).
fn ejects(cdb: &[u8]) -> bool {
    cdb.get(4).is_some_and(|b| b & 0x02 != 0 && b >> 4 == 0)
}
