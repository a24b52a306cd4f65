//! The sg driver's asynchronous interface (drivers/scsi/sg.c, "sg v3" over write/read): a
//! command is queued by `write(2)` of a `struct sg_io_hdr` on a /dev/sg* file descriptor and
//! its completion collected by `read(2)` of one, so one thread can keep several commands in
//! flight on a device without SG_IO's one-thread-per-command.
//!
//! Invariant: the kernel holds the CDB, data and sense addresses of a queued command until
//! `read` hands that command back. [`SgQueue`] owns those buffers from [`SgQueue::submit`]
//! until [`SgQueue::reap`] returns the command, and never frees the buffers of a command it
//! could not reap (on drop it reaps what is in flight; if the device is gone and `read`
//! fails, the buffers are leaked, never freed under the kernel).

use std::collections::HashMap;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};

use bytemuck::Zeroable;

use super::sg_io::{
    SgIoHdr, SgIoOutcome, SENSE_BUFFER_LEN, SG_DXFER_FROM_DEV, SG_DXFER_NONE, SG_DXFER_TO_DEV,
    SG_INTERFACE_ID,
};

/// The sg driver accepts at most this many queued commands per open file (SG_MAX_QUEUE).
pub const MAX_QUEUE: usize = 16;

/// Which way a queued command's data moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    None,
    FromDevice,
    ToDevice,
}

/// The buffers the kernel may touch while a command is queued. Boxed so their addresses stay
/// put while the map moves its entries.
struct InFlight {
    tag: u64,
    _cdb: Box<[u8]>,
    data: Vec<u8>,
    sense: Box<[u8; SENSE_BUFFER_LEN]>,
}

/// A command handed back by [`SgQueue::reap`].
#[derive(Debug)]
pub struct Completed {
    /// The caller's tag from [`SgQueue::submit`].
    pub tag: u64,
    /// The data buffer, as submitted (filled in for [`Direction::FromDevice`]).
    pub data: Vec<u8>,
    pub sense: Vec<u8>,
    pub outcome: SgIoOutcome,
}

/// Commands in flight on one /dev/sg* file descriptor.
pub struct SgQueue<'fd> {
    fd: BorrowedFd<'fd>,
    in_flight: HashMap<i32, InFlight>,
    next_id: i32,
}

/// SCSI_GENERIC_MAJOR (include/uapi/linux/major.h): only /dev/sg* speaks this interface
/// (a write to anything else would not queue a command, and a read would never return one).
const SG_MAJOR: u64 = 21;

impl<'fd> SgQueue<'fd> {
    /// A queue on `fd`, which must be an open /dev/sg* character device (ENOTTY otherwise).
    pub fn new(fd: BorrowedFd<'fd>) -> io::Result<Self> {
        let st = nix::sys::stat::fstat(fd)?;
        let is_char = st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFCHR;
        if !is_char || nix::sys::stat::major(st.st_rdev) != SG_MAJOR {
            return Err(io::Error::from_raw_os_error(nix::libc::ENOTTY));
        }
        Ok(Self {
            fd,
            in_flight: HashMap::new(),
            next_id: 0,
        })
    }

    /// Commands queued and not yet reaped.
    pub fn len(&self) -> usize {
        self.in_flight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Queues `cdb` with `data` (its length is the transfer length). The buffers belong to
    /// the queue until [`reap`](Self::reap) returns them with `tag`.
    pub fn submit(
        &mut self,
        cdb: &[u8],
        direction: Direction,
        data: Vec<u8>,
        tag: u64,
        timeout_ms: u32,
    ) -> io::Result<()> {
        let invalid = || io::Error::from_raw_os_error(nix::libc::EINVAL);
        if self.in_flight.len() >= MAX_QUEUE {
            return Err(io::Error::from_raw_os_error(nix::libc::EAGAIN));
        }
        let cmd_len = u8::try_from(cdb.len()).map_err(|_| invalid())?;
        let mut entry = InFlight {
            tag,
            _cdb: cdb.into(),
            data,
            sense: Box::new([0; SENSE_BUFFER_LEN]),
        };
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1) & i32::MAX;
        let (dxfer_direction, dxferp) = match direction {
            Direction::None => (SG_DXFER_NONE, 0),
            Direction::FromDevice => (SG_DXFER_FROM_DEV, entry.data.as_mut_ptr() as u64),
            Direction::ToDevice => (SG_DXFER_TO_DEV, entry.data.as_ptr() as u64),
        };
        let dxfer_len = match direction {
            Direction::None => 0,
            _ => u32::try_from(entry.data.len()).map_err(|_| invalid())?,
        };
        let hdr = SgIoHdr {
            interface_id: SG_INTERFACE_ID,
            dxfer_direction,
            cmd_len,
            mx_sb_len: SENSE_BUFFER_LEN as u8,
            dxfer_len,
            dxferp,
            cmdp: entry._cdb.as_ptr() as u64,
            sbp: entry.sense.as_mut_ptr() as u64,
            timeout: timeout_ms,
            pack_id: id,
            ..SgIoHdr::zeroed()
        };
        let bytes = bytemuck::bytes_of(&hdr);
        // SAFETY: write(2) on an sg file descriptor (drivers/scsi/sg.c sg_write ->
        // sg_new_write) copies the 88-byte header from `bytes` (a live local) during the
        // call, then keeps the addresses it names: `cmd_len` bytes at `cmdp` (the boxed CDB),
        // `dxfer_len` bytes at `dxferp` (the data Vec's heap buffer, written into for
        // FromDevice) and up to 252 bytes at `sbp` (the boxed sense buffer). All three are
        // owned by `entry`, which is inserted into `in_flight` below whatever the outcome
        // (moving an InFlight moves the Box/Vec handles, not the heap blocks they point to)
        // and is only released by `reap` after read(2) returned this pack_id, or leaked.
        // `fd` is borrowed, hence open.
        let n =
            unsafe { nix::libc::write(self.fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            // The command was not queued: the kernel keeps no address.
            return Err(io::Error::last_os_error());
        }
        self.in_flight.insert(id, entry);
        Ok(())
    }

    /// Waits for the oldest completed command and hands it back with its buffers.
    pub fn reap(&mut self) -> io::Result<Completed> {
        let mut hdr = SgIoHdr {
            interface_id: SG_INTERFACE_ID,
            pack_id: -1,
            ..SgIoHdr::zeroed()
        };
        let bytes = bytemuck::bytes_of_mut(&mut hdr);
        // SAFETY: read(2) on an sg file descriptor (sg_read -> sg_new_read) writes at most
        // `bytes.len()` (88) bytes, a completed command's header, into `bytes`, which is the
        // live local `hdr` viewed as bytes (SgIoHdr is Pod: any bytes are a valid value);
        // before returning it finishes the command's transfers into the buffers `submit`
        // registered, which `in_flight` still owns. `fd` is borrowed, hence open.
        let n =
            unsafe { nix::libc::read(self.fd.as_raw_fd(), bytes.as_mut_ptr().cast(), bytes.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if usize::try_from(n).ok() != Some(size_of::<SgIoHdr>()) {
            return Err(io::Error::from_raw_os_error(nix::libc::EIO));
        }
        let entry = self
            .in_flight
            .remove(&hdr.pack_id)
            .ok_or_else(|| io::Error::from_raw_os_error(nix::libc::EIO))?;
        let sense_len = usize::from(hdr.sb_len_wr).min(SENSE_BUFFER_LEN);
        Ok(Completed {
            tag: entry.tag,
            sense: entry.sense[..sense_len].to_vec(),
            data: entry.data,
            outcome: SgIoOutcome {
                status: hdr.status,
                masked_status: hdr.masked_status,
                host_status: hdr.host_status,
                driver_status: hdr.driver_status,
                sense_len,
                resid: hdr.resid,
                duration_ms: hdr.duration,
                info: hdr.info,
            },
        })
    }
}

impl Drop for SgQueue<'_> {
    fn drop(&mut self) {
        while !self.in_flight.is_empty() {
            if self.reap().is_err() {
                // The kernel may still hold these addresses: leak rather than free.
                for (_, entry) in self.in_flight.drain() {
                    std::mem::forget(entry);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn only_sg_devices_get_a_queue() {
        for path in ["/dev/null", "/proc/self/stat"] {
            let f = std::fs::File::open(path).unwrap();
            let e = SgQueue::new(f.as_fd()).err().unwrap();
            assert_eq!(e.raw_os_error(), Some(nix::libc::ENOTTY), "{path}");
        }
    }
}
