//! Finding the TCMU devices to serve: every second, `/sys/class/uio/*/name` is read;
//! target_core_user names its devices `tcm-user/<hba>/<device>/<subtype>/<cfgstring>`
//! (the configfs `dev_config` is `<subtype>/<cfgstring>`). Devices whose subtype is ours
//! are served, `cfgstring` naming the inventory device behind them; devices that vanish
//! (or whose handler ended) are let go.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::Handler;
use crate::command::Nexus;
use crate::frontend::Dispatcher;
use crate::sys::uio::UioMap;

/// A parsed TCMU UIO name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcmuName {
    pub hba: String,
    pub device: String,
    pub subtype: String,
    /// Everything after the subtype (may itself contain `/`).
    pub cfgstring: String,
}

/// Parses `tcm-user/<hba>/<device>/<subtype>/<cfgstring>`.
pub fn parse_name(name: &str) -> Option<TcmuName> {
    let rest = name.trim_end_matches('\n').strip_prefix("tcm-user/")?;
    let mut parts = rest.splitn(4, '/');
    let (hba, device, subtype, cfgstring) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if [hba, device, subtype, cfgstring]
        .iter()
        .any(|p| p.is_empty())
    {
        return None;
    }
    Some(TcmuName {
        hba: hba.into(),
        device: device.into(),
        subtype: subtype.into(),
        cfgstring: cfgstring.into(),
    })
}

impl TcmuName {
    /// The nexus TCMU commands of this device run as (see the module docs of [`super`]):
    /// initiator `tcmu:<hba>`, shared by the devices of one `user_<hba>` HBA.
    pub fn nexus(&self) -> Nexus {
        Nexus {
            initiator: format!("tcmu:{}", self.hba),
            session: 0,
        }
    }
}

/// Builds the dispatcher for an inventory device name (None: no such device).
pub type Resolver = dyn Fn(&str) -> Option<Arc<Dispatcher>> + Send + Sync;

/// The scanning thread; stopping it stops every handler.
pub struct Scanner {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// How often /sys/class/uio is rescanned.
const RESCAN: Duration = Duration::from_secs(1);

struct Served {
    name: String,
    /// None: seen but not served (unknown device, open failed, ended); retried only
    /// when the name changes.
    handler: Option<Handler>,
}

impl Scanner {
    /// Serves the TCMU devices of `subtype` found under `sysfs_uio` (normally
    /// /sys/class/uio), rescanning every second.
    pub fn start(
        subtype: String,
        sysfs_uio: PathBuf,
        resolve: Arc<Resolver>,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tcmu-scan".into())
            .spawn(move || {
                let mut served: HashMap<String, Served> = HashMap::new();
                while !flag.load(Ordering::Acquire) {
                    rescan(&subtype, &sysfs_uio, &*resolve, &mut served);
                    let mut slept = Duration::ZERO;
                    while slept < RESCAN && !flag.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(50));
                        slept += Duration::from_millis(50);
                    }
                }
                for (uio, s) in served.drain() {
                    if let Some(h) = s.handler {
                        h.stop();
                        tracing::info!("tcmu: stopped serving {uio} {}", s.name);
                    }
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops scanning and serving (running commands are aborted).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Scanner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn rescan(
    subtype: &str,
    sysfs_uio: &Path,
    resolve: &Resolver,
    served: &mut HashMap<String, Served>,
) {
    let mut present: HashMap<String, String> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir(sysfs_uio) {
        for e in dir.flatten() {
            let uio = e.file_name().to_string_lossy().into_owned();
            if let Ok(name) = std::fs::read_to_string(e.path().join("name")) {
                present.insert(uio, name.trim_end().to_string());
            }
        }
    }
    served.retain(|uio, s| {
        let keep = present.get(uio) == Some(&s.name);
        if !keep {
            if let Some(h) = s.handler.take() {
                h.stop();
            }
            tracing::info!("tcmu: {uio} {} removed, no longer served", s.name);
        } else if s.handler.as_ref().is_some_and(Handler::is_finished) {
            s.handler = None;
        }
        keep
    });
    for (uio, name) in present {
        if served.contains_key(&uio) {
            continue;
        }
        let Some(parsed) = parse_name(&name).filter(|p| p.subtype == subtype) else {
            continue;
        };
        let handler = serve(&uio, &name, &parsed, resolve);
        served.insert(uio, Served { name, handler });
    }
}

fn serve(uio: &str, name: &str, parsed: &TcmuName, resolve: &Resolver) -> Option<Handler> {
    let device = &parsed.cfgstring;
    let Some(dispatcher) = resolve(device) else {
        tracing::error!("tcmu: {uio} {name}: no inventory device named {device:?}");
        return None;
    };
    let map = match UioMap::open(uio) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("tcmu: {uio} {name}: cannot open: {e}");
            return None;
        }
    };
    match Handler::start(Arc::new(map), dispatcher, parsed.nexus(), uio.to_string()) {
        Ok(h) => {
            tracing::info!("tcmu: serving {uio} {name} as {device}");
            Some(h)
        }
        Err(e) => {
            tracing::error!("tcmu: {uio} {name}: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uio_names() {
        assert_eq!(
            parse_name("tcm-user/1/dev0/xcopyd/disk0\n"),
            Some(TcmuName {
                hba: "1".into(),
                device: "dev0".into(),
                subtype: "xcopyd".into(),
                cfgstring: "disk0".into(),
            })
        );
        assert_eq!(
            parse_name("tcm-user/0/d/xcopyd/a/b").map(|n| n.cfgstring),
            Some("a/b".into())
        );
        assert_eq!(parse_name("tcm-user/0/d/xcopyd/"), None);
        assert_eq!(parse_name("uio_pdrv/0/d/x/y"), None);
        assert_eq!(
            parse_name("tcm-user/1/dev0/xcopyd/disk0")
                .unwrap()
                .nexus()
                .initiator,
            "tcmu:1"
        );
    }

    #[test]
    fn scanner_ignores_other_subtypes_and_unknown_devices() {
        let dir = tempfile::tempdir().unwrap();
        for (uio, name) in [
            ("uio0", "tcm-user/0/a/other/disk0"),
            ("uio1", "tcm-user/0/b/xcopyd/nosuch"),
        ] {
            std::fs::create_dir(dir.path().join(uio)).unwrap();
            std::fs::write(dir.path().join(uio).join("name"), name).unwrap();
        }
        let asked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let a = asked.clone();
        let resolve: Arc<Resolver> = Arc::new(move |n: &str| {
            a.lock().unwrap().push(n.to_string());
            None
        });
        let mut served = HashMap::new();
        rescan("xcopyd", dir.path(), &*resolve, &mut served);
        rescan("xcopyd", dir.path(), &*resolve, &mut served);
        // Only ours, and an unknown device is not retried while its name stays.
        assert_eq!(*asked.lock().unwrap(), ["nosuch"]);
        assert_eq!(served.len(), 1);
        std::fs::remove_dir_all(dir.path().join("uio1")).unwrap();
        rescan("xcopyd", dir.path(), &*resolve, &mut served);
        assert!(served.is_empty());
    }
}
