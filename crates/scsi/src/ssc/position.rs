//! Positioning: SPACE(6), LOCATE(10/16), READ POSITION and its short, long and extended
//! data (SSC-3).

use super::{cdb_bytes, invalid_cdb, reserved};
use crate::error::DecodeError;
use crate::reader::Put;

/// What SPACE moves over (SSC-3 SPACE(6) CODE field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpaceCode {
    /// 0000b: logical blocks.
    Blocks,
    /// 0001b: filemarks.
    Filemarks,
    /// 0011b: end of data.
    EndOfData,
}

/// SPACE(6) (SSC-3 SPACE(6)): CODE in byte 1 bits 3-0, a signed 24-bit COUNT in bytes 2-4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Space6 {
    pub code: SpaceCode,
    /// Negative: towards BOP.
    pub count: i32,
}

impl Space6 {
    /// Sequential filemarks (0010b) and the obsolete setmark codes are 24/00 at byte 1.
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, c2, c3, c4, _] = cdb_bytes::<6>(cdb)?;
        reserved(1, b1, 0xf0)?;
        let code = match b1 & 0x0f {
            0 => SpaceCode::Blocks,
            1 => SpaceCode::Filemarks,
            3 => SpaceCode::EndOfData,
            _ => return Err(invalid_cdb(1, 3)),
        };
        // Sign-extend the 24-bit two's complement count.
        let count = (i32::from_be_bytes([c2, c3, c4, 0])) >> 8;
        Ok(Self { code, count })
    }

    pub fn encode(&self) -> [u8; 6] {
        let code = match self.code {
            SpaceCode::Blocks => 0,
            SpaceCode::Filemarks => 1,
            SpaceCode::EndOfData => 3,
        };
        space6(code, self.count)
    }
}

/// SPACE(6) with any 4-bit CODE, as a copy manager forwards a space segment's (11h) CODE to
/// a drive that may know codes this codec's drive refuses. COUNT is cut to its 24 bits.
pub fn space6(code: u8, count: i32) -> [u8; 6] {
    let [_, a, b, c] = count.to_be_bytes();
    [0x11, code & 0x0f, a, b, c, 0]
}

/// Where LOCATE goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocateDestination {
    /// A logical object identifier (LOCATE(10) block address, LOCATE(16) DEST_TYPE 000b).
    Object(u64),
    /// A logical file identifier (LOCATE(16) DEST_TYPE 001b): the BOP side of that file.
    File(u64),
    /// End of data (LOCATE(16) DEST_TYPE 011b).
    EndOfData,
}

/// LOCATE(10) / LOCATE(16) (SSC-3 LOCATE(10), LOCATE(16)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Locate {
    pub immediate: bool,
    /// CP: change to `partition` first.
    pub change_partition: bool,
    pub partition: u8,
    pub destination: LocateDestination,
}

impl Locate {
    /// LOCATE(10): BT (byte 1 bit 2) is accepted and ignored — the emulated drive's block
    /// addresses are its logical object identifiers.
    pub fn decode10(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, _, a3, a4, a5, a6, _, p8, _] = cdb_bytes::<10>(cdb)?;
        reserved(1, b1, 0xf8)?;
        Ok(Self {
            immediate: b1 & 0x01 != 0,
            change_partition: b1 & 0x02 != 0,
            partition: p8,
            destination: LocateDestination::Object(u64::from(u32::from_be_bytes([a3, a4, a5, a6]))),
        })
    }

    /// LOCATE(16): DEST_TYPE (byte 1 bits 5-3) 000b, 001b or 011b; BAM (byte 2 bit 0) must
    /// be zero (explicit address mode).
    pub fn decode16(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, b2, p3, i4, i5, i6, i7, i8, i9, i10, i11, _, _, _, _] = cdb_bytes::<16>(cdb)?;
        reserved(1, b1, 0xc4)?;
        reserved(2, b2, 0xff)?;
        let id = u64::from_be_bytes([i4, i5, i6, i7, i8, i9, i10, i11]);
        let destination = match (b1 >> 3) & 0x07 {
            0 => LocateDestination::Object(id),
            1 => LocateDestination::File(id),
            3 => LocateDestination::EndOfData,
            _ => return Err(invalid_cdb(1, 5)),
        };
        Ok(Self {
            immediate: b1 & 0x01 != 0,
            change_partition: b1 & 0x02 != 0,
            partition: p3,
            destination,
        })
    }

    /// LOCATE(10) to a logical object identifier that fits 32 bits.
    pub fn encode10(object: u32) -> [u8; 10] {
        let [a, b, c, d] = object.to_be_bytes();
        [0x2b, 0, 0, a, b, c, d, 0, 0, 0]
    }
}

/// READ POSITION service actions (SSC-3 READ POSITION SERVICE ACTION).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadPositionForm {
    /// 00h: short form, logical object identifiers.
    Short,
    /// 01h: short form, vendor-specific addresses (the old BT=1, sent by the Linux st
    /// driver); the emulated drive's vendor-specific addresses are its logical object
    /// identifiers.
    ShortVendor,
    /// 06h: long form.
    Long,
}

/// READ POSITION (SSC-3 READ POSITION).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadPosition {
    pub form: ReadPositionForm,
    /// Zero means "the length of the form" for the short and long forms.
    pub allocation_length: u16,
}

impl ReadPosition {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, _, _, _, _, _, a7, a8, _] = cdb_bytes::<10>(cdb)?;
        reserved(1, b1, 0xe0)?;
        let form = match b1 & 0x1f {
            0x00 => ReadPositionForm::Short,
            0x01 => ReadPositionForm::ShortVendor,
            0x06 => ReadPositionForm::Long,
            _ => return Err(invalid_cdb(1, 4)),
        };
        Ok(Self {
            form,
            allocation_length: u16::from_be_bytes([a7, a8]),
        })
    }

    pub fn encode(&self) -> [u8; 10] {
        let form = match self.form {
            ReadPositionForm::Short => 0x00,
            ReadPositionForm::ShortVendor => 0x01,
            ReadPositionForm::Long => 0x06,
        };
        let [a, b] = self.allocation_length.to_be_bytes();
        [0x34, form, 0, 0, 0, 0, 0, a, b, 0]
    }

    /// The number of bytes the form returns.
    pub fn data_length(&self) -> usize {
        match self.form {
            ReadPositionForm::Short | ReadPositionForm::ShortVendor => 20,
            ReadPositionForm::Long => 32,
        }
    }
}

/// What READ POSITION reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// BOP: at the beginning of the partition.
    pub bop: bool,
    /// EOP: between early warning and the end of the partition.
    pub eop: bool,
    pub partition: u32,
    /// The logical object identifier of the current position (filemarks count as objects).
    pub object: u64,
    /// The logical file identifier: filemarks between BOP and the position.
    pub file: u64,
}

impl Position {
    /// Short form (SSC-3 READ POSITION short form data), 20 bytes. The object buffer is always empty (every
    /// write reaches the image before GOOD), so FIRST and LAST LOGICAL OBJECT LOCATION are
    /// both the position, and BYCU/LOCU stay zero. A position beyond 32 bits sets LOLU
    /// (logical object location unknown) with the location fields zero.
    pub fn encode_short(&self) -> [u8; 20] {
        let mut out = Vec::with_capacity(20);
        let location = u32::try_from(self.object).ok();
        out.put_u8(
            (u8::from(self.bop) << 7)
                | (u8::from(self.eop) << 6)
                | (u8::from(location.is_none()) << 2),
        );
        out.put_u8(u8::try_from(self.partition).unwrap_or(u8::MAX));
        out.put_zeros(2);
        out.put_u32(location.unwrap_or(0));
        out.put_u32(location.unwrap_or(0));
        out.put_zeros(8);
        let mut data = [0u8; 20];
        data.copy_from_slice(out.get(..20).unwrap_or(&[0; 20]));
        data
    }

    /// Long form (SSC-3 READ POSITION long form data), 32 bytes.
    /// Long form data back (what an initiator reads); `None` if shorter than 32 bytes.
    pub fn decode_long(data: &[u8]) -> Option<Self> {
        let d: [u8; 32] = data.get(..32)?.try_into().ok()?;
        let [flags, _, _, _, p0, p1, p2, p3, o @ .., _, _, _, _, _, _, _, _] = d;
        let [o0, o1, o2, o3, o4, o5, o6, o7, f @ ..] = o;
        Some(Self {
            bop: flags & 0x80 != 0,
            eop: flags & 0x40 != 0,
            partition: u32::from_be_bytes([p0, p1, p2, p3]),
            object: u64::from_be_bytes([o0, o1, o2, o3, o4, o5, o6, o7]),
            file: u64::from_be_bytes(f),
        })
    }

    /// Extended form (SSC-4 READ POSITION extended form data), 32 bytes: flags, the
    /// partition in byte 1, ADDITIONAL LENGTH 1Ch, an empty object buffer, FIRST and LAST
    /// LOGICAL OBJECT LOCATION both the position.
    pub fn encode_extended(&self) -> [u8; 32] {
        let mut out = Vec::with_capacity(32);
        out.put_u8((u8::from(self.bop) << 7) | (u8::from(self.eop) << 6));
        out.put_u8(u8::try_from(self.partition).unwrap_or(u8::MAX));
        out.put_u16(0x1c);
        out.put_zeros(4); // reserved, NUMBER OF LOGICAL OBJECTS IN OBJECT BUFFER
        out.put_u64(self.object);
        out.put_u64(self.object);
        out.put_u64(0); // NUMBER OF BYTES IN OBJECT BUFFER
        let mut data = [0u8; 32];
        data.copy_from_slice(out.get(..32).unwrap_or(&[0; 32]));
        data
    }

    pub fn encode_long(&self) -> [u8; 32] {
        let mut out = Vec::with_capacity(32);
        out.put_u8((u8::from(self.bop) << 7) | (u8::from(self.eop) << 6));
        out.put_zeros(3);
        out.put_u32(self.partition);
        out.put_u64(self.object);
        out.put_u64(self.file);
        out.put_u64(0); // LOGICAL SET IDENTIFIER: no setmarks
        let mut data = [0u8; 32];
        data.copy_from_slice(out.get(..32).unwrap_or(&[0; 32]));
        data
    }
}
