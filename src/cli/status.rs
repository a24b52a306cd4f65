//! `xcopy status` and `xcopy abort`: the running daemon's copies, through its admin socket
//! (owner-only; see `xcopyd::admin`), or — read-only, from another host — through the
//! `/copies` of its `[metrics] listen` endpoint (`--target`).

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
  xcopy status --json | jq .   the same as one JSON object
  xcopy status --target http://backup1:9464   a daemon on another host (its [metrics] listen)")]
pub struct StatusArgs {
    /// The daemon's admin socket (default: xcopyd.sock in the state directory).
    #[arg(short = 'S', long, value_name = "PATH", conflicts_with = "target")]
    pub socket: Option<PathBuf>,
    /// A daemon elsewhere: the http://HOST:PORT of its [metrics] listen, whose /copies
    /// lists the same copies (read-only: `xcopy abort` is local, through the socket).
    #[arg(long, value_name = "http://HOST:PORT")]
    pub target: Option<String>,
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

/// Where the copies are asked for.
enum Source {
    Socket(PathBuf),
    /// The base URL of a metrics endpoint.
    Http(String),
}

impl Source {
    fn of(args: &StatusArgs) -> Self {
        match &args.target {
            Some(url) => Self::Http(url.trim_end_matches('/').to_string()),
            None => Self::Socket(socket(&args.socket)),
        }
    }

    /// `{"copies": [...]}`.
    fn list(&self) -> Result<Value> {
        match self {
            Self::Socket(path) => request(path, json!({"op": "list"})),
            Self::Http(base) => {
                let url = format!("{base}/copies");
                let mut answer = ureq::get(&url)
                    .call()
                    .with_context(|| format!("GET {url} (the daemon's [metrics] listen?)"))?;
                let text = answer
                    .body_mut()
                    .with_config()
                    .limit(16 << 20)
                    .read_to_string()
                    .with_context(|| format!("GET {url}"))?;
                let v: Value = serde_json::from_str(&text)
                    .with_context(|| format!("GET {url}: not the copies' JSON"))?;
                if !v["copies"].is_array() {
                    bail!("GET {url}: no \"copies\" list in the answer");
                }
                Ok(v)
            }
        }
    }

    /// `{"copy": {...} | null}`.
    fn get(&self, id: u64) -> Result<Value> {
        match self {
            Self::Socket(path) => request(path, json!({"op": "get", "id": id})),
            Self::Http(_) => {
                let list = self.list()?;
                let copy = list["copies"]
                    .as_array()
                    .and_then(|a| a.iter().find(|c| c["id"].as_u64() == Some(id)))
                    .cloned()
                    .unwrap_or(Value::Null);
                Ok(json!({ "copy": copy }))
            }
        }
    }
}

pub fn status(args: &StatusArgs) -> Result<u8> {
    let source = Source::of(args);
    if let Some(id) = args.watch {
        return watch(&source, id, args);
    }
    let answer = source.list()?;
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
fn watch(source: &Source, id: u64, args: &StatusArgs) -> Result<u8> {
    let interval = Duration::from_secs_f64(args.interval.clamp(0.05, 3600.0));
    loop {
        let answer = source.get(id)?;
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
