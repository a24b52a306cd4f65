//! What a copy says, local or remote: where a backup starts, the ddpt-style summary, the
//! sense of a failed copy, the JSON line and the progress bar; and the disk range an
//! argument names.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::json;

use super::copy_args::{parse_size, Common};
use super::tape_position::Start;
use crate::scsi::dump::render_sense;
use crate::scsi::{Sense, SenseKeySpecific};

/// Says where a backup starts, before it runs (on stderr with --json, so stdout's last line
/// stays the JSON object).
pub(super) fn print_start(common: &Common, start: &Start) {
    let file = match start.file {
        super::tape_position::UNKNOWN => {
            "(unknown: the drive has no long-form READ POSITION)".to_string()
        }
        n => n.to_string(),
    };
    let text = format!(
        "backup to tape file {file}, starting at block {}{}",
        start.block,
        if start.close_previous {
            " (after a filemark that closes the previous file)"
        } else {
            ""
        }
    );
    if common.json {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}

/// The `tape_file` and `tape_block` members of a backup's JSON line (null when unknown).
pub(super) fn start_json(start: Option<&Start>) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    let file = start
        .map(|s| s.file)
        .filter(|&f| f != super::tape_position::UNKNOWN);
    m.insert("tape_file".into(), json!(file));
    m.insert("tape_block".into(), json!(start.map(|s| s.block)));
    m
}

/// The LBA[+BLOCKS] part of a disk argument against the disk's capacity (None: unknown, so
/// BLOCKS is required) -> (first LBA, blocks).
pub(super) fn disk_range(
    spec: &str,
    range: Option<&str>,
    capacity: Option<u64>,
) -> Result<(u64, u64)> {
    let (lba, blocks) = match (range, capacity) {
        (None, Some(capacity)) => (0, capacity),
        (Some(r), _) => {
            let (l, b) = r.split_once('+').map_or((r, None), |(l, b)| (l, Some(b)));
            let lba = parse_size(l).map_err(|e| anyhow::anyhow!("{spec}: LBA: {e}"))?;
            let blocks = match (b, capacity) {
                (Some(b), _) => {
                    parse_size(b).map_err(|e| anyhow::anyhow!("{spec}: BLOCKS: {e}"))?
                }
                (None, Some(capacity)) => capacity.saturating_sub(lba),
                (None, None) => {
                    bail!("{spec}: BLOCKS: the disk's capacity is unknown, give LBA+BLOCKS")
                }
            };
            (lba, blocks)
        }
        (None, None) => bail!("{spec}: BLOCKS: the disk's capacity is unknown, give LBA+BLOCKS"),
    };
    if let Some(capacity) = capacity {
        if lba.checked_add(blocks).is_none_or(|end| end > capacity) {
            bail!("{spec}: LBA {lba} + {blocks} blocks is past the end of the disk ({capacity} blocks)");
        }
    }
    if blocks == 0 {
        bail!("{spec}: nothing to copy");
    }
    Ok((lba, blocks))
}

/// The progress bar of a copy of `total` bytes: only on a terminal, and not with --quiet.
pub(crate) fn progress_bar(common: &Common, total: u64) -> Option<indicatif::ProgressBar> {
    (!common.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(total.max(1));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    })
}

/// The ddpt-style summary, the sense if the copy failed, and the JSON line; returns the exit
/// status (the sense key, as sg3_utils does).
pub(super) fn report(
    common: &Common,
    sense: Option<Sense>,
    bytes: u64,
    elapsed: Duration,
    segments: u64,
    extra: serde_json::Map<String, serde_json::Value>,
) -> u8 {
    let secs = elapsed.as_secs_f64();
    println!("{segments} segments processed, {bytes} bytes copied");
    if secs > 0.0 {
        println!(
            "time to transfer data: {secs:.6} secs at {:.2} MB/sec",
            bytes as f64 / secs / 1e6
        );
    }
    if let Some(sense) = &sense {
        print!("{}", render_sense(sense));
    }
    if common.json {
        let field_pointer = sense.as_ref().and_then(|s| match s.sense_key_specific {
            Some(
                SenseKeySpecific::Field { pointer, .. } | SenseKeySpecific::Segment { pointer, .. },
            ) => Some(pointer),
            _ => None,
        });
        let mut line = json!({
            "status": if sense.is_some() { "check_condition" } else { "good" },
            "sense_key": sense.as_ref().map(|s| s.key.0),
            "asc": sense.as_ref().map(|s| s.asc.asc()),
            "ascq": sense.as_ref().map(|s| s.asc.ascq()),
            "field_pointer": field_pointer,
            "segment": sense.as_ref().and_then(|s| s.segment_number),
            "bytes": bytes,
            "seconds": secs,
        });
        if let Some(object) = line.as_object_mut() {
            object.extend(extra);
        }
        println!("{line}");
    }
    sense.map_or(0, |s| s.key.0)
}
