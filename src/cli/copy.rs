//! `xcopy run`, `xcopy backup`, `xcopy restore` and `xcopy devices`: the local copy manager,
//! the same one the daemon runs, over the devices of an inventory.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;

use super::input::{parse_hex_text, read_input};
use super::tape_position::{
    backup_positioning, locate_backup, locate_file, restore_positioning, Placement, Reply, Source,
    Start, TapeCommands,
};
use crate::copy::limit::DeviceLimits;
use crate::copy::manager::CopyManager;
use crate::copy::run::Progress;
use crate::copy::{Abort, Nexus};
use crate::device::inventory::{
    DeviceConfig, DeviceKind, Inventory, InventoryConfig, InventoryDevice,
};
use crate::device::{DataDirection, ScsiDevice};
use crate::scsi::dump::render_sense;
use crate::scsi::parameter_list::Supported;
use crate::scsi::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
use crate::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
use crate::scsi::{Limits, ListIdUsage, ParameterList, Sense, SenseKeySpecific};

/// Options every copying subcommand shares.
#[derive(Clone, Debug, Args)]
pub struct Common {
    /// The device inventory (TOML; the daemon config's [[device]] tables). Default: the
    /// embedded one in the state directory (disk0 and tape0, created on first use).
    #[arg(short = 'd', long, value_name = "INV.toml")]
    pub devices: Option<PathBuf>,
    /// Print one JSON object as the last line of standard output.
    #[arg(short = 'j', long)]
    pub json: bool,
    /// Copy-manager limits (TOML, the [limits] keys); default: xcopyd's.
    #[arg(long, value_name = "TOML")]
    pub limits: Option<PathBuf>,
    /// No progress bar, even on a terminal.
    #[arg(short, long)]
    pub quiet: bool,
    /// 1 MiB buffers in the copy engine's pool (4..=1024): the memory a local copy uses
    /// for data, whatever its size.
    #[arg(long, value_name = "N", default_value_t = crate::copy::engine::BUFFERS)]
    pub buffers: u16,
    /// Read the copy's sources at most RATE bytes per second (sizes as --buffers: 100M,
    /// 200MiB; a local copy only). The inventory's per-device `limit` applies as well.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub limit: Option<u64>,
}

/// `--limit`: a size per second, at least 1.
fn parse_rate(text: &str) -> Result<u64, String> {
    match crate::size::parse(text)? {
        0 => Err("must be at least 1 byte per second".into()),
        n => Ok(n),
    }
}

/// `--limit` caps the local copy engine; a remote copy manager applies its own limits.
fn local_only(common: &Common) -> Result<()> {
    if common.limit.is_some() {
        bail!("--limit applies to local copies; the copy manager at --target applies its own ([daemon] copy_limit, device limit)");
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: Common,
    /// The EXTENDED COPY parameter list (binary, or hex with --inhex; - for stdin).
    pub list: PathBuf,
    /// The list is hex text (sg3_utils --inhex style).
    #[arg(long)]
    pub inhex: bool,
    /// Send the list to a remote copy manager instead: iscsi://HOST[:PORT]/IQN/LUN (the
    /// CSCDs must name devices that copy manager can resolve, e.g. by E4h designator).
    #[arg(long, value_name = "iscsi://HOST[:PORT]/IQN/LUN")]
    pub target: Option<String>,
}

#[derive(Clone, Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub common: Common,
    /// Source disk: NAME[:LBA[+BLOCKS]] (default: the whole disk).
    #[arg(long, value_name = "DISK[:LBA[+BLOCKS]]")]
    pub from: String,
    /// Destination tape (inventory name), or a library's cartridge LIBRARY:BARCODE (loaded
    /// into a free drive for the copy and put back after it).
    #[arg(long, value_name = "TAPE")]
    pub to: String,
    /// Bytes per tape record (variable mode) or per WRITE (fixed mode): sg3_utils number
    /// syntax, e.g. 256k, 1m, 0x40000.
    #[arg(short = 't', long, default_value = "256k", value_parser = parse_size)]
    pub transfer_length: u64,
    /// Write a filemark after the data.
    #[arg(long)]
    pub filemark: bool,
    /// Write from the beginning of the tape: everything on it is lost. (Default: append
    /// after the last data, as `mt eod` and a write would, as a new tape file.)
    #[arg(long, conflicts_with = "position")]
    pub overwrite: bool,
    /// Write from the start of tape file FILE (0 = the beginning): it and every later file
    /// are lost.
    #[arg(long, value_name = "FILE", value_parser = parse_u32)]
    pub position: Option<u32>,
    /// Send the list to a remote copy manager instead: iscsi://HOST[:PORT]/IQN/LUN. The
    /// disk and tape are then `lun:N` of that target (disk: `lun:N[:LBA[+BLOCKS]]`) or a
    /// designator (naa./eui./t10.): one of the target's LUNs is resolved as lun:N is;
    /// another device so named needs --block-length and LBA+BLOCKS for a disk and is taken
    /// to be in variable mode for a tape.
    #[arg(long, value_name = "iscsi://HOST[:PORT]/IQN/LUN")]
    pub target: Option<String>,
    /// The disk's logical block length, for a disk named by designator with --target.
    #[arg(long, value_parser = parse_size)]
    pub block_length: Option<u64>,
}

impl BackupArgs {
    pub(super) fn placement(&self) -> Placement {
        match (self.overwrite, self.position) {
            (true, _) => Placement::Overwrite,
            (false, Some(n)) => Placement::File(n),
            (false, None) => Placement::Append,
        }
    }
}

#[derive(Clone, Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub common: Common,
    /// Source tape (inventory name), read from its current position; or a library's
    /// cartridge LIBRARY:BARCODE (loaded into a free drive, read from its beginning).
    #[arg(long, value_name = "TAPE")]
    pub from: String,
    /// Destination disk: NAME[:LBA[+BLOCKS]] (default: the whole disk).
    #[arg(long, value_name = "DISK[:LBA[+BLOCKS]]")]
    pub to: String,
    /// Record size the backup was written with.
    #[arg(short = 't', long, default_value = "256k", value_parser = parse_size)]
    pub transfer_length: u64,
    /// Position the tape at its beginning first (LOCATE to logical object 0).
    #[arg(long, conflicts_with = "file")]
    pub rewind: bool,
    /// Read tape file FILE (the number `xcopy backup` printed): rewind, then space over
    /// FILE filemarks.
    #[arg(long, value_name = "FILE", value_parser = parse_u32)]
    pub file: Option<u32>,
    /// Send the list to a remote copy manager instead: iscsi://HOST[:PORT]/IQN/LUN. The
    /// disk and tape are then `lun:N` of that target (disk: `lun:N[:LBA[+BLOCKS]]`) or a
    /// designator (naa./eui./t10.): one of the target's LUNs is resolved as lun:N is;
    /// another device so named needs --block-length and LBA+BLOCKS for a disk and is taken
    /// to be in variable mode for a tape.
    #[arg(long, value_name = "iscsi://HOST[:PORT]/IQN/LUN")]
    pub target: Option<String>,
    /// The disk's logical block length, for a disk named by designator with --target.
    #[arg(long, value_parser = parse_size)]
    pub block_length: Option<u64>,
}

impl RestoreArgs {
    pub(super) fn source(&self) -> Source {
        match (self.rewind, self.file) {
            (true, _) => Source::File(0),
            (false, Some(n)) => Source::File(n),
            (false, None) => Source::Current,
        }
    }
}

#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// The device inventory (TOML). Default: the embedded one in the state directory.
    #[arg(short = 'd', long, value_name = "INV.toml")]
    pub devices: Option<PathBuf>,
    /// Print one JSON object as the last line of standard output.
    #[arg(short = 'j', long)]
    pub json: bool,
}

/// A tape file number: decimal or 0x hex.
fn parse_u32(text: &str) -> Result<u32, String> {
    let n = parse_size(text)?;
    u32::try_from(n).map_err(|_| format!("{text:?} is larger than 4294967295"))
}

/// A number the sg3_utils way ([`crate::size::parse`]).
pub fn parse_size(text: &str) -> Result<u64, String> {
    crate::size::parse(text)
}

/// The given inventory, or the embedded default's devices in the state directory (the
/// same disk0 and tape0 the daemon serves with no config; created on first use).
/// `only`: open just these devices (each `NAME` or `NAME:range`), so that a copy between two
/// devices is not refused for a third one another process holds; empty = every device.
fn open_inventory(given: Option<&PathBuf>, only: &[&str]) -> Result<Inventory> {
    let mut config = match given {
        Some(path) => InventoryConfig::load(path)?,
        None => {
            let dir = crate::state::state_dir();
            // Creates the images as the daemon does.
            crate::daemon::DaemonConfig::embedded(&dir)
                .with_context(|| format!("creating the embedded default in {}", dir.display()))?;
            InventoryConfig::parse(crate::daemon::EMBEDDED_DEFAULT, &dir)?
        }
    };
    if !only.is_empty() {
        // A library's cartridge (LIBRARY:BARCODE) or drive keeps the library and its drives.
        let names: Vec<String> = only
            .iter()
            .flat_map(|spec| super::library::names_for(&config, spec))
            .collect();
        config.devices.retain(|d| names.contains(&d.name));
        config.libraries.retain(|l| names.contains(&l.name));
    }
    Ok(Inventory::open(&config)?)
}

/// The opened device an inventory names (for the CLI's own commands to it).
fn device_named(inventory: &Inventory, name: &str) -> Result<Arc<dyn ScsiDevice>> {
    inventory
        .by_name(name)
        .map(|d| d.device.clone())
        .with_context(|| format!("no device {name:?} in the inventory"))
}

fn load(common: &Common, only: &[&str]) -> Result<(Arc<Inventory>, CopyManager)> {
    crate::copy::engine::set_pool_buffers(common.buffers)
        .map_err(|e| anyhow::anyhow!("--buffers: {e}"))?;
    let limits: Limits = match &common.limits {
        Some(path) => toml::from_str(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("{}: bad limits", path.display()))?,
        None => Limits::default(),
    };
    let inventory = Arc::new(open_inventory(common.devices.as_ref(), only)?);
    let device_limits = DeviceLimits::default();
    device_limits.configure(
        inventory
            .devices()
            .iter()
            .filter_map(|d| Some((d.config.name.as_str(), d.config.limit?))),
    );
    let manager = CopyManager::new(inventory.clone(), limits)
        .with_device_limits(Arc::new(device_limits))
        .with_copy_limit(common.limit);
    Ok((inventory, manager))
}

pub fn run(args: &RunArgs) -> Result<u8> {
    let raw = read_input(&args.list)?;
    let bytes = if args.inhex {
        parse_hex_text(std::str::from_utf8(&raw).context("--inhex input is not text")?)?
    } else {
        raw
    };
    if let Some(url) = &args.target {
        local_only(&args.common)?;
        // The remote copy manager validates the list; decoded here only for the bar's total.
        let total = ParameterList::decode(&bytes, &Limits::default(), Supported::default())
            .map_or(0, |l| total_bytes(&l));
        return super::remote::execute(&args.common, url, &bytes, total);
    }
    let (_inventory, manager) = load(&args.common, &[])?;
    let none = serde_json::Map::new;
    if bytes.is_empty() {
        return Ok(report(&args.common, None, 0, Duration::ZERO, 0, none()));
    }
    let list = match ParameterList::decode(&bytes, manager.limits(), Supported::default()) {
        Ok(list) => list,
        Err(e) => {
            let sense: Sense = e.into();
            return Ok(report(
                &args.common,
                Some(sense),
                0,
                Duration::ZERO,
                0,
                none(),
            ));
        }
    };
    execute(&args.common, &manager, &list, total_bytes(&list), none())
}

pub fn backup(args: &BackupArgs) -> Result<u8> {
    if let Some(url) = &args.target {
        local_only(&args.common)?;
        return super::library::with_remote_cartridge(url, &args.to, |to| {
            let args = BackupArgs {
                to: to.to_string(),
                ..args.clone()
            };
            super::remote::backup(&args, url)
        });
    }
    let (inventory, manager) = load(&args.common, &[&args.from, &args.to])?;
    super::library::with_local_cartridge(&inventory, &args.to, |to| {
        backup_to(args, &inventory, &manager, to)
    })
}

/// The local backup to the tape device `to`.
fn backup_to(
    args: &BackupArgs,
    inventory: &Inventory,
    manager: &CopyManager,
    to: &str,
) -> Result<u8> {
    let disk = local_disk(inventory, &args.from)?;
    let tape = local_tape(inventory, to)?;
    let placement = args.placement();
    let start = locate_backup(&LocalTape(&*device_named(inventory, to)?), placement)?;
    print_start(&args.common, &start);
    let positioning = backup_positioning(CscdId(1), placement, start.close_previous)?;
    let list = backup_list(
        &disk,
        &tape,
        args.transfer_length,
        args.filemark,
        positioning,
    )?;
    let extra = start_json(Some(&start));
    execute(&args.common, manager, &list, disk.bytes(), extra)
}

/// Says where a backup starts, before it runs (on stderr with --json, so stdout's last line
/// stays the JSON object).
pub(super) fn print_start(common: &Common, start: &Start) {
    let file = match start.file {
        super::tape_position::UNKNOWN => {
            "(unknown: the drive has no long-form READ POSITION)".to_string()
        }
        n => n.to_string(),
    };
    let text = format!(
        "backup to tape file {file}, starting at block {}{}",
        start.block,
        if start.close_previous {
            " (after a filemark that closes the previous file)"
        } else {
            ""
        }
    );
    if common.json {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}

/// The `tape_file` and `tape_block` members of a backup's JSON line (null when unknown).
pub(super) fn start_json(start: Option<&Start>) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    let file = start
        .map(|s| s.file)
        .filter(|&f| f != super::tape_position::UNKNOWN);
    m.insert("tape_file".into(), json!(file));
    m.insert("tape_block".into(), json!(start.map(|s| s.block)));
    m
}

/// A local tape device as [`TapeCommands`].
struct LocalTape<'a>(&'a dyn ScsiDevice);

impl TapeCommands for LocalTape<'_> {
    fn send(&self, cdb: &[u8], len: usize) -> Result<Reply> {
        let mut data = vec![0u8; len];
        let direction = if len == 0 {
            DataDirection::None
        } else {
            DataDirection::FromDevice(&mut data)
        };
        let c = self.0.execute(cdb, direction)?;
        data.truncate(len.saturating_sub(c.residual));
        Ok(Reply {
            status: c.status.0,
            sense: c.sense,
            data,
        })
    }
}

pub fn restore(args: &RestoreArgs) -> Result<u8> {
    if let Some(url) = &args.target {
        local_only(&args.common)?;
        return super::library::with_remote_cartridge(url, &args.from, |from| {
            let args = RestoreArgs {
                from: from.to_string(),
                ..args.clone()
            };
            super::remote::restore(&args, url)
        });
    }
    let (inventory, manager) = load(&args.common, &[&args.to, &args.from])?;
    super::library::with_local_cartridge(&inventory, &args.from, |from| {
        restore_from(args, &inventory, &manager, from)
    })
}

/// The local restore from the tape device `from`.
fn restore_from(
    args: &RestoreArgs,
    inventory: &Inventory,
    manager: &CopyManager,
    from: &str,
) -> Result<u8> {
    let disk = local_disk(inventory, &args.to)?;
    let tape = local_tape(inventory, from)?;
    let source = args.source();
    if let Source::File(n) = source {
        // Checked before anything is written to the disk.
        locate_file(&LocalTape(&*device_named(inventory, from)?), n)?;
    }
    let positioning = restore_positioning(CscdId(1), source)?;
    let list = restore_list(&disk, &tape, args.transfer_length, positioning)?;
    let extra = serde_json::Map::new();
    execute(&args.common, manager, &list, disk.bytes(), extra)
}

/// The disk end of a backup or restore: how its CSCD names it and the range copied.
pub(super) struct DiskEnd {
    pub identifier: CscdIdentifier,
    pub lba: u64,
    pub blocks: u64,
    pub block_length: u32,
}

impl DiskEnd {
    pub fn bytes(&self) -> u64 {
        self.blocks * u64::from(self.block_length)
    }
}

/// The tape end: how its CSCD names it and the mode the drive is in.
pub(super) struct TapeEnd {
    pub identifier: CscdIdentifier,
    pub fixed: bool,
    pub block_length: u32,
}

/// The backup list (local and remote alike): the disk and tape CSCDs, the positioning
/// segments (tape_position), 00h segments of whole records, then an optional filemark.
pub(super) fn backup_list(
    disk: &DiskEnd,
    tape: &TapeEnd,
    transfer_length: u64,
    filemark: bool,
    positioning: Vec<SegmentDescriptor>,
) -> Result<ParameterList> {
    let cscds = cscds(disk, tape, transfer_length)?;
    let mut segments = positioning;
    for (lba, blocks, stl) in records(
        disk.lba,
        disk.blocks,
        disk.block_length,
        transfer_length,
        (tape.fixed, tape.block_length),
    )? {
        segments.push(SegmentDescriptor {
            cat: false,
            body: Segment::BlockToStream {
                hold: false,
                source: CscdId(0),
                destination: CscdId(1),
                stream_transfer_length: stl,
                blocks,
                lba,
            },
        });
    }
    if filemark {
        segments.push(SegmentDescriptor {
            cat: false,
            body: Segment::WriteFilemarks {
                destination: CscdId(1),
                immed: false,
                count: 1,
            },
        });
    }
    Ok(build(cscds, segments))
}

/// The restore list (local and remote alike): the disk and tape CSCDs, the positioning
/// segments, then 01h segments of whole records.
pub(super) fn restore_list(
    disk: &DiskEnd,
    tape: &TapeEnd,
    transfer_length: u64,
    positioning: Vec<SegmentDescriptor>,
) -> Result<ParameterList> {
    let cscds = cscds(disk, tape, transfer_length)?;
    let mut segments = positioning;
    for (lba, blocks, stl) in records(
        disk.lba,
        disk.blocks,
        disk.block_length,
        transfer_length,
        (tape.fixed, tape.block_length),
    )? {
        segments.push(SegmentDescriptor {
            cat: false,
            body: Segment::StreamToBlock {
                hold: false,
                source: CscdId(1),
                destination: CscdId(0),
                stream_transfer_length: stl,
                blocks,
                lba,
            },
        });
    }
    Ok(build(cscds, segments))
}

/// The list `xcopy backup` runs, for a front end that has already checked who may use the
/// devices (NDMP's local image backup): LBAs `lba..lba + blocks` of `disk` to `tape` where it
/// is positioned, in records of `transfer_length` bytes, with no filemark.
pub(crate) fn image_backup_list(
    disk: &InventoryDevice,
    lba: u64,
    blocks: u64,
    tape: &InventoryDevice,
    transfer_length: u64,
) -> Result<ParameterList> {
    let backend = disk
        .device
        .block_backend()
        .context("the disk has no block backend")?;
    let disk_end = DiskEnd {
        identifier: identification(disk)?,
        lba,
        blocks,
        block_length: backend.block_size,
    };
    let mut mode = [0u8; 12];
    let c = tape.device.execute(
        &[0x1a, 0, 0, 0, 12, 0],
        DataDirection::FromDevice(&mut mode),
    )?;
    let block_length = if c.is_good() && mode[3] >= 8 {
        u32::from_be_bytes([0, mode[9], mode[10], mode[11]])
    } else {
        0
    };
    let tape_end = TapeEnd {
        identifier: identification(tape)?,
        fixed: block_length != 0,
        block_length,
    };
    backup_list(&disk_end, &tape_end, transfer_length, false, Vec::new())
}

/// CSCD 0 the disk, CSCD 1 the tape.
fn cscds(disk: &DiskEnd, tape: &TapeEnd, transfer_length: u64) -> Result<Vec<CscdDescriptor>> {
    if tape.fixed && !transfer_length.is_multiple_of(u64::from(tape.block_length)) {
        bail!(
            "--transfer-length {transfer_length} is not a multiple of the tape's block length {}",
            tape.block_length
        );
    }
    Ok(vec![
        CscdDescriptor {
            nul: false,
            peripheral_device_type: 0,
            relative_initiator_port: 0,
            identifier: disk.identifier.clone(),
            parameters: DeviceParameters::Block {
                pad: false,
                block_length: disk.block_length,
            },
        },
        CscdDescriptor {
            nul: false,
            peripheral_device_type: 1,
            relative_initiator_port: 0,
            identifier: tape.identifier.clone(),
            parameters: DeviceParameters::Stream {
                pad: false,
                fixed: tape.fixed,
                block_length: tape.block_length,
            },
        },
    ])
}

/// `xcopy devices`: every inventory entry and what it answers. Images are opened read-only
/// (a shared lock: nothing is created, repaired or written); an entry whose image does not
/// exist yet, or that another process holds, is listed from its configuration with that
/// state.
pub fn devices(args: &DevicesArgs) -> Result<u8> {
    let config = match &args.devices {
        Some(path) => InventoryConfig::load(path)?,
        None => {
            InventoryConfig::parse(crate::daemon::EMBEDDED_DEFAULT, &crate::state::state_dir())?
        }
    };
    let mut rows = Vec::new();
    for c in &config.devices {
        let emulated = matches!(c.kind, DeviceKind::Disk | DeviceKind::Tape);
        // A library's drive holds whatever the library loaded: listed, not opened.
        let drive_of = config.libraries.iter().find(|l| l.drives.contains(&c.name));
        let state = if let Some(l) = drive_of {
            Err(format!("drive of library {}", l.name))
        } else if emulated && !c.path.exists() {
            Err("not created yet".to_string())
        } else {
            let mut inspect = c.clone();
            inspect.read_only = emulated;
            inspect.size = None;
            let one = InventoryConfig {
                devices: vec![inspect],
                libraries: Vec::new(),
            };
            Inventory::open(&one).map_err(|e| match std::error::Error::source(&e) {
                Some(source) => source.to_string(),
                None => e.to_string(),
            })
        };
        let row = match &state {
            Ok(inventory) => match inventory.devices().first() {
                Some(d) => device_row(d),
                None => continue,
            },
            Err(why) => config_row(c, why),
        };
        rows.push(row);
    }
    for l in &config.libraries {
        let mut c = DeviceConfig::new(&l.name, DeviceKind::Changer, &l.media);
        c.designators = l.designators.clone();
        rows.push(config_row(&c, "library: xcopy library -d INV.toml status"));
    }
    if args.json {
        println!("{}", json!({ "status": "good", "devices": rows }));
    }
    Ok(0)
}

/// The listing of an opened device (printed), and its JSON.
fn device_row(d: &InventoryDevice) -> serde_json::Value {
    let mut inquiry = [0u8; 36];
    let answer = d.device.execute(
        &[0x12, 0, 0, 0, 36, 0],
        DataDirection::FromDevice(&mut inquiry),
    );
    let (pdt, vendor, product) = match answer {
        Ok(c) if c.is_good() => (
            inquiry[0] & 0x1f,
            String::from_utf8_lossy(&inquiry[8..16]).trim().to_string(),
            String::from_utf8_lossy(&inquiry[16..32]).trim().to_string(),
        ),
        _ => (0x1f, String::new(), String::new()),
    };
    let kind = match pdt {
        0 => "disk",
        1 => "tape",
        8 => "mediumx",
        _ => "other",
    };
    let (block_size, blocks) = d
        .device
        .block_backend()
        .map_or((d.config.block_size, None), |b| {
            (b.block_size, Some(b.blocks))
        });
    let designators: Vec<String> = d.designators.iter().map(ToString::to_string).collect();
    println!(
        "{:12} {:5} {:8} {:16} {}{}",
        d.config.name,
        kind,
        vendor,
        product,
        d.config.path.display(),
        blocks.map_or(String::new(), |b| format!("  {b} x {block_size} B")),
    );
    for name in &designators {
        println!("{:14}designator: {name}", "");
    }
    json!({
        "name": d.config.name, "kind": kind, "peripheral_device_type": pdt, "vendor": vendor,
        "product": product, "path": d.config.path, "designators": designators,
        "block_size": block_size, "blocks": blocks, "allow": d.config.allow, "state": "ready",
    })
}

/// The listing of a device that could not be opened, from its configuration.
fn config_row(c: &DeviceConfig, why: &str) -> serde_json::Value {
    let kind = match c.kind {
        DeviceKind::Disk => "disk",
        DeviceKind::Tape => "tape",
        DeviceKind::Sg => "sg",
        DeviceKind::Changer => "mediumx",
    };
    // Configured or derived when the inventory was read (an sg device's come from VPD 83h).
    let designators: Vec<String> = c.designators.iter().map(ToString::to_string).collect();
    println!(
        "{:12} {:5} {:25} {}  ({why})",
        c.name,
        kind,
        "",
        c.path.display()
    );
    for name in &designators {
        println!("{:14}designator: {name}", "");
    }
    json!({
        "name": c.name, "kind": kind, "path": c.path, "designators": designators,
        "allow": c.allow, "state": why,
    })
}

fn build(cscds: Vec<CscdDescriptor>, segments: Vec<SegmentDescriptor>) -> ParameterList {
    ParameterList {
        list_identifier: 0,
        sequential_striped: false,
        list_id_usage: ListIdUsage::NoListId,
        priority: 1,
        cscds,
        segments,
        inline_data: Vec::new(),
    }
}

fn device<'a>(
    inventory: &'a Inventory,
    name: &str,
    kind: DeviceKind,
) -> Result<&'a InventoryDevice> {
    let d = inventory
        .by_name(name)
        .with_context(|| format!("no device {name:?} in the inventory"))?;
    if !d.config.allows(crate::device::access::LOCAL) {
        bail!(
            "device {name:?}: its allow list does not name \"{}\", the local command line",
            crate::device::access::LOCAL
        );
    }
    let want = match kind {
        DeviceKind::Disk => 0x00,
        _ => 0x01,
    };
    let mut inquiry = [0u8; 36];
    let c = d.device.execute(
        &[0x12, 0, 0, 0, 36, 0],
        DataDirection::FromDevice(&mut inquiry),
    )?;
    if !c.is_good() || inquiry[0] & 0x1f != want {
        bail!(
            "device {name:?} is not a {}",
            if want == 0 { "disk" } else { "tape" }
        );
    }
    Ok(d)
}

/// NAME[:LBA[+BLOCKS]] of the inventory -> the disk end.
fn local_disk(inventory: &Inventory, spec: &str) -> Result<DiskEnd> {
    let (name, range) = spec
        .split_once(':')
        .map_or((spec, None), |(n, r)| (n, Some(r)));
    let d = device(inventory, name, DeviceKind::Disk)?;
    let (block_length, capacity) = match d.device.block_backend() {
        Some(b) => (b.block_size, b.blocks),
        None => {
            let mut data = [0u8; 32];
            let c = d.device.execute(
                &crate::scsi::sbc::READ_CAPACITY_16_CDB,
                DataDirection::FromDevice(&mut data),
            )?;
            let capacity = crate::scsi::sbc::decode_read_capacity_16_data(&data);
            let Some((blocks, block_length)) = capacity.filter(|_| c.is_good()) else {
                bail!("device {name:?}: READ CAPACITY failed");
            };
            (block_length, blocks)
        }
    };
    let (lba, blocks) = disk_range(spec, range, Some(capacity))?;
    Ok(DiskEnd {
        identifier: identification(d)?,
        lba,
        blocks,
        block_length,
    })
}

/// The LBA[+BLOCKS] part of a disk argument against the disk's capacity (None: unknown, so
/// BLOCKS is required) -> (first LBA, blocks).
pub(super) fn disk_range(
    spec: &str,
    range: Option<&str>,
    capacity: Option<u64>,
) -> Result<(u64, u64)> {
    let (lba, blocks) = match (range, capacity) {
        (None, Some(capacity)) => (0, capacity),
        (Some(r), _) => {
            let (l, b) = r.split_once('+').map_or((r, None), |(l, b)| (l, Some(b)));
            let lba = parse_size(l).map_err(|e| anyhow::anyhow!("{spec}: LBA: {e}"))?;
            let blocks = match (b, capacity) {
                (Some(b), _) => {
                    parse_size(b).map_err(|e| anyhow::anyhow!("{spec}: BLOCKS: {e}"))?
                }
                (None, Some(capacity)) => capacity.saturating_sub(lba),
                (None, None) => {
                    bail!("{spec}: BLOCKS: the disk's capacity is unknown, give LBA+BLOCKS")
                }
            };
            (lba, blocks)
        }
        (None, None) => bail!("{spec}: BLOCKS: the disk's capacity is unknown, give LBA+BLOCKS"),
    };
    if let Some(capacity) = capacity {
        if lba.checked_add(blocks).is_none_or(|end| end > capacity) {
            bail!("{spec}: LBA {lba} + {blocks} blocks is past the end of the disk ({capacity} blocks)");
        }
    }
    if blocks == 0 {
        bail!("{spec}: nothing to copy");
    }
    Ok((lba, blocks))
}

/// An inventory tape -> the tape end, in the mode the drive is in (MODE SENSE block
/// descriptor).
fn local_tape(inventory: &Inventory, name: &str) -> Result<TapeEnd> {
    let d = device(inventory, name, DeviceKind::Tape)?;
    let mut mode = [0u8; 12];
    let c = d.device.execute(
        &[0x1a, 0, 0, 0, 12, 0],
        DataDirection::FromDevice(&mut mode),
    )?;
    let block_length = if c.is_good() && mode[3] >= 8 {
        u32::from_be_bytes([0, mode[9], mode[10], mode[11]])
    } else {
        0
    };
    Ok(TapeEnd {
        identifier: identification(d)?,
        fixed: block_length != 0,
        block_length,
    })
}

fn identification(d: &InventoryDevice) -> Result<CscdIdentifier> {
    let designator = d
        .designators
        .iter()
        .filter(|x| x.value.len() <= 20 && x.designator_type <= 3)
        .max_by_key(|x| x.designator_type)
        .with_context(|| {
            format!(
                "device {:?} has no designator an E4h CSCD can carry",
                d.config.name
            )
        })?;
    Ok(CscdIdentifier::Identification {
        designator: designator.clone(),
    })
}

/// Splits `blocks` blocks from `lba` into segments of whole records of `transfer_length`
/// bytes, each at most 65535 blocks, and a last segment whose single record takes the
/// remainder: no record is padded and no leftover data is carried.
fn records(
    lba: u64,
    blocks: u64,
    block_length: u32,
    transfer_length: u64,
    (fixed, tape_block): (bool, u32),
) -> Result<Vec<(u64, u16, u32)>> {
    let bl = u64::from(block_length);
    if transfer_length == 0 || !transfer_length.is_multiple_of(bl) {
        bail!("--transfer-length {transfer_length} must be a nonzero multiple of the disk block length {block_length}");
    }
    if transfer_length > 0x00ff_ffff && !fixed {
        bail!("--transfer-length {transfer_length} is more than a variable-mode record can hold (16 MiB - 1)");
    }
    let stl = |bytes: u64| -> Result<u32> {
        if fixed {
            if !bytes.is_multiple_of(u64::from(tape_block)) {
                bail!("the last {bytes} bytes are not a whole number of the tape's {tape_block}-byte blocks");
            }
            Ok((bytes / u64::from(tape_block)) as u32)
        } else {
            Ok(bytes as u32)
        }
    };
    let per_record = transfer_length / bl;
    let records_per_segment = (65535 / per_record).max(1);
    let mut out = Vec::new();
    let (mut at, mut left) = (lba, blocks);
    while left >= per_record {
        let n = (left / per_record).min(records_per_segment) * per_record;
        out.push((at, n as u16, stl(transfer_length)?));
        at += n;
        left -= n;
    }
    if left > 0 {
        out.push((at, left as u16, stl(left * bl)?));
    }
    Ok(out)
}

/// Bytes a list will move, for the progress bar (block-counted and byte-counted segments).
fn total_bytes(list: &ParameterList) -> u64 {
    list.bytes_to_move()
}

/// The progress bar of a copy of `total` bytes: only on a terminal, and not with --quiet.
pub(crate) fn progress_bar(common: &Common, total: u64) -> Option<indicatif::ProgressBar> {
    (!common.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(total.max(1));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    })
}

fn execute(
    common: &Common,
    manager: &CopyManager,
    list: &ParameterList,
    total: u64,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Result<u8> {
    let progress = Arc::new(Progress::default());
    let abort = Abort::new();
    let started = Instant::now();
    let done = super::progress::Done::default();
    let result = std::thread::scope(|scope| {
        scope.spawn(|| super::progress::watch(common, total, &progress.bytes, &done));
        let result = manager.run_list(&Nexus::local(), list, None, &abort, progress.clone());
        done.set();
        result
    });
    let bytes = progress.bytes.load(Ordering::Relaxed);
    let segments = progress.segments_processed.load(Ordering::Relaxed);
    Ok(report(
        common,
        result.err(),
        bytes,
        started.elapsed(),
        segments,
        extra,
    ))
}

/// The ddpt-style summary, the sense if the copy failed, and the JSON line; returns the exit
/// status (the sense key, as sg3_utils does).
pub(super) fn report(
    common: &Common,
    sense: Option<Sense>,
    bytes: u64,
    elapsed: Duration,
    segments: u64,
    extra: serde_json::Map<String, serde_json::Value>,
) -> u8 {
    let secs = elapsed.as_secs_f64();
    println!("{segments} segments processed, {bytes} bytes copied");
    if secs > 0.0 {
        println!(
            "time to transfer data: {secs:.6} secs at {:.2} MB/sec",
            bytes as f64 / secs / 1e6
        );
    }
    if let Some(sense) = &sense {
        print!("{}", render_sense(sense));
    }
    if common.json {
        let field_pointer = sense.as_ref().and_then(|s| match s.sense_key_specific {
            Some(
                SenseKeySpecific::Field { pointer, .. } | SenseKeySpecific::Segment { pointer, .. },
            ) => Some(pointer),
            _ => None,
        });
        let mut line = json!({
            "status": if sense.is_some() { "check_condition" } else { "good" },
            "sense_key": sense.as_ref().map(|s| s.key.0),
            "asc": sense.as_ref().map(|s| s.asc.asc()),
            "ascq": sense.as_ref().map(|s| s.asc.ascq()),
            "field_pointer": field_pointer,
            "segment": sense.as_ref().and_then(|s| s.segment_number),
            "bytes": bytes,
            "seconds": secs,
        });
        if let Some(object) = line.as_object_mut() {
            object.extend(extra);
        }
        println!("{line}");
    }
    sense.map_or(0, |s| s.key.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_split_without_padding() {
        // 2050 blocks of 512 in 64 KiB records: 16 records (2048 blocks) + one of 1 KiB.
        let r = records(10, 2050, 512, 65536, (false, 0)).unwrap();
        assert_eq!(r, vec![(10, 2048, 65536), (2058, 2, 1024)]);
        // Segments hold at most 65535 blocks, in whole records.
        let r = records(0, 200_000, 512, 65536, (false, 0)).unwrap();
        assert!(r.iter().all(|&(_, b, _)| b % 128 == 0 || b < 128));
        assert_eq!(
            r.iter().map(|&(_, b, _)| u64::from(b)).sum::<u64>(),
            200_000
        );
        // Fixed mode: the transfer length counts tape blocks.
        let r = records(0, 16, 512, 4096, (true, 512)).unwrap();
        assert_eq!(r, vec![(0, 16, 8)]);
        assert!(records(0, 16, 512, 1000, (false, 0)).is_err());
    }
}
