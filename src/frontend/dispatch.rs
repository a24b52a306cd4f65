//! The transport-independent SCSI dispatcher: one CDB (+ data-out) for a LUN of an I_T
//! nexus in, status + sense + data-in out. Every front end calls it.
//!
//! What it answers itself, and why:
//! - REPORT LUNS, on any LUN, existing or not (SPC-3 6.21: the well-known way to find LUNs).
//! - INQUIRY for a LUN that does not exist: PERIPHERAL QUALIFIER 011b, PDT 1Fh (SPC-3
//!   6.4.2); any other command to it: ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED (25/00).
//! - Unit attention conditions (SAM-3 5.9.7, SPC-3 5.9): POWER ON, RESET (29/00) once per
//!   I_T nexus per LUN after start and after a LUN or target reset; REPORTED LUNS DATA HAS
//!   CHANGED (3F/0E) after the LUN set changes. INQUIRY, REPORT LUNS and REQUEST SENSE are
//!   neither blocked by a pending UA nor clear it (REQUEST SENSE takes SAM-3's option a:
//!   pending sense is reported and the UA preserved), except that REPORT LUNS clears 3F/0E
//!   on the LUN it was sent to, as SPC-3 6.21 requires.
//! - EXTENDED COPY (83h) and RECEIVE COPY RESULTS (84h) go to the [`CopyService`], with the
//!   addressed LUN's device as the receiving LUN.
//! - INQUIRY EVPD page 8Fh (Third-party Copy) when the device answers it with CHECK
//!   CONDITION: built from [`crate::scsi::third_party_copy`] ([`third_party_copy_vpd`]).
//!
//! Everything else goes to the LUN's device unchanged; the device answers 05/20/00 for
//! what it does not support. Standard INQUIRY data from a device always leaves with 3PC=1:
//! every xcopyd LUN is a copy manager.
//!
//! LUN masking: a LUN whose device has an `allow` list that does not name the nexus's
//! initiator ([`crate::device::access::permits`]) does not exist for that nexus — REPORT
//! LUNS leaves it out, INQUIRY answers as for no LUN, every other command (EXTENDED COPY
//! and RECEIVE COPY RESULTS included) gets LOGICAL UNIT NOT SUPPORTED (25/00), and task
//! management treats it as absent. LUN numbers do not shift.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};

use super::reservation::TaskAborter;
use crate::command::{Abort, Command, CommandResult, Kind, Nexus};
use crate::copy::CopyService;
use crate::device::reservation::InitiatorPort;
use crate::device::{access, DataDirection, ScsiDevice};
use crate::metrics::Metrics;
use crate::scsi::inquiry::{self, InquiryCdb};
use crate::scsi::luns::{report_luns_data, ReportLunsCdb};
use crate::scsi::sbc::{self, ReportOpcodesCdb};
use crate::scsi::third_party_copy;
use crate::scsi::{
    Asc, Limits, Opcode, PeripheralDeviceType, Put, Sense, SenseKey, Status, ThirdPartyCopyPage,
};

/// Byte 0 of INQUIRY data for a LUN that does not exist: qualifier 011b, PDT 1Fh.
const NO_LUN_PERIPHERAL: u8 = 0x7f;

/// One logical unit: its device and who may see it.
#[derive(Clone)]
pub struct Lun {
    pub device: Arc<dyn ScsiDevice>,
    /// The device's `allow` list (empty: every initiator).
    pub allow: Vec<String>,
}

impl From<Arc<dyn ScsiDevice>> for Lun {
    /// A LUN every initiator may use.
    fn from(device: Arc<dyn ScsiDevice>) -> Self {
        Self {
            device,
            allow: Vec::new(),
        }
    }
}

impl<D: ScsiDevice + 'static> From<Arc<D>> for Lun {
    fn from(device: Arc<D>) -> Self {
        let device: Arc<dyn ScsiDevice> = device;
        device.into()
    }
}

/// The transport-independent dispatcher: LUN number = position in the list.
pub struct Dispatcher {
    luns: RwLock<Vec<Lun>>,
    copy: Arc<dyn CopyService>,
    /// The copy manager's limits, for VPD 8Fh.
    limits: Limits,
    attention: Mutex<Attention>,
    metrics: Option<Arc<Metrics>>,
    /// The front ends serving this dispatcher, for PREEMPT AND ABORT.
    aborters: RwLock<Vec<Weak<dyn TaskAborter>>>,
}

/// Unit attention bookkeeping. A condition is pending for (nexus, LUN) while the epoch the
/// nexus last saw is older than the current one; a nexus never seen has everything pending.
#[derive(Default)]
struct Attention {
    /// Bumped by each reset of a LUN (index = LUN; target reset bumps them all).
    reset_epoch: Vec<u64>,
    /// Bumped by each change of the LUN set.
    luns_epoch: u64,
    seen: HashMap<Nexus, HashMap<u64, Seen>>,
}

#[derive(Clone, Copy)]
struct Seen {
    reset: u64,
    luns: u64,
    /// The last of the device's own conditions ([`ScsiDevice::unit_attentions`]) reported.
    device: u64,
}

impl Dispatcher {
    /// A dispatcher for `luns` (LUN n = `luns[n]`) whose copy manager is `copy`.
    pub fn new<L: Into<Lun>>(luns: Vec<L>, copy: Arc<dyn CopyService>) -> Self {
        let luns: Vec<Lun> = luns.into_iter().map(Into::into).collect();
        let attention = Attention {
            reset_epoch: vec![0; luns.len()],
            ..Attention::default()
        };
        Self {
            luns: RwLock::new(luns),
            copy,
            limits: Limits::default(),
            attention: Mutex::new(attention),
            metrics: None,
            aborters: RwLock::default(),
        }
    }

    /// Counts commands, CHECK CONDITIONs and device latency in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Sets the limits VPD 8Fh reports (those the copy manager enforces).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Registers a front end whose tasks PREEMPT AND ABORT may abort (kept while it lives).
    pub fn add_task_aborter(&self, aborter: Weak<dyn TaskAborter>) {
        let mut all = self
            .aborters
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        all.retain(|a| a.strong_count() > 0);
        all.push(aborter);
    }

    /// PREEMPT AND ABORT from `issuer` on `device` preempted the `preempted` ports: every
    /// front end aborts their nexuses' tasks on each LUN of the device, and this returns
    /// once they have ended (SPC-4 5.13.11.4.4), before the command's GOOD leaves.
    fn abort_preempted(
        &self,
        issuer: &Nexus,
        device: &Arc<dyn ScsiDevice>,
        preempted: &[InitiatorPort],
    ) {
        let luns: Vec<u64> = {
            let luns = self.luns.read().unwrap_or_else(PoisonError::into_inner);
            (0..luns.len() as u64)
                .zip(luns.iter())
                .filter(|(_, l)| std::ptr::addr_eq(Arc::as_ptr(&l.device), Arc::as_ptr(device)))
                .map(|(n, _)| n)
                .collect()
        };
        let aborters: Vec<Arc<dyn TaskAborter>> = self
            .aborters
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        super::reservation::abort_preempted(&aborters, &luns, issuer, preempted);
    }

    /// Replaces the LUN set; every nexus gets REPORTED LUNS DATA HAS CHANGED on each LUN.
    pub fn set_luns<L: Into<Lun>>(&self, luns: Vec<L>) {
        let luns: Vec<Lun> = luns.into_iter().map(Into::into).collect();
        let mut a = self.attention();
        a.reset_epoch.resize(luns.len(), 0);
        a.luns_epoch += 1;
        *self.luns.write().unwrap_or_else(PoisonError::into_inner) = luns;
    }

    /// LUN RESET (SAM-3 7.7): raises POWER ON, RESET on `lun` for every nexus. Aborting the
    /// LUN's tasks is the transport's job (it owns their [`Abort`]s).
    pub fn lun_reset(&self, lun: u64) {
        super::reservation::reset(self.lun(lun).map(|l| l.device).iter());
        let mut a = self.attention();
        if let Some(e) = usize::try_from(lun)
            .ok()
            .and_then(|i| a.reset_epoch.get_mut(i))
        {
            *e += 1;
        }
    }

    /// TARGET WARM RESET: a LUN reset of every LUN.
    pub fn target_reset(&self) {
        let luns = self.luns.read().unwrap_or_else(PoisonError::into_inner);
        super::reservation::reset(luns.iter().map(|l| &l.device));
        drop(luns);
        for e in self.attention().reset_epoch.iter_mut() {
            *e += 1;
        }
    }

    /// The nexus is gone (logout, connection loss): forget its unit attention state and its
    /// held copy results.
    pub fn nexus_lost(&self, nexus: &Nexus) {
        let luns = self.luns.read().unwrap_or_else(PoisonError::into_inner);
        super::reservation::nexus_lost(luns.iter().map(|l| &l.device), nexus);
        drop(luns);
        self.attention().seen.remove(nexus);
        self.copy.nexus_lost(nexus);
    }

    /// Whether `lun` exists for `nexus` (and is not masked from it).
    pub fn has_lun(&self, nexus: &Nexus, lun: u64) -> bool {
        self.visible(nexus, lun).is_some()
    }

    /// Whether a SIMPLE command with this CDB on `lun` may run beside others and complete
    /// out of order: a READ or WRITE (6/10/12/16) on a device that allows it
    /// ([`ScsiDevice::concurrent_io`]). Everything else — MODE SELECT, SYNCHRONIZE CACHE,
    /// EXTENDED COPY, tape commands — keeps running alone, in order.
    pub fn concurrent(&self, lun: u64, cdb: &[u8]) -> bool {
        const RW: [Opcode; 8] = [
            Opcode::READ_6,
            Opcode::READ_10,
            Opcode::READ_12,
            Opcode::READ_16,
            Opcode::WRITE_6,
            Opcode::WRITE_10,
            Opcode::WRITE_12,
            Opcode::WRITE_16,
        ];
        cdb.first().is_some_and(|&op| RW.contains(&Opcode(op)))
            && self.lun(lun).is_some_and(|l| l.device.concurrent_io())
    }

    /// Runs one command. `data_out` is what the initiator sent; `data_in_len` the most it
    /// accepts back (the result's `data_in` is never longer).
    pub fn execute(
        &self,
        nexus: &Nexus,
        lun: u64,
        cdb: &[u8],
        data_out: &[u8],
        data_in_len: usize,
        abort: &Abort,
    ) -> CommandResult {
        let mut buf = vec![0u8; data_in_len];
        let (mut result, n) = self.execute_into(nexus, lun, cdb, data_out, &mut buf, abort);
        buf.truncate(n);
        result.data_in = buf;
        result
    }

    /// [`Dispatcher::execute`] with the data-in placed in the caller's `data_in` (its
    /// length is the most the initiator accepts): returns the result, whose own `data_in`
    /// is empty, and how many bytes at the start of `data_in` are the command's data-in.
    /// A device reads straight into `data_in`, so a transport that keeps an aligned buffer
    /// per worker moves disk data with no allocation and no copy.
    pub fn execute_into(
        &self,
        nexus: &Nexus,
        lun: u64,
        cdb: &[u8],
        data_out: &[u8],
        data_in: &mut [u8],
        abort: &Abort,
    ) -> (CommandResult, usize) {
        // The one place a CDB is decoded above the device.
        let (command, (result, n)) = match Command::decode(cdb) {
            Ok(c) => {
                let done = self.dispatch(nexus, lun, &c, data_out, data_in, abort);
                (Some(c), done)
            }
            Err(sense) => (None, (CommandResult::check_condition(&sense), 0)),
        };
        if let Some(m) = &self.metrics {
            count(m, nexus, command.as_ref().map(|c| &c.kind), &result);
        }
        (result, n)
    }

    fn dispatch(
        &self,
        nexus: &Nexus,
        lun: u64,
        command: &Command<'_>,
        data_out: &[u8],
        data_in: &mut [u8],
        abort: &Abort,
    ) -> (CommandResult, usize) {
        let op = command.op;
        let result = if let Kind::ReportLuns(cdb) = &command.kind {
            self.report_luns(nexus, lun, cdb)
        } else {
            match self.visible(nexus, lun) {
                None => match &command.kind {
                    Kind::Inquiry(cdb) => no_lun_inquiry(cdb),
                    _ => self.masked_or_absent(nexus, lun, op),
                },
                Some(device) => {
                    let exempt = matches!(command.kind, Kind::Inquiry(_) | Kind::RequestSense);
                    match self.take_unit_attention(nexus, lun, exempt, &device) {
                        Some(asc) => CommandResult::check_condition(&Sense::new(
                            SenseKey::UNIT_ATTENTION,
                            asc,
                        )),
                        None => {
                            match super::reservation::screen(&*device, nexus, command, data_out) {
                                Some((screened, preempted)) => {
                                    if !preempted.is_empty() {
                                        self.abort_preempted(nexus, &device, &preempted);
                                    }
                                    screened
                                }
                                None => {
                                    return self.to_device(
                                        nexus, device, command, data_out, data_in, abort,
                                    )
                                }
                            }
                        }
                    }
                }
            }
        };
        placed(result, data_in)
    }

    /// A command to a LUN this nexus may not see (masked, or none at that number): LOGICAL
    /// UNIT NOT SUPPORTED, and a masked LUN's refusal logged.
    fn masked_or_absent(&self, nexus: &Nexus, lun: u64, op: Opcode) -> CommandResult {
        if self.lun(lun).is_some() {
            tracing::warn!(
                initiator = %nexus.initiator,
                lun,
                opcode = format!("{:02x}h", op.0),
                "refused: the LUN's allow list does not name this initiator"
            );
        }
        CommandResult::check_condition(&Sense::illegal_request(Asc::LOGICAL_UNIT_NOT_SUPPORTED))
    }

    fn to_device(
        &self,
        nexus: &Nexus,
        device: Arc<dyn ScsiDevice>,
        command: &Command<'_>,
        data_out: &[u8],
        buf: &mut [u8],
        abort: &Abort,
    ) -> (CommandResult, usize) {
        let data_in_len = buf.len();
        match &command.kind {
            Kind::ExtendedCopy(cdb) => {
                let run = |c: &_| {
                    self.copy
                        .extended_copy(nexus, Some(device.clone()), c, data_out, abort)
                };
                return placed(answered(cdb, run), buf);
            }
            Kind::ReceiveCopyResults(cdb) => {
                let run = |c: &_| self.copy.receive_copy_results(nexus, c);
                return placed(answered(cdb, run), buf);
            }
            Kind::ReportSupportedOperationCodes(cdb) => {
                if let Some(table) = device.supported_commands() {
                    let run = |c: &_| report_supported_operation_codes(c, table);
                    return placed(answered(cdb, run), buf);
                }
            }
            Kind::Inquiry(Ok(inq))
                if inq.evpd && inq.page_code == inquiry::page::SUPPORTED_VPD_PAGES =>
            {
                return placed(self.supported_vpd_pages(&device, inq, data_in_len), buf);
            }
            _ => {}
        }
        let reading = data_out.is_empty() && data_in_len > 0;
        let direction = if !data_out.is_empty() {
            DataDirection::ToDevice(data_out)
        } else if reading {
            DataDirection::FromDevice(&mut *buf)
        } else {
            DataDirection::None
        };
        let timer = self
            .metrics
            .as_ref()
            .map(|m| DeviceTimer::start(m, device.name()));
        // MODE PARAMETERS CHANGED from this nexus's own MODE SELECT is for the others.
        let since = (command.kind == Kind::ModeSelect)
            .then(|| device.unit_attentions().map(|l| l.latest()))
            .flatten();
        let executed = device.execute(command.cdb, direction);
        drop(timer);
        if let (Some(log), Some(since)) = (device.unit_attentions(), since) {
            log.claim(since, Asc::MODE_PARAMETERS_CHANGED, nexus);
        }
        let completion = match executed {
            Ok(c) => c,
            Err(_) => {
                let sense = Sense::new(
                    SenseKey::HARDWARE_ERROR,
                    Asc::LOGICAL_UNIT_COMMUNICATION_FAILURE,
                );
                return (CommandResult::check_condition(&sense), 0);
            }
        };
        let n = if reading {
            data_in_len.saturating_sub(completion.residual)
        } else {
            0
        };
        if let Kind::Inquiry(Ok(inq)) = &command.kind {
            if !inq.evpd && completion.status == Status::GOOD {
                // 3PC: every LUN is a copy manager, whatever the device says.
                if let Some(b5) = buf.get_mut(..n).and_then(|d| d.get_mut(5)) {
                    *b5 |= 0x08;
                }
            } else if inq.evpd
                && inq.page_code == inquiry::page::THIRD_PARTY_COPY
                && completion.status == Status::CHECK_CONDITION
            {
                let pdt = self.peripheral_device_type(&device);
                let mut page = third_party_copy_vpd(pdt, &self.limits);
                page.truncate(usize::from(inq.allocation_length));
                return placed(CommandResult::good(page), buf);
            }
        }
        let result = CommandResult {
            status: completion.status,
            sense: completion.sense,
            data_in: Vec::new(),
            residual: if data_out.is_empty() {
                0
            } else {
                completion.residual
            },
            overflow: completion.overflow,
        };
        (result, n)
    }

    /// VPD 00h: the device's list, plus 8Fh when the device does not list it (this
    /// dispatcher then serves 8Fh itself), kept in ascending order (SPC-3 7.6.12).
    fn supported_vpd_pages(
        &self,
        device: &Arc<dyn ScsiDevice>,
        inq: &InquiryCdb,
        data_in_len: usize,
    ) -> CommandResult {
        let mut buf = vec![0u8; 4 + 255];
        let full = InquiryCdb {
            allocation_length: buf.len() as u16,
            ..*inq
        }
        .encode();
        let completion = match device.execute(&full, DataDirection::FromDevice(&mut buf)) {
            Ok(c) => c,
            Err(_) => {
                return CommandResult::check_condition(&Sense::new(
                    SenseKey::HARDWARE_ERROR,
                    Asc::LOGICAL_UNIT_COMMUNICATION_FAILURE,
                ))
            }
        };
        if completion.status == Status::GOOD {
            buf.truncate(buf.len().saturating_sub(completion.residual));
        } else {
            // A device without VPD pages: it has 00h and 8Fh now.
            let pdt = self.peripheral_device_type(device);
            buf = vec![pdt.0, 0, 0, 1, inquiry::page::SUPPORTED_VPD_PAGES];
        }
        let listed = buf
            .get(2..4)
            .map_or(0, |l| usize::from(u16::from_be_bytes([l[0], l[1]])));
        let mut pages: Vec<u8> = buf.get(4..).unwrap_or_default().to_vec();
        pages.truncate(listed);
        if !pages.contains(&inquiry::page::THIRD_PARTY_COPY) {
            pages.push(inquiry::page::THIRD_PARTY_COPY);
            pages.sort_unstable();
        }
        let mut out = buf.get(..2).unwrap_or(&[0, 0]).to_vec();
        out.put_u16(u16::try_from(pages.len()).unwrap_or(u16::MAX));
        out.extend_from_slice(&pages);
        out.truncate(usize::from(inq.allocation_length).min(data_in_len));
        CommandResult::good(out)
    }

    /// The device's PDT, from its standard INQUIRY data.
    fn peripheral_device_type(&self, device: &Arc<dyn ScsiDevice>) -> PeripheralDeviceType {
        let mut buf = [0u8; 36];
        let cdb = InquiryCdb {
            evpd: false,
            page_code: 0,
            allocation_length: 36,
        }
        .encode();
        match device.execute(&cdb, DataDirection::FromDevice(&mut buf)) {
            Ok(c) if c.is_good() => PeripheralDeviceType(buf[0] & 0x1f),
            _ => PeripheralDeviceType::UNKNOWN,
        }
    }

    /// REPORT LUNS (SPC-3 6.21), and it clears 3F/0E for the nexus on the addressed LUN.
    fn report_luns(
        &self,
        nexus: &Nexus,
        lun: u64,
        cdb: &Result<ReportLunsCdb, Sense>,
    ) -> CommandResult {
        let cdb = match cdb {
            Ok(cdb) => cdb,
            Err(sense) => return CommandResult::check_condition(sense),
        };
        // SELECT REPORT 01h: only well-known LUNs, of which there are none. The LUNs
        // masked from this nexus are left out.
        let listed: Vec<u64> = if cdb.select_report == 1 {
            Vec::new()
        } else {
            self.visible_luns(nexus)
        };
        let mut out = report_luns_data(&listed);
        if self.has_lun(nexus, lun) {
            let mut a = self.attention();
            let epoch = a.luns_epoch;
            if let Some(seen) = a.seen.get_mut(nexus).and_then(|m| m.get_mut(&lun)) {
                seen.luns = epoch;
            }
        }
        out.truncate(usize::try_from(cdb.allocation_length).unwrap_or(usize::MAX));
        CommandResult::good(out)
    }

    /// The pending unit attention for (nexus, LUN), cleared unless `exempt` (which only
    /// peeks — and is never blocked).
    fn take_unit_attention(
        &self,
        nexus: &Nexus,
        lun: u64,
        exempt: bool,
        device: &Arc<dyn ScsiDevice>,
    ) -> Option<Asc> {
        if exempt {
            return None;
        }
        let log = device.unit_attentions();
        let latest = log.map_or(0, |l| l.latest());
        let mut a = self.attention();
        let reset = usize::try_from(lun)
            .ok()
            .and_then(|i| a.reset_epoch.get(i).copied())
            .unwrap_or(0);
        let luns = a.luns_epoch;
        let per_lun = a.seen.entry(nexus.clone()).or_default();
        match per_lun.get_mut(&lun) {
            None => {
                let device = latest;
                per_lun.insert(
                    lun,
                    Seen {
                        reset,
                        luns,
                        device,
                    },
                );
                Some(Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED)
            }
            Some(seen) if seen.reset != reset => {
                // A reset supersedes a LUN data change and the device's own conditions:
                // the initiator rescans anyway.
                *seen = Seen {
                    reset,
                    luns,
                    device: latest,
                };
                Some(Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED)
            }
            Some(seen) if seen.luns != luns => {
                seen.luns = luns;
                Some(Asc::REPORTED_LUNS_DATA_HAS_CHANGED)
            }
            Some(seen) => {
                let (n, asc) = log?.after_for(seen.device, nexus)?;
                seen.device = n;
                Some(asc)
            }
        }
    }

    fn lun(&self, lun: u64) -> Option<Lun> {
        let luns = self.luns.read().unwrap_or_else(PoisonError::into_inner);
        usize::try_from(lun).ok().and_then(|i| luns.get(i)).cloned()
    }

    /// The device of `lun`, if it exists for `nexus` (the one masking decision).
    fn visible(&self, nexus: &Nexus, lun: u64) -> Option<Arc<dyn ScsiDevice>> {
        self.lun(lun)
            .filter(|l| access::permits(&l.allow, &nexus.initiator))
            .map(|l| l.device)
    }

    /// The LUN numbers `nexus` may see, ascending.
    fn visible_luns(&self, nexus: &Nexus) -> Vec<u64> {
        let luns = self.luns.read().unwrap_or_else(PoisonError::into_inner);
        (0..luns.len() as u64)
            .zip(luns.iter())
            .filter(|(_, l)| access::permits(&l.allow, &nexus.initiator))
            .map(|(n, _)| n)
            .collect()
    }

    fn attention(&self) -> MutexGuard<'_, Attention> {
        self.attention
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// EXTENDED COPY and RECEIVE COPY RESULTS by initiator, and every CHECK CONDITION by sense.
fn count(m: &Metrics, nexus: &Nexus, kind: Option<&Kind>, result: &CommandResult) {
    let command = match kind {
        Some(Kind::ExtendedCopy(_)) => Some("extended_copy"),
        Some(Kind::ReceiveCopyResults(_)) => Some("receive_copy_results"),
        _ => None,
    };
    if let Some(command) = command {
        m.third_party_copy_commands
            .get_or_create(&vec![
                ("initiator", Metrics::label(&nexus.initiator)),
                ("command", command.into()),
            ])
            .inc();
    }
    if result.status == Status::CHECK_CONDITION {
        let sense = Sense::decode(&result.sense).map_or_else(
            |_| "undecodable".into(),
            |s| crate::scsi::dump::sense_summary(&s),
        );
        m.check_conditions
            .get_or_create(&vec![("sense", sense)])
            .inc();
    }
}

/// A device command in flight: its device's gauge up while it runs, its time observed.
struct DeviceTimer<'a> {
    metrics: &'a Metrics,
    labels: crate::metrics::Labels,
    started: std::time::Instant,
}

impl<'a> DeviceTimer<'a> {
    fn start(metrics: &'a Metrics, device: &str) -> Self {
        let labels = vec![("device", Metrics::label(device))];
        metrics.device_in_flight.get_or_create(&labels).inc();
        Self {
            metrics,
            labels,
            started: std::time::Instant::now(),
        }
    }
}

impl Drop for DeviceTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .device_in_flight
            .get_or_create(&self.labels)
            .dec();
        self.metrics
            .device_seconds
            .get_or_create(&self.labels)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// A command answered above the device: `run` with its decoded CDB, or the sense its CDB
/// decoded to.
fn answered<T>(cdb: &Result<T, Sense>, run: impl FnOnce(&T) -> CommandResult) -> CommandResult {
    match cdb {
        Ok(cdb) => run(cdb),
        Err(sense) => CommandResult::check_condition(sense),
    }
}

/// Moves a result's own data-in into `buf` (what fits: the initiator accepts no more).
fn placed(mut result: CommandResult, buf: &mut [u8]) -> (CommandResult, usize) {
    let n = result.data_in.len().min(buf.len());
    if let (Some(dst), Some(src)) = (buf.get_mut(..n), result.data_in.get(..n)) {
        dst.copy_from_slice(src);
    }
    result.data_in = Vec::new();
    (result, n)
}

/// The VPD 8Fh (Third-party Copy) page for a LUN whose device does not serve it: this
/// copy manager's commands, limits and descriptor types (SPC-4 7.8.17).
/// REPORT SUPPORTED OPERATION CODES for a device that lists its own commands: those plus the
/// ones the dispatcher answers on every LUN (a copy manager must list EXTENDED COPY and
/// RECEIVE COPY RESULTS: sg_opcodes and initiators look for them there).
fn report_supported_operation_codes(
    cdb: &ReportOpcodesCdb,
    table: &[sbc::CommandUsage],
) -> CommandResult {
    let all = third_party_copy::with_copy_manager_commands(table);
    match cdb.response(&all) {
        Ok(mut out) => {
            out.truncate(usize::try_from(cdb.allocation_length).unwrap_or(usize::MAX));
            CommandResult::good(out)
        }
        Err(e) => CommandResult::check_condition(&Sense::from(e)),
    }
}

pub fn third_party_copy_vpd(pdt: PeripheralDeviceType, limits: &Limits) -> Vec<u8> {
    let body = ThirdPartyCopyPage::from(limits).encode_body();
    inquiry::vpd_page(pdt, inquiry::page::THIRD_PARTY_COPY, &body)
}

/// INQUIRY for a LUN that does not exist (SPC-3 6.4.2: qualifier 011b, PDT 1Fh).
fn no_lun_inquiry(cdb: &Result<InquiryCdb, Sense>) -> CommandResult {
    let inq = match cdb {
        Ok(c) => c,
        Err(sense) => return CommandResult::check_condition(sense),
    };
    let mut out = if inq.evpd {
        vec![NO_LUN_PERIPHERAL, inq.page_code, 0, 0]
    } else {
        let mut v = vec![0u8; 36];
        v[0] = NO_LUN_PERIPHERAL;
        v[2] = inquiry::VERSION_SPC3;
        v[3] = 0x02;
        v[4] = 31;
        v
    };
    out.truncate(usize::from(inq.allocation_length));
    CommandResult::good(out)
}

#[cfg(test)]
mod tests;
