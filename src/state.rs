//! Where the embedded default lives: with no inventory or config given, `xcopyd` and
//! `xcopy` share the emulated disk and tape of [`EMBEDDED_DEFAULT`] in one state directory
//! (DESIGN.md).

use std::io;
use std::path::{Path, PathBuf};

/// The configuration served with no `--config`: a 64 MiB sparse disk and a tape image in
/// the state directory (relative paths resolve against it), LUN 0 and LUN 1.
pub const EMBEDDED_DEFAULT: &str = r#"
[iscsi]
listen = "127.0.0.1:3260"
target = "iqn.2026-11.org.xcopyd:mover"

[[device]]
name = "disk0"
kind = "disk"
path = "disk0.img"
block_size = 512
size = "64MiB"
designator = "naa.5001405a1b2c3d01"

[[device]]
name = "tape0"
kind = "tape"
path = "tape0.tap"
block_size = 0
designator = "naa.5001405a1b2c3d02"

[[lun]]
device = "disk0"

[[lun]]
device = "tape0"
"#;

/// Creates what [`EMBEDDED_DEFAULT`] needs in `state_dir` before it is opened: the
/// directory, and the tape image, empty (a blank tape: BOT = end of data). The disk image
/// is created by its `size` when the disk is opened.
pub fn create_embedded_media(state_dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(state_dir)?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state_dir.join("tape0.tap"))?;
    Ok(())
}

/// The state directory: `$XCOPYD_STATE_DIR` when set, else
/// [`default_state_dir`] (`$XDG_STATE_HOME/xcopyd`, `/var/lib/xcopyd` for
/// root, `~/.local/state/xcopyd`).
pub fn state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XCOPYD_STATE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    default_state_dir(
        std::env::var("XDG_STATE_HOME").ok().as_deref(),
        std::env::var("HOME").ok().as_deref(),
        nix::unistd::geteuid().is_root(),
    )
}

/// The default state directory: `$XDG_STATE_HOME/xcopyd`, else `/var/lib/xcopyd` for root,
/// else `~/.local/state/xcopyd`.
pub fn default_state_dir(xdg_state_home: Option<&str>, home: Option<&str>, root: bool) -> PathBuf {
    match (xdg_state_home.filter(|s| !s.is_empty()), root, home) {
        (Some(x), _, _) => Path::new(x).join("xcopyd"),
        (None, true, _) => PathBuf::from("/var/lib/xcopyd"),
        (None, false, Some(h)) => Path::new(h).join(".local/state/xcopyd"),
        (None, false, None) => PathBuf::from("/var/lib/xcopyd"),
    }
}

/// The file in a state directory that holds the installation's identity.
pub const INSTALLATION_ID_FILE: &str = "installation-id";

/// This installation's identity: 16 random bytes kept in `dir`/installation-id (32 hex
/// digits), made on first use. Designators derived for emulated devices mix it in, so two
/// hosts whose configs both name a tape `t1` never present the same NAA on one SAN, while
/// each host keeps its own across restarts. Two processes making it at once agree: the
/// first rename wins and the loser reads the winner's.
pub fn installation_id(dir: &Path) -> io::Result<[u8; 16]> {
    let path = dir.join(INSTALLATION_ID_FILE);
    if let Some(id) = read_installation_id(&path)? {
        return Ok(id);
    }
    std::fs::create_dir_all(dir)?;
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| io::Error::other(format!("no random bytes: {e}")))?;
    let text = format!("{}\n", hex::encode(id));
    // Named by its own random content: no other maker, thread or process, writes it.
    let tmp = dir.join(format!(".{INSTALLATION_ID_FILE}.{}", text.trim()));
    std::fs::write(&tmp, &text)?;
    // A hard link fails if the name exists: whoever linked first made the identity.
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(id),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_installation_id(&path)?
            .ok_or_else(|| io::Error::other(format!("{} is empty", path.display()))),
        Err(e) => Err(e),
    }
}

fn read_installation_id(path: &Path) -> io::Result<Option<[u8; 16]>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut id = [0u8; 16];
    hex::decode_to_slice(text.trim(), &mut id).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not 32 hex digits: {e}", path.display()),
        )
    })?;
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installation_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let a = installation_id(&state).unwrap();
        assert_ne!(a, [0; 16]);
        assert_eq!(installation_id(&state).unwrap(), a);
        let text = std::fs::read_to_string(state.join(INSTALLATION_ID_FILE)).unwrap();
        assert_eq!(text, format!("{}\n", hex::encode(a)));
        // Another directory, another installation.
        assert_ne!(installation_id(&dir.path().join("other")).unwrap(), a);
        // Damage is an error, never a silent new identity.
        std::fs::write(state.join(INSTALLATION_ID_FILE), "zz\n").unwrap();
        let e = installation_id(&state).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // Leftover temporary files do not matter; only the final name does.
        assert_eq!(
            std::fs::read_dir(&state).unwrap().count(),
            1,
            "only the identity file"
        );
    }

    #[test]
    fn racing_makers_agree() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<[u8; 16]> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| installation_id(dir.path()).unwrap()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    }
}
