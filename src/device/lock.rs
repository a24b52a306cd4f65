//! One owner per image: every process that opens a disk or tape image (the daemon, the CLI,
//! benchmarks) holds an advisory `flock` on it — shared to read, exclusive to write — so a
//! second writer is refused with the holder's PID instead of truncating or interleaving with
//! an image another process is serving.
//!
//! `flock` belongs to an open file description, so two opens of one file in the same process
//! would refuse each other. A configuration reload opens a changed device's image while the
//! old device still holds it; the lock is therefore taken once per process and file (device
//! and inode), shared by every [`ImageLock`] of that file, and released when the last one is
//! dropped.

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Shared (readers) or exclusive (a writer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    Shared,
    Exclusive,
}

/// Why an image could not be locked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    #[error("{} is in use by {holder}", path.display())]
    Busy { path: PathBuf, holder: Holder },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Who holds a lock, as far as /proc/locks tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<u32>,
    /// The holder's command name (/proc/PID/comm).
    pub command: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.pid, &self.command) {
            (Some(pid), Some(c)) => write!(f, "{c} (pid {pid})"),
            (Some(pid), None) => write!(f, "pid {pid}"),
            _ => f.write_str("another process"),
        }
    }
}

/// A held lock on one image; the lock goes with the last clone for that file in this process.
#[derive(Clone, Debug)]
pub struct ImageLock {
    _held: Arc<Held>,
}

#[derive(Debug)]
struct Held {
    key: (u64, u64),
    /// The descriptor the flock belongs to (opened only for the lock); taken and closed
    /// by the drop while the registry is locked, so a new lock never races the old one.
    file: Option<File>,
    mode: Mutex<LockMode>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = registry();
        if let Some(map) = held.as_mut() {
            if map.get(&self.key).is_some_and(|w| w.strong_count() == 0) {
                map.remove(&self.key);
            }
        }
        // Closing the descriptor releases the flock.
        drop(self.file.take());
    }
}

type Registry = HashMap<(u64, u64), Weak<Held>>;

static HELD: Mutex<Option<Registry>> = Mutex::new(None);

fn registry() -> std::sync::MutexGuard<'static, Option<Registry>> {
    HELD.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ImageLock {
    /// Locks the existing file at `path` in `mode`, without waiting: another process's
    /// conflicting lock is [`LockError::Busy`], naming it.
    pub fn acquire(path: &Path, mode: LockMode) -> Result<Self, LockError> {
        let io_err = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new().read(true).open(path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        let key = (meta.dev(), meta.ino());
        let mut guard = registry();
        let held = guard.get_or_insert_with(HashMap::new);
        if let Some(existing) = held.get(&key).and_then(Weak::upgrade) {
            let mut current = existing.mode.lock().unwrap_or_else(PoisonError::into_inner);
            if mode == LockMode::Exclusive && *current == LockMode::Shared {
                // Upgrade in place; another process's shared lock refuses it.
                if let Some(f) = &existing.file {
                    try_lock(f, mode).map_err(|e| busy_or_io(path, &meta, e))?;
                }
                *current = LockMode::Exclusive;
            }
            drop(current);
            return Ok(Self { _held: existing });
        }
        try_lock(&file, mode).map_err(|e| busy_or_io(path, &meta, e))?;
        let held_lock = Arc::new(Held {
            key,
            file: Some(file),
            mode: Mutex::new(mode),
        });
        held.insert(key, Arc::downgrade(&held_lock));
        Ok(Self { _held: held_lock })
    }
}

/// How long a busy lock is tried again before it counts as held: a lock this process just
/// released can still be held for a moment by a child it forked (the child's copy of the
/// descriptor lives until its exec), which a test binary re-running itself did in CI.
const BUSY_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

fn try_lock(file: &File, mode: LockMode) -> Result<(), TryLockError> {
    let deadline = std::time::Instant::now() + BUSY_GRACE;
    loop {
        let r = match mode {
            LockMode::Shared => file.try_lock_shared(),
            LockMode::Exclusive => file.try_lock(),
        };
        match r {
            Err(TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            r => return r,
        }
    }
}

fn busy_or_io(path: &Path, meta: &std::fs::Metadata, e: TryLockError) -> LockError {
    match e {
        TryLockError::WouldBlock => LockError::Busy {
            path: path.to_path_buf(),
            holder: holder(meta.dev(), meta.ino(), std::process::id()),
        },
        TryLockError::Error(source) => LockError::Io {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// The process holding a flock on (dev, ino), from /proc/locks ("1: FLOCK ADVISORY WRITE
/// 1234 fd:01:5678 0 EOF"), other than `me`.
fn holder(dev: u64, ino: u64, me: u32) -> Holder {
    let text = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    let pid = holder_in(&text, dev, ino, me);
    let command = pid.and_then(|p| {
        std::fs::read_to_string(format!("/proc/{p}/comm"))
            .ok()
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
    });
    Holder { pid, command }
}

/// The first FLOCK holder of (dev, ino) in /proc/locks text that is not `me`.
fn holder_in(text: &str, dev: u64, ino: u64, me: u32) -> Option<u32> {
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // "N:" [ "->" ] FLOCK ADVISORY MODE PID MAJ:MIN:INODE START END
        let at = fields.iter().position(|f| *f == "FLOCK")?;
        let pid: u32 = fields.get(at + 3)?.parse().ok()?;
        let mut id = fields.get(at + 4)?.split(':');
        let (ma, mi, i) = (id.next()?, id.next()?, id.next()?);
        let matches = u64::from_str_radix(ma, 16).ok()? == major
            && u64::from_str_radix(mi, 16).ok()? == minor
            && i.parse::<u64>().ok()? == ino;
        (matches && pid != me).then_some(pid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_locks_lines_name_the_holder() {
        let dev = nix::sys::stat::makedev(0xfd, 0x01);
        let text = "1: POSIX  ADVISORY  WRITE 99 fd:01:5678 0 EOF\n\
                    2: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF\n\
                    3: FLOCK  ADVISORY  READ 77 fd:01:9 0 EOF\n";
        assert_eq!(holder_in(text, dev, 5678, 1), Some(1234));
        assert_eq!(holder_in(text, dev, 5678, 1234), None, "never ourselves");
        assert_eq!(holder_in(text, dev, 9, 1), Some(77));
        assert_eq!(holder_in(text, dev, 10, 1), None);
        let blocked = "4: -> FLOCK  ADVISORY  WRITE 555 fd:01:5678 0 EOF\n";
        assert_eq!(holder_in(blocked, dev, 5678, 1), Some(555));
    }

    #[test]
    fn one_process_shares_its_lock_and_upgrades_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("img");
        std::fs::write(&path, b"x").unwrap();
        let a = ImageLock::acquire(&path, LockMode::Shared).unwrap();
        let b = ImageLock::acquire(&path, LockMode::Exclusive).unwrap();
        // Another open file description (as another process would have) is refused.
        let other = File::open(&path).unwrap();
        assert!(matches!(
            other.try_lock_shared(),
            Err(TryLockError::WouldBlock)
        ));
        drop(a);
        assert!(matches!(
            other.try_lock_shared(),
            Err(TryLockError::WouldBlock)
        ));
        drop(b);
        other.try_lock().expect("released with the last holder");
        let e = ImageLock::acquire(&path, LockMode::Shared).unwrap_err();
        assert!(matches!(e, LockError::Busy { .. }), "{e}");
    }
}
