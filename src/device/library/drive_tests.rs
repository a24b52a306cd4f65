//! A library drive on its own: empty, loaded with cartridges of several generations.

use super::*;
use crate::scsi::Status;

fn drive(generation: u8) -> LibraryDrive {
    LibraryDrive::new(DriveConfig {
        name: "drive0".into(),
        generation,
        block_size: 0,
        designators: vec![Designator::parse_name("naa.5001405a1b2c3d20").unwrap()],
        serial: "SN0001".into(),
    })
}

fn load(d: &LibraryDrive, dir: &std::path::Path, barcode: &str) {
    let path = dir.join(format!("{barcode}.tap"));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let mam = Mam::load(Mam::path_of(&path)).unwrap();
    let (config, access) = d.cartridge_config(barcode, mam.capacity());
    let (tape, _) = EmulatedTape::open("t", path, config).unwrap();
    d.insert(Loaded::new(barcode, tape, access, mam));
}

fn run(d: &LibraryDrive, cdb: &[u8], len: usize) -> (Completion, Vec<u8>) {
    let mut buf = vec![0u8; len];
    let c = if len == 0 {
        d.execute(cdb, DataDirection::None).unwrap()
    } else {
        d.execute(cdb, DataDirection::FromDevice(&mut buf)).unwrap()
    };
    let n = len - c.residual.min(len);
    buf.truncate(n);
    (c, buf)
}

fn sense(c: &Completion) -> (SenseKey, Asc) {
    assert_eq!(c.status, Status::CHECK_CONDITION);
    let s = c.decoded_sense().unwrap();
    (s.key, s.asc)
}

#[test]
fn empty_drive_answers_not_ready_medium_not_present() {
    let d = drive(9);
    let not_ready = (SenseKey::NOT_READY, Asc::MEDIUM_NOT_PRESENT);
    for cdb in [
        &[0x00, 0, 0, 0, 0, 0][..],
        &[0x01, 0, 0, 0, 0, 0],
        &[0x0a, 0, 0, 0, 4, 0],
        &[0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        &[0x1b, 0, 0, 0, 1, 0],
    ] {
        assert_eq!(sense(&run(&d, cdb, 0).0), not_ready, "{cdb:02x?}");
    }
    // REQUEST SENSE reports it as current sense; MODE SENSE, READ BLOCK LIMITS, INQUIRY
    // and PREVENT ALLOW answer without a medium.
    let (c, data) = run(&d, &[0x03, 0, 0, 0, 18, 0], 18);
    assert!(c.is_good());
    assert_eq!((data[2], data[12], data[13]), (0x02, 0x3a, 0x00));
    let (c, data) = run(&d, &[0x1a, 0, 0, 0, 12, 0], 12);
    assert!(c.is_good());
    assert_eq!(data, [11, 0, 0x10, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(run(&d, &[0x05, 0, 0, 0, 6, 0], 6).0.is_good());
    assert!(run(&d, &[0x1e, 0, 0, 0, 1, 0], 0).0.is_good());
    let (_, inq) = run(&d, &[0x12, 0, 0, 0, 36, 0], 36);
    assert_eq!(&inq[8..36], b"IBM     ULT3580-TD9     XC01");
    let (_, vpd) = run(&d, &[0x12, 1, 0x80, 0, 64, 0], 64);
    assert_eq!(&vpd[4..], b"SN0001");
    // REPORT DENSITY SUPPORT without a medium: what it writes (MEDIA=0), NOT READY for
    // the mounted medium's (MEDIA=1).
    let (c, data) = run(&d, &[0x44, 0, 0, 0, 0, 0, 0, 1, 0, 0], 256);
    assert!(c.is_good());
    assert_eq!(data.len(), 4 + 2 * 52);
    assert_eq!((data[4], data[6]), (0x60, 0xa1), "LTO-9: WRTOK DEFLT DLV");
    assert_eq!((data[56], data[58]), (0x5e, 0x81), "LTO-8: WRTOK DLV");
    assert_eq!(
        sense(&run(&d, &[0x44, 1, 0, 0, 0, 0, 0, 1, 0, 0], 256).0),
        not_ready
    );
}

#[test]
fn loaded_cartridges_follow_their_generation() {
    let dir = tempfile::tempdir().unwrap();
    let d = drive(9);
    load(&d, dir.path(), "XC0001L8");
    // The medium's density in the block descriptor; writes work on LTO-8 in an LTO-9.
    let (_, data) = run(&d, &[0x1a, 0, 0, 0, 12, 0], 12);
    assert_eq!(data[4], 0x5e);
    let c = d
        .execute(&[0x0a, 0, 0, 0, 2, 0], DataDirection::ToDevice(b"hi"))
        .unwrap();
    assert!(c.is_good());
    let (_, data) = run(&d, &[0x44, 1, 0, 0, 0, 0, 0, 1, 0, 0], 256);
    assert_eq!((data[1], data[4]), (54, 0x5e));
    // SSC UNLOAD leaves it in, not ready; LOAD makes it ready again.
    assert!(run(&d, &[0x1b, 0, 0, 0, 0, 0], 0).0.is_good());
    assert_eq!(
        d.state(),
        DriveState::Full {
            barcode: "XC0001L8".into(),
            ready: false
        }
    );
    assert!(run(&d, &[0x1b, 0, 0, 0, 1, 0], 0).0.is_good());
    assert!(run(&d, &[0x00; 6], 0).0.is_good());
    let taken = d.take().unwrap().unwrap();
    assert_eq!(taken.barcode, "XC0001L8");
    drop(taken);
    // An LTO-7 cartridge in an LTO-9 drive: incompatible.
    load(&d, dir.path(), "XC0002L7");
    assert_eq!(
        sense(&run(&d, &[0x00; 6], 0).0),
        (SenseKey::NOT_READY, Asc::INCOMPATIBLE_MEDIUM_INSTALLED)
    );
    drop(d.take());
    // An LTO-5 cartridge in an LTO-7 drive: read only (WP in MODE SENSE, DATA PROTECT).
    let d7 = drive(7);
    load(&d7, dir.path(), "XC0003L5");
    let (_, data) = run(&d7, &[0x1a, 0, 0, 0, 12, 0], 12);
    assert_eq!((data[2] & 0x80, data[4]), (0x80, 0x58));
    let c = d7
        .execute(&[0x0a, 0, 0, 0, 2, 0], DataDirection::ToDevice(b"hi"))
        .unwrap();
    assert_eq!(sense(&c), (SenseKey::DATA_PROTECT, Asc::WRITE_PROTECTED));
}

#[test]
fn prevent_follows_the_drive_not_the_cartridge() {
    let dir = tempfile::tempdir().unwrap();
    let d = drive(9);
    assert!(run(&d, &[0x1e, 0, 0, 0, 1, 0], 0).0.is_good());
    load(&d, dir.path(), "XC0001L9");
    assert_eq!(
        d.take().unwrap_err().asc,
        Asc::MEDIUM_REMOVAL_PREVENTED,
        "prevented before the cartridge came in"
    );
    assert!(run(&d, &[0x1e, 0, 0, 0, 0, 0], 0).0.is_good());
    assert!(d.take().unwrap().is_some());
    assert_eq!(d.state(), DriveState::Empty);
}

#[test]
fn attributes_of_the_loaded_cartridge() {
    let dir = tempfile::tempdir().unwrap();
    let mut mam = Mam::load(dir.path().join("SMALL1L9.mam")).unwrap();
    mam.set_capacity(8 << 20);
    mam.save().unwrap();
    let d = drive(9);
    // Empty: NOT READY.
    let mut cdb = [0u8; 16];
    cdb[0] = 0x8c;
    cdb[10..14].copy_from_slice(&512u32.to_be_bytes());
    assert_eq!(
        sense(&run(&d, &cdb, 512).0),
        (SenseKey::NOT_READY, Asc::MEDIUM_NOT_PRESENT)
    );
    let (config, access) = d.cartridge_config(
        "SMALL1L9",
        Mam::load(dir.path().join("SMALL1L9.mam"))
            .unwrap()
            .capacity(),
    );
    assert_eq!(
        (config.capacity, config.early_warning),
        (8 << 20, 128 << 10)
    );
    load(&d, dir.path(), "SMALL1L9");
    assert_eq!(access, Access::ReadWrite);
    // 1 MiB written: 7 MiB remain of 8.
    let record = vec![0x5a; 1 << 20];
    let c = d
        .execute(&[0x0a, 0, 0x10, 0, 0, 0], DataDirection::ToDevice(&record))
        .unwrap();
    assert!(c.is_good(), "{c:?}");
    let (c, data) = run(&d, &cdb, 512);
    assert!(c.is_good());
    assert_eq!(data[4..17], [0, 0, 0x80, 0, 8, 0, 0, 0, 0, 0, 0, 0, 6]);
    assert_eq!(data[17..30], [0, 1, 0x80, 0, 8, 0, 0, 0, 0, 0, 0, 0, 8]);
}

#[test]
fn a_write_after_a_load_counts_one_volume_change() {
    let dir = tempfile::tempdir().unwrap();
    let d = drive(9);
    let vcr = |d: &LibraryDrive| {
        let mut cdb = [0u8; 16];
        cdb[0] = 0x8c;
        cdb[8..10].copy_from_slice(&[0, 9]);
        cdb[10..14].copy_from_slice(&64u32.to_be_bytes());
        let (_, data) = run(d, &cdb, 64);
        assert_eq!(data[4..9], [0, 9, 0x80, 0, 4]);
        u32::from_be_bytes(data[9..13].try_into().unwrap())
    };
    load(&d, dir.path(), "XC0001L9");
    assert_eq!(vcr(&d), 1, "never written");
    for _ in 0..3 {
        let c = d
            .execute(&[0x0a, 0, 0, 0, 2, 0], DataDirection::ToDevice(b"ab"))
            .unwrap();
        assert!(c.is_good());
    }
    assert_eq!(vcr(&d), 1, "one change per load, counted from 0");
    drop(d.take());
    load(&d, dir.path(), "XC0001L9");
    assert!(run(&d, &[0x10, 0, 0, 0, 1, 0], 0).0.is_good());
    assert_eq!(vcr(&d), 2);
}

#[test]
fn read_position_extended_form() {
    let dir = tempfile::tempdir().unwrap();
    let d = drive(9);
    let cdb = [0x34, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        sense(&run(&d, &cdb, 32).0),
        (SenseKey::NOT_READY, Asc::MEDIUM_NOT_PRESENT)
    );
    load(&d, dir.path(), "XC0001L9");
    for _ in 0..3 {
        let c = d
            .execute(&[0x0a, 0, 0, 0, 2, 0], DataDirection::ToDevice(b"ab"))
            .unwrap();
        assert!(c.is_good());
    }
    // SSC-4 extended form: partition 0, ADDITIONAL LENGTH 1Ch, first and last object 3.
    let (c, data) = run(&d, &cdb, 32);
    assert!(c.is_good());
    assert_eq!(data[..4], [0x00, 0x00, 0x00, 0x1c]);
    assert_eq!(
        data[8..24],
        [0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 3]
    );
    assert!(run(&d, &[0x01, 0, 0, 0, 0, 0], 0).0.is_good());
    assert_eq!(run(&d, &cdb, 32).1[0], 0x80, "BOP after REWIND");
}
