//! Where a library keeps things: its cartridges as SIMH images `BARCODE.tap` in the media
//! directory (any tool can read one without xcopyd), and its element map in the state
//! directory as `NAME.elements`, replaced atomically on every change (written to a
//! temporary file, synced, renamed over the old one, the directory synced), so a crash at
//! any instant leaves either the map before a move or the map after it — each cartridge in
//! exactly one element.
//!
//! With `media = "SCHEME://…"` the cartridges are in a cartridge store instead
//! ([`super::cartridge_store`]; `s3://`: an object store): the library's cartridges are
//! those the store says this process holds, and a drive opens them from the store; the
//! element map stays local.
//!
//! One process owns a library at a time: it holds an exclusive `flock` on `NAME.lock` in
//! the state directory (the map file itself is replaced, so it cannot carry the lock).

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::cartridge_store::{CartridgeStore, StoreMedia};
use super::elements::valid_barcode;
use crate::device::lock::{ImageLock, LockMode};
use crate::device::tape::Backing;

/// A library's files.
#[derive(Debug)]
pub struct Store {
    media: PathBuf,
    map: PathBuf,
    /// Where the cartridges are when they are not in `media`.
    cartridges: Option<Arc<dyn CartridgeStore>>,
    _lock: ImageLock,
}

impl Store {
    /// Opens (creating the directories if missing) and locks the store of library `name`;
    /// returns the saved element map's text, if there is one.
    pub fn open(
        name: &str,
        state_dir: &Path,
        media: &Path,
        object: Option<&StoreMedia>,
    ) -> io::Result<(Self, Option<String>)> {
        fs::create_dir_all(state_dir)?;
        fs::create_dir_all(media)?;
        let lock_path = state_dir.join(format!("{name}.lock"));
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&lock_path)?;
        let lock = ImageLock::acquire(&lock_path, LockMode::Exclusive)
            .map_err(|e| io::Error::new(io::ErrorKind::WouldBlock, e.to_string()))?;
        let map = state_dir.join(format!("{name}.elements"));
        let text = match fs::read_to_string(&map) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let cartridges = match object {
            Some(StoreMedia(settings)) => {
                let s = settings.open()?;
                let held = s.reclaim()?;
                tracing::info!(library = %name, store = %s.name(), cartridges = held.len(), "cartridge store up");
                Some(s)
            }
            None => None,
        };
        Ok((
            Self {
                media: media.to_path_buf(),
                map,
                cartridges,
                _lock: lock,
            },
            text,
        ))
    }

    /// The element map file.
    pub fn map_path(&self) -> &Path {
        &self.map
    }

    pub fn media(&self) -> &Path {
        &self.media
    }

    /// Replaces the element map with `text`, atomically and durably.
    pub fn save(&self, text: &str) -> io::Result<()> {
        let mut tmp_name = self.map.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &self.map)?;
        let dir = self.map.parent().unwrap_or(Path::new("."));
        File::open(dir)?.sync_all()
    }

    /// The image of the cartridge `barcode` (partition 0).
    pub fn image(&self, barcode: &str) -> PathBuf {
        self.media.join(format!("{barcode}.tap"))
    }

    /// The cartridge store, for store media.
    pub fn cartridges(&self) -> Option<&Arc<dyn CartridgeStore>> {
        self.cartridges.as_ref()
    }

    /// Cartridge `barcode` opened from the cartridge store; None for directory media.
    pub fn open_object(
        &self,
        barcode: &str,
        writable: bool,
    ) -> Option<io::Result<Box<dyn Backing>>> {
        Some(self.cartridges.as_ref()?.open(barcode, writable))
    }

    /// The barcodes of the cartridges in the media directory: every `BARCODE.tap` whose
    /// name is a valid barcode (other files, partition images `BARCODE.pN.tap` included,
    /// are not cartridges).
    pub fn scan(&self) -> io::Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        if let Some(s) = &self.cartridges {
            // Cartridges taken for this process by another (`xcopy vault import`) are
            // taken over from here on.
            out.extend(s.reclaim()?.into_iter().filter(|b| valid_barcode(b)));
            return Ok(out);
        }
        for entry in fs::read_dir(&self.media)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(barcode) = name.to_str().and_then(|n| n.strip_suffix(".tap")) else {
                continue;
            };
            if valid_barcode(barcode) && entry.file_type()?.is_file() {
                out.insert(barcode.to_string());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_replaces_the_map_and_scan_finds_cartridges() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let media = dir.path().join("media");
        let (store, text) = Store::open("vtl0", &state, &media, None).unwrap();
        assert_eq!(text, None);
        store.save("1000 A\n").unwrap();
        store.save("1001 A\n").unwrap();
        assert_eq!(
            fs::read_to_string(state.join("vtl0.elements")).unwrap(),
            "1001 A\n"
        );
        assert!(!state.join("vtl0.elements.tmp").exists());
        fs::write(media.join("XC0001L9.tap"), b"").unwrap();
        for other in ["XC0001L9.p1.tap", "notes.txt", "BAD NAME.tap"] {
            fs::write(media.join(other), b"").unwrap();
        }
        fs::create_dir(media.join("DIR.tap")).unwrap();
        assert_eq!(
            store.scan().unwrap(),
            BTreeSet::from(["XC0001L9".to_string()])
        );
        drop(store);
        let (_again, text) = Store::open("vtl0", &state, &media, None).unwrap();
        assert_eq!(text.as_deref(), Some("1001 A\n"));
    }
}
