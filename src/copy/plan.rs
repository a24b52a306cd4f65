//! Segment planners: what a segment sends to its CSCDs, decided without any I/O. A planner
//! turns a segment descriptor, and the completions of what it sent, into typed [`Op`]s; the
//! runner (`run/`) carries them out against the resolved CSCDs and hands the completions
//! back. Everything here is tested with no device, file or thread (as `residue` is for the
//! end of a transfer segment).
//!
//! - [`command_segment`]: the segments that are one command to one CSCD (07h, 10h-12h, 14h)
//!   and the REGISTER AND MOVE that 15h defers to the end of the list.
//! - [`TapeImageCopy`]: 13h, a loop of reads and writes driven by what each read returned.
//! - [`transfer()`]: the transfer segments (00h-06h, 08h-0Fh): what each reads and writes, in
//!   which units, how much it processes, its range checks and the PAD/CAT rules of its end.

use crate::scsi::persistent_reservation::{PrOutAction, PrOutParameters};
use crate::scsi::segment_descriptor::Segment;
use crate::scsi::{ssc, SenseKey};

use super::failure::Side;
use super::op::Op;

mod transfer;
pub use transfer::{transfer, Carried, Chunk, Cscd, From, To, Transfer, RANGE_CHUNK};

/// One command a planner asks for: to which side, with which data-out, and how many bytes of
/// data-in it expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub side: Side,
    pub op: Op,
    pub data_out: Vec<u8>,
    pub data_in: usize,
}

impl Planned {
    fn to(side: Side, op: Op) -> Self {
        Self {
            side,
            op,
            data_out: Vec::new(),
            data_in: 0,
        }
    }
}

/// The one command of a segment that is a single command (07h, 10h, 11h, 12h, 14h); None for
/// the others (15h is sent after the list: [`register_and_move`]).
pub fn command_segment(segment: &Segment) -> Option<Planned> {
    Some(match *segment {
        // 07h: TUR=1 asks TEST UNIT READY, TUR=0 a standard INQUIRY (SPC-3 6.3.7.8).
        Segment::VerifyCscd { tur: true, .. } => Planned::to(Side::Source, Op::TestUnitReady),
        Segment::VerifyCscd { tur: false, .. } => Planned {
            data_in: 36,
            ..Planned::to(
                Side::Source,
                Op::Inquiry {
                    allocation_length: 36,
                },
            )
        },
        Segment::WriteFilemarks { immed, count, .. } => Planned::to(
            Side::Destination,
            Op::WriteFilemarks {
                immediate: immed,
                count,
            },
        ),
        Segment::Space { code, count, .. } => {
            Planned::to(Side::Destination, Op::Space { code, count })
        }
        Segment::Locate {
            logical_object_id, ..
        } => Planned::to(
            Side::Destination,
            Op::Locate {
                object: logical_object_id,
            },
        ),
        // 14h: REGISTER with the segment's two keys (SPC-4 6.3.7.22).
        Segment::RegisterKey {
            reservation_key,
            service_action_reservation_key,
            ..
        } => {
            let data_out = PrOutParameters {
                reservation_key,
                service_action_reservation_key,
                ..PrOutParameters::default()
            }
            .encode();
            Planned {
                data_out,
                ..persistent_reserve_out(PrOutAction::Register, 24)
            }
        }
        _ => return None,
    })
}

/// 15h: the REGISTER AND MOVE the segment asks for, sent to its destination after the
/// list's other segments (Part B 1.10). None for any other segment.
pub fn register_and_move(segment: &Segment) -> Option<Planned> {
    let mut data_out = Vec::new();
    segment.register_and_move_list()?.encode(&mut data_out);
    let length = u32::try_from(data_out.len()).unwrap_or(u32::MAX);
    Some(Planned {
        data_out,
        ..persistent_reserve_out(PrOutAction::RegisterAndMove, length)
    })
}

fn persistent_reserve_out(action: PrOutAction, parameter_list_length: u32) -> Planned {
    Planned::to(
        Side::Destination,
        Op::PersistentReserveOut {
            action,
            parameter_list_length,
        },
    )
}

/// The largest record 13h reads, whatever the drive's limits say: the buffer it reads into.
pub const MAX_TAPE_IMAGE_RECORD: u32 = 16 << 20;

/// 13h tape image copy (SPC-3 6.3.7.21): records and filemarks copied from the source
/// drive to the destination until `count` consecutive filemarks (0: until end of data).
/// Records are read in variable mode, each asking for the largest record the drive allows.
///
/// The runner asks [`TapeImageCopy::limits`] first, gives the READ BLOCK LIMITS data to
/// [`TapeImageCopy::start`], then loops: send [`TapeImageCopy::read`], hand what it returned
/// to [`TapeImageCopy::after_read`], do what that says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapeImageCopy {
    count: u32,
    filemarks: u32,
    record: u32,
}

/// What one READ of 13h returned, as the planner needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadResult {
    /// GOOD, with the device's residual (bytes of the request not transferred).
    Good { residual: usize },
    /// CHECK CONDITION with its sense decoded: FILEMARK, ILI and the INFORMATION field,
    /// and the sense key.
    Check {
        key: SenseKey,
        filemark: bool,
        ili: bool,
        information: Option<u64>,
    },
    /// CHECK CONDITION whose sense could not be decoded.
    Undecoded,
}

/// What the runner does after a READ of 13h.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Write the first `len` bytes read as one record on the destination, then read again.
    Record { len: usize },
    /// Write one filemark on the destination; then the copy is done if `last`, else read
    /// again.
    Filemark { last: bool },
    /// The copy is done (end of data on the source).
    Done,
    /// The read failed: the source's status and sense go into COPY ABORTED (0D/01).
    SourceFailed,
}

impl TapeImageCopy {
    pub fn new(count: u32) -> Self {
        Self {
            count,
            filemarks: 0,
            record: 1,
        }
    }

    /// The first command, to the source: READ BLOCK LIMITS (6 bytes of data-in).
    pub fn limits() -> Planned {
        Planned {
            data_in: 6,
            ..Planned::to(Side::Source, Op::ReadBlockLimits)
        }
    }

    /// Takes READ BLOCK LIMITS data: each READ then asks for its MAXIMUM BLOCK LENGTH LIMIT,
    /// at least 1 and at most [`MAX_TAPE_IMAGE_RECORD`]. Returns the record size.
    pub fn start(&mut self, limits: &[u8]) -> usize {
        let max = ssc::decode_block_limits(limits).map_or(0, |(max, _)| max);
        self.record = max.clamp(1, MAX_TAPE_IMAGE_RECORD);
        self.record as usize
    }

    /// The READ to send next: variable mode, SILI=0, one record of up to the record size.
    pub fn read(&self) -> Planned {
        Planned {
            data_in: self.record as usize,
            ..Planned::to(
                Side::Source,
                Op::ReadStream {
                    fixed: false,
                    length: self.record,
                },
            )
        }
    }

    /// What to do with what the last READ returned.
    pub fn after_read(&mut self, result: ReadResult) -> Next {
        let max = self.record as usize;
        match result {
            ReadResult::Good { residual } => self.record_of(max - residual.min(max)),
            ReadResult::Check { filemark: true, .. } => {
                self.filemarks += 1;
                Next::Filemark {
                    last: self.count != 0 && self.filemarks >= self.count,
                }
            }
            // A shorter record: INFORMATION = requested − actual, a 32-bit two's complement
            // (negative for a longer record, whose first `max` bytes were read).
            ReadResult::Check {
                ili: true,
                information: Some(information),
                ..
            } => {
                let residue = i64::from(information as u32 as i32);
                let len = (max as i64 - residue).clamp(0, max as i64) as usize;
                self.record_of(len)
            }
            ReadResult::Check {
                key: SenseKey::BLANK_CHECK,
                ..
            } => Next::Done,
            ReadResult::Check { .. } | ReadResult::Undecoded => Next::SourceFailed,
        }
    }

    fn record_of(&mut self, len: usize) -> Next {
        self.filemarks = 0;
        Next::Record { len }
    }

    /// The filemark [`Next::Filemark`] asks for, to the destination.
    pub fn filemark() -> Planned {
        Planned::to(
            Side::Destination,
            Op::WriteFilemarks {
                immediate: false,
                count: 1,
            },
        )
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
