use super::*;
use crate::{Asc, Sense};

fn pointer(e: DecodeError) -> (Asc, Option<u16>) {
    let s = Sense::from(e);
    (s.asc, s.field_pointer())
}

#[test]
fn compare_and_write() {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x89;
    cdb[1] = 0x18;
    cdb[2..10].copy_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
    cdb[13] = 3;
    assert_eq!(
        CompareAndWriteCdb::decode(&cdb),
        Ok(CompareAndWriteCdb {
            lba: 0x0102_0304_0506_0708,
            blocks: 3,
            fua: true,
            dpo: true
        })
    );
    cdb[1] = 0x20;
    assert_eq!(
        pointer(CompareAndWriteCdb::decode(&cdb).unwrap_err()),
        (Asc::INVALID_FIELD_IN_CDB, Some(1))
    );
    assert!(CompareAndWriteCdb::decode(&cdb[..15]).is_err());
}

#[test]
fn orwrite_and_write_atomic() {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x8b;
    cdb[1] = 0x08;
    cdb[9] = 7;
    cdb[13] = 2;
    let c = decode_orwrite_16(&cdb).unwrap();
    assert_eq!((c.lba, c.blocks, c.fua, c.length_offset), (7, 2, true, 10));
    let mut cdb = [0u8; 16];
    cdb[0] = 0x9c;
    cdb[9] = 9;
    cdb[12] = 0x01;
    cdb[13] = 0x00;
    let c = decode_write_atomic_16(&cdb).unwrap();
    assert_eq!((c.lba, c.blocks, c.length_offset), (9, 256, 12));
    assert_eq!((c.fua, c.dpo), (false, false));
    cdb[1] = 0x10;
    let c = decode_write_atomic_16(&cdb).unwrap();
    assert_eq!((c.fua, c.dpo), (false, true));
    cdb[1] = 0;
    cdb[11] = 1;
    assert_eq!(
        pointer(decode_write_atomic_16(&cdb).unwrap_err()),
        (Asc::INVALID_FIELD_IN_CDB, Some(10))
    );
}

#[test]
fn prefetch_start_stop_prevent() {
    assert_eq!(
        PrefetchCdb::decode(&[0x34, 0x02, 0, 0, 1, 0, 0, 0, 8, 0]),
        Ok(PrefetchCdb {
            lba: 256,
            blocks: 8,
            immed: true
        })
    );
    let mut p16 = [0u8; 16];
    p16[0] = 0x90;
    p16[9] = 1;
    p16[13] = 4;
    assert_eq!(
        PrefetchCdb::decode(&p16),
        Ok(PrefetchCdb {
            lba: 1,
            blocks: 4,
            immed: false
        })
    );
    assert_eq!(
        StartStopUnitCdb::decode(&[0x1b, 1, 0, 0, 0x03, 0]),
        Ok(StartStopUnitCdb {
            immed: true,
            power_condition: 0,
            load_eject: true,
            start: true
        })
    );
    for pc in 1u8..16 {
        let c = StartStopUnitCdb::decode(&[0x1b, 0, 0, 0, (pc << 4) | 2, 0]).unwrap();
        assert_eq!((c.power_condition, c.load_eject), (pc, true));
    }
    assert_eq!(decode_prevent_allow(&[0x1e, 0, 0, 0, 1, 0]), Ok(true));
    assert_eq!(decode_prevent_allow(&[0x1e, 0, 0, 0, 0, 0]), Ok(false));
    assert!(decode_prevent_allow(&[0x1e, 0, 0, 0, 2, 0]).is_err());
}

#[test]
fn read_defect_data() {
    let c = ReadDefectDataCdb::decode(&[0x37, 0, 0x18 | 5, 0, 0, 0, 0, 0, 32, 0]).unwrap();
    assert_eq!(c.empty_list(), [0, 0x1d, 0, 0]);
    let c = ReadDefectDataCdb::decode(&[0xb7, 0x08 | 4, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]).unwrap();
    assert_eq!(c.allocation_length, 256);
    assert_eq!(c.empty_list(), [0, 0x0c, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn sanitize_cdb_and_overwrite_list() {
    let cdb = |b1: u8, len: u16| {
        let [h, l] = len.to_be_bytes();
        [0x48, b1, 0, 0, 0, 0, 0, h, l, 0]
    };
    assert_eq!(
        SanitizeCdb::decode(&cdb(0x82, 0), 512),
        Ok(SanitizeCdb {
            immed: true,
            ause: false,
            action: SanitizeAction::BlockErase,
            parameter_list_length: 0
        })
    );
    assert_eq!(
        SanitizeCdb::decode(&cdb(0x21, 516), 512).map(|c| (c.action, c.ause)),
        Ok((SanitizeAction::Overwrite, true))
    );
    for sa in [0u8, 3, 4, 0x1e] {
        assert_eq!(
            pointer(SanitizeCdb::decode(&cdb(sa, 0), 512).unwrap_err()),
            (Asc::INVALID_FIELD_IN_CDB, Some(1))
        );
    }
    let mut reserved = cdb(0x42, 0);
    assert_eq!(
        pointer(SanitizeCdb::decode(&reserved, 512).unwrap_err()),
        (Asc::INVALID_FIELD_IN_CDB, Some(1))
    );
    for byte in 2..=6 {
        reserved = cdb(0x02, 0);
        reserved[byte] = 1;
        assert_eq!(
            pointer(SanitizeCdb::decode(&reserved, 512).unwrap_err()),
            (Asc::INVALID_FIELD_IN_CDB, Some(byte as u16))
        );
    }
    for (sa, len) in [(0x01, 4), (0x01, 517), (0x02, 8), (0x1f, 8)] {
        assert_eq!(
            pointer(SanitizeCdb::decode(&cdb(sa, len), 512).unwrap_err()),
            (Asc::INVALID_FIELD_IN_CDB, Some(7))
        );
    }
    let mut list = vec![0x81, 0, 0, 4, 0xaa, 0xbb, 0xcc, 0xdd];
    assert_eq!(
        OverwriteParameters::decode(&list, 8, 512),
        Ok(OverwriteParameters {
            invert: true,
            count: 1,
            pattern: vec![0xaa, 0xbb, 0xcc, 0xdd]
        })
    );
    list[0] = 0;
    assert_eq!(
        pointer(OverwriteParameters::decode(&list, 8, 512).unwrap_err()),
        (Asc::INVALID_FIELD_IN_PARAMETER_LIST, Some(0))
    );
    list[0] = 1;
    list[3] = 5;
    assert_eq!(
        pointer(OverwriteParameters::decode(&list, 8, 512).unwrap_err()),
        (Asc::INVALID_FIELD_IN_PARAMETER_LIST, Some(2))
    );
    list[3] = 0;
    assert!(OverwriteParameters::decode(&list, 8, 512).is_err());
    assert_eq!(
        Sense::from(OverwriteParameters::decode(&list, 9, 512).unwrap_err()).asc,
        Asc::PARAMETER_LIST_LENGTH_ERROR
    );
}

#[test]
fn progress_fraction() {
    assert_eq!(progress(0, 10), 0);
    assert_eq!(progress(5, 10), 0x8000);
    assert_eq!(progress(10, 10), u16::MAX);
    assert_eq!(progress(1, 0), 0);
}

/// START STOP UNIT byte 4: START bit 0, LOEJ bit 1, each on its own; READ DEFECT DATA's
/// REQ_PLIST (bit 4) and REQ_GLIST (bit 3) likewise.
#[test]
fn start_stop_and_defect_list_bits() {
    for (b4, start, loej) in [
        (0x00, false, false),
        (0x01, true, false),
        (0x02, false, true),
    ] {
        let c = StartStopUnitCdb::decode(&[0x1b, 0, 0, 0, b4, 0]).unwrap();
        assert_eq!((c.start, c.load_eject), (start, loej), "{b4:02x}");
    }
    let c = ReadDefectDataCdb::decode(&[0x37, 0, 0x10 | 5, 0, 0, 0, 0, 0, 32, 0]).unwrap();
    assert_eq!((c.primary, c.grown, c.format), (true, false, 5));
}

/// SANITIZE byte 1: IMMED bit 7 and AUSE bit 5 apart; OVERWRITE's pattern may be a whole
/// block, not more, and not empty even when the list is just its header; INVERT bit 7.
#[test]
fn sanitize_bits_and_overwrite_pattern_bounds() {
    let cdb = |b1: u8, len: u16| {
        let [h, l] = len.to_be_bytes();
        [0x48, b1, 0, 0, 0, 0, 0, h, l, 0]
    };
    let c = SanitizeCdb::decode(&cdb(0x21, 516), 512).unwrap();
    assert_eq!((c.immed, c.ause), (false, true));
    let whole = |n: usize| {
        let [h, l] = (n as u16).to_be_bytes();
        let mut list = vec![0x01, 0, h, l];
        list.extend(std::iter::repeat_n(0x5a, n));
        list
    };
    let p = OverwriteParameters::decode(&whole(512), 516, 512).unwrap();
    assert_eq!((p.invert, p.count, p.pattern.len()), (false, 1, 512));
    assert_eq!(
        pointer(OverwriteParameters::decode(&whole(513), 517, 512).unwrap_err()),
        (Asc::INVALID_FIELD_IN_PARAMETER_LIST, Some(2))
    );
    assert_eq!(
        pointer(OverwriteParameters::decode(&[0x01, 0, 0, 0], 4, 512).unwrap_err()),
        (Asc::INVALID_FIELD_IN_PARAMETER_LIST, Some(2))
    );
}
