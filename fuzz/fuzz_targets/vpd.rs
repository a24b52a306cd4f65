//! Standard INQUIRY data, and VPD pages 83h, B0h and 8Fh framed by their 4-byte header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xcopyd::scsi::inquiry::{
    decode_device_identification, page, split_vpd_page, BlockLimits, StandardInquiry,
};
use xcopyd::scsi::ThirdPartyCopyPage;

fuzz_target!(|data: &[u8]| {
    let _ = StandardInquiry::decode(data);
    if let Ok((code, body)) = split_vpd_page(data) {
        match code {
            page::DEVICE_IDENTIFICATION => drop(decode_device_identification(body)),
            page::BLOCK_LIMITS => drop(BlockLimits::decode_body(body)),
            page::THIRD_PARTY_COPY => drop(ThirdPartyCopyPage::decode_body(body)),
            _ => {}
        }
    }
});
