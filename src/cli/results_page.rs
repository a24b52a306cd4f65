//! RECEIVE COPY RESULTS parameter data (SPC-4 6.18) as `xcopy results` prints it: in T10's
//! field names with codes in hex, like sg_copy_results, and as JSON with the same fields.

use anyhow::Result;
use serde_json::{json, Value};

use crate::scsi::copy_results::{
    CopyManagerStatus, CopyStatus, FailedSegmentDetails, OperatingParameters, ReceiveData,
    ServiceAction,
};
use crate::scsi::dump::render_sense;
use crate::scsi::Sense;

/// One decoded page: its text, its JSON, and the bytes an EXTENDED COPY moved (COPY STATUS).
pub struct Page {
    pub text: String,
    pub json: Value,
    pub bytes: u64,
}

/// Decodes `data` as the parameter data of `sa`.
pub fn decode(sa: ServiceAction, data: &[u8]) -> Result<Page> {
    Ok(match sa {
        ServiceAction::CopyStatus => copy_status(&CopyStatus::decode(data)?),
        ServiceAction::ReceiveData => receive_data(&ReceiveData::decode(data)?),
        ServiceAction::OperatingParameters => {
            operating_parameters(&OperatingParameters::decode(data)?)
        }
        ServiceAction::FailedSegmentDetails => failed_segment(FailedSegmentDetails::decode(data)?),
    })
}

fn status_text(s: CopyManagerStatus) -> &'static str {
    match s {
        CopyManagerStatus::InProgress => "operation in progress",
        CopyManagerStatus::Completed => "completed, no errors",
        CopyManagerStatus::CompletedWithErrors => "completed, with errors",
        CopyManagerStatus::Reserved(_) => "reserved",
    }
}

fn units_text(code: u8) -> &'static str {
    match code {
        0 => "bytes",
        1 => "kibibytes",
        2 => "mebibytes",
        3 => "gibibytes",
        4 => "tebibytes",
        5 => "pebibytes",
        6 => "exbibytes",
        _ => "reserved",
    }
}

fn copy_status(s: &CopyStatus) -> Page {
    let code = s.status.code();
    let text = format!(
        "Receive copy results (copy status):\n    Held data discarded: {}\n    Copy command status: 0x{code:02x} ({})\n    Segments processed: {}\n    Transfer count units: 0x{:02x} ({})\n    Transfer count: {}\n",
        u8::from(s.held_data_discarded),
        status_text(s.status),
        s.segments_processed,
        s.transfer_count_units,
        units_text(s.transfer_count_units),
        s.transfer_count,
    );
    let json = json!({
        "service_action": "copy_status",
        "held_data_discarded": s.held_data_discarded,
        "copy_manager_status": code,
        "copy_manager_status_text": status_text(s.status),
        "segments_processed": s.segments_processed,
        "transfer_count_units": s.transfer_count_units,
        "transfer_count": s.transfer_count,
    });
    Page {
        text,
        json,
        bytes: s.transferred_bytes().unwrap_or(0),
    }
}

fn receive_data(r: &ReceiveData) -> Page {
    let mut text = format!(
        "Receive copy results (receive data):\n    Held data length: {}\n",
        r.held.len()
    );
    for (i, chunk) in r.held.chunks(16).enumerate() {
        text.push_str(&format!("    {:04x}  {}\n", i * 16, hex_spaced(chunk)));
    }
    Page {
        text,
        json: json!({
            "service_action": "receive_data",
            "held_data_length": r.held.len(),
            "held_data": hex::encode(&r.held),
        }),
        bytes: 0,
    }
}

fn operating_parameters(p: &OperatingParameters) -> Page {
    let l = &p.limits;
    let descriptors: Vec<String> = p
        .implemented_descriptors
        .iter()
        .map(|d| format!("0x{d:02x}"))
        .collect();
    let text = format!(
        "Receive copy results (operating parameters):\n    Supports no list identifier (SNLID): {}\n    Maximum target (CSCD) descriptor count: {}\n    Maximum segment descriptor count: {}\n    Maximum descriptor list length: {} bytes\n    Maximum segment length: {} bytes\n    Maximum inline data length: {} bytes\n    Held data limit: {} bytes\n    Maximum stream device transfer size: {} bytes\n    Total concurrent copies: {}\n    Maximum concurrent copies: {}\n    Data segment granularity: {} bytes\n    Inline data granularity: {} bytes\n    Held data granularity: {} bytes\n    Implemented descriptor list: {}\n",
        u8::from(p.snlid),
        l.max_cscd_descriptors,
        l.max_segment_descriptors,
        l.max_descriptor_list_length,
        l.max_segment_length,
        l.max_inline_data_length,
        l.held_data_limit,
        l.max_stream_device_transfer_size,
        l.total_concurrent_copies,
        l.max_concurrent_copies,
        1u64 << l.data_segment_granularity_log2.min(63),
        1u64 << l.inline_data_granularity_log2.min(63),
        1u64 << l.held_data_granularity_log2.min(63),
        descriptors.join(" "),
    );
    let mut json = serde_json::to_value(l).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut json {
        m.insert("service_action".into(), json!("operating_parameters"));
        m.insert("snlid".into(), json!(p.snlid));
        m.insert(
            "implemented_descriptors".into(),
            json!(p.implemented_descriptors),
        );
    }
    Page {
        text,
        json,
        bytes: 0,
    }
}

fn failed_segment(d: Option<FailedSegmentDetails>) -> Page {
    let Some(d) = d else {
        return Page {
            text: "Receive copy results (failed segment details):\n    no failed segment details held\n".into(),
            json: json!({"service_action": "failed_segment_details", "held": false}),
            bytes: 0,
        };
    };
    let mut text = format!(
        "Receive copy results (failed segment details):\n    Copy command status: 0x{:02x}\n",
        d.command_status
    );
    let sense = Sense::decode(&d.sense).ok();
    match &sense {
        Some(s) => text.push_str(&render_sense(s)),
        None => text.push_str(&format!("    Sense data: {}\n", hex_spaced(&d.sense))),
    }
    Page {
        text,
        json: json!({
            "service_action": "failed_segment_details",
            "held": true,
            "command_status": d.command_status,
            "sense": hex::encode(&d.sense),
            "sense_key": sense.as_ref().map(|s| s.key.0),
            "asc": sense.as_ref().map(|s| s.asc.asc()),
            "ascq": sense.as_ref().map(|s| s.asc.ascq()),
        }),
        bytes: 0,
    }
}

pub use crate::scsi::dump::hex_spaced;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_status_in_t10_terms_and_json() {
        let s = CopyStatus {
            held_data_discarded: false,
            status: CopyManagerStatus::Completed,
            segments_processed: 2,
            transfer_count_units: 2,
            transfer_count: 3,
        };
        let p = copy_status(&s);
        assert!(p
            .text
            .contains("Copy command status: 0x01 (completed, no errors)"));
        assert!(p.text.contains("Transfer count units: 0x02 (mebibytes)"));
        assert_eq!(p.json["copy_manager_status"], 1);
        assert_eq!(p.json["transfer_count"], 3);
        assert_eq!(p.bytes, 3 << 20);
    }

    #[test]
    fn every_service_action_decodes_its_own_encoding() {
        let limits = crate::scsi::limits::Limits::default();
        let op = OperatingParameters::from(&limits);
        let mut bytes = Vec::new();
        op.encode(&mut bytes);
        let p = decode(ServiceAction::OperatingParameters, &bytes).unwrap();
        assert_eq!(
            p.json["max_segment_descriptors"],
            limits.max_segment_descriptors
        );
        assert!(p.text.contains("Implemented descriptor list: 0x"));
        let rd = ReceiveData {
            held: vec![1, 2, 3],
        };
        let mut bytes = Vec::new();
        rd.encode(&mut bytes);
        let p = decode(ServiceAction::ReceiveData, &bytes).unwrap();
        assert_eq!(p.json["held_data"], "010203");
        assert!(p.text.contains("0000  01 02 03"));
    }
}
