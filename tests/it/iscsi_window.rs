//! The CmdSN window of RFC 7143 4.2.2.1 over a TCP socket, with serial number arithmetic
//! (RFC 1982) at the wrap from 2^32 - 1 to 0: a non-immediate command whose CmdSN is below
//! ExpCmdSN or above MaxCmdSN is silently ignored (never held, never answered), one ahead
//! of ExpCmdSN inside the window is held until the gap is filled, and every response says
//! ExpCmdSN = the next CmdSN expected and MaxCmdSN = ExpCmdSN + queue depth - 1.
//!
//! Non-immediate NOP-Outs (ITT set) are the commands: each is answered by one NOP-In in
//! CmdSN order, so which NOP-In comes next tells what the target did with each one, with
//! no timing involved.

use crate::common;

use std::sync::Arc;

use common::{Initiator, IQN};
use xcopyd::device::ScsiDevice;
use xcopyd::frontend::iscsi::{self, Target, TargetConfig};
use xcopyd::frontend::testing::{MemoryDisk, RecordingCopyService};
use xcopyd::frontend::Dispatcher;
use xcopyd::iscsi::pdu::{Bhs, Opcode, Pdu};

/// TargetConfig::new's queue depth.
const DEPTH: u32 = 32;

fn start() -> Target {
    let luns: Vec<Arc<dyn ScsiDevice>> = vec![Arc::new(MemoryDisk::new("disk0", 512, 64))];
    let d = Arc::new(Dispatcher::new(luns, RecordingCopyService::new()));
    let config = TargetConfig::new("127.0.0.1:0", IQN);
    assert_eq!(config.queue_depth, DEPTH);
    iscsi::start(config, d).unwrap()
}

fn be32(p: &Pdu, at: usize) -> u32 {
    u32::from_be_bytes([
        p.bhs.byte(at),
        p.bhs.byte(at + 1),
        p.bhs.byte(at + 2),
        p.bhs.byte(at + 3),
    ])
}

/// (ExpCmdSN, MaxCmdSN) of a target PDU (bytes 28-31 and 32-35).
fn window(p: &Pdu) -> (u32, u32) {
    (be32(p, 28), be32(p, 32))
}

/// Logs in with the first CmdSN `first`; the login response must open the window there.
fn login(target: &Target, first: u32) -> Initiator {
    let keys = "InitiatorName=iqn.test:window|TargetName=iqn.2026-11.org.xcopyd:test|\
                SessionType=Normal|HeaderDigest=None|DataDigest=None";
    assert!(keys.contains(IQN));
    let (i, r) = Initiator::login_at(target.local_addr(), keys, first);
    assert_eq!(
        (r.bhs.opcode(), r.bhs.byte(36)),
        (Opcode::LOGIN_RESPONSE, 0)
    );
    assert_eq!(r.bhs.flags() & 0x83, 0x83, "straight to full feature phase");
    assert_eq!(window(&r), (first, first.wrapping_add(DEPTH - 1)));
    i
}

/// A non-immediate NOP-Out with CmdSN `sn` and ITT `itt` (answered with a NOP-In).
fn nop(i: &mut Initiator, sn: u32, itt: u32) {
    let mut b = Bhs::new(Opcode::NOP_OUT);
    b.set_flags(0x80)
        .set_itt(itt)
        .set_ttt(0xffff_ffff)
        .set_cmd_sn(sn)
        .set_exp_stat_sn(0);
    i.send(&Pdu::with_data(b, itt.to_be_bytes().to_vec()));
}

/// The next NOP-In: its ITT must be `itt`, and it must advertise the window after `sn`.
fn answered(i: &mut Initiator, itt: u32, sn: u32) {
    let r = i.recv();
    assert_eq!(
        (r.bhs.opcode(), r.bhs.itt()),
        (Opcode::NOP_IN, itt),
        "the answer to CmdSN {sn:#x} comes next"
    );
    assert_eq!(r.data, itt.to_be_bytes());
    let exp = sn.wrapping_add(1);
    assert_eq!(
        window(&r),
        (exp, exp.wrapping_add(DEPTH - 1)),
        "after {sn:#x}"
    );
}

/// An immediate NOP-Out: answered at once whatever the window, it shows that nothing
/// else was answered before it.
fn ping(i: &mut Initiator, sn: u32, itt: u32) {
    let mut b = Bhs::new(Opcode::NOP_OUT);
    b.set_immediate(true)
        .set_flags(0x80)
        .set_itt(itt)
        .set_ttt(0xffff_ffff)
        .set_cmd_sn(sn);
    i.send(&Pdu::new(b));
    let r = i.recv();
    assert_eq!((r.bhs.opcode(), r.bhs.itt()), (Opcode::NOP_IN, itt));
    assert_eq!(window(&r).0, sn, "ExpCmdSN unchanged by an immediate PDU");
}

/// Below, inside and above the window, starting at `first`; returns the next CmdSN.
fn exercise(i: &mut Initiator, first: u32) -> u32 {
    let mut tags = 0x101u32..;
    let mut next_itt = move || tags.next().unwrap();
    let mut sn = first;
    let t = next_itt();
    nop(i, sn, t);
    answered(i, t, sn);
    sn = sn.wrapping_add(1);

    // Below: the CmdSN just used again, and one long gone: ignored.
    let (old, older) = (next_itt(), next_itt());
    nop(i, sn.wrapping_sub(1), old);
    nop(i, sn.wrapping_sub(1000), older);
    ping(i, sn, next_itt());
    let now = next_itt();
    nop(i, sn, now);
    answered(i, now, sn);
    sn = sn.wrapping_add(1);

    // Inside, ahead of ExpCmdSN: held until the gap is filled, then run in CmdSN order.
    let ahead: Vec<u32> = (0..3).map(|_| next_itt()).collect();
    nop(i, sn.wrapping_add(2), ahead[2]);
    nop(i, sn.wrapping_add(1), ahead[1]);
    ping(i, sn, next_itt());
    nop(i, sn, ahead[0]);
    for (k, &t) in ahead.iter().enumerate() {
        answered(i, t, sn.wrapping_add(k as u32));
    }
    sn = sn.wrapping_add(3);

    // Above: MaxCmdSN + 1 is ignored, not held: once the window has moved past it, the
    // command sent there legitimately is the one answered.
    let max = sn.wrapping_add(DEPTH - 1);
    let (beyond, far) = (next_itt(), next_itt());
    nop(i, max.wrapping_add(1), beyond);
    nop(i, sn.wrapping_add(0x8000_0000 - 1), far);
    for k in 0..DEPTH {
        let t = next_itt();
        nop(i, sn.wrapping_add(k), t);
        answered(i, t, sn.wrapping_add(k));
    }
    sn = sn.wrapping_add(DEPTH);
    assert_eq!(sn, max.wrapping_add(1));
    let legit = next_itt();
    nop(i, sn, legit);
    answered(i, legit, sn);
    sn.wrapping_add(1)
}

#[test]
fn below_inside_and_above_the_window() {
    let target = start();
    let mut i = login(&target, 1);
    let sn = exercise(&mut i, 1);
    i.cmd_sn = sn;
    i.logout();
    target.shutdown();
}

/// The same, with the window across 2^32: it starts 8 below the wrap, so ExpCmdSN, the
/// held commands and MaxCmdSN each cross it; then a second round entirely past it.
#[test]
fn the_window_wraps_at_2_pow_32() {
    let target = start();
    let first = 0u32.wrapping_sub(8);
    let mut i = login(&target, first);
    let sn = exercise(&mut i, first);
    assert!(sn < first, "the run crossed the wrap");
    let sn = exercise(&mut i, sn);
    i.cmd_sn = sn;
    i.logout();
    target.shutdown();
}

/// Each start point puts a different part of the window on the wrap: the last CmdSN
/// before it, ExpCmdSN on 0, MaxCmdSN on 2^32 - 1 and on 0.
#[test]
fn every_part_of_the_window_on_the_wrap() {
    let target = start();
    for first in [
        u32::MAX,
        0,
        u32::MAX - (DEPTH - 1),
        u32::MAX - (DEPTH - 2),
        0x7fff_ffff,
        0x8000_0000,
    ] {
        let mut i = login(&target, first);
        let sn = exercise(&mut i, first);
        i.cmd_sn = sn;
        i.logout();
    }
    target.shutdown();
}
