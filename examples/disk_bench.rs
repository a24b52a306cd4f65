//! Throughput of the EmulatedDisk CDB path, for scripts/bench.sh: sequential READ(16) or
//! WRITE(16) of a whole image with fixed-size transfers, from several threads that take
//! the next transfer in LBA order (one shared cursor, so the device sees a sequential
//! stream with `threads` commands in flight, like fio's iodepth).
//!
//! Usage: disk_bench PATH read|write [--threads N] [--transfer BYTES] [--block-size BS]
//! Prints one line: `MiB/s <value> bytes <n> seconds <s> direct <bool>`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use xcopyd::device::disk::{DiskOptions, EmulatedDisk};
use xcopyd::device::{DataDirection, ScsiDevice};
use xcopyd::scsi::sbc::ReadWriteCdb;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, mode, rest @ ..] = args.as_slice() else {
        bail!(
            "usage: disk_bench PATH read|write [--threads N] [--transfer BYTES] [--block-size BS]"
        );
    };
    let write = match mode.as_str() {
        "read" => false,
        "write" => true,
        other => bail!("mode {other:?}: expected read or write"),
    };
    let (mut threads, mut transfer, mut block_size) = (32usize, 1usize << 20, 4096u32);
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--threads" => threads = value.parse()?,
            "--transfer" => transfer = value.parse()?,
            "--block-size" => block_size = value.parse()?,
            other => bail!("unknown option {other}"),
        }
    }
    let disk = Arc::new(EmulatedDisk::open(
        "bench",
        &DiskOptions::new(path, block_size),
    )?);
    let blocks_per = u32::try_from(transfer / block_size as usize)?;
    let transfers = disk.blocks() / u64::from(blocks_per);
    let cursor = Arc::new(AtomicU64::new(0));
    // Buffers are allocated, aligned and touched before the clock starts.
    let buffers: Vec<Vec<u8>> = (0..threads)
        .map(|i| vec![i as u8 | 1; transfer + 4096])
        .collect();
    let start = Instant::now();
    let workers: Vec<_> = buffers
        .into_iter()
        .map(|mut storage| {
            let disk = Arc::clone(&disk);
            let cursor = Arc::clone(&cursor);
            std::thread::spawn(move || -> anyhow::Result<()> {
                let off = storage.as_ptr().align_offset(4096);
                let buf = &mut storage[off..off + transfer];
                loop {
                    let i = cursor.fetch_add(1, Ordering::Relaxed);
                    if i >= transfers {
                        return Ok(());
                    }
                    let lba = i * u64::from(blocks_per);
                    let c = if write {
                        let cdb = ReadWriteCdb::write_16(lba, blocks_per, false);
                        disk.execute(&cdb, DataDirection::ToDevice(buf))?
                    } else {
                        let cdb = ReadWriteCdb::read_16(lba, blocks_per);
                        disk.execute(&cdb, DataDirection::FromDevice(buf))?
                    };
                    if !c.is_good() {
                        bail!("lba {lba}: {:?}", c.decoded_sense());
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
    }
    let seconds = start.elapsed().as_secs_f64();
    let bytes = transfers * transfer as u64;
    println!(
        "MiB/s {:.1} bytes {bytes} seconds {seconds:.3} direct {}",
        bytes as f64 / seconds / (1 << 20) as f64,
        disk.is_direct()
    );
    Ok(())
}
