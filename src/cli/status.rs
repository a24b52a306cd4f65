//! `xcopy status` and `xcopy abort`: the running daemon's copies, through its admin socket
//! (owner-only; see `xcopyd::admin`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};

use crate::admin::ask;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  xcopy status                 every running copy, then the last finished
  xcopy status --watch 7       follow copy 7 until it ends (exit status: its sense key)
  xcopy status --json | jq .   the same as one JSON object")]
pub struct StatusArgs {
    /// The daemon's admin socket (default: xcopyd.sock in the state directory).
    #[arg(short = 'S', long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Follow one copy, a line per interval, until it ends.
    #[arg(short, long, value_name = "ID")]
    pub watch: Option<u64>,
    /// Seconds between lines with --watch.
    #[arg(short, long, default_value_t = 1.0)]
    pub interval: f64,
    /// Print one JSON object (the daemon's answer) as the last line of standard output.
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:
  xcopy abort 7                stop copy 7 (it ends with COPY ABORTED)")]
pub struct AbortArgs {
    /// The daemon's admin socket (default: xcopyd.sock in the state directory).
    #[arg(short = 'S', long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// The copy, as `xcopy status` numbers it.
    pub id: u64,
}

fn socket(given: &Option<PathBuf>) -> PathBuf {
    given
        .clone()
        .unwrap_or_else(|| crate::state::state_dir().join("xcopyd.sock"))
}

fn request(path: &Path, req: Value) -> Result<Value> {
    let answer = ask(path, &req).with_context(|| {
        format!(
            "the daemon's admin socket {} (is xcopyd running, as this user?)",
            path.display()
        )
    })?;
    if let Some(e) = answer.get("error").and_then(Value::as_str) {
        bail!("xcopyd: {e}");
    }
    Ok(answer)
}

pub fn status(args: &StatusArgs) -> Result<u8> {
    let path = socket(&args.socket);
    if let Some(id) = args.watch {
        return watch(&path, id, args);
    }
    let answer = request(&path, json!({"op": "list"}))?;
    let copies = answer["copies"].as_array().cloned().unwrap_or_default();
    if args.json {
        println!("{answer}");
        return Ok(0);
    }
    if copies.is_empty() {
        println!("no copies");
        return Ok(0);
    }
    println!(
        "{:>5} {:15} {:40} {:>4} {:>21} {:>11} {:>7}  result",
        "id", "state", "initiator", "list", "bytes", "rate", "eta"
    );
    for c in &copies {
        println!("{}", line(c));
    }
    Ok(0)
}

/// One copy as a table row.
fn line(c: &Value) -> String {
    let num = |k: &str| c[k].as_f64().unwrap_or(0.0);
    let total = c["total_bytes"].as_u64().unwrap_or(0);
    let bytes = c["bytes"].as_u64().unwrap_or(0);
    let progress = if total > 0 {
        format!("{bytes}/{total}")
    } else {
        bytes.to_string()
    };
    let eta = c["eta"]
        .as_f64()
        .map_or_else(|| "-".to_string(), |e| format!("{e:.0}s"));
    let mut result = match (c["sense"].as_str(), c["device_sense"].as_str()) {
        (Some(s), Some(d)) => format!("{s} (device: {d})"),
        (Some(s), None) => s.to_string(),
        (None, _) => String::new(),
    };
    if let Some(limit) = c["limit"].as_f64() {
        // The copy's own cap (device caps are in the inventory), and its PRIORITY.
        result = format!(
            "limit {:.1}MB/s priority {} {result}",
            limit / 1e6,
            c["priority"]
        );
    }
    format!(
        "{:>5} {:15} {:40} {:>4} {:>21} {:>7.1}MB/s {:>7}  {}",
        c["id"],
        c["state"].as_str().unwrap_or("?"),
        c["initiator"].as_str().unwrap_or("?"),
        c["list_id"],
        progress,
        num("rate") / 1e6,
        eta,
        result
    )
}

/// `--watch ID`: a line per interval until the copy ends; the exit status is its sense key.
fn watch(path: &Path, id: u64, args: &StatusArgs) -> Result<u8> {
    let interval = Duration::from_secs_f64(args.interval.clamp(0.05, 3600.0));
    loop {
        let answer = request(path, json!({"op": "get", "id": id}))?;
        let copy = &answer["copy"];
        if copy.is_null() {
            bail!("no copy {id} (running or among the last finished)");
        }
        if copy["state"] != "running" {
            if args.json {
                println!("{answer}");
            } else {
                println!("{}", line(copy));
            }
            let key = copy["sense"]
                .as_str()
                .and_then(|s| u8::from_str_radix(s.get(..2)?, 16).ok())
                .unwrap_or(0);
            return Ok(key);
        }
        if !args.json {
            println!("{}", line(copy));
        }
        std::thread::sleep(interval);
    }
}

pub fn abort(args: &AbortArgs) -> Result<u8> {
    let path = socket(&args.socket);
    let answer = request(&path, json!({"op": "abort", "id": args.id}))?;
    if answer["aborted"] == true {
        println!("copy {} asked to stop; it ends with COPY ABORTED", args.id);
        Ok(0)
    } else {
        bail!("copy {} is not running", args.id)
    }
}
