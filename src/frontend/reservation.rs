//! The dispatcher's reservation hook: a command of an I_T nexus to a logical unit with
//! reservations ([`crate::device::ScsiDevice::reservations`]) is screened before the device
//! sees it (`device::reservation`); task management and nexus loss release SPC-2
//! reservations; PREEMPT AND ABORT has the front ends ([`TaskAborter`]) abort the
//! preempted nexuses' tasks. Kept apart from `dispatch.rs` so the dispatcher calls it in
//! one place per event.

use std::sync::Arc;

use crate::command::{Command, CommandResult, Nexus};
use crate::device::reservation::{port_of, InitiatorPort, Outcome};
use crate::device::ScsiDevice;
use crate::scsi::Status;

/// A front end's hold on the tasks of the I_T nexuses it serves, for PERSISTENT RESERVE OUT
/// PREEMPT AND ABORT (SPC-4 5.13.11.4.4): the dispatcher that ran it aborts the preempted
/// nexuses' tasks through every front end registered with it.
pub trait TaskAborter: Send + Sync {
    /// Aborts the tasks on `lun` of every I_T nexus `preempted` picks, as an ABORT TASK SET
    /// from each would (they end without a response: TAS is 0 in the Control mode page),
    /// and returns once they have ended, or after a bounded wait.
    fn abort_task_sets(&self, lun: u64, preempted: &dyn Fn(&Nexus) -> bool);
}

/// Aborts, through `aborters`, the tasks on `luns` (the LUN numbers of one logical unit) of
/// the I_T nexuses of the `preempted` initiator ports, but the `issuer`'s own.
pub fn abort_preempted(
    aborters: &[Arc<dyn TaskAborter>],
    luns: &[u64],
    issuer: &Nexus,
    preempted: &[InitiatorPort],
) {
    let picks = |n: &Nexus| {
        n != issuer && {
            let port = port_of(n);
            preempted.iter().any(|p| p.covers(&port))
        }
    };
    for a in aborters {
        for &lun in luns {
            a.abort_task_sets(lun, &picks);
        }
    }
}

/// `Some(result)` when the command ends at the logical unit's reservations (a unit
/// attention, PERSISTENT RESERVE IN/OUT, RESERVE/RELEASE, RESERVATION CONFLICT), with the
/// initiator ports a PREEMPT AND ABORT preempted (whose tasks are to be aborted).
pub fn screen(
    device: &dyn ScsiDevice,
    nexus: &Nexus,
    command: &Command,
    data_out: &[u8],
) -> Option<(CommandResult, Vec<InitiatorPort>)> {
    let (outcome, preempted) = device
        .reservations()?
        .screen_preempting(nexus, command, data_out)?;
    let result = match outcome {
        Outcome::Good(data) => CommandResult::good(data),
        Outcome::Check(sense) => CommandResult::check_condition(&sense),
        Outcome::Conflict => CommandResult {
            status: Status::RESERVATION_CONFLICT,
            ..CommandResult::default()
        },
    };
    Some((result, preempted))
}

/// The I_T nexus is gone: its SPC-2 reservations on `devices` are released.
pub fn nexus_lost<'a>(devices: impl IntoIterator<Item = &'a Arc<dyn ScsiDevice>>, nexus: &Nexus) {
    for r in devices.into_iter().filter_map(|d| d.reservations()) {
        r.nexus_lost(nexus);
    }
}

/// A logical unit reset of `devices` (one, or every LUN for a target reset): their SPC-2
/// reservations go; persistent reservations stay (SPC-4 5.13.1).
pub fn reset<'a>(devices: impl IntoIterator<Item = &'a Arc<dyn ScsiDevice>>) {
    for r in devices.into_iter().filter_map(|d| d.reservations()) {
        r.reset();
    }
}

#[cfg(test)]
#[path = "reservation_tests.rs"]
mod tests;
