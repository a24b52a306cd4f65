use super::*;
use crate::scsi::persistent_reservation::{PrInAction, PrOutAction, PrOutCdb, ReservationType};
use ReservationType::*;

fn port(name: &str, isid: u8) -> InitiatorPort {
    InitiatorPort {
        name: name.into(),
        isid: Some([0x40, 0, 0, 0, 0, isid]),
    }
}

fn list(key: u64, sa_key: u64, flags: u8) -> Vec<u8> {
    let mut v = vec![0u8; 24];
    v[..8].copy_from_slice(&key.to_be_bytes());
    v[8..16].copy_from_slice(&sa_key.to_be_bytes());
    v[20] = flags;
    v
}

fn out(s: &mut State, who: &InitiatorPort, action: PrOutAction, kind: u8, data: &[u8]) -> Outcome {
    let cdb = PrOutCdb {
        action,
        scope: 0,
        type_code: kind,
        parameter_list_length: data.len() as u32,
    };
    s.reserve_out(who, &cdb, data)
}

fn register(s: &mut State, who: &InitiatorPort, key: u64) {
    assert_eq!(
        out(s, who, PrOutAction::Register, 0, &list(0, key, 0)),
        Outcome::Good(vec![])
    );
}

fn keys(s: &State) -> Vec<u64> {
    s.registrations.iter().map(|r| r.key).collect()
}

fn good() -> Outcome {
    Outcome::Good(vec![])
}

#[test]
fn register_change_and_unregister() {
    let (a, b) = (port("iqn.a", 1), port("iqn.b", 2));
    let mut s = State::default();
    // Not registered: a nonzero RESERVATION KEY conflicts; SARK 0 does nothing.
    assert_eq!(
        out(&mut s, &a, PrOutAction::Register, 0, &list(5, 7, 0)),
        Outcome::Conflict
    );
    assert_eq!(
        out(&mut s, &a, PrOutAction::Register, 0, &list(0, 0, 0)),
        good()
    );
    assert_eq!(s.generation, 0);
    register(&mut s, &a, 0xa);
    register(&mut s, &b, 0xb);
    assert_eq!((keys(&s), s.generation), (vec![0xa, 0xb], 2));
    // Registered: the key must match; then SARK replaces it.
    assert_eq!(
        out(&mut s, &a, PrOutAction::Register, 0, &list(0xb, 0xc, 0)),
        Outcome::Conflict
    );
    assert_eq!(
        out(&mut s, &a, PrOutAction::Register, 0, &list(0xa, 0xc, 0)),
        good()
    );
    // REGISTER AND IGNORE EXISTING KEY ignores it.
    assert_eq!(
        out(
            &mut s,
            &a,
            PrOutAction::RegisterAndIgnoreExistingKey,
            0,
            &list(0x99, 0xd, 0)
        ),
        good()
    );
    assert_eq!(keys(&s), [0xd, 0xb]);
    // SARK 0 unregisters.
    assert_eq!(
        out(&mut s, &a, PrOutAction::Register, 0, &list(0xd, 0, 0)),
        good()
    );
    assert_eq!((keys(&s), s.generation), (vec![0xb], 5));
    // The same name with another ISID is another I_T nexus.
    assert_eq!(s.registration(&port("iqn.b", 3)), None);
    assert_eq!(s.registration(&port("IQN.B", 2)), Some(0));
}

#[test]
fn spec_i_pt_registers_the_named_ports() {
    let a = port("iqn.a", 1);
    let mut s = State::default();
    let p = crate::scsi::persistent_reservation::PrOutParameters {
        service_action_reservation_key: 0x77,
        spec_i_pt: true,
        transport_ids: vec![
            port("iqn.b", 2).transport_id(),
            InitiatorPort {
                name: "iqn.c".into(),
                isid: None,
            }
            .transport_id(),
        ],
        ..Default::default()
    };
    let l = p.encode();
    assert_eq!(out(&mut s, &a, PrOutAction::Register, 0, &l), good());
    assert_eq!(keys(&s), [0x77, 0x77, 0x77]);
    // A TransportID without ISID covers every ISID of the name.
    assert_eq!(s.registration(&port("iqn.c", 9)), Some(2));
    // SPEC_I_PT from a registered nexus, or with another service action: 26/00.
    let e = out(&mut s, &a, PrOutAction::Register, 0, &l);
    assert!(matches!(e, Outcome::Conflict | Outcome::Check(_)));
    let Outcome::Check(sense) = out(&mut s, &a, PrOutAction::RegisterAndIgnoreExistingKey, 0, &l)
    else {
        panic!("26/00 expected");
    };
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_PARAMETER_LIST);
}

#[test]
fn reserve_release_and_unit_attentions() {
    let (a, b) = (port("iqn.a", 1), port("iqn.b", 2));
    let mut s = State::default();
    // Not registered: RESERVE conflicts.
    assert_eq!(
        out(&mut s, &a, PrOutAction::Reserve, 5, &list(0, 0, 0)),
        Outcome::Conflict
    );
    register(&mut s, &a, 1);
    register(&mut s, &b, 2);
    // Wrong key: conflict; a bad TYPE: 24/00 at byte 2.
    assert_eq!(
        out(&mut s, &a, PrOutAction::Reserve, 5, &list(2, 0, 0)),
        Outcome::Conflict
    );
    let Outcome::Check(sense) = out(&mut s, &a, PrOutAction::Reserve, 2, &list(1, 0, 0)) else {
        panic!("24/00 expected");
    };
    assert_eq!(
        (sense.asc, sense.field_pointer()),
        (Asc::INVALID_FIELD_IN_CDB, Some(2))
    );
    assert_eq!(
        out(&mut s, &a, PrOutAction::Reserve, 5, &list(1, 0, 0)),
        good()
    );
    // Again with the same type: GOOD; another type, or from b: conflict.
    assert_eq!(
        out(&mut s, &a, PrOutAction::Reserve, 5, &list(1, 0, 0)),
        good()
    );
    assert_eq!(
        out(&mut s, &a, PrOutAction::Reserve, 1, &list(1, 0, 0)),
        Outcome::Conflict
    );
    assert_eq!(
        out(&mut s, &b, PrOutAction::Reserve, 5, &list(2, 0, 0)),
        Outcome::Conflict
    );
    assert!(s.is_holder(&a) && !s.is_holder(&b));
    // RELEASE from a non-holder: GOOD, nothing changes.
    assert_eq!(
        out(&mut s, &b, PrOutAction::Release, 5, &list(2, 0, 0)),
        good()
    );
    assert!(s.reservation.is_some());
    // From the holder with the wrong TYPE: 26/04.
    let Outcome::Check(sense) = out(&mut s, &a, PrOutAction::Release, 1, &list(1, 0, 0)) else {
        panic!("26/04 expected");
    };
    assert_eq!(sense.asc, Asc::INVALID_RELEASE_OF_PERSISTENT_RESERVATION);
    assert_eq!(
        out(&mut s, &a, PrOutAction::Release, 5, &list(1, 0, 0)),
        good()
    );
    assert_eq!(s.reservation, None);
    // A registrants-only reservation released: RESERVATIONS RELEASED to b only.
    assert_eq!(s.take_attention(&a), None);
    assert_eq!(s.take_attention(&b), Some(Asc::RESERVATIONS_RELEASED));
    assert_eq!(s.take_attention(&b), None);
    // Releasing a Write Exclusive reservation raises nothing.
    assert_eq!(
        out(&mut s, &a, PrOutAction::Reserve, 1, &list(1, 0, 0)),
        good()
    );
    assert_eq!(
        out(&mut s, &a, PrOutAction::Release, 1, &list(1, 0, 0)),
        good()
    );
    assert_eq!(s.take_attention(&b), None);
    assert_eq!(
        s.generation, 2,
        "RESERVE and RELEASE leave PRGENERATION alone"
    );
}

#[test]
fn all_registrants_hold_together() {
    let (a, b) = (port("iqn.a", 1), port("iqn.b", 2));
    let mut s = State::default();
    register(&mut s, &a, 1);
    register(&mut s, &b, 2);
    assert_eq!(
        out(&mut s, &a, PrOutAction::Reserve, 8, &list(1, 0, 0)),
        good()
    );
    assert!(s.is_holder(&a) && s.is_holder(&b));
    // The reserver unregisters: the reservation stays while anyone is registered.
    assert_eq!(
        out(&mut s, &a, PrOutAction::Register, 0, &list(1, 0, 0)),
        good()
    );
    assert!(s.reservation.is_some());
    // b releases it (any registrant may).
    assert_eq!(
        out(&mut s, &b, PrOutAction::Reserve, 8, &list(2, 0, 0)),
        good()
    );
    assert_eq!(
        out(&mut s, &b, PrOutAction::Register, 0, &list(2, 0, 0)),
        good()
    );
    assert_eq!(s.reservation, None);
    let data = s.reserve_in(PrInAction::ReadReservation);
    assert_eq!(data, [0, 0, 0, 4, 0, 0, 0, 0]);
}

#[test]
fn holder_unregistering_releases() {
    let (a, b) = (port("iqn.a", 1), port("iqn.b", 2));
    let mut s = State::default();
    register(&mut s, &a, 1);
    register(&mut s, &b, 2);
    assert_eq!(
        out(&mut s, &a, PrOutAction::Reserve, 6, &list(1, 0, 0)),
        good()
    );
    assert_eq!(
        out(&mut s, &a, PrOutAction::Register, 0, &list(1, 0, 0)),
        good()
    );
    assert_eq!(s.reservation, None);
    assert_eq!(s.take_attention(&b), Some(Asc::RESERVATIONS_RELEASED));
}

#[test]
fn clear_and_preempt() {
    let (a, b, c) = (port("iqn.a", 1), port("iqn.b", 2), port("iqn.c", 3));
    let mut s = State::default();
    register(&mut s, &a, 1);
    register(&mut s, &b, 2);
    register(&mut s, &c, 2);
    assert_eq!(
        out(&mut s, &b, PrOutAction::Reserve, 1, &list(2, 0, 0)),
        good()
    );
    // PREEMPT by a of key 2 (the holder's): both b and c go, a holds EA now.
    assert_eq!(
        out(&mut s, &a, PrOutAction::Preempt, 3, &list(1, 2, 0)),
        good()
    );
    assert_eq!(keys(&s), [1]);
    assert_eq!(
        s.reservation,
        Some(Held {
            holder: a.clone(),
            kind: ExclusiveAccess
        })
    );
    assert_eq!(s.take_attention(&b), Some(Asc::REGISTRATIONS_PREEMPTED));
    assert_eq!(s.take_attention(&c), Some(Asc::REGISTRATIONS_PREEMPTED));
    // PREEMPT aborts nothing.
    assert!(s.preempted.is_empty());
    // PREEMPT of a key nobody has: conflict; of key 0 without a reservation to take: 26/00.
    assert_eq!(
        out(&mut s, &a, PrOutAction::Preempt, 3, &list(1, 9, 0)),
        Outcome::Conflict
    );
    register(&mut s, &b, 2);
    assert_eq!(
        out(&mut s, &a, PrOutAction::Release, 3, &list(1, 0, 0)),
        good()
    );
    let Outcome::Check(sense) = out(&mut s, &a, PrOutAction::Preempt, 3, &list(1, 0, 0)) else {
        panic!("26/00 expected");
    };
    assert_eq!(
        (sense.asc, sense.field_pointer()),
        (Asc::INVALID_FIELD_IN_PARAMETER_LIST, Some(8))
    );
    // Without a reservation PREEMPT removes registrations only.
    assert_eq!(
        out(&mut s, &a, PrOutAction::PreemptAndAbort, 0, &list(1, 2, 0)),
        good()
    );
    assert_eq!((keys(&s), s.reservation.clone()), (vec![1], None));
    // ... and, PREEMPT AND ABORT, names the preempted ports for their tasks to be aborted.
    assert_eq!(s.preempted, std::slice::from_ref(&b));
    s.preempted.clear();
    // CLEAR: everything goes, RESERVATIONS PREEMPTED to the others.
    register(&mut s, &b, 2);
    assert_eq!(
        out(&mut s, &b, PrOutAction::Clear, 0, &list(1, 0, 0)),
        Outcome::Conflict
    );
    assert_eq!(
        out(&mut s, &b, PrOutAction::Clear, 0, &list(2, 0, 0)),
        good()
    );
    assert!(s.registrations.is_empty());
    assert_eq!(s.take_attention(&a), Some(Asc::RESERVATIONS_PREEMPTED));
    assert_eq!(s.take_attention(&a), None);
    // b's registration preempted earlier is still pending for it.
    assert_eq!(s.take_attention(&b), Some(Asc::REGISTRATIONS_PREEMPTED));
    assert_eq!(s.take_attention(&b), None);
}

#[test]
fn preempt_all_registrants_with_key_zero() {
    let (a, b) = (port("iqn.a", 1), port("iqn.b", 2));
    let mut s = State::default();
    register(&mut s, &a, 1);
    register(&mut s, &b, 2);
    assert_eq!(
        out(&mut s, &b, PrOutAction::Reserve, 7, &list(2, 0, 0)),
        good()
    );
    assert_eq!(
        out(&mut s, &a, PrOutAction::Preempt, 1, &list(1, 0, 0)),
        good()
    );
    assert_eq!(keys(&s), [1]);
    assert_eq!(s.reservation.as_ref().map(|h| h.kind), Some(WriteExclusive));
    assert_eq!(s.take_attention(&b), Some(Asc::REGISTRATIONS_PREEMPTED));
}

#[test]
fn register_and_move() {
    use crate::scsi::persistent_reservation::RegisterAndMoveParameters;
    let (a, b) = (port("iqn.a", 1), port("iqn.b", 2));
    let mut s = State::default();
    let mv = |key, sa, to: &InitiatorPort, unreg| {
        RegisterAndMoveParameters {
            reservation_key: key,
            service_action_reservation_key: sa,
            unreg,
            aptpl: false,
            relative_target_port: TARGET_PORT,
            transport_id: to.transport_id(),
        }
        .encode()
    };
    register(&mut s, &a, 1);
    // No reservation: conflict.
    assert_eq!(
        out(
            &mut s,
            &a,
            PrOutAction::RegisterAndMove,
            0,
            &mv(1, 5, &b, false)
        ),
        Outcome::Conflict
    );
    assert_eq!(
        out(&mut s, &a, PrOutAction::Reserve, 3, &list(1, 0, 0)),
        good()
    );
    // To itself: 26/00.
    assert!(matches!(
        out(
            &mut s,
            &a,
            PrOutAction::RegisterAndMove,
            0,
            &mv(1, 5, &a, false)
        ),
        Outcome::Check(_)
    ));
    assert_eq!(
        out(
            &mut s,
            &a,
            PrOutAction::RegisterAndMove,
            0,
            &mv(1, 5, &b, true)
        ),
        good()
    );
    assert_eq!(keys(&s), [5]);
    assert_eq!(
        s.reservation,
        Some(Held {
            holder: b.clone(),
            kind: ExclusiveAccess
        })
    );
    // A non-holder cannot move it.
    register(&mut s, &a, 1);
    assert_eq!(
        out(
            &mut s,
            &a,
            PrOutAction::RegisterAndMove,
            0,
            &mv(1, 6, &port("iqn.c", 3), false)
        ),
        Outcome::Conflict
    );
}

#[test]
fn read_keys_and_full_status() {
    let (a, b) = (port("iqn.a", 1), port("iqn.b", 2));
    let mut s = State::default();
    register(&mut s, &a, 0x11);
    assert_eq!(
        out(&mut s, &b, PrOutAction::Register, 0, &list(0, 0x22, 0x04)),
        good()
    );
    assert_eq!(
        out(&mut s, &b, PrOutAction::Reserve, 1, &list(0x22, 0, 0)),
        good()
    );
    assert_eq!(
        s.reserve_in(PrInAction::ReadKeys),
        [0, 0, 0, 2, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0x11, 0, 0, 0, 0, 0, 0, 0, 0x22]
    );
    assert_eq!(
        s.reserve_in(PrInAction::ReadReservation)[8..22],
        [0, 0, 0, 0, 0, 0, 0, 0x22, 0, 0, 0, 0, 0, 0x01]
    );
    let full = s.reserve_in(PrInAction::ReadFullStatus);
    // Two descriptors of 24 bytes and a 28-byte TransportID each ("iqn.a,i,0x400000000001"
    // is 22 bytes: ADDITIONAL LENGTH 24 with its NUL and padding, after a 4-byte header).
    assert_eq!(full[..8], [0, 0, 0, 2, 0, 0, 0, 104]);
    assert_eq!(full[8 + 12], 0x00);
    assert_eq!(full[8 + 52 + 12..8 + 52 + 14], [0x03, 0x01]);
    assert_eq!(full[8 + 52 + 18..8 + 52 + 24], [0, 1, 0, 0, 0, 28]);
    assert_eq!(&full[8 + 24..8 + 24 + 4], &[0x45, 0, 0, 24]);
    assert_eq!(&full[8 + 28..8 + 28 + 22], b"iqn.a,i,0x400000000001");
}

#[test]
fn spc2_with_compatible_reservation_handling() {
    let (a, b) = (port("iqn.a", 1), port("iqn.b", 2));
    let mut s = State::default();
    assert_eq!(s.spc2(&a, 7, true), good());
    assert_eq!(s.spc2(&a, 7, true), good());
    assert_eq!(s.spc2(&b, 8, true), Outcome::Conflict);
    assert_eq!(s.spc2(&b, 8, false), good());
    assert!(s.spc2.is_some());
    assert_eq!(s.spc2(&a, 7, false), good());
    assert_eq!(s.spc2, None);
    // Registrations exist: RESERVE from an unregistered nexus conflicts; from the holder of
    // the persistent reservation it is GOOD and changes nothing.
    register(&mut s, &a, 1);
    assert_eq!(s.spc2(&b, 8, true), Outcome::Conflict);
    assert_eq!(
        out(&mut s, &a, PrOutAction::Reserve, 1, &list(1, 0, 0)),
        good()
    );
    assert_eq!(s.spc2(&a, 7, true), good());
    assert_eq!(s.spc2, None);
}

#[test]
fn the_copy_manager_takes_no_unit_attentions() {
    let a = port("iqn.a", 1);
    let cm = super::super::copy_manager_port();
    let mut s = State::default();
    register(&mut s, &a, 1);
    register(&mut s, &cm, 2);
    assert_eq!(
        out(&mut s, &a, PrOutAction::Reserve, 5, &list(1, 0, 0)),
        good()
    );
    // CLEAR: RESERVATIONS PREEMPTED for every other registrant, but none for the copy
    // manager; nor for its name written in another case.
    assert_eq!(
        out(&mut s, &a, PrOutAction::Clear, 0, &list(1, 0, 0)),
        good()
    );
    s.attention_to(
        InitiatorPort {
            name: super::super::COPY_MANAGER_PORT.to_ascii_uppercase(),
            isid: None,
        },
        Asc::REGISTRATIONS_PREEMPTED,
    );
    assert!(s.attention.is_empty(), "{:?}", s.attention);
    assert_eq!(s.take_attention(&cm), None);
}
