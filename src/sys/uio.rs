//! A UIO device's first memory map (`/dev/uioN`, map 0), shared read-write with the
//! kernel, behind a safe, bounds-checked byte API; and the UIO interrupt (a blocking
//! 4-byte read returns the event count, a 4-byte write calls the driver's irqcontrol:
//! Documentation/driver-api/uio-howto.rst). TCMU (target_core_user) uses exactly this.
//!
//! Invariants: `ptr` is the start of a `MAP_SHARED` mapping of `len` bytes that lives as
//! long as the [`UioMap`] (unmapped in `Drop` only); every access is checked to lie inside
//! it before any pointer arithmetic. The mapping keeps the UIO file referenced, so it
//! stays valid even after the device is removed (accesses then hit the kernel's stale
//! pages, never unmapped memory).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::num::NonZeroUsize;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

/// An access outside the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfBounds;

/// `/dev/uioN` with its map 0 mapped shared read-write.
pub struct UioMap {
    file: File,
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory, valid for the struct's lifetime and not
// tied to a thread; all access goes through bounds-checked copies and atomics, and the
// callers (the TCMU handler) give each thread disjoint regions by protocol.
unsafe impl Send for UioMap {}
// SAFETY: as for Send: `&self` methods only copy bytes or use atomics on the mapping.
unsafe impl Sync for UioMap {}

/// Parses a sysfs map size ("0x40800000\n").
fn parse_sysfs_hex(text: &str) -> Option<usize> {
    let t = text.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    usize::from_str_radix(t, 16).ok()
}

fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

impl UioMap {
    /// Opens `/dev/<uio>` (e.g. "uio0") and maps its map 0, whose size sysfs gives in
    /// `/sys/class/uio/<uio>/maps/map0/size`.
    pub fn open(uio: &str) -> std::io::Result<Self> {
        if uio.is_empty() || uio.contains('/') {
            return Err(invalid(format!("bad UIO device name {uio:?}")));
        }
        let size_path = Path::new("/sys/class/uio").join(uio).join("maps/map0/size");
        let text = std::fs::read_to_string(&size_path)?;
        let len = parse_sysfs_hex(&text)
            .and_then(NonZeroUsize::new)
            .ok_or_else(|| invalid(format!("{}: {text:?}", size_path.display())))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_CLOEXEC)
            .open(Path::new("/dev").join(uio))?;
        // SAFETY: a fresh shared mapping chosen by the kernel (addr None), of the size the
        // driver declares for map 0 (UIO selects the map by offset: 0 = map 0); it aliases
        // no Rust object. The pointer is owned by the returned UioMap and unmapped once.
        let ptr = unsafe {
            mmap(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                file.as_fd(),
                0,
            )
        }
        .map_err(std::io::Error::from)?;
        Ok(Self {
            file,
            ptr: ptr.cast(),
            len: len.get(),
        })
    }

    /// Size of the map in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the map is empty (never: open refuses a zero size).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, offset: usize, len: usize) -> Result<(), OutOfBounds> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(OutOfBounds),
        }
    }

    /// Copies `buf.len()` bytes at `offset` out of the map.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        self.check(offset, buf.len())?;
        // SAFETY: offset..offset+len lies inside the live mapping (checked above); `buf` is
        // a distinct Rust allocation, so the ranges do not overlap. The kernel may write
        // the region concurrently only where the TCMU protocol gives it ownership, which
        // the caller never reads at that time; bytes are plain data (any value valid).
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ptr.as_ptr().add(offset),
                buf.as_mut_ptr(),
                buf.len(),
            );
        }
        Ok(())
    }

    /// Copies `data` into the map at `offset`.
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), OutOfBounds> {
        self.check(offset, data.len())?;
        // SAFETY: as in read_at: the destination lies inside the live, writable mapping
        // and cannot overlap `data`, a Rust slice outside it.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(offset), data.len());
        }
        Ok(())
    }

    fn atomic_u32(&self, offset: usize) -> Result<&AtomicU32, OutOfBounds> {
        self.check(offset, 4)?;
        if !offset.is_multiple_of(4) {
            return Err(OutOfBounds);
        }
        // SAFETY: in bounds (checked), 4-byte aligned (the mapping is page aligned and the
        // offset a multiple of 4), and valid for the lifetime of &self; the kernel accesses
        // these mailbox words with READ_ONCE/WRITE_ONCE plus barriers, i.e. atomically.
        Ok(unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(offset).cast::<u32>()) })
    }

    /// Loads the u32 at `offset` (4-aligned) with acquire ordering.
    pub fn load_u32_acquire(&self, offset: usize) -> Result<u32, OutOfBounds> {
        Ok(self.atomic_u32(offset)?.load(Ordering::Acquire))
    }

    /// Stores the u32 at `offset` (4-aligned) with release ordering, after a full fence so
    /// every byte written before it is visible to the kernel first.
    pub fn store_u32_release(&self, offset: usize, value: u32) -> Result<(), OutOfBounds> {
        let a = self.atomic_u32(offset)?;
        std::sync::atomic::fence(Ordering::SeqCst);
        a.store(value, Ordering::Release);
        Ok(())
    }

    /// Tells the driver to look at the map (UIO write → irqcontrol).
    pub fn notify(&self) -> std::io::Result<()> {
        (&self.file).write_all(&1u32.to_ne_bytes())
    }

    /// Waits up to `timeout` for an interrupt: Ok(true) when one came (consumed), Ok(false)
    /// on timeout, Err when the device is gone (POLLERR/POLLHUP, or the read fails).
    pub fn wait(&self, timeout: Duration) -> std::io::Result<bool> {
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => return Ok(false),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        let revents = fds[0].revents().unwrap_or(PollFlags::empty());
        if revents.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL) {
            return Err(std::io::Error::other("UIO device gone"));
        }
        let mut count = [0u8; 4];
        (&self.file).read_exact(&mut count)?;
        Ok(true)
    }
}

impl Drop for UioMap {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned; no reference into the mapping
        // outlives &mut self (accessors hand out copies, and &AtomicU32 borrows of self).
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysfs_map_sizes() {
        assert_eq!(parse_sysfs_hex("0x40800000\n"), Some(0x4080_0000));
        assert_eq!(parse_sysfs_hex("0x1000"), Some(4096));
        assert_eq!(parse_sysfs_hex("zz"), None);
    }

    #[test]
    fn names_with_slashes_are_refused() {
        assert!(UioMap::open("../sda").is_err());
        assert!(UioMap::open("").is_err());
    }
}
