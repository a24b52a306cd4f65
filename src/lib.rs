//! xcopyd: a SCSI third-party copy manager (EXTENDED COPY LID1) for Linux SANs.
//!
//! ```text
//! scsi       the pure codec, its own crate (crates/scsi, `xcopyd-scsi`): CDBs, parameter
//!            lists, sense, RECEIVE COPY RESULTS, INQUIRY/VPD; it can import nothing of ours
//! command    the nexus, a command's result and its abort, shared by all of the below
//! device/    something a CDB can be sent to: emulated disk and tape, SG_IO, the inventory
//! copy/      the data mover: per-segment plans, the io_uring engine, list state
//! frontend/  one dispatcher shared by every transport
//! sys/       the only module allowed `unsafe`
//! ```

#![deny(unsafe_code)]

pub mod admin;
pub mod buf;
pub mod cli;
pub mod command;
pub mod copy;
pub mod daemon;
pub mod device;
pub mod frontend;
pub mod iscsi;
pub mod metrics;
pub mod ndmp;
pub mod objstore;
/// The pure SCSI codec. It is a crate of its own so that the compiler, not a convention,
/// keeps it free of I/O and of the rest of xcopyd, and so that it builds and tests alone.
pub use xcopyd_scsi as scsi;
pub mod size;
pub mod state;
pub mod sys;
