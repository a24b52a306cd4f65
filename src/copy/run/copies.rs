//! Carrying out a planned transfer segment ([`Transfer`], from `copy::plan`) whose source
//! and destination move in whole units: blocks and stream records (00h-03h and their
//! 0Bh-0Eh forms), the list's own data to a stream (04h, 05h), a stream discarded (06h,
//! 0Fh). The byte-range segments go to `byte_ranges`.

use super::*;
use crate::copy::plan::{From, To, Transfer};
use crate::copy::segment::{Sink, Source};

impl Runner<'_> {
    /// Segment `step` as `plan` says, with `carried` the leftovers it started with.
    pub(super) fn transfer(
        &mut self,
        step: &Step<'_>,
        plan: &Transfer,
        carried: Carried,
    ) -> Result<Moved, (Failure, Moved)> {
        match (plan.from, plan.to) {
            (From::Range { lba, offset }, To::Stream(unit)) => {
                self.range_to_stream(step, plan, (lba, offset), unit, carried)
            }
            (From::Stream(unit), To::Range { lba, offset }) => {
                self.stream_to_range(step, plan, unit, (lba, offset))
            }
            (
                From::Range { lba, offset },
                To::Range {
                    lba: to,
                    offset: at,
                },
            ) => self.range_to_range(step, plan, (lba, offset), (to, at)),
            _ => self.whole_units(step, plan),
        }
    }

    /// A transfer in whole source and destination units, through `segment::transfer`.
    fn whole_units(&mut self, step: &Step<'_>, plan: &Transfer) -> Result<Moved, (Failure, Moved)> {
        let list = self.list;
        let source = match plan.from {
            From::Blocks { lba } => Source::Blocks {
                endpoint: need(&step.source)?,
                lba,
            },
            From::Stream(unit) => Source::Stream {
                endpoint: need(&step.source)?,
                unit,
            },
            // Its range was checked with the segment.
            From::Inline { offset, bytes } => {
                let start = offset as usize;
                Source::Bytes(
                    list.inline_data
                        .get(start..start + bytes as usize)
                        .unwrap_or_default(),
                )
            }
            From::Embedded => match &step.descriptor.body {
                Segment::EmbeddedToStream { data, .. } => Source::Bytes(data),
                _ => Source::Bytes(&[]),
            },
            From::Nothing | From::Range { .. } => Source::Bytes(&[]),
        };
        let process = match source {
            Source::Bytes(data) => plan.process.min(data.len() as u64),
            _ => plan.process,
        };
        let sink = match plan.to {
            To::Blocks { lba } => Sink::Blocks {
                endpoint: need(&step.destination)?,
                lba,
            },
            To::Stream(unit) => Sink::Stream {
                endpoint: need(&step.destination)?,
                unit,
                tap: self.ctx.progress.tap.as_ref(),
            },
            To::Discard | To::Range { .. } => Sink::Discard,
        };
        // A backup is a run of block→stream segments from one disk: the next one's reads
        // may start while this one's last records are written.
        let prefetch = matches!((plan.from, plan.to), (From::Blocks { .. }, To::Stream(_)));
        if prefetch {
            let d = need(&step.destination)?;
            self.engine
                .expect_next(next_read(self.list, &self.endpoints, step.index, d));
        }
        let abort = || self.ctx.abort.is_aborted();
        let moved = segment::transfer(
            &mut self.engine,
            source,
            sink,
            process,
            &mut self.left,
            plan.residue,
            plan.hold.then_some(&mut self.held),
            &abort,
        );
        if prefetch {
            self.engine.expect_next(None);
        }
        moved.map_err(|e| (e.failure, e.moved))
    }
}
