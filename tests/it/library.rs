//! The tape library with the copy manager: an EXTENDED COPY naming a library drive by its
//! designator writes whatever cartridge the robot loaded, and an empty drive aborts the copy
//! with the drive's NOT READY forwarded. Cartridge images are read back with a SIMH parser
//! written here.

use crate::common::list::decoded_xcopy;
use std::path::Path;
use std::sync::Arc;

use xcopyd::command::{Abort, Nexus};
use xcopyd::copy::manager::CopyManager;
use xcopyd::copy::CopyService;
use xcopyd::device::inventory::{Inventory, InventoryConfig};
use xcopyd::scsi::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
use xcopyd::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
use xcopyd::scsi::{
    Asc, Designator, ForwardedSource, Limits, ListIdUsage, ParameterList, Sense, SenseKey, Status,
};

const CONFIG: &str = r#"
[[device]]
name = "disk0"
kind = "disk"
path = "disk0.img"
size = "1MiB"
designator = "naa.5001405a1b2c3d01"
[[device]]
name = "drive0"
kind = "tape"
designator = "naa.5001405a1b2c3d20"
[[device]]
name = "drive1"
kind = "tape"
designator = "naa.5001405a1b2c3d21"
[[library]]
name = "vtl0"
designator = "naa.5001405a1b2c3d10"
drives = ["drive0", "drive1"]
slots = 8
import_export = 1
media = "media"
"#;

fn open(dir: &Path) -> (Inventory, Vec<u8>) {
    let mut config = InventoryConfig::parse(CONFIG, dir).unwrap();
    config.libraries[0].state_dir = dir.join("state");
    std::fs::create_dir_all(dir.join("media")).unwrap();
    std::fs::write(dir.join("media/XC0001L9.tap"), b"").unwrap();
    let pattern: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i * 13 + i / 512) as u8)
        .collect();
    std::fs::write(dir.join("disk0.img"), &pattern).unwrap();
    (Inventory::open(&config).unwrap(), pattern)
}

fn cscd(designator: &str, parameters: DeviceParameters) -> CscdDescriptor {
    CscdDescriptor {
        nul: false,
        peripheral_device_type: match parameters {
            DeviceParameters::Block { .. } => 0,
            _ => 1,
        },
        relative_initiator_port: 0,
        identifier: CscdIdentifier::Identification {
            designator: Designator::parse_name(designator).unwrap(),
        },
        parameters,
    }
}

/// 256 KiB of disk0 from LBA 0 to the drive `drive`, in 64 KiB records, then a filemark.
fn backup(drive: &str) -> Vec<u8> {
    ParameterList {
        list_identifier: 1,
        sequential_striped: false,
        list_id_usage: ListIdUsage::Hold,
        priority: 1,
        cscds: vec![
            cscd(
                "naa.5001405a1b2c3d01",
                DeviceParameters::Block {
                    pad: false,
                    block_length: 512,
                },
            ),
            cscd(
                drive,
                DeviceParameters::Stream {
                    pad: false,
                    fixed: false,
                    block_length: 0,
                },
            ),
        ],
        segments: vec![
            SegmentDescriptor {
                cat: false,
                body: Segment::BlockToStream {
                    hold: false,
                    source: CscdId(0),
                    destination: CscdId(1),
                    stream_transfer_length: 65536,
                    blocks: 512,
                    lba: 0,
                },
            },
            SegmentDescriptor {
                cat: false,
                body: Segment::WriteFilemarks {
                    destination: CscdId(1),
                    immed: false,
                    count: 1,
                },
            },
        ],
        inline_data: Vec::new(),
    }
    .encode()
}

fn copy(manager: &CopyManager, list: &[u8]) -> (Status, Option<Sense>) {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x83;
    cdb[10..14].copy_from_slice(&(list.len() as u32).to_be_bytes());
    let r = manager.extended_copy(
        &Nexus::local(),
        None,
        &decoded_xcopy(&cdb),
        list,
        &Abort::new(),
    );
    (
        r.status,
        (!r.sense.is_empty()).then(|| Sense::decode(&r.sense).unwrap()),
    )
}

/// Records and filemarks parsed from SIMH bytes.
fn simh(bytes: &[u8]) -> Vec<Option<Vec<u8>>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            out.push(None);
            at += 4;
            continue;
        }
        out.push(Some(bytes[at + 4..at + 4 + len].to_vec()));
        let tail = at + 4 + len + len % 2;
        assert_eq!(bytes[tail..tail + 4], (len as u32).to_le_bytes());
        at = tail + 4;
    }
    assert_eq!(at, bytes.len());
    out
}

/// On a disk, and in memory, where the drive has the kernel copy the disk's pages into the
/// cartridge (`ScsiDevice::write_transfers_from_file`).
#[test]
fn extended_copy_writes_the_cartridge_the_robot_loaded() {
    let on_disk = tempfile::tempdir().unwrap();
    let in_memory = tempfile::tempdir_in("/dev/shm").expect("/dev/shm (tmpfs)");
    for dir in [on_disk, in_memory] {
        extended_copy_writes_the_cartridge_the_robot_loaded_in(dir.path());
    }
}

fn extended_copy_writes_the_cartridge_the_robot_loaded_in(dir: &Path) {
    let (inventory, pattern) = open(dir);
    let library = inventory.library("vtl0").unwrap().clone();
    let manager = CopyManager::new(Arc::new(inventory), Limits::default());
    // Nothing in drive1: COPY ABORTED, the drive's NOT READY forwarded as the destination's.
    let (status, sense) = copy(&manager, &backup("naa.5001405a1b2c3d21"));
    assert_eq!(status, Status::CHECK_CONDITION);
    let sense = sense.unwrap();
    assert_eq!(
        (sense.key, sense.segment_number),
        (SenseKey::COPY_ABORTED, Some(0))
    );
    let fwd = &sense.forwarded[0];
    assert_eq!(fwd.source, ForwardedSource::CopyDestination);
    assert_eq!(fwd.status, Status::CHECK_CONDITION);
    let drive_sense = Sense::decode(&fwd.sense).unwrap();
    assert_eq!(
        (drive_sense.key, drive_sense.asc),
        (SenseKey::NOT_READY, Asc::MEDIUM_NOT_PRESENT)
    );
    // The robot loads XC0001L9 into drive1; the same list now lands on the cartridge.
    library.move_medium(0, 0x1000, 0x101).unwrap();
    assert_eq!(
        copy(&manager, &backup("naa.5001405a1b2c3d21")),
        (Status::GOOD, None)
    );
    library.move_medium(0, 0x101, 0x1000).unwrap();
    let objects = simh(&std::fs::read(dir.join("media/XC0001L9.tap")).unwrap());
    assert_eq!(objects.len(), 5);
    for (i, record) in objects[..4].iter().enumerate() {
        assert_eq!(
            record.as_deref(),
            Some(&pattern[i * 65536..(i + 1) * 65536])
        );
    }
    assert_eq!(objects[4], None);
}

/// Runs the `xcopy` binary in `dir` with its state directory there.
fn xcopy(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_xcopy"))
        .args(args)
        .current_dir(dir)
        .env("XCOPYD_STATE_DIR", dir.join("state"))
        .output()
        .unwrap()
}

fn last_json(out: &std::process::Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or("")).unwrap()
}

#[test]
fn cli_creates_lists_backs_up_and_restores_cartridges_by_barcode() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let inv = format!(
        "{CONFIG}[[device]]\nname = \"disk1\"\nkind = \"disk\"\npath = \"disk1.img\"\nsize = \"1MiB\"\n"
    );
    std::fs::write(d.join("inv.toml"), inv).unwrap();
    let pattern: Vec<u8> = (0..1u32 << 20).map(|i| (i * 31 + i / 4096) as u8).collect();
    std::fs::write(d.join("disk0.img"), &pattern).unwrap();
    let out = xcopy(
        d,
        &["library", "-d", "inv.toml", "create", "XC0001", "XC0002L8"],
    );
    assert!(out.status.success(), "{out:?}");
    let out = xcopy(d, &["library", "-d", "inv.toml", "status", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("  Storage Changer vtl0:2 Drives, 9 Slots ( 1 Import/Export )\n"),
        "{text}"
    );
    assert!(
        text.contains("      Storage Element 1:Full :VolumeTag=XC0001L9\n"),
        "{text}"
    );
    assert!(
        text.contains("      Storage Element 9 IMPORT/EXPORT:Empty\n"),
        "{text}"
    );
    let status = last_json(&out);
    assert_eq!(status["slots"][1]["barcode"], "XC0002L8");
    assert_eq!(status["drives"][0]["designator"], "naa.5001405a1b2c3d20");
    // Backup to a cartridge by barcode: loaded into drive 0, written, put back in slot 1.
    let out = xcopy(
        d,
        &[
            "backup",
            "-d",
            "inv.toml",
            "--from",
            "disk0:0+256",
            "--to",
            "vtl0:XC0001L9",
            "-t",
            "64k",
            "--filemark",
            "-q",
            "--json",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(last_json(&out)["tape_file"], 0);
    let objects = simh(&std::fs::read(d.join("media/XC0001L9.tap")).unwrap());
    assert_eq!(objects.len(), 3);
    assert_eq!(objects[0].as_deref(), Some(&pattern[..65536]));
    assert_eq!(objects[1].as_deref(), Some(&pattern[65536..131072]));
    let out = xcopy(d, &["library", "-d", "inv.toml", "status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Data Transfer Element 0:Empty\n"), "{text}");
    assert!(
        text.contains("Storage Element 1:Full :VolumeTag=XC0001L9"),
        "{text}"
    );
    // Restore from it, file 0, onto disk1.
    let out = xcopy(
        d,
        &[
            "restore",
            "-d",
            "inv.toml",
            "--from",
            "vtl0:XC0001L9",
            "--file",
            "0",
            "--to",
            "disk1:0+256",
            "-t",
            "64k",
            "-q",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read(d.join("disk1.img")).unwrap()[..131072],
        pattern[..131072]
    );
    // mtx-style moves; an empty drive cannot be unloaded: exit status = sense key 5.
    let out = xcopy(d, &["library", "-d", "inv.toml", "load", "2", "1"]);
    assert!(out.status.success(), "{out:?}");
    let out = xcopy(d, &["library", "-d", "inv.toml", "unload", "--json"]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_eq!(
        (
            last_json(&out)["asc"].clone(),
            last_json(&out)["ascq"].clone()
        ),
        (0x3b.into(), 0x0e.into())
    );
    let out = xcopy(d, &["library", "-d", "inv.toml", "unload", "3", "1"]);
    assert!(out.status.success(), "{out:?}");
    // Export through the import/export slot, import back.
    std::fs::create_dir(d.join("out")).unwrap();
    let out = xcopy(
        d,
        &[
            "library", "-d", "inv.toml", "export", "XC0002L8", "--to", "out",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(d.join("out/XC0002L8.tap").exists() && !d.join("media/XC0002L8.tap").exists());
    let out = xcopy(
        d,
        &["library", "-d", "inv.toml", "import", "out/XC0002L8.tap"],
    );
    assert!(out.status.success(), "{out:?}");
    let out = xcopy(d, &["library", "-d", "inv.toml", "status", "--json"]);
    assert_eq!(last_json(&out)["slots"][1]["barcode"], "XC0002L8");
}

#[test]
fn cli_drives_a_running_xcopyd_library_over_iscsi() {
    use xcopyd::daemon::{Daemon, DaemonConfig};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("inv.toml"), CONFIG).unwrap();
    std::fs::create_dir_all(d.join("media")).unwrap();
    std::fs::write(d.join("media/XC0001L9.tap"), b"").unwrap();
    let pattern: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(d.join("disk0.img"), &pattern).unwrap();
    let text = format!(
        "[iscsi]\nlisten = \"127.0.0.1:0\"\n{CONFIG}[[lun]]\ndevice = \"vtl0\"\n[[lun]]\ndevice = \"drive0\"\n\
         [[lun]]\ndevice = \"drive1\"\n[[lun]]\ndevice = \"disk0\"\n"
    );
    let mut config = DaemonConfig::parse(&text, d).unwrap();
    config.inventory.libraries[0].state_dir = d.join("state");
    let daemon = Daemon::start(config).unwrap();
    let base = format!(
        "iscsi://{}/iqn.2026-11.org.xcopyd:mover",
        daemon.local_addr()
    );
    let changer = format!("{base}/0");
    // The running daemon holds the library: the local path is refused, naming it.
    let out = xcopy(d, &["library", "-d", "inv.toml", "status"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // Remotely: create (the file, then INITIALIZE ELEMENT STATUS and a move), status.
    let out = xcopy(
        d,
        &[
            "library", "-d", "inv.toml", "--target", &changer, "create", "XC0002",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let out = xcopy(d, &["library", "--target", &changer, "status", "--json"]);
    let status = last_json(&out);
    assert_eq!(status["slots"][0]["barcode"], "XC0001L9");
    assert_eq!(status["slots"][1]["barcode"], "XC0002L9");
    // A backup to lun:0:XC0001L9 through the disk's LUN as copy manager.
    let out = xcopy(
        d,
        &[
            "backup",
            "--target",
            &format!("{base}/3"),
            "--from",
            "lun:3:0+128",
            "--to",
            "lun:0:XC0001L9",
            "-t",
            "64k",
            "-q",
            "--json",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let objects = simh(&std::fs::read(d.join("media/XC0001L9.tap")).unwrap());
    assert_eq!(objects[0].as_deref(), Some(&pattern[..65536]));
    let out = xcopy(d, &["library", "--target", &changer, "load", "2", "1"]);
    assert!(out.status.success(), "{out:?}");
    let out = xcopy(d, &["library", "--target", &changer, "status", "--json"]);
    let status = last_json(&out);
    assert_eq!(status["drives"][1]["barcode"], "XC0002L9");
    assert_eq!(status["drives"][1]["source_slot"], 2);
    assert_eq!(
        status["slots"][0]["barcode"], "XC0001L9",
        "back in its slot"
    );
    daemon.shutdown(std::time::Duration::from_secs(5));
}
