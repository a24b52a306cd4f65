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
//! state_dir = "/var/lib/xcopyd"   # persistent reservations (APTPL) of each device, in
//!                                 # reservations/NAME.toml (default: xcopyd::state::state_dir)
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

use crate::copy::engine;
use crate::copy::manager::CopyManager;
use crate::copy::run::Resolve;
use crate::copy::Nexus;
use crate::device::inventory::{Inventory, InventoryConfig, InventoryError};
use crate::device::ScsiDevice;
use crate::frontend::iscsi::{self, Target, TargetConfig};
use crate::frontend::tcmu::scan::{Resolver, Scanner};
use crate::frontend::Dispatcher;
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
    pub inventory: InventoryConfig,
    /// `[daemon] state_dir`: where APTPL reservations are kept (`None`: the default state
    /// directory, [`crate::state::state_dir`]).
    pub state_dir: Option<PathBuf>,
    /// `[tcmu]`: serve the LIO user backstores whose dev_config names this subtype.
    pub tcmu: Option<TcmuConfig>,
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
    state_dir: Option<PathBuf>,
}

/// Top-level keys the daemon config may have.
const KNOWN_KEYS: &[&str] = &["iscsi", "lun", "limits", "daemon", "device", "tcmu"];

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
        for name in &luns {
            if !inventory.devices.iter().any(|d| &d.name == name) {
                return Err(DaemonError::Invalid(format!(
                    "[[lun]] device {name:?} is not a [[device]] of the inventory"
                )));
            }
        }
        Ok(Self {
            listen: iscsi.listen.unwrap_or_else(|| DEFAULT_LISTEN.into()),
            target: iscsi.target.unwrap_or_else(|| DEFAULT_TARGET.into()),
            luns,
            limits,
            shutdown_grace: daemon
                .shutdown_grace_secs
                .map_or(DEFAULT_SHUTDOWN_GRACE, Duration::from_secs),
            copy_buffers,
            inventory,
            state_dir: daemon.state_dir.map(|d| base_dir.join(d)),
            tcmu,
        })
    }
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
    dispatcher: Arc<Dispatcher>,
    target: Target,
    tcmu: Option<Scanner>,
}

fn lun_devices(
    config: &DaemonConfig,
    inventory: &Inventory,
) -> Result<Vec<Arc<dyn ScsiDevice>>, DaemonError> {
    config
        .luns
        .iter()
        .map(|name| {
            inventory
                .by_name(name)
                .map(|d| d.device.clone())
                .ok_or_else(|| DaemonError::Invalid(format!("[[lun]] device {name:?} unknown")))
        })
        .collect()
}

impl Daemon {
    /// Opens the inventory and starts serving it over iSCSI.
    pub fn start(config: DaemonConfig) -> Result<Self, DaemonError> {
        engine::set_pool_buffers(config.copy_buffers).map_err(DaemonError::Invalid)?;
        let inventory = Arc::new(Inventory::open(&config.inventory)?);
        persist_reservations(&config, &inventory);
        let luns = lun_devices(&config, &inventory)?;
        let shared = Arc::new(SharedInventory::default());
        shared.set(inventory.clone());
        let copy = Arc::new(CopyManager::new(shared.clone(), config.limits.clone()));
        let dispatcher =
            Arc::new(Dispatcher::new(luns, copy.clone()).with_limits(config.limits.clone()));
        let target = iscsi::start(
            TargetConfig::new(&config.listen, &config.target),
            dispatcher.clone(),
        )
        .map_err(|source| DaemonError::Listen {
            listen: config.listen.clone(),
            source,
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
                // Each TCMU device is LUN 0 of a dispatcher of its own, sharing the copy
                // manager (and so the held copy results) with every other LUN.
                let resolve: Arc<Resolver> = Arc::new(move |name: &str| {
                    let device = inv.get().by_name(name)?.device.clone();
                    let copy: Arc<dyn crate::copy::CopyService> = copy.clone();
                    Some(Arc::new(
                        Dispatcher::new(vec![device], copy).with_limits(limits.clone()),
                    ))
                });
                let scanner =
                    Scanner::start(t.subtype.clone(), PathBuf::from("/sys/class/uio"), resolve)
                        .map_err(|e| DaemonError::Invalid(format!("[tcmu]: {e}")))?;
                tracing::info!(subtype = %t.subtype, "tcmu: watching /sys/class/uio");
                Some(scanner)
            }
        };
        Ok(Self {
            config,
            inventory: shared,
            copy,
            dispatcher,
            target,
            tcmu,
        })
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
        if new.listen != self.config.listen
            || new.target != self.config.target
            || new.limits != self.config.limits
            || new.tcmu != self.config.tcmu
        {
            tracing::warn!("reload: [iscsi], [limits] and [tcmu] changes take effect at restart");
        }
        self.inventory.set(inventory.clone());
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
        self.target.shutdown();
        tracing::info!("xcopyd stopped");
    }
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

/// The default state directory: `$XDG_STATE_HOME/xcopyd`, else `/var/lib/xcopyd` for root,
/// else `~/.local/state/xcopyd`.
pub fn default_state_dir(xdg_state_home: Option<&str>, home: Option<&str>, root: bool) -> PathBuf {
    match (xdg_state_home.filter(|s| !s.is_empty()), root, home) {
        (Some(x), _, _) => Path::new(x).join("xcopyd"),
        (None, true, _) => PathBuf::from("/var/lib/xcopyd"),
        (None, false, Some(h)) => Path::new(h).join(".local/state/xcopyd"),
        (None, false, None) => PathBuf::from("/var/lib/xcopyd"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "[iscsi]\nlisten = \"0.0.0.0:3261\"\n[limits]\nmax_segment_descriptors = 8\n\
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
}
