use super::*;
use crate::sbc_commands::DiskCommand;
use crate::{Asc, Sense};

fn params() -> DiskModeParameters {
    DiskModeParameters {
        blocks: 2048,
        block_size: 512,
        write_protect: false,
        write_cache: true,
        software_write_protect: false,
    }
}

/// The Control page as MODE SENSE reports its current values, SWP as given.
fn control(swp: bool) -> Vec<u8> {
    let b4 = if swp { 0x08 } else { 0 };
    vec![0x0a, 0x0a, 0x02, 0x10, b4, 0, 0, 0, 0, 0, 0, 0]
}

/// MODE SELECT(6) list: header, then `rest`.
fn list6(rest: &[u8]) -> Vec<u8> {
    let mut l = vec![0, 0, 0, 0];
    l.extend_from_slice(rest);
    l
}

fn err(list: &[u8], ten: bool) -> DecodeError {
    mode_select(list, ten, &params()).unwrap_err()
}

#[test]
fn pages_current_changeable_default_spc4_7_5_8() {
    let mut p = params();
    assert_eq!(
        p.page(CONTROL, PageValues::Current).unwrap(),
        control(false)
    );
    assert_eq!(
        p.page(CONTROL, PageValues::Changeable).unwrap(),
        [0x0a, 0x0a, 0, 0, 0x08, 0, 0, 0, 0, 0, 0, 0]
    );
    let mut caching = vec![0x08, 0x12, 0x04];
    caching.resize(20, 0);
    assert_eq!(p.page(CACHING, PageValues::Current).unwrap(), caching);
    caching[2] = 0;
    assert_eq!(p.page(CACHING, PageValues::Changeable).unwrap(), caching);
    assert_eq!(p.page(0x1c, PageValues::Current), None);
    assert_eq!(p.device_specific(), 0x10);
    p.software_write_protect = true;
    assert_eq!(p.page(CONTROL, PageValues::Current).unwrap(), control(true));
    // The default value of SWP is 0, whatever the current one.
    assert_eq!(
        p.page(CONTROL, PageValues::Default).unwrap(),
        control(false)
    );
    assert_eq!(p.device_specific(), 0x90);
}

#[test]
fn swp_is_set_and_cleared_by_the_control_page() {
    let on = mode_select(&list6(&control(true)), false, &params()).unwrap();
    assert_eq!(
        on,
        DiskModeParameters {
            software_write_protect: true,
            ..params()
        }
    );
    let off = mode_select(&list6(&control(false)), false, &on).unwrap();
    assert_eq!(off, params());
    // The Caching page sent back unchanged, then the Control page; a block descriptor that
    // restates capacity and block size (or gives 0 blocks); WP and MODE DATA LENGTH are
    // not checked.
    let mut list = vec![0x17, 0, 0x80, 8, 0, 0, 0x08, 0, 0, 0, 0x02, 0];
    list.extend(params().page(CACHING, PageValues::Current).unwrap());
    list.extend(control(true));
    assert!(
        mode_select(&list, false, &params())
            .unwrap()
            .software_write_protect
    );
    list[4..8].copy_from_slice(&[0, 0, 0, 0]);
    assert!(mode_select(&list, false, &params()).is_ok());
    // MODE SELECT(10) with LONGLBA and a 16-byte descriptor.
    let mut list = vec![0, 0, 0, 0, 0x01, 0, 0, 16];
    list.extend([0, 0, 0, 0, 0, 0, 0x08, 0, 0, 0, 0, 0, 0, 0, 0x02, 0]);
    list.extend(control(true));
    assert!(
        mode_select(&list, true, &params())
            .unwrap()
            .software_write_protect
    );
    // A header alone changes nothing.
    assert_eq!(mode_select(&[0; 4], false, &params()).unwrap(), params());
}

#[test]
fn short_lists_are_parameter_list_length_errors() {
    let truncated = |at| DecodeError::new(Reason::Truncated, at);
    assert_eq!(err(&[0, 0, 0], false), truncated(3));
    assert_eq!(err(&[0; 7], true), truncated(7));
    // A block descriptor past the end.
    assert_eq!(err(&[0, 0, 0, 8, 0, 0, 0, 0], false), truncated(8));
    // A page header cut, a page cut.
    assert_eq!(err(&list6(&[0x0a]), false), truncated(5));
    assert_eq!(err(&list6(&control(true)[..11]), false), truncated(15));
    let s = Sense::from(truncated(15));
    assert_eq!(
        (s.key, s.asc, s.field_pointer()),
        (
            crate::SenseKey::ILLEGAL_REQUEST,
            Asc::PARAMETER_LIST_LENGTH_ERROR,
            None
        )
    );
}

#[test]
fn header_and_block_descriptor_refusals_point_at_their_field() {
    // MEDIUM TYPE.
    assert_eq!(err(&[0, 0x01, 0, 0], false), DecodeError::invalid(1));
    assert_eq!(
        err(&[0, 0, 0x01, 0, 0, 0, 0, 0], true),
        DecodeError::invalid(2)
    );
    // MODE SELECT(10) reserved bits beside LONGLBA, reserved byte 5.
    assert_eq!(
        err(&[0, 0, 0, 0, 0x02, 0, 0, 0], true),
        DecodeError::invalid_bit(4, 7)
    );
    assert_eq!(
        err(&[0, 0, 0, 0, 0, 0x01, 0, 0], true),
        DecodeError::invalid(5)
    );
    // BLOCK DESCRIPTOR LENGTH neither 0 nor one descriptor.
    assert_eq!(
        err(&[0, 0, 0, 4, 0, 0, 0, 0], false),
        DecodeError::invalid(3)
    );
    // LONGLBA with an 8-byte descriptor.
    let mut long = vec![0, 0, 0, 0, 0x01, 0, 0, 8];
    long.extend([0, 0, 0, 0, 0, 0, 0x02, 0]);
    assert_eq!(err(&long, true), DecodeError::invalid(6));
}

#[test]
fn a_block_descriptor_may_not_change_capacity_or_block_size_sbc3_6_3_2() {
    let with = |d: [u8; 8]| {
        let mut l = vec![0, 0, 0, 8];
        l.extend(d);
        l
    };
    assert_eq!(
        err(&with([0, 0, 0x08, 0x01, 0, 0, 0x02, 0]), false),
        DecodeError::invalid_bit(4, 7)
    );
    assert_eq!(
        err(&with([0, 0, 0x08, 0, 0x01, 0, 0x02, 0]), false),
        DecodeError::invalid(8)
    );
    assert_eq!(
        err(&with([0, 0, 0x08, 0, 0, 0, 0x10, 0]), false),
        DecodeError::invalid_bit(9, 7)
    );
    let s = Sense::from(DecodeError::invalid_bit(9, 7));
    assert_eq!(
        s.encode()[..18],
        [0x70, 0, 0x05, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x26, 0x00, 0, 0x8f, 0, 9]
    );
}

#[test]
fn page_refusals_point_at_the_byte_and_bit_lio_scst() {
    // PS set, SPF set, a page this logical unit does not have.
    let mut page = control(true);
    page[0] = 0x8a;
    assert_eq!(err(&list6(&page), false), DecodeError::invalid_bit(4, 7));
    page[0] = 0x4a;
    assert_eq!(err(&list6(&page), false), DecodeError::invalid_bit(4, 6));
    page[0] = 0x1c;
    assert_eq!(err(&list6(&page), false), DecodeError::invalid_bit(4, 5));
    // PAGE LENGTH other than MODE SENSE's.
    let mut page = control(true);
    page[1] = 0x0b;
    page.push(0);
    assert_eq!(err(&list6(&page), false), DecodeError::invalid_bit(5, 7));
    // A bit that is not changeable: D_SENSE (byte 2 bit 2), TAS (byte 5 bit 6), and the
    // Caching page's WCE cleared (byte 2 bit 2).
    let mut page = control(true);
    page[2] |= 0x04;
    assert_eq!(err(&list6(&page), false), DecodeError::invalid_bit(6, 2));
    let mut page = control(false);
    page[5] = 0x40;
    assert_eq!(err(&list6(&page), false), DecodeError::invalid_bit(9, 6));
    let mut caching = params().page(CACHING, PageValues::Current).unwrap();
    caching[2] = 0;
    let mut list = list6(&control(true));
    list.extend(caching);
    assert_eq!(err(&list, false), DecodeError::invalid_bit(18, 2));
    // Nothing changed by a list refused after a good page: the caller keeps `current`.
    let s = Sense::from(DecodeError::invalid_bit(18, 2));
    assert_eq!(
        (s.asc, s.field_pointer()),
        (Asc::INVALID_FIELD_IN_PARAMETER_LIST, Some(18))
    );
}

#[test]
fn mode_select_cdbs_spc4_6_11_6_12() {
    let ok = DiskCommand::decode(&[0x15, 0x10, 0, 0, 16, 0]).unwrap();
    assert!(matches!(ok, DiskCommand::ModeSelect(c) if !c.ten && c.parameter_list_length == 16));
    let ok = DiskCommand::decode(&[0x55, 0x10, 0, 0, 0, 0, 0, 0x01, 0x02, 0]).unwrap();
    assert!(matches!(ok, DiskCommand::ModeSelect(c) if c.ten && c.parameter_list_length == 0x102));
    let cdb_err = |cdb: &[u8]| {
        let e = DiskCommand::decode(cdb).unwrap_err();
        (e.reason, e.offset, e.bit)
    };
    // SP: no saved pages; PF 0: vendor-specific pages; NACA in CONTROL.
    assert_eq!(
        cdb_err(&[0x15, 0x11, 0, 0, 16, 0]),
        (Reason::InvalidFieldInCdb, 1, Some(0))
    );
    assert_eq!(
        cdb_err(&[0x15, 0x00, 0, 0, 16, 0]),
        (Reason::InvalidFieldInCdb, 1, Some(4))
    );
    assert_eq!(
        cdb_err(&[0x55, 0x10, 0, 0, 0, 0, 0, 0, 16, 0x04]),
        (Reason::InvalidFieldInCdb, 9, Some(2))
    );
}

/// MODE SELECT(10): LONGLBA clear takes the short (8-byte) block descriptor; with it set, a
/// reserved byte of the long one is refused at its own byte.
#[test]
fn mode_select_10_short_and_long_descriptors() {
    let mut short = vec![0, 0, 0, 0, 0, 0, 0, 8];
    short.extend([0, 0, 0x08, 0, 0, 0, 0x02, 0]);
    assert_eq!(mode_select(&short, true, &params()), Ok(params()));
    let mut long = vec![0, 0, 0, 0, 0x01, 0, 0, 16];
    long.extend([0, 0, 0, 0, 0, 0, 0x08, 0, 0, 0, 0x01, 0, 0, 0, 0x02, 0]);
    assert_eq!(err(&long, true), DecodeError::invalid(8 + 10));
}
