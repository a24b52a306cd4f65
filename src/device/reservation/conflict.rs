//! Which commands a reservation held by another I_T nexus lets through: SPC-4 5.13.1 Table 66
//! (SPC commands), SBC-3 4.17 Table 13 (block commands) and SSC-3 4.2.16 (tape commands) for
//! persistent reservations, and SPC-2 5.5.1 for RESERVE/RELEASE.
//!
//! Every row of those tables is one of three patterns, given as
//! (Write Exclusive, Exclusive Access, WE registrants-only/all-registrants from a registered /
//! not registered I_T nexus, EA RO/AR registered / not registered):
//! - [`Class::Allowed`]: A A A A A A (INQUIRY, REPORT LUNS, TEST UNIT READY, READ CAPACITY…);
//! - [`Class::Read`]: A C A A A C (READ, VERIFY, MODE SENSE, RECEIVE COPY RESULTS, GET LBA
//!   STATUS, PRE-FETCH…): reads are shared under Write Exclusive;
//! - [`Class::Write`]: C C A C A C (WRITE, WRITE SAME, UNMAP, COMPARE AND WRITE, SANITIZE,
//!   SYNCHRONIZE CACHE, MODE SELECT, EXTENDED COPY…), and every command not listed.
//!
//! PERSISTENT RESERVE OUT, RESERVE and RELEASE are [`Class::Own`]: their own processing
//! decides (SPC-4 Table 67, 5.13.3).

use crate::scsi::persistent_reservation::ReservationType;
use crate::scsi::DeviceClass;

/// How a command fares under reservations held by other I_T nexuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Allowed,
    Read,
    Write,
    /// Decided by the command's own processing (PERSISTENT RESERVE OUT, RESERVE, RELEASE).
    Own,
}

/// Classifies `cdb` for a logical unit of `device` class (block or stream).
pub fn classify(cdb: &[u8], device: DeviceClass) -> Class {
    let byte = |i: usize| cdb.get(i).copied().unwrap_or(0);
    let op = byte(0);
    match op {
        // SPC-4 Table 66.
        0x00 | 0x03 | 0x12 | 0x4d | 0x5e | 0xa0 | 0x86 | 0x87 => Class::Allowed,
        0x5f | 0x16 | 0x17 | 0x56 | 0x57 => Class::Own,
        0x1a | 0x5a | 0x3c | 0x8c | 0x84 | 0x1c | 0xa2 => Class::Read,
        // MAINTENANCE IN: REPORT TARGET PORT GROUPS, REPORT ALIASES, REPORT PRIORITY, REPORT
        // TIMESTAMP, REPORT IDENTIFYING INFORMATION are allowed; REPORT SUPPORTED OPERATION
        // CODES, REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS, MANAGEMENT PROTOCOL IN read.
        0xa3 => match byte(1) & 0x1f {
            0x05 | 0x0a | 0x0b | 0x0e | 0x0f => Class::Allowed,
            _ => Class::Read,
        },
        // READ MEDIA SERIAL NUMBER (SERVICE ACTION IN(12) 01h).
        0xab if byte(1) & 0x1f == 0x01 => Class::Allowed,
        // PREVENT ALLOW MEDIUM REMOVAL with PREVENT 00b.
        0x1e if byte(4) & 0x03 == 0 => Class::Allowed,
        _ => match device {
            DeviceClass::Stream => stream(op),
            _ => block(op, byte(1), byte(4)),
        },
    }
}

/// SBC-3 Table 13.
fn block(op: u8, b1: u8, b4: u8) -> Class {
    match op {
        // READ CAPACITY(10); SERVICE ACTION IN(16): READ CAPACITY(16), REPORT REFERRALS are
        // allowed, GET LBA STATUS and READ LONG(16) read.
        0x25 => Class::Allowed,
        0x9e => match b1 & 0x1f {
            0x10 | 0x13 => Class::Allowed,
            _ => Class::Read,
        },
        // START STOP UNIT with START 1 and POWER CONDITION 0.
        0x1b if b4 & 0x01 == 1 && b4 >> 4 == 0 => Class::Allowed,
        // READ(6/10/12/16), VERIFY(10/12/16), PRE-FETCH(10/16), READ DEFECT DATA(10/12),
        // READ LONG(10).
        0x08 | 0x28 | 0xa8 | 0x88 | 0x2f | 0xaf | 0x8f | 0x34 | 0x90 | 0x37 | 0xb7 | 0x3e => {
            Class::Read
        }
        _ => Class::Write,
    }
}

/// SSC-3 4.2.16: the drive's limits and densities are allowed; READ, VERIFY, READ POSITION
/// and the positioning commands (which move no data to the medium) are shared under Write
/// Exclusive; everything else writes.
fn stream(op: u8) -> Class {
    match op {
        // READ BLOCK LIMITS, REPORT DENSITY SUPPORT.
        0x05 | 0x44 => Class::Allowed,
        // READ(6), READ(16), READ REVERSE, VERIFY(6/16), READ POSITION, SPACE(6/16),
        // LOCATE(10/16), REWIND.
        0x08 | 0x88 | 0x0f | 0x13 | 0x8f | 0x34 | 0x11 | 0x91 | 0x2b | 0x92 | 0x01 => Class::Read,
        _ => Class::Write,
    }
}

/// Whether a command of `class` from an I_T nexus that is not a holder of a `kind`
/// reservation (and is, or is not, registered) conflicts.
pub fn conflicts(class: Class, kind: ReservationType, registered: bool) -> bool {
    match class {
        Class::Allowed | Class::Own => false,
        _ if registered && kind.admits_registrants() => false,
        Class::Read => !kind.write_exclusive(),
        Class::Write => true,
    }
}

/// Whether `cdb` passes an SPC-2 reservation held by another I_T nexus (SPC-2 Tables 9-10
/// and SBC-2's: INQUIRY, REQUEST SENSE, REPORT LUNS, LOG SENSE, READ MEDIA SERIAL NUMBER,
/// READ CAPACITY, PREVENT ALLOW MEDIUM REMOVAL with PREVENT 0, and RELEASE, which then
/// releases nothing).
pub fn passes_spc2(cdb: &[u8]) -> bool {
    let byte = |i: usize| cdb.get(i).copied().unwrap_or(0);
    match byte(0) {
        0x12 | 0x03 | 0xa0 | 0x4d | 0x25 | 0x17 | 0x57 => true,
        0x9e => byte(1) & 0x1f == 0x10,
        0xab => byte(1) & 0x1f == 0x01,
        0x1e => byte(4) & 0x03 == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReservationType::*;

    /// The six columns of the tables for one command, as A/C letters.
    fn row(cdb: &[u8], device: DeviceClass) -> String {
        let class = classify(cdb, device);
        let cell = |kind, registered| {
            if conflicts(class, kind, registered) {
                'C'
            } else {
                'A'
            }
        };
        [
            cell(WriteExclusive, false),
            cell(ExclusiveAccess, false),
            cell(WriteExclusiveRegistrantsOnly, true),
            cell(WriteExclusiveAllRegistrants, false),
            cell(ExclusiveAccessRegistrantsOnly, true),
            cell(ExclusiveAccessAllRegistrants, false),
        ]
        .iter()
        .collect()
    }

    #[test]
    fn spc4_and_sbc3_rows() {
        let b = DeviceClass::Block;
        for (name, cdb, want) in [
            ("INQUIRY", &[0x12u8, 0, 0, 0, 36, 0][..], "AAAAAA"),
            ("TEST UNIT READY", &[0x00, 0, 0, 0, 0, 0], "AAAAAA"),
            ("REQUEST SENSE", &[0x03, 0, 0, 0, 18, 0], "AAAAAA"),
            (
                "PERSISTENT RESERVE IN",
                &[0x5e, 0, 0, 0, 0, 0, 0, 0, 8, 0],
                "AAAAAA",
            ),
            ("LOG SENSE", &[0x4d, 0, 0, 0, 0, 0, 0, 0, 0, 0], "AAAAAA"),
            ("MODE SENSE(6)", &[0x1a, 0, 0x3f, 0, 255, 0], "ACAAAC"),
            ("MODE SELECT(6)", &[0x15, 0x10, 0, 0, 0, 0], "CCACAC"),
            (
                "RECEIVE COPY RESULTS",
                &[0x84, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                "ACAAAC",
            ),
            (
                "EXTENDED COPY",
                &[0x83, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                "CCACAC",
            ),
            (
                "REPORT SUPPORTED OPCODES",
                &[0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                "ACAAAC",
            ),
            (
                "REPORT TARGET PORT GROUPS",
                &[0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                "AAAAAA",
            ),
            ("READ(10)", &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], "ACAAAC"),
            ("READ(16)", &[0x88; 16], "ACAAAC"),
            ("VERIFY(16)", &[0x8f; 16], "ACAAAC"),
            (
                "PRE-FETCH(10)",
                &[0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                "ACAAAC",
            ),
            (
                "READ DEFECT DATA(10)",
                &[0x37, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                "ACAAAC",
            ),
            (
                "GET LBA STATUS",
                &[0x9e, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 24, 0, 0],
                "ACAAAC",
            ),
            (
                "READ CAPACITY(16)",
                &[0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0],
                "AAAAAA",
            ),
            (
                "READ CAPACITY(10)",
                &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                "AAAAAA",
            ),
            ("WRITE(10)", &[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], "CCACAC"),
            ("WRITE SAME(16)", &[0x93; 16], "CCACAC"),
            ("UNMAP", &[0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], "CCACAC"),
            ("COMPARE AND WRITE", &[0x89; 16], "CCACAC"),
            (
                "SYNCHRONIZE CACHE(10)",
                &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                "CCACAC",
            ),
            ("SANITIZE", &[0x48, 0x02, 0, 0, 0, 0, 0, 0, 0, 0], "CCACAC"),
            ("START STOP UNIT start", &[0x1b, 0, 0, 0, 0x01, 0], "AAAAAA"),
            ("START STOP UNIT stop", &[0x1b, 0, 0, 0, 0x00, 0], "CCACAC"),
            ("START STOP UNIT power", &[0x1b, 0, 0, 0, 0x21, 0], "CCACAC"),
            ("PREVENT ALLOW allow", &[0x1e, 0, 0, 0, 0, 0], "AAAAAA"),
            ("PREVENT ALLOW prevent", &[0x1e, 0, 0, 0, 1, 0], "CCACAC"),
            ("unknown opcode", &[0xc0, 0, 0, 0, 0, 0], "CCACAC"),
        ] {
            assert_eq!(row(cdb, b), want, "{name}");
        }
        assert_eq!(classify(&[0x5f, 0, 0, 0, 0, 0, 0, 0, 24, 0], b), Class::Own);
        assert_eq!(classify(&[0x16, 0, 0, 0, 0, 0], b), Class::Own);
        assert_eq!(classify(&[], b), Class::Allowed);
    }

    #[test]
    fn unregistered_nexus_under_registrants_types() {
        // Not registered: the RO/AR columns behave as WE / EA.
        let read = classify(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], DeviceClass::Block);
        assert!(!conflicts(read, WriteExclusiveRegistrantsOnly, false));
        assert!(conflicts(read, ExclusiveAccessRegistrantsOnly, false));
        // Registration does not help under WE / EA.
        assert!(conflicts(read, ExclusiveAccess, true));
        let write = classify(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], DeviceClass::Block);
        assert!(conflicts(write, WriteExclusive, true));
    }

    #[test]
    fn tape_rows() {
        let t = DeviceClass::Stream;
        assert_eq!(row(&[0x05, 0, 0, 0, 0, 0], t), "AAAAAA");
        assert_eq!(row(&[0x08, 0, 0, 0, 1, 0], t), "ACAAAC");
        assert_eq!(row(&[0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0], t), "ACAAAC");
        assert_eq!(row(&[0x01, 0, 0, 0, 0, 0], t), "ACAAAC");
        assert_eq!(row(&[0x0a, 0, 0, 0, 1, 0], t), "CCACAC");
        assert_eq!(row(&[0x10, 0, 0, 0, 1, 0], t), "CCACAC");
        assert_eq!(row(&[0x19, 0, 0, 0, 0, 0], t), "CCACAC");
    }

    #[test]
    fn spc2_passes() {
        for cdb in [
            &[0x12u8, 0, 0, 0, 36, 0][..],
            &[0x03, 0, 0, 0, 18, 0],
            &[0x17, 0, 0, 0, 0, 0],
            &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[0x1e, 0, 0, 0, 0, 0],
        ] {
            assert!(passes_spc2(cdb), "{cdb:02x?}");
        }
        for cdb in [
            &[0x00u8, 0, 0, 0, 0, 0][..],
            &[0x16, 0, 0, 0, 0, 0],
            &[0x5e, 0, 0, 0, 0, 0, 0, 0, 8, 0],
            &[0x1a, 0, 0x3f, 0, 255, 0],
            &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0],
            &[0x1e, 0, 0, 0, 1, 0],
        ] {
            assert!(!passes_spc2(cdb), "{cdb:02x?}");
        }
    }
}
