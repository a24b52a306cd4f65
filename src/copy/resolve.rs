//! CSCD resolution against the device inventory, for one initiator at a time: E4h by VPD 83h
//! designator, E0h by FC port name + LUN, E1h by FC port ID + LUN, E2h by port ID with the
//! port name checked too, E9h by SAS address + LUN. Anything else, and any device the
//! initiator's `allow` rules exclude, is unreachable (COPY ABORTED 0D/02) — never a device
//! the initiator may not use (CVE-2020-28374); refusals are logged.

use std::sync::Arc;

use crate::device::inventory::{Inventory, LookupError};
use crate::device::ScsiDevice;
use crate::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier};

use super::run::Resolve;
use crate::command::Nexus;

impl Resolve for Inventory {
    fn resolve(&self, cscd: &CscdDescriptor, nexus: &Nexus) -> Option<Arc<dyn ScsiDevice>> {
        let initiator = nexus.initiator.as_str();
        let found = match &cscd.identifier {
            CscdIdentifier::Identification { designator } => {
                self.find_by_designator(designator, initiator)
            }
            CscdIdentifier::FcNPortName { lun, n_port_name } => {
                self.find_by_fc_port_name(*n_port_name, *lun, initiator)
            }
            CscdIdentifier::FcNPortId { lun, n_port_id } => {
                self.find_by_fc_port_id(*n_port_id, *lun, initiator)
            }
            CscdIdentifier::FcNPortIdWithName {
                lun,
                n_port_name,
                n_port_id,
            } => self
                .find_by_fc_port_id(*n_port_id, *lun, initiator)
                .and_then(|d| match d.config.fc_port_name {
                    Some(name) if name == *n_port_name => Ok(d),
                    _ => Err(LookupError::NotFound),
                }),
            CscdIdentifier::SasSsp { lun, sas_address } => {
                self.find_by_sas_address(*sas_address, *lun, initiator)
            }
            _ => Err(LookupError::NotFound),
        };
        match found {
            Ok(d) => Some(d.device.clone()),
            Err(e @ LookupError::NotAllowed { .. }) => {
                tracing::warn!(
                    cscd = cscd.identifier.type_name(),
                    names = %cscd.identifier,
                    initiator,
                    "refused CSCD: {e}"
                );
                None
            }
            Err(e) => {
                tracing::warn!(
                    cscd = cscd.identifier.type_name(),
                    names = %cscd.identifier,
                    initiator,
                    "unresolved CSCD: {e}"
                );
                None
            }
        }
    }
}
