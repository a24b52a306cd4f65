use super::*;
use crate::device::tape::{EmulatedTape, TapeConfig};
use crate::frontend::testing::{CopyCall, MemoryDisk, RecordingCopyService};

struct Fixture {
    d: Dispatcher,
    copy: Arc<RecordingCopyService>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (tape, _) =
        EmulatedTape::open("tape0", dir.path().join("t.tap"), TapeConfig::default()).unwrap();
    let copy = RecordingCopyService::new();
    let luns: Vec<Arc<dyn ScsiDevice>> =
        vec![Arc::new(MemoryDisk::new("disk0", 512, 64)), Arc::new(tape)];
    Fixture {
        d: Dispatcher::new(luns, copy.clone()),
        copy,
        _dir: dir,
    }
}

fn nexus(s: u64) -> Nexus {
    Nexus {
        initiator: "iqn.test".into(),
        session: s,
    }
}

fn run(d: &Dispatcher, n: &Nexus, lun: u64, cdb: &[u8], len: usize) -> CommandResult {
    d.execute(n, lun, cdb, &[], len, &Abort::new())
}

fn key(r: &CommandResult) -> (u8, u8, u8) {
    assert_eq!(r.status, Status::CHECK_CONDITION, "{r:?}");
    let s = Sense::decode(&r.sense).unwrap();
    (s.key.0, s.asc.asc(), s.asc.ascq())
}

const TUR: [u8; 6] = [0; 6];
const INQ: [u8; 6] = [0x12, 0, 0, 0, 96, 0];
const REPORT_LUNS: [u8; 12] = [0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0];

#[test]
fn report_luns_answers_on_any_lun_and_lists_all() {
    let f = fixture();
    for lun in [0, 1, 7, u64::MAX] {
        let r = run(&f.d, &nexus(1), lun, &REPORT_LUNS, 256);
        assert_eq!(r.status, Status::GOOD);
        assert_eq!(
            r.data_in,
            [0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        );
    }
    // Truncated to the transport's expected length, and allocation length < 16 is 24/00.
    assert_eq!(run(&f.d, &nexus(1), 0, &REPORT_LUNS, 10).data_in.len(), 10);
    let mut cdb = REPORT_LUNS;
    cdb[8] = 0;
    cdb[9] = 15;
    assert_eq!(key(&run(&f.d, &nexus(1), 0, &cdb, 256)), (5, 0x24, 0));
    let mut cdb = REPORT_LUNS;
    cdb[2] = 3;
    assert_eq!(key(&run(&f.d, &nexus(1), 0, &cdb, 256)), (5, 0x24, 0));
}

#[test]
fn missing_lun_inquiry_and_other_commands() {
    let f = fixture();
    let r = run(&f.d, &nexus(1), 5, &INQ, 96);
    assert_eq!(r.status, Status::GOOD);
    assert_eq!(r.data_in[0], 0x7f);
    assert_eq!(r.data_in.len(), 36);
    assert_eq!(key(&run(&f.d, &nexus(1), 5, &TUR, 0)), (5, 0x25, 0));
    assert_eq!(
        key(&run(&f.d, &nexus(1), 5, &[3, 0, 0, 0, 18, 0], 18)),
        (5, 0x25, 0)
    );
    let xcopy = [0x83, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0];
    assert_eq!(key(&run(&f.d, &nexus(1), 5, &xcopy, 0)), (5, 0x25, 0));
    assert!(f.copy.calls().is_empty());
}

#[test]
fn unit_attention_once_per_nexus_per_lun_and_exemptions() {
    let f = fixture();
    let n = nexus(1);
    // INQUIRY, REPORT LUNS and REQUEST SENSE neither block nor clear it.
    assert_eq!(run(&f.d, &n, 0, &INQ, 96).status, Status::GOOD);
    assert_eq!(run(&f.d, &n, 0, &REPORT_LUNS, 256).status, Status::GOOD);
    assert_eq!(
        run(&f.d, &n, 1, &[3, 0, 0, 0, 18, 0], 18).status,
        Status::GOOD
    );
    assert_eq!(key(&run(&f.d, &n, 0, &TUR, 0)), (6, 0x29, 0));
    assert_eq!(run(&f.d, &n, 0, &TUR, 0).status, Status::GOOD);
    // Separately per LUN and per nexus.
    assert_eq!(key(&run(&f.d, &n, 1, &TUR, 0)), (6, 0x29, 0));
    assert_eq!(key(&run(&f.d, &nexus(2), 0, &TUR, 0)), (6, 0x29, 0));
    assert_eq!(run(&f.d, &n, 1, &TUR, 0).status, Status::GOOD);
}

#[test]
fn lun_reset_and_target_reset_raise_power_on_reset() {
    let f = fixture();
    let n = nexus(1);
    for lun in [0, 1] {
        run(&f.d, &n, lun, &TUR, 0);
    }
    f.d.lun_reset(1);
    assert_eq!(run(&f.d, &n, 0, &TUR, 0).status, Status::GOOD);
    assert_eq!(key(&run(&f.d, &n, 1, &TUR, 0)), (6, 0x29, 0));
    f.d.target_reset();
    assert_eq!(key(&run(&f.d, &n, 0, &TUR, 0)), (6, 0x29, 0));
    assert_eq!(key(&run(&f.d, &n, 1, &TUR, 0)), (6, 0x29, 0));
    assert_eq!(run(&f.d, &n, 1, &TUR, 0).status, Status::GOOD);
    f.d.lun_reset(99); // no such LUN: nothing happens
}

#[test]
fn lun_set_change_raises_reported_luns_data_has_changed() {
    let f = fixture();
    let n = nexus(1);
    for lun in [0, 1] {
        run(&f.d, &n, lun, &TUR, 0);
    }
    f.d.set_luns(vec![
        Arc::new(MemoryDisk::new("disk0", 512, 64)),
        Arc::new(MemoryDisk::new("disk1", 512, 64)),
        Arc::new(MemoryDisk::new("disk2", 512, 64)),
    ]);
    assert_eq!(key(&run(&f.d, &n, 0, &TUR, 0)), (6, 0x3f, 0x0e));
    assert_eq!(run(&f.d, &n, 0, &TUR, 0).status, Status::GOOD);
    // REPORT LUNS clears it on the LUN it is sent to (SPC-3 6.21).
    let r = run(&f.d, &n, 1, &REPORT_LUNS, 256);
    assert_eq!(r.data_in[3], 24);
    assert_eq!(run(&f.d, &n, 1, &TUR, 0).status, Status::GOOD);
    // A LUN the nexus never used starts with POWER ON.
    assert_eq!(key(&run(&f.d, &n, 2, &TUR, 0)), (6, 0x29, 0));
}

#[test]
fn copy_opcodes_go_to_the_copy_service_with_the_receiving_lun() {
    let f = fixture();
    let n = nexus(3);
    run(&f.d, &n, 1, &TUR, 0);
    let xcopy = [0x83, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0];
    let abort = Abort::new();
    abort.abort();
    let r = f.d.execute(&n, 1, &xcopy, &[1, 2, 3, 4], 0, &abort);
    assert_eq!(r.status, Status::GOOD);
    let rcr = [0x84, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0];
    let r = run(&f.d, &n, 1, &rcr, 32);
    assert_eq!(r.data_in, vec![0xab; 32]);
    f.d.nexus_lost(&n);
    assert_eq!(
        f.copy.calls(),
        vec![
            CopyCall::ExtendedCopy {
                nexus: n.clone(),
                receiving_lun: Some("tape0".into()),
                parameter_list: vec![1, 2, 3, 4],
                aborted: true,
            },
            CopyCall::ReceiveCopyResults { nexus: n.clone() },
            CopyCall::NexusLost(n.clone()),
        ]
    );
    // The nexus was forgotten: it sees POWER ON again.
    assert_eq!(key(&run(&f.d, &n, 1, &TUR, 0)), (6, 0x29, 0));
}

#[test]
fn copy_opcodes_wait_behind_a_unit_attention() {
    let f = fixture();
    let rcr = [0x84, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0];
    assert_eq!(key(&run(&f.d, &nexus(1), 0, &rcr, 32)), (6, 0x29, 0));
    assert!(f.copy.calls().is_empty());
}

#[test]
fn device_commands_pass_through_with_direction_and_3pc() {
    let f = fixture();
    let n = nexus(1);
    run(&f.d, &n, 0, &TUR, 0);
    run(&f.d, &n, 1, &TUR, 0);
    // Standard INQUIRY from each device has 3PC.
    for lun in [0, 1] {
        let r = run(&f.d, &n, lun, &INQ, 96);
        assert_eq!(r.data_in.len(), 96);
        assert_ne!(r.data_in[5] & 0x08, 0);
    }
    // WRITE(6) + REWIND + READ(6) on the tape, variable block.
    let data = b"hello tape".to_vec();
    let w =
        f.d.execute(&n, 1, &[0x0a, 0, 0, 0, 10, 0], &data, 0, &Abort::new());
    assert_eq!(w.status, Status::GOOD, "{w:?}");
    assert_eq!(
        run(&f.d, &n, 1, &[1, 0, 0, 0, 0, 0], 0).status,
        Status::GOOD
    );
    let r = run(&f.d, &n, 1, &[0x08, 0, 0, 0, 10, 0], 10);
    assert_eq!(r.data_in, data);
    // Unsupported opcode: the device's own 05/20/00.
    assert_eq!(
        key(&run(&f.d, &n, 0, &[0xee, 0, 0, 0, 0, 0], 0)),
        (5, 0x20, 0)
    );
    // READ(10) of one block on the disk, data-in truncated to what the device moved.
    let r = run(&f.d, &n, 0, &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], 4096);
    assert_eq!(r.data_in.len(), 512);
    // Empty CDB.
    assert_eq!(key(&run(&f.d, &n, 0, &[], 0)), (5, 0x20, 0));
}

#[test]
fn third_party_copy_page_is_answered_when_the_device_does_not() {
    let f = fixture();
    let n = nexus(1);
    let r = run(&f.d, &n, 1, &[0x12, 1, 0x8f, 1, 0, 0], 256);
    assert_eq!(r.status, Status::GOOD, "{r:?}");
    assert_eq!(&r.data_in[..2], &[0x01, 0x8f]);
    let (_, body) = inquiry::split_vpd_page(&r.data_in).unwrap();
    let page = ThirdPartyCopyPage::decode_body(body).unwrap();
    assert!(page.supports_command(0x83, 0x00));
    // Allocation length 8 truncates.
    let r = run(&f.d, &n, 1, &[0x12, 1, 0x8f, 0, 8, 0], 256);
    assert_eq!(r.data_in.len(), 8);
}

#[test]
fn supported_vpd_pages_list_third_party_copy_in_order() {
    let f = fixture();
    let n = nexus(1);
    for lun in [0, 1] {
        let r = run(&f.d, &n, lun, &[0x12, 1, 0, 0, 255, 0], 255);
        assert_eq!(r.status, Status::GOOD, "{r:?}");
        let len = usize::from(u16::from_be_bytes([r.data_in[2], r.data_in[3]]));
        let pages = &r.data_in[4..];
        assert_eq!(pages.len(), len);
        assert_eq!(
            pages.iter().filter(|&&p| p == 0x8f).count(),
            1,
            "{pages:x?}"
        );
        assert!(pages.windows(2).all(|w| w[0] < w[1]), "{pages:x?}");
        // Allocation length and the transport's length both truncate.
        let r = run(&f.d, &n, lun, &[0x12, 1, 0, 0, 5, 0], 255);
        assert_eq!(r.data_in.len(), 5);
        let r = run(&f.d, &n, lun, &[0x12, 1, 0, 0, 255, 0], 6);
        assert_eq!(r.data_in.len(), 6);
    }
}

#[test]
fn overflow_and_residual_flow_from_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.img");
    std::fs::write(&path, vec![0u8; 64 * 512]).unwrap();
    let disk = crate::device::disk::EmulatedDisk::open(
        "d",
        &crate::device::disk::DiskOptions::new(&path, 512),
    )
    .unwrap();
    let d = Dispatcher::new(vec![Arc::new(disk)], RecordingCopyService::new());
    let n = nexus(1);
    let _ = run(&d, &n, 0, &TUR, 0);
    let read2 = [0x28, 0, 0, 0, 0, 0, 0, 0, 2, 0];
    // READ(10) of 2 blocks, 512 expected: one block comes, one is overflow.
    let r = run(&d, &n, 0, &read2, 512);
    assert_eq!(
        (r.status, r.data_in.len(), r.overflow),
        (Status::GOOD, 512, 512)
    );
    // Expected length 0: all overflow.
    assert_eq!(run(&d, &n, 0, &read2, 0).overflow, 1024);
    // WRITE(10) of 1 block with 1000 bytes: 488 not consumed; with 200: 312 overflow.
    let write1 = [0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    let r = d.execute(&n, 0, &write1, &[7; 1000], 0, &Abort::new());
    assert_eq!((r.status, r.residual, r.overflow), (Status::GOOD, 488, 0));
    let r = d.execute(&n, 0, &write1, &[7; 200], 0, &Abort::new());
    assert_eq!((r.status, r.residual, r.overflow), (Status::GOOD, 0, 312));
}

/// REPORT SUPPORTED OPERATION CODES on a disk LUN (SPC-3 6.23) lists the disk's own commands
/// and the copy manager's: EXTENDED COPY, RECEIVE COPY RESULTS (service actions 00h, 01h,
/// 03h, 04h) and REPORT LUNS, in opcode order. Seen missing from sg_opcodes in the VM.
#[test]
fn report_supported_operation_codes_lists_the_copy_manager_commands() {
    use crate::device::disk::{DiskOptions, EmulatedDisk};
    let dir = tempfile::tempdir().unwrap();
    let mut opts = DiskOptions::new(dir.path().join("d.img"), 512);
    opts.create_size = Some(1 << 20);
    let disk = EmulatedDisk::open("disk0", &opts).unwrap();
    let d = Dispatcher::new(vec![Arc::new(disk)], RecordingCopyService::new());
    let n = nexus(1);
    let _ = run(&d, &n, 0, &TUR, 0); // power-on unit attention
    let all = run(&d, &n, 0, &[0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0], 1024);
    assert_eq!(all.status, Status::GOOD, "{all:?}");
    let len = u32::from_be_bytes(all.data_in[..4].try_into().unwrap()) as usize;
    assert_eq!(len, all.data_in.len() - 4);
    let listed: Vec<(u8, Option<u16>, u16)> = all.data_in[4..]
        .chunks(8)
        .map(|c| {
            let sa = (c[5] & 1 != 0).then(|| u16::from_be_bytes([c[2], c[3]]));
            (c[0], sa, u16::from_be_bytes([c[6], c[7]]))
        })
        .collect();
    for want in [
        (0x83, None, 16),
        (0x84, Some(0), 16),
        (0x84, Some(1), 16),
        (0x84, Some(3), 16),
        (0x84, Some(4), 16),
        (0xa0, None, 12),
        (0x28, None, 10),
    ] {
        assert!(listed.contains(&want), "{want:?} missing from {listed:x?}");
    }
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted);
    assert_eq!(listed.len(), sbc::DISK_COMMANDS.len() + 6);
    // One command with a service action: RECEIVE COPY RESULTS / OPERATING PARAMETERS.
    let one = run(
        &d,
        &n,
        0,
        &[0xa3, 0x0c, 2, 0x84, 0, 3, 0, 0, 0, 20, 0, 0],
        20,
    );
    assert_eq!(
        one.data_in,
        [0, 3, 0, 16, 0x84, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0]
    );
    // EXTENDED COPY has no service action in LID1: asking with one is INVALID FIELD IN CDB.
    let bad = run(
        &d,
        &n,
        0,
        &[0xa3, 0x0c, 2, 0x83, 0, 0, 0, 0, 0, 20, 0, 0],
        20,
    );
    assert_eq!(key(&bad), (5, 0x24, 0));
}

#[test]
fn execute_into_places_data_in_the_callers_buffer() {
    let f = fixture();
    let n = nexus(1);
    assert_eq!(key(&run(&f.d, &n, 0, &TUR, 0)), (6, 0x29, 0));
    let data: Vec<u8> = (0..1024u32).map(|x| (x * 3 + 1) as u8).collect();
    let write = [0x2a, 0, 0, 0, 0, 2, 0, 0, 2, 0];
    let r = f.d.execute(&n, 0, &write, &data, 0, &Abort::new());
    assert_eq!(r.status, Status::GOOD);
    // A READ straight into the buffer; the bytes past what was read are not touched.
    let mut buf = vec![0xee; 1536];
    let read = [0x28, 0, 0, 0, 0, 2, 0, 0, 2, 0];
    let (r, got) = f.d.execute_into(&n, 0, &read, &[], &mut buf, &Abort::new());
    assert_eq!((r.status, got, r.data_in.len()), (Status::GOOD, 1024, 0));
    assert!(buf[..1024] == data[..] && buf[1024..].iter().all(|&b| b == 0xee));
    // What the dispatcher builds itself is copied in, cut to the buffer; INQUIRY gets 3PC.
    let mut small = [0u8; 20];
    let (r, got) =
        f.d.execute_into(&n, 0, &REPORT_LUNS, &[], &mut small, &Abort::new());
    assert_eq!((r.status, got), (Status::GOOD, 20));
    assert_eq!(small[..4], [0, 0, 0, 16]);
    let mut inq = [0u8; 96];
    let (r, got) = f.d.execute_into(&n, 0, &INQ, &[], &mut inq, &Abort::new());
    assert_eq!((r.status, got, inq[5] & 0x08), (Status::GOOD, 96, 0x08));
    // A CHECK CONDITION places nothing.
    let oob = [0x28, 0, 0, 0, 0, 63, 0, 0, 2, 0];
    let (r, got) = f.d.execute_into(&n, 0, &oob, &[], &mut buf, &Abort::new());
    assert_eq!((key(&r), got), ((5, 0x21, 0), 0));
}

#[test]
fn only_reads_and_writes_on_a_concurrent_device_may_overlap() {
    let f = fixture();
    for op in [0x08, 0x28, 0xa8, 0x88, 0x0a, 0x2a, 0xaa, 0x8a] {
        assert!(
            f.d.concurrent(0, &[op, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            "{op:#x} on the disk"
        );
        assert!(
            !f.d.concurrent(1, &[op, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            "{op:#x} on the tape"
        );
        assert!(
            !f.d.concurrent(9, &[op, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            "no such LUN"
        );
    }
    for cdb in [
        &TUR[..],
        &INQ,
        &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        &[0x83; 16],
        &[],
    ] {
        assert!(!f.d.concurrent(0, cdb), "{cdb:x?}");
    }
}

/// F1 of #14: a LUN whose allow list does not name the initiator does not exist for it, by
/// any command: REPORT LUNS leaves it out (numbers do not shift), INQUIRY answers as for no
/// LUN, everything else — reads, writes, EXTENDED COPY, RECEIVE COPY RESULTS, REQUEST
/// SENSE — is 25/00 and never reaches the device or the copy manager.
#[test]
fn a_masked_lun_does_not_exist_for_other_initiators() {
    let copy = RecordingCopyService::new();
    let disk = Arc::new(MemoryDisk::new("disk0", 512, 64));
    let vault = Arc::new(MemoryDisk::new("vault", 512, 64));
    let luns = vec![
        Lun::from(disk),
        Lun {
            device: vault.clone(),
            allow: vec!["iqn.allowed".into()],
        },
    ];
    let d = Dispatcher::new(luns, copy.clone());
    let other = nexus(1);
    let allowed = Nexus {
        initiator: "IQN.Allowed".into(),
        session: 2,
    };
    for n in [&other, &allowed] {
        // Clear the power-on unit attention on both LUNs.
        let _ = run(&d, n, 0, &TUR, 0);
        let _ = run(&d, n, 1, &TUR, 0);
    }
    let r = run(&d, &other, 0, &REPORT_LUNS, 256);
    assert_eq!(r.data_in, [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let r = run(&d, &allowed, 0, &REPORT_LUNS, 256);
    assert_eq!(r.data_in[..4], [0, 0, 0, 16]);
    assert_eq!(run(&d, &other, 1, &INQ, 96).data_in[0], 0x7f);
    assert_eq!(run(&d, &allowed, 1, &INQ, 96).data_in[0], 0x00);
    let read10 = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    let xcopy = [0x83, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0];
    let rcr = [0x84, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0];
    for cdb in [&TUR[..], &read10, &xcopy, &rcr, &[3, 0, 0, 0, 18, 0]] {
        assert_eq!(
            key(&run(&d, &other, 1, cdb, 512)),
            (5, 0x25, 0),
            "{cdb:02x?}"
        );
    }
    let write10 = [0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    let r = d.execute(&other, 1, &write10, &[0xee; 512], 0, &Abort::new());
    assert_eq!(key(&r), (5, 0x25, 0));
    assert!(copy.calls().is_empty(), "nothing reached the copy manager");
    assert!(!d.has_lun(&other, 1) && d.has_lun(&allowed, 1) && d.has_lun(&other, 0));
    // The allowed initiator reads the block the refused write did not change.
    let r = run(&d, &allowed, 1, &read10, 512);
    assert_eq!((r.status, r.data_in.clone()), (Status::GOOD, vec![0; 512]));
    let r = d.execute(&allowed, 1, &xcopy, &[0; 16], 0, &Abort::new());
    assert_eq!(r.status, Status::GOOD);
    assert_eq!(copy.calls().len(), 1);
}

#[test]
fn mode_select_raises_mode_parameters_changed_for_the_other_nexuses_spc4_7_5_1() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = crate::device::disk::DiskOptions::new(dir.path().join("d.img"), 512);
    opts.create_size = Some(64 * 512);
    let disk = crate::device::disk::EmulatedDisk::open("disk0", &opts).unwrap();
    let luns: Vec<Arc<dyn ScsiDevice>> = vec![Arc::new(disk)];
    let d = Dispatcher::new(luns, RecordingCopyService::new());
    let (a, b, c) = (nexus(1), nexus(2), nexus(3));
    for n in [&a, &b, &c] {
        assert_eq!(key(&run(&d, n, 0, &TUR, 0)), (6, 0x29, 0));
    }
    let select = |n: &Nexus, swp: u8| {
        let list = [
            0,
            0,
            0,
            0,
            0x0a,
            0x0a,
            0x02,
            0x10,
            swp << 3,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        d.execute(n, 0, &[0x15, 0x10, 0, 0, 16, 0], &list, 0, &Abort::new())
    };
    assert_eq!(select(&a, 1).status, Status::GOOD);
    // Not for the nexus that made the change; once for each other one, before anything
    // else (a write then meets the software write protect).
    assert_eq!(run(&d, &a, 0, &TUR, 0).status, Status::GOOD);
    assert_eq!(key(&run(&d, &b, 0, &TUR, 0)), (6, 0x2a, 0x01));
    assert_eq!(run(&d, &b, 0, &TUR, 0).status, Status::GOOD);
    let write = [0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    let w = |n: &Nexus| d.execute(n, 0, &write, &[0u8; 512], 0, &Abort::new());
    assert_eq!(key(&w(&c)), (6, 0x2a, 0x01));
    assert_eq!(key(&w(&c)), (7, 0x27, 0x02));
    assert_eq!(key(&w(&a)), (7, 0x27, 0x02));
    // A nexus seen for the first time gets POWER ON, RESET only.
    assert_eq!(key(&run(&d, &nexus(4), 0, &TUR, 0)), (6, 0x29, 0));
    assert_eq!(run(&d, &nexus(4), 0, &TUR, 0).status, Status::GOOD);
    // B clears SWP: A and C are told, B is not.
    assert_eq!(select(&b, 0).status, Status::GOOD);
    assert_eq!(w(&b).status, Status::GOOD);
    assert_eq!(key(&w(&a)), (6, 0x2a, 0x01));
    assert_eq!(w(&a).status, Status::GOOD);
    assert_eq!(key(&run(&d, &c, 0, &TUR, 0)), (6, 0x2a, 0x01));
}
