//! `xcopy ndmp`: a small DMA. Query an NDMP server's configuration, or run an image backup
//! or restore of one of its disks to a tape: with the tape on the same server (DATA and
//! MOVER connected by ADDR_LOCAL: the copy engine moves the blocks) or on another server
//! (`--tape-server`: a three-way backup, DATA connecting to that server's MOVER over TCP).

use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::ndmp::client::Client;
use crate::ndmp::message::{code, Addr, MtioOp, Pval, Request, ADDR_LOCAL, ADDR_TCP};
use crate::ndmp::reply::decode_env_reply;
use crate::ndmp::xdr::Reader;

#[derive(Debug, Args)]
pub struct NdmpArgs {
    #[command(subcommand)]
    pub action: Action,
    /// The NDMP server (the DATA side: the disks): HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:10000")]
    pub server: String,
    /// NDMP user.
    #[arg(long, default_value = "ndmp")]
    pub user: String,
    /// Password (MD5 authentication); default: $XCOPY_NDMP_PASSWORD.
    #[arg(long)]
    pub password: Option<String>,
    /// Print one JSON object as the last line of standard output.
    #[arg(short, long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Host, server, backup types, disks, tapes and SCSI devices of the server.
    Query,
    /// Image backup of DISK to TAPE, appended as a new tape file.
    Backup(Transfer),
    /// Image restore from tape file --file (default 0, the first) to DISK.
    Restore(Transfer),
}

#[derive(Debug, Args)]
pub struct Transfer {
    /// The disk (an inventory name of --server).
    #[arg(long)]
    pub disk: String,
    /// The tape (an inventory name of the tape server).
    #[arg(long)]
    pub tape: String,
    /// Another NDMP server whose MOVER and tape to use (three-way); same user and password.
    #[arg(long, value_name = "HOST:PORT")]
    pub tape_server: Option<String>,
    /// Backup: write from the beginning of the tape (everything on it is lost) instead of
    /// appending a file.
    #[arg(long)]
    pub overwrite: bool,
    /// Restore: the tape file to read (0 = the first).
    #[arg(long, default_value_t = 0)]
    pub file: u32,
    /// The image's digest DATA_GET_ENV returns: crc32c (checked at the CPU's speed), md5
    /// (what md5sum of the disk prints; about 500 MiB/s a core, so a faster copy waits for
    /// it) or none.
    #[arg(long, default_value = "crc32c", value_parser = ["crc32c", "md5", "none"])]
    pub digest: String,
    /// The same as --digest none.
    #[arg(long)]
    pub no_digest: bool,
    /// Bytes per tape record.
    #[arg(long, default_value = "256k", value_parser = super::copy_args::parse_size)]
    pub record_size: u64,
}

fn password(args: &NdmpArgs) -> Result<String> {
    match &args.password {
        Some(p) => Ok(p.clone()),
        None => std::env::var("XCOPY_NDMP_PASSWORD")
            .context("no --password and no $XCOPY_NDMP_PASSWORD"),
    }
}

pub fn ndmp(args: &NdmpArgs) -> Result<u8> {
    let mut data = Client::connect(&args.server, &args.user, &password(args)?)
        .with_context(|| format!("NDMP server {}", args.server))?;
    match &args.action {
        Action::Query => query(&mut data, args.json),
        Action::Backup(t) => transfer(args, &mut data, t, true),
        Action::Restore(t) => transfer(args, &mut data, t, false),
    }
}

/// The names in a CONFIG_GET_TAPE_INFO / _SCSI_INFO reply.
fn device_names(body: &[u8]) -> Result<Vec<String>> {
    let r = &mut Reader::new(body);
    let mut names = Vec::new();
    let parse = |r: &mut Reader<'_>,
                 names: &mut Vec<String>|
     -> Result<(), crate::ndmp::xdr::DecodeError> {
        r.u32()?;
        for _ in 0..r.count(1024, 8)? {
            r.string()?;
            for _ in 0..r.count(1024, 12)? {
                names.push(r.string()?);
                r.u32()?;
                crate::ndmp::message::decode_env(r)?;
            }
        }
        Ok(())
    };
    parse(r, &mut names).map_err(|e| anyhow::anyhow!("bad reply: {e}"))?;
    Ok(names)
}

/// (disk name, bytes) of CONFIG_GET_FS_INFO.
fn disks(body: &[u8]) -> Result<Vec<(String, u64)>> {
    let r = &mut Reader::new(body);
    let parse = |r: &mut Reader<'_>| -> Result<Vec<(String, u64)>, crate::ndmp::xdr::DecodeError> {
        r.u32()?;
        let mut out = Vec::new();
        for _ in 0..r.count(1024, 40)? {
            r.u32()?;
            r.string()?;
            let name = r.string()?;
            r.string()?;
            let total = r.u64()?;
            for _ in 0..4 {
                r.u64()?;
            }
            crate::ndmp::message::decode_env(r)?;
            r.string()?;
            out.push((name, total));
        }
        Ok(out)
    };
    parse(r).map_err(|e| anyhow::anyhow!("bad reply: {e}"))
}

fn strings(body: &[u8], n: usize) -> Vec<String> {
    let r = &mut Reader::new(body);
    let _ = r.u32();
    (0..n).map_while(|_| r.string().ok()).collect()
}

fn query(c: &mut Client, json_out: bool) -> Result<u8> {
    let host = strings(&c.expect_ok(&Request::ConfigGetHostInfo)?, 3);
    let server = strings(&c.expect_ok(&Request::ConfigGetServerInfo)?, 3);
    let tapes = device_names(&c.expect_ok(&Request::ConfigGetTapeInfo)?)?;
    let scsi = device_names(&c.expect_ok(&Request::ConfigGetScsiInfo)?)?;
    let disks = disks(&c.expect_ok(&Request::ConfigGetFsInfo)?)?;
    println!("host    {}", host.join(" "));
    println!("server  {}", server.join(" "));
    for (d, bytes) in &disks {
        println!("disk    {d} ({bytes} bytes)");
    }
    tapes.iter().for_each(|t| println!("tape    {t}"));
    scsi.iter().for_each(|s| println!("scsi    {s}"));
    if json_out {
        let disks: Vec<_> = disks
            .iter()
            .map(|(n, b)| json!({"name": n, "bytes": b}))
            .collect();
        println!(
            "{}",
            json!({"host": host, "server": server, "disks": disks, "tapes": tapes, "scsi": scsi})
        );
    }
    Ok(0)
}

fn mtio(c: &mut Client, op: MtioOp, count: u32) -> Result<()> {
    c.expect_ok(&Request::TapeMtio { op, count })?;
    Ok(())
}

/// Waits for `message` on `c` and returns its first word (a halt reason); other posts stay
/// queued. A mover pause ends the operation: this DMA has no robot to change cartridges.
fn reason(c: &mut Client, message: u32) -> Result<u32> {
    loop {
        if let Some(i) = c.posts.iter().position(|p| p.message == message) {
            let body = c.posts.remove(i).map(|p| p.body).unwrap_or_default();
            return Ok(Reader::new(&body).u32().unwrap_or(u32::MAX));
        }
        if c.posts
            .iter()
            .any(|p| p.message == code::NOTIFY_MOVER_PAUSED)
        {
            bail!("the mover paused (end of medium or window): spanning cartridges needs a DMA with a robot (e.g. ndmjob -R)");
        }
        c.pump()?;
    }
}

/// Puts the opened tape where the image goes: a backup appends past the last file (or
/// starts at the beginning with --overwrite), a restore reads file `t.file`.
fn position(tape: &mut Client, t: &Transfer, backup: bool) -> Result<()> {
    mtio(tape, MtioOp::Rewind, 1)?;
    if backup {
        let _ = (!t.overwrite).then(|| {
            tape.call(&Request::TapeMtio {
                op: MtioOp::Fsf,
                count: u32::MAX >> 8,
            })
        });
    } else if t.file > 0 {
        mtio(tape, MtioOp::Fsf, t.file)?;
    }
    Ok(())
}

fn transfer(args: &NdmpArgs, data: &mut Client, t: &Transfer, backup: bool) -> Result<u8> {
    let mut remote = match &t.tape_server {
        Some(s) => Some(
            Client::connect(s, &args.user, &password(args)?)
                .with_context(|| format!("NDMP tape server {s}"))?,
        ),
        None => None,
    };
    let three_way = remote.is_some();
    let tape = match remote.as_mut() {
        Some(r) => r,
        None => &mut *data,
    };
    let record_size = u32::try_from(t.record_size).context("--record-size")?;
    tape.expect_ok(&Request::TapeOpen {
        device: t.tape.clone(),
        mode: u32::from(backup),
    })?;
    position(tape, t, backup)?;
    tape.expect_ok(&Request::MoverSetRecordSize { len: record_size })?;
    tape.expect_ok(&Request::MoverSetWindow {
        offset: 0,
        length: u64::MAX,
    })?;
    let addr_type = if three_way { ADDR_TCP } else { ADDR_LOCAL };
    let body = tape.expect_ok(&Request::MoverListen {
        mode: u32::from(!backup),
        addr_type,
    })?;
    let r = &mut Reader::new(&body);
    r.u32().ok();
    let addr = Addr::decode(r).map_err(|e| anyhow::anyhow!("MOVER_LISTEN reply: {e}"))?;
    data.expect_ok(&Request::DataConnect { addr })?;
    let mut env = vec![Pval::new("FILESYSTEM", t.disk.clone())];
    let digest = if t.no_digest {
        "none"
    } else {
        t.digest.as_str()
    };
    env.push(Pval::new("DIGEST", digest));
    let started = Instant::now();
    if backup {
        data.expect_ok(&Request::DataStartBackup {
            butype: "image".into(),
            env,
        })?;
    } else {
        data.expect_ok(&Request::DataStartRecover {
            env,
            names: vec![],
            butype: "image".into(),
            filehist: false,
        })?;
        let p = data.wait_post(code::NOTIFY_DATA_READ)?;
        let r = &mut Reader::new(&p.body);
        let (offset, length) = (r.u64().unwrap_or(0), r.u64().unwrap_or(0));
        let tape = remote.as_mut().unwrap_or(data);
        tape.expect_ok(&Request::MoverRead { offset, length })?;
    }
    let data_reason = reason(data, code::NOTIFY_DATA_HALTED)?;
    let tape = remote.as_mut().unwrap_or(data);
    let mover_reason = reason(tape, code::NOTIFY_MOVER_HALTED)?;
    let seconds = started.elapsed().as_secs_f64();
    let tape = remote.as_mut().unwrap_or(data);
    tape.expect_ok(&Request::MoverStop)?;
    if backup {
        mtio(tape, MtioOp::Eof, 1)?;
    }
    tape.expect_ok(&Request::TapeClose)?;
    let (_, env) = decode_env_reply(&data.expect_ok(&Request::DataGetEnv)?)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    data.expect_ok(&Request::DataStop)?;
    let get = |n: &str| {
        env.iter()
            .find(|p| p.name == n)
            .map(|p| p.value.clone())
            .unwrap_or_default()
    };
    let bytes: u64 = get("BYTES").parse().unwrap_or(0);
    let ok = data_reason == 1 && mover_reason == 1;
    let digest_text = crate::ndmp::digest::VARIABLES
        .iter()
        .filter(|v| !get(v).is_empty())
        .map(|v| format!(", {} {}", v.to_ascii_lowercase(), get(v)))
        .collect::<String>();
    println!(
        "{} {} {} {}: {bytes} bytes in {seconds:.3} s ({:.1} MB/s){}{}",
        if backup { "backup" } else { "restore" },
        t.disk,
        if backup { "->" } else { "<-" },
        t.tape,
        bytes as f64 / seconds.max(1e-9) / 1e6,
        digest_text,
        if ok {
            ""
        } else {
            " (FAILED: see halt reasons)"
        }
    );
    if args.json {
        println!(
            "{}",
            json!({"operation": if backup {"backup"} else {"restore"}, "disk": t.disk, "tape": t.tape,
                   "three_way": three_way, "bytes": bytes, "seconds": seconds, "md5": get("MD5"), "crc32c": get("CRC32C"),
                   "data_halt_reason": data_reason, "mover_halt_reason": mover_reason})
        );
    }
    Ok(if ok { 0 } else { 1 })
}
