//! A parameter list printed in T10 terms (what `xcopy decode` shows and the golden vectors'
//! `.expected` files hold).

use std::fmt::Write;

use super::codes::PeripheralDeviceType;
use super::parameter_list::{ListIdUsage, ParameterList, Verdict};
use super::segment_descriptor::{self, CscdId, Segment, SegmentDescriptor};
use super::sense::Sense;
use super::target_descriptor::{CscdIdentifier, DeviceParameters};

/// The decoded list, one field per line group, with byte offsets.
pub fn render(list: &ParameterList) -> String {
    let mut s = String::new();
    let cscd_len = list.cscd_offset(list.cscds.len()) - super::parameter_list::HEADER_LENGTH;
    let segment_len = list.segment_offset(list.segments.len()) - list.cscd_offset(list.cscds.len());
    let usage = match list.list_id_usage {
        ListIdUsage::Hold => "00b (hold)",
        ListIdUsage::Discard => "10b (discard)",
        ListIdUsage::NoListId => "11b (no list identifier)",
    };
    let _ = writeln!(s, "EXTENDED COPY (LID1) parameter list");
    let _ = writeln!(s, "  LIST IDENTIFIER: {}", list.list_identifier);
    let _ = writeln!(
        s,
        "  STR: {}  LIST ID USAGE: {usage}  PRIORITY: {}",
        u8::from(list.sequential_striped),
        list.priority
    );
    let _ = writeln!(
        s,
        "  CSCD DESCRIPTOR LIST LENGTH: {cscd_len}  SEGMENT DESCRIPTOR LIST LENGTH: {segment_len}  INLINE DATA LENGTH: {}",
        list.inline_data.len()
    );
    for (i, c) in list.cscds.iter().enumerate() {
        let code = c.identifier.type_code();
        let pdt = PeripheralDeviceType(c.peripheral_device_type);
        let _ = writeln!(
            s,
            "CSCD descriptor {i} (byte {}): {code:02X}h {}",
            list.cscd_offset(i),
            c.identifier.type_name()
        );
        let _ = writeln!(
            s,
            "  NUL: {}  PERIPHERAL DEVICE TYPE: {:02X}h ({})  RELATIVE INITIATOR PORT IDENTIFIER: {}",
            u8::from(c.nul),
            pdt.0,
            pdt.name(),
            c.relative_initiator_port
        );
        let _ = writeln!(s, "  {}", identifier_line(&c.identifier));
        let _ = writeln!(s, "  {}", parameters_line(&c.parameters));
    }
    for (i, seg) in list.segments.iter().enumerate() {
        let code = seg.body.type_code();
        let _ = writeln!(
            s,
            "Segment descriptor {i} (byte {}): {code:02X}h {}",
            list.segment_offset(i),
            segment_descriptor::type_name(code)
        );
        let head = segment_head(seg);
        if !head.is_empty() {
            let _ = writeln!(s, "  {}", head.trim_end());
        }
        let _ = writeln!(s, "  {}", segment_body(&seg.body));
    }
    if !list.inline_data.is_empty() {
        let _ = writeln!(
            s,
            "Inline data ({} bytes): {}",
            list.inline_data.len(),
            hex(&list.inline_data)
        );
    }
    s
}

/// A CSCD descriptor's identifier fields.
fn identifier_line(identifier: &CscdIdentifier) -> String {
    match identifier {
        CscdIdentifier::FcNPortName { lun, n_port_name } => {
            format!("LU IDENTIFIER: {lun:016x}  N_PORT_NAME: {n_port_name:016x}")
        }
        CscdIdentifier::FcNPortId { lun, n_port_id } => {
            format!("LU IDENTIFIER: {lun:016x}  N_PORT_ID: {n_port_id:06x}")
        }
        CscdIdentifier::FcNPortIdWithName { lun, n_port_name, n_port_id } => format!(
            "LU IDENTIFIER: {lun:016x}  N_PORT_NAME: {n_port_name:016x}  N_PORT_ID: {n_port_id:06x}"
        ),
        CscdIdentifier::SpiTl { lun, vendor_specific, target_identifier } => format!(
            "LU IDENTIFIER: {lun:016x}  VENDOR SPECIFIC: {vendor_specific:02x}  TARGET IDENTIFIER: {target_identifier}"
        ),
        CscdIdentifier::Identification { designator: d } => format!(
            "CODE SET: {}  ASSOCIATION: {}  DESIGNATOR TYPE: {} ({})  DESIGNATOR LENGTH: {}  DESIGNATOR: {d}",
            d.code_set,
            d.association,
            d.designator_type,
            d.type_name(),
            d.value.len()
        ),
        CscdIdentifier::Ipv4 { lun, address: [a, b, c2, d], port, protocol } => format!(
            "LU IDENTIFIER: {lun:016x}  IPV4 ADDRESS: {a}.{b}.{c2}.{d}  PORT NUMBER: {port}  INTERNET PROTOCOL NUMBER: {protocol}"
        ),
        CscdIdentifier::Alias { lun, alias } => {
            format!("LU IDENTIFIER: {lun:016x}  ALIAS VALUE: {alias:016x}")
        }
        CscdIdentifier::Rdma { lun, target_port } => {
            format!("LU IDENTIFIER: {lun:016x}  TARGET PORT IDENTIFIER: {}", hex(target_port))
        }
        CscdIdentifier::Ieee1394 { lun, eui64, directory_id } => format!(
            "LU IDENTIFIER: {lun:016x}  EUI-64: {eui64:016x}  DIRECTORY ID: {directory_id:06x}"
        ),
        CscdIdentifier::SasSsp { lun, sas_address } => {
            format!("LU IDENTIFIER: {lun:016x}  SAS ADDRESS: {sas_address:016x}")
        }
        CscdIdentifier::Ipv6 { lun, address, port, protocol } => format!(
            "LU IDENTIFIER: {lun:016x}  IPV6 ADDRESS: {}  PORT NUMBER: {port}  INTERNET PROTOCOL NUMBER: {protocol}",
            hex(address)
        ),
    }
}

/// A CSCD descriptor's device type specific parameters.
fn parameters_line(parameters: &DeviceParameters) -> String {
    match *parameters {
        DeviceParameters::Block { pad, block_length } => {
            format!("PAD: {}  DISK BLOCK LENGTH: {block_length}", u8::from(pad))
        }
        DeviceParameters::Stream {
            pad,
            fixed,
            block_length,
        } => format!(
            "PAD: {}  FIXED: {}  STREAM BLOCK LENGTH: {block_length}",
            u8::from(pad),
            u8::from(fixed)
        ),
        DeviceParameters::Processor { pad } => format!("PAD: {}", u8::from(pad)),
    }
}

/// The CAT, DC and CSCD ID fields of a segment descriptor (those its type has).
fn segment_head(seg: &SegmentDescriptor) -> String {
    let mut head = String::new();
    if seg.body.has_cat() {
        let _ = write!(head, "CAT: {}  ", u8::from(seg.cat));
    }
    if let Segment::BlockToBlock { dc, .. } = seg.body {
        let _ = write!(head, "DC: {}  ", u8::from(dc));
    }
    if let Some(id) = seg.body.source() {
        let _ = write!(head, "SOURCE CSCD ID: {}  ", id_text(id));
    }
    if let Some(id) = seg.body.destination() {
        let _ = write!(head, "DESTINATION CSCD ID: {}  ", id_text(id));
    }
    head
}

/// A segment descriptor's type-specific fields.
fn segment_body(body: &Segment) -> String {
    match body {
        Segment::BlockToStream { stream_transfer_length, blocks, lba, .. }
        | Segment::StreamToBlock { stream_transfer_length, blocks, lba, .. } => format!(
            "STREAM DEVICE TRANSFER LENGTH: {stream_transfer_length}  BLOCK DEVICE NUMBER OF BLOCKS: {blocks}  BLOCK DEVICE LOGICAL BLOCK ADDRESS: {lba}"
        ),
        Segment::BlockToBlock { blocks, source_lba, destination_lba, .. } => format!(
            "BLOCK DEVICE NUMBER OF BLOCKS: {blocks}  SOURCE LBA: {source_lba}  DESTINATION LBA: {destination_lba}"
        ),
        Segment::StreamToStream { source_transfer_length, destination_transfer_length, byte_count, .. } => format!(
            "SOURCE STREAM DEVICE TRANSFER LENGTH: {source_transfer_length}  DESTINATION STREAM DEVICE TRANSFER LENGTH: {destination_transfer_length}  BYTE COUNT: {byte_count}"
        ),
        Segment::InlineToStream { stream_transfer_length, inline_offset, bytes, .. } => format!(
            "STREAM DEVICE TRANSFER LENGTH: {stream_transfer_length}  INLINE DATA OFFSET: {inline_offset}  INLINE DATA NUMBER OF BYTES: {bytes}"
        ),
        Segment::EmbeddedToStream { stream_transfer_length, data, .. } => format!(
            "STREAM DEVICE TRANSFER LENGTH: {stream_transfer_length}  EMBEDDED DATA NUMBER OF BYTES: {}  EMBEDDED DATA: {}",
            data.len(),
            hex(data)
        ),
        Segment::StreamToDiscard { stream_transfer_length, bytes, .. } => format!(
            "STREAM DEVICE TRANSFER LENGTH: {stream_transfer_length}  NUMBER OF BYTES: {bytes}"
        ),
        Segment::VerifyCscd { tur, .. } => format!("TUR: {}", u8::from(*tur)),
        Segment::BlockOffsetToStream { stream_transfer_length, bytes, lba, byte_offset, .. }
        | Segment::StreamToBlockOffset { stream_transfer_length, bytes, lba, byte_offset, .. } => format!(
            "STREAM DEVICE TRANSFER LENGTH: {stream_transfer_length}  NUMBER OF BYTES: {bytes}  BLOCK DEVICE LOGICAL BLOCK ADDRESS: {lba}  BLOCK DEVICE BYTE OFFSET: {byte_offset}"
        ),
        Segment::BlockOffsetToBlockOffset {
            bytes,
            source_lba,
            destination_lba,
            source_byte_offset,
            destination_byte_offset,
            ..
        } => format!(
            "NUMBER OF BYTES: {bytes}  SOURCE LBA: {source_lba}  DESTINATION LBA: {destination_lba}  SOURCE BYTE OFFSET: {source_byte_offset}  DESTINATION BYTE OFFSET: {destination_byte_offset}"
        ),
        Segment::WriteFilemarks { immed, count, .. } => {
            format!("W_IMMED: {}  FILEMARK COUNT: {count}", u8::from(*immed))
        }
        Segment::Space { code, count, .. } => format!("CODE: {code}  COUNT: {count}"),
        Segment::Locate { logical_object_id, .. } => {
            format!("LOGICAL OBJECT IDENTIFIER: {logical_object_id}")
        }
        Segment::TapeImageCopy { count, .. } => format!("COUNT: {count}"),
        Segment::RegisterKey { reservation_key, service_action_reservation_key, .. } => format!(
            "RESERVATION KEY: {reservation_key:016x}  SERVICE ACTION RESERVATION KEY: {service_action_reservation_key:016x}"
        ),
        Segment::ThirdPartyPrSource {
            reservation_key,
            service_action_reservation_key,
            unreg,
            aptpl,
            relative_target_port,
            transport_id,
            ..
        } => format!(
            "RESERVATION KEY: {reservation_key:016x}  SERVICE ACTION RESERVATION KEY: {service_action_reservation_key:016x}  UNREG: {}  APTPL: {}  RELATIVE TARGET PORT IDENTIFIER: {relative_target_port}  TRANSPORTID: {}",
            u8::from(*unreg),
            u8::from(*aptpl),
            hex(transport_id)
        ),
    }
}

/// What `xcopy decode` prints for a verdict.
pub fn render_verdict(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Empty => "empty parameter list: nothing to copy (GOOD)\n".into(),
        Verdict::Accepted(list) => render(list),
        Verdict::Rejected(sense) => render_sense(sense),
        Verdict::WouldAbort {
            list,
            segment,
            sense,
        } => format!(
            "{}Processing would stop at segment descriptor {segment}:\n{}",
            render(list),
            render_sense(sense)
        ),
    }
}

/// Sense on one line for logs and status: "KEY/ASC/ASCQ key name, ASC name" in hex, as
/// sg3_utils users read it ("0a/0d/02 COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE").
pub fn sense_summary(sense: &Sense) -> String {
    format!(
        "{:02x}/{:02x}/{:02x} {}, {}",
        sense.key.0,
        sense.asc.asc(),
        sense.asc.ascq(),
        sense.key.name(),
        sense.asc.describe()
    )
}

/// Sense in the same terms, one field per line.
pub fn render_sense(sense: &Sense) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "CHECK CONDITION");
    let _ = writeln!(s, "  sense key: {}", sense.key);
    let _ = writeln!(
        s,
        "  additional sense: {} {}",
        sense.asc,
        sense.asc.describe()
    );
    if let Some(segment) = sense.segment_number {
        let _ = writeln!(s, "  segment number: {segment}");
    }
    let detail = sense.to_string();
    if let Some((_, rest)) = detail.split_once(", ") {
        for part in rest.split(", ") {
            if !part.starts_with("segment ") || part.starts_with("segment pointer") {
                let _ = writeln!(s, "  {part}");
            }
        }
    }
    s
}

fn id_text(id: CscdId) -> String {
    match id {
        CscdId::NULL_BLOCK => "C000h (null block device)".into(),
        CscdId::NULL_STREAM => "C001h (null stream device)".into(),
        CscdId::COPY_MANAGER => "FFFFh (this copy manager's logical unit)".into(),
        CscdId(n) => n.to_string(),
    }
}

fn hex(bytes: &[u8]) -> String {
    const LIMIT: usize = 64;
    let mut s: String = bytes
        .iter()
        .take(LIMIT)
        .map(|b| format!("{b:02x}"))
        .collect();
    if bytes.len() > LIMIT {
        let _ = write!(s, "… ({} more)", bytes.len() - LIMIT);
    }
    s
}

/// `de ad be ef`: bytes in hex, a space between them.
pub fn hex_spaced(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Asc, SenseKey};

    /// The one-line form logs and status use: KEY/ASC/ASCQ in hex, then the names.
    #[test]
    fn sense_summary_is_key_asc_ascq_and_names() {
        let sense = Sense::new(
            SenseKey::COPY_ABORTED,
            Asc::COPY_TARGET_DEVICE_NOT_REACHABLE,
        );
        assert_eq!(
            sense_summary(&sense),
            "0a/0d/02 COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE"
        );
    }

    /// Up to 64 bytes shown whole; beyond, the first 64 and how many more.
    #[test]
    fn hex_forms() {
        assert_eq!(hex(&[0xde; 64]), "de".repeat(64));
        assert_eq!(hex(&[0xde; 65]), format!("{}… (1 more)", "de".repeat(64)));
        assert_eq!(hex_spaced(&[0xde, 0xad, 0x01]), "de ad 01");
        assert_eq!(hex_spaced(&[]), "");
    }
}
