//! One device as NDMP reaches it: a dispatcher with the device as LUN 0, and the NDMP
//! user's nexus. Every CDB, whether the DMA sends it (EXECUTE CDB) or the TAPE and MOVER
//! services build it, goes through the same dispatcher as an iSCSI or TCMU command, so the
//! `allow` lists, reservations and unit attentions apply to NDMP as to any other path.

use std::sync::Arc;

use crate::command::{Abort, CommandResult, Nexus};
use crate::frontend::dispatch::Dispatcher;
use crate::scsi::{Sense, Status};

/// A device NDMP has open.
pub struct Lu {
    pub name: String,
    pub dispatcher: Arc<Dispatcher>,
    pub nexus: Nexus,
    /// Held while the device is open through TAPE or SCSI; None for DATA's disk, which
    /// other initiators (and NDMP sessions) may use at the same time, under reservations.
    pub claim: Option<Claim>,
}

/// How one command ended.
pub struct Done {
    pub result: CommandResult,
    /// The sense decoded, if any.
    pub sense: Option<Sense>,
}

impl Done {
    pub fn good(&self) -> bool {
        self.result.status == Status::GOOD
    }
}

impl Lu {
    pub fn exec(&self, cdb: &[u8], data_out: &[u8], data_in_len: usize) -> Done {
        let result =
            self.dispatcher
                .execute(&self.nexus, 0, cdb, data_out, data_in_len, &Abort::new());
        let sense = if result.sense.is_empty() {
            None
        } else {
            Sense::decode(&result.sense).ok()
        };
        if result.status != Status::GOOD {
            tracing::debug!(device = %self.name, cdb = %hex::encode(cdb), status = ?result.status, ?sense, "ndmp: command not GOOD");
        }
        Done { result, sense }
    }
}

/// A device held open by one NDMP session: no other session may open it until dropped.
pub struct Claim {
    busy: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    name: String,
}

impl Claim {
    /// `None` if another session holds `name`.
    pub fn take(
        busy: &Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
        name: &str,
    ) -> Option<Self> {
        let mut set = busy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        set.insert(name.to_string()).then(|| Self {
            busy: busy.clone(),
            name: name.to_string(),
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.busy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.name);
    }
}
