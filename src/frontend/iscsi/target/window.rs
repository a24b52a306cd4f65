//! The CmdSN window (RFC 7143 4.2.2.1): which command sequence numbers a session accepts,
//! and the ExpCmdSN/MaxCmdSN every response advertises.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Sequence-number comparison (RFC 1982 serial arithmetic, as RFC 7143 4.2.2.1 uses).
pub(super) fn sn_le(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) >= 0
}

/// The CmdSN window (RFC 7143 4.2.2.1), in atomics: the reader checks each command
/// against it without waiting for the writer lock, which a worker holds while it sends.
pub(super) struct CmdWindow {
    pub(super) exp_cmd_sn: AtomicU32,
    pub(super) queue_depth: u32,
    pub(super) outstanding: AtomicUsize,
    /// The highest MaxCmdSN sent so far (bit 32 set once one was). The initiator may use
    /// every CmdSN up to it, so that (not the current [`Self::max_cmd_sn`]) bounds what we
    /// accept: the reader advances ExpCmdSN before it counts the command as outstanding,
    /// and a response sent by a worker in between advertises one more slot than a moment
    /// later. Written under the writer lock before the PDU that carries it is sent.
    pub(super) advertised: AtomicU64,
}

impl CmdWindow {
    pub(super) fn new(queue_depth: u32) -> Self {
        Self {
            exp_cmd_sn: AtomicU32::new(0),
            queue_depth,
            outstanding: AtomicUsize::new(0),
            advertised: AtomicU64::new(0),
        }
    }

    /// The last CmdSN the initiator may have been allowed to send.
    pub(super) fn end(&self) -> u32 {
        let now = self.max_cmd_sn();
        let sent = self.advertised.load(Ordering::Acquire);
        if sent >> 32 != 0 && sn_le(now, sent as u32) {
            sent as u32
        } else {
            now
        }
    }

    pub(super) fn max_cmd_sn(&self) -> u32 {
        let used = u32::try_from(self.outstanding.load(Ordering::Acquire)).unwrap_or(u32::MAX);
        let exp = self.exp_cmd_sn.load(Ordering::Acquire);
        exp.wrapping_add(self.queue_depth.saturating_sub(used))
            .wrapping_sub(1)
    }
}
