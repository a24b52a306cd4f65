//! A library drive on its own: empty, loaded with cartridges of several generations.

use super::*;
use crate::device::library::mam::Mam;
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
    load_in(d, dir, barcode, Default::default());
}

/// [`load`], the cartridge's images appending through `rings`.
fn load_in(
    d: &LibraryDrive,
    dir: &std::path::Path,
    barcode: &str,
    rings: std::sync::Arc<crate::buf::Rings>,
) {
    let path = dir.join(format!("{barcode}.tap"));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let mam = Mam::load(Mam::path_of(&path)).unwrap();
    let (config, access) = d.cartridge_config(barcode, mam.capacity());
    let medium_type = d.medium_type(barcode);
    d.insert(Loaded::open("t", barcode, path, config, access, mam, medium_type, rings).unwrap());
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

fn put(d: &LibraryDrive, cdb: &[u8], data: &[u8]) -> Completion {
    d.execute(cdb, DataDirection::ToDevice(data)).unwrap()
}

fn long_position(d: &LibraryDrive) -> (u32, u64) {
    let (c, data) = run(d, &[0x34, 0x06, 0, 0, 0, 0, 0, 0, 0, 0], 32);
    assert!(c.is_good());
    (
        u32::from_be_bytes(data[4..8].try_into().unwrap()),
        u64::from_be_bytes(data[8..16].try_into().unwrap()),
    )
}

fn locate16(d: &LibraryDrive, partition: u8, block: u64) -> Completion {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x92;
    cdb[1] = 0x02;
    cdb[3] = partition;
    cdb[4..12].copy_from_slice(&block.to_be_bytes());
    d.execute(&cdb, DataDirection::None).unwrap()
}

/// What LTFS's mkltfs does (libltfs tape_format, sg backend): MODE SENSE(10) of page 11h
/// into 28 bytes, the page changed to two partitions (index 1 GB, data the rest), MODE
/// SELECT(10) of the same 28 bytes, FORMAT MEDIUM 01h; then LOCATE(16) with CP between
/// partitions, READ POSITION, LOG SENSE 31h, READ ATTRIBUTE of partition 1.
#[test]
fn ltfs_partitions_a_cartridge() {
    // Where the images are appended through O_DIRECT and rings, made by this test.
    let dir = crate::device::tape::image::direct_tempdir();
    let rings = std::sync::Arc::new(crate::buf::Rings::new(4).unwrap());
    let image = dir.path().join("LTFS01L9.tap");
    let mut mam = Mam::load(Mam::path_of(&image)).unwrap();
    mam.set_capacity(64 << 20);
    mam.save().unwrap();
    let d = drive(9);
    load_in(&d, dir.path(), "LTFS01L9", std::sync::Arc::clone(&rings));
    let sense_page = [0x5a, 0, 0x11, 0, 0, 0, 0, 0, 28, 0];
    let (c, mut page) = run(&d, &sense_page, 28);
    assert!(c.is_good());
    // Header: MODE DATA LENGTH 26, MEDIUM TYPE 98h (LTO-9 data), BUFFERED MODE 1, one
    // block descriptor (density 60h, variable); page 11h: one partition, POFM, PSUM 11b.
    assert_eq!(page[..8], [0, 26, 0x98, 0x10, 0, 0, 0, 8]);
    assert_eq!(page[8..16], [0x60, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(page[16..], [0x11, 0x0a, 1, 0, 0x1c, 3, 9, 0, 0, 0, 0, 0]);
    // Changeable values.
    let (_, mask) = run(&d, &[0x5a, 0x08, 0x51, 0, 0, 0, 0, 0, 20, 0], 20);
    assert_eq!(
        mask[8..],
        [0x11, 0x0a, 0, 0xff, 0xf8, 0, 0x0f, 0, 0xff, 0xff, 0xff, 0xff]
    );
    page[0] = 0;
    page[1] = 0;
    page[19] = 1;
    page[20] = 0x20 | (page[20] & 0x1f);
    page[22] = 9;
    page[24..28].copy_from_slice(&[0, 1, 0xff, 0xff]);
    let select = [0x55, 0x10, 0, 0, 0, 0, 0, 0, 28, 0];
    assert!(put(&d, &select, &page).is_good());
    let (_, now) = run(&d, &sense_page, 28);
    assert_eq!(
        now[16..],
        [0x11, 0x0a, 1, 1, 0x3c, 3, 9, 0, 0, 1, 0xff, 0xff]
    );
    // Three partitions: 26/00 at ADDITIONAL PARTITIONS DEFINED, nothing kept.
    let mut three = page;
    three[19] = 2;
    let s = put(&d, &select, &three).decoded_sense().unwrap();
    assert_eq!(
        (s.asc, s.field_pointer()),
        (Asc::INVALID_FIELD_IN_PARAMETER_LIST, Some(19))
    );
    // Not at the beginning of partition 0: 05/3B/0C.
    assert!(put(&d, &[0x0a, 0, 0, 0, 3, 0], b"old").is_good());
    let format = [0x04, 0, 0x01, 0, 0, 0];
    assert_eq!(
        sense(&run(&d, &format, 0).0),
        (
            SenseKey::ILLEGAL_REQUEST,
            Asc::POSITION_PAST_BEGINNING_OF_MEDIUM
        )
    );
    assert!(run(&d, &[0x01, 0, 0, 0, 0, 0], 0).0.is_good());
    assert!(run(&d, &format, 0).0.is_good());
    // The rings partition 0 used are set aside, so what partition 1 (which FORMAT MEDIUM
    // opened) borrows below can be told apart.
    let set_aside: Vec<_> = std::iter::from_fn(|| rings.take())
        .take(rings.idle_count())
        .collect();
    // Two partitions: the 1 GB asked for does not fit 64 MiB, so half each; partition 0
    // erased, partition 1 its own image.
    assert_eq!(std::fs::metadata(&image).unwrap().len(), 0);
    assert!(dir.path().join("LTFS01L9.p1.tap").is_file());
    let (_, caps) = run(&d, &[0x4d, 0, 0x71, 0, 0, 0, 0, 0, 64, 0], 64);
    assert_eq!(caps[..4], [0x31, 0, 0, 32]);
    for (i, code) in (1u8..=4).enumerate() {
        assert_eq!(caps[4 + 8 * i..12 + 8 * i], [0, code, 3, 4, 0, 0, 0, 33]);
    }
    // LOCATE(16) CP=1 to partition 1, a record there; back to partition 0, another.
    assert!(locate16(&d, 1, 0).is_good());
    assert!(put(&d, &[0x0a, 0, 0, 0, 2, 0], b"P1").is_good());
    assert_eq!(long_position(&d), (1, 1));
    assert_eq!(
        rings.idle_count(),
        1,
        "partition 1 wrote through a ring of these"
    );
    drop(set_aside);
    let (_, short) = run(&d, &[0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0], 20);
    assert_eq!(short[..2], [0x00, 1]);
    let (_, ext) = run(&d, &[0x34, 0x08, 0, 0, 0, 0, 0, 0, 0, 0], 32);
    assert_eq!(ext[..2], [0x00, 1]);
    assert!(locate16(&d, 0, 0).is_good());
    assert!(put(&d, &[0x0a, 0, 0, 0, 2, 0], b"P0").is_good());
    assert_eq!(long_position(&d), (0, 1));
    // A third partition does not exist: 24/00 at PARTITION (LOCATE(10) byte 8).
    let c = run(&d, &[0x2b, 0x02, 0, 0, 0, 0, 0, 0, 2, 0], 0).0;
    assert_eq!(c.decoded_sense().unwrap().field_pointer(), Some(8));
    // SPACE(16): back one record, forward one; a count beyond 24 bits is 24/00 at 4.
    let mut space = [0u8; 16];
    space[0] = 0x91;
    space[4..12].copy_from_slice(&(-1i64).to_be_bytes());
    assert!(run(&d, &space, 0).0.is_good());
    assert_eq!(long_position(&d), (0, 0));
    space[4..12].copy_from_slice(&1i64.to_be_bytes());
    assert!(run(&d, &space, 0).0.is_good());
    assert_eq!(long_position(&d), (0, 1));
    space[4..12].copy_from_slice(&(1i64 << 40).to_be_bytes());
    let c = run(&d, &space, 0).0;
    assert_eq!(c.decoded_sense().unwrap().field_pointer(), Some(4));
    // READ ATTRIBUTE: two partitions, partition 1's own capacity.
    let mut ra = [0u8; 16];
    ra[0] = 0x8c;
    ra[1] = 0x03;
    ra[10..14].copy_from_slice(&64u32.to_be_bytes());
    assert_eq!(run(&d, &ra, 64).1, [0, 2, 0, 2]);
    ra[1] = 0;
    ra[7] = 1;
    ra[8..10].copy_from_slice(&1u16.to_be_bytes());
    let (c, attr) = run(&d, &ra, 64);
    assert!(c.is_good());
    assert_eq!(attr[4..17], [0, 1, 0x80, 0, 8, 0, 0, 0, 0, 0, 0, 0, 32]);
    // REWIND from partition 1 goes to the beginning of partition 0.
    assert!(locate16(&d, 1, 1).is_good());
    assert!(run(&d, &[0x01, 0, 0, 0, 0, 0], 0).0.is_good());
    assert_eq!(long_position(&d), (0, 0));
    // Out and in again: still two partitions (sizes in MB now), each with its record.
    assert!(d.take().unwrap().is_some());
    load(&d, dir.path(), "LTFS01L9");
    let (_, again) = run(&d, &sense_page, 28);
    assert_eq!(again[16..], [0x11, 0x0a, 1, 1, 0x3c, 3, 6, 0, 0, 34, 0, 34]);
    for (p, want) in [(1u8, b"P1"), (0, b"P0")] {
        assert!(locate16(&d, p, 0).is_good());
        let (c, rec) = run(&d, &[0x08, 0, 0, 0, 2, 0], 2);
        assert!(c.is_good());
        assert_eq!(&rec, want);
    }
    // FORMAT MEDIUM 00h: one partition of the whole cartridge again.
    assert!(run(&d, &[0x01, 0, 0, 0, 0, 0], 0).0.is_good());
    assert!(run(&d, &[0x04, 0, 0, 0, 0, 0], 0).0.is_good());
    assert!(!dir.path().join("LTFS01L9.p1.tap").exists());
    let (_, single) = run(&d, &sense_page, 28);
    assert_eq!(single[16..20], [0x11, 0x0a, 1, 0]);
    let mam = Mam::load(Mam::path_of(&image)).unwrap();
    assert_eq!(mam.partition_capacities(), Some(vec![64 << 20]));
    assert_eq!(sense(&locate16(&d, 1, 0)).1, Asc::INVALID_FIELD_IN_CDB);
}
