//! The round-trip hook shared by the `round_trip` fuzz target (`fuzz/`) and the property
//! tests: built only under `cfg(test)` or `cfg(fuzzing)` (cargo fuzz sets the latter), so
//! its assertions never reach a production build.

use std::fmt::Debug;

use super::copy_results::{
    CopyStatus, FailedSegmentDetails, OperatingParameters, ReceiveCopyResultsCdb, ReceiveData,
};
use super::error::DecodeError;
use super::inquiry::{
    decode_device_identification, encode_device_identification, BlockLimits, InquiryCdb,
    StandardInquiry,
};
use super::sense::Sense;
use super::third_party_copy::ThirdPartyCopyPage;

/// Runs every decoder of the codec over `data`. For each that accepts it, encodes the value
/// and decodes that again, and panics unless the same value comes back: whatever a decoder
/// accepts, its encoder must reproduce.
pub fn round_trip(data: &[u8]) {
    if let Ok(v) = Sense::decode(data) {
        same(&v, Sense::decode(&v.encode()));
    }
    if let Ok(v) = InquiryCdb::decode(data) {
        same(&v, InquiryCdb::decode(&v.encode()));
    }
    if let Ok(v) = StandardInquiry::decode(data) {
        same(&v, StandardInquiry::decode(&encoded(|o| v.encode(o))));
    }
    if let Ok(v) = decode_device_identification(data) {
        same(
            &v,
            decode_device_identification(&encode_device_identification(&v)),
        );
    }
    if let Ok(v) = BlockLimits::decode_body(data) {
        same(&v, BlockLimits::decode_body(&v.encode_body()));
    }
    if let Ok(v) = ThirdPartyCopyPage::decode_body(data) {
        same(&v, ThirdPartyCopyPage::decode_body(&v.encode_body()));
    }
    if let Ok(v) = ReceiveCopyResultsCdb::decode(data) {
        same(&v, ReceiveCopyResultsCdb::decode(&v.encode()));
    }
    if let Ok(v) = CopyStatus::decode(data) {
        same(&v, CopyStatus::decode(&encoded(|o| v.encode(o))));
    }
    if let Ok(v) = ReceiveData::decode(data) {
        same(&v, ReceiveData::decode(&encoded(|o| v.encode(o))));
    }
    if let Ok(v) = OperatingParameters::decode(data) {
        same(&v, OperatingParameters::decode(&encoded(|o| v.encode(o))));
    }
    if let Ok(v) = FailedSegmentDetails::decode(data) {
        let bytes = encoded(|o| match &v {
            Some(details) => details.encode(o),
            None => FailedSegmentDetails::encode_none(o),
        });
        same(&v, FailedSegmentDetails::decode(&bytes));
    }
}

/// The bytes an `encode(&self, &mut Vec<u8>)`-style encoder writes.
pub fn encoded(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    f(&mut out);
    out
}

fn same<T: PartialEq + Debug>(value: &T, again: Result<T, DecodeError>) {
    assert_eq!(again.as_ref(), Ok(value), "decode(encode(x)) != x");
}
