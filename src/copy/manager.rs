//! The copy manager: EXTENDED COPY (LID1) and RECEIVE COPY RESULTS for every I_T nexus.
//!
//! - LIST ID USAGE 00b (hold) and 10b (discard) lists are tracked per (nexus, list ID); a
//!   list ID still running on the same nexus is refused with 05/00/16 OPERATION IN PROGRESS;
//!   11b lists are not tracked. COPY STATUS is live while a list runs.
//! - The number of lists running at once is bounded by the advertised TOTAL CONCURRENT
//!   COPIES (and MAXIMUM CONCURRENT COPIES for tracked lists): one more is refused with
//!   ILLEGAL REQUEST, INSUFFICIENT RESOURCES (55/03).
//! - FAILED SEGMENT DETAILS and held data (RECEIVE DATA) are discarded once delivered in
//!   full, on a new list with the same ID, or when the nexus goes away (SPC-3 6.17).
//! - A nexus keeps the held data of its [`HELD_LISTS_PER_NEXUS`] most recently finished
//!   lists; an older list's is discarded and its COPY STATUS says so with HDD. Records are
//!   keyed by (nexus, list ID), so a nexus has at most 256; held data is what can be large
//!   (up to HELD DATA LIMIT a list), and this bounds it per nexus.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::device::ScsiDevice;
use crate::scsi::cdb::ExtendedCopyCdb;
use crate::scsi::copy_results::{
    CopyManagerStatus, CopyStatus, FailedSegmentDetails, OperatingParameters,
    ReceiveCopyResultsCdb, ReceiveData, ServiceAction,
};
use crate::scsi::parameter_list::Supported;
use crate::scsi::{Asc, Limits, ListIdUsage, ParameterList, Sense, Status};

use super::engine::Engines;
use super::limit::{DeviceLimits, Limiter};
use super::registry::{Registry, Request};
use super::run::{self, Context, Progress, Resolve};
use super::CopyService;
use crate::command::{Abort, CommandResult, Nexus};
use crate::metrics::Metrics;
use crate::scsi::dump::sense_summary;

/// Finished lists per nexus whose held data is kept; the oldest one's goes first.
const HELD_LISTS_PER_NEXUS: usize = 16;

/// What RECEIVE COPY RESULTS knows of one list.
struct Record {
    usage: ListIdUsage,
    progress: Arc<Progress>,
    finished: Option<Finished>,
    /// Order of finishing: the oldest held data is discarded first.
    serial: u64,
}

struct Finished {
    /// Whether the list ended in error (COPY STATUS: completed with errors), for as long
    /// as the record lives.
    failed: bool,
    /// The sense FAILED SEGMENT DETAILS returns, until it has been delivered whole.
    sense: Option<Sense>,
    held: Vec<u8>,
    held_discarded: bool,
}

#[derive(Default)]
struct State {
    records: HashMap<(Nexus, u8), Record>,
    running: usize,
    running_tracked: usize,
    serial: u64,
}

/// The copy manager behind every LUN.
pub struct CopyManager {
    resolver: Arc<dyn Resolve>,
    limits: Limits,
    state: Mutex<State>,
    registry: Arc<Registry>,
    metrics: Option<Arc<Metrics>>,
    device_limits: Option<Arc<DeviceLimits>>,
    /// Bytes per second each copy may read from its sources (None: unlimited).
    copy_limit: Option<u64>,
    /// The rings and buffer pools every copy of this manager reads through.
    engines: Engines,
}

impl CopyManager {
    pub fn new(resolver: Arc<dyn Resolve>, limits: Limits) -> Self {
        Self {
            resolver,
            limits,
            state: Mutex::new(State::default()),
            registry: Arc::new(Registry::default()),
            metrics: None,
            device_limits: None,
            copy_limit: None,
            engines: Engines::default(),
        }
    }

    /// Runs its copies through `engines` (pools of the configured size).
    pub fn with_engines(mut self, engines: Engines) -> Self {
        self.engines = engines;
        self
    }

    /// The engines copies borrow (the daemon resizes their pools on reload).
    pub fn engines(&self) -> &Engines {
        &self.engines
    }

    /// Holds every copy's I/O to a device to that device's limit (shared with the other
    /// copy managers of the daemon).
    pub fn with_device_limits(mut self, limits: Arc<DeviceLimits>) -> Self {
        self.device_limits = Some(limits);
        self
    }

    /// Holds each copy to `rate` bytes per second read from its sources.
    pub fn with_copy_limit(mut self, rate: Option<u64>) -> Self {
        self.copy_limit = rate;
        self
    }

    /// Counts copies, segments and bytes in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Every copy this manager runs and ran lately (the admin socket's view).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Lists running now (a shutting-down daemon waits for this to reach 0).
    pub fn running(&self) -> usize {
        self.state().running
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs a decoded list for `nexus` (the CLI's entry point; the daemon goes through
    /// [`CopyService::extended_copy`]). Returns None for GOOD, else the COPY ABORTED sense.
    pub fn run_list(
        &self,
        nexus: &Nexus,
        list: &ParameterList,
        receiving_lun: Option<Arc<dyn ScsiDevice>>,
        abort: &Abort,
        progress: Arc<Progress>,
    ) -> Result<(), Sense> {
        let tracked = list.list_id_usage != ListIdUsage::NoListId;
        let key = (nexus.clone(), list.list_identifier);
        self.admit(nexus, list, &key, tracked, &progress)?;
        let request = Request {
            initiator: nexus.initiator.clone(),
            session: nexus.session_hex(),
            list_id: list.list_identifier,
            receiving: receiving_lun.as_ref().map(|d| d.name().to_string()),
            cscds: list
                .cscds
                .iter()
                .map(|c| c.identifier.to_string())
                .collect(),
            segments: list.segments.len(),
            total_bytes: list.bytes_to_move(),
            priority: list.priority,
            limit: self.copy_limit,
        };
        tracing::info!(
            initiator = %request.initiator,
            session = %request.session,
            list_id = request.list_id,
            receiving = request.receiving.as_deref().unwrap_or("-"),
            cscds = ?request.cscds,
            segments = request.segments,
            bytes = request.total_bytes,
            "EXTENDED COPY started"
        );
        // The operator's abort (xcopy abort) stops the copy, which the initiator then
        // hears about as COPY ABORTED; the task's own abort stops it too.
        let abort = abort.child();
        let id = self
            .registry
            .start(request, progress.clone(), abort.clone());
        let ctx = Context {
            nexus,
            resolver: self.resolver.as_ref(),
            receiving_lun,
            limits: &self.limits,
            progress: &progress,
            abort: &abort,
            device_limits: self.device_limits.as_deref(),
            copy_limit: self
                .copy_limit
                .map(|rate| Arc::new(Limiter::new(&format!("copy {id}"), rate))),
            engines: &self.engines,
        };
        if let Some(m) = &self.metrics {
            m.copies_in_flight.inc();
        }
        let outcome = self.run_guarded(id, list, &ctx);
        self.registry.finish(id, outcome.sense.clone());
        self.log_end(id);
        if let Some(m) = &self.metrics {
            m.copies_in_flight.dec();
            count(m, list, &progress, outcome.sense.as_ref());
        }
        let mut state = self.state();
        state.running -= 1;
        if tracked {
            state.running_tracked -= 1;
            state.serial += 1;
            let serial = state.serial;
            if let Some(record) = state.records.get_mut(&key) {
                let keep_held = record.usage == ListIdUsage::Hold;
                record.finished = Some(Finished {
                    failed: outcome.sense.is_some(),
                    sense: outcome.sense.clone(),
                    held: if keep_held {
                        outcome.held.data
                    } else {
                        Vec::new()
                    },
                    held_discarded: outcome.held.discarded
                        || (!keep_held && list.segments.iter().any(|s| s.body.holds_data())),
                });
                record.serial = serial;
            }
            discard_oldest_held(&mut state, nexus);
        }
        match outcome.sense {
            None => Ok(()),
            Some(sense) => Err(sense),
        }
    }

    /// Runs the list; a panic on the way (a bug, never bad input) ends this copy alone, as
    /// COPY ABORTED 44/00 INTERNAL TARGET FAILURE at the segment it was in, so the initiator
    /// gets its answer and the list's admission and record are released like any other end.
    fn run_guarded(&self, id: u64, list: &ParameterList, ctx: &Context<'_>) -> run::Outcome {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run::run(list, ctx)))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                let segment = ctx.progress.segments_processed.load(Ordering::Relaxed);
                tracing::error!(copy = id, segment, panic = %what, "EXTENDED COPY: internal failure (a bug): the copy is aborted");
                run::Outcome {
                    sense: Some(Sense::copy_aborted(
                        Asc::INTERNAL_TARGET_FAILURE,
                        u16::try_from(segment).unwrap_or(u16::MAX),
                    )),
                    ..run::Outcome::default()
                }
            })
    }

    /// Admits a list for `nexus` under the MAXIMUM and TOTAL CONCURRENT COPIES limits (a
    /// list identifier still running on the nexus: OPERATION IN PROGRESS), counting it as
    /// running and, when `tracked`, recording it under `key` for RECEIVE COPY RESULTS.
    fn admit(
        &self,
        nexus: &Nexus,
        list: &ParameterList,
        key: &(Nexus, u8),
        tracked: bool,
        progress: &Arc<Progress>,
    ) -> Result<(), Sense> {
        let mut state = self.state();
        if tracked {
            if state.records.get(key).is_some_and(|r| r.finished.is_none()) {
                return Err(refused(
                    nexus,
                    list,
                    Asc::OPERATION_IN_PROGRESS,
                    "a list with this identifier is running on this nexus",
                ));
            }
            if state.running_tracked >= usize::from(self.limits.max_concurrent_copies) {
                return Err(refused(
                    nexus,
                    list,
                    Asc::INSUFFICIENT_RESOURCES,
                    "MAXIMUM CONCURRENT COPIES with list identifiers already running",
                ));
            }
        }
        if state.running >= usize::from(self.limits.total_concurrent_copies) {
            return Err(refused(
                nexus,
                list,
                Asc::INSUFFICIENT_RESOURCES,
                "TOTAL CONCURRENT COPIES already running",
            ));
        }
        state.running += 1;
        if tracked {
            state.running_tracked += 1;
            state.records.insert(
                key.clone(),
                Record {
                    usage: list.list_id_usage,
                    progress: progress.clone(),
                    finished: None,
                    serial: 0,
                },
            );
        }
        Ok(())
    }

    /// The end line of copy `id`: who, what, how much, how fast, and how it ended with the
    /// failing device's own sense.
    fn log_end(&self, id: u64) {
        let Some(c) = self.registry.get(id) else {
            return;
        };
        let rate = format!("{:.1} MB/s", c.rate / 1e6);
        let seconds = format!("{:.3}", c.seconds);
        match &c.sense {
            None => tracing::info!(
                copy = id,
                initiator = %c.request.initiator,
                list_id = c.request.list_id,
                receiving = c.request.receiving.as_deref().unwrap_or("-"),
                cscds = ?c.request.cscds,
                segments = c.segments_processed,
                bytes = c.bytes,
                seconds = %seconds,
                rate = %rate,
                "EXTENDED COPY good"
            ),
            Some(sense) => tracing::warn!(
                copy = id,
                initiator = %c.request.initiator,
                list_id = c.request.list_id,
                receiving = c.request.receiving.as_deref().unwrap_or("-"),
                cscds = ?c.request.cscds,
                segments = c.request.segments,
                segments_processed = c.segments_processed,
                bytes = c.bytes,
                seconds = %seconds,
                rate = %rate,
                aborted = c.aborted,
                sense = %sense,
                device_sense = c.device_sense.as_deref().unwrap_or("-"),
                "EXTENDED COPY failed"
            ),
        }
    }

    fn results(&self, nexus: &Nexus, cdb: &ReceiveCopyResultsCdb) -> Result<Vec<u8>, Sense> {
        let mut out = Vec::new();
        if cdb.service_action == ServiceAction::OperatingParameters {
            OperatingParameters::from(&self.limits).encode(&mut out);
            return Ok(out);
        }
        let key = (nexus.clone(), cdb.list_identifier);
        let mut state = self.state();
        let Some(record) = state.records.get_mut(&key) else {
            // An unknown list identifier: INVALID FIELD IN CDB at byte 2.
            return Err(Sense::invalid_field_in_cdb(2, None));
        };
        let full = |len: usize| cdb.allocation_length as usize >= len;
        match cdb.service_action {
            ServiceAction::CopyStatus => {
                let bytes = record
                    .progress
                    .bytes
                    .load(std::sync::atomic::Ordering::Relaxed);
                let (transfer_count_units, transfer_count) =
                    CopyStatus::scaled_transfer_count(bytes);
                let segments = record
                    .progress
                    .segments_processed
                    .load(std::sync::atomic::Ordering::Relaxed);
                let status = match &record.finished {
                    None => CopyManagerStatus::InProgress,
                    Some(f) if !f.failed => CopyManagerStatus::Completed,
                    Some(_) => CopyManagerStatus::CompletedWithErrors,
                };
                CopyStatus {
                    held_data_discarded: record.finished.as_ref().is_some_and(|f| f.held_discarded),
                    status,
                    segments_processed: u16::try_from(segments).unwrap_or(u16::MAX),
                    transfer_count_units,
                    transfer_count,
                }
                .encode(&mut out);
            }
            ServiceAction::ReceiveData => {
                let held = record
                    .finished
                    .as_ref()
                    .map(|f| f.held.clone())
                    .unwrap_or_default();
                ReceiveData { held }.encode(&mut out);
                if full(out.len()) {
                    if let Some(f) = record.finished.as_mut() {
                        f.held.clear();
                    }
                }
            }
            ServiceAction::FailedSegmentDetails => {
                match record.finished.as_ref().and_then(|f| f.sense.as_ref()) {
                    Some(sense) => FailedSegmentDetails {
                        command_status: Status::CHECK_CONDITION.0,
                        sense: sense.encode(),
                    }
                    .encode(&mut out),
                    None => FailedSegmentDetails::encode_none(&mut out),
                }
                // Discarded after full delivery, or on a request with allocation length 0.
                if cdb.allocation_length == 0 || full(out.len()) {
                    if let Some(f) = record.finished.as_mut() {
                        f.sense = None;
                    }
                }
            }
            ServiceAction::OperatingParameters => {}
        }
        Ok(out)
    }
}

/// Keeps the held data of at most [`HELD_LISTS_PER_NEXUS`] finished lists of a nexus:
/// the oldest lists' is discarded, which their COPY STATUS reports with HDD (SPC-4 lets a
/// copy manager short of resources discard held data, if it says so).
fn discard_oldest_held(state: &mut State, nexus: &Nexus) {
    let mut holding: Vec<(u64, u8)> = state
        .records
        .iter()
        .filter(|((n, _), r)| n == nexus && r.finished.as_ref().is_some_and(|f| !f.held.is_empty()))
        .map(|((_, id), r)| (r.serial, *id))
        .collect();
    if holding.len() <= HELD_LISTS_PER_NEXUS {
        return;
    }
    holding.sort_unstable();
    for (_, id) in &holding[..holding.len() - HELD_LISTS_PER_NEXUS] {
        let finished = state
            .records
            .get_mut(&(nexus.clone(), *id))
            .and_then(|r| r.finished.as_mut());
        if let Some(f) = finished {
            f.held = Vec::new();
            f.held_discarded = true;
            tracing::info!(
                initiator = %nexus.initiator,
                session = nexus.session,
                list_id = id,
                "held data discarded: {HELD_LISTS_PER_NEXUS} newer lists of this nexus hold data"
            );
        }
    }
}

impl CopyService for CopyManager {
    fn extended_copy(
        &self,
        nexus: &Nexus,
        receiving_lun: Option<Arc<dyn ScsiDevice>>,
        cdb: &ExtendedCopyCdb,
        parameter_list: &[u8],
        abort: &Abort,
    ) -> CommandResult {
        if cdb.parameter_list_length == 0 {
            return CommandResult::good(Vec::new());
        }
        if parameter_list.len() < cdb.parameter_list_length as usize {
            return CommandResult::check_condition(&Sense::illegal_request(
                Asc::PARAMETER_LIST_LENGTH_ERROR,
            ));
        }
        let bytes = parameter_list
            .get(..cdb.parameter_list_length as usize)
            .unwrap_or(parameter_list);
        let list = match ParameterList::decode(bytes, &self.limits, Supported::default()) {
            Ok(list) => list,
            Err(e) => {
                let sense: Sense = e.into();
                tracing::warn!(
                    initiator = %nexus.initiator,
                    sense = %sense_summary(&sense),
                    field_pointer = ?sense.field_pointer(),
                    "EXTENDED COPY parameter list refused"
                );
                return CommandResult::check_condition(&sense);
            }
        };
        let progress = Arc::new(Progress::default());
        match self.run_list(nexus, &list, receiving_lun, abort, progress) {
            Ok(()) => CommandResult::good(Vec::new()),
            Err(sense) => CommandResult::check_condition(&sense),
        }
    }

    fn receive_copy_results(&self, nexus: &Nexus, cdb: &ReceiveCopyResultsCdb) -> CommandResult {
        match self.results(nexus, cdb) {
            Ok(mut data) => {
                data.truncate(cdb.allocation_length as usize);
                CommandResult::good(data)
            }
            Err(sense) => CommandResult::check_condition(&sense),
        }
    }

    fn nexus_lost(&self, nexus: &Nexus) {
        self.state()
            .records
            .retain(|(n, _), r| n != nexus || r.finished.is_none());
    }
}

/// One finished list in the metrics: its result, the types of the segments it processed,
/// and the bytes they moved by destination (what the descriptors say; the failed segment's
/// part from the progress).
fn count(m: &Metrics, list: &ParameterList, progress: &Progress, sense: Option<&Sense>) {
    use std::sync::atomic::Ordering;
    let (result, sense) = match sense {
        None => ("good", String::new()),
        Some(s) => ("check_condition", sense_summary(s)),
    };
    m.copies
        .get_or_create(&vec![("result", result.into()), ("sense", sense)])
        .inc();
    let done = progress.segments_processed.load(Ordering::Relaxed) as usize;
    let mut counted = 0u64;
    for (i, seg) in list.segments.iter().enumerate().take(done) {
        m.segments
            .get_or_create(&vec![("type", format!("{:02x}h", seg.body.type_code()))])
            .inc();
        let bytes = list.segment_bytes(i);
        counted += bytes;
        if let Some(c) = seg
            .body
            .destination()
            .and_then(|d| list.cscds.get(usize::from(d.0)))
        {
            m.copy_bytes
                .get_or_create(&vec![("device", Metrics::label(&c.identifier.to_string()))])
                .inc_by(bytes);
        }
    }
    // The failed segment wrote some of its bytes.
    let rest = progress
        .bytes
        .load(Ordering::Relaxed)
        .saturating_sub(counted);
    if let Some(c) = list
        .segments
        .get(done)
        .and_then(|s| s.body.destination())
        .and_then(|d| list.cscds.get(usize::from(d.0)))
    {
        if rest > 0 {
            m.copy_bytes
                .get_or_create(&vec![("device", Metrics::label(&c.identifier.to_string()))])
                .inc_by(rest);
        }
    }
}

/// An EXTENDED COPY refused before it runs (admission), logged with its reason.
fn refused(nexus: &Nexus, list: &ParameterList, asc: Asc, why: &str) -> Sense {
    let sense = Sense::illegal_request(asc);
    tracing::warn!(
        initiator = %nexus.initiator,
        list_id = list.list_identifier,
        sense = %sense_summary(&sense),
        reason = why,
        "EXTENDED COPY refused"
    );
    sense
}

impl std::fmt::Debug for CopyManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyManager")
            .field("limits", &self.limits)
            .finish()
    }
}
