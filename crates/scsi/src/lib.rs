//! The pure SCSI codec: bytes <-> types for EXTENDED COPY (LID1), RECEIVE COPY RESULTS,
//! sense data, INQUIRY and VPD pages. No I/O, no clocks, no `unsafe`, and no panics on
//! input: every decoder returns `Ok` or a [`DecodeError`] that maps to the sense the
//! standard names.
//!
//! References: SPC-3 (T10/1416-D) 6.3 EXTENDED COPY and 6.17 RECEIVE COPY RESULTS, with the
//! corrections of `shared/spec/xcopy-lid1.md` Part B (SPC-4 draft text) where SPC-3 is
//! silent or was superseded.

#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::expect_used
    )
)]

mod asc_table;
pub mod attribute;
pub mod cdb;
pub mod codes;
pub mod copy_results;
pub mod density;
pub mod designator;
pub mod dump;
pub mod error;
#[cfg(any(test, fuzzing))]
pub mod fuzzing;
pub mod inquiry;
pub mod limits;
pub mod log_sense;
pub mod luns;
pub mod parameter_list;
pub mod partition_page;
pub mod persistent_reservation;
#[cfg(test)]
mod proptests;
pub mod reader;
pub mod sbc;
pub mod sbc_commands;
pub mod sbc_extra;
pub mod sbc_mode;
pub mod sbc_provisioning;
pub mod segment_descriptor;
pub mod sense;
pub mod smc;
mod smc_pages;
pub mod ssc;
pub mod target_descriptor;
pub mod third_party_copy;

pub use codes::{Asc, DeviceClass, Opcode, PeripheralDeviceType, SenseKey, Status};
pub use copy_results::{
    CopyManagerStatus, CopyStatus, FailedSegmentDetails, OperatingParameters,
    ReceiveCopyResultsCdb, ReceiveData, ServiceAction,
};
pub use designator::Designator;
pub use error::{DecodeError, Reason};
pub use limits::Limits;
pub use parameter_list::{ListIdUsage, ParameterList, SegmentError, Supported};
pub use reader::{Put, Reader};
pub use segment_descriptor::{CscdId, Segment, SegmentDescriptor};
pub use sense::{ForwardedSense, ForwardedSource, Sense, SenseKeySpecific};
pub use target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
pub use third_party_copy::{ThirdPartyCopyDescriptor, ThirdPartyCopyPage};
