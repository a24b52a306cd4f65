//! CSCD ("target") descriptors of an EXTENDED COPY parameter list: SPC-3 6.3.6, with the
//! byte layouts of spec Part B 2 (E0h-EAh) and the device-type-specific parameters of
//! SPC-3 6.3.6.1 / Part B 3.1 (PAD, FIXED, DISK/STREAM BLOCK LENGTH).
//!
//! Every descriptor is 32 bytes except EAh (iSCSI IPv6), which is 64.

use serde::{Deserialize, Serialize};

use super::codes::{DeviceClass, PeripheralDeviceType};
use super::designator::Designator;
use super::error::{DecodeError, Reason};
use super::parameter_list::CodeSet;
use super::reader::{Put, Reader};

/// The common length of a CSCD descriptor.
pub const CSCD_LENGTH: usize = 32;

/// The length of a CSCD descriptor with type code `code`: 64 for EAh and EBh, else 32.
pub fn cscd_length(code: u8) -> usize {
    match code {
        0xea | 0xeb => 64,
        _ => CSCD_LENGTH,
    }
}

/// The type-specific part of a CSCD descriptor (bytes 4-27, and 32-63 for EAh).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CscdIdentifier {
    /// E0h Fibre Channel N_Port_Name: LU IDENTIFIER, N_PORT_NAME (WWPN).
    FcNPortName { lun: u64, n_port_name: u64 },
    /// E1h Fibre Channel N_Port_ID: LU IDENTIFIER, 24-bit N_PORT_ID at bytes 21-23.
    FcNPortId { lun: u64, n_port_id: u32 },
    /// E2h Fibre Channel N_Port_ID with N_Port_Name checking.
    FcNPortIdWithName {
        lun: u64,
        n_port_name: u64,
        n_port_id: u32,
    },
    /// E3h SCSI Parallel T_L: vendor specific byte 12, TARGET IDENTIFIER byte 13.
    SpiTl {
        lun: u64,
        vendor_specific: u8,
        target_identifier: u8,
    },
    /// E4h Identification descriptor: a VPD 83h designator (at most 20 bytes).
    Identification {
        #[serde(with = "designator_name")]
        designator: Designator,
    },
    /// E5h iSCSI IPv4: address bytes 12-15, port 22-23, protocol number 26-27.
    Ipv4 {
        lun: u64,
        address: [u8; 4],
        port: u16,
        protocol: u16,
    },
    /// E6h Alias: ALIAS VALUE bytes 12-19.
    Alias { lun: u64, alias: u64 },
    /// E7h RDMA: TARGET PORT IDENTIFIER bytes 12-27.
    Rdma { lun: u64, target_port: [u8; 16] },
    /// E8h IEEE 1394: EUI-64 bytes 12-19, 24-bit DIRECTORY ID bytes 20-22.
    Ieee1394 {
        lun: u64,
        eui64: u64,
        directory_id: u32,
    },
    /// E9h SAS Serial SCSI Protocol: SAS ADDRESS bytes 12-19.
    SasSsp { lun: u64, sas_address: u64 },
    /// EAh iSCSI IPv6 (64 bytes): address bytes 12-27, extension at 32 (FFh), port 36-37,
    /// protocol number 38-39.
    Ipv6 {
        lun: u64,
        address: [u8; 16],
        port: u16,
        protocol: u16,
    },
}

impl CscdIdentifier {
    /// The descriptor type code.
    pub fn type_code(&self) -> u8 {
        match self {
            Self::FcNPortName { .. } => 0xe0,
            Self::FcNPortId { .. } => 0xe1,
            Self::FcNPortIdWithName { .. } => 0xe2,
            Self::SpiTl { .. } => 0xe3,
            Self::Identification { .. } => 0xe4,
            Self::Ipv4 { .. } => 0xe5,
            Self::Alias { .. } => 0xe6,
            Self::Rdma { .. } => 0xe7,
            Self::Ieee1394 { .. } => 0xe8,
            Self::SasSsp { .. } => 0xe9,
            Self::Ipv6 { .. } => 0xea,
        }
    }

    /// The descriptor type's name (SPC-3 Table 35).
    pub fn type_name(&self) -> &'static str {
        type_name(self.type_code())
    }
}

/// The name of CSCD descriptor type `code`.
pub fn type_name(code: u8) -> &'static str {
    match code {
        0xe0 => "Fibre Channel N_Port_Name",
        0xe1 => "Fibre Channel N_Port_ID",
        0xe2 => "Fibre Channel N_Port_ID with N_Port_Name checking",
        0xe3 => "Parallel Interface T_L",
        0xe4 => "Identification descriptor",
        0xe5 => "IPv4",
        0xe6 => "Alias",
        0xe7 => "RDMA",
        0xe8 => "IEEE 1394 EUI-64",
        0xe9 => "SAS Serial SCSI Protocol",
        0xea => "IPv6",
        0xeb => "IP copy service",
        0xfe => "ROD",
        0xff => "CSCD extension",
        _ => "reserved",
    }
}

/// Device type specific parameters (bytes 28-31), by device class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "class", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeviceParameters {
    /// Block devices: PAD (byte 28 bit 2), DISK BLOCK LENGTH (29-31; 0 = ask the device).
    Block { pad: bool, block_length: u32 },
    /// Stream devices: PAD (bit 2), FIXED (bit 0), STREAM BLOCK LENGTH (29-31).
    Stream {
        pad: bool,
        fixed: bool,
        block_length: u32,
    },
    /// Processor devices: PAD (bit 2); bytes 29-31 reserved.
    Processor { pad: bool },
}

impl DeviceParameters {
    pub fn pad(&self) -> bool {
        match *self {
            Self::Block { pad, .. } | Self::Stream { pad, .. } | Self::Processor { pad } => pad,
        }
    }

    pub fn class(&self) -> DeviceClass {
        match self {
            Self::Block { .. } => DeviceClass::Block,
            Self::Stream { .. } => DeviceClass::Stream,
            Self::Processor { .. } => DeviceClass::Processor,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let (pad, fixed, length) = match *self {
            Self::Block { pad, block_length } => (pad, false, block_length),
            Self::Stream {
                pad,
                fixed,
                block_length,
            } => (pad, fixed, block_length),
            Self::Processor { pad } => (pad, false, 0),
        };
        out.put_u8((u8::from(pad) << 2) | u8::from(fixed));
        out.put_u24(length);
    }

    /// Decodes bytes 28-31 for a device of `class`; `at` is the absolute offset of byte 28.
    /// The FIXED / STREAM BLOCK LENGTH combinations of Part B 3.1 (SPC-4 Table 138) that
    /// make no sense are INVALID FIELD IN PARAMETER LIST, pointing at the block length.
    fn decode(class: DeviceClass, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = r.offset();
        let b28 = r.u8()?;
        let length = r.u24()?;
        let pad = b28 & 0x04 != 0;
        Ok(match class {
            DeviceClass::Block => Self::Block {
                pad,
                block_length: length,
            },
            DeviceClass::Stream => {
                let fixed = b28 & 0x01 != 0;
                if fixed == (length == 0) {
                    return Err(DecodeError::invalid(at + 1));
                }
                Self::Stream {
                    pad,
                    fixed,
                    block_length: length,
                }
            }
            DeviceClass::Processor => Self::Processor { pad },
        })
    }
}

/// One CSCD descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CscdDescriptor {
    /// NUL: names no device; a segment that needs it is aborted as unreachable.
    #[serde(default)]
    pub nul: bool,
    pub peripheral_device_type: u8,
    /// RELATIVE INITIATOR PORT IDENTIFIER: 0 = any port.
    #[serde(default)]
    pub relative_initiator_port: u16,
    pub identifier: CscdIdentifier,
    pub parameters: DeviceParameters,
}

impl CscdDescriptor {
    pub fn peripheral_device_type(&self) -> PeripheralDeviceType {
        PeripheralDeviceType(self.peripheral_device_type)
    }

    /// Encoded length: 32, or 64 for EAh.
    pub fn encoded_len(&self) -> usize {
        cscd_length(self.identifier.type_code())
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u8(self.identifier.type_code());
        out.put_u8((u8::from(self.nul) << 5) | (self.peripheral_device_type & 0x1f));
        out.put_u16(self.relative_initiator_port);
        let lun = |out: &mut Vec<u8>, lun: u64| out.put_u64(lun);
        match &self.identifier {
            CscdIdentifier::FcNPortName {
                lun: l,
                n_port_name,
            } => {
                lun(out, *l);
                out.put_u64(*n_port_name);
                out.put_zeros(8);
            }
            CscdIdentifier::FcNPortId { lun: l, n_port_id } => {
                lun(out, *l);
                out.put_zeros(9);
                out.put_u24(*n_port_id);
                out.put_zeros(4);
            }
            CscdIdentifier::FcNPortIdWithName {
                lun: l,
                n_port_name,
                n_port_id,
            } => {
                lun(out, *l);
                out.put_u64(*n_port_name);
                out.put_u8(0);
                out.put_u24(*n_port_id);
                out.put_zeros(4);
            }
            CscdIdentifier::SpiTl {
                lun: l,
                vendor_specific,
                target_identifier,
            } => {
                lun(out, *l);
                out.put_u8(*vendor_specific);
                out.put_u8(*target_identifier);
                out.put_zeros(14);
            }
            CscdIdentifier::Identification { designator } => {
                out.put_u8(designator.code_set & 0x0f);
                out.put_u8(
                    ((designator.association & 3) << 4) | (designator.designator_type & 0x0f),
                );
                out.put_u8(0);
                let n = designator.value.len().min(20);
                out.put_u8(n as u8);
                out.extend_from_slice(designator.value.get(..n).unwrap_or_default());
                out.put_zeros(20 - n);
            }
            CscdIdentifier::Ipv4 {
                lun: l,
                address,
                port,
                protocol,
            } => {
                lun(out, *l);
                out.extend_from_slice(address);
                out.put_zeros(6);
                out.put_u16(*port);
                out.put_zeros(2);
                out.put_u16(*protocol);
            }
            CscdIdentifier::Alias { lun: l, alias } => {
                lun(out, *l);
                out.put_u64(*alias);
                out.put_zeros(8);
            }
            CscdIdentifier::Rdma {
                lun: l,
                target_port,
            } => {
                lun(out, *l);
                out.extend_from_slice(target_port);
            }
            CscdIdentifier::Ieee1394 {
                lun: l,
                eui64,
                directory_id,
            } => {
                lun(out, *l);
                out.put_u64(*eui64);
                out.put_u24(*directory_id);
                out.put_zeros(5);
            }
            CscdIdentifier::SasSsp {
                lun: l,
                sas_address,
            } => {
                lun(out, *l);
                out.put_u64(*sas_address);
                out.put_zeros(8);
            }
            CscdIdentifier::Ipv6 {
                lun: l, address, ..
            } => {
                lun(out, *l);
                out.extend_from_slice(address);
            }
        }
        self.parameters.encode(out);
        if let CscdIdentifier::Ipv6 { port, protocol, .. } = &self.identifier {
            out.put_u8(0xff);
            out.put_zeros(3);
            out.put_u16(*port);
            out.put_u16(*protocol);
            out.put_zeros(24);
        }
        debug_assert_eq!(out.len() - start, self.encoded_len());
    }

    /// Decodes one descriptor from a reader framed to exactly its length. Checks, in byte
    /// order: type code (26/07 unless `supported`), LU ID TYPE (reserved in SPC-3: 26/00),
    /// PERIPHERAL DEVICE TYPE (a type a CSCD may name: 26/00), the E4h designator fields,
    /// then the device type specific parameters.
    pub fn decode(r: &mut Reader<'_>, supported: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_with(r, CodeSet::new(supported))
    }

    pub(crate) fn decode_with(r: &mut Reader<'_>, supported: CodeSet) -> Result<Self, DecodeError> {
        let start = r.offset();
        let code = r.u8()?;
        if !(0xe0..=0xea).contains(&code) || !supported.contains(code) {
            return Err(DecodeError::new(
                Reason::UnsupportedCscdDescriptorType,
                start,
            ));
        }
        let b1 = r.u8()?;
        if b1 & 0xc0 != 0 {
            return Err(DecodeError::invalid_bit(start + 1, 7));
        }
        let nul = b1 & 0x20 != 0;
        let pdt = PeripheralDeviceType(b1 & 0x1f);
        let class = pdt
            .class()
            .ok_or_else(|| DecodeError::invalid_bit(start + 1, 4))?;
        let relative_initiator_port = r.u16()?;
        let identifier = match code {
            0xe4 => decode_identification(r)?,
            _ => decode_addressed(code, r)?,
        };
        let parameters = DeviceParameters::decode(class, r)?;
        let identifier = complete_ipv6(identifier, r)?;
        r.finish()?;
        Ok(Self {
            nul,
            peripheral_device_type: pdt.0,
            relative_initiator_port,
            identifier,
            parameters,
        })
    }
}

/// Bytes 4-27 of the CSCD types that name a device by LUN and port address (E0h-E3h and
/// E5h-EAh): the LUN, then the type's address fields. `code` is one of them.
fn decode_addressed(code: u8, r: &mut Reader<'_>) -> Result<CscdIdentifier, DecodeError> {
    let lun = r.u64()?;
    Ok(match code {
        0xe0 => {
            let n_port_name = r.u64()?;
            r.skip(8)?;
            CscdIdentifier::FcNPortName { lun, n_port_name }
        }
        0xe1 => {
            r.skip(9)?;
            let n_port_id = r.u24()?;
            r.skip(4)?;
            CscdIdentifier::FcNPortId { lun, n_port_id }
        }
        0xe2 => {
            let n_port_name = r.u64()?;
            r.skip(1)?;
            let n_port_id = r.u24()?;
            r.skip(4)?;
            CscdIdentifier::FcNPortIdWithName {
                lun,
                n_port_name,
                n_port_id,
            }
        }
        0xe3 => {
            let vendor_specific = r.u8()?;
            let target_identifier = r.u8()?;
            r.skip(14)?;
            CscdIdentifier::SpiTl {
                lun,
                vendor_specific,
                target_identifier,
            }
        }
        0xe5 => {
            let address = r.array()?;
            r.skip(6)?;
            let port = r.u16()?;
            r.skip(2)?;
            let protocol = r.u16()?;
            CscdIdentifier::Ipv4 {
                lun,
                address,
                port,
                protocol,
            }
        }
        0xe6 => {
            let alias = r.u64()?;
            r.skip(8)?;
            CscdIdentifier::Alias { lun, alias }
        }
        0xe7 => CscdIdentifier::Rdma {
            lun,
            target_port: r.array()?,
        },
        0xe8 => {
            let eui64 = r.u64()?;
            let directory_id = r.u24()?;
            r.skip(5)?;
            CscdIdentifier::Ieee1394 {
                lun,
                eui64,
                directory_id,
            }
        }
        0xe9 => {
            let sas_address = r.u64()?;
            r.skip(8)?;
            CscdIdentifier::SasSsp { lun, sas_address }
        }
        _ => CscdIdentifier::Ipv6 {
            lun,
            address: r.array()?,
            port: 0,
            protocol: 0,
        },
    })
}

/// EAh (IPv6) carries its port and protocol after the device type specific parameters, in
/// bytes 32-63; the other types are complete already.
fn complete_ipv6(
    identifier: CscdIdentifier,
    r: &mut Reader<'_>,
) -> Result<CscdIdentifier, DecodeError> {
    Ok(match identifier {
        CscdIdentifier::Ipv6 { lun, address, .. } => {
            // Byte 32 is the CSCD descriptor extension (FFh, SPC-4 6.4.4); bytes 33-35
            // reserved. An SPC-3 initiator may leave byte 32 zero: accepted.
            r.skip(4)?;
            let port = r.u16()?;
            let protocol = r.u16()?;
            r.skip(24)?;
            CscdIdentifier::Ipv6 {
                lun,
                address,
                port,
                protocol,
            }
        }
        other => other,
    })
}

/// E4h bytes 4-27: CODE SET (byte 4 bits 3-0; 1, 2 or 3), ASSOCIATION (byte 5 bits 5-4;
/// must be 00b, logical unit), DESIGNATOR TYPE (bits 3-0), DESIGNATOR LENGTH (byte 7; at
/// most 20, the room there is), DESIGNATOR (8-27, zero padded). SPC-3 6.3.6.3.
fn decode_identification(r: &mut Reader<'_>) -> Result<CscdIdentifier, DecodeError> {
    let at = r.offset();
    let b4 = r.u8()?;
    let b5 = r.u8()?;
    r.skip(1)?;
    let len = r.u8()?;
    let code_set = b4 & 0x0f;
    if !(1..=3).contains(&code_set) {
        return Err(DecodeError::invalid_bit(at, 3));
    }
    let association = (b5 >> 4) & 0x03;
    if association != 0 {
        return Err(DecodeError::invalid_bit(at + 1, 5));
    }
    if len > 20 {
        return Err(DecodeError::invalid(at + 3));
    }
    let field = r.take(20)?;
    let value = field.get(..usize::from(len)).unwrap_or_default().to_vec();
    Ok(CscdIdentifier::Identification {
        designator: Designator::logical_unit(b5 & 0x0f, code_set, value),
    })
}

/// Serde for a designator as its inventory name (`naa.…`, `eui.…`, `t10.…`, `iqn.…`, or
/// the generic `typeT/codesetC/assocA:hex`).
pub(crate) mod designator_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::designator::Designator;

    pub fn serialize<S: Serializer>(d: &Designator, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(d)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Designator, D::Error> {
        let name = String::deserialize(d)?;
        Designator::parse_name(&name).map_err(serde::de::Error::custom)
    }
}

/// How a CSCD names its device, for logs and status: the designator's name, or the
/// address with its LUN.
impl std::fmt::Display for CscdIdentifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Identification { designator } => write!(f, "{designator}"),
            Self::FcNPortName { lun, n_port_name } => {
                write!(f, "fc wwpn {n_port_name:016x} lun {lun}")
            }
            Self::FcNPortId { lun, n_port_id } => {
                write!(f, "fc n_port_id {n_port_id:06x} lun {lun}")
            }
            Self::FcNPortIdWithName {
                lun,
                n_port_name,
                n_port_id,
            } => write!(
                f,
                "fc n_port_id {n_port_id:06x} wwpn {n_port_name:016x} lun {lun}"
            ),
            Self::SasSsp { lun, sas_address } => write!(f, "sas {sas_address:016x} lun {lun}"),
            other => write!(f, "{other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{ALL_CSCD_TYPES, SUPPORTED_CSCD_TYPES};

    fn e4_naa() -> Vec<u8> {
        let mut d = vec![0xe4, 0x00, 0x00, 0x00, 0x01, 0x03, 0x00, 0x08];
        d.extend_from_slice(&[0x50, 0x01, 0x40, 0x5a, 0x1b, 0x2c, 0x3d, 0x01]);
        d.resize(28, 0);
        d.extend_from_slice(&[0x00, 0x00, 0x02, 0x00]); // block, 512
        d
    }

    fn decode_at(bytes: &[u8], base: usize) -> Result<CscdDescriptor, DecodeError> {
        CscdDescriptor::decode(&mut Reader::at(bytes, base), SUPPORTED_CSCD_TYPES)
    }

    #[test]
    fn e4_as_sg_xcopy_builds_it() {
        let c = decode_at(&e4_naa(), 16).unwrap();
        assert_eq!(
            c.parameters,
            DeviceParameters::Block {
                pad: false,
                block_length: 512
            }
        );
        match &c.identifier {
            CscdIdentifier::Identification { designator } => {
                assert_eq!(designator.to_string(), "naa.5001405a1b2c3d01")
            }
            other => panic!("{other:?}"),
        }
        let mut out = Vec::new();
        c.encode(&mut out);
        assert_eq!(out, e4_naa());
    }

    #[test]
    fn e4_field_checks_point_at_the_byte() {
        let mut d = e4_naa();
        d[4] = 0x00; // code set 0: reserved
        assert_eq!(
            decode_at(&d, 16).unwrap_err(),
            DecodeError::invalid_bit(20, 3)
        );
        let mut d = e4_naa();
        d[5] = 0x13; // association 01b
        assert_eq!(
            decode_at(&d, 16).unwrap_err(),
            DecodeError::invalid_bit(21, 5)
        );
        let mut d = e4_naa();
        d[7] = 21;
        assert_eq!(decode_at(&d, 16).unwrap_err(), DecodeError::invalid(23));
        let mut d = e4_naa();
        d[1] = 0x80; // LU ID TYPE 10b: reserved in SPC-3
        assert_eq!(
            decode_at(&d, 16).unwrap_err(),
            DecodeError::invalid_bit(17, 7)
        );
        let mut d = e4_naa();
        d[1] = 0x08; // medium changer: no EXTENDED COPY class
        assert_eq!(
            decode_at(&d, 16).unwrap_err(),
            DecodeError::invalid_bit(17, 4)
        );
    }

    #[test]
    fn stream_fixed_and_block_length_rules() {
        let mut d = e4_naa();
        d[1] = 0x01;
        // FIXED=0, SBL=512: invalid (Part B 3.1)
        assert_eq!(decode_at(&d, 0).unwrap_err(), DecodeError::invalid(29));
        d[28] = 0x01; // FIXED=1, SBL=512
        assert_eq!(
            decode_at(&d, 0).unwrap().parameters,
            DeviceParameters::Stream {
                pad: false,
                fixed: true,
                block_length: 512
            }
        );
        d[29..32].copy_from_slice(&[0, 0, 0]); // FIXED=1, SBL=0: invalid
        assert_eq!(decode_at(&d, 0).unwrap_err(), DecodeError::invalid(29));
        d[28] = 0x04; // FIXED=0, SBL=0, PAD
        assert_eq!(
            decode_at(&d, 0).unwrap().parameters,
            DeviceParameters::Stream {
                pad: true,
                fixed: false,
                block_length: 0
            }
        );
    }

    #[test]
    fn unsupported_and_non_cscd_codes_are_26_07() {
        let mut d = e4_naa();
        for code in [0x02, 0xdf, 0xeb, 0xfe, 0xff] {
            d[0] = code;
            assert_eq!(
                decode_at(&d, 48).unwrap_err(),
                DecodeError::new(Reason::UnsupportedCscdDescriptorType, 48)
            );
        }
        d[0] = 0xe0;
        assert_eq!(
            CscdDescriptor::decode(&mut Reader::new(&d), &[0xe4])
                .unwrap_err()
                .reason,
            Reason::UnsupportedCscdDescriptorType
        );
    }

    #[test]
    fn every_type_round_trips() {
        let ids = [
            CscdIdentifier::FcNPortName {
                lun: 1,
                n_port_name: 0x2100_0024_ff12_3456,
            },
            CscdIdentifier::FcNPortId {
                lun: 2,
                n_port_id: 0x01_02_03,
            },
            CscdIdentifier::FcNPortIdWithName {
                lun: 3,
                n_port_name: 7,
                n_port_id: 0xabcdef,
            },
            CscdIdentifier::SpiTl {
                lun: 4,
                vendor_specific: 9,
                target_identifier: 5,
            },
            CscdIdentifier::Ipv4 {
                lun: 5,
                address: [10, 0, 0, 1],
                port: 3260,
                protocol: 6,
            },
            CscdIdentifier::Alias {
                lun: 6,
                alias: 0x1122,
            },
            CscdIdentifier::Rdma {
                lun: 7,
                target_port: [7; 16],
            },
            CscdIdentifier::Ieee1394 {
                lun: 8,
                eui64: 99,
                directory_id: 0x123456,
            },
            CscdIdentifier::SasSsp {
                lun: 9,
                sas_address: 0x5000_c500_1234_5678,
            },
            CscdIdentifier::Ipv6 {
                lun: 10,
                address: [0xfe; 16],
                port: 3260,
                protocol: 6,
            },
        ];
        for identifier in ids {
            let supported = SUPPORTED_CSCD_TYPES.contains(&identifier.type_code());
            let c = CscdDescriptor {
                nul: true,
                peripheral_device_type: 1,
                relative_initiator_port: 2,
                identifier,
                parameters: DeviceParameters::Stream {
                    pad: true,
                    fixed: false,
                    block_length: 0,
                },
            };
            let mut out = Vec::new();
            c.encode(&mut out);
            assert_eq!(out.len(), c.encoded_len());
            let back = CscdDescriptor::decode(&mut Reader::new(&out), ALL_CSCD_TYPES);
            assert_eq!(back.unwrap(), c, "{:#x}", out[0]);
            assert_eq!(decode_at(&out, 0).is_ok(), supported, "{:#x}", out[0]);
        }
    }
}
