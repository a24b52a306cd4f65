//! The TCMU shared-memory layout (include/uapi/linux/target_core_user.h, mailbox version 2)
//! decoded from a byte view, so it runs — and is fuzzed — without the kernel.
//!
//! The map starts with `struct tcmu_mailbox`; the command ring is `cmdr_size` bytes at
//! `cmdr_off`; everything the entries' iovecs point at is beyond it. Offsets, checked with
//! `offsetof()` against the installed header (only the outer structs are `__packed`; the
//! union's `req` struct is not, hence `cdb_off` at +24 and `iov[]` at +48):
//!
//! | field | offset | | field | offset |
//! |---|---|---|---|---|
//! | mailbox.version (u16) | 0 | | entry.hdr.len_op (u32) | 0 |
//! | mailbox.flags (u16) | 2 | | entry.hdr.cmd_id (u16) | 4 |
//! | mailbox.cmdr_off (u32) | 4 | | entry.hdr.kflags / uflags (u8) | 6 / 7 |
//! | mailbox.cmdr_size (u32) | 8 | | req.iov_cnt / iov_bidi_cnt / iov_dif_cnt (u32) | 8 / 12 / 16 |
//! | mailbox.cmd_head (u32, kernel) | 12 | | req.cdb_off (u64) | 24 |
//! | mailbox.cmd_tail (u32, us) | 64 | | req.iov[] {base u64, len u64} | 48 |
//! | tmr.tmr_type (u8) | 8 | | rsp.scsi_status (u8) | 8 |
//! | tmr.cmd_cnt (u32) | 12 | | rsp.read_len (u32) | 12 |
//! | tmr.cmd_ids[] (u16) | 32 | | rsp.sense_buffer[96] | 16 |
//!
//! `sizeof(struct tcmu_cmd_entry)` is 112: the kernel never makes a command entry shorter,
//! so the response always fits in the entry it is written to.
//!
//! Nothing here trusts the bytes: every offset and length is checked against the map and
//! the ring, arithmetic is checked, and nothing panics. A malformed header (which leaves no
//! way to find the next entry) is a [`RingError`]: the device is failed. A well-framed
//! command whose CDB or iovecs point outside the map is a [`CmdEntry`] with `bad` set: it
//! is completed with CHECK CONDITION.

/// Offsets in `struct tcmu_mailbox`.
pub mod mailbox {
    pub const VERSION: usize = 0;
    pub const FLAGS: usize = 2;
    pub const CMDR_OFF: usize = 4;
    pub const CMDR_SIZE: usize = 8;
    pub const CMD_HEAD: usize = 12;
    pub const CMD_TAIL: usize = 64;
    /// `sizeof(struct tcmu_mailbox)`.
    pub const SIZE: usize = 128;
}

/// `TCMU_MAILBOX_FLAG_CAP_OOOC`: the kernel accepts out-of-order completions.
pub const CAP_OOOC: u16 = 1 << 0;
/// `TCMU_MAILBOX_FLAG_CAP_READ_LEN`: the kernel honours `rsp.read_len`.
pub const CAP_READ_LEN: u16 = 1 << 1;
/// `TCMU_MAILBOX_FLAG_CAP_TMR`: the kernel may put TMR entries in the ring.
pub const CAP_TMR: u16 = 1 << 2;

/// `enum tcmu_opcode`, in the low 3 bits of `len_op`.
pub const OP_PAD: u32 = 0;
pub const OP_CMD: u32 = 1;
pub const OP_TMR: u32 = 2;
const OP_MASK: u32 = 7;

/// `TCMU_UFLAG_READ_LEN`: `rsp.read_len` is valid.
pub const UFLAG_READ_LEN: u8 = 0x2;

/// Offsets in `struct tcmu_cmd_entry` / `struct tcmu_tmr_entry`.
pub mod entry {
    pub const LEN_OP: usize = 0;
    pub const CMD_ID: usize = 4;
    pub const UFLAGS: usize = 7;
    pub const IOV_CNT: usize = 8;
    pub const IOV_BIDI_CNT: usize = 12;
    pub const IOV_DIF_CNT: usize = 16;
    pub const CDB_OFF: usize = 24;
    pub const IOV: usize = 48;
    pub const IOV_SIZE: usize = 16;
    pub const SCSI_STATUS: usize = 8;
    pub const READ_LEN: usize = 12;
    pub const SENSE: usize = 16;
    pub const SENSE_SIZE: usize = 96;
    /// `sizeof(struct tcmu_cmd_entry)`.
    pub const SIZE: usize = 112;
    pub const TMR_TYPE: usize = 8;
    pub const TMR_CMD_CNT: usize = 12;
    pub const TMR_CMD_IDS: usize = 32;
}

/// TMR types (`TCMU_TMR_*`).
pub mod tmr {
    pub const ABORT_TASK: u8 = 1;
    pub const ABORT_TASK_SET: u8 = 2;
    pub const CLEAR_TASK_SET: u8 = 4;
    pub const LUN_RESET: u8 = 5;
    pub const TARGET_WARM_RESET: u8 = 6;
    pub const TARGET_COLD_RESET: u8 = 7;
    pub const LUN_RESET_PRO: u8 = 128;
}

/// An access outside the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfBounds;

/// The shared map as bytes. The UIO mapping ([`crate::sys::uio::UioMap`]) and the tests'
/// fake kernel implement it. Byte accesses are bounds-checked; the two mailbox words are
/// accessed atomically (`cmd_head` with acquire: the entries before it are then visible;
/// `cmd_tail` with release: the responses before it are visible to the kernel first).
pub trait SharedMap: Send + Sync {
    /// Size of the map in bytes.
    fn size(&self) -> usize;
    /// Copies `buf.len()` bytes at `offset` into `buf`.
    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), OutOfBounds>;
    /// Copies `data` into the map at `offset`.
    fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), OutOfBounds>;
    /// `mailbox.cmd_head`, written by the kernel (acquire).
    fn cmd_head(&self) -> u32;
    /// `mailbox.cmd_tail` (relaxed: only we write it).
    fn cmd_tail(&self) -> u32;
    /// Publishes `mailbox.cmd_tail` (release).
    fn set_cmd_tail(&self, tail: u32);
}

fn read_u8(m: &dyn SharedMap, off: usize) -> Result<u8, OutOfBounds> {
    let mut b = [0u8; 1];
    m.read_at(off, &mut b)?;
    Ok(b[0])
}

fn read_u16(m: &dyn SharedMap, off: usize) -> Result<u16, OutOfBounds> {
    let mut b = [0u8; 2];
    m.read_at(off, &mut b)?;
    Ok(u16::from_ne_bytes(b))
}

fn read_u32(m: &dyn SharedMap, off: usize) -> Result<u32, OutOfBounds> {
    let mut b = [0u8; 4];
    m.read_at(off, &mut b)?;
    Ok(u32::from_ne_bytes(b))
}

fn read_u64(m: &dyn SharedMap, off: usize) -> Result<u64, OutOfBounds> {
    let mut b = [0u8; 8];
    m.read_at(off, &mut b)?;
    Ok(u64::from_ne_bytes(b))
}

/// Why a ring cannot be served any more.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    #[error("map of {0} bytes is smaller than the mailbox")]
    MapTooSmall(usize),
    #[error("mailbox version {0} (this handler speaks 2)")]
    Version(u16),
    #[error("command ring {off:#x}+{size:#x} does not fit the map of {map:#x} bytes")]
    RingOutside { off: u32, size: u32, map: usize },
    #[error("ring offset {0:#x} is outside the ring or misaligned")]
    BadOffset(u32),
    #[error("entry at {at:#x}: length {len:#x} is zero, misaligned or runs past the ring end")]
    BadLength { at: u32, len: u32 },
    #[error("entry at {at:#x}: unknown opcode {op}")]
    UnknownOp { at: u32, op: u32 },
    #[error("entry at {0:#x}: a command entry shorter than struct tcmu_cmd_entry")]
    ShortCommand(u32),
    #[error("completion with no command entry left between tail and head")]
    NoCommandAtTail,
}

/// The mailbox header, read once when the device is opened (the kernel never changes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mailbox {
    pub version: u16,
    pub flags: u16,
    pub cmdr_off: u32,
    pub cmdr_size: u32,
}

impl Mailbox {
    /// Reads and checks the mailbox of `map`.
    pub fn read(map: &dyn SharedMap) -> Result<Self, RingError> {
        let size = map.size();
        let too_small = |_| RingError::MapTooSmall(size);
        if size < mailbox::SIZE {
            return Err(RingError::MapTooSmall(size));
        }
        let mb = Self {
            version: read_u16(map, mailbox::VERSION).map_err(too_small)?,
            flags: read_u16(map, mailbox::FLAGS).map_err(too_small)?,
            cmdr_off: read_u32(map, mailbox::CMDR_OFF).map_err(too_small)?,
            cmdr_size: read_u32(map, mailbox::CMDR_SIZE).map_err(too_small)?,
        };
        if mb.version != 2 {
            return Err(RingError::Version(mb.version));
        }
        let end = u64::from(mb.cmdr_off) + u64::from(mb.cmdr_size);
        if (mb.cmdr_off as usize) < mailbox::SIZE
            || mb.cmdr_size == 0
            || !mb.cmdr_size.is_multiple_of(8)
            || end > size as u64
        {
            return Err(RingError::RingOutside {
                off: mb.cmdr_off,
                size: mb.cmdr_size,
                map: size,
            });
        }
        Ok(mb)
    }

    pub fn has(&self, cap: u16) -> bool {
        self.flags & cap != 0
    }

    /// Checks a ring offset (head or tail) the kernel or we produced.
    pub fn check_offset(&self, at: u32) -> Result<u32, RingError> {
        if at < self.cmdr_size && at.is_multiple_of(8) {
            Ok(at)
        } else {
            Err(RingError::BadOffset(at))
        }
    }

    fn map_offset(&self, at: u32, field: usize) -> usize {
        self.cmdr_off as usize + at as usize + field
    }

    /// The framing of the entry at ring offset `at`: its opcode and length, checked so
    /// that the entry lies inside the ring.
    pub fn frame(&self, map: &dyn SharedMap, at: u32) -> Result<(u32, u32), RingError> {
        let at = self.check_offset(at)?;
        let len_op = read_u32(map, self.map_offset(at, entry::LEN_OP))
            .map_err(|_| RingError::BadOffset(at))?;
        let (op, len) = (len_op & OP_MASK, len_op & !OP_MASK);
        if len == 0 || u64::from(at) + u64::from(len) > u64::from(self.cmdr_size) {
            return Err(RingError::BadLength { at, len });
        }
        if !matches!(op, OP_PAD | OP_CMD | OP_TMR) {
            return Err(RingError::UnknownOp { at, op });
        }
        if op == OP_CMD && (len as usize) < entry::SIZE {
            return Err(RingError::ShortCommand(at));
        }
        Ok((op, len))
    }

    /// The ring offset after an entry of `len` bytes at `at`.
    pub fn advance(&self, at: u32, len: u32) -> u32 {
        let next = u64::from(at) + u64::from(len);
        (next % u64::from(self.cmdr_size)) as u32
    }

    /// Decodes the entry at ring offset `at`; returns it and its length.
    pub fn entry(&self, map: &dyn SharedMap, at: u32) -> Result<(Entry, u32), RingError> {
        let (op, len) = self.frame(map, at)?;
        let base = self.map_offset(at, 0);
        let entry = match op {
            OP_PAD => Entry::Pad,
            OP_TMR => Entry::Tmr(decode_tmr(map, base, len as usize)),
            _ => Entry::Cmd(decode_cmd(map, base, len as usize)),
        };
        Ok((entry, len))
    }
}

/// One decoded ring entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Pad,
    Cmd(CmdEntry),
    Tmr(TmrEntry),
}

/// A data buffer of a command: `len` bytes at map offset `base`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iov {
    pub base: usize,
    pub len: usize,
}

/// A command entry, copied out of the ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmdEntry {
    pub cmd_id: u16,
    pub cdb: Vec<u8>,
    /// The data buffers (`iov_cnt` of them): data-out for a write, data-in for a read.
    pub iovs: Vec<Iov>,
    /// Why the entry cannot be run (CDB or an iovec outside the map); it is then
    /// completed with CHECK CONDITION.
    pub bad: Option<&'static str>,
}

impl CmdEntry {
    /// Total bytes of the data buffers (saturating: `bad` is set when it would overflow).
    pub fn data_len(&self) -> usize {
        self.iovs
            .iter()
            .fold(0usize, |a, i| a.saturating_add(i.len))
    }
}

/// A task management notification (`struct tcmu_tmr_entry`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TmrEntry {
    pub tmr_type: u8,
    /// The commands in the ring the TMR affects (at most what the entry holds).
    pub cmd_ids: Vec<u16>,
}

/// The CDB length its operation code implies (SAM-5 table: groups 0..5; variable-length 7Fh
/// from its ADDITIONAL CDB LENGTH); None for the vendor-specific groups 6 and 7.
pub fn cdb_len(op: u8, byte7: Option<u8>) -> Option<usize> {
    if op == 0x7f {
        return byte7.map(|a| 8 + usize::from(a));
    }
    match op >> 5 {
        0 => Some(6),
        1 | 2 => Some(10),
        4 => Some(16),
        5 => Some(12),
        _ => None,
    }
}

fn decode_cmd(map: &dyn SharedMap, base: usize, len: usize) -> CmdEntry {
    let field = |f: usize| base + f;
    let mut cmd = CmdEntry {
        cmd_id: read_u16(map, field(entry::CMD_ID)).unwrap_or(0),
        cdb: Vec::new(),
        iovs: Vec::new(),
        bad: None,
    };
    let counts = (
        read_u32(map, field(entry::IOV_CNT)),
        read_u32(map, field(entry::IOV_BIDI_CNT)),
        read_u32(map, field(entry::IOV_DIF_CNT)),
        read_u64(map, field(entry::CDB_OFF)),
    );
    let (Ok(iov_cnt), Ok(bidi), Ok(dif), Ok(cdb_off)) = counts else {
        cmd.bad = Some("entry outside the map");
        return cmd;
    };
    // All iovecs (data, bidi, dif) must fit in the entry.
    let total = u64::from(iov_cnt) + u64::from(bidi) + u64::from(dif);
    let room = (len.saturating_sub(entry::IOV) / entry::IOV_SIZE) as u64;
    if total > room {
        cmd.bad = Some("iovec count larger than the entry");
        return cmd;
    }
    let map_size = map.size();
    let mut sum = 0usize;
    for i in 0..iov_cnt as usize {
        let at = field(entry::IOV + i * entry::IOV_SIZE);
        let (Ok(b), Ok(l)) = (read_u64(map, at), read_u64(map, at + 8)) else {
            cmd.bad = Some("iovec outside the map");
            return cmd;
        };
        let fits = b.checked_add(l).is_some_and(|end| end <= map_size as u64);
        if !fits {
            cmd.bad = Some("data buffer outside the map");
            return cmd;
        }
        sum = sum.saturating_add(l as usize);
        if sum > map_size {
            cmd.bad = Some("data buffers larger than the map");
            return cmd;
        }
        cmd.iovs.push(Iov {
            base: b as usize,
            len: l as usize,
        });
    }
    let Ok(cdb_off) = usize::try_from(cdb_off) else {
        cmd.bad = Some("CDB outside the map");
        return cmd;
    };
    let op = read_u8(map, cdb_off);
    let byte7 = cdb_off.checked_add(7).and_then(|o| read_u8(map, o).ok());
    let Some(n) = op.ok().and_then(|op| cdb_len(op, byte7)) else {
        cmd.bad = Some("CDB outside the map or of unknown length");
        return cmd;
    };
    let mut cdb = vec![0u8; n];
    if map.read_at(cdb_off, &mut cdb).is_err() {
        cmd.bad = Some("CDB outside the map");
        return cmd;
    }
    cmd.cdb = cdb;
    cmd
}

fn decode_tmr(map: &dyn SharedMap, base: usize, len: usize) -> TmrEntry {
    let tmr_type = read_u8(map, base + entry::TMR_TYPE).unwrap_or(0);
    let cnt = read_u32(map, base + entry::TMR_CMD_CNT).unwrap_or(0) as usize;
    let room = len.saturating_sub(entry::TMR_CMD_IDS) / 2;
    let cmd_ids = (0..cnt.min(room))
        .filter_map(|i| read_u16(map, base + entry::TMR_CMD_IDS + 2 * i).ok())
        .collect();
    TmrEntry { tmr_type, cmd_ids }
}

/// Copies the data-out buffers into one vector.
pub fn gather(map: &dyn SharedMap, iovs: &[Iov]) -> Result<Vec<u8>, OutOfBounds> {
    let total = iovs.iter().fold(0usize, |a, i| a.saturating_add(i.len));
    if total > map.size() {
        return Err(OutOfBounds);
    }
    let mut out = vec![0u8; total];
    let mut at = 0;
    for iov in iovs {
        let dst = out.get_mut(at..at + iov.len).ok_or(OutOfBounds)?;
        map.read_at(iov.base, dst)?;
        at += iov.len;
    }
    Ok(out)
}

/// Copies data-in into the buffers, in order; returns the bytes placed (the rest of
/// `data` does not fit and is dropped).
pub fn scatter(map: &dyn SharedMap, iovs: &[Iov], data: &[u8]) -> Result<usize, OutOfBounds> {
    let mut rest = data;
    for iov in iovs {
        if rest.is_empty() {
            break;
        }
        let n = iov.len.min(rest.len());
        let (now, later) = rest.split_at(n);
        map.write_at(iov.base, now)?;
        rest = later;
    }
    Ok(data.len() - rest.len())
}

/// How a command ended, as written to `rsp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub cmd_id: u16,
    pub scsi_status: u8,
    /// Sense bytes; at most 96 are sent.
    pub sense: Vec<u8>,
    /// Data-in bytes placed (sent as `rsp.read_len` when the kernel has CAP_READ_LEN).
    pub read_len: Option<u32>,
}

/// Skips the PAD and TMR entries from `tail` up to `limit` (they need no completion);
/// returns the new tail: `limit` or the first command entry.
pub fn skip_non_commands(
    mb: &Mailbox,
    map: &dyn SharedMap,
    mut tail: u32,
    limit: u32,
) -> Result<u32, RingError> {
    while tail != limit {
        let (op, len) = mb.frame(map, tail)?;
        if op == OP_CMD {
            break;
        }
        tail = mb.advance(tail, len);
    }
    Ok(tail)
}

/// Completes a command the way the kernel expects when completions come out of order
/// (TCMU_MAILBOX_FLAG_CAP_OOOC): the response goes into the first command entry at or
/// after `tail` (skipping PAD and TMR entries), whatever command that entry carried, with
/// its `cmd_id` rewritten to the completed command's; the kernel finds the command by that
/// id. Every entry before `limit` (our parse position) has been copied out already, so
/// overwriting it loses nothing. Returns the tail after that entry and the PAD/TMR
/// entries following it; the caller publishes it with [`SharedMap::set_cmd_tail`].
pub fn complete(
    mb: &Mailbox,
    map: &dyn SharedMap,
    tail: u32,
    limit: u32,
    rsp: &Response,
) -> Result<u32, RingError> {
    let at = skip_non_commands(mb, map, tail, limit)?;
    if at == limit {
        return Err(RingError::NoCommandAtTail);
    }
    let (_, len) = mb.frame(map, at)?;
    let mut sense = [0u8; entry::SENSE_SIZE];
    let n = rsp.sense.len().min(sense.len());
    sense[..n].copy_from_slice(&rsp.sense[..n]);
    let read_len = rsp.read_len.filter(|_| mb.has(CAP_READ_LEN));
    let mut body = [0u8; entry::SIZE - entry::SCSI_STATUS];
    body[0] = rsp.scsi_status;
    body[entry::READ_LEN - entry::SCSI_STATUS..][..4]
        .copy_from_slice(&read_len.unwrap_or(0).to_ne_bytes());
    body[entry::SENSE - entry::SCSI_STATUS..].copy_from_slice(&sense);
    let base = mb.map_offset(at, 0);
    let bad = |_| RingError::BadOffset(at);
    map.write_at(base + entry::CMD_ID, &rsp.cmd_id.to_ne_bytes())
        .map_err(bad)?;
    let uflags = if read_len.is_some() {
        UFLAG_READ_LEN
    } else {
        0
    };
    map.write_at(base + entry::UFLAGS, &[uflags]).map_err(bad)?;
    map.write_at(base + entry::SCSI_STATUS, &body)
        .map_err(bad)?;
    skip_non_commands(mb, map, mb.advance(at, len), limit)
}

/// A [`SharedMap`] over plain memory: for tests and fuzzing, where no kernel runs.
#[cfg(any(test, feature = "testing"))]
pub struct MemMap(std::sync::Mutex<Vec<u8>>);

#[cfg(any(test, feature = "testing"))]
impl MemMap {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(std::sync::Mutex::new(bytes))
    }

    fn bytes(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn u32_at(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        let _ = self.read_at(off, &mut b);
        u32::from_ne_bytes(b)
    }
}

#[cfg(any(test, feature = "testing"))]
impl SharedMap for MemMap {
    fn size(&self) -> usize {
        self.bytes().len()
    }

    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        let m = self.bytes();
        let end = offset.checked_add(buf.len()).ok_or(OutOfBounds)?;
        buf.copy_from_slice(m.get(offset..end).ok_or(OutOfBounds)?);
        Ok(())
    }

    fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), OutOfBounds> {
        let mut m = self.bytes();
        let end = offset.checked_add(data.len()).ok_or(OutOfBounds)?;
        m.get_mut(offset..end)
            .ok_or(OutOfBounds)?
            .copy_from_slice(data);
        Ok(())
    }

    fn cmd_head(&self) -> u32 {
        self.u32_at(mailbox::CMD_HEAD)
    }

    fn cmd_tail(&self) -> u32 {
        self.u32_at(mailbox::CMD_TAIL)
    }

    fn set_cmd_tail(&self, tail: u32) {
        let _ = self.write_at(mailbox::CMD_TAIL, &tail.to_ne_bytes());
    }
}
