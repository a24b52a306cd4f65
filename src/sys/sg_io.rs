//! The SCSI generic v3 interface: `struct sg_io_hdr` and the `SG_IO` ioctl (0x2285), as
//! include/scsi/sg.h defines them. Works on /dev/sg*, and through the block layer's
//! SG_IO on /dev/sd* and the st driver on /dev/nst*.
//!
//! Only 64-bit targets: the header mirrors the kernel's native layout with pointers as u64
//! (a 32-bit build would need 4-byte pointer fields and no padding).

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};

use bytemuck::{Pod, Zeroable};

/// `interface_id`: 'S' for the v3 interface.
pub const SG_INTERFACE_ID: i32 = b'S' as i32;
/// `dxfer_direction` values (include/scsi/sg.h).
pub const SG_DXFER_NONE: i32 = -1;
pub const SG_DXFER_TO_DEV: i32 = -2;
pub const SG_DXFER_FROM_DEV: i32 = -3;
/// The most sense data SPC allows, and what we ask the kernel for (`mx_sb_len`).
pub const SENSE_BUFFER_LEN: usize = 252;

/// `host_status` values (include/scsi/scsi_status.h, `DID_*`).
pub mod host {
    pub const DID_OK: u16 = 0x00;
    pub const DID_NO_CONNECT: u16 = 0x01;
    pub const DID_BUS_BUSY: u16 = 0x02;
    pub const DID_TIME_OUT: u16 = 0x03;
    pub const DID_BAD_TARGET: u16 = 0x04;
    pub const DID_ABORT: u16 = 0x05;
    pub const DID_ERROR: u16 = 0x07;
    pub const DID_RESET: u16 = 0x08;
    pub const DID_TRANSPORT_DISRUPTED: u16 = 0x0e;
    pub const DID_TRANSPORT_FAILFAST: u16 = 0x0f;
}

/// `driver_status` values (low nibble; include/scsi/sg.h `SG_ERR_DRIVER_*`).
pub mod driver {
    pub const DRIVER_OK: u16 = 0x00;
    pub const DRIVER_TIMEOUT: u16 = 0x06;
    /// Sense data is valid: not an error.
    pub const DRIVER_SENSE: u16 = 0x08;
}

/// `struct sg_io_hdr` (include/scsi/sg.h) on a 64-bit kernel, 88 bytes.
///
/// The pointer members (`dxferp`, `cmdp`, `sbp`, `usr_ptr`) are stored as u64 addresses so
/// that the struct is plain old data: any bit pattern is a valid value, and the explicit
/// `_pad*` fields make the compiler-inserted padding of the C struct (4 bytes after
/// `pack_id`, 4 at the end) into real fields, so `Pod` holds (no uninitialised bytes).
/// Only [`sg_io`] sets the addresses, from slices it borrows.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SgIoHdr {
    pub interface_id: i32,
    pub dxfer_direction: i32,
    pub cmd_len: u8,
    pub mx_sb_len: u8,
    pub iovec_count: u16,
    pub dxfer_len: u32,
    pub dxferp: u64,
    pub cmdp: u64,
    pub sbp: u64,
    pub timeout: u32,
    pub flags: u32,
    pub pack_id: i32,
    pub _pad0: u32,
    pub usr_ptr: u64,
    pub status: u8,
    pub masked_status: u8,
    pub msg_status: u8,
    pub sb_len_wr: u8,
    pub host_status: u16,
    pub driver_status: u16,
    pub resid: i32,
    pub duration: u32,
    pub info: u32,
    pub _pad1: u32,
}

const _: () = assert!(size_of::<SgIoHdr>() == 88);

nix::ioctl_readwrite_bad!(sg_io_ioctl, 0x2285, SgIoHdr);

/// Where the data of an SG_IO command goes.
#[derive(Debug)]
pub enum Data<'a> {
    None,
    FromDevice(&'a mut [u8]),
    ToDevice(&'a [u8]),
}

/// The outputs of one SG_IO call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SgIoOutcome {
    pub status: u8,
    pub masked_status: u8,
    pub host_status: u16,
    pub driver_status: u16,
    /// Sense bytes the kernel wrote into the sense buffer.
    pub sense_len: usize,
    /// `dxfer_len` minus bytes actually transferred.
    pub resid: i32,
    pub duration_ms: u32,
    pub info: u32,
}

/// Sends `cdb` through SG_IO on `fd` and waits for it, with `timeout_ms` (u32::MAX = no
/// timeout). Sense data lands in `sense`. `Err` only when the ioctl itself fails (ENOTTY:
/// not an SG_IO device; ENODEV: the device is gone; EINVAL: bad lengths).
pub fn sg_io(
    fd: BorrowedFd<'_>,
    cdb: &[u8],
    data: Data<'_>,
    sense: &mut [u8; SENSE_BUFFER_LEN],
    timeout_ms: u32,
) -> io::Result<SgIoOutcome> {
    let invalid = || io::Error::from_raw_os_error(nix::libc::EINVAL);
    let cmd_len = u8::try_from(cdb.len()).map_err(|_| invalid())?;
    let (direction, ptr, len) = match data {
        Data::None => (SG_DXFER_NONE, 0, 0),
        Data::FromDevice(b) => (SG_DXFER_FROM_DEV, b.as_mut_ptr() as u64, b.len()),
        Data::ToDevice(b) => (SG_DXFER_TO_DEV, b.as_ptr() as u64, b.len()),
    };
    let mut hdr = SgIoHdr {
        interface_id: SG_INTERFACE_ID,
        dxfer_direction: direction,
        cmd_len,
        mx_sb_len: SENSE_BUFFER_LEN as u8,
        dxfer_len: u32::try_from(len).map_err(|_| invalid())?,
        dxferp: ptr,
        cmdp: cdb.as_ptr() as u64,
        sbp: sense.as_mut_ptr() as u64,
        timeout: timeout_ms,
        ..SgIoHdr::zeroed()
    };
    // SAFETY: SG_IO (include/scsi/sg.h, 0x2285; drivers/scsi/sg.c sg_ioctl ->
    // sg_new_write / block/scsi_ioctl.c sg_io) reads the 88-byte header through the
    // pointer, which points at `hdr`, a live SgIoHdr with the kernel's layout (size and
    // offsets are unit-tested against the ABI). The kernel then reads `cmd_len` bytes at
    // `cmdp` (= `cdb`, borrowed for this call), transfers at most `dxfer_len` bytes at
    // `dxferp` (= the borrowed data slice of that length, mutable when the kernel writes
    // into it, or no buffer with SG_DXFER_NONE), writes at most `mx_sb_len` (252) bytes at
    // `sbp` (= `sense`, 252 bytes, mutably borrowed), and writes the outputs back into
    // `hdr`. The ioctl is synchronous: it returns only once the command is complete or
    // aborted, so no pointer outlives its borrow. `fd` is borrowed, hence open.
    unsafe { sg_io_ioctl(fd.as_raw_fd(), &mut hdr) }?;
    Ok(SgIoOutcome {
        status: hdr.status,
        masked_status: hdr.masked_status,
        host_status: hdr.host_status,
        driver_status: hdr.driver_status,
        sense_len: usize::from(hdr.sb_len_wr).min(SENSE_BUFFER_LEN),
        resid: hdr.resid,
        duration_ms: hdr.duration,
        info: hdr.info,
    })
}

#[cfg(test)]
mod tests {
    use std::mem::offset_of;
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn layout_matches_the_kernel_abi() {
        assert_eq!(size_of::<SgIoHdr>(), 88);
        assert_eq!(std::mem::align_of::<SgIoHdr>(), 8);
        // Offsets of struct sg_io_hdr on x86_64 (pahole of include/scsi/sg.h).
        for (name, got, want) in [
            ("interface_id", offset_of!(SgIoHdr, interface_id), 0),
            ("dxfer_direction", offset_of!(SgIoHdr, dxfer_direction), 4),
            ("cmd_len", offset_of!(SgIoHdr, cmd_len), 8),
            ("mx_sb_len", offset_of!(SgIoHdr, mx_sb_len), 9),
            ("iovec_count", offset_of!(SgIoHdr, iovec_count), 10),
            ("dxfer_len", offset_of!(SgIoHdr, dxfer_len), 12),
            ("dxferp", offset_of!(SgIoHdr, dxferp), 16),
            ("cmdp", offset_of!(SgIoHdr, cmdp), 24),
            ("sbp", offset_of!(SgIoHdr, sbp), 32),
            ("timeout", offset_of!(SgIoHdr, timeout), 40),
            ("flags", offset_of!(SgIoHdr, flags), 44),
            ("pack_id", offset_of!(SgIoHdr, pack_id), 48),
            ("usr_ptr", offset_of!(SgIoHdr, usr_ptr), 56),
            ("status", offset_of!(SgIoHdr, status), 64),
            ("masked_status", offset_of!(SgIoHdr, masked_status), 65),
            ("msg_status", offset_of!(SgIoHdr, msg_status), 66),
            ("sb_len_wr", offset_of!(SgIoHdr, sb_len_wr), 67),
            ("host_status", offset_of!(SgIoHdr, host_status), 68),
            ("driver_status", offset_of!(SgIoHdr, driver_status), 70),
            ("resid", offset_of!(SgIoHdr, resid), 72),
            ("duration", offset_of!(SgIoHdr, duration), 76),
            ("info", offset_of!(SgIoHdr, info), 80),
        ] {
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn a_regular_file_is_not_an_sg_device() {
        let f = tempfile::tempfile().unwrap();
        let mut sense = [0u8; SENSE_BUFFER_LEN];
        let mut buf = [0u8; 36];
        let e = sg_io(
            f.as_fd(),
            &[0x12, 0, 0, 0, 36, 0],
            Data::FromDevice(&mut buf),
            &mut sense,
            1000,
        )
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(nix::libc::ENOTTY));
        let long = [0u8; 300];
        let e = sg_io(f.as_fd(), &long, Data::None, &mut sense, 1000).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(nix::libc::EINVAL));
    }
}
