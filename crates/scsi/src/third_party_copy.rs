//! The Third-party Copy VPD page (8Fh; SPC-4 7.8.17) of an EXTENDED COPY (LID1) copy
//! manager: the page body is a list of third-party copy descriptors, each a 2-byte DESCRIPTOR
//! TYPE, a 2-byte DESCRIPTOR LENGTH (bytes after byte 3) and a body padded to a multiple of 4.
//!
//! ```text
//! 0001h Supported Commands        4 list length | {opcode, SA count, SAs...}...
//! 0004h Parameter Data (1Ch)      8-9 max CSCD descriptors | 10-11 max segment descriptors
//!                                 12-15 max descriptor list length | 16-19 max inline data length
//! 0008h Supported Descriptors     4 list length | type codes...
//! 000Ch Supported CSCD IDs        4-5 list length (bytes) | 2-byte IDs...
//! 8001h General Copy Operations   4-7 total concurrent copies | 8-11 max identified concurrent
//!       (20h)                     copies | 12-15 max segment length | 16 data segment
//!                                 granularity | 17 inline data granularity (log2)
//! 9101h Stream Copy Operations    4-7 max stream device transfer size
//!       (1Ch)
//! C001h Held Data (1Ch)           4-7 held data limit | 8 held data granularity (log2)
//! ```
//!
//! Offsets were checked against sg3_utils' `sg_vpd` decoder and FreeBSD `ctl_tpc.c` (which
//! builds 0001h, 0004h, 0008h, 000Ch and 8001h the same way); the 1Ch lengths of 9101h and
//! C001h follow SPC-4 r37. libiscsi's ReceiveCopyResults.CopyStatus test runs only when 0001h
//! lists 84h with service action 00h. The decoder skips descriptor types it does not know.

use super::codes::Opcode;
use super::copy_results::ServiceAction;
use super::error::{DecodeError, Reason};
use super::limits::{self, Limits};
use super::reader::{Put, Reader};
use super::sbc::CommandUsage;

/// DESCRIPTOR TYPE values (SPC-4 7.8.17) this module encodes and decodes.
pub mod descriptor_type {
    pub const SUPPORTED_COMMANDS: u16 = 0x0001;
    pub const PARAMETER_DATA: u16 = 0x0004;
    pub const SUPPORTED_DESCRIPTORS: u16 = 0x0008;
    pub const SUPPORTED_CSCD_DESCRIPTOR_IDS: u16 = 0x000c;
    pub const GENERAL_COPY_OPERATIONS: u16 = 0x8001;
    pub const STREAM_COPY_OPERATIONS: u16 = 0x9101;
    pub const HELD_DATA: u16 = 0xc001;
}

/// The CSCD descriptor IDs above 07FFh this copy manager accepts (spec Part B 1.1): C000h and
/// C001h (null block and stream devices) and FFFFh (the copy manager's own logical unit).
pub const SUPPORTED_CSCD_IDS: &[u16] = &[0xc000, 0xc001, 0xffff];

/// One command support descriptor of 0001h: an operation code and its service actions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SupportedCommand {
    pub opcode: u8,
    pub service_actions: Vec<u8>,
}

/// 0004h Parameter Data: the EXTENDED COPY parameter list limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParameterData {
    pub max_cscd_descriptors: u16,
    pub max_segment_descriptors: u16,
    pub max_descriptor_list_length: u32,
    pub max_inline_data_length: u32,
}

/// 8001h General Copy Operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GeneralCopyOperations {
    pub total_concurrent_copies: u32,
    /// MAXIMUM IDENTIFIED CONCURRENT COPIES (LIST ID USAGE 00b and 10b).
    pub max_identified_concurrent_copies: u32,
    pub max_segment_length: u32,
    pub data_segment_granularity_log2: u8,
    pub inline_data_granularity_log2: u8,
}

/// A third-party copy descriptor this module understands.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ThirdPartyCopyDescriptor {
    /// 0001h. The whole list is at most 255 bytes (2 per command plus its service actions).
    SupportedCommands(Vec<SupportedCommand>),
    /// 0004h.
    ParameterData(ParameterData),
    /// 0008h: segment and CSCD descriptor type codes (at most 255).
    SupportedDescriptors(Vec<u8>),
    /// 000Ch: CSCD descriptor IDs above 07FFh.
    SupportedCscdIds(Vec<u16>),
    /// 8001h.
    GeneralCopyOperations(GeneralCopyOperations),
    /// 9101h: needed for a mover with stream (tape) devices.
    StreamCopyOperations {
        max_stream_device_transfer_size: u32,
    },
    /// C001h: needed when RECEIVE DATA is supported.
    HeldData {
        held_data_limit: u32,
        held_data_granularity_log2: u8,
    },
}

impl ThirdPartyCopyDescriptor {
    /// Largest CSCD ID list whose descriptor, padded, still fits a 16-bit DESCRIPTOR LENGTH.
    const MAX_CSCD_IDS: usize = (0xfffc - 2) / 2;

    pub fn descriptor_type(&self) -> u16 {
        match self {
            Self::SupportedCommands(_) => descriptor_type::SUPPORTED_COMMANDS,
            Self::ParameterData(_) => descriptor_type::PARAMETER_DATA,
            Self::SupportedDescriptors(_) => descriptor_type::SUPPORTED_DESCRIPTORS,
            Self::SupportedCscdIds(_) => descriptor_type::SUPPORTED_CSCD_DESCRIPTOR_IDS,
            Self::GeneralCopyOperations(_) => descriptor_type::GENERAL_COPY_OPERATIONS,
            Self::StreamCopyOperations { .. } => descriptor_type::STREAM_COPY_OPERATIONS,
            Self::HeldData { .. } => descriptor_type::HELD_DATA,
        }
    }

    /// Encodes the descriptor, padded to a multiple of 4. Lists longer than their length
    /// fields allow are cut: whole commands past 255 bytes, codes past 255, IDs past 32765.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(self.descriptor_type());
        out.put_u16(0); // DESCRIPTOR LENGTH, patched below
        match self {
            Self::SupportedCommands(commands) => {
                let mut list = Vec::new();
                for c in commands {
                    let sas = &c.service_actions;
                    if list.len() + 2 + sas.len() > usize::from(u8::MAX) {
                        break;
                    }
                    list.put_u8(c.opcode);
                    list.put_u8(sas.len() as u8);
                    list.extend_from_slice(sas);
                }
                out.put_u8(list.len() as u8);
                out.extend_from_slice(&list);
            }
            Self::ParameterData(p) => {
                out.put_zeros(4);
                out.put_u16(p.max_cscd_descriptors);
                out.put_u16(p.max_segment_descriptors);
                out.put_u32(p.max_descriptor_list_length);
                out.put_u32(p.max_inline_data_length);
                out.put_zeros(12);
            }
            Self::SupportedDescriptors(codes) => {
                let codes = codes.get(..usize::from(u8::MAX)).unwrap_or(codes);
                out.put_u8(codes.len() as u8);
                out.extend_from_slice(codes);
            }
            Self::SupportedCscdIds(ids) => {
                let ids = ids.get(..Self::MAX_CSCD_IDS).unwrap_or(ids);
                out.put_u16((ids.len() * 2) as u16);
                for &id in ids {
                    out.put_u16(id);
                }
            }
            Self::GeneralCopyOperations(g) => {
                out.put_u32(g.total_concurrent_copies);
                out.put_u32(g.max_identified_concurrent_copies);
                out.put_u32(g.max_segment_length);
                out.put_u8(g.data_segment_granularity_log2);
                out.put_u8(g.inline_data_granularity_log2);
                out.put_zeros(18);
            }
            Self::StreamCopyOperations {
                max_stream_device_transfer_size,
            } => {
                out.put_u32(*max_stream_device_transfer_size);
                out.put_zeros(24);
            }
            Self::HeldData {
                held_data_limit,
                held_data_granularity_log2,
            } => {
                out.put_u32(*held_data_limit);
                out.put_u8(*held_data_granularity_log2);
                out.put_zeros(23);
            }
        }
        let padded = (out.len() - start).next_multiple_of(4);
        out.resize(start + padded, 0);
        // Every body above is at most 4 + 0xfffc bytes: the length fits 16 bits.
        let [hi, lo] = ((padded - 4) as u16).to_be_bytes();
        if let Some(len) = out.get_mut(start + 2..start + 4) {
            len.copy_from_slice(&[hi, lo]);
        }
    }

    /// Decodes one descriptor; `Ok(None)` for a descriptor type this module does not know
    /// (it is skipped whole). Padding and reserved bytes after the known fields are ignored.
    pub fn decode(r: &mut Reader<'_>) -> Result<Option<Self>, DecodeError> {
        let kind = r.u16()?;
        let len = r.u16()?;
        let mut d = r.sub(usize::from(len))?;
        let descriptor = match kind {
            descriptor_type::SUPPORTED_COMMANDS => {
                let len = d.u8()?;
                let mut list = d.sub(usize::from(len))?;
                let mut commands = Vec::new();
                while !list.is_empty() {
                    let opcode = list.u8()?;
                    let count = list.u8()?;
                    commands.push(SupportedCommand {
                        opcode,
                        service_actions: list.take(usize::from(count))?.to_vec(),
                    });
                }
                Self::SupportedCommands(commands)
            }
            descriptor_type::PARAMETER_DATA => {
                d.skip(4)?;
                Self::ParameterData(ParameterData {
                    max_cscd_descriptors: d.u16()?,
                    max_segment_descriptors: d.u16()?,
                    max_descriptor_list_length: d.u32()?,
                    max_inline_data_length: d.u32()?,
                })
            }
            descriptor_type::SUPPORTED_DESCRIPTORS => {
                let count = d.u8()?;
                Self::SupportedDescriptors(d.take(usize::from(count))?.to_vec())
            }
            descriptor_type::SUPPORTED_CSCD_DESCRIPTOR_IDS => {
                let at = d.offset();
                let len = d.u16()?;
                if len % 2 != 0 {
                    return Err(DecodeError::new(Reason::InvalidField, at));
                }
                let mut list = d.sub(usize::from(len))?;
                let mut ids = Vec::with_capacity(usize::from(len / 2));
                while !list.is_empty() {
                    ids.push(list.u16()?);
                }
                Self::SupportedCscdIds(ids)
            }
            descriptor_type::GENERAL_COPY_OPERATIONS => {
                Self::GeneralCopyOperations(GeneralCopyOperations {
                    total_concurrent_copies: d.u32()?,
                    max_identified_concurrent_copies: d.u32()?,
                    max_segment_length: d.u32()?,
                    data_segment_granularity_log2: d.u8()?,
                    inline_data_granularity_log2: d.u8()?,
                })
            }
            descriptor_type::STREAM_COPY_OPERATIONS => Self::StreamCopyOperations {
                max_stream_device_transfer_size: d.u32()?,
            },
            descriptor_type::HELD_DATA => Self::HeldData {
                held_data_limit: d.u32()?,
                held_data_granularity_log2: d.u8()?,
            },
            _ => return Ok(None),
        };
        Ok(Some(descriptor))
    }
}

/// The Third-party Copy VPD page: its descriptors in page order. Wrap the body with
/// [`super::inquiry::vpd_page`] and [`super::inquiry::page::THIRD_PARTY_COPY`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ThirdPartyCopyPage {
    pub descriptors: Vec<ThirdPartyCopyDescriptor>,
}

impl From<&Limits> for ThirdPartyCopyPage {
    /// The page of this LID1 copy manager: EXTENDED COPY(LID1) and the RECEIVE COPY RESULTS
    /// service actions it answers, then the same limits and type codes OPERATING PARAMETERS
    /// reports, in DESCRIPTOR TYPE order.
    fn from(limits: &Limits) -> Self {
        Self {
            descriptors: vec![
                ThirdPartyCopyDescriptor::SupportedCommands(vec![
                    SupportedCommand {
                        opcode: Opcode::EXTENDED_COPY.0,
                        service_actions: vec![0x00], // EXTENDED COPY(LID1)
                    },
                    SupportedCommand {
                        opcode: Opcode::RECEIVE_COPY_RESULTS.0,
                        service_actions: ServiceAction::ALL.map(ServiceAction::code).to_vec(),
                    },
                ]),
                ThirdPartyCopyDescriptor::ParameterData(ParameterData {
                    max_cscd_descriptors: limits.max_cscd_descriptors,
                    max_segment_descriptors: limits.max_segment_descriptors,
                    max_descriptor_list_length: limits.max_descriptor_list_length,
                    max_inline_data_length: limits.max_inline_data_length,
                }),
                ThirdPartyCopyDescriptor::SupportedDescriptors(
                    limits::implemented_descriptor_types(),
                ),
                ThirdPartyCopyDescriptor::SupportedCscdIds(SUPPORTED_CSCD_IDS.to_vec()),
                ThirdPartyCopyDescriptor::GeneralCopyOperations(GeneralCopyOperations {
                    total_concurrent_copies: limits.total_concurrent_copies.into(),
                    max_identified_concurrent_copies: limits.max_concurrent_copies.into(),
                    max_segment_length: limits.max_segment_length,
                    data_segment_granularity_log2: limits.data_segment_granularity_log2,
                    inline_data_granularity_log2: limits.inline_data_granularity_log2,
                }),
                ThirdPartyCopyDescriptor::StreamCopyOperations {
                    max_stream_device_transfer_size: limits.max_stream_device_transfer_size,
                },
                ThirdPartyCopyDescriptor::HeldData {
                    held_data_limit: limits.held_data_limit,
                    held_data_granularity_log2: limits.held_data_granularity_log2,
                },
            ],
        }
    }
}

impl ThirdPartyCopyPage {
    /// The page body (everything after PAGE LENGTH).
    pub fn encode_body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for d in &self.descriptors {
            d.encode(&mut out);
        }
        out
    }

    /// Decodes a page body, skipping descriptors of unknown type.
    pub fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let mut descriptors = Vec::new();
        while !r.is_empty() {
            descriptors.extend(ThirdPartyCopyDescriptor::decode(&mut r)?);
        }
        Ok(Self { descriptors })
    }

    /// Whether a Supported Commands descriptor lists `opcode` with `service_action`.
    pub fn supports_command(&self, opcode: u8, service_action: u8) -> bool {
        self.descriptors.iter().any(|d| match d {
            ThirdPartyCopyDescriptor::SupportedCommands(commands) => commands
                .iter()
                .any(|c| c.opcode == opcode && c.service_actions.contains(&service_action)),
            _ => false,
        })
    }
}

/// The commands the copy manager answers on every LUN, whatever the device behind it, with
/// their CDB USAGE DATA for REPORT SUPPORTED OPERATION CODES (SPC-3 6.23): EXTENDED COPY
/// (LID1), RECEIVE COPY RESULTS with the four service actions we implement, and REPORT LUNS.
pub const COPY_MANAGER_COMMANDS: &[CommandUsage] = &[
    CommandUsage {
        opcode: 0x83,
        service_action: None,
        usage: &[
            0x83, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0,
        ],
    },
    rcr(
        0x00,
        &[
            0x84, 0x00, 0xff, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0,
        ],
    ),
    rcr(
        0x01,
        &[
            0x84, 0x01, 0xff, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0,
        ],
    ),
    // OPERATING PARAMETERS: the LIST IDENTIFIER byte is reserved.
    rcr(
        0x03,
        &[
            0x84, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0,
        ],
    ),
    rcr(
        0x04,
        &[
            0x84, 0x04, 0xff, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0,
        ],
    ),
    CommandUsage {
        opcode: 0xa0,
        service_action: None,
        usage: &[0xa0, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0],
    },
];

/// RECEIVE COPY RESULTS with service action `sa`.
const fn rcr(sa: u16, usage: &'static [u8]) -> CommandUsage {
    CommandUsage {
        opcode: 0x84,
        service_action: Some(sa),
        usage,
    }
}

/// A device's command table with [`COPY_MANAGER_COMMANDS`] merged in, in opcode and service
/// action order (the order REPORT SUPPORTED OPERATION CODES lists them in).
pub fn with_copy_manager_commands(device: &[CommandUsage]) -> Vec<CommandUsage> {
    let mut all: Vec<CommandUsage> = device
        .iter()
        .chain(COPY_MANAGER_COMMANDS)
        .copied()
        .collect();
    all.sort_by_key(|c| (c.opcode, c.service_action));
    all.dedup_by_key(|c| (c.opcode, c.service_action));
    all
}

#[cfg(test)]
mod tests {
    use super::super::codes::PeripheralDeviceType;
    use super::super::inquiry::{page, split_vpd_page, vpd_page};
    use super::*;

    #[test]
    fn page_from_limits_has_every_descriptor_padded_to_4() {
        let limits = Limits::default();
        let body = ThirdPartyCopyPage::from(&limits).encode_body();
        let mut r = Reader::new(&body);
        let mut types = Vec::new();
        while !r.is_empty() {
            let kind = r.u16().unwrap();
            let len = r.u16().unwrap();
            assert_eq!(len % 4, 0, "descriptor {kind:04x} length {len}");
            r.skip(usize::from(len)).unwrap();
            types.push((kind, len));
        }
        let codes = limits::SUPPORTED_SEGMENT_TYPES.len() + limits::SUPPORTED_CSCD_TYPES.len();
        assert_eq!(
            types,
            [
                (0x0001, 12), // 1 + (2+1) + (2+4) = 10, padded
                (0x0004, 0x1c),
                (0x0008, (1 + codes as u16).next_multiple_of(4)),
                (0x000c, 8),
                (0x8001, 0x20),
                (0x9101, 0x1c),
                (0xc001, 0x1c),
            ]
        );
    }

    #[test]
    fn field_offsets_within_descriptors() {
        let limits = Limits {
            max_cscd_descriptors: 0x0102,
            max_segment_descriptors: 0x0304,
            max_descriptor_list_length: 0x0506_0708,
            max_segment_length: 0x1112_1314,
            max_inline_data_length: 0x090a_0b0c,
            held_data_limit: 0x2122_2324,
            max_stream_device_transfer_size: 0x3132_3334,
            total_concurrent_copies: 0x4142,
            max_concurrent_copies: 0x43,
            data_segment_granularity_log2: 9,
            inline_data_granularity_log2: 2,
            held_data_granularity_log2: 12,
        };
        let body = ThirdPartyCopyPage::from(&limits).encode_body();
        assert_eq!(
            body[..16],
            [0x00, 0x01, 0x00, 0x0c, 9, 0x83, 1, 0x00, 0x84, 4, 0x00, 0x01, 0x03, 0x04, 0, 0]
        );
        let pd = &body[16..48];
        assert_eq!(pd[..4], [0x00, 0x04, 0x00, 0x1c]);
        assert_eq!(pd[8..20], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let at = |t: u16| {
            let mut i = 0;
            loop {
                let kind = u16::from_be_bytes([body[i], body[i + 1]]);
                let len = usize::from(u16::from_be_bytes([body[i + 2], body[i + 3]]));
                if kind == t {
                    return &body[i..i + 4 + len];
                }
                i += 4 + len;
            }
        };
        assert_eq!(
            at(0x000c)[4..12],
            [0, 6, 0xc0, 0x00, 0xc0, 0x01, 0xff, 0xff]
        );
        let gco = at(0x8001);
        assert_eq!(
            gco[4..18],
            [0, 0, 0x41, 0x42, 0, 0, 0, 0x43, 0x11, 0x12, 0x13, 0x14, 9, 2]
        );
        assert_eq!(at(0x9101)[4..8], [0x31, 0x32, 0x33, 0x34]);
        assert_eq!(at(0xc001)[4..9], [0x21, 0x22, 0x23, 0x24, 12]);
        let sd = at(0x0008);
        assert_eq!(
            usize::from(sd[4]),
            limits::SUPPORTED_SEGMENT_TYPES.len() + limits::SUPPORTED_CSCD_TYPES.len()
        );
        assert_eq!(sd[5], limits::SUPPORTED_SEGMENT_TYPES[0]);
    }

    #[test]
    fn decodes_the_spec_example_and_skips_unknown_descriptors() {
        // Spec Part A 5 example (LIO 2021 patch), with a Block Device ROD Limits descriptor
        // (0000h, LID4 only) in front that we do not model.
        let mut body = vec![0x00, 0x00, 0x00, 0x04, 0xaa, 0xbb, 0xcc, 0xdd];
        body.extend_from_slice(&[
            0x00, 0x01, 0x00, 0x08, 0x06, 0x83, 0x01, 0x00, 0x84, 0x01, 0x03, 0x00,
        ]);
        body.extend_from_slice(&[0x00, 0x08, 0x00, 0x04, 0x02, 0x02, 0xe4, 0x00]);
        let page = ThirdPartyCopyPage::decode_body(&body).unwrap();
        assert_eq!(
            page.descriptors,
            [
                ThirdPartyCopyDescriptor::SupportedCommands(vec![
                    SupportedCommand {
                        opcode: 0x83,
                        service_actions: vec![0x00]
                    },
                    SupportedCommand {
                        opcode: 0x84,
                        service_actions: vec![0x03]
                    },
                ]),
                ThirdPartyCopyDescriptor::SupportedDescriptors(vec![0x02, 0xe4]),
            ]
        );
        assert!(page.supports_command(0x84, 0x03));
        assert!(
            !page.supports_command(0x84, 0x00),
            "libiscsi would skip CopyStatus"
        );
    }

    #[test]
    fn libiscsi_copy_status_precondition_holds() {
        let full = vpd_page(
            PeripheralDeviceType::DIRECT_ACCESS,
            page::THIRD_PARTY_COPY,
            &ThirdPartyCopyPage::from(&Limits::default()).encode_body(),
        );
        let (code, body) = split_vpd_page(&full).unwrap();
        assert_eq!(code, 0x8f);
        let page = ThirdPartyCopyPage::decode_body(body).unwrap();
        assert_eq!(page, ThirdPartyCopyPage::from(&Limits::default()));
        assert!(page.supports_command(0x84, 0x00));
        assert!(page.supports_command(0x83, 0x00));
        for sa in [0x01, 0x03, 0x04] {
            assert!(page.supports_command(0x84, sa));
        }
    }

    #[test]
    fn malformed_bodies_are_errors() {
        // A descriptor running past the page, a truncated header, a command list running
        // past its descriptor, and an odd CSCD ID list length.
        for body in [
            &[0x00, 0x04, 0x00, 0x1c, 0, 0][..],
            &[0x00, 0x01, 0x00][..],
            &[0x00, 0x01, 0x00, 0x04, 0x03, 0x83, 0x05, 0x00][..],
            &[0x00, 0x0c, 0x00, 0x04, 0x00, 0x01, 0xc0, 0x00][..],
            &[0x80, 0x01, 0x00, 0x04, 0, 0, 0, 1][..],
        ] {
            assert!(
                ThirdPartyCopyPage::decode_body(body).is_err(),
                "{body:02x?}"
            );
        }
        assert_eq!(
            ThirdPartyCopyPage::decode_body(&[]).unwrap(),
            ThirdPartyCopyPage::default()
        );
    }

    #[test]
    fn over_long_lists_are_cut_not_corrupted() {
        let many = ThirdPartyCopyPage {
            descriptors: vec![
                ThirdPartyCopyDescriptor::SupportedCommands(
                    (0..200)
                        .map(|op| SupportedCommand {
                            opcode: op,
                            service_actions: vec![0; 3],
                        })
                        .collect(),
                ),
                ThirdPartyCopyDescriptor::SupportedDescriptors(vec![7; 300]),
            ],
        };
        let back = ThirdPartyCopyPage::decode_body(&many.encode_body()).unwrap();
        match &back.descriptors[..] {
            [ThirdPartyCopyDescriptor::SupportedCommands(c), ThirdPartyCopyDescriptor::SupportedDescriptors(d)] =>
            {
                assert_eq!(c.len(), 255 / 5);
                assert_eq!(d.len(), 255);
            }
            other => panic!("{other:?}"),
        }
    }
}
