//! The `[[library]]` tables of an inventory or daemon config (DESIGN.md "Tape library"):
//!
//! | key | meaning |
//! |---|---|
//! | `name` | unique among devices and libraries; what `[[lun]] device = …` names |
//! | `designator` / `designators` | the changer's VPD 83h (default: derived from the name) |
//! | `drives` | names of `[[device]] kind = "tape"` entries without `path`, in element order |
//! | `slots` | storage elements (1-61439) |
//! | `import_export` | import/export elements (0-240, default 0) |
//! | `media` | directory of the `BARCODE.tap` cartridges (relative: to the config's directory), or a cartridge store's URL: `s3://BUCKET/PREFIX` with `[object_store]` (docs/object-store.md), where the program reading the inventory has that kind of store ([`super::cartridge_store::StoreKinds`]) |
//! | `serial` | VPD 80h (default: the name) |
//!
//! Errors name the library and the key, as the inventory's do. The element map lives in
//! the state directory ([`crate::state::state_dir`]) as `NAME.elements`. The inventory reads
//! and opens the tables (`device::inventory::libraries`); this is what a library is given.

use std::path::{Path, PathBuf};

use crate::scsi::Designator;

/// One `[[library]]`, parsed and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LibraryConfig {
    pub name: String,
    /// As configured (a derived one is added when the library is opened).
    pub designators: Vec<Designator>,
    /// Inventory names of the drives; drive n is data transfer element 0100h + n.
    pub drives: Vec<String>,
    pub slots: u16,
    pub import_export: u16,
    pub media: PathBuf,
    /// Where the element map is kept.
    pub state_dir: PathBuf,
    pub serial: Option<String>,
    /// `media = "SCHEME://…"`: the cartridges are in a cartridge store (`s3://`: an object
    /// store, this daemon one of its gateways; `media` then holds only the cartridges'
    /// local memory files).
    pub object: Option<super::cartridge_store::StoreMedia>,
}

impl LibraryConfig {
    /// A library with `drives` and `slots` over `media`, its map in `state_dir`.
    pub fn new(name: &str, drives: &[&str], slots: u16, media: &Path, state_dir: &Path) -> Self {
        Self {
            name: name.into(),
            designators: Vec::new(),
            drives: drives.iter().map(|d| d.to_string()).collect(),
            slots,
            import_export: 0,
            media: media.into(),
            state_dir: state_dir.into(),
            serial: None,
            object: None,
        }
    }
}
