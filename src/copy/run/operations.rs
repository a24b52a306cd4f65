//! The segments that move no data between the CSCDs, or not as a transfer: verify a CSCD
//! (07h), write filemarks, space and locate (10h-12h), tape image copy (13h), and the
//! persistent reservations made for the initiator (14h, 15h: sent after the list). What
//! each sends is decided by `copy::plan`; this carries it out.

use super::*;
use crate::copy::io::StreamUnit;
use crate::copy::plan::{self, Next, ReadResult, TapeImageCopy};

impl Runner<'_> {
    /// 07h and 10h-15h: verifying a CSCD, the tape operations, tape image copy and the persistent reservations.
    pub(super) fn operation(&mut self, step: &Step<'_>) -> Result<Moved, (Failure, Moved)> {
        let body = &step.descriptor.body;
        let none = Moved::default();
        if let Segment::TapeImageCopy { count, .. } = *body {
            let (s, d) = (need(&step.source)?, need(&step.destination)?);
            let abort = || self.ctx.abort.is_aborted();
            return tape_image_copy(s, d, count, &abort).map_err(|f| (f, none));
        }
        if let Some(planned) = plan::register_and_move(body) {
            let d = need(&step.destination)?.clone();
            self.deferred_pr = Some((step.index, d, planned));
            return Ok(none);
        }
        // The other families: `Runner::segment` routes them elsewhere.
        let Some(planned) = plan::command_segment(body) else {
            return Ok(none);
        };
        let endpoint = match planned.side {
            Side::Source => need(&step.source)?,
            Side::Destination => need(&step.destination)?,
        };
        io::carry_out(endpoint, &planned).map_err(|f| (f, none))?;
        Ok(none)
    }
}

/// 13h: copies records and filemarks as [`TapeImageCopy`] says, until it says done.
fn tape_image_copy(
    s: &Endpoint,
    d: &Endpoint,
    count: u32,
    abort: &dyn Fn() -> bool,
) -> Result<Moved, Failure> {
    let mut copy = TapeImageCopy::new(count);
    let limits = io::carry_out(s, &TapeImageCopy::limits())?;
    let mut buf = vec![0u8; copy.start(&limits)];
    let mut moved = Moved::default();
    loop {
        if abort() {
            return Err(Failure::new(Asc::NO_ADDITIONAL_SENSE));
        }
        let cdb = copy.read().op.cdb();
        crate::copy::reservation::check_command(s, Side::Source, &cdb)?;
        let done = s
            .device
            .execute(&cdb, DataDirection::FromDevice(&mut buf))
            .map_err(|_| Failure::of(Asc::COPY_TARGET_DEVICE_NOT_REACHABLE, s))?;
        let result = if done.is_good() {
            ReadResult::Good {
                residual: done.residual,
            }
        } else {
            match done.decoded_sense() {
                Some(x) => ReadResult::Check {
                    key: x.key,
                    filemark: x.filemark,
                    ili: x.ili,
                    information: x.information,
                },
                None => ReadResult::Undecoded,
            }
        };
        match copy.after_read(result) {
            Next::Record { len } => {
                // Counted once read: its length is known only now.
                s.throttle.take(Side::Source, len as u64)?;
                write_record(d, &buf[..len])?;
                moved.written += len as u64;
            }
            Next::Filemark { last } => {
                io::carry_out(d, &TapeImageCopy::filemark())?;
                if last {
                    return Ok(moved);
                }
            }
            Next::Done => return Ok(moved),
            Next::SourceFailed => {
                return Err(Failure {
                    asc: Asc::THIRD_PARTY_DEVICE_FAILURE,
                    device: Some((Side::Source, done.status, done.sense)),
                    cscd: s.cscd,
                    field: None,
                })
            }
        }
    }
}

fn write_record(d: &Endpoint, record: &[u8]) -> Result<(), Failure> {
    let unit = StreamUnit {
        fixed: false,
        block_length: 0,
        transfer_length: record.len() as u32,
    };
    io::write_stream(d, unit, &[record]).map_err(|(f, _)| f)
}
