//! Block-device geometry, O_DIRECT alignment, and deallocation.
//!
//! `BLKSSZGET` (`_IO(0x12, 104)`, writes an `int`) and `BLKGETSIZE64` (`_IOR(0x12, 114,
//! size_t)`, writes a `u64`) from include/uapi/linux/fs.h; `statx` with `STATX_DIOALIGN`
//! (Linux 6.1+) from include/uapi/linux/stat.h. `BLKDISCARD` (`_IO(0x12, 119)`) and
//! `BLKZEROOUT` (`_IO(0x12, 127)`) read a `uint64_t[2]` {offset, length} in bytes (block/
//! ioctl.c `blk_ioctl_discard`, `blk_ioctl_zeroout`). Regular files are deallocated with
//! fallocate(2) `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE` and mapped with lseek(2)
//! `SEEK_DATA`/`SEEK_HOLE` (safe wrappers of nix).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::libc;

nix::ioctl_read_bad!(blksszget, nix::request_code_none!(0x12, 104), libc::c_int);
nix::ioctl_read!(blkgetsize64, 0x12, 114, u64);
nix::ioctl_write_ptr_bad!(blkdiscard, nix::request_code_none!(0x12, 119), [u64; 2]);
nix::ioctl_write_ptr_bad!(blkzeroout, nix::request_code_none!(0x12, 127), [u64; 2]);

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

/// Discards `len` bytes at `offset` of a block device (`BLKDISCARD`): what reads return
/// afterwards is the device's business.
pub fn discard(fd: BorrowedFd<'_>, offset: u64, len: u64) -> io::Result<()> {
    let range = [offset, len];
    // SAFETY: BLKDISCARD (include/uapi/linux/fs.h `_IO(0x12,119)`; block/ioctl.c
    // `blk_ioctl_discard` copy_from_user of 2 x u64) only reads the two u64 at the pointer,
    // which points at `range`, a live [u64; 2]. The fd is borrowed, so it stays open.
    unsafe { blkdiscard(fd.as_raw_fd(), &range) }?;
    Ok(())
}

/// Zeroes `len` bytes at `offset` of a block device (`BLKZEROOUT`): the kernel deallocates
/// where the device guarantees zeros on read (WRITE ZEROES with unmap), else writes zeros.
pub fn zero_out(fd: BorrowedFd<'_>, offset: u64, len: u64) -> io::Result<()> {
    let range = [offset, len];
    // SAFETY: BLKZEROOUT (include/uapi/linux/fs.h `_IO(0x12,127)`; block/ioctl.c
    // `blk_ioctl_zeroout` copy_from_user of 2 x u64) only reads the two u64 at the pointer,
    // which points at `range`, a live [u64; 2]. The fd is borrowed, so it stays open.
    unsafe { blkzeroout(fd.as_raw_fd(), &range) }?;
    Ok(())
}

/// Deallocates `len` bytes at `offset` of a regular file, keeping its size: the range then
/// reads as zeros.
pub fn punch_hole(fd: BorrowedFd<'_>, offset: u64, len: u64) -> io::Result<()> {
    use nix::fcntl::{fallocate, FallocateFlags};
    let to_off =
        |v: u64| libc::off_t::try_from(v).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput));
    let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
    fallocate(fd, flags, to_off(offset)?, to_off(len)?)?;
    Ok(())
}

/// Where data starts at or after `offset` of a regular file (`SEEK_DATA`): `None` when only
/// a hole follows to the end.
pub fn next_data(fd: BorrowedFd<'_>, offset: u64) -> io::Result<Option<u64>> {
    seek(fd, offset, nix::unistd::Whence::SeekData)
}

/// Where the next hole starts at or after `offset` (`SEEK_HOLE`; the end of the file counts
/// as one): `None` past the end.
pub fn next_hole(fd: BorrowedFd<'_>, offset: u64) -> io::Result<Option<u64>> {
    seek(fd, offset, nix::unistd::Whence::SeekHole)
}

fn seek(fd: BorrowedFd<'_>, offset: u64, whence: nix::unistd::Whence) -> io::Result<Option<u64>> {
    let at =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    match nix::unistd::lseek(fd, at, whence) {
        Ok(pos) => Ok(u64::try_from(pos).ok()),
        Err(nix::errno::Errno::ENXIO) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The file is a regular file on tmpfs (memory): its O_DIRECT is the page cache. A device
/// node is not, though devtmpfs, where /dev's nodes live, reports tmpfs's magic: a disk
/// opened as /dev/sdX must not be taken for memory.
pub fn on_tmpfs(fd: BorrowedFd<'_>) -> bool {
    nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
        && nix::sys::statfs::fstatfs(fd)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn only_regular_files_in_tmpfs_are_in_memory() {
        let shm = tempfile::tempfile_in("/dev/shm").unwrap();
        assert!(on_tmpfs(shm.as_fd()));
        // /dev is devtmpfs, whose statfs says tmpfs: its nodes are devices, not memory.
        let null = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(
            nix::sys::statfs::fstatfs(null.as_fd())
                .unwrap()
                .filesystem_type(),
            nix::sys::statfs::TMPFS_MAGIC
        );
        assert!(!on_tmpfs(null.as_fd()));
    }

    #[test]
    fn regular_files_are_not_block_devices() {
        let f = tempfile::tempfile().unwrap();
        let e = logical_block_size(f.as_fd()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTTY));
        assert!(size_bytes(f.as_fd()).is_err());
        // Buffered-only descriptors report no DIO alignment (or the file system's).
        let _ = direct_io_alignment(f.as_fd());
        assert!(discard(f.as_fd(), 0, 4096).is_err());
        assert!(zero_out(f.as_fd(), 0, 4096).is_err());
    }

    #[test]
    fn punched_holes_read_as_zeros_and_are_found() {
        use std::os::unix::fs::FileExt;
        let f = tempfile::tempfile().unwrap();
        f.write_all_at(&vec![0xa5u8; 1 << 20], 0).unwrap();
        f.sync_all().unwrap();
        assert_eq!(next_data(f.as_fd(), 0).unwrap(), Some(0));
        match punch_hole(f.as_fd(), 64 << 10, 128 << 10) {
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return,
            other => other.unwrap(),
        }
        let mut buf = vec![1u8; 128 << 10];
        f.read_exact_at(&mut buf, 64 << 10).unwrap();
        assert!(buf.iter().all(|&b| b == 0));
        assert_eq!(f.metadata().unwrap().len(), 1 << 20, "size kept");
        // The hole is found where the file system deallocated it (whole blocks of it).
        assert_eq!(next_hole(f.as_fd(), 0).unwrap(), Some(64 << 10));
        assert_eq!(next_data(f.as_fd(), 64 << 10).unwrap(), Some(192 << 10));
        assert_eq!(next_hole(f.as_fd(), 192 << 10).unwrap(), Some(1 << 20));
        assert_eq!(next_data(f.as_fd(), 1 << 20).unwrap(), None);
    }
}
