//! `xcopy library`: a tape library administered like `mtx` does it — through SCSI medium
//! changer commands, to a library of the local config (`-d INV.toml`, opened by this
//! process) or to the changer LUN of a running xcopyd (`--target iscsi://…/LUN`): status,
//! load, unload, transfer, inventory; and what an operator does at the library's door —
//! create blank cartridges, import and export images — through the media directory (so
//! remotely on the same host only) and INITIALIZE ELEMENT STATUS.
//!
//! Numbers as mtx prints them: storage slots 1..S, then import/export slots S+1..S+M,
//! drives from 0.
//!
//! Also the cartridge mounts of `xcopy backup --to LIBRARY:BARCODE` and `xcopy restore
//! --from LIBRARY:BARCODE` (remotely `lun:N:BARCODE`, N the changer's LUN): the cartridge
//! goes into a free drive, the copy runs on that drive, and the cartridge goes back to
//! the slot it came from.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::device::inventory::{Inventory, InventoryConfig};
use crate::device::library::drive::DriveState;
use crate::device::library::mam::Mam;
use crate::device::library::{lto, Library};
use crate::device::{DataDirection, ScsiDevice};
use crate::iscsi::initiator::{IscsiUrl, LoginOptions, Session};
use crate::scsi::smc::{self, ElementStatus, ElementType, MoveMedium, ReadElementStatus};
use crate::scsi::Sense;

#[derive(Debug, Args)]
pub struct LibraryArgs {
    #[command(subcommand)]
    pub action: Action,
    /// The config holding the [[library]] (also needed with --target to create, import
    /// or export cartridges: the media directory).
    #[arg(short = 'd', long, value_name = "INV.toml", global = true)]
    pub devices: Option<PathBuf>,
    /// The changer LUN of a running xcopyd: iscsi://HOST[:PORT]/IQN/LUN.
    #[arg(long, value_name = "iscsi://HOST[:PORT]/IQN/LUN", global = true)]
    pub target: Option<String>,
    /// Which [[library]] of the config (default: the only one).
    #[arg(short = 'l', long, global = true)]
    pub library: Option<String>,
    /// Print one JSON object as the last line of standard output.
    #[arg(short = 'j', long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// List drives and slots with their barcodes, like `mtx status`.
    Status,
    /// Move the cartridge in SLOT into DRIVE (default 0).
    Load { slot: usize, drive: Option<usize> },
    /// Move the cartridge in DRIVE (default 0) to SLOT (default: where it came from).
    Unload {
        slot: Option<usize>,
        drive: Option<usize>,
    },
    /// Move a cartridge from slot to slot.
    Transfer { from: usize, to: usize },
    /// Look at the media directory again (INITIALIZE ELEMENT STATUS).
    Inventory,
    /// Create blank cartridges (empty images) and store them in free slots.
    Create {
        /// Barcodes (1-32 letters, digits, - or _); one without an L5-L9 suffix gets
        /// that of --generation.
        #[arg(required = true)]
        barcodes: Vec<String>,
        /// LTO generation of cartridges named without a suffix.
        #[arg(short = 'g', long, default_value_t = lto::DEFAULT_GENERATION)]
        generation: u8,
        /// A capacity smaller than the generation's (e.g. 64MiB), kept in the cartridge's
        /// attributes (MAXIMUM CAPACITY IN PARTITION).
        #[arg(long, value_parser = super::copy_args::parse_size)]
        capacity: Option<u64>,
    },
    /// Put SIMH images (named BARCODE.tap) into the library and store them in free slots.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Take a cartridge (by slot number or barcode) out of the library: through an
    /// import/export slot, its image moved to --to.
    Export {
        cartridge: String,
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
}

/// A changer the CLI sends CDBs to.
enum Changer {
    Local(Arc<Library>),
    Remote(Session, u64),
}

/// A changer command refused with CHECK CONDITION: the CLI exits with its sense key.
#[derive(Debug)]
struct Refused {
    what: String,
    sense: Sense,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.sense)
    }
}

impl std::error::Error for Refused {}

/// A command's outcome.
struct Answer {
    status: u8,
    data: Vec<u8>,
    sense: Vec<u8>,
}

impl Changer {
    fn command(&self, cdb: &[u8], out: &[u8], len: usize) -> Result<Answer> {
        match self {
            Self::Local(library) => {
                let mut data = vec![0u8; len];
                let direction = if !out.is_empty() {
                    DataDirection::ToDevice(out)
                } else if len > 0 {
                    DataDirection::FromDevice(&mut data)
                } else {
                    DataDirection::None
                };
                let c = library.execute(cdb, direction)?;
                data.truncate(len.saturating_sub(c.residual));
                Ok(Answer {
                    status: c.status.0,
                    data,
                    sense: c.sense,
                })
            }
            Self::Remote(session, lun) => {
                // Unit attentions (power on, an import/export slot accessed) are not the
                // answer: the command is sent again.
                for _ in 0..4 {
                    let r = session.command(*lun, cdb, out, len)?;
                    let attention =
                        r.status == 2 && Sense::decode(&r.sense).is_ok_and(|s| s.key.0 == 6);
                    if !attention {
                        return Ok(Answer {
                            status: r.status,
                            data: r.data_in,
                            sense: r.sense,
                        });
                    }
                }
                bail!("the changer keeps answering UNIT ATTENTION")
            }
        }
    }

    /// `cdb` must end GOOD: its data, or an error with the sense.
    fn good(&self, what: &str, cdb: &[u8], len: usize) -> Result<Vec<u8>> {
        let a = self.command(cdb, &[], len)?;
        match (a.status, Sense::decode(&a.sense)) {
            (0, _) => Ok(a.data),
            (_, Ok(sense)) => Err(Refused {
                what: what.to_string(),
                sense,
            }
            .into()),
            (status, Err(_)) => bail!("{what}: SCSI status {status:#04x}"),
        }
    }

    /// Every element, with volume tags and the drives' identifiers.
    fn elements(&self) -> Result<Vec<ElementStatus>> {
        let mut allocation = 64 * 1024;
        loop {
            let cdb = ReadElementStatus {
                voltag: true,
                element_type: None,
                starting_address: 0,
                number_of_elements: u16::MAX,
                curdata: true,
                dvcid: true,
                allocation_length: allocation,
            };
            let data = self.good("READ ELEMENT STATUS", &cdb.encode(), allocation as usize)?;
            let available = data
                .get(5..8)
                .map_or(0, |b| u32::from_be_bytes([0, b[0], b[1], b[2]]));
            if available + 8 <= allocation || allocation >= 0xff_ffff {
                return Ok(smc::decode_element_status_data(&data)?);
            }
            allocation = (available + 8).min(0xff_ffff);
        }
    }

    fn move_medium(&self, source: u16, destination: u16) -> Result<()> {
        let cdb = MoveMedium {
            transport: 0,
            source,
            destination,
            invert: false,
        };
        self.good(
            &format!("MOVE MEDIUM {source:#06x} -> {destination:#06x}"),
            &cdb.encode(),
            0,
        )
        .map(drop)
    }

    fn initialize(&self) -> Result<()> {
        self.good("INITIALIZE ELEMENT STATUS", &[0x07, 0, 0, 0, 0, 0], 0)
            .map(drop)
    }
}

/// The elements, numbered as mtx numbers them.
struct View {
    drives: Vec<ElementStatus>,
    /// Storage slots, then import/export slots.
    slots: Vec<ElementStatus>,
    import_export: usize,
}

impl View {
    fn new(elements: Vec<ElementStatus>) -> Self {
        let of = |t| -> Vec<ElementStatus> {
            let mut v: Vec<_> = elements
                .iter()
                .filter(|e| e.element_type == Some(t))
                .cloned()
                .collect();
            v.sort_by_key(|e| e.address);
            v
        };
        let mut slots = of(ElementType::Storage);
        let ie = of(ElementType::ImportExport);
        let import_export = ie.len();
        slots.extend(ie);
        Self {
            drives: of(ElementType::DataTransfer),
            slots,
            import_export,
        }
    }

    fn slot(&self, n: usize) -> Result<&ElementStatus> {
        n.checked_sub(1)
            .and_then(|i| self.slots.get(i))
            .with_context(|| format!("no slot {n} (1..={})", self.slots.len()))
    }

    fn drive(&self, n: usize) -> Result<&ElementStatus> {
        self.drives
            .get(n)
            .with_context(|| format!("no drive {n} (0..{})", self.drives.len()))
    }

    fn slot_number(&self, address: u16) -> Option<usize> {
        self.slots
            .iter()
            .position(|e| e.address == address)
            .map(|i| i + 1)
    }

    fn is_import_export(&self, n: usize) -> bool {
        n > self.slots.len() - self.import_export
    }

    fn find(&self, barcode: &str) -> Option<&ElementStatus> {
        self.drives
            .iter()
            .chain(&self.slots)
            .find(|e| e.volume_tag.as_deref() == Some(barcode))
    }

    /// The lowest empty storage slot.
    fn free_storage(&self) -> Option<&ElementStatus> {
        self.slots
            .iter()
            .take(self.slots.len() - self.import_export)
            .find(|e| !e.full)
    }

    fn free_import_export(&self) -> Option<&ElementStatus> {
        self.slots
            .iter()
            .skip(self.slots.len() - self.import_export)
            .find(|e| !e.full)
    }
}

/// Opens the one library of the config (or `name`), with only its drives.
fn open_local(devices: &Path, name: Option<&str>) -> Result<(Inventory, String)> {
    let mut config = InventoryConfig::load_with(devices, &crate::objstore::store_kinds())?;
    let library = match (name, config.libraries.as_slice()) {
        (Some(n), _) => n.to_string(),
        (None, [one]) => one.name.clone(),
        (None, []) => bail!("{}: no [[library]]", devices.display()),
        (None, _) => bail!(
            "{}: several [[library]] tables: name one with -l",
            devices.display()
        ),
    };
    config.libraries.retain(|l| l.name == library);
    let drives = match config.libraries.first() {
        Some(l) => l.drives.clone(),
        None => bail!("{}: no [[library]] named {library:?}", devices.display()),
    };
    config.devices.retain(|d| drives.contains(&d.name));
    let inventory = Inventory::open(&config).with_context(|| {
        format!("opening library {library:?} (if xcopyd serves it, use --target)")
    })?;
    Ok((inventory, library))
}

/// The media directory of the config's library, for operator actions.
fn media_dir(args: &LibraryArgs) -> Result<PathBuf> {
    let devices = args
        .devices
        .as_ref()
        .context("the media directory comes from the config: give -d INV.toml")?;
    let config = InventoryConfig::load_with(devices, &crate::objstore::store_kinds())?;
    let library = match (&args.library, config.libraries.as_slice()) {
        (Some(n), ls) => ls.iter().find(|l| &l.name == n),
        (None, [one]) => Some(one),
        _ => None,
    };
    Ok(library.context("name the library with -l")?.media.clone())
}

/// Logs in to the target of `url` and addresses LUN `lun` (the URL's when None).
fn connect(url: &str, lun: Option<u64>) -> Result<(Session, u64)> {
    let url = IscsiUrl::parse(url)?;
    let session = Session::connect(&url.address, &LoginOptions::new(&url.target))
        .with_context(|| format!("logging in to {} at {}", url.target, url.address))?;
    Ok((session, lun.unwrap_or(url.lun)))
}

pub fn library(args: &LibraryArgs) -> Result<u8> {
    let (changer, name, _inventory) = match &args.target {
        Some(url) => {
            let (session, lun) = connect(url, None)?;
            (Changer::Remote(session, lun), url.clone(), None)
        }
        None => {
            let devices = args
                .devices
                .as_ref()
                .context("give the config (-d INV.toml) or a running xcopyd (--target)")?;
            let (inventory, name) = open_local(devices, args.library.as_deref())?;
            let library = inventory
                .library(&name)
                .context("library not opened")?
                .clone();
            (Changer::Local(library), name, Some(inventory))
        }
    };
    let result = act(args, &changer, &name);
    if let Changer::Remote(session, _) = changer {
        let _ = session.logout();
    }
    match result {
        Err(e) => match e.downcast_ref::<Refused>() {
            Some(r) => {
                eprintln!("xcopy: {r}");
                if args.json {
                    println!(
                        "{}",
                        json!({
                            "status": "check_condition", "sense_key": r.sense.key.0,
                            "asc": r.sense.asc.asc(), "ascq": r.sense.asc.ascq(),
                            "field_pointer": r.sense.field_pointer(),
                        })
                    );
                }
                Ok(r.sense.key.0)
            }
            None => Err(e),
        },
        ok => ok,
    }
}

fn act(args: &LibraryArgs, changer: &Changer, name: &str) -> Result<u8> {
    let view = View::new(changer.elements()?);
    match &args.action {
        Action::Status => {
            status(args, name, &view);
            return Ok(0);
        }
        Action::Load { slot, drive } => {
            let (s, d) = (view.slot(*slot)?, view.drive(drive.unwrap_or(0))?);
            changer.move_medium(s.address, d.address)?;
        }
        Action::Unload { slot, drive } => {
            let d = view.drive(drive.unwrap_or(0))?;
            let to = match slot {
                Some(n) => view.slot(*n)?.address,
                None => d
                    .source
                    .filter(|&s| view.slot_number(s).is_some())
                    .or_else(|| view.free_storage().map(|e| e.address))
                    .context("no slot to unload to")?,
            };
            changer.move_medium(d.address, to)?;
        }
        Action::Transfer { from, to } => {
            changer.move_medium(view.slot(*from)?.address, view.slot(*to)?.address)?;
        }
        Action::Inventory => changer.initialize()?,
        Action::Create {
            barcodes,
            generation,
            capacity,
        } => {
            let media = media_dir(args)?;
            for b in barcodes {
                let barcode = if lto::media_generation(b).is_some() {
                    b.clone()
                } else {
                    format!("{b}L{generation}")
                };
                let path = media.join(format!("{barcode}.tap"));
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .with_context(|| format!("creating {}", path.display()))?;
                if let Some(bytes) = capacity {
                    let mut mam = Mam::load(Mam::path_of(&path))?;
                    mam.set_capacity(*bytes);
                    mam.save()?;
                }
                store_new(changer, &barcode)?;
                println!("{barcode}: created");
            }
        }
        Action::Import { files } => {
            let media = media_dir(args)?;
            for f in files {
                let file_name = f.file_name().context("not a file name")?;
                let barcode = Path::new(file_name)
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .context("file name is not BARCODE.tap")?
                    .to_string();
                let target = media.join(file_name);
                if target.exists() {
                    bail!("{} is already in the library", barcode);
                }
                std::fs::copy(f, &target)
                    .with_context(|| format!("copying {} into {}", f.display(), media.display()))?;
                store_new(changer, &barcode)?;
                println!("{barcode}: imported");
            }
        }
        Action::Export { cartridge, to } => {
            let media = media_dir(args)?;
            export(changer, &view, cartridge, &media, to)?;
        }
    }
    if args.json {
        println!("{}", json!({"status": "good"}));
    }
    Ok(0)
}

/// A new image in the media directory: INITIALIZE ELEMENT STATUS puts it in an
/// import/export slot (or, with none free, it waits outside; a library without any stores
/// it itself); then into the lowest free storage slot.
fn store_new(changer: &Changer, barcode: &str) -> Result<()> {
    changer.initialize()?;
    let view = View::new(changer.elements()?);
    let found = view
        .find(barcode)
        .with_context(|| format!("{barcode}: no free import/export slot took it"))?;
    if found.element_type == Some(ElementType::Storage) {
        return Ok(()); // a library without import/export slots stored it
    }
    let at = found.address;
    let to = view
        .free_storage()
        .with_context(|| format!("{barcode}: no free storage slot"))?
        .address;
    changer.move_medium(at, to)
}

/// Moves the cartridge to an import/export slot, opens that slot (refused while medium
/// removal is prevented), takes the image out and lets the library see it gone.
fn export(changer: &Changer, view: &View, cartridge: &str, media: &Path, to: &Path) -> Result<()> {
    let element = match cartridge.parse::<usize>() {
        Ok(n) => view.slot(n)?,
        Err(_) => view
            .find(cartridge)
            .with_context(|| format!("no cartridge {cartridge:?} in the library"))?,
    };
    let barcode = element
        .volume_tag
        .clone()
        .with_context(|| format!("{cartridge}: empty"))?;
    let at = match view.slot_number(element.address) {
        Some(n) if view.is_import_export(n) => element.address,
        _ => {
            let ie = view
                .free_import_export()
                .context("no free import/export slot")?
                .address;
            changer.move_medium(element.address, ie)?;
            ie
        }
    };
    let open = [0x1b, 0, (at >> 8) as u8, at as u8, 0, 0];
    changer.good("OPEN IMPORT/EXPORT ELEMENT", &open, 0)?;
    let target = to.join(format!("{barcode}.tap"));
    std::fs::rename(media.join(format!("{barcode}.tap")), &target)
        .with_context(|| format!("moving {barcode}.tap to {}", to.display()))?;
    changer.initialize()?;
    let close = [0x1b, 0, (at >> 8) as u8, at as u8, 1, 0];
    changer.good("CLOSE IMPORT/EXPORT ELEMENT", &close, 0)?;
    println!("{barcode}: exported to {}", target.display());
    Ok(())
}

/// `xcopy library status`: mtx's layout, and the JSON line.
fn status(args: &LibraryArgs, name: &str, view: &View) {
    println!(
        "  Storage Changer {name}:{} Drives, {} Slots ( {} Import/Export )",
        view.drives.len(),
        view.slots.len(),
        view.import_export
    );
    let tag = |e: &ElementStatus| e.volume_tag.clone().unwrap_or_default();
    let mut drives = Vec::new();
    for (i, d) in view.drives.iter().enumerate() {
        let from = d.source.and_then(|s| view.slot_number(s));
        if d.full {
            let from_text = from.map_or("Unknown Storage Element Loaded".into(), |n| {
                format!("Storage Element {n} Loaded")
            });
            println!(
                "Data Transfer Element {i}:Full ({from_text}):VolumeTag = {}",
                tag(d)
            );
        } else {
            println!("Data Transfer Element {i}:Empty");
        }
        drives.push(json!({
            "drive": i, "address": d.address, "full": d.full, "barcode": d.volume_tag,
            "source_slot": from, "loaded": d.full && !d.access,
            "designator": d.identifier.as_ref().map(ToString::to_string),
        }));
    }
    let mut slots = Vec::new();
    for (i, s) in view.slots.iter().enumerate() {
        let n = i + 1;
        let ie = view.is_import_export(n);
        let kind = if ie { " IMPORT/EXPORT" } else { "" };
        if s.full {
            println!("      Storage Element {n}{kind}:Full :VolumeTag={}", tag(s));
        } else {
            println!("      Storage Element {n}{kind}:Empty");
        }
        slots.push(json!({
            "slot": n, "address": s.address, "import_export": ie, "full": s.full,
            "barcode": s.volume_tag,
        }));
    }
    if args.json {
        println!(
            "{}",
            json!({"status": "good", "library": name, "drives": drives, "slots": slots})
        );
    }
}

/// A tape argument naming a cartridge of a library of `inventory` (`LIBRARY:BARCODE`):
/// the cartridge is put in a free drive (unless already in one), `f` runs with that
/// drive's inventory name, and the cartridge goes back to where it was. Any other
/// argument: `f` runs with it unchanged.
pub(super) fn with_local_cartridge<T>(
    inventory: &Inventory,
    spec: &str,
    f: impl FnOnce(&str) -> Result<T>,
) -> Result<T> {
    let Some((library, barcode)) = spec
        .split_once(':')
        .and_then(|(l, b)| Some((inventory.library(l)?, b)))
    else {
        return f(spec);
    };
    let home = library.locate(barcode).with_context(|| {
        format!(
            "{spec}: no cartridge {barcode:?} in library {}",
            library.name()
        )
    })?;
    if let Some(i) = library.layout().drive_index(home) {
        return f(&library.drives()[i].config().name);
    }
    let map = library.map();
    let (i, drive) = library
        .drives()
        .iter()
        .enumerate()
        .find(|(i, d)| {
            d.state() == DriveState::Empty && map.get(library.layout().drive_address(*i)).is_none()
        })
        .with_context(|| {
            format!(
                "{spec}: every drive of {} holds a cartridge",
                library.name()
            )
        })?;
    let address = library.layout().drive_address(i);
    library
        .move_medium(0, home, address)
        .map_err(|e| anyhow::anyhow!("{spec}: loading into {}: {e}", drive.config().name))?;
    let result = f(&drive.config().name);
    let back = library
        .move_medium(0, address, home)
        .map_err(|e| anyhow::anyhow!("{spec}: unloading back to {home:#06x}: {e}"));
    let out = result?;
    back?;
    Ok(out)
}

/// The names `open_inventory` keeps for a tape argument: a library's and its drives'.
pub(super) fn names_for(config: &InventoryConfig, spec: &str) -> Vec<String> {
    let name = spec.split_once(':').map_or(spec, |(n, _)| n);
    let library = config
        .libraries
        .iter()
        .find(|l| l.name == name || l.drives.iter().any(|d| d == name));
    match library {
        Some(l) => std::iter::once(l.name.clone())
            .chain(l.drives.iter().cloned())
            .collect(),
        None => vec![name.to_string()],
    }
}

/// A remote tape argument `lun:N:BARCODE`, N the changer's LUN: as
/// [`with_local_cartridge`], through the changer, `f` getting the drive's designator
/// (which the remote copy resolves to its LUN).
pub(super) fn with_remote_cartridge<T>(
    url: &str,
    spec: &str,
    f: impl FnOnce(&str) -> Result<T>,
) -> Result<T> {
    let parts: Vec<&str> = spec.splitn(3, ':').collect();
    let [_, lun, barcode] = parts.as_slice() else {
        return f(spec);
    };
    let Ok(lun) = lun.parse::<u64>() else {
        return f(spec);
    };
    let (session, lun) = connect(url, Some(lun))?;
    let changer = Changer::Remote(session, lun);
    let designator = |e: &ElementStatus| -> Result<String> {
        e.identifier
            .as_ref()
            .map(ToString::to_string)
            .with_context(|| {
                format!(
                    "{spec}: the changer does not identify drive {:#06x}",
                    e.address
                )
            })
    };
    // Another initiator may take the drive chosen between READ ELEMENT STATUS and MOVE
    // MEDIUM (3B/0D): look again and take the next empty one.
    let mut attempts = 0;
    let (home, drive, name) = loop {
        let view = View::new(changer.elements()?);
        let home = view
            .find(barcode)
            .with_context(|| format!("{spec}: no cartridge {barcode:?} in the library"))?
            .clone();
        if home.element_type == Some(ElementType::DataTransfer) {
            let name = designator(&home)?;
            if let Changer::Remote(session, _) = changer {
                let _ = session.logout();
            }
            return f(&name);
        }
        let drive = view
            .drives
            .iter()
            .find(|d| !d.full)
            .with_context(|| format!("{spec}: every drive holds a cartridge"))?
            .clone();
        let name = designator(&drive)?;
        match changer.move_medium(home.address, drive.address) {
            Ok(()) => break (home, drive, name),
            Err(e) => {
                let taken = e.downcast_ref::<Refused>().is_some_and(|r| {
                    r.sense.asc == crate::scsi::Asc::MEDIUM_DESTINATION_ELEMENT_FULL
                });
                attempts += 1;
                if !taken || attempts >= 16 {
                    return Err(e);
                }
            }
        }
    };
    if let Changer::Remote(session, _) = changer {
        let _ = session.logout();
    }
    let result = f(&name);
    let (session, lun) = connect(url, Some(lun))?;
    let changer = Changer::Remote(session, lun);
    let back = changer.move_medium(drive.address, home.address);
    if let Changer::Remote(session, _) = changer {
        let _ = session.logout();
    }
    let out = result?;
    back?;
    Ok(out)
}
