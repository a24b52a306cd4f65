//! `xcopy devices`: every inventory entry and what it answers.

use anyhow::Result;
use serde_json::json;

use super::copy::DevicesArgs;
use crate::device::inventory::{
    DeviceConfig, DeviceKind, Inventory, InventoryConfig, InventoryDevice,
};
use crate::device::DataDirection;

/// `xcopy devices`: every inventory entry and what it answers. Images are opened read-only
/// (a shared lock: nothing is created, repaired or written); an entry whose image does not
/// exist yet, or that another process holds, is listed from its configuration with that
/// state.
pub fn devices(args: &DevicesArgs) -> Result<u8> {
    let config = match &args.devices {
        Some(path) => InventoryConfig::load_with(path, &crate::objstore::store_kinds())?,
        None => InventoryConfig::parse(crate::state::EMBEDDED_DEFAULT, &crate::state::state_dir())?,
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
