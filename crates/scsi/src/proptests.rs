//! Property tests for every codec type: `decode(encode(x)) == x` for values that respect each
//! type's documented invariants, and "any bytes decode to `Ok` or `Err`, never a panic, and
//! whatever decodes re-encodes to the same value" ([`super::fuzzing::round_trip`], the hook
//! the `round_trip` fuzz target runs).

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::codes::{Asc, PeripheralDeviceType, SenseKey, Status};
use super::copy_results::{
    CopyManagerStatus, CopyStatus, FailedSegmentDetails, OperatingParameters,
    ReceiveCopyResultsCdb, ReceiveData, ServiceAction,
};
use super::designator::Designator;
use super::fuzzing::{encoded, round_trip};
use super::inquiry::{
    decode_device_identification, encode_device_identification, BlockLimits, InquiryCdb,
    StandardInquiry,
};
use super::limits::Limits;
use super::sense::{ForwardedSense, ForwardedSource, Sense, SenseKeySpecific, MAX_SENSE_LENGTH};
use super::third_party_copy::{
    GeneralCopyOperations, ParameterData, SupportedCommand, ThirdPartyCopyDescriptor,
    ThirdPartyCopyPage,
};

/// The sense-key-specific form `key` defines (SPC-3 4.5.2.4); `Raw` keeps 7 bits, as SKSV
/// is not part of the value.
fn sense_key_specific(key: SenseKey) -> BoxedStrategy<SenseKeySpecific> {
    let bit = option::of(0u8..8);
    match key {
        SenseKey::ILLEGAL_REQUEST => (any::<bool>(), bit, any::<u16>())
            .prop_map(|(command, bit, pointer)| SenseKeySpecific::Field {
                command,
                bit,
                pointer,
            })
            .boxed(),
        SenseKey::COPY_ABORTED => (any::<bool>(), bit, any::<u16>())
            .prop_map(|(in_segment, bit, pointer)| SenseKeySpecific::Segment {
                in_segment,
                bit,
                pointer,
            })
            .boxed(),
        SenseKey::NO_SENSE | SenseKey::NOT_READY => {
            any::<u16>().prop_map(SenseKeySpecific::Progress).boxed()
        }
        SenseKey::RECOVERED_ERROR | SenseKey::MEDIUM_ERROR | SenseKey::HARDWARE_ERROR => {
            any::<u16>().prop_map(SenseKeySpecific::RetryCount).boxed()
        }
        _ => (0u8..0x80, any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c)| SenseKeySpecific::Raw([a, b, c]))
            .boxed(),
    }
}

fn forwarded(source: ForwardedSource, max_len: usize) -> impl Strategy<Value = ForwardedSense> {
    (any::<u8>(), vec(any::<u8>(), 0..=max_len)).prop_map(move |(status, sense)| ForwardedSense {
        source,
        status: Status(status),
        sense,
    })
}

/// Sense that fits its format: fixed format carries 32-bit INFORMATION and COMMAND-SPECIFIC
/// INFORMATION, and for COPY ABORTED always a SEGMENT NUMBER and at most one forwarded area
/// per source (source first); COMMAND-SPECIFIC INFORMATION is 0 with COPY ABORTED, whose
/// segment number takes its place; forwarded sense only with COPY ABORTED; at most 252 bytes.
fn sense() -> impl Strategy<Value = Sense> {
    (any::<bool>(), 0u8..16)
        .prop_flat_map(|(descriptor_format, key)| {
            let key = SenseKey(key);
            let copy_aborted = key == SenseKey::COPY_ABORTED;
            let information = if descriptor_format {
                option::of(any::<u64>()).boxed()
            } else {
                option::of(0..=u64::from(u32::MAX)).boxed()
            };
            let command_specific = match (copy_aborted, descriptor_format) {
                (true, _) => Just(0).boxed(),
                (false, true) => any::<u64>().boxed(),
                (false, false) => (0..=u64::from(u32::MAX)).boxed(),
            };
            let segment_number = match (copy_aborted, descriptor_format) {
                (false, _) => Just(None).boxed(),
                (true, true) => option::of(any::<u16>()).boxed(),
                (true, false) => any::<u16>().prop_map(Some).boxed(),
            };
            // Fixed: 18 + (1 + 116) * 2 = 252. Descriptor: at most 48 bytes of other
            // descriptors, then three forwarded descriptors of 4 + 60 bytes.
            let forwarded = match (copy_aborted, descriptor_format) {
                (false, _) => Just(Vec::new()).boxed(),
                (true, false) => (
                    option::of(forwarded(ForwardedSource::CopySource, 116)),
                    option::of(forwarded(ForwardedSource::CopyDestination, 116)),
                )
                    .prop_map(|(s, d)| s.into_iter().chain(d).collect())
                    .boxed(),
                (true, true) => vec(
                    prop_oneof![
                        forwarded(ForwardedSource::CopySource, 60),
                        forwarded(ForwardedSource::CopyDestination, 60),
                    ],
                    0..=3,
                )
                .boxed(),
            };
            (
                (
                    Just(descriptor_format),
                    Just(key),
                    any::<bool>(),
                    any::<u16>(),
                ),
                (any::<bool>(), any::<bool>(), any::<bool>()),
                (information, command_specific, segment_number),
                option::of(sense_key_specific(key)),
                any::<u8>(),
                forwarded,
            )
        })
        .prop_map(
            |(
                (descriptor_format, key, deferred, asc),
                (filemark, eom, ili),
                (information, command_specific, segment_number),
                sense_key_specific,
                field_replaceable_unit,
                forwarded,
            )| Sense {
                descriptor_format,
                deferred,
                key,
                asc: Asc(asc),
                filemark,
                eom,
                ili,
                information,
                command_specific,
                segment_number,
                sense_key_specific,
                field_replaceable_unit,
                forwarded,
            },
        )
}

fn designator() -> impl Strategy<Value = Designator> {
    (
        0u8..16,
        0u8..16,
        any::<bool>(),
        0u8..4,
        0u8..16,
        vec(any::<u8>(), 0..=255),
    )
        .prop_map(
            |(protocol_identifier, code_set, piv, association, designator_type, value)| {
                Designator {
                    protocol_identifier,
                    code_set,
                    piv,
                    association,
                    designator_type,
                    value,
                }
            },
        )
}

fn standard_inquiry() -> impl Strategy<Value = StandardInquiry> {
    (
        (0u8..8, 0u8..32, any::<bool>(), any::<u8>()),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        (any::<[u8; 8]>(), any::<[u8; 16]>(), any::<[u8; 4]>()),
        any::<[u16; 8]>(),
    )
        .prop_map(
            |(
                (peripheral_qualifier, pdt, removable, version),
                (hisup, third_party_copy, command_queuing),
                (vendor, product, revision),
                version_descriptors,
            )| StandardInquiry {
                peripheral_qualifier,
                peripheral_device_type: PeripheralDeviceType(pdt),
                removable,
                version,
                hisup,
                third_party_copy,
                command_queuing,
                vendor,
                product,
                revision,
                version_descriptors,
            },
        )
}

fn limits() -> impl Strategy<Value = Limits> {
    (
        (any::<u16>(), any::<u16>(), any::<u32>(), any::<u32>()),
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u16>()),
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()),
    )
        .prop_map(|((a, b, c, d), (e, f, g, h), (i, j, k, l))| Limits {
            max_cscd_descriptors: a,
            max_segment_descriptors: b,
            max_descriptor_list_length: c,
            max_segment_length: d,
            max_inline_data_length: e,
            held_data_limit: f,
            max_stream_device_transfer_size: g,
            total_concurrent_copies: h,
            max_concurrent_copies: i,
            data_segment_granularity_log2: j,
            inline_data_granularity_log2: k,
            held_data_granularity_log2: l,
        })
}

fn copy_manager_status() -> impl Strategy<Value = CopyManagerStatus> {
    prop_oneof![
        Just(CopyManagerStatus::InProgress),
        Just(CopyManagerStatus::Completed),
        Just(CopyManagerStatus::CompletedWithErrors),
        (0x03u8..0x80).prop_map(CopyManagerStatus::Reserved),
    ]
}

/// Descriptors whose lists fit their length fields (10 commands of at most 21 bytes < 255).
fn third_party_copy_descriptor() -> impl Strategy<Value = ThirdPartyCopyDescriptor> {
    use ThirdPartyCopyDescriptor as D;
    prop_oneof![
        vec(
            (any::<u8>(), vec(any::<u8>(), 0..20)).prop_map(|(opcode, service_actions)| {
                SupportedCommand {
                    opcode,
                    service_actions,
                }
            }),
            0..10
        )
        .prop_map(D::SupportedCommands),
        (any::<u16>(), any::<u16>(), any::<u32>(), any::<u32>()).prop_map(|(a, b, c, d)| {
            D::ParameterData(ParameterData {
                max_cscd_descriptors: a,
                max_segment_descriptors: b,
                max_descriptor_list_length: c,
                max_inline_data_length: d,
            })
        }),
        vec(any::<u8>(), 0..=255).prop_map(D::SupportedDescriptors),
        vec(any::<u16>(), 0..100).prop_map(D::SupportedCscdIds),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            any::<u8>()
        )
            .prop_map(
                |(a, b, c, d, e)| D::GeneralCopyOperations(GeneralCopyOperations {
                    total_concurrent_copies: a,
                    max_identified_concurrent_copies: b,
                    max_segment_length: c,
                    data_segment_granularity_log2: d,
                    inline_data_granularity_log2: e,
                })
            ),
        any::<u32>().prop_map(|v| D::StreamCopyOperations {
            max_stream_device_transfer_size: v
        }),
        (any::<u32>(), any::<u8>()).prop_map(|(l, g)| D::HeldData {
            held_data_limit: l,
            held_data_granularity_log2: g,
        }),
    ]
}

/// Bytes shaped like a page with a 4-byte AVAILABLE DATA header that is right, or a little
/// off, so the decoders get past the header often.
fn framed_page() -> impl Strategy<Value = Vec<u8>> {
    (vec(any::<u8>(), 0..120), -2i64..=2).prop_map(|(body, skew)| {
        let len = (body.len() as i64 + skew).max(0) as u32;
        let mut out = len.to_be_bytes().to_vec();
        out.extend(body);
        out
    })
}

/// Bytes shaped like an 8Fh page body: a few descriptors with known or random types and
/// lengths that are right or a little off.
fn framed_descriptors() -> impl Strategy<Value = Vec<u8>> {
    let known = prop_oneof![
        Just(0x0001u16),
        Just(0x0004),
        Just(0x0008),
        Just(0x000c),
        Just(0x8001),
        Just(0x9101),
        Just(0xc001),
        any::<u16>(),
    ];
    vec((known, vec(any::<u8>(), 0..40), -1i32..=1), 0..5).prop_map(|descriptors| {
        let mut out = Vec::new();
        for (kind, body, skew) in descriptors {
            out.extend(kind.to_be_bytes());
            out.extend(((body.len() as i32 + skew).max(0) as u16).to_be_bytes());
            out.extend(body);
        }
        out
    })
}

/// Bytes shaped like fixed-format sense: often COPY ABORTED, with forwarded-area offsets in
/// bytes 8 and 9 that point into the buffer, and ADDITIONAL SENSE LENGTH right or random.
fn fixed_sense_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        (
            0x70u8..0x72,
            any::<bool>(),
            prop_oneof![Just(0x0a_u8), any::<u8>()],
        ),
        (any::<bool>(), vec(any::<u8>(), 10..300)),
        (any::<u8>(), any::<u8>()),
    )
        .prop_map(|((b0, valid, b2), (exact_length, mut rest), (o8, o9))| {
            let mut bytes = vec![b0 | if valid { 0x80 } else { 0 }, 0, b2];
            bytes.append(&mut rest);
            let len = bytes.len();
            if exact_length {
                bytes[7] = (len - 8).min(255) as u8;
            }
            // Offsets 0 (absent), 18, or somewhere in the buffer.
            let pick = |o: u8| match o % 4 {
                0 => 0,
                1 => 18,
                _ => (18 + usize::from(o) % len.saturating_sub(17).max(1)).min(255) as u8,
            };
            bytes[8] = pick(o8);
            bytes[9] = if o9 % 5 == 0 { bytes[8] } else { pick(o9) };
            bytes
        })
}

/// Bytes shaped like descriptor-format sense: a header, then descriptors of the types the
/// decoder interprets (and others) with right or random lengths.
fn descriptor_sense_bytes() -> impl Strategy<Value = Vec<u8>> {
    let kind = prop_oneof![
        Just(0x00u8),
        Just(0x01),
        Just(0x02),
        Just(0x03),
        Just(0x04),
        Just(0x0c),
        any::<u8>(),
    ];
    (
        (
            0x72u8..0x74,
            prop_oneof![Just(0x0a_u8), any::<u8>()],
            any::<u16>(),
        ),
        vec((kind, any::<bool>(), vec(any::<u8>(), 0..80)), 0..6),
        any::<bool>(),
    )
        .prop_map(|((b0, key, asc), descriptors, exact_length)| {
            let mut bytes = vec![b0, key];
            bytes.extend(asc.to_be_bytes());
            bytes.extend([0, 0, 0, 0]);
            for (kind, canonical, mut body) in descriptors {
                let len = match kind {
                    0x00 | 0x01 if canonical => 0x0a,
                    0x02 if canonical => 0x06,
                    0x03 | 0x04 if canonical => 0x02,
                    _ => body.len().min(255),
                };
                body.resize(len, 0);
                bytes.extend([kind, len as u8]);
                bytes.extend(body);
            }
            let additional = (bytes.len() - 8).min(255) as u8;
            bytes[7] = if exact_length {
                additional
            } else {
                bytes[7] ^ additional
            };
            bytes
        })
}

proptest! {
    #[test]
    fn sense_round_trips(s in sense()) {
        let bytes = s.encode();
        prop_assert!(bytes.len() <= MAX_SENSE_LENGTH);
        prop_assert_eq!(Sense::decode(&bytes), Ok(s));
    }

    #[test]
    fn designator_round_trips(ds in vec(designator(), 0..4)) {
        let body = encode_device_identification(&ds);
        prop_assert_eq!(decode_device_identification(&body), Ok(ds));
    }

    #[test]
    fn standard_inquiry_round_trips(inq in standard_inquiry()) {
        let bytes = encoded(|o| inq.encode(o));
        prop_assert_eq!(bytes.len(), 96);
        prop_assert_eq!(StandardInquiry::decode(&bytes), Ok(inq));
    }

    #[test]
    fn inquiry_cdb_round_trips(
        evpd in any::<bool>(),
        page in any::<u8>(),
        allocation_length in any::<u16>(),
    ) {
        let cdb = InquiryCdb { evpd, page_code: if evpd { page } else { 0 }, allocation_length };
        prop_assert_eq!(InquiryCdb::decode(&cdb.encode()), Ok(cdb));
    }

    #[test]
    fn block_limits_round_trip(
        a in any::<u16>(),
        b in any::<u32>(),
        c in any::<u32>(),
        d in any::<u32>(),
        e in any::<u64>(),
        f in any::<u8>(),
        g in proptest::option::of(0u32..0x8000_0000),
        wsnz in any::<bool>(),
    ) {
        let bl = BlockLimits {
            wsnz,
            maximum_compare_and_write_length: f,
            optimal_transfer_length_granularity: a,
            maximum_transfer_length: b,
            optimal_transfer_length: c,
            maximum_prefetch_length: d,
            maximum_unmap_lba_count: c,
            maximum_unmap_block_descriptor_count: d,
            optimal_unmap_granularity: b,
            unmap_granularity_alignment: g,
            maximum_write_same_length: e,
            maximum_atomic_transfer_length: d,
            atomic_alignment: b,
            atomic_transfer_length_granularity: c,
        };
        prop_assert_eq!(BlockLimits::decode_body(&bl.encode_body()), Ok(bl));
    }

    #[test]
    fn receive_copy_results_cdb_round_trips(
        sa in 0usize..4,
        list_identifier in any::<u8>(),
        allocation_length in any::<u32>(),
        control in any::<u8>(),
    ) {
        let cdb = ReceiveCopyResultsCdb {
            service_action: ServiceAction::ALL[sa],
            list_identifier,
            allocation_length,
            control,
        };
        prop_assert_eq!(ReceiveCopyResultsCdb::decode(&cdb.encode()), Ok(cdb));
    }

    #[test]
    fn copy_status_round_trips(
        held_data_discarded in any::<bool>(),
        status in copy_manager_status(),
        segments_processed in any::<u16>(),
        transfer_count_units in any::<u8>(),
        transfer_count in any::<u32>(),
    ) {
        let cs = CopyStatus {
            held_data_discarded,
            status,
            segments_processed,
            transfer_count_units,
            transfer_count,
        };
        prop_assert_eq!(CopyStatus::decode(&encoded(|o| cs.encode(o))), Ok(cs));
    }

    #[test]
    fn scaled_transfer_count_fits_and_never_overstates(bytes in any::<u64>()) {
        let (units, count) = CopyStatus::scaled_transfer_count(bytes);
        let scaled = u128::from(count) << (10 * units);
        prop_assert!(scaled <= u128::from(bytes));
        // Rounded down by less than one unit, and in the smallest unit that fits.
        prop_assert!(u128::from(bytes) - scaled < 1u128 << (10 * units));
        prop_assert!(units == 0 || bytes >> (10 * (units - 1)) > u64::from(u32::MAX));
    }

    #[test]
    fn receive_data_round_trips(held in vec(any::<u8>(), 0..600)) {
        let rd = ReceiveData { held };
        prop_assert_eq!(ReceiveData::decode(&encoded(|o| rd.encode(o))), Ok(rd));
    }

    #[test]
    fn operating_parameters_round_trip(
        snlid in any::<bool>(),
        limits in limits(),
        implemented_descriptors in vec(any::<u8>(), 0..=255),
    ) {
        let op = OperatingParameters { snlid, limits, implemented_descriptors };
        let bytes = encoded(|o| op.encode(o));
        prop_assert!(bytes.len() >= 44);
        prop_assert_eq!(OperatingParameters::decode(&bytes), Ok(op));
    }

    #[test]
    fn operating_parameters_and_8fh_agree_on_limits(limits in limits()) {
        let op = OperatingParameters::from(&limits);
        let page = ThirdPartyCopyPage::from(&limits);
        let mut saw = 0;
        for d in &page.descriptors {
            match d {
                ThirdPartyCopyDescriptor::ParameterData(p) => {
                    prop_assert_eq!(p.max_cscd_descriptors, op.limits.max_cscd_descriptors);
                    prop_assert_eq!(p.max_segment_descriptors, op.limits.max_segment_descriptors);
                    prop_assert_eq!(p.max_descriptor_list_length, op.limits.max_descriptor_list_length);
                    prop_assert_eq!(p.max_inline_data_length, op.limits.max_inline_data_length);
                    saw += 1;
                }
                ThirdPartyCopyDescriptor::SupportedDescriptors(codes) => {
                    prop_assert_eq!(codes, &op.implemented_descriptors);
                    saw += 1;
                }
                _ => {}
            }
        }
        prop_assert_eq!(saw, 2);
    }

    #[test]
    fn failed_segment_details_round_trip(
        details in option::of((any::<u8>(), vec(any::<u8>(), 0..300))),
    ) {
        let v = details.map(|(command_status, sense)| FailedSegmentDetails { command_status, sense });
        let bytes = encoded(|o| match &v {
            Some(d) => d.encode(o),
            None => FailedSegmentDetails::encode_none(o),
        });
        prop_assert_eq!(FailedSegmentDetails::decode(&bytes), Ok(v));
    }

    #[test]
    fn third_party_copy_page_round_trips(
        descriptors in vec(third_party_copy_descriptor(), 0..8),
    ) {
        let page = ThirdPartyCopyPage { descriptors };
        let body = page.encode_body();
        prop_assert_eq!(body.len() % 4, 0);
        prop_assert_eq!(ThirdPartyCopyPage::decode_body(&body), Ok(page));
    }

    #[test]
    fn any_bytes_decode_without_panic_and_re_encode(bytes in vec(any::<u8>(), 0..300)) {
        round_trip(&bytes);
    }

    #[test]
    fn fixed_sense_shaped_bytes_re_encode(bytes in fixed_sense_bytes()) {
        round_trip(&bytes);
    }

    #[test]
    fn descriptor_sense_shaped_bytes_re_encode(bytes in descriptor_sense_bytes()) {
        round_trip(&bytes);
    }

    #[test]
    fn page_shaped_bytes_re_encode(bytes in framed_page()) {
        round_trip(&bytes);
    }

    #[test]
    fn vpd_8fh_shaped_bytes_re_encode(bytes in framed_descriptors()) {
        round_trip(&bytes);
    }
}
