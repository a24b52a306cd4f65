//! `xcopy run`, `xcopy backup`, `xcopy restore` and `xcopy devices`: the local copy manager,
//! the same one the daemon runs, over the devices of an inventory.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub use super::copy_args::{BackupArgs, Common, DevicesArgs, RestoreArgs, RunArgs};
use super::input::{parse_hex_text, read_input};
use super::report::{disk_range, print_start, report, start_json};
use super::tape_position::{
    backup_positioning, locate_backup, locate_file, restore_positioning, Reply, Source,
    TapeCommands,
};
use crate::buf::Rings;
use crate::command::{Abort, Nexus};
use crate::copy::limit::DeviceLimits;
use crate::copy::lists::{backup_list, identification, restore_list, tape_end, DiskEnd, TapeEnd};
use crate::copy::manager::CopyManager;
use crate::copy::run::Progress;
use crate::device::inventory::{DeviceKind, Inventory, InventoryConfig, InventoryDevice};
use crate::device::{DataDirection, ScsiDevice};
use crate::scsi::parameter_list::Supported;
use crate::scsi::segment_descriptor::CscdId;
use crate::scsi::{Limits, ParameterList, Sense};

/// `--limit` caps the local copy engine; a remote copy manager applies its own limits.
fn local_only(common: &Common) -> Result<()> {
    if common.limit.is_some() {
        bail!("--limit applies to local copies; the copy manager at --target applies its own ([daemon] copy_limit, device limit)");
    }
    Ok(())
}

/// The given inventory, or the embedded default's devices in the state directory (the
/// same disk0 and tape0 the daemon serves with no config; created on first use).
/// `only`: open just these devices (each `NAME` or `NAME:range`), so that a copy between two
/// devices is not refused for a third one another process holds; empty = every device.
fn open_inventory(given: Option<&PathBuf>, only: &[&str], rings: Arc<Rings>) -> Result<Inventory> {
    let mut config = match given {
        Some(path) => InventoryConfig::load_with(path, &crate::objstore::store_kinds())?,
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
    Ok(Inventory::open_in(&config, rings)?)
}

/// The opened device an inventory names (for the CLI's own commands to it).
fn device_named(inventory: &Inventory, name: &str) -> Result<Arc<dyn ScsiDevice>> {
    inventory
        .by_name(name)
        .map(|d| d.device.clone())
        .with_context(|| format!("no device {name:?} in the inventory"))
}

fn load(common: &Common, only: &[&str]) -> Result<(Arc<Inventory>, CopyManager)> {
    // One set of rings for the copy engine and the tape images it writes.
    let rings = Rings::new(common.buffers).map_err(|e| anyhow::anyhow!("--buffers: {e}"))?;
    let rings = Arc::new(rings);
    let engines = crate::copy::engine::Engines::with_rings(Arc::clone(&rings));
    let limits: Limits = match &common.limits {
        Some(path) => toml::from_str(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("{}: bad limits", path.display()))?,
        None => Limits::default(),
    };
    let inventory = Arc::new(open_inventory(common.devices.as_ref(), only, rings)?);
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

/// An inventory tape -> the tape end, in the mode the drive is in (MODE SENSE block
/// descriptor).
fn local_tape(inventory: &Inventory, name: &str) -> Result<TapeEnd> {
    tape_end(device(inventory, name, DeviceKind::Tape)?)
}

/// Bytes a list will move, for the progress bar (block-counted and byte-counted segments).
fn total_bytes(list: &ParameterList) -> u64 {
    list.bytes_to_move()
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
