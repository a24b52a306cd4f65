//! The CLI against a remote copy manager (`--target iscsi://HOST[:PORT]/IQN/LUN`): the
//! EXTENDED COPY goes to that LUN through xcopyd's own initiator while RECEIVE COPY RESULTS
//! (COPY STATUS, same list identifier) polls on the same session and drives the progress
//! bar; `xcopy results` prints one decoded RECEIVE COPY RESULTS page.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde_json::json;

use super::copy::{report, Common};
use crate::frontend::iscsi::initiator::{IscsiUrl, LoginOptions, Session};
use crate::scsi::copy_results::{
    CopyStatus, FailedSegmentDetails, OperatingParameters, ReceiveCopyResultsCdb, ReceiveData,
    ServiceAction,
};
use crate::scsi::dump::render_sense;
use crate::scsi::Sense;

/// SCSI status values the CLI tells apart.
const GOOD: u8 = 0x00;
const CHECK_CONDITION: u8 = 0x02;
/// LIST ID USAGE 11b: no list identifier, nothing to poll.
const NO_LIST_ID: u8 = 0x03;
/// How often COPY STATUS is polled while the copy runs.
const POLL: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Sa {
    CopyStatus,
    ReceiveData,
    OperatingParameters,
    FailedSegmentDetails,
}

#[derive(Debug, Args)]
pub struct ResultsArgs {
    /// The copy manager: iscsi://HOST[:PORT]/IQN/LUN.
    #[arg(long, value_name = "iscsi://HOST[:PORT]/IQN/LUN")]
    pub target: String,
    /// LIST IDENTIFIER of the EXTENDED COPY asked about.
    #[arg(short = 'l', long, default_value_t = 0)]
    pub list_id: u8,
    /// The service action.
    #[arg(long, value_enum, default_value = "copy-status")]
    pub sa: Sa,
    /// Print one JSON object as the last line of standard output.
    #[arg(short = 'j', long)]
    pub json: bool,
}

/// A logged-in session to the URL's target, with the LUN's pending unit attention (POWER
/// ON, RESET after login) taken by TEST UNIT READY.
fn open(url: &str) -> Result<(Session, u64)> {
    let url = IscsiUrl::parse(url)?;
    let session = Session::connect(&url.address, &LoginOptions::new(&url.target))
        .with_context(|| format!("logging in to {} at {}", url.target, url.address))?;
    for _ in 0..4 {
        if session.command(url.lun, &[0; 6], &[], 0)?.status == GOOD {
            break;
        }
    }
    Ok((session, url.lun))
}

fn results_cdb(sa: ServiceAction, list_id: u8, allocation_length: u32) -> [u8; 16] {
    ReceiveCopyResultsCdb {
        service_action: sa,
        list_identifier: list_id,
        allocation_length,
        control: 0,
    }
    .encode()
}

fn copy_status(session: &Session, lun: u64, list_id: u8) -> Option<CopyStatus> {
    let r = session
        .command(
            lun,
            &results_cdb(ServiceAction::CopyStatus, list_id, 12),
            &[],
            12,
        )
        .ok()?;
    (r.status == GOOD)
        .then(|| CopyStatus::decode(&r.data_in).ok())
        .flatten()
}

/// Sends the parameter list `list` as an EXTENDED COPY to the URL's LUN and reports as the
/// local run does (summary, sense, JSON line; exit status = sense key).
pub fn execute(common: &Common, url: &str, list: &[u8], total: u64) -> Result<u8> {
    let (session, lun) = open(url)?;
    let list_id = list.first().copied().unwrap_or(0);
    let pollable = list.get(1).is_some_and(|b| (b >> 3) & 0x03 != NO_LIST_ID);
    let mut cdb = [0u8; 16];
    cdb[0] = 0x83;
    let len = u32::try_from(list.len()).context("parameter list longer than 4 GiB")?;
    cdb[10..14].copy_from_slice(&len.to_be_bytes());
    let bar = (!common.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(total.max(1));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let started = Instant::now();
    let response = std::thread::scope(|scope| {
        let copy = scope.spawn(|| session.command(lun, &cdb, list, 0));
        let mut polled = Instant::now();
        while !copy.is_finished() {
            std::thread::sleep(Duration::from_millis(2));
            if polled.elapsed() < POLL {
                continue;
            }
            polled = Instant::now();
            if let (Some(bar), true) = (&bar, pollable) {
                if let Some(bytes) =
                    copy_status(&session, lun, list_id).and_then(|s| s.transferred_bytes())
                {
                    bar.set_position(bytes);
                }
            }
        }
        copy.join()
    });
    let elapsed = started.elapsed();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let response = match response {
        Ok(r) => r?,
        Err(_) => bail!("the EXTENDED COPY thread panicked"),
    };
    let last = if pollable {
        copy_status(&session, lun, list_id)
    } else {
        None
    };
    let _ = session.logout();
    let sense = match response.status {
        GOOD => None,
        CHECK_CONDITION => {
            Some(Sense::decode(&response.sense).context("undecodable sense data from target")?)
        }
        other => bail!("EXTENDED COPY ended with SCSI status {other:#04x}"),
    };
    let bytes = last
        .and_then(|s| s.transferred_bytes())
        .unwrap_or(if sense.is_none() { total } else { 0 });
    let segments = last.map_or(0, |s| u64::from(s.segments_processed));
    Ok(report(common, sense, bytes, elapsed, segments))
}

/// `xcopy results`: one RECEIVE COPY RESULTS page, decoded.
pub fn results(args: &ResultsArgs) -> Result<u8> {
    let (session, lun) = open(&args.target)?;
    let sa = match args.sa {
        Sa::CopyStatus => ServiceAction::CopyStatus,
        Sa::ReceiveData => ServiceAction::ReceiveData,
        Sa::OperatingParameters => ServiceAction::OperatingParameters,
        Sa::FailedSegmentDetails => ServiceAction::FailedSegmentDetails,
    };
    const ALLOCATION: u32 = 64 * 1024;
    let r = session.command(
        lun,
        &results_cdb(sa, args.list_id, ALLOCATION),
        &[],
        ALLOCATION as usize,
    )?;
    let _ = session.logout();
    let mut bytes = 0u64;
    let sense = match r.status {
        GOOD => {
            let page = match sa {
                ServiceAction::CopyStatus => {
                    let s = CopyStatus::decode(&r.data_in)?;
                    bytes = s.transferred_bytes().unwrap_or(0);
                    format!("{s:#?}")
                }
                ServiceAction::ReceiveData => format!("{:#?}", ReceiveData::decode(&r.data_in)?),
                ServiceAction::OperatingParameters => {
                    format!("{:#?}", OperatingParameters::decode(&r.data_in)?)
                }
                ServiceAction::FailedSegmentDetails => {
                    match FailedSegmentDetails::decode(&r.data_in)? {
                        Some(d) => match Sense::decode(&d.sense) {
                            Ok(s) => format!(
                                "EXTENDED COPY status {:#04x}\n{}",
                                d.command_status,
                                render_sense(&s)
                            ),
                            Err(_) => format!("{d:#?}"),
                        },
                        None => "no failed segment details held".to_string(),
                    }
                }
            };
            println!("{page}");
            None
        }
        CHECK_CONDITION => {
            let s = Sense::decode(&r.sense).context("undecodable sense data from target")?;
            print!("{}", render_sense(&s));
            Some(s)
        }
        other => bail!("RECEIVE COPY RESULTS ended with SCSI status {other:#04x}"),
    };
    if args.json {
        let field_pointer = sense.as_ref().and_then(|s| s.field_pointer());
        println!(
            "{}",
            json!({
                "status": if sense.is_some() { "check_condition" } else { "good" },
                "sense_key": sense.as_ref().map(|s| s.key.0),
                "asc": sense.as_ref().map(|s| s.asc.asc()),
                "ascq": sense.as_ref().map(|s| s.asc.ascq()),
                "field_pointer": field_pointer,
                "segment": sense.as_ref().and_then(|s| s.segment_number),
                "bytes": bytes,
                "data": r.data_in.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            })
        );
    }
    Ok(sense.map_or(0, |s| s.key.0))
}
