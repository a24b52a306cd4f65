//! Bandwidth limits: a token bucket in bytes per second with a bounded burst, shared by
//! every copy that reads from or writes to a device (`limit` on an inventory entry), or
//! owned by one copy (`xcopy … --limit`, `[daemon] copy_limit`: the bytes it reads from its
//! sources).
//!
//! Waiters are served by the parameter list's PRIORITY (SPC-4 6.4.3: lower value, higher
//! priority), ties in arrival order. Priority only orders copies that wait on the same
//! limit; with nothing capped, or a limit nobody waits on, it changes nothing.
//!
//! [`Schedule`] is the decision, sans I/O: time is passed in, so it is tested with a made-up
//! clock. [`Limiter`] wraps it for threads: a waiter sleeps on a condition variable until
//! the bucket holds enough, waking at least every [`ABORT_POLL`] to see its copy's abort.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;

use super::failure::{Failure, Side};
use crate::command::Abort;
use crate::metrics::SecondsFamily;
use crate::scsi::Asc;

/// The smallest burst: one engine chunk, so a single read never goes into debt.
pub const MIN_BURST: u64 = super::CHUNK as u64;

/// A waiter looks at its copy's abort at least this often.
pub const ABORT_POLL: Duration = Duration::from_millis(20);

/// The burst a `rate` gets: 1/4 s of it, at least [`MIN_BURST`]. A copy stalled longer than
/// that (a slow write, a segment's end, a busy CPU) loses the rate it could not use: too
/// short a burst and a capped copy falls below its cap (1/20 s measured 0.90-0.99 of it
/// on a shared virtual disk); too long and it comes back at full speed for that long.
pub fn burst_for(rate: u64) -> u64 {
    (rate / 4).max(MIN_BURST)
}

/// A waiter's place: PRIORITY first (lower is served first), then arrival.
pub type Ticket = (u8, u64);

/// What [`Schedule::poll`] decides for a waiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// The bytes are granted (and taken from the bucket).
    Granted,
    /// The waiter is first, and the bucket holds enough after this long.
    Wait(Duration),
    /// Another waiter is served first.
    NotFirst,
}

/// A token bucket and the queue of its waiters.
#[derive(Debug)]
pub struct Schedule {
    /// Bytes per second.
    rate: u64,
    burst: u64,
    /// Bytes the bucket holds (negative: a request larger than the burst left a debt).
    tokens: f64,
    at: Instant,
    waiters: BTreeSet<Ticket>,
    arrivals: u64,
}

impl Schedule {
    /// A full bucket of `burst` bytes refilled at `rate` bytes per second.
    pub fn new(rate: u64, burst: u64, now: Instant) -> Self {
        let rate = rate.max(1);
        let burst = burst.max(1);
        Self {
            rate,
            burst,
            tokens: burst as f64,
            at: now,
            waiters: BTreeSet::new(),
            arrivals: 0,
        }
    }

    /// Changes the rate (a reload); what the bucket holds stays, up to the new burst.
    pub fn set_rate(&mut self, rate: u64, burst: u64, now: Instant) {
        self.refill(now);
        self.rate = rate.max(1);
        self.burst = burst.max(1);
        self.tokens = self.tokens.min(self.burst as f64);
    }

    /// A request arrives with `priority`; it is served in ticket order.
    pub fn arrive(&mut self, priority: u8) -> Ticket {
        self.arrivals += 1;
        let ticket = (priority, self.arrivals);
        self.waiters.insert(ticket);
        ticket
    }

    /// Whether `ticket` may take `bytes` now. It waits until it is first and the bucket
    /// holds `bytes` (or a full bucket, for more than the burst: the rest becomes a debt
    /// the next requests wait out).
    pub fn poll(&mut self, ticket: Ticket, bytes: u64, now: Instant) -> Poll {
        if self.waiters.first() != Some(&ticket) {
            return Poll::NotFirst;
        }
        self.refill(now);
        let need = bytes.min(self.burst) as f64;
        if self.tokens >= need {
            self.tokens -= bytes as f64;
            self.waiters.remove(&ticket);
            return Poll::Granted;
        }
        let seconds = (need - self.tokens) / self.rate as f64;
        Poll::Wait(Duration::from_secs_f64(seconds).max(Duration::from_micros(1)))
    }

    /// A waiter gives up (its copy was aborted).
    pub fn leave(&mut self, ticket: Ticket) {
        self.waiters.remove(&ticket);
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = self.at.max(now);
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(self.burst as f64);
    }
}

/// A limit threads wait on.
#[derive(Debug)]
pub struct Limiter {
    name: String,
    schedule: Mutex<Schedule>,
    turn: Condvar,
    /// Bytes granted, and nanoseconds spent waiting, since it was made.
    granted: AtomicU64,
    waited_ns: AtomicU64,
    throttled: Option<Counter<f64, AtomicU64>>,
}

impl Limiter {
    /// A limit of `rate` bytes per second (its burst: [`burst_for`]) named `name` in logs.
    pub fn new(name: &str, rate: u64) -> Self {
        Self {
            name: name.to_string(),
            schedule: Mutex::new(Schedule::new(rate, burst_for(rate), Instant::now())),
            turn: Condvar::new(),
            granted: AtomicU64::new(0),
            waited_ns: AtomicU64::new(0),
            throttled: None,
        }
    }

    /// Adds the seconds waiters spend here to `counter` (a metric).
    pub fn with_counter(mut self, counter: Counter<f64, AtomicU64>) -> Self {
        self.throttled = Some(counter);
        self
    }

    fn schedule(&self) -> MutexGuard<'_, Schedule> {
        self.schedule.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes per second.
    pub fn rate(&self) -> u64 {
        self.schedule().rate
    }

    pub fn set_rate(&self, rate: u64) {
        self.schedule()
            .set_rate(rate, burst_for(rate), Instant::now());
        self.turn.notify_all();
    }

    /// Bytes granted so far.
    pub fn granted(&self) -> u64 {
        self.granted.load(Ordering::Relaxed)
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.schedule().waiters.len()
    }

    /// Time waiters spent waiting so far.
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited_ns.load(Ordering::Relaxed))
    }

    /// Waits until `bytes` may move, served by `priority` among the waiters, a burst at a
    /// time (so a large write is paid for before it is made, not left as a debt). `false`:
    /// the copy was aborted while waiting (what was granted before stays taken).
    pub fn take(&self, bytes: u64, priority: u8, abort: &Abort) -> bool {
        let mut left = bytes;
        while left > 0 {
            let piece = left.min(self.schedule().burst);
            if !self.take_one(piece, priority, abort) {
                return false;
            }
            left -= piece;
        }
        true
    }

    fn take_one(&self, bytes: u64, priority: u8, abort: &Abort) -> bool {
        let start = Instant::now();
        let mut schedule = self.schedule();
        let ticket = schedule.arrive(priority);
        let granted = loop {
            if abort.is_aborted() {
                schedule.leave(ticket);
                break false;
            }
            let wait = match schedule.poll(ticket, bytes, Instant::now()) {
                Poll::Granted => break true,
                Poll::Wait(d) => d.min(ABORT_POLL),
                Poll::NotFirst => ABORT_POLL,
            };
            schedule = self
                .turn
                .wait_timeout(schedule, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        };
        drop(schedule);
        // The next waiter is first now (or a newcomer of higher priority must look again).
        self.turn.notify_all();
        let waited = start.elapsed();
        if waited >= Duration::from_millis(1) {
            self.waited_ns.fetch_add(
                u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            if let Some(c) = &self.throttled {
                c.inc_by(waited.as_secs_f64());
            }
        }
        if granted {
            self.granted.fetch_add(bytes, Ordering::Relaxed);
        } else {
            tracing::info!(limit = %self.name, bytes, "aborted while waiting on a bandwidth limit");
        }
        granted
    }
}

/// What one copy's I/O to one CSCD waits on: the device's limit, the copy's own (source
/// reads only), at the copy's PRIORITY, stopping when the copy is aborted.
#[derive(Clone, Debug, Default)]
pub struct Throttle {
    pub device: Option<Arc<Limiter>>,
    pub copy: Option<Arc<Limiter>>,
    pub priority: u8,
    pub abort: Abort,
}

impl Throttle {
    /// No limit.
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether any limit applies.
    pub fn is_limited(&self) -> bool {
        self.device.is_some() || self.copy.is_some()
    }

    /// Waits until `bytes` may be read (`Side::Source`) or written on this CSCD. `Err`: the
    /// copy was aborted while waiting (COPY ABORTED, as for any abort).
    pub fn take(&self, side: Side, bytes: u64) -> Result<(), Failure> {
        let copy = self.copy.as_ref().filter(|_| side == Side::Source);
        for limiter in copy.into_iter().chain(self.device.as_ref()) {
            if !limiter.take(bytes, self.priority, &self.abort) {
                return Err(Failure::new(Asc::NO_ADDITIONAL_SENSE));
            }
        }
        Ok(())
    }
}

/// The per-device limits of an inventory, shared by every copy manager of a daemon so a
/// device's limit holds across all copies at once. A reload changes rates in place.
#[derive(Debug, Default)]
pub struct DeviceLimits {
    limiters: Mutex<HashMap<String, Arc<Limiter>>>,
    throttled: Option<SecondsFamily>,
}

impl DeviceLimits {
    /// Counts the time copies wait on each device's limit in `family` (label `device`).
    pub fn with_metrics(mut self, family: SecondsFamily) -> Self {
        self.throttled = Some(family);
        self
    }

    /// Sets the limits: `(device name, bytes per second)`; devices not named lose theirs.
    /// A device keeping a limit keeps its bucket and its waiters.
    pub fn configure<'a>(&self, limits: impl IntoIterator<Item = (&'a str, u64)>) {
        let mut map = self.limiters.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = HashMap::new();
        for (name, rate) in limits {
            let limiter = match map.remove(name) {
                Some(l) => {
                    if l.rate() != rate {
                        l.set_rate(rate);
                    }
                    l
                }
                None => {
                    let mut l = Limiter::new(name, rate);
                    if let Some(f) = &self.throttled {
                        l = l.with_counter(f.get_or_create(&vec![("device", name.into())]).clone());
                    }
                    Arc::new(l)
                }
            };
            next.insert(name.to_string(), limiter);
        }
        *map = next;
    }

    /// The limit of the device named `name`, if it has one.
    pub fn get(&self, name: &str) -> Option<Arc<Limiter>> {
        self.limiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn the_burst_is_a_quarter_second_of_the_rate_and_at_least_one_chunk() {
        assert_eq!(burst_for(400 << 20), 100 << 20);
        assert_eq!(burst_for(4 * MIN_BURST + 8), MIN_BURST + 2);
        assert_eq!(burst_for(4 * MIN_BURST - 4), MIN_BURST);
        assert_eq!(burst_for(1), MIN_BURST);
        assert_eq!(burst_for(0), MIN_BURST);
    }

    #[test]
    fn a_full_bucket_grants_its_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut s = Schedule::new(10 * MIB, 2 * MIB, t0);
        let a = s.arrive(1);
        assert_eq!(s.poll(a, 2 * MIB, t0), Poll::Granted);
        let b = s.arrive(1);
        // Empty: 1 MiB at 10 MiB/s is 100 ms away.
        assert_eq!(s.poll(b, MIB, t0), Poll::Wait(Duration::from_millis(100)));
        assert_eq!(
            s.poll(b, MIB, at(t0, 50)),
            Poll::Wait(Duration::from_millis(50))
        );
        assert_eq!(s.poll(b, MIB, at(t0, 100)), Poll::Granted);
    }

    #[test]
    fn an_idle_bucket_holds_no_more_than_its_burst() {
        let t0 = Instant::now();
        let mut s = Schedule::new(10 * MIB, 2 * MIB, t0);
        let a = s.arrive(0);
        assert_eq!(s.poll(a, 2 * MIB, at(t0, 60_000)), Poll::Granted);
        let b = s.arrive(0);
        assert_eq!(
            s.poll(b, MIB, at(t0, 60_000)),
            Poll::Wait(Duration::from_millis(100)),
            "a minute idle saved only the burst"
        );
    }

    #[test]
    fn a_request_larger_than_the_burst_leaves_a_debt() {
        let t0 = Instant::now();
        let mut s = Schedule::new(10 * MIB, MIB, t0);
        let a = s.arrive(0);
        assert_eq!(
            s.poll(a, 5 * MIB, t0),
            Poll::Granted,
            "a full bucket suffices"
        );
        let b = s.arrive(0);
        // 4 MiB of debt and 1 MiB to hold: 500 ms.
        assert_eq!(s.poll(b, MIB, t0), Poll::Wait(Duration::from_millis(500)));
        assert_eq!(s.poll(b, MIB, at(t0, 500)), Poll::Granted);
    }

    #[test]
    fn over_time_the_granted_bytes_follow_the_rate() {
        let t0 = Instant::now();
        let (rate, burst) = (100 * MIB, 5 * MIB);
        let mut s = Schedule::new(rate, burst, t0);
        let mut now = t0;
        let mut granted = 0u64;
        while now < at(t0, 10_000) {
            let t = s.arrive(1);
            loop {
                match s.poll(t, MIB, now) {
                    Poll::Granted => break,
                    Poll::Wait(d) => now += d,
                    Poll::NotFirst => unreachable!("one waiter"),
                }
            }
            granted += MIB;
        }
        // In 10 s: the burst, plus 10 s of the rate, plus the last request.
        let most = burst + 10 * rate + MIB;
        assert!(granted <= most, "{granted} > {most}");
        assert!(granted >= 10 * rate - MIB, "{granted}");
    }

    #[test]
    fn the_lower_priority_value_is_served_first_ties_in_arrival_order() {
        let t0 = Instant::now();
        let mut s = Schedule::new(MIB, MIB, t0);
        let first = s.arrive(0);
        assert_eq!(s.poll(first, MIB, t0), Poll::Granted);
        let low_a = s.arrive(5);
        let low_b = s.arrive(5);
        let high = s.arrive(1);
        assert_eq!(s.poll(low_a, MIB, at(t0, 2000)), Poll::NotFirst);
        assert_eq!(s.poll(low_b, MIB, at(t0, 2000)), Poll::NotFirst);
        assert_eq!(s.poll(high, MIB, at(t0, 2000)), Poll::Granted);
        assert_eq!(s.poll(low_b, MIB, at(t0, 3000)), Poll::NotFirst);
        assert_eq!(s.poll(low_a, MIB, at(t0, 3000)), Poll::Granted);
        assert_eq!(s.poll(low_b, MIB, at(t0, 4000)), Poll::Granted);
    }

    #[test]
    fn a_waiter_that_leaves_lets_the_next_one_be_first() {
        let t0 = Instant::now();
        let mut s = Schedule::new(MIB, MIB, t0);
        let a = s.arrive(0);
        let b = s.arrive(0);
        assert_eq!(s.poll(b, 1, t0), Poll::NotFirst);
        s.leave(a);
        assert_eq!(s.poll(b, 1, t0), Poll::Granted);
    }

    #[test]
    fn a_rate_change_keeps_the_bucket_within_the_new_burst() {
        let t0 = Instant::now();
        let mut s = Schedule::new(10 * MIB, 10 * MIB, t0);
        s.set_rate(MIB, MIB, t0);
        let a = s.arrive(0);
        assert_eq!(s.poll(a, MIB, t0), Poll::Granted);
        let b = s.arrive(0);
        assert_eq!(s.poll(b, MIB, t0), Poll::Wait(Duration::from_secs(1)));
    }

    #[test]
    fn an_aborted_waiter_returns_and_takes_nothing() {
        // 1 byte/s: the second request would wait about 12 days.
        let limiter = Limiter::new("d", 1);
        let abort = Abort::new();
        assert!(limiter.take(MIN_BURST, 0, &abort));
        let waiting = abort.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| tx.send(limiter.take(MIN_BURST, 0, &waiting)).unwrap());
            abort.abort();
            let granted = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("an aborted waiter returns");
            assert!(!granted);
        });
        assert_eq!(limiter.granted(), MIN_BURST);
    }

    #[test]
    fn more_than_a_burst_is_paid_for_before_it_moves() {
        // 4 MiB/s, a 1 MiB burst: after the first MiB, 3 MiB take at least 3/4 s.
        let limiter = Limiter::new("d", 4 * MIB);
        assert_eq!(burst_for(4 * MIB), MIB);
        let abort = Abort::new();
        assert!(limiter.take(MIB, 1, &abort));
        assert_eq!(
            limiter.waited(),
            Duration::ZERO,
            "a grant from the bucket is no wait"
        );
        let start = Instant::now();
        assert!(limiter.take(3 * MIB, 1, &abort));
        assert!(
            start.elapsed() >= Duration::from_millis(740),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(limiter.granted(), 4 * MIB);
        // Counted from inside the call: a little less than the time around it.
        assert!(limiter.waited() > Duration::from_millis(500));
        assert!(limiter.waited() <= start.elapsed());
    }

    #[test]
    fn device_limits_count_their_waits_in_the_metrics_family() {
        let family = crate::metrics::SecondsFamily::default();
        let limits = DeviceLimits::default().with_metrics(family.clone());
        // 40 MiB/s, a 10 MiB burst: 2 MiB past it wait 1/20 s.
        limits.configure([("d", 40 * MIB)]);
        let d = limits.get("d").unwrap();
        let abort = Abort::new();
        assert!(d.take(burst_for(40 * MIB), 0, &abort));
        assert!(d.take(2 * MIB, 0, &abort));
        let counted = family.get_or_create(&vec![("device", "d".into())]).get();
        // About 1/20 s; less if the thread was held up between the two takes.
        assert!(counted > 0.0, "{counted}");
        assert!((counted - d.waited().as_secs_f64()).abs() < 1e-6);
    }

    #[test]
    fn threads_waiting_on_a_limiter_are_served_by_priority() {
        let limiter = Limiter::new("d", 1);
        let abort = Abort::new();
        // Empty the bucket; at 1 byte/s nobody is served until the rate is raised.
        assert!(limiter.take(MIN_BURST, 0, &abort));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            for (n, priority) in [(0u8, 7u8), (1, 7), (2, 0)] {
                let (limiter, abort, tx) = (&limiter, &abort, tx.clone());
                s.spawn(move || {
                    assert!(limiter.take(MIB, priority, abort));
                    tx.send(n).unwrap();
                });
                // Arrivals in order: each is queued before the next starts.
                let deadline = Instant::now() + Duration::from_secs(30);
                while limiter.waiting() <= usize::from(n) {
                    assert!(Instant::now() < deadline, "waiter {n} never queued");
                    std::thread::yield_now();
                }
            }
            // One request at a time: each burst is exactly one request.
            limiter.set_rate(20 * MIB);
            let order: Vec<u8> = (0..3)
                .map(|_| rx.recv_timeout(Duration::from_secs(30)).unwrap())
                .collect();
            assert_eq!(
                order,
                [2, 0, 1],
                "PRIORITY 0 first, then the 7s in arrival order"
            );
        });
    }

    #[test]
    fn the_copy_limit_counts_source_reads_only_and_the_device_limit_everything() {
        let device = Arc::new(Limiter::new("d", 1 << 40));
        let copy = Arc::new(Limiter::new("copy", 1 << 40));
        let t = Throttle {
            device: Some(device.clone()),
            copy: Some(copy.clone()),
            ..Throttle::none()
        };
        t.take(Side::Source, 4096).unwrap();
        t.take(Side::Destination, 512).unwrap();
        assert_eq!(copy.granted(), 4096);
        assert_eq!(device.granted(), 4096 + 512);
    }

    #[test]
    fn device_limits_keep_a_bucket_across_a_reload() {
        let limits = DeviceLimits::default();
        limits.configure([("a", MIB), ("b", 2 * MIB)]);
        let a = limits.get("a").unwrap();
        limits.configure([("a", 3 * MIB)]);
        assert!(Arc::ptr_eq(&a, &limits.get("a").unwrap()));
        assert_eq!(a.rate(), 3 * MIB);
        assert!(limits.get("b").is_none());
    }
}
