//! Designation descriptors (SPC-3 7.6.3.1, Device Identification VPD page 83h), as carried
//! in VPD 83h and, with PIV and PROTOCOL IDENTIFIER cleared, in an E4h CSCD descriptor.
//!
//! Also the textual names the inventory uses: `naa.<hex>`, `eui.<hex>`, `t10.<ascii>`,
//! and SCSI name strings (`iqn.…`, `naa.…` are types 3 and 8 respectively by prefix rules
//! below).

use std::fmt;

use super::error::DecodeError;
use super::reader::{Put, Reader};

/// CODE SET values (SPC-3 Table 300).
pub mod code_set {
    pub const BINARY: u8 = 1;
    pub const ASCII: u8 = 2;
    pub const UTF8: u8 = 3;
}

/// DESIGNATOR TYPE values (SPC-3 Table 302).
pub mod designator_type {
    pub const VENDOR_SPECIFIC: u8 = 0;
    pub const T10_VENDOR_ID: u8 = 1;
    pub const EUI64: u8 = 2;
    pub const NAA: u8 = 3;
    pub const RELATIVE_TARGET_PORT: u8 = 4;
    pub const TARGET_PORT_GROUP: u8 = 5;
    pub const LOGICAL_UNIT_GROUP: u8 = 6;
    pub const MD5_LOGICAL_UNIT: u8 = 7;
    pub const SCSI_NAME_STRING: u8 = 8;
}

/// ASSOCIATION values (SPC-3 Table 301).
pub mod association {
    pub const LOGICAL_UNIT: u8 = 0;
    pub const TARGET_PORT: u8 = 1;
    pub const TARGET_DEVICE: u8 = 2;
}

/// One designation descriptor.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Designator {
    /// PROTOCOL IDENTIFIER (4 bits), meaningful only with PIV set.
    pub protocol_identifier: u8,
    /// CODE SET (4 bits).
    pub code_set: u8,
    /// PIV: the protocol identifier is valid.
    pub piv: bool,
    /// ASSOCIATION (2 bits).
    pub association: u8,
    /// DESIGNATOR TYPE (4 bits).
    pub designator_type: u8,
    /// The DESIGNATOR bytes (at most 255).
    pub value: Vec<u8>,
}

impl Designator {
    /// A logical-unit designator of the given type and code set.
    pub fn logical_unit(designator_type: u8, code_set: u8, value: Vec<u8>) -> Self {
        Self {
            protocol_identifier: 0,
            code_set,
            piv: false,
            association: association::LOGICAL_UNIT,
            designator_type,
            value,
        }
    }

    /// Decodes one descriptor from a VPD 83h page.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let b0 = r.u8()?;
        let b1 = r.u8()?;
        r.skip(1)?;
        let len = r.u8()?;
        let value = r.take(usize::from(len))?.to_vec();
        Ok(Self {
            protocol_identifier: b0 >> 4,
            code_set: b0 & 0x0f,
            piv: b1 & 0x80 != 0,
            association: (b1 >> 4) & 0x03,
            designator_type: b1 & 0x0f,
            value,
        })
    }

    /// Encodes the descriptor as in VPD 83h (4-byte header + value).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8((self.protocol_identifier << 4) | (self.code_set & 0x0f));
        out.put_u8(
            (u8::from(self.piv) << 7)
                | ((self.association & 3) << 4)
                | (self.designator_type & 0x0f),
        );
        out.put_u8(0);
        let len = self.value.len().min(255);
        out.put_u8(len as u8);
        out.extend_from_slice(self.value.get(..len).unwrap_or_default());
    }

    /// Whether an E4h CSCD descriptor's designator names this one: code set, association,
    /// designator type, length and bytes equal, PIV and protocol identifier ignored
    /// (SPC-3 6.3.6.3).
    pub fn matches(&self, other: &Designator) -> bool {
        self.code_set == other.code_set
            && self.association == other.association
            && self.designator_type == other.designator_type
            && self.value == other.value
    }

    /// Parses an inventory name: `naa.<hex>` (NAA, binary), `eui.<hex>` (EUI-64, binary),
    /// `t10.<ascii>` (T10 vendor ID, ASCII), `iqn.…`/`eui.`-less SCSI names via `name.<utf8>`
    /// (SCSI name string, UTF-8, NUL-terminated and padded to a multiple of 4).
    pub fn parse_name(s: &str) -> Result<Self, String> {
        let (prefix, rest) = s.split_once('.').ok_or_else(|| {
            format!("designator {s:?}: expected naa./eui./t10./iqn./name. prefix")
        })?;
        let hex = |what: &str, lens: &[usize]| -> Result<Vec<u8>, String> {
            let bytes = parse_hex(rest)
                .ok_or_else(|| format!("designator {s:?}: {what} needs hex digits"))?;
            if lens.contains(&bytes.len()) {
                Ok(bytes)
            } else {
                Err(format!(
                    "designator {s:?}: {what} must be {lens:?} bytes, got {}",
                    bytes.len()
                ))
            }
        };
        match prefix.to_ascii_lowercase().as_str() {
            "naa" => {
                let v = hex("NAA", &[8, 16])?;
                let naa = v.first().map_or(0, |b| b >> 4);
                let ok = match v.len() {
                    8 => matches!(naa, 2 | 3 | 5),
                    _ => naa == 6,
                };
                if !ok {
                    return Err(format!(
                        "designator {s:?}: NAA field {naa} does not fit a {}-byte designator",
                        v.len()
                    ));
                }
                Ok(Self::logical_unit(
                    designator_type::NAA,
                    code_set::BINARY,
                    v,
                ))
            }
            "eui" => Ok(Self::logical_unit(
                designator_type::EUI64,
                code_set::BINARY,
                hex("EUI-64", &[8, 12, 16])?,
            )),
            "t10" => {
                if rest.is_empty() || !rest.is_ascii() || rest.len() > 255 {
                    return Err(format!(
                        "designator {s:?}: T10 vendor ID needs 1-255 ASCII characters"
                    ));
                }
                Ok(Self::logical_unit(
                    designator_type::T10_VENDOR_ID,
                    code_set::ASCII,
                    rest.as_bytes().to_vec(),
                ))
            }
            "iqn" | "name" => {
                let name = if prefix == "iqn" { s } else { rest };
                let mut v = name.as_bytes().to_vec();
                v.push(0);
                while v.len() % 4 != 0 {
                    v.push(0);
                }
                if v.len() > 255 {
                    return Err(format!(
                        "designator {s:?}: SCSI name string longer than 255 bytes"
                    ));
                }
                Ok(Self::logical_unit(
                    designator_type::SCSI_NAME_STRING,
                    code_set::UTF8,
                    v,
                ))
            }
            _ => Err(format!(
                "designator {s:?}: unknown prefix {prefix:?} (expected naa, eui, t10, iqn or name)"
            )),
        }
    }

    /// The designator type's name (SPC-3 Table 302).
    pub fn type_name(&self) -> &'static str {
        match self.designator_type {
            designator_type::VENDOR_SPECIFIC => "vendor specific",
            designator_type::T10_VENDOR_ID => "T10 vendor ID",
            designator_type::EUI64 => "EUI-64",
            designator_type::NAA => "NAA",
            designator_type::RELATIVE_TARGET_PORT => "relative target port",
            designator_type::TARGET_PORT_GROUP => "target port group",
            designator_type::LOGICAL_UNIT_GROUP => "logical unit group",
            designator_type::MD5_LOGICAL_UNIT => "MD5 logical unit identifier",
            designator_type::SCSI_NAME_STRING => "SCSI name string",
            _ => "reserved",
        }
    }
}

/// Parses a string of hex digits (optionally with `0x`, `:` or `-` separators).
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    let digits: Vec<u8> = s.bytes().filter(|b| !matches!(b, b':' | b'-')).collect();
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}

impl fmt::Display for Designator {
    /// The inventory name form where one exists, else `type/code-set:hex`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex =
            |f: &mut fmt::Formatter<'_>| self.value.iter().try_for_each(|b| write!(f, "{b:02x}"));
        match (self.designator_type, self.code_set) {
            (designator_type::NAA, code_set::BINARY) => {
                f.write_str("naa.")?;
                hex(f)
            }
            (designator_type::EUI64, code_set::BINARY) => {
                f.write_str("eui.")?;
                hex(f)
            }
            (designator_type::T10_VENDOR_ID, code_set::ASCII) if self.value.is_ascii() => {
                write!(f, "t10.{}", String::from_utf8_lossy(&self.value))
            }
            (designator_type::SCSI_NAME_STRING, code_set::UTF8) => {
                let end = self
                    .value
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(self.value.len());
                let text = String::from_utf8_lossy(self.value.get(..end).unwrap_or_default());
                if text.starts_with("iqn.") {
                    f.write_str(&text)
                } else {
                    write!(f, "name.{text}")
                }
            }
            (t, c) => {
                write!(f, "type{t}/codeset{c}/assoc{}:", self.association)?;
                hex(f)
            }
        }
    }
}

impl fmt::Debug for Designator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Designator({self}")?;
        if self.association != association::LOGICAL_UNIT {
            write!(f, ", association {}", self.association)?;
        }
        if self.piv {
            write!(f, ", protocol {:#x}", self.protocol_identifier)?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in [
            "naa.5001405a1b2c3d01",
            "naa.6001405aaaaaaaaa0000000000000001",
            "eui.0123456789abcdef",
            "t10.LIO-ORG disk0",
            "iqn.2026-11.org.xcopyd:mover",
        ] {
            let d = Designator::parse_name(name).unwrap();
            assert_eq!(d.to_string(), name);
        }
        let d = Designator::parse_name("iqn.2026-11.org.xcopyd:m").unwrap();
        assert_eq!(d.value.len() % 4, 0);
        assert_eq!(d.value.last(), Some(&0));
    }

    #[test]
    fn bad_names_say_why() {
        for (name, want) in [
            ("naa.12", "must be [8, 16] bytes"),
            ("naa.6001405a1b2c3d01", "NAA field 6"),
            ("naa.xyz", "hex digits"),
            ("foo.1234", "unknown prefix"),
            ("plain", "prefix"),
        ] {
            let err = Designator::parse_name(name).unwrap_err();
            assert!(err.contains(want), "{name}: {err}");
        }
    }

    #[test]
    fn vpd_descriptor_round_trip_and_match() {
        let mut d = Designator::parse_name("naa.5001405a1b2c3d01").unwrap();
        d.piv = true;
        d.protocol_identifier = 5;
        let mut out = Vec::new();
        d.encode(&mut out);
        assert_eq!(out[..4], [0x51, 0x83, 0x00, 0x08]);
        let back = Designator::decode(&mut Reader::new(&out)).unwrap();
        assert_eq!(back, d);
        let mut plain = d.clone();
        plain.piv = false;
        plain.protocol_identifier = 0;
        assert!(plain.matches(&d));
        plain.association = association::TARGET_PORT;
        assert!(!plain.matches(&d));
    }

    /// T10 VENDOR IDENTIFICATION: 1-255 ASCII characters (the DESIGNATOR LENGTH byte).
    #[test]
    fn t10_names_are_1_to_255_ascii_characters() {
        let longest = format!("t10.{}", "v".repeat(255));
        assert_eq!(Designator::parse_name(&longest).unwrap().value.len(), 255);
        for bad in [
            "t10.".to_string(),
            format!("t10.{}", "v".repeat(256)),
            "t10.caf\u{e9}".to_string(),
        ] {
            assert!(Designator::parse_name(&bad).is_err(), "{bad}");
        }
    }

    /// A SCSI name string is NUL-terminated and padded to a multiple of 4 bytes, at most 255
    /// (SPC-4 7.8.6.11: so at most 252).
    #[test]
    fn scsi_name_strings_are_padded_and_bounded() {
        let d = Designator::parse_name("iqn.a").unwrap();
        assert_eq!(d.value, b"iqn.a\0\0\0");
        let d = Designator::parse_name("name.abc").unwrap();
        assert_eq!(d.value, b"abc\0");
        let fits = format!("iqn.{}", "x".repeat(247));
        assert_eq!(Designator::parse_name(&fits).unwrap().value.len(), 252);
        for n in [248, 300] {
            let long = format!("iqn.{}", "x".repeat(n));
            assert!(Designator::parse_name(&long).is_err(), "{n}");
        }
    }

    /// SPC-4 Table 459's designator types by name; 9h-Fh reserved.
    #[test]
    fn type_names() {
        let names = [
            "vendor specific",
            "T10 vendor ID",
            "EUI-64",
            "NAA",
            "relative target port",
            "target port group",
            "logical unit group",
            "MD5 logical unit identifier",
            "SCSI name string",
            "reserved",
        ];
        for (t, name) in names.iter().enumerate() {
            let d = Designator::logical_unit(t as u8, code_set::BINARY, vec![1]);
            assert_eq!(d.type_name(), *name, "type {t}");
        }
    }

    /// Display: the inventory's name where it has one; a T10 value that is not ASCII, or any
    /// other type, as `typeT/codesetC/assocA:hex`. Debug adds an association other than the
    /// logical unit's.
    #[test]
    fn display_and_debug_forms() {
        let t10 = Designator::logical_unit(
            designator_type::T10_VENDOR_ID,
            code_set::ASCII,
            vec![b'a', 0xe9],
        );
        assert_eq!(t10.to_string(), "type1/codeset2/assoc0:61e9");
        let mut port = Designator::logical_unit(
            designator_type::RELATIVE_TARGET_PORT,
            code_set::BINARY,
            vec![0, 0, 0, 1],
        );
        assert_eq!(
            format!("{port:?}"),
            "Designator(type4/codeset1/assoc0:00000001)"
        );
        port.association = association::TARGET_PORT;
        assert_eq!(
            format!("{port:?}"),
            "Designator(type4/codeset1/assoc1:00000001, association 1)"
        );
    }
}
