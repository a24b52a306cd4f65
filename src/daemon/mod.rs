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
//! copy_buffers = 32               # 1 MiB buffers per io_uring ring (4..=1024): one per running copy and per tape being written
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

mod config;
mod front_ends;
mod iscsi_config;
mod reservations;

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::admin::AdminSocket;
use crate::buf::Rings;
use crate::command::Nexus;
use crate::copy::engine::Engines;
use crate::copy::limit::DeviceLimits;
use crate::copy::manager::CopyManager;
use crate::copy::run::Resolve;
use crate::device::inventory::{Inventory, InventoryConfig};
use crate::device::ScsiDevice;
use crate::frontend::dispatch::Lun;
use crate::frontend::iscsi::{self, Target, TargetConfig};
use crate::frontend::tcmu::scan::Scanner;
use crate::frontend::Dispatcher;
use crate::metrics::{Metrics, MetricsServer};
use crate::scsi::target_descriptor::CscdDescriptor;

pub use config::{
    DaemonConfig, DaemonError, TcmuConfig, DEFAULT_LISTEN, DEFAULT_SHUTDOWN_GRACE, DEFAULT_TARGET,
    EMBEDDED_DEFAULT,
};
pub use iscsi_config::IscsiLimits;
use reservations::{carry_reservations, persist_reservations};

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
        // One set of io_uring rings for the copy engines and the tape images.
        let rings = Arc::new(Rings::new(config.copy_buffers).map_err(DaemonError::Invalid)?);
        let engines = Engines::with_rings(Arc::clone(&rings));
        let inventory = Arc::new(Inventory::open_in(&config.inventory, rings)?);
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
                .with_copy_limit(config.copy_limit)
                .with_engines(engines),
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
        let tcmu = front_ends::start_tcmu(&config, &shared, &copy, &metrics)?;
        let metrics_server = front_ends::start_metrics(&config, &copy, &metrics)?;
        let admin = front_ends::start_admin(&config, &copy)?;
        let ndmp = front_ends::start_ndmp(&config, &shared, &copy)?;
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

    /// The process's io_uring rings, which the copy engines and the tape images borrow.
    pub fn rings(&self) -> &Arc<Rings> {
        self.copy.engines().rings()
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
        // Copies that start from now on get the new pool.
        self.copy
            .engines()
            .set_buffers(new.copy_buffers)
            .map_err(DaemonError::Invalid)?;
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

/// Where the state directory defaults to (moved to [`crate::state`], which the CLI shares).
pub use crate::state::default_state_dir;
