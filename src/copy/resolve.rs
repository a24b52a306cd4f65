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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::inventory::InventoryConfig;
    use crate::scsi::target_descriptor::DeviceParameters;

    fn cscd(identifier: CscdIdentifier) -> CscdDescriptor {
        CscdDescriptor {
            nul: false,
            peripheral_device_type: 0,
            relative_initiator_port: 0,
            identifier,
            parameters: DeviceParameters::Block {
                pad: false,
                block_length: 512,
            },
        }
    }

    #[test]
    fn each_identifier_type_finds_its_device_and_only_it() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[[device]]\nname = \"a\"\nkind = \"disk\"\npath = \"a.img\"\nsize = \"1MiB\"\n\
            designator = \"naa.5001405a1b2c3d01\"\nfc_port_name = \"0x500140512345678a\"\n\
            fc_port_id = \"0x010203\"\nlun = 3\nsas_address = \"0x500140512345678b\"\n\
            [[device]]\nname = \"b\"\nkind = \"disk\"\npath = \"b.img\"\nsize = \"1MiB\"\n\
            designator = \"naa.5001405a1b2c3d02\"\nfc_port_name = \"0x500140512345678c\"\n\
            fc_port_id = \"0x010204\"\nsas_address = \"0x500140512345678d\"\n";
        let config = InventoryConfig::parse(text, dir.path()).unwrap();
        let inventory = Inventory::open(&config).unwrap();
        let nexus = Nexus::local();
        let name = |id| {
            inventory
                .resolve(&cscd(id), &nexus)
                .map(|d| d.name().to_string())
        };
        let (wwpn_a, wwpn_b) = (0x5001_4051_2345_678a, 0x5001_4051_2345_678c);
        assert_eq!(
            name(CscdIdentifier::Identification {
                designator: inventory.by_name("b").unwrap().designators[0].clone()
            })
            .as_deref(),
            Some("b")
        );
        for (lun, wwpn, want) in [
            (3, wwpn_a, Some("a")),
            (0, wwpn_b, Some("b")),
            (0, wwpn_a, None),
        ] {
            let got = name(CscdIdentifier::FcNPortName {
                lun,
                n_port_name: wwpn,
            });
            assert_eq!(got.as_deref(), want, "E0h {wwpn:x} lun {lun}");
        }
        for (lun, id, want) in [
            (3, 0x010203, Some("a")),
            (0, 0x010204, Some("b")),
            (3, 0x010204, None),
        ] {
            let got = name(CscdIdentifier::FcNPortId { lun, n_port_id: id });
            assert_eq!(got.as_deref(), want, "E1h {id:x} lun {lun}");
        }
        // E2h: the port id finds the device, and its port name must match as well.
        for (id, wwpn, want) in [(0x010203, wwpn_a, Some("a")), (0x010203, wwpn_b, None)] {
            let got = name(CscdIdentifier::FcNPortIdWithName {
                lun: 3,
                n_port_name: wwpn,
                n_port_id: id,
            });
            assert_eq!(got.as_deref(), want, "E2h {id:x} {wwpn:x}");
        }
        for (lun, sas, want) in [
            (3, 0x5001_4051_2345_678b, Some("a")),
            (0, 0x5001_4051_2345_678d, Some("b")),
        ] {
            let got = name(CscdIdentifier::SasSsp {
                lun,
                sas_address: sas,
            });
            assert_eq!(got.as_deref(), want, "E9h {sas:x} lun {lun}");
        }
        assert_eq!(
            name(CscdIdentifier::Alias { lun: 0, alias: 1 }),
            None,
            "an alias names nothing here"
        );
    }
}
