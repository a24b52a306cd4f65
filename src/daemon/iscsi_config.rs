//! The `[iscsi]` and `[[initiator]]` tables: what one peer may hold, and who may log in with
//! which CHAP secrets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::DaemonError;
use crate::frontend::iscsi::auth::{Chap, Credentials, Initiators};
use crate::frontend::iscsi::TargetConfig;

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
    pub(super) fn from_table(t: &IscsiTable) -> Result<Self, DaemonError> {
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct IscsiTable {
    pub(super) listen: Option<String>,
    pub(super) target: Option<String>,
    pub(super) allow_anonymous: Option<bool>,
    pub(super) max_connections: Option<usize>,
    pub(super) max_sessions_per_initiator: Option<usize>,
    pub(super) login_timeout_secs: Option<u64>,
    pub(super) idle_timeout_secs: Option<u64>,
    pub(super) queue_depth: Option<u32>,
    pub(super) max_command_bytes: Option<u64>,
    pub(super) max_data_out_bytes: Option<u64>,
    pub(super) data_out_timeout_secs: Option<u64>,
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
pub(super) fn initiators(doc: &toml::Table, base: &Path) -> Result<Initiators, DaemonError> {
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
pub(super) fn is_loopback(listen: &str) -> bool {
    use std::net::ToSocketAddrs;
    match listen.to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}
