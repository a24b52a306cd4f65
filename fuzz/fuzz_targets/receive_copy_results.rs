//! The RECEIVE COPY RESULTS CDB and its four LID1 parameter data pages.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xcopyd::scsi::{
    CopyStatus, FailedSegmentDetails, OperatingParameters, ReceiveCopyResultsCdb, ReceiveData,
};

fuzz_target!(|data: &[u8]| {
    let _ = ReceiveCopyResultsCdb::decode(data);
    let _ = CopyStatus::decode(data);
    let _ = ReceiveData::decode(data);
    let _ = OperatingParameters::decode(data);
    let _ = FailedSegmentDetails::decode(data);
});
