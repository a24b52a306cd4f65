//! The library as a logical unit: an SMC-3 medium changer (peripheral device type 08h)
//! answering what mtx, the Linux ch driver, Bacula's mtx-changer and backup applications
//! send — INQUIRY (VPD 00h, 80h, 83h), TEST UNIT READY, REQUEST SENSE, MODE SENSE/SELECT
//! (6/10) with pages 1Dh/1Eh/1Fh, READ ELEMENT STATUS, MOVE MEDIUM, EXCHANGE MEDIUM,
//! INITIALIZE ELEMENT STATUS (and WITH RANGE), POSITION TO ELEMENT, PREVENT ALLOW MEDIUM
//! REMOVAL and OPEN/CLOSE IMPORT/EXPORT ELEMENT. REPORT LUNS and REPORT SUPPORTED
//! OPERATION CODES are the dispatcher's (from [`CHANGER_COMMANDS`]).
//!
//! PREVENT ALLOW MEDIUM REMOVAL is one state for the changer, the last initiator's (SPC-3
//! keeps one per nexus; a library with one operator panel has one door).

use super::Library;
use crate::device::attention::AttentionLog;
use crate::device::{Completion, DataDirection, DeviceError, ScsiDevice};
use crate::scsi::inquiry::{self, InquiryCdb, StandardInquiry};
use crate::scsi::sbc::CommandUsage;
use crate::scsi::smc::{self, opcode, ImportExportAction};
use crate::scsi::ssc::{self, ModeSelect, PageControl};
use crate::scsi::{Asc, DecodeError, Opcode, PeripheralDeviceType, Sense, SenseKeySpecific};

/// INQUIRY vendor, product and revision of the changer.
pub const VENDOR: &str = "XCOPYD";
pub const PRODUCT: &str = "VIRTUAL LIBRARY";
pub const REVISION: &str = "0001";

const fn usage(opcode: u8, usage: &'static [u8]) -> CommandUsage {
    CommandUsage {
        opcode,
        service_action: None,
        usage,
    }
}

/// The commands the changer answers itself, in opcode order, with their CDB usage data.
pub const CHANGER_COMMANDS: &[CommandUsage] = &[
    usage(0x00, &[0x00, 0, 0, 0, 0, 0]),
    usage(0x03, &[0x03, 0x01, 0, 0, 0xff, 0]),
    usage(0x07, &[0x07, 0, 0, 0, 0, 0]),
    usage(0x12, &[0x12, 0x01, 0xff, 0xff, 0xff, 0]),
    usage(0x15, &[0x15, 0x10, 0, 0, 0xff, 0]),
    usage(0x1a, &[0x1a, 0x08, 0xff, 0xff, 0xff, 0]),
    usage(0x1b, &[0x1b, 0, 0xff, 0xff, 0x1f, 0]),
    usage(0x1e, &[0x1e, 0, 0, 0, 0x01, 0]),
    usage(0x2b, &[0x2b, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
    usage(0x37, &[0x37, 0x03, 0xff, 0xff, 0, 0, 0xff, 0xff, 0, 0]),
    usage(0x55, &[0x55, 0x10, 0, 0, 0, 0, 0, 0xff, 0xff, 0]),
    usage(0x5a, &[0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, 0]),
    usage(
        0xa5,
        &[0xa5, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0],
    ),
    usage(
        0xa6,
        &[
            0xa6, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0,
        ],
    ),
    usage(
        0xb8,
        &[
            0xb8, 0x1f, 0xff, 0xff, 0xff, 0xff, 0x03, 0xff, 0xff, 0xff, 0, 0,
        ],
    ),
];

fn check(sense: Sense, residual: usize) -> Completion {
    Completion::check_condition(&sense, residual)
}

fn decode_error(e: DecodeError, residual: usize) -> Completion {
    check(Sense::from(e), residual)
}

fn reply(buf: &mut [u8], data: &[u8], allocation: usize) -> Completion {
    let n = data.len().min(allocation).min(buf.len());
    if let (Some(dst), Some(src)) = (buf.get_mut(..n), data.get(..n)) {
        dst.copy_from_slice(src);
    }
    Completion::good(buf.len() - n)
}

fn data_in<'a>(data: DataDirection<'a>) -> &'a mut [u8] {
    match data {
        DataDirection::FromDevice(b) => b,
        _ => &mut [],
    }
}

fn data_out<'a>(data: DataDirection<'a>) -> &'a [u8] {
    match data {
        DataDirection::ToDevice(b) => b,
        _ => &[],
    }
}

/// An element move refused, logged with its reason, answered with its sense.
fn refused(library: &Library, what: &str, e: &super::elements::MoveError) -> Completion {
    tracing::info!(library = %library.name(), "{what} refused: {e}");
    check(e.sense(), 0)
}

impl Library {
    fn inquiry(&self, cdb: &[u8], buf: &mut [u8]) -> Completion {
        let cdb = match InquiryCdb::decode(cdb) {
            Ok(c) => c,
            Err(e) => return decode_error(e, buf.len()),
        };
        let pdt = PeripheralDeviceType::MEDIUM_CHANGER;
        let data = if !cdb.evpd {
            let mut inq = StandardInquiry::new(pdt, VENDOR, PRODUCT, REVISION);
            inq.removable = true;
            let mut out = Vec::with_capacity(inquiry::STANDARD_INQUIRY_LEN);
            inq.encode(&mut out);
            out
        } else {
            let body = match cdb.page_code {
                inquiry::page::SUPPORTED_VPD_PAGES => vec![
                    inquiry::page::SUPPORTED_VPD_PAGES,
                    inquiry::page::UNIT_SERIAL_NUMBER,
                    inquiry::page::DEVICE_IDENTIFICATION,
                ],
                inquiry::page::UNIT_SERIAL_NUMBER => self.serial().as_bytes().to_vec(),
                inquiry::page::DEVICE_IDENTIFICATION => {
                    inquiry::encode_device_identification(&self.config().designators)
                }
                _ => return check(Sense::invalid_field_in_cdb(2, None), buf.len()),
            };
            inquiry::vpd_page(pdt, cdb.page_code, &body)
        };
        reply(buf, &data, usize::from(cdb.allocation_length))
    }

    fn serial(&self) -> &str {
        self.config().serial.as_deref().unwrap_or(self.name())
    }

    fn request_sense(&self, cdb: &[u8], buf: &mut [u8]) -> Completion {
        match ssc::RequestSense::decode(cdb) {
            Ok(c) => {
                let mut sense =
                    Sense::new(crate::scsi::SenseKey::NO_SENSE, Asc::NO_ADDITIONAL_SENSE);
                sense.descriptor_format = c.descriptor_format;
                reply(buf, &sense.encode(), usize::from(c.allocation_length))
            }
            Err(e) => decode_error(e, buf.len()),
        }
    }

    fn mode_sense(&self, cdb: &[u8], buf: &mut [u8]) -> Completion {
        let cdb = match smc::decode_mode_sense(cdb) {
            Ok(c) => c,
            Err(e) => return decode_error(e, buf.len()),
        };
        if cdb.page_control == PageControl::Saved {
            let sense = Sense::illegal_request(Asc::SAVING_PARAMETERS_NOT_SUPPORTED).with_sks(
                SenseKeySpecific::Field {
                    command: true,
                    bit: Some(7),
                    pointer: 2,
                },
            );
            return check(sense, buf.len());
        }
        let data = smc::mode_sense_data(&cdb, &self.layout().assignment());
        reply(buf, &data, usize::from(cdb.allocation_length))
    }

    fn mode_select(&self, cdb: &[u8], ten: bool, params: &[u8]) -> Completion {
        let decoded = if ten {
            ModeSelect::decode10(cdb)
        } else {
            ModeSelect::decode6(cdb)
        };
        let cdb = match decoded {
            Ok(c) => c,
            Err(e) => return decode_error(e, params.len()),
        };
        let len = usize::from(cdb.parameter_list_length);
        let Some(list) = params.get(..len) else {
            return check(
                Sense::invalid_field_in_cdb(if ten { 7 } else { 4 }, None),
                params.len(),
            );
        };
        match smc::check_mode_select(list, ten, &self.layout().assignment()) {
            Ok(()) => Completion::good(params.len() - len),
            Err(e) => decode_error(e, params.len()),
        }
    }

    fn read_element_status(&self, cdb: &[u8], buf: &mut [u8]) -> Completion {
        let cdb = match smc::ReadElementStatus::decode(cdb) {
            Ok(c) => c,
            Err(e) => return decode_error(e, buf.len()),
        };
        match smc::element_status_data(&cdb, &self.elements()) {
            Ok(data) => reply(buf, &data, cdb.allocation_length as usize),
            Err(sense) => check(sense, buf.len()),
        }
    }

    fn move_command(&self, cdb: &[u8]) -> Completion {
        let m = match smc::MoveMedium::decode(cdb) {
            Ok(m) => m,
            Err(e) => return decode_error(e, 0),
        };
        if m.invert {
            return check(Sense::invalid_field_in_cdb(10, Some(0)), 0);
        }
        match self.move_medium(m.transport, m.source, m.destination) {
            Ok(()) => {
                tracing::info!(library = %self.name(), source = m.source, destination = m.destination, "MOVE MEDIUM");
                Completion::good(0)
            }
            Err(e) => refused(self, "MOVE MEDIUM", &e),
        }
    }

    fn exchange_command(&self, cdb: &[u8]) -> Completion {
        let x = match smc::ExchangeMedium::decode(cdb) {
            Ok(x) => x,
            Err(e) => return decode_error(e, 0),
        };
        if x.invert1 || x.invert2 {
            let bit = if x.invert1 { 0 } else { 1 };
            return check(Sense::invalid_field_in_cdb(10, Some(bit)), 0);
        }
        match self.exchange_medium(
            x.transport,
            x.source,
            x.first_destination,
            x.second_destination,
        ) {
            Ok(()) => Completion::good(0),
            Err(e) => refused(self, "EXCHANGE MEDIUM", &e),
        }
    }

    fn initialize_command(&self, cdb: &[u8]) -> Completion {
        let op = cdb.first().copied().unwrap_or(0);
        if op == opcode::INITIALIZE_ELEMENT_STATUS {
            if let Err(e) = smc::decode_initialize_element_status(cdb) {
                return decode_error(e, 0);
            }
        } else {
            let r = match smc::InitializeElementStatusWithRange::decode(cdb) {
                Ok(r) => r,
                Err(e) => return decode_error(e, 0),
            };
            if r.range && self.layout().element_type(r.starting_address).is_none() {
                return check(smc::invalid_element_address(2), 0);
            }
        }
        match self.initialize() {
            Ok(warnings) => {
                for w in warnings {
                    tracing::warn!(library = %self.name(), "{w}");
                }
                Completion::good(0)
            }
            Err(e) => refused(self, "INITIALIZE ELEMENT STATUS", &e),
        }
    }

    fn position_command(&self, cdb: &[u8]) -> Completion {
        let p = match smc::PositionToElement::decode(cdb) {
            Ok(p) => p,
            Err(e) => return decode_error(e, 0),
        };
        if p.invert {
            return check(Sense::invalid_field_in_cdb(8, Some(0)), 0);
        }
        if p.transport != 0 && p.transport != super::elements::TRANSPORT {
            return check(smc::invalid_element_address(2), 0);
        }
        if self.layout().element_type(p.destination).is_none() {
            return check(smc::invalid_element_address(4), 0);
        }
        Completion::good(0)
    }

    fn open_close_command(&self, cdb: &[u8]) -> Completion {
        let o = match smc::OpenCloseImportExport::decode(cdb) {
            Ok(o) => o,
            Err(e) => return decode_error(e, 0),
        };
        if self.layout().element_type(o.address) != Some(smc::ElementType::ImportExport) {
            return check(smc::invalid_element_address(2), 0);
        }
        if o.action == ImportExportAction::Open && self.prevented() {
            return check(Sense::illegal_request(Asc::MEDIUM_REMOVAL_PREVENTED), 0);
        }
        Completion::good(0)
    }
}

impl ScsiDevice for Library {
    fn execute(&self, cdb: &[u8], data: DataDirection<'_>) -> Result<Completion, DeviceError> {
        let Some(&op) = cdb.first() else {
            return Ok(check(
                Sense::illegal_request(Asc::INVALID_COMMAND_OPERATION_CODE),
                data.len(),
            ));
        };
        let total = data.len();
        Ok(match op {
            0x00 => Completion::good(0),
            0x03 => self.request_sense(cdb, data_in(data)),
            0x12 => self.inquiry(cdb, data_in(data)),
            0x15 => self.mode_select(cdb, false, data_out(data)),
            0x55 => self.mode_select(cdb, true, data_out(data)),
            0x1a | 0x5a => self.mode_sense(cdb, data_in(data)),
            0x1e => match ssc::decode_prevent_allow(cdb) {
                Ok(p) => {
                    self.set_prevent(p);
                    Completion::good(0)
                }
                Err(e) => decode_error(e, 0),
            },
            opcode::READ_ELEMENT_STATUS => self.read_element_status(cdb, data_in(data)),
            opcode::MOVE_MEDIUM => self.move_command(cdb),
            opcode::EXCHANGE_MEDIUM => self.exchange_command(cdb),
            opcode::INITIALIZE_ELEMENT_STATUS | opcode::INITIALIZE_ELEMENT_STATUS_WITH_RANGE => {
                self.initialize_command(cdb)
            }
            opcode::POSITION_TO_ELEMENT => self.position_command(cdb),
            opcode::OPEN_CLOSE_IMPORT_EXPORT_ELEMENT => self.open_close_command(cdb),
            _ => {
                tracing::debug!(library = %self.name(), op = ?Opcode(op), "unsupported command");
                check(
                    Sense::illegal_request(Asc::INVALID_COMMAND_OPERATION_CODE),
                    total,
                )
            }
        })
    }

    fn name(&self) -> &str {
        Library::name(self)
    }

    fn supported_commands(&self) -> Option<&'static [CommandUsage]> {
        Some(CHANGER_COMMANDS)
    }

    fn unit_attentions(&self) -> Option<&AttentionLog> {
        Some(self.attention())
    }
}
