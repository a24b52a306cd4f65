//! The data mover: the copy manager that takes an EXTENDED COPY parameter list for an I_T
//! nexus, runs it through one engine, and keeps what RECEIVE COPY RESULTS returns.
//!
//! Front ends reach it through [`CopyService`]; they stay thin.

pub mod endpoint;
pub mod engine;
pub mod failure;
pub mod flow;
pub mod io;
pub mod limit;
pub mod lists;
pub mod manager;
pub mod op;
pub mod plan;
pub mod registry;
pub mod reservation;
pub mod residue;
pub mod resolve;
pub mod run;
pub mod segment;

/// What a front end that runs a list watches: its live counters, and a tap on the bytes it
/// writes to a stream destination.
pub use run::{Progress, Tap};

/// Bytes per block-device read or write on the data path: the engine's buffers, the chunks
/// a transfer moves, the smallest burst a bandwidth limit allows.
pub const CHUNK: usize = crate::buf::RING_BUFFER;

use std::sync::Arc;

use crate::command::{Abort, CommandResult, Nexus};
use crate::device::ScsiDevice;
use crate::scsi::cdb::ExtendedCopyCdb;
use crate::scsi::copy_results::ReceiveCopyResultsCdb;

/// What the dispatcher asks of the copy manager for opcodes 83h and 84h, their CDBs
/// decoded by the dispatcher.
pub trait CopyService: Send + Sync {
    /// EXTENDED COPY (LID1): validates and runs the list to completion (LID1 has no IMMED)
    /// and returns GOOD or CHECK CONDITION. `receiving_lun` is the logical unit the command
    /// was sent to (what CSCD ID FFFFh names).
    fn extended_copy(
        &self,
        nexus: &Nexus,
        receiving_lun: Option<Arc<dyn ScsiDevice>>,
        cdb: &ExtendedCopyCdb,
        parameter_list: &[u8],
        abort: &Abort,
    ) -> CommandResult;

    /// RECEIVE COPY RESULTS (LID1 service actions 00h, 01h, 03h, 04h).
    fn receive_copy_results(&self, nexus: &Nexus, cdb: &ReceiveCopyResultsCdb) -> CommandResult;

    /// Forgets a nexus's held results (logout, I_T nexus loss).
    fn nexus_lost(&self, nexus: &Nexus);
}
