//! Sense data of either format, as a device (or a forwarded area) returns it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xcopyd::scsi::Sense;

fuzz_target!(|data: &[u8]| {
    if let Ok(sense) = Sense::decode(data) {
        // Display decodes forwarded sense recursively.
        let _ = sense.to_string();
        let _ = sense.encode();
    }
});
