//! Unit tests of the drive's corners; the end-to-end behaviour is in tests/tape.rs.

use super::*;
use crate::scsi::Status;

fn drive(config: TapeConfig) -> (tempfile::TempDir, EmulatedTape, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.tap");
    let (tape, _) = EmulatedTape::open("t", &path, config).unwrap();
    (dir, tape, path)
}

fn run(t: &EmulatedTape, cdb: &[u8]) -> Completion {
    t.execute(cdb, DataDirection::None).unwrap()
}

fn sense(c: &Completion) -> Sense {
    assert_eq!(c.status, Status::CHECK_CONDITION);
    Sense::decode(&c.sense).unwrap()
}

#[test]
fn config_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.tap");
    for config in [
        TapeConfig {
            early_warning: 10,
            capacity: 5,
            ..TapeConfig::default()
        },
        TapeConfig {
            block_size: 70_000,
            max_block_length: 65_536,
            ..TapeConfig::default()
        },
        TapeConfig {
            max_block_length: 1 << 24,
            ..TapeConfig::default()
        },
    ] {
        let e = EmulatedTape::open("t", &path, config).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
    assert!(!path.exists(), "nothing created for a rejected config");
}

#[test]
fn empty_cdb_and_unknown_opcode_are_invalid_command_operation_code() {
    // SPC-3: an unsupported operation code is 05/20/00.
    let (_d, t, _) = drive(TapeConfig::default());
    for cdb in [&[][..], &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0][..]] {
        let s = sense(&run(&t, cdb));
        assert_eq!(
            (s.key, s.asc),
            (
                SenseKey::ILLEGAL_REQUEST,
                Asc::INVALID_COMMAND_OPERATION_CODE
            )
        );
    }
}

#[test]
fn request_sense_descriptor_format() {
    // SPC-3 REQUEST SENSE with DESC=1: descriptor-format sense (72h).
    let (_d, t, _) = drive(TapeConfig::default());
    let mut buf = [0u8; 32];
    let c = t
        .execute(&[0x03, 1, 0, 0, 32, 0], DataDirection::FromDevice(&mut buf))
        .unwrap();
    assert!(c.is_good());
    assert_eq!(buf[..4], [0x72, 0x00, 0x00, 0x00]);
    assert_eq!(c.residual, 32 - 8);
}

#[test]
fn mode_select_parameter_list_longer_than_the_data() {
    // The CDB promises 12 bytes, 4 arrive: 05/24/00 at PARAMETER LIST LENGTH (byte 4).
    let (_d, t, _) = drive(TapeConfig::default());
    let c = t
        .execute(
            &[0x15, 0x10, 0, 0, 12, 0],
            DataDirection::ToDevice(&[0, 0, 0x10, 0]),
        )
        .unwrap();
    let s = sense(&c);
    assert_eq!(s.asc, Asc::INVALID_FIELD_IN_CDB);
    assert_eq!(s.field_pointer(), Some(4));
}

#[test]
fn locate_to_another_partition_is_invalid() {
    // SSC-3 LOCATE(10): CP=1 with a partition the drive does not have: 24/00 at byte 8.
    let (_d, t, _) = drive(TapeConfig::default());
    let s = sense(&run(&t, &[0x2b, 0x02, 0, 0, 0, 0, 0, 0, 1, 0]));
    assert_eq!(s.asc, Asc::INVALID_FIELD_IN_CDB);
    assert_eq!(s.field_pointer(), Some(8));
    assert!(run(&t, &[0x2b, 0x02, 0, 0, 0, 0, 0, 0, 0, 0]).is_good());
}

#[test]
fn write_filemarks_zero_flushes_and_immed_is_accepted() {
    // SSC-3 WRITE FILEMARKS(6): a count of zero writes nothing and is GOOD.
    let (_d, t, path) = drive(TapeConfig::default());
    assert!(run(&t, &[0x10, 0, 0, 0, 0, 0]).is_good());
    assert!(run(&t, &[0x10, 1, 0, 0, 2, 0]).is_good());
    assert_eq!(std::fs::read(&path).unwrap(), [0u8; 8]);
    assert_eq!(t.position(), 2);
}

#[test]
fn position_commands_need_a_loaded_medium() {
    let (_d, t, _) = drive(TapeConfig::default());
    assert!(run(&t, &[0x1b, 0, 0, 0, 0, 0]).is_good());
    for cdb in [
        &[0x11, 0, 0, 0, 1, 0][..],
        &[0x2b, 0, 0, 0, 0, 0, 1, 0, 0, 0][..],
        &[0x10, 0, 0, 0, 1, 0][..],
        &[0x19, 0, 0, 0, 0, 0][..],
        &[0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],
    ] {
        let s = sense(&run(&t, cdb));
        assert_eq!(
            (s.key, s.asc),
            (SenseKey::NOT_READY, Asc::MEDIUM_NOT_PRESENT),
            "{cdb:02x?}"
        );
    }
    // MODE SENSE and READ BLOCK LIMITS work without a medium.
    let mut buf = [0u8; 6];
    let c = t
        .execute(&[0x05, 0, 0, 0, 0, 0], DataDirection::FromDevice(&mut buf))
        .unwrap();
    assert!(c.is_good());
}

#[test]
fn fixed_mode_write_needs_a_block_length_and_the_data() {
    // SSC-3 WRITE(6): FIXED=1 in variable mode is 24/00 at byte 1 bit 0; a buffer shorter
    // than the transfer is 24/00 at the TRANSFER LENGTH; zero blocks is GOOD.
    let (_d, t, path) = drive(TapeConfig::default());
    let c = t
        .execute(&[0x0a, 1, 0, 0, 1, 0], DataDirection::ToDevice(&[0; 512]))
        .unwrap();
    assert_eq!(sense(&c).field_pointer(), Some(1));
    let c = t
        .execute(&[0x0a, 0, 0, 2, 0, 0], DataDirection::ToDevice(&[0; 100]))
        .unwrap();
    assert_eq!(sense(&c).field_pointer(), Some(2));
    let c = t
        .execute(&[0x0a, 0, 0, 0, 0, 0], DataDirection::ToDevice(&[0; 10]))
        .unwrap();
    assert_eq!((c.status, c.residual), (Status::GOOD, 10));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
}
