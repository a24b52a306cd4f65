//! The embedded default: with no inventory or config given, xcopyd and xcopy use an
//! emulated disk and tape in a state directory (DESIGN.md), created on first use.

use std::path::{Path, PathBuf};

/// The default inventory: a 64 MiB emulated disk and an emulated tape, with the
/// designators DESIGN.md shows.
pub const DEFAULT_INVENTORY: &str = r#"# xcopyd's embedded default inventory (created on first use; edit freely).
[[device]]
name = "disk0"
kind = "disk"
path = "disk0.img"
block_size = 512
size = 67108864
designator = "naa.5001405a1b2c3d01"

[[device]]
name = "tape0"
kind = "tape"
path = "tape0.tap"
block_size = 0
designator = "naa.5001405a1b2c3d02"
"#;

/// The state directory: `$XCOPYD_STATE_DIR`, else `$XDG_STATE_HOME/xcopyd`, else
/// `/var/lib/xcopyd` for root, else `~/.local/state/xcopyd`.
pub fn state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XCOPYD_STATE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME") {
        return Path::new(&dir).join("xcopyd");
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/xcopyd");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/state/xcopyd")
}

/// The default inventory file in `dir`, written if missing.
pub fn default_inventory(dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("inventory.toml");
    if !path.exists() {
        std::fs::write(&path, DEFAULT_INVENTORY)?;
    }
    Ok(path)
}
