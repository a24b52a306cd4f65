//! Decode errors, and the sense each one is answered with.
//!
//! A decode error carries the absolute byte (and optionally bit) it is about, so that the
//! ILLEGAL REQUEST sense built from it (SPC-3 4.5.2.4.2, field pointer) names that byte.

use std::fmt;

use super::codes::{Asc, SenseKey};

/// Why a decode failed. Each reason maps to one ASC/ASCQ ([`Reason::asc`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// Fewer bytes than a length field promised (1A/00 in a parameter list).
    Truncated,
    /// Bytes left over after a framed region (1A/00 in a parameter list).
    TrailingData,
    /// A length field larger than the advertised maximum (1A/00).
    ParameterListLength,
    /// A field holds a value the standard or this copy manager does not allow (26/00).
    InvalidField,
    /// A CDB field is invalid (24/00); the offset is a CDB byte.
    InvalidFieldInCdb,
    /// More CSCD descriptors than MAXIMUM CSCD DESCRIPTOR COUNT (26/06).
    TooManyCscdDescriptors,
    /// A CSCD descriptor type code this copy manager does not support (26/07).
    UnsupportedCscdDescriptorType,
    /// More segment descriptors than MAXIMUM SEGMENT DESCRIPTOR COUNT (26/08).
    TooManySegmentDescriptors,
    /// A segment descriptor type code this copy manager does not support (26/09).
    UnsupportedSegmentDescriptorType,
    /// INLINE DATA LENGTH above MAXIMUM INLINE DATA LENGTH (26/0B).
    InlineDataLengthExceeded,
}

impl Reason {
    /// The additional sense code this reason is reported with.
    pub fn asc(self) -> Asc {
        match self {
            Self::Truncated | Self::TrailingData | Self::ParameterListLength => {
                Asc::PARAMETER_LIST_LENGTH_ERROR
            }
            Self::InvalidField => Asc::INVALID_FIELD_IN_PARAMETER_LIST,
            Self::InvalidFieldInCdb => Asc::INVALID_FIELD_IN_CDB,
            Self::TooManyCscdDescriptors => Asc::TOO_MANY_TARGET_DESCRIPTORS,
            Self::UnsupportedCscdDescriptorType => Asc::UNSUPPORTED_TARGET_DESCRIPTOR_TYPE_CODE,
            Self::TooManySegmentDescriptors => Asc::TOO_MANY_SEGMENT_DESCRIPTORS,
            Self::UnsupportedSegmentDescriptorType => Asc::UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE_CODE,
            Self::InlineDataLengthExceeded => Asc::INLINE_DATA_LENGTH_EXCEEDED,
        }
    }

    /// The sense key: always ILLEGAL REQUEST for errors found before any segment runs.
    pub fn sense_key(self) -> SenseKey {
        SenseKey::ILLEGAL_REQUEST
    }

    /// Whether the field pointer is meaningful for this reason. Truncation names no field
    /// (the fault is the CDB's PARAMETER LIST LENGTH, reported without a pointer).
    pub fn has_field_pointer(self) -> bool {
        !matches!(self, Self::Truncated | Self::TrailingData)
    }
}

/// A decode failure at an absolute byte (and optional bit) of the decoded buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DecodeError {
    pub reason: Reason,
    /// Absolute byte offset (parameter list or CDB) the error is about.
    pub offset: usize,
    /// Bit within that byte (the highest bit of the offending field), if known.
    pub bit: Option<u8>,
}

impl DecodeError {
    pub fn new(reason: Reason, offset: usize) -> Self {
        Self {
            reason,
            offset,
            bit: None,
        }
    }

    /// The same error, pointing at `bit` of its byte.
    pub fn with_bit(self, bit: u8) -> Self {
        Self {
            bit: Some(bit),
            ..self
        }
    }

    /// An INVALID FIELD error at `offset` (26/00 in a parameter list).
    pub fn invalid(offset: usize) -> Self {
        Self::new(Reason::InvalidField, offset)
    }

    /// An INVALID FIELD error at `offset`, bit `bit`.
    pub fn invalid_bit(offset: usize, bit: u8) -> Self {
        Self::invalid(offset).with_bit(bit)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let asc = self.reason.asc();
        write!(f, "{} ({asc}) at byte {}", asc.describe(), self.offset)?;
        if let Some(bit) = self.bit {
            write!(f, " bit {bit}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a refusal is logged with: the ASC's name and code, the byte, the bit.
    #[test]
    fn display_names_the_asc_byte_and_bit() {
        let e = DecodeError::invalid_bit(12, 3);
        assert_eq!(
            e.to_string(),
            "INVALID FIELD IN PARAMETER LIST (26/00) at byte 12 bit 3"
        );
        let e = DecodeError::new(Reason::Truncated, 40);
        assert_eq!(
            e.to_string(),
            "PARAMETER LIST LENGTH ERROR (1A/00) at byte 40"
        );
    }
}
