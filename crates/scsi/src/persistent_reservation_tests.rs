use super::*;
use crate::{Asc, Sense};

fn sense(e: DecodeError) -> (Asc, Option<u16>) {
    let s = Sense::from(e);
    (s.asc, s.field_pointer())
}

#[test]
fn pr_in_cdb_service_actions_and_errors() {
    let c = PrInCdb::decode(&[0x5e, 0x03, 0, 0, 0, 0, 0, 0x12, 0x34, 0]).unwrap();
    assert_eq!(c.action, PrInAction::ReadFullStatus);
    assert_eq!(c.allocation_length, 0x1234);
    assert_eq!(c.encode(), [0x5e, 0x03, 0, 0, 0, 0, 0, 0x12, 0x34, 0]);
    let e = PrInCdb::decode(&[0x5e, 0x04, 0, 0, 0, 0, 0, 0, 8, 0]).unwrap_err();
    assert_eq!(sense(e), (Asc::INVALID_FIELD_IN_CDB, Some(1)));
    let e = PrInCdb::decode(&[0x5e, 0x00, 0, 0, 0, 0, 0, 0, 8, 0x04]).unwrap_err();
    assert_eq!(sense(e), (Asc::INVALID_FIELD_IN_CDB, Some(9)));
    assert_eq!(
        sense(PrInCdb::decode(&[0x5e, 0]).unwrap_err()).0,
        Asc::INVALID_FIELD_IN_CDB
    );
}

#[test]
fn pr_out_cdb_fields() {
    let cdb = [0x5f, 0x01, 0x05, 0, 0, 0, 0, 0, 24, 0];
    let c = PrOutCdb::decode(&cdb).unwrap();
    assert_eq!(c.action, PrOutAction::Reserve);
    assert_eq!(
        c.reservation_type(),
        Ok(ReservationType::WriteExclusiveRegistrantsOnly)
    );
    assert_eq!(c.parameter_list_length, 24);
    assert_eq!(c.encode(), cdb);
    // SCOPE other than LU_SCOPE, an unknown TYPE: byte 2.
    let c = PrOutCdb::decode(&[0x5f, 0x01, 0x11, 0, 0, 0, 0, 0, 24, 0]).unwrap();
    assert_eq!(
        sense(c.reservation_type().unwrap_err()),
        (Asc::INVALID_FIELD_IN_CDB, Some(2))
    );
    let c = PrOutCdb::decode(&[0x5f, 0x01, 0x02, 0, 0, 0, 0, 0, 24, 0]).unwrap();
    assert!(c.reservation_type().is_err());
    // REPLACE LOST RESERVATION and beyond: byte 1.
    let e = PrOutCdb::decode(&[0x5f, 0x08, 0, 0, 0, 0, 0, 0, 24, 0]).unwrap_err();
    assert_eq!(sense(e), (Asc::INVALID_FIELD_IN_CDB, Some(1)));
    // PARAMETER LIST LENGTH is four bytes (5-8).
    let c = PrOutCdb::decode(&[0x5f, 0, 0, 0, 0, 0x01, 0, 0, 0x18, 0]).unwrap();
    assert_eq!(c.parameter_list_length, 0x0100_0018);
}

#[test]
fn basic_parameter_list() {
    let mut list = vec![0u8; 24];
    list[..8].copy_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes());
    list[8..16].copy_from_slice(&0xaabbu64.to_be_bytes());
    list[20] = 0x05;
    let p = PrOutParameters::decode(&list, 24, true).unwrap();
    assert_eq!(p.reservation_key, 0x1122_3344_5566_7788);
    assert_eq!(p.service_action_reservation_key, 0xaabb);
    assert!(p.all_tg_pt && p.aptpl && !p.spec_i_pt);
    assert_eq!(p.encode(), list);
    // The list is 24 bytes exactly: shorter, longer, or not what the CDB said: 1A/00.
    for (data, cdb) in [(&list[..23], 23), (&list[..], 25), (&list[..], 23)] {
        let e = PrOutParameters::decode(data, cdb, true).unwrap_err();
        assert_eq!(Sense::from(e).asc, Asc::PARAMETER_LIST_LENGTH_ERROR);
    }
    let mut long = list.clone();
    long.extend_from_slice(&[0; 4]);
    let e = PrOutParameters::decode(&long, 28, true).unwrap_err();
    assert_eq!(Sense::from(e).asc, Asc::PARAMETER_LIST_LENGTH_ERROR);
}

/// An iSCSI TransportID built by hand from SPC-4 7.6.4.6.
fn tid(text: &str, format: u8) -> Vec<u8> {
    let len = (text.len() + 1).next_multiple_of(4).max(20);
    let mut v = vec![(format << 6) | 5, 0, 0, len as u8];
    v.extend_from_slice(text.as_bytes());
    v.resize(4 + len, 0);
    v
}

#[test]
fn spec_i_pt_transport_ids() {
    let a = tid("iqn.1993-08.org.debian:01:a,i,0x23d000000001", 1);
    let b = tid("iqn.2004-10.com.ubuntu:b", 0);
    let mut list = vec![0u8; 24];
    list[15] = 7;
    list[20] = 0x08;
    list.extend_from_slice(&((a.len() + b.len()) as u32).to_be_bytes());
    list.extend_from_slice(&a);
    list.extend_from_slice(&b);
    let p = PrOutParameters::decode(&list, list.len() as u32, true).unwrap();
    assert!(p.spec_i_pt);
    assert_eq!(
        p.transport_ids,
        [
            TransportId {
                name: "iqn.1993-08.org.debian:01:a".into(),
                isid: Some([0x23, 0xd0, 0, 0, 0, 1]),
            },
            TransportId {
                name: "iqn.2004-10.com.ubuntu:b".into(),
                isid: None,
            },
        ]
    );
    assert_eq!(p.encode(), list);
    // Not a REGISTER: SPEC_I_PT is 26/00 at byte 20 before any length is looked at.
    let e = PrOutParameters::decode(&list[..24], 24, false).unwrap_err();
    assert_eq!(sense(e), (Asc::INVALID_FIELD_IN_PARAMETER_LIST, Some(20)));
    assert_eq!(
        p.transport_ids[0].to_string(),
        "iqn.1993-08.org.debian:01:a,i,0x23d000000001"
    );
    // TRANSPORTID PARAMETER DATA LENGTH not matching what follows: 1A/00.
    let mut bad = list.clone();
    bad[27] += 4;
    let e = PrOutParameters::decode(&bad, bad.len() as u32, true).unwrap_err();
    assert_eq!(Sense::from(e).asc, Asc::PARAMETER_LIST_LENGTH_ERROR);
    // A Fibre Channel TransportID names no port here: 26/00 at its byte 0 (list byte 28).
    let mut fc = list[..28].to_vec();
    fc[24..28].copy_from_slice(&24u32.to_be_bytes());
    fc.extend_from_slice(&[0u8; 24]);
    let e = PrOutParameters::decode(&fc, fc.len() as u32, true).unwrap_err();
    assert_eq!(sense(e), (Asc::INVALID_FIELD_IN_PARAMETER_LIST, Some(28)));
}

#[test]
fn transport_id_rules() {
    let r = |b: &[u8]| TransportId::decode(&mut Reader::new(b));
    // ADDITIONAL LENGTH not a multiple of 4, below 20, a bad ISID, an ISID in format 00b.
    let mut odd = tid("iqn.x:y", 0);
    odd[3] = 21;
    odd.push(0);
    assert!(r(&odd).is_err());
    let mut short = tid("iqn.x:y", 0);
    short[3] = 16;
    assert!(r(&short[..20]).is_err());
    assert!(r(&tid("iqn.x:y,i,0x12345", 1)).is_err());
    assert!(r(&tid("iqn.x:y,i,0x123456789abc", 0)).is_err());
    assert!(r(&tid("", 0)).is_err());
    assert!(r(&tid("iqn.x:y", 2)).is_err());
    // Encoding pads to a multiple of four with at least one NUL, 24 bytes at least.
    let t = TransportId {
        name: "iqn.a".into(),
        isid: None,
    };
    let mut out = Vec::new();
    t.encode(&mut out);
    assert_eq!(out, tid("iqn.a", 0));
    assert_eq!(out.len(), 24);
    let t = TransportId {
        name: "iqn.2026-11.org.example:host-with-a-long-name".into(),
        isid: Some([0x80, 0, 0, 0, 0, 2]),
    };
    let mut out = Vec::new();
    t.encode(&mut out);
    assert_eq!(out.len() % 4, 0);
    assert_eq!(r(&out).unwrap(), t);
}

#[test]
fn register_and_move_list() {
    let t = tid("iqn.dest:host,i,0x400000000001", 1);
    let mut list = vec![0u8; 24];
    list[7] = 1;
    list[15] = 2;
    list[17] = 0x03;
    list[19] = 1;
    list[20..24].copy_from_slice(&(t.len() as u32).to_be_bytes());
    list.extend_from_slice(&t);
    let p = RegisterAndMoveParameters::decode(&list, list.len() as u32).unwrap();
    assert_eq!(
        (p.reservation_key, p.service_action_reservation_key),
        (1, 2)
    );
    assert!(p.unreg && p.aptpl);
    assert_eq!(p.relative_target_port, 1);
    assert_eq!(p.transport_id.isid, Some([0x40, 0, 0, 0, 0, 1]));
    assert_eq!(p.encode(), list);
    let e = RegisterAndMoveParameters::decode(&list[..24], 24).unwrap_err();
    assert_eq!(Sense::from(e).asc, Asc::PARAMETER_LIST_LENGTH_ERROR);
}

#[test]
fn parameter_data_encoders() {
    assert_eq!(
        read_keys_data(5, &[1, 0x0102_0304_0506_0708]),
        [0, 0, 0, 5, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8]
    );
    assert_eq!(read_reservation_data(9, None), [0, 0, 0, 9, 0, 0, 0, 0]);
    assert_eq!(
        read_reservation_data(9, Some((0xab, ReservationType::ExclusiveAccess))),
        [0, 0, 0, 9, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0xab, 0, 0, 0, 0, 0, 3, 0, 0]
    );
    // All-registrants types report key 0.
    let d = read_reservation_data(
        1,
        Some((0xab, ReservationType::WriteExclusiveAllRegistrants)),
    );
    assert_eq!(d[8..16], [0; 8]);
    assert_eq!(d[21], 7);
    assert_eq!(
        report_capabilities_data(true),
        [0, 8, 0x1d, 0xb1, 0xea, 0x01, 0, 0]
    );
    assert_eq!(report_capabilities_data(false)[3], 0xb0);
    let entry = FullStatus {
        key: 0x10,
        all_tg_pt: true,
        holds: Some(ReservationType::WriteExclusive),
        relative_target_port: 1,
        transport_id: TransportId {
            name: "iqn.a".into(),
            isid: None,
        },
    };
    let d = read_full_status_data(3, &[entry]);
    let mut want = vec![0, 0, 0, 3, 0, 0, 0, 48];
    want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0x03, 0x01]);
    want.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 24]);
    want.extend_from_slice(&tid("iqn.a", 0));
    assert_eq!(d, want);
}

#[test]
fn reservation_types() {
    for t in ReservationType::ALL {
        assert_eq!(ReservationType::from_code(t.code()), Some(t));
    }
    for c in [0, 2, 4, 9, 15] {
        assert_eq!(ReservationType::from_code(c), None);
    }
    assert!(ReservationType::WriteExclusiveRegistrantsOnly.write_exclusive());
    assert!(!ReservationType::ExclusiveAccessAllRegistrants.write_exclusive());
    assert!(ReservationType::ExclusiveAccessAllRegistrants.all_registrants());
    assert!(!ReservationType::ExclusiveAccess.admits_registrants());
}

#[test]
fn spc2_reserve_release() {
    assert_eq!(
        Spc2Cdb::decode(&[0x16, 0, 0, 0, 0, 0]),
        Ok(Spc2Cdb::Reserve)
    );
    assert_eq!(
        Spc2Cdb::decode(&[0x17, 0, 0, 0, 0, 0]),
        Ok(Spc2Cdb::Release)
    );
    assert_eq!(
        Spc2Cdb::decode(&[0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        Ok(Spc2Cdb::Reserve)
    );
    assert_eq!(
        Spc2Cdb::decode(&[0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        Ok(Spc2Cdb::Release)
    );
    let e = Spc2Cdb::decode(&[0x16, 1, 0, 0, 0, 0]).unwrap_err();
    assert_eq!(sense(e), (Asc::INVALID_FIELD_IN_CDB, Some(1)));
    let e = Spc2Cdb::decode(&[0x56, 0x10, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
    assert_eq!(sense(e), (Asc::INVALID_FIELD_IN_CDB, Some(1)));
    assert!(Spc2Cdb::decode(&[0x56, 0, 0]).is_err());
}

proptest::proptest! {
    #[test]
    fn decoders_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200), len in 0u32..300) {
        let _ = PrInCdb::decode(&data);
        let _ = PrOutCdb::decode(&data);
        let _ = PrOutParameters::decode(&data, len, len % 2 == 0);
        let _ = RegisterAndMoveParameters::decode(&data, len);
        let _ = Spc2Cdb::decode(&data);
        let _ = TransportId::decode(&mut Reader::new(&data));
    }
}

/// Every service action of PERSISTENT RESERVE IN (SPC-4 Table 167) and OUT (Table 172)
/// decodes to itself and encodes back to its code; CONTROL's NACA (bit 2) and LINK (bit 0)
/// are 24/00 with the bit named.
#[test]
fn every_service_action_round_trips() {
    for (code, action) in [
        (0, PrInAction::ReadKeys),
        (1, PrInAction::ReadReservation),
        (2, PrInAction::ReportCapabilities),
        (3, PrInAction::ReadFullStatus),
    ] {
        let cdb = [0x5e, 0xe0 | code, 0, 0, 0, 0, 0, 0, 8, 0];
        assert_eq!(PrInCdb::decode(&cdb).unwrap().action, action, "{code}");
    }
    for code in 0..8u8 {
        let cdb = [0x5f, code, 0x10 | 0x03, 0, 0, 0, 0, 0, 24, 0];
        let c = PrOutCdb::decode(&cdb).unwrap();
        assert_eq!(c.action.code(), code);
        assert_eq!((c.scope, c.type_code), (1, 3));
        assert_eq!(c.encode(), cdb, "{code}");
    }
    for (ctl, bit) in [(0x04, 2), (0x01, 0), (0x05, 2)] {
        let e = PrInCdb::decode(&[0x5e, 0, 0, 0, 0, 0, 0, 0, 8, ctl]).unwrap_err();
        assert_eq!((e.offset, e.bit), (9, Some(bit)), "{ctl:02x}");
    }
    assert!(PrInCdb::decode(&[0x5e, 0, 0, 0, 0, 0, 0, 0, 8, 0x02]).is_ok());
}

/// Registrants have access under the registrants-only and all-registrants types, not
/// under Write Exclusive or Exclusive Access (SPC-4 Table 170).
#[test]
fn which_types_admit_registrants() {
    let admits: Vec<bool> = ReservationType::ALL
        .iter()
        .map(|t| t.admits_registrants())
        .collect();
    assert_eq!(admits, [false, false, true, true, true, true]);
}

/// An iSCSI name in a TransportID is at most 223 bytes, plus ",i,0x" and the ISID's 12 hex
/// digits: 240 in all.
#[test]
fn transport_id_names_are_at_most_240_bytes() {
    let longest = format!("iqn.{},i,0x400000000001", "n".repeat(240 - 4 - 17));
    assert_eq!(longest.len(), 240);
    let t = TransportId::decode(&mut Reader::new(&tid(&longest, 1))).unwrap();
    assert_eq!(t.name.len(), 223);
    let too_long = format!("iqn.{},i,0x400000000001", "n".repeat(241 - 4 - 17));
    assert!(TransportId::decode(&mut Reader::new(&tid(&too_long, 1))).is_err());
    // ADDITIONAL LENGTH 20, the least.
    let short = tid("iqn.a", 0);
    assert_eq!(short[3], 20);
    assert!(TransportId::decode(&mut Reader::new(&short)).is_ok());
}

/// A bad TransportID is 26/00 at its own ISCSI NAME field, wherever it sits in the list.
#[test]
fn transport_id_errors_point_into_the_list() {
    let at = 8;
    for bad in [
        tid("", 0),
        // Format 00b names the initiator device: no ISID in it.
        tid("iqn.a:b,i,0x400000000001", 0),
        tid("iqn.a:b", 1),
        tid("iqn.a:b,i,0xzz", 1),
        tid(",i,0x400000000001", 1),
    ] {
        let mut list = vec![0u8; at];
        list.extend(&bad);
        let mut r = Reader::new(&list);
        r.skip(at).unwrap();
        let e = TransportId::decode(&mut r).unwrap_err();
        assert_eq!(e.offset, at + 4, "{bad:02x?}");
    }
}

/// SPEC_I_PT (byte 20 bit 3) refused for any service action but REGISTER; APTPL (bit 0)
/// alone is fine.
#[test]
fn only_spec_i_pt_is_refused_outside_register() {
    let mut list = vec![0u8; 24];
    list[20] = 0x01;
    assert!(PrOutParameters::decode(&list, 24, false).unwrap().aptpl);
    list[20] = 0x08;
    let e = PrOutParameters::decode(&list, 24, false).unwrap_err();
    assert_eq!((e.offset, e.bit), (20, Some(3)));
}

/// REGISTER AND MOVE's byte 17: UNREG is bit 1, APTPL bit 0; a list under 24 bytes is a
/// PARAMETER LIST LENGTH ERROR even when the CDB says as much.
#[test]
fn register_and_move_flags_and_short_lists() {
    let t = tid("iqn.dest:host,i,0x400000000001", 1);
    let mut list = vec![0u8; 24];
    list[20..24].copy_from_slice(&(t.len() as u32).to_be_bytes());
    list.extend_from_slice(&t);
    for (b17, unreg, aptpl) in [(0x02, true, false), (0x01, false, true), (0, false, false)] {
        list[17] = b17;
        let p = RegisterAndMoveParameters::decode(&list, list.len() as u32).unwrap();
        assert_eq!((p.unreg, p.aptpl), (unreg, aptpl), "{b17:02x}");
    }
    for n in [20, 23] {
        let e = RegisterAndMoveParameters::decode(&list[..n], n as u32).unwrap_err();
        assert_eq!(e.reason, Reason::ParameterListLength, "{n}");
    }
}
