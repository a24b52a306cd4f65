//! Stream commands (SSC-3, T10/1611-D) as bytes <-> types: the CDBs a tape drive answers,
//! the mode parameters it keeps (header, block descriptor, Data Compression page 0Fh, Device
//! Configuration page 10h), READ POSITION and READ BLOCK LIMITS data.
//!
//! Pure: no I/O, no panics on input. CDB errors are [`Reason::InvalidFieldInCdb`] with the
//! byte and bit of the offending field (05/24/00, C/D=1); parameter-list errors are
//! [`Reason::InvalidField`] (05/26/00, C/D=0) or truncation (05/1A/00).

mod medium;
mod mode;
mod position;
mod transfer;

use super::error::{DecodeError, Reason};

pub use medium::*;
pub use mode::*;
pub use position::*;
pub use transfer::*;

/// The largest block a 24-bit TRANSFER LENGTH can carry (SSC-3 READ BLOCK LIMITS).
pub const MAX_BLOCK_LENGTH_LIMIT: u32 = 0x00ff_ffff;

/// Density code "no change" in MODE SELECT (SSC-3 density codes: 7Fh).
pub const DENSITY_NO_CHANGE: u8 = 0x7f;

/// Mode page codes served by the emulated drive.
pub mod page {
    /// Page 00h (vendor specific): answered with the header and block descriptor only, as
    /// drives do; the Linux st driver reads the block length and WP this way.
    pub const NONE: u8 = 0x00;
    /// Data Compression mode page (SSC-3).
    pub const DATA_COMPRESSION: u8 = 0x0f;
    /// Device Configuration mode page (SSC-3).
    pub const DEVICE_CONFIGURATION: u8 = 0x10;
    /// Return all pages (SPC-3 MODE SENSE).
    pub const ALL: u8 = 0x3f;
}

fn cdb_bytes<const N: usize>(cdb: &[u8]) -> Result<[u8; N], DecodeError> {
    cdb.get(..N)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or_else(|| DecodeError::new(Reason::InvalidFieldInCdb, 0))
}

fn invalid_cdb(byte: usize, bit: u8) -> DecodeError {
    DecodeError::new(Reason::InvalidFieldInCdb, byte).with_bit(bit)
}

fn invalid_param(byte: usize, bit: u8) -> DecodeError {
    DecodeError::invalid_bit(byte, bit)
}

/// Fails at the highest set bit of `value & mask` (a reserved field that is not zero).
fn reserved(byte: usize, value: u8, mask: u8) -> Result<(), DecodeError> {
    match value & mask {
        0 => Ok(()),
        set => Err(invalid_cdb(byte, 7 - set.leading_zeros() as u8)),
    }
}

fn be24(a: u8, b: u8, c: u8) -> u32 {
    u32::from_be_bytes([0, a, b, c])
}

#[cfg(test)]
mod tests {
    use super::mode::{data_compression_page, device_configuration_page};
    use super::*;

    fn state() -> ModeState {
        ModeState {
            density_code: 0,
            block_length: 0,
            buffered_mode: 1,
            write_protect: false,
        }
    }

    #[test]
    fn read6_fixed_sili_and_length() {
        // SSC-3 READ(6): FIXED byte 1 bit 0, SILI bit 1, TRANSFER LENGTH bytes 2-4.
        let r = Read6::decode(&[0x08, 0x02, 0x01, 0x00, 0x00, 0]).unwrap();
        assert_eq!((r.fixed, r.sili, r.transfer_length), (false, true, 0x10000));
        assert_eq!(Read6::decode(&r.encode()).unwrap(), r);
        // SILI=1 with FIXED=1 is INVALID FIELD IN CDB at byte 1 bit 1.
        let e = Read6::decode(&[0x08, 0x03, 0, 0, 1, 0]).unwrap_err();
        assert_eq!(
            (e.reason, e.offset, e.bit),
            (Reason::InvalidFieldInCdb, 1, Some(1))
        );
        let e = Read6::decode(&[0x08, 0x40, 0, 0, 1, 0]).unwrap_err();
        assert_eq!((e.offset, e.bit), (1, Some(6)));
        assert_eq!(Read6::decode(&[0x08, 0]).unwrap_err().offset, 0);
    }

    #[test]
    fn space_count_is_signed_24_bit() {
        // SSC-3 SPACE(6): COUNT is a 24-bit two's complement value.
        let s = Space6::decode(&[0x11, 0x00, 0xff, 0xff, 0xfe, 0]).unwrap();
        assert_eq!((s.code, s.count), (SpaceCode::Blocks, -2));
        let s = Space6::decode(&[0x11, 0x01, 0x7f, 0xff, 0xff, 0]).unwrap();
        assert_eq!((s.code, s.count), (SpaceCode::Filemarks, 0x7f_ffff));
        let s = Space6::decode(&[0x11, 0x01, 0x80, 0x00, 0x00, 0]).unwrap();
        assert_eq!(s.count, -0x80_0000);
        assert_eq!(Space6::decode(&s.encode()).unwrap(), s);
        let e = Space6::decode(&[0x11, 0x02, 0, 0, 1, 0]).unwrap_err();
        assert_eq!((e.offset, e.bit), (1, Some(3)));
    }

    #[test]
    fn locate_forms() {
        // SSC-3 LOCATE(10): BT ignored, block address bytes 3-6.
        let l = Locate::decode10(&[0x2b, 0x04, 0, 0, 0, 1, 0x02, 0, 0, 0]).unwrap();
        assert_eq!(l.destination, LocateDestination::Object(0x102));
        assert_eq!(
            Locate::decode10(&Locate::encode10(7)).unwrap().destination,
            LocateDestination::Object(7)
        );
        // LOCATE(16) DEST_TYPE 001b: logical file identifier.
        let mut c = [0u8; 16];
        c[0] = 0x92;
        c[1] = 0x08;
        c[11] = 3;
        assert_eq!(
            Locate::decode16(&c).unwrap().destination,
            LocateDestination::File(3)
        );
        c[2] = 1; // BAM=1
        assert_eq!(Locate::decode16(&c).unwrap_err().offset, 2);
    }

    #[test]
    fn read_position_forms() {
        let cdb = |sa: u8| [0x34, sa, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            ReadPosition::decode(&cdb(0)).unwrap().form,
            ReadPositionForm::Short
        );
        assert_eq!(
            ReadPosition::decode(&cdb(1)).unwrap().form,
            ReadPositionForm::ShortVendor
        );
        assert_eq!(ReadPosition::decode(&cdb(6)).unwrap().data_length(), 32);
        let e = ReadPosition::decode(&cdb(8)).unwrap_err();
        assert_eq!(
            (e.reason, e.offset, e.bit),
            (Reason::InvalidFieldInCdb, 1, Some(4))
        );
        // SSC-3 READ POSITION short form: BOP bit 7, EOP bit 6; FIRST/LAST LOCATION bytes 4-7 / 8-11.
        let p = Position {
            bop: false,
            eop: true,
            partition: 0,
            object: 0x01020304,
            file: 2,
        };
        let s = p.encode_short();
        assert_eq!(s[0], 0x40);
        assert_eq!(s[4..12], [1, 2, 3, 4, 1, 2, 3, 4]);
        let l = p.encode_long();
        assert_eq!(l[8..16], [0, 0, 0, 0, 1, 2, 3, 4]);
        assert_eq!(l[16..24], [0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(Position::decode_long(&l), Some(p));
        assert_eq!(Position::decode_long(&l[..31]), None);
        let long = ReadPosition {
            form: ReadPositionForm::Long,
            allocation_length: 32,
        };
        assert_eq!(long.encode(), [0x34, 0x06, 0, 0, 0, 0, 0, 0, 32, 0]);
        assert_eq!(ReadPosition::decode(&long.encode()), Ok(long));
        let far = Position {
            object: 1 << 33,
            ..p
        };
        assert_eq!(far.encode_short()[0], 0x44, "LOLU set beyond 32 bits");
    }

    #[test]
    fn mode_sense_6_header_descriptor_and_pages() {
        // SPC-3 mode parameter header(6), SSC-3 block descriptor, pages 0Fh and 10h.
        let cdb = ModeSense::decode6(&[0x1a, 0, 0x3f, 0, 0xff, 0]).unwrap();
        let s = ModeState {
            block_length: 512,
            write_protect: true,
            ..state()
        };
        let d = mode_sense_data(&cdb, &s, &state());
        assert_eq!(d.len(), 4 + 8 + 16 + 16);
        assert_eq!(d[..4], [43, 0, 0x90, 8]);
        assert_eq!(d[4..12], [0, 0, 0, 0, 0, 0, 0x02, 0x00]);
        assert_eq!(d[12..16], [0x0f, 0x0e, 0x00, 0x00], "DCE=0 DCC=0");
        assert_eq!(d[28..30], [0x10, 0x0e]);
        assert_eq!(d[36], 0x40, "LOIS");
        assert_eq!(d[38], 0x18, "EEG SEW");
        // DBD, MODE SENSE(10), default values.
        let cdb = ModeSense::decode10(&[0x5a, 0x08, 0x90, 0, 0, 0, 0, 0, 0xff, 0]).unwrap();
        let d = mode_sense_data(&cdb, &s, &state());
        assert_eq!(d[..8], [0, 22, 0, 0x10, 0, 0, 0, 0]);
        assert_eq!(d.len(), 24);
        // Page 00h, as the Linux st driver asks: header and block descriptor only.
        let cdb = ModeSense::decode6(&[0x1a, 0, 0x00, 0, 12, 0]).unwrap();
        let d = mode_sense_data(&cdb, &s, &state());
        assert_eq!(d, [11, 0, 0x90, 8, 0, 0, 0, 0, 0, 0, 0x02, 0x00]);
        // Unsupported page and subpage.
        let e = ModeSense::decode6(&[0x1a, 0, 0x01, 0, 0xff, 0]).unwrap_err();
        assert_eq!((e.offset, e.bit), (2, Some(5)));
        assert_eq!(
            ModeSense::decode6(&[0x1a, 0, 0x10, 1, 0xff, 0])
                .unwrap_err()
                .offset,
            3
        );
    }

    #[test]
    fn mode_select_changes_block_length_and_buffered_mode() {
        // SSC-3 mode parameter block descriptor: BLOCK LENGTH 0 = variable.
        let p = [0, 0, 0x10, 8, 0, 0, 0, 0, 0, 0, 0x04, 0x00];
        let next = mode_select(&p, false, &state(), 0xffff).unwrap();
        assert_eq!((next.block_length, next.buffered_mode), (1024, 1));
        let p = [0, 0, 0x00, 0];
        assert_eq!(
            mode_select(&p, false, &next, 0xffff).unwrap().buffered_mode,
            0
        );
        // Block length beyond the limit: 26/00 at the BLOCK LENGTH field.
        let p = [0, 0, 0x10, 8, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00];
        let e = mode_select(&p, false, &state(), 0xffff).unwrap_err();
        assert_eq!((e.reason, e.offset), (Reason::InvalidField, 9));
        // Unknown density.
        let p = [0, 0, 0x10, 8, 0x44, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            mode_select(&p, false, &state(), 0xffff).unwrap_err().offset,
            4
        );
        // Truncated descriptor: 1A/00.
        let e = mode_select(&[0, 0, 0x10, 8, 0], false, &state(), 0xffff).unwrap_err();
        assert_eq!(e.reason, Reason::Truncated);
    }

    #[test]
    fn mode_select_pages_reject_changes_to_unchangeable_fields() {
        // SPC-3 MODE SELECT: changing a non-changeable field is 26/00 with the field pointer.
        let mut p = vec![0, 0, 0x10, 0];
        p.extend_from_slice(&data_compression_page());
        p[4] |= 0x80; // PS is ignored in MODE SELECT
        assert_eq!(mode_select(&p, false, &state(), 0xffff).unwrap(), state());
        p[6] = 0x80; // DCE=1 on a drive with DCC=0
        let e = mode_select(&p, false, &state(), 0xffff).unwrap_err();
        assert_eq!(
            (e.reason, e.offset, e.bit),
            (Reason::InvalidField, 6, Some(7))
        );
        let mut p = vec![0, 0, 0, 0x10, 0, 0, 0, 0];
        p.extend_from_slice(&device_configuration_page());
        assert_eq!(mode_select(&p, true, &state(), 0xffff).unwrap(), state());
        p[9] = 0x0a; // wrong page length
        assert_eq!(
            mode_select(&p, true, &state(), 0xffff).unwrap_err().offset,
            9
        );
        let p = [0, 0, 0, 0, 0x01, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let e = mode_select(&p, false, &state(), 0xffff).unwrap_err();
        assert_eq!((e.offset, e.bit), (4, Some(5)));
    }

    #[test]
    fn information_is_32_bit_twos_complement() {
        assert_eq!(signed_information(100, 60), 40);
        assert_eq!(signed_information(60, 100), 0xffff_ffd8);
        assert_eq!(signed_information(0, u64::MAX), 0x8000_0000);
    }

    #[test]
    fn block_limits_and_small_commands() {
        assert_eq!(block_limits(0xff_ffff, 1), [0, 0xff, 0xff, 0xff, 0, 1]);
        assert_eq!(
            decode_block_limits(&[0, 1, 2, 3, 4, 5]),
            Some((0x01_0203, 0x0405))
        );
        assert_eq!(decode_block_limits(&[0, 1, 2, 3, 4]), None);
        assert!(decode_read_block_limits(&READ_BLOCK_LIMITS_CDB).is_ok());
        assert_eq!(space6(0x12, -2), [0x11, 0x02, 0xff, 0xff, 0xfe, 0]);
        assert!(decode_read_block_limits(&[0x05, 1, 0, 0, 0, 0]).is_err());
        let e = LoadUnload::decode(&[0x1b, 0, 0, 0, 0x05, 0]).unwrap_err();
        assert_eq!((e.offset, e.bit), (4, Some(2)));
        assert!(LoadUnload::decode(&[0x1b, 1, 0, 0, 0x01, 0]).unwrap().load);
        assert_eq!(
            ModeSelect::decode6(&[0x15, 0x11, 0, 0, 12, 0])
                .unwrap_err()
                .bit,
            Some(0)
        );
        assert_eq!(
            WriteFilemarks6::decode(&[0x10, 0x02, 0, 0, 1, 0])
                .unwrap_err()
                .bit,
            Some(1)
        );
    }

    proptest::proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            let _ = Read6::decode(&bytes);
            let _ = Write6::decode(&bytes);
            let _ = WriteFilemarks6::decode(&bytes);
            let _ = Space6::decode(&bytes);
            let _ = Locate::decode10(&bytes);
            let _ = Locate::decode16(&bytes);
            let _ = ReadPosition::decode(&bytes);
            let _ = ModeSense::decode6(&bytes);
            let _ = ModeSense::decode10(&bytes);
            let _ = ModeSelect::decode6(&bytes);
            let _ = LoadUnload::decode(&bytes);
            let _ = mode_select(&bytes, false, &state(), 0xffff);
            let _ = mode_select(&bytes, true, &state(), 0xffff);
        }
    }
}
