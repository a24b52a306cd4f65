//! The image under an emulated disk: opening a file or block device (created sparse where
//! asked, locked, O_DIRECT where the file system allows it, with the alignment it needs) and
//! reading and writing it, through an aligned bounce buffer lent by the process's
//! [`crate::buf::Rings`] where a caller's buffer does not suit O_DIRECT.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use nix::libc;

use super::{atomic, DiskError, DiskOptions, EmulatedDisk};
use crate::buf::AlignedBuf;
use crate::device::attention::AttentionLog;
use crate::device::lock::{ImageLock, LockError, LockMode};
use crate::device::range_lock::RangeLock;
use crate::device::reservation::Reservations;
use crate::scsi::DeviceClass;

/// I/Os in flight on an image in tmpfs unless the inventory says otherwise. A copy reads
/// such an image on its own thread ([`super::BlockBackend::in_memory`]), so this is the
/// depth of the ring's writes to it as a destination: each is a memory copy by a kernel
/// worker, where a second keeps the copy busy and more only move data out of the CPU cache
/// (measured on reads before they left the ring: 4 concurrent in-memory backups, 5 % less
/// CPU per GiB than at the default 16).
const IN_MEMORY_DEPTH: u16 = 2;

/// Largest chunk moved through a bounce buffer at once (the memory bound of each).
pub(super) const BOUNCE_CHUNK: usize = 4 << 20;
/// Alignment of bounce buffers: enough for any DIO memory alignment we meet.
const BOUNCE_ALIGN: usize = crate::buf::ALIGN;

impl EmulatedDisk {
    /// Opens (or creates, with `create_size`) the image or block device.
    pub fn open(name: &str, opts: &DiskOptions) -> Result<Self, DiskError> {
        let path = opts.path.clone();
        let io_err = |source: io::Error| DiskError::Io {
            path: path.clone(),
            source,
        };
        if opts.block_size != 512 && opts.block_size != 4096 {
            return Err(DiskError::BlockSize {
                path,
                block_size: opts.block_size,
            });
        }
        let bs = u64::from(opts.block_size);
        if let Some(size) = opts.create_size {
            create_image(&path, size, opts.block_size)?;
        }
        let meta = std::fs::metadata(&path).map_err(io_err)?;
        let is_block = meta.file_type().is_block_device();
        if !is_block && !meta.is_file() {
            return Err(DiskError::NotBlockStorage { path });
        }
        let mode = if opts.read_only {
            LockMode::Shared
        } else {
            LockMode::Exclusive
        };
        let lock = ImageLock::acquire(&path, mode).map_err(|e| match e {
            LockError::Io { source, .. } => io_err(source),
            busy => DiskError::Locked(busy),
        })?;
        let Opened {
            file,
            direct,
            size,
            mem_align,
            offset_align,
        } = Opened::open(opts, is_block)?;
        let blocks = size / bs;
        if blocks == 0 {
            return Err(DiskError::Empty {
                path,
                block_size: opts.block_size,
            });
        }
        let journal = atomic::Journal::beside(&path);
        if !is_block && !opts.read_only {
            journal
                .recover(&file, opts.block_size, blocks)
                .map_err(io_err)?;
        }
        let serial = opts.serial.clone().unwrap_or_else(|| {
            opts.designators.first().map_or_else(
                || name.to_string(),
                |d| d.value.iter().map(|b| format!("{b:02x}")).collect(),
            )
        });
        let in_memory = crate::sys::block::on_tmpfs(file.as_fd());
        let queue_depth = opts
            .queue_depth
            .or_else(|| in_memory.then_some(IN_MEMORY_DEPTH));
        let file = Arc::new(file);
        // The descriptor a copy hands the kernel to copy pages from (BlockBackend::page_cache).
        let page_cache = match (in_memory, direct) {
            (false, _) => None,
            (true, false) => Some(Arc::clone(&file)),
            (true, true) => Some(Arc::new(File::open(&path).map_err(io_err)?)),
        };
        Ok(Self {
            name: name.to_string(),
            path: opts.path.clone(),
            file,
            page_cache,
            direct,
            rings: Arc::clone(&opts.rings),
            mem_align,
            offset_align,
            block_size: opts.block_size,
            blocks,
            read_only: opts.read_only,
            designators: opts.designators.clone(),
            serial,
            max_transfer_blocks: (opts.max_transfer_bytes / opts.block_size).max(1),
            queue_depth,
            in_memory,
            is_block,
            removable: opts.removable,
            writes: RangeLock::new(),
            journal,
            unit: Arc::default(),
            reservations: Reservations::new(DeviceClass::Block),
            software_write_protect: AtomicBool::new(false),
            attention: AttentionLog::default(),
            _lock: lock,
        })
    }

    /// Whether `buf` at a block-aligned offset may go straight to the O_DIRECT file.
    fn aligned(&self, ptr: usize, len: usize) -> bool {
        ptr.is_multiple_of(self.mem_align) && len.is_multiple_of(self.offset_align)
    }

    pub(super) fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if !self.direct || self.aligned(buf.as_ptr() as usize, buf.len()) {
            return self.file.read_exact_at(buf, offset);
        }
        self.rings
            .with_bounce(buf.len().min(BOUNCE_CHUNK), |bounce| {
                let mut done = 0;
                for chunk in buf.chunks_mut(BOUNCE_CHUNK) {
                    let padded = chunk.len().next_multiple_of(self.offset_align);
                    let staging = &mut bounce[..padded];
                    self.file.read_exact_at(staging, offset + done as u64)?;
                    chunk.copy_from_slice(&staging[..chunk.len()]);
                    done += chunk.len();
                }
                Ok(())
            })
    }

    pub(super) fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if !self.direct || self.aligned(buf.as_ptr() as usize, buf.len()) {
            return self.file.write_all_at(buf, offset);
        }
        self.rings
            .with_bounce(buf.len().min(BOUNCE_CHUNK), |bounce| {
                let mut done = 0;
                for chunk in buf.chunks(BOUNCE_CHUNK) {
                    let staging = &mut bounce[..chunk.len()];
                    staging.copy_from_slice(chunk);
                    self.file.write_all_at(staging, offset + done as u64)?;
                    done += chunk.len();
                }
                Ok(())
            })
    }
}

/// Creates a `size`-byte image at `path` unless a file is there already (which is kept).
fn create_image(path: &Path, size: u64, block_size: u32) -> Result<(), DiskError> {
    if size == 0 || !size.is_multiple_of(u64::from(block_size)) {
        return Err(DiskError::CreateSize {
            path: path.to_path_buf(),
            size,
            block_size,
        });
    }
    let io_err = |source: io::Error| DiskError::Io {
        path: path.to_path_buf(),
        source,
    };
    match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(f) => f.set_len(size).map_err(io_err),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_err(e)),
    }
}

/// The image or block device of a disk opened as `opts` asks: with O_DIRECT where asked and
/// the file system takes it (EINVAL on open, or an alignment larger than a block or not to
/// be learned, falls back to the page cache), its size in bytes, and O_DIRECT's memory and
/// offset alignment (1 and 1 without it).
struct Opened {
    file: File,
    direct: bool,
    size: u64,
    mem_align: usize,
    offset_align: usize,
}

impl Opened {
    fn open(opts: &DiskOptions, is_block: bool) -> Result<Self, DiskError> {
        let path = &opts.path;
        let io_err = |source: io::Error| DiskError::Io {
            path: path.clone(),
            source,
        };
        let open = |direct: bool| {
            let mut o = OpenOptions::new();
            o.read(true).write(!opts.read_only);
            if direct {
                o.custom_flags(libc::O_DIRECT);
            }
            o.open(path)
        };
        let (mut file, mut direct) = match open(opts.direct_io) {
            Ok(f) => (f, opts.direct_io),
            Err(e) if opts.direct_io && e.raw_os_error() == Some(libc::EINVAL) => {
                (open(false).map_err(io_err)?, false)
            }
            Err(e) => return Err(io_err(e)),
        };
        let size = if is_block {
            let device = crate::sys::block::logical_block_size(file.as_fd()).map_err(io_err)?;
            if device > opts.block_size {
                return Err(DiskError::DeviceBlockSize {
                    path: path.clone(),
                    device,
                    block_size: opts.block_size,
                });
            }
            crate::sys::block::size_bytes(file.as_fd()).map_err(io_err)?
        } else {
            file.metadata().map_err(io_err)?.len()
        };
        let (mut mem_align, mut offset_align) = (1, 1);
        if direct {
            match direct_alignment(&file, opts.block_size) {
                Some(align) => (mem_align, offset_align) = align,
                None => {
                    direct = false;
                    file = open(false).map_err(io_err)?;
                }
            }
        }
        Ok(Self {
            file,
            direct,
            size,
            mem_align,
            offset_align,
        })
    }
}

/// The memory and offset alignment O_DIRECT needs on `file` (opened with it), or None
/// where it cannot serve `block_size` blocks: from STATX_DIOALIGN, or without it the
/// block size, proven by one aligned read.
fn direct_alignment(file: &File, block_size: u32) -> Option<(usize, usize)> {
    match crate::sys::block::direct_io_alignment(file.as_fd()) {
        Some((mem, off)) if off <= block_size => Some((mem.max(1) as usize, off as usize)),
        Some(_) => None,
        None => {
            // No STATX_DIOALIGN: assume the block size and prove it with one read.
            let mut probe = AlignedBuf::new(block_size as usize);
            file.read_exact_at(probe.as_mut_slice(), 0)
                .is_ok()
                .then_some((BOUNCE_ALIGN, block_size as usize))
        }
    }
}
