//! Where the embedded default lives: with no inventory or config given, `xcopyd` and
//! `xcopy` share the emulated disk and tape of [`crate::daemon::EMBEDDED_DEFAULT`] in one
//! state directory (DESIGN.md).

use std::path::PathBuf;

/// The state directory: `$XCOPYD_STATE_DIR` when set, else
/// [`crate::daemon::default_state_dir`] (`$XDG_STATE_HOME/xcopyd`, `/var/lib/xcopyd` for
/// root, `~/.local/state/xcopyd`).
pub fn state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XCOPYD_STATE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    crate::daemon::default_state_dir(
        std::env::var("XDG_STATE_HOME").ok().as_deref(),
        std::env::var("HOME").ok().as_deref(),
        nix::unistd::geteuid().is_root(),
    )
}
