//! The daemon's configuration file: its tables, the embedded default, and the checks made
//! before anything opens (DESIGN.md "Daemon").

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::iscsi_config::{initiators, is_loopback, IscsiLimits, IscsiTable};
use crate::copy::engine;
use crate::device::inventory::{InventoryConfig, InventoryError};
use crate::frontend::iscsi::auth::Initiators;
use crate::frontend::iscsi::TargetConfig;
use crate::scsi::Limits;

/// The target name served when the config names none.
pub const DEFAULT_TARGET: &str = "iqn.2026-11.org.xcopyd:mover";
/// The address listened on when the config names none.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3260";
/// How long SIGTERM lets running copies finish by default.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub use crate::state::EMBEDDED_DEFAULT;

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
    /// 1 MiB buffers in each of the process's io_uring rings (buf::Rings::set_buffers): a
    /// running copy's engine borrows one, a tape being written another.
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
        crate::state::create_embedded_media(state_dir).map_err(state_err)?;
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
        let inventory =
            InventoryConfig::from_table(&doc, base_dir, &crate::objstore::store_kinds())?;
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

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
