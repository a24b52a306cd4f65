//! The planners, with no device, file or thread: each segment's command and its bytes as
//! SPC-3/SPC-4 lay them out, and 13h's loop driven by made-up read completions.

use super::*;
use crate::scsi::segment_descriptor::CscdId;

const D: CscdId = CscdId(1);

fn check(key: SenseKey, filemark: bool, ili: bool, information: Option<u64>) -> ReadResult {
    ReadResult::Check {
        key,
        filemark,
        ili,
        information,
    }
}

#[test]
fn one_command_segments_send_their_one_command() {
    let tur = command_segment(&Segment::VerifyCscd {
        source: D,
        tur: true,
    })
    .unwrap();
    assert_eq!(tur, Planned::to(Side::Source, Op::TestUnitReady));
    let inquiry = command_segment(&Segment::VerifyCscd {
        source: D,
        tur: false,
    })
    .unwrap();
    assert_eq!((inquiry.side, inquiry.data_in), (Side::Source, 36));
    assert_eq!(&*inquiry.op.cdb(), &[0x12, 0, 0, 0, 36, 0]);

    let filemarks = command_segment(&Segment::WriteFilemarks {
        destination: D,
        immed: true,
        count: 0x01_0203,
    })
    .unwrap();
    assert_eq!(filemarks.side, Side::Destination);
    assert_eq!(&*filemarks.op.cdb(), &[0x10, 1, 1, 2, 3, 0]);

    let space = command_segment(&Segment::Space {
        destination: D,
        code: 1,
        count: -2,
    })
    .unwrap();
    assert_eq!(space.side, Side::Destination);
    assert_eq!(&*space.op.cdb(), &[0x11, 1, 0xff, 0xff, 0xfe, 0]);

    let locate = command_segment(&Segment::Locate {
        destination: D,
        logical_object_id: 7,
    })
    .unwrap();
    assert_eq!(locate.side, Side::Destination);
    assert_eq!(&*locate.op.cdb(), &[0x2b, 0, 0, 0, 0, 0, 7, 0, 0, 0]);
    for p in [&tur, &filemarks, &space, &locate] {
        assert!(p.data_out.is_empty() && p.data_in == 0, "{p:?}");
    }
}

/// 14h: PERSISTENT RESERVE OUT REGISTER with the basic 24-byte list (SPC-4 6.16.3):
/// RESERVATION KEY, SERVICE ACTION RESERVATION KEY, then zeros (no SPEC_I_PT, ALL_TG_PT or
/// APTPL).
#[test]
fn register_key_sends_register_with_both_keys() {
    let p = command_segment(&Segment::RegisterKey {
        destination: D,
        reservation_key: 0x0102_0304_0506_0708,
        service_action_reservation_key: 0x1112_1314_1516_1718,
    })
    .unwrap();
    assert_eq!(p.side, Side::Destination);
    assert_eq!(&*p.op.cdb(), &[0x5f, 0x00, 0, 0, 0, 0, 0, 0, 24, 0]);
    let mut list = vec![
        1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
    ];
    list.extend([0; 8]);
    assert_eq!(p.data_out, list);
}

/// 15h: REGISTER AND MOVE with the segment's fields and its TransportID as it came
/// (SPC-4 6.16.4): keys, a reserved byte, UNREG (bit 1) and APTPL (bit 0), RELATIVE TARGET
/// PORT IDENTIFIER, TRANSPORTID PARAMETER DATA LENGTH, the TransportID. The CDB's
/// PARAMETER LIST LENGTH is the list's.
#[test]
fn third_party_reservation_is_register_and_move_at_the_end() {
    let tid = vec![0x05, 0, 0, 4, b'i', b'q', b'n', 0];
    let segment = Segment::ThirdPartyPrSource {
        destination: D,
        reservation_key: 9,
        service_action_reservation_key: 0x0a,
        unreg: true,
        aptpl: false,
        relative_target_port: 0x0203,
        transport_id: tid.clone(),
    };
    assert_eq!(command_segment(&segment), None);
    let p = register_and_move(&segment).unwrap();
    assert_eq!(p.side, Side::Destination);
    assert_eq!(&*p.op.cdb(), &[0x5f, 0x07, 0, 0, 0, 0, 0, 0, 32, 0]);
    let mut list = vec![0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0x0a];
    list.extend([0, 0x02, 0x02, 0x03, 0, 0, 0, 8]);
    list.extend(&tid);
    assert_eq!(p.data_out, list);
    let aptpl = Segment::ThirdPartyPrSource {
        destination: D,
        reservation_key: 9,
        service_action_reservation_key: 0x0a,
        unreg: false,
        aptpl: true,
        relative_target_port: 0,
        transport_id: tid,
    };
    assert_eq!(register_and_move(&aptpl).unwrap().data_out[17], 0x01);
    assert_eq!(
        register_and_move(&Segment::Locate {
            destination: D,
            logical_object_id: 0
        }),
        None
    );
}

#[test]
fn transfer_segments_are_not_one_command() {
    let segment = Segment::TapeImageCopy {
        source: D,
        destination: CscdId(2),
        count: 1,
    };
    assert_eq!(command_segment(&segment), None);
}

/// 13h reads with the drive's MAXIMUM BLOCK LENGTH LIMIT (READ BLOCK LIMITS bytes 1-3),
/// variable mode, SILI=0.
#[test]
fn tape_image_copy_reads_the_largest_record_the_drive_allows() {
    let limits = TapeImageCopy::limits();
    assert_eq!((limits.side, limits.data_in), (Side::Source, 6));
    assert_eq!(&*limits.op.cdb(), &[0x05, 0, 0, 0, 0, 0]);
    let mut copy = TapeImageCopy::new(0);
    assert_eq!(copy.start(&[0, 0x01, 0x00, 0x00, 0, 1]), 65536);
    let read = copy.read();
    assert_eq!((read.side, read.data_in), (Side::Source, 65536));
    assert_eq!(&*read.op.cdb(), &[0x08, 0, 0x01, 0, 0, 0]);
    assert_eq!(copy.start(&[0, 0xff, 0xff, 0xff, 0, 1]), 0xff_ffff);
    // No limit, or data too short to hold one: one byte at a time, never a zero-length
    // READ (which would read nothing, forever).
    assert_eq!(copy.start(&[0, 0, 0, 0, 0, 0]), 1);
    assert_eq!(copy.start(&[0, 1, 0]), 1);
    assert_eq!(&*copy.read().op.cdb(), &[0x08, 0, 0, 0, 1, 0]);
    let filemark = TapeImageCopy::filemark();
    assert_eq!(filemark.side, Side::Destination);
    assert_eq!(&*filemark.op.cdb(), &[0x10, 0, 0, 0, 1, 0]);
}

#[test]
fn tape_image_copy_writes_each_record_at_its_length() {
    let mut copy = TapeImageCopy::new(0);
    copy.start(&[0, 0, 0x03, 0xe8, 0, 1]); // 1000
    assert_eq!(
        copy.after_read(ReadResult::Good { residual: 0 }),
        Next::Record { len: 1000 }
    );
    assert_eq!(
        copy.after_read(ReadResult::Good { residual: 100 }),
        Next::Record { len: 900 }
    );
    assert_eq!(
        copy.after_read(ReadResult::Good { residual: 5000 }),
        Next::Record { len: 0 }
    );
    // A shorter record: ILI with INFORMATION = requested - actual.
    let ili = |information| check(SenseKey::NO_SENSE, false, true, Some(information));
    assert_eq!(copy.after_read(ili(200)), Next::Record { len: 800 });
    // Only the low 32 bits are the residue.
    assert_eq!(
        copy.after_read(ili(0x1_0000_00c8)),
        Next::Record { len: 800 }
    );
    // A longer record (negative residue): its first 1000 bytes were read.
    assert_eq!(
        copy.after_read(ili(u64::from((-5i32) as u32))),
        Next::Record { len: 1000 }
    );
    assert_eq!(copy.after_read(ili(2000)), Next::Record { len: 0 });
}

/// COUNT consecutive filemarks end the copy (a record between two resets the count);
/// COUNT 0 copies to end of data.
#[test]
fn tape_image_copy_ends_at_count_consecutive_filemarks_or_end_of_data() {
    let filemark = check(SenseKey::NO_SENSE, true, false, Some(0));
    let record = ReadResult::Good { residual: 0 };
    let mut copy = TapeImageCopy::new(2);
    copy.start(&[0, 0, 0, 16, 0, 1]);
    assert_eq!(copy.after_read(filemark), Next::Filemark { last: false });
    assert_eq!(copy.after_read(record), Next::Record { len: 16 });
    assert_eq!(copy.after_read(filemark), Next::Filemark { last: false });
    assert_eq!(copy.after_read(filemark), Next::Filemark { last: true });
    let mut one = TapeImageCopy::new(1);
    assert_eq!(one.after_read(filemark), Next::Filemark { last: true });
    let mut to_end = TapeImageCopy::new(0);
    for _ in 0..5 {
        assert_eq!(to_end.after_read(filemark), Next::Filemark { last: false });
    }
    // End of data: BLANK CHECK (with EOD, 00/05).
    let eod = check(SenseKey::BLANK_CHECK, false, false, None);
    assert_eq!(to_end.after_read(eod), Next::Done);
    // A filemark is a filemark whatever the key says.
    let mut marked = TapeImageCopy::new(1);
    let blank_mark = check(SenseKey::BLANK_CHECK, true, false, None);
    assert_eq!(marked.after_read(blank_mark), Next::Filemark { last: true });
}

#[test]
fn tape_image_copy_fails_the_source_on_any_other_read_error() {
    let mut copy = TapeImageCopy::new(0);
    copy.start(&[0, 0, 0, 16, 0, 1]);
    for result in [
        check(SenseKey::MEDIUM_ERROR, false, false, None),
        check(SenseKey::NOT_READY, false, false, None),
        // ILI without INFORMATION says no length.
        check(SenseKey::NO_SENSE, false, true, None),
        check(SenseKey::NO_SENSE, false, false, Some(4)),
        ReadResult::Undecoded,
    ] {
        assert_eq!(copy.after_read(result), Next::SourceFailed, "{result:?}");
    }
}
