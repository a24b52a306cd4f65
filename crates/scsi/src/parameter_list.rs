//! The EXTENDED COPY (LID1) parameter list: SPC-3 6.3.1 Table 33.
//!
//! ```text
//!  0      LIST IDENTIFIER
//!  1      bit 5 STR, bits 4-3 LIST ID USAGE, bits 2-0 PRIORITY
//!  2-3    CSCD DESCRIPTOR LIST LENGTH
//!  8-11   SEGMENT DESCRIPTOR LIST LENGTH
//!  12-15  INLINE DATA LENGTH
//!  16..   CSCD descriptors, segment descriptors, inline data
//! ```
//!
//! Each length opens a sub-reader; no byte is read twice or left unread. Validation runs in
//! the order libiscsi's tests rely on (spec Part A 1 and 7): the list's own length first
//! (1A/00), then the advertised maximum descriptor list length (1A/00), then header fields
//! (26/00), then the counts (26/06, 26/08) and inline length (26/0B), then each CSCD (26/07,
//! 26/00) and each segment (26/09, 26/00). Everything here is ILLEGAL REQUEST: nothing has
//! been copied yet.
//!
//! Checks that depend on what the segment's CSCDs are — an index past the list, a null LU,
//! a segment type the device class cannot do, inline data out of range — are made when the
//! segment is about to be processed ([`ParameterList::check_segment`]) and answered with
//! COPY ABORTED and the segment number, as SPC-3 6.3.7.1 and libiscsi's ValidSegDescr expect.

mod segment_checks;

use serde::{Deserialize, Serialize};

use super::error::{DecodeError, Reason};
use super::limits::{Limits, SUPPORTED_CSCD_TYPES, SUPPORTED_SEGMENT_TYPES};
use super::reader::{Put, Reader};
use super::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
use super::sense::Sense;
use super::target_descriptor::{cscd_length, CscdDescriptor, DeviceParameters};

pub use segment_checks::{Endpoint, SegmentError};

/// Length of the parameter list header.
pub const HEADER_LENGTH: usize = 16;

/// LIST ID USAGE (SPC-3 Table 34 as amended; 01b reserved).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListIdUsage {
    /// 00b: status and held data kept until RECEIVE COPY RESULTS fetches them.
    #[default]
    Hold,
    /// 10b: list ID tracked for COPY STATUS; held data may be discarded (SPC-2's NRCR=1).
    Discard,
    /// 11b: no list identifier (must be 0); only with SNLID=1.
    NoListId,
}

impl ListIdUsage {
    fn bits(self) -> u8 {
        match self {
            Self::Hold => 0b00,
            Self::Discard => 0b10,
            Self::NoListId => 0b11,
        }
    }
}

/// Which descriptor type codes a copy manager accepts (from its configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Supported<'a> {
    pub cscd_types: &'a [u8],
    pub segment_types: &'a [u8],
}

impl Default for Supported<'static> {
    fn default() -> Self {
        Self {
            cscd_types: SUPPORTED_CSCD_TYPES,
            segment_types: SUPPORTED_SEGMENT_TYPES,
        }
    }
}

/// A set of type codes, for O(1) membership tests on the hot decode path.
#[derive(Clone, Copy)]
pub(crate) struct CodeSet([u64; 4]);

impl CodeSet {
    pub(crate) fn new(codes: &[u8]) -> Self {
        let mut bits = [0u64; 4];
        for &c in codes {
            if let Some(word) = bits.get_mut(usize::from(c >> 6)) {
                *word |= 1 << (c & 63);
            }
        }
        Self(bits)
    }

    pub(crate) fn contains(&self, code: u8) -> bool {
        self.0
            .get(usize::from(code >> 6))
            .is_some_and(|w| w & (1 << (code & 63)) != 0)
    }
}

/// A decoded, validated EXTENDED COPY parameter list.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParameterList {
    pub list_identifier: u8,
    /// STR: the source is read sequentially from striped disks.
    #[serde(default)]
    pub sequential_striped: bool,
    #[serde(default)]
    pub list_id_usage: ListIdUsage,
    /// PRIORITY: 0 highest; ordinary commands run at 1.
    #[serde(default)]
    pub priority: u8,
    #[serde(default, rename = "cscd")]
    pub cscds: Vec<CscdDescriptor>,
    #[serde(default, rename = "segment")]
    pub segments: Vec<SegmentDescriptor>,
    #[serde(default, with = "hex_or_text")]
    pub inline_data: Vec<u8>,
}

impl ParameterList {
    /// Encodes the list: header with the three lengths, CSCDs, segments, inline data.
    pub fn encode(&self) -> Vec<u8> {
        let cscd_len: usize = self.cscds.iter().map(CscdDescriptor::encoded_len).sum();
        let segment_len: usize = self
            .segments
            .iter()
            .map(SegmentDescriptor::encoded_len)
            .sum();
        let mut out =
            Vec::with_capacity(HEADER_LENGTH + cscd_len + segment_len + self.inline_data.len());
        out.put_u8(self.list_identifier);
        out.put_u8(
            (u8::from(self.sequential_striped) << 5)
                | (self.list_id_usage.bits() << 3)
                | (self.priority & 7),
        );
        out.put_u16(u16::try_from(cscd_len).unwrap_or(u16::MAX));
        out.put_zeros(4);
        out.put_u32(u32::try_from(segment_len).unwrap_or(u32::MAX));
        out.put_u32(u32::try_from(self.inline_data.len()).unwrap_or(u32::MAX));
        for c in &self.cscds {
            c.encode(&mut out);
        }
        for s in &self.segments {
            s.encode(&mut out);
        }
        out.extend_from_slice(&self.inline_data);
        out
    }

    /// Decodes and validates a parameter list against `limits`, accepting the descriptor
    /// types in `supported`. Errors carry the ILLEGAL REQUEST sense the standard names.
    pub fn decode(
        bytes: &[u8],
        limits: &Limits,
        supported: Supported<'_>,
    ) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let list_identifier = r.u8()?;
        let b1 = r.u8()?;
        let cscd_len = usize::from(r.u16()?);
        r.skip(4)?;
        let segment_len = r.u32()? as usize;
        let inline_len = r.u32()? as usize;

        // 1. The list must hold what the header promises, and no more (1A/00).
        let promised = cscd_len as u64 + segment_len as u64 + inline_len as u64;
        let available = r.remaining() as u64;
        if promised > available {
            return Err(DecodeError::new(Reason::Truncated, bytes.len()));
        }
        if promised < available {
            return Err(DecodeError::new(
                Reason::TrailingData,
                HEADER_LENGTH + promised as usize,
            ));
        }
        // 2. Descriptor bytes within MAXIMUM DESCRIPTOR LIST LENGTH (1A/00; inline data
        //    is not counted).
        if cscd_len as u64 + segment_len as u64 > u64::from(limits.max_descriptor_list_length) {
            return Err(DecodeError::new(Reason::ParameterListLength, 2));
        }
        // 3. Header fields.
        let list_id_usage = match (b1 >> 3) & 0b11 {
            0b00 => ListIdUsage::Hold,
            0b10 => ListIdUsage::Discard,
            0b11 => ListIdUsage::NoListId,
            _ => return Err(DecodeError::invalid_bit(1, 4)),
        };
        if list_id_usage == ListIdUsage::NoListId && list_identifier != 0 {
            return Err(DecodeError::invalid(0));
        }
        let mut cscd_list = r.sub(cscd_len)?;
        let mut segment_list = r.sub(segment_len)?;
        let inline_data = r.take(inline_len)?;
        r.finish()?;

        // 4. Counts, framing each list by its descriptors' own lengths.
        let cscd_count = count_descriptors(
            &cscd_list,
            |head| Some(cscd_length(*head.first()?)),
            2,
            false,
        )?;
        if cscd_count > usize::from(limits.max_cscd_descriptors) {
            return Err(DecodeError::new(
                Reason::TooManyCscdDescriptors,
                HEADER_LENGTH,
            ));
        }
        // Segments are decoded while they are counted; anything irregular (a framing or field
        // error, or one segment too many) falls back to counting first, so the errors still
        // come in the order above.
        let segment_types = CodeSet::new(supported.segment_types);
        let max_segments = usize::from(limits.max_segment_descriptors);
        let mut segments = Vec::with_capacity((segment_len / 28 + 1).min(max_segments));
        let mut fast = segment_list.clone();
        let mut regular = true;
        while !fast.is_empty() {
            if segments.len() == max_segments {
                regular = false;
                break;
            }
            match SegmentDescriptor::decode_framed(&mut fast, segment_types) {
                Ok(segment) => segments.push(segment),
                Err(_) => {
                    regular = false;
                    break;
                }
            }
        }
        if !regular {
            let segment_count = count_descriptors(&segment_list, segment_length, 8, true)?;
            if segment_count > max_segments {
                return Err(DecodeError::new(
                    Reason::TooManySegmentDescriptors,
                    HEADER_LENGTH + cscd_len,
                ));
            }
        }
        if inline_len as u64 > u64::from(limits.max_inline_data_length) {
            return Err(DecodeError::new(Reason::InlineDataLengthExceeded, 12));
        }

        // 5. Each descriptor.
        let cscd_types = CodeSet::new(supported.cscd_types);
        let mut cscds = Vec::with_capacity(cscd_count);
        while !cscd_list.is_empty() {
            let len = cscd_list.peek().map_or(0, cscd_length);
            let mut one = cscd_list.sub(len)?;
            cscds.push(CscdDescriptor::decode_with(&mut one, cscd_types)?);
        }
        if !regular {
            // Decode again in order: this returns the first segment's error.
            segments.clear();
            while !segment_list.is_empty() {
                segments.push(SegmentDescriptor::decode_framed(
                    &mut segment_list,
                    segment_types,
                )?);
            }
        }
        Ok(Self {
            list_identifier,
            sequential_striped: b1 & 0x20 != 0,
            list_id_usage,
            priority: b1 & 0x07,
            cscds,
            segments,
            inline_data: inline_data.to_vec(),
        })
    }

    /// Bytes the list moves as its descriptors say: blocks times the CSCD's block length
    /// (512 where the CSCD gives none) for the block segments, the byte counts of the
    /// byte-range and inline ones. For progress and ETA, not for validation.
    pub fn bytes_to_move(&self) -> u64 {
        (0..self.segments.len())
            .map(|i| self.segment_bytes(i))
            .sum()
    }

    /// What [`ParameterList::bytes_to_move`] counts for segment `index`.
    pub fn segment_bytes(&self, index: usize) -> u64 {
        let block_length = |id: CscdId| {
            self.cscds
                .get(usize::from(id.0))
                .map_or(512, |c| match c.parameters {
                    DeviceParameters::Block { block_length, .. } if block_length != 0 => {
                        u64::from(block_length)
                    }
                    _ => 512,
                })
        };
        self.segments.get(index).map_or(0, |s| match s.body {
            Segment::BlockToStream { blocks, source, .. }
            | Segment::BlockToBlock { blocks, source, .. } => {
                u64::from(blocks) * block_length(source)
            }
            Segment::StreamToBlock {
                blocks,
                destination,
                ..
            } => u64::from(blocks) * block_length(destination),
            Segment::BlockOffsetToBlockOffset { bytes, .. }
            | Segment::BlockOffsetToStream { bytes, .. }
            | Segment::StreamToBlockOffset { bytes, .. }
            | Segment::InlineToStream { bytes, .. } => u64::from(bytes),
            Segment::StreamToStream { byte_count, .. } => u64::from(byte_count),
            _ => 0,
        })
    }

    /// Absolute offset of CSCD descriptor `index` in the encoded list.
    pub fn cscd_offset(&self, index: usize) -> usize {
        HEADER_LENGTH
            + self
                .cscds
                .iter()
                .take(index)
                .map(CscdDescriptor::encoded_len)
                .sum::<usize>()
    }

    /// Absolute offset of segment descriptor `index` in the encoded list.
    pub fn segment_offset(&self, index: usize) -> usize {
        self.cscd_offset(self.cscds.len())
            + self
                .segments
                .iter()
                .take(index)
                .map(SegmentDescriptor::encoded_len)
                .sum::<usize>()
    }
}

/// Counts the descriptors of a list framed by `length_of` (given up to the next 4 bytes,
/// the length of the next descriptor). A descriptor running past the list's end is INVALID
/// FIELD: at its own DESCRIPTOR LENGTH field (byte 2) when it has one (`own_length`),
/// else at the list's length field in the header (`list_length_field`).
fn count_descriptors(
    list: &Reader<'_>,
    length_of: impl Fn(&[u8]) -> Option<usize>,
    list_length_field: usize,
    own_length: bool,
) -> Result<usize, DecodeError> {
    let mut r = list.clone();
    let mut count = 0;
    while !r.is_empty() {
        let start = r.offset();
        let header = r.clone().take(r.remaining().min(4)).unwrap_or_default();
        let len = length_of(header)
            .filter(|&n| n > 0 && n <= r.remaining())
            .ok_or_else(|| {
                let field = if own_length && header.len() >= 4 {
                    start + 2
                } else {
                    list_length_field
                };
                DecodeError::invalid(field)
            })?;
        r.skip(len)?;
        count += 1;
    }
    Ok(count)
}

/// The length of the segment descriptor whose first bytes are `head` (DESCRIPTOR LENGTH
/// + 4), if `head` holds its header.
fn segment_length(head: &[u8]) -> Option<usize> {
    let [_, _, hi, lo] = *head.first_chunk::<4>()?;
    Some(4 + usize::from(u16::from_be_bytes([hi, lo])))
}

/// Serde for inline data: a hex string, or `{ text = "…" }` for readable TOML.
mod hex_or_text {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        Hex(String),
        Text { text: String },
    }

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        match Form::deserialize(d)? {
            Form::Hex(h) if h.is_empty() => Ok(Vec::new()),
            Form::Hex(h) => crate::designator::parse_hex(&h)
                .ok_or_else(|| serde::de::Error::custom(format!("inline_data {h:?} is not hex"))),
            Form::Text { text } => Ok(text.into_bytes()),
        }
    }
}

/// What a copy manager would answer to a parameter list, as far as can be known without
/// its devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// PARAMETER LIST LENGTH 0: nothing to do, GOOD.
    Empty,
    /// Valid, and every segment passes the device-free checks.
    Accepted(ParameterList),
    /// ILLEGAL REQUEST before any segment runs.
    Rejected(Sense),
    /// Valid, but segment `segment` would end the copy with COPY ABORTED.
    WouldAbort {
        list: ParameterList,
        segment: usize,
        sense: Sense,
    },
}

/// Decodes, validates, and runs the device-free segment checks in segment order.
pub fn evaluate(bytes: &[u8], limits: &Limits, supported: Supported<'_>) -> Verdict {
    if bytes.is_empty() {
        return Verdict::Empty;
    }
    let list = match ParameterList::decode(bytes, limits, supported) {
        Ok(list) => list,
        Err(e) => return Verdict::Rejected(e.into()),
    };
    for segment in 0..list.segments.len() {
        if let Err(e) = list.check_segment(segment, limits) {
            let sense = e.to_sense(u16::try_from(segment).unwrap_or(u16::MAX));
            return Verdict::WouldAbort {
                list,
                segment,
                sense,
            };
        }
    }
    Verdict::Accepted(list)
}

#[cfg(test)]
#[path = "parameter_list_tests.rs"]
mod tests;
