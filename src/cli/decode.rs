//! `xcopy decode` and `xcopy encode`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use super::input::{parse_hex_text, read_input};
use crate::scsi::dump::render_verdict;
use crate::scsi::parameter_list::{evaluate, Verdict};
use crate::scsi::{Limits, ParameterList, Sense, SenseKeySpecific, Supported};

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Parameter list file, or - for standard input.
    #[arg(default_value = "-")]
    pub file: PathBuf,
    /// The input is hex text (sg3_utils --inhex style), not binary.
    #[arg(long)]
    pub inhex: bool,
    /// Print one JSON object as the last line of standard output.
    #[arg(short = 'j', long)]
    pub json: bool,
    /// Copy-manager limits to validate against (TOML, the [limits] keys); default: xcopyd's.
    #[arg(long, value_name = "TOML")]
    pub limits: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// TOML description of the list (fields as `xcopy decode --json` prints them).
    pub file: PathBuf,
    /// Output file (default: standard output).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Write hex text instead of binary.
    #[arg(short = 'H', long)]
    pub hex: bool,
}

/// `verbose`: the global -v (with it, the list as hex too).
pub fn decode(args: &DecodeArgs, verbose: u8) -> Result<u8> {
    let raw = read_input(&args.file)?;
    let bytes = if args.inhex {
        parse_hex_text(std::str::from_utf8(&raw).context("--inhex input is not text")?)?
    } else {
        raw
    };
    let limits = match &args.limits {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("{}: bad limits", path.display()))?
        }
        None => Limits::default(),
    };
    if verbose > 0 {
        println!("{} bytes: {}", bytes.len(), hex_text(&bytes));
    }
    let verdict = evaluate(&bytes, &limits, Supported::default());
    print!("{}", render_verdict(&verdict));
    let (list, sense, segment) = match verdict {
        Verdict::Empty => (None, None, None),
        Verdict::Accepted(list) => (Some(list), None, None),
        Verdict::Rejected(sense) => (None, Some(sense), None),
        Verdict::WouldAbort {
            list,
            segment,
            sense,
        } => (Some(list), Some(sense), Some(segment)),
    };
    if args.json {
        let mut object = json!({
            "status": if sense.is_some() { "check_condition" } else { "good" },
            "sense_key": sense.as_ref().map(|s| s.key.0),
            "asc": sense.as_ref().map(|s| s.asc.asc()),
            "ascq": sense.as_ref().map(|s| s.asc.ascq()),
            "field_pointer": sense.as_ref().and_then(Sense::field_pointer),
            "segment": segment,
            "bytes": 0,
            "list": list,
        });
        if let Some(Some(SenseKeySpecific::Segment { in_segment, .. })) =
            sense.as_ref().map(|s| s.sense_key_specific)
        {
            object["sd"] = json!(in_segment);
        }
        println!("{object}");
    }
    Ok(sense.map_or(0, |s| s.key.0))
}

pub fn encode(args: &EncodeArgs) -> Result<u8> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let list: ParameterList = toml::from_str(&text)
        .with_context(|| format!("{}: bad list description", args.file.display()))?;
    let bytes = list.encode();
    let out = if args.hex {
        format!("{}\n", hex_text(&bytes)).into_bytes()
    } else {
        bytes
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?
        }
        None => std::io::stdout()
            .write_all(&out)
            .context("writing standard output")?,
    }
    Ok(0)
}

fn hex_text(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(crate::scsi::dump::hex_spaced)
        .collect::<Vec<_>>()
        .join("\n")
}
