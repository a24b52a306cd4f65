//! A blocking S3 client: requests signed by `rusty-s3` (sans-IO: it builds presigned URLs
//! and parses responses, no I/O of its own), sent by `ureq` (a blocking HTTP client, no
//! async runtime). Every request has a deadline; idempotent ones are retried with backoff
//! on transport errors and 5xx answers. Conditional puts carry `If-None-Match: *` (create
//! only) or `If-Match: ETAG` (replace only that version); 412 is [`StoreError::Precondition`].

use std::io;
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use rusty_s3::actions::{ListObjectsV2, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};

/// How long a presigned URL is valid (it is used at once).
const SIGN_FOR: Duration = Duration::from_secs(600);
/// The most a small object (an index, a lease, a listing page) may hold.
pub const SMALL_OBJECT_LIMIT: u64 = 64 << 20;

/// What the store answered, when it was not a success.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("precondition failed (412): another writer changed the object")]
    Precondition,
    #[error("no such object")]
    NotFound,
    #[error("store answered HTTP {0}")]
    Status(u16),
    #[error("store unreachable: {0}")]
    Transport(String),
    #[error("bad answer from the store: {0}")]
    Bad(String),
}

impl StoreError {
    /// Worth trying again: the store may answer next time.
    fn transient(&self) -> bool {
        match self {
            Self::Transport(_) => true,
            Self::Status(s) => *s >= 500 || *s == 429 || *s == 408,
            _ => false,
        }
    }
}

impl From<StoreError> for io::Error {
    fn from(e: StoreError) -> Self {
        let kind = match e {
            StoreError::Precondition => io::ErrorKind::PermissionDenied,
            StoreError::NotFound => io::ErrorKind::NotFound,
            StoreError::Transport(_) => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// A condition on a PUT.
#[derive(Clone, Copy, Debug)]
pub enum Condition<'a> {
    None,
    /// `If-None-Match: *`: only if no object has the key.
    Absent,
    /// `If-Match: ETAG`: only if the object is still that version.
    Match(&'a str),
}

/// Where the store is and how to reach it. Its `Debug` form leaves the secret key out.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Per-request deadline.
    pub timeout: Duration,
    /// Tries of an idempotent request (at least 1).
    pub tries: u32,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"…")
            .field("timeout", &self.timeout)
            .field("tries", &self.tries)
            .finish()
    }
}

/// One bucket of one store.
#[derive(Debug)]
pub struct Client {
    bucket: Bucket,
    credentials: Credentials,
    /// Replaced after a transport error: its pooled connections may all be dead (a store
    /// that restarted), and each would fail one try.
    agent: Mutex<ureq::Agent>,
    timeout: Duration,
    tries: u32,
}

fn new_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .max_idle_connections_per_host(16)
        .build()
        .into()
}

type Answer = ureq::http::Response<ureq::Body>;

impl Client {
    pub fn new(endpoint: &Endpoint) -> io::Result<Self> {
        let url = endpoint
            .url
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("endpoint: {e}")))?;
        let bucket = Bucket::new(
            url,
            UrlStyle::Path,
            endpoint.bucket.clone(),
            endpoint.region.clone(),
        )
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("bucket: {e}")))?;
        Ok(Self {
            bucket,
            credentials: Credentials::new(&endpoint.access_key_id, &endpoint.secret_access_key),
            agent: Mutex::new(new_agent(endpoint.timeout)),
            timeout: endpoint.timeout,
            tries: endpoint.tries.max(1),
        })
    }

    fn agent(&self) -> ureq::Agent {
        self.agent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Runs `attempt` until it succeeds, fails for good, or the tries are spent.
    fn retry<T>(
        &self,
        what: &str,
        mut attempt: impl FnMut() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut delay = Duration::from_millis(50);
        let mut n = 1;
        loop {
            let result = attempt();
            if let Err(StoreError::Transport(_)) = &result {
                *self.agent.lock().unwrap_or_else(PoisonError::into_inner) =
                    new_agent(self.timeout);
            }
            match result {
                Err(e) if e.transient() && n < self.tries => {
                    tracing::warn!(request = what, try_ = n, error = %e, "object store request failed; retrying");
                    thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(2));
                    n += 1;
                }
                r => return r,
            }
        }
    }

    /// Maps an answer's status: 2xx passes, the rest are errors.
    fn status(r: Result<Answer, ureq::Error>) -> Result<Answer, StoreError> {
        let r = r.map_err(|e| StoreError::Transport(e.to_string()))?;
        match r.status().as_u16() {
            200..=299 => Ok(r),
            404 => Err(StoreError::NotFound),
            412 => Err(StoreError::Precondition),
            s => Err(StoreError::Status(s)),
        }
    }

    fn etag(r: &Answer) -> String {
        r.headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    /// The whole object `key` (at most [`SMALL_OBJECT_LIMIT`] bytes) and its ETag.
    pub fn get(&self, key: &str) -> Result<(Vec<u8>, String), StoreError> {
        self.retry("get", || {
            let url = self
                .bucket
                .get_object(Some(&self.credentials), key)
                .sign(SIGN_FOR);
            let mut r = Self::status(self.agent().get(url.as_str()).call())?;
            let etag = Self::etag(&r);
            let body = r
                .body_mut()
                .with_config()
                .limit(SMALL_OBJECT_LIMIT)
                .read_to_vec()
                .map_err(|e| StoreError::Transport(e.to_string()))?;
            Ok((body, etag))
        })
    }

    /// `len` bytes of object `key` from `start`.
    pub fn get_range(&self, key: &str, start: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        if len == 0 {
            return Ok(Vec::new());
        }
        self.retry("get range", || {
            let url = self
                .bucket
                .get_object(Some(&self.credentials), key)
                .sign(SIGN_FOR);
            let range = format!("bytes={}-{}", start, start + len - 1);
            let mut r = Self::status(
                self.agent()
                    .get(url.as_str())
                    .header("Range", &range)
                    .call(),
            )?;
            let body = r
                .body_mut()
                .with_config()
                .limit(len)
                .read_to_vec()
                .map_err(|e| StoreError::Transport(e.to_string()))?;
            if body.len() as u64 != len {
                return Err(StoreError::Bad(format!(
                    "{key}: asked {len} bytes at {start}, got {}",
                    body.len()
                )));
            }
            Ok(body)
        })
    }

    /// Stores `body` as `key` if `condition` holds; returns the new ETag.
    pub fn put(
        &self,
        key: &str,
        body: &[u8],
        condition: Condition<'_>,
    ) -> Result<String, StoreError> {
        let once = || {
            let url = self
                .bucket
                .put_object(Some(&self.credentials), key)
                .sign(SIGN_FOR);
            let req = self.agent().put(url.as_str());
            let req = match condition {
                Condition::None => req,
                Condition::Absent => req.header("If-None-Match", "*"),
                Condition::Match(etag) => req.header("If-Match", etag),
            };
            let r = Self::status(req.send(body))?;
            Ok(Self::etag(&r))
        };
        if let Condition::None = condition {
            return self.retry("put", once);
        }
        // A conditional put whose answer was lost may have landed: tried again, it fails
        // 412 on its own write. The object then holds exactly these bytes (every lease and
        // index version differs from all others), which says it did.
        let mut lost = false;
        let mut n = 1;
        loop {
            match once() {
                Err(StoreError::Transport(e)) if n < self.tries => {
                    tracing::warn!(%key, error = %e, "conditional put unanswered; trying again");
                    *self.agent.lock().unwrap_or_else(PoisonError::into_inner) =
                        new_agent(self.timeout);
                    thread::sleep(Duration::from_millis(50));
                    lost = true;
                    n += 1;
                }
                Err(StoreError::Precondition) if lost => {
                    return match self.get(key) {
                        Ok((bytes, etag)) if bytes == body => Ok(etag),
                        _ => Err(StoreError::Precondition),
                    };
                }
                r => return r,
            }
        }
    }

    pub fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.retry("delete", || {
            let url = self
                .bucket
                .delete_object(Some(&self.credentials), key)
                .sign(SIGN_FOR);
            match Self::status(self.agent().delete(url.as_str()).call()) {
                Ok(_) | Err(StoreError::NotFound) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    /// Every key under `prefix`, with its size.
    pub fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.retry("list", || {
                let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
                action.with_prefix(prefix);
                if let Some(t) = &token {
                    action.with_continuation_token(t.clone());
                }
                let url = action.sign(SIGN_FOR);
                let mut r = Self::status(self.agent().get(url.as_str()).call())?;
                let text = r
                    .body_mut()
                    .with_config()
                    .limit(SMALL_OBJECT_LIMIT)
                    .read_to_string()
                    .map_err(|e| StoreError::Transport(e.to_string()))?;
                ListObjectsV2::parse_response(&text).map_err(|e| StoreError::Bad(e.to_string()))
            })?;
            out.extend(
                page.contents
                    .into_iter()
                    .map(|c| (c.key, c.size.unwrap_or(0))),
            );
            match page.next_continuation_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(out),
            }
        }
    }

    /// Starts a multipart upload of `key`; returns its upload id.
    pub fn create_multipart(&self, key: &str) -> Result<String, StoreError> {
        self.retry("create multipart", || {
            let url = self
                .bucket
                .create_multipart_upload(Some(&self.credentials), key)
                .sign(SIGN_FOR);
            let mut r = Self::status(self.agent().post(url.as_str()).send_empty())?;
            let text = r
                .body_mut()
                .read_to_string()
                .map_err(|e| StoreError::Transport(e.to_string()))?;
            let parsed = rusty_s3::actions::CreateMultipartUpload::parse_response(&text)
                .map_err(|e| StoreError::Bad(e.to_string()))?;
            Ok(parsed.upload_id().to_string())
        })
    }

    /// Uploads part `number` (from 1) of an upload; returns its ETag.
    pub fn upload_part(
        &self,
        key: &str,
        upload: &str,
        number: u16,
        body: &[u8],
    ) -> Result<String, StoreError> {
        self.retry("upload part", || {
            let url = self
                .bucket
                .upload_part(Some(&self.credentials), key, number, upload)
                .sign(SIGN_FOR);
            let r = Self::status(self.agent().put(url.as_str()).send(body))?;
            Ok(Self::etag(&r))
        })
    }

    /// Completes an upload from its parts' ETags, in order.
    pub fn complete_multipart(
        &self,
        key: &str,
        upload: &str,
        etags: &[String],
    ) -> Result<(), StoreError> {
        self.retry("complete multipart", || {
            let action = self.bucket.complete_multipart_upload(
                Some(&self.credentials),
                key,
                upload,
                etags.iter().map(String::as_str),
            );
            let url = action.sign(SIGN_FOR);
            let body = action.body();
            let mut r = Self::status(self.agent().post(url.as_str()).send(body.as_bytes()))?;
            // S3 may answer 200 with an error document.
            let text = r.body_mut().read_to_string().unwrap_or_default();
            if text.contains("<Error>") {
                return Err(StoreError::Status(500));
            }
            Ok(())
        })
    }

    /// Gives up an upload (its parts are freed).
    pub fn abort_multipart(&self, key: &str, upload: &str) {
        let url = self
            .bucket
            .abort_multipart_upload(Some(&self.credentials), key, upload)
            .sign(SIGN_FOR);
        let _ = self.agent().delete(url.as_str()).call();
    }

    /// Creates the bucket (for tests and first set-up); one that exists is fine.
    pub fn create_bucket(&self) -> Result<(), StoreError> {
        let url = self.bucket.create_bucket(&self.credentials).sign(SIGN_FOR);
        match Self::status(self.agent().put(url.as_str()).send_empty()) {
            Ok(_) | Err(StoreError::Status(409)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
