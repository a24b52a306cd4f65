//! RECEIVE COPY RESULTS (84h) for an LID1 copy manager: the CDB and the four parameter data
//! pages it returns (SPC-3 6.17; SPC-4 renamed them COPY STATUS(LID1), RECEIVE DATA(LID1),
//! OPERATING PARAMETERS and FAILED SEGMENT DETAILS(LID1)); layouts as in
//! `shared/spec/xcopy-lid1.md` Part A 5, cross-checked with sg3_utils `sg_copy_results.c`.
//!
//! ```text
//! CDB   0 84h | 1 bits 4-0 SERVICE ACTION | 2 LIST IDENTIFIER | 10-13 ALLOCATION LENGTH | 15 CONTROL
//! 00h COPY STATUS            0-3 AVAILABLE DATA (8) | 4 HDD, COPY MANAGER STATUS
//!                            5-6 SEGMENTS PROCESSED | 7 TRANSFER COUNT UNITS | 8-11 TRANSFER COUNT
//! 01h RECEIVE DATA           0-3 AVAILABLE DATA | 4.. held data
//! 03h OPERATING PARAMETERS   0-3 AVAILABLE DATA | 4 SNLID | 8-39 limits | 43 list length | 44.. codes
//! 04h FAILED SEGMENT DETAILS 0-3 AVAILABLE DATA (0 = nothing held) | 56 EXTENDED COPY COMMAND
//!                            STATUS | 58-59 SENSE DATA LENGTH | 60.. sense data
//! ```
//!
//! Every page's AVAILABLE DATA counts the bytes after itself: the page length minus 4, the
//! standard's "n - 3" (SPC-2 r20 says so for OPERATING PARAMETERS; FreeBSD `ctl_tpc.c`, LIO
//! and libiscsi agree; libiscsi wants at least 8 for COPY STATUS and 40 for OPERATING
//! PARAMETERS). Decoders need the whole page AVAILABLE DATA announces (a shorter buffer is
//! [`Reason::Truncated`], so the caller can ask again with a larger allocation length) and
//! ignore bytes past it.

use super::codes::Opcode;
use super::error::{DecodeError, Reason};
use super::limits::{self, Limits};
use super::reader::{Put, Reader};

/// The LID1 service actions of RECEIVE COPY RESULTS. The LID4 ones (05h-08h) and 02h are
/// refused with INVALID FIELD IN CDB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceAction {
    /// 00h COPY STATUS.
    CopyStatus,
    /// 01h RECEIVE DATA.
    ReceiveData,
    /// 03h OPERATING PARAMETERS.
    OperatingParameters,
    /// 04h FAILED SEGMENT DETAILS.
    FailedSegmentDetails,
}

impl ServiceAction {
    /// Every service action this module implements, in code order.
    pub const ALL: [Self; 4] = [
        Self::CopyStatus,
        Self::ReceiveData,
        Self::OperatingParameters,
        Self::FailedSegmentDetails,
    ];

    /// The SERVICE ACTION code.
    pub const fn code(self) -> u8 {
        match self {
            Self::CopyStatus => 0x00,
            Self::ReceiveData => 0x01,
            Self::OperatingParameters => 0x03,
            Self::FailedSegmentDetails => 0x04,
        }
    }

    /// The service action with this code, if it is one of ours.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|sa| sa.code() == code)
    }
}

/// A decoded RECEIVE COPY RESULTS CDB (16 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiveCopyResultsCdb {
    pub service_action: ServiceAction,
    /// LIST IDENTIFIER of the EXTENDED COPY asked about (reserved for OPERATING PARAMETERS).
    pub list_identifier: u8,
    pub allocation_length: u32,
    pub control: u8,
}

impl ReceiveCopyResultsCdb {
    /// Decodes a 16-byte CDB. A service action other than 00h, 01h, 03h or 04h is INVALID
    /// FIELD IN CDB at byte 1 bit 4; reserved bytes are not checked.
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(cdb);
        if r.u8()? != Opcode::RECEIVE_COPY_RESULTS.0 {
            return Err(DecodeError::new(Reason::InvalidFieldInCdb, 0));
        }
        let service_action = ServiceAction::from_code(r.u8()? & 0x1f)
            .ok_or_else(|| DecodeError::new(Reason::InvalidFieldInCdb, 1).with_bit(4))?;
        let list_identifier = r.u8()?;
        r.skip(7)?;
        let allocation_length = r.u32()?;
        r.skip(1)?;
        let control = r.u8()?;
        Ok(Self {
            service_action,
            list_identifier,
            allocation_length,
            control,
        })
    }

    pub fn encode(&self) -> [u8; 16] {
        let [a, b, c, d] = self.allocation_length.to_be_bytes();
        [
            Opcode::RECEIVE_COPY_RESULTS.0,
            self.service_action.code(),
            self.list_identifier,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            a,
            b,
            c,
            d,
            0,
            self.control,
        ]
    }
}

/// COPY MANAGER STATUS (byte 4 bits 6-0 of COPY STATUS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CopyManagerStatus {
    /// 00h: the EXTENDED COPY is still running.
    InProgress,
    /// 01h: completed without errors.
    Completed,
    /// 02h: completed with errors.
    CompletedWithErrors,
    /// Any other (reserved) 7-bit value, kept as received. Values 00h-02h are never decoded
    /// into this variant; bit 7 is dropped when encoding.
    Reserved(u8),
}

impl CopyManagerStatus {
    pub fn from_code(code: u8) -> Self {
        match code & 0x7f {
            0x00 => Self::InProgress,
            0x01 => Self::Completed,
            0x02 => Self::CompletedWithErrors,
            other => Self::Reserved(other),
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Self::InProgress => 0x00,
            Self::Completed => 0x01,
            Self::CompletedWithErrors => 0x02,
            Self::Reserved(code) => code & 0x7f,
        }
    }
}

/// TRANSFER COUNT UNITS values (spec Part B 5, from FreeBSD's `RCS_TC_*`).
pub mod transfer_count_units {
    pub const BYTES: u8 = 0x00;
    pub const KIBIBYTES: u8 = 0x01;
    pub const MEBIBYTES: u8 = 0x02;
    pub const GIBIBYTES: u8 = 0x03;
    pub const TEBIBYTES: u8 = 0x04;
    pub const PEBIBYTES: u8 = 0x05;
    pub const EXBIBYTES: u8 = 0x06;
    /// Logical blocks of the copy destination.
    pub const DESTINATION_LOGICAL_BLOCKS: u8 = 0xf1;
}

/// 00h COPY STATUS parameter data (12 bytes, AVAILABLE DATA 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CopyStatus {
    /// HDD: held data was discarded (more than HELD DATA LIMIT, or under resource pressure).
    pub held_data_discarded: bool,
    pub status: CopyManagerStatus,
    pub segments_processed: u16,
    /// TRANSFER COUNT UNITS ([`transfer_count_units`]).
    pub transfer_count_units: u8,
    pub transfer_count: u32,
}

impl CopyStatus {
    /// AVAILABLE DATA of this page: the 8 bytes after the field.
    const AVAILABLE_DATA: u32 = 8;

    /// TRANSFER COUNT UNITS and TRANSFER COUNT for `bytes`: bytes while they fit 32 bits,
    /// else the smallest binary multiple (KiB, MiB, ...) that fits, rounded down so the count
    /// never overstates what was transferred.
    pub fn scaled_transfer_count(bytes: u64) -> (u8, u32) {
        let mut units = transfer_count_units::BYTES;
        let mut count = bytes;
        while count > u64::from(u32::MAX) {
            count >>= 10;
            units += 1;
        }
        // Four shifts by 10 bring any u64 below 2^32, so `units` stays at or below TiB.
        (units, u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// The transfer count in bytes, for the byte-multiple units (00h-06h); None for logical
    /// blocks, reserved units, or a count that overflows 64 bits.
    pub fn transferred_bytes(&self) -> Option<u64> {
        if self.transfer_count_units > transfer_count_units::EXBIBYTES {
            return None;
        }
        u64::from(self.transfer_count).checked_mul(1u64 << (10 * self.transfer_count_units))
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(Self::AVAILABLE_DATA);
        out.put_u8((u8::from(self.held_data_discarded) << 7) | self.status.code());
        out.put_u16(self.segments_processed);
        out.put_u8(self.transfer_count_units);
        out.put_u32(self.transfer_count);
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = available_data(bytes)?;
        let b4 = r.u8()?;
        Ok(Self {
            held_data_discarded: b4 & 0x80 != 0,
            status: CopyManagerStatus::from_code(b4),
            segments_processed: r.u16()?,
            transfer_count_units: r.u8()?,
            transfer_count: r.u32()?,
        })
    }
}

/// 01h RECEIVE DATA parameter data: the data held by 0Bh-0Fh segments.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ReceiveData {
    pub held: Vec<u8>,
}

impl ReceiveData {
    /// AVAILABLE DATA is the held data's length. Held data past 4 GiB - 1 (far above any
    /// HELD DATA LIMIT) is not sent.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let len = u32::try_from(self.held.len()).unwrap_or(u32::MAX);
        out.put_u32(len);
        out.extend_from_slice(self.held.get(..len as usize).unwrap_or(&self.held));
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(Self {
            held: available_data(bytes)?.rest().to_vec(),
        })
    }
}

/// 03h OPERATING PARAMETERS parameter data: the copy manager's limits and the descriptor
/// type codes it implements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatingParameters {
    /// SNLID: LIST ID USAGE 11b (no list identifier) is supported.
    pub snlid: bool,
    /// Bytes 8-39. MAXIMUM CONCURRENT COPIES and the granularities are one byte each, as
    /// in [`Limits`].
    pub limits: Limits,
    /// IMPLEMENTED DESCRIPTOR LIST: segment then CSCD descriptor type codes (at most 255).
    pub implemented_descriptors: Vec<u8>,
}

impl From<&Limits> for OperatingParameters {
    /// What this copy manager advertises: the configured limits, [`limits::SNLID`] and
    /// [`limits::implemented_descriptor_types`].
    fn from(limits: &Limits) -> Self {
        Self {
            snlid: limits::SNLID,
            limits: limits.clone(),
            implemented_descriptors: limits::implemented_descriptor_types(),
        }
    }
}

impl OperatingParameters {
    /// Bytes before the implemented descriptor type codes.
    const FIXED_LENGTH: usize = 44;

    /// Encodes the page; a descriptor list longer than 255 codes is cut to 255.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let codes = self
            .implemented_descriptors
            .get(..usize::from(u8::MAX))
            .unwrap_or(&self.implemented_descriptors);
        let l = &self.limits;
        // At most 44 + 255 bytes: the cast cannot truncate.
        out.put_u32((Self::FIXED_LENGTH + codes.len() - 4) as u32);
        out.put_u8(u8::from(self.snlid));
        out.put_zeros(3);
        out.put_u16(l.max_cscd_descriptors);
        out.put_u16(l.max_segment_descriptors);
        out.put_u32(l.max_descriptor_list_length);
        out.put_u32(l.max_segment_length);
        out.put_u32(l.max_inline_data_length);
        out.put_u32(l.held_data_limit);
        out.put_u32(l.max_stream_device_transfer_size);
        out.put_zeros(2);
        out.put_u16(l.total_concurrent_copies);
        out.put_u8(l.max_concurrent_copies);
        out.put_u8(l.data_segment_granularity_log2);
        out.put_u8(l.inline_data_granularity_log2);
        out.put_u8(l.held_data_granularity_log2);
        out.put_zeros(3);
        out.put_u8(codes.len() as u8);
        out.extend_from_slice(codes);
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = available_data(bytes)?;
        let snlid = r.u8()? & 0x01 != 0;
        r.skip(3)?;
        let max_cscd_descriptors = r.u16()?;
        let max_segment_descriptors = r.u16()?;
        let max_descriptor_list_length = r.u32()?;
        let max_segment_length = r.u32()?;
        let max_inline_data_length = r.u32()?;
        let held_data_limit = r.u32()?;
        let max_stream_device_transfer_size = r.u32()?;
        r.skip(2)?;
        let limits = Limits {
            max_cscd_descriptors,
            max_segment_descriptors,
            max_descriptor_list_length,
            max_segment_length,
            max_inline_data_length,
            held_data_limit,
            max_stream_device_transfer_size,
            total_concurrent_copies: r.u16()?,
            max_concurrent_copies: r.u8()?,
            data_segment_granularity_log2: r.u8()?,
            inline_data_granularity_log2: r.u8()?,
            held_data_granularity_log2: r.u8()?,
        };
        r.skip(3)?;
        let count = r.u8()?;
        Ok(Self {
            snlid,
            limits,
            implemented_descriptors: r.take(usize::from(count))?.to_vec(),
        })
    }
}

/// 04h FAILED SEGMENT DETAILS parameter data for an EXTENDED COPY that ended in CHECK
/// CONDITION. When nothing is held for the list identifier the page is just AVAILABLE DATA
/// = 0 ([`FailedSegmentDetails::encode_none`]), and decoding gives `None`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FailedSegmentDetails {
    /// EXTENDED COPY COMMAND STATUS: the status the EXTENDED COPY ended with.
    pub command_status: u8,
    /// The sense data returned with it (at most 65535 bytes are sent).
    pub sense: Vec<u8>,
}

impl FailedSegmentDetails {
    /// Offset of the sense data.
    const SENSE_OFFSET: usize = 60;

    pub fn encode(&self, out: &mut Vec<u8>) {
        let sense = self
            .sense
            .get(..usize::from(u16::MAX))
            .unwrap_or(&self.sense);
        // At most 60 + 65535 bytes: the casts cannot truncate.
        out.put_u32((Self::SENSE_OFFSET + sense.len() - 4) as u32);
        out.put_zeros(52);
        out.put_u8(self.command_status);
        out.put_u8(0);
        out.put_u16(sense.len() as u16);
        out.extend_from_slice(sense);
    }

    /// The page for a list identifier with no failed segment details held.
    pub fn encode_none(out: &mut Vec<u8>) {
        out.put_u32(0);
    }

    /// `None` when AVAILABLE DATA is 0 (nothing held; any zero fill after it is ignored).
    pub fn decode(bytes: &[u8]) -> Result<Option<Self>, DecodeError> {
        let mut r = available_data(bytes)?;
        if r.is_empty() {
            return Ok(None);
        }
        r.skip(52)?;
        let command_status = r.u8()?;
        r.skip(1)?;
        let len = r.u16()?;
        Ok(Some(Self {
            command_status,
            sense: r.take(usize::from(len))?.to_vec(),
        }))
    }
}

/// The bytes AVAILABLE DATA announces, as a reader positioned at byte 4 of the page.
fn available_data(bytes: &[u8]) -> Result<Reader<'_>, DecodeError> {
    let mut r = Reader::new(bytes);
    let available = r.u32()?;
    r.sub(usize::try_from(available).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::super::fuzzing::encoded;
    use super::*;

    #[test]
    fn cdb_fields_and_service_actions() {
        let bytes = [
            0x84, 0x03, 0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x04, 0x00, 0, 0,
        ];
        let cdb = ReceiveCopyResultsCdb::decode(&bytes).unwrap();
        assert_eq!(
            cdb,
            ReceiveCopyResultsCdb {
                service_action: ServiceAction::OperatingParameters,
                list_identifier: 7,
                allocation_length: 1024,
                control: 0,
            }
        );
        assert_eq!(cdb.encode(), bytes);
        for sa in [0x02, 0x05, 0x06, 0x07, 0x08, 0x1f] {
            let mut b = bytes;
            b[1] = sa;
            let e = ReceiveCopyResultsCdb::decode(&b).unwrap_err();
            assert_eq!(
                (e.reason, e.offset, e.bit),
                (Reason::InvalidFieldInCdb, 1, Some(4))
            );
        }
        let e = ReceiveCopyResultsCdb::decode(&[0x83; 16]).unwrap_err();
        assert_eq!((e.reason, e.offset), (Reason::InvalidFieldInCdb, 0));
        assert_eq!(
            ReceiveCopyResultsCdb::decode(&bytes[..15])
                .unwrap_err()
                .reason,
            Reason::Truncated
        );
    }

    #[test]
    fn copy_status_layout() {
        let cs = CopyStatus {
            held_data_discarded: true,
            status: CopyManagerStatus::CompletedWithErrors,
            segments_processed: 0x0102,
            transfer_count_units: transfer_count_units::MEBIBYTES,
            transfer_count: 0x0a0b0c0d,
        };
        let bytes = encoded(|o| cs.encode(o));
        assert_eq!(bytes, [0, 0, 0, 8, 0x82, 1, 2, 2, 0x0a, 0x0b, 0x0c, 0x0d]);
        assert_eq!(CopyStatus::decode(&bytes).unwrap(), cs);
        // A buffer larger than the page (allocation length > 12) is fine.
        let mut padded = bytes.clone();
        padded.resize(64, 0);
        assert_eq!(CopyStatus::decode(&padded).unwrap(), cs);
        assert_eq!(
            CopyStatus::decode(&bytes[..11]).unwrap_err().reason,
            Reason::Truncated
        );
        // libiscsi rejects AVAILABLE DATA below 8; so do we.
        assert!(CopyStatus::decode(&[0, 0, 0, 4, 1, 0, 0, 0]).is_err());
        assert_eq!(
            CopyStatus::decode(&[0, 0, 0, 8, 0x7f, 0, 0, 0, 0, 0, 0, 0])
                .unwrap()
                .status,
            CopyManagerStatus::Reserved(0x7f)
        );
    }

    #[test]
    fn transfer_count_units_fit_32_bits() {
        use transfer_count_units::*;
        for (bytes, want) in [
            (0, (BYTES, 0)),
            (u64::from(u32::MAX), (BYTES, u32::MAX)),
            (1 << 32, (KIBIBYTES, 1 << 22)),
            ((1 << 42) - 1, (KIBIBYTES, u32::MAX)),
            (1 << 42, (MEBIBYTES, 1 << 22)),
            (3 << 50, (MEBIBYTES, 3 << 30)),
            (1 << 53, (GIBIBYTES, 1 << 23)),
            (u64::MAX, (TEBIBYTES, (1 << 24) - 1)),
        ] {
            assert_eq!(CopyStatus::scaled_transfer_count(bytes), want, "{bytes}");
        }
        let cs = CopyStatus {
            held_data_discarded: false,
            status: CopyManagerStatus::Completed,
            segments_processed: 1,
            transfer_count_units: MEBIBYTES,
            transfer_count: 3,
        };
        assert_eq!(cs.transferred_bytes(), Some(3 << 20));
        let blocks = CopyStatus {
            transfer_count_units: DESTINATION_LOGICAL_BLOCKS,
            ..cs
        };
        assert_eq!(blocks.transferred_bytes(), None);
        let huge = CopyStatus {
            transfer_count_units: EXBIBYTES,
            transfer_count: 16,
            ..cs
        };
        assert_eq!(huge.transferred_bytes(), None);
        // 06h (EiB) is the largest byte unit: 15 of them still fit 64 bits.
        let most = CopyStatus {
            transfer_count: 15,
            ..huge
        };
        assert_eq!(most.transferred_bytes(), Some(15 << 60));
    }

    #[test]
    fn receive_data_available_data_is_the_held_length() {
        let rd = ReceiveData {
            held: vec![1, 2, 3, 4, 5],
        };
        let bytes = encoded(|o| rd.encode(o));
        assert_eq!(bytes, [0, 0, 0, 5, 1, 2, 3, 4, 5]);
        assert_eq!(ReceiveData::decode(&bytes).unwrap(), rd);
        assert_eq!(
            ReceiveData::decode(&[0, 0, 0, 0]).unwrap(),
            ReceiveData::default()
        );
        assert!(ReceiveData::decode(&bytes[..8]).is_err());
    }

    #[test]
    fn operating_parameters_come_from_limits() {
        let limits = Limits::default();
        let op = OperatingParameters::from(&limits);
        let bytes = encoded(|o| op.encode(o));
        let n = limits::SUPPORTED_SEGMENT_TYPES.len() + limits::SUPPORTED_CSCD_TYPES.len();
        assert_eq!(bytes.len(), 44 + n);
        // AVAILABLE DATA = n - 3 with n the last byte's index; libiscsi wants >= 40.
        assert_eq!(bytes[..4], ((44 + n - 4) as u32).to_be_bytes());
        assert_eq!(bytes[4], u8::from(limits::SNLID));
        assert_eq!(bytes[8..10], limits.max_cscd_descriptors.to_be_bytes());
        assert_eq!(bytes[10..12], limits.max_segment_descriptors.to_be_bytes());
        assert_eq!(
            bytes[12..16],
            limits.max_descriptor_list_length.to_be_bytes()
        );
        assert_eq!(bytes[16..20], limits.max_segment_length.to_be_bytes());
        assert_eq!(bytes[20..24], limits.max_inline_data_length.to_be_bytes());
        assert_eq!(bytes[24..28], limits.held_data_limit.to_be_bytes());
        assert_eq!(
            bytes[28..32],
            limits.max_stream_device_transfer_size.to_be_bytes()
        );
        assert_eq!(bytes[34..36], limits.total_concurrent_copies.to_be_bytes());
        assert_eq!(bytes[36], limits.max_concurrent_copies);
        assert_eq!(bytes[43] as usize, n);
        assert_eq!(
            &bytes[44..44 + limits::SUPPORTED_SEGMENT_TYPES.len()],
            limits::SUPPORTED_SEGMENT_TYPES
        );
        assert_eq!(bytes.last(), limits::SUPPORTED_CSCD_TYPES.last());
        assert_eq!(OperatingParameters::decode(&bytes).unwrap(), op);
    }

    #[test]
    fn operating_parameters_match_lio_offsets() {
        // LIO's page (target_core_xcopy.c): maxT 2, maxS 1, list 1024, segment 256 MiB,
        // concurrency 1/1, granularities 2^9, codes 02h and E4h, AVAILABLE DATA 42.
        let mut lio = vec![0u8; 46];
        lio[3] = 42;
        lio[4] = 1;
        lio[9] = 2;
        lio[11] = 1;
        lio[12..16].copy_from_slice(&1024u32.to_be_bytes());
        lio[16..20].copy_from_slice(&(256u32 << 20).to_be_bytes());
        lio[35] = 1;
        lio[36] = 1;
        lio[37..40].copy_from_slice(&[9, 9, 9]);
        lio[43] = 2;
        lio[44..46].copy_from_slice(&[0x02, 0xe4]);
        let op = OperatingParameters::decode(&lio).unwrap();
        assert!(op.snlid);
        assert_eq!(op.limits.max_cscd_descriptors, 2);
        assert_eq!(op.limits.max_segment_length, 256 << 20);
        assert_eq!(op.limits.held_data_granularity_log2, 9);
        assert_eq!(op.implemented_descriptors, [0x02, 0xe4]);
        assert_eq!(encoded(|o| op.encode(o)), lio);
    }

    #[test]
    fn failed_segment_details_layout() {
        let fsd = FailedSegmentDetails {
            command_status: 0x02,
            sense: vec![0x70, 0, 0x0a, 0, 0, 0, 0, 10],
        };
        let bytes = encoded(|o| fsd.encode(o));
        assert_eq!(bytes.len(), 68);
        assert_eq!(bytes[..4], [0, 0, 0, 64]);
        assert!(bytes[4..56].iter().all(|&b| b == 0));
        assert_eq!(bytes[56..60], [0x02, 0, 0, 8]);
        assert_eq!(bytes[60..], fsd.sense[..]);
        assert_eq!(FailedSegmentDetails::decode(&bytes).unwrap(), Some(fsd));
        let none = encoded(FailedSegmentDetails::encode_none);
        assert_eq!(none, [0, 0, 0, 0]);
        assert_eq!(FailedSegmentDetails::decode(&none).unwrap(), None);
        // FreeBSD sends the 60-byte page zeroed when nothing is held.
        assert_eq!(FailedSegmentDetails::decode(&[0; 60]).unwrap(), None);
        assert!(FailedSegmentDetails::decode(&bytes[..67]).is_err());
    }
}
