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
use crate::scsi::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
use crate::scsi::target_descriptor::{CscdDescriptor, DeviceParameters};
use crate::scsi::{
    Asc, ForwardedSense, ForwardedSource, Limits, ParameterList, PeripheralDeviceType, Sense,
    SenseKeySpecific,
};

mod byte_ranges;
mod copies;
mod operations;

use super::engine;
use super::io::{self, Endpoint, Failure, Side};
use super::limit::{DeviceLimits, Limiter, Throttle};
use super::op::Op;
use super::plan::{self, Carried, Planned};
pub use super::segment::Tap;
use super::segment::{self, Held, Leftovers, Moved, Residue};
use crate::command::{Abort, Nexus};

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
    /// Sees every byte written to a stream destination, in order (None: nobody looks).
    pub tap: Option<Tap>,
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
    /// The rings and buffer pools copies read through (one lent to this list).
    pub engines: &'a engine::Engines,
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
        engine: ctx.engines.lease(),
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
    if let Some((index, endpoint, planned)) = runner.deferred_pr.take() {
        if let Err(f) = io::carry_out(&endpoint, &planned) {
            if outcome.sense.is_none() {
                outcome.sense = Some(runner.sense(index, f, Moved::default()));
            }
        }
    }
    // Nothing read early may outlive the list: the disk may change before the next one.
    runner.engine.forget_prefetch();
    // A tape written to ends exactly at end of data when the list is done, and a cartridge
    // in a store has what the list wrote before the list is acknowledged: if it cannot, the
    // list ends COPY ABORTED at its last segment with the device's sense forwarded.
    for endpoint in runner.endpoints.values().map(|r| &r.endpoint) {
        if let Err(c) = endpoint.device.settle() {
            if outcome.sense.is_none() {
                let failure = Failure {
                    device: Some((Side::Destination, c.status, c.sense)),
                    ..Failure::of(Asc::THIRD_PARTY_DEVICE_FAILURE, endpoint)
                };
                let last = list.segments.len().saturating_sub(1);
                outcome.sense = Some(runner.sense(last, failure, Moved::default()));
            }
        }
    }
    outcome.held = runner.held;
    outcome
}

/// Where segment `index + 1` reads, if it is a block-to-stream segment whose source is a
/// file-backed disk already resolved and not the device segment `index` writes
/// (`destination`): reading it early could then return data this segment is changing.
fn next_read(
    list: &ParameterList,
    endpoints: &HashMap<CscdId, Resolved>,
    index: usize,
    destination: &Endpoint,
) -> Option<engine::NextRead> {
    let next = list.segments.get(index + 1)?;
    let Segment::BlockToStream { blocks, lba, .. } = next.body else {
        return None;
    };
    let source = &endpoints.get(&next.body.source()?)?.endpoint;
    let backend = source.backend.as_ref()?;
    let same = |e: &Endpoint| {
        Arc::ptr_eq(&e.device, &source.device)
            || e.backend
                .as_ref()
                .is_some_and(|b| Arc::ptr_eq(&b.file, &backend.file))
    };
    let bytes = u64::from(blocks) * u64::from(source.block_length);
    // A segment read on its own thread (short, or in memory) would never take them.
    if same(destination)
        || backend.block_size != source.block_length
        || segment::in_line(source, bytes)
    {
        return None;
    }
    Some(engine::NextRead {
        file: Arc::clone(&backend.file),
        offset: backend.offset + lba * u64::from(backend.block_size),
        bytes,
        in_unit: source.block_length as usize,
    })
}

/// A CSCD resolved once for the list: its device, and what the planners know of it.
#[derive(Clone)]
struct Resolved {
    endpoint: Endpoint,
    cscd: plan::Cscd,
}

struct Runner<'a> {
    list: &'a ParameterList,
    ctx: &'a Context<'a>,
    endpoints: HashMap<CscdId, Resolved>,
    left: Leftovers,
    held: Held,
    /// 15h's REGISTER AND MOVE, sent after the list: the segment, its destination.
    deferred_pr: Option<(usize, Endpoint, Planned)>,
    /// The ring this list reads its file-backed disks through (one for the whole list).
    engine: engine::Lease<'a>,
}

/// A segment about to run: its descriptor, its CSCDs resolved (None: the type has no such
/// side; Some(None): a null LU 06h may read nothing from) and the PAD/CAT rules of its end.
struct Step<'s> {
    index: usize,
    descriptor: &'s SegmentDescriptor,
    source: Option<Option<Resolved>>,
    destination: Option<Option<Resolved>>,
    residue: Residue,
}

impl<'a> Runner<'a> {
    fn segment(&mut self, index: usize) -> Result<(), (Failure, Moved)> {
        let Some(step) = self.prepare(index)? else {
            return Ok(());
        };
        let cscd = |side: &Option<Option<Resolved>>| side.as_ref()?.as_ref().map(|r| r.cscd);
        let carried = Carried {
            source: self.left.source.len() as u64,
            destination: self.left.destination.len() as u64,
        };
        let planned = plan::transfer(
            &step.descriptor.body,
            cscd(&step.source).as_ref(),
            cscd(&step.destination).as_ref(),
            carried,
            step.residue,
        );
        let moved = match planned {
            Err(f) => return Err((f, Moved::default())),
            Ok(Some(transfer)) => self.transfer(&step, &transfer, carried)?,
            Ok(None) => self.operation(&step)?,
        };
        self.ctx
            .progress
            .bytes
            .fetch_add(moved.written, Ordering::Relaxed);
        Ok(())
    }

    /// Segment `index` made ready to run: the checks SPC-3 makes as it is reached, its
    /// CSCDs resolved, and the PAD/CAT rules of its end. None: no such segment.
    fn prepare(&mut self, index: usize) -> Result<Option<Step<'a>>, (Failure, Moved)> {
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
        let list = self.list;
        let Some(descriptor) = list.segments.get(index) else {
            return Ok(None);
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
        Ok(Some(Step {
            index,
            descriptor,
            source,
            destination,
            residue,
        }))
    }

    /// Resolves (once per list) the device CSCD `id` names. Null LUs never receive
    /// commands: a segment needing one is ended as for an unreachable CSCD, except 06h with
    /// nothing to read (returns Ok(None) there via the caller).
    fn endpoint(
        &mut self,
        id: CscdId,
        field: u16,
        body: &Segment,
    ) -> Result<Option<Resolved>, Failure> {
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
            &Op::Inquiry {
                allocation_length: 36,
            }
            .cdb(),
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
        let resolved = Resolved {
            cscd: planned_cscd(&endpoint, descriptor.map(|c| c.parameters)),
            endpoint,
        };
        self.endpoints.insert(id, resolved.clone());
        Ok(Some(resolved))
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
            // Something was written, so the destination was resolved.
            let unit = body
                .and_then(Segment::destination)
                .and_then(|id| self.endpoints.get(&id))
                .map_or(1, |r| r.cscd.residue_unit)
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

/// What the planners know of a CSCD resolved to `endpoint` from a descriptor with
/// `parameters` (None: the copy manager itself, FFFFh).
fn planned_cscd(endpoint: &Endpoint, parameters: Option<DeviceParameters>) -> plan::Cscd {
    let (fixed, stream_block_length) = match parameters {
        Some(DeviceParameters::Stream {
            fixed,
            block_length,
            ..
        }) => (fixed, block_length),
        _ => (false, 0),
    };
    let residue_unit = match parameters {
        Some(DeviceParameters::Block { .. }) => endpoint.block_length,
        Some(DeviceParameters::Stream {
            fixed: true,
            block_length,
            ..
        }) => block_length,
        _ => 1,
    };
    plan::Cscd {
        block_length: endpoint.block_length,
        blocks: endpoint.blocks,
        fixed,
        stream_block_length,
        residue_unit: residue_unit.max(1),
    }
}

fn need(side: &Option<Option<Resolved>>) -> Result<&Endpoint, (Failure, Moved)> {
    side.as_ref()
        .and_then(Option::as_ref)
        .map(|r| &r.endpoint)
        .ok_or_else(|| {
            (
                Failure::new(Asc::COPY_TARGET_DEVICE_NOT_REACHABLE),
                Moved::default(),
            )
        })
}

fn cscd_index(list: &ParameterList, pointer: u16) -> Option<usize> {
    (0..list.cscds.len()).find(|&i| list.cscd_offset(i) == usize::from(pointer))
}

/// (block length, blocks) from READ CAPACITY(16); a last LBA of 2^64 - 1 (no count fits)
/// reads as an empty disk.
fn read_capacity(endpoint: &Endpoint) -> Result<(u32, u64), Failure> {
    let mut data = [0u8; 32];
    io::command(
        endpoint,
        Side::Source,
        &Op::ReadCapacity16.cdb(),
        DataDirection::FromDevice(&mut data),
    )?;
    let (blocks, block_length) =
        crate::scsi::sbc::decode_read_capacity_16_data(&data).unwrap_or((0, 0));
    Ok((block_length, blocks))
}
