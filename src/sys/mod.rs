#![allow(unsafe_code)]
//! The only module allowed `unsafe`: thin, safe wrappers over the kernel interfaces xcopyd
//! needs. Each file states the invariants it upholds; every `unsafe` block carries a
//! `// SAFETY:` proof citing the kernel ABI it relies on.
//!
//! - [`sg_io`]: the SCSI generic v3 interface (`SG_IO`, include/scsi/sg.h). Invariant: the
//!   header's pointers are taken from borrowed slices that outlive the synchronous ioctl,
//!   and its lengths are those slices' lengths.
//! - [`copy`]: copying with non-temporal stores (SSE2). Invariant: every vector access lies
//!   inside the borrowed slices, and stores are to 16-byte aligned addresses.
//! - [`block`]: block-device geometry (`BLKSSZGET`, `BLKGETSIZE64`, include/uapi/linux/fs.h)
//!   and the O_DIRECT alignment a file needs (`statx(STATX_DIOALIGN)`,
//!   include/uapi/linux/stat.h). Invariant: the kernel writes only into the out-parameter
//!   it is handed, which is a live, properly typed local.
//! - [`uio`]: a UIO device's map 0 mapped shared (the TCMU mailbox, ring and data area)
//!   and its interrupt. Invariant: every access is bounds-checked against the mapping,
//!   which lives as long as its owner.
//! - [`malloc`]: glibc malloc's arena cap (mallopt(3)). Invariant: none beyond the call's
//!   own; it takes integers by value.
//! - [`uring`]: io_uring with a registered buffer pool (io_uring_enter(2),
//!   io_uring_register(2)). Invariant: a buffer the kernel may use is owned by the ring until
//!   its completion is reaped; dropping the ring waits for the kernel or leaks the memory.

pub mod block;
pub mod copy;
pub mod malloc;
pub mod sg_io;
pub mod uio;
pub mod uring;
