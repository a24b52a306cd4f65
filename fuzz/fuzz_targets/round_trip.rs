//! Every decoder over the same bytes; whatever decodes must encode and decode back to the
//! same value (the hook the property tests also run).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| xcopyd::scsi::fuzzing::round_trip(data));
