//! Medium changer commands (SMC-3, T10/1730-D) as bytes <-> types: the CDBs a tape library
//! answers (READ ELEMENT STATUS, MOVE MEDIUM, EXCHANGE MEDIUM, INITIALIZE ELEMENT STATUS
//! and its WITH RANGE form, POSITION TO ELEMENT, OPEN/CLOSE IMPORT/EXPORT ELEMENT), the
//! element status data READ ELEMENT STATUS returns (SMC-3 6.11: header, one element status
//! page per run of elements of one type, element descriptors with the primary volume tag
//! and the identification descriptor) and the changer mode pages 1Dh (element address
//! assignment), 1Eh (transport geometry) and 1Fh (device capabilities) (SMC-3 7.3).
//!
//! Pure: no I/O, no panics on input. Byte 1 bits 7-5 of every changer CDB are the obsolete
//! LUN field, which the Linux `ch` driver and mtx still fill in: they are ignored, never an
//! error. A malformed CDB is INVALID FIELD IN CDB with the field pointer (C/D=1); an element
//! address that names no element is INVALID ELEMENT ADDRESS (21/01) with the pointer at the
//! address field, as libraries report it (Quantum/Exabyte SCSI references, MOVE MEDIUM).

use super::codes::Asc;
use super::designator::Designator;
use super::error::{DecodeError, Reason};
use super::reader::{Put, Reader};
use super::sense::{Sense, SenseKeySpecific};

pub use super::smc_pages::{
    check_mode_select, decode_mode_sense, device_capabilities_page, mode_sense_data,
    transport_geometry_page, ElementAddresses,
};

/// Operation codes of the changer (SMC-3 Table 2). 07h, 1Bh and 2Bh mean other things to
/// other device types, so they are not in [`super::Opcode`].
pub mod opcode {
    pub const INITIALIZE_ELEMENT_STATUS: u8 = 0x07;
    pub const OPEN_CLOSE_IMPORT_EXPORT_ELEMENT: u8 = 0x1b;
    pub const POSITION_TO_ELEMENT: u8 = 0x2b;
    pub const INITIALIZE_ELEMENT_STATUS_WITH_RANGE: u8 = 0x37;
    pub const MOVE_MEDIUM: u8 = 0xa5;
    pub const EXCHANGE_MEDIUM: u8 = 0xa6;
    pub const READ_ELEMENT_STATUS: u8 = 0xb8;
}

/// Changer mode page codes (SMC-3 7.3).
pub mod page {
    pub const ELEMENT_ADDRESS_ASSIGNMENT: u8 = 0x1d;
    pub const TRANSPORT_GEOMETRY: u8 = 0x1e;
    pub const DEVICE_CAPABILITIES: u8 = 0x1f;
    pub const ALL: u8 = 0x3f;
}

/// Length of a volume tag (SMC-3 6.11.5): 32 bytes of identifier, 2 reserved, 2 of volume
/// sequence number.
pub const VOLUME_TAG_LEN: usize = 36;

/// ELEMENT TYPE CODE (SMC-3 Table 19).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ElementType {
    MediumTransport,
    Storage,
    ImportExport,
    DataTransfer,
}

impl ElementType {
    pub fn code(self) -> u8 {
        match self {
            Self::MediumTransport => 1,
            Self::Storage => 2,
            Self::ImportExport => 3,
            Self::DataTransfer => 4,
        }
    }

    /// The type a code names; 0 (all types) and 5-Fh are not one type.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::MediumTransport),
            2 => Some(Self::Storage),
            3 => Some(Self::ImportExport),
            4 => Some(Self::DataTransfer),
            _ => None,
        }
    }

    /// The bit of this type in the device capabilities page's STOR and MOVE/EXCHANGE masks.
    pub fn capability_bit(self) -> u8 {
        1 << (self.code() - 1)
    }

    /// How `mtx status` and the capabilities page name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::MediumTransport => "medium transport",
            Self::Storage => "storage",
            Self::ImportExport => "import/export",
            Self::DataTransfer => "data transfer",
        }
    }
}

fn invalid_cdb(byte: usize, bit: u8) -> DecodeError {
    DecodeError::new(Reason::InvalidFieldInCdb, byte).with_bit(bit)
}

fn cdb_bytes<const N: usize>(cdb: &[u8]) -> Result<[u8; N], DecodeError> {
    cdb.get(..N)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or_else(|| DecodeError::new(Reason::InvalidFieldInCdb, 0))
}

/// Fails at the highest set bit of `value & mask` (a reserved field that is not zero).
fn reserved(byte: usize, value: u8, mask: u8) -> Result<(), DecodeError> {
    match value & mask {
        0 => Ok(()),
        set => Err(invalid_cdb(byte, 7 - set.leading_zeros() as u8)),
    }
}

/// The CONTROL byte (SAM-4 5.2): NACA and LINK are not supported; the vendor bits 7-6 are
/// ignored (some libraries use them, mhvtl for an I/O port extend/retract).
fn control(byte: u8, offset: usize) -> Result<(), DecodeError> {
    reserved(offset, byte, 0x05)
}

fn be16(a: u8, b: u8) -> u16 {
    u16::from_be_bytes([a, b])
}

/// ILLEGAL REQUEST, INVALID ELEMENT ADDRESS (21/01) pointing at the CDB's address field at
/// `byte`.
pub fn invalid_element_address(byte: u16) -> Sense {
    Sense::illegal_request(Asc::INVALID_ELEMENT_ADDRESS).with_sks(SenseKeySpecific::Field {
        command: true,
        bit: None,
        pointer: byte,
    })
}

/// READ ELEMENT STATUS (SMC-3 6.11.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadElementStatus {
    /// VOLTAG: report the volume tags.
    pub voltag: bool,
    /// None: all element types (code 0).
    pub element_type: Option<ElementType>,
    pub starting_address: u16,
    pub number_of_elements: u16,
    /// CURDATA: current data only, no robot motion (always so here).
    pub curdata: bool,
    /// DVCID: report the identification descriptor of data transfer elements.
    pub dvcid: bool,
    pub allocation_length: u32,
}

impl ReadElementStatus {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, s2, s3, n4, n5, b6, a7, a8, a9, b10, ctl] = cdb_bytes::<12>(cdb)?;
        let code = b1 & 0x0f;
        let element_type = match code {
            0 => None,
            c => Some(ElementType::from_code(c).ok_or_else(|| invalid_cdb(1, 3))?),
        };
        reserved(6, b6, 0xfc)?;
        reserved(10, b10, 0xff)?;
        control(ctl, 11)?;
        Ok(Self {
            voltag: b1 & 0x10 != 0,
            element_type,
            starting_address: be16(s2, s3),
            number_of_elements: be16(n4, n5),
            curdata: b6 & 0x02 != 0,
            dvcid: b6 & 0x01 != 0,
            allocation_length: u32::from_be_bytes([0, a7, a8, a9]),
        })
    }

    pub fn encode(&self) -> [u8; 12] {
        let [s0, s1] = self.starting_address.to_be_bytes();
        let [n0, n1] = self.number_of_elements.to_be_bytes();
        let [_, a0, a1, a2] = self.allocation_length.min(0xff_ffff).to_be_bytes();
        [
            opcode::READ_ELEMENT_STATUS,
            (u8::from(self.voltag) << 4) | self.element_type.map_or(0, ElementType::code),
            s0,
            s1,
            n0,
            n1,
            (u8::from(self.curdata) << 1) | u8::from(self.dvcid),
            a0,
            a1,
            a2,
            0,
            0,
        ]
    }
}

/// MOVE MEDIUM (SMC-3 6.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MoveMedium {
    /// 0: the default medium transport element.
    pub transport: u16,
    pub source: u16,
    pub destination: u16,
    pub invert: bool,
}

impl MoveMedium {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, _, t2, t3, s4, s5, d6, d7, b8, b9, b10, ctl] = cdb_bytes::<12>(cdb)?;
        reserved(8, b8, 0xff)?;
        reserved(9, b9, 0xff)?;
        reserved(10, b10, 0xfe)?;
        control(ctl, 11)?;
        Ok(Self {
            transport: be16(t2, t3),
            source: be16(s4, s5),
            destination: be16(d6, d7),
            invert: b10 & 0x01 != 0,
        })
    }

    pub fn encode(&self) -> [u8; 12] {
        let [t0, t1] = self.transport.to_be_bytes();
        let [s0, s1] = self.source.to_be_bytes();
        let [d0, d1] = self.destination.to_be_bytes();
        [
            opcode::MOVE_MEDIUM,
            0,
            t0,
            t1,
            s0,
            s1,
            d0,
            d1,
            0,
            0,
            u8::from(self.invert),
            0,
        ]
    }
}

/// EXCHANGE MEDIUM (SMC-3 6.2): the medium in `source` goes to `first_destination`, the
/// medium that was there to `second_destination` (which may be `source`: a swap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExchangeMedium {
    pub transport: u16,
    pub source: u16,
    pub first_destination: u16,
    pub second_destination: u16,
    pub invert1: bool,
    pub invert2: bool,
}

impl ExchangeMedium {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, _, t2, t3, s4, s5, f6, f7, g8, g9, b10, ctl] = cdb_bytes::<12>(cdb)?;
        reserved(10, b10, 0xfc)?;
        control(ctl, 11)?;
        Ok(Self {
            transport: be16(t2, t3),
            source: be16(s4, s5),
            first_destination: be16(f6, f7),
            second_destination: be16(g8, g9),
            invert1: b10 & 0x01 != 0,
            invert2: b10 & 0x02 != 0,
        })
    }
}

/// INITIALIZE ELEMENT STATUS (SMC-3 6.3): nothing but the control byte.
pub fn decode_initialize_element_status(cdb: &[u8]) -> Result<(), DecodeError> {
    let [_, _, b2, b3, b4, ctl] = cdb_bytes::<6>(cdb)?;
    for (i, b) in [(2, b2), (3, b3), (4, b4)] {
        reserved(i, b, 0xff)?;
    }
    control(ctl, 5)
}

/// INITIALIZE ELEMENT STATUS WITH RANGE (SMC-3 6.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitializeElementStatusWithRange {
    /// FAST: scan only for presence, not the volume tags.
    pub fast: bool,
    /// RANGE: only the elements of the range; 0 = every element.
    pub range: bool,
    pub starting_address: u16,
    pub number_of_elements: u16,
}

impl InitializeElementStatusWithRange {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, s2, s3, b4, b5, n6, n7, b8, ctl] = cdb_bytes::<10>(cdb)?;
        reserved(1, b1, 0x1c)?;
        reserved(4, b4, 0xff)?;
        reserved(5, b5, 0xff)?;
        reserved(8, b8, 0xff)?;
        control(ctl, 9)?;
        Ok(Self {
            fast: b1 & 0x02 != 0,
            range: b1 & 0x01 != 0,
            starting_address: be16(s2, s3),
            number_of_elements: be16(n6, n7),
        })
    }
}

/// POSITION TO ELEMENT (SMC-3 6.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PositionToElement {
    pub transport: u16,
    pub destination: u16,
    pub invert: bool,
}

impl PositionToElement {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, _, t2, t3, d4, d5, b6, b7, b8, ctl] = cdb_bytes::<10>(cdb)?;
        reserved(6, b6, 0xff)?;
        reserved(7, b7, 0xff)?;
        reserved(8, b8, 0xfe)?;
        control(ctl, 9)?;
        Ok(Self {
            transport: be16(t2, t3),
            destination: be16(d4, d5),
            invert: b8 & 0x01 != 0,
        })
    }
}

/// What OPEN/CLOSE IMPORT/EXPORT ELEMENT asks for (SMC-3 6.9, ACTION CODE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportExportAction {
    Open,
    Close,
}

/// OPEN/CLOSE IMPORT/EXPORT ELEMENT (SMC-3 6.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenCloseImportExport {
    pub address: u16,
    pub action: ImportExportAction,
}

impl OpenCloseImportExport {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, a2, a3, b4, ctl] = cdb_bytes::<6>(cdb)?;
        reserved(1, b1, 0x1f)?;
        reserved(4, b4, 0xe0)?;
        control(ctl, 5)?;
        let action = match b4 & 0x1f {
            0 => ImportExportAction::Open,
            1 => ImportExportAction::Close,
            _ => return Err(invalid_cdb(4, 4)),
        };
        Ok(Self {
            address: be16(a2, a3),
            action,
        })
    }
}

/// One element as READ ELEMENT STATUS reports it (SMC-3 6.11.4-6.11.8). Fields that do not
/// apply to a type (ACCESS of a medium transport, IMPEXP of a storage element) are encoded
/// as zero whatever they hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElementStatus {
    pub element_type: Option<ElementType>,
    pub address: u16,
    /// FULL: the element holds a unit of medium.
    pub full: bool,
    /// EXCEPT: the element is in an abnormal state (`asc` says why).
    pub except: bool,
    /// ACCESS: a medium transport may reach it (a drive: the medium is unloaded).
    pub access: bool,
    /// IMPEXP (import/export only): the medium was placed by an operator.
    pub placed_by_operator: bool,
    /// INENAB / EXENAB (import/export only).
    pub import_enabled: bool,
    pub export_enabled: bool,
    /// ADDITIONAL SENSE CODE and QUALIFIER.
    pub asc: Asc,
    /// Data transfer only: LU VALID with the LUN (0-7) of the drive on this target.
    pub lun: Option<u8>,
    /// SVALID with the SOURCE STORAGE ELEMENT ADDRESS: where the medium was last moved from.
    pub source: Option<u16>,
    /// MEDIUM TYPE (3 bits): 0 unspecified, 1 data, 2 cleaning.
    pub medium_type: u8,
    /// The primary volume tag's identifier (the barcode); None for an empty element.
    pub volume_tag: Option<String>,
    /// Data transfer only: the drive's identification descriptor (its VPD 83h designator).
    pub identifier: Option<Designator>,
}

impl ElementStatus {
    /// A medium type code: data medium.
    pub const DATA_MEDIUM: u8 = 1;

    fn flags(&self) -> u8 {
        let bit = |b: bool, n: u8| u8::from(b) << n;
        let common = bit(self.full, 0) | bit(self.except, 2);
        match self.element_type {
            Some(ElementType::MediumTransport) | None => common,
            Some(ElementType::Storage) | Some(ElementType::DataTransfer) => {
                common | bit(self.access, 3)
            }
            Some(ElementType::ImportExport) => {
                common
                    | bit(self.placed_by_operator, 1)
                    | bit(self.access, 3)
                    | bit(self.export_enabled, 4)
                    | bit(self.import_enabled, 5)
            }
        }
    }

    /// Encodes the descriptor: 12 fixed bytes, the primary volume tag when `voltag`, the
    /// 4-byte identification descriptor header with its identifier when `dvcid` (an element
    /// without one has IDENTIFIER LENGTH 0), zero padded to `length`.
    fn encode(&self, voltag: bool, dvcid: bool, length: usize, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(self.address);
        out.put_u8(self.flags());
        out.put_u8(0);
        out.put_u16(self.asc.0);
        let lun = match (self.element_type, self.lun) {
            (Some(ElementType::DataTransfer), Some(lun)) => 0x10 | (lun & 0x07),
            _ => 0,
        };
        out.put_u8(lun);
        out.put_u8(0); // SCSI BUS ADDRESS: ID VALID is never set
        out.put_u8(0);
        let svalid = self.source.is_some() && self.full;
        out.put_u8((u8::from(svalid) << 7) | (self.medium_type & 0x07));
        out.put_u16(if svalid { self.source.unwrap_or(0) } else { 0 });
        if voltag {
            match (&self.volume_tag, self.full) {
                (Some(tag), true) => {
                    out.extend_from_slice(&super::inquiry::pad_ascii::<32>(tag));
                    out.put_zeros(4); // reserved, VOLUME SEQUENCE NUMBER 0
                }
                _ => out.put_zeros(VOLUME_TAG_LEN),
            }
        }
        match (&self.identifier, dvcid) {
            (Some(d), true) => d.encode(out),
            _ => out.put_zeros(4),
        }
        out.resize(start + length, 0);
    }

    /// The descriptor length for this element alone.
    fn length(&self, voltag: bool, dvcid: bool) -> usize {
        let id = match (&self.identifier, dvcid) {
            (Some(d), true) => d.value.len().min(255),
            _ => 0,
        };
        12 + if voltag { VOLUME_TAG_LEN } else { 0 } + 4 + id
    }
}

/// READ ELEMENT STATUS data (SMC-3 6.11.2) for `cdb` over `elements` (every element of
/// the library, in any order): the elements of the requested type at or above the starting
/// address, at most NUMBER OF ELEMENTS of them (0: no limit, as mhvtl), one element status
/// page per run of one type in address order. The header's counts are those of the whole
/// report, not cut to the allocation length (the caller truncates), so an initiator can
/// ask again with a larger buffer as mtx does. No element at or above the starting
/// address: 21/01 pointing at STARTING ELEMENT ADDRESS.
pub fn element_status_data(
    cdb: &ReadElementStatus,
    elements: &[ElementStatus],
) -> Result<Vec<u8>, Sense> {
    let mut chosen: Vec<&ElementStatus> = elements
        .iter()
        .filter(|e| cdb.element_type.is_none_or(|t| e.element_type == Some(t)))
        .filter(|e| e.address >= cdb.starting_address)
        .collect();
    chosen.sort_by_key(|e| e.address);
    if cdb.number_of_elements != 0 {
        chosen.truncate(usize::from(cdb.number_of_elements));
    }
    let Some(first) = chosen.first() else {
        return Err(invalid_element_address(2));
    };
    let mut pages = Vec::new();
    let mut rest = chosen.as_slice();
    while let Some(head) = rest.first() {
        let run = rest
            .iter()
            .take_while(|e| e.element_type == head.element_type)
            .count();
        let (page, tail) = rest.split_at(run);
        encode_page(cdb, page, &mut pages);
        rest = tail;
    }
    let mut out = Vec::with_capacity(8 + pages.len());
    out.put_u16(first.address);
    out.put_u16(chosen.len() as u16);
    out.put_u8(0);
    out.put_u24(
        u32::try_from(pages.len())
            .unwrap_or(0xff_ffff)
            .min(0xff_ffff),
    );
    out.extend_from_slice(&pages);
    Ok(out)
}

/// One element status page (SMC-3 6.11.3): its 8-byte header and descriptors of one length.
fn encode_page(cdb: &ReadElementStatus, page: &[&ElementStatus], out: &mut Vec<u8>) {
    let element_type = page.first().and_then(|e| e.element_type);
    let dvcid = cdb.dvcid && element_type == Some(ElementType::DataTransfer);
    let length = page
        .iter()
        .map(|e| e.length(cdb.voltag, dvcid))
        .max()
        .unwrap_or(16);
    out.put_u8(element_type.map_or(0, ElementType::code));
    out.put_u8(u8::from(cdb.voltag) << 7);
    out.put_u16(length as u16);
    out.put_u8(0);
    out.put_u24((length * page.len()).min(0xff_ffff) as u32);
    for e in page {
        e.encode(cdb.voltag, dvcid, length, out);
    }
}

/// Decodes READ ELEMENT STATUS data (what an initiator such as `xcopy library status`
/// reads): every element descriptor of every page, as far as the data goes. A page whose
/// descriptors do not fit the data is cut at the last whole descriptor.
pub fn decode_element_status_data(data: &[u8]) -> Result<Vec<ElementStatus>, DecodeError> {
    let mut r = Reader::new(data);
    r.skip(5)?;
    let total = r.u24()? as usize;
    let mut pages = Reader::new(
        r.rest()
            .get(..total)
            .unwrap_or(data.get(8..).unwrap_or(&[])),
    );
    let mut out = Vec::new();
    while pages.remaining() >= 8 {
        let code = pages.u8()?;
        let flags = pages.u8()?;
        let length = usize::from(pages.u16()?);
        pages.skip(1)?;
        let bytes = pages.u24()? as usize;
        let body = pages.take(bytes.min(pages.remaining()))?;
        if length < 12 {
            return Err(DecodeError::invalid(pages.offset()));
        }
        let element_type = ElementType::from_code(code & 0x0f);
        for d in body.chunks_exact(length) {
            out.push(decode_descriptor(element_type, flags & 0x80 != 0, d)?);
        }
    }
    Ok(out)
}

fn decode_descriptor(
    element_type: Option<ElementType>,
    voltag: bool,
    d: &[u8],
) -> Result<ElementStatus, DecodeError> {
    let mut r = Reader::new(d);
    let address = r.u16()?;
    let flags = r.u8()?;
    r.skip(1)?;
    let asc = Asc(r.u16()?);
    let b6 = r.u8()?;
    r.skip(2)?;
    let b9 = r.u8()?;
    let source = r.u16()?;
    let volume_tag = if voltag && r.remaining() >= VOLUME_TAG_LEN {
        let tag = r.take(VOLUME_TAG_LEN)?;
        let id = tag.get(..32).unwrap_or_default();
        let text: String = id
            .iter()
            .take_while(|&&b| b != 0)
            .map(|&b| char::from(b))
            .collect();
        Some(text.trim_end().to_string()).filter(|t| !t.is_empty())
    } else {
        None
    };
    let identifier = if r.remaining() >= 4 {
        Designator::decode(&mut r)
            .ok()
            .filter(|d| !d.value.is_empty())
    } else {
        None
    };
    let full = flags & 0x01 != 0;
    Ok(ElementStatus {
        element_type,
        address,
        full,
        except: flags & 0x04 != 0,
        access: flags & 0x08 != 0,
        placed_by_operator: element_type == Some(ElementType::ImportExport) && flags & 0x02 != 0,
        import_enabled: element_type == Some(ElementType::ImportExport) && flags & 0x20 != 0,
        export_enabled: element_type == Some(ElementType::ImportExport) && flags & 0x10 != 0,
        asc,
        lun: (b6 & 0x10 != 0).then_some(b6 & 0x07),
        source: (b9 & 0x80 != 0).then_some(source),
        medium_type: b9 & 0x07,
        volume_tag,
        identifier,
    })
}

#[cfg(test)]
#[path = "smc_tests.rs"]
mod tests;
