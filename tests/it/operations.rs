//! Operating the daemon from a second terminal: `xcopy status` sees a running copy with
//! its progress, `xcopy abort` stops it (COPY ABORTED, the abort shown), SIGUSR1 makes the
//! daemon and the CLI say how far they got and kills neither, and the log has a start and
//! an end line per copy.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("xcopyd.log")).unwrap_or_default()
    }

    fn xcopy(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_xcopy"))
            .args(args)
            .env("XCOPYD_STATE_DIR", self.dir.path())
            .output()
            .unwrap()
    }

    fn status(&self) -> serde_json::Value {
        let out = self.xcopy(&["status", "--json"]);
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
}

/// A daemon with a 4 GiB sparse disk (LUN 0) and a tape (LUN 1), its admin socket in the
/// temp dir.
fn start() -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "[iscsi]\nlisten = \"127.0.0.1:{port}\"\n\
         [[device]]\nname = \"disk0\"\nkind = \"disk\"\npath = \"disk0.img\"\nsize = \"4GiB\"\n\
         designator = \"naa.5001405a1b2c3d01\"\n\
         [[device]]\nname = \"tape0\"\nkind = \"tape\"\npath = \"tape0.tap\"\n\
         designator = \"naa.5001405a1b2c3d02\"\n\
         [[lun]]\ndevice = \"disk0\"\n[[lun]]\ndevice = \"tape0\"\n"
    );
    std::fs::write(dir.path().join("xcopyd.toml"), config).unwrap();
    let log = std::fs::File::create(dir.path().join("xcopyd.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_xcopyd"))
        .arg("--config")
        .arg(dir.path().join("xcopyd.toml"))
        .env("XCOPYD_STATE_DIR", dir.path())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let d = Daemon { child, dir };
    wait_for(30, "the admin socket", || {
        d.dir.path().join("xcopyd.sock").exists()
    });
    d
}

fn url(d: &Daemon) -> String {
    let text = std::fs::read_to_string(d.dir.path().join("xcopyd.toml")).unwrap();
    let listen = text
        .lines()
        .find_map(|l| l.strip_prefix("listen = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    format!("iscsi://{listen}/iqn.2026-11.org.xcopyd:mover/0")
}

#[test]
fn an_admin_sees_a_running_copy_and_stops_it() {
    let d = start();
    // A 4 GiB backup through the daemon, from a client in the background.
    let backup = Command::new(env!("CARGO_BIN_EXE_xcopy"))
        .args([
            "backup", "-q", "--json", "--from", "lun:0", "--to", "lun:1", "--target",
        ])
        .arg(url(&d))
        .env("XCOPYD_STATE_DIR", d.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut id = 0;
    wait_for(60, "the copy to be seen running with bytes moved", || {
        let s = d.status();
        let copies = s["copies"].as_array().cloned().unwrap_or_default();
        copies.iter().any(|c| {
            let seen = c["state"] == "running" && c["bytes"].as_u64().unwrap_or(0) > 0;
            if seen {
                id = c["id"].as_u64().unwrap();
                assert_eq!(c["initiator"], "iqn.2026-11.org.xcopyd:initiator");
                assert_eq!(c["total_bytes"], 4u64 << 30);
                assert_eq!(c["receiving"], "disk0");
                assert_eq!(c["cscds"][0], "naa.5001405a1b2c3d01");
                assert!(c["rate"].as_f64().unwrap() > 0.0);
            }
            seen
        })
    });
    // SIGUSR1 to the daemon: a progress line, and the copy goes on.
    signal(d.child.id(), nix::sys::signal::Signal::SIGUSR1);
    wait_for(10, "the SIGUSR1 line", || {
        d.log().contains("SIGUSR1: copy in progress")
    });
    let out = d.xcopy(&["abort", &id.to_string()]);
    assert!(out.status.success(), "{out:?}");
    let out = backup.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(10), "COPY ABORTED: {out:?}");
    let s = d.status();
    let c = s["copies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(
        (c["state"].as_str(), c["aborted"].as_bool()),
        (Some("check_condition"), Some(true))
    );
    assert!(c["sense"].as_str().unwrap().starts_with("0a/"), "{c}");
    // Aborting it again: not running.
    assert_eq!(d.xcopy(&["abort", &id.to_string()]).status.code(), Some(1));
    // The log has the copy's start and its end, with the sense in words.
    let log = d.log();
    assert!(log.contains("EXTENDED COPY started"), "{log}");
    assert!(
        log.contains("EXTENDED COPY failed") && log.contains("COPY ABORTED"),
        "{log}"
    );
    assert!(log.contains("admin: abort requested"));
    // The human listing has the copy.
    let out = d.xcopy(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("check_condition"), "{text}");
}

#[test]
fn sigusr1_tells_the_cli_how_far_it_got_and_does_not_kill_it() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inv.toml");
    std::fs::write(
        &inventory,
        "[[device]]\nname = \"disk0\"\nkind = \"disk\"\npath = \"disk0.img\"\nsize = \"1GiB\"\n\
         [[device]]\nname = \"tape0\"\nkind = \"tape\"\npath = \"tape0.tap\"\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_xcopy"))
        .args(["backup", "--from", "disk0", "--to", "tape0", "-d"])
        .arg(&inventory)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let tape = dir.path().join("tape0.tap");
    wait_for(60, "the backup to write", || {
        std::fs::metadata(&tape).map_or(0, |m| m.len()) > 0
    });
    signal(child.id(), nix::sys::signal::Signal::SIGUSR1);
    // It says how far it got on stderr and goes on.
    let mut stderr = child.stderr.take().unwrap();
    let mut got = String::new();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let _ = stderr.read_to_string(&mut got);
        got
    });
    wait_for(60, "the backup to end", || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "not killed by SIGUSR1");
    let err = reader.join().unwrap();
    assert!(
        err.contains("xcopy: ") && err.contains("bytes") && err.contains("MB/s"),
        "{err}"
    );
    assert_eq!(
        std::fs::metadata(&tape).unwrap().len(),
        (1u64 << 30) / (256 << 10) * ((256 << 10) + 8),
        "the whole disk on tape"
    );
}

/// `/metrics` during work: parses as Prometheus text, and the counters move — copies by
/// result, EXTENDED COPY by initiator, segments by type, bytes by device, logins by result
/// and reason, sessions, device latency.
#[test]
fn metrics_move_while_copies_run() {
    let dir = tempfile::tempdir().unwrap();
    let port = |_| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (iscsi, metrics) = (port(0), port(1));
    let config = format!(
        "[iscsi]\nlisten = \"127.0.0.1:{iscsi}\"\n[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n\
         [[device]]\nname = \"disk0\"\nkind = \"disk\"\npath = \"disk0.img\"\nsize = \"64MiB\"\n\
         designator = \"naa.5001405a1b2c3d01\"\n\
         [[device]]\nname = \"tape0\"\nkind = \"tape\"\npath = \"tape0.tap\"\n\
         designator = \"naa.5001405a1b2c3d02\"\n\
         [[lun]]\ndevice = \"disk0\"\n[[lun]]\ndevice = \"tape0\"\n"
    );
    std::fs::write(dir.path().join("xcopyd.toml"), config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_xcopyd"))
        .arg("--config")
        .arg(dir.path().join("xcopyd.toml"))
        .env("XCOPYD_STATE_DIR", dir.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("xcopyd.log")).unwrap())
        .spawn()
        .unwrap();
    let _d = Daemon { child, dir };
    let scrape = || -> Option<prometheus_parse::Scrape> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", metrics)).ok()?;
        write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let body = text.split_once("\r\n\r\n")?.1.to_string();
        prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).ok()
    };
    let value = |scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    wait_for(30, "/metrics", || scrape().is_some());
    let before = scrape().unwrap();
    let url = format!("iscsi://127.0.0.1:{iscsi}/iqn.2026-11.org.xcopyd:mover/0");
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_xcopy"))
            .args([
                "backup",
                "-q",
                "--from",
                "lun:0:0+2048",
                "--to",
                "lun:1",
                "--target",
                &url,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    // A login to a target that is not there: refused, counted by its status.
    let out = Command::new(env!("CARGO_BIN_EXE_xcopy"))
        .args(["results", "--target"])
        .arg(format!("iscsi://127.0.0.1:{iscsi}/iqn.no.such:target/0"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let after = scrape().expect("/metrics parses as Prometheus text");
    let initiator = [
        ("initiator", "iqn.2026-11.org.xcopyd:initiator"),
        ("command", "extended_copy"),
    ];
    assert_eq!(
        value(&after, "xcopyd_third_party_copy_commands_total", &initiator)
            - value(
                &before,
                "xcopyd_third_party_copy_commands_total",
                &initiator
            ),
        2.0
    );
    let good = [("result", "good")];
    assert_eq!(
        value(&after, "xcopyd_copies_total", &good) - value(&before, "xcopyd_copies_total", &good),
        2.0
    );
    // Each backup: an 11h SPACE to end of data, then one 00h segment of 2048 blocks.
    assert_eq!(
        value(&after, "xcopyd_segments_total", &[("type", "00h")]),
        2.0
    );
    assert_eq!(
        value(&after, "xcopyd_segments_total", &[("type", "11h")]),
        2.0
    );
    assert_eq!(
        value(
            &after,
            "xcopyd_copy_bytes_total",
            &[("device", "naa.5001405a1b2c3d02")]
        ),
        2.0 * 2048.0 * 512.0
    );
    // Each remote backup logs in twice: to ask the tape where it ends, then to copy.
    assert_eq!(
        value(&after, "xcopyd_iscsi_logins_total", &[("result", "ok")]),
        4.0
    );
    assert_eq!(
        value(
            &after,
            "xcopyd_iscsi_logins_total",
            &[("result", "refused"), ("reason", "status 0203")]
        ),
        1.0
    );
    assert_eq!(value(&after, "xcopyd_copies_in_flight", &[]), 0.0);
    assert!(
        after
            .samples
            .iter()
            .any(|s| s.metric == "xcopyd_device_command_seconds"
                && s.labels.get("device") == Some("tape0")),
        "latency of the tape's commands"
    );
    // From another host: the same endpoint's /copies, through `xcopy status --target`
    // (no admin socket involved: the state directory is not this process's).
    let target = format!("http://127.0.0.1:{metrics}");
    let out = Command::new(env!("CARGO_BIN_EXE_xcopy"))
        .args(["status", "--json", "--target", &target])
        .env("XCOPYD_STATE_DIR", "/nonexistent")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let listed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let copies = listed["copies"].as_array().unwrap();
    assert_eq!(copies.len(), 2, "{listed}");
    assert!(copies.iter().all(|c| c["state"] == "good"), "{listed}");
    let id = copies[0]["id"].as_u64().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_xcopy"))
        .args(["status", "--target", &target, "--watch", &id])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(" good "),
        "{out:?}"
    );
    // Read-only: abort is the admin socket's, not the network's.
    let out = Command::new(env!("CARGO_BIN_EXE_xcopy"))
        .args(["abort", "--target", &target, &id])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "abort takes no --target");
}
