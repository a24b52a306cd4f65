//! Thin provisioning, COMPARE AND WRITE, ORWRITE, START STOP UNIT, SANITIZE and the other
//! SBC-3 commands of the emulated disk: exact data and exact sense, by clause.

use super::*;
use crate::scsi::sbc_provisioning::UnmapRange;

fn none(d: &EmulatedDisk, cdb: &[u8]) -> Completion {
    d.execute(cdb, DataDirection::None).unwrap()
}

fn read(d: &EmulatedDisk, lba: u64, blocks: u32) -> Vec<u8> {
    let bs = d.block_size() as usize;
    let (c, buf) = data_in(d, &ReadWriteCdb::read_16(lba, blocks), blocks as usize * bs);
    assert!(c.is_good(), "{c:?}");
    buf
}

fn write(d: &EmulatedDisk, lba: u64, data: &[u8]) {
    let blocks = (data.len() / d.block_size() as usize) as u32;
    assert!(data_out(d, &ReadWriteCdb::write_16(lba, blocks, false), data).is_good());
}

fn ws16(lba: u64, blocks: u32, b1: u8) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x93;
    c[1] = b1;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&blocks.to_be_bytes());
    c
}

fn get_lba_status(d: &EmulatedDisk, lba: u64, alloc: u32) -> (Completion, Vec<u8>) {
    let mut c = [0u8; 16];
    c[0] = 0x9e;
    c[1] = 0x12;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&alloc.to_be_bytes());
    data_in(d, &c, alloc as usize)
}

fn unmap(d: &EmulatedDisk, ranges: &[(u64, u32)]) -> Completion {
    let list = crate::scsi::sbc_provisioning::UnmapList {
        ranges: ranges
            .iter()
            .map(|&(lba, blocks)| UnmapRange { lba, blocks })
            .collect(),
    }
    .encode();
    let [h, l] = (list.len() as u16).to_be_bytes();
    data_out(d, &[0x42, 0, 0, 0, 0, 0, 0, h, l, 0], &list)
}

fn caw(d: &EmulatedDisk, lba: u64, blocks: u8, data: &[u8]) -> Completion {
    let mut c = [0u8; 16];
    c[0] = 0x89;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[13] = blocks;
    data_out(d, &c, data)
}

#[test]
fn vpd_b0_b1_b2_and_read_capacity_16_describe_a_thin_disk() {
    let (_dir, d) = open(512);
    let (_, page) = data_in(&d, &[0x12, 1, 0xb0, 0, 255, 0], 64);
    assert_eq!(page[..4], [0, 0xb0, 0, 0x3c]);
    // WSNZ 0, MAXIMUM COMPARE AND WRITE LENGTH 255, granularity 8, MAXIMUM TRANSFER LENGTH
    // 32768 blocks (16 MiB), OPTIMAL 2048 (1 MiB).
    assert_eq!(page[4..16], [0, 255, 0, 8, 0, 0, 0x80, 0, 0, 0, 8, 0]);
    // MAXIMUM UNMAP LBA COUNT 2^20, DESCRIPTOR COUNT 256, OPTIMAL UNMAP GRANULARITY 8,
    // UGAVALID with alignment 0, MAXIMUM WRITE SAME LENGTH 32768.
    assert_eq!(
        page[20..44],
        [0, 0x10, 0, 0, 0, 0, 1, 0, 0, 0, 0, 8, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0]
    );
    // MAXIMUM ATOMIC TRANSFER LENGTH 2048 blocks (1 MiB), no alignment or granularity.
    assert_eq!(page[44..48], [0, 0, 0x08, 0]);
    assert!(page[48..64].iter().all(|&b| b == 0));
    let (_, page) = data_in(&d, &[0x12, 1, 0xb1, 0, 255, 0], 64);
    assert_eq!(page[..8], [0, 0xb1, 0, 0x3c, 0, 1, 0, 0x40]);
    let (_, page) = data_in(&d, &[0x12, 1, 0xb2, 0, 255, 0], 8);
    assert_eq!(page, [0, 0xb2, 0, 4, 0, 0xe4, 0x02, 0]);
    let mut rc16 = [0u8; 16];
    rc16[0] = 0x9e;
    rc16[1] = 0x10;
    rc16[13] = 32;
    let (_, buf) = data_in(&d, &rc16, 32);
    // LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT 0 (see `physical_exponent`); LBPME, LBPRZ.
    assert_eq!(buf[8..16], [0, 0, 2, 0, 0, 0, 0xc0, 0]);
}

#[test]
fn write_same_writes_unmaps_and_refuses_exactly() {
    let (_dir, d) = open(512);
    let block = pattern(512, 9);
    // 10 blocks of the pattern from LBA 3.
    assert!(data_out(&d, &ws16(3, 10, 0), &block).is_good());
    let got = read(&d, 2, 12);
    assert_eq!(got[..512], [0u8; 512]);
    for b in got[512..11 * 512].chunks(512) {
        assert_eq!(b, &block[..]);
    }
    assert_eq!(got[11 * 512..], [0u8; 512]);
    // WRITE SAME(10) with NUMBER OF LOGICAL BLOCKS 0: through the last block.
    assert!(data_out(&d, &[0x41, 0, 0, 0, 0, 60, 0, 0, 0, 0], &block).is_good());
    assert_eq!(read(&d, 63, 1), block);
    // UNMAP bit: the blocks read as zeros whatever the data-out block holds.
    assert!(data_out(&d, &ws16(56, 8, 0x08), &block).is_good());
    assert!(read(&d, 56, 8).iter().all(|&b| b == 0));
    // NDOB: no data-out, zeros written.
    assert!(none(&d, &ws16(3, 2, 0x01)).is_good());
    assert!(read(&d, 3, 2).iter().all(|&b| b == 0));
    // A data-out that is not one block; more than MAXIMUM WRITE SAME LENGTH; ANCHOR; past
    // the end.
    assert_eq!(
        sense(&data_out(&d, &ws16(0, 1, 0), &block[..256])),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((10, None)))
    );
    let (_big_dir, big) = open_with(512, |o| o.create_size = Some((1 << 16) * 512));
    assert_eq!(
        sense(&data_out(&big, &ws16(0, 0, 0), &block)),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((10, None)))
    );
    assert!(data_out(&big, &ws16(1 << 15, 0, 0x08), &block).is_good());
    assert_eq!(
        sense(&data_out(&d, &ws16(0, 1, 0x10), &block)),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((1, Some(4))))
    );
    assert_eq!(
        sense(&data_out(&d, &ws16(64, 1, 0), &block)),
        illegal(Asc::LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE, None)
    );
    assert_eq!(
        sense(&data_out(&d, &ws16(65, 0, 0), &block)),
        illegal(Asc::LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE, None)
    );
}

#[test]
fn unmap_punches_holes_that_get_lba_status_reports() {
    let (dir, d) = open(512);
    write(&d, 0, &pattern(64 * 512, 3));
    // Blocks 16-23 (one 4 KiB file system block) and 40-47.
    assert!(unmap(&d, &[(16, 8), (40, 8)]).is_good());
    assert!(read(&d, 16, 8).iter().all(|&b| b == 0));
    assert_eq!(read(&d, 24, 1), pattern(64 * 512, 3)[24 * 512..25 * 512]);
    let (c, buf) = get_lba_status(&d, 0, 1024);
    assert_eq!(c, Completion::good(1024 - 88));
    assert_eq!(buf[..8], [0, 0, 0, 84, 0, 0, 0, 0]);
    let runs: Vec<(u64, u32, u8)> = buf[8..88]
        .chunks(16)
        .map(|d| {
            (
                u64::from_be_bytes(d[..8].try_into().unwrap()),
                u32::from_be_bytes(d[8..12].try_into().unwrap()),
                d[12],
            )
        })
        .collect();
    assert_eq!(
        runs,
        [(0, 16, 0), (16, 8, 1), (24, 16, 0), (40, 8, 1), (48, 16, 0)]
    );
    // From inside a run; the allocation length limits the descriptors (24: one).
    let (_, buf) = get_lba_status(&d, 42, 24);
    assert_eq!(
        buf[8..24],
        [0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 6, 1, 0, 0, 0]
    );
    // The image's blocks were given back.
    let used = std::os::unix::fs::MetadataExt::blocks(
        &std::fs::metadata(dir.path().join("d.img")).unwrap(),
    );
    assert_eq!(used * 512, 48 * 512);
    // Past the last LBA: 05/21/00 (LBA == capacity included).
    let (c, _) = get_lba_status(&d, 64, 24);
    assert_eq!(
        sense(&c),
        illegal(Asc::LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE, None)
    );
    // UNMAP checks every descriptor first: one past the end unmaps nothing.
    assert_eq!(
        sense(&unmap(&d, &[(0, 8), (60, 8)])),
        illegal(Asc::LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE, None)
    );
    assert_eq!(read(&d, 0, 1), pattern(64 * 512, 3)[..512]);
    // No descriptors, zero-block ones, a header-only list: GOOD.
    assert!(unmap(&d, &[]).is_good());
    assert!(unmap(&d, &[(64, 0)]).is_good());
    assert!(none(&d, &[0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_good());
    // A list shorter than its header: 05/1A/00; ANCHOR: 05/24/00 at byte 1 bit 0.
    let c = data_out(&d, &[0x42, 0, 0, 0, 0, 0, 0, 0, 6, 0], &[0; 6]);
    assert_eq!(sense(&c).1, Asc::PARAMETER_LIST_LENGTH_ERROR);
    let c = data_out(
        &d,
        &[0x42, 1, 0, 0, 0, 0, 0, 0, 8, 0],
        &[0, 6, 0, 0, 0, 0, 0, 0],
    );
    assert_eq!(
        sense(&c),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((1, Some(0))))
    );
}

#[test]
fn compare_and_write_writes_on_a_match_only() {
    let (_dir, d) = open(512);
    let old = pattern(1024, 1);
    let new = pattern(1024, 2);
    write(&d, 4, &old);
    let mut both = old.clone();
    both.extend_from_slice(&new);
    assert!(caw(&d, 4, 2, &both).is_good());
    assert_eq!(read(&d, 4, 2), new);
    // Now `old` no longer matches: MISCOMPARE with INFORMATION = offset of the first
    // difference in the data-out, nothing written.
    let mut stale = new.clone();
    stale[700] ^= 0xff;
    stale.extend_from_slice(&old);
    let c = caw(&d, 4, 2, &stale);
    let s = c.decoded_sense().unwrap();
    assert_eq!(
        (s.key, s.asc, s.information),
        (
            SenseKey::MISCOMPARE,
            Asc::MISCOMPARE_DURING_VERIFY_OPERATION,
            Some(700)
        )
    );
    // Fixed format: VALID, sense key 0Eh, INFORMATION bytes 3-6.
    assert_eq!(c.sense[..7], [0xf0, 0, 0x0e, 0, 0, 0x02, 0xbc]);
    assert_eq!(read(&d, 4, 2), new);
    // NUMBER OF LOGICAL BLOCKS 0: nothing (any up to 255 is taken); a data-out that is not
    // twice the blocks: 24/00 at byte 13; past the end: 21/00.
    assert!(caw(&d, 4, 0, &[]).is_good());
    // 256 blocks' worth of data with the count byte 0 (256 does not fit): 24/00.
    assert_eq!(
        sense(&caw(&d, 0, 0, &vec![0; 512 * 512])),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((13, None)))
    );
    assert_eq!(
        sense(&caw(&d, 4, 2, &both[..1536])),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((13, None)))
    );
    assert_eq!(
        sense(&caw(&d, 63, 2, &both)),
        illegal(Asc::LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE, None)
    );
    let (_ro_dir, ro) = open_with(512, |o| o.read_only = true);
    assert_eq!(sense(&caw(&ro, 0, 1, &[0; 1024])).1, Asc::WRITE_PROTECTED);
}

#[test]
fn orwrite_ors_the_data_in() {
    let (_dir, d) = open(512);
    write(&d, 1, &vec![0x0f; 512]);
    let mut c = [0u8; 16];
    c[0] = 0x8b;
    c[9] = 1;
    c[13] = 1;
    assert!(data_out(&d, &c, &vec![0xa0; 512]).is_good());
    assert_eq!(read(&d, 1, 1), vec![0xaf; 512]);
    c[13] = 0;
    assert!(none(&d, &c).is_good());
    c[9] = 65;
    assert_eq!(
        sense(&none(&d, &c)),
        illegal(Asc::LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE, None)
    );
}

#[test]
fn start_stop_prefetch_prevent_and_defects() {
    let (_dir, d) = open(512);
    // No power conditions: stopping leaves the unit ready (as LIO and tgt).
    assert!(none(&d, &[0x1b, 0, 0, 0, 0, 0]).is_good());
    assert!(none(&d, &[0; 6]).is_good());
    assert!(none(&d, &[0x1b, 1, 0, 0, 0x31, 0]).is_good());
    // LOEJ: this medium cannot be ejected; with a POWER CONDITION, LOEJ is ignored.
    assert_eq!(
        sense(&none(&d, &[0x1b, 0, 0, 0, 0x02, 0])),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((4, Some(1))))
    );
    assert!(none(&d, &[0x1b, 0, 0, 0, 0x42, 0]).is_good());
    // PRE-FETCH: GOOD within the medium, 21/00 past it; PREFETCH LENGTH 0 is to the end.
    assert!(none(&d, &[0x34, 0, 0, 0, 0, 60, 0, 0, 4, 0]).is_good());
    assert!(none(&d, &[0x34, 0, 0, 0, 0, 64, 0, 0, 0, 0]).is_good());
    assert_eq!(
        sense(&none(&d, &[0x34, 0, 0, 0, 0, 61, 0, 0, 4, 0])),
        illegal(Asc::LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE, None)
    );
    assert!(none(&d, &[0x1e, 0, 0, 0, 1, 0]).is_good());
    assert!(none(&d, &[0x1e, 0, 0, 0, 0, 0]).is_good());
    let (c, buf) = data_in(&d, &[0x37, 0, 0x18, 0, 0, 0, 0, 0, 32, 0], 32);
    assert_eq!(
        (c, buf[..4].to_vec()),
        (Completion::good(28), vec![0, 0x18, 0, 0])
    );
}

#[test]
fn a_removable_disk_ejects_and_loads_its_medium() {
    let (_dir, d) = open_with(512, |o| o.removable = true);
    let (_, inq) = data_in(&d, &[0x12, 0, 0, 0, 36, 0], 36);
    assert_eq!(inq[1], 0x80, "RMB");
    // LOEJ + START 0 ejects (IMMED or not).
    assert!(none(&d, &[0x1b, 1, 0, 0, 0x02, 0]).is_good());
    let no_medium = (SenseKey::NOT_READY, Asc::MEDIUM_NOT_PRESENT, None);
    assert_eq!(sense(&none(&d, &[0; 6])), no_medium);
    let (c, _) = data_in(&d, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8);
    assert_eq!(sense(&c), no_medium);
    let (c, _) = data_in(&d, &ReadWriteCdb::read_16(0, 1), 512);
    assert_eq!(sense(&c), no_medium);
    assert_eq!(sense(&data_out(&d, &ws16(0, 1, 0), &[0; 512])), no_medium);
    let (c, buf) = data_in(&d, &[0x03, 0, 0, 0, 18, 0], 18);
    assert!(c.is_good());
    assert_eq!((buf[2], buf[12], buf[13]), (0x02, 0x3a, 0x00));
    assert!(data_in(&d, &[0x12, 0, 0, 0, 36, 0], 36).0.is_good());
    assert!(data_in(&d, &[0x1a, 0, 0x3f, 0, 255, 0], 255).0.is_good());
    assert!(none(&d, &[0x1e, 0, 0, 0, 0, 0]).is_good());
    // LOEJ + START 1 loads it again.
    assert!(none(&d, &[0x1b, 0, 0, 0, 0x03, 0]).is_good());
    assert!(none(&d, &[0; 6]).is_good());
}

#[test]
fn sanitize_overwrites_and_erases() {
    let (_dir, d) = open(512);
    write(&d, 0, &pattern(64 * 512, 5));
    // OVERWRITE, 1 pass, a 4-byte pattern repeated through each block.
    let list = [0x01, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef];
    let c = data_out(&d, &[0x48, 0x01, 0, 0, 0, 0, 0, 0, 8, 0], &list);
    assert!(c.is_good(), "{c:?}");
    let all = read(&d, 0, 64);
    assert!(all.chunks(4).all(|w| w == [0xde, 0xad, 0xbe, 0xef]));
    // Two passes with INVERT: the second pass writes the inverse.
    let list = [0x82, 0, 0, 1, 0x0f];
    assert!(data_out(&d, &[0x48, 0x01, 0, 0, 0, 0, 0, 0, 5, 0], &list).is_good());
    assert!(read(&d, 0, 64).iter().all(|&b| b == 0xf0));
    // BLOCK ERASE: every block reads as zeros and is deallocated.
    assert!(none(&d, &[0x48, 0x02, 0, 0, 0, 0, 0, 0, 0, 0]).is_good());
    assert!(read(&d, 0, 64).iter().all(|&b| b == 0));
    let (_, buf) = get_lba_status(&d, 0, 24);
    assert_eq!(
        buf[8..24],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 0]
    );
    // CRYPTOGRAPHIC ERASE and reserved service actions: 24/00 at byte 1.
    assert_eq!(
        sense(&none(&d, &[0x48, 0x03, 0, 0, 0, 0, 0, 0, 0, 0])),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((1, Some(4))))
    );
    // EXIT FAILURE MODE outside failure: GOOD.
    assert!(none(&d, &[0x48, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0]).is_good());
}

#[test]
fn while_a_sanitize_runs_only_inquiry_and_request_sense_pass() {
    let (_dir, d) = open(512);
    d.unit.set_progress_for_test(Some((1, 4)));
    let in_progress = sense(&none(&d, &[0; 6]));
    assert_eq!(
        in_progress,
        (
            SenseKey::NOT_READY,
            Asc::LOGICAL_UNIT_NOT_READY_SANITIZE_IN_PROGRESS,
            Some(SenseKeySpecific::Progress(0x4000))
        )
    );
    let (c, _) = data_in(&d, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8);
    assert_eq!(
        sense(&c).1,
        Asc::LOGICAL_UNIT_NOT_READY_SANITIZE_IN_PROGRESS
    );
    assert!(data_in(&d, &[0x12, 0, 0, 0, 36, 0], 36).0.is_good());
    let (c, buf) = data_in(&d, &[0x03, 0, 0, 0, 18, 0], 18);
    assert!(c.is_good());
    // NOT READY 04/1B with SKSV and the progress 4000h (a quarter done).
    assert_eq!(buf[2], 0x02);
    assert_eq!(buf[12..18], [0x04, 0x1b, 0, 0x80, 0x40, 0x00]);
    d.unit.set_progress_for_test(None);
    assert!(none(&d, &[0; 6]).is_good());
}

#[test]
fn write_atomic_writes_whole_through_its_journal() {
    let (dir, d) = open(512);
    let atomic = |lba: u64, blocks: u16| {
        let mut c = [0u8; 16];
        c[0] = 0x9c;
        c[2..10].copy_from_slice(&lba.to_be_bytes());
        c[12..14].copy_from_slice(&blocks.to_be_bytes());
        c
    };
    let data = pattern(4 * 512, 7);
    assert!(data_out(&d, &atomic(10, 4), &data).is_good());
    assert_eq!(read(&d, 10, 4), data);
    // The journal's record was cleared after the write.
    let journal = std::fs::read(dir.path().join("d.img.atomic")).unwrap();
    assert!(journal[..512].iter().all(|&b| b == 0));
    // 0 blocks: nothing; past the end: 21/00; fewer bytes than asked: 24/00 at byte 12;
    // more blocks than MAXIMUM ATOMIC TRANSFER LENGTH (2048): 24/00 at byte 12.
    assert!(none(&d, &atomic(0, 0)).is_good());
    assert_eq!(
        sense(&data_out(&d, &atomic(62, 4), &data)),
        illegal(Asc::LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE, None)
    );
    assert_eq!(
        sense(&data_out(&d, &atomic(0, 4), &data[..1024])),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((12, None)))
    );
    assert_eq!(
        read(&d, 0, 1),
        vec![0; 512],
        "nothing of a short one written"
    );
    assert_eq!(
        sense(&none(&d, &atomic(0, 2049))),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((12, None)))
    );
    // An ATOMIC BOUNDARY: not supported.
    let mut c = atomic(0, 1);
    c[11] = 1;
    assert_eq!(
        sense(&data_out(&d, &c, &data[..512])),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((10, None)))
    );
}

/// MODE SELECT(6) of the Control page with SWP as given (libiscsi's set_swp/clear_swp list).
fn select_swp(d: &EmulatedDisk, swp: bool) -> Completion {
    let list = [
        0,
        0,
        0,
        0,
        0x0a,
        0x0a,
        0x02,
        0x10,
        u8::from(swp) << 3,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    data_out(d, &[0x15, 0x10, 0, 0, 16, 0], &list)
}

#[test]
fn mode_select_sets_swp_and_swp_refuses_every_write_spc4_7_5_8() {
    let (_dir, d) = open(512);
    write(&d, 0, &pattern(4 * 512, 1));
    // PAGE CONTROL 01b: SWP (byte 4 of the Control page, bit 3) is changeable; nothing else.
    let (_, buf) = data_in(&d, &[0x1a, 0x08, 0x4a, 0, 255, 0], 255);
    assert_eq!(
        buf[..16],
        [15, 0, 0x10, 0, 0x0a, 0x0a, 0, 0, 0x08, 0, 0, 0, 0, 0, 0, 0]
    );
    let log = d.unit_attentions().unwrap();
    let before = log.latest();
    assert_eq!(select_swp(&d, true), Completion::good(0));
    // PAGE CONTROL 00b: SWP set, and WP in the DEVICE-SPECIFIC PARAMETER.
    let (_, buf) = data_in(&d, &[0x1a, 0x08, 0x0a, 0, 255, 0], 255);
    assert_eq!(
        buf[..16],
        [15, 0, 0x90, 0, 0x0a, 0x0a, 0x02, 0x10, 0x08, 0, 0, 0, 0, 0, 0, 0]
    );
    // 00h default values: SWP 0.
    let (_, buf) = data_in(&d, &[0x1a, 0x08, 0x8a, 0, 255, 0], 255);
    assert_eq!(buf[8], 0);
    assert_eq!(
        log.after(before),
        Some((before + 1, Asc::MODE_PARAMETERS_CHANGED))
    );
    // The same values again change nothing: no second unit attention.
    assert!(select_swp(&d, true).is_good());
    assert_eq!(log.latest(), before + 1);
    let protected = (
        SenseKey::DATA_PROTECT,
        Asc::LOGICAL_UNIT_SOFTWARE_WRITE_PROTECTED,
        None,
    );
    let block = pattern(512, 9);
    let wv10 = [0x2e, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    let orwrite = [0x8b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0];
    let atomic = [0x9c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0];
    for (what, c) in [
        ("WRITE(6)", data_out(&d, &[0x0a, 0, 0, 0, 1, 0], &block)),
        (
            "WRITE(16)",
            data_out(&d, &ReadWriteCdb::write_16(0, 1, false), &block),
        ),
        ("WRITE AND VERIFY(10)", data_out(&d, &wv10, &block)),
        ("WRITE SAME(16)", data_out(&d, &ws16(0, 1, 0), &block)),
        ("UNMAP", unmap(&d, &[(0, 1)])),
        (
            "COMPARE AND WRITE",
            caw(
                &d,
                0,
                1,
                &[pattern(4 * 512, 1)[..512].to_vec(), block.clone()].concat(),
            ),
        ),
        ("ORWRITE", data_out(&d, &orwrite, &block)),
        ("WRITE ATOMIC", data_out(&d, &atomic, &block)),
        (
            "SANITIZE OVERWRITE",
            data_out(
                &d,
                &[0x48, 0x01, 0, 0, 0, 0, 0, 0, 5, 0],
                &[0x01, 0, 0, 1, 0xaa],
            ),
        ),
        (
            "SANITIZE BLOCK ERASE",
            none(&d, &[0x48, 0x02, 0, 0, 0, 0, 0, 0, 0, 0]),
        ),
    ] {
        assert_eq!(sense(&c), protected, "{what}");
    }
    // Reads still work and nothing was written; the copy manager's fast path is read-only.
    assert_eq!(read(&d, 0, 4), pattern(4 * 512, 1));
    assert!(d.block_backend().unwrap().read_only);
    // SWP cleared: writes again, and a second MODE PARAMETERS CHANGED.
    assert!(select_swp(&d, false).is_good());
    assert_eq!(log.latest(), before + 2);
    write(&d, 0, &block);
    assert!(!d.block_backend().unwrap().read_only);
}

#[test]
fn mode_select_refusals_change_nothing() {
    let (_dir, d) = open(512);
    // D_SENSE (not changeable) beside SWP: 26/00 at byte 6 bit 2, SWP stays 0.
    let list = [
        0, 0, 0, 0, 0x0a, 0x0a, 0x06, 0x10, 0x08, 0, 0, 0, 0, 0, 0, 0,
    ];
    let c = data_out(&d, &[0x15, 0x10, 0, 0, 16, 0], &list);
    assert_eq!(
        sense(&c),
        (
            SenseKey::ILLEGAL_REQUEST,
            Asc::INVALID_FIELD_IN_PARAMETER_LIST,
            Some(SenseKeySpecific::Field {
                command: false,
                bit: Some(2),
                pointer: 6
            })
        )
    );
    write(&d, 0, &pattern(512, 3));
    assert_eq!(d.unit_attentions().unwrap().latest(), 0);
    // PARAMETER LIST LENGTH beyond the data sent: 1A/00.
    let c = data_out(&d, &[0x15, 0x10, 0, 0, 20, 0], &list);
    assert_eq!(sense(&c), illegal(Asc::PARAMETER_LIST_LENGTH_ERROR, None));
    // SP=1: 24/00 at byte 1 bit 0; PF=0: byte 1 bit 4.
    let c = data_out(&d, &[0x55, 0x11, 0, 0, 0, 0, 0, 0, 16, 0], &list);
    assert_eq!(
        sense(&c),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((1, Some(0))))
    );
    let c = data_out(&d, &[0x15, 0, 0, 0, 16, 0], &list);
    assert_eq!(
        sense(&c),
        illegal(Asc::INVALID_FIELD_IN_CDB, Some((1, Some(4))))
    );
    // PARAMETER LIST LENGTH 0: nothing to do.
    assert!(none(&d, &[0x15, 0x10, 0, 0, 0, 0]).is_good());
}
