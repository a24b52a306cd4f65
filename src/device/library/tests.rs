//! The library end to end: start-up placement, moves with their exact sense, restarts,
//! a process killed in the middle of moves, and the changer and drives behind the
//! dispatcher (unit attentions per nexus).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use super::drive::{DriveConfig, DriveState, LibraryDrive};
use super::elements::{ElementMap, MoveError};
use super::*;
use crate::command::{Abort, Nexus};
use crate::device::{DataDirection, ScsiDevice};
use crate::frontend::testing::RecordingCopyService;
use crate::frontend::Dispatcher;
use crate::scsi::Designator;
use crate::scsi::{smc, Asc, Sense, SenseKey, Status};

fn drives(n: usize) -> Vec<Arc<LibraryDrive>> {
    (0..n)
        .map(|i| {
            Arc::new(LibraryDrive::new(DriveConfig {
                name: format!("drive{i}"),
                generation: 9,
                block_size: 0,
                designators: vec![
                    Designator::parse_name(&format!("naa.5001405a1b2c3d2{i}")).unwrap()
                ],
                serial: String::new(),
            }))
        })
        .collect()
}

fn config(dir: &Path, slots: u16, import_export: u16) -> LibraryConfig {
    LibraryConfig {
        import_export,
        designators: vec![Designator::parse_name("naa.5001405a1b2c3d10").unwrap()],
        ..LibraryConfig::new(
            "vtl0",
            &["drive0", "drive1"],
            slots,
            &dir.join("media"),
            &dir.join("state"),
        )
    }
}

fn open(dir: &Path) -> (Library, Vec<String>) {
    Library::open(config(dir, 6, 2), drives(2)).unwrap()
}

fn cartridges(dir: &Path, barcodes: &[&str]) {
    std::fs::create_dir_all(dir.join("media")).unwrap();
    for b in barcodes {
        std::fs::write(dir.join("media").join(format!("{b}.tap")), b"").unwrap();
    }
}

fn sense_of(e: MoveError) -> (SenseKey, Asc) {
    let s = e.sense();
    (s.key, s.asc)
}

#[test]
fn start_up_places_unmapped_images_in_barcode_order() {
    let dir = tempfile::tempdir().unwrap();
    cartridges(dir.path(), &["XC0003L9", "XC0001L9", "XC0002L8"]);
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    // The saved map has XC0002L8 in the fourth slot and a cartridge whose image is gone.
    std::fs::write(
        dir.path().join("state/vtl0.elements"),
        "1003 XC0002L8 1000\n1001 GONE01L9\n",
    )
    .unwrap();
    let (lib, warnings) = open(dir.path());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let map = lib.map();
    let placed: Vec<(u16, &str)> = map
        .occupied()
        .map(|(a, c)| (a, c.barcode.as_str()))
        .collect();
    assert_eq!(
        placed,
        [
            (0x1000, "XC0001L9"),
            (0x1001, "XC0003L9"),
            (0x1003, "XC0002L8")
        ]
    );
    let saved = std::fs::read_to_string(dir.path().join("state/vtl0.elements")).unwrap();
    assert_eq!(ElementMap::decode(&saved, *map.layout()).0, map);
}

#[test]
fn moves_load_and_unload_drives_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    cartridges(dir.path(), &["XC0001L9", "XC0002L9"]);
    let (lib, _) = open(dir.path());
    let d0 = lib.drives()[0].clone();
    assert_eq!(d0.state(), DriveState::Empty);
    let seen = d0.unit_attentions().unwrap().latest();
    lib.move_medium(0, 0x1000, 0x100).unwrap();
    assert_eq!(
        d0.state(),
        DriveState::Full {
            barcode: "XC0001L9".into(),
            ready: true
        }
    );
    assert_eq!(
        d0.unit_attentions().unwrap().after(seen).map(|c| c.1),
        Some(Asc::NOT_READY_TO_READY_CHANGE)
    );
    // The errors libraries give.
    let e = |r: Result<(), MoveError>| sense_of(r.unwrap_err());
    assert_eq!(
        e(lib.move_medium(0, 0x1005, 0x101)),
        (SenseKey::ILLEGAL_REQUEST, Asc::MEDIUM_SOURCE_ELEMENT_EMPTY)
    );
    assert_eq!(
        e(lib.move_medium(0, 0x1001, 0x100)),
        (
            SenseKey::ILLEGAL_REQUEST,
            Asc::MEDIUM_DESTINATION_ELEMENT_FULL
        )
    );
    assert_eq!(
        e(lib.move_medium(0, 0x1001, 0x0200)),
        (SenseKey::ILLEGAL_REQUEST, Asc::INVALID_ELEMENT_ADDRESS)
    );
    // A drive whose removal is prevented keeps its cartridge: 05/53/02, nothing moves.
    d0.execute(&[0x1e, 0, 0, 0, 1, 0], DataDirection::None)
        .unwrap();
    assert_eq!(
        e(lib.move_medium(0, 0x100, 0x1005)),
        (SenseKey::ILLEGAL_REQUEST, Asc::MEDIUM_REMOVAL_PREVENTED)
    );
    assert_eq!(lib.locate("XC0001L9"), Some(0x100));
    d0.execute(&[0x1e, 0, 0, 0, 0, 0], DataDirection::None)
        .unwrap();
    // SSC UNLOAD: still in the drive, not ready, accessible to the robot.
    d0.execute(&[0x1b, 0, 0, 0, 0, 0], DataDirection::None)
        .unwrap();
    assert_eq!(
        d0.state(),
        DriveState::Full {
            barcode: "XC0001L9".into(),
            ready: false
        }
    );
    let dt = lib
        .elements()
        .into_iter()
        .find(|e| e.address == 0x100)
        .unwrap();
    assert!(dt.full && dt.access && dt.source == Some(0x1000));
    // Drive to drive, then back to a slot; the map on disk follows every move.
    lib.move_medium(1, 0x100, 0x101).unwrap();
    assert_eq!(d0.state(), DriveState::Empty);
    lib.move_medium(0, 0x1001, 0x100).unwrap();
    drop(lib);
    let (lib, warnings) = open(dir.path());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(lib.locate("XC0001L9"), Some(0x101));
    assert_eq!(lib.locate("XC0002L9"), Some(0x100));
    assert!(matches!(
        lib.drives()[1].state(),
        DriveState::Full { ready: true, .. }
    ));
    lib.move_medium(0, 0x101, 0x1000).unwrap();
    assert_eq!(lib.drives()[1].state(), DriveState::Empty);
    // Exchange a drive's cartridge with a slot's.
    lib.exchange_medium(0, 0x1000, 0x100, 0x1001).unwrap();
    assert_eq!(lib.locate("XC0001L9"), Some(0x100));
    assert_eq!(lib.locate("XC0002L9"), Some(0x1001));
}

#[test]
fn a_cartridge_in_a_drive_holds_its_image() {
    let dir = tempfile::tempdir().unwrap();
    cartridges(dir.path(), &["XC0001L9"]);
    let (lib, _) = open(dir.path());
    lib.move_medium(0, 0x1000, 0x100).unwrap();
    let image = dir.path().join("media/XC0001L9.tap");
    let busy =
        crate::device::lock::ImageLock::acquire(&image, crate::device::lock::LockMode::Exclusive);
    // Same process: the lock is shared, not refused; another process is refused (the
    // lock module's tests). The drive wrote through its own open image:
    drop(busy);
    let d0 = lib.drives()[0].clone();
    let c = d0
        .execute(&[0x0a, 0, 0, 0, 4, 0], DataDirection::ToDevice(b"abcd"))
        .unwrap();
    assert!(c.is_good());
    lib.move_medium(0, 0x100, 0x1000).unwrap();
    let bytes = std::fs::read(&image).unwrap();
    assert_eq!(bytes, [4, 0, 0, 0, b'a', b'b', b'c', b'd', 4, 0, 0, 0]);
}

/// A library opened in the process's rings (the inventory's) writes its cartridges
/// through them (the drive tests' LTFS test covers the partitions FORMAT MEDIUM makes).
#[test]
fn a_cartridge_s_appends_borrow_the_library_s_rings() {
    let dir = crate::device::tape::image::direct_tempdir();
    cartridges(dir.path(), &["XC0001L9"]);
    let rings = Arc::new(crate::buf::Rings::new(4).unwrap());
    let (lib, _) =
        Library::open_in(config(dir.path(), 6, 2), drives(2), Arc::clone(&rings)).unwrap();
    lib.move_medium(0, 0x1000, 0x100).unwrap();
    let d0 = lib.drives()[0].clone();
    let write = |d: &LibraryDrive| {
        let c = d.execute(
            &[0x0a, 0, 0, 0x10, 0, 0],
            DataDirection::ToDevice(&[9; 4096]),
        );
        assert!(c.unwrap().is_good());
        let c = d.execute(&[0x10, 0, 0, 0, 1, 0], DataDirection::None);
        assert!(c.unwrap().is_good());
    };
    write(&d0);
    assert_eq!(rings.idle_count(), 1, "partition 0 borrowed one of these");
    drop(lib);
}

#[test]
fn initialize_imports_new_images_and_forgets_vanished_ones() {
    let dir = tempfile::tempdir().unwrap();
    cartridges(dir.path(), &["XC0001L9"]);
    let (lib, _) = open(dir.path());
    let seen = lib.attention().latest();
    cartridges(dir.path(), &["NEW001L9"]);
    assert!(lib.initialize().unwrap().is_empty());
    assert_eq!(lib.locate("NEW001L9"), Some(0x10));
    let ie = lib
        .elements()
        .into_iter()
        .find(|e| e.address == 0x10)
        .unwrap();
    assert!(ie.full && ie.placed_by_operator && ie.export_enabled);
    assert_eq!(
        lib.attention().after(seen).map(|c| c.1),
        Some(Asc::IMPORT_OR_EXPORT_ELEMENT_ACCESSED)
    );
    // The robot stores it; an image gone from the media directory leaves its slot.
    lib.move_medium(0, 0x10, 0x1001).unwrap();
    std::fs::remove_file(dir.path().join("media/NEW001L9.tap")).unwrap();
    lib.initialize().unwrap();
    assert_eq!(lib.locate("NEW001L9"), None);
}

fn run(
    d: &Dispatcher,
    nexus: &Nexus,
    lun: u64,
    cdb: &[u8],
    len: usize,
) -> crate::command::CommandResult {
    d.execute(nexus, lun, cdb, &[], len, &Abort::new())
}

fn asc(r: &crate::command::CommandResult) -> (Status, Option<(SenseKey, Asc)>) {
    let s = (!r.sense.is_empty()).then(|| Sense::decode(&r.sense).unwrap());
    (r.status, s.map(|s| (s.key, s.asc)))
}

#[test]
fn changer_and_drives_behind_the_dispatcher() {
    let dir = tempfile::tempdir().unwrap();
    cartridges(dir.path(), &["XC0001L9"]);
    let (lib, _) = open(dir.path());
    let lib = Arc::new(lib);
    let drive = lib.drives()[0].clone();
    let luns: Vec<Arc<dyn ScsiDevice>> = vec![lib.clone(), drive];
    let d = Dispatcher::new(luns, RecordingCopyService::new());
    let a = Nexus {
        initiator: "iqn.a".into(),
        session: 1,
    };
    let b = Nexus {
        initiator: "iqn.b".into(),
        session: 2,
    };
    let ua = |asc| {
        (
            Status::CHECK_CONDITION,
            Some((SenseKey::UNIT_ATTENTION, asc)),
        )
    };
    for n in [&a, &b] {
        for lun in [0, 1] {
            assert_eq!(
                asc(&run(&d, n, lun, &[0; 6], 0)),
                ua(Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED)
            );
        }
    }
    // The empty drive: NOT READY, MEDIUM NOT PRESENT.
    assert_eq!(
        asc(&run(&d, &a, 1, &[0; 6], 0)),
        (
            Status::CHECK_CONDITION,
            Some((SenseKey::NOT_READY, Asc::MEDIUM_NOT_PRESENT))
        )
    );
    // INQUIRY: PDT 08h, RMB, SMC-3 claimed.
    let r = run(&d, &a, 0, &[0x12, 0, 0, 0, 96, 0], 96);
    assert_eq!(r.data_in[..2], [0x08, 0x80]);
    assert_eq!(&r.data_in[8..32], b"XCOPYD  VIRTUAL LIBRARY ");
    assert_eq!(r.data_in[62..64], [0x04, 0x80]);
    // mtx load 1 0: MOVE MEDIUM slot 1000h -> drive 0100h.
    let mv = smc::MoveMedium {
        transport: 0,
        source: 0x1000,
        destination: 0x100,
        invert: false,
    };
    assert_eq!(asc(&run(&d, &a, 0, &mv.encode(), 0)), (Status::GOOD, None));
    // Each nexus is told once that the drive became ready.
    for n in [&a, &b] {
        assert_eq!(
            asc(&run(&d, n, 1, &[0; 6], 0)),
            ua(Asc::NOT_READY_TO_READY_CHANGE)
        );
        assert_eq!(asc(&run(&d, n, 1, &[0; 6], 0)), (Status::GOOD, None));
    }
    // INQUIRY of the drive: an IBM LTO-9.
    let r = run(&d, &a, 1, &[0x12, 0, 0, 0, 36, 0], 36);
    assert_eq!(&r.data_in[8..32], b"IBM     ULT3580-TD9     ");
    // READ ELEMENT STATUS of the drive with DVCID: full, from 1000h, its NAA designator.
    let res = smc::ReadElementStatus {
        voltag: true,
        element_type: Some(smc::ElementType::DataTransfer),
        starting_address: 0x100,
        number_of_elements: 1,
        curdata: true,
        dvcid: true,
        allocation_length: 1024,
    };
    let r = run(&d, &b, 0, &res.encode(), 1024);
    let e = smc::decode_element_status_data(&r.data_in).unwrap();
    assert_eq!(e[0].volume_tag.as_deref(), Some("XC0001L9"));
    assert_eq!(
        (e[0].full, e[0].access, e[0].source),
        (true, false, Some(0x1000))
    );
    assert_eq!(
        e[0].identifier.as_ref().unwrap().to_string(),
        "naa.5001405a1b2c3d20"
    );
    // A new image and INITIALIZE ELEMENT STATUS: 28/01 for each nexus on the changer.
    cartridges(dir.path(), &["NEW001L9"]);
    assert_eq!(
        asc(&run(&d, &a, 0, &[0x07, 0, 0, 0, 0, 0], 0)),
        (Status::GOOD, None)
    );
    for n in [&a, &b] {
        assert_eq!(
            asc(&run(&d, n, 0, &[0; 6], 0)),
            ua(Asc::IMPORT_OR_EXPORT_ELEMENT_ACCESSED)
        );
    }
    // Errors as sense: destination full, invalid element (field pointer 6).
    let full = smc::MoveMedium {
        source: 0x10,
        destination: 0x100,
        ..mv
    };
    assert_eq!(
        asc(&run(&d, &a, 0, &full.encode(), 0)).1,
        Some((
            SenseKey::ILLEGAL_REQUEST,
            Asc::MEDIUM_DESTINATION_ELEMENT_FULL
        ))
    );
    let bad = smc::MoveMedium {
        source: 0x10,
        destination: 0x4000,
        ..mv
    };
    let r = run(&d, &a, 0, &bad.encode(), 0);
    let s = Sense::decode(&r.sense).unwrap();
    assert_eq!(
        (s.asc, s.field_pointer()),
        (Asc::INVALID_ELEMENT_ADDRESS, Some(6))
    );
    // PREVENT on the changer: an operator may not open the import/export element.
    assert_eq!(
        asc(&run(&d, &a, 0, &[0x1e, 0, 0, 0, 1, 0], 0)),
        (Status::GOOD, None)
    );
    assert_eq!(
        asc(&run(&d, &a, 0, &[0x1b, 0, 0, 0x10, 0, 0], 0)).1,
        Some((SenseKey::ILLEGAL_REQUEST, Asc::MEDIUM_REMOVAL_PREVENTED))
    );
    // The drive's REPORT SUPPORTED OPERATION CODES: LOCATE(16) with its timeouts (RCTD),
    // as LTFS asks.
    let r = run(
        &d,
        &a,
        1,
        &[0xa3, 0x0c, 0x81, 0x92, 0, 0, 0, 0, 0, 64, 0, 0],
        64,
    );
    assert_eq!(
        r.data_in[1..4],
        [0x83, 0, 16],
        "CTDP, supported, 16-byte CDB"
    );
    assert_eq!(r.data_in[4..6], [0x92, 0x3b]);
    assert_eq!(r.data_in[20..22], [0, 10], "command timeouts descriptor");
    // REPORT SUPPORTED OPERATION CODES lists MOVE MEDIUM.
    let r = run(
        &d,
        &a,
        0,
        &[0xa3, 0x0c, 1, 0xa5, 0, 0, 0, 0, 0, 64, 0, 0],
        64,
    );
    assert_eq!(r.data_in[1] & 0x07, 3, "supported");
}

/// The child [`killed_mid_move_leaves_each_cartridge_in_one_element`] kills (the test
/// re-run with its directory in the environment): moves cartridges around forever,
/// printing a line after each move.
fn mover_child(dir: &Path) {
    let (lib, _) = open(dir);
    let barcodes = ["XC0001L9", "XC0002L9", "XC0003L9"];
    let elements = [0x100, 0x1000, 0x101, 0x1001, 0x1002, 0x1003, 0x1004, 0x1005];
    for i in 0usize.. {
        // Each cartridge in turn goes to the next empty element after the one it is in:
        // slot to drive, drive to drive, drive to slot, slot to slot.
        let barcode = barcodes[i % barcodes.len()];
        let from = lib.locate(barcode).unwrap();
        let at = elements.iter().position(|&e| e == from).unwrap();
        let map = lib.map();
        let to = (1..elements.len())
            .map(|k| elements[(at + k) % elements.len()])
            .find(|&e| map.get(e).is_none())
            .unwrap();
        lib.move_medium(0, from, to).unwrap();
        println!("moved {i}");
    }
}

#[test]
fn killed_mid_move_leaves_each_cartridge_in_one_element() {
    if let Some(dir) = std::env::var_os("XCOPYD_TEST_MOVER_DIR") {
        return mover_child(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let barcodes = ["XC0001L9", "XC0002L9", "XC0003L9"];
    cartridges(dir.path(), &barcodes);
    drop(open(dir.path()));
    for round in 0..8 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "device::library::tests::killed_mid_move_leaves_each_cartridge_in_one_element",
                "--exact",
                "--nocapture",
            ])
            .env("XCOPYD_TEST_MOVER_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let wanted = 3 + round * 5;
        let mut moved = 0;
        for line in lines {
            if line.unwrap().starts_with("moved ") {
                moved += 1;
                if moved >= wanted {
                    break;
                }
            }
        }
        assert_eq!(moved, wanted, "the child stopped early");
        child.kill().unwrap();
        child.wait().unwrap();
        let text = std::fs::read_to_string(dir.path().join("state/vtl0.elements")).unwrap();
        let (map, warnings) = ElementMap::decode(&text, *open_layout());
        assert!(warnings.is_empty(), "round {round}: {warnings:?}\n{text}");
        for b in barcodes {
            assert_eq!(
                map.occupied().filter(|(_, c)| c.barcode == b).count(),
                1,
                "round {round}: {b}\n{text}"
            );
        }
        // The library opens again with all three where the map says.
        let (lib, warnings) = open(dir.path());
        assert!(warnings.is_empty(), "round {round}: {warnings:?}");
        assert_eq!(lib.map(), map);
    }
}

fn open_layout() -> &'static elements::Layout {
    &elements::Layout {
        slots: 6,
        import_export: 2,
        drives: 2,
    }
}

#[test]
fn a_library_without_import_export_slots_stores_new_images() {
    let dir = tempfile::tempdir().unwrap();
    cartridges(dir.path(), &["XC0001L9"]);
    let (lib, _) = Library::open(config(dir.path(), 4, 0), drives(1)).unwrap();
    let seen = lib.attention().latest();
    cartridges(dir.path(), &["NEW001L9"]);
    lib.initialize().unwrap();
    assert_eq!(lib.locate("NEW001L9"), Some(0x1001));
    assert_eq!(
        lib.attention().after(seen).map(|c| c.1),
        Some(Asc::NOT_READY_TO_READY_CHANGE)
    );
}
