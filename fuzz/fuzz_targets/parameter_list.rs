//! EXTENDED COPY (LID1) parameter lists, validated against copy-manager limits taken from
//! the input's first bytes: decode, `evaluate`, and `check_segment` on every segment.
//! Whatever decodes must decode again from its own encoding, and `evaluate`'s verdict must
//! agree with `decode` and `check_segment`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xcopyd::scsi::dump::render_verdict;
use xcopyd::scsi::limits::{ALL_CSCD_TYPES, SUPPORTED_CSCD_TYPES, SUPPORTED_SEGMENT_TYPES};
use xcopyd::scsi::parameter_list::{evaluate, Verdict};
use xcopyd::scsi::{Limits, ParameterList, Supported};

/// Bytes of the input that choose the limits; the rest is the parameter list.
const PREFIX: usize = 13;

/// Every type code, to reach the decoders of types a configuration would refuse.
static ALL_TYPE_CODES: [u8; 256] = {
    let mut codes = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        codes[i] = i as u8;
        i += 1;
    }
    codes
};

fn be24(b: &[u8]) -> u32 {
    b.iter().fold(0, |n, &x| (n << 8) | u32::from(x))
}

/// Limits within reason (each field up to its width, 24-bit lengths) and the accepted
/// descriptor types, from the prefix.
fn config(p: &[u8; PREFIX]) -> (Limits, Supported<'static>) {
    let limits = Limits {
        max_cscd_descriptors: u16::from(p[0]),
        max_segment_descriptors: u16::from_be_bytes([p[1], p[2]]),
        max_descriptor_list_length: be24(&p[3..6]),
        max_inline_data_length: be24(&p[6..9]),
        max_stream_device_transfer_size: be24(&p[9..12]) << 8,
        ..Limits::default()
    };
    let supported = Supported {
        cscd_types: match p[12] & 3 {
            0 => SUPPORTED_CSCD_TYPES,
            1 => ALL_CSCD_TYPES,
            _ => &ALL_TYPE_CODES,
        },
        segment_types: if p[12] & 4 == 0 {
            SUPPORTED_SEGMENT_TYPES
        } else {
            &ALL_TYPE_CODES
        },
    };
    (limits, supported)
}

fuzz_target!(|data: &[u8]| {
    let Some((prefix, bytes)) = data.split_first_chunk::<PREFIX>() else {
        return;
    };
    let (limits, supported) = config(prefix);

    let decoded = ParameterList::decode(bytes, &limits, supported);
    let checks: Vec<_> = match &decoded {
        Ok(list) => {
            let again = ParameterList::decode(&list.encode(), &limits, supported);
            assert_eq!(again.as_ref(), Ok(list), "decode(encode(list)) != list");
            (0..list.segments.len())
                .map(|i| list.check_segment(i, &limits))
                .collect()
        }
        Err(_) => Vec::new(),
    };

    let verdict = evaluate(bytes, &limits, supported);
    match &verdict {
        Verdict::Empty => assert!(bytes.is_empty()),
        Verdict::Rejected(_) => assert!(decoded.is_err(), "evaluate rejected a valid list"),
        Verdict::Accepted(list) => {
            assert_eq!(decoded.as_ref(), Ok(list));
            assert!(
                checks.iter().all(Result::is_ok),
                "accepted a failing segment"
            );
        }
        Verdict::WouldAbort { list, segment, .. } => {
            assert_eq!(decoded.as_ref(), Ok(list));
            assert!(checks[*segment].is_err(), "aborted at a passing segment");
            assert!(
                checks[..*segment].iter().all(Result::is_ok),
                "not the first"
            );
        }
    }
    let _ = render_verdict(&verdict);
});
