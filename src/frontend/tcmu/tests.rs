//! The TCMU front end against a fake kernel: a Vec laid out as the kernel lays out the UIO
//! map (mailbox, command ring, data area), filled and reaped the way
//! drivers/target/target_core_user.c does.

use std::sync::{Condvar, Mutex};

use super::ring::{entry, mailbox};
use super::*;
use crate::copy::CopyService;
use crate::device::ScsiDevice;
use crate::frontend::testing::MemoryDisk;
use crate::scsi::Status;

const CMDR_OFF: usize = mailbox::SIZE;
const DATA_OFF: usize = 64 * 1024;
const MAP: usize = 256 * 1024;

/// A completion as the kernel reads it: (cmd_id, uflags, scsi_status, read_len, sense[..18]).
type Reaped = (u16, u8, u8, u32, Vec<u8>);

/// The kernel's side: writes entries at head, reaps completions from tail.
struct FakeKernel {
    mem: Mutex<Vec<u8>>,
    irq: Mutex<u32>,
    irq_cv: Condvar,
    notified: Mutex<u32>,
    gone: AtomicBool,
}

impl FakeKernel {
    fn new(cmdr_size: u32, flags: u16) -> Arc<Self> {
        let mut mem = vec![0u8; MAP];
        mem[0..2].copy_from_slice(&2u16.to_ne_bytes());
        mem[2..4].copy_from_slice(&flags.to_ne_bytes());
        mem[4..8].copy_from_slice(&(CMDR_OFF as u32).to_ne_bytes());
        mem[8..12].copy_from_slice(&cmdr_size.to_ne_bytes());
        Arc::new(Self {
            mem: Mutex::new(mem),
            irq: Mutex::new(0),
            irq_cv: Condvar::new(),
            notified: Mutex::new(0),
            gone: AtomicBool::new(false),
        })
    }

    fn u32_at(&self, off: usize) -> u32 {
        let m = self.mem.lock().unwrap();
        u32::from_ne_bytes(m[off..off + 4].try_into().unwrap())
    }

    fn put(&self, off: usize, bytes: &[u8]) {
        self.mem.lock().unwrap()[off..off + bytes.len()].copy_from_slice(bytes);
    }

    fn get(&self, off: usize, len: usize) -> Vec<u8> {
        self.mem.lock().unwrap()[off..off + len].to_vec()
    }

    fn cmdr_size(&self) -> u32 {
        self.u32_at(mailbox::CMDR_SIZE)
    }

    fn head(&self) -> u32 {
        self.u32_at(mailbox::CMD_HEAD)
    }

    fn tail(&self) -> u32 {
        self.u32_at(mailbox::CMD_TAIL)
    }

    fn set_head(&self, h: u32) {
        self.put(mailbox::CMD_HEAD, &h.to_ne_bytes());
    }

    fn raise_irq(&self) {
        *self.irq.lock().unwrap() += 1;
        self.irq_cv.notify_all();
    }

    /// Queues a PAD of `len` bytes at the head.
    fn queue_pad(&self, len: u32) {
        let head = self.head();
        self.put(CMDR_OFF + head as usize, &len.to_ne_bytes());
        self.set_head((head + len) % self.cmdr_size());
    }

    /// Queues a command as tcmu_queue_cmd does: the iovecs after the fixed part, the CDB
    /// after `sizeof(struct tcmu_cmd_entry) + iov_cnt * 16`, everything 8-byte aligned; a
    /// PAD first when the entry would run past the ring end. Returns the entry's offset.
    fn queue_cmd(&self, cmd_id: u16, cdb: &[u8], iovs: &[(usize, usize)]) -> u32 {
        let base = entry::SIZE + iovs.len() * entry::IOV_SIZE;
        let len = (base + cdb.len()).div_ceil(8) * 8;
        let size = self.cmdr_size();
        let mut head = self.head();
        if head as usize + len > size as usize {
            self.queue_pad(size - head);
            head = 0;
        }
        let at = CMDR_OFF + head as usize;
        let mut e = vec![0u8; len];
        e[0..4].copy_from_slice(&(len as u32 | ring::OP_CMD).to_ne_bytes());
        e[4..6].copy_from_slice(&cmd_id.to_ne_bytes());
        e[8..12].copy_from_slice(&(iovs.len() as u32).to_ne_bytes());
        e[24..32].copy_from_slice(&((at + base) as u64).to_ne_bytes());
        for (i, &(b, l)) in iovs.iter().enumerate() {
            let o = entry::IOV + i * 16;
            e[o..o + 8].copy_from_slice(&(b as u64).to_ne_bytes());
            e[o + 8..o + 16].copy_from_slice(&(l as u64).to_ne_bytes());
        }
        e[base..base + cdb.len()].copy_from_slice(cdb);
        self.put(at, &e);
        self.set_head((head + len as u32) % size);
        head
    }

    fn queue_tmr(&self, tmr_type: u8, ids: &[u16]) {
        let len = (entry::TMR_CMD_IDS + 2 * ids.len()).div_ceil(8) * 8;
        let head = self.head();
        let mut e = vec![0u8; len];
        e[0..4].copy_from_slice(&(len as u32 | ring::OP_TMR).to_ne_bytes());
        e[8] = tmr_type;
        e[12..16].copy_from_slice(&(ids.len() as u32).to_ne_bytes());
        for (i, id) in ids.iter().enumerate() {
            e[32 + 2 * i..34 + 2 * i].copy_from_slice(&id.to_ne_bytes());
        }
        self.put(CMDR_OFF + head as usize, &e);
        self.set_head((head + len as u32) % self.cmdr_size());
    }

    /// Reaps completions from `from` to the published tail like tcmu_handle_completions:
    /// PAD and TMR entries skipped, CMD entries read as (cmd_id, uflags, status, read_len,
    /// sense[..18]). Returns them and the new reap position.
    fn reap(&self, mut from: u32) -> (Vec<Reaped>, u32) {
        let tail = self.tail();
        let mut out = Vec::new();
        while from != tail {
            let at = CMDR_OFF + from as usize;
            let len_op = self.u32_at(at);
            if len_op & 7 == ring::OP_CMD {
                let e = self.get(at, entry::SIZE);
                out.push((
                    u16::from_ne_bytes([e[4], e[5]]),
                    e[7],
                    e[8],
                    u32::from_ne_bytes(e[12..16].try_into().unwrap()),
                    e[16..34].to_vec(),
                ));
            }
            from = (from + (len_op & !7)) % self.cmdr_size();
        }
        (out, from)
    }
}

impl SharedMap for FakeKernel {
    fn size(&self) -> usize {
        MAP
    }
    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), ring::OutOfBounds> {
        let m = self.mem.lock().unwrap();
        let end = offset.checked_add(buf.len()).ok_or(ring::OutOfBounds)?;
        buf.copy_from_slice(m.get(offset..end).ok_or(ring::OutOfBounds)?);
        Ok(())
    }
    fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), ring::OutOfBounds> {
        let mut m = self.mem.lock().unwrap();
        let end = offset.checked_add(data.len()).ok_or(ring::OutOfBounds)?;
        m.get_mut(offset..end)
            .ok_or(ring::OutOfBounds)?
            .copy_from_slice(data);
        Ok(())
    }
    fn cmd_head(&self) -> u32 {
        self.head()
    }
    fn cmd_tail(&self) -> u32 {
        self.tail()
    }
    fn set_cmd_tail(&self, tail: u32) {
        self.put(mailbox::CMD_TAIL, &tail.to_ne_bytes());
    }
}

impl Uio for FakeKernel {
    fn notify(&self) -> std::io::Result<()> {
        *self.notified.lock().unwrap() += 1;
        Ok(())
    }
    fn wait(&self, timeout: Duration) -> std::io::Result<bool> {
        if self.gone.load(Ordering::Acquire) {
            return Err(std::io::Error::from_raw_os_error(5));
        }
        let mut g = self.irq.lock().unwrap();
        if *g == 0 {
            g = self.irq_cv.wait_timeout(g, timeout).unwrap().0;
        }
        let got = *g > 0;
        *g = 0;
        Ok(got)
    }
}

/// A copy service whose EXTENDED COPY runs until released or aborted (a long copy), and
/// whose RECEIVE COPY RESULTS answers at once.
#[derive(Default)]
struct SlowCopy {
    release: Mutex<bool>,
    cv: Condvar,
    started: Mutex<u32>,
}

impl SlowCopy {
    fn release(&self) {
        *self.release.lock().unwrap() = true;
        self.cv.notify_all();
    }
    fn wait_started(&self) {
        for _ in 0..500 {
            if *self.started.lock().unwrap() > 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("copy never started");
    }
}

impl CopyService for SlowCopy {
    fn extended_copy(
        &self,
        _: &Nexus,
        _: Option<Arc<dyn ScsiDevice>>,
        _: &crate::scsi::cdb::ExtendedCopyCdb,
        parameter_list: &[u8],
        abort: &Abort,
    ) -> CommandResult {
        *self.started.lock().unwrap() += 1;
        let mut g = self.release.lock().unwrap();
        while !*g && !abort.is_aborted() {
            g = self
                .cv
                .wait_timeout(g, Duration::from_millis(10))
                .unwrap()
                .0;
        }
        if abort.is_aborted() {
            return CommandResult {
                status: Status::TASK_ABORTED,
                ..CommandResult::default()
            };
        }
        // Echo the parameter list length, to prove the data-out arrived whole.
        assert_eq!(parameter_list, &[0x5a; 100][..]);
        CommandResult::good(Vec::new())
    }
    fn receive_copy_results(
        &self,
        _: &Nexus,
        _: &crate::scsi::copy_results::ReceiveCopyResultsCdb,
    ) -> CommandResult {
        CommandResult::good((0..40).collect())
    }
    fn nexus_lost(&self, _: &Nexus) {}
}

fn nexus() -> Nexus {
    Nexus {
        initiator: "tcmu:1".into(),
        session: 0,
    }
}

struct Fixture {
    k: Arc<FakeKernel>,
    copy: Arc<SlowCopy>,
    handler: Handler,
    /// Notifications seen so far (the handler also notifies after skipping PADs).
    seen: u32,
}

fn fixture(cmdr_size: u32, flags: u16) -> Fixture {
    let k = FakeKernel::new(cmdr_size, flags);
    let copy = Arc::new(SlowCopy::default());
    let disk: Arc<dyn ScsiDevice> = Arc::new(MemoryDisk::new("disk0", 512, 64));
    let d = Arc::new(Dispatcher::new(vec![disk], copy.clone()));
    // Clear the POWER ON unit attention the dispatcher raises for a new nexus.
    let tur = d.execute(&nexus(), 0, &[0; 6], &[], 0, &Abort::new());
    assert_eq!(tur.status, Status::CHECK_CONDITION);
    let handler = Handler::start(k.clone(), d, nexus(), "uio-test".into()).unwrap();
    Fixture {
        k,
        copy,
        handler,
        seen: 0,
    }
}

impl Fixture {
    /// Raises the interrupt and waits until everything queued has been completed.
    fn kick(&mut self) {
        self.k.raise_irq();
        self.settle(|k| k.tail() == k.head());
    }

    fn settle(&mut self, done: impl Fn(&FakeKernel) -> bool) {
        for _ in 0..1000 {
            if done(&self.k) {
                let n = *self.k.notified.lock().unwrap();
                assert!(n > self.seen, "tail moved without a notification");
                self.seen = n;
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("tail {} never reached the expected state", self.k.tail());
    }
}

const WRITE10_3_BLOCKS: [u8; 10] = [0x2a, 0, 0, 0, 0, 2, 0, 0, 3, 0];
const READ10_3_BLOCKS: [u8; 10] = [0x28, 0, 0, 0, 0, 2, 0, 0, 3, 0];

#[test]
fn offsets_match_the_kernel_header() {
    // Checked with offsetof() against /usr/include/linux/target_core_user.h.
    assert_eq!(
        (mailbox::CMDR_OFF, mailbox::CMDR_SIZE, mailbox::CMD_HEAD),
        (4, 8, 12)
    );
    assert_eq!((mailbox::CMD_TAIL, mailbox::SIZE), (64, 128));
    assert_eq!((entry::CDB_OFF, entry::IOV, entry::SIZE), (24, 48, 112));
    assert_eq!(
        (entry::READ_LEN, entry::SENSE, entry::TMR_CMD_IDS),
        (12, 16, 32)
    );
}

#[test]
fn write_over_three_iovs_then_read_back_over_two() {
    let mut f = fixture(4096, ring::CAP_OOOC | ring::CAP_READ_LEN);
    let data: Vec<u8> = (0..1536u32).map(|i| (i * 7 % 251) as u8).collect();
    // Data-out split unevenly over three buffers, not in address order.
    let iovs = [
        (DATA_OFF + 8192, 100),
        (DATA_OFF, 1000),
        (DATA_OFF + 4096, 436),
    ];
    let mut at = 0;
    for &(b, l) in &iovs {
        f.k.put(b, &data[at..at + l]);
        at += l;
    }
    f.k.queue_cmd(7, &WRITE10_3_BLOCKS, &iovs);
    f.kick();
    let (done, pos) = f.k.reap(0);
    // Data-out: no read_len.
    assert_eq!(done, [(7, 0, 0, 0, vec![0; 18])]);
    assert_eq!(pos, f.k.head());
    assert_eq!(f.k.tail(), f.k.head());

    let iovs = [(DATA_OFF + 20000, 1000), (DATA_OFF + 30000, 536)];
    f.k.put(DATA_OFF + 20000, &[0xee; 1000]);
    f.k.queue_cmd(8, &READ10_3_BLOCKS, &iovs);
    f.kick();
    let (done, _) = f.k.reap(pos);
    assert_eq!(done, [(8, ring::UFLAG_READ_LEN, 0, 1536, vec![0; 18])]);
    let mut back = f.k.get(DATA_OFF + 20000, 1000);
    back.extend(f.k.get(DATA_OFF + 30000, 536));
    assert_eq!(back, data);
    f.handler.stop();
}

#[test]
fn pad_at_the_ring_end_is_skipped_and_tail_wraps() {
    // A ring of 512 bytes: 4 entries of 128 fit; the 5th needs a PAD of the 0 bytes left
    // (none), the 6th wraps after a PAD.
    let mut f = fixture(512, ring::CAP_OOOC);
    let tur = [0u8; 6];
    // Entry size: 112 + 6 -> 120.
    let mut pos = 0;
    for round in 0..10u16 {
        f.k.queue_cmd(round, &tur, &[]);
        f.kick();
        let (done, p) = f.k.reap(pos);
        pos = p;
        assert_eq!(done, [(round, 0, 0, 0, vec![0; 18])], "round {round}");
        assert_eq!(f.k.tail(), f.k.head());
    }
    // 10 entries of 120 bytes in a 512-byte ring wrapped twice.
    assert_eq!(f.k.head(), 240);
    f.handler.stop();
}

#[test]
fn sense_lands_at_offset_16_and_read_len_only_with_the_capability() {
    let mut f = fixture(4096, ring::CAP_OOOC);
    // READ(10) past the end of the 64-block disk: 05/21/00.
    let cdb = [0x28, 0, 0, 0, 0, 64, 0, 0, 1, 0];
    let at = f.k.queue_cmd(3, &cdb, &[(DATA_OFF, 512)]);
    f.kick();
    let e = f.k.get(CMDR_OFF + at as usize, entry::SIZE);
    assert_eq!(e[4..6], 3u16.to_ne_bytes());
    assert_eq!(e[7], 0, "no READ_LEN flag without CAP_READ_LEN");
    assert_eq!(e[8], 0x02);
    assert_eq!(e[12..16], [0; 4]);
    assert_eq!(
        e[16..34],
        [0x70, 0, 0x05, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x21, 0, 0, 0, 0, 0]
    );
    assert_eq!(e[34..112], [0; 78]);
    f.handler.stop();
}

#[test]
fn long_copy_and_short_results_complete_out_of_order() {
    let mut f = fixture(4096, ring::CAP_OOOC | ring::CAP_READ_LEN);
    let mut xcopy = [0u8; 16];
    xcopy[0] = 0x83;
    xcopy[13] = 100;
    f.k.put(DATA_OFF, &[0x5a; 60]);
    f.k.put(DATA_OFF + 4096, &[0x5a; 40]);
    let first =
        f.k.queue_cmd(21, &xcopy, &[(DATA_OFF, 60), (DATA_OFF + 4096, 40)]);
    f.k.raise_irq();
    f.copy.wait_started();
    // RECEIVE COPY RESULTS (COPY STATUS) while the copy runs.
    let rcr = [0x84, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0];
    f.k.queue_cmd(22, &rcr, &[(DATA_OFF + 8192, 64)]);
    f.k.raise_irq();
    f.settle(|k| k.tail() != 0);
    // The short command completed first, into the entry at the tail (the copy's entry,
    // already copied out), with its cmd_id rewritten.
    let (done, pos) = f.k.reap(0);
    assert_eq!(done, [(22, ring::UFLAG_READ_LEN, 0, 40, vec![0; 18])]);
    // The copy's entry: 112 + 2 iovecs + a 16-byte CDB.
    assert_eq!(pos, first + 160);
    assert_eq!(
        f.k.get(DATA_OFF + 8192, 64),
        [(0..40).collect::<Vec<u8>>(), vec![0; 24]].concat()
    );
    f.copy.release();
    f.settle(|k| k.tail() == k.head());
    let (done, pos) = f.k.reap(pos);
    assert_eq!(done, [(21, 0, 0, 0, vec![0; 18])]);
    assert_eq!(pos, f.k.head());
    f.handler.stop();
}

#[test]
fn tmr_aborts_the_running_copy() {
    let mut f = fixture(4096, ring::CAP_OOOC | ring::CAP_TMR);
    let mut xcopy = [0u8; 16];
    xcopy[0] = 0x83;
    xcopy[13] = 100;
    f.k.put(DATA_OFF, &[0x5a; 100]);
    f.k.queue_cmd(5, &xcopy, &[(DATA_OFF, 100)]);
    f.k.raise_irq();
    f.copy.wait_started();
    f.k.queue_tmr(ring::tmr::ABORT_TASK, &[5]);
    f.kick();
    let (done, pos) = f.k.reap(0);
    assert_eq!(done, [(5, 0, 0x40, 0, vec![0; 18])]);
    // The TMR entry after it is consumed too.
    assert_eq!(pos, f.k.head());
    f.handler.stop();
}

#[test]
fn bad_entries_get_check_condition_and_a_broken_ring_stops_the_handler() {
    let mut f = fixture(4096, ring::CAP_OOOC);
    // A data buffer beyond the map.
    f.k.queue_cmd(9, &READ10_3_BLOCKS, &[(MAP - 10, 1536)]);
    f.kick();
    let (done, pos) = f.k.reap(0);
    assert_eq!(
        done,
        [(
            9,
            0,
            2,
            0,
            vec![0x70, 0, 0x04, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x44, 0, 0, 0, 0, 0]
        )]
    );
    // An entry of length 0: the ring cannot be walked; the handler gives up.
    let head = f.k.head();
    f.k.put(CMDR_OFF + head as usize, &ring::OP_CMD.to_ne_bytes());
    f.k.set_head(head + 8);
    f.k.raise_irq();
    for _ in 0..500 {
        if f.handler.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(f.handler.is_finished());
    assert_eq!(f.k.tail(), pos);
}

#[test]
fn device_removal_ends_the_handler() {
    let f = fixture(4096, ring::CAP_OOOC);
    f.k.gone.store(true, Ordering::Release);
    for _ in 0..500 {
        if f.handler.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(f.handler.is_finished());
}

#[test]
fn decoding_never_panics_on_garbage() {
    // A few hand-made hostile entries: huge counts, CDB offsets at the map end, wrap.
    let k = FakeKernel::new(1024, 0);
    let mb = Mailbox::read(&*k).unwrap();
    let mut e = vec![0u8; 128];
    e[0..4].copy_from_slice(&(128u32 | ring::OP_CMD).to_ne_bytes());
    e[8..12].copy_from_slice(&u32::MAX.to_ne_bytes());
    k.put(CMDR_OFF, &e);
    let (ent, len) = mb.entry(&*k, 0).unwrap();
    assert_eq!(len, 128);
    assert!(matches!(ent, Entry::Cmd(CmdEntry { bad: Some(_), .. })));
    e[8..12].copy_from_slice(&0u32.to_ne_bytes());
    e[24..32].copy_from_slice(&(MAP as u64 - 1).to_ne_bytes());
    k.put(CMDR_OFF, &e);
    k.put(MAP - 1, &[0x28]);
    let (ent, _) = mb.entry(&*k, 0).unwrap();
    assert!(matches!(ent, Entry::Cmd(CmdEntry { bad: Some(_), .. })));
    // An entry running past the ring end.
    k.put(CMDR_OFF + 1016, &(16u32 | ring::OP_PAD).to_ne_bytes());
    assert_eq!(
        mb.entry(&*k, 1016),
        Err(RingError::BadLength { at: 1016, len: 16 })
    );
    assert_eq!(mb.entry(&*k, 4), Err(RingError::BadOffset(4)));
    assert_eq!(mb.entry(&*k, 1024), Err(RingError::BadOffset(1024)));
}

/// The fuzz target's walk, over a valid map with random bytes written into it: decoding,
/// gathering and completing never panic, and what decodes lies inside the map.
fn walk_never_panics(bytes: Vec<u8>) {
    let size = bytes.len();
    let map = ring::MemMap::new(bytes);
    let Ok(mb) = Mailbox::read(&map) else {
        return;
    };
    let Ok(tail) = mb.check_offset(map.cmd_tail()) else {
        return;
    };
    let head = map.cmd_head();
    let mut at = tail;
    for _ in 0..1024 {
        if at == head {
            break;
        }
        let Ok((entry, len)) = mb.entry(&map, at) else {
            break;
        };
        assert!(u64::from(at) + u64::from(len) <= u64::from(mb.cmdr_size));
        if let Entry::Cmd(c) = &entry {
            if c.bad.is_none() {
                assert!(c.iovs.iter().all(|i| i.base + i.len <= size));
                assert_eq!(ring::gather(&map, &c.iovs).unwrap().len(), c.data_len());
            }
        }
        at = mb.advance(at, len);
    }
    let rsp = Response {
        cmd_id: 1,
        scsi_status: 2,
        sense: vec![0x70; 200],
        read_len: Some(4),
    };
    if let Ok(t) = ring::complete(&mb, &map, tail, at, &rsp) {
        assert!(mb.check_offset(t).is_ok());
    }
}

proptest::proptest! {
    #[test]
    fn hostile_maps_never_panic(
        pokes in proptest::collection::vec((0usize..2048, proptest::num::u8::ANY), 0..64)
    ) {
        let k = FakeKernel::new(1024, ring::CAP_OOOC);
        k.queue_cmd(1, &READ10_3_BLOCKS, &[(DATA_OFF, 1000), (DATA_OFF + 4096, 536)]);
        k.queue_tmr(ring::tmr::ABORT_TASK, &[1]);
        k.queue_cmd(2, &WRITE10_3_BLOCKS, &[(DATA_OFF, 1536)]);
        let mut bytes = k.mem.lock().unwrap().clone();
        for (at, b) in pokes {
            bytes[at] = b;
        }
        walk_never_panics(bytes);
    }
}

#[test]
fn direction_comes_from_the_cdb() {
    for op in [0x0a, 0x15, 0x2a, 0x55, 0x83, 0x8a, 0xaa, 0x42, 0x5f] {
        assert!(is_data_out(&[op, 0, 0, 0, 0, 0]), "{op:#x}");
    }
    for op in [
        0x00, 0x08, 0x12, 0x1a, 0x25, 0x28, 0x84, 0x88, 0x9e, 0xa0, 0x10, 0x11,
    ] {
        assert!(!is_data_out(&[op, 0, 0, 0, 0, 0]), "{op:#x}");
    }
    assert!(!is_data_out(&[]));
}
