//! Reservations (SPC-4 T10/1731-D r37: 5.13 persistent reservations, 6.15 PERSISTENT RESERVE
//! IN, 6.16 PERSISTENT RESERVE OUT, 7.6.4 TransportIDs; SPC-2 7.21-7.24 RESERVE and RELEASE):
//! the CDBs, the PERSISTENT RESERVE OUT parameter lists, iSCSI TransportIDs and the
//! PERSISTENT RESERVE IN parameter data.
//!
//! Pure: the state machine that decides what a command does lives with the logical unit
//! (`device::reservation`). A malformed CDB is INVALID FIELD IN CDB with the field pointer; a
//! parameter list whose length does not match what the CDB and its own length fields say is
//! PARAMETER LIST LENGTH ERROR (1A/00); a bad field in it is INVALID FIELD IN PARAMETER LIST
//! (26/00) pointing at the field.

use super::codes::Opcode;
use super::error::{DecodeError, Reason};
use super::reader::{Put, Reader};

/// The most TransportIDs one REGISTER with SPEC_I_PT may name (more is a parameter list
/// this device server refuses: INSUFFICIENT REGISTRATION RESOURCES is the caller's call).
pub const MAX_TRANSPORT_IDS: usize = 64;
/// The longest iSCSI name (RFC 3720 3.2.6.1: 223 bytes) plus ",i,0x" and 12 hex digits.
const MAX_ISCSI_NAME: usize = 223 + 17;
/// PROTOCOL IDENTIFIER of iSCSI (SPC-4 Table 362).
pub const PROTOCOL_ISCSI: u8 = 0x5;

fn invalid_cdb(byte: usize) -> DecodeError {
    DecodeError::new(Reason::InvalidFieldInCdb, byte)
}

fn fixed<const N: usize>(cdb: &[u8]) -> Result<[u8; N], DecodeError> {
    cdb.get(..N)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or_else(|| invalid_cdb(0))
}

/// The CONTROL byte: NACA and LINK are not supported (24/00).
fn control(byte: u8, offset: usize) -> Result<(), DecodeError> {
    if byte & 0x05 != 0 {
        return Err(invalid_cdb(offset).with_bit(if byte & 0x04 != 0 { 2 } else { 0 }));
    }
    Ok(())
}

/// A persistent reservation TYPE (SPC-4 Table 170), in the order of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReservationType {
    WriteExclusive,
    ExclusiveAccess,
    WriteExclusiveRegistrantsOnly,
    ExclusiveAccessRegistrantsOnly,
    WriteExclusiveAllRegistrants,
    ExclusiveAccessAllRegistrants,
}

impl ReservationType {
    /// Every type, in code order.
    pub const ALL: [Self; 6] = [
        Self::WriteExclusive,
        Self::ExclusiveAccess,
        Self::WriteExclusiveRegistrantsOnly,
        Self::ExclusiveAccessRegistrantsOnly,
        Self::WriteExclusiveAllRegistrants,
        Self::ExclusiveAccessAllRegistrants,
    ];

    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::WriteExclusive,
            3 => Self::ExclusiveAccess,
            5 => Self::WriteExclusiveRegistrantsOnly,
            6 => Self::ExclusiveAccessRegistrantsOnly,
            7 => Self::WriteExclusiveAllRegistrants,
            8 => Self::ExclusiveAccessAllRegistrants,
            _ => return None,
        })
    }

    pub fn code(self) -> u8 {
        match self {
            Self::WriteExclusive => 1,
            Self::ExclusiveAccess => 3,
            Self::WriteExclusiveRegistrantsOnly => 5,
            Self::ExclusiveAccessRegistrantsOnly => 6,
            Self::WriteExclusiveAllRegistrants => 7,
            Self::ExclusiveAccessAllRegistrants => 8,
        }
    }

    /// Reads are shared (the Write Exclusive family).
    pub fn write_exclusive(self) -> bool {
        matches!(
            self,
            Self::WriteExclusive
                | Self::WriteExclusiveRegistrantsOnly
                | Self::WriteExclusiveAllRegistrants
        )
    }

    /// Every registered I_T nexus is a reservation holder.
    pub fn all_registrants(self) -> bool {
        matches!(
            self,
            Self::WriteExclusiveAllRegistrants | Self::ExclusiveAccessAllRegistrants
        )
    }

    /// Registered I_T nexuses have access (registrants-only and all-registrants types).
    pub fn admits_registrants(self) -> bool {
        !matches!(self, Self::WriteExclusive | Self::ExclusiveAccess)
    }
}

/// PERSISTENT RESERVE IN service actions (SPC-4 Table 167).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrInAction {
    ReadKeys,
    ReadReservation,
    ReportCapabilities,
    ReadFullStatus,
}

/// PERSISTENT RESERVE IN CDB (SPC-4 6.15.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrInCdb {
    pub action: PrInAction,
    pub allocation_length: u16,
}

impl PrInCdb {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, _, _, _, _, _, a0, a1, ctl] = fixed::<10>(cdb)?;
        control(ctl, 9)?;
        let action = match b1 & 0x1f {
            0 => PrInAction::ReadKeys,
            1 => PrInAction::ReadReservation,
            2 => PrInAction::ReportCapabilities,
            3 => PrInAction::ReadFullStatus,
            _ => return Err(invalid_cdb(1).with_bit(4)),
        };
        Ok(Self {
            action,
            allocation_length: u16::from_be_bytes([a0, a1]),
        })
    }

    pub fn encode(&self) -> [u8; 10] {
        let code = match self.action {
            PrInAction::ReadKeys => 0,
            PrInAction::ReadReservation => 1,
            PrInAction::ReportCapabilities => 2,
            PrInAction::ReadFullStatus => 3,
        };
        let [a0, a1] = self.allocation_length.to_be_bytes();
        [
            Opcode::PERSISTENT_RESERVE_IN.0,
            code,
            0,
            0,
            0,
            0,
            0,
            a0,
            a1,
            0,
        ]
    }
}

/// PERSISTENT RESERVE OUT service actions (SPC-4 Table 172).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrOutAction {
    Register,
    Reserve,
    Release,
    Clear,
    Preempt,
    PreemptAndAbort,
    RegisterAndIgnoreExistingKey,
    RegisterAndMove,
}

impl PrOutAction {
    pub fn code(self) -> u8 {
        match self {
            Self::Register => 0,
            Self::Reserve => 1,
            Self::Release => 2,
            Self::Clear => 3,
            Self::Preempt => 4,
            Self::PreemptAndAbort => 5,
            Self::RegisterAndIgnoreExistingKey => 6,
            Self::RegisterAndMove => 7,
        }
    }
}

/// PERSISTENT RESERVE OUT CDB (SPC-4 6.16.1). TYPE is kept raw: only the service actions
/// that use it check it (an unused TYPE is ignored, Table 173).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrOutCdb {
    pub action: PrOutAction,
    pub scope: u8,
    pub type_code: u8,
    pub parameter_list_length: u32,
}

impl PrOutCdb {
    /// Decodes the CDB. REPLACE LOST RESERVATION (08h) and reserved service actions are
    /// INVALID FIELD IN CDB at byte 1.
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, b2, _, _, l0, l1, l2, l3, ctl] = fixed::<10>(cdb)?;
        control(ctl, 9)?;
        let action = match b1 & 0x1f {
            0 => PrOutAction::Register,
            1 => PrOutAction::Reserve,
            2 => PrOutAction::Release,
            3 => PrOutAction::Clear,
            4 => PrOutAction::Preempt,
            5 => PrOutAction::PreemptAndAbort,
            6 => PrOutAction::RegisterAndIgnoreExistingKey,
            7 => PrOutAction::RegisterAndMove,
            _ => return Err(invalid_cdb(1).with_bit(4)),
        };
        Ok(Self {
            action,
            scope: b2 >> 4,
            type_code: b2 & 0x0f,
            parameter_list_length: u32::from_be_bytes([l0, l1, l2, l3]),
        })
    }

    /// The reservation type, for the service actions that use it: INVALID FIELD IN CDB on
    /// byte 2 for a SCOPE other than LU_SCOPE (0h) or an unknown TYPE.
    pub fn reservation_type(&self) -> Result<ReservationType, DecodeError> {
        if self.scope != 0 {
            return Err(invalid_cdb(2).with_bit(7));
        }
        ReservationType::from_code(self.type_code).ok_or_else(|| invalid_cdb(2).with_bit(3))
    }

    pub fn encode(&self) -> [u8; 10] {
        let [l0, l1, l2, l3] = self.parameter_list_length.to_be_bytes();
        [
            Opcode::PERSISTENT_RESERVE_OUT.0,
            self.action.code(),
            (self.scope << 4) | (self.type_code & 0x0f),
            0,
            0,
            l0,
            l1,
            l2,
            l3,
            0,
        ]
    }
}

/// The initiator port a TransportID names (iSCSI, SPC-4 7.6.4.6): the iSCSI name, and the
/// ISID for an initiator port (format 01b); without one (format 00b) it names every port of
/// the initiator device.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TransportId {
    pub name: String,
    pub isid: Option<[u8; 6]>,
}

impl TransportId {
    /// Decodes one TransportID at the reader's position (its absolute offset goes into
    /// errors). Only iSCSI TransportIDs name ports this device server has: any other
    /// PROTOCOL IDENTIFIER is INVALID FIELD IN PARAMETER LIST at byte 0.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let b0 = r.u8()?;
        if b0 & 0x0f != PROTOCOL_ISCSI {
            return Err(DecodeError::invalid_bit(start, 3));
        }
        let format = b0 >> 6;
        if format > 1 {
            return Err(DecodeError::invalid_bit(start, 7));
        }
        r.skip(1)?;
        let length = usize::from(r.u16()?);
        // ADDITIONAL LENGTH: a multiple of four, at least 20 (SPC-4 7.6.4.6).
        if length % 4 != 0 || length < 20 {
            return Err(DecodeError::invalid(start + 2));
        }
        let mut body = r.sub(length)?;
        let bytes = body.rest();
        let name_len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        let text = bytes
            .get(..name_len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .filter(|t| !t.is_empty() && t.len() <= MAX_ISCSI_NAME)
            .ok_or_else(|| DecodeError::invalid(start + 4))?;
        if format == 0 {
            if text.contains(",i,0x") {
                return Err(DecodeError::invalid(start + 4));
            }
            return Ok(Self {
                name: text.to_string(),
                isid: None,
            });
        }
        let (name, isid) = text
            .split_once(",i,0x")
            .or_else(|| text.split_once(",I,0X"))
            .ok_or_else(|| DecodeError::invalid(start + 4))?;
        let isid = parse_isid(isid).ok_or_else(|| DecodeError::invalid(start + 4))?;
        if name.is_empty() {
            return Err(DecodeError::invalid(start + 4));
        }
        Ok(Self {
            name: name.to_string(),
            isid: Some(isid),
        })
    }

    /// The TransportID (format 01b with an ISID, 00b without), NUL-terminated and padded to
    /// a multiple of four bytes, at least 24 in all.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let text = self.to_string();
        let length = (text.len() + 1).next_multiple_of(4).max(20);
        out.put_u8((u8::from(self.isid.is_some()) << 6) | PROTOCOL_ISCSI);
        out.put_u8(0);
        out.put_u16(u16::try_from(length).unwrap_or(u16::MAX));
        out.extend_from_slice(text.as_bytes());
        out.put_zeros(length - text.len());
    }
}

impl std::fmt::Display for TransportId {
    /// `NAME` or `NAME,i,0xISID` (the iSCSI initiator port name, RFC 3720 3.2.6.1).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name)?;
        if let Some(isid) = self.isid {
            write!(f, ",i,0x")?;
            for b in isid {
                write!(f, "{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// Twelve hex digits.
fn parse_isid(hex: &str) -> Option<[u8; 6]> {
    if hex.len() != 12 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut isid = [0u8; 6];
    for (i, b) in isid.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(isid)
}

/// The basic PERSISTENT RESERVE OUT parameter list (SPC-4 6.16.3, every service action but
/// REGISTER AND MOVE).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrOutParameters {
    pub reservation_key: u64,
    pub service_action_reservation_key: u64,
    pub spec_i_pt: bool,
    pub all_tg_pt: bool,
    pub aptpl: bool,
    /// The TransportIDs that follow when SPEC_I_PT is one.
    pub transport_ids: Vec<TransportId>,
}

impl PrOutParameters {
    /// Decodes the list the CDB says is `cdb_length` bytes (`data` is what arrived), for a
    /// REGISTER (`register`) or another service action. Without SPEC_I_PT the list is
    /// exactly 24 bytes; with it, 28 plus TRANSPORTID PARAMETER DATA LENGTH. Anything else
    /// is PARAMETER LIST LENGTH ERROR. SPEC_I_PT with any service action but REGISTER is
    /// INVALID FIELD IN PARAMETER LIST at byte 20, whatever the length (SPC-4 6.16.3).
    pub fn decode(data: &[u8], cdb_length: u32, register: bool) -> Result<Self, DecodeError> {
        if !register && data.get(20).is_some_and(|f| f & 0x08 != 0) {
            return Err(DecodeError::invalid_bit(20, 3));
        }
        let length_error = DecodeError::new(Reason::ParameterListLength, 0);
        if usize::try_from(cdb_length).ok() != Some(data.len()) || data.len() < 24 {
            return Err(length_error);
        }
        let mut r = Reader::new(data);
        let reservation_key = r.u64()?;
        let service_action_reservation_key = r.u64()?;
        r.skip(4)?;
        let flags = r.u8()?;
        r.skip(3)?;
        let mut p = Self {
            reservation_key,
            service_action_reservation_key,
            spec_i_pt: flags & 0x08 != 0,
            all_tg_pt: flags & 0x04 != 0,
            aptpl: flags & 0x01 != 0,
            transport_ids: Vec::new(),
        };
        if !p.spec_i_pt {
            return if r.is_empty() {
                Ok(p)
            } else {
                Err(length_error)
            };
        }
        let tid_length = usize::try_from(r.u32().map_err(|_| length_error)?).unwrap_or(usize::MAX);
        if r.remaining() != tid_length {
            return Err(length_error);
        }
        while !r.is_empty() {
            if p.transport_ids.len() == MAX_TRANSPORT_IDS {
                return Err(DecodeError::invalid(r.offset()));
            }
            p.transport_ids.push(TransportId::decode(&mut r)?);
        }
        Ok(p)
    }

    /// The 24-byte list (SPEC_I_PT lists with their TransportIDs appended).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24);
        out.put_u64(self.reservation_key);
        out.put_u64(self.service_action_reservation_key);
        out.put_zeros(4);
        out.put_u8(
            (u8::from(self.spec_i_pt) << 3)
                | (u8::from(self.all_tg_pt) << 2)
                | u8::from(self.aptpl),
        );
        out.put_zeros(3);
        if self.spec_i_pt {
            let mut tids = Vec::new();
            for t in &self.transport_ids {
                t.encode(&mut tids);
            }
            out.put_u32(u32::try_from(tids.len()).unwrap_or(u32::MAX));
            out.extend_from_slice(&tids);
        }
        out
    }
}

/// The REGISTER AND MOVE parameter list (SPC-4 6.16.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterAndMoveParameters {
    pub reservation_key: u64,
    pub service_action_reservation_key: u64,
    pub unreg: bool,
    pub aptpl: bool,
    pub relative_target_port: u16,
    pub transport_id: TransportId,
}

impl RegisterAndMoveParameters {
    /// Decodes the list: 24 bytes plus TRANSPORTID PARAMETER DATA LENGTH, exactly the CDB's
    /// PARAMETER LIST LENGTH (else 1A/00), holding one TransportID.
    pub fn decode(data: &[u8], cdb_length: u32) -> Result<Self, DecodeError> {
        let length_error = DecodeError::new(Reason::ParameterListLength, 0);
        if usize::try_from(cdb_length).ok() != Some(data.len()) || data.len() < 24 {
            return Err(length_error);
        }
        let mut r = Reader::new(data);
        let reservation_key = r.u64()?;
        let service_action_reservation_key = r.u64()?;
        r.skip(1)?;
        let flags = r.u8()?;
        let relative_target_port = r.u16()?;
        let tid_length = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
        if r.remaining() != tid_length {
            return Err(length_error);
        }
        let transport_id = TransportId::decode(&mut r)?;
        if !r.is_empty() {
            return Err(DecodeError::invalid(r.offset()));
        }
        Ok(Self {
            reservation_key,
            service_action_reservation_key,
            unreg: flags & 0x02 != 0,
            aptpl: flags & 0x01 != 0,
            relative_target_port,
            transport_id,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut tid = Vec::new();
        self.transport_id.encode(&mut tid);
        let mut out = Vec::with_capacity(24 + tid.len());
        RegisterAndMoveList {
            reservation_key: self.reservation_key,
            service_action_reservation_key: self.service_action_reservation_key,
            unreg: self.unreg,
            aptpl: self.aptpl,
            relative_target_port: self.relative_target_port,
            transport_id: &tid,
        }
        .encode(&mut out);
        out
    }
}

/// The REGISTER AND MOVE parameter list with its TransportID as bytes, unchecked: the
/// third-party segment 15h carries the list's fields and one TransportID, and the copy
/// manager sends them on as they came (SPC-4 6.3.7.23 and 6.16.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegisterAndMoveList<'a> {
    pub reservation_key: u64,
    pub service_action_reservation_key: u64,
    pub unreg: bool,
    pub aptpl: bool,
    pub relative_target_port: u16,
    pub transport_id: &'a [u8],
}

impl RegisterAndMoveList<'_> {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.reservation_key);
        out.put_u64(self.service_action_reservation_key);
        out.put_u8(0);
        out.put_u8((u8::from(self.unreg) << 1) | u8::from(self.aptpl));
        out.put_u16(self.relative_target_port);
        out.put_u32(u32::try_from(self.transport_id.len()).unwrap_or(u32::MAX));
        out.extend_from_slice(self.transport_id);
    }
}

/// READ KEYS parameter data (SPC-4 6.15.2): PRGENERATION, ADDITIONAL LENGTH, the keys.
pub fn read_keys_data(generation: u32, keys: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 8 * keys.len());
    out.put_u32(generation);
    out.put_u32(u32::try_from(8 * keys.len()).unwrap_or(u32::MAX));
    for &k in keys {
        out.put_u64(k);
    }
    out
}

/// READ RESERVATION parameter data (SPC-4 6.15.3): the reservation's key (0 for the
/// all-registrants types, Table 169 note) and type, or no descriptor.
pub fn read_reservation_data(
    generation: u32,
    reservation: Option<(u64, ReservationType)>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    out.put_u32(generation);
    match reservation {
        None => out.put_u32(0),
        Some((key, kind)) => {
            out.put_u32(16);
            out.put_u64(if kind.all_registrants() { 0 } else { key });
            out.put_zeros(4);
            out.put_u8(0);
            out.put_u8(kind.code());
            out.put_zeros(2);
        }
    }
    out
}

/// REPORT CAPABILITIES parameter data (SPC-4 6.15.4), 8 bytes: CRH (SPC-2 RESERVE/RELEASE
/// follow the compatible reservation handling of 5.13.3), SIP_C, ATP_C and PTPL_C all one;
/// TMV with ALLOW COMMANDS 011b (TEST UNIT READY passes Write Exclusive and Exclusive Access
/// reservations, and MODE SENSE, READ BUFFER, RECEIVE COPY RESULTS, REPORT SUPPORTED
/// OPERATION CODES and the other reads of SPC-4 Table 66 pass Write Exclusive ones, as
/// `device::reservation::conflict` does); PTPL_A as `aptpl`;
/// every type of Table 170 supported.
pub fn report_capabilities_data(aptpl: bool) -> Vec<u8> {
    let mut mask: u16 = 0;
    for t in ReservationType::ALL {
        mask |= type_mask_bit(t);
    }
    let mut out = Vec::with_capacity(8);
    out.put_u16(8);
    out.put_u8(0x10 | 0x08 | 0x04 | 0x01);
    out.put_u8(0x80 | (0b011 << 4) | u8::from(aptpl));
    out.put_u16(mask);
    out.put_zeros(2);
    out
}

/// The PERSISTENT RESERVATION TYPE MASK bit of `t` (SPC-4 Table 171).
fn type_mask_bit(t: ReservationType) -> u16 {
    match t {
        ReservationType::WriteExclusiveAllRegistrants => 0x8000,
        ReservationType::ExclusiveAccessRegistrantsOnly => 0x4000,
        ReservationType::WriteExclusiveRegistrantsOnly => 0x2000,
        ReservationType::ExclusiveAccess => 0x0800,
        ReservationType::WriteExclusive => 0x0200,
        ReservationType::ExclusiveAccessAllRegistrants => 0x0001,
    }
}

/// One registered I_T nexus in READ FULL STATUS (SPC-4 Table 168).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullStatus {
    pub key: u64,
    pub all_tg_pt: bool,
    /// The reservation this I_T nexus holds, if it is a holder.
    pub holds: Option<ReservationType>,
    pub relative_target_port: u16,
    pub transport_id: TransportId,
}

/// READ FULL STATUS parameter data (SPC-4 6.15.5).
pub fn read_full_status_data(generation: u32, entries: &[FullStatus]) -> Vec<u8> {
    let mut body = Vec::new();
    for e in entries {
        let mut tid = Vec::new();
        e.transport_id.encode(&mut tid);
        body.put_u64(e.key);
        body.put_zeros(4);
        body.put_u8((u8::from(e.all_tg_pt) << 1) | u8::from(e.holds.is_some()));
        body.put_u8(e.holds.map_or(0, ReservationType::code));
        body.put_zeros(4);
        body.put_u16(e.relative_target_port);
        body.put_u32(u32::try_from(tid.len()).unwrap_or(u32::MAX));
        body.extend_from_slice(&tid);
    }
    let mut out = Vec::with_capacity(8 + body.len());
    out.put_u32(generation);
    out.put_u32(u32::try_from(body.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(&body);
    out
}

/// SPC-2 RESERVE(6)/(10) and RELEASE(6)/(10) (SPC-2 7.21-7.24). Only the plain logical-unit
/// form is supported: the obsolete extent bit (byte 1 bit 0 of the 6-byte forms), third-party
/// reservations (3RDPTY, byte 1 bit 4 of the 10-byte forms) and LONGID (bit 1) are INVALID
/// FIELD IN CDB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spc2Cdb {
    Reserve,
    Release,
}

impl Spc2Cdb {
    pub fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let opcode = Opcode(*cdb.first().ok_or_else(|| invalid_cdb(0))?);
        let (six, reserve) = match opcode {
            Opcode::RESERVE_6 => (true, true),
            Opcode::RELEASE_6 => (true, false),
            Opcode::RESERVE_10 => (false, true),
            Opcode::RELEASE_10 => (false, false),
            _ => return Err(invalid_cdb(0)),
        };
        if six {
            let [_, b1, _, _, _, ctl] = fixed::<6>(cdb)?;
            control(ctl, 5)?;
            if b1 & 0x01 != 0 {
                return Err(invalid_cdb(1).with_bit(0));
            }
        } else {
            let [_, b1, _, _, _, _, _, _, _, ctl] = fixed::<10>(cdb)?;
            control(ctl, 9)?;
            if b1 & 0x10 != 0 {
                return Err(invalid_cdb(1).with_bit(4));
            }
            if b1 & 0x02 != 0 {
                return Err(invalid_cdb(1).with_bit(1));
            }
        }
        Ok(if reserve {
            Self::Reserve
        } else {
            Self::Release
        })
    }
}

#[cfg(test)]
#[path = "persistent_reservation_tests.rs"]
mod tests;
