//! The element map of a library: which cartridge (by barcode) is in which element, where
//! each was last moved from, and the rules a move follows. Pure: no I/O; the library
//! persists the map ([`super::store`]) and moves the tapes.
//!
//! Element addresses follow the layout of IBM's LTO libraries (TS3100/TS3200 SCSI
//! reference): the medium transport at 0001h, import/export elements from 0010h, data
//! transfer elements (drives) from 0100h, storage elements from 1000h.
//!
//! The map's text form, one element per line, is what the state directory keeps:
//! `ADDRESS BARCODE [SOURCE] [operator]` in hexadecimal addresses, `#` comments.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::scsi::smc::{self, ElementAddresses, ElementType};
use crate::scsi::{Asc, Sense, SenseKey};

pub const TRANSPORT: u16 = 0x0001;
pub const FIRST_IMPORT_EXPORT: u16 = 0x0010;
pub const FIRST_DATA_TRANSFER: u16 = 0x0100;
pub const FIRST_STORAGE: u16 = 0x1000;
/// The most elements of each kind the address layout has room for.
pub const MAX_IMPORT_EXPORT: u16 = FIRST_DATA_TRANSFER - FIRST_IMPORT_EXPORT;
pub const MAX_DRIVES: u16 = FIRST_STORAGE - FIRST_DATA_TRANSFER;
pub const MAX_SLOTS: u16 = u16::MAX - FIRST_STORAGE;

/// How many elements of each kind a library has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub slots: u16,
    pub import_export: u16,
    pub drives: u16,
}

impl Layout {
    /// The type of the element at `address`, if there is one.
    pub fn element_type(&self, address: u16) -> Option<ElementType> {
        let within = |first: u16, n: u16| address >= first && address - first < n;
        if address == TRANSPORT {
            Some(ElementType::MediumTransport)
        } else if within(FIRST_IMPORT_EXPORT, self.import_export) {
            Some(ElementType::ImportExport)
        } else if within(FIRST_DATA_TRANSFER, self.drives) {
            Some(ElementType::DataTransfer)
        } else if within(FIRST_STORAGE, self.slots) {
            Some(ElementType::Storage)
        } else {
            None
        }
    }

    /// The drive index of a data transfer element address.
    pub fn drive_index(&self, address: u16) -> Option<usize> {
        (self.element_type(address) == Some(ElementType::DataTransfer))
            .then(|| usize::from(address - FIRST_DATA_TRANSFER))
    }

    pub fn drive_address(&self, index: usize) -> u16 {
        FIRST_DATA_TRANSFER + index as u16
    }

    /// Every element address of `kind`, ascending.
    pub fn addresses(&self, kind: ElementType) -> std::ops::Range<u16> {
        match kind {
            ElementType::MediumTransport => TRANSPORT..TRANSPORT + 1,
            ElementType::ImportExport => {
                FIRST_IMPORT_EXPORT..FIRST_IMPORT_EXPORT + self.import_export
            }
            ElementType::DataTransfer => FIRST_DATA_TRANSFER..FIRST_DATA_TRANSFER + self.drives,
            ElementType::Storage => FIRST_STORAGE..FIRST_STORAGE + self.slots,
        }
    }

    /// What the element address assignment page (1Dh) reports.
    pub fn assignment(&self) -> ElementAddresses {
        ElementAddresses {
            first_transport: TRANSPORT,
            transports: 1,
            first_storage: FIRST_STORAGE,
            storage: self.slots,
            first_import_export: FIRST_IMPORT_EXPORT,
            import_export: self.import_export,
            first_data_transfer: FIRST_DATA_TRANSFER,
            data_transfer: self.drives,
        }
    }
}

/// A cartridge in an element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cartridge {
    pub barcode: String,
    /// The element it was last moved from (SOURCE STORAGE ELEMENT ADDRESS).
    pub source: Option<u16>,
    /// Placed in an import/export element by an operator, not the robot (IMPEXP).
    pub by_operator: bool,
}

impl Cartridge {
    pub fn new(barcode: impl Into<String>) -> Self {
        Self {
            barcode: barcode.into(),
            source: None,
            by_operator: false,
        }
    }
}

/// Why a move cannot be done; [`MoveError::sense`] is what the changer answers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoveError {
    /// 05/21/01, the field pointer at CDB byte `field`.
    #[error("element {address:#06x} does not exist")]
    InvalidAddress { address: u16, field: u16 },
    /// 05/3B/0E.
    #[error("source element {0:#06x} is empty")]
    SourceEmpty(u16),
    /// 05/3B/0D.
    #[error("destination element {0:#06x} is full")]
    DestinationFull(u16),
    /// 05/53/02: a drive whose medium removal is prevented, or an import/export element
    /// an operator may not open.
    #[error("medium removal from {0:#06x} is prevented")]
    RemovalPrevented(u16),
    /// 04/53/00: the cartridge image could not be opened or closed.
    #[error("media load or eject failed: {0}")]
    LoadFailed(String),
    /// 04/44/00: the element map could not be saved.
    #[error("element map not saved: {0}")]
    Internal(String),
}

impl MoveError {
    pub fn sense(&self) -> Sense {
        match self {
            Self::InvalidAddress { field, .. } => smc::invalid_element_address(*field),
            Self::SourceEmpty(_) => Sense::illegal_request(Asc::MEDIUM_SOURCE_ELEMENT_EMPTY),
            Self::DestinationFull(_) => {
                Sense::illegal_request(Asc::MEDIUM_DESTINATION_ELEMENT_FULL)
            }
            Self::RemovalPrevented(_) => Sense::illegal_request(Asc::MEDIUM_REMOVAL_PREVENTED),
            Self::LoadFailed(_) => {
                Sense::new(SenseKey::HARDWARE_ERROR, Asc::MEDIA_LOAD_OR_EJECT_FAILED)
            }
            Self::Internal(_) => Sense::new(SenseKey::HARDWARE_ERROR, Asc::INTERNAL_TARGET_FAILURE),
        }
    }
}

/// Which cartridge is where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElementMap {
    layout: Layout,
    cells: BTreeMap<u16, Cartridge>,
}

impl ElementMap {
    pub fn new(layout: Layout) -> Self {
        Self {
            layout,
            cells: BTreeMap::new(),
        }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn get(&self, address: u16) -> Option<&Cartridge> {
        self.cells.get(&address)
    }

    /// Where the cartridge with `barcode` is.
    pub fn find(&self, barcode: &str) -> Option<u16> {
        self.cells
            .iter()
            .find(|(_, c)| c.barcode == barcode)
            .map(|(&a, _)| a)
    }

    /// Every occupied element, ascending.
    pub fn occupied(&self) -> impl Iterator<Item = (u16, &Cartridge)> {
        self.cells.iter().map(|(&a, c)| (a, c))
    }

    /// The lowest empty element of `kind`.
    pub fn lowest_free(&self, kind: ElementType) -> Option<u16> {
        self.layout
            .addresses(kind)
            .find(|a| !self.cells.contains_key(a))
    }

    /// Puts `cartridge` in the empty element `address` (start-up placement, an import).
    /// A barcode already in the map, or a full or missing element, is refused.
    pub fn place(&mut self, address: u16, cartridge: Cartridge) -> bool {
        let exists = matches!(
            self.layout.element_type(address),
            Some(t) if t != ElementType::MediumTransport
        );
        if !exists || self.cells.contains_key(&address) || self.find(&cartridge.barcode).is_some() {
            return false;
        }
        self.cells.insert(address, cartridge);
        true
    }

    /// Takes the cartridge out of `address` (an export, a vanished image).
    pub fn remove(&mut self, address: u16) -> Option<Cartridge> {
        self.cells.remove(&address)
    }

    /// An element a medium can be in: any but the medium transport (which holds nothing
    /// between commands).
    fn holder(&self, address: u16, field: u16) -> Result<ElementType, MoveError> {
        match self.layout.element_type(address) {
            Some(ElementType::MediumTransport) | None => {
                Err(MoveError::InvalidAddress { address, field })
            }
            Some(t) => Ok(t),
        }
    }

    /// The transport address of a CDB: 0 (the default) or the one medium transport.
    pub fn check_transport(&self, transport: u16) -> Result<(), MoveError> {
        if transport == 0 || transport == TRANSPORT {
            Ok(())
        } else {
            Err(MoveError::InvalidAddress {
                address: transport,
                field: 2,
            })
        }
    }

    /// MOVE MEDIUM's checks (SMC-3 6.6): both addresses name elements that hold media;
    /// the source is full; the destination is empty, or is the source (nothing moves).
    pub fn check_move(&self, source: u16, destination: u16) -> Result<(), MoveError> {
        self.holder(source, 4)?;
        self.holder(destination, 6)?;
        if !self.cells.contains_key(&source) {
            return Err(MoveError::SourceEmpty(source));
        }
        if destination != source && self.cells.contains_key(&destination) {
            return Err(MoveError::DestinationFull(destination));
        }
        Ok(())
    }

    /// Moves what `check_move` allowed; the cartridge remembers where it came from.
    pub fn apply_move(&mut self, source: u16, destination: u16) {
        if source == destination {
            return;
        }
        if let Some(mut c) = self.cells.remove(&source) {
            c.source = Some(source);
            c.by_operator = false;
            self.cells.insert(destination, c);
        }
    }

    /// EXCHANGE MEDIUM's checks (SMC-3 6.2): the source and the first destination are
    /// full; the second destination is empty unless it is the source.
    pub fn check_exchange(&self, source: u16, first: u16, second: u16) -> Result<(), MoveError> {
        self.holder(source, 4)?;
        self.holder(first, 6)?;
        self.holder(second, 8)?;
        if !self.cells.contains_key(&source) {
            return Err(MoveError::SourceEmpty(source));
        }
        if first == source || !self.cells.contains_key(&first) {
            return Err(MoveError::SourceEmpty(first));
        }
        if second != source && (second == first || self.cells.contains_key(&second)) {
            return Err(MoveError::DestinationFull(second));
        }
        Ok(())
    }

    pub fn apply_exchange(&mut self, source: u16, first: u16, second: u16) {
        let (Some(mut a), Some(mut b)) = (self.cells.remove(&source), self.cells.remove(&first))
        else {
            return;
        };
        a.source = Some(source);
        b.source = Some(first);
        a.by_operator = false;
        b.by_operator = false;
        self.cells.insert(first, a);
        self.cells.insert(second, b);
    }

    /// The text form (module doc).
    pub fn encode(&self, library: &str) -> String {
        let mut out = format!(
            "# xcopyd element map of library {library:?}: ADDRESS BARCODE [SOURCE] [operator]\n"
        );
        for (address, c) in &self.cells {
            let _ = write!(out, "{address:04x} {}", c.barcode);
            if let Some(s) = c.source {
                let _ = write!(out, " {s:04x}");
            }
            if c.by_operator {
                out.push_str(" operator");
            }
            out.push('\n');
        }
        out
    }

    /// Reads the text form against `layout`. Lines that do not parse, name an element the
    /// layout does not have, or repeat a barcode or an element are skipped and returned as
    /// warnings (the cartridges they named are placed again like new ones).
    pub fn decode(text: &str, layout: Layout) -> (Self, Vec<String>) {
        let mut map = Self::new(layout);
        let mut warnings = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                Some((address, c)) => {
                    if !map.place(address, c) {
                        warnings.push(format!("line {}: {line:?}: dropped", n + 1));
                    }
                }
                None => warnings.push(format!("line {}: {line:?}: does not parse", n + 1)),
            }
        }
        (map, warnings)
    }
}

fn parse_line(line: &str) -> Option<(u16, Cartridge)> {
    let mut words = line.split_whitespace();
    let address = u16::from_str_radix(words.next()?, 16).ok()?;
    let barcode = words.next().filter(|b| valid_barcode(b))?;
    let mut c = Cartridge::new(barcode);
    for w in words {
        match w {
            "operator" => c.by_operator = true,
            hex => c.source = Some(u16::from_str_radix(hex, 16).ok()?),
        }
    }
    Some((address, c))
}

/// A barcode this library accepts: 1 to 32 ASCII letters, digits, `-` or `_` (it names a
/// file `BARCODE.tap` and fills a 32-byte volume identifier).
pub fn valid_barcode(barcode: &str) -> bool {
    (1..=32).contains(&barcode.len())
        && barcode
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> ElementMap {
        let mut m = ElementMap::new(Layout {
            slots: 4,
            import_export: 1,
            drives: 2,
        });
        assert!(m.place(0x1000, Cartridge::new("XC0001L9")));
        assert!(m.place(0x1001, Cartridge::new("XC0002L9")));
        m
    }

    fn sense(e: MoveError) -> (SenseKey, Asc, Option<u16>) {
        let s = e.sense();
        (s.key, s.asc, s.field_pointer())
    }

    #[test]
    fn layout_addresses() {
        let l = map().layout;
        assert_eq!(l.element_type(1), Some(ElementType::MediumTransport));
        assert_eq!(l.element_type(0x10), Some(ElementType::ImportExport));
        assert_eq!(l.element_type(0x11), None);
        assert_eq!(l.element_type(0x101), Some(ElementType::DataTransfer));
        assert_eq!(l.element_type(0x102), None);
        assert_eq!(l.element_type(0x1003), Some(ElementType::Storage));
        assert_eq!(l.element_type(0x1004), None);
        assert_eq!(l.drive_index(0x101), Some(1));
        assert_eq!(l.assignment().encode_page()[6..10], [0x10, 0, 0, 4]);
    }

    #[test]
    fn moves_follow_smc3_and_the_errors_libraries_give() {
        let mut m = map();
        let e = |r: Result<(), MoveError>| sense(r.unwrap_err());
        let illegal = SenseKey::ILLEGAL_REQUEST;
        assert_eq!(
            e(m.check_move(0x1002, 0x100)),
            (illegal, Asc::MEDIUM_SOURCE_ELEMENT_EMPTY, None)
        );
        assert_eq!(
            e(m.check_move(0x1000, 0x1001)),
            (illegal, Asc::MEDIUM_DESTINATION_ELEMENT_FULL, None)
        );
        assert_eq!(
            e(m.check_move(0x1000, 0x2000)),
            (illegal, Asc::INVALID_ELEMENT_ADDRESS, Some(6))
        );
        assert_eq!(
            e(m.check_move(TRANSPORT, 0x100)),
            (illegal, Asc::INVALID_ELEMENT_ADDRESS, Some(4))
        );
        assert_eq!(
            e(m.check_transport(0x10)),
            (illegal, Asc::INVALID_ELEMENT_ADDRESS, Some(2))
        );
        m.check_move(0x1000, 0x1000).unwrap();
        m.check_move(0x1000, 0x100).unwrap();
        m.apply_move(0x1000, 0x100);
        assert_eq!(m.find("XC0001L9"), Some(0x100));
        assert_eq!(m.get(0x100).unwrap().source, Some(0x1000));
        // Exchange: drive <-> slot, and a rotation through a third element.
        m.check_exchange(0x1001, 0x100, 0x1001).unwrap();
        m.apply_exchange(0x1001, 0x100, 0x1001);
        assert_eq!(m.find("XC0002L9"), Some(0x100));
        assert_eq!(m.find("XC0001L9"), Some(0x1001));
        assert_eq!(
            e(m.check_exchange(0x1002, 0x100, 0x1003)),
            (illegal, Asc::MEDIUM_SOURCE_ELEMENT_EMPTY, None)
        );
        // The first destination cannot take back its own medium.
        assert_eq!(
            e(m.check_exchange(0x100, 0x1001, 0x1001)),
            (illegal, Asc::MEDIUM_DESTINATION_ELEMENT_FULL, None)
        );
        m.check_exchange(0x100, 0x1001, 0x1002).unwrap();
        assert_eq!(e(m.check_exchange(0x100, 0x1001, 0x102)).2, Some(8));
    }

    #[test]
    fn text_form_round_trips_and_skips_what_it_cannot_place() {
        let mut m = map();
        m.apply_move(0x1000, 0x101);
        assert!(m.place(
            0x10,
            Cartridge {
                by_operator: true,
                ..Cartridge::new("IMP001L8")
            }
        ));
        let text = m.encode("vtl0");
        assert_eq!(
            text,
            "# xcopyd element map of library \"vtl0\": ADDRESS BARCODE [SOURCE] [operator]\n\
             0010 IMP001L8 operator\n0101 XC0001L9 1000\n1001 XC0002L9\n"
        );
        let (back, warnings) = ElementMap::decode(&text, m.layout);
        assert_eq!((back, warnings.len()), (m.clone(), 0));
        let (back, warnings) = ElementMap::decode(
            "0101 XC0001L9 1000\n1001 XC0001L9\n9999 X\nzz\n1002 a.b\n0001 T\n",
            m.layout,
        );
        assert_eq!(back.occupied().count(), 1);
        assert_eq!(warnings.len(), 5, "{warnings:?}");
        assert!(!valid_barcode("") && !valid_barcode(&"A".repeat(33)) && !valid_barcode("A B"));
    }
}
