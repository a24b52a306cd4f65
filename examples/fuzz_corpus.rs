//! Writes seed inputs for the cargo-fuzz targets: well-formed encodings of every codec type,
//! so fuzzing starts past the headers. `scripts/fuzz-smoke.sh` runs it; the corpus directory
//! (`fuzz/corpus`, git-ignored) is rebuilt rather than committed.
//!
//! Usage: `cargo run --example fuzz_corpus -- fuzz/corpus`

use std::fs;
use std::path::Path;

use anyhow::Context;
use xcopyd::iscsi::pdu::{Bhs, Digests, Opcode as IscsiOpcode, Pdu};
use xcopyd::iscsi::text::TextKeys;
use xcopyd::scsi::copy_results::transfer_count_units;
use xcopyd::scsi::inquiry::{
    encode_device_identification, page, vpd_page, BlockLimits, InquiryCdb, StandardInquiry,
};
use xcopyd::scsi::sbc::ReadWriteCdb;
use xcopyd::scsi::ssc::{
    self, Locate, ModeSense, ModeState, PageControl, Read6, Space6, SpaceCode,
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
    let parameter_list = parameter_list_seeds()?;
    let tape = tape_image_seeds();
    let ssc = ssc_seeds();
    let sbc = sbc_seeds();
    let iscsi = iscsi_seeds();
    let tcmu = tcmu_seeds();
    let ndmp = ndmp_seeds();
    for (target, seeds) in [
        ("sense", &sense),
        ("receive_copy_results", &rcr),
        ("vpd", &vpd),
        ("round_trip", &all),
        ("parameter_list", &parameter_list),
        ("tape_image", &tape),
        ("ssc_cdb", &ssc),
        ("sbc_cdb", &sbc),
        ("iscsi_pdu", &iscsi),
        ("tcmu_entry", &tcmu),
        ("ndmp_xdr", &ndmp),
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

/// NDMP requests: a selector byte (the index of the message code in
/// `xcopyd::ndmp::fuzz_decode`'s table) and the body.
fn ndmp_seeds() -> Seeds {
    use xcopyd::ndmp::message::{Addr, MoverMode, Pval, Request, TcpAddr};
    let requests = [
        (0u8, "connect-open", Request::ConnectOpen { version: 4 }),
        (
            19,
            "tape-open",
            Request::TapeOpen {
                device: "drive0".into(),
                mode: 1,
            },
        ),
        (
            28,
            "data-start-backup",
            Request::DataStartBackup {
                butype: "image".into(),
                env: vec![Pval::new("FILESYSTEM", "disk0")],
            },
        ),
        (
            44,
            "mover-connect",
            Request::MoverConnect {
                mode: MoverMode::Read.wire(),
                addr: Addr::Tcp(vec![TcpAddr {
                    ip: 0x7f00_0001,
                    port: 10000,
                    env: vec![],
                }]),
            },
        ),
    ];
    requests
        .into_iter()
        .map(|(selector, name, r)| {
            let mut bytes = vec![selector];
            bytes.extend(r.encode().1);
            (name.to_string(), bytes)
        })
        .collect()
}

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
        maximum_compare_and_write_length: 1,
        maximum_unmap_lba_count: 0x10_0000,
        maximum_unmap_block_descriptor_count: 256,
        optimal_unmap_granularity: 8,
        unmap_granularity_alignment: Some(0),
        maximum_write_same_length: 0x1_0000,
        ..BlockLimits::default()
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

/// The 13-byte prefix the `parameter_list` target reads its limits from (see
/// fuzz/fuzz_targets/parameter_list.rs): the same limits, saturated to the prefix's widths;
/// the last byte selects the configured descriptor types.
fn limits_prefix(l: &Limits) -> Vec<u8> {
    let be24 = |n: u32| n.min(0xff_ffff).to_be_bytes()[1..].to_vec();
    let mut p = vec![u8::try_from(l.max_cscd_descriptors).unwrap_or(u8::MAX)];
    p.extend_from_slice(&l.max_segment_descriptors.to_be_bytes());
    p.extend(be24(l.max_descriptor_list_length));
    p.extend(be24(l.max_inline_data_length));
    p.extend(be24(l.max_stream_device_transfer_size >> 8));
    p.push(0);
    p
}

/// Every golden vector in xcopy-descriptors/, behind the limits it is evaluated with.
fn parameter_list_seeds() -> anyhow::Result<Seeds> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("xcopy-descriptors");
    let mut seeds = Seeds::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("{}", dir.display()))? {
        let path = entry?.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".bin"))
        else {
            continue;
        };
        let limits = match fs::read_to_string(dir.join(format!("{name}.limits.toml"))) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("{name}.limits.toml"))?,
            Err(_) => Limits::default(),
        };
        let mut seed = limits_prefix(&limits);
        seed.extend(fs::read(&path).with_context(|| format!("{}", path.display()))?);
        seeds.push((name.to_string(), seed));
    }
    seeds.sort();
    Ok(seeds)
}

/// A SIMH record: length, data, pad to even, length.
fn tape_record(out: &mut Vec<u8>, word: u32, data: &[u8]) {
    out.extend_from_slice(&word.to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
    out.extend_from_slice(&word.to_le_bytes());
}

fn tape_image_seeds() -> Seeds {
    let filemark = 0u32.to_le_bytes();
    let mut two_files = Vec::new();
    tape_record(&mut two_files, 512, &[0xa5; 512]);
    tape_record(&mut two_files, 3, b"odd");
    two_files.extend_from_slice(&filemark);
    tape_record(&mut two_files, 80, &[b'H'; 80]);
    two_files.extend_from_slice(&filemark);
    two_files.extend_from_slice(&filemark);

    let mut end_of_medium = two_files.clone();
    end_of_medium.extend_from_slice(&0xffff_ffffu32.to_le_bytes());
    end_of_medium.extend_from_slice(b"junk after EOM");

    let mut gaps = Vec::new();
    gaps.extend_from_slice(&0xffff_fffeu32.to_le_bytes()); // erase gap
    tape_record(&mut gaps, 4, b"data");
    gaps.extend_from_slice(&0xfffe_ffffu32.to_le_bytes()[..2]); // half gap
    gaps.extend_from_slice(&filemark);

    let mut bad = Vec::new();
    tape_record(&mut bad, 0x8000_0010, &[0; 16]); // bad-record flag
    bad.extend_from_slice(&filemark);

    let mut unsupported = filemark.to_vec();
    unsupported.extend_from_slice(&0xf000_0001u32.to_le_bytes());
    unsupported.extend_from_slice(&[1, 2, 3]);

    let mut partial_length = two_files.clone();
    partial_length.extend_from_slice(&[0x10, 0]);
    let mut past_end = two_files.clone();
    past_end.extend_from_slice(&512u32.to_le_bytes());
    past_end.extend_from_slice(&[0; 100]);
    let mut mismatch = Vec::new();
    tape_record(&mut mismatch, 8, b"12345678");
    let n = mismatch.len();
    mismatch[n - 4] = 9;

    vec![
        ("empty".into(), Vec::new()),
        ("two-files".into(), two_files),
        ("end-of-medium".into(), end_of_medium),
        ("gaps".into(), gaps),
        ("bad-record".into(), bad),
        ("unsupported-marker".into(), unsupported),
        ("partial-length".into(), partial_length),
        ("record-past-end".into(), past_end),
        ("length-mismatch".into(), mismatch),
    ]
}

/// Tape CDBs as the Linux st driver and the copy engine send them, and MODE SELECT
/// parameter lists (behind the target's one selector byte) as MODE SENSE returns them.
fn ssc_seeds() -> Seeds {
    let mut seeds: Seeds = [
        (
            "read6-variable",
            Read6 {
                fixed: false,
                sili: true,
                transfer_length: 0x10000,
            }
            .encode()
            .to_vec(),
        ),
        (
            "read6-fixed",
            Read6 {
                fixed: true,
                sili: false,
                transfer_length: 8,
            }
            .encode()
            .to_vec(),
        ),
        ("write6-fixed", vec![0x0a, 0x01, 0, 0, 0x10, 0]),
        ("write-filemarks6", vec![0x10, 0x01, 0, 0, 2, 0]),
        (
            "space6-back-filemark",
            Space6 {
                code: SpaceCode::Filemarks,
                count: -1,
            }
            .encode()
            .to_vec(),
        ),
        ("space6-eod", vec![0x11, 0x03, 0, 0, 0, 0]),
        ("locate10", Locate::encode10(1234).to_vec()),
        (
            "locate16-file",
            vec![0x92, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0],
        ),
        (
            "read-position-long",
            vec![0x34, 0x06, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
        ("read-block-limits", vec![0x05, 0, 0, 0, 0, 0]),
        ("rewind-immed", vec![0x01, 0x01, 0, 0, 0, 0]),
        ("erase6-long", vec![0x19, 0x01, 0, 0, 0, 0]),
        ("load", vec![0x1b, 0, 0, 0, 0x01, 0]),
        ("prevent", vec![0x1e, 0, 0, 0, 0x01, 0]),
        ("request-sense", vec![0x03, 0, 0, 0, 0xfc, 0]),
        ("mode-sense6-all", vec![0x1a, 0, 0x3f, 0, 0xff, 0]),
        (
            "mode-sense10-10h",
            vec![0x5a, 0x08, 0x10, 0, 0, 0, 0, 0x10, 0, 0],
        ),
        ("mode-select6", vec![0x15, 0x10, 0, 0, 12, 0]),
        ("mode-select10", vec![0x55, 0x10, 0, 0, 0, 0, 0, 0, 16, 0]),
    ]
    .into_iter()
    .map(|(name, cdb)| (name.to_string(), cdb))
    .collect();
    let state = ModeState {
        density_code: 0,
        block_length: 512,
        buffered_mode: 1,
        write_protect: false,
    };
    for (ten, sel) in [(false, 0x20u8), (true, 0x21)] {
        for (code, dbd) in [
            (ssc::page::ALL, false),
            (ssc::page::DEVICE_CONFIGURATION, true),
        ] {
            let cdb = ModeSense {
                ten,
                disable_block_descriptors: dbd,
                page_control: PageControl::Current,
                page_code: code,
                subpage_code: 0,
                allocation_length: 0xff,
            };
            let mut seed = vec![sel];
            seed.extend(ssc::mode_sense_data(&cdb, &state, &state));
            let form = if ten { 10 } else { 6 };
            seeds.push((format!("mode-select{form}-data-{code:02x}"), seed));
        }
    }
    seeds
}

/// Disk CDBs: what initiators and the copy engine send.
fn sbc_seeds() -> Seeds {
    [
        ("test-unit-ready", vec![0x00, 0, 0, 0, 0, 0]),
        ("request-sense", vec![0x03, 0x01, 0, 0, 0xfc, 0]),
        ("inquiry-vpd-83", vec![0x12, 0x01, 0x83, 0x01, 0x00, 0]),
        ("read6", vec![0x08, 0x01, 0x02, 0x03, 0x00, 0]),
        ("read10", ReadWriteCdb::read_10(0x1000, 8).to_vec()),
        ("write10", ReadWriteCdb::write_10(0x1000, 8).to_vec()),
        ("read12", vec![0xa8, 0x08, 0, 0, 0x10, 0, 0, 0, 0, 8, 0, 0]),
        ("read16", ReadWriteCdb::read_16(1 << 33, 128).to_vec()),
        ("write16-fua", ReadWriteCdb::write_16(7, 1, true).to_vec()),
        ("verify10-bytchk", vec![0x2f, 0x02, 0, 0, 0, 1, 0, 0, 8, 0]),
        (
            "verify16",
            vec![0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0],
        ),
        (
            "sync-cache10-immed",
            vec![0x35, 0x02, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
        (
            "sync-cache16",
            vec![0x91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
        ("read-capacity10", vec![0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        (
            "read-capacity16",
            vec![0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0],
        ),
        ("mode-sense6-caching", vec![0x1a, 0, 0x08, 0, 0xff, 0]),
        (
            "mode-sense10-all-llbaa",
            vec![0x5a, 0x10, 0x3f, 0, 0, 0, 0, 0x01, 0, 0],
        ),
        (
            "report-opcodes-all",
            vec![0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0],
        ),
        (
            "report-opcodes-one",
            vec![0xa3, 0x0c, 0x01, 0x28, 0, 0, 0, 0, 0x10, 0, 0, 0],
        ),
        (
            "report-opcodes-sa",
            vec![0xa3, 0x0c, 0x02, 0x9e, 0, 0x10, 0, 0, 0x10, 0, 0, 0],
        ),
    ]
    .into_iter()
    .map(|(name, cdb)| (name.to_string(), cdb))
    .collect()
}

/// PDUs of a login, discovery and a command, each behind the target's selector byte (bits
/// 0-1 digests, bits 2-3 the data segment limit, bit 4 CHAP), and bare key lists.
fn iscsi_seeds() -> Seeds {
    let keys = |pairs: &[(&str, &str)]| {
        let mut k = TextKeys::default();
        for (key, value) in pairs {
            k.push(key, *value);
        }
        k.encode()
    };
    let security = keys(&[
        ("InitiatorName", "iqn.1994-05.com.redhat:client"),
        ("TargetName", "iqn.2024-01.org.xcopyd:disk0"),
        ("SessionType", "Normal"),
        ("AuthMethod", "CHAP,None"),
    ]);
    let chap = keys(&[("CHAP_A", "5")]);
    let operational = keys(&[
        ("HeaderDigest", "CRC32C,None"),
        ("DataDigest", "None"),
        ("MaxRecvDataSegmentLength", "262144"),
        ("MaxBurstLength", "1048576"),
        ("FirstBurstLength", "65536"),
        ("ImmediateData", "Yes"),
        ("InitialR2T", "No"),
        ("MaxOutstandingR2T", "1"),
        ("ErrorRecoveryLevel", "0"),
        ("DefaultTime2Wait", "2"),
    ]);
    let discovery = keys(&[
        ("InitiatorName", "iqn.1994-05.com.redhat:client"),
        ("SessionType", "Discovery"),
    ]);
    let send_targets = keys(&[("SendTargets", "All")]);

    let mut login = Bhs::new(IscsiOpcode::LOGIN_REQUEST);
    login
        .set_immediate(true)
        .set_flags(0x81) // T=1, CSG 0, NSG 1
        .set_isid([0x40, 0, 0x01, 0x37, 0, 0]);
    let mut login_operational = login;
    login_operational.set_flags(0x87); // T=1, CSG 1, NSG 3
    let mut text = Bhs::new(IscsiOpcode::TEXT_REQUEST);
    text.set_flags(0x80);
    let mut command = Bhs::new(IscsiOpcode::SCSI_COMMAND);
    command
        .set_flags(0xc1) // F, R, SIMPLE
        .set_lun([0, 1, 0, 0, 0, 0, 0, 0])
        .set_cdb(&ReadWriteCdb::read_16(0, 8));
    let mut nop = Bhs::new(IscsiOpcode::NOP_OUT);
    nop.set_immediate(true).set_flags(0x80);

    let mut with_ahs = Pdu::new(command);
    with_ahs.ahs = vec![0, 5, 0x02, 0, 0, 0, 0, 0]; // bidirectional read length AHS

    let plain = 0b0_10_00u8; // no digests, 256 KiB limit
    let digests = 0b0_10_11u8;
    let mut seeds = Seeds::new();
    for (name, pdu, sel) in [
        (
            "login-security",
            Pdu::with_data(login, security.clone()),
            plain,
        ),
        (
            "login-chap",
            Pdu::with_data(login, chap.clone()),
            plain | 0x10,
        ),
        (
            "login-operational",
            Pdu::with_data(login_operational, operational.clone()),
            plain,
        ),
        ("login-discovery", Pdu::with_data(login, discovery), plain),
        (
            "text-send-targets",
            Pdu::with_data(text, send_targets),
            digests,
        ),
        ("scsi-command", Pdu::new(command), digests),
        ("scsi-command-ahs", with_ahs, plain),
        (
            "nop-out-ping",
            Pdu::with_data(nop, b"ping".to_vec()),
            digests,
        ),
    ] {
        let mut seed = vec![sel];
        seed.extend(pdu.encode(Digests {
            header: sel & 1 != 0,
            data: sel & 2 != 0,
        }));
        seeds.push((format!("pdu-{name}"), seed));
    }
    for (name, text) in [("security", security), ("operational", operational)] {
        let mut seed = vec![plain];
        seed.extend(text);
        seeds.push((format!("keys-{name}"), seed));
    }
    seeds
}

/// TCMU maps: mailbox (version 2, ring of 1 KiB at 128), a READ(10) entry with two data
/// buffers, a TMR, and a PAD to the ring end followed by a TEST UNIT READY at offset 0.
fn tcmu_seeds() -> Seeds {
    let put = |m: &mut Vec<u8>, at: usize, b: &[u8]| m[at..at + b.len()].copy_from_slice(b);
    let mut m = vec![0u8; 4096];
    put(&mut m, 0, &2u16.to_ne_bytes());
    put(&mut m, 2, &7u16.to_ne_bytes());
    put(&mut m, 4, &128u32.to_ne_bytes());
    put(&mut m, 8, &1024u32.to_ne_bytes());
    // READ(10) at ring offset 0: 112 + 2 iovecs + 10-byte CDB -> 160 bytes.
    let e = 128;
    put(&mut m, e, &(160u32 | 1).to_ne_bytes());
    put(&mut m, e + 4, &1u16.to_ne_bytes());
    put(&mut m, e + 8, &2u32.to_ne_bytes());
    put(&mut m, e + 24, &((e + 144) as u64).to_ne_bytes());
    put(&mut m, e + 48, &2048u64.to_ne_bytes());
    put(&mut m, e + 56, &512u64.to_ne_bytes());
    put(&mut m, e + 64, &3072u64.to_ne_bytes());
    put(&mut m, e + 72, &512u64.to_ne_bytes());
    put(&mut m, e + 144, &[0x28, 0, 0, 0, 0, 0, 0, 0, 2, 0]);
    // TMR ABORT TASK of command 1 at 160: 32 + 2 -> 40 bytes.
    let t = 128 + 160;
    put(&mut m, t, &(40u32 | 2).to_ne_bytes());
    m[t + 8] = 1;
    put(&mut m, t + 12, &1u32.to_ne_bytes());
    put(&mut m, t + 32, &1u16.to_ne_bytes());
    put(&mut m, 12, &200u32.to_ne_bytes());
    let mut wrapped = m.clone();
    // PAD from 200 to the end (824 bytes), then TEST UNIT READY at 0.
    put(&mut wrapped, 64, &200u32.to_ne_bytes());
    put(&mut wrapped, 128 + 200, &824u32.to_ne_bytes());
    put(&mut wrapped, 128, &(120u32 | 1).to_ne_bytes());
    put(&mut wrapped, 128 + 8, &0u32.to_ne_bytes());
    put(&mut wrapped, 128 + 24, &(128u64 + 112).to_ne_bytes());
    put(&mut wrapped, 128 + 112, &[0; 6]);
    put(&mut wrapped, 12, &120u32.to_ne_bytes());
    vec![("map".into(), m), ("wrapped".into(), wrapped)]
}
