//! The daemon's admin socket: what `xcopy status` and `xcopy abort` talk to. A Unix socket
//! (default `xcopyd.sock` in the state directory, `[daemon] admin_socket`), made owner-only
//! (0600) as it is created; one JSON request per line, one JSON answer per line:
//!
//! ```text
//! {"op":"list"}            -> {"copies":[{...}, ...]}   running first, then the last finished
//! {"op":"get","id":7}      -> {"copy":{...}}            or {"copy":null}
//! {"op":"abort","id":7}    -> {"aborted":true}          false if it is not running
//! ```
//!
//! A copy is [`crate::copy::registry::Snapshot`]. Anything else gets `{"error":"..."}`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::copy::registry::Registry;

/// Longest request line read (a request is a few dozen bytes).
const MAX_REQUEST: u64 = 4096;

/// A request on the admin socket.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    List,
    Get { id: u64 },
    Abort { id: u64 },
}

/// The listening admin socket; [`AdminSocket::close`] (or drop) removes it.
pub struct AdminSocket {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl AdminSocket {
    /// Listens on `path` (a stale socket there is replaced) for the copies of `registry`.
    pub fn start(path: &Path, registry: Arc<Registry>) -> io::Result<Self> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{}: another xcopyd answers there", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = thread::Builder::new()
            .name("admin".into())
            .spawn(move || accept_loop(&listener, &registry, &s))?;
        Ok(Self {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops listening and removes the socket file.
    pub fn close(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for AdminSocket {
    fn drop(&mut self) {
        self.shut();
    }
}

fn accept_loop(listener: &UnixListener, registry: &Arc<Registry>, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, _)) => {
                let registry = registry.clone();
                let _ = thread::Builder::new()
                    .name("admin-conn".into())
                    .spawn(move || {
                        let _ = serve(stream, &registry);
                    });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(100));
            }
            Err(e) => {
                tracing::warn!(error = %e, "admin socket: accept failed");
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Answers the requests of one client, a line each, until it closes.
fn serve(stream: UnixStream, registry: &Registry) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream).take(MAX_REQUEST);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        reader.set_limit(MAX_REQUEST);
        let answer = answer(line.trim(), registry);
        writeln!(out, "{answer}")?;
    }
}

/// The answer to one request line.
pub fn answer(line: &str, registry: &Registry) -> serde_json::Value {
    match serde_json::from_str::<Request>(line) {
        Ok(Request::List) => json!({ "copies": registry.list() }),
        Ok(Request::Get { id }) => json!({ "copy": registry.get(id) }),
        Ok(Request::Abort { id }) => {
            let aborted = registry.abort(id);
            tracing::info!(copy = id, aborted, "admin: abort requested");
            json!({ "aborted": aborted })
        }
        Err(e) => json!({ "error": format!("bad request: {e}") }),
    }
}

/// Sends one request to the admin socket at `path` and returns the answer.
pub fn ask(path: &Path, request: &serde_json::Value) -> io::Result<serde_json::Value> {
    let mut stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    writeln!(stream, "{request}")?;
    let mut line = String::new();
    BufReader::new(stream).take(64 << 20).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Abort;
    use crate::copy::registry::Request as CopyRequest;
    use crate::copy::run::Progress;

    #[test]
    fn list_get_abort_over_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.sock");
        let registry = Arc::new(Registry::default());
        let abort = Abort::new();
        let id = registry.start(
            CopyRequest {
                initiator: "iqn.a".into(),
                ..CopyRequest::default()
            },
            Arc::new(Progress::default()),
            abort.clone(),
        );
        let socket = AdminSocket::start(&path, registry.clone()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "owner-only");
        let list = ask(&path, &json!({"op": "list"})).unwrap();
        assert_eq!(list["copies"][0]["initiator"], "iqn.a");
        assert_eq!(list["copies"][0]["state"], "running");
        let one = ask(&path, &json!({"op": "get", "id": id})).unwrap();
        assert_eq!(one["copy"]["id"], id);
        assert_eq!(
            ask(&path, &json!({"op": "get", "id": 99})).unwrap()["copy"],
            json!(null)
        );
        assert_eq!(
            ask(&path, &json!({"op": "abort", "id": id})).unwrap()["aborted"],
            true
        );
        assert!(abort.is_aborted());
        let bad = ask(&path, &json!({"op": "format-disk"})).unwrap();
        assert!(bad["error"].as_str().unwrap().starts_with("bad request"));
        // A second daemon on the same socket is refused, not silently taking it over.
        let e = AdminSocket::start(&path, registry).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        socket.close();
        assert!(!path.exists());
    }
}
