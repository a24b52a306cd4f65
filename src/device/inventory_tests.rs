use super::*;
use crate::device::sg::DEFAULT_TIMEOUT_MS;
use crate::device::{Completion, DataDirection, DeviceError};

const DESIGN_EXAMPLE: &str = r#"
[[device]]
name = "disk0"
kind = "disk"                   # emulated SBC disk over a file or block device
path = "disk0.img"
block_size = 512
designator = "naa.5001405a1b2c3d01"   # what an E4h CSCD names (VPD 83h); also eui.…, t10.…
[[device]]
name = "tape0"
kind = "tape"                   # emulated SSC tape drive over a SIMH .tap image
path = "tape0.tap"
block_size = 0                  # the mode the drive starts in: 0 = variable, else fixed blocks
designator = "naa.5001405a1b2c3d02"
[[device]]
name = "lto"
kind = "sg"                     # a real device through SG_IO; designators read from VPD 83h
path = "/dev/sg3"
"#;

fn parse(text: &str) -> Result<InventoryConfig, InventoryError> {
    InventoryConfig::parse(text, Path::new("/etc/xcopyd"))
}

fn parse_err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

fn naa(s: &str) -> Designator {
    Designator::parse_name(s).unwrap()
}

#[test]
fn parses_the_design_md_example() {
    let inv = parse(DESIGN_EXAMPLE).unwrap();
    let [disk, tape, sg] = &inv.devices[..] else {
        panic!("{inv:?}")
    };
    assert_eq!(disk.kind, DeviceKind::Disk);
    assert_eq!(disk.path, Path::new("/etc/xcopyd/disk0.img"));
    assert_eq!(disk.block_size, 512);
    assert_eq!(disk.designators, [naa("naa.5001405a1b2c3d01")]);
    assert_eq!(tape.kind, DeviceKind::Tape);
    assert_eq!(
        tape.tape,
        TapeSettings {
            block_size: 0,
            capacity: None,
            early_warning: None
        }
    );
    assert_eq!(sg.path, Path::new("/dev/sg3"), "absolute paths stay");
    assert_eq!(sg.timeout_ms, DEFAULT_TIMEOUT_MS);
    assert!(sg.designators.is_empty());
}

#[test]
fn every_optional_key() {
    let inv = parse(
        r#"
[iscsi]
listen = "127.0.0.1:3260"
[[lun]]
device = "d"
[[device]]
name = "d"
kind = "disk"
path = "images/d.img"
block_size = 4096
designators = ["naa.6001405aaaaaaaaa0000000000000001", "t10.XCOPYD  d"]
fc_port_name = "0x500140512345678a"
fc_port_id = "0x010203"
lun = 3
sas_address = "50:01:40:51:23:45:67:8b"
allow = ["iqn.1998-01.com.vmware:esx1"]
read_only = true
removable = true
size = "4GiB"
serial = "SER1"
queue_depth = 2
[[device]]
name = "t"
kind = "tape"
path = "t.tap"
block_size = 65536
capacity = 1000000
early_warning = 900000
fc_port_name = 0x500140512345678c
[[device]]
name = "s"
kind = "sg"
path = "/dev/nst0"
timeout_ms = 5000
"#,
    )
    .unwrap();
    let d = &inv.devices[0];
    assert_eq!(d.path, Path::new("/etc/xcopyd/images/d.img"));
    assert_eq!(d.designators.len(), 2);
    assert_eq!(d.fc_port_name, Some(0x5001_4051_2345_678a));
    assert_eq!(d.fc_port_id, Some(0x010203));
    assert_eq!(d.lun, 3);
    assert_eq!(d.sas_address, Some(0x5001_4051_2345_678b));
    assert_eq!(d.allow, ["iqn.1998-01.com.vmware:esx1"]);
    assert!(d.read_only);
    assert!(d.removable);
    assert_eq!(d.size, Some(4 << 30));
    assert_eq!(d.serial.as_deref(), Some("SER1"));
    assert_eq!(d.queue_depth, Some(2));
    let t = &inv.devices[1];
    assert_eq!(t.queue_depth, None);
    assert!(!t.removable);
    assert_eq!(
        t.tape,
        TapeSettings {
            block_size: 65536,
            capacity: Some(1_000_000),
            early_warning: Some(900_000)
        }
    );
    assert_eq!(t.fc_port_name, Some(0x5001_4051_2345_678c));
    assert_eq!(inv.devices[2].timeout_ms, 5000);
}

#[test]
fn errors_name_the_device_and_the_field() {
    let base = "[[device]]\nname = \"d\"\nkind = \"disk\"\npath = \"d.img\"\n";
    for (extra, want) in [
        (
            "blok_size = 512",
            "device \"d\": field blok_size: unknown field",
        ),
        (
            "block_size = 1000",
            "device \"d\": field block_size: must be 512 or 4096, got 1000",
        ),
        (
            "block_size = \"512\"",
            "field block_size: expected an integer, got string",
        ),
        (
            "designator = \"naa.12\"",
            "device \"d\": field designator: designator \"naa.12\"",
        ),
        (
            "designator = \"naa.5001405a1b2c3d01\"\ndesignators = []",
            "not both",
        ),
        (
            "fc_port_name = \"0x1234\"",
            "field fc_port_name: \"0x1234\": expected 16 hex digits",
        ),
        (
            "fc_port_id = 16777216",
            "field fc_port_id: 0x1000000 is wider than 24 bits",
        ),
        ("lun = -1", "field lun: -1 is negative"),
        ("allow = \"iqn.x\"", "field allow: must be an array"),
        (
            "capacity = 5",
            "field capacity: does not apply to kind = \"disk\"",
        ),
        ("timeout_ms = 5", "field timeout_ms: does not apply"),
        (
            "queue_depth = 0",
            "device \"d\": field queue_depth: 0 is not 1..=512",
        ),
        ("queue_depth = 513", "field queue_depth: 513 is not 1..=512"),
        (
            "queue_depth = \"2\"",
            "field queue_depth: expected an integer",
        ),
        ("size = \"4 parsecs\"", "field size: \"4 parsecs\""),
    ] {
        let e = parse_err(&format!("{base}{extra}\n"));
        assert!(e.contains(want), "{extra}: {e}");
    }
    let e = parse_err("[[device]]\nkind = \"disk\"\npath = \"x\"\n");
    assert!(
        e.contains("device #1 (unnamed): field name: missing"),
        "{e}"
    );
    let e = parse_err("[[device]]\nname = \"x\"\nkind = \"floppy\"\npath = \"x\"\n");
    assert!(e.contains("field kind: \"floppy\" is not one of"), "{e}");
    let e = parse_err("[[device]]\nname = \"x\"\nkind = \"disk\"\n");
    assert!(e.contains("device \"x\": field path: missing"), "{e}");
    let e = parse_err(&format!("{base}{base}"));
    assert!(
        e.contains("field name: another device has the same name"),
        "{e}"
    );
    let e = parse_err("[[devices]]\nname = \"x\"\n");
    assert!(e.contains("[[device]]"), "{e}");
    let e = parse_err(
        "[[device]]\nname = \"t\"\nkind = \"tape\"\npath = \"t\"\ncapacity = 10\nearly_warning = 11\n",
    );
    assert!(
        e.contains("device \"t\": field early_warning: 11 is past the capacity 10"),
        "{e}"
    );
    let e = parse_err("[[device]]\nname = \"t\"\nkind = \"tape\"\npath = \"t\"\nqueue_depth = 2\n");
    assert!(
        e.contains("device \"t\": field queue_depth: does not apply to kind = \"tape\""),
        "{e}"
    );
    assert!(parse_err("[[device]\n").starts_with("inventory: "));
}

#[test]
fn derived_designators_are_stable_naa6_and_local() {
    let d = derived_designator(None, "disk0");
    assert_eq!(d.value.len(), 16);
    assert_eq!(d.value[0] >> 4, 6, "NAA 6");
    // COMPANY_ID 025843h occupies the 24 bits after the NAA nibble.
    let v = u128::from_be_bytes(d.value.clone().try_into().unwrap());
    assert_eq!((v >> 100) & 0xff_ffff, 0x02_5843);
    // Golden value (checked against an independent FNV-1a 128 in Python): must never
    // change across builds, initiators remember designators.
    assert_eq!(d.to_string(), "naa.6025843c36c0c7e885a88a2a501a8783");
    assert_eq!(derived_designator(None, "disk0"), d);
    assert_ne!(derived_designator(None, "disk1"), d);
    Designator::parse_name(&d.to_string()).unwrap();
    // With an installation's identity mixed in (same independent check).
    let id: [u8; 16] = std::array::from_fn(|i| i as u8);
    let d = derived_designator(Some(&id), "disk0");
    assert_eq!(d.to_string(), "naa.602584308c06848f35c43f4de510a063");
}

/// Two hosts whose configs both name a tape `t1` present two NAAs; one host keeps its own
/// across reads of its config; a designator configured is never derived (and needs no
/// state directory).
#[test]
fn derived_designators_are_unique_per_installation() {
    let dir = tempfile::tempdir().unwrap();
    let config = |state: &str| {
        format!(
            "[daemon]\nstate_dir = \"{state}\"\n[[device]]\nname = \"t1\"\nkind = \"tape\"\npath = \"t1.tap\"\n"
        )
    };
    let of = |text: &str| {
        let c = InventoryConfig::parse(text, dir.path()).unwrap();
        assert_eq!(c.devices[0].designators.len(), 1);
        c.devices[0].designators[0].clone()
    };
    let a = of(&config("a"));
    let b = of(&config("b"));
    assert_ne!(a, b, "two installations");
    assert_eq!(of(&config("a")), a, "one installation, read again");
    let id = crate::state::installation_id(&dir.path().join("a")).unwrap();
    assert_eq!(a, derived_designator(Some(&id), "t1"));
    assert_ne!(a, derived_designator(None, "t1"));

    // No state directory to keep the identity in: the device is named, with the remedy.
    std::fs::write(dir.path().join("file"), "").unwrap();
    let e = InventoryConfig::parse(&config("file/state"), dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("inventory: device \"t1\": field designator: none configured"),
        "{e}"
    );
    let pinned = config("file/state") + "designator = \"naa.5001405a1b2c3d07\"\n";
    assert_eq!(of(&pinned).to_string(), "naa.5001405a1b2c3d07");
}

struct Null(&'static str);

impl ScsiDevice for Null {
    fn execute(&self, _: &[u8], _: DataDirection<'_>) -> Result<Completion, DeviceError> {
        Ok(Completion::good(0))
    }
    fn name(&self) -> &str {
        self.0
    }
}

fn fake_inventory() -> Inventory {
    let mut a = DeviceConfig::new("a", DeviceKind::Disk, "/a");
    a.designators = vec![naa("naa.5001405a1b2c3d01")];
    a.allow = vec!["iqn.2026-01.org.example:backup".into()];
    a.fc_port_name = Some(0x5001_4050_0000_0001);
    a.fc_port_id = Some(0x01_0203);
    a.lun = 1;
    let mut b = DeviceConfig::new("b", DeviceKind::Disk, "/b");
    b.sas_address = Some(0x5000_c500_1234_5678);
    b.fc_port_name = Some(0x5001_4050_0000_0001);
    Inventory::from_devices(vec![(a, Arc::new(Null("a"))), (b, Arc::new(Null("b")))]).unwrap()
}

#[test]
fn lookups_resolve_only_listed_devices_and_honour_allow() {
    let inv = fake_inventory();
    let backup = "IQN.2026-01.org.example:BACKUP";
    let other = "iqn.2026-01.org.example:intruder";
    let mut d = naa("naa.5001405a1b2c3d01");
    // PIV and PROTOCOL IDENTIFIER are ignored.
    d.piv = true;
    d.protocol_identifier = 5;
    assert_eq!(inv.find_by_designator(&d, backup).unwrap().config.name, "a");
    assert_eq!(
        inv.find_by_designator(&d, other).unwrap_err(),
        LookupError::NotAllowed {
            device: "a".into(),
            initiator: other.into()
        }
    );
    // Association, type, code set and length all count.
    let mut port = d.clone();
    port.association = crate::scsi::designator::association::TARGET_PORT;
    assert_eq!(
        inv.find_by_designator(&port, backup).unwrap_err(),
        LookupError::NotFound
    );
    assert_eq!(
        inv.find_by_designator(&naa("naa.5001405a1b2c3d02"), backup)
            .unwrap_err(),
        LookupError::NotFound
    );
    // b has no designator configured: the derived one names it, for anyone.
    let derived = derived_designator(None, "b");
    assert_eq!(
        inv.find_by_designator(&derived, other).unwrap().config.name,
        "b"
    );
    // FC port name + LUN (a is LUN 1, b LUN 0 on the same port).
    let wwpn = 0x5001_4050_0000_0001;
    assert_eq!(
        inv.find_by_fc_port_name(wwpn, 1, backup)
            .unwrap()
            .config
            .name,
        "a"
    );
    assert_eq!(
        inv.find_by_fc_port_name(wwpn, 0, other)
            .unwrap()
            .config
            .name,
        "b"
    );
    assert!(matches!(
        inv.find_by_fc_port_name(wwpn, 1, other),
        Err(LookupError::NotAllowed { .. })
    ));
    assert_eq!(
        inv.find_by_fc_port_name(wwpn, 2, backup).unwrap_err(),
        LookupError::NotFound
    );
    assert_eq!(
        inv.find_by_fc_port_id(0xff01_0203, 1, backup)
            .unwrap()
            .config
            .name,
        "a"
    );
    assert_eq!(
        inv.find_by_fc_port_id(0x01_0204, 1, backup).unwrap_err(),
        LookupError::NotFound
    );
    assert_eq!(
        inv.find_by_sas_address(0x5000_c500_1234_5678, 0, "")
            .unwrap()
            .config
            .name,
        "b"
    );
    assert_eq!(
        inv.find_by_sas_address(0x5000_c500_1234_5678, 1, "")
            .unwrap_err(),
        LookupError::NotFound
    );
    assert_eq!(inv.by_name("b").unwrap().device.name(), "b");
}

#[test]
fn ambiguous_inventories_are_refused() {
    let mut a = DeviceConfig::new("a", DeviceKind::Disk, "/a");
    a.designators = vec![naa("naa.5001405a1b2c3d01")];
    let b = DeviceConfig {
        name: "b".into(),
        ..a.clone()
    };
    let e = Inventory::from_devices(vec![
        (a.clone(), Arc::new(Null("a"))),
        (b, Arc::new(Null("b"))),
    ])
    .unwrap_err();
    assert!(e.to_string().contains("names both \"a\" and \"b\""), "{e}");
    a.designators.clear();
    a.fc_port_id = Some(7);
    let c = DeviceConfig {
        name: "c".into(),
        ..a.clone()
    };
    let e = Inventory::from_devices(vec![(a, Arc::new(Null("a"))), (c, Arc::new(Null("c")))])
        .unwrap_err();
    assert!(e.to_string().contains("same port address and LUN"), "{e}");
}

#[test]
fn opens_disks_and_reports_the_tape_gap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inv.toml");
    std::fs::write(
        &path,
        "[daemon]\nstate_dir = \"state\"\n[[device]]\nname = \"d\"\nkind = \"disk\"\npath = \"d.img\"\nsize = \"1M\"\nblock_size = 4096\n",
    )
    .unwrap();
    let inv = Inventory::load(&path).unwrap();
    let d = inv.by_name("d").unwrap();
    let id = crate::state::installation_id(&dir.path().join("state")).unwrap();
    let derived = derived_designator(Some(&id), "d");
    assert_eq!(d.designators, std::slice::from_ref(&derived));
    assert_eq!(
        std::fs::metadata(dir.path().join("d.img")).unwrap().len(),
        1 << 20
    );
    let backend = d.device.block_backend().unwrap();
    assert_eq!((backend.block_size, backend.blocks), (4096, 256));
    // The VPD 83h the disk serves is what lookups match.
    let mut buf = [0u8; 64];
    d.device
        .execute(
            &[0x12, 1, 0x83, 0, 64, 0],
            DataDirection::FromDevice(&mut buf),
        )
        .unwrap();
    assert_eq!(buf[4..8], [0x01, 0x03, 0x00, 0x10]);
    assert_eq!(buf[8..24], derived.value[..]);

    let tape = DESIGN_EXAMPLE.split("[[device]]").nth(2).unwrap();
    let config = InventoryConfig::parse(&format!("[[device]]{tape}"), dir.path()).unwrap();
    let inventory = Inventory::open(&config).unwrap();
    let t = inventory.by_name("tape0").unwrap();
    // The tape answers as a sequential-access device with the configured designator.
    let mut buf = [0u8; 64];
    t.device
        .execute(&[0x12, 0, 0, 0, 36, 0], DataDirection::FromDevice(&mut buf))
        .unwrap();
    assert_eq!(buf[0] & 0x1f, 0x01);
    assert_eq!(t.designators[0].to_string(), "naa.5001405a1b2c3d02");
    assert!(dir.path().join("tape0.tap").exists());

    let config = parse("[[device]]\nname = \"s\"\nkind = \"sg\"\npath = \"/dev/null\"\n").unwrap();
    let e = Inventory::open(&config).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("inventory: device \"s\": /dev/null: does not accept SG_IO"),
        "{e}"
    );
    let missing = InventoryConfig::load(&dir.path().join("nope.toml")).unwrap_err();
    assert!(matches!(missing, InventoryError::Read { .. }));
}

#[test]
fn a_limit_is_a_rate_per_second_on_any_kind() {
    let c = parse(
        "[[device]]\nname = \"d\"\nkind = \"disk\"\npath = \"d\"\nlimit = \"200MiB\"\n\
         [[device]]\nname = \"t\"\nkind = \"tape\"\npath = \"t\"\nlimit = 1000000\n\
         [[device]]\nname = \"s\"\nkind = \"sg\"\npath = \"/dev/sg3\"\n",
    )
    .unwrap();
    let limits: Vec<_> = c.devices.iter().map(|d| d.limit).collect();
    assert_eq!(limits, [Some(200 << 20), Some(1_000_000), None]);
    let base = "[[device]]\nname = \"d\"\nkind = \"disk\"\npath = \"d\"\n";
    let e = parse_err(&format!("{base}limit = 0\n"));
    assert!(
        e.contains("device \"d\": field limit: must be at least 1"),
        "{e}"
    );
    let e = parse_err(&format!("{base}limit = \"fast\"\n"));
    assert!(e.contains("device \"d\": field limit: \"fast\""), "{e}");
}

#[test]
fn a_limit_change_keeps_the_device_open() {
    let dir = tempfile::tempdir().unwrap();
    let text = |limit: &str| {
        format!("[[device]]\nname = \"d\"\nkind = \"disk\"\npath = \"d.img\"\nsize = 4096\n{limit}")
    };
    let first = InventoryConfig::parse(&text(""), dir.path()).unwrap();
    let a = Inventory::open(&first).unwrap();
    let second = InventoryConfig::parse(&text("limit = \"1MiB\"\n"), dir.path()).unwrap();
    let b = Inventory::reopen(&second, &a).unwrap();
    let (x, y) = (
        &a.by_name("d").unwrap().device,
        &b.by_name("d").unwrap().device,
    );
    assert!(Arc::ptr_eq(x, y), "the same open device");
    assert_eq!(b.by_name("d").unwrap().config.limit, Some(1 << 20));
    let third = InventoryConfig::parse(&text("read_only = true\n"), dir.path()).unwrap();
    let c = Inventory::reopen(&third, &b).unwrap();
    assert!(!Arc::ptr_eq(y, &c.by_name("d").unwrap().device), "reopened");
}

/// The daemon opens its inventory in the process's rings: a tape's appends borrow from them
/// (the copy engines' own), and a reload's new tapes do too; a disk's bounce buffers come
/// from them.
#[test]
fn devices_borrow_the_inventory_s_rings_across_a_reload() {
    // Not tmpfs, where a tape image is written through the page cache, without a ring.
    let dir = crate::device::tape::image::direct_tempdir();
    let tape =
        |n: u8| format!("[[device]]\nname = \"t{n}\"\nkind = \"tape\"\npath = \"t{n}.tap\"\n");
    let rings = Arc::new(Rings::new(4).unwrap());
    let first = InventoryConfig::parse(&tape(0), dir.path()).unwrap();
    let inv = Inventory::open_in(&first, Arc::clone(&rings)).unwrap();
    let both = InventoryConfig::parse(&(tape(0) + &tape(1)), dir.path()).unwrap();
    let inv = Inventory::reopen(&both, &inv).unwrap();
    let mut held = Vec::new();
    for name in ["t0", "t1"] {
        assert_eq!(rings.idle_count(), 0);
        let t = inv.by_name(name).unwrap().device.clone();
        let write = t
            .execute(
                &[0x0a, 0, 0, 0x10, 0, 0],
                DataDirection::ToDevice(&[5; 4096]),
            )
            .unwrap();
        assert_eq!(write.status, crate::scsi::Status::GOOD, "{name}");
        // The drive writes its buffer out at the filemark, which also ends the appends.
        let filemark = t
            .execute(&[0x10, 0, 0, 0, 1, 0], DataDirection::None)
            .unwrap();
        assert_eq!(filemark.status, crate::scsi::Status::GOOD, "{name}");
        assert_eq!(
            rings.idle_count(),
            1,
            "{name} borrowed a ring of these and gave it back"
        );
        held.push(rings.take().unwrap());
    }
    // A disk read into a buffer O_DIRECT cannot take (one byte past an aligned start).
    let disk = "[[device]]\nname = \"d0\"\nkind = \"disk\"\npath = \"d0.img\"\nsize = 8192\n";
    let with_disk = InventoryConfig::parse(&(tape(0) + &tape(1) + disk), dir.path()).unwrap();
    let inv = Inventory::reopen(&with_disk, &inv).unwrap();
    let d = inv.by_name("d0").unwrap().device.clone();
    assert!(d.block_backend().unwrap().direct, "the image is O_DIRECT");
    let mut aligned = crate::buf::AlignedBuf::new(513);
    let read = d.execute(
        &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0],
        DataDirection::FromDevice(&mut aligned.as_mut_slice()[1..]),
    );
    assert_eq!(read.unwrap().status, crate::scsi::Status::GOOD);
    assert_eq!(
        rings.bounces_kept(),
        1,
        "the disk bounced through a buffer of these"
    );
}
