//! What the daemon counts, in Prometheus terms (prometheus-client), and the `/metrics`
//! endpoint that serves them (`[metrics] listen`, loopback by default):
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `xcopyd_copies_total` | `result`, `sense` | EXTENDED COPY lists run, by result (`good`, `check_condition`) and sense (KEY/ASC/ASCQ) |
//! | `xcopyd_copies_in_flight` | | lists running now |
//! | `xcopyd_copy_bytes_total` | `device` | bytes written by copies, by the device they landed on (CSCD designator) |
//! | `xcopyd_segments_total` | `type` | segments processed, by descriptor type (`02h`, …) |
//! | `xcopyd_third_party_copy_commands_total` | `initiator`, `command` | EXTENDED COPY and RECEIVE COPY RESULTS by initiator: was XCOPY actually used |
//! | `xcopyd_check_conditions_total` | `sense` | every CHECK CONDITION the dispatcher returned, by sense |
//! | `xcopyd_device_commands_in_flight` | `device` | commands a device is executing now (its queue depth) |
//! | `xcopyd_device_command_seconds` | `device` | how long a device took per command (histogram) |
//! | `xcopyd_device_throttled_seconds_total` | `device` | time copies waited on the device's bandwidth `limit` (a device near its cap shows it rising) |
//! | `xcopyd_iscsi_sessions` | | iSCSI sessions logged in now |
//! | `xcopyd_iscsi_logins_total` | `result`, `reason` | logins, by result (`ok`, `refused`) and, refused, why |
//!
//! One [`Metrics`] is made per daemon and handed to the parts that count (no global).

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Label sets: (name, value) pairs.
pub type Labels = Vec<(&'static str, String)>;

type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// Seconds counted by label set.
pub type SecondsFamily = Family<Labels, Counter<f64, AtomicU64>>;

/// Every metric of one daemon.
pub struct Metrics {
    registry: Registry,
    pub copies: Family<Labels, Counter>,
    pub copies_in_flight: Gauge,
    pub copy_bytes: Family<Labels, Counter>,
    pub segments: Family<Labels, Counter>,
    pub third_party_copy_commands: Family<Labels, Counter>,
    pub check_conditions: Family<Labels, Counter>,
    pub device_in_flight: Family<Labels, Gauge>,
    pub device_seconds: HistogramFamily,
    pub device_throttled: SecondsFamily,
    pub iscsi_sessions: Gauge,
    pub iscsi_logins: Family<Labels, Counter>,
}

fn latency_histogram() -> Histogram {
    // 10 us to ~42 s.
    Histogram::new(exponential_buckets(1e-5, 4.0, 12))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("xcopyd");
        let copies = Family::<Labels, Counter>::default();
        registry.register("copies", "EXTENDED COPY lists run", copies.clone());
        let copies_in_flight = Gauge::default();
        registry.register(
            "copies_in_flight",
            "EXTENDED COPY lists running now",
            copies_in_flight.clone(),
        );
        let copy_bytes = Family::<Labels, Counter>::default();
        registry.register(
            "copy_bytes",
            "Bytes written by copies, by destination device",
            copy_bytes.clone(),
        );
        let segments = Family::<Labels, Counter>::default();
        registry.register(
            "segments",
            "Segments processed, by descriptor type",
            segments.clone(),
        );
        let third_party_copy_commands = Family::<Labels, Counter>::default();
        registry.register(
            "third_party_copy_commands",
            "EXTENDED COPY and RECEIVE COPY RESULTS commands, by initiator",
            third_party_copy_commands.clone(),
        );
        let check_conditions = Family::<Labels, Counter>::default();
        registry.register(
            "check_conditions",
            "CHECK CONDITION statuses returned, by sense",
            check_conditions.clone(),
        );
        let device_in_flight = Family::<Labels, Gauge>::default();
        registry.register(
            "device_commands_in_flight",
            "Commands a device is executing now",
            device_in_flight.clone(),
        );
        let device_seconds: HistogramFamily =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "device_command_seconds",
            "Time a device took per command",
            device_seconds.clone(),
        );
        let device_throttled = SecondsFamily::default();
        registry.register(
            "device_throttled_seconds",
            "Time copies waited on a device's bandwidth limit",
            device_throttled.clone(),
        );
        let iscsi_sessions = Gauge::default();
        registry.register(
            "iscsi_sessions",
            "iSCSI sessions logged in now",
            iscsi_sessions.clone(),
        );
        let iscsi_logins = Family::<Labels, Counter>::default();
        registry.register(
            "iscsi_logins",
            "iSCSI logins, by result and the reason of a refusal",
            iscsi_logins.clone(),
        );
        Self {
            registry,
            copies,
            copies_in_flight,
            copy_bytes,
            segments,
            third_party_copy_commands,
            check_conditions,
            device_in_flight,
            device_seconds,
            device_throttled,
            iscsi_sessions,
            iscsi_logins,
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// A label value kept short and printable (initiator names come from the wire).
    pub fn label(value: &str) -> String {
        value
            .chars()
            .filter(|c| !c.is_control())
            .take(223)
            .collect()
    }
}

/// The HTTP endpoint serving `GET /metrics`; stops when dropped.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

/// What `GET /copies` answers: the copy registry's list, as the admin socket's `list`.
pub type CopiesView = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

impl MetricsServer {
    /// Serves `metrics` on `listen` at `/metrics`, and `copies` (read-only: stopping a
    /// copy stays with the owner-only admin socket) at `/copies`.
    pub fn start(listen: &str, metrics: Arc<Metrics>, copies: CopiesView) -> io::Result<Self> {
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                while !s.load(Ordering::Acquire) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let _ = answer(stream, &metrics, &*copies);
                        }
                        Err(_) => thread::sleep(Duration::from_millis(50)),
                    }
                }
            })?;
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One HTTP request: `GET /metrics` gets the exposition, `GET /copies` the copies as JSON,
/// anything else 404; the headers are read (at most 8 KiB, 5 s) and ignored.
fn answer(
    stream: TcpStream,
    metrics: &Metrics,
    copies: &(dyn Fn() -> serde_json::Value + Send + Sync),
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(io::Read::take(stream.try_clone()?, 8192));
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let path = request.split_whitespace().nth(1).unwrap_or("");
    let get = request.starts_with("GET ");
    let (status, content_type, body) =
        if get && (path == "/metrics" || path.starts_with("/metrics?")) {
            (
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                metrics.render(),
            )
        } else if get && path == "/copies" {
            ("200 OK", "application/json", copies().to_string())
        } else {
            (
                "404 Not Found",
                "text/plain",
                "not found: the metrics are at /metrics, the copies at /copies\n".to_string(),
            )
        };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn counters_render_and_are_served() {
        let m = Arc::new(Metrics::default());
        m.copies
            .get_or_create(&vec![("result", "good".into()), ("sense", "".into())])
            .inc();
        m.device_seconds
            .get_or_create(&vec![("device", "disk0".into())])
            .observe(0.002);
        let text = m.render();
        assert!(
            text.contains("xcopyd_copies_total{result=\"good\",sense=\"\"} 1"),
            "{text}"
        );
        assert!(text.contains("xcopyd_device_command_seconds_count{device=\"disk0\"} 1"));
        let copies: CopiesView = Arc::new(|| serde_json::json!({"copies": [{"id": 7}]}));
        let server = MetricsServer::start("127.0.0.1:0", m, copies).unwrap();
        let get = |path: &str| {
            let mut s = TcpStream::connect(server.local_addr()).unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        };
        let ok = get("/metrics");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.ends_with("# EOF\n"));
        assert!(get("/").starts_with("HTTP/1.1 404"));
        let copies = get("/copies");
        assert!(
            copies.starts_with("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"),
            "{copies}"
        );
        assert!(
            copies.ends_with("\r\n\r\n{\"copies\":[{\"id\":7}]}"),
            "{copies}"
        );
        // Read-only: no way to stop a copy from here.
        assert!(get("/copies/7/abort").starts_with("HTTP/1.1 404"));
        assert_eq!(Metrics::label("iqn.a\u{0}b\n"), "iqn.ab");
    }
}
