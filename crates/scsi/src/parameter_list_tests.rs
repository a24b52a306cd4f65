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

/// A list in the TOML form `xcopy run` reads.
fn from_toml(text: &str) -> ParameterList {
    toml::from_str(text).unwrap()
}

const CSCDS: &str = r#"
[[cscd]]
peripheral_device_type = 0
identifier = { type = "identification", designator = "naa.5001405a1b2c3d01" }
parameters = { class = "block", pad = false, block_length = 4096 }

[[cscd]]
peripheral_device_type = 0
identifier = { type = "identification", designator = "naa.5001405a1b2c3d02" }
parameters = { class = "block", pad = false, block_length = 0 }

[[cscd]]
peripheral_device_type = 1
identifier = { type = "identification", designator = "naa.5001405a1b2c3d03" }
parameters = { class = "stream", pad = false, fixed = false, block_length = 0 }
"#;

/// What progress counts each segment for: blocks times the block CSCD's block length
/// (512 when it gives 0, or when the CSCD is not in the list), the byte counts of the
/// byte-range, stream and inline segments, nothing for the others.
#[test]
fn bytes_to_move_counts_each_segment_by_its_units() {
    let segments = r#"
[[segment]]
type = "block_to_stream"
source = 0
destination = 2
stream_transfer_length = 4096
blocks = 3
lba = 0

[[segment]]
type = "stream_to_block"
source = 2
destination = 1
stream_transfer_length = 512
blocks = 2
lba = 0

[[segment]]
type = "block_to_block"
source = 7
destination = 0
blocks = 5
source_lba = 0
destination_lba = 0

[[segment]]
type = "stream_to_stream"
source = 2
destination = 2
source_transfer_length = 100
destination_transfer_length = 100
byte_count = 100

[[segment]]
type = "inline_to_stream"
destination = 2
stream_transfer_length = 10
inline_offset = 0
bytes = 10

[[segment]]
type = "write_filemarks"
destination = 2
count = 1
"#;
    let l = from_toml(&format!("list_identifier = 1\n{CSCDS}{segments}"));
    let each: Vec<u64> = (0..7).map(|i| l.segment_bytes(i)).collect();
    assert_eq!(each, [3 * 4096, 2 * 512, 5 * 512, 100, 10, 0, 0]);
    assert_eq!(l.bytes_to_move(), 3 * 4096 + 2 * 512 + 5 * 512 + 100 + 10);
}

/// Inline data in TOML: hex (with or without separators), `{ text = "…" }`, or empty; text
/// that is neither is refused.
#[test]
fn inline_data_is_hex_or_text() {
    let l = from_toml("list_identifier = 1\ninline_data = \"a5:b6\"\n");
    assert_eq!(l.inline_data, [0xa5, 0xb6]);
    let l = from_toml("list_identifier = 1\ninline_data = { text = \"hi\" }\n");
    assert_eq!(l.inline_data, b"hi");
    let l = from_toml("list_identifier = 1\ninline_data = \"\"\n");
    assert!(l.inline_data.is_empty());
    let bad: Result<ParameterList, _> =
        toml::from_str("list_identifier = 1\ninline_data = \"zz\"\n");
    assert!(bad.unwrap_err().to_string().contains("is not hex"));
}
