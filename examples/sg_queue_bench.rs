//! Reads a /dev/sg* device sequentially two ways and prints throughput and CPU per GiB, to
//! choose how the copy engine drives SG devices (issue: copy engine, item 3):
//! `sync` one thread with SG_IO; `workers` QD crossbeam threads each with SG_IO. A third way,
//! the sg driver's queued write/read interface from one thread, lost to `workers` (see
//! docs/benchmarks.md) and was removed; it is in git history (sys::sg_async, commit 58f0012).
//!
//! usage: sg_queue_bench /dev/sgN MIB CHUNK_KIB QD        (run by sg-tests/bench-sg.sh)
use std::fs::OpenOptions;
use std::os::fd::AsFd;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use xcopyd::sys::sg_io::{sg_io, Data, SENSE_BUFFER_LEN};

/// Worker threads at most (the sg driver's own queue limit, SG_MAX_QUEUE, kept as the bound).
const MAX_QUEUE: usize = 16;

fn read16(lba: u64, blocks: u32) -> [u8; 16] {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x88;
    cdb[2..10].copy_from_slice(&lba.to_be_bytes());
    cdb[10..14].copy_from_slice(&blocks.to_be_bytes());
    cdb
}

/// User + system CPU seconds of this process so far (/proc/self/stat, clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // after the comm field: state is [0], utime [11], stime [12]
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / 100.0
}

fn check(status: u8, host: u16, what: &str) -> Result<()> {
    if status != 0 || host != 0 {
        bail!("{what}: status {status:#x} host {host:#x}");
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, mib, chunk_kib, qd] = args.as_slice() else {
        bail!("usage: sg_queue_bench /dev/sgN MIB CHUNK_KIB QD");
    };
    let (mib, chunk, qd): (u64, usize, usize) = (
        mib.parse()?,
        chunk_kib.parse::<usize>()? * 1024,
        qd.parse()?,
    );
    let qd = qd.clamp(1, MAX_QUEUE);
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| path.clone())
    };
    let file = open()?;
    // READ CAPACITY(16) for the block length.
    let mut cap = [0u8; 32];
    let mut sense = [0u8; SENSE_BUFFER_LEN];
    let rc16 = [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0];
    let o = sg_io(
        file.as_fd(),
        &rc16,
        Data::FromDevice(&mut cap),
        &mut sense,
        10_000,
    )?;
    check(o.status, o.host_status, "READ CAPACITY(16)")?;
    let bl = u32::from_be_bytes([cap[8], cap[9], cap[10], cap[11]]) as usize;
    let per = (chunk / bl) as u32;
    let chunks = mib * 1024 * 1024 / chunk as u64;
    let gib = (chunks * chunk as u64) as f64 / (1u64 << 30) as f64;
    let report = |mode: &str, t: Instant, c0: f64| {
        let s = t.elapsed().as_secs_f64();
        println!(
            "BENCH sg_read mode={mode} qd={qd} chunk_kib={} MiB/s={:.1} cpu_s_per_gib={:.3}",
            chunk / 1024,
            gib * 1024.0 / s,
            (cpu_seconds() - c0) / gib
        );
    };

    // sync: one command at a time
    let (t, c0) = (Instant::now(), cpu_seconds());
    let mut buf = vec![0u8; chunk];
    for i in 0..chunks {
        let o = sg_io(
            file.as_fd(),
            &read16(i * u64::from(per), per),
            Data::FromDevice(&mut buf),
            &mut sense,
            30_000,
        )?;
        check(o.status, o.host_status, "READ(16)")?;
    }
    report("sync", t, c0);

    // workers: qd threads, each its own fd and SG_IO, taking chunk numbers from a channel
    let (t, c0) = (Instant::now(), cpu_seconds());
    let (tx, rx) = crossbeam_channel::bounded::<u64>(qd * 2);
    std::thread::scope(|s| -> Result<()> {
        let mut handles = Vec::new();
        for _ in 0..qd {
            let rx = rx.clone();
            let f = open()?;
            handles.push(s.spawn(move || -> Result<()> {
                let mut buf = vec![0u8; chunk];
                let mut sense = [0u8; SENSE_BUFFER_LEN];
                for i in rx {
                    let o = sg_io(
                        f.as_fd(),
                        &read16(i * u64::from(per), per),
                        Data::FromDevice(&mut buf),
                        &mut sense,
                        30_000,
                    )?;
                    check(o.status, o.host_status, "READ(16)")?;
                }
                Ok(())
            }));
        }
        for i in 0..chunks {
            tx.send(i)?;
        }
        drop(tx);
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
        }
        Ok(())
    })?;
    report("workers", t, c0);

    Ok(())
}
