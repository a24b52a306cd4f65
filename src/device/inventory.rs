//! The device inventory: which devices a CSCD descriptor may name, and who may name them.
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
//! its cartridges; [`super::library::config`] parses those tables).
//!
//! Unknown keys inside a `[[device]]` are errors, and every error names the device and the
//! key. Other top-level tables (the daemon's `[iscsi]`, `[[lun]]`, …) are left to their
//! owners, except `[[devices]]`, which is refused as a likely typo.
//!
//! An emulated device without a designator gets a derived one: NAA 6 (IEEE Registered
//! Extended, 16 bytes) with COMPANY_ID 025843h — a locally administered identifier (AAI
//! quadrant: X bit set, Y/Z clear), so no vendor's OUI is borrowed — followed by the low
//! 100 bits of a 128-bit FNV-1a hash of `"xcopyd:" + installation + ":" + name`, where
//! installation is the hex of 16 random bytes made once per state directory
//! ([`crate::state::installation_id`], the config's `[daemon] state_dir` or the default).
//! Stable across runs and builds of one installation, different on another host whose
//! config names a device the same (one SAN never sees two LUNs with one NAA); it changes if
//! the device is renamed or the state directory is lost. Configure one explicitly for a
//! device that initiators remember, or that moves between hosts.
//!
//! Lookups ([`Inventory::find_by_designator`] and the FC/SAS address forms) consider only
//! the devices listed here — never anything else on the host (CVE-2020-28374) — and refuse
//! an initiator that a non-empty `allow` list does not name with [`LookupError::NotAllowed`]
//! (which the copy manager logs, and reports as COPY ABORTED 0D/02 like
//! [`LookupError::NotFound`]). Initiator names compare ASCII case-insensitively (iSCSI
//! names are case-folded, RFC 3722).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::disk::{DiskOptions, EmulatedDisk};
use super::library::config::parse_libraries;
use super::library::{lto, Library, LibraryConfig};
use super::sg::{SgDevice, DEFAULT_TIMEOUT_MS};
use super::tape::{EmulatedTape, TapeConfig};
use super::ScsiDevice;
use crate::scsi::designator::{self, parse_hex, Designator};

/// The capacity of a tape that does not give one (64 GiB of image): a tape is never
/// unbounded, so no initiator can fill the host's file system through it.
pub const DEFAULT_TAPE_CAPACITY: u64 = 64 << 30;

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
        super::access::permits(&self.allow, initiator)
    }
}

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

/// The parsed inventory, before any device is opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InventoryConfig {
    pub devices: Vec<DeviceConfig>,
    /// The `[[library]]` tables.
    pub libraries: Vec<LibraryConfig>,
}

impl InventoryConfig {
    /// Reads and parses an inventory (or daemon config) file.
    pub fn load(path: &Path) -> Result<Self, InventoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base)
    }

    /// Parses TOML text; relative paths resolve against `base_dir`.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Self, InventoryError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| InventoryError::Syntax(e.to_string()))?;
        Self::from_table(&table, base_dir)
    }

    /// Reads the `[[device]]` array of an already parsed document.
    pub fn from_table(table: &toml::Table, base_dir: &Path) -> Result<Self, InventoryError> {
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
            true => parse_libraries(table, base_dir, &state_dir_of(table, base_dir), &devices)?,
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

/// Parses one `[[device]]` table (entry `index`, for messages before the name is known).
fn parse_device(
    index: usize,
    value: &toml::Value,
    base: &Path,
) -> Result<DeviceConfig, InventoryError> {
    let unnamed = format!("#{} (unnamed)", index + 1);
    let toml::Value::Table(t) = value else {
        return Err(InventoryError::Invalid(format!(
            "device {unnamed}: each [[device]] must be a table"
        )));
    };
    let name = match t.get("name") {
        Some(toml::Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(_) => {
            return Err(field_err(&unnamed, "name", "must be a non-empty string"));
        }
        None => return Err(field_err(&unnamed, "name", "missing")),
    };
    let who = format!("{name:?}");
    let err = |field: &str, message: String| field_err(&who, field, &message);
    let kind = match t.get("kind") {
        Some(toml::Value::String(s)) => match s.as_str() {
            "disk" => DeviceKind::Disk,
            "tape" => DeviceKind::Tape,
            "sg" => DeviceKind::Sg,
            other => {
                return Err(err(
                    "kind",
                    format!("{other:?} is not one of \"disk\", \"tape\", \"sg\""),
                ))
            }
        },
        Some(_) => return Err(err("kind", "must be a string".into())),
        None => return Err(err("kind", "missing".into())),
    };
    let path = match t.get("path") {
        Some(toml::Value::String(s)) if !s.is_empty() => base.join(s),
        Some(_) => return Err(err("path", "must be a non-empty string".into())),
        // A library drive: checked against the [[library]] tables.
        None if kind == DeviceKind::Tape => PathBuf::new(),
        None => return Err(err("path", "missing".into())),
    };
    let mut c = DeviceConfig::new(&name, kind, path);
    if kind == DeviceKind::Tape {
        c.block_size = 0;
    }
    let only = |field: &str, kinds: &[DeviceKind]| -> Result<(), InventoryError> {
        if kinds.contains(&kind) {
            Ok(())
        } else {
            Err(err(
                field,
                format!("does not apply to kind = {:?}", kind_name(kind)),
            ))
        }
    };
    let mut designator_keys = 0;
    for (key, v) in t {
        let key = key.as_str();
        let e = |message: String| err(key, message);
        match key {
            "name" | "kind" | "path" => {}
            "block_size" => {
                only(key, &[DeviceKind::Disk, DeviceKind::Tape])?;
                let n = integer(v).map_err(e)?;
                c.block_size = match kind {
                    DeviceKind::Disk if n == 512 || n == 4096 => n as u32,
                    DeviceKind::Disk => return Err(e(format!("must be 512 or 4096, got {n}"))),
                    _ if n <= 0xff_ffff => n as u32,
                    _ => return Err(e(format!("{n} exceeds the 24-bit block length"))),
                };
            }
            "designator" | "designators" => {
                designator_keys += 1;
                let names: Vec<&str> = match v {
                    toml::Value::String(s) if key == "designator" => vec![s.as_str()],
                    toml::Value::Array(a) if key == "designators" => a
                        .iter()
                        .map(|x| x.as_str().ok_or_else(|| e("must be strings".into())))
                        .collect::<Result<_, _>>()?,
                    _ if key == "designator" => return Err(e("must be a string".into())),
                    _ => return Err(e("must be an array of strings".into())),
                };
                for n in names {
                    c.designators.push(Designator::parse_name(n).map_err(e)?);
                }
            }
            "fc_port_name" => c.fc_port_name = Some(address64(v).map_err(e)?),
            "sas_address" => c.sas_address = Some(address64(v).map_err(e)?),
            "fc_port_id" => {
                let id = match v {
                    toml::Value::String(s) => {
                        hex_u64(s).ok_or_else(|| e(format!("{s:?} is not hex")))?
                    }
                    _ => integer(v).map_err(e)?,
                };
                if id > 0xff_ffff {
                    return Err(e(format!("{id:#x} is wider than 24 bits")));
                }
                c.fc_port_id = Some(id as u32);
            }
            "lun" => {
                c.lun = match v {
                    toml::Value::String(s) => {
                        hex_u64(s).ok_or_else(|| e(format!("{s:?} is not hex")))?
                    }
                    _ => integer(v).map_err(e)?,
                }
            }
            "allow" => {
                let toml::Value::Array(a) = v else {
                    return Err(e("must be an array of initiator names".into()));
                };
                c.allow = a
                    .iter()
                    .map(|x| match x.as_str() {
                        Some(s) if !s.is_empty() => Ok(s.to_string()),
                        _ => Err(e("must be non-empty strings".into())),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "read_only" => {
                only(key, &[DeviceKind::Disk])?;
                c.read_only = v
                    .as_bool()
                    .ok_or_else(|| e("must be true or false".into()))?;
            }
            "removable" => {
                only(key, &[DeviceKind::Disk])?;
                c.removable = v
                    .as_bool()
                    .ok_or_else(|| e("must be true or false".into()))?;
            }
            "size" => {
                only(key, &[DeviceKind::Disk])?;
                c.size = Some(bytes(v).map_err(e)?);
            }
            "serial" => {
                only(key, &[DeviceKind::Disk])?;
                match v.as_str() {
                    Some(s) if !s.is_empty() && s.is_ascii() => c.serial = Some(s.to_string()),
                    _ => return Err(e("must be a non-empty ASCII string".into())),
                }
            }
            "queue_depth" => {
                only(key, &[DeviceKind::Disk])?;
                let depth = integer(v).map_err(e)?;
                c.queue_depth = Some(
                    u16::try_from(depth)
                        .ok()
                        .filter(|d| (1..=MAX_QUEUE_DEPTH).contains(d))
                        .ok_or_else(|| e(format!("{depth} is not 1..={MAX_QUEUE_DEPTH}")))?,
                );
            }
            "capacity" => {
                only(key, &[DeviceKind::Tape])?;
                c.tape.capacity = Some(bytes(v).map_err(e)?);
            }
            "early_warning" => {
                only(key, &[DeviceKind::Tape])?;
                c.tape.early_warning = Some(bytes(v).map_err(e)?);
            }
            "generation" => {
                only(key, &[DeviceKind::Tape])?;
                let g = integer(v).map_err(e)?;
                c.generation = Some(
                    u8::try_from(g)
                        .ok()
                        .filter(|g| lto::GENERATIONS.contains(g))
                        .ok_or_else(|| e(format!("{g} is not an LTO generation 5..=9")))?,
                );
            }
            "limit" => {
                let rate = bytes(v).map_err(e)?;
                if rate == 0 {
                    return Err(e("must be at least 1 byte per second".into()));
                }
                c.limit = Some(rate);
            }
            "timeout_ms" => {
                only(key, &[DeviceKind::Sg])?;
                let ms = integer(v).map_err(e)?;
                c.timeout_ms = u32::try_from(ms)
                    .ok()
                    .filter(|&ms| ms > 0)
                    .ok_or_else(|| e(format!("{ms} is not 1..=4294967295")))?;
            }
            other => return Err(err(other, "unknown field".into())),
        }
    }
    if designator_keys > 1 {
        return Err(err(
            "designators",
            "give `designator` or `designators`, not both".into(),
        ));
    }
    if let (Some(cap), Some(ew)) = (c.tape.capacity, c.tape.early_warning) {
        if ew > cap {
            return Err(err(
                "early_warning",
                format!("{ew} is past the capacity {cap}"),
            ));
        }
    }
    if kind == DeviceKind::Tape {
        // A tape's block_size is the mode the drive starts in.
        c.tape.block_size = c.block_size;
    }
    Ok(c)
}

fn field_err(device: &str, field: &str, message: &str) -> InventoryError {
    InventoryError::Field {
        device: device.to_string(),
        field: field.to_string(),
        message: message.to_string(),
    }
}

fn kind_name(kind: DeviceKind) -> &'static str {
    match kind {
        DeviceKind::Disk => "disk",
        DeviceKind::Tape => "tape",
        DeviceKind::Sg => "sg",
        DeviceKind::Changer => "changer",
    }
}

/// A non-negative TOML integer.
fn integer(v: &toml::Value) -> Result<u64, String> {
    match v {
        toml::Value::Integer(i) => u64::try_from(*i).map_err(|_| format!("{i} is negative")),
        other => Err(format!("expected an integer, got {}", other.type_str())),
    }
}

/// Hex with optional `0x` prefix and `:`/`-` separators, at most 64 bits.
fn hex_u64(s: &str) -> Option<u64> {
    let bytes = parse_hex(s)?;
    if bytes.len() > 8 {
        return None;
    }
    Some(bytes.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
}

/// A 64-bit port name or SAS address: `"0x…"` or 16 hex digits (separators allowed), or
/// an integer.
fn address64(v: &toml::Value) -> Result<u64, String> {
    match v {
        toml::Value::String(s) => {
            let digits = s
                .trim_start_matches("0x")
                .chars()
                .filter(|c| !matches!(c, ':' | '-'))
                .count();
            if digits != 16 {
                return Err(format!("{s:?}: expected 16 hex digits"));
            }
            hex_u64(s).ok_or_else(|| format!("{s:?}: expected 16 hex digits"))
        }
        other => integer(other),
    }
}

/// A byte count: an integer, or a string with a binary multiple (`"512M"`, `"4GiB"`).
fn bytes(v: &toml::Value) -> Result<u64, String> {
    match v {
        toml::Value::String(s) => crate::size::parse(s),
        _ => integer(v),
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

/// Opens one configured device, with the designators a CSCD may name it by.
fn open_one(c: &DeviceConfig) -> Result<(Arc<dyn ScsiDevice>, Vec<Designator>), InventoryError> {
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
                ..DiskOptions::new(&c.path, c.block_size)
            };
            let disk = EmulatedDisk::open(&c.name, &opts).map_err(|e| open_err(e.into()))?;
            (Arc::new(disk), designators)
        }
        DeviceKind::Tape => (open_tape(c)?, emulated_designators(c)),
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

/// The derived designator of an emulated device named `name` in the installation
/// `installation` (see the module doc). `None` (devices built in code, not from a config
/// file: tests and wrappers) derives from the name alone.
pub fn derived_designator(installation: Option<&[u8; 16]>, name: &str) -> Designator {
    let seed = match installation {
        Some(id) => format!("xcopyd:{}:{name}", hex::encode(id)),
        None => format!("xcopyd:{name}"),
    };
    let h = fnv1a_128(seed.as_bytes());
    let mask = (1u128 << 100) - 1;
    let value = (6u128 << 124) | (0x02_5843u128 << 100) | (h & mask);
    Designator::logical_unit(
        designator::designator_type::NAA,
        designator::code_set::BINARY,
        value.to_be_bytes().to_vec(),
    )
}

fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u128::from(b)).wrapping_mul(PRIME))
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
}

impl Inventory {
    /// Reads an inventory file and opens every device in it.
    pub fn load(path: &Path) -> Result<Self, InventoryError> {
        Self::open(&InventoryConfig::load(path)?)
    }

    /// Opens every configured device (disk images are created where `size` says so).
    pub fn open(config: &InventoryConfig) -> Result<Self, InventoryError> {
        Self::reopen(config, &Self::default())
    }

    /// Opens `config`, keeping the already open device of `previous` wherever an entry is
    /// unchanged (a configuration reload): a tape keeps its position, and no image is ever
    /// open twice through two devices with their own state.
    pub fn reopen(config: &InventoryConfig, previous: &Self) -> Result<Self, InventoryError> {
        let (libraries, drives) = super::library::config::open_libraries(config, previous)?;
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
                    None => open_one(c)?,
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

/// Configured designators (or derived ones, filled in when the config file was read), or
/// for a device built in code without any, the one derived from its name alone.
pub(crate) fn emulated_designators(c: &DeviceConfig) -> Vec<Designator> {
    if c.designators.is_empty() {
        vec![derived_designator(None, &c.name)]
    } else {
        c.designators.clone()
    }
}

/// Opens an emulated tape drive over its SIMH image. The inventory's `early_warning` is the
/// image offset where early warning starts; the drive wants the size of the zone before
/// `capacity`. A half-written record found at open is cut off and reported on stderr.
fn open_tape(c: &DeviceConfig) -> Result<Arc<dyn ScsiDevice>, InventoryError> {
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
    let (tape, report) =
        EmulatedTape::open(c.name.clone(), &c.path, config).map_err(|e| InventoryError::Open {
            device: c.name.clone(),
            source: Box::new(e),
        })?;
    if !report.is_clean() {
        eprintln!("xcopyd: tape {:?}: {report}", c.name);
    }
    Ok(Arc::new(tape))
}

#[cfg(test)]
#[path = "inventory_tests.rs"]
mod tests;
