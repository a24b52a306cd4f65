//! Stream commands (SSC-3, T10/1611-D) as bytes <-> types: the CDBs a tape drive answers,
//! the mode parameters it keeps (header, block descriptor, Data Compression page 0Fh, Device
//! Configuration page 10h), READ POSITION and READ BLOCK LIMITS data.
//!
//! Pure: no I/O, no panics on input. CDB errors are [`Reason::InvalidFieldInCdb`] with the
//! byte and bit of the offending field (05/24/00, C/D=1); parameter-list errors are
//! [`Reason::InvalidField`] (05/26/00, C/D=0) or truncation (05/1A/00).

use super::error::{DecodeError, Reason};
use super::reader::Put;

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

/// READ(6) (SSC-3 READ(6)): FIXED and SILI in byte 1, TRANSFER LENGTH in bytes 2-4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Read6 {
    pub fixed: bool,
    /// Suppress incorrect-length indication (variable mode only).
    pub sili: bool,
    /// Blocks when `fixed`, else bytes.
    pub transfer_length: u32,
}

impl Read6 {
    /// SILI together with FIXED is 24/00 at byte 1 bit 1 (SSC-3 READ(6): SILI=1 with
    /// FIXED=1 is an invalid field).
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, l2, l3, l4, _] = cdb_bytes::<6>(cdb)?;
        reserved(1, b1, 0xfc)?;
        let fixed = b1 & 0x01 != 0;
        let sili = b1 & 0x02 != 0;
        if fixed && sili {
            return Err(invalid_cdb(1, 1));
        }
        Ok(Self {
            fixed,
            sili,
            transfer_length: be24(l2, l3, l4),
        })
    }

    pub fn encode(&self) -> [u8; 6] {
        let [_, a, b, c] = self.transfer_length.to_be_bytes();
        [
            0x08,
            u8::from(self.fixed) | (u8::from(self.sili) << 1),
            a,
            b,
            c,
            0,
        ]
    }
}

/// WRITE(6) (SSC-3 WRITE(6)): FIXED in byte 1, TRANSFER LENGTH in bytes 2-4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Write6 {
    pub fixed: bool,
    /// Blocks when `fixed`, else bytes.
    pub transfer_length: u32,
}

impl Write6 {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, l2, l3, l4, _] = cdb_bytes::<6>(cdb)?;
        reserved(1, b1, 0xfe)?;
        Ok(Self {
            fixed: b1 & 0x01 != 0,
            transfer_length: be24(l2, l3, l4),
        })
    }

    pub fn encode(&self) -> [u8; 6] {
        let [_, a, b, c] = self.transfer_length.to_be_bytes();
        [0x0a, u8::from(self.fixed), a, b, c, 0]
    }
}

/// WRITE FILEMARKS(6) (SSC-3 WRITE FILEMARKS(6)): IMMED in byte 1, FILEMARK COUNT in bytes 2-4. WSMK
/// (setmarks, byte 1 bit 1) is not supported and is 24/00.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteFilemarks6 {
    pub immediate: bool,
    pub count: u32,
}

impl WriteFilemarks6 {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, c2, c3, c4, _] = cdb_bytes::<6>(cdb)?;
        reserved(1, b1, 0xfe)?;
        Ok(Self {
            immediate: b1 & 0x01 != 0,
            count: be24(c2, c3, c4),
        })
    }

    pub fn encode(&self) -> [u8; 6] {
        let [_, a, b, c] = self.count.to_be_bytes();
        [0x10, u8::from(self.immediate), a, b, c, 0]
    }
}

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
        let [_, a, b, c] = self.count.to_be_bytes();
        [0x11, code, a, b, c, 0]
    }
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

/// READ BLOCK LIMITS data (SSC-3 READ BLOCK LIMITS data): GRANULARITY 0, MAXIMUM and MINIMUM BLOCK
/// LENGTH LIMIT.
pub fn block_limits(max_block_length: u32, min_block_length: u16) -> [u8; 6] {
    let [_, a, b, c] = max_block_length.min(MAX_BLOCK_LENGTH_LIMIT).to_be_bytes();
    let [d, e] = min_block_length.to_be_bytes();
    [0, a, b, c, d, e]
}

/// READ BLOCK LIMITS CDB: byte 1 (MLOI in SSC-4) must be zero.
pub fn decode_read_block_limits(cdb: &[u8]) -> Result<(), DecodeError> {
    let [_, b1, _, _, _, _] = cdb_bytes::<6>(cdb)?;
    reserved(1, b1, 0xff)
}

/// REWIND (SSC-3 REWIND): IMMED in byte 1. Returns IMMED.
pub fn decode_rewind(cdb: &[u8]) -> Result<bool, DecodeError> {
    let [_, b1, _, _, _, _] = cdb_bytes::<6>(cdb)?;
    reserved(1, b1, 0xfe)?;
    Ok(b1 & 0x01 != 0)
}

/// ERASE(6) (SSC-3 ERASE(6)): LONG byte 1 bit 0, IMMED bit 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Erase6 {
    pub long: bool,
    pub immediate: bool,
}

impl Erase6 {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, _, _, _, _] = cdb_bytes::<6>(cdb)?;
        reserved(1, b1, 0xfc)?;
        Ok(Self {
            long: b1 & 0x01 != 0,
            immediate: b1 & 0x02 != 0,
        })
    }
}

/// LOAD UNLOAD (SSC-3 LOAD UNLOAD): IMMED byte 1 bit 0; HOLD, EOT, RETEN, LOAD in byte 4 bits 3-0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadUnload {
    pub immediate: bool,
    pub hold: bool,
    pub eot: bool,
    pub retension: bool,
    pub load: bool,
}

impl LoadUnload {
    /// LOAD=1 with EOT=1 is 24/00 at byte 4 bit 2 (SSC-3: the combination is invalid).
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, _, _, b4, _] = cdb_bytes::<6>(cdb)?;
        reserved(1, b1, 0xfe)?;
        reserved(4, b4, 0xf0)?;
        let this = Self {
            immediate: b1 & 0x01 != 0,
            hold: b4 & 0x08 != 0,
            eot: b4 & 0x04 != 0,
            retension: b4 & 0x02 != 0,
            load: b4 & 0x01 != 0,
        };
        if this.load && this.eot {
            return Err(invalid_cdb(4, 2));
        }
        Ok(this)
    }
}

/// PREVENT ALLOW MEDIUM REMOVAL (SPC-3 PREVENT ALLOW MEDIUM REMOVAL): PREVENT in byte 4 bits 1-0, 00b or 01b.
pub fn decode_prevent_allow(cdb: &[u8]) -> Result<bool, DecodeError> {
    let [_, _, _, _, b4, _] = cdb_bytes::<6>(cdb)?;
    reserved(4, b4, 0xfe)?;
    Ok(b4 & 0x01 != 0)
}

/// REQUEST SENSE (SPC-3 REQUEST SENSE): DESC in byte 1 bit 0, ALLOCATION LENGTH in byte 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestSense {
    pub descriptor_format: bool,
    pub allocation_length: u8,
}

impl RequestSense {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, _, _, b4, _] = cdb_bytes::<6>(cdb)?;
        reserved(1, b1, 0xfe)?;
        Ok(Self {
            descriptor_format: b1 & 0x01 != 0,
            allocation_length: b4,
        })
    }
}

/// PAGE CONTROL (SPC-3 MODE SENSE PC field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageControl {
    Current,
    Changeable,
    Default,
    Saved,
}

/// MODE SENSE(6) / MODE SENSE(10) (SPC-3 MODE SENSE(6), MODE SENSE(10)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeSense {
    /// MODE SENSE(10).
    pub ten: bool,
    /// DBD: no block descriptor.
    pub disable_block_descriptors: bool,
    pub page_control: PageControl,
    pub page_code: u8,
    pub subpage_code: u8,
    pub allocation_length: u16,
}

impl ModeSense {
    pub fn decode6(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, b2, sub, alloc, _] = cdb_bytes::<6>(cdb)?;
        reserved(1, b1, 0xf7)?;
        Self::build(false, b1, b2, sub, u16::from(alloc))
    }

    /// LLBAA (byte 1 bit 4) is accepted: a sequential-access device returns the short
    /// block descriptor (LONGLBA=0) either way.
    pub fn decode10(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, b2, sub, _, _, _, a7, a8, _] = cdb_bytes::<10>(cdb)?;
        reserved(1, b1, 0xe7)?;
        Self::build(true, b1, b2, sub, u16::from_be_bytes([a7, a8]))
    }

    fn build(ten: bool, b1: u8, b2: u8, sub: u8, alloc: u16) -> Result<Self, DecodeError> {
        let page_control = match b2 >> 6 {
            0 => PageControl::Current,
            1 => PageControl::Changeable,
            2 => PageControl::Default,
            _ => PageControl::Saved,
        };
        let page_code = b2 & 0x3f;
        if !matches!(
            page_code,
            page::NONE | page::DATA_COMPRESSION | page::DEVICE_CONFIGURATION | page::ALL
        ) {
            return Err(invalid_cdb(2, 5));
        }
        // No subpages: 00h, or FFh ("all subpages", which here is page 0 only).
        if sub != 0x00 && sub != 0xff {
            return Err(invalid_cdb(3, 7));
        }
        Ok(Self {
            ten,
            disable_block_descriptors: b1 & 0x08 != 0,
            page_control,
            page_code,
            subpage_code: sub,
            allocation_length: alloc,
        })
    }
}

/// MODE SELECT(6) / MODE SELECT(10) (SPC-3 MODE SELECT(6), MODE SELECT(10)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeSelect {
    pub ten: bool,
    pub page_format: bool,
    pub parameter_list_length: u16,
}

impl ModeSelect {
    /// SP=1 is 24/00 at byte 1 bit 0: the drive has no saved pages (SPC-3 MODE SELECT).
    pub fn decode6(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, _, _, len, _] = cdb_bytes::<6>(cdb)?;
        Self::build(false, b1, u16::from(len))
    }

    pub fn decode10(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, _, _, _, _, _, l7, l8, _] = cdb_bytes::<10>(cdb)?;
        Self::build(true, b1, u16::from_be_bytes([l7, l8]))
    }

    fn build(ten: bool, b1: u8, len: u16) -> Result<Self, DecodeError> {
        reserved(1, b1, 0xee)?;
        if b1 & 0x01 != 0 {
            return Err(invalid_cdb(1, 0));
        }
        Ok(Self {
            ten,
            page_format: b1 & 0x10 != 0,
            parameter_list_length: len,
        })
    }
}

/// The drive's mode parameters: what MODE SELECT changes and MODE SENSE reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeState {
    /// DENSITY CODE of the block descriptor.
    pub density_code: u8,
    /// BLOCK LENGTH: 0 = variable-block mode, else fixed blocks of this length.
    pub block_length: u32,
    /// BUFFERED MODE (device-specific parameter bits 6-4): 0 or 1.
    pub buffered_mode: u8,
    /// WP (device-specific parameter bit 7): the medium is write protected.
    pub write_protect: bool,
}

const PAGE_LENGTH: u8 = 0x0e;

/// Data Compression page (SSC-3 Data Compression mode page), current/default values: DCC=0 — the emulated
/// drive does not compress, so DCE is zero and not changeable.
fn data_compression_page() -> [u8; 16] {
    let mut p = [0u8; 16];
    if let Some(h) = p.get_mut(..2) {
        h.copy_from_slice(&[page::DATA_COMPRESSION, PAGE_LENGTH]);
    }
    p
}

/// Device Configuration page (SSC-3 Device Configuration mode page), current/default values: LOIS=1 (logical
/// object identifiers are reported), EEG=1 and SEW=1 (every write reaches the medium
/// before status, so the buffer is always synchronized at early warning); REW=0 (early
/// warning is not reported on reads); everything else zero.
fn device_configuration_page() -> [u8; 16] {
    let mut p = [0u8; 16];
    for (i, v) in [
        (0, page::DEVICE_CONFIGURATION),
        (1, PAGE_LENGTH),
        (8, 0x40),
        (10, 0x18),
    ] {
        if let Some(b) = p.get_mut(i) {
            *b = v;
        }
    }
    p
}

/// The changeable mask of a page: nothing is changeable in either page.
fn changeable_page(code: u8) -> [u8; 16] {
    let mut p = [0u8; 16];
    if let Some(h) = p.get_mut(..2) {
        h.copy_from_slice(&[code, PAGE_LENGTH]);
    }
    p
}

fn page_values(code: u8, pc: PageControl) -> [u8; 16] {
    match pc {
        PageControl::Changeable => changeable_page(code),
        _ if code == page::DATA_COMPRESSION => data_compression_page(),
        _ => device_configuration_page(),
    }
}

/// MODE SENSE data: header, the block descriptor unless DBD, and the page(s) asked for.
/// `current` and `default` are the values for PC 00b and 10b. Truncation to the
/// allocation length is the caller's. PC 11b (saved) is the caller's to reject with
/// 05/39/00 before calling.
pub fn mode_sense_data(cdb: &ModeSense, current: &ModeState, default: &ModeState) -> Vec<u8> {
    let state = match cdb.page_control {
        PageControl::Default => *default,
        _ => *current,
    };
    let changeable = cdb.page_control == PageControl::Changeable;
    let dsp = if changeable {
        0x70 // BUFFERED MODE is changeable; SPEED and WP are not
    } else {
        (u8::from(state.write_protect) << 7) | ((state.buffered_mode & 0x07) << 4)
    };
    let mut body = Vec::with_capacity(40);
    if !cdb.disable_block_descriptors {
        if changeable {
            body.extend_from_slice(&[0, 0, 0, 0, 0, 0xff, 0xff, 0xff]);
        } else {
            let [_, a, b, c] = state.block_length.to_be_bytes();
            body.extend_from_slice(&[state.density_code, 0, 0, 0, 0, a, b, c]);
        }
    }
    let bdl = body.len();
    let codes: &[u8] = match cdb.page_code {
        page::ALL => &[page::DATA_COMPRESSION, page::DEVICE_CONFIGURATION],
        page::DATA_COMPRESSION => &[page::DATA_COMPRESSION],
        page::DEVICE_CONFIGURATION => &[page::DEVICE_CONFIGURATION],
        _ => &[],
    };
    for &code in codes {
        body.extend_from_slice(&page_values(code, cdb.page_control));
    }
    let mut out = Vec::with_capacity(body.len() + 8);
    if cdb.ten {
        out.put_u16(u16::try_from(body.len() + 6).unwrap_or(u16::MAX));
        out.put_u8(0); // MEDIUM TYPE
        out.put_u8(dsp);
        out.put_u8(0); // LONGLBA = 0
        out.put_u8(0);
        out.put_u16(bdl as u16);
    } else {
        out.put_u8(u8::try_from(body.len() + 3).unwrap_or(u8::MAX));
        out.put_u8(0);
        out.put_u8(dsp);
        out.put_u8(bdl as u8);
    }
    out.extend_from_slice(&body);
    out
}

/// Validates a MODE SELECT parameter list against the current state and returns the new
/// state (SPC-3 MODE SELECT and mode parameters; SSC-3 mode parameters). Nothing changes unless the whole list is valid.
///
/// - header: MEDIUM TYPE 0; BUFFERED MODE 0 or 1; SPEED 0; WP ignored (SSC-3 mode parameter
///   header: WP is ignored by MODE SELECT); LONGLBA 0; BLOCK DESCRIPTOR LENGTH 0 or 8;
/// - block descriptor: DENSITY CODE 00h (default), 7Fh (no change) or the current code;
///   NUMBER OF BLOCKS ignored; BLOCK LENGTH 0 (variable) or 1..=`max_block_length`;
/// - pages 0Fh and 10h with PAGE LENGTH 0Eh, no field differing from the current value
///   (none is changeable); any other page, or SPF=1, is 26/00 at that page's byte 0.
pub fn mode_select(
    params: &[u8],
    ten: bool,
    current: &ModeState,
    max_block_length: u32,
) -> Result<ModeState, DecodeError> {
    let mut next = *current;
    if params.is_empty() {
        return Ok(next);
    }
    let header_len = if ten { 8 } else { 4 };
    let header = params
        .get(..header_len)
        .ok_or_else(|| DecodeError::new(Reason::Truncated, params.len()))?;
    let (medium, dsp, bdl, dsp_at) = match *header {
        [_, medium, dsp, bdl] => (medium, dsp, usize::from(bdl), 2),
        [_, _, medium, dsp, longlba, _, b6, b7] => {
            if longlba & 0x01 != 0 {
                return Err(invalid_param(4, 0));
            }
            (medium, dsp, usize::from(u16::from_be_bytes([b6, b7])), 3)
        }
        _ => return Err(DecodeError::new(Reason::Truncated, params.len())),
    };
    if medium != 0 {
        return Err(invalid_param(dsp_at - 1, 7));
    }
    let buffered = (dsp >> 4) & 0x07;
    if buffered > 1 {
        return Err(invalid_param(dsp_at, 6));
    }
    if dsp & 0x0f != 0 {
        return Err(invalid_param(dsp_at, 3));
    }
    next.buffered_mode = buffered;
    let bdl_at = if ten { 6 } else { 3 };
    if bdl != 0 && bdl != 8 {
        return Err(DecodeError::invalid(bdl_at));
    }
    let mut at = header_len;
    if bdl == 8 {
        let bd = params
            .get(at..at + 8)
            .ok_or_else(|| DecodeError::new(Reason::Truncated, params.len()))?;
        let [density, _, _, _, _, l5, l6, l7] =
            <[u8; 8]>::try_from(bd).map_err(|_| DecodeError::new(Reason::Truncated, at))?;
        match density {
            0x00 | DENSITY_NO_CHANGE => {}
            d if d == current.density_code => {}
            _ => return Err(invalid_param(at, 7)),
        }
        let block_length = be24(l5, l6, l7);
        if block_length > max_block_length {
            return Err(invalid_param(at + 5, 7));
        }
        next.block_length = block_length;
        at += 8;
    }
    while at < params.len() {
        let b0 = params.get(at).copied().unwrap_or(0);
        let len = params
            .get(at + 1)
            .copied()
            .ok_or_else(|| DecodeError::new(Reason::Truncated, params.len()))?;
        if b0 & 0x40 != 0 {
            return Err(invalid_param(at, 6));
        }
        let code = b0 & 0x3f;
        if code != page::DATA_COMPRESSION && code != page::DEVICE_CONFIGURATION {
            return Err(invalid_param(at, 5));
        }
        if len != PAGE_LENGTH {
            return Err(DecodeError::invalid(at + 1));
        }
        let got = params
            .get(at..at + 16)
            .ok_or_else(|| DecodeError::new(Reason::Truncated, params.len()))?;
        let have = page_values(code, PageControl::Current);
        let mask = changeable_page(code);
        for (i, ((&g, &h), &m)) in got.iter().zip(&have).zip(&mask).enumerate().skip(2) {
            let differs = (g ^ h) & !m;
            if differs != 0 {
                return Err(invalid_param(at + i, 7 - differs.leading_zeros() as u8));
            }
        }
        at += 16;
    }
    Ok(next)
}

/// A residue as the 32-bit two's complement INFORMATION field carries it: `requested −
/// actual`, negative for an overlength record (SSC-3 READ(6), ILI).
pub fn signed_information(requested: u64, actual: u64) -> u64 {
    let diff = i128::from(requested) - i128::from(actual);
    let clamped = diff.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32;
    u64::from(clamped as u32)
}

#[cfg(test)]
mod tests {
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
