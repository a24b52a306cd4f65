//! A cartridge's owner lease: the object `BARCODE/lease`, `{"owner": GATEWAY, "expires_ms":
//! UNIX MS}`, only ever written with a condition — `If-None-Match: *` when there is none
//! yet, `If-Match: ETAG` of the version read (to take one released or expired, to renew
//! one's own, to release it). Two gateways racing for the same lease both read version E;
//! the store accepts one `If-Match: E` and answers the other 412, so exactly one wins.
//! A released lease has an empty owner: the cartridge is in the vault.
//!
//! The lease decides who may *load* a cartridge. What keeps a gateway that lost its lease
//! (paused past the expiry, say) from writing is the index's own If-Match (see
//! [`super::cartridge`]): the new owner rewrites the index when it opens the cartridge.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::client::{Client, Condition, StoreError};

/// What a lease object holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseBody {
    /// The gateway holding it; empty: released (the cartridge is in the vault).
    pub owner: String,
    /// Milliseconds since the Unix epoch when it lapses unless renewed.
    pub expires_ms: u64,
}

impl LeaseBody {
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_ms <= now_ms
    }

    /// Who holds it now: None when released or expired.
    pub fn holder(&self, now_ms: u64) -> Option<&str> {
        (!self.owner.is_empty() && !self.expired(now_ms)).then_some(self.owner.as_str())
    }
}

/// A lease this gateway holds: the version it last wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub key: String,
    pub etag: String,
    pub body: LeaseBody,
}

/// Why a lease could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TakeError {
    #[error("held by gateway {owner} for {left_ms} ms more")]
    Held { owner: String, left_ms: u64 },
    #[error("another gateway took it first")]
    Lost,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The lease object at `key` and its ETag; None when there is none.
pub fn read(client: &Client, key: &str) -> Result<Option<(LeaseBody, String)>, StoreError> {
    match client.get(key) {
        Ok((bytes, etag)) => {
            let body = serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Bad(format!("{key}: {e}")))?;
            Ok(Some((body, etag)))
        }
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

fn write(
    client: &Client,
    key: &str,
    body: &LeaseBody,
    condition: Condition<'_>,
) -> Result<String, StoreError> {
    let bytes = serde_json::to_vec(body).map_err(|e| StoreError::Bad(e.to_string()))?;
    client.put(key, &bytes, condition)
}

/// Takes the lease at `key` for `gateway` for `ttl`: free (none, released, expired) or
/// already this gateway's (a restarted gateway takes its own back).
pub fn take(client: &Client, key: &str, gateway: &str, ttl: Duration) -> Result<Lease, TakeError> {
    let now = now_ms();
    let body = LeaseBody {
        owner: gateway.to_string(),
        expires_ms: now + ttl.as_millis() as u64,
    };
    let written = match read(client, key)? {
        None => write(client, key, &body, Condition::Absent),
        Some((old, etag)) => match old.holder(now) {
            Some(owner) if owner != gateway => {
                return Err(TakeError::Held {
                    owner: owner.to_string(),
                    left_ms: old.expires_ms - now,
                })
            }
            _ => write(client, key, &body, Condition::Match(&etag)),
        },
    };
    match written {
        Ok(etag) => Ok(Lease {
            key: key.to_string(),
            etag,
            body,
        }),
        Err(StoreError::Precondition) => Err(TakeError::Lost),
        Err(e) => Err(e.into()),
    }
}

impl Lease {
    /// Pushes the expiry `ttl` from now; fails with [`StoreError::Precondition`] when the
    /// lease is no longer this version (someone took it after it expired).
    pub fn renew(&mut self, client: &Client, ttl: Duration) -> Result<(), StoreError> {
        let body = LeaseBody {
            owner: self.body.owner.clone(),
            expires_ms: now_ms() + ttl.as_millis() as u64,
        };
        self.etag = write(client, &self.key, &body, Condition::Match(&self.etag))?;
        self.body = body;
        Ok(())
    }

    /// Gives the lease up: the cartridge goes to the vault.
    pub fn release(self, client: &Client) -> Result<(), StoreError> {
        write(
            client,
            &self.key,
            &LeaseBody::default(),
            Condition::Match(&self.etag),
        )
        .map(|_| ())
    }

    /// Still valid by this gateway's clock.
    pub fn valid(&self) -> bool {
        !self.body.expired(now_ms())
    }
}
