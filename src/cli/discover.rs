//! `xcopy discover`: the SAN devices this host sees through SCSI generic nodes (/dev/sg*),
//! with what a CSCD names them by — what NetBackup's `bptpcinfo` did for its 3pc.conf.
//!
//! Each node is asked INQUIRY, VPD 80h (unit serial number) and 83h (device identification),
//! and, by its type, READ CAPACITY(16) (disks) or MODE SENSE(6)'s block descriptor (tapes).
//! The listing is printed; with `-d INV.toml` it is merged into that inventory: entries are
//! kept as written (names, comments, order), nodes the inventory does not name yet are
//! appended as `kind = "sg"` devices, and `sg` entries whose node no longer answers are
//! reported as vanished. `--write` replaces the file (atomically); without it the merged
//! inventory goes to standard output.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};

use crate::device::inventory::{DeviceKind, InventoryConfig};
use crate::device::sg::SgDevice;
use crate::scsi::codes::PeripheralDeviceType;
use crate::scsi::designator::{association, Designator};
use crate::scsi::inquiry::{page, split_vpd_page};
use crate::scsi::sbc::{decode_read_capacity_16_data, READ_CAPACITY_16_CDB};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  xcopy discover                           list every SCSI device behind /dev/sg*
  xcopy discover -d san.toml               print san.toml with the new devices appended
  xcopy discover -d san.toml --write       the same, written back to san.toml
  xcopy discover --json | jq '.devices[]'  one JSON object per device")]
pub struct DiscoverArgs {
    /// Merge into this inventory (names and entries kept, new devices appended).
    #[arg(short = 'd', long, value_name = "INV.toml")]
    pub devices: Option<PathBuf>,
    /// Write the merged inventory back to INV.toml instead of printing it.
    #[arg(short = 'w', long, requires = "devices")]
    pub write: bool,
    /// Where the sg nodes are (default /dev).
    #[arg(long, value_name = "DIR", default_value = "/dev")]
    pub dev_dir: PathBuf,
    /// Command timeout for each device, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 20_000)]
    pub timeout: u32,
    /// Print one JSON object as the last line of standard output.
    #[arg(short = 'j', long)]
    pub json: bool,
}

/// What one sg node told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub device_type: PeripheralDeviceType,
    pub vendor: String,
    pub product: String,
    pub serial: String,
    /// Logical-unit designators from VPD 83h (what an E4h CSCD names).
    pub designators: Vec<String>,
    /// Disks: (blocks, block length); tapes: the block length (0 = variable).
    pub capacity: Option<(u64, u32)>,
}

impl Found {
    fn kind_word(&self) -> &'static str {
        match self.device_type {
            PeripheralDeviceType::DIRECT_ACCESS => "disk",
            PeripheralDeviceType::SEQUENTIAL_ACCESS => "tape",
            PeripheralDeviceType::MEDIUM_CHANGER => "changer",
            _ => "other",
        }
    }

    fn json(&self) -> Value {
        json!({
            "path": self.path.display().to_string(),
            "peripheral_device_type": self.device_type.0,
            "type": self.kind_word(),
            "vendor": self.vendor,
            "product": self.product,
            "serial": self.serial,
            "designators": self.designators,
            "blocks": self.capacity.map(|c| c.0),
            "block_length": self.capacity.map(|c| c.1),
        })
    }
}

/// `verbose`: the global -v (with it, why a node was skipped).
pub fn discover(args: &DiscoverArgs, verbose: u8) -> Result<u8> {
    let found = scan(&args.dev_dir, args.timeout, verbose)?;
    if !args.json || args.devices.is_none() {
        for f in &found {
            eprintln!("{}", listing_line(f));
        }
        if found.is_empty() {
            eprintln!(
                "no SCSI device answers behind {}/sg*",
                args.dev_dir.display()
            );
        }
    }
    let mut report = json!({
        "status": "good",
        "devices": found.iter().map(Found::json).collect::<Vec<_>>(),
    });
    if let Some(path) = &args.devices {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let merged = merge(&text, path, &found)?;
        for name in &merged.vanished {
            eprintln!("vanished: {name} (its node no longer answers; left in the inventory)");
        }
        for name in &merged.added {
            eprintln!("added: {name}");
        }
        if args.write {
            write_atomically(path, &merged.text)?;
        } else if !args.json {
            print!("{}", merged.text);
        }
        report["added"] = json!(merged.added);
        report["vanished"] = json!(merged.vanished);
    }
    if args.json {
        println!("{report}");
    }
    Ok(0)
}

/// One line per device, like `lsscsi -g` with the designator.
fn listing_line(f: &Found) -> String {
    let size = match (f.device_type, f.capacity) {
        (PeripheralDeviceType::DIRECT_ACCESS, Some((blocks, len))) => {
            format!("{} x {len} B", blocks)
        }
        (PeripheralDeviceType::SEQUENTIAL_ACCESS, Some((_, 0))) => "variable blocks".into(),
        (PeripheralDeviceType::SEQUENTIAL_ACCESS, Some((_, len))) => format!("{len} B blocks"),
        _ => String::new(),
    };
    format!(
        "{:<10} {:<7} {:<8} {:<16} {:<20} {:<36} {size}",
        f.path.display(),
        f.kind_word(),
        f.vendor,
        f.product,
        f.serial,
        f.designators.first().map_or("-", String::as_str),
    )
}

/// The sg nodes in `dir` in numeric order (sg2 before sg10).
fn sg_nodes(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut nodes: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix("sg")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    nodes.sort();
    Ok(nodes.into_iter().map(|(_, p)| p).collect())
}

/// Every sg node in `dir` that answers INQUIRY.
pub fn scan(dir: &Path, timeout_ms: u32, verbose: u8) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    for node in sg_nodes(dir)? {
        match SgDevice::open("discover", &node, timeout_ms) {
            Ok(sg) => out.push(describe(&sg)),
            Err(e) if verbose > 0 => eprintln!("{}: skipped: {e}", node.display()),
            Err(_) => {}
        }
    }
    Ok(out)
}

fn describe(sg: &SgDevice) -> Found {
    let inq = sg.inquiry();
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    let device_type = inq.peripheral_device_type;
    let designators = sg
        .designators()
        .iter()
        .filter(|d| d.association == association::LOGICAL_UNIT)
        .map(Designator::to_string)
        .collect();
    let capacity = match device_type {
        PeripheralDeviceType::DIRECT_ACCESS => read_capacity(sg),
        PeripheralDeviceType::SEQUENTIAL_ACCESS => tape_block_length(sg).map(|l| (0, l)),
        _ => None,
    };
    Found {
        path: sg.path().to_path_buf(),
        device_type,
        vendor: text(&inq.vendor),
        product: text(&inq.product),
        serial: serial(sg).unwrap_or_default(),
        designators,
        capacity,
    }
}

/// `len` bytes of data in for `cdb`, or None on any error or CHECK CONDITION.
fn data_in(sg: &SgDevice, cdb: &[u8], len: usize) -> Option<Vec<u8>> {
    let (data, c) = sg.data_in(cdb, len).ok()?;
    c.is_good().then_some(data)
}

/// VPD 80h: the unit serial number.
fn serial(sg: &SgDevice) -> Option<String> {
    let vpd = data_in(sg, &[0x12, 1, page::UNIT_SERIAL_NUMBER, 0, 252, 0], 252)?;
    let (_, body) = split_vpd_page(&vpd).ok()?;
    Some(String::from_utf8_lossy(body).trim().to_string())
}

/// READ CAPACITY(16): (blocks, block length).
fn read_capacity(sg: &SgDevice) -> Option<(u64, u32)> {
    decode_read_capacity_16_data(&data_in(sg, &READ_CAPACITY_16_CDB, 32)?)
}

/// MODE SENSE(6)'s block descriptor: the tape's block length (0 = variable).
fn tape_block_length(sg: &SgDevice) -> Option<u32> {
    let d = data_in(sg, &[0x1a, 0, 0x3f, 0, 255, 0], 255)?;
    if *d.get(3)? < 8 {
        return None;
    }
    let b = d.get(9..12)?;
    Some(u32::from_be_bytes([0, b[0], b[1], b[2]]))
}

/// An inventory with the discovered devices merged in.
#[derive(Debug, PartialEq, Eq)]
pub struct Merged {
    pub text: String,
    pub added: Vec<String>,
    pub vanished: Vec<String>,
}

/// Merges `found` into the inventory `text` (read from `path`): entries kept as written;
/// a node no `sg` entry names is appended; `sg` entries whose node is not among `found`
/// are reported as vanished.
pub fn merge(text: &str, path: &Path, found: &[Found]) -> Result<Merged> {
    let base = path.parent().unwrap_or(Path::new("."));
    let config = InventoryConfig::parse_with(text, base, &crate::objstore::store_kinds())
        .with_context(|| format!("reading {}", path.display()))?;
    let mut names: BTreeSet<String> = config.devices.iter().map(|d| d.name.clone()).collect();
    names.extend(config.libraries.iter().map(|l| l.name.clone()));
    let sg_paths: Vec<(&str, &Path)> = config
        .devices
        .iter()
        .filter(|d| d.kind == DeviceKind::Sg)
        .map(|d| (d.name.as_str(), d.path.as_path()))
        .collect();
    let vanished = sg_paths
        .iter()
        .filter(|(_, p)| !found.iter().any(|f| f.path == *p))
        .map(|(n, _)| n.to_string())
        .collect();
    let mut out = text.to_string();
    let mut added = Vec::new();
    for f in found {
        if sg_paths.iter().any(|(_, p)| *p == f.path) {
            continue;
        }
        let name = unique_name(&names, f);
        names.insert(name.clone());
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&entry(&name, f));
        added.push(name);
    }
    Ok(Merged {
        text: out,
        added,
        vanished,
    })
}

/// `disk0`, `tape1`, `changer0`…: the first free name of the device's kind.
fn unique_name(taken: &BTreeSet<String>, f: &Found) -> String {
    let word = match f.kind_word() {
        "other" => "sg",
        w => w,
    };
    (0..)
        .map(|n| format!("{word}{n}"))
        .find(|n| !taken.contains(n))
        .unwrap_or_default()
}

/// The `[[device]]` entry of a discovered device, with what it is in a comment.
fn entry(name: &str, f: &Found) -> String {
    let mut s = format!(
        "\n# {} {} {}, serial {:?}",
        f.kind_word(),
        f.vendor,
        f.product,
        f.serial
    );
    if let Some(d) = f.designators.first() {
        s.push_str(&format!(", {d}"));
    }
    if let (PeripheralDeviceType::DIRECT_ACCESS, Some((blocks, len))) = (f.device_type, f.capacity)
    {
        s.push_str(&format!(", {blocks} blocks of {len} bytes"));
    }
    s.push_str(&format!(
        "\n[[device]]\nname = \"{name}\"\nkind = \"sg\"\npath = \"{}\"\n",
        f.path.display()
    ));
    s
}

/// Replaces `path` with `text` through a temporary file beside it (same permissions),
/// synced, then renamed over it.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".discover.tmp");
    let tmp = path.with_file_name(tmp_name);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.set_permissions(std::fs::metadata(path)?.permissions())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        bail!("replacing {}: {e}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(path: &str, serial: &str) -> Found {
        Found {
            path: PathBuf::from(path),
            device_type: PeripheralDeviceType::DIRECT_ACCESS,
            vendor: "Linux".into(),
            product: "scsi_debug".into(),
            serial: serial.into(),
            designators: vec!["naa.3333333000000001".into()],
            capacity: Some((131072, 512)),
        }
    }

    #[test]
    fn merge_keeps_entries_appends_new_nodes_and_reports_vanished_ones() {
        let text = "# the SAN\n[[device]]\nname = \"disk0\"\nkind = \"sg\"\npath = \"/dev/sg1\"\n\n[[device]]\nname = \"old\"\nkind = \"sg\"\npath = \"/dev/sg9\"\n";
        let mut tape = disk("/dev/sg4", "T1");
        tape.device_type = PeripheralDeviceType::SEQUENTIAL_ACCESS;
        tape.capacity = Some((0, 0));
        let found = [disk("/dev/sg1", "A"), disk("/dev/sg2", "B"), tape];
        let m = merge(text, Path::new("/etc/xcopyd/san.toml"), &found).unwrap();
        assert_eq!(m.added, ["disk1", "tape0"]);
        assert_eq!(m.vanished, ["old"]);
        assert!(
            m.text.starts_with(text),
            "the inventory as written comes first"
        );
        assert_eq!(
            &m.text[text.len()..],
            "\n# disk Linux scsi_debug, serial \"B\", naa.3333333000000001, 131072 blocks of 512 bytes\n\
             [[device]]\nname = \"disk1\"\nkind = \"sg\"\npath = \"/dev/sg2\"\n\
             \n# tape Linux scsi_debug, serial \"T1\", naa.3333333000000001\n\
             [[device]]\nname = \"tape0\"\nkind = \"sg\"\npath = \"/dev/sg4\"\n"
        );
        // The result parses as an inventory, and merging again adds nothing.
        let again = merge(&m.text, Path::new("/etc/xcopyd/san.toml"), &found).unwrap();
        assert_eq!((again.added.len(), again.text), (0, m.text));
    }

    #[test]
    fn sg_nodes_in_numeric_order() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["sg10", "sg2", "sg0", "sgx", "sda"] {
            std::fs::write(dir.path().join(n), b"").unwrap();
        }
        let nodes = sg_nodes(dir.path()).unwrap();
        let names: Vec<_> = nodes
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["sg0", "sg2", "sg10"]);
    }

    #[test]
    fn nodes_that_are_not_scsi_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sg0"), b"").unwrap();
        assert_eq!(scan(dir.path(), 1000, 0).unwrap(), []);
    }
}
