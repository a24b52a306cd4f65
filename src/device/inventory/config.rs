//! The inventory's TOML: the `[[device]]` array of a config file, checked as a whole
//! (unique names, library drives), and the types it becomes.
//!
//! The TOML contract is DESIGN.md's "Device inventory": one `[[device]]` table per device.
//!
//! | key | kinds | meaning |
//! |---|---|---|
//! | `name` | all | unique; what logs and `[[lun]] device = …` use |
//! | `kind` | all | `disk` (emulated SBC disk), `tape` (emulated SSC tape), `sg` (SG_IO) |
//! | `path` | all | relative paths resolve against the inventory file's directory |
//! | `block_size` | disk, tape | disk: 512 (default) or 4096; tape: the mode the drive starts in, 0 = variable (default) |
//! | `designator` / `designators` | all | `naa.…`, `eui.…`, `t10.…`, `iqn.…`, `name.…` (VPD 83h); sg: added to what VPD 83h reports |
//! | `fc_port_name` | all | WWPN, `"0x…"`, 16 hex digits (`:` allowed) or an integer (CSCD E0h/E1h) |
//! | `fc_port_id` | all | 24-bit N_Port ID (CSCD E2h) |
//! | `sas_address` | all | SAS address, as `fc_port_name` |
//! | `lun` | all | the LUN those addresses pair with (default 0) |
//! | `allow` | all | initiator names allowed to name the device; absent or empty = any |
//! | `read_only` | disk | writes fail with DATA PROTECT |
//! | `removable` | disk | RMB: START STOP UNIT with LOEJ ejects and loads the medium (default false) |
//! | `size` | disk | bytes (integer, or `"4GiB"`, `"512M"`): create a sparse image if `path` is missing |
//! | `serial` | disk | VPD 80h serial (default: hex of the first designator) |
//! | `queue_depth` | disk | I/Os the copy engine keeps in flight on it, 1..=512 (default: half its buffer pool); a throttled virtual disk may move more with 1-2 |
//! | `capacity`, `early_warning` | tape | bytes of medium (default 64 GiB), and where early warning starts |
//! | `timeout_ms` | sg | command timeout (default 60000) |
//! | `generation` | tape | a library drive's LTO generation, 5-9 (default 9) |
//! | `limit` | all | bandwidth cap per second (`"200MiB"`, as `size`): every byte copies read from or write to it, all copies together ([`crate::copy::limit`]); a reload changes it without reopening the device |
//!
//! A `kind = "tape"` entry without `path` is a drive of a `[[library]]` (the library loads
//! its cartridges; [`crate::device::library::config`] parses those tables).
//!
//! Unknown keys inside a `[[device]]` are errors, and every error names the device and the
//! key. Other top-level tables (the daemon's `[iscsi]`, `[[lun]]`, …) are left to their
//! owners, except `[[devices]]`, which is refused as a likely typo.
//!

use std::path::{Path, PathBuf};

use super::device_table::parse_device;
use super::libraries::parse_libraries;
use super::{derived_designator, field_err, InventoryError};
use crate::device::library::cartridge_store::StoreKinds;
use crate::device::library::LibraryConfig;
use crate::device::sg::DEFAULT_TIMEOUT_MS;
use crate::scsi::designator::Designator;

/// The deepest `queue_depth` a disk may ask for (the copy pool holds at most 1024 buffers).
pub const MAX_QUEUE_DEPTH: u16 = 512;

/// What kind of device an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// An emulated SBC disk over a file or block device.
    Disk,
    /// An emulated SSC tape drive over a SIMH .tap image.
    Tape,
    /// A real SCSI device through SG_IO.
    Sg,
    /// A tape library's medium changer (`[[library]]`).
    Changer,
}

/// Settings of an emulated tape drive (`kind = "tape"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TapeSettings {
    /// Block size the drive starts in: 0 = variable.
    pub block_size: u32,
    /// Bytes of medium; `None` = unlimited.
    pub capacity: Option<u64>,
    /// Bytes written after which early warning is reported; `None` = none.
    pub early_warning: Option<u64>,
}

/// One `[[device]]` entry, parsed and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceConfig {
    pub name: String,
    pub kind: DeviceKind,
    /// Resolved against the inventory file's directory.
    pub path: PathBuf,
    /// Disk: the logical block size (512 or 4096).
    pub block_size: u32,
    /// As configured (derived ones are added when the inventory is built).
    pub designators: Vec<Designator>,
    pub fc_port_name: Option<u64>,
    pub fc_port_id: Option<u32>,
    pub sas_address: Option<u64>,
    pub lun: u64,
    pub allow: Vec<String>,
    pub read_only: bool,
    /// Disk: the medium can be ejected (RMB).
    pub removable: bool,
    /// Disk: create a sparse image of this many bytes if missing.
    pub size: Option<u64>,
    pub serial: Option<String>,
    pub queue_depth: Option<u16>,
    pub tape: TapeSettings,
    pub timeout_ms: u32,
    /// A library drive's LTO generation (`generation`), None: the default.
    pub generation: Option<u8>,
    /// `limit`: bytes per second copies may move to and from it, all together.
    pub limit: Option<u64>,
}

impl DeviceConfig {
    /// A device of `kind` at `path` with every optional setting at its default.
    pub fn new(name: &str, kind: DeviceKind, path: impl Into<PathBuf>) -> Self {
        Self {
            name: name.to_string(),
            kind,
            path: path.into(),
            block_size: 512,
            designators: Vec::new(),
            fc_port_name: None,
            fc_port_id: None,
            sas_address: None,
            lun: 0,
            allow: Vec::new(),
            read_only: false,
            removable: false,
            size: None,
            serial: None,
            queue_depth: None,
            tape: TapeSettings::default(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            generation: None,
            limit: None,
        }
    }

    /// Whether `initiator` may name this device.
    pub fn allows(&self, initiator: &str) -> bool {
        crate::device::access::permits(&self.allow, initiator)
    }
}

/// The parsed inventory, before any device is opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InventoryConfig {
    pub devices: Vec<DeviceConfig>,
    /// The `[[library]]` tables.
    pub libraries: Vec<LibraryConfig>,
}

impl InventoryConfig {
    /// Reads and parses an inventory (or daemon config) file; library media are
    /// directories only.
    pub fn load(path: &Path) -> Result<Self, InventoryError> {
        Self::load_with(path, &StoreKinds::default())
    }

    /// [`InventoryConfig::load`], a library's media a URL of one of `kinds` or a directory.
    pub fn load_with(path: &Path, kinds: &StoreKinds) -> Result<Self, InventoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse_with(&text, base, kinds)
    }

    /// Parses TOML text; relative paths resolve against `base_dir`; library media are
    /// directories only.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Self, InventoryError> {
        Self::parse_with(text, base_dir, &StoreKinds::default())
    }

    /// [`InventoryConfig::parse`], a library's media a URL of one of `kinds` or a directory.
    pub fn parse_with(
        text: &str,
        base_dir: &Path,
        kinds: &StoreKinds,
    ) -> Result<Self, InventoryError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| InventoryError::Syntax(e.to_string()))?;
        Self::from_table(&table, base_dir, kinds)
    }

    /// Reads the `[[device]]` and `[[library]]` arrays of an already parsed document, a
    /// library's media a URL of one of `kinds` or a directory.
    pub fn from_table(
        table: &toml::Table,
        base_dir: &Path,
        kinds: &StoreKinds,
    ) -> Result<Self, InventoryError> {
        if table.contains_key("devices") {
            return Err(InventoryError::Invalid(
                "top-level key `devices`: the table array is `[[device]]`".into(),
            ));
        }
        let none = Vec::new();
        let entries = match table.get("device") {
            None => &none,
            Some(toml::Value::Array(a)) => a,
            Some(_) => {
                return Err(InventoryError::Invalid(
                    "`device` must be an array of tables ([[device]])".into(),
                ))
            }
        };
        let mut devices: Vec<DeviceConfig> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let config = parse_device(i, entry, base_dir)?;
            if devices.iter().any(|d| d.name == config.name) {
                return Err(InventoryError::Field {
                    device: format!("{:?}", config.name),
                    field: "name".into(),
                    message: "another device has the same name".into(),
                });
            }
            devices.push(config);
        }
        let libraries = match table.contains_key("library") {
            true => parse_libraries(
                table,
                base_dir,
                &state_dir_of(table, base_dir),
                &devices,
                kinds,
            )?,
            false => Vec::new(),
        };
        if let Some(d) = devices.iter().find(|d| {
            d.kind == DeviceKind::Tape
                && d.path.as_os_str().is_empty()
                && !libraries.iter().any(|l| l.drives.contains(&d.name))
        }) {
            return Err(field_err(
                &format!("{:?}", d.name),
                "path",
                "missing (a tape without path must be a drive of a [[library]])",
            ));
        }
        let mut config = Self { devices, libraries };
        config.derive_designators(|| state_dir_of(table, base_dir))?;
        Ok(config)
    }

    /// Gives each emulated device and library configured without a designator the one
    /// derived from this installation's identity (in the state directory `state_dir()`,
    /// made on first use) and its name. Without a state directory to keep the identity in,
    /// such a device is an error that says to configure a designator.
    fn derive_designators(
        &mut self,
        state_dir: impl FnOnce() -> PathBuf,
    ) -> Result<(), InventoryError> {
        let wanted = |d: &&mut DeviceConfig| d.kind != DeviceKind::Sg && d.designators.is_empty();
        let devices: Vec<&mut DeviceConfig> = self.devices.iter_mut().filter(wanted).collect();
        let libraries: Vec<&mut LibraryConfig> = self
            .libraries
            .iter_mut()
            .filter(|l| l.designators.is_empty())
            .collect();
        let Some(first) = devices
            .first()
            .map(|d| d.name.clone())
            .or_else(|| libraries.first().map(|l| l.name.clone()))
        else {
            return Ok(());
        };
        let dir = state_dir();
        let id = crate::state::installation_id(&dir).map_err(|e| {
            field_err(
                &format!("{first:?}"),
                "designator",
                &format!(
                    "none configured, and this installation's identity, from which one is \
                     derived, is not readable in {}: {e} (configure a designator, or a \
                     writable [daemon] state_dir)",
                    dir.display()
                ),
            )
        })?;
        for d in devices {
            d.designators = vec![derived_designator(Some(&id), &d.name)];
        }
        for l in libraries {
            l.designators = vec![derived_designator(Some(&id), &l.name)];
        }
        Ok(())
    }
}

/// Where a config keeps its state (library element maps and caches): the daemon's
/// `[daemon] state_dir` when the file has one (relative to the file), else the installation's
/// ([`crate::state::state_dir`]) — the same for the daemon and the CLI reading that file.
fn state_dir_of(table: &toml::Table, base_dir: &Path) -> PathBuf {
    match table
        .get("daemon")
        .and_then(|d| d.get("state_dir"))
        .and_then(toml::Value::as_str)
    {
        Some(dir) => base_dir.join(dir),
        None => crate::state::state_dir(),
    }
}
