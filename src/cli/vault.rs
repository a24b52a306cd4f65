//! `xcopy vault`: the cartridges of an object store library (`media = "s3://…"`), seen
//! from this gateway (`[object_store] gateway`): list the vault and every gateway's
//! cartridges, create blank ones, import from the vault (take the lease), export to it
//! (release the lease), and show where a cartridge's committed bytes are.
//!
//! A running xcopyd of the same gateway takes over a lease imported here at its next
//! INITIALIZE ELEMENT STATUS (`xcopy library inventory`); export only cartridges no drive
//! of it holds.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::device::inventory::InventoryConfig;
use crate::objstore::lease::now_ms;
use crate::objstore::{Gateway, GatewayConfig};

#[derive(Debug, Args)]
pub struct VaultArgs {
    #[command(subcommand)]
    pub action: VaultAction,
    /// The config holding [object_store] and the [[library]] with s3:// media.
    #[arg(short = 'd', long, value_name = "INV.toml", global = true)]
    pub devices: Option<PathBuf>,
    /// Which [[library]] of the config (default: the only one with s3:// media).
    #[arg(short = 'l', long, global = true)]
    pub library: Option<String>,
    /// Print one JSON object as the last line of standard output.
    #[arg(short = 'j', long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum VaultAction {
    /// Every cartridge: in the vault, or held by which gateway.
    List,
    /// Make blank cartridges, in the vault.
    Create { barcodes: Vec<String> },
    /// Take cartridges from the vault (or from a gateway whose lease expired).
    Import { barcodes: Vec<String> },
    /// Give cartridges this gateway holds back to the vault.
    Export { barcodes: Vec<String> },
    /// A cartridge's committed size, objects and pieces.
    Show { barcode: String },
}

fn gateway(args: &VaultArgs) -> Result<Gateway> {
    let devices = args
        .devices
        .as_ref()
        .context("give the config: -d INV.toml")?;
    let config = InventoryConfig::load_with(devices, &crate::objstore::store_kinds())?;
    let mut object = config
        .libraries
        .iter()
        .filter(|l| args.library.as_ref().is_none_or(|n| &l.name == n))
        .filter_map(|l| l.object.as_ref())
        .filter_map(|m| m.0.as_any().downcast_ref::<GatewayConfig>());
    let Some(g) = object.next() else {
        bail!("{}: no [[library]] with s3:// media", devices.display());
    };
    if object.next().is_some() {
        bail!("several libraries with s3:// media: name one with -l");
    }
    Gateway::new(g).context("object store")
}

pub fn vault(args: &VaultArgs) -> Result<u8> {
    let g = gateway(args)?;
    let mut out = json!({"status": "good", "gateway": g.name()});
    match &args.action {
        VaultAction::List => {
            let list = g.list()?;
            for c in &list {
                let owner = c.owner.as_deref().unwrap_or("vault");
                println!(
                    "{:<10} {:<12} {:>14} bytes {:>8} objects {:>4} pieces",
                    c.barcode,
                    owner,
                    c.committed_bytes,
                    c.objects,
                    c.pieces.len()
                );
            }
            out["cartridges"] = serde_json::to_value(&list)?;
        }
        VaultAction::Create { barcodes } => {
            for b in barcodes {
                g.create(b).with_context(|| format!("creating {b}"))?;
                println!("{b}: created in the vault");
            }
        }
        VaultAction::Import { barcodes } => {
            for b in barcodes {
                g.import(b).with_context(|| format!("importing {b}"))?;
                println!("{b}: held by {}", g.name());
            }
        }
        VaultAction::Export { barcodes } => {
            for b in barcodes {
                g.export(b).with_context(|| format!("exporting {b}"))?;
                println!("{b}: in the vault");
            }
        }
        VaultAction::Show { barcode } => {
            let c = g.info(barcode, now_ms())?;
            println!(
                "{}: {} bytes committed, {} objects ({} filemarks), owner {}",
                c.barcode,
                c.committed_bytes,
                c.objects,
                c.filemarks,
                c.owner.as_deref().unwrap_or("none (vault)")
            );
            for p in &c.pieces {
                println!("  {} bytes {}..{}", p.key, p.start, p.start + p.len);
            }
            out["cartridge"] = serde_json::to_value(&c)?;
        }
    }
    if args.json {
        println!("{out}");
    }
    Ok(0)
}
