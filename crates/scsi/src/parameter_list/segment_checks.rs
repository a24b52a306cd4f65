//! The checks made as a segment is about to be processed, which need the list but no device
//! (SPC-3 6.3.7.1): what its CSCD IDs name, whether their device classes suit the segment
//! type, usable stream transfer sizes, inline data ranges. A failure is COPY ABORTED with
//! the segment number, not ILLEGAL REQUEST.

use super::ParameterList;
use crate::codes::{Asc, DeviceClass};
use crate::limits::Limits;
use crate::segment_descriptor::{CscdId, CscdTarget, Segment};
use crate::sense::{Sense, SenseKeySpecific};
use crate::target_descriptor::{CscdDescriptor, DeviceParameters};

/// A failure found while about to process one segment: answered with COPY ABORTED, the
/// segment number, and a segment pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentError {
    pub asc: Asc,
    /// SD: the pointer counts from the start of the segment descriptor (else from the
    /// start of the parameter list).
    pub in_segment: bool,
    pub pointer: u16,
    pub bit: Option<u8>,
}

impl SegmentError {
    fn field(asc: Asc, byte: u16) -> Self {
        Self {
            asc,
            in_segment: true,
            pointer: byte,
            bit: None,
        }
    }

    /// The COPY ABORTED sense for segment `segment`.
    pub fn to_sense(self, segment: u16) -> Sense {
        Sense::copy_aborted(self.asc, segment).with_sks(SenseKeySpecific::Segment {
            in_segment: self.in_segment,
            bit: self.bit,
            pointer: self.pointer,
        })
    }
}

/// What [`ParameterList::check_segment`] resolved a segment's CSCD IDs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// A CSCD descriptor of the list, with its index.
    Cscd(usize, &'a CscdDescriptor),
    /// C000h/C001h: a null LU of that class; it never receives commands.
    Null(DeviceClass),
    /// FFFFh: the LU the command was sent to.
    CopyManager,
}

impl Endpoint<'_> {
    /// PAD of the endpoint (null LUs and the copy manager's LU: 0).
    pub fn pad(&self) -> bool {
        match self {
            Self::Cscd(_, c) => c.parameters.pad(),
            _ => false,
        }
    }
}

impl ParameterList {
    /// Resolves a CSCD descriptor ID named at `field` (4 = source, 6 = destination) of a
    /// segment.
    pub fn endpoint(&self, id: CscdId, field: u16) -> Result<Endpoint<'_>, SegmentError> {
        match id.target() {
            CscdTarget::Index(i) => match self.cscds.get(i) {
                Some(c) if c.nul => Err(SegmentError {
                    asc: Asc::COPY_TARGET_DEVICE_NOT_REACHABLE,
                    in_segment: false,
                    pointer: u16::try_from(self.cscd_offset(i)).unwrap_or(u16::MAX),
                    bit: None,
                }),
                Some(c) => Ok(Endpoint::Cscd(i, c)),
                None => Err(SegmentError::field(
                    Asc::COPY_TARGET_DEVICE_NOT_REACHABLE,
                    field,
                )),
            },
            CscdTarget::NullBlock => Ok(Endpoint::Null(DeviceClass::Block)),
            CscdTarget::NullStream => Ok(Endpoint::Null(DeviceClass::Stream)),
            CscdTarget::CopyManager => Ok(Endpoint::CopyManager),
            CscdTarget::Reserved => Err(SegmentError::field(
                Asc::INVALID_FIELD_IN_PARAMETER_LIST,
                field,
            )),
        }
    }

    /// The checks SPC-3 makes as segment `index` is about to be processed, that need no
    /// device: CSCD IDs name descriptors of the list (else COPY ABORTED 0D/02, pointing at
    /// the ID; a NUL CSCD: 0D/02 pointing at the CSCD descriptor, SD=0), the CSCDs' device
    /// classes suit the segment type (26/0C), stream transfer sizes are usable (26/00),
    /// inline data ranges lie within the inline data (26/0B) at a multiple of 4 (26/00).
    /// FFFFh (the copy manager's own LU) is checked by the engine against the device.
    pub fn check_segment(&self, index: usize, limits: &Limits) -> Result<(), SegmentError> {
        let Some(segment) = self.segments.get(index) else {
            return Ok(());
        };
        let shape = Shape::of(&segment.body);
        let max = u64::from(limits.max_stream_device_transfer_size);
        if let Some(side) = shape.source {
            self.check_side(side, shape.moves_data, max)?;
        }
        if let Some(side) = shape.destination {
            self.check_side(side, shape.moves_data, max)?;
        }
        if let Some((bytes, field)) = self.bytes_written(&segment.body) {
            let most = limits.max_segment_length;
            if most != 0 && bytes > u64::from(most) {
                // MAXIMUM SEGMENT LENGTH (VPD 8Fh, OPERATING PARAMETERS): what one segment
                // may write, pad bytes not counted. More is refused before any I/O, and no
                // buffer is ever sized by it.
                return Err(SegmentError::field(
                    Asc::INVALID_FIELD_IN_PARAMETER_LIST,
                    field,
                ));
            }
        }
        if let Segment::InlineToStream {
            inline_offset,
            bytes,
            ..
        } = segment.body
        {
            if inline_offset % 4 != 0 {
                return Err(SegmentError::field(
                    Asc::INVALID_FIELD_IN_PARAMETER_LIST,
                    12,
                ));
            }
            if u64::from(inline_offset) + u64::from(bytes) > self.inline_data.len() as u64 {
                return Err(SegmentError::field(Asc::INLINE_DATA_LENGTH_EXCEEDED, 12));
            }
        }
        Ok(())
    }

    /// The bytes a segment writes (pad bytes not counted) and the byte of its descriptor
    /// that says so; None where a block length is not in the list (FFFFh, a null LU) or
    /// nothing is written.
    fn bytes_written(&self, body: &Segment) -> Option<(u64, u16)> {
        let block_length = |id: CscdId| match self.endpoint(id, 0) {
            Ok(Endpoint::Cscd(_, c)) => match c.parameters {
                DeviceParameters::Block { block_length, .. } => Some(u64::from(block_length)),
                _ => None,
            },
            _ => None,
        };
        match *body {
            Segment::BlockToStream { source, blocks, .. } => {
                Some((u64::from(blocks) * block_length(source)?, 14))
            }
            Segment::StreamToBlock {
                destination,
                blocks,
                ..
            } => Some((u64::from(blocks) * block_length(destination)?, 14)),
            Segment::BlockToBlock {
                dc,
                source,
                destination,
                blocks,
                ..
            } => {
                let counted = if dc { destination } else { source };
                Some((u64::from(blocks) * block_length(counted)?, 10))
            }
            Segment::StreamToStream { byte_count, .. } => Some((u64::from(byte_count), 16)),
            Segment::InlineToStream { bytes, .. } => Some((u64::from(bytes), 16)),
            Segment::BlockOffsetToStream { bytes, .. }
            | Segment::StreamToBlockOffset { bytes, .. } => Some((u64::from(bytes), 12)),
            Segment::BlockOffsetToBlockOffset { bytes, .. } => Some((u64::from(bytes), 8)),
            _ => None,
        }
    }

    /// One side of [`ParameterList::check_segment`]: the ID names something usable, of a
    /// class the segment type admits, with a usable stream transfer size.
    #[inline]
    fn check_side(&self, side: Side, moves_data: bool, max: u64) -> Result<(), SegmentError> {
        let (class, fixed_block) = match self.endpoint(side.id, side.field)? {
            Endpoint::Cscd(_, c) => match c.parameters {
                DeviceParameters::Stream {
                    fixed: true,
                    block_length,
                    ..
                } => (Some(DeviceClass::Stream), block_length),
                p => (Some(p.class()), 1),
            },
            Endpoint::Null(class) => (Some(class), 1),
            Endpoint::CopyManager => (None, 1), // checked against the device itself
        };
        if class.is_some_and(|class| !side.want.admits(class)) {
            return Err(SegmentError::field(
                Asc::INVALID_OPERATION_FOR_COPY_SOURCE_OR_DESTINATION,
                side.field,
            ));
        }
        // Each stream READ/WRITE moves STL bytes (FIXED=0) or STL blocks (FIXED=1): it must be
        // nonzero when data moves, and within MAXIMUM STREAM DEVICE TRANSFER SIZE.
        if let Some((stl, field)) = side.stream_transfer_length {
            let bytes = u64::from(stl) * u64::from(fixed_block);
            if (bytes == 0 && moves_data) || bytes > max {
                return Err(SegmentError::field(
                    Asc::INVALID_FIELD_IN_PARAMETER_LIST,
                    field,
                ));
            }
        }
        Ok(())
    }
}

/// What a segment type needs of its source and destination (SPC-3 6.3.7, Table 38).
#[derive(Clone, Copy, Debug)]
enum Want {
    Any,
    Block,
    /// A stream or processor device.
    Stream,
    /// A sequential-access device only (tape-control segments 10h-13h).
    Tape,
}

impl Want {
    fn admits(self, class: DeviceClass) -> bool {
        match self {
            Self::Any => true,
            Self::Block => class == DeviceClass::Block,
            Self::Stream => class != DeviceClass::Block,
            Self::Tape => class == DeviceClass::Stream,
        }
    }
}

/// One side (source or destination) of a segment, as [`ParameterList::check_segment`] needs it.
#[derive(Clone, Copy, Debug)]
struct Side {
    id: CscdId,
    /// Byte of the ID field within the segment descriptor (4 or 6).
    field: u16,
    want: Want,
    /// STREAM DEVICE TRANSFER LENGTH of this side and its byte in the descriptor.
    stream_transfer_length: Option<(u32, u16)>,
}

/// What a segment needs of its CSCDs (SPC-3 6.3.7, Table 38), found with one match.
#[derive(Clone, Copy, Debug)]
struct Shape {
    source: Option<Side>,
    destination: Option<Side>,
    /// Whether any data moves (a zero transfer length is then unusable).
    moves_data: bool,
}

impl Shape {
    fn of(body: &Segment) -> Self {
        use Want::{Any, Block, Stream, Tape};
        let side = |id, field, want, stl: Option<(u32, u16)>| {
            Some(Side {
                id,
                field,
                want,
                stream_transfer_length: stl,
            })
        };
        let (source, destination, moves_data) = match *body {
            Segment::BlockToStream {
                source,
                destination,
                stream_transfer_length: t,
                blocks,
                ..
            } => (
                side(source, 4, Block, None),
                side(destination, 6, Stream, Some((t, 9))),
                blocks != 0,
            ),
            Segment::StreamToBlock {
                source,
                destination,
                stream_transfer_length: t,
                blocks,
                ..
            } => (
                side(source, 4, Stream, Some((t, 9))),
                side(destination, 6, Block, None),
                blocks != 0,
            ),
            Segment::BlockToBlock {
                source,
                destination,
                ..
            }
            | Segment::BlockOffsetToBlockOffset {
                source,
                destination,
                ..
            } => (
                side(source, 4, Block, None),
                side(destination, 6, Block, None),
                true,
            ),
            Segment::StreamToStream {
                source,
                destination,
                source_transfer_length: s,
                destination_transfer_length: d,
                byte_count,
                ..
            } => (
                side(source, 4, Stream, Some((s, 9))),
                side(destination, 6, Stream, Some((d, 13))),
                byte_count != 0,
            ),
            Segment::InlineToStream {
                destination,
                stream_transfer_length: t,
                bytes,
                ..
            } => (None, side(destination, 6, Stream, Some((t, 9))), bytes != 0),
            Segment::EmbeddedToStream {
                destination,
                stream_transfer_length: t,
                ref data,
            } => (
                None,
                side(destination, 6, Stream, Some((t, 9))),
                !data.is_empty(),
            ),
            Segment::StreamToDiscard {
                source,
                stream_transfer_length: t,
                bytes,
                ..
            } => (side(source, 4, Stream, Some((t, 9))), None, bytes != 0),
            Segment::VerifyCscd { source, .. } => (side(source, 4, Any, None), None, false),
            Segment::BlockOffsetToStream {
                source,
                destination,
                stream_transfer_length: t,
                bytes,
                ..
            } => (
                side(source, 4, Block, None),
                side(destination, 6, Stream, Some((t, 9))),
                bytes != 0,
            ),
            Segment::StreamToBlockOffset {
                source,
                destination,
                stream_transfer_length: t,
                bytes,
                ..
            } => (
                side(source, 4, Stream, Some((t, 9))),
                side(destination, 6, Block, None),
                bytes != 0,
            ),
            Segment::WriteFilemarks { destination, .. }
            | Segment::Space { destination, .. }
            | Segment::Locate { destination, .. } => {
                (None, side(destination, 6, Tape, None), false)
            }
            Segment::TapeImageCopy {
                source,
                destination,
                ..
            } => (
                side(source, 4, Tape, None),
                side(destination, 6, Tape, None),
                true,
            ),
            Segment::RegisterKey { destination, .. }
            | Segment::ThirdPartyPrSource { destination, .. } => {
                (None, side(destination, 6, Any, None), false)
            }
        };
        Self {
            source,
            destination,
            moves_data,
        }
    }
}
