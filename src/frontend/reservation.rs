//! The dispatcher's reservation hook: a command of an I_T nexus to a logical unit with
//! reservations ([`crate::device::ScsiDevice::reservations`]) is screened before the device
//! sees it (`device::reservation`); task management and nexus loss release SPC-2
//! reservations. Kept apart from `dispatch.rs` so the dispatcher calls it in one place per
//! event.

use std::sync::Arc;

use crate::copy::{CommandResult, Nexus};
use crate::device::reservation::Outcome;
use crate::device::ScsiDevice;
use crate::scsi::Status;

/// `Some(result)` when the command ends at the logical unit's reservations (a unit
/// attention, PERSISTENT RESERVE IN/OUT, RESERVE/RELEASE, RESERVATION CONFLICT).
pub fn screen(
    device: &dyn ScsiDevice,
    nexus: &Nexus,
    cdb: &[u8],
    data_out: &[u8],
) -> Option<CommandResult> {
    let outcome = device.reservations()?.screen(nexus, cdb, data_out)?;
    Some(match outcome {
        Outcome::Good(data) => CommandResult::good(data),
        Outcome::Check(sense) => CommandResult::check_condition(&sense),
        Outcome::Conflict => CommandResult {
            status: Status::RESERVATION_CONFLICT,
            ..CommandResult::default()
        },
    })
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
