//! Designators of emulated devices: configured ones, or one derived from the installation
//! and the device's name.
//!
//! An emulated device without a designator gets a derived one: NAA 6 (IEEE Registered
//! Extended, 16 bytes) with COMPANY_ID 025843h — a locally administered identifier (AAI
//! quadrant: X bit set, Y/Z clear), so no vendor's OUI is borrowed — followed by the low
//! 100 bits of a 128-bit FNV-1a hash of `"xcopyd:" + installation + ":" + name`, where
//! installation is the hex of 16 random bytes made once per state directory
//! ([`crate::state::installation_id`], the config's `[daemon] state_dir` or the default).
//! Stable across runs and builds of one installation, different on another host whose
//! config names a device the same (one SAN never sees two LUNs with one NAA); it changes if
//! the device is renamed or the state directory is lost. Configure one explicitly for a
//! device that initiators remember, or that moves between hosts.
//!

use super::DeviceConfig;
use crate::scsi::designator::{self, Designator};

/// The derived designator of an emulated device named `name` in the installation
/// `installation` (see the module doc). `None` (devices built in code, not from a config
/// file: tests and wrappers) derives from the name alone.
pub fn derived_designator(installation: Option<&[u8; 16]>, name: &str) -> Designator {
    let seed = match installation {
        Some(id) => format!("xcopyd:{}:{name}", hex::encode(id)),
        None => format!("xcopyd:{name}"),
    };
    let h = fnv1a_128(seed.as_bytes());
    let mask = (1u128 << 100) - 1;
    let value = (6u128 << 124) | (0x02_5843u128 << 100) | (h & mask);
    Designator::logical_unit(
        designator::designator_type::NAA,
        designator::code_set::BINARY,
        value.to_be_bytes().to_vec(),
    )
}

fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u128::from(b)).wrapping_mul(PRIME))
}

/// Configured designators (or derived ones, filled in when the config file was read), or
/// for a device built in code without any, the one derived from its name alone.
pub(crate) fn emulated_designators(c: &DeviceConfig) -> Vec<Designator> {
    if c.designators.is_empty() {
        vec![derived_designator(None, &c.name)]
    } else {
        c.designators.clone()
    }
}
