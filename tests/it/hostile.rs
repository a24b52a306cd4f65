//! The daemon against a hostile peer on its network (#14's findings F1-F9, each a regression
//! test): LUN masking on every path, CHAP that holds, and no request that can exhaust or
//! kill the daemon. Memory is measured on a daemon running as a child process (its RSS from
//! /proc), and the soak runs it under a virtual-memory limit.

use crate::common;
use crate::common::list::xcopy_cdb;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Initiator, Reply};
use xcopyd::daemon::{Daemon, DaemonConfig};
use xcopyd::iscsi::chap as auth;
use xcopyd::iscsi::pdu::{Bhs, Opcode, Pdu};
use xcopyd::iscsi::text::TextKeys;
use xcopyd::scsi::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
use xcopyd::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
use xcopyd::scsi::{Designator, ListIdUsage, ParameterList};

const TARGET: &str = "iqn.2026-11.org.xcopyd:mover";
const ALLOWED: &str = "iqn.2026-11.org.example:allowed";
const OTHER: &str = "iqn.2026-11.org.example:other";
const SECRET: &str = "the-allowed-secret";

// ---------------------------------------------------------------- helpers

/// Waits until `cond` holds, or panics after `secs` seconds.
fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The daemon binary as a child process, killed when dropped.
struct Child_ {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Child_ {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Child_ {
    /// Starts xcopyd on `config` (its [iscsi] listen is filled in), optionally under
    /// `ulimit -v KiB`, and waits until it accepts connections.
    fn start(config: &str, ulimit_kib: Option<u64>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let text = config.replace("LISTEN", &format!("127.0.0.1:{port}"));
        let path = dir.path().join("xcopyd.toml");
        std::fs::write(&path, text).unwrap();
        let bin = env!("CARGO_BIN_EXE_xcopyd");
        let log = std::fs::File::create(dir.path().join("xcopyd.log")).unwrap();
        let mut command = match ulimit_kib {
            Some(kib) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -v {kib} && exec \"$0\" --config \"$1\""))
                    .arg(bin)
                    .arg(&path);
                c
            }
            None => {
                let mut c = Command::new(bin);
                c.arg("--config").arg(&path);
                c
            }
        };
        let child = command
            .env("RUST_LOG", "info")
            .env("XCOPYD_STATE_DIR", dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut me = Self { child, addr, dir };
        wait_for(30, "the daemon to listen", || {
            assert!(
                me.child.try_wait().unwrap().is_none(),
                "xcopyd exited: {}",
                me.log()
            );
            TcpStream::connect(addr).is_ok()
        });
        me
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("xcopyd.log")).unwrap_or_default()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Resident memory, from /proc/PID/status (VmRSS, KiB).
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A disk, a masked disk and a tape, as devices of a daemon config (LISTEN filled later).
fn devices(dir: Option<&Path>) -> String {
    let at = |n: &str| dir.map_or(n.to_string(), |d| d.join(n).display().to_string());
    format!(
        r#"
[[device]]
name = "vault"
kind = "disk"
path = "{}"
size = "1MiB"
designator = "naa.5001405a1b2c3d09"
allow = ["{ALLOWED}"]
[[device]]
name = "disk1"
kind = "disk"
path = "{}"
size = "4MiB"
designator = "naa.5001405a1b2c3d03"
[[device]]
name = "tape0"
kind = "tape"
path = "{}"
designator = "naa.5001405a1b2c3d02"
[[lun]]
device = "vault"
[[lun]]
device = "disk1"
[[lun]]
device = "tape0"
"#,
        at("vault.img"),
        at("disk1.img"),
        at("tape0.tap")
    )
}

fn sense(r: &Reply) -> (u8, u8, u8) {
    Initiator::sense(r)
}

fn clear_attention(i: &mut Initiator, luns: &[u8]) {
    for &lun in luns {
        let _ = i.command(lun, &[0; 6], &[], 0);
    }
}

fn disk_cscd(designator: &str) -> CscdDescriptor {
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

/// tape0 as a variable-mode stream CSCD.
fn tape_cscd() -> CscdDescriptor {
    CscdDescriptor {
        nul: false,
        peripheral_device_type: 1,
        relative_initiator_port: 0,
        identifier: CscdIdentifier::Identification {
            designator: Designator::parse_name("naa.5001405a1b2c3d02").unwrap(),
        },
        parameters: DeviceParameters::Stream {
            pad: false,
            fixed: false,
            block_length: 0,
        },
    }
}

/// One 02h segment from CSCD 0 to CSCD 1, `blocks` blocks at `lba` on both.
fn copy_list(source: &str, destination: &str, lba: u64, blocks: u16) -> Vec<u8> {
    ParameterList {
        list_identifier: 0,
        sequential_striped: false,
        list_id_usage: ListIdUsage::NoListId,
        priority: 1,
        cscds: vec![disk_cscd(source), disk_cscd(destination)],
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

fn write10(lba: u32, blocks: u16) -> [u8; 10] {
    let [a, b, c, d] = lba.to_be_bytes();
    let [e, f] = blocks.to_be_bytes();
    [0x2a, 0, a, b, c, d, 0, e, f, 0]
}

fn read10(lba: u32, blocks: u16) -> [u8; 10] {
    let mut c = write10(lba, blocks);
    c[0] = 0x28;
    c
}

// ---------------------------------------------------------------- F1: masking

/// An initiator outside a device's allow list can neither see, read, write, copy from,
/// copy to, nor read copy results of it, by any path: the device as a LUN, named by an E4h
/// CSCD in a copy sent to another LUN, or as the receiving LUN (FFFFh).
#[test]
fn f1_a_device_is_out_of_reach_of_initiators_its_allow_list_does_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[iscsi]\nlisten = \"127.0.0.1:0\"\ntarget = \"{TARGET}\"\n{}",
        devices(None)
    );
    let daemon = Daemon::start(DaemonConfig::parse(&text, dir.path()).unwrap()).unwrap();
    let addr = daemon.local_addr();
    let mut a = Initiator::logged_in_to(addr, TARGET, ALLOWED);
    let mut o = Initiator::logged_in_to(addr, TARGET, OTHER);
    clear_attention(&mut a, &[0, 1, 2]);
    clear_attention(&mut o, &[1, 2]);
    // The allowed initiator writes a pattern to the vault.
    let secret = vec![0x5a; 512];
    assert_eq!(a.command(0, &write10(0, 1), &secret, 0).status, 0);
    // Not seen: REPORT LUNS lists 1 and 2 only, INQUIRY answers as for no LUN.
    let mut rl = [0u8; 12];
    rl[0] = 0xa0;
    rl[9] = 64;
    let r = o.command(1, &rl, &[], 64);
    assert_eq!(&r.data[..4], &16u32.to_be_bytes());
    assert_eq!((r.data[9], r.data[17]), (1, 2));
    assert_eq!(o.command(0, &[0x12, 0, 0, 0, 36, 0], &[], 36).data[0], 0x7f);
    // Not read, not written, no copy sent to it, no results read from it.
    assert_eq!(sense(&o.command(0, &read10(0, 1), &[], 512)), (5, 0x25, 0));
    assert_eq!(
        sense(&o.command(0, &write10(0, 1), &[0; 512], 0)),
        (5, 0x25, 0)
    );
    let list = copy_list("naa.5001405a1b2c3d03", "naa.5001405a1b2c3d03", 8, 1);
    assert_eq!(
        sense(&o.command(0, &xcopy_cdb(list.len()), &list, 0)),
        (5, 0x25, 0)
    );
    let rcr = [0x84, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0];
    assert_eq!(sense(&o.command(0, &rcr, &[], 12)), (5, 0x25, 0));
    // Not copied from or to, named by its designator in a copy sent to an open LUN.
    for (src, dst) in [
        ("naa.5001405a1b2c3d09", "naa.5001405a1b2c3d03"),
        ("naa.5001405a1b2c3d03", "naa.5001405a1b2c3d09"),
    ] {
        let list = copy_list(src, dst, 0, 1);
        let r = o.command(1, &xcopy_cdb(list.len()), &list, 0);
        assert_eq!(sense(&r), (0x0a, 0x0d, 0x02), "{src} -> {dst}");
    }
    // The allowed initiator sees its data unchanged, and may copy it.
    assert_eq!(a.command(0, &read10(0, 1), &[], 512).data, secret);
    let list = copy_list("naa.5001405a1b2c3d09", "naa.5001405a1b2c3d03", 0, 1);
    assert_eq!(a.command(1, &xcopy_cdb(list.len()), &list, 0).status, 0);
    assert_eq!(a.command(1, &read10(0, 1), &[], 512).data, secret);
    // A name in another case is the same name (RFC 3722): admitted, as the allow list is.
    let mut c = Initiator::logged_in_to(addr, TARGET, &ALLOWED.to_uppercase());
    clear_attention(&mut c, &[0]);
    assert_eq!(c.command(0, &read10(0, 1), &[], 512).status, 0);
    daemon.shutdown(Duration::from_secs(1));
}

// ---------------------------------------------------------------- F2: CHAP

/// Sends one Login Request (CSG/NSG/T as given) with `keys`; returns the response.
fn login_step(
    i: &mut Initiator,
    isid: [u8; 6],
    csg: u8,
    nsg: Option<u8>,
    keys: &str,
    sn: u32,
) -> Pdu {
    let mut b = Bhs::new(Opcode::LOGIN_REQUEST);
    let transit = nsg.map_or(0, |n| 0x80 | n);
    b.set_immediate(true)
        .set_flags(transit | (csg << 2))
        .set_isid(isid)
        .set_itt(0)
        .set_cmd_sn(1)
        .set_exp_stat_sn(sn);
    let text = keys.replace('|', "\0") + "\0";
    i.send(&Pdu::with_data(b, text.into_bytes()));
    i.recv()
}

/// A login: the session, or the Login Response's status (class, detail).
type Login = Result<Initiator, (u8, u8)>;

/// A CHAP login as `name` with `secret`, and the challenge the target sent.
fn chap_login(
    addr: SocketAddr,
    name: &str,
    secret: &[u8],
    isid: [u8; 6],
) -> (Login, Option<Vec<u8>>) {
    let mut i = Initiator::connect(addr);
    let status = |p: &Pdu| (p.bhs.byte(36), p.bhs.byte(37));
    let r = login_step(
        &mut i,
        isid,
        0,
        None,
        &format!("InitiatorName={name}|TargetName={TARGET}|SessionType=Normal|AuthMethod=CHAP"),
        0,
    );
    if status(&r) != (0, 0) {
        return (Err(status(&r)), None);
    }
    let r = login_step(&mut i, isid, 0, None, "CHAP_A=5", r.bhs.stat_sn() + 1);
    if status(&r) != (0, 0) {
        return (Err(status(&r)), None);
    }
    let keys = TextKeys::decode(&r.data).unwrap();
    let id: u8 = keys.get("CHAP_I").unwrap().parse().unwrap();
    let challenge = auth::decode_binary(keys.get("CHAP_C").unwrap()).unwrap();
    let response = auth::encode_binary(&auth::chap_response(id, secret, &challenge));
    let r = login_step(
        &mut i,
        isid,
        0,
        Some(1),
        &format!("CHAP_N=allowed|CHAP_R={response}"),
        r.bhs.stat_sn() + 1,
    );
    if status(&r) != (0, 0) {
        return (Err(status(&r)), Some(challenge));
    }
    let r = login_step(
        &mut i,
        isid,
        1,
        Some(3),
        "HeaderDigest=None|DataDigest=None|MaxRecvDataSegmentLength=8192|ImmediateData=Yes|\
         InitialR2T=Yes|FirstBurstLength=8192|MaxBurstLength=32768",
        r.bhs.stat_sn() + 1,
    );
    if status(&r) != (0, 0) {
        return (Err(status(&r)), Some(challenge));
    }
    assert_eq!(r.bhs.flags() & 0x83, 0x83, "full feature phase");
    (Ok(i), Some(challenge))
}

/// With CHAP configured no login without the right secret reaches full feature phase: no
/// CHAP, a wrong secret, an unlisted name; challenges never repeat; and a failed login
/// with a victim's name and ISID does not close the victim's session.
#[test]
fn f2_with_chap_only_the_right_secret_logs_in() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[iscsi]\nlisten = \"127.0.0.1:0\"\ntarget = \"{TARGET}\"\n\
         [[initiator]]\nname = \"{ALLOWED}\"\nchap_user = \"allowed\"\nchap_secret = \"{SECRET}\"\n{}",
        devices(None)
    );
    let daemon = Daemon::start(DaemonConfig::parse(&text, dir.path()).unwrap()).unwrap();
    let addr = daemon.local_addr();
    // No authentication offered: the plain login of the other tests is refused (0201).
    let (_, r) = Initiator::login(
        addr,
        &format!("InitiatorName={ALLOWED}|TargetName={TARGET}|AuthMethod=None"),
    );
    assert_eq!((r.bhs.byte(36), r.bhs.byte(37)), (2, 1));
    // Wrong secret: 0201; a name not in the table: 0202 (before any challenge).
    let isid = [0x80, 0, 0, 0, 0x12, 0x34];
    let (wrong, c1) = chap_login(addr, ALLOWED, b"not-the-secret!!", isid);
    assert_eq!(wrong.err(), Some((2, 1)));
    let (stranger, c) = chap_login(addr, OTHER, SECRET.as_bytes(), isid);
    assert_eq!((stranger.err(), c), (Some((2, 2)), None));
    // The right secret: full feature phase, the vault readable.
    let (victim, c2) = chap_login(addr, ALLOWED, SECRET.as_bytes(), isid);
    let mut victim = victim.unwrap();
    assert_ne!(c1, c2, "a fresh random challenge each login");
    clear_attention(&mut victim, &[0]);
    assert_eq!(victim.command(0, &read10(0, 1), &[], 512).status, 0);
    // An attacker with the victim's name and ISID but not the secret: refused, and the
    // victim's session goes on (reinstatement comes only after authentication).
    let (attack, _) = chap_login(addr, ALLOWED, b"guessed-secret!!", isid);
    assert_eq!(attack.err(), Some((2, 1)));
    assert_eq!(victim.command(0, &read10(0, 1), &[], 512).status, 0);
    victim.logout();
    daemon.shutdown(Duration::from_secs(1));
}

// ---------------------------------------------------------------- F3: filemarks

/// One WRITE FILEMARKS(6) of FFFFFFh filemarks used to grow the daemon by ~393 MB, never
/// freed (an index entry per filemark). Now it is one run of the index: the daemon grows by
/// a few MiB at most, the image by the 64 MiB the filemarks occupy, and the tape still
/// spaces over them.
#[test]
fn f3_a_huge_write_filemarks_does_not_grow_memory() {
    let config = format!(
        "[iscsi]\nlisten = \"LISTEN\"\ntarget = \"{TARGET}\"\n{}",
        devices(None)
    );
    let d = Child_::start(&config, None);
    let mut i = Initiator::logged_in_to(d.addr, TARGET, OTHER);
    clear_attention(&mut i, &[2]);
    let before = d.rss_kib();
    let r = i.command(2, &[0x10, 0, 0xff, 0xff, 0xff, 0], &[], 0);
    assert_eq!(r.status, 0, "{r:?}");
    let after = d.rss_kib();
    assert!(after < before + 16 * 1024, "RSS {before} -> {after} KiB");
    assert_eq!(
        std::fs::metadata(d.path("tape0.tap")).unwrap().len(),
        0xff_ffff * 4
    );
    // READ POSITION long: object FFFFFFh, file FFFFFFh.
    let r = i.command(2, &[0x34, 6, 0, 0, 0, 0, 0, 0, 32, 0], &[], 32);
    assert_eq!(&r.data[8..16], &0xff_ffffu64.to_be_bytes());
    assert_eq!(&r.data[16..24], &0xff_ffffu64.to_be_bytes());
    // SPACE back 5 filemarks, then READ POSITION.
    let r = i.command(2, &[0x11, 1, 0xff, 0xff, 0xfb, 0], &[], 0);
    assert_eq!(r.status, 0);
    let r = i.command(2, &[0x34, 6, 0, 0, 0, 0, 0, 0, 32, 0], &[], 32);
    assert_eq!(&r.data[8..16], &(0xff_ffffu64 - 5).to_be_bytes());
}

// ---------------------------------------------------------------- F4: held write data

/// Sends a WRITE(10) of `blocks` blocks with F=1 and no immediate data; returns its ITT.
fn start_write(i: &mut Initiator, lun: u8, lba: u32, blocks: u16) -> u32 {
    let p = i.command_pdu(
        lun,
        &write10(lba, blocks),
        u32::from(blocks) * 512,
        false,
        &[],
    );
    let itt = p.bhs.itt();
    i.send(&p);
    itt
}

/// Answers one R2T with `len` bytes (at most the R2T's length) of Data-Out.
fn answer_r2t(i: &mut Initiator, r2t: &Pdu, len: u32) {
    let (off, want) = (r2t.bhs.buffer_offset(), r2t.bhs.desired_data_transfer_len());
    let mut sent = 0;
    let mut data_sn = 0;
    while sent < len.min(want) {
        let n = (len.min(want) - sent).min(8192);
        let mut b = Bhs::new(Opcode::DATA_OUT);
        b.set_flags(if sent + n == want { 0x80 } else { 0 })
            .set_lun(r2t.bhs.lun())
            .set_itt(r2t.bhs.itt())
            .set_ttt(r2t.bhs.ttt())
            .set_data_sn(data_sn)
            .set_buffer_offset(off + sent);
        i.send(&Pdu::with_data(b, vec![0xab; n as usize]));
        sent += n;
        data_sn += 1;
    }
}

/// 32 WRITEs of 16 MiB each left 512 bytes short used to hold 544 MB per connection until
/// it closed. Now a connection holds at most max_data_out bytes of write data (the writes
/// past it get TASK SET FULL), a write whose Data-Out stalls for data_out_timeout ends with
/// ABORTED COMMAND, DATA PHASE ERROR and frees its buffer, and the daemon stays small.
#[test]
fn f4_unfinished_writes_are_bounded_and_expire() {
    let config = format!(
        "[iscsi]\nlisten = \"LISTEN\"\ntarget = \"{TARGET}\"\nmax_command_bytes = 4194304\n\
         max_data_out_bytes = 8388608\ndata_out_timeout_secs = 2\n{}",
        devices(None)
    );
    let d = Child_::start(&config, None);
    let mut i = Initiator::logged_in_to(d.addr, TARGET, OTHER);
    clear_attention(&mut i, &[1]);
    let before = d.rss_kib();
    // 8 writes of 4 MiB (8192 blocks): the first two fit the 8 MiB allowance.
    let itts: Vec<u32> = (0..8)
        .map(|k| start_write(&mut i, 1, k * 8192, 8192))
        .collect();
    let mut r2ts = Vec::new();
    let mut full = Vec::new();
    while r2ts.len() + full.len() < itts.len() {
        let p = i.recv();
        match p.bhs.opcode() {
            Opcode::R2T => r2ts.push(p),
            Opcode::SCSI_RESPONSE => {
                assert_eq!(p.bhs.byte(3), 0x28, "TASK SET FULL");
                full.push(p.bhs.itt());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(r2ts.len(), 2, "two writes admitted");
    assert_eq!(full, itts[2..].to_vec());
    // Each admitted write gets all its data but the last 512 bytes of each burst, then
    // nothing more: the R2T for the rest is never answered.
    for r in &r2ts {
        let len = r.bhs.desired_data_transfer_len();
        answer_r2t(&mut i, r, len - 512);
    }
    let during = d.rss_kib();
    assert!(during < before + 32 * 1024, "RSS {before} -> {during} KiB");
    // Within data_out_timeout (2 s) plus the reader's tick, both end with 0B/4B/00.
    for _ in 0..2 {
        let p = i.recv();
        assert_eq!(p.bhs.opcode(), Opcode::SCSI_RESPONSE);
        assert!(itts[..2].contains(&p.bhs.itt()));
        let n = u16::from_be_bytes([p.data[0], p.data[1]]) as usize;
        let s = xcopyd::scsi::Sense::decode(&p.data[2..2 + n]).unwrap();
        assert_eq!((s.key.0, s.asc.asc(), s.asc.ascq()), (0x0b, 0x4b, 0x00));
    }
    // The allowance is back: a whole write now succeeds, and nothing was written before.
    assert_eq!(i.command(1, &write10(0, 16), &[0xcd; 8192], 0).status, 0);
    assert!(
        i.command(1, &read10(100, 1), &[], 512).data == [0; 512],
        "nothing written"
    );
}

/// An idle logged-in connection (nothing outstanding) gets a NOP-In ping at half
/// idle_timeout; one that answers it stays, one that does not is closed at idle_timeout.
#[test]
fn f4_an_idle_connection_is_pinged_then_closed() {
    let config = format!(
        "[iscsi]\nlisten = \"LISTEN\"\ntarget = \"{TARGET}\"\nidle_timeout_secs = 2\n{}",
        devices(None)
    );
    let d = Child_::start(&config, None);
    let mut quiet = Initiator::logged_in_to(d.addr, TARGET, OTHER);
    let mut live = Initiator::logged_in_to(d.addr, TARGET, ALLOWED);
    let quiet_closer = std::thread::spawn(move || {
        let p = quiet.recv();
        assert_eq!(p.bhs.opcode(), Opcode::NOP_IN);
        assert!(
            common::read_pdu(&mut quiet.s).is_none(),
            "closed at idle_timeout"
        );
    });
    // The live one answers every ping for three idle timeouts.
    let until = Instant::now() + Duration::from_secs(6);
    let mut pings = 0;
    while Instant::now() < until {
        live.s
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let Some(ping) = common::read_pdu(&mut live.s) else {
            continue;
        };
        assert_eq!(ping.bhs.opcode(), Opcode::NOP_IN);
        assert_eq!(ping.bhs.itt(), 0xffff_ffff);
        assert_ne!(ping.bhs.ttt(), 0xffff_ffff, "a ping asks for an answer");
        // The answer (RFC 7143 11.18: ITT ffffffffh, the TTT back, immediate).
        let mut b = Bhs::new(Opcode::NOP_OUT);
        b.set_immediate(true)
            .set_flags(0x80)
            .set_itt(0xffff_ffff)
            .set_ttt(ping.bhs.ttt())
            .set_cmd_sn(live.cmd_sn);
        live.send(&Pdu::new(b));
        pings += 1;
    }
    assert!(pings >= 3, "{pings} pings in 6 s");
    quiet_closer.join().unwrap();
    live.s
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = live.nop(b"still served");
    wait_for(10, "the close to be logged", || {
        d.log().contains("idle for") && d.log().contains("iSCSI connection closed")
    });
}

// ---------------------------------------------------------------- F6: logins

/// A login that trickles a byte at a time is closed at login_timeout as a whole; the third
/// session of one initiator name gets Too many connections (0206) while another name logs
/// in; connections past max_connections are closed at once; each refusal is logged.
#[test]
fn f6_logins_are_bounded_in_time_and_number() {
    let config = format!(
        "[iscsi]\nlisten = \"LISTEN\"\ntarget = \"{TARGET}\"\nlogin_timeout_secs = 2\n\
         max_sessions_per_initiator = 2\nmax_connections = 5\n{}",
        devices(None)
    );
    let d = Child_::start(&config, None);
    // A valid Login Request header, a byte every 300 ms: each read is quick, but the
    // login would take 15 s.
    let mut header = Bhs::new(Opcode::LOGIN_REQUEST);
    header
        .set_immediate(true)
        .set_flags(0x87)
        .set_itt(0)
        .set_cmd_sn(1);
    let mut slow = TcpStream::connect(d.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let started = Instant::now();
    let mut bytes = header.0.into_iter();
    let closed = loop {
        use std::io::{Read, Write};
        if slow.write_all(&[bytes.next().unwrap_or(0)]).is_err() {
            break true;
        }
        let mut b = [0u8; 1];
        match slow.read(&mut b) {
            Ok(0) => break true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break true,
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never closed");
    };
    assert!(closed);
    wait_for(10, "the refusal to be logged", || {
        d.log().contains("not logged in within 2 s")
    });
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "closed at the login deadline"
    );
    // Two sessions of one name; the third is refused; another name is not.
    let a1 = Initiator::logged_in_to(d.addr, TARGET, OTHER);
    let a2 = Initiator::logged_in_to(d.addr, TARGET, &OTHER.to_uppercase());
    let (_, r) = Initiator::login(
        d.addr,
        &format!("InitiatorName={OTHER}|TargetName={TARGET}|SessionType=Normal"),
    );
    assert_eq!((r.bhs.byte(36), r.bhs.byte(37)), (2, 6));
    let b1 = Initiator::logged_in_to(d.addr, TARGET, ALLOWED);
    // a1, a2, b1 and two idle connections: the sixth connection is closed unread.
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(d.addr).unwrap())
        .collect();
    let mut sixth = TcpStream::connect(d.addr).unwrap();
    sixth
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut byte = [0u8; 1];
    use std::io::Read;
    assert_eq!(sixth.read(&mut byte).unwrap_or(0), 0, "closed at accept");
    wait_for(10, "the refusal to be logged", || {
        d.log().contains("max_connections reached")
    });
    drop((a1, a2, b1, idle));
}

/// The threads of the daemon named `name` (from /proc/PID/task/*/comm).
fn threads_named(d: &Child_, name: &str) -> usize {
    let tasks = format!("/proc/{}/task", d.child.id());
    std::fs::read_dir(tasks)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.trim_end() == name)
                })
                .count()
        })
        .unwrap_or(0)
}

/// A connection's command workers end with it: three sessions that each ran a command
/// have a worker each, and none is left once they have logged out (a connection that left
/// its workers parked would keep up to 16 threads for ever).
#[test]
fn f6_the_workers_of_a_closed_connection_end_with_it() {
    let config = format!(
        "[iscsi]\nlisten = \"LISTEN\"\ntarget = \"{TARGET}\"\n{}",
        devices(None)
    );
    let d = Child_::start(&config, None);
    let sessions: Vec<Initiator> = (0..3)
        .map(|_| {
            let mut i = Initiator::logged_in_to(d.addr, TARGET, OTHER);
            // TEST UNIT READY: answered (unit attention or good) by a worker.
            let r = i.command(1, &[0; 6], &[], 0);
            assert!(r.status == 0 || r.status == 2);
            i
        })
        .collect();
    wait_for(10, "a worker for each session", || {
        threads_named(&d, "iscsi-exec") >= 3
    });
    for i in sessions {
        i.logout();
    }
    wait_for(10, "the workers to end", || {
        threads_named(&d, "iscsi-exec") == 0
    });
}

// ---------------------------------------------------------------- F7: key lists

/// One 256 KiB Text PDU with 52,428 distinct keys used to cost seconds of CPU (a quadratic
/// duplicate check). It is now refused (more keys than any negotiation has) with a Reject,
/// in linear time, and the session goes on.
#[test]
fn f7_a_text_pdu_with_tens_of_thousands_of_keys_is_rejected() {
    let config = format!(
        "[iscsi]\nlisten = \"LISTEN\"\ntarget = \"{TARGET}\"\n{}",
        devices(None)
    );
    let d = Child_::start(&config, None);
    let (mut i, r) = Initiator::login(
        d.addr,
        &format!("InitiatorName={OTHER}|TargetName={TARGET}|MaxRecvDataSegmentLength=262144"),
    );
    assert_eq!((r.bhs.byte(36), r.bhs.byte(37)), (0, 0));
    // 52,428 keys of three characters each ("abc=\0"): 262,140 bytes.
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut text = Vec::new();
    for k in 0..52_428usize {
        let n = ALPHABET.len();
        text.extend_from_slice(&[ALPHABET[k % n], ALPHABET[k / n % n], ALPHABET[k / n / n]]);
        text.extend_from_slice(b"=\0");
    }
    assert!(text.len() <= 256 * 1024);
    let mut b = Bhs::new(Opcode::TEXT_REQUEST);
    b.set_immediate(true)
        .set_flags(0x80)
        .set_itt(77)
        .set_ttt(0xffff_ffff)
        .set_cmd_sn(i.cmd_sn);
    i.send(&Pdu::with_data(b, text));
    let r = i.recv();
    assert_eq!(r.bhs.opcode(), Opcode::REJECT);
    assert_eq!(r.bhs.byte(2), 0x04, "protocol error");
    let _ = i.nop(b"still here");
}

// ---------------------------------------------------------------- F8: immediate data

/// Immediate data beyond the negotiated FirstBurstLength was accepted and written (RFC 7143
/// 13.14 forbids it): it is rejected, and the block keeps its data.
#[test]
fn f8_immediate_data_past_first_burst_length_is_rejected() {
    let config = format!(
        "[iscsi]\nlisten = \"LISTEN\"\ntarget = \"{TARGET}\"\n{}",
        devices(None)
    );
    let d = Child_::start(&config, None);
    // FirstBurstLength=8192 (the helper's login), but MaxRecvDataSegmentLength lets 16 KiB in.
    let mut i = Initiator::logged_in_to(d.addr, TARGET, OTHER);
    clear_attention(&mut i, &[1]);
    let p = i.command_pdu(1, &write10(0, 32), 16384, false, &[0xee; 16384]);
    i.send(&p);
    let r = i.recv();
    assert_eq!(r.bhs.opcode(), Opcode::REJECT);
    assert_eq!(
        i.command(1, &read10(0, 32), &[], 16384).data,
        vec![0; 16384]
    );
    wait_for(10, "the refusal to be logged", || {
        d.log().contains("FirstBurstLength")
    });
}

// ---------------------------------------------------------------- F9: the CLI as initiator

/// A fake target: logs anyone in, answers every command GOOD, and RECEIVE COPY RESULTS with
/// a Data-In at offset FFFFFF00h — which used to make `xcopy results` allocate 4 GiB and
/// abort. The CLI now refuses Data-In past what it asked for.
#[test]
fn f9_a_hostile_target_cannot_make_the_cli_allocate() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut stat_sn = 0u32;
        let send = |s: &mut TcpStream, p: Pdu| {
            use std::io::Write;
            let _ = s.write_all(&p.encode(xcopyd::iscsi::pdu::Digests::default()));
        };
        while let Some(req) = common::read_pdu(&mut s) {
            let b = req.bhs;
            let window = |r: &mut Bhs, sn: u32| {
                r.set_stat_sn(sn).set_exp_cmd_sn(b.cmd_sn().wrapping_add(1));
                r.set_max_cmd_sn(b.cmd_sn().wrapping_add(16));
            };
            match b.opcode() {
                Opcode::LOGIN_REQUEST => {
                    let mut r = Bhs::new(Opcode::LOGIN_RESPONSE);
                    r.set_flags(0x87)
                        .set_isid(b.isid())
                        .set_tsih(1)
                        .set_itt(b.itt());
                    window(&mut r, stat_sn);
                    r.set_exp_cmd_sn(b.cmd_sn());
                    stat_sn += 1;
                    send(&mut s, Pdu::new(r));
                }
                Opcode::SCSI_COMMAND if b.cdb()[0] == 0x84 => {
                    let mut r = Bhs::new(Opcode::DATA_IN);
                    r.set_flags(0x81)
                        .set_itt(b.itt())
                        .set_ttt(0xffff_ffff)
                        .set_buffer_offset(0xffff_ff00);
                    window(&mut r, stat_sn);
                    stat_sn += 1;
                    send(&mut s, Pdu::with_data(r, vec![0xaa; 64]));
                }
                Opcode::SCSI_COMMAND => {
                    let mut r = Bhs::new(Opcode::SCSI_RESPONSE);
                    r.set_flags(0x80).set_itt(b.itt());
                    window(&mut r, stat_sn);
                    stat_sn += 1;
                    send(&mut s, Pdu::new(r));
                }
                _ => return,
            }
        }
    });
    let out = Command::new(env!("CARGO_BIN_EXE_xcopy"))
        .args(["results", "--target"])
        .arg(format!("iscsi://{addr}/{TARGET}/0"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("past the"), "{err}");
    // `xcopy decode /dev/zero` used to read until memory ran out.
    let out = Command::new(env!("CARGO_BIN_EXE_xcopy"))
        .args(["decode", "/dev/zero"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("more than 67108864 bytes"), "{err}");
}

// ---------------------------------------------------------------- the soak

/// A small xorshift for the malformed traffic (seeded: a failure replays).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One hostile session: garbage, lies about lengths, and the requests F3-F8 found. Any
/// reply or a closed connection is fine; the daemon must stay up.
fn hostile_session(addr: SocketAddr, seed: u64, rounds: usize) {
    let mut rng = Rng(seed | 1);
    for round in 0..rounds {
        let Ok(mut raw) = TcpStream::connect(addr) else {
            continue;
        };
        raw.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        use std::io::Write;
        match (rng.next() + round as u64) % 4 {
            0 => {
                // Random bytes, some of them a BHS announcing a huge data segment.
                let mut junk: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
                junk[0] = 0x43;
                junk[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
                let _ = raw.write_all(&junk);
            }
            _ => {
                drop(raw);
                let mut i = Initiator::logged_in_to(addr, TARGET, OTHER);
                i.s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                clear_attention(&mut i, &[1, 2, 3]);
                // A 09h segment of FFFFFFFFh bytes and a WRITE FILEMARKS of FFFFFFh.
                let list = ParameterList {
                    list_identifier: 0,
                    sequential_striped: false,
                    list_id_usage: ListIdUsage::NoListId,
                    priority: 1,
                    cscds: vec![disk_cscd("naa.5001405a1b2c3d03"), tape_cscd()],
                    segments: vec![SegmentDescriptor {
                        cat: false,
                        body: Segment::StreamToBlockOffset {
                            source: CscdId(1),
                            destination: CscdId(0),
                            stream_transfer_length: 512,
                            bytes: u32::MAX,
                            lba: 0,
                            byte_offset: 0,
                        },
                    }],
                    inline_data: Vec::new(),
                }
                .encode();
                let r = i.command(1, &xcopy_cdb(list.len()), &list, 0);
                // Past MAXIMUM SEGMENT LENGTH: COPY ABORTED, INVALID FIELD IN PARAMETER LIST.
                assert_eq!(sense(&r), (0x0a, 0x26, 0x00));
                let _ = i.command(2, &[0x10, 0, 0xff, 0xff, 0xff, 0], &[], 0);
                // A write that never gets its data.
                let _ = start_write(&mut i, 1, 0, 2048);
            }
        }
    }
}

/// One legitimate session: `rounds` times, a pattern written to its own region of disk1,
/// copied by EXTENDED COPY to disk2, and read back: every step GOOD, every byte right.
fn legit_session(addr: SocketAddr, region: u32, rounds: usize) {
    let mut i = Initiator::logged_in_to(addr, TARGET, ALLOWED);
    i.s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    clear_attention(&mut i, &[1, 3]);
    let lba = region * 512;
    for round in 0..rounds {
        let data: Vec<u8> = (0..256 * 1024)
            .map(|k| (k * 31 + round * 7 + region as usize) as u8)
            .collect();
        let r = i.command(1, &write10(lba, 512), &data, 0);
        assert_eq!(r.status, 0, "write {r:?}");
        let list = copy_list(
            "naa.5001405a1b2c3d03",
            "naa.5001405a1b2c3d04",
            u64::from(lba),
            512,
        );
        let r = i.command(3, &xcopy_cdb(list.len()), &list, 0);
        assert_eq!(r.status, 0, "EXTENDED COPY {r:?}");
        let back = i.command(3, &read10(lba, 512), &[], 256 * 1024);
        assert_eq!(back.status, 0);
        assert!(back.data == data, "region {region} round {round}");
    }
}

/// Under `ulimit -v` of 1 GiB, 8 sessions send malformed PDUs and the requests #14 found
/// harmful while 8 others copy: the daemon ends alive, every legitimate copy GOOD and
/// exact, its RSS bounded.
#[test]
fn soak_hostile_and_legitimate_sessions_under_a_memory_limit() {
    let config = format!(
        "[iscsi]\nlisten = \"LISTEN\"\ntarget = \"{TARGET}\"\nmax_sessions_per_initiator = 16\n\
         data_out_timeout_secs = 2\n{}\
         [[device]]\nname = \"disk2\"\nkind = \"disk\"\npath = \"disk2.img\"\nsize = \"4MiB\"\n\
         designator = \"naa.5001405a1b2c3d04\"\n[[lun]]\ndevice = \"disk2\"\n",
        devices(None)
    );
    let ulimit = std::env::var("SOAK_ULIMIT_KIB").map_or(Some(1 << 20), |v| v.parse().ok());
    let mut d = Child_::start(&config, ulimit);
    let addr = d.addr;
    let mut threads = Vec::new();
    for k in 0..8u64 {
        threads.push(std::thread::spawn(move || {
            hostile_session(addr, 0x5eed + k, 6)
        }));
    }
    for region in 0..8u32 {
        threads.push(std::thread::spawn(move || legit_session(addr, region, 4)));
    }
    let mut failed = Vec::new();
    for (n, t) in threads.into_iter().enumerate() {
        if let Err(e) = t.join() {
            failed.push((n, e.downcast_ref::<String>().cloned().unwrap_or_default()));
        }
    }
    assert!(d.alive(), "xcopyd died: {}", d.log());
    assert!(failed.is_empty(), "{failed:?}\n{}", d.log());
    let rss = d.rss_kib();
    if std::env::var("SOAK_ULIMIT_KIB").is_ok() {
        let status = std::fs::read_to_string(format!("/proc/{}/status", d.child.id())).unwrap();
        eprintln!(
            "{}",
            status
                .lines()
                .filter(|l| l.starts_with("Vm") || l.starts_with("Threads"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(rss < 512 * 1024, "RSS {rss} KiB");
}
