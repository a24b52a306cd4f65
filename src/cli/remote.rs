//! The CLI against a remote copy manager (`--target iscsi://HOST[:PORT]/IQN/LUN`): the
//! EXTENDED COPY goes to that LUN through xcopyd's own initiator while RECEIVE COPY RESULTS
//! (COPY STATUS, same list identifier) polls on the same session and drives the progress
//! bar; `xcopy results` prints one decoded RECEIVE COPY RESULTS page.

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde_json::json;

use super::copy_args::{BackupArgs, Common, RestoreArgs};
use super::report::{disk_range, print_start, report, start_json};
use super::tape_position::{
    backup_positioning, locate_backup, locate_file, restore_positioning, Placement, Reply, Source,
    TapeCommands,
};
use crate::copy::lists::{backup_list, restore_list, DiskEnd, TapeEnd};
use crate::iscsi::initiator::{IscsiUrl, LoginOptions, ScsiResponse, Session};
use crate::scsi::copy_results::{CopyStatus, ReceiveCopyResultsCdb, ServiceAction};
use crate::scsi::designator::association;
use crate::scsi::dump::render_sense;
use crate::scsi::luns::lun_from_wire;
use crate::scsi::segment_descriptor::CscdId;
use crate::scsi::{CscdIdentifier, Designator, ListIdUsage, ParameterList, Reader, Sense};

/// SCSI status values the CLI tells apart.
const GOOD: u8 = 0x00;
const CHECK_CONDITION: u8 = 0x02;
/// The UNIT ATTENTION sense key.
const UNIT_ATTENTION: u8 = 0x06;
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
    /// LIST IDENTIFIER of the EXTENDED COPY asked about (decimal or 0x hex).
    #[arg(short = 'l', long, default_value = "0", value_parser = parse_list_id)]
    pub list_id: u8,
    /// The service action.
    #[arg(long, value_enum, default_value = "copy-status")]
    pub sa: Sa,
    /// Print one JSON object as the last line of standard output (alone on it: the
    /// decoded page is in its "page" member).
    #[arg(short = 'j', long)]
    pub json: bool,
    /// Print the parameter data in hex instead of decoding it (sg3_utils' -H).
    #[arg(short = 'H', long)]
    pub hex: bool,
}

fn parse_list_id(text: &str) -> Result<u8, String> {
    let n = crate::size::parse(text)?;
    u8::try_from(n).map_err(|_| format!("{text:?}: a LIST IDENTIFIER is 0-255"))
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
    execute_with(common, url, list, total, serde_json::Map::new())
}

/// [`execute`] with more members for the JSON line.
fn execute_with(
    common: &Common,
    url: &str,
    list: &[u8],
    total: u64,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Result<u8> {
    let (session, lun) = open(url)?;
    let list_id = list.first().copied().unwrap_or(0);
    let pollable = list.get(1).is_some_and(|b| (b >> 3) & 0x03 != NO_LIST_ID);
    let mut cdb = [0u8; 16];
    cdb[0] = 0x83;
    let len = u32::try_from(list.len()).context("parameter list longer than 4 GiB")?;
    cdb[10..14].copy_from_slice(&len.to_be_bytes());
    let started = Instant::now();
    let seen = std::sync::atomic::AtomicU64::new(0);
    let done = super::progress::Done::default();
    let response = std::thread::scope(|scope| {
        scope.spawn(|| super::progress::watch(common, total, &seen, &done));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let copy = scope.spawn({
            let (session, cdb) = (&session, &cdb);
            move || {
                let _ended = tx;
                session.command(lun, cdb, list, 0)
            }
        });
        // Each POLL without the copy's end asks for the bytes moved; the channel
        // closes (Disconnected) when the copy's thread ends, however it ends.
        while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(POLL) {
            if !pollable {
                continue;
            }
            if let Some(bytes) =
                copy_status(&session, lun, list_id).and_then(|s| s.transferred_bytes())
            {
                seen.store(bytes, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let r = copy.join();
        done.set();
        r
    });
    let elapsed = started.elapsed();
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
    Ok(report(common, sense, bytes, elapsed, segments, extra))
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
    let mut page_json = serde_json::Value::Null;
    let sense = match r.status {
        GOOD => {
            let page = super::results_page::decode(sa, &r.data_in)?;
            bytes = page.bytes;
            page_json = page.json;
            if args.hex {
                for (i, chunk) in r.data_in.chunks(16).enumerate() {
                    let line = super::results_page::hex_spaced(chunk);
                    if args.json {
                        eprintln!(" {:04x}  {line}", i * 16);
                    } else {
                        println!(" {:04x}  {line}", i * 16);
                    }
                }
            } else if !args.json {
                print!("{}", page.text);
            }
            None
        }
        CHECK_CONDITION => {
            let s = Sense::decode(&r.sense).context("undecodable sense data from target")?;
            if args.json {
                eprint!("{}", render_sense(&s));
            } else {
                print!("{}", render_sense(&s));
            }
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
                "page": page_json,
                "data": hex::encode(&r.data_in),
            })
        );
    }
    Ok(sense.map_or(0, |s| s.key.0))
}

/// `xcopy backup --target`: the local backup's list, its CSCDs naming the remote devices by
/// the designators their LUNs report.
pub fn backup(args: &BackupArgs, url: &str) -> Result<u8> {
    let (session, via) = open(url)?;
    let placement = args.placement();
    let ends =
        remote_disk(&session, via, &args.from, "--from", args.block_length).and_then(|disk| {
            let (tape, lun) = remote_tape(&session, via, &args.to, "--to")?;
            // Where the backup starts, if the tape is a LUN the CLI can ask.
            let start = lun
                .map(|lun| locate_backup(&RemoteTape(&session, lun), placement))
                .transpose()?;
            Ok((disk, tape, start))
        });
    let _ = session.logout();
    let (disk, tape, start) = ends?;
    let mut filemark = args.filemark;
    match &start {
        Some(start) => print_start(&args.common, start),
        None if placement == Placement::Append => {
            // Whether the data there ends with a filemark cannot be asked, so this backup
            // ends with one: the next one starts a tape file of its own.
            eprintln!(
                "xcopy: {} is not a LUN of the target: the backup goes after its last data \
                 and ends with a filemark; which tape file it becomes is not known",
                args.to
            );
            filemark = true;
        }
        None => {}
    }
    let close = start.is_some_and(|s| s.close_previous);
    let positioning = backup_positioning(CscdId(1), placement, close)?;
    let list = backup_list(&disk, &tape, args.transfer_length, filemark, positioning)?;
    send(
        &args.common,
        url,
        list,
        disk.bytes(),
        start_json(start.as_ref()),
    )
}

/// `xcopy restore --target`: the local restore's list, with remote CSCDs.
pub fn restore(args: &RestoreArgs, url: &str) -> Result<u8> {
    let (session, via) = open(url)?;
    let source = args.source();
    let ends = remote_disk(&session, via, &args.to, "--to", args.block_length).and_then(|disk| {
        let (tape, lun) = remote_tape(&session, via, &args.from, "--from")?;
        if let (Some(lun), Source::File(n)) = (lun, source) {
            // Checked before anything is written to the disk.
            locate_file(&RemoteTape(&session, lun), n)?;
        }
        Ok((disk, tape))
    });
    let _ = session.logout();
    let (disk, tape) = ends?;
    let positioning = restore_positioning(CscdId(1), source)?;
    let list = restore_list(&disk, &tape, args.transfer_length, positioning)?;
    send(
        &args.common,
        url,
        list,
        disk.bytes(),
        serde_json::Map::new(),
    )
}

/// A tape LUN of the target as [`TapeCommands`].
struct RemoteTape<'a>(&'a Session, u64);

impl TapeCommands for RemoteTape<'_> {
    fn send(&self, cdb: &[u8], len: usize) -> Result<Reply> {
        let r = query(self.0, self.1, cdb, len)?;
        Ok(Reply {
            status: r.status,
            sense: r.sense,
            data: r.data_in,
        })
    }
}

/// Sends a built list with a list identifier (the session is new, so 1 is unique on its
/// I_T nexus) that COPY STATUS can poll for the bar and the segment count.
fn send(
    common: &Common,
    url: &str,
    mut list: ParameterList,
    total: u64,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Result<u8> {
    list.list_identifier = 1;
    list.list_id_usage = ListIdUsage::Hold;
    execute_with(common, url, &list.encode(), total, extra)
}

/// A data-in command on `lun`, retried past unit attentions (POWER ON, RESET on a LUN not
/// yet addressed in this session).
fn query(session: &Session, lun: u64, cdb: &[u8], len: usize) -> Result<ScsiResponse> {
    let mut r = session.command(lun, cdb, &[], len)?;
    for _ in 0..4 {
        let attention = r.status == CHECK_CONDITION
            && Sense::decode(&r.sense).is_ok_and(|s| s.key.0 == UNIT_ATTENTION);
        if !attention {
            break;
        }
        r = session.command(lun, cdb, &[], len)?;
    }
    Ok(r)
}

/// `lun:N` -> N and the CSCD identifier of that LUN, which must be of peripheral device
/// type `pdt`: its VPD 83h logical-unit designator (the highest of NAA, EUI-64, T10 vendor
/// ID, as the local inventory path picks).
fn remote_lun(
    session: &Session,
    n: &str,
    spec: &str,
    field: &str,
    pdt: u8,
) -> Result<(u64, CscdIdentifier)> {
    let lun: u64 = n
        .parse()
        .map_err(|_| anyhow::anyhow!("{field} {spec}: LUN {n:?} is not a number"))?;
    let inquiry = query(session, lun, &[0x12, 0, 0, 0, 36, 0], 36)?;
    let b0 = inquiry.data_in.first().copied().unwrap_or(0x7f);
    if inquiry.status != GOOD || b0 >> 5 != 0 {
        bail!("{field} {spec}: the target has no LUN {lun}");
    }
    if b0 & 0x1f != pdt {
        bail!(
            "{field} {spec}: LUN {lun} is not a {} (peripheral device type {:#04x})",
            if pdt == 0 { "disk" } else { "tape" },
            b0 & 0x1f
        );
    }
    let best = lun_designators(session, lun)?
        .into_iter()
        .filter(|d| {
            d.association == association::LOGICAL_UNIT
                && d.designator_type <= 3
                && d.value.len() <= 20
        })
        .max_by_key(|d| d.designator_type);
    let designator = best.with_context(|| {
        format!(
            "{field} {spec}: LUN {lun} reports no logical-unit designator an E4h CSCD can carry"
        )
    })?;
    Ok((lun, CscdIdentifier::Identification { designator }))
}

/// The designators of `lun`'s VPD 83h page (none if it has no such page).
fn lun_designators(session: &Session, lun: u64) -> Result<Vec<Designator>> {
    let page = query(session, lun, &[0x12, 1, 0x83, 0x10, 0, 0], 4096)?;
    if page.status != GOOD {
        return Ok(Vec::new());
    }
    let len = page
        .data_in
        .get(2..4)
        .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    let body = page
        .data_in
        .get(4..(4 + len).min(page.data_in.len()))
        .unwrap_or_default();
    let mut reader = Reader::new(body);
    let mut out = Vec::new();
    while let Ok(d) = Designator::decode(&mut reader) {
        out.push(d);
    }
    Ok(out)
}

/// The LUN of the target (REPORT LUNS, asked of LUN `via`) whose VPD 83h page carries
/// `designator`, if any.
fn find_lun(session: &Session, via: u64, designator: &Designator) -> Result<Option<u64>> {
    const ALLOCATION: usize = 8 + 8 * 256;
    let mut cdb = [0u8; 12];
    cdb[0] = 0xa0;
    cdb[6..10].copy_from_slice(&(ALLOCATION as u32).to_be_bytes());
    let r = query(session, via, &cdb, ALLOCATION)?;
    if r.status != GOOD {
        return Ok(None);
    }
    for entry in r.data_in.get(8..).unwrap_or_default().chunks_exact(8) {
        let mut wire = [0u8; 8];
        wire.copy_from_slice(entry);
        let lun = lun_from_wire(wire);
        if lun_designators(session, lun)?
            .iter()
            .any(|d| d.matches(designator))
        {
            return Ok(Some(lun));
        }
    }
    Ok(None)
}

/// A designator argument (naa./eui./t10.) -> its CSCD identifier.
fn named(name: &str, spec: &str, field: &str) -> Result<CscdIdentifier> {
    let designator = Designator::parse_name(name)
        .map_err(|e| anyhow::anyhow!("{field} {spec}: expected lun:N or a designator: {e}"))?;
    Ok(CscdIdentifier::Identification { designator })
}

/// READ CAPACITY(16) of a disk LUN -> (block length, blocks).
fn geometry(session: &Session, lun: u64, spec: &str, field: &str) -> Result<(u32, u64)> {
    let r = query(session, lun, &crate::scsi::sbc::READ_CAPACITY_16_CDB, 32)?;
    let capacity = crate::scsi::sbc::decode_read_capacity_16_data(&r.data_in);
    let Some((blocks, block_length)) = capacity.filter(|_| r.status == GOOD) else {
        bail!("{field} {spec}: READ CAPACITY(16) on LUN {lun} failed");
    };
    Ok((block_length, blocks))
}

/// `lun:N[:LBA[+BLOCKS]]` or `DESIGNATOR[:LBA[+BLOCKS]]` -> the disk end (a designator
/// that is one of the target's LUNs gets that LUN's geometry; otherwise --block-length and
/// LBA+BLOCKS are required).
fn remote_disk(
    session: &Session,
    via: u64,
    spec: &str,
    field: &str,
    block_length: Option<u64>,
) -> Result<DiskEnd> {
    if let Some(rest) = spec.strip_prefix("lun:") {
        let (n, range) = rest
            .split_once(':')
            .map_or((rest, None), |(n, r)| (n, Some(r)));
        let (lun, identifier) = remote_lun(session, n, spec, field, 0)?;
        let (block_length, capacity) = geometry(session, lun, spec, field)?;
        let (lba, blocks) = disk_range(spec, range, Some(capacity))?;
        return Ok(DiskEnd {
            identifier,
            lba,
            blocks,
            block_length,
        });
    }
    let (name, range) = spec
        .split_once(':')
        .map_or((spec, None), |(n, r)| (n, Some(r)));
    let identifier = named(name, spec, field)?;
    let CscdIdentifier::Identification { designator } = &identifier else {
        bail!("{field} {spec}: not a designator");
    };
    if let Some(lun) = find_lun(session, via, designator)? {
        let (block_length, capacity) = geometry(session, lun, spec, field)?;
        let (lba, blocks) = disk_range(spec, range, Some(capacity))?;
        return Ok(DiskEnd {
            identifier,
            lba,
            blocks,
            block_length,
        });
    }
    let Some(block_length) = block_length else {
        bail!("{field} {spec}: --block-length: {name} is not a LUN of the target, give the disk's logical block length");
    };
    let block_length = u32::try_from(block_length)
        .ok()
        .filter(|&b| b != 0 && b <= 0x00ff_ffff)
        .with_context(|| format!("--block-length {block_length}: must be 1 to 16777215"))?;
    let (lba, blocks) = disk_range(spec, range, None)?;
    Ok(DiskEnd {
        identifier,
        lba,
        blocks,
        block_length,
    })
}

/// `lun:N` or a designator of one of the target's LUNs (mode from its MODE SENSE block
/// descriptor), or another designator (variable mode) -> the tape end.
fn remote_tape(
    session: &Session,
    via: u64,
    spec: &str,
    field: &str,
) -> Result<(TapeEnd, Option<u64>)> {
    let (lun, identifier) = match spec.strip_prefix("lun:") {
        Some(n) => remote_lun(session, n, spec, field, 1)?,
        None => {
            let identifier = named(spec, spec, field)?;
            let CscdIdentifier::Identification { designator } = &identifier else {
                bail!("{field} {spec}: not a designator");
            };
            match find_lun(session, via, designator)? {
                Some(lun) => (lun, identifier),
                None => {
                    let end = TapeEnd {
                        identifier,
                        fixed: false,
                        block_length: 0,
                    };
                    return Ok((end, None));
                }
            }
        }
    };
    let mode = query(session, lun, &[0x1a, 0, 0, 0, 12, 0], 12)?;
    let block_length = match mode.data_in.get(..12) {
        Some(m) if mode.status == GOOD && m[3] >= 8 => u32::from_be_bytes([0, m[9], m[10], m[11]]),
        _ => 0,
    };
    let end = TapeEnd {
        identifier,
        fixed: block_length != 0,
        block_length,
    };
    Ok((end, Some(lun)))
}
