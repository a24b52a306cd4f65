//! The command-level types every transport, the dispatcher, the devices and the copy
//! manager share: the I_T nexus a command came over, how a command ended as a transport
//! returns it, and the abort a transport sets on a task (SAM-5's nexus, command and task
//! management, below every front end and the copy manager; they import only the codec).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::scsi::{Sense, Status};

/// The initiator name of commands from the local command line (and of the inventory's
/// `allow` entry that admits them).
pub const LOCAL_INITIATOR: &str = "local";

/// An I_T nexus: who sent a command, and over which session. RECEIVE COPY RESULTS list
/// identifiers are scoped to it; the inventory's `allow` lists match `initiator`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Nexus {
    /// The initiator port name (iSCSI initiator name, FC WWPN text, or "local" for the CLI).
    pub initiator: String,
    /// Distinguishes sessions of the same initiator (iSCSI ISID + TSIH).
    pub session: u64,
}

impl Nexus {
    /// The nexus of the local command line.
    pub fn local() -> Self {
        Self {
            initiator: LOCAL_INITIATOR.into(),
            session: 0,
        }
    }

    /// The ISID of an iSCSI nexus (an initiator named `iqn.…`, `eui.…` or `naa.…`): the top
    /// 48 bits of `session`. With the initiator name it is the initiator port (the iSCSI
    /// TransportID `NAME,i,0xISID`), which persistent reservations are held by; the TSIH
    /// below it changes when a session is reinstated, the port does not. `None` for other
    /// transports, whose initiator name is the port.
    pub fn isid(&self) -> Option<[u8; 6]> {
        let prefix = self.initiator.get(..4)?.to_ascii_lowercase();
        if !matches!(prefix.as_str(), "iqn." | "eui." | "naa.") {
            return None;
        }
        let [a, b, c, d, e, f, _, _] = self.session.to_be_bytes();
        Some([a, b, c, d, e, f])
    }
}

/// How a command ended, as a transport returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandResult {
    pub status: Status,
    /// Sense bytes (CHECK CONDITION only).
    pub sense: Vec<u8>,
    /// Data-In bytes (RECEIVE COPY RESULTS).
    pub data_in: Vec<u8>,
    /// Data-out bytes the command did not consume (the device's residual). For data-in,
    /// what `data_in` lacks of the expected length says it.
    pub residual: usize,
    /// Bytes the CDB asked to transfer beyond the expected length (the device's
    /// overflow); the transport reports it as residual overflow (RFC 7143 11.4.5).
    pub overflow: usize,
}

impl CommandResult {
    pub fn good(data_in: Vec<u8>) -> Self {
        Self {
            status: Status::GOOD,
            sense: Vec::new(),
            data_in,
            residual: 0,
            overflow: 0,
        }
    }

    pub fn check_condition(sense: &Sense) -> Self {
        Self {
            status: Status::CHECK_CONDITION,
            sense: sense.encode(),
            data_in: Vec::new(),
            residual: 0,
            overflow: 0,
        }
    }
}

/// Set by a transport when the task running an EXTENDED COPY is aborted (ABORT TASK, ABORT
/// TASK SET, LUN RESET, TARGET WARM RESET, session loss, shutdown).
#[derive(Clone, Debug, Default)]
pub struct Abort {
    own: Arc<AtomicBool>,
    /// The task's abort, for one made by [`Abort::child`].
    parent: Option<Arc<AtomicBool>>,
}

impl Abort {
    pub fn new() -> Self {
        Self::default()
    }

    /// An abort that also fires when this one does, but whose own firing leaves this one
    /// alone: an operator's abort of a copy stops it (COPY ABORTED, answered), while the
    /// task itself was not aborted (an aborted task gets no answer of its own).
    pub fn child(&self) -> Self {
        Self {
            own: Arc::default(),
            parent: Some(self.own.clone()),
        }
    }

    pub fn abort(&self) {
        self.own.store(true, Ordering::Release);
    }

    pub fn is_aborted(&self) -> bool {
        self.own.load(Ordering::Acquire)
            || self
                .parent
                .as_ref()
                .is_some_and(|p| p.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::Abort;

    #[test]
    fn a_child_abort_fires_with_its_parent_but_not_the_reverse() {
        let task = Abort::new();
        let copy = task.child();
        copy.abort();
        assert!(
            copy.is_aborted() && !task.is_aborted(),
            "the operator's abort"
        );
        let task = Abort::new();
        let copy = task.child();
        task.abort();
        assert!(copy.is_aborted(), "the task's abort reaches the copy");
    }
}
