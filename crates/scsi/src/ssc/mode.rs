//! The mode parameters a drive keeps: MODE SENSE(6/10) and MODE SELECT(6/10) with the
//! header, block descriptor, Data Compression page (0Fh) and Device Configuration page (10h)
//! (SSC-3, SPC-3).

use super::{be24, cdb_bytes, invalid_cdb, invalid_param, page, reserved, DENSITY_NO_CHANGE};
use crate::error::{DecodeError, Reason};
use crate::reader::Put;

/// PAGE CONTROL (SPC-3 MODE SENSE PC field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageControl {
    Current,
    Changeable,
    Default,
    Saved,
}

/// MODE SENSE(6) / MODE SENSE(10) (SPC-3 MODE SENSE(6), MODE SENSE(10)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeSense {
    /// MODE SENSE(10).
    pub ten: bool,
    /// DBD: no block descriptor.
    pub disable_block_descriptors: bool,
    pub page_control: PageControl,
    pub page_code: u8,
    pub subpage_code: u8,
    pub allocation_length: u16,
}

impl ModeSense {
    pub fn decode6(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, b2, sub, alloc, _] = cdb_bytes::<6>(cdb)?;
        reserved(1, b1, 0xf7)?;
        Self::build(false, b1, b2, sub, u16::from(alloc))
    }

    /// LLBAA (byte 1 bit 4) is accepted: a sequential-access device returns the short
    /// block descriptor (LONGLBA=0) either way.
    pub fn decode10(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, b2, sub, _, _, _, a7, a8, _] = cdb_bytes::<10>(cdb)?;
        reserved(1, b1, 0xe7)?;
        Self::build(true, b1, b2, sub, u16::from_be_bytes([a7, a8]))
    }

    fn build(ten: bool, b1: u8, b2: u8, sub: u8, alloc: u16) -> Result<Self, DecodeError> {
        let page_control = match b2 >> 6 {
            0 => PageControl::Current,
            1 => PageControl::Changeable,
            2 => PageControl::Default,
            _ => PageControl::Saved,
        };
        let page_code = b2 & 0x3f;
        if !matches!(
            page_code,
            page::NONE | page::DATA_COMPRESSION | page::DEVICE_CONFIGURATION | page::ALL
        ) {
            return Err(invalid_cdb(2, 5));
        }
        // No subpages: 00h, or FFh ("all subpages", which here is page 0 only).
        if sub != 0x00 && sub != 0xff {
            return Err(invalid_cdb(3, 7));
        }
        Ok(Self {
            ten,
            disable_block_descriptors: b1 & 0x08 != 0,
            page_control,
            page_code,
            subpage_code: sub,
            allocation_length: alloc,
        })
    }
}

/// MODE SELECT(6) / MODE SELECT(10) (SPC-3 MODE SELECT(6), MODE SELECT(10)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeSelect {
    pub ten: bool,
    pub page_format: bool,
    pub parameter_list_length: u16,
}

impl ModeSelect {
    /// SP=1 is 24/00 at byte 1 bit 0: the drive has no saved pages (SPC-3 MODE SELECT).
    pub fn decode6(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, _, _, len, _] = cdb_bytes::<6>(cdb)?;
        Self::build(false, b1, u16::from(len))
    }

    pub fn decode10(cdb: &[u8]) -> Result<Self, DecodeError> {
        let [_, b1, _, _, _, _, _, l7, l8, _] = cdb_bytes::<10>(cdb)?;
        Self::build(true, b1, u16::from_be_bytes([l7, l8]))
    }

    fn build(ten: bool, b1: u8, len: u16) -> Result<Self, DecodeError> {
        reserved(1, b1, 0xee)?;
        if b1 & 0x01 != 0 {
            return Err(invalid_cdb(1, 0));
        }
        Ok(Self {
            ten,
            page_format: b1 & 0x10 != 0,
            parameter_list_length: len,
        })
    }
}

/// The drive's mode parameters: what MODE SELECT changes and MODE SENSE reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeState {
    /// DENSITY CODE of the block descriptor.
    pub density_code: u8,
    /// BLOCK LENGTH: 0 = variable-block mode, else fixed blocks of this length.
    pub block_length: u32,
    /// BUFFERED MODE (device-specific parameter bits 6-4): 0 or 1.
    pub buffered_mode: u8,
    /// WP (device-specific parameter bit 7): the medium is write protected.
    pub write_protect: bool,
}

const PAGE_LENGTH: u8 = 0x0e;

/// Data Compression page (SSC-3 Data Compression mode page), current/default values: DCC=0 — the emulated
/// drive does not compress, so DCE is zero and not changeable.
pub(super) fn data_compression_page() -> [u8; 16] {
    let mut p = [0u8; 16];
    if let Some(h) = p.get_mut(..2) {
        h.copy_from_slice(&[page::DATA_COMPRESSION, PAGE_LENGTH]);
    }
    p
}

/// Device Configuration page (SSC-3 Device Configuration mode page), current/default values: LOIS=1 (logical
/// object identifiers are reported), EEG=1 and SEW=1 (every write reaches the medium
/// before status, so the buffer is always synchronized at early warning); REW=0 (early
/// warning is not reported on reads); everything else zero.
pub(super) fn device_configuration_page() -> [u8; 16] {
    let mut p = [0u8; 16];
    for (i, v) in [
        (0, page::DEVICE_CONFIGURATION),
        (1, PAGE_LENGTH),
        (8, 0x40),
        (10, 0x18),
    ] {
        if let Some(b) = p.get_mut(i) {
            *b = v;
        }
    }
    p
}

/// The changeable mask of a page: nothing is changeable in either page.
fn changeable_page(code: u8) -> [u8; 16] {
    let mut p = [0u8; 16];
    if let Some(h) = p.get_mut(..2) {
        h.copy_from_slice(&[code, PAGE_LENGTH]);
    }
    p
}

fn page_values(code: u8, pc: PageControl) -> [u8; 16] {
    match pc {
        PageControl::Changeable => changeable_page(code),
        _ if code == page::DATA_COMPRESSION => data_compression_page(),
        _ => device_configuration_page(),
    }
}

/// MODE SENSE data: header, the block descriptor unless DBD, and the page(s) asked for.
/// `current` and `default` are the values for PC 00b and 10b. Truncation to the
/// allocation length is the caller's. PC 11b (saved) is the caller's to reject with
/// 05/39/00 before calling.
pub fn mode_sense_data(cdb: &ModeSense, current: &ModeState, default: &ModeState) -> Vec<u8> {
    let state = match cdb.page_control {
        PageControl::Default => *default,
        _ => *current,
    };
    let changeable = cdb.page_control == PageControl::Changeable;
    let dsp = if changeable {
        0x70 // BUFFERED MODE is changeable; SPEED and WP are not
    } else {
        (u8::from(state.write_protect) << 7) | ((state.buffered_mode & 0x07) << 4)
    };
    let mut body = Vec::with_capacity(40);
    if !cdb.disable_block_descriptors {
        if changeable {
            body.extend_from_slice(&[0, 0, 0, 0, 0, 0xff, 0xff, 0xff]);
        } else {
            let [_, a, b, c] = state.block_length.to_be_bytes();
            body.extend_from_slice(&[state.density_code, 0, 0, 0, 0, a, b, c]);
        }
    }
    let bdl = body.len();
    let codes: &[u8] = match cdb.page_code {
        page::ALL => &[page::DATA_COMPRESSION, page::DEVICE_CONFIGURATION],
        page::DATA_COMPRESSION => &[page::DATA_COMPRESSION],
        page::DEVICE_CONFIGURATION => &[page::DEVICE_CONFIGURATION],
        _ => &[],
    };
    for &code in codes {
        body.extend_from_slice(&page_values(code, cdb.page_control));
    }
    let mut out = Vec::with_capacity(body.len() + 8);
    if cdb.ten {
        out.put_u16(u16::try_from(body.len() + 6).unwrap_or(u16::MAX));
        out.put_u8(0); // MEDIUM TYPE
        out.put_u8(dsp);
        out.put_u8(0); // LONGLBA = 0
        out.put_u8(0);
        out.put_u16(bdl as u16);
    } else {
        out.put_u8(u8::try_from(body.len() + 3).unwrap_or(u8::MAX));
        out.put_u8(0);
        out.put_u8(dsp);
        out.put_u8(bdl as u8);
    }
    out.extend_from_slice(&body);
    out
}

/// Validates a MODE SELECT parameter list against the current state and returns the new
/// state (SPC-3 MODE SELECT and mode parameters; SSC-3 mode parameters). Nothing changes unless the whole list is valid.
///
/// - header: MEDIUM TYPE 0; BUFFERED MODE 0 or 1; SPEED 0; WP ignored (SSC-3 mode parameter
///   header: WP is ignored by MODE SELECT); LONGLBA 0; BLOCK DESCRIPTOR LENGTH 0 or 8;
/// - block descriptor: DENSITY CODE 00h (default), 7Fh (no change) or the current code;
///   NUMBER OF BLOCKS ignored; BLOCK LENGTH 0 (variable) or 1..=`max_block_length`;
/// - pages 0Fh and 10h with PAGE LENGTH 0Eh, no field differing from the current value
///   (none is changeable); any other page, or SPF=1, is 26/00 at that page's byte 0.
pub fn mode_select(
    params: &[u8],
    ten: bool,
    current: &ModeState,
    max_block_length: u32,
) -> Result<ModeState, DecodeError> {
    let mut next = *current;
    if params.is_empty() {
        return Ok(next);
    }
    let header_len = if ten { 8 } else { 4 };
    let header = params
        .get(..header_len)
        .ok_or_else(|| DecodeError::new(Reason::Truncated, params.len()))?;
    let (medium, dsp, bdl, dsp_at) = match *header {
        [_, medium, dsp, bdl] => (medium, dsp, usize::from(bdl), 2),
        [_, _, medium, dsp, longlba, _, b6, b7] => {
            if longlba & 0x01 != 0 {
                return Err(invalid_param(4, 0));
            }
            (medium, dsp, usize::from(u16::from_be_bytes([b6, b7])), 3)
        }
        _ => return Err(DecodeError::new(Reason::Truncated, params.len())),
    };
    if medium != 0 {
        return Err(invalid_param(dsp_at - 1, 7));
    }
    let buffered = (dsp >> 4) & 0x07;
    if buffered > 1 {
        return Err(invalid_param(dsp_at, 6));
    }
    if dsp & 0x0f != 0 {
        return Err(invalid_param(dsp_at, 3));
    }
    next.buffered_mode = buffered;
    let bdl_at = if ten { 6 } else { 3 };
    if bdl != 0 && bdl != 8 {
        return Err(DecodeError::invalid(bdl_at));
    }
    let mut at = header_len;
    if bdl == 8 {
        let bd = params
            .get(at..at + 8)
            .ok_or_else(|| DecodeError::new(Reason::Truncated, params.len()))?;
        let [density, _, _, _, _, l5, l6, l7] =
            <[u8; 8]>::try_from(bd).map_err(|_| DecodeError::new(Reason::Truncated, at))?;
        match density {
            0x00 | DENSITY_NO_CHANGE => {}
            d if d == current.density_code => {}
            _ => return Err(invalid_param(at, 7)),
        }
        let block_length = be24(l5, l6, l7);
        if block_length > max_block_length {
            return Err(invalid_param(at + 5, 7));
        }
        next.block_length = block_length;
        at += 8;
    }
    while at < params.len() {
        let b0 = params.get(at).copied().unwrap_or(0);
        let len = params
            .get(at + 1)
            .copied()
            .ok_or_else(|| DecodeError::new(Reason::Truncated, params.len()))?;
        if b0 & 0x40 != 0 {
            return Err(invalid_param(at, 6));
        }
        let code = b0 & 0x3f;
        if code != page::DATA_COMPRESSION && code != page::DEVICE_CONFIGURATION {
            return Err(invalid_param(at, 5));
        }
        if len != PAGE_LENGTH {
            return Err(DecodeError::invalid(at + 1));
        }
        let got = params
            .get(at..at + 16)
            .ok_or_else(|| DecodeError::new(Reason::Truncated, params.len()))?;
        let have = page_values(code, PageControl::Current);
        let mask = changeable_page(code);
        for (i, ((&g, &h), &m)) in got.iter().zip(&have).zip(&mask).enumerate().skip(2) {
            let differs = (g ^ h) & !m;
            if differs != 0 {
                return Err(invalid_param(at + i, 7 - differs.leading_zeros() as u8));
            }
        }
        at += 16;
    }
    Ok(next)
}
