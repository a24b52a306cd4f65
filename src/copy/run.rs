//! Running a validated parameter list, segment by segment: resolve the CSCDs, check each
//! segment as it is reached (COPY ABORTED for what only then can be known), move the data,
//! and build COPY ABORTED sense with the segment number, the residue and the failing
//! device's status and sense when a segment fails (SPC-3 6.3.3, spec Part B 4).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::device::{DataDirection, ScsiDevice};
use crate::scsi::codes::DeviceClass;
use crate::scsi::parameter_list::Endpoint as ListEndpoint;
use crate::scsi::segment_descriptor::{CscdId, Segment};
use crate::scsi::target_descriptor::{CscdDescriptor, DeviceParameters};
use crate::scsi::{
    Asc, ForwardedSense, ForwardedSource, Limits, ParameterList, PeripheralDeviceType, Sense,
    SenseKeySpecific,
};

use super::engine;
use super::io::{self, Endpoint, Failure, Side, StreamUnit};
use super::limit::{DeviceLimits, Limiter, Throttle};
use super::segment::{self, Held, Leftovers, Moved, Residue, Sink, Source};
use super::{Abort, Nexus};

/// Finds the device a CSCD descriptor names, for an initiator (never a device it may not
/// use: CVE-2020-28374). `None` = not reachable (COPY ABORTED 0D/02).
pub trait Resolve: Send + Sync {
    fn resolve(&self, cscd: &CscdDescriptor, nexus: &Nexus) -> Option<Arc<dyn ScsiDevice>>;
}

/// Live progress of a list, read by RECEIVE COPY RESULTS COPY STATUS while it runs.
#[derive(Debug, Default)]
pub struct Progress {
    pub segments_processed: AtomicU64,
    pub bytes: AtomicU64,
}

/// How a list ended.
#[derive(Debug, Default)]
pub struct Outcome {
    /// COPY ABORTED sense (fixed format), or None for GOOD.
    pub sense: Option<Sense>,
    /// Held data for RECEIVE DATA.
    pub held: Held,
}

/// Everything a list runs with.
pub struct Context<'a> {
    pub nexus: &'a Nexus,
    pub resolver: &'a dyn Resolve,
    pub receiving_lun: Option<Arc<dyn ScsiDevice>>,
    pub limits: &'a Limits,
    pub progress: &'a Progress,
    pub abort: &'a Abort,
    /// Per-device bandwidth limits (the inventory's `limit`), shared by every copy.
    pub device_limits: Option<&'a DeviceLimits>,
    /// This copy's own limit on the bytes it reads from its sources.
    pub copy_limit: Option<Arc<Limiter>>,
}

/// Runs every segment of `list` in order.
pub fn run(list: &ParameterList, ctx: &Context<'_>) -> Outcome {
    let mut runner = Runner {
        list,
        ctx,
        endpoints: HashMap::new(),
        left: Leftovers::default(),
        held: Held {
            limit: ctx.limits.held_data_limit as usize,
            ..Held::default()
        },
        deferred_pr: None,
    };
    let mut outcome = Outcome::default();
    for index in 0..list.segments.len() {
        if let Err((failure, moved)) = runner.segment(index) {
            // What the failed segment did write is on the destination (a tape's records
            // before end of medium): COPY STATUS and the CLI count it.
            ctx.progress
                .bytes
                .fetch_add(moved.written, Ordering::Relaxed);
            outcome.sense = Some(runner.sense(index, failure, moved));
            break;
        }
        ctx.progress
            .segments_processed
            .fetch_add(1, Ordering::Relaxed);
    }
    // 15h: REGISTER AND MOVE goes out after all other segments, or when an error ends the
    // list after the segment was seen (Part B 1.10).
    if let Some((index, endpoint, parameters)) = runner.deferred_pr.take() {
        let cdb = pr_out(0x07, parameters.len());
        if let Err(f) = io::command(
            &endpoint,
            Side::Destination,
            &cdb,
            DataDirection::ToDevice(&parameters),
        ) {
            if outcome.sense.is_none() {
                outcome.sense = Some(runner.sense(index, f, Moved::default()));
            }
        }
    }
    // Nothing read early may outlive the list: the disk may change before the next one.
    engine::forget_prefetch();
    // A tape written to ends exactly at end of data when the list is done.
    for endpoint in runner.endpoints.values() {
        endpoint.device.settle();
    }
    outcome.held = runner.held;
    outcome
}

/// Where segment `index + 1` reads, if it is a block-to-stream segment whose source is a
/// file-backed disk already resolved and not the device segment `index` writes
/// (`destination`): reading it early could then return data this segment is changing.
fn next_read(
    list: &ParameterList,
    endpoints: &HashMap<CscdId, Endpoint>,
    index: usize,
    destination: &Endpoint,
) -> Option<engine::NextRead> {
    let next = list.segments.get(index + 1)?;
    let Segment::BlockToStream { blocks, lba, .. } = next.body else {
        return None;
    };
    let source = endpoints.get(&next.body.source()?)?;
    let backend = source.backend.as_ref()?;
    let same = |e: &Endpoint| {
        Arc::ptr_eq(&e.device, &source.device)
            || e.backend
                .as_ref()
                .is_some_and(|b| Arc::ptr_eq(&b.file, &backend.file))
    };
    if same(destination) || backend.block_size != source.block_length {
        return None;
    }
    Some(engine::NextRead {
        file: Arc::clone(&backend.file),
        offset: backend.offset + lba * u64::from(backend.block_size),
        bytes: u64::from(blocks) * u64::from(source.block_length),
        in_unit: source.block_length as usize,
    })
}

struct Runner<'a> {
    list: &'a ParameterList,
    ctx: &'a Context<'a>,
    endpoints: HashMap<CscdId, Endpoint>,
    left: Leftovers,
    held: Held,
    deferred_pr: Option<(usize, Endpoint, Vec<u8>)>,
}

impl Runner<'_> {
    fn segment(&mut self, index: usize) -> Result<(), (Failure, Moved)> {
        let none = Moved::default();
        if let Err(e) = self.list.check_segment(index, self.ctx.limits) {
            let failure = Failure {
                asc: e.asc,
                device: None,
                cscd: if e.in_segment {
                    None
                } else {
                    cscd_index(self.list, e.pointer)
                },
                field: e.in_segment.then_some(e.pointer),
            };
            return Err((failure, none));
        }
        let Some(descriptor) = self.list.segments.get(index) else {
            return Ok(());
        };
        let body = &descriptor.body;
        let last = index + 1 == self.list.segments.len();
        let source = match body.source() {
            Some(id) => Some(self.endpoint(id, 4, body).map_err(|f| (f, none))?),
            None => None,
        };
        let destination = match body.destination() {
            Some(id) => Some(self.endpoint(id, 6, body).map_err(|f| (f, none))?),
            None => None,
        };
        let pad = |id: Option<CscdId>| -> bool {
            id.and_then(|id| self.list.endpoint(id, 0).ok())
                .is_some_and(|e| e.pad())
        };
        let residue = Residue {
            cat: descriptor.cat,
            source_pad: pad(body.source()),
            destination_pad: pad(body.destination()),
            last,
            exact_destination: segment::exact_destination(body),
        };
        let abort = || self.ctx.abort.is_aborted();
        let mut hold = body.holds_data().then_some(&mut self.held);
        let moved = match *body {
            Segment::BlockToStream {
                stream_transfer_length,
                blocks,
                lba,
                ..
            } => {
                let (s, d) = (need(&source)?, need(&destination)?);
                let process = u64::from(blocks) * u64::from(s.block_length);
                range(s, lba, u64::from(blocks), 16)?;
                let sink = Sink::Stream {
                    endpoint: d,
                    unit: stream_unit(self.list, body.destination(), stream_transfer_length),
                };
                let residue = Residue { ..residue };
                // A backup is a run of these from one disk: the next one's reads may start
                // while this one's last records are written.
                engine::expect_next(next_read(self.list, &self.endpoints, index, d));
                let moved = segment::transfer(
                    Source::Blocks { endpoint: s, lba },
                    sink,
                    process,
                    &mut self.left,
                    residue,
                    hold.as_deref_mut(),
                    &abort,
                );
                engine::expect_next(None);
                moved.map_err(|e| (e.failure, e.moved))?
            }
            Segment::StreamToBlock {
                stream_transfer_length,
                blocks,
                lba,
                ..
            } => {
                let (s, d) = (need(&source)?, need(&destination)?);
                range(d, lba, u64::from(blocks), 16)?;
                let exact = u64::from(blocks) * u64::from(d.block_length);
                let process = exact.saturating_sub(self.left.destination.len() as u64);
                let src = Source::Stream {
                    endpoint: s,
                    unit: stream_unit(self.list, body.source(), stream_transfer_length),
                };
                segment::transfer(
                    src,
                    Sink::Blocks { endpoint: d, lba },
                    process,
                    &mut self.left,
                    residue,
                    hold.as_deref_mut(),
                    &abort,
                )
                .map_err(|e| (e.failure, e.moved))?
            }
            Segment::BlockToBlock {
                dc,
                blocks,
                source_lba,
                destination_lba,
                ..
            } => {
                let (s, d) = (need(&source)?, need(&destination)?);
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
                let (s, d) = (need(&source)?, need(&destination)?);
                let src = Source::Stream {
                    endpoint: s,
                    unit: stream_unit(self.list, body.source(), source_transfer_length),
                };
                let sink = Sink::Stream {
                    endpoint: d,
                    unit: stream_unit(self.list, body.destination(), destination_transfer_length),
                };
                segment::transfer(
                    src,
                    sink,
                    u64::from(byte_count),
                    &mut self.left,
                    residue,
                    hold.as_deref_mut(),
                    &abort,
                )
                .map_err(|e| (e.failure, e.moved))?
            }
            Segment::InlineToStream {
                stream_transfer_length,
                ..
            }
            | Segment::EmbeddedToStream {
                stream_transfer_length,
                ..
            } => {
                let d = need(&destination)?;
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
                };
                let residue = Residue {
                    source_pad: false,
                    ..residue
                };
                segment::transfer(
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
            Segment::VerifyCscd { tur, .. } => {
                let s = need(&source)?;
                if tur {
                    io::command(s, Side::Source, &[0; 6], DataDirection::None)
                        .map_err(|f| (f, none))?;
                } else {
                    let mut inquiry = [0u8; 36];
                    io::command(
                        s,
                        Side::Source,
                        &[0x12, 0, 0, 0, 36, 0],
                        DataDirection::FromDevice(&mut inquiry),
                    )
                    .map_err(|f| (f, none))?;
                }
                none
            }
            Segment::BlockOffsetToStream {
                stream_transfer_length,
                bytes,
                lba,
                byte_offset,
                ..
            } => {
                let (s, d) = (need(&source)?, need(&destination)?);
                let unit = stream_unit(self.list, body.destination(), stream_transfer_length);
                let start = u64::from(byte_offset);
                let bl = u64::from(s.block_length.max(1));
                range(s, lba, (start + u64::from(bytes)).div_ceil(bl), 16)?;
                // In chunks of at most RANGE_CHUNK bytes: each but the last carries its
                // leftover destination data on as CAT would; the last applies the
                // segment's own PAD/CAT rules.
                let total = u64::from(bytes);
                // What the whole segment would write: a failure in a later chunk reports
                // the segment's residue (Part B 4), not the chunks' so far.
                let out = unit.bytes().max(1) as u64;
                let expected = (self.left.destination.len() as u64 + total) / out * out;
                let mut moved = Moved {
                    written: 0,
                    expected,
                };
                let mut done = 0u64;
                loop {
                    let n = (total - done).min(RANGE_CHUNK);
                    let data = read_range(s, lba, start + done, n).map_err(|f| (f, moved))?;
                    let last = done + n == total;
                    // The last chunk: the source disk's own PAD too (Table 116; only
                    // 04h/05h act as if source PAD were 0, Table 117).
                    let chunk_residue = if last {
                        residue
                    } else {
                        Residue {
                            source_pad: false,
                            cat: true,
                            last: false,
                            ..residue
                        }
                    };
                    let sink = Sink::Stream { endpoint: d, unit };
                    let m = segment::transfer(
                        Source::Bytes(&data),
                        sink,
                        n,
                        &mut self.left,
                        chunk_residue,
                        None,
                        &abort,
                    )
                    .map_err(|e| {
                        let written = moved.written + e.moved.written;
                        (e.failure, Moved { written, ..moved })
                    })?;
                    moved.written += m.written;
                    done += n;
                    if last {
                        break moved;
                    }
                }
            }
            Segment::StreamToBlockOffset {
                stream_transfer_length,
                bytes,
                lba,
                byte_offset,
                ..
            } => {
                let (s, d) = (need(&source)?, need(&destination)?);
                // Gather the bytes from the stream (leftover source first), then
                // read-modify-write the block range, RANGE_CHUNK bytes at a time (never a
                // buffer the size of the byte count).
                let unit = stream_unit(self.list, body.source(), stream_transfer_length);
                let start = u64::from(byte_offset);
                let bl = u64::from(d.block_length.max(1));
                let total = u64::from(bytes);
                range(d, lba, (start + total).div_ceil(bl), 16)?;
                let mut record = vec![0u8; unit.bytes()];
                let mut done = 0u64;
                while done < total {
                    let n = (total - done).min(RANGE_CHUNK) as usize;
                    let mut gathered = Vec::with_capacity(n);
                    let take = n.min(self.left.source.len());
                    gathered.extend(self.left.source.drain(..take));
                    let progress = Moved {
                        written: done,
                        expected: total,
                    };
                    while gathered.len() < n {
                        io::read_stream(s, unit, &mut record).map_err(|f| (f, progress))?;
                        let want = (n - gathered.len()).min(record.len());
                        gathered.extend_from_slice(&record[..want]);
                        self.left.source.extend_from_slice(&record[want..]);
                    }
                    write_range(d, lba, start + done, &gathered).map_err(|f| (f, progress))?;
                    done += n as u64;
                }
                let moved = Moved {
                    written: total,
                    expected: total,
                };
                // Table 116: with no PAD on either side, leftover source data is an
                // inexact segment; source PAD drops it; destination PAD alone keeps it.
                let (cat, sp, dp) = (residue.cat, residue.source_pad, residue.destination_pad);
                if !cat && !sp && !dp && !self.left.source.is_empty() {
                    return Err((Failure::new(Asc::UNEXPECTED_INEXACT_SEGMENT), moved));
                }
                if residue.last || (!cat && sp) {
                    self.left.source.clear();
                }
                moved
            }
            Segment::BlockOffsetToBlockOffset {
                bytes,
                source_lba,
                destination_lba,
                source_byte_offset,
                destination_byte_offset,
                ..
            } => {
                let (s, d) = (need(&source)?, need(&destination)?);
                let (from, to) = (
                    u64::from(source_byte_offset),
                    u64::from(destination_byte_offset),
                );
                let total = u64::from(bytes);
                let blocks =
                    |e: &Endpoint, at: u64| (at + total).div_ceil(u64::from(e.block_length.max(1)));
                // SOURCE and DESTINATION LOGICAL BLOCK ADDRESS: bytes 12 and 20.
                range(s, source_lba, blocks(s, from), 12)?;
                range(d, destination_lba, blocks(d, to), 20)?;
                let mut done = 0u64;
                while done < total {
                    let n = (total - done).min(RANGE_CHUNK);
                    let progress = Moved {
                        written: done,
                        expected: total,
                    };
                    let data =
                        read_range(s, source_lba, from + done, n).map_err(|f| (f, progress))?;
                    write_range(d, destination_lba, to + done, &data).map_err(|f| (f, progress))?;
                    done += n;
                }
                Moved {
                    written: total,
                    expected: total,
                }
            }
            Segment::WriteFilemarks { immed, count, .. } => {
                let d = need(&destination)?;
                let [_, a, b, c] = count.to_be_bytes();
                io::command(
                    d,
                    Side::Destination,
                    &[0x10, u8::from(immed), a, b, c, 0],
                    DataDirection::None,
                )
                .map_err(|f| (f, none))?;
                none
            }
            Segment::Space { code, count, .. } => {
                let d = need(&destination)?;
                let [_, a, b, c] = count.to_be_bytes();
                io::command(
                    d,
                    Side::Destination,
                    &[0x11, code & 0x0f, a, b, c, 0],
                    DataDirection::None,
                )
                .map_err(|f| (f, none))?;
                none
            }
            Segment::Locate {
                logical_object_id, ..
            } => {
                let d = need(&destination)?;
                let mut cdb = [0u8; 10];
                cdb[0] = 0x2b;
                cdb[3..7].copy_from_slice(&logical_object_id.to_be_bytes());
                io::command(d, Side::Destination, &cdb, DataDirection::None)
                    .map_err(|f| (f, none))?;
                none
            }
            Segment::TapeImageCopy { count, .. } => {
                let (s, d) = (need(&source)?, need(&destination)?);
                tape_image_copy(s, d, count, &abort).map_err(|f| (f, none))?
            }
            Segment::RegisterKey {
                reservation_key,
                service_action_reservation_key,
                ..
            } => {
                let d = need(&destination)?;
                let mut parameters = vec![0u8; 24];
                parameters[..8].copy_from_slice(&reservation_key.to_be_bytes());
                parameters[8..16].copy_from_slice(&service_action_reservation_key.to_be_bytes());
                io::command(
                    d,
                    Side::Destination,
                    &pr_out(0x00, 24),
                    DataDirection::ToDevice(&parameters),
                )
                .map_err(|f| (f, none))?;
                none
            }
            Segment::ThirdPartyPrSource { .. } => {
                let d = need(&destination)?.clone();
                let mut encoded = Vec::new();
                descriptor.encode(&mut encoded);
                self.deferred_pr = Some((index, d, encoded.get(8..).unwrap_or_default().to_vec()));
                none
            }
        };
        self.ctx
            .progress
            .bytes
            .fetch_add(moved.written, Ordering::Relaxed);
        Ok(())
    }

    /// Resolves (once per list) the device CSCD `id` names. Null LUs never receive
    /// commands: a segment needing one is ended as for an unreachable CSCD, except 06h with
    /// nothing to read (returns Ok(None) there via the caller).
    fn endpoint(
        &mut self,
        id: CscdId,
        field: u16,
        body: &Segment,
    ) -> Result<Option<Endpoint>, Failure> {
        if let Some(e) = self.endpoints.get(&id) {
            return Ok(Some(e.clone()));
        }
        let unreachable = |cscd: Option<usize>| Failure {
            asc: Asc::COPY_TARGET_DEVICE_NOT_REACHABLE,
            device: None,
            cscd,
            field: cscd.is_none().then_some(field),
        };
        let (device, cscd, descriptor) = match self.list.endpoint(id, field) {
            Ok(ListEndpoint::Cscd(i, c)) => match self.ctx.resolver.resolve(c, self.ctx.nexus) {
                Some(device) => (device, Some(i), Some(c)),
                None => return Err(unreachable(Some(i))),
            },
            Ok(ListEndpoint::Null(_)) => {
                return match body {
                    Segment::StreamToDiscard { bytes: 0, .. } => Ok(None),
                    _ => Err(unreachable(None)),
                };
            }
            Ok(ListEndpoint::CopyManager) => match self.ctx.receiving_lun.clone() {
                Some(device) => (device, None, None),
                None => return Err(unreachable(None)),
            },
            Err(e) => {
                return Err(Failure {
                    asc: e.asc,
                    device: None,
                    cscd: None,
                    field: Some(e.pointer),
                })
            }
        };
        let throttle = Throttle {
            device: self.ctx.device_limits.and_then(|l| l.get(device.name())),
            copy: self.ctx.copy_limit.clone(),
            priority: self.list.priority,
            abort: self.ctx.abort.clone(),
        };
        let mut endpoint = Endpoint {
            device,
            cscd,
            block_length: 0,
            blocks: 0,
            backend: None,
            throttle,
        };
        // The device must be of the type the CSCD says (0D/03), asked without changing its
        // state: standard INQUIRY.
        let mut inquiry = [0u8; 36];
        io::command(
            &endpoint,
            Side::Source,
            &[0x12, 0, 0, 0, 36, 0],
            DataDirection::FromDevice(&mut inquiry),
        )
        .map_err(|f| Failure {
            device: None,
            asc: Asc::COPY_TARGET_DEVICE_NOT_REACHABLE,
            ..f
        })?;
        let class = PeripheralDeviceType(inquiry[0] & 0x1f).class();
        let wanted = descriptor.map(|c| c.parameters.class());
        // PERIPHERAL QUALIFIER other than 000b: no LU there, so it cannot be reached
        // (5.17.7.4: INQUIRY "shows an unsupported LU" is 0D/02, not a wrong type).
        if inquiry[0] >> 5 != 0 {
            return Err(unreachable(cscd));
        }
        if class.is_none() || (wanted.is_some() && class != wanted) {
            return Err(Failure {
                asc: Asc::INCORRECT_COPY_TARGET_DEVICE_TYPE,
                device: None,
                cscd,
                field: None,
            });
        }
        if class == Some(DeviceClass::Block) {
            endpoint.backend = endpoint.device.block_backend();
            let (block_length, blocks) = match &endpoint.backend {
                Some(b) => (b.block_size, b.blocks),
                None => read_capacity(&endpoint)?,
            };
            if let Some(DeviceParameters::Block {
                block_length: want, ..
            }) = descriptor.map(|c| c.parameters)
            {
                if want != 0 && want != block_length {
                    return Err(Failure {
                        asc: Asc::INCORRECT_COPY_TARGET_DEVICE_TYPE,
                        device: None,
                        cscd,
                        field: None,
                    });
                }
            }
            endpoint.block_length = block_length;
            endpoint.blocks = blocks;
        }
        self.endpoints.insert(id, endpoint.clone());
        Ok(Some(endpoint))
    }

    /// COPY ABORTED for segment `index` (fixed format; a transport converts as needed).
    fn sense(&self, index: usize, failure: Failure, moved: Moved) -> Sense {
        let segment = u16::try_from(index).unwrap_or(u16::MAX);
        if failure.asc == Asc::NO_ADDITIONAL_SENSE
            && failure.device.is_none()
            && failure.field.is_none()
            && failure.cscd.is_none()
        {
            // Aborted by task management: the copy ends as COPY ABORTED with nothing more.
            return Sense::copy_aborted(Asc::NO_ADDITIONAL_SENSE, segment);
        }
        let mut sense = Sense::copy_aborted(failure.asc, segment);
        if let Some(i) = failure.cscd {
            let pointer = u16::try_from(self.list.cscd_offset(i)).unwrap_or(u16::MAX);
            sense.sense_key_specific = Some(SenseKeySpecific::Segment {
                in_segment: false,
                bit: None,
                pointer,
            });
        } else if let Some(field) = failure.field {
            sense.sense_key_specific = Some(SenseKeySpecific::Segment {
                in_segment: true,
                bit: None,
                pointer: field,
            });
        }
        // INFORMATION: the residue, valid only if the segment wrote something (Part B 4);
        // in bytes for a variable-mode tape or a processor device, else destination blocks.
        if moved.written > 0 {
            let body = self.list.segments.get(index).map(|s| &s.body);
            let unit = body
                .and_then(Segment::destination)
                .and_then(|id| match self.list.endpoint(id, 0) {
                    Ok(ListEndpoint::Cscd(_, c)) => Some(match c.parameters {
                        DeviceParameters::Block { block_length, .. } => self
                            .endpoints
                            .get(&id)
                            .map_or(block_length, |e| e.block_length),
                        DeviceParameters::Stream {
                            fixed: true,
                            block_length,
                            ..
                        } => block_length,
                        _ => 1,
                    }),
                    _ => None,
                })
                .unwrap_or(1)
                .max(1);
            let residue = moved.expected.saturating_sub(moved.written) / u64::from(unit);
            sense.information = Some(residue.min(u64::from(u32::MAX)));
        }
        if let Some((side, status, bytes)) = failure.device {
            sense.forwarded.push(ForwardedSense {
                source: match side {
                    Side::Source => ForwardedSource::CopySource,
                    Side::Destination => ForwardedSource::CopyDestination,
                },
                status,
                sense: bytes,
            });
        }
        sense
    }
}

/// The stream unit of the CSCD `id` names, with the segment's transfer length.
fn stream_unit(list: &ParameterList, id: Option<CscdId>, transfer_length: u32) -> StreamUnit {
    match id.and_then(|id| list.endpoint(id, 0).ok()) {
        Some(ListEndpoint::Cscd(_, c)) => match c.parameters {
            DeviceParameters::Stream {
                fixed,
                block_length,
                ..
            } => StreamUnit {
                fixed,
                block_length,
                transfer_length,
            },
            _ => StreamUnit {
                fixed: false,
                block_length: 0,
                transfer_length,
            },
        },
        _ => StreamUnit {
            fixed: false,
            block_length: 0,
            transfer_length,
        },
    }
}

fn need(endpoint: &Option<Option<Endpoint>>) -> Result<&Endpoint, (Failure, Moved)> {
    endpoint.as_ref().and_then(Option::as_ref).ok_or_else(|| {
        (
            Failure::new(Asc::COPY_TARGET_DEVICE_NOT_REACHABLE),
            Moved::default(),
        )
    })
}

/// An LBA range beyond the device: COPY ABORTED with the segment pointer at the LBA field
/// (ASC 00/00, as SCST does and libiscsi's ValidSegDescr accepts), before any I/O.
fn range(endpoint: &Endpoint, lba: u64, blocks: u64, field: u16) -> Result<(), (Failure, Moved)> {
    if lba
        .checked_add(blocks)
        .is_some_and(|end| end <= endpoint.blocks)
    {
        Ok(())
    } else {
        Err((
            Failure::at_field(Asc::NO_ADDITIONAL_SENSE, field),
            Moved::default(),
        ))
    }
}

fn cscd_index(list: &ParameterList, pointer: u16) -> Option<usize> {
    (0..list.cscds.len()).find(|&i| list.cscd_offset(i) == usize::from(pointer))
}

fn read_capacity(endpoint: &Endpoint) -> Result<(u32, u64), Failure> {
    let mut data = [0u8; 32];
    let mut cdb = [0u8; 16];
    cdb[0] = 0x9e;
    cdb[1] = 0x10;
    cdb[13] = 32;
    io::command(
        endpoint,
        Side::Source,
        &cdb,
        DataDirection::FromDevice(&mut data),
    )?;
    let last = u64::from_be_bytes(data[..8].try_into().unwrap_or_default());
    let block_length = u32::from_be_bytes(data[8..12].try_into().unwrap_or_default());
    Ok((block_length, last + 1))
}

/// The most bytes a byte-range segment (08h, 09h, 0Ah) moves through memory at once: its
/// buffers are this size (plus a block at each end), whatever its byte count says.
const RANGE_CHUNK: u64 = 1 << 20;

/// Reads `bytes` bytes (at most [`RANGE_CHUNK`]) starting `offset` bytes past the start of
/// block `lba`. The caller has checked the whole range against the device.
fn read_range(endpoint: &Endpoint, lba: u64, offset: u64, bytes: u64) -> Result<Vec<u8>, Failure> {
    let bl = u64::from(endpoint.block_length.max(1));
    let first = lba + offset / bl;
    let start = offset % bl;
    let blocks = (start + bytes).div_ceil(bl);
    // Sized by RANGE_CHUNK and one block length (at most 16 MiB) on each side.
    let mut buf = vec![0u8; (blocks * bl) as usize];
    io::read_blocks(endpoint, Side::Source, first, &mut buf)?;
    Ok(buf[start as usize..(start + bytes) as usize].to_vec())
}

/// Writes `data` (at most [`RANGE_CHUNK`] bytes) starting `offset` bytes past the start of
/// block `lba`, leaving the bytes around it in the first and last blocks unchanged
/// (read-modify-write). The caller has checked the whole range against the device.
fn write_range(endpoint: &Endpoint, lba: u64, offset: u64, data: &[u8]) -> Result<(), Failure> {
    let bl = u64::from(endpoint.block_length.max(1));
    let first = lba + offset / bl;
    let start = offset % bl;
    let blocks = (start + data.len() as u64).div_ceil(bl);
    let mut buf = vec![0u8; (blocks * bl) as usize];
    if start != 0 || !(start + data.len() as u64).is_multiple_of(bl) {
        io::read_blocks(endpoint, Side::Destination, first, &mut buf)?;
    }
    buf[start as usize..start as usize + data.len()].copy_from_slice(data);
    io::write_blocks(endpoint, first, &buf)
}

/// 13h: copies records and filemarks until `count` consecutive filemarks (0: until end of
/// data). Records are read in variable mode with the largest transfer the drive allows.
fn tape_image_copy(
    s: &Endpoint,
    d: &Endpoint,
    count: u32,
    abort: &dyn Fn() -> bool,
) -> Result<Moved, Failure> {
    let mut limits = [0u8; 6];
    io::command(
        s,
        Side::Source,
        &[0x05, 0, 0, 0, 0, 0],
        DataDirection::FromDevice(&mut limits),
    )?;
    let max =
        (u32::from_be_bytes([0, limits[1], limits[2], limits[3]]) as usize).clamp(1, 16 << 20);
    let mut buf = vec![0u8; max];
    let mut moved = Moved::default();
    let mut filemarks = 0u32;
    loop {
        if abort() {
            return Err(Failure::new(Asc::NO_ADDITIONAL_SENSE));
        }
        let [_, a, b, c] = (max as u32).to_be_bytes();
        let cdb = [0x08, 0, a, b, c, 0];
        super::reservation::check_command(s, Side::Source, &cdb)?;
        match s.device.execute(&cdb, DataDirection::FromDevice(&mut buf)) {
            Ok(done) if done.is_good() => {
                let len = max - done.residual.min(max);
                // Counted once read: its length is known only now.
                s.throttle.take(Side::Source, len as u64)?;
                write_record(d, &buf[..len])?;
                moved.written += len as u64;
                filemarks = 0;
            }
            Ok(done) => {
                let sense = done.decoded_sense();
                match sense {
                    Some(ref x) if x.filemark => {
                        io::command(
                            d,
                            Side::Destination,
                            &[0x10, 0, 0, 0, 1, 0],
                            DataDirection::None,
                        )?;
                        filemarks += 1;
                        if count != 0 && filemarks >= count {
                            return Ok(moved);
                        }
                    }
                    Some(ref x) if x.ili && x.information.is_some() => {
                        // A shorter record: INFORMATION = requested − actual.
                        let residue = x.information.unwrap_or(0) as u32 as i32;
                        let len = (max as i64 - i64::from(residue)).clamp(0, max as i64) as usize;
                        s.throttle.take(Side::Source, len as u64)?;
                        write_record(d, &buf[..len])?;
                        moved.written += len as u64;
                        filemarks = 0;
                    }
                    Some(ref x) if x.key == crate::scsi::SenseKey::BLANK_CHECK => return Ok(moved),
                    _ => {
                        return Err(Failure {
                            asc: Asc::THIRD_PARTY_DEVICE_FAILURE,
                            device: Some((Side::Source, done.status, done.sense)),
                            cscd: s.cscd,
                            field: None,
                        })
                    }
                }
            }
            Err(_) => return Err(Failure::of(Asc::COPY_TARGET_DEVICE_NOT_REACHABLE, s)),
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

/// PERSISTENT RESERVE OUT (10 bytes) with service action `sa` and a parameter list.
fn pr_out(sa: u8, parameter_length: usize) -> [u8; 10] {
    let [_, _, hi, lo] = (parameter_length as u32).to_be_bytes();
    [0x5f, sa, 0, 0, 0, 0, 0, hi, lo, 0]
}
