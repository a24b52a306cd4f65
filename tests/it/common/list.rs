//! Parameter lists and EXTENDED COPY CDBs as the tests send them.

use xcopyd::scsi::segment_descriptor::{Segment, SegmentDescriptor};
use xcopyd::scsi::target_descriptor::CscdDescriptor;
use xcopyd::scsi::{ListIdUsage, ParameterList};

/// The bytes of list `id`: `segments` (CAT=0) over `cscds`, priority 1, no inline data.
pub fn encode_list(
    id: u8,
    usage: ListIdUsage,
    cscds: Vec<CscdDescriptor>,
    segments: Vec<Segment>,
) -> Vec<u8> {
    ParameterList {
        list_identifier: id,
        sequential_striped: false,
        list_id_usage: usage,
        priority: 1,
        cscds,
        segments: segments
            .into_iter()
            .map(|body| SegmentDescriptor { cat: false, body })
            .collect(),
        inline_data: Vec::new(),
    }
    .encode()
}

/// EXTENDED COPY (LID1, 83h) for a parameter list of `len` bytes, written byte by byte
/// (PARAMETER LIST LENGTH in bytes 10-13), not by the codec under test.
/// The dispatcher decodes a CDB before the copy manager sees it; a test that calls the copy
/// manager directly does the same with the bytes it built.
pub fn decoded_xcopy(cdb: &[u8]) -> xcopyd::scsi::cdb::ExtendedCopyCdb {
    xcopyd::scsi::cdb::ExtendedCopyCdb::decode(cdb).unwrap()
}

/// RECEIVE COPY RESULTS bytes, decoded as the dispatcher does.
pub fn decoded_rcr(cdb: &[u8]) -> xcopyd::scsi::copy_results::ReceiveCopyResultsCdb {
    xcopyd::scsi::copy_results::ReceiveCopyResultsCdb::decode(cdb).unwrap()
}

pub fn xcopy_cdb(len: usize) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x83;
    c[10..14].copy_from_slice(&(len as u32).to_be_bytes());
    c
}
