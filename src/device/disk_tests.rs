//! Exact expectations for every command and sense of [`EmulatedDisk`], by SBC-3/SPC-3
//! clause.

use std::sync::Arc;

use super::*;
use crate::buf::AlignedBuf;
use crate::scsi::inquiry::{decode_device_identification, split_vpd_page};
use crate::scsi::{SenseKeySpecific, Status};

const BLOCKS: u64 = 64;

fn open_with(bs: u32, f: impl FnOnce(&mut DiskOptions)) -> (tempfile::TempDir, EmulatedDisk) {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = DiskOptions::new(dir.path().join("d.img"), bs);
    opts.create_size = Some(BLOCKS * u64::from(bs));
    opts.designators = vec![Designator::parse_name("naa.5001405a1b2c3d01").unwrap()];
    f(&mut opts);
    let disk = EmulatedDisk::open("d0", &opts).unwrap();
    (dir, disk)
}

fn open(bs: u32) -> (tempfile::TempDir, EmulatedDisk) {
    open_with(bs, |_| {})
}

fn data_in(d: &EmulatedDisk, cdb: &[u8], len: usize) -> (Completion, Vec<u8>) {
    let mut buf = vec![0u8; len];
    let c = d.execute(cdb, DataDirection::FromDevice(&mut buf)).unwrap();
    (c, buf)
}

fn data_out(d: &EmulatedDisk, cdb: &[u8], data: &[u8]) -> Completion {
    d.execute(cdb, DataDirection::ToDevice(data)).unwrap()
}

/// (sense key, ASC/ASCQ, sense-key specific) of a CHECK CONDITION.
fn sense(c: &Completion) -> (SenseKey, Asc, Option<SenseKeySpecific>) {
    assert_eq!(c.status, Status::CHECK_CONDITION, "{c:?}");
    let s = c.decoded_sense().unwrap();
    (s.key, s.asc, s.sense_key_specific)
}

/// ILLEGAL REQUEST with `asc` and, if given, a CDB field pointer (byte, bit).
fn illegal(
    asc: Asc,
    pointer: Option<(u16, Option<u8>)>,
) -> (SenseKey, Asc, Option<SenseKeySpecific>) {
    let sks = pointer.map(|(pointer, bit)| SenseKeySpecific::Field {
        command: true,
        bit,
        pointer,
    });
    (SenseKey::ILLEGAL_REQUEST, asc, sks)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn open_creates_a_sparse_image_and_checks_its_geometry() {
    let (dir, d) = open(4096);
    assert_eq!((d.blocks(), d.block_size()), (BLOCKS, 4096));
    assert!(d.is_direct(), "ext4 supports O_DIRECT");
    assert_eq!(
        std::fs::metadata(dir.path().join("d.img")).unwrap().len(),
        BLOCKS * 4096
    );
    let e = EmulatedDisk::open("x", &DiskOptions::new(dir.path().join("d.img"), 1000)).unwrap_err();
    assert!(
        matches!(
            e,
            DiskError::BlockSize {
                block_size: 1000,
                ..
            }
        ),
        "{e}"
    );
    let e =
        EmulatedDisk::open("x", &DiskOptions::new(dir.path().join("missing"), 512)).unwrap_err();
    assert!(matches!(e, DiskError::Io { .. }), "{e}");
    let e = EmulatedDisk::open("x", &DiskOptions::new(dir.path(), 512)).unwrap_err();
    assert!(matches!(e, DiskError::NotBlockStorage { .. }), "{e}");
    std::fs::write(dir.path().join("tiny"), [0u8; 100]).unwrap();
    let e = EmulatedDisk::open("x", &DiskOptions::new(dir.path().join("tiny"), 512)).unwrap_err();
    assert!(matches!(e, DiskError::Empty { .. }), "{e}");
    let mut opts = DiskOptions::new(dir.path().join("odd"), 4096);
    opts.create_size = Some(5000);
    assert!(matches!(
        EmulatedDisk::open("x", &opts).unwrap_err(),
        DiskError::CreateSize { size: 5000, .. }
    ));
    // A trailing partial block is not part of the medium (as LIO fileio does).
    std::fs::write(dir.path().join("partial"), vec![0u8; 512 * 3 + 100]).unwrap();
    let d = EmulatedDisk::open("x", &DiskOptions::new(dir.path().join("partial"), 512)).unwrap();
    assert_eq!(d.blocks(), 3);
}

#[test]
fn buffered_fallback_still_moves_data() {
    // tmpfs: O_DIRECT either fails with EINVAL (older kernels: we fall back) or is
    // accepted and served from the page cache; both must work.
    let Ok(dir) = tempfile::tempdir_in("/dev/shm") else {
        return;
    };
    let mut opts = DiskOptions::new(dir.path().join("t.img"), 512);
    opts.create_size = Some(8 * 512);
    let d = EmulatedDisk::open("t", &opts).unwrap();
    let data = pattern(1024, 3);
    assert!(data_out(&d, &[0x2a, 0, 0, 0, 0, 2, 0, 0, 2, 0], &data[..]).is_good());
    let (c, back) = data_in(&d, &[0x28, 0, 0, 0, 0, 2, 0, 0, 2, 0], 1024);
    assert!(c.is_good());
    assert_eq!(back, data);
    let mut opts = DiskOptions::new(dir.path().join("t.img"), 512);
    opts.direct_io = false;
    assert!(!EmulatedDisk::open("t", &opts).unwrap().is_direct());
}

#[test]
fn an_image_in_memory_gets_two_ios_in_flight_unless_the_inventory_says_otherwise() {
    let dir = tempfile::tempdir_in("/dev/shm").expect("/dev/shm (tmpfs)");
    let depth = |configured: Option<u16>| {
        let mut opts = DiskOptions::new(dir.path().join("t.img"), 512);
        opts.create_size = Some(8 * 512);
        opts.queue_depth = configured;
        let d = EmulatedDisk::open("t", &opts).unwrap();
        d.block_backend().unwrap().queue_depth
    };
    assert_eq!(depth(None), Some(2));
    assert_eq!(depth(Some(7)), Some(7));
    let opts = DiskOptions::new(dir.path().join("t.img"), 512);
    assert!(
        EmulatedDisk::open("t", &opts)
            .unwrap()
            .block_backend()
            .unwrap()
            .in_memory
    );
    // On a disk's file system the engine's own default holds.
    let (_dir, d) = open(512);
    assert_eq!(d.block_backend().unwrap().queue_depth, None);
    assert!(!d.block_backend().unwrap().in_memory);
}

#[test]
fn standard_inquiry_spc3_6_4_2() {
    let (_dir, d) = open(512);
    let (c, buf) = data_in(&d, &[0x12, 0, 0, 0, 96, 0], 96);
    assert_eq!(c, Completion::good(0));
    // PDT 00h, VERSION 05h, RESPONSE DATA FORMAT 2 + HISUP, ADDITIONAL LENGTH 91, 3PC.
    assert_eq!(buf[..8], [0x00, 0x00, 0x05, 0x12, 91, 0x08, 0x00, 0x02]);
    assert_eq!(&buf[8..36], b"XCOPYD  EMULATED DISK   0001");
    // VERSION DESCRIPTORs: SAM-3, SPC-3, SBC-3.
    assert_eq!(buf[58..66], [0x00, 0x60, 0x03, 0x00, 0x04, 0xc0, 0, 0]);
    // ALLOCATION LENGTH truncates.
    let (c, buf) = data_in(&d, &[0x12, 0, 0, 0, 5, 0], 36);
    assert_eq!(c, Completion::good(31));
    assert_eq!(buf[..5], [0x00, 0x00, 0x05, 0x12, 91]);
}

#[test]
fn vpd_pages_00_80_83_b0() {
    let (_dir, d) = open(512);
    let (c, buf) = data_in(&d, &[0x12, 1, 0x00, 0, 255, 0], 8);
    assert_eq!(c, Completion::good(0));
    assert_eq!(buf, [0, 0x00, 0, 6, 0x00, 0x80, 0x83, 0xb0]);
    let (_, buf) = data_in(&d, &[0x12, 1, 0x80, 0, 255, 0], 20);
    assert_eq!(buf[..4], [0, 0x80, 0, 16]);
    assert_eq!(&buf[4..20], b"5001405a1b2c3d01");
    let (_, buf) = data_in(&d, &[0x12, 1, 0x83, 0, 255, 0], 255);
    let (code, body) = split_vpd_page(&buf).unwrap();
    assert_eq!(code, 0x83);
    assert_eq!(
        &decode_device_identification(&body[..12]).unwrap(),
        d.designators()
    );
    let (c, buf) = data_in(&d, &[0x12, 1, 0xb0, 0, 64, 0], 64);
    assert_eq!(c, Completion::good(0));
    assert_eq!(buf[..4], [0, 0xb0, 0, 0x3c]);
    // OPTIMAL TRANSFER LENGTH GRANULARITY 8 (4 KiB), MAXIMUM TRANSFER LENGTH 16 MiB,
    // OPTIMAL TRANSFER LENGTH 1 MiB (SBC-3 6.5.3).
    assert_eq!(buf[6..8], [0, 8]);
    assert_eq!(buf[8..12], 32768u32.to_be_bytes());
    assert_eq!(buf[12..16], 2048u32.to_be_bytes());
    let (c, _) = data_in(&d, &[0x12, 1, 0x8f, 0, 255, 0], 255);
    assert_eq!(
        sense(&c),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((2, None)))
    );
}

#[test]
fn test_unit_ready_and_request_sense_spc3_6_27_6_33() {
    let (_dir, d) = open(512);
    assert_eq!(
        d.execute(&[0, 0, 0, 0, 0, 0], DataDirection::None).unwrap(),
        Completion::good(0)
    );
    let (c, buf) = data_in(&d, &[0x03, 0, 0, 0, 252, 0], 252);
    assert_eq!(c, Completion::good(252 - 18));
    assert_eq!(
        buf[..18],
        [0x70, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    let (c, buf) = data_in(&d, &[0x03, 1, 0, 0, 252, 0], 8);
    assert_eq!(c, Completion::good(0));
    assert_eq!(buf, [0x72, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn read_capacity_10_and_16_sbc3_5_10_5_11() {
    let (_dir, d) = open(4096);
    let (c, buf) = data_in(&d, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8);
    assert_eq!(c, Completion::good(0));
    assert_eq!(buf, [0, 0, 0, 63, 0, 0, 0x10, 0]);
    let mut rc16 = [0u8; 16];
    rc16[0] = 0x9e;
    rc16[1] = 0x10;
    rc16[13] = 32;
    let (c, buf) = data_in(&d, &rc16, 32);
    assert_eq!(c, Completion::good(0));
    assert_eq!(
        buf[..16],
        [0, 0, 0, 0, 0, 0, 0, 63, 0, 0, 0x10, 0, 0, 0, 0xc0, 0]
    );
    rc16[13] = 12;
    let (c, buf) = data_in(&d, &rc16, 32);
    assert_eq!(c, Completion::good(20));
    assert_eq!(buf[8..12], [0, 0, 0x10, 0]);
    assert_eq!(buf[12..], [0u8; 20]);
    // Over 2^32 blocks: READ CAPACITY(10) says FFFFFFFFh.
    let (_dir, big) = open_with(512, |o| o.create_size = Some((1u64 << 32) * 512 + 1024));
    let (_, buf) = data_in(&big, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8);
    assert_eq!(buf, [0xff, 0xff, 0xff, 0xff, 0, 0, 2, 0]);
    let (_, buf) = data_in(&big, &rc16, 12);
    assert_eq!(buf[..8], (1u64 << 32 | 1).to_be_bytes());
}

#[test]
fn reads_and_writes_in_every_form_sbc3_5_5_to_5_10_5_25_to_5_28() {
    let (_dir, d) = open(512);
    let data = pattern(4 * 512, 7);
    assert_eq!(
        data_out(&d, &[0x0a, 0, 0, 4, 4, 0], &data),
        Completion::good(0)
    );
    for cdb in [
        vec![0x08, 0, 0, 4, 4, 0],
        vec![0x28, 0, 0, 0, 0, 4, 0, 0, 4, 0],
        vec![0xa8, 0, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0],
        ReadWriteCdb::read_16(4, 4).to_vec(),
    ] {
        let (c, back) = data_in(&d, &cdb, data.len());
        assert_eq!(c, Completion::good(0), "{cdb:02x?}");
        assert_eq!(back, data, "{cdb:02x?}");
    }
    let other = pattern(2 * 512, 9);
    for cdb in [
        vec![0x2a, 0x08, 0, 0, 0, 10, 0, 0, 2, 0],
        vec![0xaa, 0, 0, 0, 0, 10, 0, 0, 0, 2, 0, 0],
        ReadWriteCdb::write_16(10, 2, true).to_vec(),
    ] {
        assert_eq!(
            data_out(&d, &cdb, &other),
            Completion::good(0),
            "{cdb:02x?}"
        );
        let (_, back) = data_in(&d, &ReadWriteCdb::read_16(10, 2), other.len());
        assert_eq!(back, other);
    }
    // READ(6)/WRITE(6) TRANSFER LENGTH 0 = 256 blocks (SBC-3 5.9, 5.27): past our 64.
    let (c, _) = data_in(&d, &[0x08, 0, 0, 0, 0, 0], 256 * 512);
    assert_eq!(
        sense(&c),
        illegal(Asc::LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE, None)
    );
    let (_dir, big) = open_with(512, |o| o.create_size = Some(512 * 512));
    let (c, _) = data_in(&big, &[0x08, 0, 0, 0, 0, 0], 256 * 512);
    assert_eq!(c, Completion::good(0));
    // READ(10)/(16) TRANSFER LENGTH 0 transfers nothing and is GOOD (SBC-3 5.7).
    let (c, buf) = data_in(&d, &[0x28, 0, 0, 0, 0, 4, 0, 0, 0, 0], 512);
    assert_eq!(c, Completion::good(512));
    assert_eq!(buf, vec![0u8; 512]);
    let (c, _) = data_in(&d, &ReadWriteCdb::read_16(BLOCKS, 0), 0);
    assert_eq!(c, Completion::good(0));
}

#[test]
fn unaligned_buffers_go_through_the_bounce_buffer() {
    let (_dir, d) = open(4096);
    assert!(d.is_direct());
    let mut backing = vec![0u8; 3 * 4096 + 1];
    let data = pattern(3 * 4096, 1);
    backing[1..].copy_from_slice(&data);
    assert!(data_out(&d, &ReadWriteCdb::write_16(1, 3, false), &backing[1..]).is_good());
    let mut back = vec![0u8; 3 * 4096 + 3];
    let c = d
        .execute(
            &ReadWriteCdb::read_16(1, 3),
            DataDirection::FromDevice(&mut back[3..]),
        )
        .unwrap();
    assert_eq!(c, Completion::good(0));
    assert_eq!(back[3..], data[..]);
    // An aligned buffer takes the direct path and sees the same bytes.
    let mut aligned = AlignedBuf::new(3 * 4096);
    let c = d
        .execute(
            &ReadWriteCdb::read_16(1, 3),
            DataDirection::FromDevice(aligned.as_mut_slice()),
        )
        .unwrap();
    assert_eq!(c, Completion::good(0));
    assert_eq!(aligned.as_mut_slice(), &data[..]);
}

#[test]
fn transfer_length_and_buffer_disagreements() {
    let (_dir, d) = open(512);
    let data = pattern(1024, 4);
    // A larger data-out buffer than needed: the rest is residual.
    let mut more = data.clone();
    more.extend_from_slice(&[0xee; 100]);
    assert_eq!(
        data_out(&d, &[0x2a, 0, 0, 0, 0, 0, 0, 0, 2, 0], &more),
        Completion::good(100)
    );
    // A smaller one: the whole blocks that came are written, the rest is overflow.
    let c = data_out(&d, &[0x2a, 0, 0, 0, 0, 8, 0, 0, 2, 0], &data[..1000]);
    assert_eq!(c, Completion::good(0).with_overflow(24));
    let (_, back) = data_in(&d, &[0x28, 0, 0, 0, 0, 8, 0, 0, 2, 0], 1024);
    assert_eq!(back[..512], data[..512]);
    assert!(back[512..].iter().all(|&b| b == 0), "block 9 not written");
    // None at all: nothing written, all overflow.
    let c = d
        .execute(&[0x2a, 0, 0, 0, 0, 9, 0, 0, 1, 0], DataDirection::None)
        .unwrap();
    assert_eq!(c, Completion::good(0).with_overflow(512));
    // A smaller data-in buffer receives what fits, residual 0, the rest is overflow.
    let (c, back) = data_in(&d, &[0x28, 0, 0, 0, 0, 0, 0, 0, 2, 0], 700);
    assert_eq!(c, Completion::good(0).with_overflow(324));
    assert_eq!(back, data[..700]);
    // A larger one: residual.
    let (c, back) = data_in(&d, &[0x28, 0, 0, 0, 0, 0, 0, 0, 2, 0], 2000);
    assert_eq!(c, Completion::good(2000 - 1024));
    assert_eq!(back[..1024], data[..]);
    // Above MAXIMUM TRANSFER LENGTH (SBC-3 5.7: 24/00).
    let (_dir, small) = open_with(512, |o| o.max_transfer_bytes = 8 * 512);
    let (c, _) = data_in(&small, &[0x28, 0, 0, 0, 0, 0, 0, 0, 9, 0], 9 * 512);
    assert_eq!(
        sense(&c),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((7, None)))
    );
    let (c, _) = data_in(&small, &ReadWriteCdb::read_16(0, 9), 9 * 512);
    assert_eq!(
        sense(&c),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((10, None)))
    );
}

#[test]
fn out_of_range_lba_sbc3_4_5() {
    let (_dir, d) = open(512);
    let want = illegal(Asc::LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE, None);
    let (c, _) = data_in(&d, &[0x28, 0, 0, 0, 0, 63, 0, 0, 2, 0], 1024);
    assert_eq!(sense(&c), want);
    assert_eq!(c.residual, 1024);
    let c = data_out(&d, &ReadWriteCdb::write_16(u64::MAX, 1, false), &[0; 512]);
    assert_eq!(sense(&c), want);
    let (c, _) = data_in(&d, &ReadWriteCdb::read_16(BLOCKS + 1, 0), 0);
    assert_eq!(sense(&c), want);
    let c = data_out(&d, &[0x2f, 0, 0, 0, 0, 64, 0, 0, 1, 0], &[]);
    assert_eq!(sense(&c), want);
    let c = d
        .execute(&[0x35, 0, 0, 0, 0, 65, 0, 0, 0, 0], DataDirection::None)
        .unwrap();
    assert_eq!(sense(&c), want);
}

#[test]
fn read_only_disk_is_data_protect_sbc3_4_11() {
    let (dir, d) = open(512);
    drop(d);
    let mut opts = DiskOptions::new(dir.path().join("d.img"), 512);
    opts.read_only = true;
    let d = EmulatedDisk::open("ro", &opts).unwrap();
    let c = data_out(&d, &[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[1; 512]);
    assert_eq!(
        sense(&c),
        (SenseKey::DATA_PROTECT, Asc::WRITE_PROTECTED, None)
    );
    let c = data_out(&d, &[0x0a, 0, 0, 0, 1, 0], &[1; 512]);
    assert_eq!(sense(&c).1, Asc::WRITE_PROTECTED);
    let (c, _) = data_in(&d, &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], 512);
    assert!(c.is_good());
    assert!(d
        .execute(&[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], DataDirection::None)
        .unwrap()
        .is_good());
    // MODE SENSE reports WP (SBC-3 6.3.1).
    let (_, buf) = data_in(&d, &[0x1a, 0x08, 0x3f, 0, 255, 0], 255);
    assert_eq!(buf[2], 0x90);
    assert!(d.block_backend().unwrap().read_only);
}

#[test]
fn unknown_opcode_and_bad_fields_spc3_4_5_2_4_2() {
    let (_dir, d) = open(512);
    let c = d
        .execute(&[0xc0, 0, 0, 0, 0, 0], DataDirection::None)
        .unwrap();
    assert_eq!(
        sense(&c),
        illegal(Asc::INVALID_COMMAND_OPERATION_CODE, None)
    );
    let c = d
        .execute(
            &[0x83, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            DataDirection::None,
        )
        .unwrap();
    assert_eq!(sense(&c).1, Asc::INVALID_COMMAND_OPERATION_CODE);
    // RDPROTECT != 0 without protection information (SBC-3 Table 33).
    let (c, _) = data_in(&d, &[0x28, 0x60, 0, 0, 0, 0, 0, 0, 1, 0], 512);
    assert_eq!(
        sense(&c),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((1, Some(7))))
    );
    // NACA in the CONTROL byte.
    let (c, _) = data_in(&d, &[0x12, 0, 0, 0, 36, 0x04], 36);
    assert_eq!(
        sense(&c),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((5, Some(2))))
    );
    // The raw bytes: SKSV, C/D, BPV, BIT POINTER 2, FIELD POINTER 5.
    assert_eq!(c.sense[15..18], [0xca, 0, 5]);
    // Truncated CDB.
    let (c, _) = data_in(&d, &[0x88, 0, 0, 0], 512);
    assert_eq!(
        sense(&c),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((0, None)))
    );
}

#[test]
fn verify_sbc3_5_22_to_5_24() {
    let (_dir, d) = open(512);
    let data = pattern(4 * 512, 5);
    assert!(data_out(&d, &ReadWriteCdb::write_16(8, 4, false), &data).is_good());
    // BYTCHK 0: medium verification only.
    let c = d
        .execute(&[0x2f, 0, 0, 0, 0, 8, 0, 0, 4, 0], DataDirection::None)
        .unwrap();
    assert_eq!(c, Completion::good(0));
    // BYTCHK 1, equal data.
    assert_eq!(
        data_out(&d, &[0x2f, 0x02, 0, 0, 0, 8, 0, 0, 4, 0], &data),
        Completion::good(0)
    );
    let mut v16 = [0u8; 16];
    v16[0] = 0x8f;
    v16[1] = 0x02;
    v16[9] = 8;
    v16[13] = 4;
    assert_eq!(data_out(&d, &v16, &data), Completion::good(0));
    // BYTCHK 1, difference at byte 700: MISCOMPARE, INFORMATION = 700.
    let mut wrong = data.clone();
    wrong[700] ^= 0xff;
    let c = data_out(&d, &[0xaf, 0x02, 0, 0, 0, 8, 0, 0, 0, 4, 0, 0], &wrong);
    assert_eq!(
        sense(&c),
        (
            SenseKey::MISCOMPARE,
            Asc::MISCOMPARE_DURING_VERIFY_OPERATION,
            None
        )
    );
    assert_eq!(c.decoded_sense().unwrap().information, Some(700));
    assert_eq!(c.sense[..7], [0xf0, 0, 0x0e, 0, 0, 0x02, 0xbc]);
    // VERIFICATION LENGTH 0 verifies nothing and is GOOD.
    let c = d
        .execute(&[0x2f, 0x02, 0, 0, 0, 8, 0, 0, 0, 0], DataDirection::None)
        .unwrap();
    assert_eq!(c, Completion::good(0));
    // Too little data-out for BYTCHK 1.
    let c = data_out(&d, &[0x2f, 0x02, 0, 0, 0, 8, 0, 0, 4, 0], &data[..100]);
    assert_eq!(
        sense(&c),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((7, None)))
    );
}

#[test]
fn write_and_verify_sbc3_5_29_to_5_31() {
    let (_dir, d) = open(512);
    let data = pattern(4 * 512, 9);
    // WRITE AND VERIFY(10), BYTCHK 0: written, then the medium verified.
    let c = data_out(&d, &[0x2e, 0, 0, 0, 0, 8, 0, 0, 4, 0], &data);
    assert_eq!(c, Completion::good(0));
    let (c, back) = data_in(&d, &ReadWriteCdb::read_16(8, 4), 4 * 512);
    assert!(c.is_good());
    assert_eq!(back, data);
    // WRITE AND VERIFY(16), BYTCHK 01b (compare with the data-out), DPO set.
    let other = pattern(2 * 512, 77);
    let mut wv16 = [0u8; 16];
    wv16[0] = 0x8e;
    wv16[1] = 0x12;
    wv16[9] = 20;
    wv16[13] = 2;
    assert_eq!(data_out(&d, &wv16, &other), Completion::good(0));
    let (_, back) = data_in(&d, &ReadWriteCdb::read_16(20, 2), 2 * 512);
    assert_eq!(back, other);
    // WRITE AND VERIFY(12) too.
    let c = data_out(
        &d,
        &[0xae, 0x02, 0, 0, 0, 30, 0, 0, 0, 1, 0, 0],
        &data[..512],
    );
    assert_eq!(c, Completion::good(0));
    // The compare step: INFORMATION is the offset into the data-out of the first difference.
    let mut wrong = other.clone();
    wrong[600] ^= 0x01;
    let s = d.check_medium(20, wrong.len(), Some(&wrong)).unwrap_err();
    assert_eq!(
        (s.key, s.asc, s.information),
        (
            SenseKey::MISCOMPARE,
            Asc::MISCOMPARE_DURING_VERIFY_OPERATION,
            Some(600)
        )
    );
    // BYTCHK 10b and 11b are reserved: 24/00 at byte 1 bit 2.
    for b1 in [0x04, 0x06] {
        let c = data_out(&d, &[0x2e, b1, 0, 0, 0, 8, 0, 0, 1, 0], &data[..512]);
        assert_eq!(
            sense(&c),
            illegal(Asc::INVALID_FIELD_IN_CDB, Some((1, Some(2))))
        );
    }
    // WRPROTECT without protection information: 24/00 at byte 1 bit 7.
    let c = data_out(&d, &[0x2e, 0x20, 0, 0, 0, 8, 0, 0, 1, 0], &data[..512]);
    assert_eq!(
        sense(&c),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((1, Some(7))))
    );
    // Past the end: 21/00, nothing written.
    let c = data_out(&d, &[0x2e, 0, 0, 0, 0, 63, 0, 0, 2, 0], &data[..1024]);
    assert_eq!(
        sense(&c),
        illegal(Asc::LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE, None)
    );
    // Short data-out (iSCSI EDTL < TRANSFER LENGTH): the whole blocks that came are
    // written and verified, the rest is overflow, as for WRITE.
    let fresh = pattern(512, 200);
    let c = data_out(&d, &[0x2e, 0x02, 0, 0, 0, 40, 0, 0, 2, 0], &fresh);
    assert_eq!(c, Completion::good(0).with_overflow(512));
    let (_, back) = data_in(&d, &ReadWriteCdb::read_16(40, 1), 512);
    assert_eq!(back, fresh);
}

#[test]
fn synchronize_cache_sbc3_5_18_5_19() {
    let (_dir, d) = open(512);
    let ok = Completion::good(0);
    assert_eq!(
        d.execute(&[0x35, 0x02, 0, 0, 0, 0, 0, 0, 0, 0], DataDirection::None)
            .unwrap(),
        ok
    );
    let mut s16 = [0u8; 16];
    s16[0] = 0x91;
    s16[9] = 63;
    s16[13] = 1;
    assert_eq!(d.execute(&s16, DataDirection::None).unwrap(), ok);
    s16[13] = 2;
    let c = d.execute(&s16, DataDirection::None).unwrap();
    assert_eq!(
        sense(&c),
        illegal(Asc::LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE, None)
    );
}

#[test]
fn mode_sense_6_and_10_spc3_6_9_6_10() {
    let (_dir, d) = open(4096);
    let (c, buf) = data_in(&d, &[0x1a, 0, 0x3f, 0, 255, 0], 255);
    assert_eq!(c, Completion::good(255 - 44));
    // Header: MODE DATA LENGTH 43, DPOFUA, BLOCK DESCRIPTOR LENGTH 8.
    assert_eq!(buf[..4], [43, 0, 0x10, 8]);
    assert_eq!(buf[4..12], [0, 0, 0, 64, 0, 0, 0x10, 0]);
    // Caching page with WCE, then Control page.
    assert_eq!(buf[12..15], [0x08, 0x12, 0x04]);
    assert_eq!(buf[32..36], [0x0a, 0x0a, 0x02, 0x10]);
    let (_, buf) = data_in(&d, &[0x5a, 0x08, 0x08, 0, 0, 0, 0, 0, 255, 0], 255);
    assert_eq!(buf[..8], [0, 26, 0, 0x10, 0, 0, 0, 0]);
    assert_eq!(buf[8..10], [0x08, 0x12]);
    let (c, buf) = data_in(&d, &[0x5a, 0x10, 0x0a, 0, 0, 0, 0, 0, 4, 0], 64);
    assert_eq!(c, Completion::good(60));
    assert_eq!(buf[..4], [0, 34, 0, 0x10]);
    let (c, _) = data_in(&d, &[0x1a, 0, 0xc8, 0, 255, 0], 255);
    assert_eq!(
        sense(&c),
        illegal(Asc::SAVING_PARAMETERS_NOT_SUPPORTED, None)
    );
    let (c, _) = data_in(&d, &[0x1a, 0, 0x19, 0, 255, 0], 255);
    assert_eq!(
        sense(&c),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((2, Some(5))))
    );
}

#[test]
fn report_supported_operation_codes_spc3_6_23() {
    let (_dir, d) = open(512);
    let (c, buf) = data_in(&d, &[0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0], 512);
    let listed = 4 + 8 * DISK_COMMANDS.len();
    assert_eq!(c, Completion::good(512 - listed));
    let ops: Vec<u8> = buf[4..listed].chunks(8).map(|d| d[0]).collect();
    assert_eq!(
        ops,
        [
            0x00, 0x03, 0x08, 0x0a, 0x12, 0x15, 0x16, 0x17, 0x1a, 0x1b, 0x1e, 0x25, 0x28, 0x2a,
            0x2e, 0x2f, 0x34, 0x35, 0x37, 0x41, 0x42, 0x48, 0x48, 0x48, 0x55, 0x56, 0x57, 0x5a,
            0x5e, 0x5e, 0x5e, 0x5e, 0x5f, 0x5f, 0x5f, 0x5f, 0x5f, 0x5f, 0x5f, 0x5f, 0x88, 0x89,
            0x8a, 0x8b, 0x8e, 0x8f, 0x90, 0x91, 0x93, 0x9c, 0x9e, 0x9e, 0xa3, 0xa8, 0xaa, 0xae,
            0xaf, 0xb7
        ]
    );
    let (c, buf) = data_in(
        &d,
        &[0xa3, 0x0c, 0x02, 0x9e, 0, 0x10, 0, 0, 0, 20, 0, 0],
        20,
    );
    assert_eq!(c, Completion::good(0));
    assert_eq!(buf[..6], [0, 3, 0, 16, 0x9e, 0x10]);
    let (c, _) = data_in(&d, &[0xa3, 0x0c, 0x01, 0x9e, 0, 0, 0, 0, 0, 20, 0, 0], 20);
    assert_eq!(
        sense(&c),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((2, Some(2))))
    );
    // RCTD: 20-byte descriptors (8 + command timeouts descriptor).
    let (c, buf) = data_in(&d, &[0xa3, 0x0c, 0x80, 0, 0, 0, 0, 0x08, 0, 0, 0, 0], 2048);
    let listed = 4 + 20 * DISK_COMMANDS.len();
    assert_eq!(c, Completion::good(2048 - listed));
    assert!(buf[4..listed]
        .chunks(20)
        .all(|d| d[5] & 0x02 != 0 && d[8..10] == [0, 0x0a]));
    let (c, _) = data_in(&d, &[0xa3, 0x05, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0], 20);
    assert_eq!(
        sense(&c),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((1, Some(4))))
    );
}

#[test]
fn block_backend_exposes_the_raw_file() {
    let (_dir, d) = open(4096);
    let b = d.block_backend().unwrap();
    assert_eq!(
        (b.offset, b.block_size, b.blocks, b.direct, b.read_only),
        (0, 4096, BLOCKS, true, false)
    );
    let data = pattern(4096, 2);
    assert!(data_out(&d, &ReadWriteCdb::write_16(2, 1, false), &data).is_good());
    let mut back = AlignedBuf::new(4096);
    b.file.read_exact_at(back.as_mut_slice(), 2 * 4096).unwrap();
    assert_eq!(back.as_mut_slice(), &data[..]);
}

#[test]
fn concurrent_commands_on_one_disk() {
    let (_dir, d) = open(512);
    let d = Arc::new(d);
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let d = Arc::clone(&d);
            std::thread::spawn(move || {
                let data = pattern(8 * 512, t);
                let lba = u64::from(t) * 8;
                for _ in 0..20 {
                    assert!(data_out(&d, &ReadWriteCdb::write_16(lba, 8, false), &data).is_good());
                    let (c, back) = data_in(&d, &ReadWriteCdb::read_16(lba, 8), data.len());
                    assert!(c.is_good());
                    assert_eq!(back, data);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[path = "disk_sbc_tests.rs"]
mod sbc;
