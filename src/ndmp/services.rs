//! What every NDMP session of one server shares: the configuration, the inventory (as the
//! daemon holds it now, reloads included), the copy manager, and which devices are open.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use super::config::NdmpConfig;
use super::lu::{Claim, Lu};
use super::message::Error;
use crate::command::Nexus;
use crate::copy::manager::CopyManager;
use crate::copy::CopyService;
use crate::device::inventory::{DeviceConfig, DeviceKind, Inventory, InventoryDevice};
use crate::device::{access, ScsiDevice};
use crate::frontend::dispatch::{Dispatcher, Lun};
use crate::scsi::Limits;

/// The inventory as it is now.
pub type InventorySource = Arc<dyn Fn() -> Arc<Inventory> + Send + Sync>;

pub struct Services {
    pub config: NdmpConfig,
    pub inventory: InventorySource,
    pub copy: Arc<CopyManager>,
    pub limits: Limits,
    pub busy: Arc<Mutex<HashSet<String>>>,
    pub sessions: AtomicU64,
}

impl Services {
    pub fn new(
        config: NdmpConfig,
        inventory: InventorySource,
        copy: Arc<CopyManager>,
        limits: Limits,
    ) -> Self {
        Self {
            config,
            inventory,
            copy,
            limits,
            busy: Arc::default(),
            sessions: AtomicU64::new(1),
        }
    }

    /// Whether the NDMP user may see `d`.
    pub fn permits(&self, d: &InventoryDevice) -> bool {
        access::permits(&d.config.allow, &self.config.initiator)
    }

    /// The devices of `kinds` this user may see, in inventory order.
    pub fn visible(&self, kinds: &[DeviceKind]) -> Vec<(DeviceConfig, Arc<dyn ScsiDevice>)> {
        let inventory = (self.inventory)();
        inventory
            .devices()
            .iter()
            .filter(|d| kinds.contains(&d.config.kind) && self.permits(d))
            .map(|d| (d.config.clone(), d.device.clone()))
            .collect()
    }

    /// Opens `name` (one of `kinds`) for `nexus`: NO_DEVICE for a name this user may not
    /// see (as for one that does not exist), DEVICE_BUSY while another session has it.
    pub fn open(&self, name: &str, kinds: &[DeviceKind], nexus: &Nexus) -> Result<Lu, Error> {
        self.lu(name, kinds, nexus, true)
    }

    /// Reaches `name` for `nexus` without holding it against other sessions (DATA's disk):
    /// its commands still go through a dispatcher, so reservations, write protection and
    /// unit attentions apply.
    pub fn reach(&self, name: &str, kinds: &[DeviceKind], nexus: &Nexus) -> Result<Lu, Error> {
        self.lu(name, kinds, nexus, false)
    }

    fn lu(
        &self,
        name: &str,
        kinds: &[DeviceKind],
        nexus: &Nexus,
        claim: bool,
    ) -> Result<Lu, Error> {
        let inventory = (self.inventory)();
        let Some(d) = inventory
            .by_name(name)
            .filter(|d| kinds.contains(&d.config.kind))
        else {
            tracing::info!(
                device = name,
                "ndmp: open refused: no such device of that kind"
            );
            return Err(Error::NO_DEVICE);
        };
        if !self.permits(d) {
            tracing::warn!(device = name, initiator = %nexus.initiator, "ndmp: open refused: not in the device's allow list");
            return Err(Error::NO_DEVICE);
        }
        let claim = if claim {
            let Some(claim) = Claim::take(&self.busy, name) else {
                tracing::info!(
                    device = name,
                    "ndmp: open refused: another session has it open"
                );
                return Err(Error::DEVICE_BUSY);
            };
            Some(claim)
        } else {
            None
        };
        let lun = Lun {
            device: d.device.clone(),
            allow: d.config.allow.clone(),
        };
        let copy: Arc<dyn CopyService> = self.copy.clone();
        let dispatcher = Dispatcher::new(vec![lun], copy).with_limits(self.limits.clone());
        Ok(Lu {
            name: name.to_string(),
            dispatcher: Arc::new(dispatcher),
            nexus: nexus.clone(),
            claim,
        })
    }
}
