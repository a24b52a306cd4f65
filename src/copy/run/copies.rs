//! The segments that move whole blocks and stream records (00h-03h and their 0Bh-0Eh
//! forms), and those that write a stream from the list's own data or discard one (04h-06h,
//! 0Fh).

use super::*;

impl Runner<'_> {
    /// 00h and 01h (0Bh, 0Ch): blocks to stream records and back.
    pub(super) fn block_and_stream(&mut self, step: &Step<'_>) -> Result<Moved, (Failure, Moved)> {
        let body = &step.descriptor.body;
        let source = &step.source;
        let destination = &step.destination;
        let residue = step.residue;
        let abort = || self.ctx.abort.is_aborted();
        let mut hold = body.holds_data().then_some(&mut self.held);
        Ok(match *body {
            Segment::BlockToStream {
                stream_transfer_length,
                blocks,
                lba,
                ..
            } => {
                let (s, d) = (need(source)?, need(destination)?);
                let process = u64::from(blocks) * u64::from(s.block_length);
                range(s, lba, u64::from(blocks), 16)?;
                let sink = Sink::Stream {
                    endpoint: d,
                    unit: stream_unit(self.list, body.destination(), stream_transfer_length),
                    tap: self.ctx.progress.tap.as_ref(),
                };
                let residue = Residue { ..residue };
                // A backup is a run of these from one disk: the next one's reads may start
                // while this one's last records are written.
                self.engine
                    .expect_next(next_read(self.list, &self.endpoints, step.index, d));
                let moved = segment::transfer(
                    &mut self.engine,
                    Source::Blocks { endpoint: s, lba },
                    sink,
                    process,
                    &mut self.left,
                    residue,
                    hold.as_deref_mut(),
                    &abort,
                );
                self.engine.expect_next(None);
                moved.map_err(|e| (e.failure, e.moved))?
            }
            Segment::StreamToBlock {
                stream_transfer_length,
                blocks,
                lba,
                ..
            } => {
                let (s, d) = (need(source)?, need(destination)?);
                range(d, lba, u64::from(blocks), 16)?;
                let exact = u64::from(blocks) * u64::from(d.block_length);
                let process = exact.saturating_sub(self.left.destination.len() as u64);
                let src = Source::Stream {
                    endpoint: s,
                    unit: stream_unit(self.list, body.source(), stream_transfer_length),
                };
                segment::transfer(
                    &mut self.engine,
                    src,
                    Sink::Blocks { endpoint: d, lba },
                    process,
                    &mut self.left,
                    residue,
                    hold,
                    &abort,
                )
                .map_err(|e| (e.failure, e.moved))?
            }
            // The other families: `Runner::segment` routes them elsewhere.
            _ => Moved::default(),
        })
    }

    /// 02h and 03h (0Dh, 0Eh): blocks to blocks, stream records to stream records.
    pub(super) fn block_to_block_or_stream_to_stream(
        &mut self,
        step: &Step<'_>,
    ) -> Result<Moved, (Failure, Moved)> {
        let body = &step.descriptor.body;
        let source = &step.source;
        let destination = &step.destination;
        let residue = step.residue;
        let abort = || self.ctx.abort.is_aborted();
        let mut hold = body.holds_data().then_some(&mut self.held);
        Ok(match *body {
            Segment::BlockToBlock {
                dc,
                blocks,
                source_lba,
                destination_lba,
                ..
            } => {
                let (s, d) = (need(source)?, need(destination)?);
                let process = if dc {
                    (u64::from(blocks) * u64::from(d.block_length))
                        .saturating_sub(self.left.destination.len() as u64)
                } else {
                    u64::from(blocks) * u64::from(s.block_length)
                };
                range(
                    s,
                    source_lba,
                    process.div_ceil(u64::from(s.block_length.max(1))),
                    12,
                )?;
                range(
                    d,
                    destination_lba,
                    (process + self.left.destination.len() as u64)
                        .div_ceil(u64::from(d.block_length.max(1))),
                    20,
                )?;
                segment::transfer(
                    &mut self.engine,
                    Source::Blocks {
                        endpoint: s,
                        lba: source_lba,
                    },
                    Sink::Blocks {
                        endpoint: d,
                        lba: destination_lba,
                    },
                    process,
                    &mut self.left,
                    residue,
                    hold.as_deref_mut(),
                    &abort,
                )
                .map_err(|e| (e.failure, e.moved))?
            }
            Segment::StreamToStream {
                source_transfer_length,
                destination_transfer_length,
                byte_count,
                ..
            } => {
                let (s, d) = (need(source)?, need(destination)?);
                let src = Source::Stream {
                    endpoint: s,
                    unit: stream_unit(self.list, body.source(), source_transfer_length),
                };
                let sink = Sink::Stream {
                    endpoint: d,
                    unit: stream_unit(self.list, body.destination(), destination_transfer_length),
                    tap: self.ctx.progress.tap.as_ref(),
                };
                segment::transfer(
                    &mut self.engine,
                    src,
                    sink,
                    u64::from(byte_count),
                    &mut self.left,
                    residue,
                    hold,
                    &abort,
                )
                .map_err(|e| (e.failure, e.moved))?
            }
            // The other families: `Runner::segment` routes them elsewhere.
            _ => Moved::default(),
        })
    }

    /// 04h-06h (0Fh): inline or embedded data to a stream, and a stream read and discarded.
    pub(super) fn data_or_discard(&mut self, step: &Step<'_>) -> Result<Moved, (Failure, Moved)> {
        let body = &step.descriptor.body;
        let source = &step.source;
        let destination = &step.destination;
        let residue = step.residue;
        let abort = || self.ctx.abort.is_aborted();
        let hold = body.holds_data().then_some(&mut self.held);
        Ok(match *body {
            Segment::InlineToStream {
                stream_transfer_length,
                ..
            }
            | Segment::EmbeddedToStream {
                stream_transfer_length,
                ..
            } => {
                let d = need(destination)?;
                // Inline data (04h; its range was checked with the segment) or embedded
                // data (05h): no source device, so act as if the source PAD were 0.
                let data: &[u8] = match body {
                    Segment::InlineToStream {
                        inline_offset,
                        bytes,
                        ..
                    } => {
                        let start = *inline_offset as usize;
                        self.list
                            .inline_data
                            .get(start..start + *bytes as usize)
                            .unwrap_or_default()
                    }
                    Segment::EmbeddedToStream { data, .. } => data,
                    _ => &[],
                };
                let sink = Sink::Stream {
                    endpoint: d,
                    unit: stream_unit(self.list, body.destination(), stream_transfer_length),
                    tap: self.ctx.progress.tap.as_ref(),
                };
                let residue = Residue {
                    source_pad: false,
                    ..residue
                };
                segment::transfer(
                    &mut self.engine,
                    Source::Bytes(data),
                    sink,
                    data.len() as u64,
                    &mut self.left,
                    residue,
                    None,
                    &abort,
                )
                .map_err(|e| (e.failure, e.moved))?
            }
            Segment::StreamToDiscard {
                stream_transfer_length,
                bytes,
                ..
            } => {
                let residue = Residue {
                    destination_pad: false,
                    ..residue
                };
                match source.as_ref().and_then(Option::as_ref) {
                    // A null LU source (C001h) with nothing to read just settles leftovers.
                    None => segment::transfer(
                        &mut self.engine,
                        Source::Bytes(&[]),
                        Sink::Discard,
                        0,
                        &mut self.left,
                        residue,
                        hold,
                        &abort,
                    ),
                    Some(s) => {
                        let src = Source::Stream {
                            endpoint: s,
                            unit: stream_unit(self.list, body.source(), stream_transfer_length),
                        };
                        segment::transfer(
                            &mut self.engine,
                            src,
                            Sink::Discard,
                            u64::from(bytes),
                            &mut self.left,
                            residue,
                            hold,
                            &abort,
                        )
                    }
                }
                .map_err(|e| (e.failure, e.moved))?
            }
            // The other families: `Runner::segment` routes them elsewhere.
            _ => Moved::default(),
        })
    }
}
