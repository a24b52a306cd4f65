//! NDMP v4 XDR: the first byte picks a message code, the rest is its body; whatever decodes
//! must re-encode to the same request. Also the header and the replies a DMA reads.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    xcopyd::ndmp::fuzz_decode(data);
});
