//! Which side of a segment failed, and why ([`Failure`]): what every layer of the copy path
//! returns and `run` turns into COPY ABORTED sense (SPC-3 6.3.3, Part B 4). Below every
//! other module of the copy path, importing none of them.

use crate::scsi::{Asc, Status};

/// Which CSCD of a segment failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Source,
    Destination,
}

/// Why a segment could not be completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub asc: Asc,
    /// The side whose device failed, with its status byte and sense, forwarded unchanged.
    pub device: Option<(Side, Status, Vec<u8>)>,
    /// The CSCD descriptor index involved (the segment pointer then names it), if any.
    pub cscd: Option<usize>,
    /// Otherwise, the byte of the segment descriptor in error (segment pointer, SD=1).
    pub field: Option<u16>,
}

impl Failure {
    pub fn new(asc: Asc) -> Self {
        Self {
            asc,
            device: None,
            cscd: None,
            field: None,
        }
    }

    /// A failure about byte `field` of the segment descriptor.
    pub fn at_field(asc: Asc, field: u16) -> Self {
        Self {
            field: Some(field),
            ..Self::new(asc)
        }
    }
}
