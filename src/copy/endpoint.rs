//! A resolved CSCD ([`Endpoint`]): the device a CSCD descriptor names and what the copy
//! manager knows of it (block length and count, its file fast path, its bandwidth limits).

use std::sync::Arc;

use super::failure::Failure;
use super::limit::Throttle;
use crate::device::{BlockBackend, ScsiDevice};
use crate::scsi::Asc;

/// A resolved CSCD: the device and what the copy manager knows about it.
#[derive(Clone)]
pub struct Endpoint {
    pub device: Arc<dyn ScsiDevice>,
    /// Index of the CSCD descriptor it was resolved from (None for FFFFh).
    pub cscd: Option<usize>,
    /// Logical block length (block devices), from the CSCD or READ CAPACITY.
    pub block_length: u32,
    /// Number of logical blocks (block devices).
    pub blocks: u64,
    pub backend: Option<BlockBackend>,
    /// The bandwidth limits its reads and writes wait on.
    pub throttle: Throttle,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("device", &self.device.name())
            .field("cscd", &self.cscd)
            .field("block_length", &self.block_length)
            .field("blocks", &self.blocks)
            .finish()
    }
}

impl Failure {
    /// A failure about CSCD `endpoint` (the segment pointer names its descriptor).
    pub fn of(asc: Asc, endpoint: &Endpoint) -> Self {
        Self {
            cscd: endpoint.cscd,
            ..Self::new(asc)
        }
    }
}
