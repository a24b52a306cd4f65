//! A safe io_uring for the copy engine: one ring, a registered pool of aligned buffers
//! (mapped and populated up front), a small table of registered files, and READ_FIXED /
//! WRITE_FIXED submissions (io_uring_enter(2), io_uring_register(2)).
//!
//! Ownership is the whole design. A [`Buf`] is the only handle to one buffer of the pool;
//! submitting an operation moves it into the ring, and only reaping that operation's
//! completion hands it back (in [`Done`]). While the kernel may touch a buffer, no safe code
//! can reach it: it is parked in the ring's slot table. Dropping the ring waits for every
//! operation still in flight; if the kernel will not say they are done, the buffers (and
//! with them the pool's memory) are leaked rather than freed under the kernel's feet. The
//! pool's memory lives until the last [`Buf`] and the ring are gone (an `Arc`).

use std::fs::File;
use std::io;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, PoisonError};

use io_uring::{opcode, types, IoUring};
use nix::libc;
use nix::sys::mman::{mmap_anonymous, munmap, MapFlags, ProtFlags};

/// Alignment of every pool buffer (O_DIRECT needs 512 bytes; 4096 serves 4Kn devices).
pub const BUF_ALIGN: usize = 4096;

/// The pool's memory: `count` buffers of `size` bytes, contiguous and page-aligned (an
/// anonymous mapping of `len` bytes).
struct Pool {
    base: NonNull<u8>,
    len: NonZeroUsize,
    size: usize,
    count: usize,
    /// Indexes of buffers no [`Buf`] holds.
    free: Mutex<Vec<u16>>,
}

// SAFETY: the memory behind `base` is reached only through `Buf`, and each index is held by
// at most one `Buf` at a time (the free list hands it out once), so sharing the pool between
// threads shares no bytes; the free list itself is behind a mutex.
unsafe impl Send for Pool {}
// SAFETY: as above: `&Pool` gives access to the free list (a mutex) and to nothing else.
unsafe impl Sync for Pool {}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: `base` is the start of the mapping of `len` bytes made in `Pool::new`,
        // unmapped once, here; no `Buf` is left (each holds an `Arc<Pool>`), and the ring
        // that registered the memory waited for its operations or leaked their buffers (and
        // so this pool).
        let _ = unsafe { munmap(self.base.cast(), self.len.get()) };
    }
}

impl Pool {
    fn new(count: u16, size: usize) -> io::Result<Arc<Self>> {
        let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "buffer pool too large");
        let size = size.max(1).next_multiple_of(BUF_ALIGN);
        let total = size.checked_mul(usize::from(count)).ok_or_else(too_big)?;
        let len = NonZeroUsize::new(total.max(BUF_ALIGN)).ok_or_else(too_big)?;
        // An anonymous private mapping: page-aligned (a Linux page is at least BUF_ALIGN
        // bytes) and zero-filled by the kernel, so the bytes are
        // initialized without a pass over them. MAP_POPULATE faults every page in now (fresh
        // memory is slow to fault in; the copy should not pay it), once: before, the pool
        // was allocated, then zeroed by a memset that faulted each page in (the kernel
        // zeroing it) and wrote it again.
        // SAFETY: a new anonymous mapping at an address of the kernel's choosing aliases no
        // existing memory; it is unmapped only by `Pool`'s drop.
        let base = unsafe {
            mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE | MapFlags::MAP_POPULATE,
            )
        }
        .map_err(io::Error::from)?
        .cast::<u8>();
        Ok(Arc::new(Self {
            base,
            len,
            size,
            count: usize::from(count),
            free: Mutex::new((0..count).rev().collect()),
        }))
    }

    fn ptr(&self, index: u16) -> *mut u8 {
        // SAFETY: `index < count` (only the free list makes indexes), so the offset stays
        // inside the allocation.
        unsafe { self.base.as_ptr().add(usize::from(index) * self.size) }
    }
}

/// One buffer of a ring's pool, owned exclusively. Dropping it returns it to the pool.
pub struct Buf {
    pool: Arc<Pool>,
    index: u16,
}

impl Buf {
    /// Bytes in the buffer.
    pub fn capacity(&self) -> usize {
        self.pool.size
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the region of `index` is `size` initialized bytes (zeroed at allocation);
        // this `Buf` is its only holder and is not in flight (the ring owns in-flight ones),
        // and the returned borrow ties it to `&self`.
        unsafe { std::slice::from_raw_parts(self.pool.ptr(self.index), self.pool.size) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the borrow exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.pool.ptr(self.index), self.pool.size) }
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        self.pool
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(self.index);
    }
}

impl std::fmt::Debug for Buf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buf").field("index", &self.index).finish()
    }
}

/// A completed operation: its tag, the bytes transferred or the error, and the buffer back.
#[derive(Debug)]
pub struct Done {
    pub tag: u64,
    pub result: io::Result<usize>,
    pub buf: Buf,
}

/// Why a submission was refused; the buffer comes back untouched.
#[derive(Debug)]
pub struct Refused {
    pub buf: Buf,
    pub error: io::Error,
}

/// A ring with a registered buffer pool and registered file slots.
pub struct Ring {
    ring: IoUring,
    pool: Arc<Pool>,
    files: Vec<Option<Arc<File>>>,
    /// Buffers the kernel may be using, by user_data, with the caller's tag.
    slots: Vec<Option<(Buf, u64)>>,
    free_slots: Vec<u32>,
    in_flight: usize,
}

impl Ring {
    /// A ring able to keep every one of `buffers` buffers (of `buffer_size` bytes, rounded up
    /// to [`BUF_ALIGN`]) in flight at once, with `files` registered file slots.
    pub fn new(buffers: u16, buffer_size: usize, files: u32) -> io::Result<Self> {
        let buffers = buffers.max(1);
        let pool = Pool::new(buffers, buffer_size)?;
        let ring = IoUring::new(u32::from(buffers).next_power_of_two())?;
        let iovecs: Vec<libc::iovec> = (0..buffers)
            .map(|i| libc::iovec {
                iov_base: pool.ptr(i).cast(),
                iov_len: pool.size,
            })
            .collect();
        // SAFETY: each iovec describes `size` bytes of the pool's live allocation; the pool
        // outlives the registration (the ring holds an `Arc` to it, and dropping the ring
        // closes its fd, which unregisters the buffers, before that `Arc` is released:
        // fields drop in declaration order, `ring` first).
        unsafe { ring.submitter().register_buffers(&iovecs)? };
        ring.submitter().register_files_sparse(files.max(1))?;
        Ok(Self {
            ring,
            files: vec![None; files.max(1) as usize],
            slots: (0..buffers).map(|_| None).collect(),
            free_slots: (0..u32::from(buffers)).rev().collect(),
            in_flight: 0,
            pool,
        })
    }

    /// Bytes per buffer.
    pub fn buffer_size(&self) -> usize {
        self.pool.size
    }

    /// Buffers in the pool.
    pub fn buffers(&self) -> usize {
        self.pool.count
    }

    /// A free buffer of the pool, if any.
    pub fn buffer(&self) -> Option<Buf> {
        let index = self
            .pool
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()?;
        Some(Buf {
            pool: Arc::clone(&self.pool),
            index,
        })
    }

    /// Registers `file` in file slot `slot` (replacing what was there).
    pub fn set_file(&mut self, slot: u32, file: &Arc<File>) -> io::Result<()> {
        let entry = self
            .files
            .get_mut(slot as usize)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no such file slot"))?;
        if entry.as_ref().is_some_and(|f| Arc::ptr_eq(f, file)) {
            // Already there: updating the kernel's table is not free.
            return Ok(());
        }
        self.ring
            .submitter()
            .register_files_update(slot, &[file.as_raw_fd()])?;
        *entry = Some(Arc::clone(file));
        Ok(())
    }

    /// Empties every file slot, so the ring no longer holds any file open (a registered
    /// file stays open, with whatever lock its descriptor carries, as long as it is
    /// registered). For a ring going back to a pool.
    pub fn clear_files(&mut self) -> io::Result<()> {
        for (slot, entry) in self.files.iter_mut().enumerate() {
            if entry.is_some() {
                self.ring
                    .submitter()
                    .register_files_update(slot as u32, &[-1])?;
                *entry = None;
            }
        }
        Ok(())
    }

    /// Operations submitted and not yet reaped.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Reads into `buf[range]` from the file in `slot` at `offset`; the buffer comes back
    /// with the completion tagged `tag`.
    pub fn read(
        &mut self,
        slot: u32,
        offset: u64,
        buf: Buf,
        range: Range<usize>,
        tag: u64,
    ) -> Result<(), Refused> {
        self.submit_rw(false, slot, offset, buf, range, tag)
    }

    /// Writes `buf[range]` to the file in `slot` at `offset`; the buffer comes back with the
    /// completion tagged `tag`.
    pub fn write(
        &mut self,
        slot: u32,
        offset: u64,
        buf: Buf,
        range: Range<usize>,
        tag: u64,
    ) -> Result<(), Refused> {
        self.submit_rw(true, slot, offset, buf, range, tag)
    }

    fn submit_rw(
        &mut self,
        write: bool,
        slot: u32,
        offset: u64,
        buf: Buf,
        range: Range<usize>,
        tag: u64,
    ) -> Result<(), Refused> {
        let refuse = |buf, why: &str| {
            Err(Refused {
                buf,
                error: io::Error::new(io::ErrorKind::InvalidInput, why.to_string()),
            })
        };
        if !Arc::ptr_eq(&buf.pool, &self.pool) {
            return refuse(buf, "buffer of another pool");
        }
        if range.start > range.end || range.end > buf.capacity() {
            return refuse(buf, "range outside the buffer");
        }
        let Ok(len) = u32::try_from(range.len()) else {
            return refuse(buf, "transfer too long");
        };
        if !matches!(self.files.get(slot as usize), Some(Some(_))) {
            return refuse(buf, "file slot not registered");
        }
        let Some(user_data) = self.free_slots.pop() else {
            // Cannot happen: there is a slot per buffer and each buffer is in flight once.
            return refuse(buf, "no free slot");
        };
        // SAFETY: `range` lies inside this buffer (checked above), so the pointer stays in
        // the allocation.
        let ptr = unsafe { self.pool.ptr(buf.index).add(range.start) };
        let fd = types::Fixed(slot);
        let entry = if write {
            opcode::WriteFixed::new(fd, ptr, len, buf.index)
                .offset(offset)
                .build()
        } else {
            opcode::ReadFixed::new(fd, ptr, len, buf.index)
                .offset(offset)
                .build()
        }
        .user_data(u64::from(user_data));
        if self.ring.submission().is_full() {
            if let Err(error) = self.ring.submit() {
                self.free_slots.push(user_data);
                return Err(Refused { buf, error });
            }
        }
        // SAFETY: the entry names buffer `buf.index` of the registered pool and a pointer
        // and length inside it, and a registered file slot. The `Buf` is parked in
        // `slots[user_data]` below, so no safe code can reach the bytes until the completion
        // carrying `user_data` is reaped (or the ring's drop waited for it or leaked it).
        let pushed = unsafe { self.ring.submission().push(&entry) };
        if pushed.is_err() {
            self.free_slots.push(user_data);
            return Err(Refused {
                buf,
                error: io::Error::other("submission queue full"),
            });
        }
        self.slots[user_data as usize] = Some((buf, tag));
        self.in_flight += 1;
        Ok(())
    }

    /// Hands what is queued to the kernel without waiting for anything.
    pub fn submit(&mut self) -> io::Result<()> {
        loop {
            match self.ring.submit() {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Submits what is queued, waits for at least one completion if anything is in flight,
    /// and appends every completion available to `out`.
    pub fn wait(&mut self, out: &mut Vec<Done>) -> io::Result<()> {
        if self.in_flight == 0 {
            return Ok(());
        }
        loop {
            match self.ring.submit_and_wait(1) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        self.reap(out);
        Ok(())
    }

    fn reap(&mut self, out: &mut Vec<Done>) {
        let mut completed = Vec::new();
        for cqe in self.ring.completion() {
            completed.push((cqe.user_data(), cqe.result()));
        }
        for (user_data, res) in completed {
            let Some((buf, tag)) = self
                .slots
                .get_mut(user_data as usize)
                .and_then(Option::take)
            else {
                continue;
            };
            self.free_slots.push(user_data as u32);
            self.in_flight -= 1;
            let result = if res < 0 {
                Err(io::Error::from_raw_os_error(-res))
            } else {
                Ok(res as usize)
            };
            out.push(Done { tag, result, buf });
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let mut done = Vec::new();
        while self.in_flight > 0 {
            if self.wait(&mut done).is_err() {
                // The kernel may still own these buffers: never free them.
                std::mem::forget(std::mem::take(&mut self.slots));
                return;
            }
            done.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    fn ring() -> Ring {
        Ring::new(4, 8192, 2).expect("io_uring available")
    }

    fn wait_all(r: &mut Ring) -> Vec<Done> {
        let mut out = Vec::new();
        while r.in_flight() > 0 {
            r.wait(&mut out).unwrap();
        }
        out
    }

    #[test]
    fn reads_and_writes_through_registered_buffers() {
        let mut f = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..16384u32).map(|i| (i * 7) as u8).collect();
        f.write_all(&data).unwrap();
        let f = Arc::new(f);
        let mut r = ring();
        r.set_file(0, &f).unwrap();
        let b = r.buffer().unwrap();
        r.read(0, 4096, b, 0..8192, 7).unwrap();
        let mut done = wait_all(&mut r);
        let d = done.pop().unwrap();
        assert_eq!((d.tag, d.result.as_ref().unwrap()), (7, &8192));
        assert_eq!(&d.buf.as_slice()[..8192], &data[4096..12288]);
        // Written back from the same buffer, sliced.
        r.write(0, 0, d.buf, 100..200, 8).unwrap();
        let d = wait_all(&mut r).pop().unwrap();
        assert_eq!(*d.result.as_ref().unwrap(), 100);
        let mut back = [0u8; 100];
        f.read_exact_at(&mut back, 0).unwrap();
        assert_eq!(&back[..], &data[4196..4296]);
    }

    #[test]
    fn the_pool_is_bounded_and_buffers_come_back() {
        let r = ring();
        let all: Vec<Buf> = (0..4).map(|_| r.buffer().unwrap()).collect();
        assert!(r.buffer().is_none());
        drop(all);
        assert!(r.buffer().is_some());
        assert_eq!((r.buffers(), r.buffer_size()), (4, 8192));
    }

    #[test]
    fn refuses_bad_submissions_and_returns_the_buffer() {
        let mut r = ring();
        let other = ring();
        let b = r.buffer().unwrap();
        let e = r.read(0, 0, b, 0..10, 0).unwrap_err();
        assert!(e.error.to_string().contains("slot"));
        let f = Arc::new(tempfile::tempfile().unwrap());
        r.set_file(0, &f).unwrap();
        let e = r.read(0, 0, e.buf, 0..9000, 0).unwrap_err();
        assert!(e.error.to_string().contains("range"));
        let e = r.read(0, 0, other.buffer().unwrap(), 0..10, 0).unwrap_err();
        assert!(e.error.to_string().contains("pool"));
        assert_eq!(r.in_flight(), 0);
    }

    #[test]
    fn errors_come_back_with_the_buffer() {
        let f = Arc::new(File::open("/proc/self/status").unwrap());
        let mut r = ring();
        r.set_file(0, &f).unwrap();
        // A write to a read-only file fails with EBADF.
        r.write(0, 0, r.buffer().unwrap(), 0..10, 3).unwrap();
        let d = wait_all(&mut r).pop().unwrap();
        assert_eq!(d.tag, 3);
        assert_eq!(d.result.unwrap_err().raw_os_error(), Some(libc::EBADF));
    }

    #[test]
    fn cleared_slots_hold_no_file() {
        let f = Arc::new(tempfile::tempfile().unwrap());
        let mut r = ring();
        r.set_file(1, &f).unwrap();
        assert_eq!(Arc::strong_count(&f), 2);
        r.clear_files().unwrap();
        assert_eq!(Arc::strong_count(&f), 1);
        let e = r.read(1, 0, r.buffer().unwrap(), 0..10, 0).unwrap_err();
        assert!(e.error.to_string().contains("slot"));
        // The slot takes a file again.
        r.set_file(1, &f).unwrap();
        r.write(1, 0, e.buf, 0..10, 0).unwrap();
        assert_eq!(*wait_all(&mut r)[0].result.as_ref().unwrap(), 10);
    }

    #[test]
    fn a_cleared_slot_closes_the_file_in_the_kernel_too() {
        // The write end of a pipe, held only by the ring's table: its reader sees end of
        // file once the kernel lets go of it (a release the kernel may defer a little).
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        let mut r = ring();
        r.set_file(0, &Arc::new(File::from(write_end))).unwrap();
        let mut reader = File::from(read_end);
        nix::fcntl::fcntl(
            &reader,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        let mut byte = [0u8; 1];
        let open = |reader: &mut File, byte: &mut [u8; 1]| {
            use std::io::Read;
            match reader.read(byte) {
                Ok(0) => false,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
                other => panic!("unexpected {other:?}"),
            }
        };
        assert!(open(&mut reader, &mut byte), "the ring holds the write end");
        r.clear_files().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while open(&mut reader, &mut byte) {
            assert!(std::time::Instant::now() < deadline, "write end still open");
            std::thread::yield_now();
        }
    }

    #[test]
    fn dropping_the_ring_waits_for_operations_in_flight() {
        let f = Arc::new(tempfile::tempfile().unwrap());
        f.set_len(1 << 20).unwrap();
        let mut r = ring();
        r.set_file(0, &f).unwrap();
        for i in 0..4 {
            let b = r.buffer().unwrap();
            r.read(0, i * 8192, b, 0..8192, i).unwrap();
        }
        drop(r);
    }
}
