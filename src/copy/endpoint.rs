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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::testing::MemoryDisk;

    /// What a log line shows of a resolved CSCD: the device by name, the descriptor, the
    /// geometry (not the device's own Debug, nor the throttle's).
    #[test]
    fn an_endpoint_debugs_as_its_device_name_descriptor_and_geometry() {
        let e = Endpoint {
            device: Arc::new(MemoryDisk::new("disk7", 512, 64)),
            cscd: Some(2),
            block_length: 512,
            blocks: 64,
            backend: None,
            throttle: Throttle::default(),
        };
        assert_eq!(
            format!("{e:?}"),
            r#"Endpoint { device: "disk7", cscd: Some(2), block_length: 512, blocks: 64 }"#
        );
    }
}
