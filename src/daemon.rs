//! The daemon: its configuration file (DESIGN.md "Daemon"), the embedded default, and the
//! wiring of inventory -> copy manager -> dispatcher -> iSCSI target.
//!
//! ```toml
//! [iscsi]
//! listen = "127.0.0.1:3260"
//! target = "iqn.2026-11.org.xcopyd:mover"
//! [limits]                # optional: scsi::Limits, what VPD 8Fh advertises and the copy
//! max_segment_descriptors = 256   # manager enforces
//! [daemon]                # optional
//! shutdown_grace_secs = 30        # how long SIGTERM lets running copies finish
//! copy_buffers = 32               # 1 MiB buffers per copying thread's pool (4..=1024)
//! copy_limit = "200MiB"           # each EXTENDED COPY reads its sources at most this per
//!                                 # second (default: unlimited; devices: `limit`)
//! admin_socket = "xcopyd.sock"    # xcopy status/abort (the binary's default: state dir)
//! state_dir = "/var/lib/xcopyd"   # persistent reservations (APTPL) of each device, in
//!                                 # reservations/NAME.toml (default: xcopyd::state::state_dir)
//! [metrics]               # optional: Prometheus text at http://LISTEN/metrics
//! listen = "127.0.0.1:9480"
//! [tcmu]                  # optional; present = serve LIO user backstores (frontend::tcmu)
//! subtype = "xcopyd"              # dev_config "<subtype>/<inventory device name>"
//! [[lun]]
//! device = "disk0"
//! [[device]]              # the inventory (device::inventory)
//! …
//! ```
//!
//! Every LUN is a device of the inventory, and every LUN is a copy manager whose EXTENDED
//! COPY resolves CSCDs against that same inventory (one opened device per entry, shared by
//! the LUN map and the copy engine, so a tape has one position). A reload
//! ([`Daemon::reload`]) reopens only the entries that changed and swaps the LUN map, which
//! raises REPORTED LUNS DATA HAS CHANGED.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::admin::AdminSocket;
use crate::copy::engine;
use crate::copy::limit::DeviceLimits;
use crate::copy::manager::CopyManager;
use crate::copy::run::Resolve;
use crate::copy::Nexus;
use crate::device::inventory::{Inventory, InventoryConfig, InventoryError};
use crate::device::ScsiDevice;
use crate::frontend::dispatch::Lun;
use crate::frontend::iscsi::auth::{Chap, Credentials, Initiators};
use crate::frontend::iscsi::{self, Target, TargetConfig};
use crate::frontend::tcmu::scan::{Resolver, Scanner};
use crate::frontend::Dispatcher;
use crate::metrics::{Metrics, MetricsServer};
use crate::scsi::target_descriptor::CscdDescriptor;
use crate::scsi::Limits;

/// The target name served when the config names none.
pub const DEFAULT_TARGET: &str = "iqn.2026-11.org.xcopyd:mover";
/// The address listened on when the config names none.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3260";
/// How long SIGTERM lets running copies finish by default.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The configuration served with no `--config`: a 64 MiB sparse disk and a tape image in
/// the state directory (relative paths resolve against it), LUN 0 and LUN 1.
pub const EMBEDDED_DEFAULT: &str = r#"
[iscsi]
listen = "127.0.0.1:3260"
target = "iqn.2026-11.org.xcopyd:mover"

[[device]]
name = "disk0"
kind = "disk"
path = "disk0.img"
block_size = 512
size = "64MiB"
designator = "naa.5001405a1b2c3d01"

[[device]]
name = "tape0"
kind = "tape"
path = "tape0.tap"
block_size = 0
designator = "naa.5001405a1b2c3d02"

[[lun]]
device = "disk0"

[[lun]]
device = "tape0"
"#;

/// Why the daemon could not be configured or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    #[error("config {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config: {0}")]
    Invalid(String),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error("state directory {}: {source}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("iSCSI listen on {listen}: {source}")]
    Listen {
        listen: String,
        #[source]
        source: std::io::Error,
    },
}

/// The daemon configuration, parsed and checked (devices not yet opened).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonConfig {
    pub listen: String,
    pub target: String,
    /// LUN n serves the inventory device named `luns[n]`.
    pub luns: Vec<String>,
    pub limits: Limits,
    pub shutdown_grace: Duration,
    /// 1 MiB buffers in each copying thread's pool (copy::engine::set_pool_buffers).
    pub copy_buffers: u16,
    /// `[daemon] copy_limit`: bytes per second each copy may read from its sources.
    pub copy_limit: Option<u64>,
    pub inventory: InventoryConfig,
    /// `[daemon] state_dir`: where APTPL reservations are kept (`None`: the default state
    /// directory, [`crate::state::state_dir`]).
    pub state_dir: Option<PathBuf>,
    /// `[tcmu]`: serve the LIO user backstores whose dev_config names this subtype.
    pub tcmu: Option<TcmuConfig>,
    /// `[[initiator]]`: who may log in, with their CHAP secrets (none: anyone, which only a
    /// loopback listener or `allow_anonymous` permits).
    pub initiators: Initiators,
    /// `[iscsi] allow_anonymous`: no `[[initiator]]` table on a non-loopback listener.
    pub allow_anonymous: bool,
    /// `[daemon] admin_socket`: where `xcopy status` and `xcopy abort` reach the daemon
    /// (None: no admin socket; the xcopyd binary then uses `xcopyd.sock` in the state
    /// directory).
    pub admin_socket: Option<PathBuf>,
    /// The admin socket is the binary's default, not configured: failing to serve it (no
    /// state directory, another daemon answering there) is a warning, not a refusal to start.
    pub admin_socket_implicit: bool,
    /// `[iscsi]` bounds on what one peer may hold.
    pub iscsi: IscsiLimits,
    /// `[metrics] listen`: where Prometheus scrapes `/metrics` (None: not served).
    pub metrics_listen: Option<String>,
    /// `[ndmp]`: the NDMP v4 server (None: not served).
    pub ndmp: Option<crate::ndmp::NdmpConfig>,
}

/// The `[metrics]` table.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MetricsTable {
    listen: Option<String>,
}

/// The `[iscsi]` keys that bound what one peer may hold (defaults: [`TargetConfig::new`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IscsiLimits {
    pub max_connections: usize,
    pub max_sessions_per_initiator: usize,
    pub login_timeout: Duration,
    pub idle_timeout: Duration,
    pub queue_depth: u32,
    pub max_command_data: u32,
    pub max_data_out: usize,
    pub data_out_timeout: Duration,
}

impl Default for IscsiLimits {
    fn default() -> Self {
        let t = TargetConfig::new("", "");
        Self {
            max_connections: t.max_connections,
            max_sessions_per_initiator: t.max_sessions_per_initiator,
            login_timeout: t.login_timeout,
            idle_timeout: t.idle_timeout,
            queue_depth: t.queue_depth,
            max_command_data: t.max_command_data,
            max_data_out: t.max_data_out,
            data_out_timeout: t.data_out_timeout,
        }
    }
}

impl IscsiLimits {
    fn from_table(t: &IscsiTable) -> Result<Self, DaemonError> {
        let d = Self::default();
        let bad = |key: &str, why: &str| DaemonError::Invalid(format!("[iscsi] {key}: {why}"));
        let positive = |key: &str, v: Option<u64>, default: u64| match v {
            Some(0) => Err(bad(key, "must be at least 1")),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        let secs = |key: &str, v: Option<u64>, default: Duration| {
            positive(key, v, default.as_secs()).map(Duration::from_secs)
        };
        let max_command_data = positive(
            "max_command_bytes",
            t.max_command_bytes,
            u64::from(d.max_command_data),
        )?;
        let max_data_out = positive(
            "max_data_out_bytes",
            t.max_data_out_bytes,
            d.max_data_out as u64,
        )?;
        if max_data_out < max_command_data {
            return Err(bad(
                "max_data_out_bytes",
                "must be at least max_command_bytes (one largest write must fit)",
            ));
        }
        let queue_depth = positive("queue_depth", t.queue_depth.map(u64::from), 32)?;
        Ok(Self {
            max_connections: positive(
                "max_connections",
                t.max_connections.map(|n| n as u64),
                d.max_connections as u64,
            )? as usize,
            max_sessions_per_initiator: positive(
                "max_sessions_per_initiator",
                t.max_sessions_per_initiator.map(|n| n as u64),
                d.max_sessions_per_initiator as u64,
            )? as usize,
            login_timeout: secs("login_timeout_secs", t.login_timeout_secs, d.login_timeout)?,
            idle_timeout: secs("idle_timeout_secs", t.idle_timeout_secs, d.idle_timeout)?,
            queue_depth: u32::try_from(queue_depth)
                .ok()
                .filter(|&q| q <= 1024)
                .ok_or_else(|| bad("queue_depth", "must be 1..=1024"))?,
            max_command_data: u32::try_from(max_command_data)
                .map_err(|_| bad("max_command_bytes", "must fit 32 bits"))?,
            max_data_out: usize::try_from(max_data_out)
                .map_err(|_| bad("max_data_out_bytes", "too large"))?,
            data_out_timeout: secs(
                "data_out_timeout_secs",
                t.data_out_timeout_secs,
                d.data_out_timeout,
            )?,
        })
    }
}

/// A secret given inline or in a file that only the daemon's user may read.
fn secret(
    who: &str,
    key: &str,
    inline: Option<String>,
    file: Option<PathBuf>,
    base: &Path,
) -> Result<Option<Vec<u8>>, DaemonError> {
    use std::os::unix::fs::PermissionsExt;
    let bad = |why: String| DaemonError::Invalid(format!("[[initiator]] {who:?}: {key}: {why}"));
    match (inline, file) {
        (Some(_), Some(_)) => Err(bad(format!("give {key} or {key}_file, not both"))),
        (Some(s), None) => Ok(Some(s.into_bytes())),
        (None, Some(f)) => {
            let path = base.join(f);
            let meta =
                std::fs::metadata(&path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(bad(format!(
                    "{} is readable or writable by group or others (chmod 600 it)",
                    path.display()
                )));
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| bad(format!("{}: {e}", path.display())))?;
            Ok(Some(
                text.trim_end_matches(['\n', '\r']).as_bytes().to_vec(),
            ))
        }
        (None, None) => Ok(None),
    }
}

/// The `[[initiator]]` table.
fn initiators(doc: &toml::Table, base: &Path) -> Result<Initiators, DaemonError> {
    let Some(v) = doc.get("initiator") else {
        return Ok(Initiators::anonymous());
    };
    let entries: Vec<InitiatorTable> = v
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| DaemonError::Invalid(format!("[[initiator]]: {e}")))?;
    let mut table = Vec::new();
    for e in entries {
        let who = e.name.clone();
        let chap_secret = secret(&who, "chap_secret", e.chap_secret, e.chap_secret_file, base)?
            .ok_or_else(|| {
                DaemonError::Invalid(format!(
                    "[[initiator]] {who:?}: chap_secret (or chap_secret_file) is required"
                ))
            })?;
        let mutual_secret = secret(
            &who,
            "mutual_chap_secret",
            e.mutual_chap_secret,
            e.mutual_chap_secret_file,
            base,
        )?;
        let mutual = match (e.mutual_chap_user, mutual_secret) {
            (Some(user), Some(secret)) => Some(Chap { user, secret }),
            (None, None) => None,
            _ => {
                return Err(DaemonError::Invalid(format!(
                    "[[initiator]] {who:?}: mutual_chap_user and mutual_chap_secret go together"
                )))
            }
        };
        let credentials = Credentials {
            chap: Chap {
                user: e.chap_user,
                secret: chap_secret,
            },
            mutual,
        };
        table.push((e.name, credentials));
    }
    Initiators::listed(table).map_err(|e| DaemonError::Invalid(format!("[[initiator]]: {e}")))
}

/// Whether every address `listen` names is a loopback one.
fn is_loopback(listen: &str) -> bool {
    use std::net::ToSocketAddrs;
    match listen.to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

/// The `[tcmu]` table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcmuConfig {
    /// The handler subtype in `dev_config=<subtype>/<device>`; default "xcopyd".
    #[serde(default = "default_subtype")]
    pub subtype: String,
}

fn default_subtype() -> String {
    "xcopyd".into()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct IscsiTable {
    listen: Option<String>,
    target: Option<String>,
    allow_anonymous: Option<bool>,
    max_connections: Option<usize>,
    max_sessions_per_initiator: Option<usize>,
    login_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    queue_depth: Option<u32>,
    max_command_bytes: Option<u64>,
    max_data_out_bytes: Option<u64>,
    data_out_timeout_secs: Option<u64>,
}

/// One `[[initiator]]` entry (DESIGN.md "Initiators and authentication").
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InitiatorTable {
    name: String,
    chap_user: String,
    chap_secret: Option<String>,
    chap_secret_file: Option<PathBuf>,
    mutual_chap_user: Option<String>,
    mutual_chap_secret: Option<String>,
    mutual_chap_secret_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LunTable {
    device: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DaemonTable {
    shutdown_grace_secs: Option<u64>,
    copy_buffers: Option<u16>,
    copy_limit: Option<toml::Value>,
    admin_socket: Option<PathBuf>,
    state_dir: Option<PathBuf>,
}

/// Top-level keys the daemon config may have.
const KNOWN_KEYS: &[&str] = &[
    "iscsi",
    "metrics",
    "initiator",
    "lun",
    "limits",
    "daemon",
    "device",
    "tcmu",
    "library",
    "object_store",
    "ndmp",
];

fn table<T: serde::de::DeserializeOwned + Default>(
    doc: &toml::Table,
    key: &str,
) -> Result<T, DaemonError> {
    match doc.get(key) {
        None => Ok(T::default()),
        Some(v) => v
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| DaemonError::Invalid(format!("[{key}]: {e}"))),
    }
}

impl DaemonConfig {
    /// What the iSCSI target serves with.
    pub fn target_config(&self) -> TargetConfig {
        let l = &self.iscsi;
        TargetConfig {
            initiators: Arc::new(self.initiators.clone()),
            max_connections: l.max_connections,
            max_sessions_per_initiator: l.max_sessions_per_initiator,
            login_timeout: l.login_timeout,
            idle_timeout: l.idle_timeout,
            queue_depth: l.queue_depth,
            max_command_data: l.max_command_data,
            max_data_out: l.max_data_out,
            data_out_timeout: l.data_out_timeout,
            ..TargetConfig::new(&self.listen, &self.target)
        }
    }

    /// Reads a config file; relative device paths resolve against its directory.
    pub fn load(path: &Path) -> Result<Self, DaemonError> {
        let text = std::fs::read_to_string(path).map_err(|source| DaemonError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base)
    }

    /// The embedded default with its images in `state_dir` (created if missing).
    pub fn embedded(state_dir: &Path) -> Result<Self, DaemonError> {
        let state_err = |source| DaemonError::StateDir {
            path: state_dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(state_dir).map_err(state_err)?;
        // An empty image is a blank tape (BOT = end of data).
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(state_dir.join("tape0.tap"))
            .map_err(state_err)?;
        let mut config = Self::parse(EMBEDDED_DEFAULT, state_dir)?;
        config.state_dir = Some(state_dir.to_path_buf());
        Ok(config)
    }

    /// Parses config text; relative device paths resolve against `base_dir`.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Self, DaemonError> {
        let doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| DaemonError::Invalid(e.to_string()))?;
        if let Some(k) = doc.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            return Err(DaemonError::Invalid(format!(
                "unknown top-level key `{k}` (known: {})",
                KNOWN_KEYS.join(", ")
            )));
        }
        let inventory = InventoryConfig::from_table(&doc, base_dir)?;
        let iscsi: IscsiTable = table(&doc, "iscsi")?;
        let initiators = initiators(&doc, base_dir)?;
        let listen = iscsi
            .listen
            .clone()
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let allow_anonymous = iscsi.allow_anonymous.unwrap_or(false);
        let iscsi_limits = IscsiLimits::from_table(&iscsi)?;
        let metrics: MetricsTable = table(&doc, "metrics")?;
        let limits: Limits = table(&doc, "limits")?;
        let daemon: DaemonTable = table(&doc, "daemon")?;
        let luns: Vec<LunTable> = match doc.get("lun") {
            None => Vec::new(),
            Some(v) => v
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| DaemonError::Invalid(format!("[[lun]]: {e}")))?,
        };
        let luns: Vec<String> = luns.into_iter().map(|l| l.device).collect();
        let tcmu: Option<TcmuConfig> = match doc.get("tcmu") {
            None => None,
            Some(v) => Some(
                v.clone()
                    .try_into()
                    .map_err(|e: toml::de::Error| DaemonError::Invalid(format!("[tcmu]: {e}")))?,
            ),
        };
        let copy_buffers = daemon.copy_buffers.unwrap_or(engine::BUFFERS);
        if !engine::POOL_BUFFERS.contains(&copy_buffers) {
            return Err(DaemonError::Invalid(format!(
                "[daemon] copy_buffers = {copy_buffers}: must be {}..={}",
                engine::POOL_BUFFERS.start(),
                engine::POOL_BUFFERS.end()
            )));
        }
        let copy_limit = daemon.copy_limit.as_ref().map(rate).transpose()?;
        for name in &luns {
            let library = inventory.libraries.iter().any(|l| &l.name == name);
            if !library && !inventory.devices.iter().any(|d| &d.name == name) {
                return Err(DaemonError::Invalid(format!(
                    "[[lun]] device {name:?} is not a [[device]] of the inventory"
                )));
            }
        }
        Self {
            listen,
            target: iscsi.target.unwrap_or_else(|| DEFAULT_TARGET.into()),
            initiators,
            allow_anonymous,
            iscsi: iscsi_limits,
            luns,
            limits,
            shutdown_grace: daemon
                .shutdown_grace_secs
                .map_or(DEFAULT_SHUTDOWN_GRACE, Duration::from_secs),
            copy_buffers,
            copy_limit,
            inventory,
            state_dir: daemon.state_dir.map(|d| base_dir.join(d)),
            tcmu,
            admin_socket: daemon.admin_socket.map(|p| base_dir.join(p)),
            admin_socket_implicit: false,
            metrics_listen: metrics.listen,
            ndmp: crate::ndmp::NdmpConfig::from_doc(&doc, base_dir)
                .map_err(DaemonError::Invalid)?,
        }
        .checked()
    }

    fn checked(self) -> Result<Self, DaemonError> {
        self.check_exposure()?;
        Ok(self)
    }

    /// Anonymous logins only on a loopback listener, unless `allow_anonymous` says so:
    /// checked at parse and again after `xcopyd --listen` moves the listener.
    pub fn check_exposure(&self) -> Result<(), DaemonError> {
        if self.initiators.is_anonymous() && !self.allow_anonymous && !is_loopback(&self.listen) {
            return Err(DaemonError::Invalid(format!(
                "[iscsi] listen = {:?} is not a loopback address, and no [[initiator]] \
                 table says who may log in: list the initiators with their CHAP secrets, or \
                 set [iscsi] allow_anonymous = true to let any initiator in unauthenticated",
                self.listen
            )));
        }
        Ok(())
    }
}

/// `[daemon] copy_limit`: bytes per second, an integer or a size (`"200MiB"`), at least 1.
fn rate(v: &toml::Value) -> Result<u64, DaemonError> {
    let bad = |why: String| DaemonError::Invalid(format!("[daemon] copy_limit: {why}"));
    let n = match v {
        toml::Value::String(s) => crate::size::parse(s).map_err(bad)?,
        toml::Value::Integer(i) => {
            u64::try_from(*i).map_err(|_| bad(format!("{i} is negative")))?
        }
        other => return Err(bad(format!("expected a size, got {}", other.type_str()))),
    };
    if n == 0 {
        return Err(bad("must be at least 1 byte per second".into()));
    }
    Ok(n)
}

/// Each inventory device's `limit`.
fn limits_of(inventory: &InventoryConfig) -> impl Iterator<Item = (&str, u64)> {
    inventory
        .devices
        .iter()
        .filter_map(|d| Some((d.name.as_str(), d.limit?)))
}

/// The inventory the copy manager resolves CSCDs against, swapped whole by a reload; a
/// copy already running keeps the devices it resolved.
#[derive(Default)]
struct SharedInventory(RwLock<Arc<Inventory>>);

impl SharedInventory {
    fn get(&self) -> Arc<Inventory> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, inventory: Arc<Inventory>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = inventory;
    }
}

impl Resolve for SharedInventory {
    fn resolve(&self, cscd: &CscdDescriptor, nexus: &Nexus) -> Option<Arc<dyn ScsiDevice>> {
        self.get().resolve(cscd, nexus)
    }
}

/// The running daemon.
pub struct Daemon {
    config: DaemonConfig,
    inventory: Arc<SharedInventory>,
    copy: Arc<CopyManager>,
    device_limits: Arc<DeviceLimits>,
    dispatcher: Arc<Dispatcher>,
    target: Target,
    tcmu: Option<Scanner>,
    admin: Option<AdminSocket>,
    metrics: Option<MetricsServer>,
    ndmp: Option<crate::ndmp::NdmpServer>,
}

/// The LUN map: each `[[lun]]`'s device, with its `allow` list (LUN masking).
fn lun_devices(config: &DaemonConfig, inventory: &Inventory) -> Result<Vec<Lun>, DaemonError> {
    config
        .luns
        .iter()
        .map(|name| {
            inventory
                .by_name(name)
                .map(|d| Lun {
                    device: d.device.clone(),
                    allow: d.config.allow.clone(),
                })
                .ok_or_else(|| DaemonError::Invalid(format!("[[lun]] device {name:?} unknown")))
        })
        .collect()
}

/// Tells each library which LUN its drives are (READ ELEMENT STATUS reports LUNs 0-7 of
/// this target with LU VALID, as the Linux ch driver reads them).
fn set_drive_luns(config: &DaemonConfig, inventory: &Inventory) {
    for library in inventory.libraries() {
        let luns: Vec<Option<u64>> = library
            .drives()
            .iter()
            .map(|d| {
                let name = &d.config().name;
                config.luns.iter().position(|l| l == name).map(|n| n as u64)
            })
            .collect();
        library.set_drive_luns(&luns);
    }
}

impl Daemon {
    /// Opens the inventory and starts serving it over iSCSI.
    pub fn start(config: DaemonConfig) -> Result<Self, DaemonError> {
        engine::set_pool_buffers(config.copy_buffers).map_err(DaemonError::Invalid)?;
        let inventory = Arc::new(Inventory::open(&config.inventory)?);
        persist_reservations(&config, &inventory);
        let luns = lun_devices(&config, &inventory)?;
        set_drive_luns(&config, &inventory);
        let shared = Arc::new(SharedInventory::default());
        shared.set(inventory.clone());
        let metrics = Arc::new(Metrics::default());
        let device_limits =
            Arc::new(DeviceLimits::default().with_metrics(metrics.device_throttled.clone()));
        device_limits.configure(limits_of(&config.inventory));
        let copy = Arc::new(
            CopyManager::new(shared.clone(), config.limits.clone())
                .with_metrics(metrics.clone())
                .with_device_limits(device_limits.clone())
                .with_copy_limit(config.copy_limit),
        );
        let dispatcher = Arc::new(
            Dispatcher::new(luns, copy.clone())
                .with_limits(config.limits.clone())
                .with_metrics(metrics.clone()),
        );
        let target_config = TargetConfig {
            metrics: Some(metrics.clone()),
            ..config.target_config()
        };
        let target = iscsi::start(target_config, dispatcher.clone()).map_err(|source| {
            DaemonError::Listen {
                listen: config.listen.clone(),
                source,
            }
        })?;
        tracing::info!(
            listen = %target.local_addr(),
            target = %config.target,
            luns = ?config.luns,
            devices = inventory.devices().len(),
            "xcopyd serving"
        );
        for (n, name) in config.luns.iter().enumerate() {
            if let Some(d) = inventory.by_name(name) {
                let designators: Vec<String> =
                    d.designators.iter().map(ToString::to_string).collect();
                tracing::info!(lun = n, device = %name, kind = ?d.config.kind, ?designators, "LUN");
            }
        }
        let tcmu = match &config.tcmu {
            None => None,
            Some(t) => {
                let (inv, copy, limits) = (shared.clone(), copy.clone(), config.limits.clone());
                let tcmu_metrics = metrics.clone();
                // Each TCMU device is LUN 0 of a dispatcher of its own, sharing the copy
                // manager (and so the held copy results) with every other LUN.
                let resolve: Arc<Resolver> = Arc::new(move |name: &str| {
                    let inventory = inv.get();
                    let d = inventory.by_name(name)?;
                    let lun = Lun {
                        device: d.device.clone(),
                        allow: d.config.allow.clone(),
                    };
                    let copy: Arc<dyn crate::copy::CopyService> = copy.clone();
                    Some(Arc::new(
                        Dispatcher::new(vec![lun], copy)
                            .with_limits(limits.clone())
                            .with_metrics(tcmu_metrics.clone()),
                    ))
                });
                let scanner =
                    Scanner::start(t.subtype.clone(), PathBuf::from("/sys/class/uio"), resolve)
                        .map_err(|e| DaemonError::Invalid(format!("[tcmu]: {e}")))?;
                tracing::info!(subtype = %t.subtype, "tcmu: watching /sys/class/uio");
                Some(scanner)
            }
        };
        let metrics_server = match &config.metrics_listen {
            Some(listen) => {
                let registry = copy.registry().clone();
                let copies: crate::metrics::CopiesView =
                    Arc::new(move || serde_json::json!({ "copies": registry.list() }));
                let server =
                    MetricsServer::start(listen, metrics.clone(), copies).map_err(|source| {
                        DaemonError::Listen {
                            listen: format!("[metrics] {listen}"),
                            source,
                        }
                    })?;
                if !is_loopback(listen) {
                    tracing::warn!(
                        listen,
                        "[metrics] listens beyond loopback: initiator and device names are visible to whoever reaches it"
                    );
                }
                tracing::info!(listen = %server.local_addr(), "metrics at /metrics");
                Some(server)
            }
            None => None,
        };
        let admin = match &config.admin_socket {
            Some(path) => match AdminSocket::start(path, copy.registry().clone()) {
                Ok(socket) => {
                    tracing::info!(socket = %path.display(), "admin socket");
                    Some(socket)
                }
                Err(e) if config.admin_socket_implicit => {
                    tracing::warn!(
                        socket = %path.display(),
                        "no admin socket (xcopy status and abort cannot reach this daemon; set [daemon] admin_socket): {e}"
                    );
                    None
                }
                Err(e) => {
                    return Err(DaemonError::Invalid(format!(
                        "admin socket {}: {e}",
                        path.display()
                    )))
                }
            },
            None => None,
        };
        let ndmp = start_ndmp(&config, &shared, &copy)?;
        Ok(Self {
            config,
            inventory: shared,
            copy,
            device_limits,
            dispatcher,
            target,
            tcmu,
            admin,
            metrics: metrics_server,
            ndmp,
        })
    }

    /// Where NDMP is served, if it is.
    pub fn ndmp_addr(&self) -> Option<std::net::SocketAddr> {
        self.ndmp.as_ref().map(crate::ndmp::NdmpServer::local_addr)
    }

    /// Where `/metrics` is served, if it is.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::local_addr)
    }

    /// The copies this daemon runs and ran lately.
    pub fn registry(&self) -> &Arc<crate::copy::registry::Registry> {
        self.copy.registry()
    }

    /// Where the target listens (the port chosen when the config said 0).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.target.local_addr()
    }

    pub fn config(&self) -> &DaemonConfig {
        &self.config
    }

    /// Applies a re-read configuration: the inventory (unchanged entries keep their open
    /// device) and the LUN map. Listen address, target name and limits need a restart;
    /// a change to them is logged and ignored. On error nothing changes.
    pub fn reload(&mut self, new: DaemonConfig) -> Result<(), DaemonError> {
        // Copies whose thread makes its ring from now on get the new pool.
        engine::set_pool_buffers(new.copy_buffers).map_err(DaemonError::Invalid)?;
        let old = self.inventory.get();
        let inventory = Arc::new(Inventory::reopen(&new.inventory, &old)?);
        carry_reservations(&old, &inventory);
        let luns = lun_devices(&new, &inventory)?;
        set_drive_luns(&new, &inventory);
        if new.listen != self.config.listen
            || new.target != self.config.target
            || new.initiators != self.config.initiators
            || new.iscsi != self.config.iscsi
            || new.limits != self.config.limits
            || new.tcmu != self.config.tcmu
            || new.copy_limit != self.config.copy_limit
        {
            tracing::warn!(
                "reload: [iscsi], [[initiator]], [limits], [tcmu] and [daemon] copy_limit changes take effect at restart"
            );
        }
        self.inventory.set(inventory.clone());
        self.device_limits.configure(limits_of(&new.inventory));
        self.dispatcher.set_luns(luns);
        tracing::info!(
            luns = ?new.luns,
            devices = inventory.devices().len(),
            "configuration reloaded"
        );
        self.config.luns = new.luns;
        self.config.inventory = new.inventory;
        self.config.shutdown_grace = new.shutdown_grace;
        Ok(())
    }

    /// Copies running now.
    pub fn running_copies(&self) -> usize {
        self.copy.running()
    }

    /// Graceful stop: no new connections; running copies get `grace` to finish (their
    /// sessions stay up, so RECEIVE COPY RESULTS keeps answering); then every task still
    /// running is aborted and every connection closed.
    pub fn shutdown(self, grace: Duration) {
        self.target.stop_accepting();
        let deadline = Instant::now() + grace;
        let running = self.copy.running();
        if running > 0 {
            tracing::info!(running, grace_secs = grace.as_secs(), "waiting for copies");
        }
        while self.copy.running() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let left = self.copy.running();
        if left > 0 {
            tracing::warn!(running = left, "aborting copies still running");
        }
        if let Some(t) = self.tcmu {
            t.stop();
        }
        if let Some(a) = self.admin {
            a.close();
        }
        drop(self.ndmp);
        self.target.shutdown();
        tracing::info!("xcopyd stopped");
    }
}

/// Starts the NDMP server of `[ndmp]`, over the same inventory and copy manager.
fn start_ndmp(
    config: &DaemonConfig,
    shared: &Arc<SharedInventory>,
    copy: &Arc<CopyManager>,
) -> Result<Option<crate::ndmp::NdmpServer>, DaemonError> {
    let Some(c) = &config.ndmp else {
        return Ok(None);
    };
    let inv = shared.clone();
    let services = crate::ndmp::Services::new(
        c.clone(),
        Arc::new(move || inv.get()),
        copy.clone(),
        config.limits.clone(),
    );
    let server = crate::ndmp::NdmpServer::start(Arc::new(services)).map_err(|source| {
        DaemonError::Listen {
            listen: format!("[ndmp] {}", c.listen),
            source,
        }
    })?;
    if !is_loopback(&c.listen) {
        tracing::warn!(listen = %c.listen, "[ndmp] listens beyond loopback");
    }
    tracing::info!(listen = %server.local_addr(), user = %c.user, initiator = %c.initiator, "ndmp: serving NDMP v4");
    Ok(Some(server))
}

/// Restores each emulated device's APTPL reservations from `reservations/NAME.toml` in the
/// state directory, and saves them there from now on. An unreadable file is logged and the
/// device starts without reservations.
fn persist_reservations(config: &DaemonConfig, inventory: &Inventory) {
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
fn carry_reservations(old: &Inventory, new: &Inventory) {
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

/// Where the state directory defaults to (moved to [`crate::state`], which the CLI shares).
pub use crate::state::default_state_dir;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::iscsi::auth::Admission;

    #[test]
    fn embedded_default_is_the_design_contract() {
        let dir = tempfile::tempdir().unwrap();
        let c = DaemonConfig::embedded(dir.path()).unwrap();
        assert_eq!(c.listen, "127.0.0.1:3260");
        assert_eq!(c.target, "iqn.2026-11.org.xcopyd:mover");
        assert_eq!(c.luns, ["disk0", "tape0"]);
        assert_eq!(c.inventory.devices[0].path, dir.path().join("disk0.img"));
        assert_eq!(c.inventory.devices[0].size, Some(64 << 20));
        assert_eq!(
            c.inventory.devices[1].designators[0].to_string(),
            "naa.5001405a1b2c3d02"
        );
        assert!(dir.path().join("tape0.tap").exists());
        assert_eq!(c.state_dir.as_deref(), Some(dir.path()));
    }

    #[test]
    fn config_keys_limits_and_errors() {
        let base = Path::new("/srv");
        let c = DaemonConfig::parse(
            "[iscsi]\nlisten = \"0.0.0.0:3261\"\nallow_anonymous = true\n\
             [limits]\nmax_segment_descriptors = 8\n\
             [daemon]\nshutdown_grace_secs = 2\n\
             [[device]]\nname = \"d\"\nkind = \"disk\"\npath = \"d.img\"\n[[lun]]\ndevice = \"d\"\n",
            base,
        )
        .unwrap();
        assert_eq!(c.listen, "0.0.0.0:3261");
        assert_eq!(c.target, DEFAULT_TARGET);
        assert_eq!(c.limits.max_segment_descriptors, 8);
        assert_eq!(
            c.limits.max_cscd_descriptors,
            Limits::default().max_cscd_descriptors
        );
        assert_eq!(c.shutdown_grace, Duration::from_secs(2));
        assert_eq!(c.copy_buffers, engine::BUFFERS);
        let b = DaemonConfig::parse("[daemon]\ncopy_buffers = 64\n", base).unwrap();
        assert_eq!(b.copy_buffers, 64);
        assert_eq!(b.state_dir, None);
        let b = DaemonConfig::parse("[daemon]\nstate_dir = \"st\"\n", base).unwrap();
        assert_eq!(b.state_dir, Some(base.join("st")));
        let e = DaemonConfig::parse("[daemon]\ncopy_buffers = 3\n", base).unwrap_err();
        assert!(e.to_string().contains("copy_buffers = 3"), "{e}");
        assert_eq!(c.inventory.devices[0].path, base.join("d.img"));
        assert_eq!(c.tcmu, None);
        let t = DaemonConfig::parse("[tcmu]\n", base).unwrap();
        assert_eq!(t.tcmu.unwrap().subtype, "xcopyd");
        let t = DaemonConfig::parse("[tcmu]\nsubtype = \"mover\"\n", base).unwrap();
        assert_eq!(t.tcmu.unwrap().subtype, "mover");
        for bad in [
            "[[lun]]\ndevice = \"nope\"\n",
            "[iscsi]\nlisten = 1\n",
            "[iscsi]\nlisen = \"x\"\n",
            "[limits]\nmax_segments = 1\n",
            "[isci]\n",
            "[tcmu]\nsubtipe = \"x\"\n",
        ] {
            assert!(DaemonConfig::parse(bad, base).is_err(), "{bad}");
        }
    }

    #[test]
    fn anonymous_logins_only_on_loopback_unless_allowed() {
        let base = Path::new("/srv");
        let e = DaemonConfig::parse("[iscsi]\nlisten = \"0.0.0.0:3260\"\n", base).unwrap_err();
        assert!(e.to_string().contains("allow_anonymous"), "{e}");
        let e = DaemonConfig::parse("[iscsi]\nlisten = \"192.0.2.1:3260\"\n", base).unwrap_err();
        assert!(e.to_string().contains("not a loopback address"), "{e}");
        for ok in ["127.0.0.1:3260", "[::1]:3260", "localhost:3260"] {
            let c = DaemonConfig::parse(&format!("[iscsi]\nlisten = \"{ok}\"\n"), base).unwrap();
            assert!(c.initiators.is_anonymous(), "{ok}");
        }
        let c = DaemonConfig::parse(
            "[iscsi]\nlisten = \"0.0.0.0:3260\"\n\
             [[initiator]]\nname = \"iqn.a\"\nchap_user = \"a\"\nchap_secret = \"twelve-chars\"\n",
            base,
        )
        .unwrap();
        assert_eq!(c.initiators.admit("iqn.b"), Admission::Refused);
        assert!(matches!(c.initiators.admit("IQN.A"), Admission::Chap(_)));
        assert_eq!(
            c.target_config().initiators.admit("iqn.b"),
            Admission::Refused
        );
    }

    #[test]
    fn initiator_entries_and_secret_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.secret");
        std::fs::write(&file, "from-a-file-123\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = "[[initiator]]\nname = \"iqn.a\"\nchap_user = \"a\"\n\
                    chap_secret_file = \"a.secret\"\nmutual_chap_user = \"t\"\n\
                    mutual_chap_secret = \"another-12-chars\"\n";
        let e = DaemonConfig::parse(text, dir.path()).unwrap_err();
        assert!(
            e.to_string()
                .contains("readable or writable by group or others"),
            "{e}"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = DaemonConfig::parse(text, dir.path()).unwrap();
        let Admission::Chap(creds) = c.initiators.admit("iqn.a") else {
            panic!("iqn.a not admitted");
        };
        assert_eq!(creds.chap.secret, b"from-a-file-123");
        assert_eq!(creds.mutual.unwrap().user, "t");
        for bad in [
            "[[initiator]]\nname = \"x\"\nchap_user = \"a\"\n",
            "[[initiator]]\nname = \"x\"\nchap_user = \"a\"\nchap_secret = \"short\"\n",
            "[[initiator]]\nname = \"x\"\nchap_user = \"a\"\nchap_secret = \"twelve-chars\"\n\
             mutual_chap_user = \"t\"\n",
            "[[initiator]]\nname = \"x\"\nchap_user = \"a\"\nchap_secret = \"twelve-chars\"\n\
             chap_secret_file = \"a.secret\"\n",
            "[[initiator]]\nname = \"x\"\nchap_user = \"a\"\nchap_secret = \"twelve-chars\"\n\
             chap_sekret = \"x\"\n",
            "[iscsi]\nidle_timeout_secs = 0\n",
            "[iscsi]\nmax_command_bytes = 1048576\nmax_data_out_bytes = 65536\n",
            "[iscsi]\nqueue_depth = 5000\n",
        ] {
            assert!(DaemonConfig::parse(bad, dir.path()).is_err(), "{bad}");
        }
        let c = DaemonConfig::parse(
            "[iscsi]\nmax_connections = 4\nmax_sessions_per_initiator = 2\nlogin_timeout_secs = 3\n\
             idle_timeout_secs = 9\nmax_data_out_bytes = 33554432\ndata_out_timeout_secs = 7\n",
            dir.path(),
        )
        .unwrap();
        let t = c.target_config();
        assert_eq!((t.max_connections, t.max_sessions_per_initiator), (4, 2));
        assert_eq!(
            (t.login_timeout, t.idle_timeout, t.data_out_timeout),
            (
                Duration::from_secs(3),
                Duration::from_secs(9),
                Duration::from_secs(7)
            )
        );
        assert_eq!(t.max_data_out, 32 << 20);
    }

    #[test]
    fn state_dir_rules() {
        let p = |x, h, r| default_state_dir(x, h, r);
        assert_eq!(p(Some("/x"), Some("/h"), true), Path::new("/x/xcopyd"));
        assert_eq!(p(None, Some("/h"), true), Path::new("/var/lib/xcopyd"));
        assert_eq!(
            p(None, Some("/h"), false),
            Path::new("/h/.local/state/xcopyd")
        );
        assert_eq!(
            p(Some(""), Some("/h"), false),
            Path::new("/h/.local/state/xcopyd")
        );
    }

    #[test]
    fn copy_limit_is_a_rate() {
        let base = Path::new("/etc/xcopyd");
        let c = DaemonConfig::parse("[daemon]\ncopy_limit = \"100MiB\"\n", base).unwrap();
        assert_eq!(c.copy_limit, Some(100 << 20));
        let c = DaemonConfig::parse("[daemon]\ncopy_limit = 5000\n", base).unwrap();
        assert_eq!(c.copy_limit, Some(5000));
        assert_eq!(DaemonConfig::parse("", base).unwrap().copy_limit, None);
        for bad in [
            "copy_limit = 0",
            "copy_limit = \"lots\"",
            "copy_limit = true",
        ] {
            let e = DaemonConfig::parse(&format!("[daemon]\n{bad}\n"), base).unwrap_err();
            assert!(e.to_string().contains("[daemon] copy_limit"), "{bad}: {e}");
        }
    }
}
