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
use crate::command::{Abort, Nexus};
use crate::copy::limit::DeviceLimits;
use crate::copy::lists::{backup_list, identification, restore_list, tape_end, DiskEnd, TapeEnd};
use crate::copy::manager::CopyManager;
use crate::copy::run::Progress;
use crate::device::inventory::{DeviceKind, Inventory, InventoryConfig, InventoryDevice};
use crate::device::{DataDirection, ScsiDevice};
use crate::scsi::dump::render_sense;
use crate::scsi::parameter_list::Supported;
use crate::scsi::segment_descriptor::CscdId;
use crate::scsi::{Limits, ParameterList, Sense, SenseKeySpecific};

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
            crate::state::create_embedded_media(&dir)
                .with_context(|| format!("creating the embedded default in {}", dir.display()))?;
            InventoryConfig::parse(crate::state::EMBEDDED_DEFAULT, &dir)?
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
    let engines = crate::copy::engine::Engines::new(common.buffers)
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
        .with_copy_limit(common.limit)
        .with_engines(engines);
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
    tape_end(device(inventory, name, DeviceKind::Tape)?)
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
