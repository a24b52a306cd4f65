//! The command-level types every transport, the dispatcher, the devices and the copy
//! manager share: the I_T nexus a command came over, how a command ended as a transport
//! returns it, and the abort a transport sets on a task (SAM-5's nexus, command and task
//! management, below every front end and the copy manager; they import only the codec).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::scsi::cdb::ExtendedCopyCdb;
use crate::scsi::copy_results::ReceiveCopyResultsCdb;
use crate::scsi::inquiry::InquiryCdb;
use crate::scsi::luns::ReportLunsCdb;
use crate::scsi::sbc::{ReportOpcodesCdb, SA_REPORT_SUPPORTED_OPERATION_CODES};
use crate::scsi::{Asc, Opcode, Sense, Status};

/// The initiator name of commands from the local command line (and of the inventory's
/// `allow` entry that admits them).
pub const LOCAL_INITIATOR: &str = "local";

/// An I_T nexus: who sent a command, and over which session. RECEIVE COPY RESULTS list
/// identifiers are scoped to it; the inventory's `allow` lists match `initiator`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Nexus {
    /// The initiator port name (iSCSI initiator name, FC WWPN text, or "local" for the CLI).
    pub initiator: String,
    /// Distinguishes sessions of the same initiator (iSCSI ISID + TSIH).
    pub session: u64,
}

impl Nexus {
    /// The nexus of the local command line.
    pub fn local() -> Self {
        Self {
            initiator: LOCAL_INITIATOR.into(),
            session: 0,
        }
    }

    /// The ISID of an iSCSI nexus (an initiator named `iqn.…`, `eui.…` or `naa.…`): the top
    /// 48 bits of `session`. With the initiator name it is the initiator port (the iSCSI
    /// TransportID `NAME,i,0xISID`), which persistent reservations are held by; the TSIH
    /// below it changes when a session is reinstated, the port does not. `None` for other
    /// transports, whose initiator name is the port.
    pub fn isid(&self) -> Option<[u8; 6]> {
        let prefix = self.initiator.get(..4)?.to_ascii_lowercase();
        if !matches!(prefix.as_str(), "iqn." | "eui." | "naa.") {
            return None;
        }
        let [a, b, c, d, e, f, _, _] = self.session.to_be_bytes();
        Some([a, b, c, d, e, f])
    }
}

/// One command as the dispatcher decodes it, once, for every layer above the device: its
/// operation code, and the typed CDB of each command those layers act on. The reservation
/// screens, the copy manager and the metrics take it as it is; a device decodes its own
/// command set from `cdb`, as a SCSI device does.
#[derive(Clone, Debug)]
pub struct Command<'a> {
    /// The CDB as it arrived.
    pub cdb: &'a [u8],
    pub op: Opcode,
    pub kind: Kind,
}

/// The commands answered above the device, decoded; a CDB whose fields do not decode
/// keeps its sense, for the layer that answers the command to return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    ReportLuns(Result<ReportLunsCdb, Sense>),
    Inquiry(Result<InquiryCdb, Sense>),
    RequestSense,
    ExtendedCopy(Result<ExtendedCopyCdb, Sense>),
    ReceiveCopyResults(Result<ReceiveCopyResultsCdb, Sense>),
    /// MAINTENANCE IN, REPORT SUPPORTED OPERATION CODES.
    ReportSupportedOperationCodes(Result<ReportOpcodesCdb, Sense>),
    /// MODE SELECT(6) or (10).
    ModeSelect,
    /// Anything else: the device's alone.
    Device,
}

impl<'a> Command<'a> {
    /// Decodes `cdb`; an empty one is INVALID COMMAND OPERATION CODE.
    pub fn decode(cdb: &'a [u8]) -> Result<Self, Sense> {
        let op = Opcode(
            *cdb.first()
                .ok_or_else(|| Sense::illegal_request(Asc::INVALID_COMMAND_OPERATION_CODE))?,
        );
        let kind = match op {
            Opcode::REPORT_LUNS => {
                Kind::ReportLuns(ReportLunsCdb::decode(cdb).map_err(Sense::from))
            }
            Opcode::INQUIRY => Kind::Inquiry(InquiryCdb::decode(cdb).map_err(Sense::from)),
            Opcode::REQUEST_SENSE => Kind::RequestSense,
            Opcode::EXTENDED_COPY => {
                Kind::ExtendedCopy(ExtendedCopyCdb::decode(cdb).map_err(Sense::from))
            }
            Opcode::RECEIVE_COPY_RESULTS => {
                Kind::ReceiveCopyResults(ReceiveCopyResultsCdb::decode(cdb).map_err(Sense::from))
            }
            Opcode::MAINTENANCE_IN
                if cdb.get(1).map(|b| b & 0x1f) == Some(SA_REPORT_SUPPORTED_OPERATION_CODES) =>
            {
                Kind::ReportSupportedOperationCodes(
                    ReportOpcodesCdb::decode(cdb).map_err(Sense::from),
                )
            }
            Opcode::MODE_SELECT_6 | Opcode::MODE_SELECT_10 => Kind::ModeSelect,
            _ => Kind::Device,
        };
        Ok(Self { cdb, op, kind })
    }
}

/// How a command ended, as a transport returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandResult {
    pub status: Status,
    /// Sense bytes (CHECK CONDITION only).
    pub sense: Vec<u8>,
    /// Data-In bytes (RECEIVE COPY RESULTS).
    pub data_in: Vec<u8>,
    /// Data-out bytes the command did not consume (the device's residual). For data-in,
    /// what `data_in` lacks of the expected length says it.
    pub residual: usize,
    /// Bytes the CDB asked to transfer beyond the expected length (the device's
    /// overflow); the transport reports it as residual overflow (RFC 7143 11.4.5).
    pub overflow: usize,
}

impl CommandResult {
    pub fn good(data_in: Vec<u8>) -> Self {
        Self {
            status: Status::GOOD,
            sense: Vec::new(),
            data_in,
            residual: 0,
            overflow: 0,
        }
    }

    pub fn check_condition(sense: &Sense) -> Self {
        Self {
            status: Status::CHECK_CONDITION,
            sense: sense.encode(),
            data_in: Vec::new(),
            residual: 0,
            overflow: 0,
        }
    }
}

/// Set by a transport when the task running an EXTENDED COPY is aborted (ABORT TASK, ABORT
/// TASK SET, LUN RESET, TARGET WARM RESET, session loss, shutdown).
#[derive(Clone, Debug, Default)]
pub struct Abort {
    own: Arc<AtomicBool>,
    /// The task's abort, for one made by [`Abort::child`].
    parent: Option<Arc<AtomicBool>>,
}

impl Abort {
    pub fn new() -> Self {
        Self::default()
    }

    /// An abort that also fires when this one does, but whose own firing leaves this one
    /// alone: an operator's abort of a copy stops it (COPY ABORTED, answered), while the
    /// task itself was not aborted (an aborted task gets no answer of its own).
    pub fn child(&self) -> Self {
        Self {
            own: Arc::default(),
            parent: Some(self.own.clone()),
        }
    }

    pub fn abort(&self) {
        self.own.store(true, Ordering::Release);
    }

    pub fn is_aborted(&self) -> bool {
        self.own.load(Ordering::Acquire)
            || self
                .parent
                .as_ref()
                .is_some_and(|p| p.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::{Abort, Command, Kind};
    use crate::scsi::{Asc, Opcode, Sense};

    fn kind(cdb: &[u8]) -> Kind {
        Command::decode(cdb).unwrap().kind
    }

    #[test]
    fn a_cdb_is_decoded_once_into_the_kind_the_layers_above_the_device_act_on() {
        let mut xcopy = [0u8; 16];
        xcopy[0] = 0x83;
        xcopy[13] = 0x20;
        let Kind::ExtendedCopy(Ok(c)) = kind(&xcopy) else {
            panic!("{:?}", kind(&xcopy));
        };
        assert_eq!(c.parameter_list_length, 0x20);
        // LID4's service action: the sense the copy manager's answer carries.
        xcopy[1] = 0x01;
        let Kind::ExtendedCopy(Err(sense)) = kind(&xcopy) else {
            panic!("{:?}", kind(&xcopy));
        };
        assert_eq!(sense, Sense::invalid_field_in_cdb(1, Some(4)));
        let mut rcr = [0u8; 16];
        rcr[0] = 0x84;
        rcr[2] = 7;
        assert!(matches!(kind(&rcr), Kind::ReceiveCopyResults(Ok(c)) if c.list_identifier == 7));
        let inquiry = [0x12, 0x01, 0x8f, 0, 0xff, 0];
        assert!(matches!(kind(&inquiry), Kind::Inquiry(Ok(c)) if c.evpd && c.page_code == 0x8f));
        let luns = [0xa0, 0, 2, 0, 0, 0, 0, 0, 0, 16, 0, 0];
        assert!(matches!(kind(&luns), Kind::ReportLuns(Ok(c)) if c.select_report == 2));
        let rsoc = [0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0];
        assert!(matches!(
            kind(&rsoc),
            Kind::ReportSupportedOperationCodes(Ok(_))
        ));
        // MAINTENANCE IN, REPORT TARGET PORT GROUPS: the device's.
        assert_eq!(
            kind(&[0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]),
            Kind::Device
        );
        assert_eq!(kind(&[0x03, 0, 0, 0, 18, 0]), Kind::RequestSense);
        assert_eq!(kind(&[0x15, 0x10, 0, 0, 0, 0]), Kind::ModeSelect);
        assert_eq!(
            kind(&[0x55, 0x10, 0, 0, 0, 0, 0, 0, 0, 0]),
            Kind::ModeSelect
        );
        let read = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        let c = Command::decode(&read).unwrap();
        assert_eq!(
            (c.op, c.kind, c.cdb),
            (Opcode::READ_10, Kind::Device, &read[..])
        );
        assert_eq!(
            Command::decode(&[]).unwrap_err(),
            Sense::illegal_request(Asc::INVALID_COMMAND_OPERATION_CODE)
        );
    }

    #[test]
    fn a_child_abort_fires_with_its_parent_but_not_the_reverse() {
        let task = Abort::new();
        let copy = task.child();
        copy.abort();
        assert!(
            copy.is_aborted() && !task.is_aborted(),
            "the operator's abort"
        );
        let task = Abort::new();
        let copy = task.child();
        task.abort();
        assert!(copy.is_aborted(), "the task's abort reaches the copy");
    }
}
