//! CDB decoding, element status data and mode pages of [`super`], by SMC-3 clause.
use super::*;
use crate::{Asc, SenseKey};

fn cdb_err(e: DecodeError) -> (usize, Option<u8>) {
    assert_eq!(e.reason, Reason::InvalidFieldInCdb);
    (e.offset, e.bit)
}

/// Hex digits (spaces ignored) as bytes.
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// A space-padded 32-byte volume identifier and the 4 bytes after it.
fn tag(barcode: &str) -> Vec<u8> {
    let mut t = barcode.as_bytes().to_vec();
    t.resize(32, b' ');
    t.extend_from_slice(&[0; 4]);
    t
}

#[test]
fn read_element_status_cdb_smc3_6_11_1() {
    // As the Linux ch driver sends it for LUN 1: obsolete LUN bits 7-5 set, VOLTAG, type
    // 4 (data transfer), one element from 0100h, 255 bytes.
    let c = ReadElementStatus::decode(&hex("b8 34 0100 0001 00 0000ff 00 00")).unwrap();
    assert_eq!(
        c,
        ReadElementStatus {
            voltag: true,
            element_type: Some(ElementType::DataTransfer),
            starting_address: 0x100,
            number_of_elements: 1,
            curdata: false,
            dvcid: false,
            allocation_length: 255,
        }
    );
    // mtx: all types, VOLTAG; CURDATA and DVCID in byte 6.
    let c = ReadElementStatus::decode(&hex("b8 10 0000 ffff 03 010000 00 00")).unwrap();
    assert_eq!(
        (c.element_type, c.curdata, c.dvcid, c.allocation_length),
        (None, true, true, 0x10000)
    );
    assert_eq!(ReadElementStatus::decode(&c.encode()).unwrap(), c);
    // Element type 5 is reserved: 24/00 at byte 1 bit 3.
    assert_eq!(
        cdb_err(ReadElementStatus::decode(&hex("b8 05 0000 0001 00 0000ff 00 00")).unwrap_err()),
        (1, Some(3))
    );
    assert_eq!(
        cdb_err(ReadElementStatus::decode(&hex("b8 00 0000 0001 04 0000ff 00 00")).unwrap_err()),
        (6, Some(2))
    );
    assert_eq!(
        cdb_err(ReadElementStatus::decode(&hex("b8 00 0000 0001 00 0000ff 01 00")).unwrap_err()),
        (10, Some(0))
    );
    // NACA in CONTROL; the vendor bits 7-6 pass.
    assert_eq!(
        cdb_err(ReadElementStatus::decode(&hex("b8 00 0000 0001 00 0000ff 00 04")).unwrap_err()),
        (11, Some(2))
    );
    assert!(ReadElementStatus::decode(&hex("b8 00 0000 0001 00 0000ff 00 c0")).is_ok());
    assert_eq!(
        cdb_err(ReadElementStatus::decode(&hex("b8 00 0000")).unwrap_err()),
        (0, None)
    );
}

#[test]
fn move_exchange_position_and_initialize_cdbs() {
    // SMC-3 6.6 MOVE MEDIUM, as ch.c builds it (LUN bits in byte 1).
    let m = MoveMedium::decode(&hex("a5 20 0001 1000 0100 0000 00 00")).unwrap();
    assert_eq!(
        m,
        MoveMedium {
            transport: 1,
            source: 0x1000,
            destination: 0x100,
            invert: false
        }
    );
    assert_eq!(MoveMedium::decode(&m.encode()).unwrap(), m);
    assert!(
        MoveMedium::decode(&hex("a5 00 0000 1000 0100 0000 01 00"))
            .unwrap()
            .invert
    );
    assert_eq!(
        cdb_err(MoveMedium::decode(&hex("a5 00 0000 1000 0100 0000 02 00")).unwrap_err()),
        (10, Some(1))
    );
    assert_eq!(
        cdb_err(MoveMedium::decode(&hex("a5 00 0000 1000 0100 0100 00 00")).unwrap_err()),
        (8, Some(0))
    );
    // SMC-3 6.2 EXCHANGE MEDIUM: INV1 bit 0, INV2 bit 1.
    let x = ExchangeMedium::decode(&hex("a6 00 0000 1000 0100 1001 02 00")).unwrap();
    assert_eq!(
        (x.source, x.first_destination, x.second_destination),
        (0x1000, 0x100, 0x1001)
    );
    assert_eq!((x.invert1, x.invert2), (false, true));
    assert_eq!(
        cdb_err(ExchangeMedium::decode(&hex("a6 00 0000 1000 0100 1001 04 00")).unwrap_err()),
        (10, Some(2))
    );
    // SMC-3 6.10 POSITION TO ELEMENT, 6.3 INITIALIZE ELEMENT STATUS, 6.4 WITH RANGE.
    let p = PositionToElement::decode(&hex("2b 00 0000 1005 0000 01 00")).unwrap();
    assert_eq!((p.destination, p.invert), (0x1005, true));
    assert!(decode_initialize_element_status(&hex("07 20 00 00 00 00")).is_ok());
    assert_eq!(
        cdb_err(decode_initialize_element_status(&hex("07 00 00 00 10 00")).unwrap_err()),
        (4, Some(4))
    );
    let r = InitializeElementStatusWithRange::decode(&hex("37 03 1000 0000 0018 00 00")).unwrap();
    assert_eq!(
        r,
        InitializeElementStatusWithRange {
            fast: true,
            range: true,
            starting_address: 0x1000,
            number_of_elements: 24
        }
    );
    assert_eq!(
        cdb_err(
            InitializeElementStatusWithRange::decode(&hex("37 04 1000 0000 0018 00 00"))
                .unwrap_err()
        ),
        (1, Some(2))
    );
    // SMC-3 6.9 OPEN/CLOSE IMPORT/EXPORT ELEMENT: ACTION CODE 0 open, 1 close.
    let o = OpenCloseImportExport::decode(&hex("1b 00 0010 01 00")).unwrap();
    assert_eq!((o.address, o.action), (0x10, ImportExportAction::Close));
    assert_eq!(
        cdb_err(OpenCloseImportExport::decode(&hex("1b 00 0010 02 00")).unwrap_err()),
        (4, Some(4))
    );
}

/// A small library: a transport, an import/export slot holding an operator's cartridge,
/// two drives (one loaded from slot 1000h, LUN 2), two storage slots (one full).
fn library() -> Vec<ElementStatus> {
    let drive = |address, lun: u8, naa: &str| ElementStatus {
        element_type: Some(ElementType::DataTransfer),
        address,
        lun: Some(lun),
        identifier: Some(Designator::parse_name(naa).unwrap()),
        ..ElementStatus::default()
    };
    vec![
        // Deliberately out of address order: the encoder sorts.
        ElementStatus {
            element_type: Some(ElementType::Storage),
            address: 0x1001,
            full: true,
            access: true,
            medium_type: ElementStatus::DATA_MEDIUM,
            volume_tag: Some("XC0002L9".into()),
            ..ElementStatus::default()
        },
        ElementStatus {
            element_type: Some(ElementType::MediumTransport),
            address: 1,
            ..ElementStatus::default()
        },
        ElementStatus {
            element_type: Some(ElementType::ImportExport),
            address: 0x10,
            full: true,
            access: true,
            placed_by_operator: true,
            import_enabled: true,
            export_enabled: true,
            medium_type: ElementStatus::DATA_MEDIUM,
            volume_tag: Some("XC0003L8".into()),
            ..ElementStatus::default()
        },
        ElementStatus {
            full: true,
            source: Some(0x1000),
            medium_type: ElementStatus::DATA_MEDIUM,
            volume_tag: Some("XC0001L9".into()),
            ..drive(0x100, 2, "naa.5001405a1b2c3d20")
        },
        ElementStatus {
            access: true,
            // An empty element reports no source even if one is remembered.
            source: Some(0x1001),
            ..drive(0x101, 3, "naa.5001405a1b2c3d21")
        },
        ElementStatus {
            element_type: Some(ElementType::Storage),
            address: 0x1000,
            access: true,
            ..ElementStatus::default()
        },
    ]
}

#[test]
fn element_status_data_all_types_voltag_dvcid_smc3_6_11_2() {
    let cdb = ReadElementStatus::decode(&hex("b8 10 0000 0000 01 00ffff 00 00")).unwrap();
    let data = element_status_data(&cdb, &library()).unwrap();
    let mut want = hex("0001 0006 00 000168");
    // Medium transport page: 52-byte descriptors (12 + volume tag 36 + identification 4).
    want.extend(hex("01 80 0034 00 000034"));
    want.extend(hex("0001 00 00 0000 00 00 00 00 0000"));
    want.extend([0; 40]);
    // Import/export: FULL, IMPEXP, ACCESS, EXENAB, INENAB; data medium, no source.
    want.extend(hex("03 80 0034 00 000034"));
    want.extend(hex("0010 3b 00 0000 00 00 00 01 0000"));
    want.extend(tag("XC0003L8"));
    want.extend([0; 4]);
    // Data transfer: DVCID adds the drives' 8-byte NAA designators (60-byte descriptors).
    want.extend(hex("04 80 003c 00 000078"));
    want.extend(hex("0100 01 00 0000 12 00 00 81 1000"));
    want.extend(tag("XC0001L9"));
    want.extend(hex("01 03 00 08 5001405a1b2c3d20"));
    want.extend(hex("0101 08 00 0000 13 00 00 00 0000"));
    want.extend([0; 36]);
    want.extend(hex("01 03 00 08 5001405a1b2c3d21"));
    // Storage.
    want.extend(hex("02 80 0034 00 000068"));
    want.extend(hex("1000 08 00 0000 00 00 00 00 0000"));
    want.extend([0; 40]);
    want.extend(hex("1001 09 00 0000 00 00 00 01 0000"));
    want.extend(tag("XC0002L9"));
    want.extend([0; 4]);
    assert_eq!(data.len(), 8 + 0x168);
    assert_eq!(data, want);
    // The decoder reads back what was encoded (the empty drive's source is not valid).
    let mut sorted = library();
    sorted.sort_by_key(|e| e.address);
    sorted[3].source = None;
    assert_eq!(decode_element_status_data(&data).unwrap(), sorted);
}

#[test]
fn element_status_selection_and_short_forms() {
    // One drive without VOLTAG or DVCID: 16-byte descriptor, as ch.c reads it at offset 16.
    let cdb = ReadElementStatus::decode(&hex("b8 04 0100 0001 00 0000ff 00 00")).unwrap();
    let data = element_status_data(&cdb, &library()).unwrap();
    assert_eq!(
        data,
        hex("0100 0001 00 000018  04 00 0010 00 000010  0100 01 00 0000 12 00 00 81 1000 00000000")
    );
    // Storage from 1001h: only the full slot.
    let cdb = ReadElementStatus::decode(&hex("b8 12 1001 0005 00 0000ff 00 00")).unwrap();
    let data = element_status_data(&cdb, &library()).unwrap();
    assert_eq!(data[..8], hex("1001 0001 00 00003c"));
    // All types from 0011h, at most 2: the drives, one page.
    let cdb = ReadElementStatus::decode(&hex("b8 00 0011 0002 00 0000ff 00 00")).unwrap();
    let data = element_status_data(&cdb, &library()).unwrap();
    assert_eq!(data[..16], hex("0100 0002 00 000028  04 00 0010 00 000020"));
    // Nothing at or above the starting address: 05/21/01 pointing at byte 2 (C/D=1).
    let cdb = ReadElementStatus::decode(&hex("b8 02 2000 0001 00 0000ff 00 00")).unwrap();
    let s = element_status_data(&cdb, &library()).unwrap_err();
    assert_eq!(
        (s.key, s.asc, s.field_pointer()),
        (
            SenseKey::ILLEGAL_REQUEST,
            Asc::INVALID_ELEMENT_ADDRESS,
            Some(2)
        )
    );
    assert_eq!(s.encode()[15..18], [0xc0, 0, 2]);
}

#[test]
fn changer_mode_pages_smc3_7_3() {
    let addresses = ElementAddresses {
        first_transport: 1,
        transports: 1,
        first_storage: 0x1000,
        storage: 24,
        first_import_export: 0x10,
        import_export: 2,
        first_data_transfer: 0x100,
        data_transfer: 2,
    };
    // mtx: MODE SENSE(6), DBD, page 1Dh, 136 bytes.
    let cdb = decode_mode_sense(&hex("1a 08 1d 00 88 00")).unwrap();
    let data = mode_sense_data(&cdb, &addresses);
    assert_eq!(
        data,
        hex("17 00 00 00  1d 12 0001 0001 1000 0018 0010 0002 0100 0002 0000")
    );
    assert_eq!(
        ElementAddresses::decode_page(&data[4..]).unwrap(),
        addresses
    );
    // ch.c sends LUN bits in byte 1; all pages via MODE SENSE(10).
    let cdb = decode_mode_sense(&hex("5a 20 3f 00 00 00 00 00 ff 00")).unwrap();
    let data = mode_sense_data(&cdb, &addresses);
    assert_eq!(data[..8], hex("0032 00 00 00 00 0000"));
    assert_eq!(data[28..32], hex("1e 02 00 00"));
    assert_eq!(
        data[32..],
        hex("1f 12 0e 00 00 0e 0e 0e 00000000 00 0e 0e 0e 00000000")
    );
    // Changeable values: every field zero.
    let cdb = decode_mode_sense(&hex("1a 00 5d 00 ff 00")).unwrap();
    let data = mode_sense_data(&cdb, &addresses);
    assert_eq!(data[4..6], hex("1d 12"));
    assert!(data[6..24].iter().all(|&b| b == 0));
    assert_eq!(
        cdb_err(decode_mode_sense(&hex("1a 00 10 00 ff 00")).unwrap_err()),
        (2, Some(5))
    );
    assert_eq!(
        cdb_err(decode_mode_sense(&hex("1a 00 1d 01 ff 00")).unwrap_err()),
        (3, Some(7))
    );
    // MODE SELECT: the page as it is passes; a changed count is 26/00 at that byte.
    let mut p = hex("00 00 00 00");
    p.extend(addresses.encode_page());
    assert!(check_mode_select(&p, false, &addresses).is_ok());
    p[4] |= 0x80;
    assert!(
        check_mode_select(&p, false, &addresses).is_ok(),
        "PS ignored"
    );
    p[13] = 30;
    let e = check_mode_select(&p, false, &addresses).unwrap_err();
    assert_eq!((e.reason, e.offset), (Reason::InvalidField, 13));
    let e = check_mode_select(&hex("00 00 00 08"), false, &addresses).unwrap_err();
    assert_eq!(e.offset, 3);
    let e = check_mode_select(&hex("00 00 00 00 0a 0a"), false, &addresses).unwrap_err();
    assert_eq!((e.offset, e.bit), (4, Some(5)));
}

#[test]
fn truncated_element_status_data_decodes_whole_descriptors() {
    let cdb = ReadElementStatus::decode(&hex("b8 10 0000 0000 00 00ffff 00 00")).unwrap();
    let data = element_status_data(&cdb, &library()).unwrap();
    // Cut inside the second page: the first page's descriptor and nothing broken after.
    let got = decode_element_status_data(&data[..8 + 60 + 30]).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].address, 1);
}

proptest::proptest! {
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
        let _ = ReadElementStatus::decode(&bytes);
        let _ = MoveMedium::decode(&bytes);
        let _ = ExchangeMedium::decode(&bytes);
        let _ = PositionToElement::decode(&bytes);
        let _ = InitializeElementStatusWithRange::decode(&bytes);
        let _ = decode_initialize_element_status(&bytes);
        let _ = OpenCloseImportExport::decode(&bytes);
        let _ = decode_mode_sense(&bytes);
        let _ = decode_element_status_data(&bytes);
        let _ = ElementAddresses::decode_page(&bytes);
        let a = ElementAddresses {
            first_transport: 1, transports: 1, first_storage: 2, storage: 3,
            first_import_export: 5, import_export: 1, first_data_transfer: 6, data_transfer: 1,
        };
        let _ = check_mode_select(&bytes, false, &a);
        let _ = check_mode_select(&bytes, true, &a);
        if let Ok(cdb) = ReadElementStatus::decode(&bytes) {
            let _ = element_status_data(&cdb, &library());
        }
    }
}
