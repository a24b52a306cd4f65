//! The one set of copy-manager limits.
//!
//! They flow config -> VPD 8Fh (SPC-4 7.8.17) -> RECEIVE COPY RESULTS OPERATING PARAMETERS
//! (SPC-3 6.18.4) -> parameter-list validation, so that what is advertised is what is
//! enforced (ESXi and libiscsi's DescrLimits read these and act on them).

use serde::{Deserialize, Serialize};

/// Copy-manager limits. Defaults are generous: 64 CSCDs, 1024 segments, a 64 KiB descriptor
/// list and 1 MiB of inline data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// MAXIMUM CSCD DESCRIPTOR COUNT.
    pub max_cscd_descriptors: u16,
    /// MAXIMUM SEGMENT DESCRIPTOR COUNT.
    pub max_segment_descriptors: u16,
    /// MAXIMUM DESCRIPTOR LIST LENGTH: CSCD plus segment descriptor bytes (inline data
    /// excluded, embedded data included).
    pub max_descriptor_list_length: u32,
    /// MAXIMUM SEGMENT LENGTH: bytes one segment may write, pad excluded; 0 = no limit.
    pub max_segment_length: u32,
    /// MAXIMUM INLINE DATA LENGTH (segment 04h).
    pub max_inline_data_length: u32,
    /// HELD DATA LIMIT: bytes kept for RECEIVE DATA from 0Bh-0Fh segments.
    pub held_data_limit: u32,
    /// MAXIMUM STREAM DEVICE TRANSFER SIZE: bytes in one stream READ or WRITE.
    pub max_stream_device_transfer_size: u32,
    /// TOTAL CONCURRENT COPIES (all LIST ID USAGE values).
    pub total_concurrent_copies: u16,
    /// MAXIMUM CONCURRENT COPIES (LIST ID USAGE 00b and 10b).
    pub max_concurrent_copies: u8,
    /// DATA SEGMENT GRANULARITY, log2 bytes.
    pub data_segment_granularity_log2: u8,
    /// INLINE DATA GRANULARITY, log2 bytes.
    pub inline_data_granularity_log2: u8,
    /// HELD DATA GRANULARITY, log2 bytes.
    pub held_data_granularity_log2: u8,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_cscd_descriptors: 64,
            max_segment_descriptors: 1024,
            max_descriptor_list_length: 64 * 1024,
            max_segment_length: 1 << 30,
            max_inline_data_length: 1 << 20,
            held_data_limit: 1 << 20,
            max_stream_device_transfer_size: 16 << 20,
            total_concurrent_copies: 64,
            max_concurrent_copies: 64,
            data_segment_granularity_log2: 0,
            inline_data_granularity_log2: 0,
            held_data_granularity_log2: 0,
        }
    }
}

/// Every descriptor type code this copy manager implements: the segment codes, then the CSCD
/// codes. OPERATING PARAMETERS' implemented descriptor list and VPD 8Fh's Supported
/// Descriptors both report this.
pub fn implemented_descriptor_types() -> Vec<u8> {
    SUPPORTED_SEGMENT_TYPES
        .iter()
        .chain(SUPPORTED_CSCD_TYPES)
        .copied()
        .collect()
}

/// Segment descriptor type codes this copy manager implements, in code order (advertised in
/// OPERATING PARAMETERS and VPD 8Fh "Supported Descriptors").
pub const SUPPORTED_SEGMENT_TYPES: &[u8] = &[
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
];

/// CSCD descriptor type codes the codec decodes (SPC-3 Table 35: E0h-EAh).
pub const ALL_CSCD_TYPES: &[u8] = &[
    0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea,
];

/// CSCD descriptor type codes this copy manager implements: those it can resolve to a
/// device in its inventory (E4h by VPD 83h designator, E0h-E2h by FC port name / port ID
/// and LUN, E9h by SAS address). The others decode, but a list naming them is refused with
/// 26/07 rather than accepted and then failed as unreachable.
pub const SUPPORTED_CSCD_TYPES: &[u8] = &[0xe0, 0xe1, 0xe2, 0xe4, 0xe9];

/// Whether LIST ID USAGE 11b (no list identifier) is supported: SNLID in OPERATING PARAMETERS.
pub const SNLID: bool = true;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_meet_the_promise_and_libiscsi_descr_limits() {
        let l = Limits::default();
        assert!(l.max_cscd_descriptors >= 64);
        assert!(l.max_segment_descriptors >= 1024);
        assert!(l.max_descriptor_list_length >= 64 * 1024);
        assert!(l.max_inline_data_length >= 1 << 20);
        // libiscsi DescrLimits needs room for maxT+1 CSCDs plus a segment, and for one CSCD
        // plus maxS+1 segments, inside MAXIMUM DESCRIPTOR LIST LENGTH (spec Part A 7).
        let t = u32::from(l.max_cscd_descriptors) + 1;
        let s = u32::from(l.max_segment_descriptors) + 1;
        assert!(l.max_descriptor_list_length >= t * 32 + 28);
        assert!(l.max_descriptor_list_length >= 32 + s * 28);
    }

    #[test]
    fn parses_from_toml_with_defaults() {
        let l: Limits = toml::from_str("max_segment_descriptors = 8").unwrap();
        assert_eq!(l.max_segment_descriptors, 8);
        assert_eq!(l.max_cscd_descriptors, 64);
        assert!(toml::from_str::<Limits>("bogus = 1").is_err());
    }
}
