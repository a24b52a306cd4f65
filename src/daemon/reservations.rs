//! Persistent reservations across restarts and reloads: APTPL state kept per device in the
//! state directory, and handed from a device a reload replaced to its successor.

use std::sync::Arc;

use super::DaemonConfig;
use crate::device::inventory::Inventory;

/// Restores each emulated device's APTPL reservations from `reservations/NAME.toml` in the
/// state directory, and saves them there from now on. An unreadable file is logged and the
/// device starts without reservations.
pub(super) fn persist_reservations(config: &DaemonConfig, inventory: &Inventory) {
    let dir = config
        .state_dir
        .clone()
        .unwrap_or_else(crate::state::state_dir)
        .join("reservations");
    for d in inventory.devices() {
        if let Some(r) = d.device.reservations() {
            let path = dir.join(format!("{}.toml", d.config.name));
            match r.persist_to(path.clone()) {
                Ok(()) if r.snapshot().aptpl => {
                    tracing::info!(device = %d.config.name, path = %path.display(), "persistent reservations restored")
                }
                Ok(()) => {}
                Err(e) => tracing::error!(
                    device = %d.config.name,
                    path = %path.display(),
                    "persistent reservations not restored: {e}"
                ),
            }
        }
    }
}

/// A reload reopened a device (its entry changed): the logical unit keeps its reservations.
pub(super) fn carry_reservations(old: &Inventory, new: &Inventory) {
    for d in new.devices() {
        let Some(before) = old.by_name(&d.config.name) else {
            continue;
        };
        if Arc::ptr_eq(&before.device, &d.device) {
            continue;
        }
        if let (Some(r), Some(was)) = (d.device.reservations(), before.device.reservations()) {
            r.take_over(was);
        }
    }
}
