//! The xcopyd binary and its signals, driven as an operator does: a config file, SIGHUP to
//! reload it (a good one takes effect and initiators get 06/3F/0E REPORTED LUNS DATA HAS
//! CHANGED; a bad one is refused, logged, and changes nothing), and SIGTERM with an
//! EXTENDED COPY running: finished within the grace period (GOOD, then exit 0) or aborted
//! past it (grace 0: the copy stops part way, exit 0).
//!
//! Everything waits on something it can observe (a log line, a unit attention, COPY STATUS,
//! the process's exit), polled with a deadline.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::list::xcopy_cdb;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use xcopyd::iscsi::initiator::{LoginOptions, Session};
use xcopyd::scsi::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
use xcopyd::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
use xcopyd::scsi::{Designator, ListIdUsage, ParameterList};

const TARGET: &str = "iqn.2026-11.org.xcopyd:mover";
const DEADLINE: Duration = Duration::from_secs(60);

struct Xcopyd {
    child: Child,
    log: PathBuf,
    config: PathBuf,
    addr: std::net::SocketAddr,
}

fn devices(size: &str) -> String {
    format!(
        "[[device]]\nname = \"disk0\"\nkind = \"disk\"\npath = \"disk0.img\"\nsize = \"{size}\"\n\
         designator = \"naa.5001405a1b2c3d01\"\n\
         [[device]]\nname = \"disk1\"\nkind = \"disk\"\npath = \"disk1.img\"\nsize = \"{size}\"\n\
         designator = \"naa.5001405a1b2c3d03\"\n\
         [[device]]\nname = \"tape0\"\nkind = \"tape\"\npath = \"tape0.tap\"\n\
         designator = \"naa.5001405a1b2c3d02\"\n"
    )
}

fn config_text(grace: u64, size: &str, luns: &[&str]) -> String {
    let mut t = format!(
        "[iscsi]\nlisten = \"127.0.0.1:0\"\ntarget = \"{TARGET}\"\n\
         [daemon]\nshutdown_grace_secs = {grace}\n{}",
        devices(size)
    );
    for l in luns {
        t += &format!("[[lun]]\ndevice = \"{l}\"\n");
    }
    t
}

/// Polls `f` until it returns Some, failing after [`DEADLINE`].
fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t0.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Xcopyd {
    fn start(dir: &Path, config: &str) -> Self {
        let path = dir.join("xcopyd.toml");
        std::fs::write(&path, config).unwrap();
        std::fs::write(dir.join("tape0.tap"), b"").unwrap();
        let log = dir.join("xcopyd.log");
        let child = Command::new(env!("CARGO_BIN_EXE_xcopyd"))
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut x = Self {
            child,
            log,
            config: path,
            addr: "0.0.0.0:0".parse().unwrap(),
        };
        let line = x.wait_log("xcopyd serving");
        let listen = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("listen="))
            .expect("the listen address is logged");
        x.addr = listen.parse().unwrap();
        x
    }

    fn log_text(&self) -> String {
        let mut s = String::new();
        std::fs::File::open(&self.log)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    /// The first log line containing `needle` (and the daemon must not have exited).
    fn wait_log(&mut self, needle: &str) -> String {
        poll(needle, || {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("xcopyd exited ({status}):\n{}", self.log_text());
            }
            self.log_text()
                .lines()
                .find(|l| l.contains(needle))
                .map(str::to_string)
        })
    }

    /// How many log lines contain `needle`.
    fn count_log(&self, needle: &str) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    fn signal(&self, s: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), s).unwrap();
    }

    fn session(&self) -> Session {
        let s = Session::connect(self.addr, &LoginOptions::new(TARGET)).unwrap();
        // The power-on unit attention, once per LUN.
        for lun in 0..2 {
            let _ = s.command(lun, &[0; 6], &[], 0).unwrap();
        }
        s
    }

    /// Waits for the process to exit; returns its exit code.
    fn wait_exit(&mut self) -> i32 {
        let status = poll("xcopyd to exit", || self.child.try_wait().unwrap());
        status.code().expect("exited, not killed")
    }
}

impl Drop for Xcopyd {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn report_luns(s: &Session) -> Vec<u8> {
    let mut cdb = [0u8; 12];
    cdb[0] = 0xa0;
    cdb[9] = 64;
    let r = s.command(0, &cdb, &[], 64).unwrap();
    assert_eq!(r.status, 0);
    r.data_in
}

/// TEST UNIT READY on LUN 0: (status, sense key, ASC, ASCQ).
fn tur(s: &Session) -> (u8, u8, u8, u8) {
    let r = s.command(0, &[0; 6], &[], 0).unwrap();
    match r.status {
        0 => (0, 0, 0, 0),
        st => (st, r.sense[2] & 0x0f, r.sense[12], r.sense[13]),
    }
}

#[test]
fn sighup_reloads_a_good_config_and_keeps_the_old_one_on_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = Xcopyd::start(dir.path(), &config_text(5, "1MiB", &["disk0"]));
    let s = x.session();
    assert_eq!(tur(&s), (0, 0, 0, 0));
    let one_lun = report_luns(&s);
    assert_eq!(&one_lun[..4], &8u32.to_be_bytes());

    // Bad: a syntax error, then a [[lun]] naming no device. Refused, logged, nothing
    // changes, no unit attention.
    for (n, bad) in [
        "[iscsi\nlisten = ".to_string(),
        config_text(5, "1MiB", &["disk0", "nosuch"]),
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(&x.config, bad).unwrap();
        x.signal(Signal::SIGHUP);
        poll("the reload to fail", || {
            (x.count_log("reload failed, keeping the old configuration") == n + 1).then_some(())
        });
        assert_eq!(tur(&s), (0, 0, 0, 0), "bad config {n}: no unit attention");
        assert_eq!(report_luns(&s), one_lun, "bad config {n}: LUNs unchanged");
    }
    assert_eq!(x.count_log("configuration reloaded"), 0);

    // Good: a second LUN. The session is told, and REPORT LUNS lists it.
    std::fs::write(&x.config, config_text(5, "1MiB", &["disk0", "disk1"])).unwrap();
    x.signal(Signal::SIGHUP);
    x.wait_log("configuration reloaded");
    assert_eq!(tur(&s), (2, 0x06, 0x3f, 0x0e));
    assert_eq!(tur(&s), (0, 0, 0, 0));
    let two = report_luns(&s);
    assert_eq!(&two[..4], &16u32.to_be_bytes());
    assert_eq!(&two[16..24], &[0, 1, 0, 0, 0, 0, 0, 0]);
    s.logout().unwrap();

    x.signal(Signal::SIGTERM);
    assert_eq!(x.wait_exit(), 0);
    assert!(x.log_text().contains("xcopyd stopped"));
}

/// Blocks per 00h segment: 32 MiB less 64 KiB, a whole number of 64 KiB records.
const PER: u64 = 65_408;

/// A backup of the first `segments` x [`PER`] blocks of disk0 to tape0 in 64 KiB records:
/// a copy no file system can shortcut (every record is written to the tape image).
fn backup(id: u8, segments: u64) -> Vec<u8> {
    let cscd = |name: &str, parameters, pdt| CscdDescriptor {
        nul: false,
        peripheral_device_type: pdt,
        relative_initiator_port: 0,
        identifier: CscdIdentifier::Identification {
            designator: Designator::parse_name(name).unwrap(),
        },
        parameters,
    };
    let disk = DeviceParameters::Block {
        pad: false,
        block_length: 512,
    };
    let tape = DeviceParameters::Stream {
        pad: false,
        fixed: false,
        block_length: 0,
    };
    ParameterList {
        list_identifier: id,
        sequential_striped: false,
        list_id_usage: ListIdUsage::Hold,
        priority: 1,
        cscds: vec![
            cscd("naa.5001405a1b2c3d01", disk, 0),
            cscd("naa.5001405a1b2c3d02", tape, 1),
        ],
        segments: (0..segments)
            .map(|k| SegmentDescriptor {
                cat: false,
                body: Segment::BlockToStream {
                    hold: false,
                    source: CscdId(0),
                    destination: CscdId(1),
                    stream_transfer_length: 65_536,
                    blocks: PER as u16,
                    lba: k * PER,
                },
            })
            .collect(),
        inline_data: Vec::new(),
    }
    .encode()
}

/// COPY STATUS of list `id`: (COPY MANAGER STATUS, segments processed).
fn copy_status(s: &Session, id: u8) -> Option<(u8, u16)> {
    let mut c = [0u8; 16];
    c[0] = 0x84;
    c[2] = id;
    c[13] = 12;
    let r = s.command(0, &c, &[], 12).unwrap();
    (r.status == 0).then(|| {
        (
            r.data_in[4] & 0x7f,
            u16::from_be_bytes([r.data_in[5], r.data_in[6]]),
        )
    })
}

/// Segments of the copy SIGTERM meets: about 1 GiB.
const SEGMENTS: u64 = 32;

#[test]
fn sigterm_lets_a_running_copy_finish_within_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = Xcopyd::start(dir.path(), &config_text(120, "1GiB", &["disk0", "disk1"]));
    let copier = x.session();
    let list = backup(3, SEGMENTS);
    std::thread::scope(|scope| {
        let copy = scope.spawn(|| copier.command(0, &xcopy_cdb(list.len()), &list, 0));
        in_progress(&copier, 3, SEGMENTS as u16);
        x.signal(Signal::SIGTERM);
        x.wait_log("waiting for copies");
        assert!(x.log_text().contains("running=1"));
        let r = copy.join().unwrap().unwrap();
        assert_eq!((r.status, r.sense.len()), (0, 0), "the copy finished GOOD");
    });
    assert_eq!(x.wait_exit(), 0);
    let log = x.log_text();
    assert!(!log.contains("aborting copies"), "{log}");
    assert!(log.contains("xcopyd stopped"));
}

/// Polls COPY STATUS of list `id` (on the session running it: list IDs belong to the I_T
/// nexus) until it is in progress, and checks that fewer than a
/// quarter of its `segments` are done (so the copy outlasts what follows by far).
fn in_progress(poller: &Session, id: u8, segments: u16) {
    let (state, done) = poll("the copy to be in progress", || copy_status(poller, id));
    assert_eq!(state, 0x00, "in progress");
    assert!(done < segments / 4, "{done} of {segments} segments already");
}

#[test]
fn sigterm_aborts_a_copy_still_running_past_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = Xcopyd::start(dir.path(), &config_text(0, "1GiB", &["disk0", "disk1"]));
    let copier = x.session();
    let list = backup(4, SEGMENTS);
    std::thread::scope(|scope| {
        let copy = scope.spawn(|| copier.command(0, &xcopy_cdb(list.len()), &list, 0));
        in_progress(&copier, 4, SEGMENTS as u16);
        x.signal(Signal::SIGTERM);
        x.wait_log("aborting copies still running");
        // The copy ends with COPY ABORTED, or its connection is closed under it.
        match copy.join().unwrap() {
            Ok(r) => assert_eq!((r.status, r.sense[2] & 0x0f), (2, 0x0a), "{r:?}"),
            Err(e) => eprintln!("the connection closed: {e}"),
        }
    });
    assert_eq!(x.wait_exit(), 0);
    assert!(x.log_text().contains("waiting for copies"));
    let tape = std::fs::metadata(dir.path().join("tape0.tap"))
        .unwrap()
        .len();
    assert!(
        tape < SEGMENTS * PER * 512 / 2,
        "the copy stopped part way: {tape} bytes on the tape"
    );
}
