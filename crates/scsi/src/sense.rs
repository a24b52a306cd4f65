//! Sense data, fixed (70h/71h) and descriptor (72h/73h) format (SPC-3 4.5), including the
//! COPY ABORTED form of EXTENDED COPY (SPC-3 6.3.3 / spec Part B 4):
//!
//! - fixed: SEGMENT NUMBER in bytes 10-11, the copy source's and copy destination's status
//!   byte + sense data in areas at the offsets held in bytes 8 and 9 (the area starts with the
//!   status byte), residue in INFORMATION, segment pointer in bytes 15-17 (SD bit);
//! - descriptor: segment number in bytes 6-7 of the command-specific information descriptor
//!   (01h), forwarded status + sense in forwarded sense data descriptors (0Ch; SPC-4), SENSE
//!   DATA SOURCE 1h = copy source, 2h = copy destination.

use std::fmt;

use super::codes::{Asc, SenseKey, Status};
use super::error::{DecodeError, Reason};
use super::reader::{Put, Reader};

/// The largest sense data we build or accept (SPC-3 4.5.1: at most 252 bytes).
pub const MAX_SENSE_LENGTH: usize = 252;

/// Fixed format bytes before the additional sense bytes.
const FIXED_LENGTH: usize = 18;

/// Where forwarded sense came from (SENSE DATA SOURCE of descriptor 0Ch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ForwardedSource {
    /// The EXTENDED COPY copy source (1h).
    CopySource,
    /// The EXTENDED COPY copy destination (2h).
    CopyDestination,
}

/// A copy source's or destination's status byte and its own sense data, forwarded unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ForwardedSense {
    pub source: ForwardedSource,
    pub status: Status,
    /// The device's sense bytes (possibly truncated to fit).
    pub sense: Vec<u8>,
}

/// The SENSE KEY SPECIFIC field (SPC-3 4.5.2.4), interpreted by sense key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SenseKeySpecific {
    /// ILLEGAL REQUEST: field pointer. `command` is C/D (1 = CDB, 0 = parameter data).
    Field {
        command: bool,
        bit: Option<u8>,
        pointer: u16,
    },
    /// COPY ABORTED: segment pointer. `in_segment` is SD (1 = relative to the failing
    /// segment descriptor, 0 = relative to the parameter list).
    Segment {
        in_segment: bool,
        bit: Option<u8>,
        pointer: u16,
    },
    /// NO SENSE / NOT READY: progress indication (65536ths).
    Progress(u16),
    /// RECOVERED ERROR / MEDIUM ERROR / HARDWARE ERROR: actual retry count.
    RetryCount(u16),
    /// Any other key: the three bytes with SKSV masked off.
    Raw([u8; 3]),
}

impl SenseKeySpecific {
    fn encode(self) -> [u8; 3] {
        let pointer_form = |flag: bool, flag_bit: u8, bit: Option<u8>, pointer: u16| {
            let [hi, lo] = pointer.to_be_bytes();
            let mut b0 = 0x80 | (u8::from(flag) << flag_bit);
            if let Some(bit) = bit {
                b0 |= 0x08 | (bit & 7);
            }
            [b0, hi, lo]
        };
        match self {
            Self::Field {
                command,
                bit,
                pointer,
            } => pointer_form(command, 6, bit, pointer),
            Self::Segment {
                in_segment,
                bit,
                pointer,
            } => pointer_form(in_segment, 5, bit, pointer),
            Self::Progress(v) | Self::RetryCount(v) => {
                let [hi, lo] = v.to_be_bytes();
                [0x80, hi, lo]
            }
            Self::Raw([a, b, c]) => [0x80 | a, b, c],
        }
    }

    /// Interprets the three bytes (SKSV already checked) the way `key` defines them.
    fn decode(key: SenseKey, [b0, hi, lo]: [u8; 3]) -> Self {
        let pointer = u16::from_be_bytes([hi, lo]);
        let bit = (b0 & 0x08 != 0).then_some(b0 & 7);
        match key {
            SenseKey::ILLEGAL_REQUEST => Self::Field {
                command: b0 & 0x40 != 0,
                bit,
                pointer,
            },
            SenseKey::COPY_ABORTED => Self::Segment {
                in_segment: b0 & 0x20 != 0,
                bit,
                pointer,
            },
            SenseKey::NO_SENSE | SenseKey::NOT_READY => Self::Progress(pointer),
            SenseKey::RECOVERED_ERROR | SenseKey::MEDIUM_ERROR | SenseKey::HARDWARE_ERROR => {
                Self::RetryCount(pointer)
            }
            _ => Self::Raw([b0 & 0x7f, hi, lo]),
        }
    }
}

/// Sense data, independent of its wire format.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sense {
    /// Descriptor format (72h/73h) rather than fixed (70h/71h).
    pub descriptor_format: bool,
    /// Deferred error (71h/73h).
    pub deferred: bool,
    pub key: SenseKey,
    pub asc: Asc,
    pub filemark: bool,
    pub eom: bool,
    pub ili: bool,
    /// INFORMATION with VALID=1. Fixed format carries 32 bits; a larger value is sent with
    /// VALID=0 in fixed format (SPC-3 4.5.3).
    pub information: Option<u64>,
    /// COMMAND-SPECIFIC INFORMATION, for keys other than COPY ABORTED.
    pub command_specific: u64,
    /// COPY ABORTED: the SEGMENT NUMBER.
    pub segment_number: Option<u16>,
    pub sense_key_specific: Option<SenseKeySpecific>,
    pub field_replaceable_unit: u8,
    /// COPY ABORTED: the failing devices' status and sense.
    pub forwarded: Vec<ForwardedSense>,
}

impl Sense {
    /// Current, fixed-format sense with only a key and ASC/ASCQ.
    pub fn new(key: SenseKey, asc: Asc) -> Self {
        Self {
            descriptor_format: false,
            deferred: false,
            key,
            asc,
            filemark: false,
            eom: false,
            ili: false,
            information: None,
            command_specific: 0,
            segment_number: None,
            sense_key_specific: None,
            field_replaceable_unit: 0,
            forwarded: Vec::new(),
        }
    }

    /// ILLEGAL REQUEST with the given ASC/ASCQ.
    pub fn illegal_request(asc: Asc) -> Self {
        Self::new(SenseKey::ILLEGAL_REQUEST, asc)
    }

    /// ILLEGAL REQUEST, INVALID FIELD IN CDB, pointing at CDB byte `byte` (and bit).
    pub fn invalid_field_in_cdb(byte: u16, bit: Option<u8>) -> Self {
        Self::illegal_request(Asc::INVALID_FIELD_IN_CDB).with_sks(SenseKeySpecific::Field {
            command: true,
            bit,
            pointer: byte,
        })
    }

    /// COPY ABORTED for segment `segment` with the given ASC/ASCQ.
    pub fn copy_aborted(asc: Asc, segment: u16) -> Self {
        Self {
            segment_number: Some(segment),
            ..Self::new(SenseKey::COPY_ABORTED, asc)
        }
    }

    pub fn with_sks(self, sks: SenseKeySpecific) -> Self {
        Self {
            sense_key_specific: Some(sks),
            ..self
        }
    }

    pub fn with_information(self, information: u64) -> Self {
        Self {
            information: Some(information),
            ..self
        }
    }

    /// The field pointer of an ILLEGAL REQUEST or the segment pointer of a COPY ABORTED.
    pub fn field_pointer(&self) -> Option<u16> {
        match self.sense_key_specific? {
            SenseKeySpecific::Field { pointer, .. } | SenseKeySpecific::Segment { pointer, .. } => {
                Some(pointer)
            }
            _ => None,
        }
    }

    /// The response code byte (70h-73h).
    pub fn response_code(&self) -> u8 {
        0x70 | (u8::from(self.descriptor_format) << 1) | u8::from(self.deferred)
    }

    /// Encodes in the format `descriptor_format` selects, at most [`MAX_SENSE_LENGTH`] bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_LENGTH);
        if self.descriptor_format {
            self.encode_descriptor(&mut out);
        } else {
            self.encode_fixed(&mut out);
        }
        out
    }

    fn encode_fixed(&self, out: &mut Vec<u8>) {
        let info = self.information.and_then(|i| u32::try_from(i).ok());
        out.put_u8(self.response_code() | if info.is_some() { 0x80 } else { 0 });
        out.put_u8(0);
        out.put_u8(self.stream_bits() | (self.key.0 & 0x0f));
        out.put_u32(info.unwrap_or(0));
        out.put_u8(0); // additional sense length, patched below
        match self.segment_number {
            Some(segment) if self.key == SenseKey::COPY_ABORTED => {
                out.put_u16(0); // forwarded areas' offsets, patched below
                out.put_u16(segment);
            }
            _ => out.put_u32(self.command_specific as u32),
        }
        out.put_u16(self.asc.0);
        out.put_u8(self.field_replaceable_unit);
        out.extend_from_slice(
            &self
                .sense_key_specific
                .map_or([0; 3], SenseKeySpecific::encode),
        );
        if self.key == SenseKey::COPY_ABORTED {
            for fwd in &self.forwarded {
                // The area needs room for its status byte at least (an area may be only
                // that: `decode` reads one at byte 251 of 252).
                let offset = out.len();
                if offset >= MAX_SENSE_LENGTH || offset > 0xff {
                    break;
                }
                out.put_u8(fwd.status.0);
                let room = MAX_SENSE_LENGTH - out.len();
                out.extend_from_slice(
                    fwd.sense
                        .get(..fwd.sense.len().min(room))
                        .unwrap_or_default(),
                );
                let slot = match fwd.source {
                    ForwardedSource::CopySource => 8,
                    ForwardedSource::CopyDestination => 9,
                };
                if let Some(b) = out.get_mut(slot) {
                    *b = offset as u8;
                }
            }
        }
        let additional = (out.len() - 8) as u8;
        if let Some(b) = out.get_mut(7) {
            *b = additional;
        }
    }

    fn encode_descriptor(&self, out: &mut Vec<u8>) {
        out.put_u8(self.response_code());
        out.put_u8(self.key.0 & 0x0f);
        out.put_u16(self.asc.0);
        out.put_zeros(3);
        out.put_u8(0); // additional sense length, patched below
        if let Some(info) = self.information {
            out.extend_from_slice(&[0x00, 0x0a, 0x80, 0x00]);
            out.put_u64(info);
        }
        let csi = match self.segment_number {
            Some(segment) if self.key == SenseKey::COPY_ABORTED => u64::from(segment) << 32,
            _ => self.command_specific,
        };
        if csi != 0 || self.segment_number.is_some() {
            out.extend_from_slice(&[0x01, 0x0a, 0x00, 0x00]);
            out.put_u64(csi);
        }
        if let Some(sks) = self.sense_key_specific {
            out.extend_from_slice(&[0x02, 0x06, 0x00, 0x00]);
            out.extend_from_slice(&sks.encode());
            out.put_u8(0);
        }
        if self.field_replaceable_unit != 0 {
            out.extend_from_slice(&[0x03, 0x02, 0x00, self.field_replaceable_unit]);
        }
        if self.filemark || self.eom || self.ili {
            out.extend_from_slice(&[0x04, 0x02, 0x00, self.stream_bits()]);
        }
        if self.key == SenseKey::COPY_ABORTED {
            for fwd in &self.forwarded {
                // The 4-byte descriptor header must fit; the sense is cut to what is left
                // (possibly nothing: `decode` reads a header-only descriptor ending at 252).
                let Some(room) = MAX_SENSE_LENGTH.checked_sub(out.len() + 4) else {
                    break;
                };
                let n = fwd.sense.len().min(room).min(0xff - 2);
                let truncated = n < fwd.sense.len();
                out.put_u8(0x0c);
                out.put_u8((n + 2) as u8);
                let source = match fwd.source {
                    ForwardedSource::CopySource => 1,
                    ForwardedSource::CopyDestination => 2,
                };
                out.put_u8((u8::from(truncated) << 7) | source);
                out.put_u8(fwd.status.0);
                out.extend_from_slice(fwd.sense.get(..n).unwrap_or_default());
            }
        }
        let additional = (out.len() - 8).min(0xff) as u8;
        if let Some(b) = out.get_mut(7) {
            *b = additional;
        }
    }

    fn stream_bits(&self) -> u8 {
        (u8::from(self.filemark) << 7) | (u8::from(self.eom) << 6) | (u8::from(self.ili) << 5)
    }

    /// Decodes sense data of either format. Bytes past ADDITIONAL SENSE LENGTH, and past
    /// [`MAX_SENSE_LENGTH`], are ignored; a buffer shorter than it promises is decoded as far
    /// as it goes (devices truncate sense to the allocation length).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        // Accept no more than `encode` can build, so that whatever decodes re-encodes whole.
        let bytes = bytes.get(..MAX_SENSE_LENGTH).unwrap_or(bytes);
        let mut r = Reader::new(bytes);
        let b0 = r.u8()?;
        match b0 & 0x7f {
            0x70 | 0x71 => Self::decode_fixed(bytes),
            0x72 | 0x73 => Self::decode_descriptor(bytes),
            _ => Err(DecodeError::invalid_bit(0, 6)),
        }
    }

    fn decode_fixed(bytes: &[u8]) -> Result<Self, DecodeError> {
        let len = match bytes.get(7) {
            Some(&n) => (usize::from(n) + 8).min(bytes.len()),
            None => bytes.len(),
        };
        if len < 3 {
            return Err(DecodeError::new(Reason::Truncated, len));
        }
        // Devices may return fewer than 18 bytes: read the fixed part zero-extended.
        let mut fixed = [0u8; FIXED_LENGTH];
        let head = bytes.get(..len.min(FIXED_LENGTH)).unwrap_or_default();
        fixed
            .get_mut(..head.len())
            .unwrap_or_default()
            .copy_from_slice(head);
        let mut r = Reader::new(&fixed);
        let b0 = r.u8()?;
        r.skip(1)?;
        let b2 = r.u8()?;
        let key = SenseKey(b2 & 0x0f);
        let info = r.u32()?;
        let mut sense = Self {
            deferred: b0 & 0x01 != 0,
            filemark: b2 & 0x80 != 0,
            eom: b2 & 0x40 != 0,
            ili: b2 & 0x20 != 0,
            information: (b0 & 0x80 != 0).then_some(u64::from(info)),
            ..Self::new(key, Asc::NO_ADDITIONAL_SENSE)
        };
        r.skip(1)?;
        let csi = r.array::<4>()?;
        sense.asc = Asc(r.u16()?);
        sense.field_replaceable_unit = r.u8()?;
        let sks = r.array::<3>()?;
        if sks[0] & 0x80 != 0 {
            sense.sense_key_specific = Some(SenseKeySpecific::decode(key, sks));
        }
        if key == SenseKey::COPY_ABORTED {
            sense.segment_number = Some(u16::from_be_bytes([csi[2], csi[3]]));
            let areas = [
                (csi[0], ForwardedSource::CopySource),
                (csi[1], ForwardedSource::CopyDestination),
            ];
            for (offset, source) in areas {
                let start = usize::from(offset);
                if start < FIXED_LENGTH || start >= len {
                    continue;
                }
                // Both offsets naming one area: it is read once, as the source's (twice would
                // double it, and the pair would no longer fit 252 bytes when encoded).
                if source == ForwardedSource::CopyDestination && offset == csi[0] {
                    continue;
                }
                // The area ends where the other one starts (if later) or at the end.
                let end = areas
                    .iter()
                    .map(|&(o, _)| usize::from(o))
                    .filter(|&o| o > start)
                    .min()
                    .unwrap_or(len)
                    .min(len);
                let area = bytes.get(start..end).unwrap_or_default();
                if let Some((&status, rest)) = area.split_first() {
                    sense.forwarded.push(ForwardedSense {
                        source,
                        status: Status(status),
                        sense: rest.to_vec(),
                    });
                }
            }
            // Keep the order the areas appear in, source first when both are present.
            sense
                .forwarded
                .sort_by_key(|f| f.source != ForwardedSource::CopySource);
        } else {
            sense.command_specific = u64::from(u32::from_be_bytes(csi));
        }
        Ok(sense)
    }

    fn decode_descriptor(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let b0 = r.u8()?;
        let key = SenseKey(r.u8()? & 0x0f);
        let asc = Asc(r.u16()?);
        let mut sense = Self {
            descriptor_format: true,
            deferred: b0 & 0x01 != 0,
            ..Self::new(key, asc)
        };
        if r.remaining() < 4 {
            return Ok(sense);
        }
        r.skip(3)?;
        let additional = usize::from(r.u8()?).min(r.remaining());
        let mut descriptors = r.sub(additional)?;
        while descriptors.remaining() >= 2 {
            let kind = descriptors.u8()?;
            let len = usize::from(descriptors.u8()?);
            let mut d = descriptors.sub(len.min(descriptors.remaining()))?;
            match (kind, len) {
                (0x00, 0x0a) => {
                    let valid = d.u8()? & 0x80 != 0;
                    d.skip(1)?;
                    let info = d.u64()?;
                    sense.information = valid.then_some(info);
                }
                (0x01, 0x0a) => {
                    d.skip(2)?;
                    let csi = d.u64()?;
                    if key == SenseKey::COPY_ABORTED {
                        sense.segment_number = Some((csi >> 32) as u16);
                    } else {
                        sense.command_specific = csi;
                    }
                }
                (0x02, 0x06) => {
                    d.skip(2)?;
                    let sks = d.array::<3>()?;
                    if sks[0] & 0x80 != 0 {
                        sense.sense_key_specific = Some(SenseKeySpecific::decode(key, sks));
                    }
                }
                (0x03, 0x02) => {
                    d.skip(1)?;
                    sense.field_replaceable_unit = d.u8()?;
                }
                (0x04, 0x02) => {
                    d.skip(1)?;
                    let bits = d.u8()?;
                    sense.filemark = bits & 0x80 != 0;
                    sense.eom = bits & 0x40 != 0;
                    sense.ili = bits & 0x20 != 0;
                }
                // Forwarded sense is COPY ABORTED's, as in fixed format (and `encode`).
                (0x0c, 2..) if key == SenseKey::COPY_ABORTED => {
                    let b2 = d.u8()?;
                    let status = Status(d.u8()?);
                    let source = match b2 & 0x0f {
                        1 => ForwardedSource::CopySource,
                        2 => ForwardedSource::CopyDestination,
                        _ => continue,
                    };
                    sense.forwarded.push(ForwardedSense {
                        source,
                        status,
                        sense: d.rest().to_vec(),
                    });
                }
                _ => {} // other descriptors are not ours to interpret
            }
        }
        Ok(sense)
    }
}

impl From<DecodeError> for Sense {
    /// ILLEGAL REQUEST with the reason's ASC/ASCQ and, where the reason names a field, the
    /// field pointer (C/D set for CDB fields).
    fn from(e: DecodeError) -> Self {
        let sense = Self::new(e.reason.sense_key(), e.reason.asc());
        match u16::try_from(e.offset) {
            Ok(pointer) if e.reason.has_field_pointer() => {
                sense.with_sks(SenseKeySpecific::Field {
                    command: e.reason == Reason::InvalidFieldInCdb,
                    bit: e.bit,
                    pointer,
                })
            }
            _ => sense,
        }
    }
}

impl fmt::Display for Sense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.key, self.asc, self.asc.describe())?;
        if let Some(segment) = self.segment_number {
            write!(f, ", segment {segment}")?;
        }
        match self.sense_key_specific {
            Some(SenseKeySpecific::Field {
                command,
                bit,
                pointer,
            }) => {
                let whose = if command { "CDB" } else { "parameter list" };
                write!(f, ", field pointer: {whose} byte {pointer}")?;
                if let Some(bit) = bit {
                    write!(f, " bit {bit}")?;
                }
            }
            Some(SenseKeySpecific::Segment {
                in_segment,
                bit,
                pointer,
            }) => {
                let whose = if in_segment {
                    "segment descriptor"
                } else {
                    "parameter list"
                };
                write!(f, ", segment pointer: {whose} byte {pointer}")?;
                if let Some(bit) = bit {
                    write!(f, " bit {bit}")?;
                }
            }
            Some(SenseKeySpecific::Progress(p)) => write!(f, ", progress {p}/65536")?,
            Some(SenseKeySpecific::RetryCount(c)) => write!(f, ", retry count {c}")?,
            Some(SenseKeySpecific::Raw(b)) => write!(f, ", sense key specific {b:02x?}")?,
            None => {}
        }
        if let Some(info) = self.information {
            write!(f, ", information {info}")?;
        }
        for (flag, name) in [
            (self.filemark, "FILEMARK"),
            (self.eom, "EOM"),
            (self.ili, "ILI"),
        ] {
            if flag {
                write!(f, ", {name}")?;
            }
        }
        for fwd in &self.forwarded {
            let whose = match fwd.source {
                ForwardedSource::CopySource => "copy source",
                ForwardedSource::CopyDestination => "copy destination",
            };
            write!(f, "; {whose} status {:#04x}", fwd.status.0)?;
            if let Ok(inner) = Sense::decode(&fwd.sense) {
                write!(f, " [{inner}]")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_illegal_request_with_field_pointer() {
        let e = DecodeError::invalid_bit(17, 4);
        let bytes = Sense::from(e).encode();
        assert_eq!(
            bytes,
            [0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x26, 0x00, 0, 0x8c, 0x00, 17]
        );
        let back = Sense::decode(&bytes).unwrap();
        assert_eq!(back.field_pointer(), Some(17));
        assert_eq!(back.to_string(), "5h ILLEGAL REQUEST 26/00 INVALID FIELD IN PARAMETER LIST, field pointer: parameter list byte 17 bit 4");
    }

    #[test]
    fn truncation_has_no_field_pointer() {
        let bytes = Sense::from(DecodeError::new(Reason::Truncated, 40)).encode();
        assert_eq!(bytes[12..18], [0x1a, 0x00, 0, 0, 0, 0]);
    }

    #[test]
    fn copy_aborted_fixed_places_status_at_the_offset() {
        let device = Sense {
            eom: true,
            ..Sense::new(
                SenseKey::VOLUME_OVERFLOW,
                Asc::END_OF_PARTITION_MEDIUM_DETECTED,
            )
        }
        .encode();
        let mut s = Sense::copy_aborted(Asc::THIRD_PARTY_DEVICE_FAILURE, 3)
            .with_information(7)
            .with_sks(SenseKeySpecific::Segment {
                in_segment: false,
                bit: None,
                pointer: 16 + 64,
            });
        s.forwarded.push(ForwardedSense {
            source: ForwardedSource::CopyDestination,
            status: Status::CHECK_CONDITION,
            sense: device.clone(),
        });
        let bytes = s.encode();
        assert_eq!(bytes[0], 0xf0);
        assert_eq!(bytes[3..7], [0, 0, 0, 7]);
        assert_eq!(bytes[8], 0, "no source area");
        assert_eq!(bytes[9], 18, "destination area right after the fixed part");
        assert_eq!(bytes[10..12], [0, 3]);
        assert_eq!(bytes[12..14], [0x0d, 0x01]);
        assert_eq!(bytes[15..18], [0x80, 0, 80]);
        assert_eq!(bytes[18], 0x02, "area starts with the status byte");
        assert_eq!(bytes[19..], device[..]);
        assert_eq!(usize::from(bytes[7]) + 8, bytes.len());
        assert_eq!(Sense::decode(&bytes).unwrap(), s);
    }

    #[test]
    fn copy_aborted_descriptor_segment_at_bytes_6_7_of_the_descriptor() {
        let mut s = Sense::copy_aborted(Asc::COPY_TARGET_DEVICE_NOT_REACHABLE, 0x0102);
        s.descriptor_format = true;
        s.forwarded.push(ForwardedSense {
            source: ForwardedSource::CopySource,
            status: Status::CHECK_CONDITION,
            sense: vec![0x70, 0, 3, 0, 0, 0, 0, 0],
        });
        let bytes = s.encode();
        assert_eq!(bytes[..4], [0x72, 0x0a, 0x0d, 0x02]);
        assert_eq!(
            bytes[8..20],
            [0x01, 0x0a, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0]
        );
        assert_eq!(bytes[20..24], [0x0c, 10, 0x01, 0x02]);
        assert_eq!(Sense::decode(&bytes).unwrap(), s);
    }

    #[test]
    fn tape_sense_with_ili_and_residue() {
        let s = Sense {
            ili: true,
            information: Some(512),
            ..Sense::new(SenseKey::NO_SENSE, Asc::NO_ADDITIONAL_SENSE)
        };
        let bytes = s.encode();
        assert_eq!(bytes[..8], [0xf0, 0, 0x20, 0, 0, 2, 0, 10]);
        assert_eq!(Sense::decode(&bytes).unwrap(), s);
        let d = Sense {
            descriptor_format: true,
            ..s
        };
        assert_eq!(Sense::decode(&d.encode()).unwrap(), d);
    }

    #[test]
    fn oversized_forwarded_sense_is_truncated_to_252() {
        let mut s = Sense::copy_aborted(Asc::THIRD_PARTY_DEVICE_FAILURE, 0);
        for source in [
            ForwardedSource::CopySource,
            ForwardedSource::CopyDestination,
        ] {
            s.forwarded.push(ForwardedSense {
                source,
                status: Status::CHECK_CONDITION,
                sense: vec![0x70; 200],
            });
        }
        assert!(s.encode().len() <= MAX_SENSE_LENGTH);
        s.descriptor_format = true;
        assert!(s.encode().len() <= MAX_SENSE_LENGTH);
    }

    /// Decoded sense must re-encode whole; three inputs where it did not (found by the
    /// round-trip property in `scsi::proptests`).
    #[test]
    fn decode_accepts_only_what_encode_can_rebuild() {
        // Forwarded sense descriptors (0Ch) under a key other than COPY ABORTED were decoded
        // but never encoded.
        let bytes = [0x72, 0x05, 0x24, 0x00, 0, 0, 0, 4, 0x0c, 2, 0x01, 0x02];
        let s = Sense::decode(&bytes).unwrap();
        assert!(s.forwarded.is_empty());
        assert_eq!(Sense::decode(&s.encode()).unwrap(), s);

        // 253 bytes (ADDITIONAL SENSE LENGTH 245): the forwarded area was decoded past the
        // 252-byte limit and cut when encoded.
        let mut long = vec![0u8; 253];
        long[..10].copy_from_slice(&[0x70, 0, 0x0a, 0, 0, 0, 0, 245, 18, 0]);
        let s = Sense::decode(&long).unwrap();
        assert_eq!(s.forwarded[0].sense.len(), MAX_SENSE_LENGTH - 19);
        assert_eq!(Sense::decode(&s.encode()).unwrap(), s);

        // Source and destination offsets both 18: the one area was decoded twice, and the
        // pair no longer fit when encoded.
        let mut shared = vec![0u8; 136];
        shared[..10].copy_from_slice(&[0x70, 0, 0x0a, 0, 0, 0, 0, 128, 18, 18]);
        let s = Sense::decode(&shared).unwrap();
        assert_eq!(s.forwarded.len(), 1);
        assert_eq!(s.forwarded[0].source, ForwardedSource::CopySource);
        assert_eq!(Sense::decode(&s.encode()).unwrap(), s);
    }

    /// Found by the `round_trip` fuzz target: a forwarded area or descriptor ending exactly
    /// at byte 252 with no sense bytes of its own (a status only) decoded, but `encode`
    /// stopped one byte (fixed) or four bytes (descriptor) early and dropped it.
    #[test]
    fn forwarded_sense_ending_exactly_at_252_bytes_round_trips() {
        // Descriptor format: a 240-byte 0Ch descriptor, then a header-only one (bytes
        // 248-251: source 01h, status BUSY, no sense).
        let mut descriptor = vec![0x72, 0x0a, 0x0d, 0x01, 0, 0, 0, 244];
        descriptor.extend_from_slice(&[0x0c, 238, 0x02, 0x02]);
        descriptor.extend_from_slice(&[0x70; 236]);
        descriptor.extend_from_slice(&[0x0c, 0x02, 0x01, 0x08]);
        assert_eq!(descriptor.len(), MAX_SENSE_LENGTH);
        let s = Sense::decode(&descriptor).unwrap();
        assert_eq!(s.forwarded.len(), 2);
        assert!(s.forwarded[1].sense.is_empty());
        assert_eq!(s.encode(), descriptor);
        assert_eq!(Sense::decode(&s.encode()).unwrap(), s);

        // Fixed format: the source's area at 18-250, the destination's a status byte at 251.
        let mut fixed = vec![0x70, 0, 0x0a, 0, 0, 0, 0, 244, 18, 251, 0, 0, 0x0d, 0x01];
        fixed.extend_from_slice(&[0; 4]);
        fixed.push(0x02);
        fixed.extend_from_slice(&[0x70; 232]);
        fixed.push(0x08);
        assert_eq!(fixed.len(), MAX_SENSE_LENGTH);
        let s = Sense::decode(&fixed).unwrap();
        assert_eq!(s.forwarded.len(), 2);
        assert_eq!(s.forwarded[1].status, Status::BUSY);
        assert_eq!(s.encode(), fixed);
        assert_eq!(Sense::decode(&s.encode()).unwrap(), s);
    }

    #[test]
    fn short_and_junk_buffers_never_panic() {
        for len in 0..40 {
            let junk: Vec<u8> = (0..len)
                .map(|i| (i as u8).wrapping_mul(37) | 0x70)
                .collect();
            let _ = Sense::decode(&junk);
        }
        assert!(Sense::decode(&[]).is_err());
        assert!(Sense::decode(&[0x05]).is_err());
        assert_eq!(
            Sense::decode(&[0x70, 0, 0x06]).unwrap().key,
            SenseKey::UNIT_ATTENTION
        );
    }

    /// SEGMENT NUMBER goes in bytes 10-11 of COPY ABORTED sense only; with another key,
    /// bytes 8-11 are COMMAND-SPECIFIC INFORMATION.
    #[test]
    fn segment_number_only_with_copy_aborted() {
        let mut s = Sense::new(
            SenseKey::ILLEGAL_REQUEST,
            Asc::INVALID_FIELD_IN_PARAMETER_LIST,
        );
        s.segment_number = Some(3);
        s.command_specific = 0x0102_0304;
        assert_eq!(s.encode()[8..12], [1, 2, 3, 4]);
        s.key = SenseKey::COPY_ABORTED;
        assert_eq!(s.encode()[8..12], [0, 0, 0, 3]);
    }
}
