//! `xcopy backup` and `xcopy restore` as a user runs them (the binaries, an inventory in a
//! temp dir): tapes keep what they hold — a second backup is appended as the next tape file,
//! each one restorable by its file number byte for byte, overwriting only when asked — and
//! one process owns an image: a backup to a tape another process holds changes nothing.
//! Every image is parsed by an independent SIMH reader (below).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

// ---------------------------------------------------------------- independent SIMH reader

#[derive(Clone, Debug, PartialEq, Eq)]
enum Rec {
    Data(Vec<u8>),
    Mark,
}

/// A SIMH .tap image, strictly: complete records, equal trailing lengths, nothing after.
fn simh(bytes: &[u8]) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut p = 0usize;
    while p < bytes.len() {
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let len = word(p);
        assert_eq!(len & 0x8000_0000, 0, "marker or bad record at {p}");
        if len == 0 {
            out.push(Rec::Mark);
            p += 4;
            continue;
        }
        let n = len as usize;
        let data = bytes[p + 4..p + 4 + n].to_vec();
        let q = p + 4 + n + n % 2;
        assert_eq!(word(q), len, "trailing length at {q}");
        out.push(Rec::Data(data));
        p = q + 4;
    }
    out
}

// ---------------------------------------------------------------- fixtures

struct Setup {
    dir: TempDir,
    inventory: PathBuf,
}

impl Setup {
    /// disk0 (8 MiB of a pattern no two 512-byte blocks share) and tape0 (variable mode,
    /// `capacity` bytes if given).
    fn new(capacity: Option<u64>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = vec![0u8; 8 << 20];
        for (i, chunk) in disk.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&(i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
        }
        std::fs::write(dir.path().join("disk0.img"), &disk).unwrap();
        let capacity = capacity.map_or(String::new(), |c| format!("capacity = {c}\n"));
        let inventory = dir.path().join("inv.toml");
        std::fs::write(
            &inventory,
            format!(
                "[[device]]\nname = \"disk0\"\nkind = \"disk\"\npath = \"disk0.img\"\n\
                 designator = \"naa.5001405a1b2c3d01\"\n\
                 [[device]]\nname = \"tape0\"\nkind = \"tape\"\npath = \"tape0.tap\"\n\
                 designator = \"naa.5001405a1b2c3d02\"\n{capacity}"
            ),
        )
        .unwrap();
        Self { dir, inventory }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn disk(&self, lba: u64, blocks: u64) -> Vec<u8> {
        let all = std::fs::read(self.path("disk0.img")).unwrap();
        all[(lba * 512) as usize..((lba + blocks) * 512) as usize].to_vec()
    }

    fn tape(&self) -> Vec<u8> {
        std::fs::read(self.path("tape0.tap")).unwrap_or_default()
    }

    fn xcopy(&self, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_xcopy"));
        c.arg(args[0])
            .arg("-d")
            .arg(&self.inventory)
            .args(&args[1..]);
        c.env("XCOPYD_STATE_DIR", self.dir.path());
        c.output().unwrap()
    }
}

/// The JSON object on the last line of stdout.
fn json(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The image's objects against the expected ones, said in lengths (not megabytes of bytes).
fn same(got: &[Rec], want: &[Rec]) {
    let shape = |r: &[Rec]| -> Vec<String> {
        r.iter()
            .map(|o| match o {
                Rec::Data(d) => d.len().to_string(),
                Rec::Mark => "FM".into(),
            })
            .collect()
    };
    assert_eq!(shape(got), shape(want), "objects on the tape");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(g == w, "object {i} differs");
    }
}

fn records(data: &[u8], record: usize) -> Vec<Rec> {
    data.chunks(record).map(|c| Rec::Data(c.to_vec())).collect()
}

// ---------------------------------------------------------------- tapes keep what they hold

#[test]
fn two_backups_in_a_row_leave_both_each_restorable_by_its_file_number() {
    let s = Setup::new(None);
    let first = s.xcopy(&[
        "backup",
        "--from",
        "disk0:0+2048",
        "--to",
        "tape0",
        "-q",
        "--json",
    ]);
    assert!(first.status.success(), "{first:?}");
    let j = json(&first);
    assert_eq!(
        (j["tape_file"].as_u64(), j["tape_block"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(j["bytes"], 1 << 20);
    // The second backup, without --filemark on the first: a filemark closes file 0 first.
    let second = s.xcopy(&[
        "backup",
        "--from",
        "disk0:4096+1024",
        "--to",
        "tape0",
        "-q",
        "--json",
    ]);
    assert!(second.status.success(), "{second:?}");
    let j = json(&second);
    assert_eq!(
        (j["tape_file"].as_u64(), j["tape_block"].as_u64()),
        (Some(1), Some(5))
    );
    let mut want = records(&s.disk(0, 2048), 256 << 10);
    want.push(Rec::Mark);
    want.extend(records(&s.disk(4096, 1024), 256 << 10));
    same(&simh(&s.tape()), &want);
    // A third one, after a backup that ended with --filemark, needs no closing filemark.
    let third = s.xcopy(&[
        "backup",
        "--from",
        "disk0:100+1",
        "--to",
        "tape0",
        "-q",
        "--filemark",
    ]);
    assert!(third.status.success());
    let stdout = String::from_utf8_lossy(&third.stdout);
    assert!(
        stdout.contains("backup to tape file 2, starting at block 8 (after a filemark"),
        "{stdout}"
    );
    let fourth = s.xcopy(&[
        "backup",
        "--from",
        "disk0:200+1",
        "--to",
        "tape0",
        "-q",
        "--json",
    ]);
    let j = json(&fourth);
    assert_eq!(
        (j["tape_file"].as_u64(), j["tape_block"].as_u64()),
        (Some(3), Some(10))
    );

    // Each restores by its file number, byte for byte, wherever the tape was left.
    for (file, lba, blocks) in [
        (1u32, 4096u64, 1024u64),
        (0, 0, 2048),
        (3, 200, 1),
        (2, 100, 1),
    ] {
        let target = format!("disk0:10000+{blocks}");
        let out = s.xcopy(&[
            "restore",
            "--from",
            "tape0",
            "--file",
            &file.to_string(),
            "--to",
            &target,
            "-q",
        ]);
        assert!(out.status.success(), "file {file}: {out:?}");
        assert!(
            s.disk(10000, blocks) == s.disk(lba, blocks),
            "tape file {file}"
        );
    }
    // There is no file 4 (the tape ends in file 3): nothing is written to the disk.
    let before = s.disk(10000, 1);
    let out = s.xcopy(&[
        "restore",
        "--from",
        "tape0",
        "--file",
        "4",
        "--to",
        "disk0:10000+1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no tape file 4"), "{err}");
    assert_eq!(s.disk(10000, 1), before);
}

#[test]
fn overwrite_and_position_write_over_only_what_they_say() {
    let s = Setup::new(None);
    for lba in [0, 512, 1024] {
        let from = format!("disk0:{lba}+512");
        let out = s.xcopy(&[
            "backup",
            "--from",
            &from,
            "--to",
            "tape0",
            "-q",
            "--filemark",
        ]);
        assert!(out.status.success());
    }
    // --position 1: file 1 and everything after it are replaced; file 0 stays.
    let out = s.xcopy(&[
        "backup",
        "--from",
        "disk0:2000+1",
        "--to",
        "tape0",
        "--position",
        "1",
        "-q",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let j = json(&out);
    assert_eq!(
        (j["tape_file"].as_u64(), j["tape_block"].as_u64()),
        (Some(1), Some(2))
    );
    let mut want = records(&s.disk(0, 512), 256 << 10);
    want.push(Rec::Mark);
    want.extend(records(&s.disk(2000, 1), 256 << 10));
    same(&simh(&s.tape()), &want);
    // --position past the last file is refused before anything is written.
    let before = s.tape();
    let out = s.xcopy(&[
        "backup",
        "--from",
        "disk0:0+1",
        "--to",
        "tape0",
        "--position",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(s.tape(), before);
    // --overwrite starts again from the beginning.
    let out = s.xcopy(&[
        "backup",
        "--from",
        "disk0:3000+1",
        "--to",
        "tape0",
        "--overwrite",
        "-q",
        "--json",
    ]);
    let j = json(&out);
    assert_eq!(
        (j["tape_file"].as_u64(), j["tape_block"].as_u64()),
        (Some(0), Some(0))
    );
    same(&simh(&s.tape()), &records(&s.disk(3000, 1), 512));
    // The two are exclusive.
    let out = s.xcopy(&[
        "backup",
        "--from",
        "disk0:0+1",
        "--to",
        "tape0",
        "--overwrite",
        "--position",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn an_end_of_medium_abort_reports_the_bytes_on_the_tape() {
    // 3 MB of medium, early warning at 2 MB: the copy stops at the record that crosses it.
    let s = Setup::new(Some(3_000_000));
    let out = s.xcopy(&["backup", "--from", "disk0", "--to", "tape0", "-q", "--json"]);
    assert_eq!(out.status.code(), Some(10), "{out:?}");
    let j = json(&out);
    let on_tape: usize = simh(&s.tape())
        .iter()
        .map(|r| match r {
            Rec::Data(d) => d.len(),
            Rec::Mark => 0,
        })
        .sum();
    assert!(on_tape > 0);
    assert_eq!(j["bytes"].as_u64(), Some(on_tape as u64));
    assert_eq!(
        (j["sense_key"].as_u64(), j["asc"].as_u64()),
        (Some(10), Some(0x0d))
    );
}

// ---------------------------------------------------------------- one owner per image

/// Waits until `cond` holds, or panics after `secs` seconds.
fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_backup_to_a_tape_the_daemon_holds_fails_and_changes_nothing() {
    let s = Setup::new(None);
    let first = s.xcopy(&["backup", "--from", "disk0:0+64", "--to", "tape0", "-q"]);
    assert!(first.status.success());
    let before = s.tape();
    let config = s.path("xcopyd.toml");
    let inventory = std::fs::read_to_string(&s.inventory).unwrap();
    std::fs::write(
        &config,
        format!("[iscsi]\nlisten = \"127.0.0.1:0\"\n{inventory}[[lun]]\ndevice = \"tape0\"\n"),
    )
    .unwrap();
    let log = s.path("xcopyd.log");
    let daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_xcopyd"))
            .arg("--config")
            .arg(&config)
            .env("XCOPYD_STATE_DIR", s.dir.path())
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = daemon.0.id();
    wait_for(20, "the daemon to hold tape0.tap", || {
        held_by(&s.path("tape0.tap"), pid)
    });
    // The daemon opened (and holds) every device of its inventory, disk0 too.
    let out = s.xcopy(&["backup", "--from", "disk0:0+64", "--to", "tape0", "-q"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let message = format!("disk0.img is in use by xcopyd (pid {pid})");
    assert!(err.contains(&message), "{err}");
    assert_eq!(err.matches(&message).count(), 1, "said once: {err}");
    // With a disk of its own, the tape is what is refused.
    std::fs::copy(s.path("disk0.img"), s.path("disk1.img")).unwrap();
    let other = s.path("other.toml");
    std::fs::write(
        &other,
        "[[device]]\nname = \"disk1\"\nkind = \"disk\"\npath = \"disk1.img\"\n\
         [[device]]\nname = \"tape0\"\nkind = \"tape\"\npath = \"tape0.tap\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xcopy"))
        .args(["backup", "-q", "--from", "disk1", "--to", "tape0", "-d"])
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("tape0.tap is in use by xcopyd (pid {pid})")),
        "{err}"
    );
    assert_eq!(s.tape(), before, "the image is unchanged");
    drop(daemon);
    let after = s.xcopy(&["backup", "--from", "disk0:0+64", "--to", "tape0", "-q"]);
    assert!(
        after.status.success(),
        "released with the daemon: {after:?}"
    );
}

/// Whether /proc/locks shows `pid` holding a flock on `path`'s inode.
fn held_by(path: &Path, pid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    locks.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.iter().position(|x| *x == "FLOCK").is_some_and(|at| {
            f.get(at + 3) == Some(&pid.to_string().as_str())
                && f.get(at + 4)
                    .is_some_and(|id| id.ends_with(&format!(":{}", meta.ino())))
        })
    })
}

#[test]
fn a_tape_held_in_this_process_refuses_a_cli_backup_naming_this_pid() {
    use xcopyd::device::tape::{EmulatedTape, TapeConfig};
    let s = Setup::new(None);
    let (tape, _) =
        EmulatedTape::open("tape0", s.path("tape0.tap"), TapeConfig::default()).unwrap();
    let out = s.xcopy(&["backup", "--from", "disk0:0+64", "--to", "tape0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let me = std::process::id();
    assert!(err.contains(&format!("(pid {me})")), "{err}");
    assert!(s.tape().is_empty(), "nothing written");
    drop(tape);
}

#[test]
fn devices_does_not_create_images() {
    let s = Setup::new(None);
    let out = s.xcopy(&["devices"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        !s.path("tape0.tap").exists(),
        "xcopy devices created the tape image"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("tape0") && text.contains("not created yet"),
        "{text}"
    );
    // The embedded default (no -d): nothing appears in the state directory either.
    let state = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xcopy"))
        .arg("devices")
        .env("XCOPYD_STATE_DIR", state.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0);
}

// ---------------------------------------------------------------- the same through --target

#[test]
fn remote_backups_append_too_and_restore_by_file_number() {
    use xcopyd::daemon::{Daemon, DaemonConfig};
    let s = Setup::new(None);
    let inventory = std::fs::read_to_string(&s.inventory).unwrap();
    let text = format!(
        "[iscsi]\nlisten = \"127.0.0.1:0\"\n{inventory}\
         [[lun]]\ndevice = \"disk0\"\n[[lun]]\ndevice = \"tape0\"\n"
    );
    // tape1 is in the inventory but not a LUN: the CLI can only name it.
    let text = format!(
        "{text}[[device]]\nname = \"tape1\"\nkind = \"tape\"\npath = \"tape1.tap\"\n\
         designator = \"naa.5001405a1b2c3d07\"\n"
    );
    let daemon = Daemon::start(DaemonConfig::parse(&text, s.dir.path()).unwrap()).unwrap();
    let url = format!(
        "iscsi://{}/iqn.2026-11.org.xcopyd:mover/0",
        daemon.local_addr()
    );
    let remote = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_xcopy"))
            .args(args)
            .args(["--target", &url, "-q"])
            .output()
            .unwrap()
    };
    for (lba, file, block) in [(0u64, 0u64, 0u64), (4096, 1, 5)] {
        let from = format!("lun:0:{lba}+2048");
        let out = remote(&["backup", "--from", &from, "--to", "lun:1", "--json"]);
        assert!(out.status.success(), "{out:?}");
        let j = json(&out);
        assert_eq!(
            (j["tape_file"].as_u64(), j["tape_block"].as_u64()),
            (Some(file), Some(block))
        );
    }
    // By designator, the tape is still found to be LUN 1 and its end checked.
    let out = remote(&[
        "backup",
        "--from",
        "lun:0:100+1",
        "--to",
        "naa.5001405a1b2c3d02",
        "--json",
    ]);
    let j = json(&out);
    assert_eq!(
        (j["tape_file"].as_u64(), j["tape_block"].as_u64()),
        (Some(2), Some(10))
    );
    let out = remote(&[
        "restore",
        "--from",
        "lun:1",
        "--file",
        "1",
        "--to",
        "lun:0:8192+2048",
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = remote(&[
        "restore",
        "--from",
        "lun:1",
        "--file",
        "7",
        "--to",
        "lun:0:8192+1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    // A tape that is not a LUN: the list alone positions it (SPACE to end of data), and
    // each backup ends with a filemark, as the end cannot be checked. A restore of file 0
    // in between leaves the tape mid-way, which the next backup's SPACE must not mind.
    let tape1 = "naa.5001405a1b2c3d07";
    for (lba, check) in [(300u64, true), (400, false)] {
        let from = format!("lun:0:{lba}+4");
        let out = remote(&["backup", "--from", &from, "--to", tape1, "--json"]);
        assert!(out.status.success(), "{out:?}");
        assert!(json(&out)["tape_file"].is_null());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is not a LUN of the target"), "{err}");
        if check {
            let out = remote(&[
                "restore",
                "--from",
                tape1,
                "--file",
                "0",
                "--to",
                "lun:0:12000+4",
            ]);
            assert!(out.status.success(), "{out:?}");
        }
    }
    daemon.shutdown(Duration::from_secs(5));
    let tape1 = std::fs::read(s.path("tape1.tap")).unwrap();
    let want1 = vec![
        Rec::Data(s.disk(300, 4)),
        Rec::Mark,
        Rec::Data(s.disk(400, 4)),
        Rec::Mark,
    ];
    same(&simh(&tape1), &want1);
    assert!(
        s.disk(12000, 4) == s.disk(300, 4),
        "restored from tape1 file 0"
    );
    assert!(
        s.disk(8192, 2048) == s.disk(4096, 2048),
        "restored tape file 1"
    );
    let mut want = records(&s.disk(0, 2048), 256 << 10);
    want.push(Rec::Mark);
    want.extend(records(&s.disk(4096, 2048), 256 << 10));
    want.push(Rec::Mark);
    want.extend(records(&s.disk(100, 1), 512));
    same(&simh(&s.tape()), &want);
}
