//! Writes seed inputs for the cargo-fuzz targets: well-formed encodings of every codec type,
//! so fuzzing starts past the headers. `scripts/fuzz-smoke.sh` runs it; the corpus directory
//! (`fuzz/corpus`, git-ignored) is rebuilt rather than committed.
//!
//! Usage: `cargo run --example fuzz_corpus -- fuzz/corpus`

use std::fs;
use std::path::Path;

use anyhow::Context;
use xcopyd::scsi::copy_results::transfer_count_units;
use xcopyd::scsi::inquiry::{
    encode_device_identification, page, vpd_page, BlockLimits, InquiryCdb, StandardInquiry,
};
use xcopyd::scsi::{
    Asc, CopyManagerStatus, CopyStatus, DecodeError, Designator, FailedSegmentDetails,
    ForwardedSense, ForwardedSource, Limits, OperatingParameters, PeripheralDeviceType, Reason,
    ReceiveCopyResultsCdb, ReceiveData, Sense, SenseKey, SenseKeySpecific, ServiceAction, Status,
    ThirdPartyCopyPage,
};

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .context("usage: fuzz_corpus CORPUS_DIR")?;
    let dir = Path::new(&dir);

    let sense = sense_seeds();
    let rcr = rcr_seeds();
    let vpd = vpd_seeds();
    let all: Vec<_> = sense.iter().chain(&rcr).chain(&vpd).cloned().collect();
    for (target, seeds) in [
        ("sense", &sense),
        ("receive_copy_results", &rcr),
        ("vpd", &vpd),
        ("round_trip", &all),
    ] {
        let target_dir = dir.join(target);
        fs::create_dir_all(&target_dir).with_context(|| format!("{}", target_dir.display()))?;
        for (name, bytes) in seeds {
            let path = target_dir.join(format!("seed-{name}"));
            fs::write(&path, bytes).with_context(|| format!("{}", path.display()))?;
        }
        println!("{}: {} seeds", target_dir.display(), seeds.len());
    }
    Ok(())
}

type Seeds = Vec<(String, Vec<u8>)>;

fn encoded(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    f(&mut out);
    out
}

fn sense_seeds() -> Seeds {
    let device = Sense {
        eom: true,
        ..Sense::new(
            SenseKey::VOLUME_OVERFLOW,
            Asc::END_OF_PARTITION_MEDIUM_DETECTED,
        )
    };
    let mut aborted = Sense::copy_aborted(Asc::THIRD_PARTY_DEVICE_FAILURE, 3)
        .with_information(512)
        .with_sks(SenseKeySpecific::Segment {
            in_segment: true,
            bit: Some(7),
            pointer: 12,
        });
    for source in [
        ForwardedSource::CopySource,
        ForwardedSource::CopyDestination,
    ] {
        aborted.forwarded.push(ForwardedSense {
            source,
            status: Status::CHECK_CONDITION,
            sense: device.encode(),
        });
    }
    let illegal = Sense::from(DecodeError::invalid_bit(17, 4));
    let cdb = Sense::from(DecodeError::new(Reason::InvalidFieldInCdb, 1).with_bit(4));
    let mut seeds = Vec::new();
    for (name, s) in [
        ("copy-aborted", aborted),
        ("device", device),
        ("illegal-request", illegal),
        ("invalid-cdb", cdb),
    ] {
        let descriptor = Sense {
            descriptor_format: true,
            ..s.clone()
        };
        seeds.push((format!("{name}-fixed"), s.encode()));
        seeds.push((format!("{name}-descriptor"), descriptor.encode()));
    }
    seeds
}

fn rcr_seeds() -> Seeds {
    let limits = Limits::default();
    let mut seeds: Seeds = ServiceAction::ALL
        .iter()
        .map(|&service_action| {
            let cdb = ReceiveCopyResultsCdb {
                service_action,
                list_identifier: 1,
                allocation_length: 1024,
                control: 0,
            };
            (
                format!("cdb-{:02x}", service_action.code()),
                cdb.encode().to_vec(),
            )
        })
        .collect();
    let status = CopyStatus {
        held_data_discarded: false,
        status: CopyManagerStatus::Completed,
        segments_processed: 2,
        transfer_count_units: transfer_count_units::KIBIBYTES,
        transfer_count: 4096,
    };
    let held = ReceiveData {
        held: b"held data".to_vec(),
    };
    let failed = FailedSegmentDetails {
        command_status: Status::CHECK_CONDITION.0,
        sense: Sense::copy_aborted(Asc::COPY_TARGET_DEVICE_NOT_REACHABLE, 0).encode(),
    };
    seeds.push(("copy-status".into(), encoded(|o| status.encode(o))));
    seeds.push(("receive-data".into(), encoded(|o| held.encode(o))));
    seeds.push((
        "operating-parameters".into(),
        encoded(|o| OperatingParameters::from(&limits).encode(o)),
    ));
    seeds.push(("failed-segment".into(), encoded(|o| failed.encode(o))));
    seeds.push((
        "failed-segment-none".into(),
        encoded(FailedSegmentDetails::encode_none),
    ));
    seeds
}

fn vpd_seeds() -> Seeds {
    let pdt = PeripheralDeviceType::DIRECT_ACCESS;
    let designators = ["naa.5001405a1b2c3d01", "t10.XCOPYD  disk0"]
        .map(|n| Designator::parse_name(n).expect("valid designator name"));
    let block_limits = BlockLimits {
        optimal_transfer_length_granularity: 8,
        maximum_transfer_length: 0x4000,
        optimal_transfer_length: 0x800,
    };
    let inquiry = StandardInquiry::new(pdt, "XCOPYD", "EMULATED DISK", "0001");
    let inquiry_cdb = InquiryCdb {
        evpd: true,
        page_code: page::THIRD_PARTY_COPY,
        allocation_length: 1024,
    };
    vec![
        ("standard-inquiry".into(), encoded(|o| inquiry.encode(o))),
        ("inquiry-cdb".into(), inquiry_cdb.encode().to_vec()),
        (
            "vpd-83".into(),
            vpd_page(
                pdt,
                page::DEVICE_IDENTIFICATION,
                &encode_device_identification(&designators),
            ),
        ),
        (
            "vpd-b0".into(),
            vpd_page(pdt, page::BLOCK_LIMITS, &block_limits.encode_body()),
        ),
        (
            "vpd-8f".into(),
            vpd_page(
                pdt,
                page::THIRD_PARTY_COPY,
                &ThirdPartyCopyPage::from(&Limits::default()).encode_body(),
            ),
        ),
    ]
}
