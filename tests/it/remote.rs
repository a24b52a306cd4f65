//! The daemon in process, reached through xcopyd's own initiator
//! ([`xcopyd::iscsi::initiator`]): login, WRITE/READ through immediate data and
//! R2T, an EXTENDED COPY (02h) running while RECEIVE COPY RESULTS polls on the same
//! session, and a scaled-down stress run (4 sessions x 10 copies of 256 KiB, each in its
//! own region) whose destination bytes are checked.

use std::path::Path;
use std::time::Duration;

use crate::common::list::xcopy_cdb;
use xcopyd::daemon::{Daemon, DaemonConfig};
use xcopyd::iscsi::initiator::{LoginOptions, Session};
use xcopyd::scsi::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
use xcopyd::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
use xcopyd::scsi::{Designator, ListIdUsage, ParameterList};

const TARGET: &str = "iqn.2026-11.org.xcopyd:mover";
const SRC: &str = "naa.5001405a1b2c3d01";
const DST: &str = "naa.5001405a1b2c3d03";

fn config(dir: &Path) -> DaemonConfig {
    let text = format!(
        r#"
[iscsi]
listen = "127.0.0.1:0"
target = "{TARGET}"
[[device]]
name = "disk0"
kind = "disk"
path = "disk0.img"
size = "16MiB"
designator = "{SRC}"
[[device]]
name = "disk1"
kind = "disk"
path = "disk1.img"
size = "16MiB"
designator = "{DST}"
[[lun]]
device = "disk0"
[[lun]]
device = "disk1"
"#
    );
    DaemonConfig::parse(&text, dir).unwrap()
}

fn disk(designator: &str) -> CscdDescriptor {
    CscdDescriptor {
        nul: false,
        peripheral_device_type: 0,
        relative_initiator_port: 0,
        identifier: CscdIdentifier::Identification {
            designator: Designator::parse_name(designator).unwrap(),
        },
        parameters: DeviceParameters::Block {
            pad: false,
            block_length: 512,
        },
    }
}

/// One 02h segment: `blocks` blocks from SRC at `lba` to DST at the same LBA.
fn copy_list(id: u8, lba: u64, blocks: u16) -> Vec<u8> {
    ParameterList {
        list_identifier: id,
        sequential_striped: false,
        list_id_usage: ListIdUsage::Hold,
        priority: 1,
        cscds: vec![disk(SRC), disk(DST)],
        segments: vec![SegmentDescriptor {
            cat: false,
            body: Segment::BlockToBlock {
                hold: false,
                dc: false,
                source: CscdId(0),
                destination: CscdId(1),
                blocks,
                source_lba: lba,
                destination_lba: lba,
            },
        }],
        inline_data: Vec::new(),
    }
    .encode()
}

fn copy_status_cdb(id: u8) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x84;
    c[2] = id;
    c[10..14].copy_from_slice(&12u32.to_be_bytes());
    c
}

fn write16(lba: u64, blocks: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x8a;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&blocks.to_be_bytes());
    c
}

fn read16(lba: u64, blocks: u32) -> [u8; 16] {
    let mut c = write16(lba, blocks);
    c[0] = 0x88;
    c
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|n| (n.wrapping_mul(2654435761) >> 13) as u8 ^ seed as u8)
        .collect()
}

/// Clears the POWER ON, RESET unit attention on both LUNs.
fn clear_unit_attention(s: &Session) {
    for lun in 0..2 {
        assert_eq!(s.command(lun, &[0; 6], &[], 0).unwrap().status, 2);
        assert_eq!(s.command(lun, &[0; 6], &[], 0).unwrap().status, 0);
    }
}

#[test]
fn extended_copy_with_copy_status_polled_on_the_same_session() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(config(dir.path())).unwrap();
    let s = Session::connect(daemon.local_addr(), &LoginOptions::new(TARGET)).unwrap();
    clear_unit_attention(&s);

    // 2 MiB through immediate data, unsolicited Data-Out and R2T; read back.
    let data = pattern(4096 * 512, 1);
    let r = s.command(0, &write16(100, 4096), &data, 0).unwrap();
    assert_eq!((r.status, r.residual), (0, 0));
    let r = s.command(0, &read16(100, 4096), &[], data.len()).unwrap();
    assert_eq!(r.status, 0);
    assert!(r.data_in == data, "read back what was written");

    // The copy runs on one thread while this one polls COPY STATUS for the same list ID.
    let list = copy_list(9, 100, 4096);
    std::thread::scope(|scope| {
        let copy = scope.spawn(|| s.command(0, &xcopy_cdb(list.len()), &list, 0));
        let mut polls = 0;
        while !copy.is_finished() {
            let r = s.command(0, &copy_status_cdb(9), &[], 12).unwrap();
            // GOOD with a status page, or 05/24/00 before the list ID is known.
            assert!(r.status == 0 || r.status == 2, "{r:?}");
            polls += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        let r = copy.join().unwrap().unwrap();
        assert_eq!((r.status, r.sense.len()), (0, 0), "{r:?}");
        assert!(polls > 0);
    });
    let r = s.command(0, &copy_status_cdb(9), &[], 12).unwrap();
    assert_eq!(r.status, 0);
    assert_eq!(
        r.data_in,
        [0, 0, 0, 8, 0x01, 0, 1, 0, 0, 0x20, 0, 0],
        "completed, 1 segment, 2 MiB in bytes"
    );
    let r = s.command(1, &read16(100, 4096), &[], data.len()).unwrap();
    assert!(r.data_in == data, "destination holds the source bytes");
    s.logout().unwrap();
    daemon.shutdown(Duration::from_secs(1));
}

#[test]
fn stress_4_sessions_x_10_copies_each_in_its_own_region() {
    const SESSIONS: u64 = 4;
    const COPIES: u64 = 10;
    const BLOCKS: u16 = 512;
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(config(dir.path())).unwrap();
    let addr = daemon.local_addr();
    std::thread::scope(|scope| {
        for n in 0..SESSIONS {
            scope.spawn(move || {
                let s = Session::connect(addr, &LoginOptions::new(TARGET)).unwrap();
                clear_unit_attention(&s);
                let base = n * COPIES * u64::from(BLOCKS);
                let bytes = usize::from(BLOCKS) * 512;
                for k in 0..COPIES {
                    let lba = base + k * u64::from(BLOCKS);
                    let data = pattern(bytes, (n * 100 + k) as u32);
                    let r = s.command(0, &write16(lba, BLOCKS.into()), &data, 0);
                    assert_eq!(r.unwrap().status, 0);
                    let id = (k % 200) as u8 + 1;
                    let list = copy_list(id, lba, BLOCKS);
                    let r = s.command(0, &xcopy_cdb(list.len()), &list, 0);
                    assert_eq!(r.unwrap().status, 0, "session {n} copy {k}");
                    let r = s.command(0, &copy_status_cdb(id), &[], 12).unwrap();
                    assert_eq!(r.data_in[4], 0x01, "session {n} copy {k}");
                }
                for k in 0..COPIES {
                    let lba = base + k * u64::from(BLOCKS);
                    let r = s.command(1, &read16(lba, BLOCKS.into()), &[], bytes);
                    let want = pattern(bytes, (n * 100 + k) as u32);
                    assert!(r.unwrap().data_in == want, "session {n} copy {k} data");
                }
                s.logout().unwrap();
            });
        }
    });
    daemon.shutdown(Duration::from_secs(1));
}

#[test]
fn chap_login_then_a_command_and_a_wrong_secret_refused() {
    use std::sync::Arc;
    use xcopyd::device::ScsiDevice;
    use xcopyd::frontend::iscsi::auth::{Chap, Credentials, Initiators};
    use xcopyd::frontend::iscsi::{self, TargetConfig};
    use xcopyd::frontend::testing::{MemoryDisk, RecordingCopyService};
    use xcopyd::frontend::Dispatcher;

    let luns: Vec<Arc<dyn ScsiDevice>> = vec![Arc::new(MemoryDisk::new("disk0", 512, 64))];
    let d = Arc::new(Dispatcher::new(luns, RecordingCopyService::new()));
    let mut config = TargetConfig::new("127.0.0.1:0", TARGET);
    let name = LoginOptions::new(TARGET).initiator_name;
    let credentials = Credentials {
        chap: Chap {
            user: "backup".into(),
            secret: b"sixteen-bytes-ok".to_vec(),
        },
        mutual: None,
    };
    config.initiators = Arc::new(Initiators::listed([(name, credentials)]).unwrap());
    let t = iscsi::start(config, d).unwrap();
    let mut opts = LoginOptions::new(TARGET);
    opts.chap = Some(("backup".into(), b"sixteen-bytes-ok".to_vec()));
    let s = Session::connect(t.local_addr(), &opts).unwrap();
    let r = s.command(0, &[0x12, 0, 0, 0, 36, 0], &[], 36).unwrap();
    assert_eq!((r.status, r.data_in.len(), r.data_in[0]), (0, 36, 0));
    s.logout().unwrap();

    opts.chap = Some(("backup".into(), b"not-the-secret!!".to_vec()));
    let e = Session::connect(t.local_addr(), &opts).err().unwrap();
    assert!(
        matches!(
            e,
            xcopyd::iscsi::initiator::InitiatorError::LoginRefused(2, 1)
        ),
        "{e}"
    );
}

/// Runs the `xcopy` binary; returns (exit status, stdout, the last line parsed as JSON with
/// the timing field removed).
fn xcopy(args: &[&str]) -> (i32, String, serde_json::Value) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xcopy"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().unwrap_or_default();
    let mut json: serde_json::Value = serde_json::from_str(last).unwrap_or_default();
    if let Some(o) = json.as_object_mut() {
        o.remove("seconds");
    }
    (out.status.code().unwrap_or(-1), stdout, json)
}

#[test]
fn cli_run_and_results_against_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(config(dir.path())).unwrap();
    let url = format!("iscsi://{}/{TARGET}/0", daemon.local_addr());
    let s = Session::connect(daemon.local_addr(), &LoginOptions::new(TARGET)).unwrap();
    clear_unit_attention(&s);
    let data = pattern(256 * 512, 7);
    assert_eq!(s.command(0, &write16(40, 256), &data, 0).unwrap().status, 0);

    let list = dir.path().join("copy.bin");
    std::fs::write(&list, copy_list(5, 40, 256)).unwrap();
    let (code, stdout, json) = xcopy(&[
        "run",
        "-q",
        "--json",
        "--target",
        &url,
        list.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(
        json,
        serde_json::json!({"status": "good", "sense_key": null, "asc": null, "ascq": null,
            "field_pointer": null, "segment": null, "bytes": 131072}),
        "{stdout}"
    );
    assert!(
        stdout.starts_with("1 segments processed, 131072 bytes copied\n"),
        "{stdout}"
    );
    let r = s.command(1, &read16(40, 256), &[], data.len()).unwrap();
    assert!(r.data_in == data, "destination bytes");

    // Held results belong to the I_T nexus that ran the copy (SPC-3 6.18), and `xcopy run`
    // logged out: a new session asking about list 5 gets 05/24/00 at CDB byte 2.
    let (code, stdout, json) = xcopy(&[
        "results",
        "--json",
        "--target",
        &url,
        "--list-id",
        "5",
        "--sa",
        "copy-status",
    ]);
    assert_eq!(code, 5, "{stdout}");
    assert_eq!(
        json,
        serde_json::json!({"status": "check_condition", "sense_key": 5, "asc": 0x24, "ascq": 0,
            "field_pointer": 2, "segment": null, "bytes": 0, "page": null, "data": ""}),
        "{stdout}"
    );
    let (code, stdout, json) = xcopy(&[
        "results",
        "--json",
        "--target",
        &url,
        "--sa",
        "operating-parameters",
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(json["status"], "good");
    // --json: the JSON object alone on standard output, the page decoded inside it.
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert_eq!(json["page"]["service_action"], "operating_parameters");
    assert_eq!(json["page"]["max_segment_descriptors"], 1024);
    assert_eq!(json["page"]["snlid"], true);
    // Without it: T10's field names, codes in hex.
    let (code, stdout, _) = xcopy(&["results", "--target", &url, "--sa", "operating-parameters"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("    Maximum segment descriptor count: 1024\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Implemented descriptor list: 0x"),
        "{stdout}"
    );
    assert!(
        json["data"]
            .as_str()
            .unwrap()
            .starts_with("000000430100000000400400"),
        "{stdout}"
    );

    // -v, on any subcommand, as sg3_utils' -v: the CDB sent and what came back, on stderr
    // (stdout unchanged). RECEIVE COPY RESULTS, OPERATING PARAMETERS (03h), 64 KiB.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xcopy"))
        .args([
            "results",
            "-v",
            "--target",
            &url,
            "--sa",
            "operating-parameters",
        ])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cdb=84 03 00 00 00 00 00 00 00 00 00 01 00 00 00 00"),
        "{err}"
    );
    assert!(
        err.contains("iSCSI response") && err.contains("status=00h"),
        "{err}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), stdout);
    // Without -v: nothing on stderr for a good command.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xcopy"))
        .args(["results", "--target", &url, "--sa", "operating-parameters"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");

    // A CSCD naming a device the daemon does not have: COPY ABORTED, 0D/02, exit 10.
    let mut bad = copy_list(6, 40, 8);
    // The destination CSCD's 8-byte NAA designator sits at list offset 16 + 32 + 8.
    let at = 16 + 32 + 8;
    assert_eq!(
        bad[at..at + 8],
        [0x50, 0x01, 0x40, 0x5a, 0x1b, 0x2c, 0x3d, 0x03]
    );
    bad[at + 7] = 0x77;
    std::fs::write(&list, &bad).unwrap();
    let (code, stdout, json) = xcopy(&[
        "run",
        "-q",
        "--json",
        "--target",
        &url,
        list.to_str().unwrap(),
    ]);
    assert_eq!(code, 10, "{stdout}");
    assert_eq!(
        json,
        serde_json::json!({"status": "check_condition", "sense_key": 10, "asc": 13, "ascq": 2,
            "field_pointer": 48, "segment": 0, "bytes": 0}),
        "{stdout}"
    );
    assert!(stdout.contains("COPY ABORTED"), "{stdout}");
    s.logout().unwrap();
    daemon.shutdown(Duration::from_secs(1));
}

const TAPE: &str = "naa.5001405a1b2c3d02";

/// disk0, disk1 and a variable-mode tape0 as LUNs 0, 1 and 2.
fn tape_config(dir: &Path) -> DaemonConfig {
    let text = format!(
        r#"
[iscsi]
listen = "127.0.0.1:0"
target = "{TARGET}"
[[device]]
name = "disk0"
kind = "disk"
path = "disk0.img"
size = "4MiB"
designator = "{SRC}"
[[device]]
name = "disk1"
kind = "disk"
path = "disk1.img"
size = "4MiB"
designator = "{DST}"
[[device]]
name = "tape0"
kind = "tape"
path = "tape0.tap"
block_size = 0
designator = "{TAPE}"
[[lun]]
device = "disk0"
[[lun]]
device = "disk1"
[[lun]]
device = "tape0"
"#
    );
    DaemonConfig::parse(&text, dir).unwrap()
}

/// A strict, independent SIMH .tap parse: (record lengths and bytes, None for a filemark).
fn parse_simh(bytes: &[u8]) -> Vec<Option<Vec<u8>>> {
    let mut out = Vec::new();
    let mut p = 0usize;
    while p < bytes.len() {
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let len = word(p);
        assert_eq!(len & 0x8000_0000, 0, "bad record or end-of-medium at {p}");
        if len == 0 {
            out.push(None);
            p += 4;
            continue;
        }
        let n = len as usize;
        let data = bytes[p + 4..p + 4 + n].to_vec();
        let mut q = p + 4 + n;
        if n % 2 == 1 {
            assert_eq!(bytes[q], 0, "pad byte at {q}");
            q += 1;
        }
        assert_eq!(word(q), len, "trailing length at {q}");
        out.push(Some(data));
        p = q + 4;
    }
    assert_eq!(p, bytes.len());
    out
}

#[test]
fn cli_backup_and_restore_through_the_remote_copy_manager() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(tape_config(dir.path())).unwrap();
    let url = format!("iscsi://{}/{TARGET}/0", daemon.local_addr());
    let s = Session::connect(daemon.local_addr(), &LoginOptions::new(TARGET)).unwrap();
    clear_unit_attention(&s);
    // 300 blocks at LBA 100: two 64 KiB records and one of 44 blocks (22528 bytes).
    let data = pattern(300 * 512, 9);
    assert_eq!(
        s.command(0, &write16(100, 300), &data, 0).unwrap().status,
        0
    );

    let (code, stdout, json) = xcopy(&[
        "backup",
        "-q",
        "--json",
        "--target",
        &url,
        "--from",
        "lun:0:100+300",
        "--to",
        "lun:2",
        "-t",
        "64k",
        "--filemark",
    ]);
    assert_eq!(code, 0, "{stdout}");
    // A blank tape: the backup is tape file 0 from block 0 (SPACE to end of data first).
    assert_eq!(
        json,
        serde_json::json!({"status": "good", "sense_key": null, "asc": null, "ascq": null,
            "field_pointer": null, "segment": null, "bytes": 153600,
            "tape_file": 0, "tape_block": 0}),
        "{stdout}"
    );
    assert!(
        stdout.starts_with("4 segments processed, 153600 bytes copied\n"),
        "{stdout}"
    );
    let image = std::fs::read(dir.path().join("tape0.tap")).unwrap();
    assert_eq!(
        parse_simh(&image),
        vec![
            Some(data[..65536].to_vec()),
            Some(data[65536..131072].to_vec()),
            Some(data[131072..].to_vec()),
            None,
        ]
    );

    let (code, stdout, json) = xcopy(&[
        "restore",
        "-q",
        "--json",
        "--target",
        &url,
        "--from",
        "lun:2",
        "--to",
        "lun:1:500+300",
        "-t",
        "64k",
        "--rewind",
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(
        json,
        serde_json::json!({"status": "good", "sense_key": null, "asc": null, "ascq": null,
            "field_pointer": null, "segment": null, "bytes": 153600}),
        "{stdout}"
    );
    let r = s.command(1, &read16(499, 302), &[], 302 * 512).unwrap();
    assert_eq!(r.status, 0);
    assert!(r.data_in[..512] == [0; 512], "block before the range");
    assert!(r.data_in[512..301 * 512] == data[..], "restored bytes");
    assert!(r.data_in[301 * 512..] == [0; 512], "block after the range");

    // A LUN the target does not have: exit 1, the field and the LUN named.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xcopy"))
        .args(["backup", "-q", "--target", &url, "--from", "lun:0:0+8"])
        .args(["--to", "lun:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr, "xcopy: --to lun:9: the target has no LUN 9\n");
    // The same restore with both ends named by designator (resolved to LUNs 2 and 1).
    let (code, stdout, json) = xcopy(&[
        "restore",
        "-q",
        "--json",
        "--target",
        &url,
        "--from",
        TAPE,
        "--to",
        &format!("{DST}:1000+300"),
        "-t",
        "64k",
        "--rewind",
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(json["bytes"], 153600, "{stdout}");
    let r = s.command(1, &read16(1000, 300), &[], 300 * 512).unwrap();
    assert!(
        r.status == 0 && r.data_in == data,
        "restored bytes by designator"
    );

    // A disk named by a designator the target does not have: its block length is needed.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xcopy"))
        .args(["backup", "-q", "--target", &url, "--from"])
        .args(["naa.5001405a1b2c3d77:0+8", "--to", "lun:2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "xcopy: --from naa.5001405a1b2c3d77:0+8: --block-length: naa.5001405a1b2c3d77 \
         is not a LUN of the target, give the disk's logical block length\n"
    );
    // The tape LUN given as the disk.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xcopy"))
        .args(["restore", "-q", "--target", &url, "--from", "lun:2"])
        .args(["--to", "lun:2:0+8"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "xcopy: --to lun:2:0+8: LUN 2 is not a disk (peripheral device type 0x01)\n"
    );
    s.logout().unwrap();
    daemon.shutdown(Duration::from_secs(1));
}

/// The shared list builder's local path, for comparison: the same backup and restore over
/// an inventory give the same tape image and disk bytes.
#[test]
fn cli_backup_and_restore_locally_build_the_same_lists() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(300 * 512, 9);
    let mut image = vec![0u8; 4 << 20];
    image[100 * 512..400 * 512].copy_from_slice(&data);
    std::fs::write(dir.path().join("disk0.img"), &image).unwrap();
    std::fs::write(dir.path().join("disk1.img"), vec![0u8; 4 << 20]).unwrap();
    let inventory = dir.path().join("inventory.toml");
    let text = format!(
        "[[device]]\nname = \"disk0\"\nkind = \"disk\"\npath = \"{0}/disk0.img\"\nsize = \"4MiB\"\n\
         designator = \"{SRC}\"\n[[device]]\nname = \"disk1\"\nkind = \"disk\"\n\
         path = \"{0}/disk1.img\"\nsize = \"4MiB\"\ndesignator = \"{DST}\"\n[[device]]\n\
         name = \"tape0\"\nkind = \"tape\"\npath = \"{0}/tape0.tap\"\nblock_size = 0\n\
         designator = \"{TAPE}\"\n",
        dir.path().display()
    );
    std::fs::write(&inventory, text).unwrap();
    let inv = inventory.to_str().unwrap();
    let (code, stdout, json) = xcopy(&[
        "backup",
        "-q",
        "--json",
        "-d",
        inv,
        "--from",
        "disk0:100+300",
        "--to",
        "tape0",
        "-t",
        "64k",
        "--filemark",
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(json["bytes"], 153600, "{stdout}");
    let tape = std::fs::read(dir.path().join("tape0.tap")).unwrap();
    assert_eq!(
        parse_simh(&tape),
        vec![
            Some(data[..65536].to_vec()),
            Some(data[65536..131072].to_vec()),
            Some(data[131072..].to_vec()),
            None,
        ]
    );
    let (code, stdout, _) = xcopy(&[
        "restore",
        "-q",
        "--json",
        "-d",
        inv,
        "--from",
        "tape0",
        "--to",
        "disk1:500+300",
        "-t",
        "64k",
        "--rewind",
    ]);
    assert_eq!(code, 0, "{stdout}");
    let disk1 = std::fs::read(dir.path().join("disk1.img")).unwrap();
    assert!(disk1[500 * 512..800 * 512] == data[..], "restored bytes");
    assert!(disk1[..500 * 512].iter().all(|&b| b == 0));
    assert!(disk1[800 * 512..].iter().all(|&b| b == 0));
}

/// `--buffers` sets the copy engine's pool: a backup long enough for the ring (6 MiB) with the
/// smallest pool leaves exactly the disk's bytes on the tape; a pool out of range is refused
/// with a message naming the option, before anything is opened.
#[test]
fn cli_buffers_sets_the_pool_and_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(6 << 20, 3);
    std::fs::write(dir.path().join("disk0.img"), &data).unwrap();
    let inventory = dir.path().join("inventory.toml");
    let text = format!(
        "[[device]]\nname = \"disk0\"\nkind = \"disk\"\npath = \"{0}/disk0.img\"\n\
         designator = \"{SRC}\"\n[[device]]\nname = \"tape0\"\nkind = \"tape\"\n\
         path = \"{0}/tape0.tap\"\nblock_size = 0\ndesignator = \"{TAPE}\"\n",
        dir.path().display()
    );
    std::fs::write(&inventory, text).unwrap();
    let inv = inventory.to_str().unwrap();
    let args = [
        "backup", "-q", "-d", inv, "--from", "disk0", "--to", "tape0", "-t", "256k",
    ];
    let (code, stdout, _) = xcopy(&[&args[..], &["--buffers", "4"]].concat());
    assert_eq!(code, 0, "{stdout}");
    let tape = std::fs::read(dir.path().join("tape0.tap")).unwrap();
    let expected: Vec<_> = data.chunks(256 << 10).map(|r| Some(r.to_vec())).collect();
    assert!(parse_simh(&tape) == expected, "tape image");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xcopy"))
        .args([&args[..], &["--buffers", "3"]].concat())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "xcopy: --buffers: copy buffers: 3 is outside 4..=1024\n"
    );
}
