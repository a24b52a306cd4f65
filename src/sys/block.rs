//! Block-device geometry and O_DIRECT alignment.
//!
//! `BLKSSZGET` (`_IO(0x12, 104)`, writes an `int`) and `BLKGETSIZE64` (`_IOR(0x12, 114,
//! size_t)`, writes a `u64`) from include/uapi/linux/fs.h; `statx` with `STATX_DIOALIGN`
//! (Linux 6.1+) from include/uapi/linux/stat.h.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::libc;

nix::ioctl_read_bad!(blksszget, nix::request_code_none!(0x12, 104), libc::c_int);
nix::ioctl_read!(blkgetsize64, 0x12, 114, u64);

/// The logical block size of a block device (`BLKSSZGET`).
pub fn logical_block_size(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let mut size: libc::c_int = 0;
    // SAFETY: BLKSSZGET (include/uapi/linux/fs.h, `_IO(0x12,104)`; block/ioctl.c
    // `put_int`) writes one `int` through the pointer, which points at `size`, a live
    // c_int. The fd is borrowed, so it stays open for the call.
    unsafe { blksszget(fd.as_raw_fd(), &mut size) }?;
    u32::try_from(size).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

/// The size in bytes of a block device (`BLKGETSIZE64`).
pub fn size_bytes(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut size: u64 = 0;
    // SAFETY: BLKGETSIZE64 (include/uapi/linux/fs.h, `_IOR(0x12,114,size_t)`; block/ioctl.c
    // `put_u64`) writes one u64 through the pointer, which points at `size`, a live u64
    // (size_t is 8 bytes on the 64-bit targets we build for; nix encodes the size from the
    // u64 type).
    unsafe { blkgetsize64(fd.as_raw_fd(), &mut size) }?;
    Ok(size)
}

/// O_DIRECT alignment of an open file: (memory alignment, file offset alignment), from
/// `statx(STATX_DIOALIGN)`. `None` when the kernel or the file system does not report it
/// (then direct I/O is either unsupported or needs the logical block size).
pub fn direct_io_alignment(fd: BorrowedFd<'_>) -> Option<(u32, u32)> {
    let mut stx = MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: statx(2) with AT_EMPTY_PATH and an empty, NUL-terminated path operates on
    // `fd` itself; it writes at most one `struct statx` (include/uapi/linux/stat.h) into
    // the buffer, which is a zeroed local of exactly that type. The fd is borrowed and open.
    let rc = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_DIOALIGN,
            stx.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: a zeroed `struct statx` is a valid value of the type (plain integers), and
    // statx either filled it or left it zeroed.
    let stx = unsafe { stx.assume_init() };
    if stx.stx_mask & libc::STATX_DIOALIGN == 0 || stx.stx_dio_offset_align == 0 {
        return None;
    }
    Some((stx.stx_dio_mem_align, stx.stx_dio_offset_align))
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn regular_files_are_not_block_devices() {
        let f = tempfile::tempfile().unwrap();
        let e = logical_block_size(f.as_fd()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTTY));
        assert!(size_bytes(f.as_fd()).is_err());
        // Buffered-only descriptors report no DIO alignment (or the file system's).
        let _ = direct_io_alignment(f.as_fd());
    }
}
