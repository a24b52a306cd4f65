//! The front ends the daemon starts beside the iSCSI target, each over the same inventory
//! and copy manager: TCMU, the metrics endpoint, the admin socket and NDMP.

use std::path::PathBuf;
use std::sync::Arc;

use super::iscsi_config::is_loopback;
use super::{DaemonConfig, DaemonError, SharedInventory};
use crate::admin::AdminSocket;
use crate::copy::manager::CopyManager;
use crate::frontend::dispatch::Lun;
use crate::frontend::tcmu::scan::{Resolver, Scanner};
use crate::frontend::Dispatcher;
use crate::metrics::{Metrics, MetricsServer};

/// Starts the TCMU scanner of `[tcmu]`: each LIO user backstore whose dev_config names an
/// inventory device gets a dispatcher of its own over the shared copy manager.
pub(super) fn start_tcmu(
    config: &DaemonConfig,
    shared: &Arc<SharedInventory>,
    copy: &Arc<CopyManager>,
    metrics: &Arc<Metrics>,
) -> Result<Option<Scanner>, DaemonError> {
    Ok(match &config.tcmu {
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
    })
}

/// Starts the Prometheus endpoint of `[metrics]` (`/metrics`, and `/copies` from the
/// registry).
pub(super) fn start_metrics(
    config: &DaemonConfig,
    copy: &CopyManager,
    metrics: &Arc<Metrics>,
) -> Result<Option<MetricsServer>, DaemonError> {
    Ok(match &config.metrics_listen {
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
    })
}

/// Serves the admin socket (`xcopy status`, `xcopy abort`); the binary's implicit default
/// may fail with a warning, a configured one may not.
pub(super) fn start_admin(
    config: &DaemonConfig,
    copy: &CopyManager,
) -> Result<Option<AdminSocket>, DaemonError> {
    Ok(match &config.admin_socket {
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
    })
}

/// Starts the NDMP server of `[ndmp]`, over the same inventory and copy manager.
pub(super) fn start_ndmp(
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
