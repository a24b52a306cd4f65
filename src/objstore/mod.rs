//! Cartridges in an S3-compatible object store, shared by several gateways (DESIGN.md
//! "Object store"; docs/object-store.md).
//!
//! Under `s3://BUCKET/PREFIX/`, cartridge `BARCODE` is:
//! - `BARCODE/index`: what is committed ([`index`]), written only with If-Match (or
//!   If-None-Match when the cartridge is made);
//! - `BARCODE/p/GATEWAY-EPOCH-SEQ`: the pieces of its SIMH stream, immutable, each named
//!   by the writer that made it (two writers never write the same key);
//! - `BARCODE/lease`: who owns it ([`lease`]); empty owner: in the vault.
//!
//! A [`Gateway`] is one daemon's view: it takes, renews (a thread, every third of the
//! lease time) and releases leases, and opens the cartridges it holds as tape media
//! ([`cartridge::ObjectCartridge`]).

pub mod cartridge;
pub mod client;
pub mod config;
pub mod index;
pub mod kind;
pub mod lease;

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

pub use self::cartridge::{ObjectCartridge, Params};
use self::client::Condition;
pub use self::client::{Client, Endpoint, StoreError};
use self::index::Committed;
pub use self::kind::store_kinds;
use self::lease::{Lease, LeaseBody, TakeError};

/// The `[object_store]` table plus a library's `s3://BUCKET/PREFIX`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayConfig {
    pub endpoint: Endpoint,
    /// Keys start with it ("" or ending in '/').
    pub prefix: String,
    /// This daemon's name in leases.
    pub gateway: String,
    pub lease: Duration,
    pub params: Params,
    /// The write-back cache (pieces not yet in the store).
    pub cache_dir: PathBuf,
}

/// What every open cartridge of a gateway shares.
#[derive(Debug)]
pub struct Shared {
    pub(crate) client: Arc<Client>,
    prefix: String,
    pub(crate) gateway: String,
    pub(crate) params: Params,
    pub(crate) cache_dir: PathBuf,
    lease_time: Duration,
    leases: Mutex<BTreeMap<String, Lease>>,
}

impl Shared {
    fn key(&self, barcode: &str, what: &str) -> String {
        format!("{}{barcode}/{what}", self.prefix)
    }

    fn leases(&self) -> MutexGuard<'_, BTreeMap<String, Lease>> {
        self.leases.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// This gateway holds `barcode`'s lease, unexpired by its own clock.
    fn holds(&self, barcode: &str) -> bool {
        self.leases().get(barcode).is_some_and(Lease::valid)
    }

    /// Renews every lease held; drops (and logs) those another gateway took.
    fn renew_all(&self) {
        let mut leases = self.leases();
        leases.retain(|barcode, lease| match lease.renew(&self.client, self.lease_time) {
            Ok(()) => true,
            Err(StoreError::Precondition) => {
                tracing::error!(%barcode, gateway = %self.gateway, "lease taken by another gateway");
                false
            }
            Err(e) => {
                tracing::warn!(%barcode, error = %e, "lease not renewed; trying again");
                true
            }
        });
    }
}

/// Where a cartridge stands, as `xcopy vault list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CartridgeInfo {
    pub barcode: String,
    /// The gateway holding it now; None: in the vault (released, expired or never taken).
    pub owner: Option<String>,
    /// The last gateway named in the lease (an expired holder, for instance).
    pub last_owner: Option<String>,
    pub committed_bytes: u64,
    pub pieces: Vec<index::PieceRef>,
    pub objects: u64,
    pub filemarks: u64,
}

/// One daemon's handle on the store.
#[derive(Debug)]
pub struct Gateway {
    shared: Arc<Shared>,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<JoinHandle<()>>,
}

impl Gateway {
    /// Connects (nothing is sent yet) and starts renewing leases.
    pub fn new(config: &GatewayConfig) -> io::Result<Self> {
        std::fs::create_dir_all(&config.cache_dir)?;
        let shared = Arc::new(Shared {
            client: Arc::new(Client::new(&config.endpoint)?),
            prefix: config.prefix.clone(),
            gateway: config.gateway.clone(),
            params: config.params.clone(),
            cache_dir: config.cache_dir.clone(),
            lease_time: config.lease,
            leases: Mutex::new(BTreeMap::new()),
        });
        let (stop, stopped) = mpsc::channel::<()>();
        let every = config.lease / 3;
        let s = Arc::clone(&shared);
        let renewer = std::thread::spawn(move || loop {
            match stopped.recv_timeout(every) {
                Err(RecvTimeoutError::Timeout) => s.renew_all(),
                _ => return,
            }
        });
        Ok(Self {
            shared,
            stop: Some(stop),
            renewer: Some(renewer),
        })
    }

    pub fn name(&self) -> &str {
        &self.shared.gateway
    }

    pub fn client(&self) -> &Client {
        &self.shared.client
    }

    /// Makes a blank cartridge, in the vault. Fails if the barcode exists.
    pub fn create(&self, barcode: &str) -> io::Result<()> {
        let key = self.shared.key(barcode, "index");
        match self
            .shared
            .client
            .put(&key, &Committed::default().encode(), Condition::Absent)
        {
            Ok(_) => Ok(()),
            Err(StoreError::Precondition) => Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{barcode} exists"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes `barcode` from the vault (or from a gateway whose lease expired): from now on
    /// only this gateway loads it.
    pub fn import(&self, barcode: &str) -> Result<(), TakeError> {
        let index = self.shared.key(barcode, "index");
        self.shared.client.get(&index)?;
        let lease = lease::take(
            &self.shared.client,
            &self.shared.key(barcode, "lease"),
            &self.shared.gateway,
            self.shared.lease_time,
        )?;
        tracing::info!(%barcode, gateway = %self.shared.gateway, "cartridge taken");
        self.shared.leases().insert(barcode.to_string(), lease);
        Ok(())
    }

    /// Puts `barcode` back in the vault (the caller made sure no drive has it): the lease
    /// this gateway holds, in memory or (another process of the same gateway, the CLI) in
    /// the store, is released.
    pub fn export(&self, barcode: &str) -> io::Result<()> {
        let held = self.shared.leases().remove(barcode);
        let lease = match held {
            Some(l) => l,
            None => {
                let key = self.shared.key(barcode, "lease");
                match lease::read(&self.shared.client, &key)? {
                    Some((body, etag)) if body.owner == self.shared.gateway => {
                        Lease { key, etag, body }
                    }
                    _ => {
                        return Err(io::Error::new(
                            io::ErrorKind::NotFound,
                            format!("{barcode}: not held by gateway {}", self.name()),
                        ))
                    }
                }
            }
        };
        lease.release(&self.shared.client)?;
        tracing::info!(%barcode, gateway = %self.shared.gateway, "cartridge released to the vault");
        Ok(())
    }

    /// The cartridges this gateway holds.
    pub fn held(&self) -> Vec<String> {
        self.shared.leases().keys().cloned().collect()
    }

    /// Takes back the leases the store says this gateway held (a restart); returns the
    /// barcodes held after.
    pub fn reclaim(&self) -> io::Result<Vec<String>> {
        for info in self.list()? {
            if info.last_owner.as_deref() == Some(self.name()) && !self.shared.holds(&info.barcode)
            {
                match self.import(&info.barcode) {
                    Ok(()) => {}
                    Err(e) => tracing::warn!(barcode = %info.barcode, error = %e, "not reclaimed"),
                }
            }
        }
        Ok(self.held())
    }

    /// Opens `barcode` as a tape medium; writable only while this gateway holds it.
    pub fn open(&self, barcode: &str, writable: bool) -> io::Result<ObjectCartridge> {
        if !self.shared.holds(barcode) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{barcode}: not held by gateway {}", self.name()),
            ));
        }
        ObjectCartridge::open(Arc::clone(&self.shared), barcode, writable)
    }

    /// Cartridge `barcode`'s medium auxiliary memory as last saved (empty: none yet). It
    /// is kept beside the index, so it travels with the cartridge from gateway to gateway.
    pub fn read_mam(&self, barcode: &str) -> io::Result<Vec<u8>> {
        match self.shared.client.get(&self.shared.key(barcode, "mam")) {
            Ok((bytes, _)) => Ok(bytes),
            Err(StoreError::NotFound) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces `barcode`'s medium auxiliary memory; only while this gateway holds it.
    pub fn write_mam(&self, barcode: &str, bytes: &[u8]) -> io::Result<()> {
        if !self.shared.holds(barcode) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{barcode}: not held by gateway {}", self.name()),
            ));
        }
        let key = self.shared.key(barcode, "mam");
        self.shared.client.put(&key, bytes, Condition::None)?;
        Ok(())
    }

    /// Every cartridge under the prefix, with its lease and committed index.
    pub fn list(&self) -> io::Result<Vec<CartridgeInfo>> {
        let keys = self.shared.client.list(&self.shared.prefix)?;
        let now = lease::now_ms();
        let mut out = Vec::new();
        for (key, _) in keys {
            let Some(barcode) = key
                .strip_prefix(&self.shared.prefix)
                .and_then(|k| k.strip_suffix("/index"))
            else {
                continue;
            };
            out.push(self.info(barcode, now)?);
        }
        Ok(out)
    }

    /// One cartridge's state.
    pub fn info(&self, barcode: &str, now: u64) -> io::Result<CartridgeInfo> {
        let (bytes, _) = self.shared.client.get(&self.shared.key(barcode, "index"))?;
        let committed = Committed::decode(&bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{barcode}: {e}")))?;
        let body = lease::read(&self.shared.client, &self.shared.key(barcode, "lease"))?
            .map(|(b, _)| b)
            .unwrap_or_else(LeaseBody::default);
        let index = committed.index();
        Ok(CartridgeInfo {
            barcode: barcode.to_string(),
            owner: body.holder(now).map(str::to_string),
            last_owner: (!body.owner.is_empty()).then(|| body.owner.clone()),
            committed_bytes: committed.end,
            objects: index.objects(),
            filemarks: index.filemarks(),
            pieces: committed.pieces,
        })
    }
}

impl Drop for Gateway {
    /// Stops renewing: the leases lapse unless the gateway comes back (a clean stop keeps
    /// them, as a restart should find its cartridges where they were).
    fn drop(&mut self) {
        self.stop = None;
        if let Some(h) = self.renewer.take() {
            let _ = h.join();
        }
    }
}
