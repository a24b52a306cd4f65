//! Properties of the parameter list codec: decode(encode(x)) == x for every list the
//! standard allows; any bytes, and any mutation of a valid list, give Ok or a sense —
//! never a panic — and an accepted list decodes back from its own encoding.

use proptest::collection::vec;
use proptest::prelude::*;
use xcopyd_scsi::limits::{ALL_CSCD_TYPES, SUPPORTED_SEGMENT_TYPES};
use xcopyd_scsi::parameter_list::{evaluate, Supported};
use xcopyd_scsi::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
use xcopyd_scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
use xcopyd_scsi::{Designator, Limits, ListIdUsage, ParameterList, Sense};

const ALL: Supported<'static> = Supported {
    cscd_types: ALL_CSCD_TYPES,
    segment_types: SUPPORTED_SEGMENT_TYPES,
};

fn big_limits() -> Limits {
    Limits {
        max_cscd_descriptors: u16::MAX,
        max_segment_descriptors: u16::MAX,
        max_descriptor_list_length: u32::MAX,
        max_inline_data_length: u32::MAX,
        ..Limits::default()
    }
}

fn u24() -> impl Strategy<Value = u32> {
    0u32..=0x00ff_ffff
}

fn id() -> impl Strategy<Value = CscdId> {
    prop_oneof![
        0u16..4,
        Just(0xc000),
        Just(0xc001),
        Just(0xffff),
        any::<u16>()
    ]
    .prop_map(CscdId)
}

fn identifier() -> impl Strategy<Value = CscdIdentifier> {
    prop_oneof![
        (any::<u64>(), any::<u64>())
            .prop_map(|(lun, n_port_name)| CscdIdentifier::FcNPortName { lun, n_port_name }),
        (any::<u64>(), u24())
            .prop_map(|(lun, n_port_id)| CscdIdentifier::FcNPortId { lun, n_port_id }),
        (any::<u64>(), any::<u64>(), u24()).prop_map(|(lun, n_port_name, n_port_id)| {
            CscdIdentifier::FcNPortIdWithName {
                lun,
                n_port_name,
                n_port_id,
            }
        }),
        (any::<u64>(), any::<u8>(), any::<u8>()).prop_map(
            |(lun, vendor_specific, target_identifier)| {
                CscdIdentifier::SpiTl {
                    lun,
                    vendor_specific,
                    target_identifier,
                }
            }
        ),
        (1u8..=3, 0u8..16, vec(any::<u8>(), 0..=20)).prop_map(|(code_set, t, value)| {
            CscdIdentifier::Identification {
                designator: Designator::logical_unit(t, code_set, value),
            }
        }),
        (any::<u64>(), any::<[u8; 4]>(), any::<u16>(), any::<u16>()).prop_map(
            |(lun, address, port, protocol)| CscdIdentifier::Ipv4 {
                lun,
                address,
                port,
                protocol
            }
        ),
        (any::<u64>(), any::<u64>()).prop_map(|(lun, alias)| CscdIdentifier::Alias { lun, alias }),
        (any::<u64>(), any::<[u8; 16]>())
            .prop_map(|(lun, target_port)| CscdIdentifier::Rdma { lun, target_port }),
        (any::<u64>(), any::<u64>(), u24()).prop_map(|(lun, eui64, directory_id)| {
            CscdIdentifier::Ieee1394 {
                lun,
                eui64,
                directory_id,
            }
        }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(lun, sas_address)| CscdIdentifier::SasSsp { lun, sas_address }),
        (any::<u64>(), any::<[u8; 16]>(), any::<u16>(), any::<u16>()).prop_map(
            |(lun, address, port, protocol)| CscdIdentifier::Ipv6 {
                lun,
                address,
                port,
                protocol
            }
        ),
    ]
}

fn cscd() -> impl Strategy<Value = CscdDescriptor> {
    let parameters = prop_oneof![
        (
            any::<bool>(),
            u24(),
            prop::sample::select(vec![0u8, 4, 5, 7, 0x0e])
        )
            .prop_map(|(pad, block_length, pdt)| (
                pdt,
                DeviceParameters::Block { pad, block_length }
            )),
        (any::<bool>(), u24()).prop_map(|(pad, block_length)| {
            (
                1,
                DeviceParameters::Stream {
                    pad,
                    fixed: block_length != 0,
                    block_length,
                },
            )
        }),
        any::<bool>().prop_map(|pad| (3, DeviceParameters::Processor { pad })),
    ];
    (any::<bool>(), any::<u16>(), identifier(), parameters).prop_map(
        |(nul, port, identifier, (pdt, parameters))| CscdDescriptor {
            nul,
            peripheral_device_type: pdt,
            relative_initiator_port: port,
            identifier,
            parameters,
        },
    )
}

fn segment() -> impl Strategy<Value = Segment> {
    prop_oneof![
        (any::<bool>(), id(), id(), u24(), any::<u16>(), any::<u64>()).prop_map(
            |(hold, source, destination, t, blocks, lba)| {
                Segment::BlockToStream {
                    hold,
                    source,
                    destination,
                    stream_transfer_length: t,
                    blocks,
                    lba,
                }
            }
        ),
        (any::<bool>(), id(), id(), u24(), any::<u16>(), any::<u64>()).prop_map(
            |(hold, source, destination, t, blocks, lba)| {
                Segment::StreamToBlock {
                    hold,
                    source,
                    destination,
                    stream_transfer_length: t,
                    blocks,
                    lba,
                }
            }
        ),
        (
            any::<bool>(),
            any::<bool>(),
            id(),
            id(),
            any::<u16>(),
            any::<u64>(),
            any::<u64>()
        )
            .prop_map(
                |(hold, dc, source, destination, blocks, source_lba, destination_lba)| {
                    Segment::BlockToBlock {
                        hold,
                        dc,
                        source,
                        destination,
                        blocks,
                        source_lba,
                        destination_lba,
                    }
                }
            ),
        (any::<bool>(), id(), id(), u24(), u24(), any::<u32>()).prop_map(
            |(hold, source, destination, s, d, byte_count)| {
                Segment::StreamToStream {
                    hold,
                    source,
                    destination,
                    source_transfer_length: s,
                    destination_transfer_length: d,
                    byte_count,
                }
            }
        ),
        (id(), u24(), any::<u32>(), any::<u32>()).prop_map(
            |(destination, t, inline_offset, bytes)| {
                Segment::InlineToStream {
                    destination,
                    stream_transfer_length: t,
                    inline_offset,
                    bytes,
                }
            }
        ),
        (id(), u24(), vec(any::<u8>(), 0..64)).prop_map(|(destination, t, data)| {
            Segment::EmbeddedToStream {
                destination,
                stream_transfer_length: t,
                data,
            }
        }),
        (any::<bool>(), id(), u24(), any::<u32>()).prop_map(|(hold, source, t, bytes)| {
            Segment::StreamToDiscard {
                hold,
                source,
                stream_transfer_length: t,
                bytes,
            }
        }),
        (id(), any::<bool>()).prop_map(|(source, tur)| Segment::VerifyCscd { source, tur }),
        (id(), id(), u24(), any::<u32>(), any::<u64>(), any::<u16>()).prop_map(
            |(source, destination, t, bytes, lba, byte_offset)| Segment::BlockOffsetToStream {
                source,
                destination,
                stream_transfer_length: t,
                bytes,
                lba,
                byte_offset
            }
        ),
        (id(), id(), u24(), any::<u32>(), any::<u64>(), any::<u16>()).prop_map(
            |(source, destination, t, bytes, lba, byte_offset)| Segment::StreamToBlockOffset {
                source,
                destination,
                stream_transfer_length: t,
                bytes,
                lba,
                byte_offset
            }
        ),
        (
            id(),
            id(),
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            any::<u16>(),
            any::<u16>()
        )
            .prop_map(
                |(source, destination, bytes, source_lba, destination_lba, so, dof)| {
                    Segment::BlockOffsetToBlockOffset {
                        source,
                        destination,
                        bytes,
                        source_lba,
                        destination_lba,
                        source_byte_offset: so,
                        destination_byte_offset: dof,
                    }
                }
            ),
        (id(), any::<bool>(), u24()).prop_map(|(destination, immed, count)| {
            Segment::WriteFilemarks {
                destination,
                immed,
                count,
            }
        }),
        (id(), 0u8..16, -0x80_0000i32..0x80_0000).prop_map(|(destination, code, count)| {
            Segment::Space {
                destination,
                code,
                count,
            }
        }),
        (id(), any::<u32>()).prop_map(|(destination, logical_object_id)| Segment::Locate {
            destination,
            logical_object_id
        }),
        (id(), id(), any::<u32>()).prop_map(|(source, destination, count)| {
            Segment::TapeImageCopy {
                source,
                destination,
                count,
            }
        }),
        (id(), any::<u64>(), any::<u64>()).prop_map(|(destination, k, s)| Segment::RegisterKey {
            destination,
            reservation_key: k,
            service_action_reservation_key: s
        }),
        (
            id(),
            any::<u64>(),
            any::<u64>(),
            any::<bool>(),
            any::<bool>(),
            any::<u16>(),
            6usize..16
        )
            .prop_flat_map(|(destination, k, s, unreg, aptpl, port, words)| vec(
                any::<u8>(),
                words * 4
            )
            .prop_map(move |transport_id| {
                Segment::ThirdPartyPrSource {
                    destination,
                    reservation_key: k,
                    service_action_reservation_key: s,
                    unreg,
                    aptpl,
                    relative_target_port: port,
                    transport_id,
                }
            })),
    ]
}

fn list() -> impl Strategy<Value = ParameterList> {
    let usage = prop_oneof![
        Just(ListIdUsage::Hold),
        Just(ListIdUsage::Discard),
        Just(ListIdUsage::NoListId)
    ];
    let segments = vec((any::<bool>(), segment()), 0..12).prop_map(|v| {
        v.into_iter()
            .map(|(cat, body)| SegmentDescriptor {
                cat: cat && body.has_cat(),
                body,
            })
            .collect::<Vec<_>>()
    });
    (
        any::<u8>(),
        any::<bool>(),
        usage,
        0u8..8,
        vec(cscd(), 0..6),
        segments,
        vec(any::<u8>(), 0..64),
    )
        .prop_map(
            |(id, str_, usage, priority, cscds, segments, inline_data)| ParameterList {
                list_identifier: if usage == ListIdUsage::NoListId {
                    0
                } else {
                    id
                },
                sequential_striped: str_,
                list_id_usage: usage,
                priority,
                cscds,
                segments,
                inline_data,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn decode_of_encode_is_identity(l in list()) {
        let bytes = l.encode();
        let back = ParameterList::decode(&bytes, &big_limits(), ALL);
        prop_assert_eq!(back.as_ref(), Ok(&l));
        // Segment checks never panic either.
        for i in 0..l.segments.len() {
            let _ = l.check_segment(i, &Limits::default());
        }
    }

    #[test]
    fn arbitrary_bytes_give_ok_or_sense(bytes in vec(any::<u8>(), 0..600)) {
        let verdict = evaluate(&bytes, &Limits::default(), Supported::default());
        // Reserved bits are ignored, so an accepted list re-encodes to itself up to them:
        // decoding its encoding gives the same list.
        if let xcopyd_scsi::parameter_list::Verdict::Accepted(l) = verdict {
            let again = ParameterList::decode(&l.encode(), &Limits::default(), Supported::default());
            prop_assert_eq!(again.as_ref(), Ok(&l));
        }
    }

    #[test]
    fn mutated_valid_lists_give_ok_or_sense(l in list(), flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>()) {
        let mut bytes = l.encode();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= value;
        }
        let _ = evaluate(&bytes, &Limits::default(), ALL);
        let truncated = &bytes[..cut.index(bytes.len() + 1)];
        match ParameterList::decode(truncated, &Limits::default(), ALL) {
            Ok(decoded) => {
                let again = ParameterList::decode(&decoded.encode(), &Limits::default(), ALL);
                prop_assert_eq!(again.as_ref(), Ok(&decoded));
            }
            Err(e) => { let _ = Sense::from(e).encode(); }
        }
    }
}
