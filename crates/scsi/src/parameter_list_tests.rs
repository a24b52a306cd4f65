//! The list header's checks, each at its boundary and with the exact error it gives (the
//! reason is what the refusal is logged with; the sense follows from it).

use super::*;
use crate::segment_descriptor::{CscdId, Segment, SegmentDescriptor};

/// A list of one write-filemarks segment and `inline` bytes of inline data, encoded.
fn list(inline: usize) -> Vec<u8> {
    ParameterList {
        list_identifier: 0,
        sequential_striped: false,
        list_id_usage: ListIdUsage::NoListId,
        priority: 0,
        cscds: Vec::new(),
        segments: vec![SegmentDescriptor {
            cat: false,
            body: Segment::WriteFilemarks {
                destination: CscdId(0),
                immed: false,
                count: 1,
            },
        }],
        inline_data: vec![0xa5; inline],
    }
    .encode()
}

fn decode(bytes: &[u8], limits: &Limits) -> Result<ParameterList, DecodeError> {
    ParameterList::decode(bytes, limits, Supported::default())
}

/// Fewer bytes than the header's three lengths promise: 1A/00 with no field pointer,
/// reported at the end of what arrived; more: 1A/00 at the first byte past them.
#[test]
fn the_list_holds_exactly_what_its_header_promises() {
    let limits = Limits::default();
    let whole = list(8);
    assert!(decode(&whole, &limits).is_ok());
    let short = &whole[..whole.len() - 1];
    assert_eq!(
        decode(short, &limits).unwrap_err(),
        DecodeError::new(Reason::Truncated, short.len())
    );
    let mut long = whole.clone();
    long.extend([0, 0]);
    assert_eq!(
        decode(&long, &limits).unwrap_err(),
        DecodeError::new(Reason::TrailingData, whole.len())
    );
}

/// CSCD and segment descriptor bytes may reach MAXIMUM DESCRIPTOR LIST LENGTH, not pass
/// it (1A/00 at the CSCD DESCRIPTOR LIST LENGTH field); inline data is not counted.
#[test]
fn descriptor_bytes_may_reach_the_maximum() {
    let bytes = list(64);
    // SEGMENT DESCRIPTOR LIST LENGTH (bytes 8-11); no CSCDs.
    let descriptors = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    assert_eq!(descriptors, 12);
    let at = Limits {
        max_descriptor_list_length: descriptors,
        ..Limits::default()
    };
    assert!(decode(&bytes, &at).is_ok());
    let below = Limits {
        max_descriptor_list_length: descriptors - 1,
        ..Limits::default()
    };
    assert_eq!(
        decode(&bytes, &below).unwrap_err(),
        DecodeError::new(Reason::ParameterListLength, 2)
    );
}

/// INLINE DATA LENGTH may reach MAXIMUM INLINE DATA LENGTH, not pass it (26/0B at byte 12).
#[test]
fn inline_data_may_reach_the_maximum() {
    let bytes = list(40);
    let at = Limits {
        max_inline_data_length: 40,
        ..Limits::default()
    };
    assert!(decode(&bytes, &at).is_ok());
    let below = Limits {
        max_inline_data_length: 39,
        ..Limits::default()
    };
    assert_eq!(
        decode(&bytes, &below).unwrap_err(),
        DecodeError::new(Reason::InlineDataLengthExceeded, 12)
    );
}
