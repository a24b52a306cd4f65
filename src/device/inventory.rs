//! The device inventory: which devices a CSCD descriptor may name, and who may name them.
//!
//! The TOML contract (DESIGN.md's "Device inventory") is parsed in `config` and
//! `device_table` (the key table is there); an emulated device without a designator gets
//! the derived one of `designators`. This module opens the configured devices and looks
//! them up.
//!
//! Lookups ([`Inventory::find_by_designator`] and the FC/SAS address forms) consider only
//! the devices listed here — never anything else on the host (CVE-2020-28374) — and refuse
//! an initiator that a non-empty `allow` list does not name with [`LookupError::NotAllowed`]
//! (which the copy manager logs, and reports as COPY ABORTED 0D/02 like
//! [`LookupError::NotFound`]). Initiator names compare ASCII case-insensitively (iSCSI
//! names are case-folded, RFC 3722).

mod config;
mod designators;
mod device_table;
mod libraries;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::disk::{DiskOptions, EmulatedDisk};
use super::library::Library;
use super::sg::SgDevice;
use super::tape::{EmulatedTape, TapeConfig};
use super::ScsiDevice;
use crate::buf::Rings;
use crate::scsi::designator::{self, Designator};

pub use config::{DeviceConfig, DeviceKind, InventoryConfig, TapeSettings, MAX_QUEUE_DEPTH};
pub use designators::derived_designator;
pub(crate) use designators::emulated_designators;

/// The capacity of a tape that does not give one (64 GiB of image): a tape is never
/// unbounded, so no initiator can fill the host's file system through it.
pub const DEFAULT_TAPE_CAPACITY: u64 = 64 << 30;
/// Why an inventory could not be read, checked or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InventoryError {
    #[error("inventory {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("inventory: {0}")]
    Syntax(String),
    #[error("inventory: device {device}: field {field}: {message}")]
    Field {
        device: String,
        field: String,
        message: String,
    },
    #[error("inventory: {0}")]
    Invalid(String),
    #[error("inventory: device {device:?}: {source}")]
    Open {
        device: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Why a lookup found no device the initiator may use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    #[error("no device in the inventory has that identifier")]
    NotFound,
    /// The device exists but its `allow` list does not name the initiator. Log it; report
    /// it exactly like NotFound (0D/02) so an initiator cannot probe the inventory.
    #[error("initiator {initiator:?} may not use device {device:?}")]
    NotAllowed { device: String, initiator: String },
}

/// Opens one configured device, with the designators a CSCD may name it by.
fn open_one(
    c: &DeviceConfig,
    rings: &Arc<Rings>,
) -> Result<(Arc<dyn ScsiDevice>, Vec<Designator>), InventoryError> {
    let open_err = |source: Box<dyn std::error::Error + Send + Sync>| InventoryError::Open {
        device: c.name.clone(),
        source,
    };
    Ok(match c.kind {
        DeviceKind::Disk => {
            let designators = emulated_designators(c);
            let opts = DiskOptions {
                read_only: c.read_only,
                removable: c.removable,
                create_size: c.size,
                designators: designators.clone(),
                serial: c.serial.clone(),
                queue_depth: c.queue_depth,
                rings: Arc::clone(rings),
                ..DiskOptions::new(&c.path, c.block_size)
            };
            let disk = EmulatedDisk::open(&c.name, &opts).map_err(|e| open_err(e.into()))?;
            (Arc::new(disk), designators)
        }
        DeviceKind::Tape => (open_tape(c, rings)?, emulated_designators(c)),
        DeviceKind::Changer => {
            return Err(InventoryError::Invalid(format!(
                "{:?}: a changer is opened with its library",
                c.name
            )))
        }
        DeviceKind::Sg => {
            let sg =
                SgDevice::open(&c.name, &c.path, c.timeout_ms).map_err(|e| open_err(e.into()))?;
            // Only logical-unit designators name the device: target-port and target-device
            // ones (relative target port 1, a port's NAA) are shared by every LU behind the
            // port, and an E4h CSCD names a logical unit.
            let mut designators: Vec<Designator> = sg
                .designators()
                .iter()
                .filter(|d| d.association == designator::association::LOGICAL_UNIT)
                .cloned()
                .collect();
            designators.extend(c.designators.iter().cloned());
            (Arc::new(sg), designators)
        }
    })
}

/// Two entries that open the same device (a `limit` change needs no reopening).
fn same_but_limit(a: &DeviceConfig, b: &DeviceConfig) -> bool {
    DeviceConfig {
        limit: b.limit,
        ..a.clone()
    } == *b
}

/// One opened device of the inventory.
pub struct InventoryDevice {
    pub config: DeviceConfig,
    pub device: Arc<dyn ScsiDevice>,
    /// Designators a CSCD may name it by: configured, derived, or (sg) read from VPD 83h.
    pub designators: Vec<Designator>,
}

impl std::fmt::Debug for InventoryDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InventoryDevice")
            .field("config", &self.config)
            .field("designators", &self.designators)
            .finish_non_exhaustive()
    }
}

/// The opened inventory: the only devices a CSCD can resolve to.
#[derive(Debug, Default)]
pub struct Inventory {
    devices: Vec<InventoryDevice>,
    libraries: Vec<Arc<Library>>,
    /// The rings its tape images' O_DIRECT appends borrow (the process's, shared with the
    /// copy engines, when the daemon opened it).
    rings: Arc<Rings>,
}

impl Inventory {
    /// Reads an inventory file and opens every device in it; library media are directories
    /// only (a program with cartridge stores reads the file with
    /// [`InventoryConfig::load_with`] and opens it with [`Inventory::open`]).
    pub fn load(path: &Path) -> Result<Self, InventoryError> {
        Self::open(&InventoryConfig::load(path)?)
    }

    /// Opens every configured device (disk images are created where `size` says so).
    pub fn open(config: &InventoryConfig) -> Result<Self, InventoryError> {
        Self::reopen(config, &Self::default())
    }

    /// [`Inventory::open`], the tape images borrowing their rings from `rings` (the
    /// process's, shared with the copy engines); a reload ([`Inventory::reopen`]) keeps them.
    pub fn open_in(config: &InventoryConfig, rings: Arc<Rings>) -> Result<Self, InventoryError> {
        let empty = Self {
            rings,
            ..Self::default()
        };
        Self::reopen(config, &empty)
    }

    /// Opens `config`, keeping the already open device of `previous` wherever an entry is
    /// unchanged (a configuration reload): a tape keeps its position, and no image is ever
    /// open twice through two devices with their own state.
    pub fn reopen(config: &InventoryConfig, previous: &Self) -> Result<Self, InventoryError> {
        let (libraries, drives) = libraries::open_libraries(config, previous)?;
        let mut opened = Vec::with_capacity(config.devices.len() + libraries.len());
        for c in &config.devices {
            let (device, designators) = match drives.get(&c.name) {
                Some(drive) => (
                    drive.clone() as Arc<dyn ScsiDevice>,
                    emulated_designators(c),
                ),
                None => match previous
                    .devices
                    .iter()
                    .find(|d| same_but_limit(&d.config, c))
                {
                    Some(d) => (d.device.clone(), d.designators.clone()),
                    None => open_one(c, &previous.rings)?,
                },
            };
            opened.push((c.clone(), device, designators));
        }
        for l in &libraries {
            let mut c = DeviceConfig::new(l.name(), DeviceKind::Changer, &l.config().media);
            c.designators = l.config().designators.clone();
            let designators = emulated_designators(&c);
            opened.push((c, l.clone() as Arc<dyn ScsiDevice>, designators));
        }
        let mut inventory = Self::from_opened(opened)?;
        inventory.libraries = libraries;
        inventory.rings = Arc::clone(&previous.rings);
        Ok(inventory)
    }

    /// The libraries, in config order.
    pub fn libraries(&self) -> &[Arc<Library>] {
        &self.libraries
    }

    /// A library by name.
    pub fn library(&self, name: &str) -> Option<&Arc<Library>> {
        self.libraries.iter().find(|l| l.name() == name)
    }

    /// Builds an inventory from devices opened elsewhere (tests, wrappers such as
    /// `FaultyDevice`): each gets its configured designators, or the derived one.
    pub fn from_devices(
        devices: Vec<(DeviceConfig, Arc<dyn ScsiDevice>)>,
    ) -> Result<Self, InventoryError> {
        Self::from_opened(
            devices
                .into_iter()
                .map(|(c, d)| {
                    let designators = emulated_designators(&c);
                    (c, d, designators)
                })
                .collect(),
        )
    }

    fn from_opened(
        opened: Vec<(DeviceConfig, Arc<dyn ScsiDevice>, Vec<Designator>)>,
    ) -> Result<Self, InventoryError> {
        let mut devices: Vec<InventoryDevice> = Vec::with_capacity(opened.len());
        for (config, device, designators) in opened {
            for other in &devices {
                if other.config.name == config.name {
                    return Err(InventoryError::Invalid(format!(
                        "two devices are named {:?}",
                        config.name
                    )));
                }
                // Ambiguity is refused outright: a CSCD must resolve to one device.
                if let Some(d) = designators
                    .iter()
                    .find(|d| other.designators.iter().any(|o| o.matches(d)))
                {
                    return Err(InventoryError::Invalid(format!(
                        "designator {d} names both {:?} and {:?}",
                        other.config.name, config.name
                    )));
                }
                let same_address = |a: Option<u64>, b: Option<u64>| a.is_some() && a == b;
                if other.config.lun == config.lun
                    && (same_address(other.config.fc_port_name, config.fc_port_name)
                        || same_address(
                            other.config.fc_port_id.map(u64::from),
                            config.fc_port_id.map(u64::from),
                        )
                        || same_address(other.config.sas_address, config.sas_address))
                {
                    return Err(InventoryError::Invalid(format!(
                        "{:?} and {:?} have the same port address and LUN",
                        other.config.name, config.name
                    )));
                }
            }
            devices.push(InventoryDevice {
                config,
                device,
                designators,
            });
        }
        Ok(Self {
            devices,
            libraries: Vec::new(),
            rings: Arc::default(),
        })
    }

    /// Every device, in inventory order (for listings; no authorization applied).
    pub fn devices(&self) -> &[InventoryDevice] {
        &self.devices
    }

    /// A device by inventory name, for configuration (`[[lun]] device = …`), not for
    /// resolving CSCDs.
    pub fn by_name(&self, name: &str) -> Option<&InventoryDevice> {
        self.devices.iter().find(|d| d.config.name == name)
    }

    /// The device an E4h CSCD's designator names: code set, association, designator type,
    /// length and bytes equal; PIV and protocol identifier ignored (SPC-3 6.3.6.3).
    pub fn find_by_designator(
        &self,
        designator: &Designator,
        initiator: &str,
    ) -> Result<&InventoryDevice, LookupError> {
        self.authorize(
            self.devices
                .iter()
                .find(|d| d.designators.iter().any(|x| x.matches(designator))),
            initiator,
        )
    }

    /// The device an FC N_Port_Name CSCD (E0h) names: WWPN and LUN.
    pub fn find_by_fc_port_name(
        &self,
        wwpn: u64,
        lun: u64,
        initiator: &str,
    ) -> Result<&InventoryDevice, LookupError> {
        self.authorize(
            self.devices
                .iter()
                .find(|d| d.config.fc_port_name == Some(wwpn) && d.config.lun == lun),
            initiator,
        )
    }

    /// The device an FC N_Port_ID CSCD (E1h/E2h) names: 24-bit port id and LUN.
    pub fn find_by_fc_port_id(
        &self,
        port_id: u32,
        lun: u64,
        initiator: &str,
    ) -> Result<&InventoryDevice, LookupError> {
        let port_id = port_id & 0xff_ffff;
        self.authorize(
            self.devices
                .iter()
                .find(|d| d.config.fc_port_id == Some(port_id) && d.config.lun == lun),
            initiator,
        )
    }

    /// The device a SAS CSCD names: SAS address and LUN.
    pub fn find_by_sas_address(
        &self,
        address: u64,
        lun: u64,
        initiator: &str,
    ) -> Result<&InventoryDevice, LookupError> {
        self.authorize(
            self.devices
                .iter()
                .find(|d| d.config.sas_address == Some(address) && d.config.lun == lun),
            initiator,
        )
    }

    fn authorize<'a>(
        &self,
        found: Option<&'a InventoryDevice>,
        initiator: &str,
    ) -> Result<&'a InventoryDevice, LookupError> {
        let device = found.ok_or(LookupError::NotFound)?;
        if device.config.allows(initiator) {
            Ok(device)
        } else {
            Err(LookupError::NotAllowed {
                device: device.config.name.clone(),
                initiator: initiator.to_string(),
            })
        }
    }
}

/// Opens an emulated tape drive over its SIMH image. The inventory's `early_warning` is the
/// image offset where early warning starts; the drive wants the size of the zone before
/// `capacity`. A half-written record found at open is cut off and reported on stderr.
fn open_tape(c: &DeviceConfig, rings: &Arc<Rings>) -> Result<Arc<dyn ScsiDevice>, InventoryError> {
    let capacity = c.tape.capacity.unwrap_or(DEFAULT_TAPE_CAPACITY);
    let config = TapeConfig {
        block_size: c.tape.block_size,
        capacity,
        early_warning: c
            .tape
            .early_warning
            .map_or(0, |at| capacity.saturating_sub(at)),
        write_protect: c.read_only,
        designators: emulated_designators(c),
        serial: c.serial.clone().unwrap_or_default(),
        ..TapeConfig::default()
    };
    let (tape, report) = EmulatedTape::open_in(c.name.clone(), &c.path, config, rings.clone())
        .map_err(|e| InventoryError::Open {
            device: c.name.clone(),
            source: Box::new(e),
        })?;
    if !report.is_clean() {
        eprintln!("xcopyd: tape {:?}: {report}", c.name);
    }
    Ok(Arc::new(tape))
}

/// An error in field `field` of device `device`'s table.
fn field_err(device: &str, field: &str, message: &str) -> InventoryError {
    InventoryError::Field {
        device: device.to_string(),
        field: field.to_string(),
        message: message.to_string(),
    }
}

/// The `kind` value a device table names `kind` with.
fn kind_name(kind: DeviceKind) -> &'static str {
    match kind {
        DeviceKind::Disk => "disk",
        DeviceKind::Tape => "tape",
        DeviceKind::Sg => "sg",
        DeviceKind::Changer => "changer",
    }
}

#[cfg(test)]
#[path = "inventory_tests.rs"]
mod tests;
