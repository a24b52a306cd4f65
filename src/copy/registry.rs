//! Every copy the copy manager runs, in one place an admin can look at: the running ones and
//! the last [`KEEP_FINISHED`] finished, with who asked, what it names, how far it got, how
//! fast, and how it ended. RECEIVE COPY RESULTS keeps SPC's per-nexus scoping; this is the
//! operator's view (the admin socket, `xcopy status`), across every nexus.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::run::Progress;
use crate::command::{Abort, Nexus};
use crate::scsi::dump::sense_summary;
use crate::scsi::Sense;

/// Finished copies kept for `xcopy status` after they end.
pub const KEEP_FINISHED: usize = 64;

/// What a copy was asked to do, known when it starts.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Request {
    pub initiator: String,
    /// The I_T nexus's session (iSCSI ISID + TSIH), in hex.
    pub session: String,
    pub list_id: u8,
    /// The device the EXTENDED COPY was sent to (the receiving LUN), if any.
    pub receiving: Option<String>,
    /// How each CSCD names its device (designators, addresses), in list order.
    pub cscds: Vec<String>,
    pub segments: usize,
    /// Bytes the list moves, as its descriptors say (0 when unknown).
    pub total_bytes: u64,
    /// The parameter list's PRIORITY (0 highest): the order copies waiting on the same
    /// device limit are served in.
    pub priority: u8,
    /// The copy's own limit, bytes per second read from its sources (None: unlimited).
    pub limit: Option<u64>,
}

/// One copy as `xcopy status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    pub id: u64,
    #[serde(flatten)]
    pub request: Request,
    /// "running", "good" or "check_condition".
    pub state: &'static str,
    /// Seconds since the epoch when it started.
    pub started: u64,
    pub seconds: f64,
    pub segments_processed: u64,
    pub bytes: u64,
    /// Bytes per second so far.
    pub rate: f64,
    /// Seconds left at the rate so far (running copies with a known total).
    pub eta: Option<f64>,
    /// The COPY ABORTED (or refusal) sense: "KEY/ASC/ASCQ text".
    pub sense: Option<String>,
    /// The failing device's own sense, forwarded in the COPY ABORTED sense.
    pub device_sense: Option<String>,
    pub aborted: bool,
}

struct Entry {
    id: u64,
    request: Request,
    started: SystemTime,
    clock: Instant,
    progress: Arc<Progress>,
    abort: Abort,
    finished: Option<(Duration, Option<Sense>)>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    running: Vec<Entry>,
    finished: VecDeque<Entry>,
}

/// The registry of copies.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

impl Registry {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy starts; returns its id.
    pub fn start(&self, request: Request, progress: Arc<Progress>, abort: Abort) -> u64 {
        let mut inner = self.inner();
        inner.next += 1;
        let id = inner.next;
        inner.running.push(Entry {
            id,
            request,
            started: SystemTime::now(),
            clock: Instant::now(),
            progress,
            abort,
            finished: None,
        });
        id
    }

    /// Copy `id` ended, GOOD (`None`) or with `sense`.
    pub fn finish(&self, id: u64, sense: Option<Sense>) {
        let mut inner = self.inner();
        let Some(at) = inner.running.iter().position(|e| e.id == id) else {
            return;
        };
        let mut entry = inner.running.swap_remove(at);
        entry.finished = Some((entry.clock.elapsed(), sense));
        inner.finished.push_back(entry);
        while inner.finished.len() > KEEP_FINISHED {
            inner.finished.pop_front();
        }
    }

    /// Asks copy `id` to stop (it ends with COPY ABORTED at its next check); false if it is
    /// not running.
    pub fn abort(&self, id: u64) -> bool {
        let inner = self.inner();
        match inner.running.iter().find(|e| e.id == id) {
            Some(e) => {
                e.abort.abort();
                true
            }
            None => false,
        }
    }

    /// Copies running now.
    pub fn running(&self) -> usize {
        self.inner().running.len()
    }

    /// Every copy known, running first (oldest first), then the finished (newest first).
    pub fn list(&self) -> Vec<Snapshot> {
        let inner = self.inner();
        let mut running: Vec<&Entry> = inner.running.iter().collect();
        running.sort_by_key(|e| e.id);
        running
            .into_iter()
            .chain(inner.finished.iter().rev())
            .map(snapshot)
            .collect()
    }

    /// One copy by id.
    pub fn get(&self, id: u64) -> Option<Snapshot> {
        let inner = self.inner();
        inner
            .running
            .iter()
            .chain(inner.finished.iter())
            .find(|e| e.id == id)
            .map(snapshot)
    }
}

fn snapshot(e: &Entry) -> Snapshot {
    let bytes = e.progress.bytes.load(Ordering::Relaxed);
    let segments_processed = e.progress.segments_processed.load(Ordering::Relaxed);
    let elapsed = e
        .finished
        .as_ref()
        .map_or_else(|| e.clock.elapsed(), |f| f.0);
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        bytes as f64 / seconds
    } else {
        0.0
    };
    let (state, sense) = match &e.finished {
        None => ("running", None),
        Some((_, None)) => ("good", None),
        Some((_, Some(s))) => ("check_condition", Some(s)),
    };
    let eta = (state == "running" && rate > 0.0 && e.request.total_bytes > bytes)
        .then(|| (e.request.total_bytes - bytes) as f64 / rate);
    Snapshot {
        id: e.id,
        request: e.request.clone(),
        state,
        started: e
            .started
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        seconds,
        segments_processed,
        bytes,
        rate,
        eta,
        sense: sense.map(sense_summary),
        device_sense: sense.and_then(forwarded_summary),
        aborted: e.abort.is_aborted(),
    }
}

/// The first sense forwarded in a COPY ABORTED sense (the failing device's own), summarized.
fn forwarded_summary(sense: &Sense) -> Option<String> {
    sense
        .forwarded
        .iter()
        .find_map(|f| Sense::decode(&f.sense).ok())
        .map(|s| sense_summary(&s))
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("running", &self.running())
            .finish_non_exhaustive()
    }
}

impl Nexus {
    /// The session part of the nexus as the registry shows it.
    pub fn session_hex(&self) -> String {
        format!("{:016x}", self.session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::{Asc, SenseKey};

    #[test]
    fn a_session_shows_as_16_hex_digits() {
        let nexus = |session| Nexus {
            initiator: "iqn.a".into(),
            session,
        };
        assert_eq!(
            nexus(0x0002_3d00_0001_0005).session_hex(),
            "00023d0000010005"
        );
        assert_eq!(nexus(u64::MAX).session_hex(), "ffffffffffffffff");
    }

    #[test]
    fn copies_are_listed_running_first_and_kept_when_done() {
        let r = Registry::default();
        let progress = Arc::new(Progress::default());
        let a = r.start(
            Request {
                initiator: "iqn.a".into(),
                total_bytes: 1000,
                ..Request::default()
            },
            progress.clone(),
            Abort::new(),
        );
        let abort = Abort::new();
        let b = r.start(
            Request::default(),
            Arc::new(Progress::default()),
            abort.clone(),
        );
        assert_eq!(r.running(), 2);
        assert_eq!(r.get(a).unwrap().eta, None, "no rate yet, no time left");
        assert_eq!(format!("{r:?}"), "Registry { running: 2, .. }");
        progress.bytes.store(400, Ordering::Relaxed);
        let list = r.list();
        assert_eq!((list[0].id, list[1].id), (a, b));
        assert_eq!((list[0].state, list[0].bytes), ("running", 400));
        // The rate so far, and the time left at it for the 600 bytes to go.
        let s = &list[0];
        assert!(s.seconds > 0.0);
        assert!((s.rate * s.seconds - 400.0).abs() < 1e-6, "{s:?}");
        assert!((s.eta.unwrap() * s.rate - 600.0).abs() < 1e-6, "{s:?}");
        progress.bytes.store(1000, Ordering::Relaxed);
        assert_eq!(r.get(a).unwrap().eta, None, "nothing left to go");
        progress.bytes.store(1001, Ordering::Relaxed);
        assert_eq!(r.get(a).unwrap().eta, None, "past its total");
        assert!(r.abort(b));
        assert!(abort.is_aborted());
        r.finish(
            b,
            Some(Sense::new(SenseKey::COPY_ABORTED, Asc::NO_ADDITIONAL_SENSE)),
        );
        assert_eq!(r.running(), 1);
        r.finish(a, None);
        assert_eq!(r.running(), 0);
        assert!(!r.abort(a), "a finished copy cannot be aborted");
        let list = r.list();
        assert_eq!((list[0].id, list[0].state), (a, "good"));
        assert_eq!((list[1].id, list[1].state), (b, "check_condition"));
        assert!(list[1].sense.as_deref().unwrap().starts_with("0a/00/00"));
        assert!(list[1].aborted);
        assert_eq!(r.get(a).unwrap().eta, None);
        for _ in 0..KEEP_FINISHED + 5 {
            let id = r.start(
                Request::default(),
                Arc::new(Progress::default()),
                Abort::new(),
            );
            r.finish(id, None);
        }
        assert_eq!(r.list().len(), KEEP_FINISHED);
        assert!(r.get(a).is_none(), "the oldest finished went first");
    }
}
