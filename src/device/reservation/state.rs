//! The reservation state of one logical unit and what each PERSISTENT RESERVE OUT service
//! action does to it (SPC-4 5.13.5-5.13.11), RESERVE and RELEASE with compatible reservation
//! handling (SPC-4 5.13.3, CRH = 1), and the PERSISTENT RESERVE IN answers (6.15).
//!
//! No I/O and no locking here: [`super::Reservations`] holds this behind its mutex and
//! persists it when APTPL says so.

use crate::scsi::persistent_reservation::{
    self as pr, FullStatus, PrInAction, PrOutAction, PrOutCdb, PrOutParameters,
    RegisterAndMoveParameters, ReservationType, TransportId,
};
use crate::scsi::{Asc, Sense};

/// The relative target port identifier of every path to a logical unit of this daemon: one
/// SCSI target port (the iSCSI target portal group 1; a TCMU backstore and the copy manager
/// reach the same logical unit server).
pub const TARGET_PORT: u16 = 1;
/// The most I_T nexuses registered at once (more: INSUFFICIENT REGISTRATION RESOURCES).
pub const MAX_REGISTRATIONS: usize = 256;
/// The most unit attentions kept pending for all initiator ports together.
const MAX_ATTENTIONS: usize = 1024;

/// An initiator port: its name and, for iSCSI, the ISID of its sessions (the I_T nexus is
/// this port and [`TARGET_PORT`]). A registration made through a TransportID without an
/// ISID stands for every port of that initiator name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InitiatorPort {
    pub name: String,
    pub isid: Option<[u8; 6]>,
}

impl InitiatorPort {
    /// Whether this port (of a registration) stands for `port` (of a command).
    pub fn covers(&self, port: &Self) -> bool {
        self.name.eq_ignore_ascii_case(&port.name)
            && (self.isid.is_none() || self.isid == port.isid)
    }

    fn same(&self, port: &Self) -> bool {
        self.name.eq_ignore_ascii_case(&port.name) && self.isid == port.isid
    }

    pub fn transport_id(&self) -> TransportId {
        TransportId {
            name: self.name.clone(),
            isid: self.isid,
        }
    }
}

impl From<TransportId> for InitiatorPort {
    fn from(t: TransportId) -> Self {
        Self {
            name: t.name,
            isid: t.isid,
        }
    }
}

/// One registered I_T nexus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    pub port: InitiatorPort,
    pub key: u64,
    pub all_tg_pt: bool,
}

/// The persistent reservation: its type, and the registered I_T nexus holding it (every
/// registrant holds an all-registrants type).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub holder: InitiatorPort,
    pub kind: ReservationType,
}

/// How a command handled here ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// GOOD, with this data-in.
    Good(Vec<u8>),
    Check(Sense),
    Conflict,
}

impl Outcome {
    fn good() -> Self {
        Self::Good(Vec::new())
    }
}

impl From<crate::scsi::DecodeError> for Outcome {
    fn from(e: crate::scsi::DecodeError) -> Self {
        Self::Check(Sense::from(e))
    }
}

/// The state of one logical unit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub generation: u32,
    /// In the order they were made (READ KEYS order).
    pub registrations: Vec<Registration>,
    pub reservation: Option<Held>,
    /// An SPC-2 RESERVE: the initiator port and the session (released by I_T nexus loss).
    pub spc2: Option<(InitiatorPort, u64)>,
    /// Unit attentions pending for initiator ports, oldest first.
    pub attention: Vec<(InitiatorPort, Asc)>,
    /// Activate persist through power loss: the state is saved after every change.
    pub aptpl: bool,
    /// I_T nexuses (port and session) preventing medium removal (PREVENT ALLOW MEDIUM
    /// REMOVAL, SPC-4 6.13): cleared by ALLOW from the same nexus, its loss, or a reset.
    pub prevent: Vec<(InitiatorPort, u64)>,
    /// The initiator ports the PREEMPT AND ABORT just run preempted: the tasks of their
    /// I_T nexuses on this logical unit are to be aborted
    /// ([`super::Reservations::screen_preempting`] takes them; never saved).
    pub preempted: Vec<InitiatorPort>,
}

fn invalid_parameter(offset: usize) -> Outcome {
    Outcome::from(crate::scsi::DecodeError::invalid(offset))
}

impl State {
    /// Whether nothing here can affect a command (the fast path skips the lock).
    pub fn is_quiet(&self) -> bool {
        self.registrations.is_empty()
            && self.spc2.is_none()
            && self.attention.is_empty()
            && self.prevent.is_empty()
    }

    /// The registration of `port`: its own, else one made without an ISID that covers it.
    pub fn registration(&self, port: &InitiatorPort) -> Option<usize> {
        self.registrations
            .iter()
            .position(|r| r.port.same(port))
            .or_else(|| self.registrations.iter().position(|r| r.port.covers(port)))
    }

    /// Whether the registration at `index` holds the reservation.
    fn holds(&self, index: usize) -> bool {
        match (&self.reservation, self.registrations.get(index)) {
            (Some(h), Some(r)) => h.kind.all_registrants() || h.holder.same(&r.port),
            _ => false,
        }
    }

    /// Whether `port` is a holder of the persistent reservation.
    pub fn is_holder(&self, port: &InitiatorPort) -> bool {
        self.registration(port).is_some_and(|i| self.holds(i))
    }

    /// Queues `asc` for every registrant's port but `except`'s (deduplicated, bounded).
    fn attention_to_others(&mut self, except: &InitiatorPort, asc: Asc) {
        let ports: Vec<InitiatorPort> = self
            .registrations
            .iter()
            .filter(|r| !r.port.same(except))
            .map(|r| r.port.clone())
            .collect();
        for p in ports {
            self.attention_to(p, asc);
        }
    }

    pub fn attention_to(&mut self, port: InitiatorPort, asc: Asc) {
        if port.name.eq_ignore_ascii_case(super::COPY_MANAGER_PORT) {
            // The copy manager takes no unit attentions (its port is matched as every
            // initiator name is: without regard to case).
            return;
        }
        if self
            .attention
            .iter()
            .any(|(p, a)| p.same(&port) && *a == asc)
        {
            return;
        }
        if self.attention.len() >= MAX_ATTENTIONS {
            self.attention.remove(0);
        }
        self.attention.push((port, asc));
    }

    /// Takes the oldest unit attention pending for `port`.
    pub fn take_attention(&mut self, port: &InitiatorPort) -> Option<Asc> {
        let i = self.attention.iter().position(|(p, _)| p.covers(port))?;
        Some(self.attention.remove(i).1)
    }

    fn bump(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    /// Removes registration `index`; releases the reservation if it held it alone (SPC-4
    /// 5.13.11.2.3, with RESERVATIONS RELEASED to the others for a registrants-only type)
    /// or was the last registrant of an all-registrants type.
    fn unregister(&mut self, index: usize) {
        let holds = self.holds(index);
        let removed = self.registrations.remove(index);
        let Some(held) = self.reservation.clone() else {
            return;
        };
        if held.kind.all_registrants() {
            if self.registrations.is_empty() {
                self.reservation = None;
            }
        } else if holds {
            self.reservation = None;
            if held.kind.admits_registrants() {
                self.attention_to_others(&removed.port, Asc::RESERVATIONS_RELEASED);
            }
        }
    }

    /// PERSISTENT RESERVE OUT from `port`: the CDB and its parameter list.
    pub fn reserve_out(&mut self, port: &InitiatorPort, cdb: &PrOutCdb, data: &[u8]) -> Outcome {
        if cdb.action == PrOutAction::RegisterAndMove {
            return match RegisterAndMoveParameters::decode(data, cdb.parameter_list_length) {
                Ok(p) => self.register_and_move(port, &p),
                Err(e) => e.into(),
            };
        }
        let register = cdb.action == PrOutAction::Register;
        let p = match PrOutParameters::decode(data, cdb.parameter_list_length, register) {
            Ok(p) => p,
            Err(e) => return e.into(),
        };
        let me = self.registration(port);
        match cdb.action {
            PrOutAction::Register | PrOutAction::RegisterAndIgnoreExistingKey => {
                let ignore = cdb.action == PrOutAction::RegisterAndIgnoreExistingKey;
                self.register(port, me, &p, ignore)
            }
            action => {
                let Some(me) = me else {
                    return Outcome::Conflict;
                };
                if self.registrations.get(me).map(|r| r.key) != Some(p.reservation_key) {
                    return Outcome::Conflict;
                }
                match action {
                    PrOutAction::Reserve => self.reserve(me, cdb),
                    PrOutAction::Release => self.release(me, cdb),
                    PrOutAction::Clear => self.clear(me),
                    _ => self.preempt(me, cdb, &p),
                }
            }
        }
    }

    /// REGISTER / REGISTER AND IGNORE EXISTING KEY (5.13.7, Tables 51 and 52).
    fn register(
        &mut self,
        port: &InitiatorPort,
        me: Option<usize>,
        p: &PrOutParameters,
        ignore: bool,
    ) -> Outcome {
        let new_key = p.service_action_reservation_key;
        match me {
            None => {
                if !ignore && p.reservation_key != 0 {
                    return Outcome::Conflict;
                }
                if new_key == 0 {
                    return Outcome::good();
                }
                let mut ports = vec![port.clone()];
                for t in &p.transport_ids {
                    let other = InitiatorPort::from(t.clone());
                    if self.registration(&other).is_some() {
                        // SPC-4 5.13.7.2: a TransportID naming a registered I_T nexus.
                        return invalid_parameter(24);
                    }
                    if !ports.iter().any(|q| q.same(&other)) {
                        ports.push(other);
                    }
                }
                if self.registrations.len() + ports.len() > MAX_REGISTRATIONS {
                    return Outcome::Check(Sense::illegal_request(
                        Asc::INSUFFICIENT_REGISTRATION_RESOURCES,
                    ));
                }
                for port in ports {
                    self.registrations.push(Registration {
                        port,
                        key: new_key,
                        all_tg_pt: p.all_tg_pt,
                    });
                }
            }
            Some(i) => {
                let Some(r) = self.registrations.get_mut(i) else {
                    return Outcome::Conflict;
                };
                if !ignore && r.key != p.reservation_key {
                    return Outcome::Conflict;
                }
                if p.spec_i_pt {
                    return invalid_parameter(20);
                }
                if new_key == 0 {
                    self.unregister(i);
                } else {
                    r.key = new_key;
                }
            }
        }
        self.aptpl = p.aptpl;
        self.bump();
        Outcome::good()
    }

    /// RESERVE (5.13.9).
    fn reserve(&mut self, me: usize, cdb: &PrOutCdb) -> Outcome {
        let kind = match cdb.reservation_type() {
            Ok(k) => k,
            Err(e) => return e.into(),
        };
        match &self.reservation {
            Some(h) if self.holds(me) && h.kind == kind => Outcome::good(),
            Some(_) => Outcome::Conflict,
            None => {
                let Some(r) = self.registrations.get(me) else {
                    return Outcome::Conflict;
                };
                self.reservation = Some(Held {
                    holder: r.port.clone(),
                    kind,
                });
                Outcome::good()
            }
        }
    }

    /// RELEASE (5.13.10).
    fn release(&mut self, me: usize, cdb: &PrOutCdb) -> Outcome {
        let Some(held) = self.reservation.clone() else {
            return Outcome::good();
        };
        if !self.holds(me) {
            return Outcome::good();
        }
        if cdb.scope != 0 || cdb.type_code != held.kind.code() {
            return Outcome::Check(Sense::illegal_request(
                Asc::INVALID_RELEASE_OF_PERSISTENT_RESERVATION,
            ));
        }
        self.reservation = None;
        if held.kind.admits_registrants() {
            if let Some(r) = self.registrations.get(me).cloned() {
                self.attention_to_others(&r.port, Asc::RESERVATIONS_RELEASED);
            }
        }
        Outcome::good()
    }

    /// CLEAR (5.13.11.1): RESERVATIONS PREEMPTED to every other registrant.
    fn clear(&mut self, me: usize) -> Outcome {
        if let Some(r) = self.registrations.get(me).cloned() {
            self.attention_to_others(&r.port, Asc::RESERVATIONS_PREEMPTED);
        }
        self.registrations.clear();
        self.reservation = None;
        self.bump();
        Outcome::good()
    }

    /// PREEMPT and PREEMPT AND ABORT (5.13.11.4). The preempted nexuses get REGISTRATIONS
    /// PREEMPTED on their next command; for PREEMPT AND ABORT their ports are left in
    /// [`State::preempted`], for the front ends to abort their tasks (5.13.11.4.4: as
    /// ABORT TASK SET from each would).
    fn preempt(&mut self, me: usize, cdb: &PrOutCdb, p: &PrOutParameters) -> Outcome {
        let Some(mine) = self.registrations.get(me).cloned() else {
            return Outcome::Conflict;
        };
        let target = p.service_action_reservation_key;
        let held = self.reservation.clone();
        let preempts_reservation = match &held {
            Some(h) if h.kind.all_registrants() => target == 0,
            Some(h) => self
                .registration(&h.holder)
                .and_then(|i| self.registrations.get(i))
                .is_some_and(|r| r.key == target),
            None => false,
        };
        if !preempts_reservation && target == 0 {
            return invalid_parameter(8);
        }
        let new_kind = if preempts_reservation {
            match cdb.reservation_type() {
                Ok(k) => Some(k),
                Err(e) => return e.into(),
            }
        } else {
            None
        };
        // The registrations removed: those with the key (every other one for an
        // all-registrants type preempted with key 0), never the issuing I_T nexus.
        let all = held.as_ref().is_some_and(|h| h.kind.all_registrants()) && target == 0;
        let removed: Vec<InitiatorPort> = self
            .registrations
            .iter()
            .filter(|r| !r.port.same(&mine.port) && (all || r.key == target))
            .map(|r| r.port.clone())
            .collect();
        if !preempts_reservation && removed.is_empty() {
            return Outcome::Conflict;
        }
        self.registrations
            .retain(|r| !removed.iter().any(|q| q.same(&r.port)));
        if cdb.action == PrOutAction::PreemptAndAbort {
            self.preempted.clone_from(&removed);
        }
        for port in removed {
            self.attention_to(port, Asc::REGISTRATIONS_PREEMPTED);
        }
        if let (Some(kind), Some(old)) = (new_kind, held) {
            if old.kind != kind {
                self.attention_to_others(&mine.port, Asc::RESERVATIONS_RELEASED);
            }
            self.reservation = Some(Held {
                holder: mine.port,
                kind,
            });
        }
        self.bump();
        Outcome::good()
    }

    /// REGISTER AND MOVE (5.13.8).
    fn register_and_move(
        &mut self,
        port: &InitiatorPort,
        p: &RegisterAndMoveParameters,
    ) -> Outcome {
        let Some(me) = self.registration(port) else {
            return Outcome::Conflict;
        };
        let Some(mine) = self.registrations.get(me).cloned() else {
            return Outcome::Conflict;
        };
        if mine.key != p.reservation_key {
            return Outcome::Conflict;
        }
        if p.service_action_reservation_key == 0 {
            return invalid_parameter(8);
        }
        if p.relative_target_port != TARGET_PORT {
            return invalid_parameter(18);
        }
        let destination = InitiatorPort::from(p.transport_id.clone());
        if destination.covers(&mine.port) || mine.port.covers(&destination) {
            return invalid_parameter(24);
        }
        let Some(held) = self.reservation.clone() else {
            return Outcome::Conflict;
        };
        if !self.holds(me) || held.kind.all_registrants() {
            return Outcome::Conflict;
        }
        match self
            .registrations
            .iter_mut()
            .find(|r| r.port.same(&destination))
        {
            Some(r) => r.key = p.service_action_reservation_key,
            None => {
                if self.registrations.len() >= MAX_REGISTRATIONS {
                    return Outcome::Check(Sense::illegal_request(
                        Asc::INSUFFICIENT_REGISTRATION_RESOURCES,
                    ));
                }
                self.registrations.push(Registration {
                    port: destination.clone(),
                    key: p.service_action_reservation_key,
                    all_tg_pt: false,
                });
            }
        }
        self.reservation = Some(Held {
            holder: destination,
            kind: held.kind,
        });
        if p.unreg {
            if let Some(i) = self.registration(port) {
                self.registrations.remove(i);
            }
        }
        self.aptpl = p.aptpl;
        self.bump();
        Outcome::good()
    }

    /// PERSISTENT RESERVE IN (6.15), untruncated.
    pub fn reserve_in(&self, action: PrInAction) -> Vec<u8> {
        match action {
            PrInAction::ReadKeys => {
                let keys: Vec<u64> = self.registrations.iter().map(|r| r.key).collect();
                pr::read_keys_data(self.generation, &keys)
            }
            PrInAction::ReadReservation => {
                let held = self.reservation.as_ref().map(|h| {
                    let key = self
                        .registration(&h.holder)
                        .and_then(|i| self.registrations.get(i))
                        .map_or(0, |r| r.key);
                    (key, h.kind)
                });
                pr::read_reservation_data(self.generation, held)
            }
            PrInAction::ReportCapabilities => pr::report_capabilities_data(self.aptpl),
            PrInAction::ReadFullStatus => {
                let entries: Vec<FullStatus> = self
                    .registrations
                    .iter()
                    .enumerate()
                    .map(|(i, r)| FullStatus {
                        key: r.key,
                        all_tg_pt: r.all_tg_pt,
                        holds: self
                            .holds(i)
                            .then(|| self.reservation.as_ref().map(|h| h.kind))
                            .flatten(),
                        relative_target_port: TARGET_PORT,
                        transport_id: r.port.transport_id(),
                    })
                    .collect();
                pr::read_full_status_data(self.generation, &entries)
            }
        }
    }

    /// SPC-2 RESERVE or RELEASE from `port` on `session`, with compatible reservation
    /// handling (SPC-4 5.13.3): from a persistent reservation holder, or a registrant under a
    /// registrants-only or all-registrants type, GOOD and nothing changes; from anyone else
    /// while registrations exist, RESERVATION CONFLICT.
    pub fn spc2(&mut self, port: &InitiatorPort, session: u64, reserve: bool) -> Outcome {
        if let Some(i) = self.registration(port) {
            let registrant_passes = self
                .reservation
                .as_ref()
                .is_some_and(|h| h.kind.admits_registrants());
            if self.holds(i) || registrant_passes {
                return Outcome::good();
            }
            return Outcome::Conflict;
        }
        if !self.registrations.is_empty() {
            return Outcome::Conflict;
        }
        match (&self.spc2, reserve) {
            (Some((holder, _)), true) if !holder.same(port) => Outcome::Conflict,
            (_, true) => {
                self.spc2 = Some((port.clone(), session));
                Outcome::good()
            }
            (Some((holder, _)), false) if holder.same(port) => {
                self.spc2 = None;
                Outcome::good()
            }
            (_, false) => Outcome::good(),
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
